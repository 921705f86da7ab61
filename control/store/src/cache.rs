//! The in-memory view a backend serves reads from: every object, the lists
//! in creation order and the claimed unique values. It decides nothing about
//! writes (the database does); a backend refreshes it from the database when
//! another process has written, and updates it after each of its own commits.

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use super::{Object, Page};
use crate::schema::{spec, ClaimSpace, Kind, Ty};

/// Every stored object, indexed for the API's reads. `Clone` so a backend can
/// publish immutable snapshots of it and copy one when it must.
#[derive(Default, Clone)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Cache {
    objects: HashMap<Uuid, Object>,
    /// Ids per (kind, parent), in creation order.
    lists: HashMap<(Kind, Option<Uuid>), BTreeMap<u64, Uuid>>,
    /// Claimed values: (namespace, value) → owners, in the order they
    /// claimed it (more than one only within a family: a space and its
    /// access methods sharing a URI or call ID).
    claims: HashMap<(ClaimSpace, String), Vec<Uuid>>,
}

impl Cache {
    /// A view of `objects`, as loaded from the database.
    pub(super) fn new(objects: Vec<Object>) -> Cache {
        let mut cache = Cache::default();
        for o in objects {
            cache.put(o);
        }
        cache
    }

    /// Records a committed object (new or changed).
    pub(super) fn put(&mut self, o: Object) {
        self.remove(o.id);
        for f in spec(o.kind).fields {
            if let (Some((space, _)), Some(v)) = (f.claim_space(), o.get(f.name)) {
                let owners = self.claims.entry((space, v.to_string())).or_default();
                if !owners.contains(&o.id) {
                    owners.push(o.id);
                }
            }
        }
        self.lists.entry((o.kind, o.parent)).or_default().insert(o.seq, o.id);
        self.objects.insert(o.id, o);
    }

    /// Forgets a deleted object.
    pub(super) fn remove(&mut self, id: Uuid) {
        let Some(o) = self.objects.remove(&id) else { return };
        for f in spec(o.kind).fields {
            if let (Some((space, _)), Some(v)) = (f.claim_space(), o.get(f.name)) {
                let key = (space, v.to_string());
                if let Some(owners) = self.claims.get_mut(&key) {
                    owners.retain(|o| *o != id);
                    if owners.is_empty() {
                        self.claims.remove(&key);
                    }
                }
            }
        }
        let key = (o.kind, o.parent);
        if let Some(list) = self.lists.get_mut(&key) {
            list.remove(&o.seq);
            // Gone with its last member, as a reload would have it (and a
            // deleted space's access methods leave nothing behind).
            if list.is_empty() {
                self.lists.remove(&key);
            }
        }
    }

    /// See [`super::Store::get`].
    pub(super) fn get(&self, kind: Kind, id: Uuid) -> Option<Object> {
        self.objects.get(&id).filter(|o| o.kind == kind).cloned()
    }

    /// See [`super::Store::list`].
    pub(super) fn list(
        &self,
        kind: Kind,
        parent: Option<Uuid>,
        keep: &mut dyn FnMut(&Object) -> bool,
        page: Page,
    ) -> (usize, Vec<Object>) {
        let Some(ids) = self.lists.get(&(kind, parent)) else { return (0, Vec::new()) };
        let mut total = 0;
        let mut out = Vec::new();
        for id in ids.values() {
            let Some(o) = self.objects.get(id) else { continue };
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

    /// See [`super::Store::page`].
    pub(super) fn page(&self, kind: Kind, parent: Option<Uuid>, page: Page) -> (usize, Vec<Object>) {
        let Some(ids) = self.lists.get(&(kind, parent)) else { return (0, Vec::new()) };
        let items = ids.values().skip(page.offset).take(page.limit).filter_map(|id| self.objects.get(id).cloned());
        (ids.len(), items.collect())
    }

    /// See [`super::Store::referenced_ids`].
    pub(super) fn referenced_ids(&self) -> HashSet<Uuid> {
        self.objects
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

    /// See [`super::Store::claim_owner`].
    pub(super) fn claim_owner(&self, space: ClaimSpace, value: &str) -> Option<Object> {
        self.claim_owners(space, value).into_iter().next()
    }

    /// See [`super::Store::claim_owners`].
    pub(super) fn claim_owners(&self, space: ClaimSpace, value: &str) -> Vec<Object> {
        let owners = self.claims.get(&(space, value.to_lowercase()));
        owners.into_iter().flatten().filter_map(|id| self.objects.get(id).cloned()).collect()
    }
}
