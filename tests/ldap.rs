//! LDAP users as CMS imports them, against a real OpenLDAP slapd on
//! loopback (tests/peers/slapd.rs): the objects' CMS XML and refusals, a
//! sync importing users and their personal spaces by the mapping's
//! templates, the next sync following a changed and a removed entry, a
//! wrong bind password failing the sync (not the server), sign-in to the
//! web app by a bind, and an LDAP user scheduling a meeting in Chromium.

mod common;
mod peers;
#[path = "peers/slapd.rs"]
mod slapd;
#[path = "peers/smtp.rs"]
mod smtp;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{agent, element, free_port, ids, total, Confero};
use serde_json::json;
use slapd::{Person, Slapd, PEOPLE, READER_DN, READER_PASSWORD};

const ANA: Person =
    Person { uid: "ana", cn: "Ana Lopez", mail: "ana@example.test", number: "7001", password: "ana-pw" };
const BOB: Person =
    Person { uid: "bob", cn: "Bob Stone", mail: "bob@example.test", number: "7002", password: "bob-pw" };
const CYD: Person = Person { uid: "cyd", cn: "Cyd Moss", mail: "cyd@example.test", number: "7003", password: "cyd-pw" };

/// A server, a mapping with every template form and a source of people
/// (the group entry under the same base is filtered out); the source's id.
fn configure(c: &Confero, slapd: &Slapd, password: &str) -> String {
    configure_at(c, slapd.port, false, password)
}

/// [`configure`] for the server at `port`, over LDAPS when `secure`.
fn configure_at(c: &Confero, port: u16, secure: bool, password: &str) -> String {
    let server = c.create(
        "/api/v1/ldapServers",
        &format!("address=127.0.0.1&portNumber={port}&secure={secure}&username={READER_DN}&password={password}"),
    );
    let mapping = c.create(
        "/api/v1/ldapMappings",
        "jidMapping=$uid$@example.test&nameMapping=$cn$&cdrTagMapping=tag-$employeeNumber$\
         &coSpaceNameMapping=$cn$ personal space&coSpaceUriMapping=$mail|'/@.*//'$.space\
         &coSpaceSecondaryUriMapping=$employeeNumber$&coSpaceCallIdMapping=$employeeNumber$",
    );
    c.create(
        "/api/v1/ldapSources",
        &format!("server={server}&mapping={mapping}&baseDn={PEOPLE}&filter=(objectClass=inetOrgPerson)"),
    )
}

/// Starts a sync that stays listed and waits for it to finish; its XML.
fn sync(c: &Confero) -> String {
    let id = c.create("/api/v1/ldapSyncs", "removeWhenFinished=false");
    let mut last = String::new();
    let done = common::eventually(|| {
        last = c.get(&format!("/api/v1/ldapSyncs/{id}")).body;
        matches!(element(&last, "state"), Some("complete" | "failed"))
    });
    assert!(done, "the sync never finished: {last}\n{}", c.log_text());
    last
}

/// `users` by JID: (id, XML).
fn users(c: &Confero) -> Vec<(String, String)> {
    let list = c.get("/api/v1/users?limit=100").body;
    ids(&list).into_iter().map(|id| (id.clone(), c.get(&format!("/api/v1/users/{id}")).body)).collect()
}

fn user_by_jid(c: &Confero, jid: &str) -> Option<(String, String)> {
    users(c).into_iter().find(|(_, xml)| element(xml, "userJid") == Some(jid))
}

fn spaces(c: &Confero) -> Vec<String> {
    let list = c.get("/api/v1/coSpaces?limit=100").body;
    ids(&list).into_iter().map(|id| c.get(&format!("/api/v1/coSpaces/{id}")).body).collect()
}

