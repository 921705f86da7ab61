//! SDES key exchange (RFC 4568): `a=crypto:<tag> <suite> inline:<key||salt>`.
//!
//! Only the three suites the media engine implements are accepted, and only
//! lines it can honour: no MKI, no session parameters (a line asking for
//! UNENCRYPTED_SRTP or a key derivation rate is skipped, so the next line can
//! be chosen instead).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use rand::RngCore;

/// An SRTP protection profile by its SDES name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag: what every SIP endpoint offers.
    AesCm128HmacSha1_80,
    /// As above with a 32-bit RTP tag.
    AesCm128HmacSha1_32,
    /// AES-128-GCM (RFC 7714).
    AeadAes128Gcm,
}

impl CryptoSuite {
    /// Our preference when we offer: the 80-bit tag first, since every peer has it.
    pub const OFFER_ORDER: [CryptoSuite; 3] =
        [CryptoSuite::AesCm128HmacSha1_80, CryptoSuite::AesCm128HmacSha1_32, CryptoSuite::AeadAes128Gcm];

    /// The SDES name.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite of an SDES name.
    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        CryptoSuite::OFFER_ORDER.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Master key bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt bytes (RFC 3711: 112 bits; RFC 7714: 96 bits).
    pub fn salt_len(self) -> usize {
        match self {
            CryptoSuite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }
}

/// One usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that ties an answer to its offer line.
    pub tag: u32,
    /// The suite.
    pub suite: CryptoSuite,
    /// Master key.
    pub key: Vec<u8>,
    /// Master salt.
    pub salt: Vec<u8>,
}

impl CryptoAttribute {
    /// Parses an `a=crypto` value; `None` for a line we cannot honour.
    pub fn parse(value: &str) -> Option<CryptoAttribute> {
        let mut parts = value.split_whitespace();
        let tag: u32 = parts.next()?.parse().ok()?;
        let suite = CryptoSuite::from_name(parts.next()?)?;
        let key_params = parts.next()?;
        if parts.next().is_some() {
            return None; // session parameters we do not implement
        }
        // One key only; `inline:KEY|lifetime|MKI:len`, where an MKI is refused.
        if key_params.contains(';') {
            return None;
        }
        let inline = key_params.strip_prefix("inline:")?;
        let mut fields = inline.split('|');
        let material = fields.next()?;
        for field in fields {
            if field.contains(':') {
                return None;
            }
        }
        let bytes = STANDARD.decode(material).or_else(|_| STANDARD_NO_PAD.decode(material)).ok()?;
        if bytes.len() != suite.key_len() + suite.salt_len() {
            return None;
        }
        let (key, salt) = bytes.split_at(suite.key_len());
        Some(CryptoAttribute { tag, suite, key: key.to_vec(), salt: salt.to_vec() })
    }

    /// A fresh key and salt for a suite.
    pub fn generate(tag: u32, suite: CryptoSuite, rng: &mut dyn RngCore) -> CryptoAttribute {
        let mut key = vec![0; suite.key_len()];
        let mut salt = vec![0; suite.salt_len()];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut salt);
        CryptoAttribute { tag, suite, key, salt }
    }

    /// The `a=crypto` value.
    pub fn to_value(&self) -> String {
        let mut material = self.key.clone();
        material.extend_from_slice(&self.salt);
        format!("{} {} inline:{}", self.tag, self.suite.name(), STANDARD.encode(material))
    }
}

/// The SRTP keys negotiated for one stream: what the peer encrypts with
/// (`remote_*`, to unprotect what it sends) and what we encrypt with
/// (`local_*`, the key we put in our SDP).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpParams {
    /// The suite both directions use.
    pub suite: CryptoSuite,
    /// The peer's master key.
    pub remote_key: Vec<u8>,
    /// The peer's master salt.
    pub remote_salt: Vec<u8>,
    /// Our master key.
    pub local_key: Vec<u8>,
    /// Our master salt.
    pub local_salt: Vec<u8>,
}

/// Keys stay out of logs.
impl std::fmt::Debug for SrtpParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpParams").field("suite", &self.suite).finish_non_exhaustive()
    }
}
