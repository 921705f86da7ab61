//! Call diagnostics (`POST coSpaces/<id>/diagnostics`, `POST
//! calls/<id>/diagnostics`, `GET system/diagnostics[/<id>[/contents]]`): a
//! snapshot of a call taken on request — its legs with their media status —
//! and the recent log lines that name it, kept in memory for support to read
//! (the newest [`KEPT`]; a restart forgets them, as logs rotate).
//!
//! The log lines come from [`RecentLog`], which the binary's log writer feeds
//! (`src/main.rs`); what reaches the log is already masked.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use confero_store::form::Form;
use confero_store::schema::Kind;
use uuid::Uuid;

use super::bridge::LiveCall;
use super::cdr::cms_time;
use super::failure::Failure;
use super::xml::XmlWriter;
use super::{page_of, Api, Reply};

/// Diagnostics kept, newest first.
const KEPT: usize = 64;
/// Log lines kept for them.
const LOG_LINES: usize = 2_000;

/// The last log lines of the process, without colour codes.
#[derive(Default)]
pub struct RecentLog {
    lines: Mutex<VecDeque<String>>,
}

/// The process's [`RecentLog`].
pub fn recent_log() -> &'static RecentLog {
    static LOG: OnceLock<RecentLog> = OnceLock::new();
    LOG.get_or_init(RecentLog::default)
}

impl RecentLog {
    /// Keeps one line (ANSI colour sequences removed).
    pub fn push(&self, line: &str) {
        let mut clean = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                clean.push(c);
            }
        }
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() >= LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(clean.trim_end().to_string());
    }

    /// The kept lines naming any of `ids`, newest first.
    fn naming(&self, ids: &[String]) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().rev().filter(|l| ids.iter().any(|id| l.contains(id.as_str()))).cloned().collect()
    }
}

/// One diagnostics record.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    id: Uuid,
    label: String,
    co_space: Option<Uuid>,
    call_correlator: Option<Uuid>,
    timestamp: String,
    contents: String,
}

/// The records, newest first.
#[derive(Default)]
pub struct Diagnostics {
    kept: Mutex<VecDeque<Diagnostic>>,
}

impl Diagnostics {
    fn add(&self, d: Diagnostic) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= KEPT {
            kept.pop_back();
        }
        kept.push_front(d);
    }

    fn all(&self) -> Vec<Diagnostic> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    fn get(&self, id: Uuid) -> Option<Diagnostic> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|d| d.id == id).cloned()
    }
}

/// `POST coSpaces/<id>/diagnostics`: diagnostics of the space's live call
/// (or of the space alone when none is live).
pub fn for_space(api: &Api, space: Uuid) -> Result<Reply, Failure> {
    let s = api
        .store
        .get(Kind::CoSpace, space)
        .ok_or(Failure::DoesNotExist { reason: "coSpaceDoesNotExist", in_path: true })?;
    let call = api.bridge.calls().into_iter().find(|c| c.co_space == Some(space));
    let label = s.get("name").unwrap_or_default().to_string();
    Ok(record(api, label, Some(space), call))
}

/// `POST calls/<id>/diagnostics`.
pub fn for_call(api: &Api, call: Uuid) -> Result<Reply, Failure> {
    let live = api.bridge.calls().into_iter().find(|c| c.id == call);
    let live = live.ok_or(Failure::DoesNotExist { reason: "callDoesNotExist", in_path: true })?;
    Ok(record(api, live.name.clone(), live.co_space, Some(live)))
}

