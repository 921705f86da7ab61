//! Which object a request path names. CMS clients are loose with paths:
//! `/api/v1/cospaces`, `/api/v1/coSpaces/`, `/api/v1/callegs` (the spelling
//! in TMS's own trace) all occur, so matching ignores case, empty segments and
//! a trailing `/`. Ids must be GUIDs; anything else names nothing.

use uuid::Uuid;

use confero_store::schema::{spec, Kind, SPECS};

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `system/status`.
    Status,
    /// `system/alarms`.
    Alarms,
    /// `system/licensing`: the features this call bridge has.
    Licensing,
    /// `clusterLicensing`: the same for the deployment.
    ClusterLicensing,
    /// `system/multipartyLicensing`: license use.
    MultipartyLicensing,
    /// `system/multipartyLicensing/activePersonalLicenses`.
    ActivePersonalLicenses,
    /// `system/database`: the database's clustering.
    Database,
    /// `system/load`: the media processing load.
    Load,
    /// `callLegs/<id>/cameraControl`: far-end camera control.
    CameraControl(Uuid),
    /// `recorders/<id>/status` or `streamers/<id>/status`.
    NodeStatus(Kind, Uuid),
    /// `turnServers/<id>/status`: reachability.
    TurnServerStatus(Uuid),
    /// `clusterLicensing/raw`: Smart Licensing data for CMM.
    ClusterLicensingRaw,
    /// `webBridges/<id>/updateCustomization`.
    UpdateCustomization(Uuid),
    /// `layoutTemplates/<id>/template`: the JSON template itself.
    LayoutTemplateFile(Uuid),
    /// `system/MPLicenseUsage`: license usage snapshots.
    LicenseUsage,
    /// `system/MPLicenseUsage/knownHosts`: the hosts snapshots come from.
    LicenseUsageHosts,
    /// `accessQuery`: how a URI or call ID is reached.
    AccessQuery,
    /// `uriUsageQuery`: what holds a URI.
    UriUsageQuery,
    /// `conversationIdQuery`: a Lync conversation.
    ConversationIdQuery,
    /// A singleton configuration object (`system/profiles`, ...).
    Singleton(Kind),
    /// A list of stored objects, under `parent` for sub-collections.
    Collection {
        /// The objects' kind.
        kind: Kind,
        /// The object they live under (a space's access methods).
        parent: Option<Uuid>,
    },
    /// One stored object.
    Object {
        /// Its kind.
        kind: Kind,
        /// The object it lives under, when the path names one.
        parent: Option<Uuid>,
        /// Its id.
        id: Uuid,
    },
    /// `coSpaces/<id>/meetingEntryDetail`.
    MeetingEntryDetail(Uuid),
    /// `webBridges/<id>/status`: the C2W link's state.
    WebBridgeStatus(Uuid),
    /// `calls`.
    Calls,
    /// `calls/<id>`.
    Call(Uuid),
    /// `callLegs`, `calls/<id>/callLegs` or `participants/<id>/callLegs`.
    CallLegs {
        /// Only this call's.
        call: Option<Uuid>,
        /// Only this participant's.
        participant: Option<Uuid>,
    },
    /// `callLegs/<id>`.
    CallLeg(Uuid),
    /// `callLegs/<id>/generateKeyframe`.
    GenerateKeyframe(Uuid),
    /// `callLegs/<id>/callLegProfileTrace`.
    CallLegProfileTrace(Uuid),
    /// `callLegProfiles/<id>/usage`.
    CallLegProfileUsage(Uuid),
    /// `webBridges/<id>/effectiveWebBridgeProfile`, `tenants/<id>/...`
    /// (`Some(kind, id)`) or `system/profiles/effectiveWebBridgeProfile`.
    EffectiveWebBridgeProfile(Option<(Kind, Uuid)>),
    /// `users/<id>/usercoSpaces`.
    UserCoSpaces(Uuid),
    /// `coSpaces/<id>/diagnostics`.
    SpaceDiagnostics(Uuid),
    /// `calls/<id>/diagnostics`.
    CallDiagnostics(Uuid),
    /// `system/diagnostics`.
    SystemDiagnostics,
    /// `system/diagnostics/<id>`.
    Diagnostic(Uuid),
    /// `system/diagnostics/<id>/contents`.
    DiagnosticContents(Uuid),
    /// `participants` or `calls/<id>/participants`.
    Participants {
        /// Only this call's.
        call: Option<Uuid>,
    },
    /// `participants/<id>`.
    Participant(Uuid),
    /// `calls/<id>/participants/*`: every participant of a call at once.
    CallParticipantsBulk(Uuid),
    /// `system/cdrReceiver`: the single receiver of CMS before 1.8, which
    /// older scripts still use; it is the first of `system/cdrReceivers`.
    LegacyCdrReceiver,
}

