//! Video calls against the real binary: three baresip endpoints, each with
//! a camera of one solid colour (H.264 by libx264), dial one space over SIP
//! on loopback; what each one decodes from Confero is checked pane by pane
//! in its own PNG snapshots.

mod common;
mod peers;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{element, Confero};
use confero_media::rtcp::is_rtcp;
use confero_media::rtp::RtpPacket;
use confero_media::video::frame::{I420Frame, Rect, Yuv};
use confero_media::video::h264::H264Decoder;
use confero_media::video::h264_rtp::{Assembled, DepacketizerConfig, H264Depacketizer};
use confero_media::video::label::label_box;
use confero_media::video::layout::{Layout, LayoutTemplate, TemplateLayout, ViewLayout};
use confero_media::video::scale::fit_rect;
use peers::{free_pair, similar, Baresip, BaresipSetup, Picture, RawPhone};

/// Red, green and blue cameras.
const COLOURS: [u32; 3] = [0xC83228, 0x28B43C, 0x3C3CC8];
/// How far a decoded pane may be from what the sender shows itself: two
/// H.264 generations and a scale apart.
const TOLERANCE: u8 = 28;

struct Party {
    phone: Baresip,
    ctrl: u16,
    /// Its own camera, as it sees it (its `snapshot_send`).
    camera: [u8; 3],
}

impl Party {
    /// Starts baresip camera `setup` in colour `rgb` dialling `uri`, waits
    /// until the bridge has `legs` legs, and notes its camera's colour as it
    /// sees it itself.
    fn join(c: &Confero, dir: &Path, setup: &BaresipSetup, rgb: u32, uri: &str, legs: usize) -> Party {
        let phone = Baresip::dial_video(dir, setup, rgb, uri, 60);
        phone.wait_ready();
        assert!(
            common::eventually(|| common::total(&c.get("/api/v1/callLegs").body) == legs),
            "{} did not join: {}\n{}",
            setup.name,
            c.log_text(),
            phone.log()
        );
        Party::seen(phone, setup.ctrl_port, dir, setup.name)
    }

    /// A party of a running camera: its own camera's colour from its
    /// `snapshot_send`.
    fn seen(phone: Baresip, ctrl: u16, dir: &Path, name: &str) -> Party {
        let camera = phone
            .snapshot(ctrl, "send", &dir.join(format!("send-{name}.png")))
            .unwrap_or_else(|| panic!("no send snapshot from {name}:\n{}", phone.log()))
            .pixel(160, 90);
        Party { phone, ctrl, camera }
    }
}

/// A bridge listening for SIP on a free loopback port, and that port.
fn video_bridge(dir: &Path) -> (Confero, u16) {
    let sip = free_pair();
    let listen = format!("127.0.0.1:{sip}");
    (Confero::start_in(dir, &[("CONFERO_SIP_LISTEN", listen.as_str())]), sip)
}

/// The rectangles (x, y, width, height) of `layout`'s panes for `shown`
/// participants in a picture of this size.
fn panes(layout: impl Into<ViewLayout>, shown: usize, picture: &Picture) -> Vec<(u32, u32, u32, u32)> {
    let mut out: Vec<Rect> = Vec::new();
    layout.into().panes(shown, picture.width, picture.height, &mut out);
    out.into_iter().map(|r| (r.x, r.y, r.width, r.height)).collect()
}

