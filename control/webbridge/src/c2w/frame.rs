//! C2W frames, sans-IO: text in, typed [`Message`]s out, and back. Nothing
//! here touches a socket or a clock, which is what lets the fuzz target
//! (`fuzz/fuzz_targets/c2w.rs`) drive [`decode`] with arbitrary bytes.
//!
//! One frame is one WebSocket text message, a JSON object:
//! `{"v":1,"id":7,"type":"join","body":{...}}` — `v` the protocol version
//! ([`VERSION`]), `id` chosen by the requester and echoed by the reply, `type`
//! what it is, `body` its fields. `docs/c2w.md` is the reference.

use serde::{Deserialize, Serialize};

pub use confero_ldap::people::Person;
use thiserror::Error;

/// The protocol version this build speaks. A peer sending another gets an
/// [`ErrorKind::Unsupported`] reply, never a dropped link.
pub const VERSION: u32 = 1;

/// Largest frame accepted. A request is a few KiB (an SDP offer with many
/// candidates); the largest frame is a [`Message::Customization`], whose
/// files are bounded to about 1.1 MiB (1.5 MiB in base64). Links are
/// mutually authenticated, and anything past this is a mistake or an attack.
pub const MAX_FRAME: usize = 2 * 1024 * 1024;

/// Why a frame could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// Over [`MAX_FRAME`] bytes.
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not a JSON object with `v`, `id` and `type`.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A version other than [`VERSION`]; `id` so the reply can name it.
    #[error("version {version} is not supported")]
    Version {
        /// The frame's id.
        id: u64,
        /// The version it claimed.
        version: u32,
    },
    /// A type this build does not know, or a body that does not fit it.
    #[error("frame type {kind:?}: {detail}")]
    Unknown {
        /// The frame's id.
        id: u64,
        /// Its `type`.
        kind: String,
        /// What did not fit.
        detail: String,
    },
}

