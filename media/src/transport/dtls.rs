//! DTLS-SRTP (RFC 5763/5764) for browser endpoints: the handshake runs in
//! `dimpl` (sans-IO DTLS 1.2, RustCrypto backend — so no second rustls
//! crypto provider beside ring; see docs/webrtc.md), the peer's certificate
//! is checked against the `a=fingerprint` of its offer, and the exported
//! keying material keys our own SRTP contexts, exactly as SDES keys do.
//!
//! One [`DtlsIdentity`] (a self-signed ECDSA P-256 certificate) serves every
//! endpoint of the runtime; its fingerprint goes in every answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dimpl::{Config, Dtls, DtlsCertificate, Output};
use sha2::{Digest, Sha256};

use crate::engine::SrtpKeys;
use crate::srtp::SrtpProfile;

/// A handshake not finished by then is abandoned: a browser that never
/// completes DTLS costs a bounded amount.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why DTLS failed for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    /// The certificate could not be made.
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// The handshake failed (dimpl's errors are all fatal).
    #[error("DTLS handshake: {0}")]
    Handshake(String),
    /// The peer's certificate is not the one its SDP fingerprint names.
    #[error("DTLS peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// The peer negotiated no SRTP profile we have.
    #[error("no usable DTLS-SRTP profile")]
    NoSrtpProfile,
    /// No handshake within [`HANDSHAKE_TIMEOUT`].
    #[error("DTLS handshake timed out")]
    Timeout,
}

/// A certificate fingerprint (`a=fingerprint:sha-256 AB:CD:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function's SDP name, lower case (`sha-256`).
    pub algorithm: String,
    /// The digest.
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// Parses an SDP value: `sha-256 AB:CD:...`. Only SHA-256 is taken
    /// (every browser sends it; SHA-1 fingerprints are too weak).
    pub fn parse(value: &str) -> Option<Self> {
        let (algorithm, hex) = value.trim().split_once(' ')?;
        let algorithm = algorithm.to_ascii_lowercase();
        if algorithm != "sha-256" {
            return None;
        }
        let digest: Option<Vec<u8>> = hex.trim().split(':').map(|b| u8::from_str_radix(b, 16).ok()).collect();
        let digest = digest.filter(|d| d.len() == 32)?;
        Some(Self { algorithm, digest })
    }

    /// The SHA-256 fingerprint of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        Self { algorithm: "sha-256".into(), digest: Sha256::digest(der).to_vec() }
    }

    /// The SDP value.
    pub fn to_sdp(&self) -> String {
        let hex: Vec<String> = self.digest.iter().map(|b| format!("{b:02X}")).collect();
        format!("{} {}", self.algorithm, hex.join(":"))
    }
}

/// The runtime's DTLS certificate and its fingerprint.
#[derive(Clone)]
pub struct DtlsIdentity {
    certificate: DtlsCertificate,
    fingerprint: Fingerprint,
    config: Arc<Config>,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity").field("fingerprint", &self.fingerprint.to_sdp()).finish()
    }
}

impl DtlsIdentity {
    /// A fresh self-signed ECDSA P-256 certificate, valid 30 days (the
    /// runtime makes a new one each start; browsers pin it per call by
    /// fingerprint, never by name or chain).
    pub fn generate() -> Result<Self, DtlsError> {
        let err = |e: rcgen::Error| DtlsError::Certificate(e.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "confero");
        let now = std::time::SystemTime::now();
        params.not_before = (now - Duration::from_secs(86_400)).into();
        params.not_after = (now + Duration::from_secs(30 * 86_400)).into();
        // A random serial: Firefox refuses two certificates with the same
        // issuer and serial.
        let serial: [u8; 16] = rand::random();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let cert = params.self_signed(&key).map_err(err)?;
        let certificate = DtlsCertificate { certificate: cert.der().to_vec(), private_key: key.serialize_der() };
        let fingerprint = Fingerprint::of_certificate(&certificate.certificate);
        let config = Config::builder()
            // Browsers send their certificate; its fingerprint is the
            // only thing that ties the DTLS peer to the signalled one.
            .require_client_certificate(true)
            .mtu(1200)
            .handshake_timeout(HANDSHAKE_TIMEOUT)
            .build()
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        Ok(Self { certificate, fingerprint, config: Arc::new(config) })
    }

