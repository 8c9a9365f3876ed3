//! One client session: its schema, variables and transaction state, the backend connections
//! it has pinned, and the statements the session answers itself (USE, SET, transactions,
//! SHOW, PREPARE …). A routed statement is planned by `crate::planning` and run by
//! `crate::exec`, one file per operator family.

use crate::backend::{BackendPool, PooledConn, SessionState};
use crate::error::{codes, ProxyError};
use crate::executor::{self, ForwardError, Framing};
use crate::local;
use crate::protocol::PacketStream;
use crate::server::Shared;
use myshard_config::UserConfig;
use myshard_router::policy::Denied;
use myshard_router::session::{classify, SessionStatement, SetTarget};
use myshard_router::text::quote_ident;
use mysql_common::constants::{CapabilityFlags, ColumnType, StatusFlags};
use mysql_common::value::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A warning or error kept for `SHOW WARNINGS`.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// "Note", "Warning" or "Error".
    pub level: String,
    /// MySQL code.
    pub code: u16,
    /// Message.
    pub message: String,
}

/// A client session.
pub struct Session {
    /// The server-wide state.
    pub shared: Arc<Shared>,
    /// Connection id announced in the handshake.
    pub conn_id: u32,
    /// This session as SHOW PROCESSLIST and KILL see it (listed while the session lives).
    pub registered: crate::sessions::Registered,
    /// The authenticated user.
    pub user: UserConfig,
    /// Current logical schema.
    pub schema: Option<String>,
    /// Capabilities agreed with the client.
    pub capabilities: CapabilityFlags,
    /// Variables to replay on backend connections.
    pub state: SessionState,
    /// The state right after the handshake (for COM_RESET_CONNECTION).
    pub initial_state: SessionState,
    /// `@@autocommit`.
    pub autocommit: bool,
    /// Inside BEGIN … COMMIT.
    pub in_transaction: bool,
    /// The statement that began the transaction, replayed on each shard it touches.
    pub begin_sql: String,
    /// Session-bound server state that pins connections for the rest of the session.
    pub pin_reason: Option<&'static str>,
    /// Connections pinned to this session, by shard.
    pub pinned: HashMap<String, PooledConn>,
    /// Shards on which the session holds LOCK TABLES locks (their connections stay pinned
    /// until UNLOCK TABLES).
    pub locked: Vec<String>,
    /// Warnings of the last statement.
    pub diagnostics: Vec<Diagnostic>,
    /// `LAST_INSERT_ID()` as a single MySQL would report it.
    pub last_insert_id: u64,
    /// Rows returned or affected by the statement being run.
    pub rows: u64,
    /// This is an admin-interface session.
    pub admin: bool,
    /// Backend connections the running statement uses, for KILL QUERY on timeout.
    pub in_flight: Vec<(Arc<BackendPool>, u32)>,
    /// Role of the statement being run (reads may go to replicas).
    pub role: myshard_router::Role,
    /// When this session last used each shard's primary (read-your-writes).
    pub last_write: HashMap<String, std::time::Instant>,
    /// Read-your-writes: the shards the session wrote to, each with the primary's GTID
    /// position once read, and the replicas known to have applied it.
    pub written_gtids: HashMap<String, crate::consistency::Written>,
    /// `SET myshard_read_consistency`: this session's own read consistency.
    pub read_consistency: Option<myshard_config::ReadConsistency>,
    /// COM_SET_OPTION state.
    pub multi_statements: bool,
    /// The statement being run answers COM_STMT_EXECUTE: rows go out in binary form.
    pub binary: bool,
    /// Prepared statements.
    pub statements: crate::prepared::Statements,
    /// The open transaction's branch on each shard it touched.
    pub branches: HashMap<String, crate::transaction::Branch>,
    /// The open transaction's XA id, once a branch used XA.
    pub xid: Option<String>,
    /// `START TRANSACTION READ ONLY`.
    pub tx_read_only: bool,
    /// Why the open transaction was rolled back behind the client's back (a statement
    /// timeout): every statement fails until the client ends the transaction.
    pub rolled_back: Option<String>,
    /// Savepoints of the open transaction, oldest first.
    pub savepoints: Vec<crate::transaction::Savepoint>,
    /// `SET TRANSACTION …` for the next transaction, run on each shard before its branch.
    pub next_tx_settings: Option<String>,
    /// `ROW_COUNT()`: rows the last statement changed (-1 after a result set).
    pub row_count: i64,
    /// `FOUND_ROWS()`: rows the last result set had.
    pub found_rows: u64,
    /// The session's lexical rules (`sql_mode` quoting flags, `character_set_client`), which
    /// its text is read in and sent to shards in; follows `state`.
    pub text: myshard_router::text::TextMode,
}

/// What happened to the client connection while serving a command.
pub type ClientResult = Result<(), crate::protocol::stream::PacketError>;

