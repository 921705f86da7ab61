//! Known-answer tests from libsrtp and RFC 7714, and the behaviour around
//! them: rollover, replay, forgery, limits.

use proptest::prelude::*;

use super::super::cipher::{AesGcm, Transform};
use super::super::kdf::hex;
use super::*;

const ALL: [SrtpProfile; 3] =
    [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AesCm128HmacSha1_32, SrtpProfile::AeadAes128Gcm];

/// The master key of libsrtp's `srtp_validate` (the RFC 3711 B.3 key).
fn libsrtp_context(profile: SrtpProfile) -> SrtpContext {
    SrtpContext::new(profile, &hex("e1f97a0d3e018be0d64fa32c06de4139"), &hex("0ec675ad498afeebb6960b3aabe6")).unwrap()
}

fn context(profile: SrtpProfile) -> SrtpContext {
    let key: Vec<u8> = (0..16).collect();
    let salt: Vec<u8> = (100..100 + profile.master_salt_len() as u8).collect();
    SrtpContext::new(profile, &key, &salt).unwrap()
}

fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| i as u8));
    p
}

#[test]
fn libsrtp_aes_cm_80_vector() {
    let plain = hex("800f1234decafbadcafebabe abababababababababababababababab");
    let protected = hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    let mut packet = plain.clone();
    libsrtp_context(SrtpProfile::AesCm128HmacSha1_80).protect_rtp(&mut packet).unwrap();
    assert_eq!(packet, protected);

    let mut rx = libsrtp_context(SrtpProfile::AesCm128HmacSha1_80);
    rx.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet, plain);
    assert_eq!(rx.stats().rtp_unprotected, 1);
}

