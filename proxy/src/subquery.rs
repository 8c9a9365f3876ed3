//! Uncorrelated subqueries and derived tables over sharded tables: each outermost one runs
//! first as a statement of its own (routed, rewritten and merged like any read) and its
//! result takes its place as literals (`myshard_sql_rewrite::subquery`) before the outer
//! statement is planned. A subquery that refers to the outer statement (correlated) cannot
//! run by itself — the shard reports an unknown column — so it stays, and its tables are
//! fetched by themselves and put in as literal rows: every shard of the outer statement then
//! evaluates it over all of their rows.

use crate::error::codes;
use crate::error::ProxyError;
use crate::executor;
use crate::session::Session;
use myshard_merger::MergeSpec;
use myshard_router::text::{self, TextMode};
use myshard_router::RoutePlan;
use myshard_router::StatementKind;
use myshard_sql_rewrite::subquery::{
    correlated_tables, derive_every_table, derive_table, outer_subqueries, substitute, Answer,
    DerivedColumn, Subquery,
};
use myshard_sql_rewrite::ExecPlan;
use mysql_common::packets::Column;
use mysql_common::value::Value;

/// Rows a materialized subquery may hold.
pub(crate) const MAX_ROWS: usize = 100_000;

type Rows = (Vec<Column>, Vec<Vec<Value>>);

/// Whether a statement text may hold a subquery (cheap pre-check).
pub fn may_have_subquery(sql: &str) -> bool {
    sql.to_ascii_uppercase().matches("SELECT").count() > 1
}

/// The SQL literal (canonical text) of a result value: numbers as written, binary values as
/// binary literals, text as a literal in the session's character set (the one results come
/// in), so that a CONVERT to the column's own character set reads it right.
fn literal(col: Option<&Column>, v: &Value, mode: &TextMode) -> String {
    let numeric = col.is_some_and(|c| crate::session::is_numeric(c.column_type()));
    let binary = col.is_some_and(|c| c.character_set() == 63);
    match v {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) if numeric => match std::str::from_utf8(b) {
            Ok(s) if is_number(s) => s.to_string(),
            _ => text::quote_in(b, mode),
        },
        Value::Bytes(b) if binary => text::quote(b, "_binary"),
        Value::Bytes(b) => text::quote_in(b, mode),
        other => other.as_sql(false),
    }
}

/// A plain decimal number as MySQL prints one (no `inf`, `NaN` or hex).
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && digits.as_bytes()[0].is_ascii_digit()
        && s.parse::<f64>().is_ok()
}

