use std::time::Duration;

use super::*;
use crate::video::frame::Yuv;

const SMALL: Vp8EncoderConfig = Vp8EncoderConfig { width: 320, height: 180, bitrate: 300_000, max_fps: 30.0 };

/// A picture that moves: diagonal luma stripes shifted by `t` pixels, and
/// chroma gradients, so every frame differs from the last.
fn moving_pattern(frame: &mut I420Frame, t: u32) {
    let (y_stride, c_stride) = frame.strides();
    let (y, u, v) = frame.planes_mut();
    for (i, px) in y.iter_mut().enumerate() {
        let (col, row) = ((i % y_stride) as u32, (i / y_stride) as u32);
        *px = 40 + ((col + row + 4 * t) / 8 % 2) as u8 * 150;
    }
    for (i, (cu, cv)) in u.iter_mut().zip(v.iter_mut()).enumerate() {
        let (col, row) = ((i % c_stride) as u32, (i / c_stride) as u32);
        *cu = (64 + col + t) as u8;
        *cv = (64 + row * 2) as u8;
    }
}

fn mean_y(frame: &I420Frame) -> f64 {
    let (stride, _) = frame.strides();
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let sum: u64 = frame.y().chunks(stride).take(h).flat_map(|row| &row[..w]).map(|&p| u64::from(p)).sum();
    sum as f64 / (w * h) as f64
}

fn at(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}

#[test]
fn a_moving_pattern_round_trips_with_one_keyframe() {
    let mut enc = Vp8Encoder::new(SMALL).unwrap();
    let mut dec = Vp8Decoder::new().unwrap();
    let mut frame = I420Frame::new(320, 180).unwrap();
    let mut out = I420Frame::new(2, 2).unwrap();
    let start = Instant::now();
    let (mut keyframes, mut decoded, mut bytes) = (Vec::new(), 0, 0);
    for i in 0..30u32 {
        moving_pattern(&mut frame, i);
        let au = enc.encode(at(start, 33 * u64::from(i)), &frame).unwrap();
        if au.keyframe {
            keyframes.push(i);
        }
        if au.data.is_empty() {
            continue;
        }
        // The frame tag's key bit agrees with the encoder's flag.
        assert_eq!(au.data[0] & 1 == 0, au.keyframe, "frame {i}");
        bytes += au.data.len();
        let data = au.data.to_vec();
        assert!(dec.decode(&data, &mut out).unwrap(), "frame {i}");
        decoded += 1;
        assert_eq!((out.width(), out.height()), (320, 180));
        let (got, want) = (mean_y(&out), mean_y(&frame));
        assert!((got - want).abs() < 6.0, "frame {i}: mean Y {got:.1} vs {want:.1}");
    }
    assert_eq!(keyframes, vec![0], "only the first frame is a keyframe");
    assert!(decoded >= 25, "{decoded} of 30 frames decoded");
    // 300 kbit/s for one second is 37.5 kB; CBR holds it within a margin.
    assert!(bytes < 60_000, "{bytes} bytes in one second");
}

#[test]
fn solid_colour_survives_a_round_trip() {
    let mut enc = Vp8Encoder::new(SMALL).unwrap();
    let mut dec = Vp8Decoder::new().unwrap();
    let colour = Yuv::from_rgb(200, 60, 30);
    let mut frame = I420Frame::new(320, 180).unwrap();
    frame.fill(colour);
    let mut out = I420Frame::new(2, 2).unwrap();
    let start = Instant::now();
    for i in 0..5u64 {
        let au = enc.encode(at(start, 33 * i), &frame).unwrap();
        assert_eq!(au.keyframe, i == 0, "frame {i}");
        let au = au.data.to_vec();
        if au.is_empty() {
            continue;
        }
        assert!(dec.decode(&au, &mut out).unwrap());
        assert!((mean_y(&out) - f64::from(colour.y)).abs() < 2.0, "frame {i}: mean Y {}", mean_y(&out));
        for (x, y) in [(0, 0), (160, 90), (319, 179)] {
            let got = out.pixel(x, y).unwrap();
            // VP8 quantizes chroma more coarsely than OpenH264 does here.
            let close = got.y.abs_diff(colour.y) <= 3 && got.u.abs_diff(colour.u) <= 6 && got.v.abs_diff(colour.v) <= 6;
            assert!(close, "frame {i} at {x},{y}: {got:?} vs {colour:?}");
        }
    }
}

#[test]
fn keyframe_requests_are_coalesced_to_one_per_500_ms() {
    let mut enc = Vp8Encoder::new(SMALL).unwrap();
    let mut frame = I420Frame::new(320, 180).unwrap();
    let start = Instant::now();
    let mut keyframe_at = Vec::new();
    for i in 0..60u64 {
        moving_pattern(&mut frame, i as u32);
        // Three receivers ask at 99 ms, one at 297 ms, two at 891 ms.
        if [3, 9, 27].contains(&i) {
            enc.request_keyframe();
            enc.request_keyframe();
        }
        let au = enc.encode(at(start, 33 * i), &frame).unwrap();
        if au.keyframe {
            keyframe_at.push(33 * i);
        }
    }
    // As with H.264: the first frame, then the first frame 500 ms after it
    // (528 ms), then the first 500 ms after that (1056 ms).
    assert_eq!(keyframe_at, vec![0, 528, 1056]);
}

