//! Far-end camera control (FECC): H.281 in H.224 frames over RTP (RFC
//! 4573), one [`FeccSession`] per endpoint that negotiated an H.224 stream.
//!
//! Sans-IO like the rest of the crate: datagrams and the time go in,
//! datagrams to send, what the endpoint said, and the next deadline come
//! out. The runtime's `fecc` thread is its shell. Nothing here is on the
//! audio or video path: a camera moves a few times a second at most.
//!
//! What a session does:
//! - announces Confero's H.281 client (a client list, then H.281's extra
//!   capabilities: one camera that pans, tilts, zooms and focuses) at once
//!   and again a few times until the endpoint answers, and asks for the
//!   endpoint's own list; answers the endpoint's CME commands;
//! - learns from the endpoint's client list or extra capabilities whether
//!   its camera can be controlled (`cameraControlAvailable`);
//! - moves the endpoint's camera for the API ([`FeccSession::nudge`]: START,
//!   then STOP after [`NUDGE`]) or as another endpoint's controls say
//!   ([`FeccSession::relay`]);
//! - hands up the H.281 messages the endpoint sends, for the bridge to
//!   relay to the camera the endpoint sees.

pub mod h224;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use h224::{Cme, Frame, H224Error, Move, Moves, H281};

use crate::engine::SrtpKeys;
use crate::rtp::{RtpHeader, RtpPacket};
use crate::srtp::{SrtpContext, SrtpError};

/// How long one API move lasts: START, then STOP this much later. Under
/// H.281's 800 ms timeout, so no CONTINUE is needed, and about what one
/// press of an endpoint's remote control moves.
pub const NUDGE: Duration = Duration::from_millis(500);
/// How often, and how many times, the announcement is repeated until the
/// endpoint says it has H.281 (its first packets may be lost while its path
/// opens; h323plus waits 2 s before its own).
const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);
const ANNOUNCEMENTS: u8 = 5;
/// H.224's RTP clock.
const CLOCK_RATE: u64 = 4800;

/// What the engine needs for one H.224 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeccConfig {
    /// The negotiated H.224 payload type, both ways.
    pub payload_type: u8,
    /// Our SSRC for the stream.
    pub ssrc: u32,
    /// SDES keys for what we receive, when encrypted.
    pub srtp_in: Option<SrtpKeys>,
    /// SDES keys for what we send.
    pub srtp_out: Option<SrtpKeys>,
    /// We may send (the negotiated direction lets us).
    pub sends: bool,
}

/// Why a datagram was not taken.
#[derive(Debug, thiserror::Error)]
pub enum FeccError {
    /// SRTP refused it (authentication, replay).
    #[error(transparent)]
    Srtp(#[from] SrtpError),
    /// Not RTP.
    #[error("not RTP")]
    Malformed,
    /// Another payload type than the negotiated one.
    #[error("payload type {0} is not H.224's")]
    PayloadType(u8),
    /// Not an H.224 frame we take.
    #[error(transparent)]
    H224(#[from] H224Error),
}

/// What the endpoint told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeccInput {
    /// It has an H.281 client: its camera can be controlled. Said once.
    CameraControlAvailable,
    /// Its user works their camera controls (for the camera they see).
    Camera(H281),
}

/// One endpoint's H.224 stream.
#[derive(Debug)]
pub struct FeccSession {
    config: FeccConfig,
    srtp_in: Option<SrtpContext>,
    srtp_out: Option<SrtpContext>,
    sequence: u16,
    origin: Instant,
    last_timestamp: Option<u32>,
    /// It told us it has H.281.
    remote_h281: bool,
    next_announcement: Option<Instant>,
    announcements_left: u8,
    /// An API nudge in progress: its moves and when to stop them.
    stop_at: Option<(Instant, Moves)>,
    transmits: VecDeque<Vec<u8>>,
}

impl FeccSession {
    /// A session for a negotiated stream; the announcement is due at once.
    pub fn new(config: FeccConfig, now: Instant) -> Result<FeccSession, SrtpError> {
        let context =
            |keys: &Option<SrtpKeys>| keys.as_ref().map(|k| SrtpContext::new(k.profile, &k.key, &k.salt)).transpose();
        let (srtp_in, srtp_out) = (context(&config.srtp_in)?, context(&config.srtp_out)?);
        let sequence = (config.ssrc >> 16) as u16;
        Ok(FeccSession {
            config,
            srtp_in,
            srtp_out,
            sequence,
            origin: now,
            last_timestamp: None,
            remote_h281: false,
            next_announcement: Some(now),
            announcements_left: ANNOUNCEMENTS,
            stop_at: None,
            transmits: VecDeque::new(),
        })
    }

    /// Whether the endpoint said it has H.281.
    pub fn camera_control_available(&self) -> bool {
        self.remote_h281
    }

