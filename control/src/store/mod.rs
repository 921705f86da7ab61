//! The configuration store: every CMS configuration object, held in memory
//! for fast reads and written through to a durable backend before a write is
//! acknowledged. One lock serialises writes, so the checks that span objects
//! (references, unique URIs and call IDs) are atomic with the commit and
//! concurrent clients can never corrupt the store.
//!
//! Only the SQLite backend exists so far; the PostgreSQL backend for clusters
//! will sit behind the same [`Sqlite`]-shaped interface.

mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use thiserror::Error;
use uuid::Uuid;

use crate::schema::{spec, Change, ClaimSpace, Kind, Ty};
pub use sqlite::Sqlite;
use sqlite::Write;

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its GUID.
    pub id: Uuid,
    /// Its type.
    pub kind: Kind,
    /// The object it lives under (the space of an access method).
    pub parent: Option<Uuid>,
    /// The bulk parameter set that made it, if any (a re-sync replaces these).
    pub origin: Option<Uuid>,
    /// Creation order: lists are returned in this order, so paging is stable.
    pub seq: u64,
    /// Set fields by canonical name; unset fields are absent.
    pub fields: BTreeMap<&'static str, String>,
}

impl Object {
    /// The value of a set field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Why a store operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The object (or the parent named in the path) does not exist.
    #[error("{0:?} does not exist")]
    NotFound(Kind),
    /// A field refers to an object that does not exist.
    #[error("{field} refers to a missing {kind:?}")]
    MissingRef {
        /// The referring field.
        field: &'static str,
        /// The kind it should refer to.
        kind: Kind,
    },
    /// A unique value is taken; the CMS reason names which.
    #[error("duplicate: {0}")]
    Duplicate(&'static str),
    /// The backend failed; nothing was changed.
    #[error("storage: {0}")]
    Backend(String),
}

/// Which objects of a list to return.
pub struct Page {
    /// Objects to skip.
    pub offset: usize,
    /// Objects to return at most.
    pub limit: usize,
}

/// The store.
pub struct Store {
    inner: Mutex<Inner>,
}

struct Inner {
    db: Sqlite,
    objects: HashMap<Uuid, Object>,
    /// Ids per (kind, parent), in creation order.
    lists: HashMap<(Kind, Option<Uuid>), BTreeMap<u64, Uuid>>,
    /// Unique values: (namespace, value) → (owner, field).
    claims: HashMap<(ClaimSpace, String), (Uuid, &'static str)>,
    next_seq: u64,
}

/// The id a singleton kind (`system/profiles`, ...) is stored under: one per kind.
pub fn singleton_id(kind: Kind) -> Uuid {
    Uuid::from_u128(0xc0f0_0000_0000_4000_8000_0000_0000_0000 | kind as u128)
}

impl Store {
    /// Opens the store in `dir`, loading every object.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = Sqlite::open(dir)?;
        let loaded = db.load()?;
        let mut inner =
            Inner { db, objects: HashMap::new(), lists: HashMap::new(), claims: HashMap::new(), next_seq: 1 };
        for o in loaded {
            inner.next_seq = inner.next_seq.max(o.seq + 1);
            inner.index(o);
        }
        Ok(Store { inner: Mutex::new(inner) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave memory ahead of the
        // database (memory changes only after a commit), so keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One object of `kind` by id.
    pub fn get(&self, kind: Kind, id: Uuid) -> Option<Object> {
        self.lock().objects.get(&id).filter(|o| o.kind == kind).cloned()
    }

    /// A singleton (`system/profiles`, ...); empty until first written.
    pub fn singleton(&self, kind: Kind) -> Object {
        self.get(kind, singleton_id(kind)).unwrap_or_else(|| Object {
            id: singleton_id(kind),
            kind,
            parent: None,
            origin: None,
            seq: 0,
            fields: BTreeMap::new(),
        })
    }

    /// A page of the objects of `kind` under `parent` that `keep` accepts,
    /// with the number that match in all.
    pub fn list(
        &self,
        kind: Kind,
        parent: Option<Uuid>,
        mut keep: impl FnMut(&Object) -> bool,
        page: Page,
    ) -> (usize, Vec<Object>) {
        let inner = self.lock();
        let Some(ids) = inner.lists.get(&(kind, parent)) else { return (0, Vec::new()) };
        let mut total = 0;
        let mut out = Vec::new();
        for id in ids.values() {
            let Some(o) = inner.objects.get(id) else { continue };
            if !keep(o) {
                continue;
            }
            if total >= page.offset && out.len() < page.limit {
                out.push(o.clone());
            }
            total += 1;
        }
        (total, out)
    }

    /// A page of all the objects of `kind` under `parent`, with their number:
    /// the unfiltered list, which skips to the page instead of scanning.
    pub fn page(&self, kind: Kind, parent: Option<Uuid>, page: Page) -> (usize, Vec<Object>) {
        let inner = self.lock();
        let Some(ids) = inner.lists.get(&(kind, parent)) else { return (0, Vec::new()) };
        let items = ids.values().skip(page.offset).take(page.limit).filter_map(|id| inner.objects.get(id).cloned());
        (ids.len(), items.collect())
    }

    /// Every object of `kind` under `parent`, in creation order.
    pub fn all(&self, kind: Kind, parent: Option<Uuid>) -> Vec<Object> {
        self.list(kind, parent, |_| true, Page { offset: 0, limit: usize::MAX }).1
    }

    /// The ids some object refers to through a reference field.
    pub fn referenced_ids(&self) -> std::collections::HashSet<Uuid> {
        let inner = self.lock();
        inner
            .objects
            .values()
            .flat_map(|o| {
                spec(o.kind)
                    .fields
                    .iter()
                    .filter(|f| matches!(f.ty, Ty::Ref(_)))
                    .filter_map(|f| o.get(f.name).and_then(|v| Uuid::parse_str(v).ok()))
            })
            .collect()
    }

    /// Which object owns a unique value (a space or access method by URI or call ID).
    pub fn claim_owner(&self, space: ClaimSpace, value: &str) -> Option<Object> {
        let inner = self.lock();
        let (id, _) = inner.claims.get(&(space, value.to_lowercase()))?;
        inner.objects.get(id).cloned()
    }

    /// Creates an object from checked changes.
    pub fn create(&self, kind: Kind, parent: Option<Uuid>, changes: &[Change]) -> Result<Object, StoreError> {
        let mut inner = self.lock();
        if let Some(p) = parent {
            let parent_kind = spec(kind).parent.ok_or(StoreError::NotFound(kind))?;
            if inner.objects.get(&p).is_none_or(|o| o.kind != parent_kind) {
                return Err(StoreError::NotFound(parent_kind));
            }
        }
        let seq = inner.next_seq;
        let mut obj = Object { id: Uuid::new_v4(), kind, parent, origin: None, seq, fields: BTreeMap::new() };
        apply(&mut obj, changes);
        inner.check(&obj, &[])?;
        inner.db.commit(&[Write::Put(&obj)])?;
        inner.next_seq += 1;
        inner.index(obj.clone());
        Ok(obj)
    }

    /// Changes an object (or creates a singleton on its first write).
    pub fn update(&self, kind: Kind, id: Uuid, changes: &[Change]) -> Result<Object, StoreError> {
        let mut inner = self.lock();
        let mut obj = match inner.objects.get(&id) {
            Some(o) if o.kind == kind => o.clone(),
            None if spec(kind).singleton && id == singleton_id(kind) => {
                Object { id, kind, parent: None, origin: None, seq: 0, fields: BTreeMap::new() }
            }
            _ => return Err(StoreError::NotFound(kind)),
        };
        apply(&mut obj, changes);
        inner.check(&obj, &[])?;
        inner.db.commit(&[Write::Put(&obj)])?;
        inner.unindex(id);
        inner.index(obj.clone());
        Ok(obj)
    }

    /// Deletes an object and everything that lives under it.
    pub fn delete(&self, kind: Kind, id: Uuid) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.objects.get(&id).is_none_or(|o| o.kind != kind) {
            return Err(StoreError::NotFound(kind));
        }
        let doomed = inner.with_descendants(id);
        let writes: Vec<Write> = doomed.iter().map(|d| Write::Delete(*d)).collect();
        inner.db.commit(&writes)?;
        for d in doomed {
            inner.unindex(d);
        }
        Ok(())
    }

    /// Replaces every object that bulk parameter set `origin` made with
    /// `objects` (each a list of changes for one new object of `kind`), in one
    /// transaction: either the whole new set is there or nothing changed.
    pub fn replace_generated(&self, kind: Kind, origin: Uuid, objects: &[Vec<Change>]) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let old: Vec<Uuid> = inner.objects.values().filter(|o| o.origin == Some(origin)).map(|o| o.id).collect();
        let mut doomed = Vec::new();
        for id in &old {
            doomed.extend(inner.with_descendants(*id));
        }
        // Values held by the objects being replaced may be reused by the new ones.
        let mut made = Vec::with_capacity(objects.len());
        let mut batch_claims: HashMap<(ClaimSpace, String), ()> = HashMap::new();
        let mut seq = inner.next_seq;
        for changes in objects {
            let mut obj =
                Object { id: Uuid::new_v4(), kind, parent: None, origin: Some(origin), seq, fields: BTreeMap::new() };
            seq += 1;
            apply(&mut obj, changes);
            inner.check(&obj, &doomed)?;
            for f in spec(kind).fields {
                if let (Some((space, reason)), Some(v)) = (f.claim_space(), obj.get(f.name)) {
                    if batch_claims.insert((space, v.to_string()), ()).is_some() {
                        return Err(StoreError::Duplicate(reason));
                    }
                }
            }
            made.push(obj);
        }
        let mut writes: Vec<Write> = doomed.iter().map(|d| Write::Delete(*d)).collect();
        writes.extend(made.iter().map(Write::Put));
        inner.db.commit(&writes)?;
        for d in doomed {
            inner.unindex(d);
        }
        inner.next_seq = seq;
        let n = made.len();
        for o in made {
            inner.index(o);
        }
        Ok(n)
    }

