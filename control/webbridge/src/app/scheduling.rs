//! Scheduling from the web app: "My scheduled meetings" and the "Schedule
//! meeting" wizard. The web app knows no meetings; it hands a signed-in
//! user's requests to a [`Scheduling`] (the scheduler running beside the
//! call bridge in `confero run`), which decides what the user may see and do.
//! A web bridge without one (`confero webbridge run`) offers no scheduling.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

/// A boxed answer: an HTTP status and a JSON body.
pub type Answer = Pin<Box<dyn Future<Output = (u16, Value)> + Send>>;

/// What the web app asks of a scheduler, always on behalf of `user`
/// (a signed-in web user): the scheduler's own checks apply.
pub trait Scheduling: Send + Sync {
    /// What the wizard offers `user`: `{"templates": [{"id", "name",
    /// "roles": [{"id", "name"}]}], "spaces": [{"id", "name"}]}`.
    fn options(&self, user: String) -> Answer;

    /// `user`'s meetings API: `method` on `/api/v1/meetings` + `rest` (empty,
    /// or `/<id>`), with `query` and a JSON `body` — the scheduler's API as a
    /// web user sees it (their own meetings only).
    fn meetings(&self, user: String, method: String, rest: String, query: String, body: Option<Value>) -> Answer;
}
