//! sysbench (Debian's build) through myshard: its tables sharded by id over the four shards,
//! in the text protocol and in its default prepared-statement mode (binary protocol).

use crate::env::env;
use std::process::Command;

fn ensure_sysbench() {
    if Command::new("sysbench").arg("--version").output().is_err() {
        let ok = crate::drivers::apt_install("sysbench");
        assert!(
            ok,
            "sysbench is missing and `apt-get install sysbench` failed"
        );
    }
}

fn sysbench(workload: &str, action: &str, extra: &[&str]) -> String {
    sysbench_in("sbtest", workload, action, extra)
}

fn sysbench_in(db: &str, workload: &str, action: &str, extra: &[&str]) -> String {
    let e = env();
    let o = Command::new("sysbench")
        .arg(workload)
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--mysql-user=app",
            "--mysql-password=app",
            "--tables=4",
            "--table-size=10000",
        ])
        .arg(format!("--mysql-port={}", e.proxy.port))
        .arg(format!("--mysql-db={db}"))
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
    assert!(
        warnings.is_empty(),
        "sysbench reported:\n{}\n{out}",
        warnings.join("\n")
    );
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("ignored errors:"))
        .unwrap_or_else(|| panic!("no error count in:\n{out}"));
    // Runs use --mysql-ignore-errors=1213: a deadlock between sysbench's own threads (which
    // one MariaDB reports just the same) is retried by sysbench; any other error stops the
    // run with FATAL and fails above. Deadlocks stay rare, or something is wrong.
    let deadlocks: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(deadlocks <= 5, "too many deadlocks: {line}\n{out}");
    let total = out
        .lines()
        .find(|l| l.trim_start().starts_with("total:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(total > 0, "no statements ran:\n{out}");
}

const RUN: [&str; 4] = [
    "--threads=4",
    "--report-interval=0",
    "--mysql-ignore-errors=1213",
    "--db-ps-mode=disable",
];

#[test]
fn sysbench_text_protocol_read_write_runs_without_errors() {
    ensure_sysbench();
    sysbench("oltp_read_write", "cleanup", &[]);
    sysbench("oltp_read_write", "prepare", &[]);
    let rw = sysbench(
        "oltp_read_write",
        "run",
        &[&["--time=20"], &RUN[..]].concat(),
    );
    assert_clean_run(&rw);
    sysbench("oltp_read_write", "cleanup", &[]);
}

/// The acceptance runs: sharded by id over four shards, sysbench's default prepared-statement
/// mode, 60 s each.
#[test]
fn sysbench_prepared_statements_over_four_shards_run_60s_each_without_errors() {
    ensure_sysbench();
    // Client-generated ids: the workloads address rows by id 1..table-size.
    let setup = ["--auto-inc=off"];
    sysbench_in("sbshard", "oltp_read_write", "cleanup", &[]);
    sysbench_in("sbshard", "oltp_read_write", "prepare", &setup);
    let ps = [
        "--threads=4",
        "--report-interval=0",
        "--mysql-ignore-errors=1213",
        "--db-ps-mode=auto",
        "--time=60",
    ];
    for workload in ["oltp_point_select", "oltp_read_only", "oltp_read_write"] {
        let out = sysbench_in("sbshard", workload, "run", &[&setup[..], &ps[..]].concat());
        assert_clean_run(&out);
    }
    // The rows really are spread over the shards.
    let e = env();
    for shard in 0..4 {
        let n = myshard_tests::cluster::sql(
            e.cluster.primary_port(shard),
            "SELECT COUNT(*) FROM sbshard.sbtest1",
        )
        .expect("count on the shard");
        let n: u64 = n.trim().parse().expect("a count");
        assert!(n > 1000, "shard {shard} holds {n} rows of sbtest1");
    }
    sysbench_in("sbshard", "oltp_read_write", "cleanup", &[]);
}
