//! `ldapSyncs`: importing the users of LDAP sources as CMS does. For each
//! source: search its server under `baseDn` with `filter`, make one `users`
//! object per entry from the source's mapping (userJid, name, email from
//! `mail`, cdrTag, authenticationId; the source's tenant and user profile),
//! a personal space per user when the mapping makes a URI or call ID (the
//! user its owner and a member), the templates of the
//! `ldapUserCoSpaceTemplateSources` naming the source, and remove the users
//! (and the spaces made for them) whose entries are gone.
//!
//! Which objects a sync made, and from which entry, is kept in the store's
//! `ldapUsers` records ([`ImportedUser`]), keyed by the user's id: an entry
//! is matched by its directory identity (`entryUUID`, `nsUniqueId`,
//! `objectGUID`) or else its DN, so a rename updates a user in place and its
//! id, templates and meetings stay. Nothing is removed unless the whole
//! search succeeded.
//!
//! A sync runs on a thread of its own, one at a time (others wait as
//! `pending`), and reports `state`, `failureReason`, `numUsersImported` and
//! `numLdapSourcesComplete` on its object; with `removeWhenFinished` (the
//! default, as in CMS) the object is deleted once it has finished.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use confero_store::form::Form;
use confero_store::schema::{check_value, spec, validate_changes, Change, Kind};
use confero_store::{Object, RecordWrite, Store, StoreError};

use crate::directory::{self, Entry, Server};
use crate::template::Template;

/// The store collection of [`ImportedUser`] records.
pub const COLLECTION: &str = "ldapUsers";

/// What a sync made for one directory entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImportedUser {
    /// The `ldapSources` object that imported it.
    pub source: Uuid,
    /// The entry's identity: its unique id, else its DN, lower-cased.
    pub key: String,
    /// The entry's DN, which sign-in binds as.
    pub dn: String,
    /// The personal space made for the user, if any.
    #[serde(default)]
    pub co_space: Option<Uuid>,
    /// `usercoSpaceTemplates` the sync assigned (from
    /// `ldapUserCoSpaceTemplateSources`), so it removes only its own.
    #[serde(default)]
    pub templates: Vec<Uuid>,
}

/// The `ldapUsers` records, by user id.
pub fn imported_users(store: &dyn Store) -> Vec<(Uuid, ImportedUser)> {
    match store.records(COLLECTION) {
        Ok(records) => {
            records.into_iter().filter_map(|(id, text)| Some((id, serde_json::from_str(&text).ok()?))).collect()
        }
        Err(e) => {
            tracing::warn!("LDAP: reading {COLLECTION}: {e}");
            Vec::new()
        }
    }
}

/// Why a sync failed: the CMS `failureReason` words, and two of ours for a
/// source whose server or mapping was deleted after it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFailure {
    /// The sync names a tenant that is gone.
    TenantDoesNotExist,
    /// The sync names a source that is gone.
    LdapSourceDoesNotExist,
    /// A source's server is gone.
    LdapServerDoesNotExist,
    /// A source's mapping is gone.
    LdapMappingDoesNotExist,
    /// Some entries made a JID, URI or call ID that another object has;
    /// they were skipped, the others imported.
    ClashOccurred,
    /// The directory could not be reached, refused the bind, or failed the
    /// search; or a mapping template does not parse.
    LdapError,
}

impl SyncFailure {
    /// The `failureReason` word.
    pub fn reason(self) -> &'static str {
        match self {
            SyncFailure::TenantDoesNotExist => "tenantDoesNotExist",
            SyncFailure::LdapSourceDoesNotExist => "ldapSourceDoesNotExist",
            SyncFailure::LdapServerDoesNotExist => "ldapServerDoesNotExist",
            SyncFailure::LdapMappingDoesNotExist => "ldapMappingDoesNotExist",
            SyncFailure::ClashOccurred => "clashOccurred",
            SyncFailure::LdapError => "ldapError",
        }
    }
}

