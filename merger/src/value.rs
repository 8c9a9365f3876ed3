//! Cells of text-protocol rows and how MySQL compares and adds them.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// One cell: NULL or the bytes the text protocol carries.
pub type Cell = Option<Vec<u8>>;

/// A row of cells.
pub type Row = Vec<Cell>;

/// How a column's values compare, from its column definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Signed integers.
    Int,
    /// Unsigned integers.
    Unsigned,
    /// DECIMAL: exact.
    Decimal,
    /// FLOAT/DOUBLE.
    Float,
    /// DATE, DATETIME, TIMESTAMP, YEAR: fixed-width text that sorts as written.
    Temporal,
    /// TIME: may be negative or longer than a day.
    Time,
    /// Character strings: compared by their collation (through a WEIGHT_STRING column).
    Text,
    /// Binary strings and everything else: bytewise.
    Binary,
}

/// Splits a decimal text into (negative, integer digits, fraction digits), normalised.
fn decimal_parts(s: &[u8]) -> (bool, Vec<u8>, Vec<u8>) {
    let s = std::str::from_utf8(s).unwrap_or("0").trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: Vec<u8> = int.trim_start_matches('0').bytes().collect();
    let frac: Vec<u8> = frac.trim_end_matches('0').bytes().collect();
    let zero = int.is_empty() && frac.is_empty();
    (neg && !zero, int, frac)
}

fn cmp_magnitude(a: &(Vec<u8>, Vec<u8>), b: &(Vec<u8>, Vec<u8>)) -> Ordering {
    a.0.len()
        .cmp(&b.0.len())
        .then_with(|| a.0.cmp(&b.0))
        .then_with(|| a.1.cmp(&b.1))
}

/// Compares two decimal texts exactly.
pub fn cmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let (na, ia, fa) = decimal_parts(a);
    let (nb, ib, fb) = decimal_parts(b);
    match (na, nb) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => cmp_magnitude(&(ia, fa), &(ib, fb)),
        (true, true) => cmp_magnitude(&(ib, fb), &(ia, fa)),
    }
}

/// Adds two decimal texts exactly; the result keeps the larger scale of the two.
pub fn add_decimal(a: &[u8], b: &[u8]) -> Vec<u8> {
    let scale = |s: &[u8]| {
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.split_once('.'))
            .map_or(0, |(_, f)| f.len())
    };
    let sc = scale(a).max(scale(b));
    // Integers scaled by 10^sc, as digit vectors (little-endian) with a sign.
    let to_digits = |s: &[u8]| -> (bool, Vec<u8>) {
        let (neg, int, frac) = decimal_parts(s);
        let mut frac = frac;
        frac.resize(sc, b'0');
        let mut all: Vec<u8> = int
            .into_iter()
            .chain(frac)
            .map(|c| c.saturating_sub(b'0'))
            .collect();
        all.reverse();
        (neg, all)
    };
    let (na, da) = to_digits(a);
    let (nb, db) = to_digits(b);
    let cmp_abs = |x: &[u8], y: &[u8]| {
        let trim = |v: &[u8]| v.iter().rposition(|d| *d != 0).map_or(0, |p| p + 1);
        let (lx, ly) = (trim(x), trim(y));
        lx.cmp(&ly)
            .then_with(|| x[..lx].iter().rev().cmp(y[..ly].iter().rev()))
    };
    let (neg, digits) = if na == nb {
        let mut out = Vec::with_capacity(da.len().max(db.len()) + 1);
        let mut carry = 0u8;
        for i in 0..da.len().max(db.len()) {
            let s = da.get(i).copied().unwrap_or(0) + db.get(i).copied().unwrap_or(0) + carry;
            out.push(s % 10);
            carry = s / 10;
        }
        if carry > 0 {
            out.push(carry);
        }
        (na, out)
    } else {
        let (big, small, neg) = if cmp_abs(&da, &db) == Ordering::Less {
            (&db, &da, nb)
        } else {
            (&da, &db, na)
        };
        let mut out = Vec::with_capacity(big.len());
        let mut borrow = 0i8;
        for (i, digit) in big.iter().enumerate() {
            let mut d = *digit as i8 - small.get(i).copied().unwrap_or(0) as i8 - borrow;
            borrow = 0;
            if d < 0 {
                d += 10;
                borrow = 1;
            }
            out.push(d as u8);
        }
        (neg, out)
    };
    let mut digits = digits;
    while digits.len() < sc + 1 {
        digits.push(0);
    }
    while digits.len() > sc + 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    let zero = digits.iter().all(|d| *d == 0);
    let mut text: Vec<u8> = Vec::with_capacity(digits.len() + 2);
    if neg && !zero {
        text.push(b'-');
    }
    for (i, d) in digits.iter().enumerate().rev() {
        text.push(b'0' + d);
        if i == sc && sc > 0 {
            text.push(b'.');
        }
    }
    text
}

