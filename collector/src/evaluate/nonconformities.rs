//! Clause 10.2: nonconformities raised, resolved, verified and closed automatically from the
//! measurements, and the manual steps people take on them.
//!
//! Sources and their deduplication keys (one active nonconformity per key):
//! - `rule/<rule>/<machine id>`: the rule fails on the host past its grace period;
//! - `kpi/<kpi>`: the KPI missed its target `policy.kpi_breach_evaluations` analyses in a row;
//! - `blind_spot/<machine id>`: an in-scope host has not reported for `policy.stale_after`;
//! - `audit/<finding>`: an internal-audit finding graded minor or major.
//!
//! Lifecycle: open → action planned (a person records owner, root cause, corrective action and
//! due date) → resolved (automatically, when the same measurement is green again) → verified
//! effective (after `policy.verification_periods` further green measurements) → closed
//! (automatically when `policy.auto_close`, or by a person with a reason). A failure while
//! resolved reopens it; after closing, a new failure opens a new nonconformity that names the
//! old one as `recurrence_of`. Every transition is an event with actor, time and note.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    HostFacts, KpiEvaluation, KpiStatus, NcEvent, NcEventKind, NcSource, NcState, Nonconformity,
    SYSTEM_ACTOR, Verdict, VerdictState, in_scope,
};
use crate::isms::{Grade, Isms};

/// A nonconformity that changed, with the events that changed it (in order). `nc.id == 0`
/// means it is new.
#[derive(Debug, Clone, PartialEq)]
pub struct NcChange {
    pub nc: Nonconformity,
    pub events: Vec<NcEvent>,
    /// `updated_at` of the record this change was computed from (`None` for a new one): the
    /// store applies the change only if nobody changed the record meanwhile, so an automatic
    /// transition never overwrites what a person just recorded (the next evaluation retries).
    pub base: Option<DateTime<Utc>>,
}

/// What the automatic transitions read.
#[derive(Debug)]
pub struct NcInputs<'a> {
    /// Current verdicts of every in-scope host.
    pub verdicts: &'a [VerdictState],
    /// Every known host (scope is decided here).
    pub hosts: &'a [HostFacts],
    /// KPI analyses made in this evaluation (only new analyses count).
    pub kpi_evaluations: &'a [KpiEvaluation],
    /// Nonconformities that are not closed.
    pub active: &'a [Nonconformity],
    /// The latest closed nonconformity per key, for `recurrence_of`.
    pub last_closed: &'a HashMap<String, u64>,
    pub now: DateTime<Utc>,
}

pub fn rule_key(rule: &str, machine_id: &str) -> String {
    format!("rule/{rule}/{machine_id}")
}

pub fn kpi_key(kpi: &str) -> String {
    format!("kpi/{kpi}")
}

pub fn blind_spot_key(machine_id: &str) -> String {
    format!("blind_spot/{machine_id}")
}

pub fn audit_key(finding: &str) -> String {
    format!("audit/{finding}")
}

fn event(
    now: DateTime<Utc>,
    kind: NcEventKind,
    from: Option<NcState>,
    to: NcState,
    note: String,
) -> NcEvent {
    NcEvent {
        at: now,
        actor: SYSTEM_ACTOR.to_string(),
        kind,
        from,
        to,
        note,
    }
}

struct Opening<'a> {
    key: String,
    source: NcSource,
    title: String,
    grade: Grade,
    controls: Vec<String>,
    machine_id: Option<&'a str>,
    hostname: Option<&'a str>,
    subject: &'a str,
    note: String,
}

fn open(opening: Opening<'_>, last_closed: &HashMap<String, u64>, now: DateTime<Utc>) -> NcChange {
    let recurrence_of = last_closed.get(&opening.key).copied();
    let note = match recurrence_of {
        Some(id) => format!("{} (recurrence of NC-{id})", opening.note),
        None => opening.note,
    };
    NcChange {
        nc: Nonconformity {
            id: 0,
            key: opening.key,
            source: opening.source,
            title: opening.title,
            grade: opening.grade,
            state: NcState::Open,
            controls: opening.controls,
            machine_id: opening.machine_id.map(str::to_string),
            hostname: opening.hostname.map(str::to_string),
            subject: opening.subject.to_string(),
            opened_at: now,
            updated_at: now,
            owner: None,
            root_cause: None,
            corrective_action: None,
            due: None,
            resolved_at: None,
            verified_at: None,
            closed_at: None,
            close_reason: None,
            green_streak: 0,
            last_green: None,
            recurrence_of,
        },
        events: vec![event(now, NcEventKind::Opened, None, NcState::Open, note)],
        base: None,
    }
}

