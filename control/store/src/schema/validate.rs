//! Turning a client's form into checked field changes. This is pure: the
//! checks that need other objects (references, uniqueness) are the store's.

use base64::Engine;
use rand::RngCore;
use uuid::Uuid;

use super::{Field, Ty};
use crate::form::Form;

/// A parameter the schema refuses: what CMS answers as
/// `<parameterError parameter=".." error=".."/>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {parameter}: {error}")]
pub struct Invalid {
    /// The parameter, as the schema names it.
    pub parameter: String,
    /// CMS's word for what is wrong: `invalidValue`, `missing`, `valueTooLong`.
    pub error: &'static str,
}

impl Invalid {
    /// `parameter` is refused with `error`.
    pub fn new(parameter: impl Into<String>, error: &'static str) -> Invalid {
        Invalid { parameter: parameter.into(), error }
    }
}

/// One field to set (`Some`) or unset (`None`).
#[derive(Debug, Clone)]
pub struct Change {
    /// The field.
    pub field: &'static Field,
    /// The checked, normalised value, or `None` to unset.
    pub value: Option<String>,
}

/// The checked changes of one POST or PUT, in form order.
pub type Changes = Vec<Change>;

/// Longest text value we keep; CMS limits names to a few hundred characters.
const MAX_TEXT: usize = 2048;

/// Checks `form` against `fields`. On create, required fields must be present
/// and a secret is made when the object has one and the client gave none.
pub fn validate_changes(fields: &'static [Field], form: &Form, creating: bool) -> Result<Changes, Invalid> {
    let mut changes: Changes = Vec::new();
    let mut regenerate = false;
    let has_secret = fields.iter().any(|f| f.ty == Ty::Secret);
    for (name, raw) in form.pairs() {
        if name.eq_ignore_ascii_case("regenerateSecret") && has_secret {
            regenerate = parse_bool(raw).ok_or_else(|| Invalid::new("regenerateSecret", "invalidValue"))?;
            continue;
        }
        // Unknown names are ignored, as CMS does for parameters of other versions
        // (TMS still sends messageBoardEnabled to callProfiles).
        let Some(field) = fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)) else { continue };
        if field.ty == Ty::ReadOnly || (field.ty == Ty::FixedText && !creating) {
            continue;
        }
        // Whitespace alone is no value: stored as text it would be an empty
        // passcode or call ID that looks set (and blocks other spaces).
        let value = if raw.trim().is_empty() { None } else { Some(check_value(field, raw)?) };
        changes.retain(|c| c.field.name != field.name);
        changes.push(Change { field, value });
    }
    if let Some(secret) = fields.iter().find(|f| f.ty == Ty::Secret) {
        let given = changes.iter().any(|c| c.field.name == secret.name && c.value.is_some());
        if regenerate || (creating && !given) {
            changes.retain(|c| c.field.name != secret.name);
            changes.push(Change { field: secret, value: Some(new_secret()) });
        }
    }
    if creating {
        for f in fields.iter().filter(|f| f.required) {
            if !changes.iter().any(|c| c.field.name == f.name && c.value.is_some()) {
                return Err(Invalid::new(f.name, "missing"));
            }
        }
    }
    Ok(changes)
}

/// Whether XML 1.0 can carry `c` (its `Char` production; tab, LF and CR are
/// the only control characters it allows).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// 16 random bytes as unpadded base64url: about 22 characters, as CMS makes them.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn parse_bool(raw: &str) -> Option<bool> {
    if raw.eq_ignore_ascii_case("true") {
        Some(true)
    } else if raw.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Checks and normalises one value for `field` (lower-cases URIs, canonical enum spelling, ...).
