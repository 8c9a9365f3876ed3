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

/// MySQL's most digits of a DECIMAL, and most decimals.
const DECIMAL_MAX_PRECISION: u32 = 65;
const DECIMAL_MAX_SCALE: u8 = 38;
/// Digits SUM adds to its argument's precision (MySQL's DECIMAL_LONGLONG_DIGITS).
const SUM_EXTRA_DIGITS: u32 = 22;
/// Decimals AVG adds (`div_precision_increment`).
const AVG_EXTRA_DECIMALS: u8 = 4;

fn is_unsigned(col: &Column) -> bool {
    col.flags().contains(ColumnFlags::UNSIGNED_FLAG)
}

/// The digits of a numeric column, from its display length (as MySQL's
/// `decimal_precision()`): the length without the sign and the decimal point.
fn precision(col: &Column) -> u32 {
    let sign = u32::from(!is_unsigned(col));
    let point = u32::from(col.decimals() > 0 && col.decimals() < 31);
    col.column_length().saturating_sub(sign + point)
}

/// A DECIMAL result column named as `col`, with `digits` precision and `decimals` scale
/// (length as MySQL's `my_decimal_precision_to_length`).
fn decimal_column(col: &Column, digits: u32, decimals: u8) -> Column {
    let digits = digits.min(DECIMAL_MAX_PRECISION);
    let decimals = decimals.min(DECIMAL_MAX_SCALE);
    Column::new(ColumnType::MYSQL_TYPE_NEWDECIMAL)
        .with_schema(col.schema_ref())
        .with_table(col.table_ref())
        .with_org_table(col.org_table_ref())
        .with_name(col.name_ref())
        .with_org_name(col.org_name_ref())
        .with_character_set(63)
        .with_flags(ColumnFlags::BINARY_FLAG)
        .with_column_length(digits + u32::from(decimals > 0) + 1)
        .with_decimals(decimals)
}

/// SUM over values of the integer or DECIMAL column `arg`, as MySQL types it.
fn sum_column(arg: &Column) -> Column {
    decimal_column(arg, precision(arg) + SUM_EXTRA_DIGITS, arg.decimals())
}

/// AVG over values of the integer or DECIMAL column `arg`, as MySQL types it.
fn avg_column(arg: &Column) -> Column {
    decimal_column(
        arg,
        precision(arg) + u32::from(AVG_EXTRA_DECIMALS),
        arg.decimals().saturating_add(AVG_EXTRA_DECIMALS),
    )
}

/// AVG typed from the shards' SUM column (whose argument had 22 fewer digits).
fn avg_column_from_sum(sum: &Column) -> Column {
    let arg_digits = precision(sum).saturating_sub(SUM_EXTRA_DIGITS);
    decimal_column(
        sum,
        arg_digits + u32::from(AVG_EXTRA_DECIMALS),
        sum.decimals().saturating_add(AVG_EXTRA_DECIMALS),
    )
}

/// COUNT's column.
fn count_column(name: &[u8]) -> Column {
    Column::new(ColumnType::MYSQL_TYPE_LONGLONG)
        .with_name(name)
        .with_character_set(63)
        .with_column_length(21)
        .with_flags(ColumnFlags::NOT_NULL_FLAG | ColumnFlags::BINARY_FLAG)
}

/// Flags a UNION's result columns never carry: its rows come from a temporary table, not
/// from the branches' tables, so no key or default belongs to them.
fn table_flags() -> ColumnFlags {
    ColumnFlags::PRI_KEY_FLAG
        | ColumnFlags::UNIQUE_KEY_FLAG
        | ColumnFlags::MULTIPLE_KEY_FLAG
        | ColumnFlags::PART_KEY_FLAG
        | ColumnFlags::NO_DEFAULT_VALUE_FLAG
        | ColumnFlags::AUTO_INCREMENT_FLAG
        | ColumnFlags::ON_UPDATE_NOW_FLAG
}

/// A UNION result column from one branch's: without table flags, and nullable unless
/// `not_null` (every branch's column is NOT NULL).
pub fn union_column(col: &Column, not_null: bool) -> Column {
    let mut flags = col.flags() - table_flags();
    if !not_null {
        flags -= ColumnFlags::NOT_NULL_FLAG;
    }
    col.clone().with_flags(flags)
}