#[test]
fn ldap_objects_speak_cms_xml_and_refuse_bad_input() {
    let c = Confero::start();
    let created = c.post(
        "/api/v1/ldapServers",
        "address=ldap.example.test&portNumber=389&secure=false&username=cn=reader&password=very-secret-pw",
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let server = common::id_from_location(created.location.as_deref().expect("Location"));
    assert!(created.location.as_deref().unwrap().ends_with(&format!("/api/v1/ldapServers/{server}")));
    assert_eq!(
        c.get(&format!("/api/v1/ldapServers/{server}")).body,
        format!(
            "<?xml version=\"1.0\"?><ldapServer id=\"{server}\"><address>ldap.example.test</address>\
             <username>cn=reader</username><portNumber>389</portNumber><secure>false</secure></ldapServer>"
        ),
        "the password is never shown"
    );
    assert_eq!(c.put(&format!("/api/v1/ldapServers/{server}"), "secure=true&portNumber=636&name=Main").status, 200);
    assert_eq!(
        c.get("/api/v1/ldapServers").body,
        format!(
            "<?xml version=\"1.0\"?><ldapServers total=\"1\"><ldapServer id=\"{server}\"><address>ldap.example.test\
             </address><username>cn=reader</username><portNumber>636</portNumber><secure>true</secure></ldapServer>\
             </ldapServers>"
        )
    );
    assert_eq!(total(&c.get("/api/v1/ldapServers?filter=nomatch").body), 0);
    assert_eq!(total(&c.get("/api/v1/ldapServers?filter=EXAMPLE").body), 1);

    let mapping = c.create("/api/v1/ldapMappings", "jidMapping=$sAMAccountName$@example.com&nameMapping=$cn$");
    assert_eq!(
        c.get(&format!("/api/v1/ldapMappings/{mapping}")).body,
        format!(
            "<?xml version=\"1.0\"?><ldapMapping id=\"{mapping}\"><jidMapping>$sAMAccountName$@example.com\
             </jidMapping><nameMapping>$cn$</nameMapping></ldapMapping>"
        )
    );
    let source = c.create(
        "/api/v1/ldapSources",
        &format!("server={server}&mapping={mapping}&baseDn=ou=Users,dc=example,dc=com&nonMemberAccess=true"),
    );
    assert_eq!(
        c.get("/api/v1/ldapSources").body,
        format!(
            "<?xml version=\"1.0\"?><ldapSources total=\"1\"><ldapSource id=\"{source}\"><server>{server}</server>\
             <mapping>{mapping}</mapping><baseDn>ou=Users,dc=example,dc=com</baseDn><nonMemberAccess>true\
             </nonMemberAccess></ldapSource></ldapSources>"
        )
    );

    // Refusals, as CMS words them.
    let missing = "3f2c8a8e-2b1e-4b7a-9a51-0c8d7e6f5a41";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/api/v1/ldapServers",
            "portNumber=389&secure=false".into(),
            "<parameterError parameter=\"address\" error=\"missing\" />",
        ),
        (
            "/api/v1/ldapServers",
            "address=x&portNumber=99999&secure=false".into(),
            "<parameterError parameter=\"portNumber\" error=\"invalidValue\" />",
        ),
        (
            "/api/v1/ldapSources",
            format!("server={missing}&mapping={mapping}&baseDn=dc=x"),
            "<ldapServerDoesNotExist />",
        ),
        (
            "/api/v1/ldapSources",
            format!("server={server}&mapping={missing}&baseDn=dc=x"),
            "<ldapMappingDoesNotExist />",
        ),
        (
            "/api/v1/ldapSources",
            format!("server={server}&mapping={mapping}&baseDn=dc=x&filter=(uid=a"),
            "<parameterError parameter=\"filter\" error=\"invalidValue\" />",
        ),
        (
            "/api/v1/ldapMappings",
            "jidMapping=$uid@example.com".into(),
            "<parameterError parameter=\"jidMapping\" error=\"invalidValue\" />",
        ),
        (
            "/api/v1/ldapMappings",
            "nameMapping=$cn|'/(/x/'$".into(),
            "<parameterError parameter=\"nameMapping\" error=\"invalidValue\" />",
        ),
        ("/api/v1/ldapSyncs", format!("ldapSource={missing}"), "<ldapSourceDoesNotExist />"),
        (
            "/api/v1/ldapUserCoSpaceTemplateSources",
            format!("ldapSource={source}&coSpaceTemplate={missing}"),
            "<coSpaceTemplateDoesNotExist />",
        ),
    ];
    for (path, body, reason) in cases {
        let r = c.post(path, &body);
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(
            r.body,
            format!("<?xml version=\"1.0\"?><failureDetails>{reason}</failureDetails>"),
            "{path} {body}"
        );
    }
    let r = c.get(&format!("/api/v1/ldapMappings/{missing}"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "<?xml version=\"1.0\"?><failureDetails><ldapMappingDoesNotExist /></failureDetails>")
    );
    let r = c.put(&format!("/api/v1/ldapMappings/{mapping}"), "coSpaceUriMapping=$mail|'/@.*//'$.space");
    assert_eq!(r.status, 200, "{}", r.body);

    let t = c.create("/api/v1/coSpaceTemplates", "name=T");
    let ts = c.create("/api/v1/ldapUserCoSpaceTemplateSources", &format!("ldapSource={source}&coSpaceTemplate={t}"));
    assert_eq!(
        c.get(&format!("/api/v1/ldapUserCoSpaceTemplateSources/{ts}")).body,
        format!(
            "<?xml version=\"1.0\"?><ldapUserCoSpaceTemplateSource id=\"{ts}\"><coSpaceTemplate>{t}</coSpaceTemplate>\
             <ldapSource>{source}</ldapSource></ldapUserCoSpaceTemplateSource>"
        )
    );
    for path in [format!("/api/v1/ldapUserCoSpaceTemplateSources/{ts}"), format!("/api/v1/ldapSources/{source}")] {
        assert_eq!(c.delete(&path).status, 200);
        assert_eq!(c.get(&path).status, 404);
    }
    assert!(!c.log_text().contains("very-secret-pw"), "the server's password reached the log");
}

