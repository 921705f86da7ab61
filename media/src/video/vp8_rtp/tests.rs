use proptest::prelude::*;

use super::*;

/// A VP8 keyframe-looking frame of `len` bytes: frame tag with P=0, then
/// the keyframe start code (RFC 6386 §9.1); the rest a pattern.
fn keyframe(len: usize) -> Vec<u8> {
    let mut frame = vec![0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a];
    frame.extend((0..len.saturating_sub(6)).map(|i| (i % 251) as u8));
    frame.truncate(len.max(1));
    frame
}

/// An inter frame of `len` bytes: frame tag with P=1.
fn inter_frame(len: usize) -> Vec<u8> {
    let mut frame = vec![0x31];
    frame.extend((1..len).map(|i| (i % 253) as u8));
    frame
}

fn packets(packetizer: &mut Vp8Packetizer, frame: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut out = RtpPayloads::new();
    packetizer.packetize(frame, &mut out);
    out.iter().map(|(p, m)| (p.to_vec(), m)).collect()
}

fn feed(depacketizer: &mut Vp8Depacketizer, seq: &mut u16, ts: u32, packets: &[(Vec<u8>, bool)]) {
    for (payload, marker) in packets {
        depacketizer.push(*seq, ts, *marker, payload).unwrap();
        *seq = seq.wrapping_add(1);
    }
}

fn drain(depacketizer: &mut Vp8Depacketizer) -> Vec<Vp8Assembled> {
    std::iter::from_fn(|| depacketizer.poll()).collect()
}

fn frame_data(output: &Vp8Assembled) -> &[u8] {
    match output {
        Vp8Assembled::Frame(frame) => frame.data(),
        Vp8Assembled::KeyframeNeeded => panic!("expected a frame"),
    }
}

#[test]
fn descriptors_of_every_form_parse() {
    // The shortest: X=0, S=1, PID=0, then the frame.
    let d = Vp8PayloadDescriptor::parse(&[0x10, 0x50]).unwrap();
    assert_eq!(d, Vp8PayloadDescriptor { start_of_partition: true, len: 1, ..Default::default() });
    assert!(d.starts_frame());
    // X, I with a 7-bit PictureID (M=0) of 0x55; S=0, PID=2: not a frame start.
    let d = Vp8PayloadDescriptor::parse(&[0x82, 0x80, 0x55, 0xaa]).unwrap();
    assert_eq!(d.picture_id, Some(0x55));
    assert_eq!((d.partition_id, d.start_of_partition, d.len), (2, false, 3));
    assert!(!d.starts_frame());
    // X, I with a 15-bit PictureID (M=1) of 0x1234, S=1.
    let d = Vp8PayloadDescriptor::parse(&[0x90, 0x80, 0x92, 0x34, 0x9d]).unwrap();
    assert_eq!((d.picture_id, d.len), (Some(0x1234), 4));
    // All of it: X, N, S, PID=3; I (M=1, 0x7fff), L (TL0PICIDX 7), T and K
    // (TID 2, Y=1, KEYIDX 6).
    let d = Vp8PayloadDescriptor::parse(&[0xb3, 0xf0, 0xff, 0xff, 0x07, 0xa6, 0x00]).unwrap();
    assert_eq!(
        d,
        Vp8PayloadDescriptor {
            non_reference: true,
            start_of_partition: true,
            partition_id: 3,
            picture_id: Some(0x7fff),
            tl0_pic_idx: Some(7),
            temporal_layer: Some((2, true)),
            key_index: Some(6),
            len: 6,
        }
    );
    // T alone (TID 1, Y=0) and K alone (KEYIDX 31): one byte each, the
    // other's bits ignored.
    let d = Vp8PayloadDescriptor::parse(&[0x80, 0x20, 0x5f, 0x01]).unwrap();
    assert_eq!((d.temporal_layer, d.key_index, d.len), (Some((1, false)), None, 3));
    let d = Vp8PayloadDescriptor::parse(&[0x80, 0x10, 0xdf, 0x01]).unwrap();
    assert_eq!((d.temporal_layer, d.key_index, d.len), (None, Some(31), 3));
    // X with nothing in it: the extension byte alone. Reserved bits ignored.
    let d = Vp8PayloadDescriptor::parse(&[0xd8, 0x0f, 0x01]).unwrap();
    assert_eq!((d.picture_id, d.len), (None, 2));
}

