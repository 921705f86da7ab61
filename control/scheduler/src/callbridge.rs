//! The scheduler as a client of the local call bridge's API, over loopback,
//! with credentials of its own (an API user like any other), as CMS's
//! scheduler is: temporary spaces and their access methods are made,
//! changed and deleted with the same requests an admin script would send,
//! so they go through the API's validation and uniqueness checks.
//!
//! The API's certificate is pinned (the one it serves, read from its chain
//! file), not checked against a name: on loopback the name is meaningless,
//! and a configured certificate rarely names 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use uuid::Uuid;

/// Why a request to the call bridge failed.
#[derive(Debug, thiserror::Error)]
pub enum CallBridgeError {
    /// It could not be reached, or the exchange broke off.
    #[error("the call bridge's API could not be reached: {0}")]
    Unreachable(String),
    /// It answered with a failure.
    #[error("the call bridge's API answered {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its `failureDetails`.
        body: String,
    },
}

/// Accepts exactly one certificate: the API's own.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the call bridge's API certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A space made for a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The id at the end of `Location`, for a create.
    pub created: Option<Uuid>,
    /// The body.
    pub body: String,
}

/// The API client.
pub struct CallBridge {
    addr: SocketAddr,
    connector: tokio_rustls::TlsConnector,
    authorization: String,
    /// `timedLogging api`.
    verbose: std::sync::Arc<crate::timed_logging::TimedLogging>,
}

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl CallBridge {
    /// A client of the API at `addr` serving `cert` (its end-entity
    /// certificate), as `user` with `password`.
    pub fn new(addr: SocketAddr, cert: CertificateDer<'static>, user: &str, password: &str) -> CallBridge {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Pinned { cert, provider: provider.clone() });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
            .unwrap_or_else(|_| {
                // The ring provider supports the default versions; unreachable in practice.
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        CallBridge {
            addr,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            authorization: format!("Basic {token}"),
            verbose: Arc::new(crate::timed_logging::TimedLogging::off()),
        }
    }

    /// Logs each request and its status while `timedLogging api` is on.
    pub fn with_timed_logging(mut self, verbose: Arc<crate::timed_logging::TimedLogging>) -> CallBridge {
        self.verbose = verbose;
        self
    }

    /// Sends one request (a form body for POST and PUT) and reads the answer.
    pub async fn request(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Result<Answer, CallBridgeError> {
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, form))
            .await
            .unwrap_or_else(|_| Err(CallBridgeError::Unreachable("timed out".into())));
        if self.verbose.on(crate::timed_logging::Part::Api) {
            // Field names only: values may be passcodes.
            let fields: Vec<&str> = form.iter().map(|(k, _)| *k).collect();
            let outcome = match &answer {
                Ok(a) => a.status.to_string(),
                Err(CallBridgeError::Refused { status, .. }) => status.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::info!(target: "scheduler::timedLogging::api", "{method} {path} {fields:?} -> {outcome}");
        }
        answer
    }

    async fn exchange(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Result<Answer, CallBridgeError> {
        let unreachable = |e: &dyn std::fmt::Display| CallBridgeError::Unreachable(e.to_string());
        let tcp = tokio::net::TcpStream::connect(self.addr).await.map_err(|e| unreachable(&e))?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self.connector.connect(name, tcp).await.map_err(|e| unreachable(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let body = form_body(form);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::AUTHORIZATION, &self.authorization)
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unreachable(&e))?;
        let response = sender.send_request(request).await.map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let created = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .and_then(|id| Uuid::parse_str(id).ok());
        let bytes = response.into_body().collect().await.map_err(|e| unreachable(&e))?.to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if status >= 400 {
            return Err(CallBridgeError::Refused { status, body });
        }
        Ok(Answer { status, created, body })
    }
}

/// `application/x-www-form-urlencoded`.
fn form_body(form: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in form {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_percent_encoded() {
        assert_eq!(
            super::form_body(&[("name", "Weekly sync & más"), ("uri", "1.guest")]),
            "name=Weekly%20sync%20%26%20m%C3%A1s&uri=1.guest"
        );
    }
}
