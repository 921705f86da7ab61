//! The one seam between the API and live conferences. The API never touches
//! media or SIP: it asks the call bridge, through [`BridgeHandle`], to start
//! and end calls, dial and change legs, and to say what is live. The binary
//! implements this trait; `control` only defines it.

use std::collections::BTreeMap;
use std::time::Duration;

use uuid::Uuid;

use confero_store::schema::Change;

/// A live call (a conference) as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    /// The call's GUID.
    pub id: Uuid,
    /// Its name (the space's name when it started).
    pub name: String,
    /// The space it is the conference of, if any.
    pub co_space: Option<Uuid>,
    /// Correlates the CDRs and distributed instances of one conference.
    pub call_correlator: Uuid,
    /// The tenant of its space.
    pub tenant: Option<Uuid>,
    /// `meetingScheduler` of the space, shown as `ownerName`.
    pub owner_name: Option<String>,
    /// How long it has run.
    pub duration: Duration,
    /// Legs now connected or connecting.
    pub num_call_legs: usize,
    /// Most legs at once so far.
    pub max_call_legs: usize,
    /// Participants on this bridge.
    pub num_participants_local: usize,
    /// Call settings a client set (locked, recording, messageText, ...).
    pub config: BTreeMap<&'static str, String>,
}

/// What a new call is made of.
#[derive(Debug, Clone, Default)]
pub struct NewCall {
    /// Its name.
    pub name: String,
    /// The space, if any.
    pub co_space: Option<Uuid>,
    /// The space's tenant.
    pub tenant: Option<Uuid>,
    /// The space's `cdrTag`, for the callStart CDR.
    pub cdr_tag: Option<String>,
    /// The space's `meetingScheduler`.
    pub owner_name: Option<String>,
    /// Checked call settings from the POST.
    pub config: Vec<Change>,
}

/// Which way a leg was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The remote party called us.
    Incoming,
    /// We called the remote party.
    Outgoing,
}

impl Direction {
    /// The CMS word.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        }
    }
}

/// A leg's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// Set up has begun.
    Initial,
    /// The remote party is being alerted.
    Ringing,
    /// Media flows.
    Connected,
    /// Held by the remote party.
    OnHold,
}

impl LegState {
    /// The CMS word.
    pub fn as_str(self) -> &'static str {
        match self {
            LegState::Initial => "initial",
            LegState::Ringing => "ringing",
            LegState::Connected => "connected",
            LegState::OnHold => "onHold",
        }
    }
}

/// Live statistics of one media direction of a leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStatus {
    /// CMS codec name (`opus`, `g711u`, `h264`, ...).
    pub codec: String,
    /// Bits per second.
    pub bit_rate: u64,
    /// Milliseconds.
    pub jitter_ms: u32,
    /// 0.0 – 100.0.
    pub packet_loss_percentage: f32,
    /// Milliseconds, when known.
    pub round_trip_time_ms: Option<u32>,
    /// Video only.
    pub width: Option<u32>,
    /// Video only.
    pub height: Option<u32>,
    /// Video only.
    pub frame_rate: Option<f32>,
}

/// A live call leg.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCallLeg {
    /// The leg's GUID.
    pub id: Uuid,
    /// The call it is in.
    pub call: Uuid,
    /// The participant it belongs to.
    pub participant: Uuid,
    /// Display name of the remote party.
    pub name: String,
    /// The remote party's address.
    pub remote_party: String,
    /// The address before dial transforms.
    pub original_remote_party: String,
    /// Which way it was set up.
    pub direction: Direction,
    /// Its progress.
    pub state: LegState,
    /// How long since it connected.
    pub duration: Duration,
    /// Media is SRTP.
    pub encrypted_media: bool,
    /// The SRTP suite, when encrypted.
    pub cipher_suite: Option<String>,
    /// The SIP Call-ID, when there is one.
    pub sip_call_id: Option<String>,
    /// Per-leg settings a client set (chosenLayout, mutes, importance, ...).
    pub config: BTreeMap<&'static str, String>,
    /// Received audio.
    pub rx_audio: Option<StreamStatus>,
    /// Sent audio.
    pub tx_audio: Option<StreamStatus>,
    /// Received video.
    pub rx_video: Option<StreamStatus>,
    /// Sent video.
    pub tx_video: Option<StreamStatus>,
    /// The layout it is sent (its `chosenLayout`, else its default), while it
    /// has video.
    pub layout: Option<String>,
    /// Media packets from it refused, by why, while it has media.
    pub refusals: Option<MediaRefusals>,
    /// A guest waiting for an activator (`needsActivation`): kept out of
    /// the conference.
    pub deactivated: bool,
    /// Its endpoint said it has an H.281 client over a negotiated H.224
    /// stream: `cameraControl` can move its camera.
    pub camera_control_available: bool,
}

