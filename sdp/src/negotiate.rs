//! Audio offer/answer (RFC 3264) for the bridge: one audio stream, our codec
//! preference, the offerer's payload type numbers, RFC 4733 telephone-events,
//! rtcp-mux when offered, hold by direction, and SDES-SRTP under the
//! `sipMediaEncryption` policy. [`answer`] refuses every other stream with
//! port 0; [`crate::answer_with_video`] adds the first H.264 video stream.

use std::net::{IpAddr, SocketAddr};

use rand::RngCore;

use super::crypto::{CryptoAttribute, CryptoSuite, SrtpParams};
use super::{connection_value, Line, MediaDescription, SessionDescription};

/// CMS `sipMediaEncryption` of the effective callLegProfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaEncryption {
    /// SRTP when the peer offers or accepts it, plain RTP otherwise.
    #[default]
    Optional,
    /// SRTP or no call: an offer without usable crypto is refused (488).
    Required,
    /// Plain RTP only: an offer that is secure-only is refused (488).
    Prohibited,
}

/// The audio codecs the media engine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// Opus, `opus/48000/2`.
    Opus,
    /// G.722, `G722/8000` (16 kHz audio on an 8 kHz RTP clock).
    G722,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl AudioCodec {
    /// Our preference order: best quality first.
    pub const PREFERENCE: [AudioCodec; 4] = [AudioCodec::Opus, AudioCodec::G722, AudioCodec::Pcmu, AudioCodec::Pcma];

    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Opus => "opus",
            AudioCodec::G722 => "G722",
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Opus => 48_000,
            _ => 8_000,
        }
    }

    /// The static payload type of RFC 3551, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            AudioCodec::Opus => None,
            AudioCodec::G722 => Some(9),
            AudioCodec::Pcmu => Some(0),
            AudioCodec::Pcma => Some(8),
        }
    }

    /// The payload type we use when we offer.
    fn offer_payload_type(self) -> u8 {
        self.static_payload_type().unwrap_or(111)
    }

    /// The rtpmap value after the payload type.
    fn rtpmap(self) -> String {
        match self {
            AudioCodec::Opus => "opus/48000/2".to_string(),
            other => format!("{}/{}", other.name(), other.clock_rate()),
        }
    }
}

/// The codec chosen for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Which codec.
    pub codec: AudioCodec,
    /// Its payload type in both directions (the offerer's number).
    pub payload_type: u8,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// Channels we send: 2 only for Opus when the peer asked for stereo.
    pub channels: u8,
    /// The peer's fmtp parameters for it, as sent.
    pub fmtp: Option<String>,
}

/// Stream direction, from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways.
    #[default]
    SendRecv,
    /// We send, the peer does not (the peer put us on hold with recvonly).
    SendOnly,
    /// The peer sends, we do not (the peer is holding: it sent sendonly).
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    pub(super) fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The same stream seen from the other side.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// The direction a media section declares (sendrecv when none is given).
    pub(super) fn of(media: &MediaDescription, session: &SessionDescription) -> Direction {
        for (name, direction) in [
            ("sendonly", Direction::SendOnly),
            ("recvonly", Direction::RecvOnly),
            ("inactive", Direction::Inactive),
            ("sendrecv", Direction::SendRecv),
        ] {
            if media.has_attribute(name) || session.session_attribute(name).is_some() {
                return direction;
            }
        }
        Direction::SendRecv
    }
}

/// Our side of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address the peer sends RTP to.
    pub address: IpAddr,
    /// Our RTP port (RTCP on the same port with mux, else port + 1).
    pub audio_port: u16,
    /// The o= session id, fixed for the call.
    pub session_id: u64,
    /// The o= version, one more for each new description in the call.
    pub session_version: u64,
    /// What we want: sendrecv normally, sendonly to hold the peer.
    pub direction: Direction,
}

