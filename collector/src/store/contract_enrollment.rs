//! The enrollment behaviour every [`Store`] implementation must have (see `contract.rs` for
//! the rest). Each backend's tests call [`run_all`] on a fresh store.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::auth::{Role, Token, TokenHash};
use crate::store::enrollment::{EnrollOutcome, EnrollRequest, NewEnrollmentToken, TokenState};
use crate::store::{Store, StoreError};
use crate::testutil::t0;

fn new_token(name: &str, max_uses: Option<u64>) -> (NewEnrollmentToken, TokenHash) {
    let hash = Token::generate().unwrap().hash();
    let new = NewEnrollmentToken {
        name: name.into(),
        labels: BTreeMap::from([("site".to_string(), "paris".to_string())]),
        token_hash: hash,
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
        max_uses,
    };
    (new, hash)
}

fn request(hash: TokenHash, agent: &str, minutes: i64) -> (EnrollRequest, TokenHash) {
    let agent_hash = Token::generate().unwrap().hash();
    let request = EnrollRequest {
        enrollment_hash: hash,
        agent: agent.into(),
        agent_token_hash: agent_hash,
        hostname: format!("{agent}.example"),
        machine_id: format!("{agent}-machine"),
        at: t0() + Duration::minutes(minutes),
    };
    (request, agent_hash)
}

/// Runs every enrollment contract function on one store.
pub async fn run_all(store: &dyn Store) {
    tokens_are_created_listed_unique_and_revocable(store).await;
    enrollment_creates_an_agent_with_the_token_labels(store).await;
    single_use_tokens_enroll_once(store).await;
    expired_revoked_and_unknown_tokens_enroll_nobody(store).await;
    enrollment_never_takes_over_a_name(store).await;
}

pub async fn tokens_are_created_listed_unique_and_revocable(store: &dyn Store) {
    let (new, _) = new_token("e-batch", Some(3));
    let created = store.create_enrollment_token(new.clone()).await.unwrap();
    assert_eq!(created.name, "e-batch");
    assert_eq!(created.max_uses, Some(3));
    assert_eq!(created.uses, 0);
    assert_eq!(created.expires_at, t0() + Duration::hours(1));
    assert_eq!(created.labels["site"], "paris");
    assert_eq!(created.state(t0()), TokenState::Usable);
    assert_eq!(
        created.state(t0() + Duration::hours(1)),
        TokenState::Expired
    );
    let err = store.create_enrollment_token(new).await.unwrap_err();
    assert!(
        matches!(err, StoreError::EnrollmentTokenExists { .. }),
        "{err}"
    );
    let listed = store.list_enrollment_tokens().await.unwrap();
    assert!(listed.iter().any(|t| t.name == "e-batch"));

    let revoked = store
        .revoke_enrollment_token("e-batch", t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t0() + Duration::minutes(1)));
    let again = store
        .revoke_enrollment_token("e-batch", t0() + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(t0() + Duration::minutes(1)),
        "the first revocation time stays"
    );
    let err = store
        .revoke_enrollment_token("e-nobody", t0())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::EnrollmentTokenNotFound { .. }),
        "{err}"
    );
}

pub async fn enrollment_creates_an_agent_with_the_token_labels(store: &dyn Store) {
    let (new, hash) = new_token("e-fleet", None);
    store.create_enrollment_token(new).await.unwrap();
    for (i, name) in ["e-web-01", "e-web-02"].into_iter().enumerate() {
        let (req, agent_hash) = request(hash, name, i as i64);
        let outcome = store.enroll_agent(req).await.unwrap();
        let EnrollOutcome::Enrolled { principal, token } = outcome else {
            panic!("{name}: {outcome:?}");
        };
        assert_eq!(token, "e-fleet");
        assert_eq!(principal.name, name);
        assert_eq!(principal.role, Role::Agent);
        assert_eq!(principal.labels["site"], "paris");
        // The issued agent token authenticates the new principal.
        let found = store.principal_by_token(agent_hash).await.unwrap();
        assert_eq!(found.map(|p| p.name), Some(name.to_string()));
    }
    let token = store
        .list_enrollment_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "e-fleet")
        .unwrap();
    assert_eq!(token.uses, 2);
    assert_eq!(token.last_used_at, Some(t0() + Duration::minutes(1)));
    let trail: Vec<(String, String, String)> = store
        .list_enrollments()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.token == "e-fleet")
        .map(|e| (e.agent, e.hostname, e.machine_id))
        .collect();
    assert_eq!(
        trail,
        [
            (
                "e-web-01".to_string(),
                "e-web-01.example".to_string(),
                "e-web-01-machine".to_string()
            ),
            (
                "e-web-02".to_string(),
                "e-web-02.example".to_string(),
                "e-web-02-machine".to_string()
            )
        ]
    );
}

