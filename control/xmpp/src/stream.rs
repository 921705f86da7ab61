//! The XML stream of RFC 6120, sans-IO: bytes in, a stream header, whole
//! stanzas and the stream's end out.
//!
//! Check, then parse: a small scanner of our own finds where each top-level
//! element ends (tags, quoted attribute values, CDATA), counting size and
//! depth *before* anything is allocated for the element, and refuses what
//! RFC 6120 §11.1 bans from streams (comments, processing instructions, DTDs).
//! Only a complete element is handed to quick-xml, so no partial token ever
//! reaches it, and a peer cannot make us hold more than `max_stanza` bytes
//! or nest deeper than `max_depth`. Whitespace between stanzas (keepalives)
//! is skipped.

use quick_xml::events::{BytesStart, Event};

use crate::element::{Element, Node};

/// What one stream may send us.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes in one stanza (or the stream header) at most.
    pub max_stanza: usize,
    /// Element nesting within a stanza at most (the stanza itself is 1).
    pub max_depth: usize,
}

impl Default for Limits {
    /// 64 KiB and 16 levels: far above what logins, disco and IQs need,
    /// and the 10,000-byte minimum RFC 6120 §13.12 asks servers to accept.
    fn default() -> Limits {
        Limits { max_stanza: 64 * 1024, max_depth: 16 }
    }
}

/// Why a stream cannot be read further. Each maps to a stream error the
/// server sends before closing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    /// The first element was not `<stream:stream>` in the streams namespace.
    #[error("not an XMPP stream")]
    NotAStream,
    /// A stanza or the header was larger than `max_stanza`.
    #[error("stanza too large")]
    TooLarge,
    /// Elements nested deeper than `max_depth`.
    #[error("stanza nested too deeply")]
    TooDeep,
    /// A comment, processing instruction or DTD (RFC 6120 §11.1).
    #[error("restricted XML (comment, processing instruction or DTD)")]
    Restricted,
    /// Character data between stanzas that is not whitespace.
    #[error("text outside a stanza")]
    TextOutsideStanza,
    /// Anything quick-xml refused: unbalanced tags, bad attributes, unknown
    /// entities, an undeclared prefix, bytes that are not UTF-8.
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// The peer's stream header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// The stream's default namespace (`jabber:client`,
    /// `jabber:component:accept`).
    pub ns: String,
    /// Its attributes (`to`, `from`, `id`, `version`, `xml:lang`).
    pub attrs: Vec<(String, String)>,
}

impl StreamHeader {
    /// An attribute's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What the stream said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream header (again after a restart).
    Header(StreamHeader),
    /// One top-level element.
    Stanza(Element),
    /// `</stream:stream>`.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the header (at the start, or after [`StreamReader::restart`]).
    Prolog,
    /// Inside the stream.
    Open,
    /// After `</stream:stream>` or an error: nothing more is read.
    Done,
}

/// An incoming XML stream. Feed it bytes with [`StreamReader::feed`], then
/// take events with [`StreamReader::next_event`] until it says `None`.
#[derive(Debug)]
pub struct StreamReader {
    limits: Limits,
    buf: Vec<u8>,
    state: State,
    /// The scan of the element at the front of `buf`: how far it got and at
    /// what depth, so a stanza arriving in many pieces is scanned once.
    scan: usize,
    depth: usize,
    /// The namespace prefixes and default namespace the header declared.
    prefixes: Vec<(String, String)>,
    default_ns: String,
}

impl StreamReader {
    /// A reader waiting for a stream header.
    pub fn new(limits: Limits) -> StreamReader {
        StreamReader {
            limits,
            buf: Vec::new(),
            state: State::Prolog,
            scan: 0,
            depth: 0,
            prefixes: Vec::new(),
            default_ns: String::new(),
        }
    }

    /// Takes bytes from the peer. Take every event after each feed: then
    /// what stays buffered is at most one unfinished stanza (within the
    /// limit, or [`StreamReader::next_event`] refuses it) and one read.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.state != State::Done {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Expects a new stream header (after STARTTLS or SASL success, RFC 6120
    /// §4.3.3); bytes already buffered are read as the new stream.
    pub fn restart(&mut self) {
        if self.state != State::Done {
            self.state = State::Prolog;
        }
        self.scan = 0;
        self.depth = 0;
    }

