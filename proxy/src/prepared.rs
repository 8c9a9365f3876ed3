//! Prepared statements: COM_STMT_* (binary protocol) and SQL `PREPARE` / `EXECUTE` /
//! `DEALLOCATE PREPARE`.
//!
//! myshard keeps prepared statements itself. At execution the parameter values are bound into
//! the statement text as literals and the statement takes the same path as a text query —
//! routed by the values it carries, rewritten and merged — and its rows go back in the binary
//! protocol. No shard-side statement handle ties a client to a backend connection.

use crate::error::{codes, ProxyError};
use crate::executor::{self, ForwardError};
use crate::protocol::binary::{self, ParamType};
use crate::protocol::resultset::{column_packet, columns_end_packet};
use crate::protocol::PacketStream;
use crate::session::{ClientResult, Diagnostic, Session};
use myshard_router::session::PrepareSource;
use mysql_common::constants::CapabilityFlags;
use std::collections::HashMap;

/// Most statements one session may hold prepared at once (MySQL's
/// `max_prepared_stmt_count` is server-wide; this bounds one client).
pub const MAX_PER_SESSION: usize = 16_382;

/// A statement prepared by a client.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The statement text with its `?` markers.
    pub sql: String,
    /// Byte offsets of the markers.
    pub markers: Vec<usize>,
    /// Parameter types bound by the last execution.
    pub types: Vec<ParamType>,
    /// Values sent with COM_STMT_SEND_LONG_DATA since the last execution.
    pub long_data: HashMap<u16, Vec<u8>>,
    /// The long data sent since the last execution outgrew `max_allowed_packet` and was
    /// dropped; the next execution fails.
    pub long_data_overflow: bool,
}

/// The prepared statements of one session.
#[derive(Debug, Default)]
pub struct Statements {
    by_id: HashMap<u32, Prepared>,
    next_id: u32,
    /// SQL-level prepared statements, by lower-case name.
    by_name: HashMap<String, Prepared>,
}

impl Statements {
    /// Forgets every statement (COM_RESET_CONNECTION).
    pub fn clear(&mut self) {
        self.by_id.clear();
        self.by_name.clear();
    }
}

fn not_found(id: u32, what: &str) -> ProxyError {
    ProxyError::sql(
        codes::UNKNOWN_STMT_HANDLER,
        "HY000",
        format!("Unknown prepared statement handler ({id}) given to {what}"),
    )
}

/// Checks a statement text for preparation: one statement, not empty.
fn parse_for_prepare(sql: &str) -> Result<Prepared, ProxyError> {
    let statements = myshard_router::lexer::split_statements(sql);
    match statements.len() {
        0 => Err(ProxyError::sql(
            codes::EMPTY_QUERY,
            "42000",
            "Query was empty",
        )),
        1 => {
            let text = statements[0].trim().to_string();
            let markers = myshard_router::lexer::placeholders(&text);
            if markers.len() > u16::MAX as usize {
                return Err(ProxyError::sql(
                    codes::PS_MANY_PARAM,
                    "HY000",
                    "Prepared statement contains too many placeholders",
                ));
            }
            Ok(Prepared {
                sql: text,
                markers,
                ..Prepared::default()
            })
        }
        _ => Err(ProxyError::sql(
            codes::PARSE_ERROR,
            "42000",
            "You have an error in your SQL syntax; a prepared statement holds one statement",
        )),
    }
}

fn too_many_statements() -> ProxyError {
    ProxyError::sql(
        codes::MAX_PREPARED_STMT_COUNT_REACHED,
        "42000",
        format!("Can't create more than max_prepared_stmt_count statements (current value: {MAX_PER_SESSION})"),
    )
}

impl Session {
    /// A statement text checked for preparation, the statement policy included: a statement
    /// myshard refuses is refused when it is prepared, not first when it runs.
    fn checked_for_prepare(&self, sql: &str) -> Result<Prepared, ProxyError> {
        let prepared = parse_for_prepare(sql)?;
        myshard_router::policy::check(&myshard_router::lexer::tokenize(&prepared.sql))
            .map_err(|d| self.denied(&d))?;
        Ok(prepared)
    }

    /// Counts an error and keeps it for `SHOW WARNINGS` / `SHOW ERRORS`.
    pub(crate) fn remember_error(&mut self, e: &ProxyError) {
        let (code, _, message) = e.to_err();
        self.shared
            .metrics
            .errors
            .with_label_values(&[&code.to_string()])
            .inc();
        self.diagnostics = vec![Diagnostic {
            level: "Error".into(),
            code,
            message,
        }];
    }

