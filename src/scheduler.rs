//! The scheduler beside the call bridge: its MMP-style commands
//! (`confero scheduler ...`, as CMS 3.3's `scheduler` takes them, stored in
//! `scheduler.toml` in the data directory and applied at the next start),
//! and its wiring inside `confero run` (an API user of its own, the client of
//! this call bridge's API, the mail queue, the clean-up, its listener).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use confero_https::users::{self, Role};
use confero_scheduler::c2w::C2wSupervisor;
use confero_scheduler::callbridge::CallBridge;
use confero_scheduler::clock::{Clock, SystemClock};
use confero_scheduler::http::MeetingsApi;
use confero_scheduler::mail::{EmailSettings, MailQueue, MAILS};
use confero_scheduler::service::{Caller, Scheduler};
use confero_scheduler::timed_logging::TimedLogging;
use confero_store::schema::Kind;
use confero_store::{SqliteStore, Store};
use confero_webbridge::app::scheduling::{Answer, Scheduling};
use confero_webbridge::pki::{self, C2wIdentity, LocalCa};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Settings;

/// The scheduler's listener when nothing else is said.
const DEFAULT_LISTEN: &str = "127.0.0.1:9443";
/// The API user the scheduler calls the call bridge's API as; its password
/// is made afresh at every start and kept only in memory.
const API_USER: &str = "confero-scheduler";
/// Where `scheduler email username`'s password is kept (0600).
const PASSWORD_FILE: &str = "scheduler-email-password";

/// What `confero scheduler ...` stores.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// `scheduler enable|disable`.
    pub enabled: bool,
    /// `scheduler https listen <interface> <port>`; `none` stores "none".
    pub https_listen: Option<String>,
    /// `scheduler https certs` (key).
    pub https_key: Option<PathBuf>,
    /// `scheduler https certs` (full chain).
    pub https_cert: Option<PathBuf>,
    /// `scheduler c2w certs` (key).
    pub c2w_key: Option<PathBuf>,
    /// `scheduler c2w certs` (full chain).
    pub c2w_cert: Option<PathBuf>,
    /// `scheduler c2w trust`.
    pub c2w_trust: Option<PathBuf>,
    /// `scheduler email server` (host).
    pub email_server: Option<String>,
    /// `scheduler email server` (port).
    pub email_port: Option<u16>,
    /// `scheduler email protocol smtps` (else smtp).
    pub email_smtps: bool,
    /// `scheduler email starttls enable`.
    pub email_starttls: bool,
    /// `scheduler email auth enable`.
    pub email_auth: bool,
    /// `scheduler email username`.
    pub email_username: Option<String>,
    /// `scheduler email trust`.
    pub email_trust: Option<PathBuf>,
    /// `scheduler timedLogging (webBridge|api|email) <seconds>`: when each
    /// part's detailed logging ends (Unix seconds; 0 or past: off).
    pub timed_logging: std::collections::BTreeMap<String, u64>,
}

impl SchedulerSettings {
    fn path(dir: &Path) -> PathBuf {
        dir.join("scheduler.toml")
    }

    /// What is stored in `dir` (defaults when nothing is).
    pub fn load(dir: &Path) -> anyhow::Result<SchedulerSettings> {
        let path = SchedulerSettings::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SchedulerSettings::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = SchedulerSettings::path(dir);
        std::fs::write(&path, toml::to_string(self)?).with_context(|| format!("writing {}", path.display()))
    }

    /// Enabled by `scheduler enable`, or `CONFERO_SCHEDULER=on|off`.
    pub fn effective_enabled(&self) -> anyhow::Result<bool> {
        match std::env::var("CONFERO_SCHEDULER").ok().filter(|v| !v.is_empty()).as_deref() {
            Some("on" | "true") => Ok(true),
            Some("off" | "false") => Ok(false),
            Some(other) => bail!("CONFERO_SCHEDULER must be on or off, not {other:?}"),
            None => Ok(self.enabled),
        }
    }

