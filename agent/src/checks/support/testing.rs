//! Test helpers shared by the checks' fixture tests: the fixture roots, the fixture clock,
//! and running one check through [`run_check`] into a map keyed by output id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vigil_shared::{CheckResult, Status, Subject};

use crate::checks::{Check, CheckContext, run_check};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name)
}

pub fn fixture_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub type Results = BTreeMap<String, CheckResult>;

pub fn run_with(check: &dyn Check, root: &Path, settings: &ChecksConfig) -> Results {
    let root = HostRoot::new(root).unwrap();
    let ctx = CheckContext {
        root: &root,
        now: fixture_now(),
        settings,
        cache_dir: None,
    };
    run_check(check, &ctx)
        .into_iter()
        .map(|r| (r.check.clone(), r))
        .collect()
}

pub fn run(check: &dyn Check, root: &Path) -> Results {
    run_with(check, root, &ChecksConfig::default())
}

pub fn run_fixture(check: &dyn Check, name: &str) -> Results {
    run(check, &fixture(name))
}

pub fn status(results: &Results, id: &str) -> Status {
    results
        .get(id)
        .unwrap_or_else(|| panic!("no result {id}"))
        .status
}

fn ids(subjects: &[Subject]) -> Vec<String> {
    subjects.iter().map(|s| s.id.clone()).collect()
}

pub fn offenders(results: &Results, id: &str) -> Vec<String> {
    ids(&results[id].evidence.offenders)
}

pub fn checked(results: &Results, id: &str) -> Vec<String> {
    ids(&results[id].evidence.checked)
}

pub fn offender<'a>(results: &'a Results, id: &str, subject: &str) -> &'a Subject {
    results[id]
        .evidence
        .offenders
        .iter()
        .find(|s| s.id == subject)
        .unwrap_or_else(|| panic!("{id}: no offender {subject}: {:?}", results[id].evidence))
}

pub fn reason<'a>(results: &'a Results, id: &str, subject: &str) -> &'a str {
    offender(results, id, subject)
        .reason
        .as_deref()
        .unwrap_or("")
}

/// Writes files into a tree: `(relative path, contents)`.
pub fn write_tree(base: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let full = base.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
}

/// Creates a symlink inside a tree, with its parent directories.
pub fn link(base: &Path, path: &str, target: &str) {
    let full = base.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, full).unwrap();
}

/// Every result of a run is well formed: failing ones name offenders, errors say why.
pub fn assert_well_formed(results: &Results) {
    for (id, r) in results {
        if r.status == Status::Fail {
            assert!(
                !r.evidence.offenders.is_empty(),
                "{id} fails without offender"
            );
        }
        if r.status == Status::Error {
            assert!(r.error.is_some(), "{id} errors without reason");
        }
        assert!(!r.summary.is_empty(), "{id} has no summary");
        for source in &r.evidence.sources {
            assert!(
                source.starts_with('/'),
                "{id}: source {source} is not a host path"
            );
            assert!(
                !source.contains("fixtures/hosts"),
                "{id}: {source} leaks the root prefix"
            );
        }
    }
}

/// Runs a check with the fixture clock and returns its results in output order, asserting
/// what every result must hold: a failure names offenders, an error says why.
pub fn run_in_order(check: &dyn Check, root: &Path, settings: &ChecksConfig) -> Vec<CheckResult> {
    let root = HostRoot::new(root).unwrap();
    let ctx = CheckContext {
        root: &root,
        now: fixture_now(),
        settings,
        cache_dir: None,
    };
    let results = run_check(check, &ctx);
    for r in &results {
        assert!(
            r.status != Status::Fail || !r.evidence.offenders.is_empty(),
            "{}: a failure names offenders",
            r.check
        );
        assert!(
            r.status != Status::Error || r.error.is_some(),
            "{}",
            r.check
        );
    }
    results
}

/// One result of a list by output id.
pub fn result<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.check == id)
        .unwrap_or_else(|| panic!("no result {id}"))
}

/// A result's offenders as (id, reason) pairs.
pub fn offender_reasons(result: &CheckResult) -> Vec<(&str, &str)> {
    result
        .evidence
        .offenders
        .iter()
        .map(|s| (s.id.as_str(), s.reason.as_deref().unwrap_or("")))
        .collect()
}

/// Writes one file under `base`, creating its directories.
pub fn write_file(base: &Path, rel: &str, text: &str) {
    let path = base.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
