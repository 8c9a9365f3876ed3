//! Rewriting a SELECT that runs on several shards so its rows can be merged exactly:
//! aggregates become partial aggregates (AVG → SUM + COUNT), group and sort keys that are not
//! in the select list become helper columns, text keys get a `WEIGHT_STRING()` helper so the
//! merger compares them by their collation, and the [`SelectMerge`] records what the merger
//! must do. Helper columns come after the client's columns and are dropped at the end.

use crate::RewriteError;
use myshard_merger::{AggFunc, Aggregate, SelectMerge, SortKey};
use myshard_router::route::AGGREGATES;
use sqlparser::ast::{
    visit_expressions, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    LimitClause, ObjectName, OrderByKind, Query, SelectItem, SetExpr, Value,
};
use std::ops::ControlFlow;

/// Column references before the shard row width is known: helpers are numbered from
/// [`HIDDEN`] and resolved with [`resolve`] once the first shard answers.
pub const HIDDEN: usize = 1 << 20;

fn unsupported<T>(msg: impl Into<String>) -> Result<T, RewriteError> {
    Err(RewriteError::Unsupported(msg.into()))
}

fn literal_u64(e: &Expr) -> Option<u64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn func(name: &str, arg: Expr) -> Expr {
    Expr::Function(sqlparser::ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// The aggregate an expression is, when it is exactly one call of COUNT/SUM/MIN/MAX/AVG.
fn as_aggregate(e: &Expr) -> Result<Option<(AggFunc, Option<Expr>)>, RewriteError> {
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    let name = f.name.to_string().to_ascii_uppercase();
    let func = match name.as_str() {
        "COUNT" => AggFunc::Count,
        "SUM" => AggFunc::Sum,
        "MIN" => AggFunc::Min,
        "MAX" => AggFunc::Max,
        "AVG" => AggFunc::Avg,
        other if AGGREGATES.contains(&other) => {
            return unsupported(format!(
                "{other}() across several shards is not supported yet"
            ))
        }
        _ => return Ok(None),
    };
    if f.over.is_some() || f.filter.is_some() {
        return unsupported("window functions across several shards are not supported yet");
    }
    let FunctionArguments::List(list) = &f.args else {
        return unsupported(format!("{name}() without arguments"));
    };
    if list.duplicate_treatment.is_some() {
        return unsupported(format!(
            "{name}(DISTINCT …) across several shards is not supported yet"
        ));
    }
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if func == AggFunc::Count => {
            Ok(Some((func, None)))
        }
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => Ok(Some((func, Some(arg.clone())))),
        _ => unsupported(format!(
            "{name}() with these arguments across several shards is not supported yet"
        )),
    }
}

fn contains_aggregate(e: &Expr) -> bool {
    visit_expressions(e, |x| match x {
        Expr::Function(f)
            if AGGREGATES.contains(&f.name.to_string().to_ascii_uppercase().as_str())
                || f.over.is_some() =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// One visible select item.
struct Item {
    expr: Expr,
    alias: Option<String>,
}

/// Finds the visible item an ORDER BY / GROUP BY expression refers to: an ordinal, an alias,
/// or the same expression.
fn find_item(items: &[Item], e: &Expr) -> Result<Option<usize>, RewriteError> {
    if let Some(n) = literal_u64(e) {
        if n == 0 || n as usize > items.len() {
            return unsupported(format!("unknown column {n} in ORDER BY/GROUP BY"));
        }
        return Ok(Some(n as usize - 1));
    }
    if let Expr::Identifier(id) = e {
        if let Some(i) = items.iter().position(|it| {
            it.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&id.value))
        }) {
            return Ok(Some(i));
        }
    }
    let text = e.to_string().to_ascii_lowercase();
    let same = |x: &Expr| {
        let t = x.to_string().to_ascii_lowercase();
        t == text
            || match (x, e) {
                // `t.col` and `col` name the same column when unambiguous.
                (Expr::CompoundIdentifier(p), Expr::Identifier(i))
                | (Expr::Identifier(i), Expr::CompoundIdentifier(p)) => p
                    .last()
                    .is_some_and(|l| l.value.eq_ignore_ascii_case(&i.value)),
                _ => false,
            }
    };
    Ok(items.iter().position(|it| same(&it.expr)))
}

/// Rewrites `q` (the statement every shard runs) and returns how to merge the answers.
/// `labels` are the select items as the client wrote them (column names of the result).
pub fn plan_merge(q: &mut Query, labels: Option<Vec<String>>) -> Result<SelectMerge, RewriteError> {
    let (offset, limit) = match &q.limit_clause {
        None => (0, None),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) if limit_by.is_empty() => (
            match offset {
                Some(o) => literal_u64(&o.value)
                    .ok_or_else(|| RewriteError::Unsupported("OFFSET must be a number".into()))?,
                None => 0,
            },
            match limit {
                Some(l) => {
                    Some(literal_u64(l).ok_or_else(|| {
                        RewriteError::Unsupported("LIMIT must be a number".into())
                    })?)
                }
                None => None,
            },
        ),
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => (
            literal_u64(offset)
                .ok_or_else(|| RewriteError::Unsupported("OFFSET must be a number".into()))?,
            Some(
                literal_u64(limit)
                    .ok_or_else(|| RewriteError::Unsupported("LIMIT must be a number".into()))?,
            ),
        ),
        Some(_) => return unsupported("this LIMIT form is not supported across shards"),
    };
    let order: Vec<(Expr, bool)> = match &q.order_by {
        None => vec![],
        Some(ob) => match &ob.kind {
            OrderByKind::Expressions(v) => {
                let mut out = Vec::new();
                for o in v {
                    if o.options.nulls_first.is_some() || o.with_fill.is_some() {
                        return unsupported("NULLS FIRST/LAST is not MySQL syntax");
                    }
                    let desc = matches!(o.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
                    out.push((o.expr.clone(), desc));
                }
                out
            }
            OrderByKind::All(_) => return unsupported("ORDER BY ALL is not MySQL syntax"),
        },
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return unsupported("only a plain SELECT can be merged across shards");
    };
    // The client's items.
    let mut items: Vec<Item> = Vec::new();
    let mut wildcard = false;
    for it in &select.projection {
        match it {
            SelectItem::UnnamedExpr(e) => items.push(Item {
                expr: e.clone(),
                alias: None,
            }),
            SelectItem::ExprWithAlias { expr, alias } => items.push(Item {
                expr: expr.clone(),
                alias: Some(alias.value.clone()),
            }),
            _ => wildcard = true,
        }
    }
    let group_exprs: Vec<Expr> = match &select.group_by {
        GroupByExpr::Expressions(v, modifiers) => {
            if !modifiers.is_empty() {
                return unsupported(
                    "GROUP BY … WITH ROLLUP across several shards is not supported yet",
                );
            }
            v.clone()
        }
        GroupByExpr::All(_) => return unsupported("GROUP BY ALL is not MySQL syntax"),
    };
    let mut aggs: Vec<(usize, AggFunc, Option<Expr>)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        match as_aggregate(&it.expr)? {
            Some((f, arg)) => aggs.push((i, f, arg)),
            None if contains_aggregate(&it.expr) => {
                return unsupported("expressions over aggregates across several shards are not supported yet (select the aggregates themselves)")
            }
            None => {}
        }
    }
    let grouped = !group_exprs.is_empty() || !aggs.is_empty();
    let original: Vec<Item> = items
        .iter()
        .map(|i| Item {
            expr: i.expr.clone(),
            alias: i.alias.clone(),
        })
        .collect();
    let distinct = select.distinct.is_some();
    if wildcard && (grouped || distinct) {
        return unsupported("SELECT * with GROUP BY, aggregates or DISTINCT across several shards is not supported yet");
    }
    if distinct && grouped {
        return unsupported("SELECT DISTINCT with GROUP BY or aggregates across several shards is not supported yet");
    }
    let mut hidden: Vec<Expr> = Vec::new();
    let mut weights: Vec<(usize, usize)> = Vec::new();
    let add_hidden = |e: Expr, hidden: &mut Vec<Expr>| -> usize {
        hidden.push(e);
        HIDDEN + hidden.len() - 1
    };
    // Partial aggregates: AVG(x) → SUM(x) in place, COUNT(x) as a helper.
    let mut aggregates = Vec::new();
    for (i, f, arg) in &aggs {
        let mut count_col = None;
        if *f == AggFunc::Avg {
            let arg = arg
                .clone()
                .ok_or_else(|| RewriteError::Unsupported("AVG(*)".into()))?;
            items[*i].expr = func("SUM", arg.clone());
            count_col = Some(add_hidden(func("COUNT", arg), &mut hidden));
        }
        aggregates.push(Aggregate {
            func: *f,
            col: *i,
            count_col,
        });
    }
    // Group keys.
    let mut group_cols = Vec::new();
    for g in &group_exprs {
        let col = match find_item(&original, g)? {
            Some(i) if as_aggregate(&original[i].expr)?.is_some() => {
                return unsupported("GROUP BY an aggregate")
            }
            Some(i) => i,
            None => add_hidden(g.clone(), &mut hidden),
        };
        group_cols.push(col);
    }
    // Sort keys.
    let mut order_keys = Vec::new();
    for (e, desc) in &order {
        let col = match find_item(&original, e)? {
            Some(i) => i,
            None if grouped => {
                if let Some(gi) = group_exprs
                    .iter()
                    .position(|g| g.to_string().eq_ignore_ascii_case(&e.to_string()))
                {
                    group_cols[gi]
                } else {
                    return unsupported(format!(
                        "ORDER BY {e} across several shards must name a selected column, a group key or a selected aggregate"
                    ));
                }
            }
            None if distinct => {
                return unsupported("ORDER BY a column that SELECT DISTINCT does not return")
            }
            None => add_hidden(e.clone(), &mut hidden),
        };
        order_keys.push(SortKey { col, desc: *desc });
    }
    // Text keys compare by their collation weights.
    let mut key_cols: Vec<usize> = group_cols.clone();
    key_cols.extend(order_keys.iter().map(|k| k.col));
    if distinct {
        key_cols.extend(0..items.len());
    }
    key_cols.sort_unstable();
    key_cols.dedup();
    for col in key_cols {
        let expr = if col >= HIDDEN {
            hidden[col - HIDDEN].clone()
        } else {
            items[col].expr.clone()
        };
        if aggs.iter().any(|(i, _, _)| *i == col) {
            continue;
        }
        let w = add_hidden(func("WEIGHT_STRING", expr), &mut hidden);
        weights.push((col, w));
    }
    // The shards' select list: the client's items (labelled as the client wrote them), then
    // the helpers.
    let labels = labels.filter(|l| l.len() == select.projection.len() && !wildcard);
    let mut projection = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let simple = matches!(it.expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        let label = it.alias.clone().or_else(|| {
            (!simple || aggs.iter().any(|(a, f, _)| *a == i && *f == AggFunc::Avg)).then(|| {
                labels
                    .as_ref()
                    .and_then(|l| l.get(i).cloned())
                    .unwrap_or_else(|| it.expr.to_string())
            })
        });
        projection.push(match label {
            Some(l) => SelectItem::ExprWithAlias {
                expr: it.expr.clone(),
                alias: Ident::with_quote('`', l),
            },
            None => SelectItem::UnnamedExpr(it.expr.clone()),
        });
    }
    if wildcard {
        projection = select.projection.clone();
    }
    for (n, h) in hidden.iter().enumerate() {
        projection.push(SelectItem::ExprWithAlias {
            expr: h.clone(),
            alias: Ident::new(format!("__myshard_{n}")),
        });
    }
    select.projection = projection;
    let hidden_count = hidden.len();
    // Grouped queries need every group from every shard; plain sorted reads keep their
    // ORDER BY and fetch at most OFFSET+LIMIT rows per shard.
    if grouped {
        q.order_by = None;
        q.limit_clause = None;
    } else {
        q.limit_clause = limit.map(|l| LimitClause::LimitOffset {
            limit: Some(Expr::value(Value::Number(
                l.saturating_add(offset).to_string(),
                false,
            ))),
            offset: None,
            limit_by: vec![],
        });
        if let Some(ob) = q.order_by.as_mut() {
            if let OrderByKind::Expressions(v) = &mut ob.kind {
                // Aliases and ordinals work on the shards too; nothing to change.
                let _ = v;
            }
        }
    }
    let visible = if wildcard { None } else { Some(items.len()) };
    let _ = hidden_count;
    Ok(SelectMerge {
        group_by: grouped.then_some(group_cols),
        aggregates,
        distinct,
        order_by: if order_keys.is_empty() && grouped {
            // MariaDB returns groups in group-key order when there is no ORDER BY.
            Vec::new()
        } else {
            order_keys
        },
        offset,
        limit,
        output: match visible {
            Some(n) => (0..n).collect(),
            None => Vec::new(),
        },
        weights,
    })
}

/// Resolves helper-column references now that the shards' row width is known; an empty
/// output means "every column but the helpers".
pub fn resolve(spec: &SelectMerge, width: usize, hidden: usize) -> SelectMerge {
    let base = width.saturating_sub(hidden);
    let fix = |c: usize| if c >= HIDDEN { base + (c - HIDDEN) } else { c };
    SelectMerge {
        group_by: spec
            .group_by
            .as_ref()
            .map(|g| g.iter().map(|c| fix(*c)).collect()),
        aggregates: spec
            .aggregates
            .iter()
            .map(|a| Aggregate {
                func: a.func,
                col: fix(a.col),
                count_col: a.count_col.map(fix),
            })
            .collect(),
        distinct: spec.distinct,
        order_by: spec
            .order_by
            .iter()
            .map(|k| SortKey {
                col: fix(k.col),
                desc: k.desc,
            })
            .collect(),
        offset: spec.offset,
        limit: spec.limit,
        output: if spec.output.is_empty() {
            (0..base).collect()
        } else {
            spec.output.iter().map(|c| fix(*c)).collect()
        },
        weights: spec
            .weights
            .iter()
            .map(|(c, w)| (fix(*c), fix(*w)))
            .collect(),
    }
}

/// How many helper columns a merge spec references.
pub fn hidden_count(spec: &SelectMerge) -> usize {
    let mut max = None;
    let mut see = |c: usize| {
        if c >= HIDDEN {
            max = Some(max.unwrap_or(0).max(c - HIDDEN + 1));
        }
    };
    spec.group_by.iter().flatten().for_each(|c| see(*c));
    for a in &spec.aggregates {
        see(a.col);
        a.count_col.into_iter().for_each(&mut see);
    }
    spec.order_by.iter().for_each(|k| see(k.col));
    for (c, w) in &spec.weights {
        see(*c);
        see(*w);
    }
    max.unwrap_or(0)
}
