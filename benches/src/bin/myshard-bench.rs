//! `myshard-bench [--quick] [--out DIR]`: the end-to-end benchmark suite. Starts a local
//! cluster (4 shards, each with a replica) and myshard, loads data, and measures each
//! workload through myshard, directly against one MariaDB holding the same rows, and through a
//! byte relay (HAProxy `mode tcp`) in front of that server: QPS, p50/p95/p99 latency, CPU time
//! per statement of myshard and of the relay (from /proc), myshard peak RSS, and the ratios of
//! myshard to direct and to the relay. Writes `report.json` and `report.md` to DIR (default
//! `target/bench-report`). Exits non-zero only when a workload fails.

use myshard_tests::cluster::sql;
use myshard_tests::{Cluster, ClusterSpec, Proxy, Relay};
use mysql_async::prelude::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct Args {
    quick: bool,
    out: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        quick: false,
        out: PathBuf::from("target/bench-report"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--quick" => a.quick = true,
            "--out" => a.out = it.next().map(PathBuf::from).unwrap_or(a.out),
            other => {
                eprintln!("unknown argument {other}; usage: myshard-bench [--quick] [--out DIR]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// CPU time (user + system) of a process, in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is index 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// A /proc/<pid>/status field in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Result of one workload against one target.
#[derive(Debug, Clone, Default)]
struct Run {
    statements: u64,
    seconds: f64,
    latencies_ms: Vec<f64>,
    errors: u64,
    /// Deadlocks and lock-wait timeouts sysbench retried (its "ignored errors"): part of
    /// a read-write workload on any server, not failures.
    retried: u64,
}

impl Run {
    fn qps(&self) -> f64 {
        self.statements as f64 / self.seconds.max(1e-9)
    }

    fn json(&mut self) -> Value {
        self.latencies_ms
            .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        json!({
            "statements": self.statements,
            "errors": self.errors,
            "retried_lock_conflicts": self.retried,
            "qps": (self.qps() * 10.0).round() / 10.0,
            "p50_ms": percentile(&self.latencies_ms, 0.50),
            "p95_ms": percentile(&self.latencies_ms, 0.95),
            "p99_ms": percentile(&self.latencies_ms, 0.99),
        })
    }
}

fn opts(port: u16, user: &str, password: &str, db: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(db))
        .prefer_socket(false)
        .into()
}

/// The value of counter `name{label="value"}` in myshard's metrics on `port` (0 if absent).
fn metric(port: u16, series: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Read-your-writes: `clients` connections each insert a row and read it back at once,
/// `pairs` times. Returns the run (one statement per pair counted twice) and the reads that
/// did not see their own row.
async fn insert_then_select(opts: mysql_async::Opts, clients: usize, pairs: u64) -> (Run, u64) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut stale = 0u64;
            let mut conn = match mysql_async::Conn::new(opts).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("connect failed: {e}");
                    run.errors += 1;
                    return (run, stale);
                }
            };
            for i in 0..pairs {
                // Far above the ids the other workloads insert.
                let id = 1_000_000_000 + c as u64 * 1_000_000 + i;
                let t = Instant::now();
                let wrote = conn
                    .query_drop(format!(
                        "INSERT INTO items (id, grp, v, name) VALUES ({id}, 0, {i}, 'ryw')"
                    ))
                    .await;
                let read: Result<Option<i64>, _> = conn
                    .query_first(format!("SELECT v FROM items WHERE id = {id}"))
                    .await;
                match (wrote, read) {
                    (Ok(()), Ok(v)) => {
                        if v != Some(i as i64) {
                            stale += 1;
                        }
                        run.statements += 2;
                        run.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => run.errors += 1,
                }
            }
            (run, stale)
        }));
    }
    let mut total = Run::default();
    let mut stale = 0;
    for t in tasks {
        if let Ok((r, s)) = t.await {
            total.statements += r.statements;
            total.errors += r.errors;
            total.latencies_ms.extend(r.latencies_ms);
            stale += s;
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    (total, stale)
}

/// Runs `make_sql(i)` on `clients` connections for `duration`, recording latencies.
async fn closed_loop(
    opts: mysql_async::Opts,
    clients: usize,
    duration: Duration,
    make_sql: fn(u64) -> String,
) -> Run {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut conn = match mysql_async::Conn::new(opts).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("connect failed: {e}");
                    run.errors += 1;
                    return run;
                }
            };
            let mut i = c as u64 * 1_000_003;
            while Instant::now() < deadline {
                i += 1;
                let sql = make_sql(i);
                let t = Instant::now();
                match conn.query_drop(sql).await {
                    Ok(()) => {
                        run.statements += 1;
                        run.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    Err(e) => {
                        if run.errors == 0 {
                            eprintln!("statement failed: {e}");
                        }
                        run.errors += 1;
                    }
                }
            }
            run
        }));
    }
    let mut total = Run::default();
    for t in tasks {
        if let Ok(r) = t.await {
            total.statements += r.statements;
            total.errors += r.errors;
            total.latencies_ms.extend(r.latencies_ms);
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

/// Runs sysbench and reads its totals and latency histogram.
fn sysbench(
    workload: &str,
    port: u16,
    user: &str,
    password: &str,
    db: &str,
    seconds: u64,
    threads: u32,
) -> Run {
    let out = Command::new("sysbench")
        .arg(workload)
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--db-ps-mode=disable",
            "--tables=4",
            "--table-size=10000",
            "--histogram=on",
            "--report-interval=0",
        ])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-user={user}"))
        .arg(format!("--mysql-password={password}"))
        .arg(format!("--mysql-db={db}"))
        .arg(format!("--time={seconds}"))
        .arg(format!("--threads={threads}"))
        .arg("run")
        .output();
    let mut run = Run::default();
    let Ok(out) = out else {
        run.errors = 1;
        return run;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "sysbench {workload} failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run.errors = 1;
    }
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("total:") {
            run.statements = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        if let Some(rest) = t.strip_prefix("ignored errors:") {
            run.retried += rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        if let Some(rest) = t.strip_prefix("total time:") {
            run.seconds = rest
                .trim()
                .trim_end_matches('s')
                .parse()
                .unwrap_or(seconds as f64);
        }
        // Histogram lines: "   0.301 |****   1234" — expand into a latency sample set.
        if let Some((value, rest)) = t.split_once('|') {
            if let (Ok(v), Some(count)) = (
                value.trim().parse::<f64>(),
                rest.split_whitespace()
                    .last()
                    .and_then(|c| c.parse::<usize>().ok()),
            ) {
                run.latencies_ms
                    .extend(std::iter::repeat_n(v, count.min(1_000_000)));
            }
        }
    }
    run
}

fn sysbench_prepare(port: u16, user: &str, password: &str, db: &str) -> bool {
    Command::new("sysbench")
        .arg("oltp_read_write")
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--db-ps-mode=disable",
            "--tables=4",
            "--table-size=10000",
        ])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-user={user}"))
        .arg(format!("--mysql-password={password}"))
        .arg(format!("--mysql-db={db}"))
        .arg("prepare")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

