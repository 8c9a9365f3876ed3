//! Real drivers: PyMySQL, MariaDB Connector/J (compiled with javac inside the test run),
//! Node's mysql2, Go's database/sql (built with `go build` inside the test run) and
//! mysql_async.

use crate::env::{connect, env};
use mysql_async::prelude::*;
use std::path::Path;
use std::process::Command;

pub fn clients_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/clients"))
}

pub fn ensure_python_module(module: &str, package: &str) {
    let have = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have {
        // Debian's own python3 takes pip installs only with --break-system-packages.
        let pip = |extra: &[&str]| {
            Command::new("python3")
                .args(["-m", "pip", "install", "-q"])
                .args(extra)
                .arg(package)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let ok = pip(&[]) || pip(&["--break-system-packages"]);
        assert!(
            ok,
            "python3 module {module} is missing and `pip install {package}` failed"
        );
    }
}

/// Runs a client check from `tests/clients` with `args` (and `stdin`, if any); fails the test
/// with its output unless it succeeds, and returns its standard output.
pub fn python_client(script: &str, args: &[String], stdin: Option<&str>) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("python3")
        .arg(clients_dir().join(script))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .expect("writes the client's input");
    }
    let o = child.wait_with_output().expect("python3 finishes");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{script}: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Installs Debian packages (the e2e machine's own package manager); whether it worked.
pub fn apt_install(packages: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages}"
        ))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a client program; fails the test unless it succeeds and prints every `checks` line.
fn client_checks(mut cmd: Command, what: &str, checks: &[&str]) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what} runs: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in checks {
        assert!(
            text.contains(check),
            "{what}: missing '{check}' in:\n{text}"
        );
    }
}

#[test]
fn pymysql_auth_plugins_tls_and_errors() {
    ensure_python_module("pymysql", "pymysql");
    ensure_python_module("cryptography", "cryptography");
    let e = env();
    let out = python_client(
        "pymysql_check.py",
        &[e.proxy.port.to_string(), e.cert.display().to_string()],
        None,
    );
    for check in [
        "ok caching_sha2 full auth via RSA without TLS",
        "ok caching_sha2 fast path",
        "ok caching_sha2 full auth over TLS",
        "ok mysql_native_password and rows with NULL",
        "ok wrong password is 1045",
        "ok unknown schema is 1049",
        "ok schema not granted is 1044",
        "ok backend error passes through and the connection stays usable",
    ] {
        assert!(out.contains(check), "missing '{check}' in:\n{out}");
    }
}

/// Node's mysql2, promise API: prepared `execute` and text `query`, CRUD by the sharding key,
/// transactions over shards (committed and rolled back), a cross-shard ORDER BY and GROUP BY,
/// an error code (`tests/clients/node/mysql2_check.js`). The driver is installed from the
/// project's package-lock.json by `scripts/prereqs.sh`, or here when it is missing.
#[test]
fn node_mysql2() {
    crate::sharding::setup();
    let dir = clients_dir().join("node");
    if !dir.join("node_modules/mysql2").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "Node's mysql2 is missing and `npm ci --prefix tests/clients/node` failed (apt-get install nodejs npm)"
        );
    }
    let mut node = Command::new("node");
    node.arg(dir.join("mysql2_check.js"))
        .arg(env().proxy.port.to_string());
    client_checks(
        node,
        "node mysql2_check.js",
        &[
            "ok execute reads a row by its key as written",
            "ok execute updates by key",
            "ok execute deletes by key",
            "ok cross-shard ORDER BY DESC LIMIT",
            "ok cross-shard GROUP BY with ORDER BY",
            "ok a committed transaction over shards is there, a rolled-back one is not",
            "ok the rolled-back DELETE left its row",
            "ok a duplicate key is ERR 1062",
            "ok the connection is usable after an error",
        ],
    );
}

