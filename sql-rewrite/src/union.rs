//! `UNION [ALL]` over sharded tables: each branch is planned on its own (routed by its own
//! keys), and their targets' rows are combined — concatenated for `UNION ALL`, de-duplicated
//! by collation for `UNION`, sorted and cut for a trailing `ORDER BY` / `LIMIT`.
//!
//! Branches must be plain reads whose rows need no merging of their own (no aggregates,
//! GROUP BY, DISTINCT, ORDER BY or LIMIT inside a branch); anything else is refused.

use crate::merge::unsupported;
use crate::{ExecPlan, RewriteError};
use myshard_merger::{MergeSpec, SelectMerge, SortKey};
use myshard_router::Role;
use sqlparser::ast::{
    Expr, Ident, Query, SelectItem, SetExpr, SetOperator, SetQuantifier, Statement, Value,
};

/// A UNION statement taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionShape {
    /// Each branch as a statement of its own (with weight helpers when the union sorts or
    /// de-duplicates).
    pub branches: Vec<String>,
    /// The columns the client sees.
    pub width: usize,
    /// How the branches' rows combine.
    pub merge: MergeSpec,
}

fn flatten<'a>(
    e: &'a SetExpr,
    all: &mut Option<bool>,
    out: &mut Vec<&'a SetExpr>,
) -> Result<(), RewriteError> {
    match e {
        SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier,
            left,
            right,
        } => {
            let this = match set_quantifier {
                SetQuantifier::All => true,
                SetQuantifier::None | SetQuantifier::Distinct => false,
                other => {
                    return unsupported(format!(
                        "UNION {other} across several shards is not supported yet"
                    ))
                }
            };
            if all.is_some_and(|a| a != this) {
                return unsupported(
                    "a UNION mixing ALL and DISTINCT across several shards is not supported yet",
                );
            }
            *all = Some(this);
            flatten(left, all, out)?;
            flatten(right, all, out)
        }
        SetExpr::SetOperation { .. } => {
            unsupported("INTERSECT and EXCEPT across several shards are not supported yet")
        }
        SetExpr::Select(_) => {
            out.push(e);
            Ok(())
        }
        // `(SELECT …) UNION …`: parentheses without LIMIT change nothing, and MySQL ignores an
        // ORDER BY there (it orders nothing the union keeps).
        SetExpr::Query(inner)
            if inner.with.is_none()
                && inner.limit_clause.is_none()
                && inner.fetch.is_none()
                && inner.locks.is_empty() =>
        {
            flatten(&inner.body, all, out)
        }
        _ => unsupported(
            "a UNION branch that is not a plain SELECT across several shards is not supported yet",
        ),
    }
}

/// The output label of a select item, as MySQL names the column.
fn label(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => p.last().map(|i| i.value.clone()),
        SelectItem::UnnamedExpr(e) => Some(e.to_string()),
        _ => None,
    }
}

/// Takes a UNION statement apart, or `None` when `stmt` is not one.
pub fn union_shape(stmt: &Statement) -> Option<Result<UnionShape, RewriteError>> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    if !matches!(
        q.body.as_ref(),
        SetExpr::SetOperation {
            op: SetOperator::Union,
            ..
        }
    ) {
        return None;
    }
    Some(shape(q))
}

fn shape(q: &Query) -> Result<UnionShape, RewriteError> {
    if q.with.is_some() {
        return unsupported("WITH around a UNION across several shards is not supported yet");
    }
    let mut all = None;
    let mut parts = Vec::new();
    flatten(&q.body, &mut all, &mut parts)?;
    let all = all.unwrap_or(false);
    let (offset, limit) =
        myshard_router::route::offset_limit(q).map_err(RewriteError::Unsupported)?;
    let order = crate::merge::order_keys(q)?;
    let plain = all && order.is_empty();
    let mut width = None;
    let mut labels = Vec::new();
    let mut branches = Vec::new();
    for part in parts {
        let SetExpr::Select(select) = part else {
            return unsupported("a UNION branch that is not a plain SELECT");
        };
        let mut select = select.as_ref().clone();
        if select.distinct.is_some()
            || select.having.is_some()
            || !matches!(&select.group_by, sqlparser::ast::GroupByExpr::Expressions(v, _) if v.is_empty())
            || select.projection.iter().any(|i| match i {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    crate::merge::contains_aggregate(e)
                }
                _ => false,
            })
        {
            return unsupported("a UNION branch with GROUP BY, DISTINCT or aggregates across several shards is not supported yet");
        }
        let n = select.projection.len();
        if *width.get_or_insert(n) != n {
            return Err(RewriteError::UnionColumnCount);
        }
        if labels.is_empty() {
            labels = select.projection.iter().map(label).collect();
        }
        if !plain {
            // Sorting and de-duplicating compare text by collation: every branch also
            // returns each column's weight.
            let mut helpers = Vec::with_capacity(n);
            for (i, item) in select.projection.iter().enumerate() {
                let expr = match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
                    _ => return unsupported("SELECT * in a sorted or de-duplicated UNION across several shards is not supported yet"),
                };
                helpers.push(SelectItem::ExprWithAlias {
                    expr: crate::merge::collation_weight(expr),
                    alias: Ident::new(format!("__myshard_w{i}")),
                });
            }
            select.projection.extend(helpers);
        }
        branches.push(crate::render::render(&mut Statement::Query(Box::new(
            Query {
                body: Box::new(SetExpr::Select(Box::new(select))),
                order_by: None,
                limit_clause: None,
                ..q.clone()
            },
        )))?);
    }
    let width = width.unwrap_or(0);
    if plain {
        return Ok(UnionShape {
            branches,
            width,
            merge: MergeSpec::Concat { offset, limit },
        });
    }
    let mut order_by = Vec::new();
    for (e, desc) in order {
        let col = match &e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n
                    .parse::<usize>()
                    .ok()
                    .filter(|i| (1..=width).contains(i))
                    .map(|i| i - 1),
                _ => None,
            },
            Expr::Identifier(i) => labels.iter().position(|l| {
                l.as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case(&i.value))
            }),
            _ => None,
        };
        let Some(col) = col else {
            return unsupported(format!(
                "ORDER BY {e} of a UNION across several shards must name an output column or its position"
            ));
        };
        order_by.push(SortKey { col, desc });
    }
    Ok(UnionShape {
        branches,
        width,
        merge: MergeSpec::Select(Box::new(SelectMerge {
            group_by: None,
            aggregates: vec![],
            distinct: !all,
            order_by,
            offset,
            limit,
            output: (0..width).collect(),
            weights: (0..width).map(|i| (i, width + i)).collect(),
            computed: vec![],
            having: None,
            count_distinct: vec![],
            group_concat: None,
            presorted: false,
            rollup: false,
        })),
    })
}

/// Combines the branches' plans: every branch must answer with rows that need no merge of
/// their own (one target, or several concatenated without OFFSET/LIMIT).
pub fn combine(shape: UnionShape, branches: Vec<ExecPlan>) -> Result<ExecPlan, RewriteError> {
    let mut queries = Vec::new();
    let mut role = Role::Replica;
    for b in branches {
        match &b.merge {
            MergeSpec::Passthrough
            | MergeSpec::Concat {
                offset: 0,
                limit: None,
            } => {}
            _ => return unsupported(
                "a UNION branch whose rows need merging across several shards is not supported yet",
            ),
        }
        if b.role != Role::Replica {
            role = Role::Primary;
        }
        queries.extend(b.queries);
    }
    Ok(ExecPlan {
        role,
        queries,
        merge: shape.merge,
        last_insert_id: None,
        union: true,
        result_renames: Vec::new(),
    })
}