    /// The next complete event, `Ok(None)` when more bytes are needed. After
    /// an error or the stream's end, always `Ok(None)`.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        let result = self.next_inner();
        if result.is_err() {
            self.state = State::Done;
        }
        result
    }

    fn next_inner(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        loop {
            let leading = self.buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if leading > 0 && self.scan == 0 {
                self.buf.drain(..leading);
            }
            match self.state {
                State::Done => return Ok(None),
                State::Prolog => {
                    if self.buf.starts_with(b"<?xml") && (self.buf.len() < 6 || self.buf[5].is_ascii_whitespace()) {
                        let Some(end) = find(&self.buf, b"?>", 5) else { return Ok(None) };
                        self.buf.drain(..end + 2);
                        continue;
                    }
                    if self.buf.len() < 5 && b"<?xml".starts_with(&self.buf) {
                        return Ok(None);
                    }
                    match self.buf.first() {
                        None => return Ok(None),
                        Some(b'<') => {}
                        Some(_) => return Err(StreamError::NotAStream),
                    }
                    let Some(end) = self.within_limit(tag_end(&self.buf, 1)?)? else { return Ok(None) };
                    let header = self.header(end)?;
                    self.buf.drain(..=end);
                    self.state = State::Open;
                    return Ok(Some(StreamEvent::Header(header)));
                }
                State::Open => {
                    match self.buf.first() {
                        None => return Ok(None),
                        Some(b'<') => {}
                        Some(_) => return Err(StreamError::TextOutsideStanza),
                    }
                    if self.buf.starts_with(b"</") {
                        let Some(end) = self.within_limit(tag_end(&self.buf, 2)?)? else { return Ok(None) };
                        let name = std::str::from_utf8(&self.buf[2..end])
                            .map_err(|_| StreamError::Malformed("closing tag is not UTF-8".into()))?;
                        if self.resolve_header_name(name.trim()) != Some(crate::NS_STREAMS.to_string()) {
                            return Err(StreamError::Malformed(format!("unexpected </{name}>")));
                        }
                        self.state = State::Done;
                        self.buf.clear();
                        return Ok(Some(StreamEvent::Closed));
                    }
                    let scanned = self.scan_element()?;
                    let Some(end) = self.within_limit(scanned)? else { return Ok(None) };
                    let element = self.parse_element(end)?;
                    self.buf.drain(..end);
                    self.scan = 0;
                    self.depth = 0;
                    return Ok(Some(StreamEvent::Stanza(element)));
                }
            }
        }
    }

    /// Refuses a header or stanza over the limit, finished (`Some(end)`) or
    /// not (`None`: everything buffered is part of it).
    fn within_limit(&self, end: Option<usize>) -> Result<Option<usize>, StreamError> {
        if end.unwrap_or(self.buf.len()) > self.limits.max_stanza {
            return Err(StreamError::TooLarge);
        }
        Ok(end)
    }

    /// Scans the element at the front of `buf`: `Some(end)` (exclusive) once
    /// it is complete.
    fn scan_element(&mut self) -> Result<Option<usize>, StreamError> {
        let mut i = self.scan;
        loop {
            let Some(lt) = self.buf[i..].iter().position(|&b| b == b'<').map(|p| p + i) else {
                self.scan = self.buf.len();
                return Ok(None);
            };
            if self.depth == 0 && lt != 0 {
                return Err(StreamError::TextOutsideStanza);
            }
            i = lt;
            let rest = &self.buf[i..];
            if rest.len() < 2 {
                self.scan = i;
                return Ok(None);
            }
            match rest[1] {
                b'!' => {
                    const CDATA: &[u8] = b"<![CDATA[";
                    if rest.len() < CDATA.len() && CDATA.starts_with(rest) {
                        self.scan = i;
                        return Ok(None);
                    }
                    if !rest.starts_with(CDATA) || self.depth == 0 {
                        return Err(StreamError::Restricted);
                    }
                    let Some(end) = find(&self.buf, b"]]>", i + CDATA.len()) else {
                        self.scan = i;
                        return Ok(None);
                    };
                    i = end + 3;
                }
                b'?' => return Err(StreamError::Restricted),
                b'/' => {
                    let Some(end) = tag_end(&self.buf, i + 2)? else {
                        self.scan = i;
                        return Ok(None);
                    };
                    // quick-xml checks the names; here only the count.
                    self.depth = self.depth.checked_sub(1).ok_or(StreamError::Malformed("unbalanced tags".into()))?;
                    i = end + 1;
                    if self.depth == 0 {
                        return Ok(Some(i));
                    }
                }
                _ => {
                    let Some(end) = tag_end(&self.buf, i + 1)? else {
                        self.scan = i;
                        return Ok(None);
                    };
                    let empty = self.buf[end - 1] == b'/';
                    i = end + 1;
                    if empty {
                        if self.depth == 0 {
                            return Ok(Some(i));
                        }
                    } else {
                        self.depth += 1;
                        if self.depth > self.limits.max_depth {
                            return Err(StreamError::TooDeep);
                        }
                    }
                }
            }
        }
    }

    /// The stream header, `buf[..=end]` being its start tag.
    fn header(&mut self, end: usize) -> Result<StreamHeader, StreamError> {
        let mut reader = quick_xml::Reader::from_reader(&self.buf[..=end]);
        let start = match reader.read_event() {
            Ok(Event::Start(s)) => s,
            Ok(_) => return Err(StreamError::NotAStream),
            Err(e) => return Err(StreamError::Malformed(e.to_string())),
        };
        let (attrs, decls) = attributes(&start)?;
        let mut default_ns = String::new();
        let mut prefixes = Vec::new();
        for (prefix, ns) in decls {
            match prefix {
                None => default_ns = ns,
                Some(p) => prefixes.push((p, ns)),
            }
        }
        self.prefixes = prefixes;
        self.default_ns = default_ns.clone();
        let name = utf8(start.name().as_ref())?;
        if local(&name) != "stream" || self.resolve_header_name(&name).as_deref() != Some(crate::NS_STREAMS) {
            return Err(StreamError::NotAStream);
        }
        Ok(StreamHeader { ns: default_ns, attrs })
    }

    /// A name's namespace by the header's declarations alone.
    fn resolve_header_name(&self, name: &str) -> Option<String> {
        match name.split_once(':') {
            Some((prefix, _)) => self.prefixes.iter().find(|(p, _)| p == prefix).map(|(_, ns)| ns.clone()),
            None => Some(self.default_ns.clone()),
        }
    }

    /// Builds the tree of the complete element in `buf[..end]`.
    fn parse_element(&self, end: usize) -> Result<Element, StreamError> {
        let mut reader = quick_xml::Reader::from_reader(&self.buf[..end]);
        reader.config_mut().check_end_names = true;
        // Each open element with the prefixes it declared.
        let mut stack: Vec<(Element, Vec<(String, String)>)> = Vec::new();
        loop {
            let event = reader.read_event().map_err(|e| StreamError::Malformed(e.to_string()))?;
            match event {
                Event::Start(s) => {
                    let opened = self.open(&s, &stack)?;
                    stack.push(opened);
                }
                Event::Empty(s) => {
                    let (element, _) = self.open(&s, &stack)?;
                    match stack.last_mut() {
                        Some((parent, _)) => parent.children.push(Node::Element(element)),
                        None => return Ok(element),
                    }
                }
                Event::End(_) => {
                    let (element, _) = stack.pop().ok_or(StreamError::Malformed("unbalanced tags".into()))?;
                    match stack.last_mut() {
                        Some((parent, _)) => parent.children.push(Node::Element(element)),
                        None => return Ok(element),
                    }
                }
                Event::Text(t) => {
                    let text = t.unescape().map_err(|e| StreamError::Malformed(e.to_string()))?;
                    if let Some((parent, _)) = stack.last_mut() {
                        push_text(parent, &text);
                    }
                }
                Event::CData(c) => {
                    let text = utf8(&c.into_inner())?;
                    if let Some((parent, _)) = stack.last_mut() {
                        push_text(parent, &text);
                    }
                }
                Event::Comment(_) | Event::PI(_) | Event::DocType(_) | Event::Decl(_) => {
                    return Err(StreamError::Restricted)
                }
                Event::Eof => return Err(StreamError::Malformed("element ended early".into())),
            }
        }
    }

    /// An element from its start tag, its namespace resolved through the
    /// open elements' declarations and then the header's.
    fn open(
        &self,
        start: &BytesStart<'_>,
        stack: &[(Element, Vec<(String, String)>)],
    ) -> Result<(Element, Vec<(String, String)>), StreamError> {
        let (attrs, decls) = attributes(start)?;
        let mut declared = Vec::new();
        let mut default = None;
        for (prefix, ns) in decls {
            match prefix {
                None => default = Some(ns),
                Some(p) => declared.push((p, ns)),
            }
        }
        let name = utf8(start.name().as_ref())?;
        if !valid_name(&name) {
            return Err(StreamError::Malformed(format!("{name:?} is not an element name")));
        }
        let ns = match name.split_once(':') {
            Some((prefix, _)) => declared
                .iter()
                .chain(stack.iter().rev().flat_map(|(_, d)| d.iter()))
                .chain(self.prefixes.iter())
                .find(|(p, _)| p == prefix)
                .map(|(_, ns)| ns.clone())
                .ok_or_else(|| StreamError::Malformed(format!("undeclared prefix in <{name}>")))?,
            None => default
                .clone()
                .or_else(|| stack.last().map(|(e, _)| e.ns.clone()))
                .unwrap_or_else(|| self.default_ns.clone()),
        };
        // A prefixed element's own default declaration still applies to
        // its children: keep it as a declaration with an empty prefix.
        if let (Some(d), Some(_)) = (default, name.split_once(':')) {
            declared.push((String::new(), d));
        }
        let element = Element { name: local(&name).to_string(), ns, attrs, children: Vec::new() };
        Ok((element, declared))
    }
}

