//! End-to-end tests: endpoints that send sine tones through real Opus (and
//! G.711) encoders, the bridge's decoders and the mixer, back out through
//! each receiver's decoder; each receiver's ear is a Goertzel filter.

use super::*;
use crate::codec::tone::{goertzel_amplitude, sine};
use crate::codec::{AudioDecoder, G711Decoder, G711Law, OpusDecoder, OpusEncoder};

const AMP: f64 = 6000.0;
/// Frames measured at the end of a run: 0.5 s, a whole number of cycles of
/// every tone used here (multiples of 50 Hz), so the tones do not leak into
/// each other's Goertzel bins.
const MEASURED: usize = 25;

struct Endpoint {
    id: ParticipantId,
    tone: Option<f64>,
    encoder: OpusEncoder,
    bridge_decoder: OpusDecoder,
    ear: Box<dyn AudioDecoder>,
    heard: Vec<i16>,
}

struct Call {
    mixer: Mixer,
    endpoints: Vec<Endpoint>,
    tick: usize,
}

impl Call {
    fn new(config: MixerConfig) -> Self {
        Self { mixer: Mixer::new(config), endpoints: Vec::new(), tick: 0 }
    }

    fn join(&mut self, tone: Option<f64>, format: AudioFormat) -> ParticipantId {
        let id = ParticipantId(self.endpoints.len() as u64 + 1);
        self.mixer.add_participant(id, ParticipantSettings::new(format)).unwrap();
        let ear: Box<dyn AudioDecoder> = match format {
            AudioFormat::PCMU => Box::new(G711Decoder::new(G711Law::MuLaw)),
            _ => Box::new(OpusDecoder::new(1).unwrap()),
        };
        self.endpoints.push(Endpoint {
            id,
            tone,
            encoder: OpusEncoder::new(&OpusConfig::default()).unwrap(),
            bridge_decoder: OpusDecoder::new(1).unwrap(),
            ear,
            heard: Vec::new(),
        });
        id
    }

    fn endpoint(&mut self, id: ParticipantId) -> &mut Endpoint {
        self.endpoints.iter_mut().find(|e| e.id == id).unwrap()
    }

    /// One 20 ms tick: every endpoint sends, the bridge decodes what the
    /// mixer needs, mixes, and every endpoint decodes what it received.
    fn step(&mut self) -> (TickStats, Vec<Delivery>, Vec<MixerEvent>) {
        let (mut packet, mut pcm) = (Vec::new(), vec![0i16; FRAME_SAMPLES]);
        for e in &mut self.endpoints {
            let frame = match e.tone {
                Some(f) => sine(f, AMP, 48_000, self.tick * FRAME_SAMPLES, FRAME_SAMPLES),
                None => vec![0; FRAME_SAMPLES],
            };
            let level = Some(AudioLevel::from_samples(&frame, true));
            e.encoder.encode(&frame, &mut packet).unwrap();
            let input = if self.mixer.needs_decode(e.id, level) {
                e.bridge_decoder.decode(&packet, &mut pcm).unwrap();
                FrameInput::Decoded { pcm: &pcm, level }
            } else {
                FrameInput::Silent { level }
            };
            self.mixer.set_input(e.id, input).unwrap();
        }
        self.tick += 1;
        let out = self.mixer.tick().unwrap();
        let (stats, deliveries, events) = (out.stats, out.deliveries.clone(), out.events.clone());
        for e in &mut self.endpoints {
            match deliveries.iter().find(|d| d.receiver == e.id) {
                Some(d) => e.ear.decode(&d.payload, &mut pcm).unwrap(),
                None => pcm.fill(0),
            }
            e.heard.extend_from_slice(&pcm);
        }
        (stats, deliveries, events)
    }

    /// The level in dB relative to a talker's own of `freq` in what `id`
    /// heard over the last MEASURED frames.
    fn heard_db(&self, id: ParticipantId, freq: f64) -> f64 {
        let e = self.endpoints.iter().find(|e| e.id == id).unwrap();
        let tail = &e.heard[e.heard.len() - MEASURED * FRAME_SAMPLES..];
        20.0 * (goertzel_amplitude(tail, freq, 48_000) / AMP).log10()
    }
}

