//! Locating a dial-out's next hop over the DNS (RFC 3263): the queries, in
//! their own task off the bridge's lock. What to ask and how to order the
//! answers is `confero_sip::resolve` (sans-IO); this only asks.
//!
//! A name with a port is looked up by A/AAAA alone. A name without one:
//! NAPTR first (services SIPS+D2T, SIP+D2T, SIP+D2U, as the rule allows),
//! else SRV `_sips._tcp`, `_sip._tcp`, `_sip._udp` in that order; each SRV
//! set ordered by priority and weight, each target's addresses IPv4 first;
//! with no SRV at all, the name's own addresses on the default port.
//!
//! The system's resolver configuration (and hosts file) is used, or the one
//! server `CONFERO_DNS_SERVER` names (tests run their own on loopback);
//! where the system has none, the C library's `getaddrinfo` (A/AAAA only).

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use confero_sip::resolve::{self, Hop, Naptr, Srv};
use confero_sip::transaction::{Peer, Transport};
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Finds the servers for a hop.
pub struct Locator {
    dns: Option<TokioResolver>,
    rng: Mutex<StdRng>,
}

impl Locator {
    /// Over `server` if given, else the system's configuration.
    pub fn new(server: Option<SocketAddr>) -> Locator {
        let dns = match server {
            Some(s) => {
                let servers = NameServerConfigGroup::from_ips_clear(&[s.ip()], s.port(), true);
                let config = ResolverConfig::from_parts(None, vec![], servers);
                Some(TokioResolver::builder_with_config(config, TokioConnectionProvider::default()).build())
            }
            None => match TokioResolver::builder_tokio() {
                Ok(builder) => Some(builder.build()),
                Err(e) => {
                    tracing::warn!("DNS: no system resolver configuration ({e}); using getaddrinfo");
                    None
                }
            },
        };
        Locator { dns, rng: Mutex::new(StdRng::from_entropy()) }
    }

    /// The servers to try for `hop`, best first; empty when nothing resolves.
    pub async fn locate(&self, hop: &Hop) -> Vec<Peer> {
        if let Ok(ip) = hop.host.parse::<IpAddr>() {
            let transport = hop.direct_transport();
            return vec![Peer { transport, addr: SocketAddr::new(ip, port_or_default(hop.port, transport)) }];
        }
        if let Some(port) = hop.port {
            let transport = hop.direct_transport();
            return self.addresses(&hop.host, port).await.into_iter().map(|addr| Peer { transport, addr }).collect();
        }
        let Some(dns) = &self.dns else {
            let transport = hop.direct_transport();
            let port = resolve::default_port(transport);
            return self.addresses(&hop.host, port).await.into_iter().map(|addr| Peer { transport, addr }).collect();
        };
        let mut names = self.naptr(dns, hop).await;
        if names.is_empty() {
            names = hop.srv_names();
        }
        let mut out = Vec::new();
        let mut any_srv = false;
        for (transport, name) in names {
            let records = srv(dns, &name).await;
            any_srv |= !records.is_empty();
            let ordered = {
                let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                resolve::order_srv(records, &mut *rng)
            };
            for record in ordered {
                for addr in self.addresses(&record.target, record.port).await {
                    out.push(Peer { transport, addr });
                }
            }
        }
        if !any_srv {
            let transport = hop.direct_transport();
            let port = resolve::default_port(transport);
            out = self.addresses(&hop.host, port).await.into_iter().map(|addr| Peer { transport, addr }).collect();
        }
        out
    }

    async fn naptr(&self, dns: &TokioResolver, hop: &Hop) -> Vec<(Transport, String)> {
        let Ok(answer) = dns.lookup(absolute(&hop.host), RecordType::NAPTR).await else { return Vec::new() };
        let records = answer
            .iter()
            .filter_map(|r| match r {
                RData::NAPTR(n) if n.flags().eq_ignore_ascii_case(b"s") => Some(Naptr {
                    order: n.order(),
                    preference: n.preference(),
                    service: String::from_utf8_lossy(n.services()).into_owned(),
                    replacement: n.replacement().to_ascii(),
                }),
                _ => None,
            })
            .collect();
        resolve::naptr_srv_names(records, &hop.transports)
    }

    /// A name's addresses with `port`, IPv4 first (the embedded default's
    /// SIP socket is IPv4).
    async fn addresses(&self, host: &str, port: u16) -> Vec<SocketAddr> {
        let mut all: Vec<SocketAddr> = match &self.dns {
            Some(dns) => match dns.lookup_ip(absolute(host)).await {
                Ok(ips) => ips.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
                // The hosts file and search domains: the name as given.
                Err(_) => match dns.lookup_ip(host).await {
                    Ok(ips) => ips.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
                    Err(_) => Vec::new(),
                },
            },
            None => match tokio::net::lookup_host((host, port)).await {
                Ok(addrs) => addrs.collect(),
                Err(_) => Vec::new(),
            },
        };
        all.sort_by_key(|a| !a.is_ipv4());
        all.dedup();
        all
    }
}

async fn srv(dns: &TokioResolver, name: &str) -> Vec<Srv> {
    match dns.srv_lookup(absolute(name)).await {
        Ok(answer) => answer
            .iter()
            .map(|r| Srv {
                priority: r.priority(),
                weight: r.weight(),
                port: r.port(),
                target: r.target().to_ascii().trim_end_matches('.').to_string(),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn port_or_default(port: Option<u16>, transport: Transport) -> u16 {
    port.unwrap_or_else(|| resolve::default_port(transport))
}
