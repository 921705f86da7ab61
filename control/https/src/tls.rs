//! TLS for the API port. An operator can give a key and a full-chain
//! certificate (PEM); without them Confero makes a self-signed certificate on
//! first start and keeps it in the data directory, so clients that pin it keep
//! working across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Why the TLS configuration could not be made.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The PEM held no certificate or no private key.
    #[error("{0}: no usable {1} in PEM file")]
    Pem(PathBuf, &'static str),
    /// Generating the self-signed certificate failed.
    #[error("certificate generation: {0}")]
    Generate(String),
    /// rustls refused the key or certificate.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the server configuration from `cert` and `key`, or from a
/// self-signed pair in `data_dir` (made if missing).
pub fn server_config(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        _ => self_signed(data_dir)?,
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = dir.join("api-cert.pem");
    let key_path = dir.join("api-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Io(dir.to_path_buf(), e))?;
    write_private(&key_path, made.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, made.cert.pem()).map_err(|e| TlsError::Io(cert_path.clone(), e))?;
    tracing::info!(cert = %cert_path.display(), "made a self-signed API certificate");
    Ok((cert_path, key_path))
}

/// Writes a private key readable by its owner only (0600).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| TlsError::Io(path.to_path_buf(), e))?;
    f.write_all(bytes).map_err(|e| TlsError::Io(path.to_path_buf(), e))
}

/// The certificates of a PEM file (a chain or a trust bundle).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Io(path.to_path_buf(), e))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Pem(path.to_path_buf(), "certificate"));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Io(path.to_path_buf(), e))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::Pem(path.to_path_buf(), "private key"))
}
