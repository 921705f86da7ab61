//! The CMS REST API (`/api/v1/...`) over HTTPS.
//!
//! Shape of a request: the TLS accept loop ([`serve`]) hands each request to
//! [`handle`], which authenticates it (through the scaffold's bounded,
//! throttled [`Authenticator`]) before anything else, then reads the body (at
//! most 1 MiB), resolves the path ([`route`]) and runs the operation on a
//! blocking thread (the store commits to disk) before answering.
//! Every request leaves an "API trace" in the log, with secrets masked.
#![warn(missing_docs)]

pub mod alarms;
pub mod bridge;
pub mod cdr;
pub mod diagnostics;
pub mod failure;
pub mod license_usage;
pub mod route;
pub mod turn_probe;
pub mod user_policy;
pub mod web_links;
pub mod web_policy;
pub mod xml;
pub mod xmpp_link;

mod bulk;
mod calls;
pub use calls::{CALL_FIELDS, LEG_FIELDS, PARTICIPANT_FIELDS};
mod objects;
mod queries;
mod system;
mod trace;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
pub use hyper::Method;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::alarms::Alarms;
use crate::bridge::BridgeHandle;
use crate::cdr::CdrSender;
use confero_https::throttle::ThrottlePolicy;
use confero_https::users::{Authenticator, Verdict};
use confero_store::form::Form;
use confero_store::Store;
use failure::Failure;
use route::{route, RouteError, Target};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// The alarm raised for a source whose wrong passwords got it throttled
/// (subject: the source address); cleared by a right login from it.
pub const AUTHENTICATION_FAILURES: &str = "authenticationFailures";
/// Page size when a client gives no `limit` (clients assume 10).
pub const DEFAULT_LIMIT: usize = 10;
/// Largest page served, whatever `limit` says.
pub const MAX_LIMIT: usize = 1000;

/// Everything a request may touch.
pub struct Api {
    /// Configuration objects.
    pub store: Arc<dyn Store>,
    /// Live calls, legs and participants.
    pub bridge: Arc<dyn BridgeHandle>,
    /// Active alarms.
    pub alarms: Arc<Alarms>,
    /// CDR delivery (for `cdrCorrelatorIndex`).
    pub cdr: Arc<CdrSender>,
    /// Credential checks.
    pub auth: Arc<Authenticator>,
    /// When the bridge started (`uptimeSeconds`).
    pub started: Instant,
    /// The C2W links to web bridges (written by the C2W client).
    pub web_links: Arc<web_links::WebBridgeLinks>,
    /// Call diagnostics taken on request.
    pub diagnostics: Arc<diagnostics::Diagnostics>,
    /// The XEP-0114 link to the XMPP server (written by its client).
    pub xmpp_link: Arc<xmpp_link::XmppLink>,
    /// This call bridge's `hostId` (`system/status`), stable across restarts
    /// of one data directory; license usage snapshots carry it.
    pub host_id: uuid::Uuid,
    trace_seq: AtomicU64,
}

impl Api {
    /// The API over these parts.
    pub fn new(
        store: Arc<dyn Store>,
        bridge: Arc<dyn BridgeHandle>,
        alarms: Arc<Alarms>,
        cdr: Arc<CdrSender>,
        host_id: uuid::Uuid,
    ) -> Arc<Api> {
        Arc::new(Api {
            host_id,
            auth: Arc::new(Authenticator::new(store.clone(), ThrottlePolicy::default())),
            store,
            bridge,
            alarms,
            cdr,
            started: Instant::now(),
            web_links: Arc::default(),
            diagnostics: Arc::default(),
            xmpp_link: Arc::default(),
            trace_seq: AtomicU64::new(1),
        })
    }
}

/// A successful answer.
#[derive(Debug, Default)]
pub struct Reply {
    /// The XML body, empty for writes.
    pub body: String,
    /// `Location` of a created object.
    pub location: Option<String>,
}

impl Reply {
    fn xml(body: String) -> Reply {
        Reply { body, location: None }
    }

    fn created(location: String) -> Reply {
        Reply { body: String::new(), location: Some(location) }
    }

    fn empty() -> Reply {
        Reply::default()
    }

    /// A plain-text body (diagnostics contents).
    fn text(body: String) -> Reply {
        Reply { body, location: None }
    }
}

/// `offset` and `limit` of a list GET.
pub(crate) fn page_of(query: &Form) -> Result<confero_store::Page, Failure> {
    let number = |name: &'static str, default: usize| -> Result<usize, Failure> {
        match query.get(name) {
            None | Some("") => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| Failure::parameter(name, "invalidValue")),
        }
    };
    Ok(confero_store::Page { offset: number("offset", 0)?, limit: number("limit", DEFAULT_LIMIT)?.min(MAX_LIMIT) })
}

