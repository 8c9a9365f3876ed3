//! myshard's rewriter: a [`RoutePlan`] becomes an [`ExecPlan`] — the SQL each target
//! receives (physical table and database names, one INSERT per target with its rows and
//! generated ids, LIMIT pushed down) and the [`MergeSpec`] for their answers.

pub mod catalog;
pub mod merge;
pub mod plancache;
pub mod planner;
pub mod render;
pub mod staged;
pub mod subquery;
pub mod union;

use myshard_merger::MergeSpec;
use myshard_router::{Combine, Rewrite, Role, RoutePlan, StatementKind, Target};
use serde::{Deserialize, Serialize};
use sqlparser::ast::{
    Expr, Ident, LimitClause, ObjectName, ObjectNamePart, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor, Value, Visit,
    VisitMut, Visitor, VisitorMut,
};
use std::ops::ControlFlow;

/// The SQL one target runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardQuery {
    /// Shard name.
    pub shard: String,
    /// Physical table index, for table-sharded rules.
    pub table: Option<u32>,
    /// Physical database to run in, if any.
    pub database: Option<String>,
    /// The statement text.
    pub sql: String,
}

/// Everything the executor needs to run one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecPlan {
    /// Primary or replica.
    pub role: Role,
    /// One entry per target, in shard order.
    pub queries: Vec<ShardQuery>,
    /// How to combine the answers.
    pub merge: MergeSpec,
    /// The OK packet's last-insert-id when myshard generated ids.
    pub last_insert_id: Option<u64>,
    /// The statement is a UNION of these queries' results: its columns are defined as MySQL
    /// defines a UNION's, from every branch's.
    pub union: bool,
    /// Physical table names to show under their logical names in the answer: a SHOW or
    /// DESCRIBE of a split table runs on `name_N`, whose name the shard puts in its rows
    /// (`SHOW CREATE TABLE`, `SHOW INDEX`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub result_renames: Vec<(String, String)>,
}

/// Why a statement could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// A statement shape myshard cannot rewrite correctly.
    #[error("{0}")]
    Unsupported(String),
    /// The branches of a UNION return different numbers of columns (MySQL's 1222).
    #[error("The used SELECT statements have a different number of columns")]
    UnionColumnCount,
}

/// Renames logical tables and schemas to physical ones for one target.
///
/// A split table (`name` → `name_N`) is renamed without an alias, its `name.column` and
/// `name.*` qualifiers with it, so that the physical table is named as a LOCK TABLES of it
/// names it (a table locked without an alias cannot be used under one). Only where the
/// statement also uses `name` as another table's alias (or a CTE's name) does the renamed
/// table get `AS name` instead, keeping the qualifiers pointing at what they meant.
struct Renamer<'a> {
    plan: &'a RoutePlan,
    target: &'a Target,
    /// Logical names renamed without an alias: their `name.column` qualifiers follow.
    unaliased: Vec<String>,
}

impl<'a> Renamer<'a> {
    /// `unaliased`: [`unaliased_split_tables`] of the statement, worked out once per plan.
    fn new(plan: &'a RoutePlan, target: &'a Target, unaliased: &[String]) -> Self {
        let unaliased = if target.table.is_some() {
            unaliased.to_vec()
        } else {
            Vec::new()
        };
        Renamer {
            plan,
            target,
            unaliased,
        }
    }

    fn is_unaliased(&self, name: &str) -> bool {
        self.unaliased.iter().any(|u| u.eq_ignore_ascii_case(name))
    }

    /// `[schema.]name` of a qualifier renamed without an alias, physical.
    fn rename_qualifier(&self, parts: &mut [Ident]) {
        let n = parts.len();
        if n == 0 || !self.is_unaliased(&parts[n - 1].value) {
            return;
        }
        if let Some(p) = self.physical_table(&parts[n - 1].value) {
            parts[n - 1].value = p;
        }
        if n == 2 {
            if let Some((_, phys)) = self
                .plan
                .schema_renames
                .iter()
                .find(|(l, _)| *l == parts[0].value)
            {
                parts[0].value = phys.clone();
            }
        }
    }

