//! The full parse, with sqlparser's MySQL dialect. Nesting is bounded so that hostile SQL is
//! an error, not a stack overflow.

use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};

/// Deepest expression nesting accepted.
pub const RECURSION_LIMIT: usize = 200;

/// Parses canonical SQL text (see [`crate::text`]) into statements. String literals reach
/// the AST with the values MySQL reads; the AST must never be printed back with sqlparser's
/// string `Display` (see `myshard_sql_rewrite::render`).
pub fn parse(sql: &str) -> Result<Vec<sqlparser::ast::Statement>, ParserError> {
    let text = crate::text::sqlparser_text(sql);
    Parser::new(&MySqlDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(&text)?
        .parse_statements()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_select() {
        assert_eq!(
            parse("SELECT a FROM t WHERE id = 5").map(|s| s.len()),
            Ok(1)
        );
    }

    #[test]
    fn string_values_are_mysql_values() {
        use sqlparser::ast::{Expr, SelectItem, SetExpr, Statement, Value};
        let stmts = parse(r"SELECT 'a\fb\\', 'c\%'").expect("parses");
        let Statement::Query(q) = &stmts[0] else {
            panic!("query")
        };
        let SetExpr::Select(s) = q.body.as_ref() else {
            panic!("select")
        };
        let values: Vec<String> = s
            .projection
            .iter()
            .map(|p| match p {
                SelectItem::UnnamedExpr(Expr::Value(v)) => match &v.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(values, [r"afb\", r"c\%"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        let r = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || parse(&sql).is_err())
            .expect("spawn")
            .join()
            .expect("no panic");
        assert!(r);
    }
}
