//! Merging the rows of a SELECT that ran on several shards: aggregate (per group), distinct,
//! sort, offset/limit, then project away helper columns. Rows arrive in the shards'
//! layout: the client's columns, then helper columns the rewriter added (partial aggregates,
//! pushed-down sort keys, `WEIGHT_STRING()` of text keys).

use crate::expr::PExpr;
use crate::value::{add_decimal, cmp_cells, div_decimal, Cell, Kind, Row, SortValue};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// An aggregate function, as merged from per-shard partial results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFunc {
    /// Sum of the shards' counts.
    Count,
    /// Sum of the shards' sums (NULL when every shard's is NULL).
    Sum,
    /// Smallest of the shards' minimums.
    Min,
    /// Largest of the shards' maximums.
    Max,
    /// Sum of sums divided by sum of counts (the shards return SUM and COUNT).
    Avg,
    /// AND of the shards' BIT_AND.
    BitAnd,
    /// OR of the shards' BIT_OR.
    BitOr,
    /// XOR of the shards' BIT_XOR.
    BitXor,
    /// GROUP_CONCAT: the shards' pieces joined with the separator, in the order of
    /// [`GroupConcat::order`] (see [`GroupConcat`]).
    GroupConcat,
}

/// One aggregate column of the shards' rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The function.
    pub func: AggFunc,
    /// The column holding the partial value (for AVG: the partial SUM; the result goes here).
    pub col: usize,
    /// For AVG: the column holding the partial COUNT.
    pub count_col: Option<usize>,
}

/// One ORDER BY key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    /// Column of the shards' rows.
    pub col: usize,
    /// Descending.
    pub desc: bool,
}

/// How to merge a SELECT's rows from several shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectMerge {
    /// Group-key columns; `Some(vec![])` aggregates everything into one row; `None` when the
    /// statement has no GROUP BY and no aggregate.
    pub group_by: Option<Vec<usize>>,
    /// Aggregate columns.
    pub aggregates: Vec<Aggregate>,
    /// SELECT DISTINCT: duplicates of the output columns are removed.
    pub distinct: bool,
    /// ORDER BY keys (after grouping).
    pub order_by: Vec<SortKey>,
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: Option<u64>,
    /// The columns the client sees, in order.
    pub output: Vec<usize>,
    /// `(value column, weight column)`: text values compare by their pushed-down
    /// `WEIGHT_STRING()`, which encodes the column's collation.
    pub weights: Vec<(usize, usize)>,
    /// Columns computed after aggregation (select items built from aggregates), in order.
    #[serde(default)]
    pub computed: Vec<(usize, PExpr)>,
    /// HAVING, evaluated on each merged group.
    #[serde(default)]
    pub having: Option<PExpr>,
    /// Aggregates over DISTINCT values, one entry per distinct argument list: the shards
    /// return each group's distinct values of every list; they are de-duplicated across
    /// shards, then counted or summed.
    #[serde(default)]
    pub count_distinct: Vec<CountDistinct>,
    /// GROUP_CONCAT across shards.
    #[serde(default)]
    pub group_concat: Option<GroupConcat>,
    /// Every shard returns its rows already sorted by `order_by` (the ORDER BY stayed in its
    /// SQL), so a plain sorted read can be merged as streams ([`SelectMerge::is_streamable`]).
    #[serde(default)]
    pub presorted: bool,
    /// GROUP BY … WITH ROLLUP: after each run of groups sharing a prefix of the group key, a
    /// super-aggregate row over them with the rest of the key NULL, and a grand total last.
    /// The shards group without it; their groups arrive in key order here.
    #[serde(default)]
    pub rollup: bool,
}

/// GROUP_CONCAT([DISTINCT] e… [ORDER BY k…] [SEPARATOR s]) across shards: the shards group by
/// the `e` and `k` expressions as well, so each of their rows holds the piece of one (group,
/// e…, k…) — that value once, or repeated as often as it occurs — with `e` and `k` beside it.
/// The merger orders the pieces of each group by `k` (then `e`), drops repeated `e` for
/// DISTINCT, joins them with the separator and cuts the result at `group_concat_max_len`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupConcat {
    /// The GROUP_CONCAT columns and each one's separator.
    pub columns: Vec<(usize, Vec<u8>)>,
    /// The columns of the `e` values.
    pub values: Vec<usize>,
    /// The columns of the ORDER BY keys inside the call.
    pub order: Vec<SortKey>,
    /// GROUP_CONCAT(DISTINCT …).
    pub distinct: bool,
    /// The column holding the shards' `@@group_concat_max_len`.
    pub max_len: usize,
}

impl GroupConcat {
    fn separator(&self, col: usize) -> Option<&[u8]> {
        self.columns
            .iter()
            .find(|(c, _)| *c == col)
            .map(|(_, s)| s.as_slice())
    }
}

