//! The LDAP conversations, and nothing else: one connection per task, bound
//! with the server's credentials, a subtree search (paged unless the server
//! says not to), and the bind that checks a signing-in user's password. The
//! thin async shell around ldap3; what entries mean is [`crate::sync`]'s.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

use confero_store::Object;

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one operation (a bind, a search page) may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Entries per page of a paged search.
const PAGE_SIZE: i32 = 500;
/// Most entries one source may import: a bound on memory, far above a CMS
/// deployment's user count.
pub const MAX_ENTRIES: usize = 200_000;
/// LDAP result code 49: wrong DN or password.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code 32: the entry is not there.
const NO_SUCH_OBJECT: u32 = 32;

/// Where and how to reach a directory (an `ldapServers` object).
#[derive(Clone)]
pub struct Server {
    /// Host name or address.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// LDAPS (TLS from the first byte) rather than plain LDAP.
    pub secure: bool,
    /// The DN (or UPN) the sync binds as; anonymous when empty.
    pub username: String,
    /// Its password; never logged.
    pub password: String,
    /// Use the paged results control (RFC 2696); CMS's default.
    pub paged: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("secure", &self.secure)
            .field("username", &self.username)
            .field("password", &"*****")
            .finish()
    }
}

impl Server {
    /// The server an `ldapServers` object describes, if it is whole.
    pub fn from_object(object: &Object) -> Option<Server> {
        Some(Server {
            address: object.get("address")?.to_string(),
            port: object.get("portNumber")?.parse().ok()?,
            secure: object.get("secure") == Some("true"),
            username: object.get("username").unwrap_or("").to_string(),
            password: object.get("password").unwrap_or("").to_string(),
            paged: object.get("usePagedResults") != Some("false"),
        })
    }

    fn url(&self) -> String {
        let host = if self.address.contains(':') { format!("[{}]", self.address) } else { self.address.clone() };
        format!("{}://{host}:{}", if self.secure { "ldaps" } else { "ldap" }, self.port)
    }
}

/// One directory entry: its DN and its attributes, names lower-cased
/// (attribute names are case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The distinguished name.
    pub dn: String,
    /// Text values by lower-cased attribute name.
    pub attrs: HashMap<String, Vec<String>>,
    /// A stable identity that survives a rename, when the directory has one
    /// (`entryUUID`, `nsUniqueId`, `objectGUID` in hex).
    pub unique_id: Option<String>,
}

impl Entry {
    /// The first value of attribute `name` (any case).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.attrs.get(&name.to_ascii_lowercase()).and_then(|v| v.first()).map(String::as_str)
    }

    fn from_search(entry: SearchEntry) -> Entry {
        let attrs: HashMap<String, Vec<String>> =
            entry.attrs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        let mut unique_id = ["entryuuid", "nsuniqueid"]
            .iter()
            .find_map(|a| attrs.get(*a).and_then(|v| v.first()).map(|v| v.to_ascii_lowercase()));
        if unique_id.is_none() {
            unique_id = entry
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("objectGUID"))
                .and_then(|(_, v)| v.first())
                .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect());
        }
        Entry { dn: entry.dn, attrs, unique_id }
    }
}

/// Why talking to the directory failed; every case is CMS's `ldapError`.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Connecting, TLS, or the connection dropping.
    #[error("connection to {0} failed: {1}")]
    Connect(String, String),
    /// The sync's own bind was refused (wrong username or password).
    #[error("bind as {0:?} refused: {1}")]
    Bind(String, String),
    /// The search failed (bad base DN, filter, size limit, ...).
    #[error("search failed: {0}")]
    Search(String),
    /// More than [`MAX_ENTRIES`] entries.
    #[error("more than {MAX_ENTRIES} entries")]
    TooMany,
}

/// The certificates an LDAPS server's must chain to, when configured
/// (`CONFERO_LDAP_TRUST`): a directory's certificate usually comes from an
/// enterprise CA, which no public root list has.
static TRUST: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();

/// Sets the trust bundle for LDAPS, once per process, before any sync or
/// sign-in; false if one was set already. Without one, the web PKI's roots.
pub fn set_trust(certs: Vec<CertificateDer<'static>>) -> bool {
    TRUST.set(certs).is_ok()
}

/// The TLS configuration for LDAPS: the process's default provider (ring)
/// and the configured bundle, else the web PKI roots; the certificate must
/// name the server's `address`.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let roots = match TRUST.get() {
        Some(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            let (_, refused) = roots.add_parsable_certificates(certs.iter().cloned());
            if refused > 0 {
                tracing::warn!("LDAP: {refused} certificates of the trust bundle are not usable");
            }
            roots
        }
        None => rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(Arc::new(config))
}

/// A bound connection.
async fn connect(server: &Server) -> Result<ldap3::Ldap, DirectoryError> {
    let mut settings = LdapConnSettings::new().set_conn_timeout(CONNECT_TIMEOUT);
    if server.secure {
        if let Some(config) = tls_config() {
            settings = settings.set_config(config);
        }
    }
    let url = server.url();
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &url)
        .await
        .map_err(|e| DirectoryError::Connect(url.clone(), e.to_string()))?;
    ldap3::drive!(conn);
    Ok(ldap)
}

/// Binds `ldap` as the server's configured account.
async fn bind_service(ldap: &mut ldap3::Ldap, server: &Server) -> Result<(), DirectoryError> {
    ldap.with_timeout(OPERATION_TIMEOUT)
        .simple_bind(&server.username, &server.password)
        .await
        .and_then(|r| r.success())
        .map(|_| ())
        .map_err(|e| DirectoryError::Bind(server.username.clone(), e.to_string()))
}

