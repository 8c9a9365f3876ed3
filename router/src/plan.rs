//! The router's output: which shards, which role, what kind of statement, and what the
//! rewriter must change.

use crate::placement::Target;
use serde::{Deserialize, Serialize};
use sqlparser::ast::Statement;
use std::fmt;
use std::sync::Arc;

/// Which server of a shard runs a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The primary: writes, locking reads, transactions.
    Primary,
    /// A replica, when one is healthy; otherwise the primary.
    Replica,
}

/// A statement's class, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatementKind {
    /// SELECT, and other statements that only read.
    Read,
    /// INSERT, UPDATE, DELETE, REPLACE, LOAD.
    Write,
    /// CREATE, ALTER, DROP, TRUNCATE, RENAME.
    Ddl,
    /// `LOCK TABLES`: run on every shard of its tables, in the shard map's order, outside
    /// any transaction (it commits the open one, as in MySQL).
    Lock,
    /// Anything else (SHOW, DESCRIBE, CALL, …).
    Other,
}

impl StatementKind {
    /// Classifies by the statement's first keyword.
    pub fn from_first_word(word: &str) -> StatementKind {
        match word.to_ascii_uppercase().as_str() {
            "SELECT" | "WITH" | "VALUES" | "TABLE" | "(" => StatementKind::Read,
            "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD" => StatementKind::Write,
            "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "RENAME" => StatementKind::Ddl,
            _ => StatementKind::Other,
        }
    }

    /// Lower-case label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Ddl => "ddl",
            StatementKind::Lock => "lock",
            StatementKind::Other => "other",
        }
    }
}

/// How the per-shard SQL is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rewrite {
    /// The client's SQL, byte for byte.
    Verbatim,
    /// The parsed statement with logical names replaced by physical ones per target.
    Rename,
    /// A multi-row INSERT split by target: `rows[i]` is the index into `targets` of row i.
    SplitInsert {
        /// Target index of each row.
        rows: Vec<usize>,
    },
    /// SQL the planner wrote for each target (`sql[i]` for `targets[i]`), from names it
    /// quoted itself: a statement whose per-shard form is not a rename of the client's
    /// (`LOCK TABLES` of every physical table a shard holds).
    PerTarget {
        /// One statement per target.
        sql: Vec<String>,
    },
}

/// How the executor combines the targets' answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// One target: its answer as is.
    Single,
    /// Rows of every target in target order, then OFFSET/LIMIT applied by myshard.
    Concat {
        /// Rows to skip.
        offset: u64,
        /// Rows to return at most.
        limit: Option<u64>,
    },
    /// Writes and DDL on several targets: affected rows summed, one OK.
    SumAffected,
    /// Reads of a broadcast table or checks that every target agrees: first target's answer.
    First,
    /// A SELECT whose rows must be aggregated, de-duplicated or sorted across targets; the
    /// rewriter builds the merge from the statement.
    Merge,
}

/// Ids myshard generated for an auto-increment column the INSERT omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedIds {
    /// The column.
    pub column: String,
    /// Whether the column was missing from the column list (and must be added).
    pub add_column: bool,
    /// Per row: the generated id, or None where the row gave its own value.
    pub values: Vec<Option<i64>>,
}

/// Where a statement runs and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutePlan {
    /// The statement's class.
    pub kind: StatementKind,
    /// Primary or replica.
    pub role: Role,
    /// Where it runs, in shard order.
    pub targets: Vec<Target>,
    /// The physical database on those shards.
    pub database: Option<String>,
    /// How each target's SQL is made.
    pub rewrite: Rewrite,
    /// How the answers are combined.
    pub combine: Combine,
    /// Logical tables to rename to their physical names (`name_{index}`) per target.
    pub sharded_tables: Vec<String>,
    /// Qualifiers naming a logical schema, to replace by the physical database.
    pub schema_renames: Vec<(String, String)>,
    /// Ids generated for this INSERT, if any.
    pub generated: Option<GeneratedIds>,
    /// The shard was forced by a `/* myshard:shard=… */` hint.
    pub hinted: bool,
    /// Logical schemas other than the session's that the statement names (the session must
    /// be allowed to use each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    /// `information_schema` tables the read names that myshard shows logically
    /// ([`crate::catalog`]): their rows are gathered from the shards and put in as literal
    /// rows before the statement runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalog: Vec<String>,
    /// The parsed statement, when the rewriter needs it.
    #[serde(skip)]
    pub ast: Option<Arc<Statement>>,
    /// What the targets were decided by, as far as a plan cache may re-derive them.
    #[serde(skip)]
    pub placed_by: Placed,
}

/// What decided a plan's one target: whether another statement of the same shape (same text
/// but for its literals) gets the same plan, and if not, how its target follows from its
/// literals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Placed {
    /// Something a plan cache must not reuse (the default).
    #[default]
    Unknown,
    /// Nothing in the statement's literals: every statement of its shape has this plan.
    Fixed,
    /// One sharding-key value: the statement's `slot`-th literal (in source order, as
    /// [`crate::text::literal_shape`] lists them) placed by rule `rule`. Statements of the
    /// shape differ only in that target.
    Key {
        /// The logical schema of the rule.
        schema: String,
        /// The rule's name.
        rule: String,
        /// Index of the key's literal.
        slot: usize,
    },
}

impl RoutePlan {
    /// A statement for exactly one shard, sent verbatim.
    pub fn single(kind: StatementKind, role: Role, shard: &str, database: Option<&str>) -> Self {
        RoutePlan {
            kind,
            role,
            targets: vec![Target {
                shard: shard.to_string(),
                table: None,
            }],
            database: database.map(str::to_string),
            rewrite: Rewrite::Verbatim,
            combine: Combine::Single,
            sharded_tables: Vec::new(),
            schema_renames: Vec::new(),
            generated: None,
            hinted: false,
            schemas: Vec::new(),
            catalog: Vec::new(),
            ast: None,
            placed_by: Placed::Unknown,
        }
    }

    /// The first id this statement generated (the OK packet's last-insert-id).
    pub fn first_generated_id(&self) -> Option<i64> {
        self.generated
            .as_ref()
            .and_then(|g| g.values.iter().flatten().next().copied())
    }
}

impl fmt::Display for Combine {
    /// How the targets' answers combine, in words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Combine::Single => f.write_str("single target"),
            Combine::Concat { offset, limit } => {
                f.write_str("concat")?;
                if *offset > 0 {
                    write!(f, ", offset {offset}")?;
                }
                match limit {
                    Some(l) => write!(f, ", limit {l}"),
                    None => Ok(()),
                }
            }
            Combine::SumAffected => f.write_str("sum affected rows"),
            Combine::First => f.write_str("first target's answer"),
            Combine::Merge => f.write_str("merge"),
        }
    }
}

impl fmt::Display for RoutePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let targets: Vec<String> = self.targets.iter().map(|t| t.to_string()).collect();
        let role = match self.role {
            Role::Primary => "primary",
            Role::Replica => "replica",
        };
        write!(
            f,
            "{} on {role} [{}], {}",
            self.kind.label(),
            targets.join(", "),
            self.combine
        )?;
        if let Some(db) = &self.database {
            write!(f, ", database {db}")?;
        }
        if !self.catalog.is_empty() {
            write!(
                f,
                " over the logical information_schema.{}",
                self.catalog.join(", information_schema.")
            )?;
        }
        Ok(())
    }
}
