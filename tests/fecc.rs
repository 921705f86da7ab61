//! Far-end camera control against the real binary: raw SIP phones offer an
//! H.224 stream (RFC 4573) beside their audio, both SDES-SRTP, and read what
//! Confero sends on it byte by byte — the octets are written out here from
//! the public implementations' layouts (OPAL, h323plus, Wireshark's
//! dissector), not made by Confero's own encoder.

mod common;
mod peers;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{element, Confero};
use confero_media::rtp::{RtpHeader, RtpPacket};
use confero_media::srtp::{SrtpContext, SrtpProfile};
use confero_sdp::crypto::CryptoAttribute;
use confero_sdp::CryptoSuite;
use peers::{free_pair, RawPhone};

/// H.224 frame headers: Q.922 address of DLCI 7, UI, broadcast addresses,
/// the client (0 CME, 1 H.281), one whole segment.
const CME: [u8; 9] = [0x00, 0x71, 0x03, 0, 0, 0, 0, 0x00, 0xC0];
const H281: [u8; 9] = [0x00, 0x71, 0x03, 0, 0, 0, 0, 0x01, 0xC0];

fn frame(header: [u8; 9], data: &[u8]) -> Vec<u8> {
    let mut f = header.to_vec();
    f.extend_from_slice(data);
    f
}

/// A raw SIP phone in a space with PCMU audio and an H.224 stream, both
/// SRTP: its H.224 socket and keys.
struct FeccPhone {
    _phone: RawPhone,
    _audio: UdpSocket,
    socket: UdpSocket,
    /// Confero's H.224 address.
    to: std::net::SocketAddr,
    srtp_in: SrtpContext,
    srtp_out: SrtpContext,
    seq: u16,
}

impl FeccPhone {
    fn dial(c: &Confero, sip: u16, call_id: &str, user: &str) -> FeccPhone {
        let phone = RawPhone::new(sip);
        let audio = UdpSocket::bind("127.0.0.1:0").unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut rng = rand::thread_rng();
        let audio_key = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, &mut rng);
        let fecc_key = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, &mut rng);
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:{}\r\n\
             m=application {} RTP/SAVP 107\r\na=rtpmap:107 H224/4800\r\na=crypto:{}\r\na=sendrecv\r\n",
            audio.local_addr().unwrap().port(),
            audio_key.to_value(),
            socket.local_addr().unwrap().port(),
            fecc_key.to_value(),
        );
        phone.invite_with(call_id, user, &sdp);
        let ok = phone.expect("200", Duration::from_secs(5)).unwrap_or_else(|| panic!("no 200:\n{}", c.log_text()));
        phone.ack(&ok, call_id, user);
        let answer = &ok[ok.find("\r\n\r\n").unwrap() + 4..];
        let section = &answer[answer.find("m=application").unwrap_or_else(|| panic!("no H.224 in {answer}"))..];
        let port: u16 = section["m=application ".len()..].split(' ').next().unwrap().parse().unwrap();
        assert_ne!(port, 0, "H.224 refused: {answer}");
        assert!(section.contains("a=rtpmap:107 H224/4800"), "{answer}");
        let theirs = section
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:").and_then(CryptoAttribute::parse))
            .unwrap_or_else(|| panic!("no keys for H.224: {answer}"));
        let profile = SrtpProfile::AesCm128HmacSha1_80;
        FeccPhone {
            _phone: phone,
            _audio: audio,
            socket,
            to: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            srtp_in: SrtpContext::new(profile, &theirs.key, &theirs.salt).unwrap(),
            srtp_out: SrtpContext::new(profile, &fecc_key.key, &fecc_key.salt).unwrap(),
            seq: 1,
        }
    }

    /// The H.224 frames (RTP payloads) it receives within `limit`, checking
    /// each packet's payload type, marker and growing timestamp.
    fn frames(&mut self, limit: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        let mut frames = Vec::new();
        let mut last_timestamp = None;
        while Instant::now() < deadline {
            let Ok(n) = self.socket.recv(&mut buf) else { continue };
            let mut datagram = buf[..n].to_vec();
            self.srtp_in.unprotect_rtp(&mut datagram).expect("SRTP from Confero authenticates");
            let packet = RtpPacket::parse(&datagram).unwrap();
            assert_eq!(packet.payload_type(), 107);
            assert!(packet.marker(), "every H.224 packet carries the marker");
            if let Some(last) = last_timestamp {
                assert!(packet.timestamp() > last, "timestamps grow");
            }
            last_timestamp = Some(packet.timestamp());
            frames.push(packet.payload().to_vec());
        }
        frames
    }

    /// The H.281 frames among them (a late repeat of the CME announcement
    /// left out).
    fn camera(&mut self, limit: Duration) -> Vec<Vec<u8>> {
        self.frames(limit).into_iter().filter(|f| f.get(7) == Some(&0x01)).collect()
    }

    /// Sends one H.224 frame.
    fn send(&mut self, frame: &[u8]) {
        let header = RtpHeader {
            marker: true,
            payload_type: 107,
            sequence_number: self.seq,
            timestamp: u32::from(self.seq) * 480,
            ssrc: 0x0fec_c001,
            ..RtpHeader::default()
        };
        self.seq += 1;
        let mut datagram = Vec::new();
        header.write_packet(frame, &mut datagram).unwrap();
        self.srtp_out.protect_rtp(&mut datagram).unwrap();
        self.socket.send_to(&datagram, self.to).unwrap();
    }
}

