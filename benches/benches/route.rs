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
    // A plan-cache hit: the shape is read off the text, its kept plan found and bound to the
    // statement's own key (the server's path for a statement of a known shape).
    let cache = myshard_sql_rewrite::plancache::PlanCache::new(1000, false);
    let mut g = c.benchmark_group("plan_cache_hit");
    for (name, schema, sql) in [
        (
            "unsharded_passthrough",
            "plain",
            "SELECT c FROM sbtest1 WHERE id = {k}",
        ),
        (
            "point_select",
            "shop",
            "SELECT * FROM orders WHERE customer_id = {k}",
        ),
    ] {
        let facts = myshard_sql_rewrite::staged::Facts {
            schema: Some(schema),
            allowed: None,
            mode: Default::default(),
        };
        let statements: Vec<String> = (0..64)
            .map(|k| sql.replace("{k}", &k.to_string()))
            .collect();
        let plan = |sql: &str| {
            myshard_sql_rewrite::plancache::plan_cached(
                &cache,
                &router,
                &facts,
                sql,
                &mut CountingIds(0),
            )
        };
        let _ = plan(&statements[0]);
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % statements.len();
                black_box(plan(black_box(&statements[i])))
            })
        });
        assert!(cache.stats().hits > 0, "{name}: the shape must be kept");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = classes
}
criterion_main!(benches);
