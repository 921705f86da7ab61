//! [`JitterBuffer`]: the ring of frames and the per-tick playout decision.
//!
//! Frames live in a fixed ring of `max_delay / frame_duration` slots indexed
//! by frame number (RTP timestamp over frame length, counted from the first
//! packet), each slot keeping its `Vec<u8>` from one packet to the next, so
//! a steady stream allocates nothing after its first few packets.
//!
//! The delay is controlled through one number, the *playout delay*: how long
//! the least delayed packets wait in the buffer. Every arriving packet
//! measures it exactly (its frame's scheduled tick minus its arrival, plus its
//! own excess delay over the fastest), and every tick compares it with the
//! target from [`DelayEstimator`]:
//! - below target, the tick *holds*: it plays concealment (or silence) and
//!   leaves the cursor where it is, adding one frame of delay. A spike is met
//!   within a few ticks, which is what "grows quickly" means.
//! - a frame or more above target, silence is compressed for free (two
//!   silent frames per tick); during speech one frame is skipped once the
//!   excess has lasted [`SHRINK_AFTER_TICKS`], so the delay comes down slowly
//!   and audibly only rarely.

use std::time::{Duration, Instant};

use super::delay::DelayEstimator;
use super::{JitterConfig, JitterConfigError, JitterStats, Playout, PushOutcome};

/// Ticks the delay must stay a frame above target before speech loses a frame.
const SHRINK_AFTER_TICKS: u32 = 50;
/// A timestamp this far off the arrival clock is not jitter but a sender that
/// restarted its timestamps without changing SSRC: start over.
const RESYNC_AFTER_US: i64 = 5_000_000;
/// The longest frame any of our codecs packs: Opus goes up to 120 ms.
const MAX_FRAME: Duration = Duration::from_millis(120);

/// One stored frame. `occupied` clears when it plays, but the payload's
/// allocation stays for the next packet that lands here.
#[derive(Debug, Clone, Default)]
struct Slot {
    occupied: bool,
    index: i64,
    seq: i64,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// Unwraps 16-bit sequence numbers and 32-bit timestamps against the highest
/// seen, so a wrap is just the next number.
#[derive(Debug, Clone)]
struct StreamClock {
    epoch: Instant,
    anchor_ts: i64,
    high_seq: u16,
    high_ext_seq: i64,
    high_ts: u32,
    high_ext_ts: i64,
}

impl StreamClock {
    fn new(epoch: Instant, seq: u16, timestamp: u32) -> Self {
        let ts = i64::from(timestamp);
        Self { epoch, anchor_ts: ts, high_seq: seq, high_ext_seq: i64::from(seq), high_ts: timestamp, high_ext_ts: ts }
    }

    fn extend(&mut self, seq: u16, timestamp: u32) -> (i64, i64) {
        let seq_delta = i64::from(seq.wrapping_sub(self.high_seq) as i16);
        let ext_seq = self.high_ext_seq + seq_delta;
        if seq_delta > 0 {
            (self.high_seq, self.high_ext_seq) = (seq, ext_seq);
        }
        let ts_delta = i64::from(timestamp.wrapping_sub(self.high_ts) as i32);
        let ext_ts = self.high_ext_ts + ts_delta;
        if ts_delta > 0 {
            (self.high_ts, self.high_ext_ts) = (timestamp, ext_ts);
        }
        (ext_seq, ext_ts)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing since creation or reset.
    Empty,
    /// Frames are stored; playout starts once the first has waited the target.
    Buffering { first_arrival: Instant, first_index: i64 },
    /// The cursor moves (or holds) once per tick.
    Playing,
}

/// An adaptive, bounded jitter buffer for one audio stream (one SSRC).
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    frame_units: i64,
    frame_us: i64,
    slots: Vec<Slot>,
    state: State,
    stream: Option<StreamClock>,
    estimator: DelayEstimator,
    /// Frame index of the next tick.
    cursor: i64,
    /// Highest frame index stored since the last reset.
    newest: i64,
    buffered: usize,
    /// Extended sequence number of the last frame played.
    last_seq: Option<i64>,
    /// Ticks the cursor moved through missing frames since the last frame.
    advanced_since_frame: i64,
    /// Ticks with nothing stored at or after the cursor since the last frame.
    starved_ticks: u32,
    over_target_ticks: u32,
    last_pop: Option<Instant>,
    /// µs the least delayed packets wait; `None` until a packet measures it.
    playout_delay: Option<i64>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for one stream, or why `config` cannot work.
    pub fn new(config: JitterConfig) -> Result<Self, JitterConfigError> {
        let frame = config.frame_duration;
        let frame_units = u128::from(config.clock_rate) * frame.as_nanos() / 1_000_000_000;
        if frame_units == 0 || frame > MAX_FRAME {
            return Err(JitterConfigError::BadFrameDuration(frame));
        }
        if config.min_delay > config.max_delay || config.max_delay < frame {
            return Err(JitterConfigError::BadDelayBounds { min: config.min_delay, max: config.max_delay });
        }
        let capacity = config.max_delay.as_nanos().div_ceil(frame.as_nanos()) as usize;
        Ok(Self {
            frame_units: frame_units as i64,
            frame_us: frame.as_micros() as i64,
            slots: vec![Slot::default(); capacity],
            state: State::Empty,
            stream: None,
            estimator: DelayEstimator::new(),
            cursor: 0,
            newest: 0,
            buffered: 0,
            last_seq: None,
            advanced_since_frame: 0,
            starved_ticks: 0,
            over_target_ticks: 0,
            last_pop: None,
            playout_delay: None,
            stats: JitterStats::default(),
            config,
        })
    }