#[test]
fn aes_cm_32_is_the_80_tag_truncated() {
    let mut packet = hex("800f1234decafbadcafebabe abababababababababababababababab");
    libsrtp_context(SrtpProfile::AesCm128HmacSha1_32).protect_rtp(&mut packet).unwrap();
    assert_eq!(packet, hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc"));
}

#[test]
fn libsrtp_srtcp_vector() {
    let plain = hex("81c8000bcafebabe abababababababababababababababab");
    let protected = hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");
    let mut packet = plain.clone();
    libsrtp_context(SrtpProfile::AesCm128HmacSha1_80).protect_rtcp(&mut packet).unwrap();
    assert_eq!(packet, protected);

    let mut rx = libsrtp_context(SrtpProfile::AesCm128HmacSha1_80);
    rx.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(packet, plain);
}

/// RFC 7714 gives its vectors in session keys, so they bypass the KDF.
fn rfc7714_context() -> SrtpContext {
    let key: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
    let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
    SrtpContext::with_transforms(
        SrtpProfile::AeadAes128Gcm,
        Transform::Gcm(AesGcm::new(&key, salt)),
        Transform::Gcm(AesGcm::new(&key, salt)),
    )
}

#[test]
fn rfc7714_16_1_gcm_rtp() {
    let plain = hex("8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e697320646976
         69736120696e20706172746573207472 6573");
    let sealed = hex("8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd5
         0d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee439 0cce");
    let mut packet = plain.clone();
    rfc7714_context().protect_rtp(&mut packet).unwrap();
    assert_eq!(packet, sealed);
    rfc7714_context().unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet, plain);
}

const RFC7714_RTCP: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61
                            deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

#[test]
fn rfc7714_17_1_gcm_rtcp() {
    let plain = hex(RFC7714_RTCP);
    let sealed = hex("81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32d
         c676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf872
         45d9eade800005d4");
    let mut tx = rfc7714_context();
    tx.rtcp_stream(0x4d61_7273).unwrap().next_index = 0x5d4;
    let mut packet = plain.clone();
    tx.protect_rtcp(&mut packet).unwrap();
    assert_eq!(packet, sealed);
    rfc7714_context().unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(packet, plain);
}

#[test]
fn rfc7714_17_3_gcm_rtcp_authenticated_only() {
    let mut packet = hex(&format!("{RFC7714_RTCP} 841dd9683dd78ec92ae58790125f62b3 000005d4"));
    rfc7714_context().unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(packet, hex(RFC7714_RTCP));
}

#[test]
fn round_trips_every_profile_across_a_rollover() {
    for profile in ALL {
        let mut tx = context(profile);
        let mut rx = context(profile);
        for seq in (65000..=65535).chain(0..600) {
            let plain = rtp(seq, 0x1234, 100);
            let mut packet = Vec::with_capacity(plain.len() + profile.rtp_tag_len());
            packet.extend_from_slice(&plain);
            let capacity = packet.capacity();
            tx.protect_rtp(&mut packet).unwrap();
            assert_eq!(packet.capacity(), capacity, "protect reallocated");
            assert_eq!(packet.len(), plain.len() + profile.rtp_tag_len());
            assert_ne!(packet[12..plain.len()], plain[12..]);
            rx.unprotect_rtp(&mut packet).unwrap();
            assert_eq!(packet, plain, "{profile:?} seq {seq}");
        }
        assert_eq!(rx.rtp_streams[0].roc, 1);
        assert_eq!(tx.rtp_streams[0].roc, 1);
        assert_eq!(rx.stats().rtp_unprotected, 1136);
    }
}

#[test]
fn headers_with_csrcs_and_extensions_stay_clear() {
    for profile in ALL {
        let mut plain = vec![0x92, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        plain.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        plain.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x9e, 0, 0]);
        plain.extend_from_slice(b"payload");
        let mut packet = plain.clone();
        context(profile).protect_rtp(&mut packet).unwrap();
        assert_eq!(packet[..28], plain[..28]);
        context(profile).unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet, plain);
    }
}

#[test]
fn rtcp_round_trips_every_profile() {
    for profile in ALL {
        let mut tx = context(profile);
        let mut rx = context(profile);
        for n in 0..5u8 {
            let plain = hex("80c90001 0000abcd").into_iter().chain([n; 24]).collect::<Vec<_>>();
            let mut packet = plain.clone();
            tx.protect_rtcp(&mut packet).unwrap();
            assert_eq!(packet.len(), plain.len() + 4 + profile.rtcp_tag_len());
            rx.unprotect_rtcp(&mut packet).unwrap();
            assert_eq!(packet, plain);
        }
        assert_eq!(rx.stats().rtcp_unprotected, 5);
    }
}

#[test]
fn tampering_fails_authentication_and_is_counted() {
    for profile in ALL {
        let mut tx = context(profile);
        let mut rx = context(profile);
        let mut packet = rtp(7, 1, 50);
        tx.protect_rtp(&mut packet).unwrap();
        for at in [1, 20, packet.len() - 1] {
            let mut forged = packet.clone();
            forged[at] ^= 1;
            assert_eq!(rx.unprotect_rtp(&mut forged), Err(SrtpError::AuthenticationFailed));
        }
        assert_eq!(rx.stats().auth_failures, 3);
        // Forgeries created no stream state: the genuine packet still works.
        assert!(rx.rtp_streams.is_empty());
        rx.unprotect_rtp(&mut packet).unwrap();

        let mut rtcp = hex("80c90001 0000abcd");
        tx.protect_rtcp(&mut rtcp).unwrap();
        rtcp[9] ^= 0x40;
        assert_eq!(rx.unprotect_rtcp(&mut rtcp), Err(SrtpError::AuthenticationFailed));
        assert_eq!(rx.stats().auth_failures, 4);
    }
}

#[test]
fn wrong_key_fails_authentication() {
    let mut packet = rtp(1, 1, 20);
    context(SrtpProfile::AesCm128HmacSha1_80).protect_rtp(&mut packet).unwrap();
    let mut rx = libsrtp_context(SrtpProfile::AesCm128HmacSha1_80);
    assert_eq!(rx.unprotect_rtp(&mut packet), Err(SrtpError::AuthenticationFailed));
}

#[test]
fn replays_and_old_packets_are_rejected_and_counted() {
    for profile in ALL {
        let mut tx = context(profile);
        let mut rx = context(profile);
        let packets: Vec<Vec<u8>> = (1000..1300)
            .map(|seq| {
                let mut p = rtp(seq, 5, 10);
                tx.protect_rtp(&mut p).unwrap();
                p
            })
            .collect();
        // Deliver the newest first, then an older one still in the window.
        let mut p = packets[299].clone();
        rx.unprotect_rtp(&mut p).unwrap();
        let mut p = packets[299 - 100].clone();
        rx.unprotect_rtp(&mut p).unwrap();
        let mut p = packets[299 - 100].clone();
        assert_eq!(rx.unprotect_rtp(&mut p), Err(SrtpError::Replayed(1199)));
        let mut p = packets[0].clone();
        assert_eq!(rx.unprotect_rtp(&mut p), Err(SrtpError::TooOld(1000)));
        assert_eq!(rx.stats().replays, 2);

        let mut rtcp = hex("80c90001 0000abcd");
        tx.protect_rtcp(&mut rtcp).unwrap();
        rx.unprotect_rtcp(&mut rtcp.clone()).unwrap();
        assert_eq!(rx.unprotect_rtcp(&mut rtcp), Err(SrtpError::Replayed(1)));
        assert_eq!(rx.stats().replays, 3);
    }
}

#[test]
fn rejects_bad_keys_and_malformed_packets() {
    assert!(matches!(
        SrtpContext::new(SrtpProfile::AesCm128HmacSha1_80, &[0; 15], &[0; 14]),
        Err(SrtpError::BadKeyLength { what: "master key", .. })
    ));
    assert!(matches!(
        SrtpContext::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 14]),
        Err(SrtpError::BadKeyLength { what: "master salt", .. })
    ));
    let mut ctx = context(SrtpProfile::AesCm128HmacSha1_80);
    for bad in [vec![], vec![0x80; 11], vec![0x40; 40], {
        // Extension header claims more than the packet holds.
        let mut p = rtp(1, 1, 0);
        p[0] |= 0x10;
        p.extend_from_slice(&[0xbe, 0xde, 0, 9]);
        p
    }] {
        let mut packet = bad.clone();
        assert_eq!(ctx.protect_rtp(&mut packet), Err(SrtpError::Malformed));
        assert_eq!(packet, bad);
        assert_eq!(ctx.unprotect_rtp(&mut packet), Err(SrtpError::Malformed));
        assert_eq!(ctx.unprotect_rtcp(&mut packet), Err(SrtpError::Malformed));
    }
    assert!(ctx.stats().malformed >= 8);
}

