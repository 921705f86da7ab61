//! Far-end camera control (FECC): which legs' cameras can be moved, the
//! API's moves (`PUT /callLegs/<id>/cameraControl`), and an endpoint's own
//! camera controls relayed to the camera it sees.
//!
//! The H.224 stream is negotiated beside audio and video on SIP legs, when
//! the system's compatibility profile allows it (`sipH224`, allowed unless
//! `false`: `compatibility.rs`); the media runtime's FECC thread speaks H.224/H.281 on it and
//! tells the bridge when an endpoint says it has an H.281 client
//! (`cameraControlAvailable`) and when its user works their controls.
//!
//! Whose camera an endpoint's controls move: as Cisco's bridges do, the
//! camera of the participant it sees largest — the current speaker, or for
//! the speaker itself the one before — among the legs of its call whose
//! cameras can be moved; with no speaker yet, the only such leg if there is
//! one. A leg may do this unless `controlRemoteCameraAllowed` is `false`
//! (its own setting, else its call leg profiles).

use confero_api::bridge::{BridgeError, CameraMove};
use confero_media::engine::EndpointId;
use confero_media::fecc::{FeccConfig, Move, Moves, H281};
use confero_media::runtime::{ConferenceId, FeccStream, RtpAddresses};
use confero_sdp::{Direction as SdpDirection, NegotiatedFecc};
use uuid::Uuid;

use super::Bridge;

/// Speakers remembered per call, most recent first.
const SPEAKERS_KEPT: usize = 8;

/// What the media runtime needs for a negotiated H.224 stream.
pub(super) fn fecc_stream(n: &NegotiatedFecc, ssrc: u32) -> FeccStream {
    let (srtp_in, srtp_out) = match n.srtp.as_ref().map(super::sip_legs::srtp_keys) {
        Some((rx, tx)) => (Some(rx), Some(tx)),
        None => (None, None),
    };
    FeccStream {
        addresses: RtpAddresses { rtp: n.remote_rtp, rtcp: (!n.rtcp_mux).then_some(n.remote_rtcp) },
        config: FeccConfig {
            payload_type: n.payload_type,
            ssrc,
            srtp_in,
            srtp_out,
            sends: matches!(n.direction, SdpDirection::SendRecv | SdpDirection::SendOnly),
        },
    }
}

fn to_move(m: CameraMove) -> Move {
    match m {
        CameraMove::PanLeft => Move::PanLeft,
        CameraMove::PanRight => Move::PanRight,
        CameraMove::TiltUp => Move::TiltUp,
        CameraMove::TiltDown => Move::TiltDown,
        CameraMove::ZoomIn => Move::ZoomIn,
        CameraMove::ZoomOut => Move::ZoomOut,
        CameraMove::FocusIn => Move::FocusIn,
        CameraMove::FocusOut => Move::FocusOut,
    }
}

impl Bridge {
    /// `PUT /callLegs/<id>/cameraControl`: a step of the leg's camera.
    pub fn camera_control(&mut self, id: Uuid, moves: &[CameraMove]) -> Result<(), BridgeError> {
        let leg = self.leg(id).ok_or(BridgeError::CallLegDoesNotExist)?;
        let endpoint = leg.endpoint.filter(|_| leg.live.camera_control_available);
        let endpoint = endpoint.ok_or(BridgeError::CameraControlUnavailable)?;
        let moves = moves.iter().fold(Moves::NONE, |all, m| all.with(to_move(*m)));
        // A request naming nothing is answered as CMS does, and moves nothing.
        if !moves.is_empty() {
            self.media.camera_control(endpoint, moves).map_err(|_| BridgeError::CallLegDoesNotExist)?;
        }
        Ok(())
    }

    /// The runtime heard an endpoint's H.281 client.
    pub(super) fn on_camera_control_available(&mut self, endpoint: EndpointId) {
        let Some(id) = self.by_endpoint.get(&endpoint).copied() else { return };
        if let Some(leg) = self.leg_mut(id) {
            // Only for the leg's current endpoint (not one a re-INVITE replaced).
            if leg.endpoint == Some(endpoint) {
                leg.live.camera_control_available = true;
            }
        }
    }

    /// The conference's dominant speaker changed.
    pub(super) fn on_speaker(&mut self, conference: ConferenceId, endpoint: Option<EndpointId>) {
        let Some(endpoint) = endpoint else { return };
        if let Some(call) = self.calls.iter_mut().find(|c| c.conference == conference) {
            call.speakers.retain(|e| *e != endpoint);
            call.speakers.insert(0, endpoint);
            call.speakers.truncate(SPEAKERS_KEPT);
        }
    }

    /// An endpoint's user works their camera controls: relayed to the
    /// camera it sees, if it may and there is one (see the module docs).
    pub(super) fn on_camera_control(&mut self, endpoint: EndpointId, message: H281) {
        let Some(id) = self.by_endpoint.get(&endpoint).copied() else { return };
        let Some(leg) = self.leg(id) else { return };
        if !leg.settings.control_remote_camera || leg.lobby.is_some() || leg.ivr.is_some() {
            return;
        }
        let call = leg.live.call;
        let cameras: Vec<EndpointId> = self
            .legs
            .iter()
            .filter(|l| l.live.call == call && l.live.id != id && l.live.camera_control_available)
            .filter_map(|l| l.endpoint)
            .collect();
        let speakers = self.calls.iter().find(|c| c.live.id == call).map(|c| c.speakers.as_slice()).unwrap_or(&[]);
        let seen = speakers.iter().find(|e| cameras.contains(e)).copied();
        let target = seen.or_else(|| (cameras.len() == 1).then(|| cameras[0]));
        if let Some(target) = target {
            let _ = self.media.relay_camera_control(target, message);
        }
    }
}
