//! A whole bridge in one thread and virtual time, in the spirit of quinn's
//! `Pair`: the sans-IO [`Bridge`], our [`SipSignalling`], SIP phones (each a
//! `confero-sip` user agent of its own) on an in-memory network, a fake media
//! engine that records what it is asked, a DNS table, and a clock that only
//! moves when a test says so. No sockets, no sleeps, no threads.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use confero_media::engine::{EndpointId, EndpointStats, Prompt, VideoSettings};
use confero_media::fecc::{Moves, H281};
use confero_media::runtime::{AttachedEndpoint, ConferenceId, EndpointSpec, MediaEvent, RuntimeError, RuntimeStats};
use confero_sdp::{self as sdp, AudioOffer, Direction, LocalMedia, MediaEncryption, SessionDescription};
use confero_sip::message::Message;
use confero_sip::transaction::{Peer, Transport};
use confero_sip::ua::{CallHandle, Dial, UaConfig, UaEvent, UserAgent};
use confero_store::Store;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::super::{Bridge, BridgeConfig, CdrRecord, MediaPort, Output};
use crate::sip::SipSignalling;

/// Our SIP address on the in-memory network.
pub const BRIDGE_SIP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
/// Where the fake media engine says a conference takes audio and video.
const MEDIA_AUDIO: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20_000);
const MEDIA_VIDEO: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20_002);
/// Where it says H.224 streams go.
pub const MEDIA_FECC: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20_004);

/// One endpoint as the fake media engine holds it.
#[derive(Debug, Clone)]
pub struct FakeEndpoint {
    pub conference: ConferenceId,
    pub spec: EndpointSpec,
    pub prompt: Option<Prompt>,
    pub rx_muted: bool,
    pub tx_muted: bool,
    pub video: Option<VideoSettings>,
    pub dtmf: Vec<String>,
    /// `generate_keyframe` calls.
    pub keyframes: u32,
    /// What its camera was sent: `camera_control` nudges as STARTs, and
    /// relayed messages.
    pub camera: Vec<H281>,
}

/// What the fake media engine was asked.
#[derive(Debug, Default)]
pub struct FakeState {
    next_id: u64,
    pub conferences: Vec<ConferenceId>,
    pub endpoints: BTreeMap<EndpointId, FakeEndpoint>,
    pub detached: Vec<EndpointId>,
    /// Refuse new conferences (the media engine is out of capacity).
    pub full: bool,
}

/// A media engine that only records.
#[derive(Debug, Default)]
pub struct FakeMedia {
    state: Mutex<FakeState>,
}

impl FakeMedia {
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn endpoint(&self, id: EndpointId, f: impl FnOnce(&mut FakeEndpoint)) -> Result<(), RuntimeError> {
        let mut state = self.state();
        let e = state.endpoints.get_mut(&id).ok_or(RuntimeError::UnknownEndpoint(id))?;
        f(e);
        Ok(())
    }
}

