//! Sharding-key values and the sets of them a WHERE clause allows.

use serde::{Deserialize, Serialize};
use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};
use std::fmt;

/// One sharding-key value, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyValue {
    /// An integer (numbers, and numeric strings compared with an integer column are the same
    /// key; the rule's column decides, see [`KeyValue::as_int`]).
    Int(i128),
    /// A string, as written (collation folding happens when hashing or comparing).
    Str(String),
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Int(i) => write!(f, "{i}"),
            KeyValue::Str(s) => write!(f, "'{s}'"),
        }
    }
}

impl KeyValue {
    /// The value as an integer, when it is one or is a string holding one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            KeyValue::Int(i) => Some(*i),
            KeyValue::Str(s) => s.trim().parse().ok(),
        }
    }

    /// Equal as MySQL could compare them: same integer, or strings equal ignoring case and
    /// trailing spaces. Deliberately generous: keeping a value routes to more shards, never
    /// fewer.
    pub fn loosely_equals(&self, other: &KeyValue) -> bool {
        if self == other {
            return true;
        }
        if let (Some(a), Some(b)) = (self.as_int(), other.as_int()) {
            return a == b;
        }
        crate::hash::weight(&self.text(), "_ci") == crate::hash::weight(&other.text(), "_ci")
    }

    /// The value's text (integers in decimal).
    pub fn text(&self) -> String {
        match self {
            KeyValue::Int(i) => i.to_string(),
            KeyValue::Str(s) => s.clone(),
        }
    }
}

/// Reads a literal: numbers, strings, and negated numbers. `None` for anything else
/// (expressions, NULL, placeholders).
pub fn literal(expr: &Expr) -> Option<KeyValue> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => number_key(n),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                Some(KeyValue::Str(s.clone()))
            }
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            KeyValue::Int(i) => Some(KeyValue::Int(-i)),
            KeyValue::Str(_) => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => literal(expr),
        Expr::Nested(e) => literal(e),
        _ => None,
    }
}

/// A number literal's text as a key: `5` and `5.0` are the integer 5; `5.5` is no integer
/// key.
pub fn number_key(n: &str) -> Option<KeyValue> {
    if let Ok(i) = n.parse::<i128>() {
        return Some(KeyValue::Int(i));
    }
    let f: f64 = n.parse().ok()?;
    (f.fract() == 0.0 && f.abs() < 1e30).then_some(KeyValue::Int(f as i128))
}

/// A statement's literal (as [`crate::text::literal_shape`] lists it) as the key
/// [`literal`] reads from the same value in the parsed statement, when that value is a
/// number or a quoted string.
pub fn literal_key(lit: &crate::text::Literal) -> Option<KeyValue> {
    match lit.kind {
        crate::text::LiteralKind::Num => number_key(&lit.value),
        crate::text::LiteralKind::Str => Some(KeyValue::Str(lit.value.clone())),
    }
}

/// The key values a predicate allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySet {
    /// Unconstrained: every shard.
    Any,
    /// Exactly these values (deduplicated, sorted).
    Values(Vec<KeyValue>),
    /// An integer interval, inclusive bounds (for `range` rules; other rules treat it as Any).
    Interval(Option<i128>, Option<i128>),
    /// No value can match (e.g. `k = 1 AND k = 2`).
    Empty,
}

impl KeySet {
    fn values(mut v: Vec<KeyValue>) -> KeySet {
        v.sort();
        v.dedup();
        if v.is_empty() {
            KeySet::Empty
        } else {
            KeySet::Values(v)
        }
    }

    fn in_interval(v: &KeyValue, lo: Option<i128>, hi: Option<i128>) -> bool {
        match v.as_int() {
            Some(i) => lo.is_none_or(|l| i >= l) && hi.is_none_or(|h| i <= h),
            None => true,
        }
    }

