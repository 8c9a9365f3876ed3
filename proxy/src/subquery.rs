//! Running a plan's stages (`myshard_sql_rewrite::staged`): each part the planner named runs
//! first by its own plan (routed, rewritten and merged like any read), and its rows take its
//! place as literals (`myshard_sql_rewrite::subquery`) before what is left is planned again.
//! A part the planner found correlated stays with the outer statement, its tables fetched by
//! themselves and put in as literal rows. Nothing here decides from an error what to do next:
//! the plan says it.

use crate::error::ProxyError;
use crate::executor;
use crate::session::Session;
use myshard_merger::MergeSpec;
use myshard_router::text::{self, TextMode};
use myshard_router::RoutePlan;
use myshard_router::StatementKind;
use myshard_sql_rewrite::planner::PlanError;
use myshard_sql_rewrite::staged::{
    self, Facts, Mode, PartRun, Plan, Stage, StageKind, MAX_DERIVED_JOINS,
};
use myshard_sql_rewrite::subquery::{insert_values, substitute, Answer, DerivedColumn, Subquery};
use myshard_sql_rewrite::ExecPlan;
use mysql_common::packets::Column;
use mysql_common::value::Value;

/// Rows a materialized subquery may hold.
pub(crate) const MAX_ROWS: usize = 100_000;

