//! The SIP shell: UDP, TCP and TLS on tokio around the sans-IO user agent
//! of `confero-sip`. One task owns the user agent; it feeds it datagrams,
//! framed stream messages, timer expiries, the bridge's commands and the
//! media runtime's events, then sends what it wants sent and hands its
//! events to the bridge. Connection tasks only frame bytes.
//!
//! Listens on `CONFERO_SIP_LISTEN` for UDP and TCP, and on the next port
//! for TLS (5060 and 5061 by default). Requests we send go over UDP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use confero_media::runtime::MediaEvent;
use confero_sip::message::{Framed, Limits, Message};
use confero_sip::transaction::{Peer, Transmit, Transport};
use confero_sip::ua::{UaConfig, UserAgent};
use rand::SeedableRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::bridge::{CallBridge, UaCommand};

/// Bytes a stream connection may buffer without completing a message.
const MAX_BUFFERED: usize = 128 * 1024;
/// A connection holding part of a message gets this long to finish it
/// (slow-loris guard).
const PARTIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// An idle connection is closed after this (RFC 5626 keep-alives reset it).
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

enum StreamInput {
    Opened(Peer, UnboundedSender<Vec<u8>>),
    Message(Peer, Box<Message>),
    Closed(Peer),
}

/// Binds the listeners and starts the SIP task.
pub async fn start(
    bridge: Arc<CallBridge>,
    listen: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    media_events: UnboundedReceiver<MediaEvent>,
    max_calls: usize,
) -> anyhow::Result<()> {
    let (udp, tcp, tls_listener) = bind(listen).await?;
    let plain = udp.local_addr()?;
    let tls_addr = tls_listener.local_addr()?;
    let config = UaConfig { local_addr: plain, tls_addr: Some(tls_addr), max_calls, ..UaConfig::default() };
    let ua = UserAgent::new(config, Box::new(rand::rngs::StdRng::from_entropy()));
    let (commands_tx, commands) = unbounded_channel();
    bridge.attach_sip(commands_tx, plain);
    let (streams_tx, streams) = unbounded_channel();
    tokio::spawn(accept(tcp, None, streams_tx.clone()));
    tokio::spawn(accept(tls_listener, Some(tokio_rustls::TlsAcceptor::from(tls)), streams_tx));
    let task = SipTask { ua, bridge, udp, writers: HashMap::new() };
    tokio::spawn(task.run(commands, streams, media_events));
    tracing::info!("SIP listening on udp/tcp {plain}, tls {tls_addr}");
    Ok(())
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
        let tcp = TcpListener::bind(plain).await.with_context(|| format!("binding SIP TCP to {plain}"));
        let tls = TcpListener::bind(tls_addr).await.with_context(|| format!("binding SIP TLS to {tls_addr}"));
        match (tcp, tls) {
            (Ok(tcp), Ok(tls)) => return Ok((udp, tcp, tls)),
            (Err(e), _) | (_, Err(e)) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("binding SIP to {listen}")))
}

async fn accept(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, to_ua: UnboundedSender<StreamInput>) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else { continue };
        let to_ua = to_ua.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => connection(stream, Peer { transport: Transport::Tcp, addr }, to_ua).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        connection(stream, Peer { transport: Transport::Tls, addr }, to_ua).await;
                    }
                }
            }
        });
    }
}

/// Frames messages off one TCP or TLS connection and writes what the user
/// agent sends on it.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S, peer: Peer, to_ua: UnboundedSender<StreamInput>) {
    let (tx, mut outgoing) = unbounded_channel::<Vec<u8>>();
    if to_ua.send(StreamInput::Opened(peer, tx)).is_err() {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let limits = Limits::default();
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    // When the message now in the buffer began: it must be complete within
    // PARTIAL_TIMEOUT however slowly its bytes trickle in.
    let mut partial_since: Option<tokio::time::Instant> = None;
    'conn: loop {
        let deadline = match partial_since {
            Some(t) => t + PARTIAL_TIMEOUT,
            None => tokio::time::Instant::now() + IDLE_TIMEOUT,
        };
        tokio::select! {
            read = tokio::time::timeout_at(deadline, reader.read(&mut chunk)) => {
                let n = match read { Ok(Ok(0) | Err(_)) | Err(_) => break, Ok(Ok(n)) => n };
                buffer.extend_from_slice(&chunk[..n]);
                loop {
                    match Message::parse_stream(&buffer, &limits) {
                        Ok(Framed::Incomplete) => break,
                        Ok(Framed::KeepAlive(n)) => { buffer.drain(..n); }
                        Ok(Framed::Message(m, n)) => {
                            buffer.drain(..n);
                            if to_ua.send(StreamInput::Message(peer, m)).is_err() { break 'conn; }
                        }
                        // A stream that cannot be framed cannot be resynchronised.
                        Err(_) => break 'conn,
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
                if writer.write_all(&bytes).await.is_err() { break; }
            }
        }
    }
    let _ = to_ua.send(StreamInput::Closed(peer));
}

struct SipTask {
    ua: UserAgent,
    bridge: Arc<CallBridge>,
    udp: UdpSocket,
    writers: HashMap<SocketAddr, UnboundedSender<Vec<u8>>>,
}

impl SipTask {
    async fn run(
        mut self,
        mut commands: UnboundedReceiver<UaCommand>,
        mut streams: UnboundedReceiver<StreamInput>,
        mut media_events: UnboundedReceiver<MediaEvent>,
    ) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let deadline = self.ua.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        self.ua.handle_datagram(Instant::now(), Peer { transport: Transport::Udp, addr: from }, &buf[..n]);
                    }
                }
                Some(input) = streams.recv() => match input {
                    StreamInput::Opened(peer, tx) => { self.writers.insert(peer.addr, tx); }
                    StreamInput::Message(peer, m) => self.ua.handle_message(Instant::now(), peer, *m),
                    StreamInput::Closed(peer) => { self.writers.remove(&peer.addr); }
                },
                Some(command) = commands.recv() => command(&mut self.ua, Instant::now()),
                Some(event) = media_events.recv() => self.bridge.on_media_event(&mut self.ua, Instant::now(), event),
                _ = sleep_until(deadline) => self.ua.handle_timeout(Instant::now()),
            }
            self.flush().await;
        }
    }

    /// Hands the user agent's events to the bridge (which may make more
    /// work) and sends everything it queued.
    async fn flush(&mut self) {
        loop {
            let mut idle = true;
            while let Some(event) = self.ua.poll_event() {
                idle = false;
                self.bridge.on_sip_event(&mut self.ua, Instant::now(), event);
            }
            while let Some(t) = self.ua.poll_transmit() {
                idle = false;
                self.send(t).await;
            }
            if idle {
                return;
            }
        }
    }

    async fn send(&mut self, t: Transmit) {
        match t.peer.transport {
            Transport::Udp => {
                let _ = self.udp.send_to(&t.bytes, t.peer.addr).await;
            }
            Transport::Tcp | Transport::Tls => {
                if let Some(w) = self.writers.get(&t.peer.addr) {
                    let _ = w.send(t.bytes);
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
