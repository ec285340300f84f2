//! Principal management behind `vigil-collector agents …` and `tokens …`: issue a token (shown
//! once, only its hash stored), list, revoke, rotate. Agents and API tokens share one namespace
//! of names, so a name always means one principal.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::auth::{Role, Token, is_valid_principal_name};
use crate::store::{NewPrincipal, Principal, Store, StoreError};

/// Which family of principals a command manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `agents …`: role agent.
    Agent,
    /// `tokens …`: viewer, auditor, admin.
    ApiToken,
}

impl Kind {
    fn includes(self, role: Role) -> bool {
        match self {
            Kind::Agent => role == Role::Agent,
            Kind::ApiToken => role != Role::Agent,
        }
    }

    fn command(self) -> &'static str {
        match self {
            Kind::Agent => "agents",
            Kind::ApiToken => "tokens",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "invalid name {0:?}: use 1-64 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("invalid label {0:?}: {1}")]
    InvalidLabel(String, String),
    #[error("{name:?} is a {role} principal; manage it with `vigil-collector {command}`")]
    WrongKind {
        name: String,
        role: Role,
        command: &'static str,
    },
    #[error("invalid --expires-in {0:?}: {1}")]
    InvalidLifetime(String, String),
    #[error(
        "the token of {name:?} expires (at {expires_at}); choose the new token's expiry with \
         --expires-in DURATION (e.g. 90d) or --no-expiry"
    )]
    ExpiryNotChosen { name: String, expires_at: String },
    #[error("cannot generate a token: {0}")]
    Random(std::io::Error),
    #[error("invalid public key: {0}")]
    InvalidKey(String),
    #[error("agent {0:?} is revoked; rotate its token before setting its key")]
    AgentRevoked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses `key=value` for `--labels`; keys follow the report's label rules.