#[test]
fn every_receiver_hears_every_other_talker_and_not_itself() {
    let mut call = Call::new(MixerConfig::default());
    let tones = [400.0, 650.0, 950.0];
    let talkers: Vec<_> = tones.iter().map(|&f| call.join(Some(f), AudioFormat::OPUS_MONO)).collect();
    let listeners = [
        call.join(None, AudioFormat::OPUS_MONO),
        call.join(None, AudioFormat::OPUS_MONO),
        call.join(None, AudioFormat::OPUS_STEREO),
        call.join(None, AudioFormat::PCMU),
    ];
    for t in 0..60 {
        let (stats, deliveries, _) = call.step();
        if t >= 2 {
            // Three mix-minus encodes, one shared encode per format.
            assert_eq!((stats.own_encodes, stats.shared_encodes, stats.mixed), (3, 3, 3), "tick {t}");
            assert_eq!(deliveries.len(), 7);
        }
    }
    for (i, &talker) in talkers.iter().enumerate() {
        for (j, &f) in tones.iter().enumerate() {
            let db = call.heard_db(talker, f);
            if i == j {
                assert!(db < -30.0, "talker {i} hears itself at {db:.1} dB");
            } else {
                assert!(db.abs() < 1.0, "talker {i} hears {f} Hz at {db:.2} dB");
            }
        }
    }
    for &l in &listeners {
        for &f in &tones {
            let db = call.heard_db(l, f);
            assert!(db.abs() < 1.0, "listener {l:?} hears {f} Hz at {db:.2} dB");
        }
    }
}

#[test]
fn encodes_scale_with_speakers_and_formats_not_participants() {
    let mut call = Call::new(MixerConfig::default());
    call.join(Some(500.0), AudioFormat::OPUS_MONO);
    call.join(Some(800.0), AudioFormat::OPUS_MONO);
    let listeners: Vec<_> = (0..18).map(|_| call.join(None, AudioFormat::OPUS_MONO)).collect();
    call.mixer.set_tx_muted(listeners[0], true).unwrap();
    for _ in 0..3 {
        call.step();
    }
    let (stats, deliveries, _) = call.step();
    assert_eq!(stats.encodes(), 2 + 1);
    assert_eq!(stats.decoded_inputs, 2, "silent listeners are not decoded");
    // 20 participants, one tx-muted: 19 payloads, 17 of them the same bytes.
    assert_eq!(deliveries.len(), 19);
    assert!(deliveries.iter().all(|d| d.receiver != listeners[0]));
    let shared: Vec<_> = deliveries.iter().filter(|d| d.kind == StreamKind::Shared(AudioFormat::OPUS_MONO)).collect();
    assert_eq!(shared.len(), 17);
    assert!(shared.iter().all(|d| Arc::ptr_eq(&d.payload, &shared[0].payload)));
}

#[test]
fn rx_muted_talker_is_never_heard_nor_decoded() {
    let mut call = Call::new(MixerConfig::default());
    let a = call.join(Some(500.0), AudioFormat::OPUS_MONO);
    let muted = call.join(Some(1100.0), AudioFormat::OPUS_MONO);
    let l = call.join(None, AudioFormat::OPUS_MONO);
    call.mixer.set_rx_muted(muted, true).unwrap();
    for _ in 0..50 {
        let (stats, ..) = call.step();
        assert!(call.mixer.speakers().all(|s| s != muted));
        assert!(!call.mixer.needs_decode(muted, Some(AudioLevel::new(true, 10))));
        assert!(stats.decoded_inputs <= 1);
    }
    assert!(call.heard_db(l, 500.0).abs() < 1.0);
    assert!(call.heard_db(l, 1100.0) < -30.0);
    // The muted participant still hears the conference.
    assert!(call.heard_db(muted, 500.0).abs() < 1.0);
    assert!(call.heard_db(a, 1100.0) < -30.0);
}

#[test]
fn decodes_follow_speakers_and_candidates_only() {
    let mut call = Call::new(MixerConfig::default());
    let talker = call.join(Some(500.0), AudioFormat::OPUS_MONO);
    let silent: Vec<_> = (0..9).map(|_| call.join(None, AudioFormat::OPUS_MONO)).collect();
    let (stats, ..) = call.step();
    assert_eq!(stats.decoded_inputs, 1);
    // Above the speech level but not yet in the mix: a candidate.
    assert_eq!(call.mixer.output.decode_next, [talker]);
    for _ in 0..5 {
        call.step();
    }
    assert_eq!(call.mixer.output.decode_next, [talker]);
    let quiet = Some(AudioLevel::new(false, 90));
    assert!(silent.iter().all(|&s| !call.mixer.needs_decode(s, quiet)));
    assert!(call.mixer.needs_decode(talker, quiet), "a speaker is decoded even in a pause");
    assert!(call.mixer.needs_decode(silent[0], None), "no level: the mixer must measure");
    assert!(call.mixer.needs_decode(silent[0], Some(AudioLevel::new(true, 30))));
}

