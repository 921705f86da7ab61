//! RFC 3261 §17 transactions with the RFC 6026 fixes (the Accepted state on
//! both sides, so a 2xx to INVITE and its retransmissions belong to the
//! dialog layer, and retransmitted INVITEs after a 2xx are absorbed).
//!
//! Sans-IO: requests and responses come in with the time, bytes to send come
//! out of [`TransactionLayer::poll_transmit`], timeouts out of
//! [`TransactionLayer::poll_event`], and [`TransactionLayer::next_timeout`]
//! says when to call [`TransactionLayer::handle_timeout`]. On a reliable
//! transport nothing is retransmitted and the wait states last zero time.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{Message, Method};

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, so transactions retransmit.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// TCP and TLS deliver or fail; only UDP needs retransmissions.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The Via transport token.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// The other end of a message: transport and address. For TCP and TLS the
/// shell maps it to the connection the request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport.
    pub transport: Transport,
    /// The remote address.
    pub addr: SocketAddr,
}

/// Bytes for the shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub peer: Peer,
    /// The message's wire form.
    pub bytes: Vec<u8>,
}

/// RFC 3261 timer bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate, 500 ms.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// How long a message may live in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

/// Identifies a transaction (RFC 3261 §17.1.3, §17.2.3): the top Via's branch,
/// and for server transactions its sent-by, plus the method (ACK is matched to
/// its INVITE; CANCEL has a transaction of its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// The branch parameter.
    pub branch: String,
    /// The Via sent-by (empty for client transactions: our own Via).
    pub sent_by: String,
    /// INVITE, BYE, ..., never ACK.
    pub method: Method,
    /// True for a server transaction.
    pub server: bool,
}

impl TransactionKey {
    /// The server key a request belongs to (ACK goes to its INVITE).
    pub fn for_request(request: &Message) -> Option<TransactionKey> {
        let via = request.via()?;
        let method = match request.method()? {
            Method::Ack => Method::Invite,
            other => other,
        };
        Some(TransactionKey { branch: via.branch()?.to_string(), sent_by: via.sent_by(), method, server: true })
    }

    /// The INVITE server transaction a CANCEL refers to (RFC 3261 §9.2).
    pub fn invite_cancelled_by(cancel: &Message) -> Option<TransactionKey> {
        let mut key = TransactionKey::for_request(cancel)?;
        key.method = Method::Invite;
        Some(key)
    }

    /// The client key a response belongs to.
    fn for_response(response: &Message) -> Option<TransactionKey> {
        let via = response.via()?;
        let method = response.cseq()?.method;
        Some(TransactionKey { branch: via.branch()?.to_string(), sent_by: String::new(), method, server: false })
    }
}

/// Something the layer tells the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent {
    /// A client transaction got no final response (Timer B or F): treat as 408.
    Timeout(TransactionKey),
    /// An INVITE server transaction's non-2xx final response was never acknowledged (Timer H).
    NoAck(TransactionKey),
}

/// What became of a received message.
#[derive(Debug)]
pub enum Received {
    /// A new request: a server transaction now exists (except for ACK, which has none).
    Request(TransactionKey, Box<Message>),
    /// An ACK that matches no transaction: the ACK of a 2xx, for the dialog.
    AckFor2xx(Box<Message>),
    /// A response for a client transaction, to act on.
    Response(TransactionKey, Box<Message>),
    /// A response no transaction wants: a 2xx retransmission after the
    /// transaction ended (the dialog re-sends its ACK), or a stray.
    Stray(Box<Message>),
    /// A retransmission, answered or absorbed here.
    Absorbed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client: request sent, nothing heard (Calling for INVITE, Trying otherwise).
    /// Server non-INVITE: request received, nothing sent.
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug)]
struct Transaction {
    state: State,
    peer: Peer,
    /// The request (client) or the last response (server), as sent.
    last: Vec<u8>,
    /// The original request, kept by INVITE client transactions to build the ACK.
    request: Option<Message>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// When this state ends (Timers B, D, F, H, I, J, K, L, M).
    ends_at: Option<Instant>,
}

/// Every transaction of one user agent.
#[derive(Debug, Default)]
pub struct TransactionLayer {
    timers: Timers,
    transactions: HashMap<TransactionKey, Transaction>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(timers: Timers) -> TransactionLayer {
        TransactionLayer { timers, ..TransactionLayer::default() }
    }

