//! People search: whom a signed-in web user finds when looking someone up
//! (the scheduling wizard's "Find people"). As CMS describes its external
//! directory search locations, their results are "added to the normal
//! results": first the users of the searcher's own tenant (imported from
//! LDAP or made by the API), then each `directorySearchLocations` object that
//! applies to the searcher (no tenant, or the searcher's), higher
//! `priority` first, its LDAP server asked with its `baseDn` and its
//! `filterFormat` (`$1` the words typed, escaped as RFC 4515 says), each
//! result's fields read from the attributes the location names, and shown
//! with its `label`.
//!
//! [`plan`] reads the store (blocking); [`run`] asks the directories (async,
//! bounded: 25 results, 8 s per directory, all of them at once, and at most
//! 8 searches doing so at a time).

use std::collections::HashSet;

use uuid::Uuid;

use confero_store::schema::Kind;
use confero_store::{Object, Store};

use crate::directory::{self, Entry, Server};

/// The most people one search returns, and asks each directory for.
pub const MAX_RESULTS: usize = 25;
/// The longest search, in characters.
pub const MAX_QUERY: usize = 64;
/// Searches asking directories at once, whoever asks: a signed-in user
/// typing fast, or many users, must not open connections without bound to
/// the directories (each search asks every location).
static SEARCHES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);
/// The filter of a location with no `filterFormat`.
const DEFAULT_FILTER: &str = "(cn=*$1*)";

/// One person found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// The name to show.
    pub name: String,
    /// The email address, if known (what an invitation needs).
    #[serde(default)]
    pub email: Option<String>,
    /// The SIP URI, if known.
    #[serde(default)]
    pub sip: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Mobile number.
    #[serde(default)]
    pub mobile: Option<String>,
    /// Organisation.
    #[serde(default)]
    pub organisation: Option<String>,
    /// The location's `label`; none for the deployment's own users.
    #[serde(default)]
    pub label: Option<String>,
}

/// The LDAP attribute each result field is read from (a location's
/// `firstName`, `lastName`, ... fields).
#[derive(Debug, Clone, Default)]
struct Fields {
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    phone: Option<String>,
    mobile: Option<String>,
    email: Option<String>,
    sip: Option<String>,
    organisation: Option<String>,
}

impl Fields {
    fn of(object: &Object) -> Fields {
        let attr = |name: &str| object.get(name).map(str::trim).filter(|a| !a.is_empty()).map(str::to_string);
        Fields {
            first_name: attr("firstName"),
            last_name: attr("lastName"),
            display_name: attr("displayName"),
            phone: attr("phone"),
            mobile: attr("mobile"),
            email: attr("email"),
            sip: attr("sip"),
            organisation: attr("organisation"),
        }
    }

    /// The attributes to ask the directory for.
    fn attributes(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            &self.first_name,
            &self.last_name,
            &self.display_name,
            &self.phone,
            &self.mobile,
            &self.email,
            &self.sip,
            &self.organisation,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        names.push("cn".into());
        names.sort();
        names.dedup();
        names
    }
}

/// One directory to ask.
#[derive(Debug, Clone)]
pub struct Location {
    server: Server,
    base_dn: String,
    filter_format: String,
    label: Option<String>,
    fields: Fields,
}

/// What a search will do: the users already found, and the directories
/// still to ask.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    query: String,
    found: Vec<Person>,
    locations: Vec<Location>,
}

/// `format` with `$1` replaced by `query`, escaped so that what someone
/// types can never change the filter; a format without its outer
/// parentheses (`cn=$1*`) gets them.
pub fn filter_for(format: &str, query: &str) -> String {
    let format = if format.trim().is_empty() { DEFAULT_FILTER } else { format.trim() };
    let filter = format.replace("$1", &ldap3::ldap_escape(query));
    if filter.starts_with('(') {
        filter
    } else {
        format!("({filter})")
    }
}

/// Whether the JID `jid` names the web user `user`: the whole JID, or its
/// part before `@` (as the web app's sign-in accepts it).
fn names(jid: &str, user: &str) -> bool {
    let jid = jid.trim();
    jid.eq_ignore_ascii_case(user) || jid.split_once('@').is_some_and(|(local, _)| local.eq_ignore_ascii_case(user))
}

/// The tenant of the web user `user` (a `users` object's, by its JID); a
/// local web account has none.
fn tenant_of(store: &dyn Store, user: &str) -> Option<Uuid> {
    let found = store.all(Kind::User, None).into_iter().find(|u| u.get("userJid").is_some_and(|j| names(j, user)))?;
    Uuid::parse_str(found.get("tenant")?).ok()
}

