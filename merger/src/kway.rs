//! Streaming k-way merge of shard streams that each arrive sorted by the statement's ORDER
//! BY: a binary heap of one head row per shard, so the merge holds O(shards) rows however
//! many the shards send. Ties are broken by shard index, so equal keys come out in shard
//! order, as the buffered sort would put them.
//!
//! The caller drives it: [`KWayMerge::push`] the first row of every shard, then repeatedly
//! [`KWayMerge::pop`] the smallest head and push that shard's next row (if any) before the
//! next pop. The caller stops pulling once OFFSET + LIMIT rows are out.
//!
//! Grouped reads whose shards sorted their groups by the group key merge the same way, and
//! [`GroupFold`] folds neighbouring rows of one group, handing each group out finished when
//! the next begins: ordered aggregation in O(shards) memory.

use crate::select::{MergeError, SelectMerge};
use crate::value::{Kind, Row, SortValue};
use std::cmp::Ordering;

/// A shard's head row with its sort values decoded once.
#[derive(Debug)]
struct Head {
    shard: usize,
    keys: Vec<SortValue>,
    row: Row,
}

/// The merge state: heads of the shards that still have rows.
#[derive(Debug)]
pub struct KWayMerge<'a> {
    spec: &'a SelectMerge,
    kinds: &'a [Kind],
    /// The order the shards' rows come in ([`SelectMerge::stream_order`]).
    order: Vec<crate::select::SortKey>,
    /// Min-heap of head rows by (ORDER BY keys, shard).
    heap: Vec<Head>,
}

impl<'a> KWayMerge<'a> {
    /// An empty merge of shard streams of `spec` (whose columns are already resolved), in
    /// the order they come in (see [`SelectMerge::stream_order`]).
    pub fn new(
        spec: &'a SelectMerge,
        kinds: &'a [Kind],
        order: Vec<crate::select::SortKey>,
    ) -> Self {
        KWayMerge {
            spec,
            kinds,
            order,
            heap: Vec::new(),
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.heap[a], &self.heap[b]);
        SelectMerge::cmp_sort_values(
            self.kinds,
            &self.order,
            (&a.keys, &a.row),
            (&b.keys, &b.row),
        )
        .then_with(|| a.shard.cmp(&b.shard))
            == Ordering::Less
    }

    /// Adds the next row of `shard` (whose previous head was popped, or its first row).
    pub fn push(&mut self, shard: usize, row: Row) {
        let keys = self.spec.sort_values(self.kinds, &row, &self.order);
        self.heap.push(Head { shard, keys, row });
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
        let top = self.heap.pop().map(|h| (h.shard, h.row));
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

/// Ordered aggregation: rows arrive sorted by the group key; rows of one group are folded,
/// and a group is finished (AVG, computed columns, HAVING) and handed out when the next
/// begins.
#[derive(Debug)]
pub struct GroupFold<'a> {
    spec: &'a SelectMerge,
    kinds: &'a [Kind],
    keys: Vec<usize>,
    current: Option<Row>,
}

impl<'a> GroupFold<'a> {
    /// Folds groups of `spec.group_by`.
    pub fn new(spec: &'a SelectMerge, kinds: &'a [Kind]) -> Self {
        GroupFold {
            spec,
            kinds,
            keys: spec.group_by.clone().unwrap_or_default(),
            current: None,
        }
    }

    /// Takes the next row; returns the previous group, finished, when this row begins a new
    /// one (and HAVING keeps it).
    pub fn push(&mut self, row: Row) -> Result<Option<Row>, MergeError> {
        if let Some(cur) = &mut self.current {
            if self.spec.cmp_cols(self.kinds, cur, &row, &self.keys) == Ordering::Equal {
                self.spec.fold(self.kinds, cur, row)?;
                return Ok(None);
            }
        }
        Ok(self
            .current
            .replace(row)
            .and_then(|done| self.spec.finish_row(self.kinds, done)))
    }

