//! Routing on the 4-shard cluster: every rule kind, database-and-table sharding, DDL,
//! broadcast tables, generated ids, refusals. Where rows landed is checked by reading each
//! shard directly; which shard received a statement is checked in each shard's general log
//! (statements carry a unique string literal, which survives rewriting).

use crate::env::{connect, connect_to, env};
use myshard_config::Config;
use myshard_router::{CountingIds, Router};
use myshard_tests::cluster::sql;
use mysql_async::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, OnceLock};

const SHARDS: [&str; 4] = ["s0", "s1", "s2", "s3"];

fn port_of(shard: &str) -> u16 {
    let i: usize = shard
        .trim_start_matches('s')
        .parse()
        .expect("shard name sN");
    env().cluster.primary_port(i)
}

/// Runs SQL on one shard directly (not through myshard), in database `mall`.
fn on_shard(shard: &str, statement: &str) -> String {
    sql(port_of(shard), &format!("USE mall; {statement}"))
        .unwrap_or_else(|e| panic!("{shard}: {e}"))
}

/// The shard the router's own rules say a key of `table` lives on.
fn expected_shard(table: &str, key_sql: &str) -> String {
    let config = Config::load(&env().proxy.config_path).expect("proxy config");
    let router = Router::new(Arc::new(config));
    let plan = router
        .route(
            Some("mall"),
            &format!("SELECT * FROM {table} WHERE {key_sql}"),
            &mut CountingIds(0),
        )
        .expect("routes");
    assert_eq!(plan.targets.len(), 1, "{key_sql} is a point key");
    plan.targets[0].shard.clone()
}

/// The shards whose general log has a statement containing `marker`.
fn shards_that_ran(marker: &str) -> Vec<String> {
    let (head, tail) = marker.split_at(marker.len() / 2);
    SHARDS
        .iter()
        .filter(|s| {
            let n = sql(
                port_of(s),
                &format!(
                    "SELECT COUNT(*) FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE CONCAT('%', '{head}', '{tail}', '%')"
                ),
            )
            .unwrap_or_default();
            n.trim() != "0"
        })
        .map(|s| s.to_string())
        .collect()
}

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "probe-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates the `mall` tables through myshard, once.
pub(crate) fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let e = env();
        let ddl = "CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(50), region CHAR(2));
            CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, amount DECIMAL(10,2), KEY (user_id));
            CREATE TABLE stores (id INT PRIMARY KEY, region CHAR(2), name VARCHAR(50));
            CREATE TABLE events (id INT PRIMARY KEY, tenant_id INT, what VARCHAR(50));
            CREATE TABLE logs (id INT PRIMARY KEY, msg VARCHAR(50));
            CREATE TABLE t_order (order_id BIGINT PRIMARY KEY, user_id BIGINT, amount INT);
            CREATE TABLE countries (code CHAR(2) PRIMARY KEY, name VARCHAR(50));
            CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);
            CREATE TABLE scores (id INT PRIMARY KEY, name VARCHAR(20), team CHAR(1), points INT, bonus DECIMAL(8,2), played DATE);";
        let out = std::process::Command::new("mariadb")
            .args(["--no-defaults", "-h127.0.0.1", "-umall", "-pmall", "--skip-ssl", "mall"])
            .arg(format!("-P{}", e.proxy.port))
            .arg("-e")
            .arg(ddl)
            .output()
            .expect("mariadb runs");
        assert!(out.status.success(), "DDL through myshard failed: {}", String::from_utf8_lossy(&out.stderr));
    });
}

async fn mall() -> mysql_async::Conn {
    setup();
    connect("mall", "mall", Some("mall"))
        .await
        .expect("connects to mall")
}

#[test]
fn ddl_creates_the_physical_tables_on_every_shard() {
    setup();
    for s in SHARDS {
        let tables: BTreeSet<String> = on_shard(s, "SHOW TABLES")
            .lines()
            .map(str::to_string)
            .collect();
        for t in [
            "users",
            "orders",
            "stores",
            "events",
            "logs",
            "t_order_0",
            "t_order_1",
            "countries",
        ] {
            assert!(tables.contains(t), "{s} lacks {t}: {tables:?}");
        }
        assert!(
            !tables.contains("t_order"),
            "{s} has the logical name as a physical table"
        );
        assert_eq!(
            tables.contains("notes"),
            s == "s0",
            "unsharded table only on the default shard ({s})"
        );
    }
}

#[tokio::test]
async fn show_tables_lists_logical_names() {
    let mut c = mall().await;
    let tables: Vec<String> = c.query("SHOW TABLES").await.expect("show tables");
    for t in ["users", "t_order", "countries", "notes"] {
        assert!(tables.contains(&t.to_string()), "{tables:?}");
    }
    assert!(
        !tables.iter().any(|t| t.starts_with("t_order_")),
        "{tables:?}"
    );
}

