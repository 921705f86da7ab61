//! A client's stream on our server, sans-IO (RFC 6120): STARTTLS first and
//! required, then SASL — SCRAM-SHA-1 and PLAIN, offered only once the
//! stream is encrypted — then resource binding, then stanzas. No password
//! is kept here: for PLAIN the shell asks the call bridge over its component
//! link ([`C2sEvent::Authenticate`], answered by
//! [`ClientSession::auth_result`]), as CMS's XMPP server does; for SCRAM it
//! asks the call bridge for the user's SCRAM credential
//! ([`C2sEvent::ScramLookup`], answered by [`ClientSession::scram_credential`])
//! and the proof is checked here (RFC 5802), without the password.

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use confero_https::scram::{hmac, sha1, ScramCredential};

use crate::element::Element;
use crate::stream::{Limits, StreamError, StreamEvent, StreamReader};
use crate::{NS_STREAMS, NS_STREAM_ERRORS};

/// The client stream's default namespace.
pub const NS_CLIENT: &str = "jabber:client";
/// STARTTLS.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL.
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding.
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 sessions (still asked for by older clients).
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// Stanza errors.
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Wrong passwords on one stream before it is closed.
const MAX_AUTH_FAILURES: u32 = 3;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum C2sEvent {
    /// Send what is queued, then start TLS on the connection and call
    /// [`ClientSession::tls_established`].
    StartTls,
    /// Check these credentials (with the call bridge), then call
    /// [`ClientSession::auth_result`].
    Authenticate {
        /// The user name as given.
        user: String,
        /// The password.
        password: String,
    },
    /// Find `user`'s SCRAM credential (with the call bridge), then call
    /// [`ClientSession::scram_credential`].
    ScramLookup {
        /// The user name as given.
        user: String,
    },
    /// The client is now this full JID.
    Bound {
        /// `user@domain/resource`.
        jid: String,
    },
    /// A stanza to someone else (its `from` set to the client's full JID).
    Route(Element),
    /// An IQ to the server itself (or the user's bare JID): roster, ping.
    ServerIq(Element),
    /// The stream is over; close once the transmits are sent.
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitingHeader,
    Negotiating,
    AwaitingTls,
    AwaitingAuth { user: String },
    AwaitingScramLookup(Box<ScramStart>),
    ScramChallenged(Box<ScramChallenged>),
    Active,
    Ended,
}

/// A SCRAM exchange after the client's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScramStart {
    user: String,
    gs2_header: String,
    client_first_bare: String,
    client_nonce: String,
}

/// A SCRAM exchange after our challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScramChallenged {
    user: String,
    gs2_header: String,
    nonce: String,
    auth_prefix: String,
    credential: ScramCredential,
    known: bool,
}

/// One client connection.
#[derive(Debug)]
pub struct ClientSession {
    domain: String,
    limits: Limits,
    reader: StreamReader,
    stream_id: String,
    state: State,
    tls: bool,
    user: Option<String>,
    jid: Option<String>,
    failures: u32,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<C2sEvent>,
}

impl ClientSession {
    /// A session for `domain`; `stream_id` random from the caller.
    pub fn new(domain: &str, stream_id: &str, limits: Limits) -> ClientSession {
        ClientSession {
            domain: domain.to_ascii_lowercase(),
            limits,
            reader: StreamReader::new(limits),
            stream_id: stream_id.to_string(),
            state: State::AwaitingHeader,
            tls: false,
            user: None,
            jid: None,
            failures: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The bound full JID.
    pub fn jid(&self) -> Option<&str> {
        self.jid.as_deref()
    }

    /// The authenticated user.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Bytes from the client.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Ended | State::AwaitingTls) {
            return;
        }
        self.reader.feed(bytes);
        loop {
            // One SASL exchange at a time: what follows waits its answer.
            if matches!(
                self.state,
                State::AwaitingAuth { .. } | State::AwaitingScramLookup(_) | State::AwaitingTls | State::Ended
            ) {
                return;
            }
            match self.reader.next_event() {
                Ok(Some(event)) => self.on_event(event),
                Ok(None) => return,
                Err(e) => return self.fail(stream_condition(&e)),
            }
        }
    }

