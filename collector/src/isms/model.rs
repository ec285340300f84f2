//! The validated ISMS definition: what the loader produces once every reference, schedule,
//! duration and condition has been checked. Evaluation works only on these types.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::Serialize;
use vigil_shared::controls::Theme;
use vigil_shared::schedule::Schedule;

use super::expr::Expr;
use super::selector::Selector;

/// The whole ISMS.
#[derive(Debug, Clone)]
pub struct Isms {
    pub organisation: Organisation,
    pub scope: Scope,
    pub policy: Policy,
    pub issues: Vec<ContextIssue>,
    pub parties: Vec<InterestedParty>,
    /// All 93 Annex A controls in catalogue order: the Statement of Applicability.
    pub controls: Vec<ControlDecision>,
    pub rules: Vec<Rule>,
    pub exceptions: Vec<Exception>,
    pub kpis: Vec<Kpi>,
    pub objectives: Vec<Objective>,
    pub risks: Vec<Risk>,
    pub audits: Vec<Audit>,
}

impl Isms {
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn kpi(&self, id: &str) -> Option<&Kpi> {
        self.kpis.iter().find(|k| k.id == id)
    }

    pub fn control(&self, id: &str) -> Option<&ControlDecision> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// Objectives a KPI serves (objectives name their KPIs).
    pub fn objectives_of_kpi(&self, kpi: &str) -> Vec<&str> {
        self.objectives
            .iter()
            .filter(|o| o.kpis.iter().any(|k| k == kpi))
            .map(|o| o.id.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Organisation {
    pub name: String,
}

/// Clause 4.3: which hosts the ISMS judges. Hosts outside it are inventoried, not judged.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    pub statement: String,
    pub boundaries: String,
    /// A host is in scope when any of these matches (an empty list means every host)…
    pub include: Vec<Selector>,
    /// …and none of these does.
    pub exclude: Vec<Selector>,
    /// Documented exclusions with their justification.
    pub exclusions: Vec<Exclusion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exclusion {
    pub what: String,
    pub justification: String,
}

/// How evaluation and the nonconformity lifecycle behave.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// An in-scope host that has not reported for this long is a monitoring blind spot.
    #[serde(serialize_with = "ser_duration")]
    pub stale_after: Duration,
    /// A result older than this no longer counts as evidence (verdict `no_data`).
    #[serde(serialize_with = "ser_duration")]
    pub max_evidence_age: Duration,
    /// How often rule verdicts, control status and blind spots are evaluated.
    #[serde(serialize_with = "ser_duration")]
    pub evaluation_interval: Duration,
    /// A KPI missing its target this many analyses in a row raises a nonconformity.
    pub kpi_breach_evaluations: u32,
    /// A resolved nonconformity is verified effective after this many green measurements.
    pub verification_periods: u32,
    /// Close nonconformities automatically once verified effective.
    pub auto_close: bool,
    /// Nonconformity grade for each rule severity.
    pub grades: BTreeMap<Severity, Grade>,
    /// Grade of a blind-spot nonconformity (an in-scope host that stopped reporting).
    pub blind_spot_grade: Grade,
    /// Risks at or below this level (likelihood × impact) may be accepted without treatment.
    pub risk_acceptance_threshold: u8,
}

impl Policy {
    /// Whether a host last heard from at `last_seen` is stale (a monitoring blind spot) at `now`.
    pub fn is_stale(
        &self,
        last_seen: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        now - last_seen > self.stale_after
    }
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::duration::render(*d))
}

/// Clause 4.1: an internal or external issue.
#[derive(Debug, Clone, Serialize)]
pub struct ContextIssue {
    pub id: String,
    pub kind: IssueKind,
    pub description: String,
    pub owner: String,
    pub review_by: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    Internal,
    External,
}

/// Clause 4.2: an interested party and its requirements.
#[derive(Debug, Clone, Serialize)]
pub struct InterestedParty {
    pub id: String,
    pub name: String,
    pub requirements: String,
    /// Whether the ISMS addresses these requirements (4.2 c).
    pub addressed: bool,
    pub review_by: NaiveDate,
}

/// One line of the Statement of Applicability (6.1.3 d).
#[derive(Debug, Clone, Serialize)]
pub struct ControlDecision {
    pub id: String,
    #[serde(serialize_with = "ser_theme")]
    pub theme: Theme,
    pub title: String,
    pub applicable: bool,
    pub justification: String,
    pub owner: String,
    /// How the control is implemented, in words.
    pub implementation: Option<String>,
    /// Evidence kept by people for what no agent can measure.
    pub manual: Option<ManualEvidence>,
}

fn ser_theme<S: serde::Serializer>(t: &Theme, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

#[derive(Debug, Clone, Serialize)]
pub struct ManualEvidence {
    pub status: ImplementationStatus,
    pub evidence: Vec<String>,
    pub reviewed: NaiveDate,
    #[serde(serialize_with = "ser_duration")]
    pub review_every: Duration,
}

/// How far a control is implemented.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ImplementationStatus {
    Implemented,
    Partially,
    NotImplemented,
    NotApplicable,
    NoEvidence,
}

impl ImplementationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImplementationStatus::Implemented => "implemented",
            ImplementationStatus::Partially => "partially",
            ImplementationStatus::NotImplemented => "not_implemented",
            ImplementationStatus::NotApplicable => "not_applicable",
            ImplementationStatus::NoEvidence => "no_evidence",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "implemented" => ImplementationStatus::Implemented,
            "partially" => ImplementationStatus::Partially,
            "not_implemented" => ImplementationStatus::NotImplemented,
            "not_applicable" => ImplementationStatus::NotApplicable,
            "no_evidence" => ImplementationStatus::NoEvidence,
            _ => return None,
        })
    }
}

