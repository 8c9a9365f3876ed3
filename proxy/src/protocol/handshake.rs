//! The initial handshake (protocol v10) and the client's response.

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::HandshakeResponse;

/// Capabilities myshard offers (SSL is added when TLS is configured).
pub fn server_capabilities(tls: bool) -> CapabilityFlags {
    let mut caps = CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_FOUND_ROWS
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_IGNORE_SPACE
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_INTERACTIVE
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_DEPRECATE_EOF;
    if tls {
        caps |= CapabilityFlags::CLIENT_SSL;
    }
    caps
}

/// Encodes the initial handshake packet. `scramble` is the 20-byte nonce.
pub fn handshake_packet(
    version: &str,
    connection_id: u32,
    scramble: &[u8; 20],
    caps: CapabilityFlags,
    plugin: &str,
) -> Vec<u8> {
    let bits = caps.bits();
    let mut buf = Vec::with_capacity(96);
    buf.push(10);
    buf.extend_from_slice(version.as_bytes());
    buf.push(0);
    buf.extend_from_slice(&connection_id.to_le_bytes());
    buf.extend_from_slice(&scramble[..8]);
    buf.push(0);
    buf.extend_from_slice(&(bits as u16).to_le_bytes());
    buf.push(super::resultset::UTF8MB4_GENERAL_CI as u8);
    buf.extend_from_slice(&StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits().to_le_bytes());
    buf.extend_from_slice(&((bits >> 16) as u16).to_le_bytes());
    buf.push(21);
    buf.extend_from_slice(&[0u8; 10]);
    buf.extend_from_slice(&scramble[8..]);
    buf.push(0);
    buf.extend_from_slice(plugin.as_bytes());
    buf.push(0);
    buf
}

/// A fresh random scramble of printable bytes without NUL (as MySQL generates).
pub fn new_scramble() -> [u8; 20] {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut s = [0u8; 20];
    for b in &mut s {
        *b = rng.gen_range(1u8..=127);
        if *b == b'$' || *b == 0 {
            *b = b'#';
        }
    }
    s
}

/// What the client said in its handshake response.
#[derive(Debug, Clone)]
pub struct ClientHello {
    /// Capabilities the client asked for (intersected with ours by the caller).
    pub capabilities: CapabilityFlags,
    /// Collation id the client wants.
    pub collation: u8,
    /// User name.
    pub user: String,
    /// Auth response for the plugin named in `plugin`.
    pub auth_response: Vec<u8>,
    /// Initial schema, if any.
    pub database: Option<String>,
    /// Auth plugin the client used for `auth_response`.
    pub plugin: Option<String>,
}

/// Is this payload an SSL request (the short response sent before the TLS handshake)?
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32 && {
        let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        caps & CapabilityFlags::CLIENT_SSL.bits() != 0
    }
}

/// Decodes a handshake response. Malformed input gives `None`.
pub fn parse_response(payload: &[u8]) -> Option<ClientHello> {
    if payload.len() < 32 {
        return None;
    }
    let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    if caps & CapabilityFlags::CLIENT_PROTOCOL_41.bits() == 0 {
        return None;
    }
    let resp: HandshakeResponse<'_> = ParseBuf(payload).parse(()).ok()?;
    Some(ClientHello {
        capabilities: resp.capabilities(),
        collation: resp.collation(),
        user: String::from_utf8(resp.user().to_vec()).ok()?,
        auth_response: resp.scramble_buf().to_vec(),
        database: match resp.db_name() {
            Some(db) if !db.is_empty() => Some(String::from_utf8(db.to_vec()).ok()?),
            _ => None,
        },
        plugin: resp
            .auth_plugin()
            .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()),
    })
}

/// Encodes an auth-switch request to `plugin` with a fresh nonce.
pub fn auth_switch_packet(plugin: &str, scramble: &[u8; 20]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(48);
    buf.push(0xFE);
    buf.extend_from_slice(plugin.as_bytes());
    buf.push(0);
    buf.extend_from_slice(scramble);
    buf.push(0);
    buf
}

/// Encodes an "auth more data" packet.
pub fn auth_more_data(data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + data.len());
    buf.push(0x01);
    buf.extend_from_slice(data);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::packets::HandshakePacket;

    #[test]
    fn handshake_parses_back_with_both_scramble_halves() {
        let scramble = new_scramble();
        let caps = server_capabilities(true);
        let bytes = handshake_packet(
            "8.0.36-myshard",
            7,
            &scramble,
            caps,
            "caching_sha2_password",
        );
        let hp: HandshakePacket<'_> = ParseBuf(&bytes).parse(()).expect("valid handshake");
        assert_eq!(hp.connection_id(), 7);
        assert_eq!(hp.capabilities(), caps);
        assert_eq!(hp.nonce(), scramble.to_vec());
        assert_eq!(
            hp.auth_plugin_name_ref(),
            Some(&b"caching_sha2_password"[..])
        );
    }

    #[test]
    fn scramble_has_no_nul() {
        for _ in 0..100 {
            assert!(!new_scramble().contains(&0));
        }
    }

    #[test]
    fn garbage_response_is_none_not_a_panic() {
        assert!(parse_response(b"").is_none());
        assert!(parse_response(&[0xFF; 40]).is_none() || parse_response(&[0xFF; 40]).is_some());
        assert!(parse_response(&[0x00; 31]).is_none());
    }
}
