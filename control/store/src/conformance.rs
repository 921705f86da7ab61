//! The promises every [`Store`] backend keeps, as tests any backend runs:
//! `conformance::suite!(open)` in the backend's test module makes one `#[test]`
//! per case. `open(dir)` opens the backend's database for `dir`; opening the
//! same `dir` again (while the first is open, or after it is dropped) must
//! reach the same data, as a second process or a restart would. A backend
//! whose data is not in files maps the directory to its database (a schema
//! named after it, say).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

use uuid::Uuid;

use super::{ApiUser, Object, Page, Store, StoreError};
use crate::schema::{Change, ClaimSpace, Kind};

/// Opens a backend's database for a directory.
pub(crate) type Open<'a> = &'a dyn Fn(&Path) -> Arc<dyn Store>;

/// Makes one `#[test]` per conformance case for the backend `open` opens.
macro_rules! suite {
    ($open:expr) => {
        $crate::conformance::suite!(@cases $open;
            crud_of_a_space,
            access_methods_live_under_a_space,
            crud_of_profiles_and_dial_plan_rules,
            singletons_exist_empty_until_written,
            uris_and_call_ids_are_unique_across_spaces_and_access_methods,
            secrets_jids_and_bridge_names_are_unique,
            racing_writers_claim_a_uri_once,
            two_instances_on_one_database_share_claims_and_objects,
            references_must_exist,
            generated_set_is_replaced_whole,
            lists_page_in_creation_order,
            acknowledged_writes_survive_reopening,
            api_users_are_stored_by_case_insensitive_name,
            records_are_written_together_and_survive_reopening,
        );
    };
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$open);
            }
        )*
    };
}
pub(crate) use suite;

/// Checked changes from a form body, as the API makes them.
pub(crate) fn changes(kind: Kind, body: &str) -> Vec<Change> {
    crate::testing::changes(kind, body, true)
}

fn create(store: &dyn Store, kind: Kind, parent: Option<Uuid>, body: &str) -> Result<Object, StoreError> {
    store.create(kind, parent, &changes(kind, body))
}

fn update(store: &dyn Store, kind: Kind, id: Uuid, body: &str) -> Result<Object, StoreError> {
    store.update(kind, id, &crate::testing::changes(kind, body, false))
}

fn names(objects: &[Object]) -> Vec<&str> {
    objects.iter().map(|o| o.get("name").unwrap_or("")).collect()
}

/// A space is created, read, changed (a field set, one cleared), listed and deleted.
pub(crate) fn crud_of_a_space(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let space = create(&*store, Kind::CoSpace, None, "name=Team&uri=Team.Room&callId=100&passcode=42").unwrap();
    assert_eq!(store.get(Kind::CoSpace, space.id), Some(space.clone()));
    assert_eq!(space.get("uri"), Some("team.room"), "URIs are stored lower-case");
    assert_eq!(store.get(Kind::CallProfile, space.id), None, "an id of another kind is not found");
    let changed = update(&*store, Kind::CoSpace, space.id, "name=Renamed&passcode=").unwrap();
    assert_eq!((changed.get("name"), changed.get("passcode"), changed.seq), (Some("Renamed"), None, space.seq));
    assert_eq!(store.get(Kind::CoSpace, space.id), Some(changed));
    assert_eq!(names(&store.all(Kind::CoSpace, None)), ["Renamed"]);
    store.delete(Kind::CoSpace, space.id).unwrap();
    assert_eq!(store.get(Kind::CoSpace, space.id), None);
    assert_eq!(store.delete(Kind::CoSpace, space.id), Err(StoreError::NotFound(Kind::CoSpace)));
    assert_eq!(update(&*store, Kind::CoSpace, space.id, "name=x"), Err(StoreError::NotFound(Kind::CoSpace)));
}