/// Divides a decimal text by a positive integer count, rounding half away from zero to
/// `scale` fraction digits (MySQL's AVG with `div_precision_increment`).
pub fn div_decimal(sum: &[u8], count: u64, scale: usize) -> Vec<u8> {
    let (neg, int, frac) = decimal_parts(sum);
    // Work on the digits of |sum| * 10^(scale + 1), as a big number in base 10.
    let mut digits: Vec<u8> = int
        .into_iter()
        .chain(frac.iter().copied())
        .map(|c| c - b'0')
        .collect();
    let shift = (scale + 1) as isize - frac.len() as isize;
    if shift >= 0 {
        digits.extend(std::iter::repeat_n(0, shift as usize));
    } else {
        digits.truncate((digits.len() as isize + shift).max(0) as usize);
    }
    let mut quotient = Vec::with_capacity(digits.len());
    let mut rem: u128 = 0;
    for d in digits {
        rem = rem * 10 + d as u128;
        quotient.push((rem / count as u128) as u8);
        rem %= count as u128;
    }
    // Round on the extra digit.
    let last = quotient.pop().unwrap_or(0);
    if last >= 5 {
        let mut i = quotient.len();
        loop {
            if i == 0 {
                quotient.insert(0, 1);
                break;
            }
            i -= 1;
            if quotient[i] == 9 {
                quotient[i] = 0;
            } else {
                quotient[i] += 1;
                break;
            }
        }
    }
    while quotient.len() < scale + 1 {
        quotient.insert(0, 0);
    }
    let split = quotient.len() - scale;
    let int_part: Vec<u8> = quotient[..split]
        .iter()
        .skip_while(|d| **d == 0)
        .copied()
        .collect();
    let mut out = Vec::new();
    let zero = quotient.iter().all(|d| *d == 0);
    if neg && !zero {
        out.push(b'-');
    }
    if int_part.is_empty() {
        out.push(b'0');
    } else {
        out.extend(int_part.iter().map(|d| b'0' + d));
    }
    if scale > 0 {
        out.push(b'.');
        out.extend(quotient[split..].iter().map(|d| b'0' + d));
    }
    out
}

fn parse_time(s: &[u8]) -> f64 {
    let s = std::str::from_utf8(s).unwrap_or("0");
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut secs = 0.0;
    for part in s.split(':') {
        secs = secs * 60.0 + part.parse::<f64>().unwrap_or(0.0);
    }
    if neg {
        -secs
    } else {
        secs
    }
}

/// Compares two non-NULL values of a kind (Text compares bytewise here: callers compare
/// text through its weight column).
pub fn cmp_values(kind: Kind, a: &[u8], b: &[u8]) -> Ordering {
    let num = |s: &[u8]| {
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.trim().parse::<i128>().ok())
    };
    match kind {
        Kind::Int | Kind::Unsigned => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => cmp_decimal(a, b),
        },
        Kind::Decimal => cmp_decimal(a, b),
        Kind::Float => {
            let f = |s: &[u8]| {
                std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            f(a).partial_cmp(&f(b)).unwrap_or(Ordering::Equal)
        }
        Kind::Time => parse_time(a)
            .partial_cmp(&parse_time(b))
            .unwrap_or(Ordering::Equal),
        Kind::Temporal | Kind::Text | Kind::Binary => a.cmp(b),
    }
}

/// One sort-key cell decoded once, so that comparing it again and again (sorting, the k-way
/// merge) does not parse text each time. Compares as [`cmp_cells`] does for its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    /// NULL: before every value.
    Null,
    /// An integer.
    Int(i128),
    /// A FLOAT/DOUBLE, or a TIME in seconds.
    Float(f64),
    /// Compare the bytes of this column of the row (dates, binary strings, collation
    /// weights), as decimals when the kind is [`Kind::Decimal`].
    Raw(usize),
}

impl SortValue {
    /// Decodes column `col` of `row` (`raw` is the column whose bytes order it: the
    /// collation weight of text, else `col` itself).
    pub fn decode(kind: Kind, row: &[Cell], col: usize, raw: usize) -> SortValue {
        let Some(Some(v)) = row.get(col) else {
            return SortValue::Null;
        };
        let text = || std::str::from_utf8(v).ok().map(str::trim);
        match kind {
            Kind::Int | Kind::Unsigned => match text().and_then(|t| t.parse::<i128>().ok()) {
                Some(n) => SortValue::Int(n),
                None => SortValue::Raw(col),
            },
            Kind::Float => SortValue::Float(text().and_then(|t| t.parse().ok()).unwrap_or(0.0)),
            Kind::Time => SortValue::Float(parse_time(v)),
            Kind::Text => SortValue::Raw(raw),
            Kind::Decimal | Kind::Temporal | Kind::Binary => SortValue::Raw(col),
        }
    }

