//! Activation: guests wait for their host (CMS's `needsActivation`).
//!
//! A leg whose settings say `needsActivation=true` is a guest: it enters a
//! call *waiting*, hearing "waiting for your host" (a call branding
//! profile's `waiting_for_host.wav`, else soft tones) with its own audio and
//! video kept out of the conference, until an *activator* (a leg with
//! `needsActivation` false, the default) is in the call. A locked call
//! (`locked=true`, or the DTMF `lockCall`) keeps new guests waiting even
//! then; guests already in stay, and unlocking lets the waiting ones in.
//! When the last activator leaves, each guest does what its
//! `deactivationMode` says, `deactivationModeTime` seconds later (0: at
//! once) unless an activator is back by then: `deactivate` (the default)
//! waits again, `disconnect` is hung up (`callDeactivated`),
//! `remainActivated` stays. The delay runs on the bridge's sans-IO timer
//! ([`Bridge::next_timeout`], [`Bridge::handle_timeout`]).
//!
//! One rule, [`Bridge::review_activation`], is applied to a call whenever
//! something it depends on changes: a leg enters or leaves, a leg's
//! settings change, the call is locked or unlocked.

use std::time::{Duration, Instant};

use confero_media::engine::Prompt;
use uuid::Uuid;

use super::settings::DeactivationMode;
use super::Bridge;

/// Where a leg stands with activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Activation {
    /// Not in the call yet (ringing, in the passcode lobby, at an IVR).
    #[default]
    Outside,
    /// A guest waiting for an activator.
    Waiting,
    /// In the conference.
    Active,
}

/// The waiting prompt a call branding location may hold.
pub const WAITING_PROMPT: &str = "waiting_for_host.wav";

impl Bridge {
    /// Leg `id` enters its call (connected, past any passcode): in, or
    /// waiting for an activator. A leg already waiting (its media was
    /// attached again) gets its prompt again; one already in stays in.
    pub(super) fn enter_call(&mut self, now: Instant, id: Uuid) {
        let Some(leg) = self.leg(id) else { return };
        if leg.lobby.is_some() || leg.ivr.is_some() {
            return;
        }
        let call = leg.live.call;
        match leg.activation {
            Activation::Active => {}
            Activation::Waiting => self.start_waiting(id),
            Activation::Outside => {
                let guest = leg.settings.needs_activation;
                if guest && (self.call_locked(call) || !self.has_activator(call)) {
                    self.start_waiting(id);
                } else {
                    if let Some(leg) = self.leg_mut(id) {
                        leg.activation = Activation::Active;
                    }
                    // Out of any passcode prompt, into the conference.
                    self.stop_waiting(id);
                }
                self.review_activation(now, call);
            }
        }
    }

    /// The rule: while an activator is in and the call is not locked,
    /// waiting guests go in; while none is, guests who are in do what their
    /// `deactivationMode` says.
    pub(super) fn review_activation(&mut self, now: Instant, call: Uuid) {
        let in_call = |b: &Bridge, state: Activation| -> Vec<(Uuid, bool, DeactivationMode, Duration)> {
            b.legs
                .iter()
                .filter(|l| l.live.call == call && l.activation == state)
                .map(|l| {
                    let s = &l.settings;
                    (l.live.id, s.needs_activation && !l.admitted, s.deactivation_mode, s.deactivation_time)
                })
                .collect()
        };
        if self.has_activator(call) {
            if let Some(c) = self.call_mut(call) {
                c.no_activator_since = None;
            }
            if self.call_locked(call) {
                return;
            }
            for (id, ..) in in_call(self, Activation::Waiting) {
                tracing::info!("call leg {id}: activated (an activator is in the call)");
                if let Some(leg) = self.leg_mut(id) {
                    leg.activation = Activation::Active;
                }
                self.stop_waiting(id);
            }
            return;
        }
        let Some(c) = self.call_mut(call) else { return };
        let since = *c.no_activator_since.get_or_insert(now);
        let guests = in_call(self, Activation::Active).into_iter().filter(|(_, guest, ..)| *guest);
        for (id, _, mode, _) in guests.filter(|(.., after)| now >= since + *after) {
            match mode {
                DeactivationMode::Deactivate => {
                    tracing::info!("call leg {id}: deactivated (no activator in the call); waiting again");
                    self.start_waiting(id);
                }
                DeactivationMode::Disconnect => {
                    tracing::info!("call leg {id}: deactivated (no activator in the call); disconnected");
                    self.end_leg(now, id, "callDeactivated");
                }
                DeactivationMode::RemainActivated => {}
            }
        }
    }

