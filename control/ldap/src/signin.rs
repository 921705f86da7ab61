//! Web sign-in of LDAP-imported users: a name that is an imported user's
//! JID (or its part before `@`, when only one user has it) signs in by a
//! bind to the directory as that user's entry, with the sync's server and
//! the source's filter (so someone removed from the directory or the
//! source stops signing in at once, before the next sync). Plugged into
//! `confero-https`'s [`Authenticator`](confero_https::users::Authenticator),
//! whose throttle and bounded gate it runs inside.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use uuid::Uuid;

use confero_https::users::{Directory, DirectoryAccount};
use confero_store::schema::Kind;
use confero_store::Store;

use crate::directory::{self, Server};
use crate::sync::imported_users;

/// The imported users of a store, as a [`Directory`].
pub struct LdapAccounts {
    store: Arc<dyn Store>,
}

impl LdapAccounts {
    /// Over `store`'s users and LDAP configuration.
    pub fn new(store: Arc<dyn Store>) -> Arc<LdapAccounts> {
        Arc::new(LdapAccounts { store })
    }
}

/// What a bind needs: the server, the entry and the source's filter.
struct BindTarget {
    server: Server,
    dn: String,
    filter: String,
}

fn server_of(store: &dyn Store, source: &confero_store::Object) -> Option<Server> {
    let id = Uuid::parse_str(source.get("server")?).ok()?;
    Server::from_object(&store.get(Kind::LdapServer, id)?)
}

/// The bind for imported user `user`.
fn target_of(store: &dyn Store, user: Uuid) -> Option<BindTarget> {
    let (_, record) = imported_users(store).into_iter().find(|(id, _)| *id == user)?;
    let source = store.get(Kind::LdapSource, record.source)?;
    Some(BindTarget {
        server: server_of(store, &source)?,
        dn: record.dn,
        filter: source.get("filter").unwrap_or("").to_string(),
    })
}

/// A made-up entry under the first source's base DN: the bind for a name no
/// one has, which the directory refuses after the same round trips.
fn decoy(store: &dyn Store) -> Option<BindTarget> {
    let source = store.all(Kind::LdapSource, None).into_iter().next()?;
    let base = source.get("baseDn").unwrap_or("");
    Some(BindTarget {
        server: server_of(store, &source)?,
        dn: format!("cn=x{:032x},{base}", Uuid::new_v4().as_u128()),
        filter: source.get("filter").unwrap_or("").to_string(),
    })
}

impl Directory for LdapAccounts {
    fn configured(&self) -> bool {
        !self.store.all(Kind::LdapSource, None).is_empty()
    }

    fn find(&self, name: &str) -> Option<DirectoryAccount> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let mut found = imported_users(&*self.store).into_iter().filter_map(|(id, _)| {
            let user = self.store.get(Kind::User, id)?;
            let jid = user.get("userJid")?;
            let named = jid.eq_ignore_ascii_case(name)
                || jid.split_once('@').is_some_and(|(l, _)| l.eq_ignore_ascii_case(name));
            named.then(|| (id, jid.to_string()))
        });
        let (id, jid) = found.next()?;
        // A bare name two users share names neither.
        if found.next().is_some() {
            return None;
        }
        Some(DirectoryAccount { handle: id.to_string(), name: jid })
    }

    fn verify(
        &self,
        account: Option<DirectoryAccount>,
        password: String,
    ) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        let store = self.store.clone();
        Box::pin(async move {
            let user = account.as_ref().and_then(|a| Uuid::parse_str(&a.handle).ok());
            let target = tokio::task::spawn_blocking(move || match user {
                Some(id) => target_of(&*store, id).map(|t| (t, true)),
                None => decoy(&*store).map(|t| (t, false)),
            })
            .await
            .ok()
            .flatten();
            let Some((target, real)) = target else { return false };
            match directory::check_password(&target.server, &target.dn, &target.filter, &password).await {
                Ok(ok) => ok && real,
                Err(e) => {
                    tracing::warn!("LDAP sign-in: {e}");
                    false
                }
            }
        })
    }
}
