//! The media runtime: the thin IO shell around [`Conference`]s. It is the
//! one part of this crate that owns threads, sockets and a clock.
//!
//! A small pool of worker threads (about one per core) each owns one RTP
//! and one RTCP socket and the conferences placed on it. A worker sleeps in
//! `ppoll` until a datagram arrives, a command comes, or the next
//! conference tick is due; it moves datagrams in batches (`recvmmsg`,
//! `sendmmsg`) and ticks each conference every 20 ms. A conference with no
//! endpoints is not ticked, so an idle one costs nothing, and no thread is
//! ever made per conference. CPU-heavy work never runs on tokio's workers:
//! the async side only sends commands.
//!
//! Every endpoint of a worker shares its sockets; packets are told apart by
//! their source address (symmetric RTP, RFC 4961). A datagram from an
//! address no endpoint was signalled with is latched to an endpoint that has
//! not yet sent from its signalled address and whose signalled or signalling
//! host is the datagram's host (a NAT, or an endpoint advertising an address
//! it cannot be reached at); with several such, the one attached first.
//!
//! The handle's calls are cheap, thread-safe and never wait for a worker:
//! they send it a command and return (signalling calls them under locks).
//! `attach` allocates the endpoint's id and answers with its worker's
//! addresses at once; if the worker's engine then refuses the endpoint,
//! [`MediaEvent::AttachFailed`] says so.

mod fecc;
mod load;
mod udp;
mod worker;

pub use udp::{BatchSocket, RecvBatch, SendBatch, BATCH, MAX_DATAGRAM};

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::engine::{
    EndpointConfig, EndpointId, EndpointStats, EngineError, MediaKind, Prompt, SrtpKeys, VideoConfig, VideoSettings,
};
use crate::fecc::{FeccConfig, Moves, H281};
use crate::mixer::MixerConfig;
use crate::srtp::SrtpContext;
use crate::transport::dtls::{DtlsIdentity, Fingerprint};
use crate::transport::ice::IceCredentials;

pub use crate::engine::Conference;

/// Identifies a conference in the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConferenceId(pub u64);

/// How the runtime runs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Worker threads; 0: one per available core.
    pub workers: usize,
    /// Threads of the video pool every worker's conferences share: one
    /// conference's decodes, and its views' composing and encoding, run on
    /// up to this many at once (see
    /// [`VideoMix::set_pool`](crate::engine::VideoMix::set_pool)); 0: one
    /// per available core; 1: no pool, video runs on the workers alone.
    pub video_threads: usize,
    /// The address media sockets bind to (the address SDP advertises).
    pub bind: IpAddr,
    /// Mixing settings of every conference.
    pub mixer: MixerConfig,
    /// An endpoint that sends nothing (RTP or RTCP) for this long is
    /// reported with [`MediaEvent::MediaTimeout`].
    pub media_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            video_threads: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mixer: MixerConfig::default(),
            media_timeout: Duration::from_secs(30),
        }
    }
}

/// An endpoint to attach: what was negotiated for its streams, and the
/// transport they travel on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Codec, keys, mutes and the rest of the negotiated audio.
    pub config: EndpointConfig,
    /// Codec, keys, layout and the rest of the negotiated video, if it has video.
    pub video: Option<VideoConfig>,
    /// How its media travels and where it goes.
    pub transport: MediaTransport,
}

/// How an endpoint's media travels. Keys are not the transport's business
/// (SDES keys are in the stream configs; DTLS-SRTP keys come from the
/// transport itself once its handshake is done), and neither is a socket
/// per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaTransport {
    /// Plain (S)RTP over UDP to the addresses signalled in SDP (SIP).
    Rtp(RtpTransport),
    /// A browser: ICE-lite on the worker's audio socket, DTLS-SRTP, and
    /// audio, video, RTCP, STUN and DTLS on one 5-tuple (BUNDLE, rtcp-mux).
    Ice(IceTransport),
}

