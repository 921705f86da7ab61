//! The scheduler through its own HTTPS API, against the real binary on
//! loopback, with aiosmtpd as the mail server and python3-icalendar reading
//! the invitations: temporary spaces from a template, invitations per role,
//! updates with a higher SEQUENCE, cancellations, a mail queue that outlives
//! an SMTP outage and a restart, local times across the March
//! daylight-saving change, refusals naming the field, and the 01:15 UTC
//! clean-up on an injected clock.

mod common;
mod peers;
#[path = "peers/smtp.rs"]
mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{element, free_port, Confero, PASSWORD, USER};
use serde_json::{json, Value};
use smtp::{invitations, wait_for_mails, Smtp};

/// The scheduler's JSON API.
struct Meetings {
    port: u16,
}

impl Meetings {
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Option<String>, Value) {
        let url = format!("https://127.0.0.1:{}{path}", self.port);
        let mut req = common::agent()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .basic_auth(USER, Some(PASSWORD));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().expect("scheduler request");
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = resp.text().unwrap_or_default();
        (status, location, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn scheduler_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("CONFERO_SCHEDULER".into(), "on".into()),
        ("CONFERO_SCHEDULER_LISTEN".into(), format!("127.0.0.1:{port}")),
        ("CONFERO_SCHEDULER_EMAIL_FROM".into(), "scheduler@confero.test".into()),
    ]
}

fn start(dir: &Path, env: &[(String, String)]) -> Confero {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Confero::start_in(dir, &env)
}