    /// The most frames the buffer ever holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Forgets the stream (for a new SSRC, or a sender that restarted) and
    /// goes back to buffering. Statistics counters are kept.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            slot.occupied = false;
        }
        self.buffered = 0;
        self.state = State::Empty;
        self.stream = None;
        self.estimator = DelayEstimator::new();
        self.last_seq = None;
        self.advanced_since_frame = 0;
        self.starved_ticks = 0;
        self.over_target_ticks = 0;
        self.last_pop = None;
        self.playout_delay = None;
    }

    /// The counters, and the gauges as of now.
    pub fn stats(&self) -> JitterStats {
        let depth_frames = if self.buffered == 0 { 0 } else { (self.newest - self.cursor + 1).max(0) };
        JitterStats {
            target_delay: Duration::from_micros(self.target_us() as u64),
            playout_delay: Duration::from_micros(self.playout_delay.unwrap_or(0).max(0) as u64),
            depth: self.config.frame_duration * depth_frames as u32,
            buffered_frames: self.buffered,
            ..self.stats
        }
    }

    /// The delay to aim for: the estimated excess delay plus a frame, kept
    /// between `min_delay` and a frame under `max_delay`. That last frame is
    /// the phase between an arrival and the next tick; without it a full
    /// buffer could measure itself below target and hold for ever.
    fn target_us(&self) -> i64 {
        let max = self.config.max_delay.as_micros() as i64;
        let ceiling = (max - self.frame_us).max(self.frame_us).min(max);
        let floor = (self.config.min_delay.as_micros() as i64).max(self.frame_us).min(ceiling);
        self.estimator.peak().saturating_add(self.frame_us).clamp(floor, ceiling)
    }

    /// Offers a received packet that arrived at `now`.
    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, payload: &[u8], marker: bool) -> PushOutcome {
        self.stats.received += 1;
        if payload.len() > self.config.max_payload_len {
            self.stats.oversized += 1;
            return PushOutcome::TooLarge;
        }
        let (mut ext_seq, mut index, mut relative_delay) = self.locate(now, seq, timestamp);
        if self.estimator.floor().is_some_and(|floor| relative_delay.abs_diff(floor) > RESYNC_AFTER_US as u64) {
            self.reset();
            (ext_seq, index, relative_delay) = self.locate(now, seq, timestamp);
        }
        let capacity = self.slots.len() as i64;
        match self.state {
            State::Empty => {
                self.state = State::Buffering { first_arrival: now, first_index: index };
                (self.cursor, self.newest) = (index, index);
            }
            State::Buffering { .. } if index < self.cursor => {
                if self.newest - index >= capacity {
                    self.estimator.observe(relative_delay);
                    self.stats.late += 1;
                    return PushOutcome::Late;
                }
                self.cursor = index;
            }
            State::Buffering { .. } => {}
            State::Playing if index < self.cursor => {
                let excess = self.estimator.observe(relative_delay);
                self.measure_playout_delay(now, index, excess);
                self.stats.late += 1;
                return PushOutcome::Late;
            }
            State::Playing => {}
        }
        let at = self.slot_of(index);
        if self.slots[at].occupied && self.slots[at].index == index {
            self.stats.duplicate += 1;
            return PushOutcome::Duplicate;
        }
        let excess = self.estimator.observe(relative_delay);
        if index >= self.cursor + capacity {
            self.evict_below(index - capacity + 1);
        }
        self.newest = self.newest.max(index);
        let slot = &mut self.slots[at];
        slot.occupied = true;
        (slot.index, slot.seq, slot.timestamp, slot.marker) = (index, ext_seq, timestamp, marker);
        slot.payload.clear();
        slot.payload.extend_from_slice(payload);
        self.buffered += 1;
        if self.state == State::Playing {
            self.measure_playout_delay(now, index, excess);
        }
        PushOutcome::Stored
    }

    /// Extended sequence number, frame index and relative delay (µs) of a
    /// packet, starting the stream clock on the first one.
    fn locate(&mut self, now: Instant, seq: u16, timestamp: u32) -> (i64, i64, i64) {
        let stream = self.stream.get_or_insert_with(|| StreamClock::new(now, seq, timestamp));
        let (ext_seq, ext_ts) = stream.extend(seq, timestamp);
        let media_ts = ext_ts - stream.anchor_ts;
        let index = (media_ts + self.frame_units / 2).div_euclid(self.frame_units);
        let media_us = i128::from(media_ts) * 1_000_000 / i128::from(self.config.clock_rate);
        let arrival_us = i128::try_from(now.saturating_duration_since(stream.epoch).as_micros()).unwrap_or(i128::MAX);
        let relative = (arrival_us - media_us).clamp(i128::from(i64::MIN / 2), i128::from(i64::MAX / 2));
        (ext_seq, index, relative as i64)
    }

    /// The frame at `index` plays at the tick after the last pop plus one
    /// frame per index ahead of the cursor; the wait until then plus the
    /// packet's excess delay is the same for every packet of the schedule.
    fn measure_playout_delay(&mut self, now: Instant, index: i64, excess: i64) {
        let Some(last_pop) = self.last_pop else { return };
        let next_tick = last_pop + self.config.frame_duration;
        let until_tick = match next_tick.checked_duration_since(now) {
            Some(ahead) => ahead.as_micros() as i64,
            None => -(now.saturating_duration_since(next_tick).as_micros().min(i64::MAX as u128) as i64),
        };
        let ahead = index.saturating_sub(self.cursor).saturating_mul(self.frame_us);
        self.playout_delay = Some(ahead.saturating_add(until_tick).saturating_add(excess));
    }

    fn slot_of(&self, index: i64) -> usize {
        index.rem_euclid(self.slots.len() as i64) as usize
    }

    /// Drops every stored frame below `new_cursor` and moves the cursor
    /// there: the hard bound at work.
    fn evict_below(&mut self, new_cursor: i64) {
        let capacity = self.slots.len() as i64;
        // Stored frames all lie within one capacity of the cursor.
        for index in self.cursor..new_cursor.min(self.cursor + capacity) {
            let at = self.slot_of(index);
            if self.slots[at].occupied && self.slots[at].index == index {
                self.slots[at].occupied = false;
                self.buffered -= 1;
                self.stats.overflow += 1;
            }
        }
        self.cursor = new_cursor;
    }

    /// The stored slot for frame `index`, if any.
    fn stored(&self, index: i64) -> Option<usize> {
        let at = self.slot_of(index);
        (self.slots[at].occupied && self.slots[at].index == index).then_some(at)
    }

    /// The first stored frame after the cursor: its index and slot.
    fn next_stored(&self) -> Option<(i64, usize)> {
        if self.buffered == 0 {
            return None;
        }
        (self.cursor + 1..=self.newest).find_map(|index| self.stored(index).map(|at| (index, at)))
    }

    /// What to do for the tick at `now`. Call once per frame duration.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        match self.state {
            State::Empty => return Playout::Buffering,
            State::Buffering { first_arrival, first_index } => {
                let Some(first) = (self.cursor..=self.newest).find(|&index| self.stored(index).is_some()) else {
                    return Playout::Buffering;
                };
                // The first packet to arrive should wait the target; frames
                // that came later but play before it shorten its wait.
                let earlier = first_index.saturating_sub(first).max(0).saturating_mul(self.frame_us);
                let wait = self.target_us().saturating_sub(earlier).max(0) as u128;
                let waited = now.saturating_duration_since(first_arrival).as_micros();
                if waited < wait && self.buffered < self.slots.len() {
                    return Playout::Buffering;
                }
                self.cursor = first;
                self.state = State::Playing;
            }
            State::Playing => {}
        }
        self.last_pop = Some(now);
        let target = self.target_us();
        let deficit = self.playout_delay.is_some_and(|delay| delay < target);
        let excess = self.playout_delay.is_some_and(|delay| delay >= target + self.frame_us);
        self.over_target_ticks = if excess { self.over_target_ticks + 1 } else { 0 };

        if let Some(at) = self.stored(self.cursor) {
            return self.play_stored(at, deficit);
        }
        if let Some((next, at)) = self.next_stored() {
            let slot = &self.slots[at];
            let missing_packets = match self.last_seq {
                Some(last) if !slot.marker => (slot.seq - last - 1).max(0),
                _ => 0,
            };
            if self.advanced_since_frame < missing_packets {
                return self.conceal_loss(next, at, deficit);
            }
            self.starved_ticks = 0;
            return self.silence(deficit, excess, Some(next));
        }
        self.starved_ticks += 1;
        if self.starved_ticks <= self.config.conceal_tail {
            if !self.hold(deficit) {
                self.cursor += 1;
                self.advanced_since_frame += 1;
            }
            self.stats.concealed += 1;
            return Playout::Conceal;
        }
        self.silence(deficit, excess, None)
    }

    /// Adds one frame of delay if `deficit` and the bound leaves room; says
    /// whether it did.
    fn hold(&mut self, deficit: bool) -> bool {
        let full = self.buffered > 0 && self.newest - self.cursor + 1 >= self.slots.len() as i64;
        if !deficit || full {
            return false;
        }
        self.playout_delay = self.playout_delay.map(|delay| delay + self.frame_us);
        true
    }

    fn play_stored(&mut self, at: usize, deficit: bool) -> Playout<'_> {
        let silent = self.slots[at].payload.len() <= self.config.silence_payload_len;
        if self.hold(deficit) {
            return if silent { self.count_silence() } else { self.count_conceal() };
        }
        let mut at = at;
        if !silent && self.over_target_ticks >= SHRINK_AFTER_TICKS {
            if let Some(next) = self.stored(self.cursor + 1) {
                self.slots[at].occupied = false;
                self.buffered -= 1;
                self.stats.skipped += 1;
                self.cursor += 1;
                self.over_target_ticks = 0;
                self.playout_delay = self.playout_delay.map(|delay| delay - self.frame_us);
                at = next;
            }
        }
        let silent = self.slots[at].payload.len() <= self.config.silence_payload_len;
        self.slots[at].occupied = false;
        self.buffered -= 1;
        self.cursor += 1;
        self.last_seq = Some(self.slots[at].seq);
        self.advanced_since_frame = 0;
        if silent {
            // Comfort noise says the sender is in DTX: a pause after it is
            // silence from the start, with no concealment tail.
            self.starved_ticks = self.config.conceal_tail;
            return self.count_silence();
        }
        self.starved_ticks = 0;
        self.stats.played += 1;
        let slot = &self.slots[at];
        Playout::Frame { payload: &slot.payload, timestamp: slot.timestamp }
    }

    /// The cursor's frame is known lost: a later packet shows the gap in
    /// sequence numbers.
    fn conceal_loss(&mut self, next: i64, at: usize, deficit: bool) -> Playout<'_> {
        self.starved_ticks = 0;
        if self.hold(deficit) {
            return self.count_conceal();
        }
        self.cursor += 1;
        self.advanced_since_frame += 1;
        if next == self.cursor {
            self.stats.fec_recovered += 1;
            return Playout::Fec { next_payload: &self.slots[at].payload };
        }
        self.count_conceal()
    }

    /// A silent tick; compresses silence by a frame when the delay is above
    /// target, never past the next stored frame `limit`.
    fn silence(&mut self, deficit: bool, excess: bool, limit: Option<i64>) -> Playout<'_> {
        if !self.hold(deficit) {
            let mut step = 1;
            if excess && limit.is_none_or(|next| self.cursor + 2 <= next) {
                step = 2;
                self.playout_delay = self.playout_delay.map(|delay| delay - self.frame_us);
            }
            self.cursor += step;
            self.advanced_since_frame += step;
        }
        self.count_silence()
    }

    fn count_conceal(&mut self) -> Playout<'static> {
        self.stats.concealed += 1;
        Playout::Conceal
    }

    fn count_silence(&mut self) -> Playout<'static> {
        self.stats.silent += 1;
        Playout::Silence
    }
}
