//! Evaluation: pure functions from (the ISMS definition, the latest facts, the previous state,
//! now) to rule verdicts, control status, KPI values and evaluations, objective status and
//! nonconformity transitions. Nothing here does I/O or reads a clock: the engine
//! (`crate::engine`) loads the inputs, calls these functions with its clock, and stores what
//! they return, so every function is tested with tables and a fixed `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil_shared::Status;

use crate::isms::selector::{self, HostLabels};
use crate::isms::{Grade, ImplementationStatus, Isms};

pub mod controls;
pub mod kpis;
pub mod nonconformities;
pub mod objectives;
pub mod verdicts;

/// What evaluation needs to know about one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    pub machine_id: String,
    pub hostname: String,
    /// Agent labels, operator-assigned labels (which win) and the built-in labels.
    pub labels: HostLabels,
    /// Collector clock at the latest report.
    pub last_seen: DateTime<Utc>,
    /// Latest result per check output.
    pub results: BTreeMap<String, ResultFacts>,
}

/// The parts of a stored result that rules and KPIs read.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultFacts {
    pub status: Status,
    pub observed_at: DateTime<Utc>,
    pub controls: Vec<String>,
    pub values: BTreeMap<String, vigil_shared::Value>,
    /// Ids of the offenders in the evidence.
    pub offenders: Vec<String>,
    pub checked: usize,
    pub error: Option<String>,
}

/// Builds the label set selectors see: agent labels, then operator-assigned labels (which win
/// over the agent's), then the built-ins.
pub fn host_labels(
    agent_labels: &BTreeMap<String, String>,
    assigned: &BTreeMap<String, String>,
    hostname: &str,
    machine_id: &str,
    agent: &str,
    os_id: &str,
    os_version: &str,
) -> HostLabels {
    let mut labels = agent_labels.clone();
    labels.extend(assigned.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels.insert("hostname".into(), hostname.into());
    labels.insert("machine_id".into(), machine_id.into());
    labels.insert("agent".into(), agent.into());
    labels.insert("os".into(), os_id.into());
    labels.insert("os_version".into(), os_version.into());
    labels
}

/// Clause 4.3: is this host judged?
pub fn in_scope(isms: &Isms, labels: &HostLabels) -> bool {
    let included =
        isms.scope.include.is_empty() || selector::any_matches(&isms.scope.include, labels);
    included && !selector::any_matches(&isms.scope.exclude, labels)
}

/// A rule's judgement of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    NoData,
    Excepted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::NoData => "no_data",
            Verdict::Excepted => "excepted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pass" => Verdict::Pass,
            "fail" => Verdict::Fail,
            "error" => Verdict::Error,
            "no_data" => Verdict::NoData,
            "excepted" => Verdict::Excepted,
            _ => return None,
        })
    }

    /// Pass and excepted count as compliant.
    pub fn is_green(self) -> bool {
        matches!(self, Verdict::Pass | Verdict::Excepted)
    }
}

/// Identifies a verdict: (machine id, rule id).
pub type VerdictKey = (std::sync::Arc<str>, std::sync::Arc<str>);

/// Verdicts by (machine id, rule id). A fast non-cryptographic hash: the keys come from
/// authenticated agents, and half a million lookups per evaluation dominate its cost.
pub type VerdictMap =
    std::collections::HashMap<VerdictKey, VerdictState, rustc_hash::FxBuildHasher>;

/// The state of one rule on one host after an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictState {
    // Shared strings: a large fleet has half a million verdicts per evaluation, and each holds
    // its host, its rule and (for the common passing case) the rule's one reason.
    pub machine_id: std::sync::Arc<str>,
    pub rule: std::sync::Arc<str>,
    pub verdict: Verdict,
    /// Why, in one line.
    pub reason: std::sync::Arc<str>,
    /// When the result judged was observed (agent clock); `None` without a result.
    pub observed_at: Option<DateTime<Utc>>,
    /// First failing observation of the current failure (kept through error/no_data).
    pub failing_since: Option<DateTime<Utc>>,
    /// When each current offender was first seen failing (for `grace_scope = "offender"`).
    pub offenders_first_seen: BTreeMap<String, DateTime<Utc>>,
    /// When the grace period ran out: the failure is overdue and raises a nonconformity.
    pub overdue_since: Option<DateTime<Utc>>,
    /// The exception that applies, if any.
    pub exception: Option<String>,
    /// Since when the verdict (and overdue state) has been what it is.
    pub since: DateTime<Utc>,
}

impl VerdictState {
    /// True when a verdict change is worth a history row: verdict, overdue state or exception.
    pub fn differs_from(&self, other: &VerdictState) -> bool {
        self.verdict != other.verdict
            || self.overdue_since.is_some() != other.overdue_since.is_some()
            || self.exception != other.exception
    }
}

