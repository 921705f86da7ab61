//! Active alarms, as `system/alarms` lists them. Parts of the bridge raise
//! and clear them (the CDR sender raises `cdrConnectionFailure`).

use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

/// One active alarm.
#[derive(Debug, Clone)]
pub struct Alarm {
    /// Stable while the alarm stays raised.
    pub id: Uuid,
    /// The CMS alarm type, e.g. `cdrConnectionFailure`.
    pub kind: &'static str,
    /// What it concerns (a receiver's URI), so one alarm per subject.
    pub subject: String,
    /// The CMS failure reason, e.g. `connectFailure`.
    pub failure_reason: Option<&'static str>,
    /// When it was raised.
    pub since: Instant,
}

/// The set of active alarms.
#[derive(Debug, Default)]
pub struct Alarms {
    active: Mutex<Vec<Alarm>>,
}

impl Alarms {
    /// Raises `kind` for `subject` (no-op if already raised; the reason is updated).
    pub fn raise(&self, kind: &'static str, subject: &str, failure_reason: Option<&'static str>) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = active.iter_mut().find(|a| a.kind == kind && a.subject == subject) {
            a.failure_reason = failure_reason;
            return;
        }
        active.push(Alarm {
            id: Uuid::new_v4(),
            kind,
            subject: subject.to_string(),
            failure_reason,
            since: Instant::now(),
        });
    }

    /// Clears `kind` for `subject`.
    pub fn clear(&self, kind: &'static str, subject: &str) {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).retain(|a| !(a.kind == kind && a.subject == subject));
    }

    /// The active alarms, oldest first.
    pub fn list(&self) -> Vec<Alarm> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
