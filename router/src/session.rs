//! Statements about the session itself — schema, variables, transactions — and the
//! informational statements myshard answers without a shard. Everything else is
//! [`SessionStatement::Routed`].

use crate::lexer::{tokenize, Token};

/// What a `SET` assignment changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetTarget {
    /// A session system variable, by lower-case name.
    System(String),
    /// A user variable `@name`, by name as written (without `@`).
    User(String),
    /// `SET NAMES …`: the client/connection/results character sets and collation.
    Names,
    /// `SET CHARACTER SET …`.
    CharacterSet,
    /// `SET TRANSACTION …` without a scope: applies to the next transaction only.
    NextTransaction,
    /// A global variable: myshard never changes shard-wide settings for a client.
    Global(String),
    /// Something else (`SET PASSWORD`, `SET ROLE`, `SET STATEMENT … FOR`), kept as its first
    /// word.
    Other(String),
}

/// Where `PREPARE` takes its statement text from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareSource {
    /// A string literal.
    Text(String),
    /// A user variable, by name (without `@`).
    Variable(String),
}

/// A statement classified for the session layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatement {
    /// `USE db`.
    Use(String),
    /// `SET …`, with what each assignment targets.
    Set(Vec<SetTarget>),
    /// `BEGIN` / `START TRANSACTION …`.
    Begin,
    /// `UNLOCK TABLE[S]`: releases the session's table locks on every shard holding them.
    UnlockTables,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`).
    Rollback,
    /// `SELECT DATABASE()` (or `SCHEMA()`), with the column label.
    SelectDatabase(String),
    /// `SELECT LAST_INSERT_ID()`, with the column label.
    SelectLastInsertId(String),
    /// `SELECT CONNECTION_ID()`, with the column label: myshard's own id of the session.
    SelectConnectionId(String),
    /// `SELECT ROW_COUNT()`, with the column label.
    SelectRowCount(String),
    /// `SELECT FOUND_ROWS()`, with the column label.
    SelectFoundRows(String),
    /// `SELECT @@a, @@session.b AS c [LIMIT 1]`: (variable name, column label) pairs.
    SelectVariables(Vec<(String, String)>),
    /// `SHOW DATABASES [LIKE 'p']` / `SHOW SCHEMAS`.
    ShowDatabases(Option<String>),
    /// `SHOW [FULL] TABLES [FROM db] [LIKE 'p']`.
    ShowTables {
        /// `FULL` adds the `Table_type` column.
        full: bool,
        /// The schema named by `FROM`/`IN`, else the current one.
        schema: Option<String>,
        /// The `LIKE` pattern.
        like: Option<String>,
    },
    /// `SHOW TABLE STATUS [FROM db] [LIKE 'p']`: the logical tables' status, from the
    /// logical `information_schema.TABLES`.
    ShowTableStatus {
        /// The schema named by `FROM`/`IN`, else the current one.
        schema: Option<String>,
        /// The `LIKE` pattern.
        like: Option<String>,
    },
    /// `ALTER TABLE [db.]t DISABLE KEYS` / `ENABLE KEYS` (mysqldump writes them around a
    /// table's rows): only a speed hint, which InnoDB ignores; answered OK once the schema is
    /// checked.
    KeysHint {
        /// The schema named by a qualifier, else the current one.
        schema: Option<String>,
    },
    /// `SHOW [SESSION] VARIABLES [LIKE 'p']`.
    ShowVariables(Option<String>),
    /// `SHOW WARNINGS` (`errors` is true for `SHOW ERRORS`).
    ShowWarnings {
        /// Only errors.
        errors: bool,
    },
    /// `PREPARE name FROM 'text' | @var`.
    Prepare {
        /// Statement name.
        name: String,
        /// Its text.
        source: PrepareSource,
    },
    /// `EXECUTE name [USING @a, @b, …]`.
    Execute {
        /// Statement name.
        name: String,
        /// User variables bound to the markers, by name.
        using: Vec<String>,
    },
    /// `DEALLOCATE PREPARE name` / `DROP PREPARE name`.
    Deallocate(String),
    /// `SAVEPOINT x`, `ROLLBACK [WORK] TO [SAVEPOINT] x`, `RELEASE SAVEPOINT x`: run on every
    /// shard the transaction has touched.
    Savepoint,
    /// `SHOW [FULL] PROCESSLIST`: myshard's own client sessions.
    ShowProcesslist {
        /// Whole statements, not their first 100 characters.
        full: bool,
    },
    /// `KILL [HARD|SOFT] [CONNECTION|QUERY] id`: of one of myshard's own client sessions.
    Kill {
        /// `KILL QUERY`: the running statement only.
        query: bool,
        /// The session's connection id.
        id: u64,
    },
    /// `EXPLAIN ROUTE <statement>`: the plan, without running it.
    ExplainRoute(String),
    /// Any other statement: routed to shards.
    Routed,
}

fn like_pattern(tokens: &[Token]) -> Option<Option<String>> {
    match tokens {
        [] => Some(None),
        [kw, Token::Str(p)] if kw.is_kw("LIKE") => Some(Some(p.clone())),
        _ => None,
    }
}

/// `PREPARE`, `EXECUTE` and `DEALLOCATE PREPARE` / `DROP PREPARE`.
fn prepared_statement(t: &[Token]) -> Option<SessionStatement> {
    let first = t.first()?;
    if first.is_kw("PREPARE") {
        let name = t.get(1)?.ident()?.to_string();
        if !t.get(2)?.is_kw("FROM") {
            return None;
        }
        let source = match t.get(3..)? {
            [Token::Str(text)] => PrepareSource::Text(text.clone()),
            [Token::Word(v)] if v.starts_with('@') && !v.starts_with("@@") => {
                PrepareSource::Variable(v[1..].to_string())
            }
            [Token::Sym(at), var] if at == "@" => PrepareSource::Variable(var.ident()?.to_string()),
            _ => return None,
        };
        return Some(SessionStatement::Prepare { name, source });
    }
    if first.is_kw("EXECUTE") {
        let name = t.get(1)?.ident()?.to_string();
        let mut using = Vec::new();
        if t.len() > 2 {
            if !t[2].is_kw("USING") {
                return None;
            }
            let mut i = 3;
            while i < t.len() {
                match &t[i] {
                    Token::Word(v) if v.starts_with('@') && v.len() > 1 && !v.starts_with("@@") => {
                        using.push(v[1..].to_string());
                        i += 1;
                    }
                    Token::Sym(at) if at == "@" => {
                        using.push(t.get(i + 1)?.ident()?.to_string());
                        i += 2;
                    }
                    _ => return None,
                }
                match t.get(i) {
                    None => {}
                    Some(c) if c.is_sym(",") => i += 1,
                    Some(_) => return None,
                }
            }
        }
        return Some(SessionStatement::Execute { name, using });
    }
    if (first.is_kw("DEALLOCATE") || first.is_kw("DROP")) && t.get(1)?.is_kw("PREPARE") {
        return match t {
            [_, _, name] => Some(SessionStatement::Deallocate(name.ident()?.to_string())),
            _ => None,
        };
    }
    None
}

/// Classifies one statement for the session layer.
pub fn classify(sql: &str) -> SessionStatement {
    classify_tokenized(sql, &tokenize(sql))
}

/// [`classify`] of a statement already tokenized (`tokens`: [`tokenize`] of `sql`).
pub fn classify_tokenized(sql: &str, tokens: &[Token]) -> SessionStatement {
    if let Some(inner) = explain_route(sql) {
        return SessionStatement::ExplainRoute(inner.to_string());
    }
    let mut t = tokens;
    while let [rest @ .., last] = t {
        if !last.is_sym(";") {
            break;
        }
        t = rest;
    }
    classify_tokens(t).unwrap_or(SessionStatement::Routed)
}

fn classify_tokens(t: &[Token]) -> Option<SessionStatement> {
    let first = t.first()?;
    if first.is_kw("ALTER") && t.get(1).is_some_and(|w| w.is_kw("TABLE")) {
        let (schema, rest) = match &t[2..] {
            [db, dot, _, rest @ ..] if dot.is_sym(".") => (Some(db.ident()?.to_string()), rest),
            [name, rest @ ..] => {
                name.ident()?;
                (None, rest)
            }
            _ => return None,
        };
        return match rest {
            [toggle, keys]
                if (toggle.is_kw("DISABLE") || toggle.is_kw("ENABLE")) && keys.is_kw("KEYS") =>
            {
                Some(SessionStatement::KeysHint { schema })
            }
            _ => None,
        };
    }
    if first.is_kw("UNLOCK") {
        return match t {
            [_, w] if w.is_kw("TABLES") || w.is_kw("TABLE") => Some(SessionStatement::UnlockTables),
            _ => None,
        };
    }
    if first.is_kw("USE") {
        return match t {
            [_, name] => name.ident().map(|n| SessionStatement::Use(n.to_string())),
            _ => None,
        };
    }
    if first.is_kw("BEGIN") {
        return match t {
            [_] => Some(SessionStatement::Begin),
            [_, w] if w.is_kw("WORK") => Some(SessionStatement::Begin),
            _ => None,
        };
    }
    if first.is_kw("START") && t.get(1).is_some_and(|w| w.is_kw("TRANSACTION")) {
        return Some(SessionStatement::Begin);
    }
    if first.is_kw("SAVEPOINT")
        || (first.is_kw("RELEASE") && t.get(1).is_some_and(|w| w.is_kw("SAVEPOINT")))
        || (first.is_kw("ROLLBACK") && t.iter().take(3).any(|w| w.is_kw("TO")))
    {
        return Some(SessionStatement::Savepoint);
    }
    if first.is_kw("COMMIT") {
        return (t.len() == 1 || (t.len() == 2 && t[1].is_kw("WORK")))
            .then_some(SessionStatement::Commit);
    }
    if first.is_kw("ROLLBACK") {
        return (t.len() == 1 || (t.len() == 2 && t[1].is_kw("WORK")))
            .then_some(SessionStatement::Rollback);
    }
    if first.is_kw("SET") {
        return Some(SessionStatement::Set(set_targets(&t[1..])));
    }
    if let Some(s) = prepared_statement(t) {
        return Some(s);
    }
    if first.is_kw("SELECT") {
        return classify_select(&t[1..]);
    }
    if first.is_kw("SHOW") {
        return classify_show(&t[1..]);
    }
    if first.is_kw("KILL") {
        return classify_kill(&t[1..]);
    }
    None
}

fn classify_kill(t: &[Token]) -> Option<SessionStatement> {
    let t = match t.first() {
        Some(w) if w.is_kw("HARD") || w.is_kw("SOFT") => &t[1..],
        _ => t,
    };
    let (query, t) = match t.first() {
        Some(w) if w.is_kw("QUERY") => (true, &t[1..]),
        Some(w) if w.is_kw("CONNECTION") => (false, &t[1..]),
        _ => (false, t),
    };
    let t = match t.first() {
        Some(w) if query && w.is_kw("ID") => &t[1..],
        _ => t,
    };
    match t {
        [Token::Num(n)] => Some(SessionStatement::Kill {
            query,
            id: n.parse().ok()?,
        }),
        _ => None,
    }
}

/// The statement after `EXPLAIN ROUTE`, if that is how `sql` starts.
fn explain_route(sql: &str) -> Option<&str> {
    let s = sql.trim_start();
    let rest = s.get(..7).filter(|h| h.eq_ignore_ascii_case("EXPLAIN"))?;
    let _ = rest;
    let after = s[7..].trim_start();
    let route = after.get(..5).filter(|h| h.eq_ignore_ascii_case("ROUTE"))?;
    let _ = route;
    let inner = after[5..].trim_start();
    (after[5..].starts_with(|c: char| c.is_whitespace()) && !inner.is_empty()).then_some(inner)
}

/// An optional `FROM db` / `IN db`, and the tokens after it.
fn from_schema(t: &[Token]) -> Option<(Option<String>, &[Token])> {
    match t {
        [kw, name, tail @ ..] if kw.is_kw("FROM") || kw.is_kw("IN") => {
            Some((Some(name.ident()?.to_string()), tail))
        }
        _ => Some((None, t)),
    }
}

fn classify_show(t: &[Token]) -> Option<SessionStatement> {
    let head = t.first()?;
    if head.is_kw("DATABASES") || head.is_kw("SCHEMAS") {
        return like_pattern(&t[1..]).map(SessionStatement::ShowDatabases);
    }
    if head.is_kw("WARNINGS") && t.len() == 1 {
        return Some(SessionStatement::ShowWarnings { errors: false });
    }
    if head.is_kw("ERRORS") && t.len() == 1 {
        return Some(SessionStatement::ShowWarnings { errors: true });
    }
    let (full, rest) = if head.is_kw("FULL") {
        (true, &t[1..])
    } else {
        (false, t)
    };
    if rest.len() == 1 && rest[0].is_kw("PROCESSLIST") {
        return Some(SessionStatement::ShowProcesslist { full });
    }
    if rest.first().is_some_and(|w| w.is_kw("TABLES")) {
        let (schema, rest) = from_schema(&rest[1..])?;
        let like = like_pattern(rest)?;
        return Some(SessionStatement::ShowTables { full, schema, like });
    }
    if !full && rest.len() >= 2 && rest[0].is_kw("TABLE") && rest[1].is_kw("STATUS") {
        let (schema, rest) = from_schema(&rest[2..])?;
        let like = like_pattern(rest)?;
        return Some(SessionStatement::ShowTableStatus { schema, like });
    }
    let rest = if head.is_kw("SESSION") || head.is_kw("LOCAL") {
        &t[1..]
    } else {
        t
    };
    if !full && rest.first().is_some_and(|w| w.is_kw("VARIABLES")) {
        return like_pattern(&rest[1..]).map(SessionStatement::ShowVariables);
    }
    None
}

fn classify_select(t: &[Token]) -> Option<SessionStatement> {
    // An optional trailing `LIMIT 1` (the mysql client sends `SELECT @@version_comment LIMIT 1`).
    let t = match t {
        [body @ .., l, Token::Num(n)] if l.is_kw("LIMIT") && n != "0" => body,
        _ => t,
    };
    match t {
        [f, open, close]
            if (f.is_kw("DATABASE") || f.is_kw("SCHEMA"))
                && open.is_sym("(")
                && close.is_sym(")") =>
        {
            let label = format!("{}()", f.ident()?);
            return Some(SessionStatement::SelectDatabase(label));
        }
        [f, open, close] if f.is_kw("LAST_INSERT_ID") && open.is_sym("(") && close.is_sym(")") => {
            return Some(SessionStatement::SelectLastInsertId(format!(
                "{}()",
                f.ident()?
            )));
        }
        [f, open, close] if f.is_kw("CONNECTION_ID") && open.is_sym("(") && close.is_sym(")") => {
            return Some(SessionStatement::SelectConnectionId(format!(
                "{}()",
                f.ident()?
            )));
        }
        [f, open, close] if f.is_kw("ROW_COUNT") && open.is_sym("(") && close.is_sym(")") => {
            return Some(SessionStatement::SelectRowCount(format!(
                "{}()",
                f.ident()?
            )));
        }
        [f, open, close] if f.is_kw("FOUND_ROWS") && open.is_sym("(") && close.is_sym(")") => {
            return Some(SessionStatement::SelectFoundRows(format!(
                "{}()",
                f.ident()?
            )));
        }
        _ => {}
    }
    let mut vars = Vec::new();
    for item in t.split(|x| x.is_sym(",")) {
        vars.push(select_variable(item)?);
    }
    (!vars.is_empty()).then_some(SessionStatement::SelectVariables(vars))
}

/// One `@@[scope.]name [[AS] alias]` select item.
fn select_variable(item: &[Token]) -> Option<(String, String)> {
    let Token::Word(head) = item.first()? else {
        return None;
    };
    let bare = head.strip_prefix("@@")?;
    let (name, label, rest) = if bare.eq_ignore_ascii_case("session")
        || bare.eq_ignore_ascii_case("local")
        || bare.eq_ignore_ascii_case("global")
    {
        match item {
            [_, dot, n, rest @ ..] if dot.is_sym(".") => {
                let n = n.ident()?;
                (n.to_string(), format!("{head}.{n}"), rest)
            }
            _ => return None,
        }
    } else if bare.is_empty() {
        return None;
    } else {
        (bare.to_string(), head.clone(), &item[1..])
    };
    let label = match rest {
        [] => label,
        [a, alias] if a.is_kw("AS") => alias
            .ident()
            .or(match alias {
                Token::Str(s) => Some(s.as_str()),
                _ => None,
            })?
            .to_string(),
        [alias] => alias.ident()?.to_string(),
        _ => return None,
    };
    Some((name.to_ascii_lowercase(), label))
}

fn set_targets(t: &[Token]) -> Vec<SetTarget> {
    let first = t.first();
    if first.is_some_and(|w| w.is_kw("TRANSACTION")) {
        return vec![SetTarget::NextTransaction];
    }
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, tok) in t.iter().enumerate() {
        if tok.is_sym("(") {
            depth += 1;
        } else if tok.is_sym(")") {
            depth -= 1;
        } else if tok.is_sym(",") && depth == 0 {
            out.push(set_target(&t[start..i]));
            start = i + 1;
        }
    }
    out.push(set_target(&t[start..]));
    out
}

fn set_target(a: &[Token]) -> SetTarget {
    let other = || {
        SetTarget::Other(
            a.first()
                .and_then(|t| t.ident())
                .unwrap_or("")
                .to_ascii_uppercase(),
        )
    };
    let Some(Token::Word(head)) = a.first() else {
        return other();
    };
    // `SET time_zone = '+00:00', NAMES utf8mb4 COLLATE …` (as sqlx connects): NAMES and
    // CHARACTER SET may be any element of the list.
    if head.eq_ignore_ascii_case("NAMES") {
        return SetTarget::Names;
    }
    if head.eq_ignore_ascii_case("CHARSET")
        || (head.eq_ignore_ascii_case("CHARACTER") && a.get(1).is_some_and(|t| t.is_kw("SET")))
    {
        return SetTarget::CharacterSet;
    }
    let lower = head.to_ascii_lowercase();
    let (scope, rest) = match lower.as_str() {
        "session" | "local" | "@@session" | "@@local" => ("session", &a[1..]),
        "global" | "@@global" | "persist" | "persist_only" => ("global", &a[1..]),
        _ => ("", a),
    };
    let rest = if lower.starts_with("@@") && !scope.is_empty() {
        match rest {
            [dot, tail @ ..] if dot.is_sym(".") => tail,
            _ => return other(),
        }
    } else {
        rest
    };
    let Some(name_tok) = rest.first() else {
        return other();
    };
    if scope == "session" && name_tok.is_kw("TRANSACTION") {
        return SetTarget::System("transaction_isolation".into());
    }
    if scope == "global" {
        return SetTarget::Global(name_tok.ident().unwrap_or("").to_ascii_lowercase());
    }
    let has_eq = rest.get(1).is_some_and(|t| t.is_sym("=") || t.is_sym(":="));
    match name_tok {
        Token::Word(w) if scope.is_empty() && w.starts_with("@@") && has_eq => {
            SetTarget::System(w[2..].to_ascii_lowercase())
        }
        Token::Word(w) if scope.is_empty() && w.starts_with('@') && has_eq => {
            SetTarget::User(w[1..].to_string())
        }
        Token::Word(w) if has_eq && !w.starts_with('@') => {
            if scope.is_empty()
                && matches!(
                    lower.as_str(),
                    "password" | "role" | "statement" | "default"
                )
            {
                return other();
            }
            SetTarget::System(w.to_ascii_lowercase())
        }
        Token::Quoted(w) if has_eq => SetTarget::System(w.to_ascii_lowercase()),
        _ => other(),
    }
}

/// Why a statement ties the client to one backend connection for the rest of the session
/// (state that lives on the server connection and cannot be replayed), if it does.
pub fn pins_connection(sql: &str) -> Option<&'static str> {
    pins_connection_tokenized(&tokenize(sql))
}

/// [`pins_connection`] of a statement's tokens.
pub fn pins_connection_tokenized(t: &[Token]) -> Option<&'static str> {
    let first = t.first()?;
    if first.is_kw("CREATE") && t.get(1).is_some_and(|w| w.is_kw("TEMPORARY")) {
        return Some("temporary table");
    }
    // LOCK TABLES holds its shards' connections while it has locks (the session's
    // `locked` set), not for the rest of the session.
    if first.is_kw("PREPARE") || first.is_kw("XA") || first.is_kw("HANDLER") {
        return Some("session-bound statement");
    }
    if first.is_kw("CALL") {
        // A procedure may set variables, create temporary tables or take locks that myshard
        // cannot see; its connection stays with the session.
        return Some("CALL of a stored procedure");
    }
    if first.is_kw("SET") && t.get(1).is_some_and(|w| w.is_kw("TRANSACTION")) {
        return Some("SET TRANSACTION for the next transaction");
    }
    for (i, tok) in t.iter().enumerate() {
        if tok.is_sym(":=") {
            return Some("user variable assignment");
        }
        if tok.is_kw("INTO") && matches!(t.get(i + 1), Some(Token::Word(w)) if w.starts_with('@')) {
            return Some("SELECT … INTO a user variable");
        }
        if tok.is_kw("GET_LOCK")
            || tok.is_kw("SQL_CALC_FOUND_ROWS")
            || tok.is_kw("FOUND_ROWS")
            || tok.is_kw("LASTVAL")
            || tok.is_kw("NEXTVAL")
            || tok.is_kw("SETVAL")
            || (tok.is_kw("NEXT") && t.get(i + 1).is_some_and(|w| w.is_kw("VALUE")))
            || (tok.is_kw("PREVIOUS") && t.get(i + 1).is_some_and(|w| w.is_kw("VALUE")))
        {
            return Some("session-bound function");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionStatement as S;

    #[test]
    fn use_and_transactions() {
        assert_eq!(classify("USE `shop`"), S::Use("shop".into()));
        assert_eq!(classify("begin"), S::Begin);
        assert_eq!(classify("START TRANSACTION READ ONLY"), S::Begin);
        assert_eq!(classify("COMMIT;"), S::Commit);
        assert_eq!(classify("ROLLBACK TO SAVEPOINT a"), S::Savepoint);
        assert_eq!(classify("rollback work to b"), S::Savepoint);
        assert_eq!(classify("SAVEPOINT a"), S::Savepoint);
        assert_eq!(classify("RELEASE SAVEPOINT a"), S::Savepoint);
    }

    #[test]
    fn sql_prepared_statements() {
        assert_eq!(
            classify("PREPARE s FROM 'SELECT ?'"),
            S::Prepare {
                name: "s".into(),
                source: PrepareSource::Text("SELECT ?".into())
            }
        );
        assert_eq!(
            classify("PREPARE `s` FROM @q"),
            S::Prepare {
                name: "s".into(),
                source: PrepareSource::Variable("q".into())
            }
        );
        assert_eq!(
            classify("EXECUTE s USING @a, @b"),
            S::Execute {
                name: "s".into(),
                using: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            classify("EXECUTE s"),
            S::Execute {
                name: "s".into(),
                using: vec![]
            }
        );
        assert_eq!(classify("DEALLOCATE PREPARE s"), S::Deallocate("s".into()));
        assert_eq!(classify("DROP PREPARE s"), S::Deallocate("s".into()));
        assert_eq!(classify("EXECUTE s USING 1"), S::Routed);
    }

    #[test]
    fn set_targets_cover_scopes_and_user_variables() {
        assert_eq!(
            classify("SET SESSION sql_mode='', @@time_zone = '+00:00', @a := 1, autocommit=0"),
            S::Set(vec![
                SetTarget::System("sql_mode".into()),
                SetTarget::System("time_zone".into()),
                SetTarget::User("a".into()),
                SetTarget::System("autocommit".into()),
            ])
        );
        assert_eq!(
            classify("SET NAMES utf8mb4 COLLATE utf8mb4_bin"),
            S::Set(vec![SetTarget::Names])
        );
        // sqlx's connection setup: NAMES among other assignments.
        assert_eq!(
            classify("SET sql_mode=(SELECT CONCAT(@@sql_mode, ',PIPES_AS_CONCAT')),time_zone='+00:00',NAMES utf8mb4 COLLATE utf8mb4_unicode_ci;"),
            S::Set(vec![
                SetTarget::System("sql_mode".into()),
                SetTarget::System("time_zone".into()),
                SetTarget::Names
            ])
        );
        assert_eq!(
            classify("SET NAMES utf8mb4, @a = 1"),
            S::Set(vec![SetTarget::Names, SetTarget::User("a".into())])
        );
        assert_eq!(
            classify("SET CHARSET utf8mb4"),
            S::Set(vec![SetTarget::CharacterSet])
        );
        assert_eq!(
            classify("SET @a = 1, CHARACTER SET utf8mb4"),
            S::Set(vec![SetTarget::User("a".into()), SetTarget::CharacterSet])
        );
        assert_eq!(
            classify("SET GLOBAL max_connections=1"),
            S::Set(vec![SetTarget::Global("max_connections".into())])
        );
        assert_eq!(
            classify("SET @@session.x = f(1, 2), y = 3"),
            S::Set(vec![
                SetTarget::System("x".into()),
                SetTarget::System("y".into())
            ])
        );
    }

    #[test]
    fn driver_variable_selects_keep_labels() {
        assert_eq!(
            classify("SELECT @@version_comment LIMIT 1"),
            S::SelectVariables(vec![("version_comment".into(), "@@version_comment".into())])
        );
        assert_eq!(
            classify("SELECT @@session.auto_increment_increment AS auto_increment_increment, @@max_allowed_packet"),
            S::SelectVariables(vec![
                ("auto_increment_increment".into(), "auto_increment_increment".into()),
                ("max_allowed_packet".into(), "@@max_allowed_packet".into())
            ])
        );
        assert_eq!(classify("SELECT @@version, NOW()"), S::Routed);
    }

    #[test]
    fn show_statements() {
        assert_eq!(classify("SHOW DATABASES"), S::ShowDatabases(None));
        assert_eq!(
            classify("show full tables from shop like 'o%'"),
            S::ShowTables {
                full: true,
                schema: Some("shop".into()),
                like: Some("o%".into())
            }
        );
        assert_eq!(
            classify("SHOW VARIABLES LIKE 'sql_mode'"),
            S::ShowVariables(Some("sql_mode".into()))
        );
        assert_eq!(classify("SHOW GLOBAL VARIABLES"), S::Routed);
        assert_eq!(
            classify("/*!40000 ALTER TABLE `customers` DISABLE KEYS */"),
            S::KeysHint { schema: None }
        );
        assert_eq!(
            classify("ALTER TABLE shop.t ENABLE KEYS"),
            S::KeysHint {
                schema: Some("shop".into())
            }
        );
        assert_eq!(classify("ALTER TABLE t ADD KEY (a)"), S::Routed);
        assert_eq!(
            classify("SHOW TABLE STATUS IN shop LIKE 'o%'"),
            S::ShowTableStatus {
                schema: Some("shop".into()),
                like: Some("o%".into())
            }
        );
        assert_eq!(
            classify("SHOW TABLE STATUS"),
            S::ShowTableStatus {
                schema: None,
                like: None
            }
        );
        assert_eq!(classify("SHOW WARNINGS"), S::ShowWarnings { errors: false });
        assert_eq!(
            classify("SHOW FULL PROCESSLIST"),
            S::ShowProcesslist { full: true }
        );
        assert_eq!(
            classify("KILL 12"),
            S::Kill {
                query: false,
                id: 12
            }
        );
        assert_eq!(
            classify("kill hard query id 7;"),
            S::Kill { query: true, id: 7 }
        );
        assert_eq!(
            classify("KILL CONNECTION 3"),
            S::Kill {
                query: false,
                id: 3
            }
        );
        assert_eq!(classify("KILL USER app"), S::Routed);
        assert_eq!(
            classify("SELECT DATABASE()"),
            S::SelectDatabase("DATABASE()".into())
        );
    }

    #[test]
    fn explain_route_keeps_the_statement() {
        assert_eq!(
            classify("explain  route SELECT * FROM t WHERE id = 1"),
            S::ExplainRoute("SELECT * FROM t WHERE id = 1".into())
        );
        assert_eq!(classify("EXPLAIN routes"), S::Routed);
    }

    #[test]
    fn pinning_reasons() {
        assert!(pins_connection("CREATE TEMPORARY TABLE t (a int)").is_some());
        assert!(pins_connection("SELECT GET_LOCK('a', 1)").is_some());
        assert!(pins_connection("SELECT @a := 1").is_some());
        assert!(pins_connection("SELECT 1").is_none());
        assert!(pins_connection("SELECT a INTO @x FROM t").is_some());
        assert!(pins_connection("INSERT INTO t VALUES (1)").is_none());
        assert!(pins_connection("CALL p(1)").is_some());
        assert!(pins_connection("SELECT NEXT VALUE FOR s").is_some());
        assert!(pins_connection("SELECT LASTVAL(s)").is_some());
    }
}
