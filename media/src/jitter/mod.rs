//! The audio jitter buffer: encoded frames in, one playout decision per tick.
//!
//! Packets arrive early, late, out of order, twice or not at all; the mixer
//! wants exactly one frame of audio from every leg every 20 ms. Between the
//! two sits [`JitterBuffer`]. It is sans-IO like the rest of the crate: the
//! caller hands over the arrival time with each packet and the tick time with
//! each [`JitterBuffer::pop`], so tests run on a virtual clock.
//!
//! It stores *encoded* frames and knows nothing of the codec. What it returns
//! is an instruction ([`Playout`]): decode this frame, decode the next frame's
//! in-band FEC, run the codec's loss concealment, or do nothing because the
//! sender is silent. The last one matters most for cost: the mixer skips the
//! decode of every silent leg, and in a large meeting most legs are silent.
//!
//! Frames are placed by RTP timestamp, not sequence number, because Opus DTX
//! keeps sequence numbers contiguous across a silence while the timestamp
//! jumps. Sequence numbers tell loss (a gap in them) from silence (none).

mod buffer;
mod delay;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use buffer::JitterBuffer;

/// How a [`JitterBuffer`] is sized and paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the stream; 48 kHz for Opus.
    pub clock_rate: u32,
    /// Audio carried by one packet and played by one tick: 10, 20, 40 or
    /// 60 ms. Every packet is assumed to carry exactly this much.
    pub frame_duration: Duration,
    /// The smallest target delay, however calm the network looks: one
    /// outlier below it would already be a concealed frame.
    pub min_delay: Duration,
    /// The hard bound on delay and on stored frames. Packets that would
    /// stretch the buffer past it push the oldest frames out.
    pub max_delay: Duration,
    /// Frames concealed when packets stop without a visible loss, before the
    /// buffer calls it silence. Long enough to bridge a short burst of loss,
    /// short enough that a DTX pause costs no more than a few decodes.
    pub conceal_tail: u32,
    /// Payloads of at most this many bytes are comfort noise (Opus DTX sends
    /// 1 to 3 bytes every 400 ms) and play as [`Playout::Silence`]. 0 turns
    /// this off; no real 20 ms audio frame of any codec is this small.
    pub silence_payload_len: usize,
    /// Larger payloads are refused, which bounds the memory a leg can pin.
    pub max_payload_len: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            clock_rate: 48_000,
            frame_duration: Duration::from_millis(20),
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(200),
            conceal_tail: 3,
            silence_payload_len: 3,
            max_payload_len: 1500,
        }
    }
}

/// Why a [`JitterConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterConfigError {
    /// A frame must span at least one RTP timestamp unit and at most 120 ms,
    /// the longest Opus packet.
    #[error("frame of {0:?} at the given clock rate is not a usable packet time")]
    BadFrameDuration(Duration),
    /// `min_delay` exceeds `max_delay`, or `max_delay` is under one frame.
    #[error("delay bounds {min:?}..{max:?} are inconsistent with the frame duration")]
    BadDelayBounds {
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
}

/// What to do for one tick of audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Playout has not started: the first packets are still building up the
    /// target delay (or none has arrived since a reset). Nothing to decode.
    Buffering,
    /// Decode this frame.
    Frame {
        /// The encoded frame.
        payload: &'a [u8],
        /// Its RTP timestamp.
        timestamp: u32,
    },
    /// This tick's frame is lost but the next one is here: decode the next
    /// frame's in-band FEC (Opus `decode_fec = 1`) to rebuild this one.
    Fec {
        /// The encoded frame after the lost one; it still plays normally on
        /// the next tick.
        next_payload: &'a [u8],
    },
    /// This tick's frame is lost (or late) and nothing can rebuild it: run
    /// the codec's packet loss concealment.
    Conceal,
    /// The sender is silent (DTX, comfort noise, or the stream stopped):
    /// no decode is needed at all.
    Silence,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored for playout.
    Stored,
    /// The same frame is already stored; dropped.
    Duplicate,
    /// Its tick has already played; dropped. Its delay still teaches the
    /// target estimate that the buffer was too shallow.
    Late,
    /// The payload is larger than `max_payload_len`; dropped.
    TooLarge,
}

/// Counters and gauges of one buffer, for the leg's live statistics.
/// Counters survive [`JitterBuffer::reset`]: they describe the leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed, whatever became of them.
    pub received: u64,
    /// Packets that arrived after their tick played.
    pub late: u64,
    /// Packets whose frame was already stored.
    pub duplicate: u64,
    /// Stored frames pushed out to keep the hard bound.
    pub overflow: u64,
    /// Packets refused for their size.
    pub oversized: u64,
    /// Frames dropped on purpose to shrink the delay towards its target.
    pub skipped: u64,
    /// Ticks that played a frame.
    pub played: u64,
    /// Ticks that ran packet loss concealment.
    pub concealed: u64,
    /// Ticks that decoded the next frame's FEC.
    pub fec_recovered: u64,
    /// Ticks of silence after playout started.
    pub silent: u64,
    /// The delay the buffer currently aims for.
    pub target_delay: Duration,
    /// The delay the buffer currently gives the least delayed packets.
    pub playout_delay: Duration,
    /// Audio between the next tick and the newest stored frame.
    pub depth: Duration,
    /// Frames stored now.
    pub buffered_frames: usize,
}
