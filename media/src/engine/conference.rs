//! [`Conference`]: per-endpoint receive and send state around one mixer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::dtmf::{DtmfError, DtmfSender, EventPacket};
use super::prompt::{Playing, Prompt};
use super::session::{Keying, OurStream, RtpSession, Source};
use super::video::{VideoConfig, VideoMix, VideoSettings, VideoStats, VideoTickSummary};
use super::{EndpointConfig, EndpointId, EndpointStats, EngineError, Flow, MediaKind, Outgoing, SrtpKeys, TickSummary};
use crate::codec::{AudioDecoder, AudioEncoder, AudioFormat, OpusConfig, FRAME_SAMPLES};
use crate::jitter::{JitterBuffer, Playout};
use crate::mixer::{Delivery, FrameInput, Mixer, MixerConfig, ParticipantSettings, StreamKind};
use crate::rtcp::{self, NtpTime};
use crate::rtp::{AudioLevel, HeaderExtension, RtpPacket};
use crate::srtp::SrtpError;

/// The largest packet we build: header, extension, payload and SRTP tag.
const PACKET_CAPACITY: usize = 1500;

/// The mean interval between our RTCP reports to one endpoint. RFC 3550's
/// minimum of 5 s; each interval is randomised over 0.5..1.5 of it so the
/// reports of a large conference do not all fall in the same tick.
const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// One endpoint's state.
struct Endpoint {
    payload_type: u8,
    /// RFC 4733 telephone-event payload type, if negotiated.
    telephone_event_pt: Option<u8>,
    /// The RTP timestamp of the last DTMF event reported: one report per
    /// event, however many packets (and retransmitted ends) carry it.
    last_event_timestamp: Option<u32>,
    /// DTMF we send it (the API's `dtmfSequence`), in place of its audio.
    dtmf_out: DtmfSender,
    format: AudioFormat,
    /// What the API asked for; a prompt overrides both while it plays.
    rx_muted: bool,
    tx_muted: bool,
    /// The lobby: a prompt played with the endpoint's own encoder, in place
    /// of the conference, which does not hear the endpoint either.
    prompt: Option<(Playing, Box<dyn AudioEncoder>)>,
    audio_level_id: Option<u8>,
    /// Our RTP session with it: SSRC, sequence, timestamp, SRTP, reports.
    session: RtpSession,
    jitter: JitterBuffer,
    decoder: Box<dyn AudioDecoder>,
    /// Decoder output, all channels.
    decoded: Vec<i16>,
    /// The level of the newest packet received (RFC 6464), if it had one.
    level: Option<AudioLevel>,
    /// This tick's level of what it said, for our outbound extension.
    tick_level: u8,
    /// RTP timestamp units per tick.
    timestamp_step: u32,
    /// No packet went out last tick: the next one carries the marker.
    after_silence: bool,
    /// Receive-side counters; the send side's are the session's.
    stats: EndpointStats,
}

/// One conference's media. See the [module docs](super).
pub struct Conference {
    mixer: Mixer,
    endpoints: HashMap<EndpointId, Endpoint>,
    /// Ids in attach order, so ticks are deterministic.
    order: Vec<EndpointId>,
    /// Mono 48 kHz frame handed to the mixer.
    pcm: Vec<i16>,
    /// This tick's deliveries, copied out of the mixer (the payloads are
    /// shared `Arc`s).
    deliveries: Vec<Delivery>,
    /// Receiver → its index in `deliveries`, rebuilt each tick: a lookup per
    /// receiver instead of a scan (a scan is quadratic in a 200-party room).
    delivery_index: HashMap<EndpointId, usize>,
    speakers: Vec<EndpointId>,
    /// Packet buffers to reuse.
    spare: Vec<Vec<u8>>,
    /// SSRCs, sequence and timestamp bases, and the RTCP report spread.
    rng: StdRng,
    /// Opus settings, for prompt encoders.
    opus: OpusConfig,
    /// DTMF digits received since the last `take_dtmf`.
    dtmf: Vec<(EndpointId, char)>,
    /// A prompt frame and its encoding.
    prompt_pcm: Vec<i16>,
    prompt_payload: Vec<u8>,
    /// Maps the caller's `Instant`s to wall-clock NTP time for sender
    /// reports. Only the differences matter for round-trip times (the
    /// endpoint echoes our own timestamps), so without
    /// [`Conference::set_wallclock`] the first time seen counts as the epoch.
    wallclock: Option<(Instant, NtpTime)>,
    /// The conference's video half; it follows the mixer's active speaker.
    video: VideoMix,
}

