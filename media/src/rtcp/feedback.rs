//! RTCP feedback (RFC 4585 §6): the messages that drive retransmission,
//! keyframes and bitrate on the bridge's shared encoders.
//!
//! Every feedback packet starts with the sender's SSRC and the media SSRC it
//! is about; the feedback control information (FCI) follows.

use super::{be32, begin, finish, Header, RtcpError, PT_PSFB, PT_RTPFB};

fn fb_header(header: Header, b: &[u8]) -> Result<(u32, u32, &[u8]), RtcpError> {
    if b.len() < 8 {
        return Err(RtcpError::BodyTooShort { packet_type: header.packet_type });
    }
    Ok((be32(b, 0), be32(b, 4), &b[8..]))
}

fn write_fb_header(
    out: &mut Vec<u8>,
    format: u8,
    packet_type: u8,
    sender_ssrc: u32,
    media_ssrc: u32,
) -> Result<usize, RtcpError> {
    let start = begin(out, format, packet_type)?;
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    Ok(start)
}

/// Splits a bitrate into `mantissa << exponent` with a mantissa of `bits`
/// bits, rounding down so that a sender told the limit never exceeds it.
fn encode_bitrate(bitrate_bps: u64, bits: u32) -> (u32, u32) {
    let max = (1u64 << bits) - 1;
    let mut exp = 0;
    while bitrate_bps >> exp > max {
        exp += 1;
    }
    ((bitrate_bps >> exp) as u32, exp)
}

fn decode_bitrate(mantissa: u32, exp: u32) -> u64 {
    // A 6-bit exponent can shift past 64 bits; saturate rather than wrap.
    u64::try_from(u128::from(mantissa) << exp).unwrap_or(u64::MAX)
}

/// Generic NACK (RFC 4585 §6.2.1): sequence numbers the receiver is missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nack {
    /// Who asks.
    pub sender_ssrc: u32,
    /// The stream with the gaps.
    pub media_ssrc: u32,
    /// The missing sequence numbers. Listing them in ascending order lets
    /// the writer pack up to 17 into each PID/BLP pair.
    pub lost: Vec<u16>,
}

impl Nack {
    pub(super) const FORMAT: u8 = 1;

    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let (sender_ssrc, media_ssrc, fci) = fb_header(header, b)?;
        let mut lost = Vec::new();
        for pair in fci.chunks_exact(4) {
            let pid = u16::from_be_bytes([pair[0], pair[1]]);
            let blp = u16::from_be_bytes([pair[2], pair[3]]);
            lost.push(pid);
            lost.extend((0..16).filter(|bit| blp & (1 << bit) != 0).map(|bit| pid.wrapping_add(bit + 1)));
        }
        Ok(Self { sender_ssrc, media_ssrc, lost })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = write_fb_header(out, Self::FORMAT, PT_RTPFB, self.sender_ssrc, self.media_ssrc)?;
        let mut pair: Option<(u16, u16)> = None;
        for &seq in &self.lost {
            if let Some((pid, blp)) = &mut pair {
                let distance = seq.wrapping_sub(*pid);
                if (1..=16).contains(&distance) {
                    *blp |= 1 << (distance - 1);
                    continue;
                }
                if distance == 0 {
                    continue;
                }
                out.extend_from_slice(&pid.to_be_bytes());
                out.extend_from_slice(&blp.to_be_bytes());
            }
            pair = Some((seq, 0));
        }
        if let Some((pid, blp)) = pair {
            out.extend_from_slice(&pid.to_be_bytes());
            out.extend_from_slice(&blp.to_be_bytes());
        }
        finish(out, start)
    }
}

/// Picture loss indication (RFC 4585 §6.3.1): the decoder needs a keyframe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PictureLossIndication {
    /// Who asks.
    pub sender_ssrc: u32,
    /// The video stream to refresh.
    pub media_ssrc: u32,
}

impl PictureLossIndication {
    pub(super) const FORMAT: u8 = 1;

    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let (sender_ssrc, media_ssrc, _) = fb_header(header, b)?;
        Ok(Self { sender_ssrc, media_ssrc })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = write_fb_header(out, Self::FORMAT, PT_PSFB, self.sender_ssrc, self.media_ssrc)?;
        finish(out, start)
    }
}

/// One FIR request: the stream and a sequence number that tells a repeated
/// request from a new one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirEntry {
    /// The stream that must send a keyframe.
    pub ssrc: u32,
    /// Incremented for each new request; repeats keep it.
    pub sequence_number: u8,
}

/// Full intra request (RFC 5104 §4.3.1): send a decoder refresh point now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FullIntraRequest {
    /// Who asks.
    pub sender_ssrc: u32,
    /// One entry per stream asked.
    pub entries: Vec<FirEntry>,
}