/// `confero scheduler WORDS...` on `dir`.
fn mmp(dir: &Path, words: &[&str]) -> String {
    let out = Command::new(common::binary())
        .arg("scheduler")
        .args(words)
        .env("CONFERO_DATA_DIR", dir)
        .stdin(Stdio::null())
        .output()
        .expect("confero scheduler");
    assert!(out.status.success(), "scheduler {words:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The seed's template: two access method templates, the two roles.
fn template(c: &Confero) -> (String, String, String) {
    let t = c.create("/api/v1/coSpaceTemplates", "name=CoSpaceTemp-Scheduler&description=CST-External/Internal Access");
    let path = format!("/api/v1/coSpaceTemplates/{t}/accessMethodTemplates");
    let external = c.create(&path, "name=ExternalAccessMeth&uriGenerator=$.guest&generateUniqueCallId=true");
    let internal = c.create(&path, "name=InternalAccessMeth&uriGenerator=$.host");
    (t, external, internal)
}

fn space_count(c: &Confero) -> usize {
    common::total(&c.get("/api/v1/coSpaces").body)
}

/// The flow end to end: SMTP down while a weekly meeting is made and
/// while Confero restarts; the two invitations arrive once it is back, each
/// with the RRULE and its own role's access; the temporary space has one
/// access method per role; a PUT moving the time sends two updates with a
/// higher SEQUENCE; the list keeps 11:00 local across the change to summer
/// time; DELETE sends two CANCELs and removes the space. Bad input names its
/// field and leaves no space behind.
#[test]
fn meetings_invite_update_and_cancel_by_mail_through_an_smtp_outage() {
    let dir = tempfile::tempdir().unwrap();
    let maildir: PathBuf = dir.path().join("maildir");
    let data = dir.path().join("data");
    let (smtp_port, scheduler_port) = (free_port(), free_port());
    // Set up with the MMP commands, as an operator would.
    mmp(&data, &["email", "server", "127.0.0.1", &smtp_port.to_string()]);
    mmp(&data, &["https", "listen", "127.0.0.1", &scheduler_port.to_string()]);
    let shown = mmp(&data, &["status"]);
    assert!(shown.contains("Status: disabled") && shown.contains("Database responsive at start"), "{shown}");
    assert!(mmp(&data, &["enable"]).contains("SUCCESS: scheduler enabled"));
    let shown = mmp(&data, &[]);
    assert!(shown.contains("Enabled                 : true\n"), "{shown}");
    assert!(shown.contains(&format!("Https port              : {scheduler_port}\n")), "{shown}");
    assert!(shown.contains("Email Password          : none\n"), "{shown}");
    let env = vec![("CONFERO_SCHEDULER_EMAIL_FROM".to_string(), "scheduler@confero.test".to_string())];
    let c = start(&data, &env);
    let meetings = Meetings { port: scheduler_port };
    let (t, external, internal) = template(&c);

    let spaces_before = space_count(&c);
    let mut bad = json!({"name": "x", "coSpaceTemplate": t, "start": "2027-03-22T10:00", "end": "2027-03-22T11:00",
        "timeZone": "Europe/Madrid", "attendees": [{"email": "ana@example.test", "accessMethodTemplate": t}]});
    let (status, _, body) = meetings.send("POST", "/api/v1/meetings", Some(&bad));
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("attendees[0].accessMethodTemplate")), "{body}");
    bad["timeZone"] = "Europe/Atlantis".into();
    let (status, _, body) = meetings.send("POST", "/api/v1/meetings", Some(&bad));
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("timeZone")), "{body}");
    assert_eq!(space_count(&c), spaces_before, "a refused meeting left a space behind");

    let meeting = json!({"name": "Weekly sync", "coSpaceTemplate": t, "start": "2027-03-22T10:00",
        "end": "2027-03-22T11:00", "timeZone": "Europe/Madrid",
        "recurrence": {"frequency": "weekly", "interval": 1, "days": ["MO"], "count": 4},
        "organizer": "sai@example.test",
        "attendees": [{"email": "ana@example.test", "accessMethodTemplate": external},
                      {"email": "bob@example.test", "accessMethodTemplate": internal}],
        "passcodes": {external.clone(): "1234"}});
    let (status, location, created) = meetings.send("POST", "/api/v1/meetings", Some(&meeting));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location.as_deref(), Some(format!("/api/v1/meetings/{id}").as_str()));
    let space = created["coSpace"].as_str().expect("a temporary space").to_string();
    let methods = c.get(&format!("/api/v1/coSpaces/{space}/accessMethods"));
    assert_eq!(common::total(&methods.body), 2, "{}", methods.body);
    let (status, _, got) = meetings.send("GET", &format!("/api/v1/meetings/{id}"), None);
    assert_eq!((status, &got["name"], &got["coSpace"]), (200, &json!("Weekly sync"), &json!(space)));

    // The SMTP server is down, and Confero restarts: the queue is in the store.
    std::thread::sleep(Duration::from_millis(300));
    assert!(invitations(&maildir).is_empty());
    let c = {
        let mut c = c;
        c.terminate();
        start(&data, &env)
    };
    let _smtp = Smtp::start(smtp_port, &maildir);
    let mails = wait_for_mails(&maildir, 2);
    assert_eq!(mails.len(), 2, "{mails:?}\n{}", c.log_text());
    let external_uri = got["accessMethods"][&external]["uri"].as_str().unwrap().to_string();
    let internal_uri = got["accessMethods"][&internal]["uri"].as_str().unwrap().to_string();
    for m in &mails {
        assert_eq!(m["method"], "REQUEST", "{m}");
        assert_eq!(m["timezones"], json!(["Europe/Madrid"]));
        let ev = &m["events"][0];
        assert_eq!(ev["uid"], format!("{id}@confero"));
        assert_eq!(ev["sequence"], 0);
        assert_eq!(ev["rrule"], "FREQ=WEEKLY;COUNT=4;INTERVAL=1;BYDAY=MO", "{ev}");
        assert_eq!(ev["start_utc"], "2027-03-22T09:00:00+00:00");
        let description = ev["description"].as_str().unwrap();
        if m["to"] == "ana@example.test" {
            assert!(description.contains(&external_uri) && description.contains("Passcode: 1234"), "{description}");
            assert!(!description.contains(&internal_uri));
        } else {
            assert_eq!(m["to"], "bob@example.test");
            assert!(description.contains(&internal_uri) && !description.contains("Passcode"), "{description}");
        }
    }

    // Moved an hour later: updates with SEQUENCE 1.
    let mut moved = meeting.clone();
    moved["start"] = "2027-03-22T11:00".into();
    moved["end"] = "2027-03-22T12:00".into();
    let (status, _, body) = meetings.send("PUT", &format!("/api/v1/meetings/{id}"), Some(&moved));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["coSpace"], json!(space), "the temporary space is kept");
    let mails = wait_for_mails(&maildir, 4);
    let updates: Vec<_> = mails.iter().filter(|m| m["events"][0]["sequence"] == 1).collect();
    assert_eq!(updates.len(), 2, "{mails:?}");
    assert!(updates
        .iter()
        .all(|m| m["method"] == "REQUEST" && m["events"][0]["start_utc"] == "2027-03-22T10:00:00+00:00"));

    // The list: 11:00 in Madrid on both sides of 28 March's change.
    let (status, _, list) = meetings.send(
        "GET",
        "/api/v1/meetings?fromTime=2027-03-01T00:00:00Z&untilTime=2027-05-01T00:00:00Z&maxMeetings=10",
        None,
    );
    assert_eq!(status, 200, "{list}");
    let starts: Vec<_> =
        list["meetings"].as_array().unwrap().iter().map(|o| o["occurrence"]["start"].clone()).collect();
    assert_eq!(
        starts,
        [
            json!("2027-03-22T10:00:00Z"),
            json!("2027-03-29T09:00:00Z"),
            json!("2027-04-05T09:00:00Z"),
            json!("2027-04-12T09:00:00Z")
        ]
    );
    assert!(list["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["occurrence"]["localStart"].as_str().unwrap().ends_with("T11:00")));

    // Deleted: two cancellations, and the space is gone.
    let (status, _, _) = meetings.send("DELETE", &format!("/api/v1/meetings/{id}"), None);
    assert_eq!(status, 204);
    let mails = wait_for_mails(&maildir, 6);
    let cancels: Vec<_> = mails.iter().filter(|m| m["method"] == "CANCEL").collect();
    assert_eq!(cancels.len(), 2, "{mails:?}");
    assert!(cancels.iter().all(|m| m["events"][0]["status"] == "CANCELLED" && m["events"][0]["sequence"] == 2));
    assert_eq!(c.get(&format!("/api/v1/coSpaces/{space}")).status, 404);
    assert_eq!(meetings.send("GET", &format!("/api/v1/meetings/{id}"), None).0, 404);
    let shown = mmp(&data, &["status"]);
    assert!(shown.contains("Status: enabled\nRunning\n"), "{shown}");
    assert!(element(&c.get("/api/v1/coSpaces").body, "coSpaces").is_some());
}

/// The clean-up at 01:15 UTC on a clock injected at a restart: the space of
/// a meeting that ended 25 h before is deleted; one that ended 23 h before
/// stays. Without credentials the API answers 401.
#[test]
fn clean_up_deletes_spaces_of_meetings_over_a_day_old() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let mut env = scheduler_env(port);
    let c = start(&data, &env);
    let meetings = Meetings { port };
    let (t, _, _) = template(&c);
    let made = |end: &str| {
        let body = json!({"name": format!("ended {end}"), "coSpaceTemplate": t, "start": "2027-03-22T23:00",
            "end": end, "timeZone": "UTC"});
        let (status, _, m) = meetings.send("POST", "/api/v1/meetings", Some(&body));
        assert_eq!(status, 201, "{m}");
        (m["id"].as_str().unwrap().to_string(), m["coSpace"].as_str().unwrap().to_string())
    };
    let (old, old_space) = made("2027-03-23T00:15");
    let (recent, recent_space) = made("2027-03-23T02:15");
    let anonymous = common::agent().get(format!("https://127.0.0.1:{port}/api/v1/meetings")).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    env.push(("CONFERO_SCHEDULER_CLOCK".into(), "2027-03-24T01:14:58Z".into()));
    let c = {
        let mut c = c;
        c.terminate();
        start(&data, &env)
    };
    assert!(common::eventually(|| c.get(&format!("/api/v1/coSpaces/{old_space}")).status == 404), "{}", c.log_text());
    assert_eq!(c.get(&format!("/api/v1/coSpaces/{recent_space}")).status, 200);
    assert_eq!(meetings.send("GET", &format!("/api/v1/meetings/{old}"), None).0, 404);
    assert_eq!(meetings.send("GET", &format!("/api/v1/meetings/{recent}"), None).0, 200);
}

