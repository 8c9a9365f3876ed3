//! One client connection: handshake and authentication, then the command loop.

use crate::backend::SessionState;
use crate::error::{codes, ProxyError};
use crate::executor;
use crate::protocol::auth::{self, FAST_AUTH_OK, PERFORM_FULL_AUTH, REQUEST_PUBLIC_KEY};
use crate::protocol::handshake::{self, ClientHello};
use crate::protocol::response::{err_packet, Ok as OkPacket};
use crate::protocol::stream::PacketError;
use crate::protocol::{Command, PacketStream};
use crate::server::Shared;
use crate::session::Session;
use myshard_config::AuthPlugin;
use myshard_router::text::quote_portable;
use mysql_common::collations::{Collation, CollationId};
use mysql_common::constants::CapabilityFlags;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The largest packet a client may send before it is authenticated.
pub const HANDSHAKE_MAX_PACKET: usize = 64 * 1024;

/// Serves one client until it quits, fails, idles out, or the server shuts down.
pub async fn serve(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr, admin: bool) {
    let config = shared.config();
    // Before authentication a client sends nothing larger than its handshake response.
    let mut stream = PacketStream::new(
        socket,
        config.server.max_allowed_packet.min(HANDSHAKE_MAX_PACKET),
    );
    let conn_id = shared.next_conn_id();
    let timeout = Duration::from_millis(config.server.handshake_timeout_ms);
    let session = match tokio::time::timeout(
        timeout,
        handshake(&shared, &mut stream, conn_id, peer, admin),
    )
    .await
    {
        Ok(Ok(pair)) => pair,
        Ok(Err(Some(e))) => {
            tracing::debug!(%peer, "handshake refused: {e}");
            let _ = executor::write_error(&mut stream, &e).await;
            stream.shutdown().await;
            return;
        }
        Ok(Err(None)) | Err(_) => {
            stream.shutdown().await;
            return;
        }
    };
    let (mut session, _slot) = session;
    stream.set_max_allowed_packet(config.server.max_allowed_packet);
    command_loop(&mut session, &mut stream).await;
    session.rollback_pinned().await;
    tracing::debug!(conn_id = session.conn_id, %peer, "client disconnected");
    stream.shutdown().await;
}

fn bad_handshake() -> Option<ProxyError> {
    Some(ProxyError::Protocol {
        code: codes::BAD_HANDSHAKE,
        message: "Bad handshake".into(),
    })
}

fn from_packet_error(e: PacketError) -> Option<ProxyError> {
    match e {
        PacketError::TooLarge => Some(ProxyError::Protocol {
            code: codes::PACKET_TOO_LARGE,
            message: "Got a packet bigger than 'max_allowed_packet' bytes".into(),
        }),
        PacketError::OutOfOrder => Some(ProxyError::Protocol {
            code: codes::PACKETS_OUT_OF_ORDER,
            message: "Got packets out of order".into(),
        }),
        PacketError::Closed | PacketError::Io(_) => None,
    }
}

/// The session variables a client's handshake collation implies, relative to the shards'
/// connection default (utf8mb4_general_ci).
fn charset_state(collation: u8) -> SessionState {
    let mut state = SessionState::default();
    // Ids from 246 up are MySQL 8's utf8mb4_0900_* family, unknown to MariaDB: keep the
    // utf8mb4 default for them.
    if collation == 45 || collation == 0 || collation >= 246 {
        return state;
    }
    let resolved = Collation::resolve(CollationId::from(collation as u16));
    let (charset, name) = (resolved.charset(), resolved.collation());
    if charset.is_empty() || name.is_empty() {
        return state;
    }
    for var in [
        "character_set_client",
        "character_set_connection",
        "character_set_results",
    ] {
        state.set_system(var, quote_portable(charset.as_bytes(), "_utf8mb4"));
    }
    state.set_system(
        "collation_connection",
        quote_portable(name.as_bytes(), "_utf8mb4"),
    );
    state
}