/// Inserts rows with one multi-row statement, then checks each row is on exactly the shard
/// the rule gives, and that point statements reach only that shard.
async fn check_rule(
    table: &str,
    key: &str,
    keys: &[String],
    insert_cols: &str,
    row: impl Fn(&str) -> String,
) {
    let mut c = mall().await;
    let values: Vec<String> = keys.iter().map(|k| row(k)).collect();
    c.query_drop(format!(
        "INSERT INTO {table} ({insert_cols}) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap_or_else(|e| panic!("multi-row insert into {table}: {e}"));
    assert_eq!(
        c.affected_rows(),
        keys.len() as u64,
        "affected rows summed over shards"
    );
    for k in keys {
        let expected = expected_shard(table, &format!("{key} = {k}"));
        let holders: Vec<&str> = SHARDS
            .iter()
            .copied()
            .filter(|s| {
                on_shard(
                    s,
                    &format!("SELECT COUNT(*) FROM {table} WHERE {key} = {k}"),
                )
                .trim()
                    != "0"
            })
            .collect();
        assert_eq!(
            holders,
            vec![expected.as_str()],
            "{table} row with {key} = {k}"
        );
    }
    // Point statements reach exactly one shard.
    for k in keys.iter().take(4) {
        let expected = expected_shard(table, &format!("{key} = {k}"));
        let marker = unique(table);
        let n: Option<i64> = c
            .query_first(format!(
                "SELECT COUNT(*) FROM {table} WHERE {key} = {k} AND '{marker}' <> ''"
            ))
            .await
            .expect("point select");
        assert_eq!(n, Some(1));
        assert_eq!(
            shards_that_ran(&marker),
            vec![expected.clone()],
            "point SELECT {table} {k}"
        );
        let marker = unique(table);
        c.query_drop(format!(
            "UPDATE {table} SET {key} = {key} WHERE {key} = {k} AND '{marker}' <> ''"
        ))
        .await
        .expect("point update");
        assert_eq!(
            shards_that_ran(&marker),
            vec![expected],
            "point UPDATE {table} {k}"
        );
    }
    // A scatter read returns every row exactly once.
    let list = keys.join(", ");
    let got: Vec<String> = c
        .query(format!(
            "SELECT CAST({key} AS CHAR) FROM {table} WHERE {key} IN ({list}) OR {key} IN ({list})"
        ))
        .await
        .expect("scatter select");
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want: Vec<String> = keys
        .iter()
        .map(|k| k.trim_matches('\'').to_string())
        .collect();
    want.sort();
    assert_eq!(got_sorted, want, "every row exactly once");
}

#[tokio::test]
async fn hash_rule_places_rows_and_point_statements() {
    let keys: Vec<String> = (1..=24).map(|i| i.to_string()).collect();
    check_rule("users", "id", &keys, "id, name", |k| {
        format!("({k}, 'user {k}')")
    })
    .await;
}

#[tokio::test]
async fn list_rule_places_rows_by_region() {
    let regions = ["'EU'", "'US'", "'AS'", "'OC'", "'AF'"];
    let keys: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
    let mut id = 0;
    let rows: BTreeMap<String, i32> = keys
        .iter()
        .map(|k| {
            id += 1;
            (k.clone(), 100 + id)
        })
        .collect();
    check_rule("stores", "region", &keys, "id, region", |k| {
        format!("({}, {k})", rows[k])
    })
    .await;
    // The default shard takes unlisted values.
    assert!(on_shard("s3", "SELECT region FROM stores ORDER BY region").contains("AF"));
}

#[tokio::test]
async fn lookup_rule_places_mapped_and_fallback_keys() {
    let keys: Vec<String> = [1, 2, 3, 40, 41, 42, 43]
        .iter()
        .map(|k| k.to_string())
        .collect();
    check_rule("events", "tenant_id", &keys, "id, tenant_id, what", |k| {
        format!("({k}, {k}, 'e')")
    })
    .await;
    assert_eq!(
        on_shard(
            "s3",
            "SELECT COUNT(*) FROM events WHERE tenant_id IN (1, 2)"
        )
        .trim(),
        "2"
    );
    assert_eq!(
        on_shard("s2", "SELECT COUNT(*) FROM events WHERE tenant_id = 3").trim(),
        "1"
    );
}

#[tokio::test]
async fn range_rule_places_rows_by_bounds() {
    let keys: Vec<String> = [5, 999, 1000, 1500, 2000, 2999, 3000, 90000]
        .iter()
        .map(|k| k.to_string())
        .collect();
    check_rule("logs", "id", &keys, "id, msg", |k| format!("({k}, 'm')")).await;
    assert_eq!(
        on_shard("s0", "SELECT GROUP_CONCAT(id ORDER BY id) FROM logs").trim(),
        "5,999"
    );
    assert_eq!(
        on_shard("s3", "SELECT GROUP_CONCAT(id ORDER BY id) FROM logs").trim(),
        "3000,90000"
    );
}

#[tokio::test]
async fn database_and_table_sharding_uses_physical_tables() {
    let mut c = mall().await;
    let users: Vec<i64> = (500..520).collect();
    let values: Vec<String> = users
        .iter()
        .map(|u| format!("({}, {u}, 1)", u * 10))
        .collect();
    c.query_drop(format!(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES {}",
        values.join(", ")
    ))
    .await
    .expect("insert");
    let config = Config::load(&env().proxy.config_path).expect("config");
    let router = Router::new(Arc::new(config));
    let mut used_tables = HashSet::new();
    for u in &users {
        let plan = router
            .route(
                Some("mall"),
                &format!("SELECT * FROM t_order WHERE user_id = {u}"),
                &mut CountingIds(0),
            )
            .expect("routes");
        let t = &plan.targets[0];
        let table = format!("t_order_{}", t.table.expect("table-sharded"));
        used_tables.insert(table.clone());
        for s in SHARDS {
            for phys in ["t_order_0", "t_order_1"] {
                let n = on_shard(
                    s,
                    &format!("SELECT COUNT(*) FROM {phys} WHERE user_id = {u}"),
                );
                let want = if s == t.shard && phys == table {
                    "1"
                } else {
                    "0"
                };
                assert_eq!(n.trim(), want, "user {u} in {s}.{phys}");
            }
        }
        let name: Option<i64> = c
            .query_first(format!(
                "SELECT t_order.amount FROM t_order WHERE t_order.user_id = {u}"
            ))
            .await
            .expect("qualified columns still work");
        assert_eq!(name, Some(1));
    }
    assert_eq!(used_tables.len(), 2, "both physical tables are used");
    // DELETE cannot alias its table on MariaDB: qualifiers follow the physical name.
    c.query_drop("DELETE FROM t_order WHERE t_order.user_id = 519")
        .await
        .expect("delete by key");
    assert_eq!(c.affected_rows(), 1);
    c.query_drop("DELETE FROM t_order WHERE t_order.user_id = 518 OR amount < 0")
        .await
        .expect("scatter delete");
    assert_eq!(c.affected_rows(), 1);
    for s in SHARDS {
        for phys in ["t_order_0", "t_order_1"] {
            assert_eq!(
                on_shard(
                    s,
                    &format!("SELECT COUNT(*) FROM {phys} WHERE user_id IN (518, 519)")
                )
                .trim(),
                "0"
            );
        }
    }
    c.query_drop(
        "INSERT INTO t_order (order_id, user_id, amount) VALUES (5180, 518, 1), (5190, 519, 1)",
    )
    .await
    .expect("restore");
    let all: Vec<i64> = c
        .query("SELECT user_id FROM t_order WHERE user_id BETWEEN 500 AND 519")
        .await
        .expect("scatter over every physical table");
    assert_eq!(
        all.iter().copied().collect::<BTreeSet<_>>(),
        users.iter().copied().collect()
    );
    assert_eq!(all.len(), users.len());
}

#[tokio::test]
async fn broadcast_tables_stay_identical_on_every_shard() {
    let mut c = mall().await;
    c.query_drop("INSERT INTO countries (code, name) VALUES ('FR', 'France'), ('DE', 'Germany'), ('JP', 'Japan')")
        .await
        .expect("insert");
    c.query_drop("UPDATE countries SET name = 'Nippon' WHERE code = 'JP'")
        .await
        .expect("update");
    c.query_drop("DELETE FROM countries WHERE code = 'DE'")
        .await
        .expect("delete");
    assert_eq!(
        c.affected_rows(),
        1,
        "affected rows are one shard's, not four"
    );
    c.query_drop("REPLACE INTO countries (code, name) VALUES ('IT', 'Italy')")
        .await
        .expect("replace");
    let first = on_shard("s0", "SELECT code, name FROM countries ORDER BY code");
    assert!(
        first.contains("Nippon") && first.contains("Italy") && !first.contains("Germany"),
        "{first}"
    );
    for s in SHARDS {
        assert_eq!(
            on_shard(s, "SELECT code, name FROM countries ORDER BY code"),
            first,
            "{s}"
        );
    }
    c.query_drop("INSERT INTO users (id, name) VALUES (4001, 'traveller')")
        .await
        .expect("insert user");
    let joined: Option<String> = c
        .query_first(
            "SELECT c.name FROM users u JOIN countries c ON c.code = 'JP' WHERE u.id = 4001",
        )
        .await
        .expect("join with broadcast on a single shard");
    assert_eq!(joined.as_deref(), Some("Nippon"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_ids_are_unique_under_concurrent_inserts() {
    setup();
    let mut tasks = Vec::new();
    for client in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut c = connect("mall", "mall", Some("mall")).await?;
            let mut ids = Vec::new();
            for i in 0..25 {
                let user = 7000 + client * 100 + i;
                c.query_drop(format!(
                    "INSERT INTO orders (user_id, amount) VALUES ({user}, 1.25)"
                ))
                .await?;
                let id = c
                    .last_insert_id()
                    .expect("OK packet carries the generated id");
                let via_sql: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await?;
                assert_eq!(via_sql, Some(id));
                ids.push((id, user));
            }
            Ok::<_, mysql_async::Error>(ids)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task").expect("inserts"));
    }
    let distinct: HashSet<u64> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(distinct.len(), 200, "duplicate generated ids");
    // Each id is stored with its row, on the user's shard.
    for (id, user) in all.iter().step_by(17) {
        let shard = expected_shard("orders", &format!("user_id = {user}"));
        assert_eq!(
            on_shard(
                &shard,
                &format!("SELECT user_id FROM orders WHERE id = {id}")
            )
            .trim(),
            user.to_string()
        );
    }
}

#[tokio::test]
async fn transactions_span_shards_and_roll_back_everywhere() {
    let mut c = mall().await;
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop(
        "INSERT INTO users (id, name) VALUES (3001, 'a'), (3002, 'b'), (3003, 'c'), (3004, 'd')",
    )
    .await
    .expect("insert in tx");
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM users WHERE id IN (3001, 3002, 3003, 3004)")
        .await
        .expect("q");
    assert_eq!(
        n,
        None.or(Some(4)),
        "the transaction sees its rows on every shard"
    );
    c.query_drop("ROLLBACK").await.expect("rollback");
    for s in SHARDS {
        assert_eq!(
            on_shard(
                s,
                "SELECT COUNT(*) FROM users WHERE id BETWEEN 3001 AND 3004"
            )
            .trim(),
            "0",
            "{s}"
        );
    }
}

async fn expect_1235(c: &mut mysql_async::Conn, statement: &str) -> String {
    match c.query_drop(statement).await {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1235, "{statement}: {se:?}");
            assert_eq!(se.state, "42000");
            se.message
        }
        other => panic!("{statement}: expected ERR 1235, got {other:?}"),
    }
}

#[tokio::test]
async fn the_copy_fallback_can_be_turned_off() {
    let e = env();
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "copy_fallback = false\n",
        &crate::env::config_rest(),
    )
    .expect("proxy");
    setup();
    let mut c = connect_to(proxy.port, "mall", "mall", Some("mall"))
        .await
        .expect("connects");
    let m = expect_1235(
        &mut c,
        "SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM users",
    )
    .await;
    assert!(m.contains("OVER"), "{m}");
}

#[tokio::test]
async fn unroutable_statements_fail_with_1235_and_a_reason() {
    let mut c = mall().await;
    // Reads myshard cannot split run on one server over a copy of their tables' rows...
    for q in [
        "SELECT COUNT(DISTINCT name), GROUP_CONCAT(id) FROM users",
        "SELECT GROUP_CONCAT(name ORDER BY name), GROUP_CONCAT(id ORDER BY id) FROM users",
        "SELECT * FROM users u JOIN stores s ON s.id = u.id",
        "SELECT * FROM users u JOIN notes n ON n.id = u.id WHERE u.id = 1",
        "SELECT id, ROW_NUMBER() OVER (ORDER BY id DESC) FROM users",
    ] {
        c.query_drop(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    let groups: Vec<(Option<String>, i64)> = c
        .query("SELECT name, COUNT(*) FROM users GROUP BY name UNION SELECT 'x', 1")
        .await
        .expect("a UNION of groups");
    assert!(groups.contains(&(Some("x".into()), 1)), "{groups:?}");
    // ...but not locking reads, whose locks must be taken on the real rows.
    let m = expect_1235(
        &mut c,
        "SELECT * FROM users u JOIN stores s ON s.id = u.id FOR UPDATE",
    )
    .await;
    assert!(m.contains("stores"), "{m}");
    // Aggregates over DISTINCT of different arguments are answered.
    c.query_drop("DELETE FROM users WHERE id IN (7101, 7102, 7103, 7104)")
        .await
        .expect("clean");
    c.query_drop("INSERT INTO users (id, name) VALUES (7101, 'dup'), (7102, 'dup'), (7103, 'one'), (7104, NULL)")
        .await
        .expect("users over several shards");
    let counts: Option<(i64, i64, i64)> = c
        .query_first("SELECT COUNT(DISTINCT name), COUNT(DISTINCT id, name), COUNT(DISTINCT id) FROM users WHERE id IN (7101, 7102, 7103, 7104)")
        .await
        .expect("distinct aggregates over several argument lists");
    assert_eq!(counts, Some((2, 3, 4)));
    c.query_drop("DELETE FROM users WHERE id IN (7101, 7102, 7103, 7104)")
        .await
        .expect("clean");
    // A plain UNION across shards is answered.
    let ids: Vec<i64> = c
        .query("SELECT id FROM users WHERE id < 3 UNION SELECT user_id FROM orders WHERE user_id < 3 ORDER BY 1")
        .await
        .expect("union across shards");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    expect_1235(&mut c, "INSERT INTO users (name) VALUES ('no key')").await;
    expect_1235(&mut c, "UPDATE users SET name = 'x' LIMIT 1").await;
    let m = expect_1235(&mut c, "UPDATE users SET id = 4 WHERE id = 3").await;
    assert!(m.contains("sharding key"), "{m}");
    let m = expect_1235(
        &mut c,
        "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.id IN (SELECT id FROM orders))",
    )
    .await;
    assert!(m.contains("correlated"), "{m}");
    // An uncorrelated subquery runs first and is answered; a correlated one runs on every
    // shard over the other table's rows, with the same answer.
    let via_in: Vec<i64> = c
        .query("SELECT id FROM users WHERE id IN (SELECT user_id FROM orders) ORDER BY id")
        .await
        .expect("uncorrelated subquery");
    let via_exists: Vec<i64> = c
        .query("SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id) ORDER BY id")
        .await
        .expect("correlated subquery");
    assert_eq!(via_exists, via_in);
    // Still usable afterwards.
    let one: Option<i64> = c.query_first("SELECT 1").await.expect("usable");
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn hints_need_permission() {
    setup();
    let mut plain = connect("mall", "mall", Some("mall"))
        .await
        .expect("connects");
    match plain.query_drop("/* myshard:shard=s2 */ SELECT 1").await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1227),
        other => panic!("expected ERR 1227, got {other:?}"),
    }
    let mut dba = connect("dba", "dba", Some("mall")).await.expect("connects");
    let marker = unique("hint");
    let _: Option<i64> = dba
        .query_first(format!(
            "/* myshard:shard=s2 */ SELECT COUNT(*) FROM users WHERE '{marker}' <> ''"
        ))
        .await
        .expect("hinted");
    assert_eq!(shards_that_ran(&marker), vec!["s2".to_string()]);
}

#[tokio::test]
async fn explain_route_shows_each_shards_sql() {
    let mut c = mall().await;
    let rows: Vec<(String, Option<String>, String, String)> = c
        .query("EXPLAIN ROUTE SELECT * FROM t_order WHERE user_id = 10")
        .await
        .expect("explain route");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].2.contains("t_order_"), "{rows:?}");
    let rows: Vec<(String, Option<String>, String, String)> = c
        .query("EXPLAIN ROUTE INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .await
        .expect("explain route");
    assert!(
        rows.len() >= 2 && rows.iter().all(|r| r.3 == "sum affected rows"),
        "{rows:?}"
    );
    let users: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM users WHERE id = 999999")
        .await
        .expect("q");
    assert_eq!(users, Some(0), "EXPLAIN ROUTE did not run the INSERT");
}

/// A row of `EXPLAIN ROUTE`: shard, physical table, SQL (or a plan line), merge.
type ExplainRow = (Option<String>, Option<String>, String, Option<String>);

/// `myshard explain` and the server get their plans from the same planner: for reads, a
/// UNION over shards (planned branch by branch), writes and literals with backslashes, the
/// CLI prints exactly the per-shard SQL the server's `EXPLAIN ROUTE` shows; for a statement
/// whose parts run first (subqueries, a join off the key, the copy fallback), exactly the
/// same plan lines.
#[tokio::test]
async fn explain_cli_and_the_server_plan_alike() {
    let mut c = mall().await;
    let config = &crate::env::env().proxy.config_path;
    let binary = myshard_tests::proxy::myshard_binary().expect("myshard binary");
    let staged = [
        "SELECT name FROM users WHERE id IN (SELECT o.user_id FROM t_order o WHERE o.status = 'x')",
        "SELECT u.name FROM users u WHERE EXISTS (SELECT 1 FROM t_order o WHERE o.user_id = u.id)",
        "SELECT u.id, ROW_NUMBER() OVER (ORDER BY u.id) AS r FROM users u",
    ];
    for sql in [
        "SELECT * FROM users WHERE id = 7",
        "SELECT name, COUNT(*) FROM users GROUP BY name ORDER BY name",
        "SELECT id, name FROM users WHERE id = 1 UNION ALL SELECT id, name FROM users WHERE id = 2 ORDER BY id",
        "SELECT name FROM users UNION SELECT name FROM stores",
        r"INSERT INTO users (id, name) VALUES (1, 'a\\'), (2, 'it''s'), (3, 'x\\ty')",
        "SELECT * FROM t_order WHERE user_id IN (10, 11) AND status = 'a\\'",
    ]
    .into_iter()
    .chain(staged)
    {
        let server: Vec<ExplainRow> = c
            .query(format!("EXPLAIN ROUTE {sql}"))
            .await
            .unwrap_or_else(|e| panic!("EXPLAIN ROUTE {sql}: {e}"));
        let out = std::process::Command::new(&binary)
            .args(["explain", "--config"])
            .arg(config)
            .args(["--schema", "mall", sql])
            .output()
            .expect("myshard explain runs");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (cli, server): (Vec<String>, Vec<String>) = if staged.contains(&sql) {
            assert!(stdout.starts_with("stage: "), "{sql}: {stdout}");
            (
                stdout.lines().map(str::to_string).collect(),
                server.into_iter().map(|(_, _, line, _)| line).collect(),
            )
        } else {
            (
                stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("  ").map(str::to_string))
                    .collect(),
                server
                    .into_iter()
                    .map(|(shard, table, q, _)| match table {
                        Some(t) => format!("{}#{t}: {q}", shard.unwrap_or_default()),
                        None => format!("{}: {q}", shard.unwrap_or_default()),
                    })
                    .collect(),
            )
        };
        assert_eq!(cli, server, "{sql}");
    }
}