/// Snapshots what party `n` receives until its panes show `expected`
/// (indices of parties, in pane order) or the time is up; the last picture
/// and whether it matched.
fn sees(parties: &[Party], n: usize, layout: impl Into<ViewLayout>, expected: &[usize], dir: &Path) -> (bool, String) {
    let layout = layout.into();
    let mut last = String::from("no snapshot");
    for attempt in 0..20 {
        let path = dir.join(format!("recv-{n}-{attempt}.png"));
        let Some(picture) = parties[n].phone.snapshot(parties[n].ctrl, "recv", &path) else { continue };
        let rects = panes(layout.clone(), expected.len(), &picture);
        let got: Vec<[u8; 3]> = rects.iter().map(|&r| picture.centre_of(r)).collect();
        let ok = got.iter().zip(expected).all(|(&g, &e)| similar(g, parties[e].camera, TOLERANCE));
        last = format!(
            "{}x{} panes {rects:?} got {got:?}, want {:?}",
            picture.width,
            picture.height,
            expected.iter().map(|&e| parties[e].camera).collect::<Vec<_>>()
        );
        if ok {
            return (true, last);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    (false, last)
}

#[test]
fn three_video_endpoints_see_the_composed_layout_and_a_chosen_layout_and_importance_change_it_live() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = video_bridge(dir.path());
    c.create("/api/v1/coSpaces", "name=Video&uri=video");
    let peers_dir = tempfile::tempdir().unwrap();
    let uri = format!("sip:video@127.0.0.1:{sip}");

    // One after another, so the speaker order (nobody speaks: silent audio)
    // is the join order.
    let mut parties = cameras(&c, peers_dir.path(), &uri, &COLOURS, "v", 23_000);
    // The cameras must be told apart for the test to mean anything.
    for a in 0..3 {
        for b in a + 1..3 {
            assert!(!similar(parties[a].camera, parties[b].camera, 2 * TOLERANCE), "cameras too alike");
        }
    }

    // `automatic` with two others shown is allEqual: each sees the other two,
    // in join order, never itself.
    for (n, others) in [(0, [1, 2]), (1, [0, 2]), (2, [0, 1])] {
        let (ok, detail) = sees(&parties, n, Layout::AllEqual, &others, peers_dir.path());
        assert!(ok, "party {n}: {detail}\nconfero log:\n{}", c.log_text());
    }

    // The legs show video both ways.
    let legs = c.get("/api/v1/callLegs").body;
    let first = common::ids(&legs)[0].clone();
    let leg = c.get(&format!("/api/v1/callLegs/{first}")).body;
    let rx_video = element(&leg, "rxVideo").unwrap_or_else(|| panic!("no rxVideo: {leg}"));
    let tx_video = element(&leg, "txVideo").unwrap_or_else(|| panic!("no txVideo: {leg}"));
    assert_eq!(element(rx_video, "codec"), Some("h264"), "{leg}");
    assert_eq!((element(rx_video, "width"), element(rx_video, "height")), (Some("320"), Some("180")), "{leg}");
    assert_eq!(element(tx_video, "codec"), Some("h264"), "{leg}");

    // Party 0 chooses speakerOnly: it sees the floor holder (itself, so the
    // next in order: party 1) alone; the others keep allEqual.
    let legs_xml = c.get("/api/v1/callLegs").body;
    let leg0 = leg_of(&c, &legs_xml, "v0");
    let answer = c.put(&format!("/api/v1/callLegs/{leg0}"), "chosenLayout=speakerOnly");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (ok, detail) = sees(&parties, 0, Layout::SpeakerOnly, &[1], peers_dir.path());
    assert!(ok, "after chosenLayout=speakerOnly: {detail}");
    let status = c.get(&format!("/api/v1/callLegs/{leg0}")).body;
    assert_eq!(element(&status, "layout"), Some("speakerOnly"), "{status}");
    let other = c.get(&format!("/api/v1/callLegs/{}", leg_of(&c, &legs_xml, "v1"))).body;
    assert_eq!(element(&other, "layout"), Some("automatic"), "{other}");
    let (ok, detail) = sees(&parties, 1, Layout::AllEqual, &[0, 2], peers_dir.path());
    assert!(ok, "party 1 after party 0 chose: {detail}");

    // Meeting Management marks party 2 important (`PUT /participants/<id>
    // importance=1`): it takes the first pane of everyone else's layout.
    let participant_of = |user: &str| participant_of(&c, user);
    let answer = c.put(&format!("/api/v1/participants/{}", participant_of("v2")), "importance=1");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (ok, detail) = sees(&parties, 1, Layout::AllEqual, &[2, 0], peers_dir.path());
    assert!(ok, "party 1 after party 2 was made important: {detail}");
    let (ok, detail) = sees(&parties, 0, Layout::SpeakerOnly, &[2], peers_dir.path());
    assert!(ok, "party 0 (speakerOnly) after party 2 was made important: {detail}");

    // Name labels (`participantLabels`, on by default): party 2's name lies
    // on its picture in party 1's view, bottom left, on a darkened box; with
    // `participantLabels=false` on party 1's leg the box is gone.
    let label_corner = |n: usize, attempt: &str| -> ([u8; 3], [u8; 3]) {
        let path = peers_dir.path().join(format!("label-{n}-{attempt}.png"));
        let picture = parties[n].phone.snapshot(parties[n].ctrl, "recv", &path).expect("a snapshot");
        let pane = panes(Layout::AllEqual, 2, &picture)[0];
        let local = Rect::new(0, 0, pane.2, pane.3);
        let (label, _) = label_box(fit_rect(320, 180, local), "v2@127.0.0.1").expect("room for a label");
        let corner = picture.pixel(pane.0 + label.x + 1, pane.1 + label.y + 1);
        (corner, parties[2].camera)
    };
    let brightness = |c: [u8; 3]| c.iter().map(|&v| u32::from(v)).sum::<u32>();
    let (corner, camera) = label_corner(1, "on");
    assert!(brightness(corner) * 10 < brightness(camera) * 6, "no label box: {corner:?} on camera {camera:?}");
    let answer = c.put(&format!("/api/v1/callLegs/{}", leg_of(&c, &legs_xml, "v1")), "participantLabels=false");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let gone = (0..20).any(|i| {
        std::thread::sleep(Duration::from_millis(300));
        let (corner, camera) = label_corner(1, &format!("off-{i}"));
        similar(corner, camera, TOLERANCE)
    });
    assert!(gone, "the label stayed after participantLabels=false");

    // Meeting Management's layout for selected participants
    // (`PUT /calls/<id>/participants/*`): party 0 alone goes back to
    // allEqual, where it sees the important party 2 first; party 1 keeps it.
    let call = element(&c.get(&format!("/api/v1/callLegs/{leg0}")).body, "call").expect("the leg's call").to_string();
    let answer = c.put(
        &format!("/api/v1/calls/{call}/participants/*"),
        &format!("layout=allEqual&mode=selected&filterIds={}", participant_of("v0")),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (ok, detail) = sees(&parties, 0, Layout::AllEqual, &[2, 1], peers_dir.path());
    assert!(ok, "party 0 after the bulk layout: {detail}");
    let status = c.get(&format!("/api/v1/callLegs/{}", leg_of(&c, &legs_xml, "v1"))).body;
    assert_eq!(element(&status, "layout"), Some("automatic"), "{status}");

    // A layout template (`layoutTemplates` and its JSON) named on party 1's
    // leg: it sees the important party 2 in a big left pane, party 0 in a
    // small one at the top right, and black below that.
    let template = c.create("/api/v1/layoutTemplates", "name=Side%20column");
    let json = r#"{"layouts": [{"minParticipants": 2, "maxParticipants": 4, "panes": [
        {"x": 0, "y": 0, "width": 70, "height": 100}, {"x": 70, "y": 0, "width": 30, "height": 50}]}]}"#;
    let answer = c.put(&format!("/api/v1/layoutTemplates/{template}/template"), json);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let leg1 = leg_of(&c, &legs_xml, "v1");
    let missing = c.put(&format!("/api/v1/callLegs/{leg1}"), &format!("layoutTemplate={}", uuid::Uuid::new_v4()));
    assert!(missing.body.contains("layoutTemplateDoesNotExist"), "{}", missing.body);
    let answer = c.put(&format!("/api/v1/callLegs/{leg1}"), &format!("layoutTemplate={template}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let side = TemplateLayout { min_shown: 2, max_shown: 4, panes: vec![[0, 0, 7000, 10_000], [7000, 0, 3000, 5000]] };
    let side = ViewLayout::Template(std::sync::Arc::new(LayoutTemplate::new(vec![side]).expect("drawable")));
    let (ok, detail) = sees(&parties, 1, side.clone(), &[2, 0], peers_dir.path());
    assert!(ok, "party 1 with the layout template: {detail}\nconfero log:\n{}", c.log_text());
    let path = peers_dir.path().join("template-below.png");
    let picture = parties[1].phone.snapshot(parties[1].ctrl, "recv", &path).expect("a snapshot");
    let below = picture.pixel(picture.width * 85 / 100, picture.height * 3 / 4);
    assert!(below.iter().all(|&v| v < 40), "below the small pane is background: {below:?}");
    // Cleared, the leg's layout is back.
    let answer = c.put(&format!("/api/v1/callLegs/{leg1}"), "layoutTemplate=");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (ok, detail) = sees(&parties, 1, Layout::AllEqual, &[2, 0], peers_dir.path());
    assert!(ok, "party 1 after the template was cleared: {detail}");

    for p in &mut parties {
        p.phone.wait(Duration::ZERO);
    }
}

/// Video under mandatory SDES-SRTP: two baresip cameras with
/// `mediaenc=srtp-mand` see each other (every video packet each way
/// authenticated and replay-checked), and their legs say the media is
/// encrypted.
#[test]
fn two_video_endpoints_see_each_other_over_srtp() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = video_bridge(dir.path());
    c.create("/api/v1/coSpaces", "name=Secure&uri=secure");
    let peers_dir = tempfile::tempdir().unwrap();
    let uri = format!("sip:secure@127.0.0.1:{sip}");
    let mut parties = Vec::new();
    for (i, (name, rgb, rtp_base)) in [("s0", COLOURS[0], 23_160), ("s1", COLOURS[2], 23_180)].into_iter().enumerate() {
        let setup = BaresipSetup { mediaenc: Some("srtp-mand"), ..BaresipSetup::opus(name, 0.0, rtp_base) };
        parties.push(Party::join(&c, peers_dir.path(), &setup, rgb, &uri, i + 1));
    }
    for (n, other) in [(0, 1), (1, 0)] {
        let (ok, detail) = sees(&parties, n, Layout::SpeakerOnly, &[other], peers_dir.path());
        assert!(ok, "party {n}: {detail}\nconfero log:\n{}", c.log_text());
    }
    let legs = c.get("/api/v1/callLegs").body;
    for id in common::ids(&legs) {
        let leg = c.get(&format!("/api/v1/callLegs/{id}")).body;
        assert_eq!(element(&leg, "encryptedMedia"), Some("true"), "{leg}");
        let rx_video = element(&leg, "rxVideo").unwrap_or_else(|| panic!("no rxVideo: {leg}"));
        assert_eq!(element(rx_video, "codec"), Some("h264"), "{leg}");
    }
    for p in &mut parties {
        p.phone.wait(Duration::ZERO);
    }
}

