//! Users, MMP style (`user add NAME admin|api|user`): `admin` and `api` use
//! the API; `user` signs in to the web app only (an [`Authenticator`] is made
//! for the roles its listener admits, and treats anyone else as unknown). Passwords are kept only
//! as Argon2id hashes. Checking a hash is deliberately slow, so a verified
//! (user, password) pair is remembered by a SHA-256 digest together with the
//! stored hash it matched: a password change or removal (even by the CLI in
//! another process) shows at once, because the stored hash is read on every
//! request and compared.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest, Sha256};

use confero_store::{ApiUser, Store, StoreError};
use tokio::sync::Semaphore;

use crate::throttle::{Throttle, ThrottlePolicy};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Full administrator (API and CLI).
    Admin,
    /// API access only.
    Api,
    /// The web app only (sign in, "My spaces"); never the API.
    User,
}

/// The roles the API admits.
pub const API_ROLES: &[Role] = &[Role::Admin, Role::Api];
/// The roles the web app's sign-in admits.
pub const WEB_ROLES: &[Role] = &[Role::User];

impl Role {
    /// The MMP word.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Api => "api",
            Role::User => "user",
        }
    }

    /// Parses the MMP word.
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "api" => Some(Role::Api),
            "user" => Some(Role::User),
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
/// Web users (`user`) also get a SCRAM-SHA-1 credential, for XMPP clients.
pub fn set_user(store: &dyn Store, name: &str, role: Role, password: &str) -> Result<(), StoreError> {
    let hash = hash_password(password)?;
    let scram = (role == Role::User).then(|| {
        let salt: [u8; 16] = rand::random();
        crate::scram::ScramCredential::new(password, &salt, crate::scram::ITERATIONS).to_text()
    });
    store.put_api_user(&ApiUser { name: name.to_string(), role: role.as_str().to_string(), hash, scram })
}

/// The SCRAM-SHA-1 credential of web user `name`, if it has one.
pub fn scram_credential(store: &dyn Store, name: &str) -> Option<crate::scram::ScramCredential> {
    let user = store.api_user(name).ok()??;
    if Role::parse(&user.role) != Some(Role::User) {
        return None;
    }
    crate::scram::ScramCredential::parse(user.scram.as_deref()?)
}

/// Removes a user; false when there was none.
pub fn remove_user(store: &dyn Store, name: &str) -> Result<bool, StoreError> {
    store.remove_api_user(name)
}

/// Users and roles.
pub fn list_users(store: &dyn Store) -> Result<Vec<(String, String)>, StoreError> {
    Ok(store.api_users()?.into_iter().map(|u| (u.name, u.role)).collect())
}

/// Argon2id checks that may run at once. Each holds 19 MiB for tens of
/// milliseconds: without a bound, a hundred wrong passwords at once took the
/// server to 2 GB. One per core of a small machine.
pub const MAX_HASHING: usize = 2;

/// Checks that may wait for a [`MAX_HASHING`] slot; past this a request is
/// answered [`Verdict::Busy`] at once rather than piling up.
pub const MAX_WAITING: usize = 64;

/// What a credential check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The user exists with this password.
    Allowed,
    /// Wrong user or password. `throttled_now`: this failure started the
    /// source's backoff, the moment to raise an alarm and log (once per
    /// window).
    Denied {
        /// This failure started a backoff.
        throttled_now: bool,
    },
    /// The source had too many failures; it may try again after this long.
    Throttled(Duration),
    /// Too many checks are waiting; the client should retry.
    Busy,
}

/// Checks API credentials: cheap for credentials verified before, through a
/// bounded gate of Argon2id checks otherwise, with per-source throttling of
/// wrong guesses.
pub struct Authenticator {
    store: Arc<dyn Store>,
    verified: Mutex<HashMap<String, (String, [u8; 32])>>,
    hashing: Semaphore,
    waiting: AtomicUsize,
    /// Checked for unknown names, so an unknown name costs a known one's time
    /// and names cannot be told apart by timing.
    dummy: String,
    throttle: Throttle,
    /// Argon2 work areas, one per [`MAX_HASHING`] slot, kept between checks:
    /// allocated afresh on whichever blocking thread runs a check, the
    /// allocator kept 19 MiB per thread's arena (1 GB with the gate alone).
    memory: Mutex<Vec<Vec<Block>>>,
    /// Users of other roles are unknown here: a web user's password must
    /// never open the API.
    roles: &'static [Role],
    /// Accounts checked by another system (LDAP users), if any.
    directory: Option<Arc<dyn Directory>>,
}