/// What the bridge hands the media engine for one audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: the RTP address with mux, `a=rtcp` if given, else port + 1.
    pub remote_rtcp: SocketAddr,
    /// RTP and RTCP share one port.
    pub rtcp_mux: bool,
    /// The codec both ways.
    pub codec: Codec,
    /// The RFC 4733 telephone-event payload type, when the peer has one at the codec's rate.
    pub telephone_event: Option<u8>,
    /// The packet time the peer asked for (a=ptime), else 20.
    pub ptime_ms: u8,
    /// The direction from our side; a remote address of 0.0.0.0 counts as hold.
    pub direction: Direction,
    /// SRTP, when the stream is encrypted.
    pub srtp: Option<SrtpParams>,
    /// The RFC 6464 audio-level header extension id (RFC 8285 `a=extmap`),
    /// when both sides use it: the mixer then picks speakers without
    /// decoding anyone.
    pub audio_level_id: Option<u8>,
}

/// Why an offer or answer cannot give a stream: the caller answers 488 (or,
/// for an answer to our offer, hangs up with that reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// No audio stream in the description.
    #[error("no audio stream offered")]
    NoAudio,
    /// None of Opus, G.722, PCMU, PCMA was offered.
    #[error("no common audio codec")]
    NoCommonCodec,
    /// The policy requires SRTP and the offer has no crypto line we support.
    #[error("encrypted media required, none offered")]
    EncryptionRequired,
    /// The policy prohibits SRTP and the offer is secure-only.
    #[error("encrypted media prohibited, only encrypted media offered")]
    EncryptionProhibited,
    /// The offer is secure-only and none of its crypto lines is usable.
    #[error("no usable crypto suite offered")]
    NoCryptoSuite,
    /// No usable connection address (a host name, or none at all).
    #[error("no usable connection address")]
    NoConnection,
    /// No video stream (or only a refused one) in the description.
    #[error("no video stream offered")]
    NoVideo,
    /// No H.264 payload type with a profile and packetization mode we take.
    #[error("no common video codec")]
    NoCommonVideoCodec,
}

impl NegotiationError {
    /// The SIP status to refuse an offer with.
    pub fn status(&self) -> u16 {
        488
    }
}

/// Everything chosen from one offered audio section.
struct Chosen {
    codec: Codec,
    telephone_event: Option<(u8, u32)>,
    crypto: Option<CryptoAttribute>,
}

/// Payload type → (encoding name, clock rate, channels) from a=rtpmap, and the
/// RFC 3551 static types for those without one.
pub(super) fn rtpmap(media: &MediaDescription, pt: u8) -> Option<(String, u32, u8)> {
    for value in media.attribute_values("rtpmap") {
        let Some((number, encoding)) = value.split_once(' ') else { continue };
        if number.trim().parse::<u8>().ok() != Some(pt) {
            continue;
        }
        let mut parts = encoding.trim().split('/');
        let name = parts.next()?.to_string();
        let rate = parts.next()?.parse().ok()?;
        let channels = parts.next().map_or(Some(1), |c| c.parse().ok())?;
        return Some((name, rate, channels));
    }
    match pt {
        0 => Some(("PCMU".into(), 8000, 1)),
        8 => Some(("PCMA".into(), 8000, 1)),
        9 => Some(("G722".into(), 8000, 1)),
        _ => None,
    }
}

/// The fmtp parameters for a payload type.
pub(super) fn fmtp(media: &MediaDescription, pt: u8) -> Option<String> {
    media.attribute_values("fmtp").find_map(|value| {
        let (number, params) = value.split_once(' ')?;
        (number.trim().parse::<u8>().ok() == Some(pt)).then(|| params.trim().to_string())
    })
}

fn fmtp_flag(params: &str, name: &str) -> bool {
    params.split(';').filter_map(|p| p.split_once('=')).any(|(n, v)| n.trim() == name && v.trim() == "1")
}

pub(super) fn payload_types(media: &MediaDescription) -> impl Iterator<Item = u8> + '_ {
    media.formats.iter().filter_map(|f| f.parse::<u8>().ok()).filter(|pt| *pt < 128)
}

/// Our codec from an offered audio section, by our preference.
fn choose_codec(media: &MediaDescription) -> Option<Codec> {
    for wanted in AudioCodec::PREFERENCE {
        for pt in payload_types(media) {
            let Some((name, rate, channels)) = rtpmap(media, pt) else { continue };
            let matches = name.eq_ignore_ascii_case(wanted.name())
                && rate == wanted.clock_rate()
                && (wanted != AudioCodec::Opus || channels == 2);
            if !matches {
                continue;
            }
            let fmtp = fmtp(media, pt);
            let stereo = wanted == AudioCodec::Opus && fmtp.as_deref().is_some_and(|f| fmtp_flag(f, "stereo"));
            return Some(Codec {
                codec: wanted,
                payload_type: pt,
                clock_rate: rate,
                channels: if stereo { 2 } else { 1 },
                fmtp,
            });
        }
    }
    None
}

