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

const XMPP_USAGE: &str = "usage:
  xmpp [status]
  xmpp domain <domain>
  xmpp listen <interface:port>|none       (the component port is the next one)
  xmpp certs <key-file> <cert-fullchain-file> [<ca-bundle>]|none
  xmpp callbridge add <name>              (prints the secret)
  xmpp callbridge add-secret <name>       (reads the secret from stdin)
  xmpp callbridge del <name>
  xmpp callbridge list
  xmpp enable|disable";

/// `confero xmpp ...`: our XMPP server's settings, as CMS's MMP `xmpp`.
pub fn xmpp(settings: &Settings, words: &[String]) -> anyhow::Result<()> {
    use crate::config::XmppCallBridge;
    let dir = &settings.data_dir;
    let mut mmp = MmpSettings::load(dir)?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let valid_name =
        |n: &str| !n.is_empty() && n.len() <= 63 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match words.as_slice() {
        [] | ["status"] => {
            let component =
                std::net::SocketAddr::new(settings.xmpp_listen.ip(), settings.xmpp_listen.port().wrapping_add(1));
            println!("Enabled : {}", settings.xmpp_server);
            println!("Domain : {}", settings.xmpp_domain.as_deref().unwrap_or("(none)"));
            println!("Listening interfaces : {}", settings.xmpp_listen);
            println!("Component port : {component}");
            println!("Key file : {}", shown(&settings.xmpp_key, "self-signed (data directory)"));
            println!("Certificate file : {}", shown(&settings.xmpp_cert, "self-signed (data directory)"));
            println!("CA Bundle file : {}", shown(&settings.xmpp_bundle, "none"));
            println!("Callbridges : {}", settings.xmpp_callbridges.len());
            return Ok(());
        }
        ["domain", domain] => {
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            if domain.is_empty() || !domain.split('.').all(valid_name) {
                bail!("{domain:?} is not a domain name");
            }
            mmp.xmpp_domain = Some(domain);
        }
        ["listen", value] => {
            mmp.xmpp_listen = listen(value)?;
            if let Some(a) = &mmp.xmpp_listen {
                if a.parse::<std::net::SocketAddr>().is_ok_and(|a| a.port() == u16::MAX) {
                    bail!("the component port (the next one) must exist");
                }
            }
        }
        ["certs", "none"] => (mmp.xmpp_key, mmp.xmpp_cert, mmp.xmpp_bundle) = (None, None, None),
        ["certs", key, cert, bundle @ ..] if bundle.len() <= 1 => {
            let (key, cert) = (file(key)?, file(cert)?);
            check_pair(&key, &cert)?;
            let bundle = match bundle.first() {
                Some(b) => {
                    let b = file(b)?;
                    confero_webbridge::pki::read_certs(&b)?;
                    Some(b)
                }
                None => None,
            };
            println!("SUCCESS: Key and certificate pair match");
            (mmp.xmpp_key, mmp.xmpp_cert, mmp.xmpp_bundle) = (Some(key), Some(cert), bundle);
        }
        ["callbridge", "add", name] | ["callbridge", "add-secret", name] => {
            let name = name.to_ascii_lowercase();
            if !valid_name(&name) {
                bail!("{name:?}: a call bridge name is letters, digits and '-'");
            }
            if mmp.xmpp_callbridges.iter().any(|c| c.name == name) {
                bail!("call bridge {name} exists; `xmpp callbridge del {name}` first");
            }
            let generate = words[1] == "add";
            let secret = if generate { confero_store::schema::new_secret() } else { crate::read_password()? };
            mmp.xmpp_callbridges.push(XmppCallBridge { name: name.clone(), secret: secret.clone() });
            mmp.save(dir)?;
            println!("Success : true");
            println!("Callbridge : {name}");
            println!("Domain : {}", mmp.xmpp_domain.as_deref().unwrap_or("(none: set it with `xmpp domain`)"));
            if generate {
                println!("Secret : {secret}");
            }
            return Ok(());
        }
        ["callbridge", "del", name] => {
            let before = mmp.xmpp_callbridges.len();
            mmp.xmpp_callbridges.retain(|c| !c.name.eq_ignore_ascii_case(name));
            if mmp.xmpp_callbridges.len() == before {
                bail!("no call bridge {name}");
            }
        }
        ["callbridge", "list"] => {
            for c in &settings.xmpp_callbridges {
                println!("Callbridge : {}", c.name);
                println!("Domain : {}", settings.xmpp_domain.as_deref().unwrap_or("(none)"));
                println!("Secret : *****");
            }
            return Ok(());
        }
        ["enable"] => mmp.xmpp_enabled = Some(true),
        ["disable"] => mmp.xmpp_enabled = Some(false),
        _ => bail!("{XMPP_USAGE}"),
    }
    mmp.save(dir)
}
