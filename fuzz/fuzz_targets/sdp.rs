//! SDP offers from the network: any bytes parse to a description or an error;
//! an offer is answered (or refused with a reason) under every encryption
//! policy, and our answer always parses again and is accepted by our own
//! offer logic's reader.
#![no_main]
use std::net::Ipv4Addr;

use confero_sdp::{
    answer, answer_bundle, Direction, LocalBundle, LocalMedia, MediaEncryption, SessionDescription, VideoCodec,
};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = SessionDescription::parse(data) else { return };
    let _ = SessionDescription::parse(offer.to_text().as_bytes()).expect("our own output parses");
    let local = LocalMedia {
        address: Ipv4Addr::LOCALHOST.into(),
        audio_port: 40000,
        session_id: 1,
        session_version: 1,
        direction: Direction::SendRecv,
    };
    let mut rng = StdRng::seed_from_u64(0);
    for policy in [MediaEncryption::Optional, MediaEncryption::Required, MediaEncryption::Prohibited] {
        if let Ok((sdp, negotiated)) = answer(&offer, &local, policy, &mut rng) {
            let text = sdp.to_text();
            let again = SessionDescription::parse(text.as_bytes()).expect("our answer parses");
            assert_eq!(again.media.len(), offer.media.len());
            assert!(negotiated.srtp.is_none() || policy != MediaEncryption::Prohibited);
            assert!(negotiated.srtp.is_some() || policy != MediaEncryption::Required);
        }
    }
    // The same offer from a browser: answered bundled, or refused, with
    // either video codec preferred.
    for video_codec in [VideoCodec::H264, VideoCodec::Vp8] {
        let bundle = LocalBundle {
            address: Ipv4Addr::LOCALHOST.into(),
            port: 40000,
            session_id: 1,
            ice_ufrag: "ufrag123".into(),
            ice_pwd: "password1234567890abcdef".into(),
            fingerprint: "sha-256 AB:CD".into(),
            audio_ssrc: 1,
            video_ssrc: 2,
            cname: "c".into(),
            video: true,
            video_codec,
        };
        if let Ok((sdp, _)) = answer_bundle(&offer, &bundle, &mut rng) {
            let again = SessionDescription::parse(sdp.to_text().as_bytes()).expect("our bundled answer parses");
            assert_eq!(again.media.len(), offer.media.len());
        }
    }
});