    /// The listener: `CONFERO_SCHEDULER_LISTEN`, else `https listen`, else
    /// 127.0.0.1:9443; `None` when set to none.
    pub fn listen(&self) -> anyhow::Result<Option<SocketAddr>> {
        let value = std::env::var("CONFERO_SCHEDULER_LISTEN")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.https_listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        if value == "none" {
            return Ok(None);
        }
        Ok(Some(value.parse().with_context(|| format!("scheduler listener {value:?} is not address:port"))?))
    }

    /// The SMTP settings, if a server is set.
    fn email(&self, dir: &Path) -> anyhow::Result<Option<EmailSettings>> {
        let (Some(server), Some(port)) = (&self.email_server, self.email_port) else { return Ok(None) };
        let credentials = if self.email_auth {
            let user = self.email_username.clone().context("email auth is enabled but no username is set")?;
            let password = std::fs::read_to_string(dir.join(PASSWORD_FILE))
                .context("email auth is enabled but no password is stored")?;
            Some((user, password.trim_end_matches(['\r', '\n']).to_string()))
        } else {
            None
        };
        let from = std::env::var("CONFERO_SCHEDULER_EMAIL_FROM")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "confero-scheduler@localhost".into());
        Ok(Some(EmailSettings {
            server: server.clone(),
            port,
            smtps: self.email_smtps,
            starttls: self.email_starttls,
            credentials,
            trust: self.email_trust.clone(),
            from,
        }))
    }
}

const USAGE: &str = "usage:
  scheduler
  scheduler https listen <interface> <port>|none
  scheduler https certs <key-file> <cert-fullchain-file>|none
  scheduler c2w certs <key-file> <cert-fullchain-file>|none
  scheduler c2w trust <bundle>|none
  scheduler email server <hostname|address> <port>|none
  scheduler email username <smtp username>
  scheduler email remove username
  scheduler email protocol <smtp|smtps>
  scheduler email auth <enable|disable>
  scheduler email starttls <enable|disable>
  scheduler email trust <bundle>|none
  scheduler timedLogging
  scheduler timedLogging (webBridge|api|email) <seconds>
  scheduler enable
  scheduler disable
  scheduler restart
  scheduler status";

fn file(path: &str) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("{path}: no such file"))
}

fn shown(value: &Option<PathBuf>) -> String {
    value.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into())
}

fn enable_disable(word: &str) -> anyhow::Result<bool> {
    match word {
        "enable" => Ok(true),
        "disable" => Ok(false),
        _ => bail!("{USAGE}"),
    }
}