#[test]
fn an_inter_frame_before_any_keyframe_is_not_a_picture() {
    let mut enc = Vp8Encoder::new(SMALL).unwrap();
    let mut frame = I420Frame::new(320, 180).unwrap();
    let start = Instant::now();
    let mut inter = None;
    for i in 0..3u32 {
        moving_pattern(&mut frame, i);
        let au = enc.encode(at(start, 33 * u64::from(i)), &frame).unwrap();
        if !au.keyframe && !au.data.is_empty() {
            inter = Some(au.data.to_vec());
        }
    }
    let inter = inter.expect("an inter frame");
    let mut dec = Vp8Decoder::new().unwrap();
    let mut out = I420Frame::new(2, 2).unwrap();
    assert_eq!(dec.decode(&inter, &mut out), Ok(false));
    assert_eq!(dec.decode(&[], &mut out), Ok(false));
}

#[test]
fn wrong_sizes_and_settings_are_errors() {
    assert!(matches!(Vp8Encoder::new(Vp8EncoderConfig { width: 321, ..SMALL }), Err(VideoCodecError::Config(_))));
    assert!(matches!(Vp8Encoder::new(Vp8EncoderConfig { height: 0, ..SMALL }), Err(VideoCodecError::Config(_))));
    assert!(Vp8Encoder::new(Vp8EncoderConfig { bitrate: 0, ..SMALL }).is_err());
    assert!(Vp8Encoder::new(Vp8EncoderConfig { max_fps: f32::NAN, ..SMALL }).is_err());
    let mut enc = Vp8Encoder::new(SMALL).unwrap();
    assert_eq!(enc.config(), &SMALL);
    let frame = I420Frame::new(640, 360).unwrap();
    assert_eq!(
        enc.encode(Instant::now(), &frame).unwrap_err(),
        VideoCodecError::FrameSize { width: 320, height: 180, got_width: 640, got_height: 360 }
    );
}

#[test]
fn garbage_never_panics_the_decoder() {
    let mut dec = Vp8Decoder::new().unwrap();
    let mut out = I420Frame::new(2, 2).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut errors = 0;
    for len in (1..2000).step_by(7) {
        let mut data: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        // Half of them look like a keyframe (key bit clear, start code), so
        // the decoder gets past the frame header into the partitions.
        if len % 2 == 1 && data.len() >= 10 {
            data[0] &= !1;
            data[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
            data[6..10].copy_from_slice(&[0x40, 0x01, 0xb4, 0x00]);
        }
        if dec.decode(&data, &mut out).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 0, "garbage was never refused");
    // A real keyframe cut short, then a fresh decoder given it whole.
    let mut enc = Vp8Encoder::new(SMALL).unwrap();
    let mut frame = I420Frame::new(320, 180).unwrap();
    moving_pattern(&mut frame, 0);
    let key = enc.encode(Instant::now(), &frame).unwrap().data.to_vec();
    for cut in [1, 3, 5, 10, 20, key.len() / 2] {
        let _ = dec.decode(&key[..cut], &mut out);
    }
    let mut fresh = Vp8Decoder::new().unwrap();
    assert!(fresh.decode(&key, &mut out).unwrap());
    // And the decoder that saw garbage recovers on a whole keyframe.
    assert!(dec.decode(&key, &mut out).unwrap());
}

#[test]
fn a_keyframe_larger_than_a_frame_may_be_is_refused_unread() {
    // Frame tag (key, shown, first partition of 0 bytes), start code, then
    // 16383x16383: what libvpx would allocate about 400 MB for.
    let huge = [0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0xff, 0x3f, 0xff, 0x3f, 0x00, 0x00];
    let mut dec = Vp8Decoder::new().unwrap();
    let mut out = I420Frame::new(2, 2).unwrap();
    assert_eq!(
        dec.decode(&huge, &mut out),
        Err(VideoCodecError::Frame(FrameError::Size { width: 16383, height: 16383 }))
    );
}

#[test]
fn codecs_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Vp8Encoder>();
    assert_send::<Vp8Decoder>();
    // Made on one thread, used on another, dropped on a third.
    let mut enc = Vp8Encoder::new(SMALL).unwrap();
    let mut dec = Vp8Decoder::new().unwrap();
    let (enc, dec) = std::thread::spawn(move || {
        let frame = I420Frame::new(320, 180).unwrap();
        let mut out = I420Frame::new(2, 2).unwrap();
        let au = enc.encode(Instant::now(), &frame).unwrap().data.to_vec();
        assert!(dec.decode(&au, &mut out).unwrap());
        (enc, dec)
    })
    .join()
    .unwrap();
    std::thread::spawn(move || drop((enc, dec))).join().unwrap();
}
