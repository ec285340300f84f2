//! The ISMS side of the command line: evaluate once, print the SoA, KPIs, objectives and the
//! nonconformity register (at any past time), take steps on nonconformities, and write the
//! management review pack. `main.rs` parses flags and calls these; they return the text to
//! print so that tests can call them directly.

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use crate::engine::Engine;
use crate::evaluate::nonconformities::NcAction;
use crate::evaluate::{NcState, Nonconformity};
use crate::isms::Isms;
use crate::reports::{review, soa};
use crate::store::{NcActionOutcome, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
    #[error("no nonconformity NC-{0}")]
    NotFound(u64),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses `--at`/`--from`/`--to`: an RFC 3339 time or a date (the end of that day, UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    crate::api::isms::parse_point("time", text).map_err(|d| d.message)
}

/// One evaluation at `now`.
pub async fn evaluate(
    isms: std::sync::Arc<Isms>,
    store: std::sync::Arc<dyn Store>,
    now: DateTime<Utc>,
) -> Result<String, CommandError> {
    let mut engine = Engine::resume(isms, store).await?;
    let r = engine.tick(now).await?;
    Ok(format!(
        "evaluated at {}: {} hosts ({} in scope), {} verdicts ({} changed), {} KPIs measured, {} analysed, \
         {} nonconformities opened, {} nonconformity events, {} ms\n",
        now.to_rfc3339(),
        r.hosts,
        r.in_scope,
        r.verdicts,
        r.verdict_changes,
        r.kpis_measured,
        r.kpis_analysed,
        r.nonconformities_opened,
        r.nonconformity_events,
        r.millis
    ))
}

/// The SoA as CSV or JSON.
pub async fn soa(
    isms: &Isms,
    store: &dyn Store,
    at: Option<DateTime<Utc>>,
    json: bool,
) -> Result<String, CommandError> {
    let rows = soa::build(isms, &store.controls_at(at).await?);
    if json {
        Ok(
            serde_json::to_string_pretty(&serde_json::json!({ "at": at, "controls": rows }))?
                + "\n",
        )
    } else {
        Ok(soa::to_csv(&rows))
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
        }
    })
}

/// KPIs at a time, as a table or JSON.
pub async fn kpis(
    isms: &Isms,
    store: &dyn Store,
    at: Option<DateTime<Utc>>,
    json: bool,
) -> Result<String, CommandError> {
    let snapshots = store.kpis_at(at).await?;
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "at": at,
            "kpis": snapshots.iter().map(|s| serde_json::json!({
                "kpi": s.kpi, "value": s.value, "evaluation": s.evaluation
            })).collect::<Vec<_>>()
        }))? + "\n");
    }
    let mut out = format!(
        "{:<26} {:>9} {:>9} {:<10} {:<20} MEASURED BY / ANALYSED BY\n",
        "KPI", "VALUE", "TARGET", "STATUS", "ANALYSED"
    );
    for kpi in &isms.kpis {
        let s = snapshots.iter().find(|s| s.kpi == kpi.id);
        let value = s.and_then(|s| s.value.as_ref()).and_then(|v| v.value);
        let eval = s.and_then(|s| s.evaluation.as_ref());
        let op = match kpi.target.direction {
            crate::isms::Direction::AtLeast => ">=",
            crate::isms::Direction::AtMost => "<=",
        };
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>9} {:<10} {:<20} {} / {}",
            kpi.id,
            fmt_opt(value),
            format!("{op}{}", fmt_opt(Some(kpi.target.value))),
            eval.map_or("–", |e| e.status.as_str()),
            eval.map_or("never".to_string(), |e| e
                .at
                .format("%Y-%m-%d %H:%M")
                .to_string()),
            kpi.measured_by,
            kpi.analysed_by
        );
    }
    Ok(out)
}

/// Objectives at a time.
pub async fn objectives(
    isms: &Isms,
    store: &dyn Store,
    at: Option<DateTime<Utc>>,
    json: bool,
) -> Result<String, CommandError> {
    let records = store.objectives_at(at).await?;
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "at": at,
            "objectives": records.iter().map(|r| serde_json::json!({
                "objective": r.state.objective, "status": r.state.status, "reason": r.state.reason, "since": r.since
            })).collect::<Vec<_>>()
        }))? + "\n");
    }
    let mut out = format!(
        "{:<12} {:<10} {:<11} {:<30} WHY\n",
        "OBJECTIVE", "STATUS", "DEADLINE", "OWNER"
    );
    for o in &isms.objectives {
        let r = records.iter().find(|r| r.state.objective == o.id);
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:<11} {:<30} {}",
            o.id,
            r.map_or("no_data", |r| r.state.status.as_str()),
            o.deadline,
            o.owner,
            r.map(|r| r.state.reason.as_str())
                .unwrap_or("not evaluated yet")
        );
    }
    Ok(out)
}

