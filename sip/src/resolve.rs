//! Locating a SIP server (RFC 3263), the decisions without the DNS: which
//! transports a request may use, which SRV names to ask and in what order,
//! how NAPTR services map to transports, and the order of SRV targets
//! (RFC 2782's priority and weighted choice). The shell asks the DNS and
//! feeds the answers back here.

use rand::RngCore;

use crate::message::SipUri;
use crate::transaction::Transport;

/// What the outbound rule allows for signalling (CMS `sipControlEncryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlEncryption {
    /// `encrypted`: TLS only.
    Encrypted,
    /// `unencrypted`: UDP or TCP only.
    Unencrypted,
    /// `auto`: whatever the URI and the DNS say.
    Auto,
}

impl ControlEncryption {
    /// From the rule's field; anything unknown is `auto`.
    pub fn parse(value: &str) -> ControlEncryption {
        match value {
            "encrypted" => ControlEncryption::Encrypted,
            "unencrypted" => ControlEncryption::Unencrypted,
            _ => ControlEncryption::Auto,
        }
    }
}

/// The next hop to locate: a URI's host, port and transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// The port, if the URI gives one (then no SRV lookup, RFC 3263 §4.2).
    pub port: Option<u16>,
    /// The transports allowed, in our order of preference; never empty.
    pub transports: Vec<Transport>,
}

/// Why a URI cannot be reached under a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopError {
    /// `sips:` or `;transport=tls` under `unencrypted`, or a plain
    /// `;transport=` under `encrypted`.
    EncryptionConflict,
    /// A `;transport=` we do not speak (sctp, ws).
    UnsupportedTransport,
}

impl Hop {
    /// The hop for `uri` under `encryption`: an explicit `;transport=` or
    /// `sips:` decides; otherwise TLS, TCP and UDP in that order as the rule
    /// allows (RFC 3263 §4.1 leaves the order to the client; we prefer the
    /// secure and the reliable).
    pub fn of(uri: &SipUri, encryption: ControlEncryption) -> Result<Hop, HopError> {
        let explicit = match uri.param("transport").map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("udp") => Some(Transport::Udp),
            Some("tcp") => Some(Transport::Tcp),
            Some("tls") => Some(Transport::Tls),
            Some(_) => return Err(HopError::UnsupportedTransport),
        };
        let transports = match (uri.secure, explicit, encryption) {
            (true, Some(Transport::Udp), _) => return Err(HopError::UnsupportedTransport),
            (true, _, ControlEncryption::Unencrypted) => return Err(HopError::EncryptionConflict),
            (true, _, _) => vec![Transport::Tls],
            (false, Some(Transport::Tls), ControlEncryption::Unencrypted) => return Err(HopError::EncryptionConflict),
            (false, Some(t), ControlEncryption::Encrypted) if t != Transport::Tls => {
                return Err(HopError::EncryptionConflict)
            }
            (false, Some(t), _) => vec![t],
            (false, None, ControlEncryption::Encrypted) => vec![Transport::Tls],
            (false, None, ControlEncryption::Unencrypted) => vec![Transport::Tcp, Transport::Udp],
            (false, None, ControlEncryption::Auto) => vec![Transport::Tls, Transport::Tcp, Transport::Udp],
        };
        let host = uri.host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(Hop { host, port: uri.port, transports })
    }

    /// The transport for an IP literal or a name with a port, where no SRV
    /// or NAPTR is asked (RFC 3263 §4.1): UDP unless it is not allowed, then
    /// the first allowed.
    pub fn direct_transport(&self) -> Transport {
        if self.transports.contains(&Transport::Udp) {
            Transport::Udp
        } else {
            self.transports[0]
        }
    }

    /// The SRV names to ask when no NAPTR answers, in preference order.
    pub fn srv_names(&self) -> Vec<(Transport, String)> {
        self.transports.iter().map(|t| (*t, srv_name(*t, &self.host))).collect()
    }
}

/// `_sips._tcp.example.com`, `_sip._tcp.…` or `_sip._udp.…`.
pub fn srv_name(transport: Transport, domain: &str) -> String {
    match transport {
        Transport::Tls => format!("_sips._tcp.{domain}"),
        Transport::Tcp => format!("_sip._tcp.{domain}"),
        Transport::Udp => format!("_sip._udp.{domain}"),
    }
}

/// The default port of a transport (RFC 3261 §19.1.2).
pub fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls => 5061,
        Transport::Tcp | Transport::Udp => 5060,
    }
}

/// The transport a NAPTR record's service field names (RFC 3263 §4.1).
pub fn naptr_transport(service: &str) -> Option<Transport> {
    match service.to_ascii_uppercase().as_str() {
        "SIPS+D2T" => Some(Transport::Tls),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIP+D2U" => Some(Transport::Udp),
        _ => None,
    }
}

/// One NAPTR record that matters to SIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower first.
    pub order: u16,
    /// Lower first among equal orders.
    pub preference: u16,
    /// The service field (`SIPS+D2T`, ...).
    pub service: String,
    /// The SRV name to ask next.
    pub replacement: String,
}

