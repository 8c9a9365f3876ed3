//! `myshard-demo`: starts a local cluster (2 shards, each a primary with one replica), creates
//! the `shop` schema, starts myshard on 127.0.0.1:3307 (user `app`, password `app`), loads the
//! example data through it, prints how to connect, and stops everything on Ctrl-C.

use myshard_tests::cluster::sql;
use myshard_tests::proxy::{myshard_binary, shards_toml};
use myshard_tests::{Cluster, ClusterSpec};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The demo's shard map: customers and their orders hashed by customer, products copied to
/// every shard.
const SHOP_MAP: &str = r#"[[schemas]]
name = "shop"
default_shard = "s0"

[[schemas.rules]]
name = "by_customer"
kind = "hash"
shards = ["s0", "s1"]

[[schemas.rules]]
name = "everywhere"
kind = "broadcast"
shards = ["s0", "s1"]

[[schemas.tables]]
name = "customers"
rule = "by_customer"
column = "id"

[[schemas.tables]]
name = "orders"
rule = "by_customer"
column = "customer_id"
auto_increment = "id"

[[schemas.tables]]
name = "products"
rule = "everywhere"
"#;

fn fail(msg: &str) -> ! {
    eprintln!("demo: {msg}");
    std::process::exit(1);
}

fn main() {
    let listen = std::env::var("MYSHARD_DEMO_LISTEN").unwrap_or_else(|_| "127.0.0.1:3307".into());
    if std::net::TcpStream::connect(&listen).is_ok() {
        fail(&format!(
            "{listen} is already in use; stop what listens there or set MYSHARD_DEMO_LISTEN"
        ));
    }
    eprintln!("demo: starting 2 MariaDB shards with one replica each…");
    let cluster = Cluster::start(ClusterSpec {
        shards: 2,
        replicas: 1,
    })
    .unwrap_or_else(|e| fail(&e));
    // myshard's backend account has only what it uses (README, "The backend account"); the
    // statements replicate to the replicas.
    for shard in 0..cluster.shards() {
        if let Err(e) = sql(
            cluster.primary_port(shard),
            "CREATE DATABASE shop;
             CREATE USER 'myshard'@'127.0.0.1' IDENTIFIED BY 'myshard-demo';
             GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES,
                   CREATE VIEW, SHOW VIEW, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE
               ON shop.* TO 'myshard'@'127.0.0.1';
             GRANT SLAVE MONITOR ON *.* TO 'myshard'@'127.0.0.1';",
        ) {
            fail(&e);
        }
    }
    let config = format!(
        "[server]\nlisten = \"{listen}\"\n\n[backend]\nuser = \"myshard\"\npassword = \"myshard-demo\"\n\n[[users]]\nname = \"app\"\npassword = \"app\"\nschemas = [\"shop\"]\n\n{}{SHOP_MAP}",
        shards_toml(&cluster)
    );
    let config_path = cluster.dir().join("myshard.toml");
    if let Err(e) = std::fs::write(&config_path, &config) {
        fail(&e.to_string());
    }
    let binary = myshard_binary().unwrap_or_else(|e| fail(&e));
    let mut proxy = Command::new(binary)
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start myshard: {e}")));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        if Instant::now() > deadline || matches!(proxy.try_wait(), Ok(Some(_))) {
            let _ = proxy.kill();
            fail("myshard did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (host, port) = listen.rsplit_once(':').unwrap_or(("127.0.0.1", "3307"));
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop.sql");
    let schema_sql = std::fs::read_to_string(&schema)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", schema.display())));
    let mut load = Command::new("mariadb")
        .args(["--no-defaults", "-uapp", "-papp", "--skip-ssl"])
        .arg(format!("-h{host}"))
        .arg(format!("-P{port}"))
        .arg("shop")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("mariadb client: {e}")));
    if let Some(mut stdin) = load.stdin.take() {
        let _ = stdin.write_all(schema_sql.as_bytes());
    }
    if !load.wait().map(|s| s.success()).unwrap_or(false) {
        let _ = proxy.kill();
        fail("loading examples/shop.sql through myshard failed");
    }
    // Reads go to replicas: wait until each has applied the example data, so the printed
    // query answers with it from the first try.
    for shard in 0..cluster.shards() {
        if let Err(e) = cluster.sync_replicas(shard) {
            let _ = proxy.kill();
            fail(&format!("replicas of shard {shard} did not catch up: {e}"));
        }
    }
    println!();
    println!(
        "myshard is running on {listen} in front of {} MariaDB servers.",
        cluster.servers.len()
    );
    println!("Connect with:");
    println!("  mariadb -h{host} -P{port} -uapp -papp shop");
    println!("  mysql   -h{host} -P{port} -uapp -papp shop");
    println!("Try (customers and orders are sharded by customer over 2 shards):");
    println!(
        "  SELECT * FROM orders o JOIN products p ON p.id = o.product_id WHERE o.customer_id = 2;"
    );
    println!("  EXPLAIN ROUTE INSERT INTO orders (customer_id, product_id, quantity, ordered_at) VALUES (3, 1, 1, NOW());");
    println!("Configuration: {}", config_path.display());
    println!("Press Ctrl-C to stop myshard and the shards.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    });
    eprintln!("demo: stopping myshard and the shards…");
    // SAFETY: plain kill(2) on our child.
    unsafe {
        libc::kill(proxy.id() as i32, libc::SIGTERM);
    }
    let _ = proxy.wait();
    drop(cluster);
    eprintln!("demo: stopped.");
}
