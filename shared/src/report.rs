//! Wire protocol v1: the report an agent sends to the collector.
//!
//! A report is one JSON document (gzip-compressed on the wire, see [`crate::codec`]) holding
//! the agent, the host it describes, a batch id, a per-agent sequence number and one result per
//! check output. `shared/PROTOCOL.md` documents every field; `shared/tests/golden/` keeps an
//! example under test. These are the only serde types that cross the network.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::controls;

/// The `schema` value of every v1 report.
pub const SCHEMA_V1: &str = "vigil.report.v1";

/// Largest number of results one report may carry.
pub const MAX_RESULTS: usize = 2_000;
/// Largest number of subjects (offenders + checked) in one result's evidence.
pub const MAX_SUBJECTS_PER_RESULT: usize = 100_000;

/// One report: everything an agent observed in one collection round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`SCHEMA_V1`] for this version of the protocol.
    pub schema: String,
    pub agent: AgentInfo,
    pub host: HostIdentity,
    /// Unique id of this report (a UUID); retries of the same report keep it.
    pub batch_id: String,
    /// Per-agent sequence number, starting at 1 and increasing by one per report.
    pub seq: u64,
    /// When the agent built the report (agent clock).
    pub sent_at: DateTime<Utc>,
    pub results: Vec<CheckResult>,
}

/// The agent that produced a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    /// The agent's enrolled name; the collector checks it against the credential used.
    pub id: String,
    /// The agent's software version.
    pub version: String,
    /// The agent's view of its own health, when it runs as a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<AgentHealth>,
}

/// Self-observation an agent attaches to each report in `run` mode. Fields added after the
/// first release default when absent, so reports of older agents still parse.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentHealth {
    /// Reports waiting in the on-disk spool, this one excluded.
    pub spool_pending: u64,
    /// Reports the spool had to discard since the agent was installed while they held the
    /// newest result of some check (spool full, or a corrupt record): real evidence gaps.
    pub spool_dropped_total: u64,
    /// Check runs that failed or timed out since the agent started.
    pub check_failures_total: u64,
    /// Bytes on disk of the waiting reports.
    #[serde(default)]
    pub spool_bytes: u64,
    /// Reports a full spool discarded since the agent was installed because newer reports in
    /// the spool carry a newer result of every check they held: the latest state of every
    /// check still reaches the collector, only intermediate history is missing.
    #[serde(default)]
    pub spool_compacted_total: u64,
    /// When this agent process started (agent clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Resident memory of the agent process now and at its peak, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// CPU time (user + system) the agent process used since it started, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms_total: Option<u64>,
    /// Per check (by check name): its latest run and its failures since the agent started.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, CheckHealth>,
}

/// How one check has been behaving in this agent process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckHealth {
    /// Duration of its latest run, in milliseconds (the timeout when it timed out).
    pub last_duration_ms: u64,
    /// Runs that crashed, timed out or were skipped because the previous one still ran.
    pub failures_total: u64,
    /// Of those, runs abandoned at the timeout.
    pub timeouts_total: u64,
}

/// Who the host is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostIdentity {
    /// The host's stable id: `/etc/machine-id` where present.
    pub machine_id: String,
    pub hostname: String,
    pub os: OsRelease,
    /// Running kernel release (`uname -r`); absent when auditing an image that is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Labels from the agent's configuration (`env = "prod"`), used for scope selectors.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The host's operating system, from `os-release(5)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsRelease {
    /// `ID` (`debian`, `ubuntu`, `rhel`); empty when unknown.
    pub id: String,
    /// `ID_LIKE` split on spaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// `VERSION_ID` (`12`, `22.04`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version_id: String,
    /// `PRETTY_NAME`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretty_name: String,
}

/// Outcome of one check output on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Evidence was collected and shows the expected state.
    Pass,
    /// Evidence was collected and shows a problem; the evidence names the offenders.
    Fail,
    /// The check could not run (unreadable file, parse failure); `error` says why.
    Error,
    /// The host holds nothing this check can judge (no package manager, no swap file…).
    NoData,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::NoData => "no_data",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pass" => Ok(Status::Pass),
            "fail" => Ok(Status::Fail),
            "error" => Ok(Status::Error),
            "no_data" => Ok(Status::NoData),
            other => Err(format!("unknown status {other:?}")),
        }
    }
}

/// A typed value: the measurements rules and KPIs read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Text(v) => f.write_str(v),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

