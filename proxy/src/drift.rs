//! The schema drift check (admin `CHECK SCHEMA`, `myshard check --schema`): every logical
//! table placed by a rule is compared across the shards and physical tables that hold it. A
//! DDL statement that failed on some shards (DDL cannot be rolled back) leaves such a
//! difference; this names it.

use crate::error::ProxyError;
use crate::session::Session;
use myshard_config::Config;
use myshard_router::columns::{
    column_source, columns_sql, unique_keys_from_rows, unique_keys_sql, UniqueKey,
};
use myshard_router::placement::all_targets;
use myshard_router::text::{quote, quote_ident};
use mysql_common::value::Value;
use std::collections::HashMap;

/// One logical table's definition on one target, normalised: the physical name replaced by
/// the logical one, the AUTO_INCREMENT counter dropped.
fn normalised(create: &str, physical: &str, logical: &str) -> String {
    let quoted = format!("`{physical}`");
    let mut out = create.replacen(&quoted, &format!("`{logical}`"), 1);
    if let Some(at) = out.find(" AUTO_INCREMENT=") {
        let end = out[at + 1..].find(' ').map_or(out.len(), |e| at + 1 + e);
        out.replace_range(at..end, "");
    }
    out
}

/// Reads rows from a shard's primary: through the pool for the admin command, over
/// connections of its own for `myshard check --schema`.
pub(crate) trait ShardReader {
    /// The rows `sql` returns on `shard`.
    async fn read(&mut self, shard: &str, sql: &str) -> Result<Vec<Vec<Value>>, ProxyError>;
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// What `myshard check --schema` finds in the tables' keys and columns.
#[derive(Debug, Default)]
pub(crate) struct KeyFindings {
    /// A sharding column the table does not have: nothing can be placed by it (a mistake in
    /// the shard map, or in the table).
    pub errors: Vec<String>,
    /// A primary or unique key without the sharding column: unique on each shard only.
    pub warnings: Vec<String>,
}

/// For every sharded table (read on the first shard of its rule): an error when it lacks
/// its sharding column, a warning for each primary or unique key that does not contain that
/// column (such a key is unique per shard only, and myshard refuses upserts into the table).
pub(crate) async fn key_findings<R: ShardReader>(
    config: &Config,
    reader: &mut R,
) -> Result<KeyFindings, ProxyError> {
    let mut found = KeyFindings::default();
    for schema in &config.schemas {
        for table in &schema.tables {
            let (Some(rule), Some(column)) = (schema.rule(&table.rule), table.column.as_deref())
            else {
                continue;
            };
            if rule.kind == myshard_config::RuleKind::Broadcast {
                continue;
            }
            let Some((shard, physical)) = column_source(schema, &table.name) else {
                continue;
            };
            let columns: Vec<String> = reader
                .read(&shard, &columns_sql(schema.physical_database(), &physical))
                .await?
                .iter()
                .map(|row| text_of(row.first()))
                .collect();
            // A table that is not there is the drift report's to name.
            if !columns.is_empty() && !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                found.errors.push(format!(
                    "{}.{}: the sharding column '{column}' (rule '{}') is not a column of the table on shard '{shard}' (it has {}); no row can be placed by it",
                    schema.name,
                    table.name,
                    rule.name,
                    columns.join(", ")
                ));
                continue;
            }
            let rows = reader
                .read(
                    &shard,
                    &unique_keys_sql(schema.physical_database(), &physical),
                )
                .await?;
            let keys = unique_keys_from_rows(
                rows.iter()
                    .map(|row| (text_of(row.first()), text_of(row.get(1)))),
            );
            for UniqueKey {
                name,
                columns: cols,
            } in keys
            {
                if !cols.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                    found.warnings.push(format!(
                        "{}.{}: unique key {} ({}) does not contain the sharding column '{column}': it is unique on each shard only, and myshard refuses INSERT … ON DUPLICATE KEY UPDATE, INSERT IGNORE and REPLACE into the table",
                        schema.name,
                        table.name,
                        if name == "PRIMARY" { name.clone() } else { format!("'{name}'") },
                        cols.join(", ")
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// (schema, table, status, detail) for every rule-placed table: `same` when every target
/// has one definition; otherwise `differs`, naming the targets of each definition, or
/// `missing` on a target whose database lacks the table (as the shard's own
/// `information_schema.TABLES` says).
pub(crate) async fn schema_drift<R: ShardReader>(
    config: &Config,
    reader: &mut R,
) -> Result<Vec<[String; 4]>, ProxyError> {
    // (shard, database) -> the tables it has, read once.
    let mut present: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut rows = Vec::new();
    for schema in &config.schemas {
        let database = schema.physical_database();
        for table in &schema.tables {
            let Some(rule) = schema.rule(&table.rule) else {
                continue;
            };
            // definition -> targets having it
            let mut seen: Vec<(String, Vec<String>)> = Vec::new();
            let mut missing: Vec<String> = Vec::new();
            for target in all_targets(rule) {
                let physical = match target.table {
                    Some(i) => format!("{}_{i}", table.name),
                    None => table.name.clone(),
                };
                let key = (target.shard.clone(), database.to_string());
                if !present.contains_key(&key) {
                    let sql = format!(
                        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
                        quote(database.as_bytes(), "")
                    );
                    let names = reader.read(&target.shard, &sql).await?;
                    let names = names.iter().map(|r| text_of(r.first())).collect();
                    present.insert(key.clone(), names);
                }
                let name = target.to_string();
                let exists = present
                    .get(&key)
                    .is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(&physical)));
                if !exists {
                    missing.push(name);
                    continue;
                }
                let sql = format!(
                    "SHOW CREATE TABLE {}.{}",
                    quote_ident(database),
                    quote_ident(&physical)
                );
                let found = reader.read(&target.shard, &sql).await?;
                let create = text_of(found.first().and_then(|r| r.get(1)));
                let def = normalised(&create, &physical, &table.name);
                match seen.iter_mut().find(|(d, _)| *d == def) {
                    Some((_, targets)) => targets.push(name),
                    None => seen.push((def, vec![name])),
                }
            }
            let (status, detail) = if !missing.is_empty() {
                ("missing", format!("missing on {}", missing.join(", ")))
            } else if seen.len() > 1 {
                let groups: Vec<String> = seen
                    .iter()
                    .enumerate()
                    .map(|(i, (def, targets))| {
                        format!("definition {} on {}: {def}", i + 1, targets.join(", "))
                    })
                    .collect();
                ("differs", groups.join(" | "))
            } else {
                ("same", String::new())
            };
            rows.push([
                schema.name.clone(),
                table.name.clone(),
                status.to_string(),
                detail,
            ]);
        }
    }
    Ok(rows)
}

impl ShardReader for Session {
    async fn read(&mut self, shard: &str, sql: &str) -> Result<Vec<Vec<Value>>, ProxyError> {
        self.read_on(shard, sql, None).await.map(|(_, rows)| rows)
    }
}

impl Session {
    /// The drift report of every rule-placed table, as admin `CHECK SCHEMA` shows it.
    pub(crate) async fn schema_drift(&mut self) -> Result<Vec<Vec<Value>>, ProxyError> {
        let config = self.shared.config();
        let res = schema_drift(&config, self).await;
        self.unpin_if_free();
        Ok(res?
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| Value::Bytes(c.into_bytes()))
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_names_and_counters_do_not_count_as_drift() {
        let a = normalised(
            "CREATE TABLE `t_1` (\n  `id` int NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB AUTO_INCREMENT=17 DEFAULT CHARSET=utf8mb4",
            "t_1",
            "t",
        );
        let b = normalised(
            "CREATE TABLE `t_0` (\n  `id` int NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "t_0",
            "t",
        );
        assert_eq!(a, b);
    }
}