impl MediaPort for FakeMedia {
    fn create_conference(&self) -> Result<ConferenceId, RuntimeError> {
        let mut state = self.state();
        if state.full {
            return Err(RuntimeError::Stopped);
        }
        state.next_id += 1;
        let id = ConferenceId(state.next_id);
        state.conferences.push(id);
        Ok(id)
    }
    fn end_conference(&self, id: ConferenceId) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.conferences.retain(|c| *c != id);
        state.endpoints.retain(|_, e| e.conference != id);
        Ok(())
    }
    fn conference_addresses(&self, id: ConferenceId) -> Result<(SocketAddr, SocketAddr), RuntimeError> {
        let known = self.state().conferences.contains(&id);
        known
            .then_some((MEDIA_AUDIO, SocketAddr::new(MEDIA_AUDIO.ip(), MEDIA_AUDIO.port() + 1)))
            .ok_or(RuntimeError::UnknownConference(id))
    }
    fn conference_video_addresses(&self, id: ConferenceId) -> Result<(SocketAddr, SocketAddr), RuntimeError> {
        let known = self.state().conferences.contains(&id);
        known
            .then_some((MEDIA_VIDEO, SocketAddr::new(MEDIA_VIDEO.ip(), MEDIA_VIDEO.port() + 1)))
            .ok_or(RuntimeError::UnknownConference(id))
    }
    fn attach(&self, conference: ConferenceId, spec: EndpointSpec) -> Result<AttachedEndpoint, RuntimeError> {
        let mut state = self.state();
        if !state.conferences.contains(&conference) {
            return Err(RuntimeError::UnknownConference(conference));
        }
        state.next_id += 1;
        let id = EndpointId(state.next_id);
        let prompt = spec.config.prompt.clone();
        let endpoint = FakeEndpoint {
            conference,
            spec,
            prompt,
            rx_muted: false,
            tx_muted: false,
            video: None,
            dtmf: Vec::new(),
            keyframes: 0,
            camera: Vec::new(),
        };
        state.endpoints.insert(id, endpoint);
        Ok(AttachedEndpoint {
            id,
            local_rtp: MEDIA_AUDIO,
            local_rtcp: MEDIA_AUDIO,
            local_video_rtp: MEDIA_VIDEO,
            local_video_rtcp: MEDIA_VIDEO,
        })
    }
    fn detach(&self, id: EndpointId) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.endpoints.remove(&id).ok_or(RuntimeError::UnknownEndpoint(id))?;
        state.detached.push(id);
        Ok(())
    }
    fn set_rx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.rx_muted = muted)
    }
    fn set_tx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.tx_muted = muted)
    }
    fn set_importance(&self, id: EndpointId, _importance: i32) -> Result<(), RuntimeError> {
        self.endpoint(id, |_| {})
    }
    fn send_dtmf(&self, id: EndpointId, sequence: &str) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.dtmf.push(sequence.to_string()))
    }
    fn set_video(&self, id: EndpointId, settings: VideoSettings) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.video = Some(settings))
    }
    fn generate_keyframe(&self, id: EndpointId) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.keyframes += 1)
    }
    fn fecc_address(&self) -> SocketAddr {
        MEDIA_FECC
    }
    fn camera_control(&self, id: EndpointId, moves: Moves) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.camera.push(H281::Start { moves, timeout: 0 }))
    }
    fn relay_camera_control(&self, id: EndpointId, message: H281) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.camera.push(message))
    }
    fn set_prompt(&self, id: EndpointId, prompt: Option<Prompt>) -> Result<(), RuntimeError> {
        self.endpoint(id, |e| e.prompt = prompt)
    }
    fn endpoint_stats(&self, _id: EndpointId) -> Option<EndpointStats> {
        None
    }
    fn dtls_fingerprint(&self) -> String {
        format!("sha-256 {}", ["AB"; 32].join(":"))
    }
    fn stats(&self) -> RuntimeStats {
        RuntimeStats::default()
    }
}

/// A SIP phone on the in-memory network.
pub struct Phone {
    pub ua: UserAgent,
    pub addr: SocketAddr,
    /// Everything its user agent reported, in order.
    pub events: Vec<UaEvent>,
    /// The SIP messages it received, in order.
    pub received: Vec<Message>,
    /// The CSeq of the last request the test crafted for it (INFO).
    pub crafted_cseq: u32,
    rng: StdRng,
}

impl Phone {
    /// The phone's SDP offer: Opus/G.711 at its own RTP port, sending and
    /// receiving (`direction` sendonly puts the bridge on hold).
    pub fn offer(&mut self, direction: Direction, version: u64) -> Vec<u8> {
        let local = LocalMedia {
            address: self.addr.ip(),
            audio_port: self.addr.port() + 10_000,
            session_id: 7,
            session_version: version,
            direction,
        };
        AudioOffer::new(&local, MediaEncryption::Optional, &mut self.rng).sdp.to_text().into_bytes()
    }

    /// Its answer to an offer it was sent.
    pub fn answer(&mut self, offer: &[u8]) -> Vec<u8> {
        let offer = SessionDescription::parse(offer).expect("our offer parses");
        let local = LocalMedia {
            address: self.addr.ip(),
            audio_port: self.addr.port() + 10_000,
            session_id: 9,
            session_version: 1,
            direction: Direction::SendRecv,
        };
        let (mut answer, _) =
            sdp::answer(&offer, &local, MediaEncryption::Optional, &mut self.rng).expect("our offer is answerable");
        // Phones take far-end camera control when offered.
        let fecc_port = self.addr.port() + 10_004;
        sdp::answer_fecc(&mut answer, &offer, fecc_port, MediaEncryption::Optional, &mut self.rng);
        answer.to_text().into_bytes()
    }

