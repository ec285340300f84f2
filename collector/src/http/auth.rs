//! Request authentication: the `Authorization: Bearer` token is hashed and looked up in the
//! store. The token itself is never logged, stored or echoed back.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::rate::{RateLimits, too_many_requests};
use super::{AppState, Deadline, RequestLog};
use crate::auth::{TokenHash, bearer_token, looks_like_token};
use crate::store::Principal;

/// The authenticated, active principal making the request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// A caller allowed to read the API (viewer, auditor or admin).
#[derive(Debug, Clone)]
pub struct Reader(pub Principal);

/// A caller allowed to take the auditor evidence export (auditor or admin).
#[derive(Debug, Clone)]
pub struct AuditReader(pub Principal);

/// A caller allowed to change ISMS records (admin only).
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing Authorization header; send `Authorization: Bearer <token>` with a token \
                 from `vigil-collector agents add` or `vigil-collector tokens add`",
                false,
            ));
        };
        let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            ApiError::unauthorized(
                "the Authorization header must use the Bearer scheme: `Bearer <token>`",
                false,
            )
        })?;
        let unknown = || {
            ApiError::unauthorized(
                "unknown token; check the token file, or issue a new token on the collector",
                true,
            )
        };
        // Junk never reaches the store; the answer is the same as for an unknown token.
        if !looks_like_token(token) {
            return Err(unknown());
        }
        let hash = TokenHash::of(token);
        let deadline = parts
            .extensions
            .get::<Deadline>()
            .copied()
            .unwrap_or_else(|| Deadline::after(state.request_timeout));
        let principal = deadline
            .run(state.store.principal_by_token(hash))
            .await
            .map_err(|_| ApiError::unavailable("timed out checking the token; retry later"))?
            .map_err(|e| {
                tracing::error!(error = %e, "token lookup failed");
                ApiError::unavailable("the collector's store is unavailable; retry later")
            })?
            .ok_or_else(unknown)?;
        if let Some(log) = parts.extensions.get::<RequestLog>() {
            log.set_principal(&principal.name);
        }
        if let Some(at) = principal.revoked_at {
            return Err(ApiError::unauthorized(
                format!(
                    "the token of {:?} was revoked at {}; ask the collector's operator for a new \
                     one (`vigil-collector agents rotate` or `tokens rotate`)",
                    principal.name,
                    at.to_rfc3339()
                ),
                true,
            ));
        }
        if principal.is_expired(state.clock.now())
            && let Some(at) = principal.expires_at
        {
            return Err(ApiError::unauthorized(
                format!(
                    "the token of {:?} expired at {}; ask the collector's operator for a new one \
                     (`vigil-collector agents rotate NAME --expires-in 90d` or `tokens rotate`)",
                    principal.name,
                    at.to_rfc3339()
                ),
                true,
            ));
        }
        if let Some(limits) = parts.extensions.get::<std::sync::Arc<RateLimits>>()
            && let Err(wait) = limits
                .per_principal
                .check(&principal.name, std::time::Instant::now())
        {
            tracing::info!(principal = %principal.name, "rate limited (principal)");
            return Err(too_many_requests("token", wait));
        }
        Ok(Caller(principal))
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if !principal.role.can_read() {
            return Err(ApiError::forbidden(format!(
                "{:?} is an {} token, which may only push reports; reading the API needs a \
                 viewer, auditor or admin token (`vigil-collector tokens add NAME --role viewer`)",
                principal.name, principal.role
            )));
        }
        Ok(Reader(principal))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if principal.role != crate::auth::Role::Admin {
            return Err(ApiError::forbidden(format!(
                "{:?} is a {} token; changing nonconformities needs an admin token \
                 (`vigil-collector tokens add NAME --role admin`)",
                principal.name, principal.role
            )));
        }
        Ok(Admin(principal))
    }
}

impl FromRequestParts<AppState> for AuditReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if !matches!(
            principal.role,
            crate::auth::Role::Auditor | crate::auth::Role::Admin
        ) {
            return Err(ApiError::forbidden(format!(
                "{:?} is a {} token; the evidence export needs an auditor or admin token \
                 (`vigil-collector tokens add NAME --role auditor`)",
                principal.name, principal.role
            )));
        }
        Ok(AuditReader(principal))
    }
}
