//! Where rows live: a rule plus a key value gives a shard and, with table sharding, the
//! physical table index on that shard.

use crate::hash::{keyspace_id_int, keyspace_id_str, weight};
use crate::keys::{KeySet, KeyValue};
use myshard_config::{RuleConfig, RuleKind};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One place a statement runs: a shard and, for table-sharded rules, the physical table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    /// Shard name.
    pub shard: String,
    /// Physical table index (`name_{index}`), when the rule has `tables_per_shard > 1`.
    pub table: Option<u32>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.table {
            Some(t) => write!(f, "{}#{t}", self.shard),
            None => write!(f, "{}", self.shard),
        }
    }
}

/// Why a key cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceError {
    /// No shard accepts the key (list value without default, lookup key without fallback,
    /// non-integer key for a range rule).
    NoShard(String),
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaceError::NoShard(m) => f.write_str(m),
        }
    }
}

fn keyspace_id(rule: &RuleConfig, v: &KeyValue) -> u64 {
    match v.as_int() {
        Some(i) => keyspace_id_int(i),
        None => keyspace_id_str(&v.text(), &rule.collation),
    }
}

fn table_index(rule: &RuleConfig, v: &KeyValue) -> Option<u32> {
    (rule.tables_per_shard > 1)
        .then(|| (keyspace_id(rule, v) % rule.tables_per_shard as u64) as u32)
}

fn hash_shard(rule: &RuleConfig, v: &KeyValue) -> Result<String, PlaceError> {
    let id = keyspace_id(rule, v) as u128;
    let ranges = rule.keyspace_ranges().map_err(PlaceError::NoShard)?;
    ranges
        .iter()
        .position(|r| r.start <= id && id < r.end)
        .and_then(|i| rule.shards.get(i).cloned())
        .ok_or_else(|| {
            PlaceError::NoShard(format!(
                "keyspace id {id:#x} is owned by no shard of rule '{}'",
                rule.name
            ))
        })
}

fn matches_text(rule: &RuleConfig, a: &str, b: &str) -> bool {
    weight(a, &rule.collation) == weight(b, &rule.collation)
}

/// The shard (and table) holding a key value.
pub fn place(rule: &RuleConfig, v: &KeyValue) -> Result<Target, PlaceError> {
    let shard = match rule.kind {
        RuleKind::Hash => hash_shard(rule, v)?,
        RuleKind::Range => {
            let i = v.as_int().ok_or_else(|| {
                PlaceError::NoShard(format!(
                    "range rule '{}' needs an integer key, got {v}",
                    rule.name
                ))
            })?;
            let idx = rule
                .bounds
                .iter()
                .position(|b| i < *b as i128)
                .unwrap_or(rule.bounds.len());
            rule.shards.get(idx).cloned().ok_or_else(|| {
                PlaceError::NoShard(format!("no shard for {v} in rule '{}'", rule.name))
            })?
        }
        RuleKind::List => {
            let text = v.text();
            match rule
                .values
                .iter()
                .find(|(k, _)| matches_text(rule, k, &text))
            {
                Some((_, s)) => s.clone(),
                None => rule.default.clone().ok_or_else(|| {
                    PlaceError::NoShard(format!(
                        "value {v} is not listed in rule '{}' and the rule has no default shard",
                        rule.name
                    ))
                })?,
            }
        }
        RuleKind::Lookup => {
            let text = v.text();
            match rule.map.iter().find(|(k, _)| matches_text(rule, k, &text)) {
                Some((_, s)) => s.clone(),
                None => match rule.fallback.as_deref() {
                    Some("hash") => hash_shard(rule, v)?,
                    Some(shard) => shard.to_string(),
                    None => {
                        return Err(PlaceError::NoShard(format!(
                            "key {v} is not in lookup rule '{}' and the rule has no fallback",
                            rule.name
                        )))
                    }
                },
            }
        }
        RuleKind::Broadcast => rule.shards.first().cloned().unwrap_or_default(),
    };
    Ok(Target {
        shard,
        table: table_index(rule, v),
    })
}

