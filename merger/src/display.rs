//! Readable plans: how `myshard explain`, admin `EXPLAIN ROUTE` and the golden files show a
//! [`MergeSpec`]. Columns are those of the shards' rows: `#0` is the first select item,
//! `h0` the first helper column the rewriter added (`__myshard_0`, or a `WEIGHT_STRING`).

use crate::{AggFunc, MergeSpec, SelectMerge, SortKey, HIDDEN};
use std::fmt::{self, Display, Formatter};

struct Col(usize);

impl Display for Col {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0 >= HIDDEN {
            write!(f, "h{}", self.0 - HIDDEN)
        } else {
            write!(f, "#{}", self.0)
        }
    }
}

fn cols(v: &[usize]) -> String {
    v.iter()
        .map(|c| Col(*c).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn keys(v: &[SortKey]) -> String {
    v.iter()
        .map(|k| format!("{}{}", Col(k.col), if k.desc { " DESC" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` offset N limit M`, each only when it applies.
struct Window(u64, Option<u64>);

impl Display for Window {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0 > 0 {
            write!(f, " offset {}", self.0)?;
        }
        if let Some(l) = self.1 {
            write!(f, " limit {l}")?;
        }
        Ok(())
    }
}

impl Display for MergeSpec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            MergeSpec::Passthrough => write!(f, "forward"),
            MergeSpec::Concat { offset, limit } => write!(f, "concat{}", Window(*offset, *limit)),
            MergeSpec::SumAffected => write!(f, "sum affected rows"),
            MergeSpec::First => write!(f, "first answer, after every shard's"),
            MergeSpec::Select(s) => s.fmt(f),
        }
    }
}

impl Display for SelectMerge {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(g) = self.group_by.as_ref().filter(|g| !g.is_empty()) {
            let how = if self.presorted {
                "ordered aggregation"
            } else {
                "hash aggregation"
            };
            let rollup = if self.rollup { " with rollup" } else { "" };
            parts.push(format!("{how} by [{}]{rollup}", cols(g)));
        }
        if !self.aggregates.is_empty() {
            let aggs: Vec<String> = self
                .aggregates
                .iter()
                .map(|a| {
                    let name = match a.func {
                        AggFunc::Count => "COUNT",
                        AggFunc::Sum => "SUM",
                        AggFunc::Min => "MIN",
                        AggFunc::Max => "MAX",
                        AggFunc::Avg => "AVG",
                        AggFunc::BitAnd => "BIT_AND",
                        AggFunc::BitOr => "BIT_OR",
                        AggFunc::BitXor => "BIT_XOR",
                        AggFunc::GroupConcat => "GROUP_CONCAT",
                    };
                    match a.count_col {
                        Some(c) => format!("{name}({} / {})", Col(a.col), Col(c)),
                        None => format!("{name}({})", Col(a.col)),
                    }
                })
                .collect();
            parts.push(format!("aggregate [{}]", aggs.join(", ")));
        }
        for d in &self.count_distinct {
            parts.push(format!(
                "distinct values [{}] counted in [{}]",
                cols(&d.values),
                cols(&d.counts)
            ));
        }
        if let Some(g) = &self.group_concat {
            parts.push(format!(
                "group_concat [{}] ordered by [{}]{}",
                cols(&g.values),
                keys(&g.order),
                if g.distinct { " distinct" } else { "" }
            ));
        }
        if self.having.is_some() {
            parts.push("having".into());
        }
        if self.distinct {
            parts.push("distinct".into());
        }
        if !self.order_by.is_empty() {
            let how = if self.presorted && self.group_by.is_none() {
                "k-way merge"
            } else {
                "sort"
            };
            parts.push(format!("{how} by [{}]", keys(&self.order_by)));
        }
        if !self.weights.is_empty() {
            let w: Vec<String> = self
                .weights
                .iter()
                .map(|(c, w)| format!("{} by {}", Col(*c), Col(*w)))
                .collect();
            parts.push(format!("compare [{}]", w.join(", ")));
        }
        if !self.computed.is_empty() {
            parts.push(format!(
                "compute [{}]",
                cols(&self.computed.iter().map(|(c, _)| *c).collect::<Vec<_>>())
            ));
        }
        let window = Window(self.offset, self.limit).to_string();
        if !window.is_empty() {
            parts.push(window.trim_start().to_string());
        }
        if !self.output.is_empty() {
            parts.push(format!("output [{}]", cols(&self.output)));
        }
        if parts.is_empty() {
            parts.push("rows as they come".into());
        }
        write!(f, "{}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sorted_scatter_reads_as_a_k_way_merge() {
        let spec = MergeSpec::Select(Box::new(SelectMerge {
            group_by: None,
            aggregates: vec![],
            distinct: false,
            order_by: vec![SortKey {
                col: HIDDEN,
                desc: true,
            }],
            offset: 2,
            limit: Some(5),
            output: vec![0, 1],
            weights: vec![(HIDDEN, HIDDEN + 1)],
            computed: vec![],
            having: None,
            count_distinct: vec![],
            group_concat: None,
            presorted: true,
            rollup: false,
        }));
        assert_eq!(
            spec.to_string(),
            "k-way merge by [h0 DESC]; compare [h0 by h1]; offset 2 limit 5; output [#0, #1]"
        );
        assert_eq!(
            MergeSpec::Concat {
                offset: 0,
                limit: Some(3)
            }
            .to_string(),
            "concat limit 3"
        );
    }
}
