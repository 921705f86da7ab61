//! SIP calls as call legs: dial-in through the dial plan (and the passcode
//! lobby), dial-out through dial transforms and outbound rules, re-INVITEs,
//! DTMF, media timeouts.
//!
//! The SIP task owns the user agent and calls [`CallBridge::on_sip_event`]
//! and [`CallBridge::on_media_event`] with it; API threads reach it by
//! queueing [`UaCommand`]s.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Instant;

use confero_control::bridge::{BridgeError, LegState, LiveCallLeg, NewCall};
use confero_control::schema::{Change, Kind};
use confero_control::store::Object;
use confero_media::codec::{AudioFormat, CodecKind};
use confero_media::engine::{EndpointConfig, Prompt, SrtpKeys, VideoConfig, MAX_VIDEO_SIZE};
use confero_media::runtime::{ConferenceId, EndpointSpec, MediaEvent, MediaTransport, RtpAddresses, RtpTransport};
use confero_media::srtp::SrtpProfile;
use confero_media::video::h264_rtp::PacketizationMode;
use confero_media::video::keyframe_request::KeyframeRequestMethod;
use confero_media::video::layout::Layout;
use confero_media::video::source_rate::BitrateRequestMethod;
use confero_sip::message::SipUri;
use confero_sip::sdp::{
    self, AudioCodec, AudioOffer, CryptoSuite, Direction as SdpDirection, LocalMedia, LocalVideo, MediaEncryption,
    NegotiatedAudio, NegotiatedVideo, SessionDescription, SrtpParams, VideoOffer,
};
use confero_sip::transaction::{Peer, Transport};
use confero_sip::ua::{CallHandle, Dial, EndReason, IncomingCall, UaEvent, UserAgent};
use uuid::Uuid;

use super::{direction, set_leg_state, CallBridge, Leg, Lobby, State};
use crate::dialplan::{self, InboundRefusal};

/// Work for the user agent, run in the SIP task.
pub type UaCommand = Box<dyn FnOnce(&mut UserAgent, Instant) + Send>;

/// Wrong passcodes before the bridge hangs up.
const MAX_PASSCODE_FAILURES: u8 = 3;
/// Digits kept of a passcode being typed.
const MAX_PASSCODE_DIGITS: usize = 32;

/// The CMS codec name of a negotiated codec, for `rxAudio`/`txAudio`.
fn cms_codec(codec: AudioCodec) -> &'static str {
    match codec {
        AudioCodec::Opus => "opus",
        AudioCodec::G722 => "g722",
        AudioCodec::Pcmu => "g711u",
        AudioCodec::Pcma => "g711a",
    }
}

fn srtp_profile(suite: CryptoSuite) -> SrtpProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32,
        CryptoSuite::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
    }
}

/// SDES keys each way, as the engine takes them.
fn srtp_keys(s: &SrtpParams) -> (SrtpKeys, SrtpKeys) {
    let profile = srtp_profile(s.suite);
    (
        SrtpKeys { profile, key: s.remote_key.clone(), salt: s.remote_salt.clone() },
        SrtpKeys { profile, key: s.local_key.clone(), salt: s.local_salt.clone() },
    )
}

/// Adds a negotiated video stream, if any, to an endpoint's spec.
fn add_video(spec: &mut EndpointSpec, n: Option<&NegotiatedVideo>, layout: Layout) {
    let Some(n) = n else { return };
    spec.video = Some(video_config(n, layout, &spec.config.cname));
    if let MediaTransport::Rtp(t) = &mut spec.transport {
        t.video = Some(RtpAddresses { rtp: n.remote_rtp, rtcp: (!n.rtcp_mux).then_some(n.remote_rtcp) });
    }
}

