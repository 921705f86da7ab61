//! Calls and call legs as the bridge keeps them.
//!
//! A [`Leg`] is the same thing to its call, the API and the CDRs whatever
//! carries it: its live view, its media endpoint, its lobby, its settings and
//! meters. What differs by kind is its [`Signalling`] part — today SIP; a
//! browser (`Web`) and a distribution link to another bridge (`Link`) come
//! with their issues — which only the code of that kind looks inside.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use confero_api::bridge::{LiveCall, LiveCallLeg};
use confero_media::engine::EndpointId;
use confero_media::runtime::ConferenceId;
use confero_sdp::{AudioOffer, FeccOffer, MediaEncryption, VideoOffer};
use confero_sip::resolve::Hop;
use confero_sip::transaction::Peer;
use confero_store::Object;

use crate::dialplan::Destination;

use super::activation::Activation;
use super::cdr::LegKind;
use super::dtmf::KeyBuffer;
use super::meters::{RateMeter, VideoMeter};
use super::settings::{LegSettings, ProfileChain};

/// A live call: one conference in the media engine.
pub(super) struct Call {
    pub live: LiveCall,
    pub started: Instant,
    pub cdr_tag: Option<String>,
    pub legs_completed: usize,
    pub conference: ConferenceId,
    /// Made by a caller dialling a space: it ends with its last leg. Calls
    /// made through the API stay until deleted.
    pub ends_when_empty: bool,
    /// An IVR's own conference for one caller typing a meeting ID: not a
    /// CMS call, so not in `/calls` and without CDRs of its own.
    pub hidden: bool,
    /// Since when no activator has been in (for guests'
    /// `deactivationModeTime`); `None` while one is.
    pub no_activator_since: Option<Instant>,
    /// Its dominant speakers' endpoints, most recent first (whose camera
    /// far-end camera controls move).
    pub speakers: Vec<EndpointId>,
}

/// A caller at an IVR, typing a meeting ID.
pub(super) struct IvrStage {
    /// The `ivrs` object it dialled.
    pub ivr: Object,
    pub entered: String,
    pub failures: u8,
    /// The meeting was found: our re-INVITE moving the media is out.
    pub moving: bool,
}

/// A passcode being entered.
pub(super) struct Lobby {
    /// Each passcode that lets the caller in (empty: just `#`), with the
    /// way in it is — more than one where a space and its access methods
    /// share the number dialled (a host's and a guests' passcode).
    pub choices: Vec<(String, Destination)>,
    pub entered: String,
    pub failures: u8,
}

impl Lobby {
    /// The lobby a caller reaching `destination` waits in; `None` when it
    /// owes no passcode.
    pub fn for_destination(destination: &Destination) -> Option<Lobby> {
        if !destination.is_shared() && destination.passcode().is_none() {
            return None;
        }
        let choices =
            destination.choices().into_iter().map(|d| (d.passcode().unwrap_or_default().to_string(), d)).collect();
        Some(Lobby { choices, entered: String::new(), failures: 0 })
    }

    /// The way in the digits entered open, if any.
    pub fn chosen(&self) -> Option<&Destination> {
        self.choices.iter().find(|(p, _)| *p == self.entered).map(|(_, d)| d)
    }
}

/// One call leg.
pub(super) struct Leg {
    pub live: LiveCallLeg,
    pub started: Instant,
    pub signalling: Signalling,
    pub endpoint: Option<EndpointId>,
    /// Set while the caller must still enter the space's passcode.
    pub lobby: Option<Lobby>,
    /// Set while the caller is at an IVR, before its meeting.
    pub ivr: Option<IvrStage>,
    /// Its call leg profiles, read when it was admitted.
    pub profiles: ProfileChain,
    /// Its own values over its profiles, resolved whenever they change.
    pub settings: LegSettings,
    /// On hold by the far end (no media is sent to it).
    pub held: bool,
    /// The CMS name of the negotiated audio codec.
    pub codec: &'static str,
    pub meter: RateMeter,
    pub video_meter: VideoMeter,
    /// It has a video stream.
    pub video: bool,
    /// Its audio has telephone-event: it can be sent `dtmfSequence`.
    pub telephone_event: bool,
    /// The keys it pressed lately, for its DTMF profile's sequences.
    pub keys: KeyBuffer,
    /// In the conference, waiting for an activator, or not in the call yet.
    pub activation: Activation,
    /// When to hang up, once a last prompt (the passcode goodbye) is heard.
    pub hang_up_at: Option<Instant>,
    /// A guest the API let in (`deactivated=false`): it stays in when no
    /// activator is.
    pub admitted: bool,
}

