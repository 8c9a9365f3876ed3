//! Health of each backend server, checked in the background: primaries by connecting and
//! pinging, replicas by `SHOW SLAVE STATUS` (replication running, and lag under the
//! threshold). A replica that is down, not replicating or lagging leaves read rotation and
//! returns when healthy; a primary seen down makes its shard's statements fail at once.

use super::pool::Backends;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the health checker last saw of one server.
#[derive(Debug)]
pub struct Health {
    replica: bool,
    up: AtomicBool,
    replicating: AtomicBool,
    /// Seconds behind the primary; -1 when unknown.
    lag_s: AtomicI64,
    max_lag_s: AtomicI64,
    offline: AtomicBool,
}

impl Health {
    /// Starts optimistic: servers are used until a check says otherwise.
    pub fn new(replica: bool) -> Self {
        Health {
            replica,
            up: AtomicBool::new(true),
            replicating: AtomicBool::new(true),
            lag_s: AtomicI64::new(0),
            max_lag_s: AtomicI64::new(i64::MAX),
            offline: AtomicBool::new(false),
        }
    }

    /// Whether the server answers.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether an administrator took the server offline.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Relaxed)
    }

    /// Takes the server out of use (running statements finish) or puts it back.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::Relaxed);
    }

    /// Whether reads may go here.
    pub fn usable(&self) -> bool {
        !self.is_offline()
            && self.is_up()
            && (!self.replica
                || (self.replicating.load(Ordering::Relaxed)
                    && self.lag_s.load(Ordering::Relaxed)
                        <= self.max_lag_s.load(Ordering::Relaxed)))
    }

    /// Seconds behind the primary (-1 when unknown).
    pub fn lag(&self) -> i64 {
        self.lag_s.load(Ordering::Relaxed)
    }

    /// Marks the server down after a failed statement (the checker brings it back).
    pub fn mark_down(&self) {
        self.up.store(false, Ordering::Relaxed);
    }
}

pub(crate) fn opts(addr: &str, user: &str, password: &str) -> Opts {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "3306"));
    OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port.parse().unwrap_or(3306))
        .user(Some(user))
        .pass(Some(password))
        .wait_timeout(Some(60))
        .tcp_nodelay(true)
        .stmt_cache_size(0)
        .into()
}

/// Checks one server once; returns (up, replicating, lag).
async fn check(
    conn: &mut Option<Conn>,
    opts: &Opts,
    replica: bool,
    timeout: Duration,
) -> (bool, bool, i64) {
    if conn.is_none() {
        match tokio::time::timeout(timeout, Conn::new(opts.clone())).await {
            Ok(Ok(c)) => *conn = Some(c),
            _ => return (false, false, -1),
        }
    }
    let Some(c) = conn.as_mut() else {
        return (false, false, -1);
    };
    if !replica {
        return match tokio::time::timeout(timeout, c.ping()).await {
            Ok(Ok(())) => (true, true, 0),
            _ => {
                *conn = None;
                (false, false, -1)
            }
        };
    }
    let status = tokio::time::timeout(timeout, c.query_iter("SHOW SLAVE STATUS")).await;
    let mut result = match status {
        Ok(Ok(r)) => r,
        _ => {
            *conn = None;
            return (false, false, -1);
        }
    };
    let row: Option<mysql_async::Row> = result.next().await.ok().flatten();
    let _ = result.drop_result().await;
    let Some(row) = row else {
        // Not configured as a replica at all.
        return (true, false, -1);
    };
    let text = |name: &str| -> Option<String> {
        let idx = row
            .columns_ref()
            .iter()
            .position(|c| c.name_str() == name)?;
        match row.as_ref(idx)? {
            mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            mysql_async::Value::NULL => None,
            other => Some(other.as_sql(true)),
        }
    };
    let io = text("Slave_IO_Running").as_deref() == Some("Yes");
    let sql = text("Slave_SQL_Running").as_deref() == Some("Yes");
    let lag = text("Seconds_Behind_Master").and_then(|s| s.parse::<i64>().ok());
    (true, io && sql && lag.is_some(), lag.unwrap_or(-1))
}

/// Runs the health checks of every server until the process ends.
pub fn spawn(
    backends: Arc<Backends>,
    config: &myshard_config::Config,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let interval = Duration::from_millis(config.backend.health_interval_ms.max(50));
    let timeout = Duration::from_millis(config.backend.connect_timeout_ms.max(100));
    let max_lag = config.backend.max_replica_lag_s as i64;
    for (shard, server) in backends.servers() {
        let shard_cfg = config.shard(shard);
        let user = shard_cfg
            .and_then(|s| s.user.clone())
            .unwrap_or_else(|| config.backend.user.clone());
        let password = shard_cfg
            .and_then(|s| s.password.clone())
            .unwrap_or_else(|| config.backend.password.clone());
        let opts = opts(&server.addr, &user, &password);
        let health = server.health.clone();
        health.max_lag_s.store(max_lag, Ordering::Relaxed);
        let addr = server.addr.clone();
        let shard = shard.to_string();
        let replica = server.replica;
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut conn = None;
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let was_usable = health.usable();
                let was_up = health.is_up();
                let (up, replicating, lag) = check(&mut conn, &opts, replica, timeout).await;
                health.up.store(up, Ordering::Relaxed);
                health.replicating.store(replicating, Ordering::Relaxed);
                health.lag_s.store(lag, Ordering::Relaxed);
                let role = if replica { "replica" } else { "primary" };
                if was_up != up {
                    if up {
                        tracing::info!(%shard, backend = %addr, role, "backend is up again");
                    } else {
                        tracing::warn!(%shard, backend = %addr, role, "backend is down");
                    }
                }
                if replica && up && was_usable != health.usable() {
                    if health.usable() {
                        tracing::info!(%shard, backend = %addr, lag, "replica back in read rotation");
                    } else {
                        tracing::warn!(%shard, backend = %addr, lag, replicating, "replica leaves read rotation (not replicating or lagging)");
                    }
                }
            }
        });
    }
}
