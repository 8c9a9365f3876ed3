//! `myshard-cluster [SHARDS] [REPLICAS]`: starts a local MariaDB cluster, prints its ports as
//! JSON on one line, and stops it on Ctrl-C or when standard input closes.

use myshard_tests::{Cluster, ClusterSpec};
use std::io::Read;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let spec = ClusterSpec {
        shards: args.first().copied().unwrap_or(2),
        replicas: args.get(1).copied().unwrap_or(1),
    };
    let cluster = match Cluster::start(spec) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cluster failed to start: {e}");
            std::process::exit(1);
        }
    };
    let shards: Vec<_> = (0..cluster.shards())
        .map(|s| serde_json::json!({"primary": cluster.primary_port(s), "replicas": cluster.replica_ports(s)}))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "dir": cluster.dir(), "shards": shards })
    );
    // Runs until stdin closes (or the process is killed; the servers die with it).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(cluster);
}
