//! Reads on replicas, writes on primaries, and failures that hurt only their own shard. Each
//! test starts its own cluster (2 shards, each a primary with 2 replicas under real GTID
//! replication) because it stops and starts servers. Which server ran a statement is read
//! from each server's general log (statements carry a unique string literal).

use crate::env::connect_to;
use myshard_config::Config;
use myshard_router::{CountingIds, Router};
use myshard_tests::cluster::sql;
use myshard_tests::{Cluster, ClusterSpec, Proxy};
use mysql_async::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAP: &str = r#"
[[users]]
name = "app"
password = "app"
auth_plugin = "mysql_native_password"
schemas = ["rs"]

[[schemas]]
name = "rs"
default_shard = "s0"

[[schemas.rules]]
name = "h"
kind = "hash"
shards = ["s0", "s1"]

[[schemas.tables]]
name = "kv"
rule = "h"
column = "k"
"#;

struct Setup {
    cluster: Cluster,
    proxy: Proxy,
}

fn setup(backend: &str) -> Setup {
    setup_with(2, 2, backend)
}

fn setup_with(shards: usize, replicas: usize, backend: &str) -> Setup {
    setup_full(shards, replicas, "", backend)
}

/// A cluster, its `rs` schema, and myshard with `server` in `[server]` and `backend` in
/// `[backend]`.
fn setup_full(shards: usize, replicas: usize, server: &str, backend: &str) -> Setup {
    let cluster = Cluster::start(ClusterSpec { shards, replicas }).expect("cluster");
    for s in 0..shards {
        sql(
            cluster.primary_port(s),
            "CREATE DATABASE rs; CREATE TABLE rs.kv (k INT PRIMARY KEY, v VARCHAR(20));",
        )
        .expect("schema");
        sql(
            cluster.primary_port(s),
            &format!(
                "INSERT INTO rs.kv VALUES {}",
                (1..=200)
                    .map(|k| format!("({k}, 'v{k}')"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .expect("rows");
        cluster.sync_replicas(s).expect("replicas caught up");
        for port in std::iter::once(cluster.primary_port(s)).chain(cluster.replica_ports(s)) {
            sql(
                port,
                "SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1;",
            )
            .expect("general log");
        }
    }
    let proxy = Proxy::start(
        &cluster,
        server,
        &format!(
            "[backend]\nhealth_interval_ms = 200\nmax_replica_lag_s = 5\nconnect_timeout_ms = 1000\nping_after_idle_ms = 0\n{backend}\n{}",
            MAP.replace(
                "shards = [\"s0\", \"s1\"]",
                &format!("shards = [{}]", (0..shards).map(|i| format!("\"s{i}\"")).collect::<Vec<_>>().join(", "))
            )
        ),
    )
    .expect("proxy");
    Setup { cluster, proxy }
}

/// How many statements containing `marker` each port's general log has.
fn ran_on(port: u16, marker: &str) -> u64 {
    let (a, b) = marker.split_at(marker.len() / 2);
    sql(port, &format!("SELECT COUNT(*) FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE CONCAT('%', '{a}', '{b}', '%')"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A key on shard `s{shard}`.
fn key_on(proxy: &Proxy, shard: usize) -> i64 {
    keys_on(proxy, shard, 1, 1)[0]
}

/// `n` keys on shard `s{shard}`, from `from` on.
fn keys_on(proxy: &Proxy, shard: usize, from: i64, n: usize) -> Vec<i64> {
    let router = Router::new(Arc::new(Config::load(&proxy.config_path).expect("config")));
    (from..)
        .filter(|k| {
            router
                .route(
                    Some("rs"),
                    &format!("SELECT v FROM kv WHERE k = {k}"),
                    &mut CountingIds(0),
                )
                .map(|p| p.targets[0].shard == format!("s{shard}"))
                .unwrap_or(false)
        })
        .take(n)
        .collect()
}

/// Writes row `k` with value `v`, then reads it back with `marker` in the statement.
async fn write_then_read(
    c: &mut mysql_async::Conn,
    k: i64,
    v: &str,
    marker: &str,
) -> Option<String> {
    c.query_drop(format!("INSERT INTO kv VALUES ({k}, '{v}')"))
        .await
        .expect("insert");
    c.query_first(format!(
        "SELECT v FROM kv WHERE k = {k} AND '{marker}' <> ''"
    ))
    .await
    .expect("read")
}

/// Reads key `k` `n` times with `marker` in the statement.
async fn read_marked(c: &mut mysql_async::Conn, k: i64, marker: &str, n: usize) {
    for _ in 0..n {
        let _: Option<String> = c
            .query_first(format!(
                "SELECT v FROM kv WHERE k = {k} AND '{marker}' <> ''"
            ))
            .await
            .expect("read");
    }
}

#[tokio::test]
async fn reads_spread_over_replicas_writes_and_transactions_use_primaries() {
    let s = setup("");
    let mut c = connect_to(s.proxy.port, "app", "app", Some("rs"))
        .await
        .expect("connects");
    let k = key_on(&s.proxy, 0);
    let marker = format!("spread-{}", std::process::id());
    for _ in 0..40 {
        let v: Option<String> = c
            .query_first(format!(
                "SELECT v FROM kv WHERE k = {k} AND '{marker}' <> ''"
            ))
            .await
            .expect("read");
        assert_eq!(v, Some(format!("v{k}")));
    }
    let replicas = s.cluster.replica_ports(0);
    let counts: Vec<u64> = replicas.iter().map(|p| ran_on(*p, &marker)).collect();
    assert_eq!(
        counts.iter().sum::<u64>(),
        40,
        "every read on a replica: {counts:?}"
    );
    assert!(
        counts.iter().all(|c| *c >= 10),
        "reads spread over both replicas: {counts:?}"
    );
    assert_eq!(ran_on(s.cluster.primary_port(0), &marker), 0);

    let wmarker = format!("write-{}", std::process::id());
    c.query_drop(format!("UPDATE kv SET v = '{wmarker}' WHERE k = {k}"))
        .await
        .expect("write");
    assert_eq!(
        ran_on(s.cluster.primary_port(0), &wmarker),
        1,
        "the write ran on the primary"
    );
    assert!(
        replicas.iter().all(|p| ran_on(*p, &wmarker) == 0),
        "no write statement on replicas"
    );

    let tmarker = format!("tx-{}", std::process::id());
    c.query_drop("BEGIN").await.expect("begin");
    let _: Option<String> = c
        .query_first(format!(
            "SELECT v FROM kv WHERE k = {k} AND '{tmarker}' <> ''"
        ))
        .await
        .expect("read in tx");
    c.query_drop("COMMIT").await.expect("commit");
    assert_eq!(
        ran_on(s.cluster.primary_port(0), &tmarker),
        1,
        "reads in a transaction use the primary"
    );
    let lmarker = format!("lock-{}", std::process::id());
    let _: Option<String> = c
        .query_first(format!(
            "SELECT v FROM kv WHERE k = {k} AND '{lmarker}' <> '' FOR UPDATE"
        ))
        .await
        .expect("locking read");
    assert_eq!(
        ran_on(s.cluster.primary_port(0), &lmarker),
        1,
        "locking reads use the primary"
    );
}

#[tokio::test]
async fn a_replica_dying_under_read_load_fails_no_read() {
    let mut s = setup("");
    let port = s.proxy.port;
    let deadline = Instant::now() + Duration::from_secs(30);
    let load = tokio::spawn(async move {
        let mut c = connect_to(port, "app", "app", Some("rs"))
            .await
            .expect("connects");
        let (mut ok, mut failed) = (0u64, Vec::new());
        while Instant::now() < deadline {
            let k = 1 + (ok % 200);
            match c
                .query_first::<String, _>(format!("SELECT v FROM kv WHERE k = {k}"))
                .await
            {
                Ok(Some(v)) if v == format!("v{k}") => ok += 1,
                other => failed.push(format!("{other:?}")),
            }
        }
        (ok, failed)
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let victim = s
        .cluster
        .servers
        .iter_mut()
        .find(|sv| sv.shard == 0 && sv.replica == Some(0))
        .expect("replica 0 of shard 0");
    victim.kill();
    let (ok, failed) = load.await.expect("load task");
    assert!(
        failed.is_empty(),
        "{} failed reads: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(ok > 100, "the load ran ({ok} reads)");
}

#[tokio::test]
async fn a_stopped_sql_thread_takes_the_replica_out_until_it_replicates_again() {
    let s = setup("");
    let mut c = connect_to(s.proxy.port, "app", "app", Some("rs"))
        .await
        .expect("connects");
    let k = key_on(&s.proxy, 0);
    let lagging = s.cluster.replica_ports(0)[0];
    let healthy = s.cluster.replica_ports(0)[1];
    sql(lagging, "STOP SLAVE SQL_THREAD").expect("stop sql thread");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let marker = format!("out-{}", std::process::id());
    read_marked(&mut c, k, &marker, 20).await;
    assert_eq!(
        ran_on(lagging, &marker),
        0,
        "the replica without a SQL thread got reads"
    );
    assert_eq!(ran_on(healthy, &marker), 20);
    sql(lagging, "START SLAVE").expect("start slave");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let marker = format!("back-{}", std::process::id());
    read_marked(&mut c, k, &marker, 20).await;
    assert!(
        ran_on(lagging, &marker) > 0,
        "the replica came back into rotation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_primary_hurts_only_its_own_keys_and_comes_back() {
    let mut s = setup_with(4, 1, "read_your_writes_ms = 5000\n");
    let port = s.proxy.port;
    let keys: Vec<i64> = (0..4).map(|shard| key_on(&s.proxy, shard)).collect();
    let others = [keys[0], keys[1], keys[3]];
    let deadline = Instant::now() + Duration::from_secs(10);
    // A mixed read/write load on the other shards' keys while shard s2's primary dies.
    let load = tokio::spawn(async move {
        let mut c = connect_to(port, "app", "app", Some("rs"))
            .await
            .expect("connects");
        let (mut ok, mut failed) = (0u64, Vec::new());
        let mut i = 0u64;
        while Instant::now() < deadline {
            let k = others[(i % 3) as usize];
            i += 1;
            let res = c
                .query_drop(format!("UPDATE kv SET v = 'w{i}' WHERE k = {k}"))
                .await
                .and(
                    c.query_first::<String, _>(format!("SELECT v FROM kv WHERE k = {k}"))
                        .await
                        .map(|v| {
                            if v != Some(format!("w{i}")) {
                                failed.push(format!("read {v:?} after writing w{i}"));
                            }
                        }),
                );
            match res {
                Ok(()) => ok += 1,
                Err(e) => failed.push(e.to_string()),
            }
        }
        (ok, failed)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.cluster
        .servers
        .iter_mut()
        .find(|sv| sv.shard == 2 && sv.replica.is_none())
        .expect("primary of s2")
        .kill();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Its own keys: a clear error naming the shard, fast.
    let mut c = connect_to(port, "app", "app", Some("rs"))
        .await
        .expect("connects");
    let started = Instant::now();
    match c
        .query_drop(format!("UPDATE kv SET v = 'x' WHERE k = {}", keys[2]))
        .await
    {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1429, "{se:?}");
            assert!(se.message.contains("'s2'"), "{}", se.message);
        }
        other => panic!("expected an error for a key on the dead shard, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failing took {:?}",
        started.elapsed()
    );
    let (ok, failed) = load.await.expect("load");
    assert!(
        failed.is_empty(),
        "{} failures on healthy shards: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(ok > 50, "the load ran ({ok} rounds)");
    // Back without restarting myshard.
    s.cluster
        .servers
        .iter_mut()
        .find(|sv| sv.shard == 2 && sv.replica.is_none())
        .expect("primary of s2")
        .restart()
        .expect("restarts");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c
            .query_drop(format!("UPDATE kv SET v = 'again' WHERE k = {}", keys[2]))
            .await
        {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("shard s2 was not served again: {e}"),
        }
    }
}

#[tokio::test]
async fn read_your_writes_sees_every_write() {
    // The default: read-your-writes by GTID, replicas kept for reads.
    let s = setup("");
    let port = s.proxy.port;
    // Other clients keep the replicas busy meanwhile.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..3 {
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let mut c = connect_to(port, "app", "app", Some("rs"))
                .await
                .expect("connects");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: Vec<String> = c
                    .query("SELECT v FROM kv WHERE k BETWEEN 1 AND 200")
                    .await
                    .expect("load read");
                n += 1;
            }
            n
        }));
    }
    let mut c = connect_to(port, "app", "app", Some("rs"))
        .await
        .expect("connects");
    for i in 0..1000 {
        let k = 1000 + i;
        c.query_drop(format!("INSERT INTO kv (k, v) VALUES ({k}, 'new{i}')"))
            .await
            .expect("insert");
        let v: Option<String> = c
            .query_first(format!("SELECT v FROM kv WHERE k = {k}"))
            .await
            .expect("read");
        assert_eq!(
            v,
            Some(format!("new{i}")),
            "iteration {i} did not see its own write"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        assert!(l.await.expect("load task") > 0, "the replica load ran");
    }
}

/// Read-your-writes is the default, by GTID: a session's read after its own write goes to a
/// replica that has applied the write, or to the primary when no replica applies it in time.
/// `eventual` users read replicas as they are; `primary` users read primaries.
#[tokio::test]
async fn reads_see_the_sessions_own_writes_by_gtid() {
    let users = |name: &str, consistency: &str| {
        format!("\n[[users]]\nname = \"{name}\"\npassword = \"{name}\"\nauth_plugin = \"mysql_native_password\"\nschemas = [\"rs\"]\nread_consistency = \"{consistency}\"\n")
    };
    let metrics_port = myshard_tests::cluster::free_port().expect("port");
    let s = setup_full(
        2,
        2,
        &format!("metrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
        &format!(
            "read_your_writes_wait_ms = 1000\n{}{}",
            users("ev", "eventual"),
            users("pr", "primary")
        ),
    );
    let outcomes = |outcome: &str| -> u64 {
        crate::metrics::scrape(metrics_port)
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "myshard_read_your_writes_total{{outcome=\"{outcome}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let keys = keys_on(&s.proxy, 0, 100_000, 4);
    let primary = s.cluster.primary_port(0);
    let replicas = s.cluster.replica_ports(0);
    let tag = std::process::id();

    // The replicas of shard 0 cannot apply new rows while these locks are held.
    let mut blockers = Vec::new();
    for port in &replicas {
        let mut b = connect_to(*port, "root", "", Some("rs"))
            .await
            .expect("root on the replica");
        b.query_drop("BEGIN").await.expect("begin");
        let _: Vec<i64> = b
            .query("SELECT k FROM kv WHERE k >= 100000 FOR UPDATE")
            .await
            .expect("gap lock");
        blockers.push(b);
    }

    // Eventual: the read goes to a replica, which does not have the row yet.
    let mut ev = connect_to(s.proxy.port, "ev", "ev", Some("rs"))
        .await
        .expect("ev connects");
    let marker = format!("ev-read-{tag}");
    let seen = write_then_read(&mut ev, keys[0], "ev", &marker).await;
    assert_eq!(seen, None, "an eventual read sees the replica as it is");
    assert_eq!(replicas.iter().map(|p| ran_on(*p, &marker)).sum::<u64>(), 1);

    // Read-your-writes (the default): no replica applies the write in time, so the
    // primary answers.
    let mut app = connect_to(s.proxy.port, "app", "app", Some("rs"))
        .await
        .expect("app connects");
    let marker = format!("ryw-primary-{tag}");
    let seen = write_then_read(&mut app, keys[1], "mine", &marker).await;
    assert_eq!(
        seen.as_deref(),
        Some("mine"),
        "the session sees its own write"
    );
    assert_eq!(ran_on(primary, &marker), 1, "answered by the primary");
    assert_eq!(outcomes("primary"), 1, "counted as sent to the primary");

    // Primary: every read on the primary.
    let mut pr = connect_to(s.proxy.port, "pr", "pr", Some("rs"))
        .await
        .expect("pr connects");
    let marker = format!("pr-read-{tag}");
    let _: Option<String> = pr
        .query_first(format!(
            "SELECT v FROM kv WHERE k = {} AND '{marker}' <> ''",
            keys[0]
        ))
        .await
        .expect("pr read");
    assert_eq!(
        ran_on(primary, &marker),
        1,
        "a primary user reads the primary"
    );

    // Once the replicas apply again, a read after a write is served by a replica that has
    // applied it (waiting for it when needed).
    for mut b in blockers {
        b.query_drop("ROLLBACK").await.expect("release");
        b.disconnect().await.expect("disconnect");
    }
    s.cluster.sync_replicas(0).expect("replicas caught up");
    // Health checks (every 200 ms) see the replicas' lag gone.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for (i, k) in keys[2..].iter().enumerate() {
        app.query_drop(format!(
            "UPDATE kv SET v = 'again{i}' WHERE k = {}",
            keys[1]
        ))
        .await
        .expect("app update");
        let marker = format!("ryw-replica-{tag}-{i}");
        let seen = write_then_read(&mut app, *k, "later", &marker).await;
        assert_eq!(seen.as_deref(), Some("later"));
        assert_eq!(
            replicas.iter().map(|p| ran_on(*p, &marker)).sum::<u64>(),
            1,
            "a replica that applied the write answered"
        );
    }
    assert_eq!(
        outcomes("replica_after_wait"),
        2,
        "counted as served after waiting"
    );

    // A session sets its own: the `primary` user reads a replica once it says `eventual`,
    // and its user's setting again after DEFAULT.
    let read_sql = |marker: &str| {
        format!(
            "SELECT v FROM kv WHERE k = {} AND '{marker}' <> ''",
            keys[0]
        )
    };
    pr.query_drop("SET SESSION myshard_read_consistency = 'eventual'")
        .await
        .expect("set");
    let marker = format!("pr-eventual-{tag}");
    let _: Option<String> = pr.query_first(read_sql(&marker)).await.expect("read");
    assert_eq!(replicas.iter().map(|p| ran_on(*p, &marker)).sum::<u64>(), 1);
    pr.query_drop("SET myshard_read_consistency = DEFAULT")
        .await
        .expect("set default");
    let marker = format!("pr-default-{tag}");
    let _: Option<String> = pr.query_first(read_sql(&marker)).await.expect("read");
    assert_eq!(ran_on(primary, &marker), 1);
    let err = pr
        .query_drop("SET myshard_read_consistency = 'sometimes'")
        .await
        .expect_err("not a consistency");
    assert!(
        matches!(&err, mysql_async::Error::Server(e) if e.code == 1231 && e.message.contains("myshard_read_consistency")),
        "{err:?}"
    );
}

fn sighup(proxy: &Proxy) {
    let pid = proxy.pid().expect("running") as i32;
    // SAFETY: plain kill(2) on our child.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
}

/// SIGHUP, then waits (up to 20 s, however loaded the machine) until myshard logged the
/// reload's outcome.
async fn reload(proxy: &Proxy) {
    let outcomes = |log: String| {
        [
            "configuration reloaded",
            "reload refused",
            "invalid configuration",
        ]
        .iter()
        .map(|m| log.matches(m).count())
        .sum::<usize>()
    };
    let before = outcomes(proxy.log());
    sighup(proxy);
    for _ in 0..200 {
        if outcomes(proxy.log()) > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("myshard logged no reload outcome:\n{}", proxy.log());
}

#[tokio::test]
async fn failover_is_a_reload_and_bad_maps_are_refused() {
    let s = setup("read_your_writes_ms = 5000\n");
    let mut c = connect_to(s.proxy.port, "app", "app", Some("rs"))
        .await
        .expect("connects");
    let k0 = key_on(&s.proxy, 0);
    let path = s.proxy.config_path.clone();
    let original = std::fs::read_to_string(&path).expect("config");

    // An invalid map is refused and the running map stays.
    std::fs::write(
        &path,
        original.replace("default_shard = \"s0\"", "default_shard = \"nope\""),
    )
    .expect("write");
    reload(&s.proxy).await;
    let v: Option<String> = c
        .query_first(format!("SELECT v FROM kv WHERE k = {k0}"))
        .await
        .expect("still served");
    assert!(v.is_some());
    assert!(
        s.proxy.log().contains("unknown shard 'nope'"),
        "{}",
        s.proxy.log()
    );

    // A map that would move rows is refused with the reason.
    std::fs::write(
        &path,
        original.replace("kind = \"hash\"", "kind = \"range\"\nbounds = [100]"),
    )
    .expect("write");
    reload(&s.proxy).await;
    assert!(s.proxy.log().contains("resharding"), "{}", s.proxy.log());

    // External failover: promote a replica, point the shard at it, reload.
    let old_primary = s.cluster.primary_port(0);
    let promoted = s.cluster.replica_ports(0)[0];
    sql(
        promoted,
        "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;",
    )
    .expect("promote");
    let failed_over = original
        .replace(
            &format!("primary = \"127.0.0.1:{old_primary}\""),
            &format!("primary = \"127.0.0.1:{promoted}\""),
        )
        .replace(&format!("\"127.0.0.1:{promoted}\", "), "")
        .replace(&format!(", \"127.0.0.1:{promoted}\""), "");
    assert_ne!(failed_over, original);
    std::fs::write(&path, &failed_over).expect("write");
    reload(&s.proxy).await;
    assert!(
        s.proxy.log().contains("configuration reloaded"),
        "{}",
        s.proxy.log()
    );
    let marker = format!("failover-{}", std::process::id());
    c.query_drop(format!("UPDATE kv SET v = '{marker}' WHERE k = {k0}"))
        .await
        .expect("write after failover");
    assert_eq!(
        ran_on(promoted, &marker),
        1,
        "the write reached the new primary"
    );
    assert_eq!(
        ran_on(old_primary, &marker),
        0,
        "the old primary got nothing"
    );
}

#[tokio::test]
async fn replica_weights_share_reads_and_change_by_reload() {
    let s = setup("");
    let path = s.proxy.config_path.clone();
    let config = std::fs::read_to_string(&path).expect("config");
    let replicas = s.cluster.replica_ports(0);
    let weighted = config.replacen(
        &format!(
            "replicas = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]",
            replicas[0], replicas[1]
        ),
        &format!(
            "replicas = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\nreplica_weights = [3, 1]",
            replicas[0], replicas[1]
        ),
        1,
    );
    assert_ne!(
        weighted, config,
        "the shard's replica list was found in the config"
    );
    std::fs::write(&path, weighted).expect("write");
    reload(&s.proxy).await;
    let mut c = connect_to(s.proxy.port, "app", "app", Some("rs"))
        .await
        .expect("connects");
    let k = key_on(&s.proxy, 0);
    let marker = format!("weights-{}", std::process::id());
    read_marked(&mut c, k, &marker, 40).await;
    let counts: Vec<u64> = replicas.iter().map(|p| ran_on(*p, &marker)).collect();
    assert_eq!(counts, vec![30, 10], "reads split 3:1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_drop_no_statement_and_no_connection() {
    let s = setup("read_your_writes_ms = 5000\n");
    let port = s.proxy.port;
    let path = s.proxy.config_path.clone();
    let original = std::fs::read_to_string(&path).expect("config");
    let replicas = s.cluster.replica_ports(0);
    let list = format!(
        "replicas = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]",
        replicas[0], replicas[1]
    );
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut load = Vec::new();
    for client in 0..4i64 {
        load.push(tokio::spawn(async move {
            let mut c = connect_to(port, "app", "app", Some("rs"))
                .await
                .expect("connects");
            let (mut ok, mut failed) = (0u64, Vec::new());
            let mut i = 0i64;
            while Instant::now() < deadline {
                i += 1;
                let k = 1 + (client * 37 + i) % 200;
                let res = if i % 3 == 0 {
                    c.query_drop(format!("UPDATE kv SET v = 'r{i}' WHERE k = {k}"))
                        .await
                } else {
                    c.query_first::<String, _>(format!("SELECT v FROM kv WHERE k = {k}"))
                        .await
                        .map(|_| ())
                };
                match res {
                    Ok(()) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let text = match round {
            0 => original.replacen(&list, &format!("{list}\nreplica_weights = [5, 1]"), 1),
            1 => original.replace("default_shard = \"s0\"", "default_shard = \"nope\""),
            2 => original.replacen(&list, &format!("{list}\nreplica_weights = [1, 5]"), 1),
            _ => original.clone(),
        };
        std::fs::write(&path, text).expect("write");
        sighup(&s.proxy);
    }
    for l in load {
        let (ok, failed) = l.await.expect("load task");
        assert!(
            failed.is_empty(),
            "{} failed statements: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        assert!(ok > 20, "the load ran ({ok})");
    }
    let log = s.proxy.log();
    assert_eq!(log.matches("configuration reloaded").count(), 3, "{log}");
    assert!(log.contains("unknown shard 'nope'"), "{log}");
}
