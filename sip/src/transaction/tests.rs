use super::*;
use crate::message::Limits;

fn peer(transport: Transport) -> Peer {
    Peer { transport, addr: "127.0.0.1:5070".parse().unwrap() }
}

fn request(method: &str, branch: &str) -> Message {
    let cseq_method = if method == "ACK" { "INVITE" } else { method };
    let text = format!(
        "{method} sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:room@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 {cseq_method}\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    Message::parse(text.as_bytes(), &Limits::default()).unwrap()
}

fn ack(branch: &str) -> Message {
    let mut ack = request("ACK", branch);
    ack.start = crate::message::StartLine::Request { method: Method::Ack, uri: "sip:room@127.0.0.1".into() };
    ack.set("CSeq", "1 ACK");
    ack
}

fn drain(layer: &mut TransactionLayer) -> Vec<String> {
    std::iter::from_fn(|| layer.poll_transmit())
        .map(|t| String::from_utf8(t.bytes).unwrap().lines().next().unwrap().to_string())
        .collect()
}

/// Runs timers up to `until` in 100 ms steps, counting transmissions.
fn run(layer: &mut TransactionLayer, from: Instant, until: Duration) -> Vec<(u128, String)> {
    let mut sent = Vec::new();
    let mut at = from;
    while at <= from + until {
        layer.handle_timeout(at);
        for line in drain(layer) {
            sent.push(((at - from).as_millis(), line));
        }
        at += Duration::from_millis(100);
    }
    sent
}

#[test]
fn invite_server_trying_retransmits_final_until_ack() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let Received::Request(key, _) = layer.receive_request(t0, request("INVITE", "z9hG4bKi1"), peer(Transport::Udp))
    else {
        panic!("not new")
    };
    assert_eq!(drain(&mut layer), ["SIP/2.0 100 Trying"]);
    // A retransmitted INVITE gets the last response again.
    assert!(matches!(
        layer.receive_request(t0, request("INVITE", "z9hG4bKi1"), peer(Transport::Udp)),
        Received::Absorbed
    ));
    assert_eq!(drain(&mut layer), ["SIP/2.0 100 Trying"]);
    let busy = request("INVITE", "z9hG4bKi1").response(486, Some("b1"));
    assert!(layer.send_response(t0, &key, &busy));
    assert_eq!(drain(&mut layer), ["SIP/2.0 486 Busy Here"]);
    // Timer G: 0.5, 1.5, 3.5, 7.5 (capped at T2 = 4 s), 11.5 s.
    let sent = run(&mut layer, t0, Duration::from_millis(12_000));
    let times: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [500, 1500, 3500, 7500, 11500]);
    let t12 = t0 + Duration::from_secs(12);
    layer.receive_request(t12, ack("z9hG4bKi1"), peer(Transport::Udp));
    assert!(run(&mut layer, t12, Duration::from_secs(4)).is_empty());
    assert!(layer.contains(&key));
    layer.handle_timeout(t12 + Duration::from_secs(5)); // Timer I (T4) has ended it
    assert!(layer.is_empty());
    assert_eq!(layer.poll_event(), None);
}

#[test]
fn invite_server_reliable_no_retransmit_and_timer_h() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let Received::Request(key, req) = layer.receive_request(t0, request("INVITE", "z9hG4bKi2"), peer(Transport::Tcp))
    else {
        panic!()
    };
    drain(&mut layer);
    layer.send_response(t0, &key, &req.response(480, Some("x")));
    drain(&mut layer);
    assert!(run(&mut layer, t0, Duration::from_secs(31)).is_empty());
    layer.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(layer.poll_event(), Some(TransactionEvent::NoAck(key)));
}

#[test]
fn invite_server_accepted_absorbs_retransmissions() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let Received::Request(key, req) = layer.receive_request(t0, request("INVITE", "z9hG4bKi3"), peer(Transport::Udp))
    else {
        panic!()
    };
    drain(&mut layer);
    layer.send_response(t0, &key, &req.response(200, Some("x")));
    assert_eq!(drain(&mut layer), ["SIP/2.0 200 OK"]);
    assert!(matches!(
        layer.receive_request(t0, request("INVITE", "z9hG4bKi3"), peer(Transport::Udp)),
        Received::Absorbed
    ));
    assert!(drain(&mut layer).is_empty(), "the dialog, not the transaction, retransmits a 2xx");
    assert!(run(&mut layer, t0, Duration::from_secs(10)).is_empty());
    // The ACK of a 2xx (new branch) has no transaction.
    assert!(matches!(layer.receive_request(t0, ack("z9hG4bKother"), peer(Transport::Udp)), Received::AckFor2xx(_)));
    layer.handle_timeout(t0 + Duration::from_secs(32));
    assert!(layer.is_empty());
}

