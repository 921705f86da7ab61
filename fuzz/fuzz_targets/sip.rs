//! SIP messages from the network: any bytes, as a datagram or as a TCP/TLS
//! stream, give a message or an error and never a panic; a parsed message
//! writes back to bytes that parse again; and the user agent takes any
//! datagram (answering 400 or dropping it) without panicking.
#![no_main]
use std::time::Instant;

use confero_sip::message::{Framed, Limits, Message};
use confero_sip::transaction::{Peer, Transport};
use confero_sip::ua::{UaConfig, UserAgent};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(message) = Message::parse(data, &limits) {
        let _ = (message.via(), message.from(), message.to(), message.cseq(), message.contact());
        let _ = (message.session_expires(), message.rack(), message.check_request(), message.check_response());
        let again = Message::parse(&message.to_bytes(), &limits).expect("our own output parses");
        assert_eq!(again.body, message.body);
        if message.is_request() {
            let _ = message.response(200, Some("tag")).to_bytes();
        }
    }
    let mut rest = data;
    while !rest.is_empty() {
        match Message::parse_stream(rest, &limits) {
            Ok(Framed::Message(_, used)) | Ok(Framed::KeepAlive(used)) => {
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
            }
            Ok(Framed::Incomplete) | Err(_) => break,
        }
    }
    let mut ua = UserAgent::new(UaConfig::default(), Box::new(StdRng::seed_from_u64(0)));
    let peer = Peer { transport: Transport::Udp, addr: "127.0.0.1:5070".parse().expect("literal") };
    let now = Instant::now();
    ua.handle_datagram(now, peer, data);
    while ua.poll_transmit().is_some() {}
    while let Some(event) = ua.poll_event() {
        let _ = event;
    }
});