fn tenant_field(object: &Object) -> Option<Uuid> {
    object.get("tenant").and_then(|t| Uuid::parse_str(t).ok())
}

/// What searching for `query` on behalf of `user` will do: the users of
/// the same tenant who match (by name, JID or email, in any case), and the
/// locations to ask. Blocking (reads the store).
pub fn plan(store: &dyn Store, user: &str, query: &str) -> Plan {
    let query: String = query.trim().chars().filter(|c| !c.is_control()).take(MAX_QUERY).collect();
    if query.is_empty() {
        return Plan::default();
    }
    let tenant = tenant_of(store, user);
    let needle = query.to_lowercase();
    let mut found: Vec<Person> = store
        .all(Kind::User, None)
        .into_iter()
        .filter(|u| tenant_field(u) == tenant)
        .filter(|u| {
            ["name", "userJid", "email"].iter().any(|f| u.get(f).is_some_and(|v| v.to_lowercase().contains(&needle)))
        })
        .map(|u| Person {
            name: u.get("name").or(u.get("userJid")).unwrap_or_default().to_string(),
            email: u.get("email").map(str::to_string),
            sip: None,
            phone: None,
            mobile: None,
            organisation: None,
            label: None,
        })
        .collect();
    found.sort_by_key(|p| p.name.to_lowercase());
    found.truncate(MAX_RESULTS);
    let mut locations: Vec<(i64, Location)> = store
        .all(Kind::DirectorySearchLocation, None)
        .into_iter()
        .filter(|l| tenant_field(l).is_none() || tenant_field(l) == tenant)
        .filter_map(|l| {
            let server = Uuid::parse_str(l.get("ldapServer")?).ok().and_then(|s| store.get(Kind::LdapServer, s))?;
            let location = Location {
                server: Server::from_object(&server)?,
                base_dn: l.get("baseDn").unwrap_or("").to_string(),
                filter_format: l.get("filterFormat").unwrap_or("").to_string(),
                label: l.get("label").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
                fields: Fields::of(&l),
            };
            Some((l.get("priority").and_then(|p| p.parse().ok()).unwrap_or(0), location))
        })
        .collect();
    // Higher priorities first; equal ones in a stable order.
    locations.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.label.cmp(&b.1.label)));
    Plan { query, found, locations: locations.into_iter().map(|(_, l)| l).collect() }
}

/// The person a location's entry is: its name from the location's
/// `displayName` attribute, else first and last name, else `cn`.
fn person_of(entry: &Entry, location: &Location) -> Person {
    let f = &location.fields;
    let value = |attr: &Option<String>| attr.as_deref().and_then(|a| entry.first(a)).map(str::to_string);
    let full = [value(&f.first_name), value(&f.last_name)].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let name = value(&f.display_name)
        .or((!full.is_empty()).then_some(full))
        .or_else(|| entry.first("cn").map(str::to_string))
        .unwrap_or_else(|| entry.dn.clone());
    Person {
        name,
        email: value(&f.email),
        sip: value(&f.sip),
        phone: value(&f.phone),
        mobile: value(&f.mobile),
        organisation: value(&f.organisation),
        label: location.label.clone(),
    }
}