/// Runs the handshake. `Err(Some(e))` is reported to the client; `Err(None)` just closes.
async fn handshake(
    shared: &Arc<Shared>,
    stream: &mut PacketStream,
    conn_id: u32,
    peer: SocketAddr,
    admin: bool,
) -> Result<(Session, Option<crate::server::UserSlot>), Option<ProxyError>> {
    let loopback = peer.ip().is_loopback();
    let config = shared.config();
    let caps = handshake::server_capabilities(shared.tls.is_some());
    let mut nonce = handshake::new_scramble();
    let default_plugin = AuthPlugin::CachingSha2Password.name();
    stream
        .write_packet(&handshake::handshake_packet(
            &config.server.version,
            conn_id,
            &nonce,
            caps,
            default_plugin,
        ))
        .await
        .map_err(from_packet_error)?;
    stream.flush().await.map_err(from_packet_error)?;

    let mut payload = stream
        .read_packet_exact()
        .await
        .map_err(from_packet_error)?;
    if handshake::is_ssl_request(&payload) {
        let Some(acceptor) = shared.tls.clone() else {
            return Err(bad_handshake());
        };
        stream.upgrade_tls(&acceptor).await.map_err(|_| None)?;
        payload = stream.read_packet().await.map_err(from_packet_error)?;
    }
    let hello: ClientHello = handshake::parse_response(&payload).ok_or_else(bad_handshake)?;
    let capabilities = hello.capabilities & caps;

    let user = if admin {
        config
            .admin
            .as_ref()
            .filter(|a| a.user == hello.user)
            .map(|a| myshard_config::UserConfig {
                name: a.user.clone(),
                password: a.password.clone(),
                auth_plugin: AuthPlugin::CachingSha2Password,
                schemas: Vec::new(),
                allow_hints: false,
                access: myshard_config::Access::Ddl,
                schema_access: Default::default(),
                read_consistency: None,
            })
    } else {
        config.user(&hello.user).cloned()
    };
    let plugin = user
        .as_ref()
        .map_or(AuthPlugin::CachingSha2Password, |u| u.auth_plugin);
    let mut response = hello.auth_response.clone();
    if hello.plugin.as_deref() != Some(plugin.name()) {
        nonce = handshake::new_scramble();
        stream
            .write_packet(&handshake::auth_switch_packet(plugin.name(), &nonce))
            .await
            .map_err(from_packet_error)?;
        stream.flush().await.map_err(from_packet_error)?;
        response = stream.read_packet().await.map_err(from_packet_error)?;
    }

    let access_denied = |using_password: bool| {
        Some(ProxyError::sql(
            codes::ACCESS_DENIED,
            "28000",
            format!(
                "Access denied for user '{}'@'%' (using password: {})",
                hello.user,
                if using_password { "YES" } else { "NO" }
            ),
        ))
    };
    let using_password = !response.is_empty();
    let Some(user) = user else {
        return Err(access_denied(using_password));
    };
    let password = user.password.clone();
    let ok = match plugin {
        AuthPlugin::MysqlNativePassword => auth::verify_native(&nonce, &password, &response),
        AuthPlugin::CachingSha2Password => {
            if password.is_empty() {
                response.is_empty() || response == [0]
            } else if shared.sha2.is_cached(&user.name, &password) {
                let ok = auth::verify_sha2_fast(&nonce, &password, &response);
                if ok {
                    stream
                        .write_packet(&handshake::auth_more_data(&[FAST_AUTH_OK]))
                        .await
                        .map_err(from_packet_error)?;
                }
                ok
            } else {
                full_auth(shared, stream, &nonce, &user.name, &password, loopback).await?
            }
        }
    };
    if !ok {
        return Err(access_denied(using_password));
    }

    let registered = shared
        .sessions
        .register(conn_id, &user.name, &peer.to_string(), admin);
    let mut session = Session {
        shared: shared.clone(),
        conn_id,
        registered,
        user,
        schema: None,
        capabilities,
        state: charset_state(hello.collation),
        initial_state: SessionState::default(),
        autocommit: true,
        in_transaction: false,
        begin_sql: String::new(),
        pin_reason: None,
        pinned: HashMap::new(),
        locked: Vec::new(),
        diagnostics: Vec::new(),
        last_insert_id: 0,
        role: myshard_router::Role::Primary,
        rows: 0,
        admin,
        in_flight: Vec::new(),
        last_write: HashMap::new(),
        written_gtids: HashMap::new(),
        read_consistency: None,
        multi_statements: capabilities.contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS),
        binary: false,
        statements: Default::default(),
        branches: Default::default(),
        xid: None,
        tx_read_only: false,
        rolled_back: None,
        savepoints: Vec::new(),
        next_tx_settings: None,
        row_count: -1,
        found_rows: 0,
        text: Default::default(),
    };
    session.initial_state = session.state.clone();
    session.refresh_text_mode();
    if let Some(db) = hello.database.clone().filter(|_| admin) {
        session.schema = Some(db);
    } else if let Some(db) = hello
        .database
        .filter(|_| capabilities.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB))
    {
        session.check_schema(&db).map_err(Some)?;
        session.schema = Some(db);
    }
    // Per-user connection caps are checked before the client hears OK.
    let slot = if admin {
        None
    } else {
        Some(shared.user_slot(&session.user.name).map_err(|cap| {
            Some(ProxyError::sql(
                codes::TOO_MANY_USER_CONNECTIONS,
                "42000",
                format!(
                    "User '{}' has exceeded the 'max_user_connections' resource (current value: {cap})",
                    session.user.name
                ),
            ))
        })?)
    };
    let ok = OkPacket {
        status: session.status(),
        ..OkPacket::default()
    };
    stream
        .write_packet(&ok.encode(0))
        .await
        .map_err(from_packet_error)?;
    stream.flush().await.map_err(from_packet_error)?;
    Ok((session, slot))
}

