//! myshard's rewriter: a [`RoutePlan`] plus the statement becomes an [`ExecPlan`], the SQL
//! each shard receives and the [`MergeSpec`] for their answers.

use myshard_merger::MergeSpec;
use myshard_router::{Role, RoutePlan};
use serde::{Deserialize, Serialize};

/// The SQL one shard runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardQuery {
    /// Shard name.
    pub shard: String,
    /// Physical database to run in, if any.
    pub database: Option<String>,
    /// The statement text.
    pub sql: String,
}

/// Everything the executor needs to run one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecPlan {
    /// Primary or replica.
    pub role: Role,
    /// One entry per shard.
    pub queries: Vec<ShardQuery>,
    /// How to combine the shards' answers.
    pub merge: MergeSpec,
}

/// Why a statement could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A statement shape myshard cannot rewrite correctly.
    #[error("{0}")]
    Unsupported(String),
}

/// Builds the execution plan. Single-shard plans keep the client's SQL byte for byte.
pub fn rewrite(plan: &RoutePlan, sql: &str) -> Result<ExecPlan, RewriteError> {
    match plan.shards.as_slice() {
        [shard] => Ok(ExecPlan {
            role: plan.role,
            queries: vec![ShardQuery {
                shard: shard.clone(),
                database: plan.database.clone(),
                sql: sql.to_string(),
            }],
            merge: MergeSpec::Passthrough,
        }),
        _ => Err(RewriteError::Unsupported(
            "statements spanning several shards are not supported yet".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use myshard_router::StatementKind;

    #[test]
    fn single_shard_keeps_sql_verbatim() {
        let plan = RoutePlan::single(StatementKind::Read, Role::Primary, "s0", Some("shop"));
        let exec = rewrite(&plan, "SELECT 1").expect("rewrites");
        assert_eq!(exec.queries[0].sql, "SELECT 1");
        assert!(exec.merge.is_passthrough());
    }
}