/// Asks every location of `plan` at once and returns everyone found: the
/// users first, then each location's in priority order, a person with an
/// email already listed left out, at most [`MAX_RESULTS`]. A directory that
/// fails is logged and skipped.
pub async fn run(plan: Plan) -> Vec<Person> {
    if plan.locations.is_empty() {
        return plan.found;
    }
    let Ok(_permit) = SEARCHES.acquire().await else { return plan.found };
    let mut asking = tokio::task::JoinSet::new();
    for (i, location) in plan.locations.into_iter().enumerate() {
        let filter = filter_for(&location.filter_format, &plan.query);
        asking.spawn(async move {
            let found = directory::lookup(
                &location.server,
                &location.base_dn,
                &filter,
                location.fields.attributes(),
                MAX_RESULTS,
            )
            .await;
            (i, location, found)
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = asking.join_next().await {
        if let Ok(answer) = joined {
            answers.push(answer);
        }
    }
    answers.sort_by_key(|(i, _, _)| *i);
    let mut people = plan.found;
    let mut emails: HashSet<String> =
        people.iter().filter_map(|p| p.email.as_ref().map(|e| e.to_lowercase())).collect();
    for (_, location, found) in answers {
        match found {
            Ok(entries) => {
                for entry in entries {
                    let person = person_of(&entry, &location);
                    if person.email.as_ref().is_some_and(|e| !emails.insert(e.to_lowercase())) {
                        continue;
                    }
                    people.push(person);
                }
            }
            Err(e) => tracing::warn!(
                "people search: directory search location {:?} failed: {e}",
                location.label.as_deref().unwrap_or("")
            ),
        }
    }
    people.truncate(MAX_RESULTS);
    people
}

#[cfg(test)]
mod tests {
    use super::*;
    use confero_store::testing::create;
    use confero_store::SqliteStore;

    #[test]
    fn what_is_typed_cannot_change_the_filter() {
        assert_eq!(filter_for("(cn=$1*)", "ann"), "(cn=ann*)");
        assert_eq!(filter_for("cn=$1*", "ann"), "(cn=ann*)");
        assert_eq!(filter_for("(|(cn=$1*)(mail=$1*))", "a"), "(|(cn=a*)(mail=a*))");
        assert_eq!(filter_for("(cn=$1*)", "*)(uid=*"), "(cn=\\2a\\29\\28uid=\\2a*)");
        assert_eq!(filter_for("", "x\\y"), "(cn=*x\\5cy*)");
        assert!(crate::directory::filter_is_valid(&filter_for("(cn=$1*)", "(*)\\\0")));
    }

    #[test]
    fn a_plan_has_the_tenant_s_users_and_the_locations_that_apply() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let t = create(&store, Kind::Tenant, "name=T");
        let other = create(&store, Kind::Tenant, "name=Other");
        create(&store, Kind::User, &format!("userJid=ann@x.test&name=Ann Lee&email=ann@x.test&tenant={t}"));
        create(&store, Kind::User, &format!("userJid=anna@x.test&name=Anna Other&tenant={other}"));
        create(&store, Kind::User, "userJid=annie@x.test&name=Annie Untenanted");
        let server = create(&store, Kind::LdapServer, "address=127.0.0.1&portNumber=389&secure=false");
        create(&store, Kind::DirectorySearchLocation, &format!("ldapServer={server}&label=Low&priority=1"));
        create(&store, Kind::DirectorySearchLocation, &format!("ldapServer={server}&label=High&priority=9"));
        create(&store, Kind::DirectorySearchLocation, &format!("ldapServer={server}&label=Theirs&tenant={other}"));
        create(&store, Kind::DirectorySearchLocation, &format!("ldapServer={server}&label=Ours&tenant={t}&priority=5"));

        let p = plan(&store, "ann", " ANN ");
        assert_eq!(p.query, "ANN");
        let names: Vec<&str> = p.found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["Ann Lee"], "own tenant only");
        let labels: Vec<_> = p.locations.iter().map(|l| l.label.as_deref().unwrap()).collect();
        assert_eq!(labels, ["High", "Ours", "Low"], "by priority; another tenant's left out");

        let local = plan(&store, "someone-local", "ann");
        assert_eq!(local.found.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["Annie Untenanted"]);
        assert_eq!(local.locations.len(), 2, "untenanted locations only");
        assert!(plan(&store, "ann", "  ").locations.is_empty(), "nothing typed, nothing asked");
    }

    #[test]
    fn an_entry_becomes_a_person_by_the_location_s_fields() {
        let mut entry = Entry { dn: "uid=b,ou=p".into(), ..Entry::default() };
        entry.attrs.insert("givenname".into(), vec!["Bob".into()]);
        entry.attrs.insert("sn".into(), vec!["Stone".into()]);
        entry.attrs.insert("mail".into(), vec!["bob@x.test".into()]);
        entry.attrs.insert("cn".into(), vec!["B. Stone".into()]);
        let location = |fields: Fields| Location {
            server: Server {
                address: "h".into(),
                port: 1,
                secure: false,
                username: String::new(),
                password: String::new(),
                paged: false,
            },
            base_dn: String::new(),
            filter_format: String::new(),
            label: Some("Corp".into()),
            fields,
        };
        let mapped = Fields {
            first_name: Some("givenName".into()),
            last_name: Some("sn".into()),
            email: Some("mail".into()),
            ..Fields::default()
        };
        let p = person_of(&entry, &location(mapped));
        assert_eq!(
            (p.name.as_str(), p.email.as_deref(), p.label.as_deref()),
            ("Bob Stone", Some("bob@x.test"), Some("Corp"))
        );
        let p = person_of(&entry, &location(Fields::default()));
        assert_eq!((p.name.as_str(), p.email), ("B. Stone", None), "cn when nothing names the name");
    }
}
