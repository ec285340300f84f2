//! The agent's durable state in its state directory: the report sequence counter and the
//! host id used when the audited root has no machine id. Every write is atomic (temporary file,
//! fsync, rename, fsync of the directory), so a crash leaves either the old or the new value.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Writes `bytes` to `path` atomically and durably, with the given mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Makes a directory's entries (creations, renames, deletions) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Gives `path` to the owner and group of `dir` when they differ, so that a file root wrote
/// into the service's state directory (`vigil-agent enroll` run by an administrator) stays
/// readable and replaceable by the service user.
pub fn give_to_dir_owner(path: &Path, dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = fs::metadata(dir)?;
    let file = fs::metadata(path)?;
    if (file.uid(), file.gid()) != (owner.uid(), owner.gid()) {
        std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))?;
    }
    Ok(())
}

/// Creates a private directory (0700) and its parents if missing.
pub fn ensure_private_dir(path: &Path) -> Result<(), StateError> {
    let err = |source| StateError::Dir {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(path).map_err(err)?;
    let meta = fs::metadata(path).map_err(err)?;
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// The sequence counter and host id of one agent.
#[derive(Debug)]
pub struct AgentState {
    dir: PathBuf,
}

impl AgentState {
    /// Opens (creating if needed) the state directory.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        ensure_private_dir(dir)?;
        Ok(AgentState {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn seq_path(&self) -> PathBuf {
        self.dir.join("seq")
    }

    /// The last sequence number handed out (0 before the first report).
    pub fn last_seq(&self) -> Result<u64, StateError> {
        let path = self.seq_path();
        match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| StateError::Corrupt {
                path: path.clone(),
                reason: format!("expected a number, found {:?}", text.trim()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(StateError::File { path, source }),
        }
    }

    /// Hands out the next sequence number, durably: the counter is on disk before the number is
    /// used, so a crash can skip a number but never reuse one.
    pub fn next_seq(&self) -> Result<u64, StateError> {
        let next = self.last_seq()? + 1;
        let path = self.seq_path();
        write_atomic(&path, format!("{next}\n").as_bytes(), 0o600)
            .map_err(|source| StateError::File { path, source })?;
        Ok(next)
    }

    /// Makes sure the counter is at least `seq` (after restoring a spool from elsewhere).
    pub fn raise_seq_to(&self, seq: u64) -> Result<(), StateError> {
        if self.last_seq()? < seq {
            let path = self.seq_path();
            write_atomic(&path, format!("{seq}\n").as_bytes(), 0o600)
                .map_err(|source| StateError::File { path, source })?;
        }
        Ok(())
    }

    /// A random host id kept in the state directory, for roots without `/etc/machine-id`.
    pub fn host_id(&self) -> Result<String, StateError> {
        let path = self.dir.join("host-id");
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::File { path, source }),
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        write_atomic(&path, format!("{id}\n").as_bytes(), 0o600)
            .map_err(|source| StateError::File { path, source })?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_survive_reopening_and_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let state = AgentState::open(dir.path()).unwrap();
        assert_eq!(state.last_seq().unwrap(), 0);
        assert_eq!(state.next_seq().unwrap(), 1);
        assert_eq!(state.next_seq().unwrap(), 2);
        let again = AgentState::open(dir.path()).unwrap();
        assert_eq!(again.next_seq().unwrap(), 3);
        again.raise_seq_to(10).unwrap();
        again.raise_seq_to(5).unwrap();
        assert_eq!(again.next_seq().unwrap(), 11);
    }

    #[test]
    fn a_corrupt_counter_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let state = AgentState::open(dir.path()).unwrap();
        fs::write(dir.path().join("seq"), "garbage").unwrap();
        assert!(matches!(state.next_seq(), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn host_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let state = AgentState::open(dir.path()).unwrap();
        let id = state.host_id().unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(state.host_id().unwrap(), id);
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
