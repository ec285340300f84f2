//! Events derived from what the store committed, never from what the engine meant to do:
//! - nonconformity events (the append-only `nc_events`, automatic and people's): `opened` →
//!   `nonconformity.opened`, `reopened` → `nonconformity.escalated`, `resolved` →
//!   `nonconformity.resolved`, `closed` → `nonconformity.closed`; id `nc/<nc id>/<event seq>`
//!   (the event's position in the nonconformity's history, which never changes);
//! - `kpi.breached`: every saved KPI analysis with status `missed`; id `kpi/<kpi>/<analysis ns>`;
//! - `host.stale`: a host whose latest report is older than the stale time; it happened at
//!   `last_seen + stale_after`; id `host_stale/<machine id>/<last_seen ns>` (a host that reports
//!   again and goes silent again is a new happening);
//! - `evidence.gap`: a current verdict `no_data` (a rule in scope for the host has no result
//!   for its check, or the result says `no_data`); it happened when the verdict became
//!   `no_data`; id `evidence_gap/<machine id>/<rule>/<since ns>`.
//!
//! Each pass reads everything that happened at or after `from` (the durable cursor minus a
//! re-read window): what was already queued is recognised by its id and skipped by the outbox.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::event::*;
use crate::evaluate::{KpiStatus, NcEventKind, Verdict};
use crate::isms::Isms;
use crate::store::{Store, StoreError, max_storable_time};

fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// What to derive in one pass.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// Happenings at or after this time.
    pub from: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// Also read verdicts and KPI analyses (after an evaluation).
    pub evaluation: bool,
    /// Also look for stale hosts (reads every host: not on every short pass).
    pub hosts: bool,
    pub stale_after: Duration,
}

