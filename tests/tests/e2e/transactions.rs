//! Transactions over several shards: XA two-phase commit, crash recovery from the decision
//! log, savepoints, and the single_shard mode. Each test runs its own myshard over the shared
//! cluster, with a schema of its own.

use crate::env::env;
use myshard_tests::cluster::sql;
use myshard_tests::Proxy;
use mysql_async::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ACCOUNTS: i64 = 200;
const OPENING: i64 = 1_000;

fn bank_config(schema: &str, mode: &str, log: &Path) -> String {
    format!(
        r#"
# A session reads its own writes from the primaries (replicas may lag under load).
[backend]
read_your_writes_ms = 60000

[transactions]
mode = "{mode}"
decision_log = "{}"
recovery_interval_ms = 300

[[users]]
name = "bank"
password = "bank"
schemas = ["{schema}"]

[[schemas]]
name = "{schema}"
default_shard = "s0"

[[schemas.rules]]
name = "by_id"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.tables]]
name = "accounts"
rule = "by_id"
column = "id"
"#,
        log.display()
    )
}

fn start(schema: &str, mode: &str, log: &Path) -> Proxy {
    start_with(schema, mode, log, "")
}

fn start_with(schema: &str, mode: &str, log: &Path, server: &str) -> Proxy {
    let e = env();
    Proxy::start(&e.cluster, server, &bank_config(schema, mode, log))
        .unwrap_or_else(|err| panic!("myshard starts: {err}"))
}

async fn connect(port: u16, schema: &str) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("bank"))
        .pass(Some("bank"))
        .db_name(Some(schema))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .expect("connects to myshard")
}

