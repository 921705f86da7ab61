//! The tokio shell of the call bridge's component link: it reads
//! `system/configuration/xmpp`, finds the server (the override, else the SRV
//! targets of `_xmpp-component._tcp.<domain>`, else `<domain>:5223`),
//! connects over TLS checking the server's certificate for the domain and
//! the host it connected to, drives a [`ComponentLink`], and keeps the link
//! up: whitespace keepalives, reconnection with backoff, and a fresh
//! connection at once when the configuration changes. Its state goes to
//! [`XmppLink`] for `system/status`, and an alarm is raised while it is down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use confero_api::alarms::Alarms;
use confero_api::xmpp_link::{
    XmppLink, XmppStatus, XMPP_ALARM_SUBJECT, XMPP_AUTHENTICATION_FAILURE, XMPP_CONNECTION_FAILURE,
};
use confero_store::schema::Kind;
use confero_store::Store;

use crate::component::{ComponentLink, LinkError, LinkEvent};
use crate::element::Element;
use crate::NS_COMPONENT;

/// The port a call bridge connects to when nothing says otherwise (CMS's).
pub const DEFAULT_COMPONENT_PORT: u16 = 5223;
/// How often the configuration is read again.
const RESCAN: Duration = Duration::from_secs(1);
/// First and longest wait between attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));
/// How long a connection, TLS and the handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A whitespace keepalive after this long without sending.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Stanzas being answered at once; more are refused `resource-constraint`,
/// so a server cannot queue unbounded blocking work here.
const MAX_IN_FLIGHT: usize = 64;

/// `system/configuration/xmpp`, when complete enough to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentConfig {
    /// `uniqueName`: the component's first label.
    pub unique_name: String,
    /// `domain`: the XMPP domain.
    pub domain: String,
    /// `sharedSecret`.
    pub secret: String,
    /// `serverAddressOverride`: `host` or `host:port`.
    pub server_override: Option<String>,
}

impl ComponentConfig {
    /// The configuration in the store, if it has a name, a domain and a secret.
    pub fn from_store(store: &dyn Store) -> Option<ComponentConfig> {
        let o = store.singleton(Kind::XmppConfiguration);
        let field = |n: &str| o.get(n).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        Some(ComponentConfig {
            unique_name: field("uniqueName")?,
            domain: field("domain")?.to_ascii_lowercase(),
            secret: field("sharedSecret")?,
            server_override: field("serverAddressOverride"),
        })
    }

    /// The component's JID, `<uniqueName>.<domain>`, as CMS registers it.
    pub fn jid(&self) -> String {
        format!("{}.{}", self.unique_name.to_ascii_lowercase(), self.domain)
    }
}

/// Answers what the server sends the component. Called on the blocking
/// pool: it may read the store or check a password.
pub trait StanzaHandler: Send + Sync {
    /// The stanzas to send back for `stanza` (none for most messages).
    fn handle(&self, config: &ComponentConfig, stanza: &Element) -> Vec<Element>;
}

/// Which servers to trust, and whether to use TLS at all.
#[derive(Clone)]
pub enum Transport {
    /// TLS from the first byte, the certificate checked against these roots
    /// for the domain and the host connected to.
    Tls(Arc<rustls::RootCertStore>),
    /// Plain TCP: only for a third-party server whose component port has no
    /// TLS, on a network the operator trusts.
    Plain,
}

/// The call bridge's component client.
#[derive(Clone)]
pub struct ComponentClient {
    /// Where `system/configuration/xmpp` lives.
    pub store: Arc<dyn Store>,
    /// Where alarms go.
    pub alarms: Arc<Alarms>,
    /// Where the link's state goes.
    pub status: Arc<XmppLink>,
    /// TLS or not.
    pub transport: Transport,
    /// A DNS server to ask instead of the system's (tests, split DNS).
    pub dns_server: Option<SocketAddr>,
    /// What answers the server's stanzas.
    pub handler: Arc<dyn StanzaHandler>,
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    Unreachable(String),
    Certificate(String),
    Refused(String),
}

impl Failure {
    fn status(&self) -> XmppStatus {
        match self {
            Failure::Unreachable(_) => XmppStatus::Unreachable,
            Failure::Certificate(_) => XmppStatus::CertificateFailure,
            Failure::Refused(_) => XmppStatus::AuthenticationFailure,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(s) => write!(f, "unreachable: {s}"),
            Failure::Certificate(s) => write!(f, "certificate refused: {s}"),
            Failure::Refused(s) => write!(f, "component refused: {s}"),
        }
    }
}