/// Verifies `password` against the PHC string `hash` with `memory` as the
/// Argon2 work area (grown to what the hash's parameters need, then reused).
fn verify_in(memory: &mut Vec<Block>, hash: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else { return false };
    let (Ok(params), Ok(algorithm)) = (Params::try_from(&hash), Algorithm::try_from(hash.algorithm)) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..]).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

/// A user another system vouches for: an LDAP-imported user, whose
/// password is checked by a bind to the directory, not against a hash here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAccount {
    /// The directory's handle on the account (for LDAP, the `users` id).
    pub handle: String,
    /// The name the account is known by once signed in (for LDAP, its JID,
    /// whatever form of it was typed).
    pub name: String,
}

/// Accounts checked elsewhere (an LDAP directory). The [`Authenticator`]
/// asks it about names it has no local user for, inside the same throttle
/// and the same bounded gate as its own checks.
pub trait Directory: Send + Sync {
    /// Whether any directory is configured; when none is, checks are as if
    /// there were no directory at all. Called on the blocking pool.
    fn configured(&self) -> bool;
    /// The account `name` signs in as, if the directory has one. Called on
    /// the blocking pool (a store read).
    fn find(&self, name: &str) -> Option<DirectoryAccount>;
    /// Whether `password` is `account`'s. With `None` it makes the same
    /// round trips for a made-up account and answers false, so that a name
    /// the directory does not know costs what one it knows does.
    fn verify(&self, account: Option<DirectoryAccount>, password: String)
        -> Pin<Box<dyn Future<Output = bool> + Send>>;
}

/// Longest a directory check may take before it counts as a refusal; it
/// holds one of the [`MAX_HASHING`] slots meanwhile.
pub const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(8);

enum Lookup {
    Verified,
    /// The stored hash of a local user (none for an unknown name), the
    /// directory account the name is, and whether a directory is configured.
    Candidate {
        hash: Option<String>,
        account: Option<DirectoryAccount>,
        directory: bool,
    },
}

impl Authenticator {
    /// Checks against the API users ([`API_ROLES`]) in `store`, throttling
    /// as `policy` says.
    pub fn new(store: Arc<dyn Store>, policy: ThrottlePolicy) -> Authenticator {
        Authenticator::for_roles(store, policy, API_ROLES)
    }

    /// Checks against the users in `store` whose role is one of `roles`;
    /// anyone else is checked like an unknown name (the dummy hash, the same
    /// time) and refused.
    pub fn for_roles(store: Arc<dyn Store>, policy: ThrottlePolicy, roles: &'static [Role]) -> Authenticator {
        let dummy = hash_password(&format!("{:x}", Sha256::digest(SaltString::generate(&mut OsRng).as_str())))
            .unwrap_or_else(|_| String::new());
        Authenticator {
            store,
            verified: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(MAX_HASHING),
            waiting: AtomicUsize::new(0),
            dummy,
            throttle: Throttle::new(policy),
            memory: Mutex::new(Vec::new()),
            roles,
            directory: None,
        }
    }

    /// Also admits the accounts of `directory` (the web app's LDAP users).
    /// Every check then asks the directory too — about a decoy when the name
    /// is local or unknown — alongside the Argon2 check, so that which kind
    /// of name it was does not show in the time the answer takes.
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Authenticator {
        self.directory = Some(directory);
        self
    }

    /// Checks `user` and `password` from `source`. A pair verified before
    /// (against the hash stored now) passes at once, even from a throttled
    /// source — it proves the password, and a throttled address may be shared
    /// with an attacker. Anything else waits for one of [`MAX_HASHING`] slots.
    pub async fn check(self: &Arc<Self>, source: IpAddr, user: &str, password: &str) -> Verdict {
        self.check_as(source, user, password).await.0
    }

    /// [`Authenticator::check`], and the name the user is known by: the
    /// directory's for a directory account (an LDAP user's JID, when the
    /// part before `@` was typed), else `user` as given.
    pub async fn check_as(self: &Arc<Self>, source: IpAddr, user: &str, password: &str) -> (Verdict, String) {
        let (verdict, name) = self.check_inner(source, user, password).await;
        (verdict, name.unwrap_or_else(|| user.to_string()))
    }