impl Conference {
    /// An empty conference mixing with `config`. `rng` is its only source
    /// of randomness (SSRCs, sequence and timestamp bases, report times):
    /// the runtime seeds it from entropy, tests from a constant.
    pub fn new(config: MixerConfig, mut rng: StdRng) -> Self {
        let video = VideoMix::new(StdRng::seed_from_u64(rng.gen()));
        Self {
            opus: config.opus,
            dtmf: Vec::new(),
            prompt_pcm: vec![0; FRAME_SAMPLES],
            prompt_payload: Vec::with_capacity(PACKET_CAPACITY),
            mixer: Mixer::new(config),
            endpoints: HashMap::new(),
            order: Vec::new(),
            pcm: vec![0; FRAME_SAMPLES],
            deliveries: Vec::new(),
            delivery_index: HashMap::new(),
            speakers: Vec::new(),
            spare: Vec::new(),
            rng,
            wallclock: None,
            video,
        }
    }

    /// Anchors NTP timestamps: `at` is `since_unix_epoch` on the wall
    /// clock. The shell calls this once; the engine itself reads no clock.
    pub fn set_wallclock(&mut self, at: Instant, since_unix_epoch: Duration) {
        self.wallclock = Some((at, NtpTime::from_unix(since_unix_epoch)));
    }

    fn ntp(&mut self, now: Instant) -> NtpTime {
        let (at, base) = *self.wallclock.get_or_insert((now, NtpTime(0)));
        ntp_at(at, base, now)
    }

    /// Attaches an endpoint: its jitter buffer, decoder, SRTP contexts and
    /// outbound RTP line, and a place in the mixer.
    pub fn attach(&mut self, id: EndpointId, cfg: EndpointConfig) -> Result<(), EngineError> {
        if self.endpoints.contains_key(&id) {
            return Err(EngineError::DuplicateEndpoint(id));
        }
        let format = cfg.format;
        let frame = Duration::from_millis(u64::from(format.ptime_ms));
        let jitter = JitterBuffer::new(crate::jitter::JitterConfig {
            clock_rate: format.clock_rate,
            frame_duration: frame,
            ..cfg.jitter
        })?;
        let decoder = format.new_decoder()?;
        let ssrc = cfg.ssrc.unwrap_or_else(|| self.rng.gen());
        let sequence = cfg.initial_sequence.unwrap_or_else(|| self.rng.gen());
        let timestamp = cfg.initial_timestamp.unwrap_or_else(|| self.rng.gen());
        let keying = Keying::from_config(cfg.srtp_in.as_ref(), cfg.srtp_out.as_ref(), cfg.srtp_pending)?;
        let ours = OurStream { ssrc, sequence, timestamp, clock_rate: format.clock_rate, cname: cfg.cname };
        let session = RtpSession::new(ours, keying)?;
        let settings =
            ParticipantSettings { format, rx_muted: cfg.rx_muted, tx_muted: cfg.tx_muted, importance: cfg.importance };
        self.mixer.add_participant(id, settings)?;
        self.video.set_importance(id, cfg.importance);
        let timestamp_step = (u64::from(format.clock_rate) * u64::from(format.ptime_ms) / 1000) as u32;
        self.endpoints.insert(
            id,
            Endpoint {
                payload_type: cfg.payload_type,
                telephone_event_pt: cfg.telephone_event_pt,
                last_event_timestamp: None,
                dtmf_out: DtmfSender::new(),
                format,
                rx_muted: cfg.rx_muted,
                tx_muted: cfg.tx_muted,
                prompt: None,
                audio_level_id: cfg.audio_level_id,
                session,
                jitter,
                decoder,
                decoded: vec![0; format.frame_len()],
                level: None,
                tick_level: AudioLevel::SILENCE,
                timestamp_step,
                after_silence: true,
                stats: EndpointStats::default(),
            },
        );
        self.order.push(id);
        self.video.join(id);
        if let Some(prompt) = cfg.prompt {
            self.set_prompt(id, Some(prompt))?;
        }
        Ok(())
    }

