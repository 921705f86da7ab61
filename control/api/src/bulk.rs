//! Bulk spaces: a `cospaceBulkSync` makes one space per index of its
//! parameter set (`startIndex..=endIndex`, inclusive), filling `$index$` in
//! the mappings. It runs on its own thread so the POST answers at once, moves
//! pending → running → complete (or a `failed…` status), and replaces the
//! spaces an earlier sync of the same set made in one transaction, so a client
//! never sees half a set.

use uuid::Uuid;

use super::Api;
use confero_store::schema::{expand_index_mapping, spec, validate_changes, Change, Changes, Kind};
use confero_store::{Store, StoreError};

/// Largest range one set may span.
pub const MAX_RANGE: i64 = 100_000;

/// Starts sync `sync` in the background.
pub fn start(api: &Api, sync: Uuid) {
    let store = api.store.clone();
    std::thread::spawn(move || {
        let status = run(&*store, sync);
        set_status(&*store, sync, status);
    });
}

fn set_status(store: &dyn Store, sync: Uuid, status: &str) {
    let Some(field) = spec(Kind::BulkSync).field("status") else { return };
    if let Err(e) = store.update(Kind::BulkSync, sync, &[Change { field, value: Some(status.to_string()) }]) {
        tracing::warn!("bulk sync {sync}: could not record status {status}: {e}");
    }
}

fn run(store: &dyn Store, sync: Uuid) -> &'static str {
    let Some(job) = store.get(Kind::BulkSync, sync) else { return "failed" };
    let Some(set) = job
        .get("cospaceBulkParameterSet")
        .and_then(|s| Uuid::parse_str(s).ok())
        .and_then(|id| store.get(Kind::BulkParameterSet, id))
    else {
        return "failedNoSuchParameterSet";
    };
    set_status(store, sync, "running");
    let remove_all = job.get("removeAll") == Some("true");
    let start: i64 = set.get("startIndex").and_then(|v| v.parse().ok()).unwrap_or(0);
    let end: i64 = set.get("endIndex").and_then(|v| v.parse().ok()).unwrap_or(-1);
    if start > end {
        return "failedIndexRangeInvalid";
    }
    if end - start + 1 > MAX_RANGE {
        return "failedIndexRangeTooGreat";
    }
    let spaces: Vec<Changes> = if remove_all {
        Vec::new()
    } else {
        let mut out = Vec::with_capacity((end - start + 1) as usize);
        for index in start..=end {
            match space_for(&set, index) {
                Some(c) => out.push(c),
                None => return "failed",
            }
        }
        out
    };
    let began = std::time::Instant::now();
    match store.replace_generated(Kind::CoSpace, set.id, &spaces) {
        Ok(n) => {
            tracing::info!("bulk sync {sync}: {n} spaces in {:?}", began.elapsed());
            "complete"
        }
        Err(StoreError::Duplicate("duplicateCoSpaceId")) => "failedCallIdConflict",
        Err(StoreError::Duplicate(_)) => "failedCoSpaceUriConflict",
        Err(e) => {
            tracing::warn!("bulk sync {sync}: {e}");
            "failed"
        }
    }
}

/// The form a client would have POSTed for space `index`, checked the same way.
fn space_for(set: &confero_store::Object, index: i64) -> Option<Changes> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (mapping, field) in [
        ("coSpaceNameMapping", "name"),
        ("coSpaceUriMapping", "uri"),
        ("coSpaceSecondaryUriMapping", "secondaryUri"),
        ("coSpaceCallIdMapping", "callId"),
    ] {
        if let Some(v) = set.get(mapping).and_then(|m| expand_index_mapping(m, index)) {
            pairs.push((field, v));
        }
    }
    for field in ["callProfile", "callLegProfile", "tenant", "callBrandingProfile"] {
        if let Some(v) = set.get(field) {
            pairs.push((field, v.to_string()));
        }
    }
    pairs.push(("nonMemberAccess", set.get("nonMemberAccess").unwrap_or("true").to_string()));
    let fields = spec(Kind::CoSpace).fields;
    let mut changes = Vec::with_capacity(pairs.len() + 1);
    let form = confero_store::form::Form::default();
    // Secrets and defaults come from the same path as a POST.
    changes.extend(validate_changes(fields, &form, true).ok()?);
    for (name, value) in pairs {
        let field = fields.iter().find(|f| f.name == name)?;
        let checked = confero_store::schema::check_value(field, &value).ok()?;
        changes.push(Change { field, value: Some(checked) });
    }
    Some(changes)
}
