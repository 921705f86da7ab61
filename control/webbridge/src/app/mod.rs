//! The web app: the pages browsers load and the small JSON API they call.
//!
//! - `GET /`, `GET /meeting/<callId>[?secret=...]`: the one page
//!   (`static/index.html`, `app.js`, `app.css`, embedded in the binary).
//! - `GET /api/meeting?id=&secret=`: does the meeting exist, does it need a
//!   passcode (asked of the call bridges over C2W).
//! - `POST /api/join`: the browser's offer with the meeting ID, passcode or
//!   secret and name; answered with the SDP answer and a leg token.
//! - `POST /api/leg` (`update` mutes/layout, `leave`) and
//!   `GET /api/leg/participants`, authorised by the leg token
//!   (`Authorization: Bearer`): a browser can only act on its own leg.
//! - `GET /api/branding`, `GET /branding/<image>`: the customization a call
//!   bridge pushed (the sign-in page's brand words and images).
//! - `POST /api/signin`, `POST /api/signout`, `GET /api/me` (with "My
//!   spaces"): web users (`user` role), a session cookie.
//! - `GET /api/directory?q=`: people search for a signed-in user.
//! - `GET /api/schedule/options`, `GET|POST /api/schedule/meetings`,
//!   `GET|PUT|DELETE /api/schedule/meetings/<id>`: a signed-in user's
//!   meetings, handed to the scheduler ([`scheduling`]) when there is one.
//!
//! JSON bodies only (`application/json`), so a cross-site form cannot post
//! here; the session cookie is `SameSite=Strict` besides.

pub mod scheduling;
mod sessions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use confero_https::throttle::{Throttle, ThrottlePolicy};
use confero_https::users::{Authenticator, Verdict};

use crate::c2w::client::BROWSER_FIELDS;
use crate::c2w::frame::{ErrorKind, Message};
use crate::c2w::server::{C2wError, C2wServer, LinkId};
use crate::customization::Image;
pub use sessions::{LegBinding, Sessions, SESSION_LIFETIME};

const INDEX_HTML: &str = include_str!("static/index.html");
const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// Largest JSON body: an SDP offer with every candidate is a few KiB.
const MAX_BODY: usize = 64 * 1024;
/// Unknown meeting IDs a source may try in a minute before its lookups are
/// refused for a minute.
const LOOKUP_FAILURES: u32 = 20;
/// The session cookie's name.
const COOKIE_NAME: &str = "confero_session";

/// The web app's state.
pub struct WebApp {
    c2w: Arc<C2wServer>,
    auth: Arc<Authenticator>,
    sessions: Sessions,
    /// Wrong passcodes per source, as wrong passwords are: a meeting ID and
    /// a numeric passcode must not be guessable at line rate.
    passcodes: Throttle,
    /// Unknown meeting IDs per source: looser than passcodes (people mistype
    /// IDs), but enough that the ID space cannot be walked.
    lookups: Throttle,
    /// `Content-Security-Policy` on every answer.
    csp: HeaderValue,
    /// The scheduler beside this web bridge, or the ones linked over C2W.
    scheduling: Arc<dyn scheduling::Scheduling>,
}