/// A failing measurement on an active nonconformity: reopen it if it was resolved.
fn on_failure(nc: &Nonconformity, note: String, now: DateTime<Utc>) -> Option<NcChange> {
    if nc.state != NcState::Resolved {
        return None;
    }
    let mut next = nc.clone();
    next.state = NcState::Open;
    next.green_streak = 0;
    next.last_green = None;
    next.resolved_at = None;
    next.updated_at = now;
    Some(NcChange {
        base: Some(nc.updated_at),
        events: vec![event(
            now,
            NcEventKind::Reopened,
            Some(nc.state),
            NcState::Open,
            format!("failed again before it was verified effective: {note}"),
        )],
        nc: next,
    })
}

/// A green measurement (identified by `measured_at`) on an active nonconformity: resolve it,
/// or count it towards verification, then verify and close.
fn on_green(
    isms: &Isms,
    nc: &Nonconformity,
    measured_at: DateTime<Utc>,
    note: String,
    now: DateTime<Utc>,
) -> Option<NcChange> {
    let mut next = nc.clone();
    let mut events = Vec::new();
    match nc.state {
        NcState::Open | NcState::ActionPlanned => {
            next.state = NcState::Resolved;
            next.resolved_at = Some(now);
            next.green_streak = 1;
            next.last_green = Some(measured_at);
            events.push(event(
                now,
                NcEventKind::Resolved,
                Some(nc.state),
                NcState::Resolved,
                format!("the measurement is green again: {note}"),
            ));
        }
        NcState::Resolved => {
            // One measurement counts once, however often it is re-evaluated.
            if nc.last_green.is_some_and(|last| measured_at <= last) {
                return None;
            }
            next.green_streak += 1;
            next.last_green = Some(measured_at);
        }
        NcState::Verified | NcState::Closed => return None,
    }
    if next.state == NcState::Resolved && next.green_streak >= isms.policy.verification_periods {
        next.state = NcState::Verified;
        next.verified_at = Some(now);
        events.push(event(
            now,
            NcEventKind::Verified,
            Some(NcState::Resolved),
            NcState::Verified,
            format!(
                "corrective action effective: green for {} measurements in a row",
                next.green_streak
            ),
        ));
        if isms.policy.auto_close {
            next.state = NcState::Closed;
            next.closed_at = Some(now);
            next.close_reason = Some("verified effective".into());
            events.push(event(
                now,
                NcEventKind::Closed,
                Some(NcState::Verified),
                NcState::Closed,
                "closed automatically after verification (policy.auto_close)".into(),
            ));
        }
    }
    next.updated_at = now;
    Some(NcChange {
        nc: next,
        events,
        base: Some(nc.updated_at),
    })
}

fn close_orphan(nc: &Nonconformity, reason: &str, now: DateTime<Utc>) -> NcChange {
    let mut next = nc.clone();
    next.state = NcState::Closed;
    next.closed_at = Some(now);
    next.close_reason = Some(reason.to_string());
    next.updated_at = now;
    NcChange {
        events: vec![event(
            now,
            NcEventKind::Closed,
            Some(nc.state),
            NcState::Closed,
            reason.to_string(),
        )],
        nc: next,
        base: Some(nc.updated_at),
    }
}