/// Why a path names nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// Not an object type we know: `unrecognizedObject`.
    Unrecognized,
    /// An id that is not a GUID, or names nothing: the kind's `...DoesNotExist`.
    NoSuchObject(&'static str),
    /// `/api/v2/...` and the like: CMS's `invalidVersion` (only v1 exists).
    InvalidVersion,
}

const PREFIX: [&str; 2] = ["api", "v1"];

/// Resolves a request path (without the query string).
pub fn route(path: &str) -> Result<Target, RouteError> {
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(|s| s.to_ascii_lowercase()).collect();
    if segments.len() < 2 || segments[0] != PREFIX[0] {
        return Err(RouteError::Unrecognized);
    }
    if segments[1] != PREFIX[1] {
        let version =
            segments[1].strip_prefix('v').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        return Err(if version { RouteError::InvalidVersion } else { RouteError::Unrecognized });
    }
    let rest: Vec<&str> = segments[2..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["system", "status"] => return Ok(Target::Status),
        ["system", "alarms"] => return Ok(Target::Alarms),
        ["system", "licensing"] => return Ok(Target::Licensing),
        ["clusterlicensing"] => return Ok(Target::ClusterLicensing),
        ["clusterlicensing", "raw"] => return Ok(Target::ClusterLicensingRaw),
        ["recorders", id, "status"] => {
            return Ok(Target::NodeStatus(Kind::Recorder, id_of(id, "recorderDoesNotExist")?))
        }
        ["streamers", id, "status"] => {
            return Ok(Target::NodeStatus(Kind::Streamer, id_of(id, "streamerDoesNotExist")?))
        }
        ["layouttemplates", id, "template"] => {
            return Ok(Target::LayoutTemplateFile(id_of(id, "layoutTemplateDoesNotExist")?))
        }
        ["turnservers", id, "status"] => return Ok(Target::TurnServerStatus(id_of(id, "turnServerDoesNotExist")?)),
        ["webbridges", id, "updatecustomization"] => {
            return Ok(Target::UpdateCustomization(id_of(id, "webBridgeDoesNotExist")?))
        }
        ["system", "multipartylicensing"] => return Ok(Target::MultipartyLicensing),
        ["system", "multipartylicensing", "activepersonallicenses"] => return Ok(Target::ActivePersonalLicenses),
        ["system", "database"] => return Ok(Target::Database),
        ["system", "load"] => return Ok(Target::Load),
        ["system", "mplicenseusage"] => return Ok(Target::LicenseUsage),
        ["system", "mplicenseusage", "knownhosts"] => return Ok(Target::LicenseUsageHosts),
        ["accessquery"] => return Ok(Target::AccessQuery),
        ["uriusagequery"] => return Ok(Target::UriUsageQuery),
        ["conversationidquery"] => return Ok(Target::ConversationIdQuery),
        ["system", "cdrreceiver"] => return Ok(Target::LegacyCdrReceiver),
        ["calls"] => return Ok(Target::Calls),
        ["calls", id] => return Ok(Target::Call(id_of(id, "callDoesNotExist")?)),
        ["calls", id, legs] if is_call_legs(legs) => {
            return Ok(Target::CallLegs { call: Some(id_of(id, "callDoesNotExist")?), participant: None })
        }
        ["calls", id, "participants"] => {
            return Ok(Target::Participants { call: Some(id_of(id, "callDoesNotExist")?) })
        }
        ["calls", id, "participants", "*"] => return Ok(Target::CallParticipantsBulk(id_of(id, "callDoesNotExist")?)),
        [legs] if is_call_legs(legs) => return Ok(Target::CallLegs { call: None, participant: None }),
        [legs, id] if is_call_legs(legs) => return Ok(Target::CallLeg(id_of(id, "callLegDoesNotExist")?)),
        [legs, id, "cameracontrol"] if is_call_legs(legs) => {
            return Ok(Target::CameraControl(id_of(id, "callLegDoesNotExist")?))
        }
        [legs, id, "generatekeyframe"] if is_call_legs(legs) => {
            return Ok(Target::GenerateKeyframe(id_of(id, "callLegDoesNotExist")?))
        }
        [legs, id, "calllegprofiletrace"] if is_call_legs(legs) => {
            return Ok(Target::CallLegProfileTrace(id_of(id, "callLegDoesNotExist")?))
        }
        ["webbridges", id, "effectivewebbridgeprofile"] => {
            let id = id_of(id, "webBridgeDoesNotExist")?;
            return Ok(Target::EffectiveWebBridgeProfile(Some((Kind::WebBridge, id))));
        }
        ["tenants", id, "effectivewebbridgeprofile"] => {
            let id = id_of(id, "tenantDoesNotExist")?;
            return Ok(Target::EffectiveWebBridgeProfile(Some((Kind::Tenant, id))));
        }
        ["system", "profiles", "effectivewebbridgeprofile"] => return Ok(Target::EffectiveWebBridgeProfile(None)),
        ["users", id, "usercospaces"] => return Ok(Target::UserCoSpaces(id_of(id, "userDoesNotExist")?)),
        ["cospaces", id, "diagnostics"] => return Ok(Target::SpaceDiagnostics(id_of(id, "coSpaceDoesNotExist")?)),
        ["calls", id, "diagnostics"] => return Ok(Target::CallDiagnostics(id_of(id, "callDoesNotExist")?)),
        ["system", "diagnostics"] => return Ok(Target::SystemDiagnostics),
        ["system", "diagnostics", id] => return Ok(Target::Diagnostic(id_of(id, "diagnosticsDoesNotExist")?)),
        ["system", "diagnostics", id, "contents"] => {
            return Ok(Target::DiagnosticContents(id_of(id, "diagnosticsDoesNotExist")?))
        }
        ["calllegprofiles", id, "usage"] => {
            return Ok(Target::CallLegProfileUsage(id_of(id, "callLegProfileDoesNotExist")?))
        }
        ["participants"] => return Ok(Target::Participants { call: None }),
        ["participants", id] => return Ok(Target::Participant(id_of(id, "participantDoesNotExist")?)),
        ["participants", id, legs] if is_call_legs(legs) => {
            return Ok(Target::CallLegs { call: None, participant: Some(id_of(id, "participantDoesNotExist")?) })
        }
        ["webbridges", id, "status"] => return Ok(Target::WebBridgeStatus(id_of(id, "webBridgeDoesNotExist")?)),
        ["cospaces", id, "meetingentrydetail"] => {
            return Ok(Target::MeetingEntryDetail(id_of(id, "coSpaceDoesNotExist")?))
        }
        _ => {}
    }
    // Stored kinds: top-level paths may have one or more segments (system/cdrReceivers).
    for s in SPECS.iter().filter(|s| s.parent.is_none()) {
        let path: Vec<String> = s.path.split('/').map(str::to_ascii_lowercase).collect();
        let n = path.len();
        if rest.len() < n || rest[..n].iter().zip(&path).any(|(a, b)| a != b) {
            continue;
        }
        let tail = &rest[n..];
        if s.singleton {
            return if tail.is_empty() { Ok(Target::Singleton(s.kind)) } else { Err(RouteError::Unrecognized) };
        }
        return match tail {
            [] => Ok(Target::Collection { kind: s.kind, parent: None }),
            [id] => Ok(Target::Object { kind: s.kind, parent: None, id: id_of(id, s.missing)? }),
            [pid, sub, more @ ..] => {
                let child = SPECS
                    .iter()
                    .find(|c| c.parent == Some(s.kind) && c.path.eq_ignore_ascii_case(sub))
                    .ok_or(RouteError::Unrecognized)?;
                let parent = Some(id_of(pid, s.missing)?);
                match more {
                    [] => Ok(Target::Collection { kind: child.kind, parent }),
                    [id] => Ok(Target::Object { kind: child.kind, parent, id: id_of(id, child.missing)? }),
                    _ => Err(RouteError::Unrecognized),
                }
            }
        };
    }
    Err(RouteError::Unrecognized)
}

