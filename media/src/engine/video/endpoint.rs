//! [`VideoEndpoint`]: one endpoint's video stream around its
//! [`RtpSession`]: receiving (SRTP, RTP, the depacketizer, RTCP feedback),
//! taking its frames (decoded only while shown, keyframe and bitrate
//! requests to it), and our reports to it.

use std::time::{Duration, Instant};

use super::rate::{bitrate_request, ReceiverRate};
use super::{VideoConfig, VideoStats, VideoTickSummary};
use crate::engine::session::{RtpSession, Source};
use crate::engine::{EndpointId, EngineError, Flow, Outgoing};
use crate::rtcp::{self, FirEntry, FullIntraRequest, NtpTime, PictureLossIndication, RtcpPacket, Tmmbn};
use crate::rtp::RtpPacket;
use crate::video::codec::{Received, VideoDecoder, VideoDepacketizer};
use crate::video::compose::ViewKey;
use crate::video::frame::I420Frame;
use crate::video::keyframe_request::{KeyframeRequest, KeyframeRequestLimiter};
use crate::video::source_rate::SourceRate;

/// The mean interval between our RTCP reports on a video stream.
const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// One endpoint's video stream: what it sends us (depacketizer, decoder,
/// keyframe and rate requests to it), what it receives (its view, its
/// feedback), around its [`RtpSession`].
pub(super) struct VideoEndpoint {
    pub(super) config: VideoConfig,
    pub(super) rx_muted: bool,
    pub(super) tx_muted: bool,
    /// Its `qualityMain` cap ([`VideoSettings::max_size`]).
    pub(super) quality_cap: (u32, u32),
    /// What it sees has name labels.
    pub(super) labels: bool,
    /// Our RTP session with it: SSRC, sequence, timestamp, SRTP, reports.
    pub(super) session: RtpSession,
    pub(super) depacketizer: VideoDepacketizer,
    /// Made on the first frame a view needs: an endpoint nobody sees costs
    /// no decoder.
    pub(super) decoder: Option<VideoDecoder>,
    /// The newest decoded picture.
    pub(super) picture: Option<I420Frame>,
    /// Frames were skipped (it was out of view) or lost: decode nothing
    /// until the next keyframe.
    pub(super) stale: bool,
    pub(super) keyframe_requests: KeyframeRequestLimiter,
    /// The limit it is asked to keep to while shown small.
    pub(super) source_rate: SourceRate,
    /// The view it received last tick; a change asks for a keyframe.
    pub(super) view: Option<ViewKey>,
    /// It asked for a keyframe (PLI/FIR) since the last tick.
    pub(super) wants_keyframe: bool,
    /// What it can take of the view it is sent, from its feedback.
    pub(super) rate: ReceiverRate,
    /// It moved to another view (or is new): it is sent nothing until that
    /// view's next IDR, since the new encoder's P frames would decode to
    /// garbage on its side. A frozen picture for up to 500 ms is better.
    pub(super) awaiting_keyframe: bool,
    /// Receive-side counters; the send side's are the session's.
    pub(super) stats: VideoStats,
    /// What we sent it lately, when it asks for lost packets by NACK.
    pub(super) retransmit: super::retransmit::RetransmitBuffer,
    /// Packets it asked for, to go with the next frame time's output.
    pub(super) resend: Vec<Vec<u8>>,
}

