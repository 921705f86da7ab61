//! Sender and receiver reports (RFC 3550 §6.4) and the NTP timestamps they
//! carry.

use std::time::Duration;

use super::{be32, begin, count_of, finish, Header, RtcpError, PT_RR, PT_SR};

/// Bytes in one reception report block.
const REPORT_BLOCK_LEN: usize = 24;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, the
/// fraction in the low 32.
///
/// The media core reads no clock; the caller converts its wall clock with
/// [`NtpTime::from_unix`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP time of a moment given as time since the Unix epoch.
    pub fn from_unix(since_unix_epoch: Duration) -> Self {
        let secs = since_unix_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS);
        let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        Self(secs << 32 | frac)
    }

    /// Time since the Unix epoch, or zero for moments before it.
    pub fn to_unix(self) -> Duration {
        let secs = (self.0 >> 32).saturating_sub(NTP_UNIX_OFFSET_SECS);
        let nanos = ((self.0 & 0xffff_ffff) * 1_000_000_000) >> 32;
        Duration::new(secs, nanos as u32)
    }

    /// The middle 32 bits, in units of 1/65536 s: the form LSR and DLSR use.
    pub fn compact(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// One reception report: what the reporter saw of one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Loss since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost since the start (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Wrap count in the high 16 bits, highest sequence in the low 16.
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// LSR: the compact NTP time of the last SR from this source, 0 if none.
    pub last_sender_report: u32,
    /// DLSR: 1/65536 s between receiving that SR and sending this block.
    pub delay_since_last_sender_report: u32,
}

impl ReportBlock {
    /// The round-trip time this block implies, measured by the sender of the
    /// SR it echoes, which received the block at `arrival` (RFC 3550 §6.4.1:
    /// A - LSR - DLSR). `None` when the reporter has not yet seen an SR.
    /// A negative result, from rounding or clock steps, is reported as zero.
    pub fn round_trip_time(&self, arrival: NtpTime) -> Option<Duration> {
        if self.last_sender_report == 0 {
            return None;
        }
        let rtt =
            arrival.compact().wrapping_sub(self.last_sender_report).wrapping_sub(self.delay_since_last_sender_report);
        if rtt >= 0x8000_0000 {
            return Some(Duration::ZERO);
        }
        Some(Duration::from_nanos(u64::from(rtt) * 1_000_000_000 / 65536))
    }

    fn parse(b: &[u8]) -> Self {
        let lost = be32(b, 4);
        Self {
            ssrc: be32(b, 0),
            fraction_lost: (lost >> 24) as u8,
            // Sign-extend the 24-bit field.
            cumulative_lost: ((lost << 8) as i32) >> 8,
            extended_highest_sequence: be32(b, 8),
            jitter: be32(b, 12),
            last_sender_report: be32(b, 16),
            delay_since_last_sender_report: be32(b, 20),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0xff_ffff;
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&(u32::from(self.fraction_lost) << 24 | lost).to_be_bytes());
        out.extend_from_slice(&self.extended_highest_sequence.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sender_report.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sender_report.to_be_bytes());
    }
}

fn parse_blocks(header: Header, b: &[u8]) -> Result<Vec<ReportBlock>, RtcpError> {
    let n = usize::from(header.count);
    let blocks = b.get(..n * REPORT_BLOCK_LEN).ok_or(RtcpError::BodyTooShort { packet_type: header.packet_type })?;
    Ok(blocks.chunks_exact(REPORT_BLOCK_LEN).map(ReportBlock::parse).collect())
}

/// SR: sent by every source that sent media since the last report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderReport {
    /// The sender.
    pub ssrc: u32,
    /// Wall-clock time of this report, to map RTP timestamps to real time
    /// (lip sync) and to anchor RTT.
    pub ntp_time: NtpTime,
    /// The RTP timestamp corresponding to `ntp_time`.
    pub rtp_timestamp: u32,
    /// Packets sent since the stream began.
    pub packet_count: u32,
    /// Payload octets sent since the stream began.
    pub octet_count: u32,
    /// Reception reports, at most 31.
    pub reports: Vec<ReportBlock>,
}

impl SenderReport {
    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        if b.len() < 24 {
            return Err(RtcpError::BodyTooShort { packet_type: PT_SR });
        }
        Ok(Self {
            ssrc: be32(b, 0),
            ntp_time: NtpTime(u64::from(be32(b, 4)) << 32 | u64::from(be32(b, 8))),
            rtp_timestamp: be32(b, 12),
            packet_count: be32(b, 16),
            octet_count: be32(b, 20),
            reports: parse_blocks(header, &b[24..])?,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = begin(out, count_of(self.reports.len())?, PT_SR)?;
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.ntp_time.0.to_be_bytes());
        out.extend_from_slice(&self.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&self.packet_count.to_be_bytes());
        out.extend_from_slice(&self.octet_count.to_be_bytes());
        for r in &self.reports {
            r.write(out);
        }
        finish(out, start)
    }
}