/// The SRV names NAPTR records lead to, for the transports `allowed`, in
/// the records' order then preference (RFC 3263 §4.1: services we do not
/// speak are dropped; the order is the domain's, not ours).
pub fn naptr_srv_names(mut records: Vec<Naptr>, allowed: &[Transport]) -> Vec<(Transport, String)> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter_map(|r| {
            let t = naptr_transport(&r.service)?;
            allowed.contains(&t).then(|| (t, r.replacement.trim_end_matches('.').to_string()))
        })
        .collect()
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Share of the choices among equal priorities.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The target host (`.` means the service is not offered).
    pub target: String,
}

/// The order to try `records` in (RFC 2782): by priority, and within a
/// priority a weighted random draw repeated until none is left (weight 0
/// records have a small chance of going first). A `.` target means "not
/// here" and is dropped.
pub fn order_srv(mut records: Vec<Srv>, rng: &mut dyn RngCore) -> Vec<Srv> {
    records.retain(|r| r.target != "." && !r.target.is_empty());
    records.sort_by_key(|r| (r.priority, r.weight));
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let mut group: Vec<Srv> = Vec::new();
        records.retain(|r| {
            if r.priority == priority {
                group.push(r.clone());
                false
            } else {
                true
            }
        });
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = if total == 0 { 0 } else { rng.next_u32() % (total + 1) };
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn hop(uri: &str, enc: ControlEncryption) -> Result<Hop, HopError> {
        Hop::of(&SipUri::parse(uri).unwrap(), enc)
    }

    #[test]
    fn the_uri_and_the_rule_decide_the_transports() {
        use ControlEncryption::*;
        use Transport::*;
        assert_eq!(hop("sip:a@example.com", Auto).unwrap().transports, [Tls, Tcp, Udp]);
        assert_eq!(hop("sip:a@example.com", Encrypted).unwrap().transports, [Tls]);
        assert_eq!(hop("sip:a@example.com", Unencrypted).unwrap().transports, [Tcp, Udp]);
        assert_eq!(hop("sips:a@example.com", Auto).unwrap().transports, [Tls]);
        assert_eq!(hop("sip:a@example.com;transport=TCP", Auto).unwrap().transports, [Tcp]);
        assert_eq!(hop("sip:a@example.com;transport=tls", Encrypted).unwrap().transports, [Tls]);
        assert_eq!(hop("sips:a@example.com", Unencrypted), Err(HopError::EncryptionConflict));
        assert_eq!(hop("sip:a@example.com;transport=udp", Encrypted), Err(HopError::EncryptionConflict));
        assert_eq!(hop("sip:a@example.com;transport=tls", Unencrypted), Err(HopError::EncryptionConflict));
        assert_eq!(hop("sip:a@example.com;transport=sctp", Auto), Err(HopError::UnsupportedTransport));
        let h = hop("sip:a@[::1]:5070", Auto).unwrap();
        assert_eq!((h.host.as_str(), h.port, h.direct_transport()), ("::1", Some(5070), Udp));
        assert_eq!(hop("sip:a@10.0.0.1", Encrypted).unwrap().direct_transport(), Tls);
        assert_eq!(
            hop("sip:a@example.com", Unencrypted).unwrap().srv_names(),
            [(Tcp, "_sip._tcp.example.com".to_string()), (Udp, "_sip._udp.example.com".to_string())]
        );
    }

    #[test]
    fn naptr_records_lead_to_srv_names_in_their_order_for_what_we_allow() {
        let r = |order, preference, service: &str, replacement: &str| Naptr {
            order,
            preference,
            service: service.into(),
            replacement: replacement.into(),
        };
        let records = vec![
            r(20, 10, "SIP+D2U", "_sip._udp.example.com."),
            r(10, 20, "SIP+D2T", "_sip._tcp.example.com."),
            r(10, 10, "SIPS+D2T", "_sips._tcp.example.com."),
            r(5, 10, "SIP+D2S", "_sip._sctp.example.com."),
        ];
        let all = naptr_srv_names(records.clone(), &[Transport::Tls, Transport::Tcp, Transport::Udp]);
        let names: Vec<_> = all.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["_sips._tcp.example.com", "_sip._tcp.example.com", "_sip._udp.example.com"]);
        let plain = naptr_srv_names(records, &[Transport::Tcp, Transport::Udp]);
        assert_eq!(plain[0].0, Transport::Tcp);
        assert_eq!(plain.len(), 2);
    }

    #[test]
    fn srv_targets_go_by_priority_then_by_weight() {
        let s = |priority, weight, target: &str| Srv { priority, weight, port: 5060, target: target.into() };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ordered = order_srv(vec![s(20, 0, "backup"), s(10, 0, "first"), s(10, 0, "."), s(30, 5, "last")], &mut rng);
        let names: Vec<_> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["first", "backup", "last"]);
        // Weights 90 and 10 at one priority: the heavy one goes first about
        // nine times in ten.
        let mut heavy_first = 0;
        for _ in 0..1000 {
            let o = order_srv(vec![s(10, 10, "light"), s(10, 90, "heavy")], &mut rng);
            assert_eq!(o.len(), 2);
            if o[0].target == "heavy" {
                heavy_first += 1;
            }
        }
        assert!((820..=960).contains(&heavy_first), "{heavy_first}");
    }
}
