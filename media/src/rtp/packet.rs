//! The RTP fixed header, CSRC list, extension and payload (RFC 3550 §5.1).

use super::extension::{write_extensions, HeaderExtension, HeaderExtensions};
use super::{AudioLevel, RtpError};

/// The only RTP version in use (RFC 3550).
pub const RTP_VERSION: u8 = 2;

/// Bytes in the fixed part of every RTP header.
pub const RTP_FIXED_HEADER_LEN: usize = 12;

/// A parsed, validated view over an RTP packet's bytes.
///
/// Parsing checks every length once, so the accessors cannot fail and the
/// receive path never copies the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    header_len: usize,
    payload_end: usize,
    extension: Option<(u16, usize, usize)>,
}

impl<'a> RtpPacket<'a> {
    /// Checks `buf` as an RTP packet: version, CSRC count, extension length
    /// and padding must all fit inside it.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let truncated = |needed| RtpError::Truncated { len: buf.len(), needed };
        if buf.len() < RTP_FIXED_HEADER_LEN {
            return Err(truncated(RTP_FIXED_HEADER_LEN));
        }
        let version = buf[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_count = usize::from(buf[0] & 0x0f);
        let mut header_len = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
        if buf.len() < header_len {
            return Err(truncated(header_len));
        }
        let mut extension = None;
        if buf[0] & 0x10 != 0 {
            let needed = header_len + 4;
            let Some(ext) = buf.get(header_len..needed) else {
                return Err(truncated(needed));
            };
            let profile = u16::from_be_bytes([ext[0], ext[1]]);
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            let end = needed + 4 * words;
            if buf.len() < end {
                return Err(truncated(end));
            }
            extension = Some((profile, needed, end));
            header_len = end;
        }
        let mut payload_end = buf.len();
        if buf[0] & 0x20 != 0 {
            let pad = buf[buf.len() - 1];
            if pad == 0 || usize::from(pad) > buf.len() - header_len {
                return Err(RtpError::BadPadding(pad));
            }
            payload_end -= usize::from(pad);
        }
        Ok(Self { buf, header_len, payload_end, extension })
    }

    /// The marker bit: end of a video frame, start of a talkspurt for audio.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The payload type, which maps to a codec through SDP.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// The 16-bit sequence number.
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// The media timestamp in the codec's clock rate.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// The synchronisation source that sent the packet.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }

    /// The contributing sources, in header order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let count = usize::from(self.buf[0] & 0x0f);
        self.buf[RTP_FIXED_HEADER_LEN..RTP_FIXED_HEADER_LEN + 4 * count]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension block, if the X bit is set.
    pub fn extensions(&self) -> Option<HeaderExtensions<'a>> {
        self.extension.map(|(profile, start, end)| HeaderExtensions::new(profile, &self.buf[start..end]))
    }

    /// The RFC 6464 audio level, if the extension negotiated as `id` is present
    /// and well formed.
    pub fn audio_level(&self, id: u8) -> Option<AudioLevel> {
        let data = self.extensions()?.get(id)?;
        AudioLevel::parse(data).ok()
    }

    /// The payload, without header or padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..self.payload_end]
    }

    /// Bytes of header: fixed part, CSRCs and extension block.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Bytes of padding at the end (0 when the P bit is clear).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }

    /// The whole packet as it was parsed.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// What to write in front of a payload.
///
/// Borrowed slices rather than owned lists so that a packetiser can build one
/// per packet on the stack without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// The marker bit.
    pub marker: bool,
    /// The payload type (0..=127).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The media timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// Contributing sources, at most 15: the mixer lists its speakers here.
    pub csrcs: &'a [u32],
    /// Header extension elements; the one-byte form is used when they all fit.
    pub extensions: &'a [HeaderExtension<'a>],
    /// Bytes of padding to append after the payload (0 for none).
    pub padding: u8,
}