    async fn check_inner(self: &Arc<Self>, source: IpAddr, user: &str, password: &str) -> (Verdict, Option<String>) {
        let digest: [u8; 32] = Sha256::digest(format!("{user}\0{password}").as_bytes()).into();
        let key = user.to_ascii_lowercase();
        let me = self.clone();
        let (name, k) = (user.to_string(), key.clone());
        let lookup = tokio::task::spawn_blocking(move || me.lookup(&name, &k, &digest)).await;
        let (stored, account, directory) = match lookup {
            Ok(Lookup::Verified) => return (Verdict::Allowed, None),
            Ok(Lookup::Candidate { hash, account, directory }) => (hash, account, directory),
            Err(_) => (None, None, false),
        };
        if let Some(wait) = self.throttle.blocked(source, Instant::now()) {
            return (Verdict::Throttled(wait), None);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return (Verdict::Busy, None);
        }
        let permit = self.hashing.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let Ok(_permit) = permit else { return (Verdict::Busy, None) };
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.clone());
        let pw = password.to_string();
        let checked = hash.clone();
        let me = self.clone();
        let hashed = tokio::task::spawn_blocking(move || {
            let mut memory = me.memory.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
            let ok = verify_in(&mut memory, &checked, &pw);
            me.memory.lock().unwrap_or_else(|p| p.into_inner()).push(memory);
            ok
        });
        let directory_name = account.as_ref().map(|a| a.name.clone());
        let asked = async {
            match (&self.directory, directory) {
                (Some(d), true) => {
                    let check = d.verify(account, password.to_string());
                    tokio::time::timeout(DIRECTORY_TIMEOUT, check).await.unwrap_or(false)
                }
                _ => false,
            }
        };
        let (hashed, asked) = tokio::join!(hashed, asked);
        let hashed = hashed.unwrap_or(false);
        if directory_name.is_some() && asked {
            self.throttle.succeeded(source);
            (Verdict::Allowed, directory_name)
        } else if hashed && known {
            self.verified.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (hash, digest));
            self.throttle.succeeded(source);
            (Verdict::Allowed, None)
        } else {
            (Verdict::Denied { throttled_now: self.throttle.failed(source, Instant::now()) }, None)
        }
    }

    /// The stored hash of `user` (read on every request, so a change by the
    /// CLI shows at once), or `Verified` when this pair matched it before;
    /// for a name with no local user, the directory's account, if any.
    fn lookup(&self, user: &str, key: &str, digest: &[u8; 32]) -> Lookup {
        let directory = self.directory.as_ref().is_some_and(|d| d.configured());
        let local = match self.store.api_user(user) {
            Ok(Some(ApiUser { hash, role, .. })) if Role::parse(&role).is_some_and(|r| self.roles.contains(&r)) => {
                Some(hash)
            }
            _ => None,
        };
        let Some(stored) = local else {
            let account = if directory { self.directory.as_ref().and_then(|d| d.find(user)) } else { None };
            return Lookup::Candidate { hash: None, account, directory };
        };
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(key) {
            Some((hash, d)) if *hash == stored && d == digest => Lookup::Verified,
            _ => Lookup::Candidate { hash: Some(stored), account: None, directory },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confero_store::SqliteStore;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn add_check_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        set_user(&*store, "admin", Role::Admin, "s3cret").unwrap();
        let auth = Arc::new(Authenticator::new(store.clone(), ThrottlePolicy::default()));
        let denied = Verdict::Denied { throttled_now: false };
        assert_eq!(auth.check(HERE, "admin", "s3cret").await, Verdict::Allowed);
        assert_eq!(auth.check(HERE, "admin", "s3cret").await, Verdict::Allowed);
        assert_eq!(auth.check(HERE, "admin", "wrong").await, denied);
        assert_eq!(auth.check(HERE, "nobody", "s3cret").await, denied);
        set_user(&*store, "admin", Role::Admin, "other").unwrap();
        assert_eq!(auth.check(HERE, "admin", "s3cret").await, denied);
        assert_eq!(auth.check(HERE, "admin", "other").await, Verdict::Allowed);
        assert!(remove_user(&*store, "admin").unwrap());
        assert_eq!(auth.check(HERE, "admin", "other").await, denied);
        let stored = store.api_user("admin").unwrap();
        assert!(stored.is_none());
    }

    #[tokio::test]
    async fn each_listener_admits_only_its_roles() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        set_user(&*store, "ann", Role::User, "pw").unwrap();
        set_user(&*store, "admin", Role::Admin, "pw").unwrap();
        let api = Arc::new(Authenticator::new(store.clone(), ThrottlePolicy::default()));
        let web = Arc::new(Authenticator::for_roles(store, ThrottlePolicy::default(), WEB_ROLES));
        let denied = Verdict::Denied { throttled_now: false };
        assert_eq!(api.check(HERE, "ann", "pw").await, denied);
        assert_eq!(api.check(HERE, "admin", "pw").await, Verdict::Allowed);
        assert_eq!(web.check(HERE, "ann", "pw").await, Verdict::Allowed);
        assert_eq!(web.check(HERE, "admin", "pw").await, denied);
    }

    #[tokio::test]
    async fn a_throttled_source_keeps_verified_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        set_user(&*store, "admin", Role::Admin, "s3cret").unwrap();
        let policy = ThrottlePolicy { failures: 2, ..ThrottlePolicy::default() };
        let auth = Arc::new(Authenticator::new(store.clone(), policy));
        assert_eq!(auth.check(HERE, "admin", "s3cret").await, Verdict::Allowed);
        assert_eq!(auth.check(HERE, "admin", "a").await, Verdict::Denied { throttled_now: false });
        assert_eq!(auth.check(HERE, "nobody", "b").await, Verdict::Denied { throttled_now: true });
        assert!(matches!(auth.check(HERE, "admin", "c").await, Verdict::Throttled(_)));
        assert_eq!(auth.check(HERE, "admin", "s3cret").await, Verdict::Allowed);
    }

    /// A directory that knows `ana` (password `ana-pw`) and counts the
    /// decoy checks made for other names.
    struct FakeDirectory {
        decoys: AtomicUsize,
    }

    impl Directory for FakeDirectory {
        fn configured(&self) -> bool {
            true
        }
        fn find(&self, name: &str) -> Option<DirectoryAccount> {
            (name == "ana").then(|| DirectoryAccount { handle: "ana-handle".into(), name: "ana@example.test".into() })
        }
        fn verify(
            &self,
            account: Option<DirectoryAccount>,
            password: String,
        ) -> Pin<Box<dyn Future<Output = bool> + Send>> {
            if account.is_none() {
                self.decoys.fetch_add(1, Ordering::SeqCst);
            }
            let ok = account.is_some_and(|a| a.handle == "ana-handle") && password == "ana-pw";
            Box::pin(async move { ok })
        }
    }

    #[tokio::test]
    async fn directory_accounts_sign_in_and_other_names_ask_it_a_decoy() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        set_user(&*store, "carol", Role::User, "carol-pw").unwrap();
        let directory = Arc::new(FakeDirectory { decoys: AtomicUsize::new(0) });
        let policy = ThrottlePolicy { failures: 3, ..ThrottlePolicy::default() };
        let web = Arc::new(Authenticator::for_roles(store, policy, WEB_ROLES).with_directory(directory.clone()));
        let denied = Verdict::Denied { throttled_now: false };
        assert_eq!(web.check_as(HERE, "ana", "ana-pw").await, (Verdict::Allowed, "ana@example.test".to_string()));
        assert_eq!(web.check(HERE, "ana", "ana-pw").await, Verdict::Allowed, "asked again, not cached");
        assert_eq!(directory.decoys.load(Ordering::SeqCst), 0);
        assert_eq!(web.check_as(HERE, "carol", "carol-pw").await, (Verdict::Allowed, "carol".to_string()));
        assert_eq!(web.check(HERE, "nobody", "ana-pw").await, denied);
        assert_eq!(directory.decoys.load(Ordering::SeqCst), 2, "a local and an unknown name each ask a decoy");
        assert_eq!(web.check(HERE, "ana", "wrong").await, denied);
        // Wrong directory passwords count towards the source's throttle.
        assert_eq!(web.check(HERE, "ana", "wrong").await, Verdict::Denied { throttled_now: true });
        assert!(matches!(web.check(HERE, "ana", "ana-pw").await, Verdict::Throttled(_)));
    }
}
