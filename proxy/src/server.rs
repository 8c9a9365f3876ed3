//! The server: shared state, the accept loop with its connection limit, and graceful
//! shutdown.

use crate::backend::Backends;
use crate::protocol::auth::Sha2Auth;
use crate::protocol::response::err_packet_pre_handshake;
use myshard_config::Config;
use myshard_router::columns::ColumnCatalog;
use myshard_router::Router;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// One version of the shard map with everything built from it. A reload swaps the whole
/// value at once; statements already running keep the version they started with.
pub struct MapState {
    /// The configuration.
    pub config: Arc<Config>,
    /// Its router.
    pub router: Router,
    /// Plans of statement shapes under this version.
    pub plans: Arc<myshard_sql_rewrite::plancache::PlanCache>,
    /// Its backend servers, pools and health.
    pub backends: Arc<Backends>,
    /// Stops this version's health checks once it is replaced.
    stop_health: watch::Sender<bool>,
}

impl MapState {
    fn build(config: Arc<Config>, columns: Arc<ColumnCatalog>) -> MapState {
        let backends = Arc::new(Backends::new(&config));
        let (stop_health, stopped) = watch::channel(false);
        crate::backend::health::spawn(backends.clone(), &config, stopped);
        MapState {
            router: Router::with_columns(config.clone(), columns),
            plans: Arc::new(myshard_sql_rewrite::plancache::PlanCache::new(
                config.server.plan_cache_size,
                config.server.plan_cache_verify,
            )),
            backends,
            config,
            stop_health,
        }
    }
}

/// State shared by every client connection.
pub struct Shared {
    map: std::sync::RwLock<Arc<MapState>>,
    config_path: Option<std::path::PathBuf>,
    /// RSA key and fast-auth cache for caching_sha2_password.
    pub sha2: Sha2Auth,
    /// TLS, when configured.
    pub tls: Option<TlsAcceptor>,
    next_conn_id: AtomicU32,
    /// myshard's own client sessions (SHOW PROCESSLIST, KILL).
    pub sessions: Arc<crate::sessions::Registry>,
    questions: AtomicU64,
    /// Client connections being served.
    pub active: AtomicUsize,
    started: Instant,
    identity: Vec<(String, String)>,
    ids: crate::ids::IdGenerator,
    /// Becomes true when shutdown begins.
    pub shutdown: watch::Receiver<bool>,
    /// Prometheus collectors.
    pub metrics: crate::metrics::Metrics,
    /// Query digests and the slow-query log.
    pub observer: crate::digest::Observer,
    /// Token buckets of the rate limits, by limit name: (tokens, last refill).
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, Instant)>>,
    /// Client connections per user.
    user_connections: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// The admin switch for shedding non-core statements.
    pub shedding: std::sync::atomic::AtomicBool,
    /// Statements running now (for automatic shedding).
    pub running: AtomicUsize,
    /// Protection rules added through the admin interface (beside the configured ones).
    pub runtime_rules: std::sync::RwLock<RuntimeRules>,
    /// XA ids and the decision log (transactions.mode = "xa").
    pub xa: Option<Arc<crate::xa::Xa>>,
}

/// Protection rules added at run time through the admin interface.
#[derive(Debug, Clone, Default)]
pub struct RuntimeRules {
    /// Extra rate limits.
    pub rate_limits: Vec<myshard_config::RateLimit>,
    /// Extra non-core classes.
    pub noncore: Vec<myshard_config::NonCore>,
}

