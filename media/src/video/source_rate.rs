//! Asking a sender for only the bitrate its largest pane needs, sans-IO.
//!
//! Why: a participant shown only in a thumbnail does not need to send us
//! 720p at 1.5 Mbit/s. Told a lower limit (RFC 5104 TMMBR, or REMB for
//! endpoints that only speak that), an endpoint's encoder sends less, and
//! endpoints lower their resolution with their bitrate — so the bridge
//! decodes a small picture instead of a 720p one (a decode is about a fifth
//! of a 720p view's cost, and every shown sender needs one every frame),
//! and the sender's uplink carries a fraction. When it is shown large
//! again (it speaks, or someone made it important) the limit is lifted at
//! once; a lower limit waits [`LOWER_HOLD`], so that a speaker who pauses
//! is not sent up and down.
//!
//! The limit comes in classes — the sender's full bitrate halved up to
//! three times, never under [`MIN_SOURCE_BITRATE`] — from the share of a
//! 720p picture (our largest view) its largest pane covers: twice that
//! share of the full bitrate, rounded up to a class. A full 720p pane keeps
//! the full rate; a quarter of one (or all of a 640x360 view) gets a half;
//! a thumbnail the smallest class.

use std::time::{Duration, Instant};

/// How an endpoint can be asked to send less, from its SDP `a=rtcp-fb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitrateRequestMethod {
    /// It declared neither: it is never asked.
    #[default]
    None,
    /// `ccm tmmbr`: RFC 5104 TMMBR, which it acknowledges with TMMBN.
    Tmmbr,
    /// `goog-remb`: a receiver estimate, which it treats as a cap.
    Remb,
}

impl BitrateRequestMethod {
    /// TMMBR where the endpoint offers it, else REMB where it offers that.
    pub fn for_endpoint(tmmbr: bool, remb: bool) -> Self {
        match (tmmbr, remb) {
            (true, _) => BitrateRequestMethod::Tmmbr,
            (false, true) => BitrateRequestMethod::Remb,
            (false, false) => BitrateRequestMethod::None,
        }
    }
}

/// The least we ask any sender for: enough for a clear 320x180 thumbnail.
pub const MIN_SOURCE_BITRATE: u32 = 150_000;
/// A lower limit is sent only once the sender has been smaller for this
/// long; a higher one goes at once.
pub const LOWER_HOLD: Duration = Duration::from_secs(2);
/// An unacknowledged TMMBR, or any REMB, is repeated this often: RTCP is
/// lossy, and REMB is a running estimate that senders expect to hear again.
pub const REPEAT: Duration = Duration::from_secs(1);
/// The full rate halved at most this many times.
const CLASSES: u32 = 3;

/// The limit class for a sender whose largest pane covers `share` (0..=1)
/// of a 720p picture, `full` being what it may send at most. `share` 0
/// (shown nowhere) gets the smallest class: nobody decodes it, and it
/// comes back with a keyframe when shown.
pub fn class_for(full: u32, share: f64) -> u32 {
    let want = f64::from(full) * (2.0 * share.clamp(0.0, 1.0));
    let mut class = full;
    for _ in 0..CLASSES {
        let half = class / 2;
        if f64::from(half) < want || half < MIN_SOURCE_BITRATE {
            break;
        }
        class = half;
    }
    class.max(MIN_SOURCE_BITRATE.min(full))
}

/// One sender's limit: what we asked for, and when to ask again.
#[derive(Debug, Clone)]
pub struct SourceRate {
    method: BitrateRequestMethod,
    full: u32,
    /// The limit last sent; `None`: never asked (it sends what it likes).
    requested: Option<u32>,
    sent_at: Option<Instant>,
    /// A TMMBN confirmed the current request.
    acknowledged: bool,
    /// A lower class seen, and since when: it is sent after [`LOWER_HOLD`].
    lower: Option<(u32, Instant)>,
}

impl SourceRate {
    /// A sender that may send up to `full` bits per second.
    pub fn new(method: BitrateRequestMethod, full: u32) -> Self {
        Self { method, full, requested: None, sent_at: None, acknowledged: false, lower: None }
    }

    /// How it is asked.
    pub fn method(&self) -> BitrateRequestMethod {
        self.method
    }

    /// This frame its largest pane covers `share` of a picture: the limit to
    /// send now, if one is due (new, raised, lowered after the hold, or
    /// repeated).
    pub fn update(&mut self, now: Instant, share: f64) -> Option<u32> {
        if self.method == BitrateRequestMethod::None {
            return None;
        }
        let class = class_for(self.full, share);
        let current = self.requested.unwrap_or(self.full);
        let send = if class > current {
            self.lower = None;
            Some(class)
        } else if class < current {
            match self.lower {
                Some((c, since)) if c == class => (now.saturating_duration_since(since) >= LOWER_HOLD).then_some(class),
                _ => {
                    self.lower = Some((class, now));
                    None
                }
            }
        } else {
            self.lower = None;
            None
        };
        if let Some(limit) = send {
            self.lower = None;
            self.requested = Some(limit);
            self.acknowledged = false;
            self.sent_at = Some(now);
            return Some(limit);
        }
        let repeat = match self.method {
            BitrateRequestMethod::Tmmbr => !self.acknowledged,
            _ => true,
        };
        match (self.requested, self.sent_at) {
            (Some(limit), Some(at)) if repeat && now.saturating_duration_since(at) >= REPEAT => {
                self.sent_at = Some(now);
                Some(limit)
            }
            _ => None,
        }
    }

