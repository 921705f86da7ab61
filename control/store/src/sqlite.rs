//! The embedded backend: one SQLite file in the data directory. Every write
//! is one `BEGIN IMMEDIATE` transaction committed before the API answers, in
//! WAL mode with `synchronous=FULL`, so a `kill -9` (or a power cut) never
//! loses a write a client was told succeeded.
//!
//! Everything that decides a write is SQL inside that transaction: the parent
//! and references are looked up in `objects`, and unique values are rows of
//! `claims`, whose primary key (space, value) refuses a second owner. SQLite's
//! write lock spans every connection to the file, so two processes on one data
//! directory keep the same promises as two threads of one.
//!
//! Reads come from a [`Cache`] of every object. `PRAGMA data_version` tells
//! when another connection has committed; the cache is then reloaded, so a
//! process sees the others' writes on its next read.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::cache::Cache;
use super::{apply, singleton_id, ApiUser, Object, Page, Store, StoreError};
use crate::schema::{spec, Change, ClaimSpace, Kind, Ty};

/// The layout version written to `PRAGMA user_version` once the claims table
/// has been filled from the objects (databases made before it existed).
const SCHEMA_VERSION: i64 = 1;

/// The SQLite store.
pub struct SqliteStore {
    inner: Mutex<Connected>,
}

/// The connection and the read view it keeps current.
struct Connected {
    conn: Connection,
    cache: Cache,
    /// The `data_version` the cache was loaded at; `None` forces a reload.
    data_version: Option<i64>,
}

/// What a committed transaction changed, for the cache.
enum Committed {
    Put(Object),
    Removed(Uuid),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `confero.db` in `dir`, loading every object.
    /// Several stores, in one process or several, may open the same directory.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let mut conn = Connection::open(dir.join("confero.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
        let mut connected = Connected { conn, cache: Cache::default(), data_version: None };
        connected.refresh()?;
        Ok(SqliteStore { inner: Mutex::new(connected) })
    }

    fn lock(&self) -> MutexGuard<'_, Connected> {
        // A panic between a commit and its cache update would leave the view
        // behind the database: reload it rather than trust it.
        self.inner.lock().unwrap_or_else(|poisoned| {
            self.inner.clear_poison();
            let mut connected = poisoned.into_inner();
            connected.data_version = None;
            connected
        })
    }

    /// Runs `read` on a view that includes every commit so far, or on the
    /// last good view if the database cannot be read.
    fn read<T>(&self, read: impl FnOnce(&Cache) -> T) -> T {
        let mut connected = self.lock();
        if let Err(e) = connected.refresh() {
            tracing::warn!("store: serving the last view: {e}");
        }
        read(&connected.cache)
    }

    /// Runs `write` in one immediate transaction (holding SQLite's write lock
    /// from the start, so its checks see the latest commit of any process),
    /// commits, then brings the cache up to date.
    fn write<T>(
        &self,
        write: impl FnOnce(&Connection) -> Result<(T, Vec<Committed>), StoreError>,
    ) -> Result<T, StoreError> {
        let mut connected = self.lock();
        let Connected { conn, cache, data_version } = &mut *connected;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        refresh(&tx, cache, data_version)?;
        let (out, committed) = write(&tx)?;
        tx.commit()?;
        for c in committed {
            match c {
                Committed::Put(o) => cache.put(o),
                Committed::Removed(id) => cache.remove(id),
            }
        }
        Ok(out)
    }
}

impl Connected {
    fn refresh(&mut self) -> Result<(), StoreError> {
        refresh(&self.conn, &mut self.cache, &mut self.data_version)
    }
}

/// Reloads `cache` when another connection has committed since it was loaded.
fn refresh(conn: &Connection, cache: &mut Cache, seen: &mut Option<i64>) -> Result<(), StoreError> {
    let now: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
    if *seen != Some(now) {
        *cache = Cache::new(load(conn)?);
        *seen = Some(now);
    }
    Ok(())
}

