//! The user agent the call bridge drives: calls in (UAS) and out (UAC), one
//! dialog per call (RFC 3261 §12-15), 100rel (RFC 3262), session timers
//! (RFC 4028), DTMF over INFO, OPTIONS, and a 503 gate for overload.
//!
//! Sans-IO like the rest of the crate: the shell hands in datagrams or framed
//! stream messages with the time ([`UserAgent::handle_datagram`],
//! [`UserAgent::handle_message`]), fires [`UserAgent::handle_timeout`] at
//! [`UserAgent::next_timeout`], sends what [`UserAgent::poll_transmit`] gives,
//! and passes [`UserAgent::poll_event`]'s events to the bridge, whose answers
//! come back as commands ([`UserAgent::accept`], [`UserAgent::reject`], ...).
//!
//! SDP is carried as bytes: what to answer is the bridge's decision (with
//! [`crate::sdp::answer`]), so this module knows calls, not media. Commands for
//! things the bridge asked for raise no event; events are what the peer or a
//! timer did.

mod dialog;
mod dtmf;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::message::{Limits, Message, Method, NameAddr, Refresher, SessionExpires, SipUri};
use crate::transaction::{
    Peer, Received, Timers, TransactionEvent, TransactionKey, TransactionLayer, Transmit, Transport,
};
use dialog::{Call, CallState, Pending, Purpose, Retransmit, Role, Session};

/// Settings of the user agent.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our address for UDP and TCP (Via sent-by and Contact).
    pub local_addr: SocketAddr,
    /// Our TLS address, when TLS listens.
    pub tls_addr: Option<SocketAddr>,
    /// The user part of our Contact.
    pub contact_user: String,
    /// The User-Agent / Server header.
    pub product: String,
    /// Transaction timer bases.
    pub timers: Timers,
    /// Message limits.
    pub limits: Limits,
    /// The session interval we ask for or grant (RFC 4028), seconds.
    pub session_expires: u32,
    /// The smallest session interval we accept (RFC 4028 Min-SE), seconds.
    pub min_se: u32,
    /// Calls at once; further INVITEs get 503.
    pub max_calls: usize,
}

impl Default for UaConfig {
    fn default() -> Self {
        UaConfig {
            local_addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
            tls_addr: None,
            contact_user: "confero".into(),
            product: concat!("Confero/", env!("CARGO_PKG_VERSION")).into(),
            timers: Timers::default(),
            limits: Limits::default(),
            session_expires: 1800,
            min_se: 90,
            max_calls: 10_000,
        }
    }
}

/// One call, as the bridge names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Why a call ended without the bridge asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteHangup,
    /// The caller cancelled before we answered.
    Cancelled,
    /// Our 2xx was never acknowledged (64·T1).
    NoAck,
    /// The session interval passed without a refresh (RFC 4028); we sent BYE.
    SessionExpired,
    /// An in-dialog request got no answer, or 408/481: the dialog is gone.
    DialogLost,
}

/// A new call, as the bridge sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// The call.
    pub call: CallHandle,
    /// The Request-URI's user part: what the dial plan resolves.
    pub user: Option<String>,
    /// The Request-URI as sent.
    pub request_uri: String,
    /// The caller (From).
    pub from: NameAddr,
    /// The called party (To).
    pub to: NameAddr,
    /// The SDP offer (None: an offerless INVITE, we offer in the 200).
    pub offer: Option<Vec<u8>>,
    /// Where it came from.
    pub source: Peer,
}

/// What happened, for the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    /// A new call: answer with [`UserAgent::ring`], [`UserAgent::accept`] or [`UserAgent::reject`].
    IncomingCall(Box<IncomingCall>),
    /// Our 2xx was acknowledged: media may flow both ways.
    Confirmed {
        /// The call.
        call: CallHandle,
        /// The SDP in the ACK (the answer to an offer we put in the 200).
        answer: Option<Vec<u8>>,
    },
    /// The peer sent a new offer (re-INVITE or UPDATE: hold, resume, new
    /// keys); answer with [`UserAgent::answer_reoffer`].
    Reoffer {
        /// The call.
        call: CallHandle,
        /// The offer; None for an offerless re-INVITE (our offer goes in the 200).
        offer: Option<Vec<u8>>,
    },
    /// Our re-INVITE was answered.
    ReofferAnswered {
        /// The call.
        call: CallHandle,
        /// The peer's answer.
        answer: Option<Vec<u8>>,
    },
    /// Our re-INVITE was refused; the previous session stays.
    ReofferFailed {
        /// The call.
        call: CallHandle,
        /// The status code.
        code: u16,
    },
    /// The called party is alerting (18x), maybe with early media.
    Ringing {
        /// The call.
        call: CallHandle,
        /// The status (180, 183, ...).
        code: u16,
        /// Early-media SDP.
        sdp: Option<Vec<u8>>,
    },
    /// The called party answered; the ACK is sent.
    Answered {
        /// The call.
        call: CallHandle,
        /// The SDP answer.
        sdp: Option<Vec<u8>>,
    },
    /// An outgoing call failed (a final non-2xx, or 408 when nothing answered).
    Failed {
        /// The call.
        call: CallHandle,
        /// The status code.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
    /// A DTMF digit sent by SIP INFO.
    Dtmf {
        /// The call.
        call: CallHandle,
        /// 0-9, *, #, A-D.
        digit: char,
        /// The duration, when given.
        duration_ms: Option<u32>,
    },
    /// The call is over.
    Ended {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
}

/// A command the state of the call does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    /// No such call (it ended).
    #[error("no such call")]
    NoCall,
    /// The call is not in a state for this command.
    #[error("the call cannot do that now")]
    WrongState,
    /// The target is not a SIP URI.
    #[error("bad target URI")]
    BadTarget,
}

