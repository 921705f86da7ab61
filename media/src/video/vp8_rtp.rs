//! VP8 over RTP (RFC 7741).
//!
//! Each payload is a payload descriptor and a piece of one VP8 frame:
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |X|R|N|S|R| PID | (required)
//!      +-+-+-+-+-+-+-+-+
//! X:   |I|L|T|K| RSV   | (present when X)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PictureID   | (present when I; a second byte when M)
//!      +-+-+-+-+-+-+-+-+
//! L:   |   TL0PICIDX   | (present when L)
//!      +-+-+-+-+-+-+-+-+
//! T/K: |TID|Y| KEYIDX  | (present when T or K)
//!      +-+-+-+-+-+-+-+-+
//! ```
//!
//! [`Vp8Packetizer`] cuts a frame into payloads of even size, each with a
//! 15-bit PictureID (browsers use it to detect frame loss). [`Vp8Depacketizer`]
//! puts frames back together on the shared [`ReorderRing`], with the same
//! loss handling as H.264: a frame that lost a packet is dropped, and so is
//! everything after it until a complete keyframe, with
//! [`Vp8Assembled::KeyframeNeeded`] to ask the sender for one.

use std::collections::VecDeque;

use super::h264_rtp::RtpPayloads;
use super::reorder::{DepacketizerConfig, DepacketizerStats, PacketSink, ReorderRing};

/// The descriptor our packetizer writes: X with I, and a 15-bit PictureID.
const DESCRIPTOR_LEN: usize = 4;

/// Why a frame cannot be packetized, or an RTP payload is not VP8 we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Vp8RtpError {
    /// An RTP payload had no bytes.
    #[error("empty VP8 payload")]
    Empty,
    /// The payload descriptor's flags promise more bytes than the payload has.
    #[error("VP8 payload descriptor cut short")]
    TruncatedDescriptor,
    /// The payload descriptor is all there is: no VP8 data follows.
    #[error("VP8 payload without frame data")]
    NoFrameData,
    /// The payload size is too small to carry a descriptor and a byte.
    #[error("maximum RTP payload of {0} bytes is too small for VP8")]
    PayloadSizeTooSmall(usize),
}

/// An RFC 7741 payload descriptor, as read from the front of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8PayloadDescriptor {
    /// N: the frame is not a reference for others; a receiver may discard it.
    pub non_reference: bool,
    /// S: the payload starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition the payload's first byte belongs to (0–7).
    pub partition_id: u8,
    /// PictureID, 7 or 15 bits as sent.
    pub picture_id: Option<u16>,
    /// TL0PICIDX: the running index of temporal base-layer frames.
    pub tl0_pic_idx: Option<u8>,
    /// TID and the Y (layer sync) bit, when T is set.
    pub temporal_layer: Option<(u8, bool)>,
    /// KEYIDX, when K is set.
    pub key_index: Option<u8>,
    /// The descriptor's length in bytes: the VP8 data starts here.
    pub len: usize,
}

impl Vp8PayloadDescriptor {
    /// Reads the descriptor at the front of `payload`, checking that every
    /// byte its flags promise is there and that frame data follows.
    pub fn parse(payload: &[u8]) -> Result<Self, Vp8RtpError> {
        let (&first, mut rest) = payload.split_first().ok_or(Vp8RtpError::Empty)?;
        let mut next = || -> Result<u8, Vp8RtpError> {
            let (&byte, after) = rest.split_first().ok_or(Vp8RtpError::TruncatedDescriptor)?;
            rest = after;
            Ok(byte)
        };
        let mut descriptor = Self {
            non_reference: first & 0x20 != 0,
            start_of_partition: first & 0x10 != 0,
            partition_id: first & 0x07,
            ..Self::default()
        };
        if first & 0x80 != 0 {
            let extension = next()?;
            if extension & 0x80 != 0 {
                let high = next()?;
                descriptor.picture_id = Some(if high & 0x80 != 0 {
                    u16::from(high & 0x7f) << 8 | u16::from(next()?)
                } else {
                    u16::from(high)
                });
            }
            if extension & 0x40 != 0 {
                descriptor.tl0_pic_idx = Some(next()?);
            }
            let (t, k) = (extension & 0x20 != 0, extension & 0x10 != 0);
            if t || k {
                let byte = next()?;
                if t {
                    descriptor.temporal_layer = Some((byte >> 6, byte & 0x20 != 0));
                }
                if k {
                    descriptor.key_index = Some(byte & 0x1f);
                }
            }
        }
        descriptor.len = payload.len() - rest.len();
        if rest.is_empty() {
            return Err(Vp8RtpError::NoFrameData);
        }
        Ok(descriptor)
    }

