//! The client habits of ../shared/CMS-API.md, one test each, against the real
//! binary over HTTPS.

mod common;
use common::*;

#[test]
fn missing_or_wrong_credentials_get_401_with_realm_acano() {
    let c = Confero::start();
    for creds in [None, Some((USER, "wrong")), Some(("nobody", PASSWORD))] {
        let a = c.send_with("GET", "/api/v1/coSpaces", None, creds, None);
        assert_eq!(a.status, 401);
        assert_eq!(a.www_authenticate.as_deref(), Some("Basic realm=\"acano\""));
    }
}

#[test]
fn basic_without_a_space_is_accepted() {
    let c = Confero::start();
    use base64_lite::encode;
    let token = encode(format!("{USER}:{PASSWORD}").as_bytes());
    let resp =
        agent().get(c.url("/api/v1/system/status")).header("authorization", format!("Basic{token}")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn wrong_or_missing_content_type_is_still_a_form() {
    let c = Confero::start();
    for ct in ["x-www-form-urlencoded", "text/plain", ""] {
        let a =
            c.send_with("POST", "/api/v1/coSpaces", Some(b"name=Typed&uri=typed"), Some((USER, PASSWORD)), Some(ct));
        assert_eq!(a.status, 200, "{ct}: {}", a.body);
        let id = id_from_location(&a.location.unwrap());
        assert_eq!(element(&c.get(&format!("/api/v1/coSpaces/{id}")).body, "name"), Some("Typed"));
        c.delete(&format!("/api/v1/coSpaces/{id}"));
    }
    let resp =
        agent().post(c.url("/api/v1/coSpaces")).basic_auth(USER, Some(PASSWORD)).body("name=NoType").send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn empty_pairs_and_a_leading_ampersand_are_tolerated() {
    let c = Confero::start();
    let id = c.create("/api/v1/coSpaces", "&&name=Amp&&uri=amp&");
    assert_eq!(element(&c.get(&format!("/api/v1/coSpaces/{id}")).body, "uri"), Some("amp"));
}

#[test]
fn parameter_names_match_case_insensitively() {
    let c = Confero::start();
    let id = c.create("/api/v1/coSpaces", "NAME=Upper&URI=up&CALLID=77&nonmemberaccess=false");
    let one = c.get(&format!("/api/v1/coSpaces/{id}")).body;
    assert_eq!(element(&one, "name"), Some("Upper"));
    assert_eq!(element(&one, "callId"), Some("77"));
    assert_eq!(element(&one, "nonMemberAccess"), Some("false"));
}

#[test]
fn put_leaves_omitted_parameters_and_unsets_empty_ones() {
    let c = Confero::start();
    let id = c.create("/api/v1/coSpaces", "name=Keep&uri=keep&callId=55&passcode=1234");
    let path = format!("/api/v1/coSpaces/{id}");
    assert_eq!(c.put(&path, "name=Renamed&callId=").status, 200);
    let one = c.get(&path).body;
    assert_eq!(element(&one, "name"), Some("Renamed"));
    assert_eq!(element(&one, "uri"), Some("keep"));
    assert_eq!(element(&one, "passcode"), Some("1234"));
    assert_eq!(element(&one, "callId"), None);
    // The freed call ID can be used by another space.
    c.create("/api/v1/coSpaces", "name=Other&callId=55");
}

#[test]
fn success_is_200_with_empty_body_and_camel_case_location() {
    let c = Confero::start();
    let a = c.post("/api/v1/cospaces", "name=Loc");
    assert_eq!(a.status, 200);
    assert!(a.body.is_empty());
    let loc = a.location.unwrap();
    assert!(loc.starts_with("/api/v1/coSpaces/"), "{loc}");
    let id = id_from_location(&loc);
    let am = c.post(&format!("/api/v1/COSPACES/{id}/accessmethods"), "uri=loc.guest");
    assert!(am.location.unwrap().starts_with(&format!("/api/v1/coSpaces/{id}/accessMethods/")));
    let tpl = c.create("/api/v1/coSpaceTemplates", "name=T");
    let amt = c.post(&format!("/api/v1/cospacetemplates/{tpl}/accessmethodtemplates"), "uriGenerator=$.guest");
    assert!(amt.location.unwrap().starts_with(&format!("/api/v1/coSpaceTemplates/{tpl}/accessMethodTemplates/")));
    for (path, body) in [
        ("/api/v1/outbounddialplanrules", "domain=*.example.com"),
        ("/api/v1/SYSTEM/CDRRECEIVERS", "uri=http://127.0.0.1:9/"),
    ] {
        let a = c.post(path, body);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let loc = a.location.unwrap();
        assert!(loc.contains("outboundDialPlanRules/") || loc.contains("system/cdrReceivers/"), "{loc}");
    }
    assert_eq!(c.put(&format!("/api/v1/coSpaces/{id}"), "name=x").status, 200);
    assert_eq!(c.delete(&format!("/api/v1/coSpaces/{id}")).status, 200);
}

#[test]
fn guids_are_lower_case_8_4_4_4_12() {
    let c = Confero::start();
    let id = c.create("/api/v1/callProfiles", "participantLimit=5");
    assert_eq!(id.len(), 36);
    assert_eq!(id, id.to_lowercase());
    let dashes: Vec<usize> = id.match_indices('-').map(|(i, _)| i).collect();
    assert_eq!(dashes, vec![8, 13, 18, 23]);
    // An upper-case id in the path names the same object.
    assert_eq!(c.get(&format!("/api/v1/callProfiles/{}", id.to_uppercase())).status, 200);
}

#[test]
fn responses_are_one_line_text_xml_and_lists_always_carry_total() {
    let c = Confero::start();
    for path in [
        "/api/v1/coSpaces",
        "/api/v1/callProfiles",
        "/api/v1/calls",
        "/api/v1/callLegs",
        "/api/v1/participants",
        "/api/v1/tenants",
        "/api/v1/system/alarms",
        "/api/v1/system/cdrReceivers",
        "/api/v1/dialTransforms",
    ] {
        let a = c.get(path);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.content_type.as_deref(), Some("text/xml"));
        assert!(a.body.starts_with("<?xml version=\"1.0\"?><"), "{}", a.body);
        assert!(!a.body.contains('\n'));
        assert_eq!(total(&a.body), 0, "{path}");
    }
    for path in [
        "/api/v1/system/status",
        "/api/v1/system/profiles",
        "/api/v1/system/configuration/xmpp",
        "/api/v1/system/configuration/cluster",
    ] {
        let a = c.get(path);
        assert_eq!(a.status, 200, "{path}");
        assert!(!a.body.contains(" id=\""), "singletons have no id: {}", a.body);
    }
}

#[test]
fn paths_are_case_insensitive_with_aliases_trailing_slash_and_bare_query() {
    let c = Confero::start();
    c.create("/api/v1/coSpaces", "name=P");
    for path in [
        "/api/v1/coSpaces",
        "/api/v1/cospaces",
        "/api/v1/COSPACES",
        "/api/v1/coSpaces/",
        "/api/v1/coSpaces?",
        "/api/v1/coSpaces/?",
    ] {
        let a = c.get(path);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(total(&a.body), 1, "{path}");
    }
    for path in [
        "/api/v1/callLegs",
        "/api/v1/calllegs",
        "/api/v1/callegs",
        "/api/v1/coSpaceBulkSyncs",
        "/api/v1/cospacebulksyncs",
    ] {
        assert_eq!(c.get(path).status, 200, "{path}");
    }
}

#[test]
fn paging_defaults_to_ten_and_honours_offset_and_limit() {
    let c = Confero::start();
    for i in 0..25 {
        c.create("/api/v1/coSpaces", &format!("name=Page{i:02}&uri=page{i}"));
    }
    let first = c.get("/api/v1/coSpaces").body;
    assert_eq!(total(&first), 25);
    assert_eq!(ids(&first).len(), 10);
    // Paging as clients do: increase offset while offset + returned < total.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = c.get(&format!("/api/v1/coSpaces?offset={offset}&limit=7")).body;
        let got = ids(&page);
        seen.extend(got.clone());
        offset += got.len();
        if got.is_empty() || offset >= total(&page) {
            break;
        }
    }
    assert_eq!(seen.len(), 25);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25, "no object twice");
    assert_eq!(ids(&c.get("/api/v1/coSpaces?limit=100").body).len(), 25);
    assert_eq!(c.get("/api/v1/coSpaces?limit=abc").status, 400);
}