pub async fn single_use_tokens_enroll_once(store: &dyn Store) {
    let (new, hash) = new_token("e-once", Some(1));
    store.create_enrollment_token(new).await.unwrap();
    let (first, _) = request(hash, "e-once-a", 0);
    assert!(matches!(
        store.enroll_agent(first).await.unwrap(),
        EnrollOutcome::Enrolled { .. }
    ));
    let (second, second_hash) = request(hash, "e-once-b", 1);
    assert_eq!(
        store.enroll_agent(second).await.unwrap(),
        EnrollOutcome::Unusable {
            token: "e-once".into(),
            state: TokenState::UsedUp,
            at: None
        }
    );
    assert_eq!(store.principal_by_name("e-once-b").await.unwrap(), None);
    assert_eq!(store.principal_by_token(second_hash).await.unwrap(), None);
}

pub async fn expired_revoked_and_unknown_tokens_enroll_nobody(store: &dyn Store) {
    let (new, hash) = new_token("e-short", None);
    store.create_enrollment_token(new).await.unwrap();
    let (late, _) = request(hash, "e-late", 60);
    assert_eq!(
        store.enroll_agent(late).await.unwrap(),
        EnrollOutcome::Unusable {
            token: "e-short".into(),
            state: TokenState::Expired,
            at: Some(t0() + Duration::hours(1))
        }
    );
    let (new, hash) = new_token("e-pulled", None);
    store.create_enrollment_token(new).await.unwrap();
    store
        .revoke_enrollment_token("e-pulled", t0() + Duration::minutes(5))
        .await
        .unwrap();
    let (after, _) = request(hash, "e-after", 10);
    assert_eq!(
        store.enroll_agent(after).await.unwrap(),
        EnrollOutcome::Unusable {
            token: "e-pulled".into(),
            state: TokenState::Revoked,
            at: Some(t0() + Duration::minutes(5))
        }
    );
    let (unknown, _) = request(Token::generate().unwrap().hash(), "e-stranger", 0);
    assert_eq!(
        store.enroll_agent(unknown).await.unwrap(),
        EnrollOutcome::UnknownToken
    );
    for name in ["e-late", "e-after", "e-stranger"] {
        assert_eq!(store.principal_by_name(name).await.unwrap(), None, "{name}");
    }
}

pub async fn enrollment_never_takes_over_a_name(store: &dyn Store) {
    store
        .create_principal(crate::store::contract::new_principal(
            "e-existing",
            Role::Agent,
        ))
        .await
        .unwrap();
    let before = store.principal_by_name("e-existing").await.unwrap();
    let (new, hash) = new_token("e-takeover", Some(5));
    store.create_enrollment_token(new).await.unwrap();
    let (req, agent_hash) = request(hash, "e-existing", 0);
    assert_eq!(
        store.enroll_agent(req).await.unwrap(),
        EnrollOutcome::NameTaken {
            name: "e-existing".into()
        }
    );
    assert_eq!(store.principal_by_name("e-existing").await.unwrap(), before);
    assert_eq!(store.principal_by_token(agent_hash).await.unwrap(), None);
    let token = store
        .list_enrollment_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "e-takeover")
        .unwrap();
    assert_eq!(token.uses, 0, "a refused enrollment is not counted");
}
