use super::crypto::CryptoAttribute;
use super::negotiate::NegotiationError;
use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::{Ipv4Addr, SocketAddr};

/// An offer as baresip 1.0 sends it with `mediaenc=srtp-mand`, Opus, G.711 and video.
pub(crate) const BARESIP_OFFER: &str = "v=0\r
o=- 1288306926 3478149011 IN IP4 127.0.0.1\r
s=-\r
c=IN IP4 127.0.0.1\r
t=0 0\r
m=audio 10000 RTP/SAVP 96 0 8 101\r
b=AS:128\r
a=rtpmap:96 opus/48000/2\r
a=fmtp:96 stereo=1;sprop-stereo=1;useinbandfec=1;maxaveragebitrate=64000\r
a=rtpmap:101 telephone-event/8000\r
a=fmtp:101 0-15\r
a=rtcp-mux\r
a=sendrecv\r
a=label:1\r
a=ssrc:1234 cname:abc\r
a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:9sZ4MnvzGtlnkqoAAAAAAAAAAAAAAAAAAAAAAAAA\r
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:9sZ4MnvzGtlnkqoAAAAAAAAAAAAAAAAAAAAAAAAA\r
m=video 10002 RTP/SAVP 100\r
a=rtpmap:100 H264/90000\r
a=fmtp:100 packetization-mode=0;profile-level-id=42002a\r
a=sendrecv\r
";

/// An offer as linphone sends it: G.722 is not first, static types without
/// rtpmap, telephone-events at two rates, RTCP on its own port.
pub(crate) const LINPHONE_OFFER: &str = "v=0\r
o=alice 3160 2210 IN IP4 127.0.0.1\r
s=Talk\r
c=IN IP4 127.0.0.1\r
t=0 0\r
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r
m=audio 7078 RTP/AVP 0 8 9 101 100\r
a=rtpmap:101 telephone-event/48000\r
a=rtpmap:100 telephone-event/8000\r
a=rtcp:7079\r
a=ptime:30\r
";

pub(crate) fn local() -> LocalMedia {
    LocalMedia {
        address: Ipv4Addr::LOCALHOST.into(),
        audio_port: 40000,
        session_id: 42,
        session_version: 1,
        direction: Direction::SendRecv,
    }
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap()
}

#[test]
fn parses_and_round_trips() {
    let sdp = parse(BARESIP_OFFER);
    assert_eq!(sdp.media.len(), 2);
    assert_eq!(sdp.media[0].formats, ["96", "0", "8", "101"]);
    assert_eq!(sdp.media[0].proto, "RTP/SAVP");
    assert!(sdp.media[0].has_attribute("rtcp-mux"));
    assert_eq!(sdp.connection().unwrap().address, IpAddr::from(Ipv4Addr::LOCALHOST));
    assert_eq!(parse(&sdp.to_text()), sdp);
}

