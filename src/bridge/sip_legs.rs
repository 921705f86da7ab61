//! SIP calls as call legs: dial-in through the dial plan (and the passcode
//! lobby), dial-out through dial transforms and outbound rules (the next rule
//! on failure with `failureAction=continue`), re-INVITEs, DTMF by INFO.
//!
//! Everything here speaks SDP and SIP; what is the same for every leg —
//! admitting it, connecting its media, ending it — is the bridge's.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use confero_api::bridge::{BridgeError, Direction, LegState, LiveCallLeg, NewCall};
use confero_media::codec::{AudioFormat, CodecKind};
use confero_media::engine::{EndpointConfig, Prompt, SrtpKeys, VideoConfig, MAX_VIDEO_SIZE};
use confero_media::runtime::{ConferenceId, EndpointSpec, FeccStream, MediaTransport, RtpAddresses, RtpTransport};
use confero_media::srtp::SrtpProfile;
use confero_media::video::codec::VideoCodec;
use confero_media::video::h264_rtp::PacketizationMode;
use confero_media::video::keyframe_request::KeyframeRequestMethod;
use confero_media::video::layout::Layout;
use confero_media::video::source_rate::BitrateRequestMethod;
use confero_sdp::{
    self, AudioCodec, AudioOffer, CryptoSuite, Direction as SdpDirection, FeccOffer, LocalMedia, LocalVideo,
    MediaEncryption, NegotiatedAudio, NegotiatedFecc, NegotiatedVideo, SessionDescription, SrtpParams, VideoOffer,
};
use confero_sip::message::SipUri;
use confero_sip::resolve::{self, ControlEncryption, Hop};
use confero_sip::transaction::{Peer, Transport};
use confero_sip::ua::{Dial, EndReason, IncomingCall};
use confero_store::schema::{Change, Kind};
use confero_store::Object;
use uuid::Uuid;

use super::compatibility::Compatibility;
use super::fecc::fecc_stream;
use super::leg::{Leg, Lobby, OurOffer, Route, Signalling, SipLeg};
use super::settings::{LegPlace, ProfileChain};
use super::{Bridge, Lookup, NegotiatedMedia, Output};
use crate::dialplan::{self, InboundRefusal};
use crate::sip::{SipCommand, SipEvent};

/// The CMS codec name of a negotiated codec, for `rxAudio`/`txAudio`.
pub(super) fn cms_codec(codec: AudioCodec) -> &'static str {
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
pub(super) fn srtp_keys(s: &SrtpParams) -> (SrtpKeys, SrtpKeys) {
    let profile = srtp_profile(s.suite);
    (
        SrtpKeys { profile, key: s.remote_key.clone(), salt: s.remote_salt.clone() },
        SrtpKeys { profile, key: s.local_key.clone(), salt: s.local_salt.clone() },
    )
}

/// What the media engine needs from a negotiated video stream.
fn video_config(n: &NegotiatedVideo, layout: Layout, cname: &str) -> VideoConfig {
    let mut config = VideoConfig::new(n.payload_type);
    config.codec = match n.codec {
        confero_sdp::VideoCodec::H264 => VideoCodec::H264,
        confero_sdp::VideoCodec::Vp8 => VideoCodec::Vp8,
    };
    config.packetization_mode =
        if n.packetization_mode == 0 { PacketizationMode::SingleNalUnit } else { PacketizationMode::NonInterleaved };
    let (w, h) = n.max_frame_16_9();
    config.max_size = (w.min(MAX_VIDEO_SIZE.0), h.min(MAX_VIDEO_SIZE.1));
    if let Some(kbps) = n.max_br {
        config.bitrate = config.bitrate.min(kbps.saturating_mul(1000));
    }
    config.keyframe_method = KeyframeRequestMethod::for_endpoint(n.feedback.fir);
    config.bitrate_request = BitrateRequestMethod::for_endpoint(n.feedback.tmmbr, n.feedback.remb);
    config.nack = n.feedback.nack;
    if let Some((rx, tx)) = n.srtp.as_ref().map(srtp_keys) {
        config.srtp_in = Some(rx);
        config.srtp_out = Some(tx);
    }
    config.receives = matches!(n.direction, SdpDirection::SendRecv | SdpDirection::SendOnly);
    config.sends = matches!(n.direction, SdpDirection::SendRecv | SdpDirection::RecvOnly);
    config.layout = layout.into();
    config.cname = cname.to_string();
    config
}

