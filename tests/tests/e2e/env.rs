//! The shared fixture: one local cluster (4 shards, 1 replica each) and one myshard with TLS,
//! started once for the whole test binary from a thread that lives as long as the process, so
//! the servers (which die with the thread that started them) last for every test.

use myshard_tests::cluster::sql;
use myshard_tests::{Cluster, ClusterSpec, Proxy};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub struct Env {
    pub cluster: Cluster,
    pub proxy: Proxy,
    /// The CA that signed myshard's certificate (clients verify against it).
    pub cert: PathBuf,
    _certs: tempfile::TempDir,
}

pub const USERS: &str = r#"
[[users]]
name = "app"
password = "app"
schemas = ["shop", "sbtest", "sbshard", "lit"]

[[users]]
name = "nat"
password = "nat"
auth_plugin = "mysql_native_password"
schemas = ["shop"]

[[users]]
name = "rsa"
password = "rsa"
schemas = ["shop"]

[[users]]
name = "tlsu"
password = "tlsu"
schemas = ["shop"]

[[users]]
name = "jdbc"
password = "jdbc"
schemas = ["shop"]

[[users]]
name = "cli"
password = "cli"
schemas = ["shop"]

[[schemas]]
name = "shop"
default_shard = "s0"

[[schemas]]
name = "sbtest"
default_shard = "s1"

[[schemas]]
name = "other"
default_shard = "s1"

# sysbench's tables, sharded by id over the four shards.
[[schemas]]
name = "sbshard"
default_shard = "s0"

[[schemas.rules]]
name = "by_id"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.tables]]
name = "sbtest1"
rule = "by_id"
column = "id"

[[schemas.tables]]
name = "sbtest2"
rule = "by_id"
column = "id"

[[schemas.tables]]
name = "sbtest3"
rule = "by_id"
column = "id"

[[schemas.tables]]
name = "sbtest4"
rule = "by_id"
column = "id"

# Every value type, for the prepared-statement (binary protocol) checks.
[[schemas.tables]]
name = "ps_types"
rule = "by_id"
column = "id"

[[users]]
name = "mall"
password = "mall"
auth_plugin = "mysql_native_password"
schemas = ["mall"]

[[users]]
name = "dba"
password = "dba"
auth_plugin = "mysql_native_password"
schemas = ["mall"]
allow_hints = true
"#;

/// The sharded schema `mall` over the four shards: one rule of each kind.
pub const MALL: &str = r#"
[[schemas]]
name = "mall"
default_shard = "s0"

[[schemas.rules]]
name = "by_user"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.rules]]
name = "by_region"
kind = "list"
shards = ["s0", "s1", "s2", "s3"]
values = { EU = "s0", US = "s1", AS = "s2" }
default = "s3"

[[schemas.rules]]
name = "by_tenant"
kind = "lookup"
shards = ["s0", "s1", "s2", "s3"]
map = { "1" = "s3", "2" = "s3", "3" = "s2" }
fallback = "hash"

[[schemas.rules]]
name = "by_range"
kind = "range"
shards = ["s0", "s1", "s2", "s3"]
bounds = [1000, 2000, 3000]

[[schemas.rules]]
name = "split"
kind = "hash"
shards = ["s0", "s1", "s2", "s3"]
tables_per_shard = 2

[[schemas.rules]]
name = "global"
kind = "broadcast"
shards = ["s0", "s1", "s2", "s3"]

[[schemas.tables]]
name = "users"
rule = "by_user"
column = "id"

[[schemas.tables]]
name = "orders"
rule = "by_user"
column = "user_id"
auto_increment = "id"

[[schemas.tables]]
name = "stores"
rule = "by_region"
column = "region"

[[schemas.tables]]
name = "events"
rule = "by_tenant"
column = "tenant_id"

[[schemas.tables]]
name = "logs"
rule = "by_range"
column = "id"

[[schemas.tables]]
name = "t_order"
rule = "split"
column = "user_id"

[[schemas.tables]]
name = "countries"
rule = "global"

[[schemas.tables]]
name = "scores"
rule = "by_user"
column = "id"

# Values that must reach the shards exactly (see literals.rs): a physical database name of its
# own, a hashed table, a split table and one with generated ids.
[[schemas]]
name = "lit"
default_shard = "s0"
database = "lit_phys"

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
name = "kv_split"
rule = "split"
column = "id"