/// The type of a UNION column whose branches have types `a` and `b`, where MySQL widens
/// within a family: CHAR with VARCHAR is VARCHAR; integers take the widest. Other pairs keep
/// `a` (the kinds already agree, see [`check_same_shape`]).
fn union_type(a: ColumnType, b: ColumnType) -> ColumnType {
    use ColumnType::*;
    let int_rank = |t: ColumnType| match t {
        MYSQL_TYPE_TINY => Some(1),
        MYSQL_TYPE_SHORT => Some(2),
        MYSQL_TYPE_INT24 => Some(3),
        MYSQL_TYPE_LONG => Some(4),
        MYSQL_TYPE_LONGLONG => Some(5),
        _ => None,
    };
    let text = |t: ColumnType| {
        matches!(
            t,
            MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR
        )
    };
    match (int_rank(a), int_rank(b)) {
        (Some(x), Some(y)) => return if y > x { b } else { a },
        _ if text(a) && text(b) && a != b => return MYSQL_TYPE_VAR_STRING,
        _ => {}
    }
    a
}

/// A UNION's result columns from every branch's: the first branch's names and types, the
/// longest length and most decimals, NOT NULL only where every branch's column is.
pub fn union_columns(branches: &[&[Column]]) -> Vec<Column> {
    let Some(first) = branches.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let same: Vec<&Column> = branches.iter().filter_map(|b| b.get(i)).collect();
            let not_null = same
                .iter()
                .all(|c| c.flags().contains(ColumnFlags::NOT_NULL_FLAG));
            let length = same.iter().map(|c| c.column_length()).max().unwrap_or(0);
            let decimals = same.iter().map(|c| c.decimals()).max().unwrap_or(0);
            let ty = same
                .iter()
                .skip(1)
                .fold(col.column_type(), |t, c| union_type(t, c.column_type()));
            let mut out = union_column(col, not_null)
                .with_column_length(length)
                .with_decimals(decimals);
            if ty != col.column_type() {
                out = Column::new(ty)
                    .with_schema(out.schema_ref())
                    .with_table(out.table_ref())
                    .with_org_table(out.org_table_ref())
                    .with_name(out.name_ref())
                    .with_org_name(out.org_name_ref())
                    .with_character_set(out.character_set())
                    .with_column_length(out.column_length())
                    .with_flags(out.flags())
                    .with_decimals(out.decimals());
            }
            out
        })
        .collect()
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
            return Err(ProxyError::unmergeable(format!(
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

/// The client's column definitions of a merged result (`resolved` has its helper columns
/// resolved): the shards' definitions of the output columns, except for aggregates the shards
/// answered with something else — COUNT/SUM/AVG(DISTINCT x) came back as x, AVG(x) as
/// SUM(x) — which get the definitions MySQL would announce.
pub fn client_columns(resolved: &SelectMerge, columns: &[Column], kinds: &[Kind]) -> Vec<Column> {
    let mut out_columns: Vec<Column> = resolved
        .output
        .iter()
        .filter_map(|c| columns.get(*c).cloned())
        .collect();
    let distinct_counts: Vec<usize> = resolved
        .count_distinct
        .iter()
        .flat_map(|cd| cd.counts.iter().copied())
        .collect();
    let distinct_sums: Vec<usize> = resolved
        .count_distinct
        .iter()
        .flat_map(|cd| cd.sums.iter().copied())
        .collect();
    for (pos, c) in resolved.output.iter().enumerate() {
        let Some(col) = out_columns.get_mut(pos) else {
            continue;
        };
        let numeric = matches!(
            kinds.get(*c),
            Some(Kind::Decimal | Kind::Int | Kind::Unsigned)
        );
        let avg = resolved
            .aggregates
            .iter()
            .any(|a| a.col == *c && a.func == AggFunc::Avg);
        let over_x = distinct_sums.contains(c);
        if distinct_counts.contains(c) {
            *col = count_column(col.name_ref());
        } else if avg && numeric {
            *col = if over_x {
                avg_column(col)
            } else {
                avg_column_from_sum(col)
            };
        } else if over_x && numeric {
            *col = sum_column(col);
        }
    }
    out_columns
}

/// Refuses a merge whose ORDER BY is on an ENUM or SET column: MySQL orders those by their
/// position in the definition, which their values (and collation weights) do not carry.
pub fn check_sortable(spec: &SelectMerge, columns: &[Column]) -> Result<(), ProxyError> {
    for k in &spec.order_by {
        if let Some(col) = columns.get(k.col) {
            if col
                .flags()
                .intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG)
            {
                return Err(ProxyError::unmergeable(format!(
                    "ORDER BY the ENUM/SET column '{}' across several shards is not supported yet (MySQL orders it by definition position); ORDER BY {}+0 or CAST({} AS CHAR) says which order you mean",
                    col.name_str(),
                    col.name_str(),
                    col.name_str()
                )));
            }
        }
    }
    Ok(())
}

/// Merges the shards' rows and returns the client's column definitions and rows.
pub fn merge_select(
    spec: &SelectMerge,
    columns: &[Column],
    per_shard: Vec<Vec<Vec<Cell>>>,
    memory_limit: usize,
) -> Result<Merged, ProxyError> {
    let resolved = resolve(spec, columns.len(), hidden_count(spec));
    check_sortable(&resolved, columns)?;
    let kinds: Vec<Kind> = columns.iter().map(kind_of).collect();
    let (rows, cuts) = resolved
        .merge_noting_cuts(&kinds, per_shard, memory_limit)
        .map_err(|e| match e {
            MergeError::TooLarge(_) => ProxyError::sql(1038, "HY001", e.to_string()),
            MergeError::Unsupported(m) => ProxyError::unmergeable(m),
        })?;
    let out_columns = client_columns(&resolved, columns, &kinds);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, flags: ColumnFlags) -> Column {
        Column::new(ColumnType::MYSQL_TYPE_STRING)
            .with_name(name.as_bytes())
            .with_character_set(45)
            .with_column_length(24)
            .with_flags(flags)
    }

    #[test]
    fn order_by_an_enum_is_refused_and_text_is_not() {
        let spec = SelectMerge {
            order_by: vec![myshard_merger::SortKey {
                col: 1,
                desc: false,
            }],
            output: vec![0, 1],
            group_by: None,
            aggregates: vec![],
            distinct: false,
            offset: 0,
            limit: None,
            weights: vec![],
            computed: vec![],
            having: None,
            count_distinct: vec![],
            group_concat: None,
            presorted: true,
            rollup: false,
        };
        let enum_col = [
            text("id", ColumnFlags::empty()),
            text("size", ColumnFlags::ENUM_FLAG),
        ];
        let e = check_sortable(&spec, &enum_col).expect_err("refused");
        assert!(e.to_err().2.contains("ENUM/SET column 'size'"), "{e:?}");
        let plain = [
            text("id", ColumnFlags::empty()),
            text("name", ColumnFlags::empty()),
        ];
        assert!(check_sortable(&spec, &plain).is_ok());
    }

    #[test]
    fn avg_and_sum_are_typed_as_mysql_types_them() {
        let int = Column::new(ColumnType::MYSQL_TYPE_LONG)
            .with_name(b"points")
            .with_column_length(11);
        assert_eq!(
            (
                sum_column(&int).column_length(),
                sum_column(&int).decimals()
            ),
            (33, 0)
        );
        assert_eq!(
            (
                avg_column(&int).column_length(),
                avg_column(&int).decimals()
            ),
            (16, 4)
        );
        let dec = Column::new(ColumnType::MYSQL_TYPE_NEWDECIMAL)
            .with_name(b"bonus")
            .with_column_length(10)
            .with_decimals(2);
        let sum = sum_column(&dec);
        assert_eq!((sum.column_length(), sum.decimals()), (32, 2));
        let avg = avg_column_from_sum(&sum);
        assert_eq!((avg.column_length(), avg.decimals()), (14, 6));
    }
}
