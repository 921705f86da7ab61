//! Every path of Cisco's API Blueprint (`tests/data/cms_paths.txt`, with the
//! verbs the reference gives it) is recognised: a GUID that names nothing
//! gets the kind's `...DoesNotExist`, a verb an object does not take gets
//! `invalidOperation`, never `unrecognizedObject`, which would stop a
//! client's script at the first object it does not know.

mod common;

use common::Confero;

/// Paths not answered yet, each a gap the README names. The test fails when
/// one of these becomes recognised, so the list only shrinks.
const NOT_YET: &[&str] = &[];

#[test]
fn every_path_of_the_reference_is_recognised() {
    let c = Confero::start();
    let list = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cms_paths.txt")).unwrap();
    let nobody = "5d684c79-2e9f-4d72-bb07-eceb4673567c";
    let mut unrecognised = Vec::new();
    let mut requests = 0;
    for line in list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (verbs, path) = line.split_once(' ').expect("VERBS PATH");
        let gap = NOT_YET.iter().any(|g| path == *g || path.starts_with(&format!("{g}/")));
        let path = format!("/api/v1{}", path.replace("<id>", nobody));
        for verb in verbs.split(',') {
            let answer = match verb {
                "GET" => c.get(&path),
                "POST" => c.post(&path, ""),
                "PUT" => c.put(&path, ""),
                "DELETE" => c.delete(&path),
                other => panic!("verb {other} in {line}"),
            };
            requests += 1;
            assert!(answer.status < 500, "{verb} {path}: {} {}", answer.status, answer.body);
            let unknown = answer.body.contains("unrecognizedObject");
            if unknown != gap {
                unrecognised
                    .push(format!("{verb} {path}{}", if gap { " (now recognised: take it off NOT_YET)" } else { "" }));
            }
        }
    }
    assert!(requests > 200, "{requests} requests");
    assert!(unrecognised.is_empty(), "{} wrong:\n{}", unrecognised.len(), unrecognised.join("\n"));
}

