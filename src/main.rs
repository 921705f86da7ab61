//! `confero`: the bridge (`confero run`), a web bridge alone (`confero
//! webbridge run`), and the MMP-style admin commands (`confero user
//! add|list|remove`, `confero webbridge3 ...`, `confero callbridge trust c2w`).

mod branding;
mod config;
mod mmp;
mod open_files;
mod scheduler;
mod web;
mod xmpp;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use confero::bridge::{Bridge, BridgeConfig, CallBridge};
use confero_api::alarms::Alarms;
use confero_api::cdr::CdrSender;
use confero_api::{self as api, Api};
use confero_https::users::{self, Role};
use confero_store::{SqliteStore, Store};
use rand::SeedableRng;
use tracing_subscriber::EnvFilter;

use config::Settings;

#[derive(Parser)]
#[command(name = "confero", version, about = "A Cisco Meeting Server compatible conferencing bridge")]
struct Cli {
    /// Settings file (TOML); environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts the bridge and its API.
    Run,
    /// API and web users (MMP `user` commands).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// A web bridge alone (an edge machine): `confero webbridge run`.
    Webbridge {
        #[command(subcommand)]
        action: WebbridgeAction,
    },
    /// The web bridge's settings, MMP style: `webbridge3`, `webbridge3 https
    /// listen|certs|frame-ancestors ...`, `webbridge3 c2w listen|certs|trust ...`.
    Webbridge3 { words: Vec<String> },
    /// The call bridge's settings, MMP style: `callbridge trust c2w|xmpp BUNDLE|none`.
    Callbridge { words: Vec<String> },
    /// The scheduler's settings, MMP style: `scheduler`, `scheduler status`,
    /// `scheduler https|c2w|email|timedLogging ...`, `scheduler enable|disable`.
    Scheduler { words: Vec<String> },
    /// Our XMPP server's settings, MMP style: `xmpp domain|listen|certs|
    /// callbridge add|add-secret|del|list|enable|disable|status ...`.
    Xmpp { words: Vec<String> },
}

#[derive(Subcommand)]
enum WebbridgeAction {
    /// Runs the web app and the C2W listener, and nothing else.
    Run,
}

#[derive(Subcommand)]
enum UserAction {
    /// Adds (or updates) a user; the password is read from stdin or a prompt.
    Add { name: String, role: String },
    /// Lists users and roles.
    List,
    /// Removes a user.
    Remove { name: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(|| LogLine(Vec::new()))
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // One crypto provider for the whole process (see ARCHITECTURE.md).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Run => run(settings),
        Command::User { action } => user(settings, action),
        Command::Webbridge { action: WebbridgeAction::Run } => web::run_alone(settings),
        Command::Webbridge3 { words } => mmp::webbridge3(&settings, &words),
        Command::Callbridge { words } => mmp::callbridge(&settings, &words),
        Command::Scheduler { words } => scheduler::command(&settings, &words),
        Command::Xmpp { words } => mmp::xmpp(&settings, &words),
    }
}

/// One formatted log event: written to stderr whole, and kept in the API's
/// recent log, which call diagnostics quote (`confero_api::diagnostics`).
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), &self.0);
        for line in String::from_utf8_lossy(&self.0).lines() {
            confero_api::diagnostics::recent_log().push(line);
        }
    }
}