/// Confero with SIP on a port of its own, and a space `studio`.
fn bridge(dir: &std::path::Path) -> (Confero, u16) {
    let sip = free_pair();
    let listen = format!("127.0.0.1:{sip}");
    let c = Confero::start_in(dir, &[("CONFERO_SIP_LISTEN", listen.as_str())]);
    c.create("/api/v1/coSpaces", "name=Studio&uri=studio");
    (c, sip)
}

fn leg_ids(c: &Confero) -> Vec<String> {
    let body = c.get("/api/v1/callLegs").body;
    body.split("<callLeg id=\"").skip(1).map(|s| s[..36].to_string()).collect()
}

fn available(c: &Confero, leg: &str) -> bool {
    c.get(&format!("/api/v1/callLegs/{leg}")).body.contains("<cameraControlAvailable>true</cameraControlAvailable>")
}

/// Two SRTP phones with H.224 in one space: Confero announces its H.281
/// client to each (client list, extra capabilities, the client list
/// command); a phone's own client list makes its leg and participant
/// `cameraControlAvailable`; `PUT cameraControl` sends START then STOP with
/// the asked moves; a phone's own START is relayed to the other's camera;
/// bad moves, missing legs and a camera not yet heard are refused as CMS does.
#[test]
fn cameras_are_announced_moved_by_the_api_and_by_the_other_phone() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = bridge(dir.path());

    let mut a = FeccPhone::dial(&c, sip, "fecc-a", "studio");
    // Confero's announcement, as OPAL and h323plus make theirs, and a
    // request for our list.
    let got = a.frames(Duration::from_millis(1500));
    for expected in [
        frame(CME, &[0x01, 0x00, 0x01, 0x81]),
        frame(CME, &[0x02, 0x00, 0x81, 0x00, 0x14, 0xF0]),
        frame(CME, &[0x01, 0xFF]),
    ] {
        assert!(got.contains(&expected), "{expected:02x?} not in {got:02x?}\n{}", c.log_text());
    }
    let legs = leg_ids(&c);
    assert_eq!(legs.len(), 1);
    let leg_a = legs[0].clone();
    let path = format!("/api/v1/callLegs/{leg_a}/cameraControl");

    // Not heard yet: the camera cannot be controlled.
    assert!(!available(&c, &leg_a));
    let refused = c.put(&path, "pan=left");
    // Our one status for invalidOperation (tests/client_habits.rs).
    assert_eq!(refused.status, 405, "{}", refused.body);
    assert!(refused.body.contains("invalidOperation"), "{}", refused.body);

    // Its client list names H.281.
    a.send(&frame(CME, &[0x01, 0x00, 0x01, 0x81]));
    assert!(common::eventually(|| available(&c, &leg_a)), "{}", c.log_text());
    let participants = c.get("/api/v1/participants").body;
    let participant = participants.split("<participant id=\"").nth(1).map(|s| &s[..36]).unwrap();
    let shown = c.get(&format!("/api/v1/participants/{participant}")).body;
    assert!(shown.contains("<cameraControlAvailable>true</cameraControlAvailable>"), "{shown}");

    // The API pans left and zooms in: START (timeout 0, 800 ms), then STOP with the same moves.
    a.frames(Duration::from_millis(100));
    let moved = c.put(&path, "pan=left&zoom=in");
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.location.as_deref(), Some(format!("/api/v1/callLegs/{leg_a}").as_str()));
    let got = a.camera(Duration::from_millis(1200));
    assert_eq!(got, [frame(H281, &[0x01, 0x8C, 0x00]), frame(H281, &[0x03, 0x8C])], "{}", c.log_text());
    let got = {
        c.put(&path, "tilt=up&focus=out");
        a.camera(Duration::from_millis(1200))
    };
    assert_eq!(got, [frame(H281, &[0x01, 0x32, 0x00]), frame(H281, &[0x03, 0x32])]);

    // What CMS refuses.
    let bad = c.put(&path, "pan=sideways");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("parameterError") && bad.body.contains("pan"), "{}", bad.body);
    let missing = c.put("/api/v1/callLegs/00000000-0000-4000-8000-000000000000/cameraControl", "pan=left");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("callLegDoesNotExist"), "{}", missing.body);

    // A second phone: its START is relayed to the first camera, the only
    // other one, and the first's STOP to it.
    let mut b = FeccPhone::dial(&c, sip, "fecc-b", "studio");
    b.frames(Duration::from_millis(300));
    b.send(&frame(CME, &[0x01, 0x00, 0x01, 0x81]));
    assert!(common::eventually(|| leg_ids(&c).iter().all(|l| available(&c, l))), "{}", c.log_text());
    a.frames(Duration::from_millis(100));
    b.send(&frame(H281, &[0x01, 0xC0, 0x00]));
    b.send(&frame(H281, &[0x02, 0xC0]));
    let got = a.camera(Duration::from_millis(800));
    assert_eq!(got, [frame(H281, &[0x01, 0xC0, 0x00]), frame(H281, &[0x02, 0xC0])], "{}", c.log_text());
    a.send(&frame(H281, &[0x03, 0x20]));
    assert_eq!(b.camera(Duration::from_millis(800)), [frame(H281, &[0x03, 0x20])]);

    // controlRemoteCameraAllowed=false on B: its controls move nothing.
    let leg_b = leg_ids(&c).into_iter().find(|l| *l != leg_a).unwrap();
    assert_eq!(c.put(&format!("/api/v1/callLegs/{leg_b}"), "controlRemoteCameraAllowed=false").status, 200);
    let config = c.get(&format!("/api/v1/callLegs/{leg_b}")).body;
    assert_eq!(element(&config, "controlRemoteCameraAllowed"), Some("false"), "{config}");
    b.send(&frame(H281, &[0x01, 0x80, 0x00]));
    assert!(a.camera(Duration::from_millis(600)).is_empty());
}

