//! SIP: the signalling of SIP call legs. `signalling.rs` is the sans-IO
//! part (the user agent of `confero-sip`, speaking in the bridge's legs);
//! this file is its tokio shell: UDP, TCP and TLS sockets and one task that
//! owns the signalling. The task feeds it datagrams, framed stream messages,
//! timer expiries and the bridge's [`SipCommand`]s, sends what it wants sent
//! and passes its [`SipEvent`]s to the bridge's event loop. Connection tasks
//! only frame bytes.
//!
//! Listens on `CONFERO_SIP_LISTEN` for UDP and TCP, and on the next port
//! for TLS (5060 and 5061 by default). TCP and TLS connections are bounded
//! by [`StreamLimits`]: at most so many at once (more wait in the kernel's
//! accept queue) and per source (more are closed at once), derived from the
//! process's open-file limit so that the API, media and the database always
//! keep descriptors; a connection no call uses is closed once quiet for
//! [`StreamLimits::idle_timeout`].
//!
//! Requests we send go where the bridge says (RFC 3263, `locate.rs`): over
//! UDP, or over a TCP or TLS connection we open to that server (and reuse
//! while it lasts), the server's certificate checked against
//! `CONFERO_SIP_TLS_TRUST` (else the public web roots) for the name the
//! bridge gives. A connection that cannot be made fails the requests
//! waiting on it at once.

pub mod locate;
mod signalling;

pub use signalling::{SipCommand, SipEvent, SipSignalling};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use confero_https::admission::PerSource;
use confero_sip::message::{Framed, Limits, Message, ParseError};
use confero_sip::transaction::{Peer, Transmit, Transport};
use confero_sip::ua::{UaConfig, UserAgent};
use rand::SeedableRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, Semaphore};

/// The most TCP and TLS connections served at once, however many files the
/// process may open: each may buffer [`MAX_BUFFERED`] bytes.
pub const MAX_CONNECTIONS: usize = 4096;
/// TCP and TLS connections one source may hold by default: a trunk (an SBC,
/// a call control) uses a few; a flood from one address holds no more.
pub const MAX_PER_SOURCE: usize = 64;
/// A connection no call uses is closed after this long without a byte
/// either way: 32 s, as SIP servers close connections that never send a
/// request (a keep-alive CRLF, RFC 5626, counts as a byte).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(32);

/// Bytes a stream connection may buffer without completing a message.
const MAX_BUFFERED: usize = 128 * 1024;
/// A connection holding part of a message gets this long to finish it
/// (slow-loris guard).
const PARTIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// After bytes that cannot be framed, a connection reads no more but stays
/// open while answers to what came before keep being written — until none
/// has come for this long...
const LINGER_QUIET: Duration = Duration::from_secs(2);
/// ... and at most this long in all.
const LINGER_MAX: Duration = Duration::from_secs(10);
/// A peer that does not read what we write for this long is dropped: a
/// write that waits forever would hold the connection's slot forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How SIP's TCP and TLS listeners are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Connections served at once, TCP and TLS together.
    pub max_connections: usize,
    /// Connections one source address (an IPv6 /64) may hold.
    pub max_per_source: usize,
    /// A connection no call uses is closed after this long quiet.
    pub idle_timeout: Duration,
}

