//! Where a call goes: the CMS dial plan, over the configuration store.
//!
//! - Inbound: the domain of the Request-URI must match an inbound dial plan
//!   rule that resolves to spaces (with no rules configured, every domain
//!   resolves: the embedded default); then the user part, in any letter
//!   case, names a space by `uri`, `secondaryUri` or `callId`, or an access
//!   method by its `uri` or `callId`. A user part that is an IVR's `uri`
//!   (where the rule resolves to IVRs) reaches that IVR, where the caller
//!   types a meeting ID: a space's or access method's `callId`, within the
//!   IVR's tenant if it has one.
//! - Outbound: `remoteParty` goes through the dial transforms (the first
//!   matching rule by priority rewrites or denies it), then the outbound dial
//!   plan rules whose domain matches (exactly, or a `*.` wildcard) are tried
//!   in priority order; a rule with `failureAction=stop` ends the list.
//!
//! Pure functions of the store's objects: no SIP, no sockets.

use confero_store::schema::{ClaimSpace, Kind};
use confero_store::{Object, Store};
use regex::Regex;

/// What a dialled user part reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The space.
    pub space: Object,
    /// The access method dialled, if the user part was one of its.
    pub access_method: Option<Object>,
    /// The rest of the space's family holding the same URI or call ID
    /// (`None`: the space itself), told apart by passcode: a host's and a
    /// guests' access method on one number.
    pub shared: Vec<Option<Object>>,
}

impl Destination {
    /// The first of `owners` (a space, or an access method of one) with the
    /// others of its family that hold the same value; `None` when the first
    /// is neither or its space is gone.
    pub fn of_owners(store: &dyn Store, owners: Vec<Object>) -> Option<Destination> {
        let mut owners = owners.into_iter();
        let first = owners.next()?;
        let (space, access_method) = match first.kind {
            Kind::CoSpace => (first, None),
            Kind::AccessMethod => (store.get(Kind::CoSpace, first.parent?)?, Some(first)),
            _ => return None,
        };
        let shared = owners
            .filter(|o| o.id == space.id || (o.kind == Kind::AccessMethod && o.parent == Some(space.id)))
            .map(|o| (o.kind == Kind::AccessMethod).then_some(o))
            .collect();
        Some(Destination { space, access_method, shared })
    }

    /// Whether several of the family hold what was dialled, so the
    /// passcode typed says which.
    pub fn is_shared(&self) -> bool {
        !self.shared.is_empty()
    }

    /// Each way in and the passcode it takes (empty: none), the one dialled
    /// first.
    pub fn choices(&self) -> Vec<Destination> {
        std::iter::once(self.access_method.clone())
            .chain(self.shared.iter().cloned())
            .map(|access_method| Destination { space: self.space.clone(), access_method, shared: Vec::new() })
            .collect()
    }

    /// The way in whose passcode is `typed` (nothing typed: one without a
    /// passcode).
    pub fn choose(&self, typed: &str) -> Option<Destination> {
        self.choices().into_iter().find(|d| d.passcode().unwrap_or_default() == typed)
    }

    /// The passcode a caller must enter: an access method's own (each
    /// access method has its own, unset meaning none), else the space's.
    /// `None` or empty: none.
    pub fn passcode(&self) -> Option<&str> {
        match &self.access_method {
            Some(a) => a.get("passcode"),
            None => self.space.get("passcode"),
        }
        .filter(|p| !p.is_empty())
    }

    /// Whether callers who are not members may join (SIP callers never
    /// are). A space's `nonMemberAccess` governs its own URI and call ID;
    /// access methods exist to let others in, so they always admit.
    pub fn admits_non_members(&self) -> bool {
        self.access_method.is_some() || self.space.get("nonMemberAccess") != Some("false")
    }

    /// The call leg profile that applies: the access method's, else the
    /// space's.
    pub fn call_leg_profile(&self) -> Option<&str> {
        self.access_method.as_ref().and_then(|a| a.get("callLegProfile")).or_else(|| self.space.get("callLegProfile"))
    }
}

/// Why an inbound call reaches no space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundRefusal {
    /// Rules are configured and none takes this domain to spaces.
    DomainNotServed,
    /// No space or access method has this URI or call ID.
    NotFound,
}