/// A key and chain that belong together (and whose chain reads).
fn check_pair(what: &str, key: &Path, cert: &Path) -> anyhow::Result<()> {
    confero_https::tls::server_config(Some(cert), Some(key), &std::env::temp_dir())
        .with_context(|| format!("{what} key and certificate do not match"))?;
    println!("SUCCESS: {what} Key and certificate pair match");
    confero_https::tls::read_certs(cert)?;
    println!("SUCCESS: {what} full chain of certificates verifies correctly");
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `confero scheduler ...`.
pub fn command(settings: &Settings, words: &[String]) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    let mut s = SchedulerSettings::load(dir)?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => {
            let listen = s.listen()?;
            let width = 24;
            let row = |name: &str, value: String| println!("{name:<width$}: {value}");
            row("Enabled", s.effective_enabled()?.to_string());
            row("Https interface", listen.map(|a| a.ip().to_string()).unwrap_or_else(|| "none".into()));
            row("Https port", listen.map(|a| a.port().to_string()).unwrap_or_else(|| "none".into()));
            row("Https key file", shown(&s.https_key));
            row("Https certificate file", shown(&s.https_cert));
            row("C2W Key file", shown(&s.c2w_key));
            row("C2W Full chain certificate file", shown(&s.c2w_cert));
            row("C2W Trust bundle", shown(&s.c2w_trust));
            row("Email Server", s.email_server.clone().unwrap_or_else(|| "none".into()));
            row("Email Port", s.email_port.map(|p| p.to_string()).unwrap_or_else(|| "none".into()));
            row("Email Username", s.email_username.clone().unwrap_or_else(|| "none".into()));
            let stored = dir.join(PASSWORD_FILE).exists();
            row("Email Password", if stored { "*****".into() } else { "none".into() });
            return Ok(());
        }
        ["status"] => return status(settings, &s),
        ["https", "listen", "none"] => s.https_listen = Some("none".into()),
        ["https", "listen", interface, port] => {
            let addr: SocketAddr = format!("{interface}:{port}")
                .parse()
                .or_else(|_| format!("[{interface}]:{port}").parse())
                .with_context(|| format!("{interface} {port}: not an interface address and port"))?;
            s.https_listen = Some(addr.to_string());
        }
        ["https", "certs", "none"] => (s.https_key, s.https_cert) = (None, None),
        ["https", "certs", key, cert] => (s.https_key, s.https_cert) = (Some(file(key)?), Some(file(cert)?)),
        ["c2w", "certs", "none"] => (s.c2w_key, s.c2w_cert) = (None, None),
        ["c2w", "certs", key, cert] => (s.c2w_key, s.c2w_cert) = (Some(file(key)?), Some(file(cert)?)),
        ["c2w", "trust", "none"] => s.c2w_trust = None,
        ["c2w", "trust", bundle] => {
            let bundle = file(bundle)?;
            confero_https::tls::read_certs(&bundle)?;
            s.c2w_trust = Some(bundle);
        }
        ["email", "server", "none"] => (s.email_server, s.email_port) = (None, None),
        ["email", "server", host, port] => {
            let port: u16 = port.parse().with_context(|| format!("{port}: not a port"))?;
            (s.email_server, s.email_port) = (Some(host.to_string()), Some(port));
        }
        ["email", "username", name] => {
            let password = crate::read_password()?;
            confero_https::tls::write_private(&dir.join(PASSWORD_FILE), password.as_bytes())?;
            s.email_username = Some(name.to_string());
        }
        ["email", "remove", "username"] => {
            s.email_username = None;
            let _ = std::fs::remove_file(dir.join(PASSWORD_FILE));
        }
        ["email", "protocol", "smtp"] => s.email_smtps = false,
        ["email", "protocol", "smtps"] => s.email_smtps = true,
        ["email", "auth", word] => s.email_auth = enable_disable(word)?,
        ["email", "starttls", word] => s.email_starttls = enable_disable(word)?,
        ["email", "trust", "none"] => s.email_trust = None,
        ["email", "trust", bundle] => {
            let bundle = file(bundle)?;
            confero_https::tls::read_certs(&bundle)?;
            s.email_trust = Some(bundle);
        }
        ["timedLogging"] => {
            // The seconds each part has left.
            let now = unix_now();
            for what in ["webBridge", "api", "email"] {
                let until = s.timed_logging.get(what).copied().unwrap_or(0);
                println!("{what:<10}: {}", until.saturating_sub(now));
            }
            return Ok(());
        }
        ["timedLogging", what @ ("webBridge" | "api" | "email"), seconds] => {
            let seconds: u64 = seconds.parse().with_context(|| format!("{seconds}: not whole seconds"))?;
            let until = if seconds == 0 { 0 } else { unix_now() + seconds };
            s.timed_logging.insert(what.to_string(), until);
        }
        ["enable"] => {
            if let (Some(k), Some(c)) = (&s.https_key, &s.https_cert) {
                check_pair("HTTPS", k, c)?;
            }
            if let (Some(k), Some(c)) = (&s.c2w_key, &s.c2w_cert) {
                check_pair("C2W", k, c)?;
            }
            s.enabled = true;
            s.save(dir)?;
            println!("SUCCESS: scheduler enabled");
            return Ok(());
        }
        ["disable"] => s.enabled = false,
        ["restart"] => {
            println!("The scheduler runs inside `confero run`: its settings apply when that restarts.");
            return Ok(());
        }
        _ => bail!("{USAGE}"),
    }
    s.save(dir)
}

