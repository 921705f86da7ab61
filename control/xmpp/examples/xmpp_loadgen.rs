//! The load generator of `scripts/bench-xmpp`: whole client logins against
//! our XMPP server — TCP, STARTTLS, SASL SCRAM-SHA-1 (the credential
//! fetched from the call bridge over its component link), resource binding
//! — as fast as `CONCURRENCY` clients can, then `IDLE` logged-in
//! connections held open and counted. A measuring tool, not product: it
//! trusts any certificate.
//!
//! usage: xmpp_loadgen ADDR DOMAIN USER PASSWORD LOGINS CONCURRENCY IDLE

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use confero_https::scram::{hmac, salted_password, sha1};
use confero_xmpp::element::Element;
use confero_xmpp::stream::{Limits, StreamEvent, StreamReader};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

struct Conn<S> {
    stream: S,
    reader: StreamReader,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Conn { stream, reader: StreamReader::new(Limits::default()), buf: vec![0; 8192] }
    }

    async fn send(&mut self, text: &str) -> Result<(), String> {
        self.stream.write_all(text.as_bytes()).await.map_err(|e| e.to_string())
    }

    async fn open(&mut self, domain: &str) -> Result<Element, String> {
        self.reader.restart();
        self.send(&format!(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
        ))
        .await?;
        self.stanza().await
    }

    /// The next stanza (headers skipped).
    async fn stanza(&mut self) -> Result<Element, String> {
        loop {
            match self.reader.next_event().map_err(|e| e.to_string())? {
                Some(StreamEvent::Stanza(s)) => return Ok(s),
                Some(StreamEvent::Header(_)) => continue,
                Some(StreamEvent::Closed) => return Err("closed".into()),
                None => {}
            }
            let n = self.stream.read(&mut self.buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".into());
            }
            self.reader.feed(&self.buf[..n]);
        }
    }
}

type Session = Conn<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// SaltedPassword by salt and iterations: clients may keep it (RFC 5802
/// §5.1), and without it this generator, not the server, would be measured.
static SALTED: std::sync::Mutex<Option<(String, u32, [u8; 20])>> = std::sync::Mutex::new(None);

fn salted_cached(password: &str, salt: &str, iterations: u32) -> Result<[u8; 20], String> {
    let mut cache = SALTED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((s, i, v)) = cache.as_ref() {
        if s == salt && *i == iterations {
            return Ok(*v);
        }
    }
    let value = salted_password(password, &B64.decode(salt).map_err(|e| e.to_string())?, iterations);
    *cache = Some((salt.to_string(), iterations, value));
    Ok(value)
}

async fn login(
    addr: &str,
    domain: &str,
    user: &str,
    password: &str,
    tls: Arc<rustls::ClientConfig>,
    n: usize,
) -> Result<Session, String> {
    // Fifty connections per loopback source address (127.0.0.1, .2, ...):
    // the server takes at most 64 from one source, as every listener does.
    let source = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(127, 0, 0, 1)) + (n / 50) as u32);
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.bind((source, 0).into()).map_err(|e| e.to_string())?;
    let target: std::net::SocketAddr = addr.parse().map_err(|_| format!("{addr} is not ip:port"))?;
    let tcp = socket.connect(target).await.map_err(|e| e.to_string())?;
    let mut plain = Conn::new(tcp);
    plain.open(domain).await?;
    plain.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await?;
    if plain.stanza().await?.name != "proceed" {
        return Err("no proceed".into());
    }
    let name = ServerName::try_from(domain.to_string()).map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(tls).connect(name, plain.stream).await.map_err(|e| e.to_string())?;
    let mut c = Conn::new(stream);
    c.open(domain).await?;
    let client_nonce = format!("loadgen{n}x{}", rand::random::<u64>());
    let first_bare = format!("n={user},r={client_nonce}");
    c.send(&format!("<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{}</auth>", B64.encode(format!("n,,{first_bare}"))))
        .await?;
    let challenge = c.stanza().await?;
    let server_first = String::from_utf8(B64.decode(challenge.text_content()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let field = |k: &str| server_first.split(',').find_map(|a| a.strip_prefix(k)).unwrap_or_default().to_string();
    let (nonce, salt, iterations) = (field("r="), field("s="), field("i=").parse::<u32>().unwrap_or(0));
    let salted = salted_cached(password, &salt, iterations)?;
    let client_key = hmac(&salted, b"Client Key");
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac(&sha1(&client_key), auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(signature.iter()).map(|(k, s)| k ^ s).collect();
    let response = B64.encode(format!("{without_proof},p={}", B64.encode(proof)));
    c.send(&format!("<response xmlns='{SASL}'>{response}</response>")).await?;
    let answer = c.stanza().await?;
    if answer.name != "success" {
        return Err(format!("login refused: {}", answer.to_xml("jabber:client")));
    }
    c.open(domain).await?;
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await?;
    let bound = c.stanza().await?;
    if bound.get_attr("type") != Some("result") {
        return Err("bind refused".into());
    }
    Ok(c)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        eprintln!("usage: xmpp_loadgen ADDR DOMAIN USER PASSWORD LOGINS CONCURRENCY IDLE");
        std::process::exit(2);
    }
    let (addr, domain, user, password) = (args[1].clone(), args[2].clone(), args[3].clone(), args[4].clone());
    let number = |i: usize| args[i].parse::<usize>().unwrap_or_else(|_| panic!("{} is not a number", args[i]));
    let (logins, concurrency, idle) = (number(5), number(6).max(1), number(7));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    );

    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (addr, domain, user, password, tls) =
            (addr.clone(), domain.clone(), user.clone(), password.clone(), tls.clone());
        let (next, failed) = (next.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= logins {
                    return;
                }
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    login(&addr, &domain, &user, &password, tls.clone(), n),
                )
                .await
                {
                    Ok(Ok(mut c)) => {
                        let _ = c.send("</stream:stream>").await;
                    }
                    Ok(Err(e)) => {
                        if failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3 {
                            eprintln!("login {n} failed: {e}");
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "logins: {} in {elapsed:.2} s = {:.0}/s ({concurrency} at once), {failed} failed",
        logins - failed,
        (logins - failed) as f64 / elapsed
    );

    let mut held = Vec::new();
    let mut refused = 0;
    for n in 0..idle {
        match tokio::time::timeout(Duration::from_secs(30), login(&addr, &domain, &user, &password, tls.clone(), n))
            .await
        {
            Ok(Ok(c)) => held.push(c),
            _ => refused += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Still there: each answers a ping.
    let mut alive = 0;
    for c in held.iter_mut() {
        if c.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>").await.is_ok()
            && tokio::time::timeout(Duration::from_secs(10), c.stanza()).await.is_ok_and(|r| r.is_ok())
        {
            alive += 1;
        }
    }
    println!("idle connections: {alive} of {idle} held and answering ({refused} not logged in)");
}