    /// The fingerprint every answer carries.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// What a DTLS session asks of its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake finished and the fingerprint matched: key SRTP with
    /// these (inbound, outbound), the same for every stream of the bundle.
    Keys {
        /// What the browser protects with (we unprotect).
        inbound: SrtpKeys,
        /// What we protect with.
        outbound: SrtpKeys,
    },
    /// The session failed; the endpoint has no media.
    Failed(DtlsError),
}

/// One endpoint's DTLS session.
pub struct DtlsSession {
    dtls: Dtls,
    remote: Fingerprint,
    /// We are the DTLS client (`a=setup:active` in our answer).
    active: bool,
    started: Instant,
    connected: bool,
    peer_ok: bool,
    failed: bool,
    next_timeout: Option<Instant>,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsSession").field("active", &self.active).field("connected", &self.connected).finish()
    }
}

impl DtlsSession {
    /// A session against a peer whose certificate must match `remote`;
    /// `active`: we start the handshake (the browser answered `passive`).
    pub fn new(identity: &DtlsIdentity, remote: Fingerprint, active: bool, now: Instant) -> Self {
        let mut dtls = Dtls::new_12(identity.config.clone(), identity.certificate.clone(), now);
        dtls.set_active(active);
        // dimpl sets up its handshake state (the server's random) on the
        // first timeout; a server must have had it before the ClientHello.
        // A client's first timeout sends its ClientHello, so that one waits
        // until ICE has found the browser.
        let failed = !active && dtls.handle_timeout(now).is_err();
        let mut session = Self {
            dtls,
            remote,
            active,
            started: now,
            connected: false,
            peer_ok: false,
            failed,
            next_timeout: if active { Some(now) } else { None },
            buffer: vec![0; 2048],
        };
        if !active && !failed {
            session.drain(now, &mut |_| {});
        }
        session
    }

