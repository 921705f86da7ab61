//! The MMP-style web bridge commands, as CMS's `webbridge3` and
//! `callbridge trust c2w|xmpp` take them. They store into `mmp.toml` in the data
//! directory (see `config::MmpSettings`); a running process reads them at its
//! next start, as CMS applies them at `webbridge3 restart`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::config::{MmpSettings, Settings};

const WEBBRIDGE3_USAGE: &str = "usage:
  webbridge3
  webbridge3 https listen <interface:port>|none
  webbridge3 https certs <key-file> <cert-fullchain-file>|none
  webbridge3 https frame-ancestors <value>|none
  webbridge3 c2w listen <interface:port>|none
  webbridge3 c2w certs <key-file> <cert-fullchain-file>|none
  webbridge3 c2w trust <bundle>|none";

/// A file an operator names, made absolute so that a bridge started from
/// another directory finds it; it must exist.
fn file(path: &str) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("{path}: no such file"))
}

fn listen(value: &str) -> anyhow::Result<Option<String>> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    value.parse::<std::net::SocketAddr>().with_context(|| format!("{value:?} is not interface:port"))?;
    Ok(Some(value.to_string()))
}

/// Checks that a key and chain belong together, as the MMP does before it
/// takes them.
fn check_pair(key: &Path, cert: &Path) -> anyhow::Result<()> {
    // The directory is only written when no pair is given; one is.
    confero_https::tls::server_config(Some(cert), Some(key), &std::env::temp_dir())
        .context("key and certificate do not match")?;
    Ok(())
}

fn shown(value: &Option<PathBuf>, default: &str) -> String {
    value.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| default.to_string())
}

/// `confero webbridge3 ...`.
pub fn webbridge3(settings: &Settings, words: &[String]) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    let mut mmp = MmpSettings::load(dir)?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => {
            let ca = "local CA (data directory)";
            println!("Enabled : {}", settings.web);
            println!("HTTPS listening ports and interfaces : {}", settings.web_listen);
            println!("HTTPS Key file : {}", shown(&settings.web_tls_key, "API key"));
            println!("HTTPS Full chain certificate file : {}", shown(&settings.web_tls_cert, "API certificate"));
            println!("HTTPS Frame-Ancestors : {}", settings.web_frame_ancestors);
            println!("HTTP redirect : Disabled");
            println!("C2W listening ports and interfaces : {}", settings.c2w_listen);
            println!("C2W Key file : {}", shown(&settings.c2w_key, ca));
            println!("C2W Full chain certificate file : {}", shown(&settings.c2w_cert, ca));
            println!("C2W Trust bundle : {}", shown(&settings.c2w_trust, ca));
            println!("Beta options : none");
            return Ok(());
        }
        ["https", "listen", value] => mmp.web_listen = listen(value)?,
        ["https", "certs", "none"] => (mmp.web_tls_key, mmp.web_tls_cert) = (None, None),
        ["https", "certs", key, cert] => {
            let (key, cert) = (file(key)?, file(cert)?);
            check_pair(&key, &cert)?;
            println!("SUCCESS: HTTPS Key and certificate pair match");
            (mmp.web_tls_key, mmp.web_tls_cert) = (Some(key), Some(cert));
        }
        ["https", "frame-ancestors", "none"] => mmp.web_frame_ancestors = None,
        ["https", "frame-ancestors", value @ ..] if !value.is_empty() => {
            mmp.web_frame_ancestors = Some(value.join(" "))
        }
        ["c2w", "listen", value] => mmp.c2w_listen = listen(value)?,
        ["c2w", "certs", "none"] => (mmp.c2w_key, mmp.c2w_cert) = (None, None),
        ["c2w", "certs", key, cert] => {
            let (key, cert) = (file(key)?, file(cert)?);
            check_pair(&key, &cert)?;
            println!("SUCCESS: C2W Key and certificate pair match");
            (mmp.c2w_key, mmp.c2w_cert) = (Some(key), Some(cert));
        }
        ["c2w", "trust", "none"] => mmp.c2w_trust = None,
        ["c2w", "trust", bundle] => {
            let bundle = file(bundle)?;
            confero_webbridge::pki::read_certs(&bundle)?;
            mmp.c2w_trust = Some(bundle);
        }
        _ => bail!("{WEBBRIDGE3_USAGE}"),
    }
    mmp.save(dir)
}

/// `confero callbridge trust c2w|xmpp <bundle>|none`.
pub fn callbridge(settings: &Settings, words: &[String]) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    let mut mmp = MmpSettings::load(dir)?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => {
            println!("C2W Trust bundle : {}", shown(&settings.callbridge_c2w_trust, "local CA (data directory)"));
            println!("XMPP Trust bundle : {}", shown(&settings.callbridge_xmpp_trust, "web PKI roots"));
            return Ok(());
        }
        ["trust", "c2w", "none"] => mmp.callbridge_c2w_trust = None,
        ["trust", "c2w", bundle] => {
            let bundle = file(bundle)?;
            confero_webbridge::pki::read_certs(&bundle)?;
            mmp.callbridge_c2w_trust = Some(bundle);
        }
        ["trust", "xmpp", "none"] => mmp.callbridge_xmpp_trust = None,
        ["trust", "xmpp", bundle] => {
            let bundle = file(bundle)?;
            confero_webbridge::pki::read_certs(&bundle)?;
            mmp.callbridge_xmpp_trust = Some(bundle);
        }
        _ => bail!("usage:\n  callbridge\n  callbridge trust c2w <bundle>|none\n  callbridge trust xmpp <bundle>|none"),
    }
    mmp.save(dir)
}