/// `confero scheduler status`, the seed's lines.
fn status(settings: &Settings, s: &SchedulerSettings) -> anyhow::Result<()> {
    let enabled = s.effective_enabled()?;
    println!("Status: {}", if enabled { "enabled" } else { "disabled" });
    let listen = s.listen()?;
    let running = listen.is_some_and(|a| {
        let probe = if a.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], a.port())) } else { a };
        std::net::TcpStream::connect_timeout(&probe, std::time::Duration::from_secs(1)).is_ok()
    });
    println!("{}", if enabled && running { "Running" } else { "Not running" });
    let store = SqliteStore::open(&settings.data_dir);
    let waiting = store.as_ref().ok().and_then(|st| st.records(MAILS).ok()).map(|m| m.len());
    println!("{}", if store.is_ok() { "Database responsive at start" } else { "Database not responsive" });
    println!("{}", if listen.is_some() { "HTTPS configured" } else { "HTTPS not configured" });
    // Without `c2w certs` the local CA's certificate is used, once made.
    let c2w = s.c2w_key.is_some() || settings.data_dir.join("c2w-ca-cert.pem").exists();
    println!("{}", if c2w { "C2W configured" } else { "C2W not configured" });
    match (&s.email_server, s.email_port) {
        (Some(h), Some(p)) => {
            println!("Email server configured: {h}:{p} ({} mails waiting)", waiting.unwrap_or(0))
        }
        _ => println!("Email server not configured"),
    }
    Ok(())
}

/// Starts the scheduler inside `confero run` when enabled; it serves until
/// `shutdown` resolves.
pub async fn start<F>(
    settings: &Settings,
    store: Arc<dyn Store>,
    shutdown: impl Fn() -> F,
) -> anyhow::Result<Option<Arc<dyn Scheduling>>>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let s = SchedulerSettings::load(&settings.data_dir)?;
    if !s.effective_enabled()? {
        return Ok(None);
    }
    let listen = s.listen()?;
    // Credentials of its own for the call bridge's API, made afresh each start.
    let password = confero_store::schema::new_secret();
    users::set_user(&*store, API_USER, Role::Api, &password)?;
    let chain = settings.tls_cert.clone().unwrap_or_else(|| settings.data_dir.join("api-cert.pem"));
    let cert =
        confero_https::tls::read_certs(&chain)?.into_iter().next().context("the API's certificate chain is empty")?;
    let api_addr = if settings.api_listen.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], settings.api_listen.port()))
    } else {
        settings.api_listen
    };
    // `timedLogging`, read again from scheduler.toml as the MMP command changes it.
    let dir = settings.data_dir.clone();
    let verbose = Arc::new(TimedLogging::new(Box::new(move || {
        SchedulerSettings::load(&dir).map(|s| s.timed_logging).unwrap_or_default()
    })));
    let bridge = CallBridge::new(api_addr, cert, API_USER, &password).with_timed_logging(verbose.clone());
    let clock: Arc<dyn Clock> = match std::env::var("CONFERO_SCHEDULER_CLOCK").ok().filter(|v| !v.is_empty()) {
        Some(t) => Arc::new(
            SystemClock::starting_at_rfc3339(&t)
                .with_context(|| format!("CONFERO_SCHEDULER_CLOCK {t:?} is not an RFC 3339 time"))?,
        ),
        None => Arc::new(SystemClock::default()),
    };
    let mail =
        MailQueue::with_timed_logging(store.clone(), s.email(&settings.data_dir)?, clock.clone(), verbose.clone());
    let web_base = settings.web.then(|| format!("https://{}", settings.web_listen));
    let scheduler = Scheduler::new(store.clone(), bridge, mail.clone(), clock.clone(), web_base)?;
    tokio::spawn(mail.run(shutdown()));
    tokio::spawn(confero_scheduler::cleanup::run(scheduler.clone(), clock, shutdown()));
    match listen {
        Some(listen) => {
            let tls =
                confero_https::tls::server_config(s.https_cert.as_deref(), s.https_key.as_deref(), &settings.data_dir)?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding the scheduler to {listen}"))?;
            tracing::info!("scheduler listening on https://{}/api/v1/meetings", listener.local_addr()?);
            let directory = confero_ldap::signin::LdapAccounts::new(store.clone());
            let api = MeetingsApi::new(scheduler.clone(), store, Some(directory));
            tokio::spawn(confero_https::serve(
                "scheduler",
                listener,
                tls,
                confero_https::Limits::default(),
                shutdown(),
                move |peer, req| confero_scheduler::http::handle(api.clone(), peer, req),
            ));
        }
        None => tracing::info!("scheduler: enabled with no HTTPS listener"),
    }
    let scheduling: Arc<dyn Scheduling> = Arc::new(WebScheduling { scheduler: scheduler.clone() });
    let supervisor = C2wSupervisor {
        scheduler,
        scheduling: scheduling.clone(),
        tls: pki::client_config(&c2w_identity(settings, &s)?)
            .context("the scheduler's C2W certificate or trust bundle")?,
        name: API_USER.into(),
        verbose,
    };
    tokio::spawn(supervisor.run(shutdown()));
    Ok(Some(scheduling))
}

