//! Read-only access to a host's files through a root prefix.
//!
//! Every check reads the machine only through [`HostRoot`], so the same code audits the running
//! host (`/`), a fixture tree in a test, a mounted disk image or a container's filesystem.
//! Paths given to it are absolute paths *inside* the host (`/etc/shadow`); symlinks are
//! resolved as if the root were `/` (an absolute link in an image points into the image, never
//! out to the auditing machine), and `..` never climbs above the root.
//!
//! Reads are bounded: a file larger than the caller's limit is an error, not an allocation, and
//! only regular files are read whole (a FIFO planted where a file should be must not hang us).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Default cap for [`HostRoot::read_to_string`]: configuration files are small; a 16 MiB
/// `/etc/passwd` is an attack or a corruption, not something to load.
pub const DEFAULT_READ_LIMIT: u64 = 16 * 1024 * 1024;

/// Symlinks followed while resolving one path before giving up (Linux uses 40 as well).
const MAX_SYMLINKS: u32 = 40;

/// Why a host read failed; always names the path inside the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    #[error("{path}: larger than the {limit}-byte limit for this file")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("{path}: not a regular file")]
    NotAFile { path: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

impl HostError {
    fn from_io(path: &str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => HostError::NotFound { path: path.into() },
            io::ErrorKind::PermissionDenied => HostError::PermissionDenied { path: path.into() },
            _ if source.raw_os_error() == Some(libc_eloop()) => {
                HostError::SymlinkLoop { path: path.into() }
            }
            _ => HostError::Io {
                path: path.into(),
                source,
            },
        }
    }

    /// True when the file or a directory on its way does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, HostError::NotFound { .. })
    }
}

/// `ELOOP` on Linux; written out so that this module needs no libc binding.
const fn libc_eloop() -> i32 {
    40
}

/// A host's filesystem seen through a root prefix.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
    live: bool,
}