/// The offered RFC 4733 telephone-event (payload type, clock rate): the
/// one at the codec's rate if there is one, else any. Many endpoints
/// (baresip among them) offer only telephone-event/8000 beside Opus; the
/// digit is what matters, not the event's clock.
fn telephone_event(media: &MediaDescription, clock_rate: u32) -> Option<(u8, u32)> {
    let events: Vec<(u8, u32)> = payload_types(media)
        .filter_map(|pt| {
            rtpmap(media, pt)
                .filter(|(name, _, _)| name.eq_ignore_ascii_case("telephone-event"))
                .map(|(_, r, _)| (pt, r))
        })
        .collect();
    events.iter().find(|(_, rate)| *rate == clock_rate).or_else(|| events.first()).copied()
}

/// The URI of the RFC 6464 client-to-mixer audio level extension.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The id of an offered or answered `a=extmap:<id>[/<direction>] <audio level URI>`,
/// if it is one the one-byte header form can carry (1-14).
fn audio_level_id(media: &MediaDescription) -> Option<u8> {
    media.attribute_values("extmap").find_map(|v| {
        let mut words = v.split_whitespace();
        let id = words.next()?.split('/').next()?.parse::<u8>().ok().filter(|id| (1..=14).contains(id))?;
        (words.next()? == AUDIO_LEVEL_URI).then_some(id)
    })
}

/// Picks codec and crypto for one offered audio section under the policy.
fn choose(media: &MediaDescription, policy: MediaEncryption) -> Result<Chosen, NegotiationError> {
    if media.port == 0 {
        return Err(NegotiationError::NoAudio);
    }
    let crypto = choose_crypto(media, policy)?;
    let codec = choose_codec(media).ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event = telephone_event(media, codec.clock_rate);
    Ok(Chosen { codec, telephone_event, crypto })
}

/// The offered crypto line to answer, under the policy: `None` for plain RTP.
/// Shared by audio and video, so both streams of a call obey the same rule.
pub(super) fn choose_crypto(
    media: &MediaDescription,
    policy: MediaEncryption,
) -> Result<Option<CryptoAttribute>, NegotiationError> {
    let secure = media.is_secure_profile();
    let offered_crypto = media.attribute_values("crypto").count() > 0;
    let crypto = media.attribute_values("crypto").find_map(CryptoAttribute::parse);
    match policy {
        MediaEncryption::Prohibited if secure => Err(NegotiationError::EncryptionProhibited),
        MediaEncryption::Prohibited => Ok(None),
        MediaEncryption::Required if crypto.is_none() => {
            Err(if offered_crypto { NegotiationError::NoCryptoSuite } else { NegotiationError::EncryptionRequired })
        }
        _ if secure && crypto.is_none() => Err(NegotiationError::NoCryptoSuite),
        // RTP/AVP with crypto lines is best-effort SRTP: take it when we can.
        _ => Ok(crypto),
    }
}

/// The crypto lines of a section we offer: one per suite, in our order,
/// unless the policy prohibits SRTP.
pub(super) fn offer_crypto(policy: MediaEncryption, rng: &mut dyn RngCore) -> Vec<CryptoAttribute> {
    match policy {
        MediaEncryption::Prohibited => Vec::new(),
        _ => CryptoSuite::OFFER_ORDER
            .iter()
            .zip(1..)
            .map(|(suite, tag)| CryptoAttribute::generate(tag, *suite, rng))
            .collect(),
    }
}

/// What an answer to one of our offered sections says of its transport.
pub(super) struct AnsweredStream {
    pub srtp: Option<SrtpParams>,
    pub rtcp_mux: bool,
    pub remote_rtp: SocketAddr,
    pub remote_rtcp: SocketAddr,
    /// The direction from our side, given what we offered.
    pub direction: Direction,
}

