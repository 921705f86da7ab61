//! A crypto context: one master key, the streams (SSRCs) protected under it,
//! their rollover counters, SRTCP indexes and replay windows.

use super::cipher::Transform;
use super::replay::{estimate_index, ReplayWindow};
use super::{SrtpError, SrtpProfile};

/// SSRCs one context tracks at most. A leg carries a handful (audio, video,
/// retransmission); the cap bounds the memory a peer with the key can claim.
const MAX_STREAMS: usize = 64;

/// SRTCP's first index, as libsrtp numbers them (and its test vectors show).
const FIRST_SRTCP_INDEX: u32 = 1;
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// Counters for one context, for the leg's live statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrtpStats {
    /// RTP packets protected.
    pub rtp_protected: u64,
    /// RTP packets that authenticated and decrypted.
    pub rtp_unprotected: u64,
    /// RTCP packets protected.
    pub rtcp_protected: u64,
    /// RTCP packets that authenticated and decrypted.
    pub rtcp_unprotected: u64,
    /// Packets dropped because their tag did not verify.
    pub auth_failures: u64,
    /// Packets dropped as replays, or as too old to tell.
    pub replays: u64,
    /// Packets dropped as too short or not RTP/RTCP at all.
    pub malformed: u64,
}

#[derive(Debug, Clone, Copy)]
struct RtpStream {
    ssrc: u32,
    roc: u32,
    /// The highest sequence number protected or accepted (RFC 3711's s_l).
    s_l: u16,
    replay: ReplayWindow,
}

impl RtpStream {
    fn new(ssrc: u32, first_seq: u16) -> Self {
        Self { ssrc, roc: 0, s_l: first_seq, replay: ReplayWindow::default() }
    }

    fn index(&self) -> u64 {
        u64::from(self.roc) << 16 | u64::from(self.s_l)
    }

    fn estimate(&self, seq: u16) -> Result<(u32, u64), SrtpError> {
        estimate_index(self.roc, self.s_l, seq).ok_or(if self.roc == 0 {
            SrtpError::TooOld(u64::from(seq))
        } else {
            SrtpError::IndexExhausted
        })
    }