/// A web user (a local `user` account) signs in in headless Chromium, runs
/// the three-step wizard, sees the meeting under "My scheduled meetings"
/// and cancels one occurrence; the attendee gets the invitation and then
/// the cancellation of that occurrence; the meeting is the user's own.
#[test]
fn a_web_user_schedules_a_meeting_with_the_wizard() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let data = dir.path().join("data");
    let (smtp_port, scheduler_port, web_port, c2w_port) = (free_port(), free_port(), free_port(), free_port());
    mmp(&data, &["email", "server", "127.0.0.1", &smtp_port.to_string()]);
    let _smtp = Smtp::start(smtp_port, &maildir);
    let mut env = scheduler_env(scheduler_port);
    env.push(("CONFERO_WEB".into(), "on".into()));
    env.push(("CONFERO_WEB_LISTEN".into(), format!("127.0.0.1:{web_port}")));
    env.push(("CONFERO_C2W_LISTEN".into(), format!("127.0.0.1:{c2w_port}")));
    let c = start(&data, &env);
    let (t, external, _) = template(&c);
    // carol's `users` object has the seed's template assigned, not another.
    let other = c.create("/api/v1/coSpaceTemplates", "name=Not for carol");
    let user = c.create("/api/v1/users", "userJid=carol@example.com&name=Carol&email=carol@example.com");
    c.create(&format!("/api/v1/users/{user}/usercoSpaceTemplates"), &format!("coSpaceTemplate={t}"));
    let assigned = c.get(&format!("/api/v1/users/{user}/usercoSpaceTemplates"));
    assert_eq!(common::total(&assigned.body), 1, "{}", assigned.body);
    let mut add = Command::new(common::binary())
        .args(["user", "add", "carol", "user"])
        .env("CONFERO_DATA_DIR", &data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    add.stdin.take().unwrap().write_all(b"web-password\n").unwrap();
    assert!(add.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", web_port)).is_err() {
        assert!(Instant::now() < deadline, "the web app did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = peers::run_browser(
        "web_schedule.mjs",
        &json!({"base": format!("https://127.0.0.1:{web_port}"), "user": "carol", "password": "web-password",
                "template": "CoSpaceTemp-Scheduler", "role": "ExternalAccessMeth", "attendee": "dana@example.test"}),
    );
    println!("{out}");

    let mails = wait_for_mails(&maildir, 3);
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert!(mails.iter().all(|m| m["to"] == "dana@example.test"));
    let request = mails.iter().find(|m| m["method"] == "REQUEST").expect("an invitation");
    let edited = mails.iter().find(|m| m["events"][0]["sequence"] == 2).expect("the edit's update");
    assert_eq!(edited["method"], "REQUEST");
    assert!(edited["events"][0]["start"].as_str().unwrap().starts_with("2027-03-22T14:00"), "{edited}");
    assert_eq!(request["events"][0]["rrule"], "FREQ=WEEKLY;COUNT=3;INTERVAL=1;BYDAY=MO", "{request}");
    let cancel = mails.iter().find(|m| m["method"] == "CANCEL").expect("a cancellation");
    assert!(cancel["events"][0]["recurrence_id"].as_str().unwrap().starts_with("2027-03-29T10:00"), "{cancel}");

    let meetings = Meetings { port: scheduler_port };
    // As carol over the scheduler's API: a template not assigned to her is refused.
    let refused = common::agent()
        .post(format!("https://127.0.0.1:{scheduler_port}/api/v1/meetings"))
        .basic_auth("carol", Some("web-password"))
        .header("content-type", "application/json")
        .body(
            json!({"name": "x", "coSpaceTemplate": other, "start": "2027-03-22T10:00", "end": "2027-03-22T11:00",
                   "timeZone": "UTC", "attendees": [{"email": "e@example.test", "accessMethodTemplate": external}]})
            .to_string(),
        )
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let refusal: Value = serde_json::from_str(&refused.text().unwrap()).unwrap();
    assert_eq!(refusal["error"]["field"], "coSpaceTemplate", "{refusal}");
    let (_, _, list) =
        meetings.send("GET", "/api/v1/meetings?fromTime=2027-03-01T00:00:00Z&untilTime=2027-05-01T00:00:00Z", None);
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["meetings"][0]["organizer"], "carol");
}

