//! What survives: a restart keeps every configuration object; a `kill -9`
//! in the middle of concurrent writes loses none that was acknowledged; and
//! concurrent writers never break uniqueness.

mod common;
use common::*;
use std::sync::{Arc, Mutex};

/// Every configuration path with one object, read back as XML.
fn snapshot(c: &Confero, paths: &[String]) -> Vec<String> {
    paths.iter().map(|p| c.get(p).body).collect()
}

#[test]
fn restart_keeps_every_configuration_object() {
    let c = Confero::start();
    let tenant = c.create("/api/v1/tenants", "name=T1");
    let cp = c.create("/api/v1/callProfiles", "participantLimit=12");
    let clp = c.create("/api/v1/callLegProfiles", "defaultLayout=speakerOnly&muteSelfAllowed=false");
    let space = c.create(
        "/api/v1/coSpaces",
        &format!("name=Kept&uri=kept&callId=42&passcode=7&callProfile={cp}&tenant={tenant}"),
    );
    let am =
        c.create(&format!("/api/v1/coSpaces/{space}/accessMethods"), &format!("uri=kept.guest&callLegProfile={clp}"));
    // A member must be a user (CMS refuses a JID that names none).
    let bob = c.create("/api/v1/users", "userJid=bob@example.com&name=Bob");
    let member = c.create(&format!("/api/v1/coSpaces/{space}/coSpaceUsers"), "userJid=bob@example.com");
    let tpl = c.create("/api/v1/coSpaceTemplates", "name=Tpl");
    let amt = c.create(&format!("/api/v1/coSpaceTemplates/{tpl}/accessMethodTemplates"), "uriGenerator=$.x");
    let set = c.create(
        "/api/v1/cospaceBulkParameterSets",
        "startIndex=1&endIndex=3&coSpaceUriMapping=b$index$&coSpaceNameMapping=B$index$",
    );
    let sync = c.create("/api/v1/cospaceBulkSyncs", &format!("cospaceBulkParameterSet={set}"));
    assert!(eventually(|| c.get(&format!("/api/v1/cospaceBulkSyncs/{sync}")).body.contains("complete")));
    let paths = vec![
        format!("/api/v1/tenants/{tenant}"),
        format!("/api/v1/callProfiles/{cp}"),
        format!("/api/v1/callLegProfiles/{clp}"),
        format!("/api/v1/coSpaces/{space}"),
        format!("/api/v1/coSpaces/{space}/accessMethods/{am}"),
        format!("/api/v1/coSpaces/{space}/coSpaceUsers/{member}"),
        format!("/api/v1/coSpaceTemplates/{tpl}"),
        format!("/api/v1/coSpaceTemplates/{tpl}/accessMethodTemplates/{amt}"),
        format!("/api/v1/cospaceBulkParameterSets/{set}"),
        format!("/api/v1/cospaceBulkSyncs/{sync}"),
        format!("/api/v1/inboundDialPlanRules/{}", c.create("/api/v1/inboundDialPlanRules", "domain=a.com&priority=1")),
        format!(
            "/api/v1/outboundDialPlanRules/{}",
            c.create("/api/v1/outboundDialPlanRules", "domain=*.b.com&sipProxy=p")
        ),
        format!("/api/v1/forwardingDialPlanRules/{}", c.create("/api/v1/forwardingDialPlanRules", "matchPattern=x*")),
        format!("/api/v1/dialTransforms/{}", c.create("/api/v1/dialTransforms", "type=raw&priority=2")),
        format!("/api/v1/webBridges/{}", c.create("/api/v1/webBridges", "url=c2w://w:1")),
        format!("/api/v1/system/cdrReceivers/{}", c.create("/api/v1/system/cdrReceivers", "uri=http://127.0.0.1:9/")),
        format!("/api/v1/users/{bob}"),
        format!("/api/v1/callBridges/{}", c.create("/api/v1/callBridges", "name=cb")),
        "/api/v1/coSpaces?limit=100".to_string(),
        "/api/v1/system/profiles".to_string(),
        "/api/v1/system/configuration/xmpp".to_string(),
        "/api/v1/system/configuration/cluster".to_string(),
    ];
    for (p, b) in [
        ("/api/v1/system/profiles", format!("callProfile={cp}")),
        ("/api/v1/system/configuration/xmpp", "domain=x.com&sharedSecret=s".to_string()),
        ("/api/v1/system/configuration/cluster", "uniqueName=u".to_string()),
    ] {
        assert_eq!(c.put(p, &b).status, 200);
    }
    let before = snapshot(&c, &paths);
    for b in &before {
        assert!(!b.contains("failureDetails"), "{b}");
    }
    let c = c.restart();
    assert_eq!(snapshot(&c, &paths), before);
    // Uniqueness claims come back with the objects.
    assert!(c.post("/api/v1/coSpaces", "uri=KEPT").body.contains("duplicateCoSpaceUri"));
    assert!(c.post("/api/v1/coSpaces", "uri=b2").body.contains("duplicateCoSpaceUri"));
}