    /// COM_STMT_PREPARE.
    pub async fn stmt_prepare(&mut self, stream: &mut PacketStream, sql: &str) -> ClientResult {
        let prepared = match self.checked_for_prepare(sql) {
            Ok(p) if self.statements.by_id.len() >= MAX_PER_SESSION => {
                let _ = p;
                let e = too_many_statements();
                self.remember_error(&e);
                return executor::write_error(stream, &e).await;
            }
            Ok(p) => p,
            Err(e) => {
                self.remember_error(&e);
                return executor::write_error(stream, &e).await;
            }
        };
        self.statements.next_id = self.statements.next_id.wrapping_add(1).max(1);
        let id = self.statements.next_id;
        let params = prepared.markers.len();
        // Result columns of a read, for clients that size their buffers at prepare time;
        // every execution sends its own definitions with its rows again.
        let probe = binary::bind(&prepared.sql, &prepared.markers, &probe_literals(&prepared));
        let columns = self.describe_read(&probe).await.unwrap_or_default();
        self.statements.by_id.insert(id, prepared);
        stream
            .write_packet(&binary::prepare_ok(
                id,
                columns.len() as u16,
                params as u16,
                0,
            ))
            .await?;
        // Parameter definitions, then result columns, each list ended as the client expects.
        let params_def = column_packet(&binary::param_column());
        let lists = [
            vec![params_def; params],
            columns.iter().map(column_packet).collect::<Vec<_>>(),
        ];
        let end = columns_end_packet(
            self.capabilities
                .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF),
            self.status(),
        );
        for list in lists.iter().filter(|l| !l.is_empty()) {
            for def in list {
                stream.write_packet(def).await?;
            }
            if let Some(eof) = &end {
                stream.write_packet(eof).await?;
            }
        }
        Ok(())
    }

    /// COM_STMT_SEND_LONG_DATA (no answer, by protocol).
    /// Long data is bounded as it arrives: past `max_allowed_packet` for the statement's
    /// parameters together, it is dropped and the next execution fails.
    pub fn stmt_long_data(&mut self, id: u32, param: u16, data: &[u8]) {
        let max = self.shared.config().server.max_allowed_packet;
        if let Some(stmt) = self.statements.by_id.get_mut(&id) {
            if (param as usize) < stmt.markers.len() && !stmt.long_data_overflow {
                let held: usize = stmt.long_data.values().map(Vec::len).sum();
                if held + data.len() > max {
                    stmt.long_data.clear();
                    stmt.long_data_overflow = true;
                    return;
                }
                stmt.long_data
                    .entry(param)
                    .or_default()
                    .extend_from_slice(data);
            }
        }
    }

    /// COM_STMT_CLOSE (no answer, by protocol).
    pub fn stmt_close(&mut self, id: u32) {
        self.statements.by_id.remove(&id);
    }

    /// COM_STMT_RESET.
    pub async fn stmt_reset(&mut self, stream: &mut PacketStream, id: u32) -> ClientResult {
        match self.statements.by_id.get_mut(&id) {
            Some(stmt) => {
                stmt.long_data.clear();
                stmt.long_data_overflow = false;
                executor::write_ok(stream, self.framing(false), 0).await
            }
            None => {
                let e = not_found(id, "mysqld_stmt_reset");
                self.remember_error(&e);
                executor::write_error(stream, &e).await
            }
        }
    }

    /// COM_STMT_FETCH: myshard sends every execution's rows with its answer and opens no
    /// cursors, so there is never a cursor to fetch from.
    pub async fn stmt_fetch(&mut self, stream: &mut PacketStream, id: u32) -> ClientResult {
        let e = ProxyError::sql(
            codes::STMT_HAS_NO_OPEN_CURSOR,
            "HY000",
            format!("The statement ({id}) has no open cursor."),
        );
        self.remember_error(&e);
        executor::write_error(stream, &e).await
    }

    /// COM_STMT_EXECUTE.
    pub async fn stmt_execute(
        &mut self,
        stream: &mut PacketStream,
        id: u32,
        body: &[u8],
    ) -> ClientResult {
        let mode = self.text.clone();
        let bound = match self.statements.by_id.get_mut(&id) {
            None => Err(not_found(id, "mysqld_stmt_execute")),
            Some(stmt) if stmt.long_data_overflow => {
                stmt.long_data_overflow = false;
                Err(ProxyError::sql(
                    codes::PACKET_TOO_LARGE,
                    "08S01",
                    "Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_allowed_packet' bytes",
                ))
            }
            Some(stmt) => {
                let parsed =
                    binary::parse_execute(body, stmt.markers.len(), &stmt.types, &stmt.long_data);
                stmt.long_data.clear();
                match parsed {
                    Ok(exec) => {
                        let literals: Vec<String> = exec
                            .params
                            .iter()
                            .zip(&exec.types)
                            .map(|(v, (t, _))| binary::param_literal(v, *t, &mode))
                            .collect();
                        stmt.types = exec.types;
                        Ok(binary::bind(&stmt.sql, &stmt.markers, &literals))
                    }
                    Err(m) => Err(ProxyError::sql(
                        codes::WRONG_ARGUMENTS,
                        "HY000",
                        format!("Incorrect arguments to mysqld_stmt_execute: {m}"),
                    )),
                }
            }
        };
        let sql = match bound {
            Ok(sql) => sql,
            Err(e) => {
                self.remember_error(&e);
                return executor::write_error(stream, &e).await;
            }
        };
        self.run_bound(stream, &sql, true).await
    }

    /// Runs a statement whose parameters are bound, in the binary or text protocol.
    async fn run_bound(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        binary: bool,
    ) -> ClientResult {
        self.shared.count_question();
        let saved = std::mem::replace(&mut self.binary, binary);
        let res = self.statement(stream, sql, false).await;
        self.registered.entry.end();
        self.binary = saved;
        match res {
            Ok(()) => Ok(()),
            Err(ForwardError::Client(e)) => Err(e),
            Err(ForwardError::Statement(e)) => {
                let e = self.after_error(e).await;
                self.remember_error(&e);
                executor::write_error(stream, &e).await
            }
        }
    }

    /// SQL `PREPARE name FROM 'text' | @var`.
    pub fn sql_prepare(&mut self, name: &str, source: &PrepareSource) -> Result<(), ProxyError> {
        let text = match source {
            // The statement text is read by the session's own rules, as by a server.
            PrepareSource::Text(t) => self.canonical(t.as_bytes())?.into_owned(),
            PrepareSource::Variable(v) => match self.state.user_literal(v) {
                Some(lit) => {
                    let bytes = myshard_router::text::literal_value(&lit).ok_or_else(|| {
                        ProxyError::sql(
                            codes::PARSE_ERROR,
                            "42000",
                            format!("user variable @{v} does not hold statement text"),
                        )
                    })?;
                    self.canonical(&bytes)?.into_owned()
                }
                None => {
                    return Err(ProxyError::sql(
                        codes::PARSE_ERROR,
                        "42000",
                        "You have an error in your SQL syntax near 'NULL'",
                    ))
                }
            },
        };
        let prepared = self.checked_for_prepare(&text)?;
        let key = name.to_ascii_lowercase();
        if !self.statements.by_name.contains_key(&key)
            && self.statements.by_name.len() >= MAX_PER_SESSION
        {
            return Err(too_many_statements());
        }
        // Preparing a name again replaces the statement, as in MySQL.
        self.statements.by_name.insert(key, prepared);
        Ok(())
    }

    /// SQL `EXECUTE name [USING @a, …]`: the bound statement text.
    pub fn sql_execute_text(&self, name: &str, using: &[String]) -> Result<String, ProxyError> {
        let stmt = self
            .statements
            .by_name
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| {
                ProxyError::sql(
                    codes::UNKNOWN_STMT_HANDLER,
                    "HY000",
                    format!("Unknown prepared statement handler ({name}) given to EXECUTE"),
                )
            })?;
        if using.len() != stmt.markers.len() {
            return Err(ProxyError::sql(
                codes::WRONG_ARGUMENTS,
                "HY000",
                "Incorrect arguments to EXECUTE",
            ));
        }
        let literals: Vec<String> = using
            .iter()
            .map(|v| self.state.user_literal(v).unwrap_or_else(|| "NULL".into()))
            .collect();
        Ok(binary::bind(&stmt.sql, &stmt.markers, &literals))
    }

    /// SQL `DEALLOCATE PREPARE name`.
    pub fn sql_deallocate(&mut self, name: &str) -> Result<(), ProxyError> {
        self.statements
            .by_name
            .remove(&name.to_ascii_lowercase())
            .map(|_| ())
            .ok_or_else(|| {
                ProxyError::sql(
                    codes::UNKNOWN_STMT_HANDLER,
                    "HY000",
                    format!(
                        "Unknown prepared statement handler ({name}) given to DEALLOCATE PREPARE"
                    ),
                )
            })
    }
}

/// Values that stand for unknown parameters when a statement is described at prepare time:
/// NULL, or 0 where the grammar needs a number (`LIMIT ?`, `OFFSET ?`, `LIMIT ?, ?`).
fn probe_literals(p: &Prepared) -> Vec<String> {
    let mut out = Vec::with_capacity(p.markers.len());
    let mut prev_limit = false;
    for &at in &p.markers {
        let before = p.sql[..at].trim_end().to_ascii_uppercase();
        let numeric = before.ends_with("LIMIT")
            || before.ends_with("OFFSET")
            || (prev_limit && before.ends_with(','));
        prev_limit = before.ends_with("LIMIT");
        out.push(if numeric { "0" } else { "NULL" }.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_checks_the_text() {
        assert!(parse_for_prepare("").is_err());
        assert!(parse_for_prepare("SELECT 1; SELECT 2").is_err());
        let p = parse_for_prepare("SELECT ? FROM t WHERE a = '?'").expect("valid");
        assert_eq!(p.markers.len(), 1);
    }
}
