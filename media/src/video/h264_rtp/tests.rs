use proptest::prelude::*;

use super::*;

fn sps() -> Vec<u8> {
    vec![0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8]
}

fn pps() -> Vec<u8> {
    vec![0x68, 0xce, 0x3c, 0x80]
}

/// A slice NAL unit of `len` bytes starting at macroblock 0.
fn slice(kind: u8, len: usize) -> Vec<u8> {
    let mut unit = vec![0x60 | kind, 0x88];
    unit.extend((0..len.saturating_sub(2)).map(|i| (i % 251) as u8 + 1));
    unit.truncate(len.max(2));
    unit
}

fn packets(packetizer: &H264Packetizer, units: &[Vec<u8>]) -> Vec<(Vec<u8>, bool)> {
    let mut out = RtpPayloads::new();
    packetizer.packetize(units.iter().map(Vec::as_slice), &mut out).unwrap();
    out.iter().map(|(p, m)| (p.to_vec(), m)).collect()
}

/// Feeds frames (each a list of NAL units) through packetizer and
/// depacketizer in order, with consecutive sequence numbers from `seq`.
fn feed(depacketizer: &mut H264Depacketizer, seq: &mut u16, ts: u32, frame: &[(Vec<u8>, bool)]) {
    for (payload, marker) in frame {
        depacketizer.push(*seq, ts, *marker, payload).unwrap();
        *seq = seq.wrapping_add(1);
    }
}

fn drain(depacketizer: &mut H264Depacketizer) -> Vec<Assembled> {
    std::iter::from_fn(|| depacketizer.poll()).collect()
}

fn frame_units(output: &Assembled) -> Vec<Vec<u8>> {
    match output {
        Assembled::Frame(unit) => unit.nal_units().map(<[u8]>::to_vec).collect(),
        Assembled::KeyframeNeeded => panic!("expected a frame"),
    }
}

fn mode1() -> H264Packetizer {
    H264Packetizer::new(1200, PacketizationMode::NonInterleaved).unwrap()
}

#[test]
fn annex_b_splits_on_both_start_code_lengths_and_drops_trailing_zeros() {
    let stream = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 0, 0];
    let units: Vec<&[u8]> = annex_b_nal_units(&stream).collect();
    assert_eq!(units, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
    assert_eq!(annex_b_nal_units(&[1, 2, 3]).count(), 0);
    assert_eq!(annex_b_nal_units(&[0, 0, 1, 0, 0, 1]).count(), 0);
}

#[test]
fn sps_pps_share_a_stap_a_and_a_large_idr_is_fragmented() {
    let idr = slice(NAL_IDR, 3000);
    let out = packets(&mode1(), &[sps(), pps(), idr.clone()]);
    assert_eq!(out.len(), 1 + 3);
    let (stap, marker) = &out[0];
    assert!(!marker);
    assert_eq!(nal_type(stap[0]), STAP_A);
    assert_eq!(stap[0] & 0x60, 0x60, "NRI is the highest of the units'");
    assert_eq!(&stap[1..3], &(sps().len() as u16).to_be_bytes());
    let fragments = &out[1..];
    assert_eq!(fragments[0].0[1], 0x80 | NAL_IDR);
    assert_eq!(fragments[1].0[1], NAL_IDR);
    assert_eq!(fragments[2].0[1], 0x40 | NAL_IDR);
    assert!(fragments.iter().all(|(p, _)| p.len() <= 1200 && nal_type(p[0]) == FU_A));
    assert_eq!(fragments.iter().map(|(_, m)| *m).collect::<Vec<_>>(), vec![false, false, true]);
    let body: Vec<u8> = fragments.iter().flat_map(|(p, _)| p[2..].to_vec()).collect();
    assert_eq!(body, idr[1..]);
}

#[test]
fn mode_0_sends_single_nal_units_and_refuses_oversized_ones() {
    let packetizer = H264Packetizer::new(1200, PacketizationMode::SingleNalUnit).unwrap();
    let out = packets(&packetizer, &[sps(), pps(), slice(NAL_IDR, 1200)]);
    assert_eq!(out, vec![(sps(), false), (pps(), false), (slice(NAL_IDR, 1200), true)]);
    let mut batch = RtpPayloads::new();
    let err = packetizer.packetize([&slice(NAL_IDR, 1201)[..]], &mut batch).unwrap_err();
    assert_eq!(err, H264Error::NalTooLarge { len: 1201, max: 1200 });
    assert!(batch.is_empty());
}

