//! The call bridge: the live calls, legs and participants behind the API's
//! [`BridgeHandle`]. This is where control meets media: once SIP lands
//! (issue #4), legs are set up by the SIP user agent and their media attached
//! to the media engine; today a call is a live conference with its CDRs, and
//! an outbound leg ends at once because no SIP transport exists yet.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confero_control::api::xml::XmlWriter;
use confero_control::bridge::{
    BridgeCounters, BridgeError, BridgeHandle, Direction, LegState, LiveCall, LiveCallLeg, LiveParticipant, NewCall,
};
use confero_control::cdr::CdrSender;
use confero_control::schema::Change;
use uuid::Uuid;

struct Call {
    live: LiveCall,
    started: Instant,
    cdr_tag: Option<String>,
    legs_completed: usize,
}

struct Leg {
    live: LiveCallLeg,
    started: Instant,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    legs: Vec<Leg>,
    counters: BridgeCounters,
}

/// The live side of the bridge.
pub struct CallBridge {
    state: Mutex<State>,
    cdr: Arc<CdrSender>,
}

fn apply(config: &mut BTreeMap<&'static str, String>, changes: &[Change]) {
    for c in changes {
        match &c.value {
            Some(v) => config.insert(c.field.name, v.clone()),
            None => config.remove(c.field.name),
        };
    }
}

impl CallBridge {
    /// A bridge that reports to `cdr`.
    pub fn new(cdr: Arc<CdrSender>) -> Arc<CallBridge> {
        Arc::new(CallBridge { state: Mutex::new(State::default()), cdr })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call_start_cdr(&self, call: &Call) {
        let mut w = XmlWriter::new();
        let id = call.live.id.to_string();
        w.open("call", &[("id", &id)]).text("name", &call.live.name);
        if let Some(o) = &call.live.owner_name {
            w.text("ownerName", o);
        }
        w.text("callType", if call.live.co_space.is_some() { "coSpace" } else { "adHoc" });
        if let Some(s) = call.live.co_space {
            w.text("coSpace", &s.to_string());
        }
        w.text("callCorrelator", &call.live.call_correlator.to_string());
        if let Some(t) = &call.cdr_tag {
            w.text("cdrTag", t);
        }
        w.close("call");
        self.cdr.emit("callStart", strip_decl(&w.finish()));
    }

    fn call_end_cdr(&self, call: &Call) {
        let mut w = XmlWriter::new();
        w.open("call", &[("id", &call.live.id.to_string())])
            .text("callLegsCompleted", &call.legs_completed.to_string())
            .text("callLegsMaxActive", &call.live.max_call_legs.to_string())
            .text("durationSeconds", &call.started.elapsed().as_secs().to_string())
            .close("call");
        self.cdr.emit("callEnd", strip_decl(&w.finish()));
    }

    fn leg_start_cdr(&self, leg: &LiveCallLeg) {
        let mut w = XmlWriter::new();
        w.open("callLeg", &[("id", &leg.id.to_string())])
            .text("displayName", &leg.name)
            .text("remoteParty", &leg.remote_party)
            .text("type", "sip")
            .text("direction", leg.direction.as_str())
            .text("call", &leg.call.to_string())
            .close("callLeg");
        self.cdr.emit("callLegStart", strip_decl(&w.finish()));
    }

    fn leg_end_cdr(&self, leg: &Leg, reason: &str) {
        let mut w = XmlWriter::new();
        w.open("callLeg", &[("id", &leg.live.id.to_string())])
            .text("reason", reason)
            .text("durationSeconds", &leg.started.elapsed().as_secs().to_string())
            .close("callLeg");
        self.cdr.emit("callLegEnd", strip_decl(&w.finish()));
    }

    /// Removes leg `id` (with its CDR), keeping the counters true.
    fn drop_leg(&self, state: &mut State, id: Uuid, reason: &str) -> Option<()> {
        let pos = state.legs.iter().position(|l| l.live.id == id)?;
        let leg = state.legs.remove(pos);
        state.counters.call_legs_active = state.counters.call_legs_active.saturating_sub(1);
        state.counters.call_legs_completed += 1;
        if let Some(call) = state.calls.iter_mut().find(|c| c.live.id == leg.live.call) {
            call.legs_completed += 1;
        }
        self.leg_end_cdr(&leg, reason);
        Some(())
    }
}

/// CDR records are elements inside `<records>`, without a declaration.
fn strip_decl(xml: &str) -> &str {
    xml.strip_prefix("<?xml version=\"1.0\"?>").unwrap_or(xml)
}

impl BridgeHandle for CallBridge {
    fn create_call(&self, new: NewCall) -> Result<LiveCall, BridgeError> {
        let mut config = BTreeMap::new();
        apply(&mut config, &new.config);
        let call = Call {
            live: LiveCall {
                id: Uuid::new_v4(),
                name: new.name,
                co_space: new.co_space,
                call_correlator: Uuid::new_v4(),
                tenant: new.tenant,
                owner_name: new.owner_name,
                duration: Duration::ZERO,
                num_call_legs: 0,
                max_call_legs: 0,
                num_participants_local: 0,
                config,
            },
            started: Instant::now(),
            cdr_tag: new.cdr_tag,
            legs_completed: 0,
        };
        self.call_start_cdr(&call);
        let live = call.live.clone();
        self.lock().calls.push(call);
        Ok(live)
    }

