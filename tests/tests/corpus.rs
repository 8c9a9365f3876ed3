//! The public differential corpus (`../shared/corpus`, taken from Vitess's end-to-end
//! suites): the same schema and data in one plain MariaDB and, through myshard, in 4 shards;
//! every statement on both. Prints the pass rate by query class. A refusal (ERR 1235) is an
//! honest "not yet"; a different answer is a bug, so the test requires none.

use myshard_tests::cluster::sql;
use myshard_tests::{Cluster, ClusterSpec, Proxy};
use std::path::PathBuf;
use std::process::Command;

fn corpus_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    assert!(
        dir.join("queries.sql").is_file(),
        "the public corpus is expected at {} (shared/ beside the clone)",
        dir.display()
    );
    dir
}

/// A shard map from the corpus schema's `-- shard:` comments: one hash rule for every sharded
/// table (so joins on sharding columns are co-located) and a broadcast rule.
fn shard_map(schema: &str, shards: usize) -> String {
    let names: Vec<String> = (0..shards).map(|i| format!("\"s{i}\"")).collect();
    let mut out = format!(
        "[[schemas]]\nname = \"corpus\"\ndefault_shard = \"s0\"\n\n[[schemas.rules]]\nname = \"h\"\nkind = \"hash\"\nshards = [{0}]\n\n[[schemas.rules]]\nname = \"b\"\nkind = \"broadcast\"\nshards = [{0}]\n\n",
        names.join(", ")
    );
    let mut pending: Option<String> = None;
    for line in schema.lines() {
        if let Some(rest) = line.strip_prefix("-- shard:") {
            pending = rest.split_whitespace().next().map(str::to_string);
        } else if let (Some(col), Some(rest)) =
            (pending.as_ref(), line.strip_prefix("CREATE TABLE "))
        {
            let table = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_matches('`');
            if col == "broadcast" {
                out.push_str(&format!(
                    "[[schemas.tables]]\nname = \"{table}\"\nrule = \"b\"\n\n"
                ));
            } else {
                out.push_str(&format!(
                    "[[schemas.tables]]\nname = \"{table}\"\nrule = \"h\"\ncolumn = \"{col}\"\n\n"
                ));
            }
            pending = None;
        }
    }
    out
}

#[test]
fn public_corpus_never_gets_a_wrong_answer() {
    let dir = corpus_dir();
    let schema = std::fs::read_to_string(dir.join("schema.sql")).expect("schema.sql");
    let reference = Cluster::start(ClusterSpec {
        shards: 1,
        replicas: 0,
    })
    .expect("reference server");
    let cluster = Cluster::start(ClusterSpec {
        shards: 4,
        replicas: 0,
    })
    .expect("shards");
    sql(reference.primary_port(0), "CREATE DATABASE corpus").expect("ref db");
    for s in 0..4 {
        sql(cluster.primary_port(s), "CREATE DATABASE corpus").expect("shard db");
    }
    let users = "[[users]]\nname = \"root\"\npassword = \"\"\nauth_plugin = \"mysql_native_password\"\nschemas = [\"corpus\"]\n\n";
    let proxy = Proxy::start(&cluster, "", &format!("{users}{}", shard_map(&schema, 4)))
        .expect("myshard starts");
    let out = Command::new("python3")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/run_corpus.py"))
        .arg(&dir)
        .arg(format!("127.0.0.1:{}/corpus", reference.primary_port(0)))
        .arg(format!("127.0.0.1:{}/corpus", proxy.port))
        .args(["root", ""])
        .output()
        .expect("python3 runs (apt-get install python3; pip install pymysql)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let summary = text
        .lines()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .unwrap_or_else(|| {
            panic!(
                "the corpus runner printed no summary:\n{text}\n{}",
                proxy.log()
            )
        });
    let summary: serde_json::Value = serde_json::from_str(summary).expect("summary JSON");
    assert_eq!(summary["load_failed"], false, "loading the corpus failed");
    assert_eq!(
        summary
            .get("ref_error")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        0,
        "the reference rejected statements"
    );
    assert_eq!(
        summary
            .get("mismatch")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        0,
        "myshard answered differently from one MariaDB"
    );
    assert!(summary.get("match").and_then(|v| v.as_u64()).unwrap_or(0) > 0);
}
