//! Safe by default: an application user, logged in to myshard, reaches only its own logical
//! schemas. Every statement that would reach the backend server itself (its system schemas,
//! its files, its accounts, its administration) gets MySQL's own error, and a look at every
//! shard afterwards shows nothing changed.

use crate::env::{connect, env};
use myshard_tests::cluster::sql;
use mysql_async::prelude::Queryable;

/// What an application must not change on any shard: its databases, accounts, plugins, the
/// settings a client could flip, and the rows of the schema it works in.
fn shard_snapshot() -> Vec<String> {
    let e = env();
    let rows = sql(
        e.cluster.primary_port(0),
        "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, name, amount, created, HEX(data)))) FROM shop.items",
    )
    .unwrap_or_else(|e| panic!("rows of shop.items: {e}"));
    std::iter::once(rows)
        .chain((0..e.cluster.shards()).map(|s| {
            sql(
                e.cluster.primary_port(s),
                "SELECT GROUP_CONCAT(schema_name ORDER BY schema_name) FROM information_schema.schemata;
                 SELECT GROUP_CONCAT(CONCAT(user, '@', host, ':', password) ORDER BY user, host) FROM mysql.user;
                 SELECT GROUP_CONCAT(plugin_name ORDER BY plugin_name) FROM information_schema.plugins;
                 SELECT @@global.read_only, @@global.max_connections, @@global.general_log;
                 SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'shop'",
            )
            .unwrap_or_else(|e| panic!("snapshot of shard {s}: {e}"))
        }))
        .collect()
}

async fn expect_error(c: &mut mysql_async::Conn, statement: &str, code: u16) {
    match c.query_drop(statement).await {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, code, "{statement}: {se:?}");
            assert!(!se.message.is_empty(), "{statement}: an error says why");
        }
        other => panic!("{statement}: expected ERR {code}, got {other:?}"),
    }
}