/// caching_sha2_password full authentication: the password in clear over TLS, or RSA
/// encrypted after sending the public key.
async fn full_auth(
    shared: &Arc<Shared>,
    stream: &mut PacketStream,
    nonce: &[u8; 20],
    user: &str,
    password: &str,
    loopback: bool,
) -> Result<bool, Option<ProxyError>> {
    stream
        .write_packet(&handshake::auth_more_data(&[PERFORM_FULL_AUTH]))
        .await
        .map_err(from_packet_error)?;
    stream.flush().await.map_err(from_packet_error)?;
    let reply = stream.read_packet().await.map_err(from_packet_error)?;
    tracing::debug!(
        len = reply.len(),
        first = reply.first().copied(),
        tls = stream.is_tls(),
        "full auth reply"
    );
    let ok = if reply == [REQUEST_PUBLIC_KEY] {
        stream
            .write_packet(&handshake::auth_more_data(
                shared.sha2.public_pem().as_bytes(),
            ))
            .await
            .map_err(from_packet_error)?;
        stream.flush().await.map_err(from_packet_error)?;
        let encrypted = stream.read_packet().await.map_err(from_packet_error)?;
        shared.sha2.verify_rsa(nonce, password, &encrypted)
    } else if stream.is_tls() || loopback {
        // A clear-text password is accepted over TLS, and over loopback, which only local
        // processes can observe (MySQL likewise trusts its unix socket).
        auth::verify_clear(password, &reply)
    } else if reply.len() >= 256 {
        // The client already had our public key.
        shared.sha2.verify_rsa(nonce, password, &reply)
    } else {
        // A clear-text password over an unencrypted connection is refused, as MySQL does.
        false
    };
    if ok {
        shared.sha2.remember(user, password);
    }
    Ok(ok)
}

async fn command_loop(session: &mut Session, stream: &mut PacketStream) {
    let idle = Duration::from_secs(session.shared.config().server.idle_timeout_s);
    let mut shutdown = session.shared.shutdown.clone();
    let mut kills = session.registered.entry.kills();
    loop {
        if *shutdown.borrow() || session.registered.entry.closing() {
            return;
        }
        stream.reset_seq();
        let packet = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_packet()) => match r {
                Ok(r) => r,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
            // KILL CONNECTION of an idle session closes it at once.
            _ = kills.wait_for(|k| *k == crate::sessions::Kill::Connection) => return,
        };
        let payload = match packet {
            Ok(p) => p,
            Err(e) => {
                if let Some(err) = from_packet_error(e) {
                    let _ = executor::write_error(stream, &err).await;
                    let _ = stream.flush().await;
                }
                return;
            }
        };
        // A bug that panics while serving one command must not take the client down
        // without a word: it gets an ERR, and the connection (whose state is unknown now)
        // is closed.
        let served = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            handle_command(session, stream, &payload),
        ))
        .await;
        let done = match served {
            Ok(Ok(done)) => done,
            Ok(Err(_)) => return,
            Err(_) => {
                let err = ProxyError::sql(
                    1105,
                    "HY000",
                    "internal error in myshard while running this statement (a bug, logged); the connection is closed",
                );
                tracing::error!(
                    conn = session.conn_id,
                    "a command panicked; closing the connection"
                );
                let _ = executor::write_error(stream, &err).await;
                let _ = stream.flush().await;
                return;
            }
        };
        if stream.flush().await.is_err() || done {
            return;
        }
    }
}

