//! Call detail records: XML `<records>` POSTed to every configured receiver
//! (`system/cdrReceivers`). Each receiver has its own queue, so one receiver
//! being down neither blocks nor loses records for the others; while a
//! receiver fails, its records are kept (up to [`BUFFER_LIMIT`]) and retried
//! with backoff, and the `cdrConnectionFailure` alarm is raised for it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::alarms::Alarms;
use crate::xml::escape_into;
use confero_store::schema::Kind;
use confero_store::Store;

/// Records kept per receiver while it is unreachable.
pub const BUFFER_LIMIT: usize = 100_000;
/// Records sent in one POST.
const BATCH: usize = 100;
const ALARM: &str = "cdrConnectionFailure";

/// One record, already rendered.
#[derive(Debug)]
struct Record {
    xml: String,
}

/// Takes records from the call bridge and delivers them.
pub struct CdrSender {
    session: Uuid,
    call_bridge: Uuid,
    next_index: AtomicU64,
    queues: Mutex<HashMap<Uuid, VecDeque<Arc<Record>>>>,
    wake: Notify,
    store: Arc<dyn Store>,
    alarms: Arc<Alarms>,
    http: reqwest::Client,
}

/// RFC 3339 UTC time with seconds, as CMS writes it (`2016-07-26T14:12:29Z`).
pub fn cms_time(t: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_default()
}

impl CdrSender {
    /// A sender for this bridge (`call_bridge` is its id in CDRs).
    pub fn new(store: Arc<dyn Store>, alarms: Arc<Alarms>, call_bridge: Uuid) -> Arc<CdrSender> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Arc::new(CdrSender {
            session: Uuid::new_v4(),
            call_bridge,
            next_index: AtomicU64::new(1),
            queues: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            store,
            alarms,
            http,
        })
    }

    /// The index the next record will carry (`cdrCorrelatorIndex` in status).
    pub fn next_index(&self) -> u64 {
        self.next_index.load(Ordering::Relaxed)
    }

    /// Queues a record of `record_type` whose content is `inner` (for
    /// example `<call id="...">...</call>`) for every configured receiver.
    pub fn emit(&self, record_type: &str, inner: &str) {
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        let mut xml = String::with_capacity(inner.len() + 128);
        xml.push_str("<record type=\"");
        escape_into(&mut xml, record_type);
        xml.push_str(&format!(
            "\" time=\"{}\" recordIndex=\"{index}\" correlatorIndex=\"{index}\">",
            cms_time(std::time::SystemTime::now())
        ));
        xml.push_str(inner);
        xml.push_str("</record>");
        let record = Arc::new(Record { xml });
        let receivers = self.store.all(Kind::CdrReceiver, None);
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        for r in receivers.iter().filter(|r| r.get("uri").is_some()) {
            let q = queues.entry(r.id).or_default();
            if q.len() >= BUFFER_LIMIT {
                q.pop_front();
                tracing::warn!(receiver = %r.id, "CDR buffer full: oldest record dropped");
            }
            q.push_back(record.clone());
        }
        drop(queues);
        self.wake.notify_one();
    }

    /// Waits until every queued record has been delivered, at most `limit`
    /// (a shutdown's last records). `false`: some are still queued.
    pub async fn flush(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let empty = self.queues.lock().unwrap_or_else(|p| p.into_inner()).values().all(VecDeque::is_empty);
            if empty {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Delivers queued records until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut backoff: HashMap<Uuid, (Duration, tokio::time::Instant)> = HashMap::new();
        loop {
            let receivers = self.store.all(Kind::CdrReceiver, None);
            let mut next_wake = Duration::from_secs(5);
            for r in &receivers {
                let Some(uri) = r.get("uri") else { continue };
                if let Some((_, until)) = backoff.get(&r.id) {
                    if tokio::time::Instant::now() < *until {
                        next_wake = next_wake.min(*until - tokio::time::Instant::now());
                        continue;
                    }
                }
                let batch: Vec<Arc<Record>> = {
                    let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                    queues.get(&r.id).map(|q| q.iter().take(BATCH).cloned().collect()).unwrap_or_default()
                };
                if batch.is_empty() {
                    continue;
                }
                match self.post(uri, &batch).await {
                    Ok(()) => {
                        backoff.remove(&r.id);
                        self.alarms.clear(ALARM, uri);
                        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(q) = queues.get_mut(&r.id) {
                            for _ in 0..batch.len() {
                                q.pop_front();
                            }
                        }
                        next_wake = Duration::ZERO;
                    }
                    Err(reason) => {
                        tracing::warn!(receiver = uri, reason, "CDR delivery failed; will retry");
                        self.alarms.raise(ALARM, uri, Some(reason));
                        let delay = backoff.get(&r.id).map(|(d, _)| (*d * 2).min(Duration::from_secs(30)));
                        let delay = delay.unwrap_or(Duration::from_millis(500));
                        backoff.insert(r.id, (delay, tokio::time::Instant::now() + delay));
                        next_wake = next_wake.min(delay);
                    }
                }
            }
            // Receivers removed from the configuration take their queues with them.
            {
                let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                queues.retain(|id, _| receivers.iter().any(|r| r.id == *id));
            }
            if next_wake > Duration::ZERO {
                let _ = tokio::time::timeout(next_wake, self.wake.notified()).await;
            }
        }
    }

    async fn post(&self, uri: &str, batch: &[Arc<Record>]) -> Result<(), &'static str> {
        let mut body = format!(
            "<?xml version=\"1.0\"?><records session=\"{}\" callBridge=\"{}\">",
            self.session, self.call_bridge
        );
        for r in batch {
            body.push_str(&r.xml);
        }
        body.push_str("</records>");
        let resp = self.http.post(uri).header("content-type", "text/xml").body(body).send().await.map_err(|e| {
            if e.is_connect() {
                "connectFailure"
            } else {
                "error"
            }
        })?;
        if resp.status().is_success() {
            Ok(())
        } else if resp.status().is_server_error() {
            Err("serviceUnavailable")
        } else {
            Err("error")
        }
    }
}