/// Reads an answered section's keys (against the lines we offered in it),
/// addresses and direction; `None` when they cannot be used.
pub(super) fn answered_stream(
    media: &MediaDescription,
    answer: &SessionDescription,
    policy: MediaEncryption,
    offered: &[CryptoAttribute],
    ours: Direction,
) -> Option<AnsweredStream> {
    let srtp = answered_srtp(media, policy, offered).ok()?;
    let rtcp_mux = media.has_attribute("rtcp-mux");
    let (remote_rtp, remote_rtcp, held) = remote_addresses(media, answer, rtcp_mux).ok()?;
    let answered = Direction::of(media, answer);
    let answered = if held { combine(answered, Direction::SendOnly) } else { answered };
    Some(AnsweredStream { srtp, rtcp_mux, remote_rtp, remote_rtcp, direction: combine(answered.reversed(), ours) })
}

/// The keys both ways from the peer's line and ours.
pub(super) fn srtp_params(theirs: Option<CryptoAttribute>, ours: Option<&CryptoAttribute>) -> Option<SrtpParams> {
    match (theirs, ours) {
        (Some(theirs), Some(ours)) => Some(SrtpParams {
            suite: theirs.suite,
            remote_key: theirs.key,
            remote_salt: theirs.salt,
            local_key: ours.key.clone(),
            local_salt: ours.salt.clone(),
        }),
        _ => None,
    }
}

/// Where the peer's RTP and RTCP go, and whether the address says "hold".
/// The keys of an answered media section against the crypto lines we
/// offered in it, under `policy`: `None` for plain RTP.
pub(super) fn answered_srtp(
    media: &MediaDescription,
    policy: MediaEncryption,
    offered: &[CryptoAttribute],
) -> Result<Option<SrtpParams>, NegotiationError> {
    match media.attribute_values("crypto").find_map(CryptoAttribute::parse) {
        Some(_) if policy == MediaEncryption::Prohibited => Err(NegotiationError::EncryptionProhibited),
        Some(theirs) => {
            let ours = offered
                .iter()
                .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)
                .ok_or(NegotiationError::NoCryptoSuite)?;
            Ok(Some(SrtpParams {
                suite: theirs.suite,
                remote_key: theirs.key,
                remote_salt: theirs.salt,
                local_key: ours.key.clone(),
                local_salt: ours.salt.clone(),
            }))
        }
        None if policy == MediaEncryption::Required => Err(NegotiationError::EncryptionRequired),
        None => Ok(None),
    }
}

pub(super) fn remote_addresses(
    media: &MediaDescription,
    session: &SessionDescription,
    rtcp_mux: bool,
) -> Result<(SocketAddr, SocketAddr, bool), NegotiationError> {
    let connection = media.connection().or(session.connection()).ok_or(NegotiationError::NoConnection)?;
    let rtp = SocketAddr::new(connection.address, media.port);
    let held = connection.address.is_unspecified();
    if rtcp_mux {
        return Ok((rtp, rtp, held));
    }
    // a=rtcp:port [IN IP4 addr] (RFC 3605).
    let rtcp = media
        .attribute_values("rtcp")
        .next()
        .and_then(|value| {
            let (port, rest) = value.split_once(' ').unwrap_or((value, ""));
            let port: u16 = port.trim().parse().ok()?;
            let address = super::Connection::parse(rest).map_or(connection.address, |c| c.address);
            Some(SocketAddr::new(address, port))
        })
        .unwrap_or_else(|| SocketAddr::new(connection.address, media.port.saturating_add(1)));
    Ok((rtp, rtcp, held))
}

fn ptime(media: &MediaDescription) -> u8 {
    media.attribute_values("ptime").next().and_then(|p| p.trim().parse().ok()).filter(|p| *p > 0).unwrap_or(20)
}

/// Session-level lines of every description we write.
pub(super) fn session_lines(local: &LocalMedia) -> Vec<Line> {
    let line = |kind, value: String| Line { kind, value };
    vec![
        line('v', "0".into()),
        line(
            'o',
            format!("confero {} {} {}", local.session_id, local.session_version, connection_value(local.address)),
        ),
        line('s', "-".into()),
        line('c', connection_value(local.address)),
        line('t', "0 0".into()),
    ]
}