impl VideoEndpoint {
    /// Takes one video datagram (RTP or RTCP, muxed or not) it sent.
    pub(super) fn receive(&mut self, now: Instant, arrival: NtpTime, packet: &mut Vec<u8>) -> Result<(), EngineError> {
        let e = self;
        if rtcp::is_rtcp(packet) {
            return receive_rtcp(now, arrival, e, packet);
        }
        let wire_len = packet.len();
        if let Err(err) = e.session.unprotect_rtp(packet) {
            // Keys pending: counted by the session.
            e.stats.refused += u64::from(err != EngineError::KeysPending);
            return Err(err);
        }
        let rtp = match RtpPacket::parse(packet) {
            Ok(rtp) => rtp,
            Err(err) => {
                e.stats.refused += 1;
                return Err(err.into());
            }
        };
        if rtp.payload_type() != e.config.payload_type {
            e.stats.refused += 1;
            return Err(EngineError::PayloadType { expected: e.config.payload_type, got: rtp.payload_type() });
        }
        match e.session.on_rtp(now, &rtp) {
            // A new source (a re-INVITE, a restarted camera): start afresh.
            Source::First | Source::Changed => e.depacketizer = VideoDepacketizer::new(e.config.codec),
            Source::Refused => {
                e.stats.refused += 1;
                return Err(EngineError::SsrcRefused(rtp.ssrc()));
            }
            Source::Same => {}
        }
        e.stats.last_received = Some(now);
        if e.depacketizer.push(rtp.sequence_number(), rtp.timestamp(), rtp.marker(), rtp.payload()).is_err() {
            e.stats.refused += 1;
            return Ok(());
        }
        e.stats.packets_in += 1;
        e.stats.bytes_in += wire_len as u64;
        Ok(())
    }

    /// Our SR (or RR) and SDES, if due at `now` or if it is owed a TMMBN
    /// (then at once, in the same compound); `None` if neither.
    pub(super) fn report(&mut self, now: Instant, ntp: NtpTime) -> Result<Option<Vec<u8>>, EngineError> {
        let tmmbn = self.rate.take_tmmbn_due();
        let due = self.session.report_due(now);
        if !due && tmmbn.is_none() {
            return Ok(None);
        }
        if due {
            // 0.75..1.25 of the interval, spread by SSRC; the first within half.
            let interval = RTCP_INTERVAL.mul_f64(0.75 + f64::from(self.session.ssrc() % 500) / 1000.0);
            if self.session.schedule_report(now, interval) && tmmbn.is_none() {
                return Ok(None);
            }
        }
        let sender_ssrc = self.session.ssrc();
        let tmmbn = tmmbn.map(|entry| RtcpPacket::Tmmbn(Tmmbn { sender_ssrc, entries: vec![entry] }));
        let mut bytes = Vec::with_capacity(200);
        Ok(self.session.write_report(now, ntp, tmmbn, &mut bytes)?.then_some(bytes))
    }
}

/// Drains one sender's assembled frames: decodes them if it is shown
/// (`largest`: the share of a 720p picture its largest pane covers), else skips
/// them (and marks the stream stale); asks for a keyframe where the stream
/// is broken or comes back into view, and for a lower bitrate while it is
/// shown small (a higher one when it grows).
pub(super) fn take_frames(
    now: Instant,
    id: EndpointId,
    e: &mut VideoEndpoint,
    largest: Option<f64>,
    out: &mut Vec<Outgoing>,
    summary: &mut VideoTickSummary,
) {
    let visible = largest.is_some() && !e.rx_muted;
    let mut needs_keyframe = false;
    while let Some(assembled) = e.depacketizer.poll() {
        let unit = match assembled {
            Received::Frame(unit) => unit,
            Received::KeyframeNeeded => {
                e.stale = true;
                needs_keyframe = true;
                continue;
            }
        };
        e.stats.frames_in += 1;
        if !visible {
            e.stale = true;
        } else if !e.stale || unit.is_keyframe() {
            let decoder = match &mut e.decoder {
                Some(d) => Some(d),
                None => VideoDecoder::new(e.config.codec).ok().map(|d| e.decoder.insert(d)),
            };
            let picture = e.picture.get_or_insert_with(|| I420Frame::new(2, 2).expect("2×2 is valid"));
            match decoder.map(|d| d.decode(&unit, picture)) {
                Some(Ok(decoded)) => {
                    e.stale = false;
                    summary.decodes += 1;
                    if decoded {
                        e.stats.frames_decoded += 1;
                        e.stats.rx_size = (picture.width(), picture.height());
                    }
                }
                _ => {
                    e.stale = true;
                    needs_keyframe = true;
                }
            }
        }
        e.depacketizer.recycle(unit);
    }
    if visible && e.stale {
        needs_keyframe = true;
    }
    if needs_keyframe && e.config.sends {
        if let (Some(request), Some(media_ssrc)) = (e.keyframe_requests.request(now), e.session.remote_ssrc()) {
            if let Ok(Some(bytes)) = keyframe_request(e, request, media_ssrc) {
                e.stats.keyframe_requests_sent += 1;
                out.push(Outgoing { endpoint: id, flow: Flow::VideoRtcp, bytes });
            }
        }
    }
    if let (true, Some(media_ssrc)) = (e.config.sends, e.session.remote_ssrc()) {
        let share = if visible { largest.unwrap_or(0.0) } else { 0.0 };
        if let Some(limit) = e.source_rate.update(now, share) {
            if let Ok(Some(bytes)) = bitrate_request(&mut e.session, e.source_rate.method(), limit, media_ssrc) {
                e.stats.source_limit = limit;
                out.push(Outgoing { endpoint: id, flow: Flow::VideoRtcp, bytes });
            }
        }
    }
}

