//! Uncorrelated subqueries and derived tables over sharded tables, taken out of a statement
//! and put back as literals once they ran by themselves: `IN (…)` lists, scalars, TRUE/FALSE
//! for EXISTS, derived tables of `SELECT … UNION ALL SELECT …` rows. Only the outermost
//! subqueries are taken; the ones nested inside them are handled when those run.

use crate::RewriteError;
use myshard_router::text::quote_ident;
use sqlparser::ast::{Expr, Query, Statement, TableFactor, Visit, VisitMut, Visitor, VisitorMut};
use std::ops::ControlFlow;

/// An outermost subquery of a statement, with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subquery {
    /// `x [NOT] IN (subquery)`.
    In(String),
    /// A scalar subquery.
    Scalar(String),
    /// `[NOT] EXISTS (subquery)`.
    Exists(String),
    /// A derived table in FROM.
    Derived(String),
    /// The SELECT of an `INSERT … SELECT`: its rows become the INSERT's VALUES.
    Rows(String),
}

impl Subquery {
    /// The subquery's own statement text.
    pub fn sql(&self) -> &str {
        match self {
            Subquery::In(q)
            | Subquery::Scalar(q)
            | Subquery::Exists(q)
            | Subquery::Derived(q)
            | Subquery::Rows(q) => q,
        }
    }
}

/// A subquery's result, as SQL literals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The values of an `IN (subquery)`.
    List(Vec<String>),
    /// A scalar subquery's value (NULL when it found no row).
    Scalar(String),
    /// Whether an `EXISTS (subquery)` found rows.
    Exists(bool),
    /// A derived table: its columns and rows.
    Derived(Vec<DerivedColumn>, Vec<Vec<String>>),
    /// A correlated subquery: it stays, evaluated with the outer statement on each shard,
    /// with its tables (by qualifier) replaced by their rows (each an [`Answer::Derived`]).
    Correlated(Vec<(String, Answer)>),
}

/// A column of a materialized derived table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedColumn {
    /// Its name.
    pub name: String,
    /// How to give the literal rows the column's type back (`{}` stands for the column), as
    /// in `CAST({} AS DATE)`; literals alone would type a NULL or a date as a string.
    pub cast: Option<String>,
}

impl DerivedColumn {
    /// A column typed by its literals.
    pub fn untyped(name: &str) -> Self {
        DerivedColumn {
            name: name.to_string(),
            cast: None,
        }
    }
}

/// Finds the outermost subqueries (those of the top-level query).
struct Finder {
    depth: usize,
    found: Vec<Subquery>,
    failed: Option<RewriteError>,
}

