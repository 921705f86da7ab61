//! The meetings API, `/api/v1/meetings`, on the scheduler's own HTTPS
//! listener (the shared scaffold: TLS, caps, deadlines). JSON in and out.
//!
//! Basic auth as on the call bridge's API: `admin` and `api` users see every
//! meeting; `user` (web app) users see and change only their own. Every
//! refusal is a JSON `{"error": {"field": ..., "reason": ...}}` naming the
//! field at fault; nothing is read before the credentials are checked.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
pub use hyper::Method;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use confero_https::throttle::ThrottlePolicy;
use confero_https::users::{Authenticator, Directory, Role, Verdict};
use confero_store::Store;

use crate::meeting::{format_local, Meeting};
use crate::service::{Caller, Listed, Scheduler, ServiceError};

/// Largest request body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Occurrences a list returns when `maxMeetings` is not given.
pub const DEFAULT_MAX: usize = 100;
/// The most a list returns.
pub const MAX_MAX: usize = 1000;
/// How far a list reaches when `untilTime` is not given.
pub fn default_span() -> Duration {
    Duration::days(31)
}

/// Who may use the meetings API.
const ROLES: &[Role] = &[Role::Admin, Role::Api, Role::User];

/// The API's state.
pub struct MeetingsApi {
    scheduler: Arc<Scheduler>,
    store: Arc<dyn Store>,
    auth: Arc<Authenticator>,
}

impl MeetingsApi {
    /// The API over `scheduler`, checking users in `store`, and in
    /// `directory` (LDAP-imported users, who are web users here).
    pub fn new(
        scheduler: Arc<Scheduler>,
        store: Arc<dyn Store>,
        directory: Option<Arc<dyn Directory>>,
    ) -> Arc<MeetingsApi> {
        let mut auth = Authenticator::for_roles(store.clone(), ThrottlePolicy::default(), ROLES);
        if let Some(directory) = directory {
            auth = auth.with_directory(directory);
        }
        Arc::new(MeetingsApi { scheduler, store, auth: Arc::new(auth) })
    }
}

fn reply(status: StatusCode, body: Option<Value>, location: Option<String>) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status).header("cache-control", "no-store");
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    if let Some(l) = location {
        b = b.header("location", l);
    }
    if status == StatusCode::UNAUTHORIZED {
        b = b.header("www-authenticate", "Basic realm=\"scheduler\"");
    }
    let bytes = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
    b.body(Full::new(bytes)).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error_json(field: Option<&str>, reason: &str) -> Value {
    let mut e = json!({"reason": reason});
    if let Some(f) = field {
        e["field"] = f.into();
    }
    json!({ "error": e })
}

fn error(status: StatusCode, field: Option<&str>, reason: &str) -> Response<Full<Bytes>> {
    reply(status, Some(error_json(field, reason)), None)
}

fn failure(e: ServiceError) -> (StatusCode, Option<String>, String) {
    match e {
        ServiceError::Field(f) => (StatusCode::BAD_REQUEST, Some(f.field), f.reason),
        ServiceError::NotFound => (StatusCode::NOT_FOUND, None, "meetingDoesNotExist".into()),
        ServiceError::CallBridge(e) => {
            tracing::warn!("scheduler: {e}");
            (StatusCode::BAD_GATEWAY, None, "callBridgeFailure".into())
        }
        ServiceError::Store(e) => {
            tracing::warn!("scheduler: store: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, None, "storageFailure".into())
        }
    }
}

/// An instant in a query: RFC 3339, or a UTC date and time without offset.
fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| crate::meeting::parse_local(s).map(|t| t.and_utc()))
}

fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| decode(v))
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON of one listed occurrence: the meeting and when this one is.
pub fn listed_json(l: &Listed) -> Value {
    let mut v = l.meeting.to_json(false);
    let o = &l.occurrence;
    v["occurrence"] = json!({
        "start": o.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "end": o.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "localStart": format_local(o.local_start),
        "localEnd": format_local(o.local_end),
        "recurrenceId": format_local(o.original),
        "moved": o.moved,
    });
    v
}

/// `GET /api/v1/meetings?fromTime=&untilTime=&maxMeetings=`: occurrences in time order.
pub fn list(scheduler: &Scheduler, caller: &Caller, query: &str) -> Result<Value, ServiceError> {
    use crate::meeting::FieldError;
    let from = match query_value(query, "fromTime") {
        Some(v) => instant(&v).ok_or_else(|| FieldError::new("fromTime", "not a date and time"))?,
        None => scheduler.now(),
    };
    let until = match query_value(query, "untilTime") {
        Some(v) => instant(&v).ok_or_else(|| FieldError::new("untilTime", "not a date and time"))?,
        None => from + default_span(),
    };
    if until < from {
        return Err(FieldError::new("untilTime", "before fromTime").into());
    }
    let max = match query_value(query, "maxMeetings") {
        Some(v) => v.parse::<usize>().map_err(|_| FieldError::new("maxMeetings", "not a number"))?.min(MAX_MAX),
        None => DEFAULT_MAX,
    };
    let (total, listed) = scheduler.list(caller, from, until, max);
    Ok(json!({"total": total, "meetings": listed.iter().map(listed_json).collect::<Vec<_>>()}))
}