const MAP: &str = r#"
[[users]]
name = "bench"
password = "bench"
auth_plugin = "mysql_native_password"
schemas = ["sb", "bench"]

[[schemas]]
name = "sb"
default_shard = "s0"

[[schemas]]
name = "bench"
default_shard = "s0"

[[schemas.rules]]
name = "h"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.tables]]
name = "items"
rule = "h"
column = "id"
"#;

const ROWS: u64 = 20_000;

/// A workload: name, statement generator, concurrent clients.
type Workload = (&'static str, fn(u64) -> String, usize);

fn point_select(i: u64) -> String {
    format!("SELECT v, name FROM items WHERE id = {}", i % ROWS + 1)
}

fn order_by_limit(_: u64) -> String {
    "SELECT id, v FROM items ORDER BY v DESC, id LIMIT 100".into()
}

fn group_by(i: u64) -> String {
    format!(
        "SELECT grp, COUNT(*), SUM(v), AVG(v) FROM items WHERE v > {} GROUP BY grp",
        i % 10
    )
}

fn multi_insert(i: u64) -> String {
    let rows: Vec<String> = (0..50)
        .map(|r| format!("({}, {}, {r}, 'n')", 1_000_000 + i * 50 + r, r % 10))
        .collect();
    format!(
        "INSERT INTO items (id, grp, v, name) VALUES {}",
        rows.join(", ")
    )
}

/// Waits until every replica has applied what its primary wrote.
fn sync_all(cluster: &Cluster) -> Result<(), String> {
    (0..cluster.shards()).try_for_each(|s| cluster.sync_replicas(s))
}

/// One workload's report: myshard against the direct server and against the byte relay in
/// front of it, with QPS and CPU-per-statement ratios to both.
fn compared(
    name: &str,
    clients: usize,
    m: &mut Run,
    cpu: f64,
    d: &mut Run,
    r: &mut Run,
    relay_cpu: f64,
) -> Value {
    let per_statement = |cpu: f64, run: &Run| {
        if run.statements > 0 {
            (cpu * 1e6 / run.statements as f64).round()
        } else {
            0.0
        }
    };
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let (m_cpu, r_cpu) = (per_statement(cpu, m), per_statement(relay_cpu, r));
    eprintln!(
        "{name}: myshard {:.0} qps ({m_cpu} µs CPU/stmt), relay {:.0} qps ({r_cpu} µs), direct {:.0} qps",
        m.qps(),
        r.qps(),
        d.qps()
    );
    json!({
        "workload": name,
        "clients": clients,
        "myshard": m.json(),
        "direct": d.json(),
        "relay": r.json(),
        "ratio_qps": round3(m.qps() / d.qps().max(1e-9)),
        "ratio_qps_to_relay": round3(m.qps() / r.qps().max(1e-9)),
        "myshard_cpu_us_per_statement": m_cpu,
        "relay_cpu_us_per_statement": r_cpu,
        "ratio_cpu_to_relay": if r_cpu > 0.0 { round3(m_cpu / r_cpu) } else { 0.0 },
    })
}

fn main() {
    let a = args();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    let seconds = if a.quick { 5 } else { 30 };
    eprintln!("starting 4 shards with a replica each…");
    let cluster = match Cluster::start(ClusterSpec {
        shards: 4,
        replicas: 1,
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cluster: {e}");
            std::process::exit(1);
        }
    };
    let direct = cluster.primary_port(0);
    for s in 0..4 {
        let _ = sql(cluster.primary_port(s), "CREATE DATABASE sb; CREATE DATABASE bench; CREATE USER 'bench'@'%' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO 'bench'@'%'; CREATE USER 'bench'@'localhost' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO 'bench'@'localhost';");
    }
    let _ = sql(
        direct,
        "CREATE DATABASE direct_sb; CREATE DATABASE direct_bench; CREATE DATABASE relay_bench;",
    );
    let metrics_port = match myshard_tests::cluster::free_port() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("no free port for metrics: {e}");
            std::process::exit(1);
        }
    };
    let proxy = match Proxy::start(
        &cluster,
        // Measured as deployed: no re-parse of plan-cache hits.
        &format!("max_connections = 5000\nplan_cache_verify = false\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
        &format!("[backend]\nuser = \"root\"\n{MAP}"),
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("myshard: {e}");
            std::process::exit(1);
        }
    };
    let pid = proxy.pid().unwrap_or(0);
    // The floor for any proxy: a byte relay in front of the direct server.
    let relay = match Relay::start(direct) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relay: {e}");
            std::process::exit(1);
        }
    };
    let relay_pid = relay.pid();
    let mut failed = false;
    let mut results = Vec::new();
    runtime.block_on(async {
        // Data: items through myshard (sharded), directly into one server, and through the
        // relay into that server.
        let table = "CREATE TABLE items (id BIGINT PRIMARY KEY, grp INT, v INT, name VARCHAR(32), KEY (v))";
        let via = opts(proxy.port, "bench", "bench", "bench");
        let one = opts(direct, "bench", "bench", "direct_bench");
        // The same rows in a database of their own on the direct server: writes through the
        // relay do not collide with the direct run's.
        let relayed = opts(relay.port, "bench", "bench", "relay_bench");
        for (o, label) in [(&via, "myshard"), (&one, "direct"), (&relayed, "relay")] {
            let Ok(mut c) = mysql_async::Conn::new(o.clone()).await else {
                eprintln!("cannot connect ({label})");
                failed = true;
                return;
            };
            if let Err(e) = c.query_drop(table).await {
                eprintln!("create ({label}): {e}");
                failed = true;
                return;
            }
            for chunk in 0..(ROWS / 1000) {
                let rows: Vec<String> = (1..=1000).map(|r| {
                    let id = chunk * 1000 + r;
                    format!("({id}, {}, {}, 'name{}')", id % 10, (id * 7919) % 1000, id % 97)
                }).collect();
                if let Err(e) = c.query_drop(format!("INSERT INTO items (id, grp, v, name) VALUES {}", rows.join(", "))).await {
                    eprintln!("load ({label}): {e}");
                    failed = true;
                    return;
                }
            }
        }
        // Reads go to replicas: measure only once they hold the loaded rows.
        if let Err(e) = sync_all(&cluster) {
            eprintln!("{e}");
            failed = true;
            return;
        }
        let ours: [Workload; 4] = [
            ("point_select_sharded", point_select, 8),
            ("cross_shard_order_by_limit_100", order_by_limit, 4),
            ("cross_shard_group_by", group_by, 4),
            ("multi_row_insert_50_rows", multi_insert, 4),
        ];
        for (name, make, clients) in ours {
            let cpu0 = cpu_seconds(pid);
            let mut m = closed_loop(via.clone(), clients, Duration::from_secs(seconds), make).await;
            let cpu = cpu_seconds(pid) - cpu0;
            let mut d = closed_loop(one.clone(), clients, Duration::from_secs(seconds), make).await;
            let relay_cpu0 = cpu_seconds(relay_pid);
            let mut r = closed_loop(relayed.clone(), clients, Duration::from_secs(seconds), make).await;
            let relay_cpu = cpu_seconds(relay_pid) - relay_cpu0;
            failed |= m.errors > 0 || d.errors > 0 || r.errors > 0;
            results.push(compared(name, clients, &mut m, cpu, &mut d, &mut r, relay_cpu));
        }
        // 1,000 mostly idle connections and a few busy ones.
        let rss0 = status_kib(pid, "VmRSS");
        let mut idle = Vec::new();
        for _ in 0..1000 {
            match mysql_async::Conn::new(via.clone()).await {
                Ok(c) => idle.push(c),
                Err(e) => {
                    eprintln!("idle connection: {e}");
                    failed = true;
                    break;
                }
            }
        }
        let rss1 = status_kib(pid, "VmRSS");
        let cpu0 = cpu_seconds(pid);
        let mut m = closed_loop(via.clone(), 4, Duration::from_secs(seconds), point_select).await;
        let cpu = cpu_seconds(pid) - cpu0;
        failed |= m.errors > 0;
        results.push(json!({
            "workload": "1000_idle_connections_4_busy",
            "clients": 4,
            "myshard": m.json(),
            "idle_connections": idle.len(),
            "myshard_kib_per_idle_connection": (rss1.saturating_sub(rss0)) as f64 / idle.len().max(1) as f64,
            "myshard_cpu_us_per_statement": if m.statements > 0 { (cpu * 1e6 / m.statements as f64).round() } else { 0.0 },
        }));
        drop(idle);
        // Read-your-writes with the defaults: 16 clients insert a row and read it back at
        // once; none may miss its own row, and the report says how many of those reads
        // replicas served.
        let series = |o: &str| format!("myshard_read_your_writes_total{{outcome=\"{o}\"}}");
        let outcomes = ["replica_known", "replica_after_wait", "primary"];
        let before: Vec<u64> = outcomes.iter().map(|o| metric(metrics_port, &series(o))).collect();
        let pairs = if a.quick { 100 } else { 1000 };
        let cpu0 = cpu_seconds(pid);
        let (mut m, stale) = insert_then_select(via.clone(), 16, pairs).await;
        let cpu = cpu_seconds(pid) - cpu0;
        let counted: Vec<u64> = outcomes
            .iter()
            .zip(&before)
            .map(|(o, b)| metric(metrics_port, &series(o)).saturating_sub(*b))
            .collect();
        let reads = (16 * pairs) as f64;
        let on_replicas = (counted[0] + counted[1]) as f64;
        failed |= m.errors > 0 || stale > 0;
        results.push(json!({
            "workload": "read_your_writes_16_clients_insert_then_select",
            "clients": 16,
            "pairs": 16 * pairs,
            "stale_reads": stale,
            "reads_on_replicas_share": (on_replicas / reads * 1000.0).round() / 1000.0,
            "read_outcomes": {
                "replica_known": counted[0],
                "replica_after_wait": counted[1],
                "primary": counted[2],
            },
            "myshard": m.json(),
            "myshard_cpu_us_per_statement": if m.statements > 0 { (cpu * 1e6 / m.statements as f64).round() } else { 0.0 },
        }));
    });
    // sysbench, unsharded schema through myshard versus the same server directly.
    let have_sysbench = Command::new("sysbench").arg("--version").output().is_ok();
    if have_sysbench
        && sysbench_prepare(proxy.port, "bench", "bench", "sb")
        && sysbench_prepare(direct, "bench", "bench", "direct_sb")
        && sync_all(&cluster).map_err(|e| eprintln!("{e}")).is_ok()
    {
        for workload in ["oltp_point_select", "oltp_read_only", "oltp_read_write"] {
            let cpu0 = cpu_seconds(pid);
            let mut m = sysbench(workload, proxy.port, "bench", "bench", "sb", seconds, 8);
            let cpu = cpu_seconds(pid) - cpu0;
            let mut d = sysbench(workload, direct, "bench", "bench", "direct_sb", seconds, 8);
            let relay_cpu0 = cpu_seconds(relay_pid);
            let mut r = sysbench(
                workload,
                relay.port,
                "bench",
                "bench",
                "direct_sb",
                seconds,
                8,
            );
            let relay_cpu = cpu_seconds(relay_pid) - relay_cpu0;
            failed |= m.errors > 0 || d.errors > 0 || r.errors > 0;
            let name = format!("sysbench_{workload}");
            results.push(compared(&name, 8, &mut m, cpu, &mut d, &mut r, relay_cpu));
        }
    } else {
        eprintln!("sysbench is missing or could not prepare its tables (apt-get install sysbench)");
        failed = true;
    }
    let peak_rss = status_kib(pid, "VmHWM");
    let machine = format!(
        "{} CPUs, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_default()
    );
    let report = json!({
        "mode": if a.quick { "quick" } else { "full" },
        "seconds_per_run": seconds,
        "machine": machine,
        "myshard_peak_rss_kib": peak_rss,
        "workloads": results,
    });
    let mut md = format!(
        "# myshard benchmark ({} mode)\n\nMachine: {machine}. {seconds} s per run. myshard peak RSS: {} MiB.\n\nThe relay is HAProxy in `mode tcp` in front of the direct server (a byte relay: the floor for any proxy).\n\n| workload | clients | myshard QPS | relay QPS | direct QPS | ÷ relay | ÷ direct | myshard p50 / p95 / p99 ms | direct p50 / p95 / p99 ms | myshard CPU µs/stmt | relay CPU µs/stmt | CPU ÷ relay |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        if a.quick { "quick" } else { "full" },
        peak_rss / 1024
    );
    let mut notes = Vec::new();
    for w in report["workloads"].as_array().cloned().unwrap_or_default() {
        let lat = |v: &Value| {
            format!(
                "{:.2} / {:.2} / {:.2}",
                v["p50_ms"].as_f64().unwrap_or(0.0),
                v["p95_ms"].as_f64().unwrap_or(0.0),
                v["p99_ms"].as_f64().unwrap_or(0.0)
            )
        };
        let field = |v: Option<&Value>| v.map(|x| x.to_string()).unwrap_or_else(|| "–".into());
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            w["workload"].as_str().unwrap_or(""),
            w["clients"],
            w["myshard"]["qps"],
            field(w.get("relay").map(|r| &r["qps"])),
            field(w.get("direct").map(|d| &d["qps"])),
            field(w.get("ratio_qps_to_relay")),
            field(w.get("ratio_qps")),
            lat(&w["myshard"]),
            w.get("direct").map(lat).unwrap_or_else(|| "–".into()),
            w["myshard_cpu_us_per_statement"],
            field(w.get("relay_cpu_us_per_statement")),
            field(w.get("ratio_cpu_to_relay")),
        ));
        if let Some(share) = w.get("reads_on_replicas_share").and_then(|s| s.as_f64()) {
            notes.push(format!(
                "read-your-writes: {} insert-then-select pairs by 16 clients, {} stale reads; replicas served {:.1}% of the reads ({} after waiting for the write, {} on a replica known to have it), the primary {}; latency is per pair",
                w["pairs"],
                w["stale_reads"],
                share * 100.0,
                w["read_outcomes"]["replica_after_wait"],
                w["read_outcomes"]["replica_known"],
                w["read_outcomes"]["primary"],
            ));
        }
        if let Some(kib) = w
            .get("myshard_kib_per_idle_connection")
            .and_then(|k| k.as_f64())
        {
            notes.push(format!(
                "myshard memory per idle client connection: {kib:.1} KiB"
            ));
        }
    }
    for n in notes {
        md.push_str(&format!("\n{n}\n"));
    }
    let _ = std::fs::create_dir_all(&a.out);
    let _ = std::fs::write(
        a.out.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    let _ = std::fs::write(a.out.join("report.md"), &md);
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    println!("{md}");
    drop(relay);
    drop(proxy);
    drop(cluster);
    if failed {
        eprintln!("at least one workload failed");
        std::process::exit(1);
    }
}
