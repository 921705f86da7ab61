//! The iCalendar (RFC 5545, iTIP RFC 5546) part of an invitation:
//! `METHOD:REQUEST` for a new or changed meeting, `METHOD:CANCEL` for a
//! deleted one or one cancelled occurrence. One UID per series (the
//! meeting's id), SEQUENCE raised by every change, the series as RRULE with
//! its cancelled occurrences as EXDATE and its moved ones as overriding
//! VEVENTs (RECURRENCE-ID), all in the meeting's own zone with a VTIMEZONE,
//! so calendars keep the local time across daylight-saving changes.
//!
//! Pure: the DTSTAMP is passed in.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use crate::meeting::{weekday_code, Meeting};
use crate::recurrence::{to_utc, End};

/// What the invitation tells one attendee beside the times.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// The attendee's address.
    pub attendee: String,
    /// The organiser's address (`mailto:`), if known.
    pub organizer: Option<String>,
    /// Where to join (a SIP URI).
    pub location: Option<String>,
    /// The text of the invitation (URI, call ID, passcode, web link).
    pub description: String,
}

/// Escapes a TEXT value (RFC 5545 §3.3.11).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded at 75 octets (§3.1) on character boundaries.
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn local_stamp(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

/// The zone's changes of offset during `year`, as (instant, offset before, offset after).
fn transitions(zone: Tz, year: i32) -> Vec<(DateTime<Utc>, i32, i32)> {
    let offset = |t: DateTime<Utc>| zone.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc();
    let Some(mut day) = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single() else { return Vec::new() };
    let mut out = Vec::new();
    while day.year() == year {
        let next = day + Duration::days(1);
        let (a, b) = (offset(day), offset(next));
        if a != b {
            // The second it changes.
            let (mut lo, mut hi) = (day, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == a {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            out.push((hi, a, b));
        }
        day = next;
    }
    out
}

/// A VTIMEZONE for `zone` as it is in `year`, each change repeating yearly
/// on the same weekday of its month (how zones with daylight saving work).
fn vtimezone(out: &mut String, zone: Tz, year: i32) {
    line(out, "BEGIN:VTIMEZONE");
    line(out, &format!("TZID:{}", zone.name()));
    let changes = transitions(zone, year);
    if changes.is_empty() {
        let Some(jan) = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single() else { return };
        let off = zone.offset_from_utc_datetime(&jan.naive_utc());
        let seconds = off.fix().local_minus_utc();
        line(out, "BEGIN:STANDARD");
        line(out, "DTSTART:19700101T000000");
        line(out, &format!("TZOFFSETFROM:{}", offset_text(seconds)));
        line(out, &format!("TZOFFSETTO:{}", offset_text(seconds)));
        if let Some(name) = off.abbreviation() {
            line(out, &format!("TZNAME:{}", escape(name)));
        }
        line(out, "END:STANDARD");
    }
    for (at, from, to) in changes {
        let after = zone.offset_from_utc_datetime(&at.naive_utc());
        let kind = if after.dst_offset().is_zero() { "STANDARD" } else { "DAYLIGHT" };
        // DTSTART is the local time of the change in the offset before it.
        let local = at.naive_utc() + Duration::seconds(from as i64);
        let date = local.date();
        let nth = (date.day() as i64 - 1) / 7 + 1;
        let last_of_month = (date + Duration::days(7)).month() != date.month();
        let which = if last_of_month { -1 } else { nth };
        line(out, &format!("BEGIN:{kind}"));
        line(out, &format!("DTSTART:{}", local_stamp(local)));
        line(out, &format!("RRULE:FREQ=YEARLY;BYMONTH={};BYDAY={which}{}", date.month(), weekday_code(date.weekday())));
        line(out, &format!("TZOFFSETFROM:{}", offset_text(from)));
        line(out, &format!("TZOFFSETTO:{}", offset_text(to)));
        if let Some(name) = after.abbreviation() {
            line(out, &format!("TZNAME:{}", escape(name)));
        }
        line(out, &format!("END:{kind}"));
    }
    line(out, "END:VTIMEZONE");
}

fn begin(out: &mut String, method: &str, meeting: &Meeting) {
    line(out, "BEGIN:VCALENDAR");
    line(out, "VERSION:2.0");
    line(out, "PRODID:-//Confero//Scheduler//EN");
    line(out, "CALSCALE:GREGORIAN");
    line(out, &format!("METHOD:{method}"));
    vtimezone(out, meeting.schedule.zone, meeting.schedule.start.year());
}

fn event_head(out: &mut String, meeting: &Meeting, details: &Details, stamp: DateTime<Utc>, sequence: u32) {
    line(out, "BEGIN:VEVENT");
    line(out, &format!("UID:{}", uid(meeting)));
    line(out, &format!("DTSTAMP:{}", utc_stamp(stamp)));
    line(out, &format!("SEQUENCE:{sequence}"));
    line(out, &format!("SUMMARY:{}", escape(&meeting.name)));
    if let Some(o) = &details.organizer {
        line(out, &format!("ORGANIZER:mailto:{o}"));
    }
    line(out, &format!("ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{}", details.attendee));
    if let Some(l) = &details.location {
        line(out, &format!("LOCATION:{}", escape(l)));
    }
    if !details.description.is_empty() {
        line(out, &format!("DESCRIPTION:{}", escape(&details.description)));
    }
}

fn zoned(name: &str, zone: Tz, t: NaiveDateTime) -> String {
    format!("{name};TZID={}:{}", zone.name(), local_stamp(t))
}

/// The series' UID: the meeting's id, so every change and cancellation of
/// it (and of one of its occurrences) names the same event.
pub fn uid(meeting: &Meeting) -> String {
    format!("{}@confero", meeting.id)
}

/// The `RRULE` value of the meeting's recurrence, if it repeats.
pub fn rrule(meeting: &Meeting) -> Option<String> {
    let s = &meeting.schedule;
    let r = s.recurrence.as_ref()?;
    let mut rule = format!("FREQ={};INTERVAL={}", r.frequency.rfc5545(), r.interval);
    if !r.days.is_empty() {
        let days: Vec<&str> = r.days.iter().map(|d| weekday_code(*d)).collect();
        rule.push_str(&format!(";BYDAY={}", days.join(",")));
    }
    match r.end {
        End::Count(n) => rule.push_str(&format!(";COUNT={n}")),
        End::Until(date) => {
            // With a zoned DTSTART, UNTIL is UTC (§3.3.10): the end of that local day.
            let last = date.and_time(s.start.time());
            rule.push_str(&format!(";UNTIL={}", utc_stamp(to_utc(s.zone, last))));
        }
        End::Never => {}
    }
    Some(rule)
}

/// `METHOD:REQUEST`: the whole series for one attendee.
pub fn request(meeting: &Meeting, details: &Details, stamp: DateTime<Utc>) -> String {
    let s = &meeting.schedule;
    let mut out = String::new();
    begin(&mut out, "REQUEST", meeting);
    event_head(&mut out, meeting, details, stamp, meeting.sequence);
    line(&mut out, &zoned("DTSTART", s.zone, s.start));
    line(&mut out, &zoned("DTEND", s.zone, s.end));
    if let Some(rule) = rrule(meeting) {
        line(&mut out, &format!("RRULE:{rule}"));
        for e in &s.exceptions {
            if e.moved_to.is_none() {
                line(&mut out, &zoned("EXDATE", s.zone, e.occurrence));
            }
        }
    }
    line(&mut out, "STATUS:CONFIRMED");
    line(&mut out, "END:VEVENT");
    if s.recurrence.is_some() {
        for e in &s.exceptions {
            if let Some((start, end)) = e.moved_to {
                event_head(&mut out, meeting, details, stamp, meeting.sequence);
                line(&mut out, &zoned("RECURRENCE-ID", s.zone, e.occurrence));
                line(&mut out, &zoned("DTSTART", s.zone, start));
                line(&mut out, &zoned("DTEND", s.zone, end));
                line(&mut out, "STATUS:CONFIRMED");
                line(&mut out, "END:VEVENT");
            }
        }
    }
    line(&mut out, "END:VCALENDAR");
    out
}

/// `METHOD:CANCEL`: the whole series, or (`occurrence`) one occurrence of it
/// named by its local start as the rule gives it.
pub fn cancel(meeting: &Meeting, details: &Details, occurrence: Option<NaiveDateTime>, stamp: DateTime<Utc>) -> String {
    let s = &meeting.schedule;
    let mut out = String::new();
    begin(&mut out, "CANCEL", meeting);
    event_head(&mut out, meeting, details, stamp, meeting.sequence);
    match occurrence {
        Some(o) => {
            line(&mut out, &zoned("RECURRENCE-ID", s.zone, o));
            line(&mut out, &zoned("DTSTART", s.zone, o));
            line(&mut out, &zoned("DTEND", s.zone, o + (s.end - s.start)));
        }
        None => {
            line(&mut out, &zoned("DTSTART", s.zone, s.start));
            line(&mut out, &zoned("DTEND", s.zone, s.end));
            if let Some(rule) = rrule(meeting) {
                line(&mut out, &format!("RRULE:{rule}"));
            }
        }
    }
    line(&mut out, "STATUS:CANCELLED");
    line(&mut out, "END:VEVENT");
    line(&mut out, "END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::Meeting;
    use serde_json::json;
    use uuid::Uuid;

    fn meeting() -> Meeting {
        let body = json!({"name": "Weekly sync; all, hands", "coSpaceTemplate": "6a0b7c4e-8e4e-4bb6-9b43-2f7b3f1f5a01",
            "start": "2027-03-22T10:00", "end": "2027-03-22T11:00", "timeZone": "Europe/Madrid",
            "recurrence": {"frequency": "weekly", "days": ["MO"], "count": 4},
            "exceptions": [{"occurrence": "2027-03-29T10:00", "cancelled": true},
                           {"occurrence": "2027-04-05T10:00", "start": "2027-04-06T12:00", "end": "2027-04-06T13:00"}]});
        Meeting::from_json(&body, Uuid::nil(), "api", false).unwrap()
    }

    fn stamp() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_request_has_the_rule_the_exdate_the_override_and_the_zone() {
        let details = Details {
            attendee: "ana@example.test".into(),
            description: "Join: sip:a@b\nPasscode: 1".into(),
            ..Default::default()
        };
        let text = request(&meeting(), &details, stamp());
        for expected in [
            "METHOD:REQUEST\r\n",
            "TZID:Europe/Madrid\r\n",
            "BEGIN:DAYLIGHT\r\nDTSTART:20270328T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n",
            "BEGIN:STANDARD\r\nDTSTART:20271031T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n",
            "UID:00000000-0000-0000-0000-000000000000@confero\r\n",
            "SUMMARY:Weekly sync\\; all\\, hands\r\n",
            "DTSTART;TZID=Europe/Madrid:20270322T100000\r\n",
            "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=4\r\n",
            "EXDATE;TZID=Europe/Madrid:20270329T100000\r\n",
            "RECURRENCE-ID;TZID=Europe/Madrid:20270405T100000\r\nDTSTART;TZID=Europe/Madrid:20270406T120000\r\n",
            "DESCRIPTION:Join: sip:a@b\\nPasscode: 1\r\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        assert!(text.lines().all(|l| l.len() <= 75), "{text}");
    }

    #[test]
    fn a_cancel_of_one_occurrence_names_it() {
        let details = Details { attendee: "ana@example.test".into(), ..Default::default() };
        let text = cancel(&meeting(), &details, Some(meeting().schedule.start), stamp());
        assert!(text.contains("METHOD:CANCEL\r\n") && text.contains("STATUS:CANCELLED\r\n"));
        assert!(text.contains("RECURRENCE-ID;TZID=Europe/Madrid:20270322T100000\r\n"), "{text}");
    }

    /// The fuzz target's seeds read, expand and write as calendars (or are
    /// refused naming a field).
    #[test]
    fn the_fuzz_seeds_make_calendars() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/meeting");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let body: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            // A seed may be a refusal the fuzzer found: it names its field.
            let m = match Meeting::from_json(&body, Uuid::nil(), "api", false) {
                Ok(m) => m,
                Err(e) => {
                    assert!(!e.field.is_empty());
                    continue;
                }
            };
            let details = Details { attendee: "a@b".into(), ..Default::default() };
            let text = request(&m, &details, stamp());
            assert!(text.contains("RRULE:FREQ=") && text.contains("BEGIN:VTIMEZONE"), "{text}");
            seen += 1;
        }
        assert!(seen >= 2);
    }

    #[test]
    fn long_lines_fold_on_character_boundaries() {
        let mut out = String::new();
        line(&mut out, &format!("DESCRIPTION:{}", "ñ".repeat(80)));
        for l in out.split("\r\n") {
            assert!(l.len() <= 75);
        }
        assert_eq!(out.replace("\r\n ", "").trim_end(), format!("DESCRIPTION:{}", "ñ".repeat(80)));
    }
}
