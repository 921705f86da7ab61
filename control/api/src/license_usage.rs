//! `system/MPLicenseUsage`: what CMS calls multiparty license usage
//! snapshots. Every five minutes the call bridge counts its live calls by
//! the license each would take (audio-only, point-to-point, full; personal
//! ones when the space's owner holds a personal license, which nobody does
//! here) and keeps the snapshot in the store, so Cisco Meeting Management
//! and scripts can read usage over time (`startTime`, `endTime`, `hostId`).
//! Snapshots are kept 90 days.
//!
//! [`snapshot`] is pure (live calls and legs in, counts out); [`run`] is the
//! thin task that takes one per interval and writes it.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use confero_store::form::Form;
use confero_store::RecordWrite;

use crate::bridge::{LiveCall, LiveCallLeg};
use crate::cdr::cms_time;
use crate::failure::Failure;
use crate::xml::XmlWriter;
use crate::{page_of, Api, Reply};

/// The store collection snapshots are kept in.
pub const COLLECTION: &str = "licenseUsage";
/// How often a snapshot is taken, as CMS does.
pub const INTERVAL: Duration = Duration::from_secs(300);
/// How long snapshots are kept.
pub const KEPT: Duration = Duration::from_secs(90 * 24 * 3600);

/// One snapshot: licenses in use by kind, each call counted once (one call
/// bridge: no normalising over bridges yet).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// When it was taken, Unix seconds.
    pub time: u64,
    /// The call bridge that took it (`system/status`'s `hostId`).
    pub host: Uuid,
    /// Personal licenses in use.
    #[serde(default)]
    pub pmp: f64,
    /// Personal licenses assigned to users.
    #[serde(default)]
    pub pmp_assigned: f64,
    /// Shared licenses taken by audio-only calls.
    #[serde(default)]
    pub smp_aud: f64,
    /// Shared licenses taken by point-to-point calls with video.
    #[serde(default)]
    pub smp_pt_p: f64,
    /// Shared licenses taken by other calls.
    #[serde(default)]
    pub smp_full: f64,
    /// Calls being recorded.
    #[serde(default)]
    pub rec: f64,
    /// Calls being streamed.
    #[serde(default)]
    pub str: f64,
}

/// Who holds personal licenses: the spaces whose owner does, and how many
/// users have one assigned.
#[derive(Debug, Clone, Default)]
pub struct PersonalLicenses {
    /// Spaces whose `ownerJid` is a user holding a license.
    pub spaces: std::collections::HashSet<Uuid>,
    /// Users holding a license.
    pub assigned: usize,
}

impl PersonalLicenses {
    /// Read from the store: users whose profile says `hasLicense`
    /// ([`crate::user_policy::UserPolicy`]) and the spaces they own.
    pub fn of(store: &dyn confero_store::Store) -> PersonalLicenses {
        let licensed = crate::user_policy::UserPolicy::licensed(store);
        let jids: Vec<String> = licensed.iter().filter_map(|u| u.get("userJid")).map(str::to_ascii_lowercase).collect();
        let spaces = store
            .all(confero_store::schema::Kind::CoSpace, None)
            .into_iter()
            .filter(|s| s.get("ownerJid").is_some_and(|j| jids.contains(&j.trim().to_ascii_lowercase())))
            .map(|s| s.id)
            .collect();
        PersonalLicenses { spaces, assigned: licensed.len() }
    }
}

/// Counts `calls` by license: a call with no legs takes none; one in a
/// space whose owner holds a personal license takes that; of the others,
/// one where no leg has video is audio-only, one with video and two legs
/// or fewer point-to-point, the rest a full shared license.
pub fn snapshot(
    time: SystemTime,
    host: Uuid,
    calls: &[LiveCall],
    legs: &[LiveCallLeg],
    personal: &PersonalLicenses,
) -> Snapshot {
    let mut s = Snapshot { time: unix(time), host, pmp_assigned: personal.assigned as f64, ..Snapshot::default() };
    for call in calls {
        let mine: Vec<&LiveCallLeg> = legs.iter().filter(|l| l.call == call.id).collect();
        if mine.is_empty() {
            continue;
        }
        if call.co_space.is_some_and(|space| personal.spaces.contains(&space)) {
            s.pmp += 1.0;
            continue;
        }
        let video = mine.iter().any(|l| l.rx_video.is_some() || l.tx_video.is_some());
        if !video {
            s.smp_aud += 1.0;
        } else if mine.len() <= 2 {
            s.smp_pt_p += 1.0;
        } else {
            s.smp_full += 1.0;
        }
    }
    s
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Takes a snapshot every `interval` until `shutdown` resolves, and drops
/// those older than [`KEPT`]. The first is taken one interval after start.
pub async fn run(api: std::sync::Arc<Api>, interval: Duration, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        let api = api.clone();
        // The store commits to disk: off the async threads.
        let written = tokio::task::spawn_blocking(move || take(&api, SystemTime::now())).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("license usage snapshot not kept: {e}");
        }
    }
}

/// Takes and keeps one snapshot at `now`, dropping expired ones.
pub fn take(api: &Api, now: SystemTime) -> Result<(), confero_store::StoreError> {
    let personal = PersonalLicenses::of(&*api.store);
    let s = snapshot(now, api.host_id, &api.bridge.calls(), &api.bridge.call_legs(), &personal);
    let mut writes = vec![RecordWrite {
        collection: COLLECTION,
        id: Uuid::new_v4(),
        body: Some(serde_json::to_string(&s).map_err(|e| confero_store::StoreError::Backend(e.to_string()))?),
    }];
    let oldest = unix(now).saturating_sub(KEPT.as_secs());
    for (id, body) in api.store.records(COLLECTION)? {
        let expired = serde_json::from_str::<Snapshot>(&body).map_or(true, |old| old.time < oldest);
        if expired {
            writes.push(RecordWrite { collection: COLLECTION, id, body: None });
        }
    }
    api.store.write_records(&writes)
}