#[test]
fn filter_matches_name_uri_and_call_id() {
    let c = Confero::start();
    c.create("/api/v1/coSpaces", "name=Sales Weekly&uri=sales.weekly&callId=4001");
    c.create("/api/v1/coSpaces", "name=Engineering&uri=eng&callId=4002");
    c.create("/api/v1/coSpaces", "name=Board&uri=board&callId=9999");
    assert_eq!(total(&c.get("/api/v1/coSpaces?filter=sales").body), 1);
    assert_eq!(total(&c.get("/api/v1/coSpaces?filter=ENG").body), 1);
    assert_eq!(total(&c.get("/api/v1/coSpaces?filter=400").body), 2);
    assert_eq!(total(&c.get("/api/v1/coSpaces?filter=nothing").body), 0);
    let clp = c.create("/api/v1/callLegProfiles", "defaultLayout=stacked");
    c.create("/api/v1/coSpaces", &format!("name=WithProfile&callLegProfile={clp}"));
    assert_eq!(total(&c.get(&format!("/api/v1/coSpaces?callLegProfileFilter={clp}")).body), 1);
    assert_eq!(total(&c.get("/api/v1/callLegProfiles?usageFilter=referenced").body), 1);
    assert_eq!(total(&c.get("/api/v1/callLegProfiles?usageFilter=unreferenced").body), 0);
}