fn record(api: &Api, label: String, co_space: Option<Uuid>, call: Option<LiveCall>) -> Reply {
    let id = Uuid::new_v4();
    let mut text = format!("Diagnostics {id}:\n\"{label}\"");
    let mut ids: Vec<String> = co_space.iter().map(Uuid::to_string).collect();
    if let Some(c) = &call {
        text.push_str(&format!(" ({})\n", c.id));
        ids.push(c.id.to_string());
        ids.push(c.call_correlator.to_string());
    } else {
        text.push_str(" (no live call)\n");
    }
    if let Some(s) = co_space {
        text.push_str(&format!("  coSpace: {s}\n"));
    }
    if let Some(c) = &call {
        text.push_str(&format!(
            "  correlator: {}\n  duration: {} s\nCall legs:\n",
            c.call_correlator,
            c.duration.as_secs()
        ));
        for leg in api.bridge.call_legs().into_iter().filter(|l| l.call == c.id) {
            ids.push(leg.id.to_string());
            let stream = |s: &Option<crate::bridge::StreamStatus>| {
                s.as_ref().map_or("-".to_string(), |s| {
                    format!(
                        "{} {} bit/s, jitter {} ms, loss {:.1} %",
                        s.codec, s.bit_rate, s.jitter_ms, s.packet_loss_percentage
                    )
                })
            };
            text.push_str(&format!(
                "  {} {:?} {:?} {} \"{}\" for {} s\n    rx audio: {}\n    tx audio: {}\n",
                leg.id,
                leg.direction,
                leg.state,
                leg.remote_party,
                leg.name,
                leg.duration.as_secs(),
                stream(&leg.rx_audio),
                stream(&leg.tx_audio),
            ));
        }
    }
    text.push_str("Recent log messages:\n");
    for line in recent_log().naming(&ids) {
        text.push_str(&line);
        text.push('\n');
    }
    api.diagnostics.add(Diagnostic {
        id,
        label,
        co_space,
        call_correlator: call.as_ref().map(|c| c.call_correlator),
        timestamp: cms_time(std::time::SystemTime::now()),
        contents: text,
    });
    tracing::info!("API generated diagnostics {id}");
    Reply::created(format!("/api/v1/system/diagnostics/{id}"))
}

/// `GET system/diagnostics` (`coSpaceFilter`, `callCorrelatorFilter`, paging).
pub fn list(api: &Api, query: &Form) -> Result<Reply, Failure> {
    let page = page_of(query)?;
    let filter = |name: &'static str| -> Result<Option<Uuid>, Failure> {
        match query.get(name).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => Uuid::parse_str(v).map(Some).map_err(|_| Failure::parameter(name, "invalidValue")),
        }
    };
    let (space, correlator) = (filter("coSpaceFilter")?, filter("callCorrelatorFilter")?);
    let all: Vec<Diagnostic> = api
        .diagnostics
        .all()
        .into_iter()
        .filter(|d| space.is_none_or(|s| d.co_space == Some(s)))
        .filter(|d| correlator.is_none_or(|c| d.call_correlator == Some(c)))
        .collect();
    let mut w = XmlWriter::new();
    w.open("diagnostics", &[("total", &all.len().to_string())]);
    for d in all.iter().skip(page.offset).take(page.limit) {
        w.open("diagnostics", &[("id", &d.id.to_string())]).text("label", &d.label).close("diagnostics");
    }
    w.close("diagnostics");
    Ok(Reply::xml(w.finish()))
}

fn find(api: &Api, id: Uuid) -> Result<Diagnostic, Failure> {
    api.diagnostics.get(id).ok_or(Failure::DoesNotExist { reason: "diagnosticsDoesNotExist", in_path: true })
}

/// `GET system/diagnostics/<id>`.
pub fn get(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    let d = find(api, id)?;
    let mut w = XmlWriter::new();
    w.open("diagnostics", &[("id", &d.id.to_string())]).text("label", &d.label);
    if let Some(s) = d.co_space {
        w.text("coSpace", &s.to_string());
    }
    if let Some(c) = d.call_correlator {
        w.text("callCorrelator", &c.to_string());
    }
    w.text("timestamp", &d.timestamp).text("contentsSize", &d.contents.len().to_string()).close("diagnostics");
    Ok(Reply::xml(w.finish()))
}

/// `GET system/diagnostics/<id>/contents`: the text itself.
pub fn contents(api: &Api, id: Uuid) -> Result<Reply, Failure> {
    Ok(Reply::text(find(api, id)?.contents))
}
