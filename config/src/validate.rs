//! Validation: every problem is reported with the key path it concerns.

use crate::model::Config;
use std::collections::HashSet;
use std::fmt;

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `shards[1].primary`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    /// The TOML is malformed or has unknown or mistyped keys.
    #[error("invalid configuration: {message}")]
    Parse { message: String },
    /// The configuration parsed but is inconsistent.
    #[error("invalid configuration:\n{}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_address(problems: &mut Vec<Problem>, path: String, addr: &str) {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        problems.push(Problem {
            path,
            reason: format!("'{addr}' is not a host:port address"),
        });
    }
}

impl Config {
    /// Checks the configuration for consistency and returns every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut push = |path: String, reason: String| problems.push(Problem { path, reason });

        if self.server.max_connections == 0 {
            push("server.max_connections".into(), "must be at least 1".into());
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            push(
                "server.tls_cert".into(),
                "tls_cert and tls_key must be set together".into(),
            );
        }
        if self.backend.pool_max == 0 {
            push("backend.pool_max".into(), "must be at least 1".into());
        }

        let mut shard_names = HashSet::new();
        for (i, shard) in self.shards.iter().enumerate() {
            if shard.name.is_empty() {
                push(format!("shards[{i}].name"), "must not be empty".into());
            } else if !shard_names.insert(shard.name.as_str()) {
                push(
                    format!("shards[{i}].name"),
                    format!("duplicate shard '{}'", shard.name),
                );
            }
            if shard.pool_max == Some(0) {
                push(format!("shards[{i}].pool_max"), "must be at least 1".into());
            }
        }

        let mut schema_names = HashSet::new();
        for (i, schema) in self.schemas.iter().enumerate() {
            if !schema_names.insert(schema.name.as_str()) {
                push(
                    format!("schemas[{i}].name"),
                    format!("duplicate schema '{}'", schema.name),
                );
            }
            if !shard_names.contains(schema.default_shard.as_str()) {
                push(
                    format!("schemas[{i}].default_shard"),
                    format!("unknown shard '{}'", schema.default_shard),
                );
            }
        }

        let mut user_names = HashSet::new();
        for (i, user) in self.users.iter().enumerate() {
            if !user_names.insert(user.name.as_str()) {
                push(
                    format!("users[{i}].name"),
                    format!("duplicate user '{}'", user.name),
                );
            }
            for (j, schema) in user.schemas.iter().enumerate() {
                if !schema_names.contains(schema.as_str()) {
                    push(
                        format!("users[{i}].schemas[{j}]"),
                        format!("unknown schema '{schema}'"),
                    );
                }
            }
        }

        for (i, shard) in self.shards.iter().enumerate() {
            check_address(
                &mut problems,
                format!("shards[{i}].primary"),
                &shard.primary,
            );
            for (j, r) in shard.replicas.iter().enumerate() {
                check_address(&mut problems, format!("shards[{i}].replicas[{j}]"), r);
            }
        }
        check_address(&mut problems, "server.listen".into(), &self.server.listen);

        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml_str(text) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn valid_minimal_config_loads() {
        let p = problems(
            r#"
            [[shards]]
            name = "s0"
            primary = "127.0.0.1:3306"
            [[schemas]]
            name = "shop"
            default_shard = "s0"
            [[users]]
            name = "app"
            password = "app"
            schemas = ["shop"]
            "#,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let p = problems("[server]\nlisten = '127.0.0.1:1'\nlisen = 'x'\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("unknown field `lisen`"), "{p:?}");
    }

    #[test]
    fn unknown_default_shard_and_schema_are_named_with_paths() {
        let p = problems(
            r#"
            [[shards]]
            name = "s0"
            primary = "127.0.0.1:3306"
            [[schemas]]
            name = "shop"
            default_shard = "s9"
            [[users]]
            name = "app"
            schemas = ["nope"]
            "#,
        );
        assert!(p
            .iter()
            .any(|l| l.starts_with("schemas[0].default_shard: unknown shard 's9'")));
        assert!(p
            .iter()
            .any(|l| l.starts_with("users[0].schemas[0]: unknown schema 'nope'")));
    }

    #[test]
    fn duplicate_shard_and_bad_address_are_reported_together() {
        let p = problems(
            r#"
            [[shards]]
            name = "s0"
            primary = "127.0.0.1:3306"
            [[shards]]
            name = "s0"
            primary = "nowhere"
            "#,
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("shards[1].name: duplicate shard")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|l| l.starts_with("shards[1].primary:")),
            "{p:?}"
        );
    }
}
