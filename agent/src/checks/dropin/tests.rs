//! The drop-in check through `run_check` on the fixture hosts and on trees built here.

use std::os::unix::fs::PermissionsExt;

use vigil_shared::{Status, Value};

use super::*;
use crate::checks::support::testing::*;
use crate::settings::ChecksConfig;

#[test]
fn healthy_host_forwards_fresh_evidence_with_its_controls() {
    let r = run_fixture(&DropIn, "healthy");
    assert_well_formed(&r);
    assert_eq!(
        r.keys().collect::<Vec<_>>(),
        [
            "dropin.backup_nightly",
            "dropin.files",
            "dropin.security_training"
        ]
    );
    assert_eq!(status(&r, FILES), Status::Pass);
    let backup = &r["dropin.backup_nightly"];
    assert_eq!(backup.status, Status::Pass);
    assert_eq!(backup.controls, ["A.8.13"]);
    assert_eq!(
        backup.summary,
        "Nightly off-site backup: restic snapshot 4f1a2c9e of /etc, /srv and the database dumps completed and verified"
    );
    assert_eq!(backup.values["age_hours"], Value::Float(9.5));
    assert_eq!(backup.values["verified"], Value::Bool(true));
    assert_eq!(backup.evidence.checked.len(), 3);
    assert_eq!(
        backup.evidence.sources,
        ["/var/lib/vigil/evidence.d/backup-nightly.json"]
    );
    assert_eq!(r["dropin.security_training"].controls, ["A.6.3"]);
    assert_eq!(r["dropin.security_training"].status, Status::Pass);
}

#[test]
fn misconfigured_host_has_stale_failing_broken_and_misnamed_files() {
    let r = run_fixture(&DropIn, "misconfigured");
    assert_well_formed(&r);
    assert_eq!(
        r.keys().collect::<Vec<_>>(),
        [
            "dropin.db_backup",
            "dropin.edr_health",
            "dropin.files",
            "dropin.security_training"
        ]
    );
    let edr = &r["dropin.edr_health"];
    assert_eq!(edr.status, Status::Fail);
    assert_eq!(edr.controls, ["A.8.7", "A.8.16"]);
    assert_eq!(
        edr.summary,
        "EDR sensor health: stale evidence, 748 hours old (allowed 24)"
    );
    assert_eq!(
        reason(
            &r,
            "dropin.edr_health",
            "/var/lib/vigil/evidence.d/edr-health.json"
        ),
        "stale: observed 2026-05-01 08:00 UTC (748 hours ago, by its observed_at), older than its max_age_hours of 24"
    );
    let training = &r["dropin.security_training"];
    assert_eq!(training.status, Status::Fail);
    assert_eq!(offenders(&r, "dropin.security_training"), ["dave"]);
    let broken = &r["dropin.db_backup"];
    assert_eq!(broken.status, Status::Error);
    assert_eq!(
        broken.controls,
        ["A.5.36"],
        "unparseable: the fallback controls"
    );
    assert!(
        broken
            .error
            .as_deref()
            .unwrap()
            .starts_with("/var/lib/vigil/evidence.d/db-backup.json: not valid drop-in JSON: expected `,` or `}` at line 7"),
        "{:?}",
        broken.error
    );
    assert_eq!(status(&r, FILES), Status::Fail);
    assert_eq!(
        offenders(&r, FILES),
        [
            "/var/lib/vigil/evidence.d/Weekly Report.json",
            "/var/lib/vigil/evidence.d/db-backup.json"
        ]
    );
}

#[test]
fn minimal_host_has_no_drop_in_directory() {
    let r = run_fixture(&DropIn, "minimal");
    assert_eq!(r.len(), 1);
    assert_eq!(status(&r, FILES), Status::NoData);
}

const FILE: &str = r#"{"schema": "vigil.dropin.v1", "title": "T", "controls": ["A.8.13"],
  "status": "pass", "summary": "ok", "max_age_hours": 1}"#;