/// Media packets refused, by why: for one leg (its audio), or for the
/// whole bridge since it started. Not a CMS field: CMS shows none, and an
/// operator needs to see hostile or broken media somewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaRefusals {
    /// SRTP or SRTCP authentication failed.
    pub authentication_failures: u64,
    /// SRTP replays (or packets too old for the replay window).
    pub replays: u64,
    /// Not valid SRTP, RTP or RTCP.
    pub malformed: u64,
    /// A payload type that was not negotiated.
    pub wrong_payload_type: u64,
    /// Another SSRC that has not replaced the stream's source.
    pub ssrc_refused: u64,
}

/// A participant: one person (or endpoint) in a call, with one or more legs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveParticipant {
    /// The participant's GUID.
    pub id: Uuid,
    /// The call.
    pub call: Uuid,
    /// Display name.
    pub name: String,
    /// The participant's URI.
    pub uri: String,
    /// Legs on this bridge.
    pub num_call_legs: usize,
    /// Progress of its main leg.
    pub state: LegState,
    /// Importance, when set.
    pub importance: Option<u32>,
    /// It activates guests (its `needsActivation` is false).
    pub is_activator: bool,
    /// Its camera can be moved (its leg's `cameraControlAvailable`).
    pub camera_control_available: bool,
}

/// One direction of one thing far-end camera control moves
/// (`PUT /callLegs/<id>/cameraControl`: `pan`, `tilt`, `zoom`, `focus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraMove {
    /// `pan=left`.
    PanLeft,
    /// `pan=right`.
    PanRight,
    /// `tilt=up`.
    TiltUp,
    /// `tilt=down`.
    TiltDown,
    /// `zoom=in`.
    ZoomIn,
    /// `zoom=out`.
    ZoomOut,
    /// `focus=in`.
    FocusIn,
    /// `focus=out`.
    FocusOut,
}

/// Counters for `system/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeCounters {
    /// Legs now active.
    pub call_legs_active: u64,
    /// Most legs active at once since start.
    pub call_legs_max_active: u64,
    /// Legs that have ended since start.
    pub call_legs_completed: u64,
    /// Bits per second, all legs.
    pub audio_bit_rate_outgoing: u64,
    /// Bits per second, all legs.
    pub audio_bit_rate_incoming: u64,
    /// Bits per second, all legs.
    pub video_bit_rate_outgoing: u64,
    /// Bits per second, all legs.
    pub video_bit_rate_incoming: u64,
    /// Media packets refused since start, all legs (ended ones too).
    pub media_refusals: MediaRefusals,
    /// How busy the media workers were over the last second, in thousandths
    /// of one worker's time, summed over workers (`system/load`).
    pub media_load: u64,
}

/// Why the bridge refused; each maps to a CMS `failureDetails` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// No such call.
    #[error("callDoesNotExist")]
    CallDoesNotExist,
    /// No such leg.
    #[error("callLegDoesNotExist")]
    CallLegDoesNotExist,
    /// No such participant.
    #[error("participantDoesNotExist")]
    ParticipantDoesNotExist,
    /// The call's participant limit is reached.
    #[error("participantLimitReached")]
    ParticipantLimitReached,
    /// The tenant's participant limit is reached.
    #[error("tenantParticipantLimitReached")]
    TenantParticipantLimitReached,
    /// The bridge is over capacity; clients retry.
    #[error("overloaded")]
    Overloaded,
    /// The leg's camera cannot be controlled (no H.224, or no H.281 client).
    #[error("invalidOperation")]
    CameraControlUnavailable,
}

impl BridgeError {
    /// The `failureDetails` reason.
    pub fn reason(self) -> &'static str {
        match self {
            BridgeError::CallDoesNotExist => "callDoesNotExist",
            BridgeError::CallLegDoesNotExist => "callLegDoesNotExist",
            BridgeError::ParticipantDoesNotExist => "participantDoesNotExist",
            BridgeError::ParticipantLimitReached => "participantLimitReached",
            BridgeError::TenantParticipantLimitReached => "tenantParticipantLimitReached",
            BridgeError::Overloaded => "callBridgeOverloaded",
            BridgeError::CameraControlUnavailable => "invalidOperation",
        }
    }
}

