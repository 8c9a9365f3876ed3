//! The binary protocol of prepared statements: the COM_STMT_PREPARE answer, the parameters
//! of COM_STMT_EXECUTE, and result rows in binary form.
//!
//! Shards answer myshard in the text protocol (results may be merged from several of them),
//! so binary rows are encoded here from text values and the column definitions.

use super::response::put_lenenc_bytes;
use myshard_router::text::TextMode;
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;
use mysql_common::packets::Column;
use mysql_common::proto::MySerialize;
use mysql_common::value::{BinValue, Value, ValueDeserializer};
use std::collections::HashMap;

/// The first packet of the answer to COM_STMT_PREPARE.
pub fn prepare_ok(id: u32, columns: u16, params: u16, warnings: u16) -> Vec<u8> {
    let mut buf = Vec::with_capacity(12);
    buf.push(0x00);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&columns.to_le_bytes());
    buf.extend_from_slice(&params.to_le_bytes());
    buf.push(0);
    buf.extend_from_slice(&warnings.to_le_bytes());
    buf
}

/// The definition sent for each parameter marker, as MySQL sends it.
pub fn param_column() -> Column {
    Column::new(ColumnType::MYSQL_TYPE_VAR_STRING)
        .with_name(b"?")
        .with_character_set(63)
        .with_flags(ColumnFlags::BINARY_FLAG)
}

/// The type of one parameter as the client declared it.
pub type ParamType = (ColumnType, ColumnFlags);

/// A decoded COM_STMT_EXECUTE.
#[derive(Debug, Clone, PartialEq)]
pub struct Execute {
    /// Cursor flags (myshard always sends the rows with the answer).
    pub cursor_flags: u8,
    /// Parameter types bound by this or an earlier execution.
    pub types: Vec<ParamType>,
    /// Parameter values, in marker order.
    pub params: Vec<Value>,
}

/// Types a parameter may be sent as; anything else is refused rather than guessed.
fn known_param_type(byte: u8) -> Option<ColumnType> {
    use ColumnType::*;
    let t = ColumnType::try_from(byte).ok()?;
    matches!(
        t,
        MYSQL_TYPE_DECIMAL
            | MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
            | MYSQL_TYPE_NULL
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_DATE
            | MYSQL_TYPE_TIME
            | MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_YEAR
            | MYSQL_TYPE_NEWDATE
            | MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_BIT
            | MYSQL_TYPE_JSON
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_ENUM
            | MYSQL_TYPE_SET
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_STRING
            | MYSQL_TYPE_GEOMETRY
    )
    .then_some(t)
}

/// Decodes the body of COM_STMT_EXECUTE (after the statement id) for a statement with `n`
/// parameters. `bound` holds the types of the previous execution (used when the client does
/// not send them again); parameters in `long_data` were sent with COM_STMT_SEND_LONG_DATA.
pub fn parse_execute(
    body: &[u8],
    n: usize,
    bound: &[ParamType],
    long_data: &HashMap<u16, Vec<u8>>,
) -> Result<Execute, String> {
    let malformed = || "malformed COM_STMT_EXECUTE packet".to_string();
    let cursor_flags = *body.first().ok_or_else(malformed)?;
    // flags (1) + iteration count (4)
    let mut rest = body.get(5..).ok_or_else(malformed)?;
    if n == 0 {
        return Ok(Execute {
            cursor_flags,
            types: Vec::new(),
            params: Vec::new(),
        });
    }
    let bitmap_len = n.div_ceil(8);
    let bitmap = rest.get(..bitmap_len).ok_or_else(malformed)?;
    let new_bound = *rest.get(bitmap_len).ok_or_else(malformed)?;
    rest = &rest[bitmap_len + 1..];
    let types: Vec<ParamType> = if new_bound == 1 {
        let raw = rest.get(..2 * n).ok_or_else(malformed)?;
        rest = &rest[2 * n..];
        raw.chunks_exact(2)
            .map(|pair| {
                let t = known_param_type(pair[0])
                    .ok_or_else(|| format!("parameter type {} is not supported", pair[0]))?;
                let flags = if pair[1] & 0x80 != 0 {
                    ColumnFlags::UNSIGNED_FLAG
                } else {
                    ColumnFlags::empty()
                };
                Ok((t, flags))
            })
            .collect::<Result<_, String>>()?
    } else if bound.len() == n {
        bound.to_vec()
    } else {
        return Err(
            "COM_STMT_EXECUTE sent no parameter types and none were bound before".to_string(),
        );
    };
    let mut buf = ParseBuf(rest);
    let mut params = Vec::with_capacity(n);
    for (i, &(t, flags)) in types.iter().enumerate() {
        if let Some(data) = long_data.get(&(i as u16)) {
            params.push(Value::Bytes(data.clone()));
            continue;
        }
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            params.push(Value::NULL);
            continue;
        }
        let v: ValueDeserializer<BinValue> = buf
            .parse((t, flags))
            .map_err(|_| format!("parameter {} is cut short", i + 1))?;
        params.push(v.0);
    }
    Ok(Execute {
        cursor_flags,
        types,
        params,
    })
}

