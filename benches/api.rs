//! API benchmarks, in process (no TLS or HTTP framing: `Api::execute` is
//! everything after authentication): a list page and one object out of
//! 10,000 spaces, and a 10,000-space bulk re-sync to completion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confero_api::alarms::Alarms;
use confero_api::bridge::{
    BridgeCounters, BridgeError, BridgeHandle, LiveCall, LiveCallLeg, LiveParticipant, NewCall, WebJoin, WebJoinError,
    WebJoined, WebMeeting,
};
use confero_api::cdr::CdrSender;
use confero_api::{Api, Method};
use confero_store::schema::Change;
use confero_store::{SqliteStore, Store};
use criterion::{criterion_group, criterion_main, Criterion};
use uuid::Uuid;

/// No live calls: these benches measure the store and the API layer only.
struct Idle;

impl BridgeHandle for Idle {
    fn create_call(&self, _: NewCall) -> Result<LiveCall, BridgeError> {
        Err(BridgeError::Overloaded)
    }
    fn update_call(&self, _: Uuid, _: &[Change]) -> Result<(), BridgeError> {
        Err(BridgeError::CallDoesNotExist)
    }
    fn end_call(&self, _: Uuid) -> Result<(), BridgeError> {
        Err(BridgeError::CallDoesNotExist)
    }
    fn calls(&self) -> Vec<LiveCall> {
        Vec::new()
    }
    fn dial(&self, _: Uuid, _: &str, _: &[Change]) -> Result<LiveCallLeg, BridgeError> {
        Err(BridgeError::CallDoesNotExist)
    }
    fn update_call_leg(&self, _: Uuid, _: &[Change]) -> Result<(), BridgeError> {
        Err(BridgeError::CallLegDoesNotExist)
    }
    fn end_call_leg(&self, _: Uuid) -> Result<(), BridgeError> {
        Err(BridgeError::CallLegDoesNotExist)
    }
    fn generate_keyframe(&self, _: Uuid) -> Result<(), BridgeError> {
        Err(BridgeError::CallLegDoesNotExist)
    }
    fn camera_control(&self, _: Uuid, _: &[confero_api::bridge::CameraMove]) -> Result<(), BridgeError> {
        Err(BridgeError::CallLegDoesNotExist)
    }
    fn call_leg_profile_trace(&self, _: Uuid) -> Result<Vec<confero_api::bridge::ProfileLayer>, BridgeError> {
        Err(BridgeError::CallLegDoesNotExist)
    }
    fn call_legs(&self) -> Vec<LiveCallLeg> {
        Vec::new()
    }
    fn participants(&self) -> Vec<LiveParticipant> {
        Vec::new()
    }
    fn counters(&self) -> BridgeCounters {
        BridgeCounters::default()
    }
    fn web_meeting(&self, _: &str, _: Option<&str>) -> Result<WebMeeting, WebJoinError> {
        Err(WebJoinError::MeetingNotFound)
    }
    fn join_web(&self, _: WebJoin) -> Result<WebJoined, WebJoinError> {
        Err(WebJoinError::MeetingNotFound)
    }
}

fn id_of(location: &str) -> String {
    location.rsplit('/').next().unwrap_or_default().to_string()
}

fn api_with_placeholders(dir: &std::path::Path) -> (Arc<Api>, String) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).expect("store"));
    let alarms = Arc::new(Alarms::default());
    let cdr = CdrSender::new(store.clone(), alarms.clone(), Uuid::new_v4());
    let api = Api::new(store, Arc::new(Idle), alarms, cdr, Uuid::new_v4());
    let set = api
        .execute(
            &Method::POST,
            "/api/v1/cospaceBulkParameterSets",
            "",
            b"startIndex=1&endIndex=10000&coSpaceUriMapping=$index$&coSpaceNameMapping=TMS_Scheduled_Meeting_$index$&coSpaceCallIdMapping=$index$",
        )
        .expect("set");
    let set = id_of(set.location.as_deref().unwrap_or_default());
    sync_to_completion(&api, &set);
    (api, set)
}

fn sync_to_completion(api: &Api, set: &str) {
    let sync = api
        .execute(&Method::POST, "/api/v1/cospaceBulkSyncs", "", format!("cospaceBulkParameterSet={set}").as_bytes())
        .expect("sync");
    let path = sync.location.unwrap_or_default();
    loop {
        let body = api.execute(&Method::GET, &path, "", b"").expect("status").body;
        if body.contains("<status>complete</status>") {
            return;
        }
        assert!(!body.contains("<status>failed"), "{body}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api, set) = api_with_placeholders(dir.path());
    let page = api.execute(&Method::GET, "/api/v1/coSpaces", "offset=5000&limit=1", b"").expect("page").body;
    let one = page.split("id=\"").nth(1).map(|s| s[..36].to_string()).unwrap_or_default();

    let mut g = c.benchmark_group("api_10k_spaces");
    g.bench_function("get_list_page", |b| {
        b.iter(|| api.execute(&Method::GET, "/api/v1/coSpaces", "offset=5000&limit=10", b"").expect("list"))
    });
    g.bench_function("get_list_filtered", |b| {
        b.iter(|| api.execute(&Method::GET, "/api/v1/coSpaces", "filter=Meeting_999", b"").expect("filter"))
    });
    g.bench_function("get_one_space", |b| {
        let path = format!("/api/v1/coSpaces/{one}");
        b.iter(|| api.execute(&Method::GET, &path, "", b"").expect("one"))
    });
    g.finish();

    let mut g = c.benchmark_group("bulk");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("resync_10000_spaces", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                sync_to_completion(&api, &set);
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(api_benches, benches);
criterion_main!(api_benches);
