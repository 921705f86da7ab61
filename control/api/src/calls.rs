//! Live objects: calls, call legs and participants. They are the call
//! bridge's, not the store's: these handlers check the request, look up the
//! space in the store, and ask the bridge through
//! [`BridgeHandle`](crate::bridge::BridgeHandle).

use uuid::Uuid;

use super::failure::Failure;
use super::xml::XmlWriter;
use super::{page_of, Api, Reply};
use crate::bridge::{
    BridgeError, CameraMove, LiveCall, LiveCallLeg, LiveParticipant, MediaRefusals, NewCall, StreamStatus,
};
use confero_store::form::Form;
use confero_store::schema::{spec, validate_changes, Change, Field, Kind, Ty, LAYOUTS};

const fn f(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, summary: false, required: false }
}
const B: Ty = Ty::Bool;
const LAYOUT: Ty = Ty::Enum(LAYOUTS);
const PANE_MODE: Ty = Ty::Enum(&["skip", "self", "blank"]);

/// Settings of a call (POST and PUT `/calls`).
pub static CALL_FIELDS: &[Field] = &[
    f("locked", B),
    f("recording", B),
    f("streaming", B),
    f("allowAllMuteSelf", B),
    f("allowAllPresentationContribution", B),
    f("joinAudioMuteOverride", B),
    f("messageText", Ty::Text),
    f("messagePosition", Ty::Enum(&["top", "middle", "bottom"])),
    f("messageDuration", Ty::Text),
    f("activeWhenEmpty", B),
    f("panePlacementHighestImportance", Ty::Int(0, u32::MAX as i64)),
    f("panePlacementSelfPaneMode", PANE_MODE),
];

/// Per-leg settings (POST `/calls/<id>/callLegs` and PUT `/callLegs/<id>`).
pub static LEG_FIELDS: &[Field] = &[
    f("ownerId", Ty::Text),
    f("chosenLayout", LAYOUT),
    f("callLegProfile", Ty::Ref(Kind::CallLegProfile)),
    f("defaultLayout", LAYOUT),
    f("layout", LAYOUT),
    f("nameLabelOverride", Ty::Text),
    f("importance", Ty::Int(0, i32::MAX as i64)),
    f("dtmfSequence", Ty::Dtmf),
    f("rxAudioMute", B),
    f("txAudioMute", B),
    f("rxVideoMute", B),
    f("txVideoMute", B),
    f("needsActivation", B),
    f("participantLabels", B),
    f("presentationContributionAllowed", B),
    f("presentationViewingAllowed", B),
    f("endCallAllowed", B),
    f("muteOthersAllowed", B),
    f("videoMuteOthersAllowed", B),
    f("muteSelfAllowed", B),
    f("videoMuteSelfAllowed", B),
    f("changeLayoutAllowed", B),
    f("videoMode", Ty::Enum(&["auto", "disabled"])),
    f("sipMediaEncryption", Ty::Enum(&["optional", "required", "prohibited"])),
    f("audioPacketSizeMs", Ty::Int(10, 60)),
    f("qualityMain", Ty::Enum(&["unrestricted", "max1080p30", "max720p30", "max480p30"])),
    f("qualityPresentation", Ty::Enum(&["unrestricted", "max1080p30", "max720p5"])),
    f("participantCounter", Ty::Enum(&["never", "auto", "always"])),
    f("layoutTemplate", Ty::Ref(Kind::LayoutTemplate)),
    f("deactivationMode", Ty::Enum(&["deactivate", "disconnect", "remainActivated"])),
    f("deactivationModeTime", Ty::Int(0, u32::MAX as i64)),
    f("controlRemoteCameraAllowed", B),
];

fn bridge_failure(e: BridgeError) -> Failure {
    match e {
        BridgeError::CallDoesNotExist => Failure::DoesNotExist { reason: e.reason(), in_path: true },
        BridgeError::CallLegDoesNotExist | BridgeError::ParticipantDoesNotExist => {
            Failure::DoesNotExist { reason: e.reason(), in_path: true }
        }
        BridgeError::ParticipantLimitReached | BridgeError::TenantParticipantLimitReached => {
            Failure::Reason(e.reason())
        }
        BridgeError::Overloaded => Failure::Unavailable,
        BridgeError::CameraControlUnavailable => Failure::Reason(e.reason()),
    }
}

