//! End to end through the engine: endpoints with their own encoders (Opus,
//! G.711 or G.722) send tones as (S)RTP over a seeded virtual network; each
//! endpoint decodes what the bridge sends it and listens with a Goertzel
//! filter. Time is injected.

use super::*;
use crate::codec::tone::{goertzel_amplitude, sine};
use crate::codec::{AudioDecoder, AudioEncoder, OpusConfig, OpusEncoder, FRAME_SAMPLES};
use crate::mixer::MixerConfig;
use crate::rtp::{AudioLevel, HeaderExtension, RtpHeader, RtpPacket};
use crate::srtp::SrtpContext;
use std::time::Instant;

const AMP: f64 = 6000.0;
const PT: u8 = 111;
const LEVEL_ID: u8 = 1;
/// Frames measured at the end of a run (0.5 s: whole cycles of every tone).
const MEASURED: usize = 25;
const TICK: Duration = Duration::from_millis(20);

struct Ep {
    id: EndpointId,
    /// (frequency, first frame) of each tone it sends.
    tones: Vec<(f64, usize)>,
    /// What it sends and receives, and with which payload type.
    format: AudioFormat,
    pt: u8,
    encoder: Box<dyn AudioEncoder>,
    ear: Box<dyn AudioDecoder>,
    srtp_out: Option<SrtpContext>,
    srtp_in: Option<SrtpContext>,
    sends_levels: bool,
    /// In DTX (silent, sending one packet every this many ticks), if set.
    dtx_every: Option<usize>,
    seq: u16,
    /// Per tick: 20 ms of what it heard (zeros when nothing came).
    heard: Vec<i16>,
    /// (tick, sequence, timestamp, marker) of each packet received.
    packets: Vec<(usize, u16, u32, bool)>,
}

struct Net {
    seed: u64,
    loss_percent: u64,
    max_jitter_ms: u64,
    in_flight: Vec<(Instant, u64, EndpointId, Vec<u8>)>,
    sent: u64,
}

impl Net {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Harness {
    conf: Conference,
    eps: Vec<Ep>,
    net: Net,
    start: Instant,
    tick: usize,
    out: Vec<Outgoing>,
    summary: TickSummary,
}

fn keys(n: u8) -> SrtpKeys {
    SrtpKeys { profile: SrtpProfile::AesCm128HmacSha1_80, key: vec![n; 16], salt: vec![n ^ 0x5a; 14] }
}

fn context(k: &SrtpKeys) -> SrtpContext {
    SrtpContext::new(k.profile, &k.key, &k.salt).unwrap()
}

impl Harness {
    fn new(loss_percent: u64, max_jitter_ms: u64) -> Self {
        Self {
            conf: Conference::new(MixerConfig::default(), rand::SeedableRng::seed_from_u64(7)),
            eps: Vec::new(),
            net: Net { seed: 0x9e37_79b9_7f4a_7c15, loss_percent, max_jitter_ms, in_flight: Vec::new(), sent: 0 },
            start: Instant::now(),
            tick: 0,
            out: Vec::new(),
            summary: TickSummary::default(),
        }
    }

    fn join(&mut self, tones: &[(f64, usize)], srtp: bool, levels: bool) -> EndpointId {
        self.join_keyed(tones, srtp, levels, false)
    }

    /// As [`join`](Self::join); with `pending`, the endpoint has its SRTP
    /// keys (as after a DTLS handshake) but the conference gets them only
    /// from [`Conference::set_srtp_keys`].
    fn join_keyed(&mut self, tones: &[(f64, usize)], srtp: bool, levels: bool, pending: bool) -> EndpointId {
        self.join_as(AudioFormat::OPUS_MONO, PT, tones, srtp, levels, pending)
    }

