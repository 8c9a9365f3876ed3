//! The plan cache gives every statement the plan the planner gives it.
//!
//! Statement shapes over every kind of placement (hash, list, lookup, range, split, broadcast,
//! unsharded) are planned with many values, through a cache and fresh; the two plans must be
//! equal, whatever the values (keys that place elsewhere, keys no rule holds, numbers that are
//! no integer key, strings where numbers were). Shapes whose plan depends on their values in
//! ways the cache cannot re-derive must never be kept.

use myshard_config::Config;
use myshard_router::{CountingIds, Router};
use myshard_sql_rewrite::plancache::{plan_cached, PlanCache};
use myshard_sql_rewrite::staged::{plan_tree, Facts, Mode, Plan};
use std::path::Path;
use std::sync::Arc;

fn router() -> Router {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/shardmap.toml");
    Router::new(Arc::new(
        Config::load(&path).expect("golden shard map is valid"),
    ))
}

fn facts<'a>(schema: &'a str, allowed: Option<&'a [String]>) -> Facts<'a> {
    Facts {
        schema: Some(schema),
        allowed,
        mode: Mode::default(),
    }
}

/// Plans `sql` through `cache` and fresh, and requires the same plan.
fn same_plan(cache: &PlanCache, router: &Router, facts: &Facts, sql: &str) -> Plan {
    let cached = plan_cached(cache, router, facts, sql, &mut CountingIds(1000));
    let fresh = plan_tree(router, facts, sql, &mut CountingIds(1000));
    assert_eq!(cached, fresh, "{sql}");
    cached
}

/// Values a template's `{k}` takes: keys of every shard, keys nothing places, non-keys.
const KEYS: &[&str] = &[
    "1",
    "2",
    "3",
    "17",
    "1000",
    "5.0",
    "5.5",
    "1e3",
    "0x1F",
    "0",
    "99999999999",
    "'7'",
    "'eu'",
    "'us'",
    "'apac'",
    "'EU '",
    "'nowhere'",
    "'a''b'",
    "'x\\\\y'",
    "'😀'",
    "''",
    "'gold'",
    "'silver'",
    "'acme'",
    "1001",
    "'t1'",
    "NULL",
];

/// Shapes the cache keeps (the `bool`) or must not, in schema `shop` or `plain`.
const SHAPES: &[(&str, &str, bool)] = &[
    ("shop", "SELECT name FROM customers WHERE id = {k}", true),
    ("shop", "SELECT name FROM customers WHERE {k} = id", true),
    (
        "shop",
        "SELECT c.name FROM customers c WHERE c.id = {k} AND c.name <> 'z'",
        true,
    ),
    (
        "shop",
        "SELECT * FROM customers WHERE id = {k} AND (name = 'a' OR name = 'b') LIMIT 3",
        true,
    ),
    (
        "shop",
        "SELECT total FROM orders WHERE customer_id = {k} ORDER BY id DESC LIMIT 5",
        true,
    ),
    ("shop", "SELECT * FROM stores WHERE region = {k}", true),
    ("shop", "SELECT * FROM members WHERE level = {k}", true),
    (
        "shop",
        "SELECT * FROM tenant_events WHERE tenant_id = {k}",
        true,
    ),
    ("shop", "SELECT * FROM logs WHERE id = {k}", true),
    (
        "shop",
        "UPDATE customers SET name = 'n' WHERE id = {k}",
        true,
    ),
    (
        "shop",
        "UPDATE orders SET total = total + 1 WHERE customer_id = {k} AND id = 4",
        true,
    ),
    ("shop", "DELETE FROM orders WHERE customer_id = {k}", true),
    ("shop", "SELECT * FROM countries WHERE code = {k}", true),
    ("plain", "SELECT * FROM t WHERE id = {k}", true),
    ("plain", "UPDATE t SET v = {k} WHERE id = 3", true),
    ("plain", "INSERT INTO t (id) VALUES ({k})", true),
    // Values decide more than one target, or the plan is not one verbatim statement.
    (
        "shop",
        "SELECT name FROM customers WHERE id = {k} AND id = 2",
        false,
    ),
    (
        "shop",
        "SELECT name FROM customers WHERE id = {k} OR id = 2",
        false,
    ),
    (
        "shop",
        "SELECT name FROM customers WHERE id IN ({k}, 2)",
        false,
    ),
    (
        "shop",
        "SELECT name FROM customers WHERE id = {k} AND id > 0",
        false,
    ),
    (
        "shop",
        "SELECT name FROM customers WHERE id BETWEEN {k} AND 10",
        false,
    ),
    ("shop", "SELECT name FROM customers WHERE id = -{k}", false),
    ("shop", "UPDATE customers SET id = 3 WHERE id = {k}", false),
    (
        "shop",
        "INSERT INTO customers (id, name) VALUES ({k}, 'n')",
        false,
    ),
    ("shop", "SELECT * FROM t_order WHERE user_id = {k}", false),
    ("shop", "SELECT * FROM shop.customers WHERE id = {k}", false),
    (
        "shop",
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = {k}",
        false,
    ),
    (
        "shop",
        "SELECT name FROM customers WHERE id = {k} AND name IN (SELECT name FROM countries)",
        false,
    ),
    (
        "shop",
        "SELECT name FROM customers WHERE id = {k} UNION SELECT 'x'",
        false,
    ),
    (
        "shop",
        "/* myshard:shard=s2 */ SELECT name FROM customers WHERE id = {k}",
        false,
    ),
];

