//! RTCP (RFC 3550 §6) and the feedback messages a conferencing bridge needs
//! (RFC 4585 NACK and PLI, RFC 5104 FIR and TMMBR/TMMBN, REMB).
//!
//! RTCP is a few packets a second per stream, so the types here own their
//! data: clarity wins over zero-copy. Parsing is strict about lengths and
//! lenient about content: an unknown packet type inside a compound packet is
//! kept as [`UnknownPacket`] rather than failing the whole datagram, and a
//! compound need not start with SR/RR, because reduced-size RTCP (RFC 5506)
//! sends a lone PLI or NACK.

mod bye;
mod feedback;
mod report;
mod sdes;

pub use bye::Goodbye;
pub use feedback::{FirEntry, FullIntraRequest, Nack, PictureLossIndication, Remb, Tmmbn, Tmmbr, TmmbrEntry};
pub use report::{NtpTime, ReceiverReport, ReportBlock, SenderReport};
pub use sdes::{SdesChunk, SdesItem, SourceDescription};

/// Sender report.
pub const PT_SR: u8 = 200;
/// Receiver report.
pub const PT_RR: u8 = 201;
/// Source description.
pub const PT_SDES: u8 = 202;
/// Goodbye.
pub const PT_BYE: u8 = 203;
/// Application-defined.
pub const PT_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585): NACK, TMMBR, TMMBN.
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585): PLI, FIR, REMB.
pub const PT_PSFB: u8 = 206;

/// Why bytes are not RTCP, or why a packet cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// The datagram ends inside a header or before a declared length.
    #[error("RTCP truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes the packet declares.
        needed: usize,
    },
    /// The version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count is zero or longer than the packet body.
    #[error("RTCP padding of {0} bytes does not fit the packet")]
    BadPadding(u8),
    /// Only the last packet of a compound may be padded (RFC 3550 §6.4.1).
    #[error("padding on a packet that is not the last of its compound")]
    PaddingNotLast,
    /// The body is too short for what the header's type and count announce.
    #[error("RTCP packet type {packet_type} body too short for its contents")]
    BodyTooShort {
        /// The packet type.
        packet_type: u8,
    },
    /// More than 31 report blocks, chunks or sources: the count has five bits.
    #[error("{0} items, at most 31 fit one RTCP packet")]
    TooManyItems(usize),
    /// An SDES item or BYE reason longer than its one-byte length allows.
    #[error("text of {0} bytes, at most 255 fit")]
    TextTooLong(usize),
    /// A packet longer than the 16-bit length field can describe.
    #[error("RTCP packet too long")]
    PacketTooLong,
    /// A datagram with no packets in it.
    #[error("empty RTCP datagram")]
    Empty,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// SR: an active sender's clocks and counts, plus its reception reports.
    SenderReport(SenderReport),
    /// RR: reception reports from a participant that is not sending.
    ReceiverReport(ReceiverReport),
    /// SDES: CNAME and friends.
    SourceDescription(SourceDescription),
    /// BYE: a source is leaving.
    Goodbye(Goodbye),
    /// Generic NACK: please retransmit these sequence numbers.
    Nack(Nack),
    /// PLI: the decoder lost a picture and needs a keyframe.
    PictureLossIndication(PictureLossIndication),
    /// FIR: send a keyframe now (RFC 5104).
    FullIntraRequest(FullIntraRequest),
    /// REMB: the receiver's estimate of the bandwidth available to it.
    Remb(Remb),
    /// TMMBR: limit your bitrate to this (RFC 5104).
    Tmmbr(Tmmbr),
    /// TMMBN: the limits now in force (RFC 5104).
    Tmmbn(Tmmbn),
    /// Any other type or feedback format, kept so it can be passed on.
    Unknown(UnknownPacket),
}

/// A packet this module does not interpret (APP, XR, transport-wide CC, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPacket {
    /// The packet type.
    pub packet_type: u8,
    /// The five-bit count or feedback message type.
    pub count: u8,
    /// The body after the 4-byte header, padding removed.
    pub body: Vec<u8>,
}

/// The common 4-byte header, already checked against the datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) count: u8,
    pub(crate) packet_type: u8,
}

/// Tells RTCP from RTP on a multiplexed port (RFC 5761 §4): RTCP packet
/// types 192..=223 occupy what would be RTP payload types 64..=95.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 4 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// Iterates over the packets of a compound datagram. After the first error
/// it yields nothing more, since the lengths that follow cannot be trusted.
pub fn compound(buf: &[u8]) -> CompoundIter<'_> {
    CompoundIter { buf, pos: 0 }
}