    /// Detaches an endpoint and forgets its state.
    pub fn detach(&mut self, id: EndpointId) -> Result<(), EngineError> {
        self.endpoints.remove(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        self.order.retain(|&o| o != id);
        self.video.leave(id);
        self.mixer.remove_participant(id)?;
        Ok(())
    }

    /// Adds video to an attached endpoint (or replaces its video).
    pub fn attach_video(&mut self, id: EndpointId, config: VideoConfig) -> Result<(), EngineError> {
        if !self.endpoints.contains_key(&id) {
            return Err(EngineError::UnknownEndpoint(id));
        }
        self.video.attach(id, config)
    }

    /// Keys one of an endpoint's streams after attach (DTLS-SRTP, or new
    /// SDES keys): until keys come to a stream attached with
    /// `srtp_pending`, its media is dropped both ways, never passed or sent
    /// in clear.
    pub fn set_srtp_keys(
        &mut self,
        id: EndpointId,
        media: MediaKind,
        inbound: &SrtpKeys,
        outbound: &SrtpKeys,
    ) -> Result<(), EngineError> {
        match media {
            MediaKind::Audio => {
                let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
                e.session.set_keys(inbound, outbound)
            }
            MediaKind::Video => self.video.set_srtp_keys(id, inbound, outbound),
        }
    }

    /// Applies the API's video settings (layout, video mutes), live.
    pub fn set_video_settings(&mut self, id: EndpointId, settings: VideoSettings) -> Result<(), EngineError> {
        self.video.set_settings(id, settings)
    }

    /// An IDR to the endpoint with its view's next picture (`generateKeyframe`).
    pub fn generate_keyframe(&mut self, id: EndpointId) -> Result<(), EngineError> {
        self.video.request_keyframe(id)
    }

    /// Whether any endpoint has video (then [`Conference::tick_video`] is due
    /// every frame time).
    pub fn has_video(&self) -> bool {
        !self.video.is_empty()
    }

    /// An endpoint's video counters, if it has video.
    pub fn video_stats(&self, id: EndpointId) -> Option<VideoStats> {
        self.video.stats(id)
    }

    /// The speaker order the video layouts follow, most recent first.
    pub fn speaker_order(&self) -> &[EndpointId] {
        self.video.speaker_order()
    }

    /// Takes one datagram from the endpoint's video address.
    pub fn receive_video(&mut self, now: Instant, id: EndpointId, packet: &mut Vec<u8>) -> Result<(), EngineError> {
        let arrival = self.ntp(now);
        self.video.receive(now, arrival, id, packet)
    }

    /// One whole video frame time: see [`VideoMix::tick`]. `out` is cleared first.
    pub fn tick_video(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Result<VideoTickSummary, EngineError> {
        out.clear();
        let ntp = self.ntp(now);
        self.video.tick(now, ntp, out)
    }

    /// Starts a video frame time, to be worked through with
    /// [`Conference::video_step`] between audio ticks (see [`VideoMix::begin_frame`]).
    pub fn begin_video_frame(&mut self, now: Instant) {
        let ntp = self.ntp(now);
        self.video.begin_frame(now, ntp);
    }

    /// The thread pool video frame times run their decodes and views on
    /// (see [`VideoMix::set_pool`]).
    pub fn set_video_pool(&mut self, pool: Option<std::sync::Arc<rayon::ThreadPool>>) {
        self.video.set_pool(pool);
    }

    /// Whether a video frame time has work left.
    pub fn in_video_frame(&self) -> bool {
        self.video.in_frame()
    }

    /// One piece of the video frame time's work, appended to `out`; whether
    /// work is left (see [`VideoMix::step`]).
    pub fn video_step(&mut self, out: &mut Vec<Outgoing>, summary: &mut VideoTickSummary) -> Result<bool, EngineError> {
        self.video.step(out, summary)
    }

    /// Stops (or resumes) mixing what this endpoint says. During a prompt
    /// it is remembered and applied when the prompt is cleared.
    pub fn set_rx_muted(&mut self, id: EndpointId, muted: bool) -> Result<(), EngineError> {
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        e.rx_muted = muted;
        if e.prompt.is_none() {
            self.mixer.set_rx_muted(id, muted)?;
        }
        Ok(())
    }

    /// Stops (or resumes) sending this endpoint audio. During a prompt it
    /// is remembered and applied when the prompt is cleared.
    pub fn set_tx_muted(&mut self, id: EndpointId, muted: bool) -> Result<(), EngineError> {
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        e.tx_muted = muted;
        if e.prompt.is_none() {
            self.mixer.set_tx_muted(id, muted)?;
        }
        Ok(())
    }

    /// Plays `prompt` to the endpoint in place of the conference, which
    /// stops hearing it too (the lobby of a space with a passcode); `None`
    /// lets it into the conference with the mutes the API set.
    pub fn set_prompt(&mut self, id: EndpointId, prompt: Option<Prompt>) -> Result<(), EngineError> {
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        match prompt {
            Some(p) => {
                let encoder = match e.prompt.take() {
                    Some((_, encoder)) => encoder,
                    None => e.format.new_encoder(&self.opus)?,
                };
                e.prompt = Some((Playing::new(p), encoder));
                self.mixer.set_rx_muted(id, true)?;
                self.mixer.set_tx_muted(id, true)?;
                self.video.set_lobby(id, true);
            }
            None => {
                if e.prompt.take().is_some() {
                    e.after_silence = true;
                }
                self.mixer.set_rx_muted(id, e.rx_muted)?;
                self.mixer.set_tx_muted(id, e.tx_muted)?;
                self.video.set_lobby(id, false);
            }
        }
        Ok(())
    }

    /// Queues DTMF keys (`0-9 * # A-D`, `,` a one-second pause) to send the
    /// endpoint as RFC 4733 telephone-events, after any still waiting.
    pub fn send_dtmf(&mut self, id: EndpointId, sequence: &str) -> Result<(), EngineError> {
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        if e.telephone_event_pt.is_none() {
            return Err(DtmfError::NotNegotiated.into());
        }
        e.dtmf_out.push(sequence)?;
        Ok(())
    }

    /// The DTMF digits (RFC 4733) received since the last call, in order.
    pub fn take_dtmf(&mut self) -> std::vec::Drain<'_, (EndpointId, char)> {
        self.dtmf.drain(..)
    }

    /// Sets this endpoint's importance in speaker selection and in the video
    /// layouts (the most prominent panes).
    pub fn set_importance(&mut self, id: EndpointId, importance: i32) -> Result<(), EngineError> {
        self.video.set_importance(id, importance);
        self.mixer.set_importance(id, importance).map_err(Into::into)
    }

    /// The dominant speaker, if anyone speaks.
    pub fn active_speaker(&self) -> Option<EndpointId> {
        self.mixer.active_speaker()
    }

    /// Attached endpoints.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no endpoint is attached.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// An endpoint's counters.
    pub fn stats(&self, id: EndpointId) -> Result<EndpointStats, EngineError> {
        let e = self.endpoints.get(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        let (rx_jitter, rx_lost) = e.session.rx_jitter_and_loss();
        let (tx_fraction_lost, tx_jitter) = e.session.tx_loss_and_jitter();
        let video = self.video.stats(id);
        // Video keeps a call alive as well as audio does.
        let last_received = match (e.stats.last_received, video.and_then(|v| v.last_received)) {
            (Some(a), Some(v)) => Some(a.max(v)),
            (a, v) => a.or(v),
        };
        Ok(EndpointStats {
            jitter: e.jitter.stats(),
            rx_jitter,
            rx_lost,
            packets_out: e.session.packets_out(),
            bytes_out: e.session.bytes_out(),
            rtcp_out: e.session.rtcp_out(),
            unkeyed: e.session.unkeyed(),
            ssrc_refused: e.session.ssrc_refused(),
            round_trip: e.session.round_trip(),
            tx_fraction_lost,
            tx_jitter,
            video,
            last_received,
            ..e.stats
        })
    }

    /// Takes one datagram the endpoint sent, which arrived at `now`: SRTP
    /// unprotect (in place), RTP parse, payload type check, audio level,
    /// jitter buffer. A refused packet changes no stream state and is
    /// counted in [`EndpointStats`].
    pub fn receive(&mut self, now: Instant, id: EndpointId, packet: &mut Vec<u8>) -> Result<(), EngineError> {
        if rtcp::is_rtcp(packet) {
            let arrival = self.ntp(now);
            let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
            return receive_rtcp(now, arrival, e, packet);
        }
        let e = self.endpoints.get_mut(&id).ok_or(EngineError::UnknownEndpoint(id))?;
        let wire_len = packet.len();
        if let Err(err) = e.session.unprotect_rtp(packet) {
            count_refusal(&mut e.stats, &err);
            return Err(err);
        }
        let rtp = match RtpPacket::parse(packet) {
            Ok(rtp) => rtp,
            Err(err) => {
                e.stats.malformed += 1;
                return Err(err.into());
            }
        };
        // RFC 4733 events share the stream's SSRC and sequence numbers.
        let is_event = e.telephone_event_pt == Some(rtp.payload_type()) && rtp.payload_type() != e.payload_type;
        if !is_event && rtp.payload_type() != e.payload_type {
            e.stats.wrong_payload_type += 1;
            return Err(EngineError::PayloadType { expected: e.payload_type, got: rtp.payload_type() });
        }
        // A new source (after a first) starts the jitter buffer afresh; one
        // that has not earned the stream is dropped (see `RtpSession::on_rtp`).
        match e.session.on_rtp(now, &rtp) {
            Source::Changed => e.jitter.reset(),
            Source::Refused => return Err(EngineError::SsrcRefused(rtp.ssrc())),
            Source::Same | Source::First => {}
        }
        if is_event {
            if let Some(digit) = telephone_event(e, rtp.timestamp(), rtp.payload()) {
                self.dtmf.push((id, digit));
            }
            e.stats.packets_in += 1;
            e.stats.bytes_in += wire_len as u64;
            e.stats.last_received = Some(now);
            return Ok(());
        }
        e.level = e.audio_level_id.and_then(|ext| rtp.audio_level(ext));
        e.jitter.push(now, rtp.sequence_number(), rtp.timestamp(), rtp.payload(), rtp.marker());
        e.stats.packets_in += 1;
        e.stats.bytes_in += wire_len as u64;
        e.stats.last_received = Some(now);
        Ok(())
    }

    /// Runs the 20 ms tick at `now`: plays out every jitter buffer, decodes
    /// what the mixer needs, mixes, and appends one packet per receiving
    /// endpoint to `out`. `out` is cleared first; the buffers of what it
    /// held are reused.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Result<TickSummary, EngineError> {
        self.spare.extend(out.drain(..).map(|o| o.bytes));
        let mut summary = TickSummary::default();
        for id in &self.order {
            let e = self.endpoints.get_mut(id).expect("order and endpoints agree");
            let played = play_out(now, *id, e, &self.mixer, &mut self.pcm)?;
            summary.decodes += usize::from(played == Played::Decoded);
            let input = match played {
                Played::Decoded => {
                    let level = e.level;
                    e.tick_level = level.unwrap_or_else(|| AudioLevel::from_samples(&self.pcm, true)).level;
                    FrameInput::Decoded { pcm: &self.pcm, level }
                }
                Played::NotNeeded => {
                    e.tick_level = e.level.map_or(AudioLevel::SILENCE, |l| l.level);
                    FrameInput::Silent { level: e.level }
                }
                Played::Nothing => {
                    e.tick_level = AudioLevel::SILENCE;
                    FrameInput::Silent { level: None }
                }
            };
            self.mixer.set_input(*id, input)?;
        }

        let output = self.mixer.tick()?;
        summary.encodes = output.stats.encodes();

        summary.events.extend_from_slice(&output.events);
        self.deliveries.clear();
        self.deliveries.extend_from_slice(&output.deliveries);
        self.delivery_index.clear();
        self.delivery_index.extend(self.deliveries.iter().enumerate().map(|(i, d)| (d.receiver, i)));
        self.speakers.clear();
        self.speakers.extend(self.mixer.speakers());
        self.speakers.sort_unstable();
        self.video.speaker_tick(self.mixer.active_speaker());

        for id in &self.order {
            let e = self.endpoints.get_mut(id).expect("order and endpoints agree");
            if !e.session.can_send() {
                // Keys pending: nothing goes out in clear; the clock runs on.
                if e.prompt.is_some() || self.delivery_index.contains_key(id) {
                    e.session.count_unkeyed();
                }
                e.after_silence = true;
                e.session.advance_timestamp(e.timestamp_step);
                continue;
            }
            if let (Some(pt), Some(event)) =
                (e.telephone_event_pt, e.dtmf_out.tick(e.session.timestamp(), e.timestamp_step))
            {
                let mut bytes = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(PACKET_CAPACITY));
                bytes.clear();
                send_event(e, pt, &event, &mut bytes)?;
                summary.packets += 1;
                out.push(Outgoing { endpoint: *id, flow: Flow::Rtp, bytes });
                continue;
            }
            if let Some((playing, encoder)) = &mut e.prompt {
                playing.next_frame(&mut self.prompt_pcm);
                encoder.encode(&self.prompt_pcm, &mut self.prompt_payload)?;
                summary.encodes += 1;
                let mut bytes = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(PACKET_CAPACITY));
                bytes.clear();
                let level = AudioLevel::from_samples(&self.prompt_pcm, true).level;
                packetize(e, &self.prompt_payload, level, &mut bytes)?;
                summary.packets += 1;
                out.push(Outgoing { endpoint: *id, flow: Flow::Rtp, bytes });
                continue;
            }
            let Some(d) = self.delivery_index.get(id).map(|&i| &self.deliveries[i]) else {
                e.after_silence = true;
                e.session.advance_timestamp(e.timestamp_step);
                continue;
            };
            // The level of what it hears: the loudest speaker in its stream.
            let level = self
                .speakers
                .iter()
                .filter(|&&s| !(d.kind == StreamKind::MixMinus && s == *id))
                .filter_map(|s| self.endpoints.get(s).map(|s| s.tick_level))
                .min()
                .unwrap_or(AudioLevel::SILENCE);
            let e = self.endpoints.get_mut(id).expect("order and endpoints agree");
            let mut bytes = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(PACKET_CAPACITY));
            bytes.clear();
            packetize(e, &d.payload, level, &mut bytes)?;
            summary.packets += 1;
            out.push(Outgoing { endpoint: *id, flow: Flow::Rtp, bytes });
        }
        self.send_reports(now, out)?;
        Ok(summary)
    }

    /// Appends an RTCP compound (SR or RR, and SDES CNAME) for every
    /// endpoint whose report is due.
    fn send_reports(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Result<(), EngineError> {
        let ntp = self.ntp(now);
        for id in &self.order {
            let e = self.endpoints.get_mut(id).expect("order and endpoints agree");
            if !e.session.report_due(now) {
                continue;
            }
            // 0.5..1.5 of the interval; the first report goes out within one.
            let interval = RTCP_INTERVAL.mul_f64(self.rng.gen_range(0.5..1.5));
            if e.session.schedule_report(now, interval) {
                continue;
            }
            let mut bytes = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(PACKET_CAPACITY));
            bytes.clear();
            if e.session.write_report(now, ntp, None, &mut bytes)? {
                out.push(Outgoing { endpoint: *id, flow: Flow::Rtcp, bytes });
            } else {
                self.spare.push(bytes);
            }
        }
        Ok(())
    }
}