    /// The last group, finished, once every row was pushed.
    pub fn finish(&mut self) -> Option<Row> {
        self.current
            .take()
            .and_then(|done| self.spec.finish_row(self.kinds, done))
    }
}

/// What a streamed merge does with each row the k-way merge hands out.
#[derive(Debug)]
pub enum Streamed<'a> {
    /// A sorted read: every row is a result row.
    Rows,
    /// A grouped read: rows fold into groups.
    Groups(GroupFold<'a>),
}

impl<'a> Streamed<'a> {
    /// The stage for `spec`.
    pub fn new(spec: &'a SelectMerge, kinds: &'a [Kind]) -> Self {
        if spec.group_by.is_some() {
            Streamed::Groups(GroupFold::new(spec, kinds))
        } else {
            Streamed::Rows
        }
    }

    /// Takes a merged row; returns a result row when one is complete.
    pub fn push(&mut self, row: Row) -> Result<Option<Row>, MergeError> {
        match self {
            Streamed::Rows => Ok(Some(row)),
            Streamed::Groups(g) => g.push(row),
        }
    }

    /// The result row still held once the shards are exhausted.
    pub fn finish(&mut self) -> Option<Row> {
        match self {
            Streamed::Rows => None,
            Streamed::Groups(g) => g.finish(),
        }
    }
}

/// A streamed merge, driven by the caller: [`StreamMerge::push`] each shard's first row, then
/// loop on [`StreamMerge::pop`] (refill the shard it names, then hand the row to
/// [`StreamMerge::take`]), and end with [`StreamMerge::finish`]. It applies grouping,
/// OFFSET/LIMIT (popping nothing once LIMIT is reached) and the output projection.
#[derive(Debug)]
pub struct StreamMerge<'a> {
    spec: &'a SelectMerge,
    merge: KWayMerge<'a>,
    stage: Streamed<'a>,
    window: crate::OffsetLimit,
}

impl<'a> StreamMerge<'a> {
    /// `None` when `spec` cannot be merged as streams ([`SelectMerge::stream_order`]).
    pub fn new(spec: &'a SelectMerge, kinds: &'a [Kind]) -> Option<Self> {
        Some(StreamMerge {
            spec,
            merge: KWayMerge::new(spec, kinds, spec.stream_order()?),
            stage: Streamed::new(spec, kinds),
            window: crate::OffsetLimit::new(spec.offset, spec.limit),
        })
    }

    /// Adds a shard's next row.
    pub fn push(&mut self, shard: usize, row: Row) {
        self.merge.push(shard, row);
    }

    /// The next merged row and its shard (whose next row should be pushed before it is
    /// taken); `None` when the shards are exhausted or LIMIT is reached.
    pub fn pop(&mut self) -> Option<(usize, Row)> {
        if self.window.is_done() {
            return None;
        }
        self.merge.pop()
    }

    /// Takes a popped row; returns a result row (projected) when one is complete and inside
    /// OFFSET/LIMIT.
    pub fn take(&mut self, row: Row) -> Result<Option<Row>, MergeError> {
        Ok(self.stage.push(row)?.and_then(|done| self.admit(done)))
    }

    /// The result row still held once the shards are exhausted.
    pub fn finish(&mut self) -> Option<Row> {
        let last = self.stage.finish()?;
        self.admit(last)
    }

    fn admit(&mut self, row: Row) -> Option<Row> {
        self.window.admit().then(|| self.spec.project(row))
    }
}

/// Merges shard streams that arrive in [`SelectMerge::stream_order`] (a sorted read, or
/// groups sorted by their key), applying grouping, OFFSET/LIMIT and the output projection;
/// `None` when `spec` cannot be merged as streams.
pub fn merge_sorted<I>(
    spec: &SelectMerge,
    kinds: &[Kind],
    shards: Vec<I>,
) -> Option<Result<Vec<Row>, MergeError>>
where
    I: IntoIterator<Item = Row>,
{
    let mut merge = StreamMerge::new(spec, kinds)?;
    let mut sources: Vec<I::IntoIter> = shards.into_iter().map(|s| s.into_iter()).collect();
    for (i, s) in sources.iter_mut().enumerate() {
        if let Some(row) = s.next() {
            merge.push(i, row);
        }
    }
    let mut out = Vec::new();
    while let Some((shard, row)) = merge.pop() {
        if let Some(next) = sources.get_mut(shard).and_then(|s| s.next()) {
            merge.push(shard, next);
        }
        match merge.take(row) {
            Ok(Some(done)) => out.push(done),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
    }
    out.extend(merge.finish());
    Some(Ok(out))
}