/// The result of one check output on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// Stable dotted id: `<check>.<output>`, e.g. `accounts.uid0`.
    pub check: String,
    /// Annex A 2022 controls this result is evidence for (`A.8.8`).
    pub controls: Vec<String>,
    /// When the facts were read (agent clock).
    pub observed_at: DateTime<Utc>,
    /// How long the check took, in milliseconds.
    pub duration_ms: u64,
    pub status: Status,
    /// One line for people: why it passed or failed.
    pub summary: String,
    /// Typed measurements (`pending_updates = 12`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
    /// Why the check could not run; set when `status` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The subjects a result looked at: offenders apart from what was merely checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Subjects that make the result fail, each with its reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offenders: Vec<Subject>,
    /// Subjects that were examined and found in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checked: Vec<Subject>,
    /// Files (root-relative) the facts were read from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

impl Evidence {
    /// True when no subject and no source is recorded.
    pub fn is_empty(&self) -> bool {
        self.offenders.is_empty() && self.checked.is_empty() && self.sources.is_empty()
    }
}

/// One thing a check examined: an account, a package, a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// `account`, `package`, `filesystem`, `sudo_rule`…
    pub kind: String,
    /// The subject's name (`toor`, `openssl:amd64`, `/home`).
    pub id: String,
    /// For offenders: what is wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, Value>,
}

impl Subject {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Subject {
            kind: kind.into(),
            id: id.into(),
            reason: None,
            facts: BTreeMap::new(),
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn fact(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.facts.insert(key.to_string(), value.into());
        self
    }
}

/// One problem found in a report, with the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// True for `[a-z0-9][a-z0-9_-]*` identifiers up to `max` bytes.
fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && (b == b'_' || b == b'-' || b == b'.'))
        })
}

/// True for dotted check ids: `accounts.uid0`, `packages.pending_security`.
pub fn is_valid_check_id(id: &str) -> bool {
    let mut parts = id.split('.');
    let Some(first) = parts.next() else {
        return false;
    };
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let rest: Vec<&str> = parts.collect();
    id.len() <= 128
        && segment_ok(first)
        && first.as_bytes()[0].is_ascii_lowercase()
        && !rest.is_empty()
        && rest.iter().all(|s| segment_ok(s))
}

/// True for agent ids: lowercase letters, digits, `-`, `_`, `.`; at most 64 bytes.
pub fn is_valid_agent_id(id: &str) -> bool {
    is_slug(id, 64)
}

impl Report {
    /// Checks everything serde cannot: the schema version, id formats, known control ids,
    /// unique check ids, bounds. Returns every problem found, not only the first.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut errors = Vec::new();
        let mut err =
            |path: String, message: String| errors.push(ValidationError { path, message });

