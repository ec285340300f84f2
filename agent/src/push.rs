//! Delivery of spooled reports to the collector: HTTPS with rustls (system roots or a
//! configured CA), gzip bodies, bearer-token authentication, and a classification of every
//! answer into acknowledged, refused for good, or retry later.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::settings::CollectorSection;

/// Path of the ingest endpoint under the collector's base URL.
pub const REPORTS_PATH: &str = "/api/v1/reports";

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot read the agent token from {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "no agent credential: enroll the agent (`vigil-agent enroll`, or collector.enroll_token_file), or set collector.token_file"
    )]
    NoToken,
    #[error("the agent token contains characters not allowed in an HTTP header")]
    BadToken,
    #[error("cannot read CA bundle {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("cannot use client certificate {cert} with key {key}: {reason}")]
    ClientCert {
        cert: String,
        key: String,
        reason: String,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What the collector said about one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored durably (or already stored: a duplicate). The spool may forget it.
    Acknowledged { duplicate: bool },
    /// Refused for a reason retrying cannot fix (bad schema, wrong identity…).
    Refused { status: u16, message: String },
    /// Not delivered now; try again later (network, 5xx, 429, auth outage).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

/// Path of the key registration endpoint under the collector's base URL.
pub const KEY_PATH: &str = "/api/v1/agent/key";

/// A configured client for one collector.
#[derive(Clone)]
pub struct Pusher {
    client: reqwest::Client,
    url: String,
    key_url: String,
    auth: HeaderValue,
    key: std::sync::Arc<vigil_shared::signing::SigningKey>,
    /// Whether the collector confirmed it holds this agent's key (checked once per process,
    /// and again after a signature refusal).
    key_registered: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher").field("url", &self.url).finish()
    }
}

