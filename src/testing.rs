//! Test helpers shared by the library's unit tests: a store in a temporary
//! directory and objects made from form bodies, as the API would make them.

use confero_store::form::Form;
use confero_store::schema::{spec, validate_changes, Kind};
use std::sync::Arc;

use confero_store::{singleton_id, Object, SqliteStore, Store};

/// The form body of `fields`, every value percent-encoded.
fn form(fields: &[(&str, &str)]) -> Form {
    let escape = |v: &str| v.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", escape(v))).collect();
    Form::parse(body.join("&").as_bytes()).expect("a form body")
}

/// Creates an object as `POST` would.
pub fn create(store: &dyn Store, kind: Kind, parent: Option<uuid::Uuid>, fields: &[(&str, &str)]) -> Object {
    let changes = validate_changes(spec(kind).fields, &form(fields), true).expect("valid fields");
    store.create(kind, parent, &changes).expect("created")
}

/// Changes a singleton (`system/profiles`, ...) as `PUT` would.
pub fn set(store: &dyn Store, kind: Kind, fields: &[(&str, &str)]) -> Object {
    let changes = validate_changes(spec(kind).fields, &form(fields), false).expect("valid fields");
    store.update(kind, singleton_id(kind), &changes).expect("updated")
}

/// A leg's live settings as `PUT /callLegs/<id>` would take them.
pub fn leg_changes(fields: &[(&str, &str)]) -> Vec<confero_store::schema::Change> {
    validate_changes(confero_api::LEG_FIELDS, &form(fields), false).expect("valid leg fields")
}

/// An empty store in a temporary directory (kept while the guard lives).
pub fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("the store opens"));
    (dir, store)
}
