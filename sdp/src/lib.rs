//! SDP (RFC 4566): a lenient line parser and writer, our audio
//! offer/answer ([`negotiate`]) with SDES-SRTP ([`crypto`]), and H.264 video
//! ([`h264`] parameters, [`video`] answers), and far-end camera control's
//! H.224 stream ([`fecc`]).
//!
//! A crate of its own, apart from SIP, because WebRTC's JSEP offer/answer
//! (ICE, DTLS fingerprints, BUNDLE) is SDP too. Sans-IO: randomness (SDES
//! keys) comes from the caller's RNG; nothing here panics on input.
//!
//! Lines are kept as text in order, so whatever we do not understand survives
//! a parse/write round trip and never rejects a session. Only the `m=` and `c=`
//! lines are parsed strictly, because negotiation depends on them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod fecc;
pub mod h264;
pub mod jsep;
pub mod negotiate;
pub mod video;

use std::fmt::Write as _;
use std::net::IpAddr;

pub use crypto::{CryptoSuite, SrtpParams};
pub use fecc::{answer_fecc, FeccOffer, NegotiatedFecc};
pub use h264::{H264Fmtp, H264Level, ProfileLevelId, RtcpFeedback};
pub use jsep::{answer_bundle, JsepError, LocalBundle, NegotiatedBundle};
pub use negotiate::{answer, AudioCodec, AudioOffer, Codec, Direction, LocalMedia, MediaEncryption, NegotiatedAudio};
pub use video::{
    answer_video, answer_with_video, LocalVideo, NegotiatedVideo, VideoCodec, VideoOffer, VideoPayloadTypes,
};

/// Why a body is not SDP we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Larger than [`MAX_SDP`] bytes, or more lines than [`MAX_LINES`].
    #[error("session description too large")]
    TooLarge,
    /// Not UTF-8.
    #[error("session description is not UTF-8")]
    Encoding,
    /// A line is not `<letter>=<value>`.
    #[error("bad line {0}")]
    Line(usize),
    /// An `m=` line is malformed.
    #[error("bad media line {0}")]
    Media(usize),
    /// No `v=0` first line.
    #[error("missing v=0")]
    Version,
}

/// The largest description accepted. Real offers with audio, video and a
/// dozen crypto lines stay under 4 kB.
pub const MAX_SDP: usize = 16 * 1024;
/// The most lines accepted.
pub const MAX_LINES: usize = 512;

/// One `<type>=<value>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter (`a`, `c`, `b`, ...).
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// One media section: its `m=` line and the lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, ...
    pub kind: String,
    /// The transport port; 0 rejects or disables the stream.
    pub port: u16,
    /// The `/n` port count, rarely used.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `RTP/SAVPF`, ...
    pub proto: String,
    /// Payload types (or other format tokens), in the sender's preference order.
    pub formats: Vec<String>,
    /// Lines after the `m=` line (`c=`, `b=`, `a=`, ...).
    pub lines: Vec<Line>,
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// Session-level lines, `v=` first.
    pub session: Vec<Line>,
    /// Media sections in order.
    pub media: Vec<MediaDescription>,
}

/// A `c=` line's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The address; `0.0.0.0` is the old way to put a call on hold (RFC 3264 §8.4).
    pub address: IpAddr,
}

impl Connection {
    /// Parses `IN IP4 192.0.2.1` (a TTL suffix is ignored; host names are refused).
    pub fn parse(value: &str) -> Option<Connection> {
        let mut parts = value.split_whitespace();
        if parts.next()? != "IN" {
            return None;
        }
        let family = parts.next()?;
        let address: IpAddr = parts.next()?.split('/').next()?.parse().ok()?;
        match (family, address) {
            ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(Connection { address }),
            _ => None,
        }
    }
}

/// `IN IP4 addr` or `IN IP6 addr`.
pub(crate) fn connection_value(address: IpAddr) -> String {
    match address {
        IpAddr::V4(a) => format!("IN IP4 {a}"),
        IpAddr::V6(a) => format!("IN IP6 {a}"),
    }
}

