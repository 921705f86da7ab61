//! Scenario tests on a virtual clock: every packet's arrival and every tick
//! is an `Instant` computed from a fixed origin, never read from the system.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const FRAME: u32 = 960;
const FRAME_MS: u64 = 20;

/// What a tick produced, owned so a test can keep a history of them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tick {
    Buffering,
    Frame(u32, Vec<u8>),
    Fec(Vec<u8>),
    Conceal,
    Silence,
}

impl From<Playout<'_>> for Tick {
    fn from(playout: Playout<'_>) -> Self {
        match playout {
            Playout::Buffering => Tick::Buffering,
            Playout::Frame { payload, timestamp } => Tick::Frame(timestamp, payload.to_vec()),
            Playout::Fec { next_payload } => Tick::Fec(next_payload.to_vec()),
            Playout::Conceal => Tick::Conceal,
            Playout::Silence => Tick::Silence,
        }
    }
}

/// A stream sent every 20 ms from `t0`, with packets delivered at chosen
/// times and the buffer ticked every 20 ms.
struct Sim {
    jb: JitterBuffer,
    t0: Instant,
    /// (arrival ms, seq, timestamp, marker, payload), in any order.
    arrivals: Vec<(u64, u16, u32, bool, Vec<u8>)>,
}

impl Sim {
    fn new() -> Self {
        Self { jb: JitterBuffer::new(JitterConfig::default()).unwrap(), t0: Instant::now(), arrivals: Vec::new() }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn send(&mut self, arrival_ms: u64, seq: u16, timestamp: u32, marker: bool, payload: Vec<u8>) {
        self.arrivals.push((arrival_ms, seq, timestamp, marker, payload));
    }

    /// Delivers everything due by each tick, then ticks, for `ticks` ticks.
    fn run(&mut self, ticks: u64) -> Vec<Tick> {
        self.arrivals.sort_by_key(|a| a.0);
        let mut pending = std::mem::take(&mut self.arrivals).into_iter().peekable();
        let mut out = Vec::new();
        for tick in 0..ticks {
            let now_ms = tick * FRAME_MS;
            while let Some((_, seq, ts, marker, payload)) = pending.next_if(|a| a.0 <= now_ms) {
                let arrival = self.at(now_ms);
                self.jb.push(arrival, seq, ts, &payload, marker);
            }
            out.push(self.jb.pop(self.at(now_ms)).into());
        }
        out
    }
}

/// The payload of frame `n`: distinct per frame, longer than comfort noise.
fn audio(n: u32) -> Vec<u8> {
    n.to_be_bytes().repeat(10)
}

/// Marsaglia's xorshift64: a seeded, dependency-free source of test noise.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn frames(ticks: &[Tick]) -> Vec<u32> {
    ticks.iter().filter_map(|t| if let Tick::Frame(ts, _) = t { Some(*ts) } else { None }).collect()
}

#[test]
fn in_order_stream_plays_every_frame_after_the_minimum_delay() {
    let mut sim = Sim::new();
    for n in 0..100 {
        sim.send(u64::from(n) * FRAME_MS, n as u16, n * FRAME, false, audio(n));
    }
    let ticks = sim.run(102);
    // 40 ms of buffering, then one frame per tick.
    assert_eq!(ticks[..2], [Tick::Buffering, Tick::Buffering]);
    for (n, tick) in ticks[2..].iter().enumerate() {
        assert_eq!(*tick, Tick::Frame(n as u32 * FRAME, audio(n as u32)), "tick {n}");
    }
    let stats = sim.jb.stats();
    assert_eq!((stats.received, stats.played, stats.concealed, stats.late), (100, 100, 0, 0));
    assert_eq!(stats.playout_delay, Duration::from_millis(40));
    assert_eq!(stats.target_delay, Duration::from_millis(40));
}

#[test]
fn reordered_packets_play_in_order() {
    let mut sim = Sim::new();
    for n in 0..60u32 {
        let swapped = n ^ 1;
        sim.send(u64::from(n) * FRAME_MS, swapped as u16, swapped * FRAME, false, audio(swapped));
    }
    let ticks = sim.run(62);
    assert_eq!(frames(&ticks), (0..60).map(|n| n * FRAME).collect::<Vec<_>>());
    let stats = sim.jb.stats();
    assert_eq!((stats.concealed, stats.late, stats.duplicate), (0, 0, 0));
}