#[test]
fn the_packetizer_refuses_what_is_not_a_nal_unit() {
    let packetizer = mode1();
    let mut out = RtpPayloads::new();
    assert_eq!(packetizer.packetize([&[][..]], &mut out), Err(H264Error::Empty));
    assert_eq!(packetizer.packetize([&[0x7c, 1][..]], &mut out), Err(H264Error::UnsupportedType(FU_A)));
    assert_eq!(packetizer.packetize([&[0xe5, 1][..]], &mut out), Err(H264Error::ForbiddenBit));
    assert_eq!(packetizer.packetize_annex_b(&[1, 2, 3], &mut out), Err(H264Error::NoNalUnits));
    assert_eq!(H264Packetizer::new(2, PacketizationMode::NonInterleaved), Err(H264Error::PayloadSizeTooSmall(2)));
}

#[test]
fn a_keyframe_round_trips_into_annex_b() {
    let units = vec![sps(), pps(), slice(NAL_IDR, 5000)];
    let mut depacketizer = H264Depacketizer::default();
    let mut seq = 65530;
    feed(&mut depacketizer, &mut seq, 9000, &packets(&mode1(), &units));
    let out = drain(&mut depacketizer);
    assert_eq!(out.len(), 1);
    let Assembled::Frame(frame) = &out[0] else { panic!("no frame") };
    assert!(frame.is_keyframe());
    assert_eq!(frame.timestamp(), 9000);
    let mut annex_b = Vec::new();
    for unit in &units {
        annex_b.extend_from_slice(&START_CODE);
        annex_b.extend_from_slice(unit);
    }
    assert_eq!(frame.annex_b(), annex_b);
    assert_eq!(frame_units(&out[0]), units);
}

#[test]
fn non_keyframes_before_the_first_idr_are_dropped_with_a_request() {
    let mut depacketizer = H264Depacketizer::default();
    let mut seq = 0;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mode1(), &[slice(NAL_SLICE, 100)]));
    assert_eq!(drain(&mut depacketizer), vec![Assembled::KeyframeNeeded]);
    feed(&mut depacketizer, &mut seq, 3000, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    feed(&mut depacketizer, &mut seq, 6000, &packets(&mode1(), &[slice(NAL_SLICE, 100)]));
    let out = drain(&mut depacketizer);
    assert_eq!(out.len(), 2);
    assert!(matches!(&out[0], Assembled::Frame(f) if f.is_keyframe()));
    assert!(matches!(&out[1], Assembled::Frame(f) if !f.is_keyframe()));
}

#[test]
fn loss_inside_a_frame_drops_it_until_the_next_idr() {
    let mut depacketizer = H264Depacketizer::new(DepacketizerConfig { reorder_window: 4, ..Default::default() });
    let mut seq = 100;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    assert_eq!(drain(&mut depacketizer).len(), 1);
    // A P frame of three fragments loses its middle one.
    let frame = packets(&mode1(), &[slice(NAL_SLICE, 3000)]);
    assert_eq!(frame.len(), 3);
    depacketizer.push(seq, 3000, false, &frame[0].0).unwrap();
    depacketizer.push(seq + 2, 3000, true, &frame[2].0).unwrap();
    seq += 3;
    // The next P frames arrive intact but cannot be decoded.
    for i in 2..6 {
        feed(&mut depacketizer, &mut seq, 3000 * i, &packets(&mode1(), &[slice(NAL_SLICE, 200)]));
    }
    let out = drain(&mut depacketizer);
    assert!(!out.is_empty());
    assert!(out.iter().all(|o| *o == Assembled::KeyframeNeeded), "{out:?}");
    assert!(depacketizer.waiting_for_keyframe());
    assert_eq!(depacketizer.stats().lost_packets, 1);
    // Recovery at the next IDR (SPS/PPS + IDR).
    feed(&mut depacketizer, &mut seq, 30_000, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 2500)]));
    feed(&mut depacketizer, &mut seq, 33_000, &packets(&mode1(), &[slice(NAL_SLICE, 200)]));
    feed(&mut depacketizer, &mut seq, 36_000, &packets(&mode1(), &[slice(NAL_SLICE, 200)]));
    let frames: Vec<bool> = drain(&mut depacketizer)
        .into_iter()
        .filter_map(|o| match o {
            Assembled::Frame(f) => Some(f.is_keyframe()),
            Assembled::KeyframeNeeded => None,
        })
        .collect();
    assert_eq!(frames, vec![true, false, false]);
    assert!(!depacketizer.waiting_for_keyframe());
}

#[test]
fn a_hole_is_given_up_once_two_later_frames_are_complete() {
    // The default window is 32 packets; the request must not wait for 32 more.
    let mut depacketizer = H264Depacketizer::default();
    let mut seq = 0;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    assert_eq!(drain(&mut depacketizer).len(), 1);
    seq += 1; // lost
    feed(&mut depacketizer, &mut seq, 3000, &packets(&mode1(), &[slice(NAL_SLICE, 100)]));
    assert_eq!(drain(&mut depacketizer), vec![], "one frame behind a hole may still be reordering");
    feed(&mut depacketizer, &mut seq, 6000, &packets(&mode1(), &[slice(NAL_SLICE, 100)]));
    assert_eq!(drain(&mut depacketizer), vec![Assembled::KeyframeNeeded]);
    assert_eq!(depacketizer.stats().lost_packets, 1);
    assert_eq!(depacketizer.stats().dropped_frames, 2);
}

