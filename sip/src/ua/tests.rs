use super::*;
use crate::message::StartLine;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Duration;

const PEER: &str = "127.0.0.1:5070";

fn peer() -> Peer {
    Peer { transport: Transport::Udp, addr: PEER.parse().unwrap() }
}

fn ua() -> UserAgent {
    UserAgent::new(UaConfig::default(), Box::new(StdRng::seed_from_u64(9)))
}

const SDP: &str =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0\r\n";

/// A request from the peer, in the shape baresip sends.
fn request(method: &str, branch: &str, cseq: u32, to_tag: Option<&str>, extra: &str, body: &str) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:room@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=alice1\r\nTo: <sip:room@127.0.0.1>{to_tag}\r\n\
         Call-ID: call-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@{PEER}>\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn invite(extra: &str) -> String {
    request("INVITE", "z9hG4bKinv1", 1, None, &format!("Content-Type: application/sdp\r\n{extra}"), SDP)
}

fn feed(ua: &mut UserAgent, now: Instant, text: &str) {
    ua.handle_datagram(now, peer(), text.as_bytes());
}

fn sent(ua: &mut UserAgent) -> Vec<Message> {
    std::iter::from_fn(|| ua.poll_transmit())
        .map(|t| Message::parse(&t.bytes, &Limits::default()).expect("we send parsable messages"))
        .collect()
}

fn first_lines(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match &m.start {
            StartLine::Request { method, .. } => method.as_str().to_string(),
            StartLine::Response { code, .. } => code.to_string(),
        })
        .collect()
}

fn events(ua: &mut UserAgent) -> Vec<UaEvent> {
    std::iter::from_fn(|| ua.poll_event()).collect()
}

/// Receives an INVITE and returns the call and our tag (from the 100/180 path).
fn incoming(ua: &mut UserAgent, now: Instant, extra: &str) -> CallHandle {
    feed(ua, now, &invite(extra));
    assert_eq!(first_lines(&sent(ua)), ["100"]);
    let evs = events(ua);
    let [UaEvent::IncomingCall(incoming)] = evs.as_slice() else { panic!("{evs:?}") };
    assert_eq!(incoming.user.as_deref(), Some("room"));
    assert_eq!(incoming.from.tag(), Some("alice1"));
    assert_eq!(incoming.offer.as_deref(), Some(SDP.as_bytes()));
    incoming.call
}

fn our_tag(response: &Message) -> String {
    response.to().unwrap().tag().unwrap().to_string()
}

#[test]
fn options_get_200_with_allow_accept_supported() {
    let mut ua = ua();
    feed(&mut ua, Instant::now(), &request("OPTIONS", "z9hG4bKo1", 1, None, "", ""));
    let out = sent(&mut ua);
    assert_eq!(out[0].code(), Some(200));
    assert!(out[0].get("Allow").unwrap().contains("INVITE"));
    assert_eq!(out[0].get("Accept"), Some("application/sdp"));
    assert!(out[0].supports("timer"));
}

#[test]
fn incoming_call_ring_answer_ack_bye() {
    let t0 = Instant::now();
    let mut ua = ua();
    let call = incoming(&mut ua, t0, "");
    ua.ring(t0, call).unwrap();
    let ringing = sent(&mut ua);
    assert_eq!(ringing[0].code(), Some(180));
    assert!(!ringing[0].requires("100rel"), "not reliable unless required");
    let tag = our_tag(&ringing[0]);
    ua.accept(t0, call, b"v=0 answer".to_vec()).unwrap();
    let ok = sent(&mut ua);
    assert_eq!(ok[0].code(), Some(200));
    assert_eq!(ok[0].body, b"v=0 answer");
    assert_eq!(our_tag(&ok[0]), tag, "one To-tag for the whole dialog");
    assert!(ok[0].contact().is_some());
    // A retransmitted INVITE is absorbed; the 2xx repeats on its own timer until ACK.
    feed(&mut ua, t0, &invite(""));
    assert!(sent(&mut ua).is_empty());
    ua.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(sent(&mut ua)[0].code(), Some(200));
    feed(&mut ua, t0 + Duration::from_millis(600), &request("ACK", "z9hG4bKack1", 1, Some(&tag), "", ""));
    assert_eq!(events(&mut ua), [UaEvent::Confirmed { call, answer: None }]);
    ua.handle_timeout(t0 + Duration::from_secs(3));
    assert!(sent(&mut ua).is_empty(), "no retransmission after the ACK");
    feed(&mut ua, t0 + Duration::from_secs(5), &request("BYE", "z9hG4bKbye1", 2, Some(&tag), "", ""));
    assert_eq!(sent(&mut ua)[0].code(), Some(200));
    assert_eq!(events(&mut ua), [UaEvent::Ended { call, reason: EndReason::RemoteHangup }]);
    assert_eq!(ua.call_count(), 0);
    // A BYE for a dialog that is gone gets 481.
    feed(&mut ua, t0 + Duration::from_secs(6), &request("BYE", "z9hG4bKbye2", 3, Some(&tag), "", ""));
    assert_eq!(sent(&mut ua)[0].code(), Some(481));
}

