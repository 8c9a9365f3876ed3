//! The one place where failures become MySQL ERR packets (code, SQLSTATE, message) and where
//! it is decided whether the client connection must close.

use mysql_async::Error as DriverError;

/// Everything that can go wrong while serving a client.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// An error myshard itself reports, with MySQL's code and SQLSTATE.
    #[error("{message}")]
    Sql {
        /// MySQL error code.
        code: u16,
        /// SQLSTATE.
        state: &'static str,
        /// Message for the client.
        message: String,
    },
    /// An error a shard returned; it reaches the client unchanged.
    #[error("{message}")]
    Backend {
        /// The shard's error code.
        code: u16,
        /// The shard's SQLSTATE.
        state: String,
        /// The shard's message.
        message: String,
    },
    /// A shard could not be reached or broke mid-statement.
    #[error("shard '{shard}' is unavailable: {reason}")]
    ShardUnavailable {
        /// Shard name.
        shard: String,
        /// Why.
        reason: String,
    },
    /// The shards' rows of a read cannot be combined exactly (column kinds that differ
    /// between shards, an ORDER BY on ENUM positions): ER_NOT_SUPPORTED_YET for the client,
    /// and the sign for the executor to run the plan's copy fallback instead when nothing was
    /// sent yet.
    #[error("{0}")]
    Unmergeable(String),
    /// The client sent something that breaks the protocol; the connection closes.
    #[error("{message}")]
    Protocol {
        /// MySQL error code.
        code: u16,
        /// Message.
        message: String,
    },
}

/// MySQL error codes myshard uses.
pub mod codes {
    /// ER_TOO_MANY_USER_CONNECTIONS.
    pub const TOO_MANY_USER_CONNECTIONS: u16 = 1203;
    /// ER_USER_LIMIT_REACHED.
    pub const USER_LIMIT_REACHED: u16 = 1226;
    /// ER_QUERY_TIMEOUT.
    pub const QUERY_TIMEOUT: u16 = 3024;
    /// ER_CON_COUNT_ERROR.
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// ER_HANDSHAKE_ERROR.
    pub const BAD_HANDSHAKE: u16 = 1043;
    /// ER_DBACCESS_DENIED_ERROR.
    pub const DB_ACCESS_DENIED: u16 = 1044;
    /// ER_ACCESS_DENIED_ERROR.
    pub const ACCESS_DENIED: u16 = 1045;
    /// ER_TABLEACCESS_DENIED_ERROR.
    pub const TABLE_ACCESS_DENIED: u16 = 1142;
    /// ER_XA_RBTIMEOUT: a transaction rolled back because it took too long.
    pub const XA_RBTIMEOUT: u16 = 1613;
    /// ER_QUERY_INTERRUPTED.
    pub const QUERY_INTERRUPTED: u16 = 1317;
    /// ER_CONNECTION_KILLED.
    pub const CONNECTION_KILLED: u16 = 1927;
    /// ER_NO_SUCH_THREAD.
    pub const NO_SUCH_THREAD: u16 = 1094;
    /// ER_KILL_DENIED_ERROR.
    pub const KILL_DENIED: u16 = 1095;
    /// ER_NO_DB_ERROR.
    pub const NO_DB: u16 = 1046;
    /// ER_UNKNOWN_COM_ERROR.
    pub const UNKNOWN_COMMAND: u16 = 1047;
    /// ER_BAD_DB_ERROR.
    pub const BAD_DB: u16 = 1049;
    /// ER_PARSE_ERROR.
    pub const PARSE_ERROR: u16 = 1064;
    /// ER_INVALID_CHARACTER_STRING.
    pub const INVALID_CHARACTER_STRING: u16 = 1300;
    /// ER_NET_PACKET_TOO_LARGE.
    pub const PACKET_TOO_LARGE: u16 = 1153;
    /// ER_NET_PACKETS_OUT_OF_ORDER.
    pub const PACKETS_OUT_OF_ORDER: u16 = 1156;
    /// ER_SPECIFIC_ACCESS_DENIED_ERROR.
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    /// ER_NOT_SUPPORTED_YET.
    pub const NOT_SUPPORTED_YET: u16 = 1235;
    /// ER_UNSUPPORTED_PS.
    pub const UNSUPPORTED_PS: u16 = 1295;
    /// ER_XA_RBROLLBACK.
    pub const XA_RBROLLBACK: u16 = 1402;
    /// ER_XAER_NOTA: unknown XID.
    pub const XAER_NOTA: u16 = 1397;
    /// ER_LOCK_WAIT_TIMEOUT.
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// ER_LOCK_DEADLOCK.
    pub const LOCK_DEADLOCK: u16 = 1213;
    /// ER_SP_DOES_NOT_EXIST (also "SAVEPOINT … does not exist").
    pub const SP_DOES_NOT_EXIST: u16 = 1305;
    /// ER_CANT_CHANGE_TX_CHARACTERISTICS.
    pub const CANT_CHANGE_TX_CHARACTERISTICS: u16 = 1568;
    /// ER_EMPTY_QUERY.
    pub const EMPTY_QUERY: u16 = 1065;
    /// ER_WRONG_ARGUMENTS.
    pub const WRONG_ARGUMENTS: u16 = 1210;
    /// ER_WRONG_VALUE_FOR_VAR.
    pub const WRONG_VALUE_FOR_VAR: u16 = 1231;
    /// ER_UNKNOWN_STMT_HANDLER.
    pub const UNKNOWN_STMT_HANDLER: u16 = 1243;
    /// ER_PS_MANY_PARAM.
    pub const PS_MANY_PARAM: u16 = 1390;
    /// ER_STMT_HAS_NO_OPEN_CURSOR.
    pub const STMT_HAS_NO_OPEN_CURSOR: u16 = 1421;
    /// ER_MAX_PREPARED_STMT_COUNT_REACHED.
    pub const MAX_PREPARED_STMT_COUNT_REACHED: u16 = 1461;
    /// ER_CONNECT_TO_FOREIGN_DATA_SOURCE: a shard cannot be reached.
    pub const SHARD_UNAVAILABLE: u16 = 1429;
}