#[test]
fn parse_errors() {
    assert_eq!(SessionDescription::parse(b"o=x\r\n"), Err(SdpError::Version));
    assert_eq!(SessionDescription::parse(b""), Err(SdpError::Version));
    assert_eq!(SessionDescription::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n"), Err(SdpError::Media(1)));
    assert_eq!(SessionDescription::parse(b"v=0\r\nbad\r\n"), Err(SdpError::Line(1)));
    assert_eq!(SessionDescription::parse("v=0\r\n\u{e9}=x\r\n".as_bytes()), Err(SdpError::Line(1)));
    assert_eq!(SessionDescription::parse(&[b'v'; MAX_SDP + 1]), Err(SdpError::TooLarge));
}

#[test]
fn answers_baresip_with_opus_srtp_and_refuses_video() {
    let mut rng = StdRng::seed_from_u64(1);
    let (sdp, media) = answer(&parse(BARESIP_OFFER), &local(), MediaEncryption::Required, &mut rng).unwrap();
    assert_eq!(media.codec.codec, AudioCodec::Opus);
    assert_eq!(media.codec.payload_type, 96);
    assert_eq!(media.codec.channels, 2);
    // baresip offers telephone-event/8000 only; its DTMF is taken at that clock.
    assert_eq!(media.telephone_event, Some(101));
    assert!(media.rtcp_mux);
    assert_eq!(media.remote_rtp, "127.0.0.1:10000".parse::<SocketAddr>().unwrap());
    assert_eq!(media.remote_rtcp, media.remote_rtp);
    let srtp = media.srtp.clone().unwrap();
    assert_eq!(srtp.suite, CryptoSuite::AesCm128HmacSha1_32, "the offerer's first usable line wins");
    assert_eq!(srtp.remote_key.len(), 16);
    assert_eq!(srtp.local_salt.len(), 14);
    assert_ne!(srtp.local_key, srtp.remote_key);
    let audio = &sdp.media[0];
    assert_eq!(audio.proto, "RTP/SAVP");
    assert_eq!(audio.formats, ["96", "101"]);
    assert!(audio.attribute_values("rtpmap").any(|v| v == "101 telephone-event/8000"));
    let crypto: Vec<_> = audio.attribute_values("crypto").collect();
    assert_eq!(crypto.len(), 1);
    let ours = CryptoAttribute::parse(crypto[0]).unwrap();
    assert_eq!((ours.tag, ours.key.clone(), ours.salt.clone()), (1, srtp.local_key, srtp.local_salt));
    assert!(audio.has_attribute("rtcp-mux") && audio.has_attribute("sendrecv"));
    assert_eq!((sdp.media[1].kind.as_str(), sdp.media[1].port, sdp.media[1].proto.as_str()), ("video", 0, "RTP/SAVP"));
    // Our answer parses back.
    assert_eq!(parse(&sdp.to_text()), sdp);
}

#[test]
fn answers_linphone_with_g722_and_telephone_event() {
    let mut rng = StdRng::seed_from_u64(2);
    let (sdp, media) = answer(&parse(LINPHONE_OFFER), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert_eq!(media.codec.codec, AudioCodec::G722);
    assert_eq!(media.codec.payload_type, 9);
    assert_eq!(media.telephone_event, Some(100));
    assert_eq!(media.remote_rtcp, "127.0.0.1:7079".parse::<SocketAddr>().unwrap());
    assert!(!media.rtcp_mux);
    assert_eq!(media.ptime_ms, 30);
    assert!(media.srtp.is_none());
    assert_eq!(sdp.media[0].formats, ["9", "100"]);
    assert_eq!(sdp.media[0].proto, "RTP/AVP");
    assert!(!sdp.media[0].has_attribute("rtcp-mux"));
}

#[test]
fn encryption_policy() {
    let mut rng = StdRng::seed_from_u64(3);
    let plain = parse(LINPHONE_OFFER);
    let secure = parse(BARESIP_OFFER);
    assert_eq!(
        answer(&plain, &local(), MediaEncryption::Required, &mut rng).err(),
        Some(NegotiationError::EncryptionRequired)
    );
    let err = answer(&secure, &local(), MediaEncryption::Prohibited, &mut rng).err().unwrap();
    assert_eq!(err, NegotiationError::EncryptionProhibited);
    assert_eq!(err.status(), 488);
    // Secure-only with a suite we do not have.
    let unknown = BARESIP_OFFER
        .replace("AES_CM_128_HMAC_SHA1_32", "F8_128_HMAC_SHA1_80")
        .replace("AES_CM_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80");
    assert_eq!(
        answer(&parse(&unknown), &local(), MediaEncryption::Optional, &mut rng).err(),
        Some(NegotiationError::NoCryptoSuite)
    );
    // An MKI or a session parameter skips the line; the next one is taken.
    let mki = BARESIP_OFFER.replace("AAAAAAA\r\na=crypto:2", "AAAAAAA|2^31|1:4\r\na=crypto:2");
    let (_, media) = answer(&parse(&mki), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert_eq!(media.srtp.unwrap().suite, CryptoSuite::AesCm128HmacSha1_80);
    // A best-effort offer (RTP/AVP + crypto) gets SRTP unless prohibited.
    let best_effort = BARESIP_OFFER.replace("RTP/SAVP", "RTP/AVP");
    let (_, media) = answer(&parse(&best_effort), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert!(media.srtp.is_some());
    let (sdp, media) = answer(&parse(&best_effort), &local(), MediaEncryption::Prohibited, &mut rng).unwrap();
    assert!(media.srtp.is_none());
    assert_eq!(sdp.media[0].attribute_values("crypto").count(), 0);
}

#[test]
fn gcm_keys_are_28_bytes() {
    let mut rng = StdRng::seed_from_u64(4);
    let line = CryptoAttribute::generate(7, CryptoSuite::AeadAes128Gcm, &mut rng);
    let back = CryptoAttribute::parse(&line.to_value()).unwrap();
    assert_eq!(back, line);
    assert_eq!(back.salt.len(), 12);
    // A 30-byte key is not a GCM key.
    assert!(CryptoAttribute::parse("1 AEAD_AES_128_GCM inline:9sZ4MnvzGtlnkqoAAAAAAAAAAAAAAAAAAAAAAAAA").is_none());
}

#[test]
fn hold_and_resume_directions() {
    let mut rng = StdRng::seed_from_u64(5);
    let hold = LINPHONE_OFFER.replace("a=ptime:30", "a=sendonly");
    let (sdp, media) = answer(&parse(&hold), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert_eq!(media.direction, Direction::RecvOnly);
    assert!(sdp.media[0].has_attribute("recvonly"));
    let old_hold = LINPHONE_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let (_, media) = answer(&parse(&old_hold), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert_eq!(media.direction, Direction::RecvOnly);
    let inactive = LINPHONE_OFFER.replace("a=ptime:30", "a=inactive");
    let (sdp, media) = answer(&parse(&inactive), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert_eq!(media.direction, Direction::Inactive);
    assert!(sdp.media[0].has_attribute("inactive"));
}

#[test]
fn no_common_codec_or_audio() {
    let mut rng = StdRng::seed_from_u64(6);
    let g729 = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5000 RTP/AVP 18\r\n";
    assert_eq!(
        answer(&parse(g729), &local(), MediaEncryption::Optional, &mut rng).err(),
        Some(NegotiationError::NoCommonCodec)
    );
    let video = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5000 RTP/AVP 96\r\n";
    assert_eq!(
        answer(&parse(video), &local(), MediaEncryption::Optional, &mut rng).err(),
        Some(NegotiationError::NoAudio)
    );
    let host = "v=0\r\nc=IN IP4 pc.example\r\nm=audio 5000 RTP/AVP 0\r\n";
    assert_eq!(
        answer(&parse(host), &local(), MediaEncryption::Optional, &mut rng).err(),
        Some(NegotiationError::NoConnection)
    );
}

#[test]
fn our_offer_is_answered_by_our_answer() {
    for policy in [MediaEncryption::Optional, MediaEncryption::Required, MediaEncryption::Prohibited] {
        let mut rng = StdRng::seed_from_u64(7);
        let offer = AudioOffer::new(&local(), policy, &mut rng);
        let offered = parse(&offer.sdp.to_text());
        assert_eq!(offered.media[0].formats, ["111", "9", "0", "8", "101", "100"]);
        let mut peer = local();
        peer.audio_port = 50000;
        let (reply, theirs) = answer(&offered, &peer, policy, &mut rng).unwrap();
        let ours = offer.accept(&parse(&reply.to_text())).unwrap();
        assert_eq!(ours.codec.codec, AudioCodec::Opus);
        assert_eq!(ours.telephone_event, Some(101));
        assert_eq!(ours.remote_rtp.port(), 50000);
        assert_eq!(ours.srtp.is_some(), policy != MediaEncryption::Prohibited);
        if let (Some(a), Some(b)) = (ours.srtp, theirs.srtp) {
            assert_eq!((a.local_key, a.remote_key), (b.remote_key, b.local_key));
        }
    }
}

/// RFC 6464 levels (as WebRTC offers them): the answer echoes the offered
/// extmap id, the negotiated stream carries it, and our own offer has one.
#[test]
fn the_audio_level_extension_is_echoed_and_offered() {
    let mut rng = StdRng::seed_from_u64(3);
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n\
                 a=extmap:2/sendrecv urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
                 a=extmap:5 urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n";
    let (sdp, media) = answer(&parse(offer), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert_eq!(media.audio_level_id, Some(5));
    let text = sdp.to_text();
    assert!(text.contains("a=extmap:5 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"), "{text}");
    assert!(!text.contains("sdes:mid"), "only what we use is echoed: {text}");
    let (_, plain) = answer(&parse(BARESIP_OFFER), &local(), MediaEncryption::Optional, &mut rng).unwrap();
    assert_eq!(plain.audio_level_id, None);

    let ours = AudioOffer::new(&local(), MediaEncryption::Optional, &mut rng);
    assert!(ours.sdp.to_text().contains("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"));
    let reply = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio 4002 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n\
                 a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
    assert_eq!(ours.accept(&parse(reply)).unwrap().audio_level_id, Some(1));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes parse or fail without a panic; what parses writes back to itself.
        #[test]
        fn sdp_round_trips(lines in proptest::collection::vec(("[a-z]", "[ -~]{0,30}"), 0..30)) {
            let mut text = String::from("v=0\r\n");
            for (kind, value) in &lines {
                text.push_str(&format!("{kind}={value}\r\n"));
            }
            if let Ok(sdp) = SessionDescription::parse(text.as_bytes()) {
                prop_assert_eq!(SessionDescription::parse(sdp.to_text().as_bytes()).unwrap(), sdp);
            }
        }
    }
}
