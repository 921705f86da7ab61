//! CDRs reach a real HTTP receiver; while it is down they are kept, the
//! `cdrConnectionFailure` alarm is raised, and nothing is lost when it returns.

mod common;
mod peers;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A minimal HTTP/1.1 receiver that stores each POST body.
fn receiver(listener: TcpListener, bodies: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    bodies.lock().unwrap().push(String::from_utf8(body).unwrap());
                    out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
                }
            });
        }
    });
}

/// Confero with SIP on a known port, reporting CDRs to a receiver of ours,
/// and a space made from `space` (a form body): the bridge, its SIP port, its
/// data directory and what the receiver has been sent.
fn sip_bridge_reporting_cdrs(space: &str) -> (Confero, u16, tempfile::TempDir, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    receiver(listener, bodies.clone());
    let sip = peers::free_pair();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{sip}");
    let c = Confero::start_in(dir.path(), &[("CONFERO_SIP_LISTEN", listen.as_str())]);
    c.create("/api/v1/system/cdrReceivers", &format!("uri=http://127.0.0.1:{port}/cdr"));
    c.create("/api/v1/coSpaces", space);
    (c, sip, dir, bodies)
}

#[test]
fn cdrs_are_buffered_while_the_receiver_is_down_and_delivered_after() {
    let c = Confero::start();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    c.create("/api/v1/system/cdrReceivers", &format!("uri=http://127.0.0.1:{port}/cdr"));
    let space = c.create("/api/v1/coSpaces", "name=CDR Room&uri=cdr&cdrTag=billing-7");
    let call = c.create("/api/v1/calls", &format!("coSpace={space}"));
    assert_eq!(c.delete(&format!("/api/v1/calls/{call}")).status, 200);

    assert!(eventually(|| c.get("/api/v1/system/alarms").body.contains("<type>cdrConnectionFailure</type>")));

    let bodies = Arc::new(Mutex::new(Vec::new()));
    receiver(TcpListener::bind(("127.0.0.1", port)).unwrap(), bodies.clone());
    assert!(eventually(|| bodies.lock().unwrap().iter().any(|b| b.contains("type=\"callEnd\""))));
    assert!(eventually(|| total(&c.get("/api/v1/system/alarms").body) == 0));

    let all = bodies.lock().unwrap().join("");
    assert!(all.starts_with("<?xml version=\"1.0\"?><records session=\""), "{all}");
    let start = all.find("type=\"callStart\"").expect("callStart");
    let end = all.find("type=\"callEnd\"").expect("callEnd");
    assert!(start < end);
    assert!(
        all.contains(&format!(
            "<call id=\"{call}\"><name>CDR Room</name><callType>coSpace</callType><coSpace>{space}</coSpace>"
        )),
        "{all}"
    );
    assert!(all.contains("<cdrTag>billing-7</cdrTag>"));
    assert!(all.contains("recordIndex=\"1\""));
    assert_eq!(all.matches("type=\"callStart\"").count(), 1, "no record twice: {all}");
}

/// A SIP call's life in CDRs: a caller dials into a space and hangs up; the
/// receiver gets the call's start, the leg's start (incoming, with the
/// caller as remote party), its update to connected, its end with reason
/// `remoteTeardown`, and the call's end (a dialled-in call ends with its
/// last leg), in that order.
#[test]
fn a_sip_call_in_and_out_is_told_in_cdrs() {
    let (c, sip, dir, bodies) = sip_bridge_reporting_cdrs("name=SIP Room&uri=siproom");
    let setup = peers::BaresipSetup::opus("caller", 440.0, 22_900);
    let mut phone = peers::Baresip::dial(dir.path(), &setup, &format!("sip:siproom@127.0.0.1:{sip}"), 3);
    phone.wait(std::time::Duration::from_secs(15));
    assert!(eventually(|| bodies.lock().unwrap().iter().any(|b| b.contains("type=\"callEnd\""))), "{}", c.log_text());
    let all = bodies.lock().unwrap().join("");
    let at = |what: &str| all.find(&format!("type=\"{what}\"")).unwrap_or_else(|| panic!("no {what}: {all}"));
    let order = ["callStart", "callLegStart", "callLegUpdate", "callLegEnd", "callEnd"].map(at);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{all}");
    assert!(all.contains("<remoteParty>caller@127.0.0.1:"), "{all}");
    assert!(all.contains("<direction>incoming</direction>"), "{all}");
    assert!(all.contains("<state>connected</state>"), "{all}");
    assert!(all.contains("<reason>remoteTeardown</reason>"), "{all}");
    assert!(all.contains("<name>SIP Room</name>"), "{all}");
}

/// SIGTERM with three live legs: each caller gets a BYE, and the CDR
/// receiver has every leg's callLegEnd and the call's callEnd by the time the
/// process has exited (0).
#[test]
fn sigterm_hangs_up_every_leg_and_delivers_the_last_cdrs_before_exiting() {
    let (mut c, sip, dir, bodies) = sip_bridge_reporting_cdrs("name=Closing&uri=closing");
    let uri = format!("sip:closing@127.0.0.1:{sip}");
    let setups = [("one", 23_400), ("two", 23_420), ("three", 23_440)]
        .map(|(name, rtp)| peers::BaresipSetup::opus(name, 440.0, rtp));
    let phones: Vec<peers::Baresip> = setups.iter().map(|s| peers::Baresip::dial(dir.path(), s, &uri, 60)).collect();
    assert!(eventually(|| total(&c.get("/api/v1/callLegs").body) == 3), "{}", c.log_text());

    let status = c.terminate();
    assert!(status.success(), "exit status {status:?}");
    for phone in &phones {
        assert!(eventually(|| phone.log().contains("session closed")), "no BYE: {}", phone.log());
    }
    let all = bodies.lock().unwrap().join("");
    assert_eq!(all.matches("type=\"callLegEnd\"").count(), 3, "{all}");
    assert_eq!(all.matches("<reason>localTeardown</reason>").count(), 3, "{all}");
    assert_eq!(all.matches("type=\"callEnd\"").count(), 1, "{all}");
}
