//! The call bridge's side of C2W: it connects out to every `webBridges`
//! object's `url` (`c2w://host:port`), presents its certificate, checks the
//! web bridge's against its trust bundle, waits for the web bridge's guid,
//! then serves the web bridge's requests through the [`BridgeHandle`] (and
//! the store, for "My spaces"). Each link reconnects with backoff; its state
//! goes to [`WebBridgeLinks`] for the API, and an alarm is raised while a
//! configured web bridge cannot be linked.
//!
//! The requests themselves are answered by [`serve_request`], which is
//! plain (blocking) code over the seam, so it is tested without sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use confero_api::alarms::Alarms;
use confero_api::bridge::{BridgeError, BridgeHandle, WebJoin, WebJoinError};
use confero_api::web_links::{
    LinkState, WebBridgeLinks, WEB_BRIDGE_ARCHIVE_RETRIEVAL_FAILURE, WEB_BRIDGE_CONNECTION_FAILURE,
};
use confero_store::form::Form;
use confero_store::schema::{validate_changes, Kind};
use confero_store::Store;

use super::frame::{self, CustomFile, ErrorKind, IceServer, Message, Space};
use crate::customization::{Customization, MAX_ARCHIVE};
use confero_api::web_policy::{resource_archive, WebPolicy};

/// How often the list of `webBridges` objects is read again.
const RESCAN: Duration = Duration::from_secs(2);
/// First and longest wait between connection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));
/// How long a connection, its handshakes and the guid may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once on one link; past this the web bridge is told
/// `unavailable`, so no web bridge can queue unbounded blocking work here.
const MAX_IN_FLIGHT: usize = 64;
/// How long retrieving a customization archive may take.
const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// When a failed retrieval is tried again (at once on a change of the
/// archive or an `updateCustomization`).
const ARCHIVE_RETRY: Duration = Duration::from_secs(60);
/// The fields a browser may change on its own leg.
pub const BROWSER_FIELDS: &[&str] = &["rxAudioMute", "rxVideoMute", "txAudioMute", "txVideoMute", "chosenLayout"];

/// What the C2W client needs.
#[derive(Clone)]
pub struct C2wClient {
    /// The store: `webBridges` objects to link to, spaces for "My spaces".
    pub store: Arc<dyn Store>,
    /// The call bridge.
    pub bridge: Arc<dyn BridgeHandle>,
    /// Where alarms go.
    pub alarms: Arc<Alarms>,
    /// Where link states go.
    pub links: Arc<WebBridgeLinks>,
    /// Our certificate and the bundle web bridges must chain to.
    pub tls: Arc<rustls::ClientConfig>,
}