/// Syncs run one at a time: with one stuck on a directory that never
/// answers, 15 more wait, and the next is refused `tooManyLdapSyncs` (CMS's
/// "try again later") rather than queued without end.
#[test]
fn waiting_syncs_are_capped() {
    let c = Confero::start();
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    configure_at(&c, silent.local_addr().unwrap().port(), false, "pw");
    for n in 0..16 {
        let r = c.post("/api/v1/ldapSyncs", "");
        assert_eq!(r.status, 200, "sync {n}: {}", r.body);
    }
    let r = c.post("/api/v1/ldapSyncs", "");
    assert_eq!((r.status, r.body.contains("<tooManyLdapSyncs />")), (400, true), "{}", r.body);
    drop(silent);
}

#[test]
fn a_sync_imports_users_and_spaces_and_follows_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(&dir.path().join("slapd"), &[ANA, BOB, CYD]);
    let c = Confero::start();
    let source = configure(&c, &slapd, READER_PASSWORD);
    let template = c.create("/api/v1/coSpaceTemplates", "name=Team meeting");
    c.create("/api/v1/ldapUserCoSpaceTemplateSources", &format!("ldapSource={source}&coSpaceTemplate={template}"));

    let report = sync(&c);
    assert_eq!(element(&report, "state"), Some("complete"), "{report}\n{}", c.log_text());
    assert_eq!(element(&report, "numUsersImported"), Some("3"), "{report}");
    assert_eq!(element(&report, "numLdapSourcesComplete"), Some("1"), "{report}");
    let (ana, ana_xml) = user_by_jid(&c, "ana@example.test").expect("ana imported");
    assert_eq!(element(&ana_xml, "name"), Some("Ana Lopez"));
    assert_eq!(element(&ana_xml, "email"), Some("ana@example.test"));
    assert_eq!(element(&ana_xml, "cdrTag"), Some("tag-7001"));
    assert_eq!(users(&c).len(), 3, "the group entry is filtered out");
    let assigned = c.get(&format!("/api/v1/users/{ana}/usercoSpaceTemplates")).body;
    assert_eq!(total(&assigned), 1, "{assigned}");
    assert!(assigned.contains(&template), "{assigned}");
    // Given by the sync (`autoGenerated`), so the API may not take it away;
    // one an API client gives may go.
    assert_eq!(element(&assigned, "autoGenerated"), Some("true"), "{assigned}");
    let given = common::ids(&assigned)[0].clone();
    let refused = c.delete(&format!("/api/v1/users/{ana}/usercoSpaceTemplates/{given}"));
    assert!(refused.body.contains("<userCoSpaceTemplateDeletionProhibited />"), "{} {}", refused.status, refused.body);
    let other = c.create("/api/v1/coSpaceTemplates", "name=Other");
    let manual = c.create(&format!("/api/v1/users/{ana}/usercoSpaceTemplates"), &format!("coSpaceTemplate={other}"));
    let one = c.get(&format!("/api/v1/users/{ana}/usercoSpaceTemplates/{manual}")).body;
    assert_eq!(element(&one, "autoGenerated"), Some("false"), "{one}");
    assert_eq!(c.delete(&format!("/api/v1/users/{ana}/usercoSpaceTemplates/{manual}")).status, 200);
    let all = spaces(&c);
    assert_eq!(all.len(), 3);
    let space = all.iter().find(|s| element(s, "uri") == Some("ana.space")).expect("ana's space");
    assert_eq!(element(space, "name"), Some("Ana Lopez personal space"));
    assert_eq!(element(space, "secondaryUri"), Some("7001"));
    assert_eq!(element(space, "callId"), Some("7001"));
    assert_eq!(element(space, "ownerJid"), Some("ana@example.test"));
    assert_eq!(element(space, "autoGenerated"), Some("true"), "made by the sync");
    let space_id = space.split("id=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    let members = c.get(&format!("/api/v1/coSpaces/{space_id}/coSpaceUsers")).body;
    assert_eq!(total(&members), 1, "{members}");
    assert_eq!(element(&members, "userJid"), Some("ana@example.test"), "{members}");
    // The user's view of the member: userId is ana's users object.
    assert_eq!(element(&members, "userId"), Some(ana.as_str()), "{members}");

    // The directory changes: bob is renamed (cn) and gets a new number,
    // cyd leaves; a sync follows, bob keeping his id and his space's.
    let (bob, _) = user_by_jid(&c, "bob@example.test").unwrap();
    slapd.modify(&format!(
        "dn: uid=bob,{PEOPLE}\nchangetype: modify\nreplace: cn\ncn: Robert Stone\n-\nreplace: employeeNumber\n\
         employeeNumber: 7102\n\ndn: uid=cyd,{PEOPLE}\nchangetype: delete\n\n"
    ));
    let report = sync(&c);
    assert_eq!(element(&report, "state"), Some("complete"), "{report}");
    assert_eq!(element(&report, "numUsersImported"), Some("2"), "{report}");
    let (bob_again, bob_xml) = user_by_jid(&c, "bob@example.test").expect("bob still there");
    assert_eq!(bob_again, bob, "updated in place");
    assert_eq!(element(&bob_xml, "name"), Some("Robert Stone"));
    assert!(user_by_jid(&c, "cyd@example.test").is_none(), "cyd removed");
    let all = spaces(&c);
    assert_eq!(all.len(), 2, "cyd's space removed");
    let bobs = all.iter().find(|s| element(s, "uri") == Some("bob.space")).expect("bob's space");
    assert_eq!(element(bobs, "callId"), Some("7102"));
    assert_eq!(element(bobs, "name"), Some("Robert Stone personal space"));
    assert!(!c.get("/api/v1/coSpaces?filter=7003").body.contains("<coSpace "));

    // A sync left to the default removes itself when it is done.
    let gone = c.create("/api/v1/ldapSyncs", "");
    assert!(common::eventually(|| c.get(&format!("/api/v1/ldapSyncs/{gone}")).status == 404));
}

