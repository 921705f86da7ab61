//! The call bridge: the live calls, legs and participants behind the API's
//! [`BridgeHandle`]. This is where control meets media: SIP calls
//! (`sip_calls.rs`) become call legs here, each with an endpoint in its
//! call's conference in the media runtime.
//!
//! State lives under one mutex; nothing slow happens while it is held (SIP
//! commands go to the SIP task as closures, media commands are channel
//! sends).

mod sip_calls;
mod status;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use confero_control::api::xml::XmlWriter;
use confero_control::bridge::{
    BridgeCounters, BridgeError, BridgeHandle, Direction, LegState, LiveCall, LiveCallLeg, LiveParticipant, NewCall,
};
use confero_control::cdr::CdrSender;
use confero_control::schema::Change;
use confero_control::store::Store;
use confero_media::engine::{EndpointId, VideoSettings, MAX_VIDEO_SIZE};
use confero_media::runtime::{ConferenceId, MediaRuntime};
use confero_sip::sdp::{AudioOffer, MediaEncryption};
use confero_sip::ua::{CallHandle, Dial, UserAgent};
use uuid::Uuid;

pub use sip_calls::UaCommand;

struct Call {
    live: LiveCall,
    started: Instant,
    cdr_tag: Option<String>,
    legs_completed: usize,
    conference: ConferenceId,
    /// Made by a caller dialling a space: it ends with its last leg. Calls
    /// made through the API stay until deleted.
    ends_when_empty: bool,
}

/// A passcode being entered.
struct Lobby {
    passcode: String,
    entered: String,
    failures: u8,
}

struct Leg {
    live: LiveCallLeg,
    started: Instant,
    sip: Option<CallHandle>,
    endpoint: Option<EndpointId>,
    lobby: Option<Lobby>,
    /// Our outstanding offer (dial-out), until the answer.
    offer: Option<AudioOffer>,
    /// Our video offer beside it, when video is on.
    video_offer: Option<confero_sip::sdp::VideoOffer>,
    /// Routes still to try if this attempt fails (failureAction=continue).
    fallbacks: VecDeque<Dial>,
    policy: MediaEncryption,
    /// The o= session id and version of our descriptions in this call.
    session: (u64, u64),
    /// On hold by the far end (no media is sent to it).
    held: bool,
    /// The CMS name of the negotiated audio codec.
    codec: String,
    /// Where its SIP comes from: its media may too (see media latching).
    signalling_ip: Option<std::net::IpAddr>,
    meter: status::RateMeter,
    video_meter: status::VideoMeter,
    /// What it sees unless it chooses (`chosenLayout`): its profile's or
    /// its space's `defaultLayout`.
    default_layout: confero_media::video::layout::Layout,
    /// Its call leg profile's `qualityMain`, unless the leg sets its own.
    quality_main: Option<String>,
    /// Its call leg profile's `participantLabels`, unless the leg sets its own.
    participant_labels: Option<String>,
    /// It has a video stream.
    video: bool,
    /// Its SDP has telephone-event: it can be sent `dtmfSequence`.
    telephone_event: bool,
}

impl Leg {
    fn new(live: LiveCallLeg, policy: MediaEncryption) -> Leg {
        Leg {
            live,
            started: Instant::now(),
            sip: None,
            endpoint: None,
            lobby: None,
            offer: None,
            video_offer: None,
            fallbacks: VecDeque::new(),
            policy,
            session: (rand::random::<u32>().into(), 1),
            held: false,
            codec: String::new(),
            signalling_ip: None,
            meter: status::RateMeter::default(),
            video_meter: status::VideoMeter::default(),
            default_layout: confero_media::video::layout::Layout::Automatic,
            quality_main: None,
            participant_labels: None,
            video: false,
            telephone_event: false,
        }
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    legs: Vec<Leg>,
    counters: BridgeCounters,
    by_sip: HashMap<CallHandle, Uuid>,
    by_endpoint: HashMap<EndpointId, Uuid>,
}

impl State {
    fn leg_mut(&mut self, id: Uuid) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.live.id == id)
    }

    fn call_mut(&mut self, id: Uuid) -> Option<&mut Call> {
        self.calls.iter_mut().find(|c| c.live.id == id)
    }
}