/// `confero ARGS` on `dir` with `stdin`; fails the test if it fails.
fn confero_ok(dir: &Path, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = Command::new(common::binary())
        .args(args)
        .env("CONFERO_DATA_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("confero");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin");
    let out = child.wait_with_output().expect("confero");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A process killed by PID when dropped, with its log.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seed's C2W full mesh from the scheduler's side: a web bridge on
/// another data directory (`confero webbridge run`, as on an edge machine)
/// offers no scheduling until the call bridge's API lists it; then the
/// scheduler links to it (the seed's log lines, in order), and the edge's
/// web app schedules through that link as its signed-in user. Deleting the
/// `webBridges` object ends the link and the offer. The call bridge's own
/// C2W links are off: the scheduler's link alone carries this.
#[test]
fn an_edge_web_bridge_schedules_over_the_scheduler_s_c2w_link() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let scheduler_port = free_port();
    let c = start(&data, &scheduler_env(scheduler_port));
    let (t, external, _) = template(&c);
    let ca = data.join("c2w-ca-cert.pem");
    assert!(common::eventually(|| ca.exists()), "no local C2W CA");
    let file = |name: &str| data.join(name).display().to_string();

    // The edge: a certificate from the call bridge's CA, the CA as its
    // trust bundle, a web user of its own.
    let edge = dir.path().join("edge");
    let (key, cert, bundle) = (file("c2w-webbridge-key.pem"), file("c2w-webbridge-cert.pem"), file("c2w-ca-cert.pem"));
    confero_ok(&edge, &["webbridge3", "c2w", "certs", &key, &cert], "");
    confero_ok(&edge, &["webbridge3", "c2w", "trust", &bundle], "");
    confero_ok(&edge, &["user", "add", "ann", "user"], "ann-password\n");
    let (web, c2w) = (free_port(), free_port());
    let log = dir.path().join("edge.log");
    let child = Command::new(common::binary())
        .args(["webbridge", "run"])
        .env("CONFERO_DATA_DIR", &edge)
        .env("CONFERO_WEB_LISTEN", format!("127.0.0.1:{web}"))
        .env("CONFERO_C2W_LISTEN", format!("127.0.0.1:{c2w}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("confero webbridge run");
    let edge_process = Process { child, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", web)).is_err() {
        assert!(Instant::now() < deadline, "the edge did not listen:\n{}", edge_process.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    let base = format!("https://127.0.0.1:{web}");
    let signed_in = common::agent()
        .post(format!("{base}/api/signin"))
        .header("content-type", "application/json")
        .body(json!({"username": "ann", "password": "ann-password"}).to_string())
        .send()
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 200);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let ask = |method: &str, path: &str, body: Option<Value>| {
        let mut req = common::agent()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{base}{path}"))
            .header("cookie", &cookie);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, serde_json::from_str::<Value>(&resp.text().unwrap_or_default()).unwrap_or(Value::Null))
    };
    let me = ask("GET", "/api/me", None).1;
    assert_eq!(me["scheduling"], false, "no scheduler is linked yet: {me}");
    assert_eq!(ask("GET", "/api/schedule/options", None).0, 404);

    // Listed by the call bridge's API: the scheduler links within its rescan.
    let object = common::id_from_location(
        c.post("/api/v1/webBridges", &format!("url=c2w://127.0.0.1:{c2w}")).location.as_deref().expect("Location"),
    );
    let guid = std::fs::read_to_string(edge.join("webbridge-guid")).expect("the edge's guid");
    let at = format!("127.0.0.1:{c2w}");
    let lines = [
        "getWebBridges - totalCount=1".to_string(),
        "getWebBridges - added=1".to_string(),
        format!("Connecting to webBridge={at}"),
        format!("Received guid {} from webbridge {at}", guid.trim()),
        format!("C2W connection for webbridge {at} UP"),
    ];
    let up = common::eventually(|| c.log_text().contains(&lines[4]));
    let text = c.log_text();
    assert!(up, "the scheduler did not link:\n{text}");
    let mut from = 0;
    for line in &lines {
        let found = text[from..].find(line.as_str()).unwrap_or_else(|| panic!("{line:?} not in order in:\n{text}"));
        from += found;
    }
    assert!(common::eventually(|| ask("GET", "/api/me", None).1["scheduling"] == true), "{}", edge_process.log_text());
    assert!(edge_process.log_text().contains("offering scheduling"), "{}", edge_process.log_text());

    // The wizard's calls, as the edge's signed-in user.
    let (status, options) = ask("GET", "/api/schedule/options", None);
    assert_eq!(status, 200, "{options}");
    assert!(options["templates"].as_array().unwrap().iter().any(|x| x["id"] == t.as_str()), "{options}");
    let (status, made) = ask(
        "POST",
        "/api/schedule/meetings",
        Some(json!({"name": "Edge planning", "coSpaceTemplate": t, "start": "2027-04-05T09:00",
                    "end": "2027-04-05T09:30", "timeZone": "Europe/Madrid",
                    "attendees": [{"email": "eve@example.test", "accessMethodTemplate": external}]})),
    );
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("the meeting's id").to_string();
    let (status, mine) =
        ask("GET", "/api/schedule/meetings?fromTime=2027-04-01T00:00:00Z&untilTime=2027-04-30T00:00:00Z", None);
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["total"], 1, "{mine}");
    let meetings = Meetings { port: scheduler_port };
    let (status, _, stored) = meetings.send("GET", &format!("/api/v1/meetings/{id}"), None);
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["organizer"], "ann", "{stored}");
    assert!(stored["coSpace"].is_string(), "a temporary space was made: {stored}");
    // A bad request gets the scheduler's refusal, naming the field.
    let (status, refusal) = ask("POST", "/api/schedule/meetings", Some(json!({"name": "x"})));
    assert_eq!(status, 400, "{refusal}");

    // No longer listed: the link ends, and with it the offer.
    c.delete(&format!("/api/v1/webBridges/{object}"));
    assert!(common::eventually(|| ask("GET", "/api/me", None).1["scheduling"] == false), "{}", c.log_text());
    assert!(c.log_text().contains("getWebBridges - totalCount=0"), "{}", c.log_text());
}

