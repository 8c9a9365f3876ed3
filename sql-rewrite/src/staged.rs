//! The planner's whole answer for a statement, stages included: [`plan_tree`].
//!
//! A statement the router and rewriter can place as written becomes [`Plan::Run`]. One that
//! needs rows first becomes a [`Plan::Stage`]: which of its parts run by themselves (an
//! uncorrelated subquery, a table joined off the sharding key, every table for the copy
//! fallback), each with its own plan, and what the statement becomes once their rows are put
//! in as literals. Every decision is taken here, from the statement, the shard map and the
//! column catalog: the executor (`proxy::subquery`) runs the parts, substitutes their rows and
//! asks this planner again about the text that leaves. It never decides from an error what to
//! do next.
//!
//! Whether a subquery refers to the outer statement is read from its names: a qualifier it
//! does not define, or a bare name that no table it reads has as a column (the catalog's
//! columns, read from the shards on demand: [`Plan::ReadColumns`]).

use crate::planner::{plan_as, PlanError};
use crate::subquery::{
    correlated_tables, correlation, derive_every_table, derive_table, inline_ctes, insert_source,
    outer_subqueries, Columns, CorrelatedTable, Correlation, Subquery,
};
use crate::{ExecPlan, RewriteError};
use myshard_router::{IdSource, RouteError, RoutePlan, Router};
use std::fmt::{self, Write as _};

/// How many tables of one statement may be fetched by themselves to join them elsewhere.
pub const MAX_DERIVED_JOINS: usize = 4;

/// What the planner knows of the session beyond the statement.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The session's current logical schema.
    pub schema: Option<&'a str>,
    /// The logical schemas the client may use (`None`: all).
    pub allowed: Option<&'a [String]>,
    /// What the statement is a part of.
    pub mode: Mode,
}

/// What a statement being planned is a part of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// A copy: no copy again, and copied rows must be exact.
    pub in_copy: bool,
    /// A write: its reads decide what it changes, so they read the primaries.
    pub on_primary: bool,
}

/// A statement's plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Runs on the shards as routed and rewritten.
    Run(Box<(RoutePlan, ExecPlan)>),
    /// The planner needs a table's columns and unique keys: read them from the shard that
    /// holds the table, then plan again. `mismatch_row`: an INSERT row whose width differs
    /// from the columns known.
    ReadColumns {
        /// Logical schema.
        schema: String,
        /// Table, as written.
        table: String,
        /// The first INSERT row (1-based) that does not match the known columns.
        mismatch_row: Option<usize>,
    },
    /// Parts run first; then the statement they leave is planned.
    Stage(Box<Stage>),
    /// The statement cannot run.
    Refuse(PlanError),
}

/// Why a stage runs parts first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageKind {
    /// Outermost subqueries (and CTEs, inlined as derived tables) over sharded tables.
    Subqueries,
    /// A table joined off its sharding key, fetched by itself (under this qualifier).
    JoinOffKey(String),
    /// The copy fallback: every table is fetched by itself and one server evaluates the rest.
    Copy,
    /// The SELECT of an `INSERT … SELECT` runs first; its rows become the INSERT's VALUES
    /// (none: nothing is written).
    InsertRows,
}

/// Parts of a statement that run first.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Why.
    pub kind: StageKind,
    /// The refusal of the statement as written (what a client hears when no stage works).
    pub why: PlanError,
    /// The statement whose outermost subqueries are [`Stage::parts`], in order.
    pub statement: String,
    /// What runs first.
    pub parts: Vec<Part>,
    /// Copied rows must come back exactly (no column type a literal cannot carry), in key
    /// order.
    pub exact: bool,
    /// The parts read the primaries (they decide what a write changes).
    pub on_primary: bool,
    /// What runs instead when the statement the parts leave cannot be planned: the copy.
    pub fallback: Option<Box<Stage>>,
}

