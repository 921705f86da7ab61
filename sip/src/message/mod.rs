//! SIP messages (RFC 3261 §7): parse from a datagram or a stream, write back.
//!
//! The parser is written for hostile input: every limit (message size, header
//! count, line length, body length) is checked before anything is allocated for
//! it, lengths are added with checked arithmetic, and every failure is a
//! [`ParseError`], never a panic. Headers are kept as text in arrival order and
//! typed on demand ([`headers`]), so an unknown or odd header never rejects a
//! message; only the ones a transaction or dialog relies on are checked, by
//! [`Message::check_request`].

pub mod headers;
mod uri;

use std::fmt::Write as _;

pub use headers::{CSeq, NameAddr, RAck, Refresher, SessionExpires, Via};
pub use uri::SipUri;

/// Why bytes are not a SIP message. Each variant maps to a 400 when there is
/// enough of a request left to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The message (headers plus body) is larger than [`Limits::max_message`].
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// More header lines than [`Limits::max_headers`].
    #[error("more than {0} headers")]
    TooManyHeaders(usize),
    /// No blank line ends the headers (datagram transports only: a stream
    /// waits for more bytes instead).
    #[error("headers are not terminated by an empty line")]
    Unterminated,
    /// The start line is neither a request line nor a status line.
    #[error("bad start line")]
    StartLine,
    /// The message is not SIP/2.0.
    #[error("unsupported SIP version")]
    Version,
    /// A header line has no colon, an empty name or is not UTF-8.
    #[error("bad header line")]
    HeaderLine,
    /// Content-Length is not a number, or differs between copies.
    #[error("bad Content-Length")]
    ContentLength,
    /// The body is shorter than Content-Length says (RFC 3261 §18.3).
    #[error("body shorter than Content-Length")]
    Truncated,
    /// Content-Length is missing on a stream transport, where it frames the body.
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
}

/// Bounds on what one message may hold. The defaults fit every real SIP
/// message seen from endpoints (an INVITE with SDP for audio and video is about
/// 2-4 kB) with a wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Headers and body together, in bytes.
    pub max_message: usize,
    /// Header lines (after unfolding).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message: 65_535, max_headers: 128 }
    }
}

/// A SIP method. The ones the bridge acts on are variants; anything else is
/// kept by name so it can be answered 405 or 501.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// Starts a session or changes it (re-INVITE).
    Invite,
    /// Confirms a final response to INVITE.
    Ack,
    /// Ends a session.
    Bye,
    /// Cancels a pending INVITE.
    Cancel,
    /// Capabilities; also used as a keep-alive ping.
    Options,
    /// Mid-call information: DTMF relay, picture fast update.
    Info,
    /// Acknowledges a reliable provisional response (RFC 3262).
    Prack,
    /// Changes session parameters without an INVITE (RFC 3311), used for session refreshes.
    Update,
    /// Any other method, by name.
    Other(String),
}

impl Method {
    /// Parses a method token (case-sensitive, RFC 3261 §7.1).
    pub fn parse(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Other(name) => name,
        }
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI as sent.
        uri: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code, 100-699.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
}

/// One header line: the name in its full form (compact forms are expanded on
/// parse) and the value with folding removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The full header name, as received apart from compact forms.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    /// Headers in arrival order.
    pub headers: Vec<Header>,
    /// The body, exactly Content-Length bytes.
    pub body: Vec<u8>,
}

/// What a stream holds at its front (TCP and TLS framing, RFC 3261 §18.3).
#[derive(Debug)]
pub enum Framed {
    /// Not a whole message yet: read more bytes and try again.
    Incomplete,
    /// Keep-alive CRLFs (RFC 5626 §3.5.1) to drop: this many bytes.
    KeepAlive(usize),
    /// A message, and how many bytes of the stream it used.
    Message(Box<Message>, usize),
}

/// Header names that have a compact form (RFC 3261 §7.3.3 and extensions).
const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("u", "Allow-Events"),
];

/// Expands a compact header name; other names are returned as given.
fn full_name(name: &str) -> &str {
    if name.len() == 1 {
        for (short, full) in COMPACT {
            if name.eq_ignore_ascii_case(short) {
                return full;
            }
        }
    }
    name
}

/// Where the header block ends: the index of the blank line's first byte and
/// the index of the body's first byte. Accepts bare LF line ends, which some
/// hand-written test tools send.
fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let rest = &bytes[i + 1..];
            if rest.starts_with(b"\r\n") {
                return Some((i + 1, i + 3));
            }
            if rest.starts_with(b"\n") {
                return Some((i + 1, i + 2));
            }
        }
        i += 1;
    }
    None
}

