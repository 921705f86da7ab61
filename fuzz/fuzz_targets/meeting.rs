//! The scheduler's meeting JSON: any bytes are refused with a field named or
//! read into a meeting that writes back to itself; a meeting's occurrences
//! come in start order, and its iCalendar requests and cancellations are
//! folded CRLF lines that nothing in the input can break apart.
#![no_main]
use chrono::{Duration, TimeZone, Utc};
use confero_scheduler::ical::{self, Details};
use confero_scheduler::meeting::Meeting;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let meeting = match Meeting::from_json(&value, Uuid::nil(), "fuzz", false) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.field.is_empty());
            return;
        }
    };
    let back = Meeting::from_json(&meeting.to_json(true), Uuid::nil(), "fuzz", true).expect("its own JSON");
    assert_eq!(back, meeting);
    let from = confero_scheduler::recurrence::to_utc(meeting.schedule.zone, meeting.schedule.start) - Duration::days(1);
    let occurrences = meeting.schedule.occurrences(from, from + Duration::days(400), 1000);
    assert!(occurrences.windows(2).all(|w| w[0].start <= w[1].start));
    let _ = meeting.schedule.last_end_utc();
    let details = Details {
        attendee: meeting.attendees.first().map(|a| a.email.clone()).unwrap_or_else(|| "a@b".into()),
        organizer: meeting.organizer.clone(),
        location: Some(meeting.name.clone()),
        description: meeting.name.clone(),
    };
    let stamp = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    for text in [
        ical::request(&meeting, &details, stamp),
        ical::cancel(&meeting, &details, occurrences.first().map(|o| o.original), stamp),
    ] {
        assert!(text.ends_with("\r\n"));
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{line:?}");
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        }
        assert_eq!(text.matches("BEGIN:VCALENDAR").count(), 1);
    }
});
