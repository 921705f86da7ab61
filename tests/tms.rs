//! The sequence Cisco TMS sends to a CMS (../shared/CMS-API.md, from the API
//! trace in seeds/003): adding the bridge, reserving placeholders with a bulk
//! sync, starting a meeting with an auto-dial, extending it and ending it.
//! Request bodies are the bytes TMS sends, content sizes matching the trace.

mod common;
use common::*;

/// Runs one step as TMS does: without credentials first when `challenge`, then with.
fn tms(c: &Confero, method: &str, path: &str, body: Option<&str>, challenge: bool) -> Answer {
    if challenge {
        let first = c.send(method, path, body.map(str::as_bytes), false);
        assert_eq!(first.status, 401, "{method} {path}");
        assert_eq!(first.www_authenticate.as_deref(), Some("Basic realm=\"acano\""));
    }
    let a = c.send(method, path, body.map(str::as_bytes), true);
    assert_eq!(a.status, 200, "{method} {path} {body:?}: {}", a.body);
    if !a.body.is_empty() {
        assert!(a.body.starts_with("<?xml version=\"1.0\"?><"), "{}", a.body);
        assert!(!a.body.contains('\n'), "one line: {}", a.body);
    }
    a
}

#[test]
fn tms_adds_bridge_reserves_placeholders_runs_and_ends_a_meeting() {
    let c = Confero::start();

    // Adding the bridge.
    let status = tms(&c, "GET", "/api/v1/system/status", None, true);
    for e in [
        "softwareVersion",
        "uptimeSeconds",
        "cdrTime",
        "activated",
        "clusterEnabled",
        "callLegsActive",
        "callLegsMaxActive",
    ] {
        assert!(element(&status.body, e).is_some(), "{e} in {}", status.body);
    }
    let bridges = tms(&c, "GET", "/api/v1/callBridges", None, false);
    for id in ids(&bridges.body) {
        tms(&c, "GET", &format!("/api/v1/callBridges/{id}"), None, false);
    }
    let body = "participantLimit=1000&messageBoardEnabled=false";
    assert_eq!(body.len(), 47);
    let cp = tms(&c, "POST", "/api/v1/callProfiles", Some(body), false);
    assert!(cp.body.is_empty());
    let call_profile = id_from_location(cp.location.as_deref().unwrap());
    assert_eq!(cp.location.as_deref(), Some(format!("/api/v1/callProfiles/{call_profile}").as_str()));
    let body = "defaultLayout=telepresence&changeLayoutAllowed=true&presentationContributionAllowed=true&\
                presentationViewingAllowed=true&muteSelfAllowed=true&videoMuteSelfAllowed=true";
    assert_eq!(body.len(), 167);
    let clp = tms(&c, "POST", "/api/v1/callLegProfiles", Some(body), false);
    let call_leg_profile = id_from_location(clp.location.as_deref().unwrap());
    assert!(clp.location.unwrap().starts_with("/api/v1/callLegProfiles/"));

    // Reserving placeholders.
    let body = format!(
        "startIndex=1&endIndex=5&coSpaceUriMapping=$index$&coSpaceNameMapping=TMS_Scheduled_Meeting_$index$&\
         coSpaceCallIdMapping=$index$&callProfile={call_profile}&callLegProfile={call_leg_profile}&nonMemberAccess=false"
    );
    let set = tms(&c, "POST", "/api/v1/cospaceBulkParameterSets", Some(&body), false);
    let set_id = id_from_location(set.location.as_deref().unwrap());
    assert_eq!(set.location.as_deref(), Some(format!("/api/v1/cospaceBulkParameterSets/{set_id}").as_str()));
    let body = format!("cospaceBulkParameterSet={set_id}");
    assert_eq!(body.len(), 60);
    let sync = tms(&c, "POST", "/api/v1/cospaceBulkSyncs", Some(&body), false);
    let sync_path = sync.location.unwrap();
    assert!(sync_path.starts_with("/api/v1/cospaceBulkSyncs/"));
    assert!(eventually(|| element(&c.get(&sync_path).body, "status") == Some("complete")));
    let synced = tms(&c, "GET", &sync_path, None, false);
    assert_eq!(element(&synced.body, "cospaceBulkParameterSet"), Some(set_id.as_str()));
    tms(&c, "GET", "/api/v1/system/status", None, false);

    // Starting a meeting.
    tms(&c, "GET", "/api/v1/system/status", None, false);
    let parts = tms(&c, "GET", "/api/v1/participants", None, false);
    assert_eq!(parts.body, "<?xml version=\"1.0\"?><participants total=\"0\"></participants>");
    let spaces = tms(&c, "GET", "/api/v1/coSpaces", None, true);
    assert_eq!(total(&spaces.body), 5);
    for i in 1..=5 {
        assert!(spaces.body.contains(&format!("<name>TMS_Scheduled_Meeting_{i}</name>")), "{}", spaces.body);
        assert!(spaces.body.contains(&format!("<uri>{i}</uri><callId>{i}</callId>")), "{}", spaces.body);
    }
    let space = ids(&spaces.body)[0].clone();
    let one = c.get(&format!("/api/v1/coSpaces/{space}"));
    assert_eq!(element(&one.body, "name"), Some("TMS_Scheduled_Meeting_1"));
    assert_eq!(element(&one.body, "nonMemberAccess"), Some("false"));
    assert_eq!(element(&one.body, "callProfile"), Some(call_profile.as_str()));
    assert_eq!(element(&one.body, "callLegProfile"), Some(call_leg_profile.as_str()));
    let start_body = "&nonMemberAccess=true&passcode=&name=Tim Kratzke Acano TMSXE Test Meeting&\
                      secret=86db1bdd-5cf7-4ea8-b88d-479195f4701a";
    assert_eq!(start_body.len(), 117);
    let space_path = format!("/api/v1/cospaces/{space}");
    let put = tms(&c, "PUT", &space_path, Some(start_body), false);
    assert!(put.body.is_empty());
    let body = format!("coSpace={space}");
    assert_eq!(body.len(), 44);
    let call = tms(&c, "POST", "/api/v1/calls", Some(&body), false);
    let call_id = id_from_location(call.location.as_deref().unwrap());
    assert_eq!(call.location.as_deref(), Some(format!("/api/v1/calls/{call_id}").as_str()));
    tms(&c, "GET", "/api/v1/system/status", None, false);
    tms(&c, "GET", "/api/v1/coSpaces", None, false);
    let calls = tms(&c, "GET", "/api/v1/calls", None, false);
    assert_eq!(total(&calls.body), 1);
    assert_eq!(element(&calls.body, "name"), Some("Tim Kratzke Acano TMSXE Test Meeting"));
    assert_eq!(element(&calls.body, "coSpace"), Some(space.as_str()));
    assert!(element(&calls.body, "callCorrelator").is_some());
    let legs = tms(&c, "GET", "/api/v1/callegs", None, false);
    assert_eq!(legs.body, "<?xml version=\"1.0\"?><callLegs total=\"0\"></callLegs>");
    let body = "remoteParty=desk.ex90@tkratzke.local";
    assert_eq!(body.len(), 36);
    let leg = tms(&c, "POST", &format!("/api/v1/calls/{call_id}/callegs"), Some(body), false);
    let leg_location = leg.location.unwrap();
    assert!(leg_location.starts_with("/api/v1/callLegs/") && leg_location.len() == 17 + 36, "{leg_location}");

    // Extending: the same PUT again.
    tms(&c, "PUT", &space_path, Some(start_body), false);
    let one = c.get(&space_path);
    assert_eq!(element(&one.body, "name"), Some("Tim Kratzke Acano TMSXE Test Meeting"));
    assert_eq!(element(&one.body, "secret"), Some("86db1bdd-5cf7-4ea8-b88d-479195f4701a"));
    assert_eq!(element(&one.body, "nonMemberAccess"), Some("true"));
    assert_eq!(element(&one.body, "passcode"), None);

    // Ending.
    tms(&c, "GET", "/api/v1/system/status", None, false);
    tms(&c, "GET", "/api/v1/coSpaces", None, false);
    tms(&c, "GET", "/api/v1/calls", None, false);
    tms(&c, "GET", "/api/v1/coSpaces", None, false);
    let end_body = "&nonMemberAccess=false&passcode=&name=TMS_Scheduled_Meeting_1&regenerateSecret=true";
    assert_eq!(end_body.len(), 83);
    tms(&c, "PUT", &space_path, Some(end_body), false);
    let del = tms(&c, "DELETE", &format!("/api/v1/calls/{call_id}"), None, false);
    assert!(del.body.is_empty());

    let one = c.get(&space_path);
    assert_eq!(element(&one.body, "name"), Some("TMS_Scheduled_Meeting_1"));
    assert_eq!(element(&one.body, "nonMemberAccess"), Some("false"));
    let secret = element(&one.body, "secret").unwrap();
    assert_ne!(secret, "86db1bdd-5cf7-4ea8-b88d-479195f4701a");
    assert_eq!(secret.len(), 22);
    assert_eq!(c.get("/api/v1/calls").body, "<?xml version=\"1.0\"?><calls total=\"0\"></calls>");
    assert_eq!(c.get(&format!("/api/v1/calls/{call_id}")).status, 404);

    // The trace masks what TMS sent as secrets.
    let log = c.log_text();
    assert!(log.contains("passcode=*****"), "{log}");
    assert!(log.contains("secret=*****"));
    assert!(!log.contains("86db1bdd-5cf7-4ea8-b88d-479195f4701a"), "secret in the log");
}
