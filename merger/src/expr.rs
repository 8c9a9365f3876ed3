//! Expressions evaluated after a merge — HAVING conditions and select items built from
//! aggregates (`COUNT(x) + 1`, `SUM(a) / COUNT(*)`) — with MySQL's rules for NULL, integer,
//! DECIMAL and floating-point arithmetic, and comparisons between numbers and strings.

use crate::value::{Cell, Kind, Row};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (DECIMAL result with 4 more decimals, as `div_precision_increment`)
    Div,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`, `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<=>`
    NullSafeEq,
}

/// A post-merge expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PExpr {
    /// A column of the merged row.
    Col(usize),
    /// NULL.
    Null,
    /// An integer literal.
    Int(i128),
    /// A decimal literal as written.
    Decimal(String),
    /// A string literal.
    Str(String),
    /// Unary minus.
    Neg(Box<PExpr>),
    /// NOT.
    Not(Box<PExpr>),
    /// Arithmetic.
    Arith(ArithOp, Box<PExpr>, Box<PExpr>),
    /// Comparison.
    Cmp(CmpOp, Box<PExpr>, Box<PExpr>),
    /// AND.
    And(Box<PExpr>, Box<PExpr>),
    /// OR.
    Or(Box<PExpr>, Box<PExpr>),
    /// `IS [NOT] NULL`.
    IsNull(Box<PExpr>, bool),
    /// A function call.
    Func(Func, Vec<PExpr>),
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`.
    Case {
        /// The simple form's operand.
        operand: Option<Box<PExpr>>,
        /// `WHEN` / `THEN` pairs.
        whens: Vec<(PExpr, PExpr)>,
        /// `ELSE`.
        otherwise: Option<Box<PExpr>>,
    },
}

/// Functions the post-merge evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// `ROUND(x [, d])`: half away from zero for exact values, to even for floats.
    Round,
    /// `TRUNCATE(x, d)`.
    Truncate,
    /// `ABS(x)`.
    Abs,
    /// `FLOOR(x)`.
    Floor,
    /// `CEIL(x)` / `CEILING(x)`.
    Ceil,
    /// `COALESCE(…)` / `IFNULL(a, b)`.
    Coalesce,
    /// `IF(c, a, b)`.
    If,
    /// `NULLIF(a, b)`.
    NullIf,
    /// `CONCAT(…)`: NULL when any argument is.
    Concat,
    /// `CONCAT_WS(separator, …)`: NULL arguments are skipped.
    ConcatWs,
    /// `UPPER(s)` / `UCASE(s)`.
    Upper,
    /// `LOWER(s)` / `LCASE(s)`.
    Lower,
    /// `LENGTH(s)` / `OCTET_LENGTH(s)`: bytes.
    Length,
    /// `CHAR_LENGTH(s)` / `CHARACTER_LENGTH(s)`: characters.
    CharLength,
    /// `SUBSTRING(s, pos [, len])` / `SUBSTR` / `MID`: characters, `pos` from 1 (negative:
    /// from the end).
    Substring,
    /// `LEFT(s, n)`.
    Left,
    /// `RIGHT(s, n)`.
    Right,
    /// `TRIM(s)`: spaces on both ends.
    Trim,
    /// `YEAR(d)`.
    Year,
    /// `MONTH(d)`.
    Month,
    /// `DAY(d)` / `DAYOFMONTH(d)`.
    Day,
    /// `DATE(d)`: the date part.
    Date,
}

