//! Parse + route + rewrite time per statement class.

use criterion::{criterion_group, criterion_main, Criterion};
use myshard_benches::shard_map;
use myshard_router::{CountingIds, Router};
use std::hint::black_box;

fn classes(c: &mut Criterion) {
    let router = Router::new(shard_map());
    let multi: Vec<String> = (1..=100).map(|i| format!("({i}, {i}, 1.5)")).collect();
    let multi = format!(
        "INSERT INTO orders (id, customer_id, total) VALUES {}",
        multi.join(", ")
    );
    let cases: [(&str, &str, &str); 6] = [
        (
            "unsharded_passthrough",
            "plain",
            "SELECT c FROM sbtest1 WHERE id = 5000",
        ),
        (
            "point_select",
            "shop",
            "SELECT * FROM orders WHERE customer_id = 42",
        ),
        (
            "point_insert",
            "shop",
            "INSERT INTO orders (id, customer_id, total) VALUES (1, 42, 9.5)",
        ),
        ("multi_row_insert_100", "shop", multi.as_str()),
        (
            "scatter_order_by_limit",
            "shop",
            "SELECT id, total FROM orders ORDER BY total DESC LIMIT 100",
        ),
        (
            "group_by_aggregate",
            "shop",
            "SELECT status, COUNT(*), AVG(total) FROM orders GROUP BY status",
        ),
    ];
    let mut g = c.benchmark_group("parse_route_rewrite");
    for (name, schema, sql) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut ids = CountingIds(0);
                // The server's one planner.
                black_box(myshard_sql_rewrite::planner::plan(
                    &router,
                    Some(schema),
                    black_box(sql),
                    &mut ids,
                ))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = classes
}
criterion_main!(benches);