/// References in live settings must name stored objects.
fn check_refs(api: &Api, changes: &[Change]) -> Result<(), Failure> {
    for c in changes {
        if let (Ty::Ref(kind), Some(v)) = (c.field.ty, &c.value) {
            let exists = Uuid::parse_str(v).ok().and_then(|id| api.store.get(kind, id)).is_some();
            if !exists {
                return Err(Failure::DoesNotExist { reason: spec(kind).missing, in_path: false });
            }
        }
    }
    Ok(())
}

fn find_call(api: &Api, id: Uuid) -> Result<LiveCall, Failure> {
    api.bridge
        .calls()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(Failure::DoesNotExist { reason: "callDoesNotExist", in_path: true })
}

fn opt_id(id: Option<Uuid>) -> Option<String> {
    id.map(|i| i.to_string())
}

fn write_list<T>(
    root: &str,
    items: Vec<T>,
    query: &Form,
    mut write: impl FnMut(&mut XmlWriter, &T),
) -> Result<Reply, Failure> {
    let page = page_of(query)?;
    let mut w = XmlWriter::new();
    w.open(root, &[("total", &items.len().to_string())]);
    for item in items.iter().skip(page.offset).take(page.limit) {
        write(&mut w, item);
    }
    w.close(root);
    Ok(Reply::xml(w.finish()))
}

fn text_filter(query: &Form, haystacks: &[&str]) -> bool {
    match query.get("filter") {
        None | Some("") => true,
        Some(f) => {
            let needle = f.to_lowercase();
            haystacks.iter().any(|h| h.to_lowercase().contains(&needle))
        }
    }
}

fn id_filter(query: &Form, name: &str, value: Option<Uuid>) -> bool {
    match query.get(name) {
        None | Some("") => true,
        Some(f) => value.is_some_and(|v| v.to_string().eq_ignore_ascii_case(f.trim())),
    }
}

/// `GET /calls`.
pub fn list_calls(api: &Api, query: &Form) -> Result<Reply, Failure> {
    let calls: Vec<LiveCall> = api
        .bridge
        .calls()
        .into_iter()
        .filter(|c| {
            id_filter(query, "coSpaceFilter", c.co_space)
                && id_filter(query, "tenantFilter", c.tenant)
                && text_filter(query, &[&c.name])
        })
        .collect();
    write_list("calls", calls, query, |w, c| {
        w.open("call", &[("id", &c.id.to_string())]).text("name", &c.name);
        if let Some(s) = opt_id(c.co_space) {
            w.text("coSpace", &s);
        }
        w.text("callCorrelator", &c.call_correlator.to_string());
        if let Some(t) = opt_id(c.tenant) {
            w.text("tenant", &t);
        }
        w.close("call");
    })
}

/// `POST /calls`: `coSpace=<id>` (or an ad hoc `name=`) makes a conference live.
pub fn create_call(api: &Api, form: &Form) -> Result<Reply, Failure> {
    let config = validate_changes(CALL_FIELDS, form, true)?;
    refuse_recording(&config)?;
    let mut call = NewCall { config, ..NewCall::default() };
    match form.get("coSpace").filter(|v| !v.is_empty()) {
        Some(raw) => {
            let missing = Failure::DoesNotExist { reason: "coSpaceDoesNotExist", in_path: false };
            let id = Uuid::parse_str(raw.trim()).map_err(|_| missing.clone())?;
            let space = api.store.get(Kind::CoSpace, id).ok_or(missing)?;
            // One conference per space: a second POST names the live one.
            if let Some(live) = api.bridge.calls().into_iter().find(|c| c.co_space == Some(id)) {
                return Ok(Reply::created(format!("/api/v1/calls/{}", live.id)));
            }
            call.name = form.get("name").filter(|n| !n.is_empty()).or(space.get("name")).unwrap_or("").to_string();
            call.co_space = Some(id);
            call.tenant = space.get("tenant").and_then(|t| Uuid::parse_str(t).ok());
            call.cdr_tag = space.get("cdrTag").map(str::to_string);
            call.owner_name = space.get("meetingScheduler").map(str::to_string);
        }
        None => match form.get("name").filter(|n| !n.is_empty()) {
            Some(name) => call.name = name.to_string(),
            None => return Err(Failure::parameter("coSpace", "missing")),
        },
    }
    let live = api.bridge.create_call(call).map_err(bridge_failure)?;
    tracing::info!("API created new call {}", live.id);
    Ok(Reply::created(format!("/api/v1/calls/{}", live.id)))
}