#[tokio::test]
async fn unsharded_and_broadcast_reads_in_a_sharded_schema() {
    let mut c = mall().await;
    c.query_drop(
        "INSERT INTO notes (id, body) VALUES (1, 'hello') ON DUPLICATE KEY UPDATE body = 'hello'",
    )
    .await
    .expect("unsharded insert");
    let body: Option<String> = c
        .query_first("SELECT body FROM notes WHERE id = 1")
        .await
        .expect("q");
    assert_eq!(body.as_deref(), Some("hello"));
    assert_eq!(
        on_shard("s0", "SELECT body FROM notes WHERE id = 1").trim(),
        "hello"
    );
}

#[test]
fn myshard_check_reports_map_mistakes_with_key_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[[shards]]
name = "s0"
primary = "127.0.0.1:1"
[[shards]]
name = "s1"
primary = "127.0.0.1:2"

[[schemas]]
name = "shop"
default_shard = "s0"

[[schemas.rules]]
name = "h"
kind = "hash"
shards = ["s0", "s1", "s9"]
ranges = ["-60", "50-a0", "b0-"]

[[schemas.rules]]
name = "tenants"
kind = "lookup"
shards = ["s0"]
map = { "7" = "nowhere" }

[[schemas.tables]]
name = "orders"
rule = "h"

