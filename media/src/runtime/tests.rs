//! The runtime over real UDP on loopback, in real time: endpoints are
//! sockets with their own Opus encoders and decoders. These check what
//! arrives and what is heard, never how fast.

use super::*;
use crate::codec::tone::{goertzel_amplitude, sine};
use crate::codec::{AudioDecoder, AudioEncoder, AudioFormat, OpusConfig, OpusDecoder, OpusEncoder, FRAME_SAMPLES};
use crate::engine::SrtpKeys;
use crate::rtcp::{self, RtcpPacket};
use crate::rtp::{RtpHeader, RtpPacket};
use crate::srtp::{SrtpContext, SrtpProfile};
use crate::transport::dtls::{DtlsIdentity, Fingerprint};
use crate::transport::ice::IceCredentials;
use std::time::Instant;

const PT: u8 = 111;
const AMP: f64 = 6000.0;

struct Phone {
    socket: UdpSocket,
    rtcp: Option<UdpSocket>,
    encoder: OpusEncoder,
    ear: OpusDecoder,
    tone: f64,
    seq: u16,
    heard: Vec<i16>,
    srtp_out: Option<SrtpContext>,
    srtp_in: Option<SrtpContext>,
    rtcp_seen: usize,
    to: Option<SocketAddr>,
}

fn keys(n: u8) -> SrtpKeys {
    SrtpKeys { profile: SrtpProfile::AesCm128HmacSha1_80, key: vec![n; 16], salt: vec![n ^ 0x33; 14] }
}

impl Phone {
    fn new(tone: f64) -> Self {
        Self::on("127.0.0.1", tone)
    }

    fn on(ip: &str, tone: f64) -> Self {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        socket.set_nonblocking(true).unwrap();
        Self {
            socket,
            rtcp: None,
            encoder: OpusEncoder::new(&OpusConfig::default()).unwrap(),
            ear: OpusDecoder::new(1).unwrap(),
            tone,
            seq: 0,
            heard: Vec::new(),
            srtp_out: None,
            srtp_in: None,
            rtcp_seen: 0,
            to: None,
        }
    }

    fn spec(&mut self, srtp: Option<u8>, separate_rtcp: bool) -> EndpointSpec {
        let mut config = EndpointConfig::new(AudioFormat::OPUS_MONO, PT);
        if let Some(n) = srtp {
            config.srtp_in = Some(keys(n));
            config.srtp_out = Some(keys(n + 1));
            self.srtp_out =
                Some(SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &[n; 16], &[n ^ 0x33; 14]).unwrap());
            self.srtp_in =
                Some(SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &[n + 1; 16], &[(n + 1) ^ 0x33; 14]).unwrap());
        }
        let remote_rtcp = separate_rtcp.then(|| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            let a = s.local_addr().unwrap();
            self.rtcp = Some(s);
            a
        });
        let mut transport = RtpTransport::new(self.socket.local_addr().unwrap());
        transport.audio.rtcp = remote_rtcp;
        EndpointSpec { config, video: None, transport: MediaTransport::Rtp(transport) }
    }

    fn send(&mut self) {
        let Some(to) = self.to else { return };
        let k = usize::from(self.seq);
        let frame = sine(self.tone, AMP, 48_000, k * FRAME_SAMPLES, FRAME_SAMPLES);
        let mut payload = Vec::new();
        self.encoder.encode(&frame, &mut payload).unwrap();
        let header = RtpHeader {
            payload_type: PT,
            sequence_number: self.seq,
            timestamp: (k * FRAME_SAMPLES) as u32,
            ssrc: 0xabc0 + self.tone as u32,
            ..RtpHeader::default()
        };
        self.seq = self.seq.wrapping_add(1);
        let mut bytes = Vec::new();
        header.write_packet(&payload, &mut bytes).unwrap();
        if let Some(s) = &mut self.srtp_out {
            s.protect_rtp(&mut bytes).unwrap();
        }
        self.socket.send_to(&bytes, to).unwrap();
    }

    fn listen(&mut self) {
        let mut buf = [0u8; 1500];
        let mut pcm = vec![0i16; FRAME_SAMPLES];
        while let Ok((n, _)) = self.socket.recv_from(&mut buf) {
            let mut bytes = buf[..n].to_vec();
            if rtcp::is_rtcp(&bytes) {
                self.rtcp_seen += 1;
                continue;
            }
            if let Some(s) = &mut self.srtp_in {
                s.unprotect_rtp(&mut bytes).unwrap();
            }
            let rtp = RtpPacket::parse(&bytes).unwrap();
            self.ear.decode(rtp.payload(), &mut pcm).unwrap();
            self.heard.extend_from_slice(&pcm);
        }
        if let Some(r) = &self.rtcp {
            while let Ok((n, _)) = r.recv_from(&mut buf) {
                let mut bytes = buf[..n].to_vec();
                if let Some(s) = &mut self.srtp_in {
                    s.unprotect_rtcp(&mut bytes).unwrap();
                }
                assert!(matches!(RtcpPacket::parse_compound(&bytes).unwrap()[0], RtcpPacket::SenderReport(_)));
                self.rtcp_seen += 1;
            }
        }
    }

    /// dB of `freq` in the last half second heard, relative to what was sent.
    fn heard_db(&self, freq: f64) -> f64 {
        let tail = &self.heard[self.heard.len().saturating_sub(25 * FRAME_SAMPLES)..];
        20.0 * (goertzel_amplitude(tail, freq, 48_000) / AMP).log10()
    }
}