/// `GET /calls/<id>`.
pub fn get_call(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    let c = find_call(api, id)?;
    let mut w = XmlWriter::new();
    w.open("call", &[("id", &c.id.to_string())])
        .text("name", &c.name)
        .text("callType", if c.co_space.is_some() { "coSpace" } else { "adHoc" });
    if let Some(s) = opt_id(c.co_space) {
        w.text("coSpace", &s);
    }
    if let Some(o) = &c.owner_name {
        w.text("ownerName", o);
    }
    if let Some(t) = opt_id(c.tenant) {
        w.text("tenant", &t);
    }
    w.text("callCorrelator", &c.call_correlator.to_string())
        .text("durationSeconds", &c.duration.as_secs().to_string())
        .text("numCallLegs", &c.num_call_legs.to_string())
        .text("maxCallLegs", &c.max_call_legs.to_string())
        .text("numParticipantsLocal", &c.num_participants_local.to_string())
        .text("numParticipantsRemote", "0")
        .text("numDistributedInstances", "0");
    for field in CALL_FIELDS {
        let default = match field.name {
            "locked" | "recording" | "streaming" | "allowAllMuteSelf" | "allowAllPresentationContribution" => {
                Some("false")
            }
            "activeWhenEmpty" => Some("true"),
            _ => None,
        };
        if let Some(v) = c.config.get(field.name).map(String::as_str).or(default) {
            w.text(field.name, v);
        }
    }
    w.close("call");
    Ok(Reply::xml(w.finish()))
}

/// Confero neither records nor streams: a call cannot be set recording or
/// streaming, and saying so (CMS's reasons for a call whose recording or
/// streaming cannot change) beats showing `true` while nothing happens.
fn refuse_recording(changes: &[Change]) -> Result<(), Failure> {
    for (field, reason) in
        [("recording", "callRecordingCannotBeModified"), ("streaming", "callStreamingCannotBeModified")]
    {
        if changes.iter().any(|c| c.field.name == field && c.value.as_deref() == Some("true")) {
            return Err(Failure::Reason(reason));
        }
    }
    Ok(())
}

/// `PUT /calls/<id>`.
pub fn update_call(api: &Api, id: Uuid, form: &Form) -> Result<Reply, Failure> {
    let changes = validate_changes(CALL_FIELDS, form, false)?;
    refuse_recording(&changes)?;
    api.bridge.update_call(id, &changes).map_err(bridge_failure)?;
    Ok(Reply::default())
}

/// `DELETE /calls/<id>`: ends the conference and drops every leg.
pub fn delete_call(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    api.bridge.end_call(id).map_err(bridge_failure)?;
    tracing::info!("API deleted call {id}");
    Ok(Reply::default())
}

/// `GET /callLegs`, `/calls/<id>/callLegs`, `/participants/<id>/callLegs`.
pub fn list_legs(api: &Api, call: Option<Uuid>, participant: Option<Uuid>, query: &Form) -> Result<Reply, Failure> {
    if let Some(c) = call {
        find_call(api, c)?;
    }
    if let Some(p) = participant {
        if !api.bridge.participants().iter().any(|x| x.id == p) {
            return Err(Failure::DoesNotExist { reason: "participantDoesNotExist", in_path: true });
        }
    }
    let legs: Vec<LiveCallLeg> = api
        .bridge
        .call_legs()
        .into_iter()
        .filter(|l| call.is_none_or(|c| l.call == c))
        .filter(|l| participant.is_none_or(|p| l.participant == p))
        .filter(|l| id_filter(query, "participantFilter", Some(l.participant)))
        .filter(|l| text_filter(query, &[&l.name, &l.remote_party]))
        .collect();
    write_list("callLegs", legs, query, |w, l| {
        w.open("callLeg", &[("id", &l.id.to_string())])
            .text("name", &l.name)
            .text("remoteParty", &l.remote_party)
            .text("originalRemoteParty", &l.original_remote_party)
            .text("call", &l.call.to_string())
            .close("callLeg");
    })
}

/// `POST /calls/<id>/callLegs remoteParty=...`: dial out.
pub fn dial(api: &Api, call: Uuid, form: &Form) -> Result<Reply, Failure> {
    let leg = dial_leg(api, call, form)?;
    Ok(Reply::created(format!("/api/v1/callLegs/{}", leg.id)))
}

/// `POST /calls/<id>/participants`: dials `remoteParty` into the call as
/// `callLegs` does; the answer names the participant.
pub fn add_participant(api: &Api, call: Uuid, form: &Form) -> Result<Reply, Failure> {
    let leg = dial_leg(api, call, form)?;
    Ok(Reply::created(format!("/api/v1/participants/{}", leg.participant)))
}

