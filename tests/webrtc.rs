//! Browsers against the call bridge's WebRTC legs, without the web bridge in
//! between: headless Chromium (tests/peers/browser/webrtc-peer.cjs) makes a
//! real offer, the bridge library answers it through `join_web` exactly as
//! it does for a C2W request, and the media runs over loopback: ICE-lite
//! checks, DTLS-SRTP with Chromium's own certificate and profile choice,
//! BUNDLE, Opus through the mixer and H.264 through the compositor.

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

/// Where playwright-core is installed (scripts/lib/setup.sh puts it there).
fn peer_script() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/browser");
    let installed = dir.join("node_modules/playwright-core").exists() || std::env::var_os("PLAYWRIGHT_CORE").is_some();
    (installed && Path::new("/usr/bin/chromium").exists()).then(|| dir.join("webrtc-peer.cjs"))
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

fn space(store: &dyn Store, body: &str) {
    let form = Form::parse(body.as_bytes()).unwrap();
    let changes = validate_changes(spec(Kind::CoSpace).fields, &form, true).unwrap();
    store.create(Kind::CoSpace, None, &changes).unwrap();
}

/// Two browsers join a space with a passcode: each hears the other's tone
/// and not its own, each decodes the composed video, and DTLS keyed SRTP
/// with the profile Chromium chose. A wrong passcode gets no leg.
#[test]
fn two_browsers_hear_and_see_each_other_through_the_bridge() {
    let Some(script) = peer_script() else {
        // scripts/test installs them; only a bare `cargo test` may lack them.
        assert!(std::env::var_os("CI").is_none(), "playwright-core or /usr/bin/chromium missing in CI");
        eprintln!("skipped: playwright-core or /usr/bin/chromium missing (scripts/lib/setup.sh installs them)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    space(&*store, "name=Web%20room&uri=webroom&callId=4242&passcode=987");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = runtime.enter();
    let (media_tx, media_events) = tokio::sync::mpsc::unbounded_channel();
    let sink: confero_media::runtime::EventSink = Arc::new(move |e| drop(media_tx.send(e)));
    let config = confero_media::runtime::RuntimeConfig { workers: 1, video_threads: 1, ..Default::default() };
    let media = Arc::new(confero_media::runtime::MediaRuntime::start(config, sink).unwrap());
    let cdr = CdrSender::new(store.clone(), Arc::new(Alarms::default()), uuid::Uuid::new_v4());
    let core = Bridge::new(
        store.clone(),
        media.clone(),
        BridgeConfig { video: true, sip_local: None, branding: Default::default() },
        Box::new(rand::rngs::StdRng::seed_from_u64(3)),
    );
    let (sip_commands, _sip_queue) = tokio::sync::mpsc::unbounded_channel();
    let (_sip_events_tx, sip_events) = tokio::sync::mpsc::unbounded_channel();
    let bridge = CallBridge::new(core, cdr, sip_commands);
    runtime.spawn(bridge.clone().run(sip_events, media_events, confero::sip::locate::Locator::new(None)));

    let (a_wav, b_wav) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    peers::write_tone(&a_wav, 440.0, 30, 0.5);
    peers::write_tone(&b_wav, 1000.0, 30, 0.5);
    let mut a = BrowserPeer::start(&script, &a_wav, 8, &[440, 1000]);
    let mut b = BrowserPeer::start(&script, &b_wav, 8, &[440, 1000]);
    let join = |offer: String, passcode: &str| WebJoin {
        call_id: "4242".into(),
        passcode: Some(passcode.into()),
        secret: None,
        name: "Guest".into(),
        offer,
    };
    let (offer_a, offer_b) = (a.offer(), b.offer());
    assert_eq!(bridge.join_web(join(offer_a.clone(), "000")), Err(WebJoinError::WrongPasscode));
    assert!(bridge.call_legs().is_empty(), "a wrong passcode made a leg");
    let joined_a = bridge.join_web(join(offer_a, "987")).expect("a joins");
    let joined_b = bridge.join_web(join(offer_b, " 987 ")).expect("b joins");
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
    let legs = bridge.call_legs();
    assert_eq!(legs.len(), 2);
    assert!(legs.iter().all(|l| l.encrypted_media), "{legs:?}");
}