/// Every event of the pass, oldest first.
pub async fn derive(
    store: &dyn Store,
    isms: Option<&Isms>,
    pass: Pass,
) -> Result<Vec<Event>, StoreError> {
    let happened = store
        .nc_events_between(pass.from, max_storable_time())
        .await?;
    let mut events = Vec::new();
    // Short passes with nothing new stop here: the host list is the expensive read.
    if happened.is_empty() && !pass.hosts && !pass.evaluation {
        return Ok(events);
    }
    let hosts: HashMap<String, EventHost> = store
        .list_hosts()
        .await?
        .into_iter()
        .map(|h| {
            let labels = crate::evaluate::host_labels(
                &h.labels,
                &h.assigned_labels,
                &h.hostname,
                &h.machine_id,
                &h.agent,
                &h.os.id,
                &h.os.version_id,
            );
            (
                h.machine_id.clone(),
                EventHost {
                    machine_id: h.machine_id,
                    hostname: h.hostname,
                    labels,
                    last_seen: Some(h.last_seen),
                },
            )
        })
        .collect();
    nonconformity_events(store, &hosts, happened, &mut events).await?;
    if pass.hosts || pass.evaluation {
        stale_hosts(&hosts, pass, &mut events);
    }
    if let (true, Some(isms)) = (pass.evaluation, isms) {
        kpi_breaches(store, isms, pass, &mut events).await?;
        evidence_gaps(store, isms, &hosts, pass, &mut events).await?;
    }
    events.sort_by(|a, b| {
        a.occurred_at
            .cmp(&b.occurred_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(events)
}

async fn nonconformity_events(
    store: &dyn Store,
    hosts: &HashMap<String, EventHost>,
    happened: Vec<(u64, crate::evaluate::NcEvent)>,
    out: &mut Vec<Event>,
) -> Result<(), StoreError> {
    let mut details = HashMap::new();
    for (nc_id, event) in happened {
        let kind = match event.kind {
            NcEventKind::Opened => EventKind::NcOpened,
            NcEventKind::Reopened => EventKind::NcEscalated,
            NcEventKind::Resolved => EventKind::NcResolved,
            NcEventKind::Closed => EventKind::NcClosed,
            _ => continue,
        };
        let detail = match details.entry(nc_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let Some(detail) = store.nonconformity(nc_id).await? else {
                    continue;
                };
                v.insert(detail)
            }
        };
        let Some(seq) = detail.events.iter().position(|e| *e == event) else {
            continue;
        };
        let nc = &detail.nc;
        let host = nc.machine_id.as_ref().map(|m| {
            hosts.get(m).cloned().unwrap_or_else(|| EventHost {
                machine_id: m.clone(),
                hostname: nc.hostname.clone().unwrap_or_default(),
                labels: Default::default(),
                last_seen: None,
            })
        });
        let verb = match kind {
            EventKind::NcOpened if nc.recurrence_of.is_some() => "opened again (recurrence)",
            EventKind::NcOpened => "opened",
            EventKind::NcEscalated => "reopened: the fix did not hold",
            EventKind::NcResolved => "resolved",
            _ => "closed",
        };
        let by = if event.actor == crate::evaluate::SYSTEM_ACTOR {
            String::new()
        } else {
            format!(" by {}", event.actor)
        };
        let note = if event.note.is_empty() {
            String::new()
        } else {
            format!(": {}", event.note)
        };
        out.push(Event {
            schema: SCHEMA.into(),
            id: format!("nc/{nc_id}/{seq}"),
            kind,
            occurred_at: event.at,
            severity: Severity::of_grade(nc.grade),
            title: nc.title.clone(),
            summary: format!("Nonconformity #{nc_id} {verb}{by}{note}"),
            controls: nc.controls.clone(),
            host,
            nonconformity: Some(EventNonconformity {
                id: nc_id,
                key: nc.key.clone(),
                source: nc.source.as_str().into(),
                grade: nc.grade.as_str().into(),
                state: event.to.as_str().into(),
                subject: nc.subject.clone(),
                opened_at: nc.opened_at,
                actor: event.actor.clone(),
                note: event.note.clone(),
                recurrence_of: nc.recurrence_of,
                owner: nc.owner.clone(),
                due: nc.due,
            }),
            kpi: None,
            rule: None,
        });
    }
    Ok(())
}

fn stale_hosts(hosts: &HashMap<String, EventHost>, pass: Pass, out: &mut Vec<Event>) {
    for host in hosts.values() {
        let Some(last_seen) = host.last_seen else {
            continue;
        };
        let stale_at = last_seen + pass.stale_after;
        if stale_at > pass.now || stale_at < pass.from {
            continue;
        }
        out.push(Event {
            schema: SCHEMA.into(),
            id: format!("host_stale/{}/{}", host.machine_id, ns(last_seen)),
            kind: EventKind::HostStale,
            occurred_at: stale_at,
            severity: Severity::Warning,
            title: format!("{} stopped reporting", host.hostname),
            summary: format!(
                "No report from {} since {} (stale after {} s)",
                host.hostname,
                last_seen.to_rfc3339(),
                pass.stale_after.num_seconds()
            ),
            controls: vec!["A.8.16".into()],
            host: Some(host.clone()),
            nonconformity: None,
            kpi: None,
            rule: None,
        });
    }
}

async fn kpi_breaches(
    store: &dyn Store,
    isms: &Isms,
    pass: Pass,
    out: &mut Vec<Event>,
) -> Result<(), StoreError> {
    for kpi in &isms.kpis {
        let (_, analyses) = store
            .kpi_history(&kpi.id, pass.from, max_storable_time(), 10_000)
            .await?;
        for a in analyses {
            if a.status != KpiStatus::Missed {
                continue;
            }
            let value = a
                .value
                .map(|v| v.to_string())
                .unwrap_or_else(|| "nothing".into());
            out.push(Event {
                schema: SCHEMA.into(),
                id: format!("kpi/{}/{}", kpi.id, ns(a.at)),
                kind: EventKind::KpiBreached,
                occurred_at: a.at,
                severity: Severity::of_grade(kpi.nc_grade),
                title: format!("KPI {} below target", kpi.id),
                summary: format!(
                    "{} measured {value} against a target of {} ({} misses in a row)",
                    kpi.name, a.target, a.consecutive_misses
                ),
                controls: kpi.controls.clone(),
                host: None,
                nonconformity: None,
                kpi: Some(EventKpi {
                    id: kpi.id.clone(),
                    name: kpi.name.clone(),
                    value: a.value,
                    target: a.target,
                    consecutive_misses: a.consecutive_misses,
                }),
                rule: None,
            });
        }
    }
    Ok(())
}

async fn evidence_gaps(
    store: &dyn Store,
    isms: &Isms,
    hosts: &HashMap<String, EventHost>,
    pass: Pass,
    out: &mut Vec<Event>,
) -> Result<(), StoreError> {
    for v in store.verdicts_at(None, None, None).await? {
        if v.verdict != Verdict::NoData || v.since < pass.from {
            continue;
        }
        let Some(rule) = isms.rule(&v.rule) else {
            continue;
        };
        let host = hosts
            .get(&v.machine_id)
            .cloned()
            .unwrap_or_else(|| EventHost {
                machine_id: v.machine_id.clone(),
                hostname: String::new(),
                labels: Default::default(),
                last_seen: None,
            });
        out.push(Event {
            schema: SCHEMA.into(),
            id: format!("evidence_gap/{}/{}/{}", v.machine_id, v.rule, ns(v.since)),
            kind: EventKind::EvidenceGap,
            occurred_at: v.since,
            severity: Severity::of_rule(rule.severity),
            title: format!("No evidence for {} on {}", rule.id, host.hostname),
            summary: format!(
                "Rule {} has no evidence on {}: {}",
                rule.id, host.hostname, v.reason
            ),
            controls: rule.controls.clone(),
            host: Some(host),
            nonconformity: None,
            kpi: None,
            rule: Some(EventRule {
                id: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity.as_str().into(),
                reason: v.reason.clone(),
            }),
        });
    }
    Ok(())
}
