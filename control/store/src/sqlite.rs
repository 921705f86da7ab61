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
//! Reads never wait for a write. The call bridge resolves dial plans (store
//! reads) on its signalling path, while a write can hold its transaction for
//! a commit's fsync, a bulk sync of thousands of spaces, or up to the busy
//! timeout while another process writes. So reads are served from an
//! immutable [`Snapshot`] of a [`Cache`] of every object, behind a lock held
//! only to clone or swap an `Arc`; the write path publishes a new snapshot
//! after each commit, before it returns (a process reads its own writes).
//!
//! Other processes' commits are seen through a read-only connection of its
//! own: `PRAGMA data_version` says whether anyone committed, and the
//! `store_version` counter (bumped by triggers on every change to `objects`,
//! whoever makes it) says whether the snapshot already shows that commit, so
//! our own writes never cost a reload. When it does not, one reader reloads on
//! a third connection while the others keep answering from the old snapshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::cache::Cache;
use super::{apply, singleton_id, ApiUser, Object, Page, RecordWrite, Store, StoreError};
use crate::schema::{spec, Change, ClaimSpace, Kind, Ty};

/// The layout version written to `PRAGMA user_version` once the claims table
/// has been made from the objects in its current layout (1: the table
/// exists; 2: claims keyed by owner, with the family that may share a
/// value).
const SCHEMA_VERSION: i64 = 2;

/// How long the write connection waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite store: three connections, each behind its own lock, and the
/// current snapshot. No lock a read needs is ever held by a write. Locks are
/// taken in this order only: `writer`, `check`, `reload`, then `view`.
pub struct SqliteStore {
    /// Held for a whole write transaction, fsync and busy waits included.
    writer: Mutex<Writer>,
    /// Read-only: held by a read only for `PRAGMA data_version` and, when it
    /// changed, one indexed row; also serves the API-user reads. It never
    /// waits for a busy database (no busy timeout): a read that cannot check
    /// answers from the snapshot it has.
    check: Mutex<Check>,
    /// Read-only: held for a whole reload, and only ever `try_lock`ed by
    /// reads, so one reader reloads while the others keep answering.
    reload: Mutex<Connection>,
    /// What reads are served from; the lock is held only to clone or swap the `Arc`.
    view: RwLock<Arc<Snapshot>>,
}

/// Every object as of one committed state. Never changed once published
/// (the writer only changes one no reader can reach any more).
#[derive(Clone)]
struct Snapshot {
    /// The `store_version` counter of the state it shows.
    version: i64,
    cache: Cache,
}

/// The write connection, and what lets a write update a snapshot in place.
struct Writer {
    conn: Connection,
    /// The snapshot this writer last published.
    published: Option<Arc<Snapshot>>,
    /// The snapshot `published` replaced, with the changes that turn it into
    /// `published`. Readers only hold a snapshot for the length of one read,
    /// so by the next write it is usually unshared: the writer replays those
    /// changes and its own onto it instead of copying the whole cache
    /// (double buffering: O(changed objects) per write, two caches in memory).
    spare: Option<(Arc<Snapshot>, Vec<Committed>)>,
}

/// The freshness check's connection, and what it last saw.
struct Check {
    conn: Connection,
    /// `PRAGMA data_version` and the `store_version` counter as last read:
    /// while the former is unchanged nobody has committed, so neither has the latter.
    seen: Option<(i64, i64)>,
}

/// What a committed transaction changed, for the cache.
#[derive(Clone)]
enum Committed {
    Put(Object),
    Removed(Uuid),
}