impl WebApp {
    /// The app over these links and web users; `frame_ancestors` is the CSP
    /// directive's value (`'self'` by default).
    pub fn new(
        c2w: Arc<C2wServer>,
        auth: Arc<Authenticator>,
        frame_ancestors: &str,
        scheduling: Arc<dyn scheduling::Scheduling>,
    ) -> Arc<WebApp> {
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {}",
            sanitize_directive(frame_ancestors)
        );
        Arc::new(WebApp {
            c2w,
            auth,
            sessions: Sessions::default(),
            passcodes: Throttle::new(ThrottlePolicy::default()),
            lookups: Throttle::new(ThrottlePolicy { failures: LOOKUP_FAILURES, ..ThrottlePolicy::default() }),
            csp: HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("frame-ancestors 'self'")),
            scheduling,
        })
    }

    /// Answers one request.
    pub async fn handle(self: Arc<Self>, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        tracing::debug!("web: {method} {path} from {}", peer.ip());
        let mut response = match (&method, path.as_str()) {
            (&Method::GET | &Method::HEAD, "/") => page(INDEX_HTML, "text/html; charset=utf-8"),
            (&Method::GET | &Method::HEAD, p) if p.starts_with("/meeting/") => {
                page(INDEX_HTML, "text/html; charset=utf-8")
            }
            (&Method::GET | &Method::HEAD, "/static/app.js") => page(APP_JS, "text/javascript; charset=utf-8"),
            (&Method::GET | &Method::HEAD, "/static/app.css") => page(APP_CSS, "text/css; charset=utf-8"),
            (&Method::GET, "/api/branding") => self.branding(),
            (&Method::GET | &Method::HEAD, p) if p.starts_with("/branding/") => {
                self.branding_image(p.trim_start_matches("/branding/"))
            }
            (&Method::GET, "/api/meeting") => self.meeting(peer.ip(), req.uri().query().unwrap_or("")).await,
            (&Method::POST, "/api/join") => self.join(peer.ip(), req).await,
            (&Method::POST, "/api/leg") => self.leg_action(req).await,
            (&Method::GET, "/api/leg/participants") => self.participants(&req).await,
            (&Method::POST, "/api/signin") => self.sign_in(peer.ip(), req).await,
            (&Method::POST, "/api/signout") => self.sign_out(&req),
            (&Method::GET, "/api/me") => self.me(&req).await,
            (&Method::GET, "/api/directory") => self.directory(&req).await,
            (_, p) if p.starts_with("/api/schedule/") => self.schedule(req).await,
            (_, p) if p.starts_with("/api/") => error(StatusCode::NOT_FOUND, "notFound", "No such operation."),
            _ => error(StatusCode::NOT_FOUND, "notFound", "No such page."),
        };
        let headers = response.headers_mut();
        headers.insert("content-security-policy", self.csp.clone());
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        if path.starts_with("/api/") {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }

    /// The customization the page applies: the brand words, and which
    /// images `/branding/<name>` serves. Public, as the sign-in page is.
    fn branding(&self) -> Response<Full<Bytes>> {
        let custom = self.c2w.customization();
        let mut images = serde_json::Map::new();
        for image in Image::ALL {
            if custom.image(image).is_some() {
                images.insert(image.slug().into(), format!("/branding/{}", image.slug()).into());
            }
        }
        json_ok(json!({ "brandName": custom.brand_name, "brandTagLine": custom.brand_tag_line, "images": images }))
    }

    /// One customization image, with the type its checked bytes are; never
    /// cached for long, so an updated archive shows on the next load.
    fn branding_image(&self, slug: &str) -> Response<Full<Bytes>> {
        let custom = self.c2w.customization();
        let Some((content_type, bytes)) = Image::from_slug(slug).and_then(|i| custom.image(i)) else {
            return error(StatusCode::NOT_FOUND, "notFound", "No such image.");
        };
        let mut r = Response::new(Full::new(Bytes::copy_from_slice(bytes)));
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }

    /// [`WebApp::locate`] for `source`, throttled: a source that asked for too
    /// many unknown meeting IDs is refused for a while.
    async fn locate_for(
        &self,
        source: IpAddr,
        call_id: &str,
        secret: Option<String>,
    ) -> Result<(LinkId, Message), Response<Full<Bytes>>> {
        if let Some(wait) = self.lookups.blocked(source, Instant::now()) {
            return Err(throttled(wait));
        }
        match self.locate(call_id, secret).await {
            Ok(found) => Ok(found),
            Err(e) => {
                if e == C2wError::Refused(ErrorKind::MeetingNotFound) {
                    self.lookups.failed(source, Instant::now());
                }
                Err(c2w_error(e))
            }
        }
    }

    /// Finds the call bridge that knows `call_id`: the first whose answer is
    /// not "no such meeting".
    async fn locate(&self, call_id: &str, secret: Option<String>) -> Result<(LinkId, Message), C2wError> {
        let mut outcome = Err(C2wError::NoCallBridge);
        for (link, _) in self.c2w.linked() {
            let ask = Message::Meeting { call_id: call_id.to_string(), secret: secret.clone() };
            match self.c2w.request(link, ask).await {
                Ok(info) => return Ok((link, info)),
                Err(C2wError::Refused(ErrorKind::MeetingNotFound)) => {
                    outcome = Err(C2wError::Refused(ErrorKind::MeetingNotFound))
                }
                Err(e) if outcome == Err(C2wError::NoCallBridge) => outcome = Err(e),
                Err(_) => {}
            }
        }
        outcome
    }

    async fn meeting(&self, source: IpAddr, query: &str) -> Response<Full<Bytes>> {
        let form = confero_store::form::Form::parse(query.as_bytes()).unwrap_or_default();
        let id = form.get("id").unwrap_or("").trim().to_string();
        let secret = form.get("secret").map(str::to_string).filter(|s| !s.is_empty());
        if id.is_empty() {
            return c2w_error(C2wError::Refused(ErrorKind::MeetingNotFound));
        }
        match self.locate_for(source, &id, secret).await {
            Ok((_, Message::MeetingInfo { name, passcode_required, ice_servers })) => {
                json_ok(json!({ "name": name, "passcodeRequired": passcode_required, "iceServers": ice_servers }))
            }
            Ok(_) => c2w_error(C2wError::Unexpected),
            Err(response) => response,
        }
    }

    async fn join(&self, source: IpAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct JoinBody {
            meeting_id: String,
            #[serde(default)]
            passcode: Option<String>,
            #[serde(default)]
            secret: Option<String>,
            name: String,
            offer: String,
        }
        if let Some(wait) = self.passcodes.blocked(source, Instant::now()) {
            return throttled(wait);
        }
        let user = session_cookie(&req).and_then(|t| self.sessions.user(&t));
        let body: JoinBody = match read_json(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let name = body.name.trim().chars().take(100).collect::<String>();
        if name.is_empty() {
            return error(StatusCode::BAD_REQUEST, "nameRequired", "Please enter your name.");
        }
        let call_id = body.meeting_id.trim().to_string();
        let secret = body.secret.filter(|s| !s.is_empty());
        let passcode = body.passcode.filter(|s| !s.is_empty());
        let (link, _) = match self.locate_for(source, &call_id, secret.clone()).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        let request = Message::Join { call_id, passcode, secret, name, offer: body.offer, user };
        match self.c2w.request(link, request).await {
            Ok(Message::Joined { call, leg, answer }) => {
                self.passcodes.succeeded(source);
                let token = self.sessions.bind_leg(LegBinding { link, leg: leg.clone(), call: call.clone() });
                json_ok(json!({ "call": call, "leg": leg, "token": token, "answer": answer }))
            }
            Ok(_) => c2w_error(C2wError::Unexpected),
            Err(C2wError::Refused(ErrorKind::WrongPasscode)) => {
                self.passcodes.failed(source, Instant::now());
                c2w_error(C2wError::Refused(ErrorKind::WrongPasscode))
            }
            Err(e) => c2w_error(e),
        }
    }

    fn leg_of(&self, req: &Request<Incoming>) -> Option<(String, LegBinding)> {
        let header = req.headers().get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
        let token = header.strip_prefix("Bearer ")?.trim();
        self.sessions.leg(token).map(|b| (token.to_string(), b))
    }

    async fn leg_action(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        #[derive(Deserialize)]
        struct Action {
            action: String,
            #[serde(default)]
            changes: std::collections::BTreeMap<String, serde_json::Value>,
        }
        let Some((token, binding)) = self.leg_of(&req) else {
            return error(StatusCode::UNAUTHORIZED, "notJoined", "You are not in this meeting.");
        };
        let action: Action = match read_json(req).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        let request = match action.action.as_str() {
            "leave" => Message::Leave { leg: binding.leg.clone() },
            "update" => {
                let mut changes = Vec::new();
                for (name, value) in action.changes {
                    if !BROWSER_FIELDS.contains(&name.as_str()) {
                        return error(StatusCode::BAD_REQUEST, "invalidChange", "That cannot be changed here.");
                    }
                    let value = match value {
                        serde_json::Value::Bool(b) => b.to_string(),
                        serde_json::Value::String(s) => s,
                        _ => return error(StatusCode::BAD_REQUEST, "invalidChange", "Bad value."),
                    };
                    changes.push((name, value));
                }
                Message::Update { leg: binding.leg.clone(), changes }
            }
            _ => return error(StatusCode::BAD_REQUEST, "invalidAction", "Unknown action."),
        };
        let leaving = matches!(request, Message::Leave { .. });
        let outcome = self.c2w.request(binding.link, request).await;
        if leaving || matches!(outcome, Err(C2wError::Refused(ErrorKind::LegNotFound))) {
            self.sessions.unbind_leg(&token);
        }
        match outcome {
            Ok(_) => json_ok(json!({})),
            Err(e) => c2w_error(e),
        }
    }

    async fn participants(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some((token, binding)) = self.leg_of(req) else {
            return error(StatusCode::UNAUTHORIZED, "notJoined", "You are not in this meeting.");
        };
        match self.c2w.request(binding.link, Message::Participants { leg: binding.leg }).await {
            Ok(Message::ParticipantList { names }) => json_ok(json!({ "participants": names })),
            Ok(_) => c2w_error(C2wError::Unexpected),
            Err(e) => {
                if e == C2wError::Refused(ErrorKind::LegNotFound) {
                    self.sessions.unbind_leg(&token);
                }
                c2w_error(e)
            }
        }
    }

    async fn sign_in(&self, source: IpAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        #[derive(Deserialize)]
        struct Credentials {
            username: String,
            password: String,
        }
        let creds: Credentials = match read_json(req).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        // An LDAP user is known by its JID, whatever form of it was typed.
        let (verdict, user) = self.auth.check_as(source, creds.username.trim(), &creds.password).await;
        match verdict {
            Verdict::Allowed if !self.portal_enabled(&user).await => {
                c2w_error(C2wError::Refused(ErrorKind::PortalDisabled))
            }
            Verdict::Allowed => {
                let token = self.sessions.open(&user);
                let mut r = json_ok(json!({ "user": user }));
                let cookie = format!(
                    "{COOKIE_NAME}={token}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
                    SESSION_LIFETIME.as_secs()
                );
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    r.headers_mut().insert(SET_COOKIE, v);
                }
                r
            }
            Verdict::Denied { throttled_now } => {
                if throttled_now {
                    tracing::warn!("web: too many wrong passwords from {source}; its sign-ins are refused for a while");
                }
                error(StatusCode::UNAUTHORIZED, "wrongCredentials", "Wrong username or password.")
            }
            Verdict::Throttled(wait) => throttled(wait),
            Verdict::Busy => error(StatusCode::SERVICE_UNAVAILABLE, "busy", "Busy; please try again."),
        }
    }

    /// Whether this web bridge's profile lets users sign in (the call
    /// bridge decides; with none linked there is nothing to refuse yet).
    async fn portal_enabled(&self, user: &str) -> bool {
        let Some((link, _)) = self.c2w.linked().into_iter().next() else { return true };
        let asked = self.c2w.request(link, Message::Spaces { user: user.to_string() }).await;
        asked != Err(C2wError::Refused(ErrorKind::PortalDisabled))
    }

    fn sign_out(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(token) = session_cookie(req) {
            self.sessions.close(&token);
        }
        let mut r = json_ok(json!({}));
        let clear = format!("{COOKIE_NAME}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&clear) {
            r.headers_mut().insert(SET_COOKIE, v);
        }
        r
    }

    async fn me(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(user) = session_cookie(req).and_then(|t| self.sessions.user(&t)) else {
            return error(StatusCode::UNAUTHORIZED, "notSignedIn", "Not signed in.");
        };
        // Every call bridge's spaces: a user's spaces live in the one
        // configuration all call bridges share; ask the first linked.
        let mut spaces = Vec::new();
        if let Some((link, _)) = self.c2w.linked().into_iter().next() {
            if let Ok(Message::SpaceList { spaces: found }) =
                self.c2w.request(link, Message::Spaces { user: user.clone() }).await
            {
                spaces = found;
            }
        }
        let spaces: Vec<_> =
            spaces.into_iter().map(|s| json!({ "name": s.name, "callId": s.call_id, "secret": s.secret })).collect();
        json_ok(json!({ "user": user, "spaces": spaces, "scheduling": self.scheduling.available() }))
    }

    /// `GET /api/directory?q=`: whom the signed-in user finds (the
    /// deployment's users and its directory search locations), asked of the
    /// first linked call bridge, which knows the user's tenant.
    async fn directory(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(user) = session_cookie(req).and_then(|t| self.sessions.user(&t)) else {
            return error(StatusCode::UNAUTHORIZED, "notSignedIn", "Not signed in.");
        };
        let form = confero_store::form::Form::parse(req.uri().query().unwrap_or("").as_bytes()).unwrap_or_default();
        let query = form.get("q").unwrap_or("").to_string();
        let Some((link, _)) = self.c2w.linked().into_iter().next() else {
            return c2w_error(C2wError::NoCallBridge);
        };
        match self.c2w.request(link, Message::Directory { user, query }).await {
            Ok(Message::People { people }) => json_ok(json!({ "people": people })),
            Ok(_) => c2w_error(C2wError::Unexpected),
            Err(e) => c2w_error(e),
        }
    }

    /// A signed-in user's scheduling request, handed to the scheduler.
    async fn schedule(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(user) = session_cookie(&req).and_then(|t| self.sessions.user(&t)) else {
            return error(StatusCode::UNAUTHORIZED, "notSignedIn", "Not signed in.");
        };
        let scheduling = self.scheduling.clone();
        if !scheduling.available() {
            return error(StatusCode::NOT_FOUND, "noScheduler", "Scheduling is not available here.");
        }
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let (status, body) = match (method.clone(), path.as_str()) {
            (Method::GET, "/api/schedule/options") => scheduling.options(user).await,
            (_, p) if p == "/api/schedule/meetings" || p.starts_with("/api/schedule/meetings/") => {
                let rest = p["/api/schedule/meetings".len()..].to_string();
                let body = if matches!(method, Method::POST | Method::PUT) {
                    match read_json::<serde_json::Value>(req).await {
                        Ok(v) => Some(v),
                        Err(r) => return r,
                    }
                } else {
                    None
                };
                scheduling.meetings(user, method.to_string(), rest, query, body).await
            }
            _ => return error(StatusCode::NOT_FOUND, "notFound", "No such operation."),
        };
        json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), body)
    }
}