pub(crate) fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Confirm password: ")?;
        if first != second {
            bail!("passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

fn user(settings: Settings, action: UserAction) -> anyhow::Result<()> {
    let store = SqliteStore::open(&settings.data_dir).context("opening the store")?;
    match action {
        UserAction::Add { name, role } => {
            let role = Role::parse(&role).with_context(|| format!("role must be admin, api or user, not {role:?}"))?;
            if name.is_empty() || name.contains(':') {
                bail!("a user name must be non-empty and contain no ':'");
            }
            let password = read_password()?;
            users::set_user(&store, &name, role, &password)?;
            println!("user {name} ({}) saved", role.as_str());
        }
        UserAction::List => {
            for (name, role) in users::list_users(&store)? {
                println!("{name}\t{role}");
            }
        }
        UserAction::Remove { name } => {
            if !users::remove_user(&store, &name)? {
                bail!("no user {name}");
            }
            println!("user {name} removed");
        }
    }
    Ok(())
}

/// Makes sure someone can use the API: the configured admin is created or
/// updated; with no users at all and no password given, one is generated and
/// printed once (only its hash is kept).
fn ensure_admin(store: &dyn Store, settings: &Settings) -> anyhow::Result<()> {
    if let Some(password) = &settings.admin_password {
        users::set_user(store, &settings.admin_user, Role::Admin, password)?;
        tracing::info!("API user {} set from configuration (password *****)", settings.admin_user);
    } else if users::list_users(store)?.is_empty() {
        let password = confero_store::schema::new_secret();
        users::set_user(store, &settings.admin_user, Role::Admin, &password)?;
        println!("Created API user {} with password {password}", settings.admin_user);
        println!("It is shown only this once; change it with `confero user add {} admin`.", settings.admin_user);
    }
    Ok(())
}

/// This call bridge's `hostId`: made once per data directory and kept in
/// `host-id`, so CDRs and license usage snapshots name the same bridge
/// across restarts.
fn host_id(dir: &std::path::Path) -> anyhow::Result<uuid::Uuid> {
    let path = dir.join("host-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            if let Ok(id) = uuid::Uuid::parse_str(text.trim()) {
                return Ok(id);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let id = uuid::Uuid::new_v4();
    std::fs::write(&path, id.to_string()).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// Hands `CONFERO_LDAP_TRUST` to the LDAP client, for LDAPS servers whose
/// certificates come from an enterprise CA.
pub(crate) fn install_ldap_trust(settings: &Settings) -> anyhow::Result<()> {
    if let Some(bundle) = &settings.ldap_trust {
        let certs = confero_https::tls::read_certs(bundle)
            .with_context(|| format!("the LDAP trust bundle {}", bundle.display()))?;
        confero_ldap::directory::set_trust(certs);
    }
    Ok(())
}

fn run(settings: Settings) -> anyhow::Result<()> {
    install_ldap_trust(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&settings.data_dir).context("opening the store")?);
        ensure_admin(&*store, &settings)?;
        confero_ldap::sync::resume(store.clone());
        let tls = confero_https::tls::server_config(
            settings.tls_cert.as_deref(),
            settings.tls_key.as_deref(),
            &settings.data_dir,
        )?;
        let alarms = Arc::new(Alarms::default());
        let host = host_id(&settings.data_dir)?;
        let cdr = CdrSender::new(store.clone(), alarms.clone(), host);
        tokio::spawn(cdr.clone().run());
        let (media_tx, media_events) = tokio::sync::mpsc::unbounded_channel();
        let sink: confero_media::runtime::EventSink = Arc::new(move |e| {
            let _ = media_tx.send(e);
        });
        let media_config = confero_media::runtime::RuntimeConfig {
            bind: settings.media_address.unwrap_or_else(|| settings.sip_listen.ip()),
            media_timeout: settings.media_timeout,
            workers: settings.media_workers,
            video_threads: settings.video_threads,
            mixer: confero_media::mixer::MixerConfig {
                opus: confero_media::codec::OpusConfig {
                    complexity: settings.opus_complexity,
                    bitrate: settings.opus_bitrate,
                    inband_fec: settings.opus_fec,
                    ..Default::default()
                },
                ..Default::default()
            },
        };
        let media = Arc::new(confero_media::runtime::MediaRuntime::start(media_config, sink)?);
        let limits = confero_https::Limits {
            idle_timeout: settings.api_idle_timeout,
            request_timeout: settings.api_request_timeout,
            ..confero_https::Limits::default()
        };
        let open_files = open_files::raise_to_hard_limit().context("reading the open-file limit")?;
        // Descriptors SIP must leave alone: the API's connections, and media
        // sockets, the database, logs and DNS.
        let mut sip_limits = confero::sip::StreamLimits::for_open_files(open_files, limits.max_connections + 128);
        sip_limits.idle_timeout = settings.sip_idle_timeout;
        tracing::info!(
            "open files: {open_files}; SIP TCP/TLS connections: at most {}, {} per source",
            sip_limits.max_connections,
            sip_limits.max_per_source
        );
        let (sip_commands, sip_queue) = tokio::sync::mpsc::unbounded_channel();
        let (sip_events_tx, sip_events) = tokio::sync::mpsc::unbounded_channel();
        let sip = confero::sip::start(
            settings.sip_listen,
            tls.clone(),
            confero::sip::client_tls(settings.sip_tls_trust.as_deref())?,
            settings.max_calls,
            sip_limits,
            sip_queue,
            sip_events_tx,
        )
        .await?;
        let branding = Arc::new(confero::bridge::branding::Branding::default());
        let config =
            BridgeConfig { video: settings.video, sip_local: Some(sip.local_addr()), branding: branding.clone() };
        let core = Bridge::new(store.clone(), media.clone(), config, Box::new(rand::rngs::StdRng::from_entropy()));
        let bridge = CallBridge::new(core, cdr.clone(), sip_commands);
        let locator = confero::sip::locate::Locator::new(settings.dns_server);
        tokio::spawn(bridge.clone().run(sip_events, media_events, locator));
        let api = Api::new(store.clone(), bridge.clone(), alarms.clone(), cdr.clone(), host);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        // License usage snapshots, every 5 minutes as CMS takes them
        // (CONFERO_LICENSE_SNAPSHOT_SECONDS shortens it for tests).
        let every = match std::env::var("CONFERO_LICENSE_SNAPSHOT_SECONDS").ok().filter(|v| !v.is_empty()) {
            Some(v) => std::time::Duration::from_secs(
                v.parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("CONFERO_LICENSE_SNAPSHOT_SECONDS {v:?} is not a positive number"))?,
            ),
            None => confero_api::license_usage::INTERVAL,
        };
        tokio::spawn(confero_api::license_usage::run(api.clone(), every, stopped()));
        tokio::spawn(branding::run(store.clone(), branding, stopped()));
        // A scheduler that cannot start is reported and left out too.
        let scheduling = scheduler::start(&settings, store.clone(), &stopped).await.unwrap_or_else(|e| {
            tracing::error!("the scheduler did not start, running without it: {e:#}");
            None
        });
        // A web bridge that cannot start (its port taken, a bad certificate)
        // is reported and left out: SIP and the API keep serving.
        let web_bridge = if settings.web {
            match web::start_embedded(&settings, store.clone(), &tls, stopped(), scheduling).await {
                Ok(running) => Some(running),
                Err(e) => {
                    tracing::error!("the web bridge did not start, running without it: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        if settings.c2w_links {
            let client =
                web::c2w_client(&settings, store.clone(), bridge.clone(), alarms.clone(), api.web_links.clone())?;
            tokio::spawn(client.run(stopped()));
        }
        // Our XMPP server, when a domain is set: like the web bridge, one that
        // cannot start is reported and left out.
        let xmpp_server = if settings.xmpp_server {
            match xmpp::start_server(&settings, stopped()).await {
                Ok(running) => Some(running),
                Err(e) => {
                    tracing::error!("the XMPP server did not start, running without it: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        if settings.xmpp_link {
            let component = xmpp::component_client(&settings, store.clone(), alarms, api.xmpp_link.clone())?;
            tokio::spawn(component.run(stopped()));
        }
        let listener = tokio::net::TcpListener::bind(settings.api_listen)
            .await
            .with_context(|| format!("binding the API to {}", settings.api_listen))?;
        tracing::info!("API listening on https://{}/api/v1/", listener.local_addr()?);
        api::serve(api, listener, tls, limits, shutdown_signal()).await;
        let _ = stop_tx.send(true);
        if let Some(server) = xmpp_server {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), server.task).await;
        }
        if let Some(web) = web_bridge {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), web.task).await;
        }
        // Graceful shutdown: every leg is hung up and told in CDRs, the far
        // ends' answers to our BYEs and the CDR receivers get a bounded wait,
        // then the media workers stop.
        bridge.shutdown();
        if !sip.drained(SHUTDOWN_SIP_WAIT).await {
            tracing::warn!("shutdown: SIP calls still ending after {SHUTDOWN_SIP_WAIT:?}");
        }
        if !cdr.flush(SHUTDOWN_CDR_WAIT).await {
            tracing::warn!("shutdown: CDRs still undelivered after {SHUTDOWN_CDR_WAIT:?}");
        }
        drop(bridge);
        drop(media);
        tracing::info!("stopped");
        Ok(())
    })
}

/// How long a shutdown waits for the far ends to answer our BYEs.
const SHUTDOWN_SIP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// How long a shutdown waits for CDR receivers to take the last records.
const SHUTDOWN_CDR_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}