fn nc_line(nc: &Nonconformity) -> String {
    format!(
        "NC-{:<5} {:<11} {:<15} {:<11} {:<17} {}",
        nc.id,
        nc.grade.as_str(),
        nc.state.as_str(),
        nc.source.as_str(),
        nc.opened_at.format("%Y-%m-%d %H:%M"),
        nc.title
    )
}

/// The nonconformity register at a time.
pub async fn nc_list(
    store: &dyn Store,
    at: Option<DateTime<Utc>>,
    state: Option<NcState>,
    json: bool,
) -> Result<String, CommandError> {
    let ncs: Vec<Nonconformity> = store
        .nonconformities_at(at)
        .await?
        .into_iter()
        .filter(|nc| state.is_none_or(|s| nc.state == s))
        .collect();
    if json {
        return Ok(serde_json::to_string_pretty(
            &serde_json::json!({ "at": at, "nonconformities": ncs }),
        )? + "\n");
    }
    let mut out = format!(
        "{:<8} {:<11} {:<15} {:<11} {:<17} TITLE\n",
        "ID", "GRADE", "STATE", "SOURCE", "OPENED"
    );
    for nc in &ncs {
        out.push_str(&nc_line(nc));
        out.push('\n');
    }
    Ok(out)
}

/// One nonconformity with its events.
pub async fn nc_show(store: &dyn Store, id: u64, json: bool) -> Result<String, CommandError> {
    let detail = store
        .nonconformity(id)
        .await?
        .ok_or(CommandError::NotFound(id))?;
    if json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "nonconformity": detail.nc, "events": detail.events
        }))? + "\n");
    }
    let nc = &detail.nc;
    let mut out = format!("{}\n", nc_line(nc));
    let _ = writeln!(out, "  controls: {}", nc.controls.join(", "));
    if let Some(host) = &nc.hostname {
        let _ = writeln!(
            out,
            "  host: {host} ({})",
            nc.machine_id.as_deref().unwrap_or("")
        );
    }
    for (label, value) in [
        ("owner", &nc.owner),
        ("root cause", &nc.root_cause),
        ("corrective action", &nc.corrective_action),
        ("close reason", &nc.close_reason),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "  {label}: {v}");
        }
    }
    if let Some(due) = nc.due {
        let _ = writeln!(out, "  due: {due}");
    }
    if let Some(previous) = nc.recurrence_of {
        let _ = writeln!(out, "  recurrence of NC-{previous}");
    }
    out.push_str("  events:\n");
    for e in &detail.events {
        let _ = writeln!(
            out,
            "    {}  {:<15} {} → {}  by {}: {}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.kind.as_str(),
            e.from.map_or("–", |s| s.as_str()),
            e.to.as_str(),
            e.actor,
            e.note
        );
    }
    Ok(out)
}

/// A person's step on a nonconformity.
pub async fn nc_action(
    store: &dyn Store,
    id: u64,
    action: NcAction,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<String, CommandError> {
    match store.nc_action(id, action, actor, now).await? {
        NcActionOutcome::Applied(detail) => Ok(format!("{}\n", nc_line(&detail.nc))),
        NcActionOutcome::Refused(why) => Err(CommandError::Refused(why)),
        NcActionOutcome::NotFound => Err(CommandError::NotFound(id)),
    }
}

/// The management review pack for `[from, to]`.
pub async fn review(
    isms: &Isms,
    store: &dyn Store,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    html: bool,
    now: DateTime<Utc>,
) -> Result<String, CommandError> {
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - Duration::days(90));
    if from >= to {
        return Err(CommandError::Refused(
            "--from must be earlier than --to".into(),
        ));
    }
    let inputs = review::gather(isms, store, from, to, now).await?;
    let pack = review::build(isms, &inputs);
    Ok(if html {
        review::html(&pack)
    } else {
        review::markdown(&pack)
    })
}
