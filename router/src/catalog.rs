//! The logical `information_schema`: the catalog tables that name schemas and tables, as a
//! client of myshard must see them — only its own logical schemas, under their logical names,
//! each logical table once (not once per shard, nor once per split table `name_N`), with the
//! row and size counters of a sharded table summed over its shards.
//!
//! Pure: the proxy fetches each catalog table's rows from the shards [`sources`] names, passes
//! each row through [`LogicalRows::add`], and puts [`LogicalRows::finish`]'s rows in place of
//! the table as literal rows; one server then evaluates the client's statement over them.

use myshard_config::{Config, RuleKind, SchemaConfig};
use std::collections::HashMap;

/// A catalog table whose rows name schemas (and tables), with the columns that do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogTable {
    /// Its name, upper case.
    pub name: &'static str,
    /// The column that says which schema a row belongs to (rows are fetched by it).
    pub schema: &'static str,
    /// The column that says which table a row belongs to, if rows belong to tables.
    pub table: Option<&'static str>,
    /// Every other column holding a schema name (mapped from physical to logical).
    pub other_schemas: &'static [&'static str],
    /// Every other column holding a table name (split tables mapped to their logical name).
    pub other_tables: &'static [&'static str],
    /// Counters summed over a sharded table's shards and split tables.
    pub summed: &'static [&'static str],
}

const fn t(
    name: &'static str,
    schema: &'static str,
    table: Option<&'static str>,
    other_schemas: &'static [&'static str],
    other_tables: &'static [&'static str],
) -> CatalogTable {
    CatalogTable {
        name,
        schema,
        table,
        other_schemas,
        other_tables,
        summed: &[],
    }
}

/// The catalog tables myshard shows logically. The other `information_schema` tables the
/// policy allows (character sets, collations, keywords, the session's variables) name no
/// schema and are read from a shard as they are.
pub const CATALOG: [CatalogTable; 15] = [
    t("SCHEMATA", "SCHEMA_NAME", None, &[], &[]),
    CatalogTable {
        summed: &["TABLE_ROWS", "DATA_LENGTH", "INDEX_LENGTH", "DATA_FREE"],
        ..t("TABLES", "TABLE_SCHEMA", Some("TABLE_NAME"), &[], &[])
    },
    t("COLUMNS", "TABLE_SCHEMA", Some("TABLE_NAME"), &[], &[]),
    t(
        "STATISTICS",
        "TABLE_SCHEMA",
        Some("TABLE_NAME"),
        &["INDEX_SCHEMA"],
        &[],
    ),
    t(
        "KEY_COLUMN_USAGE",
        "TABLE_SCHEMA",
        Some("TABLE_NAME"),
        &["CONSTRAINT_SCHEMA", "REFERENCED_TABLE_SCHEMA"],
        &["REFERENCED_TABLE_NAME"],
    ),
    t(
        "REFERENTIAL_CONSTRAINTS",
        "CONSTRAINT_SCHEMA",
        Some("TABLE_NAME"),
        &["UNIQUE_CONSTRAINT_SCHEMA"],
        &["REFERENCED_TABLE_NAME"],
    ),
    t(
        "TABLE_CONSTRAINTS",
        "TABLE_SCHEMA",
        Some("TABLE_NAME"),
        &["CONSTRAINT_SCHEMA"],
        &[],
    ),
    t(
        "CHECK_CONSTRAINTS",
        "CONSTRAINT_SCHEMA",
        Some("TABLE_NAME"),
        &[],
        &[],
    ),
    t("VIEWS", "TABLE_SCHEMA", Some("TABLE_NAME"), &[], &[]),
    t("ROUTINES", "ROUTINE_SCHEMA", None, &[], &[]),
    t("PARAMETERS", "SPECIFIC_SCHEMA", None, &[], &[]),
    t(
        "TRIGGERS",
        "TRIGGER_SCHEMA",
        Some("EVENT_OBJECT_TABLE"),
        &["EVENT_OBJECT_SCHEMA"],
        &[],
    ),
    t("PARTITIONS", "TABLE_SCHEMA", Some("TABLE_NAME"), &[], &[]),
    // Tablespaces: myshard's logical schemas have none of their own (mariadb-dump asks).
    t("FILES", "TABLE_SCHEMA", Some("TABLE_NAME"), &[], &[]),
    t(
        "COLUMNS_EXTENSIONS",
        "TABLE_SCHEMA",
        Some("TABLE_NAME"),
        &[],
        &[],
    ),
];