#[test]
fn a_fragment_without_its_start_damages_the_frame() {
    let mut depacketizer = H264Depacketizer::default();
    let mut seq = 0;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    drain(&mut depacketizer);
    let frame = packets(&mode1(), &[slice(NAL_SLICE, 3000)]);
    // Sequence numbers are contiguous but the sender dropped the start fragment.
    feed(&mut depacketizer, &mut seq, 3000, &frame[1..]);
    assert_eq!(drain(&mut depacketizer), vec![Assembled::KeyframeNeeded]);
    // And a frame whose last fragment never says "end" is damaged too.
    let frame = packets(&mode1(), &[slice(NAL_SLICE, 3000)]);
    depacketizer.push(seq, 6000, false, &frame[0].0).unwrap();
    depacketizer.push(seq + 1, 6000, true, &frame[1].0).unwrap();
    assert_eq!(drain(&mut depacketizer), vec![Assembled::KeyframeNeeded]);
    assert_eq!(depacketizer.stats().dropped_frames, 2);
}

#[test]
fn reordered_packets_are_put_back_in_order() {
    let mut depacketizer = H264Depacketizer::default();
    let mut seq = 499;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    assert_eq!(drain(&mut depacketizer).len(), 1);
    let units = vec![slice(NAL_SLICE, 300), slice(NAL_SLICE, 6000)];
    let frame = packets(&mode1(), &units);
    let order = [3, 0, 2, 1, 5, 4, 6];
    assert_eq!(frame.len(), order.len());
    for &i in &order {
        let (payload, marker) = &frame[i];
        depacketizer.push(500 + i as u16, 1234, *marker, payload).unwrap();
    }
    // A duplicate after the frame went out is late, not a new frame.
    depacketizer.push(501, 1234, false, &frame[1].0).unwrap();
    let out = drain(&mut depacketizer);
    assert_eq!(out.len(), 1);
    assert_eq!(frame_units(&out[0]), units);
    assert_eq!(depacketizer.stats().late_packets, 1);
}

#[test]
fn a_missing_marker_still_ends_the_frame_at_the_next_timestamp() {
    let mut depacketizer = H264Depacketizer::default();
    let idr = slice(NAL_IDR, 50);
    depacketizer.push(1, 0, false, &idr).unwrap();
    depacketizer.push(2, 3000, false, &slice(NAL_SLICE, 50)).unwrap();
    let out = drain(&mut depacketizer);
    assert_eq!(out.len(), 1);
    assert_eq!(frame_units(&out[0]), vec![idr]);
}

#[test]
fn a_frame_that_lost_its_head_is_not_taken_as_a_keyframe() {
    let mut depacketizer = H264Depacketizer::new(DepacketizerConfig { reorder_window: 2, ..Default::default() });
    // Two IDR slices; the first (starting at macroblock 0) is lost.
    let mut second = slice(NAL_IDR, 50);
    second[1] = 0x40; // first_mb_in_slice = 1
    depacketizer.push(11, 0, true, &second).unwrap();
    depacketizer.push(12, 3000, false, &slice(NAL_SLICE, 50)).unwrap();
    depacketizer.push(13, 3000, true, &slice(NAL_SLICE, 50)).unwrap();
    // A packet before the first one pushed counts as late, so the "head" is only
    // seen missing when the window moves: start over with a gap.
    depacketizer.push(20, 6000, true, &second).unwrap();
    depacketizer.push(21, 9000, true, &slice(NAL_SLICE, 50)).unwrap();
    depacketizer.push(22, 12000, true, &slice(NAL_SLICE, 50)).unwrap();
    let out = drain(&mut depacketizer);
    assert!(out.iter().all(|o| *o == Assembled::KeyframeNeeded), "{out:?}");
}

