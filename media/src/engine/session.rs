//! [`RtpSession`]: one stream's RTP session with one endpoint, the part
//! audio and video have in common.
//!
//! Why one type: each of an endpoint's streams (its audio, its video) needs
//! the same things — our SSRC, sequence and timestamp; an SRTP and SRTCP
//! context each way, or the knowledge that keys are still to come; RFC 3550
//! statistics of what it sends; our SR/RR/SDES report timer; what its report
//! blocks say of our stream (round-trip time, loss, jitter). Written once, a
//! fix or a new keying path (DTLS-SRTP, [`RtpSession::set_keys`]) reaches
//! both halves of the engine at once. What each half does with the media —
//! jitter buffer and mixer, depacketizer and views — stays with it.

use std::time::{Duration, Instant};

use super::{EngineError, SrtpKeys};
use crate::rtcp::{NtpTime, ReceiverReport, ReportBlock, RtcpPacket, SenderReport, SourceDescription};
use crate::rtp::{HeaderExtension, ReceiveStats, RtpHeader, RtpPacket};
use crate::srtp::{SrtpContext, SrtpError};

/// What our side of a new session sends as.
pub(super) struct OurStream {
    /// Our SSRC.
    pub(super) ssrc: u32,
    /// Our first sequence number.
    pub(super) sequence: u16,
    /// Our first RTP timestamp.
    pub(super) timestamp: u32,
    /// The RTP clock of the stream (both ways).
    pub(super) clock_rate: u32,
    /// The CNAME of our SDES.
    pub(super) cname: String,
}

/// How a stream is protected, as negotiated at attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keying<'a> {
    /// These keys each way now (SDES); `None`: plain RTP that way.
    Now {
        /// For what the endpoint sends.
        inbound: Option<&'a SrtpKeys>,
        /// For what we send it.
        outbound: Option<&'a SrtpKeys>,
    },
    /// SRTP whose keys come later (DTLS-SRTP): nothing passes either way
    /// until [`RtpSession::set_keys`].
    Pending,
}

impl<'a> Keying<'a> {
    /// From a stream config: the keys it gives, or keys to come
    /// (`pending`); both at once is the caller's mistake, refused.
    pub(super) fn from_config(
        inbound: Option<&'a SrtpKeys>,
        outbound: Option<&'a SrtpKeys>,
        pending: bool,
    ) -> Result<Self, EngineError> {
        match (pending, inbound.is_some() || outbound.is_some()) {
            (true, true) => Err(EngineError::KeysConflict),
            (true, false) => Ok(Self::Pending),
            (false, _) => Ok(Self::Now { inbound, outbound }),
        }
    }
}

/// What a new RTP packet's SSRC means for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The source we already had.
    Same,
    /// The first source seen.
    First,
    /// Another source took over (a re-INVITE, a restarted camera).
    Changed,
    /// Another source that has not (yet) earned the stream: the packet is
    /// dropped and counted, and no state of the current source changes.
    Refused,
}

/// Packets in sequence a new SSRC must send, with none from the current
/// source among them, before it replaces the current source...
const SSRC_PROBATION: u32 = 4;
/// ... spread over at least this long, so a burst cannot outrun the current
/// source's packets (three audio packet times; a real new source sends
/// steadily and is through probation within about 80 ms).
const SSRC_SETTLE: Duration = Duration::from_millis(60);

/// A new SSRC on probation (see [`RtpSession::on_rtp`]).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    ssrc: u32,
    /// The sequence number its next packet must carry.
    next_sequence: u16,
    /// Its packets in sequence so far.
    packets: u32,
    /// When the first of them came.
    since: Instant,
}

