//! Schema tracking, as far as routing needs it: the column lists of the shard map's tables,
//! read from the shards (`information_schema.COLUMNS` of the first physical table of each
//! rule). With them an `INSERT INTO t VALUES (…)` without a column list (mysqldump's, most
//! ORMs' bulk loaders') finds its sharding key. The planner only reads this catalog; when it
//! needs a table that is not there it says so ([`crate::RouteError::NeedsColumns`]) and the
//! proxy reads it and plans again. DDL through myshard forgets a schema's entries.

use dashmap::DashMap;
use myshard_config::SchemaConfig;
use std::sync::Arc;

/// Column lists by (logical schema, table in lower case), and the columns of each of the
/// table's unique keys (primary key included).
#[derive(Debug, Default)]
pub struct ColumnCatalog {
    tables: DashMap<(String, String), Arc<Vec<String>>>,
    unique_keys: DashMap<(String, String), Arc<Vec<UniqueKey>>>,
    /// Column collations by physical (database, table), column names in lower case: result
    /// metadata carries only the connection's collation, not the column's.
    collations: DashMap<(String, String), Arc<std::collections::HashMap<String, String>>>,
}

/// A primary or unique key: its name and columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// `PRIMARY` or the index name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
}

impl ColumnCatalog {
    /// The columns of a table, in order, if read.
    pub fn get(&self, schema: &str, table: &str) -> Option<Arc<Vec<String>>> {
        self.tables
            .get(&(schema.to_string(), table.to_ascii_lowercase()))
            .map(|e| e.value().clone())
    }

    /// Records a table's columns.
    pub fn set(&self, schema: &str, table: &str, columns: Vec<String>) {
        self.tables.insert(
            (schema.to_string(), table.to_ascii_lowercase()),
            Arc::new(columns),
        );
    }

    /// The unique keys of a table, if read.
    pub fn unique_keys(&self, schema: &str, table: &str) -> Option<Arc<Vec<UniqueKey>>> {
        self.unique_keys
            .get(&(schema.to_string(), table.to_ascii_lowercase()))
            .map(|e| e.value().clone())
    }

    /// Records a table's unique keys.
    pub fn set_unique_keys(&self, schema: &str, table: &str, keys: Vec<UniqueKey>) {
        self.unique_keys.insert(
            (schema.to_string(), table.to_ascii_lowercase()),
            Arc::new(keys),
        );
    }

    /// The collations of a physical table's columns (by lower-case column name), if read.
    pub fn collations(
        &self,
        database: &str,
        table: &str,
    ) -> Option<Arc<std::collections::HashMap<String, String>>> {
        self.collations
            .get(&(database.to_string(), table.to_string()))
            .map(|e| e.value().clone())
    }

    /// Records the collations of a physical table's text columns (column, collation).
    pub fn set_collations(
        &self,
        database: &str,
        table: &str,
        columns: impl IntoIterator<Item = (String, String)>,
    ) -> Arc<std::collections::HashMap<String, String>> {
        let map: std::collections::HashMap<String, String> = columns
            .into_iter()
            .map(|(c, collation)| (c.to_lowercase(), collation))
            .collect();
        let map = Arc::new(map);
        self.collations
            .insert((database.to_string(), table.to_string()), map.clone());
        map
    }

    /// Forgets every table of a schema (after DDL in it).
    pub fn forget_schema(&self, schema: &str) {
        // Collations are kept by physical name: DDL anywhere forgets them all.
        self.collations.clear();
        self.tables.retain(|(s, _), _| s != schema);
        self.unique_keys.retain(|(s, _), _| s != schema);
    }
}

/// Where a table's columns are read: the first shard of its rule and the physical table
/// there (`name_0` for split tables); the schema's default shard for a table the shard map
/// does not place. `None` when the table's rule is missing.
pub fn column_source(schema: &SchemaConfig, table: &str) -> Option<(String, String)> {
    let Some(t) = schema.table(table) else {
        return Some((schema.default_shard.clone(), table.to_string()));
    };
    let rule = schema.rule(&t.rule)?;
    let shard = rule.shards.first()?.clone();
    let physical = if rule.tables_per_shard > 1 {
        format!("{}_0", t.name)
    } else {
        t.name.clone()
    };
    Some((shard, physical))
}

