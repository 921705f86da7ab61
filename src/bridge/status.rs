//! A call leg's `rxAudio` / `txAudio` status from the media engine's
//! counters: bit rates measured over the interval between reads (at least a
//! second, so two quick reads do not divide by nothing), loss and jitter
//! from RTP receive statistics and the far end's RTCP reports.

use std::time::{Duration, Instant};

use confero_control::bridge::StreamStatus;
use confero_media::engine::EndpointStats;

/// The shortest interval a bit rate is measured over.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Byte counters at the last measurement, and the rates it gave.
#[derive(Debug, Default)]
pub(super) struct RateMeter {
    last: Option<(Instant, u64, u64)>,
    rates: (u64, u64),
}

impl RateMeter {
    /// (rx, tx) status now. `codec` is the CMS codec name.
    pub(super) fn update(&mut self, now: Instant, stats: &EndpointStats, codec: &str) -> (StreamStatus, StreamStatus) {
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
}