[[schemas.tables]]
name = "orders"
rule = "tenants"
column = "tenant_id"
"#,
    )
    .expect("write");
    let out = std::process::Command::new(myshard_tests::proxy::myshard_binary().expect("binary"))
        .arg("check")
        .arg(&bad)
        .output()
        .expect("myshard check runs");
    assert!(!out.status.success(), "an invalid map must exit non-zero");
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "schemas[0].rules[0].shards[2]: unknown shard 's9'",
        "schemas[0].rules[0].ranges:",
        "overlaps",
        "missing range",
        "schemas[0].rules[1].map.7: lookup entry points to unknown shard 'nowhere'",
        "schemas[0].tables[0].column:",
        "schemas[0].tables[1].name: duplicate table 'orders'",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        std::fs::read_to_string(env_free_example()).expect("example"),
    )
    .expect("write");
    let out = std::process::Command::new(myshard_tests::proxy::myshard_binary().expect("binary"))
        .arg("check")
        .arg(&good)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn env_free_example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/myshard.toml")
}

#[tokio::test]
async fn invalid_map_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[schemas]]\nname = \"x\"\ndefault_shard = \"nope\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(myshard_tests::proxy::myshard_binary().expect("binary"))
        .arg("--config")
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("schemas[0].default_shard: unknown shard 'nope'"));
    let _ = connect_to;
}

