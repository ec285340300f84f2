//! Patch level (A.8.8): installed packages (dpkg; rpm where present), updates pending computed
//! offline from the package lists already on disk with apt's candidate rules, which of them come
//! from a security archive, the running kernel against the newest installed one, and the days
//! since the last package update.
//!
//! Pending updates are the set `apt list --upgradable` prints, computed without running apt:
//! `apt` reads the configuration, sources, Release files, preferences and lists listed in
//! [`apt`], and decides candidates in [`candidate`] exactly as apt 2.6 does. Parsed lists are
//! cached per file in the agent's cache directory ([`lists`]), so a warm run reads a few
//! megabytes instead of decompressing and scanning the lists again.

mod apt;
mod aptconf;
pub(crate) mod bdb;
mod candidate;
pub(crate) mod debversion;
pub(crate) mod dpkg;
mod history;
mod kernel;
mod lists;
mod pattern;
mod phasing;
mod preferences;
mod release;
pub(crate) mod rpm;
mod sources;
mod tagfile;

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use vigil_shared::Subject;

use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostError, HostRoot, join};

/// `[checks.packages]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// No package installed or upgraded for more than this many days is reported.
    #[serde(default = "default_max_days_since_update")]
    pub max_days_since_update: u32,
    /// Report `packages.pending_security` as failing when none of the configured apt sources
    /// is a security archive (security updates could never arrive). Turn off for hosts fed by
    /// a mirror that publishes security fixes under another suite name.
    #[serde(default = "default_require_security_source")]
    pub require_security_source: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            max_days_since_update: default_max_days_since_update(),
            require_security_source: default_require_security_source(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "5 * * * *".into()
}
fn default_max_days_since_update() -> u32 {
    30
}
fn default_require_security_source() -> bool {
    true
}

const INVENTORY: &str = "packages.inventory";
const PENDING: &str = "packages.pending_updates";
const SECURITY: &str = "packages.pending_security";
const KERNEL: &str = "packages.kernel";
const LAST_UPDATE: &str = "packages.last_update";

const OUTPUTS: &[Output] = &[
    Output {
        id: INVENTORY,
        controls: &["A.5.9", "A.8.19"],
        description: "Every installed package with its version and architecture",
    },
    Output {
        id: PENDING,
        controls: &["A.8.8", "A.8.19"],
        description: "Installed packages for which the configured archives hold a newer candidate",
    },
    Output {
        id: SECURITY,
        controls: &["A.8.8"],
        description: "Pending updates whose candidate comes from a security archive",
    },
    Output {
        id: KERNEL,
        controls: &["A.8.8"],
        description: "The running kernel is the newest installed one and no reboot is pending",
    },
    Output {
        id: LAST_UPDATE,
        controls: &["A.8.8", "A.8.32"],
        description: "Days since a package was last installed or upgraded",
    },
];

const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const DPKG_ARCH: &str = "/var/lib/dpkg/arch";
const RPM_SQLITE: [&str; 2] = [
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
];
const RPM_BDB: [&str; 2] = ["/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"];
const RPM_NDB: [&str; 2] = [
    "/var/lib/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/Packages.db",
];
const REBOOT_REQUIRED: &str = "/var/run/reboot-required";
const REBOOT_REQUIRED_PKGS: &str = "/var/run/reboot-required.pkgs";
const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
const PROC_VERSION: &str = "/proc/sys/kernel/version";
/// The status file of a large desktop is ~10 MB; anything near this is not a status file.
const STATUS_LIMIT: u64 = 512 << 20;
/// Decompressed size read from one log file.
const LOG_LIMIT: u64 = 256 << 20;

/// The patch-level check.
#[derive(Debug)]
pub struct Packages;

impl Check for Packages {
    fn name(&self) -> &'static str {
        "packages"
    }

    fn description(&self) -> &'static str {
        "installed packages, pending (security) updates, kernel and reboot state"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.packages.enabled,
            schedule: settings.packages.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        run(ctx)
    }
}

