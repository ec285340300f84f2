//! One evaluator per store: `serve` (when it evaluates an ISMS) and `vigil-collector evaluate`
//! take an exclusive lock on `<data_dir>/evaluator.lock` for as long as they may evaluate, so
//! that a command-line evaluation never interleaves with the service's own. The lock is an
//! advisory `flock`, released by the kernel when its holder exits, even by SIGKILL: a stale
//! file never blocks anyone. The file names its holder so the refusal can say who it is.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another process evaluates this store ({holder}; lock {}): evaluate through it \
         (POST /api/v1/evaluations) or stop it first",
        path.display()
    )]
    Held { path: PathBuf, holder: String },
    #[error("cannot use the evaluator lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held while this process may evaluate; dropping it releases the lock.
#[derive(Debug)]
pub struct EvaluatorLock {
    _file: File,
}

impl EvaluatorLock {
    /// Takes the lock in `data_dir` without waiting; `role` says who holds it (e.g. "serve").
    pub fn acquire(data_dir: &Path, role: &str) -> Result<Self, LockError> {
        let path = data_dir.join("evaluator.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // With the ClickHouse store nothing else creates the data directory (private, as the
        // SQLite store makes it).
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    path,
                    holder: if holder.is_empty() {
                        "holder unknown".into()
                    } else {
                        holder.chars().take(200).collect()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(
            file,
            "vigil-collector {role}, pid {}, since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
        .map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_refusal_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = EvaluatorLock::acquire(dir.path(), "serve").unwrap();
        let refused = EvaluatorLock::acquire(dir.path(), "evaluate").unwrap_err();
        let said = refused.to_string();
        assert!(said.contains("vigil-collector serve, pid"), "{said}");
        assert!(said.contains("POST /api/v1/evaluations"), "{said}");
        drop(first);
        let again = EvaluatorLock::acquire(dir.path(), "evaluate").unwrap();
        drop(again);
    }

    #[test]
    fn a_missing_directory_is_created_private_and_an_impossible_one_is_an_io_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        let lock = EvaluatorLock::acquire(&data, "serve").unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(lock);
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = EvaluatorLock::acquire(&file.join("nope"), "serve").unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err}");
    }
}
