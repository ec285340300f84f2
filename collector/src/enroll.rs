//! Agent enrollment: an operator creates a short-lived, optionally single-use enrollment token
//! (`vigil-collector enroll-token create`), hands it to a host (configuration management, a
//! cloud-init file), and the agent exchanges it once for its own identity and credential
//! (`POST /api/v1/enroll`). The agent token is drawn here, returned once in the answer, and
//! only its hash is stored; the enrollment token can do nothing else (it is not a bearer token
//! for any other endpoint: its prefix differs).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use chrono::{DateTime, Duration, Utc};
use http_body_util::{BodyExt, Limited};
use rand::TryRngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

use crate::auth::{Token, TokenHash, bearer_token, is_valid_principal_name};
use crate::http::error::{ApiError, Detail};
use crate::http::{AppState, Deadline, RequestLog};
use crate::store::enrollment::{
    EnrollOutcome, EnrollRequest, Enrollment, EnrollmentToken, NewEnrollmentToken, TokenState,
};
use crate::store::{Store, StoreError};

/// Every enrollment token starts with this; agent and API tokens start with `vgl_`.
pub const ENROLLMENT_PREFIX: &str = "vge_";
const SECRET_BYTES: usize = 32;
/// Longest validity an enrollment token may have: it is a bootstrap secret, not a credential.
pub const MAX_VALIDITY_DAYS: i64 = 30;
/// Largest enrollment request body.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// A freshly drawn enrollment secret; `Debug` is redacted.
pub struct EnrollmentSecret(String);

impl EnrollmentSecret {
    pub fn generate() -> Result<EnrollmentSecret, std::io::Error> {
        let mut bytes = [0u8; SECRET_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| std::io::Error::other(format!("operating system random source: {e}")))?;
        Ok(EnrollmentSecret(format!(
            "{ENROLLMENT_PREFIX}{}",
            hex::encode(bytes)
        )))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for EnrollmentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollmentSecret(<redacted>)")
    }
}

/// Whether `candidate` has the shape of an enrollment token.
pub fn looks_like_enrollment_token(candidate: &str) -> bool {
    candidate.len() == ENROLLMENT_PREFIX.len() + 2 * SECRET_BYTES
        && candidate.starts_with(ENROLLMENT_PREFIX)
        && candidate[ENROLLMENT_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("invalid enrollment token name {0:?}: use 1-64 characters of a-z, 0-9, '-', '_', '.'")]
    InvalidName(String),
    #[error("{0}")]
    InvalidExpiry(String),
    #[error("--uses must be at least 1")]
    InvalidUses,
    #[error("cannot generate a token: {0}")]
    Random(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses `--expires`: a duration (`30m`, `12h`, `7d`, `90s`) from `now`, or an RFC 3339
/// instant. The result must lie in the future and at most [`MAX_VALIDITY_DAYS`] ahead.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, EnrollError> {
    let text = text.trim();
    let at = if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        at.to_utc()
    } else {
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: i64 = number.parse().map_err(|_| {
            EnrollError::InvalidExpiry(format!(
                "--expires {text:?}: expected a duration such as 30m, 12h, 7d, or an RFC 3339 time"
            ))
        })?;
        let duration = match unit {
            "s" => Duration::try_seconds(n),
            "m" | "min" => Duration::try_minutes(n),
            "h" => Duration::try_hours(n),
            "d" => Duration::try_days(n),
            _ => None,
        }
        .ok_or_else(|| {
            EnrollError::InvalidExpiry(format!(
                "--expires {text:?}: unit must be s, m, h or d (e.g. 12h)"
            ))
        })?;
        now.checked_add_signed(duration).ok_or_else(|| {
            EnrollError::InvalidExpiry(format!("--expires {text:?} is out of range"))
        })?
    };
    if at <= now {
        return Err(EnrollError::InvalidExpiry(format!(
            "--expires {text:?} is not in the future"
        )));
    }
    if at - now > Duration::days(MAX_VALIDITY_DAYS) {
        return Err(EnrollError::InvalidExpiry(format!(
            "--expires {text:?} is more than {MAX_VALIDITY_DAYS} days ahead; enrollment tokens \
             are short-lived bootstrap secrets"
        )));
    }
    Ok(at)
}

/// What `enroll-token create` asks for.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// `None` draws a name (`enroll-<6 hex>`).
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: Option<u64>,
}