/// Handles one command; `Ok(true)` ends the connection.
async fn handle_command(
    session: &mut Session,
    stream: &mut PacketStream,
    payload: &[u8],
) -> Result<bool, PacketError> {
    let command = match Command::parse(payload) {
        Ok(c) => c,
        Err(e @ crate::protocol::command::CommandError::NotUtf8(_)) => {
            let err = ProxyError::sql(codes::INVALID_CHARACTER_STRING, "HY000", e.to_string());
            executor::write_error(stream, &err).await?;
            return Ok(false);
        }
        Err(e) => {
            let err = ProxyError::sql(codes::UNKNOWN_COMMAND, "08S01", e.to_string());
            executor::write_error(stream, &err).await?;
            return Ok(false);
        }
    };
    let status = session.status();
    let ok = |s| OkPacket {
        status: s,
        ..OkPacket::default()
    };
    match command {
        Command::Quit => return Ok(true),
        Command::Ping => stream.write_packet(&ok(status).encode(0)).await?,
        Command::Query(bytes) => match session.canonical(&bytes) {
            Ok(sql) if session.admin => crate::admin::query(session, stream, &sql).await?,
            Ok(sql) => session.query(stream, &sql).await?,
            Err(e) => {
                session.remember_error(&e);
                executor::write_error(stream, &e).await?
            }
        },
        Command::InitDb(db) if session.admin => {
            // Admin sessions pick a schema for EXPLAIN ROUTE; no grants apply.
            if session.shared.config().schema(&db).is_some() {
                session.schema = Some(db);
                stream.write_packet(&ok(status).encode(0)).await?;
            } else {
                let e = ProxyError::sql(codes::BAD_DB, "42000", format!("Unknown database '{db}'"));
                executor::write_error(stream, &e).await?;
            }
        }
        Command::InitDb(db) => match session.check_schema(&db) {
            Ok(()) => {
                session.schema = Some(db);
                stream.write_packet(&ok(status).encode(0)).await?;
            }
            Err(e) => executor::write_error(stream, &e).await?,
        },
        Command::SetOption(opt) => match opt {
            0 | 1 => {
                session.multi_statements = opt == 0;
                stream.write_packet(&ok(status).encode(0)).await?;
            }
            _ => {
                let err = ProxyError::sql(codes::UNKNOWN_COMMAND, "08S01", "Unknown command");
                executor::write_error(stream, &err).await?;
            }
        },
        Command::ResetConnection => {
            session.reset().await;
            stream.write_packet(&ok(session.status()).encode(0)).await?;
        }
        Command::Statistics => {
            stream
                .write_packet(session.shared.statistics().as_bytes())
                .await?;
        }
        Command::FieldList { table, .. } => field_list(session, stream, &table).await?,
        Command::StmtPrepare(_)
        | Command::StmtExecute { .. }
        | Command::StmtReset(_)
        | Command::StmtFetch(_)
            if session.admin =>
        {
            let err = ProxyError::sql(
                codes::UNSUPPORTED_PS,
                "HY000",
                "the admin interface takes text statements only",
            );
            executor::write_error(stream, &err).await?;
        }
        Command::StmtPrepare(bytes) => match session.canonical(&bytes) {
            Ok(sql) => session.stmt_prepare(stream, &sql).await?,
            Err(e) => {
                session.remember_error(&e);
                executor::write_error(stream, &e).await?
            }
        },
        Command::StmtExecute { id, body } => session.stmt_execute(stream, id, &body).await?,
        Command::StmtSendLongData { id, param, data } => session.stmt_long_data(id, param, &data),
        Command::StmtClose(id) => session.stmt_close(id),
        Command::StmtReset(id) => session.stmt_reset(stream, id).await?,
        Command::StmtFetch(id) => session.stmt_fetch(stream, id).await?,
        Command::Unsupported(name) => {
            let err = ProxyError::sql(
                codes::UNSUPPORTED_PS,
                "HY000",
                format!("{name} is not supported by myshard yet"),
            );
            executor::write_error(stream, &err).await?;
        }
        Command::Unknown(_) | Command::Empty => {
            let err = ProxyError::sql(codes::UNKNOWN_COMMAND, "08S01", "Unknown command");
            executor::write_error(stream, &err).await?;
        }
    }
    Ok(false)
}

/// COM_FIELD_LIST: the column definitions of a table, read from the shard with `LIMIT 0`.
async fn field_list(
    session: &mut Session,
    stream: &mut PacketStream,
    table: &str,
) -> Result<(), PacketError> {
    let sql = format!(
        "SELECT * FROM {} LIMIT 0",
        myshard_router::text::quote_ident(table)
    );
    let deprecate_eof = session
        .capabilities
        .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    match session.columns_of(&sql).await {
        Ok(columns) => {
            for c in &columns {
                let mut p = crate::protocol::resultset::column_packet(c);
                // COM_FIELD_LIST definitions end with the (empty) default value.
                p.push(0xFB);
                stream.write_packet(&p).await?;
            }
            let end =
                crate::protocol::resultset::rows_end_packet(deprecate_eof, 0, session.status());
            stream.write_packet(&end).await?;
        }
        Err(e) => {
            let e = match e {
                ProxyError::Backend { code: 1064, .. } => ProxyError::sql(
                    codes::PARSE_ERROR,
                    "42000",
                    format!("Incorrect table name '{table}'"),
                ),
                other => other,
            };
            stream
                .write_packet(&err_packet(e.to_err().0, &e.to_err().1, &e.to_err().2))
                .await?;
        }
    }
    Ok(())
}
