//! Transactions of one session: a branch per shard the transaction touches, begun lazily on
//! first use; commit in one phase when at most one branch wrote, in two phases (XA, with the
//! decision logged first) when several did; savepoints on every branch.

use crate::backend::PooledConn;
use crate::error::{codes, ProxyError};
use crate::executor::{self, ForwardError};
use crate::protocol::PacketStream;
use crate::session::Session;
use crate::xa::xid_sql;
use myshard_config::TransactionMode;
use myshard_sql_rewrite::ShardQuery;

/// The part of a transaction that runs on one shard.
#[derive(Debug, Clone, Copy, Default)]
pub struct Branch {
    /// Begun with `XA START` (else `BEGIN` / the client's `START TRANSACTION …`).
    pub xa: bool,
    /// A statement that may write ran in it.
    pub wrote: bool,
    /// Its connection's lock waits are bounded by `transactions.lock_wait_timeout_s`
    /// (restored when the transaction ends).
    pub bounded: bool,
}

/// A savepoint and the shards whose branches existed when it was set.
#[derive(Debug, Clone)]
pub struct Savepoint {
    /// Lower-case name.
    pub name: String,
    /// Shards that have it.
    pub shards: Vec<String>,
}

/// Errors after which MySQL has rolled the whole transaction back.
fn ends_transaction(e: &ProxyError) -> bool {
    matches!(e, ProxyError::ShardUnavailable { .. })
        || matches!(e.to_err().0, 1213 | 1402 | 1613 | 1614)
}

impl Session {
    /// Whether statements run inside a transaction (explicit, or implicit under
    /// autocommit=0).
    pub(crate) fn tx_active(&self) -> bool {
        self.in_transaction || !self.autocommit
    }

    /// Whether a write on `queries` outside a transaction runs as one XA transaction (see
    /// `transactions.atomic_autocommit_writes`); if so, that transaction is begun here and
    /// its branches begin as the targets are reached.
    pub(crate) fn begin_atomic_write(&mut self, queries: &[ShardQuery]) -> bool {
        let config = self.shared.config();
        let t = &config.transactions;
        let several = queries.len() > 1;
        // XA START fails on a connection holding table locks (XAER_OUTSIDE).
        if self.tx_active()
            || !self.locked.is_empty()
            || !several
            || t.mode != TransactionMode::Xa
            || !t.atomic_autocommit_writes
            || self.shared.xa.is_none()
        {
            return false;
        }
        self.begin_sql = "BEGIN".to_string();
        self.tx_read_only = false;
        self.in_transaction = true;
        true
    }

    /// Makes `conn` part of the transaction on `shard`, beginning its branch when this is the
    /// transaction's first statement there.
    pub(crate) async fn join_transaction(
        &mut self,
        conn: &mut PooledConn,
        shard: &str,
    ) -> Result<(), ProxyError> {
        if !self.tx_active() || self.branches.contains_key(shard) {
            return Ok(());
        }
        self.check_unlocked(shard)?;
        if !self.in_transaction {
            // An implicit transaction (autocommit=0) begins with this statement.
            self.begin_sql = "BEGIN".to_string();
            self.tx_read_only = false;
        }
        let config = self.shared.config();
        if config.transactions.mode == TransactionMode::SingleShard {
            if let Some(other) = self.branches.keys().next() {
                return Err(ProxyError::not_supported(format!(
                    "this transaction already runs on shard '{other}' and this statement needs shard '{shard}'; transactions.mode = \"single_shard\" keeps a transaction on one shard"
                )));
            }
        }
        let xa = config.transactions.mode == TransactionMode::Xa && !self.tx_read_only;
        let c = conn.conn()?;
        if let Some(settings) = &self.next_tx_settings {
            executor::run(c, shard, settings).await?;
        }
        let mut sql = match (xa, self.shared.xa.as_ref()) {
            (true, Some(x)) => {
                let gtrid = self.xid.get_or_insert_with(|| x.ids.next()).clone();
                format!("XA START {}", xid_sql(&gtrid, shard))
            }
            _ => self.begin_sql.clone(),
        };
        // A second shard: from here on a lock cycle through this transaction can span
        // shards, so its waits are bounded (the other branches at their next statement).
        let bound = match self.lock_wait_bound() {
            Some(secs) if !self.branches.is_empty() => {
                sql.push_str(&format!("; SET SESSION innodb_lock_wait_timeout = {secs}"));
                true
            }
            _ => false,
        };
        executor::run(c, shard, &sql).await?;
        self.branches.insert(
            shard.to_string(),
            Branch {
                xa: xa && self.shared.xa.is_some(),
                wrote: false,
                bounded: bound,
            },
        );
        self.in_transaction = true;
        Ok(())
    }