impl Func {
    /// The function of an SQL name and argument count, if the evaluator has it.
    pub fn by_name(name: &str, args: usize) -> Option<Func> {
        Some(match (name.to_ascii_uppercase().as_str(), args) {
            ("ROUND", 1 | 2) => Func::Round,
            ("TRUNCATE", 2) => Func::Truncate,
            ("ABS", 1) => Func::Abs,
            ("FLOOR", 1) => Func::Floor,
            ("CEIL" | "CEILING", 1) => Func::Ceil,
            ("COALESCE", 1..) | ("IFNULL", 2) => Func::Coalesce,
            ("IF", 3) => Func::If,
            ("NULLIF", 2) => Func::NullIf,
            ("CONCAT", 1..) => Func::Concat,
            ("CONCAT_WS", 2..) => Func::ConcatWs,
            ("UPPER" | "UCASE", 1) => Func::Upper,
            ("LOWER" | "LCASE", 1) => Func::Lower,
            ("LENGTH" | "OCTET_LENGTH", 1) => Func::Length,
            ("CHAR_LENGTH" | "CHARACTER_LENGTH", 1) => Func::CharLength,
            ("SUBSTRING" | "SUBSTR" | "MID", 2 | 3) => Func::Substring,
            ("LEFT", 2) => Func::Left,
            ("RIGHT", 2) => Func::Right,
            ("TRIM", 1) => Func::Trim,
            ("YEAR", 1) => Func::Year,
            ("MONTH", 1) => Func::Month,
            ("DAY" | "DAYOFMONTH", 1) => Func::Day,
            ("DATE", 1) => Func::Date,
            _ => return None,
        })
    }
}

/// Rounds `m` (scale `s`) to scale `t` (may be negative), half away from zero unless
/// `truncate`.
fn rescale(m: i128, s: u32, t: i64, truncate: bool) -> Option<V> {
    let out_scale = t.max(0) as u32;
    if t >= s as i64 {
        return Some(V::Dec(m.checked_mul(pow10(out_scale - s)?)?, out_scale));
    }
    let drop = (s as i64 - t) as u32;
    let p = pow10(drop)?;
    let mut q = m / p;
    let r = m % p;
    if !truncate && r.unsigned_abs() * 2 >= p.unsigned_abs() {
        q += m.signum();
    }
    if t < 0 {
        q = q.checked_mul(pow10((-t) as u32)?)?;
    }
    Some(V::Dec(q, out_scale))
}

fn round(v: V, d: i64, truncate: bool) -> V {
    let d = d.clamp(-38, 30);
    match v {
        V::Null => V::Null,
        V::Int(i) if d >= 0 => V::Int(i),
        V::Int(i) => match rescale(i, 0, d, truncate) {
            Some(V::Dec(m, _)) => V::Int(m),
            _ => V::Null,
        },
        V::Dec(m, s) => rescale(m, s, d, truncate).unwrap_or(V::Null),
        other => match other.as_f64() {
            None => V::Null,
            Some(f) => {
                let p = 10f64.powi(d as i32);
                let x = f * p;
                let r = if truncate {
                    x.trunc()
                } else {
                    x.round_ties_even()
                };
                V::Float(r / p)
            }
        },
    }
}

