//! Browsers as call legs: the web bridge asks (over C2W) whether a meeting
//! ID exists and whether it needs a passcode, then joins the browser with
//! its JSEP offer. The meeting ID is a space's or an access method's
//! `callId`; a join link's `secret` stands for the passcode.

use std::time::Instant;

use confero_api::bridge::{WebJoin, WebJoinError, WebJoined, WebMeeting};
use confero_store::schema::{ClaimSpace, Kind};

use super::Bridge;
use crate::dialplan::Destination;

impl Bridge {
    /// The space or access method whose `callId` this is.
    fn web_destination(&self, call_id: &str) -> Result<Destination, WebJoinError> {
        let call_id = call_id.trim();
        if call_id.is_empty() {
            return Err(WebJoinError::MeetingNotFound);
        }
        let owner = self.store.claim_owner(ClaimSpace::CallId, &call_id.to_lowercase());
        match owner {
            Some(o) if o.kind == Kind::CoSpace => Ok(Destination { space: o, access_method: None }),
            Some(o) if o.kind == Kind::AccessMethod => {
                let space = o.parent.and_then(|p| self.store.get(Kind::CoSpace, p));
                let space = space.ok_or(WebJoinError::MeetingNotFound)?;
                Ok(Destination { space, access_method: Some(o) })
            }
            _ => Err(WebJoinError::MeetingNotFound),
        }
    }

    /// See [`BridgeHandle::web_meeting`](confero_api::bridge::BridgeHandle::web_meeting).
    pub fn web_meeting(&self, call_id: &str, secret: Option<&str>) -> Result<WebMeeting, WebJoinError> {
        let destination = self.web_destination(call_id)?;
        if !destination.admits_non_members() {
            return Err(WebJoinError::MeetingNotFound);
        }
        let passcode_required = destination.passcode().is_some() && !secret_matches(&destination, secret);
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
        if let Some(passcode) = destination.passcode() {
            let typed = join.passcode.as_deref().map(str::trim);
            if typed != Some(passcode) && !secret_matches(&destination, join.secret.as_deref()) {
                return Err(WebJoinError::WrongPasscode);
            }
        }
        Ok(destination)
    }

    /// See [`BridgeHandle::join_web`](confero_api::bridge::BridgeHandle::join_web).
    pub fn join_web(&mut self, _now: Instant, join: WebJoin) -> Result<WebJoined, WebJoinError> {
        self.web_admission(&join)?;
        Err(WebJoinError::MediaNegotiation("browser media is not available yet".into()))
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