/// The kept snapshots, newest first.
fn kept(api: &Api) -> Vec<Snapshot> {
    let mut all: Vec<Snapshot> = api
        .store
        .records(COLLECTION)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, body)| serde_json::from_str(&body).ok())
        .collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.time));
    all
}

fn time_param(query: &Form, name: &'static str) -> Result<Option<u64>, Failure> {
    match query.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(t.unix_timestamp().max(0) as u64))
            .map_err(|_| Failure::parameter(name, "invalidValue")),
    }
}

/// `GET system/MPLicenseUsage`: snapshots newest first, within `startTime`
/// and `endTime` (inclusive, RFC 3339) and of `hostId` if given; each entry
/// shows only the counts that are not zero, as CMS does.
pub fn list(api: &Api, query: &Form) -> Result<Reply, Failure> {
    let page = page_of(query)?;
    let (from, until) = (time_param(query, "startTime")?, time_param(query, "endTime")?);
    let host = match query.get("hostId").map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(Uuid::parse_str(v).map_err(|_| Failure::parameter("hostId", "invalidValue"))?),
    };
    let chosen: Vec<Snapshot> = kept(api)
        .into_iter()
        .filter(|s| from.is_none_or(|f| s.time >= f) && until.is_none_or(|u| s.time <= u))
        .filter(|s| host.is_none_or(|h| s.host == h))
        .collect();
    let mut w = XmlWriter::new();
    w.open("MPLicenseUsage", &[("total", &chosen.len().to_string())]);
    for s in chosen.iter().skip(page.offset).take(page.limit) {
        let time = cms_time(SystemTime::UNIX_EPOCH + Duration::from_secs(s.time));
        w.open("entry", &[("time", &time)]);
        let counts = [
            ("pmp", s.pmp),
            ("pmpAssigned", s.pmp_assigned),
            ("smpAud", s.smp_aud),
            ("smpPtP", s.smp_pt_p),
            ("smpFull", s.smp_full),
            ("rec", s.rec),
            ("str", s.str),
        ];
        for (name, value) in counts {
            if value > 0.0 {
                w.text(name, &format!("{value:.2}"));
            }
        }
        w.close("entry");
    }
    w.close("MPLicenseUsage");
    Ok(Reply::xml(w.finish()))
}

/// `GET system/MPLicenseUsage/knownHosts`: this call bridge, and any other
/// whose snapshots the store holds.
pub fn known_hosts(api: &Api, query: &Form) -> Result<Reply, Failure> {
    let page = page_of(query)?;
    let mut hosts = vec![api.host_id];
    for s in kept(api) {
        if !hosts.contains(&s.host) {
            hosts.push(s.host);
        }
    }
    let mut w = XmlWriter::new();
    w.open("knownHosts", &[("total", &hosts.len().to_string())]);
    for h in hosts.iter().skip(page.offset).take(page.limit) {
        w.open("host", &[("id", &h.to_string())]).close("host");
    }
    w.close("knownHosts");
    Ok(Reply::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::{Direction, LegState, StreamStatus};

    fn call(n: u128) -> LiveCall {
        LiveCall {
            id: Uuid::from_u128(n),
            name: String::new(),
            co_space: None,
            call_correlator: Uuid::nil(),
            tenant: None,
            owner_name: None,
            duration: Duration::ZERO,
            num_call_legs: 0,
            max_call_legs: 0,
            num_participants_local: 0,
            config: Default::default(),
        }
    }

    fn leg(call: u128, video: bool) -> LiveCallLeg {
        LiveCallLeg {
            id: Uuid::new_v4(),
            call: Uuid::from_u128(call),
            participant: Uuid::new_v4(),
            name: String::new(),
            remote_party: String::new(),
            original_remote_party: String::new(),
            direction: Direction::Incoming,
            state: LegState::Connected,
            duration: Duration::ZERO,
            encrypted_media: false,
            cipher_suite: None,
            sip_call_id: None,
            config: Default::default(),
            rx_audio: Some(StreamStatus::default()),
            tx_audio: Some(StreamStatus::default()),
            rx_video: None,
            tx_video: video.then(StreamStatus::default),
            layout: None,
            refusals: None,
            deactivated: false,
            camera_control_available: false,
        }
    }

    #[test]
    fn calls_are_counted_by_the_license_they_take() {
        let calls: Vec<LiveCall> = (1..=4).map(call).collect();
        let legs = vec![
            leg(1, false),
            leg(1, false),
            leg(1, false),
            leg(2, true),
            leg(2, false),
            leg(3, true),
            leg(3, true),
            leg(3, false),
        ];
        let host = Uuid::from_u128(9);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(60);
        let s = snapshot(at, host, &calls, &legs, &PersonalLicenses::default());
        assert_eq!((s.smp_aud, s.smp_pt_p, s.smp_full, s.pmp), (1.0, 1.0, 1.0, 0.0), "call 4 has no legs");
        assert_eq!((s.time, s.host), (60, host));
        // Call 3's space is owned by a licensed user: a personal license.
        let mut calls = calls;
        calls[2].co_space = Some(Uuid::from_u128(33));
        let personal = PersonalLicenses { spaces: [Uuid::from_u128(33)].into_iter().collect(), assigned: 2 };
        let s = snapshot(at, host, &calls, &legs, &personal);
        assert_eq!((s.smp_aud, s.smp_pt_p, s.smp_full, s.pmp, s.pmp_assigned), (1.0, 1.0, 0.0, 1.0, 2.0));
    }
}