#[test]
fn unacknowledged_2xx_ends_the_call_with_bye() {
    let t0 = Instant::now();
    let mut ua = ua();
    let call = incoming(&mut ua, t0, "");
    ua.accept(t0, call, b"v=0".to_vec()).unwrap();
    sent(&mut ua);
    let mut retransmits = 0;
    let mut at = t0;
    while at < t0 + Duration::from_secs(33) {
        at += Duration::from_millis(100);
        ua.handle_timeout(at);
        retransmits += sent(&mut ua).iter().filter(|m| m.code() == Some(200)).count();
    }
    assert_eq!(retransmits, 10, "T1 doubling to T2 for 64·T1");
    let evs = events(&mut ua);
    assert_eq!(evs, [UaEvent::Ended { call, reason: EndReason::NoAck }]);
}

#[test]
fn cancel_before_answer_gets_487() {
    let t0 = Instant::now();
    let mut ua = ua();
    let call = incoming(&mut ua, t0, "");
    ua.ring(t0, call).unwrap();
    sent(&mut ua);
    feed(&mut ua, t0, &request("CANCEL", "z9hG4bKinv1", 1, None, "", ""));
    let out = sent(&mut ua);
    let codes: Vec<_> = out.iter().map(|m| (m.code(), m.method())).collect();
    assert_eq!(codes, [(Some(200), Some(Method::Cancel)), (Some(487), Some(Method::Invite))]);
    assert_eq!(events(&mut ua), [UaEvent::Ended { call, reason: EndReason::Cancelled }]);
    assert_eq!(ua.accept(t0, call, vec![]), Err(UaError::NoCall));
    // The ACK of the 487 is absorbed by the transaction.
    feed(&mut ua, t0, &request("ACK", "z9hG4bKinv1", 1, Some(&our_tag(&out[1])), "", ""));
    assert!(sent(&mut ua).is_empty());
    // A CANCEL for nothing we know gets 481.
    feed(&mut ua, t0, &request("CANCEL", "z9hG4bKnone", 1, None, "", ""));
    assert_eq!(sent(&mut ua)[0].code(), Some(481));
}

fn established(ua: &mut UserAgent, t0: Instant, extra: &str) -> (CallHandle, String, Message) {
    let call = incoming(ua, t0, extra);
    ua.accept(t0, call, b"v=0 answer".to_vec()).unwrap();
    let ok = sent(ua).remove(0);
    let tag = our_tag(&ok);
    feed(ua, t0, &request("ACK", "z9hG4bKack1", 1, Some(&tag), "", ""));
    events(ua);
    (call, tag, ok)
}

#[test]
fn reinvite_hold_is_offered_to_the_bridge() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, tag, _) = established(&mut ua, t0, "");
    let hold = SDP.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\na=sendonly\r\n");
    let reinvite = request("INVITE", "z9hG4bKre1", 2, Some(&tag), "Content-Type: application/sdp\r\n", &hold);
    feed(&mut ua, t0, &reinvite);
    assert_eq!(first_lines(&sent(&mut ua)), ["100"]);
    assert_eq!(events(&mut ua), [UaEvent::Reoffer { call, offer: Some(hold.into_bytes()) }]);
    // A second offer while one is open: 491.
    feed(&mut ua, t0, &request("UPDATE", "z9hG4bKup1", 3, Some(&tag), "Content-Type: application/sdp\r\n", SDP));
    assert_eq!(sent(&mut ua)[0].code(), Some(491));
    ua.answer_reoffer(t0, call, Ok(b"v=0 recvonly".to_vec())).unwrap();
    let ok = sent(&mut ua);
    assert_eq!((ok[0].code(), ok[0].body.as_slice()), (Some(200), b"v=0 recvonly".as_slice()));
    feed(&mut ua, t0, &request("ACK", "z9hG4bKack2", 2, Some(&tag), "", ""));
    ua.handle_timeout(t0 + Duration::from_secs(2));
    assert!(sent(&mut ua).is_empty());
    // A refused re-offer keeps the call.
    feed(&mut ua, t0, &request("INVITE", "z9hG4bKre2", 4, Some(&tag), "Content-Type: application/sdp\r\n", SDP));
    sent(&mut ua);
    events(&mut ua);
    ua.answer_reoffer(t0, call, Err(488)).unwrap();
    assert_eq!(sent(&mut ua)[0].code(), Some(488));
    assert_eq!(ua.call_count(), 1);
}