/// One subquery of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The subquery, and where its answer goes.
    pub subquery: Subquery,
    /// How its answer is found.
    pub run: PartRun,
}

/// How a part's answer is found.
#[derive(Debug, Clone, PartialEq)]
pub enum PartRun {
    /// It runs by itself; its rows become literals.
    Rows(Plan),
    /// It refers to the outer statement: it stays, and runs on the outer statement's shards
    /// with each of its tables replaced by the rows fetched by the plan beside it.
    Tables(Vec<(CorrelatedTable, Plan)>),
}

/// Plans a statement of canonical text, stages included.
///
/// A `Run` plan keeps the router's [`myshard_router::Placed`] only when it is the routing of
/// `sql` itself; plans found after a refusal say `Unknown` (a plan cache must not reuse them).
pub fn plan_tree(router: &Router, facts: &Facts, sql: &str, ids: &mut dyn IdSource) -> Plan {
    match plan_as(router, facts.schema, facts.allowed, sql, ids) {
        Ok((mut route, mut exec)) => {
            if facts.mode.on_primary {
                route.role = myshard_router::Role::Primary;
                exec.role = myshard_router::Role::Primary;
            }
            Plan::Run(Box::new((route, exec)))
        }
        Err(e) => {
            let mut plan = after_refusal(router, facts, sql, e, ids);
            if let Plan::Run(p) = &mut plan {
                p.0.placed_by = myshard_router::Placed::Unknown;
            }
            plan
        }
    }
}

/// The copy fallback for a read whose planned rows turned out not to merge (column kinds
/// that differ between shards): `None` when it has none.
pub fn copy_plan(
    router: &Router,
    facts: &Facts,
    sql: &str,
    why: PlanError,
    ids: &mut dyn IdSource,
) -> Option<Stage> {
    match copy_stage(router, facts, sql, why, ids) {
        Ok(Some(s)) => Some(s),
        _ => None,
    }
}

/// The plan of a write that has nothing to do (an `INSERT … SELECT` whose SELECT found no
/// rows): no target, an OK with no affected rows.
pub fn nothing_to_write() -> (RoutePlan, ExecPlan) {
    let mut route = RoutePlan::single(
        myshard_router::StatementKind::Write,
        myshard_router::Role::Primary,
        "",
        None,
    );
    route.targets.clear();
    let exec = ExecPlan {
        role: myshard_router::Role::Primary,
        queries: Vec::new(),
        merge: myshard_merger::MergeSpec::SumAffected,
        last_insert_id: None,
        union: false,
        result_renames: Vec::new(),
    };
    (route, exec)
}

/// What a part or stage needs before it can be planned: a table's columns.
enum Blocked {
    Columns(String, String),
    Refused(PlanError),
}

impl From<PlanError> for Blocked {
    fn from(e: PlanError) -> Self {
        Blocked::Refused(e)
    }
}

impl From<RewriteError> for Blocked {
    fn from(e: RewriteError) -> Self {
        Blocked::Refused(e.into())
    }
}

fn after_refusal(
    router: &Router,
    facts: &Facts,
    sql: &str,
    why: PlanError,
    ids: &mut dyn IdSource,
) -> Plan {
    if let Some((schema, table, mismatch_row)) = why.needs_columns() {
        return Plan::ReadColumns {
            schema: schema.to_string(),
            table: table.to_string(),
            mismatch_row,
        };
    }
    // Parts run first are rebuilt from a parse, which has no executable comment's body.
    if !why.is_unsupported() || myshard_router::lexer::has_meaningful_executable_comment(sql) {
        return Plan::Refuse(why);
    }
    let refused = match split_stage(router, facts, sql, &why, ids) {
        Ok(Some(mut stage)) => {
            stage.fallback = match copy_stage(router, facts, sql, why, ids) {
                Ok(c) => c.map(Box::new),
                Err(Blocked::Columns(schema, table)) => return Plan::columns(schema, table),
                Err(Blocked::Refused(_)) => None,
            };
            return Plan::Stage(Box::new(stage));
        }
        Err(Blocked::Columns(schema, table)) => return Plan::columns(schema, table),
        Err(Blocked::Refused(e)) => e,
        Ok(None) => why.clone(),
    };
    match copy_stage(router, facts, sql, why, ids) {
        Ok(Some(copy)) => Plan::Stage(Box::new(copy)),
        Err(Blocked::Columns(schema, table)) => Plan::columns(schema, table),
        _ => Plan::Refuse(refused),
    }
}

