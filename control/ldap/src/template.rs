//! CMS field mapping templates (`ldapMappings`): literal text with
//! `$attribute$` substitutions, and the sed-like form
//! `$attribute|'/regex/replacement/option'$` CMS documents:
//!
//! - `option` is `g` (every match) or empty (the first);
//! - `\0` … `\9` in the replacement are the whole match and the groups;
//! - inside the quotes a `'` is written `\'`, and a backslash `\\` (as in
//!   sed: `\w` and `\.` in the regex are the regex's own escapes);
//! - any character but `'`, `\` and the digits may stand for `/`, and the
//!   separator is written `\/` (or `\<sep>`) inside a part;
//! - `$$` is a literal `$`.
//!
//! Pure and total: a template comes from an API client, so every refusal is
//! a [`TemplateError`], never a panic (`fuzz_targets/ldap_mapping.rs`).

use regex::{Regex, RegexBuilder};

/// Longest template accepted: far above any real mapping.
pub const MAX_TEMPLATE: usize = 1024;
/// Compiled regex size limit, so a client cannot make the server build a
/// huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 18;

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Longer than [`MAX_TEMPLATE`].
    #[error("longer than {MAX_TEMPLATE} characters")]
    TooLong,
    /// A `$` opens a substitution that never closes.
    #[error("a '$' is not closed")]
    Unclosed,
    /// A substitution names no attribute, or an attribute with characters an
    /// attribute description cannot have.
    #[error("bad attribute name {0:?}")]
    BadAttribute(String),
    /// The `|'…'` part is malformed: quotes, separator or option.
    #[error("bad substitution expression: {0}")]
    BadExpression(&'static str),
    /// The regex does not compile.
    #[error("bad regular expression: {0}")]
    BadRegex(String),
}

/// One piece of a template.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Attribute { name: String, rewrite: Option<Rewrite> },
}

/// A sed-like substitution applied to an attribute's value.
#[derive(Debug, Clone)]
struct Rewrite {
    regex: Regex,
    /// In the regex crate's syntax (`${1}`, `$$`).
    replacement: String,
    global: bool,
}

/// A parsed mapping template.
#[derive(Debug, Clone, Default)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; the empty text is the empty template (a mapping not set).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.len() > MAX_TEMPLATE {
            return Err(TemplateError::TooLong);
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let (piece, after) = parse_substitution(rest)?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
            rest = after;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// True when the template makes nothing (the mapping is not set).
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The attributes the template reads, as written.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Attribute { name, .. } => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The template filled from an entry: `value(name)` is the attribute's
    /// (first) value. `None` when an attribute it names is missing, as CMS
    /// does not import a field it cannot make whole.
    pub fn expand<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Attribute { name, rewrite } => {
                    let v = value(name)?;
                    match rewrite {
                        None => out.push_str(v),
                        Some(r) if r.global => out.push_str(&r.regex.replace_all(v, r.replacement.as_str())),
                        Some(r) => out.push_str(&r.regex.replace(v, r.replacement.as_str())),
                    }
                }
            }
        }
        Some(out)
    }
}

/// Parses what follows an opening `$`: `name$` or `name|'expr'$`.
fn parse_substitution(rest: &str) -> Result<(Piece, &str), TemplateError> {
    let end = rest.find(['$', '|']).ok_or(TemplateError::Unclosed)?;
    let name = &rest[..end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ';' | '.' | '_')) {
        return Err(TemplateError::BadAttribute(name.chars().take(64).collect()));
    }
    let name = name.to_string();
    let after = &rest[end..];
    if let Some(after) = after.strip_prefix('$') {
        return Ok((Piece::Attribute { name, rewrite: None }, after));
    }
    // `|'`, the quoted expression (with `\'` and `\\`), `'$`.
    let quoted = after.strip_prefix("|'").ok_or(TemplateError::BadExpression("expected |' after the attribute"))?;
    let mut expr = Vec::new();
    let mut chars = quoted.char_indices();
    let close = loop {
        match chars.next() {
            None => return Err(TemplateError::Unclosed),
            Some((i, '\'')) => break i,
            Some((_, '\\')) => match chars.next() {
                Some((_, '\'')) => expr.push(Unescaped::Plain('\'')),
                Some((_, c)) => expr.push(Unescaped::Escaped(c)),
                None => return Err(TemplateError::Unclosed),
            },
            Some((_, c)) => expr.push(Unescaped::Plain(c)),
        }
    };
    let after = quoted[close + 1..].strip_prefix('$').ok_or(TemplateError::BadExpression("expected '$ to close"))?;
    let rewrite = parse_rewrite(&expr)?;
    Ok((Piece::Attribute { name, rewrite: Some(rewrite) }, after))
}

/// A character of the quoted expression once `\'` is undone; `Escaped` is
/// any other backslash pair (`\\` included), which the sed level reads as
/// sed does.
#[derive(Clone, Copy)]
enum Unescaped {
    Plain(char),
    Escaped(char),
}