#[test]
fn info_dtmf_becomes_an_event() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, tag, _) = established(&mut ua, t0, "");
    let relay = "Signal=5\r\nDuration=160\r\n";
    feed(&mut ua, t0, &request("INFO", "z9hG4bKi1", 2, Some(&tag), "Content-Type: application/dtmf-relay\r\n", relay));
    feed(&mut ua, t0, &request("INFO", "z9hG4bKi2", 3, Some(&tag), "Content-Type: application/dtmf\r\n", "11"));
    assert_eq!(first_lines(&sent(&mut ua)), ["200", "200"]);
    assert_eq!(
        events(&mut ua),
        [
            UaEvent::Dtmf { call, digit: '5', duration_ms: Some(160) },
            UaEvent::Dtmf { call, digit: '#', duration_ms: None }
        ]
    );
}

#[test]
fn malformed_requests_get_400_and_garbage_is_dropped() {
    let t0 = Instant::now();
    let mut ua = ua();
    let bad_length = invite("").replace("Content-Length: ", "Content-Length: 9");
    feed(&mut ua, t0, &bad_length);
    let out = sent(&mut ua);
    assert_eq!(out[0].code(), Some(400));
    let no_call_id = invite("").replace("Call-ID: call-1\r\n", "");
    feed(&mut ua, t0, &no_call_id);
    let out = sent(&mut ua);
    assert_eq!(out[0].code(), Some(400));
    assert!(matches!(&out[0].start, StartLine::Response { reason, .. } if reason == "Missing Call-ID"));
    for garbage in
        [&b"\x00\xff\xfe"[..], b"\r\n\r\n", b"INVITE", b"SIP/2.0 200 OK\r\n\r\n", b"INVITE sip:x SIP/2.0\r\n\r\n"]
    {
        ua.handle_datagram(t0, peer(), garbage);
    }
    assert!(sent(&mut ua).is_empty());
    assert!(events(&mut ua).is_empty());
    assert_eq!(ua.call_count(), 0);
}

#[test]
fn overload_answers_503_with_retry_after() {
    let mut ua = ua();
    ua.set_overload(Some(30));
    feed(&mut ua, Instant::now(), &invite(""));
    let out = sent(&mut ua);
    assert_eq!(first_lines(&out), ["100", "503"]);
    assert_eq!(out[1].get("Retry-After"), Some("30"));
    assert!(events(&mut ua).is_empty());
}

#[test]
fn unsupported_require_gets_420() {
    let mut ua = ua();
    feed(&mut ua, Instant::now(), &invite("Require: precondition\r\n"));
    let out = sent(&mut ua);
    assert_eq!(out[1].code(), Some(420));
    assert_eq!(out[1].get("Unsupported"), Some("precondition"));
}

#[test]
fn reliable_provisional_when_required_until_prack() {
    let t0 = Instant::now();
    let mut ua = ua();
    let call = incoming(&mut ua, t0, "Require: 100rel\r\n");
    ua.ring(t0, call).unwrap();
    let ringing = sent(&mut ua).remove(0);
    assert!(ringing.requires("100rel"));
    assert_eq!(ringing.rseq(), Some(1));
    ua.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(sent(&mut ua)[0].code(), Some(180));
    let tag = our_tag(&ringing);
    feed(&mut ua, t0, &request("PRACK", "z9hG4bKp1", 2, Some(&tag), "RAck: 1 1 INVITE\r\n", ""));
    assert_eq!(sent(&mut ua)[0].code(), Some(200));
    ua.handle_timeout(t0 + Duration::from_secs(3));
    assert!(sent(&mut ua).is_empty(), "PRACK stops the retransmissions");
    feed(&mut ua, t0, &request("PRACK", "z9hG4bKp2", 3, Some(&tag), "RAck: 9 1 INVITE\r\n", ""));
    assert_eq!(sent(&mut ua)[0].code(), Some(481));
}

