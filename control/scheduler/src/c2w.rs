//! The scheduler's C2W links (CMS's `C2WSupervisor` and `C2WService`): it
//! asks the call bridge's API for the configured web bridges
//! (`GET /api/v1/webBridges`), keeps a link to every one of them (a full
//! mesh: every scheduler to every web bridge, as every call bridge does),
//! greets each as a scheduler, and answers the signed-in users' scheduling
//! that the web bridge's web app hands it. That is what lets a web bridge
//! on another machine offer "Schedule meeting".
//!
//! The links are C2W's own (`docs/c2w.md`): a WebSocket over mutually
//! authenticated TLS, the web bridge listening. The scheduler presents
//! `scheduler c2w certs` and checks the web bridge against
//! `scheduler c2w trust`. The log lines are the seed's, so an administrator
//! used to CMS reads them the same way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use confero_webbridge::app::scheduling::Scheduling;
use confero_webbridge::c2w::client::{dial, parse_url, Greeted};
use confero_webbridge::c2w::frame::{self, ErrorKind, Message};

use crate::service::Scheduler;

/// How often the list of web bridges is asked for again.
const RESCAN: Duration = Duration::from_secs(5);
/// First and longest wait between connection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));
/// Requests served at once on one link; past this the web bridge is told
/// `unavailable`.
const MAX_IN_FLIGHT: usize = 32;
/// A web bridge pings every 20 s; silence this long means it is gone.
const SILENCE_LIMIT: Duration = confero_webbridge::c2w::server::SILENCE_LIMIT;
/// Web bridges read per API page.
const PAGE: usize = 100;

/// The scheduler's side of C2W.
pub struct C2wSupervisor {
    /// The scheduler: its API client of the call bridge, and where a web
    /// bridge's address for mails' join links is learnt.
    pub scheduler: Arc<Scheduler>,
    /// What the web bridges' requests are answered with.
    pub scheduling: Arc<dyn Scheduling>,
    /// Our certificate and the bundle web bridges must chain to.
    pub tls: Arc<rustls::ClientConfig>,
    /// How we greet (the web bridge logs it).
    pub name: String,
    /// `timedLogging webBridge`.
    pub verbose: Arc<crate::timed_logging::TimedLogging>,
}

/// A `webBridges` object as the API lists it: its id and `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The object's id.
    pub id: String,
    /// Its `c2w://host:port`.
    pub url: String,
}