/// Rule severity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Nonconformity grade.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Observation,
    Minor,
    Major,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Observation => "observation",
            Grade::Minor => "minor",
            Grade::Major => "major",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "observation" => Grade::Observation,
            "minor" => Grade::Minor,
            "major" => Grade::Major,
            _ => return None,
        })
    }
}

/// What a failing grace period is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GraceScope {
    /// From the first failing observation on the host.
    Host,
    /// From the first observation of each offender (each pending update, each account): the
    /// rule is overdue when one offender has been present longer than the grace period.
    Offender,
}

/// What a `no_data` result counts as for a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataAs {
    NoData,
    Pass,
    Fail,
}

/// A condition on a host's check result, mapped to controls.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The check output it reads (`packages.pending_security`).
    pub check: String,
    /// The condition as written; `None` means "the result's status is pass".
    pub condition: Option<String>,
    #[serde(skip)]
    pub expr: Option<Expr>,
    /// The reason a passing verdict gives, built once: half a million verdicts per evaluation
    /// on a large fleet must not each format it.
    #[serde(skip)]
    pub pass_reason: std::sync::Arc<str>,
    pub severity: Severity,
    #[serde(serialize_with = "ser_duration")]
    pub grace: Duration,
    pub grace_scope: GraceScope,
    pub no_data: NoDataAs,
    pub controls: Vec<String>,
    pub remediation: String,
}

/// A documented, approved, time-limited exception to a rule.
#[derive(Debug, Clone, Serialize)]
pub struct Exception {
    pub id: String,
    pub rule: String,
    /// Hosts it covers (any selector matching).
    pub hosts: Vec<Selector>,
    pub justification: String,
    pub approver: String,
    pub approved: NaiveDate,
    /// Last day the exception holds; afterwards the rule judges the host again.
    pub expires: NaiveDate,
}

/// Clause 9.1 measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Kpi {
    pub id: String,
    pub name: String,
    pub description: String,
    /// a) what is measured and b) the method.
    pub measure: Measure,
    /// c) when it is measured.
    #[serde(serialize_with = "ser_schedule")]
    pub measure_schedule: Schedule,
    /// d) who measures.
    pub measured_by: String,
    /// e) when it is analysed and evaluated.
    #[serde(serialize_with = "ser_schedule")]
    pub analysis_schedule: Schedule,
    /// f) who analyses and evaluates.
    pub analysed_by: String,
    pub target: Target,
    pub controls: Vec<String>,
    /// Grade of the nonconformity raised when the target is missed repeatedly.
    pub nc_grade: Grade,
}

