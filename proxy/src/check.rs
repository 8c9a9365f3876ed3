//! `myshard check FILE [--schema]` beyond the file itself: the backend account each shard's
//! primary gives myshard (a warning for SUPER, FILE or GRANT OPTION, which myshard never
//! needs), and with `--schema` the drift report of every rule-placed table.

use crate::drift::{key_findings, schema_drift, ShardReader};
use crate::error::ProxyError;
use crate::executor;
use myshard_config::Config;
use mysql_async::Conn;
use mysql_common::value::Value;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

/// The privileges of `SHOW GRANTS` lines that reach past what myshard needs.
pub(crate) fn risky_grants(lines: &[String]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut add = |p: &'static str| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for line in lines {
        let upper = line.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("GRANT ") else {
            continue;
        };
        let global = rest.contains(" ON *.* TO ");
        let privileges = rest.split(" ON ").next().unwrap_or("");
        for p in privileges.split(',').map(str::trim) {
            match p {
                "ALL" | "ALL PRIVILEGES" if global => {
                    add("SUPER");
                    add("FILE");
                }
                "SUPER" if global => add("SUPER"),
                "FILE" if global => add("FILE"),
                _ => {}
            }
        }
        if upper.contains("WITH GRANT OPTION") {
            add("GRANT OPTION");
        }
    }
    out
}

/// Connections of its own to every shard primary, opened on first use.
struct Direct<'a> {
    config: &'a Config,
    conns: HashMap<String, Conn>,
}

impl Direct<'_> {
    async fn conn(&mut self, shard: &str) -> Result<&mut Conn, ProxyError> {
        if !self.conns.contains_key(shard) {
            let Some(cfg) = self.config.shard(shard) else {
                return Err(ProxyError::ShardUnavailable {
                    shard: shard.to_string(),
                    reason: "not in the configuration".into(),
                });
            };
            let user = cfg.user.as_deref().unwrap_or(&self.config.backend.user);
            let password = cfg
                .password
                .as_deref()
                .unwrap_or(&self.config.backend.password);
            let opts = crate::backend::health::opts(&cfg.primary, user, password);
            let timeout = Duration::from_millis(self.config.backend.connect_timeout_ms.max(100));
            let conn = match tokio::time::timeout(timeout, Conn::new(opts)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(ProxyError::from_driver(shard, e)),
                Err(_) => {
                    return Err(ProxyError::ShardUnavailable {
                        shard: shard.to_string(),
                        reason: format!(
                            "no answer from {} within {} ms",
                            cfg.primary,
                            timeout.as_millis()
                        ),
                    })
                }
            };
            self.conns.insert(shard.to_string(), conn);
        }
        self.conns
            .get_mut(shard)
            .ok_or_else(|| ProxyError::ShardUnavailable {
                shard: shard.to_string(),
                reason: "no connection".into(),
            })
    }
}

impl ShardReader for Direct<'_> {
    async fn read(&mut self, shard: &str, sql: &str) -> Result<Vec<Vec<Value>>, ProxyError> {
        let conn = self.conn(shard).await?;
        executor::collect(conn, shard, sql)
            .await
            .map(|(_, rows)| rows)
    }
}

/// Checks the shards of a valid configuration; prints warnings and (with `schema`) the drift
/// report. Fails when `schema` is asked for and a table differs or a shard cannot be read.
pub(crate) fn run(config: &Config, schema: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut direct = Direct {
            config,
            conns: HashMap::new(),
        };
        let mut unreachable = false;
        for shard in &config.shards {
            let user = shard.user.as_deref().unwrap_or(&config.backend.user);
            match direct.read(&shard.name, "SHOW GRANTS").await {
                Ok(rows) => {
                    let lines: Vec<String> = rows
                        .iter()
                        .filter_map(|r| match r.first() {
                            Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                            _ => None,
                        })
                        .collect();
                    let risky = risky_grants(&lines);
                    if !risky.is_empty() {
                        eprintln!(
                            "warning: shard '{}' ({}): backend user '{user}' has {}; myshard needs none of them (README, \"The backend account\")",
                            shard.name,
                            shard.primary,
                            risky.join(", ")
                        );
                    }
                }
                Err(e) => {
                    unreachable = true;
                    eprintln!(
                        "warning: shard '{}' ({}): cannot read the backend account's grants: {}",
                        shard.name,
                        shard.primary,
                        e.to_err().2
                    );
                }
            }
        }
        if !schema {
            return ExitCode::SUCCESS;
        }
        if unreachable {
            eprintln!("schema check: not every shard could be reached");
            return ExitCode::from(1);
        }
        let mut mistakes = 0;
        match key_findings(config, &mut direct).await {
            Ok(found) => {
                for w in &found.warnings {
                    eprintln!("warning: {w}");
                }
                for e in &found.errors {
                    eprintln!("error: {e}");
                }
                mistakes = found.errors.len();
            }
            Err(e) => eprintln!(
                "warning: cannot read the tables' columns and unique keys: {}",
                e.to_err().2
            ),
        }
        match schema_drift(config, &mut direct).await {
            Ok(rows) => {
                let mut drifted = 0;
                for [schema, table, status, detail] in &rows {
                    if status != "same" {
                        drifted += 1;
                    }
                    if detail.is_empty() {
                        println!("{schema}.{table}: {status}");
                    } else {
                        println!("{schema}.{table}: {status}: {detail}");
                    }
                }
                if drifted > 0 {
                    eprintln!("schema check: {drifted} table(s) differ between their shards");
                }
                if mistakes > 0 {
                    eprintln!("schema check: {mistakes} table(s) lack their sharding column");
                }
                if drifted == 0 && mistakes == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("schema check failed: {}", e.to_err().2);
                ExitCode::from(1)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_beyond_what_myshard_needs_are_named() {
        let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            risky_grants(&lines(&[
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA unix_socket WITH GRANT OPTION",
                "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
            ])),
            vec!["SUPER", "FILE", "GRANT OPTION"]
        );
        assert_eq!(
            risky_grants(&lines(&[
                "GRANT SLAVE MONITOR ON *.* TO `myshard`@`%` IDENTIFIED BY PASSWORD '*X'",
                "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON `shop`.* TO `myshard`@`%`",
            ])),
            Vec::<&str>::new()
        );
        assert_eq!(
            risky_grants(&lines(&[
                "GRANT FILE, SUPER ON *.* TO `m`@`%`",
                "GRANT ALL PRIVILEGES ON `shop`.* TO `m`@`%`",
            ])),
            vec!["FILE", "SUPER"]
        );
    }
}
