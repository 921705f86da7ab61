//! A browser's offer answered (JSEP, RFC 8829) by an ICE-lite bridge: one
//! bundled transport (RFC 8843) with rtcp-mux for the audio and the video
//! section, ICE credentials and one host candidate, our DTLS fingerprint
//! with `a=setup:passive` (the browser, `actpass`, becomes the DTLS client).
//!
//! The codec choices are exactly SIP's ([`crate::answer_with_video`]): the
//! offer is read through a plain-RTP view of itself (no DTLS protocol, no
//! placeholder `c=0.0.0.0` that would read as hold), answered, and the
//! answer is dressed with what JSEP needs.

use std::net::IpAddr;

use rand::RngCore;

use super::negotiate::{answer, LocalMedia, MediaEncryption, NegotiatedAudio, NegotiationError};
use super::video::{answer_video, LocalVideo, NegotiatedVideo, VideoCodec};
use super::{connection_value, Line, MediaDescription, SessionDescription};

/// Our side of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBundle {
    /// The media worker's address: our one ICE host candidate.
    pub address: IpAddr,
    /// Its port.
    pub port: u16,
    /// The o= session id.
    pub session_id: u64,
    /// Our `a=ice-ufrag`.
    pub ice_ufrag: String,
    /// Our `a=ice-pwd`.
    pub ice_pwd: String,
    /// Our DTLS certificate's `a=fingerprint` value (`sha-256 AB:...`).
    pub fingerprint: String,
    /// The SSRC we send audio with.
    pub audio_ssrc: u32,
    /// The SSRC we send video with.
    pub video_ssrc: u32,
    /// Our RTCP CNAME.
    pub cname: String,
    /// Whether to take video at all.
    pub video: bool,
    /// The video codec answered when the browser offers both H.264 and VP8
    /// (VP8 under CMS's `chromeWebRtcVideoCodec=avoidH264`).
    pub video_codec: VideoCodec,
}

/// What the offer and our answer agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedBundle {
    /// The audio stream (its addresses are meaningless: ICE finds them).
    pub audio: NegotiatedAudio,
    /// The video stream, when H.264 or VP8 was offered and video is on.
    pub video: Option<NegotiatedVideo>,
    /// The browser's `a=ice-ufrag`.
    pub remote_ufrag: String,
    /// The browser's `a=fingerprint` value.
    pub remote_fingerprint: String,
    /// We are the DTLS client (the browser offered `passive`).
    pub dtls_active: bool,
    /// The browser's audio SSRCs (`a=ssrc`).
    pub audio_ssrcs: Vec<u32>,
    /// The browser's video SSRCs (with RTX's).
    pub video_ssrcs: Vec<u32>,
    /// Every payload type of the offered video section: RTP with these is
    /// video, everything else on the bundle is audio.
    pub video_payload_types: Vec<u8>,
}

/// Why a browser's offer cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsepError {
    /// No `a=ice-ufrag`/`a=ice-pwd`.
    #[error("offer has no ICE credentials")]
    NoIce,
    /// No `a=fingerprint` with SHA-256.
    #[error("offer has no DTLS fingerprint")]
    NoFingerprint,
    /// The audio could not be negotiated (no Opus, G.722 or G.711).
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
}

/// A media- or session-level attribute, media first (JSEP puts them in
/// every section; older offers at session level).
fn attribute<'a>(offer: &'a SessionDescription, media: &'a MediaDescription, name: &'a str) -> Option<&'a str> {
    media.attribute_values(name).next().or_else(|| offer.session_attribute(name))
}

/// The plain-RTP view of a browser's offer that the SIP answerer reads.
fn plain_view(offer: &SessionDescription, address: IpAddr) -> SessionDescription {
    let connection = Line { kind: 'c', value: connection_value(address) };
    let mut view = offer.clone();
    for line in view.session.iter_mut().filter(|l| l.kind == 'c') {
        *line = connection.clone();
    }
    if !view.session.iter().any(|l| l.kind == 'c') {
        view.session.push(connection.clone());
    }
    for media in &mut view.media {
        media.proto = "RTP/AVPF".into();
        media.lines.retain(|l| !(l.kind == 'a' && l.value.to_ascii_lowercase().starts_with("crypto:")));
        for line in media.lines.iter_mut().filter(|l| l.kind == 'c') {
            *line = connection.clone();
        }
    }
    view
}

