//! One media worker thread: its sockets, its conferences, its loop.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::load::LoadMeter;
use super::{
    lock, BatchSocket, Command, ConferenceId, EndpointSpec, EventSink, IceTransport, MediaEvent, MediaTransport,
    Published, RecvBatch, RtpAddresses, RuntimeConfig, RuntimeStats, SendBatch,
};
use crate::engine::{Conference, EndpointId, EngineError, Flow, MediaKind, Outgoing};
use crate::mixer::MixerEvent;
use crate::transport::dtls::{DtlsEvent, DtlsIdentity, DtlsSession};
use crate::transport::ice::{CheckOutcome, IceLite};
use crate::transport::{demux, stun, Demuxed};

const TICK: Duration = Duration::from_millis(20);
/// A video frame time: 30 frames a second.
const VIDEO_TICK: Duration = Duration::from_nanos(33_333_333);
/// How often statistics are published and media timeouts checked.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// What one DTLS record may cost the worker (a flight's ECDH and ECDSA run
/// in one): records are worked between ticks, only while the next tick is
/// at least this far away, so a burst of browsers joining never makes
/// anyone's audio late.
const DTLS_STEP: Duration = Duration::from_millis(3);
/// A record waiting longer than this is worked whatever is due: handshakes
/// must finish even on a worker that is never idle.
const DTLS_MAX_WAIT: Duration = Duration::from_millis(200);
/// DTLS records waiting at most; more are dropped (the peer retransmits).
const DTLS_QUEUE: usize = 1024;

/// Where one of an endpoint's streams (audio or video) sends.
struct StreamRoute {
    rtp: SocketAddr,
    /// `None`: RTCP is multiplexed on `rtp`.
    rtcp: Option<SocketAddr>,
    /// Whether a datagram has come from `rtp`; until then a datagram from
    /// the same host on another port (NAT) may take its place.
    latched: bool,
}

/// Where one endpoint's datagrams go.
struct Remote {
    conference: ConferenceId,
    audio: StreamRoute,
    video: Option<StreamRoute>,
    /// Where its signalling came from: media may come from there instead.
    signalling_ip: Option<IpAddr>,
    attached_at: Instant,
    timed_out: bool,
    /// A browser: every stream on the audio socket's one 5-tuple.
    bundle: bool,
}

/// What a browser endpoint has beyond its routes: its ICE-lite agent, its
/// DTLS session, and how to tell its streams apart on the one 5-tuple.
struct Bundle {
    conference: ConferenceId,
    ice: IceLite,
    dtls: DtlsSession,
    video_payload_types: Vec<u8>,
    audio_ssrcs: Vec<u32>,
    video_ssrcs: Vec<u32>,
    /// Consent lapsed and was reported; not reported again.
    consent_lost: bool,
}

impl Bundle {
    /// Which stream an RTP or RTCP datagram of this bundle belongs to;
    /// `None`: RTCP from an SSRC it never announced, for both.
    fn stream_of(&self, datagram: &[u8]) -> Option<MediaKind> {
        let second = *datagram.get(1)?;
        if (192..=223).contains(&second) {
            let ssrc = u32::from_be_bytes(datagram.get(4..8)?.try_into().ok()?);
            if self.video_ssrcs.contains(&ssrc) {
                return Some(MediaKind::Video);
            }
            if self.audio_ssrcs.contains(&ssrc) {
                return Some(MediaKind::Audio);
            }
            return None;
        }
        if self.video_payload_types.contains(&(second & 0x7f)) {
            Some(MediaKind::Video)
        } else {
            Some(MediaKind::Audio)
        }
    }
}

impl Remote {
    fn stream(&mut self, media: MediaKind) -> Option<&mut StreamRoute> {
        match media {
            MediaKind::Audio => Some(&mut self.audio),
            MediaKind::Video => self.video.as_mut(),
        }
    }
}

struct HostedConference {
    conference: Conference,
    next_tick: Instant,
    out: Vec<Outgoing>,
    /// The next video frame time, while some endpoint has video.
    next_video_tick: Option<Instant>,
    /// A frame time fell due while the previous one was unfinished: start the
    /// next one as soon as that one ends (the worker never idles behind).
    video_late: bool,
    video_out: Vec<Outgoing>,
}

/// A worker's sockets: an RTP/RTCP pair for audio, one for video, and the
/// socket its handle wakes it on.
pub(super) struct Sockets {
    pub rtp: BatchSocket,
    pub rtcp: BatchSocket,
    pub video_rtp: BatchSocket,
    pub video_rtcp: BatchSocket,
    pub wake: UdpSocket,
}

