//! Installed package names and versions from the root's package database (dpkg, or rpm's
//! sqlite database), for checks that ask "is X installed": a thin view over the packages
//! check's own readers so that both agree on what is installed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::SystemTime;

use crate::checks::packages::{self, Database};
use crate::hostroot::HostRoot;

/// The files whose change means a different answer: dpkg's status and rpm's databases.
const DATABASE_FILES: [&str; 5] = [
    "/var/lib/dpkg/status",
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages",
    "/usr/lib/sysimage/rpm/Packages",
];

/// Identity of the database files of a root: path, size and modification time of each.
type Fingerprint = (PathBuf, Vec<Option<(u64, SystemTime)>>);

type Cached = Option<(Fingerprint, Arc<Installed>)>;

/// The last answer, reused while the database files are unchanged: several checks ask in
/// one round, and parsing a large status file costs milliseconds each time.
static CACHE: LazyLock<Mutex<Cached>> = LazyLock::new(|| Mutex::new(None));

fn fingerprint(root: &HostRoot) -> Fingerprint {
    let stats = DATABASE_FILES
        .iter()
        .map(|p| {
            root.metadata(p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)))
        })
        .collect();
    (root.prefix().to_path_buf(), stats)
}

/// Which package manager a version string belongs to (their orderings differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Dpkg,
    Rpm,
}

/// What the package database says, or why it cannot say.
#[derive(Debug, Clone)]
pub enum Installed {
    /// Installed package name → version (`[epoch:]version[-revision]`).
    Known {
        flavour: Flavour,
        source: String,
        packages: BTreeMap<String, String>,
    },
    /// A database exists but cannot be read (permissions, rpm formats that need rpm itself).
    Unreadable { source: String, reason: String },
    /// No package database under this root.
    None,
}

impl Installed {
    /// What the root's package database says; reused from the previous call while the
    /// database files keep their size and modification time.
    pub fn load(root: &HostRoot) -> Arc<Installed> {
        let print = fingerprint(root);
        {
            let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((p, installed)) = cache.as_ref()
                && *p == print
            {
                return installed.clone();
            }
        }
        let installed = Arc::new(Self::read(root));
        *CACHE.lock().unwrap_or_else(PoisonError::into_inner) = Some((print, installed.clone()));
        installed
    }

    /// Reads the database without the cache.
    pub fn read(root: &HostRoot) -> Installed {
        match packages::detect(root) {
            Database::Dpkg(status) => Installed::Known {
                flavour: Flavour::Dpkg,
                source: "/var/lib/dpkg/status".into(),
                packages: status
                    .packages
                    .iter()
                    .filter(|p| p.is_installed())
                    .map(|p| (p.name.clone(), p.version.clone()))
                    .collect(),
            },
            Database::Rpm { packages, path, .. } => Installed::Known {
                flavour: Flavour::Rpm,
                source: path,
                packages: packages.iter().map(|p| (p.name.clone(), p.evr())).collect(),
            },
            Database::Unreadable { path, reason, .. } => Installed::Unreadable {
                source: path,
                reason,
            },
            Database::None => Installed::None,
        }
    }

    /// The installed version of a package, when the database is known.
    pub fn version(&self, name: &str) -> Option<&str> {
        match self {
            Installed::Known { packages, .. } => packages.get(name).map(String::as_str),
            _ => None,
        }
    }

    /// The database file, when there is one.
    pub fn source(&self) -> Option<&str> {
        match self {
            Installed::Known { source, .. } | Installed::Unreadable { source, .. } => Some(source),
            Installed::None => None,
        }
    }

    /// True when absence from the database means "not installed".
    pub fn is_known(&self) -> bool {
        matches!(self, Installed::Known { .. })
    }

    /// Compares two versions with the database's own ordering.
    pub fn compare(&self, a: &str, b: &str) -> std::cmp::Ordering {
        match self {
            Installed::Known {
                flavour: Flavour::Rpm,
                ..
            } => compare_rpm_evr(a, b),
            _ => packages::debversion::compare(a, b),
        }
    }
}

/// rpm's ordering of `[epoch:]version[-release]` strings: epoch numerically (missing is 0),
/// then version, then release with `rpmvercmp`; a release is compared only when both have one.
pub fn compare_rpm_evr(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (u64, &str, Option<&str>) {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, s),
        };
        match rest.rsplit_once('-') {
            Some((v, r)) => (epoch, v, Some(r)),
            None => (epoch, rest, None),
        }
    }
    let (ea, va, ra) = split(a);
    let (eb, vb, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| packages::rpm::rpmvercmp(va, vb))
        .then_with(|| match (ra, rb) {
            (Some(x), Some(y)) => packages::rpm::rpmvercmp(x, y),
            _ => std::cmp::Ordering::Equal,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn rpm_epochs_win_and_missing_releases_match_any() {
        assert_eq!(compare_rpm_evr("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(compare_rpm_evr("2.0-1.el9", "2.0-2.el9"), Ordering::Less);
        assert_eq!(compare_rpm_evr("2.0", "2.0-7"), Ordering::Equal);
        assert_eq!(
            compare_rpm_evr("8.7p1-38.el9", "8.7p1-34.el9"),
            Ordering::Greater
        );
    }
}
