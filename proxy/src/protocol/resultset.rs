//! Result sets in the text protocol: column count, column definitions, rows, terminator.

use super::response::{eof_packet, put_lenenc_bytes, put_lenenc_int, Ok};
use mysql_common::constants::{ColumnFlags, ColumnType, StatusFlags};
use mysql_common::packets::Column;
use mysql_common::proto::MySerialize;
use mysql_common::value::Value;

/// utf8mb4_general_ci, the collation of columns myshard computes itself.
pub const UTF8MB4_GENERAL_CI: u16 = 45;

/// A text column definition for a value myshard computes itself.
pub fn text_column(name: &str) -> Column {
    Column::new(ColumnType::MYSQL_TYPE_VAR_STRING)
        .with_name(name.as_bytes())
        .with_org_name(name.as_bytes())
        .with_character_set(UTF8MB4_GENERAL_CI)
        .with_column_length(1024)
}

/// An integer column definition for a value myshard computes itself.
pub fn int_column(name: &str) -> Column {
    Column::new(ColumnType::MYSQL_TYPE_LONGLONG)
        .with_name(name.as_bytes())
        .with_org_name(name.as_bytes())
        .with_character_set(63)
        .with_column_length(21)
        .with_flags(ColumnFlags::BINARY_FLAG | ColumnFlags::NUM_FLAG)
}

/// The column-count packet.
pub fn column_count_packet(n: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(9);
    put_lenenc_int(&mut buf, n as u64);
    buf
}

/// One column definition packet.
pub fn column_packet(col: &Column) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    col.serialize(&mut buf);
    buf
}

/// Appends one value in the text protocol.
pub fn put_text_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::NULL => buf.push(0xFB),
        Value::Bytes(b) => put_lenenc_bytes(buf, b),
        Value::Int(i) => put_lenenc_bytes(buf, i.to_string().as_bytes()),
        Value::UInt(u) => put_lenenc_bytes(buf, u.to_string().as_bytes()),
        Value::Float(f) => put_lenenc_bytes(buf, f.to_string().as_bytes()),
        Value::Double(d) => put_lenenc_bytes(buf, d.to_string().as_bytes()),
        other => {
            // Dates and times: their SQL literal without the quotes.
            let sql = other.as_sql(true);
            put_lenenc_bytes(buf, sql.trim_matches('\'').as_bytes());
        }
    }
}

/// One text-protocol row packet.
pub fn text_row_packet(values: &[Value]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(values.len() * 8);
    for v in values {
        put_text_value(&mut buf, v);
    }
    buf
}

/// The packet that ends the column definitions (legacy clients only), if any.
pub fn columns_end_packet(deprecate_eof: bool, status: StatusFlags) -> Option<Vec<u8>> {
    (!deprecate_eof).then(|| eof_packet(0, status))
}

/// The packet that ends the rows.
pub fn rows_end_packet(deprecate_eof: bool, warnings: u16, status: StatusFlags) -> Vec<u8> {
    if deprecate_eof {
        Ok {
            status,
            warnings,
            ..Ok::default()
        }
        .encode(0xFE)
    } else {
        eof_packet(warnings, status)
    }
}
