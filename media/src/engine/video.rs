//! One conference's video, sans-IO: H.264 over (S)RTP in, a decode of only
//! the streams that some view shows, each distinct view composed once and
//! encoded once, and its packets fanned out to every receiver of that view.
//!
//! Why it is shaped this way (issue #5): an OpenH264 720p encode costs about
//! 5 ms and a decode about 1.5 ms, so the cost of a conference is its number
//! of distinct views (encodes) plus its number of visible senders (decodes),
//! not its number of receivers. A receiver's view is a [`ViewKey`] — layout,
//! size, self-pane rule — and receivers with equal keys share one encoder and
//! one packetization; only the RTP header (their SSRC, sequence, timestamp)
//! and SRTP are per receiver.
//!
//! Keyframes: a new encoder starts with an IDR; a receiver that moves to
//! another view (the speaker order changed, it chose another layout) or
//! sends PLI/FIR asks its view's encoder for one, and the encoder's
//! [`KeyframeGate`](crate::video::h264::KeyframeGate) coalesces the requests
//! to one IDR per 500 ms. Towards senders, loss in a frame or a stream that
//! comes back into view after being skipped asks for a keyframe through a
//! [`KeyframeRequestLimiter`] (PLI, or FIR for endpoints that asked for it),
//! and frames are not decoded until it comes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use rayon::prelude::*;

use super::session::{Keying, RtpSession, Source};
use super::{EndpointId, EngineError, Flow, Outgoing, SrtpKeys};
use crate::rtcp::{
    self, FirEntry, FullIntraRequest, NtpTime, PictureLossIndication, Remb, RtcpPacket, Tmmbn, Tmmbr, TmmbrEntry,
};
use crate::rtp::RtpPacket;
use crate::video::compose::{Compositor, ViewKey};
use crate::video::frame::{I420Frame, Rect};
use crate::video::h264::{H264Decoder, H264Encoder, H264EncoderConfig};
use crate::video::h264_rtp::{
    Assembled, DepacketizerConfig, H264Depacketizer, H264Packetizer, PacketizationMode, RtpPayloads,
};
use crate::video::keyframe_request::{KeyframeRequest, KeyframeRequestLimiter, KeyframeRequestMethod};
use crate::video::layout::{Layout, PaneContent, SelfPaneMode, SpeakerOrder};
use crate::video::source_rate::{BitrateRequestMethod, SourceRate};

/// The RTP clock of video.
const VIDEO_CLOCK: u64 = 90_000;
/// The largest RTP payload we send: a 1200-byte packet with header and
/// SRTP tag stays under any path MTU a conferencing network has.
const MAX_PAYLOAD: usize = 1100;
/// The largest picture we compose: CMS's `max1080p30` class is not offered;
/// 720p is what `LocalVideo::hd720` advertises.
pub const MAX_VIDEO_SIZE: (u32, u32) = (1280, 720);
/// The mean interval between our RTCP reports on a video stream.
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// The lowest bitrate a view is encoded at, whatever the receivers report.
const MIN_BITRATE: u32 = 150_000;
/// A view's encoder is rebuilt for a new bitrate (OpenH264's wrapper has no
/// live change) only when the target moved by more than this fraction, and
/// at most once per [`BITRATE_HOLD`]: each rebuild costs an IDR.
const BITRATE_STEP: f64 = 0.2;
/// See [`BITRATE_STEP`].
const BITRATE_HOLD: Duration = Duration::from_secs(2);

/// What was negotiated for one endpoint's video (SDP `m=video`, H.264).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// The H.264 payload type, both ways.
    pub payload_type: u8,
    /// Mode 0 or 1 (RFC 6184), both ways.
    pub packetization_mode: PacketizationMode,
    /// The largest picture we may send it (from its `max-fs`), capped at
    /// [`MAX_VIDEO_SIZE`].
    pub max_size: (u32, u32),
    /// The bitrate of the view it receives, bits per second.
    pub bitrate: u32,
    /// How to ask it for a keyframe: PLI, or FIR when its SDP says `ccm fir`.
    pub keyframe_method: KeyframeRequestMethod,
    /// How to ask it to send less while it is shown small (TMMBR when its
    /// SDP says `ccm tmmbr`, else REMB for `goog-remb`); its full rate is
    /// [`bitrate`](Self::bitrate).
    pub bitrate_request: BitrateRequestMethod,
    /// Keys for what it sends us; `None`: plain RTP.
    pub srtp_in: Option<SrtpKeys>,
    /// Keys for what we send it.
    pub srtp_out: Option<SrtpKeys>,
    /// SRTP whose keys come after attach (DTLS-SRTP), through
    /// [`VideoMix::set_srtp_keys`]: until then its video is dropped both
    /// ways and counted ([`VideoStats::unkeyed`]). `srtp_in` and `srtp_out`
    /// must then be `None`.
    pub srtp_pending: bool,
    /// We send it video (the SDP direction allows it).
    pub receives: bool,
    /// It sends us video.
    pub sends: bool,
    /// What it sees: the leg's `chosenLayout`, else its `defaultLayout`.
    pub layout: Layout,
    /// CMS `panePlacementSelfPaneMode`.
    pub self_pane: SelfPaneMode,
    /// Our SSRC towards it; `None`: random.
    pub ssrc: Option<u32>,
    /// The CNAME of our RTCP.
    pub cname: String,
}

