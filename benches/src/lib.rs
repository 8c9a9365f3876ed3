//! Shared fixtures for myshard's benchmarks: a shard map like the golden tests' and row
//! generators for the merge operators.

use myshard_config::Config;
use myshard_merger::{Cell, Row};
use std::sync::Arc;

/// A shard map with 4 shards, a hash-sharded `orders` table and an unsharded schema.
pub fn shard_map() -> Arc<Config> {
    let toml = r#"
        [[shards]]
        name = "s0"
        primary = "127.0.0.1:1"
        [[shards]]
        name = "s1"
        primary = "127.0.0.1:2"
        [[shards]]
        name = "s2"
        primary = "127.0.0.1:3"
        [[shards]]
        name = "s3"
        primary = "127.0.0.1:4"
        [[schemas]]
        name = "plain"
        default_shard = "s0"
        [[schemas]]
        name = "shop"
        default_shard = "s0"
        [[schemas.rules]]
        name = "by_customer"
        kind = "hash"
        shards = ["s0", "s1", "s2", "s3"]
        [[schemas.tables]]
        name = "orders"
        rule = "by_customer"
        column = "customer_id"
    "#;
    match Config::from_toml_str(toml) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("benchmark shard map is invalid: {e}"),
    }
}

/// `shards` sorted runs of `rows_per_shard` rows: [int key, text value, weight, int value].
pub fn sorted_shards(shards: usize, rows_per_shard: usize) -> Vec<Vec<Row>> {
    (0..shards)
        .map(|s| {
            (0..rows_per_shard)
                .map(|i| {
                    let key = (i * shards + s) as i64;
                    let text = format!("name{}", key % 1000);
                    let cell = |v: String| -> Cell { Some(v.into_bytes()) };
                    vec![
                        cell(key.to_string()),
                        cell(text.clone()),
                        cell(text),
                        cell((key % 97).to_string()),
                    ]
                })
                .collect()
        })
        .collect()
}
