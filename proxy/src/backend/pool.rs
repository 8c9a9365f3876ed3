//! One pool of connections per backend server. Each idle connection remembers the database
//! and session-state fingerprint applied to it, so a checkout prefers a connection that
//! already carries the client's state and replays state only when it differs.

use super::state::SessionState;
use crate::error::ProxyError;
use myshard_config::{Config, ShardConfig};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Timing settings for a pool.
#[derive(Debug, Clone)]
struct PoolSettings {
    connect_timeout: Duration,
    checkout_timeout: Duration,
    idle_timeout: Duration,
    ping_after_idle: Duration,
}

struct IdleConn {
    conn: Conn,
    database: Option<String>,
    fingerprint: u64,
    since: Instant,
}

/// A pool of connections to one backend server.
pub struct BackendPool {
    shard: String,
    addr: String,
    opts: Opts,
    settings: PoolSettings,
    idle: Mutex<VecDeque<IdleConn>>,
    permits: Arc<Semaphore>,
    max: usize,
    statements: AtomicU64,
}

/// A connection checked out of a pool. Give it back with [`BackendPool::release`]; dropping
/// it instead closes it (the safe choice when its state is unknown).
pub struct PooledConn {
    conn: Option<Conn>,
    database: Option<String>,
    fingerprint: u64,
    pool: Arc<BackendPool>,
    _permit: OwnedSemaphorePermit,
}

impl PooledConn {
    /// The driver connection.
    pub fn conn(&mut self) -> Result<&mut Conn, ProxyError> {
        let shard = &self.pool.shard;
        self.conn
            .as_mut()
            .ok_or_else(|| ProxyError::ShardUnavailable {
                shard: shard.clone(),
                reason: "connection already closed".into(),
            })
    }

    /// The shard this connection belongs to.
    pub fn shard(&self) -> &str {
        &self.pool.shard
    }

    /// Records that the connection now carries this session state (after a `SET` ran on it).
    pub fn set_fingerprint(&mut self, fingerprint: u64) {
        self.fingerprint = fingerprint;
    }

    /// Whether the backend reported an open transaction in its last OK/EOF packet.
    pub fn backend_in_transaction(&self) -> bool {
        self.conn
            .as_ref()
            .and_then(|c| c.last_ok_packet())
            .is_some_and(|ok| {
                ok.status_flags()
                    .contains(mysql_common::constants::StatusFlags::SERVER_STATUS_IN_TRANS)
            })
    }

    /// Records a COM_RESET_CONNECTION done outside [`PooledConn::prepare`]: defaults again,
    /// and the database is re-selected before the next use.
    pub fn mark_reset(&mut self) {
        self.fingerprint = 0;
        self.database = Some(String::new());
    }

