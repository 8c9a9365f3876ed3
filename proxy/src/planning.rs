//! Planning a statement for a session: the one planner (`myshard_sql_rewrite::planner`),
//! the session's permission to use hints, the one-statement guard, the session's text form,
//! and the one mapping of planner refusals to MySQL errors.

use crate::error::{codes, ProxyError};
use crate::session::Session;
use myshard_config::Access;
use myshard_router::policy::Denied;
use myshard_router::{RouteError, RoutePlan, StatementKind};
use myshard_sql_rewrite::planner::PlanError;
use myshard_sql_rewrite::{ExecPlan, RewriteError};

impl Session {
    /// Routes and rewrites a statement into its execution plan, each target's SQL in the
    /// session's own text form (no stages: see `Session::plan_materialized`).
    pub fn plan(&self, sql: &str) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        let planned = {
            let facts = self.facts(Default::default());
            let mut ids = self.shared.ids();
            myshard_sql_rewrite::planner::plan_as(
                &self.shared.router(),
                facts.schema,
                facts.allowed,
                sql,
                &mut ids,
            )
        };
        match planned {
            Ok(p) => self.admit(sql, p),
            Err(e) => Err(self.refusal(&e)),
        }
    }

    /// The ERR packet of a planner refusal.
    pub(crate) fn refusal(&self, e: &PlanError) -> ProxyError {
        match e {
            PlanError::Route(RouteError::Denied(d)) => self.denied(d),
            other => plan_error(other),
        }
    }

    /// What the session adds to a plan of `sql` before it runs: the user's rights, the
    /// permission to use hints, the one-statement guard, and its own text form.
    pub(crate) fn admit(
        &self,
        sql: &str,
        (plan, mut exec): (RoutePlan, ExecPlan),
    ) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        // Users with full rights everywhere (the default) pay nothing here.
        let restricted = self.user.access != Access::Ddl || !self.user.schema_access.is_empty();
        if restricted && !self.admin {
            self.check_access(&plan, sql)?;
        }
        if plan.hinted && !self.user.allow_hints {
            return Err(ProxyError::sql(
                codes::SPECIFIC_ACCESS_DENIED,
                "42000",
                format!(
                    "Access denied; user '{}' may not use /* myshard:shard=… */ hints (allow_hints)",
                    self.user.name
                ),
            ));
        }
        for q in &mut exec.queries {
            // A rewrite that ended a literal early would read as two statements here: refuse
            // it rather than let a shard run the second.
            if q.sql != sql && !myshard_router::text::is_single_statement(&q.sql) {
                return Err(ProxyError::not_supported(
                    "invariant: a rewritten statement reads as several statements; refused",
                ));
            }
            if let std::borrow::Cow::Owned(s) = self.outgoing(&q.sql) {
                q.sql = s;
            }
        }
        Ok((plan, exec))
    }

    /// The user's rights (`access`, `schema_access`) in every schema the statement uses:
    /// reads for all, writes for `read_write`, DDL for `ddl` (ER_TABLEACCESS_DENIED_ERROR).
    fn check_access(&self, plan: &RoutePlan, sql: &str) -> Result<(), ProxyError> {
        let tokens = myshard_router::lexer::tokenize(sql.get(..256).unwrap_or(sql));
        let verb = tokens
            .iter()
            .find_map(|t| match t {
                myshard_router::lexer::Token::Word(w) => Some(w.to_ascii_uppercase()),
                _ => None,
            })
            .unwrap_or_default();
        let needed = match plan.kind {
            StatementKind::Read => Access::ReadOnly,
            StatementKind::Write => Access::ReadWrite,
            StatementKind::Ddl => Access::Ddl,
            // READ locks are what a dump takes; WRITE locks keep others from reading.
            StatementKind::Lock
                if myshard_router::lexer::tokenize(sql)
                    .iter()
                    .any(|t| t.is_kw("WRITE")) =>
            {
                Access::ReadWrite
            }
            StatementKind::Lock => Access::ReadOnly,
            StatementKind::Other => match verb.as_str() {
                "CALL" | "HANDLER" | "XA" => Access::ReadWrite,
                "ANALYZE" | "OPTIMIZE" | "REPAIR" => Access::Ddl,
                _ => Access::ReadOnly,
            },
        };
        let schemas = self.schema.iter().chain(plan.schemas.iter());
        for schema in schemas {
            if self.user.access_to(schema) < needed {
                // The table the statement names first after its verb's keyword, as MySQL's
                // message names the table.
                let table = tokens
                    .windows(2)
                    .find(|w| {
                        ["INTO", "UPDATE", "FROM", "TABLE", "TRUNCATE", "JOIN", "ON"]
                            .iter()
                            .any(|k| w[0].is_kw(k))
                            && w[1].ident().is_some()
                    })
                    .and_then(|w| w[1].ident())
                    .unwrap_or("");
                return Err(ProxyError::sql(
                    codes::TABLE_ACCESS_DENIED,
                    "42000",
                    format!(
                        "{verb} command denied to user '{}'@'%' for table `{schema}`.`{table}` (the user's access to '{schema}' is {})",
                        self.user.name,
                        self.user.access_to(schema).name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The MySQL error for a statement the policy refuses, naming this session's user as a
    /// server names the account.
    pub(crate) fn denied(&self, d: &Denied) -> ProxyError {
        let user = &self.user.name;
        match d {
            Denied::NotSupported(m) => ProxyError::not_supported(m.clone()),
            Denied::Privilege { .. } => {
                ProxyError::sql(codes::SPECIFIC_ACCESS_DENIED, "42000", d.to_string())
            }
            Denied::Table {
                command,
                schema,
                table,
            } => ProxyError::sql(
                codes::TABLE_ACCESS_DENIED,
                "42000",
                format!(
                    "{command} command denied to user '{user}'@'%' for table `{schema}`.`{table}`"
                ),
            ),
            Denied::Database(db) => ProxyError::sql(
                codes::DB_ACCESS_DENIED,
                "42000",
                format!("Access denied for user '{user}'@'%' to database '{db}'"),
            ),
        }
    }
}

/// The one mapping of planner refusals to MySQL errors.
pub(crate) fn plan_error(e: &PlanError) -> ProxyError {
    match e {
        PlanError::Route(RouteError::NoDatabase) => {
            ProxyError::sql(codes::NO_DB, "3D000", "No database selected")
        }
        PlanError::Route(RouteError::UnknownDatabase(db)) => {
            ProxyError::sql(codes::BAD_DB, "42000", format!("Unknown database '{db}'"))
        }
        PlanError::Route(RouteError::Parse(m)) => {
            ProxyError::sql(codes::PARSE_ERROR, "42000", m.clone())
        }
        PlanError::Rewrite(RewriteError::UnionColumnCount) => {
            ProxyError::sql(1222, "21000", e.to_string())
        }
        other => ProxyError::not_supported(other.to_string()),
    }
}
