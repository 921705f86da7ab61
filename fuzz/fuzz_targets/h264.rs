//! H.264 over RTP: any sequence of payloads (with any sequence numbers,
//! timestamps and markers) gives access units, keyframe requests or errors,
//! never a panic; and any access unit packetized in either mode comes back
//! from the depacketizer unit for unit.
//!
//! Input: a header byte (reorder window, frame limit, payload size, mode),
//! then records of [control, length, payload...]; the control byte gives the
//! sequence step (-2..+5), the marker and the timestamp step.
#![no_main]
use confero_media::video::h264_rtp::{
    Assembled, DepacketizerConfig, H264Depacketizer, H264Error, H264Packetizer, PacketizationMode, RtpPayloads,
};
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
    depacketize(header, &records);
    round_trip(header, &records);
});

fn depacketize(header: u8, records: &[(u8, &[u8])]) {
    let config = DepacketizerConfig {
        reorder_window: usize::from(header & 0x0f) + 1,
        max_frame_bytes: 64 << usize::from(header >> 4 & 7),
        max_ready: 4,
    };
    let mut depacketizer = H264Depacketizer::new(config);
    let (mut seq, mut ts) = (0u16, 0u32);
    for (control, payload) in records {
        seq = seq.wrapping_add_signed(i16::from(control & 7) - 2);
        ts = match control >> 4 & 3 {
            0 => ts,
            1 => ts.wrapping_add(3000),
            2 => ts.wrapping_add(6000),
            _ => ts.wrapping_sub(3000),
        };
        let _ = depacketizer.push(seq, ts, control & 8 != 0, payload);
        while let Some(out) = depacketizer.poll() {
            if let Assembled::Frame(unit) = out {
                assert!(unit.annex_b().len() <= config.max_frame_bytes);
                assert_eq!(unit.is_keyframe(), unit.nal_units().any(|n| n.first().is_some_and(|h| h & 0x1f == 5)));
                depacketizer.recycle(unit);
            }
        }
    }
}

fn round_trip(header: u8, records: &[(u8, &[u8])]) {
    // Make every record a valid NAL unit header: types 1-23, forbidden bit clear.
    let units: Vec<Vec<u8>> = records
        .iter()
        .map(|(control, body)| {
            let mut unit = vec![(control & 0x60) | (1 + control % 23)];
            unit.extend_from_slice(body);
            unit
        })
        .collect();
    let mode = if header & 0x80 != 0 { PacketizationMode::NonInterleaved } else { PacketizationMode::SingleNalUnit };
    let max_payload = 3 + usize::from(header & 0x7f) * 4;
    let Ok(packetizer) = H264Packetizer::new(max_payload, mode) else { return };
    let mut payloads = RtpPayloads::new();
    match packetizer.packetize(units.iter().map(Vec::as_slice), &mut payloads) {
        Ok(()) => {}
        Err(H264Error::NoNalUnits) => return assert!(units.is_empty()),
        Err(H264Error::NalTooLarge { .. }) => {
            return assert!(mode == PacketizationMode::SingleNalUnit && units.iter().any(|u| u.len() > max_payload))
        }
        Err(e) => panic!("valid NAL units refused: {e}"),
    }
    let mut depacketizer = H264Depacketizer::default();
    // An IDR first, so the units need not hold one to pass.
    depacketizer.push(u16::MAX, 1, true, &[0x65, 0x88]).expect("IDR");
    assert!(matches!(depacketizer.poll(), Some(Assembled::Frame(_))));
    for (seq, (payload, marker)) in (0u16..).zip(payloads.iter()) {
        assert!(payload.len() <= max_payload);
        depacketizer.push(seq, 2, marker, payload).expect("our own payload");
    }
    let Some(Assembled::Frame(unit)) = depacketizer.poll() else { panic!("no frame back") };
    assert!(unit.nal_units().eq(units.iter().map(Vec::as_slice)));
    assert!(depacketizer.poll().is_none());
}