/// Computes every automatic transition for this evaluation.
pub fn transitions(isms: &Isms, inputs: &NcInputs<'_>) -> Vec<NcChange> {
    let now = inputs.now;
    let active: HashMap<&str, &Nonconformity> = inputs
        .active
        .iter()
        .map(|nc| (nc.key.as_str(), nc))
        .collect();
    let mut changes = Vec::new();
    let mut seen_keys: std::collections::HashSet<String> = std::collections::HashSet::new();
    let hostnames: HashMap<&str, &str> = inputs
        .hosts
        .iter()
        .map(|h| (h.machine_id.as_str(), h.hostname.as_str()))
        .collect();

    // Rules. Half a million verdicts go through here on a large fleet: look active
    // nonconformities up by borrowed (host, rule) pairs and build key strings only for the
    // few that open.
    let rules: HashMap<&str, &crate::isms::Rule> =
        isms.rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let active_rules: rustc_hash::FxHashMap<(&str, &str), &Nonconformity> = inputs
        .active
        .iter()
        .filter(|nc| nc.source == NcSource::Rule)
        .filter_map(|nc| Some(((nc.machine_id.as_deref()?, nc.subject.as_str()), nc)))
        .collect();
    let mut judged_rule_ncs: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for v in inputs.verdicts {
        let current = active_rules.get(&(&*v.machine_id, &*v.rule)).copied();
        if let Some(nc) = current {
            judged_rule_ncs.insert(nc.id);
        }
        let change = match (v.verdict, current) {
            (Verdict::Fail, None) if v.overdue_since.is_some() => {
                let Some(rule) = rules.get(&*v.rule) else {
                    continue;
                };
                let hostname = hostnames
                    .get(&*v.machine_id)
                    .copied()
                    .unwrap_or(&*v.machine_id);
                Some(open(
                    Opening {
                        key: rule_key(&v.rule, &v.machine_id),
                        source: NcSource::Rule,
                        title: format!("{} — failing on {hostname}", rule.title),
                        grade: isms
                            .policy
                            .grades
                            .get(&rule.severity)
                            .copied()
                            .unwrap_or(Grade::Minor),
                        controls: rule.controls.clone(),
                        machine_id: Some(&v.machine_id),
                        hostname: Some(hostname),
                        subject: &rule.id,
                        note: format!(
                            "rule {} fails past its grace period ({}): {}",
                            rule.id,
                            crate::isms::duration::render(rule.grace),
                            v.reason
                        ),
                    },
                    inputs.last_closed,
                    now,
                ))
            }
            (Verdict::Fail, Some(nc)) => on_failure(nc, v.reason.to_string(), now),
            (Verdict::Pass | Verdict::Excepted, Some(nc)) => on_green(
                isms,
                nc,
                v.observed_at.unwrap_or(now),
                v.reason.to_string(),
                now,
            ),
            _ => None,
        };
        changes.extend(change);
    }

    // Blind spots.
    for host in inputs.hosts {
        if !in_scope(isms, &host.labels) {
            continue;
        }
        let key = blind_spot_key(&host.machine_id);
        let current = active.get(key.as_str()).copied();
        seen_keys.insert(key.clone());
        let stale = isms.policy.is_stale(host.last_seen, now);
        let change = match (stale, current) {
            (true, None) => Some(open(
                Opening {
                    key,
                    source: NcSource::BlindSpot,
                    title: format!("{} stopped reporting evidence", host.hostname),
                    grade: isms.policy.blind_spot_grade,
                    controls: vec!["A.8.16".into()],
                    machine_id: Some(&host.machine_id),
                    hostname: Some(&host.hostname),
                    subject: &host.machine_id,
                    note: format!(
                        "no report since {} (policy.stale_after is {})",
                        host.last_seen.to_rfc3339(),
                        crate::isms::duration::render(isms.policy.stale_after)
                    ),
                },
                inputs.last_closed,
                now,
            )),
            (true, Some(nc)) => on_failure(
                nc,
                format!("silent since {}", host.last_seen.to_rfc3339()),
                now,
            ),
            (false, Some(nc)) => on_green(
                isms,
                nc,
                host.last_seen,
                format!("reported at {}", host.last_seen.to_rfc3339()),
                now,
            ),
            (false, None) => None,
        };
        changes.extend(change);
    }

    // KPIs: only analyses made now are new measurements.
    for e in inputs.kpi_evaluations {
        let Some(kpi) = isms.kpi(&e.kpi) else {
            continue;
        };
        let key = kpi_key(&kpi.id);
        let current = active.get(key.as_str()).copied();
        let shown = e
            .value
            .map_or("no value".to_string(), |v| format!("{v:.4}"));
        let change = match (e.status, current) {
            (KpiStatus::Missed, None)
                if e.consecutive_misses >= isms.policy.kpi_breach_evaluations =>
            {
                Some(open(
                    Opening {
                        key,
                        source: NcSource::Kpi,
                        title: format!("KPI {} misses its target", kpi.name),
                        grade: kpi.nc_grade,
                        controls: kpi.controls.clone(),
                        machine_id: None,
                        hostname: None,
                        subject: &kpi.id,
                        note: format!(
                            "{} missed its target {} analyses in a row (latest value {shown}, target {})",
                            kpi.id, e.consecutive_misses, e.target
                        ),
                    },
                    inputs.last_closed,
                    now,
                ))
            }
            (KpiStatus::Missed, Some(nc)) => on_failure(
                nc,
                format!("value {shown} misses the target {}", e.target),
                now,
            ),
            (KpiStatus::Met, Some(nc)) => on_green(
                isms,
                nc,
                e.at,
                format!("value {shown} meets the target {}", e.target),
                now,
            ),
            _ => None,
        };
        changes.extend(change);
    }
    for kpi in &isms.kpis {
        seen_keys.insert(kpi_key(&kpi.id));
    }

    // Internal audit findings: raised once; people resolve and close them.
    for audit in &isms.audits {
        for finding in &audit.findings {
            let key = audit_key(&finding.id);
            seen_keys.insert(key.clone());
            if finding.grade == Grade::Observation
                || active.contains_key(key.as_str())
                || inputs.last_closed.contains_key(&key)
            {
                continue;
            }
            changes.push(open(
                Opening {
                    key,
                    source: NcSource::Audit,
                    title: format!("Audit {}: {}", audit.id, finding.description),
                    grade: finding.grade,
                    controls: finding.controls.clone(),
                    machine_id: None,
                    hostname: None,
                    subject: &finding.id,
                    note: format!(
                        "finding {} of audit {} raised on {}",
                        finding.id, audit.id, finding.raised
                    ),
                },
                inputs.last_closed,
                now,
            ));
        }
    }

    // Whatever no longer has a measurement behind it is closed with the reason.
    for nc in inputs.active {
        let judged = match nc.source {
            NcSource::Rule => judged_rule_ncs.contains(&nc.id),
            _ => seen_keys.contains(&nc.key),
        };
        if judged {
            continue;
        }
        let reason = match nc.source {
            NcSource::Rule if isms.rule(&nc.subject).is_none() => {
                "the rule was removed from the ISMS definition"
            }
            NcSource::Rule | NcSource::BlindSpot => "the host is no longer in the ISMS scope",
            NcSource::Kpi => "the KPI was removed from the ISMS definition",
            NcSource::Audit => "the finding was removed from the audit programme",
        };
        changes.push(close_orphan(nc, reason, now));
    }
    changes
}

