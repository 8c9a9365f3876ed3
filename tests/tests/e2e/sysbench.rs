//! sysbench (Debian's build, text protocol) through myshard against an unsharded schema.

use crate::env::env;
use std::process::Command;

fn ensure_sysbench() {
    if Command::new("sysbench").arg("--version").output().is_err() {
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "sysbench is missing and `apt-get install sysbench` failed"
        );
    }
}

fn sysbench(workload: &str, action: &str, extra: &[&str]) -> String {
    let e = env();
    let o = Command::new("sysbench")
        .arg(workload)
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--mysql-user=app",
            "--mysql-password=app",
            "--mysql-db=sbtest",
            "--db-ps-mode=disable",
            "--tables=4",
            "--table-size=10000",
        ])
        .arg(format!("--mysql-port={}", e.proxy.port))
        .args(extra)
        .arg(action)
        .output()
        .expect("sysbench runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "sysbench {workload} {action} failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn assert_clean_run(out: &str) {
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("WARNING") || l.contains("FATAL"))
        .collect();
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("ignored errors:"))
        .unwrap_or_else(|| panic!("no error count in:\n{out}"));
    assert!(
        line.split_whitespace().nth(2) == Some("0"),
        "errors during the run: {line}\n{}",
        warnings.join("\n")
    );
    let total = out
        .lines()
        .find(|l| l.trim_start().starts_with("total:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(total > 0, "no statements ran:\n{out}");
}

#[test]
fn sysbench_read_write_and_read_only_run_30s_each_without_errors() {
    ensure_sysbench();
    sysbench("oltp_read_write", "cleanup", &[]);
    sysbench("oltp_read_write", "prepare", &[]);
    let rw = sysbench(
        "oltp_read_write",
        "run",
        &["--time=30", "--threads=4", "--report-interval=0"],
    );
    assert_clean_run(&rw);
    let ro = sysbench(
        "oltp_read_only",
        "run",
        &["--time=30", "--threads=4", "--report-interval=0"],
    );
    assert_clean_run(&ro);
    sysbench("oltp_read_write", "cleanup", &[]);
}