/// Go's database/sql with go-sql-driver/mysql (Debian's golang-github-go-sql-driver-mysql-dev),
/// with server-side prepared statements and with `interpolateParams=true` (the driver writes
/// the values into the text itself): CRUD by the sharding key, transactions over shards, a
/// cross-shard ORDER BY, an error code (`tests/clients/go/sqlcheck.go`).
#[test]
fn go_database_sql() {
    crate::sharding::setup();
    let gopath = Path::new("/usr/share/gocode");
    if !gopath.join("src/github.com/go-sql-driver/mysql").exists()
        || Command::new("go").arg("version").output().is_err()
    {
        assert!(
            apt_install("golang-go golang-github-go-sql-driver-mysql-dev"),
            "Go or go-sql-driver/mysql missing: apt-get install golang-go golang-github-go-sql-driver-mysql-dev"
        );
    }
    let build = tempfile::tempdir().expect("tempdir");
    let binary = build.path().join("sqlcheck");
    let mut go = Command::new("go");
    go.args(["build", "-o"])
        .arg(&binary)
        .arg(clients_dir().join("go/sqlcheck.go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", build.path().join("cache"));
    client_checks(go, "go build", &[]);
    for interpolate in ["false", "true"] {
        let mut check = Command::new(&binary);
        check.args([env().proxy.port.to_string().as_str(), interpolate]);
        client_checks(
            check,
            &format!("sqlcheck, interpolateParams={interpolate}"),
            &[
                "ok a row read by its key as written",
                "ok update by key",
                "ok delete by key",
                "ok cross-shard ORDER BY DESC LIMIT",
                "ok a committed transaction over shards is there, a rolled-back one is not",
                "ok the rolled-back DELETE left its row",
                "ok a duplicate key is ERR 1062",
            ],
        );
    }
}

#[test]
fn jdbc_connector_j() {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(crate::prepared::ps_table());
    let jar = Path::new("/usr/share/java/mariadb-java-client.jar");
    if !jar.exists() {
        let ok = apt_install("libmariadb-java default-jdk-headless");
        assert!(
            ok && jar.exists(),
            "MariaDB Connector/J missing: apt-get install libmariadb-java"
        );
    }
    let build = tempfile::tempdir().expect("tempdir");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(build.path())
        .arg(clients_dir().join("JdbcCheck.java"))
        .output()
        .expect("javac runs (apt-get install default-jdk-headless)");
    assert!(
        javac.status.success(),
        "{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let cp = format!("{}:{}", jar.display(), build.path().display());
    let o = Command::new("java")
        .args(["-cp", &cp, "JdbcCheck"])
        .arg(env().proxy.port.to_string())
        .output()
        .expect("java runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for check in [
        "ok native password, query with NULL",
        "ok backend error code and SQLSTATE",
        "ok transaction rollback",
        "ok caching_sha2 with public key retrieval",
        "ok TLS",
        "ok server prepared statements answer as text",
        "ok wrong password is 1045",
        "ok unknown schema is 1049",
    ] {
        assert!(out.contains(check), "missing '{check}' in:\n{out}");
    }
}

#[tokio::test]
async fn mysql_async_text_queries_types_and_errors() {
    let mut c = connect("app", "app", Some("shop")).await.expect("connects");
    type Item = (i32, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Item> = c
        .query(
            "SELECT id, name, CAST(amount AS CHAR), CAST(created AS CHAR) FROM items ORDER BY id",
        )
        .await
        .expect("query");
    assert_eq!(
        rows[0],
        (
            1,
            Some("apple".into()),
            Some("1.50".into()),
            Some("2026-01-02 03:04:05".into())
        )
    );
    assert_eq!(rows[1], (2, None, None, None));
    assert_eq!(rows[2].2.as_deref(), Some("-3.25"));
    let err = c
        .query_drop("INSERT INTO items (id) VALUES (2)")
        .await
        .expect_err("duplicate");
    match err {
        mysql_async::Error::Server(se) => {
            assert_eq!((se.code, se.state.as_str()), (1062, "23000"));
            assert!(se.message.contains("Duplicate entry '2'"), "{}", se.message);
        }
        other => panic!("expected a server error, got {other}"),
    }
    let one: Option<i32> = c.query_first("SELECT 1").await.expect("still usable");
    assert_eq!(one, Some(1));
    c.disconnect().await.expect("clean quit");
}

#[tokio::test]
async fn mysql_async_ping_reset_and_init_db() {
    let mut c = connect("app", "app", None).await.expect("connects");
    c.ping().await.expect("COM_PING");
    let db: Option<Option<String>> = c.query_first("SELECT DATABASE()").await.expect("query");
    assert_eq!(db, Some(None));
    c.query_drop("USE shop").await.expect("USE");
    c.query_drop("SET @x = 42, time_zone = '+03:00'")
        .await
        .expect("SET");
    let v: Option<(i64, String)> = c
        .query_first("SELECT @x, @@time_zone")
        .await
        .expect("query");
    assert_eq!(v, Some((42, "+03:00".into())));
    assert!(c.reset().await.expect("COM_RESET_CONNECTION"));
    let v: Option<(Option<i64>, String)> = c
        .query_first("SELECT @x, @@time_zone")
        .await
        .expect("query");
    assert_eq!(v, Some((None, "SYSTEM".into())));
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.expect("query");
    assert_eq!(db.as_deref(), Some("shop"));
}

#[tokio::test]
async fn mysql_async_over_tls_with_both_plugins() {
    let e = env();
    for (user, password) in [("nat", "nat"), ("tlsu", "tlsu")] {
        let ssl = mysql_async::SslOpts::default()
            .with_root_certs(vec![e.cert.clone().into()])
            .with_danger_skip_domain_validation(true);
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(e.proxy.port)
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some("shop"))
            .ssl_opts(Some(ssl));
        let mut c = mysql_async::Conn::new(opts).await.expect("TLS connection");
        let n: Option<i64> = c
            .query_first("SELECT COUNT(*) FROM items WHERE id <= 3")
            .await
            .expect("query");
        assert_eq!(n, Some(3), "{user}");
        c.disconnect().await.expect("quit");
    }
}

#[tokio::test]
async fn packets_of_16_mib_and_more_in_both_directions() {
    let mut c = connect("app", "app", Some("sbtest"))
        .await
        .expect("connects");
    c.query_drop("CREATE TABLE IF NOT EXISTS big (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .expect("create");
    c.query_drop("DELETE FROM big").await.expect("clean");
    let size = 17 * 1024 * 1024 + 5;
    let payload: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    // A statement larger than one 16 MiB packet, from client to myshard to the shard.
    c.query_drop(format!("INSERT INTO big VALUES (1, '{payload}')"))
        .await
        .expect("large insert");
    let (len, md5): (u64, String) = c
        .query_first("SELECT LENGTH(b), MD5(b) FROM big WHERE id = 1")
        .await
        .expect("query")
        .expect("row");
    assert_eq!(len, size as u64);
    let back: Vec<u8> = c
        .query_first("SELECT b FROM big WHERE id = 1")
        .await
        .expect("large row")
        .expect("row");
    assert_eq!(back.len(), size);
    assert_eq!(back, payload.as_bytes());
    let local_md5: String = c
        .query_first(format!("SELECT MD5('{}')", &payload[..10]))
        .await
        .expect("md5")
        .expect("row");
    assert_eq!(local_md5.len(), md5.len());
    c.query_drop("DROP TABLE big").await.expect("drop");
}

#[tokio::test]
async fn clients_preferring_unix_sockets_stay_on_myshard() {
    // mysql_async reads @@socket on loopback connections and reconnects there; the shard's
    // socket would bypass myshard.
    let e = env();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(e.proxy.port)
        .user(Some("app"))
        .pass(Some("app"))
        .db_name(Some("shop"))
        .prefer_socket(true);
    let mut c = mysql_async::Conn::new(opts).await.expect("connects");
    let comment: Option<String> = c
        .query_first("SELECT @@version_comment")
        .await
        .expect("query");
    assert_eq!(
        comment.as_deref(),
        Some("myshard sharding proxy"),
        "the connection went around myshard"
    );
    let socket: Option<String> = c.query_first("SELECT @@socket").await.expect("query");
    assert_eq!(socket.as_deref(), Some(""));
}