/// The live side of the bridge.
pub struct CallBridge {
    state: Mutex<State>,
    cdr: Arc<CdrSender>,
    store: Arc<dyn Store>,
    media: Arc<MediaRuntime>,
    /// The SIP task's command queue, once SIP listens.
    sip: Mutex<Option<tokio::sync::mpsc::UnboundedSender<UaCommand>>>,
    /// Our SIP address, for From and Contact of calls we make.
    sip_local: Mutex<Option<std::net::SocketAddr>>,
    /// Whether offered video is answered (`CONFERO_VIDEO`).
    video_enabled: std::sync::atomic::AtomicBool,
    me: Weak<CallBridge>,
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
    /// A bridge over the store (dial plans, spaces), the media runtime, and
    /// reporting to `cdr`.
    pub fn new(cdr: Arc<CdrSender>, store: Arc<dyn Store>, media: Arc<MediaRuntime>) -> Arc<CallBridge> {
        Arc::new_cyclic(|me| CallBridge {
            state: Mutex::new(State::default()),
            cdr,
            store,
            media,
            sip: Mutex::new(None),
            sip_local: Mutex::new(None),
            video_enabled: std::sync::atomic::AtomicBool::new(true),
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answer offered video, or audio only.
    pub fn set_video_enabled(&self, on: bool) {
        self.video_enabled.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Connects the SIP task: commands for the user agent go to `commands`;
    /// `local` is our SIP address.
    pub fn attach_sip(&self, commands: tokio::sync::mpsc::UnboundedSender<UaCommand>, local: std::net::SocketAddr) {
        *self.sip.lock().unwrap_or_else(|p| p.into_inner()) = Some(commands);
        *self.sip_local.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
    }

    /// Runs `command` on the user agent in the SIP task. `false` when SIP
    /// is not running.
    fn with_ua(&self, command: impl FnOnce(&mut UserAgent, Instant) + Send + 'static) -> bool {
        let sip = self.sip.lock().unwrap_or_else(|p| p.into_inner());
        sip.as_ref().is_some_and(|tx| tx.send(Box::new(command)).is_ok())
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

    /// A leg changed in a way CDR receivers track (connected, media).
    fn leg_update_cdr(&self, leg: &LiveCallLeg) {
        let mut w = XmlWriter::new();
        w.open("callLeg", &[("id", &leg.id.to_string())]).text("state", leg.state.as_str());
        if leg.state == LegState::Connected {
            w.text("encryptedMedia", if leg.encrypted_media { "true" } else { "false" });
        }
        w.close("callLeg");
        self.cdr.emit("callLegUpdate", strip_decl(&w.finish()));
    }

    fn leg_end_cdr(&self, leg: &Leg, reason: &str) {
        let mut w = XmlWriter::new();
        w.open("callLeg", &[("id", &leg.live.id.to_string())])
            .text("reason", reason)
            .text("durationSeconds", &leg.started.elapsed().as_secs().to_string())
            .close("callLeg");
        self.cdr.emit("callLegEnd", strip_decl(&w.finish()));
    }

    /// Adds a leg to its call, with its CDR and counters.
    fn add_leg(&self, state: &mut State, leg: Leg) {
        self.leg_start_cdr(&leg.live);
        let legs = 1 + count_legs(&state.legs, leg.live.call);
        if let Some(c) = state.call_mut(leg.live.call) {
            c.live.max_call_legs = c.live.max_call_legs.max(legs);
        }
        if let Some(h) = leg.sip {
            state.by_sip.insert(h, leg.live.id);
        }
        if let Some(e) = leg.endpoint {
            state.by_endpoint.insert(e, leg.live.id);
        }
        state.legs.push(leg);
        state.counters.call_legs_active += 1;
        state.counters.call_legs_max_active = state.counters.call_legs_max_active.max(state.counters.call_legs_active);
    }

    /// Removes leg `id`: its media endpoint, its CDR, the counters; a call
    /// made by dialling in ends with its last leg. The SIP side is the
    /// caller's business (hang up first if it is still up).
    fn drop_leg(&self, state: &mut State, id: Uuid, reason: &str) -> Option<()> {
        let pos = state.legs.iter().position(|l| l.live.id == id)?;
        let leg = state.legs.remove(pos);
        if let Some(h) = leg.sip {
            state.by_sip.remove(&h);
        }
        if let Some(e) = leg.endpoint {
            state.by_endpoint.remove(&e);
            let _ = self.media.detach(e);
        }
        state.counters.call_legs_active = state.counters.call_legs_active.saturating_sub(1);
        state.counters.call_legs_completed += 1;
        if let Some(call) = state.call_mut(leg.live.call) {
            call.legs_completed += 1;
        }
        self.leg_end_cdr(&leg, reason);
        let call = leg.live.call;
        let empty_auto = state.calls.iter().any(|c| c.live.id == call && c.ends_when_empty);
        if empty_auto && count_legs(&state.legs, call) == 0 {
            self.remove_call(state, call);
        }
        Some(())
    }

    fn remove_call(&self, state: &mut State, id: Uuid) {
        if let Some(pos) = state.calls.iter().position(|c| c.live.id == id) {
            let call = state.calls.remove(pos);
            let _ = self.media.end_conference(call.conference);
            self.call_end_cdr(&call);
        }
    }

    /// Hangs up a leg's SIP dialog (if any) and removes the leg.
    fn hang_up(&self, state: &mut State, id: Uuid, reason: &str) -> Option<()> {
        let sip = state.legs.iter().find(|l| l.live.id == id)?.sip;
        if let Some(h) = sip {
            self.with_ua(move |ua, now| {
                let _ = ua.hangup(now, h);
            });
        }
        self.drop_leg(state, id, reason)
    }

    fn new_call(&self, new: NewCall, ends_when_empty: bool) -> Result<Call, BridgeError> {
        let conference = self.media.create_conference().map_err(|_| BridgeError::Overloaded)?;
        let mut config = BTreeMap::new();
        apply(&mut config, &new.config);
        Ok(Call {
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
            conference,
            ends_when_empty,
        })
    }

    /// Sends a connected leg its `dtmfSequence` as RFC 4733 telephone-events
    /// (the digits are not logged: they are often a PIN).
    fn send_dtmf_sequence(&self, leg: &Leg) {
        let (Some(e), Some(sequence)) = (leg.endpoint, leg.live.config.get("dtmfSequence")) else { return };
        if !leg.telephone_event {
            tracing::info!("call leg {}: dtmfSequence not sent: no telephone-event was negotiated", leg.live.id);
            return;
        }
        match self.media.send_dtmf(e, sequence) {
            Ok(()) => tracing::info!("call leg {}: dtmfSequence ***** ({} keys) sent", leg.live.id, sequence.len()),
            Err(err) => tracing::info!("call leg {}: dtmfSequence not sent: {err}", leg.live.id),
        }
    }

    /// Applies a leg's API settings that act on media.
    fn apply_media_settings(&self, leg: &Leg) {
        let Some(e) = leg.endpoint else { return };
        let flag = |name: &str| leg.live.config.get(name).is_some_and(|v| v == "true");
        let _ = self.media.set_rx_muted(e, flag("rxAudioMute"));
        let _ = self.media.set_tx_muted(e, flag("txAudioMute") || leg.held);
        let importance = leg.live.config.get("importance").and_then(|v| v.parse().ok()).unwrap_or(0);
        let _ = self.media.set_importance(e, importance);
        // Also for a leg without video: its name labels its placeholder pane.
        let quality = leg.live.config.get("qualityMain").or(leg.quality_main.as_ref());
        let labels = leg.live.config.get("participantLabels").or(leg.participant_labels.as_ref());
        let settings = VideoSettings {
            layout: leg_layout(leg, leg.default_layout),
            rx_muted: flag("rxVideoMute"),
            tx_muted: flag("txVideoMute") || leg.held,
            max_size: quality.and_then(|q| quality_main_size(q)).unwrap_or(MAX_VIDEO_SIZE),
            labels: labels.is_none_or(|v| v == "true"),
            label: Some(label_of(leg)),
        };
        let _ = self.media.set_video(e, settings);
    }
}

/// The name on a leg's panes: its `nameLabelOverride`, else the display
/// name it called with, else its remote party (already `user@host`, as
/// `party` made it) without the port.
fn label_of(leg: &Leg) -> String {
    if let Some(name) = leg.live.config.get("nameLabelOverride").filter(|n| !n.trim().is_empty()) {
        return name.clone();
    }
    if !leg.live.name.trim().is_empty() {
        return leg.live.name.clone();
    }
    let party = leg.live.remote_party.as_str();
    let (user, host) = party.rsplit_once('@').map_or(("", party), |(u, h)| (u, h));
    let host = match host.find(']') {
        Some(end) => &host[..=end], // [IPv6]:port
        None => host.split(':').next().unwrap_or(host),
    };
    if user.is_empty() {
        host.to_string()
    } else {
        format!("{user}@{host}")
    }
}

/// What a leg sees: its `chosenLayout` if it set one, else its own
/// `defaultLayout` (or the legacy `layout`) if it set one, else `default`.
fn leg_layout(leg: &Leg, default: confero_media::video::layout::Layout) -> confero_media::video::layout::Layout {
    ["chosenLayout", "defaultLayout", "layout"]
        .iter()
        .find_map(|name| leg.live.config.get(*name).and_then(|v| confero_media::video::layout::Layout::from_api(v)))
        .unwrap_or(default)
}

/// The largest picture a CMS `qualityMain` lets a leg be sent (16:9; all
/// at 30 fps, which is what Confero sends anyway); `None` for
/// `unrestricted` or a value we do not know.
fn quality_main_size(quality: &str) -> Option<(u32, u32)> {
    match quality {
        "max1080p30" => Some((1920, 1080)),
        "max720p30" => Some((1280, 720)),
        "max480p30" => Some((848, 480)),
        _ => None,
    }
}

fn count_legs(legs: &[Leg], call: Uuid) -> usize {
    legs.iter().filter(|l| l.live.call == call).count()
}

/// CDR records are elements inside `<records>`, without a declaration.
fn strip_decl(xml: &str) -> &str {
    xml.strip_prefix("<?xml version=\"1.0\"?>").unwrap_or(xml)
}

impl BridgeHandle for CallBridge {
    fn create_call(&self, new: NewCall) -> Result<LiveCall, BridgeError> {
        let call = self.new_call(new, false)?;
        self.call_start_cdr(&call);
        let live = call.live.clone();
        self.lock().calls.push(call);
        Ok(live)
    }

    fn update_call(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        let mut state = self.lock();
        let call = state.call_mut(id).ok_or(BridgeError::CallDoesNotExist)?;
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
            self.hang_up(&mut state, leg, "callDeactivated");
        }
        self.remove_call(&mut state, id);
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
                live.num_call_legs = count_legs(&state.legs, c.live.id);
                live.num_participants_local = live.num_call_legs;
                live
            })
            .collect()
    }

    fn dial(&self, call: Uuid, remote_party: &str, config: &[Change]) -> Result<LiveCallLeg, BridgeError> {
        self.dial_out(call, remote_party, config)
    }

    fn update_call_leg(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        let mut state = self.lock();
        let leg = state.leg_mut(id).ok_or(BridgeError::CallLegDoesNotExist)?;
        apply(&mut leg.live.config, changes);
        let leg = state.legs.iter().find(|l| l.live.id == id).ok_or(BridgeError::CallLegDoesNotExist)?;
        self.apply_media_settings(leg);
        // Each PUT with a `dtmfSequence` sends it once (a leg still ringing
        // is sent it when it answers).
        if changes.iter().any(|c| c.field.name == "dtmfSequence" && c.value.is_some()) {
            self.send_dtmf_sequence(leg);
        }
        Ok(())
    }

    fn end_call_leg(&self, id: Uuid) -> Result<(), BridgeError> {
        let mut state = self.lock();
        self.hang_up(&mut state, id, "localTeardown").ok_or(BridgeError::CallLegDoesNotExist)
    }

    fn call_legs(&self) -> Vec<LiveCallLeg> {
        let mut state = self.lock();
        let now = Instant::now();
        let mut out = Vec::with_capacity(state.legs.len());
        for l in &mut state.legs {
            let mut live = l.live.clone();
            live.duration = l.started.elapsed();
            if let Some(stats) = l.endpoint.and_then(|e| self.media.endpoint_stats(e)) {
                let (rx, tx) = l.meter.update(now, &stats, &l.codec);
                live.rx_audio = Some(rx);
                live.tx_audio = Some(tx);
                if let Some(v) = &stats.video {
                    (live.rx_video, live.tx_video) = l.video_meter.update(now, v, stats.round_trip);
                }
            }
            if l.video {
                live.layout = Some(leg_layout(l, l.default_layout).api_name().to_string());
            }
            out.push(live);
        }
        out
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
        let mut state = self.lock();
        let now = Instant::now();
        let (mut rx, mut tx) = (0, 0);
        for l in &mut state.legs {
            if let Some(stats) = l.endpoint.and_then(|e| self.media.endpoint_stats(e)) {
                let (r, t) = l.meter.update(now, &stats, "");
                rx += r.bit_rate;
                tx += t.bit_rate;
            }
        }
        let mut counters = state.counters;
        counters.audio_bit_rate_incoming = rx;
        counters.audio_bit_rate_outgoing = tx;
        counters
    }
}

/// Marks `leg` as in `state` and tells CDR receivers.
fn set_leg_state(bridge: &CallBridge, leg: &mut Leg, state: LegState) {
    if leg.live.state != state {
        leg.live.state = state;
        bridge.leg_update_cdr(&leg.live);
    }
}

/// The leg's direction for a SIP call we answered or made.
fn direction(incoming: bool) -> Direction {
    if incoming {
        Direction::Incoming
    } else {
        Direction::Outgoing
    }
}
