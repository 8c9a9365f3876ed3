//! myshard's merger: how the answers of several shards become the one answer a single MySQL
//! would give. It owns [`MergeSpec`], the instructions the rewriter hands to the executor.
//!
//! - [`value`]: cells of text-protocol rows, MySQL comparison, exact decimal arithmetic.
//! - [`select`]: [`SelectMerge`], aggregate → distinct → sort → offset/limit → project.
//! - [`kway`]: streaming k-way merge of shard streams sorted by the ORDER BY.

mod display;
pub mod expr;
pub mod kway;
pub mod select;
pub mod value;

pub use expr::{ArithOp, CmpOp, PExpr};
pub use select::{
    AggFunc, Aggregate, CountDistinct, GroupConcat, MergeError, SelectMerge, SortKey,
};
pub use value::{Cell, Kind, Row};

use serde::{Deserialize, Serialize};

/// Column numbers from here on name helper columns the rewriter adds to the shards' select
/// list (`h0` is `HIDDEN`), resolved to positions once the first shard answers.
pub const HIDDEN: usize = 1 << 20;

/// How the executor combines shard results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeSpec {
    /// One shard: forward its results as they are.
    Passthrough,
    /// Rows of every shard in shard order; skip `offset` rows, return at most `limit`.
    /// Exact for statements whose row order MySQL leaves unspecified.
    Concat {
        /// Rows to skip.
        offset: u64,
        /// Rows to return at most.
        limit: Option<u64>,
    },
    /// Writes and DDL on several shards: one OK with the summed affected rows and warnings.
    SumAffected,
    /// The same statement on every shard (broadcast tables): the first shard's answer, after
    /// every shard succeeded.
    First,
    /// A SELECT whose rows must be aggregated, de-duplicated or sorted across shards.
    Select(Box<SelectMerge>),
}

impl MergeSpec {
    /// Whether rows can be forwarded without decoding.
    pub fn is_passthrough(&self) -> bool {
        matches!(self, MergeSpec::Passthrough)
    }
}

/// Applies OFFSET and LIMIT to a stream of rows, one row at a time.
#[derive(Debug, Clone)]
pub struct OffsetLimit {
    skip: u64,
    left: Option<u64>,
}

impl OffsetLimit {
    /// Skips `offset` rows, then passes at most `limit`.
    pub fn new(offset: u64, limit: Option<u64>) -> Self {
        OffsetLimit {
            skip: offset,
            left: limit,
        }
    }

    /// Whether the next row is part of the answer.
    pub fn admit(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        match &mut self.left {
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        }
    }

    /// Whether no further row can be admitted (the shards may stop sending).
    pub fn is_done(&self) -> bool {
        self.skip == 0 && self.left == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_then_limit() {
        let mut ol = OffsetLimit::new(2, Some(3));
        let admitted: Vec<bool> = (0..7).map(|_| ol.admit()).collect();
        assert_eq!(admitted, [false, false, true, true, true, false, false]);
        assert!(ol.is_done());
    }

    #[test]
    fn no_limit_admits_everything_after_offset() {
        let mut ol = OffsetLimit::new(1, None);
        assert!(!ol.admit());
        assert!((0..100).all(|_| ol.admit()));
        assert!(!ol.is_done());
    }
}