/// How literal rows get a result column's type back (`{}` is the column): without it a NULL
/// or a date literal would make the column a string, and text would take the connection's
/// collation instead of the column's.
fn cast_of(c: &Column) -> Option<String> {
    use myshard_merger::Kind;
    use mysql_common::constants::{ColumnFlags, ColumnType::*};
    if c.flags()
        .intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG)
    {
        return None;
    }
    let fraction = c.decimals().min(6);
    Some(match crate::merge::kind_of(c) {
        Kind::Int => "CAST({} AS SIGNED)".into(),
        Kind::Unsigned => "CAST({} AS UNSIGNED)".into(),
        Kind::Decimal => {
            let scale = c.decimals().min(38);
            let sign = u32::from(!c.flags().contains(ColumnFlags::UNSIGNED_FLAG));
            let point = u32::from(scale > 0);
            let digits = c
                .column_length()
                .saturating_sub(sign + point)
                .clamp(u32::from(scale).max(1), 65);
            format!("CAST({{}} AS DECIMAL({digits},{scale}))")
        }
        Kind::Float => "CAST({} AS DOUBLE)".into(),
        Kind::Temporal if matches!(c.column_type(), MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE) => {
            "CAST({} AS DATE)".into()
        }
        Kind::Temporal => format!("CAST({{}} AS DATETIME({fraction}))"),
        Kind::Time => format!("CAST({{}} AS TIME({fraction}))"),
        Kind::Binary if matches!(c.column_type(), MYSQL_TYPE_BIT | MYSQL_TYPE_GEOMETRY) => {
            return None
        }
        Kind::Binary => "CAST({} AS BINARY)".into(),
        Kind::Text => {
            // Ids MySQL and MariaDB do not share: the literals' own collation.
            if c.character_set() == 0 || c.character_set() >= 255 {
                return None;
            }
            let collation = mysql_common::collations::Collation::from(
                mysql_common::collations::CollationId::from(c.character_set()),
            );
            let (charset, name) = (collation.charset(), collation.collation());
            let plain = |s: &str| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            if !plain(charset) || !plain(name) {
                return None;
            }
            format!("CONVERT({{}} USING {charset}) COLLATE {name}")
        }
    })
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
fn answer(kind: &Subquery, (cols, rows): Rows, mode: &TextMode) -> Result<Answer, ProxyError> {
    Ok(match kind {
        Subquery::In(_) => {
            one_column(&cols)?;
            Answer::List(
                rows.iter()
                    .map(|r| literal(cols.first(), r.first().unwrap_or(&Value::NULL), mode))
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
            Answer::Scalar(literal(cols.first(), v, mode))
        }
        Subquery::Exists(_) => Answer::Exists(!rows.is_empty()),
        Subquery::Derived(_) => Answer::Derived(
            cols.iter()
                .map(|c| DerivedColumn {
                    name: c.name_str().into_owned(),
                    cast: cast_of(c),
                })
                .collect(),
            rows.iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(j, v)| literal(cols.get(j), v, mode))
                        .collect()
                })
                .collect(),
        ),
    })
}

/// A derived table's columns (typed by casts) and its rows as literals.
pub(crate) fn answer_rows(
    cols: Vec<Column>,
    rows: Vec<Vec<Value>>,
    mode: &TextMode,
) -> Result<(Vec<DerivedColumn>, Vec<Vec<String>>), ProxyError> {
    match answer(&Subquery::Derived(String::new()), (cols, rows), mode)? {
        Answer::Derived(columns, rows) => Ok((columns, rows)),
        _ => Err(ProxyError::not_supported(
            "invariant: a derived table's answer is rows",
        )),
    }
}

/// Refuses a copy of rows whose literals would not keep some column's type exactly (ENUM and
/// SET sort by definition position, BIT and spatial values have no typed literal form here).
fn copied_exactly(cols: &[Column]) -> Result<(), ProxyError> {
    match cols.iter().find(|c| cast_of(c).is_none()) {
        Some(c) => Err(ProxyError::not_supported(format!(
            "column '{}' has a type myshard cannot copy as literal rows exactly (ENUM, SET, BIT, spatial or an unusual character set)",
            c.name_str()
        ))),
        None => Ok(()),
    }
}

/// Orders a table's copied rows by its integer primary key, the order one server scans it in
/// (what GROUP_CONCAT or JSON_ARRAYAGG without ORDER BY see); other keys keep shard order.
fn in_key_order((cols, rows): &mut Rows) {
    use mysql_common::constants::ColumnFlags;
    let key: Vec<usize> = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| c.flags().contains(ColumnFlags::PRI_KEY_FLAG))
        .map(|(i, _)| i)
        .collect();
    let integer = |c: &Column| {
        matches!(
            crate::merge::kind_of(c),
            myshard_merger::Kind::Int | myshard_merger::Kind::Unsigned
        )
    };
    if key.is_empty() || !key.iter().all(|i| integer(&cols[*i])) {
        return;
    }
    let number = |v: &Value| -> Option<i128> {
        match v {
            Value::Int(i) => Some(i128::from(*i)),
            Value::UInt(u) => Some(i128::from(*u)),
            Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    };
    rows.sort_by_cached_key(|r| {
        key.iter()
            .map(|i| r.get(*i).and_then(number))
            .collect::<Vec<_>>()
    });
}

