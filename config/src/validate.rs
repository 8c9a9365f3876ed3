//! Validation: every problem is reported with the key path it concerns.

use crate::keyspace::check_coverage;
use crate::model::{Config, RuleKind, SchemaConfig};
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

fn check_rules(
    problems: &mut Vec<Problem>,
    i: usize,
    schema: &SchemaConfig,
    shards: &HashSet<String>,
) {
    let mut push = |path: String, reason: String| problems.push(Problem { path, reason });
    let mut rule_names = HashSet::new();
    for (j, rule) in schema.rules.iter().enumerate() {
        let at = format!("schemas[{i}].rules[{j}]");
        if !rule_names.insert(rule.name.as_str()) {
            push(
                format!("{at}.name"),
                format!("duplicate rule '{}'", rule.name),
            );
        }
        if rule.shards.is_empty() && rule.kind != RuleKind::List && rule.kind != RuleKind::Lookup {
            push(
                format!("{at}.shards"),
                "a rule needs at least one shard".into(),
            );
        }
        for (k, s) in rule.shards.iter().enumerate() {
            if !shards.contains(s) {
                push(format!("{at}.shards[{k}]"), format!("unknown shard '{s}'"));
            }
        }
        if rule.tables_per_shard == 0 {
            push(
                format!("{at}.tables_per_shard"),
                "must be at least 1".into(),
            );
        }
        match rule.kind {
            RuleKind::Hash => {
                if !rule.ranges.is_empty() && rule.ranges.len() != rule.shards.len() {
                    push(
                        format!("{at}.ranges"),
                        format!(
                            "{} ranges for {} shards: give one range per shard",
                            rule.ranges.len(),
                            rule.shards.len()
                        ),
                    );
                }
                match rule.keyspace_ranges() {
                    Ok(ranges) => {
                        for p in check_coverage(&ranges) {
                            push(format!("{at}.ranges"), p);
                        }
                    }
                    Err(e) => push(format!("{at}.ranges"), e),
                }
            }
            RuleKind::Range => {
                if rule.bounds.len() + 1 != rule.shards.len() {
                    push(
                        format!("{at}.bounds"),
                        format!("{} bounds for {} shards: a range rule needs one bound fewer than shards", rule.bounds.len(), rule.shards.len()),
                    );
                }
                if rule.bounds.windows(2).any(|w| w[0] >= w[1]) {
                    push(
                        format!("{at}.bounds"),
                        "bounds must be strictly ascending (ranges would overlap)".into(),
                    );
                }
            }
            RuleKind::List => {
                if rule.values.is_empty() {
                    push(
                        format!("{at}.values"),
                        "a list rule needs at least one value".into(),
                    );
                }
                for (v, s) in &rule.values {
                    if !shards.contains(s) {
                        push(
                            format!("{at}.values.{v}"),
                            format!("points to unknown shard '{s}'"),
                        );
                    }
                }
                if let Some(d) = &rule.default {
                    if !shards.contains(d) {
                        push(format!("{at}.default"), format!("unknown shard '{d}'"));
                    }
                }
            }
            RuleKind::Lookup => {
                for (k, s) in &rule.map {
                    if !shards.contains(s) {
                        push(
                            format!("{at}.map.{k}"),
                            format!("lookup entry points to unknown shard '{s}'"),
                        );
                    }
                }
                match rule.fallback.as_deref() {
                    None => {}
                    Some("hash") if rule.shards.is_empty() => push(
                        format!("{at}.fallback"),
                        "fallback \"hash\" needs the rule's shards".into(),
                    ),
                    Some("hash") => {}
                    Some(s) if !shards.contains(s) => push(
                        format!("{at}.fallback"),
                        format!("unknown shard '{s}' (use \"hash\" or a shard name)"),
                    ),
                    Some(_) => {}
                }
            }
            RuleKind::Broadcast => {}
        }
    }
    let mut table_names = HashSet::new();
    for (j, table) in schema.tables.iter().enumerate() {
        let at = format!("schemas[{i}].tables[{j}]");
        if !table_names.insert(table.name.to_ascii_lowercase()) {
            push(
                format!("{at}.name"),
                format!("duplicate table '{}'", table.name),
            );
        }
        match schema.rule(&table.rule) {
            None => push(
                format!("{at}.rule"),
                format!("unknown rule '{}'", table.rule),
            ),
            Some(rule) if rule.kind != RuleKind::Broadcast && table.column.is_none() => push(
                format!("{at}.column"),
                format!(
                    "table '{}' uses {:?} rule '{}' but names no sharding column",
                    table.name, rule.kind, rule.name
                ),
            ),
            Some(_) => {}
        }
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
        if self.server.worker_id.is_some_and(|w| w > 1023) {
            push(
                "server.worker_id".into(),
                "must be between 0 and 1023".into(),
            );
        }
        if !matches!(
            self.backend.replica_policy.as_str(),
            "round_robin" | "least_connections"
        ) {
            push(
                "backend.replica_policy".into(),
                format!(
                    "'{}' is not round_robin or least_connections",
                    self.backend.replica_policy
                ),
            );
        }
        if self.backend.pool_max == 0 {
            push("backend.pool_max".into(), "must be at least 1".into());
        }

        let mut shard_names = HashSet::new();
        for (i, shard) in self.shards.iter().enumerate() {
            if shard.name.is_empty() {
                push(format!("shards[{i}].name"), "must not be empty".into());
            } else if !shard_names.insert(shard.name.clone()) {
                push(
                    format!("shards[{i}].name"),
                    format!("duplicate shard '{}'", shard.name),
                );
            }
            if !shard.replica_weights.is_empty()
                && shard.replica_weights.len() != shard.replicas.len()
            {
                push(
                    format!("shards[{i}].replica_weights"),
                    format!(
                        "{} weights for {} replicas",
                        shard.replica_weights.len(),
                        shard.replicas.len()
                    ),
                );
            }
            if shard.replica_weights.contains(&0) {
                push(
                    format!("shards[{i}].replica_weights"),
                    "weights must be at least 1".into(),
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
            if !shard_names.contains(&schema.default_shard) {
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
        if let Some(admin) = &self.admin {
            check_address(&mut problems, "admin.listen".into(), &admin.listen);
            if admin.listen == self.server.listen {
                problems.push(Problem {
                    path: "admin.listen".into(),
                    reason: "the admin interface needs a port of its own".into(),
                });
            }
        }
        for (i, schema) in self.schemas.iter().enumerate() {
            check_rules(&mut problems, i, schema, &shard_names);
        }

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

    const FOUR_SHARDS: &str = r#"
        [[shards]]
        name = "s0"
        primary = "127.0.0.1:1"
        [[shards]]
        name = "s1"
        primary = "127.0.0.1:2"
        [[shards]]
        name = "s2"
        primary = "127.0.0.1:3"
        [[shards]]
        name = "s3"
        primary = "127.0.0.1:4"
    "#;

    fn map_problems(schema: &str) -> Vec<String> {
        problems(&format!(
            "{FOUR_SHARDS}\n[[schemas]]\nname = \"shop\"\ndefault_shard = \"s0\"\n{schema}"
        ))
    }

    #[test]
    fn overlapping_and_missing_keyspace_ranges_are_named() {
        let p = map_problems(
            r#"
            [[schemas.rules]]
            name = "h"
            kind = "hash"
            shards = ["s0", "s1", "s2"]
            ranges = ["-50", "40-80", "90-"]
            "#,
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("schemas[0].rules[0].ranges:") && l.contains("overlaps")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("schemas[0].rules[0].ranges:") && l.contains("missing")),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_shard_in_rule_and_lookup_entry_pointing_nowhere() {
        let p = map_problems(
            r#"
            [[schemas.rules]]
            name = "tenants"
            kind = "lookup"
            shards = ["s0", "s9"]
            map = { "42" = "s7" }
            fallback = "hash"
            "#,
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("schemas[0].rules[0].shards[1]: unknown shard 's9'")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|l| l.starts_with(
                "schemas[0].rules[0].map.42: lookup entry points to unknown shard 's7'"
            )),
            "{p:?}"
        );
    }

    #[test]
    fn duplicate_table_unknown_rule_and_rule_without_column() {
        let p = map_problems(
            r#"
            [[schemas.rules]]
            name = "h"
            kind = "hash"
            shards = ["s0", "s1"]
            [[schemas.tables]]
            name = "orders"
            rule = "h"
            [[schemas.tables]]
            name = "ORDERS"
            rule = "nope"
            column = "id"
            "#,
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("schemas[0].tables[0].column:")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("schemas[0].tables[1].name: duplicate table")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("schemas[0].tables[1].rule: unknown rule 'nope'")),
            "{p:?}"
        );
    }

    #[test]
    fn range_bounds_must_ascend_and_match_shards() {
        let p = map_problems(
            r#"
            [[schemas.rules]]
            name = "r"
            kind = "range"
            shards = ["s0", "s1", "s2"]
            bounds = [100, 50, 10]
            "#,
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("schemas[0].rules[0].bounds:")
                    && l.contains("one bound fewer")),
            "{p:?}"
        );
        assert!(p.iter().any(|l| l.contains("strictly ascending")), "{p:?}");
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