/// The attributes asked for: every user attribute, and the operational ones
/// that identify an entry across renames.
const ATTRIBUTES: &[&str] = &["*", "entryUUID", "nsUniqueId", "objectGUID"];

/// Every entry under `base_dn` (subtree) that `filter` selects.
pub async fn search(server: &Server, base_dn: &str, filter: &str) -> Result<Vec<Entry>, DirectoryError> {
    let mut ldap = connect(server).await?;
    let result = search_bound(&mut ldap, server, base_dn, filter).await;
    let _ = ldap.unbind().await;
    result
}

async fn search_bound(
    ldap: &mut ldap3::Ldap,
    server: &Server,
    base_dn: &str,
    filter: &str,
) -> Result<Vec<Entry>, DirectoryError> {
    bind_service(ldap, server).await?;
    let filter = if filter.trim().is_empty() { "(objectClass=*)" } else { filter.trim() };
    let mut adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> = vec![Box::new(EntriesOnly::new())];
    if server.paged {
        adapters.push(Box::new(PagedResults::new(PAGE_SIZE)));
    }
    let mut stream = ldap
        .with_timeout(OPERATION_TIMEOUT)
        .streaming_search_with(adapters, base_dn, Scope::Subtree, filter, ATTRIBUTES.to_vec())
        .await
        .map_err(|e| DirectoryError::Search(e.to_string()))?;
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await.map_err(|e| DirectoryError::Search(e.to_string()))? {
        if entries.len() >= MAX_ENTRIES {
            let _ = stream.finish().await;
            return Err(DirectoryError::TooMany);
        }
        entries.push(Entry::from_search(SearchEntry::construct(entry)));
    }
    stream.finish().await.success().map_err(|e| DirectoryError::Search(e.to_string()))?;
    Ok(entries)
}

/// LDAP result code 4: the size limit cut the results short (what a
/// people search asks for).
const SIZE_LIMIT_EXCEEDED: u32 = 4;
/// How long a people search may take, all of it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(8);

/// At most `limit` entries under `base_dn` that `filter` selects, with the
/// attributes `attributes`, as someone waiting for an answer needs them:
/// one unpaged search with a size and time limit, all within 8 s; more
/// entries than `limit` are not an error.
pub async fn lookup(
    server: &Server,
    base_dn: &str,
    filter: &str,
    attributes: Vec<String>,
    limit: usize,
) -> Result<Vec<Entry>, DirectoryError> {
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    let searching = async {
        let mut ldap = connect(server).await?;
        let result = async {
            bind_service(&mut ldap, server).await?;
            let options = ldap3::SearchOptions::new().sizelimit(limit).timelimit(LOOKUP_TIMEOUT.as_secs() as i32);
            let ldap3::SearchResult(found, done) = ldap
                .with_timeout(LOOKUP_TIMEOUT)
                .with_search_options(options)
                .search(base_dn, Scope::Subtree, filter, attributes)
                .await
                .map_err(|e| DirectoryError::Search(e.to_string()))?;
            if done.rc != 0 && done.rc != SIZE_LIMIT_EXCEEDED {
                return Err(DirectoryError::Search(format!("result code {}: {}", done.rc, done.text)));
            }
            Ok(found.into_iter().take(limit as usize).map(|e| Entry::from_search(SearchEntry::construct(e))).collect())
        }
        .await;
        let _ = ldap.unbind().await;
        result
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, searching)
        .await
        .map_err(|_| DirectoryError::Connect(server.url(), "timed out".into()))?
}

/// Whether `password` is `dn`'s: the entry is looked up with the server's
/// credentials (it must still be there and still match `filter`, so a user
/// removed from the directory or the source stops signing in at once), then
/// bound as with `password`. A wrong password is `Ok(false)`; a directory
/// that cannot be reached is an error.
pub async fn check_password(server: &Server, dn: &str, filter: &str, password: &str) -> Result<bool, DirectoryError> {
    // An empty password is an unauthenticated bind, which succeeds without
    // proving anything (RFC 4513 5.1.2).
    if password.is_empty() {
        return Ok(false);
    }
    let mut ldap = connect(server).await?;
    let result = async {
        bind_service(&mut ldap, server).await?;
        let filter = if filter.trim().is_empty() { "(objectClass=*)" } else { filter.trim() };
        let ldap3::SearchResult(found, searched) = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .search(dn, Scope::Base, filter, vec!["1.1"])
            .await
            .map_err(|e| DirectoryError::Search(e.to_string()))?;
        if searched.rc != 0 && searched.rc != NO_SUCH_OBJECT {
            return Err(DirectoryError::Search(format!("result code {}", searched.rc)));
        }
        // The bind happens whether or not the entry was found (a made-up DN
        // is refused like a wrong password), so the round trips are the same.
        let entry_dn = found.into_iter().next().map(|e| SearchEntry::construct(e).dn);
        let bound = ldap
            .with_timeout(OPERATION_TIMEOUT)
            .simple_bind(entry_dn.as_deref().unwrap_or(dn), password)
            .await
            .map_err(|e| DirectoryError::Connect(server.url(), e.to_string()))?;
        match bound.rc {
            0 => Ok(entry_dn.is_some()),
            INVALID_CREDENTIALS => Ok(false),
            rc => Err(DirectoryError::Bind(dn.to_string(), format!("result code {rc}"))),
        }
    }
    .await;
    let _ = ldap.unbind().await;
    result
}

/// Whether `filter` is an LDAP search filter (RFC 4515) the sync can send;
/// the empty filter means every entry.
pub fn filter_is_valid(filter: &str) -> bool {
    let filter = filter.trim();
    filter.is_empty() || (filter.len() <= 4096 && ldap3::parse_filter(filter).is_ok())
}