type Rows = (Vec<Column>, Vec<Vec<Value>>);

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
fn cast_of(c: &Column, collation: Option<&str>) -> Option<String> {
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
            let plain = |s: &str| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            // The column's own collation, read from the shard's catalog: the result metadata
            // gives the connection's. (COLLATE makes it EXPLICIT where the table's column is
            // IMPLICIT: two such columns of different collations meeting in one expression
            // are refused (1267) where the tables' would let a `_bin` one win. MariaDB's
            // CAST … COLLATE would keep IMPLICIT, but sqlparser cannot read it.)
            if let Some(name) = collation.filter(|n| plain(n)) {
                let charset = name.split('_').next().unwrap_or(name);
                return Some(format!("CONVERT({{}} USING {charset}) COLLATE {name}"));
            }
            // Ids MySQL and MariaDB do not share: the literals' own collation.
            if c.character_set() == 0 || c.character_set() >= 255 {
                return None;
            }
            let collation = mysql_common::collations::Collation::from(
                mysql_common::collations::CollationId::from(c.character_set()),
            );
            let (charset, name) = (collation.charset(), collation.collation());
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
fn answer(
    kind: &Subquery,
    (cols, rows): Rows,
    collations: &[Option<String>],
    mode: &TextMode,
) -> Result<Answer, ProxyError> {
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
        Subquery::Derived(_) | Subquery::Rows(_) => Answer::Derived(
            cols.iter()
                .enumerate()
                .map(|(i, c)| DerivedColumn {
                    name: c.name_str().into_owned(),
                    cast: cast_of(c, collations.get(i).and_then(|x| x.as_deref())),
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
    match answer(&Subquery::Derived(String::new()), (cols, rows), &[], mode)? {
        Answer::Derived(columns, rows) => Ok((columns, rows)),
        _ => Err(ProxyError::not_supported(
            "invariant: a derived table's answer is rows",
        )),
    }
}

/// Refuses a copy of rows whose literals would not keep some column's type exactly (ENUM and
/// SET sort by definition position, BIT and spatial values have no typed literal form here).
fn copied_exactly(cols: &[Column]) -> Result<(), ProxyError> {
    match cols.iter().find(|c| cast_of(c, None).is_none()) {
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

impl Session {
    /// What the planner knows of this session.
    pub(crate) fn facts(&self, mode: Mode) -> Facts<'_> {
        Facts {
            schema: self.schema.as_deref(),
            allowed: (!self.admin).then_some(self.user.schemas.as_slice()),
            mode,
        }
    }

    /// The planner's whole plan for a statement of canonical text, stages included.
    pub(crate) fn plan_tree(&self, sql: &str, mode: Mode) -> Plan {
        let mut ids = self.shared.ids();
        let map = self.shared.map();
        myshard_sql_rewrite::plancache::plan_cached(
            &map.plans,
            &map.router,
            &self.facts(mode),
            sql,
            &mut ids,
        )
    }

    /// Plans a statement and runs what its plan runs first (the columns the planner asks
    /// for, subqueries, tables joined off the key, the copy), down to the plan of what the
    /// shards run.
    pub(crate) async fn plan_materialized(
        &mut self,
        sql: &str,
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        let plan = self.plan_tree(sql, Mode::default());
        Box::pin(self.resolve(sql, plan, Mode::default(), 0)).await
    }

    /// Runs a plan's stages, reading the columns it asks for, down to a plan of what the
    /// shards run (`rounds`: stages run so far for this statement).
    async fn resolve(
        &mut self,
        sql: &str,
        mut plan: Plan,
        mode: Mode,
        rounds: usize,
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        let mut read: Vec<(String, String)> = Vec::new();
        loop {
            match plan {
                Plan::Run(p) => {
                    let (route, exec) = self.admit(sql, *p)?;
                    if !route.catalog.is_empty() {
                        return Box::pin(self.plan_catalog(sql, &route.catalog)).await;
                    }
                    return Ok((route, exec));
                }
                Plan::Refuse(e) => return Err(self.refusal(&e)),
                Plan::ReadColumns {
                    schema,
                    table,
                    mismatch_row,
                } => {
                    if !self.read_columns_once(&mut read, &schema, &table).await? {
                        // Fresh columns, and still a row that does not match them: as MySQL
                        // says it.
                        return Err(match mismatch_row {
                            Some(row) => ProxyError::sql(
                                1136,
                                "21S01",
                                format!("Column count doesn't match value count at row {row}"),
                            ),
                            None => ProxyError::not_supported(format!(
                                "invariant: the columns of {schema}.{table} were read and the planner still asks for them"
                            )),
                        });
                    }
                    plan = self.plan_tree(sql, mode);
                }
                Plan::Stage(stage) => return Box::pin(self.run_stage(*stage, mode, rounds)).await,
            }
        }
    }

    /// Runs a stage's parts, puts their rows into its statement, and plans what that leaves;
    /// the stage's copy fallback when that cannot be planned.
    async fn run_stage(
        &mut self,
        stage: Stage,
        mode: Mode,
        rounds: usize,
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        let copy = stage.kind == StageKind::Copy;
        let rewritten = match Box::pin(self.run_parts(&stage)).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(staged::nothing_to_write()),
            Err(e) if copy => {
                let (code, _, message) = e.to_err();
                return Err(ProxyError::not_supported(format!(
                    "{}; running it over a copy of its tables' rows did not work either: {code} {message}",
                    stage.why
                )));
            }
            Err(e) => return Err(e),
        };
        if copy {
            // Nothing of it reads a table now: one server evaluates it.
            let copy = Mode {
                in_copy: true,
                ..mode
            };
            let next = self.plan_tree(&rewritten, copy);
            return match Box::pin(self.resolve(&rewritten, next, copy, rounds + 1)).await {
                Ok(p) if p.0.targets.len() == 1 => Ok(p),
                _ => Err(self.refusal(&stage.why)),
            };
        }
        let next = self.plan_tree(&rewritten, mode);
        let refused = match next {
            // Another table joined off its key, say: its own stage, the first fallback kept.
            Plan::Stage(mut again)
                if again.kind != StageKind::Copy && rounds < MAX_DERIVED_JOINS =>
            {
                again.fallback = stage.fallback;
                return Box::pin(self.run_stage(*again, mode, rounds + 1)).await;
            }
            Plan::Stage(_) => self.refusal(&stage.why),
            Plan::Refuse(e) => self.refusal(&e),
            other => return Box::pin(self.resolve(&rewritten, other, mode, rounds + 1)).await,
        };
        match stage.fallback {
            Some(fallback) => Box::pin(self.run_stage(*fallback, mode, rounds + 1))
                .await
                .map_err(|_| refused),
            None => Err(refused),
        }
    }

    /// The stage's statement with its parts' rows in place of its subqueries; `None` for an
    /// `INSERT … SELECT` that has no rows to insert.
    async fn run_parts(&mut self, stage: &Stage) -> Result<Option<String>, ProxyError> {
        let mut answers = Vec::with_capacity(stage.parts.len());
        for part in &stage.parts {
            match &part.run {
                PartRun::Rows(plan) => {
                    let sql = part.subquery.sql();
                    // Only a derived table's rows are typed by their columns; IN lists,
                    // scalars and INSERT values are literals in the connection's collation.
                    let typed = matches!(part.subquery, Subquery::Derived(_));
                    let (mut rows, collations) = self
                        .collect_plan(sql, plan.clone(), stage.mode(), typed)
                        .await?;
                    if stage.exact && matches!(part.subquery, Subquery::Derived(_)) {
                        copied_exactly(&rows.0)?;
                        in_key_order(&mut rows);
                    }
                    answers.push(answer(&part.subquery, rows, &collations, &self.text)?);
                }
                PartRun::Tables(tables) => {
                    let mut fetched = Vec::with_capacity(tables.len());
                    for (table, plan) in tables {
                        let (rows, collations) = self
                            .collect_plan(&table.fetch, plan.clone(), stage.mode(), true)
                            .await?;
                        if stage.exact {
                            copied_exactly(&rows.0)?;
                        }
                        let derived = Subquery::Derived(String::new());
                        fetched.push((
                            table.qualifier.clone(),
                            answer(&derived, rows, &collations, &self.text)?,
                        ));
                    }
                    answers.push(Answer::Correlated(fetched));
                }
            }
        }
        let not_supported =
            |e: myshard_sql_rewrite::RewriteError| ProxyError::not_supported(e.to_string());
        if stage.kind == StageKind::InsertRows {
            return match answers.as_slice() {
                [Answer::Derived(_, rows)] => {
                    insert_values(&stage.statement, rows).map_err(not_supported)
                }
                _ => Err(ProxyError::not_supported(
                    "invariant: an INSERT … SELECT has one part, its rows",
                )),
            };
        }
        if answers.is_empty() {
            return Ok(Some(stage.statement.clone()));
        }
        substitute(&stage.statement, answers)
            .map(Some)
            .map_err(not_supported)
    }

    /// The plan of the copy fallback for a read whose shards' rows turned out not to merge.
    pub(crate) async fn plan_copy(
        &mut self,
        sql: &str,
        err: ProxyError,
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        let why = PlanError::Rewrite(myshard_sql_rewrite::RewriteError::Unsupported(
            err.to_err().2,
        ));
        let stage = {
            let mut ids = self.shared.ids();
            staged::copy_plan(
                &self.shared.router(),
                &self.facts(Mode::default()),
                sql,
                why,
                &mut ids,
            )
        };
        match stage {
            Some(stage) => Box::pin(self.run_stage(stage, Mode::default(), 0)).await,
            None => Err(err),
        }
    }

    /// `EXPLAIN ROUTE` (client and admin port): shard, physical table, SQL and merge of each
    /// target; for a plan whose parts run first, one row per line of the plan as `myshard
    /// explain` prints it (in the SQL column).
    pub(crate) async fn explain_route(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<Column>, Vec<Vec<Value>>), ProxyError> {
        let cols = ["shard", "table", "sql", "merge"]
            .into_iter()
            .map(crate::local::text_column)
            .collect();
        let text = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        let (plan, exec) = match self.plan_with_columns(sql).await? {
            Plan::Run(p) => self.admit(sql, *p)?,
            Plan::Refuse(e) => return Err(self.refusal(&e)),
            staged => {
                let rows = staged
                    .lines()
                    .iter()
                    .map(|l| vec![Value::NULL, Value::NULL, text(l), Value::NULL])
                    .collect();
                return Ok((cols, rows));
            }
        };
        let merge = match plan.catalog.as_slice() {
            [] => exec.merge.to_string(),
            tables => format!(
                "{} over the logical information_schema.{} gathered from the shards",
                exec.merge,
                tables.join(", information_schema.")
            ),
        };
        let rows = exec
            .queries
            .iter()
            .map(|q| {
                vec![
                    text(&q.shard),
                    q.table.map_or(Value::NULL, |t| text(&t.to_string())),
                    text(&q.sql),
                    text(&merge),
                ]
            })
            .collect();
        Ok((cols, rows))
    }

    /// [`Session::plan`], reading the columns and unique keys of a table the planner asks
    /// for first (nothing of the statement runs): `EXPLAIN ROUTE` of an INSERT without a
    /// column list or of an upsert plans as the statement itself would.
    async fn plan_with_columns(&mut self, sql: &str) -> Result<Plan, ProxyError> {
        let mut plan = self.plan_tree(sql, Mode::default());
        let mut read: Vec<(String, String)> = Vec::new();
        while let Plan::ReadColumns { schema, table, .. } = &plan {
            let (schema, table) = (schema.clone(), table.clone());
            if !self.read_columns_once(&mut read, &schema, &table).await? {
                break;
            }
            plan = self.plan_tree(sql, Mode::default());
        }
        Ok(plan)
    }

    /// Reads a table's columns for the planner unless this statement read them already
    /// (`read`); whether it read them now.
    async fn read_columns_once(
        &mut self,
        read: &mut Vec<(String, String)>,
        schema: &str,
        table: &str,
    ) -> Result<bool, ProxyError> {
        if read.iter().any(|(s, t)| s == schema && t == table) {
            return Ok(false);
        }
        self.read_columns(schema, table).await?;
        read.push((schema.to_string(), table.to_string()));
        Ok(true)
    }

    /// Runs a read across its shards and returns its rows instead of sending them.
    pub(crate) async fn collect_read(&mut self, sql: &str) -> Result<Rows, ProxyError> {
        let plan = self.plan_tree(sql, Mode::default());
        Ok(self
            .collect_plan(sql, plan, Mode::default(), false)
            .await?
            .0)
    }

    /// Runs a read's plan across its shards and returns its rows; when `typed`, with the
    /// collation of each text column that is a table's column (read from the shard's catalog
    /// once per table).
    async fn collect_plan(
        &mut self,
        sql: &str,
        plan: Plan,
        mode: Mode,
        typed: bool,
    ) -> Result<(Rows, Vec<Option<String>>), ProxyError> {
        let (plan, exec) = Box::pin(self.resolve(sql, plan, mode, 0)).await?;
        let shard = exec.queries.first().map(|q| q.shard.clone());
        let rows = self.collect_exec(&plan, &exec).await?;
        let collations = match shard {
            Some(shard) if typed && !rows.1.is_empty() => {
                self.column_collations(&shard, &rows.0).await?
            }
            _ => Vec::new(),
        };
        Ok((rows, collations))
    }

    /// The collation of each text column of a result that names a table's column
    /// (`org_table`, `org_name`), as the shard's `information_schema.COLUMNS` gives it: the
    /// result metadata carries the connection's collation instead.
    pub(crate) async fn column_collations(
        &mut self,
        shard: &str,
        cols: &[Column],
    ) -> Result<Vec<Option<String>>, ProxyError> {
        let catalog = self.shared.router().columns().clone();
        let mut out = Vec::with_capacity(cols.len());
        for c in cols {
            let (db, table) = (c.schema_str(), c.org_table_str());
            if crate::merge::kind_of(c) != myshard_merger::Kind::Text
                || db.is_empty()
                || table.is_empty()
            {
                out.push(None);
                continue;
            }
            let map = match catalog.collations(&db, &table) {
                Some(m) => m,
                None => {
                    let sql = myshard_router::columns::collations_sql(&db, &table);
                    let (_, rows) = self.read_on(shard, &sql, None).await?;
                    let text = |v: Option<&Value>| match v {
                        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    };
                    catalog.set_collations(
                        &db,
                        &table,
                        rows.iter()
                            .filter_map(|r| Some((text(r.first())?, text(r.get(1))?))),
                    )
                }
            };
            out.push(map.get(&c.org_name_str().to_lowercase()).cloned());
        }
        Ok(out)
    }

    /// Runs a planned read across its shards and returns its rows.
    async fn collect_exec(
        &mut self,
        plan: &RoutePlan,
        exec: &ExecPlan,
    ) -> Result<Rows, ProxyError> {
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
}
