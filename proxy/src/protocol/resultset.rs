//! Result sets in the text protocol: column count, column definitions, rows, terminator.

use super::response::{eof_packet, put_lenenc_bytes, put_lenenc_int, Ok};
use mysql_common::constants::{ColumnFlags, ColumnType, StatusFlags};
use mysql_common::packets::Column;
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

/// One column definition packet (Protocol::ColumnDefinition41). Written field by field:
/// mysql_common 0.37's `Column::serialize` puts the column length before the character set,
/// which clients then read as a garbled length and character set.
pub fn column_packet(col: &Column) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    put_lenenc_bytes(&mut buf, b"def");
    for part in [
        col.schema_ref(),
        col.table_ref(),
        col.org_table_ref(),
        col.name_ref(),
        col.org_name_ref(),
    ] {
        put_lenenc_bytes(&mut buf, part);
    }
    buf.push(0x0c);
    buf.extend_from_slice(&col.character_set().to_le_bytes());
    buf.extend_from_slice(&col.column_length().to_le_bytes());
    buf.push(col.column_type() as u8);
    buf.extend_from_slice(&col.flags().bits().to_le_bytes());
    buf.push(col.decimals());
    buf.extend_from_slice(&[0, 0]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::proto::MyDeserialize;

    #[test]
    fn column_definitions_read_back_as_written() {
        let col = Column::new(ColumnType::MYSQL_TYPE_VAR_STRING)
            .with_schema(b"shop")
            .with_table(b"o")
            .with_org_table(b"orders")
            .with_name(b"label")
            .with_org_name(b"note")
            .with_character_set(45)
            .with_column_length(80)
            .with_flags(ColumnFlags::NOT_NULL_FLAG | ColumnFlags::MULTIPLE_KEY_FLAG)
            .with_decimals(39);
        let packet = column_packet(&col);
        let mut buf = mysql_common::io::ParseBuf(&packet);
        let back = Column::deserialize((), &mut buf).expect("parses");
        assert_eq!(back.schema_str(), "shop");
        assert_eq!(back.table_str(), "o");
        assert_eq!(back.org_table_str(), "orders");
        assert_eq!(back.name_str(), "label");
        assert_eq!(back.org_name_str(), "note");
        assert_eq!(back.character_set(), 45);
        assert_eq!(back.column_length(), 80);
        assert_eq!(back.column_type(), ColumnType::MYSQL_TYPE_VAR_STRING);
        assert_eq!(
            back.flags(),
            ColumnFlags::NOT_NULL_FLAG | ColumnFlags::MULTIPLE_KEY_FLAG
        );
        assert_eq!(back.decimals(), 39);
        assert!(buf.is_empty(), "{} bytes left", buf.len());
    }
}
