//! One event of every kind, fixed, for the format golden files and the filter tests.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::event::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

fn host() -> EventHost {
    EventHost {
        machine_id: "9f8e7d6c5b4a39281706f5e4d3c2b1a0".into(),
        hostname: "web-01".into(),
        labels: BTreeMap::from([
            ("env".to_string(), "prod".to_string()),
            ("hostname".to_string(), "web-01".to_string()),
        ]),
        last_seen: Some(t("2026-06-01T00:00:00Z")),
    }
}

fn nc(state: &str, actor: &str, note: &str) -> EventNonconformity {
    EventNonconformity {
        id: 7,
        key: "rule/access.no-extra-uid0/9f8e7d6c5b4a39281706f5e4d3c2b1a0".into(),
        source: "rule".into(),
        grade: "major".into(),
        state: state.into(),
        subject: "access.no-extra-uid0".into(),
        opened_at: t("2026-06-02T00:00:00Z"),
        actor: actor.into(),
        note: note.into(),
        recurrence_of: None,
        owner: None,
        due: None,
    }
}

pub(crate) fn sample_events() -> Vec<Event> {
    let base = |id: &str, kind, at: &str, severity, title: &str, summary: &str| Event {
        schema: SCHEMA.into(),
        id: id.into(),
        kind,
        occurred_at: t(at),
        severity,
        title: title.into(),
        summary: summary.into(),
        controls: vec!["A.8.2".into(), "A.8.8".into(), "A.5.15".into()],
        host: Some(host()),
        nonconformity: None,
        kpi: None,
        rule: None,
    };
    let title = "Only root has UID 0 on web-01";
    vec![
        Event {
            nonconformity: Some(nc("open", "vigil", "rule failing past its grace period")),
            ..base(
                "nc/7/0",
                EventKind::NcOpened,
                "2026-06-02T00:00:00Z",
                Severity::Critical,
                title,
                "Nonconformity #7 opened: rule failing past its grace period",
            )
        },
        Event {
            nonconformity: Some(nc("open", "vigil", "failing again")),
            ..base(
                "nc/7/2",
                EventKind::NcEscalated,
                "2026-06-04T00:00:00Z",
                Severity::Critical,
                title,
                "Nonconformity #7 reopened: failing again <after> the fix & more",
            )
        },
        Event {
            nonconformity: Some(nc("resolved", "vigil", "passing again")),
            ..base(
                "nc/7/3",
                EventKind::NcResolved,
                "2026-06-05T00:00:00Z",
                Severity::Critical,
                title,
                "Nonconformity #7 resolved: passing again",
            )
        },
        Event {
            nonconformity: Some(nc("closed", "alice", "verified by audit")),
            ..base(
                "nc/7/5",
                EventKind::NcClosed,
                "2026-06-08T00:00:00Z",
                Severity::Critical,
                title,
                "Nonconformity #7 closed by alice: verified by audit",
            )
        },
        Event {
            host: None,
            controls: vec!["A.8.8".into()],
            kpi: Some(EventKpi {
                id: "patch-latency".into(),
                name: "Security patch latency".into(),
                value: Some(61.5),
                target: 95.0,
                consecutive_misses: 2,
            }),
            ..base(
                "kpi/patch-latency/1780704000000000000",
                EventKind::KpiBreached,
                "2026-06-06T00:00:00Z",
                Severity::Warning,
                "KPI patch-latency below target",
                "Security patch latency measured 61.5 against a target of 95 (2 misses in a row)",
            )
        },
        Event {
            controls: vec!["A.8.16".into()],
            ..base(
                "host_stale/9f8e7d6c5b4a39281706f5e4d3c2b1a0/1780272000000000000",
                EventKind::HostStale,
                "2026-06-02T00:00:00Z",
                Severity::Warning,
                "web-01 stopped reporting",
                "No report from web-01 since 2026-06-01T00:00:00+00:00 (stale after 86400 s)",
            )
        },
        Event {
            controls: vec!["A.8.24".into()],
            rule: Some(EventRule {
                id: "crypto.root-encrypted".into(),
                title: "Root filesystem encrypted".into(),
                severity: "high".into(),
                reason: "no result for encryption.root".into(),
            }),
            ..base(
                "evidence_gap/9f8e7d6c5b4a39281706f5e4d3c2b1a0/crypto.root-encrypted/1780272000000000000",
                EventKind::EvidenceGap,
                "2026-06-01T00:00:00Z",
                Severity::Critical,
                "No evidence for crypto.root-encrypted on web-01",
                "Rule crypto.root-encrypted has no evidence on web-01: no result for encryption.root",
            )
        },
    ]
}