/// The package database found under the root.
pub(crate) enum Database {
    Dpkg(dpkg::Status),
    Rpm {
        packages: Vec<rpm::RpmPackage>,
        path: String,
        unreadable_headers: usize,
    },
    /// Present but not readable offline (ndb), or unreadable (permissions, damage).
    Unreadable {
        path: String,
        reason: String,
        error: bool,
    },
    None,
}

fn exists_file(root: &HostRoot, path: &str) -> Result<bool, HostError> {
    match root.metadata(path) {
        Ok(m) => Ok(m.is_file()),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn detect(root: &HostRoot) -> Database {
    match exists_file(root, DPKG_STATUS) {
        Ok(true) => {
            return match root.read_bytes(DPKG_STATUS, STATUS_LIMIT) {
                Ok(bytes) => {
                    let status = dpkg::parse_status(&String::from_utf8_lossy(&bytes));
                    // Lines but no stanza at all: junk, not a host without packages.
                    if status.packages.is_empty() && !status.bad_lines.is_empty() {
                        return Database::Unreadable {
                            path: DPKG_STATUS.into(),
                            reason: format!(
                                "{DPKG_STATUS}: not a dpkg status file ({} unreadable lines, no \
                                 package stanza)",
                                status.bad_lines.len()
                            ),
                            error: true,
                        };
                    }
                    Database::Dpkg(status)
                }
                Err(e) => Database::Unreadable {
                    path: DPKG_STATUS.into(),
                    reason: e.to_string(),
                    error: true,
                },
            };
        }
        Ok(false) => {}
        Err(e) => {
            return Database::Unreadable {
                path: DPKG_STATUS.into(),
                reason: e.to_string(),
                error: true,
            };
        }
    }
    for path in RPM_SQLITE {
        if exists_file(root, path).unwrap_or(false) {
            let real = match root.real_path(path) {
                Ok(r) => r,
                Err(e) => {
                    return Database::Unreadable {
                        path: path.into(),
                        reason: e.to_string(),
                        error: true,
                    };
                }
            };
            return match rpm::read_sqlite(&real, path) {
                Ok((packages, unreadable_headers)) => Database::Rpm {
                    packages,
                    path: path.into(),
                    unreadable_headers,
                },
                Err(e) => Database::Unreadable {
                    path: path.into(),
                    reason: e.to_string(),
                    error: true,
                },
            };
        }
    }
    for path in RPM_BDB {
        if exists_file(root, path).unwrap_or(false) {
            let read = root
                .open_regular(path)
                .map_err(|e| e.to_string())
                .and_then(|file| rpm::read_bdb(&file, path).map_err(|e| e.to_string()));
            return match read {
                Ok((packages, unreadable_headers)) => Database::Rpm {
                    packages,
                    path: path.into(),
                    unreadable_headers,
                },
                Err(reason) => Database::Unreadable {
                    path: path.into(),
                    reason,
                    error: true,
                },
            };
        }
    }
    for path in RPM_NDB {
        if exists_file(root, path).unwrap_or(false) {
            return Database::Unreadable {
                path: path.into(),
                reason: format!(
                    "the rpm database at {path} is in ndb format, which cannot be read offline without rpm"
                ),
                error: false,
            };
        }
    }
    Database::None
}

fn run(ctx: &CheckContext<'_>) -> Vec<Outcome> {
    let root = ctx.root;
    let settings = &ctx.settings.packages;
    let mut out = Vec::with_capacity(OUTPUTS.len());
    match detect(root) {
        Database::Dpkg(status) => {
            out.push(inventory_dpkg(&status));
            let (pending, security) = pending_debian(ctx, &status);
            out.push(pending);
            out.push(security);
            let kernels = debian_kernels(&status);
            out.push(kernel_outcome(root, kernels, Some(DPKG_STATUS)));
            out.push(last_update_debian(
                root,
                ctx.now,
                settings.max_days_since_update,
            ));
        }
        Database::Rpm {
            packages,
            path,
            unreadable_headers,
        } => {
            out.push(inventory_rpm(&packages, &path, unreadable_headers));
            let reason = "pending updates are not computed on RPM hosts: dnf's cached repository metadata \
                 would need its repository configuration, module filtering and obsoletes applied to be \
                 trustworthy offline";
            out.push(Outcome::no_data(PENDING, reason).source(path.clone()));
            out.push(Outcome::no_data(SECURITY, reason).source(path.clone()));
            out.push(kernel_outcome(root, rpm_kernels(&packages), Some(&path)));
            out.push(last_update_rpm(
                &packages,
                &path,
                ctx.now,
                settings.max_days_since_update,
            ));
        }
        Database::Unreadable {
            path,
            reason,
            error,
        } => {
            for id in [INVENTORY, PENDING, SECURITY] {
                let o = if error {
                    Outcome::error(id, &reason)
                } else {
                    Outcome::no_data(id, reason.clone())
                };
                out.push(o.source(path.clone()));
            }
            out.push(kernel_outcome(root, Vec::new(), None));
            out.push(last_update_debian(
                root,
                ctx.now,
                settings.max_days_since_update,
            ));
        }
        Database::None => {
            let reason = "no dpkg or rpm database under this root";
            for id in [INVENTORY, PENDING, SECURITY] {
                out.push(Outcome::no_data(id, reason));
            }
            out.push(kernel_outcome(root, Vec::new(), None));
            out.push(last_update_debian(
                root,
                ctx.now,
                settings.max_days_since_update,
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Inventory

fn inventory_dpkg(status: &dpkg::Status) -> Outcome {
    let mut current: Vec<&dpkg::DpkgPackage> =
        status.packages.iter().filter(|p| p.is_current()).collect();
    current.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    let installed = current.iter().filter(|p| p.is_installed()).count();
    let unfinished = current.len() - installed;
    let summary = if unfinished == 0 {
        format!("{installed} packages installed (dpkg)")
    } else {
        format!("{installed} packages installed (dpkg), {unfinished} more in an unfinished state")
    };
    let mut o = Outcome::pass(INVENTORY, summary)
        .value("installed", installed)
        .value("package_manager", "dpkg")
        .source(DPKG_STATUS);
    if unfinished > 0 {
        o = o.value("unfinished", unfinished);
    }
    if !status.bad_lines.is_empty() {
        o = o.value("status_lines_unreadable", status.bad_lines.len());
    }
    for p in current {
        let mut s = Subject::new("package", format!("{}:{}", p.name, p.arch))
            .fact("version", p.version.as_str())
            .fact("arch", p.arch.as_str());
        if p.source != p.name {
            s = s.fact("source", p.source.as_str());
        }
        if !p.is_installed() {
            s = s.fact("state", p.state.as_str());
        }
        if p.held() {
            s = s.fact("held", true);
        }
        o = o.checked(s);
    }
    o
}

fn inventory_rpm(packages: &[rpm::RpmPackage], path: &str, unreadable: usize) -> Outcome {
    let mut sorted: Vec<&rpm::RpmPackage> = packages.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.arch, a.evr()).cmp(&(&b.name, &b.arch, b.evr())));
    let mut summary = format!("{} packages installed (rpm)", packages.len());
    if unreadable > 0 {
        summary.push_str(&format!(", {unreadable} database entries unreadable"));
    }
    let mut o = Outcome::pass(INVENTORY, summary)
        .value("installed", packages.len())
        .value("package_manager", "rpm")
        .source(path);
    if unreadable > 0 {
        o = o.value("unreadable_entries", unreadable);
    }
    for p in sorted {
        let mut s = Subject::new("package", format!("{}:{}", p.name, p.arch))
            .fact("version", p.evr())
            .fact("arch", p.arch.as_str());
        if !p.source_rpm.is_empty() {
            s = s.fact("source", p.source_rpm.as_str());
        }
        o = o.checked(s);
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Pending updates (apt)

fn pending_debian(ctx: &CheckContext<'_>, status: &dpkg::Status) -> (Outcome, Outcome) {
    let root = ctx.root;
    let apt_present = root
        .metadata("/etc/apt")
        .map(|m| m.is_dir())
        .unwrap_or(false)
        || status
            .packages
            .iter()
            .any(|p| p.name == "apt" && p.is_current());
    if !apt_present {
        let reason = "apt is not installed under this root (no /etc/apt)";
        return (
            Outcome::no_data(PENDING, reason),
            Outcome::no_data(SECURITY, reason),
        );
    }
    let Some(native) = dpkg::native_arch(status) else {
        let reason = "no installed package tells dpkg's native architecture";
        return (
            Outcome::no_data(PENDING, reason).source(DPKG_STATUS),
            Outcome::no_data(SECURITY, reason).source(DPKG_STATUS),
        );
    };
    let dpkg_archs = match root.read_to_string(DPKG_ARCH) {
        Ok(t) => dpkg::parse_arch_file(&t),
        Err(_) => Vec::new(),
    };
    let cache = ctx
        .cache_dir
        .as_ref()
        .map(|d| lists::ListCache::new(d.join("packages")));
    let inputs = apt::Inputs {
        root,
        status,
        status_path: DPKG_STATUS,
        native_arch: &native,
        dpkg_archs: &dpkg_archs,
        cache: cache.as_ref(),
    };
    let view = match apt::evaluate(&inputs) {
        Ok(v) => v,
        Err(e) => return (Outcome::error(PENDING, &e), Outcome::error(SECURITY, &e)),
    };
    if let Some(cache) = &cache {
        housekeep_cache(cache, &view.cache_files, ctx.now);
    }
    pending_outcomes(
        &view,
        ctx.now,
        ctx.settings.packages.require_security_source,
    )
}

/// Drops cache files of lists this run did not read (removed or renamed lists) once they are
/// a week old; the age guard spares entries of another root sharing the directory.
fn housekeep_cache(cache: &lists::ListCache, used: &[std::path::PathBuf], now: DateTime<Utc>) {
    let Ok(entries) = std::fs::read_dir(cache.dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.ends_with(".list") || name.ends_with(".tmp")) || used.contains(&entry.path()) {
            continue;
        }
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        let modified: DateTime<Utc> = modified.into();
        if now.signed_duration_since(modified).num_days() > 7 {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn pending_subject(p: &apt::Pending) -> Subject {
    let suites: Vec<String> = p.archives.iter().map(|a| a.suite.clone()).collect();
    let mut origins: Vec<String> = Vec::new();
    for a in &p.archives {
        if !a.origin.is_empty() && !origins.contains(&a.origin) {
            origins.push(a.origin.clone());
        }
    }
    let from = if suites.is_empty() {
        "the configured archives".to_string()
    } else {
        suites.join(", ")
    };
    let mut s = Subject::new("package", format!("{}:{}", p.name, p.arch))
        .with_reason(format!(
            "{} installed, {} available from {from}",
            p.installed, p.candidate
        ))
        .fact("installed", p.installed.as_str())
        .fact("candidate", p.candidate.as_str())
        .fact("archives", suites)
        .fact("security", p.security);
    if !origins.is_empty() {
        s = s.fact("origins", origins);
    }
    if p.held {
        s = s.fact("held", true);
    }
    if p.phased < 100 {
        s = s.fact("phased_update_percentage", u32::from(p.phased));
    }
    if let Some(deferred) = p.phasing_deferred {
        s = s.fact("phasing_deferred", deferred);
    }
    s
}

fn pending_outcomes(
    view: &apt::AptView,
    now: DateTime<Utc>,
    require_security: bool,
) -> (Outcome, Outcome) {
    let with_values = |mut o: Outcome| {
        o = o
            .value("pending_updates", view.pending.len())
            .value(
                "pending_security",
                view.pending.iter().filter(|p| p.security).count(),
            )
            .value("packages_checked", view.checked)
            .value("lists_read", view.lists_read);
        if view.lists_missing > 0 {
            o = o.value("lists_missing", view.lists_missing);
        }
        if !view.warnings.is_empty() {
            o = o.value("warnings", view.warnings.clone());
        }
        if let Some(date) = view.newest_release {
            o = o.value(
                "metadata_age_days",
                now.signed_duration_since(date).num_days().max(0),
            );
        }
        o.sources(view.sources.iter().cloned())
    };
    if view.releases == 0 {
        let reason = "no apt sources are configured: no archive could offer updates";
        return (
            with_values(Outcome::no_data(PENDING, reason)),
            with_values(Outcome::no_data(SECURITY, reason)),
        );
    }
    if view.lists_read == 0 {
        let reason = format!(
            "none of the package lists of the {} configured releases is on disk (apt update has not run)",
            view.releases
        );
        return (
            with_values(Outcome::no_data(PENDING, reason.clone())),
            with_values(Outcome::no_data(SECURITY, reason)),
        );
    }
    let lists_note = format!(
        "{} package lists of {} releases",
        view.lists_read, view.releases
    );
    let n = view.pending.len();
    let s = view.pending.iter().filter(|p| p.security).count();

    let mut pending = if n == 0 {
        Outcome::pass(
            PENDING,
            format!(
                "all {} installed packages are at their candidate version ({lists_note})",
                view.checked
            ),
        )
    } else {
        Outcome::fail(
            PENDING,
            format!(
                "{n} of {} installed packages have a newer candidate, {s} of them from a security archive",
                view.checked
            ),
        )
    };
    for p in &view.pending {
        pending = pending.offender(pending_subject(p));
    }

    let security_sources = view.security_releases > 0;
    let mut security = if s > 0 {
        Outcome::fail(
            SECURITY,
            format!("{s} installed packages have a security update pending"),
        )
    } else if require_security && !security_sources {
        Outcome::fail(
            SECURITY,
            "no security archive is among the configured apt sources: security updates cannot arrive",
        )
        .offender(
            Subject::new("apt_sources", "/etc/apt")
                .with_reason("no configured release is a security archive (Label Debian-Security or a *-security suite)"),
        )
    } else {
        Outcome::pass(
            SECURITY,
            format!(
                "no security update pending for the {} installed packages ({lists_note})",
                view.checked
            ),
        )
    };
    for p in view.pending.iter().filter(|p| p.security) {
        security = security.offender(pending_subject(p));
    }
    (with_values(pending), with_values(security))
}

// ---------------------------------------------------------------------------------------------
// Kernel

/// An installed kernel: its release (`uname -r`), package and package version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KernelPkg {
    release: String,
    package: String,
    version: String,
}

fn debian_kernels(status: &dpkg::Status) -> Vec<KernelPkg> {
    let mut kernels: Vec<KernelPkg> = status
        .packages
        .iter()
        .filter(|p| p.is_installed())
        .filter_map(|p| {
            kernel::debian_kernel_release(&p.name).map(|r| KernelPkg {
                release: r.to_string(),
                package: p.name.clone(),
                version: p.version.clone(),
            })
        })
        .collect();
    kernels.sort_by(|a, b| {
        debversion::compare(&a.version, &b.version)
            .then_with(|| debversion::compare(&a.release, &b.release))
    });
    kernels.dedup_by(|a, b| a.release == b.release);
    kernels
}

fn rpm_kernels(packages: &[rpm::RpmPackage]) -> Vec<KernelPkg> {
    const NAMES: [&str; 6] = [
        "kernel-core",
        "kernel",
        "kernel-uek-core",
        "kernel-uek",
        "kernel-rt-core",
        "kernel-rt",
    ];
    let mut found: Vec<&rpm::RpmPackage> = Vec::new();
    for name in NAMES {
        let of_name: Vec<&rpm::RpmPackage> = packages.iter().filter(|p| p.name == name).collect();
        if !of_name.is_empty() {
            found = of_name;
            break;
        }
    }
    found.sort_by(|a, b| rpm::compare_evr(a, b));
    found
        .into_iter()
        .map(|p| KernelPkg {
            release: format!("{}-{}.{}", p.version, p.release, p.arch),
            package: p.name.clone(),
            version: p.evr(),
        })
        .collect()
}

fn boot_kernels(root: &HostRoot) -> Vec<KernelPkg> {
    let Ok(names) = root.read_dir("/boot") else {
        return Vec::new();
    };
    let mut kernels: Vec<KernelPkg> = names
        .iter()
        .filter(|n| exists_file(root, &join("/boot", n)).unwrap_or(false))
        .filter_map(|n| kernel::vmlinuz_release(n))
        .map(|r| KernelPkg {
            release: r.to_string(),
            package: format!("/boot/vmlinuz-{r}"),
            version: r.to_string(),
        })
        .collect();
    kernels.sort_by(|a, b| debversion::compare(&a.release, &b.release));
    kernels
}

fn read_trimmed(root: &HostRoot, path: &str) -> Option<String> {
    root.read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn kernel_outcome(
    root: &HostRoot,
    mut kernels: Vec<KernelPkg>,
    db_source: Option<&str>,
) -> Outcome {
    let mut sources: Vec<String> = db_source.map(|s| vec![s.to_string()]).unwrap_or_default();
    if kernels.is_empty() {
        kernels = boot_kernels(root);
        if !kernels.is_empty() {
            sources.push("/boot".into());
        }
    }
    let running = read_trimmed(root, OSRELEASE);
    if running.is_some() {
        sources.push(OSRELEASE.into());
    }
    let reboot_required = exists_file(root, REBOOT_REQUIRED).unwrap_or(false);
    let mut reboot_pkgs: Vec<String> = Vec::new();
    if reboot_required {
        sources.push(REBOOT_REQUIRED.into());
        if let Ok(t) = root.read_to_string(REBOOT_REQUIRED_PKGS) {
            sources.push(REBOOT_REQUIRED_PKGS.into());
            reboot_pkgs = kernel::parse_reboot_pkgs(&t);
        }
    }
    let newest = kernels.last().cloned();

    let mut offenders: Vec<Subject> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut update_pending = false;
    let mut pending_reason: Option<String> = None;
    if let (Some(run), Some(new)) = (&running, &newest) {
        if &new.release != run {
            let running_installed = kernels.iter().find(|k| &k.release == run);
            // Another flavour of the same build (generic vs lowlatency) is not newer.
            let newer = match running_installed {
                Some(k) => debversion::compare(&new.version, &k.version) == Ordering::Greater,
                None => debversion::compare(&new.release, run) == Ordering::Greater,
            };
            if newer {
                update_pending = true;
                let reason = format!(
                    "installed kernel {} ({}) is newer than the running {run}",
                    new.release, new.version
                );
                pending_reason = Some(reason.clone());
                offenders.push(
                    Subject::new("kernel", new.release.as_str())
                        .with_reason(reason)
                        .fact("package", new.package.as_str())
                        .fact("version", new.version.as_str())
                        .fact("running", run.as_str()),
                );
            } else if running_installed.is_none() {
                notes.push(format!(
                    "the running kernel {run} is not one of the installed kernels"
                ));
            }
        } else if let Some(build) = read_trimmed(root, PROC_VERSION)
            .as_deref()
            .and_then(kernel::debian_build_version)
            .map(str::to_string)
        {
            // Same release, rebuilt package: Debian stamps the build's version into the kernel.
            sources.push(PROC_VERSION.into());
            if debversion::compare(&new.version, &build) == Ordering::Greater {
                update_pending = true;
                let reason = format!(
                    "the running {run} is build {build}, the installed package is {}",
                    new.version
                );
                pending_reason = Some(reason.clone());
                offenders.push(
                    Subject::new("kernel", new.release.as_str())
                        .with_reason(reason)
                        .fact("package", new.package.as_str())
                        .fact("version", new.version.as_str())
                        .fact("running_build", build.as_str()),
                );
            }
        }
    }
    if reboot_required {
        let reason = if reboot_pkgs.is_empty() {
            "the system asks for a reboot".to_string()
        } else {
            format!(
                "the system asks for a reboot, requested by {}",
                reboot_pkgs.join(", ")
            )
        };
        let mut s = Subject::new("reboot_required", REBOOT_REQUIRED).with_reason(reason);
        if !reboot_pkgs.is_empty() {
            s = s.fact("packages", reboot_pkgs.clone());
        }
        offenders.push(s);
    }

    let checked: Vec<Subject> = kernels
        .iter()
        .map(|k| {
            Subject::new("kernel", k.release.as_str())
                .fact("package", k.package.as_str())
                .fact("version", k.version.as_str())
                .fact("running", running.as_deref() == Some(k.release.as_str()))
        })
        .collect();

    let summary_ok;
    let summary_fail;
    match (&running, &newest) {
        (None, None) if !reboot_required => {
            return Outcome::no_data(
                KERNEL,
                "no installed kernel and no running kernel under this root (a container or an image without a kernel)",
            )
            .value("reboot_required", false)
            .sources(sources);
        }
        (Some(run), None) if !reboot_required => {
            return Outcome::no_data(
                KERNEL,
                format!("running kernel {run}, but no installed kernel under this root to compare it with (a container?)"),
            )
            .value("running_kernel", run.as_str())
            .value("reboot_required", false)
            .sources(sources);
        }
        (None, Some(new)) => {
            summary_ok = format!(
                "image not running (no {OSRELEASE}): newest installed kernel {}, no reboot marker",
                new.release
            );
            summary_fail = format!("image not running (no {OSRELEASE}): a reboot is required");
        }
        (Some(run), Some(new)) => {
            summary_ok = if notes.is_empty() {
                format!(
                    "running kernel {run} is the newest of {} installed; no reboot pending",
                    kernels.len()
                )
            } else {
                format!(
                    "newest installed kernel {}; {}; no reboot pending",
                    new.release,
                    notes.join("; ")
                )
            };
            summary_fail = match (&pending_reason, reboot_required) {
                (Some(reason), true) => format!("{reason}; a reboot is required"),
                (Some(reason), false) => format!("{reason}: reboot to load it"),
                (None, _) => format!("running kernel {run} is current, but a reboot is required"),
            };
        }
        (running, None) => {
            summary_ok = String::new();
            summary_fail = match running {
                Some(run) => format!("running kernel {run}; a reboot is required"),
                None => "a reboot is required".into(),
            };
        }
    }
    let mut o = Outcome::judge(KERNEL, offenders, checked, summary_ok, summary_fail)
        .value("reboot_required", reboot_required)
        .value("kernel_update_pending", update_pending)
        .value("installed_kernels", kernels.len())
        .sources(sources);
    if let Some(run) = &running {
        o = o.value("running_kernel", run.as_str());
    }
    if let Some(new) = &newest {
        o = o.value("newest_installed_kernel", new.release.as_str());
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Last update

fn judge_last_update(
    last: NaiveDateTime,
    now: DateTime<Utc>,
    max_days: u32,
    manager: &str,
    sources: Vec<String>,
) -> Outcome {
    let last_utc = last.and_utc();
    let raw_days = now.signed_duration_since(last_utc).num_days();
    let days = raw_days.max(0);
    let when = last_utc.format("%Y-%m-%d %H:%M").to_string();
    let mut o = if days > i64::from(max_days) {
        Outcome::fail(
            LAST_UPDATE,
            format!("no package installed or upgraded for {days} days (last on {when}; limit {max_days})"),
        )
        .offender(
            Subject::new("package_manager", manager)
                .with_reason(format!("last install or upgrade {days} days ago, on {when}"))
                .fact("days_since_update", days)
                .fact("last_update", last_utc.to_rfc3339()),
        )
    } else if raw_days < 0 {
        Outcome::pass(
            LAST_UPDATE,
            format!("last package update on {when}, after the check's clock"),
        )
    } else {
        Outcome::pass(
            LAST_UPDATE,
            format!("last package install or upgrade {days} days ago, on {when}"),
        )
    };
    o = o
        .value("days_since_update", days)
        .value("last_update", last_utc.to_rfc3339())
        .value("max_days_since_update", max_days)
        .sources(sources);
    o
}

/// Reduces a log's text to its last install or upgrade.
type LogParser = fn(&str) -> Option<NaiveDateTime>;

fn last_update_debian(root: &HostRoot, now: DateTime<Utc>, max_days: u32) -> Outcome {
    let mut sources: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut last: Option<NaiveDateTime> = None;
    let logs: [(&str, &str, LogParser); 2] = [
        ("/var/log", "dpkg.log", history::dpkg_log_last_change),
        (
            "/var/log/apt",
            "history.log",
            history::apt_history_last_change,
        ),
    ];
    for (dir, base, parse) in logs {
        let names = match root.read_dir(dir) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        for name in history::rotated_names(base, &names) {
            let path = join(dir, &name);
            if !exists_file(root, &path).unwrap_or(false) {
                continue;
            }
            match apt::read_log(root, &path, LOG_LIMIT) {
                Ok(text) => {
                    sources.push(path);
                    if let Some(t) = parse(&text)
                        && last.is_none_or(|l| t > l)
                    {
                        last = Some(t);
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    match last {
        Some(t) => judge_last_update(t, now, max_days, "dpkg", sources),
        None if sources.is_empty() && !errors.is_empty() => {
            Outcome::error(LAST_UPDATE, errors.join("; "))
        }
        None if sources.is_empty() => {
            Outcome::no_data(LAST_UPDATE, "no dpkg or apt log under this root")
        }
        None => Outcome::no_data(
            LAST_UPDATE,
            format!(
                "the {} package logs record no install or upgrade",
                sources.len()
            ),
        )
        .sources(sources),
    }
}

fn last_update_rpm(
    packages: &[rpm::RpmPackage],
    path: &str,
    now: DateTime<Utc>,
    max_days: u32,
) -> Outcome {
    let last = packages
        .iter()
        .filter_map(|p| p.install_time)
        .max()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|t| t.naive_utc());
    match last {
        Some(t) => judge_last_update(t, now, max_days, "rpm", vec![path.to_string()]),
        None => {
            Outcome::no_data(LAST_UPDATE, "the rpm database records no install time").source(path)
        }
    }
}

/// Entry points for the fuzz targets in `fuzz/` (not an API): the parsers of this module are
/// private, these call them on arbitrary input and check what must hold for any input.
#[doc(hidden)]
pub mod fuzzing {
    use std::cmp::Ordering;

    /// Parses a dpkg `status` file; returns the number of packages found.
    pub fn dpkg_status(text: &str) -> usize {
        let status = super::dpkg::parse_status(text);
        let _ = super::dpkg::native_arch(&status);
        let _ = super::dpkg::parse_arch_file(text);
        let _ = super::tagfile::parse(&super::tagfile::strip_comment_lines(text));
        status.packages.len()
    }

    /// Debian version comparison: reflexive and antisymmetric on any pair of strings.
    pub fn debian_compare(a: &str, b: &str) -> Ordering {
        let ab = super::debversion::compare(a, b);
        assert_eq!(
            super::debversion::compare(a, a),
            Ordering::Equal,
            "{a:?} != itself"
        );
        assert_eq!(
            super::debversion::compare(b, a),
            ab.reverse(),
            "compare({a:?}, {b:?}) is not antisymmetric"
        );
        ab
    }

    /// rpm's `rpmvercmp`: reflexive and antisymmetric on any pair of strings.
    pub fn rpm_compare(a: &str, b: &str) -> Ordering {
        let ab = super::rpm::rpmvercmp(a, b);
        assert_eq!(
            super::rpm::rpmvercmp(a, a),
            Ordering::Equal,
            "{a:?} != itself"
        );
        assert_eq!(
            super::rpm::rpmvercmp(b, a),
            ab.reverse(),
            "rpmvercmp({a:?}, {b:?}) is not antisymmetric"
        );
        ab
    }

    /// Parses one rpm header blob (as stored in the rpm database); `true` when accepted.
    pub fn rpm_header(blob: &[u8]) -> bool {
        match super::rpm::parse_header(blob) {
            Ok(p) => {
                let _ = p.evr();
                true
            }
            Err(_) => false,
        }
    }

    /// Parses an apt `Packages` list (uncompressed) and walks its encoded entries, which must
    /// decode exactly; returns the number of entries.
    pub fn apt_list(bytes: &[u8]) -> usize {
        let Ok(list) = super::lists::parse_reader(bytes, "fuzz") else {
            return 0;
        };
        let mut n = 0usize;
        let whole = list.for_each(|_| n += 1);
        assert!(whole, "a freshly parsed list must decode exactly");
        n
    }
}

#[cfg(test)]
mod tests;