impl ComponentClient {
    /// Keeps the link up until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = BACKOFF.0;
        loop {
            let Some(config) = ComponentConfig::from_store(&*self.store) else {
                self.set(XmppStatus::NotConfigured);
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(RESCAN) => continue,
                }
            };
            if self.status.get() == XmppStatus::NotConfigured {
                self.set(XmppStatus::Connecting);
            }
            let outcome = tokio::select! {
                _ = &mut shutdown => return,
                _ = self.changed(&config) => None,
                outcome = self.attempt(&config) => Some(outcome),
            };
            match outcome {
                None => {
                    tracing::info!("XMPP: configuration changed; reconnecting");
                    self.set(XmppStatus::Connecting);
                    backoff = BACKOFF.0;
                    continue;
                }
                Some(Ok(())) => {
                    tracing::info!("XMPP: the link to the server closed; reconnecting");
                    self.set(XmppStatus::Connecting);
                    backoff = BACKOFF.0;
                }
                Some(Err(failure)) => {
                    tracing::warn!("XMPP: component {}: {failure}", config.jid());
                    self.set(failure.status());
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.changed(&config) => backoff = BACKOFF.0,
                _ = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(BACKOFF.1),
            }
        }
    }

    /// Records a status and raises or clears the alarms to match.
    fn set(&self, status: XmppStatus) {
        self.status.set(status);
        let (connection, authentication) = match status {
            XmppStatus::NotConfigured | XmppStatus::Connected | XmppStatus::Connecting => (false, false),
            XmppStatus::AuthenticationFailure => (false, true),
            XmppStatus::Unreachable | XmppStatus::CertificateFailure => (true, false),
        };
        let reason = Some(status.as_str());
        for (kind, on) in [(XMPP_CONNECTION_FAILURE, connection), (XMPP_AUTHENTICATION_FAILURE, authentication)] {
            if on {
                self.alarms.raise(kind, XMPP_ALARM_SUBJECT, reason);
            } else {
                self.alarms.clear(kind, XMPP_ALARM_SUBJECT);
            }
        }
    }

    /// Resolves once the configuration is no longer `config`.
    async fn changed(&self, config: &ComponentConfig) {
        loop {
            tokio::time::sleep(RESCAN).await;
            if ComponentConfig::from_store(&*self.store).as_ref() != Some(config) {
                return;
            }
        }
    }

    /// One attempt: each target in turn until one takes the handshake; then
    /// the link runs until it ends (`Ok`).
    async fn attempt(&self, config: &ComponentConfig) -> Result<(), Failure> {
        let targets = self.targets(config).await;
        let mut last = Failure::Unreachable(format!("no server for {}", config.domain));
        for (host, port) in targets {
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(config, &host, port))
                .await
                .unwrap_or_else(|_| Err(Failure::Unreachable(format!("{host}:{port}: timed out"))));
            match connected {
                Ok(Connected::Tls(stream, link)) => return self.serve(config, &host, port, stream, link).await,
                Ok(Connected::Plain(stream, link)) => return self.serve(config, &host, port, stream, link).await,
                // Another server would refuse the same secret.
                Err(refused @ Failure::Refused(_)) => return Err(refused),
                Err(other) => {
                    tracing::info!("XMPP: {host}:{port}: {other}");
                    last = other;
                }
            }
        }
        Err(last)
    }

    /// Where to connect, in order: the override; else the SRV targets
    /// (priority ascending, then weight descending); else the domain.
    async fn targets(&self, config: &ComponentConfig) -> Vec<(String, u16)> {
        if let Some(o) = &config.server_override {
            return vec![split_host_port(o)];
        }
        let fallback = vec![(config.domain.clone(), DEFAULT_COMPONENT_PORT)];
        let Some(resolver) = self.resolver() else { return fallback };
        let name = format!("_xmpp-component._tcp.{}.", config.domain);
        match resolver.srv_lookup(name.as_str()).await {
            Ok(answer) => {
                let mut records: Vec<_> = answer.iter().cloned().collect();
                records.sort_by_key(|r| (r.priority(), std::cmp::Reverse(r.weight())));
                let targets: Vec<(String, u16)> = records
                    .iter()
                    .map(|r| (r.target().to_ascii().trim_end_matches('.').to_string(), r.port()))
                    // RFC 2782: a lone "." means there is no such service.
                    .filter(|(host, _)| !host.is_empty())
                    .collect();
                tracing::debug!("XMPP: {name} names {targets:?}");
                if targets.is_empty() {
                    fallback
                } else {
                    targets
                }
            }
            Err(e) => {
                tracing::debug!("XMPP: no SRV record {name} ({e}); trying {}:{DEFAULT_COMPONENT_PORT}", config.domain);
                fallback
            }
        }
    }

    fn resolver(&self) -> Option<hickory_resolver::TokioResolver> {
        use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
        use hickory_resolver::name_server::TokioConnectionProvider;
        match self.dns_server {
            Some(server) => {
                let group = NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true);
                let config = ResolverConfig::from_parts(None, vec![], group);
                Some(
                    hickory_resolver::Resolver::builder_with_config(config, TokioConnectionProvider::default()).build(),
                )
            }
            None => match hickory_resolver::Resolver::builder_tokio() {
                Ok(b) => Some(b.build()),
                Err(e) => {
                    tracing::debug!("XMPP: no system resolver configuration ({e})");
                    None
                }
            },
        }
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found: Vec<SocketAddr> = match (self.dns_server, self.resolver()) {
            (Some(_), Some(r)) => r
                .lookup_ip(host)
                .await
                .map_err(|e| Failure::Unreachable(format!("{host}: {e}")))?
                .iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            // The system's way, hosts file included (localhost).
            _ => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| Failure::Unreachable(format!("{host}: {e}")))?
                .collect(),
        };
        if found.is_empty() {
            return Err(Failure::Unreachable(format!("{host}: no address")));
        }
        Ok(found)
    }

    async fn connect(&self, config: &ComponentConfig, host: &str, port: u16) -> Result<Connected, Failure> {
        let mut tcp = None;
        let mut error = String::new();
        for addr in self.addresses(host, port).await? {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => error = format!("{addr}: {e}"),
            }
        }
        let tcp = tcp.ok_or(Failure::Unreachable(error))?;
        let _ = tcp.set_nodelay(true);
        let link = ComponentLink::new(&config.jid(), &config.secret);
        match &self.transport {
            Transport::Plain => {
                let (tcp, link) = handshake(tcp, link).await?;
                Ok(Connected::Plain(tcp, link))
            }
            Transport::Tls(roots) => {
                let tls = client_config(roots.clone(), &config.domain, host).map_err(Failure::Certificate)?;
                let name = ServerName::try_from(config.domain.clone())
                    .map_err(|_| Failure::Certificate(format!("{:?} is not a domain name", config.domain)))?;
                let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| {
                    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(rustls::Error::InvalidCertificate(c)) => Failure::Certificate(format!("{c:?}")),
                        _ => Failure::Unreachable(format!("TLS: {e}")),
                    }
                })?;
                let (stream, link) = handshake(stream, link).await?;
                Ok(Connected::Tls(Box::new(stream), link))
            }
        }
    }

    /// The link once connected: stanzas both ways, keepalives, until it ends.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        config: &ComponentConfig,
        host: &str,
        port: u16,
        stream: S,
        mut link: ComponentLink,
    ) -> Result<(), Failure> {
        tracing::info!("XMPP: component {} connected to {host}:{port}", config.jid());
        self.set(XmppStatus::Connected);
        let (mut reader, mut writer) = tokio::io::split(stream);
        let (replies_tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<Vec<Element>>();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        let mut buf = vec![0u8; 16 * 1024];
        let mut idle = Box::pin(tokio::time::sleep(KEEPALIVE));
        loop {
            tokio::select! {
                read = reader.read(&mut buf) => {
                    let n = match read {
                        Ok(0) | Err(_) => return Ok(()),
                        Ok(n) => n,
                    };
                    if let Err(e) = link.handle_input(&buf[..n]) {
                        tracing::info!("XMPP: link ended: {e}");
                        return Ok(());
                    }
                    while let Some(event) = link.poll_event() {
                        let LinkEvent::Stanza(stanza) = event else { continue };
                        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                            if let Some(e) = error_reply(&stanza, "wait", "resource-constraint") {
                                link.send(&e);
                            }
                            continue;
                        };
                        let (handler, config, tx) = (self.handler.clone(), config.clone(), replies_tx.clone());
                        tokio::task::spawn_blocking(move || {
                            let _ = tx.send(handler.handle(&config, &stanza));
                            drop(permit);
                        });
                    }
                }
                Some(out) = replies.recv() => {
                    for stanza in &out {
                        link.send(stanza);
                    }
                }
                _ = &mut idle => link.keepalive(),
            }
            let mut wrote = false;
            while let Some(bytes) = link.poll_transmit() {
                if writer.write_all(&bytes).await.is_err() {
                    return Ok(());
                }
                wrote = true;
            }
            if wrote {
                if writer.flush().await.is_err() {
                    return Ok(());
                }
                idle.as_mut().reset(tokio::time::Instant::now() + KEEPALIVE);
            }
        }
    }
}

