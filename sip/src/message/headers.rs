//! Typed views of the headers transactions and dialogs rely on. Each `parse`
//! returns `None` on a value it cannot read; the caller decides whether that
//! is a 400 or just an absent feature.

use super::Method;

/// `;name=value` parameters in order; a flag parameter has no value.
pub type Params = Vec<(String, Option<String>)>;

/// Splits `;a=b;c` parameters (the part after the first `;`).
fn parse_params(text: &str) -> Params {
    text.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, value)) => (name.trim().to_ascii_lowercase(), Some(value.trim().to_string())),
            None => (p.to_ascii_lowercase(), None),
        })
        .collect()
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
}

fn has_param(params: &Params, name: &str) -> bool {
    params.iter().any(|(n, _)| n == name)
}

/// One Via element (RFC 3261 §20.42, RFC 3581 rport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport, upper-case: UDP, TCP, TLS.
    pub transport: String,
    /// The sent-by host.
    pub host: String,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport, ...).
    pub params: Params,
}

impl Via {
    /// Parses `SIP/2.0/UDP host:port;params`.
    pub fn parse(value: &str) -> Option<Via> {
        let (protocol, rest) = value.trim().split_once(char::is_whitespace)?;
        let mut parts = protocol.split('/');
        let (name, version, transport) = (parts.next()?, parts.next()?, parts.next()?);
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" || parts.next().is_some() {
            return None;
        }
        let (sent_by, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (host, port) = split_host_port(sent_by.trim())?;
        Some(Via { transport: transport.trim().to_ascii_uppercase(), host, port, params: parse_params(params) })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch").filter(|b| !b.is_empty())
    }

    /// The `received` parameter a server added.
    pub fn received(&self) -> Option<&str> {
        param(&self.params, "received")
    }

    /// True when the client asked for symmetric response routing (RFC 3581).
    pub fn has_rport(&self) -> bool {
        has_param(&self.params, "rport")
    }

    /// The `rport` value a server filled in.
    pub fn rport(&self) -> Option<u16> {
        param(&self.params, "rport").and_then(|p| p.parse().ok())
    }

    /// `host:port` as sent, lower-cased: part of a transaction's identity.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host.to_ascii_lowercase()),
            None => self.host.to_ascii_lowercase(),
        }
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
pub(crate) fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() {
        return None;
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((format!("[{host}]"), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Some((host.to_string(), Some(port.parse().ok()?)))
        }
        Some(_) => None,
        None => Some((text.to_string(), None)),
    }
}

/// A name-addr or addr-spec with parameters: From, To, Contact, Route
/// (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The header value as received, for copying into later requests unchanged.
    pub raw: String,
    /// The display name, unquoted.
    pub display: Option<String>,
    /// The URI inside `<...>` (or the addr-spec).
    pub uri: String,
    /// Header parameters (outside the brackets).
    pub params: Params,
}

impl NameAddr {
    /// Parses `"Name" <sip:u@h>;tag=x`, `Name <sip:u@h>` or `sip:u@h;tag=x`.
    pub fn parse(value: &str) -> Option<NameAddr> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let (display, uri, rest) = if let Some(open) = find_unquoted(value, '<') {
            let close = value[open..].find('>')? + open;
            let display = value[..open].trim().trim_matches('"').trim();
            let display = (!display.is_empty()).then(|| display.to_string());
            (display, value[open + 1..close].trim().to_string(), &value[close + 1..])
        } else {
            // An addr-spec: parameters after the URI are header parameters.
            let (uri, rest) = match value.find(';') {
                Some(at) => (&value[..at], &value[at..]),
                None => (value, ""),
            };
            (None, uri.trim().to_string(), rest)
        };
        if uri.is_empty() || uri.contains(char::is_whitespace) {
            return None;
        }
        let params = parse_params(rest.trim().strip_prefix(';').unwrap_or(rest.trim()));
        Some(NameAddr { raw: value.to_string(), display, uri, params })
    }

    /// The tag parameter (dialog identity).
    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag").filter(|t| !t.is_empty())
    }

    /// Any other header parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// The position of `c` outside a quoted string.
fn find_unquoted(text: &str, c: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, ch) in text.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if ch == c && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// CSeq: sequence number and method (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (less than 2^31 per RFC 3261, accepted up to 2^32-1).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `123 INVITE`.
    pub fn parse(value: &str) -> Option<CSeq> {
        let mut parts = value.split_whitespace();
        let seq = parts.next()?.parse().ok()?;
        let method = Method::parse(parts.next()?);
        parts.next().is_none().then_some(CSeq { seq, method })
    }
}

/// Who refreshes a session (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The side that sent the INVITE.
    Uac,
    /// The side that answered it.
    Uas,
}

/// Session-Expires: the interval and who refreshes (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// Seconds.
    pub delta: u32,
    /// The refresher, if named.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses `1800;refresher=uac`.
    pub fn parse(value: &str) -> Option<SessionExpires> {
        let (delta, params) = value.split_once(';').unwrap_or((value, ""));
        let delta = delta.trim().parse().ok()?;
        let params = parse_params(params);
        let refresher = match param(&params, "refresher").map(str::to_ascii_lowercase).as_deref() {
            Some("uac") => Some(Refresher::Uac),
            Some("uas") => Some(Refresher::Uas),
            _ => None,
        };
        Some(SessionExpires { delta, refresher })
    }

    /// The header value.
    pub fn to_value(&self) -> String {
        match self.refresher {
            Some(Refresher::Uac) => format!("{};refresher=uac", self.delta),
            Some(Refresher::Uas) => format!("{};refresher=uas", self.delta),
            None => self.delta.to_string(),
        }
    }
}

/// RAck: which reliable provisional response a PRACK acknowledges (RFC 3262 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RAck {
    /// The RSeq of the provisional response.
    pub rseq: u32,
    /// The CSeq number of the INVITE.
    pub cseq: u32,
    /// The method of the INVITE's CSeq.
    pub method: Method,
}

impl RAck {
    /// Parses `1 314159 INVITE`.
    pub fn parse(value: &str) -> Option<RAck> {
        let mut parts = value.split_whitespace();
        let rseq = parts.next()?.parse().ok()?;
        let cseq = parts.next()?.parse().ok()?;
        let method = Method::parse(parts.next()?);
        parts.next().is_none().then_some(RAck { rseq, cseq, method })
    }
}
