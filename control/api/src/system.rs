//! `system/status` and `system/alarms`: what TMS polls before every action.

use super::failure::Failure;
use super::xml::XmlWriter;
use super::{page_of, Api, Reply};
use crate::cdr::cms_time;
use confero_store::form::Form;

/// The version string clients see.
pub const SOFTWARE_VERSION: &str = concat!("confero-", env!("CARGO_PKG_VERSION"));

/// `GET system/status`.
pub fn status(api: &Api) -> Reply {
    let c = api.bridge.counters();
    let cluster_enabled = api.store.all(confero_store::schema::Kind::CallBridge, None).len() > 1;
    let mut w = XmlWriter::new();
    w.open("status", &[])
        .text("hostId", &api.host_id.to_string())
        .text("softwareVersion", SOFTWARE_VERSION)
        .text("uptimeSeconds", &api.started.elapsed().as_secs().to_string())
        .text("cdrTime", &cms_time(std::time::SystemTime::now()))
        .text("activated", "true")
        .text("clusterEnabled", if cluster_enabled { "true" } else { "false" })
        .text("cdrCorrelatorIndex", &api.cdr.next_index().to_string())
        .text("callLegsActive", &c.call_legs_active.to_string())
        .text("callLegsMaxActive", &c.call_legs_max_active.to_string())
        .text("callLegsCompleted", &c.call_legs_completed.to_string())
        .text("audioBitRateOutgoing", &c.audio_bit_rate_outgoing.to_string())
        .text("audioBitRateIncoming", &c.audio_bit_rate_incoming.to_string())
        .text("videoBitRateOutgoing", &c.video_bit_rate_outgoing.to_string())
        .text("videoBitRateIncoming", &c.video_bit_rate_incoming.to_string());
    // CMS has no such element; ours, after its own, so clients that read
    // CMS's status by name are unaffected (as with `mediaRefusals`).
    w.text("xmppStatus", api.xmpp_link.get().as_str());
    super::calls::write_refusals(&mut w, &c.media_refusals);
    w.close("status");
    Reply::xml(w.finish())
}

/// `GET system/alarms`.
pub fn alarms(api: &Api, query: &Form) -> Result<Reply, Failure> {
    let page = page_of(query)?;
    let all = api.alarms.list();
    let mut w = XmlWriter::new();
    w.open("alarms", &[("total", &all.len().to_string())]);
    for a in all.iter().skip(page.offset).take(page.limit) {
        w.open("alarm", &[("id", &a.id.to_string())])
            .text("type", a.kind)
            .text("activeTimeSeconds", &a.since.elapsed().as_secs().to_string());
        if let Some(r) = a.failure_reason {
            w.text("failureReason", r);
        }
        w.close("alarm");
    }
    w.close("alarms");
    Ok(Reply::xml(w.finish()))
}

/// `GET webBridges/<id>/status`: our C2W link to that web bridge.
pub fn web_bridge_status(api: &Api, id: uuid::Uuid) -> Result<Reply, Failure> {
    use crate::web_links::LinkState;
    if api.store.get(confero_store::schema::Kind::WebBridge, id).is_none() {
        return Err(Failure::DoesNotExist { reason: "webBridgeDoesNotExist", in_path: true });
    }
    let link = api.web_links.get(id);
    let (state, guid, web_address, reason) = match link.as_ref().map(|l| &l.state) {
        None => ("notConfigured", None, None, None),
        Some(LinkState::Connecting) => ("connecting", None, None, None),
        Some(LinkState::Connected { guid, web_address }) => {
            ("connected", Some(guid.as_str()), web_address.as_deref(), None)
        }
        Some(LinkState::Failed { reason }) => ("failed", None, None, Some(*reason)),
    };
    let mut w = XmlWriter::new();
    w.open("webBridgeStatus", &[("id", &id.to_string())]).text("c2wState", state);
    if let Some(l) = &link {
        w.text("url", &l.url).text("stateDurationSeconds", &l.since.elapsed().as_secs().to_string());
    }
    if let Some(g) = guid {
        w.text("guid", g);
    }
    if let Some(a) = web_address {
        w.text("webAddress", a);
    }
    if let Some(r) = reason {
        w.text("failureReason", r);
    }
    w.close("webBridgeStatus");
    Ok(Reply::xml(w.finish()))
}