#[tokio::test]
async fn orm_sized_statements_route_and_over_deep_sql_is_an_error() {
    let mut c = mall().await;
    c.query_drop(
        "INSERT INTO users (id, name) VALUES (5001, 'orm') ON DUPLICATE KEY UPDATE name = 'orm'",
    )
    .await
    .expect("insert");
    let ids: Vec<String> = (1..=10_000).map(|i| i.to_string()).collect();
    let rows: Vec<i64> = c
        .query(format!(
            "SELECT id FROM users WHERE id IN ({}) AND id = 5001",
            ids.join(", ")
        ))
        .await
        .expect("10,000-value IN list");
    assert_eq!(rows, vec![5001]);
    let wide: Vec<i64> = c
        .query(format!(
            "SELECT id FROM users WHERE id IN ({}) AND name = 'orm'",
            ids.join(", ")
        ))
        .await
        .expect("10,000-value IN list over every shard");
    assert_eq!(wide, vec![5001]);
    let ors: Vec<String> = (4500..5500).map(|i| format!("id = {i}")).collect();
    let rows: Vec<i64> = c
        .query(format!("SELECT id FROM users WHERE {}", ors.join(" OR ")))
        .await
        .expect("1,000 OR terms");
    assert!(rows.contains(&5001));
    let deep = format!(
        "SELECT * FROM users WHERE id = {}1{}",
        "(".repeat(3000),
        ")".repeat(3000)
    );
    match c.query_drop(deep).await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1235, "{se:?}"),
        other => panic!("over-deep SQL: expected an ERR, got {other:?}"),
    }
    let one: Option<i64> = c.query_first("SELECT 1").await.expect("still usable");
    assert_eq!(one, Some(1));
}

