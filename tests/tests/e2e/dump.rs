//! mysqldump's round trip through myshard, with the dump tool's defaults: a logical schema
//! dumped through myshard (`mariadb-dump`), restored through myshard into an empty logical
//! schema of the same shape (`mariadb`), gives the same tables and rows.

use crate::env::{connect_to, env};
use myshard_tests::cluster::sql;
use mysql_async::prelude::*;
use std::process::Command;

fn schema(name: &str) -> String {
    format!(
        r#"
[[schemas]]
name = "{name}"
default_shard = "s0"
database = "{name}_db"

[[schemas.rules]]
name = "by_id"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.rules]]
name = "split"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]
tables_per_shard = 2

[[schemas.rules]]
name = "everywhere"
kind = "broadcast"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.tables]]
name = "customers"
rule = "by_id"
column = "id"

[[schemas.tables]]
name = "orders"
rule = "by_id"
column = "customer_id"

[[schemas.tables]]
name = "products"
rule = "everywhere"

[[schemas.tables]]
name = "events"
rule = "split"
column = "customer_id"
"#
    )
}

#[tokio::test]
async fn mariadb_dump_through_myshard_restores_through_myshard() {
    let e = env();
    for s in 0..4 {
        sql(
            e.cluster.primary_port(s),
            "DROP DATABASE IF EXISTS dsrc_db; DROP DATABASE IF EXISTS ddst_db; CREATE DATABASE dsrc_db; CREATE DATABASE ddst_db;",
        )
        .expect("databases");
    }
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "",
        &format!(
            "[[users]]\nname = \"app\"\npassword = \"app\"\nschemas = [\"dsrc\", \"ddst\"]\n{}{}",
            schema("dsrc"),
            schema("ddst")
        ),
    )
    .expect("proxy");
    let mut src = connect_to(proxy.port, "app", "app", Some("dsrc"))
        .await
        .expect("connects");
    src.query_drop(
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50) CHARACTER SET utf8mb4, note TEXT, created DATETIME);
         CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2), KEY (customer_id));
         CREATE TABLE products (id INT PRIMARY KEY, title VARCHAR(50), price DECIMAL(8,2));
         CREATE TABLE notes (id INT PRIMARY KEY, body VARBINARY(100));
         CREATE TABLE events (id INT NOT NULL, customer_id INT NOT NULL, kind VARCHAR(20), PRIMARY KEY (customer_id, id));",
    )
    .await
    .expect("tables");
    let customers: Vec<String> = (1..=60)
        .map(|i| {
            format!(
                "({i}, 'name {i} \\'q\\' 😀', NULL, '2026-01-{:02} 10:00:00')",
                i % 28 + 1
            )
        })
        .collect();
    let orders: Vec<String> = (1..=120)
        .map(|i| format!("({i}, {}, {}.{:02})", i % 60 + 1, i * 3, i % 100))
        .collect();
    src.query_drop(format!(
        "INSERT INTO customers (id, name, note, created) VALUES {}",
        customers.join(", ")
    ))
    .await
    .expect("customers");
    src.query_drop(format!(
        "INSERT INTO orders (id, customer_id, amount) VALUES {}",
        orders.join(", ")
    ))
    .await
    .expect("orders");
    src.query_drop(
        "INSERT INTO products (id, title, price) VALUES (1, 'Keyboard', 49.90), (2, 'Monitor', 219.00);
         INSERT INTO notes (id, body) VALUES (1, 0x00FF10), (2, NULL);",
    )
    .await
    .expect("products and notes");
    let events: Vec<String> = (1..=80)
        .map(|i| format!("({i}, {}, 'kind {}')", i % 40 + 1, i % 3))
        .collect();
    src.query_drop(format!(
        "INSERT INTO events (id, customer_id, kind) VALUES {}",
        events.join(", ")
    ))
    .await
    .expect("events");
    // The dump's own session reads from replicas: they hold every row first.
    for s in 0..4 {
        e.cluster.sync_replicas(s).expect("replicas catch up");
    }
    let port = proxy.port.to_string();
    let dump = Command::new("mariadb-dump")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            "-uapp",
            "-papp",
            "--skip-ssl",
        ])
        .arg(format!("-P{port}"))
        .arg("dsrc")
        .output()
        .expect("mariadb-dump runs (apt-get install mariadb-client)");
    assert!(
        dump.status.success(),
        "dump through myshard failed: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(text.contains("INSERT INTO `customers` VALUES"), "{text}");
    let restore = {
        use std::io::Write;
        let mut child = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                "-uapp",
                "-papp",
                "--skip-ssl",
            ])
            .arg(format!("-P{port}"))
            .arg("ddst")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("mariadb runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(dump.stdout.as_slice())
            .expect("writes the dump");
        child.wait_with_output().expect("restore finishes")
    };
    assert!(
        restore.status.success(),
        "restore through myshard failed: {}",
        String::from_utf8_lossy(&restore.stderr)
    );
    for s in 0..4 {
        e.cluster.sync_replicas(s).expect("replicas catch up");
    }
    let mut dst = connect_to(proxy.port, "app", "app", Some("ddst"))
        .await
        .expect("connects");
    for (table, key) in [
        ("customers", "id"),
        ("orders", "id"),
        ("products", "id"),
        ("notes", "id"),
        ("events", "customer_id, id"),
    ] {
        let q = format!("SELECT * FROM {table} ORDER BY {key}");
        let a: Vec<mysql_async::Row> = src.query(&q).await.expect("source rows");
        let b: Vec<mysql_async::Row> = dst.query(&q).await.expect("restored rows");
        let values = |rows: Vec<mysql_async::Row>| -> Vec<Vec<mysql_async::Value>> {
            rows.into_iter().map(|r| r.unwrap()).collect()
        };
        assert_eq!(values(a), values(b), "{table}");
        let (_, create_a): (String, String) = src
            .query_first(format!("SHOW CREATE TABLE {table}"))
            .await
            .expect("definition")
            .expect("row");
        let (_, create_b): (String, String) = dst
            .query_first(format!("SHOW CREATE TABLE {table}"))
            .await
            .expect("definition")
            .expect("row");
        assert_eq!(create_a, create_b, "{table}");
    }
    // Each restored row of a sharded table is where its key routes: a read by key, which
    // goes to that shard only, finds it; and no row is stored twice.
    for id in [1, 7, 33, 60] {
        let name: Option<String> = dst
            .query_first(format!("SELECT name FROM customers WHERE id = {id}"))
            .await
            .expect("point read");
        assert_eq!(name, Some(format!("name {id} 'q' 😀")), "customer {id}");
    }
    let on_shards: i64 = (0..4)
        .map(|s| {
            sql(
                e.cluster.primary_port(s),
                "SELECT COUNT(*) FROM ddst_db.customers",
            )
            .expect("count")
            .trim()
            .parse::<i64>()
            .unwrap_or(-1)
        })
        .sum();
    assert_eq!(on_shards, 60);
    // The split table's rows are in its physical tables, each once.
    let physical: i64 = (0..4)
        .map(|s| {
            sql(
                e.cluster.primary_port(s),
                "SELECT (SELECT COUNT(*) FROM ddst_db.events_0) + (SELECT COUNT(*) FROM ddst_db.events_1)",
            )
            .expect("count")
            .trim()
            .parse::<i64>()
            .unwrap_or(-1)
        })
        .sum();
    assert_eq!(physical, 80);
}
