//! The wire protocol at the byte level: malformed packets, unknown commands, and the
//! commands drivers rarely send. Every case ends with an ERR packet or a clean close, and
//! other clients keep working.

use crate::env::{connect, env};
use mysql_async::prelude::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A minimal client that speaks raw packets.
struct Raw {
    s: TcpStream,
    seq: u8,
}

impl Raw {
    fn connect() -> Raw {
        let s = TcpStream::connect(("127.0.0.1", env().proxy.port)).expect("tcp connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw { s, seq: 0 }
    }

    fn read(&mut self) -> Option<Vec<u8>> {
        let mut h = [0u8; 4];
        self.s.read_exact(&mut h).ok()?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        self.seq = h[3].wrapping_add(1);
        let mut body = vec![0u8; len];
        self.s.read_exact(&mut body).ok()?;
        Some(body)
    }

    fn write(&mut self, payload: &[u8]) {
        let mut frame = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        frame.push(self.seq);
        frame.extend_from_slice(payload);
        self.s.write_all(&frame).expect("write");
        self.seq = self.seq.wrapping_add(1);
    }

    fn command(&mut self, payload: &[u8]) -> Vec<u8> {
        self.seq = 0;
        self.write(payload);
        self.read().expect("a reply")
    }

    /// Logs in as `nat` (mysql_native_password) with the handshake's nonce.
    fn login(db: Option<&str>) -> Raw {
        let mut raw = Raw::connect();
        let hs = raw.read().expect("handshake");
        assert_eq!(hs[0], 10, "protocol v10");
        let ver_end = hs.iter().position(|&b| b == 0).expect("version");
        let version = String::from_utf8_lossy(&hs[1..ver_end]).into_owned();
        assert!(
            version.starts_with("8."),
            "MySQL-8-compatible version, got {version}"
        );
        let p = ver_end + 1 + 4;
        let mut nonce = hs[p..p + 8].to_vec();
        let p2 = p + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
        nonce.extend_from_slice(&hs[p2..p2 + 12]);
        let scramble = mysql_common::scramble::scramble_native(&nonce, b"nat").expect("scramble");
        let caps: u32 = 0x0000_0200
            | 0x0000_8000
            | 0x0008_0000
            | 0x0100_0000
            | 0x0002_0000
            | if db.is_some() { 0x8 } else { 0 };
        let mut resp = caps.to_le_bytes().to_vec();
        resp.extend_from_slice(&(16u32 << 20).to_le_bytes());
        resp.push(45);
        resp.extend_from_slice(&[0u8; 23]);
        resp.extend_from_slice(b"nat\0");
        resp.push(20);
        resp.extend_from_slice(&scramble);
        if let Some(db) = db {
            resp.extend_from_slice(db.as_bytes());
            resp.push(0);
        }
        resp.extend_from_slice(b"mysql_native_password\0");
        raw.write(&resp);
        let ok = raw.read().expect("auth reply");
        assert_eq!(ok[0], 0, "login OK, got {ok:?}");
        raw
    }
}

fn err_code(p: &[u8]) -> u16 {
    assert_eq!(p[0], 0xFF, "expected an ERR packet, got {p:?}");
    u16::from_le_bytes([p[1], p[2]])
}

async fn others_still_work() {
    let mut c = connect("app", "app", Some("shop"))
        .await
        .expect("another client connects");
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM items")
        .await
        .expect("and queries");
    assert!(n.unwrap_or(0) >= 3);
}

#[tokio::test]
async fn unknown_command_is_1047_and_the_connection_stays_usable() {
    let mut raw = Raw::login(Some("shop"));
    assert_eq!(err_code(&raw.command(&[0xEE, 1, 2, 3])), 1047);
    assert_eq!(raw.command(&[0x0E])[0], 0x00, "COM_PING after the error");
    let reply = raw.command(b"\x03SELECT 7");
    assert_eq!(reply, vec![1], "one column");
}

#[tokio::test]
async fn set_option_init_db_and_field_list() {
    let mut raw = Raw::login(None);
    assert_eq!(raw.command(b"\x02shop")[0], 0x00, "COM_INIT_DB");
    assert_eq!(err_code(&raw.command(b"\x02nosuch")), 1049);
    // Multi-statements are off until COM_SET_OPTION turns them on.
    assert_eq!(err_code(&raw.command(b"\x03SELECT 1; SELECT 2")), 1064);
    assert_eq!(raw.command(&[0x1b, 0, 0])[0], 0x00, "COM_SET_OPTION on");
    assert_eq!(raw.command(b"\x03DO 1; DO 2")[0], 0x00);
    let _second = raw.read().expect("second OK of the multi-statement");
    // COM_FIELD_LIST: one definition per column, then EOF.
    let first = raw.command(b"\x04items\0");
    assert_eq!(first[..4], [3, b'd', b'e', b'f'], "a column definition");
    let mut defs = 1;
    loop {
        let p = raw.read().expect("more definitions");
        if p[0] == 0xFE {
            break;
        }
        defs += 1;
    }
    assert_eq!(defs, 5);
    assert_eq!(err_code(&raw.command(b"\x04nosuch\0")), 1146);
}

#[tokio::test]
async fn truncated_header_gets_a_clean_close() {
    let mut raw = Raw::connect();
    raw.read().expect("handshake");
    raw.s.write_all(&[5, 0]).expect("write");
    raw.s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    let _ = raw.s.read_to_end(&mut rest);
    assert!(rest.is_empty() || rest[4] == 0xFF, "{rest:?}");
    others_still_work().await;
}

#[tokio::test]
async fn wrong_sequence_id_gets_an_err_packet() {
    let mut raw = Raw::login(Some("shop"));
    raw.seq = 9;
    raw.write(b"\x03SELECT 1");
    let p = raw.read().expect("an ERR packet");
    assert_eq!(err_code(&p), 1156);
    others_still_work().await;
}

#[tokio::test]
async fn absurd_length_gets_an_err_or_close() {
    let mut raw = Raw::login(Some("shop"));
    // Claims a 16 MiB - 1 chunk followed by more chunks beyond max_allowed_packet (64 MiB),
    // but sends only a few bytes before closing.
    raw.s
        .write_all(&[0xFF, 0xFF, 0xFF, 0, 3, b'S'])
        .expect("write");
    raw.s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    let _ = raw.s.read_to_end(&mut rest);
    assert!(rest.is_empty() || rest[4] == 0xFF, "{rest:?}");
    others_still_work().await;
}

#[tokio::test]
async fn oversized_packet_is_1153() {
    let mut raw = Raw::login(Some("shop"));
    // Five full chunks: 80 MiB announced, more than max_allowed_packet; the error comes as soon
    // as the limit is crossed, before the data is all read.
    let chunk = vec![b'x'; 0xFF_FFFF];
    for seq in 0u8..5 {
        let mut frame = vec![0xFF, 0xFF, 0xFF, seq];
        frame.extend_from_slice(&chunk);
        if raw.s.write_all(&frame).is_err() {
            break;
        }
    }
    let p = raw.read();
    if let Some(p) = p {
        assert_eq!(err_code(&p), 1153);
    }
    others_still_work().await;
}

#[tokio::test]
async fn garbage_instead_of_handshake_response_is_refused() {
    let mut raw = Raw::connect();
    raw.read().expect("handshake");
    raw.seq = 1;
    raw.write(&[0x42; 64]);
    let p = raw.read();
    if let Some(p) = p {
        assert_eq!(p[0], 0xFF, "{p:?}");
    }
    others_still_work().await;
}

#[tokio::test]
async fn garbage_after_login_is_an_error_not_a_crash() {
    let mut raw = Raw::login(Some("shop"));
    let p = raw.command(&[0x03, 0xFF, 0xFE, 0x00, 0x80]);
    assert_eq!(p[0], 0xFF);
    assert_eq!(raw.command(&[0x0E])[0], 0x00, "still usable");
    let p = raw.command(&[]);
    assert_eq!(err_code(&p), 1047);
    others_still_work().await;
}
