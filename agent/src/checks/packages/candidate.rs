//! apt's candidate selection (apt 2.6 `pkgPolicy`), for installed packages only: index
//! priorities (500, 100 for the status file and ButAutomaticUpgrades, 1 for NotAutomatic),
//! default pins (`APT::Default-Release` at 990, then `Package: *` records, first match per
//! index), specific pins (first matching record per version), the "no downgrade below 1000"
//! rule, and apt's version list (equal version strings with different contents stay distinct
//! versions, which is how `apt list --upgradable` can show `1.0 [upgradable from: 1.0]`).
//!
//! Phased updates: apt 2.6 does not let phasing change the candidate (`APT::Get::Phase-Policy`
//! is off by default); it only keeps phased updates back during `upgrade`. They are therefore
//! pending here too, as in `apt list --upgradable`, with their percentage reported.

use std::cmp::Ordering;

use super::debversion;
use super::preferences::{FileFacts, NEVER_PIN, PinRecord, VersionMatch};

/// One stanza for an installed package found in an index, in apt's parse order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Index into the policy's files.
    pub file: usize,
    pub version: String,
    pub hash: u32,
    pub size: u64,
    pub multi_arch: u8,
    pub source: String,
    /// Empty when it is `version`.
    pub source_version: String,
    pub phased: u8,
}

/// An installed package as apt's status file shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    /// The architecture apt files it under (`all` mapped to native).
    pub arch: String,
    pub version: String,
    pub hash: u32,
    pub multi_arch: u8,
    pub source: String,
}

/// One version in apt's per-package version list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub version: String,
    hash: u32,
    size: u64,
    multi_arch: u8,
    pub source: String,
    /// The source version (`Source: name (version)`), or the version itself.
    pub source_version: String,
    pub phased: u8,
    /// Indexes it is listed in.
    pub files: Vec<usize>,
}

/// The outcome for one installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub installed: String,
    /// The candidate version, when there is one.
    pub candidate: Option<Version>,
    pub candidate_priority: i32,
    /// apt's `Upgradable()`: the candidate sits above the installed version in the list.
    pub upgradable: bool,
    /// A version between the candidate and the installed one comes from a `*-security`
    /// archive (apt never holds such an update back for phasing).
    pub security_between: bool,
}

/// Index priorities and pins: apt's `pkgPolicy` for one cache.
#[derive(Debug, Clone)]
pub struct Policy {
    pub files: Vec<FileFacts>,
    /// Which entry of `files` is dpkg's status file.
    pub status_file: usize,
    pub file_priority: Vec<i32>,
    specific: Vec<PinRecord>,
    native_arch: String,
}

/// Flags of an index that set its default priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexFlags {
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
}

/// A default (`Package: *` or `APT::Default-Release`) pin.
#[derive(Debug, Clone)]
pub struct DefaultPin {
    pub matcher: VersionMatch,
    pub priority: i32,
}

impl Policy {
    /// Builds the policy: `flags[i]` belongs to `files[i]`; `defaults` in apt's order
    /// (Default-Release first, then preference records as read); `specific` are the
    /// per-package records in file order.
    pub fn new(
        files: Vec<FileFacts>,
        status_file: usize,
        flags: &[IndexFlags],
        defaults: &[DefaultPin],
        specific: Vec<PinRecord>,
        native_arch: &str,
    ) -> Policy {
        let mut prio: Vec<i32> = (0..files.len())
            .map(|i| {
                let f = flags.get(i).copied().unwrap_or_default();
                if i == status_file || f.but_automatic_upgrades {
                    100
                } else if f.not_automatic {
                    1
                } else {
                    500
                }
            })
            .collect();
        let mut fixed = vec![false; files.len()];
        for pin in defaults {
            for (i, f) in files.iter().enumerate() {
                if (!fixed[i] || pin.priority == NEVER_PIN)
                    && prio[i] != NEVER_PIN
                    && pin.matcher.file_match(f)
                {
                    prio[i] = pin.priority;
                    fixed[i] = true;
                }
            }
        }
        Policy {
            files,
            status_file,
            file_priority: prio,
            specific,
            native_arch: native_arch.to_string(),
        }
    }