/// Our side of one stream's RTP session with one endpoint. See the
/// [module docs](self).
pub(super) struct RtpSession {
    ssrc: u32,
    sequence: u16,
    /// The first timestamp of our stream (video counts from it).
    timestamp_base: u32,
    /// Our stream's RTP timestamp now, for the SR.
    timestamp: u32,
    clock_rate: u32,
    cname: String,
    srtp_in: Option<SrtpContext>,
    srtp_out: Option<SrtpContext>,
    /// SRTP keys are still to come: drop everything, both ways.
    keys_pending: bool,
    remote_ssrc: Option<u32>,
    /// The current source said RTCP BYE: the next source takes over at once.
    remote_left: bool,
    /// A new SSRC on probation.
    candidate: Option<Candidate>,
    /// Packets of other SSRCs refused (see [`RtpSession::on_rtp`]).
    ssrc_refused: u64,
    receive_stats: Option<ReceiveStats>,
    /// When our next report is due (`None`: not yet scheduled).
    next_report: Option<Instant>,
    packets_out: u64,
    bytes_out: u64,
    /// Payload octets sent, for the SR's octet count.
    octets_out: u32,
    rtcp_out: u64,
    /// Packets dropped, either way, while keys were pending.
    unkeyed: u64,
    /// From the endpoint's report blocks about our stream.
    round_trip: Option<Duration>,
    tx_fraction_lost: u8,
    tx_jitter: Duration,
}

impl RtpSession {
    /// A session sending as `ours`, keyed as `keying` says.
    pub(super) fn new(ours: OurStream, keying: Keying<'_>) -> Result<Self, EngineError> {
        let OurStream { ssrc, sequence, timestamp, clock_rate, cname } = ours;
        let (srtp_in, srtp_out, keys_pending) = match keying {
            Keying::Now { inbound, outbound } => {
                (inbound.map(context).transpose()?, outbound.map(context).transpose()?, false)
            }
            Keying::Pending => (None, None, true),
        };
        Ok(Self {
            ssrc,
            sequence,
            timestamp_base: timestamp,
            timestamp,
            clock_rate,
            cname,
            srtp_in,
            srtp_out,
            keys_pending,
            remote_ssrc: None,
            remote_left: false,
            candidate: None,
            ssrc_refused: 0,
            receive_stats: None,
            next_report: None,
            packets_out: 0,
            bytes_out: 0,
            octets_out: 0,
            rtcp_out: 0,
            unkeyed: 0,
            round_trip: None,
            tx_fraction_lost: 0,
            tx_jitter: Duration::ZERO,
        })
    }

    /// Keys the stream (DTLS-SRTP, or new SDES keys): media flows from now on,
    /// protected with fresh contexts each way.
    pub(super) fn set_keys(&mut self, inbound: &SrtpKeys, outbound: &SrtpKeys) -> Result<(), EngineError> {
        let (srtp_in, srtp_out) = (context(inbound)?, context(outbound)?);
        self.srtp_in = Some(srtp_in);
        self.srtp_out = Some(srtp_out);
        self.keys_pending = false;
        Ok(())
    }

    /// Whether anything may be sent: not while keys are pending. A packet
    /// not built for this reason is counted with [`RtpSession::count_unkeyed`].
    pub(super) fn can_send(&self) -> bool {
        !self.keys_pending
    }

    /// Counts a packet dropped because keys are pending.
    pub(super) fn count_unkeyed(&mut self) {
        self.unkeyed += 1;
    }

    /// Our SSRC.
    pub(super) fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Packets of an SSRC other than the current one, refused.
    pub(super) fn ssrc_refused(&self) -> u64 {
        self.ssrc_refused
    }

    /// The endpoint's SSRC, once it has sent.
    pub(super) fn remote_ssrc(&self) -> Option<u32> {
        self.remote_ssrc
    }

    /// The first timestamp of our stream.
    pub(super) fn timestamp_base(&self) -> u32 {
        self.timestamp_base
    }

    /// Our stream's RTP timestamp now.
    pub(super) fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Moves our stream's clock on by `step` (audio: one tick, sent or not).
    pub(super) fn advance_timestamp(&mut self, step: u32) {
        self.timestamp = self.timestamp.wrapping_add(step);
    }

    /// Sets our stream's clock (video: the frame time's timestamp).
    pub(super) fn set_timestamp(&mut self, timestamp: u32) {
        self.timestamp = timestamp;
    }

