//! `scheduler timedLogging (webBridge|api|email) <seconds>`, as CMS's MMP
//! has it: detailed log lines about one part of the scheduler for a while
//! — each C2W request from a web bridge and its answer, each request to
//! the call bridge's API and its status, each SMTP attempt and its outcome.
//! The command runs in another process and stores when the logging ends;
//! the running scheduler reads that at most every two seconds, so it takes
//! effect at once, without a restart.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The parts whose logging can be turned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// C2W links to web bridges.
    WebBridge,
    /// The call bridge's API.
    Api,
    /// Mail to the SMTP server.
    Email,
}

impl Part {
    /// The MMP word.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::WebBridge => "webBridge",
            Part::Api => "api",
            Part::Email => "email",
        }
    }
}

/// How often the stored end times are read again.
const REREAD: Duration = Duration::from_secs(2);

/// Reads the stored end times: part → Unix seconds.
pub type Loader = Box<dyn Fn() -> BTreeMap<String, u64> + Send + Sync>;

/// Whether a part's detailed logging is on now.
pub struct TimedLogging {
    load: Loader,
    cached: Mutex<Option<(Instant, BTreeMap<String, u64>)>>,
}

impl TimedLogging {
    /// End times read by `load`.
    pub fn new(load: Loader) -> TimedLogging {
        TimedLogging { load, cached: Mutex::new(None) }
    }

    /// Never on (tools, tests).
    pub fn off() -> TimedLogging {
        TimedLogging::new(Box::new(BTreeMap::new))
    }

    /// Whether `part`'s detailed lines are logged now.
    pub fn on(&self, part: Part) -> bool {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = cached.as_ref().is_some_and(|(at, _)| at.elapsed() < REREAD);
        if !fresh {
            *cached = Some((Instant::now(), (self.load)()));
        }
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        cached.as_ref().and_then(|(_, ends)| ends.get(part.as_str())).is_some_and(|&until| until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_on_until_its_end_time() {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let t = TimedLogging::new(Box::new(move || {
            BTreeMap::from([("api".to_string(), now + 60), ("email".to_string(), now - 1)])
        }));
        assert!(t.on(Part::Api));
        assert!(!t.on(Part::Email), "ended");
        assert!(!t.on(Part::WebBridge), "never set");
        assert!(!TimedLogging::off().on(Part::Api));
    }
}
