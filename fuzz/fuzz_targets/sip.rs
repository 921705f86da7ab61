//! SIP messages from the network: any bytes, as a datagram or as a TCP/TLS
//! stream, give a message or an error and never a panic (and what a broken
//! stream holds is read for its answer without one); a parsed message
//! writes back to bytes that parse again; and the user agent takes any
//! sequence of datagrams (answering 400 or dropping what it cannot read)
//! without panicking, with a bridge that answers every call and re-offer.
#![no_main]
use std::time::{Duration, Instant};

use confero_sip::message::{Framed, Limits, Message};
use confero_sip::transaction::{Peer, Transport};
use confero_sip::ua::{UaConfig, UaEvent, UserAgent};
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
            Ok(Framed::Incomplete) => break,
            // What a broken stream's front holds is still read, to answer it.
            Err(_) => {
                if let Some(head) = Message::parse_answerable(rest, &limits) {
                    let _ = (head.via(), head.response(513, None).to_bytes());
                }
                break;
            }
        }
    }
    // The user agent, with a bridge that answers everything: the input is split
    // at NUL NUL into up to eight datagrams from one peer, a second apart, so
    // in-dialog requests can reach a call the first one set up.
    let mut ua = UserAgent::new(UaConfig::default(), Box::new(StdRng::seed_from_u64(0)));
    let peer = Peer { transport: Transport::Udp, addr: "127.0.0.1:5070".parse().expect("literal") };
    let start = Instant::now();
    // `tag=ours` in a later datagram becomes the To-tag we answered with, so
    // the fuzzer can address the dialog without guessing a random token.
    let mut our_tag: Option<String> = None;
    for (i, datagram) in data.split(|b| *b == 0).filter(|d| !d.is_empty()).take(8).enumerate() {
        let now = start + Duration::from_secs(i as u64);
        let datagram = match &our_tag {
            Some(tag) => replace(datagram, b"tag=ours", format!("tag={tag}").as_bytes()),
            None => datagram.to_vec(),
        };
        ua.handle_datagram(now, peer, &datagram);
        ua.handle_timeout(now);
        while let Some(event) = ua.poll_event() {
            let _ = match event {
                UaEvent::IncomingCall(call) if i % 2 == 0 => ua.accept(now, call.call, b"v=0\r\n".to_vec()),
                UaEvent::IncomingCall(call) => ua.ring(now, call.call),
                UaEvent::Reoffer { call, .. } => ua.answer_reoffer(now, call, Ok(b"v=0\r\n".to_vec())),
                _ => Ok(()),
            };
        }
        while let Some(transmit) = ua.poll_transmit() {
            if our_tag.is_none() {
                let sent = Message::parse(&transmit.bytes, &limits).expect("we send parsable messages");
                our_tag = sent.to().and_then(|to| to.tag().map(str::to_string));
            }
        }
    }
    ua.handle_timeout(start + Duration::from_secs(3600));
    while ua.poll_transmit().is_some() {}
});

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}
