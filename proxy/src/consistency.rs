//! Read-your-writes by GTID.
//!
//! When a session's write (or the COMMIT of a transaction that wrote) is acknowledged by a
//! shard's primary, the session remembers that it wrote there. Under `read_your_writes` (the
//! default), its next read of that shard goes to a replica only once the replica has applied
//! the write: myshard reads the primary's GTID position (`@@global.gtid_binlog_pos`, which
//! holds the acknowledged write) and waits on the replica with `MASTER_GTID_WAIT`, bounded by
//! `backend.read_your_writes_wait_ms`; a replica that does not get there in time leaves the
//! read to the primary. A replica that got there is remembered, so later reads on it do not
//! wait, until the session writes to the shard again. Sessions that never wrote, and writes
//! themselves, pay nothing.

use crate::backend::PooledConn;
use crate::error::{codes, ProxyError};
use crate::session::Session;
use myshard_config::ReadConsistency;
use myshard_router::lexer::Token;
use mysql_async::prelude::Queryable;

/// A session's last write to one shard.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The primary's GTID position after the write, once read.
    position: Option<String>,
    /// Replicas (by address) known to have applied it.
    applied_on: Vec<String>,
}

/// Whether `g` reads as a MariaDB GTID position (`domain-server-sequence`, comma-separated;
/// empty when nothing was ever written): it is put into a statement.
fn is_position(g: &str) -> bool {
    g.is_empty()
        || g.split(',').all(|one| {
            let parts: Vec<&str> = one.trim().split('-').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// The session variable that sets a session's read consistency (myshard's own: it reaches
/// no shard).
pub const VARIABLE: &str = "myshard_read_consistency";

impl Session {
    /// What this session's reads see of its own writes: the session's `SET`, else its user's,
    /// else `backend.read_consistency`.
    pub(crate) fn read_consistency(&self, config: &myshard_config::Config) -> ReadConsistency {
        self.read_consistency
            .or(self.user.read_consistency)
            .unwrap_or(config.backend.read_consistency)
    }

    /// `SET [SESSION] myshard_read_consistency = 'eventual' | 'read_your_writes' | 'primary' |
    /// DEFAULT`, alone in its SET.
    pub(crate) fn set_read_consistency(
        &mut self,
        sql: &str,
        targets: &[myshard_router::SetTarget],
    ) -> Result<(), ProxyError> {
        if targets.len() != 1 {
            return Err(ProxyError::sql(
                codes::WRONG_ARGUMENTS,
                "HY000",
                format!("set {VARIABLE} in a SET of its own: it is myshard's, and the other variables are the shards'"),
            ));
        }
        let tokens = myshard_router::lexer::tokenize(sql);
        let value = tokens
            .iter()
            .rposition(|t| t.is_sym("=") || t.is_sym(":="))
            .and_then(|i| match tokens.get(i + 1..) {
                Some([Token::Str(v) | Token::Word(v)]) => Some(v.to_ascii_lowercase()),
                _ => None,
            })
            .unwrap_or_default();
        self.read_consistency = match value.as_str() {
            "eventual" => Some(ReadConsistency::Eventual),
            "read_your_writes" => Some(ReadConsistency::ReadYourWrites),
            "primary" => Some(ReadConsistency::Primary),
            "default" => None,
            _ => {
                return Err(ProxyError::sql(
                    codes::WRONG_VALUE_FOR_VAR,
                    "42000",
                    format!("Variable '{VARIABLE}' can't be set to the value of '{value}' (eventual, read_your_writes, primary or DEFAULT)"),
                ))
            }
        };
        Ok(())
    }

    /// The session's write to `shard` was acknowledged at `now`.
    pub(crate) fn note_write(&mut self, shard: &str, now: std::time::Instant) {
        self.last_write.insert(shard.to_string(), now);
        self.written_gtids
            .insert(shard.to_string(), Written::default());
    }

    /// The primary's GTID position of `shard`, which holds every write it acknowledged.
    async fn primary_position(&mut self, shard: &str) -> Option<String> {
        let backends = self.shared.backends();
        let server = backends.server(shard, false, None).ok()?;
        // The session's own database: a pooled connection already in it needs no
        // COM_CHANGE_USER to leave it.
        let database = self.physical_database();
        let mut conn = server
            .pool(self.found_rows())
            .checkout(database.as_deref(), &self.state)
            .await
            .ok()?;
        let position = match conn.conn() {
            Ok(c) => c
                .query_first::<String, _>("SELECT @@global.gtid_binlog_pos")
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        crate::backend::BackendPool::release(conn);
        position.filter(|p| is_position(p))
    }

    /// Whether the replica `conn` is connected to has applied the session's last write to
    /// `shard` (waiting a bounded time for it); `false` sends the read to the primary.
    pub(crate) async fn replica_has_writes(&mut self, shard: &str, conn: &mut PooledConn) -> bool {
        // Sessions that never wrote here pay one map lookup.
        let Some(written) = self.written_gtids.get(shard) else {
            return true;
        };
        let config = self.shared.config();
        if self.read_consistency(&config) != ReadConsistency::ReadYourWrites {
            return true;
        }
        let metrics = self.shared.metrics.read_your_writes.clone();
        if written.applied_on.iter().any(|a| a == conn.addr()) {
            metrics.with_label_values(&["replica_known"]).inc();
            return true;
        }
        let position = match written.position.clone() {
            Some(p) => Some(p),
            None => {
                let bound =
                    std::time::Duration::from_millis(config.backend.read_your_writes_wait_ms);
                let p = tokio::time::timeout(bound, self.primary_position(shard))
                    .await
                    .ok()
                    .flatten();
                if let (Some(p), Some(w)) = (&p, self.written_gtids.get_mut(shard)) {
                    w.position = Some(p.clone());
                }
                p
            }
        };
        let wait_ms = config.backend.read_your_writes_wait_ms;
        let applied = match (position, conn.conn()) {
            (Some(p), Ok(c)) => {
                let sql = format!(
                    "SELECT MASTER_GTID_WAIT('{p}', {}.{:03})",
                    wait_ms / 1000,
                    wait_ms % 1000
                );
                matches!(c.query_first::<i64, _>(sql).await, Ok(Some(0)))
            }
            _ => false,
        };
        if applied {
            metrics.with_label_values(&["replica_after_wait"]).inc();
            let addr = conn.addr().to_string();
            if let Some(w) = self.written_gtids.get_mut(shard) {
                w.applied_on.push(addr);
            }
        } else {
            metrics.with_label_values(&["primary"]).inc();
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::is_position;

    #[test]
    fn only_gtid_positions_are_accepted() {
        assert!(is_position("0-1-42"));
        assert!(is_position("0-1-42,1-2-7"));
        assert!(is_position(""));
        assert!(!is_position("0-1"));
        assert!(!is_position("0-1-4'2"));
        assert!(!is_position("0-1-42; DROP"));
    }
}