impl StreamLimits {
    /// Limits for a process that may open `open_files` descriptors, of which
    /// `others` may be needed elsewhere (the API's connections, media
    /// sockets, the database, logs). SIP gets what is left after reserving
    /// the larger of `others` and a quarter of the limit — never more than
    /// [`MAX_CONNECTIONS`], and nothing at all when nothing is left, since a
    /// SIP connection must never cost the API its descriptors.
    pub fn for_open_files(open_files: u64, others: usize) -> StreamLimits {
        let reserved = (open_files / 4).max(others as u64);
        let left = open_files.saturating_sub(reserved);
        StreamLimits {
            max_connections: usize::try_from(left).unwrap_or(usize::MAX).min(MAX_CONNECTIONS),
            max_per_source: MAX_PER_SOURCE,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

enum StreamInput {
    Opened(Peer, UnboundedSender<Vec<u8>>),
    /// An outbound connection could not be made.
    ConnectFailed(Peer),
    Message(Peer, Box<Message>),
    /// Bytes that could not be framed (the connection reads no more).
    Unframed(Peer, Vec<u8>, ParseError),
    /// The connection has been quiet for the idle timeout: does a call use
    /// it? (`true`: keep it.)
    Idle(Peer, oneshot::Sender<bool>),
    Closed(Peer),
}

/// The running SIP task, as `main` sees it.
pub struct SipShell {
    local: SocketAddr,
    drains: UnboundedSender<oneshot::Sender<()>>,
}

impl SipShell {
    /// Our UDP and TCP address (TLS is on the next port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Waits until every SIP call has ended (our BYEs answered, or their
    /// transactions timed out), at most `limit`. `false`: the limit passed.
    pub async fn drained(&self, limit: std::time::Duration) -> bool {
        let (done, wait) = oneshot::channel();
        if self.drains.send(done).is_err() {
            return true;
        }
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

/// Binds the listeners and starts the SIP task: it carries out `commands`
/// and reports to `events`.
pub async fn start(
    listen: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    client_tls: Arc<rustls::ClientConfig>,
    max_calls: usize,
    limits: StreamLimits,
    commands: UnboundedReceiver<SipCommand>,
    events: UnboundedSender<SipEvent>,
) -> anyhow::Result<SipShell> {
    let (udp, tcp, tls_listener) = bind(listen).await?;
    let plain = udp.local_addr()?;
    let tls_addr = tls_listener.local_addr()?;
    let config = UaConfig { local_addr: plain, tls_addr: Some(tls_addr), max_calls, ..UaConfig::default() };
    let ua = UserAgent::new(config, Box::new(rand::rngs::StdRng::from_entropy()));
    let signalling = SipSignalling::new(ua, Box::new(rand::rngs::StdRng::from_entropy()));
    let (streams_tx, streams) = unbounded_channel();
    let shared = Admission {
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        sources: PerSource::new(limits.max_per_source),
        idle_timeout: limits.idle_timeout,
    };
    let idle_timeout = shared.idle_timeout;
    tokio::spawn(accept(tcp, None, streams_tx.clone(), shared.clone()));
    tokio::spawn(accept(tls_listener, Some(tokio_rustls::TlsAcceptor::from(tls)), streams_tx.clone(), shared));
    let (drains, drain_requests) = unbounded_channel();
    let task = SipTask {
        signalling,
        events,
        udp,
        writers: HashMap::new(),
        drain_waiters: Vec::new(),
        outbound: Outbound {
            connector: tokio_rustls::TlsConnector::from(client_tls),
            server_names: HashMap::new(),
            verified: HashMap::new(),
            streams: streams_tx,
            idle_timeout,
        },
    };
    tokio::spawn(task.run(commands, streams, drain_requests));
    tracing::info!(
        "SIP listening on udp/tcp {plain}, tls {tls_addr}; at most {} TCP/TLS connections, {} per source",
        limits.max_connections,
        limits.max_per_source
    );
    Ok(SipShell { local: plain, drains })
}

/// The TLS client configuration for calls we make: servers must chain to
/// the PEM bundle at `trust`, or to the public web roots without one.
pub fn client_tls(trust: Option<&std::path::Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match trust {
        Some(path) => {
            let certs = confero_https::tls::read_certs(path)
                .with_context(|| format!("CONFERO_SIP_TLS_TRUST {}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            anyhow::ensure!(added > 0, "CONFERO_SIP_TLS_TRUST {}: no certificate in it", path.display());
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}

/// UDP and TCP on `listen`, TLS on the next port. With port 0 (tests),
/// ports are drawn until all three are free.
async fn bind(listen: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener, TcpListener)> {
    let attempts = if listen.port() == 0 { 50 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(listen).await.with_context(|| format!("binding SIP UDP to {listen}"))?;
        let plain = udp.local_addr()?;
        let tls_addr = SocketAddr::new(plain.ip(), plain.port().wrapping_add(1));
        let tcp = stream_listener(plain).with_context(|| format!("binding SIP TCP to {plain}"));
        let tls = stream_listener(tls_addr).with_context(|| format!("binding SIP TLS to {tls_addr}"));
        match (tcp, tls) {
            (Ok(tcp), Ok(tls)) => return Ok((udp, tcp, tls)),
            (Err(e), _) | (_, Err(e)) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("binding SIP to {listen}")))
}

/// Connections the kernel may queue past the cap, waiting for a slot. The
/// usual 128 refuses most of a burst at the SYN (the peer retries for
/// seconds); a queued connection costs no descriptor (`somaxconn` bounds it).
const ACCEPT_BACKLOG: u32 = 1024;

/// A TCP listener on `addr` with [`ACCEPT_BACKLOG`].
fn stream_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// What every TCP and TLS connection is admitted against.
#[derive(Clone)]
struct Admission {
    /// One permit per connection served, TCP and TLS together.
    slots: Arc<Semaphore>,
    sources: Arc<PerSource>,
    idle_timeout: Duration,
}

/// Accepts TCP (or TLS) connections while a slot is free; past the cap,
/// further connections wait in the kernel's accept queue (as the API's do),
/// so a flood of idle connections cannot exhaust memory or descriptors. A
/// source past its share is closed at once.
async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    to_ua: UnboundedSender<StreamInput>,
    admission: Admission,
) {
    loop {
        let Ok(slot) = admission.slots.clone().acquire_owned().await else { return };
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: do not spin on it.
                tracing::warn!("SIP: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(source) = admission.sources.admit(addr.ip()) else {
            tracing::debug!("SIP: {addr} holds {} connections already; closed", admission.sources.limit());
            continue;
        };
        let to_ua = to_ua.clone();
        let tls = tls.clone();
        let idle = admission.idle_timeout;
        tokio::spawn(async move {
            let _slots = (slot, source);
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let peer = Peer { transport: Transport::Tcp, addr };
                    if let Some(outgoing) = opened(peer, &to_ua) {
                        connection(stream, peer, idle, to_ua, outgoing).await;
                    }
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let peer = Peer { transport: Transport::Tls, addr };
                    if let Ok(Ok(stream)) = handshake.await {
                        if let Some(outgoing) = opened(peer, &to_ua) {
                            connection(stream, peer, idle, to_ua, outgoing).await;
                        }
                    }
                }
            }
        });
    }
}

/// Frames messages off one TCP or TLS connection and writes what the user
/// agent sends on it.
///
/// Bytes that cannot be framed end the reading, not the connection: they are
/// handed to the user agent (which answers a request it can read 400 or 513)
/// and the connection lingers while answers come — those to the messages
/// before the garbage too, such as an INVITE's in the same segment — then
/// closes, since a stream cannot be resynchronised past them.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: Peer,
    idle_timeout: Duration,
    to_ua: UnboundedSender<StreamInput>,
    mut outgoing: UnboundedReceiver<Vec<u8>>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let limits = Limits::default();
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    // When the message now in the buffer began: it must be complete within
    // PARTIAL_TIMEOUT however slowly its bytes trickle in.
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut last_activity = tokio::time::Instant::now();
    let mut lingering_since: Option<tokio::time::Instant> = None;
    'conn: loop {
        if let Some(since) = lingering_since {
            let until = (tokio::time::Instant::now() + LINGER_QUIET).min(since + LINGER_MAX);
            match tokio::time::timeout_at(until, outgoing.recv()).await {
                Ok(Some(bytes)) if write(&mut writer, &bytes).await => continue,
                _ => break,
            }
        }
        let deadline = match partial_since {
            Some(t) => t + PARTIAL_TIMEOUT,
            None => last_activity + idle_timeout,
        };
        tokio::select! {
            read = tokio::time::timeout_at(deadline, reader.read(&mut chunk)) => {
                let n = match read {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => n,
                    // Quiet for the idle timeout: kept only while a call uses it.
                    Err(_) if partial_since.is_none() => {
                        let (answer, asked) = oneshot::channel();
                        if to_ua.send(StreamInput::Idle(peer, answer)).is_err() || asked.await != Ok(true) {
                            tracing::debug!("SIP: closing idle {:?} connection from {}", peer.transport, peer.addr);
                            break;
                        }
                        last_activity = tokio::time::Instant::now();
                        continue;
                    }
                    Err(_) => break,
                };
                last_activity = tokio::time::Instant::now();
                buffer.extend_from_slice(&chunk[..n]);
                loop {
                    match Message::parse_stream(&buffer, &limits) {
                        Ok(Framed::Incomplete) => break,
                        Ok(Framed::KeepAlive(n)) => { buffer.drain(..n); }
                        Ok(Framed::Message(m, n)) => {
                            buffer.drain(..n);
                            if to_ua.send(StreamInput::Message(peer, m)).is_err() { break 'conn; }
                        }
                        Err(error) => {
                            tracing::debug!("SIP: {:?} stream from {} cannot be framed: {error}", peer.transport, peer.addr);
                            let rest = std::mem::take(&mut buffer);
                            if to_ua.send(StreamInput::Unframed(peer, rest, error)).is_err() { break 'conn; }
                            lingering_since = Some(tokio::time::Instant::now());
                            continue 'conn;
                        }
                    }
                }
                if buffer.len() > MAX_BUFFERED { break; }
                partial_since = match (buffer.is_empty(), partial_since) {
                    (true, _) => None,
                    (false, None) => Some(tokio::time::Instant::now()),
                    (false, since) => since,
                };
            }
            bytes = outgoing.recv() => {
                let Some(bytes) = bytes else { break };
                if !write(&mut writer, &bytes).await { break; }
                last_activity = tokio::time::Instant::now();
            }
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.shutdown()).await;
    let _ = to_ua.send(StreamInput::Closed(peer));
}

/// Tells the SIP task of a connection accepted from `peer`: what it sends
/// there arrives on the returned receiver.
fn opened(peer: Peer, to_ua: &UnboundedSender<StreamInput>) -> Option<UnboundedReceiver<Vec<u8>>> {
    let (tx, outgoing) = unbounded_channel::<Vec<u8>>();
    to_ua.send(StreamInput::Opened(peer, tx)).ok()?;
    Some(outgoing)
}

/// A TLS handshake, either way, must be done within this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A TCP connection we open must be up within this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the SIP task needs to open connections for requests we send.
struct Outbound {
    connector: tokio_rustls::TlsConnector,
    /// The name each TLS server's certificate must carry, from the bridge's
    /// dial commands.
    server_names: HashMap<SocketAddr, String>,
    /// The name each TLS connection we opened was (or is being) verified
    /// for: a request for another name is not sent on it.
    verified: HashMap<SocketAddr, String>,
    streams: UnboundedSender<StreamInput>,
    idle_timeout: Duration,
}

impl Outbound {
    /// Opens a connection to `peer` in a task of its own; what is sent on
    /// the returned writer waits until it is up. A failure comes back as
    /// [`StreamInput::ConnectFailed`].
    fn connect(&mut self, peer: Peer) -> UnboundedSender<Vec<u8>> {
        let (tx, outgoing) = unbounded_channel::<Vec<u8>>();
        let name = self.server_names.get(&peer.addr).cloned().unwrap_or_else(|| peer.addr.ip().to_string());
        if peer.transport == Transport::Tls {
            self.verified.insert(peer.addr, name.clone());
        }
        let (connector, to_ua, idle) = (self.connector.clone(), self.streams.clone(), self.idle_timeout);
        tokio::spawn(async move {
            let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(peer.addr)).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(e)) => return connect_failed(peer, &e.to_string(), &to_ua),
                Err(_) => return connect_failed(peer, "timed out", &to_ua),
            };
            let _ = tcp.set_nodelay(true);
            if peer.transport != Transport::Tls {
                tracing::debug!("SIP: connected to {} over TCP", peer.addr);
                return connection(tcp, peer, idle, to_ua, outgoing).await;
            }
            let Ok(server_name) = rustls::pki_types::ServerName::try_from(name.clone()) else {
                return connect_failed(peer, &format!("{name:?} is not a server name"), &to_ua);
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, tcp)).await {
                Ok(Ok(tls)) => {
                    tracing::debug!("SIP: connected to {} over TLS ({name})", peer.addr);
                    connection(tls, peer, idle, to_ua, outgoing).await
                }
                Ok(Err(e)) => connect_failed(peer, &format!("TLS with {name}: {e}"), &to_ua),
                Err(_) => connect_failed(peer, "TLS handshake timed out", &to_ua),
            }
        });
        tx
    }
}

fn connect_failed(peer: Peer, why: &str, to_ua: &UnboundedSender<StreamInput>) {
    tracing::info!("SIP: cannot reach {} over {:?}: {why}", peer.addr, peer.transport);
    let _ = to_ua.send(StreamInput::ConnectFailed(peer));
}

/// Writes `bytes` within [`WRITE_TIMEOUT`]; `false`: the connection is done.
async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(bytes)).await, Ok(Ok(())))
}

