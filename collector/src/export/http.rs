//! `GET /api/v1/export?from=&to=`: the evidence bundle for auditors (and admins). The bundle is
//! built into a private temporary file (memory stays flat), then streamed to the client in
//! chunks; the file is unlinked as soon as it is open, so nothing is left behind even when the
//! client goes away mid-download.

use axum::body::Body;
use axum::extract::Query;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::Deserialize;

use super::{ExportError, ExportOptions, check_period, parse_bound, write_bundle};
use crate::http::AppState;
use crate::http::auth::AuditReader;
use crate::http::error::{ApiError, Detail};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

fn failure(e: ExportError) -> ApiError {
    match e {
        ExportError::Invalid(message) => ApiError::bad_request(message),
        ExportError::Store(e) => {
            tracing::error!(error = %e, "store read failed during export");
            ApiError::unavailable("the collector's store is unavailable; retry later")
        }
        other => {
            tracing::error!(error = %other, "evidence export failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the evidence export failed; see the collector's log",
            )
        }
    }
}

pub async fn export_bundle(
    State(state): State<AppState>,
    AuditReader(principal): AuditReader,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "invalid query string: {}; accepted parameters are from and to",
            e.body_text()
        ))
    })?;
    let mut problems = Vec::new();
    let mut bound = |name: &str, value: Option<&str>, end: bool| match value {
        None => {
            problems.push(Detail::at(name, "required: an RFC 3339 time or a date"));
            None
        }
        Some(v) => match parse_bound(v, end) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(Detail::at(name, e));
                None
            }
        },
    };
    let from = bound("from", params.from.as_deref(), false);
    let to = bound("to", params.to.as_deref(), true);
    let (Some(from), Some(to)) = (from, to) else {
        return Err(
            ApiError::bad_request("invalid export period; see details").with_details(problems)
        );
    };
    check_period(from, to).map_err(failure)?;
    let isms = state.isms.clone().ok_or_else(|| {
        ApiError::not_found(
            "this collector has no ISMS definition: set [isms] dir in its configuration",
        )
    })?;
    let collector_key = state.collector_key.clone().ok_or_else(|| {
        ApiError::unavailable("the collector's signing key could not be loaded; see its log")
    })?;
    let options = ExportOptions {
        from,
        to,
        generated_at: state.clock.now(),
        isms_pack_digest: state.isms_digest.clone().unwrap_or_default(),
        collector_key,
    };
    tracing::info!(
        principal = %principal.name,
        from = %from.to_rfc3339(),
        to = %to.to_rfc3339(),
        "evidence export"
    );
    let spool = tempfile::tempdir().map_err(|e| failure(e.into()))?;
    let bundle = tempfile::tempfile().map_err(|e| failure(e.into()))?;
    let reader = bundle.try_clone().map_err(|e| failure(e.into()))?;
    write_bundle(state.store.as_ref(), &isms, &options, bundle, spool.path())
        .await
        .map_err(failure)?;
    drop(spool);
    let length = reader.metadata().map_err(|e| failure(e.into()))?.len();
    let mut file = tokio::fs::File::from_std(reader);
    tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(0))
        .await
        .map_err(|e| failure(e.into()))?;
    let name = format!(
        "vigil-evidence-{}-{}.zip",
        from.to_rfc3339_opts(SecondsFormat::Secs, true)
            .replace(':', ""),
        to.to_rfc3339_opts(SecondsFormat::Secs, true)
            .replace(':', "")
    );
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    Ok((
        [
            (CONTENT_TYPE, "application/zip".to_string()),
            (CONTENT_LENGTH, length.to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}