/// Iterator returned by [`compound`].
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for CompoundIter<'_> {
    type Item = Result<RtcpPacket, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let result = self.parse_one();
        if result.is_err() {
            self.pos = self.buf.len();
        }
        Some(result)
    }
}

impl CompoundIter<'_> {
    fn parse_one(&mut self) -> Result<RtcpPacket, RtcpError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < 4 {
            return Err(RtcpError::Truncated { len: rest.len(), needed: 4 });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        let Some(packet) = rest.get(..len) else {
            return Err(RtcpError::Truncated { len: rest.len(), needed: len });
        };
        let mut body = &packet[4..];
        if rest[0] & 0x20 != 0 {
            if len != rest.len() {
                return Err(RtcpError::PaddingNotLast);
            }
            let pad = packet[len - 1];
            if pad == 0 || usize::from(pad) > body.len() {
                return Err(RtcpError::BadPadding(pad));
            }
            body = &body[..body.len() - usize::from(pad)];
        }
        self.pos += len;
        let header = Header { count: rest[0] & 0x1f, packet_type: rest[1] };
        parse_body(header, body)
    }
}

fn parse_body(header: Header, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    Ok(match (header.packet_type, header.count) {
        (PT_SR, _) => RtcpPacket::SenderReport(SenderReport::parse(header, body)?),
        (PT_RR, _) => RtcpPacket::ReceiverReport(ReceiverReport::parse(header, body)?),
        (PT_SDES, _) => RtcpPacket::SourceDescription(SourceDescription::parse(header, body)?),
        (PT_BYE, _) => RtcpPacket::Goodbye(Goodbye::parse(header, body)?),
        (PT_RTPFB, Nack::FORMAT) => RtcpPacket::Nack(Nack::parse(header, body)?),
        (PT_RTPFB, Tmmbr::FORMAT) => RtcpPacket::Tmmbr(Tmmbr::parse(header, body)?),
        (PT_RTPFB, Tmmbn::FORMAT) => RtcpPacket::Tmmbn(Tmmbn::parse(header, body)?),
        (PT_PSFB, PictureLossIndication::FORMAT) => {
            RtcpPacket::PictureLossIndication(PictureLossIndication::parse(header, body)?)
        }
        (PT_PSFB, FullIntraRequest::FORMAT) => RtcpPacket::FullIntraRequest(FullIntraRequest::parse(header, body)?),
        (PT_PSFB, Remb::FORMAT) if Remb::matches(body) => RtcpPacket::Remb(Remb::parse(header, body)?),
        _ => RtcpPacket::Unknown(UnknownPacket {
            packet_type: header.packet_type,
            count: header.count,
            body: body.to_vec(),
        }),
    })
}

