//! A stanza as a small tree: what [`crate::stream::StreamReader`] hands out
//! and what we write. Names are local names with their namespace resolved,
//! so code compares `(name, ns)` and never a prefix a peer chose.

use std::fmt::Write as _;

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A nested element.
    Element(Element),
    /// Character data, unescaped.
    Text(String),
}

/// One XML element with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The local name (`message`, `handshake`).
    pub name: String,
    /// The namespace it is in (`jabber:component:accept`).
    pub ns: String,
    /// Attributes other than namespace declarations, values unescaped, in
    /// document order.
    pub attrs: Vec<(String, String)>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// An empty element.
    pub fn new(name: &str, ns: &str) -> Element {
        Element { name: name.to_string(), ns: ns.to_string(), attrs: Vec::new(), children: Vec::new() }
    }

    /// With an attribute (replacing one of the same name).
    pub fn attr(mut self, name: &str, value: &str) -> Element {
        self.set_attr(name, value);
        self
    }

    /// Sets an attribute (replacing one of the same name).
    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.attrs.push((name.to_string(), value.to_string())),
        }
    }

    /// With a child element.
    pub fn child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// With text.
    pub fn text(mut self, text: &str) -> Element {
        self.children.push(Node::Text(text.to_string()));
        self
    }

    /// An attribute's value.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether this is `name` in `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element named `name` in `ns`.
    pub fn find(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(name, ns))
    }

    /// All the text directly inside, concatenated.
    pub fn text_content(&self) -> String {
        self.children
            .iter()
            .filter_map(|c| match c {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// The element as XML, declaring its namespace where it differs from
    /// `parent_ns` (the stream's default for a top-level stanza). Elements
    /// in the streams namespace take the `stream:` prefix the stream header
    /// declared.
    pub fn to_xml(&self, parent_ns: &str) -> String {
        let mut out = String::new();
        self.write(parent_ns, &mut out);
        out
    }

    fn write(&self, parent_ns: &str, out: &mut String) {
        let prefixed = self.ns == crate::NS_STREAMS;
        let name = if prefixed { format!("stream:{}", self.name) } else { self.name.clone() };
        out.push('<');
        out.push_str(&name);
        if !prefixed && self.ns != parent_ns {
            let _ = write!(out, " xmlns='{}'", escape(&self.ns));
        }
        for (n, v) in &self.attrs {
            let _ = write!(out, " {n}='{}'", escape(v));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        // A prefixed element keeps the default namespace of its parent.
        let inner_ns = if prefixed { parent_ns } else { &self.ns };
        for c in &self.children {
            match c {
                Node::Element(e) => e.write(inner_ns, out),
                Node::Text(t) => out.push_str(&escape(t)),
            }
        }
        let _ = write!(out, "</{name}>");
    }
}

/// Escapes text or an attribute value (single- or double-quoted).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_namespaces_only_where_they_change() {
        let e = Element::new("iq", "jabber:component:accept")
            .attr("type", "get")
            .attr("to", "a&b")
            .child(Element::new("query", "http://jabber.org/protocol/disco#items"));
        assert_eq!(
            e.to_xml("jabber:component:accept"),
            "<iq type='get' to='a&amp;b'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
        );
        let err =
            Element::new("error", crate::NS_STREAMS).child(Element::new("not-authorized", crate::NS_STREAM_ERRORS));
        assert_eq!(
            err.to_xml("jabber:client"),
            "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
        );
    }
}