    /// apt's version list for a package: `observed` in parse order, then the status entry.
    /// Returns the list and the position of the installed version.
    pub fn version_list(
        &self,
        installed: &Installed,
        observed: &[Observed],
    ) -> (Vec<Version>, usize) {
        let mut list: Vec<Version> = Vec::new();
        for o in observed {
            insert_version(
                &mut list,
                Version {
                    version: o.version.clone(),
                    hash: o.hash,
                    size: o.size,
                    multi_arch: o.multi_arch,
                    source: o.source.clone(),
                    source_version: if o.source_version.is_empty() {
                        o.version.clone()
                    } else {
                        o.source_version.clone()
                    },
                    phased: o.phased,
                    files: vec![o.file],
                },
            );
        }
        let current = insert_version(
            &mut list,
            Version {
                version: installed.version.clone(),
                hash: installed.hash,
                size: 0,
                multi_arch: installed.multi_arch,
                source: installed.source.clone(),
                source_version: installed.version.clone(),
                phased: 100,
                files: vec![self.status_file],
            },
        );
        (list, current)
    }

    /// The first specific pin that applies to this version (apt copies each pin into the
    /// versions it matches, never overwriting an earlier one).
    fn version_pin(&self, installed: &Installed, ver: &Version) -> Option<i32> {
        let facts: Vec<&FileFacts> = ver
            .files
            .iter()
            .filter_map(|&f| self.files.get(f))
            .collect();
        for pin in &self.specific {
            let Some(specs) = &pin.packages else {
                continue;
            };
            let applies = specs.iter().any(|s| {
                s.applies(
                    &installed.name,
                    &installed.arch,
                    &ver.source,
                    &self.native_arch,
                )
            });
            if applies && pin.matcher.version_matches(&ver.version, &facts) {
                return Some(pin.priority);
            }
        }
        None
    }

    /// apt's `GetPriority(Ver)`.
    pub fn version_priority(&self, installed: &Installed, ver: &Version, is_current: bool) -> i32 {
        if let Some(pin) = self.version_pin(installed, ver) {
            if pin == NEVER_PIN {
                return NEVER_PIN;
            }
            if ver
                .files
                .iter()
                .any(|&f| self.file_priority.get(f).copied().unwrap_or(0) != NEVER_PIN)
            {
                return pin;
            }
        }
        let mut priority: Option<i32> = None;
        for &f in &ver.files {
            let p = if f == self.status_file && !is_current {
                -1
            } else {
                self.file_priority.get(f).copied().unwrap_or(0)
            };
            priority = Some(priority.map_or(p, |q| q.max(p)));
        }
        priority.unwrap_or(0)
    }

    /// apt's `GetCandidateVer` and `Upgradable()` for one installed package.
    pub fn decide(&self, installed: &Installed, observed: &[Observed]) -> Decision {
        let (list, current) = self.version_list(installed, observed);
        let mut cand: Option<usize> = None;
        let mut cand_priority = -1;
        for (i, ver) in list.iter().enumerate() {
            let priority = self.version_priority(installed, ver, i == current);
            if priority == 0 || priority <= cand_priority {
                continue;
            }
            if priority < 1000
                && debversion::compare(&ver.version, &list[current].version) == Ordering::Less
            {
                continue;
            }
            cand_priority = priority;
            cand = Some(i);
        }
        let security_between = cand.is_some_and(|c| {
            list.iter()
                .take(current)
                .skip(c + 1)
                .flat_map(|v| v.files.iter())
                .filter_map(|&f| self.files.get(f))
                .any(|f| f.suite.as_deref().is_some_and(|s| s.ends_with("-security")))
        });
        Decision {
            installed: installed.version.clone(),
            security_between,
            upgradable: cand.is_some_and(|c| c < current),
            candidate: cand.and_then(|c| list.get(c).cloned()),
            candidate_priority: cand_priority,
        }
    }
}

/// apt's `MergeListVersion`: merge into an equal version with the same contents, otherwise
/// insert before the first lower version (or at the end). Returns the version's position.
fn insert_version(list: &mut Vec<Version>, new: Version) -> usize {
    let mut at = list.len();
    for (i, v) in list.iter_mut().enumerate() {
        match debversion::compare(&new.version, &v.version) {
            Ordering::Greater => {
                at = i;
                break;
            }
            Ordering::Equal => {
                let same_size = new.size == 0 || v.size == 0 || new.size == v.size;
                if v.hash == new.hash && same_size && v.multi_arch == new.multi_arch {
                    for f in new.files {
                        if !v.files.contains(&f) {
                            v.files.push(f);
                        }
                    }
                    return i;
                }
            }
            Ordering::Less => {}
        }
    }
    list.insert(at, new);
    at
}

/// apt's check that `APT::Default-Release` names something known: an archive, codename or
/// version of some index (glob/regex allowed), a `x=…` spec, or `now`.
pub fn default_release_known(spec: &str, files: &[FileFacts]) -> bool {
    use super::pattern::Expr;
    if spec.len() > 2 && spec.as_bytes()[1] == b'=' {
        return true;
    }
    let e = Expr::new(spec);
    files.iter().any(|f| {
        f.has_release
            && (e.matches(f.suite.as_deref())
                || e.matches(f.codename.as_deref())
                || e.matches(f.version.as_deref()))
    }) || e.matches(Some("now"))
}