    /// Counts a statement run on this backend.
    pub fn count_statement(&self) {
        self.pool.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes the connection carry `database` and `state`, in one round trip when both differ.
    pub async fn prepare(
        &mut self,
        database: Option<&str>,
        state: &SessionState,
    ) -> Result<(), ProxyError> {
        let shard = self.pool.shard.clone();
        if database.is_none() && self.database.is_some() {
            // Only COM_CHANGE_USER unselects a database; it also resets session state.
            let conn = self.conn()?;
            conn.change_user(Default::default())
                .await
                .map_err(|e| ProxyError::from_driver(&shard, e))?;
            self.database = None;
            self.fingerprint = 0;
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| ProxyError::ShardUnavailable {
                shard: shard.clone(),
                reason: "connection already closed".into(),
            })?;
        let mut sql = String::new();
        if self.fingerprint != state.fingerprint() {
            if self.fingerprint != 0 {
                conn.reset()
                    .await
                    .map_err(|e| ProxyError::from_driver(&shard, e))?;
                self.database = Some(String::new());
            }
            if let Some(set) = state.to_sql() {
                sql.push_str(&set);
                sql.push(';');
            }
        }
        if let Some(db) = database {
            if self.database.as_deref() != Some(db) {
                sql.push_str(&format!("USE `{}`;", db.replace('`', "``")));
            }
        }
        if !sql.is_empty() {
            conn.query_drop(sql)
                .await
                .map_err(|e| ProxyError::from_driver(&shard, e))?;
        }
        self.fingerprint = state.fingerprint();
        self.database = database.map(str::to_string);
        Ok(())
    }
}

impl BackendPool {
    fn new(shard: &ShardConfig, addr: &str, config: &Config, found_rows: bool) -> Arc<Self> {
        let d = &config.backend;
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "3306"));
        let opts = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port.parse().unwrap_or(3306))
            .user(Some(shard.user.clone().unwrap_or_else(|| d.user.clone())))
            .pass(Some(
                shard.password.clone().unwrap_or_else(|| d.password.clone()),
            ))
            .client_found_rows(found_rows)
            .tcp_nodelay(true)
            .stmt_cache_size(0)
            .into();
        let max = shard.pool_max.unwrap_or(d.pool_max);
        Arc::new(BackendPool {
            shard: shard.name.clone(),
            addr: addr.to_string(),
            opts,
            settings: PoolSettings {
                connect_timeout: Duration::from_millis(d.connect_timeout_ms),
                checkout_timeout: Duration::from_millis(d.checkout_timeout_ms),
                idle_timeout: Duration::from_secs(d.idle_timeout_s),
                ping_after_idle: Duration::from_millis(d.ping_after_idle_ms),
            },
            idle: Mutex::new(VecDeque::new()),
            permits: Arc::new(Semaphore::new(max)),
            max,
            statements: AtomicU64::new(0),
        })
    }

    fn unavailable(&self, reason: impl Into<String>) -> ProxyError {
        ProxyError::ShardUnavailable {
            shard: self.shard.clone(),
            reason: format!("{} ({})", reason.into(), self.addr),
        }
    }

    /// Takes a connection for a client with this database and state.
    pub async fn checkout(
        self: &Arc<Self>,
        database: Option<&str>,
        state: &SessionState,
    ) -> Result<PooledConn, ProxyError> {
        let permit = tokio::time::timeout(
            self.settings.checkout_timeout,
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| self.unavailable("timed out waiting for a free backend connection"))?
        .map_err(|_| self.unavailable("pool closed"))?;
        loop {
            let candidate = self.take_idle(database, state.fingerprint());
            let Some(idle) = candidate else { break };
            let mut conn = idle.conn;
            if idle.since.elapsed() >= self.settings.ping_after_idle
                && tokio::time::timeout(self.settings.connect_timeout, conn.ping())
                    .await
                    .map_or(true, |r| r.is_err())
            {
                continue;
            }
            let mut pooled = PooledConn {
                conn: Some(conn),
                database: idle.database,
                fingerprint: idle.fingerprint,
                pool: self.clone(),
                _permit: permit,
            };
            pooled.prepare(database, state).await?;
            return Ok(pooled);
        }
        let conn =
            tokio::time::timeout(self.settings.connect_timeout, Conn::new(self.opts.clone()))
                .await
                .map_err(|_| self.unavailable("connect timed out"))?
                .map_err(|e| match e {
                    mysql_async::Error::Server(_) => ProxyError::from_driver(&self.shard, e),
                    other => self.unavailable(other.to_string()),
                })?;
        let mut pooled = PooledConn {
            conn: Some(conn),
            database: None,
            fingerprint: 0,
            pool: self.clone(),
            _permit: permit,
        };
        pooled.prepare(database, state).await?;
        Ok(pooled)
    }

    fn take_idle(&self, database: Option<&str>, fingerprint: u64) -> Option<IdleConn> {
        let mut idle = self.idle.lock().ok()?;
        let exact = idle
            .iter()
            .rposition(|c| c.fingerprint == fingerprint && c.database.as_deref() == database);
        match exact {
            Some(i) => idle.remove(i),
            None => idle.pop_back(),
        }
    }

    /// Returns a connection whose results were fully read.
    pub fn release(mut conn: PooledConn) {
        let Some(c) = conn.conn.take() else { return };
        if c.is_disconnected() {
            return;
        }
        if let Ok(mut idle) = conn.pool.idle.lock() {
            idle.push_back(IdleConn {
                conn: c,
                database: conn.database.take(),
                fingerprint: conn.fingerprint,
                since: Instant::now(),
            });
        }
    }

    /// Closes connections idle for longer than the idle timeout.
    pub fn reap(&self) {
        let timeout = self.settings.idle_timeout;
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|c| c.since.elapsed() < timeout);
        }
    }

    /// (idle, in use, max) connection counts.
    pub fn usage(&self) -> (usize, usize, usize) {
        let idle = self.idle.lock().map(|i| i.len()).unwrap_or(0);
        let in_use = self.max - self.permits.available_permits();
        (idle, in_use, self.max)
    }

    /// Statements run on this backend so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The backend's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

/// All backend pools, by shard. Each primary has two pools: connections opened with
/// CLIENT_FOUND_ROWS and without, since that flag changes affected-row counts and can only be
/// chosen at connect time.
pub struct Backends {
    primaries: HashMap<(String, bool), Arc<BackendPool>>,
}

impl Backends {
    /// Pools for every shard primary in the config.
    pub fn new(config: &Config) -> Self {
        let mut primaries = HashMap::new();
        for shard in &config.shards {
            for found_rows in [false, true] {
                primaries.insert(
                    (shard.name.clone(), found_rows),
                    BackendPool::new(shard, &shard.primary, config, found_rows),
                );
            }
        }
        Backends { primaries }
    }

    /// The primary's pool of a shard.
    pub fn primary(&self, shard: &str, found_rows: bool) -> Result<&Arc<BackendPool>, ProxyError> {
        self.primaries
            .get(&(shard.to_string(), found_rows))
            .ok_or_else(|| ProxyError::ShardUnavailable {
                shard: shard.to_string(),
                reason: "not in the shard map".into(),
            })
    }

    /// Closes idle connections past their idle timeout.
    pub fn reap(&self) {
        for pool in self.primaries.values() {
            pool.reap();
        }
    }

    /// Every pool, for statistics.
    pub fn pools(&self) -> impl Iterator<Item = &Arc<BackendPool>> {
        self.primaries.values()
    }
}
