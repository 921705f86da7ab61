//! Browsers as call legs: the web bridge asks (over C2W) whether a meeting
//! ID exists and whether it needs a passcode, then joins the browser with
//! its JSEP offer. The meeting ID is a space's or an access method's
//! `callId`; a join link's `secret` stands for the passcode.

use std::time::Instant;

use confero_api::bridge::{BridgeError, Direction, WebJoin, WebJoinError, WebJoined, WebMeeting};
use confero_media::runtime::{EndpointSpec, IceTransport, MediaTransport};
use confero_media::transport::dtls::Fingerprint;
use confero_media::transport::ice::IceCredentials;
use confero_sdp::{answer_bundle, LocalBundle, SessionDescription};
use confero_store::schema::ClaimSpace;

use super::compatibility::Compatibility;
use super::leg::{Leg, Signalling, WebLeg};
use super::settings::{LegPlace, ProfileChain};
use super::sip_legs::streams_of;
use super::Bridge;
use crate::dialplan::Destination;

impl Bridge {
    /// The space or access method whose `callId` this is.
    fn web_destination(&self, call_id: &str) -> Result<Destination, WebJoinError> {
        let call_id = call_id.trim();
        if call_id.is_empty() {
            return Err(WebJoinError::MeetingNotFound);
        }
        let owners = self.store.claim_owners(ClaimSpace::CallId, &call_id.to_lowercase());
        Destination::of_owners(&*self.store, owners).ok_or(WebJoinError::MeetingNotFound)
    }

    /// See [`BridgeHandle::web_meeting`](confero_api::bridge::BridgeHandle::web_meeting).
    pub fn web_meeting(&self, call_id: &str, secret: Option<&str>) -> Result<WebMeeting, WebJoinError> {
        let destination = self.web_destination(call_id)?;
        if !destination.admits_non_members() {
            return Err(WebJoinError::MeetingNotFound);
        }
        // A shared call ID always asks: the passcode says which way in.
        let passcode_required =
            (destination.passcode().is_some() || destination.is_shared()) && !secret_matches(&destination, secret);
        let name = destination.space.get("name").unwrap_or_default().to_string();
        Ok(WebMeeting { name, passcode_required })
    }

    /// Checks a browser's meeting ID and passcode (or secret): the
    /// destination it may join.
    pub(super) fn web_admission(&self, join: &WebJoin) -> Result<Destination, WebJoinError> {
        let destination = self.web_destination(&join.call_id)?;
        if !destination.admits_non_members() {
            return Err(WebJoinError::MeetingNotFound);
        }
        if secret_matches(&destination, join.secret.as_deref()) {
            return Ok(Destination { shared: Vec::new(), ..destination });
        }
        let typed = join.passcode.as_deref().map(str::trim).unwrap_or_default();
        if !destination.is_shared() {
            return match destination.passcode() {
                Some(passcode) if passcode != typed => Err(WebJoinError::WrongPasscode),
                _ => Ok(destination),
            };
        }
        destination.choose(typed).ok_or(WebJoinError::WrongPasscode)
    }