fn events() -> (EventSink, mpsc::Receiver<MediaEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    (Arc::new(move |e| drop(lock(&tx).send(e))), rx)
}

/// Runs the phones in real time for `ticks` × 20 ms.
fn talk(phones: &mut [Phone], ticks: usize) {
    let start = Instant::now();
    for k in 0..ticks {
        for p in phones.iter_mut() {
            p.send();
            p.listen();
        }
        let next = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[test]
fn three_phones_over_udp_hear_each_other_and_not_themselves() {
    let (sink, events) = events();
    let rt = MediaRuntime::start(RuntimeConfig { workers: 2, ..RuntimeConfig::default() }, sink).unwrap();
    let conf = rt.create_conference().unwrap();
    let mut phones: Vec<Phone> = [440.0, 700.0, 1100.0].into_iter().map(Phone::new).collect();
    for (i, p) in phones.iter_mut().enumerate() {
        // The first over SRTP with RTCP on its own port; the others plain, muxed.
        let spec = p.spec((i == 0).then_some(10), i == 0);
        let a = rt.attach(conf, spec).unwrap();
        p.to = Some(a.local_rtp);
        assert_eq!(a.local_rtp.port() % 2, 0);
        assert_eq!(a.local_rtcp.port(), a.local_rtp.port() + 1);
        assert_eq!(rt.conference_addresses(conf).unwrap(), (a.local_rtp, a.local_rtcp));
    }
    talk(&mut phones, 400);
    let tones = [440.0, 700.0, 1100.0];
    for (i, p) in phones.iter().enumerate() {
        assert!(p.heard.len() > 300 * FRAME_SAMPLES, "phone {i} heard {} frames", p.heard.len() / FRAME_SAMPLES);
        for (j, &f) in tones.iter().enumerate() {
            let db = p.heard_db(f);
            if i == j {
                assert!(db < -30.0, "phone {i} hears itself at {db:.1} dB");
            } else {
                assert!(db.abs() < 1.5, "phone {i} hears {f} Hz at {db:.2} dB");
            }
        }
        // Reports arrive: to the RTCP port when separate, muxed otherwise.
        assert!(p.rtcp_seen >= 1, "phone {i} got no RTCP");
    }
    let stats = rt.stats();
    // As published up to a second ago.
    assert!(stats.ticks >= 300 && stats.datagrams_in >= 900 && stats.datagrams_out >= 900, "{stats:?}");
    assert_eq!((stats.unknown_source, stats.refused), (0, 0));
    let a = rt.endpoint_stats(EndpointId(2)).unwrap();
    assert!(a.packets_in > 300 && a.packets_out > 300 && a.auth_failures == 0, "{a:?}");
    // Someone was the active speaker.
    assert!(events.try_iter().any(|e| matches!(e, MediaEvent::ActiveSpeaker { endpoint: Some(_), .. })));
}

#[test]
fn a_phone_behind_nat_is_latched_and_a_silent_one_times_out() {
    let (sink, events) = events();
    let config = RuntimeConfig { workers: 1, media_timeout: Duration::from_secs(1), ..RuntimeConfig::default() };
    let rt = MediaRuntime::start(config, sink).unwrap();
    let conf = rt.create_conference().unwrap();
    let mut talker = Phone::new(500.0);
    let mut natted = Phone::new(900.0);
    // Another host: a NAT'd source is latched only to an endpoint of the
    // same host that has not yet sent from its signalled address.
    let mut quiet = Phone::on("127.0.0.2", 0.0);
    let a = rt.attach(conf, talker.spec(None, false)).unwrap();
    talker.to = Some(a.local_rtp);
    let c = rt.attach(conf, quiet.spec(None, false)).unwrap();
    let mut phones = [talker];
    talk(&mut phones, 5);
    // Signalled on one port, sends from another (its NAT's).
    let mut spec = natted.spec(None, false);
    let MediaTransport::Rtp(transport) = &mut spec.transport else { unreachable!("a SIP endpoint's spec") };
    transport.audio.rtp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let b = rt.attach(conf, spec).unwrap();
    natted.to = Some(b.local_rtp);
    let [talker] = phones;
    talk(&mut [talker, natted], 150);
    quiet.listen();
    let (db500, db900) = (quiet.heard_db(500.0), quiet.heard_db(900.0));
    assert!(db500.abs() < 1.5 && db900.abs() < 1.5, "{db500:.1} dB, {db900:.1} dB");
    let timeouts: Vec<_> = events
        .try_iter()
        .filter_map(|e| if let MediaEvent::MediaTimeout { endpoint, .. } = e { Some(endpoint) } else { None })
        .collect();
    assert_eq!(timeouts, vec![c.id]);
    assert_eq!(rt.stats().unknown_source, 0);

    // Detached, it gets nothing more; the conference ends cleanly.
    rt.detach(c.id).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    quiet.listen();
    let before = quiet.heard.len();
    std::thread::sleep(Duration::from_millis(200));
    quiet.listen();
    assert_eq!(quiet.heard.len(), before);
    assert!(matches!(rt.detach(c.id), Err(RuntimeError::UnknownEndpoint(_))));
    rt.end_conference(conf).unwrap();
    assert!(matches!(rt.attach(conf, quiet.spec(None, false)), Err(RuntimeError::UnknownConference(_))));
}

/// `attach` answers at once with the worker's addresses; an endpoint the
/// worker's engine then refuses is reported through the event sink.
#[test]
fn attach_answers_at_once_and_a_refused_endpoint_is_reported_as_an_event() {
    let (sink, events) = events();
    let rt = MediaRuntime::start(RuntimeConfig { workers: 1, ..RuntimeConfig::default() }, sink).unwrap();
    let conf = rt.create_conference().unwrap();
    let mut phone = Phone::new(440.0);
    // Keys at attach for a stream whose keys are to come later: refused.
    let mut spec = phone.spec(Some(10), false);
    spec.config.srtp_pending = true;
    let a = rt.attach(conf, spec).unwrap();
    assert_eq!(rt.conference_addresses(conf).unwrap(), (a.local_rtp, a.local_rtcp));
    let event = events.recv_timeout(Duration::from_secs(5)).unwrap();
    let MediaEvent::AttachFailed { conference, endpoint, reason } = event else { panic!("{event:?}") };
    assert_eq!((conference, endpoint), (conf, a.id));
    assert!(reason.contains("SRTP keys"), "{reason}");
    rt.detach(a.id).unwrap();

    // Video needs an address.
    let mut spec = phone.spec(None, false);
    spec.video = Some(VideoConfig::new(96));
    assert!(matches!(rt.attach(conf, spec), Err(RuntimeError::NoVideoAddress)));
}

/// DTLS-SRTP through the runtime: a phone attached with its keys pending
/// gets nothing and is not heard; once its keys are set, both hear.
#[test]
fn a_phone_whose_keys_come_later_is_heard_and_hears_once_they_are_set() {
    let (sink, _events) = events();
    let rt = MediaRuntime::start(RuntimeConfig { workers: 1, ..RuntimeConfig::default() }, sink).unwrap();
    let conf = rt.create_conference().unwrap();
    let mut plain = Phone::new(500.0);
    let mut keyed = Phone::new(900.0);
    let a = rt.attach(conf, plain.spec(None, false)).unwrap();
    plain.to = Some(a.local_rtp);
    let mut spec = keyed.spec(Some(20), false);
    let (inbound, outbound) = (spec.config.srtp_in.take().unwrap(), spec.config.srtp_out.take().unwrap());
    spec.config.srtp_pending = true;
    let b = rt.attach(conf, spec).unwrap();
    keyed.to = Some(b.local_rtp);
    let mut phones = [plain, keyed];
    talk(&mut phones, 75);
    // Anything sent in clear would fail the phone's SRTP unprotect.
    assert_eq!((phones[1].heard.len(), phones[1].rtcp_seen), (0, 0));
    assert!(phones[0].heard_db(900.0) < -30.0, "heard at {:.1} dB before keys", phones[0].heard_db(900.0));

    rt.set_srtp_keys(b.id, MediaKind::Audio, inbound, outbound).unwrap();
    talk(&mut phones, 150);
    let (db900, db500) = (phones[0].heard_db(900.0), phones[1].heard_db(500.0));
    assert!(db900.abs() < 1.5 && db500.abs() < 1.5, "{db900:.1} dB, {db500:.1} dB");
    let bad = SrtpKeys { profile: SrtpProfile::AesCm128HmacSha1_80, key: vec![1; 3], salt: vec![1; 14] };
    assert!(matches!(rt.set_srtp_keys(b.id, MediaKind::Audio, bad.clone(), bad), Err(RuntimeError::Engine(_))));
}

/// What a browser does before media flows, done with our own sans-IO
/// pieces on the phone's socket: a nominating ICE check to the bridge's
/// worker, then the DTLS client handshake; the phone's SRTP is keyed with
/// what DTLS exported.
fn connect_like_a_browser(
    phone: &mut Phone,
    bridge: SocketAddr,
    bridge_ice: &IceCredentials,
    bridge_fp: &Fingerprint,
    browser_ufrag: &str,
    identity: &DtlsIdentity,
) {
    use crate::transport::dtls::{DtlsEvent, DtlsSession};
    use crate::transport::stun;
    let mut buf = [0u8; 1500];
    let mut check = Vec::new();
    let tid = [9u8; 12];
    stun::binding_request(&tid, &format!("{}:{browser_ufrag}", bridge_ice.ufrag), &bridge_ice.pwd, true, &mut check);
    phone.socket.send_to(&check, bridge).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no answer to the ICE check");
        if let Ok((n, _)) = phone.socket.recv_from(&mut buf) {
            assert!(stun::is_success_for(&buf[..n], &tid), "the check was refused");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut dtls = DtlsSession::new(identity, bridge_fp.clone(), true, Instant::now());
    let socket = phone.socket.try_clone().unwrap();
    let mut send = |p: &[u8]| drop(socket.send_to(p, bridge));
    let mut keys = dtls.handle_timeout(Instant::now(), &mut send);
    while keys.is_none() {
        assert!(Instant::now() < deadline, "no DTLS handshake");
        match phone.socket.recv_from(&mut buf) {
            Ok((n, _)) => keys = dtls.handle_packet(Instant::now(), &buf[..n], &mut send),
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                keys = dtls.handle_timeout(Instant::now(), &mut send);
            }
        }
    }
    let Some(DtlsEvent::Keys { inbound, outbound }) = keys else { panic!("DTLS: {keys:?}") };
    phone.srtp_in = Some(SrtpContext::new(inbound.profile, &inbound.key, &inbound.salt).unwrap());
    phone.srtp_out = Some(SrtpContext::new(outbound.profile, &outbound.key, &outbound.salt).unwrap());
}

/// A browser endpoint: nothing flows until its ICE check and DTLS
/// handshake; then it hears and is heard like any phone, over SRTP keyed
/// by DTLS (AES-256-GCM, the first profile browsers offer), all on the
/// worker's one audio port.
#[test]
fn a_browser_endpoint_is_found_by_ice_keyed_by_dtls_and_heard() {
    use crate::transport::dtls::DtlsIdentity;
    use rand::SeedableRng;
    let (sink, events) = events();
    let rt = MediaRuntime::start(RuntimeConfig { workers: 1, ..RuntimeConfig::default() }, sink).unwrap();
    let conf = rt.create_conference().unwrap();
    let mut plain = Phone::new(500.0);
    let a = rt.attach(conf, plain.spec(None, false)).unwrap();
    plain.to = Some(a.local_rtp);

    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let (bridge_ice, browser_ice) = (IceCredentials::random(&mut rng), IceCredentials::random(&mut rng));
    let identity = DtlsIdentity::generate().unwrap();
    let transport = IceTransport {
        local: bridge_ice.clone(),
        remote_ufrag: browser_ice.ufrag.clone(),
        remote_fingerprint: identity.fingerprint().clone(),
        dtls_active: false,
        video_payload_types: vec![],
        audio_ssrcs: vec![],
        video_ssrcs: vec![],
    };
    let mut browser = Phone::new(900.0);
    let spec = EndpointSpec {
        config: EndpointConfig::new(AudioFormat::OPUS_MONO, PT),
        video: None,
        transport: MediaTransport::Ice(transport),
    };
    let b = rt.attach(conf, spec).unwrap();
    assert_eq!(b.local_rtp, a.local_rtp, "browsers share the worker's audio port");
    // A check with the wrong password is refused and selects nothing.
    let mut bad = Vec::new();
    crate::transport::stun::binding_request(
        &[1; 12],
        &format!("{}:{}", bridge_ice.ufrag, browser_ice.ufrag),
        "wrong-password-wrong-pw",
        true,
        &mut bad,
    );
    browser.socket.send_to(&bad, b.local_rtp).unwrap();
    talk(std::slice::from_mut(&mut plain), 10);
    let mut buf = [0u8; 1500];
    let (n, _) = browser.socket.recv_from(&mut buf).unwrap_or((0, b.local_rtp));
    assert!(n == 0 || !crate::transport::stun::is_success_for(&buf[..n], &[1; 12]));

    connect_like_a_browser(
        &mut browser,
        b.local_rtp,
        &bridge_ice,
        rt.dtls_fingerprint(),
        &browser_ice.ufrag,
        &identity,
    );
    assert_eq!(browser.srtp_out.as_ref().unwrap().profile(), SrtpProfile::AeadAes256Gcm);
    browser.to = Some(b.local_rtp);
    let mut phones = [plain, browser];
    talk(&mut phones, 150);
    let (db900, db500) = (phones[0].heard_db(900.0), phones[1].heard_db(500.0));
    assert!(db900.abs() < 1.5 && db500.abs() < 1.5, "{db900:.1} dB, {db500:.1} dB");
    let stats = rt.endpoint_stats(b.id).unwrap();
    assert!(stats.packets_in > 100 && stats.auth_failures == 0, "{stats:?}");
    assert!(!events.try_iter().any(|e| matches!(e, MediaEvent::AttachFailed { .. })));
}

/// An endpoint's H.224 side: its socket and its own session (the same
/// sans-IO core, facing the runtime's).
struct Camera {
    socket: UdpSocket,
    session: crate::fecc::FeccSession,
}

impl Camera {
    /// A camera whose stream is SRTP-keyed with `n` (its sending key) and
    /// `n + 1`; the stream to attach for it.
    fn new(n: u8, ssrc: u32) -> (Camera, FeccStream) {
        use crate::fecc::FeccConfig;
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let config = |ssrc, rx, tx| FeccConfig {
            payload_type: 107,
            ssrc,
            srtp_in: Some(keys(rx)),
            srtp_out: Some(keys(tx)),
            sends: true,
        };
        let session = crate::fecc::FeccSession::new(config(ssrc, n + 1, n), Instant::now()).unwrap();
        let addresses = RtpAddresses { rtp: socket.local_addr().unwrap(), rtcp: None };
        (Camera { socket, session }, FeccStream { addresses, config: config(0xfecc, n, n + 1) })
    }

    /// Sends what its session has to `to`.
    fn flush(&mut self, to: SocketAddr) {
        while let Some(d) = self.session.poll_transmit() {
            self.socket.send_to(&d, to).unwrap();
        }
    }

    /// What it receives for up to `limit` (answering the runtime's CME
    /// commands as an endpoint does).
    fn receive(&mut self, limit: Duration, to: SocketAddr) -> Vec<crate::fecc::FeccInput> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let mut datagram = buf[..n].to_vec();
                if let Ok(Some(input)) = self.session.handle_datagram(Instant::now(), &mut datagram) {
                    got.push(input);
                }
                self.flush(to);
            }
        }
        got
    }
}

