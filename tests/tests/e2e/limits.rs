//! Connection limits and lifecycle: thousands of clients over a few backend connections,
//! ERR 1040 past the limit, idle timeout, and graceful shutdown on SIGTERM.

use crate::env::{config_rest, connect_to, env, server_toml};
use myshard_tests::Proxy;
use mysql_async::prelude::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_clients_are_served_and_client_2001_gets_1040() {
    let e = env();
    let proxy = Proxy::start(
        &e.cluster,
        "max_connections = 2000\n",
        &config_rest().replace(
            "name = \"app\"\npassword = \"app\"",
            "name = \"app\"\npassword = \"app\"\nauth_plugin = \"mysql_native_password\"",
        ),
    )
    .expect("proxy starts");
    let port = proxy.port;
    let mut conns = Vec::with_capacity(2000);
    for chunk in 0..20 {
        let mut handles = Vec::new();
        for _ in 0..100 {
            handles.push(tokio::spawn(async move {
                connect_to(port, "app", "app", Some("shop")).await
            }));
        }
        for h in handles {
            let c = h
                .await
                .expect("task")
                .unwrap_or_else(|err| panic!("connection in chunk {chunk} failed: {err}"));
            conns.push(c);
        }
    }
    assert_eq!(conns.len(), 2000);
    let extra = connect_to(port, "app", "app", Some("shop")).await;
    match extra {
        Err(mysql_async::Error::Server(se)) => {
            assert_eq!(se.code, 1040, "{se:?}");
            assert_eq!(se.message, "Too many connections");
        }
        Err(other) => panic!("expected ERR 1040, got {other}"),
        Ok(_) => panic!("connection 2001 was accepted over a limit of 2000"),
    }
    // Every one of the 2,000 is served (over at most 64 backend connections).
    let mut handles = Vec::new();
    for mut c in conns {
        handles.push(tokio::spawn(async move {
            let v: Option<i64> = c
                .query_first("SELECT COUNT(*) FROM items WHERE id <= 3")
                .await?;
            c.disconnect().await?;
            Ok::<_, mysql_async::Error>(v)
        }));
    }
    for h in handles {
        assert_eq!(
            h.await.expect("task").expect("query on a held connection"),
            Some(3)
        );
    }
    // Closed cleanly: new clients are accepted again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect_to(port, "app", "app", Some("shop")).await {
            Ok(c) => {
                c.disconnect().await.expect("quit");
                break;
            }
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("slots were not released: {err}"),
        }
    }
}

#[tokio::test]
async fn idle_clients_and_stalled_handshakes_are_disconnected() {
    let e = env();
    let proxy = Proxy::start(
        &e.cluster,
        "idle_timeout_s = 1\nhandshake_timeout_ms = 500\n",
        &config_rest(),
    )
    .expect("proxy starts");
    // A client that never answers the handshake is closed after handshake_timeout_ms.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).expect("tcp");
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = Vec::new();
    let started = Instant::now();
    let _ = std::io::Read::read_to_end(&mut stalled, &mut buf);
    assert!(
        buf.len() > 4 && buf[4] == 10,
        "a v10 handshake came first: {buf:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stalled handshake was not closed"
    );
    let mut c = connect_to(proxy.port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    c.query_drop("SELECT 1").await.expect("works while active");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        c.query_drop("SELECT 1").await.is_err(),
        "an idle connection outlived idle_timeout_s"
    );
}

#[tokio::test]
async fn sigterm_lets_running_statements_finish_and_refuses_new_clients() {
    let e = env();
    let (_certs, _ca, cert, key) = crate::env::make_cert().expect("cert");
    let mut proxy = Proxy::start(
        &e.cluster,
        &format!("{}shutdown_grace_ms = 10000\n", server_toml(&cert, &key)),
        &config_rest(),
    )
    .expect("proxy starts");
    let port = proxy.port;
    let mut c = connect_to(port, "app", "app", Some("shop"))
        .await
        .expect("connects");
    let running = tokio::spawn(async move {
        let v: Option<i64> = c.query_first("SELECT SLEEP(2) + 5").await?;
        Ok::<_, mysql_async::Error>(v)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = proxy.pid().expect("running") as i32;
    // SAFETY: plain kill(2) on our child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        connect_to(port, "app", "app", Some("shop")).await.is_err(),
        "a new client was accepted during shutdown"
    );
    assert_eq!(
        running
            .await
            .expect("task")
            .expect("the running statement finished"),
        Some(5)
    );
    assert!(
        proxy.signal_and_wait(0, Duration::from_secs(15)),
        "myshard did not exit after SIGTERM"
    );
}
