//! Evidence drop-ins: other tools (backup jobs, HR training exports, EDR scripts) write JSON
//! evidence files into a directory, in the manner of node_exporter's textfile collector;
//! each valid file becomes a result `dropin.<name>` with the controls it declares, judged
//! stale when older than the age it declares. The format is in `shared/DROPIN.md`.
//!
//! Decisions worth knowing:
//! - Only `<name>.json` files are read, so that a writer can write a temporary name in the
//!   same directory (`.<name>.json.tmp`) and rename it into place: a reader never sees half
//!   a file. Hidden files and other suffixes are ignored.
//! - A broken file never stops the check: its result is an error naming the file and the
//!   problem, mapped to the controls it declares when they can still be read, else to
//!   `fallback_controls`; `dropin.files` lists it as well.
//! - The file's `observed_at` is trusted when present (the writer knows when it looked);
//!   otherwise the file's modification time is the observation time.
//! - A directory writable by other users lets anyone forge evidence: `dropin.files` fails.

pub mod format;

use std::os::unix::fs::PermissionsExt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use vigil_shared::{Status, Subject, Value};

use super::support::{list_dir, mtime, round1};
use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::join;

/// `[checks.dropin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// The directory on the audited host (read through the root) where tools drop
    /// evidence files.
    #[serde(default = "default_dir")]
    pub dir: String,
    /// Most files read; more are reported and ignored.
    #[serde(default = "default_max_files")]
    pub max_files: usize,
    /// Controls of the error result of a file whose own controls cannot be read.
    #[serde(default = "default_fallback_controls")]
    pub fallback_controls: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            dir: default_dir(),
            max_files: default_max_files(),
            fallback_controls: default_fallback_controls(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "*/10 * * * *".into()
}
fn default_dir() -> String {
    "/var/lib/vigil/evidence.d".into()
}
fn default_max_files() -> usize {
    500
}
fn default_fallback_controls() -> Vec<String> {
    vec!["A.5.36".into()]
}

const FILES: &str = "dropin.files";

const OUTPUTS: &[Output] = &[Output {
    id: FILES,
    controls: &["A.5.36"],
    description: "The evidence drop-in directory: files read, refused or broken; each valid file adds a result dropin.<name> with its own controls",
}];

/// Largest drop-in file read.
const FILE_LIMIT: u64 = 1024 * 1024;
/// Observation times this far in the future are accepted as clock skew.
const SKEW_SECS: i64 = 300;

/// The evidence drop-in check.
#[derive(Debug)]
pub struct DropIn;

impl Check for DropIn {
    fn name(&self) -> &'static str {
        "dropin"
    }

    fn description(&self) -> &'static str {
        "evidence files written by other tools into the drop-in directory"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.dropin.enabled,
            schedule: settings.dropin.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        read_directory(ctx)
    }

    fn dynamic_outputs(&self) -> bool {
        true
    }
}