impl VideoConfig {
    /// 720p at 1.5 Mbit/s both ways, mode 1, PLI, plain RTP, `automatic`.
    pub fn new(payload_type: u8) -> Self {
        Self {
            payload_type,
            packetization_mode: PacketizationMode::NonInterleaved,
            max_size: MAX_VIDEO_SIZE,
            bitrate: H264EncoderConfig::HD_720P30.bitrate,
            keyframe_method: KeyframeRequestMethod::Pli,
            bitrate_request: BitrateRequestMethod::None,
            srtp_in: None,
            srtp_out: None,
            srtp_pending: false,
            receives: true,
            sends: true,
            layout: Layout::Automatic,
            self_pane: SelfPaneMode::Skip,
            ssrc: None,
            cname: String::from("confero"),
        }
    }
}

/// What the API changes on a live video stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSettings {
    /// What it sees: the leg's `chosenLayout`, else its `defaultLayout`.
    pub layout: Layout,
    /// `rxVideoMute`: the others see its placeholder instead of its video.
    pub rx_muted: bool,
    /// `txVideoMute`: it is sent no video.
    pub tx_muted: bool,
    /// The largest picture its `qualityMain` allows it to be sent; the
    /// smaller of this and its SDP limit is what it gets.
    pub max_size: (u32, u32),
    /// Its panes carry name labels (`participantLabels`).
    pub labels: bool,
    /// Its name, on its panes in the others' views when they have labels.
    pub label: Option<String>,
}

impl VideoSettings {
    /// `layout`, nothing muted, no cap beyond the SDP's.
    pub fn new(layout: Layout) -> Self {
        Self { layout, rx_muted: false, tx_muted: false, max_size: MAX_VIDEO_SIZE, labels: true, label: None }
    }
}

/// One endpoint's video counters, for the call leg's `rxVideo`/`txVideo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoStats {
    /// RTP packets accepted from it.
    pub packets_in: u64,
    /// Their bytes on the wire.
    pub bytes_in: u64,
    /// Complete frames assembled from what it sent.
    pub frames_in: u64,
    /// Of those, decoded (only while some view shows it).
    pub frames_decoded: u64,
    /// The size of the last picture decoded from it.
    pub rx_size: (u32, u32),
    /// Packets sent to it.
    pub packets_out: u64,
    /// Their bytes on the wire.
    pub bytes_out: u64,
    /// Frames sent to it.
    pub frames_out: u64,
    /// The size of the view it receives.
    pub tx_size: (u32, u32),
    /// The bitrate of the view it receives is encoded at, bits per second.
    pub tx_target_bitrate: u32,
    /// The limit it was last asked to send under (TMMBR/REMB) while shown
    /// small, bits per second; 0: never asked.
    pub source_limit: u32,
    /// Keyframe requests (PLI/FIR) we sent it.
    pub keyframe_requests_sent: u64,
    /// Keyframe requests it sent us.
    pub keyframe_requests_received: u64,
    /// Packets refused (SRTP, RTP, payload type, depacketizer).
    pub refused: u64,
    /// Packets dropped, either way, while its SRTP keys were pending.
    pub unkeyed: u64,
    /// Round-trip time from its last report block about our stream.
    pub round_trip: Option<Duration>,
    /// When its newest accepted packet (RTP or RTCP) arrived.
    pub last_received: Option<Instant>,
}

/// What one video tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoTickSummary {
    /// Frames decoded.
    pub decodes: usize,
    /// Distinct views composed and encoded.
    pub encodes: usize,
    /// Packets produced.
    pub packets: usize,
}

impl VideoTickSummary {
    /// Adds another part of the same tick.
    pub fn add(&mut self, other: VideoTickSummary) {
        self.decodes += other.decodes;
        self.encodes += other.encodes;
        self.packets += other.packets;
    }
}

struct VideoEndpoint {
    config: VideoConfig,
    rx_muted: bool,
    tx_muted: bool,
    /// Its `qualityMain` cap ([`VideoSettings::max_size`]).
    quality_cap: (u32, u32),
    /// What it sees has name labels.
    labels: bool,
    /// Our RTP session with it: SSRC, sequence, timestamp, SRTP, reports.
    session: RtpSession,
    depacketizer: H264Depacketizer,
    /// Made on the first frame a view needs: an endpoint nobody sees costs
    /// no decoder.
    decoder: Option<H264Decoder>,
    /// The newest decoded picture.
    picture: Option<I420Frame>,
    /// Frames were skipped (it was out of view) or lost: decode nothing
    /// until the next keyframe.
    stale: bool,
    keyframe_requests: KeyframeRequestLimiter,
    /// The limit it is asked to keep to while shown small.
    source_rate: SourceRate,
    /// The view it received last tick; a change asks for a keyframe.
    view: Option<ViewKey>,
    /// It asked for a keyframe (PLI/FIR) since the last tick.
    wants_keyframe: bool,
    /// Its newest REMB estimate, bits per second.
    remb: Option<u32>,
    /// Its newest TMMBR limit for our stream, bits per second.
    tmmbr: Option<u32>,
    /// The TMMBN owed for its last TMMBR (RFC 5104 4.2.2: the bounding set,
    /// its own request, since it is the only receiver of our stream to it).
    tmmbn_due: Option<TmmbrEntry>,
    /// What its loss reports allow: lowered by the loss it reports, raised
    /// again slowly while it reports little.
    loss_limit: Option<u32>,
    /// It moved to another view (or is new): it is sent nothing until that
    /// view's next IDR, since the new encoder's P frames would decode to
    /// garbage on its side. A frozen picture for up to 500 ms is better.
    awaiting_keyframe: bool,
    /// Receive-side counters; the send side's are the session's.
    stats: VideoStats,
}