/// A browser's bundled transport, as its offer and our answer agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceTransport {
    /// Our ICE credentials (in our answer).
    pub local: IceCredentials,
    /// The browser's `a=ice-ufrag`: checks must name it.
    pub remote_ufrag: String,
    /// The browser's `a=fingerprint`: its DTLS certificate must match.
    pub remote_fingerprint: Fingerprint,
    /// We are the DTLS client (the browser offered `a=setup:passive`).
    pub dtls_active: bool,
    /// RTP payload types that belong to the video stream; every other one
    /// is audio.
    pub video_payload_types: Vec<u8>,
    /// The browser's audio SSRCs (`a=ssrc`), to route its RTCP.
    pub audio_ssrcs: Vec<u32>,
    /// The browser's video SSRCs.
    pub video_ssrcs: Vec<u32>,
}

/// Plain (S)RTP to signalled addresses, with latching (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpTransport {
    /// Where its audio goes (and comes from: symmetric RTP).
    pub audio: RtpAddresses,
    /// Where its video goes, when it has video (its own `m=video` port).
    pub video: Option<RtpAddresses>,
    /// Its far-end camera control stream (H.224), when negotiated: served
    /// by the runtime's FECC thread on its own port.
    pub fecc: Option<FeccStream>,
    /// The address its signalling came from. Behind a NAT, or with an
    /// endpoint that advertises an address it cannot be reached at, media
    /// comes from this host rather than the signalled one; see latching in
    /// the module docs.
    pub signalling_ip: Option<IpAddr>,
}

impl RtpTransport {
    /// Audio to `rtp` (RTCP multiplexed on it), no video, no signalling
    /// address.
    pub fn new(rtp: SocketAddr) -> Self {
        Self { audio: RtpAddresses { rtp, rtcp: None }, video: None, fecc: None, signalling_ip: None }
    }
}

/// An endpoint's negotiated H.224 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeccStream {
    /// Where it goes (and comes from).
    pub addresses: RtpAddresses,
    /// Payload type, SSRC, keys.
    pub config: FeccConfig,
}

/// One stream's signalled addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpAddresses {
    /// Where its RTP goes (and comes from).
    pub rtp: SocketAddr,
    /// Where its RTCP goes; `None`: multiplexed on the RTP address (RFC 5761).
    pub rtcp: Option<SocketAddr>,
}

/// An attached endpoint's local addresses, for the SDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachedEndpoint {
    /// Its id, for later calls.
    pub id: EndpointId,
    /// Where it must send RTP (and multiplexed RTCP).
    pub local_rtp: SocketAddr,
    /// Where it must send RTCP when not multiplexed.
    pub local_rtcp: SocketAddr,
    /// Where it must send video RTP (and multiplexed video RTCP).
    pub local_video_rtp: SocketAddr,
    /// Where it must send video RTCP when not multiplexed.
    pub local_video_rtcp: SocketAddr,
}

/// What the runtime tells the call bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The conference's dominant speaker changed (`None`: nobody speaks).
    ActiveSpeaker {
        /// The conference.
        conference: ConferenceId,
        /// The new speaker.
        endpoint: Option<EndpointId>,
    },
    /// A DTMF digit arrived (RFC 4733 telephone-event).
    Dtmf {
        /// Its conference.
        conference: ConferenceId,
        /// Who pressed it.
        endpoint: EndpointId,
        /// 0-9, *, #, A-D.
        digit: char,
    },
    /// An endpoint sent nothing for the media timeout, or (a browser) its
    /// ICE consent expired.
    MediaTimeout {
        /// Its conference.
        conference: ConferenceId,
        /// The silent endpoint.
        endpoint: EndpointId,
    },
    /// The endpoint has an H.281 client: its camera can be moved
    /// ([`MediaRuntime::camera_control`]). Said once per endpoint.
    CameraControlAvailable {
        /// Its conference.
        conference: ConferenceId,
        /// The endpoint.
        endpoint: EndpointId,
    },
    /// The endpoint's user works their far-end camera controls: for the
    /// camera of whoever they see ([`MediaRuntime::relay_camera_control`]).
    CameraControl {
        /// Its conference.
        conference: ConferenceId,
        /// Who works the controls.
        endpoint: EndpointId,
        /// What they asked.
        message: H281,
    },
    /// The worker's engine refused an endpoint [`MediaRuntime::attach`]
    /// answered for (a codec or SRTP context could not be made, keys
    /// conflict), or its transport failed (DTLS: a handshake that failed or
    /// timed out, a certificate other than the signalled one): it has no
    /// media. Its id stays known to the handle until
    /// [`MediaRuntime::detach`] or the conference ends.
    AttachFailed {
        /// Its conference.
        conference: ConferenceId,
        /// The refused endpoint.
        endpoint: EndpointId,
        /// Why, for logs and the call leg's failure reason.
        reason: String,
    },
}

