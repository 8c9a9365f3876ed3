//! The router: statement in, [`RoutePlan`] out.
//!
//! Unsharded schemas take a fast path without parsing. Otherwise the statement is parsed,
//! its tables are looked up in the shard map, and the sharding key is read from WHERE (or
//! from each row of an INSERT). Anything that cannot be answered exactly is refused with a
//! reason; nothing is ever sent to a subset of the shards that hold the rows it needs.

use crate::keys::{key_set, literal, KeyColumn, KeySet, KeyValue};
use crate::lexer::{tokenize, Token};
use crate::placement::{all_targets, place, targets, Target};
use crate::plan::{Combine, GeneratedIds, Placed, Rewrite, Role, RoutePlan, StatementKind};
use myshard_config::{Config, RuleConfig, RuleKind, SchemaConfig, TableConfig};
use sqlparser::ast::{
    visit_expressions, visit_relations, Expr, FromTable, GroupByExpr, Ident, JoinConstraint,
    JoinOperator, LimitClause, ObjectName, OnInsert, Query, SelectItem, SetExpr, Statement,
    TableFactor, TableObject, TableWithJoins, UpdateTableFromKind,
};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Why a statement cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No schema selected and the statement needs one.
    #[error("No database selected")]
    NoDatabase,
    /// The schema is not in the shard map.
    #[error("Unknown database '{0}'")]
    UnknownDatabase(String),
    /// The statement does not parse.
    #[error("{0}")]
    Parse(String),
    /// A statement myshard cannot route correctly (ER_NOT_SUPPORTED_YET).
    #[error("{0}")]
    Unsupported(String),
    /// The statement policy refuses it, or it names a schema no client of myshard reaches.
    #[error("{0}")]
    Denied(#[from] crate::policy::Denied),
    /// A join of a table (or alias) that is not on its sharding key: its rows could be on
    /// other shards than the rest of the join's (ER_NOT_SUPPORTED_YET as it stands; a caller
    /// may fetch that table by itself, see `myshard_sql_rewrite::subquery::derive_table`).
    #[error("the join of '{table}' is not on the sharding key '{key}'; rows could be on different shards. Join co-located tables on their sharding key")]
    JoinOffKey {
        /// The table or alias.
        table: String,
        /// Its sharding column.
        key: String,
    },
    /// An INSERT without a column list into a table whose columns myshard has not read (or
    /// whose rows do not match the columns it read): a caller may read them from the shard
    /// (`crate::columns`) and plan again (ER_NOT_SUPPORTED_YET as it stands).
    #[error("INSERT into '{table}' without a column list: myshard does not know the table's columns, so it cannot find the sharding key; list the columns")]
    NeedsColumns {
        /// The logical schema.
        schema: String,
        /// The table, as written.
        table: String,
        /// The first row (1-based) whose values do not match the columns known, if any.
        mismatch_row: Option<usize>,
    },
    /// An upsert (ON DUPLICATE KEY UPDATE, INSERT IGNORE, REPLACE) into a sharded table whose
    /// unique keys myshard has not read: a caller may read them with the columns
    /// ([`crate::columns`]) and plan again (ER_NOT_SUPPORTED_YET as it stands).
    #[error("INSERT … ON DUPLICATE KEY UPDATE, INSERT IGNORE or REPLACE into '{table}': myshard has not read the table's unique keys, so it cannot tell whether a row it conflicts with could be on another shard")]
    NeedsUniqueKeys {
        /// The logical schema.
        schema: String,
        /// The table, as written.
        table: String,
    },
}

impl RouteError {
    /// The (schema, table) whose columns the planner needs, if that is the refusal.
    pub fn needs_columns(&self) -> Option<(&str, &str, Option<usize>)> {
        match self {
            RouteError::NeedsColumns {
                schema,
                table,
                mismatch_row,
            } => Some((schema, table, *mismatch_row)),
            RouteError::NeedsUniqueKeys { schema, table } => Some((schema, table, None)),
            _ => None,
        }
    }

    /// The table (or alias) a join off the sharding key names, if that is the refusal.
    pub fn join_off_key(&self) -> Option<&str> {
        match self {
            RouteError::JoinOffKey { table, .. } => Some(table),
            _ => None,
        }
    }
}

fn unsupported<T>(msg: impl Into<String>) -> Result<T, RouteError> {
    Err(RouteError::Unsupported(msg.into()))
}

/// A source of globally unique ids for auto-increment columns.
pub trait IdSource {
    /// The next id.
    fn next_id(&mut self) -> i64;
}

/// Ids counting up from a start value (tests and `myshard explain`).
pub struct CountingIds(pub i64);

impl IdSource for CountingIds {
    fn next_id(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }
}

/// Routes statements using one version of the shard map.
#[derive(Debug, Clone)]
pub struct Router {
    config: Arc<Config>,
    /// Parses of statement shapes, for this configuration only.
    cache: Arc<crate::cache::ParseCache>,
    /// Column lists read from the shards (kept across configuration reloads, which move no
    /// table).
    columns: Arc<crate::columns::ColumnCatalog>,
}

/// Reads the `/* myshard:shard=NAME */` hint.
pub fn hint_shard(sql: &str) -> Option<String> {
    let start = sql.find("myshard:shard=")?;
    let before = &sql[..start];
    // Only inside a comment.
    if before
        .rfind("/*")
        .is_none_or(|open| before[open..].contains("*/"))
    {
        return None;
    }
    let rest = &sql[start + "myshard:shard=".len()..];
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// One table a statement names, resolved against the shard map.
#[derive(Debug, Clone)]
struct TableUse<'c> {
    /// The name as written (for matching column qualifiers).
    name: String,
    /// Its alias, if any.
    alias: Option<String>,
    /// Table placement, when the shard map places it by a rule.
    table: Option<&'c TableConfig>,
    rule: Option<&'c RuleConfig>,
    /// Whether it belongs to a logical schema (not a system schema).
    logical: bool,
}

impl TableUse<'_> {
    fn is_sharded(&self) -> bool {
        self.rule.is_some_and(|r| r.kind != RuleKind::Broadcast)
    }

    fn is_broadcast(&self) -> bool {
        self.rule.is_some_and(|r| r.kind == RuleKind::Broadcast)
    }

    /// The name column qualifiers use for it.
    fn qualifier(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

fn ident_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.clone())
        .collect()
}

/// The key column of one table, recognised in expressions.
struct TableKey<'a> {
    qualifier: &'a str,
    column: &'a str,
    /// Unqualified references count (the table is the only sharded one with this column).
    bare_ok: bool,
}

impl KeyColumn for TableKey<'_> {
    fn is_key(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Identifier(i) => self.bare_ok && i.value.eq_ignore_ascii_case(self.column),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [t, c] => {
                    t.value.eq_ignore_ascii_case(self.qualifier)
                        && c.value.eq_ignore_ascii_case(self.column)
                }
                [_, t, c] => {
                    t.value.eq_ignore_ascii_case(self.qualifier)
                        && c.value.eq_ignore_ascii_case(self.column)
                }
                _ => false,
            },
            Expr::Nested(e) => self.is_key(e),
            _ => false,
        }
    }
}

/// The conjuncts of an expression (`a AND b AND c` → [a, b, c]).
pub fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::BinaryOp {
            left,
            op: sqlparser::ast::BinaryOperator::And,
            right,
        } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// Aggregate function names.
pub const AGGREGATES: [&str; 18] = [
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "GROUP_CONCAT",
    "BIT_AND",
    "BIT_OR",
    "BIT_XOR",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "JSON_ARRAYAGG",
    "JSON_OBJECTAGG",
];

fn has_aggregate_or_window(items: &[SelectItem]) -> bool {
    items.iter().any(has_own_aggregate)
}

/// Whether a call to an aggregate or window function is part of `node` itself (those inside
/// its subqueries belong to them).
pub fn has_own_aggregate<T: sqlparser::ast::Visit>(node: &T) -> bool {
    own_aggregates(node, |_| true)
}

