//! `POST /api/v1/reports`: an agent pushes one report. Authentication, the size caps, decoding
//! and validation happen before the store is touched; the answer 200 is sent only after the
//! store committed the report (or recognised a retry of one it holds). Nothing is stored for a
//! rejected request.

pub mod decode;
pub mod keys;
pub mod signature;

#[cfg(test)]
mod tests;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use tokio::time::Instant;

use self::decode::Decoded;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Detail};
use crate::http::{AppState, Deadline};
use crate::store::{IngestOutcome, IngestRequest};

/// The body of a 200 answer.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Accepted {
    /// The report is now durably stored.
    Stored {
        seq: u64,
        batch_id: String,
        results: usize,
    },
    /// The report was already stored (a retry); the agent may drop it from its spool.
    Duplicate {
        seq: u64,
        batch_id: String,
        first_received_at: chrono::DateTime<chrono::Utc>,
    },
}

pub async fn post_report(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let metrics = std::sync::Arc::clone(&state.metrics);
    let answer = handle_report(state, deadline, caller, headers, body).await;
    metrics.observe_report(match &answer {
        Ok(Json(Accepted::Stored { .. })) => "stored",
        Ok(Json(Accepted::Duplicate { .. })) => "duplicate",
        Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        Err(_) => "refused",
    });
    if let Err(e) = &answer {
        metrics.observe_report_error(e.status.as_u16());
    }
    answer
}