/// One distinct view's encoder and this tick's packets of it.
struct View {
    encoder: H264Encoder,
    /// When the encoder was (re)built, for [`BITRATE_HOLD`].
    built: Instant,
    /// The view's picture: each view has its own, so that views compose and
    /// encode at once on several threads.
    canvas: I420Frame,
    /// This frame's access unit, copied out of the encoder (empty: skipped).
    encoded: Vec<u8>,
    /// It is an IDR.
    keyframe: bool,
    payloads: RtpPayloads,
    /// Mode-0 packets, made only when a receiver of the view needs them.
    single_nal_payloads: Option<RtpPayloads>,
}

/// One conference's video. See the [module docs](self).
pub struct VideoMix {
    endpoints: HashMap<EndpointId, VideoEndpoint>,
    /// Everyone in the conference (video or not: an audio-only participant
    /// is a placeholder pane), most recent speaker first.
    speakers: SpeakerOrder,
    compositor: Compositor,
    /// Encoders by view; a view nobody receives is dropped.
    views: HashMap<ViewKey, View>,
    /// Receivers of each view this tick (ordered, so ticks are deterministic).
    receivers: BTreeMap<ViewKey, Vec<EndpointId>>,
    /// Threads a frame time's decodes and views may run on at once; `None`:
    /// the caller's thread alone.
    pool: Option<Arc<rayon::ThreadPool>>,
    packetizer: H264Packetizer,
    single_nal_packetizer: H264Packetizer,
    /// Who some view shows this tick, with the share of our largest picture
    /// ([`MAX_VIDEO_SIZE`]) its largest pane covers: what it needs to send
    /// depends on how many pixels it fills, wherever they are.
    visible: HashMap<EndpointId, f64>,
    /// Participants in the passcode lobby: not shown to the conference, and
    /// sent none of its video until they are let in.
    lobby: Vec<EndpointId>,
    /// CMS `importance` of participants that have one (above 0): they come
    /// first in every layout, the highest first, before the speaker order.
    importance: HashMap<EndpointId, i32>,
    /// The speaker order without the lobby, as this frame lays it out.
    shown_order: Vec<EndpointId>,
    contents: Vec<PaneContent>,
    rects: Vec<Rect>,
    epoch: Option<Instant>,
    /// The frame time in progress, if any.
    frame: Option<FrameWork>,
    /// Our SSRCs and sequence and timestamp bases.
    rng: StdRng,
}

/// What is left of one frame time's work.
struct FrameWork {
    now: Instant,
    ntp: NtpTime,
    ticks_90k: u32,
    /// The speaker order the views are laid out by, fixed for the frame.
    order: Vec<EndpointId>,
    /// Senders whose frames are still to be taken (popped from the back).
    senders: Vec<EndpointId>,
    /// Views still to be encoded (popped from the back).
    views: Vec<ViewKey>,
}

impl VideoMix {
    /// A conference without video yet; `rng` gives its SSRCs and bases
    /// (seeded by the caller: from entropy in the runtime, a constant in tests).
    pub fn new(rng: StdRng) -> Self {
        Self {
            endpoints: HashMap::new(),
            speakers: SpeakerOrder::new(SpeakerOrder::DEFAULT_HOLD_TICKS),
            compositor: Compositor::new(),
            views: HashMap::new(),
            receivers: BTreeMap::new(),
            pool: None,
            packetizer: H264Packetizer::new(MAX_PAYLOAD, PacketizationMode::NonInterleaved)
                .expect("the payload size is valid"),
            single_nal_packetizer: H264Packetizer::new(MAX_PAYLOAD, PacketizationMode::SingleNalUnit)
                .expect("the payload size is valid"),
            visible: HashMap::new(),
            lobby: Vec::new(),
            importance: HashMap::new(),
            shown_order: Vec::new(),
            contents: Vec::new(),
            rects: Vec::new(),
            epoch: None,
            frame: None,
            rng,
        }
    }

    /// A participant joined the conference (with or without video).
    pub fn join(&mut self, id: EndpointId) {
        self.speakers.join(id);
    }

    /// Puts a participant in the passcode lobby (or lets it in): while
    /// there, nobody sees it and it sees nothing of the conference.
    pub fn set_lobby(&mut self, id: EndpointId, in_lobby: bool) {
        self.lobby.retain(|&p| p != id);
        if in_lobby {
            self.lobby.push(id);
        }
    }

    /// Sets a participant's CMS `importance`: participants with one (above
    /// 0) take the most prominent panes, highest first, whoever speaks; the
    /// rest follow in speaker order. Applies from the next frame.
    pub fn set_importance(&mut self, id: EndpointId, importance: i32) {
        if importance > 0 {
            self.importance.insert(id, importance);
        } else {
            self.importance.remove(&id);
        }
    }

    /// A participant left.
    pub fn leave(&mut self, id: EndpointId) {
        self.importance.remove(&id);
        self.lobby.retain(|&p| p != id);
        self.speakers.leave(id);
        self.endpoints.remove(&id);
        self.compositor.set_label(id, None);
    }

    /// One 20 ms audio tick's active speaker, for the speaker order (with
    /// its hysteresis, so panes do not flicker).
    pub fn speaker_tick(&mut self, active: Option<EndpointId>) {
        self.speakers.tick(active);
    }

    /// The participants, most recent speaker first.
    pub fn speaker_order(&self) -> &[EndpointId] {
        self.speakers.order()
    }

