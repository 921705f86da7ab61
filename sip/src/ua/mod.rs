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
//! `confero_sdp::answer`), so this module knows calls, not media. Commands for
//! things the bridge asked for raise no event; events are what the peer or a
//! timer did.

mod dialog;
mod dtmf;
mod in_dialog;
mod incoming;
mod outgoing;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::message::{Limits, Message, Method, NameAddr, ParseError};
use crate::transaction::{
    Peer, Received, Timers, TransactionEvent, TransactionKey, TransactionLayer, Transmit, Transport,
};
use dialog::{Call, CallState, Pending, Purpose, Role};

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
    /// Our 2xx was acknowledged: media may flow both ways. Also raised when
    /// the ACK of a re-INVITE carries the answer to our offer.
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
    /// The domain of our Contact (CMS `localContactDomain`), for peers that
    /// must reach us by name; `None`: our address.
    pub contact_domain: Option<String>,
}

/// How long a key sent by INFO lasts (its `Duration`), as our RFC 4733
/// events do.
const DTMF_KEY: Duration = Duration::from_millis(100);
/// The gap between one INFO's answer and the next key.
const DTMF_GAP: Duration = Duration::from_millis(100);
/// A `,` in a DTMF sequence.
const DTMF_PAUSE: Duration = Duration::from_secs(1);

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

    /// Whether a call (set up or being set up) signals through `peer`: for
    /// TCP and TLS, whether the shell must keep that connection open.
    pub fn has_call_with(&self, peer: Peer) -> bool {
        self.calls.values().any(|c| c.peer == peer)
    }

    fn local_addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tls => self.config.tls_addr.unwrap_or(self.config.local_addr),
            _ => self.config.local_addr,
        }
    }

    /// Our Contact in one call: its own (localContactDomain) or our address.
    fn call_contact(&self, handle: CallHandle, transport: Transport) -> String {
        match self.calls.get(&handle).and_then(|c| c.local_contact.clone()) {
            Some(contact) => contact,
            None => self.contact(transport),
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
            Err(error) => self.handle_unframed(source, bytes, &error),
        }
    }

    /// Bytes that are not a message we can take (a datagram, or what is left
    /// of a TCP/TLS stream that could not be framed): a request whose start
    /// line and Via can be read is answered — 513 when it broke a size or
    /// header-count limit, else 400 — with the reason in the status line, so
    /// the sender learns why instead of timing out. Anything else is dropped.
    /// The caller closes a stream after this: it cannot be resynchronised.
    pub fn handle_unframed(&mut self, source: Peer, bytes: &[u8], error: &ParseError) {
        let Some(head) = Message::parse_answerable(bytes, &self.config.limits) else { return };
        if !head.is_request() || head.via().is_none() || head.method() == Some(Method::Ack) {
            return;
        }
        let code = match error {
            ParseError::TooLarge(_) | ParseError::TooManyHeaders(_) => 513,
            _ => 400,
        };
        let mut response = head.response(code, None);
        set_reason(&mut response, &error.to_string());
        self.send_stateless_response(&head, source, &response);
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
            if message.max_forwards() == Some(0) && !matches!(message.method(), Some(Method::Ack | Method::Options)) {
                let response = message.response(483, None);
                self.send_stateless_response(&message, source, &response);
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
            Purpose::Info => {
                if code < 200 {
                    return;
                }
                if code == 408 || code == 481 {
                    return self.lose_dialog(now, handle);
                }
                if let Some(call) = self.calls.get_mut(&handle) {
                    if !call.dtmf_out.keys.is_empty() {
                        call.dtmf_out.next_at = Some(now + DTMF_GAP);
                    }
                }
            }
            Purpose::Bye | Purpose::Cancel | Purpose::Prack => {}
        }
    }

    // ---- commands ----

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

    // ---- timers ----

    /// The earliest time [`UserAgent::handle_timeout`] has work.
    pub fn next_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().flat_map(|c| {
            [
                c.retransmit.as_ref().map(|r| r.next_at.min(r.give_up_at)),
                c.session_timer.as_ref().map(|s| s.at),
                c.cancel_deadline,
                c.dtmf_out.next_at,
            ]
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
        let mut abandoned = Vec::new();
        let mut dtmf_due = Vec::new();
        for (handle, call) in &mut self.calls {
            if call.dtmf_out.next_at.is_some_and(|at| at <= now) {
                call.dtmf_out.next_at = None;
                dtmf_due.push(*handle);
            }
            if call.cancel_deadline.is_some_and(|at| at <= now) {
                abandoned.push((*handle, call.invite_key.clone()));
                continue;
            }
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
        // Cancelled calls whose callee never sent a final response: forget them, no event (the bridge asked).
        for (handle, key) in abandoned {
            if let Some(key) = key {
                self.transactions.terminate(&key);
            }
            self.remove_call(handle);
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
        for handle in dtmf_due {
            self.next_dtmf_info(now, handle);
        }
        self.collect();
    }

    /// The shell could not reach `peer` (a TCP or TLS connection refused,
    /// timed out or failed its handshake): our INVITEs waiting on it fail
    /// at once as 503, as RFC 3263 §4.3 treats a transport error, so the
    /// caller can try the next server instead of waiting for Timer B.
    pub fn transport_failed(&mut self, peer: Peer) {
        let failed: Vec<(TransactionKey, CallHandle)> =
            self.requests
                .iter()
                .filter(|(_, (handle, purpose))| {
                    matches!(purpose, Purpose::Invite)
                        && self.calls.get(handle).is_some_and(|c| {
                            c.peer == peer && matches!(c.state, CallState::Incoming | CallState::Early)
                        })
                })
                .map(|(key, (handle, _))| (key.clone(), *handle))
                .collect();
        for (key, handle) in failed {
            self.requests.remove(&key);
            self.transactions.terminate(&key);
            let cancelled = self.calls.get(&handle).is_some_and(|c| c.cancelled);
            self.remove_call(handle);
            if !cancelled {
                let reason = "Service Unavailable (transport failed)".to_string();
                self.events.push_back(UaEvent::Failed { call: handle, code: 503, reason });
            }
        }
    }

    /// Sends `sequence` to the peer as DTMF in SIP INFO
    /// (`application/dtmf-relay`, 100 ms a key), for peers without RFC 4733
    /// telephone-events: one INFO per key, each after the previous one's
    /// final response and a 100 ms gap; `,` is a one-second pause. Keys are
    /// 0-9, `*`, `#`, A-D; anything else is skipped.
    pub fn send_dtmf_info(&mut self, now: Instant, call: CallHandle, sequence: &str) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        if c.state != CallState::Confirmed {
            return Err(UaError::WrongState);
        }
        let idle = c.dtmf_out.keys.is_empty() && c.dtmf_out.next_at.is_none();
        let keys =
            sequence.chars().map(|k| k.to_ascii_uppercase()).filter(|k| k.is_ascii_digit() || "*#ABCD,".contains(*k));
        c.dtmf_out.keys.extend(keys);
        if idle {
            self.next_dtmf_info(now, call);
            self.collect();
        }
        Ok(())
    }

    /// The next queued key of a call: an INFO, or a pause.
    fn next_dtmf_info(&mut self, now: Instant, handle: CallHandle) {
        let Some(c) = self.calls.get_mut(&handle) else { return };
        let Some(key) = c.dtmf_out.keys.pop_front() else { return };
        if key == ',' {
            c.dtmf_out.next_at = Some(now + DTMF_PAUSE);
            return;
        }
        let Some(mut info) = self.in_dialog_request(handle, Method::Info) else { return };
        info.push("Content-Type", "application/dtmf-relay");
        info.body = format!("Signal={key}\r\nDuration={}\r\n", DTMF_KEY.as_millis()).into_bytes();
        let Some(c) = self.calls.get(&handle) else { return };
        let peer = c.peer;
        if let Some(key) = self.transactions.send_request(now, info, peer) {
            self.requests.insert(key, (handle, Purpose::Info));
        }
    }

    // ---- helpers ----

    /// A request inside the dialog (RFC 3261 §12.2.1.1): remote target,
    /// route set, our next CSeq.
    fn in_dialog_request(&mut self, handle: CallHandle, method: Method) -> Option<Message> {
        let transport = self.calls.get(&handle)?.peer.transport;
        let via = self.via(transport);
        let contact = self.call_contact(handle, transport);
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
                self.requests.remove(&key);
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
