//! Our server's side of XEP-0114, sans-IO: a component opens a stream to
//! its JID, we answer with a fresh stream id, and accept the handshake only
//! if it is `hex(SHA-1(id + secret))` for a component we know by that JID.
//! The id comes from the caller (its RNG); the comparison takes the same
//! time whatever the bytes.

use std::collections::VecDeque;

use crate::component::handshake;
use crate::element::Element;
use crate::stream::{Limits, StreamEvent, StreamReader};
use crate::{NS_COMPONENT, NS_STREAMS, NS_STREAM_ERRORS};

/// What happened on a component's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptEvent {
    /// The component proved its secret: it is `jid` from now on.
    Authenticated {
        /// Its JID.
        jid: String,
    },
    /// A stanza from the authenticated component.
    Stanza(Element),
    /// The stream is over (refused, closed or unreadable); close the
    /// connection once the transmits are sent.
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitingHeader,
    AwaitingHandshake { jid: String, expected: String },
    Authenticated,
    Ended,
}

/// One component connection on our component port.
#[derive(Debug)]
pub struct ComponentSession {
    reader: StreamReader,
    stream_id: String,
    state: State,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<AcceptEvent>,
}

impl ComponentSession {
    /// A session whose stream id will be `stream_id` (random, from the
    /// caller).
    pub fn new(stream_id: &str, limits: Limits) -> ComponentSession {
        ComponentSession {
            reader: StreamReader::new(limits),
            stream_id: stream_id.to_string(),
            state: State::AwaitingHeader,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Bytes from the component; `secret_of` gives the secret of a
    /// component JID we know (`None`: unknown).
    pub fn handle_input(&mut self, bytes: &[u8], secret_of: &dyn Fn(&str) -> Option<String>) {
        if self.state == State::Ended {
            return;
        }
        self.reader.feed(bytes);
        loop {
            let event = match self.reader.next_event() {
                Ok(Some(e)) => e,
                Ok(None) => return,
                Err(e) => {
                    let condition = match e {
                        crate::stream::StreamError::TooLarge => "policy-violation",
                        crate::stream::StreamError::Restricted => "restricted-xml",
                        crate::stream::StreamError::NotAStream => "invalid-namespace",
                        _ => "not-well-formed",
                    };
                    return self.fail(condition, None);
                }
            };
            match (&self.state, event) {
                (State::AwaitingHeader, StreamEvent::Header(h)) => {
                    let to = h.get("to").unwrap_or_default().to_ascii_lowercase();
                    self.transmit.push_back(
                        format!(
                            "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='{NS_STREAMS}' \
                             from='{}' id='{}'>",
                            crate::element::escape(&to),
                            crate::element::escape(&self.stream_id)
                        )
                        .into_bytes(),
                    );
                    if h.ns != NS_COMPONENT {
                        return self.fail("invalid-namespace", None);
                    }
                    match secret_of(&to) {
                        Some(secret) => {
                            let expected = handshake(&self.stream_id, &secret);
                            self.state = State::AwaitingHandshake { jid: to, expected };
                        }
                        None => return self.fail("host-unknown", Some("no such component")),
                    }
                }
                (State::AwaitingHandshake { jid, expected }, StreamEvent::Stanza(s))
                    if s.is("handshake", NS_COMPONENT) =>
                {
                    let given = s.text_content().trim().to_ascii_lowercase();
                    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                        let jid = jid.clone();
                        self.transmit.push_back(b"<handshake/>".to_vec());
                        self.state = State::Authenticated;
                        self.events.push_back(AcceptEvent::Authenticated { jid });
                    } else {
                        return self.fail("not-authorized", Some("wrong handshake"));
                    }
                }
                (State::Authenticated, StreamEvent::Stanza(s)) => self.events.push_back(AcceptEvent::Stanza(s)),
                (_, StreamEvent::Closed) => {
                    self.transmit.push_back(b"</stream:stream>".to_vec());
                    self.end();
                    return;
                }
                _ => return self.fail("not-authorized", None),
            }
        }
    }

    fn fail(&mut self, condition: &str, text: Option<&str>) {
        let mut error = Element::new("error", NS_STREAMS).child(Element::new(condition, NS_STREAM_ERRORS));
        if let Some(t) = text {
            error = error.child(Element::new("text", NS_STREAM_ERRORS).text(t));
        }
        self.transmit.push_back(error.to_xml(NS_COMPONENT).into_bytes());
        self.transmit.push_back(b"</stream:stream>".to_vec());
        self.end();
    }

    fn end(&mut self) {
        self.state = State::Ended;
        self.events.push_back(AcceptEvent::Ended);
    }

    /// Sends a stanza to the component.
    pub fn send(&mut self, stanza: &Element) {
        if self.state == State::Authenticated {
            self.transmit.push_back(stanza.to_xml(NS_COMPONENT).into_bytes());
        }
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<AcceptEvent> {
        self.events.pop_front()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::{ComponentLink, LinkError, LinkEvent};

    /// Our component client against our acceptor, bytes passed by hand.
    fn run(secret_known: &str, secret_used: &str, jid: &str) -> (Result<(), LinkError>, Vec<AcceptEvent>) {
        let mut client = ComponentLink::new(jid, secret_used);
        let mut server = ComponentSession::new("f00d", Limits::default());
        let known = |j: &str| (j == "cb1.example.com").then(|| secret_known.to_string());
        let mut events = Vec::new();
        for _ in 0..4 {
            while let Some(b) = client.poll_transmit() {
                server.handle_input(&b, &known);
            }
            while let Some(e) = server.poll_event() {
                events.push(e);
            }
            while let Some(b) = server.poll_transmit() {
                if let Err(e) = client.handle_input(&b) {
                    return (Err(e), events);
                }
            }
        }
        assert_eq!(client.poll_event(), Some(LinkEvent::Connected));
        (Ok(()), events)
    }

    #[test]
    fn our_client_and_our_server_agree() {
        let (result, events) = run("s3cret", "s3cret", "cb1.example.com");
        assert_eq!(result, Ok(()));
        assert_eq!(events, vec![AcceptEvent::Authenticated { jid: "cb1.example.com".into() }]);
    }

    #[test]
    fn a_wrong_secret_or_name_is_refused() {
        let (result, events) = run("s3cret", "wrong", "cb1.example.com");
        assert_eq!(result, Err(LinkError::Refused("not-authorized".into())));
        assert_eq!(events, vec![AcceptEvent::Ended]);
        let (result, _) = run("s3cret", "s3cret", "cb2.example.com");
        assert_eq!(result, Err(LinkError::Refused("host-unknown".into())));
    }
}
