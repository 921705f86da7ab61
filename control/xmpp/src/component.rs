//! The call bridge's side of XEP-0114, sans-IO: it opens a stream to the
//! component's JID, answers the server's stream id with
//! `hex(SHA-1(id + secret))`, and once the server says `<handshake/>` the
//! link carries stanzas both ways.
//!
//! The shell ([`crate::link`]) moves the bytes: [`ComponentLink::handle_input`]
//! in, [`ComponentLink::poll_transmit`] and [`ComponentLink::poll_event`] out.

use std::collections::VecDeque;

use sha1::{Digest, Sha1};

use crate::element::Element;
use crate::stream::{Limits, StreamError, StreamEvent, StreamReader};
use crate::{NS_COMPONENT, NS_STREAMS, NS_STREAM_ERRORS};

/// Why a component link ended.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// The server refused our name or secret (`not-authorized`, or a
    /// `host-unknown` for a name it has no component for, or `conflict`
    /// for a name already attached).
    #[error("the server refused the component: {0}")]
    Refused(String),
    /// The server ended the stream with another error condition.
    #[error("stream error from the server: {0}")]
    StreamError(String),
    /// The server closed the stream.
    #[error("the server closed the stream")]
    Closed,
    /// What the server sent is not an XMPP stream we can read.
    #[error("unreadable stream: {0}")]
    Protocol(#[from] StreamError),
}

/// What happened on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The server accepted the handshake.
    Connected,
    /// A stanza for the component.
    Stanza(Element),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingHeader,
    AwaitingHandshake,
    Connected,
    Ended,
}

/// One component stream.
#[derive(Debug)]
pub struct ComponentLink {
    secret: String,
    reader: StreamReader,
    state: State,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
}

/// The XEP-0114 handshake value: lower-case hex of SHA-1(stream id + secret).
pub fn handshake(stream_id: &str, secret: &str) -> String {
    let digest = Sha1::digest(format!("{stream_id}{secret}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl ComponentLink {
    /// A link for the component `jid` (e.g. `cb1.example.com`) with its
    /// shared secret; its stream header is the first transmit.
    pub fn new(jid: &str, secret: &str) -> ComponentLink {
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='{NS_STREAMS}' to='{}'>",
            crate::element::escape(jid)
        );
        ComponentLink {
            secret: secret.to_string(),
            reader: StreamReader::new(Limits::default()),
            state: State::AwaitingHeader,
            transmit: VecDeque::from([header.into_bytes()]),
            events: VecDeque::new(),
        }
    }

    /// Whether the handshake was accepted.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Bytes from the server. An error ends the link: the shell closes the
    /// connection (after sending what [`ComponentLink::poll_transmit`] has).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        if self.state == State::Ended {
            return Err(LinkError::Closed);
        }
        self.reader.feed(bytes);
        let result = self.read_events();
        if result.is_err() {
            self.state = State::Ended;
        }
        result
    }

    fn read_events(&mut self) -> Result<(), LinkError> {
        while let Some(event) = self.reader.next_event()? {
            match (self.state, event) {
                (State::AwaitingHeader, StreamEvent::Header(h)) => {
                    let id = h.get("id").ok_or(LinkError::StreamError("no stream id".into()))?;
                    let value = handshake(id, &self.secret);
                    self.transmit.push_back(format!("<handshake>{value}</handshake>").into_bytes());
                    self.state = State::AwaitingHandshake;
                }
                (_, StreamEvent::Closed) => return Err(LinkError::Closed),
                (_, StreamEvent::Stanza(s)) if s.is("error", NS_STREAMS) => {
                    let condition = s
                        .elements()
                        .find(|e| e.ns == NS_STREAM_ERRORS && e.name != "text")
                        .map(|e| e.name.clone())
                        .unwrap_or_else(|| "undefined-condition".into());
                    return Err(match condition.as_str() {
                        "not-authorized" | "host-unknown" | "conflict" if self.state != State::Connected => {
                            LinkError::Refused(condition)
                        }
                        _ => LinkError::StreamError(condition),
                    });
                }
                (State::AwaitingHandshake, StreamEvent::Stanza(s)) if s.is("handshake", NS_COMPONENT) => {
                    self.state = State::Connected;
                    self.events.push_back(LinkEvent::Connected);
                }
                (State::Connected, StreamEvent::Stanza(s)) => self.events.push_back(LinkEvent::Stanza(s)),
                (_, other) => return Err(LinkError::StreamError(format!("unexpected {other:?}"))),
            }
        }
        Ok(())
    }

    /// Sends a stanza (queued; only once connected does the server take it).
    pub fn send(&mut self, stanza: &Element) {
        self.transmit.push_back(stanza.to_xml(NS_COMPONENT).into_bytes());
    }

    /// A whitespace keepalive (RFC 6120 §4.6.1), for a link quiet too long.
    pub fn keepalive(&mut self) {
        if self.transmit.is_empty() {
            self.transmit.push_back(b" ".to_vec());
        }
    }

    /// Ends the stream politely.
    pub fn close(&mut self) {
        self.state = State::Ended;
        self.transmit.push_back(b"</stream:stream>".to_vec());
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_header(id: &str) -> String {
        format!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='{NS_STREAMS}' xmlns='{NS_COMPONENT}' \
             from='cb1.example.com' id='{id}'>"
        )
    }

    #[test]
    fn handshake_is_hex_sha1_of_id_and_secret() {
        // XEP-0114 §3's stream id and secret; digest by Python's hashlib.
        assert_eq!(handshake("3BF96D32", "secret"), "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136");
    }

    #[test]
    fn connects_and_carries_stanzas() {
        let mut link = ComponentLink::new("cb1.example.com", "s3cret");
        let header = String::from_utf8(link.poll_transmit().expect("header")).expect("utf8");
        assert!(header.contains("to='cb1.example.com'") && header.contains(NS_COMPONENT), "{header}");
        link.handle_input(server_header("42").as_bytes()).expect("header");
        let hs = String::from_utf8(link.poll_transmit().expect("handshake")).expect("utf8");
        assert_eq!(hs, format!("<handshake>{}</handshake>", handshake("42", "s3cret")));
        assert!(!link.is_connected());
        link.handle_input(b"<handshake/>").expect("accepted");
        assert_eq!(link.poll_event(), Some(LinkEvent::Connected));
        link.handle_input(b"<iq type='get' id='1' from='a@example.com/r' to='cb1.example.com'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>").expect("iq");
        let Some(LinkEvent::Stanza(iq)) = link.poll_event() else { panic!("stanza") };
        assert_eq!(iq.get_attr("id"), Some("1"));
        link.send(&Element::new("iq", NS_COMPONENT).attr("type", "result").attr("id", "1"));
        assert_eq!(link.poll_transmit().as_deref(), Some(&b"<iq type='result' id='1'/>"[..]));
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let mut link = ComponentLink::new("cb1.example.com", "wrong");
        link.handle_input(server_header("42").as_bytes()).expect("header");
        let refusal = format!(
            "<stream:error><not-authorized xmlns='{NS_STREAM_ERRORS}'/><text xmlns='{NS_STREAM_ERRORS}'>no</text></stream:error></stream:stream>"
        );
        assert_eq!(link.handle_input(refusal.as_bytes()), Err(LinkError::Refused("not-authorized".into())));
    }
}
