//! Answering an offered video stream: H.264 (RFC 6184 §8.2.2 offer/answer)
//! or VP8 (RFC 7741 §6), whichever the answerer prefers of the two offered.
//!
//! For H.264 we answer with the offerer's payload type and profile, packetization mode 1
//! when offered (FU-A lets a 720p IDR leave in MTU-sized packets) else 0, the
//! lower of the two levels, and our own `max-fs`/`max-mbps` when they exceed
//! that level's. What we may send back is bounded by the offer's level and
//! limits and by our encoder's. `answer()` still refuses video; the bridge opts
//! in with [`answer_with_video`].

use std::net::SocketAddr;

use rand::RngCore;

use super::crypto::CryptoAttribute;
use super::h264::{H264Fmtp, H264Level, ProfileLevelId, RtcpFeedback};
use super::negotiate::{
    answer, answered_stream, choose_crypto, combine, fmtp, offer_crypto, payload_types, remote_addresses, rtpmap,
    srtp_params, Direction, LocalMedia, MediaEncryption, NegotiatedAudio, NegotiationError,
};
use super::{MediaDescription, SessionDescription, SrtpParams};

/// The RTP clock of every video payload format.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// The video codecs Confero encodes and decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoCodec {
    /// H.264 Constrained Baseline: what SIP video endpoints decode, and
    /// browsers too.
    #[default]
    H264,
    /// VP8: for browsers told to avoid H.264 (CMS `compatibilityProfiles`
    /// `chromeWebRtcVideoCodec=avoidH264`), or offering nothing else.
    Vp8,
}

impl VideoCodec {
    /// The `a=rtpmap` encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H264",
            VideoCodec::Vp8 => "VP8",
        }
    }
}

/// Our side of a video stream: where we receive, and what we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalVideo {
    /// Our RTP port for video.
    pub port: u16,
    /// The highest level we decode (and encode).
    pub level: H264Level,
    /// The largest frame we decode, in macroblocks.
    pub max_fs: u32,
    /// The macroblock rate we decode.
    pub max_mbps: u32,
    /// The feedback we honour.
    pub feedback: RtcpFeedback,
    /// What we want: sendrecv normally.
    pub direction: Direction,
    /// The codec answered when the offer has both; the other is taken when
    /// it is the only one offered.
    pub preferred: VideoCodec,
}

impl LocalVideo {
    /// 720p30 (level 3.1: 3600 macroblocks, 108000 a second), PLI, FIR and
    /// REMB; no generic NACK until we keep packets to retransmit.
    pub fn hd720(port: u16) -> LocalVideo {
        LocalVideo {
            port,
            level: H264Level::L3_1,
            max_fs: H264Level::L3_1.max_fs(),
            max_mbps: H264Level::L3_1.max_mbps(),
            feedback: RtcpFeedback { nack: false, pli: true, fir: true, remb: true, tmmbr: true },
            direction: Direction::SendRecv,
            preferred: VideoCodec::H264,
        }
    }
}

/// What the bridge hands the media engine for one video stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedVideo {
    /// H.264 or VP8.
    pub codec: VideoCodec,
    /// The payload type, the offerer's number, both ways.
    pub payload_type: u8,
    /// H.264: 0 (single NAL unit packets) or 1 (STAP-A and FU-A too). VP8: 1.
    pub packetization_mode: u8,
    /// H.264: the profile-level-id in our answer, the offer's profile at the
    /// agreed level. VP8: ours.
    pub profile_level_id: ProfileLevelId,
    /// H.264: the agreed level, the lower of the offer's and ours. VP8: ours.
    pub level: H264Level,
    /// The largest frame we may send, in macroblocks: the peer's limit capped by our encoder's.
    pub max_fs: u32,
    /// The macroblock rate we may send.
    pub max_mbps: u32,
    /// The peer's `max-br`, in kbit/s, if it gave one.
    pub max_br: Option<u32>,
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP.
    pub remote_rtcp: SocketAddr,
    /// RTP and RTCP share one port.
    pub rtcp_mux: bool,
    /// The feedback both sides have: PLI, FIR (then use FIR for keyframes), REMB.
    pub feedback: RtcpFeedback,
    /// The direction from our side.
    pub direction: Direction,
    /// SRTP, when the stream is encrypted.
    pub srtp: Option<SrtpParams>,
}