/// The streams an offer/answer agreed on (audio, and video when
/// negotiated), whatever carries them, and what the bridge keeps of them.
pub(super) fn streams_of(
    audio: &NegotiatedAudio,
    video: Option<&NegotiatedVideo>,
    layout: Layout,
    prompt: Option<Prompt>,
) -> (EndpointConfig, Option<VideoConfig>, NegotiatedMedia) {
    let format = match audio.codec.codec {
        AudioCodec::Opus => AudioFormat { channels: 1, ..AudioFormat::OPUS_MONO },
        AudioCodec::G722 => AudioFormat::G722,
        AudioCodec::Pcmu => AudioFormat::PCMU,
        AudioCodec::Pcma => AudioFormat { codec: CodecKind::Pcma, ..AudioFormat::PCMU },
    };
    let mut config = EndpointConfig::new(format, audio.codec.payload_type);
    config.telephone_event_pt = audio.telephone_event;
    config.audio_level_id = audio.audio_level_id;
    if let Some((rx, tx)) = audio.srtp.as_ref().map(srtp_keys) {
        config.srtp_in = Some(rx);
        config.srtp_out = Some(tx);
    }
    config.prompt = prompt;
    let negotiated = NegotiatedMedia {
        codec: cms_codec(audio.codec.codec),
        cipher_suite: audio.srtp.as_ref().map(|s| s.suite.name().to_string()),
        held: is_hold(audio),
        telephone_event: audio.telephone_event.is_some(),
        video: video.is_some(),
    };
    let video = video.map(|v| video_config(v, layout, &config.cname));
    (config, video, negotiated)
}

/// The endpoint a SIP offer/answer agreed on: its streams as plain (S)RTP
/// to the signalled addresses, each on its own port.
pub(super) fn media_of(
    audio: &NegotiatedAudio,
    video: Option<&NegotiatedVideo>,
    fecc: Option<FeccStream>,
    layout: Layout,
    prompt: Option<Prompt>,
    signalling_ip: Option<IpAddr>,
) -> (EndpointSpec, NegotiatedMedia) {
    let (config, video_config, negotiated) = streams_of(audio, video, layout, prompt);
    let transport = RtpTransport {
        audio: RtpAddresses { rtp: audio.remote_rtp, rtcp: (!audio.rtcp_mux).then_some(audio.remote_rtcp) },
        video: video.map(|v| RtpAddresses { rtp: v.remote_rtp, rtcp: (!v.rtcp_mux).then_some(v.remote_rtcp) }),
        fecc,
        signalling_ip,
    };
    let spec = EndpointSpec { config, video: video_config, transport: MediaTransport::Rtp(transport) };
    (spec, negotiated)
}

/// Whether the far end holds the call: it will not take media from us.
fn is_hold(n: &NegotiatedAudio) -> bool {
    n.remote_rtp.ip().is_unspecified() || matches!(n.direction, SdpDirection::RecvOnly | SdpDirection::Inactive)
}

/// `sip:alice@host` → `alice@host`, as CMS shows a remote party.
fn party(uri: &str) -> String {
    let uri = uri.trim();
    let bare = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:")).unwrap_or(uri);
    bare.split(';').next().unwrap_or(bare).to_string()
}

type Answer = (SessionDescription, NegotiatedAudio, Option<NegotiatedVideo>, Option<NegotiatedFecc>);

impl Bridge {
    fn sip_leg_mut(&mut self, id: Uuid) -> Option<&mut SipLeg> {
        self.leg_mut(id).and_then(|l| match &mut l.signalling {
            Signalling::Sip(sip) => Some(&mut **sip),
            Signalling::Web(_) => None,
        })
    }

    pub(super) fn sip(&mut self, command: SipCommand) {
        self.outputs.push_back(Output::Sip(command));
    }

