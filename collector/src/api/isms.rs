//! The ISMS read API (definition, live SoA, verdicts, KPIs, objectives, nonconformities,
//! management review) and the nonconformity workflow for admins. Every read takes `at`
//! (RFC 3339 time, or a date meaning the end of that day in UTC) to answer "what was the state
//! then"; without it, the current state.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::evaluate::nonconformities::NcAction;
use crate::evaluate::{KpiEvaluation, KpiValue, NcEvent, NcSource, NcState, Nonconformity};
use crate::http::auth::{Admin, Reader};
use crate::http::error::{ApiError, Detail};
use crate::http::{AppState, Deadline};
use crate::isms::Isms;
use crate::reports::{review, soa};
use crate::store::{NcActionOutcome, StoreError};

fn store_failure(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store read failed");
    ApiError::unavailable("the collector's store is unavailable; retry later")
}

fn too_slow() -> ApiError {
    ApiError::unavailable("the collector's store did not answer in time; retry later")
}

fn no_isms() -> ApiError {
    ApiError::not_found(
        "this collector has no ISMS definition: set [isms] dir in its configuration (the default \
         pack is packaging/isms/)",
    )
}

fn isms_of(state: &AppState) -> Result<&Isms, ApiError> {
    state.isms.as_deref().ok_or_else(no_isms)
}

/// Parses `at`/`from`/`to`: an RFC 3339 time, or a date meaning the end of that day (UTC).
pub fn parse_point(name: &str, text: &str) -> Result<DateTime<Utc>, Detail> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let next = d.succ_opt().unwrap_or(d);
        let end =
            next.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - Duration::nanoseconds(1);
        return Ok(end);
    }
    Err(Detail::at(
        name,
        format!(
            "{text:?} is neither an RFC 3339 time (2026-06-01T12:00:00Z) nor a date (2026-06-01)"
        ),
    ))
}

fn query<T>(params: Result<Query<T>, QueryRejection>, accepted: &str) -> Result<T, ApiError> {
    params.map(|Query(p)| p).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid query string: {}; accepted parameters are {accepted}",
            e.body_text()
        ))
    })
}

fn optional_point(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| parse_point(name, v))
        .transpose()
        .map_err(|d| ApiError::bad_request(format!("invalid `{name}`")).with_details(vec![d]))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtParams {
    pub at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoaParams {
    pub at: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictParams {
    pub at: Option<String>,
    pub host: Option<String>,
    pub rule: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NcParams {
    pub at: Option<String>,
    pub state: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub format: Option<String>,
}

/// `GET /api/v1/isms`: the definition in force.
pub async fn definition(
    State(state): State<AppState>,
    _reader: Reader,
) -> Result<Json<serde_json::Value>, ApiError> {
    let isms = isms_of(&state)?;
    let kpis: Vec<serde_json::Value> = isms
        .kpis
        .iter()
        .map(|k| {
            let mut v = serde_json::to_value(k).unwrap_or_default();
            v["objectives"] = serde_json::json!(isms.objectives_of_kpi(&k.id));
            v
        })
        .collect();
    Ok(Json(serde_json::json!({
        "organisation": isms.organisation,
        "scope": isms.scope,
        "policy": isms.policy,
        "issues": isms.issues,
        "parties": isms.parties,
        "rules": isms.rules,
        "exceptions": isms.exceptions,
        "kpis": kpis,
        "objectives": isms.objectives,
        "risks": isms.risks,
        "audits": isms.audits,
    })))
}

/// `GET /api/v1/soa?at=&format=json|csv`: the live Statement of Applicability.
pub async fn statement_of_applicability(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    params: Result<Query<SoaParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params, "at and format")?;
    let isms = isms_of(&state)?;
    let at = optional_point("at", params.at.as_deref())?;
    let records = deadline
        .run(state.store.controls_at(at))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    let rows = soa::build(isms, &records);
    match params.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(serde_json::json!({ "at": at, "controls": rows })).into_response()),
        "csv" => Ok((
            [(CONTENT_TYPE, "text/csv; charset=utf-8")],
            soa::to_csv(&rows),
        )
            .into_response()),
        other => Err(ApiError::bad_request(format!(
            "format {other:?}: use json or csv"
        ))),
    }
}

#[derive(Debug, Serialize)]
pub struct VerdictJson {
    pub machine_id: String,
    pub rule: String,
    pub verdict: &'static str,
    pub reason: String,
    pub overdue: bool,
    pub exception: Option<String>,
    pub since: DateTime<Utc>,
}

/// `GET /api/v1/verdicts?at=&host=&rule=`.
pub async fn verdicts(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    params: Result<Query<VerdictParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = query(params, "at, host and rule")?;
    isms_of(&state)?;
    let at = optional_point("at", params.at.as_deref())?;
    let records = deadline
        .run(
            state
                .store
                .verdicts_at(at, params.host.as_deref(), params.rule.as_deref()),
        )
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    let verdicts: Vec<VerdictJson> = records
        .into_iter()
        .map(|r| VerdictJson {
            machine_id: r.machine_id,
            rule: r.rule,
            verdict: r.verdict.as_str(),
            reason: r.reason,
            overdue: r.overdue,
            exception: r.exception,
            since: r.since,
        })
        .collect();
    Ok(Json(serde_json::json!({ "at": at, "verdicts": verdicts })))
}

