//! Differential runs: the same schema, data and queries in one plain MariaDB and, through
//! myshard, in four shards. Used by the in-repository suite (`tests/differential/`) and by the
//! public corpus (`../shared/corpus/`).

use crate::cluster::sql;
use crate::{Cluster, ClusterSpec, Proxy};
use std::path::Path;
use std::process::Command;

/// A shard map from the corpus schema's `-- shard:` comments: one hash rule for every sharded
/// table (so joins on sharding columns are co-located) and a broadcast rule;
/// `-- shard: col split N` places the table by its own hash rule over N tables per shard.
pub fn shard_map(db: &str, schema: &str, shards: usize) -> String {
    let names: Vec<String> = (0..shards).map(|i| format!("\"s{i}\"")).collect();
    let mut out = format!(
        "[[schemas]]\nname = \"{db}\"\ndefault_shard = \"s0\"\n\n[[schemas.rules]]\nname = \"h\"\nkind = \"hash\"\nshards = [{0}]\n\n[[schemas.rules]]\nname = \"b\"\nkind = \"broadcast\"\nshards = [{0}]\n\n",
        names.join(", ")
    );
    let mut pending: Option<String> = None;
    let mut split: Option<String> = None;
    for line in schema.lines() {
        if let Some(rest) = line.strip_prefix("-- shard:") {
            let mut words = rest.split_whitespace();
            pending = words.next().map(str::to_string);
            split = match (words.next(), words.next()) {
                (Some("split"), Some(n)) => Some(n.to_string()),
                _ => None,
            };
        } else if let (Some(col), Some(rest)) =
            (pending.as_ref(), line.strip_prefix("CREATE TABLE "))
        {
            let table = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_matches('`');
            if let Some(n) = split.take() {
                out.push_str(&format!(
                    "[[schemas.rules]]\nname = \"split_{table}\"\nkind = \"hash\"\nshards = [{}]\ntables_per_shard = {n}\n\n[[schemas.tables]]\nname = \"{table}\"\nrule = \"split_{table}\"\ncolumn = \"{col}\"\n\n",
                    names.join(", ")
                ));
            } else if col == "broadcast" {
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

/// Loads `dir`'s schema.sql and data.sql into a reference MariaDB and, through myshard, into
/// four shards (database `db`, sharded by the schema's `-- shard:` comments), runs `runner`
/// (a Python script: DIR REF TEST USER PASSWORD) and returns its JSON summary. Panics with
/// the runner's output when it prints none or loading failed.
pub fn run(dir: &Path, db: &str, runner: &Path) -> serde_json::Value {
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
    sql(reference.primary_port(0), &format!("CREATE DATABASE {db}")).expect("ref db");
    for s in 0..4 {
        sql(cluster.primary_port(s), &format!("CREATE DATABASE {db}")).expect("shard db");
    }
    let users = format!("[[users]]\nname = \"root\"\npassword = \"\"\nauth_plugin = \"mysql_native_password\"\nschemas = [\"{db}\"]\n\n");
    let proxy = Proxy::start(
        &cluster,
        "",
        &format!("{users}{}", shard_map(db, &schema, 4)),
    )
    .expect("myshard starts");
    let out = Command::new("python3")
        .arg(runner)
        .arg(dir)
        .arg(format!("127.0.0.1:{}/{db}", reference.primary_port(0)))
        .arg(format!("127.0.0.1:{}/{db}", proxy.port))
        .args(["root", ""])
        .output()
        .expect("python3 runs (apt-get install python3; pip install pymysql)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let summary = text
        .lines()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .unwrap_or_else(|| panic!("the runner printed no summary:\n{text}\n{}", proxy.log()));
    let summary: serde_json::Value = serde_json::from_str(summary).expect("summary JSON");
    assert_eq!(summary["load_failed"], false, "loading failed:\n{text}");
    // A statement may be refused, never take myshard down.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", proxy.port)).is_ok(),
        "myshard stopped during the run:\n{}",
        proxy.log()
    );
    summary
}
