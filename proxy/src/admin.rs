//! The admin interface: a MySQL-protocol port of its own, with its own credentials, where DBAs
//! inspect and steer the running proxy with the `mariadb`/`mysql` client.

use crate::error::{codes, ProxyError};
use crate::executor::{self, Framing};
use crate::local::{int_column, text_column};
use crate::protocol::PacketStream;
use crate::session::{ClientResult, Session};
use myshard_config::{Config, ConfigError};
use myshard_router::lexer::{tokenize, Token};
use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::value::Value;

fn text(s: impl Into<String>) -> Value {
    Value::Bytes(s.into().into_bytes())
}

fn num(n: impl ToString) -> Value {
    Value::Bytes(n.to_string().into_bytes())
}

const HELP: &str = "admin commands: SHOW PROTECTION, SET SHEDDING ON|OFF, ADD RATE LIMIT 'name' QPS n [BURST n] [USER 'u'] [DIGEST 'd'], REMOVE RATE LIMIT 'name', ADD NONCORE 'name' TABLE 't' | PATTERN 'p', REMOVE NONCORE 'name', SHOW SHARDS, SHOW BACKENDS, SHOW TABLE RULES, SHOW QUERY DIGESTS, SHOW SLOW QUERIES, EXPLAIN ROUTE <sql>, USE <schema>, RELOAD CONFIG, CHECK CONFIG '<path>', SET BACKEND '<host:port>' OFFLINE|ONLINE, CHECK SCHEMA, SHOW [FULL] PROCESSLIST, KILL [QUERY] id";