#[test]
fn non_invite_server_repeats_its_final_response() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let Received::Request(key, req) = layer.receive_request(t0, request("BYE", "z9hG4bKb1"), peer(Transport::Udp))
    else {
        panic!()
    };
    assert!(drain(&mut layer).is_empty(), "no 100 for non-INVITE");
    assert!(matches!(layer.receive_request(t0, request("BYE", "z9hG4bKb1"), peer(Transport::Udp)), Received::Absorbed));
    assert!(drain(&mut layer).is_empty());
    layer.send_response(t0, &key, &req.response(200, Some("x")));
    layer.receive_request(t0, request("BYE", "z9hG4bKb1"), peer(Transport::Udp));
    assert_eq!(drain(&mut layer), ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]);
    layer.handle_timeout(t0 + Duration::from_secs(32)); // Timer J
    assert!(layer.is_empty());
}

fn response(request: &Message, code: u16) -> Message {
    request.response(code, Some("remote"))
}

#[test]
fn invite_client_timer_a_b_and_ack_for_failure() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bKc1");
    let key = layer.send_request(t0, invite.clone(), peer(Transport::Udp)).unwrap();
    assert_eq!(drain(&mut layer).len(), 1);
    let sent = run(&mut layer, t0, Duration::from_millis(31_900));
    let times: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [500, 1500, 3500, 7500, 15500, 31500], "Timer A doubles without a cap");
    layer.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(layer.poll_event(), Some(TransactionEvent::Timeout(key)));

    // With a provisional the retransmissions stop; a failure is ACKed by the transaction.
    let key = layer.send_request(t0, invite.clone(), peer(Transport::Udp)).unwrap();
    drain(&mut layer);
    assert!(matches!(layer.receive_response(t0, response(&invite, 180)), Received::Response(..)));
    assert!(run(&mut layer, t0, Duration::from_secs(40)).is_empty());
    assert!(layer.contains(&key));
    assert!(matches!(layer.receive_response(t0, response(&invite, 486)), Received::Response(..)));
    let acks = std::iter::from_fn(|| layer.poll_transmit()).collect::<Vec<_>>();
    assert_eq!(acks.len(), 1);
    let ack = Message::parse(&acks[0].bytes, &Limits::default()).unwrap();
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(ack.via().unwrap().branch(), Some("z9hG4bKc1"));
    assert_eq!(ack.to().unwrap().tag(), Some("remote"));
    assert_eq!(ack.get("CSeq"), Some("1 ACK"));
    // A retransmitted failure is ACKed again and not passed up.
    assert!(matches!(layer.receive_response(t0, response(&invite, 486)), Received::Absorbed));
    assert_eq!(drain(&mut layer), ["ACK sip:room@127.0.0.1 SIP/2.0"]);
}

#[test]
fn invite_client_2xx_goes_to_the_dialog() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bKc2");
    layer.send_request(t0, invite.clone(), peer(Transport::Tcp)).unwrap();
    drain(&mut layer);
    assert!(matches!(layer.receive_response(t0, response(&invite, 200)), Received::Response(..)));
    assert!(drain(&mut layer).is_empty(), "no ACK from the transaction for a 2xx");
    assert!(matches!(layer.receive_response(t0, response(&invite, 200)), Received::Response(..)));
    layer.handle_timeout(t0 + Duration::from_secs(32)); // Timer M
    assert!(matches!(layer.receive_response(t0, response(&invite, 200)), Received::Stray(_)));
}

#[test]
fn non_invite_client_timer_e_caps_at_t2_and_f_times_out() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let bye = request("BYE", "z9hG4bKc3");
    let key = layer.send_request(t0, bye.clone(), peer(Transport::Udp)).unwrap();
    drain(&mut layer);
    let sent = run(&mut layer, t0, Duration::from_millis(20_000));
    let times: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [500, 1500, 3500, 7500, 11500, 15500, 19500]);
    layer.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(layer.poll_event(), Some(TransactionEvent::Timeout(key)));
    // A final response completes it, and Timer K ends it.
    layer.send_request(t0, bye.clone(), peer(Transport::Udp)).unwrap();
    assert!(matches!(layer.receive_response(t0, response(&bye, 200)), Received::Response(..)));
    assert!(matches!(layer.receive_response(t0, response(&bye, 200)), Received::Absorbed));
    layer.handle_timeout(t0 + Duration::from_secs(6));
    assert!(layer.is_empty());
}

#[test]
fn cancel_matches_its_invite() {
    let invite = request("INVITE", "z9hG4bKx");
    let cancel = request("CANCEL", "z9hG4bKx");
    assert_eq!(TransactionKey::invite_cancelled_by(&cancel), TransactionKey::for_request(&invite));
    assert_ne!(TransactionKey::for_request(&cancel), TransactionKey::for_request(&invite));
    assert_eq!(TransactionKey::for_request(&ack("z9hG4bKx")), TransactionKey::for_request(&invite));
}
