//! The tokio shell around the sans-IO [`UserAgent`]: a UDP socket, a TCP
//! listener and a TLS listener feed bytes and source addresses in; what the
//! user agent wants sent goes out on the right socket or connection. One task
//! owns the user agent, so there is no lock on call state; its timers are one
//! `sleep_until(next_timeout)`. The bridge talks to it through [`SipHandle`]
//! (commands) and a channel of [`UaEvent`]s.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use confero_sip::message::{Framed, Limits, Message};
use confero_sip::transaction::{Peer, Transport};
use confero_sip::ua::{CallHandle, Dial, UaConfig, UaError, UaEvent, UserAgent};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

/// Stream connections (TCP and TLS together) served at once; more wait in
/// the kernel's accept queue rather than costing memory here.
const MAX_CONNECTIONS: usize = 1024;
/// How long a TLS handshake may take.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a message may take to arrive once its first byte has (slow-loris guard, as the API's 30 s).
const PARTIAL_MESSAGE: Duration = Duration::from_secs(30);
/// How long a connection may stay silent; peers keep theirs open with CRLF pings or calls.
const IDLE_CONNECTION: Duration = Duration::from_secs(15 * 60);

/// The TLS port next to a SIP port: 5061 for 5060 (RFC 3261 §26.2.2 convention).
pub fn tls_listen(sip_listen: SocketAddr) -> SocketAddr {
    SocketAddr::new(sip_listen.ip(), sip_listen.port().saturating_add(1))
}

/// The API's TLS configuration reused for SIP: same certificate, no HTTP ALPN.
pub fn sip_tls_config(api: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = api.clone();
    config.alpn_protocols.clear();
    Arc::new(config)
}

/// Where the SIP service listens.
#[derive(Debug, Clone)]
pub struct SipListen {
    /// UDP and TCP.
    pub addr: SocketAddr,
    /// TLS, with its configuration; None: no TLS.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
}

/// The addresses actually bound (port 0 resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipBound {
    /// UDP.
    pub udp: SocketAddr,
    /// TCP.
    pub tcp: SocketAddr,
    /// TLS, if listening.
    pub tls: Option<SocketAddr>,
}

/// A command for the user agent, run in its task.
#[derive(Debug)]
enum Command {
    Ring(CallHandle),
    Accept(CallHandle, Vec<u8>),
    Reject(CallHandle, u16),
    AnswerReoffer(CallHandle, Result<Vec<u8>, u16>),
    Reinvite(CallHandle, Vec<u8>),
    Hangup(CallHandle),
    Dial(Box<Dial>, oneshot::Sender<Result<CallHandle, UaError>>),
    Overload(Option<u32>),
}

/// Why a command did not reach the user agent.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// The SIP task has stopped.
    #[error("the SIP service has stopped")]
    Stopped,
    /// The user agent refused it.
    #[error(transparent)]
    Ua(#[from] UaError),
}

/// The bridge's side: commands to the user agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SipHandle {
    commands: mpsc::Sender<Command>,
}

impl SipHandle {
    async fn send(&self, command: Command) -> Result<(), SipError> {
        self.commands.send(command).await.map_err(|_| SipError::Stopped)
    }

    /// 180 Ringing.
    pub async fn ring(&self, call: CallHandle) -> Result<(), SipError> {
        self.send(Command::Ring(call)).await
    }

    /// 200 OK with our SDP answer.
    pub async fn accept(&self, call: CallHandle, sdp: Vec<u8>) -> Result<(), SipError> {
        self.send(Command::Accept(call, sdp)).await
    }

    /// A final refusal (404, 486, 488, 503, ...).
    pub async fn reject(&self, call: CallHandle, code: u16) -> Result<(), SipError> {
        self.send(Command::Reject(call, code)).await
    }

    /// The answer to a re-INVITE/UPDATE offer, or the code to refuse it with.
    pub async fn answer_reoffer(&self, call: CallHandle, answer: Result<Vec<u8>, u16>) -> Result<(), SipError> {
        self.send(Command::AnswerReoffer(call, answer)).await
    }

    /// A re-INVITE with a new offer (hold/resume).
    pub async fn reinvite(&self, call: CallHandle, offer: Vec<u8>) -> Result<(), SipError> {
        self.send(Command::Reinvite(call, offer)).await
    }

    /// Ends a call whatever its state.
    pub async fn hangup(&self, call: CallHandle) -> Result<(), SipError> {
        self.send(Command::Hangup(call)).await
    }

    /// Starts an outgoing call.
    pub async fn dial(&self, dial: Dial) -> Result<CallHandle, SipError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Dial(Box::new(dial), reply)).await?;
        Ok(answer.await.map_err(|_| SipError::Stopped)??)
    }

    /// Switches the 503 overload answer on (with Retry-After seconds) or off.
    pub async fn set_overload(&self, retry_after: Option<u32>) -> Result<(), SipError> {
        self.send(Command::Overload(retry_after)).await
    }
}

