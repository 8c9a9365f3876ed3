//! The schema drift check (admin `CHECK SCHEMA`): every logical table placed by a rule is
//! compared across the shards and physical tables that hold it. A DDL statement that failed
//! on some shards (DDL cannot be rolled back) leaves such a difference; this names it.

use crate::error::ProxyError;
use crate::executor;
use crate::session::Session;
use myshard_router::placement::all_targets;
use myshard_router::text::quote_ident;
use mysql_common::value::Value;

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

impl Session {
    /// (schema, table, status, detail) for every rule-placed table: `same` when every target
    /// has one definition; otherwise `differs`, naming the targets of each definition, or
    /// `missing` on a target that lacks the table.
    pub(crate) async fn schema_drift(&mut self) -> Result<Vec<Vec<Value>>, ProxyError> {
        let config = self.shared.config();
        let text = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        let mut rows = Vec::new();
        for schema in &config.schemas {
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
                    let sql = format!("SHOW CREATE TABLE {}", quote_ident(&physical));
                    let res = match self
                        .acquire_outside_transaction(
                            &target.shard,
                            Some(schema.physical_database()),
                        )
                        .await
                    {
                        Ok(mut conn) => {
                            let res = match conn.conn() {
                                Ok(c) => executor::collect(c, &target.shard, &sql).await,
                                Err(e) => Err(e),
                            };
                            self.give_back(conn, res.as_ref().err());
                            res
                        }
                        Err(e) => Err(e),
                    };
                    let name = target.to_string();
                    match res {
                        Ok((_, found)) => {
                            let create = match found.first().and_then(|r| r.get(1)) {
                                Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                                _ => String::new(),
                            };
                            let def = normalised(&create, &physical, &table.name);
                            match seen.iter_mut().find(|(d, _)| *d == def) {
                                Some((_, targets)) => targets.push(name),
                                None => seen.push((def, vec![name])),
                            }
                        }
                        // No such table, or no such database on that shard.
                        Err(ProxyError::Backend {
                            code: 1146 | 1049, ..
                        }) => missing.push(name),
                        Err(e) => return Err(e),
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
                rows.push(vec![
                    text(&schema.name),
                    text(&table.name),
                    text(status),
                    text(&detail),
                ]);
            }
        }
        self.unpin_if_free();
        Ok(rows)
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
