//! The agent's signing key: an ed25519 key in `<state_dir>/agent.key` (mode 0600, given to the
//! state directory's owner), created at enrollment or at the first start of an agent
//! provisioned with a token. Every report is signed with it when it is sent (so reports spooled
//! before an administrator reset the key still deliver). The collector learns the public key
//! from the enrollment request, or from `PUT /api/v1/agent/key` (trust on first use).

use std::path::{Path, PathBuf};

use vigil_shared::signing::{self, KeyFileError, SigningKey};

/// File name of the key in the state directory.
pub const KEY_FILE: &str = "agent.key";

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(KEY_FILE)
}

/// The agent's key, created when missing.
pub fn load_or_create(state_dir: &Path) -> Result<SigningKey, KeyFileError> {
    let path = path(state_dir);
    let (key, created) = signing::load_or_create_key(&path)?;
    if created {
        crate::state::give_to_dir_owner(&path, state_dir).map_err(|source| KeyFileError::Io {
            path: path.clone(),
            source,
        })?;
        tracing::info!(
            path = %path.display(),
            fingerprint = %signing::fingerprint(&key.verifying_key()),
            "created the agent's signing key"
        );
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