/// `GET /api/v1/kpis?at=`: every KPI with its definition (9.1 a-f), latest value and analysis.
pub async fn kpis(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    params: Result<Query<AtParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = query(params, "at")?;
    let isms = isms_of(&state)?;
    let at = optional_point("at", params.at.as_deref())?;
    let snapshots = deadline
        .run(state.store.kpis_at(at))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    let kpis: Vec<serde_json::Value> = isms
        .kpis
        .iter()
        .map(|k| {
            let snapshot = snapshots.iter().find(|s| s.kpi == k.id);
            serde_json::json!({
                "id": k.id,
                "name": k.name,
                "description": k.description,
                "measure": k.measure,
                "measure_schedule": k.measure_schedule.as_str(),
                "measured_by": k.measured_by,
                "analysis_schedule": k.analysis_schedule.as_str(),
                "analysed_by": k.analysed_by,
                "target": k.target,
                "controls": k.controls,
                "objectives": isms.objectives_of_kpi(&k.id),
                "latest_value": snapshot.and_then(|s| s.value.clone()),
                "latest_evaluation": snapshot.and_then(|s| s.evaluation.clone()),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "at": at, "kpis": kpis })))
}

/// `GET /api/v1/kpis/{id}?from=&to=&limit=`: measurements and analyses over time.
pub async fn kpi_history(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    Path(id): Path<String>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = query(params, "from, to and limit")?;
    let isms = isms_of(&state)?;
    if isms.kpi(&id).is_none() {
        return Err(ApiError::not_found(format!(
            "no KPI {id:?}; GET /api/v1/kpis lists them"
        )));
    }
    let to = optional_point("to", params.to.as_deref())?.unwrap_or_else(|| state.clock.now());
    let from = optional_point("from", params.from.as_deref())?.unwrap_or(to - Duration::days(90));
    let limit = params.limit.unwrap_or(10_000).clamp(1, 100_000);
    let (values, evaluations): (Vec<KpiValue>, Vec<KpiEvaluation>) = deadline
        .run(state.store.kpi_history(&id, from, to, limit))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    Ok(Json(serde_json::json!({
        "kpi": id, "from": from, "to": to, "values": values, "evaluations": evaluations,
    })))
}

/// `GET /api/v1/objectives?at=`.
pub async fn objectives(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    params: Result<Query<AtParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = query(params, "at")?;
    let isms = isms_of(&state)?;
    let at = optional_point("at", params.at.as_deref())?;
    let records = deadline
        .run(state.store.objectives_at(at))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    let objectives: Vec<serde_json::Value> = isms
        .objectives
        .iter()
        .map(|o| {
            let record = records.iter().find(|r| r.state.objective == o.id);
            serde_json::json!({
                "id": o.id,
                "statement": o.statement,
                "target": o.target,
                "kpis": o.kpis,
                "deadline": o.deadline,
                "owner": o.owner,
                "plan": o.plan,
                "resources": o.resources,
                "status": record.map_or("no_data", |r| r.state.status.as_str()),
                "reason": record.map(|r| r.state.reason.clone()),
                "since": record.map(|r| r.since),
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "at": at, "objectives": objectives }),
    ))
}

fn nc_json(nc: &Nonconformity) -> serde_json::Value {
    let mut v = serde_json::to_value(nc).unwrap_or_default();
    v["ref"] = serde_json::json!(format!("NC-{}", nc.id));
    v
}

/// `GET /api/v1/nonconformities?at=&state=&source=`: the register.
pub async fn nonconformities(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    params: Result<Query<NcParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = query(params, "at, state and source")?;
    isms_of(&state)?;
    let at = optional_point("at", params.at.as_deref())?;
    let wanted_state = params
        .state
        .as_deref()
        .map(|s| {
            NcState::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "state {s:?}: use open, action_planned, resolved, verified or closed"
                ))
            })
        })
        .transpose()?;
    let wanted_source = params
        .source
        .as_deref()
        .map(|s| {
            NcSource::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("source {s:?}: use rule, kpi, blind_spot or audit"))
            })
        })
        .transpose()?;
    let ncs = deadline
        .run(state.store.nonconformities_at(at))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    let list: Vec<serde_json::Value> = ncs
        .iter()
        .filter(|nc| wanted_state.is_none_or(|s| nc.state == s))
        .filter(|nc| wanted_source.is_none_or(|s| nc.source == s))
        .map(nc_json)
        .collect();
    Ok(Json(
        serde_json::json!({ "at": at, "nonconformities": list }),
    ))
}

