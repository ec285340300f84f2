//! Enrollment: the agent exchanges a short-lived enrollment token for its own identity (the
//! agent name the collector granted) and credential (an agent token), and keeps both in
//! `<state_dir>/enrollment.json`, mode 0600, owned by the state directory's owner. The
//! credential is never logged and never printed (`Debug` is redacted).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::push::{PushError, describe_transport_error, http_client, read_answer};
use crate::settings::CollectorSection;
use crate::state::{give_to_dir_owner, write_atomic};

/// File name of the enrollment record in the state directory.
pub const ENROLLMENT_FILE: &str = "enrollment.json";
/// Path of the enrollment endpoint under the collector's base URL.
pub const ENROLL_PATH: &str = "/api/v1/enroll";

/// What enrollment granted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The agent's name on the collector: the `agent.id` of its reports.
    pub agent_id: String,
    /// The collector it enrolled with.
    pub collector_url: String,
    /// The agent token (secret).
    pub token: String,
    pub enrolled_at: DateTime<Utc>,
    /// Labels the operator assigned through the enrollment token.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("agent_id", &self.agent_id)
            .field("collector_url", &self.collector_url)
            .field("token", &"<redacted>")
            .field("enrolled_at", &self.enrolled_at)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("enrollment record {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("enrollment record {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot read the enrollment token from {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the enrollment token is empty or not printable")]
    BadToken,
    #[error(transparent)]
    Client(#[from] PushError),
    /// Worth retrying later: the collector is unreachable, busy or failing.
    #[error("enrollment failed, retry later: {reason}")]
    Unavailable {
        reason: String,
        after: Option<Duration>,
    },
    /// Retrying cannot help: the token is unknown, expired or used up, the name is taken…
    #[error("the collector refused the enrollment ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the collector's answer to the enrollment is not understood: {0}")]
    BadAnswer(String),
    #[error(
        "this agent is already enrolled as {agent:?} with {url}; remove {path} to enroll again"
    )]
    AlreadyEnrolled {
        agent: String,
        url: String,
        path: PathBuf,
    },
}

impl EnrollError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, EnrollError::Unavailable { .. })
    }
}

/// Path of the enrollment record.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(ENROLLMENT_FILE)
}

/// The stored enrollment, if the agent has enrolled.
pub fn load(state_dir: &Path) -> Result<Option<Enrollment>, EnrollError> {
    let path = path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(EnrollError::Io { path, source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| EnrollError::Corrupt {
            path,
            reason: e.to_string(),
        })
}

/// Stores the enrollment atomically, mode 0600, and gives it to the state directory's owner
/// so that the service user can read it when a person enrolled as root.
pub fn save(state_dir: &Path, enrollment: &Enrollment) -> Result<(), EnrollError> {
    let path = path(state_dir);
    let io = |source| EnrollError::Io {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec_pretty(enrollment).map_err(|e| EnrollError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&path, &json, 0o600).map_err(io)?;
    give_to_dir_owner(&path, state_dir).map_err(io)
}

/// Reads an enrollment token from a file (first line, trimmed).
pub fn read_token_file(path: &Path) -> Result<String, EnrollError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnrollError::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    check_token(&token)?;
    Ok(token)
}

fn check_token(token: &str) -> Result<(), EnrollError> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EnrollError::BadToken);
    }
    Ok(())
}

/// A name acceptable as an agent id derived from a hostname: lowercase, other characters
/// replaced by `-`, at most 64 bytes; `None` when nothing usable is left.
pub fn name_from_hostname(hostname: &str) -> Option<String> {
    let mut name: String = hostname
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_start_matches(['-', '_', '.'])
        .chars()
        .take(64)
        .collect();
    vigil_shared::report::is_valid_agent_id(&name).then_some(name)
}

#[derive(Serialize)]
struct EnrollBody<'a> {
    name: &'a str,
    hostname: &'a str,
    machine_id: &'a str,
    /// The agent's signing key (`crate::keys`), recorded with the new principal.
    public_key: String,
}

