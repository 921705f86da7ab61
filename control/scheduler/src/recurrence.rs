//! When a meeting happens: a first occurrence in local time in an IANA zone,
//! a repeat rule (RFC 5545's subset the web app offers: daily, weekly on some
//! days, monthly, yearly; an interval; an end by count or date) and
//! exceptions (one occurrence moved or cancelled), expanded to instants.
//!
//! Occurrences are generated in **local** time and only then placed on the
//! UTC line, so a 10:00 meeting stays at 10:00 across a daylight-saving
//! change, as calendars (RFC 5545 §3.3.10) do. A local time that does not
//! exist (inside a spring-forward gap) is taken with the offset before the
//! gap (02:30 becomes 03:30), and one that exists twice is the first.
//!
//! Pure: no clock, no I/O; the window to expand is always passed in.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// The largest `count` a series may have: bounds every expansion.
pub const MAX_COUNT: u32 = 1000;
/// The largest `interval`.
pub const MAX_INTERVAL: u32 = 99;

/// How often a series repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// Every `interval` days.
    Daily,
    /// Every `interval` weeks, on some weekdays.
    Weekly,
    /// Every `interval` months on the first occurrence's day of the month
    /// (months without that day are skipped, as RFC 5545 says).
    Monthly,
    /// Every `interval` years on the first occurrence's month and day
    /// (29 February only in leap years).
    Yearly,
}

impl Frequency {
    /// The JSON and web app word.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Yearly => "yearly",
        }
    }

    /// The iCalendar `FREQ` value.
    pub fn rfc5545(self) -> &'static str {
        match self {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        }
    }

    /// Parses the JSON word.
    pub fn parse(s: &str) -> Option<Frequency> {
        Some(match s {
            "daily" => Frequency::Daily,
            "weekly" => Frequency::Weekly,
            "monthly" => Frequency::Monthly,
            "yearly" => Frequency::Yearly,
            _ => return None,
        })
    }
}

/// Where a series stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Never.
    Never,
    /// After this many occurrences (cancelled ones count, as EXDATE does).
    Count(u32),
    /// With the last occurrence starting on or before this local date.
    Until(NaiveDate),
}

/// A repeat rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    /// How often.
    pub frequency: Frequency,
    /// Every how many days, weeks, months or years (1..=[`MAX_INTERVAL`]).
    pub interval: u32,
    /// The weekdays of a weekly series, Monday first, no repeats; empty means
    /// the first occurrence's weekday.
    pub days: Vec<Weekday>,
    /// Where it stops.
    pub end: End,
}

/// One occurrence that was moved or cancelled, named by when it would
/// have started (its local start, which is also its iCalendar RECURRENCE-ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// The local start the rule gives it.
    pub occurrence: NaiveDateTime,
    /// `None`: cancelled; else its new local start and end.
    pub moved_to: Option<(NaiveDateTime, NaiveDateTime)>,
}

/// When a meeting happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The first occurrence's local start.
    pub start: NaiveDateTime,
    /// Its local end (after `start`).
    pub end: NaiveDateTime,
    /// The zone both are in.
    pub zone: Tz,
    /// `None`: once.
    pub recurrence: Option<Recurrence>,
    /// Moved and cancelled occurrences.
    pub exceptions: Vec<Exception>,
}

/// One occurrence, placed on the UTC line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// The local start the rule gives it (its identity).
    pub original: NaiveDateTime,
    /// Its local start, moved or not.
    pub local_start: NaiveDateTime,
    /// Its local end.
    pub local_end: NaiveDateTime,
    /// Its start.
    pub start: DateTime<Utc>,
    /// Its end.
    pub end: DateTime<Utc>,
    /// Whether an exception moved it.
    pub moved: bool,
}

/// A local time in `zone` as an instant: the first of two, and across a gap
/// with the offset before it.
pub fn to_utc(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // The offset a few hours before: gaps are at most a few hours.
            let before = local - Duration::hours(6);
            let offset = zone.offset_from_utc_datetime(&before).fix();
            (local - Duration::seconds(offset.local_minus_utc() as i64)).and_utc()
        }
    }
}

/// The first day of `date`'s week (weeks start on Monday, RFC 5545's default WKST).
fn week_start(date: NaiveDate) -> NaiveDate {
    date - Duration::days(date.weekday().num_days_from_monday() as i64)
}

/// `date` moved by `months`, or `None` when that month has no such day.
fn add_months(date: NaiveDate, months: i64) -> Option<NaiveDate> {
    let total = date.year() as i64 * 12 + date.month0() as i64 + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    NaiveDate::from_ymd_opt(year, total.rem_euclid(12) as u32 + 1, date.day())
}