/// Whether `pick` holds for an aggregate or window call of `node` itself (not of its
/// subqueries).
fn own_aggregates<T: sqlparser::ast::Visit>(
    node: &T,
    pick: impl FnMut(&sqlparser::ast::Function) -> bool,
) -> bool {
    struct Finder<F> {
        depth: usize,
        pick: F,
    }
    impl<F: FnMut(&sqlparser::ast::Function) -> bool> sqlparser::ast::Visitor for Finder<F> {
        type Break = ();
        fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Function(f)
                    if self.depth == 0
                        && (f.over.is_some()
                            || AGGREGATES
                                .contains(&f.name.to_string().to_ascii_uppercase().as_str()))
                        && (self.pick)(f) =>
                {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    node.visit(&mut Finder { depth: 0, pick }).is_break()
}

/// Whether a subquery aggregates columns of the outer statement only, as in
/// `(SELECT COUNT(t.x))`: MySQL evaluates that aggregate in the outer query, over every row
/// of it, which no shard has. Judged conservatively: a subquery without FROM, or a call whose
/// columns are all qualified by names the subquery's FROM does not define.
fn aggregates_outer_columns(q: &Query) -> bool {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return has_own_aggregate(q.body.as_ref());
    };
    let mut own: Vec<String> = Vec::new();
    for twj in &select.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            match factor {
                TableFactor::Table { alias: Some(a), .. }
                | TableFactor::Derived { alias: Some(a), .. } => own.push(a.name.value.clone()),
                TableFactor::Table { name, .. } => {
                    if let Some(i) = name.0.last().and_then(|p| p.as_ident()) {
                        own.push(i.value.clone());
                    }
                }
                _ => {}
            }
        }
    }
    let no_from = select.from.is_empty();
    own_aggregates(select.as_ref(), |f| {
        let (mut columns, mut outer) = (0, 0);
        let _ = visit_expressions(f, |e| {
            match e {
                Expr::Identifier(_) => {
                    columns += 1;
                    outer += usize::from(no_from);
                }
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    columns += 1;
                    let q = &parts[parts.len() - 2].value;
                    outer += usize::from(!own.iter().any(|o| o.eq_ignore_ascii_case(q)));
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        (no_from && columns == 0) || (columns > 0 && outer == columns)
    })
}

/// Whether a subquery of `node` must be split off before the statement can run on several
/// shards: it reads a table (rather than only literal rows and the outer statement's
/// columns, as a correlated subquery myshard filled in does), or aggregates the outer
/// statement's columns.
fn subquery_reads_tables<T: sqlparser::ast::Visit>(node: &T) -> bool {
    visit_expressions(node, |e| match e {
        Expr::Subquery(q)
        | Expr::InSubquery { subquery: q, .. }
        | Expr::Exists { subquery: q, .. } => {
            let reads = |n: &sqlparser::ast::ObjectName| {
                if is_dual(n) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            };
            if sqlparser::ast::visit_relations(q.as_ref(), reads).is_break()
                || aggregates_outer_columns(q)
            {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `DUAL`, the table of no rows' worth of columns: no table at all.
fn is_dual(name: &sqlparser::ast::ObjectName) -> bool {
    matches!(name.0.as_slice(), [p] if p.as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case("DUAL")))
}

fn has_subquery<T: sqlparser::ast::Visit>(node: &T) -> bool {
    visit_expressions(node, |e| match e {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn literal_u64(e: &Expr) -> Option<u64> {
    literal(e)
        .and_then(|v| v.as_int())
        .and_then(|i| u64::try_from(i).ok())
}

/// A query's OFFSET and LIMIT, which must be numbers to be applied across shards.
pub fn offset_limit(q: &Query) -> Result<(u64, Option<u64>), String> {
    let number =
        |e: &Expr, what: &str| literal_u64(e).ok_or_else(|| format!("{what} must be a number"));
    match &q.limit_clause {
        None => Ok((0, None)),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) if limit_by.is_empty() => Ok((
            match offset {
                Some(o) => number(&o.value, "OFFSET")?,
                None => 0,
            },
            match limit {
                Some(l) => Some(number(l, "LIMIT")?),
                None => None,
            },
        )),
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            Ok((number(offset, "OFFSET")?, Some(number(limit, "LIMIT")?)))
        }
        Some(_) => Err("this LIMIT form is not supported across shards".into()),
    }
}

impl Router {
    /// A router over this configuration.
    pub fn new(config: Arc<Config>) -> Self {
        let cache = crate::cache::ParseCache::new(
            config.server.plan_cache_size,
            config.server.plan_cache_verify,
        );
        Router {
            config,
            cache: Arc::new(cache),
            columns: Arc::default(),
        }
    }

    /// The parse cache's counters.
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
        self.cache.stats()
    }

    /// The one statement of `sql`: a copy of its shape's kept parse with its own literals, or
    /// a parse (kept for the next statement of its shape).
    fn parse_one(&self, sql: &str) -> Result<Statement, RouteError> {
        // Short statements only: parsing is what they cost, and a shape per IN-list length of
        // a 10,000-value list would fill memory with trees nobody reuses.
        let shape = if self.cache.enabled() && sql.len() <= crate::cache::MAX_TEXT {
            crate::text::literal_shape(sql)
                .filter(|(_, lits)| lits.len() <= crate::cache::MAX_LITERALS)
        } else {
            None
        };
        if let Some((shape, literals)) = &shape {
            if let Some(stmt) = self.cache.get(shape, literals) {
                if self.cache.verifies() {
                    let fresh = crate::parse::parse(sql).ok().filter(|s| s.len() == 1);
                    if fresh.as_deref() != Some(std::slice::from_ref(&stmt)) {
                        return unsupported(format!(
                            "invariant: the plan cache's statement differs from a fresh parse of {sql}"
                        ));
                    }
                }
                return Ok(stmt);
            }
        }
        let mut statements = crate::parse::parse(sql).map_err(|e| {
            RouteError::Unsupported(format!(
                "myshard cannot parse this statement to route it ({e}); rewrite it, or use a /* myshard:shard=NAME */ hint"
            ))
        })?;
        if statements.len() != 1 {
            return unsupported("one statement at a time");
        }
        let stmt = statements.remove(0);
        if let Some((shape, literals)) = shape {
            self.cache.insert(shape, &stmt, &literals);
        }
        Ok(stmt)
    }

    /// The configuration this router uses.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Decides where `sql` runs for a session whose current schema is `schema`. Ids for
    /// auto-increment columns come from `ids`.
    pub fn route(
        &self,
        schema: Option<&str>,
        sql: &str,
        ids: &mut dyn IdSource,
    ) -> Result<RoutePlan, RouteError> {
        self.route_as(schema, None, sql, ids)
    }

    /// [`Router::route`] for a client that may use only the logical schemas `allowed`
    /// (`None`: every schema of the shard map). A statement that names another schema is
    /// refused before anything else is decided about it.
    pub fn route_as(
        &self,
        schema: Option<&str>,
        allowed: Option<&[String]>,
        sql: &str,
        ids: &mut dyn IdSource,
    ) -> Result<RoutePlan, RouteError> {
        // One tokenization serves the policy, classification, the schema check and the
        // replica check.
        let tokens = tokenize(sql);
        let checked = crate::policy::check(&tokens)?;
        let kind = first_kind(&tokens);
        let role = Role::Primary;
        let schema_cfg = match schema {
            Some(name) => Some(
                self.config
                    .schema(name)
                    .ok_or_else(|| RouteError::UnknownDatabase(name.to_string()))?,
            ),
            None => None,
        };
        let database = schema_cfg.map(|s| s.physical_database());
        if !checked.catalog.is_empty() && kind != StatementKind::Other {
            // Read from the logical catalog, never from one shard's (hints included).
            if kind != StatementKind::Read {
                return unsupported("information_schema can only be read through myshard: its rows are gathered from every shard and cannot be written into tables or combined with a write");
            }
            // The statement is rebuilt over the gathered rows from its parse, which has no
            // executable comment's body: refused, as in every other read myshard rewrites.
            if crate::lexer::has_meaningful_executable_comment(sql) {
                return unsupported("executable comments (/*! … */) in a read of information_schema are not supported; write the statement without them");
            }
            let shard = match schema_cfg {
                Some(s) => s.default_shard.as_str(),
                None => match self.config.shards.first() {
                    Some(s) => s.name.as_str(),
                    None => return unsupported("no shards are configured"),
                },
            };
            let mut plan = RoutePlan::single(kind, role, shard, database);
            plan.schemas = self.checked_names(sql, &tokens, schema_cfg, allowed)?;
            plan.catalog = checked.catalog.iter().map(|c| c.to_string()).collect();
            return Ok(plan);
        }
        if let Some(shard) = hint_shard(sql) {
            if self.config.shard(&shard).is_none() {
                return unsupported(format!("the hint names unknown shard '{shard}'"));
            }
            let mut plan = RoutePlan::single(kind, role, &shard, database);
            plan.hinted = true;
            plan.schemas = self.checked_names(sql, &tokens, schema_cfg, allowed)?;
            return Ok(plan);
        }
        let default_shard = match schema_cfg {
            Some(s) => s.default_shard.clone(),
            None => match self.config.shards.first() {
                Some(s) => s.name.clone(),
                None => return unsupported("no shards are configured"),
            },
        };
        if let Some(show) = show_index(&tokens) {
            let show = show?;
            let mut schemas = Vec::new();
            if let Some(s) = show.schema.as_deref() {
                if crate::policy::is_backend_schema(s) || self.config.schema(s).is_none() {
                    return Err(RouteError::Denied(crate::policy::Denied::Table {
                        command: "SHOW".into(),
                        schema: s.to_string(),
                        table: show.table.clone(),
                    }));
                }
                if allowed.is_some_and(|a| !a.iter().any(|x| x == s)) {
                    return Err(RouteError::Denied(crate::policy::Denied::Database(
                        s.to_string(),
                    )));
                }
                if schema_cfg.is_none_or(|c| c.name != s) {
                    schemas.push(s.to_string());
                }
            }
            let ctx = Ctx {
                router: self,
                schema: schema_cfg,
                default_shard,
                kind,
            };
            let mut plan = ctx.plan_show_index(show)?;
            plan.database = database.map(str::to_string);
            plan.schemas = schemas;
            return Ok(plan);
        }
        if let Some(lock) = crate::lock::lock_tables(&tokens) {
            return crate::lock::plan_lock(&self.config, schema_cfg, allowed, &lock?);
        }
        let sharded_schemas = self.config.schemas.iter().any(|s| !s.is_unsharded());
        // Fast path: nothing in this schema (or anywhere, without a schema) is placed by a rule.
        let fast = match schema_cfg {
            Some(s) => {
                s.is_unsharded()
                    && !(sharded_schemas && mentions_other_sharded_schema(&tokens, &self.config, s))
            }
            None => !sharded_schemas,
        };
        if fast {
            let role = if kind == StatementKind::Read && replica_safe(sql, &tokens) {
                Role::Replica
            } else {
                role
            };
            let mut plan = RoutePlan::single(kind, role, &default_shard, database);
            plan.schemas = self.checked_names(sql, &tokens, schema_cfg, allowed)?;
            if matches!(kind, StatementKind::Read | StatementKind::Write) {
                plan.placed_by = Placed::Fixed;
            }
            return Ok(plan);
        }
        // A read or write is placed by its content, which sqlparser reads without an
        // executable comment's body while the shard would run it. DDL (`CREATE TABLE …
        // /*! ENGINE = innodb */`, as sysbench writes it) runs on every shard of its tables
        // whatever the comment says; the policy has read the body already.
        if matches!(kind, StatementKind::Read | StatementKind::Write)
            && crate::lexer::has_meaningful_executable_comment(sql)
        {
            return unsupported("executable comments (/*! … */) in a read or write myshard routes by its content are not supported; write the statement without them");
        }
        let mut stmt = self.parse_one(sql)?;
        insert_set_as_values(&mut stmt);
        self.fill_insert_columns(&mut stmt, schema_cfg)?;
        self.check_upsert_keys(&stmt, schema_cfg)?;
        // Without a qualifier in its tokens a statement names no schema: no tree walk.
        let schemas = if has_qualifier(&tokens, None) || show_schema(&tokens).is_some() {
            named_schemas(&stmt, &tokens, schema_cfg, self.config(), allowed)?
        } else {
            Vec::new()
        };
        let ctx = Ctx {
            router: self,
            schema: schema_cfg,
            default_shard,
            kind,
        };
        let mut plan = ctx.plan(&stmt, ids)?;
        plan.schemas = schemas;
        plan.database = database.map(str::to_string);
        plan.role = role;
        if plan.kind == StatementKind::Read && replica_safe(sql, &tokens) {
            plan.role = Role::Replica;
        }
        // A statement of one target that qualifies no name by a renamed schema has nothing a
        // rename would change: the shard runs the client's text (an INSERT's tree may have
        // been completed above: its text is printed).
        if plan.rewrite == Rewrite::Rename
            && !matches!(stmt, Statement::Insert(_))
            && plan.combine == Combine::Single
            && plan.sharded_tables.is_empty()
            && !tokens.windows(2).any(|w| {
                w[1].is_sym(".")
                    && w[0].ident().is_some_and(|q| {
                        plan.schema_renames
                            .iter()
                            .any(|(logical, _)| logical.eq_ignore_ascii_case(q))
                    })
            })
        {
            plan.rewrite = Rewrite::Verbatim;
        }
        plan.placed_by = ctx.placed_by(sql, &stmt, &plan);
        if plan.rewrite != Rewrite::Verbatim {
            plan.ast = Some(Arc::new(stmt));
        }
        Ok(plan)
    }
}

impl Router {
    /// The column catalog this router plans with.
    pub fn columns(&self) -> &Arc<crate::columns::ColumnCatalog> {
        &self.columns
    }

    /// This router for another configuration, keeping the column catalog.
    pub fn with_columns(
        config: Arc<Config>,
        columns: Arc<crate::columns::ColumnCatalog>,
    ) -> Router {
        let mut r = Router::new(config);
        r.columns = columns;
        r
    }

    /// An INSERT … VALUES without a column list into a table the shard map places by a rule
    /// gets the table's columns from the catalog, so the planner finds its sharding key (and
    /// the rewritten statement names them). Without them: [`RouteError::NeedsColumns`].
    /// The logical schema and table an INSERT writes, if the shard map knows the schema.
    fn insert_target<'s>(
        &'s self,
        ins: &sqlparser::ast::Insert,
        current: Option<&'s SchemaConfig>,
    ) -> Option<(&'s SchemaConfig, String)> {
        let TableObject::TableName(name) = &ins.table else {
            return None;
        };
        match ident_parts(name).as_slice() {
            [t] => Some((current?, t.clone())),
            [s, t] => Some((self.config.schema(s)?, t.clone())),
            _ => None,
        }
    }

    fn check_upsert_keys(
        &self,
        stmt: &Statement,
        current: Option<&SchemaConfig>,
    ) -> Result<(), RouteError> {
        let Statement::Insert(ins) = stmt else {
            return Ok(());
        };
        let verb = if ins.replace_into {
            "REPLACE"
        } else if ins.on.is_some() {
            "INSERT … ON DUPLICATE KEY UPDATE"
        } else if ins.ignore {
            "INSERT IGNORE"
        } else {
            return Ok(());
        };
        let Some((schema, table)) = self.insert_target(ins, current) else {
            return Ok(());
        };
        let Some(tc) = schema.table(&table) else {
            return Ok(());
        };
        let (Some(rule), Some(column)) = (schema.rule(&tc.rule), tc.column.as_deref()) else {
            return Ok(());
        };
        if rule.kind == RuleKind::Broadcast {
            return Ok(());
        }
        let Some(keys) = self.columns.unique_keys(&schema.name, &table) else {
            return Err(RouteError::NeedsUniqueKeys {
                schema: schema.name.clone(),
                table: table.to_string(),
            });
        };
        match keys
            .iter()
            .find(|k| !k.columns.iter().any(|c| c.eq_ignore_ascii_case(column)))
        {
            Some(k) => unsupported(format!(
                "{verb} into '{table}': its unique key {} ({}) does not contain the sharding column '{column}', so the row a new one conflicts with may be on another shard, where this statement does not look; one server would find it. Make '{column}' part of that key, or use a plain INSERT",
                if k.name == "PRIMARY" { "PRIMARY".to_string() } else { format!("'{}'", k.name) },
                k.columns.join(", ")
            )),
            None => Ok(()),
        }
    }

    fn fill_insert_columns(
        &self,
        stmt: &mut Statement,
        current: Option<&SchemaConfig>,
    ) -> Result<(), RouteError> {
        let Statement::Insert(ins) = stmt else {
            return Ok(());
        };
        if !ins.columns.is_empty() {
            return Ok(());
        }
        let Some((schema, table)) = self.insert_target(ins, current) else {
            return Ok(());
        };
        let table = table.as_str();
        if schema.table(table).is_none() {
            return Ok(());
        }
        let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|q| q.body.as_ref()) else {
            return Ok(());
        };
        let needs = |mismatch_row| RouteError::NeedsColumns {
            schema: schema.name.clone(),
            table: table.to_string(),
            mismatch_row,
        };
        let columns = self
            .columns
            .get(&schema.name, table)
            .ok_or_else(|| needs(None))?;
        if let Some(i) = values.rows.iter().position(|r| r.len() != columns.len()) {
            return Err(needs(Some(i + 1)));
        }
        ins.columns = columns
            .iter()
            .map(|c| ObjectName::from(vec![Ident::with_quote('`', c.clone())]))
            .collect();
        Ok(())
    }

    /// The other logical schemas a statement sent as written names. Qualified names are
    /// read from a parse: a qualifier that is a table or alias cannot be told from a schema
    /// by tokens alone, and a statement that names schemas must not reach a shard unchecked.
    fn checked_names(
        &self,
        sql: &str,
        tokens: &[Token],
        current: Option<&SchemaConfig>,
        allowed: Option<&[String]>,
    ) -> Result<Vec<String>, RouteError> {
        if !has_qualifier(tokens, current) && show_schema(tokens).is_none() {
            return Ok(Vec::new());
        }
        let stmt = self.parse_one(sql).map_err(|_| {
            RouteError::Unsupported(
                "myshard cannot parse this statement to check the schemas it names; qualify tables only by your own schemas, or rewrite it".into(),
            )
        })?;
        named_schemas(&stmt, tokens, current, &self.config, allowed)
    }
}

/// `INSERT … SET a = 1, b = 2` as the one-row `INSERT … (a, b) VALUES (1, 2)` it is (a value
/// may refer to a column set before it in both forms), so it is placed by its key like
/// any VALUES row. The shard gets the client's text when nothing is rewritten.
fn insert_set_as_values(stmt: &mut Statement) {
    let Statement::Insert(ins) = stmt else {
        return;
    };
    if ins.assignments.is_empty() || ins.source.is_some() || !ins.columns.is_empty() {
        return;
    }
    let mut columns = Vec::with_capacity(ins.assignments.len());
    let mut row = Vec::with_capacity(ins.assignments.len());
    for a in &ins.assignments {
        let sqlparser::ast::AssignmentTarget::ColumnName(name) = &a.target else {
            return;
        };
        columns.push(name.clone());
        row.push(a.value.clone());
    }
    ins.columns = columns;
    ins.assignments.clear();
    ins.source = Some(Box::new(Query {
        with: None,
        body: Box::new(SetExpr::Values(sqlparser::ast::Values {
            explicit_row: false,
            value_keyword: false,
            rows: vec![sqlparser::ast::Parens {
                opening_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                content: row,
                closing_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
            }],
        })),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }));
}

/// Whether a statement qualifies any name by something other than its current schema (a
/// schema, or a table or alias: tokens cannot tell which).
fn has_qualifier(tokens: &[Token], current: Option<&SchemaConfig>) -> bool {
    tokens.windows(2).enumerate().any(|(i, w)| {
        w[1].is_sym(".")
            && !(i > 0 && tokens[i - 1].is_sym("."))
            && w[0].ident().is_some_and(|q| {
                !q.starts_with('@')
                    && current.is_none_or(|c| q != c.name)
                    && !q.eq_ignore_ascii_case("information_schema")
            })
    })
}

/// `SHOW {INDEX|INDEXES|KEYS} {FROM|IN} [db.]t [{FROM|IN} db]`, read from its tokens.
struct ShowIndex {
    keyword: String,
    schema: Option<String>,
    table: String,
}

/// The SHOW INDEX a statement is, if it is one; an error for the forms myshard does not
/// route (a WHERE clause, EXTENDED).
fn show_index(t: &[Token]) -> Option<Result<ShowIndex, RouteError>> {
    if !t.first()?.is_kw("SHOW") {
        return None;
    }
    let keyword = ["INDEX", "INDEXES", "KEYS"]
        .into_iter()
        .find(|k| t.get(1).is_some_and(|x| x.is_kw(k)))?;
    let from = |x: Option<&Token>| x.is_some_and(|x| x.is_kw("FROM") || x.is_kw("IN"));
    let refuse = || {
        Some(Err(RouteError::Unsupported(
            "myshard routes SHOW INDEX only as SHOW INDEX FROM table [FROM schema]; filter with information_schema.STATISTICS".into(),
        )))
    };
    if !from(t.get(2)) {
        return refuse();
    }
    let (mut schema, table, rest) = match t.get(3..) {
        Some([q, dot, name, rest @ ..]) if dot.is_sym(".") => {
            (q.ident().map(str::to_string), name.ident(), rest)
        }
        Some([name, rest @ ..]) => (None, name.ident(), rest),
        _ => return refuse(),
    };
    let rest = match rest {
        [kw, db, rest @ ..] if from(Some(kw)) => {
            schema = db.ident().map(str::to_string);
            rest
        }
        other => other,
    };
    match (table, rest) {
        (Some(table), []) => Some(Ok(ShowIndex {
            keyword: keyword.to_string(),
            schema,
            table: table.to_string(),
        })),
        _ => refuse(),
    }
}

/// The database a SHOW statement names by `FROM`/`IN` (`SHOW TABLE STATUS FROM db`,
/// `SHOW COLUMNS FROM t FROM db`).
fn show_schema(tokens: &[Token]) -> Option<&str> {
    if !tokens.first()?.is_kw("SHOW") {
        return None;
    }
    let froms: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| t.is_kw("FROM") || t.is_kw("IN"))
        .map(|(i, _)| i)
        .collect();
    // The table-describing SHOWs name a table first, then its database.
    let table_first = tokens.iter().take(4).any(|t| {
        t.is_kw("COLUMNS")
            || t.is_kw("FIELDS")
            || t.is_kw("INDEX")
            || t.is_kw("INDEXES")
            || t.is_kw("KEYS")
    });
    let at = *froms.get(usize::from(table_first))?;
    tokens.get(at + 1)?.ident()
}

/// Checks every qualified name of a statement (tables, routines, a SHOW's database) and
/// returns the logical schemas other than the current one that it names. Schemas the client
/// may not use (`allowed`), backend schemas and names outside the shard map are refused (ER_TABLEACCESS_DENIED_ERROR, as MySQL
/// answers for a table in a database one may not use, whether it exists or not).
fn named_schemas(
    stmt: &Statement,
    tokens: &[Token],
    current: Option<&SchemaConfig>,
    config: &Config,
    allowed: Option<&[String]>,
) -> Result<Vec<String>, RouteError> {
    let command = tokens
        .iter()
        .find_map(|t| match t {
            Token::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
        .unwrap_or_else(|| "SELECT".into());
    let mut names: Vec<(String, String)> = Vec::new();
    let mut take = |n: &ObjectName| {
        let parts = ident_parts(n);
        if let [s, t, ..] = parts.as_slice() {
            names.push((s.clone(), t.clone()));
        }
    };
    let _ = visit_relations(stmt, |n| {
        take(n);
        ControlFlow::<()>::Continue(())
    });
    for n in table_names_outside_relations(stmt) {
        take(n);
    }
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Function(f) = e {
            take(&f.name);
        }
        ControlFlow::<()>::Continue(())
    });
    if let Some(db) = show_schema(tokens) {
        names.push((db.to_string(), String::new()));
    }
    let mut out: Vec<String> = Vec::new();
    for (schema, table) in names {
        if schema.eq_ignore_ascii_case("information_schema")
            || current.is_some_and(|c| c.name == schema)
        {
            continue;
        }
        if crate::policy::is_backend_schema(&schema) || config.schema(&schema).is_none() {
            return Err(RouteError::Denied(if table.is_empty() {
                crate::policy::Denied::Database(schema)
            } else {
                crate::policy::Denied::Table {
                    command,
                    schema,
                    table,
                }
            }));
        }
        if allowed.is_some_and(|a| !a.contains(&schema)) {
            return Err(RouteError::Denied(crate::policy::Denied::Database(schema)));
        }
        if !out.contains(&schema) {
            out.push(schema);
        }
    }
    Ok(out)
}

/// Whether a read may run on a replica: no locking clause, no function bound to the session
/// or the primary, no assignment, and no `/* myshard:primary */` hint.
pub fn replica_safe(sql: &str, t: &[Token]) -> bool {
    if sql.contains("myshard:primary") {
        return false;
    }
    for (i, tok) in t.iter().enumerate() {
        let next = |k: &str| t.get(i + 1).is_some_and(|n| n.is_kw(k));
        if (tok.is_kw("FOR") && (next("UPDATE") || next("SHARE")))
            || (tok.is_kw("LOCK") && next("IN"))
            || tok.is_kw("INTO")
            || tok.is_sym(":=")
        {
            return false;
        }
        if let Token::Word(w) = tok {
            let w = w.to_ascii_uppercase();
            if matches!(
                w.as_str(),
                "LAST_INSERT_ID"
                    | "GET_LOCK"
                    | "RELEASE_LOCK"
                    | "RELEASE_ALL_LOCKS"
                    | "IS_FREE_LOCK"
                    | "IS_USED_LOCK"
                    | "FOUND_ROWS"
                    | "ROW_COUNT"
                    | "NEXTVAL"
                    | "LASTVAL"
                    | "SETVAL"
                    | "MASTER_POS_WAIT"
                    | "MASTER_GTID_WAIT"
                    | "SQL_CALC_FOUND_ROWS"
            ) {
                return false;
            }
        }
    }
    true
}

/// Whether an unsharded schema's statement names a table of another, sharded schema.
fn mentions_other_sharded_schema(
    tokens: &[Token],
    config: &Config,
    current: &SchemaConfig,
) -> bool {
    tokens.windows(2).any(|w| {
        matches!(&w[1], Token::Sym(s) if s == ".")
            && w[0].ident().is_some_and(|name| {
                name != current.name && config.schema(name).is_some_and(|s| !s.is_unsharded())
            })
    })
}

/// The kind of statement its first word makes it.
pub fn first_kind(tokens: &[Token]) -> StatementKind {
    tokens
        .iter()
        .find_map(|t| match t {
            Token::Word(w) => Some(StatementKind::from_first_word(w)),
            Token::Sym(s) if s == "(" => Some(StatementKind::Read),
            _ => None,
        })
        .unwrap_or(StatementKind::Other)
}

struct Ctx<'c> {
    router: &'c Router,
    schema: Option<&'c SchemaConfig>,
    default_shard: String,
    kind: StatementKind,
}

/// Where the tables of a statement live, taken together.
enum Placement<'c> {
    /// Every table is unsharded (or a system table): the default shard.
    Default,
    /// Only broadcast tables (of this rule).
    Broadcast(&'c RuleConfig),
    /// Sharded tables of one rule (plus, possibly, broadcast tables).
    Sharded(&'c RuleConfig),
}

impl<'c> Ctx<'c> {
    fn config(&self) -> &'c Config {
        &self.router.config
    }

    /// Resolves a table name as written.
    fn resolve(&self, name: &ObjectName) -> Result<TableUse<'c>, RouteError> {
        let parts = ident_parts(name);
        let (schema, table) = match parts.as_slice() {
            [t] => (self.schema, t.clone()),
            [s, t] => {
                if s.eq_ignore_ascii_case("information_schema") {
                    return Ok(TableUse {
                        name: t.clone(),
                        alias: None,
                        table: None,
                        rule: None,
                        logical: false,
                    });
                }
                match self.config().schema(s) {
                    Some(sc) => (Some(sc), t.clone()),
                    None => {
                        return unsupported(format!("unknown schema '{s}' in table name '{name}'"))
                    }
                }
            }
            _ => return unsupported(format!("cannot resolve table name '{name}'")),
        };
        let Some(schema) = schema else {
            return Err(RouteError::NoDatabase);
        };
        if let (Some(current), true) = (self.schema, parts.len() == 2) {
            if current.name != schema.name && current.default_shard != schema.default_shard {
                return unsupported(format!(
                    "statements across logical schemas '{}' and '{}' on different shards are not supported",
                    current.name, schema.name
                ));
            }
        }
        let tc = schema.table(&table);
        let rule = tc.and_then(|t| schema.rule(&t.rule));
        Ok(TableUse {
            name: table,
            alias: None,
            table: tc,
            rule,
            logical: true,
        })
    }

    fn tables_of<T: sqlparser::ast::Visit + std::any::Any>(
        &self,
        node: &T,
    ) -> Result<Vec<TableUse<'c>>, RouteError> {
        let mut names = Vec::new();
        let _ = visit_relations(node, |n| {
            if !is_dual(n) {
                names.push(n.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        if let Some(stmt) = (node as &dyn std::any::Any).downcast_ref::<Statement>() {
            names.extend(table_names_outside_relations(stmt).into_iter().cloned());
        }
        names.iter().map(|n| self.resolve(n)).collect()
    }

    fn placement(&self, tables: &[TableUse<'c>]) -> Result<Placement<'c>, RouteError> {
        let sharded: Vec<&TableUse> = tables.iter().filter(|t| t.is_sharded()).collect();
        let broadcast: Vec<&TableUse> = tables.iter().filter(|t| t.is_broadcast()).collect();
        let unsharded: Vec<&TableUse> = tables
            .iter()
            .filter(|t| t.rule.is_none() && t.logical)
            .collect();
        if let Some(first) = sharded.first() {
            let rule = first.rule.ok_or_else(|| {
                RouteError::Unsupported("invariant: sharded table has a rule".into())
            })?;
            if let Some(other) = sharded
                .iter()
                .find(|t| t.rule.is_some_and(|r| r.name != rule.name))
            {
                return unsupported(format!(
                    "tables '{}' (rule '{}') and '{}' (rule '{}') are sharded differently; joining them needs a cross-shard join, which myshard does not support. Join tables that share a rule, on their sharding key",
                    first.name,
                    rule.name,
                    other.name,
                    other.rule.map(|r| r.name.as_str()).unwrap_or("")
                ));
            }
            if let Some(u) = unsharded.first() {
                return unsupported(format!(
                    "table '{}' is unsharded (it lives on shard '{}') while '{}' is sharded by rule '{}'; myshard cannot combine them in one statement",
                    u.name, self.default_shard, first.name, rule.name
                ));
            }
            for b in &broadcast {
                let br = b.rule.map(|r| r.shards.clone()).unwrap_or_default();
                if let Some(missing) = crate::placement::rule_shards(rule)
                    .iter()
                    .find(|s| !br.contains(s))
                {
                    return unsupported(format!(
                        "broadcast table '{}' is not on shard '{missing}', where '{}' has rows",
                        b.name, first.name
                    ));
                }
            }
            return Ok(Placement::Sharded(rule));
        }
        if let Some(b) = broadcast.first() {
            let rule = b.rule.ok_or_else(|| {
                RouteError::Unsupported("invariant: broadcast table has a rule".into())
            })?;
            if !unsharded.is_empty() && !rule.shards.contains(&self.default_shard) {
                return unsupported(format!(
                    "broadcast table '{}' is not on the default shard '{}' where the unsharded tables live",
                    b.name, self.default_shard
                ));
            }
            if !unsharded.is_empty() {
                return Ok(Placement::Default);
            }
            return Ok(Placement::Broadcast(rule));
        }
        Ok(Placement::Default)
    }

    fn base_plan(
        &self,
        targets: Vec<Target>,
        rewrite: Rewrite,
        combine: Combine,
        tables: &[TableUse],
    ) -> RoutePlan {
        let mut sharded_tables: Vec<String> = tables
            .iter()
            .filter(|t| t.rule.is_some_and(|r| r.tables_per_shard > 1))
            .map(|t| t.name.clone())
            .collect();
        sharded_tables.sort();
        sharded_tables.dedup();
        let schema_renames = self
            .config()
            .schemas
            .iter()
            .filter(|s| s.physical_database() != s.name)
            .map(|s| (s.name.clone(), s.physical_database().to_string()))
            .collect::<Vec<_>>();
        let needs_rename = !sharded_tables.is_empty() || !schema_renames.is_empty();
        let rewrite = match rewrite {
            Rewrite::Verbatim if needs_rename => Rewrite::Rename,
            other => other,
        };
        RoutePlan {
            kind: self.kind,
            role: Role::Primary,
            targets,
            database: None,
            rewrite,
            combine,
            sharded_tables,
            schema_renames,
            generated: None,
            hinted: false,
            schemas: Vec::new(),
            catalog: Vec::new(),
            ast: None,
            placed_by: crate::Placed::Unknown,
        }
    }

    fn default_target(&self) -> Vec<Target> {
        vec![Target {
            shard: self.default_shard.clone(),
            table: None,
        }]
    }

    /// One broadcast shard to read from: the default shard when it has the table.
    fn broadcast_read_target(&self, rule: &RuleConfig) -> Vec<Target> {
        let shard = if rule.shards.contains(&self.default_shard) {
            self.default_shard.clone()
        } else {
            rule.shards
                .first()
                .cloned()
                .unwrap_or_else(|| self.default_shard.clone())
        };
        vec![Target { shard, table: None }]
    }

    fn plan(&self, stmt: &Statement, ids: &mut dyn IdSource) -> Result<RoutePlan, RouteError> {
        match stmt {
            Statement::Query(q) => self.plan_query(q),
            Statement::Insert(ins) => self.plan_insert(stmt, ins, ids),
            Statement::Update(u) => {
                let mut tables = vec![self.table_with_alias(&u.table.relation)?];
                for j in &u.table.joins {
                    tables.push(self.table_with_alias(&j.relation)?);
                }
                if let Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) =
                    &u.from
                {
                    for twj in f {
                        tables.extend(self.tables_in_from(std::slice::from_ref(twj))?);
                    }
                }
                let where_ = u.selection.as_ref();
                let mut on: Vec<&Expr> = Vec::new();
                for j in &u.table.joins {
                    if let Some(e) = join_on(&j.join_operator) {
                        on.push(e);
                    }
                }
                let all = self.tables_of(stmt)?;
                let plan = self.plan_write(
                    stmt,
                    &tables,
                    &all,
                    where_,
                    &on,
                    !u.order_by.is_empty() || u.limit.is_some(),
                )?;
                self.check_key_update(&plan, &tables, &u.assignments)?;
                Ok(plan)
            }
            Statement::Delete(d) => {
                let from = match &d.from {
                    FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
                };
                let tables = self.tables_in_from(from)?;
                let mut on = Vec::new();
                for twj in from {
                    for j in &twj.joins {
                        if let Some(e) = join_on(&j.join_operator) {
                            on.push(e);
                        }
                    }
                }
                let all = self.tables_of(stmt)?;
                self.plan_write(
                    stmt,
                    &tables,
                    &all,
                    d.selection.as_ref(),
                    &on,
                    !d.order_by.is_empty() || d.limit.is_some(),
                )
            }
            Statement::CreateTable(ct) if ct.query.is_some() => {
                let tables = self.tables_of(stmt)?;
                if tables.iter().any(|t| t.rule.is_some()) {
                    return unsupported("CREATE TABLE … AS SELECT into or from a sharded or broadcast table is not supported; create the table, then INSERT rows");
                }
                Ok(self.base_plan(
                    self.default_target(),
                    Rewrite::Verbatim,
                    Combine::Single,
                    &tables,
                ))
            }
            Statement::CreateTable(_)
            | Statement::AlterTable(_)
            | Statement::Drop { .. }
            | Statement::Truncate(_)
            | Statement::CreateIndex(_) => self.plan_ddl(stmt),
            Statement::RenameTable(_) => {
                let tables = self.tables_of(stmt)?;
                if tables.iter().any(|t| t.rule.is_some()) {
                    return unsupported("renaming a table that the shard map places by a rule would orphan its rows; change the shard map and the tables together");
                }
                Ok(self.base_plan(
                    self.default_target(),
                    Rewrite::Verbatim,
                    Combine::Single,
                    &tables,
                ))
            }
            other => self.plan_other(other),
        }
    }

    /// What decided `plan`'s one target (see [`Placed`]), for a plan cache: `Fixed` when the
    /// statement reads or writes no sharded table; `Key` when it reads, updates or deletes
    /// in one sharded table (no join, no subquery) whose WHERE has exactly one conjunct on
    /// the key, `key = literal`, and does not set the key. Anything else is `Unknown`.
    fn placed_by(&self, sql: &str, stmt: &Statement, plan: &RoutePlan) -> Placed {
        let one_verbatim = matches!(plan.kind, StatementKind::Read | StatementKind::Write)
            && plan.rewrite == Rewrite::Verbatim
            && plan.combine == Combine::Single
            && matches!(plan.targets.as_slice(), [t] if t.table.is_none())
            && plan.generated.is_none()
            && !plan.hinted
            && plan.catalog.is_empty()
            && sql.len() <= crate::cache::MAX_TEXT;
        if !one_verbatim || matches!(stmt, Statement::Insert(_)) || has_subquery(stmt) {
            return Placed::Unknown;
        }
        let Ok(tables) = self.tables_of(stmt) else {
            return Placed::Unknown;
        };
        match tables.as_slice() {
            _ if tables.iter().all(|t| !t.is_sharded()) => return Placed::Fixed,
            [_] => {}
            _ => return Placed::Unknown,
        }
        let relation = match stmt {
            Statement::Query(q) => match q.body.as_ref() {
                SetExpr::Select(s) if s.from.len() == 1 => &s.from[0].relation,
                _ => return Placed::Unknown,
            },
            Statement::Update(u) => &u.table.relation,
            Statement::Delete(d) => match &d.from {
                FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) if f.len() == 1 => {
                    &f[0].relation
                }
                _ => return Placed::Unknown,
            },
            _ => return Placed::Unknown,
        };
        // The table with its alias, which qualifies its key in the WHERE clause.
        let Ok(table) = self.table_with_alias(relation) else {
            return Placed::Unknown;
        };
        let (Some(rule), Some(column)) =
            (table.rule, table.table.and_then(|c| c.column.as_deref()))
        else {
            return Placed::Unknown;
        };
        let names_key = |e: &Expr| match e {
            Expr::Identifier(i) => i.value.eq_ignore_ascii_case(column),
            Expr::CompoundIdentifier(p) => p
                .last()
                .is_some_and(|i| i.value.eq_ignore_ascii_case(column)),
            _ => false,
        };
        let where_ = match stmt {
            Statement::Query(q) => match (&q.with, q.body.as_ref()) {
                (None, SetExpr::Select(s)) if s.from.len() == 1 && s.from[0].joins.is_empty() => {
                    s.selection.as_ref()
                }
                _ => None,
            },
            Statement::Update(u) if u.table.joins.is_empty() && u.from.is_none() => {
                let sets_key = u.assignments.iter().any(|a| match &a.target {
                    sqlparser::ast::AssignmentTarget::ColumnName(n) => {
                        n.0.last()
                            .and_then(|p| p.as_ident())
                            .is_none_or(|i| i.value.eq_ignore_ascii_case(column))
                    }
                    sqlparser::ast::AssignmentTarget::Tuple(_) => true,
                });
                if sets_key {
                    return Placed::Unknown;
                }
                u.selection.as_ref()
            }
            Statement::Delete(d) if d.tables.is_empty() && d.using.is_none() => match &d.from {
                FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f)
                    if f.len() == 1 && f[0].joins.is_empty() =>
                {
                    d.selection.as_ref()
                }
                _ => None,
            },
            _ => None,
        };
        let Some(where_) = where_ else {
            return Placed::Unknown;
        };
        let key = TableKey {
            qualifier: table.qualifier(),
            column,
            bare_ok: true,
        };
        fn literal_of(e: &Expr) -> Option<&sqlparser::ast::Value> {
            match e {
                Expr::Value(v)
                    if matches!(
                        v.value,
                        sqlparser::ast::Value::Number(..)
                            | sqlparser::ast::Value::SingleQuotedString(_)
                            | sqlparser::ast::Value::DoubleQuotedString(_)
                    ) =>
                {
                    Some(&v.value)
                }
                _ => None,
            }
        }
        let mut found = None;
        for c in conjuncts(where_) {
            let value = match c {
                Expr::BinaryOp {
                    left,
                    op: sqlparser::ast::BinaryOperator::Eq,
                    right,
                } if key.is_key(left) => literal_of(right),
                Expr::BinaryOp {
                    left,
                    op: sqlparser::ast::BinaryOperator::Eq,
                    right,
                } if key.is_key(right) => literal_of(left),
                _ => None,
            };
            match value {
                Some(v) if found.is_none() => found = Some(v),
                _ => {
                    let mut mentions = false;
                    let _ = sqlparser::ast::visit_expressions(c, |e| {
                        mentions |= names_key(e);
                        ControlFlow::<()>::Continue(())
                    });
                    if mentions {
                        return Placed::Unknown;
                    }
                }
            }
        }
        let Some(value) = found else {
            return Placed::Unknown;
        };
        // The slot of the key's literal among the text's, and the target it gives must be
        // the plan's: what a cache computes from another statement's literal is what this
        // plan would have been.
        let Some((_, literals)) = crate::text::literal_shape(sql) else {
            return Placed::Unknown;
        };
        if !crate::cache::lines_up(stmt, &literals) {
            return Placed::Unknown;
        }
        let Some(slot) = crate::cache::literal_slot(stmt, value) else {
            return Placed::Unknown;
        };
        let placed = literals
            .get(slot)
            .and_then(crate::keys::literal_key)
            .and_then(|k| crate::placement::place_one(rule, &k));
        if placed.as_ref() != plan.targets.first() {
            return Placed::Unknown;
        }
        let schema = match table.table {
            Some(t) => self
                .config()
                .schemas
                .iter()
                .find(|s| s.tables.iter().any(|x| std::ptr::eq(x, t)))
                .map(|s| s.name.clone()),
            None => None,
        };
        match schema {
            Some(schema) => Placed::Key {
                schema,
                rule: rule.name.clone(),
                slot,
            },
            None => Placed::Unknown,
        }
    }

    fn plan_ddl(&self, stmt: &Statement) -> Result<RoutePlan, RouteError> {
        let tables = self.tables_of(stmt)?;
        let mut target_sets: Vec<Vec<Target>> = Vec::new();
        for t in &tables {
            let ts = match t.rule {
                Some(rule) => crate::placement::every_copy(rule),
                None => self.default_target(),
            };
            target_sets.push(ts);
        }
        let Some(first) = target_sets.first().cloned() else {
            return Ok(self.base_plan(
                self.default_target(),
                Rewrite::Verbatim,
                Combine::Single,
                &tables,
            ));
        };
        if target_sets.iter().any(|t| *t != first) {
            return unsupported(
                "this DDL names tables placed differently; run one statement per table",
            );
        }
        let combine = if first.len() > 1 {
            Combine::SumAffected
        } else {
            Combine::Single
        };
        Ok(self.base_plan(first, Rewrite::Verbatim, combine, &tables))
    }

    /// `SHOW INDEX FROM t [FROM db]`, which sqlparser reads only as words: run on the first
    /// target holding the table, as SHOW COLUMNS is, naming its physical table and database.
    fn plan_show_index(&self, show: ShowIndex) -> Result<RoutePlan, RouteError> {
        let name = ObjectName(
            show.schema
                .iter()
                .chain(std::iter::once(&show.table))
                .map(|p| sqlparser::ast::ObjectNamePart::Identifier(Ident::new(p.clone())))
                .collect(),
        );
        let table = self.resolve(&name)?;
        let schema = match &show.schema {
            Some(s) => self.config().schema(s),
            None => self.schema,
        };
        let target: Vec<Target> = match table.rule {
            Some(rule) if rule.kind == RuleKind::Broadcast => self.broadcast_read_target(rule),
            Some(rule) => all_targets(rule).into_iter().take(1).collect(),
            None => self.default_target(),
        };
        let physical = match target.first().and_then(|t| t.table) {
            Some(i) => format!("{}_{i}", table.name),
            None => table.name.clone(),
        };
        let mut words = vec![
            Ident::new(show.keyword),
            Ident::new("FROM"),
            Ident::with_quote('`', physical),
        ];
        if let Some(s) = schema {
            words.push(Ident::new("FROM"));
            words.push(Ident::with_quote('`', s.physical_database()));
        }
        let tables = [table];
        let mut plan = self.base_plan(target, Rewrite::Rename, Combine::Single, &tables);
        plan.ast = Some(Arc::new(Statement::ShowVariable { variable: words }));
        Ok(plan)
    }

    /// SHOW, DESCRIBE, EXPLAIN and the like: one target holding the table.
    fn plan_other(&self, stmt: &Statement) -> Result<RoutePlan, RouteError> {
        if let Statement::Explain { statement, .. } = stmt {
            // EXPLAIN shows the plan of the first target the statement would run on.
            let mut inner = self.plan(statement, &mut CountingIds(0))?;
            inner.targets.truncate(1);
            inner.combine = Combine::Single;
            inner.kind = StatementKind::Other;
            if inner.rewrite != Rewrite::Verbatim {
                inner.rewrite = Rewrite::Rename;
            }
            inner.generated = None;
            return Ok(inner);
        }
        let tables = self.tables_of(stmt)?;
        let target = match tables.iter().find_map(|t| t.rule) {
            Some(rule) if rule.kind == RuleKind::Broadcast => self.broadcast_read_target(rule),
            Some(rule) => all_targets(rule).into_iter().take(1).collect(),
            None => self.default_target(),
        };
        Ok(self.base_plan(target, Rewrite::Verbatim, Combine::Single, &tables))
    }

    fn table_with_alias(&self, factor: &TableFactor) -> Result<TableUse<'c>, RouteError> {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let mut t = self.resolve(name)?;
                t.alias = alias.as_ref().map(|a| a.name.value.clone());
                Ok(t)
            }
            TableFactor::Derived { subquery, .. } => {
                let tables = self.tables_of(subquery.as_ref())?;
                if tables.iter().any(|t| t.rule.is_some()) {
                    return unsupported(
                        "derived tables over sharded or broadcast tables are not supported yet",
                    );
                }
                Ok(TableUse {
                    name: String::new(),
                    alias: None,
                    table: None,
                    rule: None,
                    logical: false,
                })
            }
            TableFactor::NestedJoin { .. } => {
                unsupported("parenthesized joins are not supported yet on sharded schemas")
            }
            _ => unsupported("this table expression is not supported on sharded schemas"),
        }
    }

    fn tables_in_from(&self, from: &[TableWithJoins]) -> Result<Vec<TableUse<'c>>, RouteError> {
        let mut out = Vec::new();
        for twj in from {
            out.push(self.table_with_alias(&twj.relation)?);
            for j in &twj.joins {
                out.push(self.table_with_alias(&j.relation)?);
            }
        }
        Ok(out)
    }

    /// The key values the statement's conditions allow, over a co-located group of tables:
    /// every sharded table must be tied to the first by key equalities.
    fn group_keys(
        &self,
        tables: &[TableUse<'c>],
        where_: Option<&Expr>,
        inner_on: &[&Expr],
        all_on: &[&Expr],
    ) -> Result<KeySet, RouteError> {
        let sharded: Vec<&TableUse> = tables.iter().filter(|t| t.is_sharded()).collect();
        let key_of =
            |t: &TableUse<'c>| -> Option<String> { t.table.and_then(|c| c.column.clone()) };
        let names_with = |col: &str| {
            sharded
                .iter()
                .filter(|t| key_of(t).is_some_and(|c| c.eq_ignore_ascii_case(col)))
                .count()
        };
        let keys: Vec<(String, String, bool)> = sharded
            .iter()
            .filter_map(|t| {
                let col = key_of(t)?;
                let bare = names_with(&col) == 1;
                Some((t.qualifier().to_string(), col, bare))
            })
            .collect();
        if keys.is_empty() {
            return Ok(KeySet::Any);
        }
        // Tie tables together through `a.key = b.key` conjuncts of WHERE and every ON.
        let mut linked = vec![false; keys.len()];
        linked[0] = true;
        let mut conds: Vec<&Expr> = where_.map(conjuncts).unwrap_or_default();
        for e in all_on {
            conds.extend(conjuncts(e));
        }
        loop {
            let mut changed = false;
            for c in &conds {
                if let Expr::BinaryOp {
                    left,
                    op: sqlparser::ast::BinaryOperator::Eq,
                    right,
                } = c
                {
                    for (i, a) in keys.iter().enumerate() {
                        for (j, b) in keys.iter().enumerate() {
                            if i == j || linked[i] == linked[j] {
                                continue;
                            }
                            let ka = TableKey {
                                qualifier: &a.0,
                                column: &a.1,
                                bare_ok: false,
                            };
                            let kb = TableKey {
                                qualifier: &b.0,
                                column: &b.1,
                                bare_ok: false,
                            };
                            if (ka.is_key(left) && kb.is_key(right))
                                || (kb.is_key(left) && ka.is_key(right))
                            {
                                linked[i] = true;
                                linked[j] = true;
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        if let Some(i) = linked.iter().position(|l| !l) {
            return Err(RouteError::JoinOffKey {
                table: keys[i].0.to_string(),
                key: keys[i].1.to_string(),
            });
        }
        let mut set = KeySet::Any;
        let mut restricting: Vec<&Expr> = where_.into_iter().collect();
        restricting.extend(inner_on.iter().copied());
        for (q, col, bare) in &keys {
            let k = TableKey {
                qualifier: q,
                column: col,
                bare_ok: *bare,
            };
            for e in &restricting {
                set = set.and(key_set(e, &k));
            }
        }
        Ok(set)
    }

    fn plan_query(&self, q: &Query) -> Result<RoutePlan, RouteError> {
        if let Some(with) = &q.with {
            let cte_names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|c| c.alias.name.value.clone())
                .collect();
            let mut names = Vec::new();
            let _ = visit_relations(q, |n| {
                names.push(n.clone());
                ControlFlow::<()>::Continue(())
            });
            let real: Vec<ObjectName> = names
                .into_iter()
                .filter(|n| {
                    !(n.0.len() == 1
                        && ident_parts(n)
                            .first()
                            .is_some_and(|x| cte_names.contains(x)))
                })
                .collect();
            let tables: Vec<TableUse> = real
                .iter()
                .map(|n| self.resolve(n))
                .collect::<Result<_, _>>()?;
            if tables.iter().any(|t| t.rule.is_some()) {
                return unsupported("WITH (common table expressions) over sharded or broadcast tables is not supported yet");
            }
            return Ok(self.base_plan(
                self.default_target(),
                Rewrite::Verbatim,
                Combine::Single,
                &tables,
            ));
        }
        let tables = self.tables_of(q)?;
        let placement = self.placement(&tables)?;
        let rule = match placement {
            Placement::Default => {
                return Ok(self.base_plan(
                    self.default_target(),
                    Rewrite::Verbatim,
                    Combine::Single,
                    &tables,
                ))
            }
            Placement::Broadcast(rule) => {
                return Ok(self.base_plan(
                    self.broadcast_read_target(rule),
                    Rewrite::Verbatim,
                    Combine::Single,
                    &tables,
                ))
            }
            Placement::Sharded(rule) => rule,
        };
        let SetExpr::Select(select) = q.body.as_ref() else {
            return unsupported(
                "UNION, INTERSECT and EXCEPT over sharded tables are not supported yet",
            );
        };
        if subquery_reads_tables(select.as_ref()) {
            return unsupported("subqueries over sharded tables are not supported yet");
        }
        let from = self.tables_in_from(&select.from)?;
        let (mut inner_on, mut all_on) = (Vec::new(), Vec::new());
        for twj in &select.from {
            for j in &twj.joins {
                if let Some(e) = join_on(&j.join_operator) {
                    all_on.push(e);
                    if matches!(
                        j.join_operator,
                        JoinOperator::Inner(_) | JoinOperator::Join(_)
                    ) {
                        inner_on.push(e);
                    }
                }
            }
        }
        let keys = self.group_keys(&from, select.selection.as_ref(), &inner_on, &all_on)?;
        let targets = targets(rule, &keys).map_err(|e| RouteError::Unsupported(e.to_string()))?;
        if targets.len() == 1 {
            return Ok(self.base_plan(targets, Rewrite::Verbatim, Combine::Single, &tables));
        }
        self.check_outer_joins(&select.from)?;
        // Several shards. HAVING needs an expression evaluator after the merge; window
        // functions need every row of a partition in one place.
        if select.into.is_some() {
            return unsupported("SELECT … INTO across several shards is not supported");
        }
        let needs_merge = q.order_by.is_some()
            || select.having.is_some()
            || !matches!(&select.group_by, GroupByExpr::Expressions(v, _) if v.is_empty())
            || select.distinct.is_some()
            || has_aggregate_or_window(&select.projection);
        if needs_merge {
            return Ok(self.base_plan(targets, Rewrite::Rename, Combine::Merge, &tables));
        }
        let (offset, limit) = offset_limit(q).map_err(RouteError::Unsupported)?;
        let mut plan = self.base_plan(
            targets,
            Rewrite::Rename,
            Combine::Concat { offset, limit },
            &tables,
        );
        if plan.sharded_tables.is_empty() && plan.schema_renames.is_empty() && offset == 0 {
            plan.rewrite = Rewrite::Verbatim;
        }
        Ok(plan)
    }

    /// An outer join whose preserved side has no sharded table (only broadcast or
    /// unsharded ones) while its other side is sharded cannot run shard by shard: each
    /// shard would add the preserved rows it finds no match for, so a row with a match on
    /// one shard comes back NULL-extended from the others. Refused here (the caller may
    /// evaluate the statement whole over copies of its tables).
    fn check_outer_joins(&self, from: &[TableWithJoins]) -> Result<(), RouteError> {
        for twj in from {
            let mut left_sharded = self.table_with_alias(&twj.relation)?.is_sharded();
            for j in &twj.joins {
                let right_sharded = self.table_with_alias(&j.relation)?.is_sharded();
                let preserved_unsharded = match j.join_operator {
                    JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => {
                        !left_sharded && right_sharded
                    }
                    JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
                        left_sharded && !right_sharded
                    }
                    JoinOperator::FullOuter(_) => left_sharded != right_sharded,
                    _ => false,
                };
                if preserved_unsharded {
                    return unsupported("an outer join that keeps every row of a broadcast or unsharded table while joining a sharded one cannot run shard by shard (each shard would add the rows it has no match for)");
                }
                left_sharded |= right_sharded;
            }
        }
        Ok(())
    }

    fn plan_write(
        &self,
        stmt: &Statement,
        tables: &[TableUse<'c>],
        all_tables: &[TableUse<'c>],
        where_: Option<&Expr>,
        on: &[&Expr],
        ordered_or_limited: bool,
    ) -> Result<RoutePlan, RouteError> {
        if has_subquery(stmt) && all_tables.iter().any(|t| t.rule.is_some()) {
            return unsupported("subqueries in UPDATE/DELETE over sharded or broadcast tables are not supported yet");
        }
        match self.placement(all_tables)? {
            Placement::Default => Ok(self.base_plan(
                self.default_target(),
                Rewrite::Verbatim,
                Combine::Single,
                all_tables,
            )),
            Placement::Broadcast(rule) => {
                let targets = broadcast_targets(rule);
                Ok(self.base_plan(targets, Rewrite::Verbatim, Combine::First, all_tables))
            }
            Placement::Sharded(rule) => {
                if all_tables.iter().any(|t| t.is_broadcast()) && self.kind == StatementKind::Write
                {
                    // Writing a sharded table while reading a broadcast one is fine per shard.
                }
                let keys = self.group_keys(tables, where_, on, on)?;
                let targets =
                    targets(rule, &keys).map_err(|e| RouteError::Unsupported(e.to_string()))?;
                if targets.len() > 1 && ordered_or_limited {
                    return unsupported("UPDATE/DELETE with ORDER BY or LIMIT across several shards depends on a global order; add a condition on the sharding key so it reaches one shard");
                }
                let combine = if targets.len() > 1 {
                    Combine::SumAffected
                } else {
                    Combine::Single
                };
                Ok(self.base_plan(targets, Rewrite::Verbatim, combine, all_tables))
            }
        }
    }

    /// `UPDATE … SET key = v`: allowed only when `v` lands on the very target the row is on.
    fn check_key_update(
        &self,
        plan: &RoutePlan,
        tables: &[TableUse<'c>],
        assignments: &[sqlparser::ast::Assignment],
    ) -> Result<(), RouteError> {
        for a in assignments {
            let target_name = match &a.target {
                sqlparser::ast::AssignmentTarget::ColumnName(n) => ident_parts(n),
                sqlparser::ast::AssignmentTarget::Tuple(_) => {
                    return unsupported("tuple assignments are not supported on sharded tables")
                }
            };
            for t in tables.iter().filter(|t| t.is_sharded()) {
                let (Some(col), Some(rule)) = (t.table.and_then(|c| c.column.as_deref()), t.rule)
                else {
                    continue;
                };
                let hit = match target_name.as_slice() {
                    [c] => c.eq_ignore_ascii_case(col),
                    [q, c] => q.eq_ignore_ascii_case(t.qualifier()) && c.eq_ignore_ascii_case(col),
                    _ => false,
                };
                if !hit {
                    continue;
                }
                let identity = matches!(&a.value, Expr::Identifier(i) if i.value.eq_ignore_ascii_case(col))
                    || matches!(&a.value, Expr::CompoundIdentifier(p) if p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(col)));
                if identity {
                    continue;
                }
                let Some(v) = literal(&a.value) else {
                    return unsupported(format!(
                        "updating sharding key '{col}' to an expression is not supported: myshard must check the new value stays on the same shard"
                    ));
                };
                let new = place(rule, &v).map_err(|e| RouteError::Unsupported(e.to_string()))?;
                if plan.targets.len() != 1 || plan.targets[0] != new {
                    return unsupported(format!(
                        "updating sharding key '{col}' to {v} would move rows to {new}, another shard or table than where they are; delete and re-insert the rows instead"
                    ));
                }
            }
        }
        Ok(())
    }

    fn plan_insert(
        &self,
        stmt: &Statement,
        ins: &sqlparser::ast::Insert,
        ids: &mut dyn IdSource,
    ) -> Result<RoutePlan, RouteError> {
        let TableObject::TableName(name) = &ins.table else {
            return unsupported("INSERT INTO a table function is not supported");
        };
        let table = self.resolve(name)?;
        let all = self.tables_of(stmt)?;
        let source = ins.source.as_ref();
        let rows = match source.map(|q| q.body.as_ref()) {
            Some(SetExpr::Values(v)) => Some(&v.rows),
            _ => None,
        };
        if rows.is_none() && table.rule.is_some() {
            return unsupported(format!(
                "INSERT … SELECT into '{}', which the shard map places by a rule, is not supported; use INSERT … VALUES (or INSERT … SET)",
                table.name
            ));
        }
        if all.iter().skip(1).any(|t| t.rule.is_some()) {
            return unsupported("INSERT reading from sharded or broadcast tables is not supported");
        }
        let Some(rule) = table.rule else {
            return Ok(self.base_plan(
                self.default_target(),
                Rewrite::Verbatim,
                Combine::Single,
                &all,
            ));
        };
        let rows = rows.ok_or_else(|| RouteError::Unsupported("invariant: VALUES rows".into()))?;
        let columns: Vec<String> = ins
            .columns
            .iter()
            .map(|c| ident_parts(c).pop().unwrap_or_default())
            .collect();
        let tc = table.table;
        // Generated ids for an omitted (or NULL/0) auto-increment column.
        let mut generated = None;
        if let Some(auto) = tc.and_then(|t| t.auto_increment.as_deref()) {
            if columns.is_empty() {
                return unsupported(format!(
                    "INSERT into '{}' must list its columns (myshard generates '{auto}' and must know where it goes)",
                    table.name
                ));
            }
            let pos = columns.iter().position(|c| c.eq_ignore_ascii_case(auto));
            let values: Vec<Option<i64>> = rows
                .iter()
                .map(|row| match pos.and_then(|p| row.get(p)) {
                    None => Some(ids.next_id()),
                    Some(e) if is_null_or_zero(e) => Some(ids.next_id()),
                    Some(_) => None,
                })
                .collect();
            if values.iter().any(|v| v.is_some()) {
                generated = Some(GeneratedIds {
                    column: auto.to_string(),
                    add_column: pos.is_none(),
                    values,
                });
            }
        }
        if rule.kind == RuleKind::Broadcast {
            let targets = broadcast_targets(rule);
            let mut plan = self.base_plan(targets, Rewrite::Rename, Combine::First, &all);
            if generated.is_none()
                && plan.sharded_tables.is_empty()
                && plan.schema_renames.is_empty()
            {
                plan.rewrite = Rewrite::Verbatim;
            }
            plan.generated = generated;
            return Ok(plan);
        }
        let key = tc.and_then(|t| t.column.as_deref()).unwrap_or_default();
        if columns.is_empty() {
            return unsupported(format!(
                "INSERT into sharded table '{}' must list its columns so myshard can find the sharding key '{key}'",
                table.name
            ));
        }
        if let Some(OnInsert::DuplicateKeyUpdate(assignments)) = &ins.on {
            let sets_key = assignments.iter().any(|a| match &a.target {
                sqlparser::ast::AssignmentTarget::ColumnName(n) => ident_parts(n)
                    .last()
                    .is_some_and(|c| c.eq_ignore_ascii_case(key)),
                _ => true,
            });
            if sets_key {
                return unsupported(format!(
                    "ON DUPLICATE KEY UPDATE must not change the sharding key '{key}'"
                ));
            }
        }
        let key_pos = columns.iter().position(|c| c.eq_ignore_ascii_case(key));
        let mut targets_list: Vec<Target> = Vec::new();
        let mut row_targets = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let value = match key_pos.and_then(|p| row.get(p)) {
                Some(e) => match literal(e) {
                    Some(v) => v,
                    None if generated.as_ref().is_some_and(|g| g.column.eq_ignore_ascii_case(key) && g.values[i].is_some()) => {
                        KeyValue::Int(generated.as_ref().and_then(|g| g.values[i]).unwrap_or_default() as i128)
                    }
                    None => {
                        return unsupported(format!(
                            "row {} gives sharding key '{key}' as an expression or NULL; myshard needs a literal value to place the row",
                            i + 1
                        ))
                    }
                },
                None => match generated.as_ref().filter(|g| g.column.eq_ignore_ascii_case(key)).and_then(|g| g.values[i]) {
                    Some(id) => KeyValue::Int(id as i128),
                    None => {
                        return unsupported(format!(
                            "row {} has no value for sharding key '{key}' of table '{}'; every row must give it",
                            i + 1,
                            table.name
                        ))
                    }
                },
            };
            let t = place(rule, &value).map_err(|e| RouteError::Unsupported(e.to_string()))?;
            let idx = match targets_list.iter().position(|x| *x == t) {
                Some(idx) => idx,
                None => {
                    targets_list.push(t);
                    targets_list.len() - 1
                }
            };
            row_targets.push(idx);
        }
        // Order targets by shard order, keeping row indexes consistent.
        let order = crate::placement::rule_shards(rule);
        let mut sorted: Vec<(usize, Target)> = targets_list.into_iter().enumerate().collect();
        sorted.sort_by_key(|(_, t)| (order.iter().position(|s| *s == t.shard), t.table));
        let remap: Vec<usize> = {
            let mut m = vec![0; sorted.len()];
            for (new, (old, _)) in sorted.iter().enumerate() {
                m[*old] = new;
            }
            m
        };
        let targets: Vec<Target> = sorted.into_iter().map(|(_, t)| t).collect();
        let rows_idx: Vec<usize> = row_targets.into_iter().map(|i| remap[i]).collect();
        let combine = if targets.len() > 1 {
            Combine::SumAffected
        } else {
            Combine::Single
        };
        let single_verbatim = targets.len() == 1 && generated.is_none();
        let mut plan = self.base_plan(
            targets,
            if single_verbatim {
                Rewrite::Verbatim
            } else {
                Rewrite::SplitInsert { rows: rows_idx }
            },
            combine,
            &all,
        );
        if let (Rewrite::Rename, false) = (&plan.rewrite, single_verbatim) {
            plan.rewrite = Rewrite::SplitInsert {
                rows: vec![0; rows.len()],
            };
        }
        plan.generated = generated;
        Ok(plan)
    }
}

/// Table names that sqlparser's relation visitor does not visit.
pub fn table_names_outside_relations(stmt: &Statement) -> Vec<&ObjectName> {
    match stmt {
        Statement::Drop {
            names,
            object_type: sqlparser::ast::ObjectType::Table,
            ..
        } => names.iter().collect(),
        Statement::RenameTable(r) => r.iter().flat_map(|r| [&r.old_name, &r.new_name]).collect(),
        Statement::ShowCreate { obj_name, .. } => vec![obj_name],
        Statement::ExplainTable { table_name, .. } => vec![table_name],
        Statement::ShowColumns { show_options, .. } => show_options
            .show_in
            .as_ref()
            .and_then(|i| i.parent_name.as_ref())
            .into_iter()
            .collect(),
        _ => vec![],
    }
}

fn is_null_or_zero(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => {
            matches!(&v.value, sqlparser::ast::Value::Null)
                || matches!(&v.value, sqlparser::ast::Value::Number(n, _) if n == "0")
        }
        _ => false,
    }
}

/// Every shard of a broadcast rule.
fn broadcast_targets(rule: &RuleConfig) -> Vec<Target> {
    rule.shards
        .iter()
        .map(|s| Target {
            shard: s.clone(),
            table: None,
        })
        .collect()
}

fn join_on(op: &JoinOperator) -> Option<&Expr> {
    let c = match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::StraightJoin(c) => c,
        _ => return None,
    };
    match c {
        JoinConstraint::On(e) => Some(e),
        _ => None,
    }
}
