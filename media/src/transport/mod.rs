//! How an endpoint's packets travel, apart from what they carry.
//!
//! SIP endpoints use plain (S)RTP to signalled addresses (the runtime's
//! latching does the rest). Browsers use one 5-tuple for everything
//! (BUNDLE, rtcp-mux), found by ICE and keyed by DTLS: [`demux`] tells the
//! protocols apart by their first byte (RFC 7983), [`stun`] and [`ice`]
//! answer connectivity checks as an ICE-lite agent, [`dtls`] runs the
//! DTLS-SRTP handshake whose keys feed the same SRTP contexts SDES keys do.
//! All of it is sans-IO; the runtime's workers move the bytes.

pub mod dtls;
pub mod ice;
pub mod stun;

/// What a datagram on a bundled transport is (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demuxed {
    /// STUN (first byte 0–3).
    Stun,
    /// DTLS (20–63).
    Dtls,
    /// RTP or RTCP (128–191).
    Rtp,
    /// Anything else (ZRTP, TURN channels, junk): dropped.
    Other,
}

/// Classifies a datagram by its first byte.
pub fn demux(datagram: &[u8]) -> Demuxed {
    match datagram.first() {
        Some(0..=3) => Demuxed::Stun,
        Some(20..=63) => Demuxed::Dtls,
        Some(128..=191) => Demuxed::Rtp,
        _ => Demuxed::Other,
    }
}