#[cfg(test)]
mod tests {
    use super::super::preferences::{PinType, parse_preferences};
    use super::*;

    fn rel(suite: &str, origin: &str, label: &str) -> FileFacts {
        FileFacts {
            has_release: true,
            suite: Some(suite.into()),
            codename: Some(suite.into()),
            version: None,
            origin: Some(origin.into()),
            label: Some(label.into()),
            site: Some("deb.debian.org".into()),
            component: Some("main".into()),
            arch: Some("amd64".into()),
        }
    }

    fn status() -> FileFacts {
        FileFacts {
            component: Some("now".into()),
            ..FileFacts::default()
        }
    }

    fn obs(file: usize, version: &str) -> Observed {
        Observed {
            file,
            version: version.into(),
            hash: 7,
            size: 100,
            multi_arch: 0,
            source: "pkg".into(),
            source_version: String::new(),
            phased: 100,
        }
    }

    fn inst(version: &str) -> Installed {
        Installed {
            name: "pkg".into(),
            arch: "amd64".into(),
            version: version.into(),
            hash: 7,
            multi_arch: 0,
            source: "pkg".into(),
        }
    }

    /// files: 0 main, 1 security, 2 backports (NotAutomatic+ButAutomaticUpgrades), 3 status
    fn policy(prefs: &str, default_release: Option<&str>) -> Policy {
        let files = vec![
            rel("bookworm", "Debian", "Debian"),
            rel("bookworm-security", "Debian", "Debian-Security"),
            rel("bookworm-backports", "Debian Backports", "Debian Backports"),
            status(),
        ];
        let flags = [
            IndexFlags::default(),
            IndexFlags::default(),
            IndexFlags {
                not_automatic: true,
                but_automatic_upgrades: true,
            },
            IndexFlags::default(),
        ];
        let p = parse_preferences(prefs, "prefs").unwrap();
        let mut defaults = Vec::new();
        if let Some(d) = default_release {
            defaults.push(DefaultPin {
                matcher: VersionMatch::new(d, PinType::Release),
                priority: 990,
            });
        }
        let mut specific = Vec::new();
        for r in p.records {
            if r.packages.is_none() {
                defaults.push(DefaultPin {
                    matcher: r.matcher,
                    priority: r.priority,
                });
            } else {
                specific.push(r);
            }
        }
        Policy::new(files, 3, &flags, &defaults, specific, "amd64")
    }

    fn cand(p: &Policy, installed: &str, observed: &[Observed]) -> (Option<String>, bool) {
        let d = p.decide(&inst(installed), observed);
        (d.candidate.map(|v| v.version), d.upgradable)
    }

