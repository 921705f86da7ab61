//! What we sent a receiver that asked for retransmissions (`a=rtcp-fb nack`,
//! RFC 4585 generic NACK): the last packets as they went on the wire
//! (already protected), by sequence number, so a NACK is answered by
//! sending the same bytes again on the same SSRC. Without RTX this is what
//! RFC 4588 §3 calls retransmission in the original stream; the SRTP
//! receiver accepts it because the lost original never reached its replay
//! window.

use std::collections::VecDeque;

/// Packets kept per receiver: about two seconds of 720p video, longer than
/// any NACK is worth answering.
pub(super) const KEPT: usize = 512;

/// The newest [`KEPT`] packets sent to one receiver.
#[derive(Debug, Default)]
pub(super) struct RetransmitBuffer {
    packets: VecDeque<(u16, Vec<u8>)>,
}

impl RetransmitBuffer {
    /// Keeps a sent packet (its sequence number is read from its header,
    /// which SRTP leaves in the clear).
    pub(super) fn remember(&mut self, packet: &[u8]) {
        let Some(seq) = packet.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])) else { return };
        if self.packets.len() == KEPT {
            self.packets.pop_front();
        }
        self.packets.push_back((seq, packet.to_vec()));
    }

    /// The packet sent with `seq`, if still kept.
    pub(super) fn get(&self, seq: u16) -> Option<&[u8]> {
        // Sequence numbers are consecutive: look where it should be first.
        let (first, _) = self.packets.front()?;
        let at = usize::from(seq.wrapping_sub(*first));
        match self.packets.get(at) {
            Some((s, bytes)) if *s == seq => Some(bytes),
            _ => self.packets.iter().find(|(s, _)| *s == seq).map(|(_, b)| b.as_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 102];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p
    }

    #[test]
    fn keeps_the_newest_and_finds_them_across_a_wrap() {
        let mut buffer = RetransmitBuffer::default();
        for i in 0..(KEPT as u32 + 10) {
            buffer.remember(&packet((65_300u32 + i) as u16));
        }
        assert!(buffer.get(65_300).is_none(), "the oldest are gone");
        let newest = ((65_300u32 + KEPT as u32 + 9) % 65_536) as u16;
        assert_eq!(buffer.get(newest), Some(packet(newest).as_slice()));
        assert_eq!(buffer.get(3), Some(packet(3).as_slice()));
        buffer.remember(&[0x80]);
        assert!(buffer.get(newest).is_some());
    }
}