#[test]
fn session_timer_we_refresh_with_update() {
    let t0 = Instant::now();
    let mut ua = ua();
    let extra = "Supported: timer\r\nSession-Expires: 120;refresher=uas\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    let (_call, _tag, ok) = established(&mut ua, t0, extra);
    assert_eq!(ok.get("Session-Expires"), Some("120;refresher=uas"));
    assert!(ok.requires("timer"));
    ua.handle_timeout(t0 + Duration::from_secs(59));
    assert!(sent(&mut ua).is_empty());
    ua.handle_timeout(t0 + Duration::from_secs(60));
    let update = sent(&mut ua).remove(0);
    assert_eq!(update.method(), Some(Method::Update));
    assert_eq!(update.get("Session-Expires"), Some("120;refresher=uac"));
    assert_eq!(update.request_uri(), Some("sip:alice@127.0.0.1:5070"), "to the remote target");
    assert_eq!(update.from().unwrap().tag(), Some(our_tag(&ok).as_str()));
    // The peer answers; the next refresh is due half an interval later.
    let mut answer = update.response(200, None);
    answer.push("Session-Expires", "120;refresher=uac");
    ua.handle_message(t0 + Duration::from_secs(60), peer(), answer);
    ua.handle_timeout(t0 + Duration::from_secs(119));
    assert!(sent(&mut ua).is_empty());
    ua.handle_timeout(t0 + Duration::from_secs(120));
    assert_eq!(sent(&mut ua)[0].method(), Some(Method::Update));
}

#[test]
fn session_timer_expires_without_refresh() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, _, ok) = established(&mut ua, t0, "Supported: timer\r\nSession-Expires: 90\r\n");
    assert_eq!(ok.get("Session-Expires"), Some("90;refresher=uac"));
    ua.handle_timeout(t0 + Duration::from_secs(59));
    assert!(events(&mut ua).is_empty());
    ua.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(sent(&mut ua)[0].method(), Some(Method::Bye));
    assert_eq!(events(&mut ua), [UaEvent::Ended { call, reason: EndReason::SessionExpired }]);
}

#[test]
fn session_interval_below_min_se_gets_422() {
    let mut ua = ua();
    feed(&mut ua, Instant::now(), &invite("Supported: timer\r\nSession-Expires: 30\r\n"));
    let out = sent(&mut ua);
    assert_eq!(out[1].code(), Some(422));
    assert_eq!(out[1].get("Min-SE"), Some("90"));
}

fn dial(ua: &mut UserAgent, now: Instant) -> (CallHandle, Message) {
    let call = ua
        .dial(
            now,
            Dial {
                target: format!("sip:bob@{PEER}"),
                from: "sip:space@confero.example".into(),
                display_name: Some("Weekly".into()),
                offer: b"v=0 offer".to_vec(),
                destination: peer(),
                route: None,
                contact_domain: None,
            },
        )
        .unwrap();
    let invite = sent(ua).remove(0);
    (call, invite)
}

fn answer_with(invite: &Message, code: u16, body: &[u8]) -> Message {
    let mut response = invite.response(code, Some("bob1"));
    response.push("Contact", format!("<sip:bob@{PEER}>"));
    response.body = body.to_vec();
    response
}

#[test]
fn dial_out_ringing_answered_ack_and_hangup() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, invite) = dial(&mut ua, t0);
    assert_eq!(invite.method(), Some(Method::Invite));
    assert_eq!(invite.body, b"v=0 offer");
    assert_eq!(invite.from().unwrap().display.as_deref(), Some("Weekly"));
    assert!(invite.check_request().is_ok());
    ua.handle_message(t0, peer(), answer_with(&invite, 180, b""));
    assert_eq!(events(&mut ua), [UaEvent::Ringing { call, code: 180, sdp: None }]);
    ua.handle_message(t0, peer(), answer_with(&invite, 200, b"v=0 answer"));
    assert_eq!(events(&mut ua), [UaEvent::Answered { call, sdp: Some(b"v=0 answer".to_vec()) }]);
    let ack = sent(&mut ua).remove(0);
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(ack.get("CSeq"), Some("1 ACK"));
    assert_eq!(ack.to().unwrap().tag(), Some("bob1"));
    assert_ne!(ack.via().unwrap().branch(), invite.via().unwrap().branch(), "a 2xx ACK is a new transaction");
    // The 2xx repeats (our ACK was lost): the same ACK goes again.
    ua.handle_message(t0, peer(), answer_with(&invite, 200, b"v=0 answer"));
    assert_eq!(sent(&mut ua), [ack]);
    assert!(events(&mut ua).is_empty());
    ua.hangup(t0, call).unwrap();
    let bye = sent(&mut ua).remove(0);
    assert_eq!(bye.method(), Some(Method::Bye));
    assert_eq!(bye.request_uri(), Some("sip:bob@127.0.0.1:5070"));
    assert_eq!(bye.cseq().unwrap().seq, 2);
}

