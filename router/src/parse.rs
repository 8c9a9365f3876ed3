//! The full parse, with sqlparser's MySQL dialect. Nesting is bounded so that hostile SQL is
//! an error, not a stack overflow.

use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};

/// Deepest expression nesting accepted.
pub const RECURSION_LIMIT: usize = 200;

/// Parses SQL text into statements.
pub fn parse(sql: &str) -> Result<Vec<sqlparser::ast::Statement>, ParserError> {
    Parser::new(&MySqlDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)?
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