/// Resolves an inbound call's Request-URI `user@domain`.
pub fn resolve_inbound(store: &dyn Store, user: &str, domain: &str) -> Result<Destination, InboundRefusal> {
    let mut rules = store.all(Kind::InboundDialPlanRule, None);
    if !rules.is_empty() {
        rules.retain(|r| r.get("domain").is_some_and(|d| d.eq_ignore_ascii_case(domain)));
        rules.sort_by_key(|r| std::cmp::Reverse(priority(r)));
        let to_spaces = rules.first().ok_or(InboundRefusal::DomainNotServed)?.get("resolveTocoSpaces") != Some("false");
        if !to_spaces {
            return Err(InboundRefusal::DomainNotServed);
        }
    }
    let user = user.to_lowercase();
    let mut owners = store.claim_owners(ClaimSpace::Uri, &user);
    if owners.is_empty() {
        owners = store.claim_owners(ClaimSpace::CallId, &user);
    }
    Destination::of_owners(store, owners).ok_or(InboundRefusal::NotFound)
}

/// The IVR an inbound call's `user@domain` dials, if any: an `ivrs` object
/// whose `uri` is the user part (any case), where the inbound rule for the
/// domain resolves to IVRs (`resolveToIvrs`, true unless set false; with no
/// rules configured, every domain does).
pub fn resolve_ivr(store: &dyn Store, user: &str, domain: &str) -> Option<Object> {
    let mut rules = store.all(Kind::InboundDialPlanRule, None);
    if !rules.is_empty() {
        rules.retain(|r| r.get("domain").is_some_and(|d| d.eq_ignore_ascii_case(domain)));
        rules.sort_by_key(|r| std::cmp::Reverse(priority(r)));
        if rules.first()?.get("resolveToIvrs") == Some("false") {
            return None;
        }
    }
    store.claim_owner(ClaimSpace::Uri, &user.to_lowercase()).filter(|o| o.kind == Kind::Ivr)
}

/// The meeting a caller typed at `ivr`: a space's or access method's
/// `callId` (unless the IVR's `resolveCoSpaceCallIds` is false), within the
/// IVR's tenant when it has one, else within the tenants of its
/// `tenantGroup` when it names one.
pub fn resolve_meeting_id(store: &dyn Store, ivr: &Object, meeting_id: &str) -> Option<Destination> {
    if ivr.get("resolveCoSpaceCallIds") == Some("false") || meeting_id.is_empty() {
        return None;
    }
    let destination = Destination::of_owners(store, store.claim_owners(ClaimSpace::CallId, meeting_id))?;
    let space_tenant = destination.space.get("tenant");
    let within = match (ivr.get("tenant"), ivr.get("tenantGroup")) {
        (Some(tenant), _) => space_tenant == Some(tenant),
        (None, Some(group)) => space_tenant
            .and_then(|t| uuid::Uuid::parse_str(t).ok())
            .and_then(|t| store.get(Kind::Tenant, t))
            .is_some_and(|t| t.get("tenantGroup") == Some(group)),
        (None, None) => true,
    };
    within.then_some(destination)
}

fn priority(o: &Object) -> i64 {
    o.get("priority").and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// A dial transform said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied;

/// Applies the dial transforms to what the API asked to dial. The first
/// rule by priority whose match holds decides: `deny` refuses, `accept` and
/// `acceptPhone` dial its transform. No matching rule: dialled as given.
pub fn transform(store: &dyn Store, remote_party: &str) -> Result<String, Denied> {
    let mut rules = store.all(Kind::DialTransform, None);
    rules.sort_by_key(|r| std::cmp::Reverse(priority(r)));
    for rule in &rules {
        let groups = groups(rule.get("type").unwrap_or("raw"), remote_party);
        if !matches(rule.get("match").unwrap_or(""), &groups) {
            continue;
        }
        if rule.get("action") == Some("deny") {
            return Err(Denied);
        }
        return Ok(match rule.get("transform").filter(|t| !t.is_empty()) {
            Some(t) => apply_transform(t, &groups),
            None => remote_party.to_string(),
        });
    }
    Ok(remote_party.to_string())
}

/// The `$n` values of a dial string: `raw` is the string; `strip` drops
/// the dots, dashes, spaces and brackets people type into numbers; `phone`
/// splits an E.164 number (`+` then digits) into country code and number.
fn groups(kind: &str, input: &str) -> Vec<String> {
    let stripped = || input.chars().filter(|c| !matches!(c, '.' | '-' | ' ' | '(' | ')')).collect::<String>();
    match kind {
        "strip" => vec![stripped()],
        "phone" => {
            let s = stripped();
            match s.strip_prefix('+') {
                Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    let cc = country_code_len(digits);
                    vec![digits[..cc].to_string(), digits[cc..].to_string()]
                }
                _ => vec![String::new(), s],
            }
        }
        _ => vec![input.to_string()],
    }
}