/// A `c2w://host:port` URL's host and port.
pub fn parse_url(url: &str) -> Option<(String, u16)> {
    let rest = url.trim().strip_prefix("c2w://")?;
    let rest = rest.split('/').next()?;
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

impl C2wClient {
    /// Links to every configured web bridge until `shutdown` resolves,
    /// following additions, changes and removals of `webBridges` objects.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut tasks: HashMap<Uuid, (String, tokio::task::JoinHandle<()>)> = HashMap::new();
        tokio::pin!(shutdown);
        loop {
            let wanted: HashMap<Uuid, String> = self
                .store
                .all(Kind::WebBridge, None)
                .into_iter()
                .filter_map(|o| o.get("url").map(|u| (o.id, u.to_string())))
                .collect();
            tasks.retain(|id, (url, task)| {
                let keep = wanted.get(id) == Some(url) && !task.is_finished();
                if !keep {
                    task.abort();
                    self.links.remove(*id);
                    self.alarms.clear(WEB_BRIDGE_CONNECTION_FAILURE, &id.to_string());
                    self.alarms.clear(WEB_BRIDGE_ARCHIVE_RETRIEVAL_FAILURE, &id.to_string());
                }
                keep
            });
            for (id, url) in wanted {
                if let std::collections::hash_map::Entry::Vacant(slot) = tasks.entry(id) {
                    let task = tokio::spawn(self.clone().link(id, url.clone()));
                    slot.insert((url, task));
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(RESCAN) => {}
            }
        }
        for (_, (_, task)) in tasks {
            task.abort();
        }
    }

    /// One link, for ever: connect, serve, and after a failure wait (doubling
    /// up to 30 s) and try again.
    async fn link(self, id: Uuid, url: String) {
        let subject = id.to_string();
        let mut backoff = BACKOFF.0;
        self.links.set(id, &url, LinkState::Connecting);
        loop {
            match self.connect_and_serve(id, &url).await {
                Ok(()) => {
                    // It was up and closed: try again soon.
                    backoff = BACKOFF.0;
                    self.links.set(id, &url, LinkState::Connecting);
                }
                Err(reason) => {
                    tracing::warn!("C2W: web bridge {url}: {reason}");
                    let reason = reason.reason();
                    self.links.set(id, &url, LinkState::Failed { reason });
                    self.alarms.raise(WEB_BRIDGE_CONNECTION_FAILURE, &subject, Some(reason));
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    async fn connect_and_serve(&self, id: Uuid, url: &str) -> Result<(), LinkError> {
        let web_bridge = id;
        let Greeted { socket: ws, guid, web_address } = dial(&self.tls, url).await?;
        tracing::info!("C2W: linked to web bridge {url} (guid {guid})");
        self.links.set(id, url, LinkState::Connected { guid, web_address });
        self.alarms.clear(WEB_BRIDGE_CONNECTION_FAILURE, &id.to_string());
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        let writer = tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sink.send(WsMessage::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let customizer = tokio::spawn(self.clone().customize(id, tx.clone()));
        loop {
            // The web bridge pings every 20 s: silence means it is gone.
            let received = match tokio::time::timeout(super::server::SILENCE_LIMIT, stream.next()).await {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!("C2W: web bridge {url} silent; reconnecting");
                    break;
                }
            };
            let text = match received {
                Ok(WsMessage::Text(t)) => t,
                Ok(WsMessage::Close(_)) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::info!("C2W: link to {url} ended: {e}");
                    break;
                }
            };
            let reply_to = tx.clone();
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                if let Ok((id, _)) = frame::decode(text.as_bytes()) {
                    let _ = reply_to.send(frame::encode(id, &refuse(ErrorKind::Unavailable, "too many requests")));
                }
                continue;
            };
            let me = self.clone();
            // Each request on a blocking thread: the bridge may commit to
            // disk, and one slow request must not hold the others.
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let (id, reply) = match frame::decode(text.as_bytes()) {
                    Ok((id, request)) if frame::is_request(&request) => (id, me.serve_request(web_bridge, request)),
                    Ok((id, _)) => (id, refuse(ErrorKind::Unsupported, "not a request")),
                    Err(frame::FrameError::Version { id, .. } | frame::FrameError::Unknown { id, .. }) => {
                        (id, refuse(ErrorKind::Unsupported, "unsupported frame"))
                    }
                    Err(_) => {
                        // Not the error's text: it may quote a field's value.
                        tracing::debug!("C2W: unreadable frame of {} bytes", text.len());
                        return;
                    }
                };
                let _ = reply_to.send(frame::encode(id, &reply));
            });
        }
        writer.abort();
        customizer.abort();
        tracing::info!("C2W: link to web bridge {url} closed");
        Ok(())
    }

    /// Keeps web bridge `id`'s customization pushed over this link, as CMS's
    /// call bridge does: retrieved and pushed on linking, whenever its
    /// archive changes (`resourceArchive`, or its profiles'), on
    /// `updateCustomization`, and a minute after a failed retrieval. A
    /// failure raises `webBridgeArchiveRetrievalFailure` with CMS's reason
    /// and leaves the web bridge with what it had; no archive pushes the web
    /// app's own look.
    async fn customize(self, id: Uuid, out: tokio::sync::mpsc::UnboundedSender<String>) {
        let http = match reqwest::Client::builder().timeout(ARCHIVE_TIMEOUT).build() {
            Ok(http) => http,
            Err(e) => {
                tracing::warn!("C2W: no HTTP client for customization archives: {e}");
                return;
            }
        };
        let subject = id.to_string();
        // The archive last tried (Some(None): none was configured).
        let mut tried: Option<Option<String>> = None;
        let mut seen = self.links.customization_requests(id);
        let mut retry: Option<tokio::time::Instant> = None;
        loop {
            let archive = resource_archive(&*self.store, id);
            let requested = self.links.customization_requests(id);
            let due = tried.as_ref() != Some(&archive)
                || requested != seen
                || retry.is_some_and(|at| tokio::time::Instant::now() >= at);
            if due {
                (seen, retry) = (requested, None);
                tried = Some(archive.clone());
                let outcome = match &archive {
                    None => Ok(Customization::default()),
                    Some(url) => retrieve(&http, url).await,
                };
                match outcome {
                    Ok(custom) => {
                        self.alarms.clear(WEB_BRIDGE_ARCHIVE_RETRIEVAL_FAILURE, &subject);
                        tracing::info!(
                            "C2W: web bridge {id}: customization of {} file(s) pushed",
                            custom.files().len()
                        );
                        if out.send(frame::encode(0, &customization_message(&custom))).is_err() {
                            return;
                        }
                    }
                    Err((reason, why)) => {
                        // Not the URL: it may carry credentials.
                        tracing::warn!("C2W: web bridge {id}: customization archive not used ({reason}): {why}");
                        self.alarms.raise(WEB_BRIDGE_ARCHIVE_RETRIEVAL_FAILURE, &subject, Some(reason));
                        retry = Some(tokio::time::Instant::now() + ARCHIVE_RETRY);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RESCAN) => {}
                _ = self.links.customization_requested() => {}
            }
        }
    }

    /// Answers one request from the web bridge `web_bridge` (its
    /// `webBridges` object, whose profiles say what its web app allows).
    /// Blocking.
    pub fn serve_request(&self, web_bridge: Uuid, request: Message) -> Message {
        let policy = WebPolicy::of(&*self.store, web_bridge);
        match request {
            Message::Meeting { call_id, secret } => {
                let secret = secret.filter(|_| policy.allow_secrets);
                match self.bridge.web_meeting(&call_id, secret.as_deref()) {
                    Ok(m) => Message::MeetingInfo {
                        name: m.name,
                        passcode_required: m.passcode_required,
                        ice_servers: ice_servers_of(&*self.store),
                    },
                    Err(e) => join_error(e),
                }
            }
            Message::Join { call_id, passcode, secret, name, offer, user } => {
                if user.is_none() && !policy.allow_unauthenticated_guests {
                    return refuse(ErrorKind::SignInRequired, "");
                }
                let passcode = passcode.filter(|p| !p.trim().is_empty());
                if passcode.is_some() && !policy.allow_passcodes {
                    return refuse(ErrorKind::PasscodesNotAllowed, "");
                }
                let secret = secret.filter(|_| policy.allow_secrets);
                let join = WebJoin { call_id, passcode, secret, name, offer };
                match self.bridge.join_web(join) {
                    Ok(j) => {
                        Message::Joined { call: j.call.to_string(), leg: j.call_leg.to_string(), answer: j.answer }
                    }
                    Err(e) => join_error(e),
                }
            }
            Message::Update { leg, changes } => {
                let Ok(leg) = Uuid::parse_str(&leg) else { return refuse(ErrorKind::LegNotFound, "") };
                if changes.iter().any(|(name, _)| !BROWSER_FIELDS.contains(&name.as_str())) {
                    return refuse(ErrorKind::InvalidChange, "a field the browser may not change");
                }
                let body: Vec<String> = changes.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
                let Ok(form) = Form::parse(body.join("&").as_bytes()) else {
                    return refuse(ErrorKind::InvalidChange, "");
                };
                let Ok(changes) = validate_changes(confero_api::LEG_FIELDS, &form, false) else {
                    return refuse(ErrorKind::InvalidChange, "bad value");
                };
                match self.bridge.update_call_leg(leg, &changes) {
                    Ok(()) => Message::Done,
                    Err(e) => bridge_error(e),
                }
            }
            Message::Leave { leg } => {
                let Ok(leg) = Uuid::parse_str(&leg) else { return refuse(ErrorKind::LegNotFound, "") };
                match self.bridge.end_call_leg(leg) {
                    Ok(()) => Message::Done,
                    Err(e) => bridge_error(e),
                }
            }
            Message::Participants { leg } => {
                let Ok(leg) = Uuid::parse_str(&leg) else { return refuse(ErrorKind::LegNotFound, "") };
                let Some(call) = self.bridge.call_legs().into_iter().find(|l| l.id == leg).map(|l| l.call) else {
                    return refuse(ErrorKind::LegNotFound, "");
                };
                let names = self.bridge.participants().into_iter().filter(|p| p.call == call).map(|p| p.name).collect();
                Message::ParticipantList { names }
            }
            Message::Spaces { .. } if !policy.user_portal_enabled => refuse(ErrorKind::PortalDisabled, ""),
            Message::Spaces { user } => Message::SpaceList { spaces: spaces_of(&*self.store, &user) },
            Message::Directory { .. } if !policy.user_portal_enabled => refuse(ErrorKind::PortalDisabled, ""),
            Message::Directory { user, query } => {
                let plan = confero_ldap::people::plan(&*self.store, &user, &query);
                // On the blocking pool: wait here for the directories.
                let people = match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => runtime.block_on(confero_ldap::people::run(plan)),
                    Err(_) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime.block_on(confero_ldap::people::run(plan)),
                        Err(_) => return refuse(ErrorKind::Unavailable, "no runtime"),
                    },
                };
                Message::People { people }
            }
            _ => refuse(ErrorKind::Unsupported, "not a request"),
        }
    }
}

