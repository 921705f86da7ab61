//! The web bridge's side of C2W: a TLS listener that requires a client
//! certificate chaining to its trust bundle, on which call bridges and
//! schedulers open a WebSocket. The web bridge greets each with its guid,
//! then sends call bridges the browsers' meeting requests and schedulers
//! the signed-in users' scheduling, and matches the replies by id.
//!
//! Not the HTTPS scaffold's `serve`: that one answers requests and never
//! upgrades a connection; a C2W link is one long-lived WebSocket. It keeps
//! the same guards: a cap on connections, a handshake deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::frame::{self, CustomFile, ErrorKind, Message};
use crate::customization::Customization;

/// Call bridges (and, later, schedulers) linked at once.
const MAX_LINKS: usize = 64;
/// Links (or handshakes) one source may hold: a bridge or scheduler keeps one.
const MAX_LINKS_PER_SOURCE: usize = 8;
/// How long a TLS and WebSocket handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call bridge has to answer a request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests awaiting replies on one link; more are refused, so a call
/// bridge that stops answering cannot grow memory without bound.
const MAX_PENDING: usize = 1024;
/// How often an idle link is pinged, so a call bridge that vanished without
/// closing (a half-open TCP connection) is noticed.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// A link that has sent nothing (not even a pong) for this long is closed;
/// the call bridge reconnects.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(60);

/// Why a request to the call bridges failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum C2wError {
    /// No call bridge is linked (or the one that took the join is gone).
    #[error("no call bridge is linked")]
    NoCallBridge,
    /// The call bridge did not answer in time.
    #[error("the call bridge did not answer")]
    Timeout,
    /// The call bridge refused.
    #[error("refused: {0:?}")]
    Refused(ErrorKind),
    /// An answer of the wrong type.
    #[error("unexpected answer")]
    Unexpected,
}

/// Which linked call bridge; a browser's leg stays with the one it joined.
pub type LinkId = u64;

/// What is at the other end of a link: a call bridge unless it greeted as
/// a scheduler ([`Message::SchedulerHello`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRole {
    /// Answers meeting requests (the default: call bridges send no greeting).
    CallBridge,
    /// Answers the signed-in users' scheduling.
    Scheduler,
}

struct Link {
    peer: SocketAddr,
    role: LinkRole,
    outgoing: mpsc::UnboundedSender<String>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Message>>>>,
}

/// The linked call bridges.
pub struct C2wServer {
    guid: String,
    web_address: Option<String>,
    links: Mutex<HashMap<LinkId, Link>>,
    /// The web app's customization, as a call bridge last pushed it (kept
    /// when that call bridge unlinks: its archive still applies).
    customization: Mutex<Arc<Customization>>,
    next_link: AtomicU64,
    next_request: AtomicU64,
}

impl C2wServer {
    /// A server that greets with `guid` and the web app's address.
    pub fn new(guid: String, web_address: Option<String>) -> Arc<C2wServer> {
        Arc::new(C2wServer {
            guid,
            web_address,
            links: Mutex::new(HashMap::new()),
            customization: Mutex::default(),
            next_link: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
        })
    }

    /// Our guid.
    pub fn guid(&self) -> &str {
        &self.guid
    }

    /// The web app's customization now.
    pub fn customization(&self) -> Arc<Customization> {
        self.customization.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes a pushed customization: checked again here, so a web bridge
    /// serves only what the rules allow, whoever sent it.
    fn customize(&self, peer: SocketAddr, files: Vec<CustomFile>) {
        use base64::Engine as _;
        let decoded: Option<Vec<(String, Vec<u8>)>> = files
            .into_iter()
            .map(|f| Some((f.name, base64::engine::general_purpose::STANDARD.decode(f.data).ok()?)))
            .collect();
        let Some(files) = decoded else {
            tracing::warn!("C2W: customization from {peer} refused: a file not in base64");
            return;
        };
        match Customization::from_files(files) {
            Ok(c) => {
                tracing::info!("C2W: customization from {peer}: {} file(s)", c.files().len());
                *self.customization.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(c);
            }
            Err(e) => tracing::warn!("C2W: customization from {peer} refused: {e}"),
        }
    }

    /// The linked call bridges, oldest first, with their addresses.
    pub fn linked(&self) -> Vec<(LinkId, SocketAddr)> {
        self.linked_as(LinkRole::CallBridge)
    }

    /// The linked schedulers, oldest first, with their addresses.
    pub fn schedulers(&self) -> Vec<(LinkId, SocketAddr)> {
        self.linked_as(LinkRole::Scheduler)
    }

    fn linked_as(&self, role: LinkRole) -> Vec<(LinkId, SocketAddr)> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = links.iter().filter(|(_, l)| l.role == role).map(|(id, l)| (*id, l.peer)).collect();
        v.sort();
        v
    }