#[test]
fn far_end_cameras_are_announced_moved_and_relayed_over_their_own_srtp_stream() {
    use crate::fecc::{FeccInput, Move, Moves, H281};
    let (sink, events) = events();
    let rt = MediaRuntime::start(RuntimeConfig { workers: 1, ..RuntimeConfig::default() }, sink).unwrap();
    let conference = rt.create_conference().unwrap();
    let to = rt.fecc_address();
    let mut ids = Vec::new();
    let mut cameras = Vec::new();
    for n in [10u8, 20] {
        let mut phone = Phone::new(440.0);
        let mut spec = phone.spec(None, false);
        let (mut camera, stream) = Camera::new(n, u32::from(n));
        let MediaTransport::Rtp(transport) = &mut spec.transport else { unreachable!() };
        transport.fecc = Some(stream);
        ids.push(rt.attach(conference, spec).unwrap().id);
        // The endpoint announces itself as endpoints do when their stream starts.
        camera.session.handle_timeout(Instant::now());
        camera.flush(to);
        cameras.push(camera);
    }
    // Each camera hears Confero's H.281 client, and Confero reports each camera once.
    for camera in &mut cameras {
        let got = camera.receive(Duration::from_millis(500), to);
        assert!(got.contains(&FeccInput::CameraControlAvailable), "{got:?}");
    }
    let mut available = Vec::new();
    while let Ok(event) = events.recv_timeout(Duration::from_millis(500)) {
        if let MediaEvent::CameraControlAvailable { endpoint, .. } = event {
            available.push(endpoint);
        }
    }
    available.sort();
    assert_eq!(available, ids);

    // The API nudges the first camera: START, then STOP half a second later.
    let moves = Moves::of(&[Move::PanLeft]);
    rt.camera_control(ids[0], moves).unwrap();
    let got = cameras[0].receive(Duration::from_millis(900), to);
    assert_eq!(got, [FeccInput::Camera(H281::Start { moves, timeout: 0 }), FeccInput::Camera(H281::Stop(moves))]);

    // The second endpoint's controls come up as events, and relayed reach the first camera.
    let up = Moves::of(&[Move::TiltUp]);
    cameras[1].session.relay(Instant::now(), H281::Start { moves: up, timeout: 0 });
    cameras[1].flush(to);
    let message = loop {
        match events.recv_timeout(Duration::from_secs(2)).expect("no CameraControl event") {
            MediaEvent::CameraControl { endpoint, message, .. } if endpoint == ids[1] => break message,
            _ => {}
        }
    };
    assert_eq!(message, H281::Start { moves: up, timeout: 0 });
    rt.relay_camera_control(ids[0], message).unwrap();
    assert_eq!(cameras[0].receive(Duration::from_millis(300), to), [FeccInput::Camera(message)]);

    // Detached, a camera is sent nothing more.
    rt.detach(ids[0]).unwrap();
    assert!(rt.camera_control(ids[0], moves).is_err());
    rt.relay_camera_control(ids[1], message).unwrap();
    assert_eq!(cameras[1].receive(Duration::from_millis(300), to), [FeccInput::Camera(message)]);
    assert!(cameras[0].receive(Duration::from_millis(300), to).is_empty());
}