/// Creates the tables, and fills `claims` from the objects of a database made
/// before uniqueness was a constraint. Runs under the write lock, so processes
/// opening one directory at once migrate it once.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS objects (
             id TEXT PRIMARY KEY,
             kind TEXT NOT NULL,
             parent TEXT,
             origin TEXT,
             seq INTEGER NOT NULL,
             fields TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS objects_parent ON objects (parent);
         CREATE INDEX IF NOT EXISTS objects_origin ON objects (origin);
         CREATE INDEX IF NOT EXISTS objects_seq ON objects (seq);
         CREATE TABLE IF NOT EXISTS claims (
             space TEXT NOT NULL,
             value TEXT NOT NULL,
             owner TEXT NOT NULL,
             field TEXT NOT NULL,
             PRIMARY KEY (space, value)
         );
         CREATE INDEX IF NOT EXISTS claims_owner ON claims (owner);
         CREATE TABLE IF NOT EXISTS api_users (
             name TEXT PRIMARY KEY COLLATE NOCASE,
             role TEXT NOT NULL,
             hash TEXT NOT NULL
         );",
    )?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        let mut claim =
            tx.prepare("INSERT OR IGNORE INTO claims (space, value, owner, field) VALUES (?1, ?2, ?3, ?4)")?;
        for o in load(&tx)? {
            for f in spec(o.kind).fields {
                if let (Some((space, _)), Some(v)) = (f.claim_space(), o.get(f.name)) {
                    claim.execute(params![space.db_name(), v, o.id.to_string(), f.name])?;
                }
            }
        }
        drop(claim);
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

const OBJECT_COLUMNS: &str = "SELECT id, kind, parent, origin, seq, fields FROM objects";

/// An object from its row; `None` for a kind this version does not know.
/// Fields it does not know are dropped, not fatal.
fn object_from(row: &Row<'_>) -> Result<Option<Object>, StoreError> {
    let (id, kind, parent, origin, seq, fields): (String, String, Option<String>, Option<String>, i64, String) =
        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?);
    let (Ok(id), Some(kind)) = (Uuid::parse_str(&id), Kind::from_db_name(&kind)) else { return Ok(None) };
    let raw: BTreeMap<String, String> =
        serde_json::from_str(&fields).map_err(|e| StoreError::Backend(format!("object {id}: {e}")))?;
    let s = spec(kind);
    Ok(Some(Object {
        id,
        kind,
        parent: parent.and_then(|p| Uuid::parse_str(&p).ok()),
        origin: origin.and_then(|p| Uuid::parse_str(&p).ok()),
        seq: seq as u64,
        fields: raw.into_iter().filter_map(|(k, v)| s.field(&k).map(|f| (f.name, v))).collect(),
    }))
}

/// Every stored object, in creation order.
fn load(conn: &Connection) -> Result<Vec<Object>, StoreError> {
    let mut stmt = conn.prepare(&format!("{OBJECT_COLUMNS} ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.extend(object_from(row)?);
    }
    Ok(out)
}

/// One stored object by id, as the transaction sees it.
fn object(conn: &Connection, id: Uuid) -> Result<Option<Object>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{OBJECT_COLUMNS} WHERE id = ?1"))?;
    let mut rows = stmt.query(params![id.to_string()])?;
    match rows.next()? {
        Some(row) => object_from(row),
        None => Ok(None),
    }
}

/// The kind of a stored object, if it exists.
fn kind_of(conn: &Connection, id: Uuid) -> Result<Option<Kind>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT kind FROM objects WHERE id = ?1")?;
    let kind: Option<String> = stmt.query_row(params![id.to_string()], |r| r.get(0)).optional()?;
    Ok(kind.and_then(|k| Kind::from_db_name(&k)))
}

/// The next creation number.
fn next_seq(conn: &Connection) -> Result<u64, StoreError> {
    let max: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM objects", [], |r| r.get(0))?;
    Ok(max as u64 + 1)
}

