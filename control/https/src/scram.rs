//! SCRAM-SHA-1 credentials (RFC 5802): what a server keeps so a client can
//! prove its password without sending it — the salt and iteration count,
//! StoredKey and ServerKey. Made when a web user's password is set (beside
//! its Argon2id hash, which stays the check for everything else); read by
//! the XMPP server's SCRAM exchange. The stored text is
//! `iterations,salt,StoredKey,ServerKey`, base64.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

/// PBKDF2 rounds: well above RFC 5802's 4096, since a stolen credential
/// can be attacked offline at SHA-1 speed (unlike the Argon2id hash).
pub const ITERATIONS: u32 = 10_000;

/// A SCRAM-SHA-1 credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// PBKDF2 rounds.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// SHA-1(ClientKey).
    pub stored_key: [u8; 20],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 20],
}

/// HMAC-SHA-1.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SHA-1.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// SaltedPassword: PBKDF2-HMAC-SHA-1 of the password (what a client derives).
pub fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 20] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password.as_bytes(), &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password.as_bytes(), &u);
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    out
}

impl ScramCredential {
    /// The credential of `password` with `salt`.
    pub fn new(password: &str, salt: &[u8], iterations: u32) -> ScramCredential {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        ScramCredential {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha1(&client_key),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// As stored.
    pub fn to_text(&self) -> String {
        format!(
            "{},{},{},{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    /// From the stored text.
    pub fn parse(text: &str) -> Option<ScramCredential> {
        let mut parts = text.split(',');
        let iterations = parts.next()?.parse().ok().filter(|i| *i > 0)?;
        let salt = B64.decode(parts.next()?).ok()?;
        let stored_key = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        let server_key = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        Some(ScramCredential { iterations, salt, stored_key, server_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_5802_example() {
        // RFC 5802 §5: user "user", password "pencil", salt QSXCR+Q6sek8bf92,
        // 4096 iterations; the server signature is v=rmF9pqV8S7suAoZWja4dJRkFsKQ=.
        let salt = B64.decode("QSXCR+Q6sek8bf92").expect("salt");
        let c = ScramCredential::new("pencil", &salt, 4096);
        let auth_message = "n=user,r=fyko+d2lbbFgONRv9qkxdawL,\
            r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,\
            c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
        assert_eq!(B64.encode(hmac(&c.server_key, auth_message.as_bytes())), "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
        assert_eq!(ScramCredential::parse(&c.to_text()), Some(c));
    }
}