    /// Both conditions hold.
    pub fn and(self, other: KeySet) -> KeySet {
        use KeySet::*;
        match (self, other) {
            (Empty, _) | (_, Empty) => Empty,
            (Any, x) | (x, Any) => x,
            (Values(a), Values(b)) => {
                // Keep values equal under either form (5 and '5').
                let keep: Vec<KeyValue> = a
                    .into_iter()
                    .filter(|x| b.iter().any(|y| x.loosely_equals(y)))
                    .collect();
                KeySet::values(keep)
            }
            (Values(a), Interval(lo, hi)) | (Interval(lo, hi), Values(a)) => KeySet::values(
                a.into_iter()
                    .filter(|v| KeySet::in_interval(v, lo, hi))
                    .collect(),
            ),
            (Interval(l1, h1), Interval(l2, h2)) => {
                let lo = match (l1, l2) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let hi = match (h1, h2) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                match (lo, hi) {
                    (Some(l), Some(h)) if l > h => Empty,
                    _ => Interval(lo, hi),
                }
            }
        }
    }

    /// Either condition holds.
    pub fn or(self, other: KeySet) -> KeySet {
        use KeySet::*;
        match (self, other) {
            (Empty, x) | (x, Empty) => x,
            (Any, _) | (_, Any) => Any,
            (Values(mut a), Values(b)) => {
                a.extend(b);
                KeySet::values(a)
            }
            (Interval(l1, h1), Interval(l2, h2)) => {
                let lo = match (l1, l2) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                };
                let hi = match (h1, h2) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                Interval(lo, hi)
            }
            (Values(v), Interval(lo, hi)) | (Interval(lo, hi), Values(v)) => {
                let ints: Option<Vec<i128>> = v.iter().map(KeyValue::as_int).collect();
                match ints {
                    Some(ints) => {
                        let lo = lo.and_then(|l| ints.iter().min().map(|m| l.min(*m)));
                        let hi = hi.and_then(|h| ints.iter().max().map(|m| h.max(*m)));
                        Interval(lo, hi)
                    }
                    None => Any,
                }
            }
        }
    }
}

/// Tells whether an expression names the key column (of the table being analysed).
pub trait KeyColumn {
    /// Whether `expr` is a reference to the key column.
    fn is_key(&self, expr: &Expr) -> bool;
}

/// The key values allowed by a boolean expression. Anything not understood is `Any` (which
/// can only widen the set of shards, never lose rows).
pub fn key_set(expr: &Expr, key: &dyn KeyColumn) -> KeySet {
    match expr {
        Expr::Nested(e) => key_set(e, key),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => key_set(left, key).and(key_set(right, key)),
            BinaryOperator::Or => key_set(left, key).or(key_set(right, key)),
            BinaryOperator::Eq => compare(left, right, key, Cmp::Eq)
                .or_else(|| compare(right, left, key, Cmp::Eq))
                .unwrap_or(KeySet::Any),
            BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                let cmp = match op {
                    BinaryOperator::Lt => Cmp::Lt,
                    BinaryOperator::LtEq => Cmp::Le,
                    BinaryOperator::Gt => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                compare(left, right, key, cmp)
                    .or_else(|| compare(right, left, key, cmp.flip()))
                    .unwrap_or(KeySet::Any)
            }
            _ => KeySet::Any,
        },
        Expr::InList {
            expr,
            list,
            negated: false,
        } if key.is_key(expr) => {
            let vals: Option<Vec<KeyValue>> = list.iter().map(literal).collect();
            vals.map(KeySet::values).unwrap_or(KeySet::Any)
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } => tuple_in(expr, list, key),
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } if key.is_key(expr) => {
            match (
                literal(low).and_then(|v| v.as_int()),
                literal(high).and_then(|v| v.as_int()),
            ) {
                (Some(l), Some(h)) if l <= h => KeySet::Interval(Some(l), Some(h)),
                (Some(_), Some(_)) => KeySet::Empty,
                _ => KeySet::Any,
            }
        }
        _ => KeySet::Any,
    }
}

#[derive(Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn flip(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Eq,
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
        }
    }
}