pub(super) struct Worker {
    index: usize,
    rtp: BatchSocket,
    rtcp: BatchSocket,
    video_rtp: BatchSocket,
    video_rtcp: BatchSocket,
    wake: UdpSocket,
    commands: Receiver<Command>,
    config: RuntimeConfig,
    events: EventSink,
    published: Arc<Mutex<Published>>,
    /// The runtime's video thread pool, given to each conference.
    video_pool: Option<Arc<rayon::ThreadPool>>,
    hosted: HashMap<ConferenceId, HostedConference>,
    remotes: HashMap<EndpointId, Remote>,
    /// Source address → endpoint, for both RTP and RTCP addresses.
    routes: HashMap<SocketAddr, EndpointId>,
    /// The same for the video sockets.
    video_routes: HashMap<SocketAddr, EndpointId>,
    /// Browser endpoints: ICE, DTLS and demultiplexing state.
    bundles: HashMap<EndpointId, Bundle>,
    /// Our ICE username fragment → its browser endpoint.
    ice_users: HashMap<String, EndpointId>,
    /// The DTLS certificate every browser endpoint presents.
    dtls: Arc<DtlsIdentity>,
    /// A STUN response or DTLS records being written.
    reply: Vec<u8>,
    /// DTLS records from valid sources, worked between ticks
    /// ([`Worker::dtls_work`]): when each came, and from where.
    dtls_queue: std::collections::VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    stats: RuntimeStats,
    /// Busy time between waits, for `stats.busy_nanos` and `stats.load`.
    load: LoadMeter,
    /// A received datagram, handed to the engine (which unprotects in place).
    scratch: Vec<u8>,
    recv: RecvBatch,
    send: SendBatch,
    next_housekeeping: Instant,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        index: usize,
        sockets: Sockets,
        commands: Receiver<Command>,
        config: RuntimeConfig,
        events: EventSink,
        published: Arc<Mutex<Published>>,
        video_pool: Option<Arc<rayon::ThreadPool>>,
        dtls: Arc<DtlsIdentity>,
    ) -> Self {
        let Sockets { rtp, rtcp, video_rtp, video_rtcp, wake } = sockets;
        Self {
            index,
            rtp,
            rtcp,
            video_rtp,
            video_rtcp,
            wake,
            commands,
            config,
            events,
            published,
            video_pool,
            hosted: HashMap::new(),
            remotes: HashMap::new(),
            routes: HashMap::new(),
            video_routes: HashMap::new(),
            bundles: HashMap::new(),
            ice_users: HashMap::new(),
            dtls,
            reply: Vec::with_capacity(super::MAX_DATAGRAM),
            dtls_queue: std::collections::VecDeque::new(),
            stats: RuntimeStats::default(),
            load: LoadMeter::new(Instant::now()),
            scratch: Vec::with_capacity(super::MAX_DATAGRAM),
            recv: RecvBatch::default(),
            send: SendBatch::default(),
            next_housekeeping: Instant::now() + HOUSEKEEPING,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            if !self.take_commands() {
                return;
            }
            let now = Instant::now();
            let audio = self.hosted.values().filter(|r| !r.conference.is_empty()).map(|r| r.next_tick);
            let video = self.hosted.values().filter_map(|r| r.next_video_tick);
            let dtls = self.bundles.values().filter_map(|b| b.dtls.next_timeout());
            let deadline = audio.chain(video).chain(dtls).min();
            let deadline = deadline.map_or(self.next_housekeeping, |d| d.min(self.next_housekeeping));
            // Video or DTLS work in progress: only look for datagrams, do
            // not sleep.
            let busy = self.video_busy() || !self.dtls_queue.is_empty();
            let timeout = if busy { Duration::ZERO } else { deadline.saturating_duration_since(now) };
            // Busy time is the time between waits; a wait of zero (video in
            // progress) does not count as rest.
            if !timeout.is_zero() {
                self.load.sleeping(Instant::now());
                self.wait(timeout);
                self.load.woke(Instant::now());
            } else {
                self.wait(timeout);
            }
            // A command that woke us (an attach) goes before the datagrams
            // that came with it: the endpoint's first packets are its own.
            if !self.take_commands() {
                return;
            }
            self.receive_all(MediaKind::Audio, false);
            self.receive_all(MediaKind::Audio, true);
            self.receive_all(MediaKind::Video, false);
            self.receive_all(MediaKind::Video, true);
            self.dtls_due();
            self.tick_due();
            self.begin_video_due();
            self.video_step();
            self.dtls_work();
            if Instant::now() >= self.next_housekeeping {
                self.housekeeping();
            }
        }
    }

    /// Sleeps until a socket is readable or `timeout` passes.
    fn wait(&self, timeout: Duration) {
        let sockets =
            [self.rtp.inner(), self.rtcp.inner(), self.video_rtp.inner(), self.video_rtcp.inner(), &self.wake];
        super::udp::wait_readable(&sockets, timeout);
        let mut drain = [0u8; 64];
        while self.wake.recv(&mut drain).is_ok() {}
    }

    /// Applies queued commands; `false` when told to stop.
    fn take_commands(&mut self) -> bool {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Stop => return false,
                Command::Create(id) => {
                    let rng = rand::SeedableRng::from_entropy();
                    let mut conference = Conference::new(self.config.mixer, rng);
                    conference.set_video_pool(self.video_pool.clone());
                    let now = Instant::now();
                    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                    conference.set_wallclock(now, wall);
                    let hosted = HostedConference {
                        conference,
                        next_tick: now + TICK,
                        out: Vec::new(),
                        next_video_tick: None,
                        video_late: false,
                        video_out: Vec::new(),
                    };
                    self.hosted.insert(id, hosted);
                }
                Command::End(id) => {
                    if self.hosted.remove(&id).is_some() {
                        let gone: Vec<_> =
                            self.remotes.iter().filter(|(_, p)| p.conference == id).map(|(e, _)| *e).collect();
                        for e in gone {
                            self.forget(e);
                        }
                    }
                }
                Command::Attach { conference, id, spec } => {
                    if let Err(e) = self.attach(conference, id, *spec) {
                        let reason = e.to_string();
                        (self.events)(MediaEvent::AttachFailed { conference, endpoint: id, reason });
                    }
                }
                Command::Keys { conference, id, media, keys } => {
                    if let Some(r) = self.hosted.get_mut(&conference) {
                        // Refused only for an endpoint already gone.
                        let _ = r.conference.set_srtp_keys(id, media, &keys.0, &keys.1);
                    }
                }
                Command::Detach(conference, id) => {
                    if let Some(hosted) = self.hosted.get_mut(&conference) {
                        let _ = hosted.conference.detach(id);
                    }
                    self.forget(id);
                }
                Command::SetRemote { id, rtp, rtcp } => {
                    if let Some(p) = self.remotes.get_mut(&id) {
                        self.routes.retain(|_, e| *e != id);
                        p.audio = StreamRoute { rtp, rtcp, latched: false };
                        self.routes.insert(rtp, id);
                        if let Some(r) = rtcp {
                            self.routes.insert(r, id);
                        }
                    }
                }
                Command::RxMute(c, id, on) => {
                    if let Some(r) = self.hosted.get_mut(&c) {
                        let _ = r.conference.set_rx_muted(id, on);
                    }
                }
                Command::TxMute(c, id, on) => {
                    if let Some(r) = self.hosted.get_mut(&c) {
                        let _ = r.conference.set_tx_muted(id, on);
                    }
                }
                Command::Prompt(c, id, prompt) => {
                    if let Some(r) = self.hosted.get_mut(&c) {
                        let _ = r.conference.set_prompt(id, prompt);
                    }
                }
                Command::Video(c, id, settings) => {
                    if let Some(r) = self.hosted.get_mut(&c) {
                        let _ = r.conference.set_video_settings(id, settings);
                    }
                }
                Command::Keyframe(c, id) => {
                    if let Some(r) = self.hosted.get_mut(&c) {
                        let _ = r.conference.generate_keyframe(id);
                    }
                }
                Command::Dtmf(c, id, sequence) => {
                    if let Some(r) = self.hosted.get_mut(&c) {
                        // Refused only when the endpoint has no telephone-event,
                        // which the caller knows from its SDP.
                        let _ = r.conference.send_dtmf(id, &sequence);
                    }
                }
                Command::Importance(c, id, value) => {
                    if let Some(r) = self.hosted.get_mut(&c) {
                        let _ = r.conference.set_importance(id, value);
                    }
                }
            }
        }
        true
    }

    fn attach(
        &mut self,
        conference: ConferenceId,
        id: EndpointId,
        spec: EndpointSpec,
    ) -> Result<(), crate::engine::EngineError> {
        let transport = match spec.transport {
            MediaTransport::Rtp(transport) => transport,
            MediaTransport::Ice(ice) => return self.attach_bundle(conference, id, spec.config, spec.video, ice),
        };
        let Some(hosted) = self.hosted.get_mut(&conference) else {
            // Unreachable: the handle queues an attach before the `End` of
            // its conference, under the lock `end_conference` takes.
            return Ok(());
        };
        let was_idle = hosted.conference.is_empty();
        hosted.conference.attach(id, spec.config)?;
        let now = Instant::now();
        if was_idle {
            hosted.next_tick = now + TICK;
        }
        // The handle checked that video comes with its addresses.
        let video = match (spec.video, transport.video) {
            (Some(config), Some(RtpAddresses { rtp, rtcp })) => {
                if let Err(e) = hosted.conference.attach_video(id, config) {
                    let _ = hosted.conference.detach(id);
                    return Err(e);
                }
                hosted.next_video_tick.get_or_insert(now + VIDEO_TICK);
                self.video_routes.insert(rtp, id);
                if let Some(r) = rtcp {
                    self.video_routes.insert(r, id);
                }
                Some(StreamRoute { rtp, rtcp, latched: false })
            }
            _ => None,
        };
        let RtpAddresses { rtp, rtcp } = transport.audio;
        self.routes.insert(rtp, id);
        if let Some(r) = rtcp {
            self.routes.insert(r, id);
        }
        self.remotes.insert(
            id,
            Remote {
                conference,
                audio: StreamRoute { rtp, rtcp, latched: false },
                video,
                signalling_ip: transport.signalling_ip,
                attached_at: now,
                timed_out: false,
                bundle: false,
            },
        );
        Ok(())
    }

    /// A browser endpoint: its streams wait for ICE to find it and DTLS to
    /// key them; until a check selects an address, nothing is sent.
    fn attach_bundle(
        &mut self,
        conference: ConferenceId,
        id: EndpointId,
        config: crate::engine::EndpointConfig,
        video: Option<crate::engine::VideoConfig>,
        transport: IceTransport,
    ) -> Result<(), crate::engine::EngineError> {
        let Some(hosted) = self.hosted.get_mut(&conference) else { return Ok(()) };
        let was_idle = hosted.conference.is_empty();
        hosted.conference.attach(id, config)?;
        let now = Instant::now();
        if was_idle {
            hosted.next_tick = now + TICK;
        }
        let nowhere = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
        let video = match video {
            Some(config) => {
                if let Err(e) = hosted.conference.attach_video(id, config) {
                    let _ = hosted.conference.detach(id);
                    return Err(e);
                }
                hosted.next_video_tick.get_or_insert(now + VIDEO_TICK);
                Some(StreamRoute { rtp: nowhere, rtcp: None, latched: true })
            }
            None => None,
        };
        self.remotes.insert(
            id,
            Remote {
                conference,
                audio: StreamRoute { rtp: nowhere, rtcp: None, latched: true },
                video,
                signalling_ip: None,
                attached_at: now,
                timed_out: false,
                bundle: true,
            },
        );
        self.ice_users.insert(transport.local.ufrag.clone(), id);
        let dtls = DtlsSession::new(&self.dtls, transport.remote_fingerprint, transport.dtls_active, now);
        self.bundles.insert(
            id,
            Bundle {
                conference,
                ice: IceLite::new(transport.local, transport.remote_ufrag, now),
                dtls,
                video_payload_types: transport.video_payload_types,
                audio_ssrcs: transport.audio_ssrcs,
                video_ssrcs: transport.video_ssrcs,
                consent_lost: false,
            },
        );
        Ok(())
    }

    /// A STUN check on the audio socket: answered by the endpoint whose
    /// ufrag it names; a verified one makes its source a route, and the
    /// selected one the destination of every stream.
    fn on_stun(&mut self, now: Instant, message: &[u8], from: SocketAddr) {
        let Ok(request) = stun::parse_binding_request(message) else {
            self.stats.refused += 1;
            return;
        };
        let Some(&id) = self.ice_users.get(request.local_ufrag()) else {
            self.stats.unknown_source += 1;
            return;
        };
        let Some(bundle) = self.bundles.get_mut(&id) else { return };
        let outcome = bundle.ice.handle_check(now, from, &request, message, &mut self.reply);
        let _ = self.rtp.inner().send_to(&self.reply, from);
        self.stats.datagrams_out += 1;
        match outcome {
            Ok(outcome) => {
                self.routes.insert(from, id);
                if let CheckOutcome::Selected(to) = outcome {
                    if let Some(remote) = self.remotes.get_mut(&id) {
                        remote.audio.rtp = to;
                        if let Some(v) = remote.video.as_mut() {
                            v.rtp = to;
                        }
                    }
                    // DTLS client: start the handshake once the browser is found.
                    let socket = &self.rtp;
                    let mut sent = 0;
                    if let Some(event) = bundle.dtls.handle_timeout(now, &mut |p| {
                        let _ = socket.inner().send_to(p, to);
                        sent += 1;
                    }) {
                        self.stats.datagrams_out += sent;
                        self.on_dtls_event(id, event);
                    }
                }
            }
            Err(_) => self.stats.refused += 1,
        }
    }

    /// A DTLS record from a source that has passed a check: queued, to be
    /// worked between ticks.
    fn on_dtls(&mut self, now: Instant, record: &[u8], from: SocketAddr) {
        let valid = self.routes.get(&from).and_then(|id| self.bundles.get(id)).is_some_and(|b| b.ice.is_valid(from));
        if !valid {
            self.stats.refused += 1;
            return;
        }
        if self.dtls_queue.len() >= DTLS_QUEUE {
            self.stats.refused += 1;
            return;
        }
        self.dtls_queue.push_back((now, from, record.to_vec()));
    }

    /// Works queued DTLS records while the next audio tick is at least
    /// [`DTLS_STEP`] away (or a record has waited [`DTLS_MAX_WAIT`]).
    fn dtls_work(&mut self) {
        while let Some((queued, _, _)) = self.dtls_queue.front() {
            let now = Instant::now();
            let next_tick = self.hosted.values().filter(|r| !r.conference.is_empty()).map(|r| r.next_tick).min();
            let room = next_tick.is_none_or(|t| t.saturating_duration_since(now) >= DTLS_STEP);
            if !room && now.saturating_duration_since(*queued) < DTLS_MAX_WAIT {
                return;
            }
            let Some((_, from, record)) = self.dtls_queue.pop_front() else { return };
            self.dtls_record(now, &record, from);
        }
    }

    /// Runs one DTLS record through its endpoint's session.
    fn dtls_record(&mut self, now: Instant, record: &[u8], from: SocketAddr) {
        let Some(&id) = self.routes.get(&from) else { return };
        let Some(bundle) = self.bundles.get_mut(&id) else { return };
        let socket = &self.rtp;
        let mut sent = 0;
        let event = bundle.dtls.handle_packet(now, record, &mut |p| {
            let _ = socket.inner().send_to(p, from);
            sent += 1;
        });
        self.stats.datagrams_out += sent;
        if let Some(event) = event {
            self.on_dtls_event(id, event);
        }
    }

    /// Keys from a finished handshake go to both streams; a failure ends
    /// the endpoint's media.
    fn on_dtls_event(&mut self, id: EndpointId, event: DtlsEvent) {
        let Some(conference) = self.bundles.get(&id).map(|b| b.conference) else { return };
        match event {
            DtlsEvent::Keys { inbound, outbound } => {
                if let Some(hosted) = self.hosted.get_mut(&conference) {
                    let _ = hosted.conference.set_srtp_keys(id, MediaKind::Audio, &inbound, &outbound);
                    if hosted.conference.video_stats(id).is_some() {
                        let _ = hosted.conference.set_srtp_keys(id, MediaKind::Video, &inbound, &outbound);
                    }
                }
            }
            DtlsEvent::Failed(e) => {
                (self.events)(MediaEvent::AttachFailed { conference, endpoint: id, reason: e.to_string() });
            }
        }
    }

    /// Retransmits handshake flights that are due and enforces the
    /// handshake deadline.
    fn dtls_due(&mut self) {
        let now = Instant::now();
        let due: Vec<EndpointId> = self
            .bundles
            .iter()
            .filter(|(_, b)| b.dtls.next_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let to = self.remotes.get(&id).map(|r| r.audio.rtp);
            let Some(bundle) = self.bundles.get_mut(&id) else { continue };
            let socket = &self.rtp;
            let mut sent = 0;
            let event = bundle.dtls.handle_timeout(now, &mut |p| {
                if let Some(to) = to.filter(|a| a.port() != 0) {
                    let _ = socket.inner().send_to(p, to);
                    sent += 1;
                }
            });
            self.stats.datagrams_out += sent;
            if let Some(event) = event {
                self.on_dtls_event(id, event);
            }
        }
    }

    fn forget(&mut self, id: EndpointId) {
        self.remotes.remove(&id);
        if self.bundles.remove(&id).is_some() {
            self.ice_users.retain(|_, e| *e != id);
        }
        self.routes.retain(|_, e| *e != id);
        self.video_routes.retain(|_, e| *e != id);
        lock(&self.published).endpoints.remove(&id);
    }

    /// Drains one socket, handing each datagram to its endpoint's conference.
    fn receive_all(&mut self, media: MediaKind, rtcp_socket: bool) {
        loop {
            let socket = match (media, rtcp_socket) {
                (MediaKind::Audio, false) => &self.rtp,
                (MediaKind::Audio, true) => &self.rtcp,
                (MediaKind::Video, false) => &self.video_rtp,
                (MediaKind::Video, true) => &self.video_rtcp,
            };
            let n = match socket.recv_batch(&mut self.recv) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let now = Instant::now();
            for i in 0..n {
                self.stats.datagrams_in += 1;
                let Some((bytes, from)) = self.recv.get(i) else { continue };
                // The audio socket is also every browser's bundled transport.
                let mut media = media;
                if media == MediaKind::Audio && !rtcp_socket && !self.bundles.is_empty() {
                    match demux(bytes) {
                        Demuxed::Stun => {
                            let message = std::mem::take(&mut self.scratch);
                            let mut message = message;
                            message.clear();
                            message.extend_from_slice(bytes);
                            self.on_stun(now, &message, from);
                            self.scratch = message;
                            continue;
                        }
                        Demuxed::Dtls => {
                            let mut record = std::mem::take(&mut self.scratch);
                            record.clear();
                            record.extend_from_slice(bytes);
                            self.on_dtls(now, &record, from);
                            self.scratch = record;
                            continue;
                        }
                        Demuxed::Rtp | Demuxed::Other => {}
                    }
                    if let Some(bundle) = self.routes.get(&from).and_then(|id| self.bundles.get(id)) {
                        if !bundle.ice.is_valid(from) {
                            self.stats.refused += 1;
                            continue;
                        }
                        match bundle.stream_of(bytes) {
                            Some(kind) => media = kind,
                            None => {
                                // RTCP from an SSRC it never announced: both
                                // streams look (each ignores what is not its).
                                self.deliver_bundle_rtcp(now, i, from);
                                continue;
                            }
                        }
                    }
                }
                let Some((bytes, from)) = self.recv.get(i) else { continue };
                let bundled = self.routes.get(&from).copied().filter(|id| self.bundles.contains_key(id));
                let id = match (bundled, media) {
                    (Some(id), _) => Some(id),
                    (None, MediaKind::Audio) => route(&mut self.routes, &mut self.remotes, from, media, rtcp_socket),
                    (None, MediaKind::Video) => {
                        route(&mut self.video_routes, &mut self.remotes, from, media, rtcp_socket)
                    }
                };
                let Some(id) = id else {
                    self.stats.unknown_source += 1;
                    continue;
                };
                let Some(remote) = self.remotes.get(&id) else { continue };
                let Some(hosted) = self.hosted.get_mut(&remote.conference) else { continue };
                self.scratch.clear();
                self.scratch.extend_from_slice(bytes);
                let result = match media {
                    MediaKind::Audio => hosted.conference.receive(now, id, &mut self.scratch),
                    MediaKind::Video => hosted.conference.receive_video(now, id, &mut self.scratch),
                };
                if let Err(e) = result {
                    count_refusal(&mut self.stats, &e);
                }
                for (endpoint, digit) in hosted.conference.take_dtmf() {
                    (self.events)(MediaEvent::Dtmf { conference: remote.conference, endpoint, digit });
                }
            }
            if n < super::BATCH {
                return;
            }
        }
    }

    /// Hands a bundled RTCP datagram to both of its endpoint's streams.
    fn deliver_bundle_rtcp(&mut self, now: Instant, i: usize, from: SocketAddr) {
        let Some(&id) = self.routes.get(&from) else { return };
        let Some(conference) = self.remotes.get(&id).map(|r| r.conference) else { return };
        let Some(hosted) = self.hosted.get_mut(&conference) else { return };
        let Some((bytes, _)) = self.recv.get(i) else { return };
        self.scratch.clear();
        self.scratch.extend_from_slice(bytes);
        let audio = hosted.conference.receive(now, id, &mut self.scratch).is_ok();
        let video = hosted.conference.video_stats(id).is_some() && {
            self.scratch.clear();
            self.scratch.extend_from_slice(bytes);
            hosted.conference.receive_video(now, id, &mut self.scratch).is_ok()
        };
        if !audio && !video {
            self.stats.refused += 1;
        }
    }

    /// Ticks every conference whose tick is due and sends what they made, in
    /// one batch per socket.
    fn tick_due(&mut self) {
        let now = Instant::now();
        let mut rtp_out: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut rtcp_out: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut events = Vec::new();
        let mut ticked = Vec::new();
        for (&cid, hosted) in &mut self.hosted {
            if hosted.conference.is_empty() || hosted.next_tick > now {
                continue;
            }
            self.stats.ticks += 1;
            // More than a tick behind: an overloaded worker. Catching up
            // would only bunch packets; skip to now and count it.
            if now - hosted.next_tick > TICK {
                self.stats.late_ticks += 1;
                hosted.next_tick = now;
            }
            hosted.next_tick += TICK;
            match hosted.conference.tick(now, &mut hosted.out) {
                Ok(summary) => {
                    ticked.push(cid);
                    self.stats.decodes += summary.decodes as u64;
                    self.stats.encodes += summary.encodes as u64;
                    for e in summary.events {
                        let MixerEvent::ActiveSpeakerChanged(endpoint) = e;
                        events.push(MediaEvent::ActiveSpeaker { conference: cid, endpoint });
                    }
                }
                Err(_) => {
                    hosted.out.clear();
                    continue;
                }
            }
        }
        for hosted in ticked.iter().filter_map(|c| self.hosted.get(c)) {
            for o in &hosted.out {
                let Some(remote) = self.remotes.get(&o.endpoint) else { continue };
                if let Some(to) = destination(&remote.audio, o.flow) {
                    match o.flow {
                        Flow::Rtcp if remote.audio.rtcp.is_some() => rtcp_out.push((to, &o.bytes)),
                        _ => rtp_out.push((to, &o.bytes)),
                    }
                }
            }
        }
        if !rtp_out.is_empty() {
            self.stats.datagrams_out += self.rtp.send_batch(&mut self.send, &rtp_out) as u64;
        }
        if !rtcp_out.is_empty() {
            self.stats.datagrams_out += self.rtcp.send_batch(&mut self.send, &rtcp_out) as u64;
        }
        // What was sent stays in each hosted's `out` until its next tick
        // reuses the buffers.
        for e in events {
            (self.events)(e);
        }
    }

    /// Starts the video frame time of every conference with video that is
    /// due. A conference still working through its previous frame drops
    /// this one: video gives way, audio never does.
    fn begin_video_due(&mut self) {
        let now = Instant::now();
        for hosted in self.hosted.values_mut() {
            let Some(next) = hosted.next_video_tick else { continue };
            if !hosted.conference.has_video() {
                hosted.next_video_tick = None;
                continue;
            }
            if next > now {
                continue;
            }
            // Behind by more than a frame: drop frames rather than bunch them.
            hosted.next_video_tick = Some(if now - next > VIDEO_TICK { now + VIDEO_TICK } else { next + VIDEO_TICK });
            if hosted.conference.in_video_frame() {
                self.stats.video_frames_dropped += 1;
                hosted.video_late = true;
                continue;
            }
            self.stats.video_ticks += 1;
            hosted.conference.begin_video_frame(now);
        }
    }

    /// One piece of video work (one sender's frames, or one view) for every
    /// conference in a frame time, and sends what it made. The loop comes
    /// back here after receiving and after any audio tick that fell due, so
    /// audio waits at most one piece (one 720p encode, about 5 ms).
    fn video_step(&mut self) {
        let mut rtp_out: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut rtcp_out: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut bundle_out: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut stepped = Vec::new();
        for (&cid, hosted) in &mut self.hosted {
            if !hosted.conference.in_video_frame() {
                continue;
            }
            hosted.video_out.clear();
            let mut summary = crate::engine::VideoTickSummary::default();
            match hosted.conference.video_step(&mut hosted.video_out, &mut summary) {
                Ok(true) => {}
                Ok(false) if hosted.video_late => {
                    // Behind: the next frame time starts now, not at the
                    // next slot, so the worker never idles while video lags.
                    hosted.video_late = false;
                    self.stats.video_ticks += 1;
                    hosted.conference.begin_video_frame(Instant::now());
                }
                Ok(false) => {}
                Err(_) => hosted.video_out.clear(),
            }
            self.stats.video_decodes += summary.decodes as u64;
            self.stats.video_encodes += summary.encodes as u64;
            stepped.push(cid);
        }
        for hosted in stepped.iter().filter_map(|c| self.hosted.get(c)) {
            for o in &hosted.video_out {
                let Some(remote) = self.remotes.get(&o.endpoint) else { continue };
                let Some(stream) = remote.video.as_ref() else { continue };
                if let Some(to) = destination(stream, o.flow) {
                    if remote.bundle {
                        bundle_out.push((to, &o.bytes));
                        continue;
                    }
                    match o.flow {
                        Flow::VideoRtcp if stream.rtcp.is_some() => rtcp_out.push((to, &o.bytes)),
                        _ => rtp_out.push((to, &o.bytes)),
                    }
                }
            }
        }
        if !rtp_out.is_empty() {
            self.stats.datagrams_out += self.video_rtp.send_batch(&mut self.send, &rtp_out) as u64;
        }
        if !bundle_out.is_empty() {
            self.stats.datagrams_out += self.rtp.send_batch(&mut self.send, &bundle_out) as u64;
        }
        if !rtcp_out.is_empty() {
            self.stats.datagrams_out += self.video_rtcp.send_batch(&mut self.send, &rtcp_out) as u64;
        }
    }

    /// Whether some conference is in the middle of a video frame time.
    fn video_busy(&self) -> bool {
        self.hosted.values().any(|r| r.conference.in_video_frame())
    }

    /// Publishes statistics and reports endpoints silent for the timeout.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        self.next_housekeeping = now + HOUSEKEEPING;
        let (busy_nanos, load) = self.load.sample(now);
        self.stats.busy_nanos = busy_nanos;
        if let Some(load) = load {
            self.stats.load = load;
        }
        let mut timeouts = Vec::new();
        let mut published = lock(&self.published);
        for (&id, remote) in &mut self.remotes {
            let Some(hosted) = self.hosted.get(&remote.conference) else { continue };
            let Ok(stats) = hosted.conference.stats(id) else { continue };
            published.endpoints.insert(id, stats);
            let last = stats.last_received.unwrap_or(remote.attached_at);
            if !remote.timed_out && now.saturating_duration_since(last) >= self.config.media_timeout {
                remote.timed_out = true;
                timeouts.push(MediaEvent::MediaTimeout { conference: remote.conference, endpoint: id });
            } else if remote.timed_out
                && stats.last_received.is_some_and(|t| now.saturating_duration_since(t) < HOUSEKEEPING * 2)
            {
                remote.timed_out = false;
            }
        }
        for (&id, bundle) in &mut self.bundles {
            if !bundle.consent_lost && bundle.ice.consent_expired(now) {
                bundle.consent_lost = true;
                timeouts.push(MediaEvent::MediaTimeout { conference: bundle.conference, endpoint: id });
            }
        }
        if let Some(w) = published.workers.get_mut(self.index) {
            *w = self.stats;
        }
        drop(published);
        for e in timeouts {
            (self.events)(e);
        }
    }
}