/// Reads a `GET /api/v1/webBridges` answer: the `total` it states and the
/// objects on this page. Objects without a `url` are left out (nothing to
/// link to).
pub fn parse_web_bridges(xml: &str) -> Result<(usize, Vec<Listed>), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut total = None;
    let mut listed = Vec::new();
    let mut current: Option<(String, Option<String>)> = None;
    let mut in_url = false;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"webBridges" => {
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == b"total" {
                        let v = a.unescape_value().map_err(|e| e.to_string())?;
                        total = Some(v.parse::<usize>().map_err(|_| format!("total {v:?}"))?);
                    }
                }
            }
            Event::Start(e) if e.name().as_ref() == b"webBridge" => {
                let id = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"id")
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                    .unwrap_or_default();
                current = Some((id, None));
            }
            Event::Start(e) if e.name().as_ref() == b"url" => in_url = true,
            Event::Text(t) if in_url => {
                if let Some((_, url)) = current.as_mut() {
                    *url = Some(t.unescape().map_err(|e| e.to_string())?.trim().to_string());
                }
            }
            Event::End(e) if e.name().as_ref() == b"url" => in_url = false,
            Event::End(e) if e.name().as_ref() == b"webBridge" => {
                if let Some((id, Some(url))) = current.take() {
                    listed.push(Listed { id, url });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((total.ok_or("no <webBridges total=...>")?, listed))
}

/// `host:port` of a `c2w://` URL, as the seed's lines show a web bridge.
fn host_port(url: &str) -> String {
    match parse_url(url) {
        Some((host, port)) if host.contains(':') => format!("[{host}]:{port}"),
        Some((host, port)) => format!("{host}:{port}"),
        None => url.to_string(),
    }
}

impl C2wSupervisor {
    /// Every configured web bridge, every page of them.
    async fn web_bridges(&self) -> Result<Vec<Listed>, String> {
        let mut all = Vec::new();
        loop {
            let path = format!("/api/v1/webBridges?offset={}&limit={PAGE}", all.len());
            let answer = self.scheduler.call_bridge().request("GET", &path, &[]).await.map_err(|e| e.to_string())?;
            let (total, page) = parse_web_bridges(&answer.body)?;
            let empty = page.is_empty();
            all.extend(page);
            if empty || all.len() >= total {
                return Ok(all);
            }
        }
    }

    /// Keeps a link to every web bridge the call bridge lists until
    /// `shutdown` resolves, following additions, changes and removals.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let me = Arc::new(self);
        let mut links: HashMap<String, (String, tokio::task::JoinHandle<()>)> = HashMap::new();
        let mut last_total = None;
        tokio::pin!(shutdown);
        loop {
            match me.web_bridges().await {
                Ok(listed) => {
                    let wanted: BTreeMap<String, String> = listed.into_iter().map(|l| (l.id, l.url)).collect();
                    let before = links.len();
                    links.retain(|id, (url, task)| {
                        let keep = wanted.get(id) == Some(url);
                        if !keep {
                            task.abort();
                            tracing::info!(target: "C2WSupervisor", "C2W connection for webbridge {} removed", host_port(url));
                        }
                        keep
                    });
                    let removed = before - links.len();
                    let mut added = 0;
                    for (id, url) in &wanted {
                        if !links.contains_key(id) {
                            let task = tokio::spawn(me.clone().link(url.clone()));
                            links.insert(id.clone(), (url.clone(), task));
                            added += 1;
                        }
                    }
                    if last_total != Some(wanted.len()) || added > 0 || removed > 0 {
                        tracing::info!(target: "C2WSupervisor", "getWebBridges - totalCount={}", wanted.len());
                        tracing::info!(target: "C2WSupervisor", "getWebBridges - added={added}");
                        if removed > 0 {
                            tracing::info!(target: "C2WSupervisor", "getWebBridges - removed={removed}");
                        }
                        last_total = Some(wanted.len());
                    }
                }
                Err(e) => tracing::warn!(target: "C2WSupervisor", "getWebBridges failed: {e}"),
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(RESCAN) => {}
            }
        }
        for (_, (_, task)) in links {
            task.abort();
        }
    }

    /// One web bridge, for ever: connect, greet, serve; after a failure wait
    /// (doubling up to 30 s) and try again.
    async fn link(self: Arc<Self>, url: String) {
        let at = host_port(&url);
        let mut backoff = BACKOFF.0;
        loop {
            tracing::info!(target: "C2WService", "Connecting to webBridge={at}");
            match dial(&self.tls, &url).await {
                Ok(greeted) => {
                    backoff = BACKOFF.0;
                    self.serve(&at, greeted).await;
                    tracing::info!(target: "C2WSupervisor", "C2W connection for webbridge {at} DOWN");
                }
                Err(e) => {
                    tracing::warn!(target: "C2WService", "Connection to webBridge={at} failed ({}): {e}", e.reason())
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    /// Greets a linked web bridge as a scheduler and answers its requests
    /// until the link closes.
    async fn serve(&self, at: &str, greeted: Greeted) {
        let Greeted { socket, guid, web_address } = greeted;
        tracing::info!(target: "C2WService", "Received guid {guid} from webbridge {at}");
        if let Some(address) = web_address {
            self.scheduler.web_address_seen(&address);
        }
        let (mut sink, mut stream) = socket.split();
        let hello = frame::encode(0, &Message::SchedulerHello { name: self.name.clone() });
        if sink.send(WsMessage::text(hello)).await.is_err() {
            return;
        }
        tracing::info!(target: "C2WSupervisor", "C2W connection for webbridge {at} UP");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let writer = tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sink.send(WsMessage::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        let mut requests = tokio::task::JoinSet::new();
        loop {
            let text = match tokio::time::timeout(SILENCE_LIMIT, stream.next()).await {
                Ok(Some(Ok(WsMessage::Text(t)))) => t,
                Ok(Some(Ok(WsMessage::Close(_)))) | Ok(None) => break,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => {
                    tracing::info!(target: "C2WService", "link to webbridge {at} ended: {e}");
                    break;
                }
                Err(_) => {
                    tracing::warn!(target: "C2WService", "webbridge {at} silent for {SILENCE_LIMIT:?}; reconnecting");
                    break;
                }
            };
            while requests.try_join_next().is_some() {}
            let (id, request) = match frame::decode(text.as_bytes()) {
                Ok((id, request)) if frame::is_request(&request) => (id, request),
                Ok(_) => continue,
                Err(frame::FrameError::Version { id, .. } | frame::FrameError::Unknown { id, .. }) => {
                    let _ = tx.send(frame::encode(id, &refuse(ErrorKind::Unsupported, "unsupported frame")));
                    continue;
                }
                Err(_) => {
                    // Not the error's text: it may quote a field's value.
                    tracing::debug!(target: "C2WService", "unreadable frame of {} bytes from {at}", text.len());
                    continue;
                }
            };
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                let _ = tx.send(frame::encode(id, &refuse(ErrorKind::Unavailable, "too many requests")));
                continue;
            };
            let scheduling = self.scheduling.clone();
            let reply_to = tx.clone();
            let verbose = self.verbose.on(crate::timed_logging::Part::WebBridge).then(|| {
                let what = match &request {
                    Message::ScheduleOptions { user } => format!("scheduleOptions for {user}"),
                    Message::ScheduleMeetings { user, method, rest, .. } => {
                        format!("scheduleMeetings {method} /api/v1/meetings{rest} for {user}")
                    }
                    _ => "a call bridge's request".to_string(),
                };
                (at.to_string(), what)
            });
            requests.spawn(async move {
                let _permit = permit;
                let reply = match request {
                    Message::ScheduleOptions { user } => {
                        let (status, body) = scheduling.options(user).await;
                        Message::ScheduleAnswer { status, body }
                    }
                    Message::ScheduleMeetings { user, method, rest, query, body } => {
                        let (status, body) = scheduling.meetings(user, method, rest, query, body).await;
                        Message::ScheduleAnswer { status, body }
                    }
                    // Meeting requests are a call bridge's.
                    _ => refuse(ErrorKind::Unsupported, "a scheduler answers scheduling only"),
                };
                if let Some((at, what)) = verbose {
                    let status = match &reply {
                        Message::ScheduleAnswer { status, .. } => status.to_string(),
                        other => format!("{other:?}").chars().take(80).collect(),
                    };
                    tracing::info!(target: "scheduler::timedLogging::webBridge", "webbridge {at}: {what} -> {status}");
                }
                let _ = reply_to.send(frame::encode(id, &reply));
            });
        }
        requests.shutdown().await;
        writer.abort();
    }
}

fn refuse(kind: ErrorKind, detail: &str) -> Message {
    Message::Error { kind, detail: detail.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_bridges_are_read_from_the_api_list() {
        let xml = r#"<?xml version="1.0"?><webBridges total="3"><webBridge id="a"><url>c2w://10.0.0.1:8443</url></webBridge><webBridge id="b"></webBridge><webBridge id="c"><url>c2w://[::1]:9</url></webBridge></webBridges>"#;
        let (total, listed) = parse_web_bridges(xml).unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            listed,
            vec![
                Listed { id: "a".into(), url: "c2w://10.0.0.1:8443".into() },
                Listed { id: "c".into(), url: "c2w://[::1]:9".into() },
            ]
        );
        assert_eq!(parse_web_bridges(r#"<webBridges total="0"/>"#).unwrap(), (0, vec![]));
        assert!(parse_web_bridges("<failureDetails/>").is_err());
    }

    #[test]
    fn web_bridges_are_named_as_the_seed_does() {
        assert_eq!(host_port("c2w://10.106.80.34:8443"), "10.106.80.34:8443");
        assert_eq!(host_port("c2w://[::1]:8448"), "[::1]:8448");
    }
}
