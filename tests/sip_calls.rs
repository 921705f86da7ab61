//! SIP endpoints in spaces, against the real binary: baresip (and linphonec)
//! dial in over SIP/UDP on loopback, send their own tones, and record what
//! they hear; the API shows their legs while they talk.

mod common;
mod peers;

use std::time::Duration;

use common::{element, total, Confero};
use peers::{free_pair, tone_level_db, Baresip, BaresipSetup};

/// Starts Confero with SIP on a known port and a space `room` (call ID 1234).
fn bridge_with_space(extra: &[(&str, &str)]) -> (Confero, u16, tempfile::TempDir) {
    let sip = free_pair();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{sip}");
    let mut env = vec![("CONFERO_SIP_LISTEN", listen.as_str())];
    env.extend_from_slice(extra);
    let c = Confero::start_in(dir.path(), &env);
    (c, sip, dir)
}

/// The level of each tone in the middle of a recording, where every party
/// was in the call.
fn levels(heard: &(Vec<i16>, u32), tones: &[f64], from_s: f64, to_s: f64) -> Vec<f64> {
    let (samples, rate) = heard;
    let a = (from_s * f64::from(*rate)) as usize;
    let b = ((to_s * f64::from(*rate)) as usize).min(samples.len());
    assert!(b > a + *rate as usize, "recording too short: {} samples at {rate} Hz", samples.len());
    tones.iter().map(|&f| tone_level_db(&samples[a..b], f, *rate)).collect()
}

/// The levels of `tones` in the one-second window (in quarter-second steps)
/// where the first of them is loudest: for a party whose time in the
/// recording the test cannot know, such as a caller an IVR moves into a
/// meeting once a loaded machine gets to it.
fn loudest_second(heard: &(Vec<i16>, u32), tones: &[f64]) -> Vec<f64> {
    let (samples, rate) = heard;
    let (window, step) = (*rate as usize, *rate as usize / 4);
    assert!(samples.len() > window, "recording too short: {} samples at {rate} Hz", samples.len());
    (0..=(samples.len() - window) / step)
        .map(|i| &samples[i * step..i * step + window])
        .map(|w| tones.iter().map(|&f| tone_level_db(w, f, *rate)).collect::<Vec<f64>>())
        .max_by(|a, b| a[0].total_cmp(&b[0]))
        .expect("one window at least")
}

/// Three parties, each hearing the other two and not itself. The tones are
/// sent at -12 dBFS.
fn three_parties(mediaenc: Option<&str>, profile_encryption: Option<&str>) {
    // License usage snapshots every second instead of every five minutes.
    let (c, sip, dir) = bridge_with_space(&[("CONFERO_LICENSE_SNAPSHOT_SECONDS", "1")]);
    let mut space = "name=Room&uri=room&callId=1234".to_string();
    if let Some(enc) = profile_encryption {
        let profile = c.create("/api/v1/callLegProfiles", &format!("sipMediaEncryption={enc}"));
        space.push_str(&format!("&callLegProfile={profile}"));
    }
    c.create("/api/v1/coSpaces", &space);
    let tones = [440.0, 700.0, 1100.0];
    let users = ["room", "1234", "ROOM"];
    let base = if mediaenc.is_some() { 22_200 } else { 22_000 };
    let mut phones: Vec<Baresip> = tones
        .iter()
        .zip(users)
        .enumerate()
        .map(|(i, (&tone, user))| {
            let name = format!("p{i}");
            let setup = BaresipSetup {
                name: &name,
                tone_hz: tone,
                sip_port: free_pair(),
                rtp_base: base + 20 * i as u16,
                mediaenc,
                codecs: "opus/48000/2",
                video_codecs: None,
                ctrl_port: free_pair(),
            };
            Baresip::dial(dir.path(), &setup, &format!("sip:{user}@127.0.0.1:{sip}"), 10)
        })
        .collect();

    // While they talk: three legs in one call, three participants.
    assert!(
        common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 3),
        "legs: {}\nlog: {}",
        c.get("/api/v1/callLegs").body,
        c.log_text()
    );
    assert_eq!(total(&c.get("/api/v1/calls").body), 1);
    assert_eq!(total(&c.get("/api/v1/participants").body), 3);
    std::thread::sleep(Duration::from_secs(3));
    let legs = c.get("/api/v1/callLegs").body;
    let leg = common::ids(&legs)[0].clone();
    let one = c.get(&format!("/api/v1/callLegs/{leg}")).body;
    let encrypted = if mediaenc.is_some() { "true" } else { "false" };
    assert_eq!(element(&one, "encryptedMedia"), Some(encrypted), "{one}");
    if mediaenc.is_some() {
        assert_eq!(element(&one, "cipherSuite"), Some("AES_CM_128_HMAC_SHA1_80"), "{one}");
    }
    assert!(one.contains("<codec>opus</codec>"), "{one}");
    // Three Opus legs mixed: the media workers are busy some of the time.
    let load = c.get("/api/v1/system/load").body;
    let busy: u64 = element(&load, "mediaProcessingLoad").and_then(|v| v.parse().ok()).expect("a number");
    assert!(busy > 0, "{load}");
    // The call takes one shared audio-only license in the snapshots, which
    // name this bridge's hostId.
    let usage = c.get("/api/v1/system/MPLicenseUsage").body;
    assert!(usage.contains("<smpAud>1.00</smpAud>"), "{usage}");
    let host = element(&c.get("/api/v1/system/status").body, "hostId").expect("hostId").to_string();
    let known = c.get("/api/v1/system/MPLicenseUsage/knownHosts").body;
    assert!(known.contains(&format!("<host id=\"{host}\"")), "{known}");
    let mine = c.get(&format!("/api/v1/system/MPLicenseUsage?hostId={host}&limit=1")).body;
    assert!(mine.contains("<entry time=") && total(&mine) >= 1, "{mine}");
    let other = c.get("/api/v1/system/MPLicenseUsage?hostId=00000000-0000-4000-8000-000000000001").body;
    assert_eq!(total(&other), 0, "{other}");
    let future = c.get("/api/v1/system/MPLicenseUsage?startTime=2999-01-01T00:00:00Z").body;
    assert_eq!(total(&future), 0, "{future}");
    let bad = c.get("/api/v1/system/MPLicenseUsage?startTime=yesterday");
    assert!(bad.status == 400 && bad.body.contains("startTime"), "{} {}", bad.status, bad.body);

    for p in &mut phones {
        p.wait(Duration::from_secs(20));
    }
    for (i, p) in phones.iter().enumerate() {
        let heard = p.heard();
        let db = levels(&heard, &tones, 4.0, 8.0);
        for (j, level) in db.iter().enumerate() {
            if i == j {
                assert!(*level < -40.0, "party {i} hears itself at {level:.1} dB\n{}", p.log());
            } else {
                assert!((-16.0..-8.0).contains(level), "party {i} hears {} Hz at {level:.1} dB", tones[j]);
            }
        }
    }
    // All hung up: the call made by dialling in is gone, and the media
    // workers rest.
    assert!(common::eventually(|| total(&c.get("/api/v1/calls").body) == 0), "{}", c.get("/api/v1/calls").body);
    let idle = || element(&c.get("/api/v1/system/load").body, "mediaProcessingLoad") == Some("0");
    assert!(common::eventually(idle), "{}", c.get("/api/v1/system/load").body);
}

