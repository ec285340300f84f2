//! `vigil-agent status`: what a person asks of a forgotten agent. The running service keeps
//! `<state_dir>/status.json` up to date (atomically, after every round and every delivery
//! attempt); `status` combines it with the enrollment record, the spool and the sequence
//! counter, which it reads itself, so it also answers when the service is stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil_shared::Status;

use crate::state::write_atomic;

/// File name of the service's status record in the state directory.
pub const STATUS_FILE: &str = "status.json";

/// What the running service records about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub pid: u32,
    pub version: String,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub agent_id: String,
    /// `config` (agent.id + token from the configuration) or `enrollment`.
    pub identity_source: String,
    pub collector_url: String,
    pub last_round_at: Option<DateTime<Utc>>,
    pub last_push: Option<PushRecord>,
    /// Last time the collector acknowledged a report.
    pub last_ack_at: Option<DateTime<Utc>>,
    /// By check name.
    pub checks: BTreeMap<String, CheckStatus>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRecord {
    pub at: DateTime<Utc>,
    pub seq: u64,
    /// `acknowledged`, `duplicate`, `refused` or `retry`.
    pub outcome: String,
    /// The collector's or the network's words, for refusals and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The latest run of one check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub ran_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
    /// Output id → status of the latest run.
    pub outputs: BTreeMap<String, Status>,
    /// Why it could not run, when it timed out or crashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub failures_total: u64,
    pub timeouts_total: u64,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATUS_FILE)
}

/// Writes the record; a failure is logged, never fatal (status is a convenience).
pub fn save(state_dir: &Path, status: &ServiceStatus) {
    let path = path(state_dir);
    match serde_json::to_vec_pretty(status) {
        Ok(json) => {
            if let Err(e) = write_atomic(&path, &json, 0o600) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the status file");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot encode the status"),
    }
}

pub fn load(state_dir: &Path) -> Option<ServiceStatus> {
    let text = std::fs::read_to_string(path(state_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether the process that wrote the record still runs (same pid, and it is a vigil-agent).
pub fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim() == "vigil-agent")
        .unwrap_or(false)
}

/// Everything `status` shows, gathered from the state directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Overview {
    pub agent_id: Option<String>,
    pub identity_source: Option<String>,
    pub enrolled_at: Option<DateTime<Utc>>,
    pub collector_url: Option<String>,
    pub running: bool,
    pub service: Option<ServiceStatus>,
    pub spool_pending: u64,
    pub spool_bytes: u64,
    pub spool_dropped_total: u64,
    pub spool_compacted_total: u64,
    pub spool_rejected: u64,
    pub last_seq: u64,
}

fn format_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

fn format_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// The overview as text for people.
pub fn render(overview: &Overview) -> String {
    let mut out = String::new();
    let line = |out: &mut String, key: &str, value: String| {
        out.push_str(&format!("{key:<12} {value}\n"));
    };
    line(
        &mut out,
        "agent",
        match (&overview.agent_id, &overview.identity_source) {
            (Some(id), Some(source)) if source == "enrollment" => {
                format!("{id} (enrolled {})", format_time(overview.enrolled_at))
            }
            (Some(id), _) => format!("{id} (from the configuration)"),
            (None, _) => "not enrolled (vigil-agent enroll)".into(),
        },
    );
    line(
        &mut out,
        "collector",
        overview
            .collector_url
            .clone()
            .unwrap_or_else(|| "none configured".into()),
    );
    let service = overview.service.as_ref();
    line(
        &mut out,
        "service",
        match service {
            Some(s) if overview.running => format!(
                "running, pid {}, version {}, since {}",
                s.pid,
                s.version,
                format_time(s.started_at)
            ),
            Some(s) => format!("not running (last seen {})", format_time(s.updated_at)),
            None => "has not run yet".into(),
        },
    );
    line(
        &mut out,
        "last round",
        format_time(service.and_then(|s| s.last_round_at)),
    );
    line(
        &mut out,
        "last push",
        match service.and_then(|s| s.last_push.as_ref()) {
            Some(p) => format!(
                "{} seq {} {}{}",
                format_time(Some(p.at)),
                p.seq,
                p.outcome,
                p.detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
            None => "never".into(),
        },
    );
    line(
        &mut out,
        "last ack",
        format_time(service.and_then(|s| s.last_ack_at)),
    );
    line(
        &mut out,
        "spool",
        format!(
            "{} report(s) waiting ({}); since install {} compacted, {} dropped, {} refused",
            overview.spool_pending,
            format_bytes(overview.spool_bytes),
            overview.spool_compacted_total,
            overview.spool_dropped_total,
            overview.spool_rejected
        ),
    );
    line(&mut out, "last seq", overview.last_seq.to_string());
    if let Some(s) = service
        && !s.checks.is_empty()
    {
        out.push('\n');
        let mut rows = vec![[
            "CHECK".to_string(),
            "LAST RUN".to_string(),
            "DURATION".to_string(),
            "FAILURES".to_string(),
            "RESULT".to_string(),
        ]];
        for (name, check) in &s.checks {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for status in check.outputs.values() {
                *counts.entry(status_word(*status)).or_default() += 1;
            }
            let result = match &check.error {
                Some(error) => format!("error: {error}"),
                None => counts
                    .iter()
                    .map(|(word, n)| format!("{n} {word}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            rows.push([
                name.clone(),
                format_time(check.ran_at),
                format!("{} ms", check.duration_ms),
                format!(
                    "{} ({} timeouts)",
                    check.failures_total, check.timeouts_total
                ),
                result,
            ]);
        }
        let mut widths = [0usize; 5];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
    }
    out
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Error => "error",
        Status::NoData => "no_data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let status = ServiceStatus {
            pid: 7,
            agent_id: "web-01".into(),
            checks: BTreeMap::from([(
                "accounts".to_string(),
                CheckStatus {
                    outputs: BTreeMap::from([("accounts.uid0".to_string(), Status::Fail)]),
                    ..CheckStatus::default()
                },
            )]),
            ..ServiceStatus::default()
        };
        save(dir.path(), &status);
        assert_eq!(load(dir.path()), Some(status));
    }

    #[test]
    fn the_overview_names_what_a_person_looks_for() {
        let at = DateTime::from_timestamp(1_780_000_000, 0);
        let overview = Overview {
            agent_id: Some("web-07".into()),
            identity_source: Some("enrollment".into()),
            enrolled_at: at,
            collector_url: Some("https://vigil.example:8470".into()),
            running: false,
            service: Some(ServiceStatus {
                pid: 1,
                last_push: Some(PushRecord {
                    at: at.unwrap(),
                    seq: 42,
                    outcome: "retry".into(),
                    detail: Some("503: store busy".into()),
                }),
                checks: BTreeMap::from([(
                    "packages".to_string(),
                    CheckStatus {
                        error: Some("timed out after 120 s".into()),
                        failures_total: 2,
                        timeouts_total: 1,
                        ..CheckStatus::default()
                    },
                )]),
                ..ServiceStatus::default()
            }),
            spool_pending: 3,
            spool_bytes: 3 * 1024,
            spool_compacted_total: 5,
            ..Overview::default()
        };
        let text = render(&overview);
        for expected in [
            "web-07 (enrolled 2026-",
            "https://vigil.example:8470",
            "not running",
            "seq 42 retry: 503: store busy",
            "3 report(s) waiting (3.0 KiB); since install 5 compacted, 0 dropped",
            "packages",
            "error: timed out after 120 s",
            "2 (1 timeouts)",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in\n{text}");
        }
    }
}