#[test]
fn active_speaker_changes_without_flicker() {
    let config = MixerConfig { dominant_ticks: 5, hangover_ticks: 10, ..MixerConfig::default() };
    let mut call = Call::new(config);
    let a = call.join(Some(500.0), AudioFormat::OPUS_MONO);
    let b = call.join(None, AudioFormat::OPUS_MONO);
    let mut events = Vec::new();
    for _ in 0..10 {
        events.extend(call.step().2);
    }
    assert_eq!(events, [MixerEvent::ActiveSpeakerChanged(Some(a))]);
    assert_eq!(call.mixer.active_speaker(), Some(a));
    // B starts, louder; A keeps talking. B takes over after dominant_ticks.
    call.endpoint(b).tone = Some(900.0);
    call.endpoint(a).tone = None;
    events.clear();
    for _ in 0..40 {
        events.extend(call.step().2);
    }
    assert_eq!(events, [MixerEvent::ActiveSpeakerChanged(Some(b))]);
    call.endpoint(b).tone = None;
    events.clear();
    for _ in 0..20 {
        events.extend(call.step().2);
    }
    assert_eq!(events, [MixerEvent::ActiveSpeakerChanged(None)]);
    call.mixer.remove_participant(a).unwrap();
    assert!(call.mixer.remove_participant(a).is_err());
}

#[test]
fn a_loud_sum_is_limited_not_wrapped() {
    let mut mixer = Mixer::new(MixerConfig::default());
    let ids: Vec<_> = (1..=3).map(ParticipantId).collect();
    for &id in &ids {
        mixer.add_participant(id, ParticipantSettings::new(AudioFormat::PCMU)).unwrap();
    }
    mixer.add_participant(ParticipantId(9), ParticipantSettings::new(AudioFormat::PCMU)).unwrap();
    // Three talkers in phase at -1 dBFS: the sum is three times full scale.
    for t in 0..10 {
        let frame = sine(1000.0, 29_000.0, 48_000, t * FRAME_SAMPLES, FRAME_SAMPLES);
        for &id in &ids {
            mixer.set_input(id, FrameInput::Decoded { pcm: &frame, level: None }).unwrap();
        }
        mixer.tick().unwrap();
        if t >= 2 {
            assert!(mixer.acc.iter().any(|&s| s > 80_000));
            for (&mixed, &acc) in mixer.common.iter().zip(&mixer.acc) {
                assert!(mixed.unsigned_abs() < i16::MAX as u16);
                assert!(mixed == 0 || (mixed > 0) == (acc > 0), "wrapped: {acc} -> {mixed}");
            }
        }
    }
}

#[test]
fn switching_between_own_and_shared_stream_keeps_the_sound() {
    let config = MixerConfig { hangover_ticks: 10, ..MixerConfig::default() };
    let mut call = Call::new(config);
    call.join(Some(500.0), AudioFormat::OPUS_MONO);
    let x = call.join(None, AudioFormat::OPUS_MONO);
    call.join(None, AudioFormat::OPUS_MONO);
    let mut kinds = Vec::new();
    for t in 0..120 {
        call.endpoint(x).tone = if (40..70).contains(&t) { Some(1200.0) } else { None };
        let (_, deliveries, _) = call.step();
        kinds.extend(deliveries.iter().filter(|d| d.receiver == x).map(|d| d.kind));
    }
    // x listened, spoke (its own stream), and listened again.
    assert!(kinds[..40].iter().all(|k| *k == StreamKind::Shared(AudioFormat::OPUS_MONO)));
    assert!(kinds[45..70].iter().all(|k| *k == StreamKind::MixMinus));
    assert!(kinds[100..].iter().all(|k| *k == StreamKind::Shared(AudioFormat::OPUS_MONO)));
    // Promotion is seamless (a forked encoder); demotion costs a transient of
    // a frame or two while the decoder meets the shared encoder's prediction
    // (measured: +1.2 dB, then -0.4 dB), then the level is back.
    let demoted = 45 + kinds[45..].iter().position(|k| *k != StreamKind::MixMinus).unwrap();
    let heard = &call.endpoint(x).heard;
    for (t, frame) in heard.chunks_exact(FRAME_SAMPLES).enumerate().skip(5) {
        let db = 20.0 * (goertzel_amplitude(frame, 500.0, 48_000) / AMP).log10();
        let allowed = if (demoted..demoted + 2).contains(&t) { 2.0 } else { 0.5 };
        assert!(db.abs() < allowed, "frame {t}: {db:.2} dB");
    }
}

