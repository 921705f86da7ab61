//! The HTTPS scaffold every Confero listener shares (the API today; the web
//! bridge and the scheduler next), so that each gets the same protections
//! without writing them again:
//!
//! - TLS only (rustls; [`tls::server_config`]: a configured key and chain, or
//!   a self-signed pair made once in the data directory);
//! - at most [`Limits::max_connections`] connections at once — more wait in
//!   the kernel's accept queue, so a flood of idle connections cannot exhaust
//!   memory or file descriptors;
//! - a TLS handshake and a request's headers each have a deadline
//!   (slow-loris guards);
//! - graceful shutdown: when the shutdown future resolves, no new connection
//!   is taken and requests in flight get [`Limits::drain`] to finish;
//! - HTTP Basic credentials ([`basic_credentials`]) checked against the API
//!   users ([`users::Authenticator`]).
//!
//! What a request means is the caller's business: [`serve`] hands each one
//! to its handler with the peer's address.
#![warn(missing_docs)]

pub mod throttle;
pub mod tls;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The limits a listener keeps to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long requests in flight get to finish at shutdown.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves HTTPS on `listener` until `shutdown` resolves, handing every
/// request to `handler`; `name` says which listener in the log.
pub async fn serve<H, F>(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("{name}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("{name}: TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |req| {
                let response = handler(peer, req);
                async move { Ok::<_, std::convert::Infallible>(response.await) }
            });
            let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!("{name}: connection from {peer} ended: {e}");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.drain) => tracing::warn!("{name}: connections still open at shutdown"),
    }
}

/// The user name and password of an `Authorization: Basic` header (the
/// scheme in any case, with or without the space some clients leave out).
pub fn basic_credentials(header: Option<&hyper::header::HeaderValue>) -> Option<(String, String)> {
    let value = header?.to_str().ok()?.trim();
    let scheme = value.get(..5)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(value[5..].trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_with_and_without_space() {
        let h = hyper::header::HeaderValue::from_static("Basic YWRtaW46cGE6c3M=");
        assert_eq!(basic_credentials(Some(&h)), Some(("admin".into(), "pa:ss".into())));
        let h = hyper::header::HeaderValue::from_static("BasicYWRtaW46cGE6c3M=");
        assert_eq!(basic_credentials(Some(&h)), Some(("admin".into(), "pa:ss".into())));
        let h = hyper::header::HeaderValue::from_static("Bearer x");
        assert_eq!(basic_credentials(Some(&h)), None);
        assert_eq!(basic_credentials(None), None);
    }
}
