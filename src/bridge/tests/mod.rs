//! The bridge in virtual time: SIP phones on the other side of our user
//! agent, a fake media engine, no sockets and no sleeps (see `harness.rs`).

mod fecc;
mod harness;

use std::time::Duration;

use confero_api::bridge::LegState;
use confero_media::engine::{EndpointId, Prompt};
use confero_media::runtime::{ConferenceId, MediaEvent, MediaTransport};
use confero_sdp::Direction;
use confero_sip::message::{Message, Method};
use confero_sip::transaction::{Peer, Transport};
use confero_sip::ua::CallHandle;
use confero_store::schema::Kind;

use super::CdrRecord;
use crate::testing::{create, leg_changes, set};
use fecc::fecc_of;
use harness::Harness;

/// Where an endpoint's audio goes.
fn remote_audio(e: &harness::FakeEndpoint) -> Option<std::net::SocketAddr> {
    match &e.spec.transport {
        MediaTransport::Rtp(t) => Some(t.audio.rtp),
        _ => None,
    }
}

/// The endpoint of the leg phone `p`'s call became: the one whose remote RTP
/// port is the phone's.
fn endpoint_of(h: &Harness, p: usize) -> Option<EndpointId> {
    let port = h.phones[p].addr.port() + 10_000;
    h.media.state().endpoints.iter().find(|(_, e)| remote_audio(e).map(|a| a.port()) == Some(port)).map(|(id, _)| *id)
}

fn conference() -> ConferenceId {
    ConferenceId(0)
}

fn dtmf(h: &mut Harness, endpoint: EndpointId, digits: &str) {
    for digit in digits.chars() {
        h.media_event(MediaEvent::Dtmf { conference: conference(), endpoint, digit });
    }
}

/// Phone `p` sends `digits` by SIP INFO (`application/dtmf-relay`) in the
/// dialog of its answered call.
fn info_digits(h: &mut Harness, p: usize, digits: &str) {
    let ok = h.phones[p]
        .received
        .iter()
        .find(|m| m.code() == Some(200) && m.cseq().is_some_and(|c| c.method == Method::Invite))
        .cloned()
        .expect("the bridge answered the phone's INVITE");
    let target = ok.contact().map(|c| c.uri).expect("a Contact in the 200");
    for digit in digits.chars() {
        h.phones[p].crafted_cseq += 1;
        let n = h.phones[p].crafted_cseq;
        let mut info = Message::request(Method::Info, target.clone());
        let addr = h.phones[p].addr;
        info.push("Via", format!("SIP/2.0/UDP {addr};branch=z9hG4bKinfo{p}x{n}"));
        info.push("Max-Forwards", "70");
        info.push("From", ok.get("From").unwrap_or_default().to_string());
        info.push("To", ok.get("To").unwrap_or_default().to_string());
        info.push("Call-ID", ok.call_id().unwrap_or_default().to_string());
        info.push("CSeq", format!("{n} INFO"));
        info.push("Content-Type", "application/dtmf-relay");
        info.body = format!("Signal={digit}\r\nDuration=160\r\n").into_bytes();
        h.raw_from_phone(p, &info.to_bytes());
    }
}

/// A space `team` with one phone dialled in: the phone and its call.
fn one_caller(h: &mut Harness) -> (usize, CallHandle) {
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let p = h.phone();
    let call = h.dial_in(p, "team");
    assert!(h.phones[p].answered(call), "the phone was answered");
    (p, call)
}

/// `n` new phones, each dialled into `user`: each phone and its call.
fn callers(h: &mut Harness, n: usize, user: &str) -> Vec<(usize, CallHandle)> {
    (0..n)
        .map(|_| {
            let p = h.phone();
            (p, h.dial_in(p, user))
        })
        .collect()
}