/// Statements an application user must never get through to a shard, with MySQL's code.
const REFUSED: &[(&str, u16)] = &[
    // The backend's system schemas.
    ("SELECT user, host FROM mysql.user", 1142),
    ("SELECT * FROM `mysql`.`user` WHERE 1 = 1", 1142),
    (
        "SELECT * FROM customers WHERE id IN (SELECT 1 FROM mysql.user)",
        1142,
    ),
    ("SELECT * FROM performance_schema.threads", 1142),
    ("SELECT * FROM sys.processlist", 1142),
    ("DESCRIBE mysql.user", 1142),
    ("SELECT 1 /*!50000 FROM mysql.user */", 1142),
    // Other schemas: one in the shard map the user may not use, and one outside it.
    ("SELECT * FROM other.t", 1044),
    ("SELECT * FROM sbtest_missing.t", 1142),
    ("SHOW TABLE STATUS FROM other", 1044),
    ("SHOW OPEN TABLES", 1227),
    ("ALTER TABLE mysql.user DISABLE KEYS", 1142),
    (
        "SELECT table_name FROM information_schema.tables /*!50000 WHERE 1 = 0 */",
        1235,
    ),
    ("SHOW TABLES WHERE Tables_in_shop LIKE '%'", 1235),
    // Files of the backend server.
    ("SELECT LOAD_FILE('/etc/passwd')", 1227),
    (
        "SELECT id, LOAD_FILE('/etc/passwd') FROM customers WHERE id = 1",
        1227,
    ),
    (
        "SELECT * FROM customers INTO OUTFILE '/tmp/myshard-outfile'",
        1227,
    ),
    ("SELECT 'x' INTO DUMPFILE '/tmp/myshard-dumpfile'", 1227),
    ("LOAD DATA INFILE '/etc/passwd' INTO TABLE customers", 1227),
    (
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE customers",
        1235,
    ),
    // Accounts.
    ("GRANT ALL PRIVILEGES ON *.* TO 'app'@'%'", 1227),
    ("REVOKE ALL PRIVILEGES ON *.* FROM 'root'@'localhost'", 1227),
    ("CREATE USER 'evil'@'%' IDENTIFIED BY 'evil'", 1227),
    ("DROP USER 'root'@'localhost'", 1227),
    ("RENAME USER 'root'@'localhost' TO 'x'@'localhost'", 1227),
    ("CREATE ROLE evil", 1227),
    ("SET PASSWORD = PASSWORD('evil')", 1227),
    ("SET ROLE NONE", 1227),
    ("/*!50000 GRANT ALL ON *.* TO 'app'@'%' */", 1227),
    // Administration of the backend server.
    ("SET GLOBAL read_only = 1", 1227),
    ("SET @@global.max_connections = 1", 1227),
    ("SET sql_log_bin = 0", 1227),
    ("SET SESSION debug_dbug = '+d,crash'", 1227),
    ("FLUSH PRIVILEGES", 1227),
    ("FLUSH TABLES WITH READ LOCK", 1227),
    ("SHUTDOWN", 1227),
    ("INSTALL SONAME 'ha_blackhole'", 1227),
    ("UNINSTALL PLUGIN unix_socket", 1227),
    ("CHANGE MASTER TO MASTER_HOST = '127.0.0.1'", 1227),
    ("STOP SLAVE", 1227),
    ("RESET MASTER", 1227),
    ("PURGE BINARY LOGS BEFORE NOW()", 1227),
    ("KILL 4000000000", 1094),
    ("KILL QUERY 4000000001", 1094),
    ("SELECT * FROM information_schema.PROCESSLIST", 1142),
    ("SHOW SLAVE STATUS", 1227),
    ("SHOW BINARY LOGS", 1227),
    ("SHOW GLOBAL STATUS", 1227),
    // DDL that would apply to one shard of the logical schema.
    ("DROP DATABASE shop", 1044),
    ("DROP DATABASE IF EXISTS other", 1044),
    ("CREATE DATABASE evil", 1044),
    ("CREATE PROCEDURE evil() SELECT 1", 1235),
    (
        "CREATE DEFINER = 'root'@'localhost' VIEW evil AS SELECT 1",
        1227,
    ),
    // Wrapped: SET STATEMENT … FOR, PREPARE, EXECUTE IMMEDIATE, compound statements.
    (
        "SET STATEMENT sql_log_bin = 0 FOR DELETE FROM customers",
        1235,
    ),
    ("SET STATEMENT max_statement_time = 1 FOR SELECT 1", 1235),
    ("PREPARE s FROM 'SELECT LOAD_FILE(''/etc/passwd'')'", 1227),
    ("PREPARE s FROM 'DROP DATABASE shop'", 1044),
    ("PREPARE s FROM 'GRANT ALL ON *.* TO app'", 1227),
    ("EXECUTE IMMEDIATE 'DROP DATABASE shop'", 1235),
    ("BEGIN NOT ATOMIC DROP DATABASE shop; END", 1235),
    // Statements myshard does not recognise are not passed through.
    ("HELP 'select'", 1235),
    ("BINLOG 'AAAA'", 1227),
];

#[tokio::test]
async fn application_user_reaches_only_its_schemas() {
    let before = shard_snapshot();
    let mut c = connect("app", "app", Some("shop"))
        .await
        .expect("connect as app");
    for (statement, code) in REFUSED {
        expect_error(&mut c, statement, *code).await;
    }
    // The same user without a current schema.
    let mut bare = connect("app", "app", None)
        .await
        .expect("connect without a schema");
    for (statement, code) in [
        ("SELECT user FROM mysql.user", 1142),
        ("SELECT * FROM other.t", 1044),
        ("DROP DATABASE shop", 1044),
        ("SELECT LOAD_FILE('/etc/passwd')", 1227),
    ] {
        expect_error(&mut bare, statement, code).await;
    }
    // The binary protocol: a refused statement is refused when prepared.
    match c.prep("SELECT LOAD_FILE(?)").await {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1227, "{se:?}"),
        other => panic!("COM_STMT_PREPARE of LOAD_FILE: {other:?}"),
    }
    // The session still works, and its own schema answers as before.
    let one: Option<i64> = c.query_first("SELECT 1").await.expect("select 1");
    assert_eq!(one, Some(1));
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM items WHERE id = 1")
        .await
        .expect("own table");
    assert!(n.is_some());
    drop(c);
    drop(bare);
    assert_eq!(before, shard_snapshot(), "a shard changed");
}

