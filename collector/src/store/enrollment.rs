//! Store types for agent enrollment: short-lived enrollment tokens an operator creates
//! (`vigil-collector enroll-token create`), and the atomic exchange of one for a new agent
//! principal (`POST /api/v1/enroll`). Only token hashes are stored, as for principals.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::Principal;
use crate::auth::TokenHash;

/// An enrollment token as the store knows it (never the secret).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentToken {
    /// Operator-facing name, unique among enrollment tokens (`enroll-token revoke NAME`).
    pub name: String,
    /// Labels every agent enrolled with this token receives as operator-assigned labels.
    pub labels: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// After this instant the token enrolls nobody.
    pub expires_at: DateTime<Utc>,
    /// How many agents may enroll with it; `None` means any number until it expires.
    pub max_uses: Option<u64>,
    /// How many agents enrolled with it so far.
    pub uses: u64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Why an enrollment token cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Usable,
    Expired,
    Revoked,
    UsedUp,
}

impl EnrollmentToken {
    /// Whether the token can enroll an agent at `now`; a revocation wins over the rest.
    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            TokenState::UsedUp
        } else if now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Usable
        }
    }

    /// The refusal every store answers when the token cannot enroll at `now` (with when it
    /// expired or was revoked); `None` when it is usable.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<EnrollOutcome> {
        let state = self.state(now);
        let at = match state {
            TokenState::Usable => return None,
            TokenState::Expired => Some(self.expires_at),
            TokenState::Revoked => self.revoked_at,
            TokenState::UsedUp => None,
        };
        Some(EnrollOutcome::Unusable {
            token: self.name.clone(),
            state,
            at,
        })
    }
}

/// An enrollment token to create, with the hash of its freshly drawn secret.
#[derive(Debug, Clone)]
pub struct NewEnrollmentToken {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub token_hash: TokenHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub max_uses: Option<u64>,
}

/// One agent asking to enroll.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    /// Hash of the enrollment token the agent presented.
    pub enrollment_hash: TokenHash,
    /// The name the agent asks for; it becomes its principal name and `agent.id`.
    pub agent: String,
    /// Hash of the agent token issued for the new principal.
    pub agent_token_hash: TokenHash,
    /// What the agent says about its host, kept for the audit trail of who enrolled what.
    pub hostname: String,
    pub machine_id: String,
    pub at: DateTime<Utc>,
}

/// What became of an enrollment. Every variant but `Enrolled` left the store unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrollOutcome {
    /// The agent principal exists now, with the token's labels.
    Enrolled {
        principal: Principal,
        /// The enrollment token used.
        token: String,
    },
    /// No enrollment token has this hash.
    UnknownToken,
    /// The token exists but cannot be used: expired, revoked or used up.
    Unusable {
        token: String,
        state: TokenState,
        /// When it expired or was revoked (for the message).
        at: Option<DateTime<Utc>>,
    },
    /// A principal with this name exists already (enrollment never takes over a name).
    NameTaken { name: String },
}

/// One enrollment, for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    pub agent: String,
    pub token: String,
    pub hostname: String,
    pub machine_id: String,
    pub enrolled_at: DateTime<Utc>,
}
