//! A meeting as the API takes and gives it: JSON with fixed field names
//! (tools and tests rely on them), checked field by field so a refusal names
//! the field. Pure: whether the spaces and templates it names exist is the
//! service's business ([`crate::service`]).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::recurrence::{End, Exception, Frequency, Recurrence, Schedule, MAX_COUNT, MAX_INTERVAL};

/// A refusal of a request's content, naming the field at fault (a JSON
/// path such as `attendees[1].email`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field at fault.
    pub field: String,
    /// Why, in a few words (`missing`, `invalidValue`, ...).
    pub reason: String,
}

impl FieldError {
    /// A refusal of `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), reason: reason.into() }
    }
}

/// Where a meeting takes place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Venue {
    /// An existing space of the organiser's.
    Space(Uuid),
    /// A temporary space made from a template; `made` once it exists.
    Template {
        /// The `coSpaceTemplate`.
        template: Uuid,
        /// The space made for the meeting.
        made: Option<Uuid>,
    },
}

/// One invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// Where the invitation goes.
    pub email: String,
    /// Their role: which access method they get.
    pub access_method_template: Uuid,
}

/// How one role joins: the access method made for it in a temporary space
/// (or, in an existing space, the space's own URI and call ID).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    /// The access method's id, when one was made.
    pub id: Option<Uuid>,
    /// SIP URI (user part).
    pub uri: Option<String>,
    /// Numeric call ID (meeting ID in the web app).
    pub call_id: Option<String>,
    /// Passcode, if the role has one.
    pub passcode: Option<String>,
}

/// A meeting (a series, or a single occurrence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    /// Its id, also the iCalendar UID of its series.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Where.
    pub venue: Venue,
    /// When.
    pub schedule: Schedule,
    /// The organiser's JID, or the API user that made it.
    pub organizer: Option<String>,
    /// The invitees.
    pub attendees: Vec<Attendee>,
    /// A passcode per role (`accessMethodTemplate` id).
    pub passcodes: BTreeMap<Uuid, String>,
    /// The iCalendar SEQUENCE: raised by each change sent to attendees.
    pub sequence: u32,
    /// How each role joins, filled when the space is made.
    pub access: BTreeMap<Uuid, Access>,
    /// Who made it (an API user or web user name): web users see only theirs.
    pub owner: String,
}

/// The most attendees one meeting may have.
pub const MAX_ATTENDEES: usize = 500;
/// The most exceptions one series may have.
pub const MAX_EXCEPTIONS: usize = 500;

/// How far an `until` may be from the start: bounds every walk of a series.
pub const MAX_YEARS: u32 = 10;
/// The years a meeting may start in.
pub const FIRST_YEAR: i32 = 1970;
/// See [`FIRST_YEAR`].
pub const LAST_YEAR: i32 = 2200;

const LOCAL_FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"];

/// A local date and time as the API writes it (`2027-03-22T10:00`; `:00`
/// seconds allowed). Meetings are kept to the minute: other seconds are
/// refused rather than dropped (the fuzzer found a time that changed on a
/// round trip).
pub fn parse_local(s: &str) -> Option<NaiveDateTime> {
    LOCAL_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .filter(|t| t.second() == 0 && t.nanosecond() == 0)
}

/// How the API writes a local date and time.
pub fn format_local(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

/// The two-letter RFC 5545 weekday.
pub fn weekday_code(d: Weekday) -> &'static str {
    ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][d.num_days_from_monday() as usize]
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

fn text<'a>(obj: &'a Map<String, Value>, field: &str, path: &str) -> Result<Option<&'a str>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(FieldError::new(path, "must be a string")),
    }
}

fn required<'a>(obj: &'a Map<String, Value>, field: &str, path: &str) -> Result<&'a str, FieldError> {
    match text(obj, field, path)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(FieldError::new(path, "missing")),
    }
}

fn guid(s: &str, path: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(s).map_err(|_| FieldError::new(path, "not a GUID"))
}

fn local(obj: &Map<String, Value>, field: &str, path: &str) -> Result<NaiveDateTime, FieldError> {
    parse_local(required(obj, field, path)?)
        .ok_or_else(|| FieldError::new(path, "not a local date and time YYYY-MM-DDTHH:MM"))
}

/// A plausible address: one `@`, something each side, no spaces or line
/// breaks (it becomes a mail header), at most 254 characters.
fn check_email(s: &str, path: &str) -> Result<String, FieldError> {
    let ok = s.len() <= 254
        && s.split('@').count() == 2
        && s.split('@').all(|p| !p.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(FieldError::new(path, "not an email address"))
    }
}