/// Syncs run one at a time, as in CMS; a waiting one stays `pending`.
static RUNNING: Mutex<()> = Mutex::new(());

/// Starts sync `sync` (already stored, `pending`) on a thread of its own.
pub fn start(store: Arc<dyn Store>, sync: Uuid) {
    let spawned = std::thread::Builder::new().name("ldap-sync".into()).spawn(move || {
        let _one_at_a_time = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("LDAP sync {sync}: no runtime: {e}");
                report(&*store, sync, &[("state", Some("failed")), ("failureReason", Some("ldapError"))]);
                return;
            }
        };
        let outcome = runtime.block_on(run(&*store, sync));
        finish(&*store, sync, outcome);
    });
    if let Err(e) = spawned {
        tracing::warn!("LDAP sync {sync}: could not start: {e}");
    }
}

/// Starts again the syncs a stopped process left `pending` or
/// `inProgress` (a sync is safe to repeat: it matches entries to the users
/// it made), so none stays unfinished — and undeletable — for ever.
pub fn resume(store: Arc<dyn Store>) {
    for job in store.all(Kind::LdapSync, None) {
        if matches!(job.get("state"), Some("pending" | "inProgress")) {
            tracing::info!("LDAP sync {}: left unfinished by the last run; starting it again", job.id);
            report(&*store, job.id, &[("state", Some("pending"))]);
            start(store.clone(), job.id);
        }
    }
}

/// Writes report fields on the sync object (`None` unsets).
fn report(store: &dyn Store, sync: Uuid, values: &[(&str, Option<&str>)]) {
    let s = spec(Kind::LdapSync);
    let changes: Vec<Change> = values
        .iter()
        .filter_map(|(name, value)| Some(Change { field: s.field(name)?, value: value.map(str::to_string) }))
        .collect();
    match store.update(Kind::LdapSync, sync, &changes) {
        Ok(_) | Err(StoreError::NotFound(_)) => {}
        Err(e) => tracing::warn!("LDAP sync {sync}: could not record its state: {e}"),
    }
}

fn finish(store: &dyn Store, sync: Uuid, outcome: Result<(), SyncFailure>) {
    let remove = store.get(Kind::LdapSync, sync).is_some_and(|o| o.get("removeWhenFinished") != Some("false"));
    match outcome {
        Ok(()) => report(store, sync, &[("state", Some("complete")), ("failureReason", None)]),
        Err(f) => report(store, sync, &[("state", Some("failed")), ("failureReason", Some(f.reason()))]),
    }
    if remove {
        if let Err(e) = store.delete(Kind::LdapSync, sync) {
            tracing::warn!("LDAP sync {sync}: could not remove it when finished: {e}");
        }
    }
}

/// The sources a sync covers: the one it names, its tenant's, or all.
fn sources_of(store: &dyn Store, job: &Object) -> Result<Vec<Object>, SyncFailure> {
    if let Some(id) = job.get("ldapSource") {
        let source = Uuid::parse_str(id).ok().and_then(|id| store.get(Kind::LdapSource, id));
        return source.map(|s| vec![s]).ok_or(SyncFailure::LdapSourceDoesNotExist);
    }
    let all = store.all(Kind::LdapSource, None);
    match job.get("tenant") {
        Some(tenant) => {
            if Uuid::parse_str(tenant).ok().and_then(|id| store.get(Kind::Tenant, id)).is_none() {
                return Err(SyncFailure::TenantDoesNotExist);
            }
            Ok(all.into_iter().filter(|s| s.get("tenant") == Some(tenant)).collect())
        }
        None => Ok(all),
    }
}

