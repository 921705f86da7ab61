//! Wiring of XMPP: the call bridge's XEP-0114 component link — which
//! transport (TLS unless `CONFERO_XMPP_COMPONENT_TLS=off`), which roots its
//! server's certificate must chain to (`callbridge trust xmpp`, else the web
//! PKI's and our own XMPP server's certificate), which DNS server answers
//! its SRV lookups — and our XMPP server (`confero xmpp ...`).

use std::sync::Arc;

use anyhow::Context;
use confero_api::alarms::Alarms;
use confero_api::xmpp_link::XmppLink;
use confero_https::throttle::ThrottlePolicy;
use confero_https::users::{Authenticator, Verdict, WEB_ROLES};
use confero_store::Store;
use confero_xmpp::element::Element;
use confero_xmpp::link::{error_reply, ComponentClient, ComponentConfig, StanzaHandler, Transport};
use confero_xmpp::server::{NS_CONFERO_AUTH, NS_CONFERO_SPACES};
use confero_xmpp::service::{result, CallBridgeService};

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
    let (store_for_handler, store_for_auth) = (store.clone(), store.clone());
    Ok(ComponentClient {
        store,
        alarms,
        status,
        transport,
        dns_server: settings.dns_server,
        handler: Arc::new(CallBridgeXmpp {
            store: store_for_handler,
            auth: Arc::new(Authenticator::for_roles(store_for_auth, ThrottlePolicy::default(), WEB_ROLES)),
            runtime: tokio::runtime::Handle::current(),
            web: settings.web_listen,
        }),
    })
}

/// XEP-0030 items.
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// Our query for a space's join details.
pub const NS_CONFERO_JOIN: &str = "urn:confero:xmpp:join";

/// What the call bridge answers over its component link, beyond
/// [`CallBridgeService`]: from its XMPP server, a web user's login
/// (`auth`, checked like the web app's sign-in: `user` role, Argon2,
/// throttled per source), their SCRAM credential (`scram`, for a SCRAM
/// login the server checks) and their spaces (`spaces`, the roster); from a
/// signed-in user, their spaces (disco#items) and a space's join details
/// (`join` to `<callId>@<component>`: URI, call ID, web link).
struct CallBridgeXmpp {
    store: Arc<dyn Store>,
    auth: Arc<Authenticator>,
    runtime: tokio::runtime::Handle,
    web: std::net::SocketAddr,
}

impl CallBridgeXmpp {
    fn spaces(&self, config: &ComponentConfig, user: &str) -> Vec<Element> {
        confero_webbridge::c2w::client::spaces_of(&*self.store, user)
            .into_iter()
            .map(|s| {
                Element::new("item", NS_DISCO_ITEMS)
                    .attr("jid", &format!("{}@{}", s.call_id, config.jid()))
                    .attr("name", &s.name)
            })
            .collect()
    }

    fn web_link(&self, call_id: &str, secret: Option<&str>) -> String {
        let host = if self.web.ip().is_unspecified() { "127.0.0.1".to_string() } else { self.web.ip().to_string() };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let mut link = format!("https://{host}:{}/meeting/{call_id}", self.web.port());
        if let Some(s) = secret {
            link.push_str(&format!("?secret={s}"));
        }
        link
    }
}

impl StanzaHandler for CallBridgeXmpp {
    fn handle(&self, config: &ComponentConfig, stanza: &Element) -> Vec<Element> {
        if stanza.name != "iq" || stanza.get_attr("type") != Some("get") {
            return CallBridgeService.handle(config, stanza);
        }
        let from = stanza.get_attr("from").unwrap_or_default().to_ascii_lowercase();
        let from_server = from == config.domain;
        // A user of our domain, as the server stamped it.
        let user = from
            .split('/')
            .next()
            .and_then(|bare| bare.strip_suffix(&format!("@{}", config.domain)))
            .map(str::to_string);
        let ns = |n: &str| stanza.elements().any(|e| e.ns == n);
        if from_server && stanza.find("scram", NS_CONFERO_AUTH).is_some() {
            let user = stanza.find("scram", NS_CONFERO_AUTH).and_then(|q| q.get_attr("user")).unwrap_or_default();
            return match confero_https::users::scram_credential(&*self.store, user) {
                Some(c) => {
                    vec![result(stanza).child(Element::new("scram", NS_CONFERO_AUTH).attr("credential", &c.to_text()))]
                }
                None => error_reply(stanza, "cancel", "item-not-found").into_iter().collect(),
            };
        }
        if from_server && ns(NS_CONFERO_AUTH) {
            let Some(q) = stanza.find("auth", NS_CONFERO_AUTH) else { return Vec::new() };
            let field = |n: &str| q.find(n, NS_CONFERO_AUTH).map(|e| e.text_content()).unwrap_or_default();
            let (name, password) = (field("user"), field("password"));
            let source = q.get_attr("source").and_then(|s| s.parse().ok()).unwrap_or([127, 0, 0, 1].into());
            let verdict = self.runtime.block_on(self.auth.check(source, &name, &password));
            tracing::info!("XMPP: login of {name:?} through the XMPP server: {verdict:?}");
            return match verdict {
                Verdict::Allowed => vec![result(stanza)],
                _ => error_reply(stanza, "auth", "not-authorized").into_iter().collect(),
            };
        }
        if from_server && ns(NS_CONFERO_SPACES) {
            let user = stanza.find("spaces", NS_CONFERO_SPACES).and_then(|q| q.get_attr("user")).unwrap_or_default();
            let mut list = Element::new("spaces", NS_CONFERO_SPACES);
            for item in self.spaces(config, user) {
                let mut space = Element::new("space", NS_CONFERO_SPACES);
                space.attrs = item.attrs;
                list = list.child(space);
            }
            return vec![result(stanza).child(list)];
        }
        let Some(user) = user else { return CallBridgeService.handle(config, stanza) };
        if ns(NS_DISCO_ITEMS) && stanza.get_attr("to").is_some_and(|t| t.eq_ignore_ascii_case(&config.jid())) {
            let mut query = Element::new("query", NS_DISCO_ITEMS);
            query.children = self.spaces(config, &user).into_iter().map(confero_xmpp::element::Node::Element).collect();
            return vec![result(stanza).child(query)];
        }
        if ns(NS_CONFERO_JOIN) {
            let to = stanza.get_attr("to").unwrap_or_default();
            let call_id = to.split('@').next().unwrap_or_default();
            let mine = confero_webbridge::c2w::client::spaces_of(&*self.store, &user);
            let Some(space) = mine.iter().find(|s| s.call_id == call_id) else {
                return error_reply(stanza, "cancel", "item-not-found").into_iter().collect();
            };
            let uri = self
                .store
                .all(confero_store::schema::Kind::CoSpace, None)
                .into_iter()
                .find(|o| o.get("callId") == Some(call_id))
                .and_then(|o| o.get("uri").map(str::to_string));
            let mut details = Element::new("space", NS_CONFERO_JOIN)
                .attr("name", &space.name)
                .attr("callId", &space.call_id)
                .attr("webLink", &self.web_link(&space.call_id, space.secret.as_deref()));
            if let Some(uri) = uri {
                details.set_attr("uri", &uri);
            }
            return vec![result(stanza).child(details)];
        }
        CallBridgeService.handle(config, stanza)
    }
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
        client_listen: settings.xmpp_listen,
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