/// Counts a refused packet under its reason.
fn count_refusal(stats: &mut EndpointStats, err: &EngineError) {
    match err {
        EngineError::Srtp(SrtpError::AuthenticationFailed) => stats.auth_failures += 1,
        EngineError::Srtp(SrtpError::Replayed(_) | SrtpError::TooOld(_)) => stats.replays += 1,
        // Counted by the session.
        EngineError::KeysPending => {}
        _ => stats.malformed += 1,
    }
}

/// An RFC 4733 event packet: the digit, the first time its event (its RTP
/// timestamp) is seen; events other than 0-9 * # A-D are ignored.
fn telephone_event(e: &mut Endpoint, timestamp: u32, payload: &[u8]) -> Option<char> {
    let &event = payload.first()?;
    if payload.len() < 4 || e.last_event_timestamp == Some(timestamp) {
        return None;
    }
    let digit = match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    };
    e.last_event_timestamp = Some(timestamp);
    Some(digit)
}

/// `now` on the NTP clock anchored at (`at`, `base`).
fn ntp_at(at: Instant, base: NtpTime, now: Instant) -> NtpTime {
    let d = now.saturating_duration_since(at);
    let fraction = (u128::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    NtpTime(base.0.wrapping_add(d.as_secs() << 32).wrapping_add(fraction as u64))
}

/// Takes an (S)RTCP compound from the endpoint: its sender report (for the
/// LSR/DLSR of our next report block) and its report block about our
/// stream (round-trip time, the loss and jitter it sees).
fn receive_rtcp(now: Instant, arrival: NtpTime, e: &mut Endpoint, packet: &mut Vec<u8>) -> Result<(), EngineError> {
    if let Err(err) = e.session.unprotect_rtcp(packet) {
        count_refusal(&mut e.stats, &err);
        return Err(err);
    }
    let mut accepted = false;
    for item in rtcp::compound(packet) {
        let Ok(item) = item else {
            e.stats.malformed += 1;
            break;
        };
        accepted = true;
        e.session.on_rtcp(now, arrival, &item);
    }
    if accepted {
        e.stats.rtcp_in += 1;
        e.stats.last_received = Some(now);
    }
    Ok(())
}

/// What one endpoint's tick played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Played {
    /// `pcm` holds this tick's decoded (or concealed) frame.
    Decoded,
    /// There was a frame (or a loss to conceal) but the mixer does not need
    /// it: a silent non-speaker, by its level.
    NotNeeded,
    /// Nothing to play: DTX silence or still buffering.
    Nothing,
}