pub fn check_value(field: &'static Field, raw: &str) -> Result<String, Invalid> {
    let invalid = || Invalid::new(field.name, "invalidValue");
    if raw.len() > MAX_TEXT {
        return Err(Invalid::new(field.name, "valueTooLong"));
    }
    // Every value is written back in XML: one that XML 1.0 cannot carry would
    // make every list it appears in unreadable for every client.
    if !raw.chars().all(is_xml_char) {
        return Err(invalid());
    }
    let value = match field.ty {
        Ty::Text | Ty::Password | Ty::FixedText | Ty::Unique(_) => raw.to_string(),
        Ty::Domain | Ty::Jid(_) => {
            let v = raw.trim().to_lowercase();
            if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid());
            }
            v
        }
        Ty::Url => {
            let v = raw.trim();
            let lower = v.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) || v.chars().any(char::is_whitespace) {
                return Err(invalid());
            }
            v.to_string()
        }
        Ty::Dtmf => {
            let v = raw.trim();
            if v.len() > 128 || !v.chars().all(|c| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d' | ',')) {
                return Err(invalid());
            }
            v.to_string()
        }
        Ty::DtmfKeys => {
            let v = raw.trim();
            if v.len() > 32 || !v.chars().all(|c| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d')) {
                return Err(invalid());
            }
            v.to_ascii_uppercase()
        }
        Ty::Bool => parse_bool(raw).ok_or_else(invalid)?.to_string(),
        Ty::Int(min, max) => {
            let n: i64 = raw.trim().parse().map_err(|_| invalid())?;
            if n < min || n > max {
                return Err(invalid());
            }
            n.to_string()
        }
        Ty::Enum(values) => values.iter().find(|v| v.eq_ignore_ascii_case(raw.trim())).ok_or_else(invalid)?.to_string(),
        Ty::Ref(_) => Uuid::parse_str(raw.trim()).map_err(|_| invalid())?.to_string(),
        Ty::Uri(_) => {
            let v = raw.trim().to_lowercase();
            if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid());
            }
            v
        }
        Ty::CallId(_) | Ty::Passcode => {
            let v = raw.trim();
            if v.len() > 64 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            v.to_string()
        }
        Ty::Secret => {
            if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(invalid());
            }
            raw.to_string()
        }
        Ty::UriGenerator => {
            let v = raw.trim().to_lowercase();
            if v.matches('$').count() != 1 || v.chars().any(|c| c.is_whitespace()) {
                return Err(invalid());
            }
            v
        }
        Ty::IndexMapping => {
            if !mapping_is_valid(raw) {
                return Err(invalid());
            }
            raw.to_string()
        }
        Ty::ReadOnly => return Err(invalid()),
    };
    Ok(value)
}

/// A mapping may hold at most one `$index$`; any other `$` must be escaped `\$`.
fn mapping_is_valid(template: &str) -> bool {
    let mut indices = 0;
    let mut rest = template;
    while let Some(pos) = rest.find(['$', '\\']) {
        let tail = &rest[pos..];
        rest = if let Some(after) = tail.strip_prefix("\\$") {
            after
        } else if let Some(after) = tail.strip_prefix("$index$") {
            indices += 1;
            after
        } else if let Some(after) = tail.strip_prefix('\\') {
            after
        } else {
            return false;
        };
    }
    indices <= 1
}

/// Fills a bulk mapping for one index: `$index$` becomes the number, `\$` a dollar.
/// An empty template gives `None` (no value for that field).
pub fn expand_index_mapping(template: &str, index: i64) -> Option<String> {
    if template.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(pos) = rest.find(['$', '\\']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("\\$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("$index$") {
            out.push_str(&index.to_string());
            rest = after;
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{spec, Kind};

    #[test]
    fn mappings() {
        assert_eq!(
            expand_index_mapping("TMS_Scheduled_Meeting_$index$", 3).as_deref(),
            Some("TMS_Scheduled_Meeting_3")
        );
        assert_eq!(expand_index_mapping("$index$", 12).as_deref(), Some("12"));
        assert_eq!(expand_index_mapping("cost\\$$index$", 5).as_deref(), Some("cost$5"));
        assert_eq!(expand_index_mapping("", 5), None);
        assert!(mapping_is_valid("a\\$b$index$"));
        assert!(!mapping_is_valid("$index$$index$"));
        assert!(!mapping_is_valid("a$b"));
    }

    #[test]
    fn space_fields() {
        let s = spec(Kind::CoSpace);
        let form = Form::parse(b"&name=Room&uri=APITestURI&callId=123&passcode=12a").unwrap();
        assert_eq!(validate_changes(s.fields, &form, true).unwrap_err(), Invalid::new("passcode", "invalidValue"));
        let form = Form::parse(b"&name=Room&uri=APITestURI&callId=123").unwrap();
        let changes = validate_changes(s.fields, &form, true).unwrap();
        let uri = changes.iter().find(|c| c.field.name == "uri").unwrap();
        assert_eq!(uri.value.as_deref(), Some("apitesturi"));
        let secret = changes.iter().find(|c| c.field.name == "secret").unwrap();
        assert_eq!(secret.value.as_ref().unwrap().len(), 22);
    }

    #[test]
    fn enum_values_are_checked() {
        let s = spec(Kind::CallLegProfile);
        let form = Form::parse(b"defaultLayout=sideways").unwrap();
        assert_eq!(validate_changes(s.fields, &form, true).unwrap_err(), Invalid::new("defaultLayout", "invalidValue"));
        let form = Form::parse(b"defaultLayout=TELEPRESENCE").unwrap();
        let c = validate_changes(s.fields, &form, true).unwrap();
        assert_eq!(c[0].value.as_deref(), Some("telepresence"));
    }

    #[test]
    fn uri_generator_needs_one_dollar() {
        let s = spec(Kind::AccessMethodTemplate);
        assert!(validate_changes(s.fields, &Form::parse(b"uriGenerator=$.guest").unwrap(), true).is_ok());
        assert!(validate_changes(s.fields, &Form::parse(b"uriGenerator=$.$").unwrap(), true).is_err());
        assert!(validate_changes(s.fields, &Form::parse(b"uriGenerator=guest").unwrap(), true).is_err());
    }
}
