//! Self-protection: statement timeouts that stop the query on the shard, rate limits that
//! refuse one client's excess and nobody else's, and per-user connection caps.

use crate::env::{config_rest, connect_to, env};
use myshard_tests::cluster::sql;
use myshard_tests::Proxy;
use mysql_async::prelude::*;
use std::time::{Duration, Instant};

fn proxy_with(protection: &str) -> Proxy {
    Proxy::start(
        &env().cluster,
        "",
        &format!("[protection]\n{protection}\n{}", config_rest()),
    )
    .expect("proxy")
}

#[tokio::test]
async fn a_statement_over_its_timeout_is_gone_from_the_shard_within_a_second() {
    let proxy = proxy_with("statement_timeout_ms = 1000\n");
    let mut c = connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    let started = Instant::now();
    match c.query_drop("SELECT SLEEP(20) AS timeout_probe").await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 3024, "{se:?}"),
        other => panic!("expected ERR 3024, got {other:?}"),
    }
    let failed_after = started.elapsed();
    assert!(failed_after < Duration::from_secs(5), "{failed_after:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let e = env();
    for port in std::iter::once(e.cluster.primary_port(0)).chain(e.cluster.replica_ports(0)) {
        let running = sql(
            port,
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(20) AS timeout%'",
        )
        .expect("processlist");
        assert_eq!(running.trim(), "0", "still running on {port}");
    }
    // The client's connection keeps working.
    let one: Option<i64> = c.query_first("SELECT 1").await.expect("usable");
    assert_eq!(one, Some(1));
}

/// A statement timeout inside a transaction rolls the transaction back: the client hears
/// of it at every statement until it ends the transaction, COMMIT included, and nothing of
/// the transaction is stored.
#[tokio::test]
async fn a_timeout_inside_a_transaction_fails_it_until_the_client_ends_it() {
    let e = env();
    sql(
        e.cluster.primary_port(0),
        "CREATE TABLE shop.tx_timeout (id INT PRIMARY KEY)",
    )
    .expect("table");
    let proxy = proxy_with("statement_timeout_ms = 1000\n");
    let mut c = connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    let code = |r: mysql_async::Result<()>| match r {
        Err(mysql_async::Error::Server(se)) => se.code,
        other => panic!("expected an error, got {other:?}"),
    };
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop("INSERT INTO tx_timeout (id) VALUES (1)")
        .await
        .expect("insert");
    assert_eq!(code(c.query_drop("SELECT SLEEP(5)").await), 3024);
    assert_eq!(
        code(c.query_drop("INSERT INTO tx_timeout (id) VALUES (2)").await),
        1613
    );
    assert_eq!(code(c.query_drop("SELECT 1").await), 1613);
    assert_eq!(code(c.query_drop("COMMIT").await), 1613);
    // The transaction is over: the session works again, in autocommit, and stored nothing.
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM tx_timeout")
        .await
        .expect("count");
    assert_eq!(n, Some(0));
    // The same under autocommit = 0, ended by ROLLBACK.
    c.query_drop("SET autocommit = 0")
        .await
        .expect("autocommit off");
    c.query_drop("INSERT INTO tx_timeout (id) VALUES (3)")
        .await
        .expect("insert");
    assert_eq!(code(c.query_drop("SELECT SLEEP(5)").await), 3024);
    assert_eq!(
        code(c.query_drop("UPDATE tx_timeout SET id = 4").await),
        1613
    );
    c.query_drop("ROLLBACK").await.expect("rollback ends it");
    c.query_drop("SET autocommit = 1")
        .await
        .expect("autocommit on");
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM tx_timeout")
        .await
        .expect("count");
    assert_eq!(n, Some(0));
    let stored = sql(
        e.cluster.primary_port(0),
        "SELECT COUNT(*) FROM shop.tx_timeout",
    )
    .expect("count on the shard");
    assert_eq!(stored.trim(), "0");
}