    /// An endpoint sending and receiving `format` (G.711, G.722, Opus).
    fn join_as(
        &mut self,
        format: AudioFormat,
        pt: u8,
        tones: &[(f64, usize)],
        srtp: bool,
        levels: bool,
        pending: bool,
    ) -> EndpointId {
        let n = self.eps.len() as u8;
        let id = EndpointId(u64::from(n) + 1);
        let mut cfg = EndpointConfig::new(format, pt);
        let (srtp_in, srtp_out) = (keys(2 * n + 1), keys(2 * n + 2));
        if srtp && !pending {
            cfg.srtp_in = Some(srtp_in.clone());
            cfg.srtp_out = Some(srtp_out.clone());
        }
        cfg.srtp_pending = pending;
        cfg.audio_level_id = levels.then_some(LEVEL_ID);
        self.conf.attach(id, cfg).unwrap();
        self.eps.push(Ep {
            id,
            tones: tones.to_vec(),
            format,
            pt,
            encoder: format.new_encoder(&OpusConfig::default()).unwrap(),
            ear: format.new_decoder().unwrap(),
            srtp_out: (srtp || pending).then(|| context(&srtp_in)),
            srtp_in: (srtp || pending).then(|| context(&srtp_out)),
            sends_levels: levels,
            dtx_every: None,
            seq: 1000 * u16::from(n),
            heard: Vec::new(),
            packets: Vec::new(),
        });
        id
    }

    /// One 20 ms tick: every endpoint sends frame `tick` (captured over the
    /// last 20 ms) at the tick time, the network delivers what has arrived,
    /// the bridge ticks, and every endpoint decodes what it got.
    fn step(&mut self) {
        let k = self.tick;
        let now = self.start + TICK * (k as u32 + 1);
        let mut payload = Vec::new();
        for e in &mut self.eps {
            if e.dtx_every.is_some_and(|n| !k.is_multiple_of(n)) {
                continue;
            }
            let mut frame = vec![0i16; FRAME_SAMPLES];
            for &(f, from) in &e.tones {
                if k >= from {
                    for (s, t) in frame.iter_mut().zip(sine(f, AMP, 48_000, k * FRAME_SAMPLES, FRAME_SAMPLES)) {
                        *s += t;
                    }
                }
            }
            e.encoder.encode(&frame, &mut payload).unwrap();
            let level = [AudioLevel::from_samples(&frame, true).to_byte()];
            let ext = [HeaderExtension::new(LEVEL_ID, &level)];
            let header = RtpHeader {
                payload_type: e.pt,
                sequence_number: e.seq,
                timestamp: (k * e.format.clock_rate as usize / 50) as u32,
                ssrc: 0x1000 + e.id.0 as u32,
                extensions: if e.sends_levels { &ext } else { &[] },
                ..RtpHeader::default()
            };
            e.seq = e.seq.wrapping_add(1);
            let mut bytes = Vec::new();
            header.write_packet(&payload, &mut bytes).unwrap();
            if let Some(srtp) = &mut e.srtp_out {
                srtp.protect_rtp(&mut bytes).unwrap();
            }
            let lost = self.net.next() % 100 < self.net.loss_percent;
            let delay = self.net.next() % (self.net.max_jitter_ms + 1);
            if !lost {
                self.net.sent += 1;
                let arrival = now + Duration::from_millis(delay);
                self.net.in_flight.push((arrival, self.net.sent, e.id, bytes));
            }
        }
        self.net.in_flight.sort_by_key(|p| (p.0, p.1));
        let due = self.net.in_flight.iter().take_while(|p| p.0 <= now).count();
        for (arrival, _, id, mut bytes) in self.net.in_flight.drain(..due) {
            // An endpoint whose keys are pending is refused, and counted.
            match self.conf.receive(arrival, id, &mut bytes) {
                Ok(()) | Err(EngineError::KeysPending) => {}
                Err(e) => panic!("{id:?}: {e}"),
            }
        }
        self.summary = self.conf.tick(now, &mut self.out).unwrap();
        let mut pcm = vec![0i16; FRAME_SAMPLES];
        for e in &mut self.eps {
            let mine: Vec<_> = self.out.iter().filter(|o| o.endpoint == e.id && o.flow == Flow::Rtp).collect();
            assert!(mine.len() <= 1, "two packets for {:?} in one tick", e.id);
            pcm.fill(0);
            if let Some(o) = mine.first() {
                let mut bytes = o.bytes.clone();
                if let Some(srtp) = &mut e.srtp_in {
                    srtp.unprotect_rtp(&mut bytes).unwrap();
                }
                let rtp = RtpPacket::parse(&bytes).unwrap();
                assert_eq!(rtp.payload_type(), e.pt);
                e.packets.push((k, rtp.sequence_number(), rtp.timestamp(), rtp.marker()));
                e.ear.decode(rtp.payload(), &mut pcm).unwrap();
            }
            e.heard.extend_from_slice(&pcm);
        }
        self.tick += 1;
    }