        if self.schema != SCHEMA_V1 {
            err(
                "schema".into(),
                format!(
                    "unsupported schema {:?}; this collector accepts {SCHEMA_V1:?}",
                    self.schema
                ),
            );
        }
        if !is_valid_agent_id(&self.agent.id) {
            err(
                "agent.id".into(),
                "must be 1-64 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit"
                    .into(),
            );
        }
        if self.agent.version.is_empty() || self.agent.version.len() > 64 {
            err("agent.version".into(), "must be 1-64 characters".into());
        }
        let machine_id_ok = !self.host.machine_id.is_empty()
            && self.host.machine_id.len() <= 128
            && self
                .host
                .machine_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !machine_id_ok {
            err(
                "host.machine_id".into(),
                "must be 1-128 characters of letters, digits, '-', '_', '.'".into(),
            );
        }
        if self.host.hostname.is_empty() || self.host.hostname.len() > 255 {
            err("host.hostname".into(), "must be 1-255 characters".into());
        }
        for key in self.host.labels.keys() {
            if !is_slug(key, 64) {
                err(
                    format!("host.labels.{key}"),
                    "label names must be 1-64 characters of a-z, 0-9, '-', '_', '.'".into(),
                );
            }
        }
        if self.host.labels.values().any(|v| v.len() > 256) {
            err(
                "host.labels".into(),
                "label values must be at most 256 bytes".into(),
            );
        }
        if uuid::Uuid::parse_str(&self.batch_id).is_err() {
            err("batch_id".into(), "must be a UUID".into());
        }
        if self.seq == 0 {
            err("seq".into(), "sequence numbers start at 1".into());
        }
        if self.seq > i64::MAX as u64 {
            err("seq".into(), "sequence number out of range".into());
        }
        if self.results.len() > MAX_RESULTS {
            err(
                "results".into(),
                format!(
                    "at most {MAX_RESULTS} results per report, got {}",
                    self.results.len()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, result) in self.results.iter().enumerate() {
            let at = |field: &str| format!("results[{i}].{field}");
            if !is_valid_check_id(&result.check) {
                err(
                    at("check"),
                    format!(
                        "{:?} is not a dotted check id such as \"accounts.uid0\"",
                        result.check
                    ),
                );
            } else if !seen.insert(result.check.as_str()) {
                err(
                    at("check"),
                    format!("{:?} appears twice in one report", result.check),
                );
            }
            for (j, control) in result.controls.iter().enumerate() {
                if !controls::is_known(control) {
                    err(
                        format!("results[{i}].controls[{j}]"),
                        format!(
                            "{control:?} is not an ISO/IEC 27001:2022 Annex A control id (A.5.1 … A.8.34)"
                        ),
                    );
                }
            }
            if result.status == Status::Error && result.error.is_none() {
                err(
                    at("error"),
                    "a result with status error must say why".into(),
                );
            }
            let subjects = result.evidence.offenders.len() + result.evidence.checked.len();
            if subjects > MAX_SUBJECTS_PER_RESULT {
                err(
                    at("evidence"),
                    format!(
                        "at most {MAX_SUBJECTS_PER_RESULT} subjects per result, got {subjects}"
                    ),
                );
            }
            if result.status == Status::Fail && result.evidence.offenders.is_empty() {
                // A failure must name what to fix; an agent that cannot name it reports error.
                err(
                    at("evidence.offenders"),
                    "a failing result must name at least one offender".into(),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(check: &str, status: Status) -> CheckResult {
        CheckResult {
            check: check.into(),
            controls: vec!["A.8.8".into()],
            observed_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            duration_ms: 3,
            status,
            summary: "ok".into(),
            values: BTreeMap::new(),
            evidence: Evidence::default(),
            error: None,
        }
    }

    fn report() -> Report {
        Report {
            schema: SCHEMA_V1.into(),
            agent: AgentInfo {
                id: "web-01".into(),
                version: "0.1.0".into(),
                health: None,
            },
            host: HostIdentity {
                machine_id: "3d1219c7c4c5404aaa1f6d2a48adfda4".into(),
                hostname: "web-01".into(),
                os: OsRelease::default(),
                kernel: None,
                labels: BTreeMap::new(),
            },
            batch_id: "6f1c1b0e-2f7b-4d8e-9a51-3c1f0b9d2a10".into(),
            seq: 1,
            sent_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            results: vec![result("packages.pending_updates", Status::Pass)],
        }
    }

    #[test]
    fn a_well_formed_report_validates() {
        assert_eq!(report().validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut r = report();
        r.schema = "vigil.report.v9".into();
        r.seq = 0;
        r.batch_id = "nope".into();
        r.results.push(result("Bad Id", Status::Pass));
        r.results
            .push(result("packages.pending_updates", Status::Fail));
        r.results[0].controls.push("8.8".into());
        let errors = r.validate().err().unwrap_or_default();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "schema",
                "batch_id",
                "seq",
                "results[0].controls[1]",
                "results[1].check",
                "results[2].check",
                "results[2].evidence.offenders"
            ]
        );
    }

    #[test]
    fn check_ids_are_dotted_lowercase() {
        for ok in ["accounts.uid0", "packages.pending_security", "a.b.c_d"] {
            assert!(is_valid_check_id(ok), "{ok}");
        }
        for bad in [
            "accounts",
            "Accounts.uid0",
            "accounts.",
            ".uid0",
            "1a.b",
            "a..b",
            "a.b-c",
        ] {
            assert!(!is_valid_check_id(bad), "{bad}");
        }
    }

    #[test]
    fn values_keep_their_json_types() {
        let json = r#"{"a":true,"b":3,"c":2.5,"d":"x","e":[1,"y"]}"#;
        let parsed: BTreeMap<String, Value> = serde_json::from_str(json).unwrap_or_default();
        assert_eq!(parsed["a"], Value::Bool(true));
        assert_eq!(parsed["b"], Value::Int(3));
        assert_eq!(parsed["c"], Value::Float(2.5));
        assert_eq!(parsed["d"], Value::Text("x".into()));
        assert_eq!(
            parsed["e"],
            Value::List(vec![Value::Int(1), Value::Text("y".into())])
        );
        assert_eq!(serde_json::to_string(&parsed).unwrap_or_default(), json);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut json = serde_json::to_value(report()).unwrap_or_default();
        json["surprise"] = serde_json::Value::Bool(true);
        let err = serde_json::from_value::<Report>(json)
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("unknown field `surprise`"));
    }
}