/// Creates the schema on every shard and the accounts through myshard.
async fn open_accounts(port: u16, schema: &str) {
    let e = env();
    for shard in 0..4 {
        sql(
            e.cluster.primary_port(shard),
            &format!("DROP DATABASE IF EXISTS {schema}; CREATE DATABASE {schema}"),
        )
        .expect("schema on the shard");
    }
    let mut c = connect(port, schema).await;
    c.query_drop("CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
        .await
        .expect("create through myshard");
    let values: Vec<String> = (1..=ACCOUNTS)
        .map(|i| format!("({i}, {OPENING})"))
        .collect();
    c.query_drop(format!(
        "INSERT INTO accounts (id, balance) VALUES {}",
        values.join(",")
    ))
    .await
    .expect("accounts");
    c.disconnect().await.expect("quit");
}

/// The total balance, summed on each shard directly.
fn total_on_shards(schema: &str) -> i64 {
    balance_on_shards(schema, "TRUE")
}

/// The balance of the accounts matching `filter`, summed on each shard directly.
fn balance_on_shards(schema: &str, filter: &str) -> i64 {
    let e = env();
    (0..4)
        .map(|shard| {
            let out = sql(
                e.cluster.primary_port(shard),
                &format!("SELECT COALESCE(SUM(balance), 0) FROM {schema}.accounts WHERE {filter}"),
            )
            .expect("sum on the shard");
            out.trim().parse::<i64>().expect("a number")
        })
        .sum()
}

/// XA branches prepared and not resolved, on every shard — except those the recovery test
/// plants on purpose (worker 901), which may exist while other tests run.
fn in_doubt() -> Vec<String> {
    in_doubt_all()
        .into_iter()
        .filter(|l| !l.contains("myshard-901-"))
        .collect()
}

fn in_doubt_all() -> Vec<String> {
    let e = env();
    (0..4)
        .flat_map(|shard| {
            sql(e.cluster.primary_port(shard), "XA RECOVER")
                .expect("XA RECOVER")
                .lines()
                .map(|l| format!("s{shard}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Moves money between random accounts until `stop`; returns committed transfers. Odd
/// clients use prepared statements, even ones the text protocol.
async fn transfer_loop(port: u16, schema: String, client: u64, stop: Arc<AtomicBool>) -> u64 {
    let mut done = 0;
    let Ok(mut c) = tokio::time::timeout(Duration::from_secs(5), connect(port, &schema)).await
    else {
        return 0;
    };
    let mut seed = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as i64
    };
    while !stop.load(Ordering::Relaxed) {
        let from = next(ACCOUNTS) + 1;
        let to = (from + next(ACCOUNTS - 1)) % ACCOUNTS + 1;
        let amount = next(50) + 1;
        let r: Result<(), mysql_async::Error> = async {
            c.query_drop("BEGIN").await?;
            if client % 2 == 1 {
                c.exec_drop(
                    "UPDATE accounts SET balance = balance - ? WHERE id = ?",
                    (amount, from),
                )
                .await?;
                c.exec_drop(
                    "UPDATE accounts SET balance = balance + ? WHERE id = ?",
                    (amount, to),
                )
                .await?;
            } else {
                c.query_drop(format!(
                    "UPDATE accounts SET balance = balance - {amount} WHERE id = {from}"
                ))
                .await?;
                c.query_drop(format!(
                    "UPDATE accounts SET balance = balance + {amount} WHERE id = {to}"
                ))
                .await?;
            }
            c.query_drop("COMMIT").await
        }
        .await;
        match r {
            Ok(()) => done += 1,
            Err(mysql_async::Error::Server(e)) if e.code == 1213 => {
                // A deadlock rolled the whole transaction back; the client retries, as
                // applications do.
            }
            Err(_) => return done,
        }
    }
    let _ = c.disconnect().await;
    done
}

fn spawn_clients(
    port: u16,
    schema: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..16)
        .map(|i| tokio::spawn(transfer_loop(port, schema.to_string(), i, stop.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_the_total_through_a_sigkill_and_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("xa.log");
    let schema = "bank_kill";
    let mut proxy = start(schema, "xa", &log);
    open_accounts(proxy.port, schema).await;
    let expected = ACCOUNTS * OPENING;

    // 16 clients move money; myshard is killed in the middle of it.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(proxy.port, schema, &stop);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        proxy.signal_and_wait(libc::SIGKILL, Duration::from_secs(10)),
        "myshard dies on SIGKILL"
    );
    stop.store(true, Ordering::Relaxed);
    let mut before_kill = 0;
    for c in clients {
        before_kill += c.await.expect("client task");
    }
    assert!(
        before_kill > 50,
        "only {before_kill} transfers before the kill"
    );
    let decided = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        decided.lines().any(|l| l.starts_with("C ")),
        "two-shard transfers commit in two phases with logged decisions:\n{decided}"
    );

    // Restarted on the same decision log, myshard resolves every in-doubt branch first.
    let proxy = start(schema, "xa", &log);
    let mut left = in_doubt();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = in_doubt();
    }
    assert_eq!(left, Vec::<String>::new(), "{}", proxy.log());
    assert_eq!(total_on_shards(schema), expected, "money after the crash");

    // And keeps serving transfers with the total intact.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(proxy.port, schema, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut after = 0;
    for c in clients {
        after += c.await.expect("client task");
    }
    assert!(after > 50, "only {after} transfers after the restart");
    // Read on the primaries (inside a transaction): replicas may still be catching up.
    let mut c = connect(proxy.port, schema).await;
    c.query_drop("BEGIN").await.expect("begin");
    let total: Option<i64> = c
        .query_first("SELECT SUM(balance) FROM accounts")
        .await
        .expect("sum through myshard");
    c.query_drop("COMMIT").await.expect("commit");
    assert_eq!(total, Some(expected));
    assert_eq!(total_on_shards(schema), expected);
    assert_eq!(in_doubt(), Vec::<String>::new());
}

#[tokio::test]
async fn recovery_commits_logged_decisions_and_rolls_back_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("xa.log");
    let schema = "bank_recover";
    // worker_id names this instance's XA ids: other instances leave them alone.
    let server = "worker_id = 901";
    let proxy = start_with(schema, "xa", &log, server);
    open_accounts(proxy.port, schema).await;
    drop(proxy);
    let e = env();
    // Two branches left prepared by "an earlier run" (owner 901, boot 1): one whose commit
    // was decided and logged, one that was never decided.
    let s0 = e.cluster.primary_port(0);
    let prepare = |gtrid: &str, id: i64, delta: i64| {
        sql(
            s0,
            &format!(
                "XA START '{gtrid}','s0'; UPDATE {schema}.accounts SET balance = balance + {delta} WHERE id = {id}; XA END '{gtrid}','s0'; XA PREPARE '{gtrid}','s0'"
            ),
        )
        .expect("prepared branch");
    };
    // Two accounts that live on s0 (each branch locks its own row).
    let ids = sql(
        s0,
        &format!("SELECT MIN(id), MAX(id) FROM {schema}.accounts"),
    )
    .expect("accounts on s0");
    let ids: Vec<i64> = ids
        .split_whitespace()
        .map(|n| n.parse().expect("id"))
        .collect();
    prepare("myshard-901-1-1", ids[0], 7);
    prepare("myshard-901-1-2", ids[1], 100);
    std::fs::write(&log, "C myshard-901-1-1\n").expect("decision log");
    let planted = || -> Vec<String> {
        in_doubt_all()
            .into_iter()
            .filter(|l| l.contains("myshard-901-"))
            .collect()
    };
    assert_eq!(planted().len(), 2);

    // Resolved at start-up; a branch whose client connection the shard is still tearing
    // down may outlive its first XA COMMIT, and the recovery loop finishes it.
    let proxy = start_with(schema, "xa", &log, server);
    let mut left = planted();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = planted();
    }
    assert_eq!(left, Vec::<String>::new(), "{}", proxy.log());
    let balance = |id: i64| -> i64 {
        sql(
            s0,
            &format!("SELECT balance FROM {schema}.accounts WHERE id = {id}"),
        )
        .expect("balance")
        .trim()
        .parse()
        .expect("number")
    };
    assert_eq!(
        balance(ids[0]),
        OPENING + 7,
        "the logged decision committed"
    );
    assert_eq!(balance(ids[1]), OPENING, "the undecided branch rolled back");
}

#[tokio::test]
async fn savepoints_and_rollback_span_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = "bank_sp";
    let proxy = start(schema, "xa", &dir.path().join("xa.log"));
    open_accounts(proxy.port, schema).await;
    let mut c = connect(proxy.port, schema).await;
    let balances =
        |ids: &str| format!("SELECT id, balance FROM accounts WHERE id IN ({ids}) ORDER BY id");
    c.query_drop("START TRANSACTION").await.expect("begin");
    c.query_drop("UPDATE accounts SET balance = 1 WHERE id = 1")
        .await
        .expect("u1");
    c.query_drop("SAVEPOINT a").await.expect("savepoint");
    c.query_drop("UPDATE accounts SET balance = 2 WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8)")
        .await
        .expect("u2 over several shards");
    c.query_drop("ROLLBACK TO SAVEPOINT a")
        .await
        .expect("rollback to");
    let rows: Vec<(i64, i64)> = c
        .query(balances("1, 2, 3, 4, 5, 6, 7, 8"))
        .await
        .expect("read");
    let mut want: Vec<(i64, i64)> = (1..=8).map(|i| (i, OPENING)).collect();
    want[0].1 = 1;
    assert_eq!(rows, want, "only the work before the savepoint is left");
    c.query_drop("RELEASE SAVEPOINT a").await.expect("release");
    let gone = c.query_drop("ROLLBACK TO SAVEPOINT a").await;
    assert!(
        matches!(&gone, Err(mysql_async::Error::Server(e)) if e.code == 1305),
        "{gone:?}"
    );
    c.query_drop("COMMIT").await.expect("commit");
    let rows: Vec<(i64, i64)> = c.query(balances("1, 2")).await.expect("read");
    assert_eq!(rows, vec![(1, 1), (2, OPENING)]);

    // ROLLBACK undoes every shard; a client that disconnects mid-transaction too.
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop("UPDATE accounts SET balance = 0 WHERE id BETWEEN 1 AND 20")
        .await
        .expect("scatter update");
    // ROW_COUNT() sums the shards' affected rows; FOUND_ROWS() counts the merged rows.
    let changed: Option<i64> = c
        .query_first("SELECT ROW_COUNT()")
        .await
        .expect("row count");
    assert_eq!(changed, Some(20), "accounts 1..20 changed");
    let _: Vec<i64> = c
        .query("SELECT id FROM accounts WHERE id <= 30")
        .await
        .expect("scatter read");
    let found: Option<i64> = c.query_first("SELECT FOUND_ROWS()").await.expect("found");
    assert_eq!(found, Some(30));
    c.query_drop("ROLLBACK").await.expect("rollback");
    let zero: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM accounts WHERE balance = 0")
        .await
        .expect("count");
    assert_eq!(zero, Some(0));
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop("UPDATE accounts SET balance = 0 WHERE id BETWEEN 1 AND 20")
        .await
        .expect("scatter update");
    drop(c);
    let mut c = connect(proxy.port, schema).await;
    let mut zero = Some(1);
    for _ in 0..50 {
        zero = c
            .query_first("SELECT COUNT(*) FROM accounts WHERE balance = 0")
            .await
            .expect("count");
        if zero == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        zero,
        Some(0),
        "a dropped client's transaction is rolled back"
    );
    assert_eq!(in_doubt(), Vec::<String>::new());
}

#[tokio::test]
async fn catalog_reads_and_set_inside_a_transaction_keep_it() {
    // A read of information_schema and a SET run on a connection the transaction holds:
    // they must not reset it (a reset or COM_CHANGE_USER would roll its branch back while
    // the client goes on to COMMIT).
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = "bank_is";
    let proxy = start(schema, "xa", &dir.path().join("xa.log"));
    open_accounts(proxy.port, schema).await;
    let mut c = connect(proxy.port, schema).await;
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop("UPDATE accounts SET balance = 7 WHERE id BETWEEN 1 AND 20")
        .await
        .expect("update on every shard");
    let tables: Option<i64> = c
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{schema}'"
        ))
        .await
        .expect("catalog read");
    assert_eq!(tables, Some(1));
    c.query_drop("SET @seen = 1, SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        .await
        .expect("SET");
    c.query_drop("UPDATE accounts SET balance = balance + 1 WHERE id BETWEEN 1 AND 20")
        .await
        .expect("second update on every shard");
    c.query_drop("COMMIT").await.expect("commit");
    let mut other = connect(proxy.port, schema).await;
    let eights: Option<i64> = other
        .query_first("SELECT COUNT(*) FROM accounts WHERE balance = 8")
        .await
        .expect("count");
    assert_eq!(eights, Some(20), "both updates committed on every shard");
    assert_eq!(in_doubt(), Vec::<String>::new());
}