impl RtpHeader<'_> {
    /// Appends the header to `out`. The P bit is set when `padding` is not
    /// zero; [`RtpHeader::write_packet`] then adds the padding itself.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), RtpError> {
        if self.csrcs.len() > 15 {
            return Err(RtpError::TooManyCsrcs(self.csrcs.len()));
        }
        let mut b0 = RTP_VERSION << 6 | self.csrcs.len() as u8;
        if self.padding != 0 {
            b0 |= 0x20;
        }
        if !self.extensions.is_empty() {
            b0 |= 0x10;
        }
        let start = out.len();
        out.push(b0);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in self.csrcs {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        if !self.extensions.is_empty() {
            if let Err(e) = write_extensions(self.extensions, out) {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Appends header, payload and padding to `out`.
    pub fn write_packet(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtpError> {
        self.write(out)?;
        out.extend_from_slice(payload);
        if self.padding != 0 {
            out.resize(out.len() + usize::from(self.padding) - 1, 0);
            out.push(self.padding);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut v = vec![0x80, 0xe0, 0x12, 0x34, 0, 0, 0x03, 0x20, 0xde, 0xad, 0xbe, 0xef];
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn parses_the_fixed_header() {
        let buf = sample();
        let p = RtpPacket::parse(&buf).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 800);
        assert_eq!(p.ssrc(), 0xdead_beef);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(p.csrcs().count(), 0);
        assert!(p.extensions().is_none());
    }

    #[test]
    fn rejects_short_and_wrong_version() {
        assert!(matches!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::Truncated { .. })));
        let mut buf = sample();
        buf[0] = 0x40;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadVersion(1)));
    }

    #[test]
    fn rejects_csrcs_and_extension_past_the_end() {
        let mut buf = sample();
        buf[0] = 0x82;
        assert!(matches!(RtpPacket::parse(&buf), Err(RtpError::Truncated { needed: 20, .. })));
        let mut buf = sample();
        buf[0] = 0x90;
        buf[14] = 0;
        buf[15] = 9;
        assert!(matches!(RtpPacket::parse(&buf), Err(RtpError::Truncated { needed: 52, .. })));
    }

    #[test]
    fn strips_padding_and_rejects_bad_padding() {
        let mut buf = sample();
        buf[0] |= 0x20;
        buf.extend_from_slice(&[0, 0, 3]);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(p.padding_len(), 3);

        let last = buf.len() - 1;
        buf[last] = 0;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadPadding(0)));
        buf[last] = 8;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadPadding(8)));
    }

    #[test]
    fn writes_what_it_parses() {
        let level = [AudioLevel::new(true, 30).to_byte()];
        let exts = [HeaderExtension::new(1, &level), HeaderExtension::new(3, &[9, 9, 9])];
        let header = RtpHeader {
            marker: true,
            payload_type: 111,
            sequence_number: 65535,
            timestamp: 0xffff_fff0,
            ssrc: 42,
            csrcs: &[7, 8],
            extensions: &exts,
            padding: 4,
        };
        let mut out = Vec::new();
        header.write_packet(b"opus", &mut out).unwrap();
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!(p.payload(), b"opus");
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(p.audio_level(1), Some(AudioLevel::new(true, 30)));
        assert_eq!(p.extensions().unwrap().get(3), Some(&[9u8, 9, 9][..]));
        assert_eq!(p.padding_len(), 4);
        assert_eq!(p.header_len() % 4, 0);
    }

    #[test]
    fn refuses_sixteen_csrcs() {
        let csrcs = [0u32; 16];
        let header = RtpHeader { csrcs: &csrcs, ..RtpHeader::default() };
        let mut out = Vec::new();
        assert_eq!(header.write(&mut out), Err(RtpError::TooManyCsrcs(16)));
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = RtpPacket::parse(&buf) {
                prop_assert!(p.header_len() + p.payload().len() + p.padding_len() == buf.len());
                if let Some(exts) = p.extensions() {
                    for e in exts.iter() {
                        prop_assert!(e.data.len() <= buf.len());
                    }
                }
            }
        }

        #[test]
        fn round_trips(
            marker: bool,
            pt in 0u8..128,
            seq: u16,
            ts: u32,
            ssrc: u32,
            csrcs in proptest::collection::vec(any::<u32>(), 0..15),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            padding: u8,
        ) {
            let header = RtpHeader {
                marker, payload_type: pt, sequence_number: seq, timestamp: ts, ssrc,
                csrcs: &csrcs, extensions: &[], padding,
            };
            let mut out = Vec::new();
            header.write_packet(&payload, &mut out).unwrap();
            let p = RtpPacket::parse(&out).unwrap();
            prop_assert_eq!(p.marker(), marker);
            prop_assert_eq!(p.payload_type(), pt);
            prop_assert_eq!(p.sequence_number(), seq);
            prop_assert_eq!(p.timestamp(), ts);
            prop_assert_eq!(p.ssrc(), ssrc);
            prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(p.padding_len(), usize::from(padding));
        }
    }
}