/// Everything that travels over a C2W link. The web bridge sends
/// [`Message::Hello`] once, then requests; the call bridge answers each with
/// a reply carrying the request's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body", rename_all = "camelCase")]
pub enum Message {
    /// The web bridge's greeting: its guid, which the call bridge shows in
    /// `webBridges/<id>/status`.
    Hello {
        /// The web bridge's guid, stable across restarts.
        guid: String,
        /// Where browsers reach its web app (`https://host:port`), so the
        /// call bridge can give out join links; absent from older peers.
        #[serde(default, rename = "webAddress", skip_serializing_if = "Option::is_none")]
        web_address: Option<String>,
    },
    /// Does this meeting ID exist here, and does it need a passcode?
    Meeting {
        /// The meeting ID (a `callId`).
        #[serde(rename = "callId")]
        call_id: String,
        /// A join link's secret, if any.
        #[serde(default)]
        secret: Option<String>,
    },
    /// Join a browser: the call bridge checks the passcode and answers the
    /// offer.
    Join {
        /// The meeting ID.
        #[serde(rename = "callId")]
        call_id: String,
        /// The passcode typed.
        #[serde(default)]
        passcode: Option<String>,
        /// The join link's secret.
        #[serde(default)]
        secret: Option<String>,
        /// The display name.
        name: String,
        /// The browser's SDP offer.
        offer: String,
        /// The signed-in web user joining, if any (a guest otherwise).
        #[serde(default)]
        user: Option<String>,
    },
    /// Change the browser's own leg: form fields (`rxAudioMute`,
    /// `rxVideoMute`, `chosenLayout`, ...) as the API takes them.
    Update {
        /// The leg.
        leg: String,
        /// Field names and values.
        changes: Vec<(String, String)>,
    },
    /// Hang up the browser's leg.
    Leave {
        /// The leg.
        leg: String,
    },
    /// Who is in the call this leg is in.
    Participants {
        /// The asking browser's leg.
        leg: String,
    },
    /// The spaces a signed-in web user may join.
    Spaces {
        /// The local web user's name.
        user: String,
    },
    /// Reply to [`Message::Meeting`].
    MeetingInfo {
        /// The space's name.
        name: String,
        /// A passcode must be typed.
        #[serde(rename = "passcodeRequired")]
        passcode_required: bool,
        /// The TURN servers the browser may relay its media through (the
        /// call bridge's `turnServers`); absent from older peers.
        #[serde(default, rename = "iceServers", skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// Reply to [`Message::Join`].
    Joined {
        /// The call joined.
        call: String,
        /// The browser's new leg.
        leg: String,
        /// Our SDP answer.
        answer: String,
    },
    /// Reply to [`Message::Update`] and [`Message::Leave`].
    Done,
    /// Reply to [`Message::Participants`].
    ParticipantList {
        /// Display names, in joining order.
        names: Vec<String>,
    },
    /// Reply to [`Message::Spaces`].
    SpaceList {
        /// The spaces.
        spaces: Vec<Space>,
    },
    /// Whom a signed-in web user finds for `query` (the wizard's "Find
    /// people"): the deployment's users and its directory search locations
    /// that apply to `user`.
    Directory {
        /// The signed-in web user searching.
        user: String,
        /// What they typed.
        query: String,
    },
    /// Reply to [`Message::Directory`].
    People {
        /// Everyone found, in order.
        people: Vec<Person>,
    },
    /// The connecting side's greeting when it is a scheduler rather than a
    /// call bridge: from then on the web bridge sends this link the
    /// signed-in users' scheduling ([`Message::ScheduleOptions`],
    /// [`Message::ScheduleMeetings`]) and no meeting requests.
    SchedulerHello {
        /// The scheduler's name, for the web bridge's log.
        #[serde(default)]
        name: String,
    },
    /// What the "Schedule meeting" wizard may offer `user` (to a scheduler).
    ScheduleOptions {
        /// The signed-in web user.
        user: String,
    },
    /// `user`'s request to the scheduler's meetings API (`method` on
    /// `/api/v1/meetings` + `rest`), which the scheduler checks as that user.
    ScheduleMeetings {
        /// The signed-in web user.
        user: String,
        /// The HTTP method.
        method: String,
        /// Empty, or `/<meeting id>`.
        #[serde(default)]
        rest: String,
        /// The query string.
        #[serde(default)]
        query: String,
        /// The JSON body, if any.
        #[serde(default)]
        body: Option<serde_json::Value>,
    },
    /// Reply to [`Message::ScheduleOptions`] and [`Message::ScheduleMeetings`]:
    /// what the scheduler's API answered.
    ScheduleAnswer {
        /// The HTTP status.
        status: u16,
        /// The JSON body.
        #[serde(default)]
        body: serde_json::Value,
    },
    /// The call bridge's push of the web app's customization (no reply):
    /// the used files of the web bridge's `resourceArchive`, checked by
    /// [`crate::customization::Customization::from_files`] on both sides. An
    /// empty list restores the web app's own look. Sent on linking and on
    /// every change.
    Customization {
        /// The files.
        files: Vec<CustomFile>,
    },
    /// A refused request.
    Error {
        /// Why, in a word the web app understands.
        kind: ErrorKind,
        /// Words for a log.
        #[serde(default)]
        detail: String,
    },
}

/// A STUN or TURN server as a browser's `RTCPeerConnection` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:host:port?transport=udp|tcp`, or `stun:host:port`.
    pub urls: Vec<String>,
    /// The TURN username, if the server wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// One file of a [`Message::Customization`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomFile {
    /// Its name (`sign_in_logo.png`, ...).
    pub name: String,
    /// Its bytes, in standard base64.
    pub data: String,
}

/// A space as "My spaces" lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Space {
    /// Its name.
    pub name: String,
    /// Its meeting ID.
    #[serde(rename = "callId")]
    pub call_id: String,
    /// Its secret, so a member joins without the passcode.
    #[serde(default)]
    pub secret: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// No meeting has this ID.
    MeetingNotFound,
    /// Wrong or missing passcode.
    WrongPasscode,
    /// The browser's offer could not be answered.
    MediaNegotiation,
    /// The leg is gone (hung up elsewhere, or never existed).
    LegNotFound,
    /// A field the browser may not change, or a bad value.
    InvalidChange,
    /// The call bridge is over capacity or shutting down.
    Unavailable,
    /// A version or type this side does not speak.
    Unsupported,
    /// The web bridge's profile does not allow joining with a passcode.
    PasscodesNotAllowed,
    /// The web bridge's profile admits signed-in users only.
    SignInRequired,
    /// The web bridge's profile has the user portal (sign in) off.
    PortalDisabled,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    id: u64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    body: serde_json::Value,
}

/// Reads one frame: its id and message.
pub fn decode(text: &[u8]) -> Result<(u64, Message), FrameError> {
    if text.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(text.len()));
    }
    let envelope: Envelope = serde_json::from_slice(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if envelope.v != VERSION {
        return Err(FrameError::Version { id: envelope.id, version: envelope.v });
    }
    let id = envelope.id;
    let kind = envelope.kind;
    let tagged = serde_json::json!({ "type": kind, "body": envelope.body });
    let message = serde_json::from_value::<Message>(tagged).map_err(|e| FrameError::Unknown {
        id,
        kind: kind.clone(),
        detail: e.to_string(),
    })?;
    Ok((id, message))
}