/// A SIP endpoint whose only video codec is VP8 (baresip's `vp8` module)
/// beside an H.264 one: the offer's VP8 is answered, each sees the other's
/// camera (the VP8 one's decoded into the H.264 one's view, and the view
/// encoded again in VP8 for it), and each leg's `rxVideo` names its codec.
#[test]
fn a_vp8_only_endpoint_and_an_h264_one_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = video_bridge(dir.path());
    c.create("/api/v1/coSpaces", "name=Mixed&uri=mixed");
    let peers_dir = tempfile::tempdir().unwrap();
    let uri = format!("sip:mixed@127.0.0.1:{sip}");
    let vp8 = BaresipSetup::opus("vp8", 0.0, 23_500);
    let phone = Baresip::dial_vp8_video(peers_dir.path(), &vp8, COLOURS[0], &uri, 60);
    phone.wait_ready();
    assert!(common::eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 1), "{}", phone.log());
    let mut parties = vec![Party::seen(phone, vp8.ctrl_port, peers_dir.path(), "vp8")];
    let h264 = BaresipSetup::opus("h264", 0.0, 23_520);
    parties.push(Party::join(&c, peers_dir.path(), &h264, COLOURS[2], &uri, 2));
    for (n, other) in [(0, 1), (1, 0)] {
        let (ok, detail) = sees(&parties, n, Layout::SpeakerOnly, &[other], peers_dir.path());
        assert!(ok, "party {n}: {detail}\n{}\nconfero log:\n{}", parties[n].phone.log(), c.log_text());
    }
    for (user, codec) in [("vp8", "vp8"), ("h264", "h264")] {
        let leg = c.get(&format!("/api/v1/callLegs/{}", leg_of(&c, &c.get("/api/v1/callLegs").body, user))).body;
        let rx_video = element(&leg, "rxVideo").unwrap_or_else(|| panic!("no rxVideo: {leg}"));
        assert_eq!(element(rx_video, "codec"), Some(codec), "{leg}");
    }
    for p in &mut parties {
        p.phone.wait(Duration::ZERO);
    }
}