/// Whether `s` is a plain decimal number (digits, optional sign, point and exponent).
fn is_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = mantissa.chars().filter(|c| c.is_ascii_digit()).count();
    digits > 0
        && mantissa.chars().filter(|&c| c == '.').count() <= 1
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && exp.is_none_or(|e| {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        })
}

/// The SQL literal (canonical text) a parameter value stands for in the statement text:
/// strings are text in the session's character set, as a server reads them.
pub fn param_literal(value: &Value, ty: ColumnType, mode: &TextMode) -> String {
    match value {
        Value::Bytes(b)
            if matches!(
                ty,
                ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL
            ) =>
        {
            match std::str::from_utf8(b) {
                Ok(s) if is_number(s) => s.to_string(),
                _ => myshard_router::text::quote_in(b, mode),
            }
        }
        Value::Bytes(b) => myshard_router::text::quote_in(b, mode),
        Value::Float(f) if !f.is_finite() => "NULL".to_string(),
        Value::Double(f) if !f.is_finite() => "NULL".to_string(),
        // Keep a float's shortest round-trip form; an integral double must stay a double
        // literal for MySQL, not become an integer.
        Value::Double(f) => format!("{f:e}"),
        Value::Float(f) => format!("{f:e}"),
        other => other.as_sql(false),
    }
}

/// Substitutes parameter literals for the `?` markers at `markers` (byte offsets).
pub fn bind(sql: &str, markers: &[usize], literals: &[String]) -> String {
    let extra: usize = literals.iter().map(|l| l.len()).sum();
    let mut out = String::with_capacity(sql.len() + extra);
    let mut last = 0;
    for (&at, lit) in markers.iter().zip(literals) {
        out.push_str(&sql[last..at]);
        out.push_str(lit);
        last = at + 1;
    }
    out.push_str(&sql[last..]);
    out
}

/// Why a value cannot be sent as its column's binary type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value '{value}' of column '{column}' cannot be sent as {ty:?} in a binary row")]
pub struct EncodeError {
    /// Column label.
    pub column: String,
    /// The value as text.
    pub value: String,
    /// The column's declared type.
    pub ty: ColumnType,
}

fn text_of(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::Bytes(b) => std::str::from_utf8(b).ok().map(std::borrow::Cow::Borrowed),
        Value::Int(i) => Some(i.to_string().into()),
        Value::UInt(u) => Some(u.to_string().into()),
        Value::Float(f) => Some(f.to_string().into()),
        Value::Double(d) => Some(d.to_string().into()),
        _ => None,
    }
}

/// Parses `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`.
fn parse_datetime(s: &str) -> Option<Value> {
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-');
    let year: u16 = d.next()?.parse().ok()?;
    let month: u8 = d.next()?.parse().ok()?;
    let day: u8 = d.next()?.parse().ok()?;
    let (h, m, sec, us) = match time {
        Some(t) => parse_clock(t)?,
        None => (0, 0, 0, 0),
    };
    Some(Value::Date(year, month, day, h as u8, m, sec, us))
}

/// Parses `H…H:MM:SS[.ffffff]` into hours, minutes, seconds and microseconds.
fn parse_clock(t: &str) -> Option<(u32, u8, u8, u32)> {
    let (hms, frac) = match t.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (t, None),
    };
    let mut p = hms.splitn(3, ':');
    let h: u32 = p.next()?.parse().ok()?;
    let m: u8 = p.next()?.parse().ok()?;
    let s: u8 = p.next()?.parse().ok()?;
    let us = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|c| c.is_ascii_digit()) => {
            let n: u32 = f.parse().ok()?;
            n * 10u32.pow(6 - f.len() as u32)
        }
        Some(_) => return None,
        None => 0,
    };
    Some((h, m, s, us))
}

fn parse_time(s: &str) -> Option<Value> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (h, m, sec, us) = parse_clock(body)?;
    Some(Value::Time(neg, h / 24, (h % 24) as u8, m, sec, us))
}