impl FullIntraRequest {
    pub(super) const FORMAT: u8 = 4;

    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let (sender_ssrc, _, fci) = fb_header(header, b)?;
        let entries = fci.chunks_exact(8).map(|e| FirEntry { ssrc: be32(e, 0), sequence_number: e[4] }).collect();
        Ok(Self { sender_ssrc, entries })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        // RFC 5104 says the media source field is unused and set to 0.
        let start = write_fb_header(out, Self::FORMAT, PT_PSFB, self.sender_ssrc, 0)?;
        for e in &self.entries {
            out.extend_from_slice(&e.ssrc.to_be_bytes());
            out.extend_from_slice(&[e.sequence_number, 0, 0, 0]);
        }
        finish(out, start)
    }
}

/// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb), an
/// application-layer feedback message that browsers still send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remb {
    /// Who estimates.
    pub sender_ssrc: u32,
    /// The estimate for all the listed streams together, bits per second.
    pub bitrate_bps: u64,
    /// The streams the estimate covers, at most 255.
    pub ssrcs: Vec<u32>,
}

impl Remb {
    pub(super) const FORMAT: u8 = 15;
    const IDENTIFIER: &'static [u8; 4] = b"REMB";

    /// Whether an application-layer feedback body is a REMB.
    pub(super) fn matches(b: &[u8]) -> bool {
        b.get(8..12) == Some(Self::IDENTIFIER)
    }

    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let (sender_ssrc, _, fci) = fb_header(header, b)?;
        let short = RtcpError::BodyTooShort { packet_type: PT_PSFB };
        if fci.len() < 8 {
            return Err(short);
        }
        let count = usize::from(fci[4]);
        let exp = u32::from(fci[5] >> 2);
        let mantissa = u32::from(fci[5] & 3) << 16 | u32::from(fci[6]) << 8 | u32::from(fci[7]);
        let list = fci.get(8..8 + 4 * count).ok_or(short)?;
        Ok(Self {
            sender_ssrc,
            bitrate_bps: decode_bitrate(mantissa, exp),
            ssrcs: list.chunks_exact(4).map(|s| be32(s, 0)).collect(),
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let count = u8::try_from(self.ssrcs.len()).map_err(|_| RtcpError::TooManyItems(self.ssrcs.len()))?;
        let start = write_fb_header(out, Self::FORMAT, PT_PSFB, self.sender_ssrc, 0)?;
        let (mantissa, exp) = encode_bitrate(self.bitrate_bps, 18);
        out.extend_from_slice(Self::IDENTIFIER);
        out.push(count);
        out.push((exp as u8) << 2 | (mantissa >> 16) as u8);
        out.extend_from_slice(&(mantissa as u16).to_be_bytes());
        for ssrc in &self.ssrcs {
            out.extend_from_slice(&ssrc.to_be_bytes());
        }
        finish(out, start)
    }
}

/// One TMMBR/TMMBN tuple (RFC 5104 §4.2.1.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TmmbrEntry {
    /// The stream limited.
    pub ssrc: u32,
    /// Maximum total media bitrate, bits per second.
    pub bitrate_bps: u64,
    /// Per-packet overhead in bytes the limit assumes (9 bits; larger values
    /// are written as 511).
    pub overhead: u16,
}

fn parse_tmmb(header: Header, b: &[u8]) -> Result<(u32, Vec<TmmbrEntry>), RtcpError> {
    let (sender_ssrc, _, fci) = fb_header(header, b)?;
    let entries = fci
        .chunks_exact(8)
        .map(|e| {
            let word = be32(e, 4);
            TmmbrEntry {
                ssrc: be32(e, 0),
                bitrate_bps: decode_bitrate((word >> 9) & 0x1_ffff, word >> 26),
                overhead: (word & 0x1ff) as u16,
            }
        })
        .collect();
    Ok((sender_ssrc, entries))
}

fn write_tmmb(out: &mut Vec<u8>, format: u8, sender_ssrc: u32, entries: &[TmmbrEntry]) -> Result<(), RtcpError> {
    let start = write_fb_header(out, format, PT_RTPFB, sender_ssrc, 0)?;
    for e in entries {
        let (mantissa, exp) = encode_bitrate(e.bitrate_bps, 17);
        let word = exp << 26 | mantissa << 9 | u32::from(e.overhead.min(0x1ff));
        out.extend_from_slice(&e.ssrc.to_be_bytes());
        out.extend_from_slice(&word.to_be_bytes());
    }
    finish(out, start)
}

/// Temporary maximum media bitrate request (RFC 5104 §4.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tmmbr {
    /// Who asks.
    pub sender_ssrc: u32,
    /// The limits requested.
    pub entries: Vec<TmmbrEntry>,
}

impl Tmmbr {
    pub(super) const FORMAT: u8 = 3;

    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let (sender_ssrc, entries) = parse_tmmb(header, b)?;
        Ok(Self { sender_ssrc, entries })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        write_tmmb(out, Self::FORMAT, self.sender_ssrc, &self.entries)
    }
}

/// Temporary maximum media bitrate notification (RFC 5104 §4.2.2): the
/// bounding set in force; empty when no limit applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tmmbn {
    /// The media sender that applied the limits.
    pub sender_ssrc: u32,
    /// The bounding set.
    pub entries: Vec<TmmbrEntry>,
}