/// The id of the leg whose remote party starts with `user@`.
fn leg_of(c: &Confero, list: &str, user: &str) -> String {
    for id in common::ids(list) {
        let leg = c.get(&format!("/api/v1/callLegs/{id}")).body;
        if element(&leg, "remoteParty").is_some_and(|p| p.starts_with(&format!("{user}@"))) {
            return id;
        }
    }
    panic!("no leg of {user} in {list}");
}

/// TMS's auto-dial to a video endpoint: the call Confero makes offers H.264
/// beside the audio, the answering baresip's camera reaches a caller in the
/// space, and the caller's reaches it.
#[test]
fn a_dialled_out_video_endpoint_sees_and_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = video_bridge(dir.path());
    let peers_dir = tempfile::tempdir().unwrap();
    let desk = BaresipSetup::opus("desk.ex90", 0.0, 23_100);
    let answerer = Baresip::answer_video(peers_dir.path(), &desk, COLOURS[1], 40);
    answerer.wait_ready();
    c.create(
        "/api/v1/outboundDialPlanRules",
        &format!("domain=tkratzke.local&sipProxy=127.0.0.1:{}&priority=10", desk.sip_port),
    );
    let space = c.create("/api/v1/coSpaces", "name=TMS_Scheduled_Meeting_2&uri=2&callId=2");
    let call = c.post("/api/v1/calls", &format!("coSpace={space}"));
    let call_id = common::id_from_location(call.location.as_deref().unwrap());
    let leg = c.post(&format!("/api/v1/calls/{call_id}/callegs"), "remoteParty=desk.ex90@tkratzke.local");
    assert_eq!(leg.status, 200, "{}", leg.body);
    let leg_path = leg.location.unwrap();
    assert!(
        common::eventually(|| c.get(&leg_path).body.contains("<state>connected</state>")),
        "{}\n{}",
        c.get(&leg_path).body,
        answerer.log()
    );

    let caller_setup = BaresipSetup::opus("caller", 0.0, 23_120);
    let caller =
        Baresip::dial_video(peers_dir.path(), &caller_setup, COLOURS[0], &format!("sip:2@127.0.0.1:{sip}"), 40);
    caller.wait_ready();
    let mut parties = [
        Party::seen(answerer, desk.ctrl_port, peers_dir.path(), "desk"),
        Party::seen(caller, caller_setup.ctrl_port, peers_dir.path(), "caller"),
    ];
    // Each sees the other alone (automatic with one other shown: speakerOnly).
    for (n, other) in [(0, 1), (1, 0)] {
        let (ok, detail) = sees(&parties, n, Layout::SpeakerOnly, &[other], peers_dir.path());
        assert!(ok, "party {n}: {detail}\nconfero log:\n{}", c.log_text());
    }
    let one = c.get(&leg_path).body;
    let rx_video = element(&one, "rxVideo").unwrap_or_else(|| panic!("no rxVideo on the dialled leg: {one}"));
    assert_eq!(element(rx_video, "codec"), Some("h264"), "{one}");
    for p in &mut parties {
        p.phone.wait(Duration::ZERO);
    }
}