/// Installs the `ring` crypto provider as the process default (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The token the configuration provides (`token_file` or `token`), if any. An enrolled
/// agent has none there: its credential is in the state directory (`crate::enroll`).
pub fn configured_token(section: &CollectorSection) -> Result<Option<String>, PushError> {
    if let Some(path) = &section.token_file {
        let text = std::fs::read_to_string(path).map_err(|source| PushError::Token {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(section.token.clone())
}

fn tls_config(section: &CollectorSection) -> Result<rustls::ClientConfig, PushError> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    match section.ca_file.as_deref() {
        Some(path) => {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|e| PushError::Ca {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            let mut found = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| PushError::Ca {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                roots.add(cert).map_err(|e| PushError::Ca {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(PushError::Ca {
                    path: shown,
                    reason: "no PEM certificate in the file".into(),
                });
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::warn!(%error, "problem loading a system CA certificate");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("no system CA certificates found; HTTPS to the collector will fail");
            }
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match (&section.client_cert, &section.client_key) {
        (Some(cert), Some(key)) => {
            let fail = |reason: String| PushError::ClientCert {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
                reason,
            };
            let cert_pem = std::fs::read(cert).map_err(|e| fail(e.to_string()))?;
            let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(e.to_string()))?;
            if chain.is_empty() {
                return Err(fail("no PEM certificate in the certificate file".into()));
            }
            let key_pem = std::fs::read(key).map_err(|e| fail(e.to_string()))?;
            let private = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("no PEM private key in the key file".into()))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| fail(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// An HTTP client for the collector: rustls with the configured trust, the optional client
/// certificate, and the configured timeouts.
pub fn http_client(section: &CollectorSection) -> Result<reqwest::Client, PushError> {
    let tls = tls_config(section)?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(section.timeout_secs))
        .connect_timeout(Duration::from_secs(section.timeout_secs.min(10)))
        .user_agent(format!("vigil-agent/{}", vigil_shared::VERSION))
        .build()
        .map_err(|e| PushError::Client(e.to_string()))
}

impl Pusher {
    /// Builds a client from the `[collector]` section and the agent's token.
    pub fn new(
        section: &CollectorSection,
        token: &str,
        key: vigil_shared::signing::SigningKey,
    ) -> Result<Self, PushError> {
        if token.is_empty() {
            return Err(PushError::NoToken);
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| PushError::BadToken)?;
        auth.set_sensitive(true);
        Ok(Pusher {
            client: http_client(section)?,
            url: format!("{}{REPORTS_PATH}", section.url.trim_end_matches('/')),
            key_url: format!("{}{KEY_PATH}", section.url.trim_end_matches('/')),
            auth,
            key: std::sync::Arc::new(key),
            key_registered: Default::default(),
        })
    }

    /// Makes sure the collector holds this agent's public key (trust on first use: it records
    /// the key when it has none for this agent). `Err` is the reason to retry later.
    async fn ensure_key_registered(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        if self.key_registered.load(Ordering::Relaxed) {
            return Ok(());
        }
        let public_key = vigil_shared::signing::public_key_hex(&self.key.verifying_key());
        let response = self
            .client
            .put(&self.key_url)
            .header(AUTHORIZATION, self.auth.clone())
            .json(&serde_json::json!({ "public_key": public_key }))
            .send()
            .await
            .map_err(|e| describe_transport_error(&e))?;
        let (status, _, body) = read_answer(response).await;
        if status.is_success() {
            self.key_registered.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or(body);
        Err(format!("registering the agent's key: {status}: {message}"))
    }

    /// Signs one spooled (gzip-compressed) report with the agent's key, sends it and
    /// classifies the answer. The signature is made now, over the JSON inside, so a key reset
    /// by an administrator applies to reports already spooled.
    pub async fn deliver(&self, gzipped: Vec<u8>) -> Delivery {
        if let Err(reason) = self.ensure_key_registered().await {
            return Delivery::Retry {
                reason,
                after: None,
            };
        }
        let json = match vigil_shared::codec::gunzip_limited(
            &gzipped,
            vigil_shared::codec::DEFAULT_MAX_DECOMPRESSED_BYTES,
        ) {
            Ok(json) => json,
            Err(e) => {
                return Delivery::Refused {
                    status: 0,
                    message: format!("the spooled report cannot be read: {e}"),
                };
            }
        };
        let signature = vigil_shared::signing::SignatureHeader::sign(&self.key, &json).to_value();
        let response = self
            .client
            .post(&self.url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .header(vigil_shared::signing::SIGNATURE_HEADER, signature)
            .body(gzipped)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return Delivery::Retry {
                    reason: describe_transport_error(&e),
                    after: None,
                };
            }
        };
        let (status, after, body) = read_answer(response).await;
        if status == StatusCode::UNAUTHORIZED {
            // Perhaps the key was reset meanwhile: register it again before the next attempt.
            self.key_registered
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        classify(status, &body, after)
    }
}

/// Maps a collector answer to what the spool should do with the report.
pub fn classify(status: StatusCode, body: &str, after: Option<Duration>) -> Delivery {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let error = v.get("error")?.as_str()?.to_string();
            let details: Vec<String> = v
                .get("details")
                .and_then(|d| d.as_array())
                .map(|items| {
                    items
                        .iter()
                        .map(|d| match (d.get("path"), d.get("message")) {
                            (Some(p), Some(m)) => {
                                format!(
                                    "{}: {}",
                                    p.as_str().unwrap_or(""),
                                    m.as_str().unwrap_or("")
                                )
                            }
                            _ => d.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(if details.is_empty() {
                error
            } else {
                format!("{error} ({})", details.join("; "))
            })
        })
        .unwrap_or_else(|| body.chars().take(500).collect());
    if status.is_success() {
        let duplicate = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("status")?.as_str().map(|s| s == "duplicate"))
            .unwrap_or(false);
        return Delivery::Acknowledged { duplicate };
    }
    match status {
        // Credentials may be rotated or the collector's store may be briefly unhappy: keep the
        // evidence and try again rather than throw it away.
        StatusCode::UNAUTHORIZED | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            Delivery::Retry {
                reason: format!("{status}: {message}"),
                after,
            }
        }
        s if s.is_server_error() => Delivery::Retry {
            reason: format!("{status}: {message}"),
            after,
        },
        s => Delivery::Refused {
            status: s.as_u16(),
            message,
        },
    }
}

/// A collector's answer: status, the `Retry-After` delay it asked for (seconds form) and the
/// body (empty when it could not be read).
pub(crate) async fn read_answer(
    response: reqwest::Response,
) -> (StatusCode, Option<Duration>, String) {
    let status = response.status();
    let after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    (status, after, body)
}

/// A transport error with its whole chain of causes (reqwest's own message alone says
/// little: "error sending request").
pub(crate) fn describe_transport_error(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Exponential backoff with full jitter: a random wait in `[0, min(max, base·2^attempt)]`,
/// so that thousands of agents coming back after an outage do not arrive in step.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(500);
    let ceiling = base
        .checked_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(millis / 2..=millis.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_spool_actions() {
        assert_eq!(
            classify(StatusCode::OK, r#"{"status":"stored","seq":3}"#, None),
            Delivery::Acknowledged { duplicate: false }
        );
        assert_eq!(
            classify(StatusCode::OK, r#"{"status":"duplicate","seq":3}"#, None),
            Delivery::Acknowledged { duplicate: true }
        );
        assert_eq!(
            classify(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"error":"invalid report","details":[{"path":"seq","message":"must be 1 or more"}]}"#,
                None
            ),
            Delivery::Refused {
                status: 422,
                message: "invalid report (seq: must be 1 or more)".into()
            }
        );
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"store down\"}", Some(Duration::from_secs(7))),
            Delivery::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, "", None),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify(
                StatusCode::FORBIDDEN,
                "{\"error\":\"host belongs to agent a\"}",
                None
            ),
            Delivery::Refused { status: 403, .. }
        ));
    }

    #[test]
    fn backoff_grows_to_its_ceiling_with_jitter() {
        let max = Duration::from_secs(300);
        for attempt in 0..40 {
            let wait = backoff(attempt, max);
            assert!(wait <= max, "{attempt}: {wait:?}");
        }
        assert!(backoff(0, max) <= Duration::from_millis(500));
        assert!(backoff(30, max) >= Duration::from_secs(150));
    }
}
