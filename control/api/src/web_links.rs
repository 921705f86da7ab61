//! The state of this call bridge's C2W links to web bridges, as
//! `GET webBridges/<id>/status` shows it. The C2W client (in
//! `confero-webbridge`) writes it; the API only reads. Kept here, not in the
//! web bridge crate, because the API must not depend on the web bridge.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

/// The alarm raised while a configured web bridge is unreachable or refuses
/// our certificate (subject: the `webBridges` object's id).
pub const WEB_BRIDGE_CONNECTION_FAILURE: &str = "webBridgeConnectionFailure";

/// One link's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting (or waiting to retry) with no failure yet.
    Connecting,
    /// Linked: the web bridge announced its guid.
    Connected {
        /// The guid it announced.
        guid: String,
        /// Where browsers reach its web app, if it said.
        web_address: Option<String>,
    },
    /// The last attempt failed; retried with backoff.
    Failed {
        /// The CMS-style reason (`connectFailure`, `certificateRefused`,
        /// `protocolError`).
        reason: &'static str,
    },
}

/// One link as the API shows it.
#[derive(Debug, Clone)]
pub struct LinkStatus {
    /// The `url` it connects to.
    pub url: String,
    /// Its state.
    pub state: LinkState,
    /// Since when it is in that state.
    pub since: Instant,
}

/// The alarm raised while a web bridge's customization archive cannot be
/// retrieved or used (subject: the `webBridges` object's id).
pub const WEB_BRIDGE_ARCHIVE_RETRIEVAL_FAILURE: &str = "webBridgeArchiveRetrievalFailure";

/// Every link, by `webBridges` object id.
#[derive(Debug, Default)]
pub struct WebBridgeLinks {
    links: Mutex<HashMap<Uuid, LinkStatus>>,
    /// `updateCustomization` requests so far, per web bridge: the C2W
    /// client re-retrieves the archive when its count moves.
    customization_requests: Mutex<HashMap<Uuid, u64>>,
    /// Woken on each such request, so it happens at once.
    customization_wanted: tokio::sync::Notify,
}

impl WebBridgeLinks {
    /// Records `state` for the web bridge `id` (a state change resets `since`).
    pub fn set(&self, id: Uuid, url: &str, state: LinkState) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        match links.get_mut(&id) {
            Some(l) if l.state == state && l.url == url => {}
            _ => {
                links.insert(id, LinkStatus { url: url.to_string(), state, since: Instant::now() });
            }
        }
    }

    /// Forgets a link (its object was deleted).
    pub fn remove(&self, id: Uuid) {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// The web app address a linked web bridge announced, for join links:
    /// the same one every time (the lowest object id), whichever linked first.
    pub fn web_address(&self) -> Option<String> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        let mut up: Vec<_> = links
            .iter()
            .filter_map(|(id, l)| match &l.state {
                LinkState::Connected { web_address: Some(a), .. } => Some((*id, a)),
                _ => None,
            })
            .collect();
        up.sort();
        up.first().map(|(_, a)| a.to_string())
    }

    /// Asks for web bridge `id`'s customization archive to be retrieved and
    /// pushed again (`POST webBridges/<id>/updateCustomization`).
    pub fn request_customization(&self, id: Uuid) {
        *self.customization_requests.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default() += 1;
        self.customization_wanted.notify_waiters();
    }

    /// How many times `id`'s customization was asked for.
    pub fn customization_requests(&self, id: Uuid) -> u64 {
        self.customization_requests.lock().unwrap_or_else(|p| p.into_inner()).get(&id).copied().unwrap_or(0)
    }

    /// Resolves at the next [`WebBridgeLinks::request_customization`].
    pub async fn customization_requested(&self) {
        self.customization_wanted.notified().await
    }

    /// The link to `id`, if one is kept.
    pub fn get(&self, id: Uuid) -> Option<LinkStatus> {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }
}
