//! The web bridge (CMS's Web Bridge 3): the web app browsers join meetings
//! with, on its own HTTPS listener, and C2W, the mutually authenticated
//! WebSocket links between call bridges and web bridges.
//!
//! Both ends of C2W live here: [`c2w::server`] is the web bridge's (it
//! listens, greets with its guid and sends the browsers' requests), and
//! [`c2w::client`] the call bridge's (it connects to every `webBridges`
//! object and answers through the bridge handle). [`c2w::frame`] is the
//! sans-IO wire format both speak. In one `confero run` process both run, the
//! call bridge linking to its own web bridge over loopback, exactly as it
//! would to a web bridge on an edge machine (`confero webbridge run`).
//!
//! This crate knows no RTP: a browser's offer and our answer pass through as
//! text; media goes from the browser to the call bridge directly.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod app;
pub mod c2w;
pub mod customization;
pub mod pki;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use confero_https::throttle::ThrottlePolicy;
use confero_https::users::{Authenticator, WEB_ROLES};
use confero_store::Store;

/// What a web bridge needs to run.
pub struct WebBridgeConfig {
    /// The web app's HTTPS listener.
    pub web_listen: SocketAddr,
    /// Where browsers reach the web app (`https://host:port`), announced to
    /// call bridges for their join links; `https://` + the bound address
    /// when `None`.
    pub public_url: Option<String>,
    /// Its TLS configuration.
    pub web_tls: Arc<rustls::ServerConfig>,
    /// The CSP `frame-ancestors` value.
    pub frame_ancestors: String,
    /// The C2W listener.
    pub c2w_listen: SocketAddr,
    /// Its TLS configuration (client certificates required).
    pub c2w_tls: Arc<rustls::ServerConfig>,
    /// The HTTPS scaffold's limits for the web app.
    pub limits: confero_https::Limits,
    /// The scheduler beside this web bridge, if any (`confero run`'s).
    pub scheduling: Option<Arc<dyn app::scheduling::Scheduling>>,
    /// Accounts that sign in by another system's check (LDAP-imported
    /// users, by a bind to the directory), beside the local `user`s.
    pub directory: Option<Arc<dyn confero_https::users::Directory>>,
}

/// Why a web bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebBridgeError {
    /// A listener could not bind.
    #[error("binding {what} to {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The guid file could not be read or written.
    #[error("{0}: {1}")]
    Guid(std::path::PathBuf, std::io::Error),
}

/// The web bridge's guid, made once and kept in `data_dir/webbridge-guid`,
/// so call bridges see the same one across restarts.
pub fn guid(data_dir: &Path) -> Result<String, WebBridgeError> {
    let path = data_dir.join("webbridge-guid");
    match std::fs::read_to_string(&path) {
        Ok(text) if uuid::Uuid::parse_str(text.trim()).is_ok() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(WebBridgeError::Guid(path, e)),
    }
    let guid = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &guid).map_err(|e| WebBridgeError::Guid(path, e))?;
    Ok(guid)
}

/// A started web bridge: the addresses it listens on, and the task serving
/// both listeners until the shutdown future resolves.
pub struct RunningWebBridge {
    /// Where the web app listens.
    pub web_addr: SocketAddr,
    /// Where C2W listens.
    pub c2w_addr: SocketAddr,
    /// Ends when both listeners have stopped.
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds both listeners and serves them until `shutdown` resolves. Web
/// users sign in against `store`'s `user`-role users, and the directory's
/// accounts when there is one.
pub async fn start(
    config: WebBridgeConfig,
    store: Arc<dyn Store>,
    guid: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunningWebBridge, WebBridgeError> {
    let bind = |what: &'static str, addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|source| WebBridgeError::Bind { what, addr, source })
    };
    let web = bind("the web app", config.web_listen).await?;
    let c2w = bind("C2W", config.c2w_listen).await?;
    let web_addr =
        web.local_addr().map_err(|source| WebBridgeError::Bind { what: "web", addr: config.web_listen, source })?;
    let c2w_addr =
        c2w.local_addr().map_err(|source| WebBridgeError::Bind { what: "C2W", addr: config.c2w_listen, source })?;
    tracing::info!("web app listening on https://{web_addr}/");
    tracing::info!("C2W listening on c2w://{c2w_addr} (web bridge guid {guid})");
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("https://{web_addr}"));
    let server = c2w::server::C2wServer::new(guid, Some(public_url));
    let mut auth = Authenticator::for_roles(store, ThrottlePolicy::default(), WEB_ROLES);
    if let Some(directory) = config.directory.clone() {
        auth = auth.with_directory(directory);
    }
    let auth = Arc::new(auth);
    let scheduling =
        config.scheduling.clone().unwrap_or_else(|| Arc::new(app::scheduling::C2wScheduling::new(server.clone())));
    let app = app::WebApp::new(server.clone(), auth, &config.frame_ancestors, scheduling);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let handler = move |peer, req| app.clone().handle(peer, req);
        let web_task =
            confero_https::serve("web app", web, config.web_tls, config.limits, stopped(stop_rx.clone()), handler);
        let c2w_task = server.serve(c2w, config.c2w_tls, stopped(stop_rx));
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        tokio::join!(web_task, c2w_task, signal);
    });
    Ok(RunningWebBridge { web_addr, c2w_addr, task })
}
