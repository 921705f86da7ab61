//! The target delay estimate.
//!
//! A packet is useful only if it arrives before its tick, so the buffer must
//! cover the *tail* of the delay distribution, not its mean. RFC 3550's
//! interarrival jitter is a smoothed mean of successive differences: with
//! delays spread evenly over 0–50 ms it reads about 17 ms, and a buffer sized
//! from it would conceal a third of the packets. So this measures what the
//! buffer actually needs: how much later than the fastest recent packet each
//! packet arrives (its *excess* delay), and holds the peak of that. The peak
//! rises at once when a packet is slower than any before — a spike must not
//! cost a second concealment — and decays exponentially with a time constant
//! of [`PEAK_DECAY`] packets (about 5 s at 50 packets a second), so one spike
//! does not pin a high delay for the rest of the call.
//!
//! "Fastest recent" is the minimum over a sliding window rather than over the
//! whole call, so sender clock drift and route changes move the floor along.

/// Packets whose delays make up the floor: about 2.5 s at 20 ms a packet.
const WINDOW: usize = 128;
/// The peak loses 1/`PEAK_DECAY` of itself with every packet.
const PEAK_DECAY: i64 = 256;

/// Peak-hold estimate of the excess delay over a sliding floor, in µs.
#[derive(Debug, Clone)]
pub(super) struct DelayEstimator {
    samples: [i64; WINDOW],
    len: usize,
    next: usize,
    floor: i64,
    peak: i64,
}

impl DelayEstimator {
    pub(super) fn new() -> Self {
        Self { samples: [0; WINDOW], len: 0, next: 0, floor: 0, peak: 0 }
    }

    /// The fastest relative delay in the window, once there is one.
    pub(super) fn floor(&self) -> Option<i64> {
        (self.len > 0).then_some(self.floor)
    }

    /// Records a packet's relative delay (arrival time minus media time, in
    /// µs, on any fixed origin) and returns its excess over the floor.
    pub(super) fn observe(&mut self, relative_delay: i64) -> i64 {
        let evicted = self.samples[self.next];
        self.samples[self.next] = relative_delay;
        self.next = (self.next + 1) % WINDOW;
        let full = self.len == WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        if self.len == 1 || relative_delay <= self.floor {
            self.floor = relative_delay;
        } else if full && evicted == self.floor {
            // The minimum may have just left the window; 128 compares per
            // packet is cheaper than keeping a monotonic deque.
            self.floor = self.samples.iter().copied().min().unwrap_or(relative_delay);
        }
        let excess = relative_delay.saturating_sub(self.floor);
        self.peak = excess.max(self.peak - self.peak / PEAK_DECAY);
        excess
    }

    /// The excess delay the buffer should currently cover, in µs.
    pub(super) fn peak(&self) -> i64 {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_delay_has_no_excess() {
        let mut estimator = DelayEstimator::new();
        for _ in 0..500 {
            assert_eq!(estimator.observe(12_000), 0);
        }
        assert_eq!(estimator.peak(), 0);
    }

    #[test]
    fn spike_is_held_then_decays() {
        let mut estimator = DelayEstimator::new();
        for _ in 0..50 {
            estimator.observe(5_000);
        }
        assert_eq!(estimator.observe(105_000), 100_000);
        assert_eq!(estimator.peak(), 100_000);
        for _ in 0..256 {
            estimator.observe(5_000);
        }
        let after = estimator.peak();
        assert!(after < 40_000 && after > 30_000, "one time constant leaves ~1/e: {after}");
    }

    #[test]
    fn floor_follows_a_slower_route() {
        let mut estimator = DelayEstimator::new();
        for _ in 0..WINDOW {
            estimator.observe(0);
        }
        for _ in 0..WINDOW {
            estimator.observe(30_000);
        }
        assert_eq!(estimator.floor(), Some(30_000));
        assert_eq!(estimator.observe(30_000), 0);
    }
}
