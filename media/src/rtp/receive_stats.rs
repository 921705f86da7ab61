//! Per-source receive statistics, as RFC 3550 appendix A computes them:
//! sequence validation and extended highest sequence (A.1), loss and fraction
//! lost (A.3), interarrival jitter (A.8), and the LSR/DLSR echo that lets the
//! sender measure round-trip time.
//!
//! Time is passed in, never read: the caller hands over the arrival `Instant`
//! it already took when the datagram came off the socket.

use std::time::{Duration, Instant};

use crate::rtcp::{NtpTime, ReportBlock};

/// Packets in sequence before a new source is believed (RFC 3550 A.1).
const MIN_SEQUENTIAL: u32 = 2;
/// A forward jump up to this many is loss, not a restart.
const MAX_DROPOUT: u16 = 3000;
/// A backward jump up to this many is reordering, not a restart.
const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;
/// A change of relative transit time larger than this between two packets
/// is a discontinuity (a sender that restarted its clock, or a forged
/// timestamp), not network jitter: it moves the baseline without feeding
/// the estimate. One forged packet fed in would add up to 2^31/16 units —
/// hours — to a jitter that RFC 3550's 1/16 smoothing takes minutes to
/// forget. A real network that stalls this long has lost the call anyway.
const MAX_TRANSIT_STEP: Duration = Duration::from_secs(3);

/// What [`ReceiveStats::on_packet`] made of a packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketVerdict {
    /// Counted: in sequence, a small gap, a duplicate or reordered.
    Valid,
    /// The source is still on probation; not yet counted.
    Probation,
    /// A jump too large to be loss; counted only if the next packet follows it,
    /// which means the sender restarted its sequence.
    BadSequence,
}

/// Receive statistics for one SSRC.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    ssrc: u32,
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    epoch: Option<Instant>,
    transit: Option<u32>,
    /// Jitter scaled by 16, the integer form of RFC 3550 A.8.
    jitter_q4: u32,
    last_sr: Option<(u32, Instant)>,
}