/// A control's implementation status, derived from evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlState {
    pub control: String,
    pub status: ImplementationStatus,
    /// Why, in one line.
    pub reason: String,
    /// In-scope hosts passing / failing the control's rules (host counted once per rule).
    pub passing: u64,
    pub failing: u64,
    /// Latest results mapped to the control on in-scope hosts, plus manual evidence items.
    pub evidence_count: u64,
    pub last_evidence: Option<DateTime<Utc>>,
}

impl ControlState {
    pub fn differs_from(&self, other: &ControlState) -> bool {
        self.status != other.status
            || self.passing != other.passing
            || self.failing != other.failing
    }
}

/// One measurement of a KPI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiValue {
    pub kpi: String,
    pub at: DateTime<Utc>,
    /// `None` when nothing could be measured (no in-scope host reports the value).
    pub value: Option<f64>,
    /// For shares and counts: how many hosts counted, out of how many.
    pub numerator: Option<u64>,
    pub denominator: Option<u64>,
    /// In-scope hosts at the time of measurement.
    pub hosts_in_scope: u64,
}

/// Outcome of analysing a KPI against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiStatus {
    Met,
    Tolerated,
    Missed,
    NoData,
}

impl KpiStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KpiStatus::Met => "met",
            KpiStatus::Tolerated => "tolerated",
            KpiStatus::Missed => "missed",
            KpiStatus::NoData => "no_data",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "met" => KpiStatus::Met,
            "tolerated" => KpiStatus::Tolerated,
            "missed" => KpiStatus::Missed,
            "no_data" => KpiStatus::NoData,
            _ => return None,
        })
    }
}

/// One analysis and evaluation of a KPI (Clause 9.1 e).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiEvaluation {
    pub kpi: String,
    pub at: DateTime<Utc>,
    pub status: KpiStatus,
    /// The measured value analysed.
    pub value: Option<f64>,
    pub target: f64,
    /// Misses in a row, this one included.
    pub consecutive_misses: u32,
    /// Met analyses in a row, this one included.
    pub consecutive_met: u32,
}

/// Clause 6.2 objective status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveStatus {
    Achieved,
    OnTrack,
    AtRisk,
    Missed,
    NoData,
}

impl ObjectiveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectiveStatus::Achieved => "achieved",
            ObjectiveStatus::OnTrack => "on_track",
            ObjectiveStatus::AtRisk => "at_risk",
            ObjectiveStatus::Missed => "missed",
            ObjectiveStatus::NoData => "no_data",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "achieved" => ObjectiveStatus::Achieved,
            "on_track" => ObjectiveStatus::OnTrack,
            "at_risk" => ObjectiveStatus::AtRisk,
            "missed" => ObjectiveStatus::Missed,
            "no_data" => ObjectiveStatus::NoData,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveState {
    pub objective: String,
    pub status: ObjectiveStatus,
    pub reason: String,
}

/// Where a nonconformity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NcSource {
    /// A rule failing on a host past its grace period.
    Rule,
    /// A KPI missing its target for N consecutive analyses.
    Kpi,
    /// An in-scope host that stopped reporting (a monitoring blind spot, A.8.16).
    BlindSpot,
    /// A finding of an internal audit (9.2).
    Audit,
}

impl NcSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NcSource::Rule => "rule",
            NcSource::Kpi => "kpi",
            NcSource::BlindSpot => "blind_spot",
            NcSource::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rule" => NcSource::Rule,
            "kpi" => NcSource::Kpi,
            "blind_spot" => NcSource::BlindSpot,
            "audit" => NcSource::Audit,
            _ => return None,
        })
    }
}

/// Clause 10.2 lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NcState {
    Open,
    ActionPlanned,
    Resolved,
    Verified,
    Closed,
}

impl NcState {
    pub fn as_str(self) -> &'static str {
        match self {
            NcState::Open => "open",
            NcState::ActionPlanned => "action_planned",
            NcState::Resolved => "resolved",
            NcState::Verified => "verified",
            NcState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => NcState::Open,
            "action_planned" => NcState::ActionPlanned,
            "resolved" => NcState::Resolved,
            "verified" => NcState::Verified,
            "closed" => NcState::Closed,
            _ => return None,
        })
    }

    /// Open and action-planned nonconformities still need correction.
    pub fn is_open(self) -> bool {
        matches!(self, NcState::Open | NcState::ActionPlanned)
    }
}

