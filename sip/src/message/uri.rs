//! SIP and SIPS URIs (RFC 3261 §19.1), as much as routing needs: the user
//! part resolves a space, host and port say where to send.

use super::headers::{split_host_port, Params};

/// A `sip:` or `sips:` URI. Other schemes (tel:) are not routable here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// True for `sips:`.
    pub secure: bool,
    /// The user part, percent-decoding left to the dial plan.
    pub user: Option<String>,
    /// The host (IPv6 in brackets).
    pub host: String,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters (transport, lr, ...), names lower-cased.
    pub params: Params,
}

impl SipUri {
    /// Parses `sip:user:password@host:port;params?headers`.
    pub fn parse(text: &str) -> Option<SipUri> {
        let text = text.trim();
        let (scheme, rest) = text.split_once(':')?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "sip" => false,
            "sips" => true,
            _ => return None,
        };
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostport, params) = hostpart.split_once(';').unwrap_or((hostpart, ""));
        let (host, port) = split_host_port(hostport)?;
        if host.contains(char::is_whitespace) {
            return None;
        }
        let user = userinfo.map(|u| u.split_once(':').map_or(u, |(user, _)| user).to_string());
        let params = params
            .split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
                None => (p.to_ascii_lowercase(), None),
            })
            .collect();
        Some(SipUri { secure, user: user.filter(|u| !u.is_empty()), host, port, params })
    }

    /// A URI parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    /// True when the URI names a loose router (`;lr`, RFC 3261 §16.12).
    pub fn is_loose_router(&self) -> bool {
        self.params.iter().any(|(n, _)| n == "lr")
    }
}