    fn advance(&mut self, roc: u32, seq: u16, index: u64) {
        if index > self.index() {
            self.roc = roc;
            self.s_l = seq;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RtcpStream {
    ssrc: u32,
    next_index: u32,
    replay: ReplayWindow,
}

/// An SRTP/SRTCP crypto context for one direction of one leg.
///
/// Use one context to protect what the bridge sends and another, keyed with
/// the peer's master key, to unprotect what it receives: SDES and DTLS-SRTP
/// both give each direction its own key.
pub struct SrtpContext {
    profile: SrtpProfile,
    rtp: Transform,
    rtcp: Transform,
    rtp_streams: Vec<RtpStream>,
    rtcp_streams: Vec<RtcpStream>,
    stats: SrtpStats,
}

impl std::fmt::Debug for SrtpContext {
    /// Shows the profile and counters, never key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("streams", &self.rtp_streams.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The length of an RTP header including CSRCs and extension, checked
/// against `buf`. Padding is not looked at: in SRTP it is encrypted.
fn rtp_header_len(buf: &[u8]) -> Result<usize, SrtpError> {
    if buf.len() < 12 || buf[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut len = 12 + 4 * usize::from(buf[0] & 0x0f);
    if buf[0] & 0x10 != 0 {
        let words = buf.get(len + 2..len + 4).ok_or(SrtpError::Malformed)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if len > buf.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(len)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl SrtpContext {
    /// A context for `profile` from the master key and salt that SDES or the
    /// DTLS-SRTP exporter gave this direction.
    pub fn new(profile: SrtpProfile, master_key: &[u8], master_salt: &[u8]) -> Result<Self, SrtpError> {
        if master_key.len() != profile.master_key_len() {
            return Err(SrtpError::BadKeyLength {
                what: "master key",
                expected: profile.master_key_len(),
                got: master_key.len(),
            });
        }
        let key = master_key;
        if master_salt.len() != profile.master_salt_len() {
            return Err(SrtpError::BadKeyLength {
                what: "master salt",
                expected: profile.master_salt_len(),
                got: master_salt.len(),
            });
        }
        Ok(Self::with_transforms(
            profile,
            Transform::derive(profile, key, master_salt, false),
            Transform::derive(profile, key, master_salt, true),
        ))
    }

    fn with_transforms(profile: SrtpProfile, rtp: Transform, rtcp: Transform) -> Self {
        Self { profile, rtp, rtcp, rtp_streams: Vec::new(), rtcp_streams: Vec::new(), stats: SrtpStats::default() }
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Counters since the context was created.
    pub fn stats(&self) -> SrtpStats {
        self.stats
    }

    fn tally(&mut self, result: Result<(), SrtpError>) -> Result<(), SrtpError> {
        match result {
            Err(SrtpError::AuthenticationFailed) => self.stats.auth_failures += 1,
            Err(SrtpError::Replayed(_) | SrtpError::TooOld(_)) => self.stats.replays += 1,
            Err(SrtpError::Malformed) => self.stats.malformed += 1,
            _ => {}
        }
        result
    }

    /// Encrypts an RTP packet in place and appends its tag. Reserve
    /// [`SrtpProfile::rtp_tag_len`] spare bytes of capacity to avoid a
    /// reallocation. On error the packet is left as it was.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let result = self.protect_rtp_inner(packet);
        if result.is_ok() {
            self.stats.rtp_protected += 1;
        }
        self.tally(result)
    }

    fn protect_rtp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header_len = rtp_header_len(packet)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = be32(packet, 8);
        let stream = match self.rtp_streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => &mut self.rtp_streams[i],
            None => {
                if self.rtp_streams.len() >= MAX_STREAMS {
                    return Err(SrtpError::TooManyStreams);
                }
                self.rtp_streams.push(RtpStream::new(ssrc, seq));
                let last = self.rtp_streams.len() - 1;
                &mut self.rtp_streams[last]
            }
        };
        let (roc, index) = stream.estimate(seq)?;
        stream.advance(roc, seq, index);
        match &self.rtp {
            Transform::AesCm(t) => {
                t.apply_keystream(ssrc, index, &mut packet[header_len..]);
                let tag = t.tag(packet, &roc.to_be_bytes());
                packet.extend_from_slice(&tag[..self.profile.rtp_tag_len()]);
            }
            Transform::Gcm(t) => {
                let nonce = t.rtp_nonce(ssrc, roc, seq);
                let (header, payload) = packet.split_at_mut(header_len);
                let tag = t.seal(&nonce, header, payload)?;
                packet.extend_from_slice(&tag);
            }
        }
        Ok(())
    }

    /// Authenticates, replay-checks and decrypts an SRTP packet in place,
    /// removing its tag. Nothing about the stream changes unless the packet
    /// authenticates; on error the packet's contents are unspecified.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let result = self.unprotect_rtp_inner(packet);
        if result.is_ok() {
            self.stats.rtp_unprotected += 1;
        }
        self.tally(result)
    }

    fn unprotect_rtp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let auth_end = packet.len().checked_sub(self.profile.rtp_tag_len()).ok_or(SrtpError::Malformed)?;
        let header_len = rtp_header_len(&packet[..auth_end])?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = be32(packet, 8);
        let pos = self.rtp_streams.iter().position(|s| s.ssrc == ssrc);
        let stream = match pos {
            Some(i) => self.rtp_streams[i],
            None if self.rtp_streams.len() >= MAX_STREAMS => return Err(SrtpError::TooManyStreams),
            None => RtpStream::new(ssrc, seq),
        };
        let (roc, index) = stream.estimate(seq)?;
        stream.replay.check(index)?;
        match &self.rtp {
            Transform::AesCm(t) => {
                let (authenticated, tag) = packet.split_at_mut(auth_end);
                t.verify(authenticated, &roc.to_be_bytes(), tag)?;
                t.apply_keystream(ssrc, index, &mut authenticated[header_len..]);
            }
            Transform::Gcm(t) => {
                let nonce = t.rtp_nonce(ssrc, roc, seq);
                let (sealed, tag) = packet.split_at_mut(auth_end);
                let (header, payload) = sealed.split_at_mut(header_len);
                t.open(&nonce, header, payload, tag)?;
            }
        }
        packet.truncate(auth_end);
        let stream = match pos {
            Some(i) => &mut self.rtp_streams[i],
            None => {
                self.rtp_streams.push(stream);
                let last = self.rtp_streams.len() - 1;
                &mut self.rtp_streams[last]
            }
        };
        stream.replay.accept(index);
        stream.advance(roc, seq, index);
        Ok(())
    }

    /// Encrypts an RTCP packet (all but its first 8 bytes) in place and
    /// appends the SRTCP index and tag. On error the packet is left as it was.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let result = self.protect_rtcp_inner(packet);
        if result.is_ok() {
            self.stats.rtcp_protected += 1;
        }
        self.tally(result)
    }

    fn rtcp_stream(&mut self, ssrc: u32) -> Result<&mut RtcpStream, SrtpError> {
        match self.rtcp_streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => Ok(&mut self.rtcp_streams[i]),
            None if self.rtcp_streams.len() >= MAX_STREAMS => Err(SrtpError::TooManyStreams),
            None => {
                self.rtcp_streams.push(RtcpStream {
                    ssrc,
                    next_index: FIRST_SRTCP_INDEX,
                    replay: ReplayWindow::default(),
                });
                let last = self.rtcp_streams.len() - 1;
                Ok(&mut self.rtcp_streams[last])
            }
        }
    }

    fn protect_rtcp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < 8 || packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = be32(packet, 4);
        let stream = self.rtcp_stream(ssrc)?;
        let index = stream.next_index;
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::IndexExhausted);
        }
        stream.next_index += 1;
        let e_index = (0x8000_0000 | index).to_be_bytes();
        match &self.rtcp {
            Transform::AesCm(t) => {
                t.apply_keystream(ssrc, u64::from(index), &mut packet[8..]);
                packet.extend_from_slice(&e_index);
                let tag = t.tag(packet, &[]);
                packet.extend_from_slice(&tag[..self.profile.rtcp_tag_len()]);
            }
            Transform::Gcm(t) => {
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&packet[..8]);
                aad[8..].copy_from_slice(&e_index);
                let tag = t.seal(&t.rtcp_nonce(ssrc, index), &aad, &mut packet[8..])?;
                packet.extend_from_slice(&tag);
                packet.extend_from_slice(&e_index);
            }
        }
        Ok(())
    }

    /// Authenticates, replay-checks and (when its E flag says so) decrypts an
    /// SRTCP packet in place, removing index and tag. On error the packet's
    /// contents are unspecified.
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let result = self.unprotect_rtcp_inner(packet);
        if result.is_ok() {
            self.stats.rtcp_unprotected += 1;
        }
        self.tally(result)
    }

    fn unprotect_rtcp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        let len = packet.len();
        if len < 8 + 4 + tag_len || packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = be32(packet, 4);
        // AES-CM puts the index before the tag (RFC 3711 §3.4), GCM after
        // it (RFC 7714 §9.1).
        let (index_at, tag_at) = match self.rtcp {
            Transform::AesCm(_) => (len - tag_len - 4, len - tag_len),
            Transform::Gcm(_) => (len - 4, len - 4 - tag_len),
        };
        let e_index = be32(packet, index_at);
        let encrypted = e_index & 0x8000_0000 != 0;
        let index = e_index & MAX_SRTCP_INDEX;
        let pos = self.rtcp_streams.iter().position(|s| s.ssrc == ssrc);
        match pos {
            Some(i) => self.rtcp_streams[i].replay.check(u64::from(index))?,
            None if self.rtcp_streams.len() >= MAX_STREAMS => return Err(SrtpError::TooManyStreams),
            None => {}
        }
        let plain_len = match &self.rtcp {
            Transform::AesCm(t) => {
                let (authenticated, tag) = packet.split_at_mut(tag_at);
                t.verify(authenticated, &[], tag)?;
                if encrypted {
                    t.apply_keystream(ssrc, u64::from(index), &mut authenticated[8..index_at]);
                }
                index_at
            }
            Transform::Gcm(t) => {
                let nonce = t.rtcp_nonce(ssrc, index);
                if encrypted {
                    let mut aad = [0u8; 12];
                    aad[..8].copy_from_slice(&packet[..8]);
                    aad[8..].copy_from_slice(&e_index.to_be_bytes());
                    let (sealed, rest) = packet.split_at_mut(tag_at);
                    t.open(&nonce, &aad, &mut sealed[8..], &rest[..tag_len])?;
                } else {
                    // Unencrypted, the AAD is the packet followed by the
                    // index: move the index down over the tag's start so the
                    // AAD is one slice, keeping the tag aside.
                    let mut tag = [0u8; 16];
                    tag.copy_from_slice(&packet[tag_at..tag_at + 16]);
                    packet.copy_within(index_at..index_at + 4, tag_at);
                    t.open(&nonce, &packet[..tag_at + 4], &mut [], &tag)?;
                }
                tag_at
            }
        };
        packet.truncate(plain_len);
        self.rtcp_stream(ssrc)?.replay.accept(u64::from(index));
        Ok(())
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
