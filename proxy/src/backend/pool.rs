//! One pool of connections per backend server. Each idle connection remembers the database
//! and session-state fingerprint applied to it, so a checkout prefers a connection that
//! already carries the client's state and replays state only when it differs.

use super::health::Health;
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

/// A session-state fingerprint no client state has: the connection's state is unknown, and
/// the next checkout resets it.
pub const UNKNOWN_STATE: u64 = u64::MAX;

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
    /// Checkouts that found no free connection within `checkout_timeout_ms`.
    exhausted: AtomicU64,
    health: Arc<Health>,
    replica: bool,
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

    /// Records a COM_RESET_CONNECTION done outside [`PooledConn::prepare`]: defaults again,
    /// and the database is re-selected before the next use.
    pub fn mark_reset(&mut self) {
        self.fingerprint = 0;
        self.database = Some(String::new());
    }

    /// The backend's id for this connection (for `KILL QUERY`).
    pub fn backend_id(&self) -> Option<u32> {
        self.conn.as_ref().map(|c| c.id())
    }

    /// The pool this connection belongs to.
    pub fn pool(&self) -> Arc<BackendPool> {
        self.pool.clone()
    }

    /// Whether this connection goes to a replica.
    pub fn is_replica(&self) -> bool {
        self.pool.replica
    }

    /// Takes this connection's server out of rotation until the health checker sees it up.
    pub fn mark_backend_down(&self) {
        self.pool.health.mark_down();
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.pool.addr
    }

    /// Counts a statement run on this backend.
    pub fn count_statement(&self) {
        self.pool.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes a connection the session keeps (its transaction's, its table locks', its
    /// temporary tables') carry `database` and `state` without resetting it: a reset or
    /// COM_CHANGE_USER would end its transaction and drop its locks and temporary tables.
    /// Without a database it stays in the one it has; a state that changed is set over the
    /// one it has (what a session sets only ever adds to or replaces its state).
    pub async fn prepare_kept(
        &mut self,
        database: Option<&str>,
        state: &SessionState,
    ) -> Result<(), ProxyError> {
        let mut sql = String::new();
        if self.fingerprint != state.fingerprint() {
            if let Some(set) = state.to_sql() {
                sql.push_str(&set);
                sql.push(';');
            }
        }
        let use_db = database.filter(|db| self.database.as_deref() != Some(*db));
        if let Some(db) = use_db {
            sql.push_str(&format!("USE {};", myshard_router::text::quote_ident(db)));
        }
        if !sql.is_empty() {
            let shard = self.pool.shard.clone();
            self.conn()?
                .query_drop(sql)
                .await
                .map_err(|e| ProxyError::from_driver(&shard, e))?;
        }
        if let Some(db) = use_db {
            self.database = Some(db.to_string());
        }
        self.fingerprint = state.fingerprint();
        Ok(())
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
                sql.push_str(&format!("USE {};", myshard_router::text::quote_ident(db)));
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
    fn new(
        shard: &ShardConfig,
        addr: &str,
        config: &Config,
        found_rows: bool,
        health: Arc<Health>,
        replica: bool,
    ) -> Arc<Self> {
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
            exhausted: AtomicU64::new(0),
            health,
            replica,
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
        .map_err(|_| {
            // Every connection is busy: the server is fine, and stays in rotation.
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            ProxyError::sql(
                crate::error::codes::TOO_MANY_CONNECTIONS,
                "08004",
                format!(
                    "Too many connections: all {} backend connections to shard '{}' ({}) stayed busy for backend.checkout_timeout_ms = {} ms; raise pool_max or shorten transactions",
                    self.max,
                    self.shard,
                    self.addr,
                    self.settings.checkout_timeout.as_millis()
                ),
            )
        })?
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
        // A server that cannot be connected to leaves rotation until its health check
        // answers again: failing to connect is the one failure no client can cause.
        let conn =
            tokio::time::timeout(self.settings.connect_timeout, Conn::new(self.opts.clone()))
                .await
                .map_err(|_| {
                    self.health.mark_down();
                    self.unavailable("connect timed out")
                })?
                .map_err(|e| match e {
                    mysql_async::Error::Server(_) => ProxyError::from_driver(&self.shard, e),
                    other => {
                        self.health.mark_down();
                        self.unavailable(other.to_string())
                    }
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

    /// Stops the statement running on backend connection `id`, over a connection of its own.
    pub async fn kill_query(&self, id: u32) {
        let res =
            tokio::time::timeout(self.settings.connect_timeout, Conn::new(self.opts.clone())).await;
        if let Ok(Ok(mut c)) = res {
            if let Err(e) = c.query_drop(format!("KILL QUERY {id}")).await {
                tracing::warn!(backend = %self.addr, "KILL QUERY {id} failed: {e}");
            }
            let _ = c.disconnect().await;
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

    /// Checkouts that timed out waiting for a free connection so far.
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
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

/// One backend server: its pools (with and without CLIENT_FOUND_ROWS, which changes
/// affected-row counts and can only be chosen at connect time) and its health.
pub struct Server {
    /// `host:port`.
    pub addr: String,
    /// Whether this is a replica.
    pub replica: bool,
    pools: [Arc<BackendPool>; 2],
    /// What the health checker last saw.
    pub health: Arc<Health>,
}

impl Server {
    /// The pool for this client's CLIENT_FOUND_ROWS choice.
    pub fn pool(&self, found_rows: bool) -> &Arc<BackendPool> {
        &self.pools[usize::from(found_rows)]
    }

    fn in_use(&self) -> usize {
        self.pools.iter().map(|p| p.usage().1).sum()
    }
}

/// A shard's servers.
pub struct ShardServers {
    /// The primary.
    pub primary: Server,
    /// The replicas.
    pub replicas: Vec<Server>,
    /// Read weight of each replica.
    weights: Vec<u32>,
    next: std::sync::atomic::AtomicUsize,
}

/// All backend servers, by shard.
pub struct Backends {
    shards: HashMap<String, ShardServers>,
    policy: ReplicaPolicy,
    fallback_to_primary: bool,
}

/// How reads pick among a shard's usable replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaPolicy {
    /// In turn.
    RoundRobin,
    /// The replica with the fewest connections in use.
    LeastConnections,
}

impl Backends {
    /// Pools for every server of every shard in the config.
    pub fn new(config: &Config) -> Self {
        let server = |shard: &ShardConfig, addr: &str, replica: bool| {
            let health = Arc::new(Health::new(replica));
            Server {
                addr: addr.to_string(),
                replica,
                pools: [
                    BackendPool::new(shard, addr, config, false, health.clone(), replica),
                    BackendPool::new(shard, addr, config, true, health.clone(), replica),
                ],
                health,
            }
        };
        let shards = config
            .shards
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    ShardServers {
                        primary: server(s, &s.primary, false),
                        replicas: s.replicas.iter().map(|r| server(s, r, true)).collect(),
                        weights: (0..s.replicas.len())
                            .map(|i| s.replica_weights.get(i).copied().unwrap_or(1).max(1))
                            .collect(),
                        next: std::sync::atomic::AtomicUsize::new(0),
                    },
                )
            })
            .collect();
        let policy = match config.backend.replica_policy.as_str() {
            "least_connections" => ReplicaPolicy::LeastConnections,
            _ => ReplicaPolicy::RoundRobin,
        };
        Backends {
            shards,
            policy,
            fallback_to_primary: config.backend.fallback_to_primary,
        }
    }

    fn shard(&self, shard: &str) -> Result<&ShardServers, ProxyError> {
        self.shards
            .get(shard)
            .ok_or_else(|| ProxyError::ShardUnavailable {
                shard: shard.to_string(),
                reason: "not in the shard map".into(),
            })
    }

    /// The server a statement runs on: the primary, or for replica reads a usable replica
    /// chosen by the policy (the primary when none is usable and fallback is on). A primary
    /// the health checker saw down fails at once instead of waiting for a TCP timeout.
    pub fn server(
        &self,
        shard: &str,
        replica_read: bool,
        exclude: Option<&str>,
    ) -> Result<&Server, ProxyError> {
        let s = self.shard(shard)?;
        if replica_read {
            let usable: Vec<(&Server, u32)> = s
                .replicas
                .iter()
                .zip(s.weights.iter().copied())
                .filter(|(r, _)| r.health.usable() && Some(r.addr.as_str()) != exclude)
                .collect();
            if !usable.is_empty() {
                let pick = match self.policy {
                    ReplicaPolicy::RoundRobin => {
                        // Weighted: replica i takes weight_i turns out of every sum(weights).
                        let total: u64 = usable.iter().map(|(_, w)| *w as u64).sum();
                        let mut n = (s.next.fetch_add(1, Ordering::Relaxed) as u64) % total.max(1);
                        let mut chosen = usable[0].0;
                        for (r, w) in &usable {
                            if n < *w as u64 {
                                chosen = r;
                                break;
                            }
                            n -= *w as u64;
                        }
                        chosen
                    }
                    ReplicaPolicy::LeastConnections => usable
                        .iter()
                        .min_by_key(|(r, _)| r.in_use())
                        .map(|(r, _)| *r)
                        .unwrap_or(usable[0].0),
                };
                return Ok(pick);
            }
            if !self.fallback_to_primary && !s.replicas.is_empty() {
                return Err(ProxyError::ShardUnavailable {
                    shard: shard.to_string(),
                    reason: "no replica is usable and fallback_to_primary is off".into(),
                });
            }
        }
        if s.primary.health.is_offline() {
            return Err(ProxyError::ShardUnavailable {
                shard: shard.to_string(),
                reason: format!(
                    "primary {} is offline (SET BACKEND … OFFLINE)",
                    s.primary.addr
                ),
            });
        }
        if !s.primary.health.is_up() {
            return Err(ProxyError::ShardUnavailable {
                shard: shard.to_string(),
                reason: format!("primary {} is down", s.primary.addr),
            });
        }
        Ok(&s.primary)
    }

    /// Every server, for health checks and statistics.
    pub fn servers(&self) -> impl Iterator<Item = (&str, &Server)> {
        self.shards.iter().flat_map(|(name, s)| {
            std::iter::once(&s.primary)
                .chain(s.replicas.iter())
                .map(move |srv| (name.as_str(), srv))
        })
    }

    /// Closes idle connections past their idle timeout.
    pub fn reap(&self) {
        for pool in self.pools() {
            pool.reap();
        }
    }

    /// Every pool, for statistics.
    pub fn pools(&self) -> impl Iterator<Item = &Arc<BackendPool>> {
        self.servers().flat_map(|(_, s)| s.pools.iter())
    }
}