/// The catalog table of this name (any case), if myshard shows it logically.
pub fn catalog_table(name: &str) -> Option<&'static CatalogTable> {
    CATALOG.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The schema every client sees besides its own.
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// The shards to read catalog rows from, each with the physical databases to read there (in
/// shard-map order): the default shard and every rule shard of each visible schema. The
/// first shard also gives `information_schema`'s own rows.
pub fn sources(config: &Config, visible: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for shard in &config.shards {
        let mut dbs: Vec<String> = Vec::new();
        for s in visible.iter().filter_map(|n| config.schema(n)) {
            let db = s.physical_database().to_string();
            if schema_shards(s).any(|x| x == shard.name) && !dbs.contains(&db) {
                dbs.push(db);
            }
        }
        if out.is_empty() {
            dbs.push(INFORMATION_SCHEMA.into());
        }
        if !dbs.is_empty() {
            out.push((shard.name.clone(), dbs));
        }
    }
    out
}

/// The statement that reads one catalog table's rows of `databases` on a shard.
pub fn fetch_sql(table: &CatalogTable, databases: &[String]) -> String {
    let list: Vec<String> = databases
        .iter()
        .map(|d| crate::text::quote(d.as_bytes(), ""))
        .collect();
    format!(
        "SELECT * FROM information_schema.{} WHERE {} IN ({})",
        table.name,
        table.schema,
        list.join(", ")
    )
}

/// Every shard a schema's tables live on: its default shard, then its rules' shards.
fn schema_shards(s: &SchemaConfig) -> impl Iterator<Item = &str> {
    std::iter::once(s.default_shard.as_str()).chain(
        s.rules
            .iter()
            .flat_map(|r| r.shards.iter().map(String::as_str)),
    )
}

/// A value of a catalog row: `None` is NULL.
pub type Cell = Option<Vec<u8>>;

/// Where a physical table's catalog rows belong.
enum Place {
    /// The rows that describe the logical table.
    Canonical,
    /// Another shard's or split table's copy of a sharded table: only its counters count.
    Counted,
    /// Not part of the logical view.
    Hidden,
}

/// One catalog table's rows from every shard, becoming the logical view.
pub struct LogicalRows<'a> {
    config: &'a Config,
    visible: &'a [String],
    table: &'static CatalogTable,
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
    /// (logical schema, logical table) → index of its canonical row (TABLES only).
    canonical: HashMap<(String, String), usize>,
    /// Counters of the other copies, added to the canonical row at the end.
    counted: Vec<((String, String), Vec<Cell>)>,
}

impl<'a> LogicalRows<'a> {
    /// An empty view of `table` for a client that sees the logical schemas `visible`.
    pub fn new(config: &'a Config, visible: &'a [String], table: &'static CatalogTable) -> Self {
        LogicalRows {
            config,
            visible,
            table,
            columns: Vec::new(),
            rows: Vec::new(),
            canonical: HashMap::new(),
            counted: Vec::new(),
        }
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The logical schema of a physical database on `shard`, among the visible ones.
    fn logical_schema(&self, shard: &str, db: &str) -> Option<&'a SchemaConfig> {
        self.visible
            .iter()
            .filter_map(|n| self.config.schema(n))
            .find(|s| s.physical_database() == db && schema_shards(s).any(|x| x == shard))
    }

