//! The reorder ring every RTP video depacketizer stands on (H.264, VP8).
//!
//! Packets wait in a small ring indexed by (extended) sequence number and are
//! handed on strictly in order. A hole is declared lost once a packet
//! `reorder_window` numbers beyond it arrives, or early once two later frames
//! are complete behind it. What a packet means is the codec's business: the
//! ring only says "this packet, in order" or "something was lost here" to a
//! [`PacketSink`], so the loss rules are written once for every codec.

/// Limits of one depacketizer. The defaults suit 1080p at a few Mbit/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepacketizerConfig {
    /// Packets that may arrive ahead of a missing one before it counts as
    /// lost; also how many packets wait at most (1–1024).
    pub reorder_window: usize,
    /// The largest frame kept, in bytes as handed to the decoder; a bigger
    /// one is dropped.
    pub max_frame_bytes: usize,
    /// Assembled outputs kept until the depacketizer is polled; beyond that
    /// the oldest is dropped (a caller that does not poll must not grow
    /// memory).
    pub max_ready: usize,
}

impl Default for DepacketizerConfig {
    fn default() -> Self {
        Self { reorder_window: 32, max_frame_bytes: 2 << 20, max_ready: 8 }
    }
}

impl DepacketizerConfig {
    /// The limits held to their ranges: window 1–1024, at least one output.
    pub(crate) fn clamped(self) -> Self {
        Self { reorder_window: self.reorder_window.clamp(1, 1024), max_ready: self.max_ready.max(1), ..self }
    }
}

/// Counters for a call leg's receive statistics and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DepacketizerStats {
    /// Frames handed out.
    pub frames: u64,
    /// Frames dropped: damaged, too large, or waiting for a keyframe.
    pub dropped_frames: u64,
    /// Sequence numbers given up as lost.
    pub lost_packets: u64,
    /// Duplicates and packets that came after their place was given up.
    pub late_packets: u64,
    /// Payloads refused as malformed.
    pub malformed_packets: u64,
}

/// What a codec's frame assembly does with the ring's output.
pub(crate) trait PacketSink {
    /// The next packet in sequence order.
    fn packet(&mut self, timestamp: u32, marker: bool, payload: &[u8]);
    /// Packets were given up as lost, or the sender restarted its numbering:
    /// the frame being built is damaged and what follows needs a keyframe.
    fn loss(&mut self);
}

/// A packet waiting in the ring.
#[derive(Debug, Default)]
struct Slot {
    sequence: Option<i64>,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// A sequence number this far behind the next expected one is not a late
/// packet but a sender that restarted its numbering.
const RESTART_DISTANCE: i64 = 3000;

/// Packets in any order within the window, out in sequence order.
#[derive(Debug)]
pub(crate) struct ReorderRing {
    slots: Vec<Slot>,
    /// The extended sequence number of the next packet to hand on.
    next: Option<i64>,
    highest: i64,
    lost_packets: u64,
    late_packets: u64,
}

impl ReorderRing {
    /// A ring of `window` slots (1–1024, clamped).
    pub(crate) fn new(window: usize) -> Self {
        Self {
            slots: (0..window.clamp(1, 1024)).map(|_| Slot::default()).collect(),
            next: None,
            highest: 0,
            lost_packets: 0,
            late_packets: 0,
        }
    }

    /// Sequence numbers given up as lost so far.
    pub(crate) fn lost_packets(&self) -> u64 {
        self.lost_packets
    }

    /// Duplicates and packets too late to place so far.
    pub(crate) fn late_packets(&self) -> u64 {
        self.late_packets
    }

    /// Takes one packet (already checked by the codec) and hands `sink`
    /// every packet that is now in order, and every loss now certain.
    /// Duplicates and packets too late to place are dropped silently.
    pub(crate) fn push(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        sink: &mut impl PacketSink,
    ) {
        let window = self.slots.len() as i64;
        let sequence = match self.next {
            None => {
                self.next = Some(i64::from(sequence));
                self.highest = i64::from(sequence);
                i64::from(sequence)
            }
            Some(next) => {
                let extended = self.highest + i64::from(sequence.wrapping_sub(self.highest as u16) as i16);
                if extended < next - RESTART_DISTANCE {
                    self.restart(extended, sink);
                } else if extended < next {
                    self.late_packets += 1;
                    return;
                }
                extended
            }
        };
        // A jump of more than two windows gives up everything before it at once.
        if let Some(next) = self.next {
            if sequence - next >= 2 * window {
                for _ in 0..window {
                    self.step(sink);
                }
                let skipped = sequence - self.next.unwrap_or(sequence);
                if skipped > 0 {
                    self.lost_packets += skipped as u64;
                    sink.loss();
                }
                self.next = Some(sequence);
            }
        }
        // Make room: a hole a window behind this packet is lost.
        while self.next.is_some_and(|next| sequence - next >= window) {
            self.step(sink);
        }
        let index = sequence.rem_euclid(window) as usize;
        let Some(slot) = self.slots.get_mut(index) else { return };
        if slot.sequence == Some(sequence) {
            self.late_packets += 1;
            return;
        }
        slot.sequence = Some(sequence);
        slot.timestamp = timestamp;
        slot.marker = marker;
        slot.payload.clear();
        slot.payload.extend_from_slice(payload);
        self.highest = self.highest.max(sequence);
        self.consume_ready(sink);
    }

    /// Hands on packets in order while the next one is here. A hole is given
    /// up early once two later frames are complete behind it: reordering
    /// across whole frames does not happen on real paths, and waiting longer
    /// only delays the keyframe request.
    fn consume_ready(&mut self, sink: &mut impl PacketSink) {
        let window = self.slots.len() as i64;
        while let Some(next) = self.next {
            let present = self.slots.get(next.rem_euclid(window) as usize).is_some_and(|s| s.sequence == Some(next));
            let frames_behind =
                || self.slots.iter().filter(|s| s.marker && s.sequence.is_some_and(|q| q > next)).count();
            if !present && frames_behind() < 2 {
                break;
            }
            self.step(sink);
        }
    }

    /// A sender that jumped back a long way restarted: drop what we hold.
    fn restart(&mut self, sequence: i64, sink: &mut impl PacketSink) {
        for slot in &mut self.slots {
            slot.sequence = None;
        }
        sink.loss();
        self.next = Some(sequence);
        self.highest = sequence;
    }

    /// Hands on the packet at `next` if it is here, else gives it up as lost.
    fn step(&mut self, sink: &mut impl PacketSink) {
        let Some(next) = self.next else { return };
        self.next = Some(next + 1);
        let window = self.slots.len() as i64;
        let Some(mut slot) = self.slots.get_mut(next.rem_euclid(window) as usize).map(std::mem::take) else { return };
        if slot.sequence == Some(next) {
            slot.sequence = None;
            sink.packet(slot.timestamp, slot.marker, &slot.payload);
        } else {
            self.lost_packets += 1;
            sink.loss();
        }
        // Put the (emptied) buffer back so its capacity is reused.
        if let Some(place) = self.slots.get_mut(next.rem_euclid(window) as usize) {
            if place.sequence.is_none() {
                slot.sequence = None;
                *place = slot;
            }
        }
    }
}