/// A PLI or FIR to a sender, in a compound with an RR as RFC 4585 wants;
/// `None` while keys are pending.
fn keyframe_request(
    e: &mut VideoEndpoint,
    request: KeyframeRequest,
    media_ssrc: u32,
) -> Result<Option<Vec<u8>>, EngineError> {
    let sender_ssrc = e.session.ssrc();
    let feedback = match request {
        KeyframeRequest::Pli => RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc, media_ssrc }),
        KeyframeRequest::Fir { sequence } => RtcpPacket::FullIntraRequest(FullIntraRequest {
            sender_ssrc,
            entries: vec![FirEntry { ssrc: media_ssrc, sequence_number: sequence }],
        }),
    };
    e.session.write_feedback(feedback)
}

/// RTCP from an endpoint on its video stream: keyframe requests for what we
/// send it, its SR for our report blocks.
fn receive_rtcp(
    now: Instant,
    arrival: NtpTime,
    e: &mut VideoEndpoint,
    packet: &mut Vec<u8>,
) -> Result<(), EngineError> {
    if let Err(err) = e.session.unprotect_rtcp(packet) {
        e.stats.refused += u64::from(err != EngineError::KeysPending);
        return Err(err);
    }
    for item in rtcp::compound(packet) {
        let Ok(item) = item else {
            e.stats.refused += 1;
            break;
        };
        e.stats.last_received = Some(now);
        // SR/RR: the report block about our stream, for its loss.
        if let Some(block) = e.session.on_rtcp(now, arrival, &item) {
            e.rate.on_loss_report(&block);
        }
        let ssrc = e.session.ssrc();
        match item {
            RtcpPacket::PictureLossIndication(pli) if pli.media_ssrc == ssrc => {
                e.wants_keyframe = true;
                e.stats.keyframe_requests_received += 1;
            }
            RtcpPacket::FullIntraRequest(fir) if fir.entries.iter().any(|f| f.ssrc == ssrc) => {
                e.wants_keyframe = true;
                e.stats.keyframe_requests_received += 1;
            }
            // Lost packets of ours: sent again, as they were (at most a
            // frame's worth per NACK, so a forged one costs little).
            RtcpPacket::Nack(nack) if nack.media_ssrc == ssrc && e.config.nack => {
                for seq in nack.lost.iter().take(64) {
                    if let Some(bytes) = e.retransmit.get(*seq) {
                        e.resend.push(bytes.to_vec());
                        e.stats.retransmitted += 1;
                    }
                }
            }
            // A receiver's estimate of what it can take (it covers the
            // streams it lists; we send it one).
            RtcpPacket::Remb(remb) => e.rate.on_remb(remb.bitrate_bps),
            RtcpPacket::Tmmbr(tmmbr) => {
                if let Some(entry) = tmmbr.entries.iter().find(|t| t.ssrc == ssrc) {
                    e.rate.on_tmmbr(tmmbr.sender_ssrc, entry);
                }
            }
            // The sender took our limit.
            RtcpPacket::Tmmbn(n) => {
                if let Some(entry) = n.entries.iter().find(|t| t.ssrc == ssrc) {
                    e.source_rate.on_tmmbn(entry.bitrate_bps);
                }
            }
            _ => {}
        }
    }
    Ok(())
}