    /// Runs `f` with the backend, for the API user table.
    pub fn with_db<T>(&self, f: impl FnOnce(&Sqlite) -> T) -> T {
        f(&self.lock().db)
    }
}

fn apply(obj: &mut Object, changes: &[Change]) {
    for c in changes {
        match &c.value {
            Some(v) => obj.fields.insert(c.field.name, v.clone()),
            None => obj.fields.remove(c.field.name),
        };
    }
}

impl Inner {
    /// Checks references and uniqueness of `obj` as it would be stored,
    /// ignoring claims held by `leaving` objects.
    fn check(&self, obj: &Object, leaving: &[Uuid]) -> Result<(), StoreError> {
        let s = spec(obj.kind);
        for f in s.fields {
            let Some(v) = obj.get(f.name) else { continue };
            if let Ty::Ref(target) = f.ty {
                let ok = Uuid::parse_str(v)
                    .ok()
                    .and_then(|id| self.objects.get(&id))
                    .is_some_and(|o| o.kind == target && !leaving.contains(&o.id));
                if !ok {
                    return Err(StoreError::MissingRef { field: f.name, kind: target });
                }
            }
            if let Some((space, reason)) = f.claim_space() {
                if let Some((owner, field)) = self.claims.get(&(space, v.to_string())) {
                    if (*owner != obj.id || *field != f.name) && !leaving.contains(owner) {
                        return Err(StoreError::Duplicate(reason));
                    }
                }
            }
        }
        Ok(())
    }