    /// The calls it has been offered (dial-outs reaching it), in order.
    pub fn incoming(&self) -> Vec<(CallHandle, Vec<u8>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                UaEvent::IncomingCall(c) => Some((c.call, c.offer.clone().unwrap_or_default())),
                _ => None,
            })
            .collect()
    }

    /// Whether its call `h` was answered.
    pub fn answered(&self, h: CallHandle) -> bool {
        self.events.iter().any(|e| matches!(e, UaEvent::Answered { call, .. } if *call == h))
    }

    /// The final failure status of its call `h`, if it failed.
    pub fn failed(&self, h: CallHandle) -> Option<u16> {
        self.events.iter().find_map(|e| match e {
            UaEvent::Failed { call, code, .. } if *call == h => Some(*code),
            _ => None,
        })
    }

    /// Whether its call `h` was ended by the far end.
    pub fn hung_up_on(&self, h: CallHandle) -> bool {
        self.events.iter().any(|e| matches!(e, UaEvent::Ended { call, .. } if *call == h))
    }
}

/// The bridge, its SIP signalling and the phones, in virtual time.
pub struct Harness {
    pub now: Instant,
    pub bridge: Bridge,
    pub sip: SipSignalling,
    pub phones: Vec<Phone>,
    pub media: Arc<FakeMedia>,
    /// Every CDR the bridge emitted, in order.
    pub cdrs: Vec<CdrRecord>,
    /// Names the fake DNS resolves.
    pub dns: HashMap<String, IpAddr>,
    /// Names located to several servers in order (as SRV records give).
    pub servers: HashMap<String, Vec<Peer>>,
    pub store: Arc<dyn Store>,
    /// The recorded prompts the bridge reads (filled by tests).
    pub branding: Arc<crate::bridge::branding::Branding>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A bridge whose user agent takes at most `max_calls` calls.
    pub fn with_max_calls(max_calls: usize) -> Harness {
        let (dir, store) = crate::testing::store();
        let media = Arc::new(FakeMedia::default());
        let branding = Arc::new(crate::bridge::branding::Branding::default());
        let config = BridgeConfig { video: true, sip_local: Some(BRIDGE_SIP), branding: branding.clone() };
        let bridge = Bridge::new(store.clone(), media.clone(), config, Box::new(StdRng::seed_from_u64(1)));
        let ua = UserAgent::new(
            UaConfig { local_addr: BRIDGE_SIP, max_calls, ..UaConfig::default() },
            Box::new(StdRng::seed_from_u64(2)),
        );
        Harness {
            now: Instant::now(),
            bridge,
            sip: SipSignalling::new(ua, Box::new(StdRng::seed_from_u64(3))),
            phones: Vec::new(),
            media,
            cdrs: Vec::new(),
            dns: HashMap::new(),
            servers: HashMap::new(),
            store,
            branding,
            _dir: dir,
        }
    }

    pub fn new() -> Harness {
        Harness::with_max_calls(10_000)
    }

