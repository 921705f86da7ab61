//! One call's dialog state (RFC 3261 §12): identity, sequence numbers, route
//! set and remote target, plus what the call is waiting for (a 2xx's ACK, a
//! reliable provisional's PRACK, a session refresh).

use std::time::{Duration, Instant};

use crate::message::{Message, Refresher};
use crate::transaction::{Peer, TransactionKey};

/// Which side of the INVITE we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// We received the INVITE.
    Uas,
    /// We sent it (dial-out).
    Uac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallState {
    /// UAS: INVITE received, nothing but 100 sent. UAC: INVITE sent, nothing heard.
    Incoming,
    /// A provisional response with a tag was sent or received.
    Early,
    /// UAS: 2xx sent, waiting for its ACK.
    WaitingAck,
    /// The dialog is up.
    Confirmed,
}

/// What a client transaction was for, to act on its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Invite,
    Reinvite,
    Update,
    Bye,
    Cancel,
    Prack,
    /// A DTMF digit we sent by INFO.
    Info,
}

/// An offer/answer exchange in progress inside the dialog.
#[derive(Debug)]
pub(super) enum Pending {
    /// The peer's re-INVITE or UPDATE, waiting for the bridge's answer.
    Incoming { key: TransactionKey, request: Message },
    /// Our re-INVITE (hold/resume), waiting for the peer's answer.
    Outgoing,
    /// Our session refresh.
    Refresh,
}

/// A response the dialog layer retransmits itself: a 2xx to INVITE until its
/// ACK (RFC 3261 §13.3.1.4), or a reliable provisional until its PRACK
/// (RFC 3262 §3): T1 doubling up to T2, giving up at 64·T1.
#[derive(Debug)]
pub(super) struct Retransmit {
    pub bytes: Vec<u8>,
    pub next_at: Instant,
    pub interval: Duration,
    pub give_up_at: Instant,
    /// The INVITE's CSeq number, which its ACK carries.
    pub cseq: u32,
    /// Set for a reliable provisional.
    pub rseq: Option<u32>,
}

impl Retransmit {
    pub fn new(now: Instant, t1: Duration, bytes: Vec<u8>, cseq: u32, rseq: Option<u32>) -> Retransmit {
        Retransmit { bytes, next_at: now + t1, interval: t1, give_up_at: now + t1 * 64, cseq, rseq }
    }
}

/// The negotiated session interval (RFC 4028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Session {
    /// Seconds.
    pub interval: u32,
    /// True when we are the refresher.
    pub we_refresh: bool,
}

/// When the session needs attention next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionTimer {
    pub at: Instant,
    /// True: refresh at `at`; false: the session expires at `at` (send BYE).
    pub refresh: bool,
}

#[derive(Debug)]
pub(super) struct Call {
    /// Our Contact in this dialog when it is not our own address (an
    /// outbound rule's `localContactDomain`).
    pub local_contact: Option<String>,
    pub role: Role,
    pub state: CallState,
    /// Where in-dialog requests go: the INVITE's source (symmetric signalling), or our dial destination.
    pub peer: Peer,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our From/To value without the tag.
    pub local_header: String,
    /// The peer's From/To value (as received, tag included for UAS).
    pub remote_header: String,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    pub remote_target: String,
    pub route_set: Vec<String>,
    /// The INVITE (received as UAS, sent as UAC), for responses, CANCEL and ACK.
    pub invite: Option<Message>,
    pub invite_key: Option<TransactionKey>,
    /// The caller requires 100rel: our 18x go reliably.
    pub reliable_provisional: bool,
    pub rseq: u32,
    /// A late offer with 100rel: our offer went in a reliable 183 and its
    /// answer comes in the PRACK, after which our 200 goes (RFC 3262 §5).
    pub answer_in_prack: bool,
    pub retransmit: Option<Retransmit>,
    pub session: Option<Session>,
    pub session_timer: Option<SessionTimer>,
    pub peer_allows_update: bool,
    pub pending: Option<Pending>,
    /// Our current SDP, re-sent unchanged in a refresh re-INVITE.
    pub local_sdp: Option<Vec<u8>>,
    /// The bridge hung up before the call was answered.
    pub cancelled: bool,
    /// After our CANCEL, when to stop waiting for the INVITE's final response (64·T1).
    pub cancel_deadline: Option<Instant>,
    /// The last ACK we sent for a 2xx, by CSeq, re-sent when the 2xx repeats.
    pub ack: Option<(u32, Message)>,
    /// DTMF to send by INFO, one digit per transaction (`,`: a pause).
    pub dtmf_out: DtmfQueue,
}

/// Digits going out by INFO: one INFO at a time, the next 100 ms after the
/// previous one's final response, a `,` a one-second pause; the same
/// pacing as RFC 4733 events get.
#[derive(Debug, Default)]
pub(super) struct DtmfQueue {
    pub keys: std::collections::VecDeque<char>,
    /// When the next key may go; `None` while an INFO is in flight or the
    /// queue is empty.
    pub next_at: Option<Instant>,
}

impl Call {
    /// Session-Expires (and Require: timer) for a 2xx in a transaction where
    /// we are the UAS.
    pub fn add_session_headers(&self, response: &mut Message, peer_supports_timer: bool) {
        let Some(session) = self.session else { return };
        let refresher = if session.we_refresh { "uas" } else { "uac" };
        response.push("Session-Expires", format!("{};refresher={refresher}", session.interval));
        if peer_supports_timer {
            response.push("Require", "timer");
        }
    }

    /// Takes the session interval from a 2xx to our INVITE, re-INVITE or
    /// UPDATE (we were its UAC, so "uac" is us). Without Session-Expires the
    /// peer runs no timer: an initial INVITE then has none, a refresh keeps the one it has.
    pub fn adopt_session_from_response(&mut self, response: &Message, min_se: u32) {
        if let Some(se) = response.session_expires() {
            self.session = Some(Session {
                interval: se.delta.max(min_se),
                we_refresh: se.refresher.unwrap_or(Refresher::Uac) == Refresher::Uac,
            });
        }
    }

    /// Starts the session timer over after a successful (re)negotiation:
    /// the refresher acts at half the interval (RFC 4028 §10); the other side
    /// gives up a little before the interval ends (§10: minus min(32 s, interval/3)).
    pub fn restart_session_timer(&mut self, now: Instant) {
        self.session_timer = self.session.map(|session| {
            let interval = u64::from(session.interval);
            if session.we_refresh {
                SessionTimer { at: now + Duration::from_secs(interval / 2), refresh: true }
            } else {
                SessionTimer { at: now + Duration::from_secs(interval - (interval / 3).min(32)), refresh: false }
            }
        });
    }
}
