//! Prometheus metrics and the `/metrics` endpoint. Counters are updated on the statement path;
//! gauges (connections, pools, health, lag) are read from the live state at scrape time.

use crate::server::Shared;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every collector myshard registers.
pub struct Metrics {
    registry: Registry,
    /// Statements by kind, route (single/scatter) and shard.
    pub statements: IntCounterVec,
    /// End-to-end statement latency by route.
    pub latency: HistogramVec,
    /// Backend statement latency by shard.
    pub shard_latency: HistogramVec,
    /// Bytes of rows cross-shard merges buffered.
    pub merge_bytes: IntCounter,
    /// Errors sent to clients, by MySQL error code.
    pub errors: IntCounterVec,
    /// Rows the cross-shard merger produced.
    pub merge_rows: IntCounter,
    /// Statements refused by a rate limit.
    pub throttled: IntCounter,
    /// Non-core statements shed.
    pub shed: IntCounter,
    /// Transactions over several shards rolled back because a lock wait exceeded
    /// `transactions.lock_wait_timeout_s` (suspected distributed deadlocks).
    pub lock_wait_aborts: IntCounter,
    clients: IntGauge,
    plan_cache: IntCounterVec,
    plan_cache_entries: IntGauge,
    parse_cache: IntCounterVec,
    /// Reads of a session after its own write, by where they went.
    pub read_your_writes: IntCounterVec,
    pool: IntGaugeVec,
    pool_exhausted: IntCounterVec,
    up: IntGaugeVec,
    usable: IntGaugeVec,
    lag: IntGaugeVec,
}

fn must<T>(r: Result<T, prometheus::Error>, what: &str) -> T {
    match r {
        Ok(v) => v,
        // Collector definitions are constants: failing here is a programming error.
        Err(e) => panic!("invariant: metric {what} is well-formed: {e}"),
    }
}