#[test]
fn lost_frame_is_rebuilt_from_the_next_frames_fec() {
    let mut sim = Sim::new();
    for n in (0..20).filter(|&n| n != 7) {
        sim.send(u64::from(n) * FRAME_MS, n as u16, n * FRAME, false, audio(n));
    }
    let ticks = sim.run(25);
    let fec = ticks.iter().position(|t| *t == Tick::Fec(audio(8))).expect("FEC tick");
    assert_eq!(ticks[fec - 1], Tick::Frame(6 * FRAME, audio(6)));
    assert_eq!(ticks[fec + 1], Tick::Frame(8 * FRAME, audio(8)));
    assert_eq!(sim.jb.stats().fec_recovered, 1);
}

#[test]
fn random_loss_and_jitter_keep_playout_continuous() {
    let mut sim = Sim::new();
    let mut rng = XorShift(0x5eed_cafe_f00d_1234);
    let total = 1500u32;
    let mut lost = 0;
    for n in 0..total {
        let jitter = rng.below(51);
        if rng.below(10) == 0 {
            lost += 1;
            continue;
        }
        sim.send(u64::from(n) * FRAME_MS + jitter, n as u16, n * FRAME, false, audio(n));
    }
    let ticks = sim.run(u64::from(total));
    let start = ticks.iter().position(|t| *t != Tick::Buffering).unwrap();
    for (i, tick) in ticks[start..].iter().enumerate() {
        assert!(matches!(tick, Tick::Frame(..) | Tick::Fec(_) | Tick::Conceal), "tick {i}: {tick:?}");
    }
    let played = frames(&ticks);
    assert!(played.windows(2).all(|w| w[0] < w[1]), "frames play in timestamp order");
    let stats = sim.jb.stats();
    let repaired = stats.concealed + stats.fec_recovered;
    assert!(repaired >= lost && repaired < lost + lost / 2, "{repaired} repairs for {lost} lost: {stats:?}");
    assert!(stats.late < u64::from(total) / 100, "{stats:?}");
    assert!(stats.target_delay >= Duration::from_millis(60), "{stats:?}");
}

#[test]
fn jitter_spike_raises_the_target_which_then_decays() {
    let mut sim = Sim::new();
    for n in 0..1600u32 {
        // Ten packets stuck 150 ms behind a congested link, then back to normal.
        let delay = if (100..110).contains(&n) { 150 } else { 0 };
        sim.send(u64::from(n) * FRAME_MS + delay, n as u16, n * FRAME, false, audio(n));
    }
    let mut sim_ticks = Vec::new();
    sim.arrivals.sort_by_key(|a| a.0);
    let arrivals = std::mem::take(&mut sim.arrivals);
    let mut pending = arrivals.into_iter().peekable();
    let mut peak_target = Duration::ZERO;
    let mut peak_delay = Duration::ZERO;
    for tick in 0..1600u64 {
        let now = sim.at(tick * FRAME_MS);
        while let Some((_, seq, ts, marker, payload)) = pending.next_if(|a| a.0 <= tick * FRAME_MS) {
            sim.jb.push(now, seq, ts, &payload, marker);
        }
        sim_ticks.push(Tick::from(sim.jb.pop(now)));
        let stats = sim.jb.stats();
        peak_target = peak_target.max(stats.target_delay);
        peak_delay = peak_delay.max(stats.playout_delay);
    }
    assert!(peak_target >= Duration::from_millis(150), "target peaked at {peak_target:?}");
    assert!(peak_delay >= Duration::from_millis(150), "delay peaked at {peak_delay:?}");
    let stats = sim.jb.stats();
    assert!(stats.target_delay <= Duration::from_millis(50), "{stats:?}");
    assert!(stats.playout_delay <= Duration::from_millis(60), "{stats:?}");
    assert!(stats.skipped > 0, "{stats:?}");
}

#[test]
fn jitter_beyond_the_bound_is_capped_not_chased() {
    let mut sim = Sim::new();
    let mut rng = XorShift(42);
    for n in 0..1000u32 {
        sim.send(u64::from(n) * FRAME_MS + rng.below(400), n as u16, n * FRAME, false, audio(n));
    }
    sim.arrivals.sort_by_key(|a| a.0);
    let mut pending = std::mem::take(&mut sim.arrivals).into_iter().peekable();
    let mut played = 0;
    for tick in 0..1000u64 {
        let now = sim.at(tick * FRAME_MS);
        while let Some((_, seq, ts, marker, payload)) = pending.next_if(|a| a.0 <= tick * FRAME_MS) {
            sim.jb.push(now, seq, ts, &payload, marker);
        }
        played += u32::from(matches!(sim.jb.pop(now), Playout::Frame { .. }));
        let stats = sim.jb.stats();
        assert!(stats.target_delay <= Duration::from_millis(180), "{stats:?}");
        assert!(stats.depth <= Duration::from_millis(200), "{stats:?}");
    }
    // Half the packets come too late for any 200 ms buffer; the rest play.
    assert!(played > 300, "{played} frames played: {:?}", sim.jb.stats());
}

