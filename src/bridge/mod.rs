//! The call bridge: live calls, call legs and participants, where control
//! meets media.
//!
//! [`Bridge`] is the core, and it is sans-IO: every input carries the time
//! (`now`), media goes through the [`MediaPort`] it is given, and what it
//! wants done elsewhere — a SIP command, a CDR, a DNS lookup — comes out of
//! [`Bridge::poll_output`]. That is what lets `tests/` drive it with SIP user
//! agents on the other side and a fake media engine, in virtual time.
//! [`CallBridge`] (`handle.rs`) is its thin shell: a mutex around it, the
//! API's [`BridgeHandle`](confero_api::bridge::BridgeHandle), and the
//! event loop that feeds it SIP and media events.
//!
//! A leg is one shape whatever carries it (`leg.rs`); the code that knows a
//! kind of signalling is in its own module (`sip_legs.rs`). Every leg comes
//! in through [`Bridge::admit`], gets media through [`Bridge::connect`], and
//! goes through [`Bridge::end_leg`] (which asks its signalling to hang up)
//! or [`Bridge::drop_leg`] (when its signalling already ended).

mod activation;
pub mod branding;
mod cdr;
mod compatibility;
mod dtmf;
mod fecc;
mod handle;
mod ivr;
mod leg;
mod limits;
mod media;
mod meters;
mod settings;
mod sip_legs;
#[cfg(test)]
mod tests;
mod web_legs;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confero_api::bridge::{
    BridgeCounters, BridgeError, Direction, LegState, LiveCall, LiveCallLeg, LiveParticipant, NewCall,
};
use confero_media::engine::{EndpointId, VideoSettings};
use confero_media::runtime::{ConferenceId, EndpointSpec, MediaEvent};
use confero_media::video::layout::{LayoutTemplate, TemplateLayout, ViewLayout};
use confero_sip::resolve::Hop;
use confero_sip::transaction::Peer;
use confero_store::layout_template::{TemplateSpec, LAYOUT_TEMPLATES};
use confero_store::schema::Change;
use confero_store::Store;
use rand::RngCore;
use uuid::Uuid;

pub use cdr::{CdrRecord, LegKind};
pub use handle::CallBridge;
pub use media::MediaPort;
pub use settings::{LegPlace, LegSettings, ProfileChain};

use crate::sip::{SipCommand, SipEvent};
use leg::{Call, Leg, Signalling};

/// Wrong passcodes before the bridge hangs up.
const MAX_PASSCODE_FAILURES: u8 = 3;
/// Digits kept of a passcode being typed.
const MAX_PASSCODE_DIGITS: usize = 32;

/// How the bridge is set up.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Whether offered video is answered (`CONFERO_VIDEO`).
    pub video: bool,
    /// Our SIP address, for From and Contact of calls we make; `None`: SIP
    /// is not running and dial-outs fail.
    pub sip_local: Option<SocketAddr>,
    /// Recorded prompts fetched from branding profiles' locations.
    pub branding: Arc<branding::Branding>,
}

/// A dial-out's next hop to locate (RFC 3263: NAPTR, SRV, then A/AAAA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The leg that waits for it.
    pub leg: Uuid,
    /// The host name, port and allowed transports.
    pub hop: Hop,
}

/// What the bridge wants done outside itself.
#[derive(Debug, Clone)]
pub enum Output {
    /// A command for a SIP leg's signalling.
    Sip(SipCommand),
    /// A call detail record to deliver.
    Cdr(CdrRecord),
    /// A DNS lookup; answer with [`Bridge::handle_lookup`].
    Lookup(Lookup),
}

/// The live side of the bridge; see the module docs.
pub struct Bridge {
    calls: Vec<Call>,
    legs: Vec<Leg>,
    counters: BridgeCounters,
    by_endpoint: HashMap<EndpointId, Uuid>,
    store: Arc<dyn Store>,
    media: Arc<dyn MediaPort>,
    config: BridgeConfig,
    /// Ids, SDP session ids, SRTP keys (seeded in tests).
    rng: Box<dyn RngCore + Send>,
    outputs: VecDeque<Output>,
    /// Shutting down: no new calls or legs.
    closing: bool,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("calls", &self.calls.len()).field("legs", &self.legs.len()).finish()
    }
}