    /// Whether keys have been handed out.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// When [`DtlsSession::handle_timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.failed {
            return None;
        }
        if !self.connected {
            let deadline = self.started + HANDSHAKE_TIMEOUT;
            return Some(self.next_timeout.map_or(deadline, |t| t.min(deadline)));
        }
        self.next_timeout
    }

    /// A DTLS datagram from the peer; `send` gets each datagram to send back.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8], send: &mut dyn FnMut(&[u8])) -> Option<DtlsEvent> {
        if self.failed {
            return None;
        }
        if let Err(e) = guarded(|| self.dtls.handle_packet(packet)) {
            return self.fail(e);
        }
        self.drain(now, send)
    }

    /// Retransmissions and the handshake deadline.
    pub fn handle_timeout(&mut self, now: Instant, send: &mut dyn FnMut(&[u8])) -> Option<DtlsEvent> {
        if self.failed {
            return None;
        }
        if !self.connected && now >= self.started + HANDSHAKE_TIMEOUT {
            return self.fail(DtlsError::Timeout);
        }
        if self.next_timeout.is_some_and(|t| now < t) {
            return None;
        }
        if let Err(e) = guarded(|| self.dtls.handle_timeout(now)) {
            return self.fail(e);
        }
        self.drain(now, send)
    }

    fn fail(&mut self, error: DtlsError) -> Option<DtlsEvent> {
        self.failed = true;
        Some(DtlsEvent::Failed(error))
    }

    fn drain(&mut self, _now: Instant, send: &mut dyn FnMut(&[u8])) -> Option<DtlsEvent> {
        let mut event = None;
        loop {
            let (dtls, buffer) = (&mut self.dtls, &mut self.buffer);
            let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match dtls.poll_output(buffer) {
                Output::Packet(p) => Polled::Packet(p.to_vec()),
                Output::BufferTooSmall { needed } => Polled::Grow(needed),
                Output::Timeout(t) => Polled::Timeout(t),
                Output::PeerCert(der) => Polled::PeerCert(Fingerprint::of_certificate(der)),
                Output::KeyingMaterial(material, profile) => Polled::Keys(material.to_vec(), profile),
                Output::CloseNotify => Polled::Closed,
                _ => Polled::Other,
            }));
            let Ok(output) = output else { return self.fail(DtlsError::Handshake(PANICKED.into())) };
            match output {
                Polled::Packet(p) => send(&p),
                Polled::Grow(needed) => self.buffer.resize(needed, 0),
                Polled::Timeout(t) => {
                    self.next_timeout = Some(t);
                    break;
                }
                Polled::PeerCert(fingerprint) => {
                    if fingerprint == self.remote {
                        self.peer_ok = true;
                    } else {
                        return self.fail(DtlsError::FingerprintMismatch);
                    }
                }
                Polled::Keys(material, profile) => {
                    if !self.peer_ok {
                        return self.fail(DtlsError::FingerprintMismatch);
                    }
                    match keys(&material, profile, self.active) {
                        Some((inbound, outbound)) => {
                            self.connected = true;
                            event = Some(DtlsEvent::Keys { inbound, outbound });
                        }
                        None => return self.fail(DtlsError::NoSrtpProfile),
                    }
                }
                Polled::Closed => return self.fail(DtlsError::Handshake("peer closed".into())),
                Polled::Other => {}
            }
        }
        event
    }
}

/// What one `poll_output` gave, owned, so that it can leave the
/// `catch_unwind` around the call.
enum Polled {
    Packet(Vec<u8>),
    Grow(usize),
    Timeout(Instant),
    PeerCert(Fingerprint),
    Keys(Vec<u8>, dimpl::SrtpProfile),
    Closed,
    Other,
}

const PANICKED: &str = "the DTLS library panicked on a record (a bug of its own); this session is dropped";

/// Runs a call into dimpl, turning its errors into ours and a panic into
/// a failed session: the fuzzer found records that trip an assertion in
/// dimpl 0.7.6 (a duplicate record of a non-zero epoch before keys), and a
/// guest's crafted record must cost that guest its media, never the media
/// worker every conference on it depends on.
fn guarded(f: impl FnOnce() -> Result<(), dimpl::Error>) -> Result<(), DtlsError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DtlsError::Handshake(e.to_string())),
        Err(_) => Err(DtlsError::Handshake(PANICKED.into())),
    }
}