    /// The lock-wait bound for a transaction over several shards, unless it is off or the
    /// client's own `innodb_lock_wait_timeout` is already as short.
    fn lock_wait_bound(&self) -> Option<u64> {
        let secs = self.shared.config().transactions.lock_wait_timeout_s;
        let own = self
            .state
            .system_literal("innodb_lock_wait_timeout")
            .and_then(|l| l.trim_matches('\'').parse::<u64>().ok());
        (secs > 0 && own.is_none_or(|own| own > secs)).then_some(secs)
    }

    /// Bounds the lock waits of `conn`'s branch once the transaction spans several shards.
    pub(crate) async fn bound_lock_waits(
        &mut self,
        conn: &mut PooledConn,
        shard: &str,
    ) -> Result<(), ProxyError> {
        if self.branches.len() < 2 || self.branches.get(shard).is_none_or(|b| b.bounded) {
            return Ok(());
        }
        let Some(secs) = self.lock_wait_bound() else {
            return Ok(());
        };
        let sql = format!("SET SESSION innodb_lock_wait_timeout = {secs}");
        executor::run(conn.conn()?, shard, &sql).await?;
        if let Some(b) = self.branches.get_mut(shard) {
            b.bounded = true;
        }
        Ok(())
    }

    /// What puts a bounded branch's connection back to the session's own lock-wait timeout.
    fn unbound_sql(&self) -> String {
        let own = self
            .state
            .system_literal("innodb_lock_wait_timeout")
            .unwrap_or("DEFAULT");
        format!("SET SESSION innodb_lock_wait_timeout = {own}")
    }

    /// A transaction's last statement on a branch, followed by undoing the lock-wait bound;
    /// when it fails the connection's session state is unknown and is reset before reuse.
    async fn end_branch(&mut self, shard: &str, b: Branch, sql: &str) -> Result<(), ProxyError> {
        if !b.bounded {
            return self.on_branch(shard, sql).await;
        }
        let res = self
            .on_branch(shard, &format!("{sql}; {}", self.unbound_sql()))
            .await;
        if res.is_err() {
            if let Some(conn) = self.pinned.get_mut(shard) {
                conn.set_fingerprint(crate::backend::UNKNOWN_STATE);
            }
        }
        res
    }

    /// Turns a lock-wait timeout inside a bounded transaction over several shards into the
    /// deadlock it most likely is (see `transactions.lock_wait_timeout_s`).
    pub(crate) fn suspected_deadlock(&self, e: ProxyError) -> ProxyError {
        if !self.in_transaction
            || e.to_err().0 != codes::LOCK_WAIT_TIMEOUT
            || !self.branches.values().any(|b| b.bounded)
        {
            return e;
        }
        self.shared.metrics.lock_wait_aborts.inc();
        let secs = self.shared.config().transactions.lock_wait_timeout_s;
        ProxyError::sql(
            codes::LOCK_DEADLOCK,
            "40001",
            format!(
                "Deadlock found when trying to get lock; try restarting transaction (a lock wait in this transaction over {} shards exceeded transactions.lock_wait_timeout_s = {secs} s, a possible deadlock across shards; the transaction was rolled back on every shard)",
                self.branches.len()
            ),
        )
    }

