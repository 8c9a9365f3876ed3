//! `LOCK TABLES` over a shard map: every shard holding part of a named table locks its
//! physical tables, so the session's lock covers the whole logical table as on one server.
//!
//! Read from the statement's tokens (sqlparser's form takes no schema-qualified names and
//! none of MariaDB's `WAIT n`/`NOWAIT`/`WRITE CONCURRENT`). The plan names one target per
//! shard, in the shard map's order, with that shard's own `LOCK TABLES`: sessions that lock
//! overlapping tables take the shards in the same order, so two of them cannot each hold
//! one shard while waiting for the other's.

use crate::lexer::Token;
use crate::placement::{every_copy, Target};
use crate::plan::{Combine, Rewrite, Role, RoutePlan, StatementKind};
use crate::policy::Denied;
use crate::route::RouteError;
use crate::text::quote_ident;
use myshard_config::{Config, SchemaConfig};

/// One table of a `LOCK TABLES` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockItem {
    /// The schema as written, if the name is qualified.
    pub schema: Option<String>,
    /// The table as written.
    pub table: String,
    /// `AS alias`, if any.
    pub alias: Option<String>,
    /// The lock type as MySQL reads it back (`READ`, `READ LOCAL`, `WRITE`,
    /// `LOW_PRIORITY WRITE`, `WRITE CONCURRENT`).
    pub mode: String,
}

/// A `LOCK TABLES` statement read from its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTables {
    /// The tables, in the statement's order.
    pub items: Vec<LockItem>,
    /// MariaDB's `WAIT n` or `NOWAIT`, if given.
    pub wait: Option<String>,
}

fn syntax(what: &str) -> RouteError {
    RouteError::Parse(format!(
        "You have an error in your SQL syntax near {what} in LOCK TABLES; it reads LOCK TABLES tbl_name [[AS] alias] {{READ [LOCAL] | [LOW_PRIORITY] WRITE | WRITE CONCURRENT}} [, …] [WAIT n | NOWAIT]"
    ))
}

/// The `LOCK TABLE[S]` statement `t` is, if it is one.
pub fn lock_tables(t: &[Token]) -> Option<Result<LockTables, RouteError>> {
    if !t.first()?.is_kw("LOCK") || !t.get(1)?.is_kw("TABLES") && !t.get(1)?.is_kw("TABLE") {
        return None;
    }
    Some(read_items(&t[2..]))
}

fn read_items(mut t: &[Token]) -> Result<LockTables, RouteError> {
    let mut items = Vec::new();
    let near = |t: &[Token]| match t.first() {
        Some(Token::Word(w) | Token::Quoted(w) | Token::Num(w) | Token::Sym(w)) => {
            format!("'{w}'")
        }
        Some(Token::Str(s)) => format!("'{s}'"),
        None => "the end".to_string(),
    };
    loop {
        let (schema, table, rest) = match t {
            [q, dot, name, rest @ ..] if dot.is_sym(".") => match (q.ident(), name.ident()) {
                (Some(q), Some(n)) => (Some(q.to_string()), n.to_string(), rest),
                _ => return Err(syntax(&near(t))),
            },
            [name, rest @ ..] => match name.ident() {
                Some(n) => (None, n.to_string(), rest),
                None => return Err(syntax(&near(t))),
            },
            [] => return Err(syntax("the end")),
        };
        t = rest;
        let is_mode_word =
            |x: &Token| x.is_kw("READ") || x.is_kw("WRITE") || x.is_kw("LOW_PRIORITY");
        let alias = match t {
            [as_, a, rest @ ..] if as_.is_kw("AS") => {
                t = rest;
                Some(
                    a.ident()
                        .ok_or_else(|| syntax(&near(std::slice::from_ref(a))))?,
                )
            }
            [a, rest @ ..] if !is_mode_word(a) && a.ident().is_some() => {
                t = rest;
                a.ident()
            }
            _ => None,
        }
        .map(str::to_string);
        let mode = match t {
            [r, l, rest @ ..] if r.is_kw("READ") && l.is_kw("LOCAL") => {
                t = rest;
                "READ LOCAL"
            }
            [r, rest @ ..] if r.is_kw("READ") => {
                t = rest;
                "READ"
            }
            [lp, w, rest @ ..] if lp.is_kw("LOW_PRIORITY") && w.is_kw("WRITE") => {
                t = rest;
                "LOW_PRIORITY WRITE"
            }
            [w, c, rest @ ..] if w.is_kw("WRITE") && c.is_kw("CONCURRENT") => {
                t = rest;
                "WRITE CONCURRENT"
            }
            [w, rest @ ..] if w.is_kw("WRITE") => {
                t = rest;
                "WRITE"
            }
            other => return Err(syntax(&near(other))),
        };
        items.push(LockItem {
            schema,
            table,
            alias,
            mode: mode.to_string(),
        });
        match t {
            [comma, rest @ ..] if comma.is_sym(",") => t = rest,
            _ => break,
        }
    }
    let wait = match t {
        [] => None,
        [n] if n.is_kw("NOWAIT") => Some("NOWAIT".to_string()),
        [w, Token::Num(n)] if w.is_kw("WAIT") => Some(format!("WAIT {n}")),
        other => return Err(syntax(&near(other))),
    };
    Ok(LockTables { items, wait })
}

