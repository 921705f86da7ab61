//! `userProfiles`: what a user (a `users` object) may do. A profile is
//! assigned to the user, to its tenant and to `system/profiles`; each setting
//! comes from the lowest of those that sets it, as with web bridge profiles.
//! Unset, a user may do everything and holds no personal license, as in CMS.
//!
//! Honoured where Confero has the feature: `canCreateCoSpaces` decides
//! whether the user may schedule a meeting in a space made from a template
//! (the scheduler), `hasLicense` whether the user holds a personal license
//! (license usage: `pmp`, `pmpAssigned`, `personalLicenses`). The others
//! (`canCreateCalls`, `canUseExternalDevices`, `canMakePhoneCalls`,
//! `userToUserMessagingAllowed`) name features the web app and XMPP server
//! do not have yet.

use uuid::Uuid;

use confero_store::schema::Kind;
use confero_store::{Object, Store};

/// The settings in force for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPolicy {
    /// May make spaces (from templates, when scheduling).
    pub can_create_co_spaces: bool,
    /// Holds a personal license.
    pub has_license: bool,
}

fn profile_of(store: &dyn Store, holder: Option<&Object>) -> Option<Object> {
    let id = Uuid::parse_str(holder?.get("userProfile")?).ok()?;
    store.get(Kind::UserProfile, id)
}

impl UserPolicy {
    /// The policy of `user` (a `users` object).
    pub fn of(store: &dyn Store, user: &Object) -> UserPolicy {
        let tenant = user.get("tenant").and_then(|t| Uuid::parse_str(t).ok()).and_then(|t| store.get(Kind::Tenant, t));
        let system = store.singleton(Kind::SystemProfiles);
        let chain: Vec<Object> =
            [profile_of(store, Some(user)), profile_of(store, tenant.as_ref()), profile_of(store, Some(&system))]
                .into_iter()
                .flatten()
                .collect();
        let setting = |name: &str| chain.iter().find_map(|p| p.get(name)).map(|v| v == "true");
        UserPolicy {
            can_create_co_spaces: setting("canCreateCoSpaces").unwrap_or(true),
            has_license: setting("hasLicense").unwrap_or(false),
        }
    }

    /// The users holding a personal license.
    pub fn licensed(store: &dyn Store) -> Vec<Object> {
        store.all(Kind::User, None).into_iter().filter(|u| UserPolicy::of(store, u).has_license).collect()
    }
}