fn ser_schedule<S: serde::Serializer>(sch: &Schedule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(sch.as_str())
}

/// What a KPI measures and how the per-host values are aggregated.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Measure {
    /// Share (0..1) of in-scope hosts whose verdict for the rule is pass or excepted; hosts
    /// without a verdict count as not passing.
    SharePassing { rule: String },
    /// Number of in-scope hosts whose verdict for the rule is fail.
    CountFailing { rule: String },
    /// Number of in-scope hosts whose verdict for the rule is pass or excepted.
    CountPassing { rule: String },
    /// Longest time, in days, a host has been failing the rule (0 when none fails).
    FailingAgeMaxDays { rule: String },
    /// An aggregate of a numeric value reported by a check, over in-scope hosts.
    Value {
        check: String,
        value: String,
        aggregate: Aggregate,
    },
    /// Age in days of the oldest evidence for a check among in-scope hosts.
    EvidenceAgeMaxDays { check: String },
    /// Share (0..1) of in-scope hosts that reported within `policy.stale_after`.
    Coverage,
    /// Open nonconformities, optionally only of some grades.
    OpenNonconformities { grades: Vec<Grade> },
    /// Open nonconformities whose corrective action is past its due date.
    OverdueActions,
}

impl Measure {
    /// The rule a measure reads, if any.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Measure::SharePassing { rule }
            | Measure::CountFailing { rule }
            | Measure::CountPassing { rule }
            | Measure::FailingAgeMaxDays { rule } => Some(rule),
            _ => None,
        }
    }

    /// The check a measure reads directly, if any.
    pub fn check(&self) -> Option<&str> {
        match self {
            Measure::Value { check, .. } | Measure::EvidenceAgeMaxDays { check } => Some(check),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "p", rename_all = "snake_case")]
pub enum Aggregate {
    Max,
    Min,
    Mean,
    Sum,
    Count,
    /// The p-th percentile (nearest rank), 0 < p ≤ 100.
    Percentile(f64),
}

/// The KPI's target and tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    pub direction: Direction,
    pub value: f64,
    /// How far on the wrong side of the target still counts as tolerated.
    pub tolerance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The value must be at least the target (`>=`).
    AtLeast,
    /// The value must be at most the target (`<=`).
    AtMost,
}

/// Clause 6.2 objective.
#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    pub id: String,
    pub statement: String,
    /// The measurable target in words.
    pub target: String,
    /// KPIs whose targets together measure the objective.
    pub kpis: Vec<String>,
    pub deadline: NaiveDate,
    pub owner: String,
    /// What will be done and with which resources (6.2 f, g).
    pub plan: String,
    pub resources: String,
}

/// Clause 6.1.2 / 8.2 risk with its treatment (6.1.3 / 8.3).
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    pub id: String,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub likelihood: u8,
    pub impact: u8,
    pub treatment: Treatment,
    pub controls: Vec<String>,
    pub kpis: Vec<String>,
    pub residual_likelihood: u8,
    pub residual_impact: u8,
    pub acceptance: Option<Acceptance>,
}

impl Risk {
    pub fn level(&self) -> u8 {
        self.likelihood * self.impact
    }

    pub fn residual_level(&self) -> u8 {
        self.residual_likelihood * self.residual_impact
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    Mitigate,
    Accept,
    Transfer,
    Avoid,
}

/// The risk owner's acceptance of the residual risk.
#[derive(Debug, Clone, Serialize)]
pub struct Acceptance {
    pub by: String,
    pub date: NaiveDate,
    pub justification: String,
}

/// Clause 9.2 internal audit in the programme.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub id: String,
    pub title: String,
    pub scope: String,
    pub controls: Vec<String>,
    pub planned: NaiveDate,
    pub performed: Option<NaiveDate>,
    pub auditor: String,
    pub findings: Vec<Finding>,
}

/// An audit finding; nonconformity-graded findings raise nonconformities.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: String,
    pub description: String,
    pub controls: Vec<String>,
    pub grade: Grade,
    pub raised: NaiveDate,
}
