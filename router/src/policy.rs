//! The statement policy: every statement a client sends is routed, answered by myshard, or
//! refused here with the reason — nothing myshard does not recognise reaches a shard as
//! written. It reads tokens only (one tokenization serves it and the router), so it also
//! sees the body of executable comments `/*! … */`, which a server runs.
//!
//! Refused:
//! - the backend's system schemas (`mysql`, `performance_schema`, `sys`);
//! - file access (`LOAD_FILE`, `INTO OUTFILE`/`DUMPFILE`, `LOAD DATA`/`LOAD XML`);
//! - account management (users, roles, GRANT, REVOKE) and `DEFINER=` clauses;
//! - server administration (FLUSH, SHUTDOWN, plugins, replication, binary logs, KILL of
//!   backend threads, global status of the backend);
//! - DDL myshard cannot apply to every shard of a logical schema at once (databases,
//!   stored programs, events, servers);
//! - compound statements and `EXECUTE IMMEDIATE`, whose text myshard cannot check;
//! - any statement whose first words it does not recognise.

use crate::lexer::Token;

/// Schemas of the backend server that no client of myshard reaches.
pub const BACKEND_SCHEMAS: [&str; 3] = ["mysql", "performance_schema", "sys"];

/// The `information_schema` tables that describe schemas, tables and the session; the rest
/// (PROCESSLIST, privileges, global status and variables, storage-engine internals) describe
/// the backend server.
const INFORMATION_SCHEMA_TABLES: [&str; 23] = [
    "SCHEMATA",
    "TABLES",
    "COLUMNS",
    "STATISTICS",
    "KEY_COLUMN_USAGE",
    "REFERENTIAL_CONSTRAINTS",
    "TABLE_CONSTRAINTS",
    "CHECK_CONSTRAINTS",
    "VIEWS",
    "ROUTINES",
    "PARAMETERS",
    "TRIGGERS",
    "PARTITIONS",
    "CHARACTER_SETS",
    "COLLATIONS",
    "COLLATION_CHARACTER_SET_APPLICABILITY",
    "ENGINES",
    "KEYWORDS",
    "SQL_FUNCTIONS",
    "SESSION_VARIABLES",
    "SESSION_STATUS",
    "COLUMNS_EXTENSIONS",
    "FILES",
];

/// Why the policy refuses a statement. The proxy turns each into MySQL's own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A statement class myshard does not run (ER_NOT_SUPPORTED_YET, 1235).
    #[error("{0}")]
    NotSupported(String),
    /// An operation that needs a server privilege no client of myshard has
    /// (ER_SPECIFIC_ACCESS_DENIED_ERROR, 1227).
    #[error("Access denied; you need (at least one of) the {privilege} privilege(s) for this operation ({what})")]
    Privilege {
        /// MySQL's name of the privilege.
        privilege: &'static str,
        /// What the statement tried.
        what: String,
    },
    /// A table outside the client's logical schemas (ER_TABLEACCESS_DENIED_ERROR, 1142).
    #[error("{command} command denied for table `{schema}`.`{table}`")]
    Table {
        /// The statement's verb, upper case.
        command: String,
        /// The schema as written.
        schema: String,
        /// The table (or routine) as written.
        table: String,
    },
    /// A database outside the client's logical schemas (ER_DBACCESS_DENIED_ERROR, 1044).
    #[error("Access denied to database '{0}'")]
    Database(String),
}

fn word(t: Option<&Token>) -> String {
    match t {
        Some(Token::Word(w)) => w.to_ascii_uppercase(),
        _ => String::new(),
    }
}

fn not_supported<T>(msg: impl Into<String>) -> Result<T, Denied> {
    Err(Denied::NotSupported(msg.into()))
}

fn privilege<T>(privilege: &'static str, what: impl Into<String>) -> Result<T, Denied> {
    Err(Denied::Privilege {
        privilege,
        what: what.into(),
    })
}

