//! Far-end camera control in virtual time: H.224 negotiated and attached,
//! a camera's availability, the API's moves, an endpoint's controls relayed
//! to the camera it sees, `controlRemoteCameraAllowed`, `sipH224`.

use confero_media::engine::EndpointId;
use confero_media::runtime::{FeccStream, MediaEvent, MediaTransport};
use confero_sdp::Direction;
use confero_store::schema::Kind;

use super::harness::Harness;
use super::{conference, endpoint_of};
use crate::testing::{create, leg_changes, set};

/// A phone's offer with an H.224 stream (RFC 4573) after its audio.
fn offer_with_h224(h: &mut Harness, p: usize, version: u64) -> Vec<u8> {
    let offer = h.phones[p].offer(Direction::SendRecv, version);
    let port = h.phones[p].addr.port() + 10_004;
    let mut text = String::from_utf8(offer).unwrap();
    text.push_str(&format!("m=application {port} RTP/AVP 107\r\na=rtpmap:107 H224/4800\r\na=sendrecv\r\n"));
    text.into_bytes()
}

/// The H.224 stream an endpoint was attached with.
pub(super) fn fecc_of(h: &Harness, e: EndpointId) -> Option<FeccStream> {
    match &h.media.state().endpoints.get(&e)?.spec.transport {
        MediaTransport::Rtp(t) => t.fecc.clone(),
        _ => None,
    }
}

/// FECC: an offered H.224 stream is answered on the runtime's FECC port and
/// attached; once the runtime hears an endpoint's H.281 client its leg says
/// `cameraControlAvailable` and `cameraControl` moves its camera; an
/// endpoint's own controls move the camera of the one it sees (the last
/// speaker but itself) unless its `controlRemoteCameraAllowed` is false;
/// `sipH224=false` refuses the stream.
#[test]
fn h224_is_negotiated_and_cameras_are_moved_by_the_api_and_by_each_other() {
    use confero_api::bridge::{BridgeError, CameraMove};
    use confero_media::fecc::{Move, Moves, H281};
    let mut h = Harness::new();
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let (a, b) = (h.phone(), h.phone());
    let offer = offer_with_h224(&mut h, a, 1);
    let call_a = h.dial_in_with(a, "team", offer);
    let offer = offer_with_h224(&mut h, b, 1);
    let call_b = h.dial_in_with(b, "team", offer);
    let answer = h.phones[a].received.iter().rev().find(|m| !m.body.is_empty()).map(|m| m.body.clone()).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.contains("m=application 20004 RTP/AVP 107\r\na=rtpmap:107 H224/4800\r\n"), "{answer}");
    assert!(h.phones[a].answered(call_a));
    let (ea, eb) = (endpoint_of(&h, a).unwrap(), endpoint_of(&h, b).unwrap());
    let stream = fecc_of(&h, ea).expect("an H.224 stream");
    assert_eq!(stream.config.payload_type, 107);
    assert_eq!(stream.addresses.rtp.port(), h.phones[a].addr.port() + 10_004);

    let legs = h.with(|b, now| b.call_legs(now));
    let leg_of =
        |e: EndpointId| legs.iter().find(|l| h.bridge.leg(l.id).and_then(|x| x.endpoint) == Some(e)).unwrap().id;
    let (leg_a, leg_b) = (leg_of(ea), leg_of(eb));
    // Until its H.281 client is heard, a camera cannot be moved.
    let pan = [CameraMove::PanLeft, CameraMove::ZoomIn];
    assert_eq!(h.with(|b, _| b.camera_control(leg_a, &pan)), Err(BridgeError::CameraControlUnavailable));
    for e in [ea, eb] {
        h.media_event(MediaEvent::CameraControlAvailable { conference: conference(), endpoint: e });
    }
    assert!(h.with(|b, now| b.call_legs(now)).iter().all(|l| l.camera_control_available));
    assert!(h.with(|b, _| b.participants()).iter().all(|p| p.camera_control_available));
    h.with(|b, _| b.camera_control(leg_a, &pan)).unwrap();
    let moves = Moves::of(&[Move::PanLeft, Move::ZoomIn]);
    assert_eq!(h.media.state().endpoints[&ea].camera, [H281::Start { moves, timeout: 0 }]);

    // B spoke last, then A: A's controls move B's camera, B's move A's.
    for e in [eb, ea] {
        h.media_event(MediaEvent::ActiveSpeaker { conference: conference(), endpoint: Some(e) });
    }
    let up = H281::Start { moves: Moves::of(&[Move::TiltUp]), timeout: 0 };
    h.media_event(MediaEvent::CameraControl { conference: conference(), endpoint: ea, message: up });
    assert_eq!(h.media.state().endpoints[&eb].camera, [up]);
    h.media_event(MediaEvent::CameraControl {
        conference: conference(),
        endpoint: eb,
        message: H281::Stop(Moves::NONE),
    });
    assert_eq!(h.media.state().endpoints[&ea].camera.last(), Some(&H281::Stop(Moves::NONE)));

    // A leg that may not control remote cameras moves nothing.
    let changes = leg_changes(&[("controlRemoteCameraAllowed", "false")]);
    h.with(|b, now| b.update_call_leg(now, leg_a, &changes)).unwrap();
    h.media_event(MediaEvent::CameraControl { conference: conference(), endpoint: ea, message: up });
    assert_eq!(h.media.state().endpoints[&eb].camera, [up], "nothing more relayed");

    // A re-INVITE gives B a new endpoint: its camera must say again that it
    // can be controlled; the old endpoint's word counts for nothing.
    let reoffer = offer_with_h224(&mut h, b, 2);
    h.on_phone(b, |p, now| p.ua.reinvite(now, call_b, reoffer)).expect("re-INVITE");
    let eb2 = endpoint_of(&h, b).unwrap();
    assert_ne!(eb2, eb);
    assert!(fecc_of(&h, eb2).is_some(), "the new endpoint has its H.224 stream");
    assert_eq!(h.with(|b, _| b.camera_control(leg_b, &pan)), Err(BridgeError::CameraControlUnavailable));
    h.media_event(MediaEvent::CameraControlAvailable { conference: conference(), endpoint: eb });
    assert_eq!(h.with(|b, _| b.camera_control(leg_b, &pan)), Err(BridgeError::CameraControlUnavailable));
    h.media_event(MediaEvent::CameraControlAvailable { conference: conference(), endpoint: eb2 });
    h.with(|b, _| b.camera_control(leg_b, &pan)).unwrap();
    assert_eq!(h.media.state().endpoints[&eb2].camera, [H281::Start { moves, timeout: 0 }]);

    // With sipH224=false the stream is refused with port 0 and not attached.
    let profile = create(&*h.store, Kind::CompatibilityProfile, None, &[("sipH224", "false")]);
    set(&*h.store, Kind::SystemProfiles, &[("compatibilityProfile", &profile.id.to_string())]);
    let c = h.phone();
    let offer = offer_with_h224(&mut h, c, 1);
    h.dial_in_with(c, "team", offer);
    let answer = h.phones[c].received.iter().rev().find(|m| !m.body.is_empty()).map(|m| m.body.clone()).unwrap();
    assert!(String::from_utf8(answer).unwrap().contains("m=application 0 RTP/AVP 107"));
    assert!(fecc_of(&h, endpoint_of(&h, c).unwrap()).is_none());
}
