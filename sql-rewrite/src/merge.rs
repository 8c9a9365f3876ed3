//! Rewriting a SELECT that runs on several shards so its rows can be merged exactly:
//! aggregates become partial aggregates (AVG → SUM + COUNT), group and sort keys that are not
//! in the select list become helper columns, text keys get a `WEIGHT_STRING()` helper so the
//! merger compares them by their collation, and the [`SelectMerge`] records what the merger
//! must do. Helper columns come after the client's columns and are dropped at the end.

use crate::RewriteError;
use myshard_merger::{AggFunc, Aggregate, ArithOp, CmpOp, PExpr, SelectMerge, SortKey};
use myshard_router::route::AGGREGATES;
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, GroupByWithModifier, Ident,
    LimitClause, ObjectName, OrderByKind, Query, SelectItem, SetExpr, Value,
};

/// Column references before the shard row width is known: helpers are numbered from
/// [`HIDDEN`] and resolved with [`resolve`] once the first shard answers.
pub use myshard_merger::HIDDEN;

pub(crate) fn unsupported<T>(msg: impl Into<String>) -> Result<T, RewriteError> {
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

/// What the shards return for a text key so that myshard compares it as the key's collation
/// does: `WEIGHT_STRING(IF(e = RTRIM(e), RTRIM(e), e))`. MariaDB's WEIGHT_STRING keeps
/// trailing spaces, which a PAD SPACE collation (utf8mb4_general_ci, latin1, …) ignores when
/// it compares: there `e = RTRIM(e)` holds, so the weight is taken without them ('abc ' and
/// 'ABC' weigh the same). Under a NO PAD collation, and for binary strings, the condition
/// fails exactly when trailing spaces matter, so the weight keeps them. Non-text keys never
/// use their weight.
pub(crate) fn collation_weight(e: Expr) -> Expr {
    let rtrim = func("RTRIM", e.clone());
    let same = Expr::BinaryOp {
        left: Box::new(e.clone()),
        op: sqlparser::ast::BinaryOperator::Eq,
        right: Box::new(rtrim.clone()),
    };
    func("WEIGHT_STRING", call("IF", vec![same, rtrim, e]))
}

pub(crate) fn func(name: &str, arg: Expr) -> Expr {
    call(name, vec![arg])
}

/// `name(args…)`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(sqlparser::ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
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
        "BIT_AND" => AggFunc::BitAnd,
        "BIT_OR" => AggFunc::BitOr,
        "BIT_XOR" => AggFunc::BitXor,
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
    // MIN/MAX(DISTINCT x) is MIN/MAX(x).
    if list.duplicate_treatment.is_some() && !matches!(func, AggFunc::Min | AggFunc::Max) {
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

/// `COUNT(DISTINCT x…)`, `SUM` or `AVG(DISTINCT x)` (no window): the function and `x…`.
fn distinct_aggregate(e: &Expr) -> Option<(AggFunc, Vec<Expr>)> {
    let Expr::Function(f) = e else { return None };
    if f.over.is_some() || f.filter.is_some() {
        return None;
    }
    let func = match f.name.to_string().to_ascii_uppercase().as_str() {
        "COUNT" => AggFunc::Count,
        "SUM" => AggFunc::Sum,
        "AVG" => AggFunc::Avg,
        _ => return None,
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if !matches!(
        list.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
    ) {
        return None;
    }
    let args: Option<Vec<Expr>> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => Some(arg.clone()),
            _ => None,
        })
        .collect();
    match args {
        Some(args) if args.len() == 1 || (func == AggFunc::Count && !args.is_empty()) => {
            Some((func, args))
        }
        _ => None,
    }
}

/// The aggregates over DISTINCT values of one argument list.
struct DistinctList {
    args: Vec<Expr>,
    items: Vec<(usize, AggFunc)>,
}

/// One GROUP_CONCAT call, as the merge needs it.
struct GroupConcatCall {
    distinct: bool,
    args: Vec<Expr>,
    order: Vec<(Expr, bool)>,
    separator: Vec<u8>,
}

impl GroupConcatCall {
    /// What two calls must share to be merged from the same shard rows (all but the
    /// separator).
    fn signature(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        let order: Vec<String> = self.order.iter().map(|(e, d)| format!("{e} {d}")).collect();
        format!("{}|{}|{}", self.distinct, args.join(","), order.join(","))
    }
}

/// `GROUP_CONCAT([DISTINCT] e… [ORDER BY k…] [SEPARATOR 's'])`, when `e` is one.
fn group_concat_call(e: &Expr) -> Result<Option<GroupConcatCall>, RewriteError> {
    use sqlparser::ast::{DuplicateTreatment, FunctionArgumentClause};
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    if !f.name.to_string().eq_ignore_ascii_case("GROUP_CONCAT") {
        return Ok(None);
    }
    if f.over.is_some() || f.filter.is_some() {
        return unsupported("window functions across several shards are not supported yet");
    }
    let FunctionArguments::List(list) = &f.args else {
        return unsupported("GROUP_CONCAT() needs arguments");
    };
    let mut args = Vec::new();
    for a in &list.args {
        match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => args.push(x.clone()),
            _ => return unsupported(format!("{e} across several shards is not supported yet")),
        }
    }
    let mut call = GroupConcatCall {
        distinct: matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)),
        args,
        order: Vec::new(),
        separator: b",".to_vec(),
    };
    for clause in &list.clauses {
        match clause {
            FunctionArgumentClause::OrderBy(keys) => {
                for k in keys {
                    if k.options.nulls_first.is_some() || k.with_fill.is_some() {
                        return unsupported("NULLS FIRST/LAST is not MySQL syntax");
                    }
                    let desc = matches!(k.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
                    // A number is a position in the argument list, as in MySQL.
                    let expr = match literal_u64(&k.expr) {
                        Some(n) => match call.args.get((n as usize).wrapping_sub(1)) {
                            Some(a) => a.clone(),
                            None => {
                                return unsupported(format!(
                                    "unknown column {n} in GROUP_CONCAT(… ORDER BY)"
                                ))
                            }
                        },
                        None => k.expr.clone(),
                    };
                    call.order.push((expr, desc));
                }
            }
            FunctionArgumentClause::Separator(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    call.separator = s.clone().into_bytes()
                }
                _ => return unsupported("GROUP_CONCAT(… SEPARATOR) takes a string literal"),
            },
            _ => {
                return unsupported(format!(
                    "{e} across several shards is not supported yet (only DISTINCT, ORDER BY and SEPARATOR)"
                ))
            }
        }
    }
    Ok(Some(call))
}