impl Committed {
    fn apply_to(&self, cache: &mut Cache) {
        match self {
            Committed::Put(o) => cache.put(o.clone()),
            Committed::Removed(id) => cache.remove(*id),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// The database holds password hashes and every passcode and secret: the
/// data directory is the owner's alone (0700) and so is the database (0600,
/// which SQLite gives its `-wal` and `-shm` files too). Applied on every
/// open, so a directory made by an older version is tightened.
fn keep_private(dir: &Path, db: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let fail = |p: &Path, e: std::io::Error| StoreError::Backend(format!("{}: {e}", p.display()));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| fail(dir, e))?;
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(db).map_err(|e| fail(db, e))?;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(|e| fail(&file, e))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, db);
    Ok(())
}

/// Locks a mutex whose holder may have panicked. Nothing here relies on
/// state a panic could leave half-done without also being re-checked (see
/// [`SqliteStore::lock_writer`]).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteStore {
    /// Opens (creating if needed) `confero.db` in `dir`, loading every object.
    /// Several stores, in one process or several, may open the same directory.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let path = dir.join("confero.db");
        keep_private(dir, &path)?;
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
        let read_only = || {
            Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )
        };
        let check = read_only()?;
        check.busy_timeout(Duration::ZERO)?;
        // The reload connection keeps rusqlite's default busy timeout: only
        // the one reader that reloads can wait on it.
        let reload = read_only()?;
        let snapshot = Arc::new(load_snapshot(&reload)?);
        Ok(SqliteStore {
            writer: Mutex::new(Writer { conn, published: None, spare: None }),
            check: Mutex::new(Check { conn: check, seen: None }),
            reload: Mutex::new(reload),
            view: RwLock::new(snapshot),
        })
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|poisoned| {
            self.writer.clear_poison();
            let mut writer = poisoned.into_inner();
            // A panic may have left the spare half-updated: forget it. A
            // commit whose snapshot was never published is caught by the
            // version check of the next read or write.
            writer.published = None;
            writer.spare = None;
            writer
        })
    }

    /// The current snapshot.
    fn current(&self) -> Arc<Snapshot> {
        self.view.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Makes `snapshot` current unless a newer one already is; false if not
    /// installed. The old snapshot is dropped after the lock is released, so
    /// freeing a whole cache never happens under it.
    fn install(&self, snapshot: &Arc<Snapshot>) -> bool {
        let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
        if view.version > snapshot.version {
            return false;
        }
        let old = std::mem::replace(&mut *view, snapshot.clone());
        drop(view);
        drop(old);
        true
    }

    /// Runs `read` on a snapshot that includes every commit so far (of this
    /// process or another), unless another reader is reloading it or the
    /// database cannot be read: then on the last one, without waiting.
    fn read<T>(&self, read: impl FnOnce(&Cache) -> T) -> T {
        let snapshot = self.current();
        let snapshot = match self.latest_version() {
            Ok(latest) if latest > snapshot.version => self.reload(latest).unwrap_or(snapshot),
            Ok(_) => snapshot,
            Err(e) => {
                tracing::warn!("store: serving the last view: {e}");
                snapshot
            }
        };
        read(&snapshot.cache)
    }

    /// The `store_version` counter of the latest commit of any connection.
    fn latest_version(&self) -> Result<i64, StoreError> {
        let mut check = lock(&self.check);
        // `data_version` before the counter: a commit between the two leaves
        // a newer counter beside an older `data_version`, which only costs a
        // re-read next time (the other order could hide that commit).
        let data_version: i64 = check.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        match check.seen {
            Some((seen, counter)) if seen == data_version => Ok(counter),
            _ => {
                let counter = version(&check.conn)?;
                check.seen = Some((data_version, counter));
                Ok(counter)
            }
        }
    }

    /// A snapshot at `latest` or newer, loaded by this reader; `None` when
    /// another reader is already loading one (this one answers from the
    /// snapshot it has rather than wait) or the load failed.
    fn reload(&self, latest: i64) -> Option<Arc<Snapshot>> {
        let conn = match self.reload.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        // Another reader (or a write) may have got there first.
        let current = self.current();
        if current.version >= latest {
            return Some(current);
        }
        match load_snapshot(&conn) {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                self.install(&snapshot);
                Some(snapshot)
            }
            Err(e) => {
                tracing::warn!("store: serving the last view: {e}");
                None
            }
        }
    }

    /// Runs `write` in one immediate transaction (holding SQLite's write lock
    /// from the start, so its checks see the latest commit of any process),
    /// commits, then publishes the snapshot with its changes before returning.
    fn write<T>(
        &self,
        write: impl FnOnce(&Connection) -> Result<(T, Vec<Committed>), StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.lock_writer();
        let Writer { conn, published, spare } = &mut *writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Nobody can commit until this transaction ends, so the counter names
        // the state its changes apply to; the current snapshot is that state
        // unless another process committed since it was loaded.
        let before = version(&tx)?;
        let current = self.current();
        let loaded = if current.version == before {
            None
        } else {
            Some(Snapshot { version: before, cache: Cache::new(load(&tx)?) })
        };
        let (out, committed) = write(&tx)?;
        let after = version(&tx)?;
        tx.commit()?;

        let (mut next, previous) = match loaded {
            Some(loaded) => (loaded, None),
            None => {
                let reusable = published.as_ref().is_some_and(|p| Arc::ptr_eq(p, &current));
                let updated = match spare.take() {
                    Some((old, pending)) if reusable => Arc::try_unwrap(old).ok().map(|mut old| {
                        for c in &pending {
                            c.apply_to(&mut old.cache);
                        }
                        old
                    }),
                    _ => None,
                };
                // A reader still holds the spare, or there is none (first
                // write, or a reload replaced the writer's snapshot): copy.
                (updated.unwrap_or_else(|| (*current).clone()), Some(current))
            }
        };
        for c in &committed {
            c.apply_to(&mut next.cache);
        }
        next.version = after;
        let next = Arc::new(next);
        if self.install(&next) {
            *spare = previous.map(|previous| (previous, committed));
            *published = Some(next);
        } else {
            // A reader already loaded a newer state; the next write copies it.
            *spare = None;
            *published = None;
        }
        Ok(out)
    }
}