/// Runs one admin statement.
pub async fn query(session: &mut Session, stream: &mut PacketStream, sql: &str) -> ClientResult {
    let framing = Framing {
        deprecate_eof: session
            .capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF),
        status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        more_follows: false,
        binary: false,
    };
    let t = tokenize(sql.trim().trim_end_matches(';'));
    let kw = |i: usize, w: &str| t.get(i).is_some_and(|x| x.is_kw(w));
    let result: Result<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>), ProxyError> =
        if kw(0, "SHOW") && kw(1, "SHARDS") {
            let config = session.shared.config();
            let rows = config
                .shards
                .iter()
                .map(|s| {
                    let defaults: Vec<&str> = config
                        .schemas
                        .iter()
                        .filter(|x| x.default_shard == s.name)
                        .map(|x| x.name.as_str())
                        .collect();
                    vec![
                        text(&s.name),
                        text(&s.primary),
                        text(s.replicas.join(", ")),
                        text(defaults.join(", ")),
                    ]
                })
                .collect();
            Ok((
                vec![
                    text_column("shard"),
                    text_column("primary"),
                    text_column("replicas"),
                    text_column("default_for_schemas"),
                ],
                rows,
            ))
        } else if kw(0, "SHOW") && kw(1, "BACKENDS") {
            let backends = session.shared.backends();
            let mut rows = Vec::new();
            for (shard, server) in backends.servers() {
                let (idle0, used0, max0) = server.pool(false).usage();
                let (idle1, used1, max1) = server.pool(true).usage();
                let statements = server.pool(false).statements() + server.pool(true).statements();
                rows.push(vec![
                    text(shard),
                    text(&server.addr),
                    text(if server.replica { "replica" } else { "primary" }),
                    text(if server.health.is_offline() {
                        "offline"
                    } else if server.health.is_up() {
                        "up"
                    } else {
                        "down"
                    }),
                    text(if server.health.usable() { "yes" } else { "no" }),
                    num(server.health.lag()),
                    num(idle0 + idle1),
                    num(used0 + used1),
                    num(max0 + max1),
                    num(statements),
                ]);
            }
            rows.sort_by(|a, b| format!("{:?}", &a[..2]).cmp(&format!("{:?}", &b[..2])));
            Ok((
                vec![
                    text_column("shard"),
                    text_column("backend"),
                    text_column("role"),
                    text_column("state"),
                    text_column("in_rotation"),
                    int_column("lag_s"),
                    int_column("pool_idle"),
                    int_column("pool_in_use"),
                    int_column("pool_max"),
                    int_column("statements"),
                ],
                rows,
            ))
        } else if kw(0, "SHOW") && kw(1, "TABLE") && kw(2, "RULES") {
            let config = session.shared.config();
            let mut rows = Vec::new();
            for s in &config.schemas {
                for t in &s.tables {
                    let rule = s.rule(&t.rule);
                    rows.push(vec![
                        text(&s.name),
                        text(&t.name),
                        text(&t.rule),
                        text(
                            rule.map(|r| format!("{:?}", r.kind).to_ascii_lowercase())
                                .unwrap_or_default(),
                        ),
                        t.column.as_ref().map_or(Value::NULL, text),
                        text(rule.map(|r| r.shards.join(", ")).unwrap_or_default()),
                        num(rule.map_or(1, |r| r.tables_per_shard)),
                    ]);
                }
            }
            Ok((
                vec![
                    text_column("schema"),
                    text_column("table"),
                    text_column("rule"),
                    text_column("kind"),
                    text_column("column"),
                    text_column("shards"),
                    int_column("tables_per_shard"),
                ],
                rows,
            ))
        } else if kw(0, "SHOW") && kw(1, "QUERY") && kw(2, "DIGESTS") {
            let rows = session
                .shared
                .observer
                .digests()
                .into_iter()
                .map(|(d, s)| {
                    let ms = |d: std::time::Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
                    vec![
                        text(d),
                        num(s.count),
                        text(ms(s.total)),
                        text(ms(s.total / (s.count.max(1) as u32))),
                        text(ms(s.max)),
                        num(s.rows),
                        num(s.shards),
                    ]
                })
                .collect();
            Ok((
                vec![
                    text_column("digest"),
                    int_column("count"),
                    text_column("total_ms"),
                    text_column("avg_ms"),
                    text_column("max_ms"),
                    int_column("rows"),
                    int_column("shards_touched"),
                ],
                rows,
            ))
        } else if kw(0, "SHOW") && kw(1, "SLOW") && kw(2, "QUERIES") {
            let rows = session
                .shared
                .observer
                .slow_queries()
                .into_iter()
                .map(|q| vec![text(q.json)])
                .collect();
            Ok((vec![text_column("slow_query")], rows))
        } else if kw(0, "CHECK") && kw(1, "CONFIG") {
            match t.get(2) {
                Some(Token::Str(path)) => {
                    let rows = match Config::load(std::path::Path::new(path)) {
                        Ok(_) => vec![vec![text(""), text("valid")]],
                        Err(ConfigError::Invalid(problems)) => problems
                            .iter()
                            .map(|p| vec![text(&p.path), text(&p.reason)])
                            .collect(),
                        Err(e) => vec![vec![text(""), text(e.to_string())]],
                    };
                    Ok((vec![text_column("key"), text_column("problem")], rows))
                }
                _ => Err(ProxyError::sql(
                    codes::PARSE_ERROR,
                    "42000",
                    "usage: CHECK CONFIG '<path>'",
                )),
            }
        } else if kw(0, "RELOAD") && kw(1, "CONFIG") {
            match session.shared.reload() {
                Ok(msg) => Ok((vec![text_column("result")], vec![vec![text(msg)]])),
                Err(msg) => Err(ProxyError::sql(codes::NOT_SUPPORTED_YET, "HY000", msg)),
            }
        } else if kw(0, "SET") && kw(1, "BACKEND") {
            let addr = match t.get(2) {
                Some(Token::Str(a)) => a.clone(),
                _ => String::new(),
            };
            let offline = if kw(3, "OFFLINE") {
                Some(true)
            } else if kw(3, "ONLINE") {
                Some(false)
            } else {
                None
            };
            let backends = session.shared.backends();
            let found = backends
                .servers()
                .find(|(_, s)| s.addr == addr)
                .map(|(_, s)| s.health.clone());
            match (found, offline) {
                (Some(h), Some(off)) => {
                    h.set_offline(off);
                    Ok((
                        vec![text_column("result")],
                        vec![vec![text(format!(
                            "backend {addr} is {}",
                            if off { "offline" } else { "online" }
                        ))]],
                    ))
                }
                (None, Some(_)) => Err(ProxyError::sql(
                    codes::NOT_SUPPORTED_YET,
                    "HY000",
                    format!("no backend '{addr}'; SHOW BACKENDS lists them"),
                )),
                _ => Err(ProxyError::sql(
                    codes::PARSE_ERROR,
                    "42000",
                    "usage: SET BACKEND '<host:port>' OFFLINE | ONLINE",
                )),
            }
        } else if (kw(0, "ADD") || kw(0, "REMOVE"))
            && ((kw(1, "RATE") && kw(2, "LIMIT")) || kw(1, "NONCORE"))
        {
            protection_rule(session, &t)
        } else if kw(0, "SET") && kw(1, "SHEDDING") {
            let on = kw(2, "ON");
            if !on && !kw(2, "OFF") {
                Err(ProxyError::sql(
                    codes::PARSE_ERROR,
                    "42000",
                    "usage: SET SHEDDING ON | OFF",
                ))
            } else {
                session
                    .shared
                    .shedding
                    .store(on, std::sync::atomic::Ordering::Relaxed);
                Ok((
                    vec![text_column("result")],
                    vec![vec![text(format!(
                        "shedding of non-core statements is {}",
                        if on { "on" } else { "off" }
                    ))]],
                ))
            }
        } else if kw(0, "SHOW") && kw(1, "PROTECTION") {
            let config = session.shared.config();
            let p = &config.protection;
            let mut rows = vec![
                vec![
                    text("statement_timeout_ms"),
                    text(p.statement_timeout_ms.to_string()),
                ],
                vec![
                    text("shedding"),
                    text(
                        if session
                            .shared
                            .shedding
                            .load(std::sync::atomic::Ordering::Relaxed)
                        {
                            "on"
                        } else {
                            "off"
                        },
                    ),
                ],
                vec![
                    text("shed_when_concurrent_over"),
                    text(p.shed_when_concurrent_over.to_string()),
                ],
            ];
            for (u, n) in &p.max_connections_per_user {
                rows.push(vec![
                    text(format!("max_connections_per_user.{u}")),
                    text(n.to_string()),
                ]);
            }
            let runtime = session
                .shared
                .runtime_rules
                .read()
                .map(|r| r.clone())
                .unwrap_or_default();
            for (l, origin) in p
                .rate_limits
                .iter()
                .map(|l| (l, ""))
                .chain(runtime.rate_limits.iter().map(|l| (l, " (runtime)")))
            {
                rows.push(rate_limit_row(l, origin));
            }
            for (c, origin) in p
                .noncore
                .iter()
                .map(|c| (c, ""))
                .chain(runtime.noncore.iter().map(|c| (c, " (runtime)")))
            {
                rows.push(noncore_row(c, origin));
            }
            Ok((vec![text_column("rule"), text_column("value")], rows))
        } else if kw(0, "USE") {
            match t.get(1).and_then(|x| x.ident()) {
                Some(db) if session.shared.config().schema(db).is_some() => {
                    session.schema = Some(db.to_string());
                    return executor::write_ok(stream, framing, 0).await;
                }
                _ => Err(ProxyError::sql(codes::BAD_DB, "42000", "Unknown database")),
            }
        } else if kw(0, "EXPLAIN") && kw(1, "ROUTE") {
            let inner = sql.trim_start()[7..].trim_start()[5..].trim();
            session.explain_route(inner).await
        } else if kw(0, "CHECK") && kw(1, "SCHEMA") {
            session.schema_drift().await.map(|rows| {
                (
                    vec![
                        text_column("schema"),
                        text_column("table"),
                        text_column("status"),
                        text_column("detail"),
                    ],
                    rows,
                )
            })
        } else if kw(0, "SHOW") && (kw(1, "PROCESSLIST") || (kw(1, "FULL") && kw(2, "PROCESSLIST")))
        {
            Ok(crate::local::processlist(
                &session.shared.sessions.all(),
                None,
                kw(1, "FULL"),
            ))
        } else if kw(0, "KILL") {
            match myshard_router::session::classify(sql) {
                myshard_router::SessionStatement::Kill { query, id } => {
                    match session.kill(id, query) {
                        Ok(()) => return executor::write_ok(stream, framing, 0).await,
                        Err(e) => Err(e),
                    }
                }
                _ => Err(ProxyError::sql(
                    codes::PARSE_ERROR,
                    "42000",
                    "usage: KILL [QUERY|CONNECTION] id",
                )),
            }
        } else if t.first().is_some_and(|w| w.is_kw("SELECT")) && kw(1, "@@version_comment") {
            Ok((
                vec![text_column("@@version_comment")],
                vec![vec![text("myshard admin")]],
            ))
        } else {
            Err(ProxyError::sql(
                codes::NOT_SUPPORTED_YET,
                "42000",
                format!("unknown admin command; {HELP}"),
            ))
        };
    match result {
        Ok((cols, rows)) => executor::write_result(stream, &cols, &rows, framing).await,
        Err(e) => executor::write_error(stream, &e).await,
    }
}