    /// A TMMBN came listing `bitrate` for us: the request in force arrived.
    pub fn on_tmmbn(&mut self, bitrate: u64) {
        if self.requested.is_some_and(|r| u64::from(r) >= bitrate) {
            self.acknowledged = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: u32 = 1_500_000;

    #[test]
    fn classes_halve_the_full_rate_by_pane_share_down_to_the_floor() {
        assert_eq!(class_for(FULL, 1.0), FULL);
        assert_eq!(class_for(FULL, 0.5), FULL);
        // A quarter pane: half the rate covers it.
        assert_eq!(class_for(FULL, 0.25), 750_000);
        // A ninth: a quarter (375k ≥ 2/9 of 1.5M = 333k).
        assert_eq!(class_for(FULL, 1.0 / 9.0), 375_000);
        // A thumbnail, and shown nowhere: the smallest class.
        assert_eq!(class_for(FULL, 1.0 / 64.0), 187_500);
        assert_eq!(class_for(FULL, 0.0), 187_500);
        // Never below the floor, never above what it may send.
        assert_eq!(class_for(400_000, 0.0), 200_000);
        assert_eq!(class_for(100_000, 0.0), 100_000);
    }

    #[test]
    fn a_lower_limit_waits_for_the_hold_a_higher_one_goes_at_once() {
        let t0 = Instant::now();
        let mut rate = SourceRate::new(BitrateRequestMethod::Tmmbr, FULL);
        assert_eq!(rate.update(t0, 1.0), None, "full: nothing to ask");
        assert_eq!(rate.update(t0, 0.01), None, "smaller, but not yet for long");
        assert_eq!(rate.update(t0 + Duration::from_secs(1), 0.01), None);
        assert_eq!(rate.update(t0 + LOWER_HOLD, 0.01), Some(187_500));
        assert_eq!(rate.requested, Some(187_500));
        // It speaks: the big pane again, at once.
        assert_eq!(rate.update(t0 + LOWER_HOLD + Duration::from_millis(40), 1.0), Some(FULL));
        // A pause of less than the hold changes nothing.
        let t1 = t0 + Duration::from_secs(3);
        rate.on_tmmbn(u64::from(FULL));
        assert_eq!(rate.update(t1, 0.01), None);
        assert_eq!(rate.update(t1 + Duration::from_secs(1), 1.0), None);
        assert_eq!(rate.update(t1 + Duration::from_secs(3), 0.01), None, "the hold restarts");
    }

    #[test]
    fn an_unacknowledged_tmmbr_and_any_remb_are_repeated() {
        let t0 = Instant::now();
        let mut rate = SourceRate::new(BitrateRequestMethod::Tmmbr, FULL);
        rate.update(t0, 0.0);
        assert_eq!(rate.update(t0 + LOWER_HOLD, 0.0), Some(187_500));
        let t1 = t0 + LOWER_HOLD;
        assert_eq!(rate.update(t1 + Duration::from_millis(500), 0.0), None);
        assert_eq!(rate.update(t1 + REPEAT, 0.0), Some(187_500), "no TMMBN yet: again");
        rate.on_tmmbn(187_500);
        assert_eq!(rate.update(t1 + REPEAT * 3, 0.0), None, "acknowledged: quiet");

        let mut remb = SourceRate::new(BitrateRequestMethod::Remb, FULL);
        remb.update(t0, 0.0);
        assert_eq!(remb.update(t0 + LOWER_HOLD, 0.0), Some(187_500));
        assert_eq!(remb.update(t0 + LOWER_HOLD + REPEAT, 0.0), Some(187_500));
    }

    #[test]
    fn an_endpoint_that_offers_neither_is_never_asked() {
        let t0 = Instant::now();
        let mut rate = SourceRate::new(BitrateRequestMethod::None, FULL);
        for k in 0..10 {
            assert_eq!(rate.update(t0 + LOWER_HOLD * k, 0.0), None);
        }
        assert_eq!(BitrateRequestMethod::for_endpoint(true, true), BitrateRequestMethod::Tmmbr);
        assert_eq!(BitrateRequestMethod::for_endpoint(false, true), BitrateRequestMethod::Remb);
        assert_eq!(BitrateRequestMethod::for_endpoint(false, false), BitrateRequestMethod::None);
    }
}
