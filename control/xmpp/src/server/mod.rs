//! Our XMPP server, as CMS runs its own: the component port, where call
//! bridges attach over TLS with the name and secret `confero xmpp
//! callbridge add` made, and the client port (STARTTLS required), whose
//! logins the call bridge checks over its component link.
//!
//! The shell only moves bytes: each connection is a task that feeds a
//! sans-IO session ([`accept::ComponentSession`], [`c2s::ClientSession`])
//! and writes what it returns, under the same admission as every listener
//! (a global cap, a per-source cap), a deadline for TLS and the handshake,
//! and a stanza rate limit. [`Router`] passes stanzas between them.

pub mod accept;
pub mod c2s;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::element::Element;
use crate::link::error_reply;
use crate::stream::Limits;
use accept::{AcceptEvent, ComponentSession};
use c2s::{C2sEvent, ClientSession, NS_CLIENT};

/// The call bridge's answers to our server: a login's check (`auth`), a
/// web user's SCRAM credential (`scram`), a user's spaces (`spaces`, for the
/// roster).
pub const NS_CONFERO_AUTH: &str = "urn:confero:xmpp:auth";
/// See [`NS_CONFERO_AUTH`].
pub const NS_CONFERO_SPACES: &str = "urn:confero:xmpp:spaces";
/// The roster.
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// XEP-0199 ping.
pub const NS_PING: &str = "urn:xmpp:ping";
/// Clients connected at once at most.
const MAX_CLIENTS: usize = 10_000;
/// How long the call bridge may take to answer our server.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Components connected at once at most.
const MAX_COMPONENTS: usize = 256;
/// From one source at most.
const MAX_PER_SOURCE: usize = 16;
/// A component's TLS and handshake must be done within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client's STARTTLS, login (the call bridge's check included) and
/// binding must be done within this.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Reads (each at most a few stanzas) a client may send per second on
/// average, and in a burst; beyond, its stream is closed.
const RATE: (f64, f64) = (500.0, 1000.0);
/// A component quiet this long (no stanza, no keepalive) is gone; ours
/// sends a keepalive after 30 s.
const SILENCE_LIMIT: Duration = Duration::from_secs(300);
/// The same for a bound client: clients send whitespace every 5 minutes
/// (slixmpp's default), so give them three.
const CLIENT_SILENCE_LIMIT: Duration = Duration::from_secs(900);

/// A call bridge allowed to attach: its name (the JID's first label) and
/// its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallBridgeEntry {
    /// `cb1` attaches as `cb1.<domain>`.
    pub name: String,
    /// The shared secret.
    pub secret: String,
}

/// What our XMPP server runs with.
pub struct ServerConfig {
    /// The XMPP domain.
    pub domain: String,
    /// The client port's address; the component port is the next one.
    pub client_listen: SocketAddr,
    /// The component port's address.
    pub component_listen: SocketAddr,
    /// Its TLS configuration (a certificate naming the domain).
    pub tls: Arc<rustls::ServerConfig>,
    /// The call bridges allowed to attach.
    pub call_bridges: Vec<CallBridgeEntry>,
    /// Stanza size and depth.
    pub limits: Limits,
}

/// Who is connected, and the server's own questions waiting for the call
/// bridge's answers.
#[derive(Default)]
pub struct Router {
    domain: String,
    components: Mutex<Vec<(String, mpsc::UnboundedSender<Element>)>>,
    clients: Mutex<HashMap<String, mpsc::UnboundedSender<Element>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Element>>>,
    next_id: AtomicU64,
}

impl Router {
    /// Passes a stanza to the component or client its `to` names; `false`
    /// when nobody by that name is connected.
    fn route(&self, stanza: Element) -> bool {
        let to = stanza.get_attr("to").unwrap_or_default().to_ascii_lowercase();
        if to == self.domain {
            let id = stanza.get_attr("id").unwrap_or_default().to_string();
            if let Some(waiting) = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                let _ = waiting.send(stanza);
                return true;
            }
            return false;
        }
        let domain_part = to.split('/').next().unwrap_or_default();
        let domain_part = domain_part.rsplit('@').next().unwrap_or_default();
        let components = self.components.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, tx)) = components.iter().find(|(jid, _)| *jid == domain_part) {
            return tx.send(stanza).is_ok();
        }
        drop(components);
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        match clients.get(&to) {
            Some(tx) => tx.send(stanza).is_ok(),
            None => false,
        }
    }

    /// Asks the first attached call bridge `query` (an IQ get from the
    /// server); its answer, or `None` if there is no call bridge or it does
    /// not answer in time.
    async fn ask_call_bridge(&self, query: Element) -> Option<Element> {
        let component = self.components.lock().unwrap_or_else(|p| p.into_inner()).first().cloned();
        let (jid, tx) = component?;
        let id = format!("confero-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let iq = Element::new("iq", crate::NS_COMPONENT)
            .attr("type", "get")
            .attr("id", &id)
            .attr("from", &self.domain)
            .attr("to", &jid)
            .child(query);
        let (answer_tx, answer) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), answer_tx);
        let _ = tx.send(iq);
        let answer = tokio::time::timeout(ASK_TIMEOUT, answer).await.ok().and_then(Result::ok);
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        answer
    }
}