impl Schedule {
    /// The series' local starts in order as the rule gives them (exceptions
    /// not applied), from the first. Bounded by the count, else endless.
    pub fn rule_starts(&self) -> RuleStarts<'_> {
        RuleStarts { schedule: self, period: 0, in_period: Vec::new(), emitted: 0, done: false }
    }

    /// Whether `local` is a start the rule gives.
    pub fn is_rule_start(&self, local: NaiveDateTime) -> bool {
        self.rule_starts_from(local).take_while(|s| *s <= local).any(|s| s == local)
    }

    /// The local end of an occurrence starting at local `start`, by the
    /// first occurrence's wall-clock length.
    fn local_end_for(&self, start: NaiveDateTime) -> NaiveDateTime {
        start + (self.end - self.start)
    }

    fn occurrence(&self, original: NaiveDateTime) -> Option<Occurrence> {
        let exception = self.exceptions.iter().find(|e| e.occurrence == original);
        let (local_start, local_end, moved) = match exception {
            Some(Exception { moved_to: None, .. }) => return None,
            Some(Exception { moved_to: Some((s, e)), .. }) => (*s, *e, true),
            None => (original, self.local_end_for(original), false),
        };
        Some(Occurrence {
            original,
            local_start,
            local_end,
            start: to_utc(self.zone, local_start),
            end: to_utc(self.zone, local_end),
            moved,
        })
    }

    /// The occurrences that overlap `[from, until)`, in start order, at most `max`.
    pub fn occurrences(&self, from: DateTime<Utc>, until: DateTime<Utc>, max: usize) -> Vec<Occurrence> {
        let mut out = Vec::new();
        // Moved occurrences may land anywhere: they are looked at apart.
        for e in &self.exceptions {
            if e.moved_to.is_some() {
                if let Some(o) = self.occurrence(e.occurrence) {
                    if o.end > from && o.start < until {
                        out.push(o);
                    }
                }
            }
        }
        let length = self.end - self.start;
        // Local and UTC differ by under a day; a start a day past `until` ends the walk.
        let last_local = until.naive_utc() + Duration::days(1);
        let first_local = from.naive_utc() - length - Duration::days(1);
        for start in self.rule_starts_from(first_local) {
            if start > last_local {
                break;
            }
            if self.exceptions.iter().any(|e| e.occurrence == start) {
                continue;
            }
            if let Some(o) = self.occurrence(start) {
                if o.end > from && o.start < until {
                    out.push(o);
                }
            }
        }
        out.sort_by_key(|o| (o.start, o.original));
        out.truncate(max);
        out
    }

    /// The rule's starts at or after about `local` (possibly a few before):
    /// skips whole periods when the count need not be kept.
    fn rule_starts_from(&self, local: NaiveDateTime) -> RuleStarts<'_> {
        let mut starts = self.rule_starts();
        if let Some(r) = &self.recurrence {
            if !matches!(r.end, End::Count(_)) && local > self.start {
                let interval = r.interval.max(1) as i64;
                let from = self.start.date();
                let periods = match r.frequency {
                    Frequency::Daily => (local.date() - from).num_days() / interval,
                    Frequency::Weekly => (week_start(local.date()) - week_start(from)).num_weeks() / interval,
                    Frequency::Monthly => {
                        let months = (local.year() as i64 - from.year() as i64) * 12 + local.month0() as i64
                            - from.month0() as i64;
                        months / interval
                    }
                    Frequency::Yearly => (local.year() as i64 - from.year() as i64) / interval,
                };
                starts.period = periods.saturating_sub(1).max(0);
            }
        }
        starts
    }

    /// The instant the last occurrence ends, `None` for an endless series.
    /// Moved occurrences count where they went.
    pub fn last_end_utc(&self) -> Option<DateTime<Utc>> {
        if let Some(r) = &self.recurrence {
            if r.end == End::Never {
                return None;
            }
        }
        let mut last_start = None;
        for start in self.rule_starts() {
            if !self.exceptions.iter().any(|e| e.occurrence == start) {
                last_start = Some(start);
            }
        }
        let mut last = last_start.map(|s| to_utc(self.zone, self.local_end_for(s)));
        for e in &self.exceptions {
            if let Some((_, end)) = e.moved_to {
                last = last.max(Some(to_utc(self.zone, end)));
            }
        }
        last
    }
}

/// The rule's local starts in order, from [`Schedule::rule_starts`].
pub struct RuleStarts<'a> {
    schedule: &'a Schedule,
    /// The next period (day, week, month or year, times the interval) to fill.
    period: i64,
    /// Starts of the current period not yet returned, last first.
    in_period: Vec<NaiveDateTime>,
    emitted: u32,
    done: bool,
}