/// What connection tasks tell the owner task.
enum Inbound {
    Connected(Peer, mpsc::Sender<Vec<u8>>),
    Closed(Peer),
    Message(Peer, Box<Message>),
}

/// Binds the sockets and starts the SIP service. The service stops when every
/// [`SipHandle`] is dropped.
pub async fn start(
    listen: SipListen,
    mut config: UaConfig,
) -> io::Result<(SipHandle, mpsc::Receiver<UaEvent>, SipBound)> {
    let udp = UdpSocket::bind(listen.addr).await?;
    let udp_addr = udp.local_addr()?;
    // TCP on the same port as UDP, as a SIP URI without transport implies both.
    let tcp = TcpListener::bind(udp_addr).await?;
    let tcp_addr = tcp.local_addr()?;
    let tls = match listen.tls {
        Some((addr, tls_config)) => {
            let listener = TcpListener::bind(addr).await?;
            Some((listener, tokio_rustls::TlsAcceptor::from(tls_config)))
        }
        None => None,
    };
    let tls_addr = match &tls {
        Some((listener, _)) => Some(listener.local_addr()?),
        None => None,
    };
    config.local_addr = udp_addr;
    config.tls_addr = tls_addr;
    let limits = config.limits;
    let ua = UserAgent::new(config, Box::new(StdRng::from_entropy()));
    let (command_tx, command_rx) = mpsc::channel(1024);
    let (event_tx, event_rx) = mpsc::channel(1024);
    let (inbound_tx, inbound_rx) = mpsc::channel(1024);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(accept_tcp(tcp, inbound_tx.clone(), connections.clone(), limits));
    if let Some((listener, acceptor)) = tls {
        tokio::spawn(accept_tls(listener, acceptor, inbound_tx.clone(), connections, limits));
    }
    tokio::spawn(run(ua, udp, command_rx, event_tx, inbound_rx, inbound_tx, limits));
    tracing::info!(udp = %udp_addr, tcp = %tcp_addr, tls = ?tls_addr, "SIP listening");
    Ok((SipHandle { commands: command_tx }, event_rx, SipBound { udp: udp_addr, tcp: tcp_addr, tls: tls_addr }))
}

/// The task that owns the user agent.
async fn run(
    mut ua: UserAgent,
    udp: UdpSocket,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<UaEvent>,
    mut inbound: mpsc::Receiver<Inbound>,
    inbound_tx: mpsc::Sender<Inbound>,
    limits: Limits,
) {
    let mut buffer = vec![0u8; 65_536];
    let mut streams: HashMap<Peer, mpsc::Sender<Vec<u8>>> = HashMap::new();
    loop {
        let deadline = ua.next_timeout().map(Instant::from_std);
        tokio::select! {
            received = udp.recv_from(&mut buffer) => match received {
                Ok((len, from)) => {
                    let peer = Peer { transport: Transport::Udp, addr: from };
                    ua.handle_datagram(now(), peer, &buffer[..len]);
                }
                // ICMP port unreachable and the like: nothing to do per datagram.
                Err(error) => tracing::debug!(%error, "SIP UDP receive"),
            },
            Some(message) = inbound.recv() => match message {
                Inbound::Connected(peer, sender) => { streams.insert(peer, sender); }
                Inbound::Closed(peer) => { streams.remove(&peer); }
                Inbound::Message(peer, message) => ua.handle_message(now(), peer, *message),
            },
            command = commands.recv() => match command {
                Some(command) => apply(&mut ua, command),
                None => break,
            },
            _ = sleep_until(deadline), if deadline.is_some() => ua.handle_timeout(now()),
        }
        while let Some(transmit) = ua.poll_transmit() {
            match transmit.peer.transport {
                Transport::Udp => {
                    if let Err(error) = udp.send_to(&transmit.bytes, transmit.peer.addr).await {
                        tracing::debug!(%error, to = %transmit.peer.addr, "SIP UDP send");
                    }
                }
                _ => {
                    let sender = streams
                        .entry(transmit.peer)
                        .or_insert_with(|| connect(transmit.peer, inbound_tx.clone(), limits));
                    // A full queue means the peer is not reading: drop, as UDP would.
                    if sender.try_send(transmit.bytes).is_err() {
                        tracing::debug!(to = %transmit.peer.addr, "SIP stream queue full or closed");
                    }
                }
            }
        }
        while let Some(event) = ua.poll_event() {
            if events.send(event).await.is_err() {
                tracing::debug!("SIP event dropped: the bridge stopped listening");
            }
        }
    }
    tracing::info!("SIP service stopped");
}

