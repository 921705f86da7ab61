//! Source description (RFC 3550 §6.5). The bridge sends and reads CNAME,
//! which ties a participant's audio and video SSRCs together.

use super::{be32, begin, count_of, finish, Header, RtcpError, PT_SDES};

/// One SDES item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItem {
    /// The item type ([`SdesItem::CNAME`], ...).
    pub kind: u8,
    /// The item's text (UTF-8 per RFC 3550; invalid bytes are replaced).
    pub value: String,
}

impl SdesItem {
    /// Canonical name: stable for a participant across its streams.
    pub const CNAME: u8 = 1;
    /// User name.
    pub const NAME: u8 = 2;
    /// Application or tool name.
    pub const TOOL: u8 = 6;
}

/// The items describing one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    /// The source described.
    pub ssrc: u32,
    /// Its items, in order.
    pub items: Vec<SdesItem>,
}

/// SDES: descriptions of up to 31 sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceDescription {
    /// One chunk per source.
    pub chunks: Vec<SdesChunk>,
}

impl SourceDescription {
    /// An SDES with just a CNAME for one source: what every compound carries.
    pub fn cname(ssrc: u32, cname: &str) -> Self {
        Self {
            chunks: vec![SdesChunk { ssrc, items: vec![SdesItem { kind: SdesItem::CNAME, value: cname.to_owned() }] }],
        }
    }

    /// The CNAME given for `ssrc`, if any.
    pub fn cname_of(&self, ssrc: u32) -> Option<&str> {
        self.chunks
            .iter()
            .filter(|c| c.ssrc == ssrc)
            .flat_map(|c| &c.items)
            .find(|i| i.kind == SdesItem::CNAME)
            .map(|i| i.value.as_str())
    }

    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let short = RtcpError::BodyTooShort { packet_type: PT_SDES };
        let mut chunks = Vec::with_capacity(usize::from(header.count));
        let mut pos = 0;
        for _ in 0..header.count {
            if b.len() < pos + 4 {
                return Err(short);
            }
            let ssrc = be32(b, pos);
            pos += 4;
            let mut items = Vec::new();
            loop {
                let kind = *b.get(pos).ok_or(short)?;
                if kind == 0 {
                    // The null item, then padding to the next 32-bit boundary.
                    pos = (pos + 1).div_ceil(4) * 4;
                    break;
                }
                let len = usize::from(*b.get(pos + 1).ok_or(short)?);
                let text = b.get(pos + 2..pos + 2 + len).ok_or(short)?;
                items.push(SdesItem { kind, value: String::from_utf8_lossy(text).into_owned() });
                pos += 2 + len;
            }
            chunks.push(SdesChunk { ssrc, items });
        }
        Ok(Self { chunks })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = begin(out, count_of(self.chunks.len())?, PT_SDES)?;
        for chunk in &self.chunks {
            let chunk_start = out.len();
            out.extend_from_slice(&chunk.ssrc.to_be_bytes());
            for item in &chunk.items {
                let len = u8::try_from(item.value.len()).map_err(|_| RtcpError::TextTooLong(item.value.len()))?;
                out.push(item.kind);
                out.push(len);
                out.extend_from_slice(item.value.as_bytes());
            }
            out.push(0);
            let padded = (out.len() - chunk_start).div_ceil(4) * 4;
            out.resize(chunk_start + padded, 0);
        }
        finish(out, start)
    }
}

#[cfg(test)]
mod tests {
    use super::super::RtcpPacket;
    use super::*;

    #[test]
    fn round_trip_with_several_chunks() {
        let sdes = SourceDescription {
            chunks: vec![
                SdesChunk {
                    ssrc: 1,
                    items: vec![
                        SdesItem { kind: SdesItem::CNAME, value: "abc".into() },
                        SdesItem { kind: SdesItem::TOOL, value: "confero".into() },
                    ],
                },
                SdesChunk { ssrc: 2, items: vec![] },
            ],
        };
        let mut out = Vec::new();
        RtcpPacket::SourceDescription(sdes.clone()).write(&mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        let parsed = RtcpPacket::parse_compound(&out).unwrap();
        assert_eq!(parsed, vec![RtcpPacket::SourceDescription(sdes.clone())]);
        assert_eq!(sdes.cname_of(1), Some("abc"));
        assert_eq!(sdes.cname_of(2), None);
    }

    #[test]
    fn cname_that_fills_a_word_still_gets_a_null_item() {
        // 4 (ssrc) + 2 + 2 = 8 bytes of items: the null needs a fresh word.
        let sdes = SourceDescription::cname(9, "ab");
        let mut out = Vec::new();
        RtcpPacket::SourceDescription(sdes.clone()).write(&mut out).unwrap();
        assert_eq!(out.len(), 4 + 12);
        assert_eq!(RtcpPacket::parse_compound(&out).unwrap(), vec![RtcpPacket::SourceDescription(sdes)]);
    }

    #[test]
    fn rejects_overlong_items_and_missing_chunks() {
        let long = "x".repeat(256);
        let mut out = Vec::new();
        assert_eq!(
            RtcpPacket::SourceDescription(SourceDescription::cname(1, &long)).write(&mut out),
            Err(RtcpError::TextTooLong(256))
        );
        assert!(out.is_empty());
        // Claims two chunks, carries one.
        let buf = [0x82, PT_SDES, 0, 2, 0, 0, 0, 1, 1, 1, b'a', 0];
        assert!(RtcpPacket::parse_compound(&buf).is_err());
        // An item that runs past the end.
        let buf = [0x81, PT_SDES, 0, 2, 0, 0, 0, 1, 1, 9, b'a', 0];
        assert!(RtcpPacket::parse_compound(&buf).is_err());
    }
}