async fn run(store: &dyn Store, sync: Uuid) -> Result<(), SyncFailure> {
    let job = store.get(Kind::LdapSync, sync).ok_or(SyncFailure::LdapError)?;
    report(store, sync, &[("state", Some("inProgress"))]);
    let sources = sources_of(store, &job)?;
    let mut imported = 0usize;
    let mut clash = false;
    for (done, source) in sources.iter().enumerate() {
        let outcome = sync_source(store, source).await;
        match outcome {
            Ok(applied) => {
                imported += applied.imported;
                clash |= applied.clashes > 0;
            }
            Err(f) => {
                tracing::warn!("LDAP sync {sync}: source {} failed: {}", source.id, f.reason());
                return Err(f);
            }
        }
        let (n, complete) = (imported.to_string(), (done + 1).to_string());
        report(store, sync, &[("numUsersImported", Some(&n)), ("numLdapSourcesComplete", Some(&complete))]);
    }
    tracing::info!("LDAP sync {sync}: {imported} users from {} sources", sources.len());
    if clash {
        Err(SyncFailure::ClashOccurred)
    } else {
        Ok(())
    }
}

/// The outcome of one source's sync.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Users made or updated.
    pub imported: usize,
    /// Users removed because their entries are gone.
    pub removed: usize,
    /// Entries skipped for a clash (JID, URI or call ID taken).
    pub clashes: usize,
}

/// Searches one source's directory and applies what it found.
pub async fn sync_source(store: &dyn Store, source: &Object) -> Result<Applied, SyncFailure> {
    let server = source
        .get("server")
        .and_then(|id| Uuid::parse_str(id).ok())
        .and_then(|id| store.get(Kind::LdapServer, id))
        .and_then(|o| Server::from_object(&o))
        .ok_or(SyncFailure::LdapServerDoesNotExist)?;
    let mapping = source
        .get("mapping")
        .and_then(|id| Uuid::parse_str(id).ok())
        .and_then(|id| store.get(Kind::LdapMapping, id))
        .ok_or(SyncFailure::LdapMappingDoesNotExist)?;
    let mapping = Mapping::from_object(&mapping).map_err(|_| SyncFailure::LdapError)?;
    let base_dn = source.get("baseDn").unwrap_or("");
    let entries = directory::search(&server, base_dn, source.get("filter").unwrap_or("")).await.map_err(|e| {
        tracing::warn!("LDAP source {}: {e}", source.id);
        SyncFailure::LdapError
    })?;
    Ok(apply(store, source, &mapping, &entries))
}

/// A mapping's templates, parsed.
#[derive(Debug, Default)]
pub struct Mapping {
    jid: Template,
    name: Template,
    cdr_tag: Template,
    authentication_id: Template,
    space_name: Template,
    space_uri: Template,
    space_secondary_uri: Template,
    space_call_id: Template,
}

impl Mapping {
    /// Every `…Mapping` field of an `ldapMappings` object, parsed.
    pub fn from_object(object: &Object) -> Result<Mapping, crate::template::TemplateError> {
        let t = |name: &str| Template::parse(object.get(name).unwrap_or(""));
        Ok(Mapping {
            jid: t("jidMapping")?,
            name: t("nameMapping")?,
            cdr_tag: t("cdrTagMapping")?,
            authentication_id: t("authenticationIdMapping")?,
            space_name: t("coSpaceNameMapping")?,
            space_uri: t("coSpaceUriMapping")?,
            space_secondary_uri: t("coSpaceSecondaryUriMapping")?,
            space_call_id: t("coSpaceCallIdMapping")?,
        })
    }
}

fn fill(template: &Template, entry: &Entry) -> Option<String> {
    if template.is_empty() {
        return None;
    }
    template.expand(|name| entry.first(name)).filter(|v| !v.trim().is_empty())
}

/// Changes setting (or, with `None`, clearing) `values` on an object of
/// `kind`, each checked as a client's would be; `None` when one is refused.
/// CMS's `autoGenerated=true`: made by a sync, so the API may not take it
/// away (a read-only field, set here only).
fn auto_generated(kind: Kind) -> Option<Change> {
    Some(Change { field: spec(kind).field("autoGenerated")?, value: Some("true".into()) })
}

