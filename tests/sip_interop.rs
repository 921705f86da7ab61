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
    late_offer("late-offer.xml");
}

/// The same with 100rel (RFC 3262 §5): our offer in a reliable 183, sipp's
/// answer in its PRACK, then the 200 and an ACK without SDP.
#[test]
fn an_offerless_invite_with_100rel_gets_our_offer_in_a_183_and_the_prack_s_answer_connects_media() {
    late_offer("late-offer-100rel.xml");
}

fn late_offer(scenario: &str) {
    let sip = free_pair();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{sip}");
    let c = Confero::start_in(dir.path(), &[("CONFERO_SIP_LISTEN", listen.as_str())]);
    c.create("/api/v1/coSpaces", "name=Trunk&uri=trunk");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sipp").join(scenario);
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

/// A CA and a certificate for `names` signed by it: (CA PEM, certificate +
/// key PEM, as baresip's `sip_certificate` takes them).
fn ca_and_leaf(names: &[&str]) -> (String, String) {
    let (ca, cert, key) = common::ca_and_leaf(names);
    (ca, format!("{cert}{key}"))
}

/// Starts a call in a new space and dials `remote` into it: the leg's path.
fn dial_out(c: &Confero, remote: &str) -> String {
    let uri = format!("{}-{}", remote.replace(['@', '.'], "-"), common::ids(&c.get("/api/v1/coSpaces").body).len());
    let space = c.create("/api/v1/coSpaces", &format!("name=Out&uri={uri}"));
    let call = c.create("/api/v1/calls", &format!("coSpace={space}"));
    let leg = c.post(&format!("/api/v1/calls/{call}/callLegs"), &format!("remoteParty={remote}"));
    assert_eq!(leg.status, 200, "{}", leg.body);
    leg.location.expect("the leg's Location")
}

/// `sipControlEncryption=encrypted`: the INVITE goes over TLS to a baresip's
/// TLS port (where nothing else listens), its certificate checked against
/// `CONFERO_SIP_TLS_TRUST` for the proxy's name; the same certificate under
/// a name it does not carry is refused and the leg ends.
#[test]
fn an_encrypted_rule_reaches_a_baresip_over_tls_and_checks_its_certificate() {
    use peers::{Baresip, BaresipSetup};
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_and_leaf(&["127.0.0.1"]);
    std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
    std::fs::write(dir.path().join("desk.pem"), leaf).unwrap();
    let desk = BaresipSetup::opus("desk", 700.0, 24_100);
    let extra = format!("sip_certificate {}\n", dir.path().join("desk.pem").display());
    let answerer = Baresip::answer_with_config(dir.path(), &desk, &extra, 40);
    answerer.wait_ready();
    let sip = free_pair();
    let listen = format!("127.0.0.1:{sip}");
    let trust = dir.path().join("ca.pem").display().to_string();
    let c = Confero::start_in(dir.path(), &[("CONFERO_SIP_LISTEN", &listen), ("CONFERO_SIP_TLS_TRUST", &trust)]);
    let tls_port = desk.sip_port + 1;
    c.create(
        "/api/v1/outboundDialPlanRules",
        &format!("domain=tls.example.test&sipProxy=127.0.0.1:{tls_port}&sipControlEncryption=encrypted"),
    );
    c.create(
        "/api/v1/outboundDialPlanRules",
        &format!("domain=wrong.example.test&sipProxy=localhost:{tls_port}&sipControlEncryption=encrypted"),
    );
    // `localhost` is not in the certificate: the handshake fails, no call.
    let refused = dial_out(&c, "desk@wrong.example.test");
    assert!(common::eventually(|| c.get(&refused).status == 404), "{}", c.get(&refused).body);
    let log = c.log_text();
    assert!(log.contains("TLS with localhost") && log.contains("certificate"), "{log}");

    let leg = dial_out(&c, "desk@tls.example.test");
    assert!(
        common::eventually(|| c.get(&leg).body.contains("<state>connected</state>")),
        "{}\n{}\n{}",
        c.get(&leg).body,
        answerer.log(),
        c.log_text()
    );
    // Nor is the connection verified for 127.0.0.1 lent to the other name.
    let refused = dial_out(&c, "desk@wrong.example.test");
    assert!(common::eventually(|| c.get(&refused).status == 404), "{}", c.get(&refused).body);
    assert!(c.log_text().contains("the connection is verified for 127.0.0.1"), "{}", c.log_text());
    assert!(c.get(&leg).body.contains("<state>connected</state>"), "the first call stays up");
    assert_eq!(c.delete(&leg).status, 200);
}

/// RFC 3263 through a DNS server of our own (dnsmasq on loopback): with no
/// rule, `srv.example.test` has no NAPTR, so `_sips._tcp`, `_sip._tcp` and
/// `_sip._udp` are asked; `_sip._tcp` names a server that refuses (priority
/// 10) and the baresip's TCP port (priority 20): the INVITE falls over to the
/// second at once and the call connects.
#[test]
fn srv_records_locate_the_target_and_the_second_answers_when_the_first_does_not() {
    use peers::{Baresip, BaresipSetup};
    let dir = tempfile::tempdir().unwrap();
    let desk = BaresipSetup::opus("desk", 700.0, 24_140);
    let answerer = Baresip::answer(dir.path(), &desk, 40);
    answerer.wait_ready();
    let dead = free_pair(); // nothing listens there
    let dns_port = free_pair();
    let mut dnsmasq = Command::new("/usr/sbin/dnsmasq")
        .args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file="])
        .args(["--listen-address=127.0.0.1", "--bind-interfaces", &format!("--port={dns_port}")])
        .arg(format!("--srv-host=_sip._tcp.srv.example.test,dead.example.test,{dead},10,0"))
        .arg(format!("--srv-host=_sip._tcp.srv.example.test,live.example.test,{},20,0", desk.sip_port))
        .args(["--host-record=dead.example.test,127.0.0.1", "--host-record=live.example.test,127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (apt-get install dnsmasq-base)");
    let sip = free_pair();
    let listen = format!("127.0.0.1:{sip}");
    let server = format!("127.0.0.1:{dns_port}");
    let c = Confero::start_in(dir.path(), &[("CONFERO_SIP_LISTEN", &listen), ("CONFERO_DNS_SERVER", &server)]);
    let leg = dial_out(&c, "desk@srv.example.test");
    let connected = common::eventually(|| c.get(&leg).body.contains("<state>connected</state>"));
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    assert!(connected, "{}\n{}\n{}", c.get(&leg).body, answerer.log(), c.log_text());
    let log = c.log_text();
    assert!(log.contains(&format!("cannot reach 127.0.0.1:{dead} over Tcp")), "the first record was tried: {log}");
}

/// A call whose call profile's `participantLimit` is reached turns a caller
/// away on the wire with 486 Busy Here (sipp expects exactly that), and no
/// leg or call is left behind. (Limits of more than one, and the tenant's,
/// are tested in virtual time in src/bridge/tests.)
#[test]
fn a_full_call_answers_486() {
    let sip = free_pair();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{sip}");
    let c = Confero::start_in(dir.path(), &[("CONFERO_SIP_LISTEN", listen.as_str())]);
    let full = c.create("/api/v1/callProfiles", "participantLimit=0");
    c.create("/api/v1/coSpaces", &format!("name=Closed&uri=closed&callProfile={full}"));
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sipp/call-full.xml");
    let sipp_port = free_pair();
    let status = Command::new("sipp")
        .args(["-sf", scenario.to_str().unwrap(), "-s", "closed", "-m", "1", "-i", "127.0.0.1"])
        .args(["-p", &sipp_port.to_string(), "-timeout", "20", "-nostdin"])
        .arg(format!("127.0.0.1:{sip}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp");
    assert!(status.success(), "sipp did not get its 486\n{}", c.log_text());
    assert_eq!(common::total(&c.get("/api/v1/calls").body), 0, "no call left behind");
}