/// A client connection counted against its user's cap; uncounted when dropped.
pub struct UserSlot {
    shared: Arc<Shared>,
    user: String,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.user_connections.lock() {
            if let Some(n) = m.get_mut(&self.user) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl Shared {
    /// Builds the shared state (loads TLS and RSA keys).
    pub fn new(
        config: Arc<Config>,
        config_path: Option<std::path::PathBuf>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Shared>, String> {
        let tls = match (&config.server.tls_cert, &config.server.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let sha2 =
            Sha2Auth::new(config.server.rsa_private_key.as_deref()).map_err(|e| e.to_string())?;
        let version = config.server.version.clone();
        let comment = crate::local::VERSION_COMMENT.to_string();
        let mut identity = vec![("version()".to_string(), version.clone())];
        for scope in ["@@", "@@global.", "@@session."] {
            identity.push((format!("{scope}version"), version.clone()));
            identity.push((format!("{scope}version_comment"), comment.clone()));
            identity.push((format!("{scope}socket"), String::new()));
        }
        let worker = config
            .server
            .worker_id
            .unwrap_or_else(|| rand::random::<u16>() & 0x3FF);
        let xa = match config.transactions.mode {
            myshard_config::TransactionMode::Xa => {
                let path = &config.transactions.decision_log;
                let log = crate::xa::DecisionLog::open(path).map_err(|e| {
                    format!("cannot open the XA decision log {}: {e}", path.display())
                })?;
                Some(Arc::new(crate::xa::Xa {
                    ids: crate::xa::XidSource::new(config.server.worker_id, path),
                    log,
                }))
            }
            myshard_config::TransactionMode::SingleShard => None,
        };
        Ok(Arc::new(Shared {
            xa,
            ids: crate::ids::IdGenerator::new(worker),
            identity,
            map: std::sync::RwLock::new(Arc::new(MapState::build(config, Arc::default()))),
            config_path,
            sha2,
            tls,
            next_conn_id: AtomicU32::new(1),
            sessions: Default::default(),
            questions: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            started: Instant::now(),
            shutdown,
            metrics: crate::metrics::Metrics::new(),
            observer: crate::digest::Observer::new(),
            buckets: std::sync::Mutex::new(std::collections::HashMap::new()),
            user_connections: std::sync::Mutex::new(std::collections::HashMap::new()),
            shedding: std::sync::atomic::AtomicBool::new(false),
            running: AtomicUsize::new(0),
            runtime_rules: std::sync::RwLock::new(RuntimeRules::default()),
        }))
    }

    /// The shard map version in force.
    pub fn map(&self) -> Arc<MapState> {
        self.map
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.map().config.clone()
    }

    /// The backends of the configuration in force.
    pub fn backends(&self) -> Arc<Backends> {
        self.map().backends.clone()
    }

    /// Re-reads the configuration file and swaps it in, if it is valid and moves no rows.
    /// Running statements finish on the old version; no client connection is dropped.
    pub fn reload(&self) -> Result<String, String> {
        let path = self
            .config_path
            .as_ref()
            .ok_or_else(|| "myshard was started without a configuration file".to_string())?;
        let new = Config::load(path).map_err(|e| e.to_string())?;
        let old = self.config();
        let mut refusals = Vec::new();
        let names = |c: &Config| c.shards.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        if names(&old) != names(&new) {
            refusals.push(format!(
                "the shards change ({:?} → {:?}); adding or removing shards moves rows, which needs resharding",
                names(&old),
                names(&new)
            ));
        }
        for s in &new.schemas {
            match old.schema(&s.name) {
                Some(o) if o != s => refusals.push(format!(
                    "schema '{}' changes its placement (default shard, rules, bounds, lookup entries or tables); that would move existing rows, which needs resharding",
                    s.name
                )),
                _ => {}
            }
        }
        for o in &old.schemas {
            if new.schema(&o.name).is_none() {
                refusals.push(format!("schema '{}' disappears", o.name));
            }
        }
        if old.server.listen != new.server.listen {
            refusals.push("server.listen cannot change without a restart".into());
        }
        if !refusals.is_empty() {
            return Err(format!(
                "reload refused, the running map stays:\n  {}",
                refusals.join("\n  ")
            ));
        }
        // The column catalog carries over: a reload moves no table.
        let state = Arc::new(MapState::build(
            Arc::new(new),
            self.router().columns().clone(),
        ));
        let old_state = match self.map.write() {
            Ok(mut m) => std::mem::replace(&mut *m, state),
            Err(p) => std::mem::replace(&mut *p.into_inner(), state),
        };
        let _ = old_state.stop_health.send(true);
        Ok(format!("configuration reloaded from {}", path.display()))
    }

    /// Result labels whose values describe myshard rather than a shard, with their values.
    pub fn identity_overrides(&self) -> &[(String, String)] {
        &self.identity
    }

    /// The id generator for auto-increment columns of sharded tables (lock-free).
    pub fn ids(&self) -> &crate::ids::IdGenerator {
        &self.ids
    }

    /// The router for the configuration in force.
    pub fn router(&self) -> Router {
        self.map().router.clone()
    }

    /// Counts a client connection of `user`; `Err(limit)` when the user is at its cap.
    pub fn user_slot(self: &Arc<Self>, user: &str) -> Result<UserSlot, usize> {
        let cap = self
            .config()
            .protection
            .max_connections_per_user
            .get(user)
            .copied();
        let mut m = self
            .user_connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = m.entry(user.to_string()).or_insert(0);
        if let Some(cap) = cap {
            if *n >= cap {
                return Err(cap);
            }
        }
        *n += 1;
        Ok(UserSlot {
            shared: self.clone(),
            user: user.to_string(),
        })
    }

    /// Takes a token from every rate limit that applies; the name and rate of the first
    /// exhausted limit otherwise.
    pub fn take_rate_tokens(
        &self,
        config: &Config,
        user: &str,
        sql: &str,
    ) -> Result<(), (String, f64)> {
        let runtime = self
            .runtime_rules
            .read()
            .map(|r| r.rate_limits.clone())
            .unwrap_or_default();
        let limits: Vec<&myshard_config::RateLimit> = config
            .protection
            .rate_limits
            .iter()
            .chain(runtime.iter())
            .collect();
        if limits.is_empty() {
            return Ok(());
        }
        let digest = if limits.iter().any(|l| l.digest.is_some()) {
            Some(crate::digest::digest(sql))
        } else {
            None
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for l in limits {
            if l.user.as_deref().is_some_and(|u| u != user) {
                continue;
            }
            if l.digest
                .as_deref()
                .is_some_and(|d| Some(d) != digest.as_deref())
            {
                continue;
            }
            let burst = l.burst.unwrap_or(l.qps).max(1.0);
            let (tokens, last) = buckets.entry(l.name.clone()).or_insert((burst, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * l.qps).min(burst);
            *last = now;
            if *tokens < 1.0 {
                return Err((l.name.clone(), l.qps));
            }
            *tokens -= 1.0;
        }
        Ok(())
    }

    /// The non-core class a statement belongs to, when shedding is on (by the admin switch,
    /// or automatically under too much concurrency).
    pub fn shed_class(&self, config: &Config, sql: &str) -> Option<String> {
        let p = &config.protection;
        // Cheap checks first: this runs for every statement.
        let auto = p.shed_when_concurrent_over > 0
            && self.running.load(Ordering::Relaxed) > p.shed_when_concurrent_over;
        if !auto && !self.shedding.load(Ordering::Relaxed) {
            return None;
        }
        let runtime = self
            .runtime_rules
            .read()
            .map(|r| r.noncore.clone())
            .unwrap_or_default();
        if p.noncore.is_empty() && runtime.is_empty() {
            return None;
        }
        let digest = crate::digest::digest(sql);
        let words: Vec<String> = myshard_router::lexer::tokenize(sql)
            .iter()
            .filter_map(|t| t.ident().map(|w| w.to_ascii_lowercase()))
            .collect();
        p.noncore
            .iter()
            .chain(runtime.iter())
            .find(|c| {
                c.table
                    .as_ref()
                    .is_some_and(|t| words.contains(&t.to_ascii_lowercase()))
                    || c.pattern
                        .as_ref()
                        .is_some_and(|pat| digest.contains(&pat.to_ascii_uppercase()))
            })
            .map(|c| c.name.clone())
    }

    /// A new connection id.
    pub fn next_conn_id(&self) -> u32 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a client statement.
    pub fn count_question(&self) {
        self.questions.fetch_add(1, Ordering::Relaxed);
    }

    /// The COM_STATISTICS line.
    pub fn statistics(&self) -> String {
        let uptime = self.started.elapsed().as_secs().max(1);
        let questions = self.questions.load(Ordering::Relaxed);
        format!(
            "Uptime: {uptime}  Threads: {}  Questions: {questions}  Slow queries: 0  Opens: 0  Open tables: 0  Queries per second avg: {:.3}",
            self.active.load(Ordering::Relaxed),
            questions as f64 / uptime as f64
        )
    }
}

/// Accepts admin-interface clients until the process ends.
/// At most this many admin-port connections at once; more are refused before the handshake.
pub const ADMIN_MAX_CONNECTIONS: usize = 16;

/// Accepts admin-interface clients until the process ends.
pub async fn run_admin(listener: TcpListener, shared: Arc<Shared>) {
    let limit = Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS));
    loop {
        let Ok((socket, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = socket.set_nodelay(true);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            refuse_too_many(socket);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            crate::connection::serve(shared, socket, peer, true).await;
            drop(permit);
        });
    }
}

/// Answers a connection over the limit with ER_CON_COUNT_ERROR as its very first packet
/// (sequence id 0), then closes it.
fn refuse_too_many(mut socket: tokio::net::TcpStream) {
    tokio::spawn(async move {
        let payload = err_packet_pre_handshake(
            crate::error::codes::TOO_MANY_CONNECTIONS,
            "Too many connections",
        );
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
        frame.push(0);
        frame.extend_from_slice(&payload);
        let _ = socket.write_all(&frame).await;
        let _ = socket.shutdown().await;
    });
}

/// Accepts clients until shutdown, then waits for running statements up to the grace period.
pub async fn run(listener: TcpListener, shared: Arc<Shared>) {
    let limit = Arc::new(Semaphore::new(shared.config().server.max_connections));
    let mut shutdown = shared.shutdown.clone();
    let reaper = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let backends = shared.backends();
                backends.reap();
                for (shard, server) in backends.servers() {
                    tracing::debug!(
                        shard,
                        backend = %server.addr,
                        up = server.health.is_up(),
                        usable = server.health.usable(),
                        lag = server.health.lag(),
                        "backend health"
                    );
                }
                for pool in backends.pools() {
                    let (idle, in_use, max) = pool.usage();
                    tracing::debug!(
                        backend = pool.addr(),
                        idle,
                        in_use,
                        max,
                        statements = pool.statements(),
                        "backend pool"
                    );
                }
            }
        })
    };
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (socket, peer) = match accepted {
            Ok(s) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            refuse_too_many(socket);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.active.fetch_add(1, Ordering::Relaxed);
            crate::connection::serve(shared.clone(), socket, peer, false).await;
            shared.active.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    let deadline = Instant::now() + Duration::from_millis(shared.config().server.shutdown_grace_ms);
    while shared.active.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reaper.abort();
    tracing::info!(
        "shutdown complete; {} connection(s) cut at the deadline",
        shared.active.load(Ordering::Relaxed)
    );
}
