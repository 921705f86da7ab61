//! How often we ask a sender for a keyframe, and with which RTCP message.
//!
//! A receiver that lost a packet drops every frame until an IDR, and reports
//! that on each dropped frame; asking on each would flood the sender with
//! PLIs and make it send IDR after IDR, which costs far more bandwidth than the
//! loss did. So one request per stream per interval (500 ms by default, about
//! a round trip plus an encode), with the time handed in.

use std::time::{Duration, Instant};

/// The shortest gap between two keyframe requests to one sender.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Which RTCP feedback asks the sender of a stream for a keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequestMethod {
    /// Picture Loss Indication (RFC 4585): what every endpoint with
    /// `a=rtcp-fb:* nack pli`, and most without, understands.
    Pli,
    /// Full Intra Request (RFC 5104), for endpoints whose SDP says `ccm fir`
    /// (some room systems honour FIR and ignore PLI).
    Fir,
}

impl KeyframeRequestMethod {
    /// FIR when the endpoint's SDP offered `a=rtcp-fb:... ccm fir`, else PLI.
    pub fn for_endpoint(offers_ccm_fir: bool) -> Self {
        if offers_ccm_fir {
            KeyframeRequestMethod::Fir
        } else {
            KeyframeRequestMethod::Pli
        }
    }
}

/// A keyframe request to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequest {
    /// Send a PLI.
    Pli,
    /// Send a FIR with this command sequence number; RFC 5104 §4.3.1 has the
    /// sender tell a new request from a repeat by it.
    Fir {
        /// The FIR entry's sequence number.
        sequence: u8,
    },
}

/// At most one keyframe request per interval for one received stream.
#[derive(Debug, Clone)]
pub struct KeyframeRequestLimiter {
    method: KeyframeRequestMethod,
    interval: Duration,
    last: Option<Instant>,
    fir_sequence: u8,
}

impl KeyframeRequestLimiter {
    /// A limiter with the default 500 ms interval.
    pub fn new(method: KeyframeRequestMethod) -> Self {
        Self::with_interval(method, KEYFRAME_REQUEST_INTERVAL)
    }

    /// A limiter with another interval (tests, or a long-RTT link).
    pub fn with_interval(method: KeyframeRequestMethod, interval: Duration) -> Self {
        Self { method, interval, last: None, fir_sequence: 0 }
    }

    /// The method in use.
    pub fn method(&self) -> KeyframeRequestMethod {
        self.method
    }

    /// A keyframe is needed at `now`: the request to send, or `None` when one
    /// went out less than the interval ago (the need is reported again with
    /// the next dropped frame, so nothing is forgotten).
    pub fn request(&mut self, now: Instant) -> Option<KeyframeRequest> {
        if self.last.is_some_and(|last| now.saturating_duration_since(last) < self.interval) {
            return None;
        }
        self.last = Some(now);
        Some(match self.method {
            KeyframeRequestMethod::Pli => KeyframeRequest::Pli,
            KeyframeRequestMethod::Fir => {
                let sequence = self.fir_sequence;
                self.fir_sequence = self.fir_sequence.wrapping_add(1);
                KeyframeRequest::Fir { sequence }
            }
        })
    }

    /// When the next request may go out (`None`: at once).
    pub fn next_allowed(&self) -> Option<Instant> {
        self.last.map(|last| last + self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_500_ms() {
        let start = Instant::now();
        let mut limiter = KeyframeRequestLimiter::new(KeyframeRequestMethod::Pli);
        assert_eq!(limiter.request(start), Some(KeyframeRequest::Pli));
        assert_eq!(limiter.request(start + Duration::from_millis(1)), None);
        assert_eq!(limiter.request(start + Duration::from_millis(499)), None);
        assert_eq!(limiter.next_allowed(), Some(start + Duration::from_millis(500)));
        assert_eq!(limiter.request(start + Duration::from_millis(500)), Some(KeyframeRequest::Pli));
        assert_eq!(limiter.request(start + Duration::from_millis(900)), None);
        assert_eq!(limiter.request(start + Duration::from_millis(1000)), Some(KeyframeRequest::Pli));
    }

    #[test]
    fn fir_only_for_endpoints_that_offer_ccm_fir_and_counts_its_sequence() {
        assert_eq!(KeyframeRequestMethod::for_endpoint(false), KeyframeRequestMethod::Pli);
        let start = Instant::now();
        let mut limiter = KeyframeRequestLimiter::new(KeyframeRequestMethod::for_endpoint(true));
        assert_eq!(limiter.request(start), Some(KeyframeRequest::Fir { sequence: 0 }));
        assert_eq!(limiter.request(start + Duration::from_millis(100)), None);
        assert_eq!(limiter.request(start + Duration::from_secs(1)), Some(KeyframeRequest::Fir { sequence: 1 }));
    }

    #[test]
    fn a_clock_that_steps_back_does_not_unlock_requests() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut limiter = KeyframeRequestLimiter::new(KeyframeRequestMethod::Pli);
        assert!(limiter.request(start).is_some());
        assert_eq!(limiter.request(start - Duration::from_secs(5)), None);
    }
}
