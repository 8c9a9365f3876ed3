//! The Prometheus endpoint: after a known workload the statement counters equal the statements
//! sent, and the exposition parses with the reference Python parser.

use crate::env::{config_rest, connect_to, env};
use myshard_tests::cluster::free_port;
use myshard_tests::Proxy;
use mysql_async::prelude::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// The exposition text served on `port`.
pub(crate) fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn statement_counters_match_the_workload_and_parse_as_prometheus_text() {
    let e = env();
    let metrics_port = free_port().expect("port");
    let proxy = Proxy::start(
        &e.cluster,
        &format!("metrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
        &config_rest(),
    )
    .expect("proxy");
    let mut c = connect_to(proxy.port, "mall", "mall", Some("mall"))
        .await
        .expect("connects");
    crate::sharding::setup();
    let before = scrape(metrics_port);
    let count = |text: &str, kind: &str, route: &str| -> u64 {
        text.lines()
            .filter(|l| {
                l.starts_with("myshard_statements_total{")
                    && l.contains(&format!("kind=\"{kind}\""))
                    && l.contains(&format!("route=\"{route}\""))
            })
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum::<f64>() as u64
    };
    for i in 0..25 {
        let _: Option<String> = c
            .query_first(format!("SELECT name FROM users WHERE id = {i}"))
            .await
            .expect("point select");
    }
    for _ in 0..3 {
        let _: Vec<i64> = c
            .query("SELECT id FROM users WHERE name = 'nobody'")
            .await
            .expect("scatter");
    }
    let _ = c.query_drop("SELECT * FROM nowhere_table").await;
    let after = scrape(metrics_port);
    // 25 point selects plus the failing SELECT (it ran, on the default shard).
    assert_eq!(
        count(&after, "read", "single") - count(&before, "read", "single"),
        26,
        "{after}"
    );
    // A scatter read is counted once per shard it reaches (4 shards).
    assert_eq!(
        count(&after, "read", "scatter") - count(&before, "read", "scatter"),
        12,
        "{after}"
    );
    assert!(
        after.contains("myshard_errors_total{code=\"1146\"}"),
        "{after}"
    );
    // The 25 point selects share one shape: planned once, then given the kept plan.
    let cache = |text: &str, event: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(&format!("myshard_plan_cache_total{{event=\"{event}\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    assert!(
        cache(&after, "hit") - cache(&before, "hit") >= 24,
        "{after}"
    );
    assert!(after.contains("myshard_plan_cache_entries "), "{after}");
    assert!(after.contains("myshard_backend_up{"), "{after}");
    assert!(after.contains("myshard_replica_lag_seconds{"), "{after}");
    assert!(
        after.contains("myshard_statement_duration_seconds_bucket{"),
        "{after}"
    );
    assert!(
        after.contains("myshard_shard_statement_duration_seconds_bucket{"),
        "{after}"
    );
    // The reference parser accepts it.
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nfams = list(p(sys.stdin.read()))\nprint(len(fams))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (pip install prometheus-client)");
    py.stdin
        .as_mut()
        .expect("stdin")
        .write_all(after.as_bytes())
        .expect("write");
    let out = py.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(families >= 8, "{families} metric families");
}

#[test]
fn the_grafana_dashboard_queries_metrics_myshard_exports() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/grafana/myshard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
    let exported = [
        "myshard_statements_total",
        "myshard_statement_duration_seconds_bucket",
        "myshard_errors_total",
        "myshard_client_connections",
        "myshard_backend_pool_connections",
        "myshard_backend_up",
        "myshard_backend_in_rotation",
        "myshard_replica_lag_seconds",
        "myshard_throttled_total",
        "myshard_shed_total",
        "myshard_merge_rows_total",
        "myshard_merge_bytes_total",
        "myshard_shard_statement_duration_seconds_bucket",
    ];
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    for p in panels {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            assert!(
                exported.iter().any(|m| expr.contains(m)),
                "panel '{}' queries an unknown metric: {expr}",
                p["title"]
            );
        }
    }
}