    /// Sends `request` to call bridge `link` and waits for its reply; a
    /// refusal is [`C2wError::Refused`].
    pub async fn request(&self, link: LinkId, request: Message) -> Result<Message, C2wError> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let pending = {
            let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
            let l = links.get(&link).ok_or(C2wError::NoCallBridge)?;
            {
                let mut pending = l.pending.lock().unwrap_or_else(|p| p.into_inner());
                if pending.len() >= MAX_PENDING {
                    return Err(C2wError::Refused(ErrorKind::Unavailable));
                }
                pending.insert(id, tx);
            }
            if l.outgoing.send(frame::encode(id, &request)).is_err() {
                return Err(C2wError::NoCallBridge);
            }
            l.pending.clone()
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, rx).await;
        match answer {
            Ok(Ok(Message::Error { kind, .. })) => Err(C2wError::Refused(kind)),
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(C2wError::NoCallBridge),
            Err(_) => {
                pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                Err(C2wError::Timeout)
            }
        }
    }

    /// Accepts call bridges on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        // Links come from a few call bridges and schedulers; handshakes from
        // anyone who can reach the port, so one source gets a few slots only.
        let admission = confero_https::admission::Admission::new(MAX_LINKS, MAX_LINKS_PER_SOURCE);
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        while let Some((tcp, peer, admitted)) = admission.next("C2W", &listener, shutdown.as_mut()).await {
            let acceptor = acceptor.clone();
            let me = self.clone();
            tasks.spawn(async move {
                let _admitted = admitted;
                let handshake = async {
                    let tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
                    tokio_tungstenite::accept_async(tls).await.map_err(|e| e.to_string())
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(ws)) => me.run_link(peer, ws).await,
                    Ok(Err(e)) => tracing::warn!("C2W: refused {peer}: {e}"),
                    Err(_) => tracing::info!("C2W: handshake with {peer} timed out"),
                }
            });
            while tasks.try_join_next().is_some() {}
        }
        tasks.shutdown().await;
    }

    async fn run_link<S>(&self, peer: SocketAddr, ws: tokio_tungstenite::WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut sink, mut stream) = ws.split();
        if sink
            .send(WsMessage::text(frame::encode(
                0,
                &Message::Hello { guid: self.guid.clone(), web_address: self.web_address.clone() },
            )))
            .await
            .is_err()
        {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Message>>>> = Arc::default();
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Link { peer, role: LinkRole::CallBridge, outgoing: tx, pending: pending.clone() });
        tracing::info!("C2W: {peer} linked");
        let mut ping = tokio::time::interval(PING_INTERVAL);
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    if heard.elapsed() > SILENCE_LIMIT {
                        tracing::warn!("C2W: call bridge {peer} silent for {SILENCE_LIMIT:?}; closing");
                        break;
                    }
                    if sink.send(WsMessage::Ping(Default::default())).await.is_err() { break }
                }
                out = rx.recv() => match out {
                    Some(text) => if sink.send(WsMessage::text(text)).await.is_err() { break },
                    None => break,
                },
                received = stream.next() => match received {
                    Some(Ok(WsMessage::Text(text))) => { heard = tokio::time::Instant::now(); match frame::decode(text.as_bytes()) {
                        Ok((_, Message::SchedulerHello { name })) => {
                            if let Some(link) = self.links.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&id) {
                                link.role = LinkRole::Scheduler;
                            }
                            // The name is the peer's own words: shown escaped.
                            tracing::info!("C2W: {peer} is scheduler {:?}; offering scheduling", name.chars().take(64).collect::<String>());
                        }
                        Ok((_, Message::Customization { files })) => self.customize(peer, files),
                        Ok((rid, reply)) if !frame::is_request(&reply) => {
                            let waiter = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&rid);
                            if let Some(w) = waiter {
                                let _ = w.send(reply);
                            }
                        }
                        Ok((rid, _)) => {
                            let refusal = Message::Error { kind: ErrorKind::Unsupported, detail: "web bridges serve no requests".into() };
                            if sink.send(WsMessage::text(frame::encode(rid, &refusal))).await.is_err() { break }
                        }
                        // Not the error's text: it may quote a field's value.
                        Err(_) => tracing::debug!("C2W: unreadable frame of {} bytes from {peer}", text.len()),
                    }},
                    Some(Ok(WsMessage::Close(_))) | None => break,
                    Some(Ok(_)) => heard = tokio::time::Instant::now(),
                    Some(Err(e)) => {
                        tracing::info!("C2W: link from {peer} ended: {e}");
                        break;
                    }
                },
            }
        }
        self.links.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        tracing::info!("C2W: {peer} unlinked");
    }
}