    /// Whether any endpoint has video.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Adds (or replaces) an endpoint's video stream.
    pub fn attach(&mut self, id: EndpointId, config: VideoConfig) -> Result<(), EngineError> {
        let ssrc = config.ssrc.unwrap_or_else(|| self.rng.gen());
        let (sequence, timestamp_base) = (self.rng.gen(), self.rng.gen());
        let keying = if config.srtp_pending { Keying::Pending } else { Keying::Now };
        let session = RtpSession::new(
            ssrc,
            sequence,
            timestamp_base,
            VIDEO_CLOCK as u32,
            config.cname.clone(),
            config.srtp_in.as_ref(),
            config.srtp_out.as_ref(),
            keying,
        )?;
        self.speakers.join(id);
        let endpoint = VideoEndpoint {
            session,
            depacketizer: H264Depacketizer::new(DepacketizerConfig::default()),
            decoder: None,
            picture: None,
            stale: false,
            keyframe_requests: KeyframeRequestLimiter::new(config.keyframe_method),
            source_rate: SourceRate::new(config.bitrate_request, config.bitrate),
            view: None,
            wants_keyframe: false,
            remb: None,
            tmmbr: None,
            tmmbn_due: None,
            loss_limit: None,
            awaiting_keyframe: true,
            stats: VideoStats::default(),
            rx_muted: false,
            tx_muted: false,
            quality_cap: MAX_VIDEO_SIZE,
            labels: true,
            config,
        };
        self.endpoints.insert(id, endpoint);
        Ok(())
    }

    /// Applies the API's settings (`chosenLayout`, video mutes, quality
    /// cap, labels), live. The name label applies to a participant without
    /// video too (on its placeholder pane); the rest needs a video stream.
    pub fn set_settings(&mut self, id: EndpointId, settings: VideoSettings) -> Result<(), EngineError> {
        self.compositor.set_label(id, settings.label.as_deref());
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        e.config.layout = settings.layout;
        e.rx_muted = settings.rx_muted;
        e.tx_muted = settings.tx_muted;
        e.quality_cap = settings.max_size;
        e.labels = settings.labels;
        Ok(())
    }

    /// Keys an endpoint's video stream after attach (DTLS-SRTP, or new SDES
    /// keys); until then a stream attached with `srtp_pending` passes nothing.
    pub fn set_srtp_keys(
        &mut self,
        id: EndpointId,
        inbound: &SrtpKeys,
        outbound: &SrtpKeys,
    ) -> Result<(), EngineError> {
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        e.session.set_keys(inbound, outbound)
    }

    /// An endpoint's video counters, if it has video.
    pub fn stats(&self, id: EndpointId) -> Option<VideoStats> {
        self.endpoints.get(&id).map(|e| VideoStats {
            packets_out: e.session.packets_out(),
            bytes_out: e.session.bytes_out(),
            unkeyed: e.session.unkeyed(),
            round_trip: e.session.round_trip(),
            ..e.stats
        })
    }

    /// Takes one video datagram (RTP or RTCP, muxed or not) from `id`.
    pub fn receive(
        &mut self,
        now: Instant,
        arrival: NtpTime,
        id: EndpointId,
        packet: &mut Vec<u8>,
    ) -> Result<(), EngineError> {
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        if rtcp::is_rtcp(packet) {
            return receive_rtcp(now, arrival, e, packet);
        }
        let wire_len = packet.len();
        if let Err(err) = e.session.unprotect_rtp(packet) {
            // Keys pending: counted by the session.
            e.stats.refused += u64::from(err != EngineError::KeysPending);
            return Err(err);
        }
        let rtp = match RtpPacket::parse(packet) {
            Ok(rtp) => rtp,
            Err(err) => {
                e.stats.refused += 1;
                return Err(err.into());
            }
        };
        if rtp.payload_type() != e.config.payload_type {
            e.stats.refused += 1;
            return Err(EngineError::PayloadType { expected: e.config.payload_type, got: rtp.payload_type() });
        }
        if e.session.on_rtp(now, &rtp) != Source::Same {
            // A new source (a re-INVITE, a restarted camera): start afresh.
            e.depacketizer = H264Depacketizer::new(DepacketizerConfig::default());
        }
        e.stats.last_received = Some(now);
        if e.depacketizer.push(rtp.sequence_number(), rtp.timestamp(), rtp.marker(), rtp.payload()).is_err() {
            e.stats.refused += 1;
            return Ok(());
        }
        e.stats.packets_in += 1;
        e.stats.bytes_in += wire_len as u64;
        Ok(())
    }

    /// One whole video frame time at `now`: [`begin_frame`](Self::begin_frame)
    /// and every [`step`](Self::step). `ntp` is `now` on the NTP clock.
    pub fn tick(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        out: &mut Vec<Outgoing>,
    ) -> Result<VideoTickSummary, EngineError> {
        self.begin_frame(now, ntp);
        let mut summary = VideoTickSummary::default();
        while self.step(out, &mut summary)? {}
        Ok(summary)
    }

    /// Starts a frame time: works out every receiver's view and who is shown.
    /// The work itself is done by [`step`](Self::step), one sender's frames
    /// or one view at a time, so that the caller can run audio ticks in
    /// between: a frame time's work (about 5 ms per 720p view) must never
    /// hold audio back. A frame still in progress is abandoned (dropped).
    pub fn begin_frame(&mut self, now: Instant, ntp: NtpTime) {
        let epoch = *self.epoch.get_or_insert(now);
        self.plan_views();
        self.compositor.begin_frame();
        let elapsed = now.saturating_duration_since(epoch);
        let ticks_90k = (elapsed.as_nanos() * u128::from(VIDEO_CLOCK) / 1_000_000_000) as u32;
        let mut senders: Vec<EndpointId> = self.endpoints.keys().copied().collect();
        senders.sort_unstable();
        // Popped from the back: keep them in order.
        senders.reverse();
        let mut views: Vec<ViewKey> = self.receivers.keys().copied().collect();
        views.reverse();
        let order = self.shown_order.clone();
        self.frame = Some(FrameWork { now, ntp, ticks_90k, order, senders, views });
    }

