//! VP8 over RTP, then the VP8 decoder: any sequence of payloads (with any
//! sequence numbers, timestamps and markers) gives frames, keyframe requests
//! or errors, never a panic; every frame assembled goes to libvpx's decoder,
//! which must refuse garbage without crashing; and any frame packetized comes
//! back from the depacketizer byte for byte.
//!
//! Input: a header byte (reorder window, frame limit), then records of
//! [control, length, payload...]; the control byte gives the sequence step
//! (-2..+5), the marker and the timestamp step.
#![no_main]
use confero_media::video::frame::I420Frame;
use confero_media::video::h264_rtp::RtpPayloads;
use confero_media::video::reorder::DepacketizerConfig;
use confero_media::video::vp8::Vp8Decoder;
use confero_media::video::vp8_rtp::{Vp8Assembled, Vp8Depacketizer, Vp8PayloadDescriptor, Vp8Packetizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&header, mut input)) = data.split_first() else { return };
    let mut records = Vec::new();
    while let [control, len, rest @ ..] = input {
        let len = usize::from(*len).min(rest.len());
        let (payload, after) = rest.split_at(len);
        records.push((*control, payload));
        input = after;
    }
    depacketize_and_decode(header, &records);
    round_trip(header, &records);
});

fn depacketize_and_decode(header: u8, records: &[(u8, &[u8])]) {
    let config = DepacketizerConfig {
        reorder_window: usize::from(header & 0x0f) + 1,
        max_frame_bytes: 64 << usize::from(header >> 4 & 7),
        max_ready: 4,
    };
    let mut depacketizer = Vp8Depacketizer::new(config);
    let mut decoder = Vp8Decoder::new().expect("decoder");
    let mut picture = I420Frame::new(2, 2).expect("2x2 is a valid size");
    let (mut seq, mut ts) = (0u16, 0u32);
    for (control, payload) in records {
        seq = seq.wrapping_add_signed(i16::from(control & 7) - 2);
        ts = match control >> 4 & 3 {
            0 => ts,
            1 => ts.wrapping_add(3000),
            2 => ts.wrapping_add(6000),
            _ => ts.wrapping_sub(3000),
        };
        let accepted = depacketizer.push(seq, ts, control & 8 != 0, payload);
        assert_eq!(accepted.is_ok(), Vp8PayloadDescriptor::parse(payload).is_ok());
        while let Some(out) = depacketizer.poll() {
            if let Vp8Assembled::Frame(frame) = out {
                assert!(!frame.data().is_empty() && frame.data().len() <= config.max_frame_bytes);
                if frame.is_keyframe() {
                    assert_eq!(frame.data()[0] & 1, 0, "a keyframe's tag says key");
                }
                if decoder.decode(frame.data(), &mut picture).unwrap_or(false) {
                    assert!(picture.width() > 0 && picture.height() > 0);
                }
                depacketizer.recycle(frame);
            }
        }
    }
}

fn round_trip(header: u8, records: &[(u8, &[u8])]) {
    let frame: Vec<u8> = records.iter().flat_map(|(_, body)| body.iter().copied()).collect();
    let max_payload = 5 + usize::from(header & 0x7f) * 4;
    let mut packetizer = Vp8Packetizer::new(max_payload).expect("above the descriptor size");
    let mut payloads = RtpPayloads::new();
    packetizer.packetize(&frame, &mut payloads);
    if frame.is_empty() {
        return assert!(payloads.is_empty());
    }
    let mut depacketizer = Vp8Depacketizer::default();
    // A keyframe first, so the frame need not be one to pass.
    depacketizer.push(u16::MAX, 1, true, &[0x10, 0x00]).expect("keyframe");
    assert!(matches!(depacketizer.poll(), Some(Vp8Assembled::Frame(_))));
    for (seq, (payload, marker)) in (0u16..).zip(payloads.iter()) {
        assert!(payload.len() <= max_payload);
        depacketizer.push(seq, 2, marker, payload).expect("our own payload");
    }
    let Some(Vp8Assembled::Frame(got)) = depacketizer.poll() else { panic!("no frame back") };
    assert_eq!(got.data(), frame.as_slice());
    assert!(depacketizer.poll().is_none());
}
