//! `PUT /api/v1/agent/key`: an agent registers the public key it signs its reports with.
//! Trust on first use: the key is recorded only when the agent has none (an enrolled agent sent
//! it with its enrollment; an agent provisioned with `agents add` registers it here at its first
//! start). The same key again is a no-op; another key is refused (409) until an administrator
//! resets the agent's key (`vigil-collector agents reset-key`) or sets it (`agents set-key`).

use axum::Json;
use axum::extract::{Extension, State};
use serde::{Deserialize, Serialize};
use vigil_shared::signing;

use crate::http::auth::Caller;
use crate::http::error::{ApiError, Detail};
use crate::http::{AppState, Deadline};
use crate::store::chain::{KeyOutcome, KeySource};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// 64 hex characters (optionally `ed25519:` first).
    pub public_key: String,
}

#[derive(Debug, Serialize)]
pub struct KeyAnswer {
    /// `registered` (new) or `unchanged` (already the agent's key).
    pub status: &'static str,
    pub agent: String,
    pub fingerprint: String,
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

pub async fn put_agent_key(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    Caller(principal): Caller,
    body: Result<Json<KeyBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<KeyAnswer>, ApiError> {
    if !principal.role.can_write_reports() {
        return Err(ApiError::forbidden(format!(
            "{:?} is a {} token; only an agent registers its own key",
            principal.name, principal.role
        )));
    }
    let Json(body) = body.map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
    let key = signing::parse_public_key(&body.public_key).map_err(|e| {
        ApiError::unprocessable(
            "invalid public key",
            vec![Detail::at("public_key", e.to_string())],
        )
    })?;
    let at = state.clock.now();
    let outcome = match deadline
        .run(state.store.register_agent_key(
            &principal.name,
            key.to_bytes(),
            KeySource::FirstUse,
            at,
        ))
        .await
    {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            tracing::error!(agent = %principal.name, error = %e, "registering an agent key failed");
            return Err(ApiError::unavailable(
                "the collector could not record the key; retry later",
            ));
        }
        Err(_) => return Err(ApiError::unavailable("the collector's store is busy")),
    };
    let answer = |status, k: crate::store::chain::AgentKey| KeyAnswer {
        status,
        agent: principal.name.clone(),
        fingerprint: signing::fingerprint(&key),
        registered_at: k.registered_at,
    };
    match outcome {
        KeyOutcome::Registered(k) => {
            tracing::info!(
                agent = %principal.name, fingerprint = %signing::fingerprint(&key),
                "agent key registered on first use"
            );
            Ok(Json(answer("registered", k)))
        }
        KeyOutcome::Unchanged(k) => Ok(Json(answer("unchanged", k))),
        KeyOutcome::Conflict { current } => {
            let current_fp = signing::parse_public_key(&hex::encode(current.public_key))
                .map(|k| signing::fingerprint(&k))
                .unwrap_or_default();
            tracing::warn!(
                agent = %principal.name, offered = %signing::fingerprint(&key),
                registered = %current_fp, "agent offered another key; refused"
            );
            Err(ApiError::conflict(format!(
                "agent {:?} already has key {current_fp} (registered {}); this key is {}. A \
                 reinstalled host has a new key: an administrator resets the old one with \
                 `vigil-collector agents reset-key {}`",
                principal.name,
                current.registered_at.to_rfc3339(),
                signing::fingerprint(&key),
                principal.name
            )))
        }
        KeyOutcome::UnknownAgent => Err(ApiError::unauthorized(
            format!("agent {:?} is revoked", principal.name),
            true,
        )),
    }
}