/// The frame rate Confero sends video at.
const SENT_FPS: u32 = 30;

impl NegotiatedVideo {
    /// The largest 16:9 frame we may send at 30 fps, the rate we send, in
    /// pixels: within `max_fs` (3600 macroblocks: 1280×720) and within
    /// `max_mbps` at 30 frames a second (level 3's 40 500: 1350 macroblocks,
    /// so 768×432, not level 3's largest frame).
    pub fn max_frame_16_9(&self) -> (u32, u32) {
        let macroblocks = self.max_fs.min(self.max_mbps / SENT_FPS);
        // The largest k with 16k × 9k macroblocks inside that.
        let k = ((f64::from(macroblocks) / 144.0).sqrt().floor()) as u32;
        (k * 16 * 16, k * 9 * 16)
    }
}

/// An offered H.264 payload type we can take.
fn h264_payload_types(media: &MediaDescription) -> impl Iterator<Item = (u8, H264Fmtp)> + '_ {
    payload_types(media).filter_map(|pt| {
        let (name, rate, _) = rtpmap(media, pt)?;
        if !name.eq_ignore_ascii_case("H264") || rate != VIDEO_CLOCK_RATE {
            return None;
        }
        let fmtp = match fmtp(media, pt) {
            Some(params) => H264Fmtp::parse(&params)?,
            None => H264Fmtp::default(),
        };
        (fmtp.packetization_mode <= 1 && fmtp.profile_level_id.is_supported()).then_some((pt, fmtp))
    })
}

/// The first offered VP8 payload type, with the frame-size limit of its
/// `max-fs` (macroblocks, RFC 7741 §6.1) if it gives one.
fn vp8_payload_type(media: &MediaDescription) -> Option<(u8, Option<u32>)> {
    payload_types(media).find_map(|pt| {
        let (name, rate, _) = rtpmap(media, pt)?;
        if !name.eq_ignore_ascii_case("VP8") || rate != VIDEO_CLOCK_RATE {
            return None;
        }
        let max_fs = fmtp(media, pt).and_then(|params| {
            params.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("max-fs").then(|| v.trim().parse().ok()).flatten()
            })
        });
        Some((pt, max_fs))
    })
}

/// The offered format we answer: its codec, payload type and H.264 fmtp
/// (VP8's stands in as ours, with its `max-fs`).
fn choose_format(offered: &MediaDescription, local: &LocalVideo) -> Option<(VideoCodec, u8, H264Fmtp)> {
    let h264 = h264_payload_types(offered)
        .find(|(_, f)| f.packetization_mode == 1)
        .or_else(|| h264_payload_types(offered).next())
        .map(|(pt, fmtp)| (VideoCodec::H264, pt, fmtp));
    let vp8 = vp8_payload_type(offered).map(|(pt, max_fs)| {
        let ours = H264Fmtp {
            profile_level_id: ProfileLevelId::CONSTRAINED_BASELINE_3_1.with_level(local.level),
            packetization_mode: 1,
            level_asymmetry_allowed: false,
            max_fs,
            max_mbps: None,
            max_br: None,
        };
        (VideoCodec::Vp8, pt, ours)
    });
    match local.preferred {
        VideoCodec::H264 => h264.or(vp8),
        VideoCodec::Vp8 => vp8.or(h264),
    }
}