#[test]
fn three_baresip_endpoints_hear_each_other_by_uri_call_id_and_any_case() {
    three_parties(None, None);
}

#[test]
fn three_baresip_endpoints_with_mandatory_srtp() {
    three_parties(Some("srtp-mand"), Some("required"));
}

#[test]
fn an_unknown_space_is_refused_and_a_plain_call_to_an_encrypted_only_space_too() {
    let (c, sip, dir) = bridge_with_space(&[]);
    let profile = c.create("/api/v1/callLegProfiles", "sipMediaEncryption=required");
    c.create("/api/v1/coSpaces", &format!("name=Secure&uri=secure&callLegProfile={profile}"));
    let setup = |name| BaresipSetup::opus(name, 500.0, 22_400);
    let mut nobody = Baresip::dial(dir.path(), &setup("x1"), &format!("sip:nobody@127.0.0.1:{sip}"), 4);
    let mut plain = Baresip::dial(dir.path(), &setup("x2"), &format!("sip:secure@127.0.0.1:{sip}"), 4);
    nobody.wait(Duration::from_secs(10));
    plain.wait(Duration::from_secs(10));
    assert!(nobody.log().contains("404"), "{}", nobody.log());
    assert!(plain.log().contains("488"), "{}", plain.log());
    assert_eq!(total(&c.get("/api/v1/calls").body), 0);
}

/// A space with a passcode: the caller hears the tone prompt, not the
/// meeting, until it sends the right digits and `#` (RFC 4733 from
/// baresip); a caller who gets it wrong three times is hung up on. An
/// access method without a passcode lets the host straight in.
#[test]
fn a_passcode_admits_the_right_dtmf_and_three_wrong_entries_hang_up() {
    let (c, sip, dir) = bridge_with_space(&[]);
    let space = c.create("/api/v1/coSpaces", "name=Locked&uri=locked&passcode=1234");
    c.create(&format!("/api/v1/coSpaces/{space}/accessMethods"), "uri=host&name=Host");
    let (host_setup, guest_setup, wrong_setup) = (
        BaresipSetup::opus("host", 700.0, 22_500),
        BaresipSetup::opus("guest", 440.0, 22_520),
        BaresipSetup::opus("wrong", 1100.0, 22_540),
    );
    // Wall-clock marks from the dials: each recording starts when its call
    // is set up, before the legs show, so a moment between two marks lies in
    // a recording between the earlier less `shown` and the later.
    let dialled = std::time::Instant::now();
    let at = || dialled.elapsed().as_secs_f64();
    let mut host = Baresip::dial(dir.path(), &host_setup, &format!("sip:host@127.0.0.1:{sip}"), 14);
    let mut guest = Baresip::dial(dir.path(), &guest_setup, &format!("sip:locked@127.0.0.1:{sip}"), 14);
    let mut wrong = Baresip::dial(dir.path(), &wrong_setup, &format!("sip:locked@127.0.0.1:{sip}"), 14);
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 3), "{}", c.log_text());
    let shown = at();
    // Long enough for the early window to hold a whole passcode prompt (its
    // tones every 3 s).
    std::thread::sleep(Duration::from_secs(4));
    let typing = at();
    guest.send_dtmf(guest_setup.ctrl_port, "1234#");
    // The digits are sent; the last one's RTP events take 0.3 s more.
    let typed = at() + 0.5;
    for _ in 0..3 {
        wrong.send_dtmf(wrong_setup.ctrl_port, "99#");
    }
    assert!(
        common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 2),
        "the wrong caller is still in: {}",
        c.get("/api/v1/callLegs").body
    );
    for p in [&mut host, &mut guest, &mut wrong] {
        p.wait(Duration::from_secs(25));
    }
    assert!(wrong.log().contains("terminated"), "{}", wrong.log());
    let tones = [523.25, 700.0, 440.0, 1100.0];
    // Before the passcode: the prompt, not the meeting.
    let early = levels(&guest.heard(), &tones, 0.5, typing - shown);
    assert!(early[0] > -45.0 && early[1] < -40.0, "guest before the passcode: {early:?}");
    // After it: the host; and the host hears the guest, never the wrong
    // caller. Judged in the second each hears the other best once the
    // digits are in, however long admission took on a loaded machine (the
    // calls last 14 s from their dials).
    let after = |heard: (Vec<i16>, u32)| {
        let rate = f64::from(heard.1);
        let from = ((typed * rate) as usize).min(heard.0.len());
        (heard.0[from..].to_vec(), heard.1)
    };
    let late = loudest_second(&after(guest.heard()), &[700.0, 523.25]);
    let log = c.log_text();
    let lobby: Vec<&str> = log.lines().filter(|l| l.contains("sip_calls") || l.contains("passcode")).collect();
    assert!((-16.0..-8.0).contains(&late[0]), "guest after the passcode: {late:?}\n{lobby:#?}");
    let host_heard = loudest_second(&after(host.heard()), &[440.0, 1100.0]);
    assert!((-16.0..-8.0).contains(&host_heard[0]) && host_heard[1] < -40.0, "host: {host_heard:?}");
    let host_early = levels(&host.heard(), &tones, 0.5, typing - shown);
    assert!(host_early[2] < -40.0 && host_early[3] < -40.0, "host hears the lobby: {host_early:?}");
}

