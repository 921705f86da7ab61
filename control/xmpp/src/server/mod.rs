//! Our XMPP server, as CMS runs its own: for now its component port, where
//! call bridges attach over TLS with the name and secret `confero xmpp
//! callbridge add` made. Client connections (5222) are not built yet.
//!
//! The shell only moves bytes: each connection is a task that feeds a
//! [`accept::ComponentSession`] and writes what it returns, under the same
//! admission as every listener (a global cap, a per-source cap), a deadline
//! for TLS and the handshake, and a stanza rate limit.

pub mod accept;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::link::error_reply;
use crate::stream::Limits;
use accept::{AcceptEvent, ComponentSession};

/// Components connected at once at most.
const MAX_COMPONENTS: usize = 256;
/// From one source at most.
const MAX_PER_SOURCE: usize = 16;
/// TLS and the handshake must be done within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Stanzas a component may send per second on average, and in a burst;
/// beyond, its stream is closed with `policy-violation`.
const RATE: (f64, f64) = (500.0, 1000.0);
/// A component quiet this long (no stanza, no keepalive) is gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(300);

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
    /// The component port's address.
    pub component_listen: SocketAddr,
    /// Its TLS configuration (a certificate naming the domain).
    pub tls: Arc<rustls::ServerConfig>,
    /// The call bridges allowed to attach.
    pub call_bridges: Vec<CallBridgeEntry>,
    /// Stanza size and depth.
    pub limits: Limits,
}

/// A started server.
pub struct RunningServer {
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
    let listener = tokio::net::TcpListener::bind(config.component_listen).await?;
    let component_addr = listener.local_addr()?;
    tracing::info!("XMPP: component port for {} on {component_addr} (TLS)", config.domain);
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
    let task = tokio::spawn(async move {
        let admission = confero_https::admission::Admission::new(MAX_COMPONENTS, MAX_PER_SOURCE);
        tokio::pin!(shutdown);
        while let Some((tcp, peer, admitted)) = admission.next("XMPP components", &listener, shutdown.as_mut()).await {
            let (acceptor, secrets) = (acceptor.clone(), secrets.clone());
            tokio::spawn(async move {
                let _admitted = admitted;
                serve_component(acceptor, tcp, peer, secrets, limits).await;
            });
        }
    });
    Ok(RunningServer { component_addr, task })
}

async fn serve_component(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    secrets: Arc<HashMap<String, String>>,
    limits: Limits,
) {
    let _ = tcp.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let Ok(Ok(mut stream)) = tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await else {
        tracing::debug!("XMPP: component connection from {peer}: no TLS");
        return;
    };
    let stream_id: String = {
        let bytes: [u8; 12] = rand::thread_rng().gen();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut session = ComponentSession::new(&stream_id, limits);
    let secret_of = |jid: &str| secrets.get(jid).cloned();
    let mut jid = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut tokens = RATE.1;
    let mut last = tokio::time::Instant::now();
    loop {
        let limit = if jid.is_some() { tokio::time::Instant::now() + SILENCE_LIMIT } else { deadline };
        let n = match tokio::time::timeout_at(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        session.handle_input(&buf[..n], &secret_of);
        let mut ended = false;
        while let Some(event) = session.poll_event() {
            match event {
                AcceptEvent::Authenticated { jid: j } => {
                    tracing::info!("XMPP: call bridge {j} attached from {peer}");
                    jid = Some(j);
                }
                AcceptEvent::Stanza(stanza) => {
                    let now = tokio::time::Instant::now();
                    tokens = (tokens + now.duration_since(last).as_secs_f64() * RATE.0).min(RATE.1);
                    last = now;
                    tokens -= 1.0;
                    if tokens < 0.0 {
                        tracing::warn!("XMPP: {peer} sends too fast; closing");
                        let _ = stream.write_all(b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>").await;
                        ended = true;
                        break;
                    }
                    // Nothing to route to yet (no client connections):
                    // requests are answered so the component is not left waiting.
                    if let Some(reply) = error_reply(&stanza, "cancel", "service-unavailable") {
                        session.send(&reply);
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
    }
    let _ = stream.shutdown().await;
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