/// Attributes (unescaped) and namespace declarations (`None` prefix for
/// `xmlns`).
#[allow(clippy::type_complexity)]
fn attributes(start: &BytesStart<'_>) -> Result<(Vec<(String, String)>, Vec<(Option<String>, String)>), StreamError> {
    let mut attrs = Vec::new();
    let mut decls = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| StreamError::Malformed(e.to_string()))?;
        let key = utf8(a.key.as_ref())?;
        if !valid_name(&key) {
            return Err(StreamError::Malformed(format!("{key:?} is not an attribute name")));
        }
        let value = a.unescape_value().map_err(|e| StreamError::Malformed(e.to_string()))?.into_owned();
        if key == "xmlns" {
            decls.push((None, value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            decls.push((Some(prefix.to_string()), value));
        } else {
            attrs.push((key, value));
        }
    }
    Ok((attrs, decls))
}

/// Whether quick-xml's name is one XML allows, as far as framing cares: no
/// quotes, markup or spaces in it (quick-xml takes `<a'>` as element `a'`,
/// which our scanner, and any peer, would read as the start of a value).
///
/// A qualified name is a local name with at most one prefix, both parts
/// non-empty: `stream:` or `a:b:c` would lose a part when the namespace is
/// resolved and no longer read back as what we write.
fn valid_name(name: &str) -> bool {
    match name.split_once(':') {
        Some((prefix, local)) => valid_part(prefix) && valid_part(local),
        None => valid_part(name),
    }
}

