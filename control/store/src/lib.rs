//! The configuration store: every CMS configuration object and the API users,
//! behind one [`Store`] trait so that the embedded SQLite backend and a
//! PostgreSQL backend for clusters keep the same promises:
//!
//! - a write is acknowledged only once it is durably committed;
//! - a write is one transaction: the object, its uniqueness claims and its
//!   reference checks commit together or not at all;
//! - uniqueness (URIs, call IDs, secrets, JIDs, call bridge names) is a
//!   constraint of the database itself (a claims table keyed by namespace and
//!   value), so it holds between processes sharing one database, not only
//!   between the threads of one;
//! - lists come back in creation order, so paging is stable.
//!
//! No promise rests on a mutex inside one process: a backend may keep a read
//! cache, but every check that decides a write runs inside the database
//! transaction. [`conformance`] is the suite every backend must pass.
#![warn(missing_docs)]

mod cache;
#[cfg(test)]
pub(crate) mod conformance;
pub mod form;
pub mod layout_template;
pub mod schema;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::collections::{BTreeMap, HashSet};

use thiserror::Error;
use uuid::Uuid;

use crate::schema::{Change, ClaimSpace, Kind};
pub use sqlite::SqliteStore;

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

/// An API user as stored: the store keeps the record, `users` decides what
/// the role allows and how the password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUser {
    /// The login name; names differing only in case are the same user.
    pub name: String,
    /// The MMP role word (`admin`, `api`).
    pub role: String,
    /// The Argon2id PHC string of the password (never the password).
    pub hash: String,
    /// The SCRAM-SHA-1 credential of a web user's password (iterations,
    /// salt, StoredKey, ServerKey: never the password), so that XMPP clients
    /// can log in with SCRAM; none for API users and for users saved before.
    pub scram: Option<String>,
}

/// One write to a service's records (see [`Store::write_records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    /// The collection (`meetings`, `mails`, ...).
    pub collection: &'static str,
    /// The record's id.
    pub id: Uuid,
    /// Its new text; `None` deletes it.
    pub body: Option<String>,
}

/// The id a singleton kind (`system/profiles`, ...) is stored under: one per kind.
pub fn singleton_id(kind: Kind) -> Uuid {
    Uuid::from_u128(0xc0f0_0000_0000_4000_8000_0000_0000_0000 | kind as u128)
}

/// A configuration store. Object-safe: the API, the call bridge and the CLI
/// hold an `Arc<dyn Store>` and never know which database is underneath.
///
/// Reads are infallible by design: they are served from a view the backend
/// keeps current with the database (including other processes' writes), and
/// the call bridge reads dial plans and profiles on its signalling path where
/// a storage error could only be treated as "not there" anyway.
pub trait Store: Send + Sync {
    /// One object of `kind` by id.
    fn get(&self, kind: Kind, id: Uuid) -> Option<Object>;

    /// A page of the objects of `kind` under `parent` that `keep` accepts,
    /// with the number that match in all, in creation order.
    fn list(
        &self,
        kind: Kind,
        parent: Option<Uuid>,
        keep: &mut dyn FnMut(&Object) -> bool,
        page: Page,
    ) -> (usize, Vec<Object>);

    /// A page of all the objects of `kind` under `parent`, with their number:
    /// the unfiltered list, which a backend can skip through instead of scan.
    fn page(&self, kind: Kind, parent: Option<Uuid>, page: Page) -> (usize, Vec<Object>);

    /// The ids some object refers to through a reference field (`usageFilter`).
    fn referenced_ids(&self) -> HashSet<Uuid>;

    /// Which object owns a unique value (a space or access method by URI or
    /// call ID, a user by JID); the value is matched case-insensitively.
    fn claim_owner(&self, space: ClaimSpace, value: &str) -> Option<Object>;

    /// Every object that claims a value, first claimant first: more than
    /// one only where a space and its access methods share a URI or call ID
    /// (told apart by passcode).
    fn claim_owners(&self, space: ClaimSpace, value: &str) -> Vec<Object>;

    /// Creates an object from checked changes, under `parent` when its kind
    /// lives under another; refused if the parent or a referenced object is
    /// missing or a unique value is taken.
    fn create(&self, kind: Kind, parent: Option<Uuid>, changes: &[Change]) -> Result<Object, StoreError>;

    /// Changes an object (or creates a singleton on its first write), with
    /// the same checks as [`Store::create`]; an object keeps its own values.
    fn update(&self, kind: Kind, id: Uuid, changes: &[Change]) -> Result<Object, StoreError>;

    /// Deletes an object and everything that lives under it, freeing their
    /// unique values. Objects that refer to it keep the reference (as CMS does).
    fn delete(&self, kind: Kind, id: Uuid) -> Result<(), StoreError>;

    /// Replaces every object that bulk parameter set `origin` made with
    /// `objects` (each a list of changes for one new object of `kind`), in one
    /// transaction: either the whole new set is there or nothing changed. The
    /// new objects may reuse the unique values of the ones they replace.
    fn replace_generated(&self, kind: Kind, origin: Uuid, objects: &[Vec<Change>]) -> Result<usize, StoreError>;

    /// The stored API user called `name` (any case), read from the database
    /// each time so that a change by the CLI in another process shows at once.
    fn api_user(&self, name: &str) -> Result<Option<ApiUser>, StoreError>;

    /// Creates or replaces an API user.
    fn put_api_user(&self, user: &ApiUser) -> Result<(), StoreError>;

    /// Removes an API user; false when there was none.
    fn remove_api_user(&self, name: &str) -> Result<bool, StoreError>;

    /// Every API user, by name.
    fn api_users(&self) -> Result<Vec<ApiUser>, StoreError>;

    /// Every record of `collection`, in the order first written: the
    /// documents of services beside the CMS objects (the scheduler's
    /// meetings and mail queue), read from the database each time.
    fn records(&self, collection: &str) -> Result<Vec<(Uuid, String)>, StoreError>;

    /// Writes and deletes records in one transaction: all of them or none,
    /// so a meeting and the mails it sends are stored together.
    fn write_records(&self, writes: &[RecordWrite]) -> Result<(), StoreError>;

    /// A singleton (`system/profiles`, ...); empty until first written.
    fn singleton(&self, kind: Kind) -> Object {
        self.get(kind, singleton_id(kind)).unwrap_or_else(|| Object {
            id: singleton_id(kind),
            kind,
            parent: None,
            origin: None,
            seq: 0,
            fields: BTreeMap::new(),
        })
    }

    /// Every object of `kind` under `parent`, in creation order.
    fn all(&self, kind: Kind, parent: Option<Uuid>) -> Vec<Object> {
        self.list(kind, parent, &mut |_| true, Page { offset: 0, limit: usize::MAX }).1
    }
}

/// Applies checked changes to an object as it would be stored.
fn apply(obj: &mut Object, changes: &[Change]) {
    for c in changes {
        match &c.value {
            Some(v) => obj.fields.insert(c.field.name, v.clone()),
            None => obj.fields.remove(c.field.name),
        };
    }
}
