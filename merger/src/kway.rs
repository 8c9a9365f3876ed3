//! Streaming k-way merge of shard streams that each arrive sorted by the statement's ORDER
//! BY: a binary heap of one head row per shard, so the merge holds O(shards) rows however
//! many the shards send. Ties are broken by shard index, so equal keys come out in shard
//! order, as the buffered sort would put them.
//!
//! The caller drives it: [`KWayMerge::push`] the first row of every shard, then repeatedly
//! [`KWayMerge::pop`] the smallest head and push that shard's next row (if any) before the
//! next pop. The caller stops pulling once OFFSET + LIMIT rows are out.

use crate::select::SelectMerge;
use crate::value::{Kind, Row};
use std::cmp::Ordering;

/// The merge state: heads of the shards that still have rows.
#[derive(Debug)]
pub struct KWayMerge<'a> {
    spec: &'a SelectMerge,
    kinds: &'a [Kind],
    /// Min-heap of (shard, head row) by (ORDER BY keys, shard).
    heap: Vec<(usize, Row)>,
}

impl<'a> KWayMerge<'a> {
    /// An empty merge for the ORDER BY of `spec` (whose columns are already resolved).
    pub fn new(spec: &'a SelectMerge, kinds: &'a [Kind]) -> Self {
        KWayMerge {
            spec,
            kinds,
            heap: Vec::new(),
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (sa, ra) = &self.heap[a];
        let (sb, rb) = &self.heap[b];
        self.spec
            .cmp_keys(self.kinds, ra, rb, &self.spec.order_by)
            .then_with(|| sa.cmp(sb))
            == Ordering::Less
    }

    /// Adds the next row of `shard` (whose previous head was popped, or its first row).
    pub fn push(&mut self, shard: usize, row: Row) {
        self.heap.push((shard, row));
        let mut i = self.heap.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(i, parent) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    /// Takes the smallest head and the shard it came from; push that shard's next row before
    /// popping again.
    pub fn pop(&mut self) -> Option<(usize, Row)> {
        if self.heap.is_empty() {
            return None;
        }
        let last = self.heap.len() - 1;
        self.heap.swap(0, last);
        let top = self.heap.pop();
        let n = self.heap.len();
        let mut i = 0;
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.less(l, m) {
                m = l;
            }
            if r < n && self.less(r, m) {
                m = r;
            }
            if m == i {
                break;
            }
            self.heap.swap(i, m);
            i = m;
        }
        top
    }

    /// How many shards still have a head row.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether every shard is exhausted.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Merges shard streams sorted by `spec.order_by` (and nothing else to do: no grouping,
/// DISTINCT or computed columns), applying OFFSET/LIMIT and the output projection.
pub fn merge_sorted<I>(spec: &SelectMerge, kinds: &[Kind], shards: Vec<I>) -> Vec<Row>
where
    I: IntoIterator<Item = Row>,
{
    let mut sources: Vec<I::IntoIter> = shards.into_iter().map(|s| s.into_iter()).collect();
    let mut merge = KWayMerge::new(spec, kinds);
    for (i, s) in sources.iter_mut().enumerate() {
        if let Some(row) = s.next() {
            merge.push(i, row);
        }
    }
    let mut window = crate::OffsetLimit::new(spec.offset, spec.limit);
    let mut out = Vec::new();
    while !window.is_done() {
        let Some((shard, row)) = merge.pop() else {
            break;
        };
        if let Some(next) = sources.get_mut(shard).and_then(|s| s.next()) {
            merge.push(shard, next);
        }
        if window.admit() {
            out.push(spec.project(row));
        }
    }
    out
}