/// Access methods need their space, list under it, and go with it.
pub(crate) fn access_methods_live_under_a_space(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(
        create(&*store, Kind::AccessMethod, Some(Uuid::new_v4()), "uri=guest"),
        Err(StoreError::NotFound(Kind::CoSpace))
    );
    let profile = create(&*store, Kind::CallProfile, None, "participantLimit=3").unwrap();
    assert_eq!(
        create(&*store, Kind::AccessMethod, Some(profile.id), "uri=guest"),
        Err(StoreError::NotFound(Kind::CoSpace)),
        "the parent must be a space"
    );
    let a = create(&*store, Kind::CoSpace, None, "name=a").unwrap();
    let b = create(&*store, Kind::CoSpace, None, "name=b").unwrap();
    let guest = create(&*store, Kind::AccessMethod, Some(a.id), "uri=guest&callId=7&name=Guest").unwrap();
    create(&*store, Kind::AccessMethod, Some(b.id), "uri=other").unwrap();
    assert_eq!(store.all(Kind::AccessMethod, Some(a.id)), std::slice::from_ref(&guest));
    assert_eq!(store.claim_owner(ClaimSpace::Uri, "GUEST").map(|o| o.id), Some(guest.id));
    store.delete(Kind::CoSpace, a.id).unwrap();
    assert_eq!(store.get(Kind::AccessMethod, guest.id), None);
    assert!(store.all(Kind::AccessMethod, Some(a.id)).is_empty());
    assert_eq!(store.claim_owner(ClaimSpace::Uri, "guest"), None);
    create(&*store, Kind::CoSpace, None, "name=c&uri=guest&callId=7").expect("the deleted method's values are free");
    assert_eq!(store.all(Kind::AccessMethod, Some(b.id)).len(), 1);
}

/// Profiles and dial plan rules: the plain objects most of the API is made of.
pub(crate) fn crud_of_profiles_and_dial_plan_rules(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let leg = create(&*store, Kind::CallLegProfile, None, "defaultLayout=speakerOnly&muteSelfAllowed=false").unwrap();
    let leg = update(&*store, Kind::CallLegProfile, leg.id, "defaultLayout=allEqual").unwrap();
    assert_eq!(
        store.get(Kind::CallLegProfile, leg.id).map(|o| (o.get("defaultLayout").map(str::to_string), o.fields.len())),
        Some((Some("allEqual".to_string()), 2))
    );
    let rule =
        create(&*store, Kind::OutboundDialPlanRule, None, "domain=*.example.com&sipProxy=proxy&priority=5").unwrap();
    update(&*store, Kind::OutboundDialPlanRule, rule.id, "priority=9").unwrap();
    assert_eq!(
        store.get(Kind::OutboundDialPlanRule, rule.id).and_then(|o| o.get("priority").map(str::to_string)),
        Some("9".into())
    );
    store.delete(Kind::OutboundDialPlanRule, rule.id).unwrap();
    assert!(store.all(Kind::OutboundDialPlanRule, None).is_empty());
    assert_eq!(store.delete(Kind::CallLegProfile, rule.id), Err(StoreError::NotFound(Kind::CallLegProfile)));
    assert_eq!(store.all(Kind::CallLegProfile, None), [leg]);
}

/// A singleton reads empty until its first write, then keeps its fields.
pub(crate) fn singletons_exist_empty_until_written(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let empty = store.singleton(Kind::SystemProfiles);
        assert_eq!((empty.id, empty.fields.len()), (super::singleton_id(Kind::SystemProfiles), 0));
        let leg = create(&*store, Kind::CallLegProfile, None, "defaultLayout=allEqual").unwrap();
        let id = super::singleton_id(Kind::SystemProfiles);
        update(&*store, Kind::SystemProfiles, id, &format!("callLegProfile={}", leg.id)).unwrap();
        update(&*store, Kind::XmppConfiguration, super::singleton_id(Kind::XmppConfiguration), "domain=example.com")
            .unwrap();
        assert_eq!(
            update(&*store, Kind::SystemProfiles, Uuid::new_v4(), "callProfile="),
            Err(StoreError::NotFound(Kind::SystemProfiles)),
            "a singleton has one id"
        );
    }
    let store = open(dir.path());
    assert!(store.singleton(Kind::SystemProfiles).get("callLegProfile").is_some());
    assert_eq!(store.singleton(Kind::XmppConfiguration).get("domain"), Some("example.com"));
    assert!(store.all(Kind::SystemProfiles, None).len() <= 1);
}

