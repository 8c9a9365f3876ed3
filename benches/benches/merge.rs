//! Merge-operator throughput (rows/s) at 2, 4, 16 and 64 shards: the streaming k-way ORDER BY
//! merge (what sorted cross-shard reads use), the buffered sort (UNION, DISTINCT), and GROUP BY
//! aggregation of partial results. Input rows are built outside the timed part.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use myshard_benches::sorted_shards;
use myshard_merger::{AggFunc, Aggregate, Kind, Row, SelectMerge, SortKey};
use std::hint::black_box;

const KINDS: [Kind; 4] = [Kind::Int, Kind::Text, Kind::Binary, Kind::Int];

fn spec() -> SelectMerge {
    SelectMerge {
        group_by: None,
        aggregates: vec![],
        distinct: false,
        order_by: vec![],
        offset: 0,
        limit: None,
        output: vec![0, 1],
        weights: vec![(1, 2)],
        computed: vec![],
        having: None,
        count_distinct: vec![],
        group_concat: None,
        presorted: false,
        rollup: false,
    }
}

/// Times `merge` over 64,000 rows split across 2, 4, 16 and 64 sorted shards (the input is
/// built outside the timed part).
fn over_shards(c: &mut Criterion, group: &str, merge: impl Fn(Vec<Vec<Row>>) -> Vec<Row>) {
    over_shards_sorted_by(c, group, None, merge)
}

/// [`over_shards`], with each shard's rows sorted by column `by` first (as shards that sorted
/// their groups send them).
fn over_shards_sorted_by(
    c: &mut Criterion,
    group: &str,
    by: Option<usize>,
    merge: impl Fn(Vec<Vec<Row>>) -> Vec<Row>,
) {
    let mut g = c.benchmark_group(group);
    let total = 64_000;
    for shards in [2usize, 4, 16, 64] {
        let mut input = sorted_shards(shards, total / shards);
        if let Some(col) = by {
            for rows in &mut input {
                rows.sort_by(|a, b| a[col].cmp(&b[col]));
            }
        }
        g.throughput(Throughput::Elements(total as u64));
        g.bench_with_input(BenchmarkId::from_parameter(shards), &input, |b, input| {
            b.iter_batched(
                || input.clone(),
                |rows| black_box(merge(rows)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn merge_sort(c: &mut Criterion) {
    let sorted = SelectMerge {
        order_by: vec![SortKey {
            col: 0,
            desc: false,
        }],
        presorted: true,
        rollup: false,
        ..spec()
    };
    over_shards(c, "merge_sort_streaming", |rows| {
        myshard_merger::kway::merge_sorted(&sorted, &KINDS, rows)
            .and_then(Result::ok)
            .unwrap_or_default()
    });
    over_shards(c, "merge_sort_buffered", |rows| {
        sorted.merge(&KINDS, rows, usize::MAX).unwrap_or_default()
    });
}

fn aggregate(c: &mut Criterion) {
    let s = SelectMerge {
        group_by: Some(vec![1]),
        aggregates: vec![
            Aggregate {
                func: AggFunc::Sum,
                col: 3,
                count_col: None,
            },
            Aggregate {
                func: AggFunc::Max,
                col: 0,
                count_col: None,
            },
        ],
        output: vec![1, 3, 0],
        ..spec()
    };
    over_shards(c, "group_by_aggregate", |rows| {
        s.merge(&KINDS, rows, usize::MAX).unwrap_or_default()
    });
    // Ordered aggregation: the shards sorted their groups (by the text key's weight).
    let streaming = SelectMerge {
        presorted: true,
        rollup: false,
        ..s.clone()
    };
    over_shards_sorted_by(c, "group_by_aggregate_streaming", Some(2), |rows| {
        myshard_merger::kway::merge_sorted(&streaming, &KINDS, rows)
            .and_then(Result::ok)
            .unwrap_or_default()
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2));
    targets = merge_sort, aggregate
}
criterion_main!(benches);
