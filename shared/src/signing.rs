//! Ed25519 signatures on reports and evidence bundles: the key file both sides keep (agent
//! keys in the agent's state directory, the collector's key in its data directory), the
//! textual form of public keys and fingerprints, and the `X-Vigil-Signature` header an agent
//! puts on every report (a detached signature over the report's JSON bytes, see
//! `PROTOCOL.md`, "Signed reports").

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;
pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The request header carrying a report's signature.
pub const SIGNATURE_HEADER: &str = "x-vigil-signature";
/// The only algorithm this protocol version knows.
pub const ALGORITHM: &str = "ed25519";
/// First line of a key file.
const KEY_FILE_TAG: &str = "vigil-ed25519-secret-key-v1";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(
        "public key must be 64 hexadecimal characters (32 bytes), optionally prefixed by `ed25519:`"
    )]
    BadPublicKey,
    #[error("public key is not a valid ed25519 point")]
    InvalidPoint,
    #[error("signature header must be `ed25519;key=<64 hex>;sig=<128 hex>` (got {0:?})")]
    BadHeader(String),
    #[error("signature does not verify against key {0}")]
    Mismatch(String),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not a Vigil ed25519 key file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("key file {path} is readable by other users (mode {mode:o}); it must be 0600")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(String),
}

/// A new key from the operating system's random source.
pub fn generate() -> Result<SigningKey, KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Lowercase hex of a public key: its canonical text in headers, the store and bundles.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Short, stable name of a public key for people: `SHA256:` and the first 16 bytes of the
/// SHA-256 of the key bytes, in hex.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("SHA256:{}", hex::encode(&digest[..16]))
}

/// Parses a public key: 64 hex characters, optionally prefixed by `ed25519:`.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, SigningError> {
    let text = text.trim();
    let text = text.strip_prefix("ed25519:").unwrap_or(text);
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SigningError::BadPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SigningError::InvalidPoint)
}

/// A parsed `X-Vigil-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The key the sender says it signed with (the collector checks it is the registered one).
    pub key: VerifyingKey,
    pub signature: Signature,
}

impl SignatureHeader {
    /// Signs `body` (the exact JSON bytes of the report, before any `Content-Encoding`).
    pub fn sign(key: &SigningKey, body: &[u8]) -> SignatureHeader {
        SignatureHeader {
            key: key.verifying_key(),
            signature: key.sign(body),
        }
    }

    /// The header value.
    pub fn to_value(&self) -> String {
        format!(
            "{ALGORITHM};key={};sig={}",
            public_key_hex(&self.key),
            hex::encode(self.signature.to_bytes())
        )
    }

    /// Parses a header value; parameters in any order, spaces around `;` allowed.
    pub fn parse(value: &str) -> Result<SignatureHeader, SigningError> {
        let bad = || SigningError::BadHeader(value.chars().take(80).collect());
        let mut parts = value.split(';').map(str::trim);
        if parts.next() != Some(ALGORITHM) {
            return Err(bad());
        }
        let (mut key, mut sig) = (None, None);
        for part in parts {
            match part.split_once('=') {
                Some(("key", v)) if key.is_none() => key = Some(v),
                Some(("sig", v)) if sig.is_none() => sig = Some(v),
                _ => return Err(bad()),
            }
        }
        let key = parse_public_key(key.ok_or_else(bad)?).map_err(|_| bad())?;
        let bytes: [u8; 64] = hex::decode(sig.ok_or_else(bad)?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        Ok(SignatureHeader {
            key,
            signature: Signature::from_bytes(&bytes),
        })
    }
}

/// Checks a detached signature (strict: no malleable or small-order forms).
pub fn verify(key: &VerifyingKey, body: &[u8], signature: &Signature) -> Result<(), SigningError> {
    key.verify_strict(body, signature)
        .map_err(|_| SigningError::Mismatch(fingerprint(key)))
}

/// Parses a 64-byte signature from hex.
pub fn parse_signature(text: &str) -> Option<Signature> {
    let bytes: [u8; 64] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    Some(Signature::from_bytes(&bytes))
}

/// Reads a key file, `None` when it does not exist. Refuses a file other users can read.
pub fn load_key(path: &Path) -> Result<Option<SigningKey>, KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let corrupt = |reason: &str| KeyFileError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(KEY_FILE_TAG) {
        return Err(corrupt("first line is not the key file tag"));
    }
    let seed: [u8; 32] = lines
        .next()
        .and_then(|l| hex::decode(l.trim()).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("second line is not 64 hexadecimal characters"))?;
    Ok(Some(SigningKey::from_bytes(&seed)))
}

/// Writes a new key file, mode 0600, never replacing an existing file (`create_new`), fsynced.
pub fn write_new_key(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let text = format!("{KEY_FILE_TAG}\n{}\n", hex::encode(key.to_bytes()));
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// The key in `path`, created (0600) when the file does not exist; `true` when it was created.
pub fn load_or_create_key(path: &Path) -> Result<(SigningKey, bool), KeyFileError> {
    if let Some(key) = load_key(path)? {
        return Ok((key, false));
    }
    let key = generate()?;
    match write_new_key(path, &key) {
        Ok(()) => Ok((key, true)),
        // Another process created it meanwhile: use that one.
        Err(KeyFileError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            load_key(path)?
                .map(|k| (k, false))
                .ok_or_else(|| KeyFileError::Corrupt {
                    path: path.to_path_buf(),
                    reason: "vanished while being created".into(),
                })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_verify_only_the_signed_bytes() {
        let key = generate().unwrap();
        let body = br#"{"schema":"vigil.report.v1"}"#;
        let header = SignatureHeader::sign(&key, body);
        let parsed = SignatureHeader::parse(&header.to_value()).unwrap();
        assert_eq!(parsed, header);
        verify(&parsed.key, body, &parsed.signature).unwrap();
        let err = verify(&parsed.key, b"{}", &parsed.signature).unwrap_err();
        assert!(err.to_string().contains("SHA256:"), "{err}");
        let other = generate().unwrap();
        assert!(verify(&other.verifying_key(), body, &parsed.signature).is_err());
        // Parameters in another order, with spaces.
        let v = format!(
            "ed25519; sig={} ; key={}",
            hex::encode(header.signature.to_bytes()),
            public_key_hex(&header.key)
        );
        assert_eq!(SignatureHeader::parse(&v).unwrap(), header);
    }

    #[test]
    fn malformed_headers_and_keys_are_refused() {
        for bad in [
            "",
            "rsa;key=00;sig=00",
            "ed25519",
            "ed25519;key=zz;sig=00",
            "ed25519;key=;sig=",
            "ed25519;foo=1",
        ] {
            assert!(SignatureHeader::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_public_key("abcd").is_err());
        let key = generate().unwrap().verifying_key();
        assert_eq!(
            parse_public_key(&format!("ed25519:{}", public_key_hex(&key))).unwrap(),
            key
        );
        assert!(fingerprint(&key).starts_with("SHA256:"));
        assert_eq!(fingerprint(&key).len(), 7 + 32);
    }

    #[test]
    fn key_files_are_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        let (a, created) = load_or_create_key(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, created) = load_or_create_key(&path).unwrap();
        assert!(!created);
        assert_eq!(a.to_bytes(), b.to_bytes());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_key(&path),
            Err(KeyFileError::Permissions { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "junk\n").unwrap();
        assert!(matches!(load_key(&path), Err(KeyFileError::Corrupt { .. })));
    }
}