/// The longest prefix of `v` of at most `max` bytes that does not split a UTF-8 character
/// (for text; binary values are cut anywhere).
/// Returns whether anything was cut.
fn truncate_to(v: &mut Vec<u8>, max: usize, text: bool) -> bool {
    if v.len() <= max {
        return false;
    }
    v.truncate(max);
    if text {
        if let Err(e) = std::str::from_utf8(v) {
            if e.error_len().is_none() {
                v.truncate(e.valid_up_to());
            }
        }
    }
    true
}

/// COUNT/SUM/AVG(DISTINCT x…) across shards: the shards group by `x…` (of every such
/// list in the statement) as well, so their rows are per (group, x…, other lists); rows
/// equal in all of them from several shards are folded into one, and then each distinct
/// `x…` of this list contributes once to its group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountDistinct {
    /// The columns holding `x…` (COUNT(DISTINCT a, b) has two; NULL in any is no value).
    pub values: Vec<usize>,
    /// The COUNT(DISTINCT x) columns (each starts as `x` and ends as the count).
    pub counts: Vec<usize>,
    /// SUM(DISTINCT x) and AVG(DISTINCT x) columns: they hold `x` and are summed.
    #[serde(default)]
    pub sums: Vec<usize>,
    /// The count helpers of AVG(DISTINCT x): 1 per distinct non-NULL `x`.
    #[serde(default)]
    pub avg_counts: Vec<usize>,
}

impl CountDistinct {
    fn owns(&self, col: usize) -> bool {
        self.counts.contains(&col) || self.sums.contains(&col) || self.avg_counts.contains(&col)
    }
}

/// Ascending sort keys on columns.
pub(crate) fn ascending(cols: &[usize]) -> Vec<SortKey> {
    cols.iter()
        .map(|c| SortKey {
            col: *c,
            desc: false,
        })
        .collect()
}

/// Why rows could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The merge would hold more than the configured memory budget.
    #[error("the merged result needs more than {0} bytes of memory (merge_memory_limit)")]
    TooLarge(usize),
    /// A value shape the merger cannot combine exactly.
    #[error("{0}")]
    Unsupported(String),
}

/// Scale of a decimal text.
fn scale(v: &[u8]) -> usize {
    v.iter()
        .position(|c| *c == b'.')
        .map_or(0, |p| v.len() - p - 1)
}

impl SelectMerge {
    fn weight_of(&self, col: usize) -> Option<usize> {
        self.weights
            .iter()
            .find(|(c, _)| *c == col)
            .map(|(_, w)| *w)
    }

    /// Compares one column of two rows as MySQL would.
    fn cmp_col(&self, kinds: &[Kind], a: &Row, b: &Row, col: usize) -> Ordering {
        let kind = kinds.get(col).copied().unwrap_or(Kind::Binary);
        match (kind, self.weight_of(col)) {
            (Kind::Text, Some(w)) => {
                let ord = cmp_cells(Kind::Binary, &a[w], &b[w]);
                // A NULL value has a NULL weight; order NULL by the value itself.
                if a[col].is_none() || b[col].is_none() {
                    cmp_cells(Kind::Binary, &a[col], &b[col])
                } else {
                    ord
                }
            }
            (kind, _) => cmp_cells(kind, &a[col], &b[col]),
        }
    }