/// How many tables of one statement may be fetched by themselves to join them elsewhere.
const MAX_DERIVED_JOINS: usize = 4;

impl Session {
    /// Plans a statement. A read that cannot run as written is first rewritten: its
    /// uncorrelated subqueries run by themselves and their results replace them as literals,
    /// and a table joined off the sharding key is fetched by itself the same way (as a derived
    /// table of its rows), so the rest of the join runs on the other tables' shards.
    pub(crate) async fn plan_materialized(
        &mut self,
        sql: &str,
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        match Box::pin(self.plan_split(sql)).await {
            Err(e) if e.to_err().0 == codes::NOT_SUPPORTED_YET => self.plan_copy(sql, e).await,
            Ok((plan, _)) if !plan.catalog.is_empty() => {
                Box::pin(self.plan_catalog(sql, &plan.catalog)).await
            }
            other => other,
        }
    }

    /// The last resort for a read myshard cannot split across shards (`err` says why): every
    /// table it reads is fetched by itself (at most MAX_ROWS rows each) and put in as literal
    /// rows, and one server evaluates the whole statement over them.
    pub(crate) async fn plan_copy(
        &mut self,
        sql: &str,
        err: ProxyError,
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        // Its parts are rebuilt from a parse, which has no executable comment's body.
        if self.exact_copies
            || !self.shared.config().server.copy_fallback
            || myshard_router::lexer::has_meaningful_executable_comment(sql)
        {
            return Err(err);
        }
        let Ok(Some(copy)) = derive_every_table(sql) else {
            return Err(err);
        };
        self.exact_copies = true;
        let copied = Box::pin(self.materialize(&copy)).await;
        self.exact_copies = false;
        let why = err.to_err().2;
        let rewritten = match copied {
            Ok(Some(r)) => r,
            Ok(None) => return Err(err),
            Err(e) => {
                let (code, _, message) = e.to_err();
                return Err(ProxyError::not_supported(format!(
                    "{why}; running it over a copy of its tables' rows did not work either: {code} {message}"
                )));
            }
        };
        match self.plan(&rewritten) {
            Ok(p) if p.0.targets.len() == 1 => Ok(p),
            _ => Err(err),
        }
    }

    /// [`Session::plan`], reading the columns and unique keys of a table the planner asks
    /// for first (nothing of the statement runs): `EXPLAIN ROUTE` of an INSERT without a
    /// column list or of an upsert plans as the statement itself would.
    pub(crate) async fn plan_with_columns(
        &mut self,
        sql: &str,
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        match self.plan_checked(sql) {
            Ok(p) => Ok(p),
            Err(mut r) => match r.needs_columns.take().map(|b| *b) {
                Some((schema, table, _)) => {
                    self.read_columns(&schema, &table).await?;
                    self.plan(sql)
                }
                None => Err(r.error),
            },
        }
    }

