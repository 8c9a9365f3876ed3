//! The README's demo command ends in the `myshard-demo` binary: it must start the cluster and
//! myshard, load the example schema, answer the printed connection command, and stop
//! everything it started on Ctrl-C.

use myshard_tests::cluster::free_port;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_starts_serves_and_stops_everything() {
    let exe = myshard_tests::proxy::myshard_binary()
        .expect("binary")
        .with_file_name("myshard-demo");
    let port = free_port().expect("port");
    let mut demo = Command::new(&exe)
        .env("MYSHARD_DEMO_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("myshard-demo runs");
    let stdout = demo.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut printed = String::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    assert!(
        printed.contains(&format!("mariadb -h127.0.0.1 -P{port} -uapp -papp shop")),
        "{printed}"
    );
    let out = mariadb(
        port,
        "SELECT o.quantity, p.title FROM orders o JOIN products p ON p.id = o.product_id WHERE o.customer_id = 2",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\tMonitor\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A session reads its own write at once, though reads go to replicas (issue 16: this
    // returned nothing before read-your-writes was on by default).
    let out = mariadb(
        port,
        "INSERT INTO customers (id, name, region, created) VALUES (9001, 'just written', 'EU', NOW()); SELECT name FROM customers WHERE id = 9001",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "just written\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    introspection_lists_exactly_the_logical_schema(port);
    // SAFETY: plain kill(2) on our child.
    unsafe {
        libc::kill(demo.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = demo.try_wait() {
            assert!(status.success(), "demo exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "myshard still listens after the demo stopped"
    );
}

/// `sql` run by the mariadb client as the demo's user, in one session.
fn mariadb(port: u16, sql: &str) -> std::process::Output {
    Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            "-uapp",
            "-papp",
            "--skip-ssl",
            "-B",
            "-N",
            "shop",
        ])
        .arg(format!("-P{port}"))
        .args(["-e", sql])
        .output()
        .expect("mariadb")
}

/// SQLAlchemy's `inspect()` and `information_schema` through the demo (whose shards hold
/// `mysql`, `performance_schema` and the rest) list exactly the logical schema `shop`: its
/// three tables and their columns, nothing of the backend.
fn introspection_lists_exactly_the_logical_schema(port: u16) {
    crate::drivers::ensure_python_module("pymysql", "pymysql");
    crate::drivers::ensure_python_module("sqlalchemy", "sqlalchemy");
    let out = crate::drivers::python_client(
        "introspect_check.py",
        &[port.to_string(), "app".into(), "app".into(), "shop".into()],
        None,
    );
    let got: serde_json::Value =
        serde_json::from_str(out.trim()).expect("introspect_check prints JSON");
    let columns = serde_json::json!({
        "customers": ["id", "name", "region", "created"],
        "orders": ["id", "customer_id", "product_id", "quantity", "ordered_at"],
        "products": ["id", "title", "price"],
    });
    let expected = serde_json::json!({
        "schemas": ["shop"],
        "schemata": ["information_schema", "shop"],
        "tables": {
            "customers": {"columns": columns["customers"], "primary_key": ["id"], "indexes": []},
            "orders": {"columns": columns["orders"], "primary_key": ["id"], "indexes": ["customer_id"]},
            "products": {"columns": columns["products"], "primary_key": ["id"], "indexes": []},
        },
        "information_schema_tables": [["shop", "customers"], ["shop", "orders"], ["shop", "products"]],
        "information_schema_columns": columns,
    });
    assert_eq!(got, expected);
}