    /// `[schema.]table[.column]` (with `column` when `has_column`) whose table is renamed
    /// without an alias.
    fn rename_column_name(&self, name: &mut ObjectName, has_column: bool) {
        let mut parts: Vec<Ident> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().cloned())
            .collect();
        if parts.len() != name.0.len() {
            return;
        }
        let end = match parts.len().checked_sub(usize::from(has_column)) {
            Some(end) if end > 0 => end,
            _ => return,
        };
        self.rename_qualifier(&mut parts[..end]);
        name.0 = parts.into_iter().map(ObjectNamePart::Identifier).collect();
    }

    /// `name.*` items of a SELECT (and of each SELECT of a set operation).
    fn rename_wildcards(&self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => self.rename_select_wildcards(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.rename_wildcards(left);
                self.rename_wildcards(right);
            }
            _ => {}
        }
    }

    fn rename_select_wildcards(&self, select: &mut Select) {
        for item in &mut select.projection {
            if let SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                _,
            ) = item
            {
                self.rename_column_name(name, false);
            }
        }
    }
}

/// The plan's split tables that the statement does not also use as an alias or CTE name:
/// they are renamed without an alias.
fn unaliased_split_tables(plan: &RoutePlan, stmt: &Statement) -> Vec<String> {
    if plan.sharded_tables.is_empty() {
        return Vec::new();
    }
    let mut aliases = AliasNames(Vec::new());
    let _ = Visit::visit(stmt, &mut aliases);
    plan.sharded_tables
        .iter()
        .filter(|t| !aliases.0.iter().any(|a| a.eq_ignore_ascii_case(t)))
        .cloned()
        .collect()
}

/// Every name a statement gives a table by `AS` (or a CTE by `WITH`).
struct AliasNames(Vec<String>);

impl Visitor for AliasNames {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let alias = match factor {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::NestedJoin { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::JsonTable { alias, .. } => alias.as_ref(),
            _ => None,
        };
        self.0.extend(alias.map(|a| a.name.value.clone()));
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.0
                .extend(with.cte_tables.iter().map(|c| c.alias.name.value.clone()));
        }
        ControlFlow::Continue(())
    }
}

impl Renamer<'_> {
    fn physical_table(&self, name: &str) -> Option<String> {
        let i = self.target.table?;
        self.plan
            .sharded_tables
            .iter()
            .find(|t| t.eq_ignore_ascii_case(name))
            .map(|t| format!("{t}_{i}"))
    }

    fn rename(&self, name: &mut ObjectName) -> bool {
        let n = name.0.len();
        let mut renamed = false;
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() {
            if let Some(p) = self.physical_table(&last.value) {
                last.value = p;
                renamed = true;
            }
        }
        if n == 2 {
            if let Some(ObjectNamePart::Identifier(schema)) = name.0.first_mut() {
                if let Some((_, phys)) = self
                    .plan
                    .schema_renames
                    .iter()
                    .find(|(l, _)| *l == schema.value)
                {
                    schema.value = phys.clone();
                }
            }
        }
        renamed
    }
}