/// TMS's auto-dial for real: an outbound dial plan rule sends TMS's test
/// domain to a baresip that answers; the leg connects, shows as a
/// participant, carries audio both ways with a caller in the space, and is
/// hung up when TMS deletes the call.
#[test]
fn tms_auto_dial_reaches_a_baresip_through_an_outbound_rule_and_hangs_up_with_the_call() {
    let (c, sip, dir) = bridge_with_space(&[]);
    let desk = BaresipSetup::opus("desk.ex90", 700.0, 22_600);
    let mut answerer = Baresip::answer(dir.path(), &desk, 30);
    answerer.wait_ready();
    c.create(
        "/api/v1/outboundDialPlanRules",
        &format!("domain=tkratzke.local&sipProxy=127.0.0.1:{}&priority=10", desk.sip_port),
    );
    let space = c.create("/api/v1/coSpaces", "name=TMS_Scheduled_Meeting_1&uri=1&callId=1");
    let call = c.post("/api/v1/calls", &format!("coSpace={space}"));
    let call_id = common::id_from_location(call.location.as_deref().unwrap());
    // The body TMS sends, byte for byte (36 bytes).
    let leg = c.post(&format!("/api/v1/calls/{call_id}/callegs"), "remoteParty=desk.ex90@tkratzke.local");
    assert_eq!(leg.status, 200, "{}", leg.body);
    let leg_path = leg.location.unwrap();
    assert!(
        common::eventually(|| c.get(&leg_path).body.contains("<state>connected</state>")),
        "{}\n{}",
        c.get(&leg_path).body,
        answerer.log()
    );
    let parts = c.get("/api/v1/participants").body;
    assert_eq!(total(&parts), 1, "{parts}");
    let one = c.get(&leg_path).body;
    assert_eq!(element(&one, "remoteParty"), Some("desk.ex90@tkratzke.local"), "{one}");
    assert_eq!(element(&one, "direction"), Some("outgoing"), "{one}");

    // Someone dials into the space: the two hear each other.
    let caller = BaresipSetup::opus("caller", 440.0, 22_620);
    let mut dialler = Baresip::dial(dir.path(), &caller, &format!("sip:1@127.0.0.1:{sip}"), 8);
    dialler.wait(Duration::from_secs(20));
    let heard = levels(&dialler.heard(), &[700.0, 440.0], 3.0, 6.0);
    assert!((-16.0..-8.0).contains(&heard[0]) && heard[1] < -40.0, "caller hears {heard:?}");

    // TMS ends the meeting: the leg is hung up (baresip sees a BYE long before its 30 s).
    let deleted = c.delete(&format!("/api/v1/calls/{call_id}"));
    assert_eq!(deleted.status, 200);
    assert!(common::eventually(|| answerer.log().contains("terminated")), "{}", answerer.log());
    assert_eq!(total(&c.get("/api/v1/callLegs").body), 0);
    answerer.wait(Duration::from_secs(1));
}

/// linphonec, a second SIP and media stack, joins two baresips: all three
/// hear each other and not themselves.
#[test]
fn linphonec_joins_baresip_endpoints() {
    let (c, sip, dir) = bridge_with_space(&[]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let mut linphone =
        peers::Linphone::call(dir.path(), "lin", free_pair(), 22_700, 1100.0, &format!("sip:room@127.0.0.1:{sip}"));
    let mut phones: Vec<Baresip> = [(440.0, 22_720), (700.0, 22_740)]
        .into_iter()
        .enumerate()
        .map(|(i, (tone_hz, rtp_base))| {
            let name = format!("b{i}");
            let setup = BaresipSetup::opus(&name, tone_hz, rtp_base);
            Baresip::dial(dir.path(), &setup, &format!("sip:room@127.0.0.1:{sip}"), 9)
        })
        .collect();
    assert!(
        common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 3),
        "{}\n{}",
        c.get("/api/v1/callLegs").body,
        linphone.log()
    );
    for p in &mut phones {
        p.wait(Duration::from_secs(20));
    }
    linphone.hang_up();
    let tones = [440.0, 700.0, 1100.0];
    // From 4 s into linphonec's call: both baresips (dialled after it, 9 s
    // calls) are in, even when a loaded machine slows their dialling.
    let lin = levels(&linphone.heard(), &tones, 4.0, 8.0);
    assert!(
        (-16.0..-8.0).contains(&lin[0]) && (-16.0..-8.0).contains(&lin[1]) && lin[2] < -40.0,
        "linphonec hears {lin:?}"
    );
    for (i, p) in phones.iter().enumerate() {
        let db = levels(&p.heard(), &tones, 3.0, 7.0);
        assert!((-16.0..-8.0).contains(&db[2]), "baresip {i} hears linphonec at {:.1} dB", db[2]);
        assert!((-16.0..-8.0).contains(&db[1 - i]) && db[i] < -40.0, "baresip {i} hears {db:?}");
    }
}