#[test]
fn myshard_explain_prints_each_targets_sql() {
    let out = std::process::Command::new(myshard_tests::proxy::myshard_binary().expect("binary"))
        .args(["explain", "--config"])
        .arg(&env().proxy.config_path)
        .args([
            "--schema",
            "mall",
            "INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("route: write") && text.matches("INSERT INTO users").count() >= 2,
        "{text}"
    );
}

/// Loads the same rows into `scores` through myshard and into one table on one server, and
/// returns a connection to each.
async fn scores_pair() -> (mysql_async::Conn, mysql_async::Conn) {
    static LOADED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let mut c = mall().await;
    let names = [
        "ann", "Ann", "bob", "BOB", "cy", "Dee", "dee", "eve", "Éve", "zed",
    ];
    let rows: Vec<String> = (1..=300)
        .map(|i: i64| {
            let name = if i % 17 == 0 {
                "NULL".to_string()
            } else {
                format!("'{}'", names[(i as usize * 7) % names.len()])
            };
            let team = ["'x'", "'y'", "'z'", "NULL"][(i % 4) as usize];
            let points = if i % 13 == 0 {
                "NULL".to_string()
            } else {
                ((i * 37) % 101 - 50).to_string()
            };
            let bonus = format!("{}.{:02}", (i * 3) % 40 - 20, (i * 7) % 100);
            let played = format!("'2026-{:02}-{:02}'", 1 + i % 12, 1 + i % 28);
            format!("({i}, {name}, {team}, {points}, {bonus}, {played})")
        })
        .collect();
    let insert = format!(
        "INSERT INTO scores (id, name, team, points, bonus, played) VALUES {}",
        rows.join(", ")
    );
    let reference_port = env().cluster.primary_port(0);
    let ins = insert.clone();
    LOADED
        .get_or_init(|| async move {
            sql(
                reference_port,
                &format!(
                    "CREATE DATABASE IF NOT EXISTS reference; USE reference; CREATE TABLE scores (id INT PRIMARY KEY, name VARCHAR(20), team CHAR(1), points INT, bonus DECIMAL(8,2), played DATE) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci; {ins}"
                ),
            )
            .expect("reference rows");
        })
        .await;
    let _ = c.query_drop(&insert).await;
    let reference = connect_to_shard_db(reference_port, "reference").await;
    (c, reference)
}

async fn connect_to_shard_db(port: u16, db: &str) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .db_name(Some(db));
    mysql_async::Conn::new(opts)
        .await
        .expect("direct connection")
}

async fn rows_of(c: &mut mysql_async::Conn, q: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut result = c.query_iter(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    let labels: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let rows: Vec<mysql_async::Row> = result.collect().await.expect("rows");
    let rows = rows
        .into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect();
    (labels, rows)
}

#[tokio::test]
async fn streamed_merges_fit_a_tiny_budget_and_buffering_ones_get_1038() {
    let (_, mut reference) = scores_pair().await;
    let e = env();
    for shard in 0..e.cluster.shards() {
        e.cluster.sync_replicas(shard).expect("replicas caught up");
    }
    // 4 KiB cannot hold the 300 rows; a sorted read merges the shards' streams holding one
    // row per shard, so it is answered in full and in order.
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "merge_memory_limit = 4096\n",
        &crate::env::config_rest(),
    )
    .expect("proxy");
    let mut c = connect_to(proxy.port, "mall", "mall", Some("mall"))
        .await
        .expect("connects");
    for q in [
        "SELECT id, name, points FROM scores ORDER BY name, id",
        "SELECT id, bonus FROM scores ORDER BY bonus DESC, id LIMIT 250",
        "SELECT id FROM scores ORDER BY played, id LIMIT 40, 200",
        // Groups stream too when the shards sort them by the group key: 300 groups, each
        // folded and sent as soon as the next begins.
        "SELECT id, COUNT(*), SUM(points), AVG(bonus) FROM scores GROUP BY id",
        "SELECT played, COUNT(*), MAX(name) FROM scores GROUP BY played ORDER BY played LIMIT 5, 100",
        "SELECT id % 150 AS m, COUNT(*), MIN(points) FROM scores GROUP BY m HAVING COUNT(*) > 1 AND MIN(points) > -40",
    ] {
        let (mine, theirs) = (rows_of(&mut c, q).await, rows_of(&mut reference, q).await);
        assert_eq!(mine, theirs, "{q}");
    }
    // Prepared (binary rows) too.
    let q = "SELECT id, name FROM scores WHERE points > ? ORDER BY name DESC, id";
    let mine: Vec<(i64, Option<String>)> = c.exec(q, (10,)).await.expect("exec");
    let theirs: Vec<(i64, Option<String>)> = reference.exec(q, (10,)).await.expect("exec");
    assert_eq!(mine, theirs);
    // DISTINCT must hold every row to de-duplicate, and groups ordered by something else than
    // their key must all be there before the first is sent: past the budget it is ERR 1038.
    for q in [
        "SELECT DISTINCT id, name FROM scores ORDER BY id",
        "SELECT id, COUNT(*) FROM scores GROUP BY id ORDER BY COUNT(*), id DESC",
    ] {
        match c.query_drop(q).await {
            Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1038, "{q}: {se:?}"),
            other => panic!("{q}: expected ERR 1038, got {other:?}"),
        }
    }
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM scores")
        .await
        .expect("usable");
    assert_eq!(n, Some(300));
}

