//! The embedded backend: one SQLite file in the data directory. Every write
//! is one transaction committed before the API answers, in WAL mode with
//! `synchronous=FULL`, so a `kill -9` (or a power cut) never loses a write a
//! client was told succeeded.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{Object, StoreError};
use crate::schema::{spec, Kind};

/// One write inside a transaction.
pub enum Write<'a> {
    /// Insert or replace an object.
    Put(&'a Object),
    /// Remove an object by id.
    Delete(Uuid),
}

/// The SQLite connection and the statements the store needs.
pub struct Sqlite {
    conn: Connection,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl Sqlite {
    /// Opens (creating if needed) `confero.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Sqlite, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("confero.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects (
                 id TEXT PRIMARY KEY,
                 kind TEXT NOT NULL,
                 parent TEXT,
                 origin TEXT,
                 seq INTEGER NOT NULL,
                 fields TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS api_users (
                 name TEXT PRIMARY KEY COLLATE NOCASE,
                 role TEXT NOT NULL,
                 hash TEXT NOT NULL
             );",
        )?;
        Ok(Sqlite { conn })
    }

    /// Every stored object, in creation order. Rows of kinds this version
    /// does not know, and fields it does not know, are skipped, not fatal.
    pub fn load(&self) -> Result<Vec<Object>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, kind, parent, origin, seq, fields FROM objects ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, parent, origin, seq, fields) = row?;
            let (Ok(id), Some(kind)) = (Uuid::parse_str(&id), Kind::from_db_name(&kind)) else { continue };
            let raw: BTreeMap<String, String> =
                serde_json::from_str(&fields).map_err(|e| StoreError::Backend(format!("object {id}: {e}")))?;
            let s = spec(kind);
            let fields = raw.into_iter().filter_map(|(k, v)| s.field(&k).map(|f| (f.name, v))).collect();
            out.push(Object {
                id,
                kind,
                parent: parent.and_then(|p| Uuid::parse_str(&p).ok()),
                origin: origin.and_then(|p| Uuid::parse_str(&p).ok()),
                seq: seq as u64,
                fields,
            });
        }
        Ok(out)
    }

    /// Applies `writes` in one transaction.
    pub fn commit(&mut self, writes: &[Write<'_>]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO objects (id, kind, parent, origin, seq, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut del = tx.prepare_cached("DELETE FROM objects WHERE id = ?1")?;
            for w in writes {
                match w {
                    Write::Put(o) => {
                        let fields =
                            serde_json::to_string(&o.fields).map_err(|e| StoreError::Backend(e.to_string()))?;
                        put.execute(params![
                            o.id.to_string(),
                            o.kind.db_name(),
                            o.parent.map(|p| p.to_string()),
                            o.origin.map(|p| p.to_string()),
                            o.seq as i64,
                            fields
                        ])?;
                    }
                    Write::Delete(id) => {
                        del.execute(params![id.to_string()])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored role and password hash of an API user.
    pub fn api_user(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT role, hash FROM api_users WHERE name = ?1", params![name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// Creates or replaces an API user.
    pub fn put_api_user(&self, name: &str, role: &str, hash: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO api_users (name, role, hash) VALUES (?1, ?2, ?3)",
            params![name, role, hash],
        )?;
        Ok(())
    }

    /// Removes an API user; false when there was none.
    pub fn remove_api_user(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM api_users WHERE name = ?1", params![name])? > 0)
    }

    /// All API users with their roles, by name.
    pub fn api_users(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT name, role FROM api_users ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
