//! The text of an invitation: a template with the meeting's details put in.
//!
//! CMS lets a call branding profile's `invitationTemplate` name a text file,
//! fetched over HTTP(S), that words the invitations of the spaces it
//! brands. Cisco's customization guide describes a template language with
//! variables and conditions, but not its variable names, so the small
//! language here is ours (`docs/invitations.md`):
//!
//! - `{{ name }}` puts in a value: `name`, `organizer`, `attendee`, `start`,
//!   `end`, `time_zone`, `repeats`, `uri`, `call_id`, `web_link`,
//!   `passcode`. A value that is not there is empty.
//! - `{% if name %}` … `{% else %}` … `{% endif %}` keep a part when the
//!   value is there (not empty); they nest.
//! - A line holding only a `{% %}` tag is left out whole, newline and all,
//!   so a template reads as the mail it makes.
//!
//! A template that names an unknown value or leaves a tag open is refused
//! with its line, and the built-in wording ([`Template::default`]) is used;
//! values are put in as they are and never read as template text.

use std::time::Duration;

/// The values a template may name.
pub const VALUES: [&str; 11] =
    ["name", "organizer", "attendee", "start", "end", "time_zone", "repeats", "uri", "call_id", "web_link", "passcode"];

/// The largest template fetched; a mail's worth of text.
pub const MAX_TEMPLATE: usize = 64 * 1024;

/// The most `{% if %}` levels inside one another.
const MAX_DEPTH: usize = 16;

/// The wording used when no branding names a template (or it cannot be used).
const BUILT_IN: &str = "\
You are invited to \"{{ name }}\".
{% if organizer %}
Organizer: {{ organizer }}
{% endif %}
When: {{ start }} to {{ end }} ({{ time_zone }})
{% if repeats %}
Repeats: {{ repeats }}
{% endif %}
{% if uri %}
Video address (SIP): {{ uri }}
{% endif %}
{% if call_id %}
Call ID: {{ call_id }}
{% endif %}
{% if web_link %}
Web link: {{ web_link }}
{% endif %}
{% if passcode %}
Passcode: {{ passcode }}
{% endif %}
";

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(&'static str),
    If { value: &'static str, then: Vec<Part>, otherwise: Vec<Part> },
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invitation template line {line}: {problem}")]
pub struct TemplateError {
    /// 1-based.
    pub line: usize,
    /// What is wrong there.
    pub problem: String,
}

impl Default for Template {
    fn default() -> Self {
        Template::parse(BUILT_IN).expect("the built-in invitation template parses")
    }
}

/// A block being filled while parsing: its parts so far and, inside an
/// `if`, the value tested, the `then` parts once an `else` was seen, and
/// whether it was.
struct Open {
    parts: Vec<Part>,
    test: Option<(&'static str, Vec<Part>, bool)>,
}

/// A tag as read: `{{ value }}` or one of the block tags.
enum Tag {
    Value(&'static str),
    If(&'static str),
    Else,
    EndIf,
}

impl Template {
    /// Reads a template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        // Blocks being filled: the outermost first; each `if` pushes one.
        let mut stack = vec![Open { parts: Vec::new(), test: None }];
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let refuse = |problem: String| TemplateError { line: n + 1, problem };
            // A line that is one block tag alone leaves no trace.
            let trimmed = line.trim();
            // (At least 4 bytes: in `{%}` the two marks overlap.)
            let alone = trimmed.len() >= 4
                && trimmed.starts_with("{%")
                && trimmed.ends_with("%}")
                && trimmed[2..].find("%}") == Some(trimmed.len() - 4);
            let mut rest = if alone { trimmed } else { line };
            while !rest.is_empty() {
                let open = [rest.find("{{"), rest.find("{%")].into_iter().flatten().min();
                let Some(at) = open else {
                    push_text(&mut stack.last_mut().expect("a block").parts, rest);
                    break;
                };
                push_text(&mut stack.last_mut().expect("a block").parts, &rest[..at]);
                let close = if rest[at..].starts_with("{{") { "}}" } else { "%}" };
                let end = rest[at + 2..]
                    .find(close)
                    .ok_or_else(|| refuse(format!("{} without {close}", &rest[at..at + 2])))?;
                let inner = rest[at + 2..at + 2 + end].trim();
                let tag = if close == "}}" { value_tag(inner) } else { block_tag(inner) }.map_err(refuse)?;
                rest = &rest[at + 2 + end + 2..];
                match tag {
                    Tag::Value(v) => stack.last_mut().expect("a block").parts.push(Part::Value(v)),
                    Tag::If(v) => {
                        if stack.len() > MAX_DEPTH {
                            return Err(refuse(format!("more than {MAX_DEPTH} if blocks inside one another")));
                        }
                        stack.push(Open { parts: Vec::new(), test: Some((v, Vec::new(), false)) });
                    }
                    Tag::Else => {
                        let Open { parts, test } = stack.last_mut().expect("a block");
                        match test {
                            Some((_, then, in_else @ false)) => {
                                *then = std::mem::take(parts);
                                *in_else = true;
                            }
                            _ => return Err(refuse("else without if".into())),
                        }
                    }
                    Tag::EndIf => {
                        let Open { parts, test } = stack.pop().expect("a block");
                        let Some((value, then, in_else)) = test else {
                            return Err(refuse("endif without if".into()));
                        };
                        let (then, otherwise) = if in_else { (then, parts) } else { (parts, Vec::new()) };
                        stack.last_mut().expect("an enclosing block").parts.push(Part::If { value, then, otherwise });
                    }
                }
            }
        }
        if stack.len() > 1 {
            let line = text.split_inclusive('\n').count();
            return Err(TemplateError { line, problem: "an if without endif".into() });
        }
        Ok(Template { parts: stack.pop().expect("the outermost block").parts })
    }

    /// The text, with `value(name)` put in for each value named (`None`
    /// or empty: the value is not there).
    pub fn render(&self, value: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        render(&self.parts, value, &mut out);
        out
    }
}

fn render(parts: &[Part], value: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Value(v) => out.push_str(&value(v).unwrap_or_default()),
            Part::If { value: v, then, otherwise } => {
                let there = value(v).is_some_and(|s| !s.is_empty());
                render(if there { then } else { otherwise }, value, out);
            }
        }
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if text.is_empty() {
        return;
    }
    match parts.last_mut() {
        Some(Part::Text(t)) => t.push_str(text),
        _ => parts.push(Part::Text(text.to_string())),
    }
}

fn known(name: &str) -> Result<&'static str, String> {
    VALUES.iter().find(|v| **v == name).copied().ok_or_else(|| format!("{name:?} is not a value an invitation has"))
}

fn value_tag(inner: &str) -> Result<Tag, String> {
    known(inner).map(Tag::Value)
}

fn block_tag(inner: &str) -> Result<Tag, String> {
    let mut words = inner.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("if"), Some(name), None) => known(name).map(Tag::If),
        (Some("else"), None, None) => Ok(Tag::Else),
        (Some("endif"), None, None) => Ok(Tag::EndIf),
        _ => Err(format!("{{% {inner} %}} is not a tag (if NAME, else, endif)")),
    }
}