/// Whether `name` is one of the backend's system schemas.
pub fn is_backend_schema(name: &str) -> bool {
    BACKEND_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Checks one statement's tokens (comments removed, executable comments kept as code).
pub fn check(t: &[Token]) -> Result<Checked, Denied> {
    let start = t.iter().take_while(|x| x.is_sym("(")).count();
    let body = &t[start..];
    let verb = word(body.first());
    check_statement(&verb, body)?;
    check_anywhere(&verb, body)
}

/// What the policy learnt of an allowed statement.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The `information_schema` tables it reads that myshard shows logically
    /// ([`crate::catalog`]), upper case, each once.
    pub catalog: Vec<&'static str>,
}

/// What the statement's first words make it.
fn check_statement(verb: &str, t: &[Token]) -> Result<(), Denied> {
    let second = word(t.get(1));
    match verb {
        "SELECT" | "WITH" | "VALUES" | "TABLE" | "INSERT" | "REPLACE" | "UPDATE" | "DELETE"
        | "DO" | "TRUNCATE" | "LOCK" | "UNLOCK" | "HANDLER" | "CALL" | "USE" | "BEGIN"
        | "START" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "SET" | "PREPARE"
        | "DEALLOCATE" | "ANALYZE" | "OPTIMIZE" | "CHECK" | "CHECKSUM" | "REPAIR" | "XA" => {
            if verb == "BEGIN" && second == "NOT" {
                return not_supported("compound statements (BEGIN NOT ATOMIC … END) are not supported through myshard");
            }
            if verb == "START" && second != "TRANSACTION" {
                return privilege(
                    "REPLICATION SLAVE ADMIN",
                    format!("START {second} runs on the backend server"),
                );
            }
            Ok(())
        }
        "EXECUTE" if second == "IMMEDIATE" => not_supported(
            "EXECUTE IMMEDIATE is not supported through myshard; PREPARE the statement, then EXECUTE it",
        ),
        "EXECUTE" => Ok(()),
        "DESCRIBE" | "DESC" | "EXPLAIN" => {
            // EXPLAIN of a statement is judged as that statement.
            let inner = t
                .iter()
                .position(|x| {
                    let w = word(Some(x));
                    matches!(
                        w.as_str(),
                        "SELECT" | "WITH" | "INSERT" | "REPLACE" | "UPDATE" | "DELETE" | "TABLE"
                    )
                })
                .filter(|&i| i > 0);
            match inner {
                Some(i) => check_statement(&word(t.get(i)), &t[i..]),
                None => Ok(()),
            }
        }
        "RENAME" if second == "TABLE" || second == "TABLES" => Ok(()),
        "RENAME" => privilege("CREATE USER", format!("RENAME {second}")),
        "CREATE" | "ALTER" | "DROP" => ddl(verb, t),
        "SHOW" => show(t),
        "GRANT" | "REVOKE" => privilege(
            "GRANT OPTION",
            format!("{verb}: myshard's users and their schemas are configured in its shard map"),
        ),
        "FLUSH" => privilege("RELOAD", "FLUSH runs on the backend server"),
        "RESET" => privilege("RELOAD", format!("RESET {second} runs on the backend server")),
        "PURGE" => privilege("BINLOG ADMIN", "PURGE BINARY LOGS runs on the backend server"),
        "SHUTDOWN" | "RESTART" => privilege("SHUTDOWN", format!("{verb} of a backend server")),
        "INSTALL" | "UNINSTALL" => privilege("INSERT on mysql.plugin", format!("{verb} PLUGIN")),
        "CHANGE" | "STOP" => privilege(
            "REPLICATION SLAVE ADMIN",
            format!("{verb} {second} runs on the backend server"),
        ),
        "BINLOG" => privilege("BINLOG REPLAY", "BINLOG events run on the backend server"),
        "KILL" => privilege(
            "CONNECTION ADMIN",
            "KILL acts on myshard's own sessions only; the id is not one of yours",
        ),
        "LOAD" if second == "INDEX" => privilege("RELOAD", "LOAD INDEX INTO CACHE"),
        "LOAD" => load(t),
        "CACHE" => privilege("RELOAD", "CACHE INDEX"),
        "" => not_supported("myshard does not recognise this statement; it was not sent to any shard"),
        other => not_supported(format!(
            "myshard does not recognise statements starting with '{other}'; it was not sent to any shard"
        )),
    }
}