    fn on_event(&mut self, event: StreamEvent) {
        match (self.state.clone(), event) {
            (State::AwaitingHeader, StreamEvent::Header(h)) => {
                let to = h.get("to").unwrap_or_default().to_ascii_lowercase();
                self.transmit.push_back(
                    format!(
                        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}' \
                         from='{}' id='{}' version='1.0'>",
                        crate::element::escape(&self.domain),
                        crate::element::escape(&self.stream_id)
                    )
                    .into_bytes(),
                );
                if h.ns != NS_CLIENT {
                    return self.fail("invalid-namespace");
                }
                if to != self.domain {
                    return self.fail("host-unknown");
                }
                self.features();
                self.state = if self.jid.is_some() { State::Active } else { State::Negotiating };
            }
            (_, StreamEvent::Closed) => {
                self.transmit.push_back(b"</stream:stream>".to_vec());
                self.end();
            }
            (State::Negotiating, StreamEvent::Stanza(s)) => self.negotiate(s),
            (State::ScramChallenged(c), StreamEvent::Stanza(s)) => self.scram_final(*c, s),
            (State::Active, StreamEvent::Stanza(s)) => self.active(s),
            _ => self.fail("not-authorized"),
        }
    }

    fn features(&mut self) {
        let mut features = Element::new("features", NS_STREAMS);
        if !self.tls {
            features = features.child(Element::new("starttls", NS_TLS).child(Element::new("required", NS_TLS)));
        } else if self.user.is_none() {
            features = features.child(
                Element::new("mechanisms", NS_SASL)
                    .child(Element::new("mechanism", NS_SASL).text("SCRAM-SHA-1"))
                    .child(Element::new("mechanism", NS_SASL).text("PLAIN")),
            );
        } else {
            features = features
                .child(Element::new("bind", NS_BIND))
                .child(Element::new("session", NS_SESSION).child(Element::new("optional", NS_SESSION)));
        }
        self.send_raw(&features);
    }

    fn negotiate(&mut self, s: Element) {
        if s.is("starttls", NS_TLS) && !self.tls {
            self.send_raw(&Element::new("proceed", NS_TLS));
            self.state = State::AwaitingTls;
            self.events.push_back(C2sEvent::StartTls);
            return;
        }
        if s.is("auth", NS_SASL) {
            if !self.tls {
                // No credentials ever cross an unencrypted stream.
                self.send_raw(&Element::new("failure", NS_SASL).child(Element::new("encryption-required", NS_SASL)));
                return self.fail("policy-violation");
            }
            if self.user.is_some() {
                return self.fail("policy-violation");
            }
            if s.get_attr("mechanism") == Some("SCRAM-SHA-1") {
                match scram_client_first(s.text_content().trim()) {
                    Some(start) => {
                        let user = start.user.clone();
                        self.state = State::AwaitingScramLookup(Box::new(start));
                        self.events.push_back(C2sEvent::ScramLookup { user });
                    }
                    None => self
                        .send_raw(&Element::new("failure", NS_SASL).child(Element::new("malformed-request", NS_SASL))),
                }
                return;
            }
            if s.get_attr("mechanism") != Some("PLAIN") {
                self.send_raw(&Element::new("failure", NS_SASL).child(Element::new("invalid-mechanism", NS_SASL)));
                return;
            }
            match plain_credentials(s.text_content().trim()) {
                Some((user, password)) => {
                    self.state = State::AwaitingAuth { user: user.clone() };
                    self.events.push_back(C2sEvent::Authenticate { user, password });
                }
                None => {
                    self.send_raw(&Element::new("failure", NS_SASL).child(Element::new("malformed-request", NS_SASL)))
                }
            }
            return;
        }
        if s.name == "iq" && self.user.is_some() && s.find("bind", NS_BIND).is_some() {
            let resource = s
                .find("bind", NS_BIND)
                .and_then(|b| b.find("resource", NS_BIND))
                .map(|r| r.text_content().trim().to_string())
                .filter(|r| !r.is_empty() && r.len() <= 256 && !r.chars().any(char::is_control))
                .unwrap_or_else(|| format!("confero-{}", self.stream_id.chars().take(8).collect::<String>()));
            let jid = format!("{}@{}/{}", self.user.as_deref().unwrap_or_default(), self.domain, resource);
            let reply =
                result_of(&s).child(Element::new("bind", NS_BIND).child(Element::new("jid", NS_BIND).text(&jid)));
            self.send_raw(&reply);
            self.jid = Some(jid.clone());
            self.state = State::Active;
            self.events.push_back(C2sEvent::Bound { jid });
            return;
        }
        self.fail("not-authorized");
    }

    fn active(&mut self, mut s: Element) {
        if s.find("session", NS_SESSION).is_some() && s.name == "iq" {
            let reply = result_of(&s);
            return self.send_raw(&reply);
        }
        if !matches!(s.name.as_str(), "iq" | "message" | "presence") || s.ns != NS_CLIENT {
            return self.fail("unsupported-stanza-type");
        }
        let Some(jid) = self.jid.clone() else { return self.fail("not-authorized") };
        s.set_attr("from", &jid);
        let bare = jid.split('/').next().unwrap_or_default().to_string();
        let to = s.get_attr("to").map(str::to_ascii_lowercase);
        match to.as_deref() {
            None => {
                if s.name == "iq" {
                    self.events.push_back(C2sEvent::ServerIq(s));
                }
                // Presence to the server: accepted; nobody subscribes.
            }
            Some(t) if t == self.domain || t == bare => {
                if s.name == "iq" {
                    self.events.push_back(C2sEvent::ServerIq(s));
                }
            }
            Some(_) => self.events.push_back(C2sEvent::Route(s)),
        }
    }

    /// The call bridge's verdict on the credentials.
    pub fn auth_result(&mut self, allowed: bool) {
        let State::AwaitingAuth { user } = self.state.clone() else { return };
        if allowed {
            self.send_raw(&Element::new("success", NS_SASL));
            self.user = Some(user.to_ascii_lowercase());
            self.reader.restart();
            self.state = State::AwaitingHeader;
        } else {
            self.failures += 1;
            self.send_raw(&Element::new("failure", NS_SASL).child(Element::new("not-authorized", NS_SASL)));
            self.state = State::Negotiating;
            if self.failures >= MAX_AUTH_FAILURES {
                return self.fail("policy-violation");
            }
        }
        // Bytes that arrived while the check ran.
        self.handle_input(&[]);
    }

    /// The user's SCRAM credential (`None`: unknown, or no credential; the
    /// exchange then goes on with a made-up one and fails at its end, so a
    /// client cannot tell names apart), and our nonce (random, from the
    /// caller).
    pub fn scram_credential(&mut self, credential: Option<ScramCredential>, server_nonce: &str) {
        let State::AwaitingScramLookup(start) = self.state.clone() else { return };
        let known = credential.is_some();
        let credential = credential.unwrap_or_else(|| ScramCredential {
            iterations: confero_https::scram::ITERATIONS,
            salt: sha1(format!("{}{}", start.user, self.stream_id).as_bytes()).to_vec(),
            stored_key: [0; 20],
            server_key: [0; 20],
        });
        let nonce = format!("{}{}", start.client_nonce, server_nonce);
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        self.send_raw(&Element::new("challenge", NS_SASL).text(&B64.encode(&server_first)));
        self.state = State::ScramChallenged(Box::new(ScramChallenged {
            user: start.user.clone(),
            gs2_header: start.gs2_header.clone(),
            nonce,
            auth_prefix: format!("{},{server_first}", start.client_first_bare),
            credential,
            known,
        }));
        self.handle_input(&[]);
    }

    fn scram_final(&mut self, c: ScramChallenged, s: Element) {
        if s.is("abort", NS_SASL) {
            self.send_raw(&Element::new("failure", NS_SASL).child(Element::new("aborted", NS_SASL)));
            self.state = State::Negotiating;
            return;
        }
        if !s.is("response", NS_SASL) {
            return self.fail("not-authorized");
        }
        let text = B64.decode(s.text_content().trim()).ok().and_then(|b| String::from_utf8(b).ok());
        let verified = text.as_deref().and_then(|t| {
            let (without_proof, proof) = t.rsplit_once(",p=")?;
            let mut binding = None;
            let mut nonce = None;
            for attr in without_proof.split(',') {
                match attr.split_once('=') {
                    Some(("c", v)) => binding = Some(v),
                    Some(("r", v)) => nonce = Some(v),
                    _ => {}
                }
            }
            let binding = B64.decode(binding?).ok()?;
            if binding != c.gs2_header.as_bytes() || nonce? != c.nonce {
                return None;
            }
            let proof: [u8; 20] = B64.decode(proof).ok()?.try_into().ok()?;
            let auth_message = format!("{},{without_proof}", c.auth_prefix);
            let signature = hmac(&c.credential.stored_key, auth_message.as_bytes());
            let client_key: Vec<u8> = proof.iter().zip(signature.iter()).map(|(p, s)| p ^ s).collect();
            let same = sha1(&client_key).iter().zip(c.credential.stored_key.iter()).fold(0u8, |a, (x, y)| a | (x ^ y));
            (same == 0 && c.known).then(|| hmac(&c.credential.server_key, auth_message.as_bytes()))
        });
        match verified {
            Some(server_signature) => {
                let v = format!("v={}", B64.encode(server_signature));
                self.send_raw(&Element::new("success", NS_SASL).text(&B64.encode(v)));
                self.user = Some(c.user.to_ascii_lowercase());
                self.reader.restart();
                self.state = State::AwaitingHeader;
            }
            None => {
                self.failures += 1;
                self.send_raw(&Element::new("failure", NS_SASL).child(Element::new("not-authorized", NS_SASL)));
                self.state = State::Negotiating;
                if self.failures >= MAX_AUTH_FAILURES {
                    self.fail("policy-violation");
                }
            }
        }
    }

    /// TLS is up: the client starts a new stream over it.
    pub fn tls_established(&mut self) {
        if self.state == State::AwaitingTls {
            self.tls = true;
            self.reader = StreamReader::new(self.limits);
            self.state = State::AwaitingHeader;
        }
    }

    /// Delivers a stanza to the client.
    pub fn send(&mut self, stanza: &Element) {
        if self.state == State::Active {
            self.send_raw(stanza);
        }
    }

    fn send_raw(&mut self, e: &Element) {
        self.transmit.push_back(e.to_xml(NS_CLIENT).into_bytes());
    }

    fn fail(&mut self, condition: &str) {
        if self.state == State::AwaitingHeader {
            // The stream must be open before an error can be sent in it.
            self.transmit.push_back(
                format!("<stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}' version='1.0'>").into_bytes(),
            );
        }
        let error = Element::new("error", NS_STREAMS).child(Element::new(condition, NS_STREAM_ERRORS));
        self.send_raw(&error);
        self.transmit.push_back(b"</stream:stream>".to_vec());
        self.end();
    }

    fn end(&mut self) {
        if self.state != State::Ended {
            self.state = State::Ended;
            self.events.push_back(C2sEvent::Ended);
        }
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<C2sEvent> {
        self.events.pop_front()
    }
}

