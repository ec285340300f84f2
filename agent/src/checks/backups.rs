//! Backups (A.8.13): whether the configured backup locations hold something recent — the
//! newest file under a path or glob (by modification time), or a marker file in which the
//! backup job writes the time of its last success — and which backup tools are scheduled.
//!
//! Decisions worth knowing:
//! - Nothing is assumed: without configured `targets` the result is `no_data` (the tools
//!   found are listed). Backup tools keep their state in their repositories, usually
//!   remote, so "restic is installed" proves nothing about last night's backup. The robust
//!   evidence is written by the job itself: a marker with its completion time
//!   (`timestamp = "content"`), or a drop-in evidence file (`dropin.<name>`).
//! - A marker's content is trusted as written: RFC 3339 or Unix seconds on its first line.
//! - A newest file of fewer than `min_bytes` (default 1) is a failed backup, not a recent one.
//! - A time more than an hour in the future is a finding: the clock or the marker is wrong,
//!   and either way the age cannot be trusted.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use vigil_shared::{Subject, Value};

use super::support::units::UnitIndex;
use super::support::{glob, list_dir, mtime, round1};
use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostError, HostRoot, join};

/// How a target's time is read.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Timestamp {
    /// The newest modification time of the file, or of the files under the directory.
    #[default]
    Mtime,
    /// The file's first line: an RFC 3339 time or Unix seconds written by the backup job.
    Content,
}

/// One backup location.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name shown in results (`postgres-dumps`).
    pub name: String,
    /// Host path or glob: a file, a directory (its newest file, three levels deep) or a
    /// marker file.
    pub path: String,
    /// Oldest acceptable age of the newest backup, in hours.
    pub max_age_hours: u64,
    /// Where the time comes from.
    #[serde(default)]
    pub timestamp: Timestamp,
    /// Smallest acceptable size of the newest file (`mtime` targets).
    #[serde(default = "default_min_bytes")]
    pub min_bytes: u64,
}

fn default_min_bytes() -> u64 {
    1
}

/// `[checks.backups]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// The backup locations to judge (`[[checks.backups.targets]]`).
    #[serde(default)]
    pub targets: Vec<Target>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            targets: Vec::new(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "40 * * * *".into()
}

const ID: &str = "backups.recency";

const OUTPUTS: &[Output] = &[Output {
    id: ID,
    controls: &["A.8.13"],
    description: "Every configured backup location holds a backup younger than its maximum age",
}];

/// Entries looked at under one directory target at most.
const MAX_ENTRIES: usize = 20_000;

/// Backup tools recognised by their systemd units or cron entries.
const TOOL_UNITS: [(&str, &str); 9] = [
    ("borgmatic", "borgmatic.timer"),
    ("restic", "restic-backup.timer"),
    ("bacula", "bacula-fd.service"),
    ("bareos", "bareos-fd.service"),
    ("veeam", "veeamservice.service"),
    ("urbackup", "urbackupclientbackend.service"),
    ("duplicity", "duplicity.timer"),
    ("rsnapshot", "rsnapshot-daily.timer"),
    ("proxmox-backup-client", "proxmox-backup-client.timer"),
];
const CRON_TOOLS: [&str; 7] = [
    "borgmatic",
    "borg ",
    "restic",
    "duplicity",
    "rsnapshot",
    "duplicati",
    "rdiff-backup",
];

/// The backups check.
#[derive(Debug)]
pub struct Backups;

impl Check for Backups {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn description(&self) -> &'static str {
        "age of the newest backup at each configured location, backup tools scheduled"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.backups.enabled,
            schedule: settings.backups.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        vec![run(ctx)]
    }
}