impl MediaDescription {
    fn parse_m(value: &str, index: usize) -> Result<MediaDescription, SdpError> {
        let mut parts = value.split_whitespace();
        let kind = parts.next().ok_or(SdpError::Media(index))?.to_string();
        let ports = parts.next().ok_or(SdpError::Media(index))?;
        let (port, port_count) = match ports.split_once('/') {
            Some((p, n)) => (p, Some(n.parse().map_err(|_| SdpError::Media(index))?)),
            None => (ports, None),
        };
        let port = port.parse().map_err(|_| SdpError::Media(index))?;
        let proto = parts.next().ok_or(SdpError::Media(index))?.to_string();
        let formats: Vec<String> = parts.map(str::to_string).collect();
        Ok(MediaDescription { kind, port, port_count, proto, formats, lines: Vec::new() })
    }

    /// Every attribute as (name, value); a flag attribute has no value.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.lines.iter().filter(|l| l.kind == 'a').map(|l| match l.value.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (l.value.as_str(), None),
        })
    }

    /// The values of one attribute.
    pub fn attribute_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).filter_map(|(_, v)| v)
    }

    /// True when a flag attribute (or any attribute of that name) is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attributes().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The media-level `c=`, if any.
    pub fn connection(&self) -> Option<Connection> {
        self.lines.iter().find(|l| l.kind == 'c').and_then(|l| Connection::parse(&l.value))
    }

    /// Adds an attribute line.
    pub fn push_attribute(&mut self, value: impl Into<String>) {
        self.lines.push(Line { kind: 'a', value: value.into() });
    }

    /// True for a secure RTP profile (RTP/SAVP, RTP/SAVPF).
    pub fn is_secure_profile(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/SAVP") || self.proto.eq_ignore_ascii_case("RTP/SAVPF")
    }
}

impl SessionDescription {
    /// Parses a body. Unknown line types and attributes are kept; `\n` line
    /// ends are accepted as well as `\r\n`.
    pub fn parse(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        if bytes.len() > MAX_SDP {
            return Err(SdpError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::Encoding)?;
        let mut sdp = SessionDescription { session: Vec::new(), media: Vec::new() };
        for (index, line) in text.split('\n').enumerate() {
            if index >= MAX_LINES {
                return Err(SdpError::TooLarge);
            }
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let mut chars = line.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else { return Err(SdpError::Line(index)) };
            if !kind.is_ascii_lowercase() {
                return Err(SdpError::Line(index));
            }
            let value = line[2..].trim().to_string();
            if sdp.session.is_empty() && (kind != 'v' || value != "0") {
                return Err(SdpError::Version);
            }
            if kind == 'm' {
                sdp.media.push(MediaDescription::parse_m(&value, index)?);
            } else if let Some(media) = sdp.media.last_mut() {
                media.lines.push(Line { kind, value });
            } else {
                sdp.session.push(Line { kind, value });
            }
        }
        if sdp.session.is_empty() {
            return Err(SdpError::Version);
        }
        Ok(sdp)
    }

    /// The session-level `c=`.
    pub fn connection(&self) -> Option<Connection> {
        self.session.iter().find(|l| l.kind == 'c').and_then(|l| Connection::parse(&l.value))
    }

    /// A session-level attribute's value (or `Some("")` for a flag).
    pub fn session_attribute(&self, name: &str) -> Option<&str> {
        self.session.iter().filter(|l| l.kind == 'a').find_map(|l| match l.value.split_once(':') {
            Some((n, v)) if n.eq_ignore_ascii_case(name) => Some(v),
            None if l.value.eq_ignore_ascii_case(name) => Some(""),
            _ => None,
        })
    }

    /// The wire form, `\r\n` line ends.
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(512);
        for line in &self.session {
            let _ = write!(text, "{}={}\r\n", line.kind, line.value);
        }
        for media in &self.media {
            let _ = write!(text, "m={} {}", media.kind, media.port);
            if let Some(count) = media.port_count {
                let _ = write!(text, "/{count}");
            }
            let _ = write!(text, " {}", media.proto);
            for format in &media.formats {
                let _ = write!(text, " {format}");
            }
            text.push_str("\r\n");
            for line in &media.lines {
                let _ = write!(text, "{}={}\r\n", line.kind, line.value);
            }
        }
        text
    }
}

#[cfg(test)]
pub(crate) mod tests;