enum Connected {
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>, ComponentLink),
    Plain(tokio::net::TcpStream, ComponentLink),
}

/// Sends the stream header and the handshake; `Ok` once the server accepts.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut link: ComponentLink,
) -> Result<(S, ComponentLink), Failure> {
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(bytes) = link.poll_transmit() {
            stream.write_all(&bytes).await.map_err(|e| Failure::Unreachable(e.to_string()))?;
        }
        stream.flush().await.map_err(|e| Failure::Unreachable(e.to_string()))?;
        if link.is_connected() {
            while let Some(event) = link.poll_event() {
                if event != LinkEvent::Connected {
                    tracing::debug!("XMPP: a stanza before the handshake's answer, dropped");
                }
            }
            return Ok((stream, link));
        }
        let n = stream.read(&mut buf).await.map_err(|e| Failure::Unreachable(e.to_string()))?;
        if n == 0 {
            return Err(Failure::Unreachable("the server closed the connection".into()));
        }
        link.handle_input(&buf[..n]).map_err(|e| match e {
            LinkError::Refused(c) => Failure::Refused(c),
            other => Failure::Unreachable(other.to_string()),
        })?;
    }
}

/// A `host` or `host:port` (`[v6]:port`), the port defaulting to 5223.
pub fn split_host_port(value: &str) -> (String, u16) {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_COMPONENT_PORT);
            return (host.to_string(), port);
        }
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host.to_string(), port),
            Err(_) => (value.to_string(), DEFAULT_COMPONENT_PORT),
        },
        _ => (value.to_string(), DEFAULT_COMPONENT_PORT),
    }
}