/// Periods in a row without a start before a walk gives up (29 February
/// every 4 years, 31st of the month: a few; this is far more).
const MAX_EMPTY_PERIODS: u32 = 64;

impl RuleStarts<'_> {
    fn fill(&mut self) {
        let s = self.schedule;
        let time = s.start.time();
        let first = s.start.date();
        let Some(r) = &s.recurrence else {
            if self.period == 0 {
                self.in_period.push(s.start);
            }
            self.period += 1;
            return;
        };
        let step = self.period * r.interval.max(1) as i64;
        self.period += 1;
        let mut dates: Vec<NaiveDate> = match r.frequency {
            Frequency::Daily => first.checked_add_signed(Duration::days(step)).into_iter().collect(),
            Frequency::Weekly => {
                let Some(week) = week_start(first).checked_add_signed(Duration::weeks(step)) else { return };
                let days: Vec<Weekday> = if r.days.is_empty() { vec![first.weekday()] } else { r.days.clone() };
                let mut dates: Vec<NaiveDate> = days
                    .iter()
                    .map(|d| week + Duration::days(d.num_days_from_monday() as i64))
                    .filter(|d| *d >= first)
                    .collect();
                dates.sort();
                dates
            }
            Frequency::Monthly => add_months(first, step).into_iter().collect(),
            Frequency::Yearly => add_months(first, step * 12).into_iter().collect(),
        };
        dates.reverse();
        self.in_period = dates.into_iter().map(|d| d.and_time(time)).collect();
    }
}