impl Tmmbn {
    pub(super) const FORMAT: u8 = 4;

    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let (sender_ssrc, entries) = parse_tmmb(header, b)?;
        Ok(Self { sender_ssrc, entries })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        write_tmmb(out, Self::FORMAT, self.sender_ssrc, &self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::RtcpPacket;
    use super::*;
    use proptest::prelude::*;

    fn round_trip(p: RtcpPacket) -> RtcpPacket {
        let mut out = Vec::new();
        p.write(&mut out).unwrap();
        let mut parsed = RtcpPacket::parse_compound(&out).unwrap();
        assert_eq!(parsed.len(), 1);
        parsed.remove(0)
    }

    #[test]
    fn nack_packs_into_pid_blp_pairs() {
        let nack = Nack { sender_ssrc: 1, media_ssrc: 2, lost: vec![100, 101, 116, 117, 65535, 0, 3] };
        let mut out = Vec::new();
        RtcpPacket::Nack(nack.clone()).write(&mut out).unwrap();
        // 100 covers 101 and 116; 117 starts a pair; 65535 covers 0 and 3.
        assert_eq!(out.len(), 12 + 3 * 4);
        assert_eq!(&out[12..16], &[0, 100, 0x80, 0x01]);
        assert_eq!(round_trip(RtcpPacket::Nack(nack.clone())), RtcpPacket::Nack(nack));
    }

    #[test]
    fn pli_and_fir_round_trip() {
        let pli = RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc: 1, media_ssrc: 2 });
        assert_eq!(round_trip(pli.clone()), pli);
        let fir = RtcpPacket::FullIntraRequest(FullIntraRequest {
            sender_ssrc: 1,
            entries: vec![FirEntry { ssrc: 5, sequence_number: 9 }, FirEntry { ssrc: 6, sequence_number: 255 }],
        });
        assert_eq!(round_trip(fir.clone()), fir);
    }

    #[test]
    fn remb_matches_a_browser_packet() {
        // A REMB as Chrome sends it: 1 SSRC, exponent 4, mantissa 0x3_2f7b.
        let buf = [
            0x8f, 206, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, b'R', b'E', b'M', b'B', 1, 0x13, 0x2f, 0x7b, 0xaa, 0xbb, 0xcc,
            0xdd,
        ];
        let parsed = RtcpPacket::parse_compound(&buf).unwrap();
        let expected = Remb { sender_ssrc: 1, bitrate_bps: 0x3_2f7b << 4, ssrcs: vec![0xaabb_ccdd] };
        assert_eq!(parsed, vec![RtcpPacket::Remb(expected.clone())]);
        let mut out = Vec::new();
        RtcpPacket::Remb(expected).write(&mut out).unwrap();
        assert_eq!(out, buf);
    }

    #[test]
    fn non_remb_application_feedback_is_kept_unknown() {
        let buf = [0x8f, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, b'X', b'Y', b'Z', b'!'];
        let parsed = RtcpPacket::parse_compound(&buf).unwrap();
        assert!(matches!(&parsed[0], RtcpPacket::Unknown(u) if u.count == 15));
    }

    #[test]
    fn bitrate_saturates_instead_of_wrapping() {
        assert_eq!(decode_bitrate(0x3_ffff, 63), u64::MAX);
        assert_eq!(encode_bitrate(u64::MAX, 18), (0x3_ffff, 46));
    }

    #[test]
    fn tmmbr_and_tmmbn_round_trip() {
        let entries = vec![TmmbrEntry { ssrc: 7, bitrate_bps: 2_000_000, overhead: 40 }];
        let tmmbr = Tmmbr { sender_ssrc: 1, entries: entries.clone() };
        let tmmbr = RtcpPacket::Tmmbr(tmmbr);
        assert_eq!(round_trip(tmmbr.clone()), tmmbr);

        let empty = RtcpPacket::Tmmbn(Tmmbn { sender_ssrc: 3, entries: vec![] });
        assert_eq!(round_trip(empty.clone()), empty);
    }

    #[test]
    fn short_feedback_is_rejected() {
        let buf = [0x81, 205, 0, 1, 0, 0, 0, 1];
        assert_eq!(RtcpPacket::parse_compound(&buf), Err(RtcpError::BodyTooShort { packet_type: PT_RTPFB }));
    }

    proptest! {
        #[test]
        fn nack_round_trips_any_sorted_list(start: u16, gaps in proptest::collection::vec(1u16..40, 0..30)) {
            let mut seq = start;
            let mut lost = vec![seq];
            for g in gaps {
                seq = seq.wrapping_add(g);
                lost.push(seq);
            }
            let nack = RtcpPacket::Nack(Nack { sender_ssrc: 1, media_ssrc: 2, lost });
            prop_assert_eq!(round_trip(nack.clone()), nack);
        }

        #[test]
        fn bitrates_round_down_by_less_than_a_mantissa_step(bps in 0u64..1 << 40) {
            let (m, e) = encode_bitrate(bps, 17);
            let back = decode_bitrate(m, e);
            prop_assert!(back <= bps);
            prop_assert!(bps - back < 1 << e);
        }
    }
}