/// A `LIKE` of 100,000 `%` is matched in linear time: an answer, not a hang or a crash.
/// (MariaDB's own matcher takes minutes on `SHOW VARIABLES LIKE` with ten `%`, so myshard
/// never sends a client's SHOW pattern to a shard.)
#[tokio::test]
async fn show_like_with_a_hundred_thousand_wildcards_answers() {
    let mut c = connect("app", "app", Some("shop")).await.expect("connect");
    let pattern = format!("{}x", "%".repeat(100_000));
    let tables: Vec<String> = c
        .query(format!("SHOW TABLES LIKE '{pattern}'"))
        .await
        .expect("show tables");
    assert!(tables.is_empty(), "{tables:?}");
    let all: Vec<String> = c
        .query(format!("SHOW TABLES LIKE '{}'", "%".repeat(100_000)))
        .await
        .expect("show tables");
    let listed: Vec<String> = c.query("SHOW TABLES").await.expect("show tables");
    assert_eq!(all, listed);
    let dbs: Vec<String> = c
        .query(format!(
            "SHOW DATABASES LIKE '{}s{}'",
            "%".repeat(50_000),
            "_%".repeat(3)
        ))
        .await
        .expect("show databases");
    assert!(dbs.contains(&"shop".to_string()), "{dbs:?}");
    let vars: Vec<(String, String)> = c
        .query(format!("SHOW VARIABLES LIKE '{}x'", "%".repeat(100_000)))
        .await
        .expect("show variables");
    assert!(vars.iter().all(|(name, _)| name.ends_with('x')), "{vars:?}");
}

/// A client that breaks its own backend connection (here: a session `wait_timeout` that the
/// server enforces while the client holds a transaction open) gets an error for its own
/// statement; the shard stays in service for every other client.
#[tokio::test]
async fn a_client_breaking_its_own_connection_leaves_the_shard_in_service() {
    let mut breaker = connect("app", "app", Some("shop")).await.expect("connect");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let others = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut c = connect("app", "app", Some("shop")).await.expect("connect");
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.query_first::<i64, _>("SELECT COUNT(*) FROM items").await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            (ok, failed)
        })
    };
    let mut broken = 0;
    for _ in 0..3 {
        breaker
            .query_drop("SET SESSION wait_timeout = 1")
            .await
            .expect("wait_timeout");
        breaker.query_drop("BEGIN").await.expect("begin");
        let _: Option<i64> = breaker
            .query_first("SELECT COUNT(*) FROM items")
            .await
            .expect("first read pins the connection");
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        // The server closed the idle connection: this client's statement fails.
        if breaker
            .query_drop("SELECT COUNT(*) FROM items")
            .await
            .is_err()
        {
            broken += 1;
        }
        let _ = breaker.query_drop("ROLLBACK").await;
        breaker
            .query_drop("SET SESSION wait_timeout = 28800")
            .await
            .expect("wait_timeout back");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = others.await.expect("other client");
    assert!(broken > 0, "the breaking client never lost its connection");
    assert!(ok > 50, "the other client ran ({ok} statements)");
    assert!(failed.is_empty(), "the other client failed: {failed:?}");
}