/// A web user whose user profile says `canCreateCoSpaces=false` schedules
/// in a space they own but not in one made from a template, and the wizard
/// offers them no template.
#[test]
fn a_user_profile_that_forbids_new_spaces_keeps_scheduling_to_existing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let c = start(&data, &scheduler_env(port));
    let (t, external, _) = template(&c);
    let profile = c.create("/api/v1/userProfiles", "canCreateCoSpaces=false");
    let user = c.create("/api/v1/users", &format!("userJid=fay@example.com&name=Fay&userProfile={profile}"));
    c.create(&format!("/api/v1/users/{user}/usercoSpaceTemplates"), &format!("coSpaceTemplate={t}"));
    let own = c.create("/api/v1/coSpaces", "name=Fay's room&callId=5544332211&ownerJid=fay@example.com");
    confero_ok(&data, &["user", "add", "fay", "user"], "fay-password\n");
    let post = |venue: Value| {
        let mut body = json!({"name": "Review", "start": "2027-05-03T10:00", "end": "2027-05-03T11:00",
                              "timeZone": "UTC", "attendees": [{"email": "g@example.test", "accessMethodTemplate": external}]});
        body.as_object_mut().unwrap().extend(venue.as_object().unwrap().clone());
        let r = common::agent()
            .post(format!("https://127.0.0.1:{port}/api/v1/meetings"))
            .basic_auth("fay", Some("fay-password"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str::<Value>(&r.text().unwrap_or_default()).unwrap_or(Value::Null))
    };
    let (status, refusal) = post(json!({"coSpaceTemplate": t}));
    assert_eq!(status, 400, "{refusal}");
    assert_eq!(refusal["error"]["field"], "coSpaceTemplate", "{refusal}");
    assert!(refusal["error"]["reason"].as_str().unwrap_or("").contains("profile"), "{refusal}");
    let (status, made) = post(json!({"coSpace": own}));
    assert_eq!(status, 201, "{made}");
    assert_eq!(space_count(&c), 1, "no temporary space was made");
}