impl Metrics {
    /// Creates and registers the collectors.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("myshard".into()), None).unwrap_or_default();
        let statements = must(
            IntCounterVec::new(
                Opts::new(
                    "statements_total",
                    "Statements run, by kind, route and shard",
                ),
                &["kind", "route", "shard"],
            ),
            "statements_total",
        );
        let latency = must(
            HistogramVec::new(
                HistogramOpts::new("statement_duration_seconds", "End-to-end statement latency")
                    .buckets(vec![
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0, 2.5, 5.0,
                    ]),
                &["route"],
            ),
            "statement_duration_seconds",
        );
        let shard_latency = must(
            HistogramVec::new(
                HistogramOpts::new(
                    "shard_statement_duration_seconds",
                    "Latency of statements on each shard",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0,
                ]),
                &["shard"],
            ),
            "shard_statement_duration_seconds",
        );
        let merge_bytes = must(
            IntCounter::new(
                "merge_bytes_total",
                "Bytes of rows buffered by cross-shard merges",
            ),
            "merge_bytes_total",
        );
        let errors = must(
            IntCounterVec::new(
                Opts::new("errors_total", "Errors sent to clients, by MySQL code"),
                &["code"],
            ),
            "errors_total",
        );
        let merge_rows = must(
            IntCounter::new("merge_rows_total", "Rows produced by cross-shard merges"),
            "merge_rows_total",
        );
        let shed = must(
            IntCounter::new("shed_total", "Non-core statements shed"),
            "shed_total",
        );
        let throttled = must(
            IntCounter::new("throttled_total", "Statements refused by a rate limit"),
            "throttled_total",
        );
        let lock_wait_aborts = must(
            IntCounter::new(
                "distributed_lock_wait_aborts_total",
                "Transactions over several shards rolled back after a lock wait exceeded transactions.lock_wait_timeout_s (suspected distributed deadlocks)",
            ),
            "distributed_lock_wait_aborts_total",
        );
        let clients = must(
            IntGauge::new("client_connections", "Client connections being served"),
            "client_connections",
        );
        let plan_cache = must(
            IntCounterVec::new(
                Opts::new(
                    "plan_cache_total",
                    "Statements given the kept plan of their shape (hit), planned (miss), and shapes dropped for room (eviction)",
                ),
                &["event"],
            ),
            "plan_cache_total",
        );
        let plan_cache_entries = must(
            IntGauge::new("plan_cache_entries", "Statement shapes whose plan is kept"),
            "plan_cache_entries",
        );
        let read_your_writes = must(
            IntCounterVec::new(
                Opts::new(
                    "read_your_writes_total",
                    "Reads of a shard after the session wrote to it: on a replica known to have the write (replica_known), on a replica after waiting for it (replica_after_wait), or on the primary because no replica had it in time (primary)",
                ),
                &["outcome"],
            ),
            "read_your_writes_total",
        );
        let parse_cache = must(
            IntCounterVec::new(
                Opts::new(
                    "parse_cache_total",
                    "Statements the planner took from a kept parse of their shape (hit) or parsed (miss), and shapes dropped for room (eviction)",
                ),
                &["event"],
            ),
            "parse_cache_total",
        );
        let pool = must(
            IntGaugeVec::new(
                Opts::new("backend_pool_connections", "Pooled backend connections"),
                &["backend", "state"],
            ),
            "backend_pool_connections",
        );
        let pool_exhausted = must(
            IntCounterVec::new(
                Opts::new(
                    "backend_pool_exhausted_total",
                    "Checkouts that found every backend connection busy for checkout_timeout_ms (ERR 1040)",
                ),
                &["backend"],
            ),
            "backend_pool_exhausted_total",
        );
        let up = must(
            IntGaugeVec::new(
                Opts::new("backend_up", "Whether the backend answers health checks"),
                &["shard", "backend", "role"],
            ),
            "backend_up",
        );
        let usable = must(
            IntGaugeVec::new(
                Opts::new(
                    "backend_in_rotation",
                    "Whether the backend takes statements",
                ),
                &["shard", "backend", "role"],
            ),
            "backend_in_rotation",
        );
        let lag = must(
            IntGaugeVec::new(
                Opts::new("replica_lag_seconds", "Replication lag (-1 unknown)"),
                &["shard", "backend"],
            ),
            "replica_lag_seconds",
        );
        for c in [
            Box::new(statements.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(errors.clone()),
            Box::new(shard_latency.clone()),
            Box::new(merge_bytes.clone()),
            Box::new(merge_rows.clone()),
            Box::new(throttled.clone()),
            Box::new(shed.clone()),
            Box::new(lock_wait_aborts.clone()),
            Box::new(clients.clone()),
            Box::new(plan_cache.clone()),
            Box::new(plan_cache_entries.clone()),
            Box::new(parse_cache.clone()),
            Box::new(read_your_writes.clone()),
            Box::new(pool.clone()),
            Box::new(pool_exhausted.clone()),
            Box::new(up.clone()),
            Box::new(usable.clone()),
            Box::new(lag.clone()),
        ] {
            must(registry.register(c), "registration");
        }
        Metrics {
            registry,
            statements,
            latency,
            shard_latency,
            merge_bytes,
            errors,
            merge_rows,
            throttled,
            shed,
            lock_wait_aborts,
            clients,
            plan_cache,
            plan_cache_entries,
            parse_cache,
            read_your_writes,
            pool,
            pool_exhausted,
            up,
            usable,
            lag,
        }
    }

    /// The Prometheus text exposition of every metric, with gauges refreshed from `shared`.
    pub fn render(&self, shared: &Shared) -> String {
        self.clients
            .set(shared.active.load(std::sync::atomic::Ordering::Relaxed) as i64);
        // The cache belongs to the shard map in force (a reload starts a new one): counters
        // only move forward.
        let map = shared.map();
        let plans = map.plans.stats();
        let parses = map.router.cache_stats();
        for (counter, stats) in [(&self.plan_cache, plans), (&self.parse_cache, parses)] {
            for (event, now) in [
                ("hit", stats.hits),
                ("miss", stats.misses),
                ("eviction", stats.evictions),
            ] {
                let c = counter.with_label_values(&[event]);
                c.inc_by(now.saturating_sub(c.get()));
            }
        }
        self.plan_cache_entries.set(plans.size as i64);
        let backends = shared.backends();
        self.pool.reset();
        for pool in backends.pools() {
            let exhausted = self.pool_exhausted.with_label_values(&[pool.addr()]);
            exhausted.inc_by(pool.exhausted().saturating_sub(exhausted.get()));
            let (idle, in_use, _) = pool.usage();
            self.pool
                .with_label_values(&[pool.addr(), "idle"])
                .add(idle as i64);
            self.pool
                .with_label_values(&[pool.addr(), "in_use"])
                .add(in_use as i64);
        }
        for (shard, server) in backends.servers() {
            let role = if server.replica { "replica" } else { "primary" };
            self.up
                .with_label_values(&[shard, &server.addr, role])
                .set(i64::from(server.health.is_up()));
            self.usable
                .with_label_values(&[shard, &server.addr, role])
                .set(i64::from(server.health.usable()));
            if server.replica {
                self.lag
                    .with_label_values(&[shard, &server.addr])
                    .set(server.health.lag());
            }
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Serves `GET /metrics` over HTTP/1.1 until the process ends.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                socket.read(&mut buf),
            )
            .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body, ctype) = if request.starts_with("GET ")
                && (path == "/metrics" || path.starts_with("/metrics?"))
            {
                (
                    "200 OK",
                    shared.metrics.render(&shared),
                    "text/plain; version=0.0.4",
                )
            } else {
                (
                    "404 Not Found",
                    "only /metrics is served here\n".to_string(),
                    "text/plain",
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
