//! Reads of the logical `information_schema` (`myshard_router::catalog`): each catalog table
//! the statement names is read from the shards that hold the client's schemas, reduced to the
//! logical view, and put in as literal rows; one server then evaluates the statement over
//! them. No backend database, and no physical split table, reaches the client.

use crate::error::ProxyError;
use crate::executor;
use crate::session::Session;
use crate::subquery::{answer_rows, MAX_ROWS};
use myshard_router::catalog::{catalog_table, fetch_sql, sources, Cell, LogicalRows};
use myshard_router::columns::{column_source, columns_sql, unique_keys_from_rows, unique_keys_sql};
use myshard_router::RoutePlan;
use myshard_sql_rewrite::catalog::{substitute_catalog, CatalogRows};
use myshard_sql_rewrite::ExecPlan;
use mysql_common::packets::Column;
use mysql_common::value::Value;

impl Session {
    /// Reads a rule-placed table's columns from its first shard into the planner's column
    /// catalog (`myshard_router::columns`).
    pub(crate) async fn read_columns(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<(), ProxyError> {
        let config = self.shared.config();
        let Some(sc) = config.schema(schema) else {
            return Ok(());
        };
        let Some((shard, physical)) = column_source(sc, table) else {
            return Ok(());
        };
        let sql = columns_sql(sc.physical_database(), &physical);
        let (_, rows) = self.read_on(&shard, &sql, None).await?;
        let columns: Vec<String> = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(cell))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
        if columns.is_empty() {
            // Not on the shard that holds its first rows: as one server says it.
            return Err(ProxyError::sql(
                1146,
                "42S02",
                format!("Table '{schema}.{table}' doesn't exist"),
            ));
        }
        let (_, key_rows) = self
            .read_on(
                &shard,
                &unique_keys_sql(sc.physical_database(), &physical),
                None,
            )
            .await?;
        let text = |v: Value| cell(v).map(|b| String::from_utf8_lossy(&b).into_owned());
        let keys = unique_keys_from_rows(key_rows.into_iter().filter_map(|row| {
            let mut cells = row.into_iter().map(text);
            match (cells.next(), cells.next()) {
                (Some(Some(name)), Some(Some(column))) => Some((name, column)),
                _ => None,
            }
        }));
        let catalog = self.shared.router().columns().clone();
        catalog.set(schema, table, columns);
        catalog.set_unique_keys(schema, table, keys);
        Ok(())
    }

    /// Runs `sql` on `shard`'s primary outside any transaction of the session and collects
    /// its rows (within `budget`, if any): the catalog, column and drift reads.
    pub(crate) async fn read_on(
        &mut self,
        shard: &str,
        sql: &str,
        budget: Option<&executor::Budget>,
    ) -> Result<(Vec<Column>, Vec<Vec<Value>>), ProxyError> {
        // From the primary: a replica may not have applied the DDL just run through myshard.
        let role = std::mem::replace(&mut self.role, myshard_router::Role::Primary);
        let conn = self.acquire_outside_transaction(shard, None).await;
        self.role = role;
        let mut conn = conn?;
        conn.count_statement();
        let res = match (conn.conn(), budget) {
            (Ok(c), Some(b)) => executor::collect_within(c, shard, sql, b).await,
            (Ok(c), None) => executor::collect(c, shard, sql).await,
            (Err(e), _) => Err(e),
        };
        self.give_back(conn, res.as_ref().err());
        res
    }

    /// Plans a read of the catalog tables `tables` (as the planner named them): their logical
    /// rows replace them, and the statement is planned again over those rows.
    pub(crate) async fn plan_catalog(
        &mut self,
        sql: &str,
        tables: &[String],
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        let config = self.shared.config();
        let visible: Vec<String> = config
            .schemas
            .iter()
            .map(|s| s.name.clone())
            .filter(|n| self.admin || self.user.schemas.contains(n))
            .collect();
        let from = sources(&config, &visible);
        let budget = executor::Budget::new(
            config.server.merge_memory_limit,
            MAX_ROWS,
            "the 100,000 rows myshard gathers from information_schema (or server.merge_memory_limit)",
        );
        let mut gathered = Vec::with_capacity(tables.len());
        for name in tables {
            let Some(table) = catalog_table(name) else {
                continue;
            };
            let mut view = LogicalRows::new(&config, &visible, table);
            let mut columns: Option<Vec<Column>> = None;
            for (shard, databases) in &from {
                let fetch = fetch_sql(table, databases);
                let (cols, rows) = self.read_on(shard, &fetch, Some(&budget)).await?;
                let names: Vec<String> = cols.iter().map(|c| c.name_str().into_owned()).collect();
                for row in rows {
                    view.add(shard, &names, row.into_iter().map(cell).collect());
                }
                columns.get_or_insert(cols);
            }
            let (_, rows) = view.finish();
            let rows: Vec<Vec<Value>> = rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|c| c.map_or(Value::NULL, Value::Bytes))
                        .collect()
                })
                .collect();
            let (columns, rows) = answer_rows(columns.unwrap_or_default(), rows, &self.text)?;
            gathered.push(CatalogRows {
                table: table.name.to_string(),
                columns,
                rows,
            });
        }
        let rewritten = substitute_catalog(sql, &gathered, self.schema.as_deref())
            .map_err(|e| ProxyError::not_supported(e.to_string()))?;
        self.plan(&rewritten)
    }
}

/// A catalog value as text (the text protocol gives every value so).
fn cell(v: Value) -> Cell {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(b),
        other => Some(other.as_sql(true).into_bytes()),
    }
}