/// Pops one endpoint's jitter buffer and decodes into `pcm` (mono) if the
/// mixer needs it.
///
/// The decision uses the level of the newest packet received, which a silent
/// tick does not clear: the jitter buffer may still hold that packet (it
/// arrived during a pause and waits for its slot), and forgetting its level
/// would make its frame, and the concealment after it, look unknown and get
/// decoded. In a 200-party room of DTX senders that was ten times the decodes
/// the three speakers need.
fn play_out(
    now: Instant,
    id: EndpointId,
    e: &mut Endpoint,
    mixer: &Mixer,
    pcm: &mut [i16],
) -> Result<Played, EngineError> {
    let playout = e.jitter.pop(now);
    if matches!(playout, Playout::Silence | Playout::Buffering) {
        return Ok(Played::Nothing);
    }
    if !mixer.needs_decode(id, e.level) {
        return Ok(Played::NotNeeded);
    }
    // Concealing a stream whose last frame was below speech (a talker's
    // pause, comfort noise) would only synthesise more of the same.
    if matches!(playout, Playout::Conceal) && e.level.is_some_and(|l| l.level > mixer.speech_level()) {
        return Ok(Played::NotNeeded);
    }
    let result = match playout {
        Playout::Frame { payload, .. } => e.decoder.decode(payload, &mut e.decoded),
        Playout::Fec { next_payload } => e.decoder.decode_fec(next_payload, &mut e.decoded),
        Playout::Conceal => e.decoder.conceal(&mut e.decoded),
        Playout::Silence | Playout::Buffering => return Ok(Played::Nothing),
    };
    if result.is_err() {
        e.stats.decode_errors += 1;
        return Ok(Played::Nothing);
    }
    if e.decoded.len() == pcm.len() {
        pcm.copy_from_slice(&e.decoded);
    } else {
        for (m, pair) in pcm.iter_mut().zip(e.decoded.chunks_exact(2)) {
            *m = ((i32::from(pair[0]) + i32::from(pair[1])) / 2) as i16;
        }
    }
    Ok(Played::Decoded)
}

