//! Packet encode/decode: text result rows and OK packets out, command packets in.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use myshard_proxy::protocol::command::Command;
use myshard_proxy::protocol::response::Ok as OkPacket;
use myshard_proxy::protocol::resultset::text_row_packet;
use mysql_common::value::Value;
use std::hint::black_box;

fn encode(c: &mut Criterion) {
    let row: Vec<Value> = vec![
        Value::Bytes(b"12345".to_vec()),
        Value::Bytes(b"a name of moderate length".to_vec()),
        Value::NULL,
        Value::Bytes(b"2026-11-24 00:00:00".to_vec()),
        Value::Bytes(b"1234.56".to_vec()),
    ];
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("text_row_5_columns", |b| {
        b.iter(|| black_box(text_row_packet(black_box(&row))))
    });
    let ok = OkPacket {
        affected_rows: 3,
        last_insert_id: 42,
        ..OkPacket::default()
    };
    g.bench_function("ok_packet", |b| b.iter(|| black_box(ok.encode(0))));
    g.finish();
}

fn decode(c: &mut Criterion) {
    let query = b"\x03SELECT c FROM sbtest1 WHERE id = 5000".to_vec();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("com_query", |b| {
        b.iter(|| black_box(Command::parse(black_box(&query))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(1));
    targets = encode, decode
}
criterion_main!(benches);