    /// Unprotects (in place) an RTP packet the endpoint sent. Refused while
    /// keys are pending ([`EngineError::KeysPending`], counted).
    pub(super) fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), EngineError> {
        if self.keys_pending {
            self.unkeyed += 1;
            return Err(EngineError::KeysPending);
        }
        if let Some(srtp) = &mut self.srtp_in {
            srtp.unprotect_rtp(packet)?;
        }
        Ok(())
    }

    /// Unprotects (in place) an RTCP compound the endpoint sent. Refused
    /// while keys are pending ([`EngineError::KeysPending`], counted).
    pub(super) fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), EngineError> {
        if self.keys_pending {
            self.unkeyed += 1;
            return Err(EngineError::KeysPending);
        }
        if let Some(srtp) = &mut self.srtp_in {
            srtp.unprotect_rtcp(packet)?;
        }
        Ok(())
    }

    /// Takes an RTP packet that passed SRTP, parsing and the payload type
    /// check into the receive statistics, and says what its SSRC means.
    ///
    /// The rule for a change of SSRC. One endpoint sends one stream, so RFC
    /// 3550 §8.2 treats a new SSRC from the same address as a collision or a
    /// loop rather than a new truth, and §A.1 believes a source only after
    /// packets in sequence (probation). So the first SSRC is taken at once;
    /// after that a new SSRC replaces the current one (restarting the
    /// statistics and the caller's jitter buffer or depacketizer) only when
    /// - the current source has said RTCP BYE (then at once), or
    /// - it has sent [`SSRC_PROBATION`] packets in sequence, over at least
    ///   [`SSRC_SETTLE`], with none from the current source among them: the
    ///   current source has stopped (a re-INVITE, a restarted camera, a
    ///   transcoder's new stream).
    ///
    /// Anything else is [`Source::Refused`] and counted: junk or a second
    /// sender can no longer reset the stream with each packet, and an
    /// interleaved packet from the current source starts a candidate's
    /// probation over.
    pub(super) fn on_rtp(&mut self, now: Instant, rtp: &RtpPacket<'_>) -> Source {
        let ssrc = rtp.ssrc();
        let source = match self.remote_ssrc {
            Some(s) if s == ssrc => {
                self.candidate = None;
                Source::Same
            }
            Some(_) if self.remote_left => Source::Changed,
            Some(_) => {
                let sequence = rtp.sequence_number();
                let candidate = match self.candidate {
                    Some(c) if c.ssrc == ssrc && c.next_sequence == sequence => {
                        Candidate { next_sequence: sequence.wrapping_add(1), packets: c.packets + 1, ..c }
                    }
                    _ => Candidate { ssrc, next_sequence: sequence.wrapping_add(1), packets: 1, since: now },
                };
                if candidate.packets < SSRC_PROBATION || now.saturating_duration_since(candidate.since) < SSRC_SETTLE {
                    self.candidate = Some(candidate);
                    self.ssrc_refused += 1;
                    return Source::Refused;
                }
                Source::Changed
            }
            None => Source::First,
        };
        if source != Source::Same {
            self.remote_ssrc = Some(ssrc);
            self.remote_left = false;
            self.candidate = None;
            self.receive_stats = Some(ReceiveStats::new(ssrc, self.clock_rate));
        }
        if let Some(r) = &mut self.receive_stats {
            r.on_packet(rtp.sequence_number(), rtp.timestamp(), now);
        }
        source
    }

    /// Takes one packet of an accepted RTCP compound: an SR feeds our next
    /// report block's LSR/DLSR, and a report block about our stream (which
    /// arrived at `arrival` on the NTP clock) gives the round-trip time and
    /// the loss and jitter the endpoint sees. Returns that block.
    pub(super) fn on_rtcp(&mut self, now: Instant, arrival: NtpTime, packet: &RtcpPacket) -> Option<ReportBlock> {
        let blocks = match packet {
            RtcpPacket::Goodbye(bye) => {
                self.remote_left |= self.remote_ssrc.is_some_and(|s| bye.ssrcs.contains(&s));
                return None;
            }
            RtcpPacket::SenderReport(sr) => {
                if let Some(r) = self.receive_stats.as_mut().filter(|r| r.ssrc() == sr.ssrc) {
                    r.on_sender_report(sr.ntp_time, now);
                }
                &sr.reports
            }
            RtcpPacket::ReceiverReport(rr) => &rr.reports,
            _ => return None,
        };
        let mut ours = None;
        for block in blocks.iter().filter(|b| b.ssrc == self.ssrc) {
            if let Some(rtt) = block.round_trip_time(arrival) {
                self.round_trip = Some(rtt);
            }
            self.tx_fraction_lost = block.fraction_lost;
            self.tx_jitter =
                Duration::from_nanos(u64::from(block.jitter) * 1_000_000_000 / u64::from(self.clock_rate.max(1)));
            ours = ours.or(Some(*block));
        }
        ours
    }

    /// Writes our next RTP packet (our SSRC and sequence) around `payload`
    /// into `bytes` and protects it. The caller has checked
    /// [`can_send`](Self::can_send).
    pub(super) fn write_rtp(
        &mut self,
        marker: bool,
        payload_type: u8,
        timestamp: u32,
        extensions: &[HeaderExtension<'_>],
        payload: &[u8],
        bytes: &mut Vec<u8>,
    ) -> Result<(), EngineError> {
        let header = RtpHeader {
            marker,
            payload_type,
            sequence_number: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            extensions,
            ..RtpHeader::default()
        };
        header.write_packet(payload, bytes)?;
        if let Some(srtp) = &mut self.srtp_out {
            srtp.protect_rtp(bytes)?;
        }
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_out += 1;
        self.bytes_out += bytes.len() as u64;
        self.octets_out = self.octets_out.wrapping_add(payload.len() as u32);
        Ok(())
    }

    /// Whether our regular report is due at `now`.
    pub(super) fn report_due(&self, now: Instant) -> bool {
        self.next_report.is_none_or(|t| t <= now)
    }

    /// Schedules the next report `interval` from `now` (the first within
    /// half of it); returns whether this was the first, which sends nothing
    /// (we have nothing to report yet).
    pub(super) fn schedule_report(&mut self, now: Instant, interval: Duration) -> bool {
        let first = self.next_report.is_none();
        self.next_report = Some(now + if first { interval / 2 } else { interval });
        first
    }

    /// Writes our report into `bytes`: an SR if we have sent media, else an
    /// RR, with a block about the endpoint's stream once it has sent one,
    /// SDES CNAME, then `extra` (a TMMBN), protected. `false`, and nothing
    /// written, while keys are pending.
    pub(super) fn write_report(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        extra: Option<RtcpPacket>,
        bytes: &mut Vec<u8>,
    ) -> Result<bool, EngineError> {
        if self.keys_pending {
            self.unkeyed += 1;
            return Ok(false);
        }
        let reports: Vec<_> = self.receive_stats.as_mut().and_then(|r| r.report_block(now)).into_iter().collect();
        let report = if self.packets_out > 0 {
            RtcpPacket::SenderReport(SenderReport {
                ssrc: self.ssrc,
                ntp_time: ntp,
                rtp_timestamp: self.timestamp,
                packet_count: self.packets_out as u32,
                octet_count: self.octets_out,
                reports,
            })
        } else {
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc: self.ssrc, reports })
        };
        let sdes = RtcpPacket::SourceDescription(SourceDescription::cname(self.ssrc, &self.cname));
        let mut packets = vec![report, sdes];
        packets.extend(extra);
        RtcpPacket::write_compound(&packets, bytes)?;
        if let Some(srtp) = &mut self.srtp_out {
            srtp.protect_rtcp(bytes)?;
        }
        self.rtcp_out += 1;
        Ok(true)
    }

    /// Feedback to the endpoint about its stream (PLI, FIR, TMMBR, REMB): an
    /// RTCP compound led by an empty receiver report (RFC 3550 compounds
    /// start with SR/RR), protected. `None` while keys are pending.
    pub(super) fn write_feedback(&mut self, feedback: RtcpPacket) -> Result<Option<Vec<u8>>, EngineError> {
        if self.keys_pending {
            self.unkeyed += 1;
            return Ok(None);
        }
        let rr = RtcpPacket::ReceiverReport(ReceiverReport { ssrc: self.ssrc, reports: Vec::new() });
        let mut bytes = Vec::with_capacity(64);
        RtcpPacket::write_compound(&[rr, feedback], &mut bytes)?;
        if let Some(srtp) = &mut self.srtp_out {
            srtp.protect_rtcp(&mut bytes)?;
        }
        self.rtcp_out += 1;
        Ok(Some(bytes))
    }

    /// RTP packets sent.
    pub(super) fn packets_out(&self) -> u64 {
        self.packets_out
    }

    /// Their bytes on the wire.
    pub(super) fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// RTCP compounds sent.
    pub(super) fn rtcp_out(&self) -> u64 {
        self.rtcp_out
    }

    /// Packets dropped, either way, while keys were pending.
    pub(super) fn unkeyed(&self) -> u64 {
        self.unkeyed
    }

    /// RFC 3550 interarrival jitter and cumulative loss of what the endpoint sends.
    pub(super) fn rx_jitter_and_loss(&self) -> (Duration, i64) {
        self.receive_stats.as_ref().map_or((Duration::ZERO, 0), |r| (r.jitter_duration(), r.cumulative_lost()))
    }

    /// The round-trip time from its last report block about our stream.
    pub(super) fn round_trip(&self) -> Option<Duration> {
        self.round_trip
    }

    /// The loss (of 256) and jitter it last reported of our stream.
    pub(super) fn tx_loss_and_jitter(&self) -> (u8, Duration) {
        (self.tx_fraction_lost, self.tx_jitter)
    }
}

