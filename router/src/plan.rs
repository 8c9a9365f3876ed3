//! The router's output: which shards, which role, what kind of statement.

use serde::{Deserialize, Serialize};
use std::fmt;

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
            StatementKind::Other => "other",
        }
    }
}

/// Where a statement runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePlan {
    /// The statement's class.
    pub kind: StatementKind,
    /// Primary or replica.
    pub role: Role,
    /// Names of the shards that run it; one for the single-shard fast path.
    pub shards: Vec<String>,
    /// The physical database on those shards.
    pub database: Option<String>,
}

impl RoutePlan {
    /// A statement for exactly one shard.
    pub fn single(kind: StatementKind, role: Role, shard: &str, database: Option<&str>) -> Self {
        RoutePlan {
            kind,
            role,
            shards: vec![shard.to_string()],
            database: database.map(str::to_string),
        }
    }

    /// Whether exactly one shard runs it.
    pub fn is_single(&self) -> bool {
        self.shards.len() == 1
    }
}

impl fmt::Display for RoutePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {:?} [{}]",
            self.kind.label(),
            self.role,
            self.shards.join(", ")
        )?;
        if let Some(db) = &self.database {
            write!(f, " db={db}")?;
        }
        Ok(())
    }
}
