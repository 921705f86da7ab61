//! IVRs (`/ivrs`): a SIP caller dials an IVR's URI, is answered into a
//! conference of its own that plays "enter the meeting ID", types a space's
//! or access method's `callId` and `#`, and joins that meeting — then its
//! passcode, if it has one, as any caller's. Three IDs that name nothing end
//! the call.
//!
//! Joining moves the caller's media to the meeting's conference, which may
//! live on another media worker (another address), so the bridge sends a
//! re-INVITE with its offer there; the answer connects the leg as a
//! dial-out's answer does ([`Bridge::moved`]).

use std::time::Instant;

use confero_api::bridge::NewCall;
use confero_sdp::SessionDescription;
use confero_sip::ua::IncomingCall;
use confero_store::Object;
use uuid::Uuid;

use super::leg::{IvrStage, Signalling};
use super::settings::{LegPlace, ProfileChain};
use super::Bridge;
use crate::dialplan::{self, Destination};
use crate::sip::SipCommand;

/// Wrong meeting IDs before the IVR hangs up.
const MAX_FAILURES: u8 = 3;
/// Keys kept of a meeting ID being typed.
const MAX_KEYS: usize = 32;

impl Bridge {
    /// A SIP call to an IVR's URI: answered into a conference of its own,
    /// asked for a meeting ID.
    pub(super) fn incoming_ivr(&mut self, now: Instant, id: Uuid, ic: IncomingCall, ivr: Object) {
        let reject = |me: &mut Bridge, code: u16| me.sip(SipCommand::Reject { leg: id, code });
        // The IVR answers with media at once; a late offer it does not take.
        let Some(offer) = ic.offer.as_deref() else { return reject(self, 488) };
        let Ok(offer) = SessionDescription::parse(offer) else { return reject(self, 488) };
        let new = NewCall { name: format!("IVR {}", ivr.get("uri").unwrap_or_default()), ..NewCall::default() };
        let Ok(call) = self.make_call(now, new, true, true) else { return reject(self, 503) };
        let Some(conference) = self.conference_of(call) else { return reject(self, 503) };
        let profiles = ProfileChain::resolve(&*self.store, LegPlace::default());
        let policy = profiles.media_encryption();
        let session = (u64::from(self.rng.next_u32()), 1);
        let answered = match self.answer_offer(conference, &offer, session, policy) {
            Ok(a) => a,
            Err(code) => {
                reject(self, code);
                return self.end_if_empty(now, call);
            }
        };
        let sip = super::leg::SipLeg::new(policy, session.0);
        let mut leg = self.incoming_leg(now, id, &ic, call, sip, profiles, None);
        let prompt = Some(self.meeting_id_prompt(&ivr));
        leg.ivr = Some(IvrStage { ivr, entered: String::new(), failures: 0, moving: false });
        match self.admit_answered(now, leg, answered, prompt, ic.source.addr.ip()) {
            Ok(()) => tracing::info!("SIP call to an IVR: leg {id} asked for a meeting ID"),
            Err(e) => tracing::warn!("SIP call to an IVR: media: {e}"),
        }
    }

    /// A key typed at the IVR: `#` ends a meeting ID.
    pub(super) fn ivr_digit(&mut self, now: Instant, id: Uuid, key: char) {
        let Some(stage) = self.leg_mut(id).and_then(|l| l.ivr.as_mut()) else { return };
        if stage.moving {
            return;
        }
        if key != '#' {
            if stage.entered.len() < MAX_KEYS {
                stage.entered.push(key);
            }
            return;
        }
        let entered = std::mem::take(&mut stage.entered);
        let ivr = stage.ivr.clone();
        match dialplan::resolve_meeting_id(&*self.store, &ivr, &entered) {
            Some(destination) if destination.admits_non_members() => self.ivr_join(now, id, destination),
            _ => {
                let Some(stage) = self.leg_mut(id).and_then(|l| l.ivr.as_mut()) else { return };
                stage.failures += 1;
                let failures = stage.failures;
                tracing::info!("call leg {id}: IVR: no meeting {entered:?} ({failures} of {MAX_FAILURES})");
                if failures >= MAX_FAILURES {
                    self.end_leg(now, id, "localTeardown");
                } else if let Some(e) = self.leg(id).and_then(|l| l.endpoint) {
                    let _ = self.media.set_prompt(e, Some(self.wrong_meeting_id_prompt(&ivr, usize::from(failures))));
                }
            }
        }
    }

    /// The meeting was found: the leg joins its call (in the passcode lobby
    /// if it has one) and its media moves there by our re-INVITE.
    fn ivr_join(&mut self, now: Instant, id: Uuid, destination: Destination) {
        let (profiles, lobby) = self.profiles_at(&destination);
        let Ok(call) = self.call_with_room(now, &destination.space) else {
            return self.end_leg(now, id, "callCapacityExceeded").unwrap_or(());
        };
        let Some(conference) = self.conference_of(call) else { return };
        let Some(leg) = self.leg_mut(id) else { return };
        let Signalling::Sip(sip) = &mut leg.signalling else { return };
        sip.session.1 += 1;
        let (policy, session) = (sip.policy, sip.session);
        let Some(ours) = self.our_offer(conference, policy, session) else {
            self.end_leg(now, id, "mediaNegotiationFailure");
            return self.end_if_empty(now, call);
        };
        let Some(leg) = self.leg_mut(id) else { return };
        let ivr_call = std::mem::replace(&mut leg.live.call, call);
        leg.profiles = profiles;
        leg.resolve_settings();
        leg.lobby = lobby;
        if let Some(stage) = leg.ivr.as_mut() {
            stage.moving = true;
        }
        let Signalling::Sip(sip) = &mut leg.signalling else { return };
        let body = sip.offered(ours);
        tracing::info!("call leg {id}: IVR: joining {}", destination.space.get("name").unwrap_or_default());
        self.sip(SipCommand::Reinvite { leg: id, offer: body });
        // The IVR's own conference goes with its only leg gone.
        self.end_if_empty(now, ivr_call);
    }

    /// Our re-INVITE moving an IVR caller was answered: its media connects
    /// in the meeting as a dial-out's does.
    pub(super) fn moved(&mut self, now: Instant, id: Uuid, sdp: Option<Vec<u8>>) {
        let Some(leg) = self.leg_mut(id) else { return };
        if !leg.ivr.as_ref().is_some_and(|s| s.moving) {
            return;
        }
        leg.ivr = None;
        self.answered(now, id, sdp);
    }

    /// The caller refused our re-INVITE: it cannot reach its meeting.
    pub(super) fn move_failed(&mut self, now: Instant, id: Uuid, code: u16) {
        if self.leg(id).is_some_and(|l| l.ivr.as_ref().is_some_and(|s| s.moving)) {
            tracing::info!("call leg {id}: IVR: the move to the meeting was refused ({code})");
            self.end_leg(now, id, "mediaNegotiationFailure");
        }
    }
}
