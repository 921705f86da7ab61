//! RTP payloads back into access units, with reordering and loss handling.
//!
//! Packets come in sequence order out of the shared [`ReorderRing`]; after a
//! loss, frames are dropped until a complete frame with an IDR slice, because
//! every P frame after a loss references pictures the decoder never got
//! right.

use std::collections::VecDeque;
use std::ops::Range;

use super::{check_nal_header, nal_type, H264Error, FU_A, NAL_IDR, NAL_SLICE, STAP_A, START_CODE};
use crate::video::reorder::{DepacketizerConfig, DepacketizerStats, PacketSink, ReorderRing};

/// One complete access unit in Annex-B form (4-byte start codes), the input
/// OpenH264's decoder takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessUnit {
    timestamp: u32,
    data: Vec<u8>,
    nal_units: Vec<Range<usize>>,
    keyframe: bool,
}

impl AccessUnit {
    /// The RTP timestamp (90 kHz) shared by the frame's packets.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The whole access unit, start codes included.
    pub fn annex_b(&self) -> &[u8] {
        &self.data
    }

    /// Each NAL unit without its start code, in decoding order. Exact even
    /// when a unit contains bytes that look like a start code.
    pub fn nal_units(&self) -> impl Iterator<Item = &[u8]> {
        self.nal_units.iter().filter_map(|range| self.data.get(range.clone()))
    }

    /// True when it holds an IDR slice: a decoder can start (or recover) here.
    pub fn is_keyframe(&self) -> bool {
        self.keyframe
    }

    fn clear(&mut self) {
        self.data.clear();
        self.nal_units.clear();
        self.keyframe = false;
    }
}

/// What the depacketizer hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A complete access unit, safe to decode.
    Frame(AccessUnit),
    /// A frame was lost or dropped and the decoder cannot go on without an
    /// IDR: send PLI or FIR (through a `KeyframeRequestLimiter`).
    KeyframeNeeded,
}

/// The frame being put together from in-order packets.
#[derive(Debug, Default)]
struct Frame {
    open: bool,
    timestamp: u32,
    damaged: bool,
    /// Where the NAL unit a FU-A is building starts in `unit.data`, if one is.
    fragment_start: Option<usize>,
    /// Whether the first slice has been seen (to check it starts at macroblock 0).
    seen_slice: bool,
    unit: AccessUnit,
}

/// RTP payloads (with their sequence number, timestamp and marker) in,
/// complete access units out. Feed it with [`Self::push`], drain it with
/// [`Self::poll`] after every push.
#[derive(Debug)]
pub struct H264Depacketizer {
    ring: ReorderRing,
    assembly: Assembly,
}

/// Access units built from the ring's in-order packets.
#[derive(Debug)]
struct Assembly {
    config: DepacketizerConfig,
    frame: Frame,
    /// A loss was seen since the last keyframe (or none has come yet): only a
    /// complete keyframe may pass.
    waiting_for_keyframe: bool,
    /// The next frame to open follows a loss (its head may be gone).
    after_loss: bool,
    ready: VecDeque<Assembled>,
    spare: Vec<AccessUnit>,
    /// Frame and malformed-packet counts; the ring counts packets.
    stats: DepacketizerStats,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new(DepacketizerConfig::default())
    }
}

