//! DTMF in SIP INFO bodies, the fallback when a peer does not send RFC 4733
//! events: `application/dtmf-relay` (`Signal=5`, `Duration=160`, Cisco and
//! most PBXs) and `application/dtmf` (the digit alone).

use crate::message::Message;

/// The digit and duration an INFO carries, if it is a DTMF INFO.
pub(super) fn parse_info(info: &Message) -> Option<(char, Option<u32>)> {
    let body = std::str::from_utf8(&info.body).ok()?;
    match info.content_type()?.as_str() {
        "application/dtmf-relay" => {
            let mut digit = None;
            let mut duration = None;
            for line in body.lines() {
                let Some((name, value)) = line.split_once('=') else { continue };
                match name.trim().to_ascii_lowercase().as_str() {
                    "signal" => digit = to_digit(value.trim()),
                    "duration" => duration = value.trim().parse().ok(),
                    _ => {}
                }
            }
            digit.map(|d| (d, duration))
        }
        "application/dtmf" => to_digit(body.trim()).map(|d| (d, None)),
        _ => None,
    }
}

/// A digit from its text or its RFC 4733 event number (10 = *, 11 = #).
fn to_digit(text: &str) -> Option<char> {
    match text {
        "10" => return Some('*'),
        "11" => return Some('#'),
        "12" => return Some('A'),
        "13" => return Some('B'),
        "14" => return Some('C'),
        "15" => return Some('D'),
        _ => {}
    }
    let mut chars = text.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && (c.is_ascii_digit() || "*#ABCD".contains(c))).then_some(c)
}