#[test]
fn stream_count_is_capped() {
    let mut tx = context(SrtpProfile::AesCm128HmacSha1_80);
    for ssrc in 0..MAX_STREAMS as u32 {
        tx.protect_rtp(&mut rtp(1, ssrc, 1)).unwrap();
    }
    assert_eq!(tx.protect_rtp(&mut rtp(1, 9999, 1)), Err(SrtpError::TooManyStreams));
}

#[test]
fn debug_output_shows_no_keys() {
    let text = format!("{:?}", context(SrtpProfile::AeadAes128Gcm));
    assert!(text.contains("AeadAes128Gcm"));
    assert!(!text.contains("aes"));
}

proptest! {
    #[test]
    fn unprotect_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        for profile in ALL {
            let mut ctx = context(profile);
            let mut packet = bytes.clone();
            let _ = ctx.unprotect_rtp(&mut packet);
            let mut packet = bytes.clone();
            let _ = ctx.unprotect_rtcp(&mut packet);
        }
    }

    #[test]
    fn any_payload_round_trips(seq: u16, ssrc: u32, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        for profile in ALL {
            let mut plain = rtp(seq, ssrc, 0);
            plain.extend_from_slice(&payload);
            let mut packet = plain.clone();
            context(profile).protect_rtp(&mut packet).unwrap();
            context(profile).unprotect_rtp(&mut packet).unwrap();
            prop_assert_eq!(&packet, &plain);
        }
    }
}