    #[test]
    fn default_priorities() {
        let p = policy("", None);
        assert_eq!(p.file_priority, [500, 500, 100, 100]);
        // newest from a normal archive wins
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.1"), obs(1, "1.2")]),
            (Some("1.2".into()), true)
        );
        // backports (100) do not beat the installed version (100, listed first wins ties)
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.0"), obs(2, "2.0")]),
            (Some("1.0".into()), false)
        );
        // but an installed backport follows backports upgrades
        assert_eq!(
            cand(
                &p,
                "2.0~bpo12+1",
                &[obs(2, "2.0~bpo12+1"), obs(2, "2.1~bpo12+1"), obs(0, "1.0")]
            ),
            (Some("2.1~bpo12+1".into()), true)
        );
        // nothing newer: the installed version is the candidate
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "0.9")]),
            (Some("1.0".into()), false)
        );
        // not in any list at all
        assert_eq!(cand(&p, "1.0", &[]), (Some("1.0".into()), false));
    }

    #[test]
    fn specific_pins() {
        // the highest priority wins, whatever the version
        let p = policy("Package: pkg\nPin: version 1.1*\nPin-Priority: 400\n", None);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.1"), obs(1, "1.2")]),
            (Some("1.2".into()), true)
        );
        let p = policy("Package: pkg\nPin: version 1.1*\nPin-Priority: 600\n", None);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.1"), obs(1, "1.2")]),
            (Some("1.1".into()), true)
        );
        // a negative pin hides a version
        let p = policy(
            "Package: pkg\nPin: release l=Debian-Security\nPin-Priority: -1\n",
            None,
        );
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.1"), obs(1, "1.2")]),
            (Some("1.1".into()), true)
        );
        // pinning the installed version holds it
        let p = policy("Package: pkg\nPin: version 1.0\nPin-Priority: 1001\n", None);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.0"), obs(1, "1.2")]),
            (Some("1.0".into()), false)
        );
        // >= 1000 allows a downgrade: the candidate sits below the installed one, not upgradable
        let p = policy("Package: pkg\nPin: version 0.9\nPin-Priority: 1001\n", None);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "0.9")]),
            (Some("0.9".into()), false)
        );
        // below 1000 no downgrade
        let p = policy("Package: pkg\nPin: version 0.9\nPin-Priority: 999\n", None);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "0.9")]),
            (Some("1.0".into()), false)
        );
        // first matching record wins
        let p = policy(
            "Package: pkg\nPin: release a=bookworm-security\nPin-Priority: -10\n\nPackage: pkg\nPin: release a=bookworm-security\nPin-Priority: 700\n",
            None,
        );
        assert_eq!(
            cand(&p, "1.0", &[obs(1, "1.2")]),
            (Some("1.0".into()), false)
        );
        // glob and source pins
        let p = policy(
            "Package: p*\nPin: release a=bookworm-backports\nPin-Priority: 500\n",
            None,
        );
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.0"), obs(2, "2.0")]),
            (Some("2.0".into()), true)
        );
        let p = policy(
            "Package: src:pkg\nPin: release a=bookworm-backports\nPin-Priority: 500\n",
            None,
        );
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.0"), obs(2, "2.0")]),
            (Some("2.0".into()), true)
        );
        let p = policy(
            "Package: other\nPin: release a=bookworm-backports\nPin-Priority: 500\n",
            None,
        );
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.0"), obs(2, "2.0")]),
            (Some("1.0".into()), false)
        );
    }

    #[test]
    fn default_pins_and_default_release() {
        let p = policy(
            "Package: *\nPin: release a=bookworm-backports\nPin-Priority: 500\n",
            None,
        );
        assert_eq!(p.file_priority, [500, 500, 500, 100]);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.0"), obs(2, "2.0")]),
            (Some("2.0".into()), true)
        );
        let p = policy(
            "Package: *\nPin: release o=Debian\nPin-Priority: never\n",
            None,
        );
        assert_eq!(p.file_priority, [NEVER_PIN, NEVER_PIN, 100, 100]);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.1")]),
            (Some("1.0".into()), false)
        );
        // Default-Release is the first default and so beats later generic pins on its files
        let p = policy(
            "Package: *\nPin: release a=bookworm\nPin-Priority: 100\n",
            Some("bookworm"),
        );
        assert_eq!(p.file_priority, [990, 500, 100, 100]);
        let p = policy("", Some("a=bookworm-security"));
        assert_eq!(p.file_priority, [500, 990, 100, 100]);
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.3"), obs(1, "1.2")]),
            (Some("1.2".into()), true)
        );
    }

    #[test]
    fn equal_versions_with_different_contents_are_upgradable() {
        let p = policy("", None);
        let mut rebuilt = obs(0, "1.0");
        rebuilt.hash = 8;
        assert_eq!(cand(&p, "1.0", &[rebuilt]), (Some("1.0".into()), true));
        // same contents merge into the installed version
        assert_eq!(
            cand(&p, "1.0", &[obs(0, "1.0")]),
            (Some("1.0".into()), false)
        );
        // a different download size alone also makes a distinct version in the lists
        let mut a = obs(0, "1.1");
        a.size = 5;
        let mut b = obs(1, "1.1");
        b.size = 6;
        let (list, cur) = p.version_list(&inst("1.0"), &[a, b]);
        assert_eq!(list.len(), 3);
        assert_eq!(cur, 2);
    }

    #[test]
    fn version_list_order_and_merging() {
        let p = policy("", None);
        let (list, cur) = p.version_list(
            &inst("1.5"),
            &[obs(0, "1.0"), obs(1, "2.0"), obs(0, "1.5"), obs(1, "1.0")],
        );
        let v: Vec<&str> = list.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(v, ["2.0", "1.5", "1.0"]);
        assert_eq!(cur, 1);
        assert_eq!(list[1].files, [0, 3]);
        assert_eq!(list[2].files, [0, 1]);
    }

    #[test]
    fn default_release_validation() {
        let files = vec![rel("bookworm", "Debian", "Debian"), status()];
        assert!(default_release_known("bookworm", &files));
        assert!(default_release_known("book*", &files));
        assert!(default_release_known("a=anything", &files));
        assert!(default_release_known("now", &files));
        assert!(!default_release_known("trixie", &files));
    }
}
