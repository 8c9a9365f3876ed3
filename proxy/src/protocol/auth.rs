//! Password verification for `mysql_native_password` and `caching_sha2_password`.
//!
//! myshard holds plain-text passwords in its config, so it computes the scramble the client
//! should have sent and compares in constant time. `caching_sha2_password` follows MySQL 8:
//! a user's first login after start-up needs full authentication (the password in clear over
//! TLS, or RSA-OAEP encrypted with the server's public key); afterwards the SHA-256 fast
//! path suffices.

use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use std::collections::HashSet;
use std::sync::Mutex;

/// caching_sha2_password status byte: fast authentication succeeded.
pub const FAST_AUTH_OK: u8 = 0x03;
/// caching_sha2_password status byte: full authentication needed.
pub const PERFORM_FULL_AUTH: u8 = 0x04;
/// Client's request for the server's RSA public key.
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a `mysql_native_password` response.
pub fn verify_native(nonce: &[u8], password: &str, response: &[u8]) -> bool {
    match mysql_common::scramble::scramble_native(nonce, password.as_bytes()) {
        Some(expected) => constant_time_eq(&expected, response),
        None => response.is_empty(),
    }
}

/// Checks a `caching_sha2_password` fast-path response.
pub fn verify_sha2_fast(nonce: &[u8], password: &str, response: &[u8]) -> bool {
    match mysql_common::scramble::scramble_sha256(nonce, password.as_bytes()) {
        Some(expected) => constant_time_eq(&expected, response),
        None => response.is_empty(),
    }
}

/// Checks a clear-text password sent during full authentication (NUL-terminated).
pub fn verify_clear(password: &str, sent: &[u8]) -> bool {
    let sent = sent.strip_suffix(&[0]).unwrap_or(sent);
    constant_time_eq(password.as_bytes(), sent)
}

/// The server's RSA key pair and the cache of users who completed full authentication.
pub struct Sha2Auth {
    key: RsaPrivateKey,
    public_pem: String,
    cache: Mutex<HashSet<(String, String)>>,
}

/// Why the RSA key could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or parsed.
    #[error("RSA private key {path}: {message}")]
    Load { path: String, message: String },
    /// Generating a key failed.
    #[error("cannot generate RSA key: {0}")]
    Generate(String),
}

impl Sha2Auth {
    /// Loads the key from a PEM file (PKCS#1 or PKCS#8), or generates a 2048-bit key.
    pub fn new(pem_path: Option<&std::path::Path>) -> Result<Sha2Auth, KeyError> {
        let key = match pem_path {
            Some(path) => {
                let load_err = |message: String| KeyError::Load {
                    path: path.display().to_string(),
                    message,
                };
                let text = std::fs::read_to_string(path).map_err(|e| load_err(e.to_string()))?;
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::DecodePrivateKey;
                RsaPrivateKey::from_pkcs8_pem(&text)
                    .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&text))
                    .map_err(|e| load_err(e.to_string()))?
            }
            None => RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                .map_err(|e| KeyError::Generate(e.to_string()))?,
        };
        let public_pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok(Sha2Auth {
            key,
            public_pem,
            cache: Mutex::new(HashSet::new()),
        })
    }

    /// The public key in PEM, sent to clients that ask for it.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Whether this user (with this password) has completed full authentication before.
    pub fn is_cached(&self, user: &str, password: &str) -> bool {
        self.cache
            .lock()
            .map(|c| c.contains(&(user.to_string(), password.to_string())))
            .unwrap_or(false)
    }

    /// Records a successful full authentication.
    pub fn remember(&self, user: &str, password: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert((user.to_string(), password.to_string()));
        }
    }

    /// Checks an RSA-encrypted password: OAEP(SHA-1) of `password\0` XOR the nonce.
    pub fn verify_rsa(&self, nonce: &[u8], password: &str, ciphertext: &[u8]) -> bool {
        let Ok(plain) = self.key.decrypt(Oaep::new::<sha1::Sha1>(), ciphertext) else {
            return false;
        };
        if nonce.is_empty() {
            return false;
        }
        let unmasked: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ nonce[i % nonce.len()])
            .collect();
        verify_clear(password, &unmasked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &[u8; 20] = b"abcdefghijklmnopqrst";

    #[test]
    fn native_accepts_right_password_only() {
        let resp = mysql_common::scramble::scramble_native(NONCE, b"secret").expect("non-empty");
        assert!(verify_native(NONCE, "secret", &resp));
        assert!(!verify_native(NONCE, "other", &resp));
        assert!(verify_native(NONCE, "", b""));
        assert!(!verify_native(NONCE, "secret", b""));
    }

    #[test]
    fn sha2_fast_accepts_right_password_only() {
        let resp = mysql_common::scramble::scramble_sha256(NONCE, b"secret").expect("non-empty");
        assert!(verify_sha2_fast(NONCE, "secret", &resp));
        assert!(!verify_sha2_fast(NONCE, "Secret", &resp));
    }

    #[test]
    fn rsa_round_trip_with_mysql_common_client_encryption() {
        let auth = Sha2Auth::new(None).expect("key generation");
        let mut masked = b"secret\0".to_vec();
        for (i, b) in masked.iter_mut().enumerate() {
            *b ^= NONCE[i % NONCE.len()];
        }
        let ct = mysql_common::crypto::encrypt(&masked, auth.public_pem().as_bytes());
        assert!(auth.verify_rsa(NONCE, "secret", &ct));
        assert!(!auth.verify_rsa(NONCE, "wrong", &ct));
        assert!(!auth.verify_rsa(NONCE, "secret", b"garbage"));
    }
}
