//! Results myshard computes itself: SHOW DATABASES, SHOW WARNINGS, and the variables whose
//! value must describe myshard rather than the shard behind it.

use crate::server::Shared;
use crate::session::Diagnostic;
use myshard_config::{Config, UserConfig};
use mysql_common::packets::Column;
use mysql_common::value::Value;

pub use crate::protocol::resultset::{int_column, text_column};

/// `@@version_comment` as myshard reports it.
pub const VERSION_COMMENT: &str = "myshard sharding proxy";

/// The value myshard reports for a system variable, when it differs from the shard's.
pub fn override_variable(shared: &Shared, name: &str) -> Option<String> {
    match name {
        "version" => Some(shared.config().server.version.clone()),
        "version_comment" => Some(VERSION_COMMENT.into()),
        // A client that sees the shard's socket path would connect to the shard directly
        // (mysql_async does for loopback addresses), bypassing myshard.
        "socket" => Some(String::new()),
        _ => None,
    }
}

/// MySQL's LIKE matching with `%` and `_` (and `\` escapes), case-insensitive.
pub fn like_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                !t.is_empty() && rest[0].eq_ignore_ascii_case(&t[0]) && go(&rest[1..], &t[1..])
            }
            Some((c, rest)) => !t.is_empty() && c.eq_ignore_ascii_case(&t[0]) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// SHOW DATABASES: the logical schemas this user may use.
pub fn show_databases(
    config: &Config,
    user: &UserConfig,
    like: Option<&str>,
) -> (Vec<Column>, Vec<Vec<Value>>) {
    let label = match like {
        Some(p) => format!("Database ({p})"),
        None => "Database".to_string(),
    };
    let mut names: Vec<&str> = config
        .schemas
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| user.schemas.iter().any(|u| u == n))
        .filter(|n| like.is_none_or(|p| like_match(p, n)))
        .collect();
    names.sort_unstable();
    let rows = names
        .into_iter()
        .map(|n| vec![Value::Bytes(n.as_bytes().to_vec())])
        .collect();
    (vec![text_column(&label)], rows)
}

/// SHOW TABLES of a sharded schema: the default shard's tables without the physical tables
/// of table-sharded rules (`name_N`), plus every logical table of the shard map.
pub fn logical_tables(
    schema: &myshard_config::SchemaConfig,
    rows: Vec<Vec<Value>>,
    full: bool,
    like: Option<&str>,
) -> Vec<Vec<Value>> {
    let physical_of = |name: &str| {
        schema.tables.iter().any(|t| {
            schema.rule(&t.rule).is_some_and(|r| r.tables_per_shard > 1)
                && name
                    .strip_prefix(&t.name)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
    };
    let mut out: Vec<Vec<Value>> = rows
        .into_iter()
        .filter(|r| match r.first() {
            Some(Value::Bytes(b)) => !physical_of(&String::from_utf8_lossy(b)),
            _ => true,
        })
        .collect();
    for t in &schema.tables {
        let present = out.iter().any(|r| matches!(r.first(), Some(Value::Bytes(b)) if b.eq_ignore_ascii_case(t.name.as_bytes())));
        if !present && like.is_none_or(|p| like_match(p, &t.name)) {
            let mut row = vec![Value::Bytes(t.name.clone().into_bytes())];
            if full {
                row.push(Value::Bytes(b"BASE TABLE".to_vec()));
            }
            out.push(row);
        }
    }
    out.sort_by(|a, b| format!("{:?}", a.first()).cmp(&format!("{:?}", b.first())));
    out
}

/// SHOW WARNINGS / SHOW ERRORS from the session's last diagnostics.
pub fn show_warnings(diags: &[Diagnostic], errors_only: bool) -> (Vec<Column>, Vec<Vec<Value>>) {
    let cols = vec![
        text_column("Level"),
        int_column("Code"),
        text_column("Message"),
    ];
    let rows = diags
        .iter()
        .filter(|d| !errors_only || d.level == "Error")
        .map(|d| {
            vec![
                Value::Bytes(d.level.clone().into_bytes()),
                Value::Bytes(d.code.to_string().into_bytes()),
                Value::Bytes(d.message.clone().into_bytes()),
            ]
        })
        .collect();
    (cols, rows)
}

/// Reads one row of a shard's SHOW WARNINGS.
pub fn diagnostic_from_row(row: &[Value]) -> Option<Diagnostic> {
    let text = |v: &Value| match v {
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    Some(Diagnostic {
        level: text(row.first()?)?,
        code: text(row.get(1)?)?.parse().ok()?,
        message: text(row.get(2)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_handles_wildcards_and_case() {
        assert!(like_match("sh%", "Shop"));
        assert!(like_match("s_op", "shop"));
        assert!(!like_match("s_op", "sop"));
        assert!(like_match("a\\%", "a%"));
        assert!(!like_match("a\\%", "ab"));
    }
}