fn eval_func(f: Func, args: Vec<V>) -> V {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(V::Null);
    let int_arg = |i: usize| match arg(i) {
        V::Int(n) => Some(n as i64),
        V::Null => None,
        other => other.as_f64().map(|x| x as i64),
    };
    match f {
        Func::Round => match (arg(0), args.len()) {
            (v, 1) => round(v, 0, false),
            (v, _) => int_arg(1).map_or(V::Null, |d| round(v, d, false)),
        },
        Func::Truncate => int_arg(1).map_or(V::Null, |d| round(arg(0), d, true)),
        Func::Abs => match arg(0) {
            V::Int(i) => V::Int(i.abs()),
            V::Dec(m, s) => V::Dec(m.abs(), s),
            V::Null => V::Null,
            other => other.as_f64().map_or(V::Null, |x| V::Float(x.abs())),
        },
        Func::Floor | Func::Ceil => match arg(0) {
            V::Int(i) => V::Int(i),
            V::Dec(m, s) => {
                let Some(p) = pow10(s) else { return V::Null };
                let (q, r) = (m / p, m % p);
                V::Int(match f {
                    Func::Floor if r < 0 => q - 1,
                    Func::Ceil if r > 0 => q + 1,
                    _ => q,
                })
            }
            V::Null => V::Null,
            other => other.as_f64().map_or(V::Null, |x| {
                V::Float(if f == Func::Floor {
                    x.floor()
                } else {
                    x.ceil()
                })
            }),
        },
        Func::Coalesce => args.into_iter().find(|v| *v != V::Null).unwrap_or(V::Null),
        Func::If => {
            if arg(0).truthy() {
                arg(1)
            } else {
                arg(2)
            }
        }
        Func::NullIf => {
            let (a, b) = (arg(0), arg(1));
            if compare(&a, &b) == Some(Ordering::Equal) {
                V::Null
            } else {
                a
            }
        }
        Func::Concat => {
            let mut out = Vec::new();
            for a in &args {
                match a.to_cell() {
                    Some(b) => out.extend_from_slice(&b),
                    None => return V::Null,
                }
            }
            V::Str(out)
        }
        Func::ConcatWs => {
            let Some(sep) = arg(0).to_cell() else {
                return V::Null;
            };
            let parts: Vec<Vec<u8>> = args.iter().skip(1).filter_map(V::to_cell).collect();
            V::Str(parts.join(sep.as_slice()))
        }
        Func::Upper | Func::Lower | Func::Trim => text_arg(&arg(0)).map_or(V::Null, |t| {
            V::Str(
                match f {
                    Func::Upper => t.to_uppercase(),
                    Func::Lower => t.to_lowercase(),
                    _ => t.trim_matches(' ').to_string(),
                }
                .into_bytes(),
            )
        }),
        Func::Length => arg(0)
            .to_cell()
            .map_or(V::Null, |b| V::Int(b.len() as i128)),
        Func::CharLength => {
            text_arg(&arg(0)).map_or(V::Null, |t| V::Int(t.chars().count() as i128))
        }
        Func::Substring | Func::Left | Func::Right => {
            let (Some(t), Some(n)) = (text_arg(&arg(0)), int_arg(1)) else {
                return V::Null;
            };
            let chars: Vec<char> = t.chars().collect();
            let len = chars.len() as i64;
            let (start, take) = match f {
                Func::Left => (0, n.max(0)),
                Func::Right => ((len - n.max(0)).max(0), n.max(0)),
                _ => {
                    // MySQL: position 0 (or beyond either end) gives ''.
                    let start = if n > 0 { n - 1 } else { len + n };
                    if n == 0 || start < 0 || start >= len {
                        return V::Str(Vec::new());
                    }
                    let take = if args.len() > 2 {
                        match int_arg(2) {
                            Some(l) => l.max(0),
                            None => return V::Null,
                        }
                    } else {
                        len
                    };
                    (start, take)
                }
            };
            V::Str(
                chars
                    .iter()
                    .skip(start as usize)
                    .take(take as usize)
                    .collect::<String>()
                    .into_bytes(),
            )
        }
        Func::Year | Func::Month | Func::Day | Func::Date => {
            let Some(t) = text_arg(&arg(0)) else {
                return V::Null;
            };
            let d = t.trim();
            let part =
                |range: std::ops::Range<usize>| d.get(range).and_then(|p| p.parse::<i128>().ok());
            let shaped = d.len() >= 10 && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-';
            match (f, shaped) {
                (_, false) => V::Null,
                (Func::Year, _) => part(0..4).map_or(V::Null, V::Int),
                (Func::Month, _) => part(5..7).map_or(V::Null, V::Int),
                (Func::Day, _) => part(8..10).map_or(V::Null, V::Int),
                _ => V::Str(d.as_bytes()[..10].to_vec()),
            }
        }
    }
}