#[test]
fn membership_errors_and_format_groups() {
    let mut mixer = Mixer::new(MixerConfig::default());
    let (a, b) = (ParticipantId(1), ParticipantId(2));
    mixer.add_participant(a, ParticipantSettings::new(AudioFormat::PCMA)).unwrap();
    assert_eq!(
        mixer.add_participant(a, ParticipantSettings::new(AudioFormat::PCMA)),
        Err(MixerError::DuplicateParticipant(a))
    );
    let ptime_40 = AudioFormat { ptime_ms: 40, ..AudioFormat::OPUS_MONO };
    assert!(matches!(
        mixer.add_participant(b, ParticipantSettings::new(ptime_40)),
        Err(MixerError::Codec(CodecError::Format { ptime_ms: 40, .. }))
    ));
    mixer.add_participant(b, ParticipantSettings::new(AudioFormat::OPUS_MONO)).unwrap();
    assert_eq!(mixer.groups.len(), 2);
    assert_eq!(
        mixer.set_input(a, FrameInput::Decoded { pcm: &[0; 480], level: None }),
        Err(MixerError::FrameLength(480))
    );
    assert_eq!(
        mixer.set_input(ParticipantId(7), FrameInput::Silent { level: None }),
        Err(MixerError::UnknownParticipant(ParticipantId(7)))
    );
    // The last PCMA participant leaves: its encoder goes, b's group index follows.
    mixer.remove_participant(a).unwrap();
    assert_eq!(mixer.groups.len(), 1);
    assert_eq!(mixer.len(), 1);
    let out = mixer.tick().unwrap();
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(out.deliveries[0].kind, StreamKind::Shared(AudioFormat::OPUS_MONO));
}

/// With AGC on, a talker at -17.7 dBFS RMS (a sine of amplitude 6000) is
/// brought to the -20 dBFS target: heard about 2.3 dB below what it sent.
/// Off (the default), it is heard at its own level.
#[test]
fn agc_brings_a_talker_to_the_target_level() {
    for (agc, expected) in [(true, -2.3), (false, 0.0)] {
        let mut call = Call::new(MixerConfig { agc, ..MixerConfig::default() });
        call.join(Some(400.0), AudioFormat::OPUS_MONO);
        let listener = call.join(None, AudioFormat::OPUS_MONO);
        for _ in 0..150 {
            call.step();
        }
        let db = call.heard_db(listener, 400.0);
        assert!((db - expected).abs() < 0.5, "agc {agc}: heard at {db:.2} dB");
    }
}

/// A receiver that asked for a lower Opus bitrate gets its own group: one
/// more shared encode, at its rate, and still the talker's tone.
#[test]
fn receivers_at_another_bitrate_share_their_own_encode() {
    let low = AudioFormat { bitrate: 12_000, ..AudioFormat::OPUS_MONO };
    let mut call = Call::new(MixerConfig::default());
    call.join(Some(500.0), AudioFormat::OPUS_MONO);
    let default: Vec<_> = (0..3).map(|_| call.join(None, AudioFormat::OPUS_MONO)).collect();
    let slow: Vec<_> = (0..3).map(|_| call.join(None, low)).collect();
    let mut sizes = (0, 0);
    for _ in 0..50 {
        let (stats, deliveries, _) = call.step();
        assert!(stats.encodes() <= 3, "{stats:?}");
        let size = |f| deliveries.iter().find(|d| d.kind == StreamKind::Shared(f)).map_or(0, |d| d.payload.len());
        sizes.0 += size(AudioFormat::OPUS_MONO);
        sizes.1 += size(low);
    }
    assert!(sizes.1 * 2 < sizes.0, "12 kbit/s is not smaller: {sizes:?}");
    for l in default.iter().chain(&slow) {
        assert!(call.heard_db(*l, 500.0).abs() < 1.5, "{:.2}", call.heard_db(*l, 500.0));
    }
}

/// A speaker alone in the mix hears silence: the cached silence frame, no
/// encode of its all-zero mix-minus. When a second speaker comes in, both
/// get their own encodes and hear each other at level.
#[test]
fn a_lone_speaker_costs_no_mix_minus_encode() {
    let mut call = Call::new(MixerConfig::default());
    let first = call.join(Some(500.0), AudioFormat::OPUS_MONO);
    let listeners: Vec<_> = (0..3).map(|_| call.join(None, AudioFormat::OPUS_MONO)).collect();
    for _ in 0..5 {
        call.step();
    }
    let (stats, deliveries, _) = call.step();
    assert_eq!((stats.own_encodes, stats.shared_encodes, stats.silent_mix_minus), (0, 1, 1), "{stats:?}");
    assert!(deliveries.iter().any(|d| d.receiver == first && d.kind == StreamKind::MixMinus));
    for _ in 0..50 {
        call.step();
    }
    assert!(call.heard_db(first, 500.0) < -30.0);
    assert!(call.heard_db(listeners[0], 500.0).abs() < 1.0);

    let second = call.join(Some(800.0), AudioFormat::OPUS_MONO);
    for _ in 0..60 {
        call.step();
    }
    let (stats, ..) = call.step();
    assert_eq!((stats.own_encodes, stats.silent_mix_minus), (2, 0), "{stats:?}");
    assert!(call.heard_db(first, 800.0).abs() < 1.0, "{:.2}", call.heard_db(first, 800.0));
    assert!(call.heard_db(second, 500.0).abs() < 1.0);
}