fn load(t: &[Token]) -> Result<(), Denied> {
    if t.iter().take(4).any(|x| x.is_kw("LOCAL")) {
        return not_supported(
            "LOAD DATA LOCAL INFILE is not supported through myshard; send the rows as INSERT statements",
        );
    }
    privilege("FILE", "LOAD DATA INFILE reads files of the backend server")
}

/// CREATE / ALTER / DROP: tables, indexes and views of the logical schema only.
fn ddl(verb: &str, t: &[Token]) -> Result<(), Denied> {
    let mut i = 1;
    // Modifiers before the object kind.
    let mut object = String::new();
    while let Some(tok) = t.get(i) {
        let w = word(Some(tok));
        match w.as_str() {
            "OR" | "REPLACE" | "TEMPORARY" | "UNIQUE" | "FULLTEXT" | "SPATIAL" | "ONLINE"
            | "OFFLINE" | "IGNORE" | "AGGREGATE" => i += 1,
            "DEFINER" => {
                return privilege(
                    "SET USER",
                    format!(
                        "{verb} … DEFINER=: objects run with the rights myshard's clients have"
                    ),
                )
            }
            "ALGORITHM" | "SQL" | "SECURITY" | "INVOKER" | "MERGE" | "UNDEFINED" | "TEMPTABLE" => {
                i += 1;
                if t.get(i).is_some_and(|x| x.is_sym("=")) {
                    i += 2;
                }
            }
            _ => {
                object = w;
                break;
            }
        }
    }
    match object.as_str() {
        "TABLE" | "INDEX" | "VIEW" | "KEY" => Ok(()),
        "PREPARE" if verb == "DROP" => Ok(()),
        "DATABASE" | "SCHEMA" => {
            let name = t
                .iter()
                .skip(i + 1)
                .find(|x| !x.is_kw("IF") && !x.is_kw("NOT") && !x.is_kw("EXISTS"))
                .and_then(|x| x.ident())
                .unwrap_or("")
                .to_string();
            if name.is_empty() {
                return not_supported(format!("{verb} {object} names no database"));
            }
            Err(Denied::Database(name))
        }
        "USER" | "ROLE" => privilege("CREATE USER", format!("{verb} {object}")),
        "SERVER" => privilege("FEDERATED ADMIN", format!("{verb} SERVER")),
        "FUNCTION" if t.iter().any(|x| x.is_kw("SONAME")) => privilege(
            "INSERT on mysql.func",
            "CREATE FUNCTION … SONAME loads a library",
        ),
        "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT" | "PACKAGE" | "SEQUENCE" => {
            not_supported(format!(
                "{verb} {object} is not supported through myshard: it would exist on one shard only"
            ))
        }
        "" => not_supported(format!("{verb} names nothing")),
        other => not_supported(format!(
            "{verb} {other} is not supported through myshard; it was not sent to any shard"
        )),
    }
}

