//! Uncorrelated subqueries and derived tables over sharded tables: each outermost one runs
//! first as a statement of its own (routed, rewritten and merged like any read) and its
//! result takes its place as literals (`myshard_sql_rewrite::subquery`) before the outer
//! statement is planned. A subquery that refers to the outer statement (correlated) cannot
//! run by itself — the shard reports an unknown column — and the statement is refused.

use crate::backend::state::quote_literal;
use crate::error::ProxyError;
use crate::executor;
use crate::session::Session;
use myshard_merger::MergeSpec;
use myshard_router::StatementKind;
use myshard_sql_rewrite::subquery::{outer_subqueries, substitute, Answer, Subquery};
use mysql_common::packets::Column;
use mysql_common::value::Value;

/// Rows a materialized subquery may hold.
const MAX_ROWS: usize = 100_000;

type Rows = (Vec<Column>, Vec<Vec<Value>>);

/// Whether a statement text may hold a subquery (cheap pre-check).
pub fn may_have_subquery(sql: &str) -> bool {
    sql.to_ascii_uppercase().matches("SELECT").count() > 1
}

/// The SQL literal of a result value.
fn literal(col: Option<&Column>, v: &Value) -> String {
    let numeric = col.is_some_and(|c| crate::session::is_numeric(c.column_type()));
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) if numeric => match std::str::from_utf8(b) {
            Ok(s) if s.parse::<f64>().is_ok() => s.to_string(),
            _ => quote_literal(b),
        },
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(_) => quote_literal(b),
            Err(_) => {
                let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
                format!("X'{hex}'")
            }
        },
        other => other.as_sql(false),
    }
}

fn one_column(cols: &[Column]) -> Result<(), ProxyError> {
    if cols.len() != 1 {
        return Err(ProxyError::sql(
            1241,
            "21000",
            "Operand should contain 1 column(s)",
        ));
    }
    Ok(())
}

/// A subquery's result as literals for its place.
fn answer(kind: &Subquery, (cols, rows): Rows) -> Result<Answer, ProxyError> {
    Ok(match kind {
        Subquery::In(_) => {
            one_column(&cols)?;
            Answer::List(
                rows.iter()
                    .map(|r| literal(cols.first(), r.first().unwrap_or(&Value::NULL)))
                    .collect(),
            )
        }
        Subquery::Scalar(_) => {
            one_column(&cols)?;
            if rows.len() > 1 {
                return Err(ProxyError::sql(
                    1242,
                    "21000",
                    "Subquery returns more than 1 row",
                ));
            }
            let v = rows.first().and_then(|r| r.first()).unwrap_or(&Value::NULL);
            Answer::Scalar(literal(cols.first(), v))
        }
        Subquery::Exists(_) => Answer::Exists(!rows.is_empty()),
        Subquery::Derived(_) => Answer::Derived(
            cols.iter().map(|c| c.name_str().into_owned()).collect(),
            rows.iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(j, v)| literal(cols.get(j), v))
                        .collect()
                })
                .collect(),
        ),
    })
}

impl Session {
    /// Runs a read across its shards and returns its rows instead of sending them.
    pub(crate) async fn collect_read(&mut self, sql: &str) -> Result<Rows, ProxyError> {
        let (plan, exec) = match self.plan(sql) {
            Ok(p) => p,
            Err(e) if may_have_subquery(sql) => match Box::pin(self.materialize(sql)).await? {
                Some(rewritten) => self.plan(&rewritten)?,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if plan.kind != StatementKind::Read {
            return Err(ProxyError::not_supported("a subquery must be a read"));
        }
        self.role = exec.role;
        let (offset, limit) = match &exec.merge {
            MergeSpec::Select(spec) => {
                let spec = spec.clone();
                return self.merged_rows(&exec.queries, &spec, exec.union).await;
            }
            MergeSpec::Passthrough => (0, None),
            MergeSpec::Concat { offset, limit } => (*offset, *limit),
            _ => return Err(ProxyError::not_supported("a subquery must be a read")),
        };
        let mut window = myshard_merger::OffsetLimit::new(offset, limit);
        let mut columns = None;
        let mut out = Vec::new();
        for q in &exec.queries {
            let mut conn = self.acquire(&q.shard, q.database.as_deref()).await?;
            conn.count_statement();
            let res = match conn.conn() {
                Ok(c) => executor::collect(c, &q.shard, &q.sql).await,
                Err(e) => Err(e),
            };
            self.give_back(conn, res.as_ref().err());
            let (cols, rows) = res?;
            columns.get_or_insert(cols);
            out.extend(rows.into_iter().filter(|_| window.admit()));
            if out.len() > MAX_ROWS {
                return Err(ProxyError::not_supported(format!(
                    "a subquery across several shards returned more than {MAX_ROWS} rows; myshard materializes at most that many"
                )));
            }
        }
        Ok((columns.unwrap_or_default(), out))
    }

    /// The statement with its uncorrelated subqueries replaced by their results; `None`
    /// when it has none.
    pub(crate) async fn materialize(&mut self, sql: &str) -> Result<Option<String>, ProxyError> {
        let inlined = match myshard_sql_rewrite::subquery::inline_ctes(sql) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return Err(ProxyError::not_supported(e.to_string())),
            None => None,
        };
        let sql = inlined.as_deref().unwrap_or(sql);
        let Some(found) = outer_subqueries(sql) else {
            return Ok(inlined);
        };
        let mut answers = Vec::with_capacity(found.len());
        for f in &found {
            let rows = self.collect_read(f.sql()).await.map_err(|e| match e {
                ProxyError::Backend { code: 1054, .. } => ProxyError::not_supported(
                    "correlated subqueries across several shards are not supported yet",
                ),
                other => other,
            })?;
            answers.push(answer(f, rows)?);
        }
        substitute(sql, answers)
            .map(Some)
            .map_err(|e| ProxyError::not_supported(e.to_string()))
    }
}