/// The `store_version` counter as `conn` sees it.
fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT n FROM store_version WHERE id = 0", [], |r| r.get(0))?)
}

/// Every object and the counter, read in one transaction so they agree.
fn load_snapshot(conn: &Connection) -> Result<Snapshot, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let version = version(&tx)?;
    let cache = Cache::new(load(&tx)?);
    tx.commit()?;
    Ok(Snapshot { version, cache })
}

/// Creates the tables, and fills `claims` from the objects of a database made
/// before uniqueness was a constraint. The `store_version` counter is bumped
/// by triggers, so a change to `objects` by anyone (an older Confero, the
/// `sqlite3` shell) shows as a new version and is reloaded. Runs under the write lock, so processes
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
             family TEXT NOT NULL,
             PRIMARY KEY (space, value, owner)
         );
         CREATE INDEX IF NOT EXISTS claims_owner ON claims (owner);
         CREATE TABLE IF NOT EXISTS api_users (
             name TEXT PRIMARY KEY COLLATE NOCASE,
             role TEXT NOT NULL,
             hash TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS records (
             collection TEXT NOT NULL,
             id TEXT NOT NULL,
             body TEXT NOT NULL,
             PRIMARY KEY (collection, id)
         );
         CREATE TABLE IF NOT EXISTS store_version (
             id INTEGER PRIMARY KEY CHECK (id = 0),
             n INTEGER NOT NULL
         );
         INSERT OR IGNORE INTO store_version (id, n) VALUES (0, 0);
         CREATE TRIGGER IF NOT EXISTS objects_inserted AFTER INSERT ON objects
             BEGIN UPDATE store_version SET n = n + 1; END;
         CREATE TRIGGER IF NOT EXISTS objects_updated AFTER UPDATE ON objects
             BEGIN UPDATE store_version SET n = n + 1; END;
         CREATE TRIGGER IF NOT EXISTS objects_deleted AFTER DELETE ON objects
             BEGIN UPDATE store_version SET n = n + 1; END;",
    )?;
    // The SCRAM credential came after the table: added to older databases.
    let has_scram = tx.prepare("SELECT 1 FROM pragma_table_info('api_users') WHERE name = 'scram'")?.exists([])?;
    if !has_scram {
        tx.execute_batch("ALTER TABLE api_users ADD COLUMN scram TEXT")?;
    }
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        // Claims are derived from the objects: made afresh in the current
        // layout (version 2 keys them by owner, with the family that may
        // share a value).
        tx.execute_batch(
            "DROP TABLE claims;
             CREATE TABLE claims (
                 space TEXT NOT NULL,
                 value TEXT NOT NULL,
                 owner TEXT NOT NULL,
                 field TEXT NOT NULL,
                 family TEXT NOT NULL,
                 PRIMARY KEY (space, value, owner)
             );
             CREATE INDEX IF NOT EXISTS claims_owner ON claims (owner);",
        )?;
        let mut claim = tx
            .prepare("INSERT OR IGNORE INTO claims (space, value, owner, field, family) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for o in load(&tx)? {
            for f in spec(o.kind).fields {
                if let (Some((space, _)), Some(v)) = (f.claim_space(), o.get(f.name)) {
                    let family = f.claim_family(&o).to_string();
                    claim.execute(params![space.db_name(), v, o.id.to_string(), f.name, family])?;
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
    let mut claim =
        conn.prepare_cached("INSERT INTO claims (space, value, owner, field, family) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    // A value another family holds is taken; within a family it may be
    // shared (the API tells members apart by passcode).
    let mut held_elsewhere =
        conn.prepare_cached("SELECT 1 FROM claims WHERE space = ?1 AND value = ?2 AND family != ?3 LIMIT 1")?;
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
            let family = f.claim_family(obj).to_string();
            if held_elsewhere.exists(params![space.db_name(), v, family])? {
                return Err(StoreError::Duplicate(reason));
            }
            claim
                .execute(params![space.db_name(), v, obj.id.to_string(), f.name, family])
                .map_err(|e| taken(e, reason))?;
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

    fn claim_owners(&self, space: ClaimSpace, value: &str) -> Vec<Object> {
        self.read(|c| c.claim_owners(space, value))
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
        // On the check connection: a login never waits for a write either.
        Ok(lock(&self.check)
            .conn
            .query_row("SELECT name, role, hash, scram FROM api_users WHERE name = ?1", params![name], |r| {
                Ok(ApiUser { name: r.get(0)?, role: r.get(1)?, hash: r.get(2)?, scram: r.get(3)? })
            })
            .optional()?)
    }

    fn put_api_user(&self, user: &ApiUser) -> Result<(), StoreError> {
        self.lock_writer().conn.execute(
            "INSERT OR REPLACE INTO api_users (name, role, hash, scram) VALUES (?1, ?2, ?3, ?4)",
            params![user.name, user.role, user.hash, user.scram],
        )?;
        Ok(())
    }

    fn remove_api_user(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.lock_writer().conn.execute("DELETE FROM api_users WHERE name = ?1", params![name])? > 0)
    }

    fn records(&self, collection: &str) -> Result<Vec<(Uuid, String)>, StoreError> {
        let check = lock(&self.check);
        let mut stmt =
            check.conn.prepare_cached("SELECT id, body FROM records WHERE collection = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map(params![collection], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push((Uuid::parse_str(&id).map_err(|e| StoreError::Backend(e.to_string()))?, body));
        }
        Ok(out)
    }

    fn write_records(&self, writes: &[RecordWrite]) -> Result<(), StoreError> {
        let mut writer = self.lock_writer();
        let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for w in writes {
            match &w.body {
                // An update keeps the rowid, so the record keeps its place.
                Some(body) => tx.execute(
                    "INSERT INTO records (collection, id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (collection, id) DO UPDATE SET body = excluded.body",
                    params![w.collection, w.id.to_string(), body],
                )?,
                None => tx.execute(
                    "DELETE FROM records WHERE collection = ?1 AND id = ?2",
                    params![w.collection, w.id.to_string()],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    fn api_users(&self) -> Result<Vec<ApiUser>, StoreError> {
        let check = lock(&self.check);
        let mut stmt = check.conn.prepare("SELECT name, role, hash, scram FROM api_users ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok(ApiUser { name: r.get(0)?, role: r.get(1)?, hash: r.get(2)?, scram: r.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{mpsc, Arc};
    use std::time::Instant;

    use super::super::conformance;
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_data_directory_and_the_database_are_the_owner_s_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("made");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("0755");
        let store = SqliteStore::open(&data).expect("opens");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("confero.db")), 0o600);
        drop(store);
        // An older, world-readable database is tightened on open.
        std::fs::set_permissions(data.join("confero.db"), std::fs::Permissions::from_mode(0o644)).expect("0644");
        let _store = SqliteStore::open(&data).expect("opens again");
        assert_eq!(mode(&data.join("confero.db")), 0o600);
        if data.join("confero.db-wal").exists() {
            assert_eq!(mode(&data.join("confero.db-wal")), 0o600);
        }
    }

    fn space(name: &str) -> Vec<Change> {
        conformance::changes(Kind::CoSpace, &format!("name={name}&uri={name}"))
    }

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

    /// A database whose claims table has the first layout (one owner per
    /// value) gets the current one: values stay taken across spaces, and
    /// a space's access method may now share its space's URI.
    #[test]
    fn a_database_with_first_layout_claims_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let space = store.create(Kind::CoSpace, None, &conformance::changes(Kind::CoSpace, "name=a&uri=old")).unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join("confero.db")).unwrap();
        conn.execute_batch(
            "DROP TABLE claims;
             CREATE TABLE claims (space TEXT NOT NULL, value TEXT NOT NULL, owner TEXT NOT NULL,
                                  field TEXT NOT NULL, PRIMARY KEY (space, value));
             INSERT INTO claims SELECT 'uri', 'old', id, 'uri' FROM objects;
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let store = open(dir.path());
        assert_eq!(
            store.create(Kind::CoSpace, None, &conformance::changes(Kind::CoSpace, "name=b&uri=old")),
            Err(StoreError::Duplicate("duplicateCoSpaceUri"))
        );
        let am = store.create(Kind::AccessMethod, Some(space.id), &conformance::changes(Kind::AccessMethod, "uri=old"));
        assert!(am.is_ok(), "{am:?}");
        assert_eq!(store.claim_owners(ClaimSpace::Uri, "old").len(), 2);
    }

    /// The call bridge's dial plan lookups must not wait for a write: while
    /// another process holds SQLite's write lock with a write of its own in
    /// progress, and this store's own write sits in the busy timeout holding
    /// its write path, reads still answer (from the last snapshot); once the
    /// other process commits, the next read sees its write.
    #[test]
    fn reads_answer_while_a_write_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let mine = store.create(Kind::CoSpace, None, &space("mine")).unwrap();

        let other = Connection::open(dir.path().join("confero.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let theirs = Uuid::new_v4();
        other
            .execute(
                "INSERT INTO objects (id, kind, parent, origin, seq, fields) VALUES (?1, ?2, NULL, NULL, 1000, ?3)",
                params![theirs.to_string(), Kind::CoSpace.db_name(), r#"{"name":"theirs"}"#],
            )
            .unwrap();

        let queued = {
            let store = store.clone();
            std::thread::spawn(move || store.create(Kind::CoSpace, None, &space("queued")))
        };
        // Setting the scene, not a timing assertion: wait until that write holds the write path.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.writer.try_lock().is_ok() {
            assert!(Instant::now() < deadline, "the queued write never started");
            std::thread::sleep(Duration::from_millis(1));
        }

        let (answer, answered) = mpsc::channel();
        {
            let store = store.clone();
            std::thread::spawn(move || {
                let _ = answer.send((
                    store.get(Kind::CoSpace, mine.id).map(|o| o.id),
                    store.get(Kind::CoSpace, theirs),
                    store.claim_owner(ClaimSpace::Uri, "MINE").map(|o| o.id),
                    store.all(Kind::CoSpace, None).len(),
                ));
            });
        }
        let reads = answered.recv_timeout(Duration::from_secs(2)).expect("reads answer while a write is in flight");
        assert_eq!(reads, (Some(mine.id), None, Some(mine.id), 1), "an uncommitted write is not seen");
        assert!(store.writer.try_lock().is_err(), "the queued write was still in flight during the reads");

        other.execute_batch("COMMIT").unwrap();
        assert_eq!(
            store.get(Kind::CoSpace, theirs).and_then(|o| o.get("name").map(str::to_owned)).as_deref(),
            Some("theirs")
        );
        let queued = queued.join().unwrap().expect("the queued write commits once the lock is free");
        assert_eq!(store.get(Kind::CoSpace, queued.id), Some(queued));
        assert_eq!(store.all(Kind::CoSpace, None).len(), 3);
    }

    /// Each write publishes exactly the committed state (updated in place on
    /// the spare snapshot, or copied when a reader still holds it), and the
    /// read after it is served from that snapshot rather than a reload.
    #[test]
    fn every_write_publishes_the_committed_state_without_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let db = Connection::open(dir.path().join("confero.db")).unwrap();
        let published_as_committed = |store: &SqliteStore| {
            let view = store.current();
            let committed = load_snapshot(&db).unwrap();
            assert_eq!((view.version, &view.cache), (committed.version, &committed.cache));
            let _ = store.get(Kind::CoSpace, Uuid::nil());
            assert!(Arc::ptr_eq(&store.current(), &view), "a read after an own write does not reload");
        };
        let a = store.create(Kind::CoSpace, None, &space("a")).unwrap();
        published_as_committed(&store);
        let b = store.create(Kind::CoSpace, None, &space("b")).unwrap();
        published_as_committed(&store);
        let guest = conformance::changes(Kind::AccessMethod, "uri=guest&callId=7");
        store.create(Kind::AccessMethod, Some(b.id), &guest).unwrap();
        published_as_committed(&store);
        store.update(Kind::CoSpace, a.id, &space("renamed")).unwrap();
        published_as_committed(&store);
        let held = store.current();
        store.update(Kind::CoSpace, b.id, &conformance::changes(Kind::CoSpace, "uri=")).unwrap();
        published_as_committed(&store);
        store.delete(Kind::CoSpace, b.id).unwrap();
        published_as_committed(&store);
        drop(held);
        let origin = Uuid::new_v4();
        let batch: Vec<_> = (1..=4).map(|i| space(&format!("g{i}"))).collect();
        store.replace_generated(Kind::CoSpace, origin, &batch).unwrap();
        published_as_committed(&store);
        store.replace_generated(Kind::CoSpace, origin, &batch[..2]).unwrap();
        published_as_committed(&store);
        store.delete(Kind::CoSpace, a.id).unwrap();
        published_as_committed(&store);
    }
}
