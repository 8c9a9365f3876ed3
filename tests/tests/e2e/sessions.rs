//! Session state on multiplexed backend connections: each client's variables, schema and
//! transactions stay its own.

use crate::env::connect;
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_variables_never_leak_between_clients() {
    let mut tasks = Vec::new();
    for i in 0..16 {
        tasks.push(tokio::spawn(async move {
            let mut c = connect("app", "app", Some("shop")).await?;
            let tz = format!("+0{}:00", i % 10);
            let custom = i % 2 == 0;
            if custom {
                c.query_drop(format!(
                    "SET time_zone = '{tz}', sql_mode = 'ANSI_QUOTES', @mine = {i}"
                ))
                .await?;
            }
            for _ in 0..40 {
                let (got_tz, mode, mine): (String, String, Option<i64>) = c
                    .query_first("SELECT @@time_zone, @@sql_mode, @mine")
                    .await?
                    .expect("row");
                if custom {
                    assert_eq!(
                        (got_tz.as_str(), mode.as_str(), mine),
                        (tz.as_str(), "ANSI_QUOTES", Some(i))
                    );
                } else {
                    assert_eq!(got_tz, "SYSTEM");
                    assert_ne!(mode, "ANSI_QUOTES");
                    assert_eq!(mine, None);
                }
            }
            Ok::<_, mysql_async::Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("no error");
    }
}

#[tokio::test]
async fn set_names_changes_the_connection_charset() {
    let mut c = connect("app", "app", Some("shop")).await.expect("connects");
    c.query_drop("SET NAMES latin1").await.expect("SET NAMES");
    for _ in 0..5 {
        let v: Option<(String, String)> = c
            .query_first("SELECT @@character_set_client, @@collation_connection")
            .await
            .expect("query");
        assert_eq!(v, Some(("latin1".into(), "latin1_swedish_ci".into())));
    }
}

#[tokio::test]
async fn transactions_keep_one_backend_connection_and_roll_back() {
    let mut c = connect("app", "app", Some("shop")).await.expect("connects");
    let mut other = connect("app", "app", Some("shop")).await.expect("connects");
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop("INSERT INTO items (id, name) VALUES (500, 'in tx')")
        .await
        .expect("insert");
    let seen: Option<i64> = c
        .query_first("/* myshard:primary */ SELECT COUNT(*) FROM items WHERE id = 500")
        .await
        .expect("q");
    assert_eq!(seen, Some(1), "the transaction sees its own write");
    let outside: Option<i64> = other
        .query_first("/* myshard:primary */ SELECT COUNT(*) FROM items WHERE id = 500")
        .await
        .expect("q");
    assert_eq!(
        outside,
        Some(0),
        "uncommitted write visible to another client"
    );
    c.query_drop("ROLLBACK").await.expect("rollback");
    let after: Option<i64> = c
        .query_first("/* myshard:primary */ SELECT COUNT(*) FROM items WHERE id = 500")
        .await
        .expect("q");
    assert_eq!(after, Some(0));
    c.query_drop("SET autocommit = 0")
        .await
        .expect("autocommit off");
    c.query_drop("INSERT INTO items (id, name) VALUES (501, 'ac0')")
        .await
        .expect("insert");
    c.query_drop("COMMIT").await.expect("commit");
    let committed: Option<i64> = other
        .query_first("/* myshard:primary */ SELECT COUNT(*) FROM items WHERE id = 501")
        .await
        .expect("q");
    assert_eq!(committed, Some(1));
    c.query_drop("DELETE FROM items WHERE id = 501")
        .await
        .expect("delete");
    c.query_drop("COMMIT").await.expect("commit");
}

#[tokio::test]
async fn disconnect_mid_transaction_rolls_back() {
    let mut c = connect("app", "app", Some("shop")).await.expect("connects");
    c.query_drop("START TRANSACTION").await.expect("begin");
    c.query_drop("INSERT INTO items (id, name) VALUES (502, 'lost')")
        .await
        .expect("insert");
    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut other = connect("app", "app", Some("shop")).await.expect("connects");
    let n: Option<i64> = other
        .query_first("/* myshard:primary */ SELECT COUNT(*) FROM items WHERE id = 502")
        .await
        .expect("q");
    assert_eq!(n, Some(0));
}

#[tokio::test]
async fn last_insert_id_and_warnings_follow_the_session() {
    let mut c = connect("app", "app", Some("shop")).await.expect("connects");
    c.query_drop("CREATE TABLE IF NOT EXISTS autoinc (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .expect("create");
    c.query_drop("INSERT INTO autoinc (v) VALUES (1)")
        .await
        .expect("insert");
    let id = c.last_insert_id().expect("OK packet carries the id");
    let via_sql: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.expect("q");
    assert_eq!(via_sql, Some(id));
    let _: Option<i64> = c
        .query_first("SELECT CAST('12abc' AS SIGNED)")
        .await
        .expect("q");
    let warnings: Vec<(String, u16, String)> =
        c.query("SHOW WARNINGS").await.expect("show warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].1, 1292);
    c.query_drop("DROP TABLE autoinc").await.expect("drop");
}

/// Session state myshard does not track (temporary tables, user locks, user variables set
/// inside statements) keeps the client on its backend connection, and the connection is reset
/// before another client gets it: with one backend connection per shard, the next client
/// finds none of it.
#[tokio::test]
async fn untracked_session_state_never_reaches_another_client() {
    let e = crate::env::env();
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "",
        "[backend]\npool_max = 1\n\n[[users]]\nname = \"app\"\npassword = \"app\"\nschemas = [\"shop\"]\n\n[[schemas]]\nname = \"shop\"\ndefault_shard = \"s0\"\n",
    )
    .expect("proxy");
    let mut a = crate::env::connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    a.query_drop("CREATE TEMPORARY TABLE leak_tmp (id INT)")
        .await
        .expect("temporary table");
    a.query_drop("INSERT INTO leak_tmp VALUES (1)")
        .await
        .expect("insert");
    let got: Option<i64> = a
        .query_first("SELECT GET_LOCK('myshard_leak_lock', 0)")
        .await
        .expect("lock");
    assert_eq!(got, Some(1));
    a.query_drop("SELECT @leak := 42").await.expect("variable");
    // The session keeps its connection: its own state is there on every statement.
    let n: Option<i64> = a
        .query_first("SELECT COUNT(*) FROM leak_tmp")
        .await
        .expect("own temporary table");
    assert_eq!(n, Some(1));
    let v: Option<i64> = a.query_first("SELECT @leak").await.expect("own variable");
    assert_eq!(v, Some(42));
    a.disconnect().await.expect("disconnect");
    let mut b = crate::env::connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    match b.query_drop("SELECT * FROM leak_tmp").await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1146, "{se:?}"),
        other => panic!("another client sees the temporary table: {other:?}"),
    }
    let holder: Option<Option<u64>> = b
        .query_first("SELECT IS_USED_LOCK('myshard_leak_lock')")
        .await
        .expect("lock state");
    assert_eq!(holder, Some(None), "the user lock outlived its session");
    let v: Option<Option<i64>> = b.query_first("SELECT @leak").await.expect("variable");
    assert_eq!(v, Some(None), "a user variable crossed clients");
}

/// autocommit=0 (PyMySQL's, SQLAlchemy's and Hibernate's default) holds a backend connection
/// only while a transaction is open: eight such clients share two backend connections, each
/// statement beginning a transaction that its COMMIT or ROLLBACK ends, as in MySQL.
#[tokio::test]
async fn autocommit_off_holds_a_connection_only_during_a_transaction() {
    let e = crate::env::env();
    myshard_tests::cluster::sql(
        e.cluster.primary_port(0),
        "CREATE DATABASE IF NOT EXISTS ac_db; CREATE TABLE IF NOT EXISTS ac_db.t (id INT PRIMARY KEY, v INT)",
    )
    .expect("table");
    let metrics_port = myshard_tests::cluster::free_port().expect("port");
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        &format!("metrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
        "[backend]\npool_max = 2\ncheckout_timeout_ms = 1000\n\n[[users]]\nname = \"app\"\npassword = \"app\"\nschemas = [\"ac\"]\n\n[[schemas]]\nname = \"ac\"\ndefault_shard = \"s0\"\ndatabase = \"ac_db\"\n",
    )
    .expect("proxy");
    let mut clients = Vec::new();
    for _ in 0..8 {
        let mut c = crate::env::connect_to(proxy.port, "app", "app", Some("ac"))
            .await
            .expect("connects");
        c.query_drop("SET autocommit = 0")
            .await
            .expect("autocommit off");
        clients.push(c);
    }
    // Each round: every client reads (beginning a transaction) and commits; none waits for a
    // connection another idle client holds.
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            let n: Option<i64> = c
                .query_first("SELECT COUNT(*) FROM t")
                .await
                .unwrap_or_else(|e| panic!("round {round}, client {i}: {e}"));
            assert!(n.is_some());
            c.query_drop("COMMIT").await.expect("commit");
        }
    }
    // A write belongs to the implicit transaction: rolled back, it is gone; committed, kept.
    let id = std::process::id() as i64 % 100_000;
    let (a, rest) = clients.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut rest[0]);
    a.query_drop(format!("INSERT INTO t (id, v) VALUES ({id}, 1)"))
        .await
        .expect("insert");
    let seen: Option<i64> = b
        .query_first(format!("SELECT COUNT(*) FROM t WHERE id = {id}"))
        .await
        .expect("read");
    assert_eq!(seen, Some(0), "another client saw an uncommitted row");
    b.query_drop("COMMIT").await.expect("commit");
    a.query_drop("ROLLBACK").await.expect("rollback");
    let after: Option<i64> = a
        .query_first(format!("SELECT COUNT(*) FROM t WHERE id = {id}"))
        .await
        .expect("read");
    assert_eq!(after, Some(0), "the rolled-back row is stored");
    a.query_drop(format!("INSERT INTO t (id, v) VALUES ({id}, 2)"))
        .await
        .expect("insert");
    a.query_drop("COMMIT").await.expect("commit");
    let kept: Option<i64> = b
        .query_first(format!("SELECT v FROM t WHERE id = {id}"))
        .await
        .expect("read");
    assert_eq!(kept, Some(2));
    b.query_drop("COMMIT").await.expect("commit");
    a.query_drop(format!("DELETE FROM t WHERE id = {id}"))
        .await
        .expect("clean up");
    a.query_drop("COMMIT").await.expect("commit");
    // Two open transactions hold both connections: a third client waits checkout_timeout_ms,
    // then hears that the pool is exhausted (1040), not that the shard is down.
    for c in clients.iter_mut().take(2) {
        c.query_drop("SELECT COUNT(*) FROM t")
            .await
            .expect("begins");
    }
    match clients[2].query_drop("SELECT COUNT(*) FROM t").await {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1040, "{se:?}");
            assert!(
                se.message.contains("backend.checkout_timeout_ms"),
                "{}",
                se.message
            );
        }
        other => panic!("expected ERR 1040 while both connections are held: {other:?}"),
    }
    let metrics = crate::metrics::scrape(metrics_port);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("myshard_backend_pool_exhausted_total{") && !l.ends_with(" 0")),
        "{metrics}"
    );
    for c in clients.iter_mut().take(2) {
        c.query_drop("COMMIT").await.expect("commit");
    }
    let n: Option<i64> = clients[2]
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .expect("a connection is free again");
    assert!(n.is_some());
}