/// SHOW PROCESSLIST lists myshard's own sessions (the user's own), and KILL acts on those
/// ids: KILL QUERY stops the statement on its shard and keeps the connection, KILL closes
/// the connection, another user's session or an unknown id is refused as MySQL refuses it.
#[tokio::test]
async fn processlist_and_kill_act_on_myshards_own_sessions() {
    let e = env();
    let mut a = connect("app", "app", Some("shop"))
        .await
        .expect("connect a");
    let mut b = connect("app", "app", Some("shop"))
        .await
        .expect("connect b");
    let mut other_user = connect("nat", "nat", Some("shop"))
        .await
        .expect("connect nat");
    let b_id: u64 = b
        .query_first("SELECT CONNECTION_ID()")
        .await
        .expect("id")
        .expect("row");
    assert_eq!(
        b_id,
        u64::from(b.id()),
        "CONNECTION_ID() is the handshake's id"
    );
    let nat_id: u64 = other_user
        .query_first("SELECT CONNECTION_ID()")
        .await
        .expect("id")
        .expect("row");
    let sleeper = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = b.query_drop("SELECT SLEEP(30) AS kill_probe").await;
        (b, r, started.elapsed())
    });
    // Wait until the processlist shows it running.
    let mut seen = None;
    for _ in 0..100 {
        let list: Vec<mysql_async::Row> =
            a.query("SHOW FULL PROCESSLIST").await.expect("processlist");
        if let Some(row) = list.iter().find(|r| r.get::<u64, _>(0) == Some(b_id)) {
            if row
                .get::<Option<String>, _>(7)
                .flatten()
                .is_some_and(|i| i.contains("kill_probe"))
            {
                seen = Some(list.clone());
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let list = seen.expect("the processlist shows b's statement running");
    let users: Vec<String> = list.iter().filter_map(|r| r.get::<String, _>(1)).collect();
    assert!(
        users.iter().all(|u| u == "app"),
        "only the user's own sessions: {users:?}"
    );
    assert!(!list.iter().any(|r| r.get::<u64, _>(0) == Some(nat_id)));
    // Another user's session, an unknown id, a backend thread id.
    expect_error(&mut a, &format!("KILL {nat_id}"), 1095).await;
    expect_error(&mut a, "KILL 4000000000", 1094).await;
    a.query_drop(format!("KILL QUERY {b_id}"))
        .await
        .expect("kill query");
    let (mut b, r, took) = sleeper.await.expect("sleeper");
    match r {
        Err(mysql_async::Error::Server(se)) => assert_eq!(se.code, 1317, "{se:?}"),
        other => panic!("the killed statement: {other:?}"),
    }
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    // Gone from the shard too, and b's connection still works.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let running = sql(
        e.cluster.primary_port(0),
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(30) AS kill_probe%'",
    )
    .expect("processlist of the shard");
    assert_eq!(running.trim(), "0");
    let one: Option<i64> = b.query_first("SELECT 1").await.expect("b works");
    assert_eq!(one, Some(1));
    // KILL closes b's connection.
    a.query_drop(format!("KILL CONNECTION {b_id}"))
        .await
        .expect("kill");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        b.query_drop("SELECT 1").await.is_err(),
        "b's connection is closed"
    );
    // The other user's session was left alone.
    let one: Option<i64> = other_user.query_first("SELECT 1").await.expect("nat works");
    assert_eq!(one, Some(1));
}

/// DDL over a sharded table cannot be undone where it ran: when it fails on one shard, the
/// error names that shard and those it did and did not run on, and the admin drift check
/// (`CHECK SCHEMA`) reports the difference until it is repaired.
#[tokio::test]
async fn ddl_failing_on_one_shard_is_named_and_the_drift_check_reports_it() {
    let e = env();
    for s in 0..4 {
        sql(e.cluster.primary_port(s), "CREATE DATABASE ddl_phys").expect("database");
    }
    let admin_port = myshard_tests::cluster::free_port().expect("port");
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nuser = \"dbadmin\"\npassword = \"secret\"\n\n{}\n{}",
            crate::env::config_rest(),
            r#"
[[users]]
name = "ddl"
password = "ddl"
schemas = ["ddl"]

[[schemas]]
name = "ddl"
default_shard = "s0"
database = "ddl_phys"

[[schemas.rules]]
name = "by_id"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.tables]]
name = "items"
rule = "by_id"
column = "id"

[[schemas.tables]]
name = "visits"
rule = "by_id"
column = "owner"