/// The plan of a `LOCK TABLES`: per shard, the `LOCK TABLES` of the physical tables it holds
/// of the named tables (every shard of a sharded or broadcast table, every physical table of
/// a split one, the schema's default shard for an unsharded one).
pub fn plan_lock(
    config: &Config,
    current: Option<&SchemaConfig>,
    allowed: Option<&[String]>,
    lock: &LockTables,
) -> Result<RoutePlan, RouteError> {
    // Per shard (in the shard map's order): the lock clauses for it.
    let mut per_shard: Vec<(usize, String, Vec<String>)> = Vec::new();
    let mut schemas: Vec<String> = Vec::new();
    for item in &lock.items {
        let schema = match item.schema.as_deref() {
            None => current.ok_or(RouteError::NoDatabase)?,
            Some(s) => {
                let denied = || {
                    RouteError::Denied(Denied::Table {
                        command: "LOCK TABLES".into(),
                        schema: s.to_string(),
                        table: item.table.clone(),
                    })
                };
                if crate::policy::is_backend_schema(s) {
                    return Err(denied());
                }
                let Some(sc) = config.schema(s) else {
                    return Err(RouteError::UnknownDatabase(s.to_string()));
                };
                if allowed.is_some_and(|a| !a.iter().any(|x| x == s)) {
                    return Err(RouteError::Denied(Denied::Database(s.to_string())));
                }
                if current.is_none_or(|c| c.name != sc.name) && !schemas.contains(&sc.name) {
                    schemas.push(sc.name.clone());
                }
                sc
            }
        };
        let rule = schema.table(&item.table).and_then(|t| schema.rule(&t.rule));
        let targets: Vec<Target> = match rule {
            Some(rule) => every_copy(rule),
            None => vec![Target {
                shard: schema.default_shard.clone(),
                table: None,
            }],
        };
        let split = targets.iter().any(|t| t.table.is_some());
        if split && item.alias.is_some() {
            return Err(RouteError::Unsupported(format!(
                "LOCK TABLES {} AS {} READ|WRITE: '{}' is split into several tables per shard, and one alias cannot lock them all; lock it without an alias",
                item.table,
                item.alias.as_deref().unwrap_or_default(),
                item.table
            )));
        }
        let db = quote_ident(schema.physical_database());
        for target in targets {
            let physical = match target.table {
                Some(i) => format!("{}_{i}", item.table),
                None => item.table.clone(),
            };
            let mut clause = format!("{db}.{}", quote_ident(&physical));
            if let Some(a) = &item.alias {
                clause.push_str(" AS ");
                clause.push_str(&quote_ident(a));
            }
            clause.push(' ');
            clause.push_str(&item.mode);
            let order = config
                .shards
                .iter()
                .position(|s| s.name == target.shard)
                .unwrap_or(usize::MAX);
            match per_shard.iter_mut().find(|(_, s, _)| *s == target.shard) {
                Some((_, _, clauses)) => {
                    if !clauses.contains(&clause) {
                        clauses.push(clause)
                    }
                }
                None => per_shard.push((order, target.shard.clone(), vec![clause])),
            }
        }
    }
    per_shard.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let sql: Vec<String> = per_shard
        .iter()
        .map(|(_, _, clauses)| {
            let mut s = format!("LOCK TABLES {}", clauses.join(", "));
            if let Some(w) = &lock.wait {
                s.push(' ');
                s.push_str(w);
            }
            s
        })
        .collect();
    let targets = per_shard
        .into_iter()
        .map(|(_, shard, _)| Target { shard, table: None })
        .collect();
    let mut plan = RoutePlan::single(
        StatementKind::Lock,
        Role::Primary,
        "",
        current.map(|s| s.physical_database()),
    );
    plan.targets = targets;
    plan.rewrite = Rewrite::PerTarget { sql };
    plan.combine = Combine::SumAffected;
    plan.schemas = schemas;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn read(sql: &str) -> Result<LockTables, RouteError> {
        lock_tables(&tokenize(sql)).expect("a LOCK TABLES statement")
    }

    #[test]
    fn reads_every_form() {
        let l = read("LOCK TABLES `t` WRITE, shop.u AS x READ /*!32311 LOCAL */, v low_priority write, w b WRITE CONCURRENT WAIT 5").expect("reads");
        let got: Vec<(Option<&str>, &str, Option<&str>, &str)> = l
            .items
            .iter()
            .map(|i| {
                (
                    i.schema.as_deref(),
                    i.table.as_str(),
                    i.alias.as_deref(),
                    i.mode.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (None, "t", None, "WRITE"),
                (Some("shop"), "u", Some("x"), "READ LOCAL"),
                (None, "v", None, "LOW_PRIORITY WRITE"),
                (None, "w", Some("b"), "WRITE CONCURRENT"),
            ]
        );
        assert_eq!(l.wait.as_deref(), Some("WAIT 5"));
        assert_eq!(
            read("lock table t read nowait")
                .expect("reads")
                .wait
                .as_deref(),
            Some("NOWAIT")
        );
        assert!(lock_tables(&tokenize("LOCK IN SHARE MODE")).is_none());
        assert!(lock_tables(&tokenize("SELECT 1")).is_none());
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "LOCK TABLES",
            "LOCK TABLES t",
            "LOCK TABLES t SHARE",
            "LOCK TABLES t READ,",
            "LOCK TABLES t WRITE WAIT",
            "LOCK TABLES t WRITE; DROP TABLE t",
            "LOCK TABLES 't' READ",
        ] {
            assert!(
                matches!(read(bad), Err(RouteError::Parse(_))),
                "{bad} should be a syntax error"
            );
        }
    }
}