    /// Adds one row read from `shard` (its columns named by `columns`).
    pub fn add(&mut self, shard: &str, columns: &[String], mut row: Vec<Cell>) {
        if self.columns.is_empty() {
            self.columns = columns.to_vec();
        }
        let Some(schema_at) = self.column(self.table.schema) else {
            return;
        };
        let Some(db) = row
            .get(schema_at)
            .and_then(|c| c.as_deref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
        else {
            return;
        };
        let first_shard = self.config.shards.first().map(|s| s.name.as_str());
        if db.eq_ignore_ascii_case(INFORMATION_SCHEMA) {
            if first_shard == Some(shard) {
                self.rows.push(row);
            }
            return;
        }
        let Some(schema) = self.logical_schema(shard, &db) else {
            return;
        };
        let table_at = self.table.table.and_then(|c| self.column(c));
        let physical_table = table_at
            .and_then(|i| row.get(i))
            .and_then(|c| c.as_deref())
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let (place, logical_table) = match &physical_table {
            Some(name) => place_of(schema, shard, name),
            None if shard == schema.default_shard => (Place::Canonical, None),
            None => (Place::Hidden, None),
        };
        if matches!(place, Place::Hidden) {
            return;
        }
        // Physical names become logical ones.
        let schema_columns =
            std::iter::once(self.table.schema).chain(self.table.other_schemas.iter().copied());
        for c in schema_columns {
            if let Some(cell) = self.column(c).and_then(|i| row.get_mut(i)) {
                if cell.as_deref() == Some(db.as_bytes()) {
                    *cell = Some(schema.name.clone().into_bytes());
                }
            }
        }
        let table_columns = self
            .table
            .table
            .iter()
            .chain(self.table.other_tables.iter());
        for c in table_columns {
            if let Some(cell) = self.column(c).and_then(|i| row.get_mut(i)) {
                let logical = cell
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .and_then(|n| split_table_of(schema, &n));
                if let Some(l) = logical {
                    *cell = Some(l.into_bytes());
                }
            }
        }
        let key = (
            schema.name.clone(),
            logical_table.unwrap_or_default().to_ascii_lowercase(),
        );
        match place {
            Place::Canonical => {
                if !self.table.summed.is_empty() {
                    self.canonical.insert(key, self.rows.len());
                }
                self.rows.push(row);
            }
            Place::Counted if !self.table.summed.is_empty() => self.counted.push((key, row)),
            _ => {}
        }
    }

    /// The columns (as the first shard named them) and the logical rows.
    pub fn finish(mut self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let summed: Vec<usize> = self
            .table
            .summed
            .iter()
            .filter_map(|c| self.column(c))
            .collect();
        for (key, row) in std::mem::take(&mut self.counted) {
            let Some(&at) = self.canonical.get(&key) else {
                continue;
            };
            for &i in &summed {
                let add = row.get(i).and_then(|c| c.as_deref()).and_then(number);
                if let (Some(add), Some(cell)) = (add, self.rows[at].get_mut(i)) {
                    let total = cell
                        .as_deref()
                        .and_then(number)
                        .unwrap_or(0)
                        .saturating_add(add);
                    *cell = Some(total.to_string().into_bytes());
                }
            }
        }
        (self.columns, self.rows)
    }
}

fn number(cell: &[u8]) -> Option<u64> {
    std::str::from_utf8(cell).ok()?.parse().ok()
}

/// Where a physical table of `schema` on `shard` belongs, and its logical name when it is
/// one of the shard map's tables.
fn place_of(schema: &SchemaConfig, shard: &str, physical: &str) -> (Place, Option<String>) {
    let (name, index) = match split_table_of(schema, physical) {
        Some(logical) => {
            let index = physical[logical.len() + 1..].parse::<u32>().ok();
            (logical, index)
        }
        None => (physical.to_string(), None),
    };
    let placed = schema
        .table(&name)
        .and_then(|t| schema.rule(&t.rule).map(|r| (t, r)));
    let Some((table, rule)) = placed else {
        // Not in the shard map: the schema's default shard holds it.
        return if shard == schema.default_shard && index.is_none() {
            (Place::Canonical, Some(name))
        } else {
            (Place::Hidden, None)
        };
    };
    let split = rule.tables_per_shard > 1;
    if split != index.is_some() || !rule.shards.iter().any(|s| s == shard) {
        return (Place::Hidden, None);
    }
    let first = rule.shards.first().is_some_and(|s| s == shard) && index.unwrap_or(0) == 0;
    let logical = Some(table.name.clone());
    if first {
        (Place::Canonical, logical)
    } else if rule.kind == RuleKind::Broadcast {
        (Place::Hidden, None)
    } else {
        (Place::Counted, logical)
    }
}

/// The logical table a split table `name_N` stands for, when `physical` is one.
fn split_table_of(schema: &SchemaConfig, physical: &str) -> Option<String> {
    schema.tables.iter().find_map(|t| {
        let split = schema.rule(&t.rule).is_some_and(|r| r.tables_per_shard > 1);
        let rest = physical.get(..t.name.len())?;
        let suffix = physical.get(t.name.len()..)?.strip_prefix('_')?;
        (split
            && rest.eq_ignore_ascii_case(&t.name)
            && !suffix.is_empty()
            && suffix.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.name.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let toml = r#"
[[users]]
name = "app"
password = "x"
schemas = ["shop", "crm"]

[[shards]]
name = "s0"
primary = "127.0.0.1:1"
[[shards]]
name = "s1"
primary = "127.0.0.1:2"

[[schemas]]
name = "shop"
default_shard = "s0"
database = "shop_phys"
[[schemas.rules]]
name = "h"
kind = "hash"
shards = ["s0", "s1"]
[[schemas.rules]]
name = "split"
kind = "hash"
shards = ["s0", "s1"]
tables_per_shard = 2
[[schemas.rules]]
name = "b"
kind = "broadcast"
shards = ["s0", "s1"]
[[schemas.tables]]
name = "orders"
rule = "h"
column = "id"
[[schemas.tables]]
name = "events"
rule = "split"
column = "id"
[[schemas.tables]]
name = "regions"
rule = "b"

[[schemas]]
name = "crm"
default_shard = "s1"

[[schemas]]
name = "other"
default_shard = "s0"
"#;
        myshard_config::Config::from_toml_str(toml).expect("config")
    }

    fn s(v: &str) -> Cell {
        Some(v.as_bytes().to_vec())
    }

    fn text(rows: &[Vec<Cell>]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|c| {
                        c.as_deref()
                            .map_or("NULL".into(), |b| String::from_utf8_lossy(b).into_owned())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn sources_read_each_visible_schema_where_it_lives() {
        let c = config();
        let visible = vec!["shop".to_string(), "crm".to_string()];
        assert_eq!(
            sources(&c, &visible),
            vec![
                (
                    "s0".to_string(),
                    vec!["shop_phys".to_string(), "information_schema".to_string()]
                ),
                (
                    "s1".to_string(),
                    vec!["shop_phys".to_string(), "crm".to_string()]
                ),
            ]
        );
        let sql = fetch_sql(
            catalog_table("tables").expect("known"),
            &["a'b".to_string()],
        );
        assert_eq!(
            sql,
            "SELECT * FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('a''b')"
        );
    }

    #[test]
    fn tables_are_listed_once_under_logical_names_with_counters_summed() {
        let c = config();
        let visible = vec!["shop".to_string(), "crm".to_string()];
        let cols: Vec<String> = ["TABLE_SCHEMA", "TABLE_NAME", "TABLE_ROWS"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        let mut view = LogicalRows::new(&c, &visible, catalog_table("TABLES").expect("known"));
        let rows = [
            ("s0", "shop_phys", "orders", "10"),
            ("s0", "shop_phys", "events_0", "1"),
            ("s0", "shop_phys", "events_1", "2"),
            ("s0", "shop_phys", "regions", "5"),
            ("s0", "shop_phys", "notes", "7"),
            ("s0", "information_schema", "TABLES", "0"),
            ("s1", "shop_phys", "orders", "20"),
            ("s1", "shop_phys", "events_0", "4"),
            ("s1", "shop_phys", "events_1", "8"),
            ("s1", "shop_phys", "regions", "5"),
            ("s1", "shop_phys", "stray", "3"),
            ("s1", "crm", "leads", "9"),
            ("s1", "information_schema", "TABLES", "0"),
        ];
        for (shard, db, table, n) in rows {
            view.add(shard, &cols, vec![s(db), s(table), s(n)]);
        }
        let (_, out) = view.finish();
        assert_eq!(
            text(&out),
            vec![
                vec!["shop", "orders", "30"],
                vec!["shop", "events", "15"],
                vec!["shop", "regions", "5"],
                vec!["shop", "notes", "7"],
                vec!["information_schema", "TABLES", "0"],
                vec!["crm", "leads", "9"],
            ]
        );
    }

    #[test]
    fn other_catalog_tables_keep_the_first_copy_and_map_every_name() {
        let c = config();
        let visible = vec!["shop".to_string()];
        let cols: Vec<String> = [
            "CONSTRAINT_SCHEMA",
            "TABLE_SCHEMA",
            "TABLE_NAME",
            "REFERENCED_TABLE_SCHEMA",
            "REFERENCED_TABLE_NAME",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        let mut view = LogicalRows::new(
            &c,
            &visible,
            catalog_table("key_column_usage").expect("known"),
        );
        view.add(
            "s0",
            &cols,
            vec![
                s("shop_phys"),
                s("shop_phys"),
                s("events_0"),
                s("shop_phys"),
                s("regions"),
            ],
        );
        view.add(
            "s0",
            &cols,
            vec![
                s("shop_phys"),
                s("shop_phys"),
                s("events_1"),
                s("shop_phys"),
                s("regions"),
            ],
        );
        view.add(
            "s1",
            &cols,
            vec![
                s("shop_phys"),
                s("shop_phys"),
                s("events_0"),
                s("shop_phys"),
                s("regions"),
            ],
        );
        view.add(
            "s0",
            &cols,
            vec![s("other"), s("other"), s("x"), None, None],
        );
        let (_, out) = view.finish();
        assert_eq!(
            text(&out),
            vec![vec!["shop", "shop", "events", "shop", "regions"]]
        );
        let mut schemata =
            LogicalRows::new(&c, &visible, catalog_table("SCHEMATA").expect("known"));
        let cols = vec!["SCHEMA_NAME".to_string()];
        schemata.add("s0", &cols, vec![s("shop_phys")]);
        schemata.add("s1", &cols, vec![s("shop_phys")]);
        schemata.add("s0", &cols, vec![s("mysql")]);
        schemata.add("s0", &cols, vec![s("information_schema")]);
        schemata.add("s1", &cols, vec![s("information_schema")]);
        assert_eq!(
            text(&schemata.finish().1),
            vec![vec!["shop"], vec!["information_schema"]]
        );
    }
}
