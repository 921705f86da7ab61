//! SIP as call controls and room systems speak it (issue #17), against the
//! real binary on loopback: sipp as a call control that sends its INVITE
//! without an offer.

mod common;
mod peers;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Confero;
use peers::free_pair;

/// A late offer, as Unified CM and SIP trunks send it: sipp's INVITE has no
/// SDP, the bridge puts its offer in the 200, sipp's PCMU answer comes in
/// the ACK, and media flows both ways (sipp echoes what it gets): the leg
/// shows G.711 received and sent while the call is up, and the call ends
/// with sipp's BYE.
#[test]
fn an_offerless_invite_gets_our_offer_and_the_ack_s_answer_connects_media() {
    let sip = free_pair();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{sip}");
    let c = Confero::start_in(dir.path(), &[("CONFERO_SIP_LISTEN", listen.as_str())]);
    c.create("/api/v1/coSpaces", "name=Trunk&uri=trunk");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sipp/late-offer.xml");
    let (sipp_port, media_port) = (free_pair(), free_pair());
    let mut sipp = Command::new("sipp")
        .args(["-sf", scenario.to_str().unwrap(), "-s", "trunk", "-m", "1", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
        .args(["-p", &sipp_port.to_string(), "-mp", &media_port.to_string(), "-rtp_echo", "-timeout", "20", "-nostdin"])
        .arg(format!("127.0.0.1:{sip}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    // While the call is up: G.711 both ways on its leg.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let Some(leg) = common::ids(&c.get("/api/v1/callLegs").body).first().cloned() else { continue };
        seen = c.get(&format!("/api/v1/callLegs/{leg}")).body;
        let rx = common::element(&seen, "rxAudio").unwrap_or_default().to_string();
        let tx = common::element(&seen, "txAudio").unwrap_or_default().to_string();
        let rate = |s: &str| common::element(s, "bitRate").and_then(|b| b.parse::<u64>().ok()).unwrap_or(0);
        if rx.contains("g711u") && tx.contains("g711u") && rate(&rx) > 0 && rate(&tx) > 0 {
            break;
        }
    }
    let status = sipp.wait().expect("sipp ends");
    assert!(seen.contains("<rxAudio>") && seen.contains("g711u"), "the leg: {seen}\n{}", c.log_text());
    let rx = common::element(&seen, "rxAudio").unwrap_or_default();
    let bit_rate = common::element(rx, "bitRate").and_then(|b| b.parse::<u64>().ok()).unwrap_or(0);
    assert!(bit_rate > 0, "nothing received (sipp echoes what it gets): {seen}");
    assert!(
        status.success(),
        "sipp's scenario failed (its 200 had no PCMU offer, or no answer to its BYE)\n{}",
        c.log_text()
    );
    assert!(common::eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 0), "the BYE ended the leg");
}