fn changes_for(kind: Kind, values: &[(&str, Option<String>)]) -> Result<Vec<Change>, String> {
    let s = spec(kind);
    let mut changes = Vec::with_capacity(values.len());
    for (name, value) in values {
        let Some(field) = s.field(name) else { continue };
        let value = match value {
            Some(v) => Some(check_value(field, v).map_err(|_| format!("{name} {v:?} is not valid"))?),
            None => None,
        };
        changes.push(Change { field, value });
    }
    Ok(changes)
}

/// Applies a source's entries to the store: users and spaces made or
/// updated, templates assigned, users of entries gone removed.
pub fn apply(store: &dyn Store, source: &Object, mapping: &Mapping, entries: &[Entry]) -> Applied {
    let mut applied = Applied::default();
    let mine: HashMap<String, (Uuid, ImportedUser)> = imported_users(store)
        .into_iter()
        .filter(|(_, r)| r.source == source.id)
        .map(|(id, r)| (r.key.clone(), (id, r)))
        .collect();
    let templates: Vec<Uuid> = store
        .all(Kind::LdapUserCoSpaceTemplateSource, None)
        .into_iter()
        .filter(|t| t.get("ldapSource") == Some(source.id.to_string().as_str()))
        .filter_map(|t| t.get("coSpaceTemplate").and_then(|id| Uuid::parse_str(id).ok()))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    for entry in entries {
        let key = entry.unique_id.clone().unwrap_or_else(|| entry.dn.to_ascii_lowercase());
        // An entry that no longer makes a JID is as good as gone: its user
        // is removed below.
        let Some(jid) = fill(&mapping.jid, entry) else {
            tracing::debug!("LDAP source {}: {} makes no JID; not imported", source.id, entry.dn);
            continue;
        };
        if !seen.insert(key.clone()) {
            continue;
        }
        let previous = mine.get(&key);
        match import_one(store, source, mapping, entry, &jid, previous, &templates) {
            Ok(record) => {
                applied.imported += 1;
                let user = record.0;
                write_record(store, user, Some(&record.1));
            }
            Err(Clash(why)) => {
                tracing::warn!("LDAP source {}: {} not imported: {why}", source.id, entry.dn);
                applied.clashes += 1;
            }
        }
    }
    for (key, (user, record)) in &mine {
        if seen.contains(key) {
            continue;
        }
        remove_user(store, *user, record);
        applied.removed += 1;
    }
    applied
}

/// Why an entry could not be imported (a value taken or not valid).
struct Clash(String);

impl From<StoreError> for Clash {
    fn from(e: StoreError) -> Clash {
        Clash(e.to_string())
    }
}

fn import_one(
    store: &dyn Store,
    source: &Object,
    mapping: &Mapping,
    entry: &Entry,
    jid: &str,
    previous: Option<&(Uuid, ImportedUser)>,
    templates: &[Uuid],
) -> Result<(Uuid, ImportedUser), Clash> {
    let text = |v: Option<&str>| v.map(str::to_string);
    let user_values = [
        ("userJid", Some(jid.to_string())),
        ("name", fill(&mapping.name, entry)),
        ("email", text(entry.first("mail"))),
        ("cdrTag", fill(&mapping.cdr_tag, entry)),
        ("authenticationId", fill(&mapping.authentication_id, entry)),
        ("tenant", text(source.get("tenant"))),
        ("userProfile", text(source.get("userProfile"))),
    ];
    let changes = changes_for(Kind::User, &user_values).map_err(Clash)?;
    let existing = previous.and_then(|(id, r)| store.get(Kind::User, *id).map(|u| (u, r)));
    let old_jid = existing.as_ref().and_then(|(u, _)| u.get("userJid").map(str::to_string));
    let user = match &existing {
        Some((user, _)) => store.update(Kind::User, user.id, &changes)?,
        None => store.create(Kind::User, None, &changes)?,
    };
    let mut record = ImportedUser {
        source: source.id,
        key: entry.unique_id.clone().unwrap_or_else(|| entry.dn.to_ascii_lowercase()),
        dn: entry.dn.clone(),
        co_space: None,
        templates: Vec::new(),
    };
    let old = existing.map(|(_, r)| r.clone());
    // The record is written as soon as the user exists, so a clash on the
    // space below never leaves a user the next sync does not know.
    write_record(
        store,
        user.id,
        Some(&ImportedUser { co_space: old.as_ref().and_then(|r| r.co_space), ..record.clone() }),
    );
    record.co_space = personal_space(
        store,
        source,
        mapping,
        entry,
        &user,
        old_jid.as_deref(),
        old.as_ref().and_then(|r| r.co_space),
    )?;
    record.templates =
        assign_templates(store, user.id, old.as_ref().map(|r| r.templates.as_slice()).unwrap_or(&[]), templates);
    Ok((user.id, record))
}