impl Api {
    /// Runs one request that has already been authenticated, without HTTP:
    /// resolves the path, parses query and body, and performs the operation.
    /// Blocking (it may commit to disk); benches call it directly.
    pub fn execute(&self, method: &Method, path: &str, query: &str, body: &[u8]) -> Result<Reply, Failure> {
        let target = route(path).map_err(|e| match e {
            RouteError::Unrecognized => Failure::UnrecognizedObject,
            RouteError::NoSuchObject(reason) => Failure::DoesNotExist { reason, in_path: true },
            RouteError::InvalidVersion => Failure::Reason("invalidVersion"),
        })?;
        // A layout template is JSON, not a form.
        if let Target::LayoutTemplateFile(id) = target {
            return objects::layout_template_file(self, method, id, body);
        }
        let query = Form::parse(query.as_bytes()).map_err(|_| Failure::parameter("query", "invalidValue"))?;
        let form = if matches!(*method, Method::POST | Method::PUT) {
            Form::parse(body).map_err(|_| Failure::parameter("body", "invalidValue"))?
        } else {
            Form::default()
        };
        dispatch(self, method, target, &query, &form)
    }
}

/// Runs one authenticated, parsed request.
fn dispatch(api: &Api, method: &Method, target: Target, query: &Form, body: &Form) -> Result<Reply, Failure> {
    use Target::*;
    match (target, method.clone()) {
        (Status, Method::GET) => Ok(system::status(api)),
        (Alarms, Method::GET) => system::alarms(api, query),
        (Licensing, Method::GET) => Ok(system::licensing("licensing")),
        (ClusterLicensing, Method::GET) => Ok(system::licensing("clusterLicensing")),
        (MultipartyLicensing, Method::GET) => Ok(system::multiparty_licensing(api)),
        (ActivePersonalLicenses, Method::GET) => Ok(system::active_personal_licenses()),
        (Database, Method::GET) => Ok(system::database()),
        (Load, Method::GET) => Ok(system::load(api)),
        (LicenseUsage, Method::GET) => license_usage::list(api, query),
        (ClusterLicensingRaw, Method::GET) => Ok(system::cluster_licensing_raw()),
        (NodeStatus(kind, id), Method::GET) => system::node_status(api, kind, id),
        (TurnServerStatus(id), Method::GET) => system::turn_server_status(api, id),
        (UpdateCustomization(id), Method::POST) => system::update_customization(api, id),
        (CameraControl(id), Method::PUT) => calls::camera_control(api, id, body),
        (LicenseUsageHosts, Method::GET) => license_usage::known_hosts(api, query),
        (AccessQuery, Method::POST | Method::GET) => queries::access_query(api, body, query),
        (UriUsageQuery, Method::POST | Method::GET) => queries::uri_usage_query(api, body, query),
        (ConversationIdQuery, Method::GET) => queries::conversation_id_query(query),
        (Singleton(kind), Method::GET) => Ok(objects::get_singleton(api, kind)),
        (Singleton(kind), Method::PUT) => objects::put_singleton(api, kind, body),
        (Singleton(kind), Method::POST) => objects::post_singleton(api, kind, body),
        (Collection { kind, parent }, Method::GET) => objects::list(api, kind, parent, query),
        (Collection { kind, parent }, Method::POST) => objects::create(api, kind, parent, body),
        (Collection { kind: confero_store::schema::Kind::CoSpaceMessage, parent: Some(space) }, Method::DELETE) => {
            objects::delete_messages(api, space, query)
        }
        (Object { kind, parent, id }, Method::GET) => objects::get(api, kind, parent, id),
        (Object { kind, parent, id }, Method::PUT) => objects::update(api, kind, parent, id, body),
        (Object { kind, parent, id }, Method::DELETE) => objects::delete(api, kind, parent, id),
        (MeetingEntryDetail(id), Method::GET) => objects::meeting_entry_detail(api, id),
        (WebBridgeStatus(id), Method::GET) => system::web_bridge_status(api, id),
        (Calls, Method::GET) => calls::list_calls(api, query),
        (Calls, Method::POST) => calls::create_call(api, body),
        (Call(id), Method::GET) => calls::get_call(api, id),
        (Call(id), Method::PUT) => calls::update_call(api, id, body),
        (Call(id), Method::DELETE) => calls::delete_call(api, id),
        (CallLegs { call, participant }, Method::GET) => calls::list_legs(api, call, participant, query),
        (CallLegs { call: Some(call), participant: None }, Method::POST) => calls::dial(api, call, body),
        (CallLeg(id), Method::GET) => calls::get_leg(api, id),
        (CallLeg(id), Method::PUT) => calls::update_leg(api, id, body),
        (CallLeg(id), Method::DELETE) => calls::delete_leg(api, id),
        (Participants { call }, Method::GET) => calls::list_participants(api, call, query),
        (Participants { call: Some(call) }, Method::POST) => calls::add_participant(api, call, body),
        (GenerateKeyframe(id), Method::POST) => calls::generate_keyframe(api, id),
        (CallLegProfileTrace(id), Method::GET) => calls::call_leg_profile_trace(api, id),
        (CallLegProfileUsage(id), Method::GET) => objects::call_leg_profile_usage(api, id),
        (EffectiveWebBridgeProfile(holder), Method::GET) => objects::effective_web_bridge_profile(api, holder),
        (SpaceDiagnostics(id), Method::POST) => diagnostics::for_space(api, id),
        (CallDiagnostics(id), Method::POST) => diagnostics::for_call(api, id),
        (SystemDiagnostics, Method::GET) => diagnostics::list(api, query),
        (Diagnostic(id), Method::GET) => diagnostics::get(api, id),
        (DiagnosticContents(id), Method::GET) => diagnostics::contents(api, id),
        (UserCoSpaces(id), Method::GET) => objects::user_co_spaces(api, id),
        (Participant(id), Method::GET) => calls::get_participant(api, id),
        (Participant(id), Method::PUT) => calls::update_participant(api, id, body),
        (CallParticipantsBulk(call), Method::PUT) => calls::update_call_participants(api, call, body),
        (LegacyCdrReceiver, Method::GET) => Ok(objects::get_legacy_cdr_receiver(api)),
        (LegacyCdrReceiver, Method::PUT) => objects::put_legacy_cdr_receiver(api, body),
        _ => Err(Failure::MethodNotAllowed),
    }
}