/// `PUT /callLegs/<id> rxAudioMute=true` acts on the media at once: the
/// others stop hearing that leg; `false` brings it back.
#[test]
fn muting_a_leg_through_the_api_silences_it_live() {
    const TALKER_SECONDS: u32 = 16;
    let (c, sip, dir) = bridge_with_space(&[]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let talker_setup = BaresipSetup::opus("talker", 440.0, 22_800);
    let talker_dialled = std::time::Instant::now();
    let uri = format!("sip:room@127.0.0.1:{sip}");
    let mut talker = Baresip::dial(dir.path(), &talker_setup, &uri, TALKER_SECONDS);
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 1));
    let talker_leg = common::ids(&c.get("/api/v1/callLegs").body)[0].clone();
    // Wall-clock marks from the listener's dial: its recording starts when
    // its call is set up, before its leg shows, so a moment between two
    // marks lies in the recording between the earlier less `shown` and the
    // later.
    let dialled = std::time::Instant::now();
    let at = || dialled.elapsed().as_secs_f64();
    let mut listener = Baresip::dial(dir.path(), &BaresipSetup::opus("listener", 700.0, 22_820), &uri, 12);
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 2));
    let shown = at();
    std::thread::sleep(Duration::from_secs(4));
    let mute_sent = at();
    assert_eq!(c.put(&format!("/api/v1/callLegs/{talker_leg}"), "rxAudioMute=true").status, 200);
    let mute_done = at();
    std::thread::sleep(Duration::from_secs(4));
    let unmute_sent = at();
    assert_eq!(c.put(&format!("/api/v1/callLegs/{talker_leg}"), "rxAudioMute=false").status, 200);
    let unmute_done = at();
    for p in [&mut talker, &mut listener] {
        p.wait(Duration::from_secs(20));
    }
    let heard = listener.heard();
    let seconds = heard.0.len() as f64 / f64::from(heard.1);
    // The talker leaves its seconds after its own dial, at the earliest.
    let talker_gone = f64::from(TALKER_SECONDS) - (dialled - talker_dialled).as_secs_f64() - shown;
    // 0.3 s for what was already in the jitter buffer and on the way.
    let before = levels(&heard, &[440.0], 1.5, mute_sent - shown)[0];
    let muted = levels(&heard, &[440.0], mute_done + 0.3, unmute_sent - shown)[0];
    let after = levels(&heard, &[440.0], unmute_done + 0.3, talker_gone.min(seconds - 0.5))[0];
    assert!((-16.0..-8.0).contains(&before), "before: {before:.1} dB");
    assert!(muted < -40.0, "while muted: {muted:.1} dB");
    assert!((-16.0..-8.0).contains(&after), "after: {after:.1} dB");
}

/// A re-INVITE from baresip puts its leg on hold and takes it off again:
/// the API shows the state, and audio flows again after the resume.
#[test]
fn hold_and_resume_by_re_invite_show_in_the_leg_state() {
    let (c, sip, dir) = bridge_with_space(&[]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let holder_setup = BaresipSetup::opus("holder", 440.0, 22_860);
    let mut holder = Baresip::dial(dir.path(), &holder_setup, &format!("sip:room@127.0.0.1:{sip}"), 12);
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 1));
    let leg = common::ids(&c.get("/api/v1/callLegs").body)[0].clone();
    let mut other = Baresip::dial(
        dir.path(),
        &BaresipSetup::opus("other", 700.0, 22_880),
        &format!("sip:room@127.0.0.1:{sip}"),
        14,
    );
    std::thread::sleep(Duration::from_secs(2));
    holder.command(holder_setup.ctrl_port, "hold", "");
    let path = format!("/api/v1/callLegs/{leg}");
    assert!(
        common::eventually(|| c.get(&path).body.contains("<state>onHold</state>")),
        "{}\n{}",
        c.get(&path).body,
        holder.log()
    );
    holder.command(holder_setup.ctrl_port, "resume", "");
    assert!(common::eventually(|| c.get(&path).body.contains("<state>connected</state>")), "{}", c.get(&path).body);
    for p in [&mut holder, &mut other] {
        p.wait(Duration::from_secs(20));
    }
    // After the resume it hears the other again (the end of its newest recording, which starts at the resume).
    let (samples, rate) = holder.heard_latest();
    let end = samples.len() as f64 / f64::from(rate);
    let heard = levels(&(samples, rate), &[700.0], end - 1.6, end - 0.1)[0];
    assert!((-16.0..-8.0).contains(&heard), "holder hears the other at {heard:.1} dB after resuming");
}