impl ReceiveStats {
    /// Statistics for `ssrc`, whose timestamps tick at `clock_rate` Hz.
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        Self {
            ssrc,
            clock_rate,
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            epoch: None,
            transit: None,
            jitter_q4: 0,
            last_sr: None,
        }
    }

    /// The source these statistics describe.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Records a packet that arrived at `arrival`.
    pub fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival: Instant) -> PacketVerdict {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let verdict = self.update_seq(seq);
        if verdict == PacketVerdict::Valid {
            self.update_jitter(rtp_timestamp, arrival);
        }
        verdict
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    fn update_seq(&mut self, seq: u16) -> PacketVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return PacketVerdict::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return PacketVerdict::Probation;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two packets in a row after a big jump: the sender restarted.
                self.init_seq(seq);
                self.transit = None;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return PacketVerdict::BadSequence;
            }
        }
        self.received = self.received.wrapping_add(1);
        PacketVerdict::Valid
    }

    fn update_jitter(&mut self, rtp_timestamp: u32, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let elapsed = arrival.saturating_duration_since(epoch).as_nanos();
        // Truncation to 32 bits is the RTP timestamp's own wrap-around.
        let arrival_units = (elapsed * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let transit = arrival_units.wrapping_sub(rtp_timestamp);
        if let Some(prev) = self.transit {
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            let step = u128::from(d) * 1_000_000_000 / u128::from(self.clock_rate.max(1));
            if step <= MAX_TRANSIT_STEP.as_nanos() {
                // J += (|D| - J) / 16, kept scaled by 16 to stay in integers.
                self.jitter_q4 = self.jitter_q4.wrapping_add(d).wrapping_sub((self.jitter_q4 + 8) >> 4);
            }
        }
        self.transit = Some(transit);
    }

    /// Records a sender report from this source, for the LSR/DLSR fields of
    /// the next report block.
    pub fn on_sender_report(&mut self, ntp: NtpTime, arrival: Instant) {
        self.last_sr = Some((ntp.compact(), arrival));
    }

    /// The highest sequence number seen, extended with the count of wraps.
    pub fn extended_highest_sequence(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets counted since the source was validated (duplicates included,
    /// as RFC 3550 counts them).
    pub fn packets_received(&self) -> u32 {
        self.received
    }

    fn expected(&self) -> u32 {
        self.extended_highest_sequence().wrapping_sub(self.base_seq).wrapping_add(1)
    }

    /// Packets expected but not received; negative when duplicates outnumber
    /// losses.
    pub fn cumulative_lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Interarrival jitter as a duration.
    pub fn jitter_duration(&self) -> Duration {
        if self.clock_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(u64::from(self.jitter()) * 1_000_000_000 / u64::from(self.clock_rate))
    }

    /// The report block for the next SR or RR sent at `now`, or `None` while
    /// the source is unvalidated. Resets the interval that fraction lost
    /// covers, so call it once per report.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        if !self.started || self.probation > 0 {
            return None;
        }
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sender_report, delay_since_last_sender_report) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_duration_since(at).as_nanos() * 65536 / 1_000_000_000;
                (lsr, u32::try_from(delay).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_sequence: self.extended_highest_sequence(),
            jitter: self.jitter(),
            last_sender_report,
            delay_since_last_sender_report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    fn feed(stats: &mut ReceiveStats, t0: Instant, seqs: impl IntoIterator<Item = u16>) {
        for (i, seq) in seqs.into_iter().enumerate() {
            let ts = u32::from(seq).wrapping_mul(160);
            stats.on_packet(seq, ts, t0 + MS20 * i as u32);
        }
    }

    #[test]
    fn probation_then_counting() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(1, 8000);
        assert_eq!(s.on_packet(10, 0, t0), PacketVerdict::Probation);
        assert!(s.report_block(t0).is_none());
        assert_eq!(s.on_packet(11, 160, t0 + MS20), PacketVerdict::Valid);
        assert_eq!(s.on_packet(12, 320, t0 + MS20 * 2), PacketVerdict::Valid);
        assert_eq!(s.packets_received(), 2);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.extended_highest_sequence(), 12);
    }

    #[test]
    fn extended_sequence_counts_wraps() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(1, 8000);
        feed(&mut s, t0, (65530..=65535).chain(0..5));
        assert_eq!(s.extended_highest_sequence(), 65536 + 4);
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn loss_and_fraction_lost() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(7, 8000);
        // 100 expected after validation at seq 1, every fourth lost.
        feed(&mut s, t0, (0..=100).filter(|n| n < &2 || n % 4 != 0));
        let block = s.report_block(t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(block.ssrc, 7);
        assert_eq!(block.extended_highest_sequence, 99);
        assert_eq!(block.cumulative_lost, 24);
        assert_eq!(block.fraction_lost, (24 * 256 / 99) as u8);
        // A clean interval reports no fresh loss but keeps the total.
        feed(&mut s, t0, 100..=150);
        let block = s.report_block(t0 + Duration::from_secs(4)).unwrap();
        assert_eq!(block.fraction_lost, 0);
        assert_eq!(block.cumulative_lost, 24);
    }

    #[test]
    fn duplicates_make_loss_negative_but_fraction_zero() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(7, 8000);
        feed(&mut s, t0, [1, 2, 3, 3, 3, 4]);
        let block = s.report_block(t0).unwrap();
        assert_eq!(block.cumulative_lost, -2);
        assert_eq!(block.fraction_lost, 0);
    }

    #[test]
    fn restart_after_two_sequential_jumps() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(7, 8000);
        feed(&mut s, t0, [1, 2, 3]);
        assert_eq!(s.on_packet(40000, 0, t0), PacketVerdict::BadSequence);
        assert_eq!(s.on_packet(40001, 160, t0 + MS20), PacketVerdict::Valid);
        assert_eq!(s.extended_highest_sequence(), 40001);
        assert_eq!(s.packets_received(), 1);
    }

    #[test]
    fn steady_arrival_has_no_jitter_and_late_packets_do() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(7, 8000);
        feed(&mut s, t0, 0..50);
        assert_eq!(s.jitter(), 0);
        // Every other packet 5 ms late: |D| alternates 40 units.
        for i in 50..250u16 {
            let late = if i % 2 == 0 { Duration::from_millis(5) } else { Duration::ZERO };
            s.on_packet(i, u32::from(i) * 160, t0 + MS20 * u32::from(i) + late);
        }
        assert!((36..=40).contains(&s.jitter()), "jitter {}", s.jitter());
        assert_eq!(s.jitter_duration(), Duration::from_nanos(u64::from(s.jitter()) * 125_000));
    }

    #[test]
    fn a_forged_timestamp_moves_the_baseline_without_feeding_the_jitter() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(7, 8000);
        feed(&mut s, t0, 0..50);
        // A packet in sequence whose timestamp is anywhere, then the stream.
        s.on_packet(50, 0x9e37_79b9, t0 + MS20 * 50);
        for i in 51..100u16 {
            s.on_packet(i, u32::from(i) * 160, t0 + MS20 * u32::from(i));
        }
        assert_eq!(s.jitter(), 0, "one forged timestamp made jitter {}", s.jitter());
        // A real timestamp jump with the time it stands for (silence) is no jitter either.
        s.on_packet(100, 100 * 160 + 8000 * 10, t0 + MS20 * 100 + Duration::from_secs(10));
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn lsr_and_dlsr_echo_the_last_sender_report() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(7, 8000);
        feed(&mut s, t0, 0..3);
        s.on_sender_report(NtpTime(0x0001_2345_6789_0000), t0);
        let block = s.report_block(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(block.last_sender_report, 0x2345_6789);
        assert_eq!(block.delay_since_last_sender_report, 32768);
    }
}