/// Whether a statement text may hold a subquery (a cheap pre-check).
pub fn may_have_subquery(sql: &str) -> bool {
    sql.to_ascii_uppercase().matches("SELECT").count() > 1
}

/// Rows first, then the rest: a table joined off the key, then the outermost subqueries.
/// `Ok(None)`: nothing of the statement can run by itself.
fn split_stage(
    router: &Router,
    facts: &Facts,
    sql: &str,
    why: &PlanError,
    ids: &mut dyn IdSource,
) -> Result<Option<Stage>, Blocked> {
    if let Some(select) = insert_source(sql) {
        // Its rows decide what is written: read on the primaries.
        let inner = Facts {
            mode: Mode {
                on_primary: true,
                ..facts.mode
            },
            ..*facts
        };
        let select = select?;
        let plan = runnable(plan_tree(router, &inner, &select, ids))?;
        return Ok(Some(Stage {
            kind: StageKind::InsertRows,
            why: why.clone(),
            statement: sql.to_string(),
            parts: vec![Part {
                subquery: Subquery::Rows(select),
                run: PartRun::Rows(plan),
            }],
            exact: facts.mode.in_copy,
            on_primary: true,
            fallback: None,
        }));
    }
    // An UPDATE's or DELETE's subqueries decide what it changes: they read the primaries.
    let write = myshard_router::lexer::tokenize(sql)
        .iter()
        .find_map(|t| t.ident())
        .is_some_and(|w| w.eq_ignore_ascii_case("UPDATE") || w.eq_ignore_ascii_case("DELETE"));
    let may_have_subquery = |sql: &str| {
        may_have_subquery(sql) || (write && sql.to_ascii_uppercase().contains("SELECT"))
    };
    let mut kind = StageKind::Subqueries;
    let mut why = why.clone();
    let mut current = std::borrow::Cow::Borrowed(sql);
    match why
        .join_off_key()
        .map(|t| (t.to_string(), derive_table(sql, t)))
    {
        Some((table, Ok(derived))) => {
            current = derived.into();
            kind = StageKind::JoinOffKey(table);
        }
        Some((_, Err(e))) => {
            // The join may be inside a subquery, which fetches its own tables when it runs.
            if !may_have_subquery(sql) {
                return Err(e.into());
            }
            why = e.into();
        }
        None if may_have_subquery(sql) => {}
        None => return Ok(None),
    }
    let inlined = match inline_ctes(&current) {
        Some(r) => Some(r?),
        None => None,
    };
    let statement = inlined.unwrap_or_else(|| current.into_owned());
    let found = match outer_subqueries(&statement) {
        Some(found) => found?,
        None if statement != sql => Vec::new(),
        None => return Ok(None),
    };
    let inner = Facts {
        mode: Mode {
            on_primary: facts.mode.on_primary || write,
            ..facts.mode
        },
        ..*facts
    };
    let parts = plan_parts(router, &inner, found, ids)?;
    if write && parts.iter().any(|p| matches!(p.run, PartRun::Tables(_))) {
        // A correlated subquery stays in the statement, which a shard cannot then run over
        // a sharded table's part of the rows.
        return Err(Blocked::Refused(why));
    }
    Ok(Some(Stage {
        kind,
        why,
        statement,
        parts,
        exact: facts.mode.in_copy,
        on_primary: inner.mode.on_primary,
        fallback: None,
    }))
}