pub(crate) fn contains_aggregate(e: &Expr) -> bool {
    myshard_router::route::has_own_aggregate(e)
}

/// One visible select item.
struct Item {
    expr: Expr,
    alias: Option<String>,
}

/// A label as MariaDB names a column (names are utf8mb3): characters beyond the Basic
/// Multilingual Plane become `?` and NUL becomes `\x00`, as in MariaDB's own labels. Sent as
/// an alias, the label as written would be refused (1300).
fn column_name(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            '\0' => "\\x00".to_string(),
            c if u32::from(c) > 0xFFFF => "?".to_string(),
            c => c.to_string(),
        })
        .collect()
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

/// Collects helper columns and partial aggregates while translating post-merge expressions.
struct Builder<'a> {
    items: &'a [Item],
    hidden: Vec<Expr>,
    aggregates: Vec<Aggregate>,
    /// Aggregate texts already computed, and their columns.
    known_aggs: Vec<(String, usize)>,
    group_exprs: &'a [Expr],
    group_cols: Vec<usize>,
    /// The weight helpers of the DISTINCT aggregates' value columns.
    distinct_weights: Vec<(usize, usize)>,
}

impl Builder<'_> {
    fn add_hidden(&mut self, e: Expr) -> usize {
        self.hidden.push(e);
        HIDDEN + self.hidden.len() - 1
    }

    /// The column of an aggregate call the statement already computes (a select item, or a
    /// helper added before), matched by its text.
    fn known_agg(&self, e: &Expr) -> Option<usize> {
        let text = e.to_string().to_ascii_lowercase();
        self.known_aggs
            .iter()
            .find(|(t, _)| *t == text)
            .map(|(_, c)| *c)
    }

    /// The column holding the merged value of an aggregate call, adding it if needed.
    fn agg_col(&mut self, e: &Expr) -> Result<usize, RewriteError> {
        if let Some(c) = self.known_agg(e) {
            return Ok(c);
        }
        let text = e.to_string().to_ascii_lowercase();
        let Some((f, arg)) = as_aggregate(e)? else {
            return unsupported(format!("{e} is not an aggregate"));
        };
        let col = if f == AggFunc::Avg {
            let arg = arg.ok_or_else(|| RewriteError::Unsupported("AVG(*)".into()))?;
            let sum = self.add_hidden(func("SUM", arg.clone()));
            let count = self.add_hidden(func("COUNT", arg));
            self.aggregates.push(Aggregate {
                func: f,
                col: sum,
                count_col: Some(count),
            });
            sum
        } else {
            let c = self.add_hidden(e.clone());
            self.aggregates.push(Aggregate {
                func: f,
                col: c,
                count_col: None,
            });
            c
        };
        self.known_aggs.push((text, col));
        Ok(col)
    }

    /// A column reference: a select alias, a group key, a selected column, or a helper.
    fn column(&mut self, e: &Expr) -> Result<usize, RewriteError> {
        if let Expr::Identifier(id) = e {
            if let Some(i) = self.items.iter().position(|it| {
                it.alias
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(&id.value))
            }) {
                return Ok(i);
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        if let Some(gi) = self
            .group_exprs
            .iter()
            .position(|g| g.to_string().to_ascii_lowercase() == text)
        {
            return Ok(self.group_cols[gi]);
        }
        if let Some(i) = find_item(self.items, e)? {
            return Ok(i);
        }
        Ok(self.add_hidden(e.clone()))
    }

    /// Records the aggregate the client's item `col` is.
    fn register(&mut self, func: AggFunc, col: usize, count_col: Option<usize>) {
        self.aggregates.push(Aggregate {
            func,
            col,
            count_col,
        });
        self.known_aggs
            .push((self.items[col].expr.to_string().to_ascii_lowercase(), col));
    }

    /// Translates an expression evaluated after the merge.
    fn pexpr(&mut self, e: &Expr) -> Result<PExpr, RewriteError> {
        use sqlparser::ast::{BinaryOperator as B, UnaryOperator as U};
        let bx = |p: PExpr| Box::new(p);
        Ok(match e {
            Expr::Nested(x) => self.pexpr(x)?,
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n
                    .parse::<i128>()
                    .map(PExpr::Int)
                    .unwrap_or_else(|_| PExpr::Decimal(n.clone())),
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    PExpr::Str(s.clone())
                }
                Value::Null => PExpr::Null,
                Value::Boolean(b) => PExpr::Int(i128::from(*b)),
                other => {
                    return unsupported(format!(
                        "the literal {other} after a cross-shard merge is not supported yet"
                    ))
                }
            },
            Expr::Function(_) if self.known_agg(e).is_some() => {
                PExpr::Col(self.known_agg(e).unwrap_or_default())
            }
            Expr::Function(_) if as_aggregate(e)?.is_some() => PExpr::Col(self.agg_col(e)?),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => PExpr::Col(self.column(e)?),
            Expr::BinaryOp { left, op, right } => {
                let (l, r) = (self.pexpr(left)?, self.pexpr(right)?);
                match op {
                    B::Plus => PExpr::Arith(ArithOp::Add, bx(l), bx(r)),
                    B::Minus => PExpr::Arith(ArithOp::Sub, bx(l), bx(r)),
                    B::Multiply => PExpr::Arith(ArithOp::Mul, bx(l), bx(r)),
                    B::Divide => PExpr::Arith(ArithOp::Div, bx(l), bx(r)),
                    B::Eq => PExpr::Cmp(CmpOp::Eq, bx(l), bx(r)),
                    B::NotEq => PExpr::Cmp(CmpOp::Ne, bx(l), bx(r)),
                    B::Lt => PExpr::Cmp(CmpOp::Lt, bx(l), bx(r)),
                    B::LtEq => PExpr::Cmp(CmpOp::Le, bx(l), bx(r)),
                    B::Gt => PExpr::Cmp(CmpOp::Gt, bx(l), bx(r)),
                    B::GtEq => PExpr::Cmp(CmpOp::Ge, bx(l), bx(r)),
                    B::Spaceship => PExpr::Cmp(CmpOp::NullSafeEq, bx(l), bx(r)),
                    B::And => PExpr::And(bx(l), bx(r)),
                    B::Or => PExpr::Or(bx(l), bx(r)),
                    other => {
                        return unsupported(format!(
                            "the operator {other} after a cross-shard merge is not supported yet"
                        ))
                    }
                }
            }
            Expr::UnaryOp { op: U::Minus, expr } => PExpr::Neg(bx(self.pexpr(expr)?)),
            Expr::UnaryOp { op: U::Plus, expr } => self.pexpr(expr)?,
            Expr::UnaryOp { op: U::Not, expr } => PExpr::Not(bx(self.pexpr(expr)?)),
            Expr::Function(f) if contains_aggregate(e) => {
                let name = f.name.to_string();
                let args = match &f.args {
                    FunctionArguments::List(list) if list.duplicate_treatment.is_none() => list
                        .args
                        .iter()
                        .map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => self.pexpr(x),
                            _ => unsupported(format!(
                                "{e} after a cross-shard merge is not supported yet"
                            )),
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    _ => {
                        return unsupported(format!(
                            "{e} after a cross-shard merge is not supported yet"
                        ))
                    }
                };
                match myshard_merger::expr::Func::by_name(&name, args.len()) {
                    Some(func) if f.over.is_none() && f.filter.is_none() => PExpr::Func(func, args),
                    _ => {
                        return unsupported(format!(
                            "{e} after a cross-shard merge is not supported yet"
                        ))
                    }
                }
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } if contains_aggregate(e) => PExpr::Case {
                operand: match operand {
                    Some(o) => Some(bx(self.pexpr(o)?)),
                    None => None,
                },
                whens: conditions
                    .iter()
                    .map(|w| Ok((self.pexpr(&w.condition)?, self.pexpr(&w.result)?)))
                    .collect::<Result<Vec<_>, RewriteError>>()?,
                otherwise: match else_result {
                    Some(o) => Some(bx(self.pexpr(o)?)),
                    None => None,
                },
            },
            Expr::Floor {
                expr,
                field:
                    sqlparser::ast::CeilFloorKind::DateTimeField(
                        sqlparser::ast::DateTimeField::NoDateTime,
                    ),
            } if contains_aggregate(expr) => {
                PExpr::Func(myshard_merger::expr::Func::Floor, vec![self.pexpr(expr)?])
            }
            Expr::Ceil {
                expr,
                field:
                    sqlparser::ast::CeilFloorKind::DateTimeField(
                        sqlparser::ast::DateTimeField::NoDateTime,
                    ),
            } if contains_aggregate(expr) => {
                PExpr::Func(myshard_merger::expr::Func::Ceil, vec![self.pexpr(expr)?])
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } if contains_aggregate(e) => {
                let x = self.pexpr(expr)?;
                let inside = PExpr::And(
                    bx(PExpr::Cmp(CmpOp::Ge, bx(x.clone()), bx(self.pexpr(low)?))),
                    bx(PExpr::Cmp(CmpOp::Le, bx(x), bx(self.pexpr(high)?))),
                );
                if *negated {
                    PExpr::Not(bx(inside))
                } else {
                    inside
                }
            }
            Expr::InList {
                expr,
                list,
                negated,
            } if contains_aggregate(e) && !list.is_empty() => {
                let x = self.pexpr(expr)?;
                let mut any: Option<PExpr> = None;
                for item in list {
                    let eq = PExpr::Cmp(CmpOp::Eq, bx(x.clone()), bx(self.pexpr(item)?));
                    any = Some(match any {
                        None => eq,
                        Some(prev) => PExpr::Or(bx(prev), bx(eq)),
                    });
                }
                let any = any.unwrap_or(PExpr::Null);
                if *negated {
                    PExpr::Not(bx(any))
                } else {
                    any
                }
            }
            Expr::Substring {
                expr,
                substring_from: Some(from),
                substring_for,
                ..
            } if contains_aggregate(e) => {
                let mut args = vec![self.pexpr(expr)?, self.pexpr(from)?];
                if let Some(n) = substring_for {
                    args.push(self.pexpr(n)?);
                }
                PExpr::Func(myshard_merger::expr::Func::Substring, args)
            }
            Expr::Trim {
                expr,
                trim_where: None,
                trim_what: None,
                trim_characters: None,
            } if contains_aggregate(e) => {
                PExpr::Func(myshard_merger::expr::Func::Trim, vec![self.pexpr(expr)?])
            }
            Expr::IsNull(x) => PExpr::IsNull(bx(self.pexpr(x)?), false),
            Expr::IsNotNull(x) => PExpr::IsNull(bx(self.pexpr(x)?), true),
            other if !contains_aggregate(other) => PExpr::Col(self.column(other)?),
            other => {
                return unsupported(format!(
                    "{other} after a cross-shard merge is not supported yet"
                ))
            }
        })
    }
}