/// Where a datagram of `flow` to this stream goes: its RTCP address for
/// reports when it has one, else its RTP address; nowhere while it is on
/// hold with c=0.0.0.0 or has no port yet.
fn destination(stream: &StreamRoute, flow: Flow) -> Option<SocketAddr> {
    if stream.rtp.ip().is_unspecified() || stream.rtp.port() == 0 {
        return None;
    }
    match flow {
        Flow::Rtcp | Flow::VideoRtcp => Some(stream.rtcp.unwrap_or(stream.rtp)),
        Flow::Rtp | Flow::VideoRtp => Some(stream.rtp),
    }
}

/// The endpoint a datagram from `from` belongs to. A source nobody was
/// signalled with is latched to an endpoint whose stream (`media`) has not
/// yet sent from its signalled address and whose signalled or signalling
/// host is the source's host; with several, the one attached first.
fn route(
    routes: &mut HashMap<SocketAddr, EndpointId>,
    remotes: &mut HashMap<EndpointId, Remote>,
    from: SocketAddr,
    media: MediaKind,
    rtcp_socket: bool,
) -> Option<EndpointId> {
    if let Some(&id) = routes.get(&from) {
        if let Some(stream) = remotes.get_mut(&id).and_then(|p| p.stream(media)) {
            if stream.rtp == from {
                stream.latched = true;
            }
        }
        return Some(id);
    }
    if rtcp_socket {
        return None;
    }
    let ip: IpAddr = from.ip();
    let (&id, _) = remotes
        .iter_mut()
        .filter_map(|(id, p)| {
            let signalling_ip = p.signalling_ip;
            let attached_at = p.attached_at;
            p.stream(media).map(|stream| (id, (stream.latched, stream.rtp.ip(), signalling_ip, attached_at)))
        })
        .filter(|(_, (latched, rtp_ip, signalling_ip, _))| !latched && (*rtp_ip == ip || *signalling_ip == Some(ip)))
        .min_by_key(|(id, (_, _, _, attached_at))| (*attached_at, **id))?;
    let stream = remotes.get_mut(&id)?.stream(media)?;
    routes.remove(&stream.rtp);
    stream.rtp = from;
    stream.latched = true;
    routes.insert(from, id);
    Some(id)
}

/// Counts a datagram a conference refused, by kind. Packets dropped while
/// keys are pending are the endpoint's `unkeyed`, not a refusal.
fn count_refusal(stats: &mut RuntimeStats, e: &EngineError) {
    use crate::srtp::SrtpError;
    let kind = match e {
        EngineError::KeysPending => return,
        EngineError::Srtp(SrtpError::AuthenticationFailed) => &mut stats.auth_failures,
        EngineError::Srtp(SrtpError::Replayed(_) | SrtpError::TooOld(_)) => &mut stats.replays,
        EngineError::PayloadType { .. } => &mut stats.wrong_payload_type,
        EngineError::SsrcRefused(_) => &mut stats.ssrc_refused,
        _ => &mut stats.malformed,
    };
    *kind += 1;
    stats.refused += 1;
}