/// Writes an RFC 4733 event packet (its own payload type, the endpoint's
/// SSRC and sequence) into `bytes` and protects it; the audio clock runs on.
fn send_event(e: &mut Endpoint, pt: u8, event: &EventPacket, bytes: &mut Vec<u8>) -> Result<(), EngineError> {
    e.session.write_rtp(event.marker, pt, event.timestamp, &[], &event.payload, bytes)?;
    e.session.advance_timestamp(e.timestamp_step);
    Ok(())
}

/// Writes the endpoint's next RTP packet around `payload` into `bytes` and
/// protects it.
fn packetize(e: &mut Endpoint, payload: &[u8], level: u8, bytes: &mut Vec<u8>) -> Result<(), EngineError> {
    let level_byte = [AudioLevel::new(level < AudioLevel::SILENCE, level).to_byte()];
    let extension = e.audio_level_id.map(|ext| [HeaderExtension::new(ext, &level_byte)]);
    let extensions = extension.as_ref().map_or(&[][..], |x| x.as_slice());
    let timestamp = e.session.timestamp();
    e.session.write_rtp(e.after_silence, e.payload_type, timestamp, extensions, payload, bytes)?;
    e.session.advance_timestamp(e.timestamp_step);
    e.after_silence = false;
    Ok(())
}