/// Every shard a rule can place rows on, in configuration order, without duplicates.
pub fn rule_shards(rule: &RuleConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &String| {
        if !out.contains(s) {
            out.push(s.clone());
        }
    };
    rule.shards.iter().for_each(&mut add);
    rule.values.values().for_each(&mut add);
    rule.default.iter().for_each(&mut add);
    rule.map.values().for_each(&mut add);
    if let Some(f) = rule.fallback.as_ref().filter(|f| f.as_str() != "hash") {
        add(f);
    }
    out
}

/// Where a DDL or LOCK TABLES of a rule's table runs: every shard of a broadcast rule,
/// every target ([`all_targets`]) of the others.
pub fn every_copy(rule: &RuleConfig) -> Vec<Target> {
    if rule.kind == RuleKind::Broadcast {
        return rule
            .shards
            .iter()
            .map(|s| Target {
                shard: s.clone(),
                table: None,
            })
            .collect();
    }
    all_targets(rule)
}

/// Every target of a rule: each shard, times each physical table.
pub fn all_targets(rule: &RuleConfig) -> Vec<Target> {
    let tables: Vec<Option<u32>> = if rule.tables_per_shard > 1 {
        (0..rule.tables_per_shard).map(Some).collect()
    } else {
        vec![None]
    };
    rule_shards(rule)
        .into_iter()
        .flat_map(|shard| {
            tables.iter().map(move |t| Target {
                shard: shard.clone(),
                table: *t,
            })
        })
        .collect()
}

/// The targets a key set needs, sorted and deduplicated. `Empty` still needs one target
/// (the statement must run somewhere to produce its empty answer).
pub fn targets(rule: &RuleConfig, keys: &KeySet) -> Result<Vec<Target>, PlaceError> {
    let mut out = match keys {
        KeySet::Values(vals) => vals
            .iter()
            .map(|v| place(rule, v))
            .collect::<Result<Vec<_>, _>>()?,
        KeySet::Interval(lo, hi) if rule.kind == RuleKind::Range => {
            let all = all_targets(rule);
            let first = lo.map(|l| {
                rule.bounds
                    .iter()
                    .position(|b| l < *b as i128)
                    .unwrap_or(rule.bounds.len())
            });
            let last = hi.map(|h| {
                rule.bounds
                    .iter()
                    .position(|b| h < *b as i128)
                    .unwrap_or(rule.bounds.len())
            });
            let (a, b) = (first.unwrap_or(0), last.unwrap_or(rule.bounds.len()));
            let wanted: Vec<&String> = rule
                .shards
                .iter()
                .skip(a)
                .take(b + 1 - a.min(b + 1))
                .collect();
            all.into_iter()
                .filter(|t| wanted.contains(&&t.shard))
                .collect()
        }
        KeySet::Empty => all_targets(rule).into_iter().take(1).collect(),
        KeySet::Any | KeySet::Interval(..) => all_targets(rule),
    };
    out.sort_by_key(|t| {
        (
            rule_shards(rule).iter().position(|s| *s == t.shard),
            t.table,
        )
    });
    out.dedup();
    Ok(out)
}