/// An error reply to an IQ (`None` for anything else, which gets none).
pub fn error_reply(stanza: &Element, kind: &str, condition: &str) -> Option<Element> {
    if stanza.name != "iq" || !matches!(stanza.get_attr("type"), Some("get" | "set")) {
        return None;
    }
    let mut reply = Element::new("iq", NS_COMPONENT).attr("type", "error");
    for (ours, theirs) in [("id", "id"), ("to", "from"), ("from", "to")] {
        if let Some(v) = stanza.get_attr(theirs) {
            reply.set_attr(ours, v);
        }
    }
    Some(
        reply.child(
            Element::new("error", NS_COMPONENT)
                .attr("type", kind)
                .child(Element::new(condition, "urn:ietf:params:xml:ns:xmpp-stanzas")),
        ),
    )
}

/// A client configuration whose verifier checks the certificate against
/// `roots` for the XMPP domain and also for `host`, the server's own name,
/// when that is a different name (the seed: both must be in the SANs).
fn client_config(
    roots: Arc<rustls::RootCertStore>,
    domain: &str,
    host: &str,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("no usable trust roots: {e}"))?;
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(_) => None,
        Err(_) if host.eq_ignore_ascii_case(domain) => None,
        Err(_) => ServerName::try_from(host.to_string()).ok(),
    };
    let verifier = Arc::new(DomainAndHost { inner, host });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// WebPKI verification for the domain, then again for the host's name.
#[derive(Debug)]
struct DomainAndHost {
    inner: Arc<WebPkiServerVerifier>,
    host: Option<ServerName<'static>>,
}

impl ServerCertVerifier for DomainAndHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        if let Some(host) = &self.host {
            self.inner.verify_server_cert(end_entity, intermediates, host, ocsp, now)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The roots a call bridge trusts by default: the web PKI's.
pub fn web_pki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_overrides() {
        assert_eq!(split_host_port("xmpp.example.com"), ("xmpp.example.com".into(), 5223));
        assert_eq!(split_host_port("127.0.0.1:5347"), ("127.0.0.1".into(), 5347));
        assert_eq!(split_host_port("[::1]:6000"), ("::1".into(), 6000));
        assert_eq!(split_host_port("::1"), ("::1".into(), 5223));
    }

    #[test]
    fn iq_errors_answer_the_sender() {
        let iq = Element::new("iq", NS_COMPONENT)
            .attr("type", "get")
            .attr("id", "7")
            .attr("from", "a@x/r")
            .attr("to", "cb1.x");
        let e = error_reply(&iq, "cancel", "service-unavailable").expect("reply");
        assert_eq!((e.get_attr("to"), e.get_attr("from"), e.get_attr("id")), (Some("a@x/r"), Some("cb1.x"), Some("7")));
        assert!(error_reply(&Element::new("message", NS_COMPONENT), "cancel", "x").is_none());
    }
}
