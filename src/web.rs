//! Wiring of the web bridge and of this call bridge's C2W links: which
//! certificates each side uses (configured, else the local CA in the data
//! directory), and the registration of the embedded web bridge as a
//! `webBridges` object so the call bridge links to it by itself.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use confero_api::alarms::Alarms;
use confero_api::bridge::BridgeHandle;
use confero_api::web_links::WebBridgeLinks;
use confero_store::schema::{validate_changes, Kind};
use confero_store::{SqliteStore, Store};
use confero_webbridge::pki::{self, C2wIdentity, LocalCa};
use confero_webbridge::{RunningWebBridge, WebBridgeConfig};

use crate::config::Settings;

/// The web bridge's C2W identity: configured key, chain and bundle, each
/// falling back to the local CA's.
pub fn web_bridge_identity(settings: &Settings) -> anyhow::Result<C2wIdentity> {
    let ca = LocalCa::ensure(&settings.data_dir)?;
    let (key, cert) = match (&settings.c2w_key, &settings.c2w_cert) {
        (Some(k), Some(c)) => (k.clone(), c.clone()),
        _ => (ca.web_bridge_key, ca.web_bridge_cert),
    };
    Ok(C2wIdentity { key, cert, trust: settings.c2w_trust.clone().unwrap_or(ca.ca_cert) })
}

/// The call bridge's C2W identity: the local CA's client certificate, and
/// `callbridge trust c2w` (else the local CA) for the web bridges'.
pub fn call_bridge_identity(settings: &Settings) -> anyhow::Result<C2wIdentity> {
    let ca = LocalCa::ensure(&settings.data_dir)?;
    Ok(C2wIdentity {
        key: ca.call_bridge_key,
        cert: ca.call_bridge_cert,
        trust: settings.callbridge_c2w_trust.clone().unwrap_or(ca.ca_cert),
    })
}

fn config(settings: &Settings, api_tls: &Arc<rustls::ServerConfig>) -> anyhow::Result<WebBridgeConfig> {
    let web_tls = match (&settings.web_tls_cert, &settings.web_tls_key) {
        (Some(c), Some(k)) => confero_https::tls::server_config(Some(c), Some(k), &settings.data_dir)?,
        _ => api_tls.clone(),
    };
    let identity = web_bridge_identity(settings)?;
    Ok(WebBridgeConfig {
        web_listen: settings.web_listen,
        public_url: settings.web_public_url.clone(),
        web_tls,
        frame_ancestors: settings.web_frame_ancestors.clone(),
        c2w_listen: settings.c2w_listen,
        c2w_tls: pki::server_config(&identity).context("the C2W certificate, key or trust bundle")?,
        limits: confero_https::Limits::default(),
        scheduling: None,
        directory: None,
    })
}

/// Starts the web bridge inside `confero run` and registers it.
pub async fn start_embedded(
    settings: &Settings,
    store: Arc<dyn Store>,
    api_tls: &Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    scheduling: Option<Arc<dyn confero_webbridge::app::scheduling::Scheduling>>,
) -> anyhow::Result<RunningWebBridge> {
    let guid = confero_webbridge::guid(&settings.data_dir)?;
    let mut config = config(settings, api_tls)?;
    config.scheduling = scheduling;
    config.directory = Some(confero_ldap::signin::LdapAccounts::new(store.clone()));
    let running = confero_webbridge::start(config, store.clone(), guid, shutdown).await?;
    register_local(&*store, &settings.data_dir, running.c2w_addr)?;
    Ok(running)
}

/// The embedded web bridge as a `webBridges` object, made once: its id is
/// kept in `webbridge-registered`, so an administrator who deletes the
/// object is not overruled, and its `url` follows the C2W address.
fn register_local(store: &dyn Store, data_dir: &Path, c2w: std::net::SocketAddr) -> anyhow::Result<()> {
    let host = if c2w.ip().is_unspecified() { "127.0.0.1".to_string() } else { c2w.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let url = format!("c2w://{host}:{}", c2w.port());
    let marker = data_dir.join("webbridge-registered");
    let spec = confero_store::schema::spec(Kind::WebBridge);
    let form = confero_store::form::Form::parse(format!("url={url}").as_bytes())?;
    let changes = validate_changes(spec.fields, &form, false)?;
    match std::fs::read_to_string(&marker).ok().and_then(|t| uuid::Uuid::parse_str(t.trim()).ok()) {
        Some(id) => {
            if let Some(object) = store.get(Kind::WebBridge, id) {
                if object.get("url") != Some(url.as_str()) {
                    store.update(Kind::WebBridge, id, &changes)?;
                }
            }
        }
        None => {
            let object = store.create(Kind::WebBridge, None, &changes)?;
            std::fs::write(&marker, object.id.to_string()).with_context(|| format!("writing {}", marker.display()))?;
            tracing::info!("registered the local web bridge as webBridges/{} ({url})", object.id);
        }
    }
    Ok(())
}

/// This call bridge's C2W client.
pub fn c2w_client(
    settings: &Settings,
    store: Arc<dyn Store>,
    bridge: Arc<dyn BridgeHandle>,
    alarms: Arc<Alarms>,
    links: Arc<WebBridgeLinks>,
) -> anyhow::Result<confero_webbridge::c2w::client::C2wClient> {
    let identity = call_bridge_identity(settings)?;
    let tls = pki::client_config(&identity).context("the call bridge's C2W certificate or trust bundle")?;
    Ok(confero_webbridge::c2w::client::C2wClient { store, bridge, alarms, links, tls })
}

/// `confero webbridge run`: the web app and C2W alone, as on an edge
/// machine; web users sign in against this data directory's users (local,
/// and LDAP-imported ones by a bind to their directory).
pub fn run_alone(settings: Settings) -> anyhow::Result<()> {
    crate::install_ldap_trust(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&settings.data_dir).context("opening the store")?);
        let api_tls = confero_https::tls::server_config(
            settings.tls_cert.as_deref(),
            settings.tls_key.as_deref(),
            &settings.data_dir,
        )?;
        let guid = confero_webbridge::guid(&settings.data_dir)?;
        let mut config = config(&settings, &api_tls)?;
        config.directory = Some(confero_ldap::signin::LdapAccounts::new(store.clone()));
        let running = confero_webbridge::start(config, store, guid, crate::shutdown_signal()).await?;
        let _ = running.task.await;
        tracing::info!("stopped");
        Ok(())
    })
}