struct SipTask {
    signalling: SipSignalling,
    events: UnboundedSender<SipEvent>,
    udp: UdpSocket,
    writers: HashMap<SocketAddr, UnboundedSender<Vec<u8>>>,
    /// Told when no SIP call is left (graceful shutdown).
    drain_waiters: Vec<oneshot::Sender<()>>,
    outbound: Outbound,
}

impl SipTask {
    async fn run(
        mut self,
        mut commands: UnboundedReceiver<SipCommand>,
        mut streams: UnboundedReceiver<StreamInput>,
        mut drains: UnboundedReceiver<oneshot::Sender<()>>,
    ) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let deadline = self.signalling.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        let peer = Peer { transport: Transport::Udp, addr: from };
                        self.signalling.handle_datagram(Instant::now(), peer, &buf[..n]);
                    }
                }
                Some(input) = streams.recv() => match input {
                    StreamInput::Opened(peer, tx) => { self.writers.insert(peer.addr, tx); }
                    StreamInput::Message(peer, m) => self.signalling.handle_message(Instant::now(), peer, *m),
                    StreamInput::Unframed(peer, bytes, error) => self.signalling.handle_unframed(peer, &bytes, &error),
                    StreamInput::Idle(peer, answer) => { let _ = answer.send(self.signalling.has_call_with(peer)); }
                    StreamInput::Closed(peer) => {
                        self.writers.remove(&peer.addr);
                        self.outbound.verified.remove(&peer.addr);
                    }
                    StreamInput::ConnectFailed(peer) => {
                        // A mismatch on a live connection leaves it be.
                        if self.outbound.verified.get(&peer.addr) == self.outbound.server_names.get(&peer.addr) {
                            self.writers.remove(&peer.addr);
                            self.outbound.verified.remove(&peer.addr);
                        }
                        self.signalling.transport_failed(peer);
                    }
                },
                Some(command) = commands.recv() => {
                    if let SipCommand::Dial { dial, server_name: Some(name), .. } = &command {
                        self.outbound.server_names.insert(dial.destination.addr, name.clone());
                    }
                    self.signalling.handle_command(Instant::now(), command)
                }
                Some(waiter) = drains.recv() => self.drain_waiters.push(waiter),
                _ = sleep_until(deadline) => self.signalling.handle_timeout(Instant::now()),
            }
            self.flush().await;
            if !self.drain_waiters.is_empty() && self.signalling.call_count() == 0 {
                for waiter in self.drain_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
        }
    }

    /// Passes the signalling's events to the bridge and sends everything it
    /// queued.
    async fn flush(&mut self) {
        while let Some(event) = self.signalling.poll_event() {
            let _ = self.events.send(event);
        }
        while let Some(t) = self.signalling.poll_transmit() {
            self.send(t).await;
        }
    }
    async fn send(&mut self, t: Transmit) {
        match t.peer.transport {
            Transport::Udp => {
                let _ = self.udp.send_to(&t.bytes, t.peer.addr).await;
            }
            Transport::Tcp | Transport::Tls => {
                let request = !t.bytes.starts_with(b"SIP/2.0 ");
                let wanted = self.outbound.server_names.get(&t.peer.addr);
                let verified = self.outbound.verified.get(&t.peer.addr);
                if let (true, Transport::Tls, Some(wanted), Some(verified)) =
                    (request, t.peer.transport, wanted, verified)
                {
                    if wanted != verified && self.writers.contains_key(&t.peer.addr) {
                        // The server proved another name on this connection.
                        connect_failed(
                            t.peer,
                            &format!("TLS with {wanted}: the connection is verified for {verified}"),
                            &self.outbound.streams,
                        );
                        return;
                    }
                }
                if let Some(w) = self.writers.get(&t.peer.addr) {
                    let _ = w.send(t.bytes);
                } else if request {
                    // A request of ours: open the connection (a response
                    // whose connection closed is dropped; the peer retries).
                    let w = self.outbound.connect(t.peer);
                    let _ = w.send(t.bytes);
                    self.writers.insert(t.peer.addr, w);
                } else {
                    tracing::debug!("SIP: no connection to {} for a {:?} send", t.peer.addr, t.peer.transport);
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SIP never takes the descriptors the rest needs: a quarter of the
    /// limit, or what the others ask if more, stays free.
    #[test]
    fn the_connection_cap_leaves_the_rest_their_descriptors() {
        let cap = |files| StreamLimits::for_open_files(files, 640).max_connections;
        assert_eq!(cap(1024), 384);
        assert_eq!(cap(4096), 3072);
        assert_eq!(cap(20_000), MAX_CONNECTIONS);
        assert_eq!(cap(600), 0, "nothing left: no SIP connection rather than a starved API");
        assert_eq!(StreamLimits::for_open_files(1_000_000, 0).max_per_source, MAX_PER_SOURCE);
    }

    /// A source holding its share has further connections closed at once,
    /// while another source is served.
    #[tokio::test]
    async fn a_source_past_its_share_is_closed_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, mut opened) = unbounded_channel();
        let admission =
            Admission { slots: Arc::new(Semaphore::new(10)), sources: PerSource::new(2), idle_timeout: IDLE_TIMEOUT };
        tokio::spawn(accept(listener, None, tx, admission));
        let _held = [
            tokio::net::TcpStream::connect(addr).await.expect("connect"),
            tokio::net::TcpStream::connect(addr).await.expect("connect"),
        ];
        let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), third.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "a third from one source: {read:?}");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.2:0".parse().expect("address")).expect("bind");
        let _other = socket.connect(addr).await.expect("another source");
        let (mut served, mut kept) = (Vec::new(), Vec::new());
        while let Ok(Some(input)) = tokio::time::timeout(Duration::from_secs(2), opened.recv()).await {
            if let StreamInput::Opened(peer, _) = &input {
                served.push(peer.addr.ip());
            }
            // Kept: dropping a writer ends its connection.
            kept.push(input);
            if served.len() == 3 {
                break;
            }
        }
        served.sort();
        let local: std::net::IpAddr = "127.0.0.1".parse().expect("address");
        let other: std::net::IpAddr = "127.0.0.2".parse().expect("address");
        assert_eq!(served, [local, local, other]);
    }

    /// Past the cap a connection is not served until one closes.
    #[tokio::test]
    async fn connections_past_the_cap_wait_until_one_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, mut opened) = unbounded_channel();
        let admission =
            Admission { slots: Arc::new(Semaphore::new(2)), sources: PerSource::new(64), idle_timeout: IDLE_TIMEOUT };
        tokio::spawn(accept(listener, None, tx, admission));
        let first = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _second = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _third = tokio::net::TcpStream::connect(addr).await.expect("connect (the kernel queues it)");
        // Kept, as the SIP task keeps each connection's writer: dropping it
        // ends the connection.
        let mut served = Vec::new();
        let wait = std::time::Duration::from_secs(5);
        for _ in 0..2 {
            let input = tokio::time::timeout(wait, opened.recv()).await.expect("served within the cap");
            assert!(matches!(input, Some(StreamInput::Opened(..))));
            served.push(input);
        }
        let third = tokio::time::timeout(std::time::Duration::from_millis(300), opened.recv()).await;
        assert!(third.is_err(), "a third connection is served past the cap of two");
        drop(first);
        // The first connection's task reports it closed, then the third is served.
        let mut got_third = false;
        while let Ok(Some(input)) = tokio::time::timeout(wait, opened.recv()).await {
            if matches!(input, StreamInput::Opened(..)) {
                got_third = true;
                break;
            }
        }
        assert!(got_third, "the third connection is served once one closes");
    }
}