#[test]
fn timestamp_restart_without_new_ssrc_resynchronises() {
    let mut sim = Sim::new();
    for n in 0..50u32 {
        let ts = if n < 25 { n * FRAME } else { 3_000_000_000 + n * FRAME };
        sim.send(u64::from(n) * FRAME_MS, n as u16, ts, false, audio(n));
    }
    let ticks = sim.run(52);
    let played = frames(&ticks);
    assert_eq!(played.len(), 48, "{ticks:?}");
    assert_eq!(played[23..], (25..50).map(|n| 3_000_000_000 + n * FRAME).collect::<Vec<_>>()[..]);
    assert_eq!(sim.jb.stats().late, 0);
}

#[test]
fn flood_without_playout_stays_bounded() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let t0 = Instant::now();
    for n in 0..10_000u32 {
        jb.push(t0 + Duration::from_micros(u64::from(n)), n as u16, n.wrapping_mul(FRAME), &audio(n), false);
        let stats = jb.stats();
        assert!(stats.buffered_frames <= jb.capacity());
        assert!(stats.depth <= Duration::from_millis(200));
    }
    let stats = jb.stats();
    assert_eq!(jb.capacity(), 10);
    assert_eq!(stats.overflow, 10_000 - 10);
    // The newest frames survive, in order.
    let mut played = Vec::new();
    for tick in 0..12u64 {
        if let Playout::Frame { timestamp, .. } = jb.pop(t0 + Duration::from_secs(1) + Duration::from_millis(tick * 20))
        {
            played.push(timestamp);
        }
    }
    assert_eq!(played, (9_990..10_000).map(|n: u32| n.wrapping_mul(FRAME)).collect::<Vec<_>>());
}

/// A talkspurt, `gap` frames of DTX (sequence numbers stay contiguous, the
/// timestamp jumps), another talkspurt opened with the marker bit.
fn dtx_stream(sim: &mut Sim, comfort_noise: bool) {
    let mut seq = 0u16;
    for n in 0..50u32 {
        sim.send(u64::from(n) * FRAME_MS, seq, n * FRAME, n == 0, audio(n));
        seq += 1;
    }
    if comfort_noise {
        for n in (70..150u32).step_by(20) {
            sim.send(u64::from(n) * FRAME_MS, seq, n * FRAME, false, vec![0xf8]);
            seq += 1;
        }
    }
    for n in 150..200u32 {
        sim.send(u64::from(n) * FRAME_MS, seq, n * FRAME, n == 150, audio(n));
        seq += 1;
    }
}

#[test]
fn dtx_gap_is_silence_after_a_short_tail() {
    let mut sim = Sim::new();
    dtx_stream(&mut sim, false);
    let ticks = sim.run(202);
    let stats = sim.jb.stats();
    assert_eq!(stats.concealed, 3, "only the tail is concealed: {stats:?}");
    assert_eq!((stats.played, stats.late, stats.fec_recovered), (100, 0, 0));
    let last = ticks.iter().rposition(|t| *t == Tick::Frame(49 * FRAME, audio(49))).unwrap();
    let resume = ticks.iter().position(|t| *t == Tick::Frame(150 * FRAME, audio(150))).unwrap();
    assert_eq!(ticks[last + 1..last + 4], [Tick::Conceal, Tick::Conceal, Tick::Conceal]);
    assert!(ticks[last + 4..resume].iter().all(|t| *t == Tick::Silence));
    assert_eq!(resume - last, 101, "the delay is the same after the gap");
}

#[test]
fn comfort_noise_plays_as_silence_without_concealment() {
    let mut sim = Sim::new();
    dtx_stream(&mut sim, true);
    let ticks = sim.run(202);
    let stats = sim.jb.stats();
    assert!(stats.concealed <= 3, "{stats:?}");
    assert_eq!((stats.played, stats.late), (100, 0));
    assert!(!ticks.iter().any(|t| matches!(t, Tick::Frame(_, p) if p.len() == 1)));
}

#[test]
fn sequence_and_timestamp_wrap_are_just_the_next_frame() {
    let mut sim = Sim::new();
    let ts0 = u32::MAX - 10 * FRAME + 5;
    for n in 0..100u32 {
        let ts = ts0.wrapping_add(n * FRAME);
        sim.send(u64::from(n) * FRAME_MS, 65_500u16.wrapping_add(n as u16), ts, false, audio(n));
    }
    let ticks = sim.run(102);
    assert_eq!(frames(&ticks), (0..100).map(|n| ts0.wrapping_add(n * FRAME)).collect::<Vec<_>>());
    assert_eq!(sim.jb.stats().concealed, 0);
}