/// Answers one offered video section: our section and what was agreed.
/// Errors leave the section to be refused with port 0 (the call goes on
/// with audio).
pub fn answer_video(
    offer: &SessionDescription,
    offered: &MediaDescription,
    local: &LocalVideo,
    policy: MediaEncryption,
    rng: &mut dyn RngCore,
) -> Result<(MediaDescription, NegotiatedVideo), NegotiationError> {
    if offered.port == 0
        || !offered.kind.eq_ignore_ascii_case("video")
        || !offered.proto.to_ascii_uppercase().starts_with("RTP/")
    {
        return Err(NegotiationError::NoVideo);
    }
    let crypto = choose_crypto(offered, policy)?;
    let (codec, payload_type, theirs) = choose_format(offered, local).ok_or(NegotiationError::NoCommonVideoCodec)?;
    let rtcp_mux = offered.has_attribute("rtcp-mux");
    let (remote_rtp, remote_rtcp, held) = remote_addresses(offered, offer, rtcp_mux)?;
    let offered_direction = Direction::of(offered, offer);
    let offered_direction = if held { combine(offered_direction, Direction::SendOnly) } else { offered_direction };
    let direction = combine(offered_direction.reversed(), local.direction);

    // What we send: their level, at most our encoder's.
    let level = theirs.profile_level_id.level().min(local.level);
    let profile_level_id = theirs.profile_level_id.with_level(level);
    // What we receive: with level asymmetry offered (RFC 6184 §8.2.2) our
    // answer's level is our decoder's, whatever theirs; without, both ways
    // use the lower.
    let asymmetric = theirs.level_asymmetry_allowed;
    let receive_level = if asymmetric { local.level } else { level };
    let ours = H264Fmtp {
        profile_level_id: theirs.profile_level_id.with_level(receive_level),
        packetization_mode: theirs.packetization_mode,
        level_asymmetry_allowed: asymmetric,
        // Only above the level's own values do these say anything (RFC 6184 §8.1).
        max_fs: (local.max_fs > receive_level.max_fs()).then_some(local.max_fs),
        max_mbps: (local.max_mbps > receive_level.max_mbps()).then_some(local.max_mbps),
        max_br: None,
    };
    let feedback = RtcpFeedback::of(offered, payload_type).intersect(local.feedback);
    let our_crypto = crypto.as_ref().map(|c| CryptoAttribute::generate(c.tag, c.suite, rng));

    let mut media = MediaDescription {
        kind: "video".into(),
        port: local.port,
        port_count: None,
        proto: offered.proto.clone(),
        formats: vec![payload_type.to_string()],
        lines: Vec::new(),
    };
    media.push_attribute(format!("rtpmap:{payload_type} {}/{VIDEO_CLOCK_RATE}", codec.encoding_name()));
    if codec == VideoCodec::H264 {
        media.push_attribute(format!("fmtp:{payload_type} {}", ours.to_value()));
    }
    for value in feedback.attribute_values(payload_type) {
        media.push_attribute(value);
    }
    if rtcp_mux {
        media.push_attribute("rtcp-mux");
    }
    if let Some(line) = &our_crypto {
        media.push_attribute(format!("crypto:{}", line.to_value()));
    }
    media.push_attribute(direction.attribute());

    let negotiated = NegotiatedVideo {
        codec,
        payload_type,
        packetization_mode: theirs.packetization_mode,
        profile_level_id,
        level,
        max_fs: match codec {
            VideoCodec::H264 => theirs.frame_size_limit(),
            // VP8's max-fs is the whole limit, not a raise on a level's.
            VideoCodec::Vp8 => theirs.max_fs.unwrap_or(u32::MAX),
        }
        .min(local.max_fs),
        max_mbps: theirs.macroblock_rate_limit().min(local.max_mbps),
        max_br: theirs.max_br,
        remote_rtp,
        remote_rtcp,
        rtcp_mux,
        feedback,
        direction,
        srtp: srtp_params(crypto, our_crypto.as_ref()),
    };
    Ok((media, negotiated))
}