/// A value as text (NULL stays None).
fn text_arg(v: &V) -> Option<String> {
    v.to_cell()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// NULL.
    Null,
    /// Integer.
    Int(i128),
    /// Fixed-point decimal: mantissa and scale.
    Dec(i128, u32),
    /// Double.
    Float(f64),
    /// String or other bytes.
    Str(Vec<u8>),
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn parse_decimal(s: &str) -> Option<(i128, u32)> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let scale = frac.len() as u32;
    let neg = int.starts_with('-');
    let digits = format!("{}{}", int.trim_start_matches(['-', '+']), frac);
    let m: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some((if neg { -m } else { m }, scale))
}

/// MySQL's string-to-number conversion: the longest numeric prefix, else 0.
fn str_to_f64(b: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_start();
    let mut end = 0;
    let bytes = s.as_bytes();
    let mut seen_dot = false;
    let mut seen_e = false;
    while end < bytes.len() {
        let c = bytes[end];
        let ok = c.is_ascii_digit()
            || ((c == b'-' || c == b'+') && (end == 0 || matches!(bytes[end - 1], b'e' | b'E')))
            || (c == b'.' && !seen_dot && !seen_e)
            || ((c == b'e' || c == b'E') && !seen_e && end > 0);
        if !ok {
            break;
        }
        seen_dot |= c == b'.';
        seen_e |= c == b'e' || c == b'E';
        end += 1;
    }
    s[..end].parse().unwrap_or_else(|_| {
        s[..end]
            .trim_end_matches(['e', 'E', '-', '+'])
            .parse()
            .unwrap_or(0.0)
    })
}

impl V {
    /// Reads a cell of a kind.
    pub fn from_cell(kind: Kind, cell: &Cell) -> V {
        let Some(b) = cell else { return V::Null };
        let s = String::from_utf8_lossy(b);
        match kind {
            Kind::Int | Kind::Unsigned => s
                .trim()
                .parse()
                .map(V::Int)
                .unwrap_or_else(|_| V::Str(b.clone())),
            Kind::Decimal => parse_decimal(&s)
                .map(|(m, sc)| V::Dec(m, sc))
                .unwrap_or_else(|| V::Str(b.clone())),
            Kind::Float => s.trim().parse().map(V::Float).unwrap_or(V::Null),
            _ => V::Str(b.clone()),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            V::Null => None,
            V::Int(i) => Some(*i as f64),
            V::Dec(m, s) => Some(*m as f64 / 10f64.powi(*s as i32)),
            V::Float(f) => Some(*f),
            V::Str(b) => Some(str_to_f64(b)),
        }
    }

    fn as_dec(&self) -> Option<(i128, u32)> {
        match self {
            V::Int(i) => Some((*i, 0)),
            V::Dec(m, s) => Some((*m, *s)),
            _ => None,
        }
    }

    /// Whether the value counts as true (non-NULL and non-zero).
    pub fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::Int(i) => *i != 0,
            V::Dec(m, _) => *m != 0,
            V::Float(f) => *f != 0.0,
            V::Str(b) => str_to_f64(b) != 0.0,
        }
    }

    /// The value as the text protocol sends it.
    pub fn to_cell(&self) -> Cell {
        match self {
            V::Null => None,
            V::Int(i) => Some(i.to_string().into_bytes()),
            V::Dec(m, s) => Some(format_decimal(*m, *s).into_bytes()),
            V::Float(f) => Some(f.to_string().into_bytes()),
            V::Str(b) => Some(b.clone()),
        }
    }
}

fn format_decimal(m: i128, scale: u32) -> String {
    if scale == 0 {
        return m.to_string();
    }
    let neg = m < 0;
    let digits = m.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{}{i}.{f}", if neg { "-" } else { "" })
}

fn align(a: (i128, u32), b: (i128, u32)) -> Option<(i128, i128, u32)> {
    let s = a.1.max(b.1);
    Some((
        a.0.checked_mul(pow10(s - a.1)?)?,
        b.0.checked_mul(pow10(s - b.1)?)?,
        s,
    ))
}

