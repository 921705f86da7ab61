//! SDP offers from the network: any bytes parse to a description or an error;
//! an offer is answered (or refused with a reason) under every encryption
//! policy, and our answer always parses again and is accepted by our own
//! offer logic's reader.
#![no_main]
use std::net::Ipv4Addr;

use confero_sdp::{answer, Direction, LocalMedia, MediaEncryption, SessionDescription};
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
});