#[test]
fn errors_are_failure_details_with_the_right_reason_and_code() {
    let c = Confero::start();
    let missing = "00000000-0000-4000-8000-000000000000";
    let a = c.get(&format!("/api/v1/coSpaces/{missing}"));
    assert_eq!(
        (a.status, a.body.as_str()),
        (404, "<?xml version=\"1.0\"?><failureDetails><coSpaceDoesNotExist /></failureDetails>")
    );
    assert_eq!(c.get("/api/v1/coSpaces/not-a-guid").status, 404);
    let a = c.post("/api/v1/coSpaces", &format!("name=x&callProfile={missing}"));
    assert_eq!((a.status, a.body.contains("<callProfileDoesNotExist />")), (400, true));
    let a = c.post("/api/v1/callLegProfiles", "defaultLayout=sideways");
    assert_eq!(a.status, 400);
    assert!(a.body.contains("<parameterError parameter=\"defaultLayout\" error=\"invalidValue\" />"), "{}", a.body);
    c.create("/api/v1/coSpaces", "name=a&uri=dup&callId=123&secondaryUri=second");
    assert!(c.post("/api/v1/coSpaces", "name=b&uri=DUP").body.contains("<duplicateCoSpaceUri />"));
    assert!(c.post("/api/v1/coSpaces", "name=b&callId=123").body.contains("<duplicateCoSpaceId />"));
    assert!(c.post("/api/v1/coSpaces", "name=b&uri=second").body.contains("<duplicateCoSpaceUri />"));
    let a = c.get("/api/v1/nonsense");
    assert_eq!((a.status, a.body.contains("<unrecognizedObject />")), (404, true));
    // A space's access methods may share its URI or call ID with another
    // passcode (host and guests on one number); the same passcode is refused.
    let shared = c.create("/api/v1/coSpaces", "name=shared&uri=clinic&callId=5555&passcode=1111");
    let methods = format!("/api/v1/coSpaces/{shared}/accessMethods");
    let a = c.post(&methods, "uri=clinic&passcode=1111");
    assert!(a.body.contains("<duplicateCoSpaceUriPasscode />"), "{}", a.body);
    let a = c.post(&methods, "callId=5555&passcode=1111");
    assert!(a.body.contains("<duplicateCoSpaceIdPasscode />"), "{}", a.body);
    let guests = c.create(&methods, "uri=clinic&callId=5555&passcode=2222");
    let a = c.put(&format!("{methods}/{guests}"), "passcode=1111");
    assert!(a.body.contains("Passcode />"), "{}", a.body);
    assert!(c.post("/api/v1/coSpaces", "name=other&uri=clinic").body.contains("<duplicateCoSpaceUri />"));
    let a = c.get("/api/v2/coSpaces");
    assert_eq!((a.status, a.body.contains("<invalidVersion />")), (400, true), "{}", a.body);
    let a = c.post("/api/v1/coSpaces", "passcode=12ab");
    assert!(a.body.contains("parameter=\"passcode\""), "{}", a.body);
    let a = c.post("/api/v1/coSpaces", "callId=12.5");
    assert!(a.body.contains("parameter=\"callId\""), "{}", a.body);
    let a =
        c.post("/api/v1/coSpaceTemplates/00000000-0000-4000-8000-000000000000/accessMethodTemplates", "uriGenerator=$");
    assert_eq!(a.status, 404);
    assert!(a.body.contains("<coSpaceTemplateDoesNotExist />"));
    let tpl = c.create("/api/v1/coSpaceTemplates", "name=T");
    let a = c.post(&format!("/api/v1/coSpaceTemplates/{tpl}/accessMethodTemplates"), "uriGenerator=$.$");
    assert!(a.body.contains("parameter=\"uriGenerator\""));
    let a = c.post("/api/v1/calls", &format!("coSpace={missing}"));
    assert!(a.body.contains("<coSpaceDoesNotExist />"));
    let a = c.delete(&format!("/api/v1/calls/{missing}"));
    assert_eq!((a.status, a.body.contains("<callDoesNotExist />")), (404, true));
    let a = c.put(&format!("/api/v1/calls/{missing}/participants/*"), "rxAudioMute=true");
    assert_eq!((a.status, a.body.contains("<callDoesNotExist />")), (404, true), "{a:?}");
    let space = c.create("/api/v1/coSpaces", "name=Bulk&uri=bulk");
    let call = common::id_from_location(&c.post("/api/v1/calls", &format!("coSpace={space}")).location.unwrap());
    let a = c.put(&format!("/api/v1/calls/{call}/participants/*"), "rxAudioMute=true&filterIds=not-an-id");
    assert_eq!((a.status, a.body.contains("parameter=\"filterIds\"")), (400, true), "{a:?}");
    let a = c.put(&format!("/api/v1/calls/{call}/participants/*"), "layout=sideways");
    assert_eq!((a.status, a.body.contains("parameter=\"layout\"")), (400, true), "{a:?}");
    let a = c.put(&format!("/api/v1/calls/{call}/participants/*"), "txAudioMute=true&mode=selected");
    assert_eq!(a.status, 200, "{a:?}");
    let a = c.put(&format!("/api/v1/participants/{missing}"), "importance=1");
    assert_eq!((a.status, a.body.contains("<participantDoesNotExist />")), (404, true), "{a:?}");
    let a = c.put(&format!("/api/v1/participants/{missing}"), "importance=high");
    assert_eq!((a.status, a.body.contains("parameter=\"importance\"")), (400, true), "{a:?}");
    let a = c.send("POST", "/api/v1/system/status", Some(b"x=1"), true);
    assert_eq!((a.status, a.body.contains("<invalidOperation />")), (405, true), "{a:?}");
    let a = c.post("/api/v1/system/profiles", "callProfile=");
    assert_eq!((a.status, a.body.contains("<invalidOperation />")), (405, true), "one status for it: {a:?}");
    // A receiver needs its `uri` (`url`, as the reference's prose calls it,
    // is taken too); a bad one is named as the client sent it.
    let a = c.post("/api/v1/system/cdrReceivers", "");
    assert_eq!((a.status, a.body.contains("parameter=\"uri\" error=\"missing\"")), (400, true), "{a:?}");
    let a = c.post("/api/v1/system/cdrReceivers", "url=not-a-url");
    assert_eq!((a.status, a.body.contains("parameter=\"url\"")), (400, true), "{a:?}");
    let tpl = c.create("/api/v1/coSpaceTemplates", "name=T");
    let a = c.get(&format!("/api/v1/coSpaceTemplates/{tpl}/accessMethodTemplates/{missing}"));
    assert!(a.body.contains("<coSpaceAccessMethodTemplateDoesNotExist />"), "the reference's reason: {a:?}");
}

