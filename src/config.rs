//! Settings: embedded defaults, then a TOML file (`--config`), then
//! environment variables, each overriding the one before. The variable names
//! are fixed because operators and tests rely on them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The settings file, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    api_listen: Option<String>,
    sip_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    admin_user: Option<String>,
    admin_password: Option<String>,
    media_address: Option<String>,
    media_timeout_seconds: Option<u64>,
    api_idle_timeout_seconds: Option<u64>,
    api_request_timeout_seconds: Option<u64>,
    sip_idle_timeout_seconds: Option<u64>,
    sip_tls_trust: Option<PathBuf>,
    dns_server: Option<String>,
    max_calls: Option<usize>,
    media_workers: Option<usize>,
    video_threads: Option<usize>,
    opus_complexity: Option<u8>,
    opus_bitrate: Option<i32>,
    opus_fec: Option<bool>,
    video: Option<bool>,
    web: Option<bool>,
    c2w_links: Option<bool>,
    web_listen: Option<String>,
    web_tls_cert: Option<PathBuf>,
    web_tls_key: Option<PathBuf>,
    web_frame_ancestors: Option<String>,
    web_public_url: Option<String>,
    c2w_listen: Option<String>,
    c2w_cert: Option<PathBuf>,
    c2w_key: Option<PathBuf>,
    c2w_trust: Option<PathBuf>,
    callbridge_c2w_trust: Option<PathBuf>,
    xmpp_link: Option<bool>,
    xmpp_component_tls: Option<bool>,
    callbridge_xmpp_trust: Option<PathBuf>,
    xmpp_listen: Option<String>,
    ldap_trust: Option<PathBuf>,
}

/// What the MMP-style commands (`confero webbridge3 ...`, `confero
/// callbridge trust c2w ...`) store, in `mmp.toml` in the data directory.
/// They override the settings file; environment variables override them.
#[derive(Debug, Default, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmpSettings {
    /// `webbridge3 https listen`.
    pub web_listen: Option<String>,
    /// `webbridge3 https certs` (key).
    pub web_tls_key: Option<PathBuf>,
    /// `webbridge3 https certs` (full chain).
    pub web_tls_cert: Option<PathBuf>,
    /// `webbridge3 https frame-ancestors`.
    pub web_frame_ancestors: Option<String>,
    /// `webbridge3 c2w listen`.
    pub c2w_listen: Option<String>,
    /// `webbridge3 c2w certs` (key).
    pub c2w_key: Option<PathBuf>,
    /// `webbridge3 c2w certs` (full chain).
    pub c2w_cert: Option<PathBuf>,
    /// `webbridge3 c2w trust`.
    pub c2w_trust: Option<PathBuf>,
    /// `callbridge trust c2w`.
    pub callbridge_c2w_trust: Option<PathBuf>,
    /// `callbridge trust xmpp`.
    pub callbridge_xmpp_trust: Option<PathBuf>,
    /// `xmpp domain`.
    pub xmpp_domain: Option<String>,
    /// `xmpp listen`.
    pub xmpp_listen: Option<String>,
    /// `xmpp certs` (key).
    pub xmpp_key: Option<PathBuf>,
    /// `xmpp certs` (full chain).
    pub xmpp_cert: Option<PathBuf>,
    /// `xmpp certs` (CA bundle, kept for `xmpp status`).
    pub xmpp_bundle: Option<PathBuf>,
    /// `xmpp enable` / `xmpp disable`; unset: on once a domain is set.
    pub xmpp_enabled: Option<bool>,
    /// `xmpp callbridge add|add-secret|del`: the call bridges allowed to
    /// attach, with their secrets (hence the file's 0600).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xmpp_callbridges: Vec<XmppCallBridge>,
}

/// A call bridge our XMPP server lets attach as a component.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppCallBridge {
    /// Its name: it attaches as `<name>.<domain>`.
    pub name: String,
    /// Its shared secret.
    pub secret: String,
}