/// Keeps a configured `frame-ancestors` value from injecting other
/// directives or headers.
fn sanitize_directive(value: &str) -> String {
    let cleaned: String = value.chars().filter(|c| !matches!(c, ';' | ',' | '\r' | '\n') && !c.is_control()).collect();
    if cleaned.trim().is_empty() {
        "'self'".into()
    } else {
        cleaned.trim().to_string()
    }
}

fn session_cookie(req: &Request<Incoming>) -> Option<String> {
    for header in req.headers().get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for part in text.split(';') {
            if let Some((name, value)) = part.trim().split_once('=') {
                if name == COOKIE_NAME {
                    return Some(value.to_string());
                }
            }
        }
    }
    None
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Response<Full<Bytes>>> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "jsonRequired", "JSON bodies only."));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(error(StatusCode::PAYLOAD_TOO_LARGE, "tooLarge", "Request too large.")),
    };
    serde_json::from_slice(&body).map_err(|_| error(StatusCode::BAD_REQUEST, "badRequest", "Malformed request."))
}

fn page(body: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_ok(value: serde_json::Value) -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, value)
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An error the page shows: `message` is for people, `code` for the script.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(status, json!({ "error": code, "message": message }))
}

fn throttled(wait: Duration) -> Response<Full<Bytes>> {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "throttled", "Too many attempts; please wait a minute.");
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    r
}