/// Writes `obj` with its claims, checking its references and that its unique
/// values are free. Fields are checked in their table order, so the reason
/// given is the first field in conflict.
fn put(conn: &Connection, obj: &Object) -> Result<(), StoreError> {
    let fields = serde_json::to_string(&obj.fields).map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO objects (id, kind, parent, origin, seq, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        obj.id.to_string(),
        obj.kind.db_name(),
        obj.parent.map(|p| p.to_string()),
        obj.origin.map(|p| p.to_string()),
        obj.seq as i64,
        fields
    ])?;
    conn.prepare_cached("DELETE FROM claims WHERE owner = ?1")?.execute(params![obj.id.to_string()])?;
    let mut claim = conn.prepare_cached("INSERT INTO claims (space, value, owner, field) VALUES (?1, ?2, ?3, ?4)")?;
    for f in spec(obj.kind).fields {
        let Some(v) = obj.get(f.name) else { continue };
        if let Ty::Ref(target) = f.ty {
            let found = match Uuid::parse_str(v) {
                Ok(id) => kind_of(conn, id)?,
                Err(_) => None,
            };
            if found != Some(target) {
                return Err(StoreError::MissingRef { field: f.name, kind: target });
            }
        }
        if let Some((space, reason)) = f.claim_space() {
            claim.execute(params![space.db_name(), v, obj.id.to_string(), f.name]).map_err(|e| taken(e, reason))?;
        }
    }
    Ok(())
}

/// A refused claim is the CMS reason; anything else is a backend failure.
fn taken(e: rusqlite::Error, reason: &'static str) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Duplicate(reason),
        _ => e.into(),
    }
}