#[test]
fn a_wrong_bind_password_fails_the_sync_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(&dir.path().join("slapd"), &[ANA]);
    let c = Confero::start();
    let source = configure(&c, &slapd, "not-the-password");
    let report = sync(&c);
    assert_eq!(element(&report, "state"), Some("failed"), "{report}");
    assert_eq!(element(&report, "failureReason"), Some("ldapError"), "{report}");
    assert!(users(&c).is_empty());
    assert!(!c.log_text().contains("not-the-password"), "the password reached the log");

    // A server that is not there fails the same way; the API still answers.
    let nowhere =
        c.create("/api/v1/ldapServers", &format!("address=127.0.0.1&portNumber={}&secure=false", free_port()));
    assert_eq!(c.put(&format!("/api/v1/ldapSources/{source}"), &format!("server={nowhere}")).status, 200);
    let report = sync(&c);
    assert_eq!(element(&report, "failureReason"), Some("ldapError"), "{report}");
    assert_eq!(c.get("/api/v1/system/status").status, 200);
}

/// `secure=true`: the sync speaks LDAPS and checks the directory's
/// certificate against `CONFERO_LDAP_TRUST`; without the bundle the same
/// server is refused (`ldapError`).
#[test]
fn ldaps_checks_the_directory_certificate_against_the_trust_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::ca_and_leaf(&["127.0.0.1"]);
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key)] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let slapd = Slapd::start_with_tls(&dir.path().join("slapd"), &[ANA], Some((&cert, &key)));
    let tls_port = slapd.tls_port.expect("an LDAPS port");
    let trust = dir.path().join("ca.pem");
    let trust = trust.to_str().unwrap();
    let trusting = start_with(&dir.path().join("trusting"), &[("CONFERO_LDAP_TRUST".into(), trust.into())]);
    configure_at(&trusting, tls_port, true, READER_PASSWORD);
    let report = sync(&trusting);
    assert_eq!(element(&report, "state"), Some("complete"), "{report}\n{}", trusting.log_text());
    assert!(user_by_jid(&trusting, "ana@example.test").is_some());

    let other = Confero::start();
    configure_at(&other, tls_port, true, READER_PASSWORD);
    let report = sync(&other);
    assert_eq!(element(&report, "failureReason"), Some("ldapError"), "{report}");
    assert!(users(&other).is_empty());
}