/// Appends one non-NULL value in the binary form of `col`'s type.
fn put_binary(buf: &mut Vec<u8>, col: &Column, v: &Value) -> Result<(), EncodeError> {
    use ColumnType::*;
    let fail = || EncodeError {
        column: col.name_str().into_owned(),
        value: text_of(v).map(|s| s.into_owned()).unwrap_or_default(),
        ty: col.column_type(),
    };
    let int = || -> Result<i64, EncodeError> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::UInt(u) => Ok(*u as i64),
            _ => {
                let s = text_of(v).ok_or_else(fail)?;
                s.parse::<i64>()
                    .or_else(|_| s.parse::<u64>().map(|u| u as i64))
                    .map_err(|_| fail())
            }
        }
    };
    let float = || -> Result<f64, EncodeError> {
        match v {
            Value::Float(f) => Ok(f64::from(*f)),
            Value::Double(d) => Ok(*d),
            _ => text_of(v)
                .ok_or_else(fail)?
                .parse::<f64>()
                .map_err(|_| fail()),
        }
    };
    match col.column_type() {
        MYSQL_TYPE_TINY => buf.push(int()? as u8),
        MYSQL_TYPE_SHORT | MYSQL_TYPE_YEAR => buf.extend_from_slice(&(int()? as u16).to_le_bytes()),
        MYSQL_TYPE_LONG | MYSQL_TYPE_INT24 => buf.extend_from_slice(&(int()? as u32).to_le_bytes()),
        MYSQL_TYPE_LONGLONG => buf.extend_from_slice(&int()?.to_le_bytes()),
        MYSQL_TYPE_FLOAT => buf.extend_from_slice(&(float()? as f32).to_le_bytes()),
        MYSQL_TYPE_DOUBLE => buf.extend_from_slice(&float()?.to_le_bytes()),
        MYSQL_TYPE_DATE | MYSQL_TYPE_DATETIME | MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_NEWDATE => {
            let d = match v {
                Value::Date(..) => v.clone(),
                _ => parse_datetime(&text_of(v).ok_or_else(fail)?).ok_or_else(fail)?,
            };
            d.serialize(buf);
        }
        MYSQL_TYPE_TIME => {
            let t = match v {
                Value::Time(..) => v.clone(),
                _ => parse_time(&text_of(v).ok_or_else(fail)?).ok_or_else(fail)?,
            };
            t.serialize(buf);
        }
        _ => match v {
            Value::Bytes(b) => put_lenenc_bytes(buf, b),
            other => {
                let s = text_of(other)
                    .map(|s| s.into_owned())
                    .unwrap_or_else(|| other.as_sql(true).trim_matches('\'').to_string());
                put_lenenc_bytes(buf, s.as_bytes());
            }
        },
    }
    Ok(())
}