#[test]
fn malformed_payloads_are_refused() {
    let cases: [(&[u8], Vp8RtpError); 9] = [
        (&[], Vp8RtpError::Empty),
        (&[0x10], Vp8RtpError::NoFrameData),
        (&[0x80], Vp8RtpError::TruncatedDescriptor),
        (&[0x90, 0x80], Vp8RtpError::TruncatedDescriptor),
        (&[0x90, 0x80, 0x80], Vp8RtpError::TruncatedDescriptor),
        (&[0x90, 0x80, 0x80, 0x01], Vp8RtpError::NoFrameData),
        (&[0x90, 0x40], Vp8RtpError::TruncatedDescriptor),
        (&[0x90, 0xf0, 0x01, 0x02], Vp8RtpError::TruncatedDescriptor),
        (&[0x90, 0x10, 0x01], Vp8RtpError::NoFrameData),
    ];
    let mut depacketizer = Vp8Depacketizer::default();
    for (i, (payload, error)) in cases.iter().enumerate() {
        assert_eq!(Vp8PayloadDescriptor::parse(payload), Err(*error), "case {i}");
        assert_eq!(depacketizer.push(i as u16, 0, true, payload), Err(*error), "case {i}");
    }
    assert_eq!(depacketizer.stats().malformed_packets, cases.len() as u64);
    assert!(drain(&mut depacketizer).is_empty());
}

#[test]
fn the_packetizer_writes_the_descriptor_by_hand() {
    assert_eq!(Vp8Packetizer::new(4), Err(Vp8RtpError::PayloadSizeTooSmall(4)));
    let mut packetizer = Vp8Packetizer::new(8).unwrap();
    // Ten bytes in payloads of at most 8 (4 of frame each): three pieces of
    // 4, 3 and 3 bytes. X=1, S=1 on the first, PID=0; I=1; M=1, PictureID 0.
    let frame: Vec<u8> = (1..=10).collect();
    let expected: Vec<(Vec<u8>, bool)> = vec![
        (vec![0x90, 0x80, 0x80, 0x00, 1, 2, 3, 4], false),
        (vec![0x80, 0x80, 0x80, 0x00, 5, 6, 7], false),
        (vec![0x80, 0x80, 0x80, 0x00, 8, 9, 10], true),
    ];
    assert_eq!(packets(&mut packetizer, &frame), expected);
    // The next frame is PictureID 1; one that fits is one payload.
    assert_eq!(packets(&mut packetizer, &[7]), vec![(vec![0x90, 0x80, 0x80, 0x01, 7], true)]);
    // A dropped frame gives nothing and uses no PictureID.
    assert!(packets(&mut packetizer, &[]).is_empty());
    assert_eq!(packets(&mut packetizer, &[7])[0].0[..4], [0x90, 0x80, 0x80, 0x02]);
    // The 15-bit PictureID wraps.
    packetizer.picture_id = 0x7fff;
    assert_eq!(packets(&mut packetizer, &[7])[0].0[..4], [0x90, 0x80, 0xff, 0xff]);
    assert_eq!(packets(&mut packetizer, &[7])[0].0[..4], [0x90, 0x80, 0x80, 0x00]);
}

#[test]
fn pieces_are_even_and_within_the_limit() {
    let mut packetizer = Vp8Packetizer::new(104).unwrap();
    for len in [1, 99, 100, 101, 2500, 2501, 2599] {
        let frame = inter_frame(len);
        let out = packets(&mut packetizer, &frame);
        assert_eq!(out.len(), len.div_ceil(100), "{len} bytes");
        let sizes: Vec<usize> = out.iter().map(|(p, _)| p.len()).collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(*max <= 104 && max - min <= 1, "{len} bytes: {sizes:?}");
        assert_eq!(out.iter().filter(|(p, _)| p[0] & 0x10 != 0).count(), 1);
        assert!(out[0].0[0] & 0x10 != 0);
        assert_eq!(
            out.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
            (0..out.len()).map(|i| i + 1 == out.len()).collect::<Vec<_>>()
        );
        let data: Vec<u8> = out.iter().flat_map(|(p, _)| p[4..].to_vec()).collect();
        assert_eq!(data, frame);
    }
}

#[test]
fn frames_of_one_several_and_many_packets_round_trip() {
    let mut packetizer = Vp8Packetizer::new(1200).unwrap();
    let mut depacketizer = Vp8Depacketizer::default();
    let mut seq = 65_530;
    let frames =
        [keyframe(40_000), inter_frame(300), inter_frame(3000), inter_frame(1), keyframe(1196), keyframe(1197)];
    for (i, frame) in frames.iter().enumerate() {
        let ts = 3000 * i as u32;
        feed(&mut depacketizer, &mut seq, ts, &packets(&mut packetizer, frame));
        let out = drain(&mut depacketizer);
        assert_eq!(out.len(), 1, "frame {i}");
        let Vp8Assembled::Frame(got) = &out[0] else { panic!("frame {i}: {out:?}") };
        assert_eq!(got.data(), frame.as_slice());
        assert_eq!(got.timestamp(), ts);
        assert_eq!(got.is_keyframe(), frame[0] & 1 == 0);
    }
    assert!(!depacketizer.waiting_for_keyframe());
    assert_eq!(depacketizer.stats(), DepacketizerStats { frames: frames.len() as u64, ..Default::default() });
}