/// What the media engine needs from a negotiated video stream.
fn video_config(n: &NegotiatedVideo, layout: Layout, cname: &str) -> VideoConfig {
    let mut config = VideoConfig::new(n.payload_type);
    config.packetization_mode =
        if n.packetization_mode == 0 { PacketizationMode::SingleNalUnit } else { PacketizationMode::NonInterleaved };
    let (w, h) = n.max_frame_16_9();
    config.max_size = (w.min(MAX_VIDEO_SIZE.0), h.min(MAX_VIDEO_SIZE.1));
    if let Some(kbps) = n.max_br {
        config.bitrate = config.bitrate.min(kbps.saturating_mul(1000));
    }
    config.keyframe_method = KeyframeRequestMethod::for_endpoint(n.feedback.fir);
    config.bitrate_request = BitrateRequestMethod::for_endpoint(n.feedback.tmmbr, n.feedback.remb);
    if let Some((rx, tx)) = n.srtp.as_ref().map(srtp_keys) {
        config.srtp_in = Some(rx);
        config.srtp_out = Some(tx);
    }
    config.receives = matches!(n.direction, SdpDirection::SendRecv | SdpDirection::SendOnly);
    config.sends = matches!(n.direction, SdpDirection::SendRecv | SdpDirection::RecvOnly);
    config.layout = layout;
    config.cname = cname.to_string();
    config
}

/// What the media engine needs from a negotiated stream.
fn endpoint_spec(n: &NegotiatedAudio, prompt: Option<Prompt>, signalling_ip: Option<IpAddr>) -> EndpointSpec {
    let format = match n.codec.codec {
        AudioCodec::Opus => AudioFormat { channels: 1, ..AudioFormat::OPUS_MONO },
        AudioCodec::G722 => AudioFormat::G722,
        AudioCodec::Pcmu => AudioFormat::PCMU,
        AudioCodec::Pcma => AudioFormat { codec: CodecKind::Pcma, ..AudioFormat::PCMU },
    };
    let mut config = EndpointConfig::new(format, n.codec.payload_type);
    config.telephone_event_pt = n.telephone_event;
    config.audio_level_id = n.audio_level_id;
    if let Some((rx, tx)) = n.srtp.as_ref().map(srtp_keys) {
        config.srtp_in = Some(rx);
        config.srtp_out = Some(tx);
    }
    config.prompt = prompt;
    let audio = RtpAddresses { rtp: n.remote_rtp, rtcp: (!n.rtcp_mux).then_some(n.remote_rtcp) };
    EndpointSpec {
        config,
        video: None,
        transport: MediaTransport::Rtp(RtpTransport { audio, video: None, signalling_ip }),
    }
}

/// Answers an offer with our audio at `audio` and, when H.264 video is
/// offered and `video` is given, our video there.
fn answer_offer(
    offer: &SessionDescription,
    audio: SocketAddr,
    video: Option<SocketAddr>,
    session: (u64, u64),
    policy: MediaEncryption,
) -> Result<(SessionDescription, NegotiatedAudio, Option<NegotiatedVideo>), sdp::negotiate::NegotiationError> {
    let local = LocalMedia {
        address: audio.ip(),
        audio_port: audio.port(),
        session_id: session.0,
        session_version: session.1,
        direction: SdpDirection::SendRecv,
    };
    let rng = &mut rand::thread_rng();
    match video {
        Some(v) => sdp::answer_with_video(offer, &local, &LocalVideo::hd720(v.port()), policy, rng),
        None => sdp::answer(offer, &local, policy, rng).map(|(answer, audio)| (answer, audio, None)),
    }
}

/// Whether the far end holds the call: it will not take media from us.
fn is_hold(n: &NegotiatedAudio) -> bool {
    n.remote_rtp.ip().is_unspecified() || matches!(n.direction, SdpDirection::RecvOnly | SdpDirection::Inactive)
}

fn encryption_policy(value: Option<&str>) -> MediaEncryption {
    match value {
        Some("required") => MediaEncryption::Required,
        Some("prohibited") => MediaEncryption::Prohibited,
        _ => MediaEncryption::Optional,
    }
}

/// `sip:alice@host` → `alice@host`, as CMS shows a remote party.
fn party(uri: &str) -> String {
    let uri = uri.trim();
    let bare = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:")).unwrap_or(uri);
    bare.split(';').next().unwrap_or(bare).to_string()
}

/// A host[:port] as a socket address (literal or resolved; default 5060).
fn resolve(host: &str, port: Option<u16>) -> Option<SocketAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port.unwrap_or(5060)).to_socket_addrs().ok()?.find(|a| a.is_ipv4()).or_else(|| {
        let mut all = (host, port.unwrap_or(5060)).to_socket_addrs().ok()?;
        all.next()
    })
}