/// [`answer`] plus the first offered video section answered with H.264
/// (`None` and port 0 when it cannot be: the call goes on with audio). The
/// audio rules, and their errors, are exactly `answer`'s.
pub fn answer_with_video(
    offer: &SessionDescription,
    local: &LocalMedia,
    video: &LocalVideo,
    policy: MediaEncryption,
    rng: &mut dyn RngCore,
) -> Result<(SessionDescription, NegotiatedAudio, Option<NegotiatedVideo>), NegotiationError> {
    let (mut sdp, audio) = answer(offer, local, policy, rng)?;
    let index = offer.media.iter().position(|m| m.kind.eq_ignore_ascii_case("video") && m.port != 0);
    let Some(index) = index else { return Ok((sdp, audio, None)) };
    let (Some(offered), Some(slot)) = (offer.media.get(index), sdp.media.get_mut(index)) else {
        return Ok((sdp, audio, None));
    };
    match answer_video(offer, offered, video, policy, rng) {
        Ok((section, negotiated)) => {
            *slot = section;
            Ok((sdp, audio, Some(negotiated)))
        }
        Err(_) => Ok((sdp, audio, None)),
    }
}

/// The payload types our H.264 offer uses (an answer to someone else's
/// offer keeps the offerer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoPayloadTypes {
    /// Packetization mode 1 (offered first).
    pub mode_1: u8,
    /// Packetization mode 0.
    pub mode_0: u8,
}

impl VideoPayloadTypes {
    /// Ours: 97 and 96.
    pub const DEFAULT: VideoPayloadTypes = VideoPayloadTypes { mode_1: 97, mode_0: 96 };
    /// CMS's `compatibilityProfiles` `sipMediaPayloadTypeMode=broadsoft`:
    /// "the H.264 video codec is advertised with payload type 109" (our
    /// main, mode 1, H.264; mode 0 keeps 96).
    pub const BROADSOFT: VideoPayloadTypes = VideoPayloadTypes { mode_1: 109, mode_0: 96 };
}

/// Our H.264 offer for a call we make (dial-out): the same video section a
/// CMS sends, added to the audio offer, and what the answer agreed.
#[derive(Debug, Clone)]
pub struct VideoOffer {
    local: LocalVideo,
    policy: MediaEncryption,
    crypto: Vec<CryptoAttribute>,
    payload_types: VideoPayloadTypes,
}

impl VideoOffer {
    /// Appends our video section to `offer` (the audio offer's description,
    /// whose transport profile it copies): constrained baseline at our level
    /// in modes 1 and 0 with these payload types, our feedback, rtcp-mux,
    /// and under `policy` SDES crypto lines of its own.
    pub fn add_to(
        offer: &mut SessionDescription,
        local: &LocalVideo,
        payload_types: VideoPayloadTypes,
        policy: MediaEncryption,
        rng: &mut dyn RngCore,
    ) -> VideoOffer {
        let crypto = offer_crypto(policy, rng);
        let proto = offer.media.first().map_or_else(|| "RTP/AVP".to_string(), |m| m.proto.clone());
        let mut media = MediaDescription {
            kind: "video".into(),
            port: local.port,
            port_count: None,
            proto,
            formats: vec![payload_types.mode_1.to_string(), payload_types.mode_0.to_string()],
            lines: Vec::new(),
        };
        let profile_level_id = ProfileLevelId::CONSTRAINED_BASELINE_3_1.with_level(local.level);
        for (pt, mode) in [(payload_types.mode_1, 1), (payload_types.mode_0, 0)] {
            // Level asymmetry: an answerer may say what it can receive
            // above our level; we still send at most our encoder's.
            let fmtp = H264Fmtp {
                profile_level_id,
                packetization_mode: mode,
                level_asymmetry_allowed: true,
                max_fs: (local.max_fs > local.level.max_fs()).then_some(local.max_fs),
                max_mbps: (local.max_mbps > local.level.max_mbps()).then_some(local.max_mbps),
                max_br: None,
            };
            media.push_attribute(format!("rtpmap:{pt} H264/{VIDEO_CLOCK_RATE}"));
            media.push_attribute(format!("fmtp:{pt} {}", fmtp.to_value()));
            for value in local.feedback.attribute_values(pt) {
                media.push_attribute(value);
            }
        }
        media.push_attribute("rtcp-mux");
        for line in &crypto {
            media.push_attribute(format!("crypto:{}", line.to_value()));
        }
        media.push_attribute(local.direction.attribute());
        offer.media.push(media);
        VideoOffer { local: *local, policy, crypto, payload_types }
    }

