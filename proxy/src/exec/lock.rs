//! `LOCK TABLES` / `UNLOCK TABLES` for a session over several shards.
//!
//! The planner (`myshard_router::lock`) gives one `LOCK TABLES` per shard holding part of
//! the named tables, in the shard map's order. They run one after another, each on a
//! connection the session keeps while it holds locks there; as in MySQL, a LOCK TABLES
//! ends the open transaction first and replaces the locks the session held, and a LOCK
//! TABLES that fails leaves the session holding none.

use crate::error::{codes, ProxyError};
use crate::exec::write::applied_where;
use crate::executor;
use crate::executor::ForwardError;
use crate::protocol::PacketStream;
use crate::session::Session;
use myshard_sql_rewrite::ExecPlan;

impl Session {
    /// Runs a planned `LOCK TABLES`.
    pub(crate) async fn lock_tables(
        &mut self,
        stream: &mut PacketStream,
        exec: &ExecPlan,
        more: bool,
    ) -> Result<(), ForwardError> {
        if self.in_transaction {
            self.end_transaction(stream, "COMMIT", None).await?;
        }
        let held = std::mem::take(&mut self.locked);
        // Shards this LOCK TABLES does not reach keep no locks from the last one.
        for shard in held
            .iter()
            .filter(|s| !exec.queries.iter().any(|q| &q.shard == *s))
        {
            self.unlock_on(shard).await;
        }
        for (i, query) in exec.queries.iter().enumerate() {
            let res = match self
                .acquire_outside_transaction(&query.shard, query.database.as_deref())
                .await
            {
                Ok(mut conn) => {
                    conn.count_statement();
                    let res = match conn.conn() {
                        Ok(c) => executor::run(c, &query.shard, &query.sql).await,
                        Err(e) => Err(e),
                    };
                    // Kept by the session from here on (`is_pinned`); after a failure too,
                    // until UNLOCK TABLES below has run on it.
                    self.locked.push(query.shard.clone());
                    self.give_back(conn, res.as_ref().err());
                    res
                }
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                // None of this statement's locks, and none of the last one's, stay.
                let mut release: Vec<String> = std::mem::take(&mut self.locked);
                release.extend(held.iter().cloned());
                release.sort();
                release.dedup();
                for shard in &release {
                    self.unlock_on(shard).await;
                }
                self.unpin_if_free();
                let e = if exec.queries.len() > 1 {
                    let (code, state, message) = e.to_err();
                    ProxyError::Backend {
                        code,
                        state,
                        message: format!(
                            "{message} (LOCK TABLES failed on shard '{}'; the session holds no table locks; {})",
                            query.shard,
                            applied_where(&exec.queries, i).replace("applied on", "locked and released on")
                        ),
                    }
                } else {
                    e
                };
                return Err(ForwardError::Statement(e));
            }
        }
        self.unpin_if_free();
        executor::write_ok(stream, self.framing(more), 0).await?;
        Ok(())
    }

    /// `UNLOCK TABLES`: commits the open transaction when the session holds table locks
    /// (as MySQL does), then releases them on every shard.
    pub(crate) async fn unlock_tables(
        &mut self,
        stream: &mut PacketStream,
        more: bool,
    ) -> Result<(), ForwardError> {
        if !self.locked.is_empty() && self.in_transaction {
            self.end_transaction(stream, "COMMIT", None).await?;
        }
        self.release_locks().await;
        executor::write_ok(stream, self.framing(more), 0).await?;
        Ok(())
    }

    /// Releases every table lock the session holds (UNLOCK TABLES, or a BEGIN, which
    /// releases them in MySQL).
    pub(crate) async fn release_locks(&mut self) {
        for shard in std::mem::take(&mut self.locked) {
            self.unlock_on(&shard).await;
        }
        self.unpin_if_free();
    }

    /// `UNLOCK TABLES` on the connection the session keeps for `shard`, if it still has
    /// one; a connection that cannot run it is closed, which releases its locks.
    async fn unlock_on(&mut self, shard: &str) {
        self.locked.retain(|s| s != shard);
        let Some(mut conn) = self.pinned.remove(shard) else {
            return;
        };
        let res = match conn.conn() {
            Ok(c) => executor::run(c, shard, "UNLOCK TABLES").await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => self.give_back(conn, None),
            Err(e) => {
                tracing::warn!(shard, "UNLOCK TABLES failed, closing the connection: {e}");
                drop(conn);
            }
        }
    }

    /// Refuses to begin a transaction's branch where the session holds table locks: a
    /// branch begins with BEGIN (or XA START), which would release them (or fail).
    pub(crate) fn check_unlocked(&self, shard: &str) -> Result<(), ProxyError> {
        if !self.locked.iter().any(|s| s == shard) {
            return Ok(());
        }
        Err(ProxyError::sql(
            codes::NOT_SUPPORTED_YET,
            "42000",
            format!(
                "this session holds LOCK TABLES locks on shard '{shard}', and myshard begins a transaction there with BEGIN, which would release them; with tables locked, run with autocommit=1, or UNLOCK TABLES first"
            ),
        ))
    }
}
