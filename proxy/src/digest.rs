//! Query digests (statements with their literals replaced by `?`) with per-digest statistics,
//! and the slow-query log.

use myshard_router::lexer::{tokenize, Token};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// The normalized form of a statement: literals become `?`, lists of them `?+`.
pub fn digest(sql: &str) -> String {
    digest_tokens(&tokenize(sql))
}

/// [`digest`] of a statement's tokens.
pub fn digest_tokens(tokens: &[Token]) -> String {
    let pieces: Vec<String> = tokens
        .iter()
        .map(|t| match t {
            Token::Str(_) | Token::Num(_) => "?".to_string(),
            Token::Word(w) if w.starts_with('@') => w.clone(),
            Token::Word(w) => w.to_ascii_uppercase(),
            Token::Quoted(q) => format!("`{q}`"),
            Token::Sym(s) => s.clone(),
        })
        .collect();
    // Collapse `?, ?, …` into `?+`.
    let mut collapsed: Vec<String> = Vec::with_capacity(pieces.len());
    let mut i = 0;
    while i < pieces.len() {
        if pieces[i] == "?" {
            let mut j = i + 1;
            while j + 1 < pieces.len() && pieces[j] == "," && pieces[j + 1] == "?" {
                j += 2;
            }
            collapsed.push(if j > i + 1 {
                "?+".to_string()
            } else {
                "?".to_string()
            });
            i = j;
        } else {
            collapsed.push(pieces[i].clone());
            i += 1;
        }
    }
    let mut out = String::with_capacity(256);
    for p in collapsed {
        let tight_before = matches!(p.as_str(), "," | ")" | ".");
        if !out.is_empty() && !tight_before && !out.ends_with(['(', '.']) {
            out.push(' ');
        }
        out.push_str(&p);
        if out.len() > 1024 {
            out.push_str(" …");
            break;
        }
    }
    out
}

/// Statistics of one digest.
#[derive(Debug, Clone, Default)]
pub struct DigestStats {
    /// Executions.
    pub count: u64,
    /// Total time.
    pub total: Duration,
    /// Longest execution.
    pub max: Duration,
    /// Rows returned or affected.
    pub rows: u64,
    /// Shard executions (a scatter to 4 shards counts 4).
    pub shards: u64,
}

/// One slow statement.
#[derive(Debug, Clone)]
pub struct SlowQuery {
    /// The JSON line written to the log.
    pub json: String,
}

/// Digests and the slow-query log.
pub struct Observer {
    digests: dashmap::DashMap<String, DigestStats>,
    slow: Mutex<VecDeque<SlowQuery>>,
}

/// Digests kept at most (beyond this, new digests are not tracked).
const MAX_DIGESTS: usize = 10_000;

impl Observer {
    /// An empty observer.
    pub fn new() -> Self {
        Observer {
            digests: dashmap::DashMap::new(),
            slow: Mutex::new(VecDeque::new()),
        }
    }

    /// Records one statement.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        d: String,
        elapsed: Duration,
        rows: u64,
        shards: &[String],
        user: &str,
        slow_threshold: Duration,
        slow_log: Option<&std::path::Path>,
    ) {
        // Per-digest locks only: sessions recording different digests never wait on each
        // other.
        let add = |e: &mut DigestStats| {
            e.count += 1;
            e.total += elapsed;
            e.max = e.max.max(elapsed);
            e.rows += rows;
            e.shards += shards.len() as u64;
        };
        if let Some(mut e) = self.digests.get_mut(&d) {
            add(&mut e);
        } else if self.digests.len() < MAX_DIGESTS {
            add(&mut self.digests.entry(d.clone()).or_default());
        }
        if elapsed >= slow_threshold {
            let json = serde_json::json!({
                "time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
                "digest": d,
                "duration_ms": elapsed.as_secs_f64() * 1000.0,
                "shards": shards,
                "rows": rows,
                "user": user,
            })
            .to_string();
            if let Some(path) = slow_log {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = writeln!(f, "{json}");
                }
            }
            if let Ok(mut q) = self.slow.lock() {
                if q.len() >= 1000 {
                    q.pop_front();
                }
                q.push_back(SlowQuery { json });
            }
        }
    }

    /// Every digest with its statistics, busiest first.
    pub fn digests(&self) -> Vec<(String, DigestStats)> {
        let mut v: Vec<(String, DigestStats)> = self
            .digests
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        v.sort_by_key(|d| std::cmp::Reverse(d.1.total));
        v
    }

    /// The most recent slow statements, oldest first.
    pub fn slow_queries(&self) -> Vec<SlowQuery> {
        self.slow
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Default for Observer {
    fn default() -> Self {
        Observer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::digest;

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            digest("select * from t where id = 5 and name = 'x'"),
            "SELECT * FROM T WHERE ID = ? AND NAME = ?"
        );
        assert_eq!(
            digest("SELECT a FROM t WHERE id IN (1, 2, 3)"),
            "SELECT A FROM T WHERE ID IN (?+)"
        );
        assert_eq!(
            digest("SELECT a FROM t WHERE id IN (1, 2)"),
            digest("SELECT a FROM t WHERE id IN (7,8,9,10)")
        );
    }
}