    /// Whether a frame time has work left.
    pub fn in_frame(&self) -> bool {
        self.frame.is_some()
    }

    /// Does one piece of the current frame time's work: one sender's frames
    /// (decoded if shown), or one view (composed, encoded, and sent to each of
    /// its receivers), or at the end the RTCP reports that are due. Returns
    /// whether work is left.
    pub fn step(&mut self, out: &mut Vec<Outgoing>, summary: &mut VideoTickSummary) -> Result<bool, EngineError> {
        let Some(frame) = self.frame.as_mut() else { return Ok(false) };
        let now = frame.now;
        let batch = self.pool.as_ref().map_or(1, |p| p.current_num_threads().max(1));
        if !frame.senders.is_empty() {
            let senders = frame.senders.split_off(frame.senders.len().saturating_sub(batch));
            self.take_senders(now, &senders, out, summary);
            return Ok(true);
        }
        if !frame.views.is_empty() {
            let keys = frame.views.split_off(frame.views.len().saturating_sub(batch));
            let (ticks_90k, order) = (frame.ticks_90k, std::mem::take(&mut frame.order));
            let result = self.encode_views(now, ticks_90k, &keys, &order, out, summary);
            if let Some(frame) = self.frame.as_mut() {
                frame.order = order;
            }
            result?;
            return Ok(true);
        }
        let ntp = frame.ntp;
        self.frame = None;
        self.views.retain(|key, _| self.receivers.contains_key(key));
        self.send_reports(now, ntp, out)?;
        Ok(false)
    }

    /// Runs each step's decodes, and each step's views (composed and
    /// encoded), on `pool`, as many at once as it has threads; `None`, the
    /// default, keeps everything on the caller's thread. A frame time's
    /// work is the same; with `n` threads on `n` free cores it takes about
    /// `1/n` of the time, so one large room is not held to one core. The
    /// pool is shared by every conference of a runtime; its threads persist,
    /// so a frame spawns none.
    pub fn set_pool(&mut self, pool: Option<Arc<rayon::ThreadPool>>) {
        self.pool = pool.filter(|p| p.current_num_threads() > 1);
    }

    /// Takes the frames of `senders` (decoded if shown), in parallel.
    fn take_senders(
        &mut self,
        now: Instant,
        senders: &[EndpointId],
        out: &mut Vec<Outgoing>,
        summary: &mut VideoTickSummary,
    ) {
        let visible = &self.visible;
        let jobs: Vec<(EndpointId, Option<f64>, &mut VideoEndpoint)> = self
            .endpoints
            .iter_mut()
            .filter(|(id, _)| senders.contains(id))
            .map(|(id, e)| (*id, visible.get(id).copied(), e))
            .collect();
        let pool = match &self.pool {
            Some(pool) if jobs.len() > 1 => pool,
            _ => {
                for (id, shown, e) in jobs {
                    take_frames(now, id, e, shown, out, summary);
                }
                return;
            }
        };
        let done: Vec<(Vec<Outgoing>, VideoTickSummary)> = pool.install(|| {
            jobs.into_par_iter()
                .map(|(id, shown, e)| {
                    let (mut out, mut summary) = (Vec::new(), VideoTickSummary::default());
                    take_frames(now, id, e, shown, &mut out, &mut summary);
                    (out, summary)
                })
                .collect()
        });
        for (packets, part) in done {
            out.extend(packets);
            summary.add(part);
        }
    }

