//! One conference tick on the bridge: decode the inputs the mixer needs, mix,
//! encode (Opus, 48 kHz mono, 20 ms, complexity 5, 32 kbit/s, in-band FEC).
//! Packetization and SRTP are not included (see `benches/srtp.rs`); neither
//! is the endpoints' own encoding, which is done before timing.
//!
//! Throughput is reported in participants (criterion's elements/s counts
//! participant-ticks per second), so participants per core =
//! elements/s × 0.020 s. Janus AudioBridge encodes once per participant,
//! about 1.4 % of a core each: ≈ 71 participants per core.
//!
//! Scenarios:
//! - `conversation_5`: 5 parties taking turns of 1 s, each next one starting
//!   200 ms before the previous stops (one or two talk at once); silent legs
//!   are marked silent (RFC 6464 level 127 / DTX) and never decoded.
//! - `large_200_3_talking`: 200 parties, 3 talking all the time.
//! - `all_talking_5`: 5 parties all talking (top-3 mixed; all 5 decoded).
//!
//! The figures, with the machine's load when they were taken, are in the
//! README's performance table.
//!
//! Reproduce with:
//!
//! ```text
//! cargo bench --bench mixer -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use confero_media::codec::{AudioDecoder, AudioEncoder, AudioFormat, OpusConfig, OpusDecoder, OpusEncoder};
use confero_media::mixer::{FrameInput, Mixer, MixerConfig, ParticipantId, ParticipantSettings, TickStats};
use confero_media::rtp::AudioLevel;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const FRAME: usize = 960;
/// Ticks in one cycle of a scenario's script (5 s).
const CYCLE: usize = 250;

/// Something voice-like enough to keep Opus honest: two partials with a
/// slow vibrato and a little noise, different per talker.
fn voice(talker: usize, tick: usize) -> Vec<i16> {
    let f0 = 110.0 + 23.0 * talker as f64;
    let mut noise = (talker as u32 + 1).wrapping_mul(2_654_435_761) ^ tick as u32;
    (0..FRAME)
        .map(|i| {
            let t = (tick * FRAME + i) as f64 / 48_000.0;
            let vibrato = 1.0 + 0.02 * (2.0 * std::f64::consts::PI * 5.0 * t).sin();
            let phase = 2.0 * std::f64::consts::PI * f0 * vibrato * t;
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let n = f64::from(noise as i32) / f64::from(i32::MAX);
            (5000.0 * phase.sin() + 2500.0 * (3.0 * phase).sin() + 300.0 * n) as i16
        })
        .collect()
}

/// What one participant sends in one tick: an Opus packet and its level, or
/// nothing (silence: DTX, or a level the mixer ignores).
struct Sent {
    packet: Vec<u8>,
    level: AudioLevel,
}

struct Conference {
    mixer: Mixer,
    /// Per participant: the bridge's decoder and the script of what it sends.
    legs: Vec<(ParticipantId, OpusDecoder, Vec<Option<Sent>>)>,
    tick: usize,
    pcm: Vec<i16>,
}

impl Conference {
    /// `talking(participant, tick)` scripts who speaks when.
    fn new(parties: usize, talking: impl Fn(usize, usize) -> bool) -> Self {
        let mut mixer = Mixer::new(MixerConfig::default());
        let mut legs = Vec::new();
        for p in 0..parties {
            let id = ParticipantId(p as u64);
            mixer.add_participant(id, ParticipantSettings::new(AudioFormat::OPUS_MONO)).expect("new id");
            let mut endpoint = OpusEncoder::new(&OpusConfig::default()).expect("valid config");
            let script = (0..CYCLE)
                .map(|t| {
                    talking(p, t).then(|| {
                        let frame = voice(p, t);
                        let mut packet = Vec::new();
                        endpoint.encode(&frame, &mut packet).expect("encodes");
                        Sent { packet, level: AudioLevel::from_samples(&frame, true) }
                    })
                })
                .collect();
            legs.push((id, OpusDecoder::new(1).expect("mono decoder"), script));
        }
        Self { mixer, legs, tick: 0, pcm: vec![0; FRAME] }
    }