/// The web app on free ports.
fn web_env(web: u16, c2w: u16) -> Vec<(String, String)> {
    vec![
        ("CONFERO_WEB".into(), "on".into()),
        ("CONFERO_C2W_LINKS".into(), "on".into()),
        ("CONFERO_WEB_LISTEN".into(), format!("127.0.0.1:{web}")),
        ("CONFERO_C2W_LISTEN".into(), format!("127.0.0.1:{c2w}")),
    ]
}

fn start_with(dir: &Path, env: &[(String, String)]) -> Confero {
    std::fs::create_dir_all(dir).expect("data dir");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Confero::start_in(dir, &env)
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `confero user add NAME user` with `password` on stdin.
fn add_web_user(data: &Path, name: &str, password: &str) {
    use std::io::Write;
    let mut add = Command::new(common::binary())
        .args(["user", "add", name, "user"])
        .env("CONFERO_DATA_DIR", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());
}

/// Signs in to the web app; the status and the session cookie.
fn sign_in(web: u16, user: &str, password: &str) -> (u16, Option<String>) {
    let r = agent()
        .post(format!("https://127.0.0.1:{web}/api/signin"))
        .header("content-type", "application/json")
        .body(json!({"username": user, "password": password}).to_string())
        .send()
        .expect("sign in");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (r.status().as_u16(), cookie)
}

#[test]
fn ldap_users_sign_in_to_the_web_app_by_a_bind() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(&dir.path().join("slapd"), &[ANA, BOB]);
    let data = dir.path().join("data");
    let (web, c2w) = (free_port(), free_port());
    let c = start_with(&data, &web_env(web, c2w));
    configure(&c, &slapd, READER_PASSWORD);
    assert_eq!(element(&sync(&c), "state"), Some("complete"));
    add_web_user(&data, "carol", "carol-pw");
    wait_listening(web);

    let (status, cookie) = sign_in(web, "ana@example.test", "ana-pw");
    assert_eq!(status, 200, "{}", c.log_text());
    // "My spaces" lists ana's personal space (over C2W, once linked).
    let cookie = cookie.expect("a session cookie");
    let mut me = String::new();
    let listed = common::eventually(|| {
        me = agent()
            .get(format!("https://127.0.0.1:{web}/api/me"))
            .header("cookie", &cookie)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        me.contains("Ana Lopez personal space")
    });
    assert!(listed, "{me}");
    let bob = agent()
        .post(format!("https://127.0.0.1:{web}/api/signin"))
        .header("content-type", "application/json")
        .body(json!({"username": "bob", "password": "bob-pw"}).to_string())
        .send()
        .expect("sign in");
    assert_eq!(bob.status().as_u16(), 200, "the part before @ names one user");
    let signed_in: serde_json::Value = serde_json::from_str(&bob.text().unwrap()).unwrap();
    assert_eq!(signed_in["user"], "bob@example.test", "known by the JID");
    assert_eq!(sign_in(web, "carol", "carol-pw").0, 200, "local accounts still sign in");
    assert_eq!(sign_in(web, "ana@example.test", "bob-pw").0, 401);
    assert_eq!(sign_in(web, "ana@example.test", "").0, 401, "no unauthenticated bind");
    assert_eq!(sign_in(web, "nobody@example.test", "ana-pw").0, 401);

    // Removed from the directory: refused at once, before any sync.
    slapd.modify(&format!("dn: uid=bob,{PEOPLE}\nchangetype: delete\n\n"));
    assert_eq!(sign_in(web, "bob", "bob-pw").0, 401);
    // Wrong passwords from one source are throttled, LDAP or not.
    let statuses: Vec<u16> = (0..6).map(|_| sign_in(web, "ana", "wrong").0).collect();
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(!c.log_text().contains("ana-pw"));
}

