//! HTTP plumbing shared by the ingest and read endpoints: the application state, the router,
//! per-request deadlines, request logging, authentication and the error shape.

pub mod auth;
pub mod error;
pub mod rate;
pub mod routes;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio::time::Instant;

use self::error::ApiError;
use crate::store::Store;

/// Size caps applied to report bodies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body on the wire (compressed).
    pub max_body_bytes: usize,
    /// Largest report once decompressed.
    pub max_decompressed_bytes: usize,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The ISMS definition, when one is configured.
    pub isms: Option<Arc<crate::isms::Isms>>,
    /// The collector's clock (received times, "now" for reports).
    pub clock: Arc<dyn crate::engine::Clock>,
    /// The running ISMS engine, when an ISMS is configured.
    pub engine: Option<crate::engine::EngineHandle>,
    pub limits: Limits,
    pub request_timeout: Duration,
    /// Requests being handled now (what a graceful shutdown waits for).
    pub in_flight: Arc<AtomicUsize>,
    /// What `GET /metrics` exposes.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The webhook deliveries, when webhooks are configured (their figures join `/metrics`).
    pub webhooks: Option<crate::webhooks::WebhooksHandle>,
    /// `sha256:…` of the ISMS pack directory as loaded (for the evidence export's manifest).
    pub isms_digest: Option<String>,
    /// The collector's own key (`data_dir/collector.key`), which signs evidence bundles.
    pub collector_key: Option<Arc<vigil_shared::signing::SigningKey>>,
}

/// When the current request must be answered by; handlers bound their waits with it, so a
/// slow body is a 408 and a busy store a 503 instead of a hung connection.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

/// The deadline passed.
#[derive(Debug, Clone, Copy)]
pub struct Elapsed;

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now() + timeout)
    }

    pub async fn run<F: Future>(self, future: F) -> Result<F::Output, Elapsed> {
        tokio::time::timeout_at(self.0, future)
            .await
            .map_err(|_| Elapsed)
    }
}

/// Filled in by the handlers as the request goes, logged once when it ends.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    principal: Arc<OnceLock<String>>,
}

impl RequestLog {
    pub fn set_principal(&self, name: &str) {
        let _ = self.principal.set(name.to_string());
    }
}

/// The collector's routes: exactly those of [`routes::table`].
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (endpoint, handler) in routes::endpoints() {
        router = router.route(endpoint.path, handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Sets the deadline and logs one line per request: no headers, no query string, no body, so
/// no secret can reach the log.
async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let log = RequestLog::default();
    request
        .extensions_mut()
        .insert(Deadline(started + state.request_timeout));
    request.extensions_mut().insert(log.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight(&state.in_flight);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics.observe_request(
        &route,
        method.as_str(),
        status,
        started.elapsed().as_secs_f64(),
    );
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let principal = log.principal.get().map_or("-", String::as_str);
    if response.status().is_server_error() {
        tracing::warn!(%method, path, status, duration_ms, principal, "request");
    } else {
        tracing::info!(%method, path, status, duration_ms, principal, "request");
    }
    response
}

/// Counts a request out when it ends, also when its connection is dropped mid-way.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The Prometheus exposition (any reading role: viewer, auditor, admin).
async fn metrics(
    State(state): State<AppState>,
    _reader: auth::Reader,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    state
        .metrics
        .set_in_flight(state.in_flight.load(Ordering::SeqCst));
    match Deadline::after(state.request_timeout)
        .run(
            state
                .metrics
                .render(&state.store, state.isms.as_deref(), now),
        )
        .await
    {
        Ok(Ok(mut text)) => {
            if let Some(webhooks) = &state.webhooks {
                match webhooks.stats().await {
                    Ok(stats) => text.push_str(&stats.render_prometheus()),
                    Err(e) => tracing::warn!(error = %e, "webhook figures left out of /metrics"),
                }
            }
            Ok((
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            )
                .into_response())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "rendering metrics failed");
            Err(ApiError::unavailable(format!("metrics unavailable: {e}")))
        }
        Err(_) => Err(ApiError::unavailable(
            "metrics unavailable: the store did not answer in time",
        )),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match Deadline::after(state.request_timeout)
        .run(state.store.ping())
        .await
    {
        Ok(Ok(())) => Ok(Json(serde_json::json!({ "status": "ready" }))),
        Ok(Err(e)) => Err(ApiError::unavailable(format!("store not ready: {e}"))),
        Err(_) => Err(ApiError::unavailable("store not ready: no answer in time")),
    }
}

async fn not_found() -> ApiError {
    let known: Vec<String> = routes::table()
        .iter()
        .map(|e| format!("{} {}", e.verb.as_str(), e.path))
        .collect();
    ApiError::not_found(format!(
        "no such endpoint; see API.md: {}",
        known.join(", ")
    ))
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint; see API.md",
    )
    .into_response()
}
