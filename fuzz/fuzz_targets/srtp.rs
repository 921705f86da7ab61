//! SRTP/SRTCP unprotect with a fixed key: arbitrary bytes are rejected with
//! an error (almost always an authentication failure), never a panic.
#![no_main]
use confero_media::srtp::{SrtpContext, SrtpProfile};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 16] = [7; 16];
const SALT: [u8; 14] = [9; 14];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let profile = match selector % 3 {
        0 => SrtpProfile::AesCm128HmacSha1_80,
        1 => SrtpProfile::AesCm128HmacSha1_32,
        _ => SrtpProfile::AeadAes128Gcm,
    };
    let mut ctx =
        SrtpContext::new(profile, &KEY, &SALT[..profile.master_salt_len()]).expect("fixed key lengths are right");
    let mut packet = bytes.to_vec();
    if ctx.unprotect_rtp(&mut packet).is_ok() {
        assert!(packet.len() <= bytes.len());
    }
    let mut packet = bytes.to_vec();
    let _ = ctx.unprotect_rtcp(&mut packet);
    let mut packet = bytes.to_vec();
    if ctx.protect_rtp(&mut packet).is_ok() {
        assert_eq!(packet.len(), bytes.len() + profile.rtp_tag_len());
    }
});
