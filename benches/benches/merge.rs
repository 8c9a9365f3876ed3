//! Merge-operator throughput (rows/s) at 2, 4, 16 and 64 shards: ORDER BY merge with LIMIT,
//! and GROUP BY aggregation of partial results.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use myshard_benches::sorted_shards;
use myshard_merger::{AggFunc, Aggregate, Kind, SelectMerge, SortKey};
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
        count_distinct: None,
        group_concat: None,
    }
}

fn merge_sort(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge_sort");
    let total = 64_000;
    for shards in [2usize, 4, 16, 64] {
        let input = sorted_shards(shards, total / shards);
        g.throughput(Throughput::Elements(total as u64));
        let s = SelectMerge {
            order_by: vec![SortKey {
                col: 0,
                desc: false,
            }],
            ..spec()
        };
        g.bench_with_input(BenchmarkId::from_parameter(shards), &input, |b, input| {
            b.iter(|| black_box(s.merge(&KINDS, input.clone(), usize::MAX)))
        });
    }
    g.finish();
}

fn aggregate(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_by_aggregate");
    let total = 64_000;
    for shards in [2usize, 4, 16, 64] {
        let input = sorted_shards(shards, total / shards);
        g.throughput(Throughput::Elements(total as u64));
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
        g.bench_with_input(BenchmarkId::from_parameter(shards), &input, |b, input| {
            b.iter(|| black_box(s.merge(&KINDS, input.clone(), usize::MAX)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2));
    targets = merge_sort, aggregate
}
criterion_main!(benches);