/// The ORDER BY keys of a query and whether each is descending; forms MySQL does not have
/// are refused rather than ignored.
pub(crate) fn order_keys(q: &Query) -> Result<Vec<(Expr, bool)>, RewriteError> {
    let Some(ob) = &q.order_by else {
        return Ok(vec![]);
    };
    match &ob.kind {
        OrderByKind::Expressions(v) => {
            let mut out = Vec::new();
            for o in v {
                if o.options.nulls_first.is_some() || o.with_fill.is_some() {
                    return unsupported("NULLS FIRST/LAST is not MySQL syntax");
                }
                let desc = matches!(o.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
                out.push((o.expr.clone(), desc));
            }
            Ok(out)
        }
        OrderByKind::All(_) => unsupported("ORDER BY ALL is not MySQL syntax"),
    }
}

/// Rewrites `q` (the statement every shard runs) and returns how to merge the answers.
/// `labels` are the select items as the client wrote them (column names of the result).
pub fn plan_merge(q: &mut Query, labels: Option<Vec<String>>) -> Result<SelectMerge, RewriteError> {
    let (offset, limit) =
        myshard_router::route::offset_limit(q).map_err(RewriteError::Unsupported)?;
    let order = order_keys(q)?;
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
    // WITH ROLLUP: the shards group without it; the merger adds the super-aggregate rows.
    let mut rollup = false;
    let group_exprs: Vec<Expr> = match &mut select.group_by {
        GroupByExpr::Expressions(v, modifiers) => {
            match modifiers.as_slice() {
                [] => {}
                [GroupByWithModifier::Rollup] if !v.is_empty() => {
                    rollup = true;
                    modifiers.clear();
                }
                _ => return unsupported("this GROUP BY modifier is not MySQL syntax"),
            }
            v.clone()
        }
        GroupByExpr::All(_) => return unsupported("GROUP BY ALL is not MySQL syntax"),
    };
    let mut aggs: Vec<(usize, AggFunc, Option<Expr>)> = Vec::new();
    let mut computed_items: Vec<usize> = Vec::new();
    // COUNT/SUM/AVG(DISTINCT x…) items by argument list: the shards group by every x too.
    let mut distinct_lists: Vec<DistinctList> = Vec::new();
    let mut distinct_items: Vec<(usize, AggFunc)> = Vec::new();
    // GROUP_CONCAT items (all over the same values and order): the shards group by those too.
    let mut gc_items: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut gc_call: Option<GroupConcatCall> = None;
    for (i, it) in items.iter().enumerate() {
        if let Some(call) = group_concat_call(&it.expr)? {
            if gc_call
                .as_ref()
                .is_some_and(|c| c.signature() != call.signature())
            {
                return unsupported("GROUP_CONCAT() calls over different values or orders in one statement across several shards are not supported yet");
            }
            gc_items.push((i, call.separator.clone()));
            gc_call = Some(call);
            continue;
        }
        if let Some((f, args)) = distinct_aggregate(&it.expr) {
            let text = |a: &[Expr]| a.iter().map(|e| e.to_string()).collect::<Vec<_>>();
            match distinct_lists
                .iter_mut()
                .find(|l| text(&l.args) == text(&args))
            {
                Some(l) => l.items.push((i, f)),
                None => distinct_lists.push(DistinctList {
                    args,
                    items: vec![(i, f)],
                }),
            }
            distinct_items.push((i, f));
            continue;
        }
        match as_aggregate(&it.expr)? {
            Some((f, arg)) => aggs.push((i, f, arg)),
            None if contains_aggregate(&it.expr) => computed_items.push(i),
            None => {}
        }
    }
    if !distinct_lists.is_empty() && gc_call.is_some() {
        return unsupported("GROUP_CONCAT() beside aggregates over DISTINCT values across several shards is not supported yet");
    }
    let having = select.having.clone();
    // HAVING without grouping or aggregates filters rows like WHERE: it stays on the shards.
    let having_groups = having.as_ref().is_some_and(contains_aggregate);
    let grouped = !group_exprs.is_empty()
        || !aggs.is_empty()
        || !distinct_items.is_empty()
        || !gc_items.is_empty()
        || !computed_items.is_empty()
        || having_groups;
    let having = having.filter(|_| grouped);
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
    let mut b = Builder {
        items: &original,
        hidden: Vec::new(),
        aggregates: Vec::new(),
        known_aggs: Vec::new(),
        group_exprs: &group_exprs,
        group_cols: Vec::new(),
        distinct_weights: Vec::new(),
    };
    // Partial aggregates: AVG(x) → SUM(x) in place, COUNT(x) as a helper.
    for (i, f, arg) in &aggs {
        let mut count_col = None;
        if *f == AggFunc::Avg {
            let arg = arg
                .clone()
                .ok_or_else(|| RewriteError::Unsupported("AVG(*)".into()))?;
            items[*i].expr = func("SUM", arg.clone());
            count_col = Some(b.add_hidden(func("COUNT", arg)));
        }
        b.register(*f, *i, count_col);
    }
    let mut count_distinct = Vec::new();
    for list in &distinct_lists {
        let mut cd = myshard_merger::CountDistinct::default();
        let first = &list.args[0];
        for (i, f) in &list.items {
            // Each item carries x itself; the merge de-duplicates (group, x…) and turns it
            // into 1 (COUNT), keeps it (SUM), or keeps it with a count of 1 beside it (AVG).
            items[*i].expr = first.clone();
            let mut count_col = None;
            match f {
                AggFunc::Count => cd.counts.push(*i),
                AggFunc::Sum => cd.sums.push(*i),
                _ => {
                    let c = b.add_hidden(Expr::value(Value::Number("1".into(), false)));
                    cd.avg_counts.push(c);
                    cd.sums.push(*i);
                    count_col = Some(c);
                }
            }
            b.register(*f, *i, count_col);
        }
        cd.values.push(list.items[0].0);
        for arg in &list.args[1..] {
            cd.values.push(b.add_hidden(arg.clone()));
        }
        for (v, arg) in cd.values.clone().into_iter().zip(&list.args) {
            let w = b.add_hidden(collation_weight(arg.clone()));
            b.distinct_weights.push((v, w));
        }
        count_distinct.push(cd);
    }
    // GROUP_CONCAT: each shard returns, per (group, values, order keys), its piece of the
    // call with the values and keys beside it (text ones with their collation weights).
    let mut gc_weights: Vec<(usize, usize)> = Vec::new();
    let group_concat = match &gc_call {
        Some(call) => {
            for (i, _) in &gc_items {
                b.register(AggFunc::GroupConcat, *i, None);
            }
            let mut keyed = |e: &Expr, b: &mut Builder| {
                let col = b.add_hidden(e.clone());
                let w = b.add_hidden(collation_weight(e.clone()));
                gc_weights.push((col, w));
                col
            };
            let values = call.args.iter().map(|a| keyed(a, &mut b)).collect();
            let order = call
                .order
                .iter()
                .map(|(k, desc)| SortKey {
                    col: keyed(k, &mut b),
                    desc: *desc,
                })
                .collect();
            let max_len = b.add_hidden(Expr::Identifier(Ident::new("@@group_concat_max_len")));
            Some(myshard_merger::GroupConcat {
                columns: gc_items.clone(),
                values,
                order,
                distinct: call.distinct,
                max_len,
            })
        }
        None => None,
    };
    // Group keys.
    for g in &group_exprs {
        let col = match find_item(&original, g)? {
            Some(i) if as_aggregate(&original[i].expr)?.is_some() => {
                return unsupported("GROUP BY an aggregate")
            }
            Some(i) => i,
            None => b.add_hidden(g.clone()),
        };
        b.group_cols.push(col);
    }
    if rollup {
        if !order.is_empty() {
            return unsupported(
                "ORDER BY with GROUP BY … WITH ROLLUP is not supported (MariaDB refuses it too)",
            );
        }
        if distinct || !distinct_lists.is_empty() || gc_call.is_some() {
            return unsupported("WITH ROLLUP beside DISTINCT, aggregates over DISTINCT values or GROUP_CONCAT across several shards is not supported yet");
        }
        let plain = (0..items.len()).find(|i| {
            !b.group_cols.contains(i)
                && !aggs.iter().any(|(a, _, _)| a == i)
                && !computed_items.contains(i)
        });
        if let Some(i) = plain {
            return unsupported(format!(
                "with WITH ROLLUP across several shards every select item must be a GROUP BY column or use aggregates; `{}` is neither",
                original[i].expr
            ));
        }
    }
    // Select items built from aggregates, and HAVING, are evaluated after the merge.
    let mut computed = Vec::new();
    for i in &computed_items {
        computed.push((*i, b.pexpr(&original[*i].expr)?));
    }
    let having = match &having {
        Some(h) => Some(b.pexpr(h)?),
        None => None,
    };
    // Sort keys.
    let mut order_keys = Vec::new();
    for (e, desc) in &order {
        let col =
            match find_item(&original, e)? {
                Some(i) if gc_items.iter().any(|(g, _)| *g == i) => return unsupported(
                    "ORDER BY a GROUP_CONCAT() result across several shards is not supported yet",
                ),
                Some(i) => i,
                None if grouped => {
                    if let Some(gi) = group_exprs
                        .iter()
                        .position(|g| g.to_string().eq_ignore_ascii_case(&e.to_string()))
                    {
                        b.group_cols[gi]
                    } else if as_aggregate(e)?.is_some() {
                        b.agg_col(e)?
                    } else if contains_aggregate(e) {
                        let p = b.pexpr(e)?;
                        let c = b.add_hidden(e.clone());
                        computed.push((c, p));
                        c
                    } else {
                        b.add_hidden(e.clone())
                    }
                }
                None if distinct => {
                    return unsupported("ORDER BY a column that SELECT DISTINCT does not return")
                }
                None => b.add_hidden(e.clone()),
            };
        order_keys.push(SortKey { col, desc: *desc });
    }
    let group_cols = b.group_cols.clone();
    let aggregates = b.aggregates.clone();
    let mut hidden = std::mem::take(&mut b.hidden);
    let mut weights: Vec<(usize, usize)> = std::mem::take(&mut b.distinct_weights);
    weights.extend(gc_weights);
    let add_hidden = |e: Expr, hidden: &mut Vec<Expr>| -> usize {
        hidden.push(e);
        HIDDEN + hidden.len() - 1
    };
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
        if aggregates.iter().any(|a| a.col == col) || computed.iter().any(|(c, _)| *c == col) {
            continue;
        }
        let w = add_hidden(collation_weight(expr), &mut hidden);
        weights.push((col, w));
    }
    // MIN/MAX of text merge by collation: each shard also returns its winner's weight.
    for agg in aggregates
        .iter()
        .filter(|a| matches!(a.func, AggFunc::Min | AggFunc::Max))
    {
        if weights.iter().any(|(c, _)| *c == agg.col) {
            continue;
        }
        let expr = if agg.col >= HIDDEN {
            hidden.get(agg.col - HIDDEN).cloned()
        } else {
            items.get(agg.col).map(|i| i.expr.clone())
        };
        if let Some(expr) = expr {
            let w = add_hidden(collation_weight(expr), &mut hidden);
            weights.push((agg.col, w));
        }
    }
    // The shards' select list: the client's items (labelled as the client wrote them), then
    // the helpers.
    let labels = labels.filter(|l| l.len() == select.projection.len() && !wildcard);
    let mut projection = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let simple = matches!(it.expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        let label = it.alias.clone().or_else(|| {
            (!simple
                || aggs.iter().any(|(a, _, _)| *a == i)
                || distinct_items.iter().any(|(a, _)| *a == i))
            .then(|| {
                labels
                    .as_ref()
                    .and_then(|l| l.get(i).cloned())
                    .unwrap_or_else(|| it.expr.to_string())
            })
        });
        projection.push(match label {
            Some(l) => SelectItem::ExprWithAlias {
                expr: it.expr.clone(),
                alias: Ident::with_quote('`', column_name(&l)),
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
    // COUNT(DISTINCT x…): each shard returns its distinct x… per group (a literal is
    // constant, and a number would be read as a position).
    if let GroupByExpr::Expressions(v, _) = &mut select.group_by {
        for arg in distinct_lists.iter().flat_map(|l| &l.args) {
            let text = arg.to_string();
            if !matches!(arg, Expr::Value(_)) && !v.iter().any(|g| g.to_string() == text) {
                v.push(arg.clone());
            }
        }
    }
    // GROUP_CONCAT: each shard returns one piece per (group, values, order keys).
    if let Some(call) = &gc_call {
        if let GroupByExpr::Expressions(v, _) = &mut select.group_by {
            for e in call.args.iter().chain(call.order.iter().map(|(k, _)| k)) {
                // A literal is constant (and a number would be read as a position).
                if matches!(e, Expr::Value(_)) {
                    continue;
                }
                let text = e.to_string();
                if !v.iter().any(|g| g.to_string() == text) {
                    v.push(e.clone());
                }
            }
        }
    }
    // HAVING applies to whole groups: after the merge, never per shard.
    if grouped {
        select.having = None;
    }
    let hidden_count = hidden.len();
    // Groups can be merged as they stream in when every shard sends them sorted by the group
    // key, and the result is wanted in that order (no ORDER BY, or ORDER BY the group keys).
    let stream_groups = grouped
        && !rollup
        && !group_exprs.is_empty()
        && distinct_lists.is_empty()
        && gc_call.is_none()
        && (order_keys.is_empty()
            || (order_keys.len() == group_cols.len()
                && order_keys
                    .iter()
                    .zip(&group_cols)
                    .all(|(k, g)| !k.desc && k.col == *g)));
    // Grouped queries need every group from every shard; plain sorted reads keep their
    // ORDER BY and fetch at most OFFSET+LIMIT rows per shard.
    if grouped {
        q.order_by = stream_groups.then(|| sqlparser::ast::OrderBy {
            kind: OrderByKind::Expressions(
                group_exprs
                    .iter()
                    .map(|g| sqlparser::ast::OrderByExpr {
                        expr: g.clone(),
                        options: sqlparser::ast::OrderByOptions {
                            sort: None,
                            nulls_first: None,
                        },
                        with_fill: None,
                    })
                    .collect(),
            ),
            interpolate: None,
        });
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
        count_distinct,
        group_concat,
        // Reads without grouping keep their ORDER BY on the shards; groups that stream are
        // sorted by their key there.
        presorted: !grouped || stream_groups,
        rollup,
        computed,
        having,
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
        count_distinct: spec
            .count_distinct
            .iter()
            .map(|cd| myshard_merger::CountDistinct {
                values: cd.values.iter().map(|c| fix(*c)).collect(),
                counts: cd.counts.iter().map(|c| fix(*c)).collect(),
                sums: cd.sums.iter().map(|c| fix(*c)).collect(),
                avg_counts: cd.avg_counts.iter().map(|c| fix(*c)).collect(),
            })
            .collect(),
        group_concat: spec
            .group_concat
            .as_ref()
            .map(|g| myshard_merger::GroupConcat {
                columns: g
                    .columns
                    .iter()
                    .map(|(c, s)| (fix(*c), s.clone()))
                    .collect(),
                values: g.values.iter().map(|c| fix(*c)).collect(),
                order: g
                    .order
                    .iter()
                    .map(|k| SortKey {
                        col: fix(k.col),
                        desc: k.desc,
                    })
                    .collect(),
                distinct: g.distinct,
                max_len: fix(g.max_len),
            }),
        computed: spec
            .computed
            .iter()
            .map(|(c, e)| (fix(*c), e.map_cols(&fix)))
            .collect(),
        having: spec.having.as_ref().map(|h| h.map_cols(&fix)),
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
        presorted: spec.presorted,
        rollup: spec.rollup,
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
    if let Some(g) = &spec.group_concat {
        g.values.iter().for_each(|c| see(*c));
        g.order.iter().for_each(|k| see(k.col));
        see(g.max_len);
    }
    for (c, w) in &spec.weights {
        see(*c);
        see(*w);
    }
    let mut read = Vec::new();
    for (c, e) in &spec.computed {
        see(*c);
        e.cols(&mut read);
    }
    if let Some(h) = &spec.having {
        h.cols(&mut read);
    }
    read.into_iter().for_each(&mut see);
    max.unwrap_or(0)
}