/// An account on another shard than `id`, found through EXPLAIN ROUTE.
async fn on_another_shard(c: &mut mysql_async::Conn, id: i64) -> i64 {
    let shard_of =
        |id: i64| format!("EXPLAIN ROUTE UPDATE accounts SET balance = 0 WHERE id = {id}");
    type Route = (String, Option<String>, String, String);
    let first: Route = c
        .query_first(shard_of(id))
        .await
        .expect("route")
        .expect("row");
    let mut other = id + 1;
    loop {
        let s: Route = c
            .query_first(shard_of(other))
            .await
            .expect("route")
            .expect("row");
        if s.0 != first.0 {
            return other;
        }
        other += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_across_shards_rolls_back_a_transaction_with_1213() {
    let e = env();
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = "bank_deadlock";
    let metrics_port = myshard_tests::cluster::free_port().expect("port");
    let config = bank_config(schema, "xa", &dir.path().join("xa.log")).replace(
        "recovery_interval_ms = 300",
        "recovery_interval_ms = 300\nlock_wait_timeout_s = 1",
    );
    let proxy = Proxy::start(
        &e.cluster,
        &format!("metrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
        &config,
    )
    .unwrap_or_else(|err| panic!("myshard starts: {err}"));
    open_accounts(proxy.port, schema).await;
    let mut t1 = connect(proxy.port, schema).await;
    let mut t2 = connect(proxy.port, schema).await;
    let a = 1;
    let b = on_another_shard(&mut t1, a).await;
    let update = |id: i64, delta: i64| {
        format!("UPDATE accounts SET balance = balance + {delta} WHERE id = {id}")
    };
    t1.query_drop("BEGIN").await.expect("begin 1");
    t1.query_drop(update(a, -1)).await.expect("t1 locks a");
    t2.query_drop("BEGIN").await.expect("begin 2");
    t2.query_drop(update(b, -1)).await.expect("t2 locks b");
    // Each now waits for the other's row on the other shard: a cycle no single InnoDB sees.
    let (u1, u2) = (update(b, 1), update(a, 1));
    let h1 = tokio::spawn(async move {
        let r = t1.query_drop(u1).await;
        (t1, r)
    });
    let h2 = tokio::spawn(async move {
        let r = t2.query_drop(u2).await;
        (t2, r)
    });
    let (mut t1, r1) = h1.await.expect("t1 runs");
    let (mut t2, r2) = h2.await.expect("t2 runs");
    let mut aborted = 0;
    for r in [&r1, &r2] {
        match r {
            Ok(()) => {}
            Err(mysql_async::Error::Server(e)) => {
                assert_eq!((e.code, e.state.as_str()), (1213, "40001"), "{e:?}");
                assert!(e.message.contains("lock_wait_timeout_s"), "{}", e.message);
                aborted += 1;
            }
            Err(other) => panic!("a deadlock error or success, got {other:?}"),
        }
    }
    assert!(aborted >= 1, "the cycle must be broken: {r1:?} {r2:?}");
    t1.query_drop("COMMIT").await.expect("commit 1");
    t2.query_drop("COMMIT").await.expect("commit 2");
    // A 1213 rolled its whole transaction back on both shards; the survivor committed.
    let mut want_a = OPENING;
    let mut want_b = OPENING;
    if r1.is_ok() {
        want_a -= 1;
        want_b += 1;
    }
    if r2.is_ok() {
        want_a += 1;
        want_b -= 1;
    }
    let balance = |id: i64| balance_on_shards(schema, &format!("id = {id}"));
    assert_eq!((balance(a), balance(b)), (want_a, want_b));
    assert_eq!(total_on_shards(schema), ACCOUNTS * OPENING);
    assert_eq!(in_doubt(), Vec::<String>::new());
    let metrics = crate::metrics::scrape(metrics_port);
    let counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("myshard_distributed_lock_wait_aborts_total "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert_eq!(counted, Some(aborted), "{metrics}");
    // The aborted session goes on: the next transaction over both shards commits.
    for c in [&mut t1, &mut t2] {
        c.query_drop("BEGIN").await.expect("begin again");
        c.query_drop(update(a, -7)).await.expect("a again");
        c.query_drop(update(b, 7)).await.expect("b again");
        c.query_drop("COMMIT").await.expect("commit again");
    }
    assert_eq!(balance(a), want_a - 14);
    assert_eq!(total_on_shards(schema), ACCOUNTS * OPENING);
}

#[tokio::test]
async fn a_write_on_several_shards_outside_a_transaction_is_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = "bank_atomic";
    let proxy = start(schema, "xa", &dir.path().join("xa.log"));
    open_accounts(proxy.port, schema).await;
    let mut c = connect(proxy.port, schema).await;
    c.query_drop("ALTER TABLE accounts ADD CONSTRAINT nonneg CHECK (balance >= 0)")
        .await
        .expect("check constraint on every shard");
    // An empty account on the shard the scatter reaches last: every other shard's part has
    // run when this one fails.
    type Route = (String, Option<String>, String, String);
    let routes: Vec<Route> = c
        .query("EXPLAIN ROUTE UPDATE accounts SET balance = balance - 1")
        .await
        .expect("route");
    assert_eq!(routes.len(), 4, "{routes:?}");
    let last = routes[3].0.clone();
    let mut empty = 1;
    loop {
        let r: Route = c
            .query_first(format!(
                "EXPLAIN ROUTE UPDATE accounts SET balance = 0 WHERE id = {empty}"
            ))
            .await
            .expect("route")
            .expect("row");
        if r.0 == last {
            break;
        }
        empty += 1;
    }
    c.query_drop(format!(
        "UPDATE accounts SET balance = balance + {OPENING} WHERE id = 1 + ({empty} % {ACCOUNTS})"
    ))
    .await
    .expect("move the money");
    c.query_drop(format!(
        "UPDATE accounts SET balance = 0 WHERE id = {empty}"
    ))
    .await
    .expect("empty one account");
    let before = total_on_shards(schema);
    let failed = c
        .query_drop("UPDATE accounts SET balance = balance - 1")
        .await;
    match &failed {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 4025, "the shard's CHECK failure: {e:?}");
        }
        other => panic!("the update must fail on the empty account: {other:?}"),
    }
    assert_eq!(
        total_on_shards(schema),
        before,
        "no shard kept its part of the failed statement"
    );
    assert_eq!(in_doubt(), Vec::<String>::new());
    // A statement that succeeds everywhere commits everywhere, with the rows summed.
    let done = c
        .query_iter(format!(
            "UPDATE accounts SET balance = balance - 1 WHERE id <> {empty}"
        ))
        .await
        .expect("scatter update")
        .affected_rows();
    assert_eq!(done, ACCOUNTS as u64 - 1);
    assert_eq!(total_on_shards(schema), before - (ACCOUNTS - 1));
    assert_eq!(in_doubt(), Vec::<String>::new());
}

#[tokio::test]
async fn single_shard_mode_refuses_a_second_shard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = "bank_single";
    let proxy = start(schema, "single_shard", &dir.path().join("xa.log"));
    open_accounts(proxy.port, schema).await;
    let mut c = connect(proxy.port, schema).await;
    let other = on_another_shard(&mut c, 1).await;
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop("UPDATE accounts SET balance = balance - 5 WHERE id = 1")
        .await
        .expect("first shard");
    let second = c
        .query_drop(format!(
            "UPDATE accounts SET balance = balance + 5 WHERE id = {other}"
        ))
        .await;
    match &second {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1235, "{e:?}");
            assert!(e.message.contains("single_shard"), "{}", e.message);
        }
        other => panic!("a second shard must be refused: {other:?}"),
    }
    c.query_drop("ROLLBACK").await.expect("rollback");
    assert_eq!(total_on_shards(schema), ACCOUNTS * OPENING);
}