#[test]
fn dial_out_refused_and_timed_out() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, invite) = dial(&mut ua, t0);
    ua.handle_message(t0, peer(), answer_with(&invite, 486, b""));
    assert_eq!(events(&mut ua), [UaEvent::Failed { call, code: 486, reason: "Busy Here".into() }]);
    assert_eq!(sent(&mut ua)[0].method(), Some(Method::Ack), "the transaction ACKs a failure");
    let (call, _) = dial(&mut ua, t0);
    ua.handle_timeout(t0 + Duration::from_secs(32));
    let evs = events(&mut ua);
    assert_eq!(evs, [UaEvent::Failed { call, code: 408, reason: "Request Timeout".into() }]);
}

#[test]
fn a_transport_failure_fails_the_unanswered_invites_to_that_peer_at_once() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (answered, invite) = dial(&mut ua, t0);
    ua.handle_message(t0, peer(), answer_with(&invite, 200, b"v=0 answer"));
    events(&mut ua);
    sent(&mut ua);
    let (waiting, _) = dial(&mut ua, t0);
    ua.transport_failed(peer());
    assert_eq!(
        events(&mut ua),
        [UaEvent::Failed { call: waiting, code: 503, reason: "Service Unavailable (transport failed)".into() }]
    );
    // The answered call is not touched, and nothing is retransmitted.
    ua.hangup(t0, answered).unwrap();
    assert_eq!(sent(&mut ua)[0].method(), Some(Method::Bye));
    ua.handle_timeout(t0 + Duration::from_secs(40));
    assert!(!events(&mut ua).iter().any(|e| matches!(e, UaEvent::Failed { call, .. } if *call == waiting)));
}

#[test]
fn dial_out_cancelled() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, invite) = dial(&mut ua, t0);
    ua.hangup(t0, call).unwrap();
    assert!(sent(&mut ua).is_empty(), "CANCEL waits for a provisional response");
    ua.handle_message(t0, peer(), answer_with(&invite, 180, b""));
    let cancel = sent(&mut ua).remove(0);
    assert_eq!(cancel.method(), Some(Method::Cancel));
    assert_eq!(cancel.via().unwrap().branch(), invite.via().unwrap().branch());
    assert_eq!(cancel.get("CSeq"), Some("1 CANCEL"));
    ua.handle_message(t0, peer(), answer_with(&cancel, 200, b""));
    ua.handle_message(t0, peer(), answer_with(&invite, 487, b""));
    assert_eq!(sent(&mut ua)[0].method(), Some(Method::Ack));
    assert!(events(&mut ua).is_empty(), "the bridge asked for it: no event");
    assert_eq!(ua.call_count(), 0);
}

#[test]
fn reliable_provisional_from_the_callee_is_pracked() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (_, invite) = dial(&mut ua, t0);
    let mut ringing = answer_with(&invite, 180, b"");
    ringing.push("Require", "100rel");
    ringing.push("RSeq", "4");
    ua.handle_message(t0, peer(), ringing);
    let prack = sent(&mut ua).remove(0);
    assert_eq!(prack.method(), Some(Method::Prack));
    assert_eq!(prack.get("RAck"), Some("4 1 INVITE"));
}

