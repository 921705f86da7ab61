//! How busy a media worker is: the time it is awake between waits, as a
//! share of the time since the last sample (`system/load`'s
//! `mediaProcessingLoad`, 1000 for a worker busy all the time). A wait of
//! zero (video in progress) is not rest, so it is not a wait here.

use std::time::Instant;

/// One worker's busy-time meter.
#[derive(Debug, Clone, Copy)]
pub(super) struct LoadMeter {
    /// When the worker last woke: the time since is busy time not yet
    /// counted.
    awake_since: Instant,
    /// Busy time counted, in nanoseconds.
    busy_nanos: u64,
    /// `busy_nanos` and the instant at the last sample.
    mark: (u64, Instant),
}

impl LoadMeter {
    /// A meter starting now, awake.
    pub(super) fn new(now: Instant) -> Self {
        Self { awake_since: now, busy_nanos: 0, mark: (0, now) }
    }

    /// The worker goes to sleep at `now`: the time awake is busy time.
    pub(super) fn sleeping(&mut self, now: Instant) {
        self.busy_nanos += now.saturating_duration_since(self.awake_since).as_nanos() as u64;
        self.awake_since = now;
    }

    /// The worker woke at `now`.
    pub(super) fn woke(&mut self, now: Instant) {
        self.awake_since = now;
    }

    /// Busy time so far, in nanoseconds, and the load since the last sample
    /// (per mille; `None` if no time passed).
    pub(super) fn sample(&mut self, now: Instant) -> (u64, Option<u64>) {
        self.sleeping(now);
        let (busy_then, then) = self.mark;
        let elapsed = now.saturating_duration_since(then).as_nanos() as u64;
        let load = ((self.busy_nanos - busy_then) * 1000).checked_div(elapsed).map(|l| l.min(1000));
        self.mark = (self.busy_nanos, now);
        (self.busy_nanos, load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn load_is_the_share_of_time_awake_since_the_last_sample() {
        let t0 = Instant::now();
        let mut meter = LoadMeter::new(t0);
        let ms = |n| t0 + Duration::from_millis(n);
        meter.sleeping(ms(100));
        meter.woke(ms(400));
        meter.sleeping(ms(500));
        meter.woke(ms(900));
        // Awake 0–100, 400–500 and 900–1000 of the first second.
        assert_eq!(meter.sample(ms(1000)), (300_000_000, Some(300)));
        // Awake all of the next half second.
        assert_eq!(meter.sample(ms(1500)).1, Some(1000));
        // No time passed: no figure.
        assert_eq!(meter.sample(ms(1500)).1, None);
    }
}