#[test]
fn uris_are_stored_lower_case_and_names_keep_their_case() {
    let c = Confero::start();
    let id = c.create("/api/v1/coSpaces", "name=API Test Space&uri=APITestURI&secondaryUri=Second.URI");
    let one = c.get(&format!("/api/v1/coSpaces/{id}")).body;
    assert_eq!(element(&one, "uri"), Some("apitesturi"));
    assert_eq!(element(&one, "secondaryUri"), Some("second.uri"));
    assert_eq!(element(&one, "name"), Some("API Test Space"));
}

#[test]
fn secrets_are_random_regenerable_and_client_secrets_kept() {
    let c = Confero::start();
    let id = c.create("/api/v1/coSpaces", "name=S&callId=1");
    let path = format!("/api/v1/coSpaces/{id}");
    let first = element(&c.get(&path).body, "secret").unwrap().to_string();
    assert_eq!(first.len(), 22);
    assert!(first.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    c.put(&path, "regenerateSecret=true");
    let second = element(&c.get(&path).body, "secret").unwrap().to_string();
    assert_ne!(first, second);
    c.put(&path, "secret=my-own-secret");
    assert_eq!(element(&c.get(&path).body, "secret"), Some("my-own-secret"));
    c.put(&path, "name=still");
    assert_eq!(element(&c.get(&path).body, "secret"), Some("my-own-secret"));
}

#[test]
fn bad_bodies_are_refused_without_losing_anything() {
    let c = Confero::start();
    let big = vec![b'a'; 1024 * 1024 + 10];
    let a = c.send("POST", "/api/v1/coSpaces", Some(&big), true);
    assert_eq!(a.status, 413);
    let a = c.send("POST", "/api/v1/coSpaces", Some(b"name=%ff%fe"), true);
    assert_eq!(a.status, 400);
    assert!(a.body.contains("parameterError"), "{}", a.body);
    let a = c.send("POST", "/api/v1/coSpaces", Some(b"name=\xff"), true);
    assert_eq!(a.status, 400);
    let a = c.send("POST", "/api/v1/coSpaces", Some(b"name=%zz"), true);
    assert_eq!(a.status, 400);
    assert_eq!(total(&c.get("/api/v1/coSpaces").body), 0);
    c.create("/api/v1/coSpaces", "name=after");
    assert_eq!(total(&c.get("/api/v1/coSpaces").body), 1);
}

#[test]
fn the_pre_1_8_single_cdr_receiver_path_still_works() {
    let c = Confero::start();
    assert_eq!(c.get("/api/v1/system/cdrReceiver").body, "<?xml version=\"1.0\"?><cdrReceiver></cdrReceiver>");
    assert_eq!(c.put("/api/v1/system/cdrReceiver", "url=http://127.0.0.1:9/old").status, 200);
    let list = c.get("/api/v1/system/cdrReceivers").body;
    assert_eq!(total(&list), 1);
    assert!(c.get("/api/v1/system/cdrReceiver").body.contains("<uri>http://127.0.0.1:9/old</uri>"));
    assert_eq!(c.put("/api/v1/system/cdrReceiver", "url=").status, 200);
    assert_eq!(total(&c.get("/api/v1/system/cdrReceivers").body), 0);
    assert_eq!(c.put("/api/v1/system/cdrReceiver", "url=ftp://x").status, 400);
}

/// A tiny base64 for the hand-made Authorization header.
mod base64_lite {
    pub fn encode(input: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// The query methods: `accessQuery` gives a space's full SIP URI (the
/// inbound rule's domain) and the IVR to type its call ID at;
/// `uriUsageQuery` names what holds a URI, within a tenant; a Lync
/// `conversationIdQuery` is never found.
#[test]
fn access_uri_usage_and_conversation_queries_answer_from_the_configuration() {
    let c = Confero::start();
    c.create("/api/v1/inboundDialPlanRules", "domain=example.com&priority=1");
    let space = c.create("/api/v1/coSpaces", "name=Sales&uri=sales.meeting&callId=4242");
    let ivr = c.create("/api/v1/ivrs", "uri=411");
    let tenant = c.create("/api/v1/tenants", "name=Other");

    let a = c.post("/api/v1/accessQuery", "uri=sales.meeting&callId=4242");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(element(&a.body, "uri"), Some("sales.meeting@example.com"), "{}", a.body);
    assert_eq!(element(&a.body, "ivr"), Some("411@example.com"), "{}", a.body);
    let none = c.post("/api/v1/accessQuery", &format!("uri=sales.meeting&tenant={tenant}"));
    assert_eq!(element(&none.body, "uri"), None, "another tenant's: {}", none.body);
    // Clients send the parameters in the URL too.
    let by_url = c.post("/api/v1/accessQuery?uri=SALES.MEETING", "");
    assert_eq!(element(&by_url.body, "uri"), Some("sales.meeting@example.com"), "{}", by_url.body);

    let u = c.post("/api/v1/uriUsageQuery", "uri=sales.meeting");
    assert_eq!(element(&u.body, "coSpaceId"), Some(space.as_str()), "{}", u.body);
    let u = c.post("/api/v1/uriUsageQuery", "uri=411@example.com");
    assert_eq!(element(&u.body, "ivrId"), Some(ivr.as_str()), "{}", u.body);
    let missing = c.post("/api/v1/uriUsageQuery", "");
    assert_eq!(missing.status, 400, "{}", missing.body);
    let bad = c.post("/api/v1/uriUsageQuery", "uri=x&tenant=00000000-0000-4000-8000-000000000000");
    assert!(bad.body.contains("tenantDoesNotExist"), "{}", bad.body);

    let q = c.get("/api/v1/conversationIdQuery?conversationId=d9a0d47c-7c2f-4662-b828-416f45ad3573");
    assert_eq!(element(&q.body, "found"), Some("false"), "{}", q.body);
}

/// `callLegProfiles/<id>/usage` lists where a profile is used;
/// `callLegs/<id>/callLegProfileTrace` the profiles in force on a live leg,
/// most general first, each with the fields it sets.
#[test]
fn call_leg_profile_usage_and_a_live_leg_s_trace() {
    let c = Confero::start();
    let global = c.create("/api/v1/callLegProfiles", "participantLabels=true&muteOthersAllowed=true");
    let room = c.create("/api/v1/callLegProfiles", "defaultLayout=speakerOnly");
    let own = c.create("/api/v1/callLegProfiles", "rxAudioMute=true");
    assert_eq!(c.put("/api/v1/system/profiles", &format!("callLegProfile={global}")).status, 200);
    let space = c.create("/api/v1/coSpaces", &format!("name=Traced&uri=traced&callLegProfile={room}"));
    c.create(&format!("/api/v1/coSpaces/{space}/accessMethods"), &format!("uri=traced.guest&callLegProfile={room}"));

    let usage = c.get(&format!("/api/v1/callLegProfiles/{room}/usage")).body;
    assert!(usage.contains("total=\"2\"") && usage.contains(&format!("<coSpace id=\"{space}\">")), "{usage}");
    assert!(usage.contains("<accessMethod id="), "{usage}");
    let usage = c.get(&format!("/api/v1/callLegProfiles/{global}/usage")).body;
    assert!(usage.contains("<global>"), "{usage}");

    // A dial-out nobody answers stays a live leg long enough to trace.
    let call = c.create("/api/v1/calls", &format!("coSpace={space}"));
    let leg = c.post(
        &format!("/api/v1/calls/{call}/callLegs"),
        &format!("remoteParty=nobody@127.0.0.1:9&callLegProfile={own}"),
    );
    let leg = leg.location.expect("a leg");
    let trace = c.get(&format!("{leg}/callLegProfileTrace")).body;
    let global_at = trace.find("<profile scope=\"global\">").unwrap_or_else(|| panic!("{trace}"));
    let space_at = trace.find("<profile scope=\"coSpace\">").unwrap_or_else(|| panic!("{trace}"));
    let own_at = trace.find("<profile scope=\"callLeg\">").unwrap_or_else(|| panic!("{trace}"));
    assert!(global_at < space_at && space_at < own_at, "most general first: {trace}");
    assert!(trace.contains("<participantLabels>true</participantLabels>"), "{trace}");
    assert!(trace.contains(&format!("<callLegProfile id=\"{own}\"><rxAudioMute>true</rxAudioMute>")), "{trace}");
}

/// A space's message board: posts are kept with their time; DELETE with
/// `minAge` keeps the newer ones, without parameters deletes them all.
#[test]
fn a_space_s_message_board_posts_lists_and_deletes_by_age() {
    let c = Confero::start();
    let space = c.create("/api/v1/coSpaces", "name=Board&uri=board");
    let posted = c.post(&format!("/api/v1/coSpaces/{space}/messages"), "message=Starting in 5&from=Ann");
    assert_eq!(posted.status, 200, "{}", posted.body);
    let location = posted.location.expect("a Location");
    assert!(location.starts_with(&format!("/api/v1/coSpaces/{space}/messages/")), "{location}");
    let one = c.get(&location).body;
    assert!(one.contains("<message>Starting in 5</message><from>Ann</from>"), "{one}");
    assert!(element(&one, "time").is_some_and(|t| t.ends_with('Z')), "{one}");
    let missing = c.post(&format!("/api/v1/coSpaces/{space}/messages"), "from=Ann");
    assert_eq!(missing.status, 400, "{}", missing.body);

    let board = format!("/api/v1/coSpaces/{space}/messages");
    assert_eq!(total(&c.get(&board).body), 1);
    assert_eq!(c.delete(&format!("{board}?minAge=3600")).status, 200);
    assert_eq!(total(&c.get(&board).body), 1, "an hour old or more only");
    assert_eq!(c.delete(&board).status, 200);
    assert_eq!(total(&c.get(&board).body), 0, "all of them");
    let bad = c.delete("/api/v1/coSpaces/00000000-0000-4000-8000-000000000000/messages");
    assert!(bad.body.contains("coSpaceDoesNotExist"), "{}", bad.body);
}

/// `users/<id>/usercoSpaces` lists the spaces a user is a member of;
/// `effectiveWebBridgeProfile` of a tenant, a web bridge and the system shows
/// what the call bridge applies to their web bridges.
#[test]
fn a_user_s_spaces_and_the_effective_web_bridge_profiles() {
    let c = Confero::start();
    let user = c.create("/api/v1/users", "userJid=ann@example.com&name=Ann");
    let space = c.create("/api/v1/coSpaces", "name=Ann's&uri=anns");
    c.create("/api/v1/coSpaces", "name=Other&uri=other");
    c.create(&format!("/api/v1/coSpaces/{space}/coSpaceUsers"), "userJid=ann@example.com");
    let spaces = c.get(&format!("/api/v1/users/{user}/usercoSpaces")).body;
    assert_eq!(total(&spaces), 1, "{spaces}");
    assert_eq!(element(&spaces, "coSpaceId"), Some(space.as_str()), "{spaces}");

    let strict = c.create("/api/v1/webBridgeProfiles", "name=strict&allowPasscodes=false");
    let tenant = c.create("/api/v1/tenants", &format!("name=T&webBridgeProfile={strict}"));
    let bridge = c.create("/api/v1/webBridges", &format!("url=c2w://wb.example.com:9999&tenant={tenant}"));
    for path in [format!("/api/v1/tenants/{tenant}"), format!("/api/v1/webBridges/{bridge}")] {
        let p = c.get(&format!("{path}/effectiveWebBridgeProfile")).body;
        assert_eq!(element(&p, "allowPasscodes"), Some("false"), "{path}: {p}");
        assert_eq!(element(&p, "allowSecrets"), Some("true"), "{path}: {p}");
    }
    let global = c.get("/api/v1/system/profiles/effectiveWebBridgeProfile").body;
    assert_eq!(element(&global, "allowPasscodes"), Some("true"), "{global}");
}

/// Diagnostics of a space's live call: `POST coSpaces/<id>/diagnostics`
/// answers the Location of a record under `system/diagnostics`, which lists
/// it by label and gives its contents as text: the call, its legs, and the
/// log lines that name it.
#[test]
fn diagnostics_of_a_space_s_call_quote_the_log_lines_naming_it() {
    let c = Confero::start();
    let space = c.create("/api/v1/coSpaces", "name=Diagnosed&uri=diagnosed");
    let call = c.create("/api/v1/calls", &format!("coSpace={space}"));
    let made = c.post(&format!("/api/v1/coSpaces/{space}/diagnostics"), "");
    assert_eq!(made.status, 200, "{}", made.body);
    let record = made.location.expect("a Location");
    assert!(record.starts_with("/api/v1/system/diagnostics/"), "{record}");
    let list = c.get("/api/v1/system/diagnostics").body;
    assert!(list.contains("<label>Diagnosed</label>"), "{list}");
    let filtered = c.get(&format!("/api/v1/system/diagnostics?coSpaceFilter={space}")).body;
    assert_eq!(total(&filtered), 1, "{filtered}");
    let one = c.get(&record).body;
    assert_eq!(element(&one, "coSpace"), Some(space.as_str()), "{one}");
    let contents = c.get(&format!("{record}/contents"));
    assert!(
        contents.body.contains(&format!("({call})")) && contents.body.contains("Recent log messages:"),
        "{}",
        contents.body
    );
    assert!(
        contents.body.lines().any(|l| l.contains("API created new call") && l.contains(&call)),
        "the log line of the call's creation: {}",
        contents.body
    );
    let by_call = c.post(&format!("/api/v1/calls/{call}/diagnostics"), "");
    assert_eq!(by_call.status, 200, "{}", by_call.body);
    assert_eq!(total(&c.get("/api/v1/system/diagnostics").body), 2);
}

/// CMS 3.0's dial-in security profiles: the lowest one that sets
/// `minPasscodeLength` (the access method's, the space's, the tenant's,
/// `system/profiles`') decides the shortest passcode a space or access
/// method may be given; shorter is `passcodeTooShort`.
#[test]
fn dial_in_security_profiles_set_the_shortest_passcode() {
    let c = Confero::start();
    let six = c.create("/api/v1/dialInSecurityProfiles", "name=six&minPasscodeLength=6");
    let none = c.create("/api/v1/dialInSecurityProfiles", "name=none&minPasscodeLength=0");
    assert_eq!(c.put("/api/v1/system/profiles", &format!("dialInSecurityProfile={six}")).status, 200);
    let short = c.post("/api/v1/coSpaces", "name=Short&uri=short&passcode=1234");
    assert!(short.status == 400 && short.body.contains("<passcodeTooShort />"), "{short:?}");
    let space = c.create("/api/v1/coSpaces", "name=Long&uri=long&passcode=123456");
    let put = c.put(&format!("/api/v1/coSpaces/{space}"), "passcode=12");
    assert!(put.body.contains("<passcodeTooShort />"), "{put:?}");
    // The space's own profile over the system's; an access method inherits it.
    assert_eq!(
        c.put(&format!("/api/v1/coSpaces/{space}"), &format!("dialInSecurityProfile={none}&passcode=12")).status,
        200
    );
    c.create(&format!("/api/v1/coSpaces/{space}/accessMethods"), "uri=long.guest&passcode=1");
    let am = c.post(
        &format!("/api/v1/coSpaces/{space}/accessMethods"),
        &format!("uri=long.host&passcode=1&dialInSecurityProfile={six}"),
    );
    assert!(am.body.contains("<passcodeTooShort />"), "its own profile: {am:?}");
    let missing = c.post("/api/v1/coSpaces", "name=X&uri=x&dialInSecurityProfile=00000000-0000-4000-8000-000000000000");
    assert!(missing.body.contains("dialInSecurityProfileDoesNotExist"), "{missing:?}");
}