    fn index(&mut self, o: Object) {
        for f in spec(o.kind).fields {
            if let (Some((space, _)), Some(v)) = (f.claim_space(), o.get(f.name)) {
                self.claims.insert((space, v.to_string()), (o.id, f.name));
            }
        }
        self.lists.entry((o.kind, o.parent)).or_default().insert(o.seq, o.id);
        self.objects.insert(o.id, o);
    }

    fn unindex(&mut self, id: Uuid) {
        let Some(o) = self.objects.remove(&id) else { return };
        for f in spec(o.kind).fields {
            if let (Some((space, _)), Some(v)) = (f.claim_space(), o.get(f.name)) {
                let key = (space, v.to_string());
                if self.claims.get(&key).is_some_and(|(owner, _)| *owner == id) {
                    self.claims.remove(&key);
                }
            }
        }
        if let Some(list) = self.lists.get_mut(&(o.kind, o.parent)) {
            list.remove(&o.seq);
        }
    }

    /// `id` and every object under it, children first.
    fn with_descendants(&self, id: Uuid) -> Vec<Uuid> {
        let mut out = Vec::new();
        for ((_, parent), ids) in &self.lists {
            if *parent == Some(id) {
                for child in ids.values() {
                    out.extend(self.with_descendants(*child));
                }
            }
        }
        out.push(id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::form::Form;
    use crate::schema::validate_changes;

    fn changes(kind: Kind, body: &str) -> Vec<Change> {
        validate_changes(spec(kind).fields, &Form::parse(body.as_bytes()).unwrap(), true).unwrap()
    }

    #[test]
    fn uniqueness_spans_spaces_and_access_methods() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create(Kind::CoSpace, None, &changes(Kind::CoSpace, "name=a&uri=Room&callId=1")).unwrap();
        assert_eq!(
            store.create(Kind::CoSpace, None, &changes(Kind::CoSpace, "name=b&uri=room")),
            Err(StoreError::Duplicate("duplicateCoSpaceUri"))
        );
        assert_eq!(
            store.create(Kind::CoSpace, None, &changes(Kind::CoSpace, "name=b&callId=1")),
            Err(StoreError::Duplicate("duplicateCoSpaceId"))
        );
        assert!(store.create(Kind::AccessMethod, Some(a.id), &changes(Kind::AccessMethod, "uri=room")).is_err());
        let am = store.create(Kind::AccessMethod, Some(a.id), &changes(Kind::AccessMethod, "uri=guest")).unwrap();
        store.delete(Kind::CoSpace, a.id).unwrap();
        assert!(store.get(Kind::AccessMethod, am.id).is_none());
        store.create(Kind::CoSpace, None, &changes(Kind::CoSpace, "name=c&uri=room&callId=1")).unwrap();
    }

    #[test]
    fn references_must_exist_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cp_id;
        {
            let store = Store::open(dir.path()).unwrap();
            let bogus = format!("callProfile={}", Uuid::new_v4());
            assert!(matches!(
                store.create(Kind::CoSpace, None, &changes(Kind::CoSpace, &bogus)),
                Err(StoreError::MissingRef { kind: Kind::CallProfile, .. })
            ));
            let cp = store.create(Kind::CallProfile, None, &changes(Kind::CallProfile, "participantLimit=10")).unwrap();
            cp_id = cp.id;
            store
                .create(Kind::CoSpace, None, &changes(Kind::CoSpace, &format!("name=x&callProfile={}", cp.id)))
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get(Kind::CallProfile, cp_id).unwrap().get("participantLimit"), Some("10"));
        assert!(store.referenced_ids().contains(&cp_id));
        let (total, page) = store.list(Kind::CoSpace, None, |_| true, Page { offset: 0, limit: 10 });
        assert_eq!((total, page[0].get("name")), (1, Some("x")));
    }

    #[test]
    fn generated_set_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let origin = Uuid::new_v4();
        let batch: Vec<_> = (1..=5).map(|i| changes(Kind::CoSpace, &format!("name=m{i}&uri={i}&callId={i}"))).collect();
        assert_eq!(store.replace_generated(Kind::CoSpace, origin, &batch).unwrap(), 5);
        assert_eq!(store.replace_generated(Kind::CoSpace, origin, &batch[..3]).unwrap(), 3);
        assert_eq!(store.all(Kind::CoSpace, None).len(), 3);
        let dup: Vec<_> = (1..=2).map(|_| changes(Kind::CoSpace, "name=d&uri=same")).collect();
        assert_eq!(
            store.replace_generated(Kind::CoSpace, origin, &dup),
            Err(StoreError::Duplicate("duplicateCoSpaceUri"))
        );
        assert_eq!(store.all(Kind::CoSpace, None).len(), 3);
    }
}
