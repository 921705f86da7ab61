//! The system's compatibility profile (the `compatibilityProfiles` object
//! `system/profiles` names): what SIP calls may negotiate, and how our own
//! offers are written. Read at each offer and answer, so a change applies
//! to the next call.
//!
//! Acted on: `sipH224` (far-end camera control's stream, allowed unless
//! `false`), `sipMediaPayloadTypeMode` (`broadsoft`: our H.264 offered as
//! payload type 109) and `chromeWebRtcVideoCodec` (`avoidH264`: browsers
//! are answered VP8 when they offer it). Met as they stand: `h264CHPMode`
//! (Confero sends Constrained Baseline only, so never a part of Constrained
//! High) and `chromeWebRtcH264interopMode` (browsers' High Profile is never
//! chosen, whatever they offer). Not acted on, for want of what they
//! switch: `sipUdt` and `sipMultistream` (Cisco's own protocols),
//! `distributionLinkMediaTraversal` (no cluster).

use confero_sdp::{VideoCodec, VideoPayloadTypes};
use confero_store::schema::Kind;
use confero_store::Store;
use uuid::Uuid;

/// What the compatibility profile allows and asks of SIP calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Compatibility {
    /// H.224 may be offered and answered.
    pub sip_h224: bool,
    /// The payload types of our H.264 offers.
    pub video_payload_types: VideoPayloadTypes,
    /// The video codec a browser is answered when it offers H.264 and VP8.
    pub browser_video_codec: VideoCodec,
}

impl Compatibility {
    /// The profile `system/profiles` names, CMS's defaults without one.
    pub fn of(store: &dyn Store) -> Compatibility {
        let system = store.singleton(Kind::SystemProfiles);
        let profile = system
            .get("compatibilityProfile")
            .and_then(|id| Uuid::parse_str(id).ok())
            .and_then(|id| store.get(Kind::CompatibilityProfile, id));
        let field = |name: &str| profile.as_ref().and_then(|p| p.get(name).map(str::to_string));
        Compatibility {
            sip_h224: field("sipH224").as_deref() != Some("false"),
            video_payload_types: match field("sipMediaPayloadTypeMode").as_deref() {
                Some("broadsoft") => VideoPayloadTypes::BROADSOFT,
                _ => VideoPayloadTypes::DEFAULT,
            },
            browser_video_codec: match field("chromeWebRtcVideoCodec").as_deref() {
                Some("avoidH264") => VideoCodec::Vp8,
                _ => VideoCodec::H264,
            },
        }
    }
}
