//! Scale-out: myshard keeps no state that instances must share, so several instances with the
//! same shard map serve behind a plain TCP load balancer. Generated ids stay unique because
//! each instance has its own worker id.

use crate::env::{config_rest, connect_to, env};
use myshard_tests::cluster::free_port;
use myshard_tests::Proxy;
use mysql_async::prelude::*;
use std::collections::HashSet;

/// A round-robin TCP load balancer in front of `upstreams`; returns its port.
async fn load_balancer(upstreams: Vec<u16>) -> u16 {
    let port = free_port().expect("port");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let up = upstreams[n % upstreams.len()];
            n += 1;
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", up)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_a_tcp_balancer_share_nothing_but_the_map() {
    let e = env();
    crate::sharding::setup();
    let a = Proxy::start(&e.cluster, "worker_id = 11\n", &config_rest()).expect("instance a");
    let b = Proxy::start(&e.cluster, "worker_id = 12\n", &config_rest()).expect("instance b");
    let lb = load_balancer(vec![a.port, b.port]).await;
    let mut tasks = Vec::new();
    for client in 0..16u64 {
        tasks.push(tokio::spawn(async move {
            let mut c = connect_to(lb, "mall", "mall", Some("mall")).await?;
            let mut ids = Vec::new();
            for i in 0..10u64 {
                c.query_drop(format!(
                    "INSERT INTO orders (user_id, amount) VALUES ({}, 2.5)",
                    90_000 + client * 10 + i
                ))
                .await?;
                ids.push(c.last_insert_id().expect("generated id"));
            }
            Ok::<_, mysql_async::Error>(ids)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(
            t.await
                .expect("task")
                .expect("inserts through the balancer"),
        );
    }
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        160,
        "generated ids collide across instances"
    );
    let workers: HashSet<u64> = all.iter().map(|id| (id >> 12) & 0x3FF).collect();
    assert_eq!(workers, HashSet::from([11, 12]), "both instances served");
    // Rows written through one instance are read through the other.
    let mut via_a = connect_to(a.port, "mall", "mall", Some("mall"))
        .await
        .expect("a");
    let mut via_b = connect_to(b.port, "mall", "mall", Some("mall"))
        .await
        .expect("b");
    let count =
        "/* myshard:primary */ SELECT COUNT(*) FROM orders WHERE user_id BETWEEN 90000 AND 90159";
    let na: Option<i64> = via_a.query_first(count).await.expect("count via a");
    let nb: Option<i64> = via_b.query_first(count).await.expect("count via b");
    assert_eq!((na, nb), (Some(160), Some(160)));
}