    /// Whether the payload starts a frame: the first byte of partition 0.
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_id == 0
    }
}

/// Cuts VP8 frames into RTP payloads of at most `max_payload` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Packetizer {
    max_payload: usize,
    /// The next frame's 15-bit PictureID.
    picture_id: u16,
}

impl Vp8Packetizer {
    /// `max_payload` is the MTU less IP, UDP, RTP and SRTP overheads (about
    /// 1200 keeps clear of tunnels and VPNs).
    pub fn new(max_payload: usize) -> Result<Self, Vp8RtpError> {
        if max_payload <= DESCRIPTOR_LEN {
            return Err(Vp8RtpError::PayloadSizeTooSmall(max_payload));
        }
        Ok(Self { max_payload, picture_id: 0 })
    }

    /// Packetizes one VP8 frame (what the encoder emits) into `out`, in
    /// pieces of even size. An empty frame (the encoder dropped it) gives no
    /// payloads and uses no PictureID.
    pub fn packetize(&mut self, frame: &[u8], out: &mut RtpPayloads) {
        out.clear();
        if frame.is_empty() {
            return;
        }
        let room = self.max_payload - DESCRIPTOR_LEN;
        let count = frame.len().div_ceil(room);
        // Even pieces: the first `frame.len() % count` carry one byte more.
        let (base, longer) = (frame.len() / count, frame.len() % count);
        let [high, low] = self.picture_id.to_be_bytes();
        let mut rest = frame;
        for i in 0..count {
            let (piece, after) = rest.split_at((base + usize::from(i < longer)).min(rest.len()));
            rest = after;
            // X, and S on the first piece; PID 0. I, then M and the PictureID.
            let first = if i == 0 { 0x90 } else { 0x80 };
            out.push_payload(&[first, 0x80, 0x80 | high, low], piece);
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
    }
}

/// One complete VP8 frame, ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vp8Frame {
    timestamp: u32,
    data: Vec<u8>,
    keyframe: bool,
}

impl Vp8Frame {
    /// The RTP timestamp (90 kHz) shared by the frame's packets.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The frame's bytes, descriptors removed.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// True for a keyframe: a decoder can start (or recover) here.
    pub fn is_keyframe(&self) -> bool {
        self.keyframe
    }
}

/// What the depacketizer hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vp8Assembled {
    /// A complete frame, safe to decode.
    Frame(Vp8Frame),
    /// A frame was lost or dropped and the decoder cannot go on without a
    /// keyframe: send PLI or FIR (through a `KeyframeRequestLimiter`).
    KeyframeNeeded,
}

/// RTP payloads (with their sequence number, timestamp and marker) in,
/// complete VP8 frames out. Feed it with [`Self::push`], drain it with
/// [`Self::poll`] after every push.
#[derive(Debug)]
pub struct Vp8Depacketizer {
    ring: ReorderRing,
    assembly: Assembly,
}

/// Frames built from the ring's in-order packets.
#[derive(Debug)]
struct Assembly {
    config: DepacketizerConfig,
    /// The frame being put together, if one is open.
    frame: Option<OpenFrame>,
    /// A loss was seen since the last keyframe (or none has come yet): only
    /// a complete keyframe may pass.
    waiting_for_keyframe: bool,
    ready: VecDeque<Vp8Assembled>,
    spare: Vec<Vp8Frame>,
    /// Frame and malformed-packet counts; the ring counts packets.
    stats: DepacketizerStats,
}

#[derive(Debug)]
struct OpenFrame {
    frame: Vp8Frame,
    damaged: bool,
}

impl Default for Vp8Depacketizer {
    fn default() -> Self {
        Self::new(DepacketizerConfig::default())
    }
}

