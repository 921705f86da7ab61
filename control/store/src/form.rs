//! `application/x-www-form-urlencoded` bodies and query strings, parsed the
//! lenient way CMS clients need: TMS sends bodies that start with `&`, some
//! clients send a wrong Content-Type (so we never look at it), names match
//! case-insensitively. What we refuse is what cannot mean anything: bytes that
//! are not UTF-8 after decoding, broken `%` escapes, and a pair with no name.

use thiserror::Error;

/// Why a form could not be read. Each becomes a `parameterError` for the client.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape at byte {0}")]
    BadEscape(usize),
    /// The decoded bytes of a name or value are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// A pair such as `=value` with an empty name.
    #[error("parameter with an empty name")]
    EmptyName,
}

/// One decoded form: the pairs in the order the client sent them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Parses a body or query string. Empty pairs (`&&`, a leading `&`) are skipped;
    /// a pair without `=` is a name with an empty value.
    pub fn parse(input: &[u8]) -> Result<Form, FormError> {
        let mut pairs = Vec::new();
        let mut start = 0;
        for piece in input.split(|b| *b == b'&') {
            let offset = start;
            start += piece.len() + 1;
            if piece.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let (name, value) = match piece.iter().position(|b| *b == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..]),
                None => (piece, &[][..]),
            };
            let name = decode(name, offset)?;
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(FormError::EmptyName);
            }
            let value = decode(value, offset + name.len() + 1)?;
            pairs.push((name, value));
        }
        Ok(Form { pairs })
    }

    /// The value of the last pair whose name matches `name` case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// True when the client sent no parameter at all.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Percent-decodes one name or value (`+` is a space).
fn decode(raw: &[u8], offset: usize) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(FormError::BadEscape(offset + i))?;
                let hi = hex_value(hex[0]).ok_or(FormError::BadEscape(offset + i))?;
                let lo = hex_value(hex[1]).ok_or(FormError::BadEscape(offset + i))?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tms_body_with_leading_ampersand() {
        let f = Form::parse(b"&nonMemberAccess=true&passcode=1234&name=Tim+Kratzke%20Meeting&secret=x").unwrap();
        assert_eq!(f.get("nonmemberaccess"), Some("true"));
        assert_eq!(f.get("NAME"), Some("Tim Kratzke Meeting"));
        assert_eq!(f.pairs().len(), 4);
    }

    #[test]
    fn empty_values_and_pairs() {
        let f = Form::parse(b"coSpaceUriMapping=&&x&callId=").unwrap();
        assert_eq!(f.get("coSpaceUriMapping"), Some(""));
        assert_eq!(f.get("x"), Some(""));
        assert_eq!(f.get("callid"), Some(""));
        assert!(Form::parse(b"").unwrap().is_empty());
        assert!(Form::parse(b"&").unwrap().is_empty());
    }

    #[test]
    fn dollar_and_escapes() {
        let f = Form::parse(b"coSpaceUriMapping=$index$&n=a%24b").unwrap();
        assert_eq!(f.get("coSpaceUriMapping"), Some("$index$"));
        assert_eq!(f.get("n"), Some("a$b"));
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(Form::parse(b"a=%zz"), Err(FormError::BadEscape(2)));
        assert_eq!(Form::parse(b"a=%4"), Err(FormError::BadEscape(2)));
        assert_eq!(Form::parse(b"a=%ff"), Err(FormError::NotUtf8));
        assert_eq!(Form::parse(b"a=\xff"), Err(FormError::NotUtf8));
        assert_eq!(Form::parse(b"=v"), Err(FormError::EmptyName));
    }

    #[test]
    fn last_value_wins() {
        let f = Form::parse(b"name=a&NAME=b").unwrap();
        assert_eq!(f.get("name"), Some("b"));
    }
}
