//! Uncorrelated subqueries and derived tables over sharded tables, taken out of a statement
//! and put back as literals once they ran by themselves: `IN (…)` lists, scalars, TRUE/FALSE
//! for EXISTS, derived tables of `SELECT … UNION ALL SELECT …` rows. Only the outermost
//! subqueries are taken; the ones nested inside them are handled when those run.

use crate::RewriteError;
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
}

impl Subquery {
    /// The subquery's own statement text.
    pub fn sql(&self) -> &str {
        match self {
            Subquery::In(q) | Subquery::Scalar(q) | Subquery::Exists(q) | Subquery::Derived(q) => q,
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
    /// A derived table: its column names and rows.
    Derived(Vec<String>, Vec<Vec<String>>),
}

/// Finds the outermost subqueries (those of the top-level query).
struct Finder {
    depth: usize,
    found: Vec<Subquery>,
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
                    self.found.push(Subquery::In(subquery.to_string()))
                }
                Expr::Subquery(q) => self.found.push(Subquery::Scalar(q.to_string())),
                Expr::Exists { subquery, .. } => {
                    self.found.push(Subquery::Exists(subquery.to_string()))
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if self.depth == 1 {
            if let TableFactor::Derived { subquery, .. } = t {
                self.found.push(Subquery::Derived(subquery.to_string()));
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

fn parse_query(sql: &str) -> Result<Box<Query>, RewriteError> {
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
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = t
        else {
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
    Some(Ok(Statement::Query(q.clone()).to_string()))
}

/// The outermost subqueries of a SELECT, or `None` when it has none (or is no SELECT).
pub fn outer_subqueries(sql: &str) -> Option<Vec<Subquery>> {
    let statements = myshard_router::parse::parse(sql).ok()?;
    let [stmt @ Statement::Query(_)] = statements.as_slice() else {
        return None;
    };
    let mut finder = Finder {
        depth: 0,
        found: Vec::new(),
    };
    if stmt.visit(&mut finder).is_break() {
        return None;
    }
    (!finder.found.is_empty()).then_some(finder.found)
}

/// The statement with its outermost subqueries replaced by their answers (in the order
/// [`outer_subqueries`] listed them).
pub fn substitute(sql: &str, answers: Vec<Answer>) -> Result<String, RewriteError> {
    let mut statements =
        myshard_router::parse::parse(sql).map_err(|e| RewriteError::Unsupported(e.to_string()))?;
    let [stmt @ Statement::Query(_)] = statements.as_mut_slice() else {
        return Err(RewriteError::Unsupported("not a SELECT".into()));
    };
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
            Answer::Derived(names, rows) => {
                Replacement::Derived(parse_query(&derived_sql(&names, &rows))?)
            }
        });
    }
    let mut replacer = Replacer {
        depth: 0,
        with: with.into_iter(),
    };
    if stmt.visit(&mut replacer).is_break() {
        return Err(RewriteError::Unsupported(
            "this subquery shape across several shards is not supported yet".into(),
        ));
    }
    Ok(stmt.to_string())
}

/// A derived table's rows as `SELECT … UNION ALL SELECT …` (names on the first row).
fn derived_sql(names: &[String], rows: &[Vec<String>]) -> String {
    let names: Vec<String> = names
        .iter()
        .map(|n| format!("`{}`", n.replace('`', "``")))
        .collect();
    if rows.is_empty() {
        let nulls: Vec<String> = names.iter().map(|n| format!("NULL AS {n}")).collect();
        return format!("SELECT {} FROM DUAL WHERE FALSE", nulls.join(", "));
    }
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let items: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(j, lit)| match (i, names.get(j)) {
                    (0, Some(n)) => format!("{lit} AS {n}"),
                    _ => lit.clone(),
                })
                .collect();
            format!("SELECT {}", items.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outermost_subqueries_are_found_and_replaced_in_order() {
        let sql = "SELECT a FROM t WHERE a IN (SELECT b FROM u WHERE b IN (SELECT c FROM v)) AND NOT EXISTS (SELECT 1 FROM w) AND a > (SELECT MAX(b) FROM u)";
        let found = outer_subqueries(sql).expect("subqueries");
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
    fn derived_tables_become_literal_rows() {
        let sql = "SELECT COUNT(*) FROM (SELECT id FROM t LIMIT 2) AS x";
        assert_eq!(outer_subqueries(sql).map(|f| f.len()), Some(1));
        let out = substitute(
            sql,
            vec![Answer::Derived(
                vec!["id".into()],
                vec![vec!["1".into()], vec!["2".into()]],
            )],
        )
        .expect("substituted");
        assert_eq!(
            out,
            "SELECT COUNT(*) FROM (SELECT 1 AS `id` UNION ALL SELECT 2) AS x"
        );
        let none = substitute(sql, vec![Answer::Derived(vec!["id".into()], vec![])]).expect("ok");
        assert!(
            none.contains("SELECT NULL AS `id` FROM DUAL WHERE false"),
            "{none}"
        );
    }
}