    /// Composes and encodes the views `keys` (in parallel), then sends each
    /// to its receivers.
    fn encode_views(
        &mut self,
        now: Instant,
        ticks_90k: u32,
        keys: &[ViewKey],
        order: &[EndpointId],
        out: &mut Vec<Outgoing>,
        summary: &mut VideoTickSummary,
    ) -> Result<(), EngineError> {
        let mut jobs: Vec<(ViewKey, View)> = Vec::with_capacity(keys.len());
        let mut result = Ok(());
        for key in keys {
            match self.prepare_view(now, key, order) {
                Ok(Some(view)) => jobs.push((*key, view)),
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The parallel part: each view composed from the scaled panes and
        // encoded, on its own thread.
        let pictures: Vec<(EndpointId, &I420Frame)> = self
            .endpoints
            .iter()
            .filter(|(_, e)| !e.rx_muted)
            .filter_map(|(id, e)| e.picture.as_ref().map(|p| (*id, p)))
            .collect();
        let compositor = &self.compositor;
        let encode = |key: &ViewKey, view: &mut View| -> Result<(), EngineError> {
            let input = |p: EndpointId| pictures.iter().find(|(id, _)| *id == p).map(|(_, f)| *f);
            compositor.assemble(key, order, input, &mut view.canvas).map_err(|e| EngineError::Video(e.to_string()))?;
            let unit = view.encoder.encode(now, &view.canvas).map_err(|e| EngineError::Video(e.to_string()))?;
            view.keyframe = unit.keyframe;
            view.encoded.clear();
            view.encoded.extend_from_slice(unit.data);
            Ok(())
        };
        let encoded: Vec<Result<(), EngineError>> = match &self.pool {
            Some(pool) if jobs.len() > 1 => {
                pool.install(|| jobs.par_iter_mut().map(|(key, view)| encode(key, view)).collect())
            }
            _ => jobs.iter_mut().map(|(key, view)| encode(key, view)).collect(),
        };
        drop(pictures);
        for ((key, mut view), encoded) in jobs.into_iter().zip(encoded) {
            match encoded {
                Ok(()) => {
                    summary.encodes += 1;
                    if let Err(e) = self.send_view(ticks_90k, &key, &mut view, out, summary) {
                        result = result.and(Err(e));
                    }
                }
                Err(e) => result = result.and(Err(e)),
            }
            self.views.insert(key, view);
        }
        result
    }

    /// The sequential part of a view before its encode: its bitrate, its
    /// encoder (made, or rebuilt for a new bitrate), its receivers'
    /// keyframe requests, and its panes scaled. `None`: nobody receives it.
    fn prepare_view(&mut self, now: Instant, key: &ViewKey, order: &[EndpointId]) -> Result<Option<View>, EngineError> {
        let Some(ids) = self.receivers.get(key) else { return Ok(None) };
        // The view's bitrate: what its most limited receiver can take.
        let target = ids
            .iter()
            .filter_map(|id| self.endpoints.get(id))
            .map(|e| {
                [Some(e.config.bitrate), e.remb, e.tmmbr, e.loss_limit]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(e.config.bitrate)
            })
            .min()
            .unwrap_or(H264EncoderConfig::HD_720P30.bitrate)
            .max(MIN_BITRATE);
        let endpoints = &self.endpoints;
        self.compositor
            .prepare(key, order, |p| endpoints.get(&p).filter(|e| !e.rx_muted).and_then(|e| e.picture.as_ref()))
            .map_err(|e| EngineError::Video(e.to_string()))?;
        let mut view = match self.views.remove(key) {
            Some(view) => view,
            None => View {
                encoder: new_encoder(key, target)?,
                built: now,
                canvas: I420Frame::new(key.width, key.height).map_err(|e| EngineError::Video(e.to_string()))?,
                encoded: Vec::new(),
                keyframe: false,
                payloads: RtpPayloads::new(),
                single_nal_payloads: None,
            },
        };
        let current = view.encoder.config().bitrate;
        let moved = (f64::from(target) - f64::from(current)).abs() > BITRATE_STEP * f64::from(current);
        if moved && now.saturating_duration_since(view.built) >= BITRATE_HOLD {
            // Its first frame is an IDR, which every receiver of the view can take.
            match new_encoder(key, target) {
                Ok(encoder) => view.encoder = encoder,
                Err(e) => {
                    self.views.insert(*key, view);
                    return Err(e);
                }
            }
            view.built = now;
        }
        for id in ids {
            if let Some(e) = self.endpoints.get_mut(id) {
                if e.view != Some(*key) {
                    e.awaiting_keyframe = true;
                }
                if e.wants_keyframe || e.awaiting_keyframe {
                    view.encoder.request_keyframe();
                }
                e.wants_keyframe = false;
                e.view = Some(*key);
            }
        }
        Ok(Some(view))
    }

    /// Packetizes a view's encoded frame once (per packetization mode) and
    /// sends it to each of its receivers.
    fn send_view(
        &mut self,
        ticks_90k: u32,
        key: &ViewKey,
        view: &mut View,
        out: &mut Vec<Outgoing>,
        summary: &mut VideoTickSummary,
    ) -> Result<(), EngineError> {
        let Some(ids) = self.receivers.get(key) else { return Ok(()) };
        let unit_keyframe = view.keyframe;
        if view.encoded.is_empty() {
            return Ok(());
        }
        self.packetizer
            .packetize_annex_b(&view.encoded, &mut view.payloads)
            .map_err(|e| EngineError::Video(e.to_string()))?;
        view.single_nal_payloads = None;
        let needs_mode_0 = ids
            .iter()
            .filter_map(|id| self.endpoints.get(id))
            .any(|e| e.config.packetization_mode == PacketizationMode::SingleNalUnit);
        if needs_mode_0 {
            let mut payloads = RtpPayloads::new();
            // A NAL unit over the payload size cannot go in mode 0: those
            // receivers miss the frame and will ask for a keyframe.
            if self.single_nal_packetizer.packetize_annex_b(&view.encoded, &mut payloads).is_ok() {
                view.single_nal_payloads = Some(payloads);
            }
        }
        for id in ids {
            let Some(e) = self.endpoints.get_mut(id) else { continue };
            let payloads = match e.config.packetization_mode {
                PacketizationMode::NonInterleaved => Some(&view.payloads),
                PacketizationMode::SingleNalUnit => view.single_nal_payloads.as_ref(),
            };
            let Some(payloads) = payloads else { continue };
            if e.awaiting_keyframe && !unit_keyframe {
                continue;
            }
            if !e.session.can_send() {
                e.session.count_unkeyed();
                continue;
            }
            e.awaiting_keyframe = false;
            let timestamp = e.session.timestamp_base().wrapping_add(ticks_90k);
            e.session.set_timestamp(timestamp);
            e.stats.frames_out += 1;
            e.stats.tx_size = (key.width, key.height);
            e.stats.tx_target_bitrate = view.encoder.config().bitrate;
            for (payload, marker) in payloads.iter() {
                let mut bytes = Vec::with_capacity(payload.len() + 40);
                e.session.write_rtp(marker, e.config.payload_type, timestamp, &[], payload, &mut bytes)?;
                summary.packets += 1;
                out.push(Outgoing { endpoint: *id, flow: Flow::VideoRtp, bytes });
            }
        }
        Ok(())
    }

    /// Works out each receiver's view and who the views show.
    fn plan_views(&mut self) {
        for ids in self.receivers.values_mut() {
            ids.clear();
        }
        self.shown_order.clear();
        self.shown_order.extend(self.speakers.order().iter().filter(|p| !self.lobby.contains(p)));
        if !self.importance.is_empty() {
            // Stable: equally important participants keep the speaker order.
            let importance = &self.importance;
            self.shown_order.sort_by_key(|p| std::cmp::Reverse(importance.get(p).copied().unwrap_or(0)));
        }
        let order = &self.shown_order;
        for (&id, e) in &mut self.endpoints {
            if !e.config.receives || e.tx_muted || self.lobby.contains(&id) {
                // When it is sent video again, it starts at an IDR.
                e.view = None;
                continue;
            }
            let size = view_size(e.config.max_size, e.quality_cap);
            let key = ViewKey::for_receiver(e.config.layout, e.config.self_pane, size, id, order).with_labels(e.labels);
            self.receivers.entry(key).or_default().push(id);
        }
        self.receivers.retain(|_, ids| !ids.is_empty());
        for ids in self.receivers.values_mut() {
            ids.sort_unstable();
        }
        self.visible.clear();
        for key in self.receivers.keys() {
            let shown = key.self_pane.shown(order);
            let panes = key.layout.pane_count(shown);
            key.self_pane.contents(order, panes, &mut self.contents);
            key.layout.panes(shown, key.width, key.height, &mut self.rects);
            let picture = f64::from(MAX_VIDEO_SIZE.0) * f64::from(MAX_VIDEO_SIZE.1);
            for (c, rect) in self.contents.iter().zip(&self.rects) {
                if let PaneContent::Participant(p) = c {
                    let share = f64::from(rect.width) * f64::from(rect.height) / picture;
                    let largest = self.visible.entry(*p).or_insert(0.0);
                    *largest = largest.max(share);
                }
            }
        }
    }

    /// An SR (or RR) and SDES on every video stream whose report is due,
    /// or that is owed a TMMBN (then at once, in the same compound).
    fn send_reports(&mut self, now: Instant, ntp: NtpTime, out: &mut Vec<Outgoing>) -> Result<(), EngineError> {
        for (id, e) in &mut self.endpoints {
            let tmmbn = e.tmmbn_due.take();
            let due = e.session.report_due(now);
            if !due && tmmbn.is_none() {
                continue;
            }
            if due {
                // 0.75..1.25 of the interval, spread by SSRC; the first within half.
                let interval = RTCP_INTERVAL.mul_f64(0.75 + f64::from(e.session.ssrc() % 500) / 1000.0);
                if e.session.schedule_report(now, interval) && tmmbn.is_none() {
                    continue;
                }
            }
            let tmmbn =
                tmmbn.map(|entry| RtcpPacket::Tmmbn(Tmmbn { sender_ssrc: e.session.ssrc(), entries: vec![entry] }));
            let mut bytes = Vec::with_capacity(200);
            if e.session.write_report(now, ntp, tmmbn, &mut bytes)? {
                out.push(Outgoing { endpoint: *id, flow: Flow::VideoRtcp, bytes });
            }
        }
        Ok(())
    }
}

/// Drains one sender's assembled frames: decodes them if it is shown
/// (`largest`: the share of a 720p picture its largest pane covers), else skips
/// them (and marks the stream stale); asks for a keyframe where the stream
/// is broken or comes back into view, and for a lower bitrate while it is
/// shown small (a higher one when it grows).
fn take_frames(
    now: Instant,
    id: EndpointId,
    e: &mut VideoEndpoint,
    largest: Option<f64>,
    out: &mut Vec<Outgoing>,
    summary: &mut VideoTickSummary,
) {
    let visible = largest.is_some() && !e.rx_muted;
    let mut needs_keyframe = false;
    while let Some(assembled) = e.depacketizer.poll() {
        let unit = match assembled {
            Assembled::Frame(unit) => unit,
            Assembled::KeyframeNeeded => {
                e.stale = true;
                needs_keyframe = true;
                continue;
            }
        };
        e.stats.frames_in += 1;
        if !visible {
            e.stale = true;
        } else if !e.stale || unit.is_keyframe() {
            let decoder = match &mut e.decoder {
                Some(d) => Some(d),
                None => H264Decoder::new().ok().map(|d| e.decoder.insert(d)),
            };
            let picture = e.picture.get_or_insert_with(|| I420Frame::new(2, 2).expect("2×2 is valid"));
            match decoder.map(|d| d.decode(unit.annex_b(), picture)) {
                Some(Ok(decoded)) => {
                    e.stale = false;
                    summary.decodes += 1;
                    if decoded {
                        e.stats.frames_decoded += 1;
                        e.stats.rx_size = (picture.width(), picture.height());
                    }
                }
                _ => {
                    e.stale = true;
                    needs_keyframe = true;
                }
            }
        }
        e.depacketizer.recycle(unit);
    }
    if visible && e.stale {
        needs_keyframe = true;
    }
    if needs_keyframe && e.config.sends {
        if let (Some(request), Some(media_ssrc)) = (e.keyframe_requests.request(now), e.session.remote_ssrc()) {
            if let Ok(Some(bytes)) = keyframe_request(e, request, media_ssrc) {
                e.stats.keyframe_requests_sent += 1;
                out.push(Outgoing { endpoint: id, flow: Flow::VideoRtcp, bytes });
            }
        }
    }
    if let (true, Some(media_ssrc)) = (e.config.sends, e.session.remote_ssrc()) {
        let share = if visible { largest.unwrap_or(0.0) } else { 0.0 };
        if let Some(limit) = e.source_rate.update(now, share) {
            if let Ok(Some(bytes)) = bitrate_request(e, limit, media_ssrc) {
                e.stats.source_limit = limit;
                out.push(Outgoing { endpoint: id, flow: Flow::VideoRtcp, bytes });
            }
        }
    }
}

/// A TMMBR (or REMB) asking the sender of `media_ssrc` to keep under `limit`
/// bits per second, in a compound led by a receiver report; `None` while
/// keys are pending.
fn bitrate_request(e: &mut VideoEndpoint, limit: u32, media_ssrc: u32) -> Result<Option<Vec<u8>>, EngineError> {
    let ssrc = e.session.ssrc();
    let request = match e.source_rate.method() {
        BitrateRequestMethod::Remb => {
            RtcpPacket::Remb(Remb { sender_ssrc: ssrc, bitrate_bps: u64::from(limit), ssrcs: vec![media_ssrc] })
        }
        _ => RtcpPacket::Tmmbr(Tmmbr {
            sender_ssrc: ssrc,
            // IPv4 + UDP + RTP headers: what RFC 5104 calls the overhead.
            entries: vec![TmmbrEntry { ssrc: media_ssrc, bitrate_bps: u64::from(limit), overhead: 40 }],
        }),
    };
    e.session.write_feedback(request)
}

/// An encoder for `key`'s picture at `bitrate`.
/// The picture a receiver is sent: within its SDP limit, its `qualityMain`
/// cap and [`MAX_VIDEO_SIZE`], each side even and at least 16 pixels (an
/// H.264 macroblock).
fn view_size(sdp: (u32, u32), quality: (u32, u32)) -> (u32, u32) {
    let side = |a: u32, b: u32, max: u32| (a.min(b).min(max).max(16)) & !1;
    (side(sdp.0, quality.0, MAX_VIDEO_SIZE.0), side(sdp.1, quality.1, MAX_VIDEO_SIZE.1))
}

fn new_encoder(key: &ViewKey, bitrate: u32) -> Result<H264Encoder, EngineError> {
    let config = H264EncoderConfig { width: key.width, height: key.height, bitrate, max_fps: 30.0 };
    H264Encoder::new(config).map_err(|e| EngineError::Video(e.to_string()))
}

/// A PLI or FIR to a sender, in a compound with an RR as RFC 4585 wants;
/// `None` while keys are pending.
fn keyframe_request(
    e: &mut VideoEndpoint,
    request: KeyframeRequest,
    media_ssrc: u32,
) -> Result<Option<Vec<u8>>, EngineError> {
    let sender_ssrc = e.session.ssrc();
    let feedback = match request {
        KeyframeRequest::Pli => RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc, media_ssrc }),
        KeyframeRequest::Fir { sequence } => RtcpPacket::FullIntraRequest(FullIntraRequest {
            sender_ssrc,
            entries: vec![FirEntry { ssrc: media_ssrc, sequence_number: sequence }],
        }),
    };
    e.session.write_feedback(feedback)
}