/// RR: reception reports from a participant that sent no media lately.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverReport {
    /// The reporter.
    pub ssrc: u32,
    /// Reception reports, at most 31.
    pub reports: Vec<ReportBlock>,
}

impl ReceiverReport {
    pub(super) fn parse(header: Header, b: &[u8]) -> Result<Self, RtcpError> {
        if b.len() < 4 {
            return Err(RtcpError::BodyTooShort { packet_type: PT_RR });
        }
        Ok(Self { ssrc: be32(b, 0), reports: parse_blocks(header, &b[4..])? })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = begin(out, count_of(self.reports.len())?, PT_RR)?;
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for r in &self.reports {
            r.write(out);
        }
        finish(out, start)
    }
}

#[cfg(test)]
mod tests {
    use super::super::RtcpPacket;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ntp_conversions() {
        let t = NtpTime::from_unix(Duration::new(1_700_000_000, 500_000_000));
        assert_eq!(t.0 >> 32, 1_700_000_000 + NTP_UNIX_OFFSET_SECS);
        assert_eq!(t.0 & 0xffff_ffff, 0x8000_0000);
        assert_eq!(t.to_unix(), Duration::new(1_700_000_000, 500_000_000));
        assert_eq!(NtpTime(0x0000_1234_5678_0000).compact(), 0x1234_5678);
    }

    #[test]
    fn rtt_from_lsr_and_dlsr() {
        // RFC 3550 §6.4.1's worked example: A = 0xb710:8000 (46864.500 s),
        // DLSR = 0x0005:4000 (5.250 s), LSR = 0xb705:2000 (46853.125 s):
        // a round trip of 6.125 s.
        let block = ReportBlock {
            last_sender_report: 0xb705_2000,
            delay_since_last_sender_report: 0x0005_4000,
            ..ReportBlock::default()
        };
        let arrival = NtpTime(0xb710_8000u64 << 16);
        assert_eq!(block.round_trip_time(arrival), Some(Duration::from_millis(6125)));
        let early = NtpTime(0xb705_2000u64 << 16);
        assert_eq!(block.round_trip_time(early), Some(Duration::ZERO));
        assert_eq!(ReportBlock::default().round_trip_time(arrival), None);
    }

    #[test]
    fn sender_report_round_trip_and_clamped_loss() {
        let sr = SenderReport {
            ssrc: 0xdead_beef,
            ntp_time: NtpTime(0x0102_0304_0506_0708),
            rtp_timestamp: 9,
            packet_count: 10,
            octet_count: 11,
            reports: vec![ReportBlock { ssrc: 3, cumulative_lost: -0x80_0000, ..ReportBlock::default() }],
        };
        let mut out = Vec::new();
        RtcpPacket::SenderReport(sr.clone()).write(&mut out).unwrap();
        assert_eq!(out.len(), 4 + 24 + 24);
        assert_eq!(RtcpPacket::parse_compound(&out).unwrap(), vec![RtcpPacket::SenderReport(sr)]);

        let huge = ReceiverReport {
            ssrc: 1,
            reports: vec![ReportBlock { cumulative_lost: i32::MAX, ..ReportBlock::default() }],
        };
        let mut out = Vec::new();
        RtcpPacket::ReceiverReport(huge).write(&mut out).unwrap();
        let Ok(parsed) = RtcpPacket::parse_compound(&out) else { panic!("parse") };
        let RtcpPacket::ReceiverReport(rr) = &parsed[0] else { panic!("not an RR") };
        assert_eq!(rr.reports[0].cumulative_lost, 0x7f_ffff);
    }

    #[test]
    fn report_count_must_fit_the_body() {
        // An RR claiming two blocks but carrying one.
        let mut buf = vec![0x82, PT_RR, 0, 7];
        buf.extend_from_slice(&[0; 28]);
        assert_eq!(RtcpPacket::parse_compound(&buf), Err(RtcpError::BodyTooShort { packet_type: PT_RR }));
        let too_many = ReceiverReport { ssrc: 1, reports: vec![ReportBlock::default(); 32] };
        let mut out = Vec::new();
        assert_eq!(RtcpPacket::ReceiverReport(too_many).write(&mut out), Err(RtcpError::TooManyItems(32)));
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn report_blocks_round_trip(
            ssrc: u32, fraction: u8, lost in -0x80_0000i32..=0x7f_ffff,
            ehs: u32, jitter: u32, lsr: u32, dlsr: u32,
        ) {
            let block = ReportBlock {
                ssrc, fraction_lost: fraction, cumulative_lost: lost,
                extended_highest_sequence: ehs, jitter,
                last_sender_report: lsr, delay_since_last_sender_report: dlsr,
            };
            let rr = RtcpPacket::ReceiverReport(ReceiverReport { ssrc: 1, reports: vec![block; 3] });
            let mut out = Vec::new();
            rr.write(&mut out).unwrap();
            prop_assert_eq!(RtcpPacket::parse_compound(&out).unwrap(), vec![rr]);
        }
    }
}