#[test]
fn reordered_packets_are_put_back_in_order() {
    let mut packetizer = Vp8Packetizer::new(100).unwrap();
    let mut depacketizer = Vp8Depacketizer::default();
    let key = keyframe(900);
    let mut out = packets(&mut packetizer, &key);
    assert_eq!(out.len(), 10);
    // Reverse the middle eight, keep the marker last.
    out[1..9].reverse();
    for (i, (payload, marker)) in out.iter().enumerate() {
        let seq = if (1..9).contains(&i) { 9 - i as u16 } else { i as u16 };
        depacketizer.push(seq, 90, *marker, payload).unwrap();
    }
    let got = drain(&mut depacketizer);
    assert_eq!(got.len(), 1);
    assert_eq!(frame_data(&got[0]), key.as_slice());
    // A duplicate afterwards is late, not a new frame.
    depacketizer.push(3, 90, false, &out[3].0).unwrap();
    assert!(drain(&mut depacketizer).is_empty());
    assert_eq!(depacketizer.stats().late_packets, 1);
}

#[test]
fn loss_drops_frames_until_a_keyframe() {
    let mut packetizer = Vp8Packetizer::new(200).unwrap();
    let mut depacketizer = Vp8Depacketizer::new(DepacketizerConfig { reorder_window: 4, ..Default::default() });
    let mut seq = 0u16;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mut packetizer, &keyframe(500)));
    assert!(matches!(drain(&mut depacketizer)[..], [Vp8Assembled::Frame(_)]));
    // An inter frame of three packets loses its second.
    let damaged = packets(&mut packetizer, &inter_frame(500));
    depacketizer.push(seq, 3000, false, &damaged[0].0).unwrap();
    depacketizer.push(seq + 2, 3000, true, &damaged[2].0).unwrap();
    seq += 3;
    // Inter frames go on; once the hole is given up, the damaged frame and
    // these are dropped, with one request for a keyframe.
    for i in 2..6 {
        feed(&mut depacketizer, &mut seq, 3000 * i, &packets(&mut packetizer, &inter_frame(150)));
    }
    let out = drain(&mut depacketizer);
    assert_eq!(out, vec![Vp8Assembled::KeyframeNeeded], "{out:?}");
    assert!(depacketizer.waiting_for_keyframe());
    let stats = depacketizer.stats();
    assert_eq!((stats.lost_packets, stats.frames), (1, 1));
    assert!(stats.dropped_frames >= 4, "{stats:?}");
    // The keyframe brings it back.
    let key = keyframe(450);
    feed(&mut depacketizer, &mut seq, 3000 * 6, &packets(&mut packetizer, &key));
    let out = drain(&mut depacketizer);
    assert_eq!(out.len(), 1);
    assert_eq!(frame_data(&out[0]), key.as_slice());
    assert!(!depacketizer.waiting_for_keyframe());
    feed(&mut depacketizer, &mut seq, 3000 * 7, &packets(&mut packetizer, &inter_frame(10)));
    assert!(matches!(drain(&mut depacketizer)[..], [Vp8Assembled::Frame(_)]));
}

#[test]
fn a_keyframe_that_lost_its_head_is_not_taken() {
    let mut packetizer = Vp8Packetizer::new(100).unwrap();
    let mut depacketizer = Vp8Depacketizer::new(DepacketizerConfig { reorder_window: 2, ..Default::default() });
    // The first packet of the first keyframe never comes: the stream is
    // joined at its second packet.
    let key = packets(&mut packetizer, &keyframe(300));
    let mut seq = 1;
    feed(&mut depacketizer, &mut seq, 0, &key[1..]);
    assert_eq!(drain(&mut depacketizer), vec![Vp8Assembled::KeyframeNeeded]);
    assert_eq!(depacketizer.stats().frames, 0);
}

#[test]
fn inter_frames_before_the_first_keyframe_are_dropped_with_a_request() {
    let mut packetizer = Vp8Packetizer::new(1200).unwrap();
    let mut depacketizer = Vp8Depacketizer::default();
    let mut seq = 0;
    feed(&mut depacketizer, &mut seq, 0, &packets(&mut packetizer, &inter_frame(50)));
    feed(&mut depacketizer, &mut seq, 3000, &packets(&mut packetizer, &inter_frame(50)));
    assert_eq!(drain(&mut depacketizer), vec![Vp8Assembled::KeyframeNeeded]);
    feed(&mut depacketizer, &mut seq, 6000, &packets(&mut packetizer, &keyframe(50)));
    assert!(matches!(drain(&mut depacketizer)[..], [Vp8Assembled::Frame(ref f)] if f.is_keyframe()));
}