    fn ep(&self, id: EndpointId) -> &Ep {
        self.eps.iter().find(|e| e.id == id).unwrap()
    }

    /// dB relative to a talker's own level of `freq` in what `id` heard
    /// over the last MEASURED frames.
    fn heard_db(&self, id: EndpointId, freq: f64) -> f64 {
        let heard = &self.ep(id).heard;
        let tail = &heard[heard.len() - MEASURED * FRAME_SAMPLES..];
        20.0 * (goertzel_amplitude(tail, freq, 48_000) / AMP).log10()
    }

    /// Every endpoint hears every other's tone within `tolerance` dB of
    /// its sent level, and itself below -30 dB.
    fn assert_hearing(&self, tones: &[f64], tolerance: f64) {
        for (i, e) in self.eps.iter().enumerate() {
            for (j, &f) in tones.iter().enumerate() {
                let db = self.heard_db(e.id, f);
                if i == j {
                    assert!(db < -30.0, "endpoint {i} hears itself at {db:.1} dB");
                } else {
                    assert!(db.abs() < tolerance, "endpoint {i} hears {f} Hz at {db:.2} dB");
                }
            }
        }
    }
}

const TONES: [f64; 3] = [400.0, 700.0, 1100.0];

#[test]
fn engine_never_decodes_a_silent_listener_in_dtx() {
    // Two talkers and five listeners in DTX, as a muted browser sends it:
    // one silent-level packet every 400 ms and nothing in between. The jitter
    // buffer holds each such packet for a tick or more after a silent tick;
    // its frame and the loss concealment after it must still be skipped.
    let mut h = Harness::new(0, 0);
    h.join(&[(TONES[0], 0)], false, true);
    h.join(&[(TONES[1], 0)], false, true);
    for _ in 0..5 {
        h.join(&[], false, true);
        h.eps.last_mut().unwrap().dtx_every = Some(20);
    }
    let mut decodes = Vec::new();
    for _ in 0..200 {
        h.step();
        decodes.push(h.summary.decodes);
    }
    // After the talkers' join (two loud ticks), exactly the two talkers.
    assert!(decodes[10..].iter().all(|&d| d == 2), "decodes per tick: {decodes:?}");
    // The listeners hear both talkers.
    for e in &h.eps[2..] {
        assert!(h.heard_db(e.id, TONES[0]).abs() < 1.0 && h.heard_db(e.id, TONES[1]).abs() < 1.0);
    }
}

#[test]
fn engine_every_listener_hears_every_other_talker_over_srtp() {
    let mut h = Harness::new(0, 0);
    for (i, &f) in TONES.iter().enumerate() {
        h.join(&[(f, 0)], true, i == 0);
    }
    for _ in 0..60 {
        h.step();
    }
    h.assert_hearing(&TONES, 1.0);
    // Three speakers: three mix-minus encodes, no shared one; three decodes.
    assert_eq!((h.summary.encodes, h.summary.decodes, h.summary.packets), (3, 3, 3));
    for e in &h.eps {
        let stats = h.conf.stats(e.id).unwrap();
        assert_eq!((stats.packets_in, stats.packets_out, stats.auth_failures), (60, 60, 0));
        assert!(stats.bytes_in > stats.packets_in * 22 && stats.bytes_out > stats.packets_out * 22);
        // The first packet carries the marker, no other does.
        let markers: Vec<_> = e.packets.iter().filter(|p| p.3).map(|p| p.0).collect();
        assert_eq!(markers, [0]);
    }
}

#[test]
fn engine_keeps_every_receiver_continuous_under_loss_and_jitter() {
    let mut h = Harness::new(10, 50);
    for &f in &TONES {
        h.join(&[(f, 0)], false, false);
    }
    for _ in 0..300 {
        h.step();
    }
    for e in &h.eps {
        let first = e.packets[0].0;
        assert!(first <= 4, "{:?} starts at tick {first}", e.id);
        assert_eq!(e.packets.len(), h.tick - first, "{:?} missed ticks", e.id);
        for w in e.packets.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1);
            assert_eq!(w[1].1, w[0].1.wrapping_add(1));
            assert_eq!(w[1].2, w[0].2.wrapping_add(e.format.clock_rate / 50));
        }
        let stats = h.conf.stats(e.id).unwrap();
        assert!(stats.jitter.concealed + stats.jitter.fec_recovered > 0, "{stats:?}");
        assert!(stats.jitter.target_delay > Duration::from_millis(20), "{stats:?}");
        // About a tenth of each talker's packets were lost on the way in, and they arrived with jitter.
        let lost_share = stats.rx_lost as f64 / (stats.rx_lost as f64 + stats.packets_in as f64);
        assert!((0.04..0.2).contains(&lost_share), "lost {lost_share:.3}: {stats:?}");
        assert!(stats.rx_jitter > Duration::from_millis(5), "{stats:?}");
    }
    // Loss costs some level, but every other talker stays clearly audible.
    for (i, e) in h.eps.iter().enumerate() {
        for (j, &f) in TONES.iter().enumerate() {
            let db = h.heard_db(e.id, f);
            eprintln!("lossy: endpoint {i} hears {f} Hz at {db:.2} dB");
            if i == j {
                assert!(db < -30.0);
            } else {
                assert!(db > -3.0 && db < 1.0, "endpoint {i} hears {f} Hz at {db:.2} dB");
            }
        }
    }
}

