//! `webBridgeProfiles`: what a web bridge's web app allows — joining with a
//! passcode, with a join link's secret, signing in, guests who have not
//! signed in. A profile is assigned to the `webBridges` object, to its
//! tenant and to `system/profiles`; each setting comes from the lowest of
//! those that sets it (the web bridge's own, then its tenant's, then the
//! system's), and is allowed when none does, as CMS does.
//!
//! Applied by the call bridge, which has the configuration and knows which
//! web bridge a C2W link is, so a web bridge cannot grant itself more; shown
//! by the API as `effectiveWebBridgeProfile` of a web bridge, a tenant or
//! `system/profiles`.

use uuid::Uuid;

use confero_store::schema::Kind;
use confero_store::{Object, Store};

/// The settings in force for one web bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebPolicy {
    /// A typed passcode may admit a guest.
    pub allow_passcodes: bool,
    /// A join link's secret may stand for the passcode.
    pub allow_secrets: bool,
    /// Web users may sign in (and see "My spaces").
    pub user_portal_enabled: bool,
    /// Guests who have not signed in may join.
    pub allow_unauthenticated_guests: bool,
}

impl Default for WebPolicy {
    fn default() -> Self {
        WebPolicy {
            allow_passcodes: true,
            allow_secrets: true,
            user_portal_enabled: true,
            allow_unauthenticated_guests: true,
        }
    }
}

fn profile_of(store: &dyn Store, holder: Option<&Object>) -> Option<Object> {
    let id = Uuid::parse_str(holder?.get("webBridgeProfile")?).ok()?;
    store.get(Kind::WebBridgeProfile, id)
}

impl WebPolicy {
    /// The policy of the web bridge whose `webBridges` object is `web_bridge`.
    pub fn of(store: &dyn Store, web_bridge: Uuid) -> WebPolicy {
        let own = store.get(Kind::WebBridge, web_bridge);
        let tenant = own
            .as_ref()
            .and_then(|w| w.get("tenant"))
            .and_then(|t| Uuid::parse_str(t).ok())
            .and_then(|t| store.get(Kind::Tenant, t));
        WebPolicy::from_holders(store, own.as_ref(), tenant.as_ref())
    }

    /// The policy a web bridge of `tenant` (or of none) gets from its
    /// tenant's and the system's profiles.
    pub fn of_tenant(store: &dyn Store, tenant: Option<&Object>) -> WebPolicy {
        WebPolicy::from_holders(store, None, tenant)
    }

    fn from_holders(store: &dyn Store, own: Option<&Object>, tenant: Option<&Object>) -> WebPolicy {
        let system = store.singleton(Kind::SystemProfiles);
        let chain: Vec<Object> = [profile_of(store, own), profile_of(store, tenant), profile_of(store, Some(&system))]
            .into_iter()
            .flatten()
            .collect();
        let allowed = |name: &str| chain.iter().find_map(|p| p.get(name)).is_none_or(|v| v == "true");
        WebPolicy {
            allow_passcodes: allowed("allowPasscodes"),
            allow_secrets: allowed("allowSecrets"),
            user_portal_enabled: allowed("userPortalEnabled"),
            allow_unauthenticated_guests: allowed("allowUnauthenticatedGuests"),
        }
    }
}

/// The customization archive web bridge `web_bridge` uses: its own
/// `resourceArchive` (CMS before 3.0), else the lowest of its web bridge
/// profiles that names one (its own, its tenant's, the system's).
pub fn resource_archive(store: &dyn Store, web_bridge: Uuid) -> Option<String> {
    let own = store.get(Kind::WebBridge, web_bridge)?;
    let set = |o: &Object| o.get("resourceArchive").map(str::trim).filter(|a| !a.is_empty()).map(str::to_string);
    if let Some(archive) = set(&own) {
        return Some(archive);
    }
    let tenant = own.get("tenant").and_then(|t| Uuid::parse_str(t).ok()).and_then(|t| store.get(Kind::Tenant, t));
    let system = store.singleton(Kind::SystemProfiles);
    [profile_of(store, Some(&own)), profile_of(store, tenant.as_ref()), profile_of(store, Some(&system))]
        .into_iter()
        .flatten()
        .find_map(|p| set(&p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use confero_store::testing::{create, set};
    use confero_store::SqliteStore;

    #[test]
    fn the_lowest_profile_that_sets_a_field_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let strict = create(&store, Kind::WebBridgeProfile, "name=strict&allowPasscodes=false&allowSecrets=false");
        let tenant_profile = create(&store, Kind::WebBridgeProfile, "name=t&allowSecrets=true&userPortalEnabled=false");
        let own = create(&store, Kind::WebBridgeProfile, "name=own&allowPasscodes=true");
        let tenant = create(&store, Kind::Tenant, &format!("name=T&webBridgeProfile={tenant_profile}"));
        let bare = create(&store, Kind::WebBridge, "url=c2w://a:1");
        assert_eq!(WebPolicy::of(&store, bare), WebPolicy::default(), "nothing assigned: everything allowed");
        set(&store, Kind::SystemProfiles, &format!("webBridgeProfile={strict}"));
        let p = WebPolicy::of(&store, bare);
        assert!(!p.allow_passcodes && !p.allow_secrets && p.user_portal_enabled);
        let wb = create(&store, Kind::WebBridge, &format!("url=c2w://b:1&tenant={tenant}&webBridgeProfile={own}"));
        let p = WebPolicy::of(&store, wb);
        assert!(p.allow_passcodes, "the web bridge's own profile over the system's");
        assert!(p.allow_secrets, "the tenant's over the system's");
        assert!(!p.user_portal_enabled, "the tenant's");
        assert!(p.allow_unauthenticated_guests, "set nowhere");
    }

    #[test]
    fn the_archive_is_the_web_bridge_s_own_else_its_lowest_profile_s() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let system_profile = create(&store, Kind::WebBridgeProfile, "name=s&resourceArchive=http://h/system.zip");
        let tenant_profile = create(&store, Kind::WebBridgeProfile, "name=t&resourceArchive=http://h/tenant.zip");
        let plain = create(&store, Kind::WebBridgeProfile, "name=p");
        let tenant = create(&store, Kind::Tenant, &format!("name=T&webBridgeProfile={tenant_profile}"));
        let bare = create(&store, Kind::WebBridge, "url=c2w://a:1");
        assert_eq!(resource_archive(&store, bare), None);
        set(&store, Kind::SystemProfiles, &format!("webBridgeProfile={system_profile}"));
        assert_eq!(resource_archive(&store, bare).as_deref(), Some("http://h/system.zip"));
        let of_tenant =
            create(&store, Kind::WebBridge, &format!("url=c2w://b:1&tenant={tenant}&webBridgeProfile={plain}"));
        assert_eq!(
            resource_archive(&store, of_tenant).as_deref(),
            Some("http://h/tenant.zip"),
            "a profile without one is passed over"
        );
        let own =
            create(&store, Kind::WebBridge, &format!("url=c2w://c:1&tenant={tenant}&resourceArchive=http://h/own.zip"));
        assert_eq!(resource_archive(&store, own).as_deref(), Some("http://h/own.zip"));
    }
}
