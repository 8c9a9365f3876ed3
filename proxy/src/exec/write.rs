//! Writes over several shards: affected rows summed, atomic with XA outside a transaction.

use crate::error::ProxyError;
use crate::executor::{self, ForwardError};
use crate::protocol::PacketStream;
use crate::session::Session;
use myshard_sql_rewrite::ShardQuery;

impl Session {
    /// Writes and DDL on several targets (or with generated ids): every target must succeed;
    /// one OK with the summed affected rows (the first target's, for broadcast tables).
    /// `atomic`: the targets' parts form one XA transaction begun by
    /// [`Session::begin_atomic_write`], committed before the OK and rolled back on any error.
    pub(crate) async fn write_all(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        first_only: bool,
        last_insert_id: Option<u64>,
        atomic: bool,
        more: bool,
    ) -> Result<(), ForwardError> {
        let mut total = executor::OkInfo::default();
        for (i, query) in queries.iter().enumerate() {
            let res = match self.acquire(&query.shard, query.database.as_deref()).await {
                Ok(mut conn) => {
                    conn.count_statement();
                    let res = match conn.conn() {
                        Ok(c) => executor::run_for_ok(c, &query.shard, &query.sql).await,
                        Err(e) => Err(e),
                    };
                    if matches!(&res, Ok(ok) if ok.warnings > 0) {
                        self.fetch_warnings(&mut conn, &query.shard).await;
                    }
                    self.give_back(conn, res.as_ref().err());
                    res
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(ok) => {
                    if i == 0 || !first_only {
                        total.affected_rows += ok.affected_rows;
                        total.warnings = total.warnings.saturating_add(ok.warnings);
                        if total.last_insert_id == 0 {
                            total.last_insert_id = ok.last_insert_id;
                        }
                        if queries.len() == 1 || first_only {
                            total.info = ok.info;
                        }
                    }
                }
                Err(e) if atomic => {
                    let e = self.suspected_deadlock(e);
                    self.rollback_branches().await;
                    self.unpin_if_free();
                    return Err(ForwardError::Statement(e));
                }
                Err(e) => {
                    let e = if queries.len() > 1 && !self.in_transaction {
                        let (code, state, message) = e.to_err();
                        ProxyError::Backend {
                            code,
                            state,
                            message: format!(
                                "{message} (failed on shard '{}'; {})",
                                query.shard,
                                applied_where(queries, i)
                            ),
                        }
                    } else {
                        e
                    };
                    return Err(ForwardError::Statement(e));
                }
            }
        }
        if atomic {
            self.mark_written(queries.iter().map(|q| q.shard.as_str()));
            let committed = self.commit_branches().await;
            self.unpin_if_free();
            committed.map_err(ForwardError::Statement)?;
        }
        if let Some(id) = last_insert_id {
            total.last_insert_id = id;
        }
        self.rows = total.affected_rows;
        if total.last_insert_id != 0 {
            self.last_insert_id = total.last_insert_id;
        }
        self.unpin_if_free();
        let ok = crate::protocol::response::Ok {
            affected_rows: total.affected_rows,
            last_insert_id: total.last_insert_id,
            status: self.framing(more).status_with_more(),
            warnings: total.warnings,
            info: total.info,
        };
        stream.write_packet(&ok.encode(0)).await?;
        Ok(())
    }
}

/// Which shards a statement that failed at target `failed` ran on, and which it did not: a
/// statement outside a transaction (DDL above all) cannot be undone where it ran.
pub(crate) fn applied_where(queries: &[ShardQuery], failed: usize) -> String {
    let names = |qs: &[ShardQuery]| {
        let mut out: Vec<&str> = Vec::new();
        for q in qs {
            if !out.contains(&q.shard.as_str()) {
                out.push(&q.shard);
            }
        }
        out.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let done = names(&queries[..failed]);
    let rest = names(&queries[failed + 1..]);
    format!(
        "applied on: {}; not run on: {}",
        if done.is_empty() { "none" } else { &done },
        if rest.is_empty() { "none" } else { &rest }
    )
}