fn leg_ends(h: &Harness) -> Vec<&'static str> {
    h.cdrs
        .iter()
        .filter_map(|r| match r {
            CdrRecord::CallLegEnd { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_caller_reaches_a_space_by_uri_call_id_or_access_method() {
    let mut h = Harness::new();
    let space = create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team"), ("callId", "1234")]);
    create(&*h.store, Kind::AccessMethod, Some(space.id), &[("uri", "guests"), ("callId", "5678")]);
    let mut calls = Vec::new();
    for user in ["team", "TEAM", "1234", "guests", "5678"] {
        let p = h.phone();
        calls.push((p, h.dial_in(p, user)));
    }
    for (p, call) in &calls {
        assert!(h.phones[*p].answered(*call), "phone {p} was answered");
    }
    let p = h.phone();
    let nobody = h.dial_in(p, "nobody");
    assert_eq!(h.phones[p].failed(nobody), Some(404));

    let live = h.with(|b, now| b.calls(now));
    assert_eq!(live.len(), 1, "one call for the space");
    assert_eq!(live[0].co_space, Some(space.id));
    assert_eq!(live[0].num_call_legs, 5);
    let legs = h.with(|b, now| b.call_legs(now));
    assert!(legs.iter().all(|l| l.state == LegState::Connected && l.name.starts_with("Phone ")));
    assert_eq!(h.media.state().endpoints.len(), 5);
    assert_eq!(h.cdr_types().iter().filter(|t| **t == "callLegStart").count(), 5);
    assert_eq!(h.cdr_types()[0], "callStart");
}

#[test]
fn the_passcode_lobby_lets_in_the_right_digits_by_rfc_4733_or_info_and_drops_three_wrong() {
    let mut h = Harness::new();
    create(&*h.store, Kind::CoSpace, None, &[("name", "Locked"), ("uri", "locked"), ("passcode", "4321")]);
    let (a, b, c) = (h.phone(), h.phone(), h.phone());
    let (call_a, call_b, call_c) = (h.dial_in(a, "locked"), h.dial_in(b, "locked"), h.dial_in(c, "locked"));
    assert!(h.phones[a].answered(call_a) && h.phones[b].answered(call_b) && h.phones[c].answered(call_c));
    let (ea, eb, ec) = (endpoint_of(&h, a).unwrap(), endpoint_of(&h, b).unwrap(), endpoint_of(&h, c).unwrap());
    let prompt = |h: &Harness, e: EndpointId| h.media.state().endpoints[&e].prompt.clone();
    for e in [ea, eb, ec] {
        assert!(prompt(&h, e) == Some(Prompt::enter_passcode()), "in the lobby");
    }

    // A: the right passcode by RFC 4733 telephone-events.
    dtmf(&mut h, ea, "4321#");
    assert!(prompt(&h, ea).is_none(), "let in");

    // B: one wrong by INFO, then the right one by INFO.
    info_digits(&mut h, b, "99#");
    assert!(prompt(&h, eb) == Some(Prompt::wrong_passcode()), "told it was wrong");
    info_digits(&mut h, b, "4321#");
    assert!(prompt(&h, eb).is_none(), "let in after one wrong");

    // C: three wrong, mixing both ways: hung up.
    dtmf(&mut h, ec, "1#");
    info_digits(&mut h, c, "2#");
    assert!(!h.phones[c].hung_up_on(call_c), "two wrong are allowed");
    dtmf(&mut h, ec, "3#");
    assert_eq!(prompt(&h, ec), Some(Prompt::goodbye()), "goodbye after the third wrong passcode");
    assert!(!h.phones[c].hung_up_on(call_c), "heard to its end first");
    h.advance(Prompt::goodbye().duration() + Duration::from_millis(500));
    assert!(h.phones[c].hung_up_on(call_c), "the third wrong passcode hangs up");
    assert!(!h.media.state().endpoints.contains_key(&ec));
    assert_eq!(leg_ends(&h), vec!["localTeardown"]);
    assert_eq!(h.with(|b, now| b.call_legs(now)).len(), 2);
}

#[test]
fn a_dial_out_goes_to_the_next_rule_when_the_first_fails_and_looks_up_names() {
    let mut h = Harness::new();
    let (busy, good) = (h.phone(), h.phone());
    let busy_addr = h.phones[busy].addr.to_string();
    h.dns.insert("proxy-b.test".into(), h.phones[good].addr.ip());
    let good_proxy = format!("proxy-b.test:{}", h.phones[good].addr.port());
    create(
        &*h.store,
        Kind::OutboundDialPlanRule,
        None,
        &[("domain", "example.com"), ("priority", "10"), ("sipProxy", &busy_addr), ("failureAction", "continue")],
    );
    create(
        &*h.store,
        Kind::OutboundDialPlanRule,
        None,
        &[("domain", "example.com"), ("priority", "5"), ("sipProxy", &good_proxy), ("localFromDomain", "ours.test")],
    );
    let call = h.with(|b, now| b.create_call(now, Default::default())).expect("a call");
    let leg = h.with(|b, now| b.dial(now, call.id, "bob@example.com", &[])).expect("a leg");

    let (rejected, _) = h.phones[busy].incoming().pop().expect("the first rule's proxy was tried");
    h.on_phone(busy, |p, now| p.ua.reject(now, rejected, 486)).expect("reject");
    let (answered, offer) = h.phones[good].incoming().pop().expect("then the second rule's");
    let answer = h.phones[good].answer(&offer);
    h.on_phone(good, |p, now| p.ua.accept(now, answered, answer)).expect("accept");

    let legs = h.with(|b, now| b.call_legs(now));
    assert_eq!(legs.len(), 1);
    assert_eq!((legs[0].id, legs[0].state), (leg.id, LegState::Connected));
    let invite = h.phones[good].received.iter().find(|m| m.method() == Some(Method::Invite)).unwrap();
    assert!(invite.get("From").unwrap_or_default().contains("@ours.test"), "the second rule's From domain");
    assert!(invite.get("Route").unwrap_or_default().contains("proxy-b.test"));
    assert_eq!(h.media.state().endpoints.len(), 1);
    assert!(leg_ends(&h).is_empty());
    // Our offer carried H.224 at the runtime's FECC port, and the phone's answer attached it.
    let body = String::from_utf8_lossy(&invite.body).to_string();
    assert!(body.contains("m=application 20004 RTP/AVP 107\r\na=rtpmap:107 H224/4800\r\n"), "{body}");
    let endpoint = *h.media.state().endpoints.keys().next().unwrap();
    let fecc = fecc_of(&h, endpoint).expect("H.224 attached");
    assert_eq!(fecc.addresses.rtp.port(), h.phones[good].addr.port() + 10_004);
}

#[test]
fn a_dial_out_falls_over_to_its_route_s_next_server_and_honours_sip_control_encryption() {
    let mut h = Harness::new();
    let (good, tls) = (h.phone(), h.phone());
    // The first server never answers (Timer B: 408), the second does.
    let dead = Peer { transport: Transport::Udp, addr: "127.0.0.1:5999".parse().unwrap() };
    let second = Peer { transport: Transport::Udp, addr: h.phones[good].addr };
    h.servers.insert("srv.test".into(), vec![dead, second]);
    let call = h.with(|b, now| b.create_call(now, Default::default())).expect("a call");
    let leg = h.with(|b, now| b.dial(now, call.id, "bob@srv.test", &[])).expect("a leg");
    assert!(h.phones[good].incoming().is_empty(), "the first server is tried first");
    h.advance(Duration::from_secs(40));
    let (answered, offer) = h.phones[good].incoming().pop().expect("then the second");
    let answer = h.phones[good].answer(&offer);
    h.on_phone(good, |p, now| p.ua.accept(now, answered, answer)).expect("accept");
    let legs = h.with(|b, now| b.call_legs(now));
    assert_eq!((legs[0].id, legs[0].state), (leg.id, LegState::Connected));

    // `encrypted`: TLS to the proxy (the Via says so); a `sips:` target
    // cannot go through an `unencrypted` rule, and with no other it ends.
    let proxy = h.phones[tls].addr.to_string();
    create(
        &*h.store,
        Kind::OutboundDialPlanRule,
        None,
        &[("domain", "tls.test"), ("sipProxy", &proxy), ("sipControlEncryption", "encrypted")],
    );
    h.with(|b, now| b.dial(now, call.id, "carol@tls.test", &[])).expect("a leg");
    let invite = h.phones[tls].received.iter().find(|m| m.method() == Some(Method::Invite)).expect("an INVITE");
    assert!(invite.get("Via").unwrap_or_default().starts_with("SIP/2.0/TLS"), "{:?}", invite.get("Via"));
    create(
        &*h.store,
        Kind::OutboundDialPlanRule,
        None,
        &[("domain", "plain.test"), ("sipControlEncryption", "unencrypted")],
    );
    h.with(|b, now| b.dial(now, call.id, "sips:dave@plain.test", &[])).expect("a leg");
    assert_eq!(leg_ends(&h), vec!["dnsFailure"]);
}

#[test]
fn a_dial_out_with_no_route_left_ends_with_the_cms_reason() {
    let mut h = Harness::new();
    let call = h.with(|b, now| b.create_call(now, Default::default())).expect("a call");
    // A name nobody resolves, with no rules: straight to the domain.
    h.with(|b, now| b.dial(now, call.id, "bob@nowhere.test", &[])).expect("a leg");
    assert_eq!(leg_ends(&h), vec!["dnsFailure"]);
    // An address with nobody there: Timer B (64·T1) ends it as a SIP failure.
    h.with(|b, now| b.dial(now, call.id, "bob@127.0.0.1:5999", &[])).expect("a leg");
    assert_eq!(h.with(|b, now| b.call_legs(now)).len(), 1);
    h.advance(Duration::from_secs(40));
    assert_eq!(leg_ends(&h), vec!["dnsFailure", "sipFailure"]);
}

#[test]
fn hold_and_resume_follow_the_far_end_s_offers() {
    let mut h = Harness::new();
    let (p, call) = one_caller(&mut h);
    let hold = h.phones[p].offer(Direction::SendOnly, 2);
    h.on_phone(p, |ph, now| ph.ua.reinvite(now, call, hold)).expect("re-INVITE");
    let legs = h.with(|b, now| b.call_legs(now));
    assert_eq!(legs[0].state, LegState::OnHold);
    let e = endpoint_of(&h, p).expect("its endpoint");
    assert!(h.media.state().endpoints[&e].tx_muted, "nothing is sent to a held leg");
    // A held call may be silent.
    h.media_event(MediaEvent::MediaTimeout { conference: conference(), endpoint: e });
    assert_eq!(h.with(|b, now| b.call_legs(now)).len(), 1);

    let resume = h.phones[p].offer(Direction::SendRecv, 3);
    h.on_phone(p, |ph, now| ph.ua.reinvite(now, call, resume)).expect("re-INVITE");
    assert_eq!(h.with(|b, now| b.call_legs(now))[0].state, LegState::Connected);
    let e = endpoint_of(&h, p).expect("its endpoint");
    assert!(!h.media.state().endpoints[&e].tx_muted);
    let updates: Vec<LegState> = h
        .cdrs
        .iter()
        .filter_map(|r| match r {
            CdrRecord::CallLegUpdate { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(updates, vec![LegState::Connected, LegState::OnHold, LegState::Connected]);
}

#[test]
fn a_re_invite_moving_the_media_gets_a_new_endpoint_in_place_of_the_old() {
    let mut h = Harness::new();
    let (p, call) = one_caller(&mut h);
    let old = endpoint_of(&h, p).expect("its endpoint");
    // The phone moves its media to another port (and new keys with it).
    let offer = String::from_utf8(h.phones[p].offer(Direction::SendRecv, 2)).unwrap();
    let moved = offer.replace(&format!("m=audio {} ", h.phones[p].addr.port() + 10_000), "m=audio 31000 ");
    h.on_phone(p, |ph, now| ph.ua.reinvite(now, call, moved.into_bytes())).expect("re-INVITE");
    let state = h.media.state();
    assert_eq!(state.detached, vec![old]);
    assert_eq!(state.endpoints.len(), 1);
    let (_, new) = state.endpoints.iter().next().unwrap();
    assert_eq!(remote_audio(new).map(|a| a.port()), Some(31000));
    drop(state);
    assert!(h.phones[p].events.iter().any(|e| matches!(e, confero_sip::ua::UaEvent::ReofferAnswered { .. })));
}

#[test]
fn a_leg_silent_past_the_media_timeout_is_hung_up_and_its_call_ends() {
    let mut h = Harness::new();
    let (p, call) = one_caller(&mut h);
    let e = endpoint_of(&h, p).expect("its endpoint");
    h.media_event(MediaEvent::MediaTimeout { conference: conference(), endpoint: e });
    assert!(h.phones[p].hung_up_on(call), "BYE");
    assert_eq!(leg_ends(&h), vec!["timeout"]);
    assert_eq!(h.cdr_types().last(), Some(&"callEnd"), "a dialled-in call ends with its last leg");
    assert!(h.with(|b, now| b.calls(now)).is_empty());
}

#[test]
fn deleting_a_call_hangs_up_every_leg() {
    let mut h = Harness::new();
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let (a, b) = (h.phone(), h.phone());
    let (call_a, call_b) = (h.dial_in(a, "team"), h.dial_in(b, "team"));
    let call = h.with(|b, now| b.calls(now))[0].id;
    h.with(|b, now| b.end_call(now, call)).expect("ended");
    assert!(h.phones[a].hung_up_on(call_a) && h.phones[b].hung_up_on(call_b));
    assert_eq!(leg_ends(&h), vec!["callDeactivated", "callDeactivated"]);
    assert_eq!(h.cdr_types().last(), Some(&"callEnd"));
    assert!(h.media.state().conferences.is_empty());
    assert_eq!(h.with(|b, now| b.end_call(now, call)), Err(confero_api::bridge::BridgeError::CallDoesNotExist));
}

#[test]
fn calls_over_capacity_get_503() {
    // The user agent's own gate.
    let mut h = Harness::with_max_calls(2);
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let calls = callers(&mut h, 3, "team");
    assert!(h.phones[calls[0].0].answered(calls[0].1) && h.phones[calls[1].0].answered(calls[1].1));
    assert_eq!(h.phones[calls[2].0].failed(calls[2].1), Some(503));

    // The media engine out of room for a new conference.
    create(&*h.store, Kind::CoSpace, None, &[("name", "Other"), ("uri", "other")]);
    h.media.state().full = true;
    let p = h.phone();
    let c = h.dial_in(p, "other");
    assert_eq!(h.phones[p].failed(c), Some(503));
}

#[test]
fn shutdown_hangs_up_every_leg_and_ends_every_call_in_cdrs() {
    let mut h = Harness::new();
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let calls = callers(&mut h, 3, "team");
    h.with(|b, now| b.shutdown(now));
    for (p, call) in &calls {
        assert!(h.phones[*p].hung_up_on(*call), "phone {p} got a BYE");
    }
    assert_eq!(leg_ends(&h).len(), 3);
    assert_eq!(h.cdr_types().last(), Some(&"callEnd"));
    assert_eq!(h.sip.call_count(), 0, "every BYE was answered");
    let p = h.phone();
    let late = h.dial_in(p, "team");
    assert_eq!(h.phones[p].failed(late), Some(503), "no new calls while closing");
}

#[test]
fn a_profile_chain_decides_a_dialled_in_leg_s_settings() {
    let mut h = Harness::new();
    let profile =
        create(&*h.store, Kind::CallLegProfile, None, &[("rxAudioMute", "true"), ("defaultLayout", "speakerOnly")]);
    let id = profile.id.to_string();
    set(&*h.store, Kind::SystemProfiles, &[("callLegProfile", &id)]);
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let p = h.phone();
    h.dial_in(p, "team");
    let e = endpoint_of(&h, p).expect("its endpoint");
    let state = h.media.state();
    assert!(state.endpoints[&e].rx_muted, "the system profile's rxAudioMute");
    let layout = state.endpoints[&e].video.as_ref().map(|v| v.layout.clone());
    assert_eq!(layout, Some(confero_media::video::layout::Layout::SpeakerOnly.into()));
}

/// A call leg profile's `layoutTemplate` is drawn in place of the leg's
/// layout; a template that is missing or was never uploaded leaves it.
#[test]
fn a_profile_s_layout_template_replaces_the_layout() {
    use confero_media::video::layout::{Layout, ViewLayout};
    let mut h = Harness::new();
    let template = create(&*h.store, Kind::LayoutTemplate, None, &[("name", "side")]);
    let profile = create(&*h.store, Kind::CallLegProfile, None, &[("layoutTemplate", &template.id.to_string())]);
    let profile_id = profile.id.to_string();
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team"), ("callLegProfile", &profile_id)]);
    let layout_of = |h: &Harness, p| {
        let e = endpoint_of(h, p).expect("its endpoint");
        h.media.state().endpoints[&e].video.as_ref().map(|v| v.layout.clone())
    };
    // No JSON uploaded yet: the CMS layout.
    let first = h.phone();
    h.dial_in(first, "team");
    assert_eq!(layout_of(&h, first), Some(ViewLayout::Cms(Layout::Automatic)));
    let json = r#"{"layouts": [{"panes": [{"x": 0, "y": 0, "width": 60, "height": 100},
                                           {"x": 60, "y": 0, "width": 40, "height": 50}]}]}"#;
    let write = confero_store::RecordWrite {
        collection: confero_store::layout_template::LAYOUT_TEMPLATES,
        id: template.id,
        body: Some(json.to_string()),
    };
    h.store.write_records(&[write]).unwrap();
    let second = h.phone();
    h.dial_in(second, "team");
    let Some(ViewLayout::Template(t)) = layout_of(&h, second) else { panic!("{:?}", layout_of(&h, second)) };
    assert_eq!(t.pane_count(1), 2);
    let mut panes = Vec::new();
    t.panes(1, 1000, 500, &mut panes);
    assert_eq!((panes[1].x, panes[1].width, panes[1].height), (600, 400, 250));
}

#[test]
fn a_leg_whose_endpoint_the_media_engine_refuses_is_hung_up() {
    let mut h = Harness::new();
    let (p, call) = one_caller(&mut h);
    let e = endpoint_of(&h, p).expect("its endpoint");
    h.media_event(MediaEvent::AttachFailed { conference: conference(), endpoint: e, reason: "refused".into() });
    assert!(h.phones[p].hung_up_on(call), "BYE");
    assert_eq!(leg_ends(&h), vec!["mediaNegotiationFailure"]);
}

/// A browser's offer as Chromium writes it: audio and video bundled, ICE
/// credentials, a DTLS fingerprint, `actpass`.
const BROWSER_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Ab12\r\n\
a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 \
0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:110 telephone-event/48000\r\na=ssrc:1001 cname:x\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Ab12\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack pli\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=ssrc:2001 cname:x\r\n";

fn web_join(call_id: &str, passcode: Option<&str>, secret: Option<&str>) -> confero_api::bridge::WebJoin {
    confero_api::bridge::WebJoin {
        call_id: call_id.into(),
        passcode: passcode.map(str::to_string),
        secret: secret.map(str::to_string),
        name: "Ana".into(),
        offer: BROWSER_OFFER.into(),
    }
}

/// A browser joins by meeting ID and passcode (or the join link's secret)
/// as a Web leg with an ICE transport; a wrong ID or passcode makes no leg.
#[test]
fn a_browser_joins_by_meeting_id_and_passcode_or_secret() {
    use confero_api::bridge::WebJoinError;
    let mut h = Harness::new();
    let space = create(
        &*h.store,
        Kind::CoSpace,
        None,
        &[("name", "Team"), ("uri", "team"), ("callId", "4242"), ("passcode", "77")],
    );
    let secret = space.get("secret").expect("a space has a secret").to_string();
    let meeting = h.with(|b, _| b.web_meeting("4242", None)).unwrap();
    assert!(meeting.passcode_required && meeting.name == "Team");
    assert!(!h.with(|b, _| b.web_meeting("4242", Some(&secret))).unwrap().passcode_required);
    assert_eq!(h.with(|b, _| b.web_meeting("999", None)), Err(WebJoinError::MeetingNotFound));

    assert_eq!(h.with(|b, now| b.join_web(now, web_join("4242", Some("78"), None))), Err(WebJoinError::WrongPasscode));
    assert_eq!(
        h.with(|b, now| b.join_web(now, web_join("4243", Some("77"), None))),
        Err(WebJoinError::MeetingNotFound)
    );
    assert_eq!(h.with(|b, _| b.leg_count()), 0);

    let joined = h.with(|b, now| b.join_web(now, web_join("4242", Some("77"), None))).expect("joined");
    assert!(joined.answer.contains("a=ice-lite") && joined.answer.contains("a=setup:passive"), "{}", joined.answer);
    let by_secret = h.with(|b, now| b.join_web(now, web_join("4242", None, Some(&secret)))).expect("joined by secret");
    assert_eq!(by_secret.call, joined.call);
    let state = h.media.state();
    let ice = state.endpoints.values().filter(|e| matches!(e.spec.transport, MediaTransport::Ice(_))).count();
    assert_eq!(ice, 2);
    drop(state);
    let legs = h.with(|b, now| b.call_legs(now));
    assert!(legs.iter().all(|l| l.state == LegState::Connected && l.encrypted_media && l.name == "Ana"), "{legs:?}");
    assert!(h.cdrs.iter().any(|c| c.to_xml().contains("<type>acano</type>")));

    // Media consent lapses (or the API ends it): the leg ends like any other.
    let e = state_endpoint_of(&h, joined.call_leg);
    h.media_event(MediaEvent::MediaTimeout { conference: conference(), endpoint: e });
    assert_eq!(h.with(|b, _| b.leg_count()), 1);
}

fn state_endpoint_of(h: &Harness, leg: uuid::Uuid) -> EndpointId {
    h.bridge.leg(leg).and_then(|l| l.endpoint).expect("the leg's endpoint")
}

/// `dtmfSequence` to a SIP leg that negotiated no telephone-event goes by
/// SIP INFO (`application/dtmf-relay`), one key at a time.
#[test]
fn dtmf_to_a_leg_without_telephone_event_goes_by_info() {
    let mut h = Harness::new();
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let p = h.phone();
    let offer = h.phones[p].offer(Direction::SendRecv, 1);
    let mut offer = confero_sdp::SessionDescription::parse(&offer).unwrap();
    let audio = &mut offer.media[0];
    audio.formats.retain(|f| f != "100" && f != "101");
    audio.lines.retain(|l| !l.value.contains(":100 ") && !l.value.contains(":101 "));
    let call = h.dial_in_with(p, "team", offer.to_text().into_bytes());
    assert!(h.phones[p].answered(call), "the phone was answered");
    let leg = h.with(|b, now| b.call_legs(now))[0].id;
    let changes = leg_changes(&[("dtmfSequence", "12")]);
    h.with(|b, now| b.update_call_leg(now, leg, &changes)).unwrap();
    for _ in 0..10 {
        h.advance(Duration::from_millis(200));
    }
    let infos: Vec<String> = h.phones[p]
        .received
        .iter()
        .filter(|m| m.cseq().is_some_and(|c| c.method == Method::Info))
        .map(|m| String::from_utf8_lossy(&m.body).to_string())
        .collect();
    assert_eq!(infos, ["Signal=1\r\nDuration=100\r\n", "Signal=2\r\nDuration=100\r\n"]);
}

/// `dtmfProfiles` through `system/profiles`: `*6` toggles the presser's own
/// mute, `**6` mutes everyone else, `#3` moves to the next layout, `*9#` mutes
/// new legs as they join (the last two as the call leg profile allows);
/// `endCall` is refused by the profile, and allowed once the leg itself says
/// so.
#[test]
fn a_dtmf_profile_s_sequences_act_on_the_call_as_its_profiles_allow() {
    let mut h = Harness::new();
    let profile = create(
        &*h.store,
        Kind::DtmfProfile,
        None,
        &[
            ("toggleMuteSelfAudio", "*6"),
            ("muteAllExceptSelfAudio", "**6"),
            ("nextLayout", "#3"),
            ("muteAllNewAudio", "*9#"),
            ("endCall", "*0"),
        ],
    );
    let no_end = create(
        &*h.store,
        Kind::CallLegProfile,
        None,
        &[("muteOthersAllowed", "true"), ("changeJoinAudioMuteOverrideAllowed", "true"), ("endCallAllowed", "false")],
    );
    let (dtmf_id, no_end_id) = (profile.id.to_string(), no_end.id.to_string());
    set(&*h.store, Kind::SystemProfiles, &[("dtmfProfile", &dtmf_id), ("callLegProfile", &no_end_id)]);
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let callers = callers(&mut h, 2, "team");
    let (a, b) = (endpoint_of(&h, callers[0].0).unwrap(), endpoint_of(&h, callers[1].0).unwrap());
    let muted = |h: &Harness, e: EndpointId| h.media.state().endpoints[&e].rx_muted;

    dtmf(&mut h, a, "*6");
    assert!(muted(&h, a) && !muted(&h, b), "*6 mutes the presser");
    dtmf(&mut h, a, "*6");
    assert!(!muted(&h, a), "and *6 again unmutes it");
    dtmf(&mut h, a, "**6");
    assert!(!muted(&h, a) && muted(&h, b), "**6 mutes the others, not *6's toggle");
    let legs = h.with(|bridge, now| bridge.call_legs(now));
    let leg_b = legs.iter().find(|l| l.config.get("rxAudioMute").map(String::as_str) == Some("true"));
    assert!(leg_b.is_some(), "the API shows the mute: {legs:?}");

    let layout = |h: &Harness, e: EndpointId| h.media.state().endpoints[&e].video.as_ref().map(|v| v.layout.clone());
    let before = layout(&h, a);
    dtmf(&mut h, a, "#3");
    assert_ne!(layout(&h, a), before, "#3 changes the presser's layout");

    // New legs join muted after *9#.
    dtmf(&mut h, a, "*9#");
    let late = h.phone();
    h.dial_in(late, "team");
    assert!(muted(&h, endpoint_of(&h, late).unwrap()), "a new leg joins muted");

    // endCall: refused by the profile, then allowed by the leg's own setting.
    dtmf(&mut h, a, "*0");
    assert_eq!(h.with(|bridge, now| bridge.calls(now)).len(), 1, "endCallAllowed=false");
    let leg_a = h.with(|bridge, now| bridge.call_legs(now))[0].id;
    let changes = leg_changes(&[("endCallAllowed", "true")]);
    h.with(|bridge, now| bridge.update_call_leg(now, leg_a, &changes)).unwrap();
    dtmf(&mut h, a, "*0");
    assert!(h.with(|bridge, now| bridge.calls(now)).is_empty(), "*0 ends the call");
}

/// An IVR: a caller dialling its URI is answered into a conference of its
/// own with the meeting ID prompt; an ID that names nothing gets the
/// wrong-ID prompt; a space's call ID moves it there by our re-INVITE (its
/// answer connects the leg in the meeting's conference), then the space's
/// passcode lobby. Three wrong IDs hang another caller up.
#[test]
fn an_ivr_takes_a_meeting_id_and_moves_the_caller_into_that_meeting() {
    let mut h = Harness::new();
    create(&*h.store, Kind::Ivr, None, &[("uri", "ivr")]);
    create(
        &*h.store,
        Kind::CoSpace,
        None,
        &[("name", "Team"), ("uri", "team"), ("callId", "1234"), ("passcode", "55")],
    );
    let host = h.phone();
    h.dial_in(host, "team");
    let caller = h.phone();
    let call = h.dial_in(caller, "ivr");
    assert!(h.phones[caller].answered(call), "the IVR answers");
    let e = endpoint_of(&h, caller).expect("its endpoint");
    let ivr_conference = h.media.state().endpoints[&e].conference;
    assert_eq!(h.media.state().endpoints[&e].prompt, Some(Prompt::enter_meeting_id()));
    assert_eq!(h.with(|b, now| b.calls(now)).len(), 1, "the IVR's conference is not a call");

    dtmf(&mut h, e, "999#");
    assert_eq!(h.media.state().endpoints[&e].prompt, Some(Prompt::wrong_meeting_id()));
    dtmf(&mut h, e, "1234#");
    let offer = h.phones[caller]
        .events
        .iter()
        .find_map(|ev| match ev {
            confero_sip::ua::UaEvent::Reoffer { offer: Some(o), .. } => Some(o.clone()),
            _ => None,
        })
        .expect("our re-INVITE with the meeting's offer");
    let answer = h.phones[caller].answer(&offer);
    h.on_phone(caller, |p, now| p.ua.answer_reoffer(now, call, Ok(answer))).expect("answer the re-INVITE");
    let moved = endpoint_of(&h, caller).expect("a new endpoint");
    let host_e = endpoint_of(&h, host).unwrap();
    let state = h.media.state();
    assert_eq!(state.endpoints[&moved].conference, state.endpoints[&host_e].conference, "in the meeting");
    assert_ne!(state.endpoints[&moved].conference, ivr_conference);
    assert_eq!(state.endpoints[&moved].prompt, Some(Prompt::enter_passcode()), "then the space's passcode");
    assert!(!state.conferences.contains(&ivr_conference), "the IVR's conference ended");
    drop(state);
    dtmf(&mut h, moved, "55#");
    assert_eq!(h.media.state().endpoints[&moved].prompt, None, "let in");
    let legs = h.with(|b, now| b.call_legs(now));
    assert_eq!(legs.len(), 2);
    assert!(legs.iter().all(|l| l.call == legs[0].call), "both legs in the meeting's call");

    let wrong = h.phone();
    let wrong_call = h.dial_in(wrong, "IVR");
    let we = endpoint_of(&h, wrong).unwrap();
    dtmf(&mut h, we, "1#2#3#");
    assert!(h.phones[wrong].hung_up_on(wrong_call), "three wrong IDs hang up");
}

#[test]
fn participant_limits_of_the_call_profile_and_the_tenant_turn_callers_away() {
    let mut h = Harness::new();
    // The system's call profile caps a call at two; the space's own says three.
    let two = create(&*h.store, Kind::CallProfile, None, &[("participantLimit", "2")]);
    set(&*h.store, Kind::SystemProfiles, &[("callProfile", &two.id.to_string())]);
    create(&*h.store, Kind::CoSpace, None, &[("name", "Small"), ("uri", "small")]);
    let callers_in = callers(&mut h, 3, "small");
    let answered: Vec<bool> = callers_in.iter().map(|(p, c)| h.phones[*p].answered(*c)).collect();
    assert_eq!(answered, [true, true, false]);
    let (p, c) = callers_in[2];
    assert_eq!(h.phones[p].failed(c), Some(486), "the third is told the call is full");
    // An API dial into the full call is refused with CMS's reason.
    let call = h.with(|b, now| b.calls(now))[0].id;
    let refused = h.with(|b, now| b.dial(now, call, "sip:x@127.0.0.1", &[]));
    assert_eq!(refused.err(), Some(confero_api::bridge::BridgeError::ParticipantLimitReached));

    // A tenant capped at three across its calls: two spaces, four callers.
    let tenant = create(&*h.store, Kind::Tenant, None, &[("name", "Acme"), ("participantLimit", "3")]);
    let tenant = tenant.id.to_string();
    let three = create(&*h.store, Kind::CallProfile, None, &[("participantLimit", "3")]);
    let three = three.id.to_string();
    for (name, uri) in [("A", "acme-a"), ("B", "acme-b")] {
        create(
            &*h.store,
            Kind::CoSpace,
            None,
            &[("name", name), ("uri", uri), ("tenant", &tenant), ("callProfile", &three)],
        );
    }
    let a = callers(&mut h, 2, "acme-a");
    let b = callers(&mut h, 2, "acme-b");
    let got: Vec<bool> = a.iter().chain(&b).map(|(p, c)| h.phones[*p].answered(*c)).collect();
    assert_eq!(got, [true, true, true, false], "the tenant's fourth participant is refused");
    let acme_b = h.with(|b, now| b.calls(now)).into_iter().find(|c| c.name == "B").expect("B's call").id;
    let refused = h.with(|b, now| b.dial(now, acme_b, "sip:y@127.0.0.1", &[]));
    assert_eq!(refused.err(), Some(confero_api::bridge::BridgeError::TenantParticipantLimitReached));
}

#[test]
fn a_branding_profile_s_recordings_replace_the_lobby_and_ivr_tones() {
    let mut h = Harness::new();
    let calls = create(&*h.store, Kind::CallBrandingProfile, None, &[("resourceLocation", "http://brand.test/calls/")]);
    let ivrs = create(&*h.store, Kind::IvrBrandingProfile, None, &[("resourceLocation", "http://brand.test/ivr")]);
    set(&*h.store, Kind::SystemProfiles, &[("callBrandingProfile", &calls.id.to_string())]);
    create(
        &*h.store,
        Kind::CoSpace,
        None,
        &[("name", "Locked"), ("uri", "locked"), ("callId", "77"), ("passcode", "4321")],
    );
    create(&*h.store, Kind::Ivr, None, &[("uri", "ivr"), ("ivrBrandingProfile", &ivrs.id.to_string())]);
    let entry: std::sync::Arc<[i16]> = vec![1000i16; 480].into();
    let wrong: std::sync::Arc<[i16]> = vec![-1000i16; 240].into();
    let recorded = |pairs: &[(&'static str, &std::sync::Arc<[i16]>)]| {
        pairs.iter().map(|(n, p)| (*n, (*p).clone())).collect::<std::collections::HashMap<_, _>>()
    };
    h.branding.set(
        "http://brand.test/calls/",
        recorded(&[("passcode_entry.wav", &entry), ("passcode_incorrect_try_again.wav", &wrong)]),
    );
    // The IVR's location holds no entry prompt: its tones stay.
    h.branding.set("http://brand.test/ivr", recorded(&[("ivr_id_incorrect_try_again.wav", &wrong)]));

    let p = h.phone();
    let call = h.dial_in(p, "locked");
    assert!(h.phones[p].answered(call));
    let e = endpoint_of(&h, p).unwrap();
    let prompt = |h: &Harness, e: EndpointId| h.media.state().endpoints[&e].prompt.clone().expect("a prompt");
    let lobby = prompt(&h, e);
    assert_eq!(&lobby.pcm[..480], &entry[..], "the recording, then time to type");
    assert_eq!(lobby.pcm.len(), 480 + 48 * 3000);
    assert_eq!(lobby.loop_from, Some(0));
    dtmf(&mut h, e, "9#");
    let again = prompt(&h, e);
    assert_eq!(&again.pcm[..240], &wrong[..], "the wrong-passcode recording first");
    assert_eq!(again.loop_from, Some(240 + 48 * 300), "then the entry prompt, repeated");

    let q = h.phone();
    let at_ivr = h.dial_in(q, "ivr");
    assert!(h.phones[q].answered(at_ivr));
    let e = endpoint_of(&h, q).unwrap();
    assert!(prompt(&h, e) == Prompt::enter_meeting_id(), "no recorded entry prompt: the tones");
}

/// `needsActivation`: a guest waits, hearing the waiting prompt and kept out
/// of the conference, until an activator joins; then it is in. When the
/// activator leaves, `deactivate` guests wait again and `disconnect` guests
/// are hung up (`callDeactivated`). A locked call keeps new guests waiting;
/// unlocking lets them in.
#[test]
fn guests_wait_for_an_activator_and_follow_their_deactivation_mode() {
    let mut h = Harness::new();
    let guest = create(&*h.store, Kind::CallLegProfile, None, &[("needsActivation", "true")]);
    let leaving = create(
        &*h.store,
        Kind::CallLegProfile,
        None,
        &[("needsActivation", "true"), ("deactivationMode", "disconnect")],
    );
    let space = create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let for_guests = [("uri", "guest"), ("callLegProfile", &*guest.id.to_string())];
    create(&*h.store, Kind::AccessMethod, Some(space.id), &for_guests);
    let for_leavers = [("uri", "leaver"), ("callLegProfile", &*leaving.id.to_string())];
    create(&*h.store, Kind::AccessMethod, Some(space.id), &for_leavers);
    let waiting = |h: &Harness, p: usize| {
        let e = endpoint_of(h, p).expect("its endpoint");
        h.media.state().endpoints[&e].prompt.clone()
    };

    // Guests alone: both wait, hearing the waiting tones.
    let first = h.phone();
    h.dial_in(first, "guest");
    let second = h.phone();
    let second_call = h.dial_in(second, "leaver");
    assert_eq!(waiting(&h, first), Some(Prompt::waiting_for_host()));
    assert_eq!(waiting(&h, second), Some(Prompt::waiting_for_host()));
    let legs = h.with(|b, now| b.call_legs(now));
    assert!(legs.iter().all(|l| l.deactivated), "{legs:?}");
    let participants = h.with(|b, _| b.participants());
    assert!(participants.iter().all(|p| !p.is_activator));

    // The host (the space's own URI: needsActivation unset) lets them in.
    let host = h.phone();
    let host_call = h.dial_in(host, "team");
    assert_eq!(waiting(&h, host), None);
    assert_eq!((waiting(&h, first), waiting(&h, second)), (None, None), "activated");
    assert!(h.with(|b, now| b.call_legs(now)).iter().all(|l| !l.deactivated));

    // The host leaves: the `deactivate` guest waits again, the
    // `disconnect` one is hung up.
    h.on_phone(host, |ph, now| ph.ua.hangup(now, host_call)).expect("BYE");
    h.settle();
    assert_eq!(waiting(&h, first), Some(Prompt::waiting_for_host()));
    assert!(h.phones[second].hung_up_on(second_call), "the disconnect guest got a BYE");
    assert!(leg_ends(&h).contains(&"callDeactivated"), "{:?}", leg_ends(&h));

    // Locked: a new host does not let the waiting guest in; unlocking does.
    let call = h.with(|b, now| b.calls(now))[0].id;
    let lock = |locked: &str| confero_store::schema::Change {
        field: confero_api::CALL_FIELDS.iter().find(|f| f.name == "locked").unwrap(),
        value: Some(locked.to_string()),
    };
    h.with(|b, now| b.update_call(now, call, &[lock("true")])).unwrap();
    let host = h.phone();
    h.dial_in(host, "team");
    assert_eq!(waiting(&h, first), Some(Prompt::waiting_for_host()), "locked: still waiting");
    h.with(|b, now| b.update_call(now, call, &[lock("false")])).unwrap();
    assert_eq!(waiting(&h, first), None, "unlocked: in");
}

/// `deactivationModeTime`: a guest acts on the last activator leaving only
/// that many seconds later, and not at all if an activator is back by then.
#[test]
fn deactivation_waits_deactivation_mode_time_for_the_host_to_come_back() {
    let mut h = Harness::new();
    let guest = create(
        &*h.store,
        Kind::CallLegProfile,
        None,
        &[("needsActivation", "true"), ("deactivationMode", "disconnect"), ("deactivationModeTime", "10")],
    );
    let space = create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team")]);
    let for_guests = [("uri", "guest"), ("callLegProfile", &*guest.id.to_string())];
    create(&*h.store, Kind::AccessMethod, Some(space.id), &for_guests);
    let g = h.phone();
    let guest_call = h.dial_in(g, "guest");
    let host = h.phone();
    let host_call = h.dial_in(host, "team");
    let guest_in = |h: &Harness| endpoint_of(h, g).is_some_and(|e| h.media.state().endpoints[&e].prompt.is_none());
    assert!(guest_in(&h));

    // The host leaves and is back within the 10 s: the guest stays.
    h.on_phone(host, |ph, now| ph.ua.hangup(now, host_call)).expect("BYE");
    h.advance(Duration::from_secs(5));
    assert!(guest_in(&h) && !h.phones[g].hung_up_on(guest_call), "still in after 5 s");
    let back = h.phone();
    let back_call = h.dial_in(back, "team");
    h.advance(Duration::from_secs(10));
    assert!(guest_in(&h) && !h.phones[g].hung_up_on(guest_call), "the host came back in time");

    // It leaves for good: 10 s later the guest is hung up.
    h.on_phone(back, |ph, now| ph.ua.hangup(now, back_call)).expect("BYE");
    h.advance(Duration::from_secs(9));
    assert!(!h.phones[g].hung_up_on(guest_call), "not before the 10 s");
    h.advance(Duration::from_secs(2));
    assert!(h.phones[g].hung_up_on(guest_call), "hung up after the 10 s");
    assert!(leg_ends(&h).contains(&"callDeactivated"), "{:?}", leg_ends(&h));
}

/// Meeting Management's "admit": `PUT /participants/<id> deactivated=false`
/// lets a waiting guest in with no host there, and it stays in; `true`
/// sends it back to wait.
#[test]
fn the_api_admits_a_waiting_guest_and_can_send_it_back() {
    let mut h = Harness::new();
    let guest = create(&*h.store, Kind::CallLegProfile, None, &[("needsActivation", "true")]);
    let guest_id = guest.id.to_string();
    create(&*h.store, Kind::CoSpace, None, &[("name", "Team"), ("uri", "team"), ("callLegProfile", &guest_id)]);
    let p = h.phone();
    h.dial_in(p, "team");
    let e = endpoint_of(&h, p).expect("its endpoint");
    let prompt = |h: &Harness| h.media.state().endpoints[&e].prompt.clone();
    assert_eq!(prompt(&h), Some(Prompt::waiting_for_host()));
    let leg = h.with(|b, now| b.call_legs(now))[0].id;
    let deactivated = |value: &str| confero_store::schema::Change {
        field: confero_api::PARTICIPANT_FIELDS.iter().find(|f| f.name == "deactivated").unwrap(),
        value: Some(value.to_string()),
    };
    h.with(|b, now| b.update_call_leg(now, leg, &[deactivated("false")])).unwrap();
    assert_eq!(prompt(&h), None, "admitted");
    h.advance(Duration::from_secs(60));
    assert_eq!(prompt(&h), None, "it stays in with no host");
    let legs = h.with(|b, now| b.call_legs(now));
    assert!(!legs[0].deactivated && !legs[0].config.contains_key("deactivated"), "an act, not a setting");
    h.with(|b, now| b.update_call_leg(now, leg, &[deactivated("true")])).unwrap();
    assert_eq!(prompt(&h), Some(Prompt::waiting_for_host()), "sent back to wait");
}

/// Host and guests dial one number and are told apart by passcode, as the
/// CMS reference describes: the space's passcode makes an activator, its
/// access method's (same URI, another passcode, a `needsActivation`
/// profile) a guest who waits for it.
#[test]
fn host_and_guests_share_a_number_and_the_passcode_says_which() {
    let mut h = Harness::new();
    let guests = create(&*h.store, Kind::CallLegProfile, None, &[("needsActivation", "true")]);
    let space = create(&*h.store, Kind::CoSpace, None, &[("name", "Clinic"), ("uri", "clinic"), ("passcode", "1111")]);
    let guest_way = [("uri", "clinic"), ("passcode", "2222"), ("callLegProfile", &*guests.id.to_string())];
    create(&*h.store, Kind::AccessMethod, Some(space.id), &guest_way);
    let prompt = |h: &Harness, e: EndpointId| h.media.state().endpoints[&e].prompt.clone();

    let guest = h.phone();
    h.dial_in(guest, "clinic");
    let eg = endpoint_of(&h, guest).expect("its endpoint");
    assert_eq!(prompt(&h, eg), Some(Prompt::enter_passcode()));
    dtmf(&mut h, eg, "2222#");
    assert_eq!(prompt(&h, eg), Some(Prompt::waiting_for_host()), "the guests' passcode: a guest");

    let host = h.phone();
    h.dial_in(host, "clinic");
    let eh = endpoint_of(&h, host).expect("its endpoint");
    dtmf(&mut h, eh, "3333#");
    assert_eq!(prompt(&h, eh), Some(Prompt::wrong_passcode()), "neither passcode");
    dtmf(&mut h, eh, "1111#");
    assert_eq!(prompt(&h, eh), None, "the host's passcode: in");
    assert_eq!(prompt(&h, eg), None, "and the guest with it");
    let participants = h.with(|b, _| b.participants());
    assert_eq!(participants.iter().filter(|p| p.is_activator).count(), 1);
}

/// `sipMediaPayloadTypeMode=broadsoft` on the system's compatibility
/// profile: a dial-out offers its H.264 as payload type 109, and the
/// answer's 109 is taken as packetization mode 1.
#[test]
fn the_broadsoft_mode_dials_out_with_h264_as_payload_type_109() {
    let mut h = Harness::new();
    let profile = create(&*h.store, Kind::CompatibilityProfile, None, &[("sipMediaPayloadTypeMode", "broadsoft")]);
    set(&*h.store, Kind::SystemProfiles, &[("compatibilityProfile", &profile.id.to_string())]);
    let phone = h.phone();
    let addr = h.phones[phone].addr;
    create(&*h.store, Kind::OutboundDialPlanRule, None, &[("domain", "example.com"), ("sipProxy", &addr.to_string())]);
    let call = h.with(|b, now| b.create_call(now, Default::default())).expect("a call");
    h.with(|b, now| b.dial(now, call.id, "bob@example.com", &[])).expect("a leg");
    let (answered, offer) = h.phones[phone].incoming().pop().expect("the INVITE");
    let text = String::from_utf8_lossy(&offer).to_string();
    assert!(text.contains("m=video 20002 RTP/AVP 109 96\r\na=rtpmap:109 H264/90000\r\n"), "{text}");
    // A video phone answers with what we offered first.
    let offer = confero_sdp::SessionDescription::parse(&offer).unwrap();
    let local = confero_sdp::LocalMedia {
        address: addr.ip(),
        audio_port: addr.port() + 10_000,
        session_id: 9,
        session_version: 1,
        direction: Direction::SendRecv,
    };
    let video = confero_sdp::LocalVideo::hd720(addr.port() + 10_002);
    let policy = confero_sdp::MediaEncryption::Optional;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    let (answer, _, _) = confero_sdp::answer_with_video(&offer, &local, &video, policy, &mut rng).unwrap();
    h.on_phone(phone, |p, now| p.ua.accept(now, answered, answer.to_text().into_bytes())).expect("accept");
    let endpoint = *h.media.state().endpoints.keys().next().expect("attached");
    let spec = h.media.state().endpoints[&endpoint].spec.clone();
    let video = spec.video.expect("video agreed");
    assert_eq!(video.payload_type, 109);
    assert_eq!(video.packetization_mode, confero_media::video::h264_rtp::PacketizationMode::NonInterleaved);
}