    /// Reads the answer's video section: `None` when video was refused
    /// (port 0, no section, nothing we offered, keys we cannot use) — the
    /// call goes on with audio.
    pub fn accept(&self, answer: &SessionDescription) -> Option<NegotiatedVideo> {
        let media = answer.media.iter().find(|m| m.kind.eq_ignore_ascii_case("video") && m.port != 0)?;
        let ours = self.payload_types;
        let payload_type = payload_types(media).find(|&pt| pt == ours.mode_1 || pt == ours.mode_0)?;
        let (name, rate, _) = rtpmap(media, payload_type)?;
        if !name.eq_ignore_ascii_case("H264") || rate != VIDEO_CLOCK_RATE {
            return None;
        }
        let theirs = match fmtp(media, payload_type) {
            Some(params) => H264Fmtp::parse(&params)?,
            None => H264Fmtp::default(),
        };
        let packetization_mode = if payload_type == ours.mode_1 { 1 } else { 0 };
        let stream = answered_stream(media, answer, self.policy, &self.crypto, self.local.direction)?;
        let level = theirs.profile_level_id.level().min(self.local.level);
        Some(NegotiatedVideo {
            codec: VideoCodec::H264,
            payload_type,
            packetization_mode,
            profile_level_id: theirs.profile_level_id.with_level(level),
            level,
            max_fs: theirs.frame_size_limit().min(self.local.max_fs),
            max_mbps: theirs.macroblock_rate_limit().min(self.local.max_mbps),
            max_br: theirs.max_br,
            remote_rtp: stream.remote_rtp,
            remote_rtcp: stream.remote_rtcp,
            rtcp_mux: stream.rtcp_mux,
            feedback: RtcpFeedback::of(media, payload_type).intersect(self.local.feedback),
            direction: stream.direction,
            srtp: stream.srtp,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn local() -> LocalMedia {
        LocalMedia {
            address: Ipv4Addr::LOCALHOST.into(),
            audio_port: 40000,
            session_id: 42,
            session_version: 1,
            direction: Direction::SendRecv,
        }
    }

    fn offer(video: &str) -> SessionDescription {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
             m=audio 5000 RTP/AVP 0\r\n{video}"
        );
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    /// A webrtc-style offer: mode 1 and mode 0 at two levels, feedback, mux, SDES.
    const TWO_MODES: &str = "m=video 5002 RTP/SAVP 98 97 99\r\n\
        a=rtpmap:98 VP8/90000\r\n\
        a=rtpmap:97 H264/90000\r\n\
        a=fmtp:97 profile-level-id=42e01f;packetization-mode=0\r\n\
        a=rtpmap:99 H264/90000\r\n\
        a=fmtp:99 profile-level-id=640028;packetization-mode=1;max-br=4000\r\n\
        a=rtcp-fb:* ccm fir\r\n\
        a=rtcp-fb:* ccm tmmbr\r\n\
        a=rtcp-fb:99 nack\r\n\
        a=rtcp-fb:99 nack pli\r\n\
        a=rtcp-fb:99 goog-remb\r\n\
        a=rtcp-mux\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
        a=sendrecv\r\n";

    #[test]
    fn packetization_mode_1_is_preferred_and_the_level_is_the_lower() {
        let sdp = offer(TWO_MODES);
        let mut rng = StdRng::seed_from_u64(1);
        let (media, video) =
            answer_video(&sdp, &sdp.media[1], &LocalVideo::hd720(40002), MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!(video.payload_type, 99);
        assert_eq!(video.packetization_mode, 1);
        assert_eq!(video.level, H264Level::L3_1);
        assert_eq!(video.profile_level_id.to_hex(), "64001f", "their profile, our level");
        // Level 4 allows 8192 macroblocks; our encoder stops at 720p.
        assert_eq!((video.max_fs, video.max_mbps, video.max_br), (3600, 108_000, Some(4000)));
        assert_eq!(video.max_frame_16_9(), (1280, 720));
        assert_eq!(video.feedback, RtcpFeedback { nack: false, pli: true, fir: true, remb: true, tmmbr: true });
        assert_eq!(video.remote_rtp, "192.0.2.7:5002".parse().unwrap());
        assert!(video.rtcp_mux);
        assert!(video.srtp.is_some());
        let text = SessionDescription { session: vec![], media: vec![media] }.to_text();
        assert!(text.starts_with("m=video 40002 RTP/SAVP 99\r\n"), "{text}");
        for line in [
            "a=rtpmap:99 H264/90000",
            "a=fmtp:99 profile-level-id=64001f;packetization-mode=1",
            "a=rtcp-fb:99 nack pli",
            "a=rtcp-fb:99 ccm fir",
            "a=rtcp-fb:99 ccm tmmbr",
            "a=rtcp-fb:99 goog-remb",
            "a=rtcp-mux",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:",
            "a=sendrecv",
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
        assert!(!text.contains("rtcp-fb:99 nack\r\n"), "no retransmissions yet");
    }

    #[test]
    fn mode_0_when_alone_and_our_limits_above_a_lower_level() {
        let sdp = offer(
            "m=video 5002 RTP/AVP 100\r\na=rtpmap:100 H264/90000\r\n\
             a=fmtp:100 packetization-mode=0;profile-level-id=42801e\r\n",
        );
        let mut rng = StdRng::seed_from_u64(1);
        let (media, video) =
            answer_video(&sdp, &sdp.media[1], &LocalVideo::hd720(40002), MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!((video.packetization_mode, video.level), (0, H264Level::L3));
        assert_eq!((video.max_fs, video.max_mbps), (1620, 40_500));
        // At our 30 fps level 3 takes 1350 macroblocks a frame: 768x432.
        assert_eq!(video.max_frame_16_9(), (768, 432));
        assert_eq!(video.feedback, RtcpFeedback::default());
        assert_eq!(video.remote_rtcp, "192.0.2.7:5003".parse().unwrap());
        assert!(video.srtp.is_none());
        // We can take 720p even though the agreed level is 3.
        let fmtp = media.attribute_values("fmtp").next().unwrap();
        assert_eq!(fmtp, "100 profile-level-id=42801e;packetization-mode=0;max-fs=3600;max-mbps=108000");
    }

    /// RFC 6184 §8.2.2: with `level-asymmetry-allowed=1` the answer's level
    /// says what we receive (ours, 3.1), while we send at the offerer's 1.3;
    /// without it both ways use the lower.
    #[test]
    fn level_asymmetry_lets_each_side_receive_at_its_own_level() {
        let mut rng = StdRng::seed_from_u64(1);
        let local = LocalVideo::hd720(40002);
        let asymmetric = offer(
            "m=video 5002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n\
             a=fmtp:97 profile-level-id=42e00d;packetization-mode=1;level-asymmetry-allowed=1\r\n",
        );
        let (media, video) =
            answer_video(&asymmetric, &asymmetric.media[1], &local, MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!(video.level, H264Level::L1_3, "we send at most their level");
        assert_eq!((video.max_fs, video.max_mbps), (H264Level::L1_3.max_fs(), H264Level::L1_3.max_mbps()));
        let fmtp = media.attribute_values("fmtp").next().unwrap();
        assert_eq!(fmtp, "97 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1");

        let symmetric =
            offer("m=video 5002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42e00d;packetization-mode=1\r\n");
        let (media, video) =
            answer_video(&symmetric, &symmetric.media[1], &local, MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!(video.level, H264Level::L1_3);
        let fmtp = media.attribute_values("fmtp").next().unwrap();
        assert!(fmtp.starts_with("97 profile-level-id=42e00d;packetization-mode=1;max-fs=3600"), "{fmtp}");
    }

    #[test]
    fn what_we_cannot_take_is_refused() {
        let mut rng = StdRng::seed_from_u64(1);
        let local = LocalVideo::hd720(40002);
        for (video, error) in [
            ("m=video 5002 RTP/AVP 96\r\na=rtpmap:96 VP9/90000\r\n", NegotiationError::NoCommonVideoCodec),
            (
                "m=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=2\r\n",
                NegotiationError::NoCommonVideoCodec,
            ),
            (
                "m=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=f4001f\r\n",
                NegotiationError::NoCommonVideoCodec,
            ),
            ("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", NegotiationError::NoVideo),
            ("m=video 5002 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n", NegotiationError::NoCryptoSuite),
        ] {
            let sdp = offer(video);
            let result = answer_video(&sdp, &sdp.media[1], &local, MediaEncryption::Optional, &mut rng);
            assert_eq!(result.err(), Some(error), "{video}");
        }
        let sdp = offer("m=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n");
        let result = answer_video(&sdp, &sdp.media[1], &local, MediaEncryption::Required, &mut rng);
        assert_eq!(result.err(), Some(NegotiationError::EncryptionRequired));
        // No fmtp at all: Baseline level 1, mode 0.
        let (_, video) = answer_video(&sdp, &sdp.media[1], &local, MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!((video.level, video.packetization_mode, video.max_fs), (H264Level::L1, 0, 99));
    }

    /// VP8 offered alone is answered; with H.264 too, the local preference
    /// picks; a VP8 `max-fs` below ours bounds what we send.
    #[test]
    fn vp8_is_answered_alone_or_when_preferred() {
        let mut rng = StdRng::seed_from_u64(1);
        let sdp = offer(
            "m=video 5002 RTP/AVP 100\r\na=rtpmap:100 VP8/90000\r\na=fmtp:100 max-fs=920\r\n\
                         a=rtcp-fb:100 nack pli\r\n",
        );
        let (media, video) =
            answer_video(&sdp, &sdp.media[1], &LocalVideo::hd720(40002), MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!((video.codec, video.payload_type, video.max_fs), (VideoCodec::Vp8, 100, 920));
        assert_eq!(video.max_frame_16_9(), (512, 288), "the largest 16:9 in 920 macroblocks");
        assert!(video.feedback.pli);
        let text = SessionDescription { session: vec![], media: vec![media] }.to_text();
        assert!(text.starts_with("m=video 40002 RTP/AVP 100\r\na=rtpmap:100 VP8/90000\r\n"), "{text}");
        assert!(!text.contains("fmtp"), "{text}");

        let sdp = offer(TWO_MODES);
        let local = LocalVideo { preferred: VideoCodec::Vp8, ..LocalVideo::hd720(40002) };
        let (_, video) = answer_video(&sdp, &sdp.media[1], &local, MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!((video.codec, video.payload_type), (VideoCodec::Vp8, 98));
    }

    #[test]
    fn answer_with_video_fills_the_video_section_and_answer_still_refuses_it() {
        let sdp = offer(TWO_MODES);
        let local_video = LocalVideo::hd720(40002);
        let (plain, _) = answer(&sdp, &local(), MediaEncryption::Optional, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(plain.media[1].port, 0);
        let (with_video, audio, video) =
            answer_with_video(&sdp, &local(), &local_video, MediaEncryption::Optional, &mut StdRng::seed_from_u64(1))
                .unwrap();
        assert_eq!(with_video.media[0], plain.media[0]);
        assert_eq!(audio.codec.payload_type, 0);
        assert_eq!(with_video.media[1].port, 40002);
        assert_eq!(video.map(|v| v.payload_type), Some(99));
        // A video section we cannot take stays refused, and the call goes on.
        let sdp = offer("m=video 5002 RTP/AVP 96\r\na=rtpmap:96 VP9/90000\r\n");
        let (answered, _, video) =
            answer_with_video(&sdp, &local(), &local_video, MediaEncryption::Optional, &mut StdRng::seed_from_u64(1))
                .unwrap();
        assert_eq!((answered.media[1].port, video), (0, None));
    }

    #[test]
    fn our_video_offer_is_answered_by_our_own_answer_and_read_back() {
        let mut rng = StdRng::seed_from_u64(7);
        let local_video = LocalVideo::hd720(40002);
        for policy in [MediaEncryption::Optional, MediaEncryption::Required, MediaEncryption::Prohibited] {
            let offer = crate::AudioOffer::new(&local(), policy, &mut rng);
            let mut sdp = offer.sdp.clone();
            let pts = VideoPayloadTypes::DEFAULT;
            let video_offer = VideoOffer::add_to(&mut sdp, &local_video, pts, policy, &mut rng);
            let text = sdp.to_text();
            assert!(text.contains("m=video 40002"), "{text}");
            assert!(text.contains("a=fmtp:97 profile-level-id=42e01f;packetization-mode=1"), "{text}");
            assert!(text.contains("a=rtcp-fb:97 nack pli"), "{text}");
            // The far end (here: our own answerer) takes mode 1.
            let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
            let (answer, _, answered) = answer_with_video(&parsed, &local(), &local_video, policy, &mut rng).unwrap();
            assert_eq!(answered.map(|v| v.payload_type), Some(97));
            let answer = SessionDescription::parse(answer.to_text().as_bytes()).unwrap();
            let video = video_offer.accept(&answer).expect("video agreed");
            assert_eq!((video.payload_type, video.packetization_mode, video.level), (97, 1, H264Level::L3_1));
            assert_eq!(video.max_frame_16_9(), (1280, 720));
            assert!(video.feedback.pli);
            assert_eq!(video.srtp.is_some(), policy != MediaEncryption::Prohibited, "{policy:?}");
        }
    }

    /// `sipMediaPayloadTypeMode=broadsoft`: our H.264 goes as payload type
    /// 109, and an answer keeping it is read as mode 1.
    #[test]
    fn the_broadsoft_mode_offers_h264_as_payload_type_109() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut sdp = crate::AudioOffer::new(&local(), MediaEncryption::Optional, &mut rng).sdp;
        let local_video = LocalVideo::hd720(40002);
        let pts = VideoPayloadTypes::BROADSOFT;
        let video_offer = VideoOffer::add_to(&mut sdp, &local_video, pts, MediaEncryption::Optional, &mut rng);
        let text = sdp.to_text();
        assert!(text.contains("m=video 40002 RTP/AVP 109 96\r\na=rtpmap:109 H264/90000\r\n"), "{text}");
        assert!(text.contains("a=fmtp:109 profile-level-id=42e01f;packetization-mode=1"), "{text}");
        let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
        let (answer, _, answered) =
            answer_with_video(&parsed, &local(), &local_video, MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!(answered.map(|v| v.payload_type), Some(109));
        let video = video_offer.accept(&answer).expect("video agreed");
        assert_eq!((video.payload_type, video.packetization_mode), (109, 1));
    }

    #[test]
    fn a_refused_or_foreign_video_answer_leaves_the_call_audio_only() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut sdp = crate::AudioOffer::new(&local(), MediaEncryption::Optional, &mut rng).sdp;
        let (local_video, pts) = (LocalVideo::hd720(40002), VideoPayloadTypes::DEFAULT);
        let video_offer = VideoOffer::add_to(&mut sdp, &local_video, pts, MediaEncryption::Optional, &mut rng);
        let answer = |video: &str| {
            SessionDescription::parse(
                format!(
                    "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
                     m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n{video}"
                )
                .as_bytes(),
            )
            .unwrap()
        };
        assert!(video_offer.accept(&answer("m=video 0 RTP/AVP 97\r\n")).is_none());
        assert!(video_offer.accept(&answer("")).is_none());
        // A payload type we did not offer.
        let foreign = "m=video 6002 RTP/AVP 100\r\na=rtpmap:100 VP8/90000\r\n";
        assert!(video_offer.accept(&answer(foreign)).is_none());
        // Mode 0, plain, the far end's lower level.
        let mode_0 = "m=video 6002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                      a=fmtp:96 profile-level-id=42e01e;packetization-mode=0\r\na=sendrecv\r\n";
        let video = video_offer.accept(&answer(mode_0)).unwrap();
        assert_eq!((video.payload_type, video.packetization_mode, video.level), (96, 0, H264Level::L3));
        assert_eq!(video.remote_rtp, "192.0.2.9:6002".parse().unwrap());
        assert!(video.srtp.is_none());
    }
}