/// Creates an enrollment token and returns it with its secret, which exists nowhere else.
pub async fn create(
    store: &dyn Store,
    options: CreateOptions,
    now: DateTime<Utc>,
) -> Result<(EnrollmentToken, EnrollmentSecret), EnrollError> {
    let secret = EnrollmentSecret::generate().map_err(EnrollError::Random)?;
    let name = match options.name {
        Some(name) => name,
        // Derived from the secret's hash, which reveals nothing about the secret.
        None => format!("enroll-{}", &hex::encode(secret.hash().0)[..6]),
    };
    if !is_valid_principal_name(&name) {
        return Err(EnrollError::InvalidName(name));
    }
    if options.max_uses == Some(0) {
        return Err(EnrollError::InvalidUses);
    }
    let token = store
        .create_enrollment_token(NewEnrollmentToken {
            name,
            labels: options.labels,
            token_hash: secret.hash(),
            created_at: now,
            expires_at: options.expires_at,
            max_uses: options.max_uses,
        })
        .await?;
    tracing::info!(
        enrollment_token = %token.name,
        expires_at = %token.expires_at.to_rfc3339(),
        max_uses = ?token.max_uses,
        "enrollment token created"
    );
    Ok((token, secret))
}

fn state_word(token: &EnrollmentToken, now: DateTime<Utc>) -> String {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match token.state(now) {
        TokenState::Usable => "usable".into(),
        TokenState::Expired => format!("expired {}", at(token.expires_at)),
        TokenState::Revoked => format!("revoked {}", token.revoked_at.map(at).unwrap_or_default()),
        TokenState::UsedUp => "used up".into(),
    }
}

/// Every enrollment token as a table for people (never the secrets).
pub fn format_tokens(tokens: &[EnrollmentToken], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                t.name.clone(),
                t.expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                match t.max_uses {
                    Some(max) => format!("{}/{max}", t.uses),
                    None => format!("{}/-", t.uses),
                },
                state_word(t, now),
                if labels.is_empty() {
                    "-".into()
                } else {
                    labels.join(",")
                },
            ]
        })
        .collect();
    table(&["NAME", "EXPIRES", "USES", "STATE", "LABELS"], &rows)
}

/// Every enrollment as a table for people.
pub fn format_enrollments(enrollments: &[Enrollment]) -> String {
    let rows: Vec<Vec<String>> = enrollments
        .iter()
        .map(|e| {
            vec![
                e.agent.clone(),
                e.token.clone(),
                e.hostname.clone(),
                e.machine_id.clone(),
                e.enrolled_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ]
        })
        .collect();
    table(
        &["AGENT", "TOKEN", "HOSTNAME", "MACHINE_ID", "ENROLLED"],
        &rows,
    )
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The body of `POST /api/v1/enroll`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// The name the agent asks for: its principal name and the `agent.id` of its reports.
    pub name: String,
    pub hostname: String,
    pub machine_id: String,
    /// The agent's ed25519 public key (64 hex characters), registered with the new principal;
    /// absent from older agents, which register it on first use (`PUT /api/v1/agent/key`).
    #[serde(default)]
    pub public_key: Option<String>,
}

/// The answer to a successful enrollment. The token appears here once and nowhere else.
#[derive(Serialize)]
pub struct Enrolled {
    pub agent: String,
    pub token: String,
    /// Labels the operator assigned through the enrollment token.
    pub labels: BTreeMap<String, String>,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("agent", &self.agent)
            .field("token", &"<redacted>")
            .finish()
    }
}

fn body_problems(body: &EnrollBody) -> Vec<Detail> {
    let mut details = Vec::new();
    if !is_valid_principal_name(&body.name) {
        details.push(Detail::at(
            "name",
            "must be 1-64 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit",
        ));
    }
    if body.hostname.is_empty() || body.hostname.len() > 255 {
        details.push(Detail::at("hostname", "must be 1-255 characters"));
    }
    if body.machine_id.is_empty()
        || body.machine_id.len() > 128
        || !body
            .machine_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        details.push(Detail::at(
            "machine_id",
            "must be 1-128 characters of letters, digits, '-', '_', '.'",
        ));
    }
    if let Some(key) = &body.public_key
        && let Err(e) = vigil_shared::signing::parse_public_key(key)
    {
        details.push(Detail::at("public_key", e.to_string()));
    }
    details
}

