//! The drop-in evidence file format (`vigil.dropin.v1`, documented with its JSON schema in
//! `shared/DROPIN.md`): strict parsing and validation into what the check reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use vigil_shared::{Status, Subject, Value};

/// The `schema` value of every v1 drop-in file.
pub const SCHEMA: &str = "vigil.dropin.v1";

/// Most subjects (offenders and checked together) one file may carry.
pub const MAX_SUBJECTS: usize = 10_000;
/// Most values one file may carry.
pub const MAX_VALUES: usize = 256;

/// A drop-in file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropInFile {
    pub schema: String,
    /// What the evidence is about, for people (`Nightly database backup`).
    pub title: String,
    /// Annex A 2022 controls the evidence is for (`A.8.13`).
    pub controls: Vec<String>,
    /// `pass`, `fail`, `no_data` or `error`, as the writer judged it.
    pub status: Status,
    /// One line: why it passed or failed.
    pub summary: String,
    /// When the writer observed the facts (RFC 3339); the file's modification time when
    /// absent.
    #[serde(default)]
    pub observed_at: Option<DateTime<Utc>>,
    /// Age in hours after which the evidence is stale and fails.
    pub max_age_hours: f64,
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
    #[serde(default)]
    pub offenders: Vec<Subject>,
    #[serde(default)]
    pub checked: Vec<Subject>,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not valid drop-in JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Invalid(String),
}

/// Parses and validates one file's text.
pub fn parse(text: &str) -> Result<DropInFile, FormatError> {
    let file: DropInFile =
        serde_json::from_str(text).map_err(|e| FormatError::Json(e.to_string()))?;
    let mut problems = Vec::new();
    if file.schema != SCHEMA {
        problems.push(format!(
            "schema {:?} is not supported; use {SCHEMA:?}",
            file.schema
        ));
    }
    if file.title.trim().is_empty() || file.title.len() > 200 {
        problems.push("title must be 1-200 characters".to_string());
    }
    if file.summary.trim().is_empty() || file.summary.len() > 1000 {
        problems.push("summary must be 1-1000 characters".to_string());
    }
    if file.controls.is_empty() {
        problems.push("controls must name at least one Annex A control (\"A.8.13\")".to_string());
    }
    for c in &file.controls {
        if !vigil_shared::controls::is_known(c) {
            problems.push(format!(
                "control {c:?} is not an ISO/IEC 27001:2022 Annex A control (A.5.1 … A.8.34)"
            ));
        }
    }
    if !(file.max_age_hours.is_finite() && file.max_age_hours > 0.0) {
        problems.push("max_age_hours must be a positive number".to_string());
    }
    if file.status == Status::Fail && file.offenders.is_empty() {
        problems.push("a failing result must name at least one offender".to_string());
    }
    if file.offenders.len() + file.checked.len() > MAX_SUBJECTS {
        problems.push(format!(
            "at most {MAX_SUBJECTS} offenders and checked subjects"
        ));
    }
    if file.values.len() > MAX_VALUES {
        problems.push(format!("at most {MAX_VALUES} values"));
    }
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(FormatError::Invalid(problems.join("; ")))
    }
}

/// The controls a broken file declares, when they can still be read: the check maps the
/// error result to them rather than to the fallback.
pub fn salvage_controls(text: &str) -> Vec<String> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    json.get("controls")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str())
                .filter(|c| vigil_shared::controls::is_known(c))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The result id of a file name (`backup-nightly.json` → `dropin.backup_nightly`), or why
/// the name cannot be one.
pub fn id_for(file_name: &str) -> Result<String, String> {
    let stem = file_name
        .strip_suffix(".json")
        .ok_or_else(|| "not a .json file".to_string())?;
    let ok = !stem.is_empty()
        && stem.len() <= 64
        && stem.as_bytes()[0].is_ascii_lowercase()
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(
            "the name must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter, plus .json"
                .to_string(),
        );
    }
    Ok(format!("dropin.{}", stem.replace('-', "_")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "schema": "vigil.dropin.v1",
        "title": "Nightly database backup",
        "controls": ["A.8.13"],
        "status": "pass",
        "summary": "3 databases dumped to the off-site repository",
        "observed_at": "2026-06-01T02:15:00Z",
        "max_age_hours": 26,
        "values": {"databases": 3, "bytes": 1048576, "repository": "s3://backups"},
        "checked": [{"kind": "database", "id": "orders"}]
    }"#;

    #[test]
    fn a_good_file_parses() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.controls, ["A.8.13"]);
        assert_eq!(f.status, Status::Pass);
        assert_eq!(f.values["databases"], Value::Int(3));
        assert_eq!(f.checked[0].id, "orders");
        assert_eq!(
            f.observed_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-06-01T02:15:00+00:00")
        );
    }

    #[test]
    fn every_problem_is_named() {
        let bad = GOOD
            .replace("vigil.dropin.v1", "v0")
            .replace("\"A.8.13\"", "\"8.13\"")
            .replace("\"max_age_hours\": 26", "\"max_age_hours\": 0")
            .replace("\"pass\"", "\"fail\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "schema \"v0\" is not supported; use \"vigil.dropin.v1\"; control \"8.13\" is not an \
             ISO/IEC 27001:2022 Annex A control (A.5.1 … A.8.34); max_age_hours must be a positive \
             number; a failing result must name at least one offender"
        );
        let e = parse(&GOOD.replace("\"summary\"", "\"sumary\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("not valid drop-in JSON: unknown field `sumary`"),
            "{e}"
        );
        assert!(e.contains("line 6"), "{e}");
        assert!(parse(&GOOD.replace("\"pass\"", "\"ok\"")).is_err());
        assert!(parse(&GOOD[..50]).is_err());
        assert!(parse("").is_err());
        assert!(parse("\u{0}\u{ff}").is_err());
        assert_eq!(
            salvage_controls(&GOOD.replace("\"pass\"", "\"ok\"")),
            ["A.8.13"]
        );
        assert!(salvage_controls("{").is_empty());
    }

    #[test]
    fn ids_from_file_names() {
        assert_eq!(
            id_for("backup-nightly.json").unwrap(),
            "dropin.backup_nightly"
        );
        assert_eq!(
            id_for("hr_training2026.json").unwrap(),
            "dropin.hr_training2026"
        );
        for bad in [
            "Bad Name.json",
            "9lives.json",
            ".json",
            "x.json.tmp",
            "ÄÖ.json",
            "a.b.json",
        ] {
            assert!(id_for(bad).is_err(), "{bad}");
        }
        assert!(vigil_shared::report::is_valid_check_id(
            &id_for(&format!("{}.json", "a".repeat(64))).unwrap()
        ));
    }
}
