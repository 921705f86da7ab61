//! Browsers against the call bridge's WebRTC legs, without the web bridge in
//! between: headless Chromium (tests/peers/browser/webrtc-peer.cjs) makes a
//! real offer, the bridge library answers it through `join_web` exactly as
//! it does for a C2W request, and the media runs over loopback: ICE-lite
//! checks, DTLS-SRTP with Chromium's own certificate and profile choice,
//! BUNDLE, Opus through the mixer and H.264 (or VP8) through the compositor.

mod common;
mod peers;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;

use confero::bridge::{Bridge, BridgeConfig, CallBridge};
use confero_api::alarms::Alarms;
use confero_api::bridge::{BridgeHandle, WebJoin, WebJoinError};
use confero_api::cdr::CdrSender;
use confero_store::form::Form;
use confero_store::schema::{spec, validate_changes, Kind};
use confero_store::{SqliteStore, Store};
use rand::SeedableRng;

/// The browser peer's script, where playwright-core is installed
/// (scripts/lib/setup.sh puts it there); `None`, said on stderr, when it or
/// Chromium is missing, which only a bare `cargo test` outside CI may be.
fn peer_script() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/browser");
    let installed = dir.join("node_modules/playwright-core").exists() || std::env::var_os("PLAYWRIGHT_CORE").is_some();
    if installed && Path::new("/usr/bin/chromium").exists() {
        return Some(dir.join("webrtc-peer.cjs"));
    }
    assert!(std::env::var_os("CI").is_none(), "playwright-core or /usr/bin/chromium missing in CI");
    eprintln!("skipped: playwright-core or /usr/bin/chromium missing (scripts/lib/setup.sh installs them)");
    None
}