fn valid_part(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        && name.chars().all(|c| c != ':' && !c.is_whitespace() && !c.is_control() && !"\"'<>&=/!?;,()[]{}".contains(c))
}

fn push_text(parent: &mut Element, text: &str) {
    if let Some(Node::Text(t)) = parent.children.last_mut() {
        t.push_str(text);
    } else {
        parent.children.push(Node::Text(text.to_string()));
    }
}

fn utf8(bytes: &[u8]) -> Result<String, StreamError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| StreamError::Malformed("not UTF-8".into()))
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map(|(_, l)| l).unwrap_or(name)
}

fn find(buf: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The index of the `>` ending the tag whose content starts at `from`,
/// skipping quoted attribute values; `None` if it has not arrived.
fn tag_end(buf: &[u8], from: usize) -> Result<Option<usize>, StreamError> {
    let mut quote = None;
    for (i, &b) in buf.iter().enumerate().skip(from) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => return Ok(Some(i)),
            (None, b'<') => return Err(StreamError::Malformed("'<' inside a tag".into())),
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' from='cb1.example.com' id='abc'>";

    fn events(reader: &mut StreamReader) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        while let Some(e) = reader.next_event().expect("event") {
            out.push(e);
        }
        out
    }

    #[test]
    fn reads_a_stream_byte_by_byte() {
        let text = format!(
            "{HEADER} \n<handshake/> <message to='a@b'><body>x &amp; y<![CDATA[<z>]]></body></message>\
             <stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
        );
        let mut reader = StreamReader::new(Limits::default());
        let mut all = Vec::new();
        for b in text.as_bytes() {
            reader.feed(&[*b]);
            all.extend(events(&mut reader));
        }
        assert_eq!(all.len(), 5, "{all:?}");
        let StreamEvent::Header(h) = &all[0] else { panic!("header") };
        assert_eq!((h.ns.as_str(), h.get("id")), (crate::NS_COMPONENT, Some("abc")));
        let StreamEvent::Stanza(hs) = &all[1] else { panic!("stanza") };
        assert!(hs.is("handshake", crate::NS_COMPONENT));
        let StreamEvent::Stanza(m) = &all[2] else { panic!("stanza") };
        assert_eq!(m.get_attr("to"), Some("a@b"));
        assert_eq!(m.find("body", crate::NS_COMPONENT).map(|b| b.text_content()).as_deref(), Some("x & y<z>"));
        let StreamEvent::Stanza(err) = &all[3] else { panic!("stanza") };
        assert!(err.is("error", crate::NS_STREAMS));
        assert!(err.find("not-authorized", crate::NS_STREAM_ERRORS).is_some());
        assert_eq!(all[4], StreamEvent::Closed);
    }

    #[test]
    fn refuses_what_streams_must_not_carry() {
        for (body, error) in [
            ("<!-- hi -->", StreamError::Restricted),
            ("<?foo bar?>", StreamError::Restricted),
            ("<!DOCTYPE x>", StreamError::Restricted),
            ("hello", StreamError::TextOutsideStanza),
        ] {
            let mut reader = StreamReader::new(Limits::default());
            reader.feed(format!("{HEADER}{body}").as_bytes());
            assert!(matches!(reader.next_event(), Ok(Some(StreamEvent::Header(_)))));
            assert_eq!(reader.next_event(), Err(error), "{body}");
        }
        let mut reader = StreamReader::new(Limits::default());
        reader.feed(b"<html>");
        assert_eq!(reader.next_event(), Err(StreamError::NotAStream));
        let mut reader = StreamReader::new(Limits::default());
        reader.feed(format!("{HEADER}<a><b></a></b>").as_bytes());
        reader.next_event().expect("header");
        assert!(matches!(reader.next_event(), Err(StreamError::Malformed(_))));
        let mut reader = StreamReader::new(Limits::default());
        reader.feed(format!("{HEADER}<a><b' c'/></a>").as_bytes());
        reader.next_event().expect("header");
        assert!(matches!(reader.next_event(), Err(StreamError::Malformed(_))));
        let mut reader = StreamReader::new(Limits::default());
        reader.feed(format!("{HEADER}<a>&custom;</a>").as_bytes());
        reader.next_event().expect("header");
        assert!(matches!(reader.next_event(), Err(StreamError::Malformed(_))));
    }

    /// Found by the fuzz campaign: `<stream:/>` has an empty local name and
    /// was written back as `< xmlns='…'/>`, which reads as nothing.
    #[test]
    fn refuses_names_with_an_empty_or_second_part() {
        for bad in ["<stream: xmlns:stream='x'/>", "<:a/>", "<a:b:c xmlns:a='x'/>", "<a b:='1'/>", "<a xmlns:='x'/>"] {
            let mut reader = StreamReader::new(Limits::default());
            reader.feed(format!("{HEADER}{bad}").as_bytes());
            reader.next_event().expect("header");
            assert!(matches!(reader.next_event(), Err(StreamError::Malformed(_))), "{bad}");
        }
        let mut reader = StreamReader::new(Limits::default());
        reader.feed(format!("{HEADER}<a xml:lang='en'/>").as_bytes());
        reader.next_event().expect("header");
        assert!(matches!(reader.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    }

    #[test]
    fn limits_size_and_depth_before_parsing() {
        let limits = Limits { max_stanza: 300, max_depth: 3 };
        let mut reader = StreamReader::new(limits);
        reader.feed(HEADER.as_bytes());
        reader.next_event().expect("header");
        reader.feed(b"<");
        assert_eq!(reader.next_event(), Ok(None));
        reader.feed("a x='".repeat(70).as_bytes());
        assert_eq!(reader.next_event(), Err(StreamError::TooLarge));
        let mut reader = StreamReader::new(limits);
        reader.feed(format!("{HEADER}<a><b><c><d>").as_bytes());
        reader.next_event().expect("header");
        assert_eq!(reader.next_event(), Err(StreamError::TooDeep));
        // Whitespace keepalives never count towards a stanza.
        let mut reader = StreamReader::new(limits);
        reader.feed(HEADER.as_bytes());
        reader.next_event().expect("header");
        for _ in 0..100 {
            reader.feed(b"  ");
            assert_eq!(reader.next_event(), Ok(None));
        }
    }

    #[test]
    fn restarts_with_a_new_header() {
        let mut reader = StreamReader::new(Limits::default());
        reader.feed(format!("{HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").as_bytes());
        assert_eq!(events(&mut reader).len(), 2);
        reader.restart();
        reader.feed(HEADER.as_bytes());
        assert!(matches!(events(&mut reader).as_slice(), [StreamEvent::Header(_)]));
    }
}