/// Makes or updates the user's personal space; removes it when the mapping
/// no longer makes one.
fn personal_space(
    store: &dyn Store,
    source: &Object,
    mapping: &Mapping,
    entry: &Entry,
    user: &Object,
    old_jid: Option<&str>,
    previous: Option<Uuid>,
) -> Result<Option<Uuid>, Clash> {
    let jid = user.get("userJid").unwrap_or("");
    let uri = fill(&mapping.space_uri, entry);
    let call_id = fill(&mapping.space_call_id, entry);
    let existing = previous.and_then(|id| store.get(Kind::CoSpace, id));
    if uri.is_none() && call_id.is_none() {
        if let Some(space) = existing {
            store.delete(Kind::CoSpace, space.id)?;
        }
        return Ok(None);
    }
    let text = |v: Option<&str>| v.map(str::to_string);
    let values = [
        ("name", fill(&mapping.space_name, entry)),
        ("uri", uri),
        ("secondaryUri", fill(&mapping.space_secondary_uri, entry)),
        ("callId", call_id),
        ("ownerJid", Some(jid.to_string())),
        ("cdrTag", text(user.get("cdrTag"))),
        ("tenant", text(source.get("tenant"))),
        ("nonMemberAccess", Some(source.get("nonMemberAccess").unwrap_or("true").to_string())),
    ];
    let mut changes = changes_for(Kind::CoSpace, &values).map_err(Clash)?;
    let space = match existing {
        Some(space) => store.update(Kind::CoSpace, space.id, &changes)?,
        None => {
            // Secrets and defaults as a POST makes them.
            let mut all = validate_changes(spec(Kind::CoSpace).fields, &Form::default(), true)
                .map_err(|_| Clash("space defaults".into()))?;
            all.append(&mut changes);
            all.extend(auto_generated(Kind::CoSpace));
            store.create(Kind::CoSpace, None, &all)?
        }
    };
    // The user is the space's member (and only the sync's member is kept in
    // step: one whose JID changed is replaced).
    let members = store.all(Kind::CoSpaceUser, Some(space.id));
    if !members.iter().any(|m| m.get("userJid").is_some_and(|j| j.eq_ignore_ascii_case(jid))) {
        if let Some(old) = old_jid.filter(|o| !o.eq_ignore_ascii_case(jid)) {
            for m in members.iter().filter(|m| m.get("userJid").is_some_and(|j| j.eq_ignore_ascii_case(old))) {
                store.delete(Kind::CoSpaceUser, m.id)?;
            }
        }
        let mut member = changes_for(Kind::CoSpaceUser, &[("userJid", Some(jid.to_string()))]).map_err(Clash)?;
        member.extend(auto_generated(Kind::CoSpaceUser));
        store.create(Kind::CoSpaceUser, Some(space.id), &member)?;
    }
    Ok(Some(space.id))
}

