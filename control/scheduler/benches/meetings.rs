//! The meetings list with 10,000 meetings in the store (a third of them
//! recurring: daily, weekly on two days, monthly; ending by count, by date
//! or never; in six zones): one month's `GET /api/v1/meetings` as the
//! handler answers it (expansion, ordering, JSON), and the expansion of a
//! year of occurrences for every meeting. Goal: the month under 50 ms.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use confero_scheduler::callbridge::CallBridge;
use confero_scheduler::clock::SystemClock;
use confero_scheduler::mail::MailQueue;
use confero_scheduler::meeting::Meeting;
use confero_scheduler::service::{Caller, Scheduler, MEETINGS};
use confero_store::{RecordWrite, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use uuid::Uuid;

const ZONES: [&str; 6] =
    ["Europe/Madrid", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney", "Europe/London"];

fn body(i: usize) -> serde_json::Value {
    let day = i % 365;
    let date = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap() + chrono::Duration::days(day as i64);
    let hour = 8 + i % 10;
    let mut b = json!({
        "name": format!("Meeting {i}"),
        "coSpace": Uuid::from_u128(i as u128 + 1).to_string(),
        "start": format!("{date}T{hour:02}:00"),
        "end": format!("{date}T{hour:02}:45"),
        "timeZone": ZONES[i % ZONES.len()],
        "attendees": [{"email": format!("a{i}@example.test"), "accessMethodTemplate": Uuid::from_u128(7).to_string()}],
    });
    if i.is_multiple_of(3) {
        b["recurrence"] = match (i / 3) % 6 {
            0 => json!({"frequency": "daily", "count": 20}),
            1 => json!({"frequency": "weekly", "days": ["MO", "TH"], "until": "2028-06-30"}),
            2 => json!({"frequency": "weekly", "interval": 2, "days": ["WE"]}),
            3 => json!({"frequency": "monthly", "count": 12}),
            4 => json!({"frequency": "daily", "interval": 3}),
            _ => json!({"frequency": "yearly", "count": 3}),
        };
    }
    b
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let meetings: Vec<Meeting> =
        (0..10_000).map(|i| Meeting::from_json(&body(i), Uuid::new_v4(), "api", false).unwrap()).collect();
    let writes: Vec<RecordWrite> = meetings
        .iter()
        .map(|m| RecordWrite { collection: MEETINGS, id: m.id, body: Some(m.to_json(true).to_string()) })
        .collect();
    store.write_records(&writes).unwrap();
    let clock = Arc::new(SystemClock::default());
    let mail = MailQueue::new(store.clone(), None, clock.clone());
    // Never called: the list makes no spaces.
    let bridge = CallBridge::new("127.0.0.1:9".parse().unwrap(), vec![0u8].into(), "x", "x");
    let scheduler = Scheduler::new(store, bridge, mail, clock, None).unwrap();
    let caller = Caller { name: "admin".into(), web_user: false };
    let query = "fromTime=2027-06-01T00:00:00Z&untilTime=2027-07-01T00:00:00Z&maxMeetings=1000";
    let month = confero_scheduler::http::list(&scheduler, &caller, query).unwrap();
    eprintln!(
        "a month: {} occurrences in all, {} returned",
        month["total"],
        month["meetings"].as_array().unwrap().len()
    );

    let mut group = c.benchmark_group("meetings_10k");
    group.sample_size(20);
    group.bench_function("get_month_list", |b| {
        b.iter(|| confero_scheduler::http::list(&scheduler, &caller, query).unwrap())
    });
    let (from, until) = (at("2027-01-01T00:00:00Z"), at("2028-01-01T00:00:00Z"));
    group.bench_function("expand_year_all", |b| {
        b.iter(|| meetings.iter().map(|m| m.schedule.occurrences(from, until, usize::MAX).len()).sum::<usize>())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