/// What a raw SIP video phone gets from Confero: the H.264 it is sent,
/// reassembled and decoded as an endpoint would.
struct VideoReceiver {
    socket: std::net::UdpSocket,
    depacketizer: H264Depacketizer,
    decoder: H264Decoder,
    picture: I420Frame,
    /// Our picture's SSRC, once a packet came.
    ssrc: Option<u32>,
    keyframes: usize,
    decoded: usize,
}

impl VideoReceiver {
    fn new(socket: std::net::UdpSocket) -> VideoReceiver {
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        VideoReceiver {
            socket,
            depacketizer: H264Depacketizer::new(DepacketizerConfig::default()),
            decoder: H264Decoder::new().unwrap(),
            picture: I420Frame::new(2, 2).unwrap(),
            ssrc: None,
            keyframes: 0,
            decoded: 0,
        }
    }

    /// Receives for up to `limit`, until `done` holds.
    fn until(&mut self, limit: Duration, mut done: impl FnMut(&VideoReceiver) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            let Ok(n) = self.socket.recv(&mut buf) else { continue };
            if is_rtcp(&buf[..n]) {
                continue;
            }
            let Ok(rtp) = RtpPacket::parse(&buf[..n]) else { continue };
            self.ssrc = Some(rtp.ssrc());
            if self.depacketizer.push(rtp.sequence_number(), rtp.timestamp(), rtp.marker(), rtp.payload()).is_err() {
                continue;
            }
            while let Some(out) = self.depacketizer.poll() {
                if let Assembled::Frame(unit) = out {
                    self.keyframes += usize::from(unit.is_keyframe());
                    if self.decoder.decode(unit.annex_b(), &mut self.picture).unwrap_or(false) {
                        self.decoded += 1;
                    }
                    self.depacketizer.recycle(unit);
                }
            }
        }
        done(self)
    }

    fn size(&self) -> (u32, u32) {
        (self.picture.width(), self.picture.height())
    }
}

/// The port of the `m=<kind>` line of an SDP body.
fn media_port(sdp: &str, kind: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("m={kind} ")))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m={kind} in {sdp}"))
}

/// A raw SIP video phone in a call to `user`: its SIP socket, its audio and
/// video sockets, and the SDP of Confero's 200. It offers PCMU and H.264
/// (level 3.1, mode 1, rtcp-mux) with `fmtp_extra` after the packetization
/// mode and these `a=rtcp-fb` kinds.
struct RawVideoCall {
    /// Kept for the call's lifetime: its socket is the phone's SIP address.
    _phone: RawPhone,
    _audio: std::net::UdpSocket,
    video: std::net::UdpSocket,
    answer: String,
}

impl RawVideoCall {
    fn dial(c: &Confero, sip: u16, call_id: &str, user: &str, fmtp_extra: &str, feedback: &[&str]) -> RawVideoCall {
        let phone = RawPhone::new(sip);
        let audio = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let video = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let feedback: String = feedback.iter().map(|kind| format!("a=rtcp-fb:96 {kind}\r\n")).collect();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
             m=video {} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 profile-level-id=42e01f;packetization-mode=1{fmtp_extra}\r\n{feedback}a=rtcp-mux\r\n",
            audio.local_addr().unwrap().port(),
            video.local_addr().unwrap().port()
        );
        phone.invite_with(call_id, user, &sdp);
        let ok = phone.expect("200", Duration::from_secs(5)).unwrap_or_else(|| panic!("no 200:\n{}", c.log_text()));
        phone.ack(&ok, call_id, user);
        let answer = ok[ok.find("\r\n\r\n").unwrap() + 4..].to_string();
        RawVideoCall { _phone: phone, _audio: audio, video, answer }
    }

    /// Where its RTCP about video goes: Confero's video port, or the one
    /// after it without rtcp-mux.
    fn rtcp_port(&self) -> u16 {
        let port = media_port(&self.answer, "video");
        if self.answer.contains("a=rtcp-mux") {
            port
        } else {
            port + 1
        }
    }
}