impl VisitorMut for Renamer<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = factor {
            let logical = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone());
            if self.rename(name) && alias.is_none() {
                // Keep `logical.column` qualifiers valid: they are renamed with the table,
                // or, where the statement uses the name for something else too, the table
                // keeps it as its alias.
                if let Some(l) = logical.filter(|l| !self.is_unaliased(l)) {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: Ident::new(l),
                        columns: vec![],
                        at: None,
                    });
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, stmt: &mut Statement) -> ControlFlow<()> {
        if !self.unaliased.is_empty() {
            // Qualified names sqlparser does not visit as expressions: a multi-table
            // DELETE's target list, and the columns UPDATE … SET and ON DUPLICATE KEY UPDATE
            // assign.
            let assignments = match stmt {
                Statement::Delete(d) => {
                    for name in &mut d.tables {
                        self.rename_column_name(name, false);
                    }
                    None
                }
                Statement::Update(u) => Some(&mut u.assignments),
                Statement::Insert(ins) => match &mut ins.on {
                    Some(sqlparser::ast::OnInsert::DuplicateKeyUpdate(a)) => Some(a),
                    _ => None,
                },
                _ => None,
            };
            for a in assignments.into_iter().flatten() {
                match &mut a.target {
                    sqlparser::ast::AssignmentTarget::ColumnName(n) => {
                        self.rename_column_name(n, true)
                    }
                    sqlparser::ast::AssignmentTarget::Tuple(ns) => {
                        ns.iter_mut().for_each(|n| self.rename_column_name(n, true))
                    }
                }
            }
        }
        // Names sqlparser does not visit as relations.
        match stmt {
            Statement::Drop { names, .. } => names.iter_mut().for_each(|n| {
                self.rename(n);
            }),
            Statement::ShowCreate { obj_name, .. } => {
                self.rename(obj_name);
            }
            Statement::ExplainTable { table_name, .. } => {
                self.rename(table_name);
            }
            Statement::ShowColumns { show_options, .. } => {
                if let Some(n) = show_options
                    .show_in
                    .as_mut()
                    .and_then(|i| i.parent_name.as_mut())
                {
                    self.rename(n);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        let logical = relation
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.clone());
        if self.rename(relation) {
            // Renamed without an alias (INSERT targets, DELETE's table list, DDL): its
            // qualifiers follow, even where the name is also an alias elsewhere.
            if let Some(l) = logical.filter(|l| !self.is_unaliased(l)) {
                self.unaliased.push(l);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if !self.unaliased.is_empty() {
            self.rename_wildcards(&mut query.body);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // `[schema.]t.col` where `t` is renamed without an alias.
        if let Expr::CompoundIdentifier(parts) = expr {
            if let [qualifier @ .., _column] = parts.as_mut_slice() {
                if !self.unaliased.is_empty() {
                    self.rename_qualifier(qualifier);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn number(v: u64) -> Expr {
    Expr::value(Value::Number(v.to_string(), false))
}

/// Pushes `LIMIT offset+limit` down (the merger skips `offset` rows itself).
fn push_down_limit(stmt: &mut Statement, offset: u64, limit: Option<u64>) {
    let Statement::Query(q) = stmt else { return };
    q.limit_clause = limit.map(|l| LimitClause::LimitOffset {
        limit: Some(number(l.saturating_add(offset))),
        offset: None,
        limit_by: vec![],
    });
}

/// Keeps the rows of one target and fills in generated ids.
fn split_insert(
    stmt: &mut Statement,
    plan: &RoutePlan,
    rows_of: &[usize],
    target_index: usize,
) -> Result<(), RewriteError> {
    let Statement::Insert(ins) = stmt else {
        return Err(RewriteError::Unsupported(
            "invariant: INSERT split on a non-INSERT".into(),
        ));
    };
    let generated = plan.generated.as_ref();
    let mut pos = None;
    if let Some(g) = generated {
        pos = ins.columns.iter().position(|c| {
            c.0.last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case(&g.column))
        });
        if g.add_column {
            ins.columns
                .push(ObjectName::from(vec![Ident::new(g.column.clone())]));
        }
    }
    let Some(source) = ins.source.as_mut() else {
        return Err(RewriteError::Unsupported(
            "invariant: INSERT … VALUES".into(),
        ));
    };
    let SetExpr::Values(values) = source.body.as_mut() else {
        return Err(RewriteError::Unsupported(
            "invariant: INSERT … VALUES".into(),
        ));
    };
    let rows = std::mem::take(&mut values.rows);
    for (i, mut row) in rows.into_iter().enumerate() {
        let wanted = rows_of.get(i).copied().unwrap_or(0) == target_index;
        if !wanted {
            continue;
        }
        if let Some(id) = generated.and_then(|g| g.values.get(i).copied().flatten()) {
            let lit = Expr::value(Value::Number(id.to_string(), false));
            match pos {
                Some(p) if p < row.len() => row[p] = lit,
                _ => row.push(lit),
            }
        }
        values.rows.push(row);
    }
    Ok(())
}

/// Builds the execution plan. Verbatim plans keep the client's SQL byte for byte.
pub fn rewrite(plan: &RoutePlan, sql: &str) -> Result<ExecPlan, RewriteError> {
    let merge = match &plan.combine {
        Combine::Single => MergeSpec::Passthrough,
        Combine::Concat { offset, limit } => MergeSpec::Concat {
            offset: *offset,
            limit: *limit,
        },
        Combine::SumAffected => MergeSpec::SumAffected,
        Combine::First => MergeSpec::First,
        Combine::Merge => MergeSpec::Passthrough,
    };
    let mut merge = merge;
    // A merged SELECT: rewrite the statement once, then name tables per target.
    let mut merged_ast = None;
    if plan.combine == Combine::Merge {
        let Some(Statement::Query(q)) = plan.ast.as_deref() else {
            return Err(RewriteError::Unsupported(
                "invariant: merged plans carry their SELECT".into(),
            ));
        };
        let mut q = q.clone();
        let spec = merge::plan_merge(&mut q, myshard_router::lexer::select_item_texts(sql))?;
        merge = MergeSpec::Select(Box::new(spec));
        merged_ast = Some(Statement::Query(q));
    }
    let unaliased = match merged_ast.as_ref().or(plan.ast.as_deref()) {
        Some(ast) if !matches!(plan.rewrite, Rewrite::Verbatim | Rewrite::PerTarget { .. }) => {
            unaliased_split_tables(plan, ast)
        }
        _ => Vec::new(),
    };
    let mut queries = Vec::with_capacity(plan.targets.len());
    for (i, target) in plan.targets.iter().enumerate() {
        let text = match (&plan.rewrite, merged_ast.as_ref().or(plan.ast.as_deref())) {
            (Rewrite::PerTarget { sql }, _) => sql.get(i).cloned().ok_or_else(|| {
                RewriteError::Unsupported("invariant: one statement per target".into())
            })?,
            (Rewrite::Verbatim, _) | (_, None) => sql.to_string(),
            (rewrite, Some(ast)) => {
                let mut stmt = ast.clone();
                if let Rewrite::SplitInsert { rows } = rewrite {
                    split_insert(&mut stmt, plan, rows, i)?;
                }
                if let Combine::Concat { offset, limit } = plan.combine {
                    push_down_limit(&mut stmt, offset, limit);
                }
                let mut renamer = Renamer::new(plan, target, &unaliased);
                let _ = VisitMut::visit(&mut stmt, &mut renamer);
                render::render(&mut stmt)?
            }
        };
        queries.push(ShardQuery {
            shard: target.shard.clone(),
            table: target.table,
            database: plan.database.clone(),
            sql: text,
        });
    }
    let result_renames = match (plan.kind, plan.targets.as_slice()) {
        (
            StatementKind::Other,
            [Target {
                table: Some(index), ..
            }],
        ) => plan
            .sharded_tables
            .iter()
            .map(|t| (format!("{t}_{index}"), t.clone()))
            .collect(),
        _ => Vec::new(),
    };
    Ok(ExecPlan {
        role: plan.role,
        queries,
        merge,
        last_insert_id: plan
            .first_generated_id()
            .and_then(|v| u64::try_from(v).ok()),
        union: false,
        result_renames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use myshard_router::StatementKind;

    #[test]
    fn single_shard_keeps_sql_verbatim() {
        let plan = RoutePlan::single(StatementKind::Read, Role::Primary, "s0", Some("shop"));
        let exec = rewrite(&plan, "SELECT 1").expect("rewrites");
        assert_eq!(exec.queries[0].sql, "SELECT 1");
        assert!(exec.merge.is_passthrough());
    }
}