#[test]
fn cached_plans_equal_fresh_plans_for_every_value() {
    let router = router();
    for (schema, shape, kept) in SHAPES {
        let cache = PlanCache::new(100, false);
        let facts = facts(schema, None);
        for k in KEYS {
            same_plan(&cache, &router, &facts, &shape.replace("{k}", k));
        }
        // Again: now every value that plans to one target is a hit (others place several, or
        // none, or write a shape of their own: `id = NULL`).
        let before = cache.stats().hits;
        let mut runs = 0;
        for k in KEYS {
            match same_plan(&cache, &router, &facts, &shape.replace("{k}", k)) {
                Plan::Run(p) if p.1.queries.len() == 1 => runs += 1,
                _ => {}
            }
        }
        let stats = cache.stats();
        if *kept {
            assert!(runs > 0, "{shape}");
            assert_eq!(
                stats.hits - before,
                runs,
                "{shape}: {stats:?} (every value that runs is a hit)"
            );
        } else {
            assert_eq!(stats.size, 0, "{shape} must not be kept");
            assert_eq!(stats.hits, 0, "{shape}");
        }
    }
}

#[test]
fn a_hit_places_its_own_key() {
    let router = router();
    let cache = PlanCache::new(100, false);
    let facts = facts("shop", None);
    let mut shards = std::collections::BTreeSet::new();
    for id in 1..200 {
        let sql = format!("SELECT name FROM customers WHERE id = {id}");
        if let Plan::Run(p) = same_plan(&cache, &router, &facts, &sql) {
            assert_eq!(p.1.queries.len(), 1);
            assert_eq!(p.1.queries[0].sql, sql, "the client's text, byte for byte");
            shards.insert(p.1.queries[0].shard.clone());
        }
    }
    assert_eq!(shards.len(), 4, "keys spread over every shard: {shards:?}");
    assert_eq!(cache.stats().misses, 1);
    assert_eq!(cache.stats().hits, 198);
}

#[test]
fn plans_are_kept_per_schema_user_and_mode() {
    let router = router();
    let cache = PlanCache::new(100, false);
    let sql = "SELECT * FROM t WHERE id = 1";
    let only_plain = ["plain".to_string()];
    let only_shop = ["shop".to_string()];
    let primary = Facts {
        mode: Mode {
            on_primary: true,
            in_copy: false,
        },
        ..facts("plain", None)
    };
    for f in [
        facts("plain", None),
        facts("plain", Some(&only_plain)),
        facts("plain", Some(&only_shop)),
        facts("shop", None),
        primary,
    ] {
        same_plan(&cache, &router, &f, sql);
        same_plan(&cache, &router, &f, sql);
    }
}

#[test]
fn the_cache_stays_bounded_and_drops_the_least_recently_used() {
    let router = router();
    let cache = PlanCache::new(4, false);
    let facts = facts("plain", None);
    let shape = |n: usize| format!("SELECT c{n} FROM t WHERE id = 1");
    for n in 0..4 {
        same_plan(&cache, &router, &facts, &shape(n));
    }
    // Shape 0 is used again; the next new shape pushes out another one.
    same_plan(&cache, &router, &facts, &shape(0));
    same_plan(&cache, &router, &facts, &shape(4));
    let stats = cache.stats();
    assert_eq!(stats.size, 4);
    assert_eq!(stats.evictions, 1);
    let hits = stats.hits;
    same_plan(&cache, &router, &facts, &shape(0));
    assert_eq!(
        cache.stats().hits,
        hits + 1,
        "the recently used shape stayed"
    );
}

#[test]
fn verify_mode_plans_every_hit_again() {
    let router = router();
    let cache = PlanCache::new(100, true);
    let facts = facts("shop", None);
    for id in 1..20 {
        let sql = format!("SELECT name FROM customers WHERE id = {id}");
        assert!(matches!(
            plan_cached(&cache, &router, &facts, &sql, &mut CountingIds(1)),
            Plan::Run(_)
        ));
    }
    assert_eq!(cache.stats().hits, 18);
}