/// `POST /callLegs/<id>/generateKeyframe`: an IDR to that leg.
pub fn generate_keyframe(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    api.bridge.generate_keyframe(id).map_err(bridge_failure)?;
    Ok(Reply::empty())
}

/// `PUT /callLegs/<id>/cameraControl` (`pan` left|right, `tilt` up|down,
/// `zoom` in|out, `focus` in|out): moves the leg's camera a step over H.281
/// (START, then STOP half a second later; `docs/fecc.md`). A leg whose
/// endpoint did not say it has an H.281 client over a negotiated H.224
/// stream (`cameraControlAvailable` false) is refused `invalidOperation`.
pub fn camera_control(api: &Api, id: Uuid, body: &Form) -> Result<Reply, Failure> {
    use CameraMove::*;
    const MOVES: [(&str, [(&str, CameraMove); 2]); 4] = [
        ("pan", [("left", PanLeft), ("right", PanRight)]),
        ("tilt", [("up", TiltUp), ("down", TiltDown)]),
        ("zoom", [("in", ZoomIn), ("out", ZoomOut)]),
        ("focus", [("in", FocusIn), ("out", FocusOut)]),
    ];
    if !api.bridge.call_legs().iter().any(|l| l.id == id) {
        return Err(Failure::DoesNotExist { reason: "callLegDoesNotExist", in_path: true });
    }
    let mut moves = Vec::new();
    for (name, values) in MOVES {
        if let Some(v) = body.get(name) {
            let (_, m) = values
                .iter()
                .find(|(word, _)| *word == v.trim())
                .ok_or_else(|| Failure::parameter(name, "invalidValue"))?;
            moves.push(*m);
        }
    }
    api.bridge.camera_control(id, &moves).map_err(bridge_failure)?;
    // CMS answers with the leg's Location.
    Ok(Reply::created(format!("/api/v1/callLegs/{id}")))
}

/// `GET /callLegs/<id>/callLegProfileTrace`: each call leg profile in force
/// on the leg, most general first, with the fields it sets.
pub fn call_leg_profile_trace(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    let layers = api.bridge.call_leg_profile_trace(id).map_err(bridge_failure)?;
    let mut w = XmlWriter::new();
    w.open("callLegProfileTrace", &[("callLeg", &id.to_string())]);
    for layer in layers {
        w.open("profile", &[("scope", layer.scope)]).open("callLegProfile", &[("id", &layer.profile.to_string())]);
        for (name, value) in &layer.fields {
            w.text(name, value);
        }
        w.close("callLegProfile").close("profile");
    }
    w.close("callLegProfileTrace");
    Ok(Reply::xml(w.finish()))
}

fn dial_leg(api: &Api, call: Uuid, form: &Form) -> Result<LiveCallLeg, Failure> {
    find_call(api, call)?;
    let remote = form
        .get("remoteParty")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Failure::parameter("remoteParty", "missing"))?;
    if remote.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::parameter("remoteParty", "invalidValue"));
    }
    let config = validate_changes(LEG_FIELDS, form, true)?;
    check_refs(api, &config)?;
    let leg = api.bridge.dial(call, remote, &config).map_err(bridge_failure)?;
    tracing::info!("API created new call leg {}, call {call}", leg.id);
    Ok(leg)
}

fn write_stream(w: &mut XmlWriter, name: &str, s: &StreamStatus, video: bool) {
    if video {
        w.open(name, &[("role", "main")]);
    } else {
        w.open(name, &[]);
    }
    w.text("codec", &s.codec);
    if let (Some(width), Some(height)) = (s.width, s.height) {
        w.text("width", &width.to_string()).text("height", &height.to_string());
    }
    if let Some(fr) = s.frame_rate {
        w.text("frameRate", &format!("{fr:.1}"));
    }
    w.text("jitter", &s.jitter_ms.to_string())
        .text("bitRate", &s.bit_rate.to_string())
        .text("packetLossPercentage", &format!("{:.1}", s.packet_loss_percentage));
    if let Some(rtt) = s.round_trip_time_ms {
        w.text("roundTripTime", &rtt.to_string());
    }
    w.close(name);
}