impl RtcpPacket {
    /// Parses a whole compound datagram; any malformed packet fails it.
    pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
        if buf.is_empty() {
            return Err(RtcpError::Empty);
        }
        compound(buf).collect()
    }

    /// Appends this packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = out.len();
        let result = match self {
            RtcpPacket::SenderReport(p) => p.write(out),
            RtcpPacket::ReceiverReport(p) => p.write(out),
            RtcpPacket::SourceDescription(p) => p.write(out),
            RtcpPacket::Goodbye(p) => p.write(out),
            RtcpPacket::Nack(p) => p.write(out),
            RtcpPacket::PictureLossIndication(p) => p.write(out),
            RtcpPacket::FullIntraRequest(p) => p.write(out),
            RtcpPacket::Remb(p) => p.write(out),
            RtcpPacket::Tmmbr(p) => p.write(out),
            RtcpPacket::Tmmbn(p) => p.write(out),
            RtcpPacket::Unknown(p) => {
                let at = begin(out, p.count, p.packet_type)?;
                out.extend_from_slice(&p.body);
                finish(out, at)
            }
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Appends packets back to back as one compound datagram. RFC 3550 wants
    /// an SR or RR first and an SDES with CNAME in every compound; putting
    /// them there is the caller's business, since reduced-size RTCP omits them.
    pub fn write_compound(packets: &[RtcpPacket], out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = out.len();
        for p in packets {
            if let Err(e) = p.write(out) {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Starts a packet: writes the header with a placeholder length and returns
/// where it began, for [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>, count: u8, packet_type: u8) -> Result<usize, RtcpError> {
    if count > 31 {
        return Err(RtcpError::TooManyItems(usize::from(count)));
    }
    let start = out.len();
    out.extend_from_slice(&[0x80 | count, packet_type, 0, 0]);
    Ok(start)
}

/// Pads the packet begun at `start` to a 32-bit boundary with zeros and fills
/// in its length.
pub(crate) fn finish(out: &mut Vec<u8>, start: usize) -> Result<(), RtcpError> {
    let len = (out.len() - start).div_ceil(4) * 4;
    out.resize(start + len, 0);
    let words = u16::try_from(len / 4 - 1).map_err(|_| RtcpError::PacketTooLong)?;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

/// Converts a list length into the five-bit count field.
pub(crate) fn count_of(len: usize) -> Result<u8, RtcpError> {
    u8::try_from(len).ok().filter(|&c| c <= 31).ok_or(RtcpError::TooManyItems(len))
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_compound() -> Vec<RtcpPacket> {
        vec![
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: 1,
                reports: vec![ReportBlock {
                    ssrc: 2,
                    fraction_lost: 12,
                    cumulative_lost: -3,
                    extended_highest_sequence: 70000,
                    jitter: 44,
                    last_sender_report: 0x1234_5678,
                    delay_since_last_sender_report: 65536,
                }],
            }),
            RtcpPacket::SourceDescription(SourceDescription::cname(1, "bridge@confero")),
            RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc: 1, media_ssrc: 2 }),
            RtcpPacket::Unknown(UnknownPacket { packet_type: PT_APP, count: 3, body: b"\0\0\0\x01NAME".to_vec() }),
        ]
    }

    #[test]
    fn compound_round_trip() {
        let packets = sample_compound();
        let mut out = Vec::new();
        RtcpPacket::write_compound(&packets, &mut out).unwrap();
        assert!(is_rtcp(&out));
        assert_eq!(RtcpPacket::parse_compound(&out).unwrap(), packets);
    }

    #[test]
    fn rejects_bad_framing() {
        assert_eq!(RtcpPacket::parse_compound(&[]), Err(RtcpError::Empty));
        let mut out = Vec::new();
        RtcpPacket::write_compound(&sample_compound(), &mut out).unwrap();

        let mut bad = out.clone();
        bad[0] = 0x40 | (bad[0] & 0x3f);
        assert_eq!(RtcpPacket::parse_compound(&bad), Err(RtcpError::BadVersion(1)));

        let truncated = &out[..out.len() - 2];
        assert!(matches!(RtcpPacket::parse_compound(truncated), Err(RtcpError::Truncated { .. })));

        let mut padded_first = out.clone();
        padded_first[0] |= 0x20;
        assert_eq!(RtcpPacket::parse_compound(&padded_first), Err(RtcpError::PaddingNotLast));
    }

    #[test]
    fn padding_on_the_last_packet_is_removed() {
        let pli = RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc: 5, media_ssrc: 6 });
        let mut out = Vec::new();
        pli.write(&mut out).unwrap();
        out[0] |= 0x20;
        out.extend_from_slice(&[0, 0, 0, 4]);
        out[3] += 1;
        assert_eq!(RtcpPacket::parse_compound(&out).unwrap(), vec![pli]);
        let last = out.len() - 1;
        out[last] = 0;
        assert_eq!(RtcpPacket::parse_compound(&out), Err(RtcpError::BadPadding(0)));
    }

    #[test]
    fn iterator_stops_after_an_error() {
        let mut out = Vec::new();
        RtcpPacket::write_compound(&sample_compound(), &mut out).unwrap();
        out.extend_from_slice(&[0x00, 0, 0, 0]);
        let results: Vec<_> = compound(&out).collect();
        assert_eq!(results.len(), 5);
        assert!(results[..4].iter().all(Result::is_ok));
        assert_eq!(results[4], Err(RtcpError::BadVersion(0)));
    }

    #[test]
    fn demux_tells_rtp_from_rtcp() {
        assert!(!is_rtcp(&[0x80, 96, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0x80 | 96, 0, 1]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
    }

    proptest! {
        #[test]
        fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = RtcpPacket::parse_compound(&buf);
        }

        #[test]
        fn parse_never_panics_on_plausible_headers(
            pt in 200u8..=206,
            count in 0u8..32,
            body in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let words = body.len() / 4;
            let mut buf = vec![0x80 | count, pt, 0, words as u8];
            buf.extend_from_slice(&body[..words * 4]);
            if let Ok(packets) = RtcpPacket::parse_compound(&buf) {
                let mut out = Vec::new();
                for p in &packets {
                    let _ = p.write(&mut out);
                }
            }
        }
    }
}
