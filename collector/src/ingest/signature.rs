//! Signed reports: the `X-Vigil-Signature` header must hold an ed25519 signature over the
//! report's exact JSON bytes by the agent's registered (current) key. Every refusal is a 401
//! with the reason, so that the agent keeps the report and retries once its key is registered
//! (`PUT /api/v1/agent/key`) or an administrator reset it; a malformed header is a 400.

use axum::http::HeaderMap;
use vigil_shared::signing::{self, SIGNATURE_HEADER, SignatureHeader};

use crate::http::error::ApiError;
use crate::store::chain::{AgentKey, SignedBody};

/// The signature header, parsed; refuses a missing, repeated or malformed one.
pub fn header(headers: &HeaderMap, agent: &str) -> Result<SignatureHeader, ApiError> {
    let mut values = headers.get_all(SIGNATURE_HEADER).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::unauthorized(
            format!(
                "the report is not signed: every report must carry `X-Vigil-Signature: \
                 ed25519;key=<public key>;sig=<signature>` made with agent {agent:?}'s key over \
                 the JSON body (upgrade the agent)"
            ),
            true,
        ));
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "X-Vigil-Signature appears more than once",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Vigil-Signature is not text"))?;
    SignatureHeader::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Checks the signature against the agent's current key; on success returns what the store
/// keeps. CPU-bound on large bodies (hashing): call it from `spawn_blocking`.
pub fn verify(
    signature: &SignatureHeader,
    json: Vec<u8>,
    agent: &str,
    keys: &[AgentKey],
) -> Result<SignedBody, ApiError> {
    let Some(current) = keys.iter().find(|k| k.retired_at.is_none()) else {
        return Err(ApiError::unauthorized(
            format!(
                "agent {agent:?} has no registered public key: the agent registers its key \
                 itself (PUT /api/v1/agent/key) when it starts, or an administrator sets it \
                 with `vigil-collector agents set-key {agent} <public key>`"
            ),
            true,
        ));
    };
    let registered = signing::parse_public_key(&hex::encode(current.public_key))
        .map_err(|_| ApiError::unavailable("the agent's registered key is unreadable"))?;
    if signature.key != registered {
        return Err(ApiError::unauthorized(
            format!(
                "the report is signed with key {} but agent {agent:?}'s registered key is {}; \
                 a reinstalled host has a new key: an administrator resets it with \
                 `vigil-collector agents reset-key {agent}`",
                signing::fingerprint(&signature.key),
                signing::fingerprint(&registered)
            ),
            true,
        ));
    }
    signing::verify(&registered, &json, &signature.signature).map_err(|_| {
        ApiError::unauthorized(
            format!(
                "the report's signature does not verify against agent {agent:?}'s registered \
                 key {}: the body was altered or signed by someone else",
                signing::fingerprint(&registered)
            ),
            true,
        )
    })?;
    Ok(SignedBody {
        json,
        signature: signature.signature.to_bytes(),
        public_key: current.public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chain::KeySource;
    use axum::http::{HeaderValue, StatusCode};

    fn key_of(agent: &str, key: &signing::SigningKey, retired: bool) -> AgentKey {
        AgentKey {
            agent: agent.into(),
            public_key: key.verifying_key().to_bytes(),
            source: KeySource::FirstUse,
            registered_at: chrono::Utc::now(),
            retired_at: retired.then(chrono::Utc::now),
        }
    }

    fn signed_headers(key: &signing::SigningKey, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let value = SignatureHeader::sign(key, body).to_value();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(&value).unwrap());
        h
    }

    #[test]
    fn only_the_registered_key_over_the_exact_body_passes() {
        let mine = signing::generate().unwrap();
        let other = signing::generate().unwrap();
        let body = br#"{"schema":"vigil.report.v1"}"#.to_vec();
        let keys = [key_of("a", &mine, false)];

        let h = header(&signed_headers(&mine, &body), "a").unwrap();
        let signed = verify(&h, body.clone(), "a", &keys).unwrap();
        assert_eq!(signed.public_key, mine.verifying_key().to_bytes());

        // Unsigned.
        let err = header(&HeaderMap::new(), "a").unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert!(err.message.contains("not signed"), "{}", err.message);
        // Signed by another key (another agent's, or a stolen token without the key).
        let h = header(&signed_headers(&other, &body), "a").unwrap();
        let err = verify(&h, body.clone(), "a", &keys).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert!(err.message.contains("reset-key"), "{}", err.message);
        // The body altered after signing.
        let h = header(&signed_headers(&mine, &body), "a").unwrap();
        let err = verify(&h, b"{\"schema\":\"x\"}".to_vec(), "a", &keys).unwrap_err();
        assert!(err.message.contains("does not verify"), "{}", err.message);
        // A header naming the registered key with another key's signature.
        let mut forged = SignatureHeader::sign(&other, &body);
        forged.key = mine.verifying_key();
        let err = verify(&forged, body.clone(), "a", &keys).unwrap_err();
        assert!(err.message.contains("does not verify"), "{}", err.message);
        // No current key: only a retired one.
        let err = verify(&h, body.clone(), "a", &[key_of("a", &mine, true)]).unwrap_err();
        assert!(
            err.message.contains("no registered public key"),
            "{}",
            err.message
        );
        // Malformed header.
        let mut bad = HeaderMap::new();
        bad.insert(SIGNATURE_HEADER, HeaderValue::from_static("ed25519;sig=00"));
        assert_eq!(
            header(&bad, "a").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
