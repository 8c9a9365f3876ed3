//! LOCK TABLES / UNLOCK TABLES over a shard map: a session's table locks hold on every shard
//! of its tables (every physical table of a split one), as on one server, and are released
//! by UNLOCK TABLES, BEGIN, a failed LOCK TABLES and the end of the session.

use crate::env::{connect_to, env};
use myshard_tests::cluster::sql;
use mysql_async::prelude::*;

const SCHEMA: &str = r#"
[[users]]
name = "app"
password = "app"
schemas = ["lk"]

[[schemas]]
name = "lk"
default_shard = "s0"
database = "lk_db"

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
name = "t"
rule = "by_id"
column = "id"

[[schemas.tables]]
name = "s"
rule = "split"
column = "id"

[[schemas.tables]]
name = "b"
rule = "everywhere"
"#;

fn code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// One key of `physical` per shard that holds rows of it, read on the primaries.
fn key_per_physical_table(physical: &str) -> Vec<i64> {
    let e = env();
    (0..4)
        .filter_map(|s| {
            sql(
                e.cluster.primary_port(s),
                &format!("SELECT MIN(id) FROM lk_db.{physical}"),
            )
            .expect("min id")
            .trim()
            .parse::<i64>()
            .ok()
        })
        .collect()
}

/// Runs `UPDATE table SET v = v WHERE id = k` through myshard for every key at once, each
/// from its own client waiting at most `wait_s` for table locks; the error codes, in order.
async fn update_each(port: u16, table: &str, keys: &[i64], wait_s: u32) -> Vec<Option<u16>> {
    let mut tasks = Vec::new();
    for &k in keys {
        let table = table.to_string();
        tasks.push(tokio::spawn(async move {
            let mut c = connect_to(port, "app", "app", Some("lk"))
                .await
                .expect("connects");
            c.query_drop(format!("SET SESSION lock_wait_timeout = {wait_s}"))
                .await
                .expect("SET");
            let res = c
                .query_drop(format!("UPDATE {table} SET v = v WHERE id = {k}"))
                .await;
            res.err().as_ref().and_then(code)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_tables_holds_on_every_shard_of_the_table() {
    let e = env();
    for s in 0..4 {
        sql(
            e.cluster.primary_port(s),
            "DROP DATABASE IF EXISTS lk_db; CREATE DATABASE lk_db;",
        )
        .expect("database");
    }
    let proxy = myshard_tests::Proxy::start(&e.cluster, "", SCHEMA).expect("proxy");
    let port = proxy.port;
    let mut a = connect_to(port, "app", "app", Some("lk"))
        .await
        .expect("connects");
    a.query_drop(
        "CREATE TABLE t (id INT PRIMARY KEY, v INT);
         CREATE TABLE s (id INT PRIMARY KEY, v INT);
         CREATE TABLE b (id INT PRIMARY KEY, v INT);
         CREATE TABLE u (id INT PRIMARY KEY, v INT);",
    )
    .await
    .expect("tables");
    let rows: Vec<String> = (1..=40).map(|i| format!("({i}, {i})")).collect();
    for table in ["t", "s", "b", "u"] {
        a.query_drop(format!(
            "INSERT INTO {table} (id, v) VALUES {}",
            rows.join(", ")
        ))
        .await
        .expect("rows");
    }
    let t_keys = key_per_physical_table("t");
    assert_eq!(t_keys.len(), 4, "t has rows on every shard");
    let mut s_keys = key_per_physical_table("s_0");
    s_keys.extend(key_per_physical_table("s_1"));
    assert_eq!(s_keys.len(), 8, "s has rows in every physical table");

    // Locked: the session's own statements work within its locks, as on one server.
    a.query_drop("LOCK TABLES t WRITE, s READ /*!32311 LOCAL */, b READ")
        .await
        .expect("LOCK TABLES");
    // What a dump runs between its LOCK TABLES and its reads: session variables set on
    // one shard's connection, catalog reads; none of them may drop the locks elsewhere.
    a.query_drop("SET SESSION character_set_results = 'binary', @dump = 1")
        .await
        .expect("SET");
    let tables: Option<i64> = a
        .query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'lk'")
        .await
        .expect("catalog read");
    assert_eq!(tables, Some(4));
    a.query_drop("SET SESSION character_set_results = DEFAULT")
        .await
        .expect("SET");
    a.query_drop("UPDATE t SET v = v + 1")
        .await
        .expect("writes to a WRITE-locked table on every shard");
    assert_eq!(a.affected_rows(), 40);
    let n: Option<i64> = a
        .query_first("SELECT COUNT(*) FROM s")
        .await
        .expect("reads a READ-locked split table");
    assert_eq!(n, Some(40));
    // A UNION ALL across the locked tables' shards runs within the locks, its branches'
    // column check (a prepare on each branch's connection) too.
    a.query_drop("SET SESSION lock_wait_timeout = 5")
        .await
        .expect("SET");
    let v: Vec<i64> = a
        .query("SELECT v FROM t WHERE id <= 3 UNION ALL SELECT v FROM s WHERE id <= 2")
        .await
        .expect("a UNION ALL within the locks");
    assert_eq!(v.len(), 5, "{v:?}");
    let err = a
        .query_drop("SELECT COUNT(*) FROM u")
        .await
        .expect_err("u is not locked");
    assert_eq!(code(&err), Some(1100), "{err}");
    let err = a
        .query_drop("UPDATE s SET v = 0 WHERE id = 1")
        .await
        .expect_err("s is locked for reading");
    assert_eq!(code(&err), Some(1099), "{err}");

    // Other sessions wait on every shard: writes to t and to each physical table of s.
    assert_eq!(
        update_each(port, "t", &t_keys, 1).await,
        vec![Some(1205); 4],
        "a write to t waits for the lock on each shard"
    );
    assert_eq!(
        update_each(port, "s", &s_keys, 1).await,
        vec![Some(1205); 8],
        "a write to s waits for the lock on each physical table"
    );

    a.query_drop("UNLOCK TABLES").await.expect("UNLOCK TABLES");
    assert_eq!(update_each(port, "t", &t_keys, 5).await, vec![None; 4]);
    assert_eq!(update_each(port, "s", &s_keys, 5).await, vec![None; 8]);
    let n: Option<i64> = a
        .query_first("SELECT COUNT(*) FROM u")
        .await
        .expect("u is readable again");
    assert_eq!(n, Some(40));

    // A LOCK TABLES that fails on one shard leaves the session holding no locks.
    a.query_drop("LOCK TABLES t READ").await.expect("LOCK");
    let err = a
        .query_drop("LOCK TABLES t WRITE, missing READ")
        .await
        .expect_err("no such table");
    assert_eq!(code(&err), Some(1146), "{err}");
    assert_eq!(update_each(port, "t", &t_keys, 5).await, vec![None; 4]);

    // A new LOCK TABLES replaces the last one's locks: those on shards it does not reach too.
    a.query_drop("LOCK TABLES t WRITE").await.expect("LOCK");
    a.query_drop("LOCK TABLES u WRITE").await.expect("LOCK");
    assert_eq!(update_each(port, "t", &t_keys, 5).await, vec![None; 4]);
    a.query_drop("UNLOCK TABLES").await.expect("UNLOCK");

    // BEGIN releases the locks, as in MySQL.
    a.query_drop("LOCK TABLES t WRITE").await.expect("LOCK");
    a.query_drop("BEGIN").await.expect("BEGIN");
    assert_eq!(update_each(port, "t", &t_keys, 5).await, vec![None; 4]);
    a.query_drop("COMMIT").await.expect("COMMIT");

    // Under autocommit=0 a transaction cannot begin where the locks are (myshard begins it
    // with BEGIN, which would release them): refused, saying so.
    a.query_drop("SET autocommit = 0").await.expect("SET");
    a.query_drop("LOCK TABLES t WRITE").await.expect("LOCK");
    let err = a
        .query_drop("UPDATE t SET v = v WHERE id = 1")
        .await
        .expect_err("refused");
    assert_eq!(code(&err), Some(1235), "{err}");
    assert!(err.to_string().contains("UNLOCK TABLES"), "{err}");
    a.query_drop("UNLOCK TABLES").await.expect("UNLOCK");
    a.query_drop("UPDATE t SET v = v WHERE id = 1; COMMIT; SET autocommit = 1")
        .await
        .expect("a transaction after UNLOCK TABLES");

    // The end of the session releases its locks.
    a.query_drop("LOCK TABLES t WRITE, s WRITE")
        .await
        .expect("LOCK");
    a.disconnect().await.expect("disconnects");
    assert_eq!(update_each(port, "t", &t_keys, 10).await, vec![None; 4]);
    assert_eq!(update_each(port, "s", &s_keys, 10).await, vec![None; 8]);
}
