//! The web bridge against the real binary on loopback: the web app in
//! headless Chromium (tests/peers/browser, driven by accessible labels),
//! the `user` role kept out of the API, and C2W links between a call bridge
//! and a web bridge run on its own (`confero webbridge run`), trusted and
//! refused.

mod common;
mod peers;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{agent, binary, element, eventually, free_port, Confero};

const SPACE: &str = "Team room";
const CALL_ID: &str = "4455667788";
const PASSCODE: &str = "97531864";
const WEB_USER: &str = "ann";
const WEB_PASSWORD: &str = "ann-password";

/// A process killed by PID when dropped.
struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `confero ARGS` with `dir` as data directory; its output.
fn confero(dir: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("CONFERO_DATA_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("confero");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("output")
}

fn wait_listening(port: u16, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port}; log:\n{}", log());
}

/// `confero webbridge run` on `dir`.
fn web_bridge_alone(dir: &Path, web_port: u16, c2w_port: u16) -> Process {
    let log = dir.join("webbridge.log");
    let child = Command::new(binary())
        .args(["webbridge", "run"])
        .env("CONFERO_DATA_DIR", dir)
        .env("CONFERO_WEB_LISTEN", format!("127.0.0.1:{web_port}"))
        .env("CONFERO_C2W_LISTEN", format!("127.0.0.1:{c2w_port}"))
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("webbridge run");
    let p = Process { child: Some(child), log };
    wait_listening(c2w_port, "the web bridge", || p.log_text());
    p
}

/// A call bridge with its embedded web bridge on free ports (and `extra`
/// settings); the web app's port.
fn with_web_bridge(extra: &[(&str, &str)]) -> (Confero, u16) {
    let temp = tempfile::tempdir().expect("tempdir");
    let web = free_port();
    let c2w = free_port();
    let (web_listen, c2w_listen) = (format!("127.0.0.1:{web}"), format!("127.0.0.1:{c2w}"));
    let mut env = vec![
        ("CONFERO_WEB", "on"),
        ("CONFERO_C2W_LINKS", "on"),
        ("CONFERO_WEB_LISTEN", web_listen.as_str()),
        ("CONFERO_C2W_LISTEN", c2w_listen.as_str()),
    ];
    env.extend_from_slice(extra);
    let mut c = Confero::start_in(temp.path(), &env);
    c.keep_dir(temp);
    wait_listening(web, "the web app", || c.log_text());
    (c, web)
}

/// The `webBridges` object's status once its `c2wState` is `state`.
fn link_status(c: &Confero, id: &str, state: &str) -> String {
    let mut last = String::new();
    let ok = eventually(|| {
        last = c.get(&format!("/api/v1/webBridges/{id}/status")).body;
        element(&last, "c2wState") == Some(state)
    });
    assert!(ok, "webBridges/{id} never {state}: {last}\nlog:\n{}", c.log_text());
    last
}

fn only_web_bridge(c: &Confero) -> String {
    let list = c.get("/api/v1/webBridges").body;
    let ids = common::ids(&list);
    assert_eq!(ids.len(), 1, "{list}");
    ids[0].clone()
}