#[test]
fn malformed_payloads_are_refused() {
    let mut depacketizer = H264Depacketizer::default();
    let cases: [(&[u8], H264Error); 10] = [
        (&[], H264Error::Empty),
        (&[0x85], H264Error::ForbiddenBit),
        (&[0x00, 1], H264Error::UnsupportedType(0)),
        (&[0x19, 0, 1, 0x65], H264Error::UnsupportedType(25)),
        (&[0x1d, 0x85, 1], H264Error::UnsupportedType(29)),
        (&[0x18], H264Error::MalformedStapA),
        (&[0x18, 0, 5, 0x67, 1], H264Error::MalformedStapA),
        (&[0x18, 0, 0], H264Error::MalformedStapA),
        (&[0x1c, 0x85], H264Error::MalformedFuA),
        (&[0x1c, 0xc5, 1], H264Error::MalformedFuA),
    ];
    for (seq, (payload, error)) in cases.into_iter().enumerate() {
        assert_eq!(depacketizer.push(seq as u16, 0, true, payload), Err(error), "{payload:?}");
    }
    assert_eq!(depacketizer.push(20, 0, true, &[0x18, 0, 1, 0x1c]), Err(H264Error::UnsupportedType(FU_A)));
    assert_eq!(depacketizer.push(21, 0, true, &[0x1c, 0x9c, 1]), Err(H264Error::UnsupportedType(FU_A)));
    assert_eq!(depacketizer.stats().malformed_packets, 12);
}

#[test]
fn memory_stays_bounded() {
    let config = DepacketizerConfig { reorder_window: 8, max_frame_bytes: 4000, max_ready: 2 };
    let mut depacketizer = H264Depacketizer::new(config);
    let mut seq = 0;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mode1(), &[slice(NAL_IDR, 5000)]));
    assert_eq!(drain(&mut depacketizer), vec![Assembled::KeyframeNeeded]);
    // Many frames nobody polls: the oldest go, the queue stays at `max_ready`.
    for i in 1..50 {
        feed(&mut depacketizer, &mut seq, i * 3000, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    }
    assert!(drain(&mut depacketizer).len() <= 2);
    // A jump far ahead gives up the ring at once instead of stepping through it.
    depacketizer.push(seq.wrapping_add(30_000), 1, true, &slice(NAL_IDR, 10)).unwrap();
    assert!(depacketizer.stats().lost_packets >= 29_000);
}

#[test]
fn a_sender_that_restarts_its_sequence_is_followed() {
    let mut depacketizer = H264Depacketizer::default();
    let mut seq = 40_000;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    let mut seq = 10;
    feed(&mut depacketizer, &mut seq, 90_000, &packets(&mode1(), &[sps(), pps(), slice(NAL_IDR, 100)]));
    let frames = drain(&mut depacketizer).iter().filter(|o| matches!(o, Assembled::Frame(_))).count();
    assert_eq!(frames, 2);
}

fn nal_unit_strategy() -> impl Strategy<Value = Vec<u8>> {
    (1u8..=23, 0u8..4, proptest::collection::vec(any::<u8>(), 0..3000)).prop_map(|(kind, nri, body)| {
        let mut unit = vec![(nri << 5) | kind];
        unit.extend(body);
        unit
    })
}

proptest! {
    #[test]
    fn any_access_unit_round_trips(
        units in proptest::collection::vec(nal_unit_strategy(), 1..8),
        max_payload in 3usize..1500,
        mode_1 in any::<bool>(),
        first_seq in any::<u16>(),
    ) {
        let mode = if mode_1 { PacketizationMode::NonInterleaved } else { PacketizationMode::SingleNalUnit };
        let packetizer = H264Packetizer::new(max_payload, mode).unwrap();
        let mut out = RtpPayloads::new();
        let result = packetizer.packetize(units.iter().map(Vec::as_slice), &mut out);
        if !mode_1 && units.iter().any(|u| u.len() > max_payload) {
            prop_assert!(result.is_err());
            return Ok(());
        }
        result.unwrap();
        prop_assert!(out.iter().all(|(p, _)| p.len() <= max_payload));
        prop_assert_eq!(out.iter().filter(|(_, m)| *m).count(), 1);
        let mut depacketizer = H264Depacketizer::default();
        // An IDR first, so what follows need not be a keyframe to pass.
        depacketizer.push(first_seq.wrapping_sub(1), 76, true, &[0x65, 0x88]).unwrap();
        prop_assert!(depacketizer.poll().is_some());
        let mut seq = first_seq;
        for (payload, marker) in out.iter() {
            depacketizer.push(seq, 77, marker, payload).unwrap();
            seq = seq.wrapping_add(1);
        }
        let assembled = drain(&mut depacketizer);
        prop_assert_eq!(assembled.len(), 1);
        prop_assert_eq!(frame_units(&assembled[0]), units);
    }

    #[test]
    fn arbitrary_payloads_never_panic(
        packets in proptest::collection::vec((any::<u16>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..64),
    ) {
        let mut depacketizer = H264Depacketizer::new(DepacketizerConfig { reorder_window: 4, max_frame_bytes: 512, max_ready: 4 });
        for (seq, marker, payload) in &packets {
            let _ = depacketizer.push(*seq, u32::from(*seq / 4), *marker, payload);
            while depacketizer.poll().is_some() {}
        }
    }
}