/// `GET /api/v1/nonconformities/{id}`: one nonconformity with every event.
pub async fn nonconformity(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    Path(id): Path<u64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    isms_of(&state)?;
    let detail = deadline
        .run(state.store.nonconformity(id))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?
        .ok_or_else(|| ApiError::not_found(format!("no nonconformity NC-{id}")))?;
    let events: Vec<&NcEvent> = detail.events.iter().collect();
    Ok(Json(
        serde_json::json!({ "nonconformity": nc_json(&detail.nc), "events": events }),
    ))
}

/// The body of `POST /api/v1/nonconformities/{id}/actions`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionBody {
    Plan {
        owner: String,
        root_cause: String,
        corrective_action: String,
        due: NaiveDate,
    },
    Resolve {
        note: String,
    },
    Verify {
        note: String,
    },
    Close {
        reason: String,
    },
}

impl From<ActionBody> for NcAction {
    fn from(body: ActionBody) -> Self {
        match body {
            ActionBody::Plan {
                owner,
                root_cause,
                corrective_action,
                due,
            } => NcAction::Plan {
                owner,
                root_cause,
                corrective_action,
                due,
            },
            ActionBody::Resolve { note } => NcAction::Resolve { note },
            ActionBody::Verify { note } => NcAction::Verify { note },
            ActionBody::Close { reason } => NcAction::Close { reason },
        }
    }
}

/// `POST /api/v1/nonconformities/{id}/actions`: admins record the corrective-action plan,
/// resolve or verify audit findings, or close with a reason. The actor is the token's name.
pub async fn nonconformity_action(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    Admin(principal): Admin,
    Path(id): Path<u64>,
    body: Result<Json<ActionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    isms_of(&state)?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; send {{\"action\": \"plan\", \"owner\", \"root_cause\", \"corrective_action\", \"due\"}}, \
             {{\"action\": \"resolve\"|\"verify\", \"note\"}} or {{\"action\": \"close\", \"reason\"}}",
            e.body_text()
        ))
    })?;
    let outcome = deadline
        .run(
            state
                .store
                .nc_action(id, body.into(), &principal.name, state.clock.now()),
        )
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    match outcome {
        NcActionOutcome::Applied(detail) => Ok(Json(serde_json::json!({
            "nonconformity": nc_json(&detail.nc),
            "events": detail.events,
        }))),
        NcActionOutcome::Refused(why) => Err(ApiError::conflict(why)),
        NcActionOutcome::NotFound => Err(ApiError::not_found(format!("no nonconformity NC-{id}"))),
    }
}

/// `POST /api/v1/evaluations`: admins ask for an evaluation now (after changing something)
/// instead of waiting for the next interval; answers what it did.
pub async fn evaluate_now(
    State(state): State<AppState>,
    Admin(principal): Admin,
) -> Result<Json<serde_json::Value>, ApiError> {
    isms_of(&state)?;
    let engine = state.engine.as_ref().ok_or_else(no_isms)?;
    tracing::info!(principal = %principal.name, "evaluation requested");
    let report = engine
        .evaluate_now()
        .await
        .map_err(|e| ApiError::unavailable(format!("the evaluation failed: {e}")))?;
    Ok(Json(serde_json::json!({
        "hosts": report.hosts,
        "in_scope": report.in_scope,
        "verdicts": report.verdicts,
        "verdict_changes": report.verdict_changes,
        "kpis_measured": report.kpis_measured,
        "kpis_analysed": report.kpis_analysed,
        "nonconformities_opened": report.nonconformities_opened,
        "nonconformity_events": report.nonconformity_events,
        "millis": report.millis,
    })))
}

/// `GET /api/v1/reports/management-review?from=&to=&format=md|html`.
pub async fn management_review(
    State(state): State<AppState>,
    _reader: Reader,
    params: Result<Query<ReviewParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params, "from, to and format")?;
    let isms = isms_of(&state)?;
    let now = state.clock.now();
    let to = optional_point("to", params.to.as_deref())?.unwrap_or(now);
    let from = optional_point("from", params.from.as_deref())?.unwrap_or(to - Duration::days(90));
    if from >= to {
        return Err(ApiError::bad_request("`from` must be earlier than `to`"));
    }
    // A review reads a whole period: it is allowed longer than one request deadline.
    let inputs = review::gather(isms, state.store.as_ref(), from, to, now)
        .await
        .map_err(store_failure)?;
    let pack = review::build(isms, &inputs);
    match params.format.as_deref().unwrap_or("md") {
        "md" | "markdown" => Ok((
            [(CONTENT_TYPE, "text/markdown; charset=utf-8")],
            review::markdown(&pack),
        )
            .into_response()),
        "html" => Ok((
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            review::html(&pack),
        )
            .into_response()),
        other => Err(ApiError::bad_request(format!(
            "format {other:?}: use md or html"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_mean_the_end_of_the_day() {
        let t = parse_point("at", "2026-06-01").unwrap();
        assert_eq!(
            t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2026-06-01T23:59:59.999999999Z"
        );
        let t = parse_point("at", "2026-06-01T12:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-06-01T10:00:00+00:00");
        assert!(parse_point("at", "yesterday").is_err());
    }
}