/// `scheduler timedLogging api <seconds>`, given while the scheduler runs,
/// turns on a line per request to the call bridge's API (fields named,
/// values never: they may be passcodes) without a restart; the listing
/// shows the seconds left.
#[test]
fn timed_logging_shows_the_scheduler_s_api_requests_for_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let c = start(&data, &scheduler_env(port));
    let (t, external, _) = template(&c);
    mmp(&data, &["timedLogging", "api", "300"]);
    let listed = mmp(&data, &["timedLogging"]);
    let left: u64 = listed
        .lines()
        .find(|l| l.starts_with("api"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .expect("the api line");
    assert!((1..=300).contains(&left), "{listed}");
    // The running scheduler reads the setting again within two seconds.
    std::thread::sleep(Duration::from_secs(3));
    let meetings = Meetings { port };
    let (status, _, made) = meetings.send(
        "POST",
        "/api/v1/meetings",
        Some(&json!({"name": "Logged", "coSpaceTemplate": t, "start": "2027-06-01T10:00", "end": "2027-06-01T11:00",
                     "timeZone": "UTC", "passcodes": {external.clone(): "86429753"},
                     "attendees": [{"email": "h@example.test", "accessMethodTemplate": external}]})),
    );
    assert_eq!(status, 201, "{made}");
    let log = c.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("timedLogging::api")).collect();
    assert!(lines.iter().any(|l| l.contains("POST /api/v1/coSpaces") && l.contains("-> 200")), "{lines:#?}\n{log}");
    // Eight digits: a short one turns up by chance in timestamps and GUIDs.
    assert!(!log.contains("86429753"), "a passcode reached the log");
}

