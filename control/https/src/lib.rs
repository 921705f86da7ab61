//! The HTTPS scaffold every Confero listener shares (the API today; the web
//! bridge and the scheduler next), so that each gets the same protections
//! without writing them again:
//!
//! - TLS only (rustls; [`tls::server_config`]: a configured key and chain, or
//!   a self-signed pair made once in the data directory);
//! - at most [`Limits::max_connections`] connections at once — more wait in
//!   the kernel's accept queue, so a flood of idle connections cannot exhaust
//!   memory or file descriptors;
//! - at most [`Limits::max_per_source`] of them from one source, counted from
//!   accept (TLS handshakes included); a source's excess connections are
//!   closed as soon as they are accepted ([`admission`]), so one address
//!   cannot hold the slots everyone shares;
//! - a TLS handshake, a request's headers, a whole request (body included)
//!   and an idle connection each have a deadline (slow-loris guards);
//! - HTTP/1.1 only, as ALPN offers;
//! - graceful shutdown: when the shutdown future resolves, no new connection
//!   is taken and requests in flight get [`Limits::drain`] to finish;
//! - HTTP Basic credentials ([`basic_credentials`]) checked against the API
//!   users ([`users::Authenticator`]).
//!
//! What a request means is the caller's business: [`serve`] hands each one
//! to its handler with the peer's address.
#![warn(missing_docs)]

pub mod admission;
pub mod scram;
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
    /// Connections served at once from one source address (an IPv6 /64):
    /// a bounded share of `max_connections`, so one address cannot starve
    /// the rest. An API client needs a handful; TMS keeps a few open.
    pub max_per_source: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in progress (after
    /// its handshake, between keep-alive requests): otherwise connections that
    /// send nothing hold every slot.
    pub idle_timeout: Duration,
    /// How long a request may take from its headers to its response, body
    /// included: a body that never completes is answered 408 and the
    /// connection closed. Operations are far quicker; bulk work runs apart.
    pub request_timeout: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long requests in flight get to finish at shutdown.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_per_source: 64,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
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
    // HTTP/1.1 only, as ALPN says: HTTP/2 by prior knowledge would bring 200
    // streams per connection and none of these deadlines.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let admission = admission::Admission::new(limits.max_connections, limits.max_per_source);
    tokio::pin!(shutdown);
    while let Some((tcp, peer, admitted)) = admission.next(name, &listener, shutdown.as_mut()).await {
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _admitted = admitted;
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("{name}: TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => return,
            };
            let activity = Arc::new(Activity::new());
            let seen = activity.clone();
            let service = hyper::service::service_fn(move |req| {
                let busy = seen.begin();
                let response = tokio::time::timeout(limits.request_timeout, handler(peer, req));
                async move {
                    let response = response.await.unwrap_or_else(|_| {
                        tracing::debug!("{name}: request from {peer} took over {:?}", limits.request_timeout);
                        timed_out()
                    });
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let conn = watcher.watch(builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service));
            tokio::pin!(conn);
            loop {
                let wait = limits.idle_timeout.saturating_sub(activity.idle_for());
                tokio::select! {
                    ended = &mut conn => {
                        if let Err(e) = ended {
                            tracing::debug!("{name}: connection from {peer} ended: {e}");
                        }
                        break;
                    }
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {
                        if activity.idle_for() >= limits.idle_timeout {
                            tracing::debug!("{name}: closing idle connection from {peer}");
                            break;
                        }
                    }
                }
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.drain) => tracing::warn!("{name}: connections still open at shutdown"),
    }
}

/// Requests in progress on one connection and when the last one ended, for
/// the idle deadline.
struct Activity {
    in_progress: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<std::time::Instant>,
}

/// Marks a request in progress until dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Activity {
        Activity { in_progress: 0.into(), last: std::sync::Mutex::new(std::time::Instant::now()) }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_progress.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Zero while a request is in progress.
    fn idle_for(&self) -> Duration {
        if self.in_progress.load(std::sync::atomic::Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        self.last.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
        self.0.in_progress.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// 408, closing the connection: its request's body never completed.
fn timed_out() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::REQUEST_TIMEOUT;
    r.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    r
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

    /// A server with tiny deadlines and a TLS client that trusts its
    /// self-signed certificate.
    async fn tiny_server(dir: &std::path::Path) -> (SocketAddr, tokio_rustls::TlsConnector) {
        tiny_server_with(dir, Limits::default().max_per_source).await
    }

    async fn tiny_server_with(
        dir: &std::path::Path,
        max_per_source: usize,
    ) -> (SocketAddr, tokio_rustls::TlsConnector) {
        let tls = tls::server_config(None, None, dir).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            idle_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(300),
            max_per_source,
            ..Limits::default()
        };
        tokio::spawn(serve("test", listener, tls, limits, std::future::pending(), |_, req: Request<Incoming>| async {
            use http_body_util::BodyExt;
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            Response::new(Full::new(body))
        }));
        let pem = std::fs::read(dir.join("api-cert.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        (addr, tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// Sends `bytes` and reads what comes back until the server closes (or 3 s).
    async fn exchange(addr: SocketAddr, connector: &tokio_rustls::TlsConnector, bytes: &[u8]) -> (Vec<u8>, bool) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(bytes).await.unwrap();
        let mut got = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            let mut buf = [0u8; 4096];
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .is_ok();
        (got, closed)
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_at_the_idle_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, connector) = tiny_server(dir.path()).await;
        let started = std::time::Instant::now();
        let (got, closed) = exchange(addr, &connector, b"").await;
        assert!(closed && got.is_empty(), "{got:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_body_that_never_completes_is_answered_408_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, connector) = tiny_server(dir.path()).await;
        let request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten b";
        let (got, closed) = exchange(addr, &connector, request).await;
        assert!(closed, "still open");
        assert!(got.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&got));
    }

    #[tokio::test]
    async fn keep_alive_works_and_http2_by_prior_knowledge_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, connector) = tiny_server(dir.path()).await;
        let (got, closed) =
            exchange(addr, &connector, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi").await;
        assert!(got.starts_with(b"HTTP/1.1 200") && got.ends_with(b"hi"), "{}", String::from_utf8_lossy(&got));
        assert!(closed, "the idle deadline closes a kept-alive connection too");
        let (got, closed) = exchange(addr, &connector, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        assert!(closed, "still open");
        assert!(got.is_empty() || got.starts_with(b"HTTP/1.1 4"), "an HTTP/2 answer: {got:?}");
    }

    /// A source holding its share has further connections closed at once,
    /// unfinished handshakes counted; another source is served meanwhile.
    #[tokio::test]
    async fn a_source_past_its_share_is_closed_at_once_and_another_is_served() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let (addr, connector) = tiny_server_with(dir.path(), 2).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
            held.push(tcp);
        }
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), third.read(&mut byte)).await;
        assert!(matches!(closed, Ok(Ok(0) | Err(_))), "a third connection from one source: {closed:?}");

        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("another source is served");
        tls.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi").await.unwrap();
        let mut got = vec![0u8; 512];
        let n = tls.read(&mut got).await.unwrap();
        assert!(got[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got[..n]));
    }
}
