//! Goodbye (RFC 3550 §6.6): a source leaves, and its state can go.

use super::{be32, begin, count_of, finish, Header, RtcpError, PT_BYE};

/// BYE: these sources are leaving, optionally saying why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Goodbye {
    /// The departing sources, at most 31.
    pub ssrcs: Vec<u32>,
    /// The reason, if one was given.
    pub reason: Option<String>,
}

impl Goodbye {
    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        let short = RtcpError::BodyTooShort { packet_type: PT_BYE };
        let n = 4 * usize::from(header.count);
        let list = b.get(..n).ok_or(short)?;
        let ssrcs = (0..list.len()).step_by(4).map(|at| be32(list, at)).collect();
        let reason = match b.get(n) {
            Some(&len) if len > 0 => {
                let text = b.get(n + 1..n + 1 + usize::from(len)).ok_or(short)?;
                Some(String::from_utf8_lossy(text).into_owned())
            }
            _ => None,
        };
        Ok(Self { ssrcs, reason })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = begin(out, count_of(self.ssrcs.len())?, PT_BYE)?;
        for ssrc in &self.ssrcs {
            out.extend_from_slice(&ssrc.to_be_bytes());
        }
        if let Some(reason) = &self.reason {
            let len = u8::try_from(reason.len()).map_err(|_| RtcpError::TextTooLong(reason.len()))?;
            out.push(len);
            out.extend_from_slice(reason.as_bytes());
        }
        finish(out, start)
    }
}

#[cfg(test)]
mod tests {
    use super::super::RtcpPacket;
    use super::*;

    #[test]
    fn round_trip_with_and_without_reason() {
        for reason in [None, Some("call ended".to_owned()), Some(String::new())] {
            let bye = Goodbye { ssrcs: vec![1, 2, 3], reason: reason.clone() };
            let mut out = Vec::new();
            RtcpPacket::Goodbye(bye).write(&mut out).unwrap();
            let parsed = RtcpPacket::parse_compound(&out).unwrap();
            let expected = Goodbye { ssrcs: vec![1, 2, 3], reason: reason.filter(|r| !r.is_empty()) };
            assert_eq!(parsed, vec![RtcpPacket::Goodbye(expected)]);
        }
    }

    #[test]
    fn rejects_reason_past_the_end() {
        let buf = [0x81, PT_BYE, 0, 2, 0, 0, 0, 1, 9, b'a', b'b', b'c'];
        assert_eq!(RtcpPacket::parse_compound(&buf), Err(RtcpError::BodyTooShort { packet_type: PT_BYE }));
    }
}