    /// Where a conference takes video, unless video is off.
    fn video_address(&self, conference: ConferenceId) -> Option<SocketAddr> {
        if !self.config.video {
            return None;
        }
        self.media.conference_video_addresses(conference).ok().map(|(rtp, _)| rtp)
    }

    /// Answers an offer with our audio (and video, when H.264 is offered and
    /// video is on) at the conference's addresses.
    pub(super) fn answer_offer(
        &mut self,
        conference: ConferenceId,
        offer: &SessionDescription,
        session: (u64, u64),
        policy: MediaEncryption,
    ) -> Result<Answer, u16> {
        let (audio, _) = self.media.conference_addresses(conference).map_err(|_| 503u16)?;
        let local = LocalMedia {
            address: audio.ip(),
            audio_port: audio.port(),
            session_id: session.0,
            session_version: session.1,
            direction: SdpDirection::SendRecv,
        };
        let video = self.video_address(conference);
        let rng = &mut *self.rng;
        let answered = match video {
            Some(v) => confero_sdp::answer_with_video(offer, &local, &LocalVideo::hd720(v.port()), policy, rng),
            None => confero_sdp::answer(offer, &local, policy, rng).map(|(answer, audio)| (answer, audio, None)),
        };
        let (mut answer, audio, video) = answered.map_err(|e| {
            tracing::info!("SIP offer refused: {e}");
            e.status()
        })?;
        let fecc = if Compatibility::of(&*self.store).sip_h224 {
            let port = self.media.fecc_address().port();
            let fecc = confero_sdp::answer_fecc(&mut answer, offer, port, policy, &mut *self.rng);
            if let (None, Some(why)) = (&fecc, confero_sdp::fecc::refusal(offer, policy)) {
                tracing::info!("SIP offer: H.224 (far-end camera control) refused: {why}");
            }
            fecc
        } else {
            None
        };
        Ok((answer, audio, video, fecc))
    }

    /// The live call of a space, or a new one that ends with its last leg.
    pub(super) fn call_for_space(&mut self, now: Instant, space: &Object) -> Result<Uuid, BridgeError> {
        if let Some(c) = self.calls.iter().find(|c| c.live.co_space == Some(space.id)) {
            return Ok(c.live.id);
        }
        let new = NewCall {
            name: space.get("name").unwrap_or_default().to_string(),
            co_space: Some(space.id),
            tenant: space.get("tenant").and_then(|t| Uuid::parse_str(t).ok()),
            cdr_tag: space.get("cdrTag").map(str::to_string),
            owner_name: None,
            config: Vec::new(),
        };
        self.new_call(now, new, true)
    }

    pub(super) fn on_sip_event(&mut self, now: Instant, event: SipEvent) {
        match event {
            SipEvent::Incoming { leg, call } => self.incoming(now, leg, *call),
            SipEvent::Ringing { leg } => self.set_state(leg, LegState::Ringing),
            SipEvent::Answered { leg, sdp } => self.answered(now, leg, sdp),
            SipEvent::Failed { leg, code, reason } => self.failed(now, leg, code, &reason),
            SipEvent::Reoffer { leg, offer } => self.reoffer(now, leg, offer),
            SipEvent::AckAnswer { leg, sdp } => self.ack_answer(now, leg, sdp),
            SipEvent::Dtmf { leg, digit } => self.digit(now, leg, digit),
            SipEvent::ReinviteAnswered { leg, sdp } => self.moved(now, leg, sdp),
            SipEvent::ReinviteFailed { leg, code } => self.move_failed(now, leg, code),
            SipEvent::Ended { leg, reason } => {
                let why = match reason {
                    EndReason::RemoteHangup | EndReason::Cancelled => "remoteTeardown",
                    EndReason::NoAck | EndReason::SessionExpired | EndReason::DialogLost => "timeout",
                };
                self.drop_leg(now, leg, why);
            }
        }
    }

