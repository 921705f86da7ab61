//! The bridge's view of the media engine: the calls it makes, as a trait,
//! so that the bridge runs on the real [`MediaRuntime`] in the binary and on
//! a recording fake in the virtual-time tests.
//!
//! Every method must be quick and must not wait on a media worker: the
//! bridge calls them with its state locked.

use std::net::SocketAddr;

use confero_media::engine::{EndpointId, EndpointStats, Prompt, VideoSettings};
use confero_media::fecc::{Moves, H281};
use confero_media::runtime::{AttachedEndpoint, ConferenceId, EndpointSpec, MediaRuntime, RuntimeError, RuntimeStats};

/// What the bridge asks of the media engine.
pub trait MediaPort: Send + Sync {
    /// A new, empty conference.
    fn create_conference(&self) -> Result<ConferenceId, RuntimeError>;
    /// Ends a conference and every endpoint in it.
    fn end_conference(&self, id: ConferenceId) -> Result<(), RuntimeError>;
    /// Where a conference's endpoints send audio (RTP, RTCP), for SDP.
    fn conference_addresses(&self, id: ConferenceId) -> Result<(SocketAddr, SocketAddr), RuntimeError>;
    /// Where a conference's endpoints send video (RTP, RTCP), for SDP.
    fn conference_video_addresses(&self, id: ConferenceId) -> Result<(SocketAddr, SocketAddr), RuntimeError>;
    /// Attaches an endpoint to a conference.
    fn attach(&self, conference: ConferenceId, spec: EndpointSpec) -> Result<AttachedEndpoint, RuntimeError>;
    /// Detaches an endpoint.
    fn detach(&self, id: EndpointId) -> Result<(), RuntimeError>;
    /// Stops (or resumes) mixing what it says.
    fn set_rx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError>;
    /// Stops (or resumes) sending it audio.
    fn set_tx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError>;
    /// Its importance in speaker selection and pane order.
    fn set_importance(&self, id: EndpointId, importance: i32) -> Result<(), RuntimeError>;
    /// Sends it DTMF as RFC 4733 telephone-events.
    fn send_dtmf(&self, id: EndpointId, sequence: &str) -> Result<(), RuntimeError>;
    /// Its video settings (layout, mutes, picture cap, labels).
    fn set_video(&self, id: EndpointId, settings: VideoSettings) -> Result<(), RuntimeError>;
    /// Sends it an IDR with its view's next picture.
    fn generate_keyframe(&self, id: EndpointId) -> Result<(), RuntimeError>;
    /// Where every endpoint's H.224 stream goes (far-end camera control), for SDP.
    fn fecc_address(&self) -> SocketAddr;
    /// Moves its camera a step (H.281 START, then STOP).
    fn camera_control(&self, id: EndpointId, moves: Moves) -> Result<(), RuntimeError>;
    /// Sends another endpoint's H.281 message on to its camera.
    fn relay_camera_control(&self, id: EndpointId, message: H281) -> Result<(), RuntimeError>;
    /// Plays it a prompt in place of the conference (`None`: lets it in).
    fn set_prompt(&self, id: EndpointId, prompt: Option<Prompt>) -> Result<(), RuntimeError>;
    /// Its latest statistics.
    fn endpoint_stats(&self, id: EndpointId) -> Option<EndpointStats>;
    /// The `a=fingerprint` value of the DTLS certificate browser endpoints
    /// present.
    fn dtls_fingerprint(&self) -> String;
    /// The workers' latest counters, since start (refusals for
    /// `system/status`).
    fn stats(&self) -> RuntimeStats;
}

impl MediaPort for MediaRuntime {
    fn create_conference(&self) -> Result<ConferenceId, RuntimeError> {
        MediaRuntime::create_conference(self)
    }
    fn end_conference(&self, id: ConferenceId) -> Result<(), RuntimeError> {
        MediaRuntime::end_conference(self, id)
    }
    fn conference_addresses(&self, id: ConferenceId) -> Result<(SocketAddr, SocketAddr), RuntimeError> {
        MediaRuntime::conference_addresses(self, id)
    }
    fn conference_video_addresses(&self, id: ConferenceId) -> Result<(SocketAddr, SocketAddr), RuntimeError> {
        MediaRuntime::conference_video_addresses(self, id)
    }
    fn attach(&self, conference: ConferenceId, spec: EndpointSpec) -> Result<AttachedEndpoint, RuntimeError> {
        MediaRuntime::attach(self, conference, spec)
    }
    fn detach(&self, id: EndpointId) -> Result<(), RuntimeError> {
        MediaRuntime::detach(self, id)
    }
    fn set_rx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError> {
        MediaRuntime::set_rx_muted(self, id, muted)
    }
    fn set_tx_muted(&self, id: EndpointId, muted: bool) -> Result<(), RuntimeError> {
        MediaRuntime::set_tx_muted(self, id, muted)
    }
    fn set_importance(&self, id: EndpointId, importance: i32) -> Result<(), RuntimeError> {
        MediaRuntime::set_importance(self, id, importance)
    }
    fn send_dtmf(&self, id: EndpointId, sequence: &str) -> Result<(), RuntimeError> {
        MediaRuntime::send_dtmf(self, id, sequence)
    }
    fn set_video(&self, id: EndpointId, settings: VideoSettings) -> Result<(), RuntimeError> {
        MediaRuntime::set_video(self, id, settings)
    }
    fn generate_keyframe(&self, id: EndpointId) -> Result<(), RuntimeError> {
        MediaRuntime::generate_keyframe(self, id)
    }
    fn fecc_address(&self) -> SocketAddr {
        MediaRuntime::fecc_address(self)
    }
    fn camera_control(&self, id: EndpointId, moves: Moves) -> Result<(), RuntimeError> {
        MediaRuntime::camera_control(self, id, moves)
    }
    fn relay_camera_control(&self, id: EndpointId, message: H281) -> Result<(), RuntimeError> {
        MediaRuntime::relay_camera_control(self, id, message)
    }
    fn set_prompt(&self, id: EndpointId, prompt: Option<Prompt>) -> Result<(), RuntimeError> {
        MediaRuntime::set_prompt(self, id, prompt)
    }
    fn endpoint_stats(&self, id: EndpointId) -> Option<EndpointStats> {
        MediaRuntime::endpoint_stats(self, id)
    }
    fn dtls_fingerprint(&self) -> String {
        MediaRuntime::dtls_fingerprint(self).to_sdp()
    }
    fn stats(&self) -> RuntimeStats {
        MediaRuntime::stats(self)
    }
}