/// Each subquery's part: its rows by its own plan, or its tables when it refers to the outer
/// statement.
fn plan_parts(
    router: &Router,
    facts: &Facts,
    found: Vec<Subquery>,
    ids: &mut dyn IdSource,
) -> Result<Vec<Part>, Blocked> {
    let mut parts = Vec::with_capacity(found.len());
    for subquery in found {
        let columns =
            |schema: Option<&str>, table: &str| table_columns(router, facts, schema, table);
        let run = match correlation(subquery.sql(), &columns)? {
            Correlation::NeedsColumns(schema, table) => return Err(Blocked::Columns(schema, table)),
            Correlation::Outer if matches!(subquery, Subquery::Derived(_)) => {
                return Err(Blocked::Refused(PlanError::Rewrite(RewriteError::Unsupported(
                    "derived tables that refer to the outer statement across several shards are not supported yet".into(),
                ))))
            }
            Correlation::Outer => {
                let mut tables = Vec::new();
                for t in correlated_tables(subquery.sql())? {
                    let plan = runnable(plan_tree(router, facts, &t.fetch, ids))?;
                    tables.push((t, plan));
                }
                PartRun::Tables(tables)
            }
            Correlation::Inner => PartRun::Rows(runnable(plan_tree(router, facts, subquery.sql(), ids))?),
        };
        parts.push(Part { subquery, run });
    }
    Ok(parts)
}

/// A part's plan, unless it cannot run.
fn runnable(plan: Plan) -> Result<Plan, Blocked> {
    match plan {
        Plan::Refuse(e) => Err(Blocked::Refused(e)),
        Plan::ReadColumns { schema, table, .. } => Err(Blocked::Columns(schema, table)),
        p => Ok(p),
    }
}

fn table_columns(router: &Router, facts: &Facts, schema: Option<&str>, table: &str) -> Columns {
    let Some(schema) = schema.or(facts.schema) else {
        return Columns::Unknown;
    };
    // Only the shard map's schemas this client may use are ever read.
    if router.config().schema(schema).is_none()
        || facts
            .allowed
            .is_some_and(|a| !a.iter().any(|x| x == schema))
    {
        return Columns::Unknown;
    }
    match router.columns().get(schema, table) {
        Some(c) => Columns::Known(c),
        None => Columns::Unread(schema.to_string(), table.to_string()),
    }
}

/// The copy fallback: every table of the read becomes a derived table of its rows, fetched
/// by itself; one server evaluates the rest. `Ok(None)` when the read has no such form or
/// the configuration turns the fallback off.
fn copy_stage(
    router: &Router,
    facts: &Facts,
    sql: &str,
    why: PlanError,
    ids: &mut dyn IdSource,
) -> Result<Option<Stage>, Blocked> {
    if facts.mode.in_copy
        || !router.config().server.copy_fallback
        || myshard_router::lexer::has_meaningful_executable_comment(sql)
    {
        return Ok(None);
    }
    let Ok(Some(copy)) = derive_every_table(sql) else {
        return Ok(None);
    };
    let statement = match inline_ctes(&copy) {
        Some(r) => r?,
        None => copy,
    };
    let found = match outer_subqueries(&statement) {
        Some(found) => found?,
        None => return Ok(None),
    };
    let inner = Facts {
        mode: Mode {
            in_copy: true,
            ..facts.mode
        },
        ..*facts
    };
    let parts = plan_parts(router, &inner, found, ids)?;
    Ok(Some(Stage {
        kind: StageKind::Copy,
        why,
        statement,
        parts,
        exact: true,
        on_primary: facts.mode.on_primary,
        fallback: None,
    }))
}

impl From<RouteError> for Plan {
    fn from(e: RouteError) -> Self {
        Plan::Refuse(e.into())
    }
}