/// The browser test with an LDAP user: ana, imported with the
/// seed's template assigned by an ldapUserCoSpaceTemplateSource, signs in
/// in headless Chromium, runs the three-step wizard, sees the meeting under
/// "My scheduled meetings" (then cancels an occurrence and edits it), and
/// the attendee's invitation arrives.
#[test]
fn an_ldap_user_schedules_a_meeting_with_the_wizard() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(&dir.path().join("slapd"), &[ANA]);
    let maildir = dir.path().join("maildir");
    let data = dir.path().join("data");
    let (smtp_port, scheduler_port, web, c2w) = (free_port(), free_port(), free_port(), free_port());
    let out = Command::new(common::binary())
        .args(["scheduler", "email", "server", "127.0.0.1", &smtp_port.to_string()])
        .env("CONFERO_DATA_DIR", &data)
        .stdin(Stdio::null())
        .output()
        .expect("confero scheduler email server");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _smtp = smtp::Smtp::start(smtp_port, &maildir);
    let mut env = web_env(web, c2w);
    env.push(("CONFERO_SCHEDULER".into(), "on".into()));
    env.push(("CONFERO_SCHEDULER_LISTEN".into(), format!("127.0.0.1:{scheduler_port}")));
    env.push(("CONFERO_SCHEDULER_EMAIL_FROM".into(), "scheduler@confero.test".into()));
    let c = start_with(&data, &env);
    let t = c.create("/api/v1/coSpaceTemplates", "name=CoSpaceTemp-Scheduler");
    let path = format!("/api/v1/coSpaceTemplates/{t}/accessMethodTemplates");
    c.create(&path, "name=ExternalAccessMeth&uriGenerator=$.guest&generateUniqueCallId=true");
    c.create("/api/v1/coSpaceTemplates", "name=Not for ana");
    let source = configure(&c, &slapd, READER_PASSWORD);
    c.create("/api/v1/ldapUserCoSpaceTemplateSources", &format!("ldapSource={source}&coSpaceTemplate={t}"));
    assert_eq!(element(&sync(&c), "state"), Some("complete"));
    // Cyd is in the directory only: found through a search location.
    add_to_directory(&slapd, &CYD);
    search_location(&c, &source, "label=Corporate directory&filterFormat=(cn=$1*)");
    wait_listening(web);

    let out = peers::run_browser(
        "web_schedule.mjs",
        &json!({"base": format!("https://127.0.0.1:{web}"), "user": "ana@example.test", "password": "ana-pw",
                "template": "CoSpaceTemp-Scheduler", "role": "ExternalAccessMeth", "attendee": "dana@example.test",
                "find": "Cyd", "foundName": "Cyd Moss", "foundEmail": "cyd@example.test"}),
    );
    println!("{out}");
    let mails = smtp::wait_for_mails(&maildir, 2);
    let invitation = mails
        .iter()
        .find(|m| m["method"] == "REQUEST" && m["to"] == "dana@example.test")
        .unwrap_or_else(|| panic!("the attendee's invitation: {mails:?}"));
    assert!(
        mails.iter().any(|m| m["method"] == "REQUEST" && m["to"] == "cyd@example.test"),
        "the attendee found in the directory is invited: {mails:?}"
    );
    assert_eq!(invitation["events"][0]["rrule"], "FREQ=WEEKLY;COUNT=3;INTERVAL=1;BYDAY=MO", "{invitation}");
    // The meeting is ana's, by her JID.
    let list = agent()
        .get(format!(
            "https://127.0.0.1:{scheduler_port}/api/v1/meetings?fromTime=2027-03-01T00:00:00Z&untilTime=2027-05-01T00:00:00Z"
        ))
        .basic_auth(common::USER, Some(common::PASSWORD))
        .send()
        .and_then(|r| r.text())
        .expect("the meetings list");
    let list: serde_json::Value = serde_json::from_str(&list).expect("JSON");
    assert_eq!(list["meetings"][0]["organizer"], "ana@example.test", "{list}");

    // An API user's meeting in the same weeks, then ana herself over the
    // scheduler's API, signed in by a bind: a web user, who sees her own only.
    let base = format!("https://127.0.0.1:{scheduler_port}/api/v1/meetings");
    let admins = agent()
        .post(&base)
        .basic_auth(common::USER, Some(common::PASSWORD))
        .header("content-type", "application/json")
        .body(
            json!({"name": "Not ana's", "coSpaceTemplate": t, "start": "2027-03-24T10:00", "end": "2027-03-24T11:00",
                   "timeZone": "UTC", "attendees": []})
            .to_string(),
        )
        .send()
        .expect("an API user's meeting");
    assert_eq!(admins.status().as_u16(), 201);
    let window = "?fromTime=2027-03-01T00:00:00Z&untilTime=2027-05-01T00:00:00Z";
    let as_ana = |password: &str| {
        let r = agent().get(format!("{base}{window}")).basic_auth("ana@example.test", Some(password)).send().unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str::<serde_json::Value>(&r.text().unwrap_or_default()).unwrap_or_default())
    };
    let (status, mine) = as_ana("ana-pw");
    assert_eq!(status, 200, "{mine}");
    let names: Vec<&str> = mine["meetings"].as_array().unwrap().iter().filter_map(|m| m["name"].as_str()).collect();
    assert!(!names.is_empty() && !names.contains(&"Not ana's"), "{mine}");
    assert_eq!(as_ana("wrong").0, 401);
}

