//! What the load generators of `scripts/bench-audio` and `scripts/bench-video`
//! share: a reproducible random source, speech pre-encoded as a WebRTC
//! endpoint sends it, and the generator's own CPU clock. Included by each
//! example with `#[path]`; not an example itself.

use confero_media::codec::{AudioFormat, OpusApplication, OpusConfig, FRAME_SAMPLES};
use confero_media::rtp::AudioLevel;

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `--key value` pairs from the command line; anything else calls `usage`.
pub fn flags(usage: fn() -> !) -> std::collections::HashMap<String, String> {
    let mut kv = std::collections::HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if !k.starts_with('-') {
            usage();
        }
        let v = it.next().unwrap_or_else(|| usage());
        kv.insert(k.trim_start_matches('-').to_string(), v);
    }
    kv
}

/// splitmix64: reproducible schedules and signals without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// One pre-encoded 20 ms frame.
pub struct Frame {
    /// Opus payload; `None` when the encoder said "don't transmit" (DTX).
    pub payload: Option<Vec<u8>>,
    /// RFC 6464 level byte (V flag and -dBov).
    pub level: u8,
}

/// A speech-like signal for when no WAV is given: a gliding harmonic voice in
/// syllables of 120–300 ms with short pauses between words.
pub fn synthetic_speech(seconds: usize, rng: &mut Rng) -> Vec<i16> {
    let n = seconds * 48_000;
    let mut out = Vec::with_capacity(n);
    let mut phase = 0.0f64;
    while out.len() < n {
        let syl = rng.range(120, 300) as usize * 48;
        let f0 = 100.0 + rng.below(120) as f64;
        for i in 0..syl {
            let env = (std::f64::consts::PI * i as f64 / syl as f64).sin();
            let f = f0 * (1.0 + 0.1 * (i as f64 / syl as f64));
            phase += 2.0 * std::f64::consts::PI * f / 48_000.0;
            let s: f64 = (1..12).map(|h| (phase * h as f64).sin() / h as f64).sum();
            out.push((s * env * 6000.0) as i16);
        }
        if rng.below(3) == 0 {
            out.extend(std::iter::repeat_n(0i16, rng.range(100, 400) as usize * 48));
        }
    }
    out.truncate(n);
    out
}

/// Encodes `pcm` frame by frame as a WebRTC endpoint would send it (Opus VoIP,
/// 32 kbit/s, FEC, DTX): payloads of 2 bytes or less are not transmitted.
pub fn encode(pcm: &[i16], talking: bool) -> Res<Vec<Frame>> {
    let cfg = OpusConfig {
        application: OpusApplication::Voip,
        bitrate: 32_000,
        complexity: 10,
        inband_fec: true,
        dtx: true,
        packet_loss_percent: 5,
        ..OpusConfig::default()
    };
    let mut enc = AudioFormat::OPUS_MONO.new_encoder(&cfg)?;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for chunk in pcm.chunks_exact(FRAME_SAMPLES) {
        enc.encode(chunk, &mut buf)?;
        let level = AudioLevel::from_samples(chunk, talking);
        let level = AudioLevel::new(talking && level.level < 70, level.level);
        out.push(Frame { payload: (buf.len() > 2).then(|| buf.clone()), level: level.to_byte() });
    }
    Ok(out)
}

/// This thread's CPU time so far, from the scheduler's own accounting.
pub fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