fn no_controls(s: &str, path: &str, max: usize) -> Result<String, FieldError> {
    if s.chars().count() > max {
        return Err(FieldError::new(path, format!("longer than {max} characters")));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(path, "contains control characters"));
    }
    Ok(s.to_string())
}

fn parse_recurrence(v: &Value, start: NaiveDateTime) -> Result<Option<Recurrence>, FieldError> {
    let obj = match v {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        _ => return Err(FieldError::new("recurrence", "must be an object")),
    };
    let frequency = required(obj, "frequency", "recurrence.frequency")?;
    if frequency == "none" {
        return Ok(None);
    }
    let frequency = Frequency::parse(frequency)
        .ok_or_else(|| FieldError::new("recurrence.frequency", "must be none, daily, weekly, monthly or yearly"))?;
    let interval = match obj.get("interval") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_INTERVAL as u64).contains(&n) => n as u32,
            _ => return Err(FieldError::new("recurrence.interval", format!("must be 1 to {MAX_INTERVAL}"))),
        },
    };
    let mut days = Vec::new();
    match obj.get("days") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if frequency == Frequency::Weekly => {
            for (i, d) in a.iter().enumerate() {
                let day = d.as_str().and_then(parse_weekday).ok_or_else(|| {
                    FieldError::new(format!("recurrence.days[{i}]"), "must be one of MO TU WE TH FR SA SU")
                })?;
                if !days.contains(&day) {
                    days.push(day);
                }
            }
            days.sort_by_key(|d| d.num_days_from_monday());
        }
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(_)) => return Err(FieldError::new("recurrence.days", "only for a weekly recurrence")),
        Some(_) => return Err(FieldError::new("recurrence.days", "must be an array")),
    }
    let count = obj.get("count").filter(|v| !v.is_null());
    let until = text(obj, "until", "recurrence.until")?;
    let end = match (count, until) {
        (Some(_), Some(_)) => return Err(FieldError::new("recurrence.until", "give count or until, not both")),
        (Some(c), None) => match c.as_u64() {
            Some(n) if (1..=MAX_COUNT as u64).contains(&n) => End::Count(n as u32),
            _ => return Err(FieldError::new("recurrence.count", format!("must be 1 to {MAX_COUNT}"))),
        },
        (None, Some(u)) => {
            let date = NaiveDate::parse_from_str(u, "%Y-%m-%d")
                .map_err(|_| FieldError::new("recurrence.until", "not a date YYYY-MM-DD"))?;
            if date < start.date() {
                return Err(FieldError::new("recurrence.until", "before the start"));
            }
            if date.years_since(start.date()).unwrap_or(0) >= MAX_YEARS {
                return Err(FieldError::new("recurrence.until", format!("{MAX_YEARS} years or more after the start")));
            }
            End::Until(date)
        }
        (None, None) => End::Never,
    };
    Ok(Some(Recurrence { frequency, interval, days, end }))
}

fn parse_exceptions(v: Option<&Value>, schedule: &Schedule) -> Result<Vec<Exception>, FieldError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(FieldError::new("exceptions", "must be an array")),
    };
    if list.len() > MAX_EXCEPTIONS {
        return Err(FieldError::new("exceptions", format!("more than {MAX_EXCEPTIONS}")));
    }
    let mut out: Vec<Exception> = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let path = format!("exceptions[{i}]");
        let Value::Object(o) = e else { return Err(FieldError::new(path, "must be an object")) };
        let occurrence = local(o, "occurrence", &format!("{path}.occurrence"))?;
        if !schedule.is_rule_start(occurrence) {
            return Err(FieldError::new(format!("{path}.occurrence"), "not an occurrence of this meeting"));
        }
        if out.iter().any(|x| x.occurrence == occurrence) {
            return Err(FieldError::new(format!("{path}.occurrence"), "given twice"));
        }
        let cancelled = match o.get("cancelled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(FieldError::new(format!("{path}.cancelled"), "must be true or false")),
        };
        let moved_to = if cancelled {
            None
        } else {
            let start = local(o, "start", &format!("{path}.start"))?;
            let end = local(o, "end", &format!("{path}.end"))?;
            if end <= start {
                return Err(FieldError::new(format!("{path}.end"), "not after start"));
            }
            Some((start, end))
        };
        out.push(Exception { occurrence, moved_to });
    }
    Ok(out)
}