/// Every feature CMS licenses, as `system/licensing` and `clusterLicensing`
/// name them. Confero is open: each is activated, without an expiry.
const LICENSED_FEATURES: &[&str] = &[
    "callBridge",
    "callBridgeNoEncryption",
    "webBridge",
    "turn",
    "branding",
    "customizations",
    "recording",
    "streaming",
    "personal",
    "shared",
    "capacityUnits",
];

/// `GET system/licensing` (element `licensing`) or `GET clusterLicensing`
/// (element `clusterLicensing`): every feature activated. Branding's level is
/// `multipleBrands`, as CMS reports a full branding license.
pub fn licensing(element: &str) -> Reply {
    let mut w = XmlWriter::new();
    w.open(element, &[]).open("features", &[]);
    for feature in LICENSED_FEATURES {
        w.open(feature, &[]).text("status", "activated");
        if *feature == "branding" {
            w.text("level", "multipleBrands");
        }
        w.close(feature);
    }
    w.close("features").close(element);
    Reply::xml(w.finish())
}

/// The license limits `system/multipartyLicensing` reports: Confero has
/// none, so a figure no deployment reaches (clients divide use by it).
const OPEN_LICENSE_LIMIT: u32 = 1_000_000;

/// `GET system/multipartyLicensing`: what is in use now — users in the
/// store, live participants and calls — against limits nobody reaches.
pub fn multiparty_licensing(api: &Api) -> Reply {
    let users = api.store.all(confero_store::schema::Kind::User, None).len();
    let live = api.bridge.calls();
    let calls = live.len();
    let personal = crate::license_usage::PersonalLicenses::of(&*api.store);
    let licensed_calls = live.iter().filter(|c| c.co_space.is_some_and(|s| personal.spaces.contains(&s))).count();
    let shared_calls = calls - licensed_calls;
    let participants = api.bridge.participants().len();
    let mut w = XmlWriter::new();
    w.open("multipartyLicensing", &[])
        .text("timestamp", &cms_time(std::time::SystemTime::now()))
        .text("personalLicenseLimit", &OPEN_LICENSE_LIMIT.to_string())
        .text("sharedLicenseLimit", &OPEN_LICENSE_LIMIT.to_string())
        .text("capacityUnitLimit", &OPEN_LICENSE_LIMIT.to_string())
        .text("users", &users.to_string())
        .text("personalLicenses", &personal.assigned.to_string())
        .text("participantsActive", &participants.to_string())
        .text("callsActive", &calls.to_string())
        .text("weightedCallsActive", &format!("{calls}.000"))
        .text("callsWithoutPersonalLicense", &shared_calls.to_string())
        .text("weightedCallsWithoutPersonalLicense", &format!("{shared_calls}.000"))
        .close("multipartyLicensing");
    Reply::xml(w.finish())
}

/// `GET system/multipartyLicensing/activePersonalLicenses`: none (nobody
/// holds a personal license where none is needed).
pub fn active_personal_licenses() -> Reply {
    Reply::xml("<?xml version=\"1.0\"?><activePersonalLicenses total=\"0\"></activePersonalLicenses>".to_string())
}

/// `GET system/load`: `mediaProcessingLoad`, how busy the media workers
/// were over the last second, 1000 for each worker busy all the time (a
/// machine's full load is 1000 per media worker, one per core by default).
/// `system/configuration/cluster`'s `loadLimit` is in the same units.
pub fn load(api: &Api) -> Reply {
    let load = api.bridge.counters().media_load;
    let mut w = XmlWriter::new();
    w.open("load", &[]).text("mediaProcessingLoad", &load.to_string()).close("load");
    Reply::xml(w.finish())
}