/// `POST /api/v1/enroll`.
pub async fn post_enroll(
    State(state): State<AppState>,
    Extension(deadline): Extension<Deadline>,
    Extension(log): Extension<RequestLog>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Enrolled>, ApiError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let Some(presented) = presented else {
        return Err(ApiError::unauthorized(
            "missing enrollment token; send `Authorization: Bearer <token>` with a token from \
             `vigil-collector enroll-token create`",
            false,
        ));
    };
    let unknown = || {
        ApiError::unauthorized(
            "unknown enrollment token; create one with `vigil-collector enroll-token create`",
            true,
        )
    };
    if !looks_like_enrollment_token(presented) {
        return Err(unknown());
    }
    let enrollment_hash = TokenHash::of(presented);

    let bytes = match deadline
        .run(Limited::new(body, MAX_BODY_BYTES).collect())
        .await
    {
        Err(_) => {
            return Err(ApiError::request_timeout(
                "the request body did not arrive in time",
            ));
        }
        Ok(Err(_)) => {
            return Err(ApiError::too_large(format!(
                "an enrollment request is at most {MAX_BODY_BYTES} bytes"
            )));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let body: EnrollBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid enrollment request: {e}")))?;
    let problems = body_problems(&body);
    if !problems.is_empty() {
        return Err(ApiError::unprocessable(
            format!(
                "enrollment request failed validation ({} problems)",
                problems.len()
            ),
            problems,
        ));
    }
    let agent_token = Token::generate().map_err(|e| {
        tracing::error!(error = %e, "cannot draw an agent token");
        ApiError::unavailable("the collector cannot draw a token now; retry later")
    })?;
    let request = EnrollRequest {
        enrollment_hash,
        agent: body.name.clone(),
        agent_token_hash: agent_token.hash(),
        hostname: body.hostname.clone(),
        machine_id: body.machine_id.clone(),
        at: Utc::now(),
    };
    let outcome = match deadline.run(state.store.enroll_agent(request)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            tracing::error!(agent = %body.name, error = %e, "enrollment failed in the store");
            return Err(ApiError::unavailable(
                "the collector could not record the enrollment; retry later",
            ));
        }
        Err(_) => {
            return Err(ApiError::unavailable(
                "the collector's store is busy; retry the enrollment later",
            ));
        }
    };
    match outcome {
        EnrollOutcome::Enrolled { principal, token } => {
            log.set_principal(&format!("enroll:{token}"));
            tracing::info!(
                agent = %principal.name, enrollment_token = %token, hostname = %body.hostname,
                machine_id = %body.machine_id, "agent enrolled"
            );
            // The key is recorded right after the principal (its own write): if that fails,
            // the agent's first-use registration at start records it, and until then nobody
            // else holds the new agent's token.
            if let Some(key) = body
                .public_key
                .as_deref()
                .and_then(|k| vigil_shared::signing::parse_public_key(k).ok())
            {
                let registered = state
                    .store
                    .register_agent_key(
                        &principal.name,
                        key.to_bytes(),
                        crate::store::chain::KeySource::Enrollment,
                        Utc::now(),
                    )
                    .await;
                if let Err(e) = registered {
                    tracing::warn!(
                        agent = %principal.name, error = %e,
                        "recording the enrolled agent's key failed; it registers it on first use"
                    );
                }
            }
            Ok(Json(Enrolled {
                agent: principal.name,
                token: agent_token.expose().to_string(),
                labels: principal.labels,
            }))
        }
        EnrollOutcome::UnknownToken => Err(unknown()),
        EnrollOutcome::Unusable { token, state, at } => {
            log.set_principal(&format!("enroll:{token}"));
            let when = at
                .map(|t| format!(" at {}", t.to_rfc3339()))
                .unwrap_or_default();
            let what = match state {
                TokenState::Expired => format!("expired{when}"),
                TokenState::Revoked => format!("was revoked{when}"),
                TokenState::UsedUp => "has enrolled as many agents as it allows".into(),
                TokenState::Usable => "cannot be used".into(),
            };
            Err(ApiError::unauthorized(
                format!(
                    "enrollment token {token:?} {what}; ask the collector's operator for a new one"
                ),
                true,
            ))
        }
        EnrollOutcome::NameTaken { name } => Err(ApiError::conflict(format!(
            "an agent named {name:?} already exists; enroll under another name (`vigil-agent \
             enroll --name …`), or have the operator issue a new token for the existing agent \
             (`vigil-collector agents rotate {name}`)"
        ))
        .with_details(vec![Detail::at("name", "already taken")])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_own_prefix_and_never_pass_as_agent_tokens() {
        let secret = EnrollmentSecret::generate().unwrap();
        assert!(looks_like_enrollment_token(secret.expose()));
        assert!(!crate::auth::looks_like_token(secret.expose()));
        let agent = Token::generate().unwrap();
        assert!(!looks_like_enrollment_token(agent.expose()));
        assert!(!format!("{secret:?}").contains(&secret.expose()[4..]));
    }

    #[test]
    fn expiry_accepts_durations_and_instants_within_bounds() {
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_expiry("30m", now).unwrap(),
            now + Duration::minutes(30)
        );
        assert_eq!(parse_expiry("12h", now).unwrap(), now + Duration::hours(12));
        assert_eq!(parse_expiry("7d", now).unwrap(), now + Duration::days(7));
        assert_eq!(
            parse_expiry("2026-06-02T00:00:00Z", now).unwrap(),
            now + Duration::hours(12)
        );
        for bad in [
            "",
            "h",
            "12",
            "12y",
            "-5m",
            "0s",
            "31d",
            "2026-05-01T00:00:00Z",
            "99999999999999d",
        ] {
            assert!(parse_expiry(bad, now).is_err(), "{bad}");
        }
    }

    mod http {
        use super::*;
        use crate::testutil::{TestCollector, answer, report};

        async fn enroll(
            collector: &TestCollector,
            token: &str,
            body: serde_json::Value,
        ) -> (u16, serde_json::Value) {
            answer(
                collector
                    .client
                    .post(collector.url("/api/v1/enroll"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }

        fn body(name: &str) -> serde_json::Value {
            let key = crate::testutil::agent_key(name).verifying_key();
            serde_json::json!({
                "name": name, "hostname": format!("{name}.example"), "machine_id": format!("m-{name}"),
                "public_key": vigil_shared::signing::public_key_hex(&key),
            })
        }

        #[tokio::test]
        async fn an_enrolled_agent_pushes_with_its_own_token_and_can_be_revoked() {
            let collector = TestCollector::start().await;
            let (token, secret) = create(
                collector.store(),
                CreateOptions {
                    name: Some("batch-1".into()),
                    labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
                    expires_at: Utc::now() + Duration::hours(1),
                    max_uses: Some(1),
                },
                Utc::now(),
            )
            .await
            .unwrap();
            assert_eq!(token.max_uses, Some(1));

            let (status, answer_body) = enroll(&collector, secret.expose(), body("web-07")).await;
            assert_eq!(status, 200, "{answer_body}");
            assert_eq!(answer_body["agent"], "web-07");
            assert_eq!(answer_body["labels"]["env"], "prod");
            let agent_token = answer_body["token"].as_str().unwrap().to_string();
            assert!(crate::auth::looks_like_token(&agent_token));

            // The issued credential pushes reports for that agent name.
            let response = collector
                .push(&agent_token, &report("web-07", "m-web-07", 1))
                .await;
            assert_eq!(response.status(), 200);
            // The enrollment token is no bearer token for anything else.
            let response = collector
                .push(secret.expose(), &report("web-07", "m-web-07", 2))
                .await;
            assert_eq!(response.status(), 401);

            // Single use: a second host is refused, and nothing is created.
            let (status, refused) = enroll(&collector, secret.expose(), body("web-08")).await;
            assert_eq!(status, 401, "{refused}");
            assert!(
                refused["error"]
                    .as_str()
                    .unwrap()
                    .contains("as many agents"),
                "{refused}"
            );
            assert_eq!(
                collector.store().principal_by_name("web-08").await.unwrap(),
                None
            );

            // Revoking the agent stops its credential.
            crate::admin::revoke(
                collector.store(),
                "web-07",
                crate::admin::Kind::Agent,
                Utc::now(),
            )
            .await
            .unwrap();
            let response = collector
                .push(&agent_token, &report("web-07", "m-web-07", 3))
                .await;
            assert_eq!(response.status(), 401);
        }

        #[tokio::test]
        async fn bad_requests_are_refused_with_reasons() {
            let collector = TestCollector::start().await;
            let (_, secret) = create(
                collector.store(),
                CreateOptions {
                    name: None,
                    labels: BTreeMap::new(),
                    expires_at: Utc::now() + Duration::hours(1),
                    max_uses: None,
                },
                Utc::now(),
            )
            .await
            .unwrap();
            let (status, _) = enroll(&collector, "vge_nope", body("a")).await;
            assert_eq!(status, 401);
            let unknown = EnrollmentSecret::generate().unwrap();
            let (status, _) = enroll(&collector, unknown.expose(), body("a")).await;
            assert_eq!(status, 401);
            let (status, problems) = enroll(
                &collector,
                secret.expose(),
                serde_json::json!({"name": "Bad Name", "hostname": "", "machine_id": "x/y"}),
            )
            .await;
            assert_eq!(status, 422, "{problems}");
            let paths: Vec<&str> = problems["details"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|d| d["path"].as_str())
                .collect();
            assert_eq!(paths, ["name", "hostname", "machine_id"]);
            let (status, _) = enroll(
                &collector,
                secret.expose(),
                serde_json::json!({"name": "a", "hostname": "a", "machine_id": "a", "extra": 1}),
            )
            .await;
            assert_eq!(status, 400);
            collector.principal("taken", crate::auth::Role::Agent).await;
            let (status, conflict) = enroll(&collector, secret.expose(), body("taken")).await;
            assert_eq!(status, 409, "{conflict}");
            assert!(
                conflict["error"]
                    .as_str()
                    .unwrap()
                    .contains("agents rotate taken"),
                "{conflict}"
            );
            // Nothing secret reaches the log line of the request: the handler logs names only.
            let (status, ok) = enroll(&collector, secret.expose(), body("fresh")).await;
            assert_eq!(status, 200, "{ok}");
        }
    }
}