impl Meeting {
    /// Reads a meeting from a request body (or a stored record, `stored`:
    /// which also carries the fields only the service writes). `id` and
    /// `owner` are the service's.
    pub fn from_json(body: &Value, id: Uuid, owner: &str, stored: bool) -> Result<Meeting, FieldError> {
        let Value::Object(obj) = body else { return Err(FieldError::new("body", "must be a JSON object")) };
        let name = no_controls(required(obj, "name", "name")?, "name", 200)?;
        let space = text(obj, "coSpace", "coSpace")?;
        let template = text(obj, "coSpaceTemplate", "coSpaceTemplate")?;
        let venue = match (space, template) {
            (Some(_), Some(t)) if !stored => {
                let _ = t;
                return Err(FieldError::new("coSpaceTemplate", "give coSpace or coSpaceTemplate, not both"));
            }
            (made, Some(t)) => Venue::Template {
                template: guid(t, "coSpaceTemplate")?,
                made: made.map(|m| guid(m, "coSpace")).transpose()?,
            },
            (Some(s), None) => Venue::Space(guid(s, "coSpace")?),
            (None, None) => return Err(FieldError::new("coSpace", "missing: give coSpace or coSpaceTemplate")),
        };
        let zone: Tz = required(obj, "timeZone", "timeZone")?
            .parse()
            .map_err(|_| FieldError::new("timeZone", "not an IANA time zone"))?;
        let start = local(obj, "start", "start")?;
        if !(FIRST_YEAR..=LAST_YEAR).contains(&start.year()) {
            return Err(FieldError::new("start", format!("not within {FIRST_YEAR} to {LAST_YEAR}")));
        }
        let end = local(obj, "end", "end")?;
        if end <= start {
            return Err(FieldError::new("end", "not after start"));
        }
        if end - start > chrono::Duration::hours(24) {
            return Err(FieldError::new("end", "more than 24 hours after start"));
        }
        let recurrence = parse_recurrence(obj.get("recurrence").unwrap_or(&Value::Null), start)?;
        let mut schedule = Schedule { start, end, zone, recurrence, exceptions: Vec::new() };
        schedule.exceptions = parse_exceptions(obj.get("exceptions"), &schedule)?;
        let organizer = text(obj, "organizer", "organizer")?.map(|o| no_controls(o, "organizer", 256)).transpose()?;
        let mut attendees = Vec::new();
        match obj.get("attendees") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                if a.len() > MAX_ATTENDEES {
                    return Err(FieldError::new("attendees", format!("more than {MAX_ATTENDEES}")));
                }
                for (i, v) in a.iter().enumerate() {
                    let path = format!("attendees[{i}]");
                    let Value::Object(o) = v else { return Err(FieldError::new(path, "must be an object")) };
                    let email = check_email(required(o, "email", &format!("{path}.email"))?, &format!("{path}.email"))?;
                    let amt_path = format!("{path}.accessMethodTemplate");
                    let amt = guid(required(o, "accessMethodTemplate", &amt_path)?, &amt_path)?;
                    attendees.push(Attendee { email, access_method_template: amt });
                }
            }
            Some(_) => return Err(FieldError::new("attendees", "must be an array")),
        }
        let mut passcodes = BTreeMap::new();
        match obj.get("passcodes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(p)) => {
                for (k, v) in p {
                    let path = format!("passcodes.{k}");
                    let amt = guid(k, &path)?;
                    let code = v.as_str().unwrap_or("");
                    if code.is_empty() || code.len() > 32 || !code.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(FieldError::new(path, "must be 1 to 32 digits"));
                    }
                    passcodes.insert(amt, code.to_string());
                }
            }
            Some(_) => return Err(FieldError::new("passcodes", "must be an object")),
        }
        let mut meeting = Meeting {
            id,
            name,
            venue,
            schedule,
            organizer,
            attendees,
            passcodes,
            sequence: 0,
            access: BTreeMap::new(),
            owner: owner.to_string(),
        };
        if stored {
            meeting.sequence = obj.get("sequence").and_then(Value::as_u64).unwrap_or(0) as u32;
            if let Some(Value::Object(a)) = obj.get("accessMethods") {
                for (k, v) in a {
                    let Ok(amt) = Uuid::parse_str(k) else { continue };
                    let field = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
                    meeting.access.insert(
                        amt,
                        Access {
                            id: field("id").and_then(|i| Uuid::parse_str(&i).ok()),
                            uri: field("uri"),
                            call_id: field("callId"),
                            passcode: field("passcode"),
                        },
                    );
                }
            }
        }
        Ok(meeting)
    }

    /// The meeting as the API answers it (`stored`: with the fields only the
    /// service reads back, for the store).
    pub fn to_json(&self, stored: bool) -> Value {
        let s = &self.schedule;
        let mut obj = json!({
            "id": self.id.to_string(),
            "name": self.name,
            "start": format_local(s.start),
            "end": format_local(s.end),
            "timeZone": s.zone.name(),
            "sequence": self.sequence,
        });
        let map = obj.as_object_mut().expect("a JSON object literal");
        match &self.venue {
            Venue::Space(id) => {
                map.insert("coSpace".into(), id.to_string().into());
            }
            Venue::Template { template, made } => {
                map.insert("coSpaceTemplate".into(), template.to_string().into());
                if let Some(m) = made {
                    map.insert("coSpace".into(), m.to_string().into());
                }
            }
        }
        if let Some(r) = &s.recurrence {
            let mut rec = json!({"frequency": r.frequency.as_str(), "interval": r.interval});
            let rm = rec.as_object_mut().expect("a JSON object literal");
            if r.frequency == Frequency::Weekly {
                rm.insert("days".into(), r.days.iter().map(|d| Value::from(weekday_code(*d))).collect());
            }
            match r.end {
                End::Count(n) => {
                    rm.insert("count".into(), n.into());
                }
                End::Until(d) => {
                    rm.insert("until".into(), d.format("%Y-%m-%d").to_string().into());
                }
                End::Never => {}
            }
            map.insert("recurrence".into(), rec);
        } else {
            map.insert("recurrence".into(), json!({"frequency": "none"}));
        }
        if !s.exceptions.is_empty() {
            let list: Vec<Value> = s
                .exceptions
                .iter()
                .map(|e| match e.moved_to {
                    None => json!({"occurrence": format_local(e.occurrence), "cancelled": true}),
                    Some((a, b)) => json!({"occurrence": format_local(e.occurrence), "start": format_local(a), "end": format_local(b)}),
                })
                .collect();
            map.insert("exceptions".into(), list.into());
        }
        if let Some(o) = &self.organizer {
            map.insert("organizer".into(), o.clone().into());
        }
        map.insert(
            "attendees".into(),
            self.attendees
                .iter()
                .map(|a| json!({"email": a.email, "accessMethodTemplate": a.access_method_template.to_string()}))
                .collect(),
        );
        if !self.passcodes.is_empty() {
            let p: Map<String, Value> =
                self.passcodes.iter().map(|(k, v)| (k.to_string(), Value::from(v.clone()))).collect();
            map.insert("passcodes".into(), p.into());
        }
        if !self.access.is_empty() {
            let a: Map<String, Value> = self
                .access
                .iter()
                .map(|(k, v)| {
                    let mut m = Map::new();
                    if let Some(id) = v.id {
                        m.insert("id".into(), id.to_string().into());
                    }
                    if let Some(u) = &v.uri {
                        m.insert("uri".into(), u.clone().into());
                    }
                    if let Some(c) = &v.call_id {
                        m.insert("callId".into(), c.clone().into());
                    }
                    if stored {
                        if let Some(p) = &v.passcode {
                            m.insert("passcode".into(), p.clone().into());
                        }
                    }
                    (k.to_string(), Value::Object(m))
                })
                .collect();
            map.insert("accessMethods".into(), a.into());
        }
        if stored {
            map.insert("owner".into(), self.owner.clone().into());
        }
        obj
    }

    /// The temporary space made for it, if any.
    pub fn temporary_space(&self) -> Option<Uuid> {
        match self.venue {
            Venue::Template { made, .. } => made,
            Venue::Space(_) => None,
        }
    }

    /// The space it takes place in.
    pub fn space(&self) -> Option<Uuid> {
        match self.venue {
            Venue::Template { made, .. } => made,
            Venue::Space(s) => Some(s),
        }
    }

    /// The distinct roles of its attendees, in first-seen order.
    pub fn roles(&self) -> Vec<Uuid> {
        let mut roles = Vec::new();
        for a in &self.attendees {
            if !roles.contains(&a.access_method_template) {
                roles.push(a.access_method_template);
            }
        }
        roles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "6a0b7c4e-8e4e-4bb6-9b43-2f7b3f1f5a01";
    const R1: &str = "72d4029d-c70b-4b9c-a3d5-03f0800cf710";

    fn body() -> Value {
        json!({"name": "Weekly sync", "coSpaceTemplate": T, "start": "2027-03-22T10:00", "end": "2027-03-22T11:00",
               "timeZone": "Europe/Madrid", "recurrence": {"frequency": "weekly", "interval": 1, "days": ["MO"], "count": 4},
               "organizer": "sai@example.test",
               "attendees": [{"email": "ana@example.test", "accessMethodTemplate": R1}],
               "passcodes": {R1: "1234"}})
    }

    fn refusal(mut change: impl FnMut(&mut Map<String, Value>)) -> FieldError {
        let mut b = body();
        change(b.as_object_mut().unwrap());
        Meeting::from_json(&b, Uuid::nil(), "api", false).unwrap_err()
    }

    #[test]
    fn the_issue_example_round_trips() {
        let m = Meeting::from_json(&body(), Uuid::nil(), "api", false).unwrap();
        assert_eq!(m.attendees.len(), 1);
        assert_eq!(m.schedule.recurrence.as_ref().unwrap().end, End::Count(4));
        let back = Meeting::from_json(&m.to_json(true), Uuid::nil(), "api", true).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.to_json(false)["recurrence"]["days"], json!(["MO"]));
    }

    #[test]
    fn every_refusal_names_its_field() {
        assert_eq!(
            refusal(|b| {
                b.remove("name");
            })
            .field,
            "name"
        );
        assert_eq!(
            refusal(|b| {
                b.remove("coSpaceTemplate");
            })
            .field,
            "coSpace"
        );
        assert_eq!(
            refusal(|b| {
                b.insert("coSpace".into(), T.into());
            })
            .field,
            "coSpaceTemplate"
        );
        assert_eq!(
            refusal(|b| {
                b.insert("timeZone".into(), "Mars/Olympus".into());
            })
            .field,
            "timeZone"
        );
        assert_eq!(
            refusal(|b| {
                b.insert("start".into(), "22/03/2027".into());
            })
            .field,
            "start"
        );
        assert_eq!(
            refusal(|b| {
                b.insert("start".into(), "2027-01-31T2:3:30".into());
            })
            .field,
            "start",
            "seconds would be lost on a round trip"
        );
        assert_eq!(
            refusal(|b| {
                b.insert("end".into(), "2027-03-22T09:00".into());
            })
            .field,
            "end"
        );
        assert_eq!(
            refusal(|b| {
                b["recurrence"]["frequency"] = "hourly".into();
            })
            .field,
            "recurrence.frequency"
        );
        assert_eq!(
            refusal(|b| {
                b["recurrence"]["interval"] = 0.into();
            })
            .field,
            "recurrence.interval"
        );
        assert_eq!(
            refusal(|b| {
                b["recurrence"]["days"] = json!(["XX"]);
            })
            .field,
            "recurrence.days[0]"
        );
        assert_eq!(
            refusal(|b| {
                b["recurrence"]["until"] = "2027-06-30".into();
            })
            .field,
            "recurrence.until"
        );
        assert_eq!(
            refusal(|b| {
                b["recurrence"]["count"] = 100_000.into();
            })
            .field,
            "recurrence.count"
        );
        assert_eq!(
            refusal(|b| {
                b["attendees"][0]["email"] = "ana\r\nBcc: x@y".into();
            })
            .field,
            "attendees[0].email"
        );
        assert_eq!(
            refusal(|b| {
                b["attendees"][0]["accessMethodTemplate"] = "x".into();
            })
            .field,
            "attendees[0].accessMethodTemplate"
        );
        assert_eq!(
            refusal(|b| {
                b["passcodes"][R1] = "12a".into();
            })
            .field,
            format!("passcodes.{R1}")
        );
        assert_eq!(
            refusal(|b| {
                b.insert("exceptions".into(), json!([{"occurrence": "2027-03-23T10:00", "cancelled": true}]));
            })
            .field,
            "exceptions[0].occurrence"
        );
    }

    #[test]
    fn frequency_none_is_a_single_meeting_and_exceptions_are_kept() {
        let mut b = body();
        b["exceptions"] = json!([{"occurrence": "2027-03-29T10:00", "cancelled": true}]);
        let m = Meeting::from_json(&b, Uuid::nil(), "api", false).unwrap();
        assert_eq!(m.schedule.exceptions.len(), 1);
        b["recurrence"] = json!({"frequency": "none"});
        b.as_object_mut().unwrap().remove("exceptions");
        let m = Meeting::from_json(&b, Uuid::nil(), "api", false).unwrap();
        assert!(m.schedule.recurrence.is_none());
    }
}
