//! The CMS response body: `<?xml version="1.0"?>` and then the whole document
//! on one line. Clients parse it with everything from XPath to regular
//! expressions, so the shape is kept exactly: lists always carry `total`,
//! items carry `id` as an attribute, empty elements are written `<x />`.

/// Builds one XML document as a string.
#[derive(Debug)]
pub struct XmlWriter {
    buf: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    /// Starts a document with the declaration CMS sends.
    pub fn new() -> Self {
        let mut buf = String::with_capacity(256);
        buf.push_str("<?xml version=\"1.0\"?>");
        XmlWriter { buf }
    }

    /// `<name a="v" ...>`
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.buf.push('>');
        self
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.buf.push('<');
        self.buf.push_str(name);
        for (k, v) in attrs {
            self.buf.push(' ');
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            escape_into(&mut self.buf, v);
            self.buf.push('"');
        }
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// `<name>text</name>`
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name, &[]);
        escape_into(&mut self.buf, value);
        self.close(name)
    }

    /// `<name a="v" />`
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.buf.push_str(" />");
        self
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.buf
    }
}

/// Escapes the five XML special characters and drops every character XML
/// 1.0 cannot carry at all (control characters, U+FFFE, U+FFFF): the API
/// refuses them, but a value stored before it did, or by another path, must
/// not make a whole list unreadable.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if confero_store::schema::is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_document() {
        let mut w = XmlWriter::new();
        w.open("coSpaces", &[("total", "1")])
            .open("coSpace", &[("id", "x")])
            .text("name", "A & <B>")
            .close("coSpace")
            .close("coSpaces");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\"?><coSpaces total=\"1\"><coSpace id=\"x\"><name>A &amp; &lt;B&gt;</name></coSpace></coSpaces>"
        );
    }

    #[test]
    fn failure_shape() {
        let mut w = XmlWriter::new();
        w.open("failureDetails", &[])
            .empty("parameterError", &[("parameter", "defaultLayout"), ("error", "invalidValue")])
            .close("failureDetails");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\"?><failureDetails><parameterError parameter=\"defaultLayout\" error=\"invalidValue\" /></failureDetails>"
        );
    }

    #[test]
    fn drops_what_xml_cannot_carry() {
        let mut s = String::new();
        escape_into(&mut s, "a\u{1}b\u{FFFE}c\u{FFFF}d\te\u{10348}");
        assert_eq!(s, "abcd\te\u{10348}");
    }
}