/// A started server.
pub struct RunningServer {
    /// Where the client port listens.
    pub client_addr: SocketAddr,
    /// Where the component port listens.
    pub component_addr: SocketAddr,
    /// Ends after the shutdown future resolves.
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds the component port and serves it until `shutdown` resolves.
pub async fn start(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningServer> {
    let clients = tokio::net::TcpListener::bind(config.client_listen).await?;
    let client_addr = clients.local_addr()?;
    let listener = tokio::net::TcpListener::bind(config.component_listen).await?;
    let component_addr = listener.local_addr()?;
    tracing::info!(
        "XMPP: {} on {client_addr} (clients, STARTTLS) and {component_addr} (components, TLS)",
        config.domain
    );
    let router = Arc::new(Router { domain: config.domain.to_ascii_lowercase(), ..Router::default() });
    let secrets: Arc<HashMap<String, String>> = Arc::new(
        config
            .call_bridges
            .iter()
            .map(|c| {
                (format!("{}.{}", c.name.to_ascii_lowercase(), config.domain.to_ascii_lowercase()), c.secret.clone())
            })
            .collect(),
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(config.tls.clone());
    let limits = config.limits;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let client_task = {
        let (acceptor, router, mut stop) = (acceptor.clone(), router.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let admission =
                confero_https::admission::Admission::new(MAX_CLIENTS, confero_https::Limits::default().max_per_source);
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::pin!(stopped);
            while let Some((tcp, peer, admitted)) = admission.next("XMPP clients", &clients, stopped.as_mut()).await {
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    let _admitted = admitted;
                    serve_client(acceptor, tcp, peer, router, limits).await;
                });
            }
        })
    };
    let task = tokio::spawn(async move {
        let admission = confero_https::admission::Admission::new(MAX_COMPONENTS, MAX_PER_SOURCE);
        tokio::pin!(shutdown);
        while let Some((tcp, peer, admitted)) = admission.next("XMPP components", &listener, shutdown.as_mut()).await {
            let (acceptor, secrets, router) = (acceptor.clone(), secrets.clone(), router.clone());
            tokio::spawn(async move {
                let _admitted = admitted;
                serve_component(acceptor, tcp, peer, secrets, router, limits).await;
            });
        }
        let _ = stop_tx.send(true);
        let _ = client_task.await;
    });
    Ok(RunningServer { client_addr, component_addr, task })
}

async fn serve_component(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    secrets: Arc<HashMap<String, String>>,
    router: Arc<Router>,
    limits: Limits,
) {
    let _ = tcp.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let Ok(Ok(mut stream)) = tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await else {
        tracing::debug!("XMPP: component connection from {peer}: no TLS");
        return;
    };
    let (to_component, mut inbox) = mpsc::unbounded_channel::<Element>();
    let stream_id: String = {
        let bytes: [u8; 12] = rand::thread_rng().gen();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut session = ComponentSession::new(&stream_id, limits);
    let secret_of = |jid: &str| secrets.get(jid).cloned();
    let mut jid = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let limit = if jid.is_some() { tokio::time::Instant::now() + SILENCE_LIMIT } else { deadline };
        tokio::select! {
            read = tokio::time::timeout_at(limit, stream.read(&mut buf)) => {
                let n = match read {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => n,
                };
                session.handle_input(&buf[..n], &secret_of);
            }
            Some(stanza) = inbox.recv() => session.send(&stanza),
        }
        let mut ended = false;
        while let Some(event) = session.poll_event() {
            match event {
                AcceptEvent::Authenticated { jid: j } => {
                    tracing::info!("XMPP: call bridge {j} attached from {peer}");
                    let mut components = router.components.lock().unwrap_or_else(|p| p.into_inner());
                    // A call bridge reconnecting replaces its old link.
                    components.retain(|(c, _)| *c != j);
                    components.push((j.clone(), to_component.clone()));
                    jid = Some(j);
                }
                AcceptEvent::Stanza(stanza) => {
                    // No rate limit here: a component is a call bridge that
                    // proved its secret, and it mostly answers what clients,
                    // each rate-limited, asked (one answer per login: a limit
                    // on it would cap logins and, hit, drop every user's link).
                    // The component speaks for itself only.
                    let from_ok = stanza.get_attr("from").is_none_or(|f| {
                        let f = f.to_ascii_lowercase();
                        jid.as_deref()
                            .is_some_and(|j| f == j || f.ends_with(&format!("@{j}")) || f.starts_with(&format!("{j}/")))
                    });
                    let mut stanza = stanza;
                    if !from_ok || stanza.get_attr("from").is_none() {
                        stanza.set_attr("from", jid.as_deref().unwrap_or_default());
                    }
                    if !router.route(stanza.clone()) {
                        if let Some(reply) = error_reply(&stanza, "cancel", "service-unavailable") {
                            session.send(&reply);
                        }
                    }
                }
                AcceptEvent::Ended => {
                    if jid.is_none() {
                        tracing::info!("XMPP: component connection from {peer} refused");
                    }
                    ended = true;
                }
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
        if stream.flush().await.is_err() || ended {
            break;
        }
    }
    if let Some(j) = jid {
        tracing::info!("XMPP: call bridge {j} detached");
        router
            .components
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, tx)| !(*c == j && tx.same_channel(&to_component)));
    }
    let _ = stream.shutdown().await;
}

