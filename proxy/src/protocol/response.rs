//! OK, ERR and EOF packets.

use mysql_common::constants::StatusFlags;

/// Appends a length-encoded integer.
pub fn put_lenenc_int(buf: &mut Vec<u8>, v: u64) {
    match v {
        0..=250 => buf.push(v as u8),
        251..=0xFFFF => {
            buf.push(0xFC);
            buf.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            buf.push(0xFD);
            buf.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            buf.push(0xFE);
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_lenenc_int(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// The fields of an OK packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ok {
    /// Rows changed by the statement.
    pub affected_rows: u64,
    /// Last auto-increment id generated.
    pub last_insert_id: u64,
    /// Server status flags.
    pub status: StatusFlags,
    /// Warning count.
    pub warnings: u16,
    /// Human-readable info (e.g. "Rows matched: 1  Changed: 1  Warnings: 0").
    pub info: String,
}

impl Ok {
    /// Encodes an OK packet; `header` is 0x00, or 0xFE when it ends a result set under
    /// CLIENT_DEPRECATE_EOF.
    pub fn encode(&self, header: u8) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 + self.info.len());
        buf.push(header);
        put_lenenc_int(&mut buf, self.affected_rows);
        put_lenenc_int(&mut buf, self.last_insert_id);
        buf.extend_from_slice(&self.status.bits().to_le_bytes());
        buf.extend_from_slice(&self.warnings.to_le_bytes());
        if !self.info.is_empty() {
            // Documented as string<EOF>, but every server sends and every client reads a
            // length-encoded string here.
            put_lenenc_bytes(&mut buf, self.info.as_bytes());
        }
        buf
    }
}

/// Encodes an ERR packet.
pub fn err_packet(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(9 + message.len());
    buf.push(0xFF);
    buf.extend_from_slice(&code.to_le_bytes());
    buf.push(b'#');
    let state = sqlstate.as_bytes();
    for i in 0..5 {
        buf.push(state.get(i).copied().unwrap_or(b'0'));
    }
    buf.extend_from_slice(message.as_bytes());
    buf
}

/// Encodes an ERR packet sent before the handshake, when the client's capabilities are not
/// known yet: no SQLSTATE marker, as MySQL sends "Too many connections".
pub fn err_packet_pre_handshake(code: u16, message: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(3 + message.len());
    buf.push(0xFF);
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(message.as_bytes());
    buf
}

/// Encodes a legacy EOF packet (clients without CLIENT_DEPRECATE_EOF).
pub fn eof_packet(warnings: u16, status: StatusFlags) -> Vec<u8> {
    let mut buf = Vec::with_capacity(5);
    buf.push(0xFE);
    buf.extend_from_slice(&warnings.to_le_bytes());
    buf.extend_from_slice(&status.bits().to_le_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_int_uses_the_shortest_form() {
        let enc = |v| {
            let mut b = Vec::new();
            put_lenenc_int(&mut b, v);
            b
        };
        assert_eq!(enc(250), vec![250]);
        assert_eq!(enc(251), vec![0xFC, 251, 0]);
        assert_eq!(enc(0x10000), vec![0xFD, 0, 0, 1]);
        assert_eq!(enc(1 << 24), vec![0xFE, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn err_packet_has_marker_state_and_message() {
        let p = err_packet(1045, "28000", "Access denied");
        assert_eq!(
            &p[..9],
            &[0xFF, 0x15, 0x04, b'#', b'2', b'8', b'0', b'0', b'0']
        );
        assert_eq!(&p[9..], b"Access denied");
    }

    #[test]
    fn ok_packet_round_trips_through_mysql_common() {
        use mysql_common::constants::CapabilityFlags;
        use mysql_common::io::ParseBuf;
        use mysql_common::packets::{CommonOkPacket, OkPacketDeserializer};
        let ok = Ok {
            affected_rows: 3,
            last_insert_id: 300,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            warnings: 1,
            info: String::new(),
        };
        let bytes = ok.encode(0);
        let parsed: OkPacketDeserializer<'_, CommonOkPacket> = ParseBuf(&bytes)
            .parse(CapabilityFlags::CLIENT_PROTOCOL_41)
            .expect("valid ok packet");
        let parsed = parsed.into_inner();
        assert_eq!(parsed.affected_rows(), 3);
        assert_eq!(parsed.last_insert_id(), Some(300));
        assert_eq!(parsed.warnings(), 1);
    }
}