/// `id` and every object under it.
fn with_descendants(conn: &Connection, id: Uuid) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE doomed (id) AS (
             VALUES (?1) UNION ALL SELECT objects.id FROM objects JOIN doomed ON objects.parent = doomed.id
         ) SELECT id FROM doomed",
    )?;
    let ids = stmt.query_map(params![id.to_string()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for id in ids {
        if let Ok(id) = Uuid::parse_str(&id?) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Deletes objects and frees their claims.
fn erase(conn: &Connection, ids: &[Uuid]) -> Result<(), StoreError> {
    let mut claims = conn.prepare_cached("DELETE FROM claims WHERE owner = ?1")?;
    let mut objects = conn.prepare_cached("DELETE FROM objects WHERE id = ?1")?;
    for id in ids {
        claims.execute(params![id.to_string()])?;
        objects.execute(params![id.to_string()])?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn get(&self, kind: Kind, id: Uuid) -> Option<Object> {
        self.read(|c| c.get(kind, id))
    }

    fn list(
        &self,
        kind: Kind,
        parent: Option<Uuid>,
        keep: &mut dyn FnMut(&Object) -> bool,
        page: Page,
    ) -> (usize, Vec<Object>) {
        self.read(|c| c.list(kind, parent, keep, page))
    }

    fn page(&self, kind: Kind, parent: Option<Uuid>, page: Page) -> (usize, Vec<Object>) {
        self.read(|c| c.page(kind, parent, page))
    }

    fn referenced_ids(&self) -> std::collections::HashSet<Uuid> {
        self.read(Cache::referenced_ids)
    }

    fn claim_owner(&self, space: ClaimSpace, value: &str) -> Option<Object> {
        self.read(|c| c.claim_owner(space, value))
    }

    fn create(&self, kind: Kind, parent: Option<Uuid>, changes: &[Change]) -> Result<Object, StoreError> {
        self.write(|tx| {
            if let Some(p) = parent {
                let parent_kind = spec(kind).parent.ok_or(StoreError::NotFound(kind))?;
                if kind_of(tx, p)? != Some(parent_kind) {
                    return Err(StoreError::NotFound(parent_kind));
                }
            }
            let seq = next_seq(tx)?;
            let mut obj = Object { id: Uuid::new_v4(), kind, parent, origin: None, seq, fields: BTreeMap::new() };
            apply(&mut obj, changes);
            put(tx, &obj)?;
            Ok((obj.clone(), vec![Committed::Put(obj)]))
        })
    }

    fn update(&self, kind: Kind, id: Uuid, changes: &[Change]) -> Result<Object, StoreError> {
        self.write(|tx| {
            let mut obj = match object(tx, id)? {
                Some(o) if o.kind == kind => o,
                None if spec(kind).singleton && id == singleton_id(kind) => {
                    Object { id, kind, parent: None, origin: None, seq: 0, fields: BTreeMap::new() }
                }
                _ => return Err(StoreError::NotFound(kind)),
            };
            apply(&mut obj, changes);
            put(tx, &obj)?;
            Ok((obj.clone(), vec![Committed::Put(obj)]))
        })
    }

    fn delete(&self, kind: Kind, id: Uuid) -> Result<(), StoreError> {
        self.write(|tx| {
            if kind_of(tx, id)? != Some(kind) {
                return Err(StoreError::NotFound(kind));
            }
            let doomed = with_descendants(tx, id)?;
            erase(tx, &doomed)?;
            Ok(((), doomed.into_iter().map(Committed::Removed).collect()))
        })
    }

    fn replace_generated(&self, kind: Kind, origin: Uuid, objects: &[Vec<Change>]) -> Result<usize, StoreError> {
        self.write(|tx| {
            let old: Vec<String> = tx
                .prepare_cached("SELECT id FROM objects WHERE origin = ?1")?
                .query_map(params![origin.to_string()], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut doomed = Vec::new();
            for id in old.iter().filter_map(|id| Uuid::parse_str(id).ok()) {
                doomed.extend(with_descendants(tx, id)?);
            }
            // Freed first, so the new set may reuse the old set's values.
            erase(tx, &doomed)?;
            let mut committed: Vec<Committed> = doomed.into_iter().map(Committed::Removed).collect();
            let first = next_seq(tx)?;
            for (seq, changes) in (first..).zip(objects) {
                let mut obj = Object {
                    id: Uuid::new_v4(),
                    kind,
                    parent: None,
                    origin: Some(origin),
                    seq,
                    fields: BTreeMap::new(),
                };
                apply(&mut obj, changes);
                put(tx, &obj)?;
                committed.push(Committed::Put(obj));
            }
            Ok((objects.len(), committed))
        })
    }

    fn api_user(&self, name: &str) -> Result<Option<ApiUser>, StoreError> {
        Ok(self
            .lock()
            .conn
            .query_row("SELECT name, role, hash FROM api_users WHERE name = ?1", params![name], |r| {
                Ok(ApiUser { name: r.get(0)?, role: r.get(1)?, hash: r.get(2)? })
            })
            .optional()?)
    }

    fn put_api_user(&self, user: &ApiUser) -> Result<(), StoreError> {
        self.lock().conn.execute(
            "INSERT OR REPLACE INTO api_users (name, role, hash) VALUES (?1, ?2, ?3)",
            params![user.name, user.role, user.hash],
        )?;
        Ok(())
    }

    fn remove_api_user(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.lock().conn.execute("DELETE FROM api_users WHERE name = ?1", params![name])? > 0)
    }

    fn api_users(&self) -> Result<Vec<ApiUser>, StoreError> {
        let connected = self.lock();
        let mut stmt = connected.conn.prepare("SELECT name, role, hash FROM api_users ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok(ApiUser { name: r.get(0)?, role: r.get(1)?, hash: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::conformance;
    use super::*;

    fn open(dir: &Path) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(dir).expect("open the SQLite store"))
    }

    conformance::suite!(open);

    #[test]
    fn a_database_made_before_the_claims_table_gets_its_claims() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let space = store.create(Kind::CoSpace, None, &conformance::changes(Kind::CoSpace, "name=a&uri=old")).unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join("confero.db")).unwrap();
        conn.execute_batch("DELETE FROM claims; PRAGMA user_version = 0;").unwrap();
        drop(conn);
        let store = open(dir.path());
        assert_eq!(
            store.create(Kind::CoSpace, None, &conformance::changes(Kind::CoSpace, "name=b&uri=old")),
            Err(StoreError::Duplicate("duplicateCoSpaceUri"))
        );
        assert_eq!(store.claim_owner(ClaimSpace::Uri, "OLD").map(|o| o.id), Some(space.id));
    }
}