/// The browsers' ICE servers: each `turnServers` object, at its
/// `clientAddress` (where clients reach it; else `serverAddress`), port 3478
/// unless the address names one, over UDP and over TCP (on
/// `tcpPortNumberOverride` if set), with its username and password. One
/// without a username is offered as STUN only.
pub fn ice_servers_of(store: &dyn Store) -> Vec<IceServer> {
    let mut servers = Vec::new();
    for turn in store.all(Kind::TurnServer, None) {
        let Some(address) = turn.get("clientAddress").or_else(|| turn.get("serverAddress")) else { continue };
        let address = address.trim();
        let (host, port) = match address.parse::<std::net::SocketAddr>() {
            Ok(a) => (a.ip().to_string(), a.port()),
            Err(_) => match address.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => {
                    (h.to_string(), p.parse().unwrap_or(3478))
                }
                _ => (address.trim_start_matches('[').trim_end_matches(']').to_string(), 3478),
            },
        };
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            continue;
        }
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let tcp = turn.get("tcpPortNumberOverride").and_then(|p| p.parse::<u16>().ok()).unwrap_or(port);
        let username = turn.get("username").filter(|u| !u.is_empty()).map(str::to_string);
        let urls = match username {
            Some(_) => vec![format!("turn:{host}:{port}?transport=udp"), format!("turn:{host}:{tcp}?transport=tcp")],
            None => vec![format!("stun:{host}:{port}")],
        };
        let credential = username.as_ref().and(turn.get("password")).map(str::to_string);
        servers.push(IceServer { urls, username, credential });
    }
    servers
}