    /// Compares two decoded cells of the same column of rows `ra` and `rb`.
    pub fn cmp_in(&self, ra: &[Cell], other: &SortValue, rb: &[Cell], kind: Kind) -> Ordering {
        let bytes = |row: &[Cell], c: usize| -> Vec<u8> {
            row.get(c).cloned().flatten().unwrap_or_default()
        };
        match (self, other) {
            (SortValue::Null, SortValue::Null) => Ordering::Equal,
            (SortValue::Null, _) => Ordering::Less,
            (_, SortValue::Null) => Ordering::Greater,
            (SortValue::Int(x), SortValue::Int(y)) => x.cmp(y),
            (SortValue::Float(x), SortValue::Float(y)) => {
                x.partial_cmp(y).unwrap_or(Ordering::Equal)
            }
            (SortValue::Raw(c), SortValue::Raw(d)) => {
                let (a, b) = (
                    ra.get(*c).and_then(|v| v.as_deref()).unwrap_or_default(),
                    rb.get(*d).and_then(|v| v.as_deref()).unwrap_or_default(),
                );
                if matches!(kind, Kind::Decimal | Kind::Int | Kind::Unsigned) {
                    cmp_decimal(a, b)
                } else {
                    a.cmp(b)
                }
            }
            // An integer beside one that did not parse: compare both texts exactly.
            (SortValue::Int(n), SortValue::Raw(d)) => {
                cmp_decimal(n.to_string().as_bytes(), &bytes(rb, *d))
            }
            (SortValue::Raw(c), SortValue::Int(n)) => {
                cmp_decimal(&bytes(ra, *c), n.to_string().as_bytes())
            }
            _ => Ordering::Equal,
        }
    }
}

/// MySQL's ordering of cells: NULL before every value.
pub fn cmp_cells(kind: Kind, a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp_values(kind, x, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(cmp_decimal(b"10.5", b"9.99"), Ordering::Greater);
        assert_eq!(cmp_decimal(b"-10.5", b"-9.99"), Ordering::Less);
        assert_eq!(cmp_decimal(b"0.00", b"-0"), Ordering::Equal);
        assert_eq!(
            cmp_decimal(
                b"123456789012345678901234567890.1",
                b"123456789012345678901234567890.09"
            ),
            Ordering::Greater
        );
    }

    #[test]
    fn decimals_add_exactly() {
        assert_eq!(add_decimal(b"1.50", b"2.75"), b"4.25".to_vec());
        assert_eq!(add_decimal(b"10", b"-12.5"), b"-2.5".to_vec());
        assert_eq!(add_decimal(b"-3.25", b"3.25"), b"0.00".to_vec());
        assert_eq!(
            add_decimal(b"99999999999999999999", b"1"),
            b"100000000000000000000".to_vec()
        );
    }

    #[test]
    fn averages_round_like_mysql() {
        assert_eq!(div_decimal(b"10", 3, 4), b"3.3333".to_vec());
        assert_eq!(div_decimal(b"20", 3, 4), b"6.6667".to_vec());
        assert_eq!(div_decimal(b"-20", 3, 4), b"-6.6667".to_vec());
        assert_eq!(div_decimal(b"1.50", 2, 6), b"0.750000".to_vec());
        assert_eq!(div_decimal(b"0", 5, 4), b"0.0000".to_vec());
    }

    #[test]
    fn nulls_sort_first_and_integers_by_value() {
        assert_eq!(
            cmp_cells(Kind::Int, &None, &Some(b"-5".to_vec())),
            Ordering::Less
        );
        assert_eq!(
            cmp_cells(Kind::Int, &Some(b"10".to_vec()), &Some(b"9".to_vec())),
            Ordering::Greater
        );
        assert_eq!(
            cmp_cells(
                Kind::Unsigned,
                &Some(b"18446744073709551615".to_vec()),
                &Some(b"1".to_vec())
            ),
            Ordering::Greater
        );
        assert_eq!(
            cmp_cells(
                Kind::Time,
                &Some(b"-01:00:00".to_vec()),
                &Some(b"00:30:00".to_vec())
            ),
            Ordering::Less
        );
    }
}