/// A nonconformity and its corrective-action record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nonconformity {
    /// Assigned by the store when first saved (0 before).
    pub id: u64,
    /// Deduplication key: one nonconformity per source and subject is active at a time.
    pub key: String,
    pub source: NcSource,
    pub title: String,
    pub grade: Grade,
    pub state: NcState,
    pub controls: Vec<String>,
    /// The host concerned (rule and blind-spot sources).
    pub machine_id: Option<String>,
    pub hostname: Option<String>,
    /// The rule, KPI or audit finding concerned.
    pub subject: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub owner: Option<String>,
    pub root_cause: Option<String>,
    pub corrective_action: Option<String>,
    pub due: Option<chrono::NaiveDate>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
    /// Green measurements since resolution (for verification).
    pub green_streak: u32,
    /// The last measurement counted in `green_streak` (so one measurement counts once).
    pub last_green: Option<DateTime<Utc>>,
    /// Earlier closed nonconformity with the same key, when this one is a recurrence.
    pub recurrence_of: Option<u64>,
}

/// What happened to a nonconformity; stored append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NcEventKind {
    Opened,
    ActionPlanned,
    Updated,
    Resolved,
    Reopened,
    Verified,
    Closed,
}

impl NcEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NcEventKind::Opened => "opened",
            NcEventKind::ActionPlanned => "action_planned",
            NcEventKind::Updated => "updated",
            NcEventKind::Resolved => "resolved",
            NcEventKind::Reopened => "reopened",
            NcEventKind::Verified => "verified",
            NcEventKind::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "opened" => NcEventKind::Opened,
            "action_planned" => NcEventKind::ActionPlanned,
            "updated" => NcEventKind::Updated,
            "resolved" => NcEventKind::Resolved,
            "reopened" => NcEventKind::Reopened,
            "verified" => NcEventKind::Verified,
            "closed" => NcEventKind::Closed,
            _ => return None,
        })
    }
}

/// One transition, with who made it and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NcEvent {
    pub at: DateTime<Utc>,
    /// `vigil` for automatic transitions, otherwise the principal's name.
    pub actor: String,
    pub kind: NcEventKind,
    pub from: Option<NcState>,
    pub to: NcState,
    pub note: String,
}

/// The actor recorded for automatic transitions.
pub const SYSTEM_ACTOR: &str = "vigil";

#[cfg(test)]
pub(crate) mod tests {
    //! Shared fixtures for the evaluation tests: the default pack plus one exception.

    use std::path::Path;

    use super::*;

    pub(crate) const EXCEPTION: &str = r#"
[[exception]]
id = "EXC-1"
rule = "crypto.root-encrypted"
hosts = [{ hostname = "legacy-db-01" }]
justification = "RAID controller without dm-crypt support; replacement ordered"
approver = "ciso@example.com"
approved = 2026-05-01
expires = 2027-01-31
"#;

    /// The default pack's files, with `exceptions.toml` replaced by [`EXCEPTION`] and `extra`
    /// applied as (file, from, to) edits.
    pub(crate) fn pack_files(edits: &[(&str, &str, &str)]) -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") {
                files.push((name, std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
        for entry in std::fs::read_dir(dir.join("rules")).unwrap() {
            let entry = entry.unwrap();
            files.push((
                format!("rules/{}", entry.file_name().to_string_lossy()),
                std::fs::read_to_string(entry.path()).unwrap(),
            ));
        }
        for (name, text) in &mut files {
            if name == "exceptions.toml" {
                *text = EXCEPTION.to_string();
            }
            for (file, from, to) in edits {
                if name == file {
                    assert!(text.contains(from), "{file} lacks {from:?}");
                    *text = text.replacen(from, to, 1);
                }
            }
        }
        files
    }

    pub(crate) fn isms_with(edits: &[(&str, &str, &str)]) -> Isms {
        let files = pack_files(edits);
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        match crate::isms::load_sources(&borrowed) {
            Ok((isms, _)) => isms,
            Err(problems) => panic!("{problems:#?}"),
        }
    }

    pub(crate) fn fixture_isms() -> Isms {
        isms_with(&[])
    }

    pub(crate) fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    pub(crate) fn result_with(
        status: Status,
        observed: &str,
        values: &[(&str, i64)],
        offenders: &[&str],
    ) -> ResultFacts {
        ResultFacts {
            status,
            observed_at: t(observed),
            controls: vec!["A.8.8".into()],
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), vigil_shared::Value::Int(*v)))
                .collect(),
            offenders: offenders.iter().map(|s| s.to_string()).collect(),
            checked: 0,
            error: None,
        }
    }

    /// An in-scope (env = prod) host with the given results.
    pub(crate) fn host(id: &str, results: &[(&str, ResultFacts)]) -> HostFacts {
        let labels = host_labels(
            &BTreeMap::from([("env".to_string(), "prod".to_string())]),
            &BTreeMap::new(),
            id,
            id,
            "agent-1",
            "debian",
            "12",
        );
        HostFacts {
            machine_id: id.into(),
            hostname: id.into(),
            labels,
            last_seen: results
                .iter()
                .map(|(_, r)| r.observed_at)
                .max()
                .unwrap_or_default(),
            results: results
                .iter()
                .map(|(k, r)| (k.to_string(), r.clone()))
                .collect(),
        }
    }
}