#[derive(Deserialize)]
struct Granted {
    agent: String,
    token: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Asks the collector at `section.url` to enroll this host under `name`.
pub async fn request(
    section: &CollectorSection,
    enrollment_token: &str,
    name: &str,
    hostname: &str,
    machine_id: &str,
    public_key: &vigil_shared::signing::VerifyingKey,
) -> Result<Enrollment, EnrollError> {
    check_token(enrollment_token)?;
    let client = http_client(section)?;
    let url = format!("{}{ENROLL_PATH}", section.url.trim_end_matches('/'));
    let response = client
        .post(&url)
        .bearer_auth(enrollment_token)
        .json(&EnrollBody {
            name,
            hostname,
            machine_id,
            public_key: vigil_shared::signing::public_key_hex(public_key),
        })
        .send()
        .await
        .map_err(|e| EnrollError::Unavailable {
            reason: describe_transport_error(&e),
            after: None,
        })?;
    let (status, after, body) = read_answer(response).await;
    if status.is_success() {
        let granted: Granted =
            serde_json::from_str(&body).map_err(|e| EnrollError::BadAnswer(e.to_string()))?;
        if !vigil_shared::report::is_valid_agent_id(&granted.agent) {
            return Err(EnrollError::BadAnswer(format!(
                "granted agent name {:?} is not a valid agent id",
                granted.agent
            )));
        }
        check_token(&granted.token).map_err(|_| {
            EnrollError::BadAnswer("the granted token is empty or not printable".into())
        })?;
        return Ok(Enrollment {
            agent_id: granted.agent,
            collector_url: section.url.clone(),
            token: granted.token,
            enrolled_at: Utc::now(),
            labels: granted.labels,
        });
    }
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect());
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return Err(EnrollError::Unavailable {
            reason: format!("{status}: {message}"),
            after,
        });
    }
    Err(EnrollError::Refused {
        status: status.as_u16(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> Enrollment {
        Enrollment {
            agent_id: "web-07".into(),
            collector_url: "https://vigil.example:8470".into(),
            token: "vgl_secret_value".into(),
            enrolled_at: DateTime::from_timestamp(1_780_000_000, 0).unwrap(),
            labels: BTreeMap::from([("env".into(), "prod".into())]),
        }
    }

    #[test]
    fn the_record_round_trips_private_and_never_shows_the_token() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        save(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{:?}", sample()).contains("secret"));
    }

    #[test]
    fn a_corrupt_record_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{not json").unwrap();
        assert!(matches!(load(dir.path()), Err(EnrollError::Corrupt { .. })));
    }

    #[test]
    fn names_derive_from_hostnames() {
        assert_eq!(
            name_from_hostname("Web-01.Example.org").as_deref(),
            Some("web-01.example.org")
        );
        assert_eq!(name_from_hostname("db 02").as_deref(), Some("db-02"));
        assert_eq!(name_from_hostname("-._x").as_deref(), Some("x"));
        assert_eq!(name_from_hostname("").as_deref(), None);
        assert_eq!(name_from_hostname("---").as_deref(), None);
        assert_eq!(
            name_from_hostname(&"a".repeat(300)).map(|n| n.len()),
            Some(64)
        );
        assert_eq!(name_from_hostname("hôte").as_deref(), Some("h-te"));
    }

    #[test]
    fn token_files_are_read_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, "vge_abc\n").unwrap();
        assert_eq!(read_token_file(&file).unwrap(), "vge_abc");
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(read_token_file(&file), Err(EnrollError::BadToken)));
        std::fs::write(&file, "vge a b").unwrap();
        assert!(matches!(read_token_file(&file), Err(EnrollError::BadToken)));
        assert!(matches!(
            read_token_file(&dir.path().join("missing")),
            Err(EnrollError::TokenFile { .. })
        ));
    }
}