/// ITU-T E.164 country codes are prefix-free: 1 and 7 are one digit, the
/// zones' listed two-digit codes two, the rest three.
fn country_code_len(digits: &str) -> usize {
    const TWO: &[&str] = &[
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
        "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
        "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO.iter().any(|c| digits.starts_with(c)) {
        2
    } else {
        3.min(digits.len())
    }
}

/// `($1/regex/)($2/regex/)...`: every group's regex matches its value. An
/// empty match matches everything; a malformed one matches nothing.
fn matches(spec: &str, groups: &[String]) -> bool {
    let mut rest = spec.trim();
    while !rest.is_empty() {
        let Some((n, regex, tail)) = parse_match_group(rest) else { return false };
        let value = groups.get(n.wrapping_sub(1)).map_or("", String::as_str);
        match Regex::new(regex) {
            Ok(r) if r.is_match(value) => {}
            _ => return false,
        }
        rest = tail.trim_start();
    }
    true
}

/// One `($n/regex/)` group: (n, regex, what follows).
fn parse_match_group(s: &str) -> Option<(usize, &str, &str)> {
    let s = s.strip_prefix("($")?;
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n = s[..digits].parse().ok()?;
    let s = s[digits..].strip_prefix('/')?;
    let end = s.rfind("/)")?;
    // The regex ends at the first "/)" that closes this group.
    let end = s.find("/)").filter(|&e| e <= end)?;
    Some((n, &s[..end], &s[end + 2..]))
}

/// `text$1{/re/replacement/}{...}text$2...`: each `$n` is its group's value
/// after the `{/re/replacement/}` substitutions that follow it, in order.
fn apply_transform(spec: &str, groups: &[String]) -> String {
    let mut out = String::new();
    let mut rest = spec;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        let n: usize = after[..digits].parse().unwrap_or(0);
        let mut value = groups.get(n.wrapping_sub(1)).cloned().unwrap_or_default();
        rest = &after[digits..];
        while let Some(body) = rest.strip_prefix('{') {
            let Some(close) = body.find('}') else { break };
            let edit = &body[..close];
            rest = &body[close + 1..];
            let parts: Vec<&str> = edit.split('/').collect();
            if let [_, re, replacement, _] = parts.as_slice() {
                if let Ok(r) = Regex::new(re) {
                    value = r.replace_all(&value, *replacement).into_owned();
                }
            }
        }
        out.push_str(&value);
    }
    out.push_str(rest);
    out
}

/// One way to try an outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The rule's SIP proxy; `None`: the domain itself.
    pub sip_proxy: Option<String>,
    /// The domain in our From; `None`: our own address.
    pub local_from_domain: Option<String>,
    /// The domain in our Contact; `None`: our own address.
    pub local_contact_domain: Option<String>,
    /// `encrypted`, `unencrypted` or `auto` signalling.
    pub control_encryption: String,
}

/// The routes for a dial string's domain, best first: the matching rules by
/// priority, up to and including the first with `failureAction=stop` (the
/// default). No rules: straight to the domain.
pub fn outbound_routes(store: &dyn Store, domain: &str) -> Vec<Route> {
    let rules = store.all(Kind::OutboundDialPlanRule, None);
    if rules.is_empty() {
        return vec![Route {
            sip_proxy: None,
            local_from_domain: None,
            local_contact_domain: None,
            control_encryption: "auto".into(),
        }];
    }
    let mut matching: Vec<_> =
        rules.into_iter().filter(|r| r.get("domain").is_some_and(|d| domain_matches(d, domain))).collect();
    matching.sort_by_key(|r| std::cmp::Reverse(priority(r)));
    let mut routes = Vec::new();
    for r in matching {
        let text = |f: &str| r.get(f).filter(|v| !v.is_empty()).map(str::to_string);
        routes.push(Route {
            sip_proxy: text("sipProxy"),
            local_from_domain: text("localFromDomain"),
            local_contact_domain: text("localContactDomain"),
            control_encryption: text("sipControlEncryption").unwrap_or_else(|| "auto".into()),
        });
        if r.get("failureAction") != Some("continue") {
            break;
        }
    }
    routes
}

