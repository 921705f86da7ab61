//! SRTP and SRTCP (RFC 3711) with the three suites SIP endpoints and
//! browsers offer: `AES_CM_128_HMAC_SHA1_80`, `AES_CM_128_HMAC_SHA1_32` and
//! `AEAD_AES_128_GCM` (RFC 7714).
//!
//! # Why RustCrypto
//!
//! The crypto comes from the RustCrypto crates (`aes`, `ctr`, `hmac`, `sha1`,
//! `aes-gcm`, `subtle`) rather than ring or OpenSSL: they are pure Rust (no C
//! toolchain, no system library), they pick AES-NI, PCLMULQDQ and SHA-NI at
//! run time, and they expose the pieces SRTP needs separately — a raw AES-CTR
//! keystream with a caller-built IV, an HMAC whose keyed state can be cloned,
//! and an in-place detached AEAD — which ring does not. `subtle` does the
//! constant-time tag comparison so that a forger learns nothing from timing.
//!
//! # Why it is shaped this way
//!
//! Protection runs once per receiver per packet on the mixer's hot path, so
//! nothing allocates per packet: keys are expanded and the HMAC key schedule
//! is computed once per context, packets are transformed in place, and the
//! tag is appended to the caller's `Vec` (give it spare capacity and it never
//! reallocates). Like the rest of the media core it is sans-IO: a context is
//! handed bytes and returns bytes.
//!
//! Key derivation rate is fixed at zero and MKIs are not supported: neither
//! SDES (RFC 4568) offers from the endpoints we serve nor DTLS-SRTP use them.

mod cipher;
mod context;
mod kdf;
mod replay;

pub use context::{SrtpContext, SrtpStats};
pub use replay::REPLAY_WINDOW;

/// A protection profile: cipher, authentication and tag lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag. The default of
    /// RFC 3711 and the one every SIP endpoint supports.
    AesCm128HmacSha1_80,
    /// As above with a 32-bit RTP tag, to save bytes on voice. SRTCP still
    /// carries an 80-bit tag (RFC 4568 §6.2.1).
    AesCm128HmacSha1_32,
    /// AES-128 in Galois/Counter mode with a 128-bit tag (RFC 7714).
    AeadAes128Gcm,
    /// AES-256 in Galois/Counter mode (RFC 7714), its session keys derived
    /// with the AES-256 counter-mode PRF (RFC 6188). Chromium and Firefox
    /// list it first in DTLS-SRTP's `use_srtp`.
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Bytes of master key.
    pub fn master_key_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Bytes of master salt: 112 bits for AES-CM, 96 for GCM.
    pub fn master_salt_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 12,
            _ => 14,
        }
    }

    /// Bytes the authentication tag adds to each RTP packet.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => 10,
            SrtpProfile::AesCm128HmacSha1_32 => 4,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 16,
        }
    }

    /// Bytes the tag adds to each RTCP packet (the SRTCP index adds 4 more).
    pub fn rtcp_tag_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => 16,
            _ => 10,
        }
    }

    /// The name used in SDP `a=crypto` lines (RFC 4568, RFC 7714).
    pub fn sdes_name(self) -> &'static str {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpProfile::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The profile an `a=crypto` suite name stands for.
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        [
            SrtpProfile::AesCm128HmacSha1_80,
            SrtpProfile::AesCm128HmacSha1_32,
            SrtpProfile::AeadAes128Gcm,
            SrtpProfile::AeadAes256Gcm,
        ]
        .into_iter()
        .find(|p| p.sdes_name() == name)
    }
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The master key or salt has the wrong length for the profile.
    #[error("{what} is {got} bytes, the profile needs {expected}")]
    BadKeyLength {
        /// "master key" or "master salt".
        what: &'static str,
        /// Bytes required.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// Too short, wrong version, or a header longer than the packet.
    #[error("not a valid RTP/RTCP packet for SRTP")]
    Malformed,
    /// The tag did not verify: forged, corrupted or keyed differently.
    #[error("SRTP authentication failed")]
    AuthenticationFailed,
    /// This packet index was already accepted once.
    #[error("replayed packet, index {0}")]
    Replayed(u64),
    /// The index is behind the replay window, so a replay cannot be ruled out.
    #[error("packet index {0} is too old for the replay window")]
    TooOld(u64),
    /// The context already tracks as many SSRCs as it allows.
    #[error("too many SSRCs in one SRTP context")]
    TooManyStreams,
    /// The packet index space is used up; the session must be rekeyed.
    #[error("SRTP index space exhausted, rekey needed")]
    IndexExhausted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdes_names_round_trip() {
        for p in [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AesCm128HmacSha1_32, SrtpProfile::AeadAes128Gcm] {
            assert_eq!(SrtpProfile::from_sdes_name(p.sdes_name()), Some(p));
        }
        assert_eq!(SrtpProfile::from_sdes_name("F8_128_HMAC_SHA1_80"), None);
    }
}