impl Finder {
    fn text(&mut self, q: &Query) -> Option<String> {
        match crate::render::render(&mut q.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }
}

impl Visitor for Finder {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.depth == 1 {
            let is_query = |x: &Expr| matches!(x, Expr::Subquery(_));
            match e {
                // Quantified (`> ALL (…)`) and row (`(a, b) IN (…)`) subqueries have no
                // literal form here: the statement stays refused.
                Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } if is_query(right) => {
                    return ControlFlow::Break(())
                }
                Expr::InSubquery { expr, .. } if matches!(**expr, Expr::Tuple(_)) => {
                    return ControlFlow::Break(())
                }
                Expr::BinaryOp { left, right, .. }
                    if (matches!(**left, Expr::Tuple(_)) && is_query(right))
                        || (is_query(left) && matches!(**right, Expr::Tuple(_))) =>
                {
                    return ControlFlow::Break(())
                }
                Expr::InSubquery { subquery, .. } => {
                    let Some(t) = self.text(subquery) else {
                        return ControlFlow::Break(());
                    };
                    self.found.push(Subquery::In(t))
                }
                Expr::Subquery(q) => {
                    let Some(t) = self.text(q) else {
                        return ControlFlow::Break(());
                    };
                    self.found.push(Subquery::Scalar(t))
                }
                Expr::Exists { subquery, .. } => {
                    let Some(t) = self.text(subquery) else {
                        return ControlFlow::Break(());
                    };
                    self.found.push(Subquery::Exists(t))
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if self.depth == 1 {
            if let TableFactor::Derived { subquery, .. } = t {
                let Some(text) = self.text(subquery) else {
                    return ControlFlow::Break(());
                };
                self.found.push(Subquery::Derived(text));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Replaces the outermost subqueries, in the order the finder met them.
struct Replacer {
    depth: usize,
    with: std::vec::IntoIter<Replacement>,
}

enum Replacement {
    /// The values of an `IN (subquery)`.
    List(Vec<Expr>),
    /// A scalar subquery's value.
    Expr(Box<Expr>),
    /// Whether an `EXISTS (subquery)` found rows.
    Exists(bool),
    /// A derived table's rows.
    Derived(Box<Query>),
    /// A correlated subquery's tables, by qualifier, as literal rows.
    Inline(Vec<(String, Box<Query>)>),
}

impl VisitorMut for Replacer {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.depth == 1
            && matches!(
                e,
                Expr::InSubquery { .. } | Expr::Subquery(_) | Expr::Exists { .. }
            )
        {
            let new = match (self.with.next(), &mut *e) {
                (
                    Some(Replacement::Inline(tables)),
                    Expr::InSubquery { subquery: q, .. }
                    | Expr::Subquery(q)
                    | Expr::Exists { subquery: q, .. },
                ) => {
                    inline_tables(q, &tables);
                    return ControlFlow::Continue(());
                }
                (Some(Replacement::List(list)), Expr::InSubquery { expr, negated, .. }) => {
                    if list.is_empty() {
                        // `x IN (empty)` is false and `x NOT IN (empty)` true, even for NULL x.
                        Expr::value(sqlparser::ast::Value::Boolean(*negated))
                    } else {
                        Expr::InList {
                            expr: expr.clone(),
                            list,
                            negated: *negated,
                        }
                    }
                }
                (Some(Replacement::Expr(v)), Expr::Subquery(_)) => Expr::Nested(v),
                (Some(Replacement::Exists(found)), Expr::Exists { negated, .. }) => {
                    Expr::value(sqlparser::ast::Value::Boolean(found != *negated))
                }
                _ => return ControlFlow::Break(()),
            };
            *e = new;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        if self.depth == 1 {
            if let TableFactor::Derived { subquery, .. } = t {
                match self.with.next() {
                    Some(Replacement::Derived(q)) => *subquery = q,
                    _ => return ControlFlow::Break(()),
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn parse_expr(sql: &str) -> Result<Expr, RewriteError> {
    let stmt = parse_query(&format!("SELECT {sql}"))?;
    match *stmt.body {
        sqlparser::ast::SetExpr::Select(s) => match s.projection.into_iter().next() {
            Some(sqlparser::ast::SelectItem::UnnamedExpr(e)) => Ok(e),
            _ => Err(RewriteError::Unsupported(
                "cannot rebuild a subquery result".into(),
            )),
        },
        _ => Err(RewriteError::Unsupported(
            "cannot rebuild a subquery result".into(),
        )),
    }
}

pub(crate) fn parse_query(sql: &str) -> Result<Box<Query>, RewriteError> {
    match myshard_router::parse::parse(sql)
        .map_err(|e| RewriteError::Unsupported(e.to_string()))?
        .pop()
    {
        Some(Statement::Query(q)) => Ok(q),
        _ => Err(RewriteError::Unsupported(
            "cannot rebuild a subquery result".into(),
        )),
    }
}

/// Replaces references to common table expressions by derived tables of their bodies.
struct CteInliner<'a> {
    ctes: &'a [sqlparser::ast::Cte],
}

impl VisitorMut for CteInliner<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let Some((name, alias)) = plain_table(t) else {
            return ControlFlow::Continue(());
        };
        let [sqlparser::ast::ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return ControlFlow::Continue(());
        };
        let Some(cte) = self.ctes.iter().find(|c| c.alias.name.value == ident.value) else {
            return ControlFlow::Continue(());
        };
        let alias = alias.clone().unwrap_or_else(|| sqlparser::ast::TableAlias {
            explicit: true,
            ..cte.alias.clone()
        });
        *t = TableFactor::Derived {
            lateral: false,
            subquery: cte.query.clone(),
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

/// A SELECT whose non-recursive `WITH` is inlined as derived tables, so that each runs like
/// any derived table; `None` when there is no `WITH` to inline.
pub fn inline_ctes(sql: &str) -> Option<Result<String, RewriteError>> {
    let mut statements = myshard_router::parse::parse(sql).ok()?;
    let [Statement::Query(q)] = statements.as_mut_slice() else {
        return None;
    };
    let with = q.with.take()?;
    if with.recursive {
        return Some(Err(RewriteError::Unsupported(
            "WITH RECURSIVE across several shards is not supported yet".into(),
        )));
    }
    if with.cte_tables.iter().any(|c| !c.alias.columns.is_empty()) {
        return Some(Err(RewriteError::Unsupported(
            "WITH name (columns) across several shards is not supported yet".into(),
        )));
    }
    // Each body may use the ones declared before it.
    let mut ctes: Vec<sqlparser::ast::Cte> = Vec::with_capacity(with.cte_tables.len());
    for mut cte in with.cte_tables {
        let _ = VisitMut::visit(&mut cte.query, &mut CteInliner { ctes: &ctes });
        ctes.push(cte);
    }
    let _ = VisitMut::visit(q, &mut CteInliner { ctes: &ctes });
    Some(crate::render::render(&mut **q))
}

/// Whether a join operator keeps only matching rows (so which shard a row pair is found on
/// follows from the scattered side alone).
fn inner_join(op: &sqlparser::ast::JoinOperator) -> bool {
    use sqlparser::ast::JoinOperator as J;
    matches!(
        op,
        J::Join(_) | J::Inner(_) | J::CrossJoin(_) | J::StraightJoin(_)
    )
}

/// A derived table of `body` in place of a table: under the table's alias, else its name.
pub(crate) fn derived_factor(
    body: Box<Query>,
    alias: Option<sqlparser::ast::TableAlias>,
    name: sqlparser::ast::Ident,
) -> TableFactor {
    let alias = alias.unwrap_or(sqlparser::ast::TableAlias {
        explicit: true,
        name,
        columns: vec![],
        at: None,
    });
    TableFactor::Derived {
        lateral: false,
        subquery: body,
        alias: Some(alias),
        sample: None,
    }
}

/// A table factor that names a plain table: its name and alias (cloned).
pub(crate) fn plain_table(
    t: &TableFactor,
) -> Option<(
    sqlparser::ast::ObjectName,
    Option<sqlparser::ast::TableAlias>,
)> {
    match t {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => Some((name.clone(), alias.clone())),
        _ => None,
    }
}

fn names_table(
    t: &TableFactor,
    qualifier: &str,
) -> Option<(
    sqlparser::ast::ObjectName,
    Option<sqlparser::ast::TableAlias>,
)> {
    let (name, alias) = plain_table(t)?;
    let own = match &alias {
        Some(a) => a.name.value.clone(),
        None => name.0.last()?.as_ident()?.value.clone(),
    };
    own.eq_ignore_ascii_case(qualifier).then_some((name, alias))
}

/// Whether a condition reads columns of `qualifier` only (each written `qualifier.column`),
/// at least one, and nothing that needs the rest of the statement.
fn only_refers_to(e: &Expr, qualifier: &str) -> bool {
    let mut columns = 0;
    let verdict = sqlparser::ast::visit_expressions(e, |x| match x {
        Expr::CompoundIdentifier(parts)
            if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case(qualifier) =>
        {
            columns += 1;
            ControlFlow::Continue(())
        }
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Subquery(_)
        | Expr::Exists { .. }
        | Expr::InSubquery { .. } => ControlFlow::Break(()),
        Expr::Function(f)
            if f.over.is_some()
                || myshard_router::route::AGGREGATES
                    .contains(&f.name.to_string().to_ascii_uppercase().as_str()) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    verdict.is_continue() && columns > 0
}

/// A join of tables on different shards made runnable: the table named `qualifier` (its
/// alias, or its name) becomes a derived table of all its rows, which then runs by itself and
/// is put back as literal rows, so the rest of the join runs on the shards of the other
/// tables. Refused where that table's rows would be kept without a partner from the other
/// tables (the preserved side of an outer join): every shard would return them.
pub fn derive_table(sql: &str, qualifier: &str) -> Result<String, RewriteError> {
    let unsupported = |why: &str| {
        Err(RewriteError::Unsupported(format!(
            "the join of '{qualifier}' is not on the sharding key and {why}; join co-located tables on their sharding key"
        )))
    };
    let mut statements =
        myshard_router::parse::parse(sql).map_err(|e| RewriteError::Unsupported(e.to_string()))?;
    let [Statement::Query(q)] = statements.as_mut_slice() else {
        return unsupported("the statement is not a SELECT");
    };
    let sqlparser::ast::SetExpr::Select(select) = q.body.as_mut() else {
        return unsupported("the statement is not a plain SELECT");
    };
    // WHERE conjuncts about this table alone, to fetch only the rows that can match (for an
    // inner join: filtering it first or after joining is the same).
    let filters: Vec<String> = select
        .selection
        .as_ref()
        .map(|w| {
            myshard_router::route::conjuncts(w)
                .into_iter()
                .filter(|c| only_refers_to(c, qualifier))
                .map(filter_text)
                .collect::<Result<_, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let mut found = false;
    for twj in &mut select.from {
        let at_relation = names_table(&twj.relation, qualifier).is_some();
        let position = twj
            .joins
            .iter()
            .position(|j| names_table(&j.relation, qualifier).is_some());
        if !at_relation && position.is_none() {
            continue;
        }
        if twj.joins.iter().any(|j| {
            !inner_join(&j.join_operator)
                && !matches!(
                    j.join_operator,
                    sqlparser::ast::JoinOperator::Left(_)
                        | sqlparser::ast::JoinOperator::LeftOuter(_)
                )
        }) {
            return unsupported(
                "the join has a RIGHT, FULL or other outer form myshard cannot split",
            );
        }
        let preserved = match position {
            // `t LEFT JOIN …`: t's unmatched rows are kept.
            None => twj.joins.iter().any(|j| !inner_join(&j.join_operator)),
            // `… LEFT JOIN t`: t is only ever a partner; `… JOIN t` likewise.
            Some(_) => false,
        };
        if preserved {
            return unsupported(
                "its rows are kept without a partner (the left side of a LEFT JOIN)",
            );
        }
        let inner = position.is_none_or(|i| inner_join(&twj.joins[i].join_operator));
        let factor = match position {
            None => &mut twj.relation,
            Some(i) => &mut twj.joins[i].relation,
        };
        let Some((name, alias)) = names_table(factor, qualifier) else {
            continue;
        };
        let body = if inner && !filters.is_empty() {
            parse_query(&format!(
                "SELECT * FROM {name} AS {} WHERE {}",
                quote_ident(qualifier),
                filters.join(" AND ")
            ))?
        } else {
            parse_query(&format!("SELECT * FROM {name}"))?
        };
        *factor = derived_factor(body, alias, sqlparser::ast::Ident::new(qualifier));
        found = true;
        break;
    }
    if !found {
        return unsupported("it is not a table of the statement's FROM");
    }
    match statements.pop() {
        Some(mut s) => crate::render::render(&mut s),
        None => Ok(String::new()),
    }
}

/// A table a correlated subquery reads, to be fetched by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelatedTable {
    /// How the subquery calls it (its alias, or its name).
    pub qualifier: String,
    /// The statement that fetches the rows it can use.
    pub fetch: String,
}

/// The tables of a correlated subquery (its own text): on the outer statement's shards they
/// would hold only that shard's rows, so each is fetched whole — less the rows its own WHERE
/// conjuncts rule out, when it is the subquery's only table — and put in as literal rows.
/// Refused when the subquery nests further subqueries or reads anything but plain tables.
pub fn correlated_tables(subquery: &str) -> Result<Vec<CorrelatedTable>, RewriteError> {
    let unsupported = |why: &str| {
        Err(RewriteError::Unsupported(format!(
            "correlated subqueries across several shards are supported over plain tables only; this one {why}"
        )))
    };
    let q = parse_query(subquery)?;
    let sqlparser::ast::SetExpr::Select(select) = q.body.as_ref() else {
        return unsupported("is not a plain SELECT");
    };
    let mut nested = 0;
    let _ = select.visit(&mut NestedQueries(&mut nested));
    if nested > 0 {
        return unsupported("nests another subquery");
    }
    let single = select.from.len() == 1 && select.from[0].joins.is_empty();
    let mut out = Vec::new();
    for twj in &select.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = factor
            else {
                return unsupported("reads something other than a table");
            };
            let qualifier = match alias {
                Some(a) => a.name.value.clone(),
                None => match name.0.last().and_then(|p| p.as_ident()) {
                    Some(i) => i.value.clone(),
                    None => return unsupported("names a table myshard cannot read"),
                },
            };
            let filters: Vec<String> = match (&select.selection, single) {
                (Some(w), true) => myshard_router::route::conjuncts(w)
                    .into_iter()
                    .filter(|c| only_refers_to(c, &qualifier))
                    .map(filter_text)
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            };
            let fetch = if filters.is_empty() {
                format!("SELECT * FROM {name}")
            } else {
                format!(
                    "SELECT * FROM {name} AS {} WHERE {}",
                    quote_ident(&qualifier),
                    filters.join(" AND ")
                )
            };
            out.push(CorrelatedTable { qualifier, fetch });
        }
    }
    Ok(out)
}

/// Counts the queries nested in a SELECT (its subqueries and derived tables).
struct NestedQueries<'a>(&'a mut usize);

impl Visitor for NestedQueries<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        *self.0 += 1;
        ControlFlow::Continue(())
    }
}

/// Puts literal rows in place of a subquery's tables (by qualifier), keeping their aliases.
fn inline_tables(q: &mut Query, tables: &[(String, Box<Query>)]) {
    let sqlparser::ast::SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    for twj in &mut select.from {
        let factors =
            std::iter::once(&mut twj.relation).chain(twj.joins.iter_mut().map(|j| &mut j.relation));
        for factor in factors {
            let Some((qualifier, rows)) = tables
                .iter()
                .find(|(qualifier, _)| names_table(factor, qualifier).is_some())
            else {
                continue;
            };
            let alias = plain_table(factor).and_then(|(_, a)| a);
            *factor = derived_factor(
                rows.clone(),
                alias,
                sqlparser::ast::Ident::new(qualifier.clone()),
            );
        }
    }
}

/// A read whose tables all become derived tables of their whole rows — `(SELECT * FROM t)
/// AS t` — so that, once those run by themselves and come back as literal rows, the
/// statement reads no table and one server evaluates all of it (window functions, mixed
/// UNION types, joins myshard cannot split). `None` when it is no plain read (locking reads
/// and `INTO` keep their meaning only on the real tables) or reads no table.
pub fn derive_every_table(sql: &str) -> Result<Option<String>, RewriteError> {
    let mut statements =
        myshard_router::parse::parse(sql).map_err(|e| RewriteError::Unsupported(e.to_string()))?;
    let [Statement::Query(q)] = statements.as_mut_slice() else {
        return Ok(None);
    };
    let mut plain = true;
    let _ = Visit::visit(&**q, &mut PlainRead(&mut plain));
    if !plain {
        return Ok(None);
    }
    let mut deriver = Deriver {
        derived: 0,
        failed: None,
    };
    let _ = q.visit(&mut deriver);
    if let Some(e) = deriver.failed {
        return Err(e);
    }
    if deriver.derived == 0 {
        return Ok(None);
    }
    crate::render::render(&mut **q).map(Some)
}

/// Clears its flag on a locking read or `SELECT … INTO`.
struct PlainRead<'a>(&'a mut bool);

impl Visitor for PlainRead<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let into =
            matches!(q.body.as_ref(), sqlparser::ast::SetExpr::Select(s) if s.into.is_some());
        if !q.locks.is_empty() || into {
            *self.0 = false;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Turns every table into a derived table of all its rows.
struct Deriver {
    derived: usize,
    failed: Option<RewriteError>,
}

impl VisitorMut for Deriver {
    type Break = ();

    fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let Some((name, alias)) = plain_table(t) else {
            return ControlFlow::Continue(());
        };
        let Some(own) = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.clone())
        else {
            return ControlFlow::Continue(());
        };
        if name.0.len() == 1 && own.eq_ignore_ascii_case("DUAL") {
            return ControlFlow::Continue(());
        }
        let body = match parse_query(&format!("SELECT * FROM {name}")) {
            Ok(b) => b,
            Err(e) => {
                self.failed = Some(e);
                return ControlFlow::Break(());
            }
        };
        *t = derived_factor(body, alias, sqlparser::ast::Ident::with_quote('`', own));
        self.derived += 1;
        ControlFlow::Continue(())
    }
}

/// The SELECT of an `INSERT|REPLACE … SELECT`, to run first and put in as VALUES rows
/// ([`insert_values`]); `None` for any other statement.
pub fn insert_source(sql: &str) -> Option<Result<String, RewriteError>> {
    let statements = myshard_router::parse::parse(sql).ok()?;
    let [Statement::Insert(ins)] = statements.as_slice() else {
        return None;
    };
    let source = ins.source.as_ref()?;
    if matches!(source.body.as_ref(), sqlparser::ast::SetExpr::Values(_)) {
        return None;
    }
    let refuse = |what: &str| {
        Some(Err(RewriteError::Unsupported(format!(
            "INSERT … SELECT {what} across shards is not supported yet"
        ))))
    };
    if ins.on.is_some() {
        return refuse("… ON DUPLICATE KEY UPDATE");
    }
    if ins.returning.is_some() {
        return refuse("… RETURNING");
    }
    if !ins.assignments.is_empty() || ins.partitioned.is_some() {
        return refuse("in this form");
    }
    Some(crate::render::render(&mut *source.clone()))
}

/// An `INSERT … SELECT` with the SELECT's rows (each value an SQL literal) as its VALUES;
/// `None` when there are no rows (nothing to insert).
pub fn insert_values(sql: &str, rows: &[Vec<String>]) -> Result<Option<String>, RewriteError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut statements =
        myshard_router::parse::parse(sql).map_err(|e| RewriteError::Unsupported(e.to_string()))?;
    let [Statement::Insert(ins)] = statements.as_mut_slice() else {
        return Err(RewriteError::Unsupported("not an INSERT … SELECT".into()));
    };
    // The head as the one printer writes it, then the rows as written by the literal
    // function that read them (no second parse of every value).
    ins.source = Some(parse_query("VALUES (0)")?);
    let head = crate::render::render(&mut statements[0])?;
    let Some(head) = head.strip_suffix("VALUES (0)") else {
        return Err(RewriteError::Unsupported(
            "invariant: an INSERT's VALUES are not where they were put".into(),
        ));
    };
    let mut out = String::with_capacity(head.len() + rows.len() * 16);
    out.push_str(head);
    out.push_str("VALUES ");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('(');
        out.push_str(&row.join(", "));
        out.push(')');
    }
    Ok(Some(out))
}

/// The query depth of a statement's own expressions, less one: a SELECT's are inside its
/// query, an UPDATE's or DELETE's are not. `None` for other statements.
fn statement_depth(stmt: &Statement) -> Option<usize> {
    match stmt {
        Statement::Query(_) => Some(0),
        Statement::Update(_) | Statement::Delete(_) => Some(1),
        _ => None,
    }
}

/// The outermost subqueries of a SELECT, UPDATE or DELETE, or `None` when it has none (or is no SELECT, or
/// has a subquery shape that cannot be taken out).
pub fn outer_subqueries(sql: &str) -> Option<Result<Vec<Subquery>, RewriteError>> {
    let statements = myshard_router::parse::parse(sql).ok()?;
    let [stmt] = statements.as_slice() else {
        return None;
    };
    let mut finder = Finder {
        depth: statement_depth(stmt)?,
        found: Vec::new(),
        failed: None,
    };
    if stmt.visit(&mut finder).is_break() {
        return finder.failed.map(Err);
    }
    (!finder.found.is_empty()).then_some(Ok(finder.found))
}

/// The statement with its outermost subqueries replaced by their answers (in the order
/// [`outer_subqueries`] listed them).
pub fn substitute(sql: &str, answers: Vec<Answer>) -> Result<String, RewriteError> {
    let mut statements =
        myshard_router::parse::parse(sql).map_err(|e| RewriteError::Unsupported(e.to_string()))?;
    let [stmt] = statements.as_mut_slice() else {
        return Err(RewriteError::Unsupported("not one statement".into()));
    };
    let depth = statement_depth(stmt)
        .ok_or_else(|| RewriteError::Unsupported("not a SELECT, UPDATE or DELETE".into()))?;
    let mut with = Vec::with_capacity(answers.len());
    for a in answers {
        with.push(match a {
            Answer::List(values) => Replacement::List(
                values
                    .iter()
                    .map(|v| parse_expr(v))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Answer::Scalar(v) => Replacement::Expr(Box::new(parse_expr(&v)?)),
            Answer::Exists(found) => Replacement::Exists(found),
            Answer::Derived(columns, rows) => {
                Replacement::Derived(parse_query(&derived_sql(&columns, &rows))?)
            }
            Answer::Correlated(tables) => {
                let mut rows = Vec::with_capacity(tables.len());
                for (qualifier, answer) in tables {
                    let Answer::Derived(columns, data) = answer else {
                        return Err(RewriteError::Unsupported(
                            "a correlated subquery's table must be rows".into(),
                        ));
                    };
                    rows.push((qualifier, parse_query(&derived_sql(&columns, &data))?));
                }
                Replacement::Inline(rows)
            }
        });
    }
    let mut replacer = Replacer {
        depth,
        with: with.into_iter(),
    };
    if stmt.visit(&mut replacer).is_break() {
        return Err(RewriteError::Unsupported(
            "this subquery shape across several shards is not supported yet".into(),
        ));
    }
    crate::render::render(&mut *stmt)
}

/// A pushed-down WHERE conjunct as text, its literals written by the one printer;
/// parenthesized, since a conjunct may be an OR whose parentheses were dropped.
fn filter_text(c: &Expr) -> Result<String, RewriteError> {
    Ok(format!("({})", crate::render::render(&mut c.clone())?))
}

/// A derived table's rows as `SELECT … UNION ALL SELECT …` (each row naming its columns),
/// parenthesized as a balanced tree: a flat chain of n UNIONs nests n deep in the syntax
/// tree, and walking that many levels overflows the stack; balanced, it nests log2(n) deep.
pub(crate) fn derived_sql(columns: &[DerivedColumn], rows: &[Vec<String>]) -> String {
    let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    let rows_sql = literal_rows(&names, rows);
    if columns.iter().all(|c| c.cast.is_none()) {
        return rows_sql;
    }
    // Typed as the columns were: `SELECT CAST(`a` AS DATE) AS `a`, … FROM (rows) AS r`. The
    // LIMIT of every row keeps MariaDB from merging this into the statement: merged, the
    // statement's result columns would take these names instead of the ones it wrote.
    let typed: Vec<String> = columns
        .iter()
        .zip(&names)
        .map(|(c, n)| match &c.cast {
            Some(cast) => format!("{} AS {n}", cast.replacen("{}", n, 1)),
            None => n.clone(),
        })
        .collect();
    format!(
        "SELECT {} FROM ({rows_sql}) AS `__myshard_rows` LIMIT 18446744073709551615",
        typed.join(", ")
    )
}

/// The rows as a balanced tree of `SELECT … UNION ALL SELECT …`.
fn literal_rows(names: &[String], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        let nulls: Vec<String> = names.iter().map(|n| format!("NULL AS {n}")).collect();
        return format!("SELECT {} FROM DUAL WHERE FALSE", nulls.join(", "));
    }
    // Every row names its columns: MariaDB checks each parenthesized part's names too.
    let row_sql = |i: usize| -> String {
        let items: Vec<String> = rows[i]
            .iter()
            .enumerate()
            .map(|(j, lit)| match names.get(j) {
                Some(n) => format!("{lit} AS {n}"),
                None => lit.clone(),
            })
            .collect();
        format!("SELECT {}", items.join(", "))
    };
    fn tree(lo: usize, hi: usize, leaf: &dyn Fn(usize) -> String, out: &mut String) {
        if hi - lo == 1 {
            out.push_str(&leaf(lo));
            return;
        }
        let mid = lo + (hi - lo) / 2;
        for (i, (a, b)) in [(lo, mid), (mid, hi)].into_iter().enumerate() {
            if i == 1 {
                out.push_str(" UNION ALL ");
            }
            if b - a > 1 {
                out.push('(');
                tree(a, b, leaf, out);
                out.push(')');
            } else {
                tree(a, b, leaf, out);
            }
        }
    }
    let mut out = String::new();
    tree(0, rows.len(), &row_sql, &mut out);
    out
}

/// What the catalog knows of a table's columns.
pub enum Columns {
    /// Its columns.
    Known(std::sync::Arc<Vec<String>>),
    /// The catalog can read them (logical schema, table).
    Unread(String, String),
    /// Nobody can tell (a schema outside the shard map).
    Unknown,
}

/// Whether a subquery refers to the statement around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correlation {
    /// Every name it uses is its own: it can run by itself.
    Inner,
    /// It uses a qualifier it does not define, or a name none of its tables has as a column
    /// (or one that nobody can tell of): it stays with the outer statement.
    Outer,
    /// The columns of this (schema, table) decide it.
    NeedsColumns(String, String),
}

/// The names a query defines and uses, at every level (inner scopes included, so an inner
/// definition can only make a name look more local than it is: a reference counted as the
/// outer statement's is one).
#[derive(Default)]
struct Names {
    /// Qualifiers defined: aliases, unaliased table names, CTE names (lower case).
    qualifiers: Vec<String>,
    /// Plain tables read: (schema as written, table).
    tables: Vec<(Option<String>, String)>,
    /// CTE names (lower case): tables of these names are no catalog tables.
    ctes: Vec<String>,
    /// Select-item aliases (lower case).
    aliases: Vec<String>,
    /// Qualifiers used (lower case).
    used_qualifiers: Vec<String>,
    /// Bare names used (lower case).
    used_names: Vec<String>,
}

fn select_aliases(body: &sqlparser::ast::SetExpr, out: &mut Vec<String>) {
    use sqlparser::ast::{SelectItem, SetExpr};
    match body {
        SetExpr::Select(s) => {
            for item in &s.projection {
                if let SelectItem::ExprWithAlias { alias, .. } = item {
                    out.push(alias.value.to_lowercase());
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            select_aliases(left, out);
            select_aliases(right, out);
        }
        SetExpr::Query(q) => select_aliases(&q.body, out),
        _ => {}
    }
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.to_lowercase();
                self.qualifiers.push(name.clone());
                self.ctes.push(name);
            }
        }
        select_aliases(&q.body, &mut self.aliases);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        let alias = match t {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let parts: Vec<&str> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(|i| i.value.as_str()))
                    .collect();
                match parts.as_slice() {
                    [table] if self.ctes.contains(&table.to_lowercase()) => {}
                    [table] => self.tables.push((None, table.to_string())),
                    [schema, table] => self
                        .tables
                        .push((Some(schema.to_string()), table.to_string())),
                    _ => {}
                }
                if alias.is_none() {
                    if let Some(last) = parts.last() {
                        self.qualifiers.push(last.to_lowercase());
                    }
                }
                alias
            }
            TableFactor::Derived { alias, .. } | TableFactor::NestedJoin { alias, .. } => alias,
            TableFactor::Function { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::JsonTable { alias, .. } => alias,
            _ => return ControlFlow::Continue(()),
        };
        if let Some(a) = alias {
            self.qualifiers.push(a.name.value.to_lowercase());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Identifier(i) if !i.value.starts_with('@') => {
                self.used_names.push(i.value.to_lowercase())
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => self
                .used_qualifiers
                .push(parts[parts.len() - 2].value.to_lowercase()),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Whether a subquery (its own text) refers to the statement around it, read from its
/// names and its tables' columns (`columns`: what the catalog knows of a table, by the
/// schema written before it and its name).
pub fn correlation(
    subquery: &str,
    columns: &dyn Fn(Option<&str>, &str) -> Columns,
) -> Result<Correlation, RewriteError> {
    let q = parse_query(subquery)?;
    let mut names = Names::default();
    let _ = Visit::visit(&*q, &mut names);
    if names
        .used_qualifiers
        .iter()
        .any(|q| !names.qualifiers.contains(q))
    {
        return Ok(Correlation::Outer);
    }
    let mut unresolved: Vec<&String> = names
        .used_names
        .iter()
        .filter(|n| !names.aliases.contains(n))
        .collect();
    if unresolved.is_empty() {
        return Ok(Correlation::Inner);
    }
    for (schema, table) in &names.tables {
        match columns(schema.as_deref(), table) {
            Columns::Known(cols) => {
                unresolved.retain(|n| !cols.iter().any(|c| c.eq_ignore_ascii_case(n)));
            }
            Columns::Unread(schema, table) => return Ok(Correlation::NeedsColumns(schema, table)),
            Columns::Unknown => {}
        }
    }
    // A name nobody can place is taken for the outer statement's: the subquery then stays
    // with it, which is right either way.
    Ok(if unresolved.is_empty() {
        Correlation::Inner
    } else {
        Correlation::Outer
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correlated_subquery_keeps_its_place_and_reads_its_tables_as_literal_rows() {
        let sql = "SELECT id FROM t WHERE a IN (SELECT b FROM u) AND EXISTS (SELECT 1 FROM v AS w WHERE w.k = t.k AND w.x > 1)";
        let found = outer_subqueries(sql)
            .expect("subqueries")
            .expect("rendered");
        let tables = correlated_tables(found[1].sql()).expect("plain tables");
        assert_eq!(
            tables,
            vec![CorrelatedTable {
                qualifier: "w".into(),
                fetch: "SELECT * FROM v AS `w` WHERE (w.x > 1)".into(),
            }]
        );
        let rows = Answer::Derived(
            vec![DerivedColumn::untyped("k"), DerivedColumn::untyped("x")],
            vec![vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]],
        );
        let out = substitute(
            sql,
            vec![
                Answer::List(vec!["7".into()]),
                Answer::Correlated(vec![("w".into(), rows)]),
            ],
        )
        .expect("substituted");
        assert_eq!(
            out,
            "SELECT id FROM t WHERE a IN (7) AND EXISTS (SELECT 1 FROM (SELECT 1 AS `k`, 2 AS `x` UNION ALL SELECT 3 AS `k`, 4 AS `x`) AS w WHERE w.k = t.k AND w.x > 1)"
        );
        let nested = "SELECT 1 FROM v WHERE v.k = t.k AND v.x IN (SELECT y FROM z)";
        assert!(
            correlated_tables(nested).is_err(),
            "a nested subquery is refused"
        );
    }

    #[test]
    fn every_table_of_a_plain_read_becomes_a_derived_table_of_its_rows() {
        let out = derive_every_table(
            "SELECT a.id, ROW_NUMBER() OVER (ORDER BY b.x) FROM t AS a JOIN u b ON a.id = b.id, DUAL WHERE a.id IN (SELECT id FROM v)",
        )
        .expect("rewritten");
        assert_eq!(
            out.as_deref(),
            Some("SELECT a.id, ROW_NUMBER() OVER (ORDER BY b.x) FROM (SELECT * FROM t) AS a JOIN (SELECT * FROM u) b ON a.id = b.id, DUAL WHERE a.id IN (SELECT id FROM (SELECT * FROM v) AS `v`)")
        );
        for kept in [
            "SELECT * FROM t FOR UPDATE",
            "SELECT id INTO @x FROM t",
            "SELECT 1",
            "UPDATE t SET a = 1",
        ] {
            assert_eq!(derive_every_table(kept).expect("parsed"), None, "{kept}");
        }
    }

    #[test]
    fn outermost_subqueries_are_found_and_replaced_in_order() {
        let sql = "SELECT a FROM t WHERE a IN (SELECT b FROM u WHERE b IN (SELECT c FROM v)) AND NOT EXISTS (SELECT 1 FROM w) AND a > (SELECT MAX(b) FROM u)";
        let found = outer_subqueries(sql)
            .expect("subqueries")
            .expect("rendered");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(matches!(&found[0], Subquery::In(q) if q.contains("IN (SELECT c FROM v)")));
        let out = substitute(
            sql,
            vec![
                Answer::List(vec!["1".into(), "'x'".into()]),
                Answer::Exists(false),
                Answer::Scalar("NULL".into()),
            ],
        )
        .expect("substituted");
        assert_eq!(
            out,
            "SELECT a FROM t WHERE a IN (1, 'x') AND true AND a > (NULL)"
        );
        let empty = substitute(
            "SELECT 1 FROM t WHERE a NOT IN (SELECT b FROM u)",
            vec![Answer::List(vec![])],
        )
        .expect("substituted");
        assert_eq!(empty, "SELECT 1 FROM t WHERE true");
    }

    #[test]
    fn ctes_become_derived_tables() {
        let sql = "WITH a AS (SELECT id FROM t WHERE x > 1), b AS (SELECT id FROM a) SELECT COUNT(*) FROM b JOIN a AS z ON z.id = b.id";
        let out = inline_ctes(sql).expect("a WITH").expect("inlined");
        assert_eq!(
            out,
            "SELECT COUNT(*) FROM (SELECT id FROM (SELECT id FROM t WHERE x > 1) AS a) AS b JOIN (SELECT id FROM t WHERE x > 1) AS z ON z.id = b.id"
        );
        assert!(inline_ctes("SELECT 1").is_none());
        // Quantified and row subqueries are left alone (the statement stays refused).
        assert!(outer_subqueries("SELECT a FROM t WHERE a > ALL (SELECT b FROM u)").is_none());
        assert!(outer_subqueries("SELECT a FROM t WHERE (a, c) IN (SELECT b, d FROM u)").is_none());
        assert!(outer_subqueries("SELECT a FROM t WHERE (a, c) = (SELECT b, d FROM u)").is_none());
        assert!(matches!(
            inline_ctes("WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r"),
            Some(Err(_))
        ));
    }

    #[test]
    fn many_derived_rows_nest_shallowly() {
        // 50,000 rows must survive parsing, rewriting and printing on a small stack.
        let rows: Vec<Vec<String>> = (0..50_000).map(|i| vec![i.to_string()]).collect();
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                substitute(
                    "SELECT COUNT(*) FROM (SELECT id FROM t) AS x",
                    vec![Answer::Derived(vec![DerivedColumn::untyped("id")], rows)],
                )
            })
            .expect("thread");
        let out = handle
            .join()
            .expect("no stack overflow")
            .expect("substituted");
        assert!(
            out.starts_with("SELECT COUNT(*) FROM (((("),
            "{}",
            &out[..80]
        );
        assert!(
            out.contains(
                "SELECT 0 AS `id` UNION ALL (SELECT 1 AS `id` UNION ALL SELECT 2 AS `id`)"
            ),
            "{}",
            &out[..200]
        );
    }

    #[test]
    fn pushed_down_filters_keep_their_literals_exact() {
        // A fetched table's own WHERE conjuncts become part of its fetch: a value ending in a
        // backslash must still end in one there (sqlparser's printing would drop the escape).
        let found = outer_subqueries(
            r"SELECT id FROM t WHERE EXISTS (SELECT 1 FROM v WHERE v.k = t.k AND v.s = 'a\\')",
        )
        .expect("subqueries")
        .expect("rendered");
        let tables = correlated_tables(found[0].sql()).expect("plain tables");
        assert_eq!(
            tables[0].fetch,
            r"SELECT * FROM v AS `v` WHERE (v.s = 'a\\')"
        );
        let out = derive_table(
            r"SELECT a.x FROM t1 AS a JOIN t2 AS b ON a.k = b.j WHERE b.s = 'x\\tb'",
            "b",
        )
        .expect("derived");
        assert!(out.contains(r"WHERE (b.s = 'x\\tb')"), "{out}");
    }

    #[test]
    fn joined_tables_become_derived_tables_unless_preserved() {
        let out = derive_table(
            "SELECT a.x, b.y FROM t1 AS a JOIN t2 AS b ON a.k = b.j LEFT JOIN t3 ON t3.id = a.id",
            "b",
        )
        .expect("derived");
        assert_eq!(
            out,
            "SELECT a.x, b.y FROM t1 AS a JOIN (SELECT * FROM t2) AS b ON a.k = b.j LEFT JOIN t3 ON t3.id = a.id"
        );
        let out =
            derive_table("SELECT * FROM t1 LEFT JOIN t2 ON t1.a = t2.b", "t2").expect("derived");
        assert_eq!(
            out,
            "SELECT * FROM t1 LEFT JOIN (SELECT * FROM t2) AS t2 ON t1.a = t2.b"
        );
        // Conditions on the fetched table alone narrow what is fetched (inner joins only).
        let out = derive_table(
            "SELECT * FROM t1 JOIN t2 AS b ON t1.a = b.b WHERE b.x = 5 AND (b.y < 3 OR b.y IS NULL) AND t1.z = 1 AND x = 2",
            "b",
        )
        .expect("derived");
        assert!(
            out.contains(
                "JOIN (SELECT * FROM t2 AS `b` WHERE (b.x = 5) AND (b.y < 3 OR b.y IS NULL)) AS b"
            ),
            "{out}"
        );
        let out = derive_table(
            "SELECT * FROM t1 LEFT JOIN t2 ON t1.a = t2.b WHERE t2.x = 5",
            "t2",
        )
        .expect("derived");
        assert!(out.contains("LEFT JOIN (SELECT * FROM t2) AS t2"), "{out}");
        // t2's unmatched rows would come back from every shard.
        assert!(derive_table("SELECT * FROM t2 LEFT JOIN t1 ON t1.a = t2.b", "t2").is_err());
        assert!(derive_table("SELECT * FROM t1 RIGHT JOIN t2 ON t1.a = t2.b", "t2").is_err());
        assert!(derive_table("UPDATE t1 JOIN t2 ON t1.a = t2.b SET t1.c = 1", "t2").is_err());
    }

    #[test]
    fn derived_tables_become_literal_rows() {
        let sql = "SELECT COUNT(*) FROM (SELECT id FROM t LIMIT 2) AS x";
        assert_eq!(
            outer_subqueries(sql).map(|f| f.map(|f| f.len())),
            Some(Ok(1))
        );
        let out = substitute(
            sql,
            vec![Answer::Derived(
                vec![DerivedColumn::untyped("id")],
                vec![vec!["1".into()], vec!["2".into()]],
            )],
        )
        .expect("substituted");
        assert_eq!(
            out,
            "SELECT COUNT(*) FROM (SELECT 1 AS `id` UNION ALL SELECT 2 AS `id`) AS x"
        );
        let none = substitute(
            sql,
            vec![Answer::Derived(vec![DerivedColumn::untyped("id")], vec![])],
        )
        .expect("ok");
        let typed = substitute(
            sql,
            vec![Answer::Derived(
                vec![DerivedColumn {
                    name: "id".into(),
                    cast: Some("CAST({} AS SIGNED)".into()),
                }],
                vec![vec!["NULL".into()], vec!["7".into()]],
            )],
        )
        .expect("ok");
        assert_eq!(
            typed,
            "SELECT COUNT(*) FROM (SELECT CAST(`id` AS SIGNED) AS `id` FROM (SELECT NULL AS `id` UNION ALL SELECT 7 AS `id`) AS `__myshard_rows` LIMIT 18446744073709551615) AS x"
        );
        assert!(
            none.contains("SELECT NULL AS `id` FROM DUAL WHERE false"),
            "{none}"
        );
    }

    #[test]
    fn a_subquery_refers_to_the_outer_statement_by_a_qualifier_or_a_name_its_tables_lack() {
        let columns = |_: Option<&str>, table: &str| match table {
            "orders" => Columns::Known(std::sync::Arc::new(vec![
                "id".into(),
                "customer_id".into(),
                "amount".into(),
            ])),
            "stores" => Columns::Unread("shop".into(), "stores".into()),
            _ => Columns::Unknown,
        };
        let of = |sql: &str| correlation(sql, &columns).expect("parses");
        // Qualifiers it defines, names its table has, its own aliases, session variables.
        assert_eq!(
            of("SELECT o.customer_id FROM orders o WHERE o.amount > 5"),
            Correlation::Inner
        );
        assert_eq!(
            of("SELECT customer_id FROM orders WHERE amount > @x"),
            Correlation::Inner
        );
        assert_eq!(
            of("SELECT amount * 2 AS a2 FROM orders ORDER BY a2"),
            Correlation::Inner
        );
        assert_eq!(of("SELECT orders.id FROM orders"), Correlation::Inner);
        assert_eq!(
            of("SELECT x.n FROM (SELECT COUNT(*) AS n FROM orders) AS x WHERE n > 1"),
            Correlation::Inner
        );
        // A qualifier it does not define; an aliased table's own name is no qualifier.
        assert_eq!(
            of("SELECT 1 FROM orders o WHERE o.customer_id = c.id"),
            Correlation::Outer
        );
        assert_eq!(
            of("SELECT 1 FROM orders o WHERE orders.id = 1"),
            Correlation::Outer
        );
        // A bare name none of its tables has.
        assert_eq!(
            of("SELECT 1 FROM orders WHERE customer_id = region"),
            Correlation::Outer
        );
        // Names no catalog can place are taken for the outer statement's.
        assert_eq!(
            of("SELECT 1 FROM elsewhere WHERE k = 1"),
            Correlation::Outer
        );
        // Without a table's columns the catalog must read them first.
        assert_eq!(
            of("SELECT region FROM stores"),
            Correlation::NeedsColumns("shop".into(), "stores".into())
        );
        // No bare names: nothing to read.
        assert_eq!(of("SELECT s.region FROM stores s"), Correlation::Inner);
    }
}