/// URIs (uri, secondaryUri, an access method's uri) share one namespace, call
/// IDs another, whatever object holds them; an object keeps its own values.
/// Within one family — a space and its access methods — a value may be
/// shared (CMS tells them apart by passcode; the API checks that).
pub(crate) fn uris_and_call_ids_are_unique_across_spaces_and_access_methods(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = create(&*store, Kind::CoSpace, None, "name=a&uri=Room&secondaryUri=alt&callId=1").unwrap();
    let dup = |body: &str| create(&*store, Kind::CoSpace, None, body);
    assert_eq!(dup("name=b&uri=room"), Err(StoreError::Duplicate("duplicateCoSpaceUri")));
    assert_eq!(dup("name=b&uri=ALT"), Err(StoreError::Duplicate("duplicateCoSpaceUri")));
    assert_eq!(dup("name=b&secondaryUri=room"), Err(StoreError::Duplicate("duplicateCoSpaceSecondaryUri")));
    assert_eq!(
        dup("name=b&uri=twice&secondaryUri=twice"),
        Err(StoreError::Duplicate("duplicateCoSpaceSecondaryUri")),
        "one space cannot hold a URI twice"
    );
    assert_eq!(dup("name=b&callId=1"), Err(StoreError::Duplicate("duplicateCoSpaceId")));
    let shared = create(&*store, Kind::AccessMethod, Some(a.id), "uri=room&callId=1").expect("its own space's values");
    let owners = store.claim_owners(ClaimSpace::Uri, "ROOM").into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(owners, [a.id, shared.id], "both, the first claimant first");
    assert_eq!(store.claim_owner(ClaimSpace::CallId, "1").map(|o| o.id), Some(a.id));
    store.delete(Kind::AccessMethod, shared.id).unwrap();
    assert_eq!(store.claim_owners(ClaimSpace::Uri, "room").len(), 1);
    let am = create(&*store, Kind::AccessMethod, Some(a.id), "uri=guest&callId=2").unwrap();
    assert!(matches!(dup("name=b&uri=guest"), Err(StoreError::Duplicate(_))));
    assert!(matches!(dup("name=b&callId=2"), Err(StoreError::Duplicate(_))));
    let b = dup("name=b&uri=b").unwrap();
    assert!(matches!(update(&*store, Kind::CoSpace, b.id, "uri=guest"), Err(StoreError::Duplicate(_))));
    let other_family = create(&*store, Kind::AccessMethod, Some(b.id), "uri=guest");
    assert!(matches!(other_family, Err(StoreError::Duplicate(_))), "another space's access method may not");
    assert_eq!(store.get(Kind::CoSpace, b.id).and_then(|o| o.get("uri").map(str::to_string)), Some("b".into()));
    update(&*store, Kind::CoSpace, a.id, "name=a2&uri=room").expect("a space keeps its own URI");
    update(&*store, Kind::CoSpace, a.id, "uri=moved").unwrap();
    dup("name=c&uri=room").expect("a changed URI is free");
    assert_eq!(store.claim_owner(ClaimSpace::Uri, "Moved").map(|o| o.id), Some(a.id));
    assert_eq!(store.claim_owner(ClaimSpace::CallId, "2").map(|o| o.id), Some(am.id));
    store.delete(Kind::CoSpace, a.id).unwrap();
    dup("name=d&uri=moved&secondaryUri=guest&callId=1").expect("a deleted space's values are free");
}

/// The other unique values: a secret names one space or access method (a
/// guest link), a JID one user, a name one call bridge.
pub(crate) fn secrets_jids_and_bridge_names_are_unique(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let space = create(&*store, Kind::CoSpace, None, "name=a&secret=Guest-Link_1").unwrap();
    let dup = Err(StoreError::Duplicate("duplicateCoSpaceSecret"));
    assert_eq!(create(&*store, Kind::CoSpace, None, "name=b&secret=Guest-Link_1"), dup);
    assert_eq!(create(&*store, Kind::AccessMethod, Some(space.id), "uri=g&secret=Guest-Link_1"), dup);
    create(&*store, Kind::CoSpace, None, "name=c&secret=guest-link_1").expect("secrets are case-sensitive");
    create(&*store, Kind::User, None, "userJid=Bob@Example.com").unwrap();
    assert_eq!(
        create(&*store, Kind::User, None, "userJid=bob@example.com"),
        Err(StoreError::Duplicate("duplicateUserJid"))
    );
    let bridge = create(&*store, Kind::CallBridge, None, "name=cb1").unwrap();
    assert_eq!(
        create(&*store, Kind::CallBridge, None, "name=cb1"),
        Err(StoreError::Duplicate("duplicateCallBridgeName"))
    );
    update(&*store, Kind::CallBridge, bridge.id, "name=cb2").unwrap();
    create(&*store, Kind::CallBridge, None, "name=cb1").expect("a renamed bridge frees its name");
}

