//! The query methods: `accessQuery` (how a space's URI or call ID is
//! reached: its full SIP URI, the web app's join link, an IVR to type it
//! at), `uriUsageQuery` (which space, access method, IVR or user holds a
//! URI) and `conversationIdQuery` (Lync conversations: Confero has none).
//! Parameters come in the form body or the query string, as clients send
//! them either way.

use confero_store::form::Form;
use confero_store::schema::{ClaimSpace, Kind};
use confero_store::Object;

use super::failure::Failure;
use super::xml::XmlWriter;
use super::{Api, Reply};

/// A parameter from the body, else the URL.
fn param<'a>(body: &'a Form, query: &'a Form, name: &str) -> Option<&'a str> {
    body.get(name).or_else(|| query.get(name)).map(str::trim).filter(|v| !v.is_empty())
}

/// The tenant a query is limited to (`None`: objects without a tenant).
fn tenant(api: &Api, body: &Form, query: &Form) -> Result<Option<String>, Failure> {
    match param(body, query, "tenant") {
        None => Ok(None),
        Some(t) => {
            let id = uuid::Uuid::parse_str(t).map_err(|_| Failure::Reason("tenantDoesNotExist"))?;
            api.store.get(Kind::Tenant, id).ok_or(Failure::Reason("tenantDoesNotExist"))?;
            Ok(Some(id.to_string()))
        }
    }
}

/// The tenant an object belongs to (an access method: its space's).
fn tenant_of(api: &Api, o: &Object) -> Option<String> {
    match o.kind {
        Kind::AccessMethod => {
            o.parent.and_then(|p| api.store.get(Kind::CoSpace, p)).and_then(|s| s.get("tenant").map(str::to_string))
        }
        _ => o.get("tenant").map(str::to_string),
    }
}

/// The SIP domain URIs are reached at: the highest-priority inbound dial
/// plan rule that resolves to spaces, else the XMPP domain.
fn sip_domain(api: &Api) -> Option<String> {
    let mut rules = api.store.all(Kind::InboundDialPlanRule, None);
    rules.retain(|r| r.get("resolveTocoSpaces") != Some("false"));
    rules.sort_by_key(|r| std::cmp::Reverse(r.get("priority").and_then(|p| p.parse::<i64>().ok()).unwrap_or(0)));
    rules
        .first()
        .and_then(|r| r.get("domain").map(str::to_string))
        .filter(|d| !d.contains('*'))
        .or_else(|| api.store.singleton(Kind::XmppConfiguration).get("domain").map(str::to_string))
}

fn full_uri(api: &Api, user: &str) -> String {
    match sip_domain(api) {
        Some(domain) => format!("{user}@{domain}"),
        None => user.to_string(),
    }
}

/// `POST /accessQuery` (`uri`, `callId`, `tenant`).
pub fn access_query(api: &Api, body: &Form, query: &Form) -> Result<Reply, Failure> {
    let tenant = tenant(api, body, query)?;
    let in_tenant = |o: &Object| tenant_of(api, o) == tenant;
    let mut w = XmlWriter::new();
    w.open("accessQuery", &[]);
    if let Some(uri) = param(body, query, "uri") {
        let user = uri.split('@').next().unwrap_or(uri).to_lowercase();
        if let Some(owner) = api.store.claim_owner(ClaimSpace::Uri, &user).filter(|o| in_tenant(o)) {
            w.text("uri", &full_uri(api, owner.get("uri").unwrap_or(&user)));
        }
    }
    if let Some(call_id) = param(body, query, "callId") {
        let reached = api.store.claim_owner(ClaimSpace::CallId, call_id).filter(|o| in_tenant(o));
        if reached.is_some() {
            if let Some(web) = api.web_links.web_address() {
                w.text("webAddress", &format!("{web}/meeting/{call_id}"));
            }
            let ivr = api.store.all(Kind::Ivr, None).into_iter().find(|i| {
                i.get("resolveCoSpaceCallIds") != Some("false")
                    && (i.get("tenant").is_none() || i.get("tenant").map(str::to_string) == tenant)
            });
            if let Some(uri) = ivr.as_ref().and_then(|i| i.get("uri")) {
                w.text("ivr", &full_uri(api, uri));
            }
        }
    }
    w.close("accessQuery");
    Ok(Reply::xml(w.finish()))
}

/// `POST /uriUsageQuery` (`uri`, `tenant`): what holds the URI within the
/// tenant (objects without one when none is given).
pub fn uri_usage_query(api: &Api, body: &Form, query: &Form) -> Result<Reply, Failure> {
    let uri = param(body, query, "uri").ok_or_else(|| Failure::parameter("uri", "missing"))?;
    let tenant = tenant(api, body, query)?;
    let user = uri.split('@').next().unwrap_or(uri).to_lowercase();
    let mut w = XmlWriter::new();
    w.open("uriUsageQuery", &[]);
    if let Some(owner) = api.store.claim_owner(ClaimSpace::Uri, &user).filter(|o| tenant_of(api, o) == tenant) {
        let element = match owner.kind {
            Kind::CoSpace => Some("coSpaceId"),
            Kind::AccessMethod => Some("accessMethodId"),
            Kind::Ivr => Some("ivrId"),
            _ => None,
        };
        if let Some(element) = element {
            if owner.kind == Kind::AccessMethod {
                if let Some(space) = owner.parent {
                    w.text("coSpaceId", &space.to_string());
                }
            }
            w.text(element, &owner.id.to_string());
        }
    }
    let users = api.store.all(Kind::User, None);
    let user_jid = |u: &&Object| u.get("userJid").is_some_and(|j| j.split('@').next() == Some(user.as_str()));
    if let Some(u) = users.iter().find(|u| user_jid(u) && u.get("tenant").map(str::to_string) == tenant) {
        w.text("userId", &u.id.to_string());
    }
    w.close("uriUsageQuery");
    Ok(Reply::xml(w.finish()))
}

/// `GET /conversationIdQuery?conversationId=...`: Lync conversations are
/// never found (Confero does not federate with Lync).
pub fn conversation_id_query(query: &Form) -> Result<Reply, Failure> {
    let id = query.get("conversationId").map(str::trim).filter(|v| !v.is_empty());
    let id = id.ok_or_else(|| Failure::parameter("conversationId", "missing"))?;
    let mut w = XmlWriter::new();
    w.open("conversationIdQuery", &[]).text("conversationId", id).text("found", "false").close("conversationIdQuery");
    Ok(Reply::xml(w.finish()))
}
