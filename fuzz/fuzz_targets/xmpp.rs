//! XMPP: the stream reader, and our server's sessions on top of it. Any
//! bytes, cut anywhere, give events or an error, never a panic; every
//! stanza we read, written back by us and read again, is the same stanza.
//! A client session is driven through TLS and login whatever it is sent
//! (TLS "established", passwords accepted, a SCRAM credential found), so
//! the bytes reach every state; a component session likewise.
#![no_main]
use confero_https::scram::ScramCredential;
use confero_xmpp::server::accept::ComponentSession;
use confero_xmpp::server::c2s::{C2sEvent, ClientSession};
use confero_xmpp::stream::{Limits, StreamEvent, StreamReader};
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let limits = Limits { max_stanza: 4096, max_depth: 8 };
    let mut reader = StreamReader::new(limits);
    let mut client = ClientSession::new("example.test", "0123456789", limits);
    let mut component = ComponentSession::new("0123456789", limits);
    let credential = ScramCredential { iterations: 1, salt: b"salt".to_vec(), stored_key: [1; 20], server_key: [2; 20] };
    let secret_of = |jid: &str| (jid == "cb1.example.test").then(|| "secret".to_string());
    // The first byte says where to cut the rest into pieces.
    for piece in rest.chunks(usize::from(cut).max(1)) {
        client.handle_input(piece);
        while let Some(event) = client.poll_event() {
            match event {
                C2sEvent::StartTls => client.tls_established(),
                C2sEvent::Authenticate { .. } => client.auth_result(cut % 2 == 0),
                C2sEvent::ScramLookup { .. } => client.scram_credential(Some(credential.clone()), "nonce"),
                _ => {}
            }
        }
        while client.poll_transmit().is_some() {}
        component.handle_input(piece, &secret_of);
        while component.poll_event().is_some() {}
        while component.poll_transmit().is_some() {}
        reader.feed(piece);
        loop {
            match reader.next_event() {
                Ok(Some(StreamEvent::Header(_))) => {}
                Ok(Some(StreamEvent::Stanza(s))) => {
                    let text = s.to_xml("jabber:client");
                    let mut again = StreamReader::new(Limits { max_stanza: usize::MAX, max_depth: 64 });
                    again.feed(HEADER);
                    again.feed(text.as_bytes());
                    assert!(matches!(again.next_event(), Ok(Some(StreamEvent::Header(_)))));
                    match again.next_event() {
                        Ok(Some(StreamEvent::Stanza(back))) => assert_eq!(back, s, "{text}"),
                        other => panic!("{text} read back as {other:?}"),
                    }
                }
                Ok(Some(StreamEvent::Closed)) | Ok(None) | Err(_) => break,
            }
        }
    }
});