/// `compatibilityProfiles` `sipH224=false` on `system/profiles`: the H.224
/// stream is refused with port 0 and the call goes on with its audio.
#[test]
fn sip_h224_false_refuses_the_stream_and_keeps_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = bridge(dir.path());
    let profile = c.create("/api/v1/compatibilityProfiles", "sipH224=false");
    let shown = c.get(&format!("/api/v1/compatibilityProfiles/{profile}")).body;
    assert_eq!(element(&shown, "sipH224"), Some("false"), "{shown}");
    assert_eq!(c.put("/api/v1/system/profiles", &format!("compatibilityProfile={profile}")).status, 200);

    let phone = RawPhone::new(sip);
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
               m=application 40002 RTP/AVP 107\r\na=rtpmap:107 H224/4800\r\n";
    phone.invite_with("no-h224", "studio", sdp);
    let ok = phone.expect("200", Duration::from_secs(5)).unwrap_or_else(|| panic!("no 200:\n{}", c.log_text()));
    phone.ack(&ok, "no-h224", "studio");
    assert!(ok.contains("m=application 0 RTP/AVP 107"), "{ok}");
    let leg = leg_ids(&c).pop().unwrap();
    let refused = c.put(&format!("/api/v1/callLegs/{leg}/cameraControl"), "pan=right");
    assert!(refused.body.contains("invalidOperation"), "{}", refused.body);
}