fn c2w_error(e: C2wError) -> Response<Full<Bytes>> {
    match e {
        C2wError::Refused(ErrorKind::MeetingNotFound) => error(
            StatusCode::NOT_FOUND,
            "meetingNotFound",
            "There is no meeting with that Meeting ID. Please check it and try again.",
        ),
        C2wError::Refused(ErrorKind::WrongPasscode) => {
            error(StatusCode::FORBIDDEN, "wrongPasscode", "That passcode is not right for this meeting.")
        }
        C2wError::Refused(ErrorKind::MediaNegotiation) => error(
            StatusCode::BAD_GATEWAY,
            "mediaNegotiation",
            "Your browser's media could not be connected to this meeting.",
        ),
        C2wError::Refused(ErrorKind::LegNotFound) => {
            error(StatusCode::GONE, "legEnded", "You are no longer in this meeting.")
        }
        C2wError::Refused(ErrorKind::InvalidChange) => {
            error(StatusCode::BAD_REQUEST, "invalidChange", "That cannot be changed.")
        }
        C2wError::Refused(ErrorKind::PasscodesNotAllowed) => error(
            StatusCode::FORBIDDEN,
            "passcodesNotAllowed",
            "Joining with a passcode is not allowed here; use a join link or sign in.",
        ),
        C2wError::Refused(ErrorKind::SignInRequired) => {
            error(StatusCode::FORBIDDEN, "signInRequired", "Please sign in to join meetings here.")
        }
        C2wError::Refused(ErrorKind::PortalDisabled) => {
            error(StatusCode::FORBIDDEN, "portalDisabled", "Signing in is not enabled here.")
        }
        C2wError::NoCallBridge => {
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Meetings are not reachable right now.")
        }
        C2wError::Timeout | C2wError::Unexpected | C2wError::Refused(_) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "The meeting server did not answer; try again.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ancestors_cannot_inject_directives() {
        assert_eq!(sanitize_directive("https://a.example; script-src *"), "https://a.example script-src *");
        assert_eq!(sanitize_directive(""), "'self'");
        assert_eq!(sanitize_directive("'none'"), "'none'");
    }
}