/// A refused section: same kind and proto, port 0, the first format kept (RFC 3264 §6).
pub(super) fn refused(media: &MediaDescription) -> MediaDescription {
    let formats = media.formats.first().cloned().map_or_else(|| vec!["0".to_string()], |f| vec![f]);
    MediaDescription {
        kind: media.kind.clone(),
        port: 0,
        port_count: None,
        proto: media.proto.clone(),
        formats,
        lines: vec![],
    }
}

/// Our audio section for a chosen codec.
fn audio_section(
    proto: &str,
    local: &LocalMedia,
    codec: &Codec,
    telephone_event: Option<(u8, u32)>,
    rtcp_mux: bool,
    crypto: Option<&CryptoAttribute>,
    direction: Direction,
) -> MediaDescription {
    let pt = codec.payload_type;
    let codec = codec.codec;
    let mut formats = vec![pt.to_string()];
    let mut media = MediaDescription {
        kind: "audio".into(),
        port: local.audio_port,
        port_count: None,
        proto: proto.to_string(),
        formats: Vec::new(),
        lines: Vec::new(),
    };
    media.push_attribute(format!("rtpmap:{pt} {}", codec.rtpmap()));
    if codec == AudioCodec::Opus {
        media.push_attribute(format!("fmtp:{pt} useinbandfec=1"));
    }
    if let Some((te, rate)) = telephone_event {
        formats.push(te.to_string());
        media.push_attribute(format!("rtpmap:{te} telephone-event/{rate}"));
        media.push_attribute(format!("fmtp:{te} 0-16"));
    }
    media.formats = formats;
    media.push_attribute("ptime:20");
    if rtcp_mux {
        media.push_attribute("rtcp-mux");
    }
    if let Some(line) = crypto {
        media.push_attribute(format!("crypto:{}", line.to_value()));
    }
    media.push_attribute(direction.attribute());
    media
}