/// A client connection: plain until STARTTLS, then TLS.
async fn serve_client(
    acceptor: tokio_rustls::TlsAcceptor,
    mut tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Arc<Router>,
    limits: Limits,
) {
    let _ = tcp.set_nodelay(true);
    let stream_id: String = {
        let bytes: [u8; 12] = rand::thread_rng().gen();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut session = ClientSession::new(&router.domain, &stream_id, limits);
    let deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    let (tx, mut inbox) = mpsc::unbounded_channel::<Element>();
    if drive_client(&mut tcp, &mut session, &router, peer, &tx, &mut inbox, Some(deadline)).await != Outcome::StartTls {
        let _ = tcp.shutdown().await;
        return;
    }
    let Ok(Ok(mut tls)) = tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await else {
        tracing::debug!("XMPP: client {peer}: TLS failed");
        return;
    };
    session.tls_established();
    drive_client(&mut tls, &mut session, &router, peer, &tx, &mut inbox, Some(deadline)).await;
    if let Some(jid) = session.jid() {
        router.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(jid);
        tracing::debug!("XMPP: {jid} left");
    }
    let _ = tls.shutdown().await;
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    StartTls,
    Ended,
}

/// Runs a client's stream until it asks for TLS or ends. Until bound, it
/// must get there by `deadline`.
async fn drive_client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut ClientSession,
    router: &Router,
    peer: SocketAddr,
    tx: &mpsc::UnboundedSender<Element>,
    inbox: &mut mpsc::UnboundedReceiver<Element>,
    deadline: Option<tokio::time::Instant>,
) -> Outcome {
    let mut buf = vec![0u8; 16 * 1024];
    let mut tokens = RATE.1;
    let mut last = tokio::time::Instant::now();
    loop {
        let limit = match (session.jid(), deadline) {
            (None, Some(d)) => d,
            _ => tokio::time::Instant::now() + CLIENT_SILENCE_LIMIT,
        };
        tokio::select! {
            read = tokio::time::timeout_at(limit, stream.read(&mut buf)) => {
                let n = match read {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Outcome::Ended,
                    Ok(Ok(n)) => n,
                };
                let now = tokio::time::Instant::now();
                tokens = (tokens + now.duration_since(last).as_secs_f64() * RATE.0).min(RATE.1) - 1.0;
                last = now;
                if tokens < 0.0 {
                    tracing::warn!("XMPP: client {peer} sends too fast; closing");
                    return Outcome::Ended;
                }
                session.handle_input(&buf[..n]);
            }
            Some(stanza) = inbox.recv() => session.send(&to_client(stanza)),
        }
        let mut outcome = None;
        while let Some(event) = session.poll_event() {
            match event {
                C2sEvent::StartTls => outcome = Some(Outcome::StartTls),
                C2sEvent::Ended => outcome = Some(Outcome::Ended),
                C2sEvent::Authenticate { user, password } => {
                    let query = Element::new("auth", NS_CONFERO_AUTH)
                        .attr("source", &peer.ip().to_string())
                        .child(Element::new("user", NS_CONFERO_AUTH).text(&user))
                        .child(Element::new("password", NS_CONFERO_AUTH).text(&password));
                    let allowed = router
                        .ask_call_bridge(query)
                        .await
                        .is_some_and(|answer| answer.get_attr("type") == Some("result"));
                    if !allowed {
                        tracing::info!("XMPP: login of {user:?} from {peer} refused");
                    }
                    session.auth_result(allowed);
                }
                C2sEvent::ScramLookup { user } => {
                    let query = Element::new("scram", NS_CONFERO_AUTH).attr("user", &user);
                    let credential = router
                        .ask_call_bridge(query)
                        .await
                        .filter(|answer| answer.get_attr("type") == Some("result"))
                        .and_then(|answer| {
                            let c = answer.find("scram", NS_CONFERO_AUTH)?.get_attr("credential")?.to_string();
                            confero_https::scram::ScramCredential::parse(&c)
                        });
                    let nonce: String = {
                        let bytes: [u8; 18] = rand::thread_rng().gen();
                        bytes.iter().map(|b| format!("{b:02x}")).collect()
                    };
                    session.scram_credential(credential, &nonce);
                }
                C2sEvent::Bound { jid } => {
                    tracing::debug!("XMPP: {jid} bound from {peer}");
                    router
                        .clients
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(jid.to_ascii_lowercase(), tx.clone());
                }
                C2sEvent::Route(stanza) => {
                    if !router.route(renamed(stanza.clone(), NS_CLIENT, crate::NS_COMPONENT)) {
                        if let Some(reply) = error_reply(&stanza, "cancel", "service-unavailable") {
                            session.send(&to_client(reply));
                        }
                    }
                }
                C2sEvent::ServerIq(iq) => {
                    let user = session.user().unwrap_or_default().to_string();
                    if let Some(reply) = server_iq(router, &user, &iq).await {
                        session.send(&reply);
                    }
                }
            }
        }
        while let Some(bytes) = session.poll_transmit() {
            if stream.write_all(&bytes).await.is_err() {
                return Outcome::Ended;
            }
        }
        if stream.flush().await.is_err() {
            return Outcome::Ended;
        }
        if let Some(o) = outcome {
            return o;
        }
    }
}