/// A call branding profile's `invitationTemplate` words the invitations of
/// the spaces it brands: the space's own profile names a template served
/// over HTTP, and its meeting's mail is that template with the meeting put
/// in. `system/profiles` names a template the scheduler cannot use (an
/// unknown value): a meeting in another space gets the built-in wording,
/// and the log says why.
#[test]
fn a_branding_profile_s_invitation_template_words_the_mails() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let data = dir.path().join("data");
    let (smtp_port, scheduler_port) = (free_port(), free_port());
    mmp(&data, &["email", "server", "127.0.0.1", &smtp_port.to_string()]);
    let _smtp = Smtp::start(smtp_port, &maildir);
    let files = dir.path().join("branding");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("invite.txt"),
        "Hello {{ attendee }},\njoin \"{{ name }}\" at {{ start }} ({{ time_zone }}).\n\
         {% if passcode %}\nPasscode: {{ passcode }}\n{% else %}\nNo passcode needed.\n{% endif %}\nDial {{ call_id }}.\n",
    )
    .unwrap();
    std::fs::write(files.join("broken.txt"), "Your secret is {{ secret }}\n").unwrap();
    let server = peers::FileServer::start(&files);
    let c = start(&data, &scheduler_env(scheduler_port));
    let meetings = Meetings { port: scheduler_port };

    let branded = c.create("/api/v1/callBrandingProfiles", &format!("invitationTemplate={}", server.url("invite.txt")));
    let broken = c.create("/api/v1/callBrandingProfiles", &format!("invitationTemplate={}", server.url("broken.txt")));
    assert_eq!(c.put("/api/v1/system/profiles", &format!("callBrandingProfile={broken}")).status, 200);
    let room = c.create(
        "/api/v1/coSpaces",
        &format!("name=Board&callId=5544332211&passcode=2468&callBrandingProfile={branded}"),
    );
    let plain = c.create("/api/v1/coSpaces", "name=Plain&callId=1122334455");
    let (_, role, _) = template(&c);
    let meeting = |name: &str, space: &str, to: &str| {
        let body = json!({"name": name, "coSpace": space, "start": "2027-05-03T10:00", "end": "2027-05-03T11:00",
                          "timeZone": "Europe/Madrid", "attendees": [{"email": to, "accessMethodTemplate": role}]});
        let (status, _, made) = meetings.send("POST", "/api/v1/meetings", Some(&body));
        assert_eq!(status, 201, "{made}");
    };
    meeting("Board review", &room, "ana@example.test");
    let mails = wait_for_mails(&maildir, 1);
    assert_eq!(mails.len(), 1, "{mails:?}\n{}", c.log_text());
    assert_eq!(
        mails[0]["text"].as_str().map(|t| t.replace("\r\n", "\n")).as_deref(),
        Some(
            "Hello ana@example.test,\njoin \"Board review\" at Mon 03 May 2027 10:00 (Europe/Madrid).\n\
             Passcode: 2468\nDial 5544332211.\n"
        ),
        "{mails:?}"
    );
    // The calendar part carries the same words.
    let description = mails[0]["events"][0]["description"].as_str().unwrap_or_default().replace("\r\n", "\n");
    assert!(description.starts_with("Hello ana@example.test,"), "{description}");

    meeting("Catch-up", &plain, "bob@example.test");
    let mails = wait_for_mails(&maildir, 2);
    let bob = mails.iter().find(|m| m["to"].as_str().is_some_and(|t| t.contains("bob@"))).expect("bob's mail");
    let text = bob["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("You are invited to \"Catch-up\".") && text.contains("Call ID: 1122334455"), "{text}");
    let refused = format!("invitation template {} not used", server.url("broken.txt"));
    assert!(c.log_text().contains(&refused) && c.log_text().contains("\"secret\""), "{}", c.log_text());
}