/// A step a person takes on a nonconformity.
#[derive(Debug, Clone, PartialEq)]
pub enum NcAction {
    /// Record (or revise) the corrective-action plan: open/action planned → action planned.
    Plan {
        owner: String,
        root_cause: String,
        corrective_action: String,
        due: NaiveDate,
    },
    /// Mark an audit finding corrected (automatic sources resolve from measurements).
    Resolve { note: String },
    /// Confirm an audit finding's correction is effective.
    Verify { note: String },
    /// Close with a reason (any state but closed).
    Close { reason: String },
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

/// Applies a person's action, enforcing the lifecycle.
pub fn apply_action(
    nc: &Nonconformity,
    action: &NcAction,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Nonconformity, NcEvent), ActionError> {
    let refuse = |m: String| Err(ActionError(m));
    let mut next = nc.clone();
    next.updated_at = now;
    let (kind, to, note) = match action {
        NcAction::Plan {
            owner,
            root_cause,
            corrective_action,
            due,
        } => {
            if !nc.state.is_open() {
                return refuse(format!(
                    "NC-{} is {}: only open nonconformities take a corrective-action plan",
                    nc.id,
                    nc.state.as_str()
                ));
            }
            for (what, value) in [
                ("owner", owner),
                ("root_cause", root_cause),
                ("corrective_action", corrective_action),
            ] {
                if value.trim().is_empty() {
                    return refuse(format!("{what} must not be empty"));
                }
            }
            next.owner = Some(owner.trim().to_string());
            next.root_cause = Some(root_cause.trim().to_string());
            next.corrective_action = Some(corrective_action.trim().to_string());
            next.due = Some(*due);
            next.state = NcState::ActionPlanned;
            let kind = if nc.state == NcState::ActionPlanned {
                NcEventKind::Updated
            } else {
                NcEventKind::ActionPlanned
            };
            (
                kind,
                NcState::ActionPlanned,
                format!(
                    "owner {}, due {due}; root cause: {}; action: {}",
                    owner.trim(),
                    root_cause.trim(),
                    corrective_action.trim()
                ),
            )
        }
        NcAction::Resolve { note } => {
            if nc.source != NcSource::Audit {
                return refuse(format!(
                    "NC-{} comes from a {} and resolves itself when the measurement is green again",
                    nc.id,
                    nc.source.as_str()
                ));
            }
            if !nc.state.is_open() {
                return refuse(format!(
                    "NC-{} is {}: only open nonconformities can be resolved",
                    nc.id,
                    nc.state.as_str()
                ));
            }
            next.state = NcState::Resolved;
            next.resolved_at = Some(now);
            (NcEventKind::Resolved, NcState::Resolved, note.clone())
        }
        NcAction::Verify { note } => {
            if nc.source != NcSource::Audit {
                return refuse(format!(
                    "NC-{} comes from a {} and is verified by its measurements",
                    nc.id,
                    nc.source.as_str()
                ));
            }
            if nc.state != NcState::Resolved {
                return refuse(format!(
                    "NC-{} is {}: only resolved nonconformities can be verified",
                    nc.id,
                    nc.state.as_str()
                ));
            }
            next.state = NcState::Verified;
            next.verified_at = Some(now);
            (NcEventKind::Verified, NcState::Verified, note.clone())
        }
        NcAction::Close { reason } => {
            if nc.state == NcState::Closed {
                return refuse(format!("NC-{} is already closed", nc.id));
            }
            if reason.trim().is_empty() {
                return refuse("closing needs a reason".into());
            }
            next.state = NcState::Closed;
            next.closed_at = Some(now);
            next.close_reason = Some(reason.trim().to_string());
            (
                NcEventKind::Closed,
                NcState::Closed,
                reason.trim().to_string(),
            )
        }
    };
    let event = NcEvent {
        at: now,
        actor: actor.to_string(),
        kind,
        from: Some(nc.state),
        to,
        note,
    };
    Ok((next, event))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Map;

    use chrono::Duration;
    use vigil_shared::Status;

    use super::super::tests::{fixture_isms, host, isms_with, result_with, t};
    use super::super::verdicts::evaluate_all;
    use super::*;

    /// Runs one evaluation step on a host's uid0 result; returns the nonconformities.
    struct Sim {
        isms: Isms,
        prior: crate::evaluate::VerdictMap,
        active: Vec<Nonconformity>,
        closed: Vec<Nonconformity>,
        events: Vec<(u64, NcEvent)>,
        next_id: u64,
    }

    impl Sim {
        fn new(isms: Isms) -> Self {
            Sim {
                isms,
                prior: Default::default(),
                active: Vec::new(),
                closed: Vec::new(),
                events: Vec::new(),
                next_id: 1,
            }
        }

        fn step(&mut self, hosts: &[HostFacts], kpis: &[KpiEvaluation], now: DateTime<Utc>) {
            let verdicts = evaluate_all(&self.isms, hosts, &self.prior, now);
            let last_closed: Map<String, u64> = self
                .closed
                .iter()
                .map(|nc| (nc.key.clone(), nc.id))
                .collect();
            let changes = transitions(
                &self.isms,
                &NcInputs {
                    verdicts: &verdicts,
                    hosts,
                    kpi_evaluations: kpis,
                    active: &self.active,
                    last_closed: &last_closed,
                    now,
                },
            );
            for mut change in changes {
                if change.nc.id == 0 {
                    change.nc.id = self.next_id;
                    self.next_id += 1;
                }
                for e in &change.events {
                    self.events.push((change.nc.id, e.clone()));
                }
                self.active.retain(|nc| nc.id != change.nc.id);
                if change.nc.state == NcState::Closed {
                    self.closed.push(change.nc);
                } else {
                    self.active.push(change.nc);
                }
            }
            self.prior = verdicts
                .into_iter()
                .map(|v| ((v.machine_id.clone(), v.rule.clone()), v))
                .collect();
        }

        fn kinds(&self, id: u64) -> Vec<NcEventKind> {
            self.events
                .iter()
                .filter(|(i, _)| *i == id)
                .map(|(_, e)| e.kind)
                .collect()
        }
    }

    fn uid0(status: Status, at: DateTime<Utc>) -> HostFacts {
        let mut h = host(
            "h1",
            &[(
                "accounts.uid0",
                result_with(
                    status,
                    "2026-06-01T00:00:00Z",
                    &[("uid0_accounts", if status == Status::Fail { 2 } else { 1 })],
                    if status == Status::Fail {
                        &["toor"]
                    } else {
                        &[]
                    },
                ),
            )],
        );
        // Observed and reported at `at`.
        for r in h.results.values_mut() {
            r.observed_at = at;
        }
        h.last_seen = at;
        h
    }

    #[test]
    fn a_rule_nc_opens_resolves_verifies_and_closes_with_every_event() {
        let mut sim = Sim::new(fixture_isms());
        let t0 = t("2026-06-01T00:00:00Z");
        sim.step(&[uid0(Status::Fail, t0)], &[], t0);
        let nc = sim
            .active
            .iter()
            .find(|nc| nc.key == "rule/access.no-extra-uid0/h1")
            .unwrap()
            .clone();
        assert_eq!(nc.state, NcState::Open);
        assert_eq!(
            nc.grade,
            Grade::Major,
            "critical severity maps to a major NC"
        );
        assert_eq!(nc.controls, ["A.8.2", "A.5.15"]);
        // Deduplicated: a second failing evaluation opens nothing new.
        sim.step(
            &[uid0(Status::Fail, t0 + Duration::minutes(15))],
            &[],
            t0 + Duration::minutes(15),
        );
        assert_eq!(sim.active.iter().filter(|n| n.key == nc.key).count(), 1);
        // Fixed: resolved, then verified after three green measurements and closed.
        for (i, minutes) in [30, 45, 60].iter().enumerate() {
            let at = t0 + Duration::minutes(*minutes);
            sim.step(&[uid0(Status::Pass, at)], &[], at);
            if i == 0 {
                assert_eq!(
                    sim.active.iter().find(|n| n.id == nc.id).unwrap().state,
                    NcState::Resolved
                );
            }
        }
        // The same measurement counted twice does not verify faster.
        assert!(
            sim.closed.iter().any(|n| n.id == nc.id),
            "{:?}",
            sim.kinds(nc.id)
        );
        assert_eq!(
            sim.kinds(nc.id),
            [
                NcEventKind::Opened,
                NcEventKind::Resolved,
                NcEventKind::Verified,
                NcEventKind::Closed
            ]
        );
        // Failing again later opens a new NC that names the old one.
        let later = t0 + Duration::days(2);
        sim.step(&[uid0(Status::Fail, later)], &[], later);
        let again = sim.active.iter().find(|n| n.key == nc.key).unwrap();
        assert_ne!(again.id, nc.id);
        assert_eq!(again.recurrence_of, Some(nc.id));
    }

    #[test]
    fn failing_again_before_verification_reopens() {
        let mut sim = Sim::new(fixture_isms());
        let t0 = t("2026-06-01T00:00:00Z");
        sim.step(&[uid0(Status::Fail, t0)], &[], t0);
        sim.step(
            &[uid0(Status::Pass, t0 + Duration::minutes(15))],
            &[],
            t0 + Duration::minutes(15),
        );
        // Re-evaluating the same green measurement does not count twice.
        sim.step(
            &[uid0(Status::Pass, t0 + Duration::minutes(15))],
            &[],
            t0 + Duration::minutes(20),
        );
        let nc = sim
            .active
            .iter()
            .find(|n| n.key.starts_with("rule/access.no-extra-uid0"))
            .unwrap();
        assert_eq!((nc.state, nc.green_streak), (NcState::Resolved, 1));
        let id = nc.id;
        sim.step(
            &[uid0(Status::Fail, t0 + Duration::minutes(30))],
            &[],
            t0 + Duration::minutes(30),
        );
        let nc = sim.active.iter().find(|n| n.id == id).unwrap();
        assert_eq!((nc.state, nc.green_streak), (NcState::Open, 0));
        assert_eq!(
            sim.kinds(id),
            [
                NcEventKind::Opened,
                NcEventKind::Resolved,
                NcEventKind::Reopened
            ]
        );
    }

    #[test]
    fn grace_delays_the_nc_and_blind_spots_open_and_resolve() {
        let mut sim = Sim::new(fixture_isms());
        let t0 = t("2026-06-01T00:00:00Z");
        let pending = |at: DateTime<Utc>| {
            let mut h = host(
                "h1",
                &[(
                    "packages.pending_security",
                    result_with(
                        Status::Fail,
                        "2026-06-01T00:00:00Z",
                        &[("pending_security", 1)],
                        &["openssl"],
                    ),
                )],
            );
            for r in h.results.values_mut() {
                r.observed_at = at;
            }
            h.last_seen = at;
            h
        };
        sim.step(&[pending(t0)], &[], t0);
        assert!(
            !sim.active.iter().any(|n| n.source == NcSource::Rule),
            "within the 14-day grace"
        );
        let day15 = t0 + Duration::days(15);
        sim.step(&[pending(day15)], &[], day15);
        assert!(
            sim.active
                .iter()
                .any(|n| n.key == "rule/patch.security-updates/h1")
        );
        // The host falls silent for three hours: a blind spot.
        let silent = day15 + Duration::hours(3);
        sim.step(&[pending(day15)], &[], silent);
        let blind = sim
            .active
            .iter()
            .find(|n| n.source == NcSource::BlindSpot)
            .unwrap();
        assert_eq!(blind.controls, ["A.8.16"]);
        assert_eq!(blind.grade, Grade::Minor);
        let back = silent + Duration::minutes(5);
        sim.step(&[pending(back)], &[], back);
        let blind = sim
            .active
            .iter()
            .find(|n| n.source == NcSource::BlindSpot)
            .unwrap();
        assert_eq!(blind.state, NcState::Resolved);
    }

    #[test]
    fn kpi_ncs_need_consecutive_misses() {
        let mut sim = Sim::new(fixture_isms());
        let t0 = t("2026-06-01T00:00:00Z");
        let e = |misses: u32, status: KpiStatus, at| KpiEvaluation {
            kpi: "kpi.patch-security".into(),
            at,
            status,
            value: Some(0.5),
            target: 0.95,
            consecutive_misses: misses,
            consecutive_met: u32::from(status == KpiStatus::Met),
        };
        sim.step(&[], &[e(2, KpiStatus::Missed, t0)], t0);
        assert!(sim.active.is_empty());
        sim.step(&[], &[e(3, KpiStatus::Missed, t0)], t0);
        let nc = sim
            .active
            .iter()
            .find(|n| n.source == NcSource::Kpi)
            .unwrap()
            .clone();
        assert!(nc.title.contains("misses its target"));
        for d in 1..=3 {
            sim.step(
                &[],
                &[e(0, KpiStatus::Met, t0 + Duration::days(d))],
                t0 + Duration::days(d),
            );
        }
        assert!(sim.closed.iter().any(|n| n.id == nc.id));
    }

    #[test]
    fn audit_findings_open_once_and_people_drive_them() {
        let isms = isms_with(&[(
            "audits.toml",
            "auditor = \"internal-audit@example.com\"\n\n[[audit]]\nid = \"IA-2027-02\"",
            "auditor = \"internal-audit@example.com\"\n[[audit.finding]]\nid = \"F-1\"\ndescription = \"No access review in Q1\"\ncontrols = [\"A.5.18\"]\ngrade = \"minor\"\nraised = 2027-03-20\n[[audit.finding]]\nid = \"F-2\"\ndescription = \"Consider automating reviews\"\ngrade = \"observation\"\nraised = 2027-03-20\n\n[[audit]]\nid = \"IA-2027-02\"",
        )]);
        let mut sim = Sim::new(isms);
        let now = t("2027-03-21T00:00:00Z");
        sim.step(&[], &[], now);
        let audit: Vec<&Nonconformity> = sim
            .active
            .iter()
            .filter(|n| n.source == NcSource::Audit)
            .collect();
        assert_eq!(audit.len(), 1, "observations raise no NC");
        let nc = audit[0].clone();
        assert_eq!(nc.subject, "F-1");
        // People take the steps; the lifecycle is enforced.
        let due = NaiveDate::from_ymd_opt(2027, 4, 30).unwrap();
        let plan = NcAction::Plan {
            owner: "alice".into(),
            root_cause: "no reminder".into(),
            corrective_action: "calendar the review".into(),
            due,
        };
        let (planned, ev) = apply_action(&nc, &plan, "alice", now).unwrap();
        assert_eq!(
            (planned.state, ev.kind, ev.actor.as_str()),
            (NcState::ActionPlanned, NcEventKind::ActionPlanned, "alice")
        );
        assert!(
            apply_action(&planned, &NcAction::Verify { note: "x".into() }, "bob", now).is_err()
        );
        let (resolved, _) = apply_action(
            &planned,
            &NcAction::Resolve {
                note: "review done".into(),
            },
            "alice",
            now,
        )
        .unwrap();
        let (verified, _) = apply_action(
            &resolved,
            &NcAction::Verify {
                note: "sampled".into(),
            },
            "auditor",
            now,
        )
        .unwrap();
        assert_eq!(verified.state, NcState::Verified);
        let (closed, _) = apply_action(
            &verified,
            &NcAction::Close {
                reason: "effective".into(),
            },
            "ciso",
            now,
        )
        .unwrap();
        assert_eq!(closed.state, NcState::Closed);
        assert!(
            apply_action(
                &closed,
                &NcAction::Close {
                    reason: "again".into()
                },
                "ciso",
                now
            )
            .is_err()
        );
        // A closed finding never reopens by itself.
        sim.active.clear();
        sim.closed.push(closed);
        sim.step(&[], &[], now + Duration::days(1));
        assert!(sim.active.iter().all(|n| n.source != NcSource::Audit));
    }

    #[test]
    fn measurement_sourced_ncs_cannot_be_resolved_by_hand() {
        let mut sim = Sim::new(fixture_isms());
        let t0 = t("2026-06-01T00:00:00Z");
        sim.step(&[uid0(Status::Fail, t0)], &[], t0);
        let nc = sim
            .active
            .iter()
            .find(|n| n.source == NcSource::Rule)
            .unwrap();
        let err = apply_action(
            nc,
            &NcAction::Resolve {
                note: "trust me".into(),
            },
            "mallory",
            t0,
        )
        .unwrap_err();
        assert!(
            err.0
                .contains("resolves itself when the measurement is green again"),
            "{err}"
        );
        let empty = NcAction::Plan {
            owner: " ".into(),
            root_cause: "x".into(),
            corrective_action: "y".into(),
            due: NaiveDate::default(),
        };
        assert!(apply_action(nc, &empty, "alice", t0).is_err());
    }

    #[test]
    fn ncs_without_a_measurement_behind_them_are_closed_with_the_reason() {
        let mut sim = Sim::new(fixture_isms());
        let t0 = t("2026-06-01T00:00:00Z");
        sim.step(&[uid0(Status::Fail, t0)], &[], t0);
        let mut lab = uid0(Status::Fail, t0 + Duration::minutes(1));
        lab.labels.insert("role".into(), "lab".into());
        sim.step(&[lab], &[], t0 + Duration::minutes(1));
        let closed = sim
            .closed
            .iter()
            .find(|n| n.source == NcSource::Rule)
            .unwrap();
        assert_eq!(
            closed.close_reason.as_deref(),
            Some("the host is no longer in the ISMS scope")
        );
    }
}
