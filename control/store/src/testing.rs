//! Objects made from form bodies, as the API makes them, for the unit tests
//! of this crate and of the crates above it (feature `testing`, enabled only
//! in their dev-dependencies). Panics on a body that does not validate: a
//! test's own input is wrong then.

use uuid::Uuid;

use crate::form::Form;
use crate::schema::{spec, validate_changes, Change, Kind};
use crate::{singleton_id, Store};

/// The checked changes of `body` for `kind`, as a POST (`creating`) or a PUT
/// takes them.
pub fn changes(kind: Kind, body: &str, creating: bool) -> Vec<Change> {
    let form = Form::parse(body.as_bytes()).expect("a test form body");
    validate_changes(spec(kind).fields, &form, creating).expect("valid test changes")
}

/// Creates a top-level object as `POST` would; its id.
pub fn create(store: &dyn Store, kind: Kind, body: &str) -> Uuid {
    store.create(kind, None, &changes(kind, body, true)).expect("created").id
}

/// Changes a singleton (`system/profiles`, ...) as `PUT` would.
pub fn set(store: &dyn Store, kind: Kind, body: &str) {
    store.update(kind, singleton_id(kind), &changes(kind, body, false)).expect("updated");
}
