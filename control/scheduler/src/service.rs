//! What the meetings API does: create, read, list occurrences, change and
//! delete meetings; make and delete their temporary spaces through the call
//! bridge's API; queue the invitations, updates and cancellations each
//! change sends, in the same store transaction as the change.
//!
//! Nothing half-made is left behind: a temporary space is made first and
//! deleted again if anything after it fails; the meeting and its mails are
//! one store write. Changes are serialised (one at a time) so that two
//! requests on one meeting cannot interleave their space and mail work.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;
use uuid::Uuid;

use confero_store::schema::Kind;
use confero_store::{RecordWrite, Store, StoreError};

use crate::callbridge::{CallBridge, CallBridgeError};
use crate::clock::Clock;
use crate::ical::{self, Details};
use crate::invitation::Template;
use crate::mail::{MailQueue, QueuedMail};
use crate::meeting::{format_local, Access, FieldError, Meeting, Venue};
use crate::recurrence::{End, Occurrence};

/// The store collection meetings live in.
pub const MEETINGS: &str = "meetings";

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name.
    pub name: String,
    /// A web app user (`user` role): sees and changes only their own meetings.
    pub web_user: bool,
}

/// Why an operation failed; each becomes one JSON error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is wrong; the field is named.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// No such meeting (or not the caller's).
    #[error("no such meeting")]
    NotFound,
    /// The call bridge refused or could not be reached; nothing was kept.
    #[error(transparent)]
    CallBridge(#[from] CallBridgeError),
    /// The store failed; nothing was kept.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The meetings service.
pub struct Scheduler {
    store: Arc<dyn Store>,
    bridge: CallBridge,
    mail: Arc<MailQueue>,
    clock: Arc<dyn Clock>,
    /// Every meeting, as stored: lists are served from here.
    meetings: RwLock<HashMap<Uuid, Arc<Meeting>>>,
    /// One change at a time.
    changes: tokio::sync::Mutex<()>,
    /// Where mails' join links (`https://host:port/meeting/...`) point: the web app beside us, else the
    /// first web bridge linked over C2W says where it is.
    web_base: RwLock<Option<String>>,
    /// Fetches invitation templates (`callBrandingProfiles` `invitationTemplate`).
    http: reqwest::Client,
}

/// How long an invitation template may take to fetch before the built-in
/// wording is used.
const TEMPLATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One occurrence of a meeting in a list.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The meeting.
    pub meeting: Arc<Meeting>,
    /// When.
    pub occurrence: Occurrence,
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(n);
    s.push(char::from(b'1' + rng.gen_range(0..9u8)));
    for _ in 1..n {
        s.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    s
}

/// Whether a JID names the local web user `user`: the whole JID, or its
/// part before `@` (the rule the web app's "My spaces" follows).
fn jid_names_user(jid: &str, user: &str) -> bool {
    let jid = jid.trim();
    jid.eq_ignore_ascii_case(user) || jid.split_once('@').is_some_and(|(local, _)| local.eq_ignore_ascii_case(user))
}

/// The spaces a web user may schedule in: those they own (`ownerJid`) or
/// are a member of (`coSpaceUsers`), as (id, name).
pub fn spaces_of(store: &dyn Store, user: &str) -> Vec<(Uuid, String)> {
    store
        .all(Kind::CoSpace, None)
        .into_iter()
        .filter(|space| {
            space.get("ownerJid").is_some_and(|j| jid_names_user(j, user))
                || store
                    .all(Kind::CoSpaceUser, Some(space.id))
                    .iter()
                    .any(|m| m.get("userJid").is_some_and(|j| jid_names_user(j, user)))
        })
        .map(|space| (space.id, space.get("name").unwrap_or("").to_string()))
        .collect()
}

/// The `users` objects naming web user `user` by their `userJid`.
fn users_named(store: &dyn Store, user: &str) -> Vec<confero_store::Object> {
    store
        .all(Kind::User, None)
        .into_iter()
        .filter(|u| u.get("userJid").is_some_and(|j| jid_names_user(j, user)))
        .collect()
}

/// Whether web user `user` may make spaces: not when the user profile of a
/// `users` object naming them says `canCreateCoSpaces=false`.
pub fn may_create_spaces(store: &dyn Store, user: &str) -> bool {
    users_named(store, user).iter().all(|u| confero_api::user_policy::UserPolicy::of(store, u).can_create_co_spaces)
}

/// The templates a web user may schedule from: those assigned to them
/// (`users/<id>/usercoSpaceTemplates` of the `users` object whose `userJid`
/// names them) — none when their user profile forbids making spaces — or
/// `None` when no `users` object names them (a local account): then every
/// template.
pub fn templates_of(store: &dyn Store, user: &str) -> Option<Vec<Uuid>> {
    let users = users_named(store, user);
    if users.is_empty() {
        return None;
    }
    if !may_create_spaces(store, user) {
        return Some(Vec::new());
    }
    Some(
        users
            .iter()
            .flat_map(|u| store.all(Kind::UserCoSpaceTemplate, Some(u.id)))
            .filter_map(|a| a.get("coSpaceTemplate").and_then(|t| Uuid::parse_str(t).ok()))
            .collect(),
    )
}

/// Tries of a create whose random call ID or URI was taken.
const CLAIM_TRIES: usize = 4;

impl Scheduler {
    /// The service over `store`, making spaces through `bridge`, queueing
    /// mails for `mail`; meetings are loaded from the store.
    pub fn new(
        store: Arc<dyn Store>,
        bridge: CallBridge,
        mail: Arc<MailQueue>,
        clock: Arc<dyn Clock>,
        web_base: Option<String>,
    ) -> Result<Arc<Scheduler>, StoreError> {
        let mut meetings = HashMap::new();
        for (id, body) in store.records(MEETINGS)? {
            let parsed = serde_json::from_str::<Value>(&body).map_err(|e| e.to_string()).and_then(|v| {
                let owner = v.get("owner").and_then(Value::as_str).unwrap_or("").to_string();
                Meeting::from_json(&v, id, &owner, true).map_err(|e| e.to_string())
            });
            match parsed {
                Ok(m) => {
                    meetings.insert(id, Arc::new(m));
                }
                Err(e) => tracing::warn!("scheduler: stored meeting {id} unreadable, skipped: {e}"),
            }
        }
        tracing::info!("scheduler: {} meetings loaded", meetings.len());
        Ok(Arc::new(Scheduler {
            store,
            bridge,
            mail,
            clock,
            meetings: RwLock::new(meetings),
            changes: tokio::sync::Mutex::new(()),
            web_base: RwLock::new(web_base),
            http: reqwest::Client::new(),
        }))
    }

    /// The call bridge's API, as the scheduler's own API user.
    pub fn call_bridge(&self) -> &CallBridge {
        &self.bridge
    }

    /// A linked web bridge's address (`https://host:port`): mails' join
    /// links use it when no web app runs beside the scheduler.
    pub fn web_address_seen(&self, address: &str) {
        let mut base = self.web_base.write().unwrap_or_else(|p| p.into_inner());
        if base.is_none() {
            *base = Some(address.trim_end_matches('/').to_string());
        }
    }

    /// The store the service reads templates and spaces from.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock the service runs on.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn cached(&self, id: Uuid) -> Option<Arc<Meeting>> {
        self.meetings.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    fn visible(&self, caller: &Caller, id: Uuid) -> Result<Arc<Meeting>, ServiceError> {
        match self.cached(id) {
            Some(m) if !caller.web_user || m.owner == caller.name => Ok(m),
            _ => Err(ServiceError::NotFound),
        }
    }

    /// One meeting.
    pub fn get(&self, caller: &Caller, id: Uuid) -> Result<Arc<Meeting>, ServiceError> {
        self.visible(caller, id)
    }

    /// The occurrences overlapping `[from, until)` of the meetings the caller
    /// may see, in start order, at most `max`, with how many there are in all.
    pub fn list(&self, caller: &Caller, from: DateTime<Utc>, until: DateTime<Utc>, max: usize) -> (usize, Vec<Listed>) {
        let meetings = self.meetings.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for m in meetings.values() {
            if caller.web_user && m.owner != caller.name {
                continue;
            }
            for occurrence in m.schedule.occurrences(from, until, usize::MAX) {
                out.push(Listed { meeting: m.clone(), occurrence });
            }
        }
        drop(meetings);
        out.sort_by_key(|l| (l.occurrence.start, l.meeting.id));
        let total = out.len();
        out.truncate(max);
        (total, out)
    }

    /// Checks what a meeting refers to: its space or template, its roles and passcodes.
    fn check_references(&self, caller: &Caller, m: &Meeting) -> Result<(), FieldError> {
        let roles_of = |template: Uuid| -> Vec<Uuid> {
            self.store.all(Kind::AccessMethodTemplate, Some(template)).iter().map(|o| o.id).collect()
        };
        let allowed: Option<Vec<Uuid>> = match m.venue {
            Venue::Space(id) => {
                if self.store.get(Kind::CoSpace, id).is_none() {
                    return Err(FieldError::new("coSpace", "coSpaceDoesNotExist"));
                }
                // A web user schedules only in their own spaces: the
                // invitation would hand out the space's passcode.
                if caller.web_user && !spaces_of(&*self.store, &caller.name).iter().any(|(s, _)| *s == id) {
                    return Err(FieldError::new("coSpace", "coSpaceDoesNotExist"));
                }
                None
            }
            Venue::Template { template, .. } => {
                if self.store.get(Kind::CoSpaceTemplate, template).is_none() {
                    return Err(FieldError::new("coSpaceTemplate", "coSpaceTemplateDoesNotExist"));
                }
                if caller.web_user && !may_create_spaces(&*self.store, &caller.name) {
                    return Err(FieldError::new(
                        "coSpaceTemplate",
                        "the user's profile does not allow creating spaces",
                    ));
                }
                if caller.web_user
                    && templates_of(&*self.store, &caller.name).is_some_and(|assigned| !assigned.contains(&template))
                {
                    return Err(FieldError::new("coSpaceTemplate", "not assigned to this user"));
                }
                Some(roles_of(template))
            }
        };
        for (i, a) in m.attendees.iter().enumerate() {
            let known = match &allowed {
                Some(roles) => roles.contains(&a.access_method_template),
                None => self.store.get(Kind::AccessMethodTemplate, a.access_method_template).is_some(),
            };
            if !known {
                return Err(FieldError::new(
                    format!("attendees[{i}].accessMethodTemplate"),
                    "accessMethodTemplateDoesNotExist",
                ));
            }
        }
        for amt in m.passcodes.keys() {
            let known = match &allowed {
                Some(roles) => roles.contains(amt),
                None => self.store.get(Kind::AccessMethodTemplate, *amt).is_some(),
            };
            if !known {
                return Err(FieldError::new(format!("passcodes.{amt}"), "accessMethodTemplateDoesNotExist"));
            }
        }
        Ok(())
    }

    /// Makes a temporary space from `template` through the call bridge: the
    /// space, then one access method per access method template. On any
    /// failure the space is deleted again.
    async fn make_space(&self, m: &Meeting, template: Uuid) -> Result<(Uuid, BTreeMap<Uuid, Access>), ServiceError> {
        let Some(tpl) = self.store.get(Kind::CoSpaceTemplate, template) else {
            return Err(FieldError::new("coSpaceTemplate", "coSpaceTemplateDoesNotExist").into());
        };
        let meeting_id = m.id.to_string();
        let mut space = None;
        for attempt in 0.. {
            let call_id = random_digits(10);
            let mut form = vec![
                ("name", m.name.as_str()),
                ("callId", call_id.as_str()),
                ("meetingScheduler", meeting_id.as_str()),
            ];
            for f in ["callProfile", "callLegProfile"] {
                if let Some(v) = tpl.get(f) {
                    form.push((f, v));
                }
            }
            match self.bridge.request("POST", "/api/v1/coSpaces", &form).await {
                Ok(answer) => {
                    space = answer.created;
                    break;
                }
                Err(CallBridgeError::Refused { body, .. })
                    if body.contains("duplicate") && attempt + 1 < CLAIM_TRIES => {}
                Err(e) => return Err(e.into()),
            }
        }
        let Some(space) = space else {
            return Err(CallBridgeError::Unreachable("no Location in the answer to a space's creation".into()).into());
        };
        match self.make_access_methods(m, template, space).await {
            Ok(access) => Ok((space, access)),
            Err(e) => {
                self.delete_space(space).await;
                Err(e)
            }
        }
    }

    async fn make_access_methods(
        &self,
        m: &Meeting,
        template: Uuid,
        space: Uuid,
    ) -> Result<BTreeMap<Uuid, Access>, ServiceError> {
        let path = format!("/api/v1/coSpaces/{space}/accessMethods");
        let mut access = BTreeMap::new();
        for amt in self.store.all(Kind::AccessMethodTemplate, Some(template)) {
            let mut made = None;
            for attempt in 0.. {
                let uri = amt.get("uriGenerator").map(|g| g.replacen('$', &random_digits(9), 1));
                let call_id = (amt.get("generateUniqueCallId") == Some("true")).then(|| random_digits(10));
                let mut form: Vec<(&str, &str)> = Vec::new();
                if let Some(n) = amt.get("name") {
                    form.push(("name", n));
                }
                if let Some(u) = &uri {
                    form.push(("uri", u));
                }
                if let Some(c) = &call_id {
                    form.push(("callId", c));
                }
                if let Some(p) = amt.get("callLegProfile") {
                    form.push(("callLegProfile", p));
                }
                let passcode = m.passcodes.get(&amt.id).cloned();
                if let Some(p) = &passcode {
                    form.push(("passcode", p));
                }
                match self.bridge.request("POST", &path, &form).await {
                    Ok(answer) => {
                        made = Some(Access { id: answer.created, uri, call_id, passcode });
                        break;
                    }
                    Err(CallBridgeError::Refused { body, .. })
                        if body.contains("duplicate") && attempt + 1 < CLAIM_TRIES => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(a) = made {
                access.insert(amt.id, a);
            }
        }
        Ok(access)
    }

    /// Deletes a space through the call bridge; one already gone is fine.
    pub async fn delete_space(&self, space: Uuid) -> bool {
        match self.bridge.request("DELETE", &format!("/api/v1/coSpaces/{space}"), &[]).await {
            Ok(_) | Err(CallBridgeError::Refused { status: 404, .. }) => true,
            Err(e) => {
                tracing::warn!("scheduler: could not delete space {space}: {e}");
                false
            }
        }
    }

    /// What the invitation says to one role, worded by `template`.
    fn details(&self, m: &Meeting, email: &str, role: Uuid, template: &Template) -> Details {
        let access = match m.venue {
            Venue::Space(id) => self
                .store
                .get(Kind::CoSpace, id)
                .map(|s| Access {
                    id: None,
                    uri: s.get("uri").map(str::to_string),
                    call_id: s.get("callId").map(str::to_string),
                    passcode: s.get("passcode").map(str::to_string),
                })
                .unwrap_or_default(),
            Venue::Template { .. } => m.access.get(&role).cloned().unwrap_or_default(),
        };
        let secret = access
            .id
            .zip(m.space())
            .and_then(|(am, _)| self.store.get(Kind::AccessMethod, am))
            .and_then(|o| o.get("secret").map(str::to_string));
        let s = &m.schedule;
        let repeats = s.recurrence.as_ref().map(|r| {
            let end = match r.end {
                End::Count(n) => format!(", {n} times"),
                End::Until(d) => format!(", until {d}"),
                End::Never => String::new(),
            };
            format!("{} every {}{end}", r.frequency.as_str(), r.interval)
        });
        let base = self.web_base.read().unwrap_or_else(|p| p.into_inner()).clone();
        let web_link = match (&access.call_id, base, &secret) {
            (Some(c), Some(base), Some(sec)) => Some(format!("{base}/meeting/{c}?secret={sec}")),
            (Some(c), Some(base), None) => Some(format!("{base}/meeting/{c}")),
            _ => None,
        };
        let value = |name: &str| -> Option<String> {
            match name {
                "name" => Some(m.name.clone()),
                "organizer" => m.organizer.clone(),
                "attendee" => Some(email.to_string()),
                "start" => Some(s.start.format("%a %d %b %Y %H:%M").to_string()),
                "end" => Some(s.end.format("%H:%M").to_string()),
                "time_zone" => Some(s.zone.name().to_string()),
                "repeats" => repeats.clone(),
                "uri" => access.uri.clone(),
                "call_id" => access.call_id.clone(),
                "web_link" => web_link.clone(),
                "passcode" => access.passcode.clone(),
                _ => None,
            }
        };
        Details {
            attendee: email.to_string(),
            organizer: m.organizer.as_ref().filter(|o| o.contains('@')).cloned(),
            location: access.uri.clone(),
            description: template.render(&value),
        }
    }

    /// The wording of `m`'s invitations: the `invitationTemplate` of the
    /// call branding profile of its space (the space's own, else its
    /// tenant's, else `system/profiles`'), fetched now; the built-in wording
    /// when none is named or it cannot be used (said in the log).
    async fn invitation_template(&self, m: &Meeting) -> Template {
        let Some(url) = self.invitation_template_url(m) else { return Template::default() };
        match crate::invitation::fetch(&self.http, &url, TEMPLATE_TIMEOUT).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("scheduler: invitation template {url} not used ({e}); the built-in wording is");
                Template::default()
            }
        }
    }

    fn invitation_template_url(&self, m: &Meeting) -> Option<String> {
        let space = m.space().and_then(|id| self.store.get(Kind::CoSpace, id));
        let tenant = space
            .as_ref()
            .and_then(|s| s.get("tenant"))
            .and_then(|t| Uuid::parse_str(t).ok())
            .and_then(|t| self.store.get(Kind::Tenant, t));
        let system = self.store.singleton(Kind::SystemProfiles);
        let profile = [space.as_ref(), tenant.as_ref(), Some(&system)]
            .into_iter()
            .flatten()
            .find_map(|holder| holder.get("callBrandingProfile"))
            .and_then(|p| Uuid::parse_str(p).ok())
            .and_then(|p| self.store.get(Kind::CallBrandingProfile, p))?;
        profile.get("invitationTemplate").map(str::to_string)
    }

    fn request_mails(&self, m: &Meeting, subject: &str, template: &Template, now: DateTime<Utc>) -> Vec<QueuedMail> {
        m.attendees
            .iter()
            .map(|a| {
                let details = self.details(m, &a.email, a.access_method_template, template);
                QueuedMail {
                    to: a.email.clone(),
                    subject: format!("{subject}: {}", m.name),
                    text: details.description.clone(),
                    calendar: ical::request(m, &details, now),
                    method: "REQUEST".into(),
                    attempts: 0,
                    not_before: now,
                }
            })
            .collect()
    }

    fn cancel_mails(
        &self,
        m: &Meeting,
        attendees: &[crate::meeting::Attendee],
        occurrence: Option<chrono::NaiveDateTime>,
        template: &Template,
        now: DateTime<Utc>,
    ) -> Vec<QueuedMail> {
        attendees
            .iter()
            .map(|a| {
                let details = self.details(m, &a.email, a.access_method_template, template);
                let what = match occurrence {
                    Some(o) => format!("Cancelled: {} on {}", m.name, format_local(o)),
                    None => format!("Cancelled: {}", m.name),
                };
                QueuedMail {
                    to: a.email.clone(),
                    subject: what.clone(),
                    text: format!("{what}\n"),
                    calendar: ical::cancel(m, &details, occurrence, now),
                    method: "CANCEL".into(),
                    attempts: 0,
                    not_before: now,
                }
            })
            .collect()
    }

    /// Stores `meeting` (or deletes `delete`) and queues `mails`, in one write.
    async fn commit(
        &self,
        meeting: Option<&Meeting>,
        delete: Option<Uuid>,
        mails: Vec<QueuedMail>,
    ) -> Result<(), StoreError> {
        let mut writes: Vec<RecordWrite> = mails.iter().map(QueuedMail::write).collect();
        if let Some(m) = meeting {
            writes.push(RecordWrite { collection: MEETINGS, id: m.id, body: Some(m.to_json(true).to_string()) });
        }
        if let Some(id) = delete {
            writes.push(RecordWrite { collection: MEETINGS, id, body: None });
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.write_records(&writes))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))??;
        let mut cache = self.meetings.write().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = meeting {
            cache.insert(m.id, Arc::new(m.clone()));
        }
        if let Some(id) = delete {
            cache.remove(&id);
        }
        drop(cache);
        if !mails.is_empty() {
            self.mail.wake();
        }
        Ok(())
    }

    fn parse(&self, caller: &Caller, body: &Value, id: Uuid) -> Result<Meeting, FieldError> {
        let mut m = Meeting::from_json(body, id, &caller.name, false)?;
        if caller.web_user {
            // A web user schedules as themselves.
            m.organizer = Some(caller.name.clone());
        }
        self.check_references(caller, &m)?;
        Ok(m)
    }

    /// Creates a meeting: its temporary space if it has a template, then
    /// the meeting and one invitation per attendee.
    pub async fn create(&self, caller: &Caller, body: &Value) -> Result<Arc<Meeting>, ServiceError> {
        let mut m = self.parse(caller, body, Uuid::new_v4())?;
        let _one_at_a_time = self.changes.lock().await;
        let made = if let Venue::Template { template, .. } = m.venue {
            let (space, access) = self.make_space(&m, template).await?;
            m.venue = Venue::Template { template, made: Some(space) };
            m.access = access;
            Some(space)
        } else {
            None
        };
        let template = self.invitation_template(&m).await;
        let now = self.clock.now();
        let mails = self.request_mails(&m, "Invitation", &template, now);
        if let Err(e) = self.commit(Some(&m), None, mails).await {
            if let Some(space) = made {
                self.delete_space(space).await;
            }
            return Err(e.into());
        }
        tracing::info!("scheduler: meeting {} \"{}\" created by {}", m.id, m.name, caller.name);
        Ok(Arc::new(m))
    }

    /// Changes a meeting: attendees get an update with SEQUENCE raised (a
    /// change that only cancels occurrences goes out as CANCELs of those
    /// occurrences instead); attendees no longer invited get a cancellation.
    pub async fn update(&self, caller: &Caller, id: Uuid, body: &Value) -> Result<Arc<Meeting>, ServiceError> {
        let _one_at_a_time = self.changes.lock().await;
        let old = self.visible(caller, id)?;
        let mut m = self.parse(caller, body, id)?;
        m.owner = old.owner.clone();
        if m.organizer.is_none() {
            m.organizer = old.organizer.clone();
        }
        m.sequence = old.sequence + 1;
        let mut made = None;
        let mut old_space = None;
        match (&m.venue, &old.venue) {
            (Venue::Template { template, .. }, Venue::Template { template: was, made: Some(space) })
                if template == was && m.passcodes == old.passcodes =>
            {
                m.venue = Venue::Template { template: *template, made: Some(*space) };
                m.access = old.access.clone();
                if m.name != old.name {
                    let path = format!("/api/v1/coSpaces/{space}");
                    if let Err(e) = self.bridge.request("PUT", &path, &[("name", m.name.as_str())]).await {
                        tracing::warn!("scheduler: renaming space {space}: {e}");
                    }
                }
            }
            (Venue::Template { template, .. }, _) => {
                let template = *template;
                let (space, access) = self.make_space(&m, template).await?;
                m.venue = Venue::Template { template, made: Some(space) };
                m.access = access;
                made = Some(space);
                old_space = old.temporary_space();
            }
            (Venue::Space(_), _) => old_space = old.temporary_space(),
        }
        let template = self.invitation_template(&m).await;
        let now = self.clock.now();
        let newly_cancelled: Vec<chrono::NaiveDateTime> = m
            .schedule
            .exceptions
            .iter()
            .filter(|e| e.moved_to.is_none())
            .filter(|e| !old.schedule.exceptions.iter().any(|o| o.occurrence == e.occurrence && o.moved_to.is_none()))
            .map(|e| e.occurrence)
            .collect();
        // Only cancellations changed: the cancellations say it all.
        let mut without = m.clone();
        without.schedule.exceptions.retain(|e| !newly_cancelled.contains(&e.occurrence));
        without.sequence = old.sequence;
        let only_cancellations = !newly_cancelled.is_empty() && without == *old;
        // A change that only cancels occurrences goes out as their CANCELs;
        // any other goes out as the updated series, whose EXDATEs carry the
        // cancellations with it.
        let mut mails = Vec::new();
        if only_cancellations {
            for o in &newly_cancelled {
                mails.extend(self.cancel_mails(&m, &m.attendees, Some(*o), &template, now));
            }
        } else {
            mails.extend(self.request_mails(&m, "Updated invitation", &template, now));
        }
        let gone: Vec<_> =
            old.attendees.iter().filter(|a| !m.attendees.iter().any(|n| n.email == a.email)).cloned().collect();
        mails.extend(self.cancel_mails(&m, &gone, None, &template, now));
        if let Err(e) = self.commit(Some(&m), None, mails).await {
            if let Some(space) = made {
                self.delete_space(space).await;
            }
            return Err(e.into());
        }
        if let Some(space) = old_space {
            self.delete_space(space).await;
        }
        tracing::info!("scheduler: meeting {} changed (sequence {})", m.id, m.sequence);
        Ok(Arc::new(m))
    }

    /// Deletes a meeting: its temporary space goes, attendees get a cancellation.
    pub async fn delete(&self, caller: &Caller, id: Uuid) -> Result<(), ServiceError> {
        let _one_at_a_time = self.changes.lock().await;
        let old = self.visible(caller, id)?;
        if let Some(space) = old.temporary_space() {
            if !self.delete_space(space).await {
                return Err(CallBridgeError::Unreachable(format!("space {space} could not be deleted")).into());
            }
        }
        let mut m = (*old).clone();
        m.sequence += 1;
        let template = self.invitation_template(&m).await;
        let now = self.clock.now();
        let mails = self.cancel_mails(&m, &m.attendees, None, &template, now);
        self.commit(None, Some(id), mails).await?;
        tracing::info!("scheduler: meeting {id} deleted");
        Ok(())
    }

    /// The clean-up (see [`crate::cleanup`]): deletes the temporary spaces,
    /// and the meetings, whose last occurrence ended 24 h or more before `now`.
    pub async fn clean_up(&self, now: DateTime<Utc>) -> usize {
        let _one_at_a_time = self.changes.lock().await;
        let due: Vec<Arc<Meeting>> = {
            let meetings = self.meetings.read().unwrap_or_else(|p| p.into_inner());
            meetings.values().filter(|m| crate::cleanup::is_due(m, now)).cloned().collect()
        };
        let mut removed = 0;
        for m in due {
            if let Some(space) = m.temporary_space() {
                if !self.delete_space(space).await {
                    continue;
                }
                tracing::info!("scheduler: clean-up deleted temporary space {space} of meeting {}", m.id);
            }
            if let Err(e) = self.commit(None, Some(m.id), Vec::new()).await {
                tracing::warn!("scheduler: clean-up could not forget meeting {}: {e}", m.id);
                continue;
            }
            removed += 1;
        }
        removed
    }
}