/// The stream error for a reader's refusal.
pub fn stream_condition(e: &StreamError) -> &'static str {
    match e {
        StreamError::TooLarge => "policy-violation",
        StreamError::Restricted => "restricted-xml",
        StreamError::NotAStream => "invalid-namespace",
        _ => "not-well-formed",
    }
}

/// The `result` answering an IQ, addressed back to its sender.
pub fn result_of(iq: &Element) -> Element {
    let mut reply = Element::new("iq", NS_CLIENT).attr("type", "result");
    if let Some(id) = iq.get_attr("id") {
        reply.set_attr("id", id);
    }
    reply
}

/// A SCRAM client-first message (base64): `n,,n=user,r=nonce`. Channel
/// binding is refused (`p=`); an authzid other than the user too.
fn scram_client_first(b64: &str) -> Option<ScramStart> {
    let text = String::from_utf8(B64.decode(b64).ok()?).ok()?;
    let (cb, rest) = text.split_once(',')?;
    if cb != "n" && cb != "y" {
        return None;
    }
    let (authz, bare) = rest.split_once(',')?;
    let mut user = None;
    let mut nonce = None;
    for attr in bare.split(',') {
        match attr.split_once('=') {
            Some(("n", v)) => user = Some(v.replace("=2C", ",").replace("=3D", "=")),
            Some(("r", v)) => nonce = Some(v.to_string()),
            Some(("m", _)) => return None,
            _ => {}
        }
    }
    let (user, nonce) = (user?, nonce?);
    if !authz.is_empty() && authz.strip_prefix("a=").is_none_or(|a| !a.eq_ignore_ascii_case(&user)) {
        return None;
    }
    if !valid_user(&user) || nonce.is_empty() || nonce.contains(',') {
        return None;
    }
    Some(ScramStart {
        user,
        gs2_header: format!("{cb},{authz},"),
        client_first_bare: bare.to_string(),
        client_nonce: nonce,
    })
}

fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 255
        && !user.chars().any(|c| c.is_whitespace() || c.is_control() || "\"&'/:<>@".contains(c))
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`, base64. An authzid other
/// than the user is refused (nobody acts for another here).
fn plain_credentials(b64: &str) -> Option<(String, String)> {
    let raw = B64.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\0');
    let (authz, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || password.is_empty() || user.len() > 255 {
        return None;
    }
    let user = user.split('@').next().unwrap_or(user).to_string();
    if !authz.is_empty()
        && !authz.eq_ignore_ascii_case(&user)
        && !authz.to_ascii_lowercase().starts_with(&format!("{}@", user.to_ascii_lowercase()))
    {
        return None;
    }
    if !valid_user(&user) {
        return None;
    }
    Some((user, password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
        to='example.test' version='1.0'>";

    fn sent(s: &mut ClientSession) -> String {
        let mut out = String::new();
        while let Some(b) = s.poll_transmit() {
            out.push_str(&String::from_utf8_lossy(&b));
        }
        out
    }

    #[test]
    fn tls_then_plain_then_bind() {
        let mut s = ClientSession::new("example.test", "abcdef0123", Limits::default());
        s.handle_input(OPEN.as_bytes());
        assert!(sent(&mut s).contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"));
        s.handle_input(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        assert!(sent(&mut s).contains("<proceed"));
        assert_eq!(s.poll_event(), Some(C2sEvent::StartTls));
        s.tls_established();
        s.handle_input(OPEN.as_bytes());
        assert!(sent(&mut s).contains("<mechanism>PLAIN</mechanism>"));
        let creds = base64::engine::general_purpose::STANDARD.encode("\0alice\0pw");
        s.handle_input(format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>").as_bytes());
        assert_eq!(s.poll_event(), Some(C2sEvent::Authenticate { user: "alice".into(), password: "pw".into() }));
        s.auth_result(true);
        assert!(sent(&mut s).contains("<success"));
        s.handle_input(OPEN.as_bytes());
        assert!(sent(&mut s).contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));
        s.handle_input(
            format!("<iq type='set' id='b'><bind xmlns='{NS_BIND}'><resource>r</resource></bind></iq>").as_bytes(),
        );
        assert!(sent(&mut s).contains("<jid>alice@example.test/r</jid>"));
        assert_eq!(s.poll_event(), Some(C2sEvent::Bound { jid: "alice@example.test/r".into() }));
        s.handle_input(
            b"<iq type='get' id='d' to='cb1.example.test'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        );
        let Some(C2sEvent::Route(iq)) = s.poll_event() else { panic!("route") };
        assert_eq!(iq.get_attr("from"), Some("alice@example.test/r"));
    }

    /// A SCRAM-SHA-1 client, by RFC 5802's steps.
    fn scram_login(password: &str, known: bool) -> String {
        let mut s = ClientSession::new("example.test", "abcdef0123", Limits::default());
        s.handle_input(OPEN.as_bytes());
        s.handle_input(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        s.tls_established();
        s.handle_input(OPEN.as_bytes());
        assert!(sent(&mut s).contains("<mechanism>SCRAM-SHA-1</mechanism>"));
        let first_bare = "n=alice,r=cnonce";
        s.handle_input(
            format!(
                "<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>{}</auth>",
                B64.encode(format!("n,,{first_bare}"))
            )
            .as_bytes(),
        );
        while let Some(e) = s.poll_event() {
            assert!(matches!(e, C2sEvent::StartTls | C2sEvent::ScramLookup { .. }), "{e:?}");
        }
        let stored = ScramCredential::new("secret", b"salty", 4096);
        s.scram_credential(known.then_some(stored), "snonce");
        let out = sent(&mut s);
        let challenge = out
            .split("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
            .nth(1)
            .and_then(|c| c.split('<').next())
            .expect("challenge");
        let server_first = String::from_utf8(B64.decode(challenge).expect("b64")).expect("utf8");
        assert!(server_first.starts_with("r=cnoncesnonce,s="), "{server_first}");
        let without_proof = "c=biws,r=cnoncesnonce";
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let mine = ScramCredential::new(password, b"salty", 4096);
        let salted_client_key = {
            // ClientKey = StoredKey's preimage: recompute it from the password.
            let mut block = b"salty".to_vec();
            block.extend_from_slice(&1u32.to_be_bytes());
            let mut u = hmac(password.as_bytes(), &block);
            let mut salted = u;
            for _ in 1..4096 {
                u = hmac(password.as_bytes(), &u);
                salted.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
            }
            hmac(&salted, b"Client Key")
        };
        let signature = hmac(&mine.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = salted_client_key.iter().zip(signature.iter()).map(|(k, s)| k ^ s).collect();
        let response = B64.encode(format!("{without_proof},p={}", B64.encode(proof)));
        s.handle_input(format!("<response xmlns='{NS_SASL}'>{response}</response>").as_bytes());
        sent(&mut s)
    }

    #[test]
    fn scram_sha_1_proves_the_password() {
        assert!(scram_login("secret", true).contains("<success"));
        assert!(scram_login("wrong", true).contains("not-authorized"));
        assert!(scram_login("secret", false).contains("not-authorized"));
    }

    #[test]
    fn no_credentials_before_tls() {
        let mut s = ClientSession::new("example.test", "abcdef0123", Limits::default());
        s.handle_input(OPEN.as_bytes());
        let creds = base64::engine::general_purpose::STANDARD.encode("\0alice\0pw");
        s.handle_input(format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>").as_bytes());
        let out = sent(&mut s);
        assert!(out.contains("encryption-required") && out.contains("policy-violation"), "{out}");
        assert_eq!(s.poll_event(), Some(C2sEvent::Ended));
    }

    #[test]
    fn wrong_passwords_end_the_stream() {
        let mut s = ClientSession::new("example.test", "abcdef0123", Limits::default());
        s.handle_input(OPEN.as_bytes());
        s.handle_input(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        s.tls_established();
        s.handle_input(OPEN.as_bytes());
        let creds = base64::engine::general_purpose::STANDARD.encode("\0alice\0bad");
        for _ in 0..3 {
            while s.poll_event().is_some() {}
            s.handle_input(format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{creds}</auth>").as_bytes());
            s.auth_result(false);
        }
        assert!(sent(&mut s).contains("not-authorized"));
        assert!(std::iter::from_fn(|| s.poll_event()).any(|e| e == C2sEvent::Ended));
    }
}
