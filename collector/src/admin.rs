//! Principal management behind `vigil-collector agents …` and `tokens …`: issue a token (shown
//! once, only its hash stored), list, revoke, rotate. Agents and API tokens share one namespace
//! of names, so a name always means one principal.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

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

/// Creates a principal and returns it with its token, which exists nowhere else.
pub async fn add(
    store: &dyn Store,
    name: &str,
    role: Role,
    labels: BTreeMap<String, String>,
    now: DateTime<Utc>,
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
        })
        .await?;
    tracing::info!(principal = %principal.name, role = %principal.role, "principal created");
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
/// lifted) and returns it.
pub async fn rotate(
    store: &dyn Store,
    name: &str,
    kind: Kind,
) -> Result<(Principal, Token), AdminError> {
    existing(store, name, kind).await?;
    let token = Token::generate().map_err(AdminError::Random)?;
    let principal = store.rotate_token(name, token.hash()).await?;
    tracing::info!(principal = %principal.name, "token rotated");
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
    let rows: Vec<[String; 5]> = principals
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
                if labels.is_empty() {
                    "-".into()
                } else {
                    labels.join(",")
                },
            ]
        })
        .collect();
    let header = ["NAME", "ROLE", "CREATED", "STATE", "LABELS"].map(String::from);
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

        let (rotated, new_token) = rotate(&store, "web-01", Kind::Agent).await.unwrap();
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
}