/// Two user agents over a lossless simulated network in virtual time: one
/// dials, the other answers, then hangs up.
#[test]
fn two_user_agents_talk() {
    let t0 = Instant::now();
    let a_addr: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let b_addr: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let mut a =
        UserAgent::new(UaConfig { local_addr: a_addr, ..UaConfig::default() }, Box::new(StdRng::seed_from_u64(1)));
    let mut b =
        UserAgent::new(UaConfig { local_addr: b_addr, ..UaConfig::default() }, Box::new(StdRng::seed_from_u64(2)));
    let to_b = Peer { transport: Transport::Udp, addr: b_addr };
    let dial = Dial {
        target: format!("sip:room@{b_addr}"),
        from: format!("sip:caller@{a_addr}"),
        display_name: None,
        offer: b"offer".to_vec(),
        destination: to_b,
        route: None,
        contact_domain: None,
    };
    let call_a = a.dial(t0, dial).unwrap();
    let mut log_a = Vec::new();
    let mut log_b = Vec::new();
    let shuttle = |a: &mut UserAgent, b: &mut UserAgent, log_a: &mut Vec<UaEvent>, log_b: &mut Vec<UaEvent>| {
        for _ in 0..10 {
            while let Some(t) = a.poll_transmit() {
                assert_eq!(t.peer.addr, b_addr);
                b.handle_datagram(t0, Peer { transport: Transport::Udp, addr: a_addr }, &t.bytes);
            }
            while let Some(t) = b.poll_transmit() {
                assert_eq!(t.peer.addr, a_addr);
                a.handle_datagram(t0, Peer { transport: Transport::Udp, addr: b_addr }, &t.bytes);
            }
            log_a.extend(std::iter::from_fn(|| a.poll_event()));
            log_b.extend(std::iter::from_fn(|| b.poll_event()));
        }
    };
    shuttle(&mut a, &mut b, &mut log_a, &mut log_b);
    let Some(UaEvent::IncomingCall(incoming)) = log_b.pop() else { panic!("{log_b:?}") };
    assert_eq!(incoming.offer.as_deref(), Some(&b"offer"[..]));
    let call_b = incoming.call;
    b.ring(t0, call_b).unwrap();
    b.accept(t0, call_b, b"answer".to_vec()).unwrap();
    shuttle(&mut a, &mut b, &mut log_a, &mut log_b);
    assert_eq!(
        log_a,
        [
            UaEvent::Ringing { call: call_a, code: 180, sdp: None },
            UaEvent::Answered { call: call_a, sdp: Some(b"answer".to_vec()) }
        ]
    );
    assert_eq!(log_b, [UaEvent::Confirmed { call: call_b, answer: None }]);
    log_b.clear();
    b.hangup(t0, call_b).unwrap();
    shuttle(&mut a, &mut b, &mut log_a, &mut log_b);
    assert_eq!(log_a.last(), Some(&UaEvent::Ended { call: call_a, reason: EndReason::RemoteHangup }));
    assert_eq!((a.call_count(), b.call_count()), (0, 0));
}

#[test]
fn cancel_after_the_answer_gets_200_and_changes_nothing() {
    let t0 = Instant::now();
    let mut ua = ua();
    let call = incoming(&mut ua, t0, "");
    ua.accept(t0, call, b"v=0".to_vec()).unwrap();
    sent(&mut ua);
    feed(&mut ua, t0, &request("CANCEL", "z9hG4bKinv1", 1, None, "", ""));
    let out = sent(&mut ua);
    assert_eq!(first_lines(&out), ["200"]);
    assert!(events(&mut ua).is_empty());
    assert_eq!(ua.call_count(), 1);
}

#[test]
fn offerless_reinvite_gets_our_offer_and_the_ack_brings_the_answer() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, tag, _) = established(&mut ua, t0, "");
    feed(&mut ua, t0, &request("INVITE", "z9hG4bKre9", 2, Some(&tag), "", ""));
    sent(&mut ua);
    assert_eq!(events(&mut ua), [UaEvent::Reoffer { call, offer: None }]);
    ua.answer_reoffer(t0, call, Ok(b"v=0 our offer".to_vec())).unwrap();
    assert_eq!(sent(&mut ua)[0].body, b"v=0 our offer");
    let ack = request("ACK", "z9hG4bKack9", 2, Some(&tag), "Content-Type: application/sdp\r\n", "v=0 their answer");
    feed(&mut ua, t0, &ack);
    assert_eq!(events(&mut ua), [UaEvent::Confirmed { call, answer: Some(b"v=0 their answer".to_vec()) }]);
}

#[test]
fn max_forwards_zero_gets_483() {
    let mut ua = ua();
    feed(&mut ua, Instant::now(), &invite("").replace("Max-Forwards: 70", "Max-Forwards: 0"));
    assert_eq!(first_lines(&sent(&mut ua)), ["483"]);
    assert!(events(&mut ua).is_empty());
}

#[test]
fn a_cancelled_call_without_final_response_is_forgotten() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, invite) = dial(&mut ua, t0);
    ua.handle_message(t0, peer(), answer_with(&invite, 180, b""));
    events(&mut ua);
    ua.hangup(t0, call).unwrap();
    assert_eq!(sent(&mut ua)[0].method(), Some(Method::Cancel));
    ua.handle_timeout(t0 + Duration::from_secs(31));
    assert_eq!(ua.call_count(), 1);
    ua.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(ua.call_count(), 0);
    assert!(events(&mut ua).is_empty());
    assert_eq!(ua.next_timeout(), None, "nothing left: no transaction, no timer");
}