    /// One tick: decode what is needed, mix, encode.
    fn tick(&mut self) -> TickStats {
        let t = self.tick % CYCLE;
        self.tick += 1;
        for (id, decoder, script) in &mut self.legs {
            let input = match &script[t] {
                Some(sent) if self.mixer.needs_decode(*id, Some(sent.level)) => {
                    decoder.decode(&sent.packet, &mut self.pcm).expect("valid packet");
                    FrameInput::Decoded { pcm: &self.pcm, level: Some(sent.level) }
                }
                Some(sent) => FrameInput::Silent { level: Some(sent.level) },
                None => FrameInput::Silent { level: None },
            };
            self.mixer.set_input(*id, input).expect("known participant");
        }
        self.mixer.tick().expect("encodes").stats
    }
}

fn scenario(c: &mut Criterion, name: &str, parties: usize, talking: impl Fn(usize, usize) -> bool) {
    let mut conference = Conference::new(parties, talking);
    // Run one cycle first so the encoders and speaker state are warm, and
    // say how much codec work a tick of this script does on average.
    let (mut encodes, mut decodes) = (0, 0);
    for _ in 0..CYCLE {
        let stats = conference.tick();
        encodes += stats.encodes();
        decodes += stats.decoded_inputs;
    }
    let per_tick = |n: usize| n as f64 / CYCLE as f64;
    eprintln!("{name}: {:.2} encodes and {:.2} decodes per tick", per_tick(encodes), per_tick(decodes));
    let mut group = c.benchmark_group("mixer_tick");
    group.throughput(Throughput::Elements(parties as u64));
    group.bench_function(name, |b| b.iter(|| black_box(conference.tick())));
    group.finish();
}

fn conversation(c: &mut Criterion) {
    // Turns of 50 ticks, each next talker starting 10 ticks early.
    scenario(c, "conversation_5", 5, |p, t| {
        let start = p * 50;
        let in_turn = |s: usize| (s..s + 60).contains(&t) || (s..s + 60).contains(&(t + CYCLE));
        in_turn(start)
    });
}

fn large(c: &mut Criterion) {
    scenario(c, "large_200_3_talking", 200, |p, _| p < 3);
}

fn all_talking(c: &mut Criterion) {
    scenario(c, "all_talking_5", 5, |_, _| true);
}

/// The unit costs, measured beside the ticks so the ticks can be read as
/// "so many encodes" on a loaded machine too.
fn codec_costs(c: &mut Criterion) {
    let frames: Vec<_> = (0..CYCLE).map(|t| voice(0, t)).collect();
    let mut group = c.benchmark_group("opus_20ms");
    for complexity in [5, 10] {
        let mut encoder = OpusEncoder::new(&OpusConfig { complexity, ..OpusConfig::default() }).expect("valid config");
        let (mut packet, mut t) = (Vec::new(), 0);
        group.bench_function(format!("encode_c{complexity}"), |b| {
            b.iter(|| {
                t = (t + 1) % CYCLE;
                encoder.encode(&frames[t], &mut packet).expect("encodes");
                black_box(packet.len())
            })
        });
    }
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).expect("valid config");
    let packets: Vec<_> = frames
        .iter()
        .map(|f| {
            let mut p = Vec::new();
            encoder.encode(f, &mut p).expect("encodes");
            p
        })
        .collect();
    let mut decoder = OpusDecoder::new(1).expect("mono decoder");
    let (mut pcm, mut t) = (vec![0i16; FRAME], 0);
    group.bench_function("decode", |b| {
        b.iter(|| {
            t = (t + 1) % CYCLE;
            decoder.decode(&packets[t], &mut pcm).expect("decodes");
            black_box(pcm[0])
        })
    });
    group.finish();
}

criterion_group!(benches, codec_costs, conversation, large, all_talking);
criterion_main!(benches);
