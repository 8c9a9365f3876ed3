//! Properties of the merge operators, for random rows and keys including NULLs and collation
//! ties (`'a'` and `'A'` share a weight, as under a `_ci` collation).

use myshard_merger::value::SortValue;
use myshard_merger::{
    AggFunc, Aggregate, Cell, CountDistinct, GroupConcat, Kind, Row, SelectMerge, SortKey,
};
use proptest::prelude::*;
use std::cmp::Ordering;

fn base() -> SelectMerge {
    SelectMerge {
        group_by: None,
        aggregates: vec![],
        distinct: false,
        order_by: vec![],
        offset: 0,
        limit: None,
        output: vec![],
        weights: vec![],
        computed: vec![],
        having: None,
        count_distinct: vec![],
        group_concat: None,
        presorted: false,
        rollup: false,
    }
}

/// A row: [int key (nullable), text key, weight of the text key, int value (nullable)].
fn row(k: Option<i64>, t: &str, v: Option<i64>) -> Row {
    vec![
        k.map(|k| k.to_string().into_bytes()),
        Some(t.as_bytes().to_vec()),
        Some(t.to_lowercase().into_bytes()),
        v.map(|v| v.to_string().into_bytes()),
    ]
}

const KINDS: [Kind; 4] = [Kind::Int, Kind::Text, Kind::Binary, Kind::Int];

fn rows_strategy() -> impl Strategy<Value = Vec<(Option<i64>, String, Option<i64>)>> {
    prop::collection::vec(
        (
            prop::option::of(-5i64..5),
            prop::sample::select(vec!["a", "A", "b", "B", "c", "ab", "AB"])
                .prop_map(str::to_string),
            prop::option::of(-1000i64..1000),
        ),
        0..60,
    )
}

fn cmp_key(a: &Row, b: &Row) -> Ordering {
    let int = |c: &Cell| {
        c.as_ref()
            .map(|v| String::from_utf8_lossy(v).parse::<i64>().unwrap_or(0))
    };
    int(&a[0]).cmp(&int(&b[0])).then_with(|| a[2].cmp(&b[2]))
}