    /// Notes that a statement that may write ran on these shards.
    pub(crate) fn mark_written<'a>(&mut self, shards: impl Iterator<Item = &'a str>) {
        for s in shards {
            if let Some(b) = self.branches.get_mut(s) {
                b.wrote = true;
            }
        }
    }

    fn clear_transaction(&mut self) {
        self.branches.clear();
        self.xid = None;
        self.savepoints.clear();
        self.next_tx_settings = None;
        self.in_transaction = false;
        self.tx_read_only = false;
    }

    /// Runs `sql` on the pinned connection of `shard`; a connection that broke is dropped.
    async fn on_branch(&mut self, shard: &str, sql: &str) -> Result<(), ProxyError> {
        let Some(mut conn) = self.pinned.remove(shard) else {
            return Err(ProxyError::ShardUnavailable {
                shard: shard.to_string(),
                reason: "its connection was lost during the transaction".into(),
            });
        };
        conn.count_statement();
        let res = match conn.conn() {
            Ok(c) => executor::run(c, shard, sql).await,
            Err(e) => Err(e),
        };
        if !matches!(res, Err(ProxyError::ShardUnavailable { .. })) {
            self.pinned.insert(shard.to_string(), conn);
        }
        res
    }

    /// Commits every branch. Several written XA branches commit in two phases.
    pub(crate) async fn commit_branches(&mut self) -> Result<(), ProxyError> {
        let branches: Vec<(String, Branch)> = self.branches.drain().collect();
        let gtrid = self.xid.take().unwrap_or_default();
        let writers: Vec<&str> = branches
            .iter()
            .filter(|(_, b)| b.xa && b.wrote)
            .map(|(s, _)| s.as_str())
            .collect();
        let two_phase = writers.len() >= 2;
        if two_phase {
            let mut failed = None;
            for shard in &writers {
                let x = xid_sql(&gtrid, shard);
                if let Err(e) = self
                    .on_branch(shard, &format!("XA END {x}; XA PREPARE {x}"))
                    .await
                {
                    failed = Some((shard.to_string(), e));
                    break;
                }
            }
            if failed.is_none() {
                if let Some(xa) = self.shared.xa.clone() {
                    let id = gtrid.clone();
                    let logged = tokio::task::spawn_blocking(move || xa.log.decide_commit(&id))
                        .await
                        .map_err(std::io::Error::other)
                        .and_then(|r| r);
                    if let Err(e) = logged {
                        failed = Some((
                            "the decision log".to_string(),
                            ProxyError::sql(
                                1105,
                                "HY000",
                                format!("cannot write the XA decision log: {e}"),
                            ),
                        ));
                    }
                }
            }
            if let Some((at, e)) = failed {
                self.rollback_list(&branches, &gtrid).await;
                let (code, _, message) = e.to_err();
                return Err(ProxyError::sql(
                    codes::XA_RBROLLBACK,
                    "XA100",
                    format!("XA_RBROLLBACK: the transaction was rolled back on every shard because preparing it on {at} failed: {code} {message}"),
                ));
            }
        }
        let mut first_error = None;
        let mut all_committed = true;
        for (shard, b) in &branches {
            let x = xid_sql(&gtrid, shard);
            let sql = match (b.xa, two_phase && b.wrote) {
                (true, true) => format!("XA COMMIT {x}"),
                (true, false) => format!("XA END {x}; XA COMMIT {x} ONE PHASE"),
                (false, _) => "COMMIT".to_string(),
            };
            match self.end_branch(shard, *b, &sql).await {
                Ok(()) => {}
                Err(e) if two_phase && b.wrote => {
                    // Decided: recovery commits this branch once its shard answers again.
                    all_committed = false;
                    if e.to_err().0 != codes::XAER_NOTA {
                        tracing::warn!(shard = %shard, gtrid = %gtrid, "XA COMMIT failed after the decision was logged; recovery will finish it: {e}");
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if two_phase && all_committed {
            if let Some(xa) = &self.shared.xa {
                xa.log.done(&gtrid);
            }
        }
        // Read-your-writes: the shards' replicas see the transaction only from its commit on.
        let now = std::time::Instant::now();
        for (shard, _) in branches.iter().filter(|(_, b)| b.wrote) {
            self.note_write(shard, now);
        }
        self.clear_transaction();
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn rollback_list(&mut self, branches: &[(String, Branch)], gtrid: &str) {
        for (shard, b) in branches {
            if b.xa {
                let x = xid_sql(gtrid, shard);
                if self
                    .end_branch(shard, *b, &format!("XA END {x}; XA ROLLBACK {x}"))
                    .await
                    .is_err()
                {
                    // Already ended (prepared, or failed): roll back what is left.
                    let _ = self.on_branch(shard, &format!("XA ROLLBACK {x}")).await;
                }
            } else {
                let _ = self.end_branch(shard, *b, "ROLLBACK").await;
            }
        }
    }

    /// Rolls back every branch.
    pub(crate) async fn rollback_branches(&mut self) {
        let branches: Vec<(String, Branch)> = self.branches.drain().collect();
        let gtrid = self.xid.take().unwrap_or_default();
        self.rollback_list(&branches, &gtrid).await;
        self.clear_transaction();
    }

    /// After a failed statement: errors that end the transaction in MySQL (deadlock, a lost
    /// shard) roll back every branch, as one MySQL would roll back the whole transaction.
    /// Returns the error the client gets (a bounded lock wait becomes a deadlock).
    pub(crate) async fn after_error(&mut self, e: ProxyError) -> ProxyError {
        let e = self.suspected_deadlock(e);
        if self.in_transaction && ends_transaction(&e) {
            self.rollback_branches().await;
            self.unpin_if_free();
        }
        e
    }

    /// `SAVEPOINT`, `ROLLBACK TO SAVEPOINT`, `RELEASE SAVEPOINT` across the branches.
    pub(crate) async fn savepoint(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        more: bool,
    ) -> Result<(), ForwardError> {
        let tokens = myshard_router::lexer::tokenize(sql.trim().trim_end_matches(';'));
        let name = tokens
            .last()
            .and_then(|t| t.ident())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let verb = tokens
            .first()
            .and_then(|t| t.ident())
            .unwrap_or_default()
            .to_ascii_uppercase();
        let missing = || {
            ForwardError::Statement(ProxyError::sql(
                codes::SP_DOES_NOT_EXIST,
                "42000",
                format!("SAVEPOINT {name} does not exist"),
            ))
        };
        if !self.tx_active() {
            // Outside a transaction MySQL accepts SAVEPOINT and forgets it at once.
            if verb == "SAVEPOINT" {
                executor::write_ok(stream, self.framing(more), 0).await?;
                return Ok(());
            }
            return Err(missing());
        }
        match verb.as_str() {
            "SAVEPOINT" => {
                let shards: Vec<String> = self.branches.keys().cloned().collect();
                for s in &shards {
                    self.on_branch(s, sql)
                        .await
                        .map_err(ForwardError::Statement)?;
                }
                self.in_transaction = true;
                self.savepoints.retain(|p| p.name != name);
                self.savepoints.push(Savepoint { name, shards });
            }
            "RELEASE" => {
                let i = self
                    .savepoints
                    .iter()
                    .position(|p| p.name == name)
                    .ok_or_else(missing)?;
                let shards: Vec<String> = self.savepoints[i]
                    .shards
                    .iter()
                    .filter(|s| self.branches.contains_key(*s))
                    .cloned()
                    .collect();
                for s in &shards {
                    self.on_branch(s, sql)
                        .await
                        .map_err(ForwardError::Statement)?;
                }
                self.savepoints.truncate(i);
            }
            _ => {
                let i = self
                    .savepoints
                    .iter()
                    .position(|p| p.name == name)
                    .ok_or_else(missing)?;
                let had = self.savepoints[i].shards.clone();
                let now: Vec<(String, Branch)> =
                    self.branches.iter().map(|(s, b)| (s.clone(), *b)).collect();
                for (shard, branch) in now {
                    if had.contains(&shard) {
                        self.on_branch(&shard, sql)
                            .await
                            .map_err(ForwardError::Statement)?;
                    } else {
                        // Everything this branch did came after the savepoint.
                        let gtrid = self.xid.clone().unwrap_or_default();
                        self.branches.remove(&shard);
                        self.rollback_list(&[(shard.clone(), branch)], &gtrid).await;
                    }
                }
                self.savepoints.truncate(i + 1);
            }
        }
        executor::write_ok(stream, self.framing(more), 0).await?;
        Ok(())
    }
}
