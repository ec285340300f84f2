//! Bodies per format, rendered from the generic [`Event`]: the event itself (`json`), a Slack
//! incoming-webhook message (`slack`), a Microsoft Teams MessageCard (`teams`) and an
//! Alertmanager `POST /api/v2/alerts` array (`alertmanager`). Rendering is deterministic: a
//! retry sends the same bytes.

use serde_json::{Value, json};

use super::config::Format;
use super::event::{Event, EventKind, Severity};

/// The request body for `event` in `format`.
pub fn render(event: &Event, format: Format) -> Vec<u8> {
    let value = match format {
        Format::Json => serde_json::to_value(event).unwrap_or(Value::Null),
        Format::Slack => slack(event),
        Format::Teams => teams(event),
        Format::Alertmanager => alertmanager(event),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

fn facts(event: &Event) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("Event", event.kind.as_str().to_string()),
        ("Severity", event.severity.as_str().to_string()),
        ("When", event.occurred_at.to_rfc3339()),
    ];
    if let Some(host) = &event.host {
        out.push(("Host", format!("{} ({})", host.hostname, host.machine_id)));
    }
    if !event.controls.is_empty() {
        out.push(("Controls", event.controls.join(", ")));
    }
    if let Some(nc) = &event.nonconformity {
        out.push((
            "Nonconformity",
            format!("#{} {} ({})", nc.id, nc.state, nc.grade),
        ));
    }
    if let Some(kpi) = &event.kpi {
        let value = kpi
            .value
            .map(|v| v.to_string())
            .unwrap_or_else(|| "no data".into());
        out.push((
            "KPI",
            format!("{}: {value} (target {})", kpi.id, kpi.target),
        ));
    }
    out.push(("Event id", event.id.clone()));
    out
}

fn emoji(event: &Event) -> &'static str {
    if event.kind.ends_problem() {
        return ":white_check_mark:";
    }
    match event.severity {
        Severity::Critical => ":rotating_light:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
    }
}

/// Slack: `text` (notifications, clients without blocks) plus blocks.
fn slack(event: &Event) -> Value {
    let headline = format!("{} *{}*", emoji(event), escape_slack(&event.title));
    let fields: Vec<Value> = facts(event)
        .into_iter()
        .map(|(name, value)| json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", escape_slack(&value))}))
        .collect();
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": escape_slack(&event.summary)}}),
    ];
    // Slack allows at most 10 fields per section.
    for chunk in fields.chunks(10) {
        blocks.push(json!({"type": "section", "fields": chunk}));
    }
    json!({
        "text": format!("[{}] {}", event.severity.as_str(), event.title),
        "blocks": blocks,
    })
}

fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Microsoft Teams: a MessageCard (accepted by Teams incoming webhooks and Workflows).
fn teams(event: &Event) -> Value {
    let colour = if event.kind.ends_problem() {
        "2EB886"
    } else {
        match event.severity {
            Severity::Critical => "D40E0D",
            Severity::Warning => "FFA500",
            Severity::Info => "439FE0",
        }
    };
    let facts: Vec<Value> = facts(event)
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": event.title,
        "themeColor": colour,
        "title": event.title,
        "sections": [{"text": event.summary, "facts": facts}],
    })
}

/// Alertmanager v2: one alert. Labels identify the problem (the same for its opening and its
/// resolution, so the resolution ends the same alert); resolving events set `endsAt`.
fn alertmanager(event: &Event) -> Value {
    let mut labels = serde_json::Map::new();
    let alertname = match event.kind {
        EventKind::NcOpened
        | EventKind::NcEscalated
        | EventKind::NcResolved
        | EventKind::NcClosed => "VigilNonconformity",
        EventKind::KpiBreached => "VigilKpiBreached",
        EventKind::HostStale => "VigilHostStale",
        EventKind::EvidenceGap => "VigilEvidenceGap",
    };
    labels.insert("alertname".into(), alertname.into());
    labels.insert("severity".into(), event.severity.as_str().into());
    labels.insert("source".into(), "vigil".into());
    if let Some(nc) = &event.nonconformity {
        labels.insert("nonconformity".into(), nc.id.to_string().into());
        labels.insert("nc_source".into(), nc.source.clone().into());
        labels.insert("grade".into(), nc.grade.clone().into());
    }
    if let Some(host) = &event.host {
        labels.insert("hostname".into(), host.hostname.clone().into());
        labels.insert("machine_id".into(), host.machine_id.clone().into());
    }
    if let Some(kpi) = &event.kpi {
        labels.insert("kpi".into(), kpi.id.clone().into());
    }
    if let Some(rule) = &event.rule {
        labels.insert("rule".into(), rule.id.clone().into());
    }
    let mut alert = json!({
        "labels": labels,
        "annotations": {
            "summary": event.title,
            "description": event.summary,
            "controls": event.controls.join(","),
            "event_kind": event.kind.as_str(),
            "event_id": event.id,
        },
    });
    let start = match &event.nonconformity {
        Some(nc) => nc.opened_at,
        None => event.occurred_at,
    };
    alert["startsAt"] = json!(start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    if event.kind.ends_problem() {
        alert["endsAt"] = json!(
            event
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    json!([alert])
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::webhooks::testdata::sample_events;

    fn golden_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/webhooks")
    }

    /// Every sample event in every format, pretty-printed, against `tests/golden/webhooks/`
    /// (`VIGIL_UPDATE_GOLDEN=1` rewrites them).
    #[test]
    fn formats_match_their_golden_files() {
        let update = std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some();
        for format in [
            Format::Json,
            Format::Slack,
            Format::Teams,
            Format::Alertmanager,
        ] {
            let rendered: Vec<Value> = sample_events()
                .iter()
                .map(|e| serde_json::from_slice(&render(e, format)).unwrap())
                .collect();
            let text = serde_json::to_string_pretty(&rendered).unwrap() + "\n";
            let path = golden_dir().join(format!("{}.json", format.as_str()));
            if update {
                std::fs::create_dir_all(golden_dir()).unwrap();
                std::fs::write(&path, &text).unwrap();
            }
            let golden = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                golden,
                text,
                "{} is stale; rerun with VIGIL_UPDATE_GOLDEN=1",
                path.display()
            );
        }
    }

    #[test]
    fn generic_events_validate_against_the_published_schema() {
        let schema_path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("webhook-event.schema.json");
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for e in sample_events() {
            let body: Value = serde_json::from_slice(&render(&e, Format::Json)).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", e.id);
        }
        // The schema is not a rubber stamp.
        let mut bad: Value =
            serde_json::from_slice(&render(&sample_events()[0], Format::Json)).unwrap();
        bad["kind"] = json!("nonconformity.exploded");
        assert!(!validator.is_valid(&bad));
        let mut bad: Value =
            serde_json::from_slice(&render(&sample_events()[0], Format::Json)).unwrap();
        bad.as_object_mut().unwrap().remove("id");
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn alertmanager_resolutions_end_the_alert_they_opened() {
        let events = sample_events();
        let opened: Value =
            serde_json::from_slice(&render(&events[0], Format::Alertmanager)).unwrap();
        let closed = events
            .iter()
            .find(|e| e.kind == EventKind::NcClosed)
            .unwrap();
        let closed: Value = serde_json::from_slice(&render(closed, Format::Alertmanager)).unwrap();
        assert_eq!(opened[0]["labels"], closed[0]["labels"]);
        assert_eq!(opened[0]["startsAt"], closed[0]["startsAt"]);
        assert!(opened[0].get("endsAt").is_none());
        assert!(closed[0]["endsAt"].is_string());
    }
}
