//! The read API (`GET /api/v1/hosts…`) for viewers, auditors and admins, and its JSON shapes,
//! converted from the store's domain types here and nowhere else. `API.md` documents them.

pub mod isms;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use vigil_shared::report::is_valid_check_id;
use vigil_shared::{Evidence, Status, Value};

use crate::http::auth::Reader;
use crate::http::error::{ApiError, Detail};
use crate::http::{AppState, Deadline};
use crate::store::{
    HistoryQuery, HostSummary, StatusCounts, StoreError, StoredResult, max_storable_time,
    min_storable_time,
};

/// Results returned by one history request unless `limit` says otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 1_000;
/// Most results one history request may ask for.
pub const MAX_HISTORY_LIMIT: usize = 10_000;
/// History window when `from` is not given: this long before `to`.
const DEFAULT_HISTORY_DAYS: i64 = 30;

#[derive(Debug, Serialize)]
pub struct HostsResponse {
    pub hosts: Vec<HostJson>,
}

#[derive(Debug, Serialize)]
pub struct OsJson {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: String,
    pub pretty_name: String,
}

#[derive(Debug, Serialize)]
pub struct StatusCountsJson {
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
    pub no_data: u64,
}

impl From<StatusCounts> for StatusCountsJson {
    fn from(c: StatusCounts) -> Self {
        StatusCountsJson {
            pass: c.pass,
            fail: c.fail,
            error: c.error,
            no_data: c.no_data,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HostJson {
    pub machine_id: String,
    pub hostname: String,
    pub os: OsJson,
    pub kernel: Option<String>,
    pub agent: String,
    pub labels: BTreeMap<String, String>,
    pub assigned_labels: BTreeMap<String, String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub last_seq: u64,
    pub status_counts: StatusCountsJson,
    /// Whether the ISMS scope (Clause 4.3) covers the host; absent without an ISMS. Hosts
    /// outside the scope are inventoried but not judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_scope: Option<bool>,
}

/// Whether the ISMS judges a host.
pub fn host_in_scope(isms: &crate::isms::Isms, h: &HostSummary) -> bool {
    let labels = crate::evaluate::host_labels(
        &h.labels,
        &h.assigned_labels,
        &h.hostname,
        &h.machine_id,
        &h.agent,
        &h.os.id,
        &h.os.version_id,
    );
    crate::evaluate::in_scope(isms, &labels)
}

impl From<HostSummary> for HostJson {
    fn from(h: HostSummary) -> Self {
        HostJson {
            machine_id: h.machine_id,
            hostname: h.hostname,
            os: OsJson {
                id: h.os.id,
                id_like: h.os.id_like,
                version_id: h.os.version_id,
                pretty_name: h.os.pretty_name,
            },
            kernel: h.kernel,
            agent: h.agent,
            labels: h.labels,
            assigned_labels: h.assigned_labels,
            first_seen: h.first_seen,
            last_seen: h.last_seen,
            last_seq: h.last_seq,
            status_counts: h.status_counts.into(),
            in_scope: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PeriodJson {
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct ResultJson {
    pub check: String,
    pub controls: Vec<String>,
    pub status: Status,
    pub summary: String,
    pub observed_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub covers: PeriodJson,
    pub duration_ms: u64,
    pub values: BTreeMap<String, Value>,
    pub evidence: Evidence,
    pub error: Option<String>,
    pub seq: u64,
    pub batch_id: String,
}

impl From<StoredResult> for ResultJson {
    fn from(s: StoredResult) -> Self {
        ResultJson {
            check: s.result.check,
            controls: s.result.controls,
            status: s.result.status,
            summary: s.result.summary,
            observed_at: s.result.observed_at,
            received_at: s.received_at,
            covers: PeriodJson {
                from: s.covers.from,
                until: s.covers.until,
            },
            duration_ms: s.result.duration_ms,
            values: s.result.values,
            evidence: s.result.evidence,
            error: s.result.error,
            seq: s.seq,
            batch_id: s.batch_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HostDetailResponse {
    pub host: HostJson,
    pub results: Vec<ResultJson>,
}

#[derive(Debug, Serialize)]
pub struct HistoryResponse {
    pub machine_id: String,
    pub check: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub results: Vec<ResultJson>,
    pub truncated: bool,
}

/// Query string of the history endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    pub check: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
}

fn store_failure(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store read failed");
    ApiError::unavailable("the collector's store is unavailable; retry later")
}

fn too_slow() -> ApiError {
    ApiError::unavailable("the collector's store did not answer in time; retry later")
}

pub async fn list_hosts(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
) -> Result<Json<HostsResponse>, ApiError> {
    let hosts = deadline
        .run(state.store.list_hosts())
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?;
    Ok(Json(HostsResponse {
        hosts: hosts
            .into_iter()
            .map(|h| {
                let in_scope = state.isms.as_deref().map(|isms| host_in_scope(isms, &h));
                let mut json = HostJson::from(h);
                json.in_scope = in_scope;
                json
            })
            .collect(),
    }))
}

fn unknown_host(machine_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no host with machine id {machine_id:?} has reported; GET /api/v1/hosts lists known hosts"
    ))
}

pub async fn host_detail(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    Path(machine_id): Path<String>,
) -> Result<Json<HostDetailResponse>, ApiError> {
    let detail = deadline
        .run(state.store.host_detail(&machine_id))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?
        .ok_or_else(|| unknown_host(&machine_id))?;
    let in_scope = state
        .isms
        .as_deref()
        .map(|isms| host_in_scope(isms, &detail.host));
    let mut host = HostJson::from(detail.host);
    host.in_scope = in_scope;
    Ok(Json(HostDetailResponse {
        host,
        results: detail.results.into_iter().map(ResultJson::from).collect(),
    }))
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, Detail> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            Detail::at(
                name,
                format!("{text:?} is not an RFC 3339 time such as 2026-06-01T12:00:00Z: {e}"),
            )
        })?
        .with_timezone(&Utc);
    if t < min_storable_time() || t > max_storable_time() {
        return Err(Detail::at(
            name,
            "outside the range 1677-09-21 .. 2262-04-11",
        ));
    }
    Ok(t)
}

/// Turns the query string into a store query, listing every problem at once.
pub fn history_query(
    machine_id: String,
    params: HistoryParams,
    now: DateTime<Utc>,
) -> Result<HistoryQuery, ApiError> {
    let mut problems = Vec::new();
    let check = match params.check {
        Some(check) if is_valid_check_id(&check) => check,
        Some(check) => {
            problems.push(Detail::at(
                "check",
                format!("{check:?} is not a dotted check id such as \"accounts.uid0\""),
            ));
            String::new()
        }
        None => {
            problems.push(Detail::at("check", "required, e.g. ?check=accounts.uid0"));
            String::new()
        }
    };
    let to = match params.to.as_deref().map(|t| parse_time("to", t)) {
        None => Some(now),
        Some(Ok(t)) => Some(t),
        Some(Err(d)) => {
            problems.push(d);
            None
        }
    };
    let from = match params.from.as_deref().map(|t| parse_time("from", t)) {
        None => to.map(|to| to - Duration::days(DEFAULT_HISTORY_DAYS)),
        Some(Ok(t)) => Some(t),
        Some(Err(d)) => {
            problems.push(d);
            None
        }
    };
    let limit = match params.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_HISTORY_LIMIT,
        Some(Ok(n)) if (1..=MAX_HISTORY_LIMIT).contains(&n) => n,
        Some(_) => {
            problems.push(Detail::at(
                "limit",
                format!("must be a whole number from 1 to {MAX_HISTORY_LIMIT}"),
            ));
            DEFAULT_HISTORY_LIMIT
        }
    };
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        problems.push(Detail::at("from", "must be earlier than `to`"));
    }
    match (from, to) {
        (Some(from), Some(to)) if problems.is_empty() => Ok(HistoryQuery {
            machine_id,
            check,
            from,
            to,
            limit,
        }),
        _ => {
            Err(ApiError::bad_request("invalid history query; see details").with_details(problems))
        }
    }
}

pub async fn host_results(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    _reader: Reader,
    Path(machine_id): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "invalid query string: {}; accepted parameters are check, from, to and limit",
            e.body_text()
        ))
    })?;
    let query = history_query(machine_id, params, Utc::now())?;
    let history = deadline
        .run(state.store.result_history(&query))
        .await
        .map_err(|_| too_slow())?
        .map_err(store_failure)?
        .ok_or_else(|| unknown_host(&query.machine_id))?;
    Ok(Json(HistoryResponse {
        machine_id: query.machine_id,
        check: query.check,
        from: query.from,
        to: query.to,
        results: history.results.into_iter().map(ResultJson::from).collect(),
        truncated: history.truncated,
    }))
}