/// `example.com` matches itself (any case); `*.example.com` matches its
/// subdomains; `*` matches everything.
fn domain_matches(rule: &str, domain: &str) -> bool {
    let (rule, domain) = (rule.to_ascii_lowercase(), domain.to_ascii_lowercase());
    match rule.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => domain.ends_with(suffix),
        None => rule == domain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{create, store};

    #[test]
    fn inbound_resolves_uri_secondary_uri_call_id_and_access_methods_in_any_case() {
        let (_d, s) = store();
        let space = create(
            &*s,
            Kind::CoSpace,
            None,
            &[("name", "Room"), ("uri", "Room.One"), ("secondaryUri", "alt"), ("callId", "4242"), ("passcode", "1234")],
        );
        let am = create(
            &*s,
            Kind::AccessMethod,
            Some(space.id),
            &[("uri", "guest.room"), ("callId", "777"), ("passcode", "99")],
        );
        for user in ["room.one", "ROOM.one", "alt", "4242"] {
            let d = resolve_inbound(&*s, user, "example.com").unwrap();
            assert_eq!((d.space.id, d.access_method.is_none(), d.passcode()), (space.id, true, Some("1234")), "{user}");
        }
        for user in ["Guest.Room", "777"] {
            let d = resolve_inbound(&*s, user, "127.0.0.1").unwrap();
            assert_eq!(
                (d.space.id, d.access_method.as_ref().map(|a| a.id), d.passcode()),
                (space.id, Some(am.id), Some("99"))
            );
        }
        assert_eq!(resolve_inbound(&*s, "nobody", "example.com"), Err(InboundRefusal::NotFound));
    }

    #[test]
    fn with_rules_only_their_domains_resolve() {
        let (_d, s) = store();
        create(&*s, Kind::CoSpace, None, &[("name", "Room"), ("uri", "room")]);
        create(&*s, Kind::InboundDialPlanRule, None, &[("domain", "video.example.com")]);
        create(
            &*s,
            Kind::InboundDialPlanRule,
            None,
            &[("domain", "users.example.com"), ("resolveTocoSpaces", "false")],
        );
        assert!(resolve_inbound(&*s, "room", "VIDEO.example.com").is_ok());
        assert_eq!(resolve_inbound(&*s, "room", "other.com"), Err(InboundRefusal::DomainNotServed));
        assert_eq!(resolve_inbound(&*s, "room", "users.example.com"), Err(InboundRefusal::DomainNotServed));
    }

    /// An IVR resolves call IDs within its tenant, else within its tenant
    /// group's tenants, else everywhere.
    #[test]
    fn an_ivr_resolves_call_ids_within_its_tenant_or_tenant_group() {
        let (_d, s) = store();
        let group = create(&*s, Kind::TenantGroup, None, &[]);
        let group_id = group.id.to_string();
        let inside = create(&*s, Kind::Tenant, None, &[("name", "In"), ("tenantGroup", &group_id)]);
        let outside = create(&*s, Kind::Tenant, None, &[("name", "Out")]);
        let space = |name: &str, call_id: &str, tenant: &Object| {
            let tenant = tenant.id.to_string();
            create(&*s, Kind::CoSpace, None, &[("name", name), ("callId", call_id), ("tenant", &tenant)])
        };
        space("A", "1001", &inside);
        space("B", "1002", &outside);
        let ivr = |fields: &[(&str, &str)]| create(&*s, Kind::Ivr, None, fields);
        let grouped = ivr(&[("uri", "grouped"), ("tenantGroup", &group_id)]);
        assert!(resolve_meeting_id(&*s, &grouped, "1001").is_some());
        assert!(resolve_meeting_id(&*s, &grouped, "1002").is_none(), "another group's tenant");
        let tenant_id = outside.id.to_string();
        let own = ivr(&[("uri", "own"), ("tenant", &tenant_id), ("tenantGroup", &group_id)]);
        assert!(resolve_meeting_id(&*s, &own, "1002").is_some(), "the tenant wins over the group");
        assert!(resolve_meeting_id(&*s, &own, "1001").is_none());
        let open = ivr(&[("uri", "open")]);
        assert!(resolve_meeting_id(&*s, &open, "1001").is_some() && resolve_meeting_id(&*s, &open, "1002").is_some());
    }

    #[test]
    fn non_member_access_and_profiles_follow_the_access_method_then_the_space() {
        let (_d, s) = store();
        let space =
            create(&*s, Kind::CoSpace, None, &[("name", "Room"), ("uri", "closed"), ("nonMemberAccess", "false")]);
        create(&*s, Kind::AccessMethod, Some(space.id), &[("uri", "open")]);
        assert!(!resolve_inbound(&*s, "closed", "x").unwrap().admits_non_members());
        assert_eq!(resolve_inbound(&*s, "open", "x").unwrap().passcode(), None);
        assert!(resolve_inbound(&*s, "open", "x").unwrap().admits_non_members());
    }

    #[test]
    fn dial_transforms_rewrite_or_deny_by_priority() {
        let (_d, s) = store();
        assert_eq!(transform(&*s, "alice@example.com").unwrap(), "alice@example.com");
        // Cisco's own example: a leading 9 then a number becomes 00-international.
        create(
            &*s,
            Kind::DialTransform,
            None,
            &[
                ("type", "strip"),
                ("match", r"($1/^9\+?[^+]+$/)"),
                ("transform", r"$1{/^9//}{/\+/00/}@pstn.example.com"),
                ("priority", "10"),
                ("action", "accept"),
            ],
        );
        create(
            &*s,
            Kind::DialTransform,
            None,
            &[("type", "raw"), ("match", "($1/^666/)"), ("priority", "20"), ("action", "deny")],
        );
        create(
            &*s,
            Kind::DialTransform,
            None,
            &[
                ("type", "phone"),
                ("match", "($1/^44$/)"),
                ("transform", "0$2@uk.example.com"),
                ("priority", "5"),
                ("action", "acceptPhone"),
            ],
        );
        assert_eq!(transform(&*s, "9+1 555-0100").unwrap(), "0015550100@pstn.example.com");
        assert_eq!(transform(&*s, "666123"), Err(Denied));
        assert_eq!(transform(&*s, "+44 20 7946 0000").unwrap(), "02079460000@uk.example.com");
        assert_eq!(transform(&*s, "bob@example.com").unwrap(), "bob@example.com");
    }

    #[test]
    fn outbound_rules_match_domains_by_priority_until_stop() {
        let (_d, s) = store();
        assert_eq!(outbound_routes(&*s, "example.com").len(), 1);
        create(
            &*s,
            Kind::OutboundDialPlanRule,
            None,
            &[
                ("domain", "*.example.com"),
                ("priority", "5"),
                ("sipProxy", "127.0.0.1:5080"),
                ("failureAction", "continue"),
            ],
        );
        create(
            &*s,
            Kind::OutboundDialPlanRule,
            None,
            &[
                ("domain", "a.example.com"),
                ("priority", "10"),
                ("sipProxy", "127.0.0.1:5070"),
                ("localFromDomain", "bridge.example.com"),
                ("failureAction", "continue"),
            ],
        );
        create(
            &*s,
            Kind::OutboundDialPlanRule,
            None,
            &[("domain", "*"), ("priority", "1"), ("sipProxy", "127.0.0.1:5090")],
        );
        create(
            &*s,
            Kind::OutboundDialPlanRule,
            None,
            &[("domain", "*"), ("priority", "0"), ("sipProxy", "127.0.0.1:5099")],
        );
        let proxies = |d: &str| outbound_routes(&*s, d).into_iter().map(|r| r.sip_proxy.unwrap()).collect::<Vec<_>>();
        assert_eq!(proxies("A.example.com"), ["127.0.0.1:5070", "127.0.0.1:5080", "127.0.0.1:5090"]);
        assert_eq!(outbound_routes(&*s, "a.example.com")[0].local_from_domain.as_deref(), Some("bridge.example.com"));
        assert_eq!(proxies("other.org"), ["127.0.0.1:5090"]);
    }
}
