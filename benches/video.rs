//! The video hot path, piece by piece: scaling, composing, H.264 encode and
//! decode (OpenH264 with its assembly), VP8 encode and decode (libvpx) of the
//! same content, and what sharing an encode saves.
//!
//! Inputs are synthetic 720p pictures with texture and motion (a gradient,
//! noise and a moving block), so the encoder works about as hard as on a
//! camera; solid colours would make encoding look free.
//!
//! - `scale/720p_to_360p`: one picture scaled to a quarter.
//! - `compose/telepresence_720p_10_inputs` and `compose/all_equal_720p_10_inputs`:
//!   one view composed from ten fresh 720p inputs, scaling included.
//! - `compose/telepresence_720p_all_10_views`: the ten distinct views of a
//!   ten-party telepresence conference with self-skip, in one frame (each
//!   participant scaled once per pane size, then copied).
//! - `h264/encode_720p` and `h264/decode_720p`: one frame at 1.5 Mbit/s.
//! - `vp8/encode_720p` and `vp8/decode_720p`: the same frames at the same
//!   bitrate through libvpx, for the ratio to H.264.
//! - `fanout/shared_encode_10_receivers` vs `fanout/separate_encodes_10_receivers`:
//!   one encode handed to ten receivers as one `Arc<[u8]>` against an encode
//!   each.
//!
//! Reproduce with:
//!
//! ```text
//! cargo bench --bench video -- --warm-up-time 1 --measurement-time 3
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confero_media::mixer::ParticipantId;
use confero_media::video::compose::{Compositor, ViewKey};
use confero_media::video::frame::{I420Frame, Rect, Yuv};
use confero_media::video::h264::{H264Decoder, H264Encoder, H264EncoderConfig};
use confero_media::video::layout::{Layout, SelfPaneMode};
use confero_media::video::scale::Scaler;
use confero_media::video::vp8::{Vp8Decoder, Vp8Encoder, Vp8EncoderConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const W: u32 = 1280;
const H: u32 = 720;
const PARTIES: u64 = 10;
/// Frames of synthetic motion cycled through by the codec benches.
const CLIP: usize = 30;

/// A textured moving picture: frame `t` of participant `who`.
fn picture(who: u64, t: usize) -> I420Frame {
    let mut f = I420Frame::new(W, H).expect("720p is a valid size");
    let (ys, _) = f.strides();
    let mut noise = (who as u32 + 1).wrapping_mul(2_654_435_761) ^ (t as u32).wrapping_mul(40_503);
    let (y, u, v) = f.planes_mut();
    for (row, line) in y.chunks_mut(ys).enumerate().take(H as usize) {
        for (col, p) in line.iter_mut().enumerate().take(W as usize) {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            *p = (40 + ((col + row + 3 * t) % 160) as u32 + (noise & 15)) as u8;
        }
    }
    u.fill(100 + (who as u8) * 5);
    v.fill(150 - (who as u8) * 5);
    let x = ((t * 12) % (W as usize - 200)) as u32;
    f.fill_rect(Rect::new(x & !1, 200, 200, 200), Yuv::from_rgb(230, 200, 40));
    f
}

fn order() -> Vec<ParticipantId> {
    (1..=PARTIES).map(ParticipantId).collect()
}

fn inputs() -> HashMap<ParticipantId, I420Frame> {
    (1..=PARTIES).map(|i| (ParticipantId(i), picture(i, 0))).collect()
}

fn scale(c: &mut Criterion) {
    let src = picture(1, 0);
    let mut dst = I420Frame::new(W / 2, H / 2).expect("360p is a valid size");
    let mut scaler = Scaler::new();
    let mut g = c.benchmark_group("scale");
    g.throughput(Throughput::Elements(1));
    g.bench_function("720p_to_360p", |b| {
        b.iter(|| scaler.scale_into(black_box(&src), &mut dst, Rect::new(0, 0, W / 2, H / 2)))
    });
    g.finish();
}

fn compose(c: &mut Criterion) {
    let frames = inputs();
    let order = order();
    let mut compositor = Compositor::new();
    let mut out = I420Frame::new(W, H).expect("720p is a valid size");
    let mut g = c.benchmark_group("compose");
    g.throughput(Throughput::Elements(1));
    for (name, layout) in
        [("telepresence_720p_10_inputs", Layout::Telepresence), ("all_equal_720p_10_inputs", Layout::AllEqual)]
    {
        // The last in the order sees what a non-speaker sees.
        let view = ViewKey::for_receiver(layout.into(), SelfPaneMode::Skip, (W, H), ParticipantId(PARTIES), &order);
        g.bench_function(name, |b| {
            b.iter(|| {
                compositor.begin_frame();
                compositor.compose(&view, &order, |p| frames.get(&p), &mut out).expect("valid view");
                black_box(&out);
            })
        });
    }
    let views: Vec<ViewKey> = order
        .iter()
        .map(|&r| ViewKey::for_receiver(Layout::Telepresence.into(), SelfPaneMode::Skip, (W, H), r, &order))
        .collect();
    g.bench_function("telepresence_720p_all_10_views", |b| {
        b.iter(|| {
            compositor.begin_frame();
            for view in &views {
                compositor.compose(view, &order, |p| frames.get(&p), &mut out).expect("valid view");
                black_box(&out);
            }
        })
    });
    g.finish();
}

fn encoder() -> H264Encoder {
    H264Encoder::new(H264EncoderConfig::HD_720P30).expect("720p30 settings are valid")
}

fn codec(c: &mut Criterion) {
    let clip: Vec<I420Frame> = (0..CLIP).map(|t| picture(1, t)).collect();
    let start = Instant::now();
    let frame_time = Duration::from_millis(33);
    let mut g = c.benchmark_group("h264");
    g.throughput(Throughput::Elements(1));
    let mut enc = encoder();
    let mut n = 0usize;
    g.bench_function("encode_720p", |b| {
        b.iter(|| {
            let au = enc.encode(start + frame_time * n as u32, &clip[n % CLIP]).expect("encode");
            black_box(au.data.len());
            n += 1;
        })
    });
    // One IDR then P frames, decoded in a loop (the IDR resets the decoder).
    let mut enc = encoder();
    let encoded: Vec<Vec<u8>> = clip
        .iter()
        .enumerate()
        .map(|(i, f)| enc.encode(start + frame_time * i as u32, f).expect("encode").data.to_vec())
        .collect();
    let mut dec = H264Decoder::new().expect("decoder");
    let mut out = I420Frame::new(W, H).expect("720p is a valid size");
    let mut n = 0usize;
    g.bench_function("decode_720p", |b| {
        b.iter(|| {
            black_box(dec.decode(&encoded[n % CLIP], &mut out).expect("decode"));
            n += 1;
        })
    });
    g.finish();
}

/// VP8 at H.264's 720p30 class, so the two groups compare like for like.
fn vp8_encoder() -> Vp8Encoder {
    let h264 = H264EncoderConfig::HD_720P30;
    let config =
        Vp8EncoderConfig { width: h264.width, height: h264.height, bitrate: h264.bitrate, max_fps: h264.max_fps };
    Vp8Encoder::new(config).expect("720p30 settings are valid")
}

fn vp8(c: &mut Criterion) {
    let clip: Vec<I420Frame> = (0..CLIP).map(|t| picture(1, t)).collect();
    let start = Instant::now();
    let frame_time = Duration::from_millis(33);
    let mut g = c.benchmark_group("vp8");
    g.throughput(Throughput::Elements(1));
    let mut enc = vp8_encoder();
    let mut n = 0usize;
    g.bench_function("encode_720p", |b| {
        b.iter(|| {
            let au = enc.encode(start + frame_time * n as u32, &clip[n % CLIP]).expect("encode");
            black_box(au.data.len());
            n += 1;
        })
    });
    // One keyframe then inter frames, decoded in a loop (the keyframe resets
    // the decoder); a frame rate control dropped is left out.
    let mut enc = vp8_encoder();
    let encoded: Vec<Vec<u8>> = clip
        .iter()
        .enumerate()
        .map(|(i, f)| enc.encode(start + frame_time * i as u32, f).expect("encode").data.to_vec())
        .filter(|frame| !frame.is_empty())
        .collect();
    let mut dec = Vp8Decoder::new().expect("decoder");
    let mut out = I420Frame::new(W, H).expect("720p is a valid size");
    let mut n = 0usize;
    g.bench_function("decode_720p", |b| {
        b.iter(|| {
            black_box(dec.decode(&encoded[n % encoded.len()], &mut out).expect("decode"));
            n += 1;
        })
    });
    g.finish();
}

fn fanout(c: &mut Criterion) {
    const RECEIVERS: usize = 10;
    let clip: Vec<I420Frame> = (0..CLIP).map(|t| picture(2, t)).collect();
    let start = Instant::now();
    let frame_time = Duration::from_millis(33);
    let mut g = c.benchmark_group("fanout");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECEIVERS as u64));
    let mut shared = encoder();
    let mut queues: Vec<Vec<Arc<[u8]>>> = vec![Vec::new(); RECEIVERS];
    let mut n = 0usize;
    g.bench_function("shared_encode_10_receivers", |b| {
        b.iter(|| {
            let au: Arc<[u8]> =
                shared.encode(start + frame_time * n as u32, &clip[n % CLIP]).expect("encode").data.into();
            for q in &mut queues {
                q.clear();
                q.push(Arc::clone(&au));
            }
            n += 1;
        })
    });
    let mut separate: Vec<H264Encoder> = (0..RECEIVERS).map(|_| encoder()).collect();
    let mut n = 0usize;
    g.bench_function("separate_encodes_10_receivers", |b| {
        b.iter(|| {
            for (enc, q) in separate.iter_mut().zip(&mut queues) {
                let au: Arc<[u8]> =
                    enc.encode(start + frame_time * n as u32, &clip[n % CLIP]).expect("encode").data.into();
                q.clear();
                q.push(au);
            }
            n += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, scale, compose, codec, vp8, fanout);
criterion_main!(benches);