/// Adds `person` to the directory (after a sync: the directory has them, the
/// deployment's users do not).
fn add_to_directory(slapd: &Slapd, person: &Person) {
    let ldif = slapd::person_ldif(person);
    let (dn, rest) = ldif.split_once('\n').expect("a dn line");
    slapd.modify(&format!("{dn}\nchangetype: add\n{rest}"));
}

/// A `directorySearchLocations` object over the sync's LDAP server; its id.
fn search_location(c: &Confero, source: &str, extra: &str) -> String {
    let server = element(&c.get(&format!("/api/v1/ldapSources/{source}")).body, "server").expect("server").to_string();
    c.create(
        "/api/v1/directorySearchLocations",
        &format!("ldapServer={server}&baseDn={PEOPLE}&displayName=cn&email=mail&phone=employeeNumber&{extra}"),
    )
}

/// `GET /api/directory?q=` as the session `cookie` (or none): the status and
/// the people found.
fn find_people(web: u16, cookie: Option<&str>, query: &str) -> (u16, Vec<serde_json::Value>) {
    let mut request = agent().get(format!("https://127.0.0.1:{web}/api/directory")).query(&[("q", query)]);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let r = request.send().expect("directory");
    let status = r.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or_default();
    (status, body["people"].as_array().cloned().unwrap_or_default())
}

