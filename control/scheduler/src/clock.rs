//! The scheduler's idea of now, passed in everywhere so that time-dependent
//! work (the clean-up at 01:15 UTC, mail retries) is tested on an injected
//! clock instead of real waits.

use chrono::{DateTime, Utc};

/// What time it is.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, optionally shifted: a test starts the scheduler with
/// its clock reading a chosen instant, which then advances in real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock {
    /// Added to the system time.
    pub shift: chrono::Duration,
}

impl SystemClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> SystemClock {
        SystemClock { shift: start - DateTime::<Utc>::from(std::time::SystemTime::now()) }
    }
}

impl SystemClock {
    /// A clock that reads the RFC 3339 time `text` now (`CONFERO_SCHEDULER_CLOCK`).
    pub fn starting_at_rfc3339(text: &str) -> Option<SystemClock> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| SystemClock::starting_at(t.with_timezone(&Utc)))
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(std::time::SystemTime::now()) + self.shift
    }
}