async fn handle_report(
    state: AppState,
    deadline: Deadline,
    Caller(principal): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let started = Instant::now();
    if !principal.role.can_write_reports() {
        return Err(ApiError::forbidden(format!(
            "{:?} is a {} token; only agent tokens may push reports",
            principal.name, principal.role
        )));
    }
    let encoding = decode::content_encoding(&headers)?;
    decode::check_content_type(&headers)?;
    decode::check_declared_length(&headers, &state.limits)?;

    let limit = state.limits.max_body_bytes;
    let bytes = match deadline.run(Limited::new(body, limit).collect()).await {
        Err(_) => {
            return Err(ApiError::request_timeout(format!(
                "the request body did not arrive within {}s (server.request_timeout_secs)",
                state.request_timeout.as_secs()
            )));
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(decode::body_too_large(limit));
        }
        Ok(Err(e)) => {
            return Err(ApiError::bad_request(format!(
                "could not read the request body: {e}"
            )));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let received_at = state.clock.now();
    let wire_bytes = bytes.len();

    let limits = state.limits;
    let decoded = tokio::task::spawn_blocking(move || decode::decode(encoding, &bytes, &limits))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "report decoding task failed");
            ApiError::unavailable("the collector could not decode the report; retry later")
        })?;
    let Decoded {
        report,
        body_sha256,
        json_bytes,
        json,
    } = match decoded {
        Ok(decoded) => decoded,
        Err(e) => {
            tracing::info!(
                agent = %principal.name,
                status = e.status.as_u16(),
                error = %e.message,
                "report rejected"
            );
            return Err(e);
        }
    };

    if report.agent.id != principal.name {
        return Err(ApiError::forbidden(format!(
            "report says agent.id {:?} but the token belongs to agent {:?}; an agent may only \
             send its own reports (set agent.id in the agent's configuration to its enrolled name)",
            report.agent.id, principal.name
        ))
        .with_details(vec![Detail::at(
            "agent.id",
            format!("must be {:?}", principal.name),
        )]));
    }

    let signed = match check_signature(&state, &deadline, &principal.name, &headers, json).await {
        Ok(signed) => signed,
        Err(e) => {
            tracing::info!(
                agent = %principal.name, seq = report.seq, status = e.status.as_u16(),
                error = %e.message, "report rejected"
            );
            return Err(e);
        }
    };

    let seq = report.seq;
    let results = report.results.len();
    let mut counts = crate::store::StatusCounts::default();
    for result in &report.results {
        counts.add(result.status, 1);
    }
    let machine_id = report.host.machine_id.clone();
    let request = IngestRequest {
        agent: principal.name.clone(),
        report,
        received_at,
        body_sha256,
        signed: Some(signed),
    };
    let storing = Instant::now();
    let stored = deadline.run(state.store.ingest(request)).await;
    state
        .metrics
        .observe_store_ingest(storing.elapsed().as_secs_f64());
    let outcome = match stored {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e @ crate::store::StoreError::Busy { .. })) => {
            tracing::warn!(agent = %principal.name, seq, error = %e, "store busy, report refused");
            return Err(ApiError::unavailable(
                "the collector's store is busy (its write queue is full); keep the report and \
                 retry later",
            ));
        }
        Ok(Err(e)) => {
            tracing::error!(agent = %principal.name, seq, error = %e, "storing a report failed");
            return Err(ApiError::unavailable(
                "the collector could not store the report; keep it and retry later",
            ));
        }
        Err(_) => {
            tracing::warn!(agent = %principal.name, seq, "storing a report timed out");
            return Err(ApiError::unavailable(
                "the collector's store is busy; keep the report and retry later (a retry of a \
                 report that was stored meanwhile is answered as a duplicate)",
            ));
        }
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let answer = match outcome {
        IngestOutcome::Stored { seq, batch_id } => {
            state.metrics.observe_results(&counts);
            tracing::info!(
                agent = %principal.name, seq, batch_id = %batch_id, machine_id = %machine_id,
                results, wire_bytes, json_bytes, duration_ms, status = "stored",
                "report ingested"
            );
            Ok(Accepted::Stored {
                seq,
                batch_id,
                results,
            })
        }
        IngestOutcome::Duplicate {
            seq,
            batch_id,
            first_received_at,
            same_body,
        } => {
            if same_body {
                tracing::info!(
                    agent = %principal.name, seq, batch_id = %batch_id, duration_ms,
                    status = "duplicate", "report ingested"
                );
            } else {
                tracing::warn!(
                    agent = %principal.name, seq, batch_id = %batch_id, duration_ms,
                    status = "duplicate",
                    "retry of a stored report differs from the stored body; the first one is kept"
                );
            }
            Ok(Accepted::Duplicate {
                seq,
                batch_id,
                first_received_at,
            })
        }
        IngestOutcome::SeqConflict {
            seq,
            batch_id,
            stored_batch_id,
        } => Err(ApiError::conflict(format!(
            "sequence number {seq} of agent {:?} is already stored with batch_id \
             {stored_batch_id}, and this report has batch_id {batch_id}; the agent's sequence \
             counter went back (restored state directory?): reset it above the stored sequence",
            principal.name
        ))
        .with_details(vec![
            Detail::at("seq", format!("{seq} already used")),
            Detail::at("batch_id", format!("stored report has {stored_batch_id}")),
        ])),
        IngestOutcome::BatchConflict {
            seq,
            batch_id,
            stored_seq,
        } => Err(ApiError::conflict(format!(
            "batch_id {batch_id} is already stored with sequence number {stored_seq}, and this \
             report has {seq}; a retried report must keep both its batch_id and its seq"
        ))
        .with_details(vec![Detail::at(
            "batch_id",
            format!("already used by seq {stored_seq}"),
        )])),
        IngestOutcome::HostOwned { machine_id, owner } => Err(ApiError::forbidden(format!(
            "host {machine_id} is bound to agent {owner:?}, the first agent that reported it; \
             agent {:?} may not write it (two machines with the same /etc/machine-id? cloned \
             images must regenerate it)",
            principal.name
        ))
        .with_details(vec![Detail::at(
            "host.machine_id",
            format!("owned by agent {owner:?}"),
        )])),
        IngestOutcome::AgentInactive { agent } => Err(ApiError::unauthorized(
            format!("the token of {agent:?} was revoked while the report was being received"),
            true,
        )),
    };
    if let Err(e) = &answer {
        tracing::info!(
            agent = %principal.name, seq, status = e.status.as_u16(), error = %e.message,
            duration_ms, "report rejected"
        );
    }
    answer.map(Json)
}

/// The report's signature checked against the agent's registered key (see `signature`).
async fn check_signature(
    state: &AppState,
    deadline: &Deadline,
    agent: &str,
    headers: &HeaderMap,
    json: Vec<u8>,
) -> Result<crate::store::chain::SignedBody, ApiError> {
    let header = signature::header(headers, agent)?;
    let keys = match deadline.run(state.store.agent_keys(agent)).await {
        Ok(Ok(keys)) => keys,
        Ok(Err(e)) => {
            tracing::error!(agent = %agent, error = %e, "reading the agent's keys failed");
            return Err(ApiError::unavailable(
                "the collector could not read the agent's key; retry later",
            ));
        }
        Err(_) => {
            return Err(ApiError::unavailable(
                "the collector's store is busy; retry later",
            ));
        }
    };
    let agent = agent.to_string();
    tokio::task::spawn_blocking(move || signature::verify(&header, json, &agent, &keys))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "signature check task failed");
            ApiError::unavailable("the collector could not check the signature; retry later")
        })?
}
