//! SRTP protect and unprotect of 100-byte-payload RTP packets, per suite.
//!
//! Throughput is reported in packets per second (criterion's elements/s).
//! The target for AES_CM_128_HMAC_SHA1_80 protect is at least 2.5 million
//! packets per second on one core. Reproduce with:
//!
//! ```text
//! cargo bench --bench srtp -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use confero_media::srtp::{SrtpContext, SrtpProfile};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const PROFILES: [SrtpProfile; 3] =
    [SrtpProfile::AesCm128HmacSha1_80, SrtpProfile::AesCm128HmacSha1_32, SrtpProfile::AeadAes128Gcm];
const PAYLOAD_LEN: usize = 100;
const MASTER_KEY: [u8; 16] = *b"confero-srtp-key";
const MASTER_SALT: [u8; 14] = *b"confero-salt14";

fn context(profile: SrtpProfile) -> SrtpContext {
    SrtpContext::new(profile, &MASTER_KEY, &MASTER_SALT[..profile.master_salt_len()]).expect("valid key lengths")
}

/// An Opus-sized packet: 12-byte header, 100-byte payload.
fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + PAYLOAD_LEN + 16);
    p.extend_from_slice(&[0x80, 111]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend((0..PAYLOAD_LEN).map(|i| i as u8));
    p
}

fn protect(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_protect_100B");
    group.throughput(Throughput::Elements(1));
    for profile in PROFILES {
        let mut ctx = context(profile);
        let plain = rtp_packet(0);
        let mut buf = Vec::with_capacity(plain.len() + profile.rtp_tag_len());
        let mut seq = 0u16;
        group.bench_function(profile.sdes_name(), |b| {
            b.iter(|| {
                // What the mixer does per receiver: copy the shared payload
                // into the receiver's buffer, stamp its sequence, protect.
                buf.clear();
                buf.extend_from_slice(&plain);
                seq = seq.wrapping_add(1);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                ctx.protect_rtp(black_box(&mut buf)).expect("protect");
            })
        });
    }
    group.finish();
}

fn unprotect(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp_unprotect_100B");
    group.throughput(Throughput::Elements(1));
    for profile in PROFILES {
        let mut tx = context(profile);
        let mut rx = context(profile);
        let mut seq = 0u16;
        group.bench_function(profile.sdes_name(), |b| {
            // Each packet must be fresh or the replay window rejects it, so
            // the sender protects outside the timed routine.
            b.iter_batched(
                || {
                    seq = seq.wrapping_add(1);
                    let mut p = rtp_packet(seq);
                    tx.protect_rtp(&mut p).expect("protect");
                    p
                },
                |mut p| {
                    rx.unprotect_rtp(black_box(&mut p)).expect("unprotect");
                    p
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, protect, unprotect);
criterion_main!(benches);
