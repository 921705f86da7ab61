//! API users, MMP style (`user add NAME admin|api`). Passwords are kept only
//! as Argon2id hashes. Checking a hash is deliberately slow, so a verified
//! (user, password) pair is remembered by a SHA-256 digest together with the
//! stored hash it matched: a password change or removal (even by the CLI in
//! another process) shows at once, because the stored hash is read on every
//! request and compared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use confero_store::{ApiUser, Store, StoreError};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Full administrator (API and CLI).
    Admin,
    /// API access only.
    Api,
}

impl Role {
    /// The MMP word.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Api => "api",
        }
    }

    /// Parses the MMP word.
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "api" => Some(Role::Api),
            _ => None,
        }
    }
}

/// Hashes a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Backend(format!("password hash: {e}")))
}

/// Creates or updates a user.
pub fn set_user(store: &dyn Store, name: &str, role: Role, password: &str) -> Result<(), StoreError> {
    let hash = hash_password(password)?;
    store.put_api_user(&ApiUser { name: name.to_string(), role: role.as_str().to_string(), hash })
}

/// Removes a user; false when there was none.
pub fn remove_user(store: &dyn Store, name: &str) -> Result<bool, StoreError> {
    store.remove_api_user(name)
}

/// Users and roles.
pub fn list_users(store: &dyn Store) -> Result<Vec<(String, String)>, StoreError> {
    Ok(store.api_users()?.into_iter().map(|u| (u.name, u.role)).collect())
}

/// Checks API credentials.
pub struct Authenticator {
    store: Arc<dyn Store>,
    verified: Mutex<HashMap<String, (String, [u8; 32])>>,
}

impl Authenticator {
    /// Checks against the users in `store`.
    pub fn new(store: Arc<dyn Store>) -> Authenticator {
        Authenticator { store, verified: Mutex::new(HashMap::new()) }
    }

    /// True when `user` exists with `password`. May take tens of
    /// milliseconds the first time: call it off the async workers.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let Ok(Some(ApiUser { hash: stored, .. })) = self.store.api_user(user) else { return false };
        let digest: [u8; 32] = Sha256::digest(format!("{user}\0{password}").as_bytes()).into();
        let key = user.to_ascii_lowercase();
        {
            let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((hash, d)) = cache.get(&key) {
                if *hash == stored && *d == digest {
                    return true;
                }
            }
        }
        let ok = PasswordHash::new(&stored)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        if ok {
            self.verified.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (stored, digest));
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confero_store::SqliteStore;

    #[test]
    fn add_check_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        set_user(&*store, "admin", Role::Admin, "s3cret").unwrap();
        let auth = Authenticator::new(store.clone());
        assert!(auth.check("admin", "s3cret"));
        assert!(auth.check("admin", "s3cret"));
        assert!(!auth.check("admin", "wrong"));
        assert!(!auth.check("nobody", "s3cret"));
        set_user(&*store, "admin", Role::Admin, "other").unwrap();
        assert!(!auth.check("admin", "s3cret"));
        assert!(auth.check("admin", "other"));
        assert!(remove_user(&*store, "admin").unwrap());
        assert!(!auth.check("admin", "other"));
        let stored = store.api_user("admin").unwrap();
        assert!(stored.is_none());
    }
}