    /// A new SIP call: the dial plan finds its space, its offer is answered,
    /// and it joins the space's call (in the lobby while a passcode is due).
    fn incoming(&mut self, now: Instant, id: Uuid, ic: IncomingCall) {
        let reject = |me: &mut Bridge, code: u16| me.sip(SipCommand::Reject { leg: id, code });
        if self.closing {
            return reject(self, 503);
        }
        let uri = SipUri::parse(&ic.request_uri);
        let user = ic.user.clone().or_else(|| uri.as_ref().and_then(|u| u.user.clone())).unwrap_or_default();
        let domain = uri.as_ref().map(|u| u.host.clone()).unwrap_or_default();
        if let Some(ivr) = dialplan::resolve_ivr(&*self.store, &user, &domain) {
            return self.incoming_ivr(now, id, ic, ivr);
        }
        let destination = match dialplan::resolve_inbound(&*self.store, &user, &domain) {
            Ok(d) => d,
            Err(InboundRefusal::DomainNotServed | InboundRefusal::NotFound) => {
                tracing::info!("SIP call to {user}@{domain}: no such space");
                return reject(self, 404);
            }
        };
        if !destination.admits_non_members() {
            return reject(self, 403);
        }
        let Some(offer) = ic.offer.as_deref() else {
            // Call controls (Unified CM, Expressway, trunks) often send no
            // SDP: we offer in the 200 and take the answer from the ACK.
            return self.incoming_without_offer(now, id, ic, destination, &user);
        };
        let Ok(offer) = SessionDescription::parse(offer) else { return reject(self, 488) };
        let (profiles, lobby) = self.profiles_at(&destination);
        let call = match self.call_with_room(now, &destination.space) {
            Ok(call) => call,
            Err(e) => return reject(self, super::limits::sip_refusal(e)),
        };
        let Some(conference) = self.conference_of(call) else { return reject(self, 503) };
        let session = (u64::from(self.rng.next_u32()), 1);
        let policy = profiles.media_encryption();
        let answered = match self.answer_offer(conference, &offer, session, policy) {
            Ok(a) => a,
            Err(code) => {
                reject(self, code);
                return self.end_if_empty(now, call);
            }
        };
        let remote_rtp = answered.1.remote_rtp;
        let sip = SipLeg::new(policy, session.0);
        let leg = self.incoming_leg(now, id, &ic, call, sip, profiles, lobby);
        let prompt = leg.lobby.as_ref().map(|_| self.passcode_prompt(Some(destination.space.id)));
        match self.admit_answered(now, leg, answered, prompt, ic.source.addr.ip()) {
            Ok(()) => {
                let leg = self.leg(id);
                tracing::info!(
                    "SIP call from {} joined {user} as leg {id} ({}, {}, media {remote_rtp})",
                    leg.map_or("", |l| l.live.remote_party.as_str()),
                    leg.map_or("", |l| l.codec),
                    leg.and_then(|l| l.live.cipher_suite.as_deref()).unwrap_or("unencrypted"),
                );
            }
            Err(e) => tracing::warn!("SIP call to {user}: media: {e}"),
        }
    }

    /// Admits an incoming leg, connects the media its offer agreed on (with
    /// `prompt` playing in place of the conference) and accepts the call; a
    /// refused endpoint rejects it 500 and drops the leg.
    pub(super) fn admit_answered(
        &mut self,
        now: Instant,
        leg: Leg,
        (answer, audio, video, fecc): Answer,
        prompt: Option<Prompt>,
        signalling_ip: IpAddr,
    ) -> Result<(), String> {
        let id = leg.live.id;
        let fecc = fecc.map(|f| fecc_stream(&f, self.rng.next_u32()));
        let layout = leg.settings.layout;
        let (spec, negotiated) = media_of(&audio, video.as_ref(), fecc, layout, prompt, Some(signalling_ip));
        self.admit(leg);
        match self.connect(now, id, spec, negotiated) {
            Ok(()) => {
                self.sip(SipCommand::Accept { leg: id, answer: answer.to_text().into_bytes() });
                Ok(())
            }
            Err(e) => {
                self.sip(SipCommand::Reject { leg: id, code: 500 });
                self.drop_leg(now, id, "mediaNegotiationFailure");
                Err(e)
            }
        }
    }

    /// The call leg profiles of a caller reaching `destination`, and the
    /// passcode lobby it waits in, if it owes one.
    pub(super) fn profiles_at(&self, destination: &dialplan::Destination) -> (ProfileChain, Option<Lobby>) {
        let place = LegPlace {
            own_profile: None,
            access_method: destination.access_method.as_ref(),
            space: Some(&destination.space),
        };
        (ProfileChain::resolve(&*self.store, place), Lobby::for_destination(destination))
    }