fn context(keys: &SrtpKeys) -> Result<SrtpContext, SrtpError> {
    SrtpContext::new(keys.profile, &keys.key, &keys.salt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::SrtpProfile;

    fn keys(n: u8) -> SrtpKeys {
        SrtpKeys { profile: SrtpProfile::AesCm128HmacSha1_80, key: vec![n; 16], salt: vec![n; 14] }
    }

    fn session(keying: Keying<'_>) -> RtpSession {
        let ours =
            OurStream { ssrc: 0x1234, sequence: 100, timestamp: 5000, clock_rate: 48_000, cname: "confero".into() };
        RtpSession::new(ours, keying).unwrap()
    }

    const PLAIN: Keying<'static> = Keying::Now { inbound: None, outbound: None };

    fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
        let mut bytes = Vec::new();
        let header = RtpHeader { payload_type: 111, sequence_number: seq, ssrc, ..RtpHeader::default() };
        header.write_packet(&[1, 2, 3], &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn with_keys_pending_nothing_passes_either_way_and_each_drop_is_counted() {
        let mut s = session(Keying::Pending);
        let now = Instant::now();
        assert!(!s.can_send());
        assert_eq!(s.unprotect_rtp(&mut rtp(7, 1)), Err(EngineError::KeysPending));
        assert_eq!(s.unprotect_rtcp(&mut vec![0x80, 201, 0, 1, 0, 0, 0, 7]), Err(EngineError::KeysPending));
        assert_eq!(s.write_report(now, NtpTime(0), None, &mut Vec::new()), Ok(false));
        let pli =
            RtcpPacket::PictureLossIndication(crate::rtcp::PictureLossIndication { sender_ssrc: 1, media_ssrc: 7 });
        assert_eq!(s.write_feedback(pli), Ok(None));
        assert_eq!((s.unkeyed(), s.rtcp_out()), (4, 0));

        s.set_keys(&keys(1), &keys(2)).unwrap();
        assert!(s.can_send());
        let mut bytes = Vec::new();
        s.write_rtp(true, 111, s.timestamp(), &[], &[9; 20], &mut bytes).unwrap();
        let mut peer = context(&keys(2)).unwrap();
        peer.unprotect_rtp(&mut bytes).unwrap();
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!((packet.ssrc(), packet.sequence_number(), packet.timestamp()), (0x1234, 100, 5000));
        assert_eq!((s.packets_out(), s.bytes_out()), (1, 12 + 20 + 10));
    }

    #[test]
    fn keys_given_for_a_pending_stream_are_refused() {
        let k = keys(1);
        assert_eq!(Keying::from_config(Some(&k), None, true), Err(EngineError::KeysConflict));
        assert_eq!(Keying::from_config(None, None, true), Ok(Keying::Pending));
        assert_eq!(Keying::from_config(Some(&k), None, false), Ok(Keying::Now { inbound: Some(&k), outbound: None }));
    }

    #[test]
    fn the_first_report_is_scheduled_within_half_an_interval_and_sends_nothing() {
        let mut s = session(PLAIN);
        let now = Instant::now();
        let interval = Duration::from_secs(4);
        assert!(s.report_due(now));
        assert!(s.schedule_report(now, interval));
        assert!(!s.report_due(now + Duration::from_millis(1999)));
        assert!(s.report_due(now + Duration::from_secs(2)));
        assert!(!s.schedule_report(now + Duration::from_secs(2), interval));
        assert!(!s.report_due(now + Duration::from_millis(5999)));
    }

    fn feed(s: &mut RtpSession, at: Instant, ssrc: u32, seq: u16) -> Source {
        s.on_rtp(at, &RtpPacket::parse(&rtp(ssrc, seq)).unwrap())
    }

    const PTIME: Duration = Duration::from_millis(20);

    #[test]
    fn a_new_source_that_persists_takes_over_and_restarts_the_receive_statistics() {
        let mut s = session(PLAIN);
        let t0 = Instant::now();
        assert_eq!(feed(&mut s, t0, 7, 1), Source::First);
        assert_eq!(feed(&mut s, t0 + PTIME, 7, 10), Source::Same);
        let lossy = s.rx_jitter_and_loss();
        // The old source stops; the new one sends steadily: refused while on
        // probation, then it takes over.
        for i in 0..3u16 {
            assert_eq!(feed(&mut s, t0 + PTIME * (2 + u32::from(i)), 8, 500 + i), Source::Refused);
        }
        assert_eq!(s.remote_ssrc(), Some(7));
        assert_eq!(feed(&mut s, t0 + PTIME * 5, 8, 503), Source::Changed);
        let mut fresh = session(PLAIN);
        feed(&mut fresh, t0, 8, 503);
        assert_eq!(s.remote_ssrc(), Some(8));
        assert_eq!(s.rx_jitter_and_loss(), fresh.rx_jitter_and_loss());
        assert_ne!(s.rx_jitter_and_loss(), lossy);
        assert_eq!(s.ssrc_refused(), 3);
        assert_eq!(feed(&mut s, t0 + PTIME * 6, 8, 504), Source::Same);
    }

    #[test]
    fn junk_with_a_new_ssrc_each_packet_never_takes_over() {
        let mut s = session(PLAIN);
        let t0 = Instant::now();
        assert_eq!(feed(&mut s, t0, 7, 1), Source::First);
        for i in 0..200u32 {
            let at = t0 + PTIME * i;
            assert_eq!(feed(&mut s, at, 1000 + i, (i * 7919) as u16), Source::Refused);
            // Even a run in sequence, when the current source keeps sending.
            assert_eq!(feed(&mut s, at, 99, i as u16), Source::Refused);
            assert_eq!(feed(&mut s, at, 7, 2 + i as u16), Source::Same);
        }
        assert_eq!((s.remote_ssrc(), s.ssrc_refused()), (Some(7), 400));
        let (_, lost) = s.rx_jitter_and_loss();
        assert_eq!(lost, 0, "the current source's statistics are untouched");
    }

    #[test]
    fn a_burst_cannot_outrun_the_current_source() {
        let mut s = session(PLAIN);
        let t0 = Instant::now();
        feed(&mut s, t0, 7, 1);
        // Ten in sequence within a millisecond: enough packets, too short a time.
        for i in 0..10u16 {
            assert_eq!(feed(&mut s, t0 + Duration::from_micros(u64::from(i) * 100), 8, i), Source::Refused);
        }
        assert_eq!(feed(&mut s, t0 + PTIME, 7, 2), Source::Same);
        assert_eq!(s.remote_ssrc(), Some(7));
    }

    #[test]
    fn after_the_current_source_says_bye_a_new_one_takes_over_at_once() {
        let mut s = session(PLAIN);
        let t0 = Instant::now();
        feed(&mut s, t0, 7, 1);
        let other = RtcpPacket::Goodbye(crate::rtcp::Goodbye { ssrcs: vec![99], reason: None });
        s.on_rtcp(t0, NtpTime(0), &other);
        assert_eq!(feed(&mut s, t0 + PTIME, 8, 40), Source::Refused, "a BYE for another source changes nothing");
        let bye = RtcpPacket::Goodbye(crate::rtcp::Goodbye { ssrcs: vec![7], reason: None });
        s.on_rtcp(t0 + PTIME, NtpTime(0), &bye);
        assert_eq!(feed(&mut s, t0 + PTIME * 2, 9, 70), Source::Changed);
        assert_eq!(feed(&mut s, t0 + PTIME * 3, 10, 5), Source::Refused, "the newcomer is the current source now");
    }
}