/// Threads racing to claim one URI on one store, each for another space
/// (a space itself, or an access method of its own space): exactly one wins.
pub(crate) fn racing_writers_claim_a_uri_once(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hosts: Vec<Uuid> =
        (0..8).map(|i| create(&*store, Kind::CoSpace, None, &format!("name=host{i}")).unwrap().id).collect();
    let results = race(std::slice::from_ref(&store), 8, move |store, i| {
        if i % 2 == 0 {
            create(store, Kind::CoSpace, None, &format!("name=r{i}&uri=race"))
        } else {
            create(store, Kind::AccessMethod, Some(hosts[i]), "uri=race")
        }
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(StoreError::Duplicate(_)))), "{results:?}");
}

/// Two stores open on one database (two processes): a value one claims the
/// other cannot, each sees the other's objects, and racing writers through
/// both claim a URI once.
pub(crate) fn two_instances_on_one_database_share_claims_and_objects(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let second = open(dir.path());
    let space = create(&*first, Kind::CoSpace, None, "name=shared&uri=shared&callId=5").unwrap();
    assert_eq!(
        create(&*second, Kind::CoSpace, None, "name=again&uri=shared"),
        Err(StoreError::Duplicate("duplicateCoSpaceUri"))
    );
    assert_eq!(second.get(Kind::CoSpace, space.id), Some(space.clone()));
    let am = create(&*second, Kind::AccessMethod, Some(space.id), "uri=door").expect("the parent is seen");
    assert_eq!(first.claim_owner(ClaimSpace::Uri, "door").map(|o| o.id), Some(am.id));
    second.delete(Kind::CoSpace, space.id).unwrap();
    assert_eq!(first.get(Kind::AccessMethod, am.id), None);
    assert_eq!(
        create(&*first, Kind::AccessMethod, Some(space.id), "uri=late"),
        Err(StoreError::NotFound(Kind::CoSpace)),
        "a parent deleted by the other instance is gone"
    );
    let results = race(&[first.clone(), second.clone()], 8, |store, i| {
        create(store, Kind::CoSpace, None, &format!("name=r{i}&uri=race"))
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert_eq!(first.all(Kind::CoSpace, None), second.all(Kind::CoSpace, None));
}

/// Runs `claim` on `threads` threads at once, spread over `stores`.
fn race(
    stores: &[Arc<dyn Store>],
    threads: usize,
    claim: impl Fn(&dyn Store, usize) -> Result<Object, StoreError> + Send + Sync + 'static,
) -> Vec<Result<Object, StoreError>> {
    let claim = Arc::new(claim);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, claim, start) = (stores[i % stores.len()].clone(), claim.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                claim(&*store, i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("a racing writer panicked")).collect()
}

/// A reference must name an existing object of the right kind; deleting a
/// referenced object is allowed and leaves the reference as it was.
pub(crate) fn references_must_exist(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let missing = format!("name=x&callProfile={}", Uuid::new_v4());
    assert_eq!(
        create(&*store, Kind::CoSpace, None, &missing),
        Err(StoreError::MissingRef { field: "callProfile", kind: Kind::CallProfile })
    );
    let leg = create(&*store, Kind::CallLegProfile, None, "defaultLayout=allEqual").unwrap();
    assert!(matches!(
        create(&*store, Kind::CoSpace, None, &format!("name=x&callProfile={}", leg.id)),
        Err(StoreError::MissingRef { kind: Kind::CallProfile, .. })
    ));
    assert!(store.all(Kind::CoSpace, None).is_empty(), "a refused object leaves nothing behind");
    let cp = create(&*store, Kind::CallProfile, None, "participantLimit=10").unwrap();
    let space = create(&*store, Kind::CoSpace, None, &format!("name=x&uri=x&callProfile={}", cp.id)).unwrap();
    assert!(matches!(
        update(&*store, Kind::CoSpace, space.id, &format!("callLegProfile={}", Uuid::new_v4())),
        Err(StoreError::MissingRef { kind: Kind::CallLegProfile, .. })
    ));
    assert_eq!(store.get(Kind::CoSpace, space.id), Some(space.clone()), "a refused change changes nothing");
    assert_eq!(store.referenced_ids(), [cp.id].into_iter().collect());
    store.delete(Kind::CallProfile, cp.id).unwrap();
    assert_eq!(store.get(Kind::CoSpace, space.id), Some(space));
}

/// A bulk set is replaced in one transaction: all of the new set or none of
/// it; the new set may reuse the old one's values but not anyone else's.
pub(crate) fn generated_set_is_replaced_whole(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let origin = Uuid::new_v4();
    let batch: Vec<_> = (1..=5).map(|i| changes(Kind::CoSpace, &format!("name=m{i}&uri={i}&callId={i}"))).collect();
    assert_eq!(store.replace_generated(Kind::CoSpace, origin, &batch), Ok(5));
    let first = store.all(Kind::CoSpace, None);
    create(&*store, Kind::AccessMethod, Some(first[0].id), "uri=under.generated").unwrap();
    assert_eq!(store.replace_generated(Kind::CoSpace, origin, &batch[..3]), Ok(3));
    let spaces = store.all(Kind::CoSpace, None);
    assert_eq!(names(&spaces), ["m1", "m2", "m3"]);
    assert!(spaces.iter().all(|s| s.origin == Some(origin) && !first.iter().any(|f| f.id == s.id)));
    assert_eq!(store.claim_owner(ClaimSpace::Uri, "under.generated"), None, "what lived under the old set went");
    let dup: Vec<_> = (1..=2).map(|_| changes(Kind::CoSpace, "name=d&uri=same")).collect();
    assert_eq!(store.replace_generated(Kind::CoSpace, origin, &dup), Err(StoreError::Duplicate("duplicateCoSpaceUri")));
    assert_eq!(store.all(Kind::CoSpace, None), spaces, "a refused set changes nothing");
    let other = create(&*store, Kind::CoSpace, None, "name=other&uri=taken&callId=99").unwrap();
    let clash = [changes(Kind::CoSpace, "name=c&uri=taken")];
    assert_eq!(
        store.replace_generated(Kind::CoSpace, origin, &clash),
        Err(StoreError::Duplicate("duplicateCoSpaceUri"))
    );
    let clash = [changes(Kind::CoSpace, "name=c&uri=c&callId=99")];
    assert_eq!(
        store.replace_generated(Kind::CoSpace, origin, &clash),
        Err(StoreError::Duplicate("duplicateCoSpaceId"))
    );
    assert_eq!(store.replace_generated(Kind::CoSpace, origin, &[]), Ok(0));
    assert_eq!(store.all(Kind::CoSpace, None), [other]);
}

/// Lists come in creation order, which changes and deletions do not disturb,
/// so a client paging through sees each object once.
pub(crate) fn lists_page_in_creation_order(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let made: Vec<Object> =
        (0..10).map(|i| create(&*store, Kind::CoSpace, None, &format!("name=s{i}")).unwrap()).collect();
    update(&*store, Kind::CoSpace, made[0].id, "name=s0-renamed").unwrap();
    store.delete(Kind::CoSpace, made[4].id).unwrap();
    let (total, page) = store.page(Kind::CoSpace, None, Page { offset: 2, limit: 3 });
    assert_eq!((total, names(&page)), (9, vec!["s2", "s3", "s5"]));
    let mut seen = Vec::new();
    for offset in (0..9).step_by(4) {
        seen.extend(store.page(Kind::CoSpace, None, Page { offset, limit: 4 }).1);
    }
    assert_eq!(names(&seen), ["s0-renamed", "s1", "s2", "s3", "s5", "s6", "s7", "s8", "s9"]);
    let (total, odd) = store.list(
        Kind::CoSpace,
        None,
        &mut |o| o.get("name").is_some_and(|n| n.ends_with(['1', '3', '5', '7'])),
        Page { offset: 1, limit: 2 },
    );
    assert_eq!((total, names(&odd)), (4, vec!["s3", "s5"]));
    let later = create(&*store, Kind::CoSpace, None, "name=later").unwrap();
    assert!(made.iter().all(|o| o.seq < later.seq));
    assert_eq!(store.page(Kind::CoSpace, None, Page { offset: 9, limit: 10 }).1, [later]);
}

/// Everything acknowledged is there after the store is dropped and reopened,
/// in the same order; what was deleted stays deleted.
pub(crate) fn acknowledged_writes_survive_reopening(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let (kept, all) = {
        let store = open(dir.path());
        let cp = create(&*store, Kind::CallProfile, None, "participantLimit=10").unwrap();
        let space =
            create(&*store, Kind::CoSpace, None, &format!("name=x&uri=x&callId=1&callProfile={}", cp.id)).unwrap();
        create(&*store, Kind::AccessMethod, Some(space.id), "uri=x.guest").unwrap();
        let gone = create(&*store, Kind::CoSpace, None, "name=gone&uri=gone").unwrap();
        store.delete(Kind::CoSpace, gone.id).unwrap();
        update(&*store, Kind::CoSpace, space.id, "name=y").unwrap();
        let batch: Vec<_> = (1..=3).map(|i| changes(Kind::CoSpace, &format!("name=g{i}&uri=g{i}"))).collect();
        store.replace_generated(Kind::CoSpace, Uuid::new_v4(), &batch).unwrap();
        store
            .put_api_user(&ApiUser { name: "admin".into(), role: "admin".into(), hash: "h".into(), scram: None })
            .unwrap();
        let kinds = [Kind::CallProfile, Kind::CoSpace];
        let all: Vec<Object> = kinds
            .iter()
            .flat_map(|k| store.all(*k, None))
            .chain(store.all(Kind::AccessMethod, Some(space.id)))
            .collect();
        (cp.id, all)
    };
    let store = open(dir.path());
    let kinds = [Kind::CallProfile, Kind::CoSpace];
    let parent = all.iter().find(|o| o.kind == Kind::AccessMethod).and_then(|o| o.parent);
    let again: Vec<Object> =
        kinds.iter().flat_map(|k| store.all(*k, None)).chain(store.all(Kind::AccessMethod, parent)).collect();
    assert_eq!(again, all);
    assert_eq!(names(&store.all(Kind::CoSpace, None)), ["y", "g1", "g2", "g3"]);
    assert!(store.referenced_ids().contains(&kept));
    assert!(matches!(create(&*store, Kind::CoSpace, None, "name=z&uri=x.guest"), Err(StoreError::Duplicate(_))));
    create(&*store, Kind::CoSpace, None, "name=z&uri=gone").expect("a deleted space's URI stays free");
    assert_eq!(store.api_user("admin").unwrap().map(|u| u.role), Some("admin".into()));
}

/// API users: one per name whatever its case, listed by name, removable.
pub(crate) fn api_users_are_stored_by_case_insensitive_name(open: Open) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let user = |name: &str, role: &str, hash: &str| ApiUser {
        name: name.into(),
        role: role.into(),
        hash: hash.into(),
        scram: None,
    };
    assert_eq!(store.api_user("admin"), Ok(None));
    store.put_api_user(&user("bob", "api", "h1")).unwrap();
    store.put_api_user(&user("admin", "admin", "h2")).unwrap();
    assert_eq!(store.api_user("ADMIN"), Ok(Some(user("admin", "admin", "h2"))));
    let web = ApiUser { scram: Some("4096,c2FsdA,AA,AA".into()), ..user("carol", "user", "h3") };
    store.put_api_user(&web).unwrap();
    assert_eq!(store.api_user("carol"), Ok(Some(web.clone())));
    store.remove_api_user("carol").unwrap();
    store.put_api_user(&user("Bob", "admin", "h3")).unwrap();
    let listed: BTreeSet<(String, String)> =
        store.api_users().unwrap().into_iter().map(|u| (u.name.to_lowercase(), u.role)).collect();
    assert_eq!(listed, [("admin".into(), "admin".into()), ("bob".into(), "admin".into())].into_iter().collect());
    assert_eq!(store.api_users().unwrap().iter().map(|u| u.name.to_lowercase()).collect::<Vec<_>>(), ["admin", "bob"]);
    assert_eq!(store.remove_api_user("BOB"), Ok(true));
    assert_eq!(store.remove_api_user("bob"), Ok(false));
    assert_eq!(store.api_users().unwrap().len(), 1);
}

/// Service records: written and deleted in one transaction, listed in the
/// order first written (an update keeps the place), kept across a reopen.
pub(crate) fn records_are_written_together_and_survive_reopening(open: Open) {
    use crate::RecordWrite;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let put = |collection, id, body: &str| RecordWrite { collection, id, body: Some(body.into()) };
    store.write_records(&[put("meetings", a, "{1}"), put("mails", b, "m"), put("meetings", b, "{2}")]).unwrap();
    store.write_records(&[put("meetings", a, "{1b}")]).unwrap();
    assert_eq!(store.records("meetings").unwrap(), [(a, "{1b}".to_string()), (b, "{2}".to_string())]);
    store.write_records(&[RecordWrite { collection: "mails", id: b, body: None }]).unwrap();
    let again = open(dir.path());
    assert_eq!(again.records("mails").unwrap(), []);
    assert_eq!(again.records("meetings").unwrap().len(), 2);
}
