//! The XMPP stream reader: any bytes, cut anywhere, give events or an
//! error, never a panic; every stanza we read, written back by us and read
//! again, is the same stanza.
#![no_main]
use confero_xmpp::stream::{Limits, StreamEvent, StreamReader};
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let limits = Limits { max_stanza: 4096, max_depth: 8 };
    let mut reader = StreamReader::new(limits);
    // The first byte says where to cut the rest into pieces.
    for piece in rest.chunks(usize::from(cut).max(1)) {
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
