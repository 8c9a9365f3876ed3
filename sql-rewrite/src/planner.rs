//! The one planner of a statement: canonical SQL text in, a [`RoutePlan`] and its
//! [`ExecPlan`] out. Pure — no I/O, no locks — so the server, `myshard explain`, admin
//! `EXPLAIN ROUTE`, the golden tests and the benches all get their plans from [`plan`] and
//! cannot disagree.
//!
//! Rules, in order:
//! 1. the router places the statement as a whole and the rewriter writes each target's SQL;
//! 2. a UNION the router cannot place as a whole (its branches live on different shards) is
//!    planned branch by branch, each by rule 1, and its rows combined as MySQL combines a
//!    UNION's ([`crate::union`]).
//!
//! What needs rows first (subqueries, joins off the key, the copy fallback) is not planned
//! here yet: the server still runs those parts itself (`proxy::subquery`), starting from the
//! structured refusal this planner returns ([`PlanError::join_off_key`]).

use crate::{rewrite, union, ExecPlan, RewriteError};
use myshard_router::{IdSource, RouteError, RoutePlan, Router};

/// Why a statement has no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The router refused it.
    #[error("{0}")]
    Route(#[from] RouteError),
    /// The rewriter refused it.
    #[error("{0}")]
    Rewrite(#[from] RewriteError),
}

impl PlanError {
    /// The table (or alias) of a join off the sharding key that made the router refuse.
    pub fn join_off_key(&self) -> Option<&str> {
        match self {
            PlanError::Route(e) => e.join_off_key(),
            PlanError::Rewrite(_) => None,
        }
    }

    /// The (schema, table) whose column list the planner needs (an INSERT without one).
    pub fn needs_columns(&self) -> Option<(&str, &str, Option<usize>)> {
        match self {
            PlanError::Route(e) => e.needs_columns(),
            PlanError::Rewrite(_) => None,
        }
    }

    /// Whether this is a statement shape myshard does not support (ER_NOT_SUPPORTED_YET), as
    /// opposed to a missing or unknown database or a UNION's column-count mismatch.
    pub fn is_unsupported(&self) -> bool {
        !matches!(
            self,
            PlanError::Route(
                RouteError::NoDatabase | RouteError::UnknownDatabase(_) | RouteError::Denied(_)
            ) | PlanError::Rewrite(RewriteError::UnionColumnCount)
        )
    }
}

/// Plans one statement of canonical text in `schema` (the session's current schema).
pub fn plan(
    router: &Router,
    schema: Option<&str>,
    sql: &str,
    ids: &mut dyn IdSource,
) -> Result<(RoutePlan, ExecPlan), PlanError> {
    plan_as(router, schema, None, sql, ids)
}

/// [`plan`] for a client that may use only the logical schemas `allowed` (`None`: all).
pub fn plan_as(
    router: &Router,
    schema: Option<&str>,
    allowed: Option<&[String]>,
    sql: &str,
    ids: &mut dyn IdSource,
) -> Result<(RoutePlan, ExecPlan), PlanError> {
    let scope = Scope { schema, allowed };
    match plan_whole(&scope, router, sql, ids) {
        Err(e) if e.is_unsupported() && sql.to_ascii_uppercase().contains("UNION") => {
            plan_union(&scope, router, sql, ids).unwrap_or(Err(e))
        }
        other => other,
    }
}

/// Who plans: the session's current schema and the schemas it may use.
struct Scope<'a> {
    schema: Option<&'a str>,
    allowed: Option<&'a [String]>,
}

/// Rule 1: the statement as a whole.
fn plan_whole(
    scope: &Scope,
    router: &Router,
    sql: &str,
    ids: &mut dyn IdSource,
) -> Result<(RoutePlan, ExecPlan), PlanError> {
    let plan = router.route_as(scope.schema, scope.allowed, sql, ids)?;
    let exec = rewrite(&plan, sql)?;
    Ok((plan, exec))
}

/// Rule 2: a UNION branch by branch; `None` when `sql` is not a UNION.
fn plan_union(
    scope: &Scope,
    router: &Router,
    sql: &str,
    ids: &mut dyn IdSource,
) -> Option<Result<(RoutePlan, ExecPlan), PlanError>> {
    let statements = myshard_router::parse::parse(sql).ok()?;
    let [stmt] = statements.as_slice() else {
        return None;
    };
    let shape = match union::union_shape(stmt)? {
        Ok(s) => s,
        Err(e) => return Some(Err(e.into())),
    };
    let mut first: Option<RoutePlan> = None;
    let mut execs = Vec::with_capacity(shape.branches.len());
    for branch in &shape.branches {
        match plan_whole(scope, router, branch, ids) {
            Ok((plan, exec)) => {
                match first.as_mut() {
                    // A hint or schema on any branch is one of the statement (permission
                    // checks).
                    Some(f) => {
                        f.hinted |= plan.hinted;
                        for s in plan.schemas {
                            if !f.schemas.contains(&s) {
                                f.schemas.push(s);
                            }
                        }
                    }
                    None => first = Some(plan),
                }
                execs.push(exec);
            }
            Err(e) => return Some(Err(e)),
        }
    }
    let mut plan = first?;
    // The first branch's placement is not the statement's.
    plan.placed_by = myshard_router::Placed::Unknown;
    Some(
        union::combine(shape, execs)
            .map(|exec| (plan, exec))
            .map_err(PlanError::from),
    )
}