/// The user agent's clock: tokio's, so tests with a paused clock stay in step.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn apply(ua: &mut UserAgent, command: Command) {
    let at = now();
    let result = match command {
        Command::Ring(call) => ua.ring(at, call),
        Command::Accept(call, sdp) => ua.accept(at, call, sdp),
        Command::Reject(call, code) => ua.reject(at, call, code),
        Command::AnswerReoffer(call, answer) => ua.answer_reoffer(at, call, answer),
        Command::Reinvite(call, offer) => ua.reinvite(at, call, offer),
        Command::Hangup(call) => ua.hangup(at, call),
        Command::Dial(dial, reply) => {
            let _ = reply.send(ua.dial(at, *dial));
            Ok(())
        }
        Command::Overload(retry_after) => {
            ua.set_overload(retry_after);
            Ok(())
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "SIP command refused");
    }
}

/// An outgoing TCP connection for a peer we have none to (dial-out over TCP).
/// Outgoing TLS is not supported yet: its bytes are dropped.
fn connect(peer: Peer, inbound: mpsc::Sender<Inbound>, limits: Limits) -> mpsc::Sender<Vec<u8>> {
    let (sender, queue) = mpsc::channel(64);
    tokio::spawn(async move {
        if peer.transport != Transport::Tcp {
            tracing::warn!(to = %peer.addr, "outgoing SIP over TLS is not supported yet");
            let _ = inbound.send(Inbound::Closed(peer)).await;
            return;
        }
        match TcpStream::connect(peer.addr).await {
            Ok(stream) => serve_stream(stream, peer, inbound, queue, limits).await,
            Err(error) => {
                tracing::info!(%error, to = %peer.addr, "SIP TCP connect");
                let _ = inbound.send(Inbound::Closed(peer)).await;
            }
        }
    });
    sender
}

async fn accept_tcp(listener: TcpListener, inbound: mpsc::Sender<Inbound>, slots: Arc<Semaphore>, limits: Limits) {
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "SIP TCP accept");
                continue;
            }
        };
        let inbound = inbound.clone();
        tokio::spawn(async move {
            let peer = Peer { transport: Transport::Tcp, addr };
            let (sender, queue) = mpsc::channel(64);
            if inbound.send(Inbound::Connected(peer, sender)).await.is_ok() {
                serve_stream(stream, peer, inbound, queue, limits).await;
            }
            drop(permit);
        });
    }
}

async fn accept_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    inbound: mpsc::Sender<Inbound>,
    slots: Arc<Semaphore>,
    limits: Limits,
) {
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "SIP TLS accept");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let inbound = inbound.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%error, from = %addr, "SIP TLS handshake"),
                Err(_) => return tracing::debug!(from = %addr, "SIP TLS handshake timed out"),
            };
            let peer = Peer { transport: Transport::Tls, addr };
            let (sender, queue) = mpsc::channel(64);
            if inbound.send(Inbound::Connected(peer, sender)).await.is_ok() {
                serve_stream(stream, peer, inbound, queue, limits).await;
            }
            drop(permit);
        });
    }
}

/// Reads messages off one stream (framed by Content-Length) and writes what
/// the user agent queues for it. A framing error closes the connection: a
/// stream cannot find the next message after a bad one.
async fn serve_stream<S>(
    stream: S,
    peer: Peer,
    inbound: mpsc::Sender<Inbound>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    limits: Limits,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (pong_tx, mut pong_rx) = mpsc::channel::<()>(4);
    let writing = tokio::spawn(async move {
        loop {
            let bytes = tokio::select! {
                bytes = queue.recv() => match bytes { Some(bytes) => bytes, None => break },
                Some(()) = pong_rx.recv() => b"\r\n".to_vec(),
            };
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    'read: loop {
        loop {
            match Message::parse_stream(&buffer, &limits) {
                Ok(Framed::Incomplete) => break,
                Ok(Framed::KeepAlive(used)) => {
                    // A double CRLF ping gets a single CRLF pong (RFC 5626 §4.4.1).
                    if buffer.starts_with(b"\r\n\r\n") {
                        let _ = pong_tx.try_send(());
                    }
                    buffer.drain(..used);
                }
                Ok(Framed::Message(message, used)) => {
                    buffer.drain(..used);
                    if inbound.send(Inbound::Message(peer, message)).await.is_err() {
                        break 'read;
                    }
                }
                Err(error) => {
                    tracing::info!(%error, from = %peer.addr, "SIP stream framing error: closing");
                    break 'read;
                }
            }
        }
        let patience = if buffer.is_empty() { IDLE_CONNECTION } else { PARTIAL_MESSAGE };
        match tokio::time::timeout(patience, reader.read_buf(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {
                tracing::debug!(from = %peer.addr, "SIP stream timed out");
                break;
            }
        }
    }
    writing.abort();
    let _ = inbound.send(Inbound::Closed(peer)).await;
}

#[cfg(test)]
mod tests;