/// An outgoing call (dial-out).
#[derive(Debug, Clone)]
pub struct Dial {
    /// The Request-URI and To: `sip:user@host`.
    pub target: String,
    /// Our From URI: `sip:space@localFromDomain`.
    pub from: String,
    /// A display name for From.
    pub display_name: Option<String>,
    /// Our SDP offer.
    pub offer: Vec<u8>,
    /// Where to send: the proxy, or the target's resolved address.
    pub destination: Peer,
    /// A Route header value for an outbound proxy (`<sip:proxy;lr>`).
    pub route: Option<String>,
}

/// Methods we answer, for Allow.
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, PRACK, UPDATE";
/// Option tags we support, for Supported.
const SUPPORTED: &str = "100rel, timer";

/// The user agent.
pub struct UserAgent {
    config: UaConfig,
    transactions: TransactionLayer,
    rng: Box<dyn RngCore + Send>,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, our tag) → call.
    dialogs: HashMap<(String, String), CallHandle>,
    /// INVITE server transaction → call, for CANCEL.
    invites: HashMap<TransactionKey, CallHandle>,
    /// Client transaction → the call and what it was for.
    requests: HashMap<TransactionKey, (CallHandle, Purpose)>,
    next_handle: u64,
    overload_retry_after: Option<u32>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<UaEvent>,
}

impl std::fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAgent").field("calls", &self.calls.len()).finish_non_exhaustive()
    }
}

fn random_token(rng: &mut dyn RngCore, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        out.push_str(&format!("{:02x}", rng.next_u32() as u8));
    }
    out
}

impl UserAgent {
    /// A user agent; `rng` makes tags, branches, Call-IDs (seed it in tests).
    pub fn new(config: UaConfig, rng: Box<dyn RngCore + Send>) -> UserAgent {
        UserAgent {
            transactions: TransactionLayer::new(config.timers),
            config,
            rng,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invites: HashMap::new(),
            requests: HashMap::new(),
            next_handle: 1,
            overload_retry_after: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// While set, new INVITEs are answered 503 with this Retry-After (seconds):
    /// the bridge's overload hook. Calls already up are not touched.
    pub fn set_overload(&mut self, retry_after: Option<u32>) {
        self.overload_retry_after = retry_after;
    }

    /// Calls alive.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    fn local_addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tls => self.config.tls_addr.unwrap_or(self.config.local_addr),
            _ => self.config.local_addr,
        }
    }

    fn contact(&self, transport: Transport) -> String {
        let addr = self.local_addr(transport);
        match transport {
            Transport::Udp => format!("<sip:{}@{addr}>", self.config.contact_user),
            Transport::Tcp => format!("<sip:{}@{addr};transport=tcp>", self.config.contact_user),
            Transport::Tls => format!("<sip:{}@{addr};transport=tls>", self.config.contact_user),
        }
    }

    fn via(&mut self, transport: Transport) -> String {
        let branch = random_token(&mut *self.rng, 8);
        format!("SIP/2.0/{} {};branch=z9hG4bK{branch};rport", transport.via_name(), self.local_addr(transport))
    }

    // ---- input ----