impl Leg {
    pub fn new(live: LiveCallLeg, now: Instant, signalling: Signalling, profiles: ProfileChain) -> Leg {
        let settings = LegSettings::resolve(&live.config, &profiles);
        Leg {
            live,
            started: now,
            signalling,
            endpoint: None,
            lobby: None,
            profiles,
            settings,
            held: false,
            codec: "",
            meter: RateMeter::default(),
            video_meter: VideoMeter::default(),
            video: false,
            telephone_event: false,
            keys: KeyBuffer::default(),
            ivr: None,
            activation: Activation::Outside,
            hang_up_at: None,
            admitted: false,
        }
    }

    /// Resolves its settings again after its own values changed.
    pub fn resolve_settings(&mut self) {
        self.settings = LegSettings::resolve(&self.live.config, &self.profiles);
    }

    /// What carries it, in CDR words.
    pub fn kind(&self) -> LegKind {
        match self.signalling {
            Signalling::Sip(_) => LegKind::Sip,
            Signalling::Web(_) => LegKind::Web,
        }
    }

    /// The name on its panes: its `nameLabelOverride`, else the display name
    /// it called with, else its remote party without the port.
    pub fn label(&self) -> String {
        if let Some(name) = &self.settings.name_label_override {
            return name.clone();
        }
        if !self.live.name.trim().is_empty() {
            return self.live.name.clone();
        }
        let party = self.live.remote_party.as_str();
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
}

/// The part of a leg that depends on what carries it.
pub(super) enum Signalling {
    /// A SIP call (boxed: its dial-out state is large beside a browser's).
    Sip(Box<SipLeg>),
    /// A browser: its signalling is the web bridge's (over C2W), its media
    /// ICE-lite and DTLS-SRTP on the media worker.
    Web(WebLeg),
}

/// What the bridge keeps of a browser's leg.
pub(super) struct WebLeg {
    /// The meeting ID it joined with, for logs.
    pub call_id: String,
}

/// What the bridge keeps of a SIP leg beyond the user agent's dialog.
pub(super) struct SipLeg {
    /// Whether SRTP is required, optional or refused.
    pub policy: MediaEncryption,
    /// The o= session id and version of our descriptions in this call.
    pub session: (u64, u64),
    /// Where its SIP comes from: its media may too (see media latching).
    pub signalling_ip: Option<IpAddr>,
    /// Our outstanding audio offer (dial-out), until the answer.
    pub offer: Option<AudioOffer>,
    /// Our video offer beside it, when video is on.
    pub video_offer: Option<VideoOffer>,
    /// Our H.224 offer beside it, when `sipH224` allows it.
    pub fecc_offer: Option<FeccOffer>,
    /// A dial-out's routes not yet tried (`failureAction=continue`).
    pub routes: VecDeque<Route>,
    /// The route being tried, once taken from `routes`.
    pub current: Option<Route>,
    /// Its servers not yet tried (RFC 3263: the SRV targets in order).
    pub targets: VecDeque<Peer>,
    /// The dial-out's INVITE body, the same for every route.
    pub body: Vec<u8>,
    /// The user part of our From (the space's URI).
    pub from_user: String,
    /// A dial-out has sent at least one INVITE: running out of routes is
    /// then a SIP failure, not a DNS one.
    pub dialled: bool,
}

/// Our offer (a dial-out, a late offer, an IVR's move): its streams,
/// kept until the answer.
pub(super) struct OurOffer {
    pub audio: AudioOffer,
    pub video: Option<VideoOffer>,
    pub fecc: Option<FeccOffer>,
}

impl SipLeg {
    /// Keeps our offer for its answer; its body.
    pub fn offered(&mut self, ours: OurOffer) -> Vec<u8> {
        let body = ours.audio.sdp.to_text().into_bytes();
        self.offer = Some(ours.audio);
        self.video_offer = ours.video;
        self.fecc_offer = ours.fecc;
        body
    }

    pub fn new(policy: MediaEncryption, session_id: u64) -> SipLeg {
        SipLeg {
            policy,
            session: (session_id, 1),
            signalling_ip: None,
            offer: None,
            video_offer: None,
            fecc_offer: None,
            routes: VecDeque::new(),
            current: None,
            targets: VecDeque::new(),
            body: Vec::new(),
            from_user: String::new(),
            dialled: false,
        }
    }
}

/// One way to reach a dialled party: an outbound dial plan rule applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    /// The Request-URI and To.
    pub target: String,
    /// The next hop (the proxy, else the target): host, port if given, and
    /// the transports the URI and the rule's `sipControlEncryption` allow.
    pub hop: Hop,
    /// A Route header for an outbound proxy.
    pub route_header: Option<String>,
    /// The domain of our From (`localFromDomain`); `None`: our address.
    pub from_domain: Option<String>,
    /// The domain of our Contact (`localContactDomain`).
    pub contact_domain: Option<String>,
}