/// `DELETE /callLegs/<id>` hangs up one dialled leg (baresip sees the BYE);
/// the call, made through the API, stays. The outbound rule's
/// `localContactDomain` names us in the Contact (here the address the
/// bridge listens on, where baresip sends its in-dialog requests).
#[test]
fn deleting_a_leg_hangs_it_up_and_the_api_call_stays() {
    let (c, sip, dir) = bridge_with_space(&[]);
    let far = BaresipSetup::opus("far", 500.0, 22_940);
    let mut answerer = Baresip::answer(dir.path(), &far, 30);
    answerer.wait_ready();
    c.create(
        "/api/v1/outboundDialPlanRules",
        &format!("domain=far.example&sipProxy=127.0.0.1:{}&localContactDomain=127.0.0.1:{sip}", far.sip_port),
    );
    let space = c.create("/api/v1/coSpaces", "name=Out&uri=out");
    let call = c.create("/api/v1/calls", &format!("coSpace={space}"));
    let leg = c.post(&format!("/api/v1/calls/{call}/callLegs"), "remoteParty=far@far.example");
    let leg_path = leg.location.unwrap();
    assert!(common::eventually(|| c.get(&leg_path).body.contains("<state>connected</state>")), "{}", answerer.log());
    // Talk a little before hanging up.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.delete(&leg_path).status, 200);
    assert!(common::eventually(|| answerer.log().contains("terminated")), "{}", answerer.log());
    assert_eq!(c.get(&leg_path).status, 404);
    assert_eq!(total(&c.get("/api/v1/calls").body), 1, "the API's call stays");
    answerer.wait(Duration::from_secs(1));
}

/// `dtmfSequence` to a phone that offers no telephone-event goes by SIP
/// INFO (`application/dtmf-relay`), one key per INFO, in order, each after
/// the previous one was answered. (baresip cannot be made to leave
/// telephone-event out of its offer, so this phone is a raw one.)
#[test]
fn a_leg_without_telephone_event_is_sent_its_dtmf_sequence_by_info() {
    use peers::RawPhone;
    let (c, sip, _dir) = bridge_with_space(&[]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let phone = RawPhone::new(sip);
    phone.invite("dtmf-info-1", "room");
    let ok = phone.expect("200", Duration::from_secs(5)).unwrap_or_else(|| panic!("no 200:\n{}", c.log_text()));
    phone.ack(&ok, "dtmf-info-1", "room");
    assert!(!ok.contains("telephone-event"), "{ok}");
    let leg = common::ids(&c.get("/api/v1/callLegs").body)[0].clone();
    let answer = c.put(&format!("/api/v1/callLegs/{leg}"), "dtmfSequence=4%2A7");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut keys = Vec::new();
    for _ in 0..3 {
        let Some(info) = phone.expect("INFO", Duration::from_secs(5)) else { break };
        assert_eq!(peers::header(&info, "Content-Type"), "application/dtmf-relay", "{info}");
        let signal = info.lines().find_map(|l| l.strip_prefix("Signal=")).unwrap_or_default().to_string();
        keys.push(signal);
        // Answered, so the next key may go.
        let port = phone.port();
        let via = peers::header(&info, "Via");
        phone.send(&format!(
            "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: dtmf-info-1\r\nCSeq: {}\r\n\
             Contact: <sip:raw@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n",
            peers::header(&info, "From"),
            peers::header(&info, "To"),
            peers::header(&info, "CSeq"),
        ));
    }
    assert_eq!(keys, ["4", "*", "7"], "{}", c.log_text());
    assert!(!c.log_text().contains("4*7") && !c.log_text().contains("4%2A7"), "the sequence was logged");
}

/// `PUT /callLegs/<id> dtmfSequence` (how TMS and admin scripts get through
/// a far end's voice menu): a phone that offers telephone-event gets the
/// keys as RFC 4733 events in its audio stream, in order, each with its end,
/// and `,` pauses a second; a sequence with a key that is not DTMF is
/// refused with a parameter error; the sequence (often a PIN) is not shown
/// back.
#[test]
fn a_leg_is_sent_its_dtmf_sequence_as_telephone_events_and_a_bad_one_is_refused() {
    use confero_media::rtp::RtpPacket;
    use peers::RawPhone;
    let (c, sip, _dir) = bridge_with_space(&[]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let phone = RawPhone::new(sip);
    let audio = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    audio.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n",
        audio.local_addr().unwrap().port()
    );
    phone.invite_with("dtmf-out-1", "room", &sdp);
    let ok = phone.expect("200", Duration::from_secs(5)).unwrap_or_else(|| panic!("no 200:\n{}", c.log_text()));
    phone.ack(&ok, "dtmf-out-1", "room");
    assert!(ok.contains("telephone-event/8000"), "{ok}");
    let leg = common::ids(&c.get("/api/v1/callLegs").body)[0].clone();

    let bad = c.put(&format!("/api/v1/callLegs/{leg}"), "dtmfSequence=12x");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("parameter=\"dtmfSequence\" error=\"invalidValue\""), "{}", bad.body);

    let answer = c.put(&format!("/api/v1/callLegs/{leg}"), "dtmfSequence=1%23,9");
    assert_eq!(answer.status, 200, "{}", answer.body);
    // (event, start timestamp, an end came) per event, in arrival order.
    let mut events: Vec<(u8, u32, bool)> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline && !(events.len() == 3 && events.iter().all(|e| e.2)) {
        let Ok(n) = audio.recv(&mut buf) else { continue };
        let Ok(rtp) = RtpPacket::parse(&buf[..n]) else { continue };
        if rtp.payload_type() != 101 || rtp.payload().len() < 4 {
            continue;
        }
        let (event, end) = (rtp.payload()[0], rtp.payload()[1] & 0x80 != 0);
        match events.iter_mut().find(|e| e.1 == rtp.timestamp()) {
            Some(e) => e.2 |= end,
            None => events.push((event, rtp.timestamp(), end)),
        }
    }
    let keys: Vec<u8> = events.iter().map(|e| e.0).collect();
    assert_eq!(keys, vec![1, 11, 9], "events {events:?}\n{}", c.log_text());
    assert!(events.iter().all(|e| e.2), "every event ends: {events:?}");
    let pause = events[2].1.wrapping_sub(events[1].1);
    assert!(pause >= 8000, "the comma paused {pause} samples, under a second");
    let shown = c.get(&format!("/api/v1/callLegs/{leg}")).body;
    assert!(!shown.contains("dtmfSequence"), "{shown}");
    assert!(!c.log_text().contains("1#,9") && !c.log_text().contains("1%23,9"), "the sequence was logged");
}