/// Why the runtime refused.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No conference with this id.
    #[error("no conference {0:?}")]
    UnknownConference(ConferenceId),
    /// No endpoint with this id.
    #[error("no endpoint {0:?}")]
    UnknownEndpoint(EndpointId),
    /// The engine refused the endpoint.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The worker is gone (the runtime is shutting down).
    #[error("media worker stopped")]
    Stopped,
    /// A socket could not be opened.
    #[error("media socket: {0}")]
    Io(#[from] io::Error),
    /// The endpoint has video but its transport gives no address for it.
    #[error("video without a video address")]
    NoVideoAddress,
}

/// Receives the runtime's events; called on a worker thread, so it must
/// not block (send to a channel).
pub type EventSink = Arc<dyn Fn(MediaEvent) + Send + Sync>;

/// Runtime-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams from an address no endpoint uses, dropped.
    pub unknown_source: u64,
    /// Datagrams an endpoint's conference refused (SRTP, RTP, payload type,
    /// SSRC), all kinds together; the kinds follow.
    pub refused: u64,
    /// Refused: SRTP or SRTCP authentication failed.
    pub auth_failures: u64,
    /// Refused: SRTP replayed or too old.
    pub replays: u64,
    /// Refused: not valid SRTP, RTP or RTCP.
    pub malformed: u64,
    /// Refused: a payload type not negotiated.
    pub wrong_payload_type: u64,
    /// Refused: an SSRC that has not replaced the stream's source.
    pub ssrc_refused: u64,
    /// Conference ticks run.
    pub ticks: u64,
    /// Ticks that ran more than a tick late (the worker was overloaded).
    pub late_ticks: u64,
    /// Audio frames decoded (frames, FEC and concealment) by the ticks.
    pub decodes: u64,
    /// Audio frames encoded by the ticks (shared, mix-minus and prompts).
    pub encodes: u64,
    /// Video frame times run (conferences with video, 30 a second each).
    pub video_ticks: u64,
    /// Video frames decoded.
    pub video_decodes: u64,
    /// Video views composed and encoded (one per distinct view per frame).
    pub video_encodes: u64,
    /// Video frame times dropped because the previous one was still being
    /// worked through (the worker is short of time for video).
    pub video_frames_dropped: u64,
    /// Time the workers spent working rather than waiting for datagrams or
    /// the next tick, in nanoseconds since start. While a video frame is
    /// being composed on the video threads its worker does not sleep, so
    /// that time counts too.
    pub busy_nanos: u64,
    /// How busy the workers were over their last second, in thousandths of
    /// one worker's time, summed over workers: 1000 is one worker busy all
    /// the time. `system/load`'s `mediaProcessingLoad` is this.
    pub load: u64,
}

pub(crate) enum Command {
    Create(ConferenceId),
    End(ConferenceId),
    Attach { conference: ConferenceId, id: EndpointId, spec: Box<EndpointSpec> },
    Keys { conference: ConferenceId, id: EndpointId, media: MediaKind, keys: Box<(SrtpKeys, SrtpKeys)> },
    Detach(ConferenceId, EndpointId),
    SetRemote { id: EndpointId, rtp: SocketAddr, rtcp: Option<SocketAddr> },
    RxMute(ConferenceId, EndpointId, bool),
    TxMute(ConferenceId, EndpointId, bool),
    Importance(ConferenceId, EndpointId, i32),
    Dtmf(ConferenceId, EndpointId, String),
    Prompt(ConferenceId, EndpointId, Option<Prompt>),
    Video(ConferenceId, EndpointId, VideoSettings),
    Keyframe(ConferenceId, EndpointId),
    Stop,
}

/// What workers publish for readers on other threads, refreshed about once
/// a second.
#[derive(Default)]
pub(crate) struct Published {
    pub endpoints: HashMap<EndpointId, EndpointStats>,
    pub workers: Vec<RuntimeStats>,
}