/// `col <cmp> literal` (or a row constructor equality), if `col` is the key.
fn compare(col: &Expr, val: &Expr, key: &dyn KeyColumn, cmp: Cmp) -> Option<KeySet> {
    if let (Expr::Tuple(cols), Expr::Tuple(vals), Cmp::Eq) = (col, val, cmp) {
        if cols.len() == vals.len() {
            let i = cols.iter().position(|c| key.is_key(c))?;
            return literal(&vals[i]).map(|v| KeySet::values(vec![v]));
        }
        return None;
    }
    if !key.is_key(col) {
        return None;
    }
    let v = literal(val)?;
    Some(match cmp {
        Cmp::Eq => KeySet::values(vec![v]),
        _ => {
            let i = v.as_int()?;
            match cmp {
                Cmp::Lt => KeySet::Interval(None, Some(i - 1)),
                Cmp::Le => KeySet::Interval(None, Some(i)),
                Cmp::Gt => KeySet::Interval(Some(i + 1), None),
                _ => KeySet::Interval(Some(i), None),
            }
        }
    })
}

/// `(a, key) IN ((1, 2), (3, 4))`.
fn tuple_in(expr: &Expr, list: &[Expr], key: &dyn KeyColumn) -> KeySet {
    let Expr::Tuple(cols) = expr else {
        return KeySet::Any;
    };
    let Some(i) = cols.iter().position(|c| key.is_key(c)) else {
        return KeySet::Any;
    };
    let mut vals = Vec::new();
    for row in list {
        match row {
            Expr::Tuple(items) if items.len() == cols.len() => match literal(&items[i]) {
                Some(v) => vals.push(v),
                None => return KeySet::Any,
            },
            _ => return KeySet::Any,
        }
    }
    KeySet::values(vals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    struct Named(&'static str);
    impl KeyColumn for Named {
        fn is_key(&self, e: &Expr) -> bool {
            match e {
                Expr::Identifier(i) => i.value.eq_ignore_ascii_case(self.0),
                Expr::CompoundIdentifier(p) => p
                    .last()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case(self.0)),
                _ => false,
            }
        }
    }

    fn set(where_: &str) -> KeySet {
        let e = Parser::new(&MySqlDialect {})
            .try_with_sql(where_)
            .and_then(|mut p| p.parse_expr())
            .expect("expression parses");
        key_set(&e, &Named("k"))
    }

    fn ints(v: &[i128]) -> KeySet {
        KeySet::Values(v.iter().map(|i| KeyValue::Int(*i)).collect())
    }

    #[test]
    fn equality_either_side_and_in_lists() {
        assert_eq!(set("k = 5"), ints(&[5]));
        assert_eq!(set("5 = k"), ints(&[5]));
        assert_eq!(set("k IN (3, 1, 3)"), ints(&[1, 3]));
        assert_eq!(set("t.k = -2"), ints(&[-2]));
    }

    #[test]
    fn and_intersects_or_unites() {
        assert_eq!(set("k = 1 OR k = 2"), ints(&[1, 2]));
        assert_eq!(set("k IN (1, 2) AND k = 2"), ints(&[2]));
        assert_eq!(set("k = 1 AND k = 2"), KeySet::Empty);
        assert_eq!(set("k = 1 OR x = 2"), KeySet::Any);
        assert_eq!(set("k = 1 AND x = 2"), ints(&[1]));
    }

    #[test]
    fn ranges_and_between() {
        assert_eq!(
            set("k BETWEEN 10 AND 20"),
            KeySet::Interval(Some(10), Some(20))
        );
        assert_eq!(
            set("k >= 10 AND k < 20"),
            KeySet::Interval(Some(10), Some(19))
        );
        assert_eq!(set("k > 10 AND k IN (5, 11)"), ints(&[11]));
    }

    #[test]
    fn row_constructors() {
        assert_eq!(set("(k, x) = (7, 1)"), ints(&[7]));
        assert_eq!(set("(x, k) IN ((1, 2), (3, 4))"), ints(&[2, 4]));
    }

    #[test]
    fn negations_and_functions_are_unconstrained() {
        assert_eq!(set("k NOT IN (1)"), KeySet::Any);
        assert_eq!(set("k = f(1)"), KeySet::Any);
        assert_eq!(set("k <> 1"), KeySet::Any);
    }
}