#[test]
fn dial_out_retries_once_after_422() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, invite) = dial(&mut ua, t0);
    let mut too_small = answer_with(&invite, 422, b"");
    too_small.push("Min-SE", "3600");
    ua.handle_message(t0, peer(), too_small.clone());
    let out = sent(&mut ua);
    assert_eq!(first_lines(&out), ["ACK", "INVITE"]);
    let retry = &out[1];
    assert_eq!(retry.get("Session-Expires"), Some("3600"));
    assert_eq!(retry.cseq().unwrap().seq, 2);
    assert_eq!(retry.call_id(), invite.call_id());
    assert_ne!(retry.via().unwrap().branch(), invite.via().unwrap().branch());
    assert!(events(&mut ua).is_empty());
    let mut again = answer_with(retry, 422, b"");
    again.push("Min-SE", "3600");
    ua.handle_message(t0, peer(), again);
    assert_eq!(events(&mut ua), [UaEvent::Failed { call, code: 422, reason: "Session Interval Too Small".into() }]);
}

#[test]
fn an_out_of_order_request_in_the_dialog_gets_500() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (_, tag, _) = established(&mut ua, t0, "");
    feed(&mut ua, t0, &request("INFO", "z9hG4bKn1", 5, Some(&tag), "", ""));
    feed(&mut ua, t0, &request("INFO", "z9hG4bKn2", 4, Some(&tag), "", ""));
    assert_eq!(first_lines(&sent(&mut ua)), ["200", "500"]);
}

/// An outbound rule's `localContactDomain` is our Contact in the INVITE and
/// in every later request of that dialog.
#[test]
fn a_contact_domain_names_us_in_the_dialog() {
    let t0 = Instant::now();
    let mut ua = UserAgent::new(UaConfig::default(), Box::new(StdRng::seed_from_u64(9)));
    let dialled = Dial {
        target: format!("sip:bob@{PEER}"),
        from: "sip:space@confero.example".into(),
        display_name: None,
        offer: b"v=0 offer".to_vec(),
        destination: peer(),
        route: None,
        contact_domain: Some("bridge.example.com".into()),
    };
    let call = ua.dial(t0, dialled).unwrap();
    let invite = sent(&mut ua).remove(0);
    assert_eq!(invite.get("Contact"), Some("<sip:confero@bridge.example.com>"));
    let _ = call;
}

/// `dtmfSequence` to a peer without telephone-events: one INFO per key,
/// the next after the previous one's answer and a 100 ms gap, `,` a second.
#[test]
fn dtmf_goes_out_as_info_one_key_at_a_time() {
    let t0 = Instant::now();
    let mut ua = ua();
    let (call, _, _) = established(&mut ua, t0, "");
    sent(&mut ua);
    ua.send_dtmf_info(t0, call, "1,#x").unwrap();
    let first = sent(&mut ua);
    assert_eq!(first_lines(&first), ["INFO"]);
    assert_eq!(first[0].content_type().as_deref(), Some("application/dtmf-relay"));
    assert_eq!(first[0].body, b"Signal=1\r\nDuration=100\r\n");
    // Nothing more until it is answered.
    ua.handle_timeout(t0 + Duration::from_millis(300));
    assert!(sent(&mut ua).iter().all(|m| m.body.is_empty() || m.body == first[0].body), "one INFO in flight");
    let cseq = first[0].cseq().unwrap().seq;
    let branch = first[0].via().unwrap().branch().unwrap().to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\nFrom: {}\r\nTo: {}\r\n\
         Call-ID: call-1\r\nCSeq: {cseq} INFO\r\nContent-Length: 0\r\n\r\n",
        first[0].get("From").unwrap(),
        first[0].get("To").unwrap()
    );
    feed(&mut ua, t0 + Duration::from_millis(300), &ok);
    // The pause: a second (after the 100 ms gap), then '#'; 'x' is skipped.
    ua.handle_timeout(t0 + Duration::from_millis(400));
    ua.handle_timeout(t0 + Duration::from_millis(1300));
    assert!(sent(&mut ua).is_empty(), "the pause");
    ua.handle_timeout(t0 + Duration::from_millis(1400));
    let second = sent(&mut ua);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].body, b"Signal=#\r\nDuration=100\r\n");
    assert!(ua.send_dtmf_info(t0, CallHandle(999), "1").is_err());
}