struct WorkerHandle {
    commands: Sender<Command>,
    waker: UdpSocket,
    local_rtp: SocketAddr,
    local_rtcp: SocketAddr,
    local_video_rtp: SocketAddr,
    local_video_rtcp: SocketAddr,
    /// Endpoints placed on it, for choosing where a new conference goes.
    endpoints: AtomicUsize,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    fn send(&self, command: Command) -> Result<(), RuntimeError> {
        self.commands.send(command).map_err(|_| RuntimeError::Stopped)?;
        // A one-byte datagram to the worker's waker socket ends its poll.
        let _ = self.waker.send(&[1]);
        Ok(())
    }
}

/// The FECC thread's handle.
struct FeccHandle {
    commands: Sender<fecc::FeccCommand>,
    waker: UdpSocket,
    local_rtp: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl FeccHandle {
    fn send(&self, command: fecc::FeccCommand) -> Result<(), RuntimeError> {
        self.commands.send(command).map_err(|_| RuntimeError::Stopped)?;
        let _ = self.waker.send(&[1]);
        Ok(())
    }
}

/// The running media engine. Dropping it stops the workers.
pub struct MediaRuntime {
    workers: Vec<WorkerHandle>,
    fecc: FeccHandle,
    /// conference → worker index, and its endpoints.
    placement: Mutex<HashMap<ConferenceId, (usize, Vec<EndpointId>)>>,
    /// endpoint → conference.
    endpoints: Mutex<HashMap<EndpointId, ConferenceId>>,
    next_id: AtomicU64,
    published: Arc<Mutex<Published>>,
    dtls: Arc<DtlsIdentity>,
}

impl MediaRuntime {
    /// Opens every worker's sockets and starts the workers.
    pub fn start(mut config: RuntimeConfig, events: EventSink) -> Result<Self, RuntimeError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let count = match config.workers {
            0 => cores,
            n => n,
        };
        if config.video_threads == 0 {
            config.video_threads = cores;
        }
        let video_pool = if config.video_threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(config.video_threads)
                .thread_name(|i| format!("video-{i}"))
                .build()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Some(Arc::new(pool))
        } else {
            None
        };
        let published =
            Arc::new(Mutex::new(Published { workers: vec![RuntimeStats::default(); count], ..Default::default() }));
        let dtls = Arc::new(DtlsIdentity::generate().map_err(|e| io::Error::other(e.to_string()))?);
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            let (rtp, rtcp) = bind_pair(config.bind)?;
            // Video has a socket pair of its own: SDP gives it its own port,
            // and a datagram's socket says which stream it belongs to.
            let (video_rtp, video_rtcp) = bind_pair(config.bind)?;
            let (local_video_rtp, local_video_rtcp) = (video_rtp.local_addr()?, video_rtcp.local_addr()?);
            let wake_rx = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))?;
            wake_rx.set_nonblocking(true)?;
            let waker = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))?;
            waker.connect(wake_rx.local_addr()?)?;
            waker.set_nonblocking(true)?;
            let (local_rtp, local_rtcp) = (rtp.local_addr()?, rtcp.local_addr()?);
            let (tx, rx) = mpsc::channel();
            let (config, events, published) = (config.clone(), events.clone(), published.clone());
            let video_pool = video_pool.clone();
            let dtls = dtls.clone();
            // Built on its own thread: the worker's state (codecs, batch
            // buffers with raw pointers) never crosses threads.
            let thread = std::thread::Builder::new().name(format!("media-{index}")).spawn(move || {
                let sockets = worker::Sockets { rtp, rtcp, video_rtp, video_rtcp, wake: wake_rx };
                worker::Worker::new(index, sockets, rx, config, events, published, video_pool, dtls).run()
            })?;
            workers.push(WorkerHandle {
                commands: tx,
                waker,
                local_rtp,
                local_rtcp,
                local_video_rtp,
                local_video_rtcp,
                endpoints: AtomicUsize::new(0),
                thread: Some(thread),
            });
        }
        let fecc = start_fecc(config.bind, events)?;
        Ok(Self {
            workers,
            fecc,
            placement: Mutex::new(HashMap::new()),
            endpoints: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            published,
            dtls,
        })
    }

    /// The fingerprint of the DTLS certificate every browser endpoint
    /// presents, for SDP answers.
    pub fn dtls_fingerprint(&self) -> &Fingerprint {
        self.dtls.fingerprint()
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Creates a conference on the worker with the fewest endpoints.
    pub fn create_conference(&self) -> Result<ConferenceId, RuntimeError> {
        let id = ConferenceId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut placement = lock(&self.placement);
        let (index, _) = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let conferences = placement.values().filter(|(wi, _)| *wi == i).count();
                (i, (w.endpoints.load(Ordering::Relaxed), conferences))
            })
            .min_by_key(|&(_, load)| load)
            .ok_or(RuntimeError::Stopped)?;
        self.workers[index].send(Command::Create(id))?;
        placement.insert(id, (index, Vec::new()));
        Ok(id)
    }

    /// Ends a conference and every endpoint in it.
    pub fn end_conference(&self, id: ConferenceId) -> Result<(), RuntimeError> {
        let (index, members) = lock(&self.placement).remove(&id).ok_or(RuntimeError::UnknownConference(id))?;
        let mut endpoints = lock(&self.endpoints);
        for m in &members {
            endpoints.remove(m);
        }
        self.workers[index].endpoints.fetch_sub(members.len(), Ordering::Relaxed);
        let mut published = lock(&self.published);
        for m in &members {
            published.endpoints.remove(m);
            let _ = self.fecc.send(fecc::FeccCommand::Detach(*m));
        }
        self.workers[index].send(Command::End(id))
    }

    /// The local RTP and RTCP addresses of a conference's endpoints (its
    /// worker's sockets), for an SDP offer or answer before attaching.
    pub fn conference_addresses(&self, conference: ConferenceId) -> Result<(SocketAddr, SocketAddr), RuntimeError> {
        let index =
            lock(&self.placement).get(&conference).map(|p| p.0).ok_or(RuntimeError::UnknownConference(conference))?;
        Ok((self.workers[index].local_rtp, self.workers[index].local_rtcp))
    }

    /// The local video RTP and RTCP addresses of a conference's endpoints.
    pub fn conference_video_addresses(
        &self,
        conference: ConferenceId,
    ) -> Result<(SocketAddr, SocketAddr), RuntimeError> {
        let index =
            lock(&self.placement).get(&conference).map(|p| p.0).ok_or(RuntimeError::UnknownConference(conference))?;
        Ok((self.workers[index].local_video_rtp, self.workers[index].local_video_rtcp))
    }

    /// Attaches an endpoint to a conference; returns its id and the local
    /// addresses it must send to (its worker's sockets) at once, without
    /// waiting for the worker. If the worker's engine refuses the endpoint,
    /// [`MediaEvent::AttachFailed`] follows through the event sink.
    /// A browser endpoint ([`MediaTransport::Ice`]) sends and receives on
    /// `local_rtp` only; its streams pass nothing until DTLS has keyed them.
    pub fn attach(&self, conference: ConferenceId, mut spec: EndpointSpec) -> Result<AttachedEndpoint, RuntimeError> {
        match &spec.transport {
            MediaTransport::Rtp(transport) => {
                if spec.video.is_some() && transport.video.is_none() {
                    return Err(RuntimeError::NoVideoAddress);
                }
            }
            MediaTransport::Ice(_) => {
                spec.config.srtp_pending = true;
                if let Some(v) = spec.video.as_mut() {
                    v.srtp_pending = true;
                }
            }
        }
        // Held while the command is queued, so that an `end_conference`
        // racing with us queues its `End` after our `Attach`, never before.
        let mut placement = lock(&self.placement);
        let (index, members) = placement.get_mut(&conference).ok_or(RuntimeError::UnknownConference(conference))?;
        let id = EndpointId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let worker = &self.workers[*index];
        let fecc = match &mut spec.transport {
            MediaTransport::Rtp(t) => t.fecc.take().map(|stream| (stream, t.signalling_ip)),
            MediaTransport::Ice(_) => None,
        };
        worker.send(Command::Attach { conference, id, spec: Box::new(spec) })?;
        if let Some((stream, signalling_ip)) = fecc {
            let stream = Box::new(stream);
            self.fecc.send(fecc::FeccCommand::Attach { conference, id, stream, signalling_ip })?;
        }
        members.push(id);
        lock(&self.endpoints).insert(id, conference);
        worker.endpoints.fetch_add(1, Ordering::Relaxed);
        Ok(AttachedEndpoint {
            id,
            local_rtp: worker.local_rtp,
            local_rtcp: worker.local_rtcp,
            local_video_rtp: worker.local_video_rtp,
            local_video_rtcp: worker.local_video_rtcp,
        })
    }

    fn locate(&self, id: EndpointId) -> Result<(ConferenceId, usize), RuntimeError> {
        let conference = *lock(&self.endpoints).get(&id).ok_or(RuntimeError::UnknownEndpoint(id))?;
        let index =
            lock(&self.placement).get(&conference).map(|p| p.0).ok_or(RuntimeError::UnknownConference(conference))?;
        Ok((conference, index))
    }

    /// Detaches an endpoint.
    pub fn detach(&self, id: EndpointId) -> Result<(), RuntimeError> {
        let (conference, index) = self.locate(id)?;
        lock(&self.endpoints).remove(&id);
        if let Some((_, members)) = lock(&self.placement).get_mut(&conference) {
            members.retain(|m| *m != id);
        }
        lock(&self.published).endpoints.remove(&id);
        self.workers[index].endpoints.fetch_sub(1, Ordering::Relaxed);
        self.fecc.send(fecc::FeccCommand::Detach(id))?;
        self.workers[index].send(Command::Detach(conference, id))
    }

    /// The local address of every endpoint's H.224 stream (the FECC
    /// thread's socket; RTCP on the next port), for SDP.
    pub fn fecc_address(&self) -> SocketAddr {
        self.fecc.local_rtp
    }

    /// Moves the endpoint's camera a step (START, then STOP after
    /// [`crate::fecc::NUDGE`]); nothing when it has no H.224 stream.
    pub fn camera_control(&self, id: EndpointId, moves: Moves) -> Result<(), RuntimeError> {
        self.locate(id)?;
        self.fecc.send(fecc::FeccCommand::Nudge(id, moves))
    }

    /// Sends another endpoint's H.281 message on to this endpoint's camera.
    pub fn relay_camera_control(&self, id: EndpointId, message: H281) -> Result<(), RuntimeError> {
        self.locate(id)?;
        self.fecc.send(fecc::FeccCommand::Relay(id, message))
    }

    /// Points an endpoint's media at new addresses (a re-INVITE moved it).
    pub fn set_remote(&self, id: EndpointId, rtp: SocketAddr, rtcp: Option<SocketAddr>) -> Result<(), RuntimeError> {
        let (_, index) = self.locate(id)?;
        self.workers[index].send(Command::SetRemote { id, rtp, rtcp })
    }

    /// Keys one of an endpoint's streams after attach: DTLS-SRTP's exported
    /// keys, or new SDES keys. A stream attached with `srtp_pending` passes
    /// nothing either way until then. The keys are checked here.
    pub fn set_srtp_keys(
        &self,
        id: EndpointId,
        media: MediaKind,
        inbound: SrtpKeys,
        outbound: SrtpKeys,
    ) -> Result<(), RuntimeError> {
        for k in [&inbound, &outbound] {
            SrtpContext::new(k.profile, &k.key, &k.salt).map_err(|e| RuntimeError::Engine(e.into()))?;
        }
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::Keys { conference, id, media, keys: Box::new((inbound, outbound)) })
    }

    /// Stops (or resumes) mixing what the endpoint says.
    pub fn set_rx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError> {
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::RxMute(conference, id, muted))
    }

    /// Stops (or resumes) sending the endpoint audio.
    pub fn set_tx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError> {
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::TxMute(conference, id, muted))
    }

    /// Sets the endpoint's importance in speaker selection.
    pub fn set_importance(&self, id: EndpointId, importance: i32) -> Result<(), RuntimeError> {
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::Importance(conference, id, importance))
    }

    /// Sends the endpoint DTMF (the API's `dtmfSequence`) as RFC 4733
    /// telephone-events. The sequence is checked here; an endpoint without
    /// telephone-event (the caller knows from its SDP) is sent nothing.
    pub fn send_dtmf(&self, id: EndpointId, sequence: &str) -> Result<(), RuntimeError> {
        crate::engine::dtmf::check_sequence(sequence).map_err(|e| RuntimeError::Engine(e.into()))?;
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::Dtmf(conference, id, sequence.to_string()))
    }

    /// Applies the API's video settings (`chosenLayout`, video mutes), live.
    pub fn set_video(&self, id: EndpointId, settings: VideoSettings) -> Result<(), RuntimeError> {
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::Video(conference, id, settings))
    }

    /// Sends the endpoint an IDR with its view's next picture, as its own
    /// PLI would (`POST /callLegs/<id>/generateKeyframe`).
    pub fn generate_keyframe(&self, id: EndpointId) -> Result<(), RuntimeError> {
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::Keyframe(conference, id))
    }

    /// Plays a prompt to the endpoint in place of the conference, which
    /// stops hearing it (the passcode lobby); `None` lets it in.
    pub fn set_prompt(&self, id: EndpointId, prompt: Option<Prompt>) -> Result<(), RuntimeError> {
        let (conference, index) = self.locate(id)?;
        self.workers[index].send(Command::Prompt(conference, id, prompt))
    }

    /// The endpoint's statistics as of the worker's last publication (at
    /// most about a second old); `None` before the first.
    pub fn endpoint_stats(&self, id: EndpointId) -> Option<EndpointStats> {
        lock(&self.published).endpoints.get(&id).copied()
    }

    /// The runtime's counters, summed over workers.
    pub fn stats(&self) -> RuntimeStats {
        let published = lock(&self.published);
        published.workers.iter().fold(RuntimeStats::default(), |a, w| RuntimeStats {
            datagrams_in: a.datagrams_in + w.datagrams_in,
            datagrams_out: a.datagrams_out + w.datagrams_out,
            unknown_source: a.unknown_source + w.unknown_source,
            refused: a.refused + w.refused,
            auth_failures: a.auth_failures + w.auth_failures,
            replays: a.replays + w.replays,
            malformed: a.malformed + w.malformed,
            wrong_payload_type: a.wrong_payload_type + w.wrong_payload_type,
            ssrc_refused: a.ssrc_refused + w.ssrc_refused,
            ticks: a.ticks + w.ticks,
            late_ticks: a.late_ticks + w.late_ticks,
            decodes: a.decodes + w.decodes,
            encodes: a.encodes + w.encodes,
            video_ticks: a.video_ticks + w.video_ticks,
            video_decodes: a.video_decodes + w.video_decodes,
            video_encodes: a.video_encodes + w.video_encodes,
            video_frames_dropped: a.video_frames_dropped + w.video_frames_dropped,
            busy_nanos: a.busy_nanos + w.busy_nanos,
            load: a.load + w.load,
        })
    }
}