impl HostRoot {
    /// Opens `root` (a directory). `/` means the running machine.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, HostError> {
        let shown = root.as_ref().display().to_string();
        let root = std::fs::canonicalize(root.as_ref()).map_err(|e| HostError::from_io(&shown, e))?;
        if !root.is_dir() {
            return Err(HostError::Io {
                path: shown,
                source: io::Error::other("root prefix is not a directory"),
            });
        }
        let live = root == Path::new("/");
        Ok(HostRoot { root, live })
    }

    /// True when the root is `/`: `/proc` and `/sys` describe the machine this agent runs on,
    /// and live facts (CPU, memory, uptime) may be taken from the kernel.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The root prefix on the auditing machine.
    pub fn prefix(&self) -> &Path {
        &self.root
    }

    /// Resolves a host path to a root-relative absolute path (`/sys/devices/…`), following
    /// symlinks inside the root. Components after a missing one are kept as written.
    pub fn canonical(&self, path: &str) -> Result<String, HostError> {
        if self.live {
            return match std::fs::canonicalize(path) {
                Ok(p) => Ok(p.display().to_string()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(normalise(path)),
                Err(e) => Err(HostError::from_io(path, e)),
            };
        }
        let parts = self.resolve_parts(path)?;
        Ok(format!("/{}", parts.join("/")))
    }

    /// The real path on the auditing machine for a host path.
    pub fn real_path(&self, path: &str) -> Result<PathBuf, HostError> {
        if self.live {
            return Ok(PathBuf::from(path));
        }
        let mut real = self.root.clone();
        for part in self.resolve_parts(path)? {
            real.push(part);
        }
        Ok(real)
    }

    fn resolve_parts(&self, path: &str) -> Result<Vec<String>, HostError> {
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: Vec<String> = components_reversed(Path::new(path));
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(part);
            let mut real = self.root.clone();
            real.extend(&resolved);
            match std::fs::symlink_metadata(&real) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(HostError::SymlinkLoop { path: path.into() });
                    }
                    let target =
                        std::fs::read_link(&real).map_err(|e| HostError::from_io(path, e))?;
                    resolved.pop();
                    if target.is_absolute() {
                        resolved.clear();
                    }
                    pending.extend(components_reversed(&target));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Nothing below a missing entry can be a symlink: keep the rest as written
                    // and let the caller's open report the missing file.
                    while let Some(rest) = pending.pop() {
                        if rest == ".." {
                            resolved.pop();
                        } else {
                            resolved.push(rest);
                        }
                    }
                    break;
                }
                Err(e) => return Err(HostError::from_io(path, e)),
            }
        }
        Ok(resolved)
    }

    /// Metadata of the file a host path points to (symlinks followed inside the root).
    pub fn metadata(&self, path: &str) -> Result<Metadata, HostError> {
        let real = self.real_path(path)?;
        std::fs::metadata(real).map_err(|e| HostError::from_io(path, e))
    }

    /// Metadata of the entry itself, without following a final symlink.
    pub fn symlink_metadata(&self, path: &str) -> Result<Metadata, HostError> {
        let (parent, name) = split_parent(path);
        let mut real = self.real_path(&parent)?;
        real.push(name);
        std::fs::symlink_metadata(real).map_err(|e| HostError::from_io(path, e))
    }

    /// True when the path exists (after following symlinks inside the root).
    pub fn exists(&self, path: &str) -> bool {
        self.metadata(path).is_ok()
    }

    /// Reads a whole regular file as text (invalid UTF-8 replaced), up to
    /// [`DEFAULT_READ_LIMIT`] bytes.
    pub fn read_to_string(&self, path: &str) -> Result<String, HostError> {
        let bytes = self.read_bytes(path, DEFAULT_READ_LIMIT)?;
        Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads a whole regular file, refusing files larger than `limit` bytes.
    pub fn read_bytes(&self, path: &str, limit: u64) -> Result<Vec<u8>, HostError> {
        let file = self.open_regular(path)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| HostError::from_io(path, e))?;
        if bytes.len() as u64 > limit {
            return Err(HostError::TooLarge {
                path: path.into(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Reads at most the first `n` bytes of a regular file or block device (disk headers).
    pub fn read_prefix(&self, path: &str, n: usize) -> Result<Vec<u8>, HostError> {
        use std::os::unix::fs::FileTypeExt;
        let meta = self.metadata(path)?;
        let kind = meta.file_type();
        if !(kind.is_file() || kind.is_block_device()) {
            return Err(HostError::NotAFile { path: path.into() });
        }
        let real = self.real_path(path)?;
        let file = File::open(real).map_err(|e| HostError::from_io(path, e))?;
        let mut bytes = Vec::with_capacity(n);
        file.take(n as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| HostError::from_io(path, e))?;
        Ok(bytes)
    }

    /// Opens a regular file for streaming reads (large package lists).
    pub fn open_regular(&self, path: &str) -> Result<File, HostError> {
        let meta = self.metadata(path)?;
        if !meta.is_file() {
            return Err(HostError::NotAFile { path: path.into() });
        }
        let real = self.real_path(path)?;
        File::open(real).map_err(|e| HostError::from_io(path, e))
    }

    /// Names in a directory, sorted, `.`/`..` excluded.
    pub fn read_dir(&self, path: &str) -> Result<Vec<String>, HostError> {
        let real = self.real_path(path)?;
        let entries = std::fs::read_dir(real).map_err(|e| HostError::from_io(path, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| HostError::from_io(path, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// The target of a symlink, as written in the link.
    pub fn read_link(&self, path: &str) -> Result<String, HostError> {
        let (parent, name) = split_parent(path);
        let mut real = self.real_path(&parent)?;
        real.push(name);
        std::fs::read_link(real)
            .map(|p| p.display().to_string())
            .map_err(|e| HostError::from_io(path, e))
    }
}

/// Joins a directory and a name into a host path.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn split_parent(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => ("/".into(), trimmed[1..].into()),
        Some(i) => (trimmed[..i].into(), trimmed[i + 1..].into()),
        None => ("/".into(), trimmed.into()),
    }
}

/// Normal components of `path` in reverse order (so that `pop` yields them in order);
/// `.` and the root are dropped, `..` kept for the resolver.
fn components_reversed(path: &Path) -> Vec<String> {
    let mut parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    parts.reverse();
    parts
}

fn normalise(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for part in components_reversed(Path::new(path)).into_iter().rev() {
        if part == ".." {
            out.pop();
        } else {
            out.push(part);
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::create_dir_all(base.join("run")).unwrap();
        std::fs::create_dir_all(base.join("var")).unwrap();
        std::fs::write(base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(base.join("run/reboot-required"), "").unwrap();
        // Absolute links inside an image point into the image.
        symlink("/run", base.join("var/run")).unwrap();
        symlink("../etc/passwd", base.join("var/rel")).unwrap();
        symlink("/../../../../etc/passwd", base.join("var/escape")).unwrap();
        symlink("/var/loop2", base.join("var/loop1")).unwrap();
        symlink("/var/loop1", base.join("var/loop2")).unwrap();
        let root = HostRoot::new(base).unwrap();
        (dir, root)
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let (_dir, root) = tree();
        assert!(!root.is_live());
        assert!(root.exists("/var/run/reboot-required"));
        assert_eq!(root.canonical("/var/run/reboot-required").unwrap(), "/run/reboot-required");
        assert_eq!(root.canonical("/var/rel").unwrap(), "/etc/passwd");
        // `..` above the root stays at the root, as in a chroot.
        assert_eq!(root.canonical("/var/escape").unwrap(), "/etc/passwd");
        assert_eq!(
            root.read_to_string("/var/escape").unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );
    }

    #[test]
    fn symlink_loops_are_errors_not_hangs() {
        let (_dir, root) = tree();
        assert!(matches!(
            root.read_to_string("/var/loop1"),
            Err(HostError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn missing_files_are_not_found() {
        let (_dir, root) = tree();
        let err = root.read_to_string("/etc/shadow").unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "/etc/shadow: not found");
    }

    #[test]
    fn reads_are_bounded() {
        let (dir, root) = tree();
        std::fs::write(dir.path().join("etc/big"), vec![b'x'; 2048]).unwrap();
        assert!(matches!(
            root.read_bytes("/etc/big", 1024),
            Err(HostError::TooLarge { limit: 1024, .. })
        ));
        assert_eq!(root.read_bytes("/etc/big", 2048).unwrap().len(), 2048);
        assert_eq!(root.read_prefix("/etc/big", 6).unwrap(), b"xxxxxx");
    }

    #[test]
    fn directories_and_fifos_are_not_read_as_files() {
        let (dir, root) = tree();
        assert!(matches!(root.read_to_string("/etc"), Err(HostError::NotAFile { .. })));
        let fifo = dir.path().join("etc/fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        assert!(matches!(
            root.read_to_string("/etc/fifo"),
            Err(HostError::NotAFile { .. })
        ));
    }

    #[test]
    fn read_dir_lists_sorted_names() {
        let (_dir, root) = tree();
        assert_eq!(
            root.read_dir("/var").unwrap(),
            ["escape", "loop1", "loop2", "rel", "run"]
        );
        assert_eq!(root.read_link("/var/run").unwrap(), "/run");
    }

    #[test]
    fn the_real_root_is_live() {
        let root = HostRoot::new("/").unwrap();
        assert!(root.is_live());
        assert_eq!(root.real_path("/etc/hostname").unwrap(), PathBuf::from("/etc/hostname"));
    }
}
