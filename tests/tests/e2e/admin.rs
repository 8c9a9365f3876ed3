//! The admin interface: its own port and credentials, every command, and the application port
//! refusing admin commands.

use crate::env::{config_rest, connect, connect_to, env};
use myshard_tests::cluster::free_port;
use myshard_tests::Proxy;
use mysql_async::prelude::*;
use std::process::Command;

pub(crate) fn admin_cli(
    port: u16,
    user: &str,
    password: &str,
    sql: &str,
) -> (bool, String, String) {
    let o = Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", "-B", "-N", "--skip-ssl"])
        .arg(format!("-P{port}"))
        .arg(format!("-u{user}"))
        .arg(format!("-p{password}"))
        .arg("-e")
        .arg(sql)
        .output()
        .expect("mariadb client");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_commands_on_their_own_port() {
    let e = env();
    let admin_port = free_port().expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let slow_log = dir.path().join("slow.jsonl");
    let proxy = Proxy::start(
        &e.cluster,
        &format!("slow_query_ms = 0\nslow_query_log = \"{}\"\n", slow_log.display()),
        &format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nuser = \"dbadmin\"\npassword = \"secret\"\n\n{}", config_rest()),
    )
    .expect("proxy");

    // Credentials: the admin user only, with its password.
    let (ok, _, err) = admin_cli(admin_port, "dbadmin", "wrong", "SHOW SHARDS");
    assert!(!ok && err.contains("1045"), "{err}");
    let (ok, _, err) = admin_cli(admin_port, "app", "app", "SHOW SHARDS");
    assert!(
        !ok && err.contains("1045"),
        "application users are not admins: {err}"
    );

    // A workload on the application port to observe.
    crate::sharding::setup();
    let mut c = connect_to(proxy.port, "mall", "mall", Some("mall"))
        .await
        .expect("connects");
    for i in 0..5 {
        let _: Option<String> = c
            .query_first(format!("SELECT name FROM users WHERE id = {i}"))
            .await
            .expect("read");
    }

    let (ok, out, err) = admin_cli(admin_port, "dbadmin", "secret", "SHOW SHARDS");
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|l| l.starts_with("s0\t127.0.0.1:")),
        "{out}"
    );

    let (ok, out, err) = admin_cli(admin_port, "dbadmin", "secret", "SHOW BACKENDS");
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 8, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("\treplica\t")).count(),
        4,
        "{out}"
    );

    let (ok, out, err) = admin_cli(admin_port, "dbadmin", "secret", "SHOW TABLE RULES");
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("mall\tt_order\tsplit\thash\tuser_id\t")),
        "{out}"
    );

    let (ok, out, err) = admin_cli(
        admin_port,
        "dbadmin",
        "secret",
        "USE mall; EXPLAIN ROUTE SELECT * FROM users WHERE id = 7",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("SELECT * FROM users WHERE id = 7"), "{out}");
    // A statement whose parts run first: the admin port shows the same plan tree as the
    // client's EXPLAIN ROUTE and `myshard explain`, not a refusal.
    let (ok, out, err) = admin_cli(
        admin_port,
        "dbadmin",
        "secret",
        "USE mall; EXPLAIN ROUTE SELECT name FROM users WHERE id IN (SELECT o.user_id FROM t_order o WHERE o.status = 'x')",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("stage: materialize subqueries") && out.contains("part 1 (IN list)"),
        "{out}"
    );

    let (ok, out, err) = admin_cli(admin_port, "dbadmin", "secret", "SHOW QUERY DIGESTS");
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("SELECT NAME FROM USERS WHERE ID = ?\t"))
        .unwrap_or_else(|| panic!("digest missing:\n{out}"));
    assert_eq!(line.split('\t').nth(1), Some("5"), "{line}");

    let (ok, out, err) = admin_cli(admin_port, "dbadmin", "secret", "SHOW SLOW QUERIES");
    assert!(ok, "{err}");
    assert!(
        out.contains("\"user\":\"mall\"") && out.contains("\"digest\""),
        "{out}"
    );
    let logged = std::fs::read_to_string(&slow_log).expect("slow-query log file");
    assert!(logged.lines().count() >= 5, "{logged}");
    assert!(
        logged
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "JSON lines: {logged}"
    );

    let (ok, out, err) = admin_cli(admin_port, "dbadmin", "secret", "RELOAD CONFIG");
    assert!(ok && out.contains("reloaded"), "{out}{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[schemas]]\nname = \"x\"\ndefault_shard = \"nope\"\n",
    )
    .expect("write");
    let (ok, out, err) = admin_cli(
        admin_port,
        "dbadmin",
        "secret",
        &format!("CHECK CONFIG '{}'", bad.display()),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("schemas[0].default_shard\tunknown shard 'nope'"),
        "{out}"
    );

    let replica = e.cluster.replica_ports(1)[0];
    let (ok, _, err) = admin_cli(
        admin_port,
        "dbadmin",
        "secret",
        &format!("SET BACKEND '127.0.0.1:{replica}' OFFLINE"),
    );
    assert!(ok, "{err}");
    let (_, out, _) = admin_cli(admin_port, "dbadmin", "secret", "SHOW BACKENDS");
    let row = out
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{replica}")))
        .expect("row")
        .to_string();
    assert!(row.contains("\toffline\tno\t"), "{row}");
    let (ok, _, err) = admin_cli(
        admin_port,
        "dbadmin",
        "secret",
        &format!("SET BACKEND '127.0.0.1:{replica}' ONLINE"),
    );
    assert!(ok, "{err}");
    let (_, out, _) = admin_cli(admin_port, "dbadmin", "secret", "SHOW BACKENDS");
    let row = out
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{replica}")))
        .expect("row")
        .to_string();
    assert!(!row.contains("offline"), "{row}");

    let (ok, _, err) = admin_cli(admin_port, "dbadmin", "secret", "DROP TABLE users");
    assert!(!ok && err.contains("unknown admin command"), "{err}");
}

#[tokio::test]
async fn the_application_port_does_not_run_admin_commands() {
    let mut c = connect("app", "app", Some("shop")).await.expect("connects");
    // Not admin commands there, and not MySQL statements either: refused by the statement
    // policy, never sent to a shard.
    for cmd in ["SHOW SHARDS", "RELOAD CONFIG", "SHOW BACKENDS"] {
        match c.query_drop(cmd).await {
            Err(mysql_async::Error::Server(se)) => {
                assert_eq!(se.code, 1235, "{cmd}: {se:?}");
                assert!(se.message.contains("does not recognise"), "{cmd}: {se:?}");
            }
            other => panic!("{cmd} on the application port: {other:?}"),
        }
    }
}