/// One Chromium page as a WebRTC peer.
struct BrowserPeer {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl BrowserPeer {
    fn start(script: &Path, wav: &Path, seconds: u32, freqs: &[u32]) -> BrowserPeer {
        let freqs: Vec<String> = freqs.iter().map(u32::to_string).collect();
        let mut child = Command::new("node")
            .arg(script)
            .arg(wav)
            .arg(seconds.to_string())
            .arg(freqs.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        BrowserPeer { child, stdin, lines }
    }

    fn next_json(&mut self) -> serde_json::Value {
        let line = self.lines.next().expect("a line from the browser").expect("utf-8");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON from the browser");
        assert!(value.get("error").is_none(), "browser: {value}");
        value
    }

    fn offer(&mut self) -> String {
        self.next_json()["offer"].as_str().expect("offer").to_string()
    }

    fn answer(&mut self, answer: Result<String, String>) {
        let line = match answer {
            Ok(sdp) => serde_json::json!({ "answer": sdp }),
            Err(e) => serde_json::json!({ "error": e }),
        };
        writeln!(self.stdin, "{line}").expect("to the browser");
    }
}

impl Drop for BrowserPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an object of `kind` from an API form body; its id.
fn create(store: &dyn Store, kind: Kind, body: &str) -> uuid::Uuid {
    let form = Form::parse(body.as_bytes()).unwrap();
    let changes = validate_changes(spec(kind).fields, &form, true).unwrap();
    store.create(kind, None, &changes).unwrap().id
}

/// The call bridge as the binary runs it (media runtime, bridge task) on
/// `runtime`, over `store`.
fn start_bridge(store: Arc<dyn Store>, runtime: &tokio::runtime::Runtime) -> Arc<CallBridge> {
    let _guard = runtime.enter();
    let (media_tx, media_events) = tokio::sync::mpsc::unbounded_channel();
    let sink: confero_media::runtime::EventSink = Arc::new(move |e| drop(media_tx.send(e)));
    let config = confero_media::runtime::RuntimeConfig { workers: 1, video_threads: 1, ..Default::default() };
    let media = Arc::new(confero_media::runtime::MediaRuntime::start(config, sink).unwrap());
    let cdr = CdrSender::new(store.clone(), Arc::new(Alarms::default()), uuid::Uuid::new_v4());
    let core = Bridge::new(
        store,
        media,
        BridgeConfig { video: true, sip_local: None, branding: Default::default() },
        Box::new(rand::rngs::StdRng::seed_from_u64(3)),
    );
    let (sip_commands, _sip_queue) = tokio::sync::mpsc::unbounded_channel();
    let (_sip_events_tx, sip_events) = tokio::sync::mpsc::unbounded_channel();
    let bridge = CallBridge::new(core, cdr, sip_commands);
    runtime.spawn(bridge.clone().run(sip_events, media_events, confero::sip::locate::Locator::new(None)));
    bridge
}

fn join(call_id: &str, passcode: Option<&str>, offer: String) -> WebJoin {
    WebJoin {
        call_id: call_id.into(),
        passcode: passcode.map(str::to_string),
        secret: None,
        name: "Guest".into(),
        offer,
    }
}

/// Two browsers sending 440 Hz and 1 kHz join `call_id` (with `passcode`,
/// after a wrong one is refused and makes no leg); what each reports once it
/// has listened, after checking that each heard the other's tone and not its
/// own and decoded more than 30 video frames.
fn two_browsers_talk(
    script: &Path,
    dir: &Path,
    bridge: &CallBridge,
    call_id: &str,
    passcode: Option<&str>,
) -> [serde_json::Value; 2] {
    let (a_wav, b_wav) = (dir.join("a.wav"), dir.join("b.wav"));
    peers::write_tone(&a_wav, 440.0, 30, 0.5);
    peers::write_tone(&b_wav, 1000.0, 30, 0.5);
    let mut a = BrowserPeer::start(script, &a_wav, 8, &[440, 1000]);
    let mut b = BrowserPeer::start(script, &b_wav, 8, &[440, 1000]);
    let (offer_a, offer_b) = (a.offer(), b.offer());
    if passcode.is_some() {
        assert_eq!(bridge.join_web(join(call_id, Some("000"), offer_a.clone())), Err(WebJoinError::WrongPasscode));
        assert!(bridge.call_legs().is_empty(), "a wrong passcode made a leg");
    }
    let joined_a = bridge.join_web(join(call_id, passcode, offer_a)).expect("a joins");
    let joined_b =
        bridge.join_web(join(call_id, passcode.map(|p| format!(" {p} ")).as_deref(), offer_b)).expect("b joins");
    assert_eq!(joined_a.call, joined_b.call);
    a.answer(Ok(joined_a.answer));
    b.answer(Ok(joined_b.answer));
    let (ra, rb) = (a.next_json(), b.next_json());
    eprintln!("a: {ra}\nb: {rb}");
    for (name, r, own, other) in [("a", &ra, "440", "1000"), ("b", &rb, "1000", "440")] {
        assert_eq!(r["state"], "connected", "{name}: {r}");
        let (heard, itself) = (r["levels"][other].as_f64().unwrap(), r["levels"][own].as_f64().unwrap());
        assert!(heard > -60.0 && heard > itself + 20.0, "{name} hears the other at {heard} dB, itself at {itself} dB");
        let frames = r["stats"]["inbound-rtp:video"]["framesDecoded"].as_u64().unwrap_or(0);
        assert!(frames > 30, "{name} decoded {frames} video frames: {r}");
    }
    [ra, rb]
}

/// Two browsers join a space with a passcode: each hears the other's tone
/// and not its own, each decodes the composed video, and DTLS keyed SRTP
/// with the profile Chromium chose. A wrong passcode gets no leg.
#[test]
fn two_browsers_hear_and_see_each_other_through_the_bridge() {
    let Some(script) = peer_script() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    create(&*store, Kind::CoSpace, "name=Web%20room&uri=webroom&callId=4242&passcode=987");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let bridge = start_bridge(store, &runtime);
    let reports = two_browsers_talk(&script, dir.path(), &bridge, "4242", Some("987"));
    for r in &reports {
        assert_eq!(r["stats"]["inbound-rtp:video"]["codec"], "video/H264", "{r}");
    }
    let legs = bridge.call_legs();
    assert_eq!(legs.len(), 2);
    assert!(legs.iter().all(|l| l.encrypted_media), "{legs:?}");
}

/// CMS's `compatibilityProfiles` `chromeWebRtcVideoCodec=avoidH264`, named
/// by `system/profiles`: Chromium offers VP8 and H.264, is answered VP8,
/// and both ways carry it: each browser decodes the composed view in VP8
/// and sends its camera in VP8, which the bridge decodes (its call leg's
/// `rxVideo` is `vp8` with the camera's picture size).
#[test]
fn browsers_told_to_avoid_h264_send_and_receive_vp8() {
    let Some(script) = peer_script() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    create(&*store, Kind::CoSpace, "name=VP8%20room&uri=vp8room&callId=4343");
    let profile = create(&*store, Kind::CompatibilityProfile, "chromeWebRtcVideoCodec=avoidH264");
    let form = Form::parse(format!("compatibilityProfile={profile}").as_bytes()).unwrap();
    let changes = validate_changes(spec(Kind::SystemProfiles).fields, &form, false).unwrap();
    store.update(Kind::SystemProfiles, confero_store::singleton_id(Kind::SystemProfiles), &changes).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let bridge = start_bridge(store, &runtime);
    let reports = two_browsers_talk(&script, dir.path(), &bridge, "4343", None);
    for r in &reports {
        assert_eq!(r["stats"]["inbound-rtp:video"]["codec"], "video/VP8", "{r}");
        assert_eq!(r["stats"]["outbound-rtp:video"]["codec"], "video/VP8", "{r}");
        // The view shows the other's camera, Chromium's fake one, which is
        // green: its VP8 was decoded, composed and encoded again in VP8.
        let rgb: Vec<i64> = (0..3).map(|i| r["colour"][i].as_i64().unwrap_or(0)).collect();
        assert!(rgb[1] > rgb[0] + 60 && rgb[1] > rgb[2] + 60, "the view's mean colour {rgb:?}: {r}");
    }
    let legs = bridge.call_legs();
    assert_eq!(legs.len(), 2, "{legs:?}");
    for leg in &legs {
        let (rx, tx) = (leg.rx_video.as_ref().expect("rxVideo"), leg.tx_video.as_ref().expect("txVideo"));
        assert_eq!((rx.codec.as_str(), tx.codec.as_str()), ("vp8", "vp8"), "{leg:?}");
        assert!(rx.width.unwrap_or(0) >= 160, "the bridge decoded the browser's VP8: {leg:?}");
    }
}