/// The one target of one key value, as [`targets`] places it; `None` when no shard holds
/// it (a value no range or list holds).
pub fn place_one(rule: &RuleConfig, key: &KeyValue) -> Option<Target> {
    // `targets` of one value is that value's place (nothing to sort or merge).
    place(rule, key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rule(kind: RuleKind) -> RuleConfig {
        RuleConfig {
            name: "r".into(),
            kind,
            shards: vec!["s0".into(), "s1".into(), "s2".into(), "s3".into()],
            ranges: vec![],
            bounds: vec![],
            values: BTreeMap::new(),
            default: None,
            map: BTreeMap::new(),
            fallback: None,
            tables_per_shard: 1,
            collation: "utf8mb4_general_ci".into(),
        }
    }

    fn shard_of(r: &RuleConfig, v: KeyValue) -> String {
        place(r, &v).expect("placed").shard
    }

    #[test]
    fn one_value_is_placed_where_targets_places_it() {
        let mut list = rule(RuleKind::List);
        list.values.insert("eu".into(), "s1".into());
        let mut range = rule(RuleKind::Range);
        range.bounds = vec![10, 100, 1000];
        let mut split = rule(RuleKind::Hash);
        split.tables_per_shard = 4;
        let values = [
            KeyValue::Int(-5),
            KeyValue::Int(7),
            KeyValue::Int(150),
            KeyValue::Int(5000),
            KeyValue::Str("EU ".into()),
            KeyValue::Str("42".into()),
            KeyValue::Str("x".into()),
        ];
        for r in [rule(RuleKind::Hash), list, range, split] {
            for v in &values {
                let many = targets(&r, &KeySet::Values(vec![v.clone()])).ok();
                assert_eq!(
                    place_one(&r, v).map(|t| vec![t]),
                    many,
                    "{v} by {:?}",
                    r.kind
                );
            }
        }
    }

    #[test]
    fn hash_spreads_sequential_ids_over_all_shards() {
        let r = rule(RuleKind::Hash);
        let mut counts = BTreeMap::new();
        for i in 0..4000 {
            *counts.entry(shard_of(&r, KeyValue::Int(i))).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 4);
        assert!(counts.values().all(|c| *c > 800), "{counts:?}");
    }

    #[test]
    fn hash_of_numeric_string_equals_hash_of_number() {
        let r = rule(RuleKind::Hash);
        assert_eq!(
            shard_of(&r, KeyValue::Int(42)),
            shard_of(&r, KeyValue::Str("42".into()))
        );
    }

    #[test]
    fn range_rule_uses_exclusive_upper_bounds() {
        let mut r = rule(RuleKind::Range);
        r.bounds = vec![100, 200, 300];
        assert_eq!(shard_of(&r, KeyValue::Int(99)), "s0");
        assert_eq!(shard_of(&r, KeyValue::Int(100)), "s1");
        assert_eq!(shard_of(&r, KeyValue::Int(1000)), "s3");
        let t = targets(&r, &KeySet::Interval(Some(150), Some(250))).expect("targets");
        assert_eq!(
            t.iter().map(|t| t.shard.as_str()).collect::<Vec<_>>(),
            ["s1", "s2"]
        );
    }

    #[test]
    fn list_rule_follows_collation_and_default() {
        let mut r = rule(RuleKind::List);
        r.values.insert("EU".into(), "s1".into());
        assert_eq!(shard_of(&r, KeyValue::Str("eu".into())), "s1");
        assert!(place(&r, &KeyValue::Str("US".into())).is_err());
        r.default = Some("s3".into());
        assert_eq!(shard_of(&r, KeyValue::Str("US".into())), "s3");
    }

    #[test]
    fn lookup_rule_with_hash_fallback() {
        let mut r = rule(RuleKind::Lookup);
        r.map.insert("1001".into(), "s2".into());
        r.fallback = Some("hash".into());
        assert_eq!(shard_of(&r, KeyValue::Int(1001)), "s2");
        assert_eq!(
            shard_of(&r, KeyValue::Int(7)),
            shard_of(&rule(RuleKind::Hash), KeyValue::Int(7))
        );
    }

    #[test]
    fn table_sharding_picks_a_stable_table_index() {
        let mut r = rule(RuleKind::Hash);
        r.tables_per_shard = 8;
        let t = place(&r, &KeyValue::Int(12345)).expect("placed");
        assert!(t.table.is_some_and(|i| i < 8));
        assert_eq!(t, place(&r, &KeyValue::Int(12345)).expect("placed"));
        assert_eq!(all_targets(&r).len(), 32);
    }
}
