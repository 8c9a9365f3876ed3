//! A read of the logical `information_schema` (`myshard_router::catalog`): each catalog
//! table it names becomes a derived table of the rows myshard gathered from the shards, so
//! one server evaluates the client's statement — its filters, joins, grouping and order —
//! over the logical rows only.

use crate::subquery::{derived_factor, derived_sql, parse_query, plain_table, DerivedColumn};
use crate::RewriteError;
use sqlparser::ast::{
    Expr, FunctionArguments, Statement, TableFactor, Value, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;

/// A catalog table's logical rows: its name (upper case), columns and rows as literals.
pub struct CatalogRows {
    /// The table, as `myshard_router::catalog::CATALOG` names it.
    pub table: String,
    /// Its columns, with the casts that keep their types.
    pub columns: Vec<DerivedColumn>,
    /// Its rows, each value an SQL literal.
    pub rows: Vec<Vec<String>>,
}

/// The read with every `information_schema` table of `tables` replaced by its rows (keeping
/// the alias the statement gave it, or its name), and `DATABASE()`/`SCHEMA()` by the
/// session's logical schema `current` (the server that evaluates it is in the physical one,
/// whose name may differ). Any other table is refused: its rows live on the shards, and the
/// catalog's rows do not.
pub fn substitute_catalog(
    sql: &str,
    tables: &[CatalogRows],
    current: Option<&str>,
) -> Result<String, RewriteError> {
    let mut statements =
        myshard_router::parse::parse(sql).map_err(|e| RewriteError::Unsupported(e.to_string()))?;
    let [stmt @ Statement::Query(_)] = statements.as_mut_slice() else {
        return Err(RewriteError::Unsupported(
            "information_schema can be read only by a SELECT through myshard".into(),
        ));
    };
    let mut bodies = Vec::with_capacity(tables.len());
    for t in tables {
        bodies.push((
            t.table.as_str(),
            parse_query(&derived_sql(&t.columns, &t.rows))?,
        ));
    }
    let mut replacer = CatalogReplacer {
        bodies,
        current: match current {
            Some(name) => Expr::Value(Value::SingleQuotedString(name.to_string()).into()),
            None => Expr::Value(Value::Null.into()),
        },
        failed: None,
    };
    let _ = stmt.visit(&mut replacer);
    if let Some(e) = replacer.failed {
        return Err(e);
    }
    crate::render::render(stmt)
}

struct CatalogReplacer<'a> {
    bodies: Vec<(&'a str, Box<sqlparser::ast::Query>)>,
    current: Expr,
    failed: Option<RewriteError>,
}

impl VisitorMut for CatalogReplacer<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            let name = f.name.to_string();
            let bare = matches!(&f.args, FunctionArguments::None)
                || matches!(&f.args, FunctionArguments::List(l) if l.args.is_empty());
            if bare
                && (name.eq_ignore_ascii_case("DATABASE") || name.eq_ignore_ascii_case("SCHEMA"))
            {
                *e = self.current.clone();
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        let Some((name, alias)) = plain_table(t) else {
            return ControlFlow::Continue(());
        };
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
        let found = match parts.as_slice() {
            [schema, table] if schema.eq_ignore_ascii_case("information_schema") => self
                .bodies
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(table))
                .map(|(_, body)| (table.clone(), body.clone())),
            [table] if table.eq_ignore_ascii_case("DUAL") => return ControlFlow::Continue(()),
            _ => None,
        };
        let Some((table, body)) = found else {
            self.failed = Some(RewriteError::Unsupported(format!(
                "'{name}' cannot be read together with information_schema through myshard: the catalog's rows are gathered from every shard, the table's are not; read them in separate statements"
            )));
            return ControlFlow::Break(());
        };
        *t = derived_factor(body, alias, sqlparser::ast::Ident::with_quote('`', table));
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<CatalogRows> {
        vec![CatalogRows {
            table: "TABLES".into(),
            columns: vec![
                DerivedColumn::untyped("TABLE_SCHEMA"),
                DerivedColumn::untyped("TABLE_NAME"),
            ],
            rows: vec![
                vec!["'shop'".into(), "'orders'".into()],
                vec!["'shop'".into(), "'customers'".into()],
            ],
        }]
    }

    #[test]
    fn catalog_tables_become_their_rows_under_their_alias() {
        assert_eq!(
            substitute_catalog(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
                &rows(),
                Some("shop")
            )
            .expect("rewritten"),
            "SELECT table_name FROM (SELECT 'shop' AS `TABLE_SCHEMA`, 'orders' AS `TABLE_NAME` UNION ALL SELECT 'shop' AS `TABLE_SCHEMA`, 'customers' AS `TABLE_NAME`) AS `tables` WHERE table_schema = 'shop' ORDER BY 1"
        );
        let sub = substitute_catalog(
            "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES t WHERE EXISTS (SELECT 1 FROM information_schema.TABLES u WHERE u.table_name = t.table_name)",
            &rows(),
            None,
        )
        .expect("rewritten");
        assert!(sub.contains(") t WHERE EXISTS"), "{sub}");
        assert!(sub.contains(") u WHERE u.table_name"), "{sub}");
    }

    #[test]
    fn other_tables_and_writes_are_refused() {
        for sql in [
            "SELECT * FROM information_schema.tables JOIN orders o ON o.id = 1",
            "DELETE FROM orders WHERE id IN (SELECT 1 FROM information_schema.tables)",
            "SELECT * FROM information_schema.tables, shop.customers",
        ] {
            assert!(substitute_catalog(sql, &rows(), None).is_err(), "{sql}");
        }
    }
}