impl CallBridge {
    /// A call leg profile's `field`, else the system profile's call leg
    /// profile's.
    fn profile_field(&self, profile: Option<&str>, field: &str) -> Option<String> {
        let of = |id: Option<&str>| {
            id.and_then(|p| Uuid::parse_str(p).ok())
                .and_then(|id| self.store.get(Kind::CallLegProfile, id))
                .and_then(|o| o.get(field).map(str::to_string))
        };
        of(profile).or_else(|| {
            let system = self.store.singleton(Kind::SystemProfiles);
            of(system.get("callLegProfile"))
        })
    }

    /// The `sipMediaEncryption` of a call leg profile, else of the system
    /// profile's, else optional.
    fn policy(&self, profile: Option<&str>) -> MediaEncryption {
        encryption_policy(self.profile_field(profile, "sipMediaEncryption").as_deref())
    }

    /// Where a conference takes video, unless video is off.
    fn video_address(&self, conference: ConferenceId) -> Option<SocketAddr> {
        if !self.video_enabled.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        self.media.conference_video_addresses(conference).ok().map(|(rtp, _)| rtp)
    }

    /// The layout a new leg sees until it chooses one: its call leg
    /// profile's `defaultLayout`, else its space's, else the system
    /// profile's call leg profile's, else `automatic`.
    fn default_layout(&self, profile: Option<&str>, space: Option<&Object>) -> Layout {
        let from_profile = |id: Option<&str>| {
            id.and_then(|p| Uuid::parse_str(p).ok())
                .and_then(|id| self.store.get(Kind::CallLegProfile, id))
                .and_then(|o| o.get("defaultLayout").and_then(Layout::from_api))
        };
        from_profile(profile)
            .or_else(|| space.and_then(|s| s.get("defaultLayout")).and_then(Layout::from_api))
            .or_else(|| from_profile(self.store.singleton(Kind::SystemProfiles).get("callLegProfile")))
            .unwrap_or(Layout::Automatic)
    }

    /// The live call of a space, or a new one that ends with its last leg.
    fn call_for_space(&self, state: &mut State, space: &Object) -> Result<Uuid, BridgeError> {
        if let Some(c) = state.calls.iter().find(|c| c.live.co_space == Some(space.id)) {
            return Ok(c.live.id);
        }
        let name = space.get("name").unwrap_or_default().to_string();
        let new = NewCall {
            name,
            co_space: Some(space.id),
            tenant: space.get("tenant").and_then(|t| Uuid::parse_str(t).ok()),
            cdr_tag: space.get("cdrTag").map(str::to_string),
            owner_name: None,
            config: Vec::new(),
        };
        let call = self.new_call(new, true)?;
        self.call_start_cdr(&call);
        let id = call.live.id;
        state.calls.push(call);
        Ok(id)
    }

    /// What the user agent reports.
    pub fn on_sip_event(&self, ua: &mut UserAgent, now: Instant, event: UaEvent) {
        match event {
            UaEvent::IncomingCall(call) => self.incoming(ua, now, *call),
            UaEvent::Confirmed { .. } => {}
            UaEvent::Reoffer { call, offer } => self.reoffer(ua, now, call, offer),
            UaEvent::ReofferAnswered { .. } | UaEvent::ReofferFailed { .. } => {}
            UaEvent::Ringing { call, .. } => {
                let mut state = self.lock();
                if let Some(id) = state.by_sip.get(&call).copied() {
                    if let Some(leg) = state.leg_mut(id) {
                        set_leg_state(self, leg, LegState::Ringing);
                    }
                }
            }
            UaEvent::Answered { call, sdp } => self.answered(ua, now, call, sdp),
            UaEvent::Failed { call, code, reason } => self.failed(ua, now, call, code, &reason),
            UaEvent::Dtmf { call, digit, .. } => {
                let id = self.lock().by_sip.get(&call).copied();
                if let Some(id) = id {
                    self.digit(ua, now, id, digit);
                }
            }
            UaEvent::Ended { call, reason } => {
                let mut state = self.lock();
                if let Some(id) = state.by_sip.remove(&call) {
                    if let Some(leg) = state.leg_mut(id) {
                        leg.sip = None;
                    }
                    let why = match reason {
                        EndReason::RemoteHangup | EndReason::Cancelled => "remoteTeardown",
                        EndReason::NoAck | EndReason::SessionExpired | EndReason::DialogLost => "timeout",
                    };
                    self.drop_leg(&mut state, id, why);
                }
            }
        }
    }