/// `GET /callLegs/<id>`.
pub fn get_leg(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    let l = api
        .bridge
        .call_legs()
        .into_iter()
        .find(|l| l.id == id)
        .ok_or(Failure::DoesNotExist { reason: "callLegDoesNotExist", in_path: true })?;
    let mut w = XmlWriter::new();
    w.open("callLeg", &[("id", &l.id.to_string())])
        .text("name", &l.name)
        .text("remoteParty", &l.remote_party)
        .text("originalRemoteParty", &l.original_remote_party)
        .text("call", &l.call.to_string())
        .text("type", "sip")
        .text("direction", l.direction.as_str());
    w.open("configuration", &[]);
    for field in LEG_FIELDS {
        // `dtmfSequence` is an action (often a PIN), not something to show.
        if field.is_secret() {
            continue;
        }
        if let Some(v) = l.config.get(field.name) {
            w.text(field.name, v);
        }
    }
    w.close("configuration");
    w.open("status", &[])
        .text("state", l.state.as_str())
        .text("durationSeconds", &l.duration.as_secs().to_string())
        .text("direction", l.direction.as_str());
    if let Some(id) = &l.sip_call_id {
        w.text("sipCallID", id);
    }
    w.text("encryptedMedia", if l.encrypted_media { "true" } else { "false" })
        .text("unencryptedMedia", if l.encrypted_media { "false" } else { "true" })
        .text("deactivated", if l.deactivated { "true" } else { "false" });
    if let Some(suite) = &l.cipher_suite {
        w.text("cipherSuite", suite);
    }
    if let Some(layout) = l.layout.as_deref().or(l.config.get("chosenLayout").map(String::as_str)) {
        w.text("layout", layout);
    }
    w.text("cameraControlAvailable", if l.camera_control_available { "true" } else { "false" });
    for (name, s, video) in [
        ("rxAudio", &l.rx_audio, false),
        ("txAudio", &l.tx_audio, false),
        ("rxVideo", &l.rx_video, true),
        ("txVideo", &l.tx_video, true),
    ] {
        if let Some(s) = s {
            write_stream(&mut w, name, s, video);
        }
    }
    if let Some(r) = &l.refusals {
        write_refusals(&mut w, r);
    }
    w.close("status").close("callLeg");
    Ok(Reply::xml(w.finish()))
}

/// `<mediaRefusals>`: media packets refused, by why — a sibling of
/// `rxAudio` in a leg's `status` (and in `system/status` for the bridge),
/// not a child: `rxAudio` is CMS's own element with a fixed set of stream
/// measurements, while a whole element of our own is what CMS clients skip.
pub fn write_refusals(w: &mut XmlWriter, r: &MediaRefusals) {
    w.open("mediaRefusals", &[])
        .text("authenticationFailures", &r.authentication_failures.to_string())
        .text("replays", &r.replays.to_string())
        .text("malformed", &r.malformed.to_string())
        .text("wrongPayloadType", &r.wrong_payload_type.to_string())
        .text("ssrcRefused", &r.ssrc_refused.to_string())
        .close("mediaRefusals");
}

/// `PUT /callLegs/<id>`: mute, layout, importance, live.
pub fn update_leg(api: &Api, id: Uuid, form: &Form) -> Result<Reply, Failure> {
    let changes = validate_changes(LEG_FIELDS, form, false)?;
    check_refs(api, &changes)?;
    api.bridge.update_call_leg(id, &changes).map_err(bridge_failure)?;
    Ok(Reply::default())
}

/// What `PUT /participants/<id>` may change (CMS 2.2+).
pub static PARTICIPANT_FIELDS: &[Field] = &[
    f("importance", Ty::Int(0, i32::MAX as i64)),
    f("nameLabelOverride", Ty::Text),
    f("layoutTemplate", Ty::Ref(Kind::LayoutTemplate)),
    f("controlRemoteCameraAllowed", B),
    // CMS 2.9: `false` lets a guest waiting for its host in (Meeting
    // Management's "admit"); `true` sends it back to wait.
    f("deactivated", B),
];

/// `PUT /participants/<id>`: importance (Meeting Management's "important"),
/// name label, layout template and `deactivated` (admitting a waiting guest),
/// applied to the participant's call legs, live.
pub fn update_participant(api: &Api, id: Uuid, form: &Form) -> Result<Reply, Failure> {
    let changes = validate_changes(PARTICIPANT_FIELDS, form, false)?;
    check_refs(api, &changes)?;
    let legs: Vec<Uuid> = api.bridge.call_legs().into_iter().filter(|l| l.participant == id).map(|l| l.id).collect();
    if legs.is_empty() {
        return Err(Failure::DoesNotExist { reason: "participantDoesNotExist", in_path: true });
    }
    for leg in legs {
        api.bridge.update_call_leg(leg, &changes).map_err(bridge_failure)?;
    }
    Ok(Reply::default())
}