    /// Plans a statement that cannot run as written by running parts of it first: its
    /// uncorrelated subqueries, correlated subqueries' tables, tables joined off the key.
    async fn plan_split(&mut self, sql: &str) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        let mut refusal = match self.plan_checked(sql) {
            Ok(p) => return Ok(p),
            Err(r) => r,
        };
        if let Some((schema, table, _)) = refusal.needs_columns.take().map(|b| *b) {
            // The planner needs the table's columns: read them from its shard, plan again
            // (once; a second refusal stands).
            self.read_columns(&schema, &table).await?;
            refusal = match self.plan_checked(sql) {
                Ok(p) => return Ok(p),
                Err(r) => r,
            };
            if let Some((_, _, Some(row))) = refusal.needs_columns.as_deref() {
                // Fresh columns, and still a row that does not match them: as MySQL says it.
                return Err(ProxyError::sql(
                    1136,
                    "21S01",
                    format!("Column count doesn't match value count at row {row}"),
                ));
            }
        }
        // Parts run first are rebuilt from a parse, which has no executable comment's body:
        // such a statement keeps its refusal rather than lose what the comment says.
        if !refusal.unsupported || myshard_router::lexer::has_meaningful_executable_comment(sql) {
            return Err(refusal.error);
        }
        let mut err = refusal.error;
        let mut off_key = refusal.join_off_key;
        let mut current = sql.to_string();
        // Why a table the router named cannot be fetched by itself, if so.
        let mut why: Option<ProxyError> = None;
        for _ in 0..=MAX_DERIVED_JOINS {
            match off_key
                .as_deref()
                .map(|table| derive_table(&current, table))
            {
                Some(Ok(derived)) => current = derived,
                Some(Err(e)) => {
                    let e = ProxyError::not_supported(e.to_string());
                    // The join may be inside a subquery, which fetches its own tables when
                    // it runs.
                    if !may_have_subquery(&current) {
                        return Err(e);
                    }
                    why = Some(e);
                }
                None if may_have_subquery(&current) => {}
                None => return Err(err),
            }
            let Some(rewritten) = Box::pin(self.materialize(&current)).await? else {
                return Err(why.unwrap_or(err));
            };
            match self.plan_checked(&rewritten) {
                Ok(p) => return Ok(p),
                // Another table joined off its key: fetch it too.
                Err(r) if why.is_none() && r.join_off_key.is_some() => {
                    err = r.error;
                    off_key = r.join_off_key;
                    current = rewritten;
                }
                Err(r) => return Err(why.unwrap_or(r.error)),
            }
        }
        Err(why.unwrap_or(err))
    }

    /// Runs a read across its shards and returns its rows instead of sending them.
    pub(crate) async fn collect_read(&mut self, sql: &str) -> Result<Rows, ProxyError> {
        let (plan, exec) = self.plan_materialized(sql).await?;
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
        // Rows and bytes are counted as they arrive: a table far past the cap is not held
        // first and refused afterwards.
        let budget = executor::Budget::new(
            self.shared.config().server.merge_memory_limit,
            (MAX_ROWS + offset as usize + 1).saturating_mul(exec.queries.len()),
            "the 100,000 rows myshard materializes (or server.merge_memory_limit)",
        );
        for q in &exec.queries {
            let mut conn = self.acquire(&q.shard, q.database.as_deref()).await?;
            conn.count_statement();
            let res = match conn.conn() {
                Ok(c) => executor::collect_within(c, &q.shard, &q.sql, &budget).await,
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
        let not_supported =
            |e: myshard_sql_rewrite::RewriteError| ProxyError::not_supported(e.to_string());
        let found = found.map_err(not_supported)?;
        let mut answers = Vec::with_capacity(found.len());
        for f in &found {
            match self.collect_read(f.sql()).await {
                Ok(mut rows) => {
                    if self.exact_copies && matches!(f, Subquery::Derived(_)) {
                        copied_exactly(&rows.0)?;
                        in_key_order(&mut rows);
                    }
                    answers.push(answer(f, rows, &self.text)?)
                }
                // It names a column (1054) or table (1109) of the outer statement: it stays,
                // and runs with the outer statement on each of its shards over its own tables
                // as literal rows.
                Err(ProxyError::Backend {
                    code: 1054 | 1109, ..
                }) if !matches!(f, Subquery::Derived(_)) =>
                {
                    let mut tables = Vec::new();
                    for t in correlated_tables(f.sql()).map_err(not_supported)? {
                        let rows = self.collect_read(&t.fetch).await?;
                        if self.exact_copies {
                            copied_exactly(&rows.0)?;
                        }
                        tables.push((
                            t.qualifier,
                            answer(&Subquery::Derived(String::new()), rows, &self.text)?,
                        ));
                    }
                    answers.push(Answer::Correlated(tables));
                }
                Err(ProxyError::Backend {
                    code: 1054 | 1109, ..
                }) => {
                    return Err(ProxyError::not_supported(
                        "derived tables that refer to the outer statement across several shards are not supported yet",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        substitute(sql, answers).map(Some).map_err(not_supported)
    }
}
