//! Certificates for C2W: both ends present one and check the other's against
//! a trust bundle. An operator gives key, full chain and bundle
//! (`webbridge3 c2w certs|trust`, `callbridge trust c2w`); without them the
//! embedded default is a local CA made once in the data directory, which
//! issues the web bridge's and the call bridge's certificates and is each
//! side's trust bundle — so one process links to itself with no
//! configuration, and an edge web bridge can be given the same CA file.
//!
//! Only the ring provider is used (see ARCHITECTURE.md: a second one compiled
//! in makes rustls's default builders panic).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Why a C2W TLS configuration could not be made.
#[derive(Debug, Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A PEM file held nothing usable.
    #[error("{0}: no usable {1} in PEM file")]
    Pem(PathBuf, &'static str),
    /// Generating the local CA or a certificate failed.
    #[error("certificate generation: {0}")]
    Generate(String),
    /// rustls refused the key, chain or bundle.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The trust bundle could not make a client-certificate verifier.
    #[error("trust bundle: {0}")]
    Verifier(String),
}

/// The files of the local CA and what it issued, in the data directory.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// The CA certificate: the default trust bundle of both sides.
    pub ca_cert: PathBuf,
    /// The web bridge's C2W certificate.
    pub web_bridge_cert: PathBuf,
    /// Its key.
    pub web_bridge_key: PathBuf,
    /// The call bridge's C2W (client) certificate.
    pub call_bridge_cert: PathBuf,
    /// Its key.
    pub call_bridge_key: PathBuf,
}

const CA_NAME: &str = "Confero local C2W CA";

impl LocalCa {
    /// The local CA in `dir`, made (with both certificates) if any file is
    /// missing. Made all at once: a CA re-made alone would no longer sign
    /// what the old bundle trusts.
    pub fn ensure(dir: &Path) -> Result<LocalCa, PkiError> {
        let ca = LocalCa {
            ca_cert: dir.join("c2w-ca-cert.pem"),
            web_bridge_cert: dir.join("c2w-webbridge-cert.pem"),
            web_bridge_key: dir.join("c2w-webbridge-key.pem"),
            call_bridge_cert: dir.join("c2w-callbridge-cert.pem"),
            call_bridge_key: dir.join("c2w-callbridge-key.pem"),
        };
        let files = [&ca.ca_cert, &ca.web_bridge_cert, &ca.web_bridge_key, &ca.call_bridge_cert, &ca.call_bridge_key];
        if files.iter().all(|f| f.exists()) {
            return Ok(ca);
        }
        std::fs::create_dir_all(dir).map_err(|e| PkiError::Io(dir.to_path_buf(), e))?;
        let generate = |e: rcgen::Error| PkiError::Generate(e.to_string());
        let ca_key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, CA_NAME);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = params.self_signed(&ca_key).map_err(generate)?;
        for (name, cert_path, key_path) in [
            ("Confero web bridge", &ca.web_bridge_cert, &ca.web_bridge_key),
            ("Confero call bridge", &ca.call_bridge_cert, &ca.call_bridge_key),
        ] {
            let key = KeyPair::generate().map_err(generate)?;
            let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
            let mut leaf = CertificateParams::new(names).map_err(generate)?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, name);
            leaf.distinguished_name = dn;
            leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
            leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(generate)?;
            write_private(key_path, key.serialize_pem().as_bytes())?;
            // The full chain, as `c2w certs` expects.
            let chain = format!("{}{}", cert.pem(), ca_cert.pem());
            std::fs::write(cert_path, chain).map_err(|e| PkiError::Io(cert_path.to_path_buf(), e))?;
        }
        // Kept so an operator can issue more from it with their own tools.
        write_private(&dir.join("c2w-ca-key.pem"), ca_key.serialize_pem().as_bytes())?;
        std::fs::write(&ca.ca_cert, ca_cert.pem()).map_err(|e| PkiError::Io(ca.ca_cert.clone(), e))?;
        tracing::info!(ca = %ca.ca_cert.display(), "made a local C2W certificate authority");
        Ok(ca)
    }
}

// PEM files are read and keys written as the API's TLS does.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    Ok(confero_https::tls::write_private(path, bytes)?)
}

/// Certificates of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    Ok(confero_https::tls::read_certs(path)?)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    Ok(confero_https::tls::read_key(path)?)
}

impl From<confero_https::tls::TlsError> for PkiError {
    fn from(e: confero_https::tls::TlsError) -> Self {
        use confero_https::tls::TlsError;
        match e {
            TlsError::Io(path, e) => PkiError::Io(path, e),
            TlsError::Pem(path, what) => PkiError::Pem(path, what),
            TlsError::Generate(e) => PkiError::Generate(e),
            TlsError::Rustls(e) => PkiError::Rustls(e),
        }
    }
}

fn roots(bundle: &Path) -> Result<Arc<rustls::RootCertStore>, PkiError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(bundle)? {
        roots.add(cert)?;
    }
    Ok(Arc::new(roots))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A C2W identity: key, full chain, and the bundle the other side's
/// certificate must chain to.
#[derive(Debug, Clone)]
pub struct C2wIdentity {
    /// PEM key.
    pub key: PathBuf,
    /// PEM full chain.
    pub cert: PathBuf,
    /// PEM trust bundle.
    pub trust: PathBuf,
}

/// The web bridge's C2W listener: our chain, and a client certificate
/// required that chains to the bundle.
pub fn server_config(id: &C2wIdentity) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots(&id.trust)?, provider())
        .build()
        .map_err(|e| PkiError::Verifier(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(&id.cert)?, read_key(&id.key)?)?;
    Ok(Arc::new(config))
}

/// The call bridge's side: our chain as the client certificate, and the web
/// bridge's certificate checked against the bundle (and its URL's host).
pub fn client_config(id: &C2wIdentity) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(&id.trust)?)
        .with_client_auth_cert(read_certs(&id.cert)?, read_key(&id.key)?)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_ca_is_made_once_and_makes_both_configs() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::ensure(dir.path()).unwrap();
        let first = std::fs::read(&ca.ca_cert).unwrap();
        let again = LocalCa::ensure(dir.path()).unwrap();
        assert_eq!(std::fs::read(&again.ca_cert).unwrap(), first);
        let web = C2wIdentity { key: ca.web_bridge_key, cert: ca.web_bridge_cert, trust: ca.ca_cert.clone() };
        let call = C2wIdentity { key: ca.call_bridge_key, cert: ca.call_bridge_cert, trust: ca.ca_cert };
        server_config(&web).unwrap();
        client_config(&call).unwrap();
    }
}