/// A dial-out with a `dtmfSequence` (an audio bridge's PIN, as TMS books
/// it): once the baresip answers, it receives the keys as RFC 4733 events
/// (its own log says which).
#[test]
fn a_dialled_leg_is_sent_its_dtmf_sequence_once_it_answers() {
    let (c, _sip, dir) = bridge_with_space(&[]);
    let far = BaresipSetup::opus("bridge.pin", 0.0, 22_960);
    let mut answerer = Baresip::answer(dir.path(), &far, 20);
    answerer.wait_ready();
    c.create(
        "/api/v1/outboundDialPlanRules",
        &format!("domain=pin.example&sipProxy=127.0.0.1:{}&priority=10", far.sip_port),
    );
    let space = c.create("/api/v1/coSpaces", "name=Dialler&uri=dialler");
    let call = c.post("/api/v1/calls", &format!("coSpace={space}"));
    let call_id = common::id_from_location(call.location.as_deref().unwrap());
    let leg = c
        .post(&format!("/api/v1/calls/{call_id}/callLegs"), "remoteParty=bridge.pin@pin.example&dtmfSequence=4%2A7%23");
    assert_eq!(leg.status, 200, "{}", leg.body);
    // baresip's log line for an event's end packet.
    let got = |key: char| format!("received event: '{key}' (end=1)");
    let all = common::eventually(|| {
        let log = answerer.log();
        ['4', '*', '7', '#'].iter().all(|&k| log.contains(&got(k)))
    });
    let log = answerer.log();
    assert!(all, "baresip log:\n{log}\nconfero:\n{}", c.log_text());
    let order: Vec<usize> = ['4', '*', '7', '#'].iter().filter_map(|&k| log.find(&got(k))).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "keys out of order:\n{log}");
    assert!(!c.log_text().contains("4*7#") && !c.log_text().contains("4%2A7%23"), "the PIN was logged");
    answerer.wait(Duration::ZERO);
}

/// `dtmfProfiles` with a real phone: through `system/profiles`, `*6` mutes
/// the presser (its leg shows `rxAudioMute`, and its tone stops reaching the
/// other caller) and `#6` unmutes it (the tone comes back).
#[test]
fn a_dtmf_profile_lets_a_baresip_mute_and_unmute_itself() {
    let (c, sip, dir) = bridge_with_space(&[]);
    let profile = c.create("/api/v1/dtmfProfiles", "muteSelfAudio=*6&unmuteSelfAudio=%236");
    assert_eq!(c.put("/api/v1/system/profiles", &format!("dtmfProfile={profile}")).status, 200);
    c.create("/api/v1/coSpaces", "name=Desk&uri=desk");
    let (talker_setup, listener_setup) =
        (BaresipSetup::opus("talker", 500.0, 24_200), BaresipSetup::opus("listener", 700.0, 24_220));
    let mut listener = Baresip::dial(dir.path(), &listener_setup, &format!("sip:desk@127.0.0.1:{sip}"), 16);
    let mut talker = Baresip::dial(dir.path(), &talker_setup, &format!("sip:desk@127.0.0.1:{sip}"), 16);
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 2), "{}", talker.log());
    let talker_leg = || {
        common::ids(&c.get("/api/v1/callLegs").body)
            .into_iter()
            .map(|id| c.get(&format!("/api/v1/callLegs/{id}")).body)
            .find(|leg| element(leg, "remoteParty").is_some_and(|p| p.contains("talker")))
            .unwrap_or_default()
    };
    let muted = |leg: &str| leg.contains("<rxAudioMute>true</rxAudioMute>");
    std::thread::sleep(Duration::from_secs(3));
    talker.send_dtmf(talker_setup.ctrl_port, "*6");
    assert!(common::eventually(|| muted(&talker_leg())), "*6 did not mute: {}", talker_leg());
    std::thread::sleep(Duration::from_secs(4));
    talker.send_dtmf(talker_setup.ctrl_port, "#6");
    assert!(common::eventually(|| !muted(&talker_leg())), "#6 did not unmute: {}", talker_leg());
    talker.wait(Duration::from_secs(20));
    listener.wait(Duration::from_secs(20));

    // Half-second windows of the talker's tone in what the listener heard:
    // audible, then silent for seconds, then audible again.
    let (samples, rate) = listener.heard();
    let window = rate as usize / 2;
    let db: Vec<f64> = samples.chunks_exact(window).map(|w| tone_level_db(w, 500.0, rate)).collect();
    let first_silent = db.iter().skip(2).position(|&d| d < -40.0).map(|i| i + 2);
    let Some(start) = first_silent else { panic!("the talker was never muted for the listener: {db:?}") };
    let silent = db[start..].iter().take_while(|&&d| d < -40.0).count();
    assert!(db[..start].iter().any(|&d| d > -20.0), "audible before the mute: {db:?}");
    assert!(silent >= 4, "muted for {silent} half-seconds: {db:?}");
    assert!(db[start + silent..].iter().any(|&d| d > -20.0), "audible again after the unmute: {db:?}");
}