/// Baresip cameras in these colours dialling `uri` one after another (so
/// the speaker order is the join order), named `prefix0`, `prefix1`, … with
/// RTP ports from `rtp_base`.
fn cameras(c: &Confero, dir: &Path, uri: &str, colours: &[u32], prefix: &str, rtp_base: u16) -> Vec<Party> {
    cameras_in_modes(c, dir, uri, colours, prefix, rtp_base, &[])
}

/// As [`cameras`], those whose index is in `mode_0` offering packetization
/// mode 0 only.
fn cameras_in_modes(
    c: &Confero,
    dir: &Path,
    uri: &str,
    colours: &[u32],
    prefix: &str,
    rtp_base: u16,
    mode_0: &[usize],
) -> Vec<Party> {
    let mut parties = Vec::new();
    for (i, &rgb) in colours.iter().enumerate() {
        let name = format!("{prefix}{i}");
        let mut setup = BaresipSetup::opus(&name, 0.0, rtp_base + 20 * i as u16);
        if mode_0.contains(&i) {
            setup.video_codecs = Some("H264");
        }
        parties.push(Party::join(c, dir, &setup, rgb, uri, i + 1));
    }
    parties
}

/// Three baresip cameras that offer H.264 in packetization mode 0 only (one
/// NAL unit per packet, as many room systems and older endpoints do): a 720p
/// picture does not fit one packet, so their view is encoded in slices that
/// each do; each sees the other two. Then a mixed room, two in mode 1 and
/// one in mode 0, sharing one view's encode: each sees the other two.
#[test]
fn cameras_in_packetization_mode_0_see_each_other_alone_and_in_a_mixed_room() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = video_bridge(dir.path());
    c.create("/api/v1/coSpaces", "name=Mode0&uri=modezero");
    c.create("/api/v1/coSpaces", "name=Mixed&uri=mixed");
    let peers_dir = tempfile::tempdir().unwrap();
    let uri = format!("sip:modezero@127.0.0.1:{sip}");
    let parties = cameras_in_modes(&c, peers_dir.path(), &uri, &COLOURS, "z", 23_600, &[0, 1, 2]);
    for (n, others) in [(0, [1, 2]), (1, [0, 2]), (2, [0, 1])] {
        let (ok, detail) = sees(&parties, n, Layout::AllEqual, &others, peers_dir.path());
        assert!(ok, "mode 0, party {n}: {detail}\nconfero log:\n{}", c.log_text());
    }
    // Ends that room's call, hanging up its legs, before the mixed room.
    for call in common::ids(&c.get("/api/v1/calls").body) {
        assert_eq!(c.delete(&format!("/api/v1/calls/{call}")).status, 200);
    }
    drop(parties);
    assert!(common::eventually(|| common::total(&c.get("/api/v1/callLegs").body) == 0), "{}", c.log_text());
    let uri = format!("sip:mixed@127.0.0.1:{sip}");
    let parties = cameras_in_modes(&c, peers_dir.path(), &uri, &COLOURS, "x", 23_700, &[2]);
    for (n, others) in [(0, [1, 2]), (1, [0, 2]), (2, [0, 1])] {
        let (ok, detail) = sees(&parties, n, Layout::AllEqual, &others, peers_dir.path());
        assert!(ok, "mixed room, party {n}: {detail}\nconfero log:\n{}", c.log_text());
    }
}