/// A meeting a browser may join, as the web bridge shows it before the
/// browser sends any media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebMeeting {
    /// The space's name.
    pub name: String,
    /// A passcode must be entered (none was given, or the secret did not
    /// match the space's or access method's `secret`).
    pub passcode_required: bool,
}

/// A browser joining a meeting: what the web bridge passes on (over C2W).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebJoin {
    /// The meeting ID typed or linked: a space's or access method's `callId`.
    pub call_id: String,
    /// The passcode typed, if any.
    pub passcode: Option<String>,
    /// The join link's `secret`, if any: it stands for the passcode.
    pub secret: Option<String>,
    /// The name the guest gave (or the signed-in user's).
    pub name: String,
    /// The browser's SDP offer (JSEP: ICE, DTLS fingerprint, BUNDLE).
    pub offer: String,
}

/// A browser's leg, made: the answer goes back to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebJoined {
    /// The call it joined.
    pub call: Uuid,
    /// Its new call leg.
    pub call_leg: Uuid,
    /// Our SDP answer (ICE-lite candidates on the media worker, our DTLS
    /// certificate's fingerprint).
    pub answer: String,
}

/// Why a browser could not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebJoinError {
    /// No space or access method has this call ID.
    #[error("no meeting with this ID")]
    MeetingNotFound,
    /// The passcode (or secret) is wrong or missing.
    #[error("wrong passcode")]
    WrongPasscode,
    /// The offer could not be answered (no Opus, no DTLS fingerprint, ...).
    #[error("media negotiation failed: {0}")]
    MediaNegotiation(String),
    /// The bridge cannot take the leg (capacity, shutting down).
    #[error("{0}")]
    Bridge(#[from] BridgeError),
}

/// One level of a leg's call leg profiles (`callLegProfileTrace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileLayer {
    /// `global`, `tenant`, `coSpace`, `accessMethod` or `callLeg`.
    pub scope: &'static str,
    /// The call leg profile applied there.
    pub profile: Uuid,
    /// The fields it sets, in its order.
    pub fields: Vec<(String, String)>,
}

/// What the API asks of the call bridge.
pub trait BridgeHandle: Send + Sync + 'static {
    /// Starts a call.
    fn create_call(&self, call: NewCall) -> Result<LiveCall, BridgeError>;
    /// Changes a call's settings.
    fn update_call(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError>;
    /// Ends a call and drops every leg.
    fn end_call(&self, id: Uuid) -> Result<(), BridgeError>;
    /// Live calls, in the order they started.
    fn calls(&self) -> Vec<LiveCall>;
    /// Dials `remote_party` into call `call`; the leg exists at once, in
    /// state initial, and progresses (or ends) on its own.
    fn dial(&self, call: Uuid, remote_party: &str, config: &[Change]) -> Result<LiveCallLeg, BridgeError>;
    /// Changes a leg's settings (mute, layout, importance) live.
    fn update_call_leg(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError>;
    /// Hangs up one leg.
    fn end_call_leg(&self, id: Uuid) -> Result<(), BridgeError>;
    /// Sends a leg an IDR with its next picture (nothing for an audio leg).
    fn generate_keyframe(&self, id: Uuid) -> Result<(), BridgeError>;
    /// Moves a leg's camera a step (far-end camera control);
    /// `CameraControlUnavailable` when its camera cannot be controlled.
    fn camera_control(&self, id: Uuid, moves: &[CameraMove]) -> Result<(), BridgeError>;
    /// The call leg profiles in force on a leg, most general first.
    fn call_leg_profile_trace(&self, id: Uuid) -> Result<Vec<ProfileLayer>, BridgeError>;
    /// Live legs, in the order they started.
    fn call_legs(&self) -> Vec<LiveCallLeg>;
    /// Live participants, in the order they joined.
    fn participants(&self) -> Vec<LiveParticipant>;
    /// Counters for `system/status`.
    fn counters(&self) -> BridgeCounters;
    /// The meeting with this call ID, for the web app's join page; `secret`
    /// is a join link's, which spares the passcode when it matches.
    fn web_meeting(&self, call_id: &str, secret: Option<&str>) -> Result<WebMeeting, WebJoinError>;
    /// Admits a browser: checks the meeting ID and passcode (or secret) as
    /// dial-in does, answers its offer, and makes its call leg, which the
    /// API then changes and ends like any other (`update_call_leg`,
    /// `end_call_leg`).
    fn join_web(&self, join: WebJoin) -> Result<WebJoined, WebJoinError>;
}