impl H264Depacketizer {
    /// A depacketizer that waits for the first keyframe.
    pub fn new(config: DepacketizerConfig) -> Self {
        let config = config.clamped();
        Self {
            ring: ReorderRing::new(config.reorder_window),
            assembly: Assembly {
                config,
                frame: Frame::default(),
                waiting_for_keyframe: true,
                // Joining a stream mid-way is like a loss: the first frame must start at macroblock 0.
                after_loss: true,
                ready: VecDeque::new(),
                spare: Vec::new(),
                stats: DepacketizerStats::default(),
            },
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> DepacketizerStats {
        DepacketizerStats {
            lost_packets: self.ring.lost_packets(),
            late_packets: self.ring.late_packets(),
            ..self.assembly.stats
        }
    }

    /// True until a keyframe arrives after a loss (and before the first one).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.assembly.waiting_for_keyframe
    }

    /// The next assembled frame or keyframe request, oldest first.
    pub fn poll(&mut self) -> Option<Assembled> {
        self.assembly.ready.pop_front()
    }

    /// Gives a decoded frame's buffers back, so the next frames reuse them.
    pub fn recycle(&mut self, unit: AccessUnit) {
        self.assembly.recycle(unit);
    }

    /// Takes one RTP packet's H.264 payload. A malformed payload is refused
    /// before it is stored, so it counts as a lost packet of its frame.
    /// Duplicates and packets too late to place are dropped silently.
    pub fn push(&mut self, sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Result<(), H264Error> {
        if let Err(e) = check_payload(payload) {
            self.assembly.stats.malformed_packets += 1;
            return Err(e);
        }
        self.ring.push(sequence, timestamp, marker, payload, &mut self.assembly);
        Ok(())
    }
}

impl PacketSink for Assembly {
    fn packet(&mut self, timestamp: u32, marker: bool, payload: &[u8]) {
        self.consume(timestamp, marker, payload);
    }

    fn loss(&mut self) {
        if self.frame.open {
            self.frame.damaged = true;
        }
        self.after_loss = true;
        if !self.waiting_for_keyframe {
            self.waiting_for_keyframe = true;
            self.emit(Assembled::KeyframeNeeded);
        }
    }
}

impl Assembly {
    fn recycle(&mut self, mut unit: AccessUnit) {
        if self.spare.len() < self.config.max_ready {
            unit.clear();
            self.spare.push(unit);
        }
    }

    /// One packet, in sequence order.
    fn consume(&mut self, timestamp: u32, marker: bool, payload: &[u8]) {
        if self.frame.open && self.frame.timestamp != timestamp {
            // The sender left out the marker; nothing was lost in between.
            self.finish_frame();
        }
        if !self.frame.open {
            let mut unit = self.spare.pop().unwrap_or_default();
            unit.clear();
            unit.timestamp = timestamp;
            self.frame = Frame { open: true, timestamp, unit, ..Frame::default() };
        }
        if !self.frame.damaged {
            self.add_payload(payload);
        }
        if self.frame.unit.data.len() > self.config.max_frame_bytes {
            self.frame.damaged = true;
        }
        if self.frame.damaged {
            self.frame.unit.clear();
            self.frame.fragment_start = None;
        }
        if marker {
            self.finish_frame();
        }
    }

    fn add_payload(&mut self, payload: &[u8]) {
        let Some(&header) = payload.first() else { return };
        match nal_type(header) {
            STAP_A => {
                self.abandon_fragment();
                let mut rest = payload.get(1..).unwrap_or_default();
                while let [high, low, tail @ ..] = rest {
                    let len = usize::from(u16::from_be_bytes([*high, *low]));
                    let (Some(unit), Some(after)) = (tail.get(..len), tail.get(len..)) else { break };
                    self.add_nal_unit(unit);
                    rest = after;
                }
            }
            FU_A => {
                let (Some(&fu_header), Some(body)) = (payload.get(1), payload.get(2..)) else { return };
                let start = fu_header & 0x80 != 0;
                let end = fu_header & 0x40 != 0;
                if start {
                    self.abandon_fragment();
                    let unit = &mut self.frame.unit;
                    unit.data.extend_from_slice(&START_CODE);
                    self.frame.fragment_start = Some(unit.data.len());
                    unit.data.push((header & 0xe0) | nal_type(fu_header));
                } else if self.frame.fragment_start.is_none() {
                    // A middle or end without its start: the start was lost.
                    self.frame.damaged = true;
                    return;
                }
                self.frame.unit.data.extend_from_slice(body);
                if end {
                    if let Some(begin) = self.frame.fragment_start.take() {
                        let end_at = self.frame.unit.data.len();
                        self.note_nal_unit(begin..end_at);
                    }
                }
            }
            _ => {
                self.abandon_fragment();
                self.add_nal_unit(payload);
            }
        }
    }

    /// A FU-A whose end never came makes the frame undecodable.
    fn abandon_fragment(&mut self) {
        if let Some(begin) = self.frame.fragment_start.take() {
            self.frame.damaged = true;
            self.frame.unit.data.truncate(begin.saturating_sub(START_CODE.len()));
        }
    }

    fn add_nal_unit(&mut self, nal: &[u8]) {
        let unit = &mut self.frame.unit;
        unit.data.extend_from_slice(&START_CODE);
        let begin = unit.data.len();
        unit.data.extend_from_slice(nal);
        let end = unit.data.len();
        self.note_nal_unit(begin..end);
    }

    fn note_nal_unit(&mut self, range: Range<usize>) {
        let Some(&header) = self.frame.unit.data.get(range.start) else { return };
        let kind = nal_type(header);
        if kind == NAL_IDR {
            self.frame.unit.keyframe = true;
        }
        if (kind == NAL_SLICE || kind == NAL_IDR) && !self.frame.seen_slice {
            self.frame.seen_slice = true;
            // first_mb_in_slice is the first ue(v) after the header; its
            // leading bit is 1 exactly when it is 0. A frame opened after a
            // loss whose first slice starts elsewhere lost its head.
            let first_mb_zero = self.frame.unit.data.get(range.start + 1).is_some_and(|b| b & 0x80 != 0);
            if self.after_loss && !first_mb_zero {
                self.frame.damaged = true;
            }
        }
        self.frame.unit.nal_units.push(range);
    }

    fn finish_frame(&mut self) {
        let mut frame = std::mem::take(&mut self.frame);
        if frame.fragment_start.is_some() {
            frame.damaged = true;
        }
        if frame.seen_slice || frame.damaged {
            self.after_loss = false;
        }
        if frame.damaged {
            self.stats.dropped_frames += 1;
            self.waiting_for_keyframe = true;
            self.recycle(frame.unit);
            self.emit(Assembled::KeyframeNeeded);
        } else if frame.unit.nal_units.is_empty() {
            self.recycle(frame.unit);
        } else if self.waiting_for_keyframe && !frame.unit.keyframe {
            self.stats.dropped_frames += 1;
            self.recycle(frame.unit);
            self.emit(Assembled::KeyframeNeeded);
        } else {
            self.waiting_for_keyframe = false;
            self.stats.frames += 1;
            self.emit(Assembled::Frame(frame.unit));
        }
    }

    fn emit(&mut self, output: Assembled) {
        if self.ready.len() >= self.config.max_ready {
            if let Some(Assembled::Frame(unit)) = self.ready.pop_front() {
                // A frame the caller never took: what follows it cannot decode.
                self.stats.dropped_frames += 1;
                self.stats.frames -= 1;
                self.recycle(unit);
                self.waiting_for_keyframe = true;
            }
        }
        // One pending request says it all; do not queue a run of them.
        if output == Assembled::KeyframeNeeded && self.ready.back() == Some(&Assembled::KeyframeNeeded) {
            return;
        }
        self.ready.push_back(output);
    }
}

/// Checks an RTP payload's structure before it is stored, so consuming it
/// later cannot fail.
fn check_payload(payload: &[u8]) -> Result<(), H264Error> {
    let header = *payload.first().ok_or(H264Error::Empty)?;
    if header & 0x80 != 0 {
        return Err(H264Error::ForbiddenBit);
    }
    match nal_type(header) {
        1..=23 => Ok(()),
        STAP_A => {
            let mut rest = payload.get(1..).unwrap_or_default();
            if rest.is_empty() {
                return Err(H264Error::MalformedStapA);
            }
            while !rest.is_empty() {
                let [high, low, tail @ ..] = rest else { return Err(H264Error::MalformedStapA) };
                let len = usize::from(u16::from_be_bytes([*high, *low]));
                let (Some(unit), Some(after)) = (tail.get(..len), tail.get(len..)) else {
                    return Err(H264Error::MalformedStapA);
                };
                let inner = *unit.first().ok_or(H264Error::MalformedStapA)?;
                check_nal_header(inner)?;
                rest = after;
            }
            Ok(())
        }
        FU_A => {
            let [_, fu_header, _, ..] = payload else { return Err(H264Error::MalformedFuA) };
            if fu_header & 0xc0 == 0xc0 {
                return Err(H264Error::MalformedFuA);
            }
            check_nal_header(nal_type(*fu_header))
        }
        other => Err(H264Error::UnsupportedType(other)),
    }
}