impl Session {
    /// Status flags for OK/EOF packets.
    pub fn status(&self) -> StatusFlags {
        let mut s = StatusFlags::empty();
        if self.autocommit {
            s |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.in_transaction {
            s |= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        if !self.text.backslash_escapes {
            // Drivers escape parameters by this flag, as a MySQL server sets it.
            s |= StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES;
        }
        s
    }

    /// Re-reads the session's lexical rules from its variables.
    pub fn refresh_text_mode(&mut self) {
        let value = |name: &str| {
            self.state
                .system_literal(name)
                .and_then(myshard_router::text::literal_value)
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        self.text = myshard_router::text::TextMode::new(
            &value("sql_mode").unwrap_or_default(),
            &value("character_set_client").unwrap_or_else(|| "utf8mb4".into()),
        );
    }

    /// A client's statement bytes as canonical text (ERR 1300 when they cannot be read in
    /// the session's character set).
    pub fn canonical<'a>(&self, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, str>, ProxyError> {
        myshard_router::text::canonical(bytes, &self.text)
            .map_err(|e| ProxyError::sql(codes::INVALID_CHARACTER_STRING, "HY000", e.to_string()))
    }

    /// Canonical text in the session's own form, for a backend connection.
    pub fn outgoing<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        myshard_router::text::for_session(sql, &self.text)
    }

    /// Framing for the statement being answered.
    pub(crate) fn framing(&self, more_follows: bool) -> Framing {
        Framing {
            binary: self.binary,
            deprecate_eof: self
                .capabilities
                .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF),
            status: self.status(),
            more_follows,
        }
    }