    /// The timer bases.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// Live transactions (for tests and overload accounting).
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// True while a transaction exists.
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.transactions.contains_key(key)
    }

    fn sixty_four_t1(&self) -> Duration {
        self.timers.t1 * 64
    }

    /// Takes a request that passed [`Message::check_request`]. INVITEs get
    /// 100 Trying at once, so the caller's Timer A stops before we have
    /// decided anything.
    pub fn receive_request(&mut self, now: Instant, request: Message, source: Peer) -> Received {
        let Some(key) = TransactionKey::for_request(&request) else { return Received::Absorbed };
        let is_ack = request.method() == Some(Method::Ack);
        if let Some(tx) = self.transactions.get_mut(&key) {
            if is_ack {
                return match tx.state {
                    State::Completed => {
                        tx.state = State::Confirmed;
                        tx.retransmit_at = None;
                        tx.ends_at = Some(if source.transport.is_reliable() { now } else { now + self.timers.t4 });
                        Received::Absorbed
                    }
                    // Some UAs reuse the INVITE's branch in the 2xx ACK.
                    State::Accepted => Received::AckFor2xx(Box::new(request)),
                    _ => Received::Absorbed,
                };
            }
            // A retransmitted request: repeat our last response, if any.
            if matches!(tx.state, State::Proceeding | State::Completed) && !tx.last.is_empty() {
                self.transmits.push_back(Transmit { peer: tx.peer, bytes: tx.last.clone() });
            }
            return Received::Absorbed;
        }
        if is_ack {
            return Received::AckFor2xx(Box::new(request));
        }
        let mut tx = Transaction {
            state: State::Trying,
            peer: response_peer(&request, source),
            last: Vec::new(),
            request: None,
            retransmit_at: None,
            interval: self.timers.t1,
            ends_at: None,
        };
        if key.method == Method::Invite {
            let trying = request.response(100, None).to_bytes();
            self.transmits.push_back(Transmit { peer: tx.peer, bytes: trying.clone() });
            tx.last = trying;
            tx.state = State::Proceeding;
        }
        self.transactions.insert(key.clone(), tx);
        let _ = now;
        Received::Request(key, Box::new(request))
    }

    /// Sends a response in a server transaction. Returns false when the
    /// transaction is gone (the response is then not sent).
    pub fn send_response(&mut self, now: Instant, key: &TransactionKey, response: &Message) -> bool {
        let sixty_four_t1 = self.sixty_four_t1();
        let timers = self.timers;
        let Some(tx) = self.transactions.get_mut(key) else { return false };
        let Some(code) = response.code() else { return false };
        let reliable = tx.peer.transport.is_reliable();
        let bytes = response.to_bytes();
        self.transmits.push_back(Transmit { peer: tx.peer, bytes: bytes.clone() });
        if matches!(tx.state, State::Completed | State::Confirmed) {
            return true; // a late response after the final one: sent, state unchanged
        }
        tx.last = bytes;
        match (key.method == Method::Invite, code) {
            (_, 100..=199) => tx.state = State::Proceeding,
            (true, 200..=299) => {
                // Timer L: absorb retransmitted INVITEs while the dialog retransmits the 2xx.
                tx.state = State::Accepted;
                tx.ends_at = Some(now + sixty_four_t1);
            }
            (true, _) => {
                tx.state = State::Completed;
                tx.ends_at = Some(now + sixty_four_t1); // Timer H
                if !reliable {
                    tx.interval = timers.t1;
                    tx.retransmit_at = Some(now + timers.t1); // Timer G
                }
            }
            (false, _) => {
                tx.state = State::Completed;
                tx.ends_at = Some(if reliable { now } else { now + sixty_four_t1 });
                // Timer J
            }
        }
        true
    }

    /// Sends a request in a new client transaction (not ACK: a 2xx ACK is sent
    /// as-is by the dialog with [`TransactionLayer::send_stateless`]).
    pub fn send_request(&mut self, now: Instant, request: Message, peer: Peer) -> Option<TransactionKey> {
        let via = request.via()?;
        let method = request.method()?;
        if method == Method::Ack {
            return None;
        }
        let key = TransactionKey { branch: via.branch()?.to_string(), sent_by: String::new(), method, server: false };
        let bytes = request.to_bytes();
        self.transmits.push_back(Transmit { peer, bytes: bytes.clone() });
        let reliable = peer.transport.is_reliable();
        let is_invite = key.method == Method::Invite;
        let tx = Transaction {
            state: State::Trying,
            peer,
            last: bytes,
            request: is_invite.then_some(request),
            retransmit_at: (!reliable).then(|| now + self.timers.t1), // Timer A or E
            interval: self.timers.t1,
            ends_at: Some(now + self.sixty_four_t1()), // Timer B or F
        };
        self.transactions.insert(key.clone(), tx);
        Some(key)
    }

    /// Ends a transaction now, without an event: an INVITE client transaction
    /// that never got its final response after our CANCEL (RFC 3261 §9.1).
    pub fn terminate(&mut self, key: &TransactionKey) -> bool {
        self.transactions.remove(key).is_some()
    }

    /// Sends bytes outside any transaction (the ACK of a 2xx).
    pub fn send_stateless(&mut self, message: &Message, peer: Peer) {
        self.transmits.push_back(Transmit { peer, bytes: message.to_bytes() });
    }

    /// Takes a response that passed [`Message::check_response`].
    pub fn receive_response(&mut self, now: Instant, response: Message) -> Received {
        let Some(key) = TransactionKey::for_response(&response) else { return Received::Absorbed };
        let Some(code) = response.code() else { return Received::Absorbed };
        let timers = self.timers;
        let sixty_four_t1 = self.sixty_four_t1();
        let Some(tx) = self.transactions.get_mut(&key) else { return Received::Stray(Box::new(response)) };
        let reliable = tx.peer.transport.is_reliable();
        let is_invite = key.method == Method::Invite;
        match (tx.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                tx.state = State::Proceeding;
                if is_invite {
                    tx.retransmit_at = None; // Timer A stops; B stops too (RFC 3261 §17.1.1.2)
                    tx.ends_at = None;
                } else if !reliable {
                    tx.interval = timers.t2;
                }
                Received::Response(key, Box::new(response))
            }
            (State::Trying | State::Proceeding, 200..=299) if is_invite => {
                tx.state = State::Accepted;
                tx.retransmit_at = None;
                tx.ends_at = Some(now + sixty_four_t1); // Timer M
                Received::Response(key, Box::new(response))
            }
            (State::Trying | State::Proceeding, _) => {
                tx.state = State::Completed;
                tx.retransmit_at = None;
                if is_invite {
                    let ack = tx.request.as_ref().map(|invite| ack_for(invite, &response));
                    if let Some(ack) = ack {
                        tx.last = ack.to_bytes();
                        self.transmits.push_back(Transmit { peer: tx.peer, bytes: tx.last.clone() });
                    }
                    tx.ends_at = Some(if reliable { now } else { now + Duration::from_secs(32) });
                // Timer D
                } else {
                    tx.ends_at = Some(if reliable { now } else { now + timers.t4 });
                    // Timer K
                }
                Received::Response(key, Box::new(response))
            }
            // Further 2xx (retransmissions or forks) go to the dialog, which ACKs each.
            (State::Accepted, 200..=299) => Received::Response(key, Box::new(response)),
            (State::Completed, 300..=699) if is_invite => {
                self.transmits.push_back(Transmit { peer: tx.peer, bytes: tx.last.clone() });
                Received::Absorbed
            }
            _ => Received::Absorbed,
        }
    }

    /// The earliest moment [`TransactionLayer::handle_timeout`] has work.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.transactions.values().flat_map(|tx| [tx.retransmit_at, tx.ends_at]).flatten().min()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let t2 = self.timers.t2;
        let mut ended = Vec::new();
        for (key, tx) in &mut self.transactions {
            if tx.ends_at.is_some_and(|at| at <= now) {
                match tx.state {
                    State::Trying | State::Proceeding if !key.server => {
                        self.events.push_back(TransactionEvent::Timeout(key.clone()))
                    }
                    State::Completed if key.server && key.method == Method::Invite => {
                        self.events.push_back(TransactionEvent::NoAck(key.clone()))
                    }
                    _ => {}
                }
                ended.push(key.clone());
                continue;
            }
            if let Some(at) = tx.retransmit_at.filter(|at| *at <= now) {
                self.transmits.push_back(Transmit { peer: tx.peer, bytes: tx.last.clone() });
                // INVITE requests double without bound (Timer A); everything else caps at T2.
                let doubled = tx.interval * 2;
                tx.interval = if key.method == Method::Invite && !key.server { doubled } else { doubled.min(t2) };
                tx.retransmit_at = Some(at.max(now) + tx.interval);
            }
        }
        for key in ended {
            self.transactions.remove(&key);
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581): back to
/// the source address on a stream or when the client asked for rport, else to
/// the source IP at the Via's port.
pub fn response_peer(request: &Message, source: Peer) -> Peer {
    let Some(via) = request.via() else { return source };
    if source.transport.is_reliable() || via.has_rport() {
        return source;
    }
    Peer { transport: source.transport, addr: SocketAddr::new(source.addr.ip(), via.port.unwrap_or(5060)) }
}

/// The ACK an INVITE client transaction sends for a non-2xx final response
/// (RFC 3261 §17.1.1.3): same Request-URI, top Via, From, Call-ID, CSeq number
/// and Route as the INVITE, To from the response.
pub fn ack_for(invite: &Message, response: &Message) -> Message {
    let mut ack = Message::request(Method::Ack, invite.request_uri().unwrap_or_default());
    if let Some(via) = invite.list("Via").next() {
        ack.push("Via", via);
    }
    ack.push("Max-Forwards", "70");
    for name in ["From", "Call-ID"] {
        if let Some(value) = invite.get(name) {
            ack.push(name, value);
        }
    }
    if let Some(to) = response.get("To") {
        ack.push("To", to);
    }
    if let Some(cseq) = invite.cseq() {
        ack.push("CSeq", format!("{} ACK", cseq.seq));
    }
    for route in invite.all("Route") {
        ack.push("Route", route);
    }
    ack
}

#[cfg(test)]
mod tests;