    /// An offerless INVITE (a late offer): the leg joins its space's call
    /// as any caller's, our offer goes in the 200, and its media connects
    /// when the ACK brings the answer ([`Bridge::ack_answer`]).
    fn incoming_without_offer(
        &mut self,
        now: Instant,
        id: Uuid,
        ic: IncomingCall,
        destination: dialplan::Destination,
        user: &str,
    ) {
        let (profiles, lobby) = self.profiles_at(&destination);
        let call = match self.call_with_room(now, &destination.space) {
            Ok(call) => call,
            Err(e) => return self.sip(SipCommand::Reject { leg: id, code: super::limits::sip_refusal(e) }),
        };
        let Some(conference) = self.conference_of(call) else {
            return self.sip(SipCommand::Reject { leg: id, code: 503 });
        };
        let policy = profiles.media_encryption();
        let session_id = u64::from(self.rng.next_u32());
        let Some(ours) = self.our_offer(conference, policy, (session_id, 1)) else {
            self.sip(SipCommand::Reject { leg: id, code: 503 });
            return self.end_if_empty(now, call);
        };
        let mut sip = SipLeg::new(policy, session_id);
        let body = sip.offered(ours);
        let leg = self.incoming_leg(now, id, &ic, call, sip, profiles, lobby);
        self.admit(leg);
        self.sip(SipCommand::Accept { leg: id, answer: body });
        tracing::info!("SIP call to {user} without an offer: our offer went in the 200 (leg {id})");
    }