# A map mistake `myshard check --schema` must name: the table has no such column.
[[schemas.tables]]
name = "typo"
rule = "by_id"
column = "ownr"
"#
        ),
    )
    .expect("proxy");
    let mut c = crate::env::connect_to(proxy.port, "ddl", "ddl", Some("ddl"))
        .await
        .expect("connect");
    c.query_drop("CREATE TABLE items (id INT PRIMARY KEY, v INT)")
        .await
        .expect("create on every shard");
    c.query_drop("CREATE TABLE typo (id INT PRIMARY KEY, owner INT)")
        .await
        .expect("create on every shard");
    // Keyed by its own id, sharded by owner: unique per shard only.
    c.query_drop(
        "CREATE TABLE visits (id INT PRIMARY KEY, owner INT NOT NULL, code CHAR(4), UNIQUE KEY by_code (owner, code))",
    )
    .await
    .expect("create on every shard");
    // EXPLAIN ROUTE reads the keys as the statement would, and says the same.
    match c
        .query_drop("EXPLAIN ROUTE REPLACE INTO visits (id, owner) VALUES (1, 7)")
        .await
    {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1235, "{se:?}");
            assert!(
                se.message
                    .contains("REPLACE into 'visits': its unique key PRIMARY (id)"),
                "{}",
                se.message
            );
        }
        other => panic!("EXPLAIN ROUTE must show the refusal: {other:?}"),
    }
    let upsert = c
        .query_drop(
            "INSERT INTO visits (id, owner) VALUES (1, 7) ON DUPLICATE KEY UPDATE code = 'x'",
        )
        .await;
    match upsert {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1235, "{se:?}");
            assert!(
                se.message.contains(
                    "unique key PRIMARY (id) does not contain the sharding column 'owner'"
                ),
                "{}",
                se.message
            );
        }
        other => panic!("the upsert must be refused: {other:?}"),
    }
    // Shard s2 already has the column the ALTER adds.
    sql(
        e.cluster.primary_port(2),
        "ALTER TABLE ddl_phys.items ADD COLUMN extra INT",
    )
    .expect("direct alter");
    match c.query_drop("ALTER TABLE items ADD COLUMN extra INT").await {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1060, "{se:?}");
            assert!(
                se.message.contains("failed on shard 's2'"),
                "{}",
                se.message
            );
            assert!(
                se.message.contains("applied on: 's0', 's1'"),
                "{}",
                se.message
            );
            assert!(se.message.contains("not run on: 's3'"), "{}", se.message);
        }
        other => panic!("the ALTER must fail on s2: {other:?}"),
    }
    let check = |port| crate::admin::admin_cli(port, "dbadmin", "secret", "CHECK SCHEMA");
    let (ok, out, err) = check(admin_port);
    assert!(ok, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("ddl\titems\t"))
        .unwrap_or_else(|| panic!("no row for ddl.items: {out}"));
    assert!(row.starts_with("ddl\titems\tdiffers\t"), "{row}");
    assert!(row.contains("on s3:"), "{row}");
    assert!(row.contains("on s0, s1, s2:"), "{row}");
    // The same report from the command line, which also warns that the test cluster's
    // backend account (root) has rights myshard never needs.
    let cli = |path: &std::path::Path| {
        let out =
            std::process::Command::new(myshard_tests::proxy::myshard_binary().expect("binary"))
                .args(["check", "--schema"])
                .arg(path)
                .output()
                .expect("myshard check runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&proxy.config_path);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report = out
        .split("\nddl.items: ")
        .nth(1)
        .or_else(|| out.strip_prefix("ddl.items: "))
        .unwrap_or_else(|| panic!("no report of ddl.items: {out}"));
    assert!(report.starts_with("differs: "), "{report}");
    assert!(report.contains("on s3:"), "{report}");
    assert!(
        err.contains("backend user 'root' has SUPER, FILE, GRANT OPTION"),
        "{err}"
    );
    assert!(
        err.contains("warning: ddl.visits: unique key PRIMARY (id) does not contain the sharding column 'owner'"),
        "{err}"
    );
    assert!(!err.contains("by_code"), "{err}");
    assert!(
        err.contains("error: ddl.typo: the sharding column 'ownr' (rule 'by_id') is not a column of the table on shard 's0' (it has id, owner)"),
        "{err}"
    );
    // Repaired by hand on the shard that missed it: the same everywhere.
    sql(
        e.cluster.primary_port(3),
        "ALTER TABLE ddl_phys.items ADD COLUMN extra INT",
    )
    .expect("repair");
    let (ok, out, err) = check(admin_port);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l == "ddl\titems\tsame\t"), "{out}");
    let (_, out, err) = cli(&proxy.config_path);
    assert!(out.lines().any(|l| l == "ddl.items: same"), "{out}\n{err}");
}