type AdminRows = (Vec<mysql_common::packets::Column>, Vec<Vec<Value>>);

/// `ADD RATE LIMIT …`, `REMOVE RATE LIMIT …`, `ADD NONCORE …`, `REMOVE NONCORE …`.
fn protection_rule(session: &mut Session, t: &[Token]) -> Result<AdminRows, ProxyError> {
    let usage = || {
        ProxyError::sql(
            codes::PARSE_ERROR,
            "42000",
            "usage: ADD RATE LIMIT 'name' QPS n [BURST n] [USER 'u'] [DIGEST 'd'] | REMOVE RATE LIMIT 'name' | ADD NONCORE 'name' TABLE 't' | PATTERN 'p' | REMOVE NONCORE 'name'",
        )
    };
    let adding = t[0].is_kw("ADD");
    let rate = t[1].is_kw("RATE");
    let rest = if rate { &t[3..] } else { &t[2..] };
    let Some(Token::Str(name)) = rest.first() else {
        return Err(usage());
    };
    let mut opts = std::collections::HashMap::new();
    let mut i = 1;
    while i + 1 < rest.len() {
        let key = match &rest[i] {
            Token::Word(w) => w.to_ascii_uppercase(),
            _ => return Err(usage()),
        };
        let val = match &rest[i + 1] {
            Token::Str(s) | Token::Num(s) => s.clone(),
            _ => return Err(usage()),
        };
        opts.insert(key, val);
        i += 2;
    }
    let mut rules = session
        .shared
        .runtime_rules
        .write()
        .unwrap_or_else(|p| p.into_inner());
    let msg = match (adding, rate) {
        (true, true) => {
            let qps: f64 = opts
                .get("QPS")
                .and_then(|v| v.parse().ok())
                .ok_or_else(usage)?;
            rules.rate_limits.retain(|l| &l.name != name);
            rules.rate_limits.push(myshard_config::RateLimit {
                name: name.clone(),
                user: opts.get("USER").cloned(),
                digest: opts.get("DIGEST").cloned(),
                qps,
                burst: opts.get("BURST").and_then(|v| v.parse().ok()),
            });
            format!("rate limit '{name}' added")
        }
        (false, true) => {
            let before = rules.rate_limits.len();
            rules.rate_limits.retain(|l| &l.name != name);
            if before == rules.rate_limits.len() {
                return Err(ProxyError::sql(
                    codes::NOT_SUPPORTED_YET,
                    "HY000",
                    format!("no runtime rate limit '{name}'"),
                ));
            }
            format!("rate limit '{name}' removed")
        }
        (true, false) => {
            let (table, pattern) = (opts.get("TABLE").cloned(), opts.get("PATTERN").cloned());
            if table.is_none() && pattern.is_none() {
                return Err(usage());
            }
            rules.noncore.retain(|c| &c.name != name);
            rules.noncore.push(myshard_config::NonCore {
                name: name.clone(),
                table,
                pattern,
            });
            format!("non-core class '{name}' added")
        }
        (false, false) => {
            let before = rules.noncore.len();
            rules.noncore.retain(|c| &c.name != name);
            if before == rules.noncore.len() {
                return Err(ProxyError::sql(
                    codes::NOT_SUPPORTED_YET,
                    "HY000",
                    format!("no runtime non-core class '{name}'"),
                ));
            }
            format!("non-core class '{name}' removed")
        }
    };
    Ok((vec![text_column("result")], vec![vec![text(msg)]]))
}

fn rate_limit_row(l: &myshard_config::RateLimit, origin: &str) -> Vec<Value> {
    vec![
        text(format!("rate_limit.{}{origin}", l.name)),
        text(format!(
            "user={} digest={} qps={} burst={}",
            l.user.as_deref().unwrap_or("*"),
            l.digest.as_deref().unwrap_or("*"),
            l.qps,
            l.burst.unwrap_or(l.qps)
        )),
    ]
}

fn noncore_row(c: &myshard_config::NonCore, origin: &str) -> Vec<Value> {
    vec![
        text(format!("noncore.{}{origin}", c.name)),
        text(format!(
            "table={} pattern={}",
            c.table.as_deref().unwrap_or("*"),
            c.pattern.as_deref().unwrap_or("*")
        )),
    ]
}
