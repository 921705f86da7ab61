//! Scheduling from the web app: "My scheduled meetings" and the "Schedule
//! meeting" wizard. The web app knows no meetings; it hands a signed-in
//! user's requests to a [`Scheduling`], which decides what the user may see
//! and do: the scheduler in this process when one runs beside the web
//! bridge (`confero run` with the scheduler enabled), else [`C2wScheduling`],
//! the schedulers linked over C2W (a scheduler keeps a link to every web
//! bridge the call bridge's API lists, as in CMS). With neither, the web app
//! offers no scheduling.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::c2w::frame::Message;
use crate::c2w::server::{C2wError, C2wServer};

/// A boxed answer: an HTTP status and a JSON body.
pub type Answer = Pin<Box<dyn Future<Output = (u16, Value)> + Send>>;

/// What the web app asks of a scheduler, always on behalf of `user`
/// (a signed-in web user): the scheduler's own checks apply.
pub trait Scheduling: Send + Sync {
    /// Whether a scheduler can be asked now (the web app shows scheduling
    /// only then).
    fn available(&self) -> bool {
        true
    }

    /// What the wizard offers `user`: `{"templates": [{"id", "name",
    /// "roles": [{"id", "name"}]}], "spaces": [{"id", "name"}]}`.
    fn options(&self, user: String) -> Answer;

    /// `user`'s meetings API: `method` on `/api/v1/meetings` + `rest` (empty,
    /// or `/<id>`), with `query` and a JSON `body` — the scheduler's API as a
    /// web user sees it (their own meetings only).
    fn meetings(&self, user: String, method: String, rest: String, query: String, body: Option<Value>) -> Answer;
}

/// Scheduling by the schedulers linked to this web bridge over C2W: each
/// request goes to the longest-linked one (schedulers of one deployment
/// share their meetings through the call bridges' store).
pub struct C2wScheduling {
    c2w: Arc<C2wServer>,
}

impl C2wScheduling {
    /// Scheduling through `c2w`'s scheduler links.
    pub fn new(c2w: Arc<C2wServer>) -> C2wScheduling {
        C2wScheduling { c2w }
    }

    fn ask(&self, request: Message) -> Answer {
        let c2w = self.c2w.clone();
        Box::pin(async move {
            let Some((link, _)) = c2w.schedulers().into_iter().next() else {
                return unavailable("noScheduler", "No scheduler is linked to this web bridge.");
            };
            match c2w.request(link, request).await {
                Ok(Message::ScheduleAnswer { status, body }) => (status, body),
                Ok(_) => (502, json!({"error": "badGateway", "message": "The scheduler's answer was not understood."})),
                Err(C2wError::Timeout) => {
                    (504, json!({"error": "schedulerTimeout", "message": "The scheduler did not answer in time."}))
                }
                Err(C2wError::NoCallBridge) => unavailable("noScheduler", "The scheduler's link closed."),
                Err(C2wError::Refused(kind)) => {
                    (502, json!({"error": "schedulerRefused", "message": format!("The scheduler refused: {kind:?}.")}))
                }
                Err(C2wError::Unexpected) => {
                    (502, json!({"error": "badGateway", "message": "The scheduler's answer was not understood."}))
                }
            }
        })
    }
}

fn unavailable(code: &str, message: &str) -> (u16, Value) {
    (503, json!({"error": code, "message": message}))
}

impl Scheduling for C2wScheduling {
    fn available(&self) -> bool {
        !self.c2w.schedulers().is_empty()
    }

    fn options(&self, user: String) -> Answer {
        self.ask(Message::ScheduleOptions { user })
    }

    fn meetings(&self, user: String, method: String, rest: String, query: String, body: Option<Value>) -> Answer {
        self.ask(Message::ScheduleMeetings { user, method, rest, query, body })
    }
}