/// Retrieves and checks a customization archive; a failure is CMS's alarm
/// reason and words for the log.
async fn retrieve(http: &reqwest::Client, url: &str) -> Result<Customization, (&'static str, String)> {
    let failed = |e: reqwest::Error| {
        let e = e.without_url();
        let reason =
            if format!("{e:?}").to_ascii_lowercase().contains("dns") { "dnsFailure" } else { "connectFailure" };
        (reason, e.to_string())
    };
    let mut response = http.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        let reason = match status.as_u16() {
            503 => "serviceUnavailable",
            500..=599 => "internalServerError",
            _ => "fileNotFound",
        };
        return Err((reason, format!("HTTP {status}")));
    }
    let too_large = || ("fileSizeLimitExceeded", format!("over {MAX_ARCHIVE} bytes"));
    if response.content_length().is_some_and(|n| n > MAX_ARCHIVE as u64) {
        return Err(too_large());
    }
    let mut archive = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if archive.len() + chunk.len() > MAX_ARCHIVE {
            return Err(too_large());
        }
        archive.extend_from_slice(&chunk);
    }
    Customization::from_archive(&archive).map_err(|e| (e.reason(), e.to_string()))
}

/// The C2W push of `custom`.
fn customization_message(custom: &Customization) -> Message {
    use base64::Engine as _;
    let files = custom
        .files()
        .iter()
        .map(|(name, bytes)| CustomFile {
            name: name.clone(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
        .collect();
    Message::Customization { files }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether a JID names the local web user `user`: the whole JID, or its
/// part before `@`, equal to the name in any case. A local web user has no
/// JID of its own; this is how `coSpaceUsers` (`userJid`) and a space's
/// `ownerJid` reach one (see docs/c2w.md).
pub fn jid_names_user(jid: &str, user: &str) -> bool {
    let jid = jid.trim();
    jid.eq_ignore_ascii_case(user) || jid.split_once('@').is_some_and(|(local, _)| local.eq_ignore_ascii_case(user))
}

/// The spaces `user` owns or is a member of, by name, that have a meeting ID.
pub fn spaces_of(store: &dyn Store, user: &str) -> Vec<Space> {
    let mut spaces = Vec::new();
    for space in store.all(Kind::CoSpace, None) {
        let owner = space.get("ownerJid").is_some_and(|j| jid_names_user(j, user));
        let member = owner
            || store
                .all(Kind::CoSpaceUser, Some(space.id))
                .iter()
                .any(|m| m.get("userJid").is_some_and(|j| jid_names_user(j, user)));
        if !member {
            continue;
        }
        let Some(call_id) = space.get("callId") else { continue };
        spaces.push(Space {
            name: space.get("name").unwrap_or(call_id).to_string(),
            call_id: call_id.to_string(),
            secret: space.get("secret").map(str::to_string),
        });
    }
    spaces.sort_by_key(|s| s.name.to_lowercase());
    spaces
}

fn refuse(kind: ErrorKind, detail: &str) -> Message {
    Message::Error { kind, detail: detail.to_string() }
}

fn join_error(e: WebJoinError) -> Message {
    match e {
        WebJoinError::MeetingNotFound => refuse(ErrorKind::MeetingNotFound, ""),
        WebJoinError::WrongPasscode => refuse(ErrorKind::WrongPasscode, ""),
        WebJoinError::MediaNegotiation(why) => refuse(ErrorKind::MediaNegotiation, &why),
        WebJoinError::Bridge(e) => bridge_error(e),
    }
}

fn bridge_error(e: BridgeError) -> Message {
    match e {
        BridgeError::CallLegDoesNotExist | BridgeError::CallDoesNotExist | BridgeError::ParticipantDoesNotExist => {
            refuse(ErrorKind::LegNotFound, e.reason())
        }
        BridgeError::ParticipantLimitReached
        | BridgeError::TenantParticipantLimitReached
        | BridgeError::Overloaded
        | BridgeError::CameraControlUnavailable => refuse(ErrorKind::Unavailable, e.reason()),
    }
}

/// A C2W link's WebSocket, as its client holds it.
pub type C2wSocket = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A link just made: the socket and what the web bridge's greeting said.
pub struct Greeted {
    /// The WebSocket, past the greeting.
    pub socket: C2wSocket,
    /// The web bridge's guid.
    pub guid: String,
    /// Where browsers reach its web app, if it said.
    pub web_address: Option<String>,
}

/// Connects to the web bridge at `url` (`c2w://host:port`) as a C2W client
/// (a call bridge, or a scheduler) with `tls` (our certificate and the
/// bundle theirs must chain to), and waits for its greeting; all of it
/// within 10 s.
pub async fn dial(tls: &Arc<rustls::ClientConfig>, url: &str) -> Result<Greeted, LinkError> {
    let (host, port) = parse_url(url).ok_or(LinkError::BadUrl)?;
    let connecting = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(LinkError::Connect)?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| LinkError::BadUrl)?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(LinkError::Tls)?;
        let request = format!("wss://{host}:{port}/c2w");
        let (mut ws, _) = tokio_tungstenite::client_async(request, tls).await.map_err(LinkError::WebSocket)?;
        // The greeting comes first; a refused client certificate shows
        // here (TLS 1.3 tells the client after its handshake).
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(text))) => match frame::decode(text.as_bytes()) {
                    Ok((_, Message::Hello { guid, web_address })) => {
                        return Ok(Greeted { socket: ws, guid, web_address })
                    }
                    _ => return Err(LinkError::Protocol),
                },
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                Some(Ok(_)) | None => return Err(LinkError::Protocol),
                Some(Err(e)) => return Err(LinkError::WebSocket(e)),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connecting).await.map_err(|_| LinkError::Timeout)?
}

