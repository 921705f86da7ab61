//! Rate control: what bitrate each view is encoded at, from what its
//! receivers report (REMB, TMMBR for our stream, loss in their report
//! blocks), and what each sender is asked to keep to (TMMBR/REMB from its
//! [`SourceRate`](crate::video::source_rate::SourceRate)).
//!
//! Why here and not in the encoder: a view is shared, so its bitrate is the
//! least its receivers can take, and an OpenH264 encoder cannot change its
//! bitrate live: a change is a rebuild, which costs an IDR, so it is held
//! back ([`rebuild_due`]).

use std::time::{Duration, Instant};

use crate::engine::session::RtpSession;
use crate::engine::EngineError;
use crate::rtcp::{Remb, ReportBlock, RtcpPacket, Tmmbr, TmmbrEntry};
use crate::video::h264::H264EncoderConfig;
use crate::video::source_rate::BitrateRequestMethod;

/// The lowest bitrate a view is encoded at, whatever the receivers report.
pub(super) const MIN_BITRATE: u32 = 150_000;
/// A view's encoder is rebuilt for a new bitrate (OpenH264's wrapper has no
/// live change) only when the target moved by more than this fraction, and
/// at most once per [`BITRATE_HOLD`]: each rebuild costs an IDR.
const BITRATE_STEP: f64 = 0.2;
/// See [`BITRATE_STEP`].
const BITRATE_HOLD: Duration = Duration::from_secs(2);

/// What one receiver can take of the view it is sent, from its feedback.
pub(super) struct ReceiverRate {
    /// Its configured bitrate (from its SDP and the call leg's settings).
    configured: u32,
    /// Its newest REMB estimate, bits per second.
    remb: Option<u32>,
    /// Its newest TMMBR limit for our stream, bits per second.
    tmmbr: Option<u32>,
    /// The TMMBN owed for its last TMMBR (RFC 5104 4.2.2: the bounding set,
    /// its own request, since it is the only receiver of our stream to it).
    tmmbn_due: Option<TmmbrEntry>,
    /// What its loss reports allow: lowered by the loss it reports, raised
    /// again slowly while it reports little.
    loss_limit: Option<u32>,
}

impl ReceiverRate {
    /// A receiver configured for `configured` bits per second, with no
    /// feedback yet.
    pub(super) fn new(configured: u32) -> Self {
        Self { configured, remb: None, tmmbr: None, tmmbn_due: None, loss_limit: None }
    }

    /// The most it can take: the least of its configured bitrate and what
    /// its feedback says.
    pub(super) fn limit(&self) -> u32 {
        [Some(self.configured), self.remb, self.tmmbr, self.loss_limit]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.configured)
    }

    /// A receiver's estimate of what it can take (it covers the streams it
    /// lists; we send it one).
    pub(super) fn on_remb(&mut self, bitrate_bps: u64) {
        self.remb = Some(bitrate_bps.min(u64::from(u32::MAX)) as u32);
    }

    /// Its TMMBR `entry` for our stream, from `requester`: a limit, and a
    /// TMMBN owed at once.
    pub(super) fn on_tmmbr(&mut self, requester: u32, entry: &TmmbrEntry) {
        self.tmmbr = Some(entry.bitrate_bps.min(u64::from(u32::MAX)) as u32);
        self.tmmbn_due = Some(TmmbrEntry { ssrc: requester, ..*entry });
    }

    /// The TMMBN owed, if any; it is sent once.
    pub(super) fn take_tmmbn_due(&mut self) -> Option<TmmbrEntry> {
        self.tmmbn_due.take()
    }

    /// A report block about our stream: more than 10 % lost cuts what the
    /// receiver is sent by half the loss; under 2 % lets it grow 5 % a report
    /// back towards the configured bitrate (reports come every second or few).
    pub(super) fn on_loss_report(&mut self, block: &ReportBlock) {
        let loss = f64::from(block.fraction_lost) / 256.0;
        let current = self.loss_limit.unwrap_or(self.configured);
        self.loss_limit = if loss > 0.10 {
            Some(((f64::from(current) * (1.0 - loss / 2.0)) as u32).max(MIN_BITRATE))
        } else if loss < 0.02 {
            let raised = (f64::from(current) * 1.05) as u32;
            (raised < self.configured).then_some(raised)
        } else {
            Some(current)
        };
    }
}

/// A view's bitrate: what its most limited receiver can take (`limits`),
/// never under [`MIN_BITRATE`].
pub(super) fn view_target(limits: impl Iterator<Item = u32>) -> u32 {
    limits.min().unwrap_or(H264EncoderConfig::HD_720P30.bitrate).max(MIN_BITRATE)
}

/// Whether a view's encoder, at `current` and built at `built`, is to be
/// rebuilt for `target` now: only for a move of over [`BITRATE_STEP`], and
/// not within [`BITRATE_HOLD`] of the last build.
pub(super) fn rebuild_due(current: u32, target: u32, built: Instant, now: Instant) -> bool {
    let moved = (f64::from(target) - f64::from(current)).abs() > BITRATE_STEP * f64::from(current);
    moved && now.saturating_duration_since(built) >= BITRATE_HOLD
}

/// A TMMBR (or REMB, by `method`) asking the sender of `media_ssrc` to keep
/// under `limit` bits per second, in a compound led by a receiver report;
/// `None` while keys are pending.
pub(super) fn bitrate_request(
    session: &mut RtpSession,
    method: BitrateRequestMethod,
    limit: u32,
    media_ssrc: u32,
) -> Result<Option<Vec<u8>>, EngineError> {
    let ssrc = session.ssrc();
    let request = match method {
        BitrateRequestMethod::Remb => {
            RtcpPacket::Remb(Remb { sender_ssrc: ssrc, bitrate_bps: u64::from(limit), ssrcs: vec![media_ssrc] })
        }
        _ => RtcpPacket::Tmmbr(Tmmbr {
            sender_ssrc: ssrc,
            // IPv4 + UDP + RTP headers: what RFC 5104 calls the overhead.
            entries: vec![TmmbrEntry { ssrc: media_ssrc, bitrate_bps: u64::from(limit), overhead: 40 }],
        }),
    };
    session.write_feedback(request)
}
