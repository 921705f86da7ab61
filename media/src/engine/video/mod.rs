//! One conference's video, sans-IO: H.264 or VP8 over (S)RTP in, a decode of only
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
//!
//! The parts: [`endpoint`] is one endpoint's stream around its RTP session
//! (receiving, its frames, feedback to it, our reports), [`view`] the views
//! and their encoders, [`rate`] what bitrate each view is encoded at and
//! what each sender is asked to send.

mod endpoint;
mod rate;
mod retransmit;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use rayon::prelude::*;

use self::endpoint::{take_frames, VideoEndpoint};
use self::rate::ReceiverRate;
use self::view::{view_size, View};
use super::session::{Keying, OurStream, RtpSession};
use super::{EndpointId, EngineError, Outgoing, SrtpKeys};
use crate::rtcp::NtpTime;
use crate::video::codec::{VideoCodec, VideoDepacketizer};
use crate::video::compose::{Compositor, ViewKey};
use crate::video::frame::Rect;
use crate::video::h264::H264EncoderConfig;
use crate::video::h264_rtp::PacketizationMode;
use crate::video::keyframe_request::{KeyframeRequestLimiter, KeyframeRequestMethod};
use crate::video::layout::{Layout, PaneContent, SelfPaneMode, SpeakerOrder, ViewLayout};
use crate::video::source_rate::{BitrateRequestMethod, SourceRate};

/// The RTP clock of video.
const VIDEO_CLOCK: u64 = 90_000;
/// The largest RTP payload we send: a 1200-byte packet with header and
/// SRTP tag stays under any path MTU a conferencing network has.
const MAX_PAYLOAD: usize = 1100;
/// The largest picture we compose: CMS's `max1080p30` class is not offered;
/// 720p is what `LocalVideo::hd720` advertises.
pub const MAX_VIDEO_SIZE: (u32, u32) = (1280, 720);

/// What was negotiated for one endpoint's video (SDP `m=video`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// H.264 or VP8, both ways.
    pub codec: VideoCodec,
    /// The payload type, both ways.
    pub payload_type: u8,
    /// H.264: mode 0 or 1 (RFC 6184), both ways.
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
    /// What it sees: the leg's `layoutTemplate`, else its `chosenLayout`,
    /// else its `defaultLayout`.
    pub layout: ViewLayout,
    /// CMS `panePlacementSelfPaneMode`.
    pub self_pane: SelfPaneMode,
    /// Our SSRC towards it; `None`: random.
    pub ssrc: Option<u32>,
    /// The CNAME of our RTCP.
    pub cname: String,
    /// It asks for lost packets by generic NACK (`a=rtcp-fb nack`): what we
    /// send it is kept a while and sent again when it asks.
    pub nack: bool,
}

impl VideoConfig {
    /// H.264 at 720p and 1.5 Mbit/s both ways, mode 1, PLI, plain RTP, `automatic`.
    pub fn new(payload_type: u8) -> Self {
        Self {
            codec: VideoCodec::H264,
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
            layout: ViewLayout::Cms(Layout::Automatic),
            self_pane: SelfPaneMode::Skip,
            ssrc: None,
            cname: String::from("confero"),
            nack: false,
        }
    }
}

/// What the API changes on a live video stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSettings {
    /// What it sees: the leg's `layoutTemplate`, else its `chosenLayout`,
    /// else its `defaultLayout`.
    pub layout: ViewLayout,
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
    pub fn new(layout: impl Into<ViewLayout>) -> Self {
        Self {
            layout: layout.into(),
            rx_muted: false,
            tx_muted: false,
            max_size: MAX_VIDEO_SIZE,
            labels: true,
            label: None,
        }
    }
}

/// One endpoint's video counters, for the call leg's `rxVideo`/`txVideo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoStats {
    /// The stream's codec.
    pub codec: VideoCodec,
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
    /// Packets it asked for again (generic NACK) and was sent again.
    pub retransmitted: u64,
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

/// One conference's video: only the senders some view shows are decoded,
/// each distinct view is composed and encoded once and shared by its
/// receivers (why: `engine/video/mod.rs`).
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

    /// Sends the endpoint's view an IDR with its next picture, as its own
    /// PLI would (the API's `generateKeyframe`).
    pub fn request_keyframe(&mut self, id: EndpointId) -> Result<(), EngineError> {
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        e.wants_keyframe = true;
        Ok(())
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
        let keying = Keying::from_config(config.srtp_in.as_ref(), config.srtp_out.as_ref(), config.srtp_pending)?;
        let clock_rate = VIDEO_CLOCK as u32;
        let ours = OurStream { ssrc, sequence, timestamp: timestamp_base, clock_rate, cname: config.cname.clone() };
        let session = RtpSession::new(ours, keying)?;
        self.speakers.join(id);
        let endpoint = VideoEndpoint {
            session,
            depacketizer: VideoDepacketizer::new(config.codec),
            decoder: None,
            picture: None,
            stale: false,
            keyframe_requests: KeyframeRequestLimiter::new(config.keyframe_method),
            source_rate: SourceRate::new(config.bitrate_request, config.bitrate),
            view: None,
            wants_keyframe: false,
            rate: ReceiverRate::new(config.bitrate),
            awaiting_keyframe: true,
            stats: VideoStats::default(),
            retransmit: Default::default(),
            resend: Vec::new(),
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
            codec: e.config.codec,
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
        e.receive(now, arrival, packet)
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
        let mut views: Vec<ViewKey> = self.receivers.keys().cloned().collect();
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
            let key = ViewKey::for_receiver(e.config.layout.clone(), e.config.self_pane, size, id, order)
                .with_labels(e.labels)
                .with_codec(e.config.codec);
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
            // Packets it asked for again since the last frame time.
            for bytes in e.resend.drain(..) {
                out.push(Outgoing { endpoint: *id, flow: super::Flow::VideoRtp, bytes });
            }
            if let Some(bytes) = e.report(now, ntp)? {
                out.push(Outgoing { endpoint: *id, flow: super::Flow::VideoRtcp, bytes });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
