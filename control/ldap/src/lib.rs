//! LDAP users, as CMS imports them.
//!
//! - [`template`]: the `$attribute$` mapping templates of `ldapMappings`
//!   (pure, fuzzed);
//! - [`directory`]: the LDAP conversations over ldap3 (the only I/O here);
//! - [`sync`]: an `ldapSyncs` run, turning a source's entries into `users`,
//!   their personal spaces and template assignments;
//! - [`people`]: the web app's people search, over the deployment's users
//!   and the `directorySearchLocations`;
//! - [`signin`]: the web app's sign-in of imported users by a bind to the
//!   directory, behind `confero-https`'s `Authenticator`.
//!
//! The API stores the objects and starts syncs; this crate knows no HTTP.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod directory;
pub mod people;
pub mod signin;
pub mod sync;
pub mod template;

pub use template::{Template, TemplateError};