fn arith(op: ArithOp, a: V, b: V) -> V {
    if a == V::Null || b == V::Null {
        return V::Null;
    }
    let float = matches!(a, V::Float(_) | V::Str(_)) || matches!(b, V::Float(_) | V::Str(_));
    if !float {
        if let (Some(x), Some(y)) = (a.as_dec(), b.as_dec()) {
            let exact = match op {
                ArithOp::Add | ArithOp::Sub => align(x, y).and_then(|(p, q, s)| {
                    let r = if op == ArithOp::Add {
                        p.checked_add(q)
                    } else {
                        p.checked_sub(q)
                    }?;
                    Some(if s == 0 && matches!((&a, &b), (V::Int(_), V::Int(_))) {
                        V::Int(r)
                    } else {
                        V::Dec(r, s)
                    })
                }),
                ArithOp::Mul => x.0.checked_mul(y.0).map(|m| {
                    if x.1 + y.1 == 0 && matches!((&a, &b), (V::Int(_), V::Int(_))) {
                        V::Int(m)
                    } else {
                        V::Dec(m, x.1 + y.1)
                    }
                }),
                ArithOp::Div => {
                    if y.0 == 0 {
                        return V::Null;
                    }
                    // Result scale: the dividend's scale + 4, rounded half away from zero.
                    let s = x.1 + 4;
                    let num = pow10(s + y.1 + 1 - x.1).and_then(|p| x.0.checked_mul(p));
                    num.map(|n| {
                        let q = n / y.0;
                        let r = if q >= 0 { (q + 5) / 10 } else { (q - 5) / 10 };
                        V::Dec(r, s)
                    })
                }
            };
            if let Some(v) = exact {
                return v;
            }
        }
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return V::Null;
    };
    match op {
        ArithOp::Add => V::Float(x + y),
        ArithOp::Sub => V::Float(x - y),
        ArithOp::Mul => V::Float(x * y),
        ArithOp::Div if y == 0.0 => V::Null,
        ArithOp::Div => V::Float(x / y),
    }
}

fn compare(a: &V, b: &V) -> Option<Ordering> {
    match (a, b) {
        (V::Null, _) | (_, V::Null) => None,
        (V::Str(x), V::Str(y)) => {
            let fold = |v: &[u8]| {
                String::from_utf8_lossy(v)
                    .trim_end_matches(' ')
                    .to_lowercase()
            };
            Some(fold(x).cmp(&fold(y)))
        }
        _ => match (a.as_dec(), b.as_dec()) {
            (Some(x), Some(y)) => align(x, y)
                .map(|(p, q, _)| p.cmp(&q))
                .or_else(|| a.as_f64()?.partial_cmp(&b.as_f64()?)),
            _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
        },
    }
}

impl PExpr {
    /// The same expression with every column index mapped.
    pub fn map_cols(&self, f: &dyn Fn(usize) -> usize) -> PExpr {
        let m = |e: &PExpr| Box::new(e.map_cols(f));
        match self {
            PExpr::Col(c) => PExpr::Col(f(*c)),
            PExpr::Neg(e) => PExpr::Neg(m(e)),
            PExpr::Not(e) => PExpr::Not(m(e)),
            PExpr::Arith(op, a, b) => PExpr::Arith(*op, m(a), m(b)),
            PExpr::Cmp(op, a, b) => PExpr::Cmp(*op, m(a), m(b)),
            PExpr::And(a, b) => PExpr::And(m(a), m(b)),
            PExpr::Or(a, b) => PExpr::Or(m(a), m(b)),
            PExpr::IsNull(e, n) => PExpr::IsNull(m(e), *n),
            PExpr::Func(func, args) => {
                PExpr::Func(*func, args.iter().map(|a| a.map_cols(f)).collect())
            }
            PExpr::Case {
                operand,
                whens,
                otherwise,
            } => PExpr::Case {
                operand: operand.as_ref().map(|o| m(o)),
                whens: whens
                    .iter()
                    .map(|(w, t)| (w.map_cols(f), t.map_cols(f)))
                    .collect(),
                otherwise: otherwise.as_ref().map(|o| m(o)),
            },
            leaf => leaf.clone(),
        }
    }