/// Fetches the template at `url` (at most [`MAX_TEMPLATE`] bytes of UTF-8,
/// within `timeout`); why not, for the log.
pub async fn fetch(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<Template, String> {
    let answer = http.get(url).timeout(timeout).send().await.map_err(|e| e.to_string())?;
    if !answer.status().is_success() {
        return Err(format!("HTTP {}", answer.status()));
    }
    if answer.content_length().is_some_and(|n| n > MAX_TEMPLATE as u64) {
        return Err("larger than 64 KiB".into());
    }
    let body = answer.bytes().await.map_err(|e| e.to_string())?;
    if body.len() > MAX_TEMPLATE {
        return Err("larger than 64 KiB".into());
    }
    let text = std::str::from_utf8(&body).map_err(|_| "not UTF-8".to_string())?;
    Template::parse(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_built_in_wording_leaves_out_what_is_not_there() {
        let t = Template::default();
        let text = t.render(&values(&[
            ("name", "Weekly sync"),
            ("start", "Mon 07 Dec 2026 10:00"),
            ("end", "11:00"),
            ("time_zone", "Europe/Madrid"),
            ("call_id", "123456"),
            ("passcode", "4321"),
        ]));
        assert_eq!(
            text,
            "You are invited to \"Weekly sync\".\nWhen: Mon 07 Dec 2026 10:00 to 11:00 (Europe/Madrid)\n\
             Call ID: 123456\nPasscode: 4321\n"
        );
    }

    #[test]
    fn conditions_nest_and_else_takes_the_other_part() {
        let t = Template::parse(
            "Join {{name}}{% if passcode %} with {{ passcode }}{% else %} freely{% endif %}.\n\
             {% if uri %}\n  {% if call_id %}\nboth\n  {% endif %}\n{% endif %}\nend\n",
        )
        .unwrap();
        assert_eq!(t.render(&values(&[("name", "A"), ("passcode", "1")])), "Join A with 1.\nend\n");
        assert_eq!(t.render(&values(&[("name", "A"), ("passcode", "")])), "Join A freely.\nend\n");
        assert_eq!(t.render(&values(&[("uri", "u"), ("call_id", "c")])), "Join  freely.\nboth\nend\n");
        // A value is put in as it is, never read as a template.
        assert_eq!(t.render(&values(&[("name", "{{ passcode }}")])), "Join {{ passcode }} freely.\nend\n");
    }

    #[test]
    fn refusals_name_the_line() {
        for (text, line) in [
            ("a\n{{ secret }}\n", 2),
            ("{% if uri %}\nx\n", 2),
            ("{% endif %}", 1),
            ("x\n{% else %}\n", 2),
            ("{% if uri %}{% else %}{% else %}{% endif %}", 1),
            ("{{ name", 1),
            ("{% for x in y %}{% endfor %}", 1),
            // Found by the fuzz campaign: the marks overlap.
            ("x\n {%} \n", 2),
            (&"{% if uri %}".repeat(20), 1),
        ] {
            assert_eq!(Template::parse(text).map_err(|e| e.line), Err(line), "{text}");
        }
    }
}