    /// A UDP datagram. Unparsable requests whose head can still be read get
    /// 400; anything else unreadable is dropped.
    pub fn handle_datagram(&mut self, now: Instant, source: Peer, bytes: &[u8]) {
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return; // keep-alive
        }
        match Message::parse(bytes, &self.config.limits) {
            Ok(message) => self.handle_message(now, source, message),
            Err(error) => {
                if let Ok(head) = Message::parse_head_only(bytes, &self.config.limits) {
                    if head.is_request() && head.via().is_some() && head.method() != Some(Method::Ack) {
                        let mut response = head.response(400, None);
                        set_reason(&mut response, &error.to_string());
                        self.send_stateless_response(&head, source, &response);
                    }
                }
            }
        }
    }

    /// A message framed from a TCP or TLS stream (or parsed by the caller).
    pub fn handle_message(&mut self, now: Instant, source: Peer, message: Message) {
        if message.is_request() {
            if let Err(why) = message.check_request() {
                if message.via().is_some() && message.method() != Some(Method::Ack) {
                    let mut response = message.response(400, None);
                    set_reason(&mut response, why);
                    self.send_stateless_response(&message, source, &response);
                }
                return;
            }
            match self.transactions.receive_request(now, message, source) {
                Received::Request(key, request) => self.on_request(now, key, *request, source),
                Received::AckFor2xx(ack) => self.on_ack(now, &ack),
                _ => {}
            }
        } else {
            if message.check_response().is_err() {
                return;
            }
            match self.transactions.receive_response(now, message) {
                Received::Response(key, response) => self.on_response(now, key, *response),
                Received::Stray(response) => self.on_stray_response(&response),
                _ => {}
            }
        }
        self.collect();
    }

    fn send_stateless_response(&mut self, request: &Message, source: Peer, response: &Message) {
        let peer = crate::transaction::response_peer(request, source);
        self.transmits.push_back(Transmit { peer, bytes: response.to_bytes() });
    }

    /// Sends a response in its server transaction, with our usual headers.
    fn respond(&mut self, now: Instant, key: &TransactionKey, mut response: Message) {
        response.push("Server", self.config.product.clone());
        self.transactions.send_response(now, key, &response);
    }

    fn respond_code(&mut self, now: Instant, key: &TransactionKey, request: &Message, code: u16) {
        let tag = random_token(&mut *self.rng, 4);
        let response = request.response(code, Some(&tag));
        self.respond(now, key, response);
    }

    fn on_request(&mut self, now: Instant, key: TransactionKey, request: Message, source: Peer) {
        let method = request.method().unwrap_or(Method::Ack);
        let in_dialog = request.to().and_then(|to| to.tag().map(str::to_string));
        if let Some(local_tag) = in_dialog {
            let dialog = (request.call_id().unwrap_or_default().to_string(), local_tag);
            let Some(handle) = self.dialogs.get(&dialog).copied() else {
                // CANCEL carries the INVITE's To, which has no tag; anything else is stale.
                self.respond_code(now, &key, &request, 481);
                return;
            };
            self.on_in_dialog(now, handle, key, request);
            return;
        }
        match method {
            Method::Invite => self.on_invite(now, key, request, source),
            Method::Cancel => self.on_cancel(now, key, request),
            Method::Options => {
                let mut response = request.response(200, Some(&random_token(&mut *self.rng, 4)));
                response.push("Allow", ALLOW);
                response.push("Accept", "application/sdp");
                response.push("Supported", SUPPORTED);
                self.respond(now, &key, response);
            }
            Method::Bye | Method::Info | Method::Prack | Method::Update => self.respond_code(now, &key, &request, 481),
            _ => {
                let mut response = request.response(405, Some(&random_token(&mut *self.rng, 4)));
                response.push("Allow", ALLOW);
                self.respond(now, &key, response);
            }
        }
    }

    fn on_invite(&mut self, now: Instant, key: TransactionKey, request: Message, source: Peer) {
        let tag = random_token(&mut *self.rng, 4);
        if let Some(retry_after) = self.overload_retry_after.or_else(|| {
            // At capacity: ask the caller to come back in a few seconds.
            (self.calls.len() >= self.config.max_calls).then_some(5)
        }) {
            let mut response = request.response(503, Some(&tag));
            response.push("Retry-After", retry_after.to_string());
            self.respond(now, &key, response);
            return;
        }
        let unsupported: Vec<&str> = request
            .list("Require")
            .filter(|t| !["100rel", "timer"].iter().any(|s| t.eq_ignore_ascii_case(s)))
            .collect();
        if !unsupported.is_empty() {
            let mut response = request.response(420, Some(&tag));
            response.push("Unsupported", unsupported.join(", "));
            self.respond(now, &key, response);
            return;
        }
        if !request.body.is_empty() && request.content_type().as_deref() != Some("application/sdp") {
            let mut response = request.response(415, Some(&tag));
            response.push("Accept", "application/sdp");
            self.respond(now, &key, response);
            return;
        }
        let session_timer = match self.grant_session_interval(&request) {
            Ok(timer) => timer,
            Err(min_se) => {
                let mut response = request.response(422, Some(&tag));
                response.push("Min-SE", min_se.to_string());
                self.respond(now, &key, response);
                return;
            }
        };
        let (Some(from), Some(to), Some(call_id)) = (request.from(), request.to(), request.call_id()) else { return };
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let uri = request.request_uri().unwrap_or_default().to_string();
        let user = SipUri::parse(&uri).and_then(|u| u.user);
        let call = Call {
            handle,
            role: Role::Uas,
            state: CallState::Incoming,
            // Symmetric signalling: in-dialog requests and 2xx retransmissions go where responses go.
            peer: crate::transaction::response_peer(&request, source),
            call_id: call_id.to_string(),
            local_tag: tag.clone(),
            remote_tag: from.tag().map(str::to_string),
            local_header: to.raw.clone(),
            remote_header: from.raw.clone(),
            local_cseq: self.rng.next_u32() % 10_000 + 1,
            remote_cseq: request.cseq().map(|c| c.seq),
            remote_target: request.contact().map_or_else(|| from.uri.clone(), |c| c.uri),
            route_set: request.list("Record-Route").map(str::to_string).collect(),
            invite: Some(request.clone()),
            invite_key: Some(key.clone()),
            reliable_provisional: request.requires("100rel"),
            rseq: 0,
            retransmit: None,
            session: session_timer
                .map(|se| Session { interval: se.delta, we_refresh: se.refresher == Some(Refresher::Uas) }),
            session_timer: None,
            peer_allows_update: request.list("Allow").any(|m| m.eq_ignore_ascii_case("UPDATE")),
            pending: None,
            local_sdp: None,
            cancelled: false,
            ack: None,
        };
        self.dialogs.insert((call.call_id.clone(), tag), handle);
        self.invites.insert(key, handle);
        self.calls.insert(handle, call);
        let offer = (!request.body.is_empty()).then(|| request.body.clone());
        let incoming = IncomingCall { call: handle, user, request_uri: uri, from, to, offer, source };
        self.events.push_back(UaEvent::IncomingCall(Box::new(incoming)));
    }

    /// The session interval for an incoming INVITE (RFC 4028 §9): `Err(min)`
    /// when the asked interval is below our Min-SE (answer 422); `None` when
    /// the caller knows nothing of session timers.
    fn grant_session_interval(&self, request: &Message) -> Result<Option<SessionExpires>, u32> {
        let asked = request.session_expires();
        let min_se = self.config.min_se.max(request.min_se().unwrap_or(0));
        if let Some(asked) = asked {
            if asked.delta < self.config.min_se {
                return Err(self.config.min_se);
            }
        }
        let supports = request.supports("timer");
        let delta = asked.map_or(self.config.session_expires, |a| a.delta.min(self.config.session_expires)).max(min_se);
        let refresher = match asked.and_then(|a| a.refresher) {
            Some(r) => r,
            None if supports => Refresher::Uac,
            None => Refresher::Uas,
        };
        if asked.is_none() && !supports {
            return Ok(None);
        }
        Ok(Some(SessionExpires { delta, refresher: Some(refresher) }))
    }

    fn on_cancel(&mut self, now: Instant, key: TransactionKey, cancel: Message) {
        let handle = TransactionKey::invite_cancelled_by(&cancel).and_then(|k| self.invites.get(&k).copied());
        let Some(handle) = handle else {
            self.respond_code(now, &key, &cancel, 481);
            return;
        };
        let tag = self.calls.get(&handle).map(|c| c.local_tag.clone());
        let ok = cancel.response(200, tag.as_deref());
        self.respond(now, &key, ok);
        let Some(call) = self.calls.get(&handle) else { return };
        if !matches!(call.state, CallState::Incoming | CallState::Early) {
            return; // already answered: the CANCEL has no effect (RFC 3261 §9.2)
        }
        if let (Some(invite), Some(invite_key)) = (call.invite.clone(), call.invite_key.clone()) {
            let response = invite.response(487, Some(&call.local_tag));
            self.respond(now, &invite_key, response);
        }
        self.remove_call(handle);
        self.events.push_back(UaEvent::Ended { call: handle, reason: EndReason::Cancelled });
    }

    fn on_in_dialog(&mut self, now: Instant, handle: CallHandle, key: TransactionKey, request: Message) {
        let method = request.method().unwrap_or(Method::Ack);
        if let Some(call) = self.calls.get_mut(&handle) {
            if let Some(seq) = request.cseq().map(|c| c.seq) {
                if method != Method::Cancel {
                    call.remote_cseq = Some(seq);
                }
            }
        }
        match method {
            Method::Bye => {
                self.respond_code(now, &key, &request, 200);
                self.remove_call(handle);
                self.events.push_back(UaEvent::Ended { call: handle, reason: EndReason::RemoteHangup });
            }
            Method::Invite | Method::Update => self.on_reoffer(now, handle, key, request),
            Method::Info => {
                self.respond_code(now, &key, &request, 200);
                if let Some((digit, duration_ms)) = dtmf::parse_info(&request) {
                    self.events.push_back(UaEvent::Dtmf { call: handle, digit, duration_ms });
                }
            }
            Method::Prack => {
                let acked = request.rack().is_some_and(|rack| {
                    self.calls.get_mut(&handle).is_some_and(|call| {
                        let matches = call.rseq == rack.rseq;
                        if matches && call.retransmit.as_ref().is_some_and(|r| r.rseq.is_some()) {
                            call.retransmit = None;
                        }
                        matches
                    })
                });
                self.respond_code(now, &key, &request, if acked { 200 } else { 481 });
            }
            Method::Options => {
                let mut response = request.response(200, None);
                response.push("Allow", ALLOW);
                response.push("Accept", "application/sdp");
                response.push("Supported", SUPPORTED);
                self.respond(now, &key, response);
            }
            _ => {
                let mut response = request.response(405, None);
                response.push("Allow", ALLOW);
                self.respond(now, &key, response);
            }
        }
    }

    fn on_reoffer(&mut self, now: Instant, handle: CallHandle, key: TransactionKey, request: Message) {
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let is_invite = request.method() == Some(Method::Invite);
        if call.pending.is_some() || (is_invite && call.state != CallState::Confirmed) {
            // One offer at a time (RFC 3261 §14.2): glare.
            let response = request.response(491, None);
            self.respond(now, &key, response);
            return;
        }
        if let Some(contact) = request.contact() {
            call.remote_target = contact.uri;
        }
        // A refresh from the peer restarts the session timer (RFC 4028 §10).
        if let Some(asked) = request.session_expires() {
            // Here the peer is the UAC of the refreshing transaction.
            call.session = Some(Session {
                interval: asked.delta.max(self.config.min_se),
                we_refresh: asked.refresher == Some(Refresher::Uas),
            });
        }
        if request.body.is_empty() && !is_invite {
            // An UPDATE without SDP is a pure session refresh.
            let mut response = request.response(200, None);
            call.add_session_headers(&mut response, request.supports("timer"));
            call.restart_session_timer(now);
            self.respond(now, &key, response);
            return;
        }
        let offer = (!request.body.is_empty()).then(|| request.body.clone());
        call.pending = Some(Pending::Incoming { key, request });
        self.events.push_back(UaEvent::Reoffer { call: handle, offer });
    }

    fn on_ack(&mut self, _now: Instant, ack: &Message) {
        let Some(tag) = ack.to().and_then(|t| t.tag().map(str::to_string)) else { return };
        let Some(handle) = self.dialogs.get(&(ack.call_id().unwrap_or_default().to_string(), tag)).copied() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let acked_seq = ack.cseq().map(|c| c.seq);
        let waiting = call.retransmit.as_ref().is_some_and(|r| r.rseq.is_none() && Some(r.cseq) == acked_seq);
        if waiting {
            call.retransmit = None;
        }
        if call.state == CallState::WaitingAck {
            call.state = CallState::Confirmed;
            let answer = (!ack.body.is_empty()).then(|| ack.body.clone());
            self.events.push_back(UaEvent::Confirmed { call: handle, answer });
        }
    }

    fn on_response(&mut self, now: Instant, key: TransactionKey, response: Message) {
        let Some((handle, purpose)) = self.requests.get(&key).copied() else { return };
        let code = response.code().unwrap_or(500);
        if code >= 200 && purpose != Purpose::Invite {
            self.requests.remove(&key);
        }
        match purpose {
            Purpose::Invite => self.on_invite_response(now, handle, key, response),
            Purpose::Reinvite => {
                if (200..300).contains(&code) {
                    self.send_ack_for_2xx(handle, &response);
                }
                if code < 200 {
                    return;
                }
                self.requests.remove(&key);
                let Some(call) = self.calls.get_mut(&handle) else { return };
                let refresh_only = matches!(call.pending, Some(Pending::Refresh));
                call.pending = None;
                match code {
                    200..=299 => {
                        call.adopt_session_from_response(&response, self.config.min_se);
                        call.restart_session_timer(now);
                        if !refresh_only {
                            let answer = (!response.body.is_empty()).then(|| response.body.clone());
                            self.events.push_back(UaEvent::ReofferAnswered { call: handle, answer });
                        }
                    }
                    408 | 481 => self.lose_dialog(now, handle),
                    _ if !refresh_only => self.events.push_back(UaEvent::ReofferFailed { call: handle, code }),
                    _ => {}
                }
            }
            Purpose::Update => {
                if let Some(call) = self.calls.get_mut(&handle) {
                    call.pending = None;
                    if (200..300).contains(&code) {
                        call.adopt_session_from_response(&response, self.config.min_se);
                        call.restart_session_timer(now);
                    }
                }
                if code == 408 || code == 481 {
                    self.lose_dialog(now, handle);
                }
            }
            Purpose::Bye | Purpose::Cancel | Purpose::Prack | Purpose::Info => {}
        }
    }

    fn on_invite_response(&mut self, now: Instant, handle: CallHandle, key: TransactionKey, response: Message) {
        let code = response.code().unwrap_or(500);
        let min_se = self.config.min_se;
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let sdp = (!response.body.is_empty()).then(|| response.body.clone());
        match code {
            100 => {
                call.state = CallState::Early;
                if call.cancelled {
                    self.send_cancel(now, handle);
                }
            }
            101..=199 => {
                if let Some(tag) = response.to().and_then(|t| t.tag().map(str::to_string)) {
                    call.remote_tag.get_or_insert(tag);
                }
                call.state = CallState::Early;
                if call.cancelled {
                    self.send_cancel(now, handle);
                    return;
                }
                if response.requires("100rel") {
                    if let Some(rseq) = response.rseq() {
                        self.send_prack(now, handle, &response, rseq);
                    }
                }
                self.events.push_back(UaEvent::Ringing { call: handle, code, sdp });
            }
            200..=299 => {
                if call.state == CallState::Confirmed || call.state == CallState::Terminated {
                    // A retransmission (or a fork): ACK it again.
                    self.send_ack_for_2xx(handle, &response);
                    return;
                }
                call.remote_tag = response.to().and_then(|t| t.tag().map(str::to_string));
                if let Some(contact) = response.contact() {
                    call.remote_target = contact.uri;
                }
                call.route_set = response.list("Record-Route").map(str::to_string).collect::<Vec<_>>();
                call.route_set.reverse();
                call.state = CallState::Confirmed;
                call.peer_allows_update |= response.list("Allow").any(|m| m.eq_ignore_ascii_case("UPDATE"));
                call.adopt_session_from_response(&response, min_se);
                call.restart_session_timer(now);
                let cancelled = call.cancelled;
                self.send_ack_for_2xx(handle, &response);
                if cancelled {
                    // The 2xx crossed our CANCEL: the call is up, so end it (RFC 3261 §15).
                    self.send_bye(now, handle);
                    return;
                }
                self.events.push_back(UaEvent::Answered { call: handle, sdp });
            }
            _ => {
                self.requests.remove(&key);
                let cancelled = call.cancelled;
                let reason = match &response.start {
                    crate::message::StartLine::Response { reason, .. } => reason.clone(),
                    _ => String::new(),
                };
                self.remove_call(handle);
                if !cancelled {
                    self.events.push_back(UaEvent::Failed { call: handle, code, reason });
                }
            }
        }
    }

    /// A 2xx retransmission after the INVITE transaction ended: its ACK was lost.
    fn on_stray_response(&mut self, response: &Message) {
        if response.method() != Some(Method::Invite) || !response.code().is_some_and(|c| (200..300).contains(&c)) {
            return;
        }
        let Some(tag) = response.from().and_then(|f| f.tag().map(str::to_string)) else { return };
        let dialog = (response.call_id().unwrap_or_default().to_string(), tag);
        if let Some(handle) = self.dialogs.get(&dialog).copied() {
            self.send_ack_for_2xx(handle, response);
        }
    }

    // ---- commands ----

    /// Sends 180 Ringing: reliably (RFC 3262) only when the caller requires it.
    pub fn ring(&mut self, now: Instant, call: CallHandle) -> Result<(), UaError> {
        let contact = self.contact(self.calls.get(&call).ok_or(UaError::NoCall)?.peer.transport);
        let t1 = self.config.timers.t1;
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        if !matches!(c.state, CallState::Incoming | CallState::Early) {
            return Err(UaError::WrongState);
        }
        let (Some(invite), Some(key)) = (c.invite.clone(), c.invite_key.clone()) else {
            return Err(UaError::WrongState);
        };
        let mut ringing = invite.response(180, Some(&c.local_tag));
        ringing.push("Contact", contact);
        if c.reliable_provisional {
            c.rseq += 1;
            ringing.push("Require", "100rel");
            ringing.push("RSeq", c.rseq.to_string());
            let bytes = {
                let mut r = ringing.clone();
                r.push("Server", self.config.product.clone());
                r.to_bytes()
            };
            c.retransmit = Some(Retransmit::new(now, t1, bytes, invite.cseq().map_or(0, |s| s.seq), Some(c.rseq)));
        }
        c.state = CallState::Early;
        self.respond(now, &key, ringing);
        Ok(())
    }

    /// Answers an incoming call with 200 and our SDP; retransmitted until ACK.
    pub fn accept(&mut self, now: Instant, call: CallHandle, sdp: Vec<u8>) -> Result<(), UaError> {
        let contact = self.contact(self.calls.get(&call).ok_or(UaError::NoCall)?.peer.transport);
        let t1 = self.config.timers.t1;
        let product = self.config.product.clone();
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        if !matches!(c.state, CallState::Incoming | CallState::Early) || c.role != Role::Uas {
            return Err(UaError::WrongState);
        }
        let (Some(invite), Some(key)) = (c.invite.clone(), c.invite_key.clone()) else {
            return Err(UaError::WrongState);
        };
        let mut ok = invite.response(200, Some(&c.local_tag));
        ok.push("Contact", contact);
        ok.push("Allow", ALLOW);
        ok.push("Supported", SUPPORTED);
        c.add_session_headers(&mut ok, invite.supports("timer"));
        ok.push("Content-Type", "application/sdp");
        ok.body = sdp.clone();
        ok.push("Server", product);
        c.local_sdp = Some(sdp);
        c.retransmit = Some(Retransmit::new(now, t1, ok.to_bytes(), invite.cseq().map_or(0, |s| s.seq), None));
        c.state = CallState::WaitingAck;
        c.restart_session_timer(now);
        self.transactions.send_response(now, &key, &ok);
        self.invites.remove(&key);
        self.collect();
        Ok(())
    }

    /// Refuses an incoming call (486, 404, 488, 603, ...).
    pub fn reject(&mut self, now: Instant, call: CallHandle, code: u16) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::NoCall)?;
        if !matches!(c.state, CallState::Incoming | CallState::Early) || c.role != Role::Uas || code < 300 {
            return Err(UaError::WrongState);
        }
        let (Some(invite), Some(key)) = (c.invite.clone(), c.invite_key.clone()) else {
            return Err(UaError::WrongState);
        };
        let response = invite.response(code, Some(&c.local_tag));
        self.respond(now, &key, response);
        self.remove_call(call);
        self.collect();
        Ok(())
    }

    /// Answers the peer's re-INVITE or UPDATE offer: `Ok(sdp)` → 200 with our
    /// answer, `Err(code)` → refused (488), the old session stays.
    pub fn answer_reoffer(
        &mut self,
        now: Instant,
        call: CallHandle,
        answer: Result<Vec<u8>, u16>,
    ) -> Result<(), UaError> {
        let contact = self.contact(self.calls.get(&call).ok_or(UaError::NoCall)?.peer.transport);
        let t1 = self.config.timers.t1;
        let product = self.config.product.clone();
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        let Some(Pending::Incoming { key, request }) = c.pending.take() else { return Err(UaError::WrongState) };
        let response = match answer {
            Ok(sdp) => {
                let mut ok = request.response(200, None);
                ok.push("Contact", contact);
                ok.push("Allow", ALLOW);
                ok.push("Supported", SUPPORTED);
                c.add_session_headers(&mut ok, request.supports("timer"));
                ok.push("Content-Type", "application/sdp");
                ok.body = sdp.clone();
                c.local_sdp = Some(sdp);
                c.restart_session_timer(now);
                if request.method() == Some(Method::Invite) {
                    let mut bytes = ok.clone();
                    bytes.push("Server", product.clone());
                    let seq = request.cseq().map_or(0, |s| s.seq);
                    c.retransmit = Some(Retransmit::new(now, t1, bytes.to_bytes(), seq, None));
                }
                ok
            }
            Err(code) => request.response(code.max(300), None),
        };
        self.respond(now, &key, response);
        self.collect();
        Ok(())
    }

    /// Starts an outgoing call.
    pub fn dial(&mut self, now: Instant, dial: Dial) -> Result<CallHandle, UaError> {
        let target = SipUri::parse(&dial.target).ok_or(UaError::BadTarget)?;
        let _ = target;
        let transport = dial.destination.transport;
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let tag = random_token(&mut *self.rng, 4);
        let call_id = format!("{}@confero", random_token(&mut *self.rng, 12));
        let from = match &dial.display_name {
            Some(name) => format!("\"{}\" <{}>", name.replace(['"', '\\'], ""), dial.from),
            None => format!("<{}>", dial.from),
        };
        let to = format!("<{}>", dial.target);
        let mut invite = Message::request(Method::Invite, dial.target.clone());
        invite.push("Via", self.via(transport));
        invite.push("Max-Forwards", "70");
        invite.push("From", format!("{from};tag={tag}"));
        invite.push("To", to.clone());
        invite.push("Call-ID", call_id.clone());
        invite.push("CSeq", "1 INVITE");
        if let Some(route) = &dial.route {
            invite.push("Route", route.clone());
        }
        invite.push("Contact", self.contact(transport));
        invite.push("Allow", ALLOW);
        invite.push("Supported", SUPPORTED);
        invite.push("Session-Expires", self.config.session_expires.to_string());
        invite.push("Min-SE", self.config.min_se.to_string());
        invite.push("User-Agent", self.config.product.clone());
        invite.push("Content-Type", "application/sdp");
        invite.body = dial.offer.clone();
        let call = Call {
            handle,
            role: Role::Uac,
            state: CallState::Incoming,
            peer: dial.destination,
            call_id: call_id.clone(),
            local_tag: tag.clone(),
            remote_tag: None,
            local_header: from,
            remote_header: to,
            local_cseq: 1,
            remote_cseq: None,
            remote_target: dial.target.clone(),
            route_set: dial.route.into_iter().collect(),
            invite: Some(invite.clone()),
            invite_key: None,
            reliable_provisional: false,
            rseq: 0,
            retransmit: None,
            session: None,
            session_timer: None,
            peer_allows_update: false,
            pending: None,
            local_sdp: Some(dial.offer),
            cancelled: false,
            ack: None,
        };
        self.calls.insert(handle, call);
        self.dialogs.insert((call_id, tag), handle);
        if let Some(key) = self.transactions.send_request(now, invite, dial.destination) {
            if let Some(c) = self.calls.get_mut(&handle) {
                c.invite_key = Some(key.clone());
            }
            self.requests.insert(key, (handle, Purpose::Invite));
        }
        self.collect();
        Ok(handle)
    }

    /// Ends a call in any state: BYE when it is up, CANCEL while our INVITE is
    /// pending, 480 for an incoming call not yet answered.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        match (c.role, c.state) {
            (Role::Uas, CallState::Incoming | CallState::Early) => return self.reject(now, call, 480),
            (Role::Uac, CallState::Incoming) => c.cancelled = true, // CANCEL once a provisional arrives
            (Role::Uac, CallState::Early) => {
                c.cancelled = true;
                self.send_cancel(now, call);
            }
            _ => self.send_bye(now, call),
        }
        self.collect();
        Ok(())
    }

    /// Sends a re-INVITE with a new offer (hold: sendonly; resume: sendrecv).
    /// The answer comes as [`UaEvent::ReofferAnswered`].
    pub fn reinvite(&mut self, now: Instant, call: CallHandle, offer: Vec<u8>) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::NoCall)?;
        if c.state != CallState::Confirmed || c.pending.is_some() {
            return Err(UaError::WrongState);
        }
        self.send_reinvite(now, call, offer, false);
        self.collect();
        Ok(())
    }

    fn send_reinvite(&mut self, now: Instant, handle: CallHandle, offer: Vec<u8>, refresh: bool) {
        let Some(mut request) = self.in_dialog_request(handle, Method::Invite) else { return };
        let session_expires = self.config.session_expires;
        let Some(c) = self.calls.get_mut(&handle) else { return };
        request.push("Allow", ALLOW);
        request.push("Supported", SUPPORTED);
        // We are the UAC of this transaction: "uac" means us.
        let interval = c.session.as_ref().map_or(session_expires, |s| s.interval);
        let refresher = if c.session.as_ref().is_some_and(|s| s.we_refresh) { "uac" } else { "uas" };
        if c.session.is_some() {
            request.push("Session-Expires", format!("{interval};refresher={refresher}"));
        }
        request.push("Content-Type", "application/sdp");
        request.body = offer.clone();
        c.local_sdp = Some(offer);
        c.pending = Some(if refresh { Pending::Refresh } else { Pending::Outgoing });
        let peer = c.peer;
        if let Some(key) = self.transactions.send_request(now, request, peer) {
            self.requests.insert(key, (handle, Purpose::Reinvite));
        }
    }

    // ---- timers ----

    /// The earliest time [`UserAgent::handle_timeout`] has work.
    pub fn next_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().flat_map(|c| {
            [c.retransmit.as_ref().map(|r| r.next_at.min(r.give_up_at)), c.session_timer.as_ref().map(|s| s.at)]
        });
        calls.chain([self.transactions.next_timeout()]).flatten().min()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        self.on_transaction_events(now);
        let t2 = self.config.timers.t2;
        let mut gave_up = Vec::new();
        let mut refresh = Vec::new();
        let mut expired = Vec::new();
        for (handle, call) in &mut self.calls {
            if let Some(r) = call.retransmit.as_mut() {
                if r.give_up_at <= now {
                    let was_2xx = r.rseq.is_none();
                    call.retransmit = None;
                    if was_2xx {
                        gave_up.push(*handle);
                    }
                } else if r.next_at <= now {
                    self.transmits.push_back(Transmit { peer: call.peer, bytes: r.bytes.clone() });
                    r.interval = (r.interval * 2).min(t2);
                    r.next_at = now + r.interval;
                }
            }
            if let Some(timer) = call.session_timer.as_ref().filter(|t| t.at <= now) {
                if timer.refresh {
                    refresh.push(*handle);
                } else {
                    expired.push(*handle);
                }
            }
        }
        for handle in gave_up {
            self.send_bye(now, handle);
            self.events.push_back(UaEvent::Ended { call: handle, reason: EndReason::NoAck });
        }
        for handle in expired {
            self.send_bye(now, handle);
            self.events.push_back(UaEvent::Ended { call: handle, reason: EndReason::SessionExpired });
        }
        for handle in refresh {
            self.refresh_session(now, handle);
        }
        self.collect();
    }

    /// Refreshes the session: UPDATE when the peer allows it (no SDP needed),
    /// else a re-INVITE with our current SDP unchanged.
    fn refresh_session(&mut self, now: Instant, handle: CallHandle) {
        let Some(c) = self.calls.get_mut(&handle) else { return };
        if let (Some(timer), Some(session)) = (c.session_timer.as_mut(), c.session.as_ref()) {
            // Until the refresh completes, the session expires at the end of the interval.
            timer.refresh = false;
            timer.at = now + Duration::from_secs(u64::from(session.interval / 2));
        }
        if c.pending.is_some() {
            return;
        }
        if c.peer_allows_update {
            let Some(mut update) = self.in_dialog_request(handle, Method::Update) else { return };
            let Some(c) = self.calls.get_mut(&handle) else { return };
            let interval = c.session.as_ref().map_or(self.config.session_expires, |s| s.interval);
            update.push("Session-Expires", format!("{interval};refresher=uac"));
            update.push("Supported", SUPPORTED);
            c.pending = Some(Pending::Refresh);
            let peer = c.peer;
            if let Some(key) = self.transactions.send_request(now, update, peer) {
                self.requests.insert(key, (handle, Purpose::Update));
            }
        } else {
            let sdp = c.local_sdp.clone().unwrap_or_default();
            self.send_reinvite(now, handle, sdp, true);
        }
    }

    // ---- helpers ----

    /// A request inside the dialog (RFC 3261 §12.2.1.1): remote target,
    /// route set, our next CSeq.
    fn in_dialog_request(&mut self, handle: CallHandle, method: Method) -> Option<Message> {
        let transport = self.calls.get(&handle)?.peer.transport;
        let via = self.via(transport);
        let contact = self.contact(transport);
        let product = self.config.product.clone();
        let c = self.calls.get_mut(&handle)?;
        if method != Method::Ack && method != Method::Cancel {
            c.local_cseq += 1;
        }
        let mut request = Message::request(method.clone(), c.remote_target.clone());
        request.push("Via", via);
        request.push("Max-Forwards", "70");
        for route in &c.route_set {
            request.push("Route", route.clone());
        }
        request.push("From", with_tag(&c.local_header, Some(&c.local_tag)));
        request.push("To", with_tag(&c.remote_header, c.remote_tag.as_deref()));
        request.push("Call-ID", c.call_id.clone());
        request.push("CSeq", format!("{} {}", c.local_cseq, method.as_str()));
        if matches!(method, Method::Invite | Method::Update) {
            request.push("Contact", contact);
        }
        request.push("User-Agent", product);
        Some(request)
    }

    fn send_ack_for_2xx(&mut self, handle: CallHandle, response: &Message) {
        let seq = response.cseq().map_or(1, |c| c.seq);
        let Some(call) = self.calls.get(&handle) else { return };
        if let Some((acked, ack)) = call.ack.as_ref() {
            if *acked == seq {
                let (ack, peer) = (ack.clone(), call.peer);
                self.transactions.send_stateless(&ack, peer);
                return;
            }
        }
        let Some(mut ack) = self.in_dialog_request(handle, Method::Ack) else { return };
        ack.set("CSeq", format!("{seq} ACK"));
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let peer = call.peer;
        self.transactions.send_stateless(&ack, peer);
        call.ack = Some((seq, ack));
    }

    fn send_prack(&mut self, now: Instant, handle: CallHandle, response: &Message, rseq: u32) {
        let Some(cseq) = response.cseq() else { return };
        let Some(mut prack) = self.in_dialog_request(handle, Method::Prack) else { return };
        prack.push("RAck", format!("{rseq} {} {}", cseq.seq, cseq.method.as_str()));
        let Some(peer) = self.calls.get(&handle).map(|c| c.peer) else { return };
        if let Some(key) = self.transactions.send_request(now, prack, peer) {
            self.requests.insert(key, (handle, Purpose::Prack));
        }
    }

    fn send_cancel(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get(&handle) else { return };
        let Some(invite) = call.invite.clone() else { return };
        let peer = call.peer;
        let mut cancel = Message::request(Method::Cancel, invite.request_uri().unwrap_or_default());
        for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(value) = invite.list(name).next().filter(|_| name == "Via").or(invite.get(name)) {
                cancel.push(name, value);
            }
        }
        for route in invite.all("Route") {
            cancel.push("Route", route);
        }
        cancel.push("CSeq", format!("{} CANCEL", invite.cseq().map_or(1, |c| c.seq)));
        if let Some(key) = self.transactions.send_request(now, cancel, peer) {
            self.requests.insert(key, (handle, Purpose::Cancel));
        }
    }

    /// Sends BYE and forgets the call (its response needs no action).
    fn send_bye(&mut self, now: Instant, handle: CallHandle) {
        let Some(bye) = self.in_dialog_request(handle, Method::Bye) else { return };
        let Some(peer) = self.calls.get(&handle).map(|c| c.peer) else { return };
        if let Some(key) = self.transactions.send_request(now, bye, peer) {
            self.requests.insert(key, (handle, Purpose::Bye));
        }
        self.remove_call(handle);
    }

    fn lose_dialog(&mut self, now: Instant, handle: CallHandle) {
        if self.calls.contains_key(&handle) {
            self.send_bye(now, handle);
            self.events.push_back(UaEvent::Ended { call: handle, reason: EndReason::DialogLost });
        }
    }

    fn remove_call(&mut self, handle: CallHandle) {
        if let Some(call) = self.calls.remove(&handle) {
            self.dialogs.remove(&(call.call_id, call.local_tag));
            if let Some(key) = call.invite_key {
                self.invites.remove(&key);
            }
        }
    }

    /// Acts on the transaction layer's timeouts (Timer B, F).
    fn on_transaction_events(&mut self, now: Instant) {
        while let Some(event) = self.transactions.poll_event() {
            let TransactionEvent::Timeout(key) = event else { continue };
            let Some((handle, purpose)) = self.requests.remove(&key) else { continue };
            match purpose {
                Purpose::Invite => {
                    let cancelled = self.calls.get(&handle).is_some_and(|c| c.cancelled);
                    self.remove_call(handle);
                    if !cancelled {
                        let reason = "Request Timeout".to_string();
                        self.events.push_back(UaEvent::Failed { call: handle, code: 408, reason });
                    }
                }
                Purpose::Reinvite | Purpose::Update => self.lose_dialog(now, handle),
                _ => {}
            }
        }
    }

    /// Moves the transaction layer's output up.
    fn collect(&mut self) {
        while let Some(transmit) = self.transactions.poll_transmit() {
            self.transmits.push_back(transmit);
        }
    }

    // ---- output ----

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.collect();
        self.transmits.pop_front()
    }

    /// The next event for the bridge.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.collect();
        self.events.pop_front()
    }
}

/// Adds a tag to a From/To value unless it has one.
fn with_tag(header: &str, tag: Option<&str>) -> String {
    match tag {
        Some(tag) if NameAddr::parse(header).is_some_and(|n| n.tag().is_none()) => format!("{header};tag={tag}"),
        _ => header.to_string(),
    }
}

/// Puts the reason we refused in the status line (a 400 says what was wrong).
fn set_reason(response: &mut Message, why: &str) {
    if let crate::message::StartLine::Response { reason, .. } = &mut response.start {
        *reason = why.replace(['\r', '\n'], " ");
    }
}

#[cfg(test)]
mod tests;