/// Gives the user the templates its source's template sources name, and
/// takes back those the sync gave earlier that no longer apply. Returns what
/// the sync has now given.
fn assign_templates(store: &dyn Store, user: Uuid, given_before: &[Uuid], wanted: &[Uuid]) -> Vec<Uuid> {
    let assigned = store.all(Kind::UserCoSpaceTemplate, Some(user));
    let template_of = |a: &Object| a.get("coSpaceTemplate").and_then(|t| Uuid::parse_str(t).ok());
    for a in &assigned {
        if let Some(t) = template_of(a) {
            if given_before.contains(&t) && !wanted.contains(&t) {
                if let Err(e) = store.delete(Kind::UserCoSpaceTemplate, a.id) {
                    tracing::warn!("LDAP: removing template {t} from user {user}: {e}");
                }
            }
        }
    }
    let mut given = Vec::new();
    for t in wanted {
        if !assigned.iter().any(|a| template_of(a) == Some(*t)) {
            let Ok(mut changes) = changes_for(Kind::UserCoSpaceTemplate, &[("coSpaceTemplate", Some(t.to_string()))])
            else {
                continue;
            };
            changes.extend(auto_generated(Kind::UserCoSpaceTemplate));
            if let Err(e) = store.create(Kind::UserCoSpaceTemplate, Some(user), &changes) {
                tracing::warn!("LDAP: assigning template {t} to user {user}: {e}");
                continue;
            }
        }
        given.push(*t);
    }
    given
}

fn write_record(store: &dyn Store, user: Uuid, record: Option<&ImportedUser>) {
    let text = record.and_then(|r| serde_json::to_string(r).ok());
    if let Err(e) = store.write_records(&[RecordWrite { collection: COLLECTION, id: user, body: text }]) {
        tracing::warn!("LDAP: recording user {user}: {e}");
    }
}

/// Removes a user whose entry is gone, the space made for it, and the record.
fn remove_user(store: &dyn Store, user: Uuid, record: &ImportedUser) {
    if let Some(space) = record.co_space {
        match store.delete(Kind::CoSpace, space) {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => tracing::warn!("LDAP: removing space {space} of user {user}: {e}"),
        }
    }
    match store.delete(Kind::User, user) {
        Ok(()) | Err(StoreError::NotFound(_)) => {}
        Err(e) => {
            tracing::warn!("LDAP: removing user {user}: {e}");
            return;
        }
    }
    write_record(store, user, None);
    tracing::info!("LDAP: removed user {user} ({}), gone from the directory", record.dn);
}

#[cfg(test)]
mod tests {
    use super::*;
    use confero_store::SqliteStore;

    fn entry(uid: &str, unique: &str, number: &str) -> Entry {
        let attrs = [
            ("uid", uid),
            ("cn", &format!("{uid} person")),
            ("mail", &format!("{uid}@example.test")),
            ("employeenumber", number),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect();
        Entry { dn: format!("uid={uid},ou=people,dc=x"), attrs, unique_id: Some(unique.to_string()) }
    }

    fn setup() -> (tempfile::TempDir, Arc<dyn Store>, Object, Mapping) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let source = Object {
            id: Uuid::new_v4(),
            kind: Kind::LdapSource,
            parent: None,
            origin: None,
            seq: 0,
            fields: Default::default(),
        };
        let mapping = Mapping {
            jid: Template::parse("$uid$@example.test").unwrap(),
            name: Template::parse("$cn$").unwrap(),
            space_uri: Template::parse("$uid$.space").unwrap(),
            space_call_id: Template::parse("$employeeNumber$").unwrap(),
            ..Mapping::default()
        };
        (dir, store, source, mapping)
    }

    fn jids(store: &dyn Store) -> Vec<String> {
        let mut j: Vec<String> =
            store.all(Kind::User, None).iter().filter_map(|u| u.get("userJid").map(String::from)).collect();
        j.sort();
        j
    }