/// `POST /calls/<id>/participants remoteParty=...` rings a baresip through
/// an outbound rule; the answer's Location names the participant, which
/// shows in the call's participants once the phone answers.
#[test]
fn posting_a_participant_rings_a_baresip_that_then_shows_in_the_call() {
    let (c, _sip, dir) = bridge_with_space(&[]);
    let guest = BaresipSetup::opus("guest", 600.0, 24_240);
    let mut answerer = Baresip::answer(dir.path(), &guest, 20);
    answerer.wait_ready();
    c.create("/api/v1/outboundDialPlanRules", &format!("domain=guest.example&sipProxy=127.0.0.1:{}", guest.sip_port));
    let space = c.create("/api/v1/coSpaces", "name=Invite&uri=invite");
    let call = c.create("/api/v1/calls", &format!("coSpace={space}"));
    let added = c.post(&format!("/api/v1/calls/{call}/participants"), "remoteParty=guest@guest.example");
    assert_eq!(added.status, 200, "{}", added.body);
    let participant = added.location.expect("a Location");
    assert!(participant.starts_with("/api/v1/participants/"), "{participant}");
    let shown = || c.get(&format!("/api/v1/calls/{call}/participants")).body;
    assert!(
        common::eventually(|| shown().contains(&participant["/api/v1/participants/".len()..])
            && c.get(&participant).body.contains("connected")),
        "{}\n{}\n{}",
        shown(),
        c.get(&participant).body,
        answerer.log()
    );
    let missing = c.post("/api/v1/calls/00000000-0000-4000-8000-000000000000/participants", "remoteParty=x@y");
    assert!(missing.body.contains("callDoesNotExist"), "{}", missing.body);
    answerer.wait(Duration::from_secs(1));
}

/// An IVR with real phones: a baresip dials the IVR's URI, types a space's
/// call ID and `#` (RFC 4733), is moved into that space's meeting by our
/// re-INVITE, and the caller and the baresip already there hear each other.
#[test]
fn a_baresip_dials_an_ivr_types_a_meeting_id_and_joins_that_meeting() {
    let (c, sip, dir) = bridge_with_space(&[]);
    let ivr = c.create("/api/v1/ivrs", "uri=meet");
    assert!(c.get(&format!("/api/v1/ivrs/{ivr}")).body.contains("<uri>meet</uri>"));
    let clash = c.post("/api/v1/coSpaces", "name=Clash&uri=meet");
    assert!(clash.status == 400 && clash.body.contains("duplicateCoSpaceUri"), "{}", clash.body);
    c.create("/api/v1/coSpaces", "name=Team&uri=team&callId=4321");
    let (host_setup, caller_setup) =
        (BaresipSetup::opus("host", 440.0, 24_260), BaresipSetup::opus("caller", 880.0, 24_280));
    // The host outlasts the caller, so the caller hears it for as long as it
    // is in the meeting, however late the move comes on a loaded machine.
    let mut host = Baresip::dial(dir.path(), &host_setup, &format!("sip:team@127.0.0.1:{sip}"), 26);
    let mut caller = Baresip::dial(dir.path(), &caller_setup, &format!("sip:meet@127.0.0.1:{sip}"), 20);
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 2), "{}", caller.log());
    assert_eq!(total(&c.get("/api/v1/calls").body), 1, "the IVR is not a call");
    std::thread::sleep(Duration::from_secs(1));
    caller.send_dtmf(caller_setup.ctrl_port, "4321#");
    let call = common::ids(&c.get("/api/v1/calls").body)[0].clone();
    assert!(
        common::eventually(|| total(&c.get(&format!("/api/v1/calls/{call}/callLegs")).body) == 2),
        "the caller never reached the meeting\n{}\n{}",
        caller.log(),
        c.log_text()
    );
    caller.wait(Duration::from_secs(25));
    host.wait(Duration::from_secs(15));
    // Each hears the other: the caller in its newest recording (it began with
    // our re-INVITE); the host in the second it hears the caller best, since
    // when the caller came in depends on the machine's load (a CI run saw
    // the move 13 s after the dial).
    let caller_hears = loudest_second(&caller.heard_latest(), &[440.0, 880.0]);
    let host_hears = loudest_second(&host.heard(), &[880.0, 440.0]);
    assert!(caller_hears[0] > -20.0 && caller_hears[1] < -40.0, "the caller hears {caller_hears:?}");
    assert!(host_hears[0] > -20.0 && host_hears[1] < -40.0, "the host hears {host_hears:?}");
}

