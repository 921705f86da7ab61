//! The daily clean-up, as CMS's scheduler does it: at 01:15 UTC every day,
//! the temporary space of every meeting whose last occurrence ended 24 hours
//! or more before is deleted (and the meeting with it). A series without an
//! end never qualifies. The time comes from the injected clock.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use crate::clock::Clock;
use crate::meeting::Meeting;
use crate::service::Scheduler;

/// When the clean-up runs each day (UTC).
pub fn run_time() -> NaiveTime {
    NaiveTime::from_hms_opt(1, 15, 0).unwrap_or_default()
}

/// How long after its end a meeting's temporary space is kept at least.
pub fn grace() -> Duration {
    Duration::hours(24)
}

/// The next run strictly after `now`.
pub fn next_run(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive().and_time(run_time()).and_utc();
    if today > now {
        today
    } else {
        today + Duration::days(1)
    }
}

/// Whether a run at `now` deletes `meeting`'s temporary space.
pub fn is_due(meeting: &Meeting, now: DateTime<Utc>) -> bool {
    meeting.temporary_space().is_some() && meeting.schedule.last_end_utc().is_some_and(|end| end + grace() <= now)
}

/// Runs the clean-up at every [`next_run`] until `shutdown` resolves.
pub async fn run(scheduler: Arc<Scheduler>, clock: Arc<dyn Clock>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let now = clock.now();
        let wait = (next_run(now) - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let at = clock.now();
        let removed = scheduler.clean_up(at).await;
        tracing::info!("scheduler: clean-up at {at}: {removed} temporary spaces deleted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn meeting(end_utc_hour: &str, made: bool) -> Meeting {
        let mut body = json!({"name": "m", "coSpaceTemplate": Uuid::nil().to_string(),
            "start": "2027-03-23T00:00", "end": format!("2027-03-23T{end_utc_hour}"), "timeZone": "UTC"});
        if made {
            body["coSpace"] = Uuid::nil().to_string().into();
        }
        Meeting::from_json(&body, Uuid::nil(), "api", true).unwrap()
    }

    #[test]
    fn it_runs_at_quarter_past_one_utc() {
        assert_eq!(next_run(at("2027-03-24T00:00:00Z")), at("2027-03-24T01:15:00Z"));
        assert_eq!(next_run(at("2027-03-24T01:15:00Z")), at("2027-03-25T01:15:00Z"));
        assert_eq!(next_run(at("2027-03-24T23:59:59+01:00")), at("2027-03-25T01:15:00Z"));
    }

    /// At 01:15 on 24 March: a meeting that ended 25 h before (00:15 on the
    /// 23rd) goes, one that ended 23 h before (02:15) stays.
    #[test]
    fn twenty_five_hours_gone_twenty_three_stays() {
        let run = at("2027-03-24T01:15:00Z");
        assert!(is_due(&meeting("00:15", true), run));
        assert!(!is_due(&meeting("02:15", true), run));
        assert!(is_due(&meeting("01:15", true), run), "exactly 24 h");
        assert!(!is_due(&meeting("00:15", false), run), "no space made, nothing to delete");
    }
}