impl Message {
    /// Parses one datagram (UDP). Without Content-Length the body is the rest
    /// of the datagram; bytes past Content-Length are dropped (RFC 3261 §18.3).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        if bytes.len() > limits.max_message {
            return Err(ParseError::TooLarge(limits.max_message));
        }
        // Datagram keep-alives and stray line ends before the start line.
        let start = bytes.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(bytes.len());
        let bytes = &bytes[start..];
        let (head_end, body_start) = header_end(bytes).ok_or(ParseError::Unterminated)?;
        let mut message = Self::parse_head(&bytes[..head_end], limits)?;
        let available = &bytes[body_start..];
        match message.content_length()? {
            Some(len) if len > available.len() => return Err(ParseError::Truncated),
            Some(len) => message.body = available[..len].to_vec(),
            None => message.body = available.to_vec(),
        }
        Ok(message)
    }

    /// Frames the next message at the front of a stream (TCP, TLS): check
    /// first, then parse, so a partial message costs nothing but a scan.
    /// Content-Length is required here, since it is the only framing.
    pub fn parse_stream(bytes: &[u8], limits: &Limits) -> Result<Framed, ParseError> {
        let keepalive = bytes.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
        if keepalive > 0 {
            return Ok(Framed::KeepAlive(keepalive));
        }
        let Some((head_end, body_start)) = header_end(bytes) else {
            if bytes.len() > limits.max_message {
                return Err(ParseError::TooLarge(limits.max_message));
            }
            // Bytes that cannot begin a message are refused now, not after
            // waiting for a blank line that may never come: the messages
            // before them have been answered, and the stream cannot be
            // resynchronised past them.
            check_start(bytes)?;
            return Ok(Framed::Incomplete);
        };
        if body_start > limits.max_message {
            return Err(ParseError::TooLarge(limits.max_message));
        }
        let mut message = Self::parse_head(&bytes[..head_end], limits)?;
        let len = message.content_length()?.ok_or(ParseError::MissingContentLength)?;
        let total = body_start.checked_add(len).ok_or(ParseError::ContentLength)?;
        if total > limits.max_message {
            return Err(ParseError::TooLarge(limits.max_message));
        }
        if bytes.len() < total {
            return Ok(Framed::Incomplete);
        }
        message.body = bytes[body_start..total].to_vec();
        Ok(Framed::Message(Box::new(message), total))
    }

    /// What can be read of a message that could not be parsed whole, to
    /// answer it 400 or 513 rather than say nothing (RFC 3261 §21.4.1,
    /// §21.5.11): its start line and, of its headers, those that fit in the
    /// limits — the first [`Limits::max_headers`] lines, within the first
    /// [`Limits::max_message`] bytes, up to the last whole line. `None` when
    /// not even the start line and one header can be read.
    pub fn parse_answerable(bytes: &[u8], limits: &Limits) -> Option<Message> {
        let start = bytes.iter().position(|b| *b != b'\r' && *b != b'\n')?;
        let bytes = &bytes[start..bytes.len().min(start.saturating_add(limits.max_message))];
        let head = match header_end(bytes) {
            Some((head_end, _)) => &bytes[..head_end],
            None => &bytes[..bytes.iter().rposition(|b| *b == b'\n')?],
        };
        let message = Self::parse_head_lines(head, limits, true).ok()?;
        (!message.headers.is_empty()).then_some(message)
    }

    /// Parses the start line and headers (without the blank line).
    fn parse_head(head: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        Self::parse_head_lines(head, limits, false)
    }

    /// The start line and headers. With `truncate`, what a broken head
    /// holds before its first fault (a line that is not a header, bytes that
    /// are not UTF-8, a header past [`Limits::max_headers`]); else the fault
    /// is an error.
    fn parse_head_lines(head: &[u8], limits: &Limits, truncate: bool) -> Result<Message, ParseError> {
        let head = match std::str::from_utf8(head) {
            Ok(head) => head,
            Err(e) if truncate => {
                // Whole lines only: a value cut short would be echoed wrong.
                let valid = &head[..e.valid_up_to()];
                let whole = valid.iter().rposition(|b| *b == b'\n').unwrap_or(0);
                std::str::from_utf8(&valid[..whole]).map_err(|_| ParseError::HeaderLine)?
            }
            Err(_) => return Err(ParseError::HeaderLine),
        };
        let mut lines = head.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
        let first = lines.next().ok_or(ParseError::StartLine)?;
        let start = parse_start_line(first)?;
        let mut headers: Vec<Header> = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            match parse_header_line(line, &mut headers, limits) {
                Ok(()) => {}
                Err(_) if truncate => break,
                Err(e) => return Err(e),
            }
        }
        // The limit holds for the message as we write it back, which always
        // carries a Content-Length: one without it may have one header
        // fewer, or what we forward or echo would be refused by the same
        // limit (found by the fuzz campaign).
        let written = headers.iter().filter(|h| !h.name.eq_ignore_ascii_case("Content-Length")).count() + 1;
        if written > limits.max_headers && !truncate {
            return Err(ParseError::TooManyHeaders(limits.max_headers));
        }
        Ok(Message { start, headers, body: Vec::new() })
    }

    /// Content-Length, when present; copies that disagree are an error.
    fn content_length(&self) -> Result<Option<usize>, ParseError> {
        let mut found = None;
        for value in self.all("Content-Length") {
            let len: usize = value.parse().map_err(|_| ParseError::ContentLength)?;
            if found.is_some_and(|f| f != len) {
                return Err(ParseError::ContentLength);
            }
            found = Some(len);
        }
        Ok(found)
    }

    /// A new request with no headers.
    pub fn request(method: Method, uri: impl Into<String>) -> Message {
        Message { start: StartLine::Request { method, uri: uri.into() }, headers: Vec::new(), body: Vec::new() }
    }

    /// The method of a request, or of the CSeq of a response.
    pub fn method(&self) -> Option<Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method.clone()),
            StartLine::Response { .. } => self.cseq().map(|c| c.method),
        }
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The status code of a response.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first value of a header (case-insensitive name, compact forms
    /// already expanded on parse).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    /// Every line of a header, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    /// Every element of a comma-separated header, over all its lines (Via,
    /// Contact, Route, Supported, ...). Commas inside quotes or `<...>` do not
    /// split.
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(name).flat_map(split_list)
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header { name: name.to_string(), value: value.into() });
    }

    /// Replaces every line of a header by one value (appended if absent).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.headers.iter().position(|h| h.name.eq_ignore_ascii_case(name)) {
            Some(at) => {
                self.headers[at].value = value;
                let mut seen = false;
                self.headers.retain(|h| {
                    if !h.name.eq_ignore_ascii_case(name) {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line of a header.
    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// The top Via.
    pub fn via(&self) -> Option<Via> {
        self.list("Via").next().and_then(Via::parse)
    }

    /// From.
    pub fn from(&self) -> Option<NameAddr> {
        self.get("From").and_then(NameAddr::parse)
    }

    /// To.
    pub fn to(&self) -> Option<NameAddr> {
        self.get("To").and_then(NameAddr::parse)
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID").filter(|v| !v.is_empty())
    }

    /// CSeq.
    pub fn cseq(&self) -> Option<CSeq> {
        self.get("CSeq").and_then(CSeq::parse)
    }

    /// The first Contact.
    pub fn contact(&self) -> Option<NameAddr> {
        self.list("Contact").next().and_then(NameAddr::parse)
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Option<u32> {
        self.get("Max-Forwards").and_then(|v| v.parse().ok())
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.get("Content-Type").map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// True when an option tag is in Supported.
    pub fn supports(&self, tag: &str) -> bool {
        self.list("Supported").any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// True when an option tag is in Require.
    pub fn requires(&self, tag: &str) -> bool {
        self.list("Require").any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// Session-Expires (RFC 4028).
    pub fn session_expires(&self) -> Option<SessionExpires> {
        self.get("Session-Expires").and_then(SessionExpires::parse)
    }

    /// Min-SE (RFC 4028), in seconds.
    pub fn min_se(&self) -> Option<u32> {
        self.get("Min-SE").and_then(|v| v.split(';').next()).and_then(|v| v.trim().parse().ok())
    }

    /// RSeq (RFC 3262).
    pub fn rseq(&self) -> Option<u32> {
        self.get("RSeq").and_then(|v| v.parse().ok())
    }

    /// RAck (RFC 3262).
    pub fn rack(&self) -> Option<RAck> {
        self.get("RAck").and_then(RAck::parse)
    }

    /// Checks what every request needs before a transaction or dialog looks at
    /// it (RFC 3261 §8.2): a top Via with a branch, From, To, Call-ID, and a
    /// CSeq whose method matches the request line. Failures are answered 400.
    pub fn check_request(&self) -> Result<(), &'static str> {
        let StartLine::Request { method, uri } = &self.start else { return Err("not a request") };
        self.via().filter(|v| v.branch().is_some()).ok_or("Missing or bad Via")?;
        self.from().ok_or("Missing or bad From")?;
        self.to().ok_or("Missing or bad To")?;
        self.call_id().ok_or("Missing Call-ID")?;
        let cseq = self.cseq().ok_or("Missing or bad CSeq")?;
        if &cseq.method != method {
            return Err("CSeq method does not match");
        }
        SipUri::parse(uri).ok_or("Bad Request-URI")?;
        Ok(())
    }

    /// Checks what a response needs before a client transaction takes it.
    pub fn check_response(&self) -> Result<(), &'static str> {
        self.via().filter(|v| v.branch().is_some()).ok_or("Missing or bad Via")?;
        self.cseq().ok_or("Missing or bad CSeq")?;
        self.call_id().ok_or("Missing Call-ID")?;
        self.from().ok_or("Missing or bad From")?;
        self.to().ok_or("Missing or bad To")?;
        Ok(())
    }

    /// A response to this request (RFC 3261 §8.2.6): Via, From, To, Call-ID and
    /// CSeq copied, a To-tag added if the request had none and `to_tag` is
    /// given (never on 100 Trying).
    pub fn response(&self, code: u16, to_tag: Option<&str>) -> Message {
        let mut response = Message {
            start: StartLine::Response { code, reason: reason_phrase(code).to_string() },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for header in &self.headers {
            let copy = ["Via", "From", "To", "Call-ID", "CSeq"].iter().any(|n| header.name.eq_ignore_ascii_case(n));
            // Record-Route is copied into responses that can make a dialog.
            let record_route = header.name.eq_ignore_ascii_case("Record-Route") && (101..300).contains(&code);
            if copy || record_route {
                response.headers.push(header.clone());
            }
        }
        if let (Some(tag), Some(to)) = (to_tag, self.to()) {
            if to.tag().is_none() && code != 100 {
                response.set("To", format!("{};tag={tag}", to.raw.trim()));
            }
        }
        response
    }

    /// The wire form; Content-Length is written from the body (any stored copy
    /// is skipped), so framing is always right.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(head, "{} {uri} SIP/2.0\r\n", method.as_str());
            }
            StartLine::Response { code, reason } => {
                let _ = write!(head, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for header in &self.headers {
            if header.name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            let _ = write!(head, "{}: {}\r\n", header.name, header.value);
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Adds one header line (unfolded, without its line end) to `headers`.
fn parse_header_line(line: &str, headers: &mut Vec<Header>, limits: &Limits) -> Result<(), ParseError> {
    if line.starts_with([' ', '\t']) {
        // A folded continuation (RFC 3261 §7.3.1): one space joins it.
        let last = headers.last_mut().ok_or(ParseError::HeaderLine)?;
        last.value.push(' ');
        last.value.push_str(line.trim());
        return Ok(());
    }
    if headers.len() >= limits.max_headers {
        return Err(ParseError::TooManyHeaders(limits.max_headers));
    }
    let (name, value) = line.split_once(':').ok_or(ParseError::HeaderLine)?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ParseError::HeaderLine);
    }
    headers.push(Header { name: full_name(name).to_string(), value: value.trim().to_string() });
    Ok(())
}

/// Token characters (RFC 3261 §25.1), which header names are made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::StartLine)?;
        if version != "2.0" {
            return Err(ParseError::Version);
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| ParseError::StartLine)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::StartLine);
        }
        return Ok(StartLine::Response { code, reason: reason.to_string() });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine);
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) || uri.is_empty() {
        return Err(ParseError::StartLine);
    }
    if version != "SIP/2.0" {
        return Err(ParseError::Version);
    }
    Ok(StartLine::Request { method: Method::parse(method), uri: uri.to_string() })
}

/// Whether the front of a stream, not yet a whole head, can still begin a
/// message: its first word must be made of token characters (a method) or be
/// `SIP/...` (a status line), and a whole first line must parse.
fn check_start(bytes: &[u8]) -> Result<(), ParseError> {
    if let Some(eol) = bytes.iter().position(|b| *b == b'\n') {
        let line = std::str::from_utf8(&bytes[..eol]).map_err(|_| ParseError::StartLine)?;
        return parse_start_line(line.strip_suffix('\r').unwrap_or(line)).map(|_| ());
    }
    let word = bytes.split(|b| *b == b' ').next().unwrap_or(bytes);
    if word.iter().all(|b| is_token_byte(*b) || *b == b'/') {
        Ok(())
    } else {
        Err(ParseError::StartLine)
    }
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut from) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[from..].trim());
    parts.into_iter().filter(|p| !p.is_empty())
}

/// The usual reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        513 => "Message Too Large",
        504 => "Server Time-out",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests;