    pub(crate) fn found_rows(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_FOUND_ROWS)
    }

    /// Whether the session keeps its backend connections: while a transaction is open on
    /// them, or after a statement whose session effects myshard does not track. Under
    /// autocommit=0 a transaction begins at the first statement that reaches a shard (as in
    /// MySQL) and ends at COMMIT/ROLLBACK; between transactions the connections go back to
    /// the pool.
    pub(crate) fn is_pinned(&self) -> bool {
        self.in_transaction || self.pin_reason.is_some() || !self.locked.is_empty()
    }

    /// Checks that the user may use `schema` and that it exists.
    pub fn check_schema(&self, schema: &str) -> Result<(), ProxyError> {
        let config = self.shared.config();
        let allowed = self.user.schemas.iter().any(|s| s == schema);
        if config.schema(schema).is_none() {
            return Err(ProxyError::sql(
                codes::BAD_DB,
                "42000",
                format!("Unknown database '{schema}'"),
            ));
        }
        if !allowed {
            return Err(ProxyError::sql(
                codes::DB_ACCESS_DENIED,
                "42000",
                format!(
                    "Access denied for user '{}'@'%' to database '{schema}'",
                    self.user.name
                ),
            ));
        }
        Ok(())
    }

    /// Whether the statement being run may read from a replica: a replica-role plan, outside
    /// any transaction or pinned state, and outside the read-your-writes window.
    pub(crate) fn replica_read(&self, shard: &str) -> bool {
        // Under autocommit=0 every statement begins (or is in) a transaction: the primary's.
        if self.role != myshard_router::Role::Replica || self.is_pinned() || self.tx_active() {
            return false;
        }
        let config = self.shared.config();
        if self.read_consistency(&config) == myshard_config::ReadConsistency::Primary {
            return false;
        }
        let window = config.backend.read_your_writes_ms;
        !(window > 0
            && self
                .last_write
                .get(shard)
                .is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(window)))
    }

    /// A backend connection for `shard`: the pinned one, or one from the pool of the server
    /// the statement's role picks; inside a transaction it joins it.
    pub(crate) async fn acquire(
        &mut self,
        shard: &str,
        database: Option<&str>,
    ) -> Result<PooledConn, ProxyError> {
        self.acquire_for(shard, database, true).await
    }

    /// A connection for a session statement (SET, variable reads, describing a statement):
    /// it runs outside the transaction's branches and begins none.
    pub(crate) async fn acquire_outside_transaction(
        &mut self,
        shard: &str,
        database: Option<&str>,
    ) -> Result<PooledConn, ProxyError> {
        self.acquire_for(shard, database, false).await
    }

    pub(crate) async fn acquire_for(
        &mut self,
        shard: &str,
        database: Option<&str>,
        join: bool,
    ) -> Result<PooledConn, ProxyError> {
        if let Some(mut conn) = self.pinned.remove(shard) {
            let joined = match conn.prepare_kept(database, &self.state).await {
                Ok(()) if join => self.join_transaction(&mut conn, shard).await,
                other => other,
            };
            let bounded = match joined {
                Ok(()) if join => self.bound_lock_waits(&mut conn, shard).await,
                other => other,
            };
            if let Err(e) = bounded {
                self.give_back(conn, Some(&e));
                return Err(e);
            }
            if let Some(id) = conn.backend_id() {
                self.in_flight.push((conn.pool(), id));
            }
            return Ok(conn);
        }
        let replica = self.replica_read(shard);
        let backends = self.shared.backends();
        let server = backends.server(shard, replica, None)?;
        let mut conn = match server
            .pool(self.found_rows())
            .checkout(database, &self.state)
            .await
        {
            Ok(conn) => conn,
            Err(e @ ProxyError::ShardUnavailable { .. }) if server.replica => {
                // A replica that fails to connect leaves rotation; the read goes elsewhere.
                server.health.mark_down();
                tracing::warn!(shard, backend = %server.addr, "replica unreachable, retrying the read elsewhere: {e}");
                let other = backends.server(shard, true, Some(&server.addr))?;
                other
                    .pool(self.found_rows())
                    .checkout(database, &self.state)
                    .await?
            }
            Err(e) => return Err(e),
        };
        if conn.is_replica() && !self.replica_has_writes(shard, &mut conn).await {
            // The replica has not applied the session's last write here: the primary has it.
            BackendPool::release(conn);
            conn = backends
                .server(shard, false, None)?
                .pool(self.found_rows())
                .checkout(database, &self.state)
                .await?;
        }
        if join {
            if let Err(e) = self.join_transaction(&mut conn, shard).await {
                self.give_back(conn, Some(&e));
                return Err(e);
            }
        }
        if let Some(id) = conn.backend_id() {
            self.in_flight.push((conn.pool(), id));
        }
        Ok(conn)
    }

    /// Gives a connection back: kept pinned while the session needs it, else to the pool.
    /// A connection whose statement failed at the transport level is dropped.
    pub(crate) fn give_back(&mut self, conn: PooledConn, failed: Option<&ProxyError>) {
        if matches!(failed, Some(ProxyError::ShardUnavailable { .. })) {
            // A broken connection is dropped, and only it: a client can break its own
            // connection (a statement the server ends it for), so this alone never takes the
            // server out of rotation for every client. A server that is really gone fails
            // the next connect, which does (`BackendPool::checkout`).
            // The shard rolled its branch back when the connection broke; the rest of the
            // transaction is rolled back after the statement fails.
            self.branches.remove(conn.shard());
            // Its table locks went with it.
            self.locked.retain(|s| s != conn.shard());
            drop(conn);
            return;
        }
        if self.is_pinned() {
            self.pinned.insert(conn.shard().to_string(), conn);
        } else {
            BackendPool::release(conn);
        }
    }

    /// Releases pinned connections once nothing ties the session to them.
    pub(crate) fn unpin_if_free(&mut self) {
        if !self.is_pinned() {
            for (_, conn) in self.pinned.drain() {
                BackendPool::release(conn);
            }
        }
    }

    /// Handles one COM_QUERY (one or more statements).
    pub async fn query(&mut self, stream: &mut PacketStream, sql: &str) -> ClientResult {
        self.shared.count_question();
        let statements = myshard_router::lexer::split_statements(sql);
        if statements.is_empty() {
            return executor::write_error(
                stream,
                &ProxyError::sql(codes::PARSE_ERROR, "42000", "Query was empty"),
            )
            .await;
        }
        if statements.len() > 1 && !self.multi_statements {
            let near: String = statements[1].trim().chars().take(80).collect();
            return executor::write_error(
                stream,
                &ProxyError::sql(
                    codes::PARSE_ERROR,
                    "42000",
                    format!("You have an error in your SQL syntax; multi-statements are disabled for this connection near '{near}'"),
                ),
            )
            .await;
        }
        let n = statements.len();
        for (i, stmt) in statements.into_iter().enumerate() {
            let more = i + 1 < n;
            let res = self.statement(stream, stmt.trim(), more).await;
            self.registered.entry.end();
            match res {
                Ok(()) => {}
                Err(ForwardError::Client(e)) => return Err(e),
                Err(ForwardError::Statement(e)) => {
                    let e = self.after_error(e).await;
                    self.remember_error(&e);
                    return executor::write_error(stream, &e).await;
                }
            }
        }
        Ok(())
    }

    /// Runs one statement and writes its answer.
    pub(crate) async fn statement(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        more: bool,
    ) -> Result<(), ForwardError> {
        self.role = myshard_router::Role::Primary;
        self.registered.entry.begin(self.schema.as_deref(), sql);
        // The one tokenization of the statement: its class, whether it pins a connection,
        // and its digest.
        let tokens = myshard_router::lexer::tokenize(sql);
        let kind = myshard_router::session::classify_tokenized(sql, &tokens);
        if !matches!(kind, SessionStatement::ShowWarnings { .. }) {
            self.diagnostics.clear();
        }
        if let Some(reason) = &self.rolled_back {
            let failed = ProxyError::sql(
                codes::XA_RBTIMEOUT,
                "XA106",
                format!("Transaction was rolled back: {reason}"),
            );
            match kind {
                SessionStatement::Rollback => {
                    self.rolled_back = None;
                    executor::write_ok(stream, self.framing(more), 0).await?;
                    return Ok(());
                }
                SessionStatement::ShowWarnings { .. } => {}
                // COMMIT (and what commits implicitly) reports the rollback and ends it.
                SessionStatement::Commit | SessionStatement::Begin => {
                    self.rolled_back = None;
                    return Err(ForwardError::Statement(failed));
                }
                _ => {
                    return Err(ForwardError::Statement(ProxyError::sql(
                        codes::XA_RBTIMEOUT,
                        "XA106",
                        format!("Transaction was rolled back: {reason}; ROLLBACK to end it"),
                    )))
                }
            }
        }
        match kind {
            SessionStatement::Use(db) => {
                self.check_schema(&db).map_err(ForwardError::Statement)?;
                self.schema = Some(db);
                executor::write_ok(stream, self.framing(more), 0).await?;
            }
            SessionStatement::Begin => {
                // Ends any open transaction first, as MySQL's implicit commit does, and
                // releases the session's table locks, as BEGIN does in MySQL.
                self.end_transaction(stream, "COMMIT", None).await?;
                self.release_locks().await;
                // Branches begin on each shard at the transaction's first statement there.
                self.begin_sql = self.outgoing(sql).into_owned();
                let upper = sql.to_ascii_uppercase();
                self.tx_read_only = upper.contains("READ ONLY");
                self.in_transaction = true;
                executor::write_ok(stream, self.framing(more), 0).await?;
            }
            SessionStatement::Commit => {
                self.end_transaction(stream, "COMMIT", Some(more)).await?;
            }
            SessionStatement::Rollback => {
                self.end_transaction(stream, "ROLLBACK", Some(more)).await?;
            }
            SessionStatement::Set(targets) => self.set(stream, sql, &targets, more).await?,
            SessionStatement::SelectDatabase(label) => {
                let value = self
                    .schema
                    .as_ref()
                    .map_or(Value::NULL, |s| Value::Bytes(s.clone().into_bytes()));
                let cols = [local::text_column(&label)];
                executor::write_result(stream, &cols, &[vec![value]], self.framing(more)).await?;
            }
            SessionStatement::SelectConnectionId(label) => {
                let cols = [local::int_column(&label)];
                let row = vec![Value::Bytes(self.conn_id.to_string().into_bytes())];
                executor::write_result(stream, &cols, &[row], self.framing(more)).await?;
            }
            SessionStatement::SelectRowCount(label) => {
                let cols = [local::int_column(&label)];
                let row = vec![Value::Bytes(self.row_count.to_string().into_bytes())];
                executor::write_result(stream, &cols, &[row], self.framing(more)).await?;
            }
            SessionStatement::SelectFoundRows(label) => {
                let cols = [local::int_column(&label)];
                let row = vec![Value::Bytes(self.found_rows.to_string().into_bytes())];
                executor::write_result(stream, &cols, &[row], self.framing(more)).await?;
                self.row_count = -1;
            }
            SessionStatement::SelectLastInsertId(label) => {
                let cols = [local::int_column(&label)];
                let row = vec![Value::Bytes(self.last_insert_id.to_string().into_bytes())];
                executor::write_result(stream, &cols, &[row], self.framing(more)).await?;
            }
            SessionStatement::SelectVariables(vars) => {
                let mapped = mariadb_variables(sql);
                let (mut cols, mut rows) = self.collect(&mapped).await?;
                if matches!(mapped, std::borrow::Cow::Owned(_)) {
                    // Labelled as the client wrote them, not as the shard knows them.
                    for (col, (_, label)) in cols.iter_mut().zip(&vars) {
                        *col = col
                            .clone()
                            .with_name(label.as_bytes())
                            .with_org_name(label.as_bytes());
                    }
                }
                for row in &mut rows {
                    for (i, (name, _)) in vars.iter().enumerate() {
                        if let (Some(v), Some(cell)) =
                            (local::override_variable(&self.shared, name), row.get_mut(i))
                        {
                            *cell = Value::Bytes(v.into_bytes());
                        }
                    }
                }
                executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
            }
            SessionStatement::ShowVariables(like) => {
                // The pattern is matched here, in linear time: a server's matcher recurses
                // on every `%`, and a pattern of many ends the connection.
                let (cols, rows) = self.collect("SHOW SESSION VARIABLES").await?;
                let mut rows = local::filter_like(rows, like.as_deref());
                for row in &mut rows {
                    let name = match row.first() {
                        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).to_ascii_lowercase(),
                        _ => continue,
                    };
                    if let (Some(v), Some(cell)) = (
                        local::override_variable(&self.shared, &name),
                        row.get_mut(1),
                    ) {
                        *cell = Value::Bytes(v.into_bytes());
                    }
                }
                executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
            }
            SessionStatement::ShowDatabases(like) => {
                let (cols, rows) =
                    local::show_databases(&self.shared.config(), &self.user, like.as_deref());
                executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
            }
            SessionStatement::ShowTables { full, schema, like } => {
                self.show_tables(stream, full, schema, like, more).await?;
            }
            SessionStatement::KeysHint { schema } => {
                let Some(schema) = schema.or_else(|| self.schema.clone()) else {
                    return Err(ForwardError::Statement(ProxyError::sql(
                        codes::NO_DB,
                        "3D000",
                        "No database selected",
                    )));
                };
                if myshard_router::policy::is_backend_schema(&schema) {
                    return Err(ForwardError::Statement(self.denied(&Denied::Table {
                        command: "ALTER".into(),
                        schema,
                        table: String::new(),
                    })));
                }
                self.check_schema(&schema)
                    .map_err(ForwardError::Statement)?;
                if self.user.access_to(&schema) < myshard_config::Access::Ddl {
                    return Err(ForwardError::Statement(ProxyError::sql(
                        codes::TABLE_ACCESS_DENIED,
                        "42000",
                        format!(
                            "ALTER command denied to user '{}'@'%' in schema '{schema}' (the user's access is {})",
                            self.user.name,
                            self.user.access_to(&schema).name()
                        ),
                    )));
                }
                executor::write_ok(stream, self.framing(more), 0).await?;
            }
            SessionStatement::ShowTableStatus { schema, like } => {
                self.show_table_status(stream, schema, like, more).await?;
            }
            SessionStatement::ShowWarnings { errors } => {
                let (cols, rows) = local::show_warnings(&self.diagnostics, errors);
                executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
            }
            SessionStatement::ExplainRoute(inner) => {
                let (cols, rows) = self
                    .explain_route(&inner)
                    .await
                    .map_err(ForwardError::Statement)?;
                executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
            }
            SessionStatement::Prepare { name, source } => {
                self.sql_prepare(&name, &source)
                    .map_err(ForwardError::Statement)?;
                executor::write_ok(stream, self.framing(more), 0).await?;
            }
            SessionStatement::Execute { name, using } => {
                let bound = self
                    .sql_execute_text(&name, &using)
                    .map_err(ForwardError::Statement)?;
                if matches!(classify(&bound), SessionStatement::Execute { .. }) {
                    return Err(ForwardError::Statement(ProxyError::sql(
                        codes::UNSUPPORTED_PS,
                        "HY000",
                        "This command is not supported in the prepared statement protocol yet",
                    )));
                }
                Box::pin(self.statement(stream, &bound, more)).await?;
            }
            SessionStatement::Deallocate(name) => {
                self.sql_deallocate(&name)
                    .map_err(ForwardError::Statement)?;
                executor::write_ok(stream, self.framing(more), 0).await?;
            }
            SessionStatement::ShowProcesslist { full } => {
                let (cols, rows) = local::processlist(
                    &self.shared.sessions.all(),
                    (!self.admin).then_some(self.user.name.as_str()),
                    full,
                );
                executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
            }
            SessionStatement::Kill { query, id } => {
                self.kill(id, query).map_err(ForwardError::Statement)?;
                executor::write_ok(stream, self.framing(more), 0).await?;
            }
            SessionStatement::Savepoint => self.savepoint(stream, sql, more).await?,
            SessionStatement::UnlockTables => self.unlock_tables(stream, more).await?,
            SessionStatement::Routed => self.routed(stream, sql, &tokens, more).await?,
        }
        Ok(())
    }

    /// `KILL [QUERY] id` of one of myshard's own sessions: the user's own, or any from the
    /// admin port, as MySQL lets a user kill its own threads.
    pub(crate) fn kill(&self, id: u64, query: bool) -> Result<(), ProxyError> {
        let target = self.shared.sessions.get(id).ok_or_else(|| {
            ProxyError::sql(
                codes::NO_SUCH_THREAD,
                "HY000",
                format!("Unknown thread id: {id}"),
            )
        })?;
        if !self.admin && (target.user != self.user.name || target.admin) {
            return Err(ProxyError::sql(
                codes::KILL_DENIED,
                "HY000",
                format!("You are not owner of thread {id}"),
            ));
        }
        let kind = if query {
            crate::sessions::Kill::Query
        } else {
            crate::sessions::Kill::Connection
        };
        if u64::from(self.conn_id) == id {
            // The statement running is this KILL itself.
            if query {
                return Err(ProxyError::sql(
                    codes::QUERY_INTERRUPTED,
                    "70100",
                    "Query execution was interrupted",
                ));
            }
            target.kill(kind);
            return Err(ProxyError::sql(
                codes::CONNECTION_KILLED,
                "70100",
                "Connection was killed",
            ));
        }
        target.kill(kind);
        Ok(())
    }

    pub(crate) fn physical_database(&self) -> Option<String> {
        let config = self.shared.config();
        self.schema
            .as_deref()
            .and_then(|s| config.schema(s))
            .map(|s| s.physical_database().to_string())
    }

    /// The shard that runs session statements (SET, BEGIN, variable reads): the current
    /// schema's default shard, or the first shard.
    pub(crate) fn route_shard(&self, _sql: &str) -> Result<String, ForwardError> {
        let config = self.shared.config();
        let shard = match self.schema.as_deref().and_then(|s| config.schema(s)) {
            Some(s) => s.default_shard.clone(),
            None => config
                .shards
                .first()
                .map(|s| s.name.clone())
                .ok_or_else(|| {
                    ForwardError::Statement(ProxyError::not_supported("no shards are configured"))
                })?,
        };
        Ok(shard)
    }

    pub(crate) async fn collect(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>), ForwardError> {
        let shard = self.route_shard(sql)?;
        let database = self.physical_database();
        let mut conn = self
            .acquire_outside_transaction(&shard, database.as_deref())
            .await
            .map_err(ForwardError::Statement)?;
        conn.count_statement();
        let outgoing = self.outgoing(sql);
        let res = match conn.conn() {
            Ok(c) => executor::collect(c, &shard, &outgoing).await,
            Err(e) => Err(e),
        };
        self.give_back(conn, res.as_ref().err());
        res.map_err(ForwardError::Statement)
    }

    pub(crate) async fn show_tables(
        &mut self,
        stream: &mut PacketStream,
        full: bool,
        schema: Option<String>,
        like: Option<String>,
        more: bool,
    ) -> Result<(), ForwardError> {
        let logical = match schema.or_else(|| self.schema.clone()) {
            Some(s) => s,
            None => {
                return Err(ForwardError::Statement(ProxyError::sql(
                    codes::NO_DB,
                    "3D000",
                    "No database selected",
                )))
            }
        };
        self.check_schema(&logical)
            .map_err(ForwardError::Statement)?;
        let config = self.shared.config();
        let physical = config
            .schema(&logical)
            .map(|s| s.physical_database().to_string())
            .unwrap_or_else(|| logical.clone());
        // The LIKE pattern is matched here, in linear time (a server's matcher recurses on
        // every `%`, and a pattern of many ends the connection).
        let sql = format!(
            "SHOW {}TABLES FROM {}",
            if full { "FULL " } else { "" },
            quote_ident(&physical)
        );
        let saved = self.schema.replace(logical.clone());
        let res = self.collect(&sql).await;
        self.schema = saved;
        let (mut cols, mut rows) = res?;
        match config.schema(&logical).filter(|s| !s.is_unsharded()) {
            Some(schema) => rows = local::logical_tables(schema, rows, full, like.as_deref()),
            None => rows = local::filter_like(rows, like.as_deref()),
        }
        if let Some(first) = cols.first_mut() {
            let label = match &like {
                Some(p) => format!("Tables_in_{logical} ({p})"),
                None => format!("Tables_in_{logical}"),
            };
            *first = first
                .clone()
                .with_name(label.as_bytes())
                .with_org_name(label.as_bytes());
        }
        executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
        Ok(())
    }

    /// SHOW TABLE STATUS of a logical schema: what the logical `information_schema.TABLES`
    /// says of its tables (each once, sharded tables' counters summed over their shards),
    /// under SHOW's column names. The LIKE pattern is matched here, in linear time.
    pub(crate) async fn show_table_status(
        &mut self,
        stream: &mut PacketStream,
        schema: Option<String>,
        like: Option<String>,
        more: bool,
    ) -> Result<(), ForwardError> {
        let Some(logical) = schema.or_else(|| self.schema.clone()) else {
            return Err(ForwardError::Statement(ProxyError::sql(
                codes::NO_DB,
                "3D000",
                "No database selected",
            )));
        };
        self.check_schema(&logical)
            .map_err(ForwardError::Statement)?;
        const COLUMNS: [(&str, &str); 20] = [
            ("TABLE_NAME", "Name"),
            ("ENGINE", "Engine"),
            ("VERSION", "Version"),
            ("ROW_FORMAT", "Row_format"),
            ("TABLE_ROWS", "Rows"),
            ("AVG_ROW_LENGTH", "Avg_row_length"),
            ("DATA_LENGTH", "Data_length"),
            ("MAX_DATA_LENGTH", "Max_data_length"),
            ("INDEX_LENGTH", "Index_length"),
            ("DATA_FREE", "Data_free"),
            ("AUTO_INCREMENT", "Auto_increment"),
            ("CREATE_TIME", "Create_time"),
            ("UPDATE_TIME", "Update_time"),
            ("CHECK_TIME", "Check_time"),
            ("TABLE_COLLATION", "Collation"),
            ("CHECKSUM", "Checksum"),
            ("CREATE_OPTIONS", "Create_options"),
            ("TABLE_COMMENT", "Comment"),
            ("MAX_INDEX_LENGTH", "Max_index_length"),
            ("TEMPORARY", "Temporary"),
        ];
        let items: Vec<String> = COLUMNS
            .iter()
            .map(|(c, label)| format!("{c} AS `{label}`"))
            .collect();
        let sql = format!(
            "SELECT {} FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} ORDER BY TABLE_NAME",
            items.join(", "),
            myshard_router::text::quote(logical.as_bytes(), "")
        );
        let (cols, rows) = self
            .collect_read(&sql)
            .await
            .map_err(ForwardError::Statement)?;
        let rows = local::filter_like(rows, like.as_deref());
        executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
        Ok(())
    }

    /// COMMIT or ROLLBACK on every pinned connection. `reply` is `Some(more)` when the
    /// client's statement must be answered with OK.
    pub(crate) async fn end_transaction(
        &mut self,
        stream: &mut PacketStream,
        verb: &str,
        reply: Option<bool>,
    ) -> Result<(), ForwardError> {
        let res = if verb == "COMMIT" {
            self.commit_branches().await
        } else {
            self.rollback_branches().await;
            Ok(())
        };
        self.in_transaction = false;
        self.unpin_if_free();
        res.map_err(ForwardError::Statement)?;
        if let Some(more) = reply {
            executor::write_ok(stream, self.framing(more), 0).await?;
        }
        Ok(())
    }

    pub(crate) async fn set(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        targets: &[SetTarget],
        more: bool,
    ) -> Result<(), ForwardError> {
        let collations = mariadb_collations(sql);
        let mapped = mariadb_variables(&collations);
        let sql = mapped.as_ref();
        if let Some(SetTarget::Global(name)) =
            targets.iter().find(|t| matches!(t, SetTarget::Global(_)))
        {
            return Err(ForwardError::Statement(ProxyError::sql(
                codes::SPECIFIC_ACCESS_DENIED,
                "42000",
                format!("myshard does not change global variable '{name}' on its shards; set it on each shard, or use SET SESSION"),
            )));
        }
        if targets
            .iter()
            .any(|t| matches!(t, SetTarget::System(n) if n == crate::consistency::VARIABLE))
        {
            self.set_read_consistency(sql, targets)
                .map_err(ForwardError::Statement)?;
            executor::write_ok(stream, self.framing(more), 0).await?;
            return Ok(());
        }
        for t in targets {
            let refused = match t {
                SetTarget::Other(word) => Some(match word.as_str() {
                    "PASSWORD" | "ROLE" | "DEFAULT" => Denied::Privilege {
                        privilege: "CREATE USER",
                        what: format!("SET {word}: myshard's users are configured in its shard map"),
                    },
                    "STATEMENT" => Denied::NotSupported(
                        "SET STATEMENT … FOR is not supported through myshard; SET the variable for the session, run the statement, then set it back".into(),
                    ),
                    _ => Denied::NotSupported(format!(
                        "myshard does not recognise SET {word}; it was not sent to any shard"
                    )),
                }),
                SetTarget::System(name) if myshard_router::policy::is_protected_variable(name) => {
                    Some(Denied::Privilege {
                        privilege: "SUPER",
                        what: format!("variable '{name}' acts beyond this session's own statements"),
                    })
                }
                _ => None,
            };
            if let Some(d) = refused {
                return Err(ForwardError::Statement(self.denied(&d)));
            }
        }
        if targets == [SetTarget::NextTransaction] {
            // Applies to the next transaction: run on each shard before its branch begins.
            if self.in_transaction {
                return Err(ForwardError::Statement(ProxyError::sql(
                    codes::CANT_CHANGE_TX_CHARACTERISTICS,
                    "25001",
                    "Transaction characteristics can't be changed while a transaction is in progress",
                )));
            }
            self.next_tx_settings = Some(self.outgoing(sql).into_owned());
            executor::write_ok(stream, self.framing(more), 0).await?;
            return Ok(());
        }
        if self.in_transaction && turns_autocommit_on(sql) {
            // Switching autocommit on commits the open transaction, as in MySQL.
            self.end_transaction(stream, "COMMIT", None).await?;
        }
        // Every target left is replayable: GLOBAL, next-transaction and the rest (PASSWORD,
        // ROLE, STATEMENT …) were answered or refused above.
        let shard = self.route_shard(sql)?;
        let database = self.physical_database();
        let mut conn = self
            .acquire_outside_transaction(&shard, database.as_deref())
            .await
            .map_err(ForwardError::Statement)?;
        conn.count_statement();
        let outgoing = self.outgoing(sql);
        let res = self.set_on(&mut conn, &shard, &outgoing, targets).await;
        self.give_back(conn, res.as_ref().err());
        res.map_err(ForwardError::Statement)?;
        self.unpin_if_free();
        executor::write_ok(stream, self.framing(more), 0).await?;
        Ok(())
    }

    pub(crate) async fn set_on(
        &mut self,
        conn: &mut PooledConn,
        shard: &str,
        sql: &str,
        targets: &[SetTarget],
    ) -> Result<(), ProxyError> {
        let c = conn.conn()?;
        executor::run(c, shard, sql).await?;
        // Read the values back so other connections get literals, not expressions.
        let mut names: Vec<(bool, String)> = Vec::new();
        for t in targets {
            match t {
                SetTarget::System(n) => names.push((true, n.clone())),
                SetTarget::User(n) => names.push((false, n.clone())),
                SetTarget::Names | SetTarget::CharacterSet => {
                    for n in [
                        "character_set_client",
                        "character_set_connection",
                        "character_set_results",
                        "collation_connection",
                    ] {
                        names.push((true, n.into()));
                    }
                }
                _ => {}
            }
        }
        let select = names
            .iter()
            .map(|(system, n)| {
                if *system {
                    format!("@@session.{}", quote_ident(n))
                } else {
                    format!("@{}", quote_ident(n))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let (cols, rows) = executor::collect(c, shard, &format!("SELECT {select}")).await?;
        let Some(row) = rows.first() else {
            return Ok(());
        };
        for (i, (system, name)) in names.iter().enumerate() {
            let literal = match (row.get(i), cols.get(i)) {
                (Some(Value::Bytes(b)), Some(col)) if is_numeric(col.column_type()) => {
                    String::from_utf8_lossy(b).into_owned()
                }
                // Replayed before the session's sql_mode is known to be in force on a
                // connection: a literal every mode reads alike.
                (Some(Value::Bytes(b)), Some(col)) if col.character_set() == 63 => {
                    myshard_router::text::quote_portable(b, "_binary")
                }
                (Some(Value::Bytes(b)), _) => {
                    myshard_router::text::quote_portable(b, &self.text.introducer())
                }
                _ => "NULL".into(),
            };
            if *system {
                if name == "autocommit" {
                    self.autocommit = literal != "0";
                }
                self.state.set_system(name, literal);
            } else {
                self.state.set_user(name, literal);
            }
        }
        conn.set_fingerprint(self.state.fingerprint());
        self.refresh_text_mode();
        Ok(())
    }

    /// COM_RESET_CONNECTION: back to the state right after the handshake.
    pub async fn reset(&mut self) {
        self.rollback_pinned().await;
        self.state = self.initial_state.clone();
        self.refresh_text_mode();
        self.autocommit = true;
        self.in_transaction = false;
        self.rolled_back = None;
        self.pin_reason = None;
        self.locked.clear();
        self.diagnostics.clear();
        self.last_insert_id = 0;
        self.statements.clear();
        self.read_consistency = None;
    }

    /// Rolls back and resets every pinned connection and returns it to its pool; a
    /// connection that cannot be reset is closed.
    pub async fn rollback_pinned(&mut self) {
        self.rollback_branches().await;
        for (_, mut conn) in self.pinned.drain() {
            let ok = match conn.conn() {
                Ok(c) => c.reset().await.is_ok(),
                Err(_) => false,
            };
            if ok {
                conn.mark_reset();
                BackendPool::release(conn);
            }
        } // The resets released table locks with the rest of the connections' state.
        self.locked.clear();
    }
}

/// MySQL 8's `utf8mb4_0900_*` collations (what MySQL 8 clients ask for by default) under
/// their closest MariaDB equivalents.
fn mariadb_collations(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains("_0900_") {
        return std::borrow::Cow::Borrowed(sql);
    }
    // Names outside quotes only: a string value keeps every byte.
    myshard_router::text::replace_names(
        sql,
        &[
            ("utf8mb4_0900_ai_ci", "utf8mb4_unicode_520_ci"),
            ("utf8mb4_0900_as_ci", "utf8mb4_unicode_520_ci"),
            ("utf8mb4_0900_as_cs", "utf8mb4_bin"),
            ("utf8mb4_0900_bin", "utf8mb4_bin"),
        ],
    )
}

/// MySQL 8's names of the transaction variables (what clients of a MySQL 8 server ask for:
/// SQLAlchemy, Connector/J) under the names MariaDB knows them by.
fn mariadb_variables(sql: &str) -> std::borrow::Cow<'_, str> {
    myshard_router::text::replace_system_variables(
        sql,
        &[
            ("transaction_isolation", "tx_isolation"),
            ("transaction_read_only", "tx_read_only"),
        ],
    )
}

/// Whether a `SET` statement switches autocommit on.
fn turns_autocommit_on(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.split("autocommit").skip(1).any(|rest| {
        let v = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '=' || c == ':');
        v.starts_with('1') || v.starts_with("on") || v.starts_with("true")
    })
}

pub(crate) fn is_numeric(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_DECIMAL
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
    )
}