    /// A new phone at 127.0.0.1:5070, :5071, ...; returns its index.
    pub fn phone(&mut self) -> usize {
        let n = self.phones.len();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5070 + n as u16);
        let ua = UserAgent::new(
            UaConfig { local_addr: addr, contact_user: format!("phone{n}"), ..UaConfig::default() },
            Box::new(StdRng::seed_from_u64(100 + n as u64)),
        );
        let rng = StdRng::seed_from_u64(200 + n as u64);
        self.phones.push(Phone { ua, addr, events: Vec::new(), received: Vec::new(), crafted_cseq: 100, rng });
        n
    }

    /// Phone `p` calls `user@` the bridge with a fresh offer.
    pub fn dial_in(&mut self, p: usize, user: &str) -> CallHandle {
        let offer = self.phones[p].offer(Direction::SendRecv, 1);
        self.dial_in_with(p, user, offer)
    }

    /// Phone `p` calls `user@` the bridge with `offer`.
    pub fn dial_in_with(&mut self, p: usize, user: &str, offer: Vec<u8>) -> CallHandle {
        let phone = &mut self.phones[p];
        let dial = Dial {
            target: format!("sip:{user}@{}", BRIDGE_SIP.ip()),
            from: format!("sip:phone{p}@{}", phone.addr),
            display_name: Some(format!("Phone {p}")),
            offer,
            destination: Peer { transport: Transport::Udp, addr: BRIDGE_SIP },
            route: None,
            contact_domain: None,
        };
        let h = phone.ua.dial(self.now, dial).expect("a dialable target");
        self.settle();
        h
    }

    /// Runs the bridge's API (or any input) at the current time, then
    /// settles.
    pub fn with<T>(&mut self, f: impl FnOnce(&mut Bridge, Instant) -> T) -> T {
        let out = f(&mut self.bridge, self.now);
        self.settle();
        out
    }

    /// A media event, as a worker would report it.
    pub fn media_event(&mut self, event: MediaEvent) {
        self.with(|b, now| b.handle_media(now, event));
    }

    /// Runs the phones' user agents too: `f` gets phone `p` and the time.
    pub fn on_phone<T>(&mut self, p: usize, f: impl FnOnce(&mut Phone, Instant) -> T) -> T {
        let out = f(&mut self.phones[p], self.now);
        self.settle();
        out
    }

    /// Sends raw SIP bytes from phone `p` to the bridge (requests its user
    /// agent cannot make, such as INFO).
    pub fn raw_from_phone(&mut self, p: usize, bytes: &[u8]) {
        let source = Peer { transport: Transport::Udp, addr: self.phones[p].addr };
        self.sip.handle_datagram(self.now, source, bytes);
        self.settle();
    }

    /// Moves everything that can move at the current time until nothing
    /// does.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(output) = self.bridge.poll_output() {
                moved = true;
                match output {
                    Output::Sip(command) => self.sip.handle_command(self.now, command),
                    Output::Cdr(record) => self.cdrs.push(record),
                    Output::Lookup(lookup) => {
                        let transport = lookup.hop.direct_transport();
                        let port = lookup.hop.port.unwrap_or_else(|| confero_sip::resolve::default_port(transport));
                        let servers = match self.servers.get(&lookup.hop.host) {
                            Some(listed) => listed.clone(),
                            None => self
                                .dns
                                .get(&lookup.hop.host)
                                .map(|ip| Peer { transport, addr: SocketAddr::new(*ip, port) })
                                .into_iter()
                                .collect(),
                        };
                        self.bridge.handle_lookup(self.now, &lookup, servers);
                    }
                }
            }
            while let Some(t) = self.sip.poll_transmit() {
                moved = true;
                // A datagram to an address with no phone is lost.
                if let Some(phone) = self.phones.iter_mut().find(|p| p.addr == t.peer.addr) {
                    if let Ok(m) = Message::parse(&t.bytes, &Default::default()) {
                        phone.received.push(m);
                    }
                    phone.ua.handle_datagram(self.now, Peer { transport: Transport::Udp, addr: BRIDGE_SIP }, &t.bytes);
                }
            }
            while let Some(event) = self.sip.poll_event() {
                moved = true;
                self.bridge.handle_sip(self.now, event);
            }
            for phone in &mut self.phones {
                while let Some(t) = phone.ua.poll_transmit() {
                    moved = true;
                    if t.peer.addr == BRIDGE_SIP {
                        let source = Peer { transport: Transport::Udp, addr: phone.addr };
                        self.sip.handle_datagram(self.now, source, &t.bytes);
                    }
                }
                while let Some(event) = phone.ua.poll_event() {
                    moved = true;
                    phone.events.push(event);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Lets `d` of virtual time pass, firing every timer due on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            let bridge = self.with(|b, _| b.next_timeout());
            let next = std::iter::once(self.sip.next_timeout())
                .chain(std::iter::once(bridge))
                .chain(self.phones.iter().map(|p| p.ua.next_timeout()))
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(at) = next else { break };
            self.now = self.now.max(at);
            self.sip.handle_timeout(self.now);
            self.with(|b, now| b.handle_timeout(now));
            for phone in &mut self.phones {
                phone.ua.handle_timeout(self.now);
            }
        }
        self.now = end;
        self.settle();
    }

    /// The CDR record types emitted so far, in order.
    pub fn cdr_types(&self) -> Vec<&'static str> {
        self.cdrs.iter().map(CdrRecord::record_type).collect()
    }
}