/// A coturn on loopback, ended by PID.
struct Coturn(std::process::Child);

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status operations that look outward: a TURN server's is a STUN
/// Binding request to a real coturn (reachable, the address it saw us
/// from), and to a port nobody answers on (unreachable); a recorder or
/// streamer is never used by this call bridge; far-end camera control is
/// refused rather than pretended. (`updateCustomization` at work:
/// `tests/web.rs`.)
#[test]
fn status_operations_answer_what_is_true() {
    let c = Confero::start();
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--no-tls", "--no-dtls", "--no-cli"])
        .arg(format!("--listening-port={port}"))
        .arg(format!("--pidfile={}", dir.path().join("turnserver.pid").display()))
        .arg(format!("--log-file={}", dir.path().join("turnserver.log").display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("turnserver (coturn)");
    let _coturn = Coturn(child);
    let turn = c.create("/api/v1/turnServers", &format!("serverAddress=127.0.0.1:{port}&clientAddress=127.0.0.1"));
    let mut status = String::new();
    let up = common::eventually(|| {
        status = c.get(&format!("/api/v1/turnServers/{turn}/status")).body;
        common::element(&status, "reachable") == Some("true")
    });
    assert!(up, "{status}");
    assert_eq!(common::element(&status, "mappedAddress"), Some("127.0.0.1"), "{status}");
    assert_eq!(common::element(&status, "portNumber"), Some(port.to_string().as_str()), "{status}");
    assert!(common::element(&status, "mappedPortNumber").is_some_and(|p| p.parse::<u16>().is_ok()), "{status}");

    // Nobody on this port: unreachable.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let quiet = silent.local_addr().unwrap();
    let none = c.create("/api/v1/turnServers", &format!("serverAddress={quiet}"));
    let status = c.get(&format!("/api/v1/turnServers/{none}/status")).body;
    assert_eq!(common::element(&status, "reachable"), Some("false"), "{status}");

    let recorder = c.create("/api/v1/recorders", "url=https://rec.example.test:8443");
    let status = c.get(&format!("/api/v1/recorders/{recorder}/status")).body;
    assert_eq!(common::element(&status, "status"), Some("unused"), "{status}");
    assert_eq!(common::element(&status, "activeRecordings"), Some("0"), "{status}");
    let streamer = c.create("/api/v1/streamers", "url=https://stream.example.test:8443");
    let status = c.get(&format!("/api/v1/streamers/{streamer}/status")).body;
    assert_eq!(common::element(&status, "status"), Some("unused"), "{status}");

    let leg = c.put("/api/v1/callLegs/5d684c79-2e9f-4d72-bb07-eceb4673567c/cameraControl", "pan=left");
    assert!(leg.status == 404 && leg.body.contains("callLegDoesNotExist"), "{} {}", leg.status, leg.body);
    let bridge = c.create("/api/v1/webBridges", "url=c2w://127.0.0.1:9");
    assert_eq!(c.post(&format!("/api/v1/webBridges/{bridge}/updateCustomization"), "").status, 200);
    let missing = c.post("/api/v1/webBridges/5d684c79-2e9f-4d72-bb07-eceb4673567c/updateCustomization", "");
    assert!(missing.body.contains("webBridgeDoesNotExist"), "{} {}", missing.status, missing.body);
    let raw = c.get("/api/v1/clusterLicensing/raw");
    assert_eq!(raw.status, 200, "{}", raw.body);
}

/// Layout templates (CMS 2.8): created by name, the JSON uploaded to
/// `/template` and served back as sent, `templateSize` its length; a body
/// that is not a template we can draw is refused naming `template`; the template
/// outlives a restart and goes with its object.
#[test]
fn layout_templates_keep_their_json() {
    let dir = tempfile::tempdir().unwrap();
    let c = Confero::start_in(dir.path(), &[]);
    let id = c.create("/api/v1/layoutTemplates", "name=Two big panes");
    let one = c.get(&format!("/api/v1/layoutTemplates/{id}")).body;
    assert_eq!(common::element(&one, "name"), Some("Two big panes"), "{one}");
    assert_eq!(common::element(&one, "templateSize"), Some("0"), "{one}");
    let template =
        r#"{"layouts":[{"panes":[{"x":0,"y":0,"width":50,"height":100},{"x":50,"y":0,"width":50,"height":100}]}]}"#;
    let put = c.put(&format!("/api/v1/layoutTemplates/{id}/template"), template);
    assert_eq!(put.status, 200, "{}", put.body);
    let bad = c.put(&format!("/api/v1/layoutTemplates/{id}/template"), "panes=2");
    assert!(bad.status == 400 && bad.body.contains(r#"parameter="template""#), "{} {}", bad.status, bad.body);
    // JSON the compositor could not draw (a pane reaching outside the
    // picture) is refused too, and the template kept is unchanged.
    let outside = r#"{"layouts":[{"panes":[{"x":60,"y":0,"width":50,"height":100}]}]}"#;
    let bad = c.put(&format!("/api/v1/layoutTemplates/{id}/template"), outside);
    assert!(bad.status == 400 && bad.body.contains(r#"parameter="template""#), "{} {}", bad.status, bad.body);
    assert_eq!(c.get(&format!("/api/v1/layoutTemplates/{id}/template")).body, template);
    // Call leg profiles name templates that exist.
    let missing = c.post("/api/v1/callLegProfiles", &format!("layoutTemplate={}", uuid::Uuid::new_v4()));
    assert!(missing.body.contains("layoutTemplateDoesNotExist"), "{} {}", missing.status, missing.body);
    c.create("/api/v1/callLegProfiles", &format!("layoutTemplate={id}"));
    // A parameter the object does not have is ignored, as CMS does, and
    // named in a warning (a misspelt one in a script is then found).
    c.create("/api/v1/callLegProfiles", "defaultLayuot=allEqual&name=typo");
    assert!(c.log_text().contains(r#"API ignored parameter "defaultLayuot""#), "{}", c.log_text());
    let list = c.get("/api/v1/layoutTemplates?filter=big").body;
    assert_eq!(common::total(&list), 1, "{list}");
    assert!(list.contains(&format!("<templateSize>{}</templateSize>", template.len())), "{list}");

    let c = c.restart();
    let back = c.get(&format!("/api/v1/layoutTemplates/{id}/template"));
    assert_eq!(back.body, template);
    assert_eq!(c.put(&format!("/api/v1/layoutTemplates/{id}"), "name=Side by side").status, 200);
    assert_eq!(c.delete(&format!("/api/v1/layoutTemplates/{id}")).status, 200);
    let gone = c.get(&format!("/api/v1/layoutTemplates/{id}/template"));
    assert!(gone.status == 404 && gone.body.contains("layoutTemplateDoesNotExist"), "{} {}", gone.status, gone.body);
}

/// User profiles where Confero has the feature: `hasLicense` in the profile
/// `system/profiles` names gives every user a personal license
/// (`personalLicenses`, and `pmpAssigned` in the usage snapshots), unless a
/// user's own profile says otherwise.
#[test]
fn user_profiles_assign_personal_licenses() {
    let dir = tempfile::tempdir().unwrap();
    let c = Confero::start_in(dir.path(), &[("CONFERO_LICENSE_SNAPSHOT_SECONDS", "1")]);
    let licensed = c.create("/api/v1/userProfiles", "hasLicense=true");
    let unlicensed = c.create("/api/v1/userProfiles", "hasLicense=false&canCreateCoSpaces=false");
    c.create("/api/v1/users", "userJid=ann@example.test&name=Ann");
    c.create("/api/v1/users", "userJid=bob@example.test&name=Bob");
    c.create("/api/v1/users", &format!("userJid=eve@example.test&name=Eve&userProfile={unlicensed}"));
    let licenses =
        || common::element(&c.get("/api/v1/system/multipartyLicensing").body, "personalLicenses").map(str::to_string);
    assert_eq!(licenses().as_deref(), Some("0"));
    assert_eq!(c.put("/api/v1/system/profiles", &format!("userProfile={licensed}")).status, 200);
    assert_eq!(licenses().as_deref(), Some("2"), "Eve's own profile withholds hers");
    let snapshot = || c.get("/api/v1/system/MPLicenseUsage?limit=1").body;
    assert!(common::eventually(|| snapshot().contains("<pmpAssigned>2.00</pmpAssigned>")), "{}", snapshot());
}

/// Failure reasons as the reference names them: a member whose JID names
/// no user is `userDoesNotExist` (a local web user counts as one), a
/// template assigned twice to a user `duplicateUserCoSpaceTemplate`, and a
/// call set recording or streaming `callRecordingCannotBeModified` /
/// `callStreamingCannotBeModified`.
#[test]
fn failure_reasons_as_the_reference_names_them() {
    let c = Confero::start();
    let space = c.create("/api/v1/coSpaces", "name=Team&uri=team");
    let members = format!("/api/v1/coSpaces/{space}/coSpaceUsers");
    let refused = c.post(&members, "userJid=nobody@example.test");
    assert!(
        refused.status == 400 && refused.body.contains("<userDoesNotExist />"),
        "{} {}",
        refused.status,
        refused.body
    );
    c.create("/api/v1/users", "userJid=ann@example.test&name=Ann");
    c.create(&members, "userJid=ann@example.test");
    let mut add = std::process::Command::new(common::binary())
        .args(["user", "add", "kim", "user"])
        .env("CONFERO_DATA_DIR", &c.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut add.stdin.take().unwrap(), b"kim-password\n").unwrap();
    assert!(add.wait().unwrap().success());
    c.create(&members, "userJid=kim@example.test");

    let user = c.create("/api/v1/users", "userJid=bo@example.test&name=Bo");
    let template = c.create("/api/v1/coSpaceTemplates", "name=Weekly");
    let assigned = format!("/api/v1/users/{user}/userCoSpaceTemplates");
    c.create(&assigned, &format!("coSpaceTemplate={template}"));
    let twice = c.post(&assigned, &format!("coSpaceTemplate={template}"));
    assert!(twice.body.contains("<duplicateUserCoSpaceTemplate />"), "{} {}", twice.status, twice.body);

    // Confero records and streams nothing: a call cannot be set to.
    let call = common::id_from_location(c.post("/api/v1/calls", "name=Adhoc").location.as_deref().expect("Location"));
    let rec = c.put(&format!("/api/v1/calls/{call}"), "recording=true");
    assert!(rec.body.contains("<callRecordingCannotBeModified />"), "{} {}", rec.status, rec.body);
    let stream = c.put(&format!("/api/v1/calls/{call}"), "streaming=true");
    assert!(stream.body.contains("<callStreamingCannotBeModified />"), "{} {}", stream.status, stream.body);
    assert_eq!(c.put(&format!("/api/v1/calls/{call}"), "recording=false").status, 200);
}

/// External directory search locations: created against an LDAP server
/// (a missing one is `ldapServerDoesNotExist`), read back with CMS's fields,
/// changed and deleted.
#[test]
fn directory_search_locations_name_an_ldap_server() {
    let c = Confero::start();
    let missing = c.post("/api/v1/directorySearchLocations", "ldapServer=5d684c79-2e9f-4d72-bb07-eceb4673567c");
    assert!(missing.body.contains("<ldapServerDoesNotExist />"), "{} {}", missing.status, missing.body);
    let server =
        c.create("/api/v1/ldapServers", "address=ldap.example.test&portNumber=389&secure=false&username=cn=reader");
    let id = c.create(
        "/api/v1/directorySearchLocations",
        &format!("ldapServer={server}&baseDn=ou=people,dc=example,dc=test&filterFormat=(cn=$search$*)&label=People&priority=5&email=mail&displayName=cn"),
    );
    let one = c.get(&format!("/api/v1/directorySearchLocations/{id}")).body;
    assert_eq!(common::element(&one, "ldapServer"), Some(server.as_str()), "{one}");
    assert_eq!(common::element(&one, "email"), Some("mail"), "{one}");
    let list = c.get("/api/v1/directorySearchLocations").body;
    assert_eq!(common::total(&list), 1, "{list}");
    assert!(list.contains("<label>People</label>") && !list.contains("<email>"), "the summary fields: {list}");
    assert_eq!(c.put(&format!("/api/v1/directorySearchLocations/{id}"), "priority=9").status, 200);
    assert_eq!(c.delete(&format!("/api/v1/directorySearchLocations/{id}")).status, 200);
}