/// Rights per user and schema: a read-only user reads and nothing else, a read-write user
/// also writes rows but changes no table, `schema_access` overrides `access` per schema.
#[tokio::test]
async fn access_levels_bound_what_each_user_may_do() {
    let e = env();
    sql(
        e.cluster.primary_port(0),
        "CREATE TABLE shop.acl_t (id INT PRIMARY KEY, v INT); INSERT INTO shop.acl_t VALUES (1, 1)",
    )
    .expect("table");
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "",
        &format!(
            "{}\n{}",
            crate::env::config_rest(),
            r#"
[[users]]
name = "ro"
password = "ro"
schemas = ["shop"]
access = "read_only"

[[users]]
name = "rw"
password = "rw"
schemas = ["shop"]
access = "read_write"

[[users]]
name = "mixed"
password = "mixed"
schemas = ["shop"]
schema_access = { shop = "read_only" }
"#
        ),
    )
    .expect("proxy");
    let user = |name: &'static str| crate::env::connect_to(proxy.port, name, name, Some("shop"));
    let mut ro = user("ro").await.expect("ro");
    let n: Option<i64> = ro
        .query_first("SELECT COUNT(*) FROM acl_t")
        .await
        .expect("read");
    assert_eq!(n, Some(1));
    let _: Vec<mysql_async::Row> = ro.query("SHOW COLUMNS FROM acl_t").await.expect("show");
    for statement in [
        "INSERT INTO acl_t (id, v) VALUES (2, 2)",
        "UPDATE acl_t SET v = 3",
        "DELETE FROM acl_t",
        "REPLACE INTO acl_t (id, v) VALUES (1, 5)",
        "CREATE TABLE acl_new (id INT)",
        "DROP TABLE acl_t",
        "TRUNCATE TABLE acl_t",
    ] {
        expect_error(&mut ro, statement, 1142).await;
    }
    let mut mixed = user("mixed").await.expect("mixed");
    expect_error(&mut mixed, "INSERT INTO acl_t (id, v) VALUES (2, 2)", 1142).await;
    let mut rw = user("rw").await.expect("rw");
    rw.query_drop("INSERT INTO acl_t (id, v) VALUES (2, 2)")
        .await
        .expect("rw writes rows");
    rw.query_drop("UPDATE acl_t SET v = 7 WHERE id = 2")
        .await
        .expect("rw updates rows");
    for statement in [
        "CREATE TABLE acl_new (id INT)",
        "ALTER TABLE acl_t ADD COLUMN w INT",
        "DROP TABLE acl_t",
        "TRUNCATE TABLE acl_t",
    ] {
        expect_error(&mut rw, statement, 1142).await;
    }
    let stored = sql(
        e.cluster.primary_port(0),
        "SELECT GROUP_CONCAT(CONCAT(id, ':', v) ORDER BY id) FROM shop.acl_t; SHOW TABLES FROM shop LIKE 'acl%'",
    )
    .expect("shard");
    assert_eq!(
        stored.split_whitespace().collect::<Vec<_>>(),
        ["1:1,2:7", "acl_t"]
    );
}