    /// The leg of an incoming call: named from the INVITE's From, its SIP
    /// part knowing where the signalling came from, in the lobby while a
    /// passcode is due.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn incoming_leg(
        &mut self,
        now: Instant,
        id: Uuid,
        ic: &IncomingCall,
        call: Uuid,
        mut sip: SipLeg,
        profiles: ProfileChain,
        lobby: Option<Lobby>,
    ) -> Leg {
        let mut live = self.new_live_leg(
            call,
            Direction::Incoming,
            ic.from.display.clone().unwrap_or_default(),
            party(&ic.from.uri),
        );
        live.id = id;
        sip.signalling_ip = Some(ic.source.addr.ip());
        let mut leg = Leg::new(live, now, Signalling::Sip(Box::new(sip)), profiles);
        leg.lobby = lobby;
        leg
    }

    /// Our offer at a conference's addresses (audio, H.264 when video is
    /// on, H.224 when `sipH224` allows), for a dial-out or a late offer.
    pub(super) fn our_offer(
        &mut self,
        conference: ConferenceId,
        policy: MediaEncryption,
        session: (u64, u64),
    ) -> Option<OurOffer> {
        let (rtp, _) = self.media.conference_addresses(conference).ok()?;
        let local = LocalMedia {
            address: rtp.ip(),
            audio_port: rtp.port(),
            session_id: session.0,
            session_version: session.1,
            direction: SdpDirection::SendRecv,
        };
        let mut offer = AudioOffer::new(&local, policy, &mut *self.rng);
        let compatibility = Compatibility::of(&*self.store);
        let video = self.video_address(conference).map(|v| {
            let (local, pts) = (LocalVideo::hd720(v.port()), compatibility.video_payload_types);
            VideoOffer::add_to(&mut offer.sdp, &local, pts, policy, &mut *self.rng)
        });
        let fecc = compatibility
            .sip_h224
            .then(|| FeccOffer::add_to(&mut offer.sdp, self.media.fecc_address().port(), policy, &mut *self.rng));
        Some(OurOffer { audio: offer, video, fecc })
    }

    /// The answer an ACK brought to the offer in our 200: connects the leg's
    /// media as an answer to a dial-out does. An ACK with SDP when we made no
    /// offer is ignored.
    fn ack_answer(&mut self, now: Instant, id: Uuid, sdp: Vec<u8>) {
        if self.sip_leg_mut(id).is_some_and(|s| s.offer.is_some()) {
            self.answered(now, id, Some(sdp));
        }
    }

    /// A new offer in the dialog: hold, resume, a new address or new keys.
    /// An offerless re-INVITE gets our offer, its answer comes in the ACK.
    fn reoffer(&mut self, now: Instant, id: Uuid, offer: Option<Vec<u8>>) {
        let refuse = |me: &mut Bridge, code: u16| me.sip(SipCommand::AnswerReoffer { leg: id, answer: Err(code) });
        let Some(offer) = offer else {
            let Some(conference) = self.leg(id).and_then(|l| self.conference_of(l.live.call)) else {
                return refuse(self, 481);
            };
            let Some(sip) = self.sip_leg_mut(id) else { return refuse(self, 481) };
            sip.session.1 += 1;
            let (session, policy) = (sip.session, sip.policy);
            let Some(ours) = self.our_offer(conference, policy, session) else {
                return refuse(self, 500);
            };
            let Some(sip) = self.sip_leg_mut(id) else { return refuse(self, 481) };
            let body = sip.offered(ours);
            return self.sip(SipCommand::AnswerReoffer { leg: id, answer: Ok(body) });
        };
        let Some(offer) = SessionDescription::parse(&offer).ok() else {
            return refuse(self, 488);
        };
        let Some(conference) = self.leg(id).and_then(|l| self.conference_of(l.live.call)) else {
            return refuse(self, 481);
        };
        let Some(sip) = self.sip_leg_mut(id) else { return refuse(self, 481) };
        sip.session.1 += 1;
        let (session, policy, signalling_ip) = (sip.session, sip.policy, sip.signalling_ip);
        let (answer, audio, video, fecc) = match self.answer_offer(conference, &offer, session, policy) {
            Ok(a) => a,
            Err(code) => return refuse(self, code),
        };
        let fecc = fecc.map(|f| fecc_stream(&f, self.rng.next_u32()));
        let Some(leg) = self.leg(id) else { return };
        let prompt = leg.lobby.as_ref().map(|_| self.passcode_prompt(self.space_of_call(leg.live.call)));
        let (spec, negotiated) = media_of(&audio, video.as_ref(), fecc, leg.settings.layout, prompt, signalling_ip);
        // New keys or codec: a new endpoint in place of the old one.
        match self.connect(now, id, spec, negotiated) {
            Ok(()) => self.sip(SipCommand::AnswerReoffer { leg: id, answer: Ok(answer.to_text().into_bytes()) }),
            Err(e) => {
                tracing::warn!("call leg {id}: re-INVITE: media: {e}");
                refuse(self, 500);
            }
        }
    }

    /// `POST /calls/<id>/callLegs`: a SIP leg out (the only kind the API
    /// dials), through dial transforms and outbound rules. The leg exists at
    /// once; a failure to route ends it with a reason, as CMS does, rather
    /// than failing the request.
    pub fn dial(
        &mut self,
        now: Instant,
        call: Uuid,
        remote_party: &str,
        config: &[Change],
    ) -> Result<LiveCallLeg, BridgeError> {
        if self.closing {
            return Err(BridgeError::Overloaded);
        }
        let conference = self.conference_of(call).ok_or(BridgeError::CallDoesNotExist)?;
        self.room_for_one_more(call)?;
        let mut live = self.new_live_leg(call, Direction::Outgoing, String::new(), remote_party.to_string());
        live.id = self.new_id();
        super::apply(&mut live.config, config);
        let id = live.id;
        let space = self.calls.iter().find(|c| c.live.id == call).and_then(|c| c.live.co_space);
        let space = space.and_then(|s| self.store.get(Kind::CoSpace, s));
        let own_profile = live.config.get("callLegProfile").cloned();
        let place = LegPlace { own_profile: own_profile.as_deref(), access_method: None, space: space.as_ref() };
        let profiles = ProfileChain::resolve(&*self.store, place);
        let policy = profiles.media_encryption();
        let session_id = u64::from(self.rng.next_u32());
        let mut sip = SipLeg::new(policy, session_id);
        sip.from_user = space.as_ref().and_then(|s| s.get("uri")).unwrap_or("confero").to_string();
        self.admit(Leg::new(live.clone(), now, Signalling::Sip(Box::new(sip)), profiles));

        let routes = self.routes(remote_party);
        let offers = self.our_offer(conference, policy, (session_id, 1));
        let (routes, ours) = match (routes, self.config.sip_local, offers) {
            (Err(reason), ..) => {
                tracing::info!("call leg {id} to {remote_party}: {reason}");
                self.drop_leg(now, id, reason);
                return Ok(live);
            }
            (_, None, _) => {
                self.drop_leg(now, id, "sipTransportUnavailable");
                return Ok(live);
            }
            (_, _, None) => {
                self.drop_leg(now, id, "mediaUnavailable");
                return Ok(live);
            }
            (Ok(r), Some(_), Some(offers)) => (r, offers),
        };
        if let Some(sip) = self.sip_leg_mut(id) {
            sip.body = sip.offered(ours);
            sip.routes = routes;
        }
        self.next_route(now, id);
        Ok(live)
    }

    /// Where to send a dial string: one route per outbound rule, best first.
    fn routes(&self, remote_party: &str) -> Result<VecDeque<Route>, &'static str> {
        let dialled = dialplan::transform(&*self.store, remote_party).map_err(|_| "callDenied")?;
        let target = if dialled.contains(':') && dialled.starts_with("sip") {
            dialled.clone()
        } else {
            format!("sip:{dialled}")
        };
        let uri = SipUri::parse(&target).ok_or("invalidAddress")?;
        if uri.user.is_none() && !dialled.contains('@') {
            return Err("invalidAddress");
        }
        let mut out = VecDeque::new();
        for rule in dialplan::outbound_routes(&*self.store, &uri.host) {
            let (hop_uri, route_header) = match &rule.sip_proxy {
                Some(proxy) => {
                    let p = SipUri::parse(&format!("sip:{proxy}")).ok_or("invalidAddress")?;
                    (p, Some(format!("<sip:{proxy};lr>")))
                }
                None => (uri.clone(), None),
            };
            // The URI's scheme and `;transport=` against the rule's
            // `sipControlEncryption`: a rule that cannot carry it is skipped.
            let hop = match Hop::of(&hop_uri, ControlEncryption::parse(&rule.control_encryption)) {
                Ok(hop) => hop,
                Err(e) => {
                    tracing::info!("dial-out to {target}: a rule for {} cannot carry it ({e:?})", uri.host);
                    continue;
                }
            };
            out.push_back(Route {
                target: target.clone(),
                hop,
                route_header,
                from_domain: rule.local_from_domain,
                contact_domain: rule.local_contact_domain,
            });
        }
        if out.is_empty() {
            return Err("dnsFailure");
        }
        Ok(out)
    }

    /// Tries a dial-out's next route: its hop is located (RFC 3263) unless
    /// it is an address, then its servers are tried in turn. No route left
    /// ends the leg.
    fn next_route(&mut self, now: Instant, id: Uuid) {
        let Some(sip) = self.sip_leg_mut(id) else { return };
        sip.targets.clear();
        let Some(route) = sip.routes.pop_front() else {
            sip.current = None;
            let reason = if sip.dialled { "sipFailure" } else { "dnsFailure" };
            self.drop_leg(now, id, reason);
            return;
        };
        sip.current = Some(route.clone());
        match route.hop.host.parse::<IpAddr>() {
            Ok(ip) => {
                let transport = route.hop.direct_transport();
                let port = route.hop.port.unwrap_or_else(|| resolve::default_port(transport));
                sip.targets.push_back(Peer { transport, addr: SocketAddr::new(ip, port) });
                self.next_target(now, id);
            }
            Err(_) => self.outputs.push_back(Output::Lookup(Lookup { leg: id, hop: route.hop })),
        }
    }

    pub(super) fn on_lookup(&mut self, now: Instant, lookup: &Lookup, servers: Vec<Peer>) {
        let Some(sip) = self.sip_leg_mut(lookup.leg) else { return };
        let waiting = sip.targets.is_empty() && sip.current.as_ref().is_some_and(|r| r.hop == lookup.hop);
        if !waiting {
            return; // the leg ended or moved on meanwhile
        }
        if servers.is_empty() {
            tracing::info!("call leg {}: {} does not resolve", lookup.leg, lookup.hop.host);
        }
        sip.targets = servers.into();
        self.next_target(now, lookup.leg);
    }

    /// Sends the INVITE of the leg's current route to its next server, or
    /// moves to the next route when none is left.
    fn next_target(&mut self, now: Instant, id: Uuid) {
        let local = self.config.sip_local;
        let Some(sip) = self.sip_leg_mut(id) else { return };
        let (Some(route), Some(peer)) = (sip.current.clone(), sip.targets.pop_front()) else {
            self.next_route(now, id);
            return;
        };
        sip.dialled = true;
        sip.signalling_ip = Some(peer.addr.ip());
        let from_host = route.from_domain.or_else(|| local.map(|l| l.to_string())).unwrap_or_default();
        let dial = Dial {
            target: route.target,
            from: format!("sip:{}@{from_host}", sip.from_user),
            display_name: None,
            offer: sip.body.clone(),
            destination: peer,
            route: route.route_header,
            contact_domain: route.contact_domain,
        };
        // Over TLS the server's certificate must name the hop (RFC 5922).
        let server_name = (peer.transport == Transport::Tls).then_some(route.hop.host);
        self.sip(SipCommand::Dial { leg: id, dial: Box::new(dial), server_name });
    }

    /// The far end answered our INVITE.
    pub(super) fn answered(&mut self, now: Instant, id: Uuid, sdp_bytes: Option<Vec<u8>>) {
        // A late-offer caller still owes its passcode.
        let lobby_prompt =
            self.leg(id).filter(|l| l.lobby.is_some()).map(|l| self.passcode_prompt(self.space_of_call(l.live.call)));
        let Some(leg) = self.leg_mut(id) else {
            self.sip(SipCommand::Hangup { leg: id });
            return;
        };
        let layout = leg.settings.layout;
        let prompt = lobby_prompt;
        let Signalling::Sip(sip) = &mut leg.signalling else { return };
        let answer = sdp_bytes.as_deref().and_then(|b| SessionDescription::parse(b).ok());
        let video = match (sip.video_offer.take(), &answer) {
            (Some(offer), Some(answer)) => offer.accept(answer),
            _ => None,
        };
        let fecc = match (sip.fecc_offer.take(), &answer) {
            (Some(offer), Some(answer)) => offer.accept(answer),
            _ => None,
        };
        let negotiated = match (sip.offer.take(), &answer) {
            (Some(offer), Some(answer)) => offer.accept(answer).map_err(|e| e.to_string()),
            _ => Err("no SDP answer".to_string()),
        };
        let signalling_ip = sip.signalling_ip;
        let fecc = fecc.map(|f| fecc_stream(&f, self.rng.next_u32()));
        let connected = negotiated.and_then(|audio| {
            let (spec, media) = media_of(&audio, video.as_ref(), fecc, layout, prompt, signalling_ip);
            self.connect(now, id, spec, media)
        });
        match connected {
            // A dial-out's `dtmfSequence` (a PIN for the far end's menu)
            // goes once it has answered.
            Ok(()) => self.send_dtmf_sequence(id),
            Err(e) => {
                tracing::info!("call leg {id}: answer unusable ({e}); hanging up");
                self.end_leg(now, id, "securityNegotiationFailure");
            }
        }
    }

    /// Our INVITE failed: the next route, or the leg ends.
    fn failed(&mut self, now: Instant, id: Uuid, code: u16, reason: &str) {
        if self.leg(id).is_none() {
            return;
        }
        tracing::info!("call leg {id}: {code} {reason}");
        if code == 0 {
            // The user agent could not send it at all.
            self.drop_leg(now, id, "invalidAddress");
            return;
        }
        // No answer or unreachable (408, 503, a transport error): the
        // route's next server (RFC 3263 §4.3); any other refusal: the next
        // route.
        let Some(sip) = self.sip_leg_mut(id) else { return };
        if !matches!(code, 408 | 503) {
            sip.targets.clear();
        }
        if sip.targets.is_empty() && sip.routes.is_empty() {
            self.drop_leg(now, id, "sipFailure");
        } else {
            self.next_target(now, id);
        }
    }
}