/// `GET clusterLicensing/raw`: CMS keeps Smart Licensing data here for
/// Cisco Meeting Management; Confero needs no licence, so there is none
/// (the reference answers 200 and documents no content).
pub fn cluster_licensing_raw() -> Reply {
    let mut w = XmlWriter::new();
    w.open("clusterLicensingRaw", &[]).close("clusterLicensingRaw");
    Reply::xml(w.finish())
}

/// `GET recorders/<id>/status`, `GET streamers/<id>/status`: Confero
/// neither records nor streams, so a recorder or streamer is never used by
/// this call bridge (`unused`, CMS's word for it), unless its `url` is not
/// one (`invalidAddress`).
pub fn node_status(api: &Api, kind: confero_store::schema::Kind, id: uuid::Uuid) -> Result<Reply, Failure> {
    use confero_store::schema::Kind;
    let (element, missing, active) = match kind {
        Kind::Recorder => ("recorder", "recorderDoesNotExist", "activeRecordings"),
        _ => ("streamer", "streamerDoesNotExist", "activeStreams"),
    };
    let object = api.store.get(kind, id).ok_or(Failure::DoesNotExist { reason: missing, in_path: true })?;
    let url = object.get("url").unwrap_or("");
    let scheme_ok =
        ["https://", "http://", "rtmp://", "rtmps://"].iter().any(|p| url.to_ascii_lowercase().starts_with(p));
    let status = if scheme_ok { "unused" } else { "invalidAddress" };
    let mut w = XmlWriter::new();
    w.open(element, &[("id", &id.to_string())]).text("status", status).text(active, "0").close(element);
    Ok(Reply::xml(w.finish()))
}

/// `GET turnServers/<id>/status`: a STUN Binding request to its
/// `serverAddress` (see [`crate::turn_probe`]); `numAllocations` is ours on
/// it, none (Confero's browsers reach it directly, ICE-lite).
pub fn turn_server_status(api: &Api, id: uuid::Uuid) -> Result<Reply, Failure> {
    use crate::turn_probe::{probe, server_address, Probe};
    let object = api
        .store
        .get(confero_store::schema::Kind::TurnServer, id)
        .ok_or(Failure::DoesNotExist { reason: "turnServerDoesNotExist", in_path: true })?;
    let configured = object.get("serverAddress").unwrap_or("");
    let found = match server_address(configured) {
        Some(server) => probe(server),
        None => Probe::BadAddress,
    };
    let mut w = XmlWriter::new();
    w.open("turnServer", &[("id", &id.to_string())]);
    match found {
        Probe::BadAddress => {
            w.text("address", configured).text("reachable", "false");
        }
        Probe::Unreachable(server) => {
            w.text("address", &server.ip().to_string())
                .text("portNumber", &server.port().to_string())
                .text("reachable", "false");
        }
        Probe::Reachable { server, round_trip, mapped } => {
            w.text("address", &server.ip().to_string())
                .text("portNumber", &server.port().to_string())
                .text("reachable", "true")
                .text("roundTripTimeMs", &round_trip.as_millis().max(1).to_string())
                .text("mappedAddress", &mapped.ip().to_string())
                .text("mappedPortNumber", &mapped.port().to_string());
        }
    }
    w.text("numAllocations", "0").close("turnServer");
    Ok(Reply::xml(w.finish()))
}

/// `POST webBridges/<id>/updateCustomization`: re-retrieve the web bridge's
/// customization archive (its `resourceArchive`, else its web bridge
/// profile's) and push it again; done by the C2W client at once, a failure
/// raising `webBridgeArchiveRetrievalFailure`. A web bridge without an
/// archive gets the web app's own look pushed again.
pub fn update_customization(api: &Api, id: uuid::Uuid) -> Result<Reply, Failure> {
    api.store
        .get(confero_store::schema::Kind::WebBridge, id)
        .ok_or(Failure::DoesNotExist { reason: "webBridgeDoesNotExist", in_path: true })?;
    api.web_links.request_customization(id);
    Ok(Reply::empty())
}

/// `GET system/database`: the embedded store is not a database cluster.
pub fn database() -> Reply {
    let mut w = XmlWriter::new();
    w.open("database", &[("clustered", "disabled")]).close("database");
    Reply::xml(w.finish())
}