#[test]
fn duplicates_and_late_packets_are_dropped_and_counted() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    assert_eq!(jb.push(at(0), 1, 0, &audio(0), false), PushOutcome::Stored);
    assert_eq!(jb.push(at(1), 1, 0, &audio(0), false), PushOutcome::Duplicate);
    assert_eq!(jb.push(at(20), 2, FRAME, &audio(1), false), PushOutcome::Stored);
    assert_eq!(jb.pop(at(40)), Playout::Frame { payload: &audio(0), timestamp: 0 });
    assert_eq!(jb.push(at(41), 1, 0, &audio(0), false), PushOutcome::Late);
    assert_eq!(jb.push(at(42), 9, 0, &[0; 1501], false), PushOutcome::TooLarge);
    let stats = jb.stats();
    assert_eq!((stats.received, stats.duplicate, stats.late, stats.oversized), (5, 1, 1, 1));
}

#[test]
fn reset_starts_a_new_stream() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    jb.push(at(0), 100, 5_000, &audio(0), false);
    assert!(matches!(jb.pop(at(40)), Playout::Frame { .. }));
    jb.reset();
    assert_eq!(jb.pop(at(60)), Playout::Buffering);
    jb.push(at(60), 7, 1_000_000, &audio(1), true);
    assert_eq!(jb.pop(at(80)), Playout::Buffering);
    assert_eq!(jb.pop(at(100)), Playout::Frame { payload: &audio(1), timestamp: 1_000_000 });
    assert_eq!(jb.stats().played, 2);
}

#[test]
fn bad_configs_are_refused() {
    let bad_frame = JitterConfig { frame_duration: Duration::from_micros(1), ..JitterConfig::default() };
    assert!(matches!(JitterBuffer::new(bad_frame), Err(JitterConfigError::BadFrameDuration(_))));
    let inverted = JitterConfig { min_delay: Duration::from_millis(300), ..JitterConfig::default() };
    assert!(matches!(JitterBuffer::new(inverted), Err(JitterConfigError::BadDelayBounds { .. })));
    let ten_ms = JitterConfig { frame_duration: Duration::from_millis(10), ..JitterConfig::default() };
    assert_eq!(JitterBuffer::new(ten_ms).unwrap().capacity(), 20);
}

#[derive(Debug, Clone)]
enum Op {
    Push { advance_ms: u8, seq_step: i8, frame_step: i8, jitter_ts: u16, len: u8, marker: bool },
    Pop { advance_ms: u8 },
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), -3i8..6, -3i8..8, any::<u16>(), 0u8..40, any::<bool>()).prop_map(
            |(advance_ms, seq_step, frame_step, jitter_ts, len, marker)| Op::Push {
                advance_ms, seq_step, frame_step, jitter_ts, len, marker
            }
        ),
        6 => any::<u8>().prop_map(|advance_ms| Op::Pop { advance_ms }),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    #[test]
    fn arbitrary_push_pop_sequences_keep_the_bounds(
        ops in proptest::collection::vec(op(), 1..400),
        frame_ms in prop_oneof![Just(10u64), Just(20), Just(40), Just(60)],
    ) {
        let config = JitterConfig { frame_duration: Duration::from_millis(frame_ms), ..JitterConfig::default() };
        let mut jb = JitterBuffer::new(config.clone()).unwrap();
        let mut now = Instant::now();
        let (mut seq, mut ts) = (0u16, 0u32);
        let mut pushes = 0;
        for op in ops {
            match op {
                Op::Push { advance_ms, seq_step, frame_step, jitter_ts, len, marker } => {
                    now += Duration::from_millis(u64::from(advance_ms % 50));
                    seq = seq.wrapping_add(seq_step as u16);
                    let units = 48 * frame_ms as u32;
                    ts = ts.wrapping_add((i32::from(frame_step) * units as i32) as u32);
                    let sent_ts = if jitter_ts % 16 == 0 { u32::from(jitter_ts) << 16 } else { ts };
                    jb.push(now, seq, sent_ts, &vec![0x55; usize::from(len)], marker);
                    pushes += 1;
                }
                Op::Pop { advance_ms } => {
                    now += Duration::from_millis(u64::from(advance_ms % 60));
                    if let Playout::Fec { next_payload } | Playout::Frame { payload: next_payload, .. } = jb.pop(now) {
                        prop_assert!(next_payload.len() < 40);
                    }
                }
                Op::Reset => jb.reset(),
            }
            let stats = jb.stats();
            prop_assert!(stats.buffered_frames <= jb.capacity());
            prop_assert!(stats.depth <= config.max_delay + config.frame_duration);
            prop_assert!(stats.target_delay <= config.max_delay);
            prop_assert_eq!(stats.received, pushes);
        }
    }
}