#[test]
fn kill_9_during_concurrent_writes_loses_no_acknowledged_write() {
    let mut c = Confero::start();
    let port = c.port;
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let acked = acknowledged.clone();
            std::thread::spawn(move || {
                let client = agent();
                for i in 0..10_000 {
                    let name = format!("w{w}-{i}");
                    let resp = client
                        .post(format!("https://127.0.0.1:{port}/api/v1/coSpaces"))
                        .basic_auth(USER, Some(PASSWORD))
                        .body(format!("name={name}&uri={name}"))
                        .send();
                    match resp {
                        Ok(r) if r.status().as_u16() == 200 => {
                            let loc = r.headers().get("location").unwrap().to_str().unwrap().to_string();
                            acked.lock().unwrap().push((id_from_location(&loc), name));
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    assert!(eventually(|| acknowledged.lock().unwrap().len() >= 200));
    c.kill9();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    let dir = c.data_dir.clone();
    let c2 = Confero::start_in(&dir, &[]);
    let listed = c2.get("/api/v1/coSpaces?limit=1").body;
    assert!(total(&listed) >= acked.len(), "{} stored, {} acknowledged", total(&listed), acked.len());
    for (id, name) in &acked {
        let one = c2.get(&format!("/api/v1/coSpaces/{id}"));
        assert_eq!(one.status, 200, "acknowledged {name} lost");
        assert_eq!(element(&one.body, "name"), Some(name.as_str()));
    }
    drop(c);
}

#[test]
fn concurrent_writers_never_break_uniqueness() {
    let c = Confero::start();
    let port = c.port;
    let winners = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let winners = winners.clone();
            std::thread::spawn(move || {
                let client = agent();
                for round in 0..20 {
                    let r = client
                        .post(format!("https://127.0.0.1:{port}/api/v1/coSpaces"))
                        .basic_auth(USER, Some(PASSWORD))
                        .body(format!("name=t{t}&uri=contested{round}&callId={}", 9000 + round))
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    let body = r.text().unwrap();
                    match status {
                        200 => winners.lock().unwrap().push(round),
                        400 => assert!(body.contains("duplicateCoSpace"), "{body}"),
                        other => panic!("unexpected {other}: {body}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut w = winners.lock().unwrap().clone();
    w.sort();
    assert_eq!(w, (0..20).collect::<Vec<_>>(), "exactly one writer wins each URI");
    assert_eq!(total(&c.get("/api/v1/coSpaces").body), 20);
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for (signal, word) in [("-TERM", "SIGTERM"), ("-INT", "SIGINT")] {
        let mut c = Confero::start();
        c.create("/api/v1/coSpaces", "name=x");
        let status = c.signal(signal);
        assert!(status.success(), "{signal}: {status:?}");
        let log = std::fs::read_to_string(&c.log).unwrap();
        assert!(log.contains(&format!("{word}: shutting down")), "{log}");
    }
}