fn read_directory(ctx: &CheckContext<'_>) -> Vec<Outcome> {
    let settings = &ctx.settings.dropin;
    let dir = settings.dir.as_str();
    let meta = match ctx.root.metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            return vec![Outcome::error(FILES, format!("{dir}: not a directory"))];
        }
        Err(e) if e.is_not_found() => {
            return vec![Outcome::no_data(
                FILES,
                format!("no drop-in directory {dir}: no tool reports evidence here"),
            )];
        }
        Err(e) => return vec![Outcome::error(FILES, e)],
    };
    let names = match list_dir(ctx.root, dir, ".json") {
        Ok(n) => n,
        Err(e) => return vec![Outcome::error(FILES, e)],
    };
    let mut out = Vec::new();
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut seen_ids = std::collections::BTreeSet::new();
    let mut sources = Vec::new();

    // Writable by every user (sticky or not): anyone can add or replace evidence.
    if meta.permissions().mode() & 0o002 != 0 {
        let mode = meta.permissions().mode() & 0o7777;
        offenders.push(
            Subject::new("directory", dir)
                .with_reason(format!(
                    "mode {mode:04o}: every local user can write evidence here, so anyone can forge it"
                ))
                .fact("mode", format!("{mode:04o}")),
        );
    }

    for (i, name) in names.iter().enumerate() {
        let path = join(dir, name);
        if i >= settings.max_files {
            offenders.push(Subject::new("dropin_file", path).with_reason(format!(
                "more than {} files in the directory: ignored",
                settings.max_files
            )));
            continue;
        }
        let id = match format::id_for(name) {
            Ok(id) => id,
            Err(why) => {
                offenders.push(Subject::new("dropin_file", path).with_reason(why));
                continue;
            }
        };
        if !seen_ids.insert(id.clone()) {
            offenders.push(Subject::new("dropin_file", path).with_reason(format!(
                "another file already reports {id} ('-' and '_' are the same in ids): ignored"
            )));
            continue;
        }
        sources.push(path.clone());
        let outcome = judge_file(ctx, &path, &id);
        let world_writable = ctx
            .root
            .metadata(&path)
            .is_ok_and(|m| m.permissions().mode() & 0o002 != 0);
        if world_writable {
            offenders.push(
                Subject::new("dropin_file", path.as_str())
                    .with_reason("writable by every local user: anyone can change this evidence"),
            );
        }
        let s = Subject::new("dropin_file", path.as_str())
            .fact("result", id.as_str())
            .fact("status", outcome.status.as_str());
        if outcome.status == Status::Error {
            offenders.push(s.with_reason(outcome.error.clone().unwrap_or_default()));
        } else {
            checked.push(s);
        }
        out.push(outcome);
    }
    if offenders.is_empty() && checked.is_empty() {
        out.push(Outcome::no_data(
            FILES,
            format!("the drop-in directory {dir} holds no evidence file"),
        ));
        return out;
    }
    let n = checked.len();
    let fail = format!(
        "{} problem(s) in the drop-in directory: {}",
        offenders.len(),
        offenders
            .iter()
            .map(|o| format!("{} ({})", o.id, o.reason.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ")
    );
    out.push(
        Outcome::judge(
            FILES,
            offenders,
            checked,
            format!("{n} evidence file(s) read from {dir}"),
            fail,
        )
        .value("files", names.len())
        .sources(sources),
    );
    out
}

/// The result of one file.
fn judge_file(ctx: &CheckContext<'_>, path: &str, id: &str) -> Outcome {
    let fallback = ctx.settings.dropin.fallback_controls.clone();
    let error = |message: String, controls: Vec<String>| {
        let controls = if controls.is_empty() {
            fallback.clone()
        } else {
            controls
        };
        Outcome::error(id.to_string(), format!("{path}: {message}"))
            .controls(controls)
            .source(path.to_string())
    };
    let bytes = match ctx.root.read_bytes(path, FILE_LIMIT) {
        Ok(b) => b,
        Err(e) => return error(e.to_string(), Vec::new()),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => return error("not UTF-8 text".into(), Vec::new()),
    };
    let file = match format::parse(&text) {
        Ok(f) => f,
        Err(e) => return error(e.to_string(), format::salvage_controls(&text)),
    };
    let modified = match mtime(ctx.root, path) {
        Ok(t) => t,
        Err(e) => return error(e.to_string(), file.controls.clone()),
    };
    let (observed, age_source): (DateTime<Utc>, &str) = match file.observed_at {
        Some(t) => (t, "observed_at"),
        None => (modified, "file modification time"),
    };
    let age_hours = (ctx.now - observed).num_seconds() as f64 / 3600.0;
    let mut outcome = Outcome {
        id: id.to_string().into(),
        controls: file.controls.clone(),
        status: file.status,
        summary: format!("{}: {}", file.title, file.summary),
        values: file.values.clone(),
        evidence: vigil_shared::Evidence {
            offenders: file.offenders.clone(),
            checked: file.checked.clone(),
            sources: vec![path.to_string()],
        },
        error: (file.status == Status::Error).then(|| file.summary.clone()),
    };
    let stale = |reason: String, summary: String, mut o: Outcome| {
        o.status = Status::Fail;
        o.error = None;
        o.summary = summary;
        o.evidence.offenders.insert(
            0,
            Subject::new("dropin_file", path)
                .with_reason(reason)
                .fact("observed_at", observed.to_rfc3339())
                .fact("reported_status", file.status.as_str()),
        );
        o
    };
    if (observed - ctx.now).num_seconds() > SKEW_SECS {
        outcome = stale(
            format!(
                "observed_at {} is in the future: the writer's clock or the file is wrong",
                observed.to_rfc3339()
            ),
            format!("{}: evidence dated in the future", file.title),
            outcome,
        );
    } else if age_hours > file.max_age_hours {
        outcome = stale(
            format!(
                "stale: observed {} ({} hours ago, by its {age_source}), older than its max_age_hours of {}",
                observed.format("%Y-%m-%d %H:%M UTC"),
                round1(age_hours),
                file.max_age_hours
            ),
            format!(
                "{}: stale evidence, {} hours old (allowed {})",
                file.title,
                round1(age_hours),
                file.max_age_hours
            ),
            outcome,
        );
    }
    outcome
        .value("age_hours", Value::Float(round1(age_hours.max(0.0))))
        .value("observed_at", observed.to_rfc3339())
        .value("max_age_hours", Value::Float(file.max_age_hours))
}

#[cfg(test)]
mod tests;