/// Backup tools that are scheduled on this root (enabled units, cron entries).
fn detect_tools(root: &HostRoot) -> (Vec<String>, Vec<String>) {
    let units = UnitIndex::load(root);
    let mut tools: Vec<String> = Vec::new();
    for (tool, unit) in TOOL_UNITS {
        if units.state(unit).is_enabled() {
            tools.push(format!("{tool} ({unit} enabled)"));
        }
    }
    let mut sources = Vec::new();
    let mut cron_files = vec!["/etc/crontab".to_string()];
    for dir in [
        "/etc/cron.d",
        "/etc/cron.daily",
        "/var/spool/cron/crontabs",
        "/var/spool/cron",
    ] {
        if let Ok(names) = list_dir(root, dir, "") {
            cron_files.extend(names.iter().map(|n| join(dir, n)));
        }
    }
    for file in cron_files {
        let Ok(bytes) = root.read_bytes(&file, 256 * 1024) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for tool in CRON_TOOLS {
            let found = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .any(|l| l.contains(tool));
            if found {
                tools.push(format!("{} (in {file})", tool.trim()));
                if !sources.contains(&file) {
                    sources.push(file.clone());
                }
            }
        }
    }
    (tools, sources)
}

/// Parses a marker's content: RFC 3339, or Unix seconds.
pub fn parse_marker(text: &str) -> Option<DateTime<Utc>> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    if let Ok(t) = DateTime::parse_from_rfc3339(first) {
        return Some(t.with_timezone(&Utc));
    }
    // `date -Is` on some systems writes `+0000` without the colon.
    if let Ok(t) = DateTime::parse_from_str(first, "%Y-%m-%dT%H:%M:%S%z") {
        return Some(t.with_timezone(&Utc));
    }
    let secs: i64 = first.split('.').next()?.parse().ok()?;
    DateTime::from_timestamp(secs, 0)
}

/// The newest regular file under a path (the path itself when it is a file).
fn newest_file(
    root: &HostRoot,
    path: &str,
    depth: usize,
    seen: &mut usize,
) -> Result<Option<(String, DateTime<Utc>, u64)>, HostError> {
    let meta = match root.metadata(path) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    *seen += 1;
    if meta.is_file() {
        return Ok(Some((path.to_string(), mtime(root, path)?, meta.len())));
    }
    if !meta.is_dir() || depth == 0 || *seen > MAX_ENTRIES {
        return Ok(None);
    }
    let mut best: Option<(String, DateTime<Utc>, u64)> = None;
    for name in list_dir(root, path, "")? {
        if let Some(found) = newest_file(root, &join(path, &name), depth - 1, seen)?
            && best.as_ref().is_none_or(|b| found.1 > b.1)
        {
            best = Some(found);
        }
    }
    Ok(best)
}

