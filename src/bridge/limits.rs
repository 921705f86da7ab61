//! Participant limits: a call profile's `participantLimit` caps the legs of
//! one call (the space's call profile, else its tenant's, else
//! `system/profiles`'; the lowest that sets it), and a tenant's
//! `participantLimit` caps the legs of all its calls together. A leg past
//! either is refused wherever it would join: a SIP call is answered 486
//! (Busy Here), a browser `unavailable`, an API dial
//! `participantLimitReached` or `tenantParticipantLimitReached`.

use std::time::Instant;

use confero_api::bridge::BridgeError;
use confero_store::schema::Kind;
use confero_store::{Object, Store};
use uuid::Uuid;

use super::Bridge;

/// The call profile limit of a call in `space` of `tenant`.
fn call_limit(store: &dyn Store, space: Option<&Object>, tenant: Option<&Object>) -> Option<usize> {
    let system = store.singleton(Kind::SystemProfiles);
    let limit = [space, tenant, Some(&system)]
        .into_iter()
        .flatten()
        .filter_map(|holder| holder.get("callProfile").and_then(|p| Uuid::parse_str(p).ok()))
        .filter_map(|p| store.get(Kind::CallProfile, p))
        .find_map(|profile| profile.get("participantLimit").and_then(|l| l.parse().ok()));
    limit
}

impl Bridge {
    /// Whether one more leg may join `call`.
    pub(super) fn room_for_one_more(&self, call: Uuid) -> Result<(), BridgeError> {
        let c = self.calls.iter().find(|c| c.live.id == call).ok_or(BridgeError::CallDoesNotExist)?;
        let space = c.live.co_space.and_then(|s| self.store.get(Kind::CoSpace, s));
        let tenant = c.live.tenant.and_then(|t| self.store.get(Kind::Tenant, t));
        if call_limit(&*self.store, space.as_ref(), tenant.as_ref()).is_some_and(|limit| self.count_legs(call) >= limit)
        {
            return Err(BridgeError::ParticipantLimitReached);
        }
        let tenant_limit =
            tenant.as_ref().and_then(|t| t.get("participantLimit")).and_then(|l| l.parse::<usize>().ok());
        if let (Some(limit), Some(tenant)) = (tenant_limit, c.live.tenant) {
            let calls: Vec<Uuid> =
                self.calls.iter().filter(|c| c.live.tenant == Some(tenant)).map(|c| c.live.id).collect();
            if self.legs.iter().filter(|l| calls.contains(&l.live.call)).count() >= limit {
                return Err(BridgeError::TenantParticipantLimitReached);
            }
        }
        Ok(())
    }

    /// The call of `space` (made if need be) when it has room for one more
    /// leg; a call made only for this refused leg ends again.
    pub(super) fn call_with_room(&mut self, now: Instant, space: &Object) -> Result<Uuid, BridgeError> {
        let call = self.call_for_space(now, space)?;
        if let Err(e) = self.room_for_one_more(call) {
            tracing::info!("a leg for {} refused: {e}", space.get("name").unwrap_or_default());
            self.end_if_empty(now, call);
            return Err(e);
        }
        Ok(call)
    }
}

/// The SIP answer to a leg the bridge cannot take.
pub(super) fn sip_refusal(e: BridgeError) -> u16 {
    match e {
        BridgeError::ParticipantLimitReached | BridgeError::TenantParticipantLimitReached => 486,
        _ => 503,
    }
}