pub fn parse_label(text: &str) -> Result<(String, String), AdminError> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        AdminError::InvalidLabel(text.into(), "expected key=value, e.g. env=prod".into())
    })?;
    if !is_valid_principal_name(key) {
        return Err(AdminError::InvalidLabel(
            text.into(),
            "label names are 1-64 characters of a-z, 0-9, '-', '_', '.'".into(),
        ));
    }
    if value.len() > 256 {
        return Err(AdminError::InvalidLabel(
            text.into(),
            "label values are at most 256 bytes".into(),
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Longest `--expires-in`: long enough for any rotation policy, short enough that the expiry
/// instant stays far inside the stores' nanosecond range.
const MAX_LIFETIME_DAYS: i64 = 3650;

/// Parses `--expires-in`: a positive whole number of seconds, minutes, hours, days or weeks
/// (`45s`, `30m`, `12h`, `90d`, `12w`), at most ten years.
pub fn parse_lifetime(text: &str) -> Result<Duration, AdminError> {
    let invalid = |why: &str| AdminError::InvalidLifetime(text.into(), why.into());
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| invalid("expected a duration such as 90d, 12h or 30m"))?;
    if n <= 0 {
        return Err(invalid("must be more than zero"));
    }
    let lifetime = match unit {
        "s" => Duration::try_seconds(n),
        "m" | "min" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => return Err(invalid("the unit must be s, m, h, d or w (e.g. 90d)")),
    }
    .filter(|d| *d <= Duration::days(MAX_LIFETIME_DAYS))
    .ok_or_else(|| invalid("at most 3650 days"))?;
    Ok(lifetime)
}

/// What a rotation does to the token's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationExpiry {
    /// `--expires-in`: the new token expires this long after the rotation.
    After(Duration),
    /// `--no-expiry`: the new token never expires.
    Never,
    /// Neither flag: fine for a token that never expired; a token that expired must get its
    /// new expiry chosen, so that a rotation never silently turns a short-lived credential
    /// into a permanent one nor invents a lifetime.
    Unspecified,
}

/// Creates a principal whose token never expires and returns it with its token, which exists
/// nowhere else.
pub async fn add(
    store: &dyn Store,
    name: &str,
    role: Role,
    labels: BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<(Principal, Token), AdminError> {
    add_expiring(store, name, role, labels, now, None).await
}

/// Like [`add`]; with a `lifetime`, the token stops working that long after `now`.
pub async fn add_expiring(
    store: &dyn Store,
    name: &str,
    role: Role,
    labels: BTreeMap<String, String>,
    now: DateTime<Utc>,
    lifetime: Option<Duration>,
) -> Result<(Principal, Token), AdminError> {
    if !is_valid_principal_name(name) {
        return Err(AdminError::InvalidName(name.into()));
    }
    let token = Token::generate().map_err(AdminError::Random)?;
    let principal = store
        .create_principal(NewPrincipal {
            name: name.into(),
            role,
            labels,
            token_hash: token.hash(),
            created_at: now,
            expires_at: lifetime.map(|d| now + d),
        })
        .await?;
    tracing::info!(principal = %principal.name, role = %principal.role, expires_at = ?principal.expires_at, "principal created");
    Ok((principal, token))
}

async fn existing(store: &dyn Store, name: &str, kind: Kind) -> Result<Principal, AdminError> {
    let principal = store
        .principal_by_name(name)
        .await?
        .ok_or_else(|| StoreError::PrincipalNotFound { name: name.into() })?;
    if !kind.includes(principal.role) {
        let command = match kind {
            Kind::Agent => Kind::ApiToken.command(),
            Kind::ApiToken => Kind::Agent.command(),
        };
        return Err(AdminError::WrongKind {
            name: name.into(),
            role: principal.role,
            command,
        });
    }
    Ok(principal)
}

/// Revokes a principal of `kind`; its token stops working at once.
pub async fn revoke(
    store: &dyn Store,
    name: &str,
    kind: Kind,
    now: DateTime<Utc>,
) -> Result<Principal, AdminError> {
    existing(store, name, kind).await?;
    let principal = store.revoke_principal(name, now).await?;
    tracing::info!(principal = %principal.name, "principal revoked");
    Ok(principal)
}

/// Issues a new token for a principal of `kind` (the old one stops working, a revocation is
/// lifted, the expiry is set afresh from `now`) and returns it.
pub async fn rotate(
    store: &dyn Store,
    name: &str,
    kind: Kind,
    now: DateTime<Utc>,
    expiry: RotationExpiry,
) -> Result<(Principal, Token), AdminError> {
    let old = existing(store, name, kind).await?;
    let expires_at = match (expiry, old.expires_at) {
        (RotationExpiry::After(lifetime), _) => Some(now + lifetime),
        (RotationExpiry::Never | RotationExpiry::Unspecified, None)
        | (RotationExpiry::Never, _) => None,
        (RotationExpiry::Unspecified, Some(at)) => {
            return Err(AdminError::ExpiryNotChosen {
                name: name.into(),
                expires_at: at.to_rfc3339(),
            });
        }
    };
    let token = Token::generate().map_err(AdminError::Random)?;
    let principal = store.rotate_token(name, token.hash(), expires_at).await?;
    tracing::info!(principal = %principal.name, expires_at = ?principal.expires_at, "token rotated");
    Ok((principal, token))
}

/// The principals of `kind`, as a table for people.
pub async fn list(store: &dyn Store, kind: Kind) -> Result<String, AdminError> {
    let principals: Vec<Principal> = store
        .list_principals()
        .await?
        .into_iter()
        .filter(|p| kind.includes(p.role))
        .collect();
    Ok(format_table(&principals))
}

fn format_table(principals: &[Principal]) -> String {
    let rows: Vec<[String; 6]> = principals
        .iter()
        .map(|p| {
            let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            [
                p.name.clone(),
                p.role.to_string(),
                p.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                p.revoked_at.map_or_else(
                    || "active".to_string(),
                    |t| format!("revoked {}", t.format("%Y-%m-%dT%H:%M:%SZ")),
                ),
                p.expires_at.map_or_else(
                    || "never".to_string(),
                    |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                ),
                if labels.is_empty() {
                    "-".into()
                } else {
                    labels.join(",")
                },
            ]
        })
        .collect();
    let header = ["NAME", "ROLE", "CREATED", "STATE", "EXPIRES", "LABELS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn key_fingerprint(bytes: &[u8; 32]) -> String {
    vigil_shared::signing::VerifyingKey::from_bytes(bytes)
        .map(|k| vigil_shared::signing::fingerprint(&k))
        .unwrap_or_else(|_| format!("(invalid key {})", hex::encode(bytes)))
}

/// An agent's keys, as a table for people (newest last).
pub async fn list_keys(store: &dyn Store, name: &str) -> Result<String, AdminError> {
    existing(store, name, Kind::Agent).await?;
    let mut out = format!(
        "{:<42} {:<10} {:<25} {}\n",
        "FINGERPRINT", "SOURCE", "REGISTERED", "RETIRED"
    );
    for key in store.agent_keys(name).await? {
        out.push_str(&format!(
            "{:<42} {:<10} {:<25} {}\n",
            key_fingerprint(&key.public_key),
            key.source.as_str(),
            key.registered_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            key.retired_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "-".into())
        ));
    }
    Ok(out)
}

/// Registers `public_key` as the agent's key (retiring the current one); returns its
/// fingerprint.
pub async fn set_key(
    store: &dyn Store,
    name: &str,
    public_key: &str,
    now: DateTime<Utc>,
) -> Result<String, AdminError> {
    existing(store, name, Kind::Agent).await?;
    let key = vigil_shared::signing::parse_public_key(public_key)
        .map_err(|e| AdminError::InvalidKey(e.to_string()))?;
    match store
        .register_agent_key(
            name,
            key.to_bytes(),
            crate::store::chain::KeySource::Operator,
            now,
        )
        .await?
    {
        crate::store::chain::KeyOutcome::UnknownAgent => Err(AdminError::AgentRevoked(name.into())),
        _ => {
            let fingerprint = vigil_shared::signing::fingerprint(&key);
            tracing::info!(agent = %name, %fingerprint, "agent key set by an operator");
            Ok(fingerprint)
        }
    }
}

/// Retires the agent's current key; returns its fingerprint, `None` when it had none.
pub async fn reset_key(
    store: &dyn Store,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, AdminError> {
    existing(store, name, Kind::Agent).await?;
    let retired = store.retire_agent_key(name, now).await?;
    let fingerprint = retired.map(|k| key_fingerprint(&k.public_key));
    tracing::info!(agent = %name, retired = ?fingerprint, "agent key reset by an operator");
    Ok(fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenHash;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn labels_are_key_value_with_report_rules() {
        assert_eq!(
            parse_label("env=prod").unwrap(),
            ("env".to_string(), "prod".to_string())
        );
        assert_eq!(parse_label("site=").unwrap().1, "");
        assert_eq!(parse_label("a=b=c").unwrap().1, "b=c");
        for bad in ["env", "=prod", "Env=prod", "e nv=x"] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
        assert!(parse_label(&format!("k={}", "v".repeat(257))).is_err());
    }

    #[tokio::test]
    async fn add_list_revoke_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let (agent, token) = add(&store, "web-01", Role::Agent, labels, Utc::now())
            .await
            .unwrap();
        assert_eq!(agent.role, Role::Agent);
        // Only the hash is stored, and it finds the principal.
        let found = store
            .principal_by_token(TokenHash::of(token.expose()))
            .await
            .unwrap();
        assert_eq!(found.map(|p| p.name), Some("web-01".into()));
        add(&store, "grafana", Role::Viewer, BTreeMap::new(), Utc::now())
            .await
            .unwrap();

        let agents = list(&store, Kind::Agent).await.unwrap();
        assert!(
            agents.contains("web-01") && agents.contains("env=prod"),
            "{agents}"
        );
        assert!(!agents.contains("grafana"), "{agents}");
        assert!(
            !agents.contains(&token.expose()[4..]),
            "tokens are never listed"
        );
        let tokens = list(&store, Kind::ApiToken).await.unwrap();
        assert!(
            tokens.contains("grafana") && tokens.contains("viewer"),
            "{tokens}"
        );

        // Each family is managed by its own command.
        let err = revoke(&store, "grafana", Kind::Agent, Utc::now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("vigil-collector tokens"), "{err}");
        let err = revoke(&store, "nobody", Kind::Agent, Utc::now())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no principal named \"nobody\""),
            "{err}"
        );

        let revoked = revoke(&store, "web-01", Kind::Agent, Utc::now())
            .await
            .unwrap();
        assert!(!revoked.is_active());
        assert!(list(&store, Kind::Agent).await.unwrap().contains("revoked"));

        let (rotated, new_token) = rotate(
            &store,
            "web-01",
            Kind::Agent,
            Utc::now(),
            RotationExpiry::Unspecified,
        )
        .await
        .unwrap();
        assert!(rotated.is_active());
        assert_eq!(store.principal_by_token(token.hash()).await.unwrap(), None);
        assert!(
            store
                .principal_by_token(new_token.hash())
                .await
                .unwrap()
                .is_some()
        );

        let err = add(&store, "web-01", Role::Agent, BTreeMap::new(), Utc::now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = add(&store, "Web 01", Role::Agent, BTreeMap::new(), Utc::now())
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::InvalidName(_)));
        store.close().await.unwrap();
    }

    #[test]
    fn lifetimes_are_positive_durations_with_a_unit() {
        assert_eq!(parse_lifetime("90d").unwrap(), Duration::days(90));
        assert_eq!(parse_lifetime("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_lifetime("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_lifetime("45s").unwrap(), Duration::seconds(45));
        assert_eq!(parse_lifetime("2w").unwrap(), Duration::weeks(2));
        for bad in [
            "",
            "90",
            "d",
            "0d",
            "-1d",
            "1y",
            "3651d",
            "99999999999999999999d",
            "1.5h",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn tokens_expire_and_rotation_chooses_a_fresh_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let now = Utc::now();
        let (viewer, _) = add_expiring(
            &store,
            "dash",
            Role::Viewer,
            BTreeMap::new(),
            now,
            Some(Duration::days(90)),
        )
        .await
        .unwrap();
        assert_eq!(viewer.expires_at, Some(now + Duration::days(90)));
        let listed = list(&store, Kind::ApiToken).await.unwrap();
        assert!(listed.contains("EXPIRES"), "{listed}");
        let expiry = (now + Duration::days(90))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        assert!(listed.contains(&expiry), "{listed}");

        // An expiring token is not silently made permanent by a rotation.
        let later = now + Duration::days(80);
        let err = rotate(
            &store,
            "dash",
            Kind::ApiToken,
            later,
            RotationExpiry::Unspecified,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("--expires-in"), "{err}");
        let (rotated, _) = rotate(
            &store,
            "dash",
            Kind::ApiToken,
            later,
            RotationExpiry::After(Duration::days(90)),
        )
        .await
        .unwrap();
        assert_eq!(rotated.expires_at, Some(later + Duration::days(90)));
        let (forever, _) = rotate(&store, "dash", Kind::ApiToken, later, RotationExpiry::Never)
            .await
            .unwrap();
        assert_eq!(forever.expires_at, None);
        assert!(
            list(&store, Kind::ApiToken)
                .await
                .unwrap()
                .contains("never")
        );
        store.close().await.unwrap();
    }
}
