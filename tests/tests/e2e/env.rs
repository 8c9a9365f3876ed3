//! The shared fixture: one local cluster (2 shards, 1 replica each) and one myshard with TLS,
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
    pub cert: PathBuf,
    _certs: tempfile::TempDir,
}

pub const USERS: &str = r#"
[[users]]
name = "app"
password = "app"
schemas = ["shop", "sbtest"]

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
"#;

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

/// A self-signed certificate and key for 127.0.0.1.
pub fn make_cert() -> Result<(tempfile::TempDir, PathBuf, PathBuf), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("openssl: {e} (apt-get install openssl)"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((dir, cert, key))
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
        shards: 2,
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
    let (certs, cert, key) = make_cert()?;
    let proxy = Proxy::start(&cluster, &server_toml(&cert, &key), USERS)?;
    let _ = key;
    Ok(Env {
        cluster,
        proxy,
        cert,
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