/// A video phone of our own (raw SIP over UDP, H.264 decoded with OpenH264)
/// in a space whose call leg profile says `qualityMain=max480p30`, with a
/// baresip camera: it is sent 848x480 showing the camera; each RTCP PLI, and
/// each FIR, it sends gets it an IDR when none comes otherwise, as does
/// `POST /callLegs/<id>/generateKeyframe`; a
/// `PUT /callLegs/<id> qualityMain=unrestricted` raises it to 1280x720 live.
#[test]
fn a_receiver_s_pli_and_fir_get_idrs_and_quality_main_caps_its_picture_live() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = video_bridge(dir.path());
    let profile = c.create("/api/v1/callLegProfiles", "qualityMain=max480p30");
    c.create("/api/v1/coSpaces", &format!("name=Small&uri=small&callLegProfile={profile}"));
    let peers_dir = tempfile::tempdir().unwrap();

    let setup = BaresipSetup::opus("camera", 0.0, 23_140);
    let camera = Party::join(&c, peers_dir.path(), &setup, COLOURS[0], &format!("sip:small@127.0.0.1:{sip}"), 1);
    let rgb = camera.camera;

    let call = RawVideoCall::dial(&c, sip, "pli-1", "small", "", &["nack pli", "ccm fir"]);
    let rtcp_to = call.rtcp_port();
    let mut rx = VideoReceiver::new(call.video.try_clone().unwrap());

    // qualityMain from the space's call leg profile: 848x480, showing the camera.
    let want = Yuv::from_rgb(rgb[0], rgb[1], rgb[2]);
    let shows_camera = |r: &VideoReceiver, size: (u32, u32)| {
        r.size() == size
            && r.picture.pixel(size.0 / 2, size.1 / 2).is_some_and(|p| {
                p.y.abs_diff(want.y) <= TOLERANCE
                    && p.u.abs_diff(want.u) <= TOLERANCE
                    && p.v.abs_diff(want.v) <= TOLERANCE
            })
    };
    assert!(
        rx.until(Duration::from_secs(15), |r| shows_camera(r, (848, 480))),
        "got {:?} after {} frames ({} keyframes)\n{}",
        rx.size(),
        rx.decoded,
        rx.keyframes,
        c.log_text()
    );
    let leg = leg_of(&c, &c.get("/api/v1/callLegs").body, "raw");
    // The leg's status says what it is sent (published about once a second).
    let mut status = String::new();
    let sent_848 = common::eventually(|| {
        status = c.get(&format!("/api/v1/callLegs/{leg}")).body;
        element(&status, "txVideo")
            .is_some_and(|tx| (element(tx, "width"), element(tx, "height")) == (Some("848"), Some("480")))
    });
    assert!(sent_848, "{status}");

    // Left alone, the view is sent no further IDR; each PLI, then each FIR,
    // gets one (they are 1 s apart, beyond the 500 ms coalescing).
    let media_ssrc = rx.ssrc.unwrap();
    let pli = |ssrc: u32| {
        let mut p = vec![0x81, 206, 0, 2];
        p.extend_from_slice(&0x5eed_0001u32.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p
    };
    let fir = |ssrc: u32, seq: u8| {
        let mut p = vec![0x84, 206, 0, 4];
        p.extend_from_slice(&0x5eed_0001u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[seq, 0, 0, 0]);
        p
    };
    let before = rx.keyframes;
    rx.until(Duration::from_secs(3), |_| false);
    assert_eq!(rx.keyframes, before, "an IDR came without a request");
    for (n, request) in [pli(media_ssrc), fir(media_ssrc, 1), pli(media_ssrc), fir(media_ssrc, 2)].iter().enumerate() {
        let before = (rx.keyframes, rx.decoded);
        rx.socket.send_to(request, ("127.0.0.1", rtcp_to)).unwrap();
        assert!(
            rx.until(Duration::from_secs(3), |r| r.keyframes > before.0 && r.decoded > before.1),
            "request {n} ({}) got no IDR",
            if n % 2 == 0 { "PLI" } else { "FIR" }
        );
        rx.until(Duration::from_secs(1), |_| false);
    }

    // `POST /callLegs/<id>/generateKeyframe` gets it one too.
    let before = (rx.keyframes, rx.decoded);
    let asked = c.post(&format!("/api/v1/callLegs/{leg}/generateKeyframe"), "");
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(
        rx.until(Duration::from_secs(3), |r| r.keyframes > before.0 && r.decoded > before.1),
        "generateKeyframe got no IDR"
    );
    let missing = c.post("/api/v1/callLegs/00000000-0000-4000-8000-000000000000/generateKeyframe", "");
    assert!(missing.status == 404 && missing.body.contains("callLegDoesNotExist"), "{}", missing.body);

    // The leg lifts its profile's cap live.
    let answer = c.put(&format!("/api/v1/callLegs/{leg}"), "qualityMain=unrestricted");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(rx.until(Duration::from_secs(10), |r| shows_camera(r, (1280, 720))), "got {:?}", rx.size());

    let mut camera = camera.phone;
    camera.wait(Duration::ZERO);
}

/// The participant whose URI is `user@…`.
fn participant_of(c: &Confero, user: &str) -> String {
    common::ids(&c.get("/api/v1/participants").body)
        .into_iter()
        .find(|id| {
            element(&c.get(&format!("/api/v1/participants/{id}")).body, "uri")
                .is_some_and(|u| u.starts_with(&format!("{user}@")))
        })
        .unwrap_or_else(|| panic!("no participant {user}"))
}

