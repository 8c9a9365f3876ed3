//! The bridge between backend rows (`mysql_common` values and column definitions) and the
//! merger's cells and kinds.

use crate::error::ProxyError;
use myshard_merger::{AggFunc, Cell, Kind, MergeError, SelectMerge};
use myshard_sql_rewrite::merge::{hidden_count, resolve};
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::packets::Column;
use mysql_common::value::Value;

/// Text-protocol values as cells.
pub fn cells(row: Vec<Value>) -> Vec<Cell> {
    row.into_iter()
        .map(|v| match v {
            Value::NULL => None,
            Value::Bytes(b) => Some(b),
            other => Some(other.as_sql(true).trim_matches('\'').as_bytes().to_vec()),
        })
        .collect()
}

/// How a column's values compare.
pub fn kind_of(c: &Column) -> Kind {
    use ColumnType::*;
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    match c.column_type() {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_LONGLONG
        | MYSQL_TYPE_INT24 | MYSQL_TYPE_YEAR => {
            if unsigned {
                Kind::Unsigned
            } else {
                Kind::Int
            }
        }
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Kind::Decimal,
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => Kind::Float,
        MYSQL_TYPE_DATE
        | MYSQL_TYPE_NEWDATE
        | MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP2 => Kind::Temporal,
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => Kind::Time,
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET
        | MYSQL_TYPE_JSON => {
            if c.character_set() == 63 {
                Kind::Binary
            } else {
                Kind::Text
            }
        }
        _ => Kind::Binary,
    }
}

/// The definition of a DECIMAL result computed from `col` (as MySQL types SUM and AVG of
/// integers): same names, `extra` more decimals.
fn decimal_column(col: &Column, extra: u8) -> Column {
    let decimals = col.decimals().saturating_add(extra).min(30);
    Column::new(ColumnType::MYSQL_TYPE_NEWDECIMAL)
        .with_schema(col.schema_ref())
        .with_table(col.table_ref())
        .with_org_table(col.org_table_ref())
        .with_name(col.name_ref())
        .with_org_name(col.org_name_ref())
        .with_character_set(63)
        .with_flags(ColumnFlags::BINARY_FLAG | ColumnFlags::NUM_FLAG)
        .with_column_length(col.column_length().saturating_add(u32::from(extra) + 2))
        .with_decimals(decimals)
}

/// Checks that another target's result can be sent, and merged, under the definitions the
/// first target's result announced: same number of columns, and each column of the same
/// kind (signed and unsigned integers together; a NULL-typed column fits anything).
pub fn check_same_shape(
    announced: &[Column],
    other: &[Column],
    shard: &str,
) -> Result<(), ProxyError> {
    if announced.len() != other.len() {
        return Err(ProxyError::sql(
            1105,
            "HY000",
            format!("shard '{shard}' returned {} columns where another returned {}; the shards' schemas differ", other.len(), announced.len()),
        ));
    }
    let class = |c: &Column| match kind_of(c) {
        Kind::Unsigned => Kind::Int,
        k => k,
    };
    for (i, (a, b)) in announced.iter().zip(other).enumerate() {
        let null = |c: &Column| c.column_type() == ColumnType::MYSQL_TYPE_NULL;
        if !null(a) && !null(b) && class(a) != class(b) {
            return Err(ProxyError::not_supported(format!(
                "column {} ('{}') is {:?} on one target and {:?} on another (shard '{shard}'); myshard cannot combine them exactly — CAST them to one type",
                i + 1,
                a.name_str(),
                class(a),
                class(b)
            )));
        }
    }
    Ok(())
}

/// A merged result: the client's column definitions, rows, and the numbers of the rows whose
/// GROUP_CONCAT was cut.
pub type Merged = (Vec<Column>, Vec<Vec<Value>>, Vec<u64>);

/// Merges the shards' rows and returns the client's column definitions and rows.
pub fn merge_select(
    spec: &SelectMerge,
    columns: &[Column],
    per_shard: Vec<Vec<Vec<Cell>>>,
    memory_limit: usize,
) -> Result<Merged, ProxyError> {
    let resolved = resolve(spec, columns.len(), hidden_count(spec));
    let kinds: Vec<Kind> = columns.iter().map(kind_of).collect();
    let (rows, cuts) = resolved
        .merge_noting_cuts(&kinds, per_shard, memory_limit)
        .map_err(|e| match e {
            MergeError::TooLarge(_) => ProxyError::sql(1038, "HY001", e.to_string()),
            MergeError::Unsupported(m) => ProxyError::not_supported(m),
        })?;
    let mut out_columns: Vec<Column> = resolved
        .output
        .iter()
        .filter_map(|c| columns.get(*c).cloned())
        .collect();
    // COUNT(DISTINCT x): the shards returned x; the client gets a BIGINT count.
    if let Some(cd) = &resolved.count_distinct {
        for c in &cd.counts {
            if let Some(pos) = resolved.output.iter().position(|o| o == c) {
                if let Some(col) = out_columns.get_mut(pos) {
                    *col = crate::protocol::resultset::int_column(&col.name_str());
                }
            }
        }
    }
    // SUM(DISTINCT x) of integers: the shards returned x; MySQL's SUM is a DECIMAL.
    if let Some(cd) = &resolved.count_distinct {
        for c in &cd.sums {
            let int = matches!(kinds.get(*c), Some(Kind::Int | Kind::Unsigned));
            if let Some(pos) = resolved.output.iter().position(|o| o == c) {
                if let Some(col) = out_columns.get_mut(pos).filter(|_| int) {
                    *col = decimal_column(col, 0);
                }
            }
        }
    }
    // AVG's column: the shards returned SUM (or x, for AVG(DISTINCT x)); MySQL's AVG has 4
    // more decimals (div_precision_increment).
    for agg in resolved
        .aggregates
        .iter()
        .filter(|a| a.func == AggFunc::Avg)
    {
        if let Some(pos) = resolved.output.iter().position(|c| *c == agg.col) {
            if let Some(col) = out_columns.get_mut(pos) {
                if matches!(
                    kinds.get(agg.col),
                    Some(Kind::Decimal | Kind::Int | Kind::Unsigned)
                ) {
                    *col = decimal_column(col, 4);
                }
            }
        }
    }
    let rows = rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|c| c.map_or(Value::NULL, Value::Bytes))
                .collect()
        })
        .collect();
    Ok((out_columns, rows, cuts))
}