/// Answers an offer: the first acceptable audio section gets our codec and
/// keys, every other section is refused with port 0. Errors mean 488.
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
    policy: MediaEncryption,
    rng: &mut dyn RngCore,
) -> Result<(SessionDescription, NegotiatedAudio), NegotiationError> {
    let mut first_error = None;
    let mut accepted: Option<(usize, Chosen)> = None;
    for (index, media) in offer.media.iter().enumerate() {
        if !media.kind.eq_ignore_ascii_case("audio") || !media.proto.to_ascii_uppercase().starts_with("RTP/") {
            continue;
        }
        match choose(media, policy) {
            Ok(chosen) => {
                accepted = Some((index, chosen));
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((index, chosen)) = accepted else { return Err(first_error.unwrap_or(NegotiationError::NoAudio)) };
    let offered = &offer.media[index];
    let rtcp_mux = offered.has_attribute("rtcp-mux");
    let (remote_rtp, remote_rtcp, held) = remote_addresses(offered, offer, rtcp_mux)?;
    // c=0.0.0.0 is the RFC 2543 hold: the peer receives nothing, whatever the attribute says.
    let offered_direction = Direction::of(offered, offer);
    let offered_direction = if held { combine(offered_direction, Direction::SendOnly) } else { offered_direction };
    let direction = combine(offered_direction.reversed(), local.direction);
    let ours = chosen.crypto.as_ref().map(|theirs| CryptoAttribute::generate(theirs.tag, theirs.suite, rng));
    let mut sdp = SessionDescription { session: session_lines(local), media: Vec::new() };
    for (i, media) in offer.media.iter().enumerate() {
        if i != index {
            sdp.media.push(refused(media));
            continue;
        }
        let mut section = audio_section(
            &media.proto,
            local,
            &chosen.codec,
            chosen.telephone_event,
            rtcp_mux,
            ours.as_ref(),
            direction,
        );
        if let Some(id) = audio_level_id(media) {
            section.push_attribute(format!("extmap:{id} {AUDIO_LEVEL_URI}"));
        }
        sdp.media.push(section);
    }
    let srtp = srtp_params(chosen.crypto, ours.as_ref());
    let negotiated = NegotiatedAudio {
        remote_rtp,
        remote_rtcp,
        rtcp_mux,
        codec: chosen.codec,
        telephone_event: chosen.telephone_event.map(|(pt, _)| pt),
        audio_level_id: audio_level_id(offered),
        ptime_ms: ptime(offered),
        direction,
        srtp,
    };
    Ok((sdp, negotiated))
}

/// The direction both sides allow: what the peer offers to do (already seen
/// from our side) narrowed by what we want.
pub(super) fn combine(allowed: Direction, wanted: Direction) -> Direction {
    let send = matches!(allowed, Direction::SendRecv | Direction::SendOnly)
        && matches!(wanted, Direction::SendRecv | Direction::SendOnly);
    let receive = matches!(allowed, Direction::SendRecv | Direction::RecvOnly)
        && matches!(wanted, Direction::SendRecv | Direction::RecvOnly);
    match (send, receive) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// An offer we made (dial-out or re-INVITE) and the keys in it, kept until
/// the answer comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioOffer {
    /// The description to send.
    pub sdp: SessionDescription,
    policy: MediaEncryption,
    crypto: Vec<CryptoAttribute>,
}

impl AudioOffer {
    /// Our offer: every codec in preference order, telephone-event at 48 kHz
    /// and 8 kHz, rtcp-mux, and under the policy: RTP/SAVP with crypto
    /// (Required), RTP/AVP with best-effort crypto (Optional), or RTP/AVP
    /// alone (Prohibited).
    pub fn new(local: &LocalMedia, policy: MediaEncryption, rng: &mut dyn RngCore) -> AudioOffer {
        let crypto = offer_crypto(policy, rng);
        let proto = if policy == MediaEncryption::Required { "RTP/SAVP" } else { "RTP/AVP" };
        let mut media = MediaDescription {
            kind: "audio".into(),
            port: local.audio_port,
            port_count: None,
            proto: proto.into(),
            formats: Vec::new(),
            lines: Vec::new(),
        };
        for codec in AudioCodec::PREFERENCE {
            let pt = codec.offer_payload_type();
            media.formats.push(pt.to_string());
            media.push_attribute(format!("rtpmap:{pt} {}", codec.rtpmap()));
            if codec == AudioCodec::Opus {
                media.push_attribute(format!("fmtp:{pt} useinbandfec=1"));
            }
        }
        for (pt, rate) in [(101u8, 48_000u32), (100, 8_000)] {
            media.formats.push(pt.to_string());
            media.push_attribute(format!("rtpmap:{pt} telephone-event/{rate}"));
            media.push_attribute(format!("fmtp:{pt} 0-16"));
        }
        media.push_attribute("ptime:20");
        media.push_attribute("rtcp-mux");
        media.push_attribute(format!("extmap:1 {AUDIO_LEVEL_URI}"));
        for line in &crypto {
            media.push_attribute(format!("crypto:{}", line.to_value()));
        }
        media.push_attribute(local.direction.attribute());
        let sdp = SessionDescription { session: session_lines(local), media: vec![media] };
        AudioOffer { sdp, policy, crypto }
    }

    /// Reads the peer's answer to this offer.
    pub fn accept(&self, answer: &SessionDescription) -> Result<NegotiatedAudio, NegotiationError> {
        let media = answer
            .media
            .iter()
            .find(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
            .ok_or(NegotiationError::NoAudio)?;
        let codec = choose_codec(media).ok_or(NegotiationError::NoCommonCodec)?;
        let telephone_event = telephone_event(media, codec.clock_rate).map(|(pt, _)| pt);
        let srtp = answered_srtp(media, self.policy, &self.crypto)?;
        let rtcp_mux = media.has_attribute("rtcp-mux");
        let (remote_rtp, remote_rtcp, held) = remote_addresses(media, answer, rtcp_mux)?;
        let answered = Direction::of(media, answer);
        let answered = if held { combine(answered, Direction::SendOnly) } else { answered };
        let local = self.sdp.media.first().map_or(Direction::SendRecv, |m| Direction::of(m, &self.sdp));
        Ok(NegotiatedAudio {
            remote_rtp,
            remote_rtcp,
            rtcp_mux,
            codec,
            telephone_event,
            ptime_ms: ptime(media),
            direction: combine(answered.reversed(), local),
            srtp,
            audio_level_id: audio_level_id(media),
        })
    }
}