/// CMS's external directory search locations at work: a signed-in web user
/// searching finds the deployment's users, then each location that applies
/// (no tenant, or theirs) by priority, with its label and the fields it maps;
/// what is typed cannot widen the filter; a location whose directory is down
/// is skipped, not fatal; and no one signed out searches at all.
#[test]
fn a_web_user_finds_people_in_the_users_and_the_directory_search_locations() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(&dir.path().join("slapd"), &[ANA, BOB]);
    let data = dir.path().join("data");
    let (web, c2w) = (free_port(), free_port());
    let c = start_with(&data, &web_env(web, c2w));
    let source = configure(&c, &slapd, READER_PASSWORD);
    assert_eq!(element(&sync(&c), "state"), Some("complete"));
    add_to_directory(&slapd, &CYD);
    search_location(&c, &source, "label=Corporate directory&priority=5&filterFormat=(|(cn=$1*)(mail=$1*))");
    let tenant = c.create("/api/v1/tenants", "name=Elsewhere");
    search_location(&c, &source, &format!("label=Their directory&tenant={tenant}&filterFormat=(cn=$1*)"));
    let down = c.create(
        "/api/v1/ldapServers",
        &format!("address=127.0.0.1&portNumber={}&secure=false&username={READER_DN}&password=x", free_port()),
    );
    c.create(
        "/api/v1/directorySearchLocations",
        &format!("ldapServer={down}&label=Down&priority=9&filterFormat=(cn=$1*)"),
    );
    add_web_user(&data, "carol", "carol-pw");
    wait_listening(web);
    let (status, cookie) = sign_in(web, "carol", "carol-pw");
    assert_eq!(status, 200);
    let cookie = cookie.expect("a session cookie");

    assert_eq!(find_people(web, None, "cyd").0, 401, "signed out: no search");
    let mut found = Vec::new();
    let answered = common::eventually(|| {
        let (status, people) = find_people(web, Some(&cookie), "cyd");
        found = people;
        status == 200 && !found.is_empty()
    });
    assert!(answered, "{found:?}\n{}", c.log_text());
    assert_eq!(found.len(), 1, "{found:?}");
    let cyd = &found[0];
    assert_eq!(cyd["name"], "Cyd Moss");
    assert_eq!(cyd["email"], "cyd@example.test");
    assert_eq!(cyd["phone"], "7003", "the location's phone=employeeNumber");
    assert_eq!(cyd["label"], "Corporate directory", "{cyd}");

    // Bob is a user (imported): listed first, without a label, and once.
    let (_, bobs) = find_people(web, Some(&cookie), "bo");
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    assert_eq!((&bobs[0]["name"], &bobs[0]["label"]), (&json!("Bob Stone"), &serde_json::Value::Null));
    // By mail too, as the filter format says.
    let (_, by_mail) = find_people(web, Some(&cookie), "cyd@");
    assert!(by_mail.iter().any(|p| p["name"] == "Cyd Moss"), "{by_mail:?}");
    // What is typed is a value, never filter syntax: no one is named "*".
    let (status, everyone) = find_people(web, Some(&cookie), "*");
    assert_eq!((status, everyone.len()), (200, 0), "{everyone:?}");
    let (_, injected) = find_people(web, Some(&cookie), "x*)(objectClass=*");
    assert!(injected.is_empty(), "{injected:?}");
    assert_eq!(find_people(web, Some(&cookie), "   ").1.len(), 0);
    let log = c.log_text();
    assert!(log.contains("\"Down\" failed"), "the dead directory is named in the log");
    assert!(!log.contains("carol-pw") && !log.contains(READER_PASSWORD), "no password in the log");
}