/// The admin port takes a bounded number of connections: the one past the cap gets ERR 1040
/// before any handshake, and the port serves again once one closes.
#[tokio::test]
async fn admin_port_connections_are_capped() {
    let e = env();
    let admin_port = myshard_tests::cluster::free_port().expect("port");
    let proxy = myshard_tests::Proxy::start(
        &e.cluster,
        "",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nuser = \"dbadmin\"\npassword = \"secret\"\n\n{}",
            crate::env::config_rest()
        ),
    )
    .expect("proxy");
    // The first packet the port sends: a handshake (0x0a) under the cap, an ERR (0xff) past it.
    async fn first_packet(port: u16) -> (tokio::net::TcpStream, u8, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("tcp");
        let mut header = [0u8; 4];
        s.read_exact(&mut header).await.expect("header");
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.expect("body");
        let kind = body.first().copied().unwrap_or(0);
        (s, kind, body)
    }
    let mut held = Vec::new();
    for _ in 0..16 {
        let (s, kind, _) = first_packet(admin_port).await;
        assert_eq!(kind, 0x0a, "a handshake under the cap");
        held.push(s);
    }
    let (_, kind, body) = first_packet(admin_port).await;
    assert_eq!(kind, 0xff, "an ERR past the cap");
    assert_eq!(u16::from_le_bytes([body[1], body[2]]), 1040);
    drop(held.pop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, kind, _) = first_packet(admin_port).await;
    assert_eq!(kind, 0x0a, "a slot is free again");
    drop(proxy);
}