fn run(ctx: &CheckContext<'_>) -> Outcome {
    let settings = &ctx.settings.backups;
    let (tools, tool_sources) = detect_tools(ctx.root);
    if settings.targets.is_empty() {
        let seen = if tools.is_empty() {
            String::new()
        } else {
            format!("; backup tools seen: {}", tools.join(", "))
        };
        return Outcome::no_data(
            ID,
            format!(
                "no backup location configured ([[checks.backups.targets]]); a marker or a drop-in evidence file written by the backup job is the reliable evidence{seen}"
            ),
        )
        .value("tools", tools)
        .sources(tool_sources);
    }
    if !super::support::looks_like_os(ctx.root) {
        return Outcome::no_data(
            ID,
            "this root holds no operating system (no os-release, no package database): nothing to judge",
        );
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut sources = Vec::new();
    for target in &settings.targets {
        let s = Subject::new("backup", target.name.as_str())
            .fact("path", target.path.as_str())
            .fact("max_age_hours", target.max_age_hours);
        let matches = match glob::expand(ctx.root, &target.path) {
            Ok(m) => m,
            Err(e) => return Outcome::error(ID, e),
        };
        if matches.is_empty() {
            offenders.push(s.with_reason(format!("nothing exists at {}", target.path)));
            continue;
        }
        let newest = match target.timestamp {
            Timestamp::Mtime => {
                let mut best: Option<(String, DateTime<Utc>, u64)> = None;
                let mut seen = 0;
                for m in &matches {
                    match newest_file(ctx.root, m, 3, &mut seen) {
                        Ok(Some(found)) if best.as_ref().is_none_or(|b| found.1 > b.1) => {
                            best = Some(found)
                        }
                        Ok(_) => {}
                        Err(e) => return Outcome::error(ID, e),
                    }
                }
                best
            }
            Timestamp::Content => {
                let mut best: Option<(String, DateTime<Utc>, u64)> = None;
                for m in &matches {
                    let bytes = match ctx.root.read_bytes(m, 4096) {
                        Ok(b) => b,
                        Err(e) => return Outcome::error(ID, e),
                    };
                    sources.push(m.clone());
                    match parse_marker(&String::from_utf8_lossy(&bytes)) {
                        Some(t) if best.as_ref().is_none_or(|b| t > b.1) => {
                            best = Some((m.clone(), t, bytes.len() as u64))
                        }
                        Some(_) => {}
                        None => {
                            offenders.push(s.clone().with_reason(format!(
                                "{m} holds no time (expected RFC 3339 or Unix seconds on its first line)"
                            )));
                        }
                    }
                }
                if best.is_none() {
                    continue;
                }
                best
            }
        };
        let Some((file, time, size)) = newest else {
            offenders.push(s.with_reason(format!("no file under {}", target.path)));
            continue;
        };
        let age_hours = (ctx.now - time).num_seconds() as f64 / 3600.0;
        let s = s
            .fact("newest", file.as_str())
            .fact("time", time.to_rfc3339())
            .fact("age_hours", Value::Float(round1(age_hours)));
        let s = if target.timestamp == Timestamp::Mtime {
            s.fact("bytes", size)
        } else {
            s
        };
        if age_hours < -1.0 {
            offenders.push(s.with_reason(format!(
                "the newest backup time {} is in the future: the clock or the marker is wrong",
                time.to_rfc3339()
            )));
        } else if age_hours > target.max_age_hours as f64 {
            offenders.push(s.with_reason(format!(
                "the newest backup is {} hours old ({}), older than {} hours",
                round1(age_hours),
                time.format("%Y-%m-%d %H:%M UTC"),
                target.max_age_hours
            )));
        } else if target.timestamp == Timestamp::Mtime && size < target.min_bytes {
            offenders.push(s.with_reason(format!(
                "the newest file {file} has {size} bytes, fewer than {}: a failed backup",
                target.min_bytes
            )));
        } else {
            checked.push(s);
        }
    }
    let n = settings.targets.len();
    let fail = format!(
        "{} of {n} backup location(s) not recent: {}",
        offenders.len(),
        offenders
            .iter()
            .map(|o| format!("{} ({})", o.id, o.reason.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Outcome::judge(
        ID,
        offenders,
        checked,
        format!("all {n} backup location(s) hold a backup younger than their limit"),
        fail,
    )
    .value("targets", n)
    .value("tools", tools)
    .sources(sources)
    .sources(tool_sources)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use vigil_shared::Status;

    use super::*;
    use crate::checks::support::testing::*;
    use crate::settings::ChecksConfig;

    fn target(name: &str, path: &str, hours: u64, timestamp: Timestamp) -> Target {
        Target {
            name: name.into(),
            path: path.into(),
            max_age_hours: hours,
            timestamp,
            min_bytes: 1,
        }
    }

    fn fixture_settings() -> ChecksConfig {
        let mut settings = ChecksConfig::default();
        settings.backups.targets = vec![target(
            "nightly",
            "/var/lib/backup/nightly.last-success",
            26,
            Timestamp::Content,
        )];
        settings
    }

    #[test]
    fn markers_parse() {
        let t = |s: &str| parse_marker(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2026-06-01T02:14:07Z\n"),
            Some("2026-06-01T02:14:07+00:00".into())
        );
        assert_eq!(
            t("2026-06-01T04:14:07+02:00"),
            Some("2026-06-01T02:14:07+00:00".into())
        );
        assert_eq!(
            t("2026-06-01T04:14:07+0200"),
            Some("2026-06-01T02:14:07+00:00".into())
        );
        assert_eq!(
            t("\n1780280047.25\n"),
            Some("2026-06-01T02:14:07+00:00".into())
        );
        assert_eq!(t("done"), None);
        assert_eq!(t(""), None);
        assert_eq!(t("99999999999999999999"), None);
    }

    #[test]
    fn fixture_hosts() {
        let r = run_with(&Backups, &fixture("healthy"), &fixture_settings());
        assert_well_formed(&r);
        assert_eq!(status(&r, ID), Status::Pass, "{:?}", r[ID]);
        assert_eq!(
            r[ID].evidence.checked[0].facts["age_hours"],
            Value::Float(9.8)
        );
        let r = run_with(&Backups, &fixture("misconfigured"), &fixture_settings());
        assert_eq!(status(&r, ID), Status::Fail);
        assert_eq!(
            reason(&r, ID, "nightly"),
            "the newest backup is 297.8 hours old (2026-05-20 02:10 UTC), older than 26 hours"
        );
        let r = run_with(&Backups, &fixture("minimal"), &fixture_settings());
        assert_eq!(status(&r, ID), Status::NoData, "no operating system there");
        // An installed system without the marker fails.
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path(), &[("etc/os-release", "ID=debian\n")]);
        let r = run_with(&Backups, dir.path(), &fixture_settings());
        assert_eq!(status(&r, ID), Status::Fail);
        assert_eq!(
            reason(&r, ID, "nightly"),
            "nothing exists at /var/lib/backup/nightly.last-success"
        );
        // Without targets every host is no_data, listing the tools it schedules.
        let r = run_fixture(&Backups, "healthy");
        assert_eq!(status(&r, ID), Status::NoData);
        assert_eq!(
            r[ID].values["tools"],
            Value::from(vec!["restic (in /etc/cron.d/restic-backup)"])
        );
        assert_eq!(
            status(&run_fixture(&Backups, "minimal"), ID),
            Status::NoData
        );
    }

    fn touch(path: &std::path::Path, bytes: &[u8], age: Duration) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn newest_file_by_mtime_under_globs_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        let hour = Duration::from_secs(3600);
        touch(&b.join("srv/backup/db/2026-05-30.sql.gz"), b"x", 50 * hour);
        touch(&b.join("srv/backup/db/2026-05-31.sql.gz"), b"x", 26 * hour);
        touch(&b.join("srv/backup/files/a/b/c.tar"), b"x", 2 * hour);
        touch(&b.join("srv/backup/empty/e.dump"), b"", hour);
        touch(&b.join("etc/os-release"), b"ID=debian\n", hour);
        let root = HostRoot::new(b).unwrap();
        let mut settings = ChecksConfig::default();
        settings.backups.targets = vec![
            target("db", "/srv/backup/db/*.sql.gz", 24, Timestamp::Mtime),
            target("files", "/srv/backup/files", 24, Timestamp::Mtime),
            target("empty", "/srv/backup/empty", 24, Timestamp::Mtime),
            target("gone", "/srv/backup/gone/*", 24, Timestamp::Mtime),
        ];
        let ctx = CheckContext {
            root: &root,
            now: Utc::now(),
            settings: &settings,
            cache_dir: None,
        };
        let r: Results = crate::checks::run_check(&Backups, &ctx)
            .into_iter()
            .map(|r| (r.check.clone(), r))
            .collect();
        assert_eq!(status(&r, ID), Status::Fail);
        assert_eq!(offenders(&r, ID), ["db", "empty", "gone"]);
        assert!(reason(&r, ID, "db").starts_with("the newest backup is 26"));
        assert_eq!(
            offender(&r, ID, "db").facts["newest"],
            Value::from("/srv/backup/db/2026-05-31.sql.gz")
        );
        assert!(reason(&r, ID, "empty").ends_with("has 0 bytes, fewer than 1: a failed backup"));
        assert_eq!(checked(&r, ID), ["files"]);
        assert_eq!(
            r[ID].evidence.checked[0].facts["newest"],
            Value::from("/srv/backup/files/a/b/c.tar")
        );
    }

    #[test]
    fn future_and_unreadable_markers() {
        let dir = tempfile::tempdir().unwrap();
        write_tree(
            dir.path(),
            &[("m/future", "2027-01-01T00:00:00Z\n"), ("m/junk", "ok\n")],
        );
        write_tree(dir.path(), &[("etc/os-release", "ID=debian\n")]);
        let mut settings = ChecksConfig::default();
        settings.backups.targets = vec![
            target("future", "/m/future", 24, Timestamp::Content),
            target("junk", "/m/junk", 24, Timestamp::Content),
        ];
        let r = run_with(&Backups, dir.path(), &settings);
        assert_eq!(offenders(&r, ID), ["future", "junk"]);
        assert!(reason(&r, ID, "future").contains("is in the future"));
        assert_eq!(
            reason(&r, ID, "junk"),
            "/m/junk holds no time (expected RFC 3339 or Unix seconds on its first line)"
        );
    }
}
