//! Wiring of XMPP: the call bridge's XEP-0114 component link — which
//! transport (TLS unless `CONFERO_XMPP_COMPONENT_TLS=off`), which roots its
//! server's certificate must chain to (`callbridge trust xmpp`, else the web
//! PKI's and our own XMPP server's certificate), which DNS server answers
//! its SRV lookups — and our XMPP server (`confero xmpp ...`).

use std::sync::Arc;

use anyhow::Context;
use confero_api::alarms::Alarms;
use confero_api::xmpp_link::XmppLink;
use confero_store::Store;
use confero_xmpp::link::{ComponentClient, Transport};

use crate::config::Settings;

/// The component client of this call bridge.
pub fn component_client(
    settings: &Settings,
    store: Arc<dyn Store>,
    alarms: Arc<Alarms>,
    status: Arc<XmppLink>,
) -> anyhow::Result<ComponentClient> {
    let transport = if settings.xmpp_component_tls {
        let roots = match &settings.callbridge_xmpp_trust {
            Some(bundle) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in confero_https::tls::read_certs(bundle)? {
                    roots.add(cert).with_context(|| format!("{}: not a usable certificate", bundle.display()))?;
                }
                roots
            }
            None => {
                let mut roots = confero_xmpp::link::web_pki_roots();
                // Our own server's self-signed certificate, when it made one:
                // the call bridge in the same process (or with the same data
                // directory) attaches to it with no trust to configure.
                let own = settings.data_dir.join("xmpp-cert.pem");
                if own.exists() {
                    for cert in confero_https::tls::read_certs(&own)? {
                        roots.add(cert).with_context(|| format!("{}: not a usable certificate", own.display()))?;
                    }
                }
                roots
            }
        };
        Transport::Tls(Arc::new(roots))
    } else {
        Transport::Plain
    };
    Ok(ComponentClient {
        store,
        alarms,
        status,
        transport,
        dns_server: settings.xmpp_dns_server,
        handler: Arc::new(confero_xmpp::service::CallBridgeService),
    })
}

/// Starts our XMPP server's component port (the client port + 1).
pub async fn start_server(
    settings: &Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<confero_xmpp::server::RunningServer> {
    let domain = settings.xmpp_domain.clone().context("no XMPP domain")?;
    let (cert, key) = match (&settings.xmpp_cert, &settings.xmpp_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => confero_xmpp::server::ensure_certificate(&settings.data_dir, &domain).map_err(anyhow::Error::msg)?,
    };
    let tls = confero_https::tls::server_config(Some(&cert), Some(&key), &settings.data_dir)?;
    // The scaffold's configuration offers HTTP/1.1 by ALPN; XMPP offers none.
    let mut tls = (*tls).clone();
    tls.alpn_protocols.clear();
    let port = settings.xmpp_listen.port().checked_add(1).context("the component port would be past 65535")?;
    let config = confero_xmpp::server::ServerConfig {
        domain,
        component_listen: std::net::SocketAddr::new(settings.xmpp_listen.ip(), port),
        tls: Arc::new(tls),
        call_bridges: settings
            .xmpp_callbridges
            .iter()
            .map(|c| confero_xmpp::server::CallBridgeEntry { name: c.name.clone(), secret: c.secret.clone() })
            .collect(),
        limits: confero_xmpp::stream::Limits::default(),
    };
    Ok(confero_xmpp::server::start(config, shutdown).await?)
}