impl Iterator for RuleStarts<'_> {
    type Item = NaiveDateTime;

    fn next(&mut self) -> Option<NaiveDateTime> {
        if self.done {
            return None;
        }
        let mut empty = 0;
        while self.in_period.is_empty() {
            if self.schedule.recurrence.is_none() && self.period > 0 {
                self.done = true;
                return None;
            }
            self.fill();
            if self.in_period.is_empty() {
                empty += 1;
                if empty > MAX_EMPTY_PERIODS {
                    self.done = true;
                    return None;
                }
            }
        }
        let next = self.in_period.pop()?;
        if let Some(r) = &self.schedule.recurrence {
            match r.end {
                End::Count(n) if self.emitted >= n => {
                    self.done = true;
                    return None;
                }
                End::Until(date) if next.date() > date => {
                    self.done = true;
                    return None;
                }
                _ => {}
            }
        }
        self.emitted += 1;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn schedule(start: &str, end: &str, zone: &str, recurrence: Option<Recurrence>) -> Schedule {
        Schedule { start: local(start), end: local(end), zone: zone.parse().unwrap(), recurrence, exceptions: vec![] }
    }

    fn weekly(days: &[Weekday], end: End) -> Option<Recurrence> {
        Some(Recurrence { frequency: Frequency::Weekly, interval: 1, days: days.to_vec(), end })
    }

    fn all(s: &Schedule) -> Vec<DateTime<Utc>> {
        s.occurrences(utc("2000-01-01T00:00:00Z"), utc("2100-01-01T00:00:00Z"), usize::MAX)
            .iter()
            .map(|o| o.start)
            .collect()
    }

    #[test]
    fn once_is_one_occurrence() {
        let s = schedule("2027-03-22T10:00", "2027-03-22T11:00", "Europe/Madrid", None);
        assert_eq!(all(&s), vec![utc("2027-03-22T09:00:00Z")]);
        assert_eq!(s.last_end_utc(), Some(utc("2027-03-22T10:00:00Z")));
    }

    /// Madrid moves to summer time on 28 March 2027: 10:00 local stays
    /// 10:00, so the UTC start moves from 09:00 to 08:00.
    #[test]
    fn a_weekly_series_keeps_its_local_time_across_the_march_change() {
        let s =
            schedule("2027-03-22T10:00", "2027-03-22T11:00", "Europe/Madrid", weekly(&[Weekday::Mon], End::Count(4)));
        assert_eq!(
            all(&s),
            vec![
                utc("2027-03-22T09:00:00Z"),
                utc("2027-03-29T08:00:00Z"),
                utc("2027-04-05T08:00:00Z"),
                utc("2027-04-12T08:00:00Z")
            ]
        );
        // New York changes on 14 March 2027 and back on 7 November.
        let s = schedule(
            "2027-11-01T09:30",
            "2027-11-01T10:00",
            "America/New_York",
            Some(Recurrence { frequency: Frequency::Daily, interval: 7, days: vec![], end: End::Count(2) }),
        );
        assert_eq!(all(&s), vec![utc("2027-11-01T13:30:00Z"), utc("2027-11-08T14:30:00Z")]);
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_and_a_repeated_one_is_the_first() {
        let zone: Tz = "Europe/Madrid".parse().unwrap();
        assert_eq!(to_utc(zone, local("2027-03-28T02:30")), utc("2027-03-28T01:30:00Z"));
        assert_eq!(to_utc(zone, local("2027-10-31T02:30")), utc("2027-10-31T00:30:00Z"));
    }

    #[test]
    fn weekly_on_several_days_with_an_interval_and_an_until_date() {
        let mut r = weekly(&[Weekday::Mon, Weekday::Wed], End::Until(NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()));
        r.as_mut().unwrap().interval = 2;
        // Starts on a Wednesday: the Monday before it is not an occurrence.
        let s = schedule("2027-03-03T08:00", "2027-03-03T09:00", "UTC", r);
        let starts: Vec<_> = s.rule_starts().collect();
        assert_eq!(
            starts,
            vec![
                local("2027-03-03T08:00"),
                local("2027-03-15T08:00"),
                local("2027-03-17T08:00"),
                local("2027-03-29T08:00"),
                local("2027-03-31T08:00")
            ]
        );
    }

    #[test]
    fn monthly_skips_months_without_the_day_and_yearly_skips_non_leap_years() {
        let s = schedule(
            "2027-01-31T10:00",
            "2027-01-31T11:00",
            "UTC",
            Some(Recurrence { frequency: Frequency::Monthly, interval: 1, days: vec![], end: End::Count(4) }),
        );
        let starts: Vec<_> = s.rule_starts().map(|d| d.date().to_string()).collect();
        assert_eq!(starts, ["2027-01-31", "2027-03-31", "2027-05-31", "2027-07-31"]);
        let s = schedule(
            "2028-02-29T10:00",
            "2028-02-29T11:00",
            "UTC",
            Some(Recurrence { frequency: Frequency::Yearly, interval: 1, days: vec![], end: End::Count(2) }),
        );
        let starts: Vec<_> = s.rule_starts().map(|d| d.date().to_string()).collect();
        assert_eq!(starts, ["2028-02-29", "2032-02-29"]);
    }

    #[test]
    fn exceptions_move_and_cancel_single_occurrences() {
        let mut s =
            schedule("2027-03-22T10:00", "2027-03-22T11:00", "Europe/Madrid", weekly(&[Weekday::Mon], End::Count(4)));
        s.exceptions = vec![
            Exception { occurrence: local("2027-03-29T10:00"), moved_to: None },
            Exception {
                occurrence: local("2027-04-05T10:00"),
                moved_to: Some((local("2027-04-06T15:00"), local("2027-04-06T16:30"))),
            },
        ];
        let got = s.occurrences(utc("2027-01-01T00:00:00Z"), utc("2028-01-01T00:00:00Z"), 10);
        let starts: Vec<_> = got.iter().map(|o| (o.start, o.moved)).collect();
        assert_eq!(
            starts,
            vec![
                (utc("2027-03-22T09:00:00Z"), false),
                (utc("2027-04-06T13:00:00Z"), true),
                (utc("2027-04-12T08:00:00Z"), false)
            ]
        );
        assert_eq!(got[1].end, utc("2027-04-06T14:30:00Z"));
        assert!(s.is_rule_start(local("2027-04-12T10:00")));
        assert!(!s.is_rule_start(local("2027-04-13T10:00")));
    }

    #[test]
    fn a_window_in_an_endless_series_skips_ahead_and_returns_in_order() {
        let s = schedule(
            "2020-01-06T10:00",
            "2020-01-06T10:30",
            "Europe/Madrid",
            weekly(&[Weekday::Mon, Weekday::Fri], End::Never),
        );
        let got = s.occurrences(utc("2027-03-01T00:00:00Z"), utc("2027-03-15T00:00:00Z"), 10);
        let starts: Vec<_> = got.iter().map(|o| o.local_start.to_string()).collect();
        assert_eq!(
            starts,
            ["2027-03-01 10:00:00", "2027-03-05 10:00:00", "2027-03-08 10:00:00", "2027-03-12 10:00:00"]
        );
        assert_eq!(s.occurrences(utc("2027-03-01T00:00:00Z"), utc("2027-03-15T00:00:00Z"), 2).len(), 2);
        assert_eq!(s.last_end_utc(), None);
    }

    /// An occurrence already under way at the window's start is in it.
    #[test]
    fn an_occurrence_overlapping_the_window_start_counts() {
        let s = schedule("2027-03-22T10:00", "2027-03-22T11:00", "UTC", None);
        assert_eq!(s.occurrences(utc("2027-03-22T10:30:00Z"), utc("2027-03-23T00:00:00Z"), 5).len(), 1);
        assert_eq!(s.occurrences(utc("2027-03-22T11:00:00Z"), utc("2027-03-23T00:00:00Z"), 5).len(), 0);
    }
}