#[tokio::test]
async fn a_client_over_its_rate_limit_is_refused_and_others_are_not() {
    let proxy = proxy_with(
        "[[protection.rate_limits]]\nname = \"nat-limit\"\nuser = \"nat\"\nqps = 2\nburst = 2\n",
    );
    let mut limited = connect_to(proxy.port, "nat", "nat", Some("shop"))
        .await
        .expect("connects");
    let mut other = connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..10 {
        match limited.query_drop("SELECT 1 FROM items LIMIT 1").await {
            Ok(()) => ok += 1,
            Err(mysql_async::Error::Server(se)) => {
                assert_eq!(se.code, 1226, "{se:?}");
                assert!(se.message.contains("nat-limit"), "{}", se.message);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
        other
            .query_drop("SELECT 1 FROM items LIMIT 1")
            .await
            .expect("the other client is not limited");
    }
    assert!(ok >= 2 && refused >= 5, "ok {ok}, refused {refused}");
}

#[tokio::test]
async fn connections_per_user_are_capped() {
    let proxy = proxy_with("max_connections_per_user = { nat = 2 }\n");
    let a = connect_to(proxy.port, "nat", "nat", Some("shop"))
        .await
        .expect("first");
    let b = connect_to(proxy.port, "nat", "nat", Some("shop"))
        .await
        .expect("second");
    match connect_to(proxy.port, "nat", "nat", Some("shop")).await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1203, "{se:?}"),
        other => panic!("a third connection was accepted: {:?}", other.map(|_| ())),
    }
    let _app = connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("other users are not capped");
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _again = connect_to(proxy.port, "nat", "nat", Some("shop"))
        .await
        .expect("a slot came free");
    drop(b);
}

#[tokio::test]
async fn shedding_refuses_non_core_statements_and_keeps_core_ones() {
    let admin_port = myshard_tests::cluster::free_port().expect("port");
    let proxy = Proxy::start(
        &env().cluster,
        "",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nuser = \"ops\"\npassword = \"ops\"\n\n[protection]\n[[protection.noncore]]\nname = \"reports\"\ntable = \"items\"\n\n{}",
            config_rest()
        ),
    )
    .expect("proxy");
    let admin = |sql: &str| {
        let (ok, out, err) = crate::admin::admin_cli(admin_port, "ops", "ops", sql);
        assert!(ok, "{sql}: {err}");
        out
    };
    let mut c = connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    c.query_drop("SELECT COUNT(*) FROM items")
        .await
        .expect("not shed while shedding is off");
    assert!(admin("SET SHEDDING ON").contains("on"));
    match c.query_drop("SELECT COUNT(*) FROM items").await {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1226, "{se:?}");
            assert!(se.message.contains("'reports'"), "{}", se.message);
        }
        other => panic!("a non-core statement ran while shedding: {other:?}"),
    }
    let one: Option<i64> = c
        .query_first("SELECT 1")
        .await
        .expect("core statements keep working");
    assert_eq!(one, Some(1));
    assert!(admin("SHOW PROTECTION").contains("noncore.reports"));
    admin("SET SHEDDING OFF");
    c.query_drop("SELECT COUNT(*) FROM items")
        .await
        .expect("served again");
}

#[tokio::test]
async fn protection_rules_are_added_and_removed_by_admin_commands() {
    let admin_port = myshard_tests::cluster::free_port().expect("port");
    let proxy = Proxy::start(
        &env().cluster,
        "",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nuser = \"ops\"\npassword = \"ops\"\n\n{}", config_rest()),
    )
    .expect("proxy");
    let admin = |sql: &str| {
        let (ok, out, err) = crate::admin::admin_cli(admin_port, "ops", "ops", sql);
        assert!(ok, "{sql}: {err}");
        out
    };
    let mut c = connect_to(proxy.port, "nat", "nat", Some("shop"))
        .await
        .expect("connects");
    admin("ADD RATE LIMIT 'rt' QPS 0.1 BURST 1 USER 'nat'");
    assert!(admin("SHOW PROTECTION").contains("rate_limit.rt (runtime)"));
    c.query_drop("SELECT 1")
        .await
        .expect("the burst allows one");
    match c.query_drop("SELECT 1").await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1226, "{se:?}"),
        other => panic!("the runtime limit did not apply: {other:?}"),
    }
    admin("REMOVE RATE LIMIT 'rt'");
    c.query_drop("SELECT 1").await.expect("the limit is gone");
    admin("ADD NONCORE 'adhoc' TABLE 'items'; SET SHEDDING ON");
    assert!(
        c.query_drop("SELECT COUNT(*) FROM items").await.is_err(),
        "shed"
    );
    admin("REMOVE NONCORE 'adhoc'");
    c.query_drop("SELECT COUNT(*) FROM items")
        .await
        .expect("no longer non-core");
    admin("SET SHEDDING OFF");
}