/// The scheduler's C2W identity: `scheduler c2w certs` and `c2w trust`,
/// each falling back to the data directory's local CA (whose client
/// certificate the embedded web bridge trusts).
fn c2w_identity(settings: &Settings, s: &SchedulerSettings) -> anyhow::Result<C2wIdentity> {
    let ca = LocalCa::ensure(&settings.data_dir)?;
    let (key, cert) = match (&s.c2w_key, &s.c2w_cert) {
        (Some(k), Some(c)) => (k.clone(), c.clone()),
        _ => (ca.call_bridge_key, ca.call_bridge_cert),
    };
    Ok(C2wIdentity { key, cert, trust: s.c2w_trust.clone().unwrap_or(ca.ca_cert) })
}

/// The web app's scheduling, served by the scheduler in this process as
/// the signed-in web user.
struct WebScheduling {
    scheduler: Arc<Scheduler>,
}

impl Scheduling for WebScheduling {
    fn options(&self, user: String) -> Answer {
        let store = self.scheduler.store().clone();
        Box::pin(async move {
            // The user's assigned templates; a local account no `users`
            // object names is offered every template.
            let assigned = confero_scheduler::service::templates_of(&*store, &user);
            let templates: Vec<Value> = store
                .all(Kind::CoSpaceTemplate, None)
                .iter()
                .filter(|t| assigned.as_ref().is_none_or(|a| a.contains(&t.id)))
                .map(|t| {
                    let roles: Vec<Value> = store
                        .all(Kind::AccessMethodTemplate, Some(t.id))
                        .iter()
                        .map(|r| json!({"id": r.id.to_string(), "name": r.get("name").unwrap_or("")}))
                        .collect();
                    json!({"id": t.id.to_string(), "name": t.get("name").unwrap_or(""),
                           "description": t.get("description").unwrap_or(""), "roles": roles})
                })
                .collect();
            let spaces: Vec<Value> = confero_scheduler::service::spaces_of(&*store, &user)
                .into_iter()
                .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
                .collect();
            (200, json!({"templates": templates, "spaces": spaces}))
        })
    }

    fn meetings(&self, user: String, method: String, rest: String, query: String, body: Option<Value>) -> Answer {
        let scheduler = self.scheduler.clone();
        Box::pin(async move {
            let caller = Caller { name: user, web_user: true };
            let method = confero_scheduler::http::Method::from_bytes(method.as_bytes()).unwrap_or_default();
            let body = body.unwrap_or(Value::Null);
            let (status, body, _) =
                confero_scheduler::http::dispatch(&scheduler, &caller, &method, &rest, &query, &body).await;
            (status.as_u16(), body.unwrap_or(Value::Null))
        })
    }
}