/// Credentials from `Authorization: Basic ...`; lenient about the space after
/// `Basic`, which some clients leave out.
fn respond(status: u16, body: String, location: Option<String>, challenge: bool) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if !body.is_empty() {
        let kind = if body.starts_with("<?xml") {
            "text/xml"
        } else if body.starts_with('{') {
            // A layout template.
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        b = b.header("content-type", kind);
    }
    if let Some(l) = location {
        b = b.header("location", l);
    }
    if challenge {
        b = b.header("www-authenticate", "Basic realm=\"acano\"");
    }
    b.body(Full::new(Bytes::from(body))).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Answers one HTTP request.
pub async fn handle(api: Arc<Api>, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let n = api.trace_seq.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    tracing::info!("API trace {n}: {method} for \"{}\" (from {})", trace::path_for_log(&path, &raw_query), peer.ip());
    let creds = confero_https::basic_credentials(req.headers().get(hyper::header::AUTHORIZATION));
    let content_type =
        req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    // Credentials first: nobody without them gets a body read or an operation run.
    let verdict = match &creds {
        Some((user, password)) => api.auth.check(peer.ip(), user, password).await,
        None => Verdict::Denied { throttled_now: false },
    };
    let source = peer.ip().to_string();
    match verdict {
        Verdict::Allowed => api.alarms.clear(AUTHENTICATION_FAILURES, &source),
        Verdict::Denied { throttled_now } => {
            if throttled_now {
                tracing::warn!(
                    "API: too many wrong passwords from {source} (last for user \"{}\"); its checks are refused for a while",
                    creds.as_ref().map(|(u, _)| u.as_str()).unwrap_or("")
                );
                api.alarms.raise(AUTHENTICATION_FAILURES, &source, None);
            }
            return finish(n, 401, String::new(), None, true);
        }
        Verdict::Throttled(wait) => {
            tracing::info!("API trace {n}: sending 429 response (throttled)");
            let mut r = respond(429, String::new(), None, false);
            if let Ok(v) = hyper::header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            return r;
        }
        Verdict::Busy => {
            let f = Failure::Unavailable;
            return finish(n, f.status(), f.body(), None, false);
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let f = if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Failure::TooLarge
            } else {
                Failure::parameter("body", "invalidValue")
            };
            return finish(n, f.status(), f.body(), None, false);
        }
    };
    if !body.is_empty() {
        tracing::debug!(
            "API trace {n}: content data size {}, type \"{content_type}\": {}",
            body.len(),
            trace::masked_body(&body)
        );
    }
    let work_api = api.clone();
    let outcome = tokio::task::spawn_blocking(move || work_api.execute(&method, &path, &raw_query, &body)).await;
    match outcome {
        Ok(Ok(reply)) => finish(n, 200, reply.body, reply.location, false),
        Ok(Err(f)) => finish(n, f.status(), f.body(), None, false),
        Err(join) => {
            tracing::error!("API trace {n}: request failed internally: {join}");
            let f = Failure::Unavailable;
            finish(n, f.status(), f.body(), None, false)
        }
    }
}

fn finish(n: u64, status: u16, body: String, location: Option<String>, challenge: bool) -> Response<Full<Bytes>> {
    tracing::info!("API trace {n}: sending {status} response, size {}", body.len());
    if let Some(l) = &location {
        tracing::info!("API trace {n}: Location: {l}");
    }
    respond(status, body, location, challenge)
}

/// Serves the API on `listener` with TLS until `shutdown` resolves, then
/// lets requests in flight finish, keeping to `limits` (the connection cap
/// and deadlines of the shared scaffold).
pub async fn serve(
    api: Arc<Api>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: confero_https::Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let handler = move |peer, req| handle(api.clone(), peer, req);
    confero_https::serve("API", listener, tls, limits, shutdown, handler).await;
}
