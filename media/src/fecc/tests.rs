//! Two sessions facing each other, as a bridge and an endpoint would, in
//! virtual time.

use std::time::{Duration, Instant};

use super::*;
use crate::srtp::SrtpProfile;

fn keys(seed: u8) -> SrtpKeys {
    SrtpKeys { profile: SrtpProfile::AesCm128HmacSha1_80, key: vec![seed; 16], salt: vec![seed ^ 0x5a; 14] }
}

/// Two ends of one stream: what `a` sends `b` takes, and back.
fn pair(now: Instant, srtp: bool) -> (FeccSession, FeccSession) {
    let config = |ssrc, rx, tx| FeccConfig {
        payload_type: 107,
        ssrc,
        srtp_in: srtp.then(|| keys(rx)),
        srtp_out: srtp.then(|| keys(tx)),
        sends: true,
    };
    (FeccSession::new(config(1, 2, 1), now).unwrap(), FeccSession::new(config(2, 1, 2), now).unwrap())
}

/// Delivers everything `from` has to send to `to`; what `to` made of it.
fn deliver(now: Instant, from: &mut FeccSession, to: &mut FeccSession) -> Vec<FeccInput> {
    let mut inputs = Vec::new();
    while let Some(mut datagram) = from.poll_transmit() {
        if let Some(input) = to.handle_datagram(now, &mut datagram).unwrap() {
            inputs.push(input);
        }
    }
    inputs
}

#[test]
fn each_end_learns_the_other_has_h281_once_and_the_announcement_stops() {
    let start = Instant::now();
    let (mut bridge, mut endpoint) = pair(start, true);
    assert_eq!(bridge.next_timeout(), Some(start));
    bridge.handle_timeout(start);
    endpoint.handle_timeout(start);
    // The endpoint hears our list, extra capabilities and the command for its list.
    assert_eq!(deliver(start, &mut bridge, &mut endpoint), [FeccInput::CameraControlAvailable]);
    // It answered the command with its list; with its own announcement, ours learns of it once.
    assert_eq!(deliver(start, &mut endpoint, &mut bridge), [FeccInput::CameraControlAvailable]);
    assert!(bridge.camera_control_available());
    // Our answer to its command tells it nothing new.
    assert_eq!(deliver(start, &mut bridge, &mut endpoint), []);
    // Both have what they wanted: nothing more is announced.
    let later = start + Duration::from_secs(2);
    bridge.handle_timeout(later);
    assert!(bridge.poll_transmit().is_none());
    assert_eq!(bridge.next_timeout(), None);
}

#[test]
fn an_endpoint_that_never_answers_is_announced_to_five_times_then_left_alone() {
    let start = Instant::now();
    let (mut bridge, _) = pair(start, false);
    let mut sent = 0;
    let mut now = start;
    while let Some(at) = bridge.next_timeout() {
        now = at;
        bridge.handle_timeout(now);
        while bridge.poll_transmit().is_some() {
            sent += 1;
        }
    }
    assert_eq!(sent, 5 * 3, "list, capabilities and the command, five times");
    assert_eq!(now, start + Duration::from_secs(8));
}

#[test]
fn a_nudge_starts_and_stops_the_far_camera_with_the_same_moves() {
    let start = Instant::now();
    let (mut bridge, mut endpoint) = pair(start, true);
    bridge.handle_timeout(start);
    deliver(start, &mut bridge, &mut endpoint);
    let moves = Moves::of(&[Move::PanLeft, Move::ZoomIn]);
    bridge.nudge(start, moves);
    assert_eq!(deliver(start, &mut bridge, &mut endpoint), [FeccInput::Camera(H281::Start { moves, timeout: 0 })]);
    assert_eq!(bridge.next_timeout(), Some(start + NUDGE));
    bridge.handle_timeout(start + NUDGE);
    assert_eq!(deliver(start + NUDGE, &mut bridge, &mut endpoint), [FeccInput::Camera(H281::Stop(moves))]);
    // A relayed message goes as it came.
    bridge.relay(start + NUDGE, H281::Continue(moves));
    assert_eq!(deliver(start + NUDGE, &mut bridge, &mut endpoint), [FeccInput::Camera(H281::Continue(moves))]);
}

#[test]
fn packets_carry_the_marker_the_payload_type_and_timestamps_that_always_grow() {
    let start = Instant::now();
    let (mut bridge, _) = pair(start, false);
    bridge.handle_timeout(start);
    bridge.nudge(start + Duration::from_millis(100), Moves::of(&[Move::TiltUp]));
    let mut last = None;
    let mut count = 0;
    while let Some(datagram) = bridge.poll_transmit() {
        let packet = RtpPacket::parse(&datagram).unwrap();
        assert!(packet.marker());
        assert_eq!(packet.payload_type(), 107);
        if let Some((seq, ts)) = last {
            assert_eq!(packet.sequence_number(), u16::wrapping_add(seq, 1));
            assert!(packet.timestamp() > ts, "timestamps must grow");
        }
        last = Some((packet.sequence_number(), packet.timestamp()));
        count += 1;
    }
    assert_eq!(count, 4);
    // 100 ms at 4800 Hz.
    assert_eq!(last.unwrap().1, 480);
}

#[test]
fn forged_replayed_or_foreign_datagrams_are_refused() {
    let start = Instant::now();
    let (mut bridge, mut endpoint) = pair(start, true);
    endpoint.nudge(start, Moves::of(&[Move::PanRight]));
    let datagram = endpoint.poll_transmit().unwrap();
    let mut tampered = datagram.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(bridge.handle_datagram(start, &mut tampered), Err(FeccError::Srtp(_))));
    assert!(bridge.handle_datagram(start, &mut datagram.clone()).unwrap().is_some());
    assert!(matches!(bridge.handle_datagram(start, &mut datagram.clone()), Err(FeccError::Srtp(_))), "replay");

    let (mut plain, _) = pair(start, false);
    let mut other_pt = Vec::new();
    let header = RtpHeader { payload_type: 96, ssrc: 9, ..RtpHeader::default() };
    header.write_packet(&Frame::H281(H281::Stop(Moves::NONE)).encode(), &mut other_pt).unwrap();
    assert!(matches!(plain.handle_datagram(start, &mut other_pt), Err(FeccError::PayloadType(96))));
    assert!(matches!(plain.handle_datagram(start, &mut vec![0x80]), Err(FeccError::Malformed)));
}

#[test]
fn a_receive_only_stream_sends_nothing() {
    let start = Instant::now();
    let config = FeccConfig { payload_type: 107, ssrc: 1, srtp_in: None, srtp_out: None, sends: false };
    let mut session = FeccSession::new(config, start).unwrap();
    session.handle_timeout(start);
    session.nudge(start, Moves::of(&[Move::PanLeft]));
    assert!(session.poll_transmit().is_none());
}
