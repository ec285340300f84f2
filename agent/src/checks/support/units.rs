//! Whether a service is enabled, read offline from the files `systemctl enable` and
//! `update-rc.d` leave behind, so that the answer holds for a mounted image as for a host
//! whose PID 1 is not systemd.
//!
//! - enabled: a symlink named after the unit in a `*.wants/` or `*.requires/` directory under
//!   `/etc/systemd/system`, `/run/systemd/system` or the vendor unit directories (static
//!   enablement), or an `S??name` link in `/etc/rc[2-5].d` (SysV init);
//! - masked: the unit's name in `/etc/systemd/system` or `/run/systemd/system` points to
//!   `/dev/null` (masking wins over every other state, as in systemd);
//! - installed: a unit file or an init script with that name exists.

use std::collections::{BTreeMap, BTreeSet};

use crate::hostroot::{HostRoot, join};

/// Directories holding unit files, most specific first.
const UNIT_DIRS: [&str; 6] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/etc/init.d",
];

const RC_DIRS: [&str; 4] = ["/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d"];

/// What the unit files say about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitState {
    /// Started at boot; `via` is the link that enables it.
    Enabled { via: String },
    /// Linked to `/dev/null`: cannot be started.
    Masked { path: String },
    /// A unit file or init script exists but nothing starts it at boot.
    Disabled { unit_file: String },
    /// No unit file, no init script.
    Absent,
}

impl UnitState {
    pub fn is_enabled(&self) -> bool {
        matches!(self, UnitState::Enabled { .. })
    }

    pub fn is_installed(&self) -> bool {
        !matches!(self, UnitState::Absent)
    }

    /// A short word for reports.
    pub fn word(&self) -> &'static str {
        match self {
            UnitState::Enabled { .. } => "enabled",
            UnitState::Masked { .. } => "masked",
            UnitState::Disabled { .. } => "disabled",
            UnitState::Absent => "absent",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            UnitState::Masked { .. } => 3,
            UnitState::Enabled { .. } => 2,
            UnitState::Disabled { .. } => 1,
            UnitState::Absent => 0,
        }
    }
}

/// The enablement links and unit files of a root, read once.
#[derive(Debug, Default)]
pub struct UnitIndex {
    /// Unit name (`chrony.service`) or script name → the first link that enables it.
    enabled: BTreeMap<String, String>,
    masked: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
    /// True when the root has systemd unit directories.
    pub systemd: bool,
}

impl UnitIndex {
    /// Reads the unit directories. Unreadable directories are skipped: the index then knows
    /// less, and callers say "disabled" only where a unit file was seen.
    pub fn load(root: &HostRoot) -> Self {
        let mut index = UnitIndex::default();
        for dir in UNIT_DIRS {
            let Ok(names) = root.read_dir(dir) else {
                continue;
            };
            if dir != "/etc/init.d" {
                index.systemd = true;
            }
            for name in names {
                let path = join(dir, &name);
                if name.ends_with(".wants") || name.ends_with(".requires") {
                    if let Ok(links) = root.read_dir(&path) {
                        for link in links {
                            index
                                .enabled
                                .entry(link.clone())
                                .or_insert_with(|| join(&path, &link));
                        }
                    }
                    continue;
                }
                if (dir == "/etc/systemd/system" || dir == "/run/systemd/system")
                    && root.read_link(&path).is_ok_and(|t| t == "/dev/null")
                {
                    index.masked.entry(name.clone()).or_insert(path.clone());
                    continue;
                }
                index.files.entry(name).or_insert(path);
            }
        }
        for dir in RC_DIRS {
            let Ok(names) = root.read_dir(dir) else {
                continue;
            };
            for name in names {
                // `S01chrony`: start link with a two-digit order.
                if let Some(rest) = name.strip_prefix('S')
                    && rest.len() > 2
                    && rest.as_bytes()[..2].iter().all(u8::is_ascii_digit)
                {
                    let script = &rest[2..];
                    index
                        .enabled
                        .entry(script.to_string())
                        .or_insert_with(|| join(dir, &name));
                }
            }
        }
        index
    }

    /// The state of one unit or init script name (`chrony.service`, `chrony`).
    pub fn state(&self, name: &str) -> UnitState {
        if let Some(path) = self.masked.get(name) {
            return UnitState::Masked { path: path.clone() };
        }
        if let Some(via) = self.enabled.get(name) {
            return UnitState::Enabled { via: via.clone() };
        }
        match self.files.get(name) {
            Some(f) => UnitState::Disabled {
                unit_file: f.clone(),
            },
            None => UnitState::Absent,
        }
    }

    /// The strongest state among several names of one service (aliases, the SysV script):
    /// masked, then enabled, then installed.
    pub fn state_any(&self, names: &[&str]) -> UnitState {
        let mut best = UnitState::Absent;
        for name in names {
            let s = self.state(name);
            if s.rank() > best.rank() {
                best = s;
            }
        }
        best
    }

    /// Every enabled name, for diagnostics.
    pub fn enabled_names(&self) -> BTreeSet<&str> {
        self.enabled.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn wants_links_masks_files_and_rc_links() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for d in [
            "etc/systemd/system/multi-user.target.wants",
            "etc/systemd/system/sysinit.target.wants",
            "lib/systemd/system",
            "etc/rc2.d",
            "etc/init.d",
        ] {
            std::fs::create_dir_all(b.join(d)).unwrap();
        }
        for unit in [
            "chrony.service",
            "auditd.service",
            "rsyslog.service",
            "ntp.service",
        ] {
            std::fs::write(b.join("lib/systemd/system").join(unit), "[Unit]\n").unwrap();
        }
        symlink(
            "/lib/systemd/system/chrony.service",
            b.join("etc/systemd/system/multi-user.target.wants/chrony.service"),
        )
        .unwrap();
        symlink(
            "/lib/systemd/system/chrony.service",
            b.join("etc/systemd/system/chronyd.service"),
        )
        .unwrap();
        symlink("/dev/null", b.join("etc/systemd/system/rsyslog.service")).unwrap();
        symlink(
            "/lib/systemd/system/rsyslog.service",
            b.join("etc/systemd/system/multi-user.target.wants/rsyslog.service"),
        )
        .unwrap();
        std::fs::write(b.join("etc/init.d/ntp"), "#!/bin/sh\n").unwrap();
        symlink("../init.d/ntp", b.join("etc/rc2.d/S01ntp")).unwrap();
        let root = HostRoot::new(b).unwrap();
        let index = UnitIndex::load(&root);
        assert!(index.systemd);
        assert_eq!(
            index.state("chrony.service"),
            UnitState::Enabled {
                via: "/etc/systemd/system/multi-user.target.wants/chrony.service".into()
            }
        );
        // An alias is a file in /etc/systemd/system, not an enablement by itself.
        assert_eq!(index.state("chronyd.service").word(), "disabled");
        assert_eq!(
            index
                .state_any(&["chronyd.service", "chrony.service"])
                .word(),
            "enabled"
        );
        assert_eq!(index.state("rsyslog.service").word(), "masked");
        assert_eq!(index.state("auditd.service").word(), "disabled");
        assert_eq!(index.state("ntp").word(), "enabled");
        assert_eq!(index.state("ntp.service").word(), "disabled");
        assert_eq!(index.state("nothing.service"), UnitState::Absent);
    }
}