    fn update_call(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        let mut state = self.lock();
        let call = state.calls.iter_mut().find(|c| c.live.id == id).ok_or(BridgeError::CallDoesNotExist)?;
        apply(&mut call.live.config, changes);
        Ok(())
    }

    fn end_call(&self, id: Uuid) -> Result<(), BridgeError> {
        let mut state = self.lock();
        if !state.calls.iter().any(|c| c.live.id == id) {
            return Err(BridgeError::CallDoesNotExist);
        }
        let legs: Vec<Uuid> = state.legs.iter().filter(|l| l.live.call == id).map(|l| l.live.id).collect();
        for leg in legs {
            self.drop_leg(&mut state, leg, "callDeactivated");
        }
        let pos = state.calls.iter().position(|c| c.live.id == id).ok_or(BridgeError::CallDoesNotExist)?;
        let call = state.calls.remove(pos);
        self.call_end_cdr(&call);
        Ok(())
    }

    fn calls(&self) -> Vec<LiveCall> {
        let state = self.lock();
        state
            .calls
            .iter()
            .map(|c| {
                let mut live = c.live.clone();
                live.duration = c.started.elapsed();
                live.num_call_legs = state.legs.iter().filter(|l| l.live.call == c.live.id).count();
                live.num_participants_local = live.num_call_legs;
                live
            })
            .collect()
    }

    fn dial(&self, call: Uuid, remote_party: &str, config: &[Change]) -> Result<LiveCallLeg, BridgeError> {
        let mut state = self.lock();
        if !state.calls.iter().any(|c| c.live.id == call) {
            return Err(BridgeError::CallDoesNotExist);
        }
        let mut cfg = BTreeMap::new();
        apply(&mut cfg, config);
        let leg = LiveCallLeg {
            id: Uuid::new_v4(),
            call,
            participant: Uuid::new_v4(),
            name: String::new(),
            remote_party: remote_party.to_string(),
            original_remote_party: remote_party.to_string(),
            direction: Direction::Outgoing,
            state: LegState::Initial,
            duration: Duration::ZERO,
            encrypted_media: false,
            cipher_suite: None,
            sip_call_id: None,
            config: cfg,
            rx_audio: None,
            tx_audio: None,
            rx_video: None,
            tx_video: None,
        };
        self.leg_start_cdr(&leg);
        state.legs.push(Leg { live: leg.clone(), started: Instant::now() });
        state.counters.call_legs_active += 1;
        state.counters.call_legs_max_active = state.counters.call_legs_max_active.max(state.counters.call_legs_active);
        if let Some(c) = state.calls.iter_mut().find(|c| c.live.id == call) {
            let n = c.live.max_call_legs + 1;
            c.live.max_call_legs = n;
        }
        // No SIP transport exists yet (issue #4): the leg fails to connect, as a
        // CMS leg to an unreachable party does, and disappears with a reason.
        tracing::warn!("call leg {} to {remote_party}: no SIP transport; leg ended", leg.id);
        self.drop_leg(&mut state, leg.id, "sipTransportUnavailable");
        Ok(leg)
    }

    fn update_call_leg(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        let mut state = self.lock();
        let leg = state.legs.iter_mut().find(|l| l.live.id == id).ok_or(BridgeError::CallLegDoesNotExist)?;
        apply(&mut leg.live.config, changes);
        Ok(())
    }

    fn end_call_leg(&self, id: Uuid) -> Result<(), BridgeError> {
        let mut state = self.lock();
        self.drop_leg(&mut state, id, "apiRequest").ok_or(BridgeError::CallLegDoesNotExist)
    }

    fn call_legs(&self) -> Vec<LiveCallLeg> {
        self.lock()
            .legs
            .iter()
            .map(|l| {
                let mut live = l.live.clone();
                live.duration = l.started.elapsed();
                live
            })
            .collect()
    }

    fn participants(&self) -> Vec<LiveParticipant> {
        self.lock()
            .legs
            .iter()
            .map(|l| LiveParticipant {
                id: l.live.participant,
                call: l.live.call,
                name: l.live.name.clone(),
                uri: l.live.remote_party.clone(),
                num_call_legs: 1,
                state: l.live.state,
                importance: l.live.config.get("importance").and_then(|v| v.parse().ok()),
            })
            .collect()
    }

    fn counters(&self) -> BridgeCounters {
        self.lock().counters
    }
}
