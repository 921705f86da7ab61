//! Brute-force throttling of password guesses, per source address. A source
//! that gets [`ThrottlePolicy::failures`] wrong passwords within
//! [`ThrottlePolicy::window`] has its password checks refused for
//! [`ThrottlePolicy::backoff`]. Per source, not per user: a per-user lockout
//! would let anyone lock the administrator out; guesses at one user from many
//! sources are already bounded by the Argon2 gate in [`crate::users`].
//!
//! No I/O and no clock: the caller passes `now`, so tests need no sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a source is throttled and for how long.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Wrong passwords within `window` that start a backoff.
    pub failures: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long a throttled source's checks are refused.
    pub backoff: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy { failures: 5, window: Duration::from_secs(60), backoff: Duration::from_secs(60) }
    }
}

/// Sources remembered before old ones are forgotten, so a scan from many
/// addresses cannot grow the table without bound.
const MAX_SOURCES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// Failure counts per source.
#[derive(Debug, Default)]
pub struct Throttle {
    policy: ThrottlePolicy,
    sources: Mutex<HashMap<IpAddr, Record>>,
}

impl Throttle {
    /// A throttle keeping to `policy`.
    pub fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle { policy, sources: Mutex::new(HashMap::new()) }
    }

    /// How long `source` must still wait, if it is throttled.
    pub fn blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let until = sources.get(&source)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a wrong password from `source`; true when this one started a
    /// backoff (the moment to raise an alarm and log, once per window).
    pub fn failed(&self, source: IpAddr, now: Instant) -> bool {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            let horizon = self.policy.window.max(self.policy.backoff);
            sources.retain(|_, r| {
                now.saturating_duration_since(r.window_start) < horizon || r.blocked_until.is_some_and(|u| u > now)
            });
            if sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let r = sources.entry(source).or_insert(Record { window_start: now, failures: 0, blocked_until: None });
        if r.blocked_until.is_some_and(|u| u > now) {
            return false;
        }
        if now.saturating_duration_since(r.window_start) >= self.policy.window || r.blocked_until.is_some() {
            *r = Record { window_start: now, failures: 0, blocked_until: None };
        }
        r.failures += 1;
        if r.failures >= self.policy.failures {
            r.blocked_until = Some(now + self.policy.backoff);
            return true;
        }
        false
    }

    /// A right password from `source`: its failures are forgotten.
    pub fn succeeded(&self, source: IpAddr) {
        self.sources.lock().unwrap_or_else(|p| p.into_inner()).remove(&source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifth_failure_in_a_window_blocks_for_the_backoff_then_counting_restarts() {
        let t = Throttle::new(ThrottlePolicy::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(!t.failed(ip, t0 + Duration::from_secs(i)));
        }
        assert!(t.blocked(ip, t0 + Duration::from_secs(4)).is_none());
        assert!(t.failed(ip, t0 + Duration::from_secs(4)), "the fifth starts the backoff");
        assert!(t.blocked(ip, t0 + Duration::from_secs(5)).is_some());
        assert!(t.blocked(other, t0 + Duration::from_secs(5)).is_none());
        assert!(!t.failed(ip, t0 + Duration::from_secs(6)), "reported once per window");
        assert!(t.blocked(ip, t0 + Duration::from_secs(65)).is_none());
        assert!(!t.failed(ip, t0 + Duration::from_secs(65)), "counting starts again");
    }

    #[test]
    fn failures_spread_beyond_the_window_never_block() {
        let t = Throttle::new(ThrottlePolicy::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(!t.failed(ip, t0 + Duration::from_secs(i * 15)));
        }
        t.succeeded(ip);
        assert!(t.blocked(ip, t0 + Duration::from_secs(300)).is_none());
    }
}