/// Each result column's definition, as a client sees it (the table and schema names are the
/// shards' physical ones and are left out).
async fn column_definitions(c: &mut mysql_async::Conn, q: &str) -> Vec<String> {
    let result = c.query_iter(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
    let cols = result
        .columns_ref()
        .iter()
        .map(|c| {
            // MariaDB leaks its internal GROUP_FLAG (the same bit as NUM_FLAG) on text columns
            // of grouped results, depending on the plan; it means nothing to clients.
            let mut flags = c.flags();
            if c.character_set() != 63 {
                flags -= mysql_async::consts::ColumnFlags::NUM_FLAG;
            }
            format!(
                "{} {:?} len={} dec={} flags={:?} charset={}",
                c.name_str(),
                c.column_type(),
                c.column_length(),
                c.decimals(),
                flags,
                c.character_set()
            )
        })
        .collect();
    drop(result);
    cols
}

#[tokio::test]
async fn merged_result_columns_are_defined_as_one_server_defines_them() {
    let (mut proxy, mut reference) = scores_pair().await;
    let queries = [
        "SELECT COUNT(*), SUM(points), AVG(points), MIN(name), MAX(bonus), AVG(bonus), SUM(bonus), MIN(played) FROM scores",
        "SELECT team, COUNT(*), MAX(points) FROM scores GROUP BY team",
        "SELECT team, COUNT(DISTINCT points), SUM(DISTINCT points), AVG(DISTINCT points) FROM scores GROUP BY team",
        "SELECT team, COUNT(*) + 1, SUM(points) / COUNT(*), ROUND(AVG(bonus), 1) FROM scores GROUP BY team",
        "SELECT id, name, bonus, played FROM scores ORDER BY name, id LIMIT 5",
        "SELECT DISTINCT team FROM scores",
        "SELECT BIT_OR(points), BIT_AND(id), BIT_XOR(id) FROM scores",
        "SELECT id, name FROM scores WHERE id < 20 UNION ALL SELECT id, name FROM scores WHERE id > 290 ORDER BY id",
        "SELECT id, team FROM scores WHERE id < 20 UNION SELECT points, name FROM scores WHERE id > 290",
        "SELECT played FROM scores WHERE id < 5 UNION ALL SELECT played FROM scores WHERE id > 295",
    ];
    let mut differences = Vec::new();
    for q in queries {
        let (mine, theirs) = (
            column_definitions(&mut proxy, q).await,
            column_definitions(&mut reference, q).await,
        );
        if mine != theirs {
            differences.push(format!(
                "{q}\n  myshard: {mine:?}\n  one server: {theirs:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Each result column's label and type, as the server announces them.
async fn column_types(c: &mut mysql_async::Conn, q: &str) -> Vec<(String, String)> {
    let result = c.query_iter(q).await.expect("query");
    let cols = result
        .columns_ref()
        .iter()
        .map(|c| (c.name_str().into_owned(), format!("{:?}", c.column_type())))
        .collect();
    drop(result);
    cols
}

/// `SHOW WARNINGS` after running `q`.
async fn warnings_after(c: &mut mysql_async::Conn, q: &str) -> Vec<(String, u16, String)> {
    c.query_drop(q).await.expect("query");
    c.query("SHOW WARNINGS").await.expect("warnings")
}

#[tokio::test]
async fn group_concat_is_cut_and_warned_like_one_server() {
    let (mut proxy, mut reference) = scores_pair().await;
    for c in [&mut proxy, &mut reference] {
        c.query_drop("SET SESSION group_concat_max_len = 40")
            .await
            .expect("SET group_concat_max_len");
    }
    let q = "SELECT team, GROUP_CONCAT(id ORDER BY id DESC SEPARATOR '-') AS ids, COUNT(*) FROM scores GROUP BY team ORDER BY team";
    assert_eq!(
        column_types(&mut proxy, q).await,
        column_types(&mut reference, q).await
    );
    let (mine, theirs) = (
        rows_of(&mut proxy, q).await,
        rows_of(&mut reference, q).await,
    );
    assert_eq!(mine, theirs);
    assert!(
        mine.1
            .iter()
            .all(|r| r[1].as_ref().is_some_and(|v| v.len() <= 40)),
        "{mine:?}"
    );
    let (mine, theirs) = (
        warnings_after(&mut proxy, q).await,
        warnings_after(&mut reference, q).await,
    );
    // One 1260 per cut group. The row number in the message is the server's internal row
    // counter (which input row was being read), which a merge cannot reproduce.
    assert!(
        !mine.is_empty() && mine.iter().all(|w| w.1 == 1260),
        "{mine:?}"
    );
    let codes = |w: &[(String, u16, String)]| {
        w.iter()
            .map(|(l, c, _)| (l.clone(), *c))
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&mine), codes(&theirs));
}

#[tokio::test]
async fn cross_shard_selects_answer_like_one_server() {
    let (mut proxy, mut reference) = scores_pair().await;
    // Each statement's ORDER BY is total (ties broken by id or by every selected column), so
    // rows must match in order.
    let queries = [
        "SELECT id, name FROM scores ORDER BY name, id",
        "SELECT id, name FROM scores ORDER BY name DESC, id DESC LIMIT 7, 20",
        "SELECT id, points FROM scores ORDER BY points DESC, id LIMIT 10",
        "SELECT id FROM scores ORDER BY bonus, id LIMIT 5 OFFSET 3",
        "SELECT id, played FROM scores ORDER BY played DESC, id LIMIT 12",
        "SELECT COUNT(*), COUNT(points), SUM(points), MIN(points), MAX(points), AVG(points) FROM scores",
        "SELECT SUM(bonus), AVG(bonus), MIN(bonus), MAX(bonus) FROM scores",
        "SELECT team, COUNT(*), SUM(points), AVG(bonus) FROM scores GROUP BY team ORDER BY team",
        "SELECT name, COUNT(*) AS n FROM scores GROUP BY name ORDER BY n DESC, name",
        "SELECT team, MAX(points) - MIN(points) AS spread FROM scores GROUP BY team ORDER BY spread, team",
        "SELECT team, SUM(points) / COUNT(*) FROM scores GROUP BY team ORDER BY 2, 1",
        "SELECT team FROM scores GROUP BY team HAVING SUM(points) > 0 ORDER BY team",
        "SELECT team, COUNT(*) c FROM scores GROUP BY team HAVING c >= 75 AND MAX(bonus) > 10 ORDER BY team",
        "SELECT DISTINCT team FROM scores ORDER BY team",
        "SELECT DISTINCT name FROM scores ORDER BY name LIMIT 3",
        "SELECT COUNT(*) FROM scores WHERE points > 1000",
        "SELECT MONTH(played) AS m, COUNT(*) FROM scores GROUP BY m ORDER BY m",
        "SELECT team, points FROM scores WHERE id < 40 ORDER BY team DESC, points, id",
        "SELECT COUNT(DISTINCT name) FROM scores",
        "SELECT team, COUNT(DISTINCT name) AS names FROM scores GROUP BY team ORDER BY team",
        "SELECT COUNT(DISTINCT points) FROM scores WHERE team = 'x'",
        "SELECT COUNT(DISTINCT name) FROM scores WHERE points > 1000",
    ];
    for q in queries {
        let (labels_p, rows_p) = rows_of(&mut proxy, q).await;
        let (labels_r, rows_r) = rows_of(&mut reference, q).await;
        assert_eq!(labels_p, labels_r, "column labels of {q}");
        if q.contains("name") && q.contains("DISTINCT") || q.contains("GROUP BY name") {
            // Which spelling of a case-insensitive group represents it is up to scan order.
            let fold = |rows: Vec<Vec<Option<String>>>| -> Vec<Vec<Option<String>>> {
                rows.into_iter()
                    .map(|r| {
                        r.into_iter()
                            .map(|c| c.map(|s| s.to_lowercase().replace('é', "e")))
                            .collect()
                    })
                    .collect()
            };
            assert_eq!(fold(rows_p), fold(rows_r), "{q}");
        } else {
            assert_eq!(rows_p, rows_r, "{q}");
        }
    }
}

/// INSERT … VALUES without a column list (mysqldump's and bulk loaders' form) into sharded
/// and split tables: myshard reads the table's columns from its shard, finds the sharding key
/// and places every row; a row of the wrong width gets MySQL's 1136; after ALTER TABLE through
/// myshard the new columns are read again.
#[tokio::test]
async fn insert_without_a_column_list_is_placed_by_its_key() {
    let e = env();
    for s in 0..4 {
        sql(
            e.cluster.primary_port(s),
            "CREATE DATABASE IF NOT EXISTS ins_db",
        )
        .expect("database");
    }
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "",
        r#"
[backend]
read_your_writes_ms = 60000

[[users]]
name = "app"
password = "app"
schemas = ["ins"]

[[schemas]]
name = "ins"
default_shard = "s0"
database = "ins_db"

[[schemas.rules]]
name = "by_id"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.rules]]
name = "split"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]
tables_per_shard = 2

[[schemas.tables]]
name = "kv"
rule = "by_id"
column = "id"

[[schemas.tables]]
name = "kvs"
rule = "split"
column = "k"
"#,
    )
    .expect("proxy");
    let mut c = connect_to(proxy.port, "app", "app", Some("ins"))
        .await
        .expect("connects");
    c.query_drop("DROP TABLE IF EXISTS kv").await.expect("drop");
    c.query_drop("DROP TABLE IF EXISTS kvs")
        .await
        .expect("drop");
    c.query_drop("CREATE TABLE kv (id BIGINT PRIMARY KEY, v VARCHAR(20))")
        .await
        .expect("create kv");
    c.query_drop("CREATE TABLE kvs (k INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .expect("create kvs");
    let values: Vec<String> = (1..=40).map(|i| format!("({i}, 'v{i}')")).collect();
    c.query_drop(format!("INSERT INTO kv VALUES {}", values.join(", ")))
        .await
        .expect("insert without columns");
    c.query_drop(format!("INSERT INTO kvs VALUES {}", values.join(", ")))
        .await
        .expect("insert without columns into a split table");
    for table in ["kv", "kvs"] {
        let n: Option<i64> = c
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .expect("count");
        assert_eq!(n, Some(40), "{table}");
        // Each row is where its key routes: a point read by key finds it.
        let key = if table == "kv" { "id" } else { "k" };
        for i in [1, 17, 40] {
            let v: Option<String> = c
                .query_first(format!("SELECT v FROM {table} WHERE {key} = {i}"))
                .await
                .expect("point read");
            assert_eq!(v, Some(format!("v{i}")), "{table} {key} = {i}");
        }
    }
    // The rows landed on more than one shard, each on the shard its key routes to.
    let mut shards_with_rows = 0;
    for s in 0..4 {
        let n = sql(e.cluster.primary_port(s), "SELECT COUNT(*) FROM ins_db.kv").expect("count");
        if n.trim() != "0" {
            shards_with_rows += 1;
        }
    }
    assert!(shards_with_rows > 1, "every row on one shard");
    match c
        .query_drop("INSERT INTO kv VALUES (100, 'a', 'extra')")
        .await
    {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1136, "{se:?}"),
        other => panic!("a row of the wrong width: {other:?}"),
    }
    c.query_drop("ALTER TABLE kv ADD COLUMN w INT")
        .await
        .expect("alter");
    c.query_drop("INSERT INTO kv VALUES (101, 'b', 7)")
        .await
        .expect("insert with the new column");
    let w: Option<i64> = c
        .query_first("SELECT w FROM kv WHERE id = 101")
        .await
        .expect("read");
    assert_eq!(w, Some(7));
}