/// More headers than the limit: answered 513 with the reason, not dropped
/// silently; a head too broken to answer is dropped.
#[test]
fn too_many_headers_get_513_with_the_reason() {
    let t0 = Instant::now();
    let mut ua = ua();
    let extra: String = (0..200).map(|i| format!("X-Padding-{i}: {i}\r\n")).collect();
    let stream = Peer { transport: Transport::Tcp, addr: PEER.parse().unwrap() };
    let bytes = request("OPTIONS", "z9hG4bKmany", 1, None, &extra, "");
    let error = Message::parse_stream(bytes.as_bytes(), &Limits::default()).expect_err("refused");
    ua.handle_unframed(stream, bytes.as_bytes(), &error);
    let out: Vec<Transmit> = std::iter::from_fn(|| ua.poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].peer, stream, "answered on the connection it came on");
    let answer = Message::parse(&out[0].bytes, &Limits::default()).expect("parsable");
    assert_eq!(answer.code(), Some(513));
    assert!(matches!(&answer.start, StartLine::Response { reason, .. } if reason == "more than 128 headers"));
    assert_eq!(answer.call_id(), Some("call-1"));
    // Over UDP too.
    feed(&mut ua, t0, &bytes);
    assert_eq!(sent(&mut ua)[0].code(), Some(513));
    ua.handle_unframed(stream, b"\x00\x01garbage\r\n\r\n", &ParseError::StartLine);
    assert!(sent(&mut ua).is_empty());
}

/// A late offer: an INVITE without SDP gets our offer in the 200; the ACK
/// brings the answer, as the call's confirmation.
#[test]
fn an_offerless_invite_is_answered_in_the_ack() {
    let t0 = Instant::now();
    let mut ua = ua();
    feed(&mut ua, t0, &request("INVITE", "z9hG4bKlate", 1, None, "", ""));
    assert_eq!(first_lines(&sent(&mut ua)), ["100"]);
    let evs = events(&mut ua);
    let [UaEvent::IncomingCall(incoming)] = evs.as_slice() else { panic!("{evs:?}") };
    assert_eq!(incoming.offer, None);
    let call = incoming.call;
    ua.accept(t0, call, b"v=0 our offer".to_vec()).unwrap();
    let ok = sent(&mut ua).remove(0);
    assert_eq!(ok.body, b"v=0 our offer");
    let tag = our_tag(&ok);
    let ack = request("ACK", "z9hG4bKlateack", 1, Some(&tag), "Content-Type: application/sdp\r\n", SDP);
    feed(&mut ua, t0, &ack);
    assert_eq!(events(&mut ua), [UaEvent::Confirmed { call, answer: Some(SDP.as_bytes().to_vec()) }]);
}

/// A late offer from a caller that supports 100rel (RFC 3262 §5): our offer
/// goes in a reliable 183, retransmitted until the PRACK; the PRACK brings
/// the answer (the call's confirmation), then the 200 goes without SDP.
#[test]
fn an_offerless_invite_with_100rel_gets_our_offer_in_a_reliable_183_and_the_answer_in_the_prack() {
    let t0 = Instant::now();
    let mut ua = ua();
    feed(&mut ua, t0, &request("INVITE", "z9hG4bKlate", 1, None, "Supported: 100rel, timer\r\n", ""));
    assert_eq!(first_lines(&sent(&mut ua)), ["100"]);
    let evs = events(&mut ua);
    let [UaEvent::IncomingCall(incoming)] = evs.as_slice() else { panic!("{evs:?}") };
    let call = incoming.call;
    ua.accept(t0, call, b"v=0 our offer".to_vec()).unwrap();
    let progress = sent(&mut ua).remove(0);
    assert_eq!(progress.code(), Some(183));
    assert_eq!((progress.get("Require"), progress.get("RSeq")), (Some("100rel"), Some("1")));
    assert_eq!(progress.body, b"v=0 our offer");
    ua.handle_timeout(t0 + Duration::from_millis(600));
    assert_eq!(first_lines(&sent(&mut ua)), ["183"], "retransmitted until the PRACK");
    let tag = our_tag(&progress);
    let prack =
        request("PRACK", "z9hG4bKpr", 2, Some(&tag), "RAck: 1 1 INVITE\r\nContent-Type: application/sdp\r\n", SDP);
    feed(&mut ua, t0, &prack);
    let out = sent(&mut ua);
    assert_eq!(first_lines(&out), ["200", "200"], "the PRACK's 200, then the INVITE's");
    assert_eq!(out[1].cseq().unwrap().method, Method::Invite);
    assert!(out[1].body.is_empty(), "offer and answer are done");
    assert_eq!(events(&mut ua), [UaEvent::Confirmed { call, answer: Some(SDP.as_bytes().to_vec()) }]);
    feed(&mut ua, t0, &request("ACK", "z9hG4bKack", 1, Some(&tag), "", ""));
    assert_eq!(events(&mut ua), [UaEvent::Confirmed { call, answer: None }]);
}
