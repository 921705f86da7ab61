//! STUN (RFC 8489) as ICE-lite needs it: parse a Binding request, check its
//! MESSAGE-INTEGRITY and FINGERPRINT, and write the success or error
//! response. Nothing else of STUN (no client transactions, no long-term
//! credentials, no other methods) is needed by a lite agent, which only ever
//! answers checks.
//!
//! Sans-IO and allocation-light: a request is parsed into borrowed slices of
//! the datagram; a response is written into the caller's buffer. Every
//! malformed input is an error, never a panic (see the `stun` fuzz target).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// The magic cookie of every RFC 5389/8489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The largest request we look at: checks are about 100 bytes.
pub const MAX_MESSAGE: usize = 1280;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;

const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_PRIORITY: u16 = 0x0024;
const ATTR_USE_CANDIDATE: u16 = 0x0025;
const ATTR_FINGERPRINT: u16 = 0x8028;
const ATTR_ICE_CONTROLLED: u16 = 0x8029;
const ATTR_ICE_CONTROLLING: u16 = 0x802A;

const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Why a datagram is not a usable STUN Binding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Shorter than a header, a length that does not match, or too large.
    #[error("malformed STUN message")]
    Malformed,
    /// Not a Binding request (a response, an indication, another method).
    #[error("not a STUN binding request")]
    NotBindingRequest,
    /// An attribute runs past the end of the message.
    #[error("truncated STUN attribute")]
    Truncated,
    /// No USERNAME, or no MESSAGE-INTEGRITY (RFC 8445 §7.3 requires both).
    #[error("STUN check without credentials")]
    MissingCredentials,
    /// The FINGERPRINT does not match the message.
    #[error("bad STUN fingerprint")]
    BadFingerprint,
    /// MESSAGE-INTEGRITY does not verify with our password.
    #[error("bad STUN message integrity")]
    BadIntegrity,
}

/// A parsed Binding request, borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRequest<'a> {
    /// The 12-byte transaction id, echoed in the response.
    pub transaction: [u8; 12],
    /// `local-ufrag:remote-ufrag` (our fragment first: it is a check to us).
    pub username: &'a str,
    /// The peer's nominating flag (RFC 8445 §7.1.2).
    pub use_candidate: bool,
    /// PRIORITY, when present.
    pub priority: Option<u32>,
    /// The peer claims the controlling role (a browser facing a lite agent
    /// always does).
    pub controlling: bool,
    /// Where MESSAGE-INTEGRITY starts (the bytes it covers are before it).
    integrity_at: usize,
    /// The 20-byte HMAC of MESSAGE-INTEGRITY.
    integrity: &'a [u8],
}

impl<'a> BindingRequest<'a> {
    /// Our ufrag: the part of USERNAME before the colon.
    pub fn local_ufrag(&self) -> &'a str {
        self.username.split(':').next().unwrap_or_default()
    }

    /// Checks MESSAGE-INTEGRITY with our ICE password (short-term
    /// credentials: the key is the password itself, RFC 8489 §9.1.1).
    pub fn verify(&self, message: &[u8], password: &str) -> Result<(), StunError> {
        let covered = message.get(..self.integrity_at).ok_or(StunError::Malformed)?;
        let mac = integrity(covered, self.integrity_at + 24, password.as_bytes());
        if bool::from(mac.as_slice().ct_eq(self.integrity)) {
            Ok(())
        } else {
            Err(StunError::BadIntegrity)
        }
    }
}

/// Whether a datagram looks like STUN (RFC 7983: first byte 0–3, and the
/// magic cookie), before any parsing.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[0] < 4 && be32(datagram, 4) == MAGIC_COOKIE
}

