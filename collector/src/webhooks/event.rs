//! The webhook event: the generic JSON body (`format = "json"`, schema in
//! `collector/webhook-event.schema.json`) and what every other format is rendered from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version tag carried by every generic event.
pub const SCHEMA: &str = "vigil.webhook-event.v1";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "nonconformity.opened")]
    NcOpened,
    /// A resolved or verified nonconformity failed again (its fix did not hold).
    #[serde(rename = "nonconformity.escalated")]
    NcEscalated,
    #[serde(rename = "nonconformity.resolved")]
    NcResolved,
    #[serde(rename = "nonconformity.closed")]
    NcClosed,
    /// A KPI analysis found the KPI below its target (status `missed`).
    #[serde(rename = "kpi.breached")]
    KpiBreached,
    /// A host sent no report for the configured time.
    #[serde(rename = "host.stale")]
    HostStale,
    /// A rule in scope for a host has no evidence to judge (verdict `no_data`).
    #[serde(rename = "evidence.gap")]
    EvidenceGap,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::NcOpened,
        EventKind::NcEscalated,
        EventKind::NcResolved,
        EventKind::NcClosed,
        EventKind::KpiBreached,
        EventKind::HostStale,
        EventKind::EvidenceGap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::NcOpened => "nonconformity.opened",
            EventKind::NcEscalated => "nonconformity.escalated",
            EventKind::NcResolved => "nonconformity.resolved",
            EventKind::NcClosed => "nonconformity.closed",
            EventKind::KpiBreached => "kpi.breached",
            EventKind::HostStale => "host.stale",
            EventKind::EvidenceGap => "evidence.gap",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// True for the events that end a problem (Alertmanager resolves the alert).
    pub fn ends_problem(self) -> bool {
        matches!(self, EventKind::NcResolved | EventKind::NcClosed)
    }
}

/// One scale across sources: nonconformity grades (observation → info, minor → warning,
/// major → critical) and rule severities (low → info, medium → warning, high and critical →
/// critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    pub fn of_grade(grade: crate::isms::Grade) -> Severity {
        match grade {
            crate::isms::Grade::Observation => Severity::Info,
            crate::isms::Grade::Minor => Severity::Warning,
            crate::isms::Grade::Major => Severity::Critical,
        }
    }

    pub fn of_rule(severity: crate::isms::Severity) -> Severity {
        match severity {
            crate::isms::Severity::Low => Severity::Info,
            crate::isms::Severity::Medium => Severity::Warning,
            crate::isms::Severity::High | crate::isms::Severity::Critical => Severity::Critical,
        }
    }
}

/// The host an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventHost {
    pub machine_id: String,
    pub hostname: String,
    /// The labels selectors see (agent, operator-assigned and built-in).
    pub labels: BTreeMap<String, String>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// The nonconformity an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventNonconformity {
    pub id: u64,
    pub key: String,
    pub source: String,
    pub grade: String,
    /// State after this event.
    pub state: String,
    pub subject: String,
    pub opened_at: DateTime<Utc>,
    /// Who made the transition (`vigil` for automatic ones).
    pub actor: String,
    pub note: String,
    pub recurrence_of: Option<u64>,
    pub owner: Option<String>,
    pub due: Option<chrono::NaiveDate>,
}

/// The KPI analysis behind a `kpi.breached` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventKpi {
    pub id: String,
    pub name: String,
    pub value: Option<f64>,
    pub target: f64,
    pub consecutive_misses: u32,
}

/// The rule behind an `evidence.gap` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRule {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub reason: String,
}

/// One event, as the generic JSON format sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: String,
    /// Stable identity of the happening, also the idempotency key (`Vigil-Idempotency-Key`):
    /// deriving the same happening again (retry, restart) gives the same id.
    pub id: String,
    pub kind: EventKind,
    /// When it happened (the engine clock of the evaluation or the person's action).
    pub occurred_at: DateTime<Utc>,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    /// Annex A controls concerned.
    pub controls: Vec<String>,
    pub host: Option<EventHost>,
    pub nonconformity: Option<EventNonconformity>,
    pub kpi: Option<EventKpi>,
    pub rule: Option<EventRule>,
}