/// The statement that lists a physical table's text columns and their collations.
pub fn collations_sql(database: &str, table: &str) -> String {
    let quote = |s: &str| crate::text::quote(s.as_bytes(), "");
    format!(
        "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} AND COLLATION_NAME IS NOT NULL",
        quote(database),
        quote(table)
    )
}

/// The statement that lists a physical table's columns in order.
pub fn columns_sql(database: &str, physical: &str) -> String {
    let quote = |s: &str| crate::text::quote(s.as_bytes(), "");
    format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        quote(database),
        quote(physical)
    )
}

/// Unique keys from the rows of [`unique_keys_sql`]: (key name, column) in key order.
pub fn unique_keys_from_rows(rows: impl IntoIterator<Item = (String, String)>) -> Vec<UniqueKey> {
    let mut keys: Vec<UniqueKey> = Vec::new();
    for (name, column) in rows {
        match keys.last_mut() {
            Some(k) if k.name == name => k.columns.push(column),
            _ => keys.push(UniqueKey {
                name,
                columns: vec![column],
            }),
        }
    }
    keys
}

/// The statement that lists a physical table's unique keys (primary key included): one row
/// per (key, column), in key and column order.
pub fn unique_keys_sql(database: &str, physical: &str) -> String {
    let quote = |s: &str| crate::text::quote(s.as_bytes(), "");
    format!(
        "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        quote(database),
        quote(physical)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CountingIds, Rewrite, Router};

    #[test]
    fn insert_without_columns_is_planned_from_the_catalog() {
        let config = myshard_config::Config::from_toml_str(
            r#"
[[shards]]
name = "s0"
primary = "127.0.0.1:1"
[[shards]]
name = "s1"
primary = "127.0.0.1:2"
[[schemas]]
name = "s"
default_shard = "s0"
[[schemas.rules]]
name = "h"
kind = "hash"
shards = ["s0", "s1"]
[[schemas.tables]]
name = "kv"
rule = "h"
column = "id"
"#,
        )
        .expect("config");
        let catalog = Arc::new(ColumnCatalog::default());
        let router = Router::with_columns(Arc::new(config), catalog.clone());
        let mut ids = CountingIds(0);
        let sql = "INSERT INTO kv VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')";
        let needs = |r: Result<crate::RoutePlan, crate::RouteError>| {
            r.err().and_then(|e| {
                e.needs_columns()
                    .map(|(s, t, row)| (s.to_string(), t.to_string(), row))
            })
        };
        assert_eq!(
            needs(router.route(Some("s"), sql, &mut ids)),
            Some(("s".into(), "kv".into(), None))
        );
        catalog.set("s", "kv", vec!["id".into(), "v".into()]);
        let plan = router.route(Some("s"), sql, &mut ids).expect("planned");
        assert_eq!(plan.targets.len(), 2);
        assert!(matches!(plan.rewrite, Rewrite::SplitInsert { .. }));
        assert_eq!(
            needs(router.route(Some("s"), "INSERT INTO kv VALUES (1, 'a'), (2)", &mut ids)),
            Some(("s".into(), "kv".into(), Some(2)))
        );
    }

    #[test]
    fn catalog_keeps_tables_per_schema_case_insensitively() {
        let c = ColumnCatalog::default();
        c.set("shop", "Orders", vec!["id".into(), "customer_id".into()]);
        c.set("crm", "orders", vec!["x".into()]);
        assert_eq!(
            c.get("shop", "ORDERS").as_deref().map(Vec::as_slice),
            Some(&["id".to_string(), "customer_id".to_string()][..])
        );
        c.forget_schema("shop");
        assert!(c.get("shop", "orders").is_none());
        assert!(c.get("crm", "orders").is_some());
        assert_eq!(
            columns_sql("a'b", "t_0"),
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'a''b' AND TABLE_NAME = 't_0' ORDER BY ORDINAL_POSITION"
        );
    }
}
