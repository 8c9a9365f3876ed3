//! A routed statement from plan to answer: protection, planning (with the parts run first
//! by `crate::subquery`), and the choice of the operator family that runs it.

use crate::error::{codes, ProxyError};
use crate::executor::{self, ForwardError};
use crate::protocol::PacketStream;
use crate::server::Shared;
use crate::session::Session;
use crate::sessions::Kill;
use myshard_merger::MergeSpec;
use myshard_router::session::pins_connection_tokenized;
use myshard_router::{RoutePlan, StatementKind};
use myshard_sql_rewrite::ExecPlan;
use std::sync::Arc;

/// Why a running statement was stopped.
enum Stop {
    /// `protection.statement_timeout_ms` (in ms) passed.
    Timeout(u64),
    /// A KILL of this session.
    Killed(Kill),
}

impl Session {
    pub(crate) async fn routed(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        tokens: &[myshard_router::lexer::Token],
        more: bool,
    ) -> Result<(), ForwardError> {
        // Protection first: a shed or throttled statement costs no planning (and no ids).
        let config = self.shared.config();
        if let Some(class) = self.shared.shed_class(&config, sql) {
            self.shared.metrics.shed.inc();
            return Err(ForwardError::Statement(ProxyError::sql(
                codes::USER_LIMIT_REACHED,
                "42000",
                format!("non-core statement class '{class}' is being shed to protect the shards; retry later"),
            )));
        }
        if let Err((name, qps)) = self.shared.take_rate_tokens(&config, &self.user.name, sql) {
            self.shared.metrics.throttled.inc();
            return Err(ForwardError::Statement(ProxyError::sql(
                codes::USER_LIMIT_REACHED,
                "42000",
                format!("rate limit '{name}' ({qps} statements/s) exceeded; myshard refused the statement"),
            )));
        }
        if let Some(reason) = pins_connection_tokenized(tokens) {
            self.pin_reason = Some(reason);
        }
        let (plan, exec) = self
            .plan_materialized(sql)
            .await
            .map_err(ForwardError::Statement)?;
        self.role = exec.role;
        let route = if exec.queries.len() > 1 {
            "scatter"
        } else {
            "single"
        };
        for q in &exec.queries {
            self.shared
                .metrics
                .statements
                .with_label_values(&[plan.kind.label(), route, &q.shard])
                .inc();
        }
        let timer = self
            .shared
            .metrics
            .latency
            .with_label_values(&[route])
            .start_timer();
        let started = std::time::Instant::now();
        self.rows = 0;
        self.in_flight.clear();
        let _running = RunningGuard::new(&self.shared);
        let timeout_ms = config.protection.statement_timeout_ms;
        let mut kills = self.registered.entry.kills();
        let stopped = {
            let run = self.execute_or_copy(stream, sql, &plan, &exec, more);
            let deadline = async {
                if timeout_ms == 0 {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(timeout_ms)).await
                }
            };
            tokio::select! {
                r = run => Ok(r),
                _ = deadline => Err(Stop::Timeout(timeout_ms)),
                k = kills.wait_for(|k| *k != Kill::None) => Err(Stop::Killed(k.map_or(Kill::Connection, |k| *k))),
            }
        };
        let res = match stopped {
            Ok(r) => r,
            Err(why) => Err(ForwardError::Statement(self.abort_statement(why))),
        };
        self.in_flight.clear();
        timer.observe_duration();
        let shards: Vec<String> = exec.queries.iter().map(|q| q.shard.clone()).collect();
        self.shared.observer.record(
            crate::digest::digest_tokens(tokens),
            started.elapsed(),
            self.rows,
            &shards,
            &self.user.name,
            std::time::Duration::from_millis(config.server.slow_query_ms),
            config.server.slow_query_log.as_deref(),
        );
        res
    }

    /// Stops a statement that ran out of time or was killed: on every backend it reached
    /// (their connections were dropped with it), and with its transaction, which the client
    /// hears of until it ends the transaction itself.
    fn abort_statement(&mut self, why: Stop) -> ProxyError {
        for (pool, id) in self.in_flight.drain(..) {
            tokio::spawn(async move { pool.kill_query(id).await });
        }
        let error = match why {
            Stop::Timeout(ms) => ProxyError::sql(
                codes::QUERY_TIMEOUT,
                "HY000",
                format!("Query execution was interrupted, maximum statement execution time exceeded ({ms} ms, protection.statement_timeout_ms)"),
            ),
            Stop::Killed(Kill::Connection) => {
                ProxyError::sql(codes::CONNECTION_KILLED, "70100", "Connection was killed")
            }
            Stop::Killed(_) => ProxyError::sql(
                codes::QUERY_INTERRUPTED,
                "70100",
                "Query execution was interrupted",
            ),
        };
        if self.in_transaction || !self.autocommit {
            self.rolled_back = Some(error.to_string());
        }
        self.pinned.clear();
        self.branches.clear();
        self.xid = None;
        self.savepoints.clear();
        self.in_transaction = false;
        error
    }

    /// Runs a planned statement. A read whose shards' rows the merger finds it cannot combine
    /// exactly (UNION branches of different column kinds, say: [`ProxyError::Unmergeable`],
    /// known only once the rows' types are) runs by the planner's copy plan instead, when
    /// nothing of it reached the client yet.
    pub(crate) async fn execute_or_copy(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        plan: &RoutePlan,
        exec: &ExecPlan,
        more: bool,
    ) -> Result<(), ForwardError> {
        let before = stream.packets_written();
        match self.execute(stream, plan, exec, more).await {
            Err(ForwardError::Statement(e @ ProxyError::Unmergeable(_)))
                if plan.kind == StatementKind::Read && stream.packets_written() == before =>
            {
                let (plan, exec) = self
                    .plan_copy(sql, e)
                    .await
                    .map_err(ForwardError::Statement)?;
                Box::pin(self.execute(stream, &plan, &exec, more)).await
            }
            other => other,
        }
    }

    pub(crate) async fn execute(
        &mut self,
        stream: &mut PacketStream,
        plan: &RoutePlan,
        exec: &ExecPlan,
        more: bool,
    ) -> Result<(), ForwardError> {
        if plan.kind == StatementKind::Lock {
            return self.lock_tables(stream, exec, more).await;
        }
        // DDL commits the open transaction first, as in MySQL.
        if plan.kind == StatementKind::Ddl && self.in_transaction {
            self.end_transaction(stream, "COMMIT", None).await?;
        }
        let res = self.dispatch(stream, exec, plan.kind, more).await;
        if matches!(plan.kind, StatementKind::Write | StatementKind::Ddl) {
            // The read-your-writes window runs from the acknowledgement: replicas start
            // applying the write only once it committed, however long it took.
            let now = std::time::Instant::now();
            for q in &exec.queries {
                self.note_write(&q.shard, now);
            }
        }
        if plan.kind != StatementKind::Read {
            self.mark_written(exec.queries.iter().map(|q| q.shard.as_str()));
        }
        if plan.kind == StatementKind::Ddl {
            // Tables may have changed: their columns are read again when next needed.
            let columns = self.shared.router().columns().clone();
            for schema in self.schema.iter().chain(plan.schemas.iter()) {
                columns.forget_schema(schema);
            }
        }
        if res.is_ok() {
            match plan.kind {
                StatementKind::Read => {
                    self.row_count = -1;
                    self.found_rows = self.rows;
                }
                StatementKind::Ddl => self.row_count = 0,
                _ => self.row_count = self.rows as i64,
            }
        }
        res
    }

    pub(crate) async fn dispatch(
        &mut self,
        stream: &mut PacketStream,
        exec: &ExecPlan,
        kind: StatementKind,
        more: bool,
    ) -> Result<(), ForwardError> {
        match (&exec.merge, exec.queries.as_slice(), exec.last_insert_id) {
            (MergeSpec::Passthrough, [query], None) => {
                self.single(stream, query, &exec.result_renames, more).await
            }
            (MergeSpec::Select(spec), queries, _) => {
                let spec = spec.clone();
                self.merged_select(stream, queries, &spec, exec.union, more)
                    .await
            }
            (MergeSpec::Concat { offset, limit }, queries, _) => {
                let mut state = executor::ConcatState::new(*offset, *limit);
                state.union = exec.union;
                self.concat(stream, queries, state, more).await
            }
            (merge, queries, last_insert_id) => {
                let first_only = matches!(merge, MergeSpec::First);
                let atomic = kind == StatementKind::Write && self.begin_atomic_write(queries);
                self.write_all(stream, queries, first_only, last_insert_id, atomic, more)
                    .await
            }
        }
    }
}

/// Counts a running statement for automatic shedding.
pub(crate) struct RunningGuard {
    shared: Arc<Shared>,
}

impl RunningGuard {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        shared
            .running
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RunningGuard {
            shared: shared.clone(),
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.shared
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