/// `information_schema` through myshard is the logical catalog: only the user's schemas, under
/// their logical names (`lit`, whose database on the shards is `lit_phys`), each table once
/// (the split table `t_order` is `t_order_0`/`t_order_1` on four shards), and nothing of the
/// backend (its `mysql`, `performance_schema`, other users' schemas). Hints do not reach the
/// physical catalog, and catalog rows cannot be written into tables.
#[tokio::test]
async fn information_schema_is_the_users_logical_catalog() {
    crate::sharding::setup();
    crate::literals::literal_tables().await;
    let mut mall = connect("mall", "mall", Some("mall"))
        .await
        .expect("connects");
    let schemata: Vec<String> = mall
        .query("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
        .await
        .expect("schemata");
    assert_eq!(schemata, ["information_schema", "mall"]);
    let listed: Vec<(String, String)> = mall
        .query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema <> 'information_schema' ORDER BY 2")
        .await
        .expect("tables");
    let shown: Vec<String> = mall.query("SHOW TABLES").await.expect("show tables");
    let names: Vec<String> = listed.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(names, shown);
    assert!(listed.iter().all(|(s, _)| s == "mall"), "{listed:?}");
    for t in ["users", "orders", "t_order", "countries", "notes"] {
        assert!(names.contains(&t.to_string()), "{t} missing from {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("t_order_")),
        "{names:?}"
    );
    // Columns and keys of a split table: once, as the shard's first physical table has them.
    let columns: Vec<String> = mall
        .query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'mall' AND table_name = 't_order' ORDER BY ordinal_position")
        .await
        .expect("columns");
    assert_eq!(columns, ["order_id", "user_id", "amount"]);
    let keys: Vec<(String, String)> = mall
        .query("SELECT index_name, column_name FROM information_schema.statistics WHERE table_name = 't_order'")
        .await
        .expect("statistics");
    assert_eq!(keys, [("PRIMARY".to_string(), "order_id".to_string())]);
    // Joins, grouping and subqueries over catalog tables are evaluated as one server would.
    let per_table: Vec<(String, u64)> = mall
        .query("SELECT t.table_name, COUNT(*) FROM information_schema.tables t JOIN information_schema.columns c ON c.table_schema = t.table_schema AND c.table_name = t.table_name WHERE t.table_schema = 'mall' AND t.table_name IN ('t_order', 'countries') GROUP BY 1 ORDER BY 1")
        .await
        .expect("join");
    assert_eq!(
        per_table,
        [("countries".to_string(), 2), ("t_order".to_string(), 3)]
    );
    let leaked: u64 = mall
        .query_first("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema NOT IN ('information_schema', 'mall') OR table_name LIKE 't\\_order\\_%'")
        .await
        .expect("count")
        .unwrap_or(1);
    assert_eq!(leaked, 0);
    // SHOW CREATE TABLE and SHOW INDEX of a split table name the logical table.
    let (name, create): (String, String) = mall
        .query_first("SHOW CREATE TABLE t_order")
        .await
        .expect("show create")
        .expect("a row");
    assert_eq!(name, "t_order");
    assert!(create.starts_with("CREATE TABLE `t_order` ("), "{create}");
    let index: Vec<mysql_async::Row> = mall
        .query("SHOW INDEX FROM t_order")
        .await
        .expect("show index");
    assert!(!index.is_empty());
    for row in &index {
        assert_eq!(
            row.get::<String, _>("Table").as_deref(),
            Some("t_order"),
            "{row:?}"
        );
    }
    // SHOW TABLE STATUS reads the same logical catalog.
    let status: Vec<mysql_async::Row> = mall.query("SHOW TABLE STATUS").await.expect("status");
    let status_names: Vec<String> = status
        .iter()
        .map(|r| r.get::<String, _>("Name").expect("Name"))
        .collect();
    assert_eq!(status_names, shown);
    let split: Vec<mysql_async::Row> = mall
        .query("SHOW TABLE STATUS LIKE 't_order'")
        .await
        .expect("status like");
    assert_eq!(split.len(), 1, "{split:?}");
    // A hint does not reach one shard's physical catalog.
    let mut dba = connect("dba", "dba", Some("mall")).await.expect("connects");
    let hinted: Vec<String> = dba
        .query("/* myshard:shard=s1 */ SELECT DISTINCT table_schema FROM information_schema.tables ORDER BY 1")
        .await
        .expect("hinted");
    assert_eq!(hinted, ["information_schema", "mall"]);
    // A schema with its own physical database name shows its logical name.
    let mut app = connect("app", "app", Some("lit")).await.expect("connects");
    let lit: Vec<(String, String)> = app
        .query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'kv%' ORDER BY 2")
        .await
        .expect("lit tables");
    assert_eq!(
        lit,
        [
            ("lit".to_string(), "kv".to_string()),
            ("lit".to_string(), "kv_gen".to_string()),
            ("lit".to_string(), "kv_split".to_string()),
        ]
    );
    let schemas: Vec<String> = app
        .query("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
        .await
        .expect("schemata");
    assert!(
        schemas.iter().all(
            |s| ["information_schema", "lit", "sbshard", "sbtest", "shop"].contains(&s.as_str())
        ),
        "{schemas:?}"
    );
    assert!(schemas.contains(&"lit".to_string()), "{schemas:?}");
    // Catalog rows are read, never written into tables or mixed with a table's rows.
    expect_error(
        &mut mall,
        "CREATE TABLE catalog_copy AS SELECT * FROM information_schema.tables",
        1235,
    )
    .await;
    // A write fed by the catalog reads it as the user sees it: logical names only (the split
    // t_order's physical tables t_order_0 and t_order_1 are not there).
    mall.query_drop("DELETE FROM notes WHERE id = 990001")
        .await
        .expect("clean");
    mall.query_drop(
        "INSERT INTO notes (id, body) SELECT 990001, MAX(table_name) FROM information_schema.tables WHERE table_schema = 'mall' AND table_name LIKE 't\\_order%'",
    )
    .await
    .expect("INSERT … SELECT from the logical catalog");
    let body: Option<String> = mall
        .query_first("SELECT body FROM notes WHERE id = 990001")
        .await
        .expect("read back");
    assert_eq!(body.as_deref(), Some("t_order"));
    mall.query_drop("DELETE FROM notes WHERE id = 990001")
        .await
        .expect("clean");
    expect_error(
        &mut mall,
        "SELECT n.id FROM notes n JOIN information_schema.tables t ON t.table_name = n.body",
        1235,
    )
    .await;
}
