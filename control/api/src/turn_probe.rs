//! `turnServers/<id>/status`: whether this call bridge reaches the TURN
//! server, measured as CMS does by a STUN Binding request (RFC 5389) to its
//! `serverAddress` over UDP: the round trip, and the address the server saw
//! the request come from (which differs from ours behind a NAT).
//!
//! The codec is sans-IO ([`binding_request`], [`mapped_address`]); [`probe`]
//! is the blocking shell the API runs on its blocking thread, bounded by a
//! deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// STUN's magic cookie (RFC 5389 §6).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Binding request and success response.
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// STUN's port when `serverAddress` names none.
pub const DEFAULT_PORT: u16 = 3478;
/// When requests are (re)sent, from the start; the answer must come before
/// [`DEADLINE`]. RFC 5389's schedule, shortened: an API client waits.
const SENDS: [Duration; 3] = [Duration::ZERO, Duration::from_millis(250), Duration::from_millis(750)];
/// How long a probe may take in all.
pub const DEADLINE: Duration = Duration::from_millis(1500);

/// A Binding request without attributes (a TURN server answers it without
/// credentials).
pub fn binding_request(transaction: &[u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(transaction);
    m
}

/// The address a Binding success response for `transaction` reports
/// (XOR-MAPPED-ADDRESS, else the older MAPPED-ADDRESS); `None` for anything
/// else, however malformed.
pub fn mapped_address(message: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    let header = message.get(..20)?;
    if u16::from_be_bytes([header[0], header[1]]) != BINDING_SUCCESS
        || u32::from_be_bytes([header[4], header[5], header[6], header[7]]) != MAGIC_COOKIE
        || &header[8..20] != transaction
    {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut attributes = message.get(20..20 + length)?;
    let mut plain = None;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        match kind {
            XOR_MAPPED_ADDRESS => return address(value, Some(transaction)),
            MAPPED_ADDRESS => plain = address(value, None),
            _ => {}
        }
        // Attributes are padded to four bytes.
        let next = 4 + len.div_ceil(4) * 4;
        attributes = attributes.get(next..).unwrap_or(&[]);
    }
    plain
}

/// An address attribute's value; XORed with the cookie (and, for IPv6, the
/// transaction) when `xor` gives the transaction.
fn address(value: &[u8], xor: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    if xor.is_some() {
        port ^= u16::from_be_bytes([cookie[0], cookie[1]]);
    }
    let ip = match family {
        0x01 => {
            let mut b: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            if xor.is_some() {
                for (x, c) in b.iter_mut().zip(cookie) {
                    *x ^= c;
                }
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        0x02 => {
            let mut b: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            if let Some(t) = xor {
                let mask = cookie.iter().chain(t.iter());
                for (x, m) in b.iter_mut().zip(mask) {
                    *x ^= m;
                }
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `serverAddress` is not an address or a name that resolves.
    BadAddress,
    /// No answer before the deadline.
    Unreachable(SocketAddr),
    /// Answered: the server, the round trip and where it saw us from.
    Reachable {
        /// The server asked.
        server: SocketAddr,
        /// From the first request sent to the answer.
        round_trip: Duration,
        /// Our address as the server saw it.
        mapped: SocketAddr,
    },
}

/// `serverAddress` (`host`, `host:port`, `[v6]:port`) as a socket address,
/// resolving a name.
pub fn server_address(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Some(a);
    }
    if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let with_port = if text.contains(':') { text.to_string() } else { format!("{text}:{DEFAULT_PORT}") };
    with_port.to_socket_addrs().ok()?.next()
}

/// Sends Binding requests to `server` and waits for the answer, at most
/// [`DEADLINE`]. Blocking.
pub fn probe(server: SocketAddr) -> Probe {
    let bind: SocketAddr =
        if server.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let Ok(socket) = UdpSocket::bind(bind) else { return Probe::Unreachable(server) };
    if socket.connect(server).is_err() {
        return Probe::Unreachable(server);
    }
    let transaction: [u8; 12] = rand::random();
    let request = binding_request(&transaction);
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    let mut sends = SENDS.iter().peekable();
    while start.elapsed() < DEADLINE {
        if sends.next_if(|at| start.elapsed() >= **at).is_some() {
            // A refused send (ICMP unreachable from before) is a missing answer.
            let _ = socket.send(&request);
        }
        let until_next = sends.peek().map_or(DEADLINE, |at| **at).saturating_sub(start.elapsed());
        let wait = until_next.min(DEADLINE.saturating_sub(start.elapsed())).max(Duration::from_millis(1));
        if socket.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        if let Ok(n) = socket.recv(&mut buf) {
            if let Some(mapped) = mapped_address(&buf[..n], &transaction) {
                return Probe::Reachable { server, round_trip: start.elapsed(), mapped };
            }
        }
    }
    Probe::Unreachable(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.2's IPv4 response (its integrity and fingerprint
    /// attributes are skipped).
    const RFC5769_RESPONSE: &[u8] = &[
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91,
        0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
        0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    #[test]
    fn the_rfc_5769_response_maps_to_its_address() {
        let transaction: [u8; 12] = RFC5769_RESPONSE[8..20].try_into().unwrap();
        assert_eq!(mapped_address(RFC5769_RESPONSE, &transaction), Some("192.0.2.1:32853".parse().unwrap()));
        let other = [0u8; 12];
        assert_eq!(mapped_address(RFC5769_RESPONSE, &other), None, "another transaction's answer");
        for cut in 0..RFC5769_RESPONSE.len() {
            let _ = mapped_address(&RFC5769_RESPONSE[..cut], &transaction);
        }
    }

    #[test]
    fn a_request_is_a_bare_binding() {
        let r = binding_request(&[7; 12]);
        assert_eq!(&r[..8], &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&r[8..], &[7; 12]);
    }

    #[test]
    fn server_addresses_take_the_stun_port_by_default() {
        assert_eq!(server_address("192.0.2.9"), Some("192.0.2.9:3478".parse().unwrap()));
        assert_eq!(server_address("192.0.2.9:5349"), Some("192.0.2.9:5349".parse().unwrap()));
        assert_eq!(server_address("[::1]"), Some("[::1]:3478".parse().unwrap()));
        assert_eq!(server_address(""), None);
    }

    #[test]
    fn silence_is_unreachable() {
        // A bound socket that never answers.
        let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
        let got = probe(quiet.local_addr().unwrap());
        assert!(matches!(got, Probe::Unreachable(_)), "{got:?}");
    }
}