impl ProxyError {
    /// An error with MySQL's code and SQLSTATE.
    pub fn sql(code: u16, state: &'static str, message: impl Into<String>) -> Self {
        ProxyError::Sql {
            code,
            state,
            message: message.into(),
        }
    }

    /// ER_NOT_SUPPORTED_YET with a message saying why and what would work.
    pub fn not_supported(message: impl Into<String>) -> Self {
        ProxyError::sql(codes::NOT_SUPPORTED_YET, "42000", message)
    }

    /// [`ProxyError::Unmergeable`].
    pub fn unmergeable(message: impl Into<String>) -> Self {
        ProxyError::Unmergeable(message.into())
    }

    /// Wraps a driver error from a shard.
    pub fn from_driver(shard: &str, e: DriverError) -> Self {
        match e {
            DriverError::Server(se) => ProxyError::Backend {
                code: se.code,
                state: se.state,
                message: se.message,
            },
            other => ProxyError::ShardUnavailable {
                shard: shard.to_string(),
                reason: other.to_string(),
            },
        }
    }

    /// Code, SQLSTATE and message for the ERR packet.
    pub fn to_err(&self) -> (u16, String, String) {
        match self {
            ProxyError::Sql {
                code,
                state,
                message,
            } => (*code, state.to_string(), message.clone()),
            ProxyError::Backend {
                code,
                state,
                message,
            } => (*code, state.clone(), message.clone()),
            ProxyError::ShardUnavailable { .. } => {
                (codes::SHARD_UNAVAILABLE, "HY000".into(), self.to_string())
            }
            ProxyError::Unmergeable(message) => {
                (codes::NOT_SUPPORTED_YET, "42000".into(), message.clone())
            }
            ProxyError::Protocol { code, message } => (*code, "08S01".into(), message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_pass_through_unchanged() {
        let e = ProxyError::from_driver(
            "s0",
            DriverError::Server(mysql_async::ServerError {
                code: 1062,
                message: "Duplicate entry '1' for key 'PRIMARY'".into(),
                state: "23000".into(),
            }),
        );
        assert_eq!(
            e.to_err(),
            (
                1062,
                "23000".into(),
                "Duplicate entry '1' for key 'PRIMARY'".into()
            )
        );
    }

    #[test]
    fn unreachable_shard_is_named() {
        let e = ProxyError::ShardUnavailable {
            shard: "s2".into(),
            reason: "connection refused".into(),
        };
        let (code, _, msg) = e.to_err();
        assert_eq!(code, codes::SHARD_UNAVAILABLE);
        assert!(msg.contains("'s2'"));
    }
}