/// What `PUT /calls/<id>/participants/*` takes (CMS 2.4).
pub static BULK_PARTICIPANT_FIELDS: &[Field] = &[
    f("rxAudioMute", B),
    f("txAudioMute", B),
    f("rxVideoMute", B),
    f("txVideoMute", B),
    f("layout", LAYOUT),
    f("importance", Ty::Int(0, i32::MAX as i64)),
    f("filterIds", Ty::Text),
    f("mode", Ty::Enum(&["exclude", "selected"])),
];

/// At most this many ids in `filterIds`, as CMS.
const MAX_FILTER_IDS: usize = 20;

/// `PUT /calls/<id>/participants/*` (Meeting Management's "mute all", "layout
/// for all"): the same change on every participant of the call but those
/// `filterIds` names (`mode=exclude`, the default), or on those alone
/// (`mode=selected`). `layout` is each leg's `chosenLayout`.
pub fn update_call_participants(api: &Api, call: Uuid, form: &Form) -> Result<Reply, Failure> {
    find_call(api, call)?;
    let mut filter: Vec<Uuid> = Vec::new();
    let mut selected = false;
    let mut changes: Vec<Change> = Vec::new();
    for change in validate_changes(BULK_PARTICIPANT_FIELDS, form, false)? {
        let value = change.value.as_deref().unwrap_or_default();
        match change.field.name {
            "filterIds" => {
                for id in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    filter.push(Uuid::parse_str(id).map_err(|_| Failure::parameter("filterIds", "invalidValue"))?);
                }
                if filter.len() > MAX_FILTER_IDS {
                    return Err(Failure::parameter("filterIds", "invalidValue"));
                }
            }
            "mode" => selected = value == "selected",
            "layout" => {
                let chosen = LEG_FIELDS.iter().find(|f| f.name == "chosenLayout").expect("callLegs take chosenLayout");
                changes.push(Change { field: chosen, value: change.value });
            }
            _ => changes.push(change),
        }
    }
    let legs: Vec<Uuid> = api
        .bridge
        .call_legs()
        .into_iter()
        .filter(|l| l.call == call && filter.contains(&l.participant) == selected)
        .map(|l| l.id)
        .collect();
    for leg in legs {
        match api.bridge.update_call_leg(leg, &changes) {
            // A leg that ended meanwhile is not an error of this request.
            Ok(()) | Err(BridgeError::CallLegDoesNotExist) => {}
            Err(e) => return Err(bridge_failure(e)),
        }
    }
    Ok(Reply::default())
}

/// `DELETE /callLegs/<id>`: hang up.
pub fn delete_leg(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    api.bridge.end_call_leg(id).map_err(bridge_failure)?;
    Ok(Reply::default())
}

/// `GET /participants` and `/calls/<id>/participants`.
pub fn list_participants(api: &Api, call: Option<Uuid>, query: &Form) -> Result<Reply, Failure> {
    if let Some(c) = call {
        find_call(api, c)?;
    }
    let parts: Vec<LiveParticipant> = api
        .bridge
        .participants()
        .into_iter()
        .filter(|p| call.is_none_or(|c| p.call == c))
        .filter(|p| text_filter(query, &[&p.name, &p.uri]))
        .collect();
    write_list("participants", parts, query, |w, p| {
        w.open("participant", &[("id", &p.id.to_string())])
            .text("name", &p.name)
            .text("call", &p.call.to_string())
            .close("participant");
    })
}

/// `GET /participants/<id>`.
pub fn get_participant(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    let p = api
        .bridge
        .participants()
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(Failure::DoesNotExist { reason: "participantDoesNotExist", in_path: true })?;
    let mut w = XmlWriter::new();
    w.open("participant", &[("id", &p.id.to_string())])
        .text("call", &p.call.to_string())
        .text("numCallLegs", &p.num_call_legs.to_string())
        .text("name", &p.name)
        .text("uri", &p.uri);
    w.open("configuration", &[]);
    if let Some(i) = p.importance {
        w.text("importance", &i.to_string());
    }
    w.close("configuration");
    w.open("status", &[])
        .text("state", p.state.as_str())
        .text("isActivator", if p.is_activator { "true" } else { "false" })
        .text("cameraControlAvailable", if p.camera_control_available { "true" } else { "false" })
        .close("status");
    w.close("participant");
    Ok(Reply::xml(w.finish()))
}