/// A call branding profile's recording replaces the passcode tones: the
/// profile (named by `system/profiles`) points at a web directory holding
/// `passcode_entry.wav` (a 1 kHz tone recorded at 16 kHz, as CMS takes
/// them); once fetched, a caller to a space with a passcode hears it, not
/// the tones.
#[test]
fn a_call_branding_profile_s_recording_is_the_passcode_prompt() {
    let (c, sip, dir) = bridge_with_space(&[]);
    let files = dir.path().join("brand");
    std::fs::create_dir_all(&files).unwrap();
    let tone: Vec<i16> = (0..24_000)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 16_000.0).sin()) as i16)
        .collect();
    std::fs::write(files.join("passcode_entry.wav"), confero_media::engine::wav::write_wav(&tone, 16_000)).unwrap();
    let server = peers::FileServer::start(&files);
    let location = server.url("");
    let profile = c.create("/api/v1/callBrandingProfiles", &format!("resourceLocation={location}"));
    assert_eq!(c.put("/api/v1/system/profiles", &format!("callBrandingProfile={profile}")).status, 200);
    let fetched = format!("branding: {location}: 1 of 5 prompts recorded");
    assert!(common::eventually(|| c.log_text().contains(&fetched)), "{}", c.log_text());

    c.create("/api/v1/coSpaces", "name=Branded&uri=branded&passcode=2468");
    let setup = BaresipSetup::opus("caller", 440.0, 22_600);
    let mut caller = Baresip::dial(dir.path(), &setup, &format!("sip:branded@127.0.0.1:{sip}"), 5);
    caller.wait(Duration::from_secs(15));
    let heard = levels(&caller.heard(), &[1000.0, 523.25], 0.5, 3.5);
    assert!(heard[0] > -45.0 && heard[1] < -40.0, "the recording, not the tones: {heard:?}\n{}", caller.log());
}

/// Host and guests on one number (as the CMS reference describes): the
/// space and its guests' access method share a URI, told apart by
/// passcode; the guests' has a `needsActivation` profile. A baresip typing
/// the guests' passcode hears the waiting tones and is `deactivated` until
/// one typing the host's passcode is in; then the two hear each other;
/// when the host hangs up, the guest waits again.
#[test]
fn a_guest_waits_for_the_host_then_they_hear_each_other() {
    const HOST_SECONDS: u32 = 16;
    let (c, sip, dir) = bridge_with_space(&[]);
    let guests = c.create("/api/v1/callLegProfiles", "needsActivation=true");
    let space = c.create("/api/v1/coSpaces", "name=Clinic&uri=clinic&passcode=1111");
    let methods = format!("/api/v1/coSpaces/{space}/accessMethods");
    c.create(&methods, &format!("uri=clinic&passcode=2222&callLegProfile={guests}"));
    let (guest_setup, host_setup) =
        (BaresipSetup::opus("guest", 600.0, 24_300), BaresipSetup::opus("host", 900.0, 24_320));
    let uri = format!("sip:clinic@127.0.0.1:{sip}");
    // When things happened, on the wall clock: the guest's recording starts
    // when its call is set up, between its dial and its leg showing, so a
    // moment of the call is known in the recording to within that span.
    let dialled = std::time::Instant::now();
    let mut guest = Baresip::dial(dir.path(), &guest_setup, &uri, 38);
    let leg = || {
        let legs = c.get("/api/v1/callLegs").body;
        common::ids(&legs).first().map(|id| c.get(&format!("/api/v1/callLegs/{id}")).body).unwrap_or_default()
    };
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 1), "{}", guest.log());
    let shown = dialled.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(800));
    guest.send_dtmf(guest_setup.ctrl_port, "2222#");
    assert!(common::eventually(|| element(&leg(), "deactivated") == Some("true")), "{}\n{}", leg(), guest.log());
    std::thread::sleep(Duration::from_secs(6));
    let host_dialled = dialled.elapsed().as_secs_f64();
    let mut host = Baresip::dial(dir.path(), &host_setup, &uri, HOST_SECONDS);
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 2), "{}", host.log());
    std::thread::sleep(Duration::from_millis(800));
    let host_typed = dialled.elapsed().as_secs_f64();
    host.send_dtmf(host_setup.ctrl_port, "1111#");
    assert!(common::eventually(|| element(&leg(), "deactivated") == Some("false")), "{}", leg());
    let activated = dialled.elapsed().as_secs_f64();
    host.wait(Duration::from_secs(25));
    let host_gone = dialled.elapsed().as_secs_f64();
    guest.wait(Duration::from_secs(25));

    // The guest waiting: the waiting tones (G4 every 5 s), no host; with
    // the host: the host's tone and no waiting tones; after the host left
    // (deactivationMode deactivate): waiting again. Each window is where
    // that state surely held: a moment between two wall-clock marks lies in
    // the recording between the earlier mark less `shown` and the later one.
    let heard = guest.heard();
    let waiting = levels(&heard, &[392.0, 900.0], 1.5, host_typed - shown);
    assert!(waiting[0] > -45.0 && waiting[1] < -60.0, "while waiting the guest hears {waiting:?}");
    // The host stays its seconds from its dial (baresip's timer starts later).
    let with_host = (activated + 0.5, host_dialled + f64::from(HOST_SECONDS) - shown - 0.5);
    let no_waiting = levels(&heard, &[392.0], with_host.0, with_host.1)[0];
    let rate = f64::from(heard.1);
    let part = heard.0[(with_host.0 * rate) as usize..((with_host.1 * rate) as usize).min(heard.0.len())].to_vec();
    let host_loudest = loudest_second(&(part, heard.1), &[900.0]);
    assert!(
        host_loudest[0] > -20.0 && no_waiting < -60.0,
        "with the host ({with_host:?} s) the guest hears it at {host_loudest:?} dB and the waiting tones at {no_waiting} dB"
    );
    let seconds = heard.0.len() as f64 / f64::from(heard.1);
    let again = levels(&heard, &[392.0, 900.0], host_gone + 1.0, seconds - 0.5);
    assert!(again[0] > -45.0 && again[1] < -60.0, "after the host left the guest hears {again:?}");
    let host_hears = levels(&host.heard(), &[600.0], 3.0, 8.0);
    assert!(host_hears[0] > -20.0, "the host hears {host_hears:?}");
}