/// The TMMBR limits for `media_ssrc` among the RTCP `socket` receives within
/// `limit`, until `done` holds for them.
fn tmmbr_limits(
    socket: &std::net::UdpSocket,
    media_ssrc: u32,
    limit: Duration,
    done: impl Fn(&[u64]) -> bool,
) -> Vec<u64> {
    use confero_media::rtcp::{compound, RtcpPacket};
    let deadline = Instant::now() + limit;
    let mut limits = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && !done(&limits) {
        let Ok(n) = socket.recv(&mut buf) else { continue };
        if !is_rtcp(&buf[..n]) {
            continue;
        }
        for packet in compound(&buf[..n]).flatten() {
            if let RtcpPacket::Tmmbr(t) = packet {
                limits.extend(t.entries.iter().filter(|e| e.ssrc == media_ssrc).map(|e| e.bitrate_bps));
            }
        }
    }
    limits
}

/// A video phone of our own that offers `ccm tmmbr` and sends a small H.264
/// camera joins two baresip cameras in a telepresence space last, so that
/// it is only ever a thumbnail: Confero asks it (RTCP TMMBR) to send far
/// less than its full rate. Made important through the API, it fills the
/// others' screens, and the next TMMBR lifts the limit again.
#[test]
fn a_participant_shown_only_small_is_asked_for_less_by_tmmbr_and_for_its_full_rate_when_it_grows() {
    use confero_media::rtp::RtpHeader;
    use confero_media::video::h264::{H264Encoder, H264EncoderConfig};
    use confero_media::video::h264_rtp::{H264Packetizer, PacketizationMode, RtpPayloads};

    let dir = tempfile::tempdir().unwrap();
    let (c, sip) = video_bridge(dir.path());
    c.create("/api/v1/coSpaces", "name=Tele&uri=tele&defaultLayout=telepresence");
    let peers_dir = tempfile::tempdir().unwrap();
    let uri = format!("sip:tele@127.0.0.1:{sip}");
    let cameras = cameras(&c, peers_dir.path(), &uri, &COLOURS[..2], "t", 23_200);

    let call = RawVideoCall::dial(&c, sip, "tmmbr-1", "tele", ";max-br=1200", &["nack pli", "ccm tmmbr"]);
    let body = &call.answer;
    assert!(body.contains("a=rtcp-fb:96 ccm tmmbr"), "TMMBR not answered:\n{body}");
    assert!(body.contains("a=rtcp-mux"), "{body}");
    let video = &call.video;
    video.connect(("127.0.0.1", media_port(body, "video"))).unwrap();
    video.set_read_timeout(Some(Duration::from_millis(50))).unwrap();

    // Its camera: 320x180 of one colour at 15 fps, from a thread of its own.
    const SSRC: u32 = 0x7a11_0001;
    let sender = video.try_clone().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let camera = std::thread::spawn(move || {
        let config = H264EncoderConfig { width: 320, height: 180, bitrate: 300_000, max_fps: 15.0, max_nal_size: None };
        let mut encoder = H264Encoder::new(config).unwrap();
        let mut picture = I420Frame::new(320, 180).unwrap();
        picture.fill(Yuv::from_rgb(0xC8, 0xC8, 0x28));
        let packetizer = H264Packetizer::new(1100, PacketizationMode::NonInterleaved).unwrap();
        let mut payloads = RtpPayloads::new();
        let (start, mut seq) = (Instant::now(), 1u16);
        for k in 0u32.. {
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let unit = encoder.encode(start + Duration::from_millis(u64::from(k) * 66), &picture).unwrap();
            if !unit.data.is_empty() {
                packetizer.packetize_annex_b(unit.data, &mut payloads).unwrap();
                for (payload, marker) in payloads.iter() {
                    let header = RtpHeader {
                        marker,
                        payload_type: 96,
                        sequence_number: seq,
                        timestamp: k * 6000,
                        ssrc: SSRC,
                        ..RtpHeader::default()
                    };
                    let mut bytes = Vec::new();
                    header.write_packet(payload, &mut bytes).unwrap();
                    let _ = sender.send(&bytes);
                    seq = seq.wrapping_add(1);
                }
            }
            std::thread::sleep(Duration::from_millis(66));
        }
    });

    // Last to join and silent, it is a thumbnail in both cameras' views: a
    // limit well under its 1.2 Mbit/s (`max-br`) comes (after the 2 s hold).
    let small = tmmbr_limits(video, SSRC, Duration::from_secs(15), |l| !l.is_empty());
    assert!(!small.is_empty(), "no TMMBR for a participant shown small\n{}", c.log_text());
    assert!(small.iter().all(|&b| b <= 600_000), "limits {small:?}");

    // Made important, it is the big picture for both cameras: the limit is
    // lifted to its full rate.
    let answer = c.put(&format!("/api/v1/participants/{}", participant_of(&c, "raw")), "importance=1");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let grown = tmmbr_limits(video, SSRC, Duration::from_secs(10), |l| l.contains(&1_200_000));
    assert!(grown.contains(&1_200_000), "limits after importance: {grown:?}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    camera.join().unwrap();
    for mut p in cameras {
        p.phone.wait(Duration::ZERO);
    }
}
