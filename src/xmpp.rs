//! Wiring of the call bridge's XEP-0114 component link: which transport
//! (TLS unless `CONFERO_XMPP_COMPONENT_TLS=off`), which roots its server's
//! certificate must chain to (`callbridge trust xmpp`, else the web PKI's),
//! and which DNS server answers its SRV lookups.

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
            None => confero_xmpp::link::web_pki_roots(),
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