    #[test]
    fn a_rename_updates_in_place_and_a_gone_entry_is_removed() {
        let (_dir, store, source, mapping) = setup();
        let applied = apply(&*store, &source, &mapping, &[entry("ana", "u1", "7001"), entry("bob", "u2", "7002")]);
        assert_eq!(applied, Applied { imported: 2, removed: 0, clashes: 0 });
        let ana =
            store.all(Kind::User, None).into_iter().find(|u| u.get("userJid") == Some("ana@example.test")).unwrap();
        let space = imported_users(&*store).into_iter().find(|(id, _)| *id == ana.id).unwrap().1.co_space.unwrap();

        // ana's entry is renamed (same entryUUID); bob's is gone.
        let applied = apply(&*store, &source, &mapping, &[entry("anna", "u1", "7001")]);
        assert_eq!(applied, Applied { imported: 1, removed: 1, clashes: 0 });
        assert_eq!(jids(&*store), ["anna@example.test"]);
        let anna = store.get(Kind::User, ana.id).expect("the same user");
        assert_eq!(anna.get("name"), Some("anna person"));
        let space = store.get(Kind::CoSpace, space).expect("the same space");
        assert_eq!(space.get("uri"), Some("anna.space"));
        assert_eq!(space.get("ownerJid"), Some("anna@example.test"));
        let members: Vec<_> = store
            .all(Kind::CoSpaceUser, Some(space.id))
            .iter()
            .filter_map(|m| m.get("userJid").map(String::from))
            .collect();
        assert_eq!(members, ["anna@example.test"]);
        assert_eq!(store.all(Kind::CoSpace, None).len(), 1, "bob's space went with him");

        // An entry that loses the attribute its JID is made of goes too.
        let mut nameless = entry("anna", "u1", "7001");
        nameless.attrs.remove("uid");
        let applied = apply(&*store, &source, &mapping, &[nameless]);
        assert_eq!(applied, Applied { imported: 0, removed: 1, clashes: 0 });
        assert!(jids(&*store).is_empty());
        assert!(store.all(Kind::CoSpace, None).is_empty());
    }

    #[test]
    fn a_clash_skips_the_entry_and_keeps_the_others() {
        let (_dir, store, source, mapping) = setup();
        let taken = changes_for(Kind::User, &[("userJid", Some("bob@example.test".into()))]).unwrap();
        store.create(Kind::User, None, &taken).unwrap();
        let applied = apply(&*store, &source, &mapping, &[entry("ana", "u1", "7001"), entry("bob", "u2", "7002")]);
        assert_eq!(applied, Applied { imported: 1, removed: 0, clashes: 1 });
        // The same call ID twice: the second user is made, its space is not.
        let applied = apply(&*store, &source, &mapping, &[entry("ana", "u1", "7001"), entry("cyd", "u3", "7001")]);
        assert_eq!(applied.clashes, 1);
        assert_eq!(jids(&*store), ["ana@example.test", "bob@example.test", "cyd@example.test"]);
        assert_eq!(store.all(Kind::CoSpace, None).len(), 1);
        // The next sync without cyd removes the user it did make.
        let applied = apply(&*store, &source, &mapping, &[entry("ana", "u1", "7001")]);
        assert_eq!(applied.removed, 1);
        assert_eq!(jids(&*store), ["ana@example.test", "bob@example.test"]);
    }

    #[test]
    fn a_sync_left_in_progress_is_run_again() {
        let (_dir, store, _, _) = setup();
        let s = spec(Kind::LdapSync);
        let field = |name| s.field(name).unwrap();
        let changes = [
            Change { field: field("removeWhenFinished"), value: Some("false".into()) },
            Change { field: field("state"), value: Some("inProgress".into()) },
        ];
        let job = store.create(Kind::LdapSync, None, &changes).unwrap();
        resume(store.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.get(Kind::LdapSync, job.id).and_then(|j| j.get("state").map(String::from)).as_deref()
            != Some("complete")
        {
            assert!(std::time::Instant::now() < deadline, "never finished");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