    /// The API's `deactivated`: `false` admits a waiting guest (it then
    /// stays in until an API client says otherwise), `true` sends a leg in
    /// the call back to wait.
    pub(super) fn set_deactivated(&mut self, id: Uuid, deactivated: bool) {
        let Some(leg) = self.leg_mut(id) else { return };
        match (leg.activation, deactivated) {
            (Activation::Waiting, false) => {
                tracing::info!("call leg {id}: admitted by the API");
                leg.activation = Activation::Active;
                leg.admitted = true;
                self.stop_waiting(id);
            }
            (Activation::Active, true) => {
                tracing::info!("call leg {id}: sent back to wait by the API");
                leg.admitted = false;
                self.start_waiting(id);
            }
            _ => {}
        }
    }

    /// When a guest's `deactivationModeTime` runs out next, if one is
    /// running.
    pub(super) fn deactivation_due(&self) -> Option<Instant> {
        self.calls
            .iter()
            .filter_map(|c| Some((c.live.id, c.no_activator_since?)))
            .flat_map(|(call, since)| {
                self.legs
                    .iter()
                    .filter(move |l| l.live.call == call && l.activation == Activation::Active && !l.admitted)
                    .filter(|l| {
                        l.settings.needs_activation && l.settings.deactivation_mode != DeactivationMode::RemainActivated
                    })
                    .map(move |l| since + l.settings.deactivation_time)
            })
            .min()
    }

    /// Time passed: guests whose `deactivationModeTime` ran out act.
    pub(super) fn handle_deactivation_timeout(&mut self, now: Instant) {
        let due: Vec<Uuid> = self.calls.iter().filter(|c| c.no_activator_since.is_some()).map(|c| c.live.id).collect();
        for call in due {
            self.review_activation(now, call);
        }
    }

    fn has_activator(&self, call: Uuid) -> bool {
        self.legs
            .iter()
            .any(|l| l.live.call == call && l.activation == Activation::Active && !l.settings.needs_activation)
    }

    fn call_locked(&self, call: Uuid) -> bool {
        self.calls
            .iter()
            .find(|c| c.live.id == call)
            .is_some_and(|c| c.live.config.get("locked").map(String::as_str) == Some("true"))
    }

    /// Keeps leg `id` out of the conference, hearing the waiting prompt.
    fn start_waiting(&mut self, id: Uuid) {
        let Some(leg) = self.leg_mut(id) else { return };
        leg.activation = Activation::Waiting;
        leg.live.deactivated = true;
        let (endpoint, call) = (leg.endpoint, leg.live.call);
        if let Some(e) = endpoint {
            let prompt = self.branded_call_prompt(self.space_of_call(call), WAITING_PROMPT, Prompt::waiting_for_host());
            let _ = self.media.set_prompt(e, Some(prompt));
        }
    }

    /// Lets leg `id` into the conference (ending any prompt), with the
    /// mutes its settings say.
    fn stop_waiting(&mut self, id: Uuid) {
        let Some(leg) = self.leg_mut(id) else { return };
        leg.live.deactivated = false;
        if let Some(e) = leg.endpoint {
            let _ = self.media.set_prompt(e, None);
        }
        self.apply_media_settings(id);
    }
}