/// G.711 µ-law and G.722 talkers through a network losing 10 % of their
/// packets (seeded), heard by an Opus listener: the bridge conceals each
/// loss (`codec::plc`) so the tone never dips more than 6 dB below its level
/// in any 5 ms, where a silent gap would take it to nothing.
#[test]
fn engine_conceals_g711_and_g722_loss_without_gaps() {
    for (format, pt) in [(AudioFormat::PCMU, 0), (AudioFormat::G722, 9)] {
        let mut h = Harness::new(10, 0);
        let talker = h.join_as(format, pt, &[(440.0, 0)], false, false, false);
        let listener = h.join(&[], false, false);
        for _ in 0..250 {
            h.step();
        }
        let stats = h.conf.stats(talker).unwrap();
        let lost = stats.rx_lost as f64 / (stats.rx_lost as f64 + stats.packets_in as f64);
        assert!((0.05..0.16).contains(&lost), "{format:?}: {lost:.3} lost");
        // Counted as FEC when the next packet was there (G.711 and G.722
        // have none: their decoder conceals), else as concealed.
        assert!(stats.jitter.concealed + stats.jitter.fec_recovered > 0, "{format:?}: {stats:?}");
        // The steady part: from 1 s in, in 5 ms windows (240 samples, two
        // cycles of 440 Hz near enough), each window's RMS against the whole.
        let heard = &h.ep(listener).heard[50 * FRAME_SAMPLES..];
        let rms = |s: &[i16]| (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
        let level = rms(heard);
        assert!(level > AMP / 2.0_f64.sqrt() / 4.0, "{format:?}: heard at {level:.0} RMS");
        let deepest = heard.chunks_exact(240).map(|w| 20.0 * (rms(w) / level).log10()).fold(f64::MAX, f64::min);
        eprintln!("{format:?}: {:.1} % lost, deepest 5 ms dip {deepest:.1} dB", 100.0 * lost);
        assert!(deepest > -6.0, "{format:?}: a gap {deepest:.1} dB below the tone's level");
    }
}

#[test]
fn engine_added_latency_is_at_most_40_ms_at_zero_jitter() {
    const ONSET: usize = 50;
    const PROBE: f64 = 1000.0;
    let mut h = Harness::new(0, 0);
    // The talker is already a speaker (400 Hz); a 1 kHz tone joins at ONSET.
    h.join(&[(400.0, 0), (PROBE, ONSET)], false, true);
    let listener = h.join(&[], false, true);
    h.join(&[], false, false);
    for _ in 0..ONSET + 10 {
        h.step();
    }
    // The frame received at tick k plays from (k + 1) * 20 ms, so heard
    // sample i plays at 20 ms + i / 48 ms; source sample n is captured at
    // n / 48 ms. Windows of 5 ms (whole cycles of both tones) every 1 ms.
    let heard = &h.ep(listener).heard;
    let window = 240;
    let detected = (0..heard.len() - window)
        .step_by(48)
        .find(|&i| goertzel_amplitude(&heard[i..i + window], PROBE, 48_000) > AMP / 2.0)
        .expect("the probe tone is heard")
        + window;
    let mouth_to_ear_us = 20_000 + detected as i64 * 1000 / 48 - (ONSET * FRAME_SAMPLES) as i64 * 1000 / 48;
    let added_us = mouth_to_ear_us - 20_000;
    eprintln!(
        "bridge added latency: {:.1} ms (mouth to ear {:.1} ms)",
        added_us as f64 / 1e3,
        mouth_to_ear_us as f64 / 1e3
    );
    assert!(added_us <= 40_000, "added latency {added_us} µs");
    assert!(added_us > 0);
}

#[test]
fn engine_drops_tampered_srtp_and_refuses_wrong_payload_type() {
    let mut h = Harness::new(0, 0);
    let a = h.join(&[(400.0, 0)], true, false);
    let b = h.join(&[(700.0, 0)], false, false);
    h.step();
    let now = h.start + TICK * 2;

    let e = &mut h.eps[0];
    let header =
        RtpHeader { payload_type: PT, sequence_number: e.seq, timestamp: 960, ssrc: 0x1001, ..RtpHeader::default() };
    let mut bytes = Vec::new();
    header.write_packet(&[1, 2, 3, 4, 5, 6, 7, 8], &mut bytes).unwrap();
    e.srtp_out.as_mut().unwrap().protect_rtp(&mut bytes).unwrap();
    let last = bytes.len() - 11;
    bytes[last] ^= 0x01;
    let err = h.conf.receive(now, a, &mut bytes).unwrap_err();
    assert_eq!(err, EngineError::Srtp(crate::srtp::SrtpError::AuthenticationFailed));
    let stats = h.conf.stats(a).unwrap();
    assert_eq!((stats.auth_failures, stats.packets_in, stats.jitter.received), (1, 1, 1));

    let mut bytes = Vec::new();
    let header =
        RtpHeader { payload_type: 0, sequence_number: 5000, timestamp: 960, ssrc: 0x1002, ..RtpHeader::default() };
    header.write_packet(&[0xff; 160], &mut bytes).unwrap();
    let err = h.conf.receive(now, b, &mut bytes).unwrap_err();
    assert_eq!(err, EngineError::PayloadType { expected: PT, got: 0 });
    let stats = h.conf.stats(b).unwrap();
    assert_eq!((stats.wrong_payload_type, stats.packets_in, stats.jitter.received), (1, 1, 1));

    assert_eq!(h.conf.receive(now, EndpointId(99), &mut bytes), Err(EngineError::UnknownEndpoint(EndpointId(99))));
    h.conf.detach(b).unwrap();
    assert_eq!(h.conf.detach(b), Err(EngineError::UnknownEndpoint(b)));
    assert_eq!(h.conf.len(), 1);
}

/// Over SRTCP: the bridge sends each endpoint a sender report (with a
/// block about the endpoint's stream and an SDES CNAME) about every 5 s;
/// the endpoint's receiver report echoing it yields the round-trip time,
/// and the loss and jitter it reports of our stream.
#[test]
fn engine_sends_reports_and_measures_round_trip_from_the_answer() {
    use crate::rtcp::{ReceiverReport, ReportBlock, RtcpPacket};
    let mut h = Harness::new(0, 0);
    let a = h.join(&[(400.0, 0)], true, true);
    h.join(&[(700.0, 0)], true, true);
    let mut reports = Vec::new();
    for _ in 0..600 {
        h.step();
        let now = h.start + TICK * h.tick as u32;
        for o in h.out.iter().filter(|o| o.endpoint == a && o.flow == Flow::Rtcp) {
            reports.push((now, o.bytes.clone()));
        }
    }
    // 12 s: the first report within 2.5 s, then every 2.5..7.5 s.
    assert!((2..=5).contains(&reports.len()), "{} reports in 12 s", reports.len());
    let mut srtcp_in = context(&keys(2));
    let (sent_at, mut bytes) = reports.pop().unwrap();
    srtcp_in.unprotect_rtcp(&mut bytes).unwrap();
    let packets = RtcpPacket::parse_compound(&bytes).unwrap();
    let RtcpPacket::SenderReport(sr) = &packets[0] else { panic!("{packets:?}") };
    assert_eq!(sr.reports.len(), 1);
    assert_eq!(sr.reports[0].ssrc, 0x1000 + a.0 as u32);
    assert_eq!(sr.reports[0].fraction_lost, 0);
    assert!(sr.packet_count > 0 && sr.octet_count > sr.packet_count);
    assert!(matches!(&packets[1], RtcpPacket::SourceDescription(s) if s.cname_of(sr.ssrc) == Some("confero")));

    // The endpoint answers 150 ms later, having held the SR for 50 ms: the
    // round trip is 100 ms. It reports 10 % loss and 480 units of jitter.
    let block = ReportBlock {
        ssrc: sr.ssrc,
        fraction_lost: 26,
        jitter: 480,
        last_sender_report: sr.ntp_time.compact(),
        delay_since_last_sender_report: 65536 / 20,
        ..ReportBlock::default()
    };
    let rr = RtcpPacket::ReceiverReport(ReceiverReport { ssrc: 0x1000 + a.0 as u32, reports: vec![block] });
    let mut answer = Vec::new();
    RtcpPacket::write_compound(&[rr], &mut answer).unwrap();
    let mut srtcp_out = context(&keys(1));
    srtcp_out.protect_rtcp(&mut answer).unwrap();
    let arrival = sent_at + Duration::from_millis(150);
    h.conf.receive(arrival, a, &mut answer).unwrap();
    let stats = h.conf.stats(a).unwrap();
    let rtt = stats.round_trip.unwrap();
    assert!(rtt.abs_diff(Duration::from_millis(100)) < Duration::from_millis(1), "{rtt:?}");
    assert_eq!((stats.tx_fraction_lost, stats.tx_jitter, stats.rtcp_in), (26, Duration::from_millis(10), 1));
    assert_eq!(stats.last_received, Some(arrival));

    // A tampered report is refused and counted.
    let mut forged = answer.clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    assert!(h.conf.receive(arrival, a, &mut forged).is_err());
    assert_eq!(h.conf.stats(a).unwrap().rtcp_in, 1);
}

/// RFC 4733: each event is reported once however many packets carry it
/// (updates, and the three ends senders repeat), and the audio stream's
/// loss statistics count the events' sequence numbers as received.
#[test]
fn engine_reports_each_telephone_event_once() {
    let mut conf = Conference::new(MixerConfig::default(), rand::SeedableRng::seed_from_u64(7));
    let id = EndpointId(1);
    let mut cfg = EndpointConfig::new(AudioFormat::OPUS_MONO, PT);
    cfg.telephone_event_pt = Some(101);
    conf.attach(id, cfg).unwrap();
    let t0 = Instant::now();
    let mut seq = 0u16;
    let mut send = |conf: &mut Conference, pt: u8, ts: u32, payload: &[u8]| {
        let header =
            RtpHeader { payload_type: pt, sequence_number: seq, timestamp: ts, ssrc: 7, ..RtpHeader::default() };
        seq += 1;
        let mut bytes = Vec::new();
        header.write_packet(payload, &mut bytes).unwrap();
        conf.receive(t0 + TICK * u32::from(seq), id, &mut bytes).unwrap();
    };
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let mut opus = Vec::new();
    encoder.encode(&[0; FRAME_SAMPLES], &mut opus).unwrap();
    for (k, event) in [1u8, 2, 11, 16].into_iter().enumerate() {
        let ts = 10_000 * (k as u32 + 1);
        send(&mut conf, PT, ts - 960, &opus);
        for (duration, end) in [(160u16, false), (320, false), (480, true), (480, true), (480, true)] {
            let payload = [event, if end { 0x8a } else { 0x0a }, (duration >> 8) as u8, duration as u8];
            send(&mut conf, 101, ts, &payload);
        }
    }
    let digits: Vec<char> = conf.take_dtmf().map(|(_, d)| d).collect();
    assert_eq!(digits, ['1', '2', '#'], "event 16 (flash) is not a digit");
    assert_eq!(conf.take_dtmf().count(), 0);
    let stats = conf.stats(id).unwrap();
    assert_eq!((stats.packets_in, stats.rx_lost, stats.wrong_payload_type), (24, 0, 0));
}

/// The lobby: an endpoint with a prompt hears the prompt, not the
/// conference, and the conference does not hear it; cleared, it joins with
/// the mutes the API set meanwhile.
#[test]
fn engine_plays_a_prompt_in_place_of_the_conference() {
    let mut h = Harness::new(0, 0);
    let guest = h.join(&[(400.0, 0)], false, true);
    let host = h.join(&[(700.0, 0)], false, true);
    h.conf.set_prompt(guest, Some(Prompt::enter_passcode())).unwrap();
    for _ in 0..150 {
        h.step();
    }
    // Three seconds: one whole loop of the prompt; each of its tones sounds
    // 150 ms of the 3.04 s, so at full level it measures 20·log10(0.15 / 3.04)
    // = -26 dB over the window.
    let heard = &h.ep(guest).heard;
    for f in [523.25, 659.25, 783.99] {
        let db = 20.0 * (goertzel_amplitude(&heard[..150 * FRAME_SAMPLES], f, 48_000) / 8000.0).log10();
        assert!((db + 26.2).abs() < 1.5, "prompt tone {f} Hz at {db:.1} dB");
    }
    assert!(h.heard_db(guest, 700.0) < -30.0, "the guest hears the conference");
    assert!(h.heard_db(host, 400.0) < -30.0, "the conference hears the guest");

    h.conf.set_tx_muted(guest, false).unwrap();
    h.conf.set_prompt(guest, None).unwrap();
    for _ in 0..100 {
        h.step();
    }
    assert!(h.heard_db(guest, 700.0).abs() < 1.0);
    assert!(h.heard_db(host, 400.0).abs() < 1.0);
}

/// `send_dtmf`: the keys go as RFC 4733 events in the endpoint's own RTP
/// stream (its SSRC, its sequence numbers, between its audio packets), and
/// a receiver of RFC 4733 (our own) reads back the same keys; an endpoint
/// without telephone-event, or a bad key, is refused.
#[test]
fn dtmf_sent_to_an_endpoint_goes_as_telephone_events_in_its_stream_and_reads_back() {
    use super::dtmf::{DtmfError, END_REPEATS, TONE_TICKS};
    let mut conf = Conference::new(MixerConfig::default(), rand::SeedableRng::seed_from_u64(7));
    let (plain, phone) = (EndpointId(1), EndpointId(2));
    conf.attach(plain, EndpointConfig::new(AudioFormat::PCMU, 0)).unwrap();
    let mut cfg = EndpointConfig::new(AudioFormat::PCMU, 0);
    cfg.telephone_event_pt = Some(101);
    conf.attach(phone, cfg.clone()).unwrap();
    assert!(matches!(conf.send_dtmf(plain, "1"), Err(EngineError::Dtmf(DtmfError::NotNegotiated))));
    assert!(matches!(conf.send_dtmf(phone, "1x"), Err(EngineError::Dtmf(DtmfError::BadKey('x')))));
    conf.send_dtmf(phone, "1#").unwrap();

    // The far end: an endpoint of another conference that takes events.
    let mut far = Conference::new(MixerConfig::default(), rand::SeedableRng::seed_from_u64(7));
    far.attach(EndpointId(9), cfg).unwrap();
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut seen: Vec<(u8, u16, u32, bool)> = Vec::new();
    for k in 0..40u32 {
        let now = t0 + TICK * k;
        conf.tick(now, &mut out).unwrap();
        for o in out.iter_mut().filter(|o| o.endpoint == phone && o.flow == Flow::Rtp) {
            let rtp = RtpPacket::parse(&o.bytes).unwrap();
            seen.push((rtp.payload_type(), rtp.sequence_number(), rtp.timestamp(), rtp.marker()));
            far.receive(now, EndpointId(9), &mut o.bytes).unwrap();
        }
        assert!(out
            .iter()
            .filter(|o| o.endpoint == plain)
            .all(|o| RtpPacket::parse(&o.bytes).is_err() || RtpPacket::parse(&o.bytes).unwrap().payload_type() == 0));
    }
    let events: Vec<_> = seen.iter().filter(|p| p.0 == 101).collect();
    assert_eq!(events.len() as u32, 2 * (TONE_TICKS + END_REPEATS));
    assert_eq!(events.iter().filter(|p| p.3).count(), 2, "one marker per key");
    assert!(seen.iter().any(|p| p.0 == 0), "audio between and after");
    for pair in seen.windows(2) {
        assert_eq!(pair[1].1, pair[0].1.wrapping_add(1), "one sequence for audio and events");
    }
    let digits: Vec<char> = far.take_dtmf().map(|(_, d)| d).collect();
    assert_eq!(digits, ['1', '#']);
}

/// DTLS-SRTP: an endpoint attached with its keys pending gets nothing (no
/// RTP, no RTCP, nothing in clear) and is not mixed; what it sends is
/// dropped and counted. Once its keys are set, media flows both ways.
#[test]
fn engine_passes_nothing_while_keys_are_pending_and_flows_once_they_are_set() {
    let mut h = Harness::new(0, 0);
    let a = h.join(&[(400.0, 0)], false, false);
    let b = h.join_keyed(&[(700.0, 0)], true, false, true);
    // 5 s: past the first RTCP report's time.
    for _ in 0..250 {
        h.step();
        assert!(!h.out.iter().any(|o| o.endpoint == b), "sent to {b:?} before its keys");
    }
    assert!(h.heard_db(a, 700.0) < -30.0, "the conference hears a stream with pending keys");
    let stats = h.conf.stats(b).unwrap();
    assert_eq!((stats.packets_in, stats.packets_out, stats.rtcp_out, stats.jitter.received), (0, 0, 0, 0));
    assert!(stats.unkeyed >= 250, "{stats:?}");
    assert_eq!(stats.auth_failures + stats.malformed, 0);

    h.conf.set_srtp_keys(b, MediaKind::Audio, &keys(3), &keys(4)).unwrap();
    for _ in 0..100 {
        h.step();
    }
    assert!(h.heard_db(a, 700.0).abs() < 1.5, "a hears {:.1} dB", h.heard_db(a, 700.0));
    assert!(h.heard_db(b, 400.0).abs() < 1.5, "b hears {:.1} dB", h.heard_db(b, 400.0));
    assert_eq!(
        h.conf.set_srtp_keys(EndpointId(99), MediaKind::Audio, &keys(3), &keys(4)),
        Err(EngineError::UnknownEndpoint(EndpointId(99)))
    );
}

/// Keys given at attach for a stream whose keys are to come later is a
/// caller's mistake, refused.
#[test]
fn engine_refuses_keys_at_attach_for_a_stream_whose_keys_are_pending() {
    let mut conf = Conference::new(MixerConfig::default(), rand::SeedableRng::seed_from_u64(7));
    let mut cfg = EndpointConfig::new(AudioFormat::OPUS_MONO, PT);
    cfg.srtp_in = Some(keys(1));
    cfg.srtp_pending = true;
    assert_eq!(conf.attach(EndpointId(1), cfg), Err(EngineError::KeysConflict));
    assert!(conf.is_empty());
}
