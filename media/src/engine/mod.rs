//! One conference's media, sans-IO: SRTP and RTP in, jitter buffers,
//! decodes, the mixer, and RTP and SRTP out, one 20 ms tick at a time.
//!
//! [`Conference`] glues the crate's parts together for the hot path of
//! DESIGN.md ("How media flows"). It opens no socket and reads no clock:
//! the caller hands every received datagram to [`Conference::receive`] with
//! its arrival time, calls [`Conference::tick`] every 20 ms with the tick
//! time, and sends the [`Outgoing`] datagrams it gets back.

mod conference;
pub mod dtmf;
mod prompt;
mod session;
mod video;
pub mod wav;

#[cfg(test)]
mod tests;

pub use conference::Conference;
pub use prompt::Prompt;
pub use video::{VideoConfig, VideoMix, VideoSettings, VideoStats, VideoTickSummary, MAX_VIDEO_SIZE};

use std::time::Duration;

use crate::codec::{AudioFormat, CodecError};
use crate::jitter::{JitterConfig, JitterConfigError, JitterStats};
use crate::mixer::{MixerError, MixerEvent};
use crate::rtp::RtpError;
use crate::srtp::{SrtpError, SrtpProfile};

/// An endpoint (call leg) in a conference: the mixer's participant id.
pub use crate::mixer::ParticipantId as EndpointId;

/// SDES (or DTLS-exported) keys for one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The protection profile.
    pub profile: SrtpProfile,
    /// The master key.
    pub key: Vec<u8>,
    /// The master salt.
    pub salt: Vec<u8>,
}

/// What was negotiated for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The codec both directions use.
    pub format: AudioFormat,
    /// The RTP payload type of that codec, both directions.
    pub payload_type: u8,
    /// The RFC 4733 telephone-event payload type, if negotiated: DTMF
    /// digits from [`Conference::take_dtmf`].
    pub telephone_event_pt: Option<u8>,
    /// Keys for what the endpoint sends us; `None`: plain RTP.
    pub srtp_in: Option<SrtpKeys>,
    /// Keys for what we send the endpoint; `None`: plain RTP.
    pub srtp_out: Option<SrtpKeys>,
    /// SRTP whose keys come after attach (DTLS-SRTP), through
    /// [`Conference::set_srtp_keys`]: until then its media is dropped both
    /// ways and counted ([`EndpointStats::unkeyed`]), never passed or sent
    /// in clear. `srtp_in` and `srtp_out` must then be `None`.
    pub srtp_pending: bool,
    /// The RFC 6464 audio level extension id, if negotiated (both ways).
    pub audio_level_id: Option<u8>,
    /// The conference does not hear this endpoint.
    pub rx_muted: bool,
    /// This endpoint hears nothing (no packets are sent to it).
    pub tx_muted: bool,
    /// Priority in speaker selection.
    pub importance: i32,
    /// Our SSRC towards the endpoint; `None`: random.
    pub ssrc: Option<u32>,
    /// Our first sequence number; `None`: random.
    pub initial_sequence: Option<u16>,
    /// Our first RTP timestamp; `None`: random.
    pub initial_timestamp: Option<u32>,
    /// The CNAME in our RTCP SDES (RFC 7022: a random, per-session name).
    pub cname: String,
    /// The inbound jitter buffer; `clock_rate` and `frame_duration` are
    /// taken from `format`.
    pub jitter: JitterConfig,
    /// Start in the lobby, hearing this prompt (see [`Conference::set_prompt`]).
    pub prompt: Option<Prompt>,
}

impl EndpointConfig {
    /// Plain RTP, no levels, unmuted, random SSRC and bases. The jitter
    /// buffer's floor is one frame: it rises at once on a jittery network.
    pub fn new(format: AudioFormat, payload_type: u8) -> Self {
        Self {
            format,
            payload_type,
            telephone_event_pt: None,
            srtp_in: None,
            srtp_out: None,
            srtp_pending: false,
            audio_level_id: None,
            rx_muted: false,
            tx_muted: false,
            importance: 0,
            ssrc: None,
            initial_sequence: None,
            initial_timestamp: None,
            cname: String::from("confero"),
            prompt: None,
            jitter: JitterConfig {
                min_delay: Duration::from_millis(u64::from(format.ptime_ms)),
                ..JitterConfig::default()
            },
        }
    }
}

