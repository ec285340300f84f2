//! Credentials: the bearer token format, how tokens are hashed for storage, and the roles a
//! principal can hold.
//!
//! A token is `vgl_` followed by 64 lowercase hex digits: 256 bits from the operating system's
//! random source. Only its SHA-256 digest is stored. A slow password hash (argon2, bcrypt)
//! exists to make guessing a *low-entropy* secret expensive; a 256-bit random token cannot be
//! guessed however fast the hash is, so a single SHA-256 loses nothing and keeps the lookup on
//! every request cheap. Lookup is by digest: an attacker controls the token, not its digest, so
//! the timing of the index search reveals nothing about stored digests.

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// Every token starts with this, so that leaked tokens are recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "vgl_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A host agent: writes reports about the hosts it owns, reads nothing.
    Agent,
    /// A person or dashboard reading the API.
    Viewer,
    /// An auditor: reads everything a viewer reads (audit records will follow).
    Auditor,
    /// An administrator: reads everything (management writes will follow).
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may read the API. Agents may not: a compromised host must not learn
    /// about the rest of the fleet.
    pub fn can_read(self) -> bool {
        matches!(self, Role::Viewer | Role::Auditor | Role::Admin)
    }

    /// Whether this role may push reports. Only agents write evidence, so that every stored
    /// fact is tied to the host credential that produced it.
    pub fn can_write_reports(self) -> bool {
        self == Role::Agent
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "viewer" => Ok(Role::Viewer),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}; expected agent, viewer, auditor or admin"
            )),
        }
    }
}

/// A freshly issued secret token. Shown once, never stored, never logged: `Debug` is redacted.
pub struct Token(String);

impl Token {
    /// Draws a new token from the operating system's random source.
    pub fn generate() -> Result<Token, std::io::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| std::io::Error::other(format!("operating system random source: {e}")))?;
        Ok(Token(format!("{TOKEN_PREFIX}{}", hex::encode(bytes))))
    }

    /// The secret itself, for printing once to the operator.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// SHA-256 of a token: what the store keeps and looks principals up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a debugger and useless to an attacker.
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// Whether `candidate` has the shape of a Vigil token. Lets the server refuse junk without a
/// store lookup; the answer to the client is the same 401 either way.
pub fn looks_like_token(candidate: &str) -> bool {
    candidate.len() == TOKEN_PREFIX.len() + 2 * TOKEN_BYTES
        && candidate.starts_with(TOKEN_PREFIX)
        && candidate[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The token in an `Authorization` header value, if it uses the Bearer scheme (RFC 6750; the
/// scheme name is case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    if token.is_empty() { None } else { Some(token) }
}

/// Whether `name` is acceptable as a principal name: the same rules as a report's `agent.id`,
/// so an agent's name can be used as its id.
pub fn is_valid_principal_name(name: &str) -> bool {
    vigil_shared::report::is_valid_agent_id(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape_and_differ() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert!(looks_like_token(a.expose()), "{}", a.expose());
        assert_eq!(a.expose().len(), 68);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash(), TokenHash::of(a.expose()));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let token = Token::generate().unwrap();
        let shown = format!("{token:?} {:?}", token.hash());
        assert!(!shown.contains(&token.expose()[4..]), "{shown}");
        assert!(!shown.contains(&hex::encode(token.hash().0)), "{shown}");
    }

    #[test]
    fn the_hash_is_plain_sha256_of_the_token_text() {
        // Known answer (FIPS 180-2 example), so the stored format is pinned down.
        assert_eq!(
            hex::encode(TokenHash::of("abc").0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn token_shape_is_strict() {
        let good = format!("vgl_{}", "a1".repeat(32));
        assert!(looks_like_token(&good));
        for bad in [
            String::new(),
            "vgl_".into(),
            format!("vgl_{}", "A1".repeat(32)),
            format!("vgx_{}", "a1".repeat(32)),
            format!("vgl_{}", "a1".repeat(31)),
            format!("vgl_{}0", "a1".repeat(32)),
            format!("vgl_{}é", "a1".repeat(31)),
        ] {
            assert!(!looks_like_token(&bad), "{bad}");
        }
    }

    #[test]
    fn bearer_headers_are_parsed_like_rfc_6750() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc  "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token(""), None);
    }

    #[test]
    fn roles_round_trip_and_gate_access() {
        for role in [Role::Agent, Role::Viewer, Role::Auditor, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!(!Role::Agent.can_read());
        assert!(Role::Agent.can_write_reports());
        for role in [Role::Viewer, Role::Auditor, Role::Admin] {
            assert!(role.can_read());
            assert!(!role.can_write_reports());
        }
    }
}