fn ssrcs(media: &MediaDescription) -> Vec<u32> {
    let mut out: Vec<u32> =
        media.attribute_values("ssrc").filter_map(|v| v.split_whitespace().next()?.parse().ok()).collect();
    out.dedup();
    out
}

/// Answers a browser's offer. The first audio section and (with
/// `local.video`) the first video section are accepted and bundled; every
/// other section is refused with port 0.
pub fn answer_bundle(
    offer: &SessionDescription,
    local: &LocalBundle,
    rng: &mut dyn RngCore,
) -> Result<(SessionDescription, NegotiatedBundle), JsepError> {
    let first_audio = offer.media.iter().position(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0);
    let reference = first_audio.and_then(|i| offer.media.get(i)).ok_or(NegotiationError::NoAudio)?;
    let remote_ufrag = attribute(offer, reference, "ice-ufrag").ok_or(JsepError::NoIce)?.trim().to_string();
    attribute(offer, reference, "ice-pwd").ok_or(JsepError::NoIce)?;
    let remote_fingerprint = offer
        .media
        .iter()
        .flat_map(|m| m.attribute_values("fingerprint"))
        .chain(offer.session_attribute("fingerprint"))
        .find(|f| f.trim().to_ascii_lowercase().starts_with("sha-256 "))
        .ok_or(JsepError::NoFingerprint)?
        .trim()
        .to_string();
    let setup = attribute(offer, reference, "setup").unwrap_or("actpass").trim().to_ascii_lowercase();
    let dtls_active = setup == "passive";

    let view = plain_view(offer, local.address);
    let media = LocalMedia {
        address: local.address,
        audio_port: local.port,
        session_id: local.session_id,
        session_version: 1,
        direction: super::Direction::SendRecv,
    };
    let (mut sdp, audio) = answer(&view, &media, MediaEncryption::Optional, rng)?;
    let mut video = None;
    let mut video_index = None;
    if local.video {
        if let Some(index) = view.media.iter().position(|m| m.kind.eq_ignore_ascii_case("video") && m.port != 0) {
            // Browsers ask for lost packets by NACK, and we keep what we
            // send them to answer.
            let mut ours = LocalVideo::hd720(local.port);
            ours.feedback.nack = true;
            ours.preferred = local.video_codec;
            if let Ok((section, negotiated)) =
                answer_video(&view, &view.media[index], &ours, MediaEncryption::Optional, rng)
            {
                sdp.media[index] = section;
                video = Some(negotiated);
                video_index = Some(index);
            }
        }
    }
    let audio_index = sdp.media.iter().position(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0);
    // Browsers' Opus: in-band FEC (already asked for) and DTX, which the
    // mixer takes as silence rather than loss: a quiet browser then sends a
    // packet every 400 ms instead of fifty a second.
    if let (Some(i), super::AudioCodec::Opus) = (audio_index, audio.codec.codec) {
        let fmtp = format!("fmtp:{} ", audio.codec.payload_type);
        for line in sdp.media[i].lines.iter_mut().filter(|l| l.kind == 'a' && l.value.starts_with(&fmtp)) {
            line.value.push_str(";usedtx=1");
        }
    }

    let mut bundled = Vec::new();
    for (i, section) in sdp.media.iter_mut().enumerate() {
        let offered = &offer.media[i];
        section.proto = offered.proto.clone();
        let mid = offered.attribute_values("mid").next().map(|m| m.trim().to_string());
        let accepted = Some(i) == audio_index || Some(i) == video_index;
        if !accepted {
            if let Some(mid) = mid {
                section.push_attribute(format!("mid:{mid}"));
            }
            continue;
        }
        section.port = local.port;
        section.lines.retain(|l| l.kind != 'c');
        let mut lines = Vec::new();
        if let Some(mid) = &mid {
            lines.push(format!("mid:{mid}"));
            bundled.push(mid.clone());
        }
        lines.push(format!("ice-ufrag:{}", local.ice_ufrag));
        lines.push(format!("ice-pwd:{}", local.ice_pwd));
        lines.push(format!("fingerprint:{}", local.fingerprint));
        lines.push(format!("setup:{}", if dtls_active { "active" } else { "passive" }));
        if offered.has_attribute("rtcp-rsize") {
            lines.push("rtcp-rsize".into());
        }
        if !section.has_attribute("rtcp-mux") {
            lines.push("rtcp-mux".into());
        }
        lines.push(format!("candidate:1 1 udp 2130706431 {} {} typ host generation 0", local.address, local.port));
        lines.push("end-of-candidates".into());
        let (ssrc, track) =
            if Some(i) == video_index { (local.video_ssrc, "video") } else { (local.audio_ssrc, "audio") };
        lines.push(format!("msid:confero confero-{track}"));
        lines.push(format!("ssrc:{ssrc} cname:{}", local.cname));
        lines.push(format!("ssrc:{ssrc} msid:confero confero-{track}"));
        for value in lines {
            section.push_attribute(value);
        }
    }
    sdp.session.retain(|l| l.kind != 'c');
    // c= in each accepted section, as JSEP writes it.
    for (i, section) in sdp.media.iter_mut().enumerate() {
        let address =
            if Some(i) == audio_index || Some(i) == video_index { local.address } else { IpAddr::from([0, 0, 0, 0]) };
        section.lines.insert(0, Line { kind: 'c', value: connection_value(address) });
    }
    sdp.session.push(Line { kind: 'a', value: "ice-lite".into() });
    if !bundled.is_empty() {
        sdp.session.push(Line { kind: 'a', value: format!("group:BUNDLE {}", bundled.join(" ")) });
    }
    sdp.session.push(Line { kind: 'a', value: "msid-semantic: WMS confero".into() });

    let video_section = video_index.map(|i| &offer.media[i]);
    let negotiated = NegotiatedBundle {
        audio,
        remote_ufrag,
        remote_fingerprint,
        dtls_active,
        audio_ssrcs: audio_index.map(|i| ssrcs(&offer.media[i])).unwrap_or_default(),
        video_ssrcs: video_section.map(ssrcs).unwrap_or_default(),
        video_payload_types: video_section
            .map(|m| m.formats.iter().filter_map(|f| f.parse().ok()).collect())
            .unwrap_or_default(),
        video,
    };
    Ok((sdp, negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Chromium 156's offer for one microphone and one camera (trimmed of
    /// the codecs we never pick).
    const CHROME_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host generation 0\r\n\
a=ice-ufrag:Ab12\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\n\
a=msid:stream track-a\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\na=ssrc:1001 cname:x\r\na=ssrc:1001 msid:stream track-a\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Ab12\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendrecv\r\na=msid:stream track-v\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 goog-remb\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\na=rtcp-fb:102 ccm fir\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\na=ssrc-group:FID 2001 2002\r\n\
a=ssrc:2001 cname:x\r\na=ssrc:2002 cname:x\r\n";

    fn local() -> LocalBundle {
        LocalBundle {
            address: "127.0.0.1".parse().unwrap(),
            port: 40000,
            session_id: 7,
            ice_ufrag: "ourufrag".into(),
            ice_pwd: "ourpasswordourpassword12".into(),
            fingerprint: "sha-256 AA:BB".into(),
            audio_ssrc: 11,
            video_ssrc: 22,
            cname: "confero".into(),
            video: true,
            video_codec: VideoCodec::H264,
        }
    }

    #[test]
    fn chrome_offer_gets_a_bundled_ice_lite_answer() {
        let offer = SessionDescription::parse(CHROME_OFFER.as_bytes()).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (answer, agreed) = answer_bundle(&offer, &local(), &mut rng).unwrap();
        let text = answer.to_text();
        assert!(text.contains("a=ice-lite\r\n"), "{text}");
        assert!(text.contains("a=group:BUNDLE 0 1\r\n"), "{text}");
        assert!(text.contains("m=audio 40000 UDP/TLS/RTP/SAVPF 111 110"), "{text}");
        assert!(text.contains("m=video 40000 UDP/TLS/RTP/SAVPF 102"), "{text}");
        assert!(text.contains("a=setup:passive"), "{text}");
        assert!(text.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"), "{text}");
        assert!(!text.contains("a=crypto"), "{text}");
        assert!(text.contains("a=fmtp:111 useinbandfec=1;usedtx=1\r\n"), "{text}");
        assert!(text.contains("a=rtcp-fb:102 nack\r\n"), "{text}");
        assert_eq!(agreed.remote_ufrag, "Ab12");
        assert!(!agreed.dtls_active);
        assert!(agreed.remote_fingerprint.starts_with("sha-256 0F:74"));
        assert_eq!(agreed.audio_ssrcs, vec![1001]);
        assert_eq!(agreed.video_ssrcs, vec![2001, 2002]);
        assert_eq!(agreed.video_payload_types, vec![96, 97, 102, 103]);
        let video = agreed.video.expect("H.264 agreed");
        assert_eq!((video.payload_type, video.packetization_mode), (102, 1));
        assert_eq!(agreed.audio.telephone_event, Some(110));
        assert!(agreed.audio.srtp.is_none());
        // The answer parses back.
        SessionDescription::parse(text.as_bytes()).unwrap();
    }

    /// CMS's `avoidH264`: Chrome's offer answered with its VP8, with the
    /// feedback it offered for it; without the preference, H.264 as before;
    /// with it but no VP8 offered, H.264 still.
    #[test]
    fn a_browser_is_answered_vp8_when_h264_is_to_be_avoided() {
        let offer = SessionDescription::parse(CHROME_OFFER.as_bytes()).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let vp8 = LocalBundle { video_codec: VideoCodec::Vp8, ..local() };
        let (answer, agreed) = answer_bundle(&offer, &vp8, &mut rng).unwrap();
        let text = answer.to_text();
        assert!(text.contains("m=video 40000 UDP/TLS/RTP/SAVPF 96\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\n"), "{text}");
        assert!(!text.contains("H264") && !text.contains("a=fmtp:96"), "{text}");
        let video = agreed.video.expect("VP8 agreed");
        assert_eq!((video.codec, video.payload_type), (VideoCodec::Vp8, 96));
        assert_eq!(video.max_frame_16_9(), (1280, 720));

        let no_vp8 = CHROME_OFFER.replace("96 97 102 103", "102 103").replace("a=rtpmap:96 VP8/90000\r\n", "");
        let offer = SessionDescription::parse(no_vp8.as_bytes()).unwrap();
        let (_, agreed) = answer_bundle(&offer, &vp8, &mut rng).unwrap();
        assert_eq!(agreed.video.map(|v| (v.codec, v.payload_type)), Some((VideoCodec::H264, 102)));

        let no_h264: String = CHROME_OFFER
            .replace("96 97 102 103", "96 97")
            .lines()
            .filter(|l| !l.contains(":102") && !l.contains(":103"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let offer = SessionDescription::parse(no_h264.as_bytes()).unwrap();
        let (_, agreed) = answer_bundle(&offer, &local(), &mut rng).unwrap();
        assert_eq!(agreed.video.map(|v| (v.codec, v.payload_type)), Some((VideoCodec::Vp8, 96)), "VP8 alone is taken");
    }

    #[test]
    fn an_offer_without_ice_or_fingerprint_is_refused() {
        let no_ice = CHROME_OFFER.replace("a=ice-ufrag:Ab12\r\n", "");
        let offer = SessionDescription::parse(no_ice.as_bytes()).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(answer_bundle(&offer, &local(), &mut rng).unwrap_err(), JsepError::NoIce);
        let no_fp: String =
            CHROME_OFFER.lines().filter(|l| !l.starts_with("a=fingerprint")).map(|l| format!("{l}\n")).collect();
        let offer = SessionDescription::parse(no_fp.as_bytes()).unwrap();
        assert_eq!(answer_bundle(&offer, &local(), &mut rng).unwrap_err(), JsepError::NoFingerprint);
    }
}