/// Writes one frame.
pub fn encode(id: u64, message: &Message) -> String {
    let mut value = serde_json::to_value(message).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("v".into(), VERSION.into());
        object.insert("id".into(), id.into());
    }
    value.to_string()
}

/// Whether a message is a request (which the other side must answer) rather
/// than a reply or the greeting.
pub fn is_request(message: &Message) -> bool {
    matches!(
        message,
        Message::Meeting { .. }
            | Message::Join { .. }
            | Message::Update { .. }
            | Message::Leave { .. }
            | Message::Participants { .. }
            | Message::Spaces { .. }
            | Message::Directory { .. }
            | Message::ScheduleOptions { .. }
            | Message::ScheduleMeetings { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let messages = vec![
            Message::Hello { guid: "g".into(), web_address: Some("https://join.example.test".into()) },
            Message::Hello { guid: "g".into(), web_address: None },
            Message::Meeting { call_id: "100".into(), secret: None },
            Message::Join {
                call_id: "100".into(),
                passcode: Some("1".into()),
                secret: None,
                name: "Ann".into(),
                offer: "v=0\r\n".into(),
                user: None,
            },
            Message::Update { leg: "l".into(), changes: vec![("rxAudioMute".into(), "true".into())] },
            Message::Leave { leg: "l".into() },
            Message::Participants { leg: "l".into() },
            Message::Spaces { user: "ann".into() },
            Message::MeetingInfo { name: "Room".into(), passcode_required: true, ice_servers: Vec::new() },
            Message::MeetingInfo {
                name: "Room".into(),
                passcode_required: false,
                ice_servers: vec![IceServer {
                    urls: vec!["turn:192.0.2.1:3478?transport=udp".into()],
                    username: Some("u".into()),
                    credential: Some("p".into()),
                }],
            },
            Message::Joined { call: "c".into(), leg: "l".into(), answer: "v=0".into() },
            Message::Done,
            Message::ParticipantList { names: vec!["Ann".into()] },
            Message::SpaceList {
                spaces: vec![Space { name: "S".into(), call_id: "1".into(), secret: Some("x".into()) }],
            },
            Message::Error { kind: ErrorKind::WrongPasscode, detail: String::new() },
            Message::SchedulerHello { name: "scheduler".into() },
            Message::ScheduleOptions { user: "ann".into() },
            Message::ScheduleMeetings {
                user: "ann".into(),
                method: "POST".into(),
                rest: String::new(),
                query: "maxMeetings=5".into(),
                body: Some(serde_json::json!({"name": "Weekly"})),
            },
            Message::ScheduleAnswer { status: 201, body: serde_json::json!({"id": "m"}) },
            Message::Customization {
                files: vec![CustomFile { name: "sign_in_logo.png".into(), data: "iVBORw0KGgo=".into() }],
            },
            Message::Customization { files: Vec::new() },
            Message::Directory { user: "ann".into(), query: "bo".into() },
            Message::People {
                people: vec![Person {
                    name: "Bob Stone".into(),
                    email: Some("bob@example.test".into()),
                    sip: None,
                    phone: Some("7002".into()),
                    mobile: None,
                    organisation: None,
                    label: Some("Corporate directory".into()),
                }],
            },
        ];
        for (i, m) in messages.into_iter().enumerate() {
            let text = encode(i as u64, &m);
            assert_eq!(decode(text.as_bytes()), Ok((i as u64, m)), "{text}");
        }
    }

    #[test]
    fn the_wire_form_is_the_documented_one() {
        let text = encode(7, &Message::Meeting { call_id: "100".into(), secret: None });
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, serde_json::json!({"v":1,"id":7,"type":"meeting","body":{"callId":"100","secret":null}}));
        assert_eq!(decode(br#"{"v":1,"id":3,"type":"done"}"#), Ok((3, Message::Done)));
    }

    #[test]
    fn refusals_keep_the_id_for_the_reply() {
        assert_eq!(decode(br#"{"v":2,"id":9,"type":"done"}"#), Err(FrameError::Version { id: 9, version: 2 }));
        assert!(matches!(
            decode(br#"{"v":1,"id":4,"type":"reboot","body":{}}"#),
            Err(FrameError::Unknown { id: 4, .. })
        ));
        assert!(matches!(decode(br#"{"v":1,"id":4,"type":"join","body":{}}"#), Err(FrameError::Unknown { id: 4, .. })));
        assert!(matches!(decode(b"[1,2]"), Err(FrameError::Malformed(_))));
        assert!(matches!(decode(b"\xff"), Err(FrameError::Malformed(_))));
        assert_eq!(decode(&vec![b' '; MAX_FRAME + 1]), Err(FrameError::TooLarge(MAX_FRAME + 1)));
    }
}