/// One binary-protocol row packet for `values` under `columns`.
pub fn binary_row_packet(columns: &[Column], values: &[Value]) -> Result<Vec<u8>, EncodeError> {
    let n = values.len();
    let bitmap_len = (n + 7 + 2) / 8;
    let mut buf = Vec::with_capacity(1 + bitmap_len + n * 8);
    buf.push(0x00);
    buf.resize(1 + bitmap_len, 0);
    for (i, v) in values.iter().enumerate() {
        if matches!(v, Value::NULL) {
            buf[1 + (i + 2) / 8] |= 1 << ((i + 2) % 8);
            continue;
        }
        match columns.get(i) {
            Some(col) => put_binary(&mut buf, col, v)?,
            None => put_lenenc_bytes(&mut buf, text_of(v).unwrap_or_default().as_bytes()),
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::row::Row;
    use std::sync::Arc;

    fn col(t: ColumnType, flags: ColumnFlags) -> Column {
        Column::new(t).with_name(b"c").with_flags(flags)
    }

    /// Decodes a binary row with mysql_common's client-side decoder.
    fn decode(columns: &[Column], packet: &[u8]) -> Vec<Value> {
        use mysql_common::row::RowDeserializer;
        let row: RowDeserializer<mysql_common::value::ServerSide, mysql_common::proto::Binary> =
            ParseBuf(packet)
                .parse(Arc::from(columns.to_vec().into_boxed_slice()))
                .expect("a valid binary row");
        let row: Row = row.into();
        row.unwrap()
    }

    #[test]
    fn text_values_become_typed_binary_values() {
        let columns = vec![
            col(ColumnType::MYSQL_TYPE_LONG, ColumnFlags::empty()),
            col(ColumnType::MYSQL_TYPE_LONGLONG, ColumnFlags::UNSIGNED_FLAG),
            col(ColumnType::MYSQL_TYPE_NEWDECIMAL, ColumnFlags::empty()),
            col(ColumnType::MYSQL_TYPE_DATETIME, ColumnFlags::empty()),
            col(ColumnType::MYSQL_TYPE_DATE, ColumnFlags::empty()),
            col(ColumnType::MYSQL_TYPE_TIME, ColumnFlags::empty()),
            col(ColumnType::MYSQL_TYPE_DOUBLE, ColumnFlags::empty()),
            col(ColumnType::MYSQL_TYPE_VAR_STRING, ColumnFlags::empty()),
            col(ColumnType::MYSQL_TYPE_TINY, ColumnFlags::empty()),
        ];
        let values = vec![
            Value::Bytes(b"-42".to_vec()),
            Value::Bytes(b"18446744073709551615".to_vec()),
            Value::Bytes(b"12.50".to_vec()),
            Value::Bytes(b"2024-02-29 13:14:15.25".to_vec()),
            Value::Bytes(b"2024-02-29".to_vec()),
            Value::Bytes(b"-838:59:59".to_vec()),
            Value::Bytes(b"0.5".to_vec()),
            Value::NULL,
            Value::Bytes(b"-1".to_vec()),
        ];
        let packet = binary_row_packet(&columns, &values).expect("encodable");
        let back = decode(&columns, &packet);
        assert_eq!(back[0], Value::Int(-42));
        assert_eq!(back[1], Value::UInt(u64::MAX));
        assert_eq!(back[2], Value::Bytes(b"12.50".to_vec()));
        assert_eq!(back[3], Value::Date(2024, 2, 29, 13, 14, 15, 250_000));
        assert_eq!(back[4], Value::Date(2024, 2, 29, 0, 0, 0, 0));
        assert_eq!(back[5], Value::Time(true, 34, 22, 59, 59, 0));
        assert_eq!(back[6], Value::Double(0.5));
        assert_eq!(back[7], Value::NULL);
        assert_eq!(back[8], Value::Int(-1));
    }

    #[test]
    fn a_value_that_does_not_fit_its_column_is_an_error() {
        let columns = vec![col(ColumnType::MYSQL_TYPE_LONG, ColumnFlags::empty())];
        assert!(binary_row_packet(&columns, &[Value::Bytes(b"abc".to_vec())]).is_err());
    }

    #[test]
    fn execute_parameters_decode_with_types_nulls_and_long_data() {
        // flags, iteration count, bitmap (param 2 NULL), new-params-bound, types, values
        let mut body = vec![0u8, 1, 0, 0, 0, 0b010, 1];
        body.extend_from_slice(&[ColumnType::MYSQL_TYPE_LONGLONG as u8, 0]);
        body.extend_from_slice(&[ColumnType::MYSQL_TYPE_VAR_STRING as u8, 0]);
        body.extend_from_slice(&[ColumnType::MYSQL_TYPE_BLOB as u8, 0]);
        body.extend_from_slice(&7i64.to_le_bytes());
        let long: HashMap<u16, Vec<u8>> = [(2u16, b"big".to_vec())].into();
        let e = parse_execute(&body, 3, &[], &long).expect("valid");
        assert_eq!(
            e.params,
            vec![Value::Int(7), Value::NULL, Value::Bytes(b"big".to_vec())]
        );
        // Re-execution without types reuses the bound ones.
        let again = parse_execute(
            &[0, 1, 0, 0, 0, 0b110, 0, 9, 0, 0, 0, 0, 0, 0, 0],
            3,
            &e.types,
            &HashMap::new(),
        )
        .expect("valid");
        assert_eq!(again.params, vec![Value::Int(9), Value::NULL, Value::NULL]);
        assert!(parse_execute(&body[..9], 3, &[], &HashMap::new()).is_err());
        let mut bad = body.clone();
        bad[7] = 0xEE;
        assert!(parse_execute(&bad, 3, &[], &HashMap::new()).is_err());
    }

    #[test]
    fn literals_and_binding() {
        assert_eq!(
            param_literal(
                &Value::Bytes(b"it's".to_vec()),
                ColumnType::MYSQL_TYPE_VAR_STRING,
                &TextMode::default()
            ),
            "'it''s'"
        );
        assert_eq!(
            param_literal(
                &Value::Bytes(b"1.50".to_vec()),
                ColumnType::MYSQL_TYPE_NEWDECIMAL,
                &TextMode::default()
            ),
            "1.50"
        );
        assert_eq!(
            param_literal(
                &Value::Bytes(b"1; DROP".to_vec()),
                ColumnType::MYSQL_TYPE_NEWDECIMAL,
                &TextMode::default()
            ),
            "'1; DROP'"
        );
        assert_eq!(
            param_literal(
                &Value::Double(2.0),
                ColumnType::MYSQL_TYPE_DOUBLE,
                &TextMode::default()
            ),
            "2e0"
        );
        let sql = "SELECT ? , '?' FROM t WHERE a = ?";
        let at = myshard_router::lexer::placeholders(sql);
        assert_eq!(
            bind(sql, &at, &["1".into(), "'x'".into()]),
            "SELECT 1 , '?' FROM t WHERE a = 'x'"
        );
    }
}