fn is_call_legs(segment: &str) -> bool {
    segment == "calllegs" || segment == "callegs"
}

fn id_of(segment: &str, missing: &'static str) -> Result<Uuid, RouteError> {
    // Only the canonical 8-4-4-4-12 form: Uuid::parse_str also takes braces and urn: forms.
    if segment.len() != 36 {
        return Err(RouteError::NoSuchObject(missing));
    }
    Uuid::parse_str(segment).map_err(|_| RouteError::NoSuchObject(missing))
}

/// The canonical path of a stored object, for `Location`.
pub fn location(kind: Kind, parent: Option<Uuid>, id: Uuid) -> String {
    let s = spec(kind);
    match (s.parent, parent) {
        (Some(pk), Some(p)) => format!("/api/v1/{}/{}/{}/{}", spec(pk).path, p, s.path, id),
        _ => format!("/api/v1/{}/{}", s.path, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "458075bc-6def-4052-8ed6-b1192d6e6b35";

    #[test]
    fn case_and_slashes() {
        let want = Target::Collection { kind: Kind::CoSpace, parent: None };
        for p in ["/api/v1/coSpaces", "/api/v1/cospaces", "/api/v1/COSPACES/", "/API/V1//coSpaces"] {
            assert_eq!(route(p), Ok(want), "{p}");
        }
        let id = Uuid::parse_str(ID).unwrap();
        assert_eq!(
            route(&format!("/api/v1/cospaces/{ID}")),
            Ok(Target::Object { kind: Kind::CoSpace, parent: None, id })
        );
        assert_eq!(
            route(&format!("/api/v1/coSpaces/{}/accessmethods/", ID.to_uppercase())),
            Ok(Target::Collection { kind: Kind::AccessMethod, parent: Some(id) })
        );
    }

    #[test]
    fn call_legs_alias() {
        let id = Uuid::parse_str(ID).unwrap();
        assert_eq!(route("/api/v1/callegs"), Ok(Target::CallLegs { call: None, participant: None }));
        assert_eq!(
            route(&format!("/api/v1/calls/{ID}/callegs")),
            Ok(Target::CallLegs { call: Some(id), participant: None })
        );
        assert_eq!(route(&format!("/api/v1/callLegs/{ID}")), Ok(Target::CallLeg(id)));
    }

    #[test]
    fn bulk_and_system() {
        assert_eq!(route("/api/v1/coSpaceBulkSyncs"), Ok(Target::Collection { kind: Kind::BulkSync, parent: None }));
        assert_eq!(
            route("/api/v1/cospaceBulkParameterSets"),
            Ok(Target::Collection { kind: Kind::BulkParameterSet, parent: None })
        );
        assert_eq!(route("/api/v1/system/status"), Ok(Target::Status));
        assert_eq!(route("/api/v1/system/cdrReceiver"), Ok(Target::LegacyCdrReceiver));
        assert_eq!(route("/api/v1/system/profiles"), Ok(Target::Singleton(Kind::SystemProfiles)));
        assert_eq!(route("/api/v1/system/configuration/xmpp"), Ok(Target::Singleton(Kind::XmppConfiguration)));
        assert_eq!(
            route("/api/v1/system/cdrReceivers"),
            Ok(Target::Collection { kind: Kind::CdrReceiver, parent: None })
        );
    }

    #[test]
    fn nothing_named() {
        assert_eq!(route("/api/v1/teapots"), Err(RouteError::Unrecognized));
        assert_eq!(route("/api/v2/coSpaces"), Err(RouteError::InvalidVersion));
        assert_eq!(route("/api/V0/coSpaces"), Err(RouteError::InvalidVersion));
        assert_eq!(route("/api/vx/coSpaces"), Err(RouteError::Unrecognized));
        assert_eq!(route("/api/v1/coSpaces/nope"), Err(RouteError::NoSuchObject("coSpaceDoesNotExist")));
        assert_eq!(route(&format!("/api/v1/coSpaces/{ID}/widgets")), Err(RouteError::Unrecognized));
        assert_eq!(route("/"), Err(RouteError::Unrecognized));
    }

    #[test]
    fn locations_are_camel_case() {
        let id = Uuid::parse_str(ID).unwrap();
        assert_eq!(location(Kind::BulkSync, None, id), format!("/api/v1/cospaceBulkSyncs/{ID}"));
        assert_eq!(location(Kind::AccessMethod, Some(id), id), format!("/api/v1/coSpaces/{ID}/accessMethods/{ID}"));
    }
}