/// A stanza moved between a component's stream and a client's: its
/// content namespace follows (`jabber:component:accept` ↔ `jabber:client`).
fn renamed(mut e: Element, from: &str, to: &str) -> Element {
    fn walk(e: &mut Element, from: &str, to: &str) {
        if e.ns == from {
            e.ns = to.to_string();
        }
        for c in e.children.iter_mut() {
            if let crate::element::Node::Element(child) = c {
                walk(child, from, to);
            }
        }
    }
    walk(&mut e, from, to);
    e
}

fn to_client(e: Element) -> Element {
    renamed(e, crate::NS_COMPONENT, NS_CLIENT)
}

/// What the server itself answers: the roster (the user's spaces, from
/// the call bridge) and pings; anything else `service-unavailable`.
async fn server_iq(router: &Router, user: &str, iq: &Element) -> Option<Element> {
    let reply = c2s::result_of(iq);
    let kind = iq.get_attr("type").unwrap_or_default();
    if kind == "get" && iq.find("query", NS_ROSTER).is_some() {
        let query = Element::new("spaces", NS_CONFERO_SPACES).attr("user", user);
        let mut roster = Element::new("query", NS_ROSTER);
        if let Some(answer) = router.ask_call_bridge(query).await {
            if let Some(spaces) = answer.find("spaces", NS_CONFERO_SPACES) {
                for s in spaces.elements() {
                    let (Some(jid), Some(name)) = (s.get_attr("jid"), s.get_attr("name")) else { continue };
                    roster = roster.child(
                        Element::new("item", NS_ROSTER)
                            .attr("jid", jid)
                            .attr("name", name)
                            .attr("subscription", "none"),
                    );
                }
            }
        }
        return Some(reply.child(roster));
    }
    if kind == "get" && iq.find("ping", NS_PING).is_some() {
        return Some(reply);
    }
    // Answers to nothing we asked get none.
    error_reply(iq, "cancel", "service-unavailable").map(to_client)
}

/// The certificate our server presents when none is configured: made once
/// in `dir` for `domain` (again if the domain changes), so that call
/// bridges in this process and elsewhere can pin it (`callbridge trust
/// xmpp`). Returns the certificate's and the key's paths.
pub fn ensure_certificate(
    dir: &std::path::Path,
    domain: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let (cert, key, marker) = (dir.join("xmpp-cert.pem"), dir.join("xmpp-key.pem"), dir.join("xmpp-cert.domain"));
    let made_for = std::fs::read_to_string(&marker).unwrap_or_default();
    if cert.exists() && key.exists() && made_for.trim() == domain {
        return Ok((cert, key));
    }
    let made = rcgen::generate_simple_self_signed(vec![domain.to_string()]).map_err(|e| e.to_string())?;
    confero_https::tls::write_private(&key, made.key_pair.serialize_pem().as_bytes()).map_err(|e| e.to_string())?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    std::fs::write(&marker, domain).map_err(|e| format!("{}: {e}", marker.display()))?;
    tracing::info!(cert = %cert.display(), "made a self-signed XMPP certificate for {domain}");
    Ok((cert, key))
}
