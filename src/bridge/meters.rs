//! A call leg's `rxAudio` / `txAudio` status from the media engine's
//! counters: bit rates measured over the interval between reads (at least a
//! second, so two quick reads do not divide by nothing), loss and jitter
//! from RTP receive statistics and the far end's RTCP reports.

use std::time::{Duration, Instant};

use confero_api::bridge::{MediaRefusals, StreamStatus};
use confero_media::engine::{EndpointStats, VideoStats};
use confero_media::runtime::RuntimeStats;

/// The shortest interval a bit rate is measured over.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Byte counters at the last measurement, and the rates it gave.
#[derive(Debug, Default)]
pub struct RateMeter {
    last: Option<(Instant, u64, u64)>,
    rates: (u64, u64),
}

impl RateMeter {
    /// (rx, tx) status now. `codec` is the CMS codec name.
    pub fn update(&mut self, now: Instant, stats: &EndpointStats, codec: &str) -> (StreamStatus, StreamStatus) {
        match self.last {
            Some((at, bytes_in, bytes_out)) => {
                let elapsed = now.saturating_duration_since(at);
                if elapsed >= MIN_INTERVAL {
                    let rate = |now: u64, then: u64| (now.saturating_sub(then) * 8 * 1000) / elapsed.as_millis() as u64;
                    self.rates = (rate(stats.bytes_in, bytes_in), rate(stats.bytes_out, bytes_out));
                    self.last = Some((now, stats.bytes_in, stats.bytes_out));
                }
            }
            None => self.last = Some((now, stats.bytes_in, stats.bytes_out)),
        }
        let rtt = stats.round_trip.map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32);
        let expected = stats.packets_in as i64 + stats.rx_lost.max(0);
        let rx_loss = if expected > 0 { stats.rx_lost.max(0) as f32 * 100.0 / expected as f32 } else { 0.0 };
        let rx = StreamStatus {
            codec: codec.to_string(),
            bit_rate: self.rates.0,
            jitter_ms: stats.rx_jitter.as_millis() as u32,
            packet_loss_percentage: rx_loss,
            round_trip_time_ms: rtt,
            ..StreamStatus::default()
        };
        let tx = StreamStatus {
            codec: codec.to_string(),
            bit_rate: self.rates.1,
            jitter_ms: stats.tx_jitter.as_millis() as u32,
            packet_loss_percentage: f32::from(stats.tx_fraction_lost) * 100.0 / 256.0,
            round_trip_time_ms: rtt,
            ..StreamStatus::default()
        };
        (rx, tx)
    }
}

/// A leg's refused media packets, by why (its audio stream's).
pub fn refusals(stats: &EndpointStats) -> MediaRefusals {
    MediaRefusals {
        authentication_failures: stats.auth_failures,
        replays: stats.replays,
        malformed: stats.malformed,
        wrong_payload_type: stats.wrong_payload_type,
        ssrc_refused: stats.ssrc_refused,
    }
}

/// The bridge's refused media packets since start, by why, audio and video.
pub fn runtime_refusals(stats: &RuntimeStats) -> MediaRefusals {
    MediaRefusals {
        authentication_failures: stats.auth_failures,
        replays: stats.replays,
        malformed: stats.malformed,
        wrong_payload_type: stats.wrong_payload_type,
        ssrc_refused: stats.ssrc_refused,
    }
}

/// A leg's `rxVideo` / `txVideo`: bit and frame rates over the interval
/// between reads (at least a second), and the picture sizes.
#[derive(Debug, Default)]
pub struct VideoMeter {
    /// (when, bytes in, bytes out, frames in, frames out) at the last measurement.
    last: Option<(Instant, [u64; 4])>,
    bit_rates: (u64, u64),
    frame_rates: (f32, f32),
}

impl VideoMeter {
    /// (rx, tx) status now; each `None` while that direction has carried nothing.
    pub fn update(
        &mut self,
        now: Instant,
        v: &VideoStats,
        rtt: Option<Duration>,
    ) -> (Option<StreamStatus>, Option<StreamStatus>) {
        let counts = [v.bytes_in, v.bytes_out, v.frames_in, v.frames_out];
        match self.last {
            Some((at, then)) => {
                let elapsed = now.saturating_duration_since(at);
                if elapsed >= MIN_INTERVAL {
                    let per_second = |i: usize| counts[i].saturating_sub(then[i]) as f64 / elapsed.as_secs_f64();
                    self.bit_rates = ((per_second(0) * 8.0) as u64, (per_second(1) * 8.0) as u64);
                    self.frame_rates = (per_second(2) as f32, per_second(3) as f32);
                    self.last = Some((now, counts));
                }
            }
            None => self.last = Some((now, counts)),
        }
        let rtt = rtt.map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32);
        let status = |bit_rate: u64, (w, h): (u32, u32), frame_rate: f32| StreamStatus {
            codec: v.codec.cms_name().to_string(),
            bit_rate,
            round_trip_time_ms: rtt,
            width: Some(w),
            height: Some(h),
            frame_rate: Some(frame_rate),
            ..StreamStatus::default()
        };
        let rx = (v.packets_in > 0).then(|| status(self.bit_rates.0, v.rx_size, self.frame_rates.0));
        let tx = (v.packets_out > 0).then(|| status(self.bit_rates.1, v.tx_size, self.frame_rates.1));
        (rx, tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_loss_and_jitter_come_from_the_counters() {
        let mut meter = RateMeter::default();
        let t0 = Instant::now();
        let mut stats = EndpointStats { bytes_in: 1000, bytes_out: 2000, ..EndpointStats::default() };
        meter.update(t0, &stats, "opus");
        stats.bytes_in += 4000;
        stats.bytes_out += 8000;
        stats.packets_in = 90;
        stats.rx_lost = 10;
        stats.rx_jitter = Duration::from_millis(12);
        stats.tx_fraction_lost = 64;
        stats.round_trip = Some(Duration::from_millis(35));
        let (rx, tx) = meter.update(t0 + Duration::from_secs(2), &stats, "opus");
        assert_eq!((rx.bit_rate, tx.bit_rate), (16_000, 32_000));
        assert_eq!((rx.jitter_ms, rx.packet_loss_percentage, rx.round_trip_time_ms), (12, 10.0, Some(35)));
        assert_eq!((tx.packet_loss_percentage, tx.codec.as_str()), (25.0, "opus"));
        // A read within the second keeps the last rates.
        let (rx, _) = meter.update(t0 + Duration::from_millis(2100), &stats, "opus");
        assert_eq!(rx.bit_rate, 16_000);
    }

    #[test]
    fn video_rates_and_sizes_come_from_the_counters() {
        let mut meter = VideoMeter::default();
        let t0 = Instant::now();
        let mut v = VideoStats::default();
        assert_eq!(meter.update(t0, &v, None), (None, None));
        v.packets_in = 100;
        v.bytes_in = 250_000;
        v.frames_in = 60;
        v.rx_size = (640, 360);
        v.packets_out = 100;
        v.bytes_out = 375_000;
        v.frames_out = 60;
        v.tx_size = (1280, 720);
        let (rx, tx) = meter.update(t0 + Duration::from_secs(2), &v, Some(Duration::from_millis(20)));
        let (rx, tx) = (rx.unwrap(), tx.unwrap());
        assert_eq!((rx.codec.as_str(), rx.bit_rate, rx.width, rx.height), ("h264", 1_000_000, Some(640), Some(360)));
        assert_eq!((tx.bit_rate, tx.width, tx.frame_rate), (1_500_000, Some(1280), Some(30.0)));
        assert_eq!(rx.round_trip_time_ms, Some(20));
    }
}