    /// Completes a merged group: AVG from its sum and count, GROUP_CONCAT cut at its
    /// maximum length.
    fn finish_group(&self, kinds: &[Kind], row: &mut Row) {
        self.finish_avg(kinds, row);
        if let Some(gc) = &self.group_concat {
            let max = row
                .get(gc.max_len)
                .and_then(|v| v.as_deref())
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1 << 20);
            let mut cut = false;
            for (c, _) in &gc.columns {
                let text = kinds.get(*c) == Some(&Kind::Text);
                if let Some(Some(v)) = row.get_mut(*c) {
                    cut |= truncate_to(v, max, text);
                }
            }
            if cut {
                // A marker past the shards' columns, read when the rows are output.
                row.resize(kinds.len(), None);
                row.push(Some(Vec::new()));
            }
        }
    }

    /// Evaluates the columns computed after the merge and HAVING on one finished row;
    /// whether the row stays. Computed columns take the kind of what the shards sent for them
    /// (the same expression over their partial rows), so later comparisons read them right.
    fn compute_and_filter(&self, kinds: &[Kind], row: &mut Row) -> bool {
        for (col, e) in &self.computed {
            let v = e.eval(kinds, row).to_cell();
            if let Some(cell) = row.get_mut(*col) {
                *cell = v;
            }
        }
        self.having
            .as_ref()
            .is_none_or(|h| h.eval(kinds, row).truthy())
    }

    /// Finishes one group of a streamed aggregation; `None` when HAVING drops it.
    pub(crate) fn finish_row(&self, kinds: &[Kind], mut row: Row) -> Option<Row> {
        self.finish_group(kinds, &mut row);
        self.compute_and_filter(kinds, &mut row).then_some(row)
    }

    /// The order the shards' rows arrive in when they can be merged as streams — a sorted
    /// read (its ORDER BY), or a grouped read whose shards sorted their groups by the group
    /// key (which is then also the result's order) — or `None` when the merge must buffer.
    pub fn stream_order(&self) -> Option<Vec<SortKey>> {
        if !self.presorted
            || self.distinct
            || self.rollup
            || !self.count_distinct.is_empty()
            || self.group_concat.is_some()
        {
            return None;
        }
        match &self.group_by {
            None if !self.order_by.is_empty()
                && self.computed.is_empty()
                && self.having.is_none() =>
            {
                Some(self.order_by.clone())
            }
            Some(keys) if !keys.is_empty() => {
                let by_key = ascending(keys);
                (self.order_by.is_empty() || self.order_by == by_key).then_some(by_key)
            }
            _ => None,
        }
    }

    /// The client's columns of a shard row (cells are moved, not copied, unless the output
    /// names a column twice).
    pub fn project(&self, mut row: Row) -> Row {
        let mut out: Row = Vec::with_capacity(self.output.len());
        for (i, c) in self.output.iter().enumerate() {
            let cell = match self.output[..i].iter().position(|p| p == c) {
                Some(earlier) => out[earlier].clone(),
                None => row.get_mut(*c).and_then(Option::take),
            };
            out.push(cell);
        }
        out
    }

    /// The sort values of `row` for `keys`, decoded once.
    pub(crate) fn sort_values(
        &self,
        kinds: &[Kind],
        row: &Row,
        keys: &[SortKey],
    ) -> Vec<SortValue> {
        keys.iter()
            .map(|k| {
                let kind = kinds.get(k.col).copied().unwrap_or(Kind::Binary);
                let raw = match kind {
                    Kind::Text => self.weight_of(k.col).unwrap_or(k.col),
                    _ => k.col,
                };
                SortValue::decode(kind, row, k.col, raw)
            })
            .collect()
    }

    /// Compares two rows by their decoded sort values (as [`SelectMerge::cmp_keys`] would).
    pub(crate) fn cmp_sort_values(
        kinds: &[Kind],
        keys: &[SortKey],
        (va, ra): (&[SortValue], &Row),
        (vb, rb): (&[SortValue], &Row),
    ) -> Ordering {
        for ((k, a), b) in keys.iter().zip(va).zip(vb) {
            let kind = kinds.get(k.col).copied().unwrap_or(Kind::Binary);
            let o = a.cmp_in(ra, b, rb, kind);
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// Sorts rows stably by `keys`, decoding each row's keys once.
    fn sort_rows(&self, kinds: &[Kind], rows: &mut Vec<Row>, keys: &[SortKey]) {
        let mut decorated: Vec<(Vec<SortValue>, Row)> = std::mem::take(rows)
            .into_iter()
            .map(|r| (self.sort_values(kinds, &r, keys), r))
            .collect();
        decorated
            .sort_by(|(va, ra), (vb, rb)| Self::cmp_sort_values(kinds, keys, (va, ra), (vb, rb)));
        rows.extend(decorated.into_iter().map(|(_, r)| r));
    }

    pub(crate) fn cmp_cols(&self, kinds: &[Kind], a: &Row, b: &Row, cols: &[usize]) -> Ordering {
        for c in cols {
            let o = self.cmp_col(kinds, a, b, *c);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// One row per distinct (group, every DISTINCT list's values) across shards, the other
    /// aggregates folded; then, list by list, the first row of each (group, x…) contributes
    /// `x` (1 to a count) and the others nothing, so the group fold counts each once.
    fn distinct_values(
        &self,
        kinds: &[Kind],
        keys: &[usize],
        mut rows: Vec<Row>,
    ) -> Result<Vec<Row>, MergeError> {
        let mut cols = keys.to_vec();
        for c in self.count_distinct.iter().flat_map(|cd| &cd.values) {
            if !cols.contains(c) {
                cols.push(*c);
            }
        }
        self.sort_rows(kinds, &mut rows, &ascending(&cols));
        let mut distinct: Vec<Row> = Vec::with_capacity(rows.len());
        for row in rows {
            match distinct.last_mut() {
                Some(last) if self.cmp_cols(kinds, last, &row, &cols) == Ordering::Equal => {
                    self.fold_except(kinds, last, row, &self.count_distinct)?;
                }
                _ => distinct.push(row),
            }
        }
        let mut rows = distinct;
        for cd in &self.count_distinct {
            let mut cols = keys.to_vec();
            cols.extend(&cd.values);
            if self.count_distinct.len() > 1 {
                self.sort_rows(kinds, &mut rows, &ascending(&cols));
            }
            let counted: Vec<bool> = (0..rows.len())
                .map(|i| {
                    let first = i == 0
                        || self.cmp_cols(kinds, &rows[i - 1], &rows[i], &cols) != Ordering::Equal;
                    first && cd.values.iter().all(|c| rows[i][*c].is_some())
                })
                .collect();
            for (row, counted) in rows.iter_mut().zip(counted) {
                let one = Some(if counted {
                    b"1".to_vec()
                } else {
                    b"0".to_vec()
                });
                for c in cd.counts.iter().chain(&cd.avg_counts) {
                    row[*c] = one.clone();
                }
                if !counted {
                    for c in &cd.sums {
                        row[*c] = None;
                    }
                }
            }
        }
        Ok(rows)
    }

    /// WITH ROLLUP over merged (unfinished) groups in key order: after the last group of
    /// each prefix of the key, the fold of that prefix's groups with the rest of the key (and
    /// its collation weights) NULL; the grand total comes last.
    fn roll_up(
        &self,
        kinds: &[Kind],
        keys: &[usize],
        groups: Vec<Row>,
    ) -> Result<Vec<Row>, MergeError> {
        let close = |mut acc: Row, level: usize| {
            for k in &keys[level..] {
                acc[*k] = None;
                if let Some(w) = self.weight_of(*k) {
                    acc[w] = None;
                }
            }
            acc
        };
        let mut out = Vec::with_capacity(groups.len() + groups.len() / 2 + 1);
        // open[level]: the fold of the current run of groups sharing `level` key columns.
        let mut open: Vec<Option<Row>> = vec![None; keys.len()];
        for group in groups {
            for level in (0..keys.len()).rev() {
                let ended = open[level].as_ref().is_some_and(|acc| {
                    self.cmp_cols(kinds, acc, &group, &keys[..level]) != Ordering::Equal
                });
                if ended {
                    if let Some(acc) = open[level].take() {
                        out.push(close(acc, level));
                    }
                }
            }
            for slot in open.iter_mut() {
                match slot {
                    Some(acc) => self.fold(kinds, acc, group.clone())?,
                    None => *slot = Some(group.clone()),
                }
            }
            out.push(group);
        }
        for level in (0..keys.len()).rev() {
            if let Some(acc) = open[level].take() {
                out.push(close(acc, level));
            }
        }
        Ok(out)
    }

    pub(crate) fn fold(&self, kinds: &[Kind], acc: &mut Row, row: Row) -> Result<(), MergeError> {
        self.fold_except(kinds, acc, row, &[])
    }

    /// Folds `row` into `acc`, leaving the DISTINCT aggregates' columns of `skip` alone.
    fn fold_except(
        &self,
        kinds: &[Kind],
        acc: &mut Row,
        row: Row,
        skip: &[CountDistinct],
    ) -> Result<(), MergeError> {
        for agg in &self.aggregates {
            if skip.iter().any(|cd| cd.owns(agg.col)) {
                continue;
            }
            let c = agg.col;
            let kind = kinds.get(c).copied().unwrap_or(Kind::Binary);
            if let (AggFunc::Min | AggFunc::Max, Kind::Text, Some(w)) =
                (agg.func, kind, self.weight_of(c))
            {
                // Text: the smaller/larger collation weight wins (NULL means no rows).
                let take_row = match (&acc[c], &row[c]) {
                    (None, _) => true,
                    (_, None) => false,
                    _ => {
                        let o = cmp_cells(Kind::Binary, &row[w], &acc[w]);
                        (agg.func == AggFunc::Min && o == Ordering::Less)
                            || (agg.func == AggFunc::Max && o == Ordering::Greater)
                    }
                };
                if take_row {
                    acc[c] = row[c].clone();
                    acc[w] = row[w].clone();
                }
                continue;
            }
            let merged = match (agg.func, acc[c].take(), row[c].clone()) {
                (_, None, x) | (_, x, None) => x,
                (AggFunc::GroupConcat, Some(mut a), Some(b)) => {
                    let sep = self
                        .group_concat
                        .as_ref()
                        .and_then(|g| g.separator(c))
                        .unwrap_or(b",");
                    a.extend_from_slice(sep);
                    a.extend_from_slice(&b);
                    Some(a)
                }
                (f @ (AggFunc::BitAnd | AggFunc::BitOr | AggFunc::BitXor), Some(a), Some(b)) => {
                    let n = |v: &[u8]| {
                        std::str::from_utf8(v)
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok())
                            .ok_or_else(|| {
                                MergeError::Unsupported(format!(
                                    "a shard's {f:?} partial is not a 64-bit unsigned integer"
                                ))
                            })
                    };
                    let (x, y) = (n(&a)?, n(&b)?);
                    let v = match f {
                        AggFunc::BitAnd => x & y,
                        AggFunc::BitOr => x | y,
                        _ => x ^ y,
                    };
                    Some(v.to_string().into_bytes())
                }
                (AggFunc::Count, Some(a), Some(b)) => {
                    let n = |v: &[u8]| {
                        std::str::from_utf8(v)
                            .ok()
                            .and_then(|s| s.parse::<u128>().ok())
                            .unwrap_or(0)
                    };
                    Some((n(&a) + n(&b)).to_string().into_bytes())
                }
                (AggFunc::Sum | AggFunc::Avg, Some(a), Some(b)) => Some(match kind {
                    Kind::Float => {
                        let f = |v: &[u8]| {
                            std::str::from_utf8(v)
                                .ok()
                                .and_then(|s| s.parse::<f64>().ok())
                                .unwrap_or(0.0)
                        };
                        (f(&a) + f(&b)).to_string().into_bytes()
                    }
                    _ => add_decimal(&a, &b),
                }),
                (AggFunc::Min | AggFunc::Max, Some(a), Some(b)) => {
                    if kind == Kind::Text {
                        return Err(MergeError::Unsupported(
                            "MIN/MAX of text across shards is not supported yet (collation order)"
                                .into(),
                        ));
                    }
                    let o = cmp_cells(kind, &Some(a.clone()), &Some(b.clone()));
                    let take_b = if agg.func == AggFunc::Min {
                        o == Ordering::Greater
                    } else {
                        o == Ordering::Less
                    };
                    Some(if take_b { b } else { a })
                }
            };
            acc[c] = merged;
            if let Some(cc) = agg.count_col {
                let n = |v: &Cell| {
                    v.as_deref()
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|s| s.parse::<u128>().ok())
                        .unwrap_or(0)
                };
                acc[cc] = Some((n(&acc[cc]) + n(&row[cc])).to_string().into_bytes());
            }
        }
        Ok(())
    }

    fn finish_avg(&self, kinds: &[Kind], row: &mut Row) {
        for agg in self.aggregates.iter().filter(|a| a.func == AggFunc::Avg) {
            let Some(cc) = agg.count_col else { continue };
            let count = row[cc]
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            row[agg.col] = match (&row[agg.col], count) {
                (None, _) | (_, 0) => None,
                (Some(sum), n) => Some(match kinds.get(agg.col) {
                    Some(Kind::Float) => {
                        let s: f64 = std::str::from_utf8(sum)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0.0);
                        (s / n as f64).to_string().into_bytes()
                    }
                    _ => div_decimal(sum, n, scale(sum) + 4),
                }),
            };
        }
    }

    /// Puts the GROUP_CONCAT pieces of each group in the call's order (group keys, then its
    /// ORDER BY keys, then its values), and for DISTINCT empties every piece whose values
    /// equal an earlier piece's of the same group, so that folding the group joins them right.
    fn order_pieces(&self, kinds: &[Kind], gc: &GroupConcat, keys: &[usize], rows: &mut Vec<Row>) {
        let mut all: Vec<SortKey> = ascending(keys);
        all.extend(gc.order.iter().cloned());
        all.extend(ascending(&gc.values));
        self.sort_rows(kinds, rows, &all);
        if !gc.distinct {
            return;
        }
        let mut start = 0;
        while start < rows.len() {
            let mut end = start + 1;
            while end < rows.len()
                && self.cmp_cols(kinds, &rows[start], &rows[end], keys) == Ordering::Equal
            {
                end += 1;
            }
            // Within the group: positions sorted by values (stably, so the first in the
            // call's order comes first among equals); later equals lose their piece.
            let mut idx: Vec<usize> = (start..end).collect();
            idx.sort_by(|a, b| self.cmp_cols(kinds, &rows[*a], &rows[*b], &gc.values));
            for w in 1..idx.len() {
                let (prev, cur) = (idx[w - 1], idx[w]);
                if self.cmp_cols(kinds, &rows[prev], &rows[cur], &gc.values) == Ordering::Equal {
                    for (c, _) in &gc.columns {
                        rows[cur][*c] = None;
                    }
                }
            }
            start = end;
        }
    }

    /// Merges every shard's rows (in shard order) into the client's rows.
    pub fn merge(
        &self,
        kinds: &[Kind],
        shards: Vec<Vec<Row>>,
        memory_limit: usize,
    ) -> Result<Vec<Row>, MergeError> {
        self.merge_noting_cuts(kinds, shards, memory_limit)
            .map(|(rows, _)| rows)
    }

    /// [`SelectMerge::merge`], also returning the (1-based) numbers of the result rows whose
    /// GROUP_CONCAT was cut at `group_concat_max_len` (MySQL warns 1260 for each).
    pub fn merge_noting_cuts(
        &self,
        kinds: &[Kind],
        shards: Vec<Vec<Row>>,
        memory_limit: usize,
    ) -> Result<(Vec<Row>, Vec<u64>), MergeError> {
        let mut bytes = 0usize;
        let mut rows: Vec<Row> = Vec::new();
        for shard in shards {
            for row in shard {
                bytes += row
                    .iter()
                    .map(|c| c.as_ref().map_or(1, |v| v.len() + 8))
                    .sum::<usize>()
                    + 24;
                if bytes > memory_limit {
                    return Err(MergeError::TooLarge(memory_limit));
                }
                rows.push(row);
            }
        }
        if let (false, Some(keys)) = (self.count_distinct.is_empty(), &self.group_by) {
            rows = self.distinct_values(kinds, keys, rows)?;
        }
        if let (Some(gc), Some(keys)) = (&self.group_concat, &self.group_by) {
            self.order_pieces(kinds, gc, keys, &mut rows);
        }
        if let Some(keys) = &self.group_by {
            // Stable sort by group key, then fold equal neighbours.
            self.sort_rows(kinds, &mut rows, &ascending(keys));
            let mut grouped: Vec<Row> = Vec::new();
            for row in rows {
                match grouped.last_mut() {
                    Some(last) if self.cmp_cols(kinds, last, &row, keys) == Ordering::Equal => {
                        self.fold(kinds, last, row)?;
                    }
                    _ => grouped.push(row),
                }
            }
            if keys.is_empty() && grouped.is_empty() {
                // Aggregates without GROUP BY answer one row even over no rows. Only
                // aggregates over DISTINCT x and GROUP_CONCAT get here (their shards group by
                // x): counts and BIT_OR/BIT_XOR are 0, BIT_AND all ones, everything else NULL.
                if self.count_distinct.is_empty() && self.group_concat.is_none() {
                    return Ok((vec![], vec![]));
                }
                let mut row: Row = vec![None; kinds.len()];
                for agg in &self.aggregates {
                    let empty: &[u8] = match agg.func {
                        AggFunc::Count | AggFunc::BitOr | AggFunc::BitXor => b"0",
                        AggFunc::BitAnd => b"18446744073709551615",
                        _ => continue,
                    };
                    if let Some(cell) = row.get_mut(agg.col) {
                        *cell = Some(empty.to_vec());
                    }
                }
                grouped.push(row);
            }
            if self.rollup {
                grouped = self.roll_up(kinds, keys, grouped)?;
            }
            for row in &mut grouped {
                self.finish_group(kinds, row);
            }
            rows = grouped;
        }
        if !self.computed.is_empty() || self.having.is_some() {
            rows.retain_mut(|row| self.compute_and_filter(kinds, row));
        }
        if self.distinct {
            let cols = self.output.clone();
            let mut out: Vec<Row> = Vec::with_capacity(rows.len());
            let mut sorted: Vec<(usize, Row)> = rows.into_iter().enumerate().collect();
            sorted.sort_by(|a, b| self.cmp_cols(kinds, &a.1, &b.1, &cols).then(a.0.cmp(&b.0)));
            let mut firsts: Vec<(usize, Row)> = Vec::new();
            for (i, row) in sorted {
                match firsts.last() {
                    Some((_, last))
                        if self.cmp_cols(kinds, last, &row, &cols) == Ordering::Equal => {}
                    _ => firsts.push((i, row)),
                }
            }
            firsts.sort_by_key(|(i, _)| *i);
            out.extend(firsts.into_iter().map(|(_, r)| r));
            rows = out;
        }
        if !self.order_by.is_empty() {
            self.sort_rows(kinds, &mut rows, &self.order_by);
        }
        let offset = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let limit = self
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let mut cuts = Vec::new();
        let out = rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .enumerate()
            .map(|(i, r)| {
                if r.len() > kinds.len() {
                    cuts.push(i as u64 + 1);
                }
                self.project(r)
            })
            .collect();
        Ok((out, cuts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cell {
        if s == "NULL" {
            None
        } else {
            Some(s.as_bytes().to_vec())
        }
    }

    fn rows(data: &[&[&str]]) -> Vec<Row> {
        data.iter()
            .map(|r| r.iter().map(|s| c(s)).collect())
            .collect()
    }

    fn spec() -> SelectMerge {
        SelectMerge {
            group_by: None,
            aggregates: vec![],
            distinct: false,
            order_by: vec![],
            offset: 0,
            limit: None,
            output: vec![0],
            weights: vec![],
            computed: vec![],
            having: None,
            count_distinct: vec![],
            group_concat: None,
            presorted: false,
            rollup: false,
        }
    }

    #[test]
    fn order_by_desc_puts_nulls_last() {
        let s = SelectMerge {
            order_by: vec![SortKey { col: 0, desc: true }],
            ..spec()
        };
        let out = s
            .merge(
                &[Kind::Int],
                vec![rows(&[&["1"], &["NULL"]]), rows(&[&["10"], &["2"]])],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(out, rows(&[&["10"], &["2"], &["1"], &["NULL"]]));
    }

    #[test]
    fn order_by_text_uses_weights_and_limit_offset() {
        // Column 1 is the weight of column 0 (case-insensitive: 'a' == 'A').
        let s = SelectMerge {
            order_by: vec![SortKey {
                col: 0,
                desc: false,
            }],
            weights: vec![(0, 1)],
            offset: 1,
            limit: Some(2),
            ..spec()
        };
        let out = s
            .merge(
                &[Kind::Text, Kind::Binary],
                vec![
                    rows(&[&["b", "B"], &["C", "C"]]),
                    rows(&[&["A", "A"], &["c", "C"]]),
                ],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(out, rows(&[&["b"], &["C"]]));
    }

    #[test]
    fn count_sum_avg_merge_across_shards() {
        // Shard rows: COUNT(*), SUM(x), SUM(x) for AVG, COUNT(x) for AVG.
        let s = SelectMerge {
            group_by: Some(vec![]),
            aggregates: vec![
                Aggregate {
                    func: AggFunc::Count,
                    col: 0,
                    count_col: None,
                },
                Aggregate {
                    func: AggFunc::Sum,
                    col: 1,
                    count_col: None,
                },
                Aggregate {
                    func: AggFunc::Avg,
                    col: 2,
                    count_col: Some(3),
                },
            ],
            output: vec![0, 1, 2],
            ..spec()
        };
        let kinds = [Kind::Int, Kind::Decimal, Kind::Decimal, Kind::Int];
        let out = s
            .merge(
                &kinds,
                vec![
                    rows(&[&["2", "10", "10", "2"]]),
                    rows(&[&["1", "NULL", "NULL", "0"]]),
                    rows(&[&["3", "-3", "-3", "3"]]),
                ],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(out, rows(&[&["6", "7", "1.4000"]]));
    }

    #[test]
    fn group_by_merges_groups_and_sorts_them() {
        let s = SelectMerge {
            group_by: Some(vec![0]),
            aggregates: vec![Aggregate {
                func: AggFunc::Max,
                col: 1,
                count_col: None,
            }],
            output: vec![0, 1],
            order_by: vec![SortKey {
                col: 0,
                desc: false,
            }],
            ..spec()
        };
        let out = s
            .merge(
                &[Kind::Int, Kind::Int],
                vec![
                    rows(&[&["2", "5"], &["NULL", "1"]]),
                    rows(&[&["2", "9"], &["1", "0"]]),
                ],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(out, rows(&[&["NULL", "1"], &["1", "0"], &["2", "9"]]));
    }

    #[test]
    fn rollup_adds_a_super_aggregate_after_each_key_prefix_and_a_grand_total() {
        // SELECT a, b, SUM(c), AVG(c) … GROUP BY a, b WITH ROLLUP; AVG as SUM + COUNT helper.
        let s = SelectMerge {
            group_by: Some(vec![0, 1]),
            aggregates: vec![
                Aggregate {
                    func: AggFunc::Sum,
                    col: 2,
                    count_col: None,
                },
                Aggregate {
                    func: AggFunc::Avg,
                    col: 3,
                    count_col: Some(4),
                },
            ],
            output: vec![0, 1, 2, 3],
            rollup: true,
            ..spec()
        };
        let kinds = [Kind::Int, Kind::Int, Kind::Int, Kind::Decimal, Kind::Int];
        let shard0 = rows(&[&["1", "1", "5", "5", "1"], &["NULL", "7", "1", "1", "1"]]);
        let shard1 = rows(&[&["1", "2", "4", "4", "2"], &["2", "1", "3", "3", "1"]]);
        let out = s
            .merge(&kinds, vec![shard0, shard1], 1 << 20)
            .expect("merge");
        assert_eq!(
            out,
            rows(&[
                &["NULL", "7", "1", "1.0000"],
                &["NULL", "NULL", "1", "1.0000"],
                &["1", "1", "5", "5.0000"],
                &["1", "2", "4", "2.0000"],
                &["1", "NULL", "9", "3.0000"],
                &["2", "1", "3", "3.0000"],
                &["2", "NULL", "3", "3.0000"],
                &["NULL", "NULL", "13", "2.6000"],
            ])
        );
    }

    #[test]
    fn count_distinct_over_no_rows_is_one_row_of_zero() {
        let s = SelectMerge {
            group_by: Some(vec![]),
            aggregates: vec![Aggregate {
                func: AggFunc::Count,
                col: 0,
                count_col: None,
            }],
            count_distinct: vec![crate::select::CountDistinct {
                sums: vec![],
                avg_counts: vec![],
                values: vec![0],
                counts: vec![0],
            }],
            weights: vec![(0, 1)],
            output: vec![0],
            ..spec()
        };
        let out = s
            .merge(&[Kind::Text, Kind::Binary], vec![vec![], vec![]], 1 << 20)
            .expect("merge");
        assert_eq!(out, rows(&[&["0"]]));
    }

    /// Shard rows: group key, GROUP_CONCAT piece, value, order key, max length.
    fn group_concat_spec(distinct: bool, desc: bool) -> SelectMerge {
        SelectMerge {
            group_by: Some(vec![0]),
            aggregates: vec![Aggregate {
                func: AggFunc::GroupConcat,
                col: 1,
                count_col: None,
            }],
            group_concat: Some(GroupConcat {
                columns: vec![(1, b"|".to_vec())],
                values: vec![2],
                order: vec![SortKey { col: 3, desc }],
                distinct,
                max_len: 4,
            }),
            output: vec![0, 1],
            ..spec()
        }
    }

    const GC_KINDS: [Kind; 5] = [Kind::Int, Kind::Text, Kind::Int, Kind::Int, Kind::Int];

    #[test]
    fn group_concat_joins_pieces_in_the_calls_order() {
        let out = group_concat_spec(false, true)
            .merge(
                &GC_KINDS,
                vec![
                    rows(&[&["1", "7|7", "7", "2", "100"], &["2", "5", "5", "1", "100"]]),
                    rows(&[
                        &["1", "3", "3", "9", "100"],
                        &["1", "NULL", "NULL", "5", "100"],
                        &["1", "7", "7", "2", "100"],
                    ]),
                ],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(out, rows(&[&["1", "3|7|7|7"], &["2", "5"]]));
    }

    #[test]
    fn group_concat_distinct_keeps_each_value_once() {
        let out = group_concat_spec(true, false)
            .merge(
                &GC_KINDS,
                vec![
                    rows(&[&["1", "8", "8", "1", "100"], &["1", "4", "4", "2", "100"]]),
                    rows(&[&["1", "8", "8", "3", "100"], &["1", "4", "4", "0", "100"]]),
                ],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(out, rows(&[&["1", "4|8"]]));
    }

    #[test]
    fn group_concat_is_cut_at_max_len_on_a_character_boundary() {
        let out = group_concat_spec(false, false)
            .merge(
                &GC_KINDS,
                vec![
                    rows(&[&["1", "ab", "1", "1", "6"]]),
                    rows(&[&["1", "çé", "2", "2", "6"]]),
                ],
                1 << 20,
            )
            .expect("merge");
        // "ab|çé" is 7 bytes; 6 would split 'é', so 5 bytes remain.
        assert_eq!(out, rows(&[&["1", "ab|ç"]]));
        let (_, cuts) = group_concat_spec(false, false)
            .merge_noting_cuts(
                &GC_KINDS,
                vec![
                    rows(&[&["1", "ab", "1", "1", "6"], &["2", "ab", "1", "1", "6"]]),
                    rows(&[&["2", "çé", "2", "2", "6"]]),
                ],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(cuts, vec![2]);
    }

    #[test]
    fn group_concat_over_no_rows_is_null() {
        let s = SelectMerge {
            group_by: Some(vec![]),
            ..group_concat_spec(false, false)
        };
        let out = s
            .merge(&GC_KINDS, vec![vec![], vec![]], 1 << 20)
            .expect("merge");
        assert_eq!(out, vec![vec![None, None]]);
    }

    #[test]
    fn distinct_keeps_first_of_equal_rows() {
        let s = SelectMerge {
            distinct: true,
            ..spec()
        };
        let out = s
            .merge(
                &[Kind::Int],
                vec![rows(&[&["1"], &["2"]]), rows(&[&["2"], &["3"]])],
                1 << 20,
            )
            .expect("merge");
        assert_eq!(out, rows(&[&["1"], &["2"], &["3"]]));
    }

    #[test]
    fn memory_budget_is_enforced() {
        let s = spec();
        assert!(matches!(
            s.merge(
                &[Kind::Int],
                vec![vec![vec![Some(b"1".to_vec())]; 100]],
                100
            ),
            Err(MergeError::TooLarge(100))
        ));
    }
}
