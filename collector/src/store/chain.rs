//! Tamper evidence in the store: agents' public keys, and the per-host hash chain over stored
//! reports. The chain link is a pure function here, shared by every store and by
//! `export verify`, so that a bundle is checked with exactly the formula that built it.
//!
//! Why per host and not global: a host's evidence is exported and verified as one contiguous
//! segment of its own chain, without the rest of the fleet; a host's reports are written by one
//! agent in sequence, so concurrent writers (ClickHouse, several collectors) only contend per
//! host; and deleting a host's reports cannot be hidden by another host's traffic.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// `prev_hash` of the first entry of every host's chain.
pub const GENESIS: [u8; 32] = [0; 32];
/// Domain separation of the link hash (the version of the formula).
const LINK_TAG: &[u8] = b"vigil.chain.v1\0";

/// `chain_hash = SHA-256("vigil.chain.v1\0" ‖ prev_hash ‖ index (u64 BE) ‖ received_at (i64 BE
/// nanoseconds) ‖ body_sha256 ‖ signature (64 bytes, zeros when unsigned) ‖ public_key (32
/// bytes, zeros when unsigned))`.
pub fn link(
    prev_hash: &[u8; 32],
    index: u64,
    received_at_nanos: i64,
    body_sha256: &[u8; 32],
    signature: Option<&[u8; 64]>,
    public_key: Option<&[u8; 32]>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(LINK_TAG);
    h.update(prev_hash);
    h.update(index.to_be_bytes());
    h.update(received_at_nanos.to_be_bytes());
    h.update(body_sha256);
    h.update(signature.unwrap_or(&[0; 64]));
    h.update(public_key.unwrap_or(&[0; 32]));
    h.finalize().into()
}

/// What a signed report brings to the store: the exact bytes the agent signed (the report's
/// JSON text), the signature and the key it verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBody {
    pub json: Vec<u8>,
    pub signature: [u8; 64],
    pub public_key: [u8; 32],
}

/// One stored report's place in its host's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainEntry {
    pub machine_id: String,
    /// 1 for the host's first chained report, then +1 per stored report (receive order).
    pub index: u64,
    pub agent: String,
    pub seq: u64,
    pub batch_id: String,
    pub received_at: DateTime<Utc>,
    pub body_sha256: [u8; 32],
    /// The signed JSON bytes, signature and key; `None` for a report stored unsigned.
    pub signed: Option<SignedBody>,
    pub prev_hash: [u8; 32],
    pub chain_hash: [u8; 32],
}

impl ChainEntry {
    /// Recomputes this entry's hash from its fields.
    pub fn expected_hash(&self) -> Option<[u8; 32]> {
        let nanos = self.received_at.timestamp_nanos_opt()?;
        Some(link(
            &self.prev_hash,
            self.index,
            nanos,
            &self.body_sha256,
            self.signed.as_ref().map(|s| &s.signature),
            self.signed.as_ref().map(|s| &s.public_key),
        ))
    }
}

/// The newest entry of a host's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub machine_id: String,
    pub index: u64,
    pub hash: [u8; 32],
}

/// How an agent's public key came to be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Sent in the enrollment request.
    Enrollment,
    /// Registered by the agent itself with its token when none was registered (trust on
    /// first use: agents provisioned with `agents add`).
    FirstUse,
    /// Set by an administrator (`agents set-key`).
    Operator,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Enrollment => "enrollment",
            KeySource::FirstUse => "first_use",
            KeySource::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<KeySource> {
        match text {
            "enrollment" => Some(KeySource::Enrollment),
            "first_use" => Some(KeySource::FirstUse),
            "operator" => Some(KeySource::Operator),
            _ => None,
        }
    }
}

/// A public key an agent signs (or signed) its reports with. An agent has at most one current
/// key; retired keys are kept so that reports they signed still verify in an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKey {
    pub agent: String,
    pub public_key: [u8; 32],
    pub source: KeySource,
    pub registered_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// What became of a key registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// The key is now the agent's current key.
    Registered(AgentKey),
    /// The key already was the agent's current key.
    Unchanged(AgentKey),
    /// The agent has another current key; only an operator may replace it.
    Conflict { current: AgentKey },
    /// No active agent principal of that name.
    UnknownAgent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_link() {
        let base = link(&GENESIS, 1, 5, &[1; 32], Some(&[2; 64]), Some(&[3; 32]));
        assert_eq!(
            base,
            link(&GENESIS, 1, 5, &[1; 32], Some(&[2; 64]), Some(&[3; 32]))
        );
        let variants = [
            link(&[9; 32], 1, 5, &[1; 32], Some(&[2; 64]), Some(&[3; 32])),
            link(&GENESIS, 2, 5, &[1; 32], Some(&[2; 64]), Some(&[3; 32])),
            link(&GENESIS, 1, 6, &[1; 32], Some(&[2; 64]), Some(&[3; 32])),
            link(&GENESIS, 1, 5, &[4; 32], Some(&[2; 64]), Some(&[3; 32])),
            link(&GENESIS, 1, 5, &[1; 32], Some(&[5; 64]), Some(&[3; 32])),
            link(&GENESIS, 1, 5, &[1; 32], Some(&[2; 64]), Some(&[6; 32])),
            link(&GENESIS, 1, 5, &[1; 32], None, None),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }
}