impl fmt::Display for Plan {
    /// The plan as indented lines: operators, targets and each target's SQL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out, 0);
        f.write_str(out.trim_end())
    }
}

impl Plan {
    /// Read a table's columns first (for a subquery's names: no INSERT row to match).
    fn columns(schema: String, table: String) -> Plan {
        Plan::ReadColumns {
            schema,
            table,
            mismatch_row: None,
        }
    }

    /// The plan as lines (see its `Display`).
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_string).collect()
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        match self {
            Plan::Run(p) => {
                let (route, exec) = p.as_ref();
                let _ = writeln!(out, "{pad}route: {route}");
                let _ = writeln!(out, "{pad}merge: {}", exec.merge);
                for q in &exec.queries {
                    let target = match q.table {
                        Some(t) => format!("{}#{t}", q.shard),
                        None => q.shard.clone(),
                    };
                    let _ = writeln!(out, "{pad}  {target}: {}", q.sql);
                }
            }
            Plan::ReadColumns { schema, table, .. } => {
                let _ = writeln!(
                    out,
                    "{pad}read the columns of {schema}.{table} from its shard, then plan again"
                );
            }
            Plan::Refuse(e) => {
                let _ = writeln!(out, "{pad}refuse: {e}");
            }
            Plan::Stage(s) => s.write(out, depth),
        }
    }
}

impl Stage {
    /// What the parts of this stage are planned as.
    pub fn mode(&self) -> Mode {
        Mode {
            in_copy: self.exact,
            on_primary: self.on_primary,
        }
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        let what = match &self.kind {
            StageKind::Subqueries => "materialize subqueries".to_string(),
            StageKind::JoinOffKey(t) => format!("fetch '{t}' (joined off its key) by itself"),
            StageKind::Copy => "copy every table, evaluate on one server".to_string(),
            StageKind::InsertRows => "run the SELECT of an INSERT … SELECT first".to_string(),
        };
        let _ = writeln!(out, "{pad}stage: {what}");
        let _ = writeln!(out, "{pad}  because: {}", self.why);
        let _ = writeln!(out, "{pad}  statement: {}", self.statement);
        if self.on_primary {
            let _ = writeln!(
                out,
                "{pad}  parts read the primaries: they decide what a write changes"
            );
        }
        for (i, part) in self.parts.iter().enumerate() {
            let kind = match part.subquery {
                Subquery::In(_) => "IN list",
                Subquery::Scalar(_) => "scalar",
                Subquery::Exists(_) => "EXISTS",
                Subquery::Derived(_) => "derived table",
                Subquery::Rows(_) => "rows to insert",
            };
            match &part.run {
                PartRun::Rows(plan) => {
                    let exact = if self.exact { ", exact" } else { "" };
                    let _ = writeln!(
                        out,
                        "{pad}  part {} ({kind}{exact}): {}",
                        i + 1,
                        part.subquery.sql()
                    );
                    plan.write(out, depth + 2);
                }
                PartRun::Tables(tables) => {
                    let _ = writeln!(
                        out,
                        "{pad}  part {} ({kind}, correlated: stays, its tables as rows): {}",
                        i + 1,
                        part.subquery.sql()
                    );
                    for (t, plan) in tables {
                        let _ = writeln!(out, "{pad}    table {}: {}", t.qualifier, t.fetch);
                        plan.write(out, depth + 3);
                    }
                }
            }
        }
        let then = match self.kind {
            StageKind::Copy => "then: the statement over the rows, on one server",
            StageKind::InsertRows => {
                "then: INSERT … VALUES of the rows (none: nothing written), planned again"
            }
            _ => "then: the statement with the parts' rows as literals, planned again",
        };
        let _ = writeln!(out, "{pad}  {then}");
        if let Some(fallback) = &self.fallback {
            let _ = writeln!(out, "{pad}  otherwise:");
            fallback.write(out, depth + 2);
        }
    }
}