/// SHOW: what describes the client's own schema and session.
fn show(t: &[Token]) -> Result<(), Denied> {
    let mut rest = &t[1..];
    // Modifiers.
    while let Some(w) = rest.first() {
        if w.is_kw("FULL") || w.is_kw("SESSION") || w.is_kw("LOCAL") || w.is_kw("EXTENDED") {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let first = word(rest.first());
    let second = word(rest.get(1));
    let lists_tables = first == "TABLES" || (first == "TABLE" && second == "STATUS");
    if lists_tables && rest.iter().any(|x| x.is_kw("WHERE")) {
        return not_supported(format!(
            "SHOW {} … WHERE is not supported through myshard; use LIKE, or select from information_schema.TABLES",
            if first == "TABLES" { "TABLES" } else { "TABLE STATUS" }
        ));
    }
    match first.as_str() {
        "TABLES" | "DATABASES" | "SCHEMAS" | "VARIABLES" | "STATUS" | "WARNINGS" | "ERRORS"
        | "COUNT" | "COLUMNS" | "FIELDS" | "INDEX" | "INDEXES" | "KEYS" | "TRIGGERS"
        | "COLLATION" | "CHARACTER" | "CHARSET" | "ENGINES" => Ok(()),
        "TABLE" if second == "STATUS" => Ok(()),
        "OPEN" => privilege(
            "PROCESS",
            "SHOW OPEN TABLES lists the backend server's open tables of every database",
        ),
        "CREATE" if matches!(second.as_str(), "TABLE" | "VIEW") => Ok(()),
        "CREATE" if matches!(second.as_str(), "DATABASE" | "SCHEMA") => Ok(()),
        "PROCEDURE" | "FUNCTION" if second == "STATUS" => Ok(()),
        "GLOBAL" => privilege(
            "PROCESS",
            format!("SHOW GLOBAL {second} describes the backend server"),
        ),
        "PROCESSLIST" => privilege(
            "PROCESS",
            "SHOW PROCESSLIST of a backend server; myshard's sessions are listed on its admin port",
        ),
        "GRANTS" | "PRIVILEGES" => not_supported(format!(
            "SHOW {first}: myshard's users and their schemas are configured in its shard map"
        )),
        "MASTER"
        | "SLAVE"
        | "REPLICA"
        | "BINARY"
        | "BINLOG"
        | "RELAYLOG"
        | "ENGINE"
        | "PLUGINS"
        | "PROFILE"
        | "PROFILES"
        | "EVENTS"
        | "USER_STATISTICS"
        | "CLIENT_STATISTICS"
        | "INDEX_STATISTICS"
        | "TABLE_STATISTICS"
        | "ALL"
        | "EXPLAIN"
        | "ANALYZE"
        | "AUTHORS"
        | "CONTRIBUTORS"
        | "LOCALES"
        | "QUERY_RESPONSE_TIME"
        | "WSREP_MEMBERSHIP"
        | "WSREP_STATUS"
        | "PROCEDURE"
        | "FUNCTION"
        | "PACKAGE" => privilege(
            "PROCESS",
            format!(
                "SHOW {first}{}{second} describes the backend server",
                if second.is_empty() { "" } else { " " }
            ),
        ),
        "" => not_supported("SHOW of nothing"),
        other => not_supported(format!(
            "myshard does not recognise SHOW {other}; it was not sent to any shard"
        )),
    }
}

/// What no statement may contain, wherever it appears.
fn check_anywhere(verb: &str, t: &[Token]) -> Result<Checked, Denied> {
    let mut checked = Checked::default();
    let table = |schema: &str, at: usize| Denied::Table {
        command: if verb.is_empty() {
            "SELECT".into()
        } else {
            verb.into()
        },
        schema: schema.to_string(),
        table: t.get(at).and_then(|x| x.ident()).unwrap_or("").to_string(),
    };
    // Quoted or not: a back-quoted `LOAD_FILE` is still a name the server resolves.
    let named = |x: &Token, w: &str| x.ident().is_some_and(|n| n.eq_ignore_ascii_case(w));
    for (i, tok) in t.iter().enumerate() {
        if named(tok, "LOAD_FILE") && t.get(i + 1).is_some_and(|x| x.is_sym("(")) {
            return privilege("FILE", "LOAD_FILE() reads files of the backend server");
        }
        if tok.is_kw("INTO")
            && t.get(i + 1)
                .is_some_and(|x| named(x, "OUTFILE") || named(x, "DUMPFILE"))
        {
            return privilege(
                "FILE",
                "SELECT … INTO OUTFILE writes files on the backend server",
            );
        }
        if let Some(name) = tok.ident() {
            let qualifies = t.get(i + 1).is_some_and(|x| x.is_sym("."));
            if qualifies && name.eq_ignore_ascii_case("information_schema") {
                let listed = t.get(i + 2).and_then(|x| x.ident()).is_some_and(|n| {
                    INFORMATION_SCHEMA_TABLES
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(n))
                });
                if !listed {
                    return Err(table(name, i + 2));
                }
                let logical = t
                    .get(i + 2)
                    .and_then(|x| x.ident())
                    .and_then(crate::catalog::catalog_table);
                if let Some(c) = logical {
                    if !checked.catalog.contains(&c.name) {
                        checked.catalog.push(c.name);
                    }
                }
            }
            if is_backend_schema(name) && qualifies {
                return Err(table(name, i + 2));
            }
        }
    }
    Ok(checked)
}

/// Session variables whose effect reaches past the client's own statements (replication,
/// binary logging, debugging of the backend server).
pub fn is_protected_variable(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "sql_log_bin"
            | "skip_replication"
            | "gtid_domain_id"
            | "gtid_seq_no"
            | "server_id"
            | "pseudo_slave_mode"
            | "pseudo_thread_id"
            | "debug"
            | "debug_dbug"
            | "debug_sync"
            | "sql_slave_skip_counter"
            | "wsrep_on"
            | "binlog_format"
            | "binlog_annotate_row_events"
            | "log_slow_filter"
            | "slow_query_log"
            | "general_log"
    ) || n.starts_with("wsrep_")
        || n.starts_with("innodb_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn verdict(sql: &str) -> Result<(), Denied> {
        check(&tokenize(sql)).map(|_| ())
    }

    #[test]
    fn catalog_reads_are_named() {
        let catalog = |sql: &str| check(&tokenize(sql)).map(|c| c.catalog);
        assert_eq!(
            catalog("SELECT * FROM information_schema.tables t JOIN INFORMATION_SCHEMA.`COLUMNS` c USING (table_name) WHERE t.table_name IN (SELECT table_name FROM information_schema.TABLES)"),
            Ok(vec!["TABLES", "COLUMNS"])
        );
        assert_eq!(
            catalog("SELECT * FROM information_schema.collations"),
            Ok(vec![])
        );
        assert_eq!(catalog("SELECT 'information_schema.tables'"), Ok(vec![]));
    }

    #[test]
    fn application_statements_pass() {
        for sql in [
            "SELECT * FROM orders WHERE id = 1",
            "(SELECT 1) UNION (SELECT 2)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "INSERT INTO t (a) VALUES (1)",
            "REPLACE INTO t (a) VALUES (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "CREATE TABLE t (a int)",
            "CREATE TEMPORARY TABLE t (a int)",
            "CREATE OR REPLACE VIEW v AS SELECT 1",
            "CREATE UNIQUE INDEX i ON t (a)",
            "ALTER TABLE t ADD COLUMN b int",
            "ALTER ONLINE TABLE t ADD COLUMN b int",
            "DROP TABLE IF EXISTS t",
            "TRUNCATE TABLE t",
            "RENAME TABLE a TO b",
            "SHOW FULL COLUMNS FROM t",
            "SHOW CREATE TABLE t",
            "SHOW TABLE STATUS",
            "SHOW INDEX FROM t",
            "DESCRIBE t",
            "EXPLAIN SELECT * FROM t",
            "START TRANSACTION READ ONLY",
            "SELECT information_schema.tables.table_name FROM information_schema.tables",
        ] {
            assert_eq!(verdict(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn backend_reach_is_refused() {
        let table = |sql: &str| matches!(verdict(sql), Err(Denied::Table { .. }));
        assert!(table("SELECT user, host FROM mysql.user"));
        assert!(table("SELECT * FROM `MySQL`.`user`"));
        assert!(table("SELECT * FROM t WHERE a IN (SELECT 1 FROM sys.x)"));
        assert!(table("DESCRIBE performance_schema.threads"));
        assert!(table("SELECT * FROM information_schema.PROCESSLIST"));
        assert!(table("SELECT * FROM INFORMATION_SCHEMA.user_privileges"));
        let privilege = |sql: &str, p: &str| matches!(verdict(sql), Err(Denied::Privilege { privilege, .. }) if privilege == p);
        assert!(privilege("SELECT LOAD_FILE('/etc/passwd')", "FILE"));
        assert!(privilege("SELECT load_file ('/etc/passwd') FROM t", "FILE"));
        assert!(privilege("SELECT `LOAD_FILE`('/etc/passwd')", "FILE"));
        assert!(privilege("SELECT 1 INTO `OUTFILE` '/tmp/x'", "FILE"));
        assert!(privilege(
            "SELECT 1 /*!50000 , LOAD_FILE('/etc/passwd') */",
            "FILE"
        ));
        assert!(privilege("SELECT * FROM t INTO OUTFILE '/tmp/x'", "FILE"));
        assert!(privilege("SELECT 1 INTO DUMPFILE '/tmp/x'", "FILE"));
        assert!(privilege(
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
            "FILE"
        ));
        assert!(privilege("GRANT ALL ON *.* TO x", "GRANT OPTION"));
        assert!(privilege("REVOKE ALL ON *.* FROM x", "GRANT OPTION"));
        assert!(privilege("CREATE USER x IDENTIFIED BY 'y'", "CREATE USER"));
        assert!(privilege("DROP USER root", "CREATE USER"));
        assert!(privilege("CREATE ROLE r", "CREATE USER"));
        assert!(privilege("RENAME USER a TO b", "CREATE USER"));
        assert!(privilege("FLUSH PRIVILEGES", "RELOAD"));
        assert!(privilege("SHUTDOWN", "SHUTDOWN"));
        assert!(privilege(
            "INSTALL SONAME 'ha_connect'",
            "INSERT on mysql.plugin"
        ));
        assert!(privilege(
            "CHANGE MASTER TO master_host='x'",
            "REPLICATION SLAVE ADMIN"
        ));
        assert!(privilege("STOP SLAVE", "REPLICATION SLAVE ADMIN"));
        assert!(privilege("START SLAVE", "REPLICATION SLAVE ADMIN"));
        assert!(privilege("KILL 5", "CONNECTION ADMIN"));
        assert!(privilege("SHOW PROCESSLIST", "PROCESS"));
        assert!(privilege("SHOW FULL PROCESSLIST", "PROCESS"));
        assert!(privilege("SHOW SLAVE STATUS", "PROCESS"));
        assert!(privilege("SHOW BINLOG EVENTS", "PROCESS"));
        assert!(privilege(
            "CREATE DEFINER=root@localhost VIEW v AS SELECT 1",
            "SET USER"
        ));
        assert!(privilege(
            "/*!50000 GRANT ALL ON *.* TO x */",
            "GRANT OPTION"
        ));
        assert_eq!(
            verdict("DROP DATABASE shop"),
            Err(Denied::Database("shop".into()))
        );
        assert_eq!(
            verdict("CREATE SCHEMA IF NOT EXISTS `x`"),
            Err(Denied::Database("x".into()))
        );
        let unsupported = |sql: &str| matches!(verdict(sql), Err(Denied::NotSupported(_)));
        assert!(unsupported("EXECUTE IMMEDIATE 'SELECT 1'"));
        assert!(unsupported("BEGIN NOT ATOMIC SELECT 1; END"));
        assert!(unsupported("CREATE PROCEDURE p() SELECT 1"));
        assert!(unsupported("HELP 'select'"));
        assert!(unsupported("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"));
        assert!(unsupported("SHOW GRANTS"));
        assert!(unsupported(""));
        assert!(unsupported("FROB the shard"));
    }

    #[test]
    fn protected_variables() {
        assert!(is_protected_variable("SQL_LOG_BIN"));
        assert!(is_protected_variable("wsrep_osu_method"));
        assert!(!is_protected_variable("sql_mode"));
        assert!(!is_protected_variable("time_zone"));
    }
}