/// Why a link could not be made or kept.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The `url` is not `c2w://host:port`.
    #[error("url is not c2w://host:port")]
    BadUrl,
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake failed (often: their certificate is not in our bundle).
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    /// The WebSocket failed (a refused client certificate shows here).
    #[error("WebSocket: {0}")]
    WebSocket(tokio_tungstenite::tungstenite::Error),
    /// The peer did not greet as a web bridge.
    #[error("no C2W greeting")]
    Protocol,
    /// Too slow.
    #[error("timed out")]
    Timeout,
}

impl LinkError {
    /// The reason the status and the alarm show.
    pub fn reason(&self) -> &'static str {
        let text = self.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("alert") || text.contains("unknownca") {
            return "certificateRefused";
        }
        match self {
            LinkError::Protocol => "protocolError",
            _ => "connectFailure",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("c2w://127.0.0.1:8448"), Some(("127.0.0.1".into(), 8448)));
        assert_eq!(parse_url("c2w://wb.example.com:443/"), Some(("wb.example.com".into(), 443)));
        assert_eq!(parse_url("c2w://[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(parse_url("https://x:1"), None);
        assert_eq!(parse_url("c2w://:1"), None);
        assert_eq!(parse_url("c2w://x"), None);
    }

    #[test]
    fn a_local_user_is_named_by_a_jid_or_its_local_part() {
        assert!(jid_names_user("ann", "Ann"));
        assert!(jid_names_user("ann@example.com", "ann"));
        assert!(!jid_names_user("anne@example.com", "ann"));
        assert!(!jid_names_user("example.com@ann", "ann"));
    }
}