    /// What the media runtime reports.
    pub fn on_media_event(&self, ua: &mut UserAgent, now: Instant, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf { endpoint, digit, .. } => {
                let id = self.lock().by_endpoint.get(&endpoint).copied();
                if let Some(id) = id {
                    self.digit(ua, now, id, digit);
                }
            }
            MediaEvent::MediaTimeout { endpoint, .. } => {
                let mut state = self.lock();
                let Some(id) = state.by_endpoint.get(&endpoint).copied() else { return };
                let held = state.legs.iter().any(|l| l.live.id == id && l.held);
                if held {
                    return; // a held call may be silent
                }
                tracing::info!("call leg {id}: no media for the timeout; dropping it");
                if let Some(h) = state.leg_mut(id).and_then(|l| l.sip.take()) {
                    state.by_sip.remove(&h);
                    let _ = ua.hangup(now, h);
                }
                self.drop_leg(&mut state, id, "timeout");
            }
            MediaEvent::AttachFailed { endpoint, reason, .. } => {
                let mut state = self.lock();
                let Some(id) = state.by_endpoint.get(&endpoint).copied() else { return };
                tracing::warn!("call leg {id}: media refused: {reason}; dropping it");
                if let Some(h) = state.leg_mut(id).and_then(|l| l.sip.take()) {
                    state.by_sip.remove(&h);
                    let _ = ua.hangup(now, h);
                }
                self.drop_leg(&mut state, id, "mediaNegotiationFailure");
            }
            MediaEvent::ActiveSpeaker { .. } => {}
        }
    }

    fn incoming(&self, ua: &mut UserAgent, now: Instant, ic: IncomingCall) {
        let uri = SipUri::parse(&ic.request_uri);
        let user = ic.user.clone().or_else(|| uri.as_ref().and_then(|u| u.user.clone())).unwrap_or_default();
        let domain = uri.as_ref().map(|u| u.host.clone()).unwrap_or_default();
        let destination = match dialplan::resolve_inbound(&self.store, &user, &domain) {
            Ok(d) => d,
            Err(InboundRefusal::DomainNotServed | InboundRefusal::NotFound) => {
                tracing::info!("SIP call to {user}@{domain}: no such space");
                let _ = ua.reject(now, ic.call, 404);
                return;
            }
        };
        if !destination.admits_non_members() {
            let _ = ua.reject(now, ic.call, 403);
            return;
        }
        let Some(offer) = ic.offer.as_deref().and_then(|o| SessionDescription::parse(o).ok()) else {
            // An offerless INVITE (we would offer in the 200) is not supported.
            let _ = ua.reject(now, ic.call, 488);
            return;
        };
        let policy = self.policy(destination.call_leg_profile());
        let passcode = destination.passcode().map(str::to_string);

        let mut state = self.lock();
        let call = match self.call_for_space(&mut state, &destination.space) {
            Ok(c) => c,
            Err(_) => {
                let _ = ua.reject(now, ic.call, 503);
                return;
            }
        };
        let Some(conference) = state.calls.iter().find(|c| c.live.id == call).map(|c| c.conference) else { return };
        let Ok((rtp, _)) = self.media.conference_addresses(conference) else {
            let _ = ua.reject(now, ic.call, 503);
            return;
        };
        let from = ic.from.clone();
        let live = LiveCallLeg {
            id: Uuid::new_v4(),
            call,
            participant: Uuid::new_v4(),
            name: from.display.clone().unwrap_or_default(),
            remote_party: party(&from.uri),
            original_remote_party: party(&from.uri),
            direction: direction(true),
            state: LegState::Initial,
            duration: std::time::Duration::ZERO,
            encrypted_media: false,
            cipher_suite: None,
            sip_call_id: None,
            config: Default::default(),
            rx_audio: None,
            tx_audio: None,
            rx_video: None,
            tx_video: None,
            layout: None,
        };
        let mut leg = Leg::new(live, policy);
        let video_at = self.video_address(conference);
        let (answer, negotiated, video) = match answer_offer(&offer, rtp, video_at, leg.session, policy) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!("SIP call to {user}: {e}");
                let _ = ua.reject(now, ic.call, e.status());
                self.end_if_empty(&mut state, call);
                return;
            }
        };
        let prompt = passcode.as_ref().map(|_| Prompt::enter_passcode());
        leg.signalling_ip = Some(ic.source.addr.ip());
        leg.default_layout = self.default_layout(destination.call_leg_profile(), Some(&destination.space));
        leg.quality_main = self.profile_field(destination.call_leg_profile(), "qualityMain");
        leg.participant_labels = self.profile_field(destination.call_leg_profile(), "participantLabels");
        let mut spec = endpoint_spec(&negotiated, prompt, leg.signalling_ip);
        add_video(&mut spec, video.as_ref(), leg.default_layout);
        leg.video = spec.video.is_some();
        let attached = match self.media.attach(conference, spec) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("SIP call to {user}: media: {e}");
                let _ = ua.reject(now, ic.call, 500);
                self.end_if_empty(&mut state, call);
                return;
            }
        };
        if ua.accept(now, ic.call, answer.to_text().into_bytes()).is_err() {
            let _ = self.media.detach(attached.id);
            self.end_if_empty(&mut state, call);
            return;
        }
        leg.sip = Some(ic.call);
        leg.endpoint = Some(attached.id);
        leg.telephone_event = negotiated.telephone_event.is_some();
        leg.codec = cms_codec(negotiated.codec.codec).to_string();
        leg.live.encrypted_media = negotiated.srtp.is_some();
        leg.live.cipher_suite = negotiated.srtp.as_ref().map(|s| s.suite.name().to_string());
        leg.lobby = passcode.map(|passcode| Lobby { passcode, entered: String::new(), failures: 0 });
        leg.held = is_hold(&negotiated);
        leg.live.state = LegState::Connected;
        let id = leg.live.id;
        tracing::info!(
            "SIP call from {} joined {user} as leg {id} ({}, {}, media {})",
            leg.live.remote_party,
            leg.codec,
            leg.live.cipher_suite.as_deref().unwrap_or("unencrypted"),
            negotiated.remote_rtp
        );
        self.add_leg(&mut state, leg);
        if let Some(l) = state.legs.iter().find(|l| l.live.id == id) {
            self.leg_update_cdr(&l.live);
            // Hold, and the video settings of its profile (`qualityMain`).
            self.apply_media_settings(l);
        }
    }

    /// A call we just made for a space ended before it got a leg.
    fn end_if_empty(&self, state: &mut State, call: Uuid) {
        let auto = state.calls.iter().any(|c| c.live.id == call && c.ends_when_empty);
        if auto && !state.legs.iter().any(|l| l.live.call == call) {
            self.remove_call(state, call);
        }
    }

    /// A new offer in the dialog: hold, resume, a new address or new keys.
    fn reoffer(&self, ua: &mut UserAgent, now: Instant, call: CallHandle, offer: Option<Vec<u8>>) {
        let mut state = self.lock();
        let Some(id) = state.by_sip.get(&call).copied() else {
            let _ = ua.answer_reoffer(now, call, Err(481));
            return;
        };
        let Some(offer) = offer.as_deref().and_then(|o| SessionDescription::parse(o).ok()) else {
            let _ = ua.answer_reoffer(now, call, Err(488));
            return;
        };
        let Some(conference) = state
            .legs
            .iter()
            .find(|l| l.live.id == id)
            .and_then(|l| state.calls.iter().find(|c| c.live.id == l.live.call))
            .map(|c| c.conference)
        else {
            return;
        };
        let Ok((rtp, _)) = self.media.conference_addresses(conference) else { return };
        let video_at = self.video_address(conference);
        let Some(leg) = state.leg_mut(id) else { return };
        leg.session.1 += 1;
        let (answer, negotiated, video) = match answer_offer(&offer, rtp, video_at, leg.session, leg.policy) {
            Ok(a) => a,
            Err(e) => {
                let _ = ua.answer_reoffer(now, call, Err(e.status()));
                return;
            }
        };
        // New keys or codec: a new endpoint; otherwise just the address.
        let prompt = leg.lobby.as_ref().map(|_| Prompt::enter_passcode());
        if let Some(old) = leg.endpoint.take() {
            let _ = self.media.detach(old);
        }
        let mut spec = endpoint_spec(&negotiated, prompt, leg.signalling_ip);
        add_video(&mut spec, video.as_ref(), leg.default_layout);
        leg.video = spec.video.is_some();
        match self.media.attach(conference, spec) {
            Ok(a) => {
                leg.endpoint = Some(a.id);
                leg.telephone_event = negotiated.telephone_event.is_some();
                leg.codec = cms_codec(negotiated.codec.codec).to_string();
                leg.live.encrypted_media = negotiated.srtp.is_some();
                leg.live.cipher_suite = negotiated.srtp.as_ref().map(|s| s.suite.name().to_string());
                leg.held = is_hold(&negotiated);
                let state_now = if leg.held { LegState::OnHold } else { LegState::Connected };
                set_leg_state(self, leg, state_now);
                let _ = ua.answer_reoffer(now, call, Ok(answer.to_text().into_bytes()));
                state.by_endpoint.retain(|_, l| *l != id);
                state.by_endpoint.insert(a.id, id);
                if let Some(l) = state.legs.iter().find(|l| l.live.id == id) {
                    self.apply_media_settings(l);
                }
            }
            Err(_) => {
                let _ = ua.answer_reoffer(now, call, Err(500));
            }
        }
    }

    /// A digit from the caller: the passcode lobby collects it.
    fn digit(&self, ua: &mut UserAgent, now: Instant, id: Uuid, digit: char) {
        let mut state = self.lock();
        let Some(leg) = state.leg_mut(id) else { return };
        let Some(lobby) = leg.lobby.as_mut() else { return };
        if digit != '#' {
            if lobby.entered.len() < MAX_PASSCODE_DIGITS {
                lobby.entered.push(digit);
            }
            return;
        }
        let endpoint = leg.endpoint;
        if lobby.entered == lobby.passcode {
            tracing::info!("call leg {id}: passcode ***** accepted");
            leg.lobby = None;
            if let Some(e) = endpoint {
                let _ = self.media.set_prompt(e, None);
            }
            if let Some(l) = state.legs.iter().find(|l| l.live.id == id) {
                self.apply_media_settings(l);
            }
            return;
        }
        lobby.failures += 1;
        lobby.entered.clear();
        tracing::info!("call leg {id}: wrong passcode ({} of {MAX_PASSCODE_FAILURES})", lobby.failures);
        if lobby.failures >= MAX_PASSCODE_FAILURES {
            if let Some(h) = leg.sip.take() {
                state.by_sip.remove(&h);
                let _ = ua.hangup(now, h);
            }
            self.drop_leg(&mut state, id, "localTeardown");
        } else if let Some(e) = endpoint {
            let _ = self.media.set_prompt(e, Some(Prompt::wrong_passcode()));
        }
    }

    /// `POST /calls/<id>/callLegs`: dial transforms, outbound rules, then an
    /// INVITE per route until one answers.
    pub(super) fn dial_out(
        &self,
        call: Uuid,
        remote_party: &str,
        config: &[Change],
    ) -> Result<LiveCallLeg, BridgeError> {
        let mut state = self.lock();
        let Some(conference) = state.calls.iter().find(|c| c.live.id == call).map(|c| c.conference) else {
            return Err(BridgeError::CallDoesNotExist);
        };
        let mut cfg = Default::default();
        super::apply(&mut cfg, config);
        let profile = cfg.get("callLegProfile").cloned();
        let live = LiveCallLeg {
            id: Uuid::new_v4(),
            call,
            participant: Uuid::new_v4(),
            name: String::new(),
            remote_party: remote_party.to_string(),
            original_remote_party: remote_party.to_string(),
            direction: direction(false),
            state: LegState::Initial,
            duration: std::time::Duration::ZERO,
            encrypted_media: false,
            cipher_suite: None,
            sip_call_id: None,
            config: cfg,
            rx_audio: None,
            tx_audio: None,
            rx_video: None,
            tx_video: None,
            layout: None,
        };
        let policy = self.policy(profile.as_deref());
        let leg = Leg::new(live.clone(), policy);
        let session = leg.session;
        let id = live.id;
        // Work out where to send; a failure ends the leg with a reason, as
        // CMS does, rather than failing the API request.
        let routes = self.routes(remote_party);
        let local_sip = *self.sip_local.lock().unwrap_or_else(|p| p.into_inner());
        let media = self.media.conference_addresses(conference).ok();
        let plan = match (routes, local_sip, media) {
            (Err(reason), ..) => Err(reason),
            (_, None, _) => Err("sipTransportUnavailable"),
            (_, _, None) => Err("mediaUnavailable"),
            (Ok(r), Some(sip), Some((rtp, _))) => Ok((r, sip, rtp)),
        };
        self.add_leg(&mut state, leg);
        let (routes, sip, rtp) = match plan {
            Ok(p) => p,
            Err(reason) => {
                tracing::info!("call leg {id} to {remote_party}: {reason}");
                self.drop_leg(&mut state, id, reason);
                return Ok(live);
            }
        };
        let local = LocalMedia {
            address: rtp.ip(),
            audio_port: rtp.port(),
            session_id: session.0,
            session_version: session.1,
            direction: SdpDirection::SendRecv,
        };
        let mut offer = AudioOffer::new(&local, policy, &mut rand::thread_rng());
        let video_offer = self
            .video_address(conference)
            .map(|v| VideoOffer::add_to(&mut offer.sdp, &LocalVideo::hd720(v.port()), policy, &mut rand::thread_rng()));
        let body = offer.sdp.to_text().into_bytes();
        let space = state
            .calls
            .iter()
            .find(|c| c.live.id == call)
            .and_then(|c| c.live.co_space)
            .and_then(|s| self.store.get(Kind::CoSpace, s));
        let default_layout = self.default_layout(profile.as_deref(), space.as_ref());
        let quality_main = self.profile_field(profile.as_deref(), "qualityMain");
        let participant_labels = self.profile_field(profile.as_deref(), "participantLabels");
        let space_user =
            space.as_ref().and_then(|s| s.get("uri").map(str::to_string)).unwrap_or_else(|| "confero".into());
        let mut dials: std::collections::VecDeque<Dial> = routes
            .into_iter()
            .map(|(target, destination, route, from_domain, contact_domain)| Dial {
                target,
                from: format!("sip:{space_user}@{}", from_domain.unwrap_or_else(|| sip.to_string())),
                display_name: None,
                offer: body.clone(),
                destination,
                route,
                contact_domain: contact_domain.clone(),
            })
            .collect();
        let Some(first) = dials.pop_front() else {
            self.drop_leg(&mut state, id, "invalidAddress");
            return Ok(live);
        };
        if let Some(l) = state.leg_mut(id) {
            l.offer = Some(offer);
            l.video_offer = video_offer;
            l.default_layout = default_layout;
            l.quality_main = quality_main;
            l.participant_labels = participant_labels;
            l.fallbacks = dials;
        }
        drop(state);
        self.send_invite(id, first);
        Ok(live)
    }

    /// Queues the INVITE of one route attempt for leg `id`.
    fn send_invite(&self, id: Uuid, dial: Dial) {
        let me = self.me.clone();
        let sent = self.with_ua(move |ua, now| {
            let Some(bridge) = me.upgrade() else { return };
            let mut state = bridge.lock();
            if state.legs.iter().all(|l| l.live.id != id) {
                return; // hung up before the INVITE went out
            }
            let destination = dial.destination.addr.ip();
            match ua.dial(now, dial) {
                Ok(h) => {
                    state.by_sip.insert(h, id);
                    if let Some(l) = state.leg_mut(id) {
                        l.sip = Some(h);
                        l.signalling_ip = Some(destination);
                    }
                }
                Err(_) => {
                    bridge.drop_leg(&mut state, id, "invalidAddress");
                }
            }
        });
        if !sent {
            let mut state = self.lock();
            self.drop_leg(&mut state, id, "sipTransportUnavailable");
        }
    }

    /// Where to send a dial string: (target URI, next hop, Route header,
    /// From domain) per outbound rule, best first.
    #[allow(clippy::type_complexity)]
    fn routes(
        &self,
        remote_party: &str,
    ) -> Result<Vec<(String, Peer, Option<String>, Option<String>, Option<String>)>, &'static str> {
        let dialled = dialplan::transform(&self.store, remote_party).map_err(|_| "callDenied")?;
        let with_scheme = if dialled.contains(':') && dialled.starts_with("sip") {
            dialled.clone()
        } else {
            format!("sip:{dialled}")
        };
        let uri = SipUri::parse(&with_scheme).ok_or("invalidAddress")?;
        if uri.user.is_none() && !dialled.contains('@') {
            return Err("invalidAddress");
        }
        let mut out = Vec::new();
        for route in dialplan::outbound_routes(&self.store, &uri.host) {
            let (hop, header) = match &route.sip_proxy {
                Some(proxy) => {
                    let p = SipUri::parse(&format!("sip:{proxy}")).ok_or("invalidAddress")?;
                    (resolve(&p.host, p.port), Some(format!("<sip:{proxy};lr>")))
                }
                None => (resolve(&uri.host, uri.port), None),
            };
            let Some(addr) = hop else { continue };
            // Requests we send go over UDP: outbound TCP/TLS connections
            // (sipControlEncryption=encrypted) are not built yet.
            out.push((
                with_scheme.clone(),
                Peer { transport: Transport::Udp, addr },
                header,
                route.local_from_domain.clone(),
                route.local_contact_domain.clone(),
            ));
        }
        if out.is_empty() {
            return Err("dnsFailure");
        }
        Ok(out)
    }

    /// The far end answered our INVITE.
    fn answered(&self, ua: &mut UserAgent, now: Instant, call: CallHandle, sdp_bytes: Option<Vec<u8>>) {
        let mut state = self.lock();
        let Some(id) = state.by_sip.get(&call).copied() else {
            let _ = ua.hangup(now, call);
            return;
        };
        let conference = state
            .legs
            .iter()
            .find(|l| l.live.id == id)
            .and_then(|l| state.calls.iter().find(|c| c.live.id == l.live.call))
            .map(|c| c.conference);
        let Some(leg) = state.leg_mut(id) else { return };
        let answer = sdp_bytes.as_deref().and_then(|b| SessionDescription::parse(b).ok());
        let video = match (leg.video_offer.take(), &answer) {
            (Some(offer), Some(answer)) => offer.accept(answer),
            _ => None,
        };
        let negotiated = match (leg.offer.take(), &answer) {
            (Some(offer), Some(answer)) => offer.accept(answer).map_err(|e| e.to_string()),
            _ => Err("no SDP answer".to_string()),
        };
        let attached = match (negotiated, conference) {
            (Ok(n), Some(conf)) => {
                let mut spec = endpoint_spec(&n, None, leg.signalling_ip);
                add_video(&mut spec, video.as_ref(), leg.default_layout);
                leg.video = spec.video.is_some();
                self.media.attach(conf, spec).map(|a| (a, n)).map_err(|e| e.to_string())
            }
            (Err(e), _) => Err(e),
            (_, None) => Err("call ended".into()),
        };
        match attached {
            Ok((a, n)) => {
                leg.endpoint = Some(a.id);
                leg.telephone_event = n.telephone_event.is_some();
                leg.codec = cms_codec(n.codec.codec).to_string();
                leg.live.encrypted_media = n.srtp.is_some();
                leg.live.cipher_suite = n.srtp.as_ref().map(|s| s.suite.name().to_string());
                leg.held = is_hold(&n);
                set_leg_state(self, leg, LegState::Connected);
                state.by_endpoint.insert(a.id, id);
                if let Some(l) = state.legs.iter().find(|l| l.live.id == id) {
                    self.apply_media_settings(l);
                    // A dial-out's `dtmfSequence` (a PIN for the far end's
                    // menu) goes once it has answered.
                    self.send_dtmf_sequence(l);
                }
            }
            Err(e) => {
                tracing::info!("call leg {id}: answer unusable ({e}); hanging up");
                leg.sip = None;
                state.by_sip.remove(&call);
                let _ = ua.hangup(now, call);
                self.drop_leg(&mut state, id, "securityNegotiationFailure");
            }
        }
    }

    /// Our INVITE failed: the next route, or the leg ends.
    fn failed(&self, _ua: &mut UserAgent, _now: Instant, call: CallHandle, code: u16, reason: &str) {
        let mut state = self.lock();
        let Some(id) = state.by_sip.remove(&call) else { return };
        let Some(leg) = state.leg_mut(id) else { return };
        leg.sip = None;
        tracing::info!("call leg {id}: {code} {reason}");
        match leg.fallbacks.pop_front() {
            Some(next) => {
                drop(state);
                self.send_invite(id, next);
            }
            None => {
                self.drop_leg(&mut state, id, "sipFailure");
            }
        }
    }
}