    /// Every column index the expression reads.
    pub fn cols(&self, out: &mut Vec<usize>) {
        match self {
            PExpr::Col(c) => out.push(*c),
            PExpr::Neg(e) | PExpr::Not(e) | PExpr::IsNull(e, _) => e.cols(out),
            PExpr::Arith(_, a, b) | PExpr::Cmp(_, a, b) | PExpr::And(a, b) | PExpr::Or(a, b) => {
                a.cols(out);
                b.cols(out);
            }
            PExpr::Func(_, args) => args.iter().for_each(|a| a.cols(out)),
            PExpr::Case {
                operand,
                whens,
                otherwise,
            } => {
                for e in operand.iter().chain(otherwise.iter()) {
                    e.cols(out);
                }
                for (w, t) in whens {
                    w.cols(out);
                    t.cols(out);
                }
            }
            _ => {}
        }
    }

    /// Evaluates over a merged row.
    pub fn eval(&self, kinds: &[Kind], row: &Row) -> V {
        match self {
            PExpr::Col(c) => V::from_cell(
                kinds.get(*c).copied().unwrap_or(Kind::Binary),
                row.get(*c).unwrap_or(&None),
            ),
            PExpr::Null => V::Null,
            PExpr::Int(i) => V::Int(*i),
            PExpr::Decimal(d) => parse_decimal(d)
                .map(|(m, s)| V::Dec(m, s))
                .unwrap_or(V::Null),
            PExpr::Str(s) => V::Str(s.clone().into_bytes()),
            PExpr::Neg(e) => arith(ArithOp::Sub, V::Int(0), e.eval(kinds, row)),
            PExpr::Not(e) => match e.eval(kinds, row) {
                V::Null => V::Null,
                v => V::Int(i128::from(!v.truthy())),
            },
            PExpr::Arith(op, a, b) => arith(*op, a.eval(kinds, row), b.eval(kinds, row)),
            PExpr::Cmp(op, a, b) => {
                let (x, y) = (a.eval(kinds, row), b.eval(kinds, row));
                if *op == CmpOp::NullSafeEq {
                    return V::Int(i128::from(match (&x, &y) {
                        (V::Null, V::Null) => true,
                        (V::Null, _) | (_, V::Null) => false,
                        _ => compare(&x, &y) == Some(Ordering::Equal),
                    }));
                }
                match compare(&x, &y) {
                    None => V::Null,
                    Some(o) => V::Int(i128::from(match op {
                        CmpOp::Eq | CmpOp::NullSafeEq => o == Ordering::Equal,
                        CmpOp::Ne => o != Ordering::Equal,
                        CmpOp::Lt => o == Ordering::Less,
                        CmpOp::Le => o != Ordering::Greater,
                        CmpOp::Gt => o == Ordering::Greater,
                        CmpOp::Ge => o != Ordering::Less,
                    })),
                }
            }
            PExpr::And(a, b) => match (a.eval(kinds, row), b.eval(kinds, row)) {
                (x, _) if x != V::Null && !x.truthy() => V::Int(0),
                (_, y) if y != V::Null && !y.truthy() => V::Int(0),
                (V::Null, _) | (_, V::Null) => V::Null,
                _ => V::Int(1),
            },
            PExpr::Or(a, b) => match (a.eval(kinds, row), b.eval(kinds, row)) {
                (x, _) if x.truthy() => V::Int(1),
                (_, y) if y.truthy() => V::Int(1),
                (V::Null, _) | (_, V::Null) => V::Null,
                _ => V::Int(0),
            },
            PExpr::IsNull(e, negated) => {
                V::Int(i128::from((e.eval(kinds, row) == V::Null) != *negated))
            }
            PExpr::Func(f, args) => {
                eval_func(*f, args.iter().map(|a| a.eval(kinds, row)).collect())
            }
            PExpr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let subject = operand.as_ref().map(|o| o.eval(kinds, row));
                for (w, t) in whens {
                    let hit = match &subject {
                        Some(x) => compare(x, &w.eval(kinds, row)) == Some(Ordering::Equal),
                        None => w.eval(kinds, row).truthy(),
                    };
                    if hit {
                        return t.eval(kinds, row);
                    }
                }
                otherwise.as_ref().map_or(V::Null, |o| o.eval(kinds, row))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(e: PExpr) -> V {
        e.eval(&[], &vec![])
    }

    fn b(e: PExpr) -> Box<PExpr> {
        Box::new(e)
    }

    #[test]
    fn string_and_date_functions_follow_mysql() {
        let st = |x: &str| PExpr::Str(x.into());
        let f = |func, args| eval(PExpr::Func(func, args));
        let text = |v: V| String::from_utf8(v.to_cell().unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            text(f(Func::Substring, vec![st("Quadratic"), PExpr::Int(5)])),
            "ratic"
        );
        assert_eq!(
            text(f(Func::Substring, vec![st("Sakila"), PExpr::Int(-3)])),
            "ila"
        );
        assert_eq!(
            text(f(
                Func::Substring,
                vec![st("Quadratic"), PExpr::Int(5), PExpr::Int(3)]
            )),
            "rat"
        );
        assert_eq!(text(f(Func::Substring, vec![st("abc"), PExpr::Int(0)])), "");
        assert_eq!(text(f(Func::Left, vec![st("zoë!"), PExpr::Int(3)])), "zoë");
        assert_eq!(
            text(f(Func::Right, vec![st("zoë!"), PExpr::Int(9)])),
            "zoë!"
        );
        assert_eq!(f(Func::Concat, vec![st("a"), PExpr::Null]), V::Null);
        assert_eq!(
            text(f(
                Func::ConcatWs,
                vec![st(","), st("a"), PExpr::Null, PExpr::Int(3)]
            )),
            "a,3"
        );
        assert_eq!(f(Func::Length, vec![st("zoë")]), V::Int(4));
        assert_eq!(f(Func::CharLength, vec![st("zoë")]), V::Int(3));
        assert_eq!(f(Func::Year, vec![st("2024-06-01 10:00:00")]), V::Int(2024));
        assert_eq!(f(Func::Month, vec![st("2024-06-01")]), V::Int(6));
        assert_eq!(
            text(f(Func::Date, vec![st("2024-06-01 10:00:00.5")])),
            "2024-06-01"
        );
        assert_eq!(f(Func::Day, vec![st("not a date")]), V::Null);
    }

    #[test]
    fn round_truncate_and_friends_follow_mysql() {
        let dec = |s: &str| PExpr::Decimal(s.into());
        let f = |func, args| eval(PExpr::Func(func, args));
        assert_eq!(
            f(Func::Round, vec![dec("2.345"), PExpr::Int(2)]),
            V::Dec(235, 2)
        );
        assert_eq!(
            f(Func::Round, vec![dec("-2.345"), PExpr::Int(2)]),
            V::Dec(-235, 2)
        );
        assert_eq!(f(Func::Round, vec![dec("2.5")]), V::Dec(3, 0));
        assert_eq!(
            f(Func::Round, vec![dec("1.5"), PExpr::Int(3)]),
            V::Dec(1500, 3)
        );
        assert_eq!(
            f(Func::Round, vec![PExpr::Int(1250), PExpr::Int(-2)]),
            V::Int(1300)
        );
        assert_eq!(
            f(Func::Truncate, vec![dec("-2.349"), PExpr::Int(2)]),
            V::Dec(-234, 2)
        );
        assert_eq!(f(Func::Round, vec![PExpr::Null, PExpr::Int(2)]), V::Null);
        assert_eq!(f(Func::Floor, vec![dec("-2.5")]), V::Int(-3));
        assert_eq!(f(Func::Ceil, vec![dec("2.1")]), V::Int(3));
        assert_eq!(f(Func::Abs, vec![dec("-2.10")]), V::Dec(210, 2));
        assert_eq!(
            f(Func::Coalesce, vec![PExpr::Null, PExpr::Int(4)]),
            V::Int(4)
        );
        assert_eq!(
            f(Func::If, vec![PExpr::Int(0), PExpr::Int(1), PExpr::Int(2)]),
            V::Int(2)
        );
        assert_eq!(f(Func::NullIf, vec![PExpr::Int(3), PExpr::Int(3)]), V::Null);
        let case = PExpr::Case {
            operand: Some(b(PExpr::Int(2))),
            whens: vec![
                (PExpr::Int(1), PExpr::Str("one".into())),
                (PExpr::Int(2), PExpr::Str("two".into())),
            ],
            otherwise: None,
        };
        assert_eq!(eval(case), V::Str(b"two".to_vec()));
    }

    #[test]
    fn integer_and_decimal_arithmetic_is_exact() {
        assert_eq!(
            eval(PExpr::Arith(
                ArithOp::Add,
                b(PExpr::Int(1)),
                b(PExpr::Int(2))
            )),
            V::Int(3)
        );
        assert_eq!(
            eval(PExpr::Arith(
                ArithOp::Add,
                b(PExpr::Decimal("1.50".into())),
                b(PExpr::Int(2))
            ))
            .to_cell(),
            Some(b"3.50".to_vec())
        );
        assert_eq!(
            eval(PExpr::Arith(
                ArithOp::Div,
                b(PExpr::Int(10)),
                b(PExpr::Int(4))
            ))
            .to_cell(),
            Some(b"2.5000".to_vec())
        );
        assert_eq!(
            eval(PExpr::Arith(
                ArithOp::Div,
                b(PExpr::Int(2)),
                b(PExpr::Int(3))
            ))
            .to_cell(),
            Some(b"0.6667".to_vec())
        );
        assert_eq!(
            eval(PExpr::Arith(
                ArithOp::Div,
                b(PExpr::Int(1)),
                b(PExpr::Int(0))
            )),
            V::Null
        );
    }

    #[test]
    fn comparisons_follow_mysql_coercion_and_null() {
        let cmp = |op, x, y| eval(PExpr::Cmp(op, b(x), b(y)));
        assert_eq!(
            cmp(CmpOp::Eq, PExpr::Int(1000), PExpr::Str("1000".into())),
            V::Int(1)
        );
        assert_eq!(
            cmp(
                CmpOp::Eq,
                PExpr::Int(1000),
                PExpr::Decimal("1000.00".into())
            ),
            V::Int(1)
        );
        assert_eq!(
            cmp(CmpOp::Lt, PExpr::Int(1000), PExpr::Str("5".into())),
            V::Int(0)
        );
        assert_eq!(cmp(CmpOp::Eq, PExpr::Null, PExpr::Int(1)), V::Null);
        assert_eq!(cmp(CmpOp::NullSafeEq, PExpr::Null, PExpr::Null), V::Int(1));
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(
            eval(PExpr::And(b(PExpr::Null), b(PExpr::Int(0)))),
            V::Int(0)
        );
        assert_eq!(eval(PExpr::Or(b(PExpr::Null), b(PExpr::Int(1)))), V::Int(1));
        assert_eq!(eval(PExpr::Or(b(PExpr::Null), b(PExpr::Int(0)))), V::Null);
    }

    #[test]
    fn strings_in_arithmetic_use_their_numeric_prefix() {
        assert_eq!(
            eval(PExpr::Arith(
                ArithOp::Add,
                b(PExpr::Str("12abc".into())),
                b(PExpr::Int(1))
            )),
            V::Float(13.0)
        );
        assert_eq!(
            eval(PExpr::Arith(
                ArithOp::Add,
                b(PExpr::Str("abc".into())),
                b(PExpr::Int(1))
            )),
            V::Float(1.0)
        );
    }
}