#[test]
fn a_missing_marker_still_ends_the_frame_at_the_next_timestamp() {
    let mut packetizer = Vp8Packetizer::new(100).unwrap();
    let mut depacketizer = Vp8Depacketizer::default();
    let key = keyframe(250);
    let mut first = packets(&mut packetizer, &key);
    first.last_mut().unwrap().1 = false;
    let mut seq = 0;
    feed(&mut depacketizer, &mut seq, 0, &first);
    assert!(drain(&mut depacketizer).is_empty());
    feed(&mut depacketizer, &mut seq, 3000, &packets(&mut packetizer, &inter_frame(20)));
    let out = drain(&mut depacketizer);
    assert_eq!(out.len(), 2);
    assert_eq!(frame_data(&out[0]), key.as_slice());
    assert_eq!(frame_data(&out[1]), inter_frame(20).as_slice());
}

#[test]
fn hand_written_payloads_of_another_sender_assemble() {
    // A sender with 7-bit PictureIDs, TL0PICIDX and TID (as some SFUs
    // forward), its keyframe in two packets, the second not starting a
    // partition.
    let mut depacketizer = Vp8Depacketizer::default();
    depacketizer.push(10, 500, false, &[0x90, 0xe0, 0x05, 0x01, 0x40, 0x50, 0x02, 0x00]).unwrap();
    depacketizer.push(11, 500, true, &[0x80, 0xe0, 0x05, 0x01, 0x40, 0x9d, 0x01, 0x2a]).unwrap();
    let out = drain(&mut depacketizer);
    let [Vp8Assembled::Frame(frame)] = &out[..] else { panic!("{out:?}") };
    assert_eq!(frame.data(), [0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
    assert!(frame.is_keyframe());
    assert_eq!(frame.timestamp(), 500);
}

#[test]
fn memory_stays_bounded() {
    let config = DepacketizerConfig { reorder_window: 8, max_frame_bytes: 1000, max_ready: 2 };
    let mut depacketizer = Vp8Depacketizer::new(config);
    let mut packetizer = Vp8Packetizer::new(100).unwrap();
    let mut seq = 0;
    // Too large a frame is dropped; frames never polled are capped.
    feed(&mut depacketizer, &mut seq, 0, &packets(&mut packetizer, &keyframe(1500)));
    for i in 1..20 {
        feed(&mut depacketizer, &mut seq, 3000 * i, &packets(&mut packetizer, &keyframe(500)));
    }
    assert!(depacketizer.assembly.ready.len() <= 2);
    assert!(depacketizer.assembly.spare.len() <= 2);
    assert!(depacketizer.stats().dropped_frames >= 1);
}

proptest! {
    #[test]
    fn any_frame_round_trips(frame in proptest::collection::vec(any::<u8>(), 1..5000), max in 5usize..1500, seq in any::<u16>()) {
        let mut packetizer = Vp8Packetizer::new(max).unwrap();
        let mut frame = frame;
        frame[0] &= !1;
        let out = packets(&mut packetizer, &frame);
        prop_assert!(out.iter().all(|(p, _)| p.len() <= max));
        let mut depacketizer = Vp8Depacketizer::default();
        let mut seq = seq;
        feed(&mut depacketizer, &mut seq, 7, &out);
        let got = drain(&mut depacketizer);
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!(frame_data(&got[0]), frame.as_slice());
    }

    #[test]
    fn arbitrary_payloads_never_panic(
        packets in proptest::collection::vec((any::<u8>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..60)
    ) {
        let mut depacketizer = Vp8Depacketizer::new(DepacketizerConfig { reorder_window: 4, max_frame_bytes: 200, max_ready: 3 });
        let (mut seq, mut ts) = (0u16, 0u32);
        for (step, marker, payload) in packets {
            seq = seq.wrapping_add(u16::from(step % 4)).wrapping_sub(1);
            ts = ts.wrapping_add(u32::from(step >> 6) * 1500);
            let _ = depacketizer.push(seq, ts, marker, &payload);
            while let Some(out) = depacketizer.poll() {
                if let Vp8Assembled::Frame(frame) = out {
                    prop_assert!(!frame.data().is_empty() && frame.data().len() <= 200);
                    depacketizer.recycle(frame);
                }
            }
        }
    }
}