/// A report block about our stream: more than 10 % lost cuts what the
/// receiver is sent by half the loss; under 2 % lets it grow 5 % a report
/// back towards the configured bitrate (reports come every second or few).
fn on_loss_report(e: &mut VideoEndpoint, block: &crate::rtcp::ReportBlock) {
    let loss = f64::from(block.fraction_lost) / 256.0;
    let current = e.loss_limit.unwrap_or(e.config.bitrate);
    e.loss_limit = if loss > 0.10 {
        Some(((f64::from(current) * (1.0 - loss / 2.0)) as u32).max(MIN_BITRATE))
    } else if loss < 0.02 {
        let raised = (f64::from(current) * 1.05) as u32;
        (raised < e.config.bitrate).then_some(raised)
    } else {
        Some(current)
    };
}

/// RTCP from an endpoint on its video stream: keyframe requests for what we
/// send it, its SR for our report blocks.
fn receive_rtcp(
    now: Instant,
    arrival: NtpTime,
    e: &mut VideoEndpoint,
    packet: &mut Vec<u8>,
) -> Result<(), EngineError> {
    if let Err(err) = e.session.unprotect_rtcp(packet) {
        e.stats.refused += u64::from(err != EngineError::KeysPending);
        return Err(err);
    }
    for item in rtcp::compound(packet) {
        let Ok(item) = item else {
            e.stats.refused += 1;
            break;
        };
        e.stats.last_received = Some(now);
        // SR/RR: the report block about our stream, for its loss.
        if let Some(block) = e.session.on_rtcp(now, arrival, &item) {
            on_loss_report(e, &block);
        }
        let ssrc = e.session.ssrc();
        match item {
            RtcpPacket::PictureLossIndication(pli) if pli.media_ssrc == ssrc => {
                e.wants_keyframe = true;
                e.stats.keyframe_requests_received += 1;
            }
            RtcpPacket::FullIntraRequest(fir) if fir.entries.iter().any(|f| f.ssrc == ssrc) => {
                e.wants_keyframe = true;
                e.stats.keyframe_requests_received += 1;
            }
            // A receiver's estimate of what it can take (it covers the
            // streams it lists; we send it one).
            RtcpPacket::Remb(remb) => e.remb = Some(remb.bitrate_bps.min(u64::from(u32::MAX)) as u32),
            RtcpPacket::Tmmbr(tmmbr) => {
                if let Some(entry) = tmmbr.entries.iter().find(|t| t.ssrc == ssrc) {
                    e.tmmbr = Some(entry.bitrate_bps.min(u64::from(u32::MAX)) as u32);
                    e.tmmbn_due = Some(TmmbrEntry { ssrc: tmmbr.sender_ssrc, ..*entry });
                }
            }
            // The sender took our limit.
            RtcpPacket::Tmmbn(n) => {
                if let Some(entry) = n.entries.iter().find(|t| t.ssrc == ssrc) {
                    e.source_rate.on_tmmbn(entry.bitrate_bps);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "video_tests.rs"]
mod tests;