#[test]
fn the_modification_time_dates_files_without_observed_at() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("var/lib/vigil/evidence.d/job.json", FILE)]);
    let root = crate::hostroot::HostRoot::new(dir.path()).unwrap();
    let settings = ChecksConfig::default();
    let ctx = CheckContext {
        root: &root,
        now: Utc::now(),
        settings: &settings,
        cache_dir: None,
    };
    let r: Results = crate::checks::run_check(&DropIn, &ctx)
        .into_iter()
        .map(|r| (r.check.clone(), r))
        .collect();
    assert_eq!(r["dropin.job"].status, Status::Pass);
    // An hour and a half later it is stale.
    let later = CheckContext {
        now: Utc::now() + chrono::Duration::minutes(90),
        ..ctx
    };
    let r: Results = crate::checks::run_check(&DropIn, &later)
        .into_iter()
        .map(|r| (r.check.clone(), r))
        .collect();
    assert_eq!(r["dropin.job"].status, Status::Fail);
    assert!(
        r["dropin.job"].evidence.offenders[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("by its file modification time")
    );
}

#[test]
fn collisions_future_dates_and_world_writable_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = "var/lib/vigil/evidence.d";
    let future = FILE.replace(
        "\"max_age_hours\"",
        "\"observed_at\": \"2027-01-01T00:00:00Z\", \"max_age_hours\"",
    );
    write_tree(
        dir.path(),
        &[
            (&format!("{d}/a-b.json"), FILE),
            (&format!("{d}/a_b.json"), FILE),
            (&format!("{d}/future.json"), &future),
            (&format!("{d}/notes.txt"), "ignored"),
        ],
    );
    let full = dir.path().join(d);
    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let mut settings = ChecksConfig::default();
    settings.dropin.max_files = 2;
    let r = run_with(&DropIn, dir.path(), &settings);
    assert_eq!(
        offenders(&r, FILES),
        [
            "/var/lib/vigil/evidence.d",
            "/var/lib/vigil/evidence.d/a_b.json",
            "/var/lib/vigil/evidence.d/future.json"
        ]
    );
    assert_eq!(
        reason(&r, FILES, "/var/lib/vigil/evidence.d"),
        "mode 1777: every local user can write evidence here, so anyone can forge it"
    );
    assert!(
        reason(&r, FILES, "/var/lib/vigil/evidence.d/future.json").starts_with("more than 2 files")
    );
    settings.dropin.max_files = 10;
    let r = run_with(&DropIn, dir.path(), &settings);
    assert_eq!(r["dropin.future"].status, Status::Fail);
    assert_eq!(
        r["dropin.future"].summary,
        "T: evidence dated in the future"
    );
}

#[test]
fn stray_outputs_of_a_dynamic_check_are_validated() {
    // A file's controls are validated at parse time; a result can never carry unknown ones.
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[(
            "var/lib/vigil/evidence.d/x.json",
            &FILE.replace("A.8.13", "A.9.99"),
        )],
    );
    let r = run(&DropIn, dir.path());
    assert_eq!(r["dropin.x"].status, Status::Error);
    assert_eq!(r["dropin.x"].controls, ["A.5.36"]);
}

/// `shared/DROPIN.md` stays true: its example parses, and its schema's control pattern
/// accepts exactly the Annex A catalogue.
#[test]
fn the_format_document_matches_the_code() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/DROPIN.md"),
    )
    .unwrap();
    let example = doc
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap();
    let parsed = format::parse(example).unwrap();
    assert_eq!(parsed.controls, ["A.8.13"]);
    let pattern = doc
        .lines()
        .find(|l| l.contains("\"pattern\""))
        .and_then(|l| l.split("\"pattern\": \"").nth(1))
        .and_then(|s| s.split("\"}").next())
        .unwrap()
        .replace("\\\\", "\\");
    let re = regex::Regex::new(&pattern).unwrap();
    for c in vigil_shared::controls::all() {
        assert!(re.is_match(&c.id), "{} rejected", c.id);
    }
    for bad in [
        "A.5.38", "A.5.0", "A.6.9", "A.7.15", "A.8.35", "8.8", "A.9.1",
    ] {
        assert!(!re.is_match(bad), "{bad} accepted");
    }
    let schema: serde_json::Value = serde_json::from_str(
        doc.split("## JSON Schema\n\n```json\n")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(schema["properties"]["schema"]["const"], format::SCHEMA);
}
