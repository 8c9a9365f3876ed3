//! One client session: its schema, variables and transaction state, the backend connections
//! it has pinned, and the dispatch of each statement to the session layer, the local answers
//! or the shards.

use crate::backend::{BackendPool, PooledConn, SessionState};
use crate::error::{codes, ProxyError};
use crate::executor::{self, ForwardError, Framing};
use crate::local;
use crate::protocol::PacketStream;
use crate::server::Shared;
use myshard_config::UserConfig;
use myshard_merger::MergeSpec;
use myshard_router::session::{classify, pins_connection, SessionStatement, SetTarget};
use myshard_router::{RouteError, RoutePlan, StatementKind};
use myshard_sql_rewrite::planner::PlanError;
use myshard_sql_rewrite::{ExecPlan, RewriteError, ShardQuery};
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
    /// Tables are being copied as literal rows for a statement one server evaluates whole:
    /// every column must keep its type exactly.
    pub(crate) exact_copies: bool,
    /// Role of the statement being run (reads may go to replicas).
    pub role: myshard_router::Role,
    /// When this session last used each shard's primary (read-your-writes).
    pub last_write: HashMap<String, std::time::Instant>,
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

    fn found_rows(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_FOUND_ROWS)
    }

    fn is_pinned(&self) -> bool {
        self.in_transaction || !self.autocommit || self.pin_reason.is_some()
    }

    /// Checks that the user may use `schema` and that it exists.
    pub fn check_schema(&self, schema: &str) -> Result<(), ProxyError> {
        let config = self.shared.config();
        let allowed = self.user.schemas.iter().any(|s| s == schema);
        if config.schema(schema).is_none() {
            if allowed {
                return Err(ProxyError::sql(
                    codes::BAD_DB,
                    "42000",
                    format!("Unknown database '{schema}'"),
                ));
            }
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
    fn replica_read(&self, shard: &str) -> bool {
        if self.role != myshard_router::Role::Replica || self.is_pinned() {
            return false;
        }
        let window = self.shared.config().backend.read_your_writes_ms;
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

    async fn acquire_for(
        &mut self,
        shard: &str,
        database: Option<&str>,
        join: bool,
    ) -> Result<PooledConn, ProxyError> {
        if let Some(mut conn) = self.pinned.remove(shard) {
            let joined = match conn.prepare(database, &self.state).await {
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
            // Circuit breaker: a backend whose connection broke takes no new statements until
            // its health check answers again.
            conn.mark_backend_down();
            // The shard rolled its branch back when the connection broke; the rest of the
            // transaction is rolled back after the statement fails.
            self.branches.remove(conn.shard());
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
            match self.statement(stream, stmt.trim(), more).await {
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
        let kind = classify(sql);
        if !matches!(kind, SessionStatement::ShowWarnings { .. }) {
            self.diagnostics.clear();
        }
        match kind {
            SessionStatement::Use(db) => {
                self.check_schema(&db).map_err(ForwardError::Statement)?;
                self.schema = Some(db);
                executor::write_ok(stream, self.framing(more), 0).await?;
            }
            SessionStatement::Begin => {
                // Ends any open transaction first, as MySQL's implicit commit does.
                self.end_transaction(stream, "COMMIT", None).await?;
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
                let (cols, mut rows) = self.collect(sql).await?;
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
            SessionStatement::ShowVariables(_) => {
                let (cols, mut rows) = self.collect(sql).await?;
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
            SessionStatement::ShowWarnings { errors } => {
                let (cols, rows) = local::show_warnings(&self.diagnostics, errors);
                executor::write_result(stream, &cols, &rows, self.framing(more)).await?;
            }
            SessionStatement::ExplainRoute(inner) => {
                let (plan, exec) = self.plan(&inner).map_err(ForwardError::Statement)?;
                let cols = [
                    local::text_column("shard"),
                    local::text_column("table"),
                    local::text_column("sql"),
                    local::text_column("merge"),
                ];
                let merge = format!("{:?}", exec.merge);
                let rows: Vec<Vec<Value>> = exec
                    .queries
                    .iter()
                    .map(|q| {
                        vec![
                            Value::Bytes(q.shard.clone().into_bytes()),
                            q.table
                                .map_or(Value::NULL, |t| Value::Bytes(t.to_string().into_bytes())),
                            Value::Bytes(q.sql.clone().into_bytes()),
                            Value::Bytes(merge.clone().into_bytes()),
                        ]
                    })
                    .collect();
                let _ = plan;
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
            SessionStatement::Savepoint => self.savepoint(stream, sql, more).await?,
            SessionStatement::Routed => self.routed(stream, sql, more).await?,
        }
        Ok(())
    }

    fn physical_database(&self) -> Option<String> {
        let config = self.shared.config();
        self.schema
            .as_deref()
            .and_then(|s| config.schema(s))
            .map(|s| s.physical_database().to_string())
    }

    /// The shard that runs session statements (SET, BEGIN, variable reads): the current
    /// schema's default shard, or the first shard.
    fn route_shard(&self, _sql: &str) -> Result<String, ForwardError> {
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

    async fn collect(
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
        let outgoing = self.outgoing(sql).into_owned();
        let res = match conn.conn() {
            Ok(c) => executor::collect(c, &shard, &outgoing).await,
            Err(e) => Err(e),
        };
        self.give_back(conn, res.as_ref().err());
        res.map_err(ForwardError::Statement)
    }

    async fn show_tables(
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
        let mut sql = format!(
            "SHOW {}TABLES FROM `{}`",
            if full { "FULL " } else { "" },
            physical.replace('`', "``")
        );
        if let Some(p) = &like {
            sql.push_str(&format!(
                " LIKE {}",
                myshard_router::text::quote(p.as_bytes(), "_utf8mb4")
            ));
        }
        let saved = self.schema.replace(logical.clone());
        let res = self.collect(&sql).await;
        self.schema = saved;
        let (mut cols, mut rows) = res?;
        if let Some(schema) = config.schema(&logical).filter(|s| !s.is_unsharded()) {
            rows = local::logical_tables(schema, rows, full, like.as_deref());
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

    /// COMMIT or ROLLBACK on every pinned connection. `reply` is `Some(more)` when the
    /// client's statement must be answered with OK.
    async fn end_transaction(
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

    async fn set(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        targets: &[SetTarget],
        more: bool,
    ) -> Result<(), ForwardError> {
        let mapped = mariadb_collations(sql);
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
        let replayable = targets.iter().all(|t| {
            matches!(
                t,
                SetTarget::System(_)
                    | SetTarget::User(_)
                    | SetTarget::Names
                    | SetTarget::CharacterSet
            )
        });
        if !replayable {
            self.pin_reason = Some("SET statement whose effect cannot be replayed");
        }
        let shard = self.route_shard(sql)?;
        let database = self.physical_database();
        let mut conn = self
            .acquire_outside_transaction(&shard, database.as_deref())
            .await
            .map_err(ForwardError::Statement)?;
        conn.count_statement();
        let outgoing = self.outgoing(sql).into_owned();
        let res = self
            .set_on(&mut conn, &shard, &outgoing, targets, replayable)
            .await;
        self.give_back(conn, res.as_ref().err());
        res.map_err(ForwardError::Statement)?;
        self.unpin_if_free();
        executor::write_ok(stream, self.framing(more), 0).await?;
        Ok(())
    }

    async fn set_on(
        &mut self,
        conn: &mut PooledConn,
        shard: &str,
        sql: &str,
        targets: &[SetTarget],
        replayable: bool,
    ) -> Result<(), ProxyError> {
        let c = conn.conn()?;
        executor::run(c, shard, sql).await?;
        if !replayable {
            return Ok(());
        }
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
                    format!("@@session.`{}`", n.replace('`', "``"))
                } else {
                    format!("@`{}`", n.replace('`', "``"))
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

    /// Routes and rewrites a statement into its execution plan, each target's SQL in the
    /// session's own text form.
    pub fn plan(&self, sql: &str) -> Result<(RoutePlan, ExecPlan), ProxyError> {
        self.plan_checked(sql).map_err(|r| r.error)
    }

    /// [`Session::plan`], keeping what the planner's refusal says beside its ERR packet.
    pub(crate) fn plan_checked(&self, sql: &str) -> Result<(RoutePlan, ExecPlan), Refusal> {
        let mut ids = self.shared.ids();
        let (plan, mut exec) = myshard_sql_rewrite::planner::plan(
            &self.shared.router(),
            self.schema.as_deref(),
            sql,
            &mut ids,
        )
        .map_err(|e| Refusal {
            error: plan_error(&e),
            unsupported: e.is_unsupported(),
            join_off_key: e.join_off_key().map(str::to_string),
        })?;
        let refuse = |error| Refusal {
            error,
            unsupported: false,
            join_off_key: None,
        };
        if plan.hinted && !self.user.allow_hints {
            return Err(refuse(ProxyError::sql(
                codes::SPECIFIC_ACCESS_DENIED,
                "42000",
                format!(
                    "Access denied; user '{}' may not use /* myshard:shard=… */ hints (allow_hints)",
                    self.user.name
                ),
            )));
        }
        for q in &mut exec.queries {
            // A rewrite that ended a literal early would read as two statements here: refuse
            // it rather than let a shard run the second.
            if q.sql != sql && !myshard_router::text::is_single_statement(&q.sql) {
                return Err(refuse(ProxyError::not_supported(
                    "invariant: a rewritten statement reads as several statements; refused",
                )));
            }
            if let std::borrow::Cow::Owned(s) = self.outgoing(&q.sql) {
                q.sql = s;
            }
        }
        Ok((plan, exec))
    }

    async fn routed(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        more: bool,
    ) -> Result<(), ForwardError> {
        // Protection first: a shed or throttled statement costs no planning (and no ids).
        let config = self.shared.config();
        if let Some(class) = self.shared.shed_class(&config, sql) {
            self.shared.metrics.shed.inc();
            return Err(ForwardError::Statement(ProxyError::sql(
                codes::USER_LIMIT_REACHED,
                "42000",
                format!("non-core statement class '{class}' is being shed to protect the shards; retry later"),
            )));
        }
        if let Err((name, qps)) = self.shared.take_rate_tokens(&config, &self.user.name, sql) {
            self.shared.metrics.throttled.inc();
            return Err(ForwardError::Statement(ProxyError::sql(
                codes::USER_LIMIT_REACHED,
                "42000",
                format!("rate limit '{name}' ({qps} statements/s) exceeded; myshard refused the statement"),
            )));
        }
        if let Some(reason) = pins_connection(sql) {
            self.pin_reason = Some(reason);
        }
        let (plan, exec) = self
            .plan_materialized(sql)
            .await
            .map_err(ForwardError::Statement)?;
        self.role = exec.role;
        let route = if exec.queries.len() > 1 {
            "scatter"
        } else {
            "single"
        };
        for q in &exec.queries {
            self.shared
                .metrics
                .statements
                .with_label_values(&[plan.kind.label(), route, &q.shard])
                .inc();
        }
        let timer = self
            .shared
            .metrics
            .latency
            .with_label_values(&[route])
            .start_timer();
        let started = std::time::Instant::now();
        self.rows = 0;
        self.in_flight.clear();
        let _running = RunningGuard::new(&self.shared);
        let timeout_ms = config.protection.statement_timeout_ms;
        let res = if timeout_ms == 0 {
            self.execute_or_copy(stream, sql, &plan, &exec, more).await
        } else {
            match tokio::time::timeout(
                std::time::Duration::from_millis(timeout_ms),
                self.execute_or_copy(stream, sql, &plan, &exec, more),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => {
                    // Stop the statement on every backend it reached; their connections were
                    // dropped with the statement.
                    for (pool, id) in self.in_flight.drain(..) {
                        tokio::spawn(async move { pool.kill_query(id).await });
                    }
                    self.pinned.clear();
                    self.branches.clear();
                    self.xid = None;
                    self.savepoints.clear();
                    self.in_transaction = false;
                    Err(ForwardError::Statement(ProxyError::sql(
                        codes::QUERY_TIMEOUT,
                        "HY000",
                        format!("Query execution was interrupted, maximum statement execution time exceeded ({timeout_ms} ms, protection.statement_timeout_ms)"),
                    )))
                }
            }
        };
        self.in_flight.clear();
        timer.observe_duration();
        let shards: Vec<String> = exec.queries.iter().map(|q| q.shard.clone()).collect();
        self.shared.observer.record(
            sql,
            started.elapsed(),
            self.rows,
            &shards,
            &self.user.name,
            std::time::Duration::from_millis(config.server.slow_query_ms),
            config.server.slow_query_log.as_deref(),
        );
        res
    }

    /// Runs a planned statement. A read the shards' answers show cannot be merged (UNION
    /// branches of different column kinds, say) is run over a copy of its tables instead,
    /// when nothing of it reached the client yet.
    async fn execute_or_copy(
        &mut self,
        stream: &mut PacketStream,
        sql: &str,
        plan: &RoutePlan,
        exec: &ExecPlan,
        more: bool,
    ) -> Result<(), ForwardError> {
        let before = stream.packets_written();
        match self.execute(stream, plan, exec, more).await {
            Err(ForwardError::Statement(e))
                if plan.kind == StatementKind::Read
                    && e.to_err().0 == codes::NOT_SUPPORTED_YET
                    && stream.packets_written() == before =>
            {
                let (plan, exec) = self
                    .plan_copy(sql, e)
                    .await
                    .map_err(ForwardError::Statement)?;
                Box::pin(self.execute(stream, &plan, &exec, more)).await
            }
            other => other,
        }
    }

    async fn execute(
        &mut self,
        stream: &mut PacketStream,
        plan: &RoutePlan,
        exec: &ExecPlan,
        more: bool,
    ) -> Result<(), ForwardError> {
        // DDL commits the open transaction first, as in MySQL.
        if plan.kind == StatementKind::Ddl && self.in_transaction {
            self.end_transaction(stream, "COMMIT", None).await?;
        }
        let res = self.dispatch(stream, exec, plan.kind, more).await;
        if matches!(plan.kind, StatementKind::Write | StatementKind::Ddl) {
            // The read-your-writes window runs from the acknowledgement: replicas start
            // applying the write only once it committed, however long it took.
            let now = std::time::Instant::now();
            for q in &exec.queries {
                self.last_write.insert(q.shard.clone(), now);
            }
        }
        if plan.kind != StatementKind::Read {
            self.mark_written(exec.queries.iter().map(|q| q.shard.as_str()));
        }
        if res.is_ok() {
            match plan.kind {
                StatementKind::Read => {
                    self.row_count = -1;
                    self.found_rows = self.rows;
                }
                StatementKind::Ddl => self.row_count = 0,
                _ => self.row_count = self.rows as i64,
            }
        }
        res
    }

    async fn dispatch(
        &mut self,
        stream: &mut PacketStream,
        exec: &ExecPlan,
        kind: StatementKind,
        more: bool,
    ) -> Result<(), ForwardError> {
        match (&exec.merge, exec.queries.as_slice(), exec.last_insert_id) {
            (MergeSpec::Passthrough, [query], None) => self.single(stream, query, more).await,
            (MergeSpec::Select(spec), queries, _) => {
                let spec = spec.clone();
                self.merged_select(stream, queries, &spec, exec.union, more)
                    .await
            }
            (MergeSpec::Concat { offset, limit }, queries, _) => {
                let mut state = executor::ConcatState::new(*offset, *limit);
                state.union = exec.union;
                self.concat(stream, queries, state, more).await
            }
            (merge, queries, last_insert_id) => {
                let first_only = matches!(merge, MergeSpec::First);
                let atomic = kind == StatementKind::Write && self.begin_atomic_write(queries);
                self.write_all(stream, queries, first_only, last_insert_id, atomic, more)
                    .await
            }
        }
    }

    /// The single-shard fast path: results stream straight through.
    async fn single(
        &mut self,
        stream: &mut PacketStream,
        query: &ShardQuery,
        more: bool,
    ) -> Result<(), ForwardError> {
        let mut retried = false;
        let (mut conn, res) = loop {
            let mut conn = self
                .acquire(&query.shard, query.database.as_deref())
                .await
                .map_err(ForwardError::Statement)?;
            conn.count_statement();
            let framing = self.framing(more);
            let before = stream.packets_written();
            let shard_timer = self
                .shared
                .metrics
                .shard_latency
                .with_label_values(&[&query.shard])
                .start_timer();
            let res = match conn.conn() {
                Ok(c) => {
                    executor::forward(
                        stream,
                        c,
                        &query.shard,
                        &query.sql,
                        framing,
                        self.shared.identity_overrides(),
                    )
                    .await
                }
                Err(e) => Err(ForwardError::Statement(e)),
            };
            shard_timer.observe_duration();
            // A replica that fails before anything reached the client: retry the read once
            // elsewhere (another replica, or the primary).
            let lost = matches!(
                &res,
                Err(ForwardError::Statement(ProxyError::ShardUnavailable { .. }))
            );
            if lost && conn.is_replica() && !retried && stream.packets_written() == before {
                tracing::warn!(shard = %query.shard, backend = conn.addr(), "replica failed mid-read; retrying elsewhere");
                conn.mark_backend_down();
                drop(conn);
                retried = true;
                continue;
            }
            break (conn, res);
        };
        let outcome = match res {
            Ok(o) => o,
            Err(e) => {
                match &e {
                    ForwardError::Statement(pe) => self.give_back(conn, Some(pe)),
                    ForwardError::Client(_) => drop(conn),
                }
                return Err(e);
            }
        };
        self.rows = outcome.rows;
        if outcome.last_insert_id != 0 {
            self.last_insert_id = outcome.last_insert_id;
        }
        if outcome.warnings > 0 {
            self.fetch_warnings(&mut conn, &query.shard).await;
        }
        self.give_back(conn, None);
        self.unpin_if_free();
        Ok(())
    }

    async fn fetch_warnings(&mut self, conn: &mut PooledConn, shard: &str) {
        if let Ok(c) = conn.conn() {
            if let Ok((_, rows)) = executor::collect(c, shard, "SHOW WARNINGS").await {
                self.diagnostics
                    .extend(rows.iter().filter_map(|r| local::diagnostic_from_row(r)));
            }
        }
    }

    /// A read over several targets whose row order MySQL leaves open: each target's rows
    /// in turn, with OFFSET/LIMIT applied here.
    async fn concat(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        mut state: executor::ConcatState,
        more: bool,
    ) -> Result<(), ForwardError> {
        let framing = self.framing(more);
        if queries.len() > 1 && distinct_shards(queries) {
            let mut conns = self
                .acquire_all(queries)
                .await
                .map_err(ForwardError::Statement)?;
            let res = match raw_conns(&mut conns) {
                Ok(raw) => {
                    executor::concat_streams(stream, raw, queries, &mut state, framing).await
                }
                Err(e) => Err(e),
            };
            self.give_back_all(conns, res.as_ref().err());
            res?;
            executor::concat_end(stream, &state, framing).await?;
            self.rows = state.sent;
            self.unpin_if_free();
            return Ok(());
        }
        for query in queries {
            let mut conn = self
                .acquire(&query.shard, query.database.as_deref())
                .await
                .map_err(ForwardError::Statement)?;
            conn.count_statement();
            let res = match conn.conn() {
                Ok(c) => {
                    executor::concat_part(stream, c, &query.shard, &query.sql, &mut state, framing)
                        .await
                }
                Err(e) => Err(ForwardError::Statement(e)),
            };
            match res {
                Ok(()) => self.give_back(conn, None),
                Err(e) => {
                    match &e {
                        ForwardError::Statement(pe) => self.give_back(conn, Some(pe)),
                        ForwardError::Client(_) => drop(conn),
                    }
                    return Err(e);
                }
            }
        }
        executor::concat_end(stream, &state, framing).await?;
        self.rows = state.sent;
        self.unpin_if_free();
        Ok(())
    }

    /// A SELECT over several targets that needs aggregation, de-duplication or sorting: each
    /// target's rows are collected, merged with MySQL's semantics, then sent.
    async fn merged_select(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        spec: &myshard_merger::SelectMerge,
        union: bool,
        more: bool,
    ) -> Result<(), ForwardError> {
        if spec.stream_order().is_some() && distinct_shards(queries) && queries.len() > 1 {
            return self.sorted_streams(stream, queries, spec, more).await;
        }
        let (out_columns, rows) = self
            .merged_rows(queries, spec, union)
            .await
            .map_err(ForwardError::Statement)?;
        self.unpin_if_free();
        let warnings = u16::try_from(self.diagnostics.len()).unwrap_or(u16::MAX);
        executor::write_result_warning(stream, &out_columns, &rows, self.framing(more), warnings)
            .await?;
        Ok(())
    }

    /// Gives back the connections of a statement that ran on several at once: after a client
    /// failure they are closed; after a shard's failure only that shard's is suspect.
    fn give_back_all(&mut self, conns: Vec<PooledConn>, failed: Option<&ForwardError>) {
        match failed {
            Some(ForwardError::Client(_)) => drop(conns),
            Some(ForwardError::Statement(e)) => {
                for conn in conns {
                    let theirs = matches!(e, ProxyError::ShardUnavailable { shard, .. } if shard == conn.shard());
                    self.give_back(conn, theirs.then_some(e));
                }
            }
            None => {
                for conn in conns {
                    self.give_back(conn, None);
                }
            }
        }
    }

    /// One connection per target (each target on its own shard), counted as running a
    /// statement; on failure the ones already taken go back.
    async fn acquire_all(&mut self, queries: &[ShardQuery]) -> Result<Vec<PooledConn>, ProxyError> {
        let mut conns = Vec::with_capacity(queries.len());
        for query in queries {
            match self.acquire(&query.shard, query.database.as_deref()).await {
                Ok(conn) => {
                    conn.count_statement();
                    conns.push(conn);
                }
                Err(e) => {
                    for conn in conns {
                        self.give_back(conn, None);
                    }
                    return Err(e);
                }
            }
        }
        // Shards joined by this statement make the transaction span several: bound the
        // lock waits of the branches that began before them, as this statement runs on all.
        for i in 0..conns.len() {
            let shard = queries[i].shard.as_str();
            if let Err(e) = self.bound_lock_waits(&mut conns[i], shard).await {
                for conn in conns {
                    self.give_back(conn, None);
                }
                return Err(e);
            }
        }
        Ok(conns)
    }

    /// Every target's first result set: all at once when each target is on its own shard,
    /// else one after the other (a transaction has one connection per shard).
    async fn collect_all(
        &mut self,
        queries: &[ShardQuery],
    ) -> Result<Vec<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>)>, ProxyError> {
        if !distinct_shards(queries) {
            let mut out = Vec::with_capacity(queries.len());
            for query in queries {
                let mut conn = self
                    .acquire(&query.shard, query.database.as_deref())
                    .await?;
                conn.count_statement();
                let res = collect_timed(&self.shared, &mut conn, query).await;
                self.give_back(conn, res.as_ref().err());
                out.push(res?);
            }
            return Ok(out);
        }
        let mut conns = self.acquire_all(queries).await?;
        let shared = self.shared.clone();
        let results =
            futures_util::future::join_all(conns.iter_mut().zip(queries).map(|(conn, query)| {
                let shared = &shared;
                async move { collect_timed(shared, conn, query).await }
            }))
            .await;
        let mut out = Vec::with_capacity(queries.len());
        let mut first_error = None;
        for (conn, res) in conns.into_iter().zip(results) {
            self.give_back(conn, res.as_ref().err());
            match res {
                Ok(r) => out.push(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// A sorted or grouped read over several targets (one connection each), merged as
    /// streams.
    async fn sorted_streams(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        spec: &myshard_merger::SelectMerge,
        more: bool,
    ) -> Result<(), ForwardError> {
        let framing = self.framing(more);
        let mut conns = self
            .acquire_all(queries)
            .await
            .map_err(ForwardError::Statement)?;
        let limit = self.shared.config().server.merge_memory_limit;
        let res = match raw_conns(&mut conns) {
            Ok(raw) => {
                executor::merge_sorted_streams(stream, raw, queries, spec, framing, limit).await
            }
            Err(e) => Err(e),
        };
        self.give_back_all(conns, res.as_ref().err());
        let sent = res?;
        self.shared.metrics.merge_rows.inc_by(sent);
        self.rows = sent;
        self.unpin_if_free();
        Ok(())
    }

    /// The merged rows of a SELECT over several targets.
    pub(crate) async fn merged_rows(
        &mut self,
        queries: &[ShardQuery],
        spec: &myshard_merger::SelectMerge,
        union: bool,
    ) -> Result<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>), ProxyError> {
        let mut columns: Option<Vec<mysql_common::packets::Column>> = None;
        let mut union_branches: Vec<Vec<mysql_common::packets::Column>> = Vec::new();
        let mut per_shard = Vec::with_capacity(queries.len());
        let answers = self.collect_all(queries).await?;
        for (query, (cols, rows)) in queries.iter().zip(answers) {
            let bytes: usize = rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| match v {
                            Value::Bytes(b) => b.len(),
                            _ => 8,
                        })
                        .sum::<usize>()
                })
                .sum();
            self.shared.metrics.merge_bytes.inc_by(bytes as u64);
            match &columns {
                None => columns = Some(cols),
                Some(first) => {
                    crate::merge::check_same_shape(first, &cols, &query.shard)?;
                    if union {
                        union_branches.push(cols);
                    }
                }
            }
            per_shard.push(
                rows.into_iter()
                    .map(crate::merge::cells)
                    .collect::<Vec<_>>(),
            );
        }
        let mut columns = columns.unwrap_or_default();
        if union {
            let mut all: Vec<&[mysql_common::packets::Column]> = vec![&columns];
            all.extend(union_branches.iter().map(|b| b.as_slice()));
            columns = crate::merge::union_columns(&all);
        }
        let limit = self.shared.config().server.merge_memory_limit;
        let (out_columns, rows, cuts) =
            crate::merge::merge_select(spec, &columns, per_shard, limit)?;
        for row in cuts {
            self.diagnostics.push(Diagnostic {
                level: "Warning".into(),
                code: 1260,
                message: format!("Row {row} was cut by GROUP_CONCAT()"),
            });
        }
        self.shared.metrics.merge_rows.inc_by(rows.len() as u64);
        self.rows = rows.len() as u64;
        Ok((out_columns, rows))
    }

    /// Writes and DDL on several targets (or with generated ids): every target must succeed;
    /// one OK with the summed affected rows (the first target's, for broadcast tables).
    /// `atomic`: the targets' parts form one XA transaction begun by
    /// [`Session::begin_atomic_write`], committed before the OK and rolled back on any error.
    async fn write_all(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        first_only: bool,
        last_insert_id: Option<u64>,
        atomic: bool,
        more: bool,
    ) -> Result<(), ForwardError> {
        let mut total = executor::OkInfo::default();
        for (i, query) in queries.iter().enumerate() {
            let res = match self.acquire(&query.shard, query.database.as_deref()).await {
                Ok(mut conn) => {
                    conn.count_statement();
                    let res = match conn.conn() {
                        Ok(c) => executor::run_for_ok(c, &query.shard, &query.sql).await,
                        Err(e) => Err(e),
                    };
                    if matches!(&res, Ok(ok) if ok.warnings > 0) {
                        self.fetch_warnings(&mut conn, &query.shard).await;
                    }
                    self.give_back(conn, res.as_ref().err());
                    res
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(ok) => {
                    if i == 0 || !first_only {
                        total.affected_rows += ok.affected_rows;
                        total.warnings = total.warnings.saturating_add(ok.warnings);
                        if total.last_insert_id == 0 {
                            total.last_insert_id = ok.last_insert_id;
                        }
                        if queries.len() == 1 || first_only {
                            total.info = ok.info;
                        }
                    }
                }
                Err(e) if atomic => {
                    let e = self.suspected_deadlock(e);
                    self.rollback_branches().await;
                    self.unpin_if_free();
                    return Err(ForwardError::Statement(e));
                }
                Err(e) => {
                    let e = if i > 0 && !self.in_transaction {
                        let (code, _, message) = e.to_err();
                        ProxyError::sql(
                            code,
                            "HY000",
                            format!("{message} (on shard '{}'; the statement already ran on {i} other target(s) outside a transaction)", query.shard),
                        )
                    } else {
                        e
                    };
                    return Err(ForwardError::Statement(e));
                }
            }
        }
        if atomic {
            self.mark_written(queries.iter().map(|q| q.shard.as_str()));
            let committed = self.commit_branches().await;
            self.unpin_if_free();
            committed.map_err(ForwardError::Statement)?;
        }
        if let Some(id) = last_insert_id {
            total.last_insert_id = id;
        }
        self.rows = total.affected_rows;
        if total.last_insert_id != 0 {
            self.last_insert_id = total.last_insert_id;
        }
        self.unpin_if_free();
        let ok = crate::protocol::response::Ok {
            affected_rows: total.affected_rows,
            last_insert_id: total.last_insert_id,
            status: self.framing(more).status_with_more(),
            warnings: total.warnings,
            info: total.info,
        };
        stream.write_packet(&ok.encode(0)).await?;
        Ok(())
    }

    /// The result columns a read would return, without running it: the first target's
    /// statement is prepared on its shard, and merged reads map those columns through the
    /// merge (uncorrelated subqueries run first, as at execution).
    pub(crate) async fn describe_read(
        &mut self,
        sql: &str,
    ) -> Result<Vec<mysql_common::packets::Column>, ProxyError> {
        // Writes and DDL return no rows: no planning (which would also spend generated ids).
        let head = myshard_router::lexer::tokenize(sql.get(..64).unwrap_or(sql));
        if myshard_router::route::first_kind(&head) != StatementKind::Read {
            return Ok(Vec::new());
        }
        let (plan, exec) = self.plan_materialized(sql).await?;
        let empty = Vec::new;
        // Preparing a read on its shard runs nothing, locking reads included.
        if plan.kind != StatementKind::Read {
            return Ok(empty());
        }
        let Some(q) = exec.queries.first() else {
            return Ok(empty());
        };
        self.role = exec.role;
        let mut conn = self
            .acquire_outside_transaction(&q.shard, q.database.as_deref())
            .await?;
        let res = match conn.conn() {
            Ok(c) => match mysql_async::prelude::Queryable::prep(c, q.sql.as_str()).await {
                Ok(stmt) => {
                    let cols = stmt.columns().to_vec();
                    let _ = mysql_async::prelude::Queryable::close(c, stmt).await;
                    Ok(cols)
                }
                Err(e) => Err(ProxyError::from_driver(&q.shard, e)),
            },
            Err(e) => Err(e),
        };
        self.give_back(conn, res.as_ref().err());
        self.unpin_if_free();
        let columns = res?;
        match &exec.merge {
            MergeSpec::Select(spec) => {
                let (out, _, _) =
                    crate::merge::merge_select(spec, &columns, Vec::new(), usize::MAX)?;
                Ok(out)
            }
            _ => Ok(columns),
        }
    }

    /// The column definitions a statement would return (for COM_FIELD_LIST).
    pub async fn columns_of(
        &mut self,
        sql: &str,
    ) -> Result<Vec<mysql_common::packets::Column>, ProxyError> {
        match self.collect(sql).await {
            Ok((cols, _)) => Ok(cols),
            Err(ForwardError::Statement(e)) => Err(e),
            Err(ForwardError::Client(e)) => Err(ProxyError::Protocol {
                code: 2013,
                message: e.to_string(),
            }),
        }
    }

    /// COM_RESET_CONNECTION: back to the state right after the handshake.
    pub async fn reset(&mut self) {
        self.rollback_pinned().await;
        self.state = self.initial_state.clone();
        self.refresh_text_mode();
        self.autocommit = true;
        self.in_transaction = false;
        self.pin_reason = None;
        self.diagnostics.clear();
        self.last_insert_id = 0;
        self.statements.clear();
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
        }
    }
}

/// A statement the planner refused: its ERR packet, and what the refusal says for the
/// parts of a statement myshard runs itself first (`proxy::subquery`).
pub(crate) struct Refusal {
    /// The error for the client.
    pub error: ProxyError,
    /// A shape myshard does not support as written (ER_NOT_SUPPORTED_YET).
    pub unsupported: bool,
    /// The table of a join off the sharding key that made the router refuse.
    pub join_off_key: Option<String>,
}

/// The one mapping of planner refusals to MySQL errors.
fn plan_error(e: &PlanError) -> ProxyError {
    match e {
        PlanError::Route(RouteError::NoDatabase) => {
            ProxyError::sql(codes::NO_DB, "3D000", "No database selected")
        }
        PlanError::Route(RouteError::UnknownDatabase(db)) => {
            ProxyError::sql(codes::BAD_DB, "42000", format!("Unknown database '{db}'"))
        }
        PlanError::Rewrite(RewriteError::UnionColumnCount) => {
            ProxyError::sql(1222, "21000", e.to_string())
        }
        other => ProxyError::not_supported(other.to_string()),
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

/// Counts a running statement for automatic shedding.
struct RunningGuard {
    shared: Arc<Shared>,
}

impl RunningGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared
            .running
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RunningGuard {
            shared: shared.clone(),
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.shared
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The driver connections of pooled ones, to run statements on all of them at once.
fn raw_conns(conns: &mut [PooledConn]) -> Result<Vec<&mut mysql_async::Conn>, ForwardError> {
    conns
        .iter_mut()
        .map(|c| c.conn().map_err(ForwardError::Statement))
        .collect()
}

/// Whether every target is on its own shard (so each can have its own connection at once).
fn distinct_shards(queries: &[ShardQuery]) -> bool {
    let mut names: Vec<&str> = queries.iter().map(|q| q.shard.as_str()).collect();
    names.sort_unstable();
    names.windows(2).all(|w| w[0] != w[1])
}

/// Runs a target's statement and collects its rows, timing it per shard.
async fn collect_timed(
    shared: &Shared,
    conn: &mut PooledConn,
    query: &ShardQuery,
) -> Result<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>), ProxyError> {
    let timer = shared
        .metrics
        .shard_latency
        .with_label_values(&[&query.shard])
        .start_timer();
    let res = match conn.conn() {
        Ok(c) => executor::collect(c, &query.shard, &query.sql).await,
        Err(e) => Err(e),
    };
    timer.observe_duration();
    res
}