impl Drop for MediaRuntime {
    fn drop(&mut self) {
        for w in &self.workers {
            let _ = w.send(Command::Stop);
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        let _ = self.fecc.send(fecc::FeccCommand::Stop);
        if let Some(t) = self.fecc.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the FECC thread's sockets and starts it.
fn start_fecc(bind: IpAddr, events: EventSink) -> Result<FeccHandle, RuntimeError> {
    let (rtp, rtcp) = bind_pair(bind)?;
    let local_rtp = rtp.local_addr()?;
    let (rtp, rtcp) = (rtp.into_inner(), rtcp.into_inner());
    let wake = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))?;
    wake.set_nonblocking(true)?;
    let waker = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))?;
    waker.connect(wake.local_addr()?)?;
    waker.set_nonblocking(true)?;
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("fecc".into())
        .spawn(move || fecc::FeccThread::new(rtp, rtcp, wake, rx, events).run())?;
    Ok(FeccHandle { commands: tx, waker, local_rtp, thread: Some(thread) })
}

/// An RTP socket on an even port and an RTCP socket on the next: SIP
/// endpoints that ignore `a=rtcp` send RTCP to RTP + 1 (RFC 3551 §11).
fn bind_pair(ip: IpAddr) -> io::Result<(BatchSocket, BatchSocket)> {
    for _ in 0..100 {
        let rtp = BatchSocket::bind(SocketAddr::new(ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = BatchSocket::bind(SocketAddr::new(ip, port + 1)) {
            return Ok((rtp, rtcp));
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "no free even/odd port pair for RTP and RTCP"))
}

/// A poisoned lock only means another thread panicked while holding it;
/// the maps stay consistent (every update is a single insert or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