/// Why the conference refused a call or a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No endpoint with this id is attached.
    #[error("no endpoint {0:?} in this conference")]
    UnknownEndpoint(EndpointId),
    /// An endpoint with this id is already attached.
    #[error("endpoint {0:?} is already in this conference")]
    DuplicateEndpoint(EndpointId),
    /// SRTP refused the packet (authentication, replay, malformed) or keys.
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    /// The packet is not valid RTP, or ours could not be written.
    #[error("RTP: {0}")]
    Rtp(#[from] RtpError),
    /// The packet's payload type is not the negotiated one.
    #[error("payload type {got}, expected {expected}")]
    PayloadType {
        /// The negotiated payload type.
        expected: u8,
        /// The packet's.
        got: u8,
    },
    /// Our RTCP report could not be written.
    #[error("RTCP: {0}")]
    Rtcp(#[from] crate::rtcp::RtcpError),
    /// The mixer refused.
    #[error(transparent)]
    Mixer(#[from] MixerError),
    /// A codec could not be built.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The jitter buffer configuration is unusable.
    #[error(transparent)]
    Jitter(#[from] JitterConfigError),
    /// Video composition or coding failed.
    #[error("video: {0}")]
    Video(String),
    /// The stream's SRTP keys have not been set yet (DTLS-SRTP): the packet
    /// was dropped.
    #[error("SRTP keys pending")]
    KeysPending,
    /// A packet from an SSRC that has not replaced the stream's current
    /// source (RFC 3550 §8.2, probation as in §A.1): dropped and counted.
    #[error("SSRC {0:#010x} refused: not the stream's source")]
    SsrcRefused(u32),
    /// Keys were given at attach for a stream whose keys are pending.
    #[error("SRTP keys given for a stream whose keys come later")]
    KeysConflict,
    /// DTMF could not be queued.
    #[error("DTMF: {0}")]
    Dtmf(#[from] dtmf::DtmfError),
}

/// One of an endpoint's streams, each its own RTP session (its own SSRC,
/// sequence, keys and reports), for calls that address one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// The audio stream (`m=audio`).
    Audio,
    /// The video stream (`m=video`).
    Video,
}

/// Which of an endpoint's two flows a datagram belongs to. With RTCP
/// multiplexing (RFC 5761) both go to the RTP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// (S)RTP media.
    Rtp,
    /// (S)RTCP reports.
    Rtcp,
    /// Video (S)RTP, to the endpoint's video address.
    VideoRtp,
    /// Video (S)RTCP (reports and keyframe requests).
    VideoRtcp,
}

/// One datagram to send to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Who it is for.
    pub endpoint: EndpointId,
    /// Media or reports.
    pub flow: Flow,
    /// The (S)RTP or (S)RTCP packet.
    pub bytes: Vec<u8>,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickSummary {
    /// The mixer's events (active speaker changes), in order.
    pub events: Vec<MixerEvent>,
    /// Frames decoded (including FEC and concealment).
    pub decodes: usize,
    /// Frames encoded.
    pub encodes: usize,
    /// Packets produced.
    pub packets: usize,
}

/// One endpoint's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// RTP packets accepted.
    pub packets_in: u64,
    /// Their bytes on the wire (before SRTP unprotect).
    pub bytes_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Their bytes on the wire (after SRTP protect).
    pub bytes_out: u64,
    /// Packets that failed SRTP authentication.
    pub auth_failures: u64,
    /// Packets SRTP refused as replayed or too old.
    pub replays: u64,
    /// Packets refused as malformed (SRTP or RTP).
    pub malformed: u64,
    /// Packets dropped, either way, while its SRTP keys were pending.
    pub unkeyed: u64,
    /// Packets refused for their payload type.
    pub wrong_payload_type: u64,
    /// Packets refused for their SSRC: another source that has not replaced
    /// the current one (see the engine's SSRC rule).
    pub ssrc_refused: u64,
    /// Frames the decoder failed on (played as silence).
    pub decode_errors: u64,
    /// RFC 3550 interarrival jitter of what the endpoint sends.
    pub rx_jitter: Duration,
    /// RFC 3550 cumulative packets lost from the endpoint (negative with duplicates).
    pub rx_lost: i64,
    /// Round-trip time from the endpoint's last report block about our
    /// stream (RFC 3550 §6.4.1), if it has sent one that echoes our SR.
    pub round_trip: Option<Duration>,
    /// The loss the endpoint last reported of what we send, 0..=255 of 256.
    pub tx_fraction_lost: u8,
    /// The interarrival jitter the endpoint last reported of what we send.
    pub tx_jitter: Duration,
    /// RTCP packets accepted from the endpoint, and sent to it.
    pub rtcp_in: u64,
    /// RTCP compounds sent to the endpoint.
    pub rtcp_out: u64,
    /// When the endpoint's newest accepted packet (RTP or RTCP) arrived:
    /// the media-timeout watch reads it.
    pub last_received: Option<std::time::Instant>,
    /// The inbound jitter buffer.
    pub jitter: JitterStats,
    /// Its video stream's counters, if it has video.
    pub video: Option<VideoStats>,
}
