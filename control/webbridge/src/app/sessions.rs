//! Who a browser is: a signed-in web user's session (24 h, as CMS's JWTs
//! last) and the leg tokens a join hands out (one per leg; it names the leg
//! and the call bridge holding it, so a browser can only act on its own
//! leg). Both are random 256-bit tokens, kept in memory: a web bridge
//! restart signs everyone out, which is what restarting a CMS web bridge
//! does too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;

use crate::c2w::server::LinkId;

/// How long a session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// A leg token outlives any meeting; the call bridge forgets the leg first.
const LEG_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Sessions and legs kept at most: past this the oldest go, so a flood of
/// sign-ins cannot grow memory without bound.
const MAX_ENTRIES: usize = 100_000;

/// The leg a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegBinding {
    /// The call bridge link that holds the leg.
    pub link: LinkId,
    /// The leg's id.
    pub leg: String,
    /// Its call's id.
    pub call: String,
}

struct Entry<T> {
    value: T,
    expires: Instant,
}

/// Sessions and leg tokens.
#[derive(Default)]
pub struct Sessions {
    users: Mutex<HashMap<String, Entry<String>>>,
    legs: Mutex<HashMap<String, Entry<LegBinding>>>,
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn insert<T>(map: &Mutex<HashMap<String, Entry<T>>>, value: T, lifetime: Duration) -> String {
    let now = Instant::now();
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, e| e.expires > now);
        if map.len() >= MAX_ENTRIES {
            if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
    }
    let token = new_token();
    map.insert(token.clone(), Entry { value, expires: now + lifetime });
    token
}

fn lookup<T: Clone>(map: &Mutex<HashMap<String, Entry<T>>>, token: &str) -> Option<T> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    match map.get(token) {
        Some(e) if e.expires > Instant::now() => Some(e.value.clone()),
        Some(_) => {
            map.remove(token);
            None
        }
        None => None,
    }
}

impl Sessions {
    /// Signs `user` in: the session token for the cookie.
    pub fn open(&self, user: &str) -> String {
        insert(&self.users, user.to_string(), SESSION_LIFETIME)
    }

    /// The user of a live session.
    pub fn user(&self, token: &str) -> Option<String> {
        lookup(&self.users, token)
    }

    /// Signs out.
    pub fn close(&self, token: &str) {
        self.users.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
    }

    /// A token for a new leg.
    pub fn bind_leg(&self, binding: LegBinding) -> String {
        insert(&self.legs, binding, LEG_LIFETIME)
    }

    /// The leg a token stands for.
    pub fn leg(&self, token: &str) -> Option<LegBinding> {
        lookup(&self.legs, token)
    }

    /// Forgets a leg token (left, or ended elsewhere).
    pub fn unbind_leg(&self, token: &str) {
        self.legs.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unguessable_and_scoped() {
        let s = Sessions::default();
        let a = s.open("ann");
        let b = s.open("bob");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(s.user(&a).as_deref(), Some("ann"));
        assert_eq!(s.leg(&a), None, "a session token is not a leg token");
        s.close(&a);
        assert_eq!(s.user(&a), None);
        let binding = LegBinding { link: 1, leg: "l".into(), call: "c".into() };
        let t = s.bind_leg(binding.clone());
        assert_eq!(s.leg(&t), Some(binding));
        s.unbind_leg(&t);
        assert_eq!(s.leg(&t), None);
    }
}