/// Splits exported keying material (RFC 5764 §4.2: client key, server key,
/// client salt, server salt) into our two directions.
fn keys(material: &[u8], profile: dimpl::SrtpProfile, active: bool) -> Option<(SrtpKeys, SrtpKeys)> {
    let profile = match profile {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => SrtpProfile::AesCm128HmacSha1_80,
        dimpl::SrtpProfile::AEAD_AES_128_GCM => SrtpProfile::AeadAes128Gcm,
        dimpl::SrtpProfile::AEAD_AES_256_GCM => SrtpProfile::AeadAes256Gcm,
        _ => return None,
    };
    let (k, s) = (profile.master_key_len(), profile.master_salt_len());
    if material.len() < 2 * (k + s) {
        return None;
    }
    let client = SrtpKeys { profile, key: material[..k].to_vec(), salt: material[2 * k..2 * k + s].to_vec() };
    let server =
        SrtpKeys { profile, key: material[k..2 * k].to_vec(), salt: material[2 * k + s..2 * (k + s)].to_vec() };
    Some(if active { (server, client) } else { (client, server) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two of our sessions handshake through memory: the fingerprints are
    /// checked, both sides get the same keys crosswise.
    #[test]
    fn client_and_server_agree_on_keys() {
        let now = Instant::now();
        let (a, b) = (DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap());
        let mut client = DtlsSession::new(&a, b.fingerprint().clone(), true, now);
        let mut server = DtlsSession::new(&b, a.fingerprint().clone(), false, now);
        let (mut to_server, mut to_client): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
        let mut client_keys = client.handle_timeout(now, &mut |p| to_server.push(p.to_vec()));
        let mut server_keys = None;
        for _ in 0..20 {
            for p in std::mem::take(&mut to_server) {
                if let Some(e) = server.handle_packet(now, &p, &mut |p| to_client.push(p.to_vec())) {
                    server_keys = Some(e);
                }
            }
            for p in std::mem::take(&mut to_client) {
                if let Some(e) = client.handle_packet(now, &p, &mut |p| to_server.push(p.to_vec())) {
                    client_keys = Some(e);
                }
            }
        }
        let Some(DtlsEvent::Keys { inbound: ci, outbound: co }) = client_keys else {
            panic!("client: {client_keys:?}")
        };
        let Some(DtlsEvent::Keys { inbound: si, outbound: so }) = server_keys else {
            panic!("server: {server_keys:?}")
        };
        assert_eq!(ci, so);
        assert_eq!(co, si);
        assert_ne!(ci.key, co.key);
    }

    #[test]
    fn a_certificate_other_than_the_fingerprint_is_refused() {
        let now = Instant::now();
        let (a, b, c) =
            (DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap());
        // The server expects c's certificate, a connects.
        let mut client = DtlsSession::new(&a, b.fingerprint().clone(), true, now);
        let mut server = DtlsSession::new(&b, c.fingerprint().clone(), false, now);
        let (mut to_server, mut to_client): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
        client.handle_timeout(now, &mut |p| to_server.push(p.to_vec()));
        let mut failed = false;
        for _ in 0..20 {
            for p in std::mem::take(&mut to_server) {
                if let Some(DtlsEvent::Failed(e)) = server.handle_packet(now, &p, &mut |p| to_client.push(p.to_vec())) {
                    assert_eq!(e, DtlsError::FingerprintMismatch);
                    failed = true;
                }
            }
            for p in std::mem::take(&mut to_client) {
                client.handle_packet(now, &p, &mut |p| to_server.push(p.to_vec()));
            }
        }
        assert!(failed);
    }

    /// The fuzzer's find: records that trip an assertion inside dimpl. The
    /// session fails; the caller (the media worker) goes on.
    #[test]
    fn a_record_that_panics_the_dtls_library_fails_only_its_session() {
        let input = include_bytes!("testdata/dimpl-duplicate-epoch.bin");
        let id = DtlsIdentity::generate().unwrap();
        let now = Instant::now();
        let mut session = DtlsSession::new(&id, id.fingerprint().clone(), false, now);
        let mut rest: &[u8] = input;
        let mut failed = false;
        while let Some((&len, tail)) = rest.split_first() {
            let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            if crate::transport::demux(datagram) == crate::transport::Demuxed::Dtls {
                failed |= matches!(session.handle_packet(now, datagram, &mut |_| {}), Some(DtlsEvent::Failed(_)));
            }
        }
        assert!(failed, "the session failed rather than the caller");
        assert!(session.next_timeout().is_none());
    }

    #[test]
    fn fingerprints_parse_and_print() {
        let id = DtlsIdentity::generate().unwrap();
        let sdp = id.fingerprint().to_sdp();
        assert_eq!(Fingerprint::parse(&sdp).as_ref(), Some(id.fingerprint()));
        assert_eq!(Fingerprint::parse("sha-1 AB:CD"), None);
        assert_eq!(Fingerprint::parse("sha-256 zz"), None);
    }
}
