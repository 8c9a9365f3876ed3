//! The one printer of rewritten statements.
//!
//! sqlparser keeps a string literal's *value* (escapes already read) and prints it back
//! without escaping backslashes, so `'a\\'` would leave as `'a\'` and swallow the rest of the
//! statement. [`render`] therefore never lets sqlparser print a string: every string value is
//! swapped for a marker before printing and written by [`myshard_router::text::quote`]
//! afterwards, and identifiers sqlparser would print ambiguously are quoted by
//! [`myshard_router::text::quote_ident`]. A string sqlparser still printed itself (a position
//! the visitor does not reach) is accepted only when it has no backslash and no doubled
//! quote, so its meaning cannot differ from its value; otherwise the statement is refused.
//! The output is canonical text (see [`myshard_router::text`]).

use crate::RewriteError;
use myshard_router::text::{quote, quote_ident, HEX_NUMBER_PREFIX};
use sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart, Value, ValueWithSpan};
use sqlparser::ast::{VisitMut, VisitorMut};
use std::fmt::Display;
use std::ops::ControlFlow;

/// Marks a substituted piece: NUL cannot occur in canonical text outside string literals.
const MARK: char = '\0';

struct Marker {
    pieces: Vec<String>,
}

impl Marker {
    fn mark(&mut self, text: String) -> String {
        let n = self.pieces.len();
        self.pieces.push(text);
        format!("{MARK}{n}{MARK}")
    }

    fn mark_ident(&mut self, ident: &mut Ident) {
        // sqlparser prints a quoted name holding a doubled quote character as written, so
        // `a``b` would come back as a`b: write such names (and any with NUL) ourselves.
        if ident.value.contains("``") || ident.value.contains(MARK) || ident.value.contains('"') {
            let text = quote_ident(&ident.value);
            ident.value = self.mark(text);
            ident.quote_style = None;
        }
    }

    fn mark_name(&mut self, name: &mut ObjectName) {
        for part in &mut name.0 {
            if let ObjectNamePart::Identifier(i) = part {
                self.mark_ident(i);
            }
        }
    }
}

impl VisitorMut for Marker {
    type Break = ();

    fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
        let text = match &v.value {
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::TripleSingleQuotedString(s)
            | Value::TripleDoubleQuotedString(s)
            | Value::EscapedStringLiteral(s) => quote(s.as_bytes(), "_utf8mb4"),
            Value::NationalStringLiteral(s) => format!("N{}", quote(s.as_bytes(), "_utf8mb4")),
            // A `0x…` number as the client wrote it (sqlparser would print `X'…'`).
            Value::HexStringLiteral(h) if h.starts_with(HEX_NUMBER_PREFIX) => h.clone(),
            _ => return ControlFlow::Continue(()),
        };
        v.value = Value::Placeholder(self.mark(text));
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
        self.mark_name(name);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        match e {
            Expr::Identifier(i) => self.mark_ident(i),
            Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(|i| self.mark_ident(i)),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Prints a statement (or any node of one) as canonical SQL text whose every literal denotes
/// exactly the value in the AST.
pub fn render<T: VisitMut + Display + ?Sized>(node: &mut T) -> Result<String, RewriteError> {
    let mut marker = Marker { pieces: Vec::new() };
    let _ = node.visit(&mut marker);
    let printed = node.to_string();
    substitute(&printed, &marker.pieces)
}

/// Replaces the markers of `printed` with their pieces, checking every string sqlparser
/// printed itself.
fn substitute(printed: &str, pieces: &[String]) -> Result<String, RewriteError> {
    let extra: usize = pieces.iter().map(String::len).sum();
    let mut out = String::with_capacity(printed.len() + extra);
    let b = printed.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                let start = i;
                i += 1;
                let mut ambiguous = false;
                while i < b.len() {
                    if b[i] == b'\\' {
                        ambiguous = true;
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            ambiguous = true;
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                if ambiguous {
                    let shown: String = printed[start..i.min(b.len())].chars().take(60).collect();
                    return Err(RewriteError::Unsupported(format!(
                        "myshard cannot rewrite the literal {shown} exactly in this position"
                    )));
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'`' {
                        if b.get(i + 1) == Some(&b'`') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            0 => {
                let end = printed[i + 1..]
                    .find(MARK)
                    .map(|p| i + 1 + p)
                    .ok_or_else(|| invariant("unterminated marker"))?;
                let n: usize = printed[i + 1..end]
                    .parse()
                    .map_err(|_| invariant("marker without a number"))?;
                let piece = pieces.get(n).ok_or_else(|| invariant("unknown marker"))?;
                out.push_str(&printed[copied..i]);
                out.push_str(piece);
                i = end + 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&printed[copied.min(printed.len())..]);
    Ok(out)
}

fn invariant(what: &str) -> RewriteError {
    RewriteError::Unsupported(format!("invariant: rendering a statement: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(sql: &str) -> String {
        let mut stmts = myshard_router::parse::parse(sql).expect("parses");
        render(&mut stmts[0]).expect("renders")
    }

    #[test]
    fn backslashes_and_quotes_survive() {
        assert_eq!(
            round_trip(r"INSERT INTO t (a, b) VALUES ('a\\', 'x'), ('it''s', 'a\\tb')"),
            r"INSERT INTO t (a, b) VALUES ('a\\', 'x'), ('it''s', 'a\\tb')"
        );
    }

    #[test]
    fn control_characters_and_like_escapes_keep_their_values() {
        assert_eq!(
            round_trip(r"SELECT 'a\0b', 'c\Z', 'd\%', N'e\\' FROM t WHERE x LIKE 'f\_%'"),
            r"SELECT 'a\0b', 'c\Z', 'd\\%', N'e\\' FROM t WHERE x LIKE 'f\\_%'"
        );
    }

    #[test]
    fn introduced_and_hex_literals_are_kept() {
        assert_eq!(
            round_trip(r"SELECT _binary X'FF5C', _utf8mb4'a\\', X'00', 0x41"),
            r"SELECT _binary X'FF5C', _utf8mb4 'a\\', X'00', 0x41"
        );
    }

    #[test]
    fn names_with_doubled_backticks_are_quoted() {
        assert_eq!(
            round_trip("SELECT `a````b` FROM `t``x`"),
            "SELECT `a````b` FROM `t``x`"
        );
    }

    #[test]
    fn a_string_sqlparser_prints_itself_with_a_backslash_is_refused() {
        assert!(substitute(r"SELECT 1 AS 'a\'", &[]).is_err());
        assert!(substitute("SELECT 1 AS 'a''b'", &[]).is_err());
        assert_eq!(
            substitute("SELECT 1 AS 'ab', \u{0}0\u{0}", &["'x'".into()]).as_deref(),
            Ok("SELECT 1 AS 'ab', 'x'")
        );
    }
}
