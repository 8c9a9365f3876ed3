//! The command phase: one `Command` per client packet.

/// A client command, decoded from the first byte of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// COM_QUIT.
    Quit,
    /// COM_INIT_DB: change the default schema.
    InitDb(String),
    /// COM_QUERY: one or more SQL statements, as the client's bytes (read in the session's
    /// character set and sql_mode by `myshard_router::text::canonical`).
    Query(Vec<u8>),
    /// COM_FIELD_LIST: columns of a table (deprecated, still sent by old clients).
    FieldList { table: String, wildcard: String },
    /// COM_STATISTICS: a one-line status string.
    Statistics,
    /// COM_PING.
    Ping,
    /// COM_SET_OPTION: multi-statements on (0) or off (1).
    SetOption(u16),
    /// COM_RESET_CONNECTION: reset session state without re-authenticating.
    ResetConnection,
    /// COM_STMT_PREPARE: a statement with `?` parameter markers, as the client's bytes.
    StmtPrepare(Vec<u8>),
    /// COM_STMT_EXECUTE: statement id and the rest of the packet (flags, iteration count,
    /// parameters), decoded once the statement's parameter count is known.
    StmtExecute { id: u32, body: Vec<u8> },
    /// COM_STMT_SEND_LONG_DATA: a piece of one parameter's value.
    StmtSendLongData { id: u32, param: u16, data: Vec<u8> },
    /// COM_STMT_CLOSE.
    StmtClose(u32),
    /// COM_STMT_RESET: drop long data sent so far.
    StmtReset(u32),
    /// COM_STMT_FETCH: rows from a cursor.
    StmtFetch(u32),
    /// A command myshard recognises but does not support yet, with its name.
    Unsupported(&'static str),
    /// Any other byte: ERR 1047.
    Unknown(u8),
    /// A packet too short to hold a command.
    Empty,
}

/// Why a command packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Text that is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// A field that is missing or cut short.
    #[error("malformed {0} packet")]
    Malformed(&'static str),
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, CommandError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| CommandError::NotUtf8(what))
}

/// The statement id that starts every COM_STMT_* packet.
fn stmt_id(rest: &[u8], what: &'static str) -> Result<u32, CommandError> {
    let id = rest.get(..4).ok_or(CommandError::Malformed(what))?;
    Ok(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
}

impl Command {
    /// Decodes a command packet's payload.
    pub fn parse(payload: &[u8]) -> Result<Command, CommandError> {
        let Some((&code, rest)) = payload.split_first() else {
            return Ok(Command::Empty);
        };
        Ok(match code {
            0x01 => Command::Quit,
            0x02 => Command::InitDb(utf8(rest, "schema name")?),
            0x03 => Command::Query(rest.to_vec()),
            0x04 => {
                let nul = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(CommandError::Malformed("COM_FIELD_LIST"))?;
                Command::FieldList {
                    table: utf8(&rest[..nul], "table name")?,
                    wildcard: utf8(&rest[nul + 1..], "wildcard")?,
                }
            }
            0x09 => Command::Statistics,
            0x0e => Command::Ping,
            0x1b => {
                let opt = rest
                    .get(..2)
                    .ok_or(CommandError::Malformed("COM_SET_OPTION"))?;
                Command::SetOption(u16::from_le_bytes([opt[0], opt[1]]))
            }
            0x1f => Command::ResetConnection,
            0x11 => Command::Unsupported("COM_CHANGE_USER"),
            0x16 => Command::StmtPrepare(rest.to_vec()),
            0x17 => Command::StmtExecute {
                id: stmt_id(rest, "COM_STMT_EXECUTE")?,
                body: rest[4..].to_vec(),
            },
            0x18 => {
                let param = rest
                    .get(4..6)
                    .ok_or(CommandError::Malformed("COM_STMT_SEND_LONG_DATA"))?;
                Command::StmtSendLongData {
                    id: stmt_id(rest, "COM_STMT_SEND_LONG_DATA")?,
                    param: u16::from_le_bytes([param[0], param[1]]),
                    data: rest[6..].to_vec(),
                }
            }
            0x19 => Command::StmtClose(stmt_id(rest, "COM_STMT_CLOSE")?),
            0x1a => Command::StmtReset(stmt_id(rest, "COM_STMT_RESET")?),
            0x1c => Command::StmtFetch(stmt_id(rest, "COM_STMT_FETCH")?),
            other => Command::Unknown(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded_with_its_text() {
        assert_eq!(
            Command::parse(b"\x03SELECT 1"),
            Ok(Command::Query(b"SELECT 1".to_vec()))
        );
    }

    #[test]
    fn empty_packet_is_not_a_panic() {
        assert_eq!(Command::parse(b""), Ok(Command::Empty));
    }

    #[test]
    fn truncated_set_option_is_malformed() {
        assert!(Command::parse(b"\x1b\x00").is_err());
    }

    #[test]
    fn field_list_without_terminator_is_malformed() {
        assert!(Command::parse(b"\x04tbl").is_err());
    }

    #[test]
    fn statement_commands_carry_their_id() {
        assert_eq!(
            Command::parse(b"\x19\x07\x00\x00\x00"),
            Ok(Command::StmtClose(7))
        );
        assert_eq!(
            Command::parse(b"\x18\x01\x00\x00\x00\x02\x00ab"),
            Ok(Command::StmtSendLongData {
                id: 1,
                param: 2,
                data: b"ab".to_vec()
            })
        );
        assert!(Command::parse(b"\x17\x01").is_err());
    }

    #[test]
    fn unknown_byte_is_kept_for_the_error() {
        assert_eq!(Command::parse(b"\xee"), Ok(Command::Unknown(0xee)));
    }
}