    /// See [`BridgeHandle::join_web`](confero_api::bridge::BridgeHandle::join_web):
    /// the browser's offer is answered for the space's conference (ICE-lite
    /// on its media worker, our DTLS fingerprint), and its leg joins the call
    /// as a SIP caller's would, past the lobby (the passcode is checked).
    pub fn join_web(&mut self, now: Instant, join: WebJoin) -> Result<WebJoined, WebJoinError> {
        if self.closing {
            return Err(BridgeError::Overloaded.into());
        }
        let destination = self.web_admission(&join)?;
        let refused = |why: String| WebJoinError::MediaNegotiation(why);
        let offer = SessionDescription::parse(join.offer.as_bytes()).map_err(|e| refused(e.to_string()))?;
        let place = LegPlace {
            own_profile: None,
            access_method: destination.access_method.as_ref(),
            space: Some(&destination.space),
        };
        let profiles = ProfileChain::resolve(&*self.store, place);
        let call = self.call_with_room(now, &destination.space)?;
        let conference = self.conference_of(call).ok_or(BridgeError::CallDoesNotExist)?;
        let Ok((address, _)) = self.media.conference_addresses(conference) else {
            self.end_if_empty(now, call);
            return Err(BridgeError::Overloaded.into());
        };
        let ice = IceCredentials::random(&mut *self.rng);
        let local = LocalBundle {
            address: address.ip(),
            port: address.port(),
            session_id: u64::from(self.rng.next_u32()),
            ice_ufrag: ice.ufrag.clone(),
            ice_pwd: ice.pwd.clone(),
            fingerprint: self.media.dtls_fingerprint(),
            audio_ssrc: self.rng.next_u32(),
            video_ssrc: self.rng.next_u32(),
            cname: format!("confero-{:08x}", self.rng.next_u32()),
            video: self.config.video,
            video_codec: Compatibility::of(&*self.store).browser_video_codec,
        };
        let answered = answer_bundle(&offer, &local, &mut *self.rng);
        let (answer, agreed) = match answered {
            Ok(a) => a,
            Err(e) => {
                self.end_if_empty(now, call);
                return Err(refused(e.to_string()));
            }
        };
        let Some(remote_fingerprint) = Fingerprint::parse(&agreed.remote_fingerprint) else {
            self.end_if_empty(now, call);
            return Err(refused("unusable DTLS fingerprint".into()));
        };
        let name = join.name.trim().to_string();
        let mut live = self.new_live_leg(call, Direction::Incoming, name.clone(), format!("{name} (web)"));
        live.id = self.new_id();
        let id = live.id;
        let signalling = Signalling::Web(WebLeg { call_id: join.call_id.trim().to_string() });
        let leg = Leg::new(live, now, signalling, profiles);
        let layout = leg.settings.layout;
        let (mut config, mut video, mut negotiated) = streams_of(&agreed.audio, agreed.video.as_ref(), layout, None);
        config.ssrc = Some(local.audio_ssrc);
        config.cname = local.cname.clone();
        if let Some(v) = video.as_mut() {
            v.ssrc = Some(local.video_ssrc);
            v.cname = local.cname.clone();
        }
        // Keyed by DTLS once the browser connects; always encrypted.
        negotiated.cipher_suite = Some("DTLS-SRTP".into());
        let transport = IceTransport {
            local: ice,
            remote_ufrag: agreed.remote_ufrag.clone(),
            remote_fingerprint,
            dtls_active: agreed.dtls_active,
            video_payload_types: agreed.video_payload_types.clone(),
            audio_ssrcs: agreed.audio_ssrcs.clone(),
            video_ssrcs: agreed.video_ssrcs.clone(),
        };
        let spec = EndpointSpec { config, video, transport: MediaTransport::Ice(transport) };
        self.admit(leg);
        if let Err(e) = self.connect(now, id, spec, negotiated) {
            tracing::warn!("web join of {}: media: {e}", join.call_id);
            self.drop_leg(now, id, "mediaNegotiationFailure");
            return Err(refused(e));
        }
        tracing::info!("browser joined {} as leg {id} (ICE-lite at {address})", join.call_id.trim());
        Ok(WebJoined { call, call_leg: id, answer: answer.to_text() })
    }
}

/// Whether a join link's secret is the access method's (when the meeting ID
/// is one) or the space's.
fn secret_matches(destination: &Destination, secret: Option<&str>) -> bool {
    let Some(secret) = secret.map(str::trim).filter(|s| !s.is_empty()) else { return false };
    let own = match &destination.access_method {
        Some(a) => a.get("secret"),
        None => destination.space.get("secret"),
    };
    own.is_some_and(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()))
}

/// Compares without stopping at the first difference, so that the time an
/// answer takes says nothing about how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