/// Parses a Binding request, checking its FINGERPRINT when present. Its
/// MESSAGE-INTEGRITY is checked by [`BindingRequest::verify`] once the
/// caller knows whose password applies (from the username).
pub fn parse_binding_request(message: &[u8]) -> Result<BindingRequest<'_>, StunError> {
    if message.len() < 20 || message.len() > MAX_MESSAGE || !is_stun(message) {
        return Err(StunError::Malformed);
    }
    let length = usize::from(be16(message, 2));
    if length + 20 != message.len() || !length.is_multiple_of(4) {
        return Err(StunError::Malformed);
    }
    if be16(message, 0) != BINDING_REQUEST {
        return Err(StunError::NotBindingRequest);
    }
    let mut transaction = [0u8; 12];
    transaction.copy_from_slice(&message[8..20]);
    let mut username = None;
    let mut integrity_at = None;
    let mut integrity_value: &[u8] = &[];
    let mut use_candidate = false;
    let mut priority = None;
    let mut controlling = false;
    let mut at = 20;
    while at + 4 <= message.len() {
        let kind = be16(message, at);
        let len = usize::from(be16(message, at + 2));
        let value = message.get(at + 4..at + 4 + len).ok_or(StunError::Truncated)?;
        match kind {
            // Attributes after MESSAGE-INTEGRITY are ignored, except
            // FINGERPRINT (RFC 8489 §14.5).
            _ if integrity_at.is_some() && kind != ATTR_FINGERPRINT => {}
            ATTR_USERNAME => username = Some(std::str::from_utf8(value).map_err(|_| StunError::Malformed)?),
            ATTR_MESSAGE_INTEGRITY => {
                if len != 20 {
                    return Err(StunError::Malformed);
                }
                integrity_at = Some(at);
                integrity_value = value;
            }
            ATTR_USE_CANDIDATE => use_candidate = true,
            ATTR_PRIORITY if len == 4 => priority = Some(be32(value, 0)),
            ATTR_ICE_CONTROLLING => controlling = true,
            ATTR_ICE_CONTROLLED => controlling = false,
            ATTR_FINGERPRINT => {
                if len != 4 || at + 8 != message.len() {
                    return Err(StunError::Malformed);
                }
                if be32(value, 0) != fingerprint(&message[..at]) {
                    return Err(StunError::BadFingerprint);
                }
            }
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    let (Some(username), Some(integrity_at)) = (username, integrity_at) else {
        return Err(StunError::MissingCredentials);
    };
    Ok(BindingRequest {
        transaction,
        username,
        use_candidate,
        priority,
        controlling,
        integrity_at,
        integrity: integrity_value,
    })
}

/// Writes the success response to a check from `from`: XOR-MAPPED-ADDRESS,
/// MESSAGE-INTEGRITY with our password, FINGERPRINT.
pub fn binding_success(transaction: &[u8; 12], from: SocketAddr, password: &str, out: &mut Vec<u8>) {
    out.clear();
    header(out, BINDING_SUCCESS, transaction);
    let mut value = [0u8; 20];
    let port = from.port() ^ (MAGIC_COOKIE >> 16) as u16;
    value[2..4].copy_from_slice(&port.to_be_bytes());
    let len = match from {
        SocketAddr::V4(a) => {
            value[1] = 0x01;
            let ip = u32::from(*a.ip()) ^ MAGIC_COOKIE;
            value[4..8].copy_from_slice(&ip.to_be_bytes());
            8
        }
        SocketAddr::V6(a) => {
            value[1] = 0x02;
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(transaction);
            for (i, b) in a.ip().octets().iter().enumerate() {
                value[4 + i] = b ^ mask[i];
            }
            20
        }
    };
    attribute(out, ATTR_XOR_MAPPED_ADDRESS, &value[..len]);
    finish(out, password);
}

/// Writes an error response (`401 Unauthorized` for a bad check, `400`).
pub fn binding_error(transaction: &[u8; 12], code: u16, reason: &str, out: &mut Vec<u8>) {
    out.clear();
    header(out, BINDING_ERROR, transaction);
    let mut value = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
    value.extend_from_slice(reason.as_bytes());
    attribute(out, ATTR_ERROR_CODE, &value);
    // No integrity: the request's could not be verified.
    let at = out.len();
    set_length(out, at - 20 + 8);
    let crc = fingerprint(out);
    attribute(out, ATTR_FINGERPRINT, &crc.to_be_bytes());
}

/// Writes a Binding request (for tests and the load generator: a full ICE
/// agent's check to a lite one).
pub fn binding_request(transaction: &[u8; 12], username: &str, password: &str, nominate: bool, out: &mut Vec<u8>) {
    out.clear();
    header(out, BINDING_REQUEST, transaction);
    attribute(out, ATTR_USERNAME, username.as_bytes());
    attribute(out, ATTR_PRIORITY, &0x6e7f_1eff_u32.to_be_bytes());
    attribute(out, ATTR_ICE_CONTROLLING, &[0u8; 8]);
    if nominate {
        attribute(out, ATTR_USE_CANDIDATE, &[]);
    }
    finish(out, password);
}

/// Whether a datagram is a Binding success response to `transaction`.
pub fn is_success_for(message: &[u8], transaction: &[u8; 12]) -> bool {
    is_stun(message) && be16(message, 0) == BINDING_SUCCESS && message[8..20] == transaction[..]
}

fn header(out: &mut Vec<u8>, kind: u16, transaction: &[u8; 12]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(transaction);
}

fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends MESSAGE-INTEGRITY and FINGERPRINT, fixing the length each time
/// as RFC 8489 §14.5–14.7 require.
fn finish(out: &mut Vec<u8>, password: &str) {
    let at = out.len();
    let mac = integrity(out, at + 24, password.as_bytes());
    attribute(out, ATTR_MESSAGE_INTEGRITY, &mac);
    let at = out.len();
    set_length(out, at - 20 + 8);
    let crc = fingerprint(out);
    attribute(out, ATTR_FINGERPRINT, &crc.to_be_bytes());
}

fn set_length(out: &mut [u8], length: usize) {
    out[2..4].copy_from_slice(&(length as u16).to_be_bytes());
}

/// HMAC-SHA1 over `covered` with the header's length set as if the message
/// ended right after MESSAGE-INTEGRITY (`end` bytes).
fn integrity(covered: &[u8], end: usize, key: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    let length = (end - 20) as u16;
    mac.update(&covered[..2]);
    mac.update(&length.to_be_bytes());
    mac.update(&covered[4..]);
    mac.finalize().into_bytes().into()
}

/// CRC-32 (ISO HDLC, as zlib) XOR 0x5354554e over the message before
/// FINGERPRINT, with the length already covering it.
fn fingerprint(message: &[u8]) -> u32 {
    crc32(message) ^ FINGERPRINT_XOR
}

fn crc32(bytes: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    }
    static TABLE: [u32; 256] = table();
    !bytes.iter().fold(!0u32, |c, &b| TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.1: a sample request with short-term credentials.
    const SAMPLE_REQUEST: &[u8] = &[
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
        0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
        0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
        0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
    ];

    #[test]
    fn rfc5769_sample_request_parses_and_verifies() {
        let request = parse_binding_request(SAMPLE_REQUEST).expect("sample parses");
        assert_eq!(request.username, "evtj:h6vY");
        assert_eq!(request.local_ufrag(), "evtj");
        assert_eq!(request.priority, Some(0x6e0001ff));
        assert!(!request.controlling);
        request.verify(SAMPLE_REQUEST, "VOkJxbRl1RmTxUk/WvJxBt").expect("integrity");
        assert_eq!(request.verify(SAMPLE_REQUEST, "wrong"), Err(StunError::BadIntegrity));
    }

    #[test]
    fn a_flipped_bit_fails_the_fingerprint() {
        let mut bad = SAMPLE_REQUEST.to_vec();
        bad[30] ^= 1;
        assert_eq!(parse_binding_request(&bad), Err(StunError::BadFingerprint));
    }

    #[test]
    fn request_and_response_round_trip() {
        let tid = [7u8; 12];
        let mut request = Vec::new();
        binding_request(&tid, "ours:theirs", "secretpassword1234567", true, &mut request);
        let parsed = parse_binding_request(&request).expect("own request parses");
        assert!(parsed.use_candidate && parsed.controlling);
        parsed.verify(&request, "secretpassword1234567").expect("own integrity");
        let mut response = Vec::new();
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        binding_success(&tid, from, "secretpassword1234567", &mut response);
        assert!(is_success_for(&response, &tid));
        assert_eq!(response.len(), 20 + 12 + 24 + 8);
        // Our own fingerprint verifies by the same rules as a peer's.
        let at = response.len() - 8;
        assert_eq!(be32(&response, at + 4), fingerprint(&response[..at]));
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        binding_success(&tid, v6, "pw", &mut response);
        binding_error(&tid, 401, "Unauthorized", &mut response);
        assert!(is_stun(&response));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = parse_binding_request(&junk);
        }
        let mut truncated = SAMPLE_REQUEST.to_vec();
        truncated[3] = 0x5c; // length beyond the end
        assert_eq!(parse_binding_request(&truncated), Err(StunError::Malformed));
    }
}