proptest! {
    #[test]
    fn merging_sorted_shards_equals_sorting_the_concatenation(data in rows_strategy(), shards in 1usize..6, desc in any::<bool>()) {
        let all: Vec<Row> = data.iter().map(|(k, t, v)| row(*k, t, *v)).collect();
        let mut per_shard: Vec<Vec<Row>> = vec![Vec::new(); shards];
        for (i, r) in all.iter().enumerate() {
            per_shard[i % shards].push(r.clone());
        }
        for s in &mut per_shard {
            s.sort_by(|a, b| if desc { cmp_key(b, a) } else { cmp_key(a, b) });
        }
        let spec = SelectMerge {
            order_by: vec![SortKey { col: 0, desc }, SortKey { col: 1, desc }],
            weights: vec![(1, 2)],
            output: vec![0, 2],
            ..base()
        };
        let merged = spec.merge(&KINDS, per_shard.clone(), usize::MAX).expect("merge");
        let mut expected = all.clone();
        expected.sort_by(|a, b| if desc { cmp_key(b, a) } else { cmp_key(a, b) });
        let expected: Vec<Row> = expected.into_iter().map(|r| vec![r[0].clone(), r[2].clone()]).collect();
        prop_assert_eq!(&merged, &expected);
        // The streaming k-way merge gives the same rows, and the same window of them.
        let presorted = SelectMerge { presorted: true, ..spec.clone() };
        let streamed = myshard_merger::kway::merge_sorted(&presorted, &KINDS, per_shard.clone())
            .expect("streamable")
            .expect("merge");
        prop_assert_eq!(&streamed, &expected);
        let (offset, limit) = (data.len() as u64 / 3, data.len() as u64 / 4);
        let windowed = SelectMerge { offset, limit: Some(limit), ..presorted };
        let streamed = myshard_merger::kway::merge_sorted(&windowed, &KINDS, per_shard)
            .expect("streamable")
            .expect("merge");
        let window: Vec<Row> = expected.into_iter().skip(offset as usize).take(limit as usize).collect();
        prop_assert_eq!(streamed, window);
    }

    #[test]
    fn aggregating_per_shard_then_merging_equals_aggregating_everything(data in rows_strategy(), shards in 1usize..6) {
        // Group by the text key (collation weight), aggregate the value.
        let all: Vec<Row> = data.iter().map(|(k, t, v)| row(*k, t, *v)).collect();
        let mut per_shard: Vec<Vec<Row>> = vec![Vec::new(); shards];
        for (i, r) in all.iter().enumerate() {
            per_shard[i % shards].push(r.clone());
        }
        // Reference aggregation over a set of rows: per weight, COUNT(*), SUM, MIN, MAX of v,
        // and COUNT(v) for AVG.
        fn aggregate(rows: &[Row]) -> Vec<Row> {
            /// First row, COUNT(*), SUM, MIN, MAX and COUNT of the value.
            type Group = (Row, i64, Option<i64>, Option<i64>, Option<i64>, i64);
            let mut groups: std::collections::BTreeMap<Vec<u8>, Group> = Default::default();
            for r in rows {
                let w = r[2].clone().unwrap_or_default();
                let v = r[3].as_ref().map(|b| String::from_utf8_lossy(b).parse::<i64>().unwrap_or(0));
                let e = groups.entry(w).or_insert((r.clone(), 0, None, None, None, 0));
                e.1 += 1;
                if let Some(v) = v {
                    e.2 = Some(e.2.unwrap_or(0) + v);
                    e.3 = Some(e.3.map_or(v, |m| m.min(v)));
                    e.4 = Some(e.4.map_or(v, |m| m.max(v)));
                    e.5 += 1;
                }
            }
            groups
                .into_values()
                .map(|(first, count, sum, min, max, n)| {
                    let s = |x: Option<i64>| x.map(|x| x.to_string().into_bytes());
                    vec![first[1].clone(), first[2].clone(), Some(count.to_string().into_bytes()), s(sum), s(min), s(max), s(sum), Some(n.to_string().into_bytes())]
                })
                .collect()
        }
        let partials: Vec<Vec<Row>> = per_shard.iter().map(|s| aggregate(s)).collect();
        let kinds = [Kind::Text, Kind::Binary, Kind::Int, Kind::Decimal, Kind::Int, Kind::Int, Kind::Decimal, Kind::Int];
        let spec = SelectMerge {
            group_by: Some(vec![0]),
            aggregates: vec![
                Aggregate { func: AggFunc::Count, col: 2, count_col: None },
                Aggregate { func: AggFunc::Sum, col: 3, count_col: None },
                Aggregate { func: AggFunc::Min, col: 4, count_col: None },
                Aggregate { func: AggFunc::Max, col: 5, count_col: None },
                Aggregate { func: AggFunc::Avg, col: 6, count_col: Some(7) },
            ],
            weights: vec![(0, 1)],
            order_by: vec![SortKey { col: 0, desc: false }],
            output: vec![1, 2, 3, 4, 5, 6],
            ..base()
        };
        let merged = spec.merge(&kinds, partials.clone(), usize::MAX).expect("merge");
        // Ordered aggregation: shards that sorted their groups by the key, merged as streams
        // and folded group by group, give the same rows.
        let sorted_partials: Vec<Vec<Row>> = partials
            .into_iter()
            .map(|mut rows| {
                rows.sort_by(|a, b| a[1].cmp(&b[1]));
                rows
            })
            .collect();
        let streaming = SelectMerge { presorted: true, order_by: vec![], ..spec.clone() };
        let streamed = myshard_merger::kway::merge_sorted(&streaming, &kinds, sorted_partials)
            .expect("streamable")
            .expect("merge");
        prop_assert_eq!(&streamed, &merged);
        let expected: Vec<Row> = aggregate(&all)
            .into_iter()
            .map(|r| {
                let avg = match (&r[6], r[7].as_ref().map(|n| String::from_utf8_lossy(n).parse::<u64>().unwrap_or(0))) {
                    (Some(sum), Some(n)) if n > 0 => Some(myshard_merger::value::div_decimal(sum, n, 4)),
                    _ => None,
                };
                vec![r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone(), r[5].clone(), avg]
            })
            .collect();
        prop_assert_eq!(merged, expected);
    }

    #[test]
    fn distinct_aggregates_beside_others_equal_computing_everything(data in rows_strategy(), shards in 1usize..6) {
        // SELECT k, COUNT(DISTINCT v), SUM(DISTINCT v), COUNT(*) … GROUP BY k: each shard
        // groups by (k, v) and returns [k, v, v, COUNT(*)].
        let mut per_shard: Vec<Vec<(Option<i64>, Option<i64>)>> = vec![Vec::new(); shards];
        for (i, (k, _, v)) in data.iter().enumerate() {
            per_shard[i % shards].push((*k, *v));
        }
        let cell = |x: Option<i64>| x.map(|x| x.to_string().into_bytes());
        let partials: Vec<Vec<Row>> = per_shard
            .iter()
            .map(|rows| {
                let mut groups: std::collections::BTreeMap<(Option<i64>, Option<i64>), i64> = Default::default();
                for kv in rows {
                    *groups.entry(*kv).or_default() += 1;
                }
                groups
                    .into_iter()
                    .map(|((k, v), n)| vec![cell(k), cell(v), cell(v), cell(Some(n))])
                    .collect()
            })
            .collect();
        let spec = SelectMerge {
            group_by: Some(vec![0]),
            aggregates: vec![
                Aggregate { func: AggFunc::Count, col: 1, count_col: None },
                Aggregate { func: AggFunc::Sum, col: 2, count_col: None },
                Aggregate { func: AggFunc::Count, col: 3, count_col: None },
            ],
            count_distinct: vec![CountDistinct { values: vec![1], counts: vec![1], sums: vec![2], avg_counts: vec![] }],
            order_by: vec![SortKey { col: 0, desc: false }],
            output: vec![0, 1, 2, 3],
            ..base()
        };
        let kinds = [Kind::Int; 4];
        let merged = spec.merge(&kinds, partials, usize::MAX).expect("merge");
        let mut groups: std::collections::BTreeMap<Option<i64>, (std::collections::BTreeSet<i64>, i64)> = Default::default();
        for (k, _, v) in &data {
            let g = groups.entry(*k).or_default();
            g.1 += 1;
            if let Some(v) = v {
                g.0.insert(*v);
            }
        }
        let expected: Vec<Row> = groups
            .into_iter()
            .map(|(k, (set, n))| {
                let sum = (!set.is_empty()).then(|| set.iter().sum::<i64>());
                vec![cell(k), cell(Some(set.len() as i64)), cell(sum), cell(Some(n))]
            })
            .collect();
        prop_assert_eq!(merged, expected);
    }

    #[test]
    fn distinct_aggregates_over_several_lists_equal_computing_everything(data in rows_strategy(), shards in 1usize..6) {
        // SELECT k, COUNT(DISTINCT v), COUNT(DISTINCT t), COUNT(DISTINCT v, t),
        // SUM(DISTINCT v), COUNT(*) … GROUP BY k: each shard groups by (k, v, t by collation)
        // and returns [k, v, t, v, v, COUNT(*), t, weight(t), weight(t)].
        type Key = (Option<i64>, Option<i64>, String);
        type Input<'a> = (Option<i64>, &'a str, Option<i64>);
        let mut per_shard: Vec<Vec<Input>> = vec![Vec::new(); shards];
        for (i, (k, t, v)) in data.iter().enumerate() {
            per_shard[i % shards].push((*k, t.as_str(), *v));
        }
        let cell = |x: Option<i64>| x.map(|x| x.to_string().into_bytes());
        let text = |t: &str| Some(t.as_bytes().to_vec());
        let partials: Vec<Vec<Row>> = per_shard
            .iter()
            .map(|rows| {
                let mut groups: std::collections::BTreeMap<Key, (String, i64)> = Default::default();
                for (k, t, v) in rows {
                    let g = groups.entry((*k, *v, t.to_lowercase())).or_insert((t.to_string(), 0));
                    g.1 += 1;
                }
                groups
                    .into_iter()
                    .map(|((k, v, w), (t, n))| {
                        vec![cell(k), cell(v), text(&t), cell(v), cell(v), cell(Some(n)), text(&t), text(&w), text(&w)]
                    })
                    .collect()
            })
            .collect();
        let count = |col| Aggregate { func: AggFunc::Count, col, count_col: None };
        let spec = SelectMerge {
            group_by: Some(vec![0]),
            aggregates: vec![
                count(1),
                count(2),
                count(3),
                Aggregate { func: AggFunc::Sum, col: 4, count_col: None },
                count(5),
            ],
            count_distinct: vec![
                CountDistinct { values: vec![1], counts: vec![1], sums: vec![4], avg_counts: vec![] },
                CountDistinct { values: vec![2], counts: vec![2], sums: vec![], avg_counts: vec![] },
                CountDistinct { values: vec![3, 6], counts: vec![3], sums: vec![], avg_counts: vec![] },
            ],
            weights: vec![(2, 7), (6, 8)],
            order_by: vec![SortKey { col: 0, desc: false }],
            output: vec![0, 1, 2, 3, 4, 5],
            ..base()
        };
        let kinds = [Kind::Int, Kind::Int, Kind::Text, Kind::Int, Kind::Int, Kind::Int, Kind::Text, Kind::Binary, Kind::Binary];
        let merged = spec.merge(&kinds, partials, usize::MAX).expect("merge");
        type Sets = (
            std::collections::BTreeSet<i64>,
            std::collections::BTreeSet<String>,
            std::collections::BTreeSet<(i64, String)>,
            i64,
        );
        let mut groups: std::collections::BTreeMap<Option<i64>, Sets> = Default::default();
        for (k, t, v) in &data {
            let g = groups.entry(*k).or_default();
            g.3 += 1;
            g.1.insert(t.to_lowercase());
            if let Some(v) = v {
                g.0.insert(*v);
                g.2.insert((*v, t.to_lowercase()));
            }
        }
        let expected: Vec<Row> = groups
            .into_iter()
            .map(|(k, (vs, ts, pairs, n))| {
                let sum = (!vs.is_empty()).then(|| vs.iter().sum::<i64>());
                vec![
                    cell(k),
                    cell(Some(vs.len() as i64)),
                    cell(Some(ts.len() as i64)),
                    cell(Some(pairs.len() as i64)),
                    cell(sum),
                    cell(Some(n)),
                ]
            })
            .collect();
        prop_assert_eq!(merged, expected);
    }

    #[test]
    fn group_concat_from_shard_pieces_equals_concatenating_everything(data in rows_strategy(), shards in 1usize..6, distinct in any::<bool>()) {
        // SELECT k, GROUP_CONCAT([DISTINCT] t ORDER BY v SEPARATOR '|') … GROUP BY k. Each shard
        // groups by (k, t, v) (t by collation) and returns [k, piece, t, weight(t), v, max_len].
        type Key = (Option<i64>, String, Option<i64>);
        let mut per_shard: Vec<Vec<&Key>> = vec![Vec::new(); shards];
        for (i, r) in data.iter().enumerate() {
            per_shard[i % shards].push(r);
        }
        let cell = |x: Option<i64>| x.map(|x| x.to_string().into_bytes());
        let partials: Vec<Vec<Row>> = per_shard
            .iter()
            .map(|rows| {
                let mut groups: std::collections::BTreeMap<Key, (String, Vec<String>)> = Default::default();
                for (k, t, v) in rows.iter().copied() {
                    let g = groups.entry((*k, t.to_lowercase(), *v)).or_insert((t.clone(), Vec::new()));
                    g.1.push(t.clone());
                }
                groups
                    .into_iter()
                    .map(|((k, w, v), (first, ts))| {
                        let piece = if distinct { first.clone() } else { ts.join("|") };
                        vec![cell(k), Some(piece.into_bytes()), Some(first.into_bytes()), Some(w.into_bytes()), cell(v), Some(b"1048576".to_vec())]
                    })
                    .collect()
            })
            .collect();
        let spec = SelectMerge {
            group_by: Some(vec![0]),
            aggregates: vec![Aggregate { func: AggFunc::GroupConcat, col: 1, count_col: None }],
            weights: vec![(2, 3)],
            group_concat: Some(GroupConcat {
                columns: vec![(1, b"|".to_vec())],
                values: vec![2],
                order: if distinct { vec![] } else { vec![SortKey { col: 4, desc: false }] },
                distinct,
                max_len: 5,
            }),
            order_by: vec![SortKey { col: 0, desc: false }],
            output: vec![0, 1],
            ..base()
        };
        let kinds = [Kind::Int, Kind::Text, Kind::Text, Kind::Binary, Kind::Int, Kind::Int];
        let merged: Vec<(Cell, String)> = spec
            .merge(&kinds, partials, usize::MAX)
            .expect("merge")
            .into_iter()
            .map(|r| (r[0].clone(), String::from_utf8_lossy(r[1].as_deref().unwrap_or_default()).to_lowercase()))
            .collect();
        // Reference: per group, the values ordered by v (then collation weight), or the distinct
        // weights in order; compared under the collation (case folded).
        let mut groups: std::collections::BTreeMap<Option<i64>, Vec<(Option<i64>, String)>> = Default::default();
        for (k, t, v) in &data {
            groups.entry(*k).or_default().push((*v, t.to_lowercase()));
        }
        let expected: Vec<(Cell, String)> = groups
            .into_iter()
            .map(|(k, mut vs)| {
                let joined = if distinct {
                    let set: std::collections::BTreeSet<String> = vs.into_iter().map(|(_, t)| t).collect();
                    set.into_iter().collect::<Vec<_>>().join("|")
                } else {
                    vs.sort();
                    vs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("|")
                };
                (cell(k), joined)
            })
            .collect();
        prop_assert_eq!(merged, expected);
    }

    #[test]
    fn decoded_sort_values_compare_as_cells_do(
        a in prop::option::of(prop::sample::select(vec!["0", "-1", "12", "007", "1e3", "99999999999999999999999", "-0.50", "3.25", "-12:30:00", "838:59:59", "00:00:01.5", "abc", ""])),
        b in prop::option::of(prop::sample::select(vec!["0", "-1", "12", "7", "2.5", "-99999999999999999999999", "-0.5", "3.250", "-01:00:00", "12:00:00", "abd", "ABC"])),
        kind in prop::sample::select(vec![Kind::Int, Kind::Unsigned, Kind::Decimal, Kind::Float, Kind::Time, Kind::Temporal, Kind::Binary]),
    ) {
        let ra: Row = vec![a.map(|s| s.as_bytes().to_vec())];
        let rb: Row = vec![b.map(|s| s.as_bytes().to_vec())];
        let (va, vb) = (SortValue::decode(kind, &ra, 0, 0), SortValue::decode(kind, &rb, 0, 0));
        prop_assert_eq!(va.cmp_in(&ra, &vb, &rb, kind), myshard_merger::value::cmp_cells(kind, &ra[0], &rb[0]));
    }
}
