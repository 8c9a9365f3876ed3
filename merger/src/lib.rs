//! myshard's merger: how the rows of several shards become the one answer a single MySQL
//! would give. It owns [`MergeSpec`], the instructions the rewriter hands to the executor.
//! Until cross-shard statements exist every plan is single-shard and the merge is the
//! identity (rows are forwarded untouched).

use serde::{Deserialize, Serialize};

/// How the executor combines shard results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeSpec {
    /// One shard: forward its results as they are.
    Passthrough,
}

impl MergeSpec {
    /// Whether rows can be forwarded without decoding.
    pub fn is_passthrough(&self) -> bool {
        matches!(self, MergeSpec::Passthrough)
    }
}
