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

/// MySQL's LIKE matching with `%` and `_` (and `\` escapes), case-insensitive. Linear in
/// memory and at most pattern × text steps, without recursion: a client's pattern of any
/// number of `%` neither hangs nor overflows the stack.
pub fn like_match(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Part {
        Any,
        One,
        Char(char),
    }
    let fold = |c: char| c.to_lowercase().next().unwrap_or(c);
    let mut parts: Vec<Part> = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let part = match c {
            '%' => Part::Any,
            '_' => Part::One,
            '\\' => Part::Char(chars.next().map_or('\\', fold)),
            c => Part::Char(fold(c)),
        };
        if !(part == Part::Any && parts.last() == Some(&Part::Any)) {
            parts.push(part);
        }
    }
    let t: Vec<char> = text.chars().map(fold).collect();
    let (mut p, mut i) = (0, 0);
    // Where to resume after the last `%`: the part after it, and the text it has taken.
    let mut resume: Option<(usize, usize)> = None;
    while i < t.len() {
        match parts.get(p) {
            Some(Part::One) => {
                p += 1;
                i += 1;
            }
            Some(Part::Char(c)) if *c == t[i] => {
                p += 1;
                i += 1;
            }
            Some(Part::Any) => {
                p += 1;
                resume = Some((p, i));
            }
            _ => match resume {
                Some((after, taken)) => {
                    p = after;
                    i = taken + 1;
                    resume = Some((after, taken + 1));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|x| *x == Part::Any)
}

/// SHOW [FULL] PROCESSLIST: myshard's client sessions, those of `user` only when given.
pub fn processlist(
    sessions: &[std::sync::Arc<crate::sessions::Entry>],
    user: Option<&str>,
    full: bool,
) -> (Vec<Column>, Vec<Vec<Value>>) {
    let cols = vec![
        int_column("Id"),
        text_column("User"),
        text_column("Host"),
        text_column("db"),
        text_column("Command"),
        int_column("Time"),
        text_column("State"),
        text_column("Info"),
        text_column("Progress"),
    ];
    let text = |s: &str| Value::Bytes(s.as_bytes().to_vec());
    let rows = sessions
        .iter()
        .filter(|e| user.is_none_or(|u| e.user == u && !e.admin))
        .map(|e| {
            let (db, command, time, info) = e.activity();
            let info = info.map(|i| match i.char_indices().nth(100) {
                Some((cut, _)) if !full => i[..cut].to_string(),
                _ => i,
            });
            vec![
                text(&e.id.to_string()),
                text(&e.user),
                text(&e.host),
                db.as_deref().map_or(Value::NULL, text),
                text(command),
                text(&time.to_string()),
                text(""),
                info.as_deref().map_or(Value::NULL, text),
                text("0.000"),
            ]
        })
        .collect();
    (cols, rows)
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

/// The rows whose first column matches a SHOW statement's LIKE pattern (all without one).
pub fn filter_like(mut rows: Vec<Vec<Value>>, like: Option<&str>) -> Vec<Vec<Value>> {
    if let Some(p) = like {
        rows.retain(|row| match row.first() {
            Some(Value::Bytes(b)) => like_match(p, &String::from_utf8_lossy(b)),
            _ => false,
        });
    }
    rows
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
    out = filter_like(out, like);
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
    let name = |r: &Vec<Value>| match r.first() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    };
    out.sort_by_key(name);
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
        assert!(like_match("%b%d", "abcd"));
        assert!(!like_match("%b%d", "abcde"));
        assert!(like_match("%", ""));
        assert!(!like_match("_", ""));
        assert!(like_match("a%%c", "abbbc"));
        assert!(like_match("ÉT%", "été"));
    }

    #[test]
    fn like_is_linear_for_many_wildcards() {
        let p = format!("{}x", "%".repeat(1_000_000));
        assert!(!like_match(&p, "shop_orders_with_a_long_name"));
        let p = "%_".repeat(100_000);
        assert!(!like_match(&p, "short"));
        assert!(like_match(&"%_".repeat(3), "abc"));
    }
}