    /// A datagram from the endpoint (RTP; RTCP is the caller's to drop).
    /// Unprotected in place.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &mut Vec<u8>) -> Result<Option<FeccInput>, FeccError> {
        if let Some(srtp) = &mut self.srtp_in {
            srtp.unprotect_rtp(datagram)?;
        }
        let packet = RtpPacket::parse(datagram).map_err(|_| FeccError::Malformed)?;
        if packet.payload_type() != self.config.payload_type {
            return Err(FeccError::PayloadType(packet.payload_type()));
        }
        let frame = Frame::parse(packet.payload())?;
        Ok(match frame {
            Some(Frame::Cme(Cme::ClientListCommand)) => {
                self.send(now, Frame::Cme(Cme::ClientList(vec![h224::H281_CLIENT])));
                None
            }
            Some(Frame::Cme(Cme::ExtraCapabilitiesCommand(h224::H281_CLIENT))) => {
                self.send(now, Frame::Cme(Cme::ExtraCapabilities(h224::H281_CLIENT, h224::H281_CAPABILITIES.to_vec())));
                None
            }
            Some(Frame::Cme(Cme::ClientList(clients))) if clients.contains(&h224::H281_CLIENT) => self.advertised(),
            Some(Frame::Cme(Cme::ExtraCapabilities(h224::H281_CLIENT, _))) => self.advertised(),
            Some(Frame::H281(message)) => Some(FeccInput::Camera(message)),
            _ => None,
        })
    }

    fn advertised(&mut self) -> Option<FeccInput> {
        // Once ours went out, the endpoint's answer ends the repeats.
        if self.announcements_left < ANNOUNCEMENTS {
            self.next_announcement = None;
        }
        (!std::mem::replace(&mut self.remote_h281, true)).then_some(FeccInput::CameraControlAvailable)
    }

    /// Moves the endpoint's camera a step, as `PUT /callLegs/<id>/cameraControl`
    /// asks: START now, STOP after [`NUDGE`]. A nudge replaces one in progress.
    pub fn nudge(&mut self, now: Instant, moves: Moves) {
        if moves.is_empty() {
            return;
        }
        self.send(now, Frame::H281(H281::Start { moves, timeout: 0 }));
        self.stop_at = Some((now + NUDGE, moves));
    }

    /// Sends another endpoint's H.281 message on to this one's camera.
    pub fn relay(&mut self, now: Instant, message: H281) {
        // The controlling endpoint now drives this camera.
        self.stop_at = None;
        self.send(now, Frame::H281(message));
    }

    /// When [`FeccSession::handle_timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        [self.next_announcement, self.stop_at.map(|(at, _)| at)].into_iter().flatten().min()
    }

    /// Sends what is due: the announcement, a nudge's STOP.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((at, moves)) = self.stop_at {
            if now >= at {
                self.stop_at = None;
                // The same moves as the START: h323plus ignores a STOP of none.
                self.send(now, Frame::H281(H281::Stop(moves)));
            }
        }
        if self.next_announcement.is_some_and(|at| now >= at) {
            self.send(now, Frame::Cme(Cme::ClientList(vec![h224::H281_CLIENT])));
            self.send(now, Frame::Cme(Cme::ExtraCapabilities(h224::H281_CLIENT, h224::H281_CAPABILITIES.to_vec())));
            if !self.remote_h281 {
                self.send(now, Frame::Cme(Cme::ClientListCommand));
            }
            self.announcements_left = self.announcements_left.saturating_sub(1);
            let again = self.announcements_left > 0 && !self.remote_h281;
            self.next_announcement = again.then(|| now + ANNOUNCE_EVERY);
        }
    }

    /// The next datagram to send to the endpoint.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// An RTP packet with the frame, protected: the marker on every packet
    /// (as OPAL and h323plus send) and a timestamp that always grows (h323plus
    /// drops a frame with its predecessor's timestamp).
    fn send(&mut self, now: Instant, frame: Frame) {
        if !self.config.sends {
            return;
        }
        let elapsed = now.saturating_duration_since(self.origin);
        let clock = (elapsed.as_millis() as u64 * CLOCK_RATE / 1000) as u32;
        let timestamp = match self.last_timestamp {
            Some(last) if clock <= last => last.wrapping_add(1),
            _ => clock,
        };
        self.last_timestamp = Some(timestamp);
        self.sequence = self.sequence.wrapping_add(1);
        let header = RtpHeader {
            marker: true,
            payload_type: self.config.payload_type,
            sequence_number: self.sequence,
            timestamp,
            ssrc: self.config.ssrc,
            ..RtpHeader::default()
        };
        let mut datagram = Vec::with_capacity(64);
        if header.write_packet(&frame.encode(), &mut datagram).is_err() {
            return;
        }
        if let Some(srtp) = &mut self.srtp_out {
            if srtp.protect_rtp(&mut datagram).is_err() {
                return;
            }
        }
        self.transmits.push_back(datagram);
    }
}

#[cfg(test)]
mod tests;