impl MmpSettings {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("mmp.toml")
    }

    /// What is stored in `data_dir` (nothing yet: all unset).
    pub fn load(data_dir: &Path) -> anyhow::Result<MmpSettings> {
        let path = MmpSettings::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MmpSettings::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Stores these settings in `data_dir`.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let path = MmpSettings::path(data_dir);
        // Private: it holds the XMPP call bridges' secrets.
        confero_https::tls::write_private(&path, toml::to_string(self)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the database, certificates and state live.
    pub data_dir: PathBuf,
    /// The API's HTTPS listener.
    pub api_listen: SocketAddr,
    /// The SIP listener (used once SIP lands).
    pub sip_listen: SocketAddr,
    /// A full-chain certificate for the API (PEM); self-signed when absent.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The API user to create or update at start.
    pub admin_user: String,
    /// Its password; when absent and no user exists, one is generated.
    pub admin_password: Option<String>,
    /// The address media sockets bind to and SDP advertises; the SIP
    /// listener's address when absent.
    pub media_address: Option<std::net::IpAddr>,
    /// A call leg with no media for this long is dropped.
    pub media_timeout: std::time::Duration,
    /// An API connection with no request in progress is closed after this.
    pub api_idle_timeout: std::time::Duration,
    /// An API request (body included) taking longer is answered 408.
    pub api_request_timeout: std::time::Duration,
    /// A SIP TCP/TLS connection no call uses is closed after this long quiet.
    pub sip_idle_timeout: std::time::Duration,
    /// SIP calls at once; further INVITEs are answered 503.
    pub max_calls: usize,
    /// Media worker threads; 0: one per core.
    pub media_workers: usize,
    /// Threads one conference's video may use at once; 0: one per core.
    pub video_threads: usize,
    /// The mixer's Opus encoders: complexity 0-10.
    pub opus_complexity: u8,
    /// Their bitrate in bit/s (a receiver's SDP may ask for less).
    pub opus_bitrate: i32,
    /// Their in-band FEC.
    pub opus_fec: bool,
    /// Answer offered H.264 video (composed layouts); off: audio only.
    pub video: bool,
    /// Run the embedded web bridge (web app and C2W listener) in `confero run`.
    pub web: bool,
    /// Link this call bridge to the `webBridges` objects over C2W.
    pub c2w_links: bool,
    /// The CA bundle that SIP servers we call over TLS must chain to; the
    /// public web roots when absent.
    pub sip_tls_trust: Option<PathBuf>,
    /// The one DNS server to ask (`host:port`) instead of the system's.
    pub dns_server: Option<SocketAddr>,
    /// The web app's HTTPS listener.
    pub web_listen: SocketAddr,
    /// The web app's full-chain certificate; the API's when absent.
    pub web_tls_cert: Option<PathBuf>,
    /// Its key.
    pub web_tls_key: Option<PathBuf>,
    /// The CSP `frame-ancestors` value of the web app.
    pub web_frame_ancestors: String,
    /// Where browsers reach the web app (`https://host:port`), for join links;
    /// the listener's address when absent.
    pub web_public_url: Option<String>,
    /// The web bridge's C2W listener.
    pub c2w_listen: SocketAddr,
    /// The web bridge's C2W full chain; the local CA's when absent.
    pub c2w_cert: Option<PathBuf>,
    /// Its key.
    pub c2w_key: Option<PathBuf>,
    /// The bundle call bridges' certificates must chain to; the local CA's
    /// when absent.
    pub c2w_trust: Option<PathBuf>,
    /// The bundle web bridges' certificates must chain to (this call
    /// bridge's side); the local CA's when absent.
    pub callbridge_c2w_trust: Option<PathBuf>,
    /// Attach this call bridge to the XMPP server of
    /// `system/configuration/xmpp` as a component.
    pub xmpp_link: bool,
    /// The component link to the XMPP server uses TLS (off: plain TCP, for
    /// a third-party server whose component port has none).
    pub xmpp_component_tls: bool,
    /// The bundle the XMPP server's certificate must chain to; the web
    /// PKI's roots when absent.
    pub callbridge_xmpp_trust: Option<PathBuf>,
    /// The bundle LDAPS servers' certificates (`ldapServers` with
    /// `secure=true`) must chain to; the web PKI's roots when absent.
    pub ldap_trust: Option<PathBuf>,
    /// Our XMPP server's domain (`xmpp domain`); none: no server.
    pub xmpp_domain: Option<String>,
    /// Run our XMPP server in `confero run` (on once a domain is set, unless
    /// `xmpp disable`).
    pub xmpp_server: bool,
    /// Its client port; the component port is the next one.
    pub xmpp_listen: SocketAddr,
    /// Its key and full chain (`xmpp certs`); self-signed for the domain
    /// when absent.
    pub xmpp_key: Option<PathBuf>,
    /// See `xmpp_key`.
    pub xmpp_cert: Option<PathBuf>,
    /// `xmpp certs`' CA bundle.
    pub xmpp_bundle: Option<PathBuf>,
    /// The call bridges allowed to attach.
    pub xmpp_callbridges: Vec<XmppCallBridge>,
}

fn on_off(name: &str, file: Option<bool>, default: bool) -> anyhow::Result<bool> {
    match env(name).as_deref() {
        Some("on" | "true") => Ok(true),
        Some("off" | "false") => Ok(false),
        Some(other) => anyhow::bail!("{name} must be on or off, not {other:?}"),
        None => Ok(file.unwrap_or(default)),
    }
}

/// A deadline of at least a second (0 would close every connection at
/// once), from `name` or the file, else `default` seconds.
fn seconds(name: &str, file: Option<u64>, default: u64) -> anyhow::Result<std::time::Duration> {
    let s = match env(name).map(|v| v.parse::<u64>()) {
        Some(Ok(s)) => s,
        Some(Err(_)) => anyhow::bail!("{name} must be whole seconds"),
        None => file.unwrap_or(default),
    };
    if s == 0 {
        anyhow::bail!("{name} must be at least 1 second");
    }
    Ok(std::time::Duration::from_secs(s))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn addr(what: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value.parse().with_context(|| format!("{what}: {value:?} is not an address:port"))
}

/// A number from the environment, else the file, else `default`, within `range`.
fn number<T>(name: &str, file: Option<T>, default: T, range: std::ops::RangeInclusive<T>) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value = match env(name) {
        Some(v) => v.parse::<T>().map_err(|_| anyhow::anyhow!("{name}: {v:?} is not a number"))?,
        None => file.unwrap_or(default),
    };
    if !range.contains(&value) {
        anyhow::bail!("{name} must be within {}..={}, not {value}", range.start(), range.end());
    }
    Ok(value)
}

impl Settings {
    /// Reads `file` (if given) and the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let f: FileSettings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let data_dir =
            env("CONFERO_DATA_DIR").map(PathBuf::from).or(f.data_dir).unwrap_or_else(|| "confero-data".into());
        let api = env("CONFERO_API_LISTEN").or(f.api_listen).unwrap_or_else(|| "127.0.0.1:8445".into());
        let sip = env("CONFERO_SIP_LISTEN").or(f.sip_listen).unwrap_or_else(|| "127.0.0.1:5060".into());
        let mmp = MmpSettings::load(&data_dir)?;
        let web =
            env("CONFERO_WEB_LISTEN").or(mmp.web_listen).or(f.web_listen).unwrap_or_else(|| "127.0.0.1:8447".into());
        let xmpp_listen = env("CONFERO_XMPP_LISTEN")
            .or(mmp.xmpp_listen.clone())
            .or(f.xmpp_listen)
            .unwrap_or_else(|| "127.0.0.1:5222".into());
        let xmpp_domain = mmp.xmpp_domain.clone().map(|d| d.to_ascii_lowercase());
        let c2w =
            env("CONFERO_C2W_LISTEN").or(mmp.c2w_listen).or(f.c2w_listen).unwrap_or_else(|| "127.0.0.1:8448".into());
        Ok(Settings {
            data_dir,
            api_listen: addr("CONFERO_API_LISTEN", &api)?,
            sip_listen: addr("CONFERO_SIP_LISTEN", &sip)?,
            tls_cert: env("CONFERO_TLS_CERT").map(PathBuf::from).or(f.tls_cert),
            tls_key: env("CONFERO_TLS_KEY").map(PathBuf::from).or(f.tls_key),
            admin_user: env("CONFERO_ADMIN_USER").or(f.admin_user).unwrap_or_else(|| "admin".into()),
            admin_password: env("CONFERO_ADMIN_PASSWORD").or(f.admin_password),
            media_address: match env("CONFERO_MEDIA_ADDRESS").or(f.media_address) {
                Some(a) => Some(a.parse().with_context(|| format!("CONFERO_MEDIA_ADDRESS: {a:?} is not an address"))?),
                None => None,
            },
            media_timeout: std::time::Duration::from_secs(
                match env("CONFERO_MEDIA_TIMEOUT").map(|v| v.parse::<u64>()) {
                    Some(Ok(s)) => s,
                    Some(Err(_)) => anyhow::bail!("CONFERO_MEDIA_TIMEOUT must be whole seconds"),
                    None => f.media_timeout_seconds.unwrap_or(30),
                },
            ),
            api_idle_timeout: seconds("CONFERO_API_IDLE_TIMEOUT", f.api_idle_timeout_seconds, 30)?,
            api_request_timeout: seconds("CONFERO_API_REQUEST_TIMEOUT", f.api_request_timeout_seconds, 30)?,
            sip_idle_timeout: seconds(
                "CONFERO_SIP_IDLE_TIMEOUT",
                f.sip_idle_timeout_seconds,
                confero::sip::IDLE_TIMEOUT.as_secs(),
            )?,
            max_calls: match env("CONFERO_MAX_CALLS").map(|v| v.parse::<usize>()) {
                Some(Ok(n)) => n,
                Some(Err(_)) => anyhow::bail!("CONFERO_MAX_CALLS must be a whole number"),
                None => f.max_calls.unwrap_or(4_000),
            },
            media_workers: match env("CONFERO_MEDIA_WORKERS").map(|v| v.parse::<usize>()) {
                Some(Ok(n)) => n,
                Some(Err(_)) => anyhow::bail!("CONFERO_MEDIA_WORKERS must be a whole number"),
                None => f.media_workers.unwrap_or(0),
            },
            video_threads: match env("CONFERO_VIDEO_THREADS").map(|v| v.parse::<usize>()) {
                Some(Ok(n)) => n,
                Some(Err(_)) => anyhow::bail!("CONFERO_VIDEO_THREADS must be a whole number"),
                None => f.video_threads.unwrap_or(0),
            },
            opus_complexity: number("CONFERO_OPUS_COMPLEXITY", f.opus_complexity, 5, 0..=10)?,
            opus_bitrate: number("CONFERO_OPUS_BITRATE", f.opus_bitrate, 32_000, 6_000..=510_000)?,
            opus_fec: match env("CONFERO_OPUS_FEC").as_deref() {
                Some("on" | "true") => true,
                Some("off" | "false") => false,
                Some(other) => anyhow::bail!("CONFERO_OPUS_FEC must be on or off, not {other:?}"),
                None => f.opus_fec.unwrap_or(true),
            },
            video: match env("CONFERO_VIDEO").as_deref() {
                Some("on" | "true") => true,
                Some("off" | "false") => false,
                Some(other) => anyhow::bail!("CONFERO_VIDEO must be on or off, not {other:?}"),
                None => f.video.unwrap_or(true),
            },
            sip_tls_trust: env("CONFERO_SIP_TLS_TRUST").map(PathBuf::from).or(f.sip_tls_trust),
            dns_server: match env("CONFERO_DNS_SERVER").or(f.dns_server) {
                Some(a) => Some(addr("CONFERO_DNS_SERVER", &a)?),
                None => None,
            },
            web: on_off("CONFERO_WEB", f.web, true)?,
            c2w_links: on_off("CONFERO_C2W_LINKS", f.c2w_links, true)?,
            web_listen: addr("CONFERO_WEB_LISTEN", &web)?,
            web_tls_cert: env("CONFERO_WEB_TLS_CERT").map(PathBuf::from).or(mmp.web_tls_cert).or(f.web_tls_cert),
            web_tls_key: env("CONFERO_WEB_TLS_KEY").map(PathBuf::from).or(mmp.web_tls_key).or(f.web_tls_key),
            web_frame_ancestors: mmp.web_frame_ancestors.or(f.web_frame_ancestors).unwrap_or_else(|| "'self'".into()),
            web_public_url: match env("CONFERO_WEB_PUBLIC_URL").or(f.web_public_url) {
                Some(u) if u.starts_with("https://") && u.len() > "https://".len() => {
                    Some(u.trim_end_matches('/').to_string())
                }
                Some(u) => anyhow::bail!("CONFERO_WEB_PUBLIC_URL must be an https:// address, not {u:?}"),
                None => None,
            },
            c2w_listen: addr("CONFERO_C2W_LISTEN", &c2w)?,
            c2w_cert: mmp.c2w_cert.or(f.c2w_cert),
            c2w_key: mmp.c2w_key.or(f.c2w_key),
            c2w_trust: mmp.c2w_trust.or(f.c2w_trust),
            callbridge_c2w_trust: mmp.callbridge_c2w_trust.or(f.callbridge_c2w_trust),
            xmpp_link: on_off("CONFERO_XMPP_LINK", f.xmpp_link, true)?,
            xmpp_component_tls: on_off("CONFERO_XMPP_COMPONENT_TLS", f.xmpp_component_tls, true)?,
            callbridge_xmpp_trust: env("CONFERO_XMPP_TRUST")
                .map(PathBuf::from)
                .or(mmp.callbridge_xmpp_trust)
                .or(f.callbridge_xmpp_trust),
            ldap_trust: env("CONFERO_LDAP_TRUST").map(PathBuf::from).or(f.ldap_trust),
            xmpp_server: xmpp_domain.is_some() && mmp.xmpp_enabled.unwrap_or(true),
            xmpp_domain,
            xmpp_listen: addr("CONFERO_XMPP_LISTEN", &xmpp_listen)?,
            xmpp_key: mmp.xmpp_key,
            xmpp_cert: mmp.xmpp_cert,
            xmpp_bundle: mmp.xmpp_bundle,
            xmpp_callbridges: mmp.xmpp_callbridges,
        })
    }
}