impl Vp8Depacketizer {
    /// A depacketizer that waits for the first keyframe.
    pub fn new(config: DepacketizerConfig) -> Self {
        let config = config.clamped();
        Self {
            ring: ReorderRing::new(config.reorder_window),
            assembly: Assembly {
                config,
                frame: None,
                waiting_for_keyframe: true,
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
    pub fn poll(&mut self) -> Option<Vp8Assembled> {
        self.assembly.ready.pop_front()
    }

    /// Gives a decoded frame's buffer back, so the next frames reuse it.
    pub fn recycle(&mut self, frame: Vp8Frame) {
        self.assembly.recycle(frame);
    }

    /// Takes one RTP packet's VP8 payload. A malformed payload is refused
    /// before it is stored, so it counts as a lost packet of its frame.
    /// Duplicates and packets too late to place are dropped silently.
    pub fn push(&mut self, sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Result<(), Vp8RtpError> {
        if let Err(e) = Vp8PayloadDescriptor::parse(payload) {
            self.assembly.stats.malformed_packets += 1;
            return Err(e);
        }
        self.ring.push(sequence, timestamp, marker, payload, &mut self.assembly);
        Ok(())
    }
}

impl PacketSink for Assembly {
    fn packet(&mut self, timestamp: u32, marker: bool, payload: &[u8]) {
        // Checked before the ring stored it; a failure here cannot happen,
        // and would count as a damaged frame.
        let Ok(descriptor) = Vp8PayloadDescriptor::parse(payload) else {
            self.loss();
            return;
        };
        let data = payload.get(descriptor.len..).unwrap_or_default();
        let starts = descriptor.starts_frame();
        if self.frame.as_ref().is_some_and(|open| open.frame.timestamp != timestamp || starts) {
            // The sender left out the marker (nothing was lost in between),
            // or began a frame again at one timestamp: a frame we cannot
            // trust to be whole.
            let restarted = self.frame.as_ref().is_some_and(|open| open.frame.timestamp == timestamp);
            if restarted {
                if let Some(open) = self.frame.as_mut() {
                    open.damaged = true;
                }
            }
            self.finish_frame();
        }
        if self.frame.is_none() {
            let mut frame = self.spare.pop().unwrap_or_default();
            frame.data.clear();
            frame.timestamp = timestamp;
            // The frame tag's lowest bit is 0 on a keyframe (RFC 6386 §9.1).
            frame.keyframe = starts && data.first().is_some_and(|tag| tag & 1 == 0);
            // A frame whose first packet does not start partition 0 lost its head.
            self.frame = Some(OpenFrame { frame, damaged: !starts });
        }
        let Some(open) = self.frame.as_mut() else { return };
        if !open.damaged {
            open.frame.data.extend_from_slice(data);
            if open.frame.data.len() > self.config.max_frame_bytes {
                open.damaged = true;
            }
        }
        if open.damaged {
            open.frame.data.clear();
        }
        if marker {
            self.finish_frame();
        }
    }

    fn loss(&mut self) {
        if let Some(open) = self.frame.as_mut() {
            open.damaged = true;
        }
        if !self.waiting_for_keyframe {
            self.waiting_for_keyframe = true;
            self.emit(Vp8Assembled::KeyframeNeeded);
        }
    }
}

impl Assembly {
    fn recycle(&mut self, mut frame: Vp8Frame) {
        if self.spare.len() < self.config.max_ready {
            frame.data.clear();
            self.spare.push(frame);
        }
    }

    fn finish_frame(&mut self) {
        let Some(open) = self.frame.take() else { return };
        if open.damaged || (self.waiting_for_keyframe && !open.frame.keyframe) {
            self.stats.dropped_frames += 1;
            self.waiting_for_keyframe = true;
            self.recycle(open.frame);
            self.emit(Vp8Assembled::KeyframeNeeded);
        } else {
            self.waiting_for_keyframe = false;
            self.stats.frames += 1;
            self.emit(Vp8Assembled::Frame(open.frame));
        }
    }

    fn emit(&mut self, output: Vp8Assembled) {
        if self.ready.len() >= self.config.max_ready {
            if let Some(Vp8Assembled::Frame(frame)) = self.ready.pop_front() {
                // A frame the caller never took: what follows it cannot decode.
                self.stats.dropped_frames += 1;
                self.stats.frames -= 1;
                self.recycle(frame);
                self.waiting_for_keyframe = true;
            }
        }
        // One pending request says it all; do not queue a run of them.
        if output == Vp8Assembled::KeyframeNeeded && self.ready.back() == Some(&Vp8Assembled::KeyframeNeeded) {
            return;
        }
        self.ready.push_back(output);
    }
}

#[cfg(test)]
mod tests;