/// Just enough JSON for the scripts' arguments.
mod serde_like {
    pub struct Json(pub Vec<(&'static str, String)>);

    impl std::fmt::Display for Json {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let fields: Vec<String> = self
                .0
                .iter()
                .map(|(k, v)| {
                    let escaped: String = v
                        .chars()
                        .flat_map(|c| match c {
                            '"' => vec!['\\', '"'],
                            '\\' => vec!['\\', '\\'],
                            c => vec![c],
                        })
                        .collect();
                    format!("\"{k}\":\"{escaped}\"")
                })
                .collect();
            write!(f, "{{{}}}", fields.join(","))
        }
    }
}

#[test]
fn the_web_app_joins_by_id_passcode_link_and_my_spaces() {
    let (c, web) = with_web_bridge(&[]);
    let local = only_web_bridge(&c);
    let status = link_status(&c, &local, "connected");
    let guid = std::fs::read_to_string(c.data_dir.join("webbridge-guid")).expect("guid");
    assert_eq!(element(&status, "guid"), Some(guid.trim()), "{status}");

    let space = c.create("/api/v1/coSpaces", &format!("name={SPACE}&uri=team&callId={CALL_ID}&passcode={PASSCODE}"));
    let secret = element(&c.get(&format!("/api/v1/coSpaces/{space}")).body, "secret").expect("secret").to_string();
    let added = confero(&c.data_dir, &["user", "add", WEB_USER, "user"], Some(&format!("{WEB_PASSWORD}\n")));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    c.create(&format!("/api/v1/coSpaces/{space}/coSpaceUsers"), &format!("userJid={WEB_USER}@example.com"));

    // A web user is refused by the API, whatever it asks.
    let refused = c.send_with("GET", "/api/v1/coSpaces", None, Some((WEB_USER, WEB_PASSWORD)), None);
    assert_eq!(refused.status, 401, "{}", refused.body);

    // Security headers and the session cookie's flags.
    let base = format!("https://127.0.0.1:{web}");
    let home = agent().get(&base).send().expect("home");
    let csp = home.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(csp.contains("frame-ancestors 'self'") && csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(home.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    let body = home.text().expect("body");
    assert!(!body.contains("<script>") && body.contains("src=\"/static/app.js\""), "no inline script");
    let signed_in = agent()
        .post(format!("{base}/api/signin"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{WEB_USER}\",\"password\":\"{WEB_PASSWORD}\"}}"))
        .send()
        .expect("sign in");
    assert_eq!(signed_in.status().as_u16(), 200);
    let cookie = signed_in.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Max-Age=86400"] {
        assert!(cookie.contains(flag), "{cookie}");
    }

    // The API gives out the join link the linked web app answers, with the
    // space's secret, so it needs no passcode.
    let entry = c.get(&format!("/api/v1/coSpaces/{space}/meetingEntryDetail")).body;
    let link = element(&entry, "webAddress").unwrap_or_else(|| panic!("no join link: {entry}")).to_string();
    let encoded: String = secret
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    assert_eq!(link, format!("{base}/meeting/{CALL_ID}?secret={encoded}"), "{entry}");
    assert!(link_status(&c, &local, "connected").contains(&format!("<webAddress>{base}</webAddress>")));

    let arg = serde_like::Json(vec![
        ("base", base),
        ("callId", CALL_ID.into()),
        ("passcode", PASSCODE.into()),
        ("link", link),
        ("spaceName", SPACE.into()),
        ("user", WEB_USER.into()),
        ("password", WEB_PASSWORD.into()),
    ]);
    let out = peers::run_browser("web_app.mjs", &arg);
    println!("{out}");

    // No wrong ID or passcode ever made a leg.
    assert_eq!(common::total(&c.get("/api/v1/callLegs").body), 0);
    let log = c.log_text();
    assert!(!log.contains(PASSCODE) && !log.contains(WEB_PASSWORD), "a passcode or password in the log");
}

#[test]
fn a_web_bridge_run_alone_links_with_trust_and_is_refused_without() {
    let temp = tempfile::tempdir().expect("tempdir");
    let mut c = Confero::start_in(temp.path(), &[("CONFERO_C2W_LINKS", "on")]);
    c.keep_dir(temp);
    let ca = c.data_dir.join("c2w-ca-cert.pem");
    assert!(eventually(|| ca.exists()), "no local CA");
    let path = |name: &str| c.data_dir.join(name).display().to_string();

    // An edge web bridge given the call bridge's CA and a certificate it issued.
    let edge = tempfile::tempdir().expect("tempdir");
    let (web, c2w) = (free_port(), free_port());
    let (key, cert, bundle) = (path("c2w-webbridge-key.pem"), path("c2w-webbridge-cert.pem"), path("c2w-ca-cert.pem"));
    let commands: [&[&str]; 3] = [
        &["webbridge3", "c2w", "certs", &key, &cert],
        &["webbridge3", "c2w", "trust", &bundle],
        &["webbridge3", "https", "frame-ancestors", "https://portal.example.com"],
    ];
    for args in commands {
        let out = confero(edge.path(), args, None);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let shown = confero(edge.path(), &["webbridge3"], None);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains(&format!("C2W Trust bundle : {}", path("c2w-ca-cert.pem"))), "{shown}");
    assert!(shown.contains("HTTPS Frame-Ancestors : https://portal.example.com"), "{shown}");
    let edge_process = web_bridge_alone(edge.path(), web, c2w);
    let id = common::id_from_location(
        c.post("/api/v1/webBridges", &format!("url=c2w://127.0.0.1:{c2w}")).location.as_deref().expect("Location"),
    );
    let status = link_status(&c, &id, "connected");
    let guid = std::fs::read_to_string(edge.path().join("webbridge-guid")).expect("guid");
    assert_eq!(element(&status, "guid"), Some(guid.trim()), "{status}");
    // The edge's web app reaches the call bridge over the link.
    let answer = agent().get(format!("https://127.0.0.1:{web}/api/meeting?id=123")).send().expect("meeting");
    assert_eq!(answer.status().as_u16(), 404, "meetingNotFound through C2W");
    let headers = agent().get(format!("https://127.0.0.1:{web}/")).send().expect("home");
    let csp = headers.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(csp.contains("frame-ancestors https://portal.example.com"), "{csp}");
    drop(edge_process);
    c.delete(&format!("/api/v1/webBridges/{id}"));

    // Another edge that trusts only its own local CA: our certificate is
    // outside its bundle, so it refuses us, and the alarm is raised.
    let strict = tempfile::tempdir().expect("tempdir");
    let (web2, c2w2) = (free_port(), free_port());
    let out = confero(strict.path(), &["webbridge3", "c2w", "certs", &key, &cert], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let strict_process = web_bridge_alone(strict.path(), web2, c2w2);
    let refused = common::id_from_location(
        c.post("/api/v1/webBridges", &format!("url=c2w://127.0.0.1:{c2w2}")).location.as_deref().expect("Location"),
    );
    let status = link_status(&c, &refused, "failed");
    assert_eq!(element(&status, "failureReason"), Some("certificateRefused"), "{status}");
    let alarms = c.get("/api/v1/system/alarms").body;
    assert!(alarms.contains("<type>webBridgeConnectionFailure</type>"), "{alarms}");
    assert!(
        strict_process.log_text().contains("C2W: refused"),
        "the web bridge says why:\n{}",
        strict_process.log_text()
    );

    // Deleting the object stops the link and clears its alarm.
    c.delete(&format!("/api/v1/webBridges/{refused}"));
    assert!(eventually(|| !c.get("/api/v1/system/alarms").body.contains("webBridgeConnectionFailure")));
}

/// A solid-colour Y4M clip (I420, 320x180, 30 frames) for Chromium's fake
/// camera; `yuv` is the colour in BT.601 video range.
fn write_y4m(path: &Path, yuv: (u8, u8, u8)) {
    let (w, h) = (320usize, 180usize);
    let mut data = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..30 {
        data.extend_from_slice(b"FRAME\n");
        data.extend(std::iter::repeat_n(yuv.0, w * h));
        data.extend(std::iter::repeat_n(yuv.1, w * h / 4));
        data.extend(std::iter::repeat_n(yuv.2, w * h / 4));
    }
    std::fs::write(path, data).expect("y4m");
}

/// The browser's camera: (60, 60, 200) in RGB.
const BROWSER_CAMERA: [u8; 3] = [60, 60, 200];
const BROWSER_CAMERA_YUV: (u8, u8, u8) = (81, 190, 118);
/// The baresip's camera.
const BARESIP_CAMERA: u32 = 0xC83228;
const BARESIP_TONE_HZ: f64 = 440.0;
const BROWSER_TONE_HZ: f64 = 880.0;

#[test]
fn a_browser_and_a_baresip_hear_and_see_each_other() {
    use peers::{similar, tone_level_db, Baresip, BaresipSetup, Picture};
    // The SIP listener on a free port of its own, for the baresip to dial.
    let sip = peers::free_pair();
    let sip_listen = format!("127.0.0.1:{sip}");
    let (c, web_port) = with_web_bridge(&[("CONFERO_SIP_LISTEN", sip_listen.as_str())]);
    let local = only_web_bridge(&c);
    link_status(&c, &local, "connected");
    c.create("/api/v1/coSpaces", &format!("name={SPACE}&uri=team&callId={CALL_ID}&passcode={PASSCODE}"));

    let peers_dir = tempfile::tempdir().expect("tempdir");
    let setup = BaresipSetup::opus("desk", BARESIP_TONE_HZ, 23_300);
    let phone = Baresip::dial_video(peers_dir.path(), &setup, BARESIP_CAMERA, &format!("sip:team@127.0.0.1:{sip}"), 60);
    phone.wait_ready();
    assert!(eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 1), "{}", phone.log());
    phone.send_dtmf(setup.ctrl_port, &format!("{PASSCODE}#"));
    let camera = phone
        .snapshot(setup.ctrl_port, "send", &peers_dir.path().join("send.png"))
        .expect("baresip's own camera")
        .pixel(160, 90);

    let tone = peers_dir.path().join("browser-tone.wav");
    peers::write_tone(&tone, BROWSER_TONE_HZ, 30, 0.25);
    let y4m = peers_dir.path().join("browser-camera.y4m");
    write_y4m(&y4m, BROWSER_CAMERA_YUV);
    let screenshot = peers_dir.path().join("browser.png");
    let arg = serde_like::Json(vec![
        ("base", format!("https://127.0.0.1:{web_port}")),
        ("callId", CALL_ID.into()),
        ("passcode", PASSCODE.into()),
        ("toneWav", tone.display().to_string()),
        ("cameraY4m", y4m.display().to_string()),
        ("screenshot", screenshot.display().to_string()),
        ("hearHz", BARESIP_TONE_HZ.to_string()),
        ("ownHz", BROWSER_TONE_HZ.to_string()),
        ("stayMs", "6000".into()),
    ]);
    // The browser runs on its own thread so the baresip's snapshot is taken
    // while it is in the meeting.
    let browser = std::thread::spawn(move || peers::run_browser("web_media.mjs", &arg));
    assert!(eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 2), "the browser's leg");
    let mut seen = None;
    for attempt in 0..20 {
        let path = peers_dir.path().join(format!("recv-{attempt}.png"));
        if let Some(p) = phone.snapshot(setup.ctrl_port, "recv", &path) {
            let centre = p.pixel(p.width / 2, p.height / 2);
            if similar(centre, BROWSER_CAMERA, 40) {
                seen = Some(centre);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(seen.is_some(), "the baresip never saw the browser's camera");
    let out = browser.join().expect("browser thread");
    println!("{out}");

    let picture = Picture::read(&screenshot).expect("the browser's screenshot");
    let centre = picture.pixel(picture.width / 2, picture.height / 2);
    assert!(similar(centre, camera, 40), "the browser's screen shows {centre:?}, the baresip's camera is {camera:?}");

    let mut phone = phone;
    phone.wait(Duration::from_secs(1));
    let (heard, rate) = phone.heard();
    let browser_level = tone_level_db(&heard, BROWSER_TONE_HZ, rate);
    let own_level = tone_level_db(&heard, BARESIP_TONE_HZ, rate);
    assert!(
        browser_level > own_level + 20.0,
        "baresip heard the browser at {browser_level} dB, itself at {own_level} dB"
    );
}

/// POSTs a join to the web app: the status and body.
fn post_join(web: u16, passcode: &str) -> (u16, String) {
    let body =
        format!("{{\"meetingId\":\"{CALL_ID}\",\"passcode\":\"{passcode}\",\"name\":\"Guest\",\"offer\":\"v=0\"}}");
    let r = agent()
        .post(format!("https://127.0.0.1:{web}/api/join"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .expect("join");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn sign_in(web: u16) -> (u16, String) {
    let r = agent()
        .post(format!("https://127.0.0.1:{web}/api/signin"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{WEB_USER}\",\"password\":\"{WEB_PASSWORD}\"}}"))
        .send()
        .expect("sign in");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn web_bridge_profiles_decide_what_the_web_app_allows() {
    let (c, web) = with_web_bridge(&[]);
    let local = only_web_bridge(&c);
    link_status(&c, &local, "connected");
    c.create("/api/v1/coSpaces", &format!("name={SPACE}&callId={CALL_ID}&passcode={PASSCODE}"));
    let added = confero(&c.data_dir, &["user", "add", WEB_USER, "user"], Some(&format!("{WEB_PASSWORD}\n")));
    assert!(added.status.success());
    // Nothing assigned: the passcode admits (and the join goes on to media).
    let (status, body) = post_join(web, PASSCODE);
    assert!(status == 502 && body.contains("mediaNegotiation"), "{status} {body}");
    assert_eq!(sign_in(web).0, 200);

    // The system's profile forbids passcodes and signing in.
    let strict = c.create("/api/v1/webBridgeProfiles", "name=strict&allowPasscodes=false&userPortalEnabled=false");
    assert_eq!(c.put("/api/v1/system/profiles", &format!("webBridgeProfile={strict}")).status, 200);
    let (status, body) = post_join(web, PASSCODE);
    assert!(status == 403 && body.contains("passcodesNotAllowed"), "{status} {body}");
    let (status, body) = sign_in(web);
    assert!(status == 403 && body.contains("portalDisabled"), "{status} {body}");

    // The web bridge's own profile allows passcodes again; signing in stays
    // off, as only the system's profile says anything of it.
    let own = c.create("/api/v1/webBridgeProfiles", "name=own&allowPasscodes=true");
    assert_eq!(c.put(&format!("/api/v1/webBridges/{local}"), &format!("webBridgeProfile={own}")).status, 200);
    let (status, body) = post_join(web, PASSCODE);
    assert!(status == 502 && body.contains("mediaNegotiation"), "{status} {body}");
    assert_eq!(sign_in(web).0, 403);
    assert_eq!(common::total(&c.get("/api/v1/callLegs").body), 0);

    // Walking meeting IDs is throttled per source.
    let statuses: Vec<u16> = (0..25)
        .map(|i| {
            let url = format!("https://127.0.0.1:{web}/api/meeting?id={}", 7_000_000 + i);
            agent().get(url).send().expect("meeting").status().as_u16()
        })
        .collect();
    assert_eq!(statuses[0], 404);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

/// Two browsers and a baresip that requires SRTP (`sipMediaEncryption=
/// required` on the space's call leg profile, `mediaenc=srtp-mand` on the
/// baresip): each of the three hears the other two above its own tone.
#[test]
fn two_browsers_and_an_srtp_baresip_each_hear_the_other_two() {
    use peers::{tone_level_db, Baresip, BaresipSetup};
    const TONES: [f64; 3] = [440.0, 700.0, 1100.0]; // baresip, browser a, browser b
    let sip = peers::free_pair();
    let sip_listen = format!("127.0.0.1:{sip}");
    let (c, web_port) = with_web_bridge(&[("CONFERO_SIP_LISTEN", sip_listen.as_str())]);
    let local = only_web_bridge(&c);
    link_status(&c, &local, "connected");
    let profile = c.create("/api/v1/callLegProfiles", "sipMediaEncryption=required");
    c.create(
        "/api/v1/coSpaces",
        &format!("name=Secure&uri=secure&callId=5566&passcode={PASSCODE}&callLegProfile={profile}"),
    );
    let peers_dir = tempfile::tempdir().expect("tempdir");
    let setup = BaresipSetup { mediaenc: Some("srtp-mand"), ..BaresipSetup::opus("srtp", TONES[0], 23_400) };
    let mut phone = Baresip::dial(peers_dir.path(), &setup, &format!("sip:secure@127.0.0.1:{sip}"), 60);
    phone.wait_ready();
    assert!(eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 1), "{}", phone.log());
    phone.send_dtmf(setup.ctrl_port, &format!("{PASSCODE}#"));
    let browsers: Vec<_> = [(1, 2), (2, 1)]
        .into_iter()
        .map(|(own, other)| {
            let tone = peers_dir.path().join(format!("browser-{own}.wav"));
            peers::write_tone(&tone, TONES[own], 30, 0.25);
            let y4m = peers_dir.path().join(format!("browser-{own}.y4m"));
            write_y4m(&y4m, BROWSER_CAMERA_YUV);
            let arg = serde_like::Json(vec![
                ("base", format!("https://127.0.0.1:{web_port}")),
                ("callId", "5566".into()),
                ("passcode", PASSCODE.into()),
                ("toneWav", tone.display().to_string()),
                ("cameraY4m", y4m.display().to_string()),
                ("screenshot", peers_dir.path().join(format!("browser-{own}.png")).display().to_string()),
                ("hearHz", format!("{},{}", TONES[0], TONES[other])),
                ("ownHz", TONES[own].to_string()),
                ("stayMs", "6000".into()),
            ]);
            std::thread::spawn(move || peers::run_browser("web_media.mjs", &arg))
        })
        .collect();
    assert!(eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 3), "the browsers' legs");
    // The baresip's leg is SRTP, the browsers' DTLS-SRTP.
    for id in common::ids(&c.get("/api/v1/callLegs").body) {
        let leg = c.get(&format!("/api/v1/callLegs/{id}")).body;
        assert!(leg.contains("<encryptedMedia>true</encryptedMedia>"), "{leg}");
    }
    for browser in browsers {
        println!("{}", browser.join().expect("browser thread"));
    }
    phone.wait(Duration::from_secs(1));
    let (heard, rate) = phone.heard();
    // The last 5 s, when both browsers were in (not the lobby's prompt).
    let heard = &heard[heard.len().saturating_sub(5 * rate as usize)..];
    let own = tone_level_db(heard, TONES[0], rate);
    for hz in &TONES[1..] {
        let level = tone_level_db(heard, *hz, rate);
        assert!(level > own + 20.0, "the baresip heard {hz} Hz at {level:.1} dB, itself at {own:.1} dB");
    }
}

/// The meeting's controls act on the browser's own call leg, live: "Mute
/// microphone" sets its `rxAudioMute`, the "Layout" selector its
/// `chosenLayout`, "Stop camera" its `rxVideoMute`, and "Leave" ends it.
#[test]
fn the_meeting_controls_change_the_browser_s_own_leg() {
    let (c, web_port) = with_web_bridge(&[]);
    let local = only_web_bridge(&c);
    link_status(&c, &local, "connected");
    c.create("/api/v1/coSpaces", &format!("name=Controls&uri=controls&callId=7788&passcode={PASSCODE}"));
    let arg = serde_like::Json(vec![
        ("base", format!("https://127.0.0.1:{web_port}")),
        ("callId", "7788".into()),
        ("passcode", PASSCODE.into()),
        ("stepMs", "2500".into()),
    ]);
    let browser = std::thread::spawn(move || peers::run_browser("web_controls.mjs", &arg));
    let leg =
        || common::ids(&c.get("/api/v1/callLegs").body).first().map(|id| c.get(&format!("/api/v1/callLegs/{id}")).body);
    let mut last = String::new();
    for (what, wanted) in [
        ("a leg", "<callLeg"),
        ("rxAudioMute", "<rxAudioMute>true</rxAudioMute>"),
        ("chosenLayout", "<chosenLayout>speakerOnly</chosenLayout>"),
        ("rxVideoMute", "<rxVideoMute>true</rxVideoMute>"),
    ] {
        let seen = eventually(|| {
            last = leg().unwrap_or_default();
            last.contains(wanted)
        });
        assert!(seen, "{what} never showed on the browser's leg: {last}\n{}", c.log_text());
    }
    assert!(eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 0), "Leave did not end the leg");
    println!("{}", browser.join().expect("browser thread"));
}

/// A coturn on loopback (long-term credentials), ended by PID.
struct Coturn {
    child: Child,
    log: PathBuf,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn coturn(dir: &Path, port: u16, user: &str) -> Coturn {
    let log = dir.join("turnserver.log");
    let child = Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--no-tls", "--no-dtls", "--no-cli"])
        .args(["--lt-cred-mech", "--realm=confero.test", "--allow-loopback-peers", "--simple-log"])
        .arg(format!("--user={user}"))
        .arg(format!("--listening-port={port}"))
        .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
        .arg(format!("--log-file={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (coturn)");
    let c = Coturn { child, log };
    wait_listening(port, "coturn", || std::fs::read_to_string(&c.log).unwrap_or_default());
    c
}

/// The call bridge's `turnServers` reach browsers: the web app's meeting
/// lookup names them (UDP and TCP, with the credentials), and a browser
/// allowed relayed candidates only (as behind a firewall that lets nothing
/// but the TURN server through) joins through coturn: its chosen candidate
/// is a relay, media flows both ways, and the call bridge hears it.
#[test]
fn a_relay_only_browser_joins_through_the_turn_server() {
    let (c, web) = with_web_bridge(&[]);
    let local = only_web_bridge(&c);
    link_status(&c, &local, "connected");
    c.create("/api/v1/coSpaces", &format!("name={SPACE}&callId={CALL_ID}&passcode={PASSCODE}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _turn = coturn(dir.path(), port, "confero:turn-secret");
    c.create(
        "/api/v1/turnServers",
        &format!(
            "serverAddress=127.0.0.1:{port}&clientAddress=127.0.0.1:{port}&username=confero&password=turn-secret&type=standard"
        ),
    );
    let info = agent().get(format!("https://127.0.0.1:{web}/api/meeting?id={CALL_ID}")).send().expect("meeting");
    let info: serde_json::Value = serde_json::from_str(&info.text().unwrap_or_default()).expect("JSON");
    let servers = &info["iceServers"];
    assert_eq!(servers[0]["username"], "confero", "{info}");
    assert_eq!(servers[0]["credential"], "turn-secret", "{info}");
    let tcp = format!("turn:127.0.0.1:{port}?transport=tcp");
    assert!(servers[0]["urls"].as_array().unwrap().iter().any(|u| u == tcp.as_str()), "{info}");

    let arg = serde_like::Json(vec![
        ("base", format!("https://127.0.0.1:{web}")),
        ("callId", CALL_ID.into()),
        ("passcode", PASSCODE.into()),
        ("stayMs", "4000".into()),
    ]);
    let browser = std::thread::spawn(move || peers::run_browser("web_turn.mjs", &arg));
    // While it is in: the leg's audio arrives (it can only come through coturn).
    let mut heard = String::new();
    let arrived = eventually(|| {
        let legs = c.get("/api/v1/callLegs").body;
        let Some(leg) = common::ids(&legs).into_iter().next() else { return false };
        heard = c.get(&format!("/api/v1/callLegs/{leg}")).body;
        let rx = heard.split("<rxAudio>").nth(1).unwrap_or("");
        element(rx, "bitRate").and_then(|b| b.parse::<u64>().ok()).is_some_and(|b| b > 0)
    });
    let out = browser.join().expect("browser thread");
    println!("{out}");
    assert!(out.contains("\"localType\":\"relay\""), "{out}");
    assert!(arrived, "the call bridge never heard the relayed browser: {heard}");
}

/// Writes `dst`, a copy of the test customization archive whose brand name
/// is `brand` (by Python's `zipfile`, deflated, as administrators' tools
/// make them); replaced whole, so the file server never serves half of it.
fn brand_archive(dst: &Path, brand: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("control/webbridge/testdata/deflated.zip");
    let script = r#"
import json, os, sys, zipfile
src, dst, brand = sys.argv[1:4]
with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst + '.tmp', 'w', zipfile.ZIP_DEFLATED) as b:
    for name in a.namelist():
        data = a.read(name)
        if name == 'text_strings.json':
            data = json.dumps({**json.loads(data), 'brand_name': brand}).encode()
        b.writestr(name, data)
os.replace(dst + '.tmp', dst)
"#;
    let out =
        Command::new("/usr/bin/python3").args(["-c", script]).arg(&src).arg(dst).arg(brand).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// What the web app's `/api/branding` says now.
fn branding(web: u16) -> serde_json::Value {
    let r = agent().get(format!("https://127.0.0.1:{web}/api/branding")).send().expect("branding");
    serde_json::from_str(&r.text().expect("body")).expect("JSON")
}

#[test]
fn a_customization_archive_brands_the_sign_in_page() {
    let files = tempfile::tempdir().expect("tempdir");
    brand_archive(&files.path().join("brand.zip"), "Example Corp Meetings");
    std::fs::write(files.path().join("not-a-zip.zip"), "<html>surprise</html>").expect("write");
    std::fs::write(files.path().join("huge.zip"), vec![0u8; 9 * 1024 * 1024]).expect("write");
    let server = peers::FileServer::start(files.path());
    let (c, web) = with_web_bridge(&[]);
    let local = only_web_bridge(&c);
    link_status(&c, &local, "connected");
    assert_eq!(branding(web)["brandName"], serde_json::Value::Null, "no archive: the web app's own look");

    // CMS 3's way: the archive on a web bridge profile, here the system's.
    let profile =
        c.create("/api/v1/webBridgeProfiles", &format!("name=brand&resourceArchive={}", server.url("brand.zip")));
    assert_eq!(c.put("/api/v1/system/profiles", &format!("webBridgeProfile={profile}")).status, 200);
    let mut last = serde_json::Value::Null;
    let shown = eventually(|| {
        last = branding(web);
        last["brandName"] == "Example Corp Meetings"
    });
    assert!(shown, "the archive never reached the web app: {last}\n{}", c.log_text());
    assert_eq!(last["brandTagLine"], "Meet from anywhere");
    assert_eq!(last["images"]["logo"], "/branding/logo", "{last}");
    assert_eq!(last["images"].get("icon"), None, "the archive has no icon: {last}");
    let logo = agent().get(format!("https://127.0.0.1:{web}/branding/logo")).send().expect("logo");
    assert_eq!(logo.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"));
    assert!(logo.bytes().expect("bytes").starts_with(b"\x89PNG"), "the logo's own bytes");
    let missing = agent().get(format!("https://127.0.0.1:{web}/branding/icon")).send().expect("icon");
    assert_eq!(missing.status().as_u16(), 404);

    let arg = serde_like::Json(vec![
        ("base", format!("https://127.0.0.1:{web}")),
        ("brandName", "Example Corp Meetings".into()),
        ("tagLine", "Meet from anywhere".into()),
        ("logoWidth", "40".into()),
    ]);
    println!("{}", peers::run_browser("web_branding.mjs", &arg));

    // The archive changed in place: re-retrieved on updateCustomization.
    brand_archive(&files.path().join("brand.zip"), "Renamed Corp");
    let update = c.post(&format!("/api/v1/webBridges/{local}/updateCustomization"), "");
    assert_eq!(update.status, 200, "{}", update.body);
    let renamed = eventually(|| {
        last = branding(web);
        last["brandName"] == "Renamed Corp"
    });
    assert!(renamed, "updateCustomization did not re-retrieve: {last}");

    // The web bridge's own resourceArchive (CMS 2's place) comes first. One
    // that cannot be retrieved, or used, raises CMS's alarm with its reason
    // and leaves the web app as it was.
    for (file, reason) in
        [("missing.zip", "fileNotFound"), ("not-a-zip.zip", "dataFormatInvalid"), ("huge.zip", "fileSizeLimitExceeded")]
    {
        let put = c.put(&format!("/api/v1/webBridges/{local}"), &format!("resourceArchive={}", server.url(file)));
        assert_eq!(put.status, 200, "{}", put.body);
        let mut alarms = String::new();
        let raised = eventually(|| {
            alarms = c.get("/api/v1/system/alarms").body;
            alarms.contains("webBridgeArchiveRetrievalFailure") && alarms.contains(reason)
        });
        assert!(raised, "no {reason} alarm for {file}: {alarms}");
        assert_eq!(branding(web)["brandName"], "Renamed Corp", "a failed archive changes nothing");
    }

    // No archive anywhere: the alarm clears and the web app's own look is back.
    assert_eq!(c.put(&format!("/api/v1/webBridges/{local}"), "resourceArchive=").status, 200);
    assert_eq!(c.put(&format!("/api/v1/webBridgeProfiles/{profile}"), "resourceArchive=").status, 200);
    let plain = eventually(|| {
        last = branding(web);
        last["brandName"].is_null() && !c.get("/api/v1/system/alarms").body.contains("webBridgeArchive")
    });
    assert!(plain, "customization not withdrawn: {last}");
    let home = agent().get(format!("https://127.0.0.1:{web}/branding/logo")).send().expect("logo");
    assert_eq!(home.status().as_u16(), 404);
}

/// Host and guests on one meeting ID, in the web app: the space and its
/// guests' access method share the call ID, told apart by passcode. A
/// browser typing the guests' passcode joins by the access method (its
/// `needsActivation` profile applies): it waits, `deactivated`, hearing the
/// waiting tones, until a baresip typing the host's passcode is in; then it
/// hears the host.
#[test]
fn a_browser_guest_on_a_shared_meeting_id_waits_for_the_host() {
    use peers::{Baresip, BaresipSetup};
    const HOST_HZ: f64 = 900.0;
    const WAITING_HZ: f64 = 392.0;
    let sip = peers::free_pair();
    let sip_listen = format!("127.0.0.1:{sip}");
    let (c, web) = with_web_bridge(&[("CONFERO_SIP_LISTEN", sip_listen.as_str())]);
    link_status(&c, &only_web_bridge(&c), "connected");
    let guests = c.create("/api/v1/callLegProfiles", "needsActivation=true");
    let space = c.create("/api/v1/coSpaces", &format!("name=Clinic&uri=clinic&callId={CALL_ID}&passcode=1111"));
    c.create(
        &format!("/api/v1/coSpaces/{space}/accessMethods"),
        &format!("uri=clinic&callId={CALL_ID}&passcode=2222&callLegProfile={guests}"),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("browser-tone.wav");
    peers::write_tone(&tone, 700.0, 40, 0.25);
    let arg = serde_like::Json(vec![
        ("base", format!("https://127.0.0.1:{web}")),
        ("callId", CALL_ID.into()),
        ("passcode", "2222".into()),
        ("toneWav", tone.display().to_string()),
        ("hearHz", format!("{HOST_HZ},{WAITING_HZ}")),
        ("listenMs", "22000".into()),
    ]);
    let browser = std::thread::spawn(move || peers::run_browser("web_listen.mjs", &arg));
    let leg = || {
        common::ids(&c.get("/api/v1/callLegs").body)
            .first()
            .map(|id| c.get(&format!("/api/v1/callLegs/{id}")).body)
            .unwrap_or_default()
    };
    assert!(eventually(|| element(&leg(), "deactivated") == Some("true")), "the guest does not wait: {}", leg());
    let guest_leg = leg();
    // Waiting long enough to hear the waiting tones (every 5 s) first.
    std::thread::sleep(Duration::from_secs(7));
    let host_setup = BaresipSetup::opus("host", HOST_HZ, 24_340);
    let mut host = Baresip::dial(dir.path(), &host_setup, &format!("sip:clinic@127.0.0.1:{sip}"), 16);
    assert!(eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 2), "{}", host.log());
    std::thread::sleep(Duration::from_millis(800));
    host.send_dtmf(host_setup.ctrl_port, "1111#");
    assert!(eventually(|| element(&leg(), "deactivated") == Some("false")), "not admitted: {}", leg());
    let out = browser.join().expect("browser thread");
    host.wait(Duration::from_secs(20));
    println!("{out}");

    let levels: Vec<Vec<f64>> = out
        .lines()
        .find_map(|l| l.strip_prefix("levels "))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| panic!("no levels from the browser:\n{out}"));
    // 250 ms apart: the first 6 s waiting, the last 4 s with the host.
    let loudest = |from: usize, to: usize, k: usize| levels[from..to].iter().map(|l| l[k]).fold(-200.0, f64::max);
    let n = levels.len();
    assert!(n > 60, "{n} samples");
    let (host_while_waiting, tones_while_waiting) = (loudest(0, 24, 0), loudest(0, 24, 1));
    let (host_after, tones_after) = (loudest(n - 16, n, 0), loudest(n - 16, n, 1));
    assert!(
        tones_while_waiting > -70.0 && host_while_waiting < -80.0,
        "while waiting the browser heard the tones at {tones_while_waiting} dB, the host at {host_while_waiting} dB"
    );
    assert!(
        host_after > -50.0 && host_after > tones_after + 20.0,
        "with the host in the browser heard it at {host_after} dB (the waiting tones at {tones_after} dB)"
    );
    assert!(guest_leg.contains("<deactivated>true</deactivated>"));
}