fn meeting_json(m: &Meeting) -> Value {
    m.to_json(false)
}

/// Answers one request.
pub async fn handle(api: Arc<MeetingsApi>, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    tracing::info!("scheduler API: {method} {path} (from {})", peer.ip());
    let Some((user, password)) = confero_https::basic_credentials(req.headers().get(hyper::header::AUTHORIZATION))
    else {
        return error(StatusCode::UNAUTHORIZED, None, "authenticationRequired");
    };
    let (verdict, user) = api.auth.check_as(peer.ip(), &user, &password).await;
    match verdict {
        Verdict::Allowed => {}
        Verdict::Denied { .. } => return error(StatusCode::UNAUTHORIZED, None, "authenticationFailed"),
        Verdict::Throttled(after) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, None, "tooManyFailures");
            if let Ok(v) = hyper::header::HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
                r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            return r;
        }
        Verdict::Busy => return error(StatusCode::SERVICE_UNAVAILABLE, None, "busy"),
    }
    let store = api.store.clone();
    let name = user.clone();
    let role = tokio::task::spawn_blocking(move || store.api_user(&name)).await;
    // Only a local admin or api user acts on every meeting; a local web user
    // and a directory (LDAP) user, known by its JID, on their own.
    let api_user = matches!(role, Ok(Ok(Some(u))) if u.role == Role::Admin.as_str() || u.role == Role::Api.as_str());
    let web_user = !api_user;
    let caller = Caller { name: user, web_user };

    let Some(rest) = path.strip_prefix("/api/v1/meetings") else {
        return error(StatusCode::NOT_FOUND, None, "unrecognisedObject");
    };
    let body = if matches!(method, Method::POST | Method::PUT) {
        match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => match serde_json::from_slice::<Value>(&b.to_bytes()) {
                Ok(v) => v,
                Err(e) => return error(StatusCode::BAD_REQUEST, Some("body"), &format!("not JSON: {e}")),
            },
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, Some("body"), "too large"),
        }
    } else {
        Value::Null
    };
    let (status, body, location) = dispatch(&api.scheduler, &caller, &method, rest, &query, &body).await;
    reply(status, body, location)
}

/// Runs one authenticated request on `/api/v1/meetings` + `rest`: the
/// status, the JSON body and the `Location` of a created meeting. The web
/// app's scheduling goes through here too, as a web user.
pub async fn dispatch(
    s: &Scheduler,
    caller: &Caller,
    method: &Method,
    rest: &str,
    query: &str,
    body: &Value,
) -> (StatusCode, Option<Value>, Option<String>) {
    let id = match rest {
        "" | "/" => None,
        r => match r.strip_prefix('/').map(|i| Uuid::parse_str(i.trim_end_matches('/'))) {
            Some(Ok(id)) => Some(id),
            _ => return (StatusCode::NOT_FOUND, Some(error_json(None, "meetingDoesNotExist")), None),
        },
    };
    let result = match (method.clone(), id) {
        (Method::GET, None) => list(s, caller, query).map(|v| (StatusCode::OK, Some(v), None)),
        (Method::POST, None) => s
            .create(caller, body)
            .await
            .map(|m| (StatusCode::CREATED, Some(meeting_json(&m)), Some(format!("/api/v1/meetings/{}", m.id)))),
        (Method::GET, Some(id)) => s.get(caller, id).map(|m| (StatusCode::OK, Some(meeting_json(&m)), None)),
        (Method::PUT, Some(id)) => {
            s.update(caller, id, body).await.map(|m| (StatusCode::OK, Some(meeting_json(&m)), None))
        }
        (Method::DELETE, Some(id)) => s.delete(caller, id).await.map(|()| (StatusCode::NO_CONTENT, None, None)),
        _ => return (StatusCode::METHOD_NOT_ALLOWED, Some(error_json(None, "methodNotSupported")), None),
    };
    result.unwrap_or_else(|e| {
        let (status, field, reason) = failure(e);
        (status, Some(error_json(field.as_deref(), &reason)), None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value("fromTime=2027-03-01T00%3A00%3A00Z&x=1", "fromTime").as_deref(),
            Some("2027-03-01T00:00:00Z")
        );
        assert_eq!(query_value("a=%", "a").as_deref(), Some("%"));
        assert_eq!(query_value("a=%4", "a").as_deref(), Some("%4"));
        assert_eq!(query_value("a=%zz", "a").as_deref(), Some("%zz"));
        assert_eq!(instant("2027-03-01T00:00:00+01:00"), instant("2027-02-28T23:00"));
    }
}