/// `/regex/replacement/option` over the unescaped expression.
fn parse_rewrite(expr: &[Unescaped]) -> Result<Rewrite, TemplateError> {
    let Some(&Unescaped::Plain(sep)) = expr.first() else {
        return Err(TemplateError::BadExpression("no separator"));
    };
    if sep == '\'' || sep == '\\' || sep.is_ascii_digit() {
        return Err(TemplateError::BadExpression("the separator may not be a quote, a backslash or a digit"));
    }
    let mut parts: Vec<Vec<Unescaped>> = vec![Vec::new()];
    for &c in &expr[1..] {
        match c {
            Unescaped::Plain(c) if c == sep => parts.push(Vec::new()),
            other => {
                if let Some(part) = parts.last_mut() {
                    part.push(other);
                }
            }
        }
    }
    if parts.len() != 3 {
        return Err(TemplateError::BadExpression("expected /regex/replacement/option"));
    }
    let option: String = parts[2]
        .iter()
        .map(|c| match c {
            Unescaped::Plain(c) | Unescaped::Escaped(c) => *c,
        })
        .collect();
    let global = match option.as_str() {
        "" => false,
        "g" => true,
        _ => return Err(TemplateError::BadExpression("the option may only be g")),
    };
    let mut pattern = String::new();
    for c in &parts[0] {
        match *c {
            // An escaped separator is the character itself, literally.
            Unescaped::Escaped(c) if c == sep => pattern.push_str(&regex::escape(&c.to_string())),
            Unescaped::Escaped(c) => {
                pattern.push('\\');
                pattern.push(c);
            }
            Unescaped::Plain(c) => pattern.push(c),
        }
    }
    let mut replacement = String::new();
    for c in &parts[1] {
        match *c {
            Unescaped::Escaped(d) if d.is_ascii_digit() => {
                replacement.push_str("${");
                replacement.push(d);
                replacement.push('}');
            }
            Unescaped::Escaped('$') | Unescaped::Plain('$') => replacement.push_str("$$"),
            // `\\` is a backslash; `\x` is x.
            Unescaped::Escaped(c) | Unescaped::Plain(c) => replacement.push(c),
        }
    }
    let regex = RegexBuilder::new(&pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| TemplateError::BadRegex(e.to_string().lines().last().unwrap_or("").to_string()))?;
    Ok(Rewrite { regex, replacement, global })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(template: &str, attrs: &[(&str, &str)]) -> Option<String> {
        let t = Template::parse(template).unwrap();
        t.expand(|n| attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| *v))
    }

    #[test]
    fn plain_substitutions() {
        let a = [("sAMAccountName", "fred"), ("cn", "Fred Blogs")];
        assert_eq!(fill("$sAMAccountName$@example.com", &a).unwrap(), "fred@example.com");
        assert_eq!(fill("$cn$ personal space", &a).unwrap(), "Fred Blogs personal space");
        assert_eq!(fill("cost $$5", &a).unwrap(), "cost $5");
        assert_eq!(fill("$mail$", &a), None);
        assert!(Template::parse("").unwrap().is_empty());
    }

    #[test]
    fn the_documented_sed_forms() {
        let a = [("mail", "first.last@test.example.com"), ("cn", "Anna Banana")];
        assert_eq!(fill("$mail|'/@test/@xmpp/'$", &a).unwrap(), "first.last@xmpp.example.com");
        assert_eq!(fill("$cn|'/a//g'$", &a).unwrap(), "Ann Bnn");
        assert_eq!(fill("$cn|'/a//'$", &a).unwrap(), "Ann Banana");
        assert_eq!(fill("$mail|'/@.*//'$.space", &a).unwrap(), "first.last.space");
        assert_eq!(fill("$mail|'/(\\w+)\\.(\\w+)@.*/\\2.\\1/'$", &a).unwrap(), "last.first");
        assert_eq!(fill("$cn|'/ /\\\\/'$", &a).unwrap(), "Anna\\Banana");
        assert_eq!(fill("$mail|'/\\/.*//'$", &[("mail", "a/b")]).unwrap(), "a");
        assert_eq!(fill("$cn|'#Anna#Ann\\'s#'$", &a).unwrap(), "Ann's Banana");
        assert_eq!(fill("$cn|',a,$,g'$", &a).unwrap(), "Ann$ B$n$n$");
    }

    #[test]
    fn refusals() {
        for bad in ["$cn", "$$$", "$c n$", "$cn|/a//'$", "$cn|'/a/'$", "$cn|'/a//x'$", "$cn|'/(/x/'$", "$cn|'1a1b1'$"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Template::parse(&"a".repeat(MAX_TEMPLATE + 1)).unwrap_err(), TemplateError::TooLong);
    }
}