impl Bridge {
    /// A bridge over the store (dial plans, spaces, profiles) and a media
    /// engine; `rng` makes every id and key it needs.
    pub fn new(
        store: Arc<dyn Store>,
        media: Arc<dyn MediaPort>,
        config: BridgeConfig,
        rng: Box<dyn RngCore + Send>,
    ) -> Bridge {
        Bridge {
            calls: Vec::new(),
            legs: Vec::new(),
            counters: BridgeCounters::default(),
            by_endpoint: HashMap::new(),
            store,
            media,
            config,
            rng,
            outputs: VecDeque::new(),
            closing: false,
        }
    }

    /// The next thing to do outside the bridge.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A new random (version 4) id.
    fn new_id(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    fn cdr(&mut self, record: CdrRecord) {
        self.outputs.push_back(Output::Cdr(record));
    }

    fn leg(&self, id: Uuid) -> Option<&Leg> {
        self.legs.iter().find(|l| l.live.id == id)
    }

    fn leg_mut(&mut self, id: Uuid) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.live.id == id)
    }

    fn call_mut(&mut self, id: Uuid) -> Option<&mut Call> {
        self.calls.iter_mut().find(|c| c.live.id == id)
    }

    fn conference_of(&self, call: Uuid) -> Option<ConferenceId> {
        self.calls.iter().find(|c| c.live.id == call).map(|c| c.conference)
    }

    /// The space whose call `call` is, if any.
    fn space_of_call(&self, call: Uuid) -> Option<Uuid> {
        self.calls.iter().find(|c| c.live.id == call).and_then(|c| c.live.co_space)
    }

    fn count_legs(&self, call: Uuid) -> usize {
        self.legs.iter().filter(|l| l.live.call == call).count()
    }

    // ---- calls ------------------------------------------------------------

    fn new_call(&mut self, now: Instant, new: NewCall, ends_when_empty: bool) -> Result<Uuid, BridgeError> {
        self.make_call(now, new, ends_when_empty, false)
    }

    /// A call; a `hidden` one (an IVR's) is not shown and writes no CDRs.
    fn make_call(
        &mut self,
        now: Instant,
        new: NewCall,
        ends_when_empty: bool,
        hidden: bool,
    ) -> Result<Uuid, BridgeError> {
        if self.closing {
            return Err(BridgeError::Overloaded);
        }
        let conference = self.media.create_conference().map_err(|_| BridgeError::Overloaded)?;
        let mut config = BTreeMap::new();
        apply(&mut config, &new.config);
        let (id, call_correlator) = (self.new_id(), self.new_id());
        let call = Call {
            live: LiveCall {
                id,
                name: new.name,
                co_space: new.co_space,
                call_correlator,
                tenant: new.tenant,
                owner_name: new.owner_name,
                duration: Duration::ZERO,
                num_call_legs: 0,
                max_call_legs: 0,
                num_participants_local: 0,
                config,
            },
            started: now,
            cdr_tag: new.cdr_tag,
            legs_completed: 0,
            conference,
            ends_when_empty,
            hidden,
            no_activator_since: None,
            speakers: Vec::new(),
        };
        if hidden {
            self.calls.push(call);
            return Ok(id);
        }
        self.cdr(CdrRecord::CallStart {
            call: id,
            name: call.live.name.clone(),
            owner_name: call.live.owner_name.clone(),
            co_space: call.live.co_space,
            call_correlator,
            cdr_tag: call.cdr_tag.clone(),
        });
        self.calls.push(call);
        Ok(id)
    }

    fn remove_call(&mut self, now: Instant, id: Uuid) {
        let Some(pos) = self.calls.iter().position(|c| c.live.id == id) else { return };
        let call = self.calls.remove(pos);
        let _ = self.media.end_conference(call.conference);
        if call.hidden {
            return;
        }
        self.cdr(CdrRecord::CallEnd {
            call: id,
            call_legs_completed: call.legs_completed,
            call_legs_max_active: call.live.max_call_legs,
            duration: now.saturating_duration_since(call.started),
        });
    }

    /// A call made by dialling in ends when it has no legs left.
    fn end_if_empty(&mut self, now: Instant, call: Uuid) {
        let auto = self.calls.iter().any(|c| c.live.id == call && c.ends_when_empty);
        if auto && self.count_legs(call) == 0 {
            self.remove_call(now, call);
        }
    }

    // ---- the life of a leg ---------------------------------------------------

    /// A new leg's live view, in state initial.
    fn new_live_leg(&mut self, call: Uuid, direction: Direction, name: String, remote_party: String) -> LiveCallLeg {
        LiveCallLeg {
            id: Uuid::nil(),
            call,
            participant: self.new_id(),
            name,
            original_remote_party: remote_party.clone(),
            remote_party,
            direction,
            state: LegState::Initial,
            duration: Duration::ZERO,
            encrypted_media: false,
            cipher_suite: None,
            sip_call_id: None,
            config: BTreeMap::new(),
            rx_audio: None,
            tx_audio: None,
            rx_video: None,
            tx_video: None,
            layout: None,
            refusals: None,
            deactivated: false,
            camera_control_available: false,
        }
    }

    /// Adds a leg to its call: its callLegStart CDR, the counters.
    fn admit(&mut self, mut leg: Leg) {
        // A call's `joinAudioMuteOverride` (set by the API or a DTMF
        // command) decides how a new leg joins, unless the leg says itself.
        let join_muted = self.calls.iter().find(|c| c.live.id == leg.live.call);
        let join_muted = join_muted.and_then(|c| c.live.config.get("joinAudioMuteOverride").cloned());
        if let Some(muted) = join_muted.filter(|_| !leg.live.config.contains_key("rxAudioMute")) {
            leg.live.config.insert("rxAudioMute", muted);
            leg.resolve_settings();
        }
        self.cdr(CdrRecord::CallLegStart {
            leg: leg.live.id,
            call: leg.live.call,
            display_name: leg.live.name.clone(),
            remote_party: leg.live.remote_party.clone(),
            direction: leg.live.direction,
            kind: leg.kind(),
        });
        let legs = 1 + self.count_legs(leg.live.call);
        if let Some(c) = self.call_mut(leg.live.call) {
            c.live.max_call_legs = c.live.max_call_legs.max(legs);
        }
        if let Some(e) = leg.endpoint {
            self.by_endpoint.insert(e, leg.live.id);
        }
        self.legs.push(leg);
        self.counters.call_legs_active += 1;
        self.counters.call_legs_max_active = self.counters.call_legs_max_active.max(self.counters.call_legs_active);
    }

    /// Connects a leg's media: attaches `spec` to its call's conference in
    /// place of any endpoint it had (new keys, codec or address), then the
    /// leg is connected (or on hold) and its settings apply.
    fn connect(&mut self, now: Instant, id: Uuid, spec: EndpointSpec, media: NegotiatedMedia) -> Result<(), String> {
        let conference = self.leg(id).and_then(|l| self.conference_of(l.live.call)).ok_or("the call ended")?;
        let old = self.leg_mut(id).and_then(|l| l.endpoint.take());
        if let Some(old) = old {
            self.by_endpoint.remove(&old);
            let _ = self.media.detach(old);
        }
        let attached = self.media.attach(conference, spec).map_err(|e| e.to_string())?;
        self.by_endpoint.insert(attached.id, id);
        let Some(leg) = self.leg_mut(id) else { return Err("the leg ended".into()) };
        leg.endpoint = Some(attached.id);
        leg.codec = media.codec;
        leg.telephone_event = media.telephone_event;
        leg.video = media.video;
        // A new endpoint says again whether it has H.281.
        leg.live.camera_control_available = false;
        leg.held = media.held;
        leg.live.encrypted_media = media.cipher_suite.is_some();
        leg.live.cipher_suite = media.cipher_suite;
        let state = if leg.held { LegState::OnHold } else { LegState::Connected };
        self.set_state(id, state);
        self.apply_media_settings(id);
        self.enter_call(now, id);
        Ok(())
    }

    /// Ends a leg the bridge decided to end: its signalling is asked to hang
    /// up, then it is dropped.
    fn end_leg(&mut self, now: Instant, id: Uuid, reason: &'static str) -> Option<()> {
        let leg = self.leg(id)?;
        match &leg.signalling {
            Signalling::Sip(_) => self.outputs.push_back(Output::Sip(SipCommand::Hangup { leg: id })),
            // The browser learns from the web bridge, which sees the leg
            // gone; its media stops answering ICE, so consent lapses too.
            Signalling::Web(web) => tracing::info!("browser leg {id} in meeting {} ended: {reason}", web.call_id),
        }
        self.drop_leg(now, id, reason)
    }

    /// Removes a leg whose signalling is over (or was asked to end): its
    /// media endpoint, its callLegEnd CDR, the counters; a call made by
    /// dialling in ends with its last leg.
    fn drop_leg(&mut self, now: Instant, id: Uuid, reason: &'static str) -> Option<()> {
        let pos = self.legs.iter().position(|l| l.live.id == id)?;
        let leg = self.legs.remove(pos);
        if let Some(e) = leg.endpoint {
            self.by_endpoint.remove(&e);
            let _ = self.media.detach(e);
        }
        self.counters.call_legs_active = self.counters.call_legs_active.saturating_sub(1);
        self.counters.call_legs_completed += 1;
        if let Some(call) = self.call_mut(leg.live.call) {
            call.legs_completed += 1;
        }
        self.cdr(CdrRecord::CallLegEnd { leg: id, reason, duration: now.saturating_duration_since(leg.started) });
        if leg.activation == activation::Activation::Active && !leg.settings.needs_activation {
            self.review_activation(now, leg.live.call);
        }
        self.end_if_empty(now, leg.live.call);
        Some(())
    }

    /// Marks a leg as in `state` and tells CDR receivers.
    fn set_state(&mut self, id: Uuid, state: LegState) {
        let Some(leg) = self.leg_mut(id) else { return };
        if leg.live.state != state {
            leg.live.state = state;
            let record = CdrRecord::CallLegUpdate { leg: id, state, encrypted_media: leg.live.encrypted_media };
            self.cdr(record);
        }
    }

    /// Applies a leg's settings that act on media (mutes, importance, video).
    fn apply_media_settings(&self, id: Uuid) {
        let Some(leg) = self.leg(id) else { return };
        let Some(e) = leg.endpoint else { return };
        let s = &leg.settings;
        let _ = self.media.set_rx_muted(e, s.rx_audio_mute);
        let _ = self.media.set_tx_muted(e, s.tx_audio_mute || leg.held);
        let _ = self.media.set_importance(e, s.importance);
        // Also for a leg without video: its name labels its placeholder pane.
        let layout = match s.layout_template.and_then(|t| self.layout_template(t)) {
            Some(template) => ViewLayout::Template(template),
            None => ViewLayout::Cms(s.layout),
        };
        let video = VideoSettings {
            layout,
            rx_muted: s.rx_video_mute,
            tx_muted: s.tx_video_mute || leg.held,
            max_size: s.max_picture,
            labels: s.participant_labels,
            label: Some(leg.label()),
        };
        let _ = self.media.set_video(e, video);
    }

    /// The panes of layout template `id`, read from the store: a leg names
    /// one rarely (when its settings change), and the API only keeps
    /// templates this reads. `None` for a template deleted or never
    /// uploaded: the leg keeps its CMS layout.
    fn layout_template(&self, id: Uuid) -> Option<Arc<LayoutTemplate>> {
        let records = self.store.records(LAYOUT_TEMPLATES).ok()?;
        let (_, text) = records.into_iter().find(|(r, _)| *r == id)?;
        let spec = TemplateSpec::parse(&text).ok()?;
        let layouts = spec.layouts.into_iter().map(|l| TemplateLayout {
            min_shown: l.min_participants,
            max_shown: l.max_participants,
            panes: l.panes.into_iter().map(|p| [p.x, p.y, p.width, p.height]).collect(),
        });
        LayoutTemplate::new(layouts.collect()).map(Arc::new)
    }

    /// Sends a connected leg its `dtmfSequence` as RFC 4733 telephone-events,
    /// or by SIP INFO to a SIP leg that negotiated none (the digits are not
    /// logged: they are often a PIN).
    fn send_dtmf_sequence(&mut self, id: Uuid) {
        let Some(leg) = self.leg(id) else { return };
        let (Some(e), Some(sequence)) = (leg.endpoint, leg.live.config.get("dtmfSequence")) else { return };
        if !leg.telephone_event {
            if matches!(leg.signalling, Signalling::Sip(_)) {
                let sequence = sequence.clone();
                tracing::info!("call leg {id}: dtmfSequence ***** ({} keys) sent by SIP INFO", sequence.len());
                self.outputs.push_back(Output::Sip(SipCommand::DtmfInfo { leg: id, sequence }));
            } else {
                tracing::info!("call leg {id}: dtmfSequence not sent: no telephone-event was negotiated");
            }
            return;
        }
        match self.media.send_dtmf(e, sequence) {
            Ok(()) => tracing::info!("call leg {id}: dtmfSequence ***** ({} keys) sent", sequence.len()),
            Err(err) => tracing::info!("call leg {id}: dtmfSequence not sent: {err}"),
        }
    }

    /// A digit from a caller, by whatever means it came: the passcode lobby
    /// collects it.
    fn digit(&mut self, now: Instant, id: Uuid, digit: char) {
        let Some(leg) = self.legs.iter_mut().find(|l| l.live.id == id) else { return };
        let endpoint = leg.endpoint;
        let call = leg.live.call;
        if leg.ivr.is_some() {
            return self.ivr_digit(now, id, digit);
        }
        let Some(lobby) = leg.lobby.as_mut() else { return self.key_pressed(now, id, digit) };
        if leg.hang_up_at.is_some() {
            return; // Saying goodbye.
        }
        if digit != '#' {
            if lobby.entered.len() < MAX_PASSCODE_DIGITS {
                lobby.entered.push(digit);
            }
            return;
        }
        if let Some(chosen) = lobby.chosen() {
            tracing::info!("call leg {id}: passcode ***** accepted");
            // Where the number is shared, the passcode said which way in:
            // that one's call leg profiles apply.
            if lobby.choices.len() > 1 {
                let place = LegPlace {
                    own_profile: None,
                    access_method: chosen.access_method.as_ref(),
                    space: Some(&chosen.space),
                };
                leg.profiles = ProfileChain::resolve(&*self.store, place);
                leg.resolve_settings();
                self.apply_media_settings(id);
            }
            let Some(leg) = self.leg_mut(id) else { return };
            leg.lobby = None;
            // In, or (a guest) on to waiting for its host, with no moment
            // between the two prompts.
            self.enter_call(now, id);
            return;
        }
        lobby.failures += 1;
        lobby.entered.clear();
        let failures = lobby.failures;
        tracing::info!("call leg {id}: wrong passcode ({failures} of {MAX_PASSCODE_FAILURES})");
        if failures >= MAX_PASSCODE_FAILURES {
            // "Goodbye", heard to its end, then the hang-up (the bridge's
            // timer); without media, at once.
            let goodbye = self.goodbye_prompt(self.space_of_call(call));
            let heard = goodbye.duration() + std::time::Duration::from_millis(300);
            match endpoint {
                Some(e) if self.media.set_prompt(e, Some(goodbye)).is_ok() => {
                    if let Some(leg) = self.leg_mut(id) {
                        leg.hang_up_at = Some(now + heard);
                    }
                }
                _ => {
                    self.end_leg(now, id, "localTeardown");
                }
            }
        } else if let Some(e) = endpoint {
            let prompt = self.wrong_passcode_prompt(self.space_of_call(call), usize::from(failures));
            let _ = self.media.set_prompt(e, Some(prompt));
        }
    }

    // ---- inputs -------------------------------------------------------------

    /// When the bridge's timer is due next: a leg to hang up once its last
    /// prompt is heard, or a guest's `deactivationModeTime` running out.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.legs.iter().filter_map(|l| l.hang_up_at).chain(self.deactivation_due()).min()
    }

    /// Time passed to `now`: whatever [`next_timeout`](Self::next_timeout)
    /// said is due is done.
    pub fn handle_timeout(&mut self, now: Instant) {
        let done: Vec<Uuid> =
            self.legs.iter().filter(|l| l.hang_up_at.is_some_and(|t| t <= now)).map(|l| l.live.id).collect();
        for id in done {
            self.end_leg(now, id, "localTeardown");
        }
        self.handle_deactivation_timeout(now);
    }

    /// What a SIP leg's signalling reports.
    pub fn handle_sip(&mut self, now: Instant, event: SipEvent) {
        self.on_sip_event(now, event);
    }

    /// What the media engine reports.
    pub fn handle_media(&mut self, now: Instant, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf { endpoint, digit, .. } => {
                if let Some(id) = self.by_endpoint.get(&endpoint).copied() {
                    self.digit(now, id, digit);
                }
            }
            MediaEvent::MediaTimeout { endpoint, .. } => {
                let Some(id) = self.by_endpoint.get(&endpoint).copied() else { return };
                if self.leg(id).is_some_and(|l| l.held) {
                    return; // a held call may be silent
                }
                tracing::info!("call leg {id}: no media for the timeout; dropping it");
                self.end_leg(now, id, "timeout");
            }
            MediaEvent::AttachFailed { endpoint, reason, .. } => {
                let Some(id) = self.by_endpoint.get(&endpoint).copied() else { return };
                tracing::warn!("call leg {id}: the media engine refused it: {reason}");
                self.end_leg(now, id, "mediaNegotiationFailure");
            }
            MediaEvent::ActiveSpeaker { conference, endpoint } => self.on_speaker(conference, endpoint),
            MediaEvent::CameraControlAvailable { endpoint, .. } => self.on_camera_control_available(endpoint),
            MediaEvent::CameraControl { endpoint, message, .. } => self.on_camera_control(endpoint, message),
        }
    }

    /// The answer to an [`Output::Lookup`]: the servers to try in order,
    /// none when the name did not resolve.
    pub fn handle_lookup(&mut self, now: Instant, lookup: &Lookup, servers: Vec<Peer>) {
        self.on_lookup(now, lookup, servers);
    }

    /// Ends every leg and every call (SIGTERM): each signalling is asked to
    /// hang up, and every CDR is emitted. New calls are refused from now on.
    pub fn shutdown(&mut self, now: Instant) {
        self.closing = true;
        let legs: Vec<Uuid> = self.legs.iter().map(|l| l.live.id).collect();
        for id in legs {
            self.end_leg(now, id, "localTeardown");
        }
        let calls: Vec<Uuid> = self.calls.iter().map(|c| c.live.id).collect();
        for id in calls {
            self.remove_call(now, id);
        }
    }

    // ---- what the API asks (see BridgeHandle) ----------------------------------

    /// Starts a call (`POST /calls`).
    pub fn create_call(&mut self, now: Instant, new: NewCall) -> Result<LiveCall, BridgeError> {
        let id = self.new_call(now, new, false)?;
        self.calls.iter().find(|c| c.live.id == id).map(|c| c.live.clone()).ok_or(BridgeError::CallDoesNotExist)
    }

    /// Changes a call's settings (`locked` lets waiting guests in, or not).
    pub fn update_call(&mut self, now: Instant, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        let call = self.call_mut(id).ok_or(BridgeError::CallDoesNotExist)?;
        apply(&mut call.live.config, changes);
        self.review_activation(now, id);
        Ok(())
    }

    /// Ends a call and every leg in it (`DELETE /calls/<id>`).
    pub fn end_call(&mut self, now: Instant, id: Uuid) -> Result<(), BridgeError> {
        if !self.calls.iter().any(|c| c.live.id == id) {
            return Err(BridgeError::CallDoesNotExist);
        }
        let legs: Vec<Uuid> = self.legs.iter().filter(|l| l.live.call == id).map(|l| l.live.id).collect();
        for leg in legs {
            self.end_leg(now, leg, "callDeactivated");
        }
        self.remove_call(now, id);
        Ok(())
    }

    /// Live calls, in the order they started.
    pub fn calls(&self, now: Instant) -> Vec<LiveCall> {
        self.calls
            .iter()
            .filter(|c| !c.hidden)
            .map(|c| {
                let mut live = c.live.clone();
                live.duration = now.saturating_duration_since(c.started);
                live.num_call_legs = self.count_legs(c.live.id);
                live.num_participants_local = live.num_call_legs;
                live
            })
            .collect()
    }

    /// Changes a leg's settings (mutes, layout, importance, DTMF) live.
    pub fn update_call_leg(&mut self, now: Instant, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        let leg = self.leg_mut(id).ok_or(BridgeError::CallLegDoesNotExist)?;
        // `deactivated` is an act (admit, or send back to wait), not a setting.
        let (acts, changes): (Vec<&Change>, Vec<Change>) = {
            let (acts, settings): (Vec<&Change>, Vec<&Change>) =
                changes.iter().partition(|c| c.field.name == "deactivated");
            (acts, settings.into_iter().cloned().collect())
        };
        let changes = changes.as_slice();
        apply(&mut leg.live.config, changes);
        leg.resolve_settings();
        let call = leg.live.call;
        self.apply_media_settings(id);
        if let Some(deactivated) = acts.last().and_then(|c| c.value.as_deref()) {
            self.set_deactivated(id, deactivated == "true");
        }
        // It may have become a guest, or an activator.
        self.review_activation(now, call);
        // Each PUT with a `dtmfSequence` sends it once (a leg still ringing
        // is sent it when it answers).
        if changes.iter().any(|c| c.field.name == "dtmfSequence" && c.value.is_some()) {
            self.send_dtmf_sequence(id);
        }
        Ok(())
    }

    /// An IDR to the leg with its view's next picture
    /// (`POST /callLegs/<id>/generateKeyframe`); nothing for an audio leg.
    pub fn generate_keyframe(&mut self, id: Uuid) -> Result<(), BridgeError> {
        let leg = self.leg(id).ok_or(BridgeError::CallLegDoesNotExist)?;
        if let (true, Some(e)) = (leg.video, leg.endpoint) {
            let _ = self.media.generate_keyframe(e);
        }
        Ok(())
    }

    /// The call leg profiles in force on a leg, most general first
    /// (`callLegs/<id>/callLegProfileTrace`).
    pub fn call_leg_profile_trace(&self, id: Uuid) -> Result<Vec<confero_api::bridge::ProfileLayer>, BridgeError> {
        let leg = self.leg(id).ok_or(BridgeError::CallLegDoesNotExist)?;
        Ok(leg
            .profiles
            .trace()
            .into_iter()
            .map(|(scope, p)| confero_api::bridge::ProfileLayer {
                scope,
                profile: p.id,
                fields: p.fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            })
            .collect())
    }

    /// Hangs up one leg (`DELETE /callLegs/<id>`).
    pub fn end_call_leg(&mut self, now: Instant, id: Uuid) -> Result<(), BridgeError> {
        self.end_leg(now, id, "localTeardown").ok_or(BridgeError::CallLegDoesNotExist)
    }

    /// Live legs, in the order they started, with their media status.
    pub fn call_legs(&mut self, now: Instant) -> Vec<LiveCallLeg> {
        let media = self.media.clone();
        self.legs
            .iter_mut()
            .map(|l| {
                let mut live = l.live.clone();
                live.duration = now.saturating_duration_since(l.started);
                if let Some(stats) = l.endpoint.and_then(|e| media.endpoint_stats(e)) {
                    let (rx, tx) = l.meter.update(now, &stats, l.codec);
                    live.rx_audio = Some(rx);
                    live.tx_audio = Some(tx);
                    live.refusals = Some(meters::refusals(&stats));
                    if let Some(v) = &stats.video {
                        (live.rx_video, live.tx_video) = l.video_meter.update(now, v, stats.round_trip);
                    }
                }
                if l.video {
                    live.layout = Some(l.settings.layout.api_name().to_string());
                }
                live
            })
            .collect()
    }

    /// Live participants, in the order they joined.
    pub fn participants(&self) -> Vec<LiveParticipant> {
        self.legs
            .iter()
            .map(|l| LiveParticipant {
                id: l.live.participant,
                call: l.live.call,
                name: l.live.name.clone(),
                uri: l.live.remote_party.clone(),
                num_call_legs: 1,
                state: l.live.state,
                importance: l.live.config.get("importance").and_then(|v| v.parse().ok()),
                is_activator: !l.settings.needs_activation,
                camera_control_available: l.live.camera_control_available,
            })
            .collect()
    }

    /// Counters for `system/status`.
    pub fn counters(&mut self, now: Instant) -> BridgeCounters {
        let media = self.media.clone();
        let (mut rx, mut tx) = (0, 0);
        for l in &mut self.legs {
            if let Some(stats) = l.endpoint.and_then(|e| media.endpoint_stats(e)) {
                let (r, t) = l.meter.update(now, &stats, "");
                rx += r.bit_rate;
                tx += t.bit_rate;
            }
        }
        let mut counters = self.counters;
        counters.audio_bit_rate_incoming = rx;
        counters.audio_bit_rate_outgoing = tx;
        let runtime = media.stats();
        counters.media_refusals = meters::runtime_refusals(&runtime);
        counters.media_load = runtime.load;
        counters
    }

    /// Legs alive.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }
}

/// What a leg's signalling negotiated, beside the endpoint's spec.
struct NegotiatedMedia {
    /// The CMS codec name of its audio.
    codec: &'static str,
    /// The SRTP suite, when encrypted.
    cipher_suite: Option<String>,
    /// The far end holds the call.
    held: bool,
    /// Its audio has telephone-event.
    telephone_event: bool,
    /// It has a video stream.
    video: bool,
}

fn apply(config: &mut BTreeMap<&'static str, String>, changes: &[Change]) {
    for c in changes {
        match &c.value {
            Some(v) => config.insert(c.field.name, v.clone()),
            None => config.remove(c.field.name),
        };
    }
}
