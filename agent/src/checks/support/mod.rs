//! Helpers the host-configuration checks share: path globs through the root, systemd unit
//! and drop-in conventions, the process table, installed package names, small file formats.

pub mod glob;
pub mod ini;
pub mod pkgs;
pub mod procs;
pub mod units;

#[cfg(test)]
pub mod testing;

use crate::hostroot::HostRoot;

/// Largest configuration file read by these checks; anything bigger is refused as junk.
pub const CONFIG_LIMIT: u64 = 4 * 1024 * 1024;

/// Reads a small text file: `Ok(None)` when it does not exist, an error when it exists but
/// cannot be read. Invalid UTF-8 is replaced rather than refused.
pub fn read_optional(
    root: &HostRoot,
    path: &str,
) -> Result<Option<String>, crate::hostroot::HostError> {
    match root.read_bytes(path, CONFIG_LIMIT) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Names in a directory ending with `suffix` (any when empty), skipping hidden files and
/// editor leftovers; an absent directory is empty.
pub fn list_dir(
    root: &HostRoot,
    dir: &str,
    suffix: &str,
) -> Result<Vec<String>, crate::hostroot::HostError> {
    let names = match root.read_dir(dir) {
        Ok(names) => names,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(crate::hostroot::HostError::Io { source, .. }) if source.raw_os_error() == Some(20) => {
            // ENOTDIR: a file where a directory is expected holds no entries.
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    Ok(names
        .into_iter()
        .filter(|n| !n.starts_with('.') && !n.ends_with('~') && n.ends_with(suffix))
        .filter(|n| {
            !(n.ends_with(".dpkg-old")
                || n.ends_with(".dpkg-dist")
                || n.ends_with(".dpkg-new")
                || n.ends_with(".rpmsave")
                || n.ends_with(".rpmnew")
                || n.ends_with(".swp"))
        })
        .collect())
}

/// Days (fractional) from `then` to `now`; negative when `then` is in the future.
pub fn age_days(now: chrono::DateTime<chrono::Utc>, then: chrono::DateTime<chrono::Utc>) -> f64 {
    (now - then).num_seconds() as f64 / 86_400.0
}

/// Rounds to one decimal for reports.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Modification time of a host file as a UTC time.
pub fn mtime(
    root: &HostRoot,
    path: &str,
) -> Result<chrono::DateTime<chrono::Utc>, crate::hostroot::HostError> {
    let meta = root.metadata(path)?;
    let modified = meta
        .modified()
        .map_err(|source| crate::hostroot::HostError::Io {
            path: path.to_string(),
            source,
        })?;
    Ok(chrono::DateTime::<chrono::Utc>::from(modified))
}

/// The files systemd reads for one of its own configuration files (`journald.conf`,
/// `timesyncd.conf`), in the order it applies them: the main file (the first that exists
/// of `/etc/systemd`, `/run/systemd`, `/usr/local/lib/systemd`, `/usr/lib/systemd`), then the
/// `*.conf` drop-ins of `<name>.d/` in those directories, one per file name (the earlier
/// directory wins), sorted by file name. A drop-in linked to `/dev/null` masks its name.
pub fn systemd_config_files(
    root: &HostRoot,
    name: &str,
) -> Result<Vec<String>, crate::hostroot::HostError> {
    const DIRS: [&str; 4] = [
        "/etc/systemd",
        "/run/systemd",
        "/usr/local/lib/systemd",
        "/usr/lib/systemd",
    ];
    let mut files = Vec::new();
    for dir in DIRS {
        let path = crate::hostroot::join(dir, name);
        if root.exists(&path) {
            files.push(path);
            break;
        }
    }
    let mut dropins: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for dir in DIRS {
        let d = format!("{dir}/{name}.d");
        for file in list_dir(root, &d, ".conf")? {
            dropins
                .entry(file.clone())
                .or_insert_with(|| crate::hostroot::join(&d, &file));
        }
    }
    for path in dropins.into_values() {
        if root.read_link(&path).is_ok_and(|t| t == "/dev/null") {
            continue;
        }
        files.push(path);
    }
    Ok(files)
}

/// True when the root looks like a container's filesystem (Docker, Podman), where the clock
/// and the kernel belong to the host.
pub fn looks_like_container(root: &HostRoot) -> bool {
    root.exists("/.dockerenv") || root.exists("/run/.containerenv")
}

/// True when the root holds an installed operating system (an os-release file or a package
/// database): absence of something configured means a finding there, while an empty or
/// data-only root has nothing to judge.
pub fn looks_like_os(root: &HostRoot) -> bool {
    [
        "/etc/os-release",
        "/usr/lib/os-release",
        "/var/lib/dpkg/status",
        "/var/lib/rpm",
        "/usr/lib/sysimage/rpm",
    ]
    .iter()
    .any(|p| root.exists(p))
}