[[schemas.tables]]
name = "kv_gen"
rule = "by_id"
column = "k"
auto_increment = "id"
"#;

/// Users and schemas for a test proxy's configuration.
pub fn config_rest() -> String {
    // Reads go to replicas; a session reads its own writes from the primary for a minute.
    format!("[backend]\nread_your_writes_ms = 60000\nhealth_interval_ms = 500\n\n{USERS}\n{MALL}")
}

static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

/// The shared environment; a failure to start it fails the test with the reason.
pub fn env() -> &'static Env {
    let result = ENV.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(build());
            loop {
                std::thread::park();
            }
        });
        rx.recv()
            .unwrap_or_else(|_| Err("environment thread died".into()))
    });
    match result {
        Ok(env) => env,
        Err(e) => panic!(
            "the test cluster could not start: {e}\n\
             (tests start their own MariaDB servers; `apt-get install mariadb-server` if it is missing, \
             and build first with `cargo build --workspace --all-targets`)"
        ),
    }
}

/// A test CA and a server certificate it signed for 127.0.0.1: (dir, ca, cert, key).
pub fn make_cert() -> Result<(tempfile::TempDir, PathBuf, PathBuf, PathBuf), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let p = |name: &str| dir.path().join(name);
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|e| e.to_string())?;
    let steps: [Vec<String>; 3] = [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=myshard test CA",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            "-keyout".into(),
            p("ca.key").display().to_string(),
            "-out".into(),
            p("ca.pem").display().to_string(),
        ])
        .collect(),
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            "-keyout".into(),
            p("key.pem").display().to_string(),
            "-out".into(),
            p("server.csr").display().to_string(),
        ])
        .collect(),
        vec!["x509", "-req", "-days", "2", "-CAcreateserial"]
            .into_iter()
            .map(String::from)
            .chain([
                "-in".into(),
                p("server.csr").display().to_string(),
                "-CA".into(),
                p("ca.pem").display().to_string(),
                "-CAkey".into(),
                p("ca.key").display().to_string(),
                "-extfile".into(),
                p("ext.cnf").display().to_string(),
                "-out".into(),
                p("cert.pem").display().to_string(),
            ])
            .collect(),
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .map_err(|e| format!("openssl: {e} (apt-get install openssl)"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let (ca, cert, key) = (p("ca.pem"), p("cert.pem"), p("key.pem"));
    Ok((dir, ca, cert, key))
}

pub fn server_toml(cert: &std::path::Path, key: &std::path::Path) -> String {
    format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    )
}

fn build() -> Result<Env, String> {
    let cluster = Cluster::start(ClusterSpec {
        shards: 4,
        replicas: 1,
    })?;
    let s0 = cluster.primary_port(0);
    let s1 = cluster.primary_port(1);
    sql(
        s0,
        "CREATE DATABASE shop;
         CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(10,2),
                                  created DATETIME, data LONGBLOB);
         INSERT INTO shop.items VALUES (1, 'apple', 1.50, '2026-01-02 03:04:05', NULL),
                                       (2, NULL, NULL, NULL, NULL),
                                       (3, 'Cherry', -3.25, '2025-12-31 23:59:59', 'xyz');",
    )?;
    sql(s1, "CREATE DATABASE sbtest; CREATE DATABASE other;")?;
    for shard in 0..4 {
        // The general log shows which shard received which statement.
        sql(
            cluster.primary_port(shard),
            "CREATE DATABASE mall; CREATE DATABASE sbshard; CREATE DATABASE lit_phys; SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1;",
        )?;
    }
    let (certs, ca, cert, key) = make_cert()?;
    let proxy = Proxy::start(&cluster, &server_toml(&cert, &key), &config_rest())?;
    Ok(Env {
        cluster,
        proxy,
        cert: ca,
        _certs: certs,
    })
}

/// A mysql_async connection to the shared proxy.
pub async fn connect(
    user: &str,
    password: &str,
    db: Option<&str>,
) -> mysql_async::Result<mysql_async::Conn> {
    connect_to(env().proxy.port, user, password, db).await
}

/// A mysql_async connection to a proxy port.
pub async fn connect_to(
    port: u16,
    user: &str,
    password: &str,
    db: Option<&str>,
) -> mysql_async::Result<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await
}
