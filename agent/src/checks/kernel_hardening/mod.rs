//! Kernel and boot hardening (A.8.9, A.8.20, A.8.7, A.8.19): sysctl settings as configured
//! (`sysctl.d(5)` precedence) and as running (`/proc/sys`), Secure Boot from the EFI
//! variables, and kernel modules that should be kept out (`modprobe.d`, `/proc/modules`).
//!
//! Decisions worth knowing:
//! - A sysctl key is judged on the running value when the root has a `/proc/sys` (the live
//!   host, or a tree that carries one), and on the configured value otherwise, falling back to
//!   the Debian 12 kernel default of the built-in table. A running value that passes fails
//!   anyway when the configuration sets a failing value (it returns at the next boot), or when
//!   nothing configures it and the kernel default fails (set by hand, lost at reboot).
//!   Configured-versus-running disagreements are reported on every subject (`drift`).
//! - Configuration files are merged like systemd-sysctl and `sysctl --system`: `/etc/sysctl.d`,
//!   `/run/sysctl.d`, `/usr/local/lib/sysctl.d`, `/usr/lib/sysctl.d`, `/lib/sysctl.d` (a name in
//!   an earlier directory hides the same name in a later one, `/dev/null` links mask), applied
//!   in file-name order, then `/etc/sysctl.conf` unless a drop-in already is that file. The
//!   last assignment wins; glob keys (`net.ipv4.conf.*.rp_filter`) count for the keys they match.
//! - A key missing from a running kernel is harmless for network keys (IPv6 disabled) and a
//!   weakness for kernel keys (no Yama means ptrace is unrestricted).
//! - A module counts as kept out when an `install` line replaces loading (`/bin/false`,
//!   `/bin/true`, any command that does not call modprobe) or when the running kernel does not
//!   ship it (`modules.dep`/`modules.builtin` of the running release); `blacklist` alone only
//!   stops alias autoloading, so it is reported but does not pass. A loaded module always fails.
//!   A running kernel without `/proc/modules` (and without `kernel.modules_disabled`) was built
//!   without loadable modules: nothing can be loaded, every module passes.
//! - Secure Boot is `no_data` where no EFI variables are exposed (legacy BIOS boot, efivarfs
//!   not mounted, an offline image).

mod modprobe;
mod sysctl;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_shared::Subject;

use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostError, HostRoot, join};
use modprobe::Directive;
use sysctl::{Absent, Assignment, Expect, Group};

/// `[checks.kernel_hardening]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Expected sysctl values merged over the built-in table (see `packaging/agent.toml` for
    /// the table): `"2"`, alternatives `"1|2"`, bounds `">=1"` / `"<=0"`, or `"ignore"` to drop
    /// a built-in row. Keys use the dotted form (`net.ipv4.ip_forward`); keys not in the table
    /// are judged by the network output when they start with `net.`, else by the kernel one.
    #[serde(default)]
    pub expect: BTreeMap<String, String>,
    /// The host routes packets: IP forwarding and sending redirects are not findings.
    #[serde(default)]
    pub router: bool,
    /// Modules that must not be loadable (filesystems and protocols the host has no use for).
    #[serde(default = "default_disabled_modules")]
    pub disabled_modules: Vec<String>,
    /// Also require `usb-storage` to be kept out (removable media, A.7.10).
    #[serde(default = "default_true")]
    pub disable_usb_storage: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_true(),
            schedule: default_schedule(),
            expect: BTreeMap::new(),
            router: false,
            disabled_modules: default_disabled_modules(),
            disable_usb_storage: default_true(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_true() -> bool {
    true
}
fn default_schedule() -> String {
    "20 * * * *".into()
}
fn default_disabled_modules() -> Vec<String> {
    [
        "cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "udf", "dccp", "sctp", "rds", "tipc",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect()
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "kernel_hardening.kernel_sysctl",
        controls: &["A.8.9"],
        description: "Kernel sysctl hardening (ASLR, pointer and log restriction, ptrace scope, link protection, core dumps), running and configured",
    },
    Output {
        id: "kernel_hardening.network_sysctl",
        controls: &["A.8.20", "A.8.9"],
        description: "Network sysctl hardening (forwarding, redirects, source routing, reverse-path filter, syncookies, router advertisements), running and configured",
    },
    Output {
        id: "kernel_hardening.secure_boot",
        controls: &["A.8.9", "A.8.7"],
        description: "UEFI Secure Boot is enabled, where the firmware exposes its variables",
    },
    Output {
        id: "kernel_hardening.modules",
        controls: &["A.8.9", "A.8.19", "A.7.10"],
        description: "Unneeded filesystem, protocol and USB storage modules are kept out of the kernel and not loaded",
    },
];

const KERNEL_ID: &str = "kernel_hardening.kernel_sysctl";
const NETWORK_ID: &str = "kernel_hardening.network_sysctl";
const SECURE_BOOT_ID: &str = "kernel_hardening.secure_boot";
const MODULES_ID: &str = "kernel_hardening.modules";

/// Drop-in directories of `sysctl.d(5)`, highest priority first.
const SYSCTL_DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];
/// Drop-in directories of `modprobe.d(5)`, highest priority first.
const MODPROBE_DIRS: &[&str] = &[
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
];
const EFI_GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// The kernel hardening check.
#[derive(Debug)]
pub struct KernelHardening;

impl Check for KernelHardening {
    fn name(&self) -> &'static str {
        "kernel_hardening"
    }

    fn description(&self) -> &'static str {
        "sysctl hardening (running and configured), Secure Boot and kept-out kernel modules"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.kernel_hardening.enabled,
            schedule: settings.kernel_hardening.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.kernel_hardening;
        let has_proc = has_running_kernel(ctx.root);
        let mut outcomes = match Expectations::build(settings) {
            Ok(expectations) => {
                let config = read_sysctl_config(ctx.root);
                vec![
                    judge_sysctl(
                        KERNEL_ID,
                        Group::Kernel,
                        &expectations,
                        &config,
                        ctx.root,
                        has_proc,
                    ),
                    judge_sysctl(
                        NETWORK_ID,
                        Group::Network,
                        &expectations,
                        &config,
                        ctx.root,
                        has_proc,
                    ),
                ]
            }
            Err(e) => vec![
                Outcome::error(KERNEL_ID, &e),
                Outcome::error(NETWORK_ID, &e),
            ],
        };
        outcomes.push(secure_boot(ctx.root));
        outcomes.push(modules(ctx.root, settings, has_proc));
        outcomes
    }
}

/// True when `/proc/sys` under the root describes a running kernel.
fn has_running_kernel(root: &HostRoot) -> bool {
    root.is_live() || root.exists("/proc/sys/kernel/osrelease")
}

/// One expected key.
#[derive(Debug, Clone)]
struct Expected {
    key: String,
    path: String,
    expect: Expect,
    group: Group,
    kernel_default: Option<&'static str>,
    absent: Absent,
    why: &'static str,
}

#[derive(Debug)]
struct Expectations(Vec<Expected>);

#[derive(Debug, thiserror::Error)]
#[error("checks.kernel_hardening.expect.{key}: {source}")]
struct ExpectSettingError {
    key: String,
    source: sysctl::ExpectError,
}

impl Expectations {
    fn build(settings: &Settings) -> Result<Self, ExpectSettingError> {
        let mut rows: Vec<Expected> = Vec::new();
        for row in sysctl::BUILTIN {
            if settings.router && row.router_exempt {
                continue;
            }
            let expect = Expect::parse(row.expect).map_err(|source| ExpectSettingError {
                key: row.key.into(),
                source,
            })?;
            rows.push(Expected {
                key: row.key.into(),
                path: sysctl::key_to_path(row.key),
                expect,
                group: row.group,
                kernel_default: Some(row.kernel_default),
                absent: row.absent,
                why: row.why,
            });
        }
        for (key, text) in &settings.expect {
            let path = sysctl::key_to_path(key);
            let existing = rows.iter().position(|r| r.path == path);
            if text.trim() == "ignore" {
                if let Some(i) = existing {
                    rows.remove(i);
                }
                continue;
            }
            let expect = Expect::parse(text).map_err(|source| ExpectSettingError {
                key: key.clone(),
                source,
            })?;
            match existing {
                Some(i) => rows[i].expect = expect,
                None => {
                    let group = if key.starts_with("net.") {
                        Group::Network
                    } else {
                        Group::Kernel
                    };
                    rows.push(Expected {
                        key: key.clone(),
                        path,
                        expect,
                        group,
                        kernel_default: None,
                        absent: Absent::Weakness,
                        why: "required by the agent configuration",
                    });
                }
            }
        }
        Ok(Expectations(rows))
    }
}

/// The merged sysctl configuration, in application order.
#[derive(Debug, Default)]
struct SysctlConfig {
    /// (file, assignment) in the order they are applied.
    assignments: Vec<(String, Assignment)>,
    sources: Vec<String>,
    /// Files or directories that could not be read, with the reason.
    unreadable: Vec<String>,
}

fn read_sysctl_config(root: &HostRoot) -> SysctlConfig {
    let mut config = SysctlConfig::default();
    let (files, errors) = crate::checks::confdir::merged(root, SYSCTL_DIRS, ".conf");
    config
        .unreadable
        .extend(errors.iter().map(ToString::to_string));
    let mut paths: Vec<String> = files.into_iter().map(|f| f.path).collect();
    // `sysctl --system` reads /etc/sysctl.conf last; Debian links it in as 99-sysctl.conf.
    let main_real = root.canonical("/etc/sysctl.conf").ok();
    let already = paths
        .iter()
        .any(|p| root.canonical(p).ok().is_some_and(|c| Some(c) == main_real));
    if !already && root.exists("/etc/sysctl.conf") {
        paths.push("/etc/sysctl.conf".into());
    }
    for path in paths {
        match root.read_to_string(&path) {
            Ok(text) => {
                let parsed = sysctl::parse_sysctl_conf(&text);
                if !parsed.malformed.is_empty() {
                    tracing::warn!(path, lines = ?parsed.malformed, "malformed sysctl lines skipped");
                }
                for a in parsed.assignments {
                    config.assignments.push((path.clone(), a));
                }
                config.sources.push(path);
            }
            Err(e) => config.unreadable.push(e.to_string()),
        }
    }
    config
}

/// A running value, or why there is none.
enum Running {
    Value(String),
    Absent,
    Unreadable(String),
    NoKernel,
}

fn read_running(root: &HostRoot, has_proc: bool, path: &str) -> Running {
    if !has_proc {
        return Running::NoKernel;
    }
    match root.read_bytes(&format!("/proc/sys/{path}"), 64 * 1024) {
        Ok(bytes) => Running::Value(sysctl::normalise_value(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.is_not_found() => Running::Absent,
        Err(e) => Running::Unreadable(e.to_string()),
    }
}

fn judge_sysctl(
    id: &'static str,
    group: Group,
    expectations: &Expectations,
    config: &SysctlConfig,
    root: &HostRoot,
    has_proc: bool,
) -> Outcome {
    let rows: Vec<&Expected> = expectations.0.iter().filter(|r| r.group == group).collect();
    if !has_proc && config.sources.is_empty() {
        return Outcome::no_data(
            id,
            "no /proc/sys and no sysctl configuration (/etc/sysctl.conf, sysctl.d) under this root",
        );
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut drift = 0usize;
    let mut unreadable = 0usize;
    for row in &rows {
        let configured = sysctl::last_assignment(&config.assignments, &row.path);
        let running = read_running(root, has_proc, &row.path);
        let mut subject = Subject::new("sysctl", &row.key).fact("expected", row.expect.to_string());
        if let Some((file, a)) = configured {
            subject = subject
                .fact("configured", a.value.as_str())
                .fact("configured_in", format!("{file}:{}", a.line));
        }
        if let Some(default) = row.kernel_default {
            subject = subject.fact("kernel_default", default);
        }
        let configured_ok = configured.map(|(_, a)| row.expect.accepts(&a.value));
        let where_set = |(file, a): &(String, Assignment)| format!("{file}:{}", a.line);
        let reason: Option<String> = match &running {
            Running::Value(value) => {
                subject = subject.fact("running", value.as_str());
                if let Some((_, a)) = configured
                    && a.value != *value
                {
                    drift += 1;
                    subject = subject.fact("drift", true);
                }
                if !row.expect.accepts(value) {
                    Some(match configured {
                        Some(c) if configured_ok == Some(true) => format!(
                            "running value {value}, expected {}: {} sets {} but it is not applied",
                            row.expect,
                            where_set(c),
                            c.1.value
                        ),
                        Some(c) => format!(
                            "running value {value}, expected {} ({}; {} sets {})",
                            row.expect,
                            row.why,
                            where_set(c),
                            c.1.value
                        ),
                        None => format!(
                            "running value {value}, expected {} ({}); nothing configures it",
                            row.expect, row.why
                        ),
                    })
                } else if let Some(c) = configured.filter(|_| configured_ok == Some(false)) {
                    Some(format!(
                        "running value {value} passes, but {} sets {} (expected {}), applied at the next boot",
                        where_set(c),
                        c.1.value,
                        row.expect
                    ))
                } else if configured.is_none()
                    && row.kernel_default.is_some_and(|d| !row.expect.accepts(d))
                {
                    Some(format!(
                        "running value {value} passes but no sysctl file sets it: the kernel \
                         default {} returns at reboot",
                        row.kernel_default.unwrap_or_default()
                    ))
                } else {
                    None
                }
            }
            Running::Absent => match row.absent {
                Absent::Harmless => {
                    subject = subject.fact("running", "absent");
                    None
                }
                Absent::Weakness => Some(format!(
                    "not present in the running kernel, so the protection is missing ({})",
                    row.why
                )),
            },
            Running::Unreadable(e) => {
                unreadable += 1;
                Some(format!("running value unreadable: {e}"))
            }
            Running::NoKernel => {
                let (value, basis) = match configured {
                    Some((file, a)) => (Some(a.value.clone()), format!("{file}:{}", a.line)),
                    None => (
                        row.kernel_default.map(str::to_string),
                        "kernel default (nothing configures it)".to_string(),
                    ),
                };
                match value {
                    Some(v) if row.expect.accepts(&v) => None,
                    Some(v) => Some(format!(
                        "boots with {v} from {basis}, expected {} ({})",
                        row.expect, row.why
                    )),
                    None => Some(format!(
                        "not configured and no running kernel to read, expected {}",
                        row.expect
                    )),
                }
            }
        };
        match reason {
            Some(reason) => offenders.push(subject.with_reason(reason)),
            None => checked.push(subject),
        }
    }
    let basis = if has_proc {
        "running kernel and configuration"
    } else {
        "configuration and kernel defaults (no running kernel under this root)"
    };
    let total = rows.len();
    let failing = offenders.len();
    let what = match group {
        Group::Kernel => "kernel",
        Group::Network => "network",
    };
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    Outcome::judge(
        id,
        offenders,
        checked,
        format!("all {total} {what} sysctl settings are hardened ({basis})"),
        format!(
            "{failing} of {total} {what} sysctl settings are not hardened ({basis}): {}",
            names.join(", ")
        ),
    )
    .value("settings_checked", total)
    .value("settings_failing", failing)
    .value("drift", drift)
    .value("unreadable", unreadable)
    .value("basis", if has_proc { "running" } else { "configured" })
    .sources(config.sources.iter().cloned())
    .sources(has_proc.then(|| "/proc/sys".to_string()))
}

fn secure_boot(root: &HostRoot) -> Outcome {
    let efivars = format!("/sys/firmware/efi/efivars/SecureBoot-{EFI_GLOBAL}");
    let legacy = format!("/sys/firmware/efi/vars/SecureBoot-{EFI_GLOBAL}/data");
    let setup_mode = format!("/sys/firmware/efi/efivars/SetupMode-{EFI_GLOBAL}");
    let (path, bytes, with_attributes) = match root.read_bytes(&efivars, 64) {
        Ok(bytes) => (efivars, bytes, true),
        Err(e) if e.is_not_found() => match root.read_bytes(&legacy, 64) {
            Ok(bytes) => (legacy, bytes, false),
            Err(e2) if e2.is_not_found() => {
                let why = if root.exists("/sys/firmware/efi") {
                    "the firmware is UEFI but exposes no SecureBoot variable (efivarfs not mounted?)"
                } else if root.exists("/sys/firmware") {
                    "no /sys/firmware/efi: the host booted through legacy BIOS, where Secure Boot does not exist"
                } else {
                    "no /sys/firmware under this root: Secure Boot state is only exposed by a running kernel"
                };
                return Outcome::no_data(SECURE_BOOT_ID, why);
            }
            Err(e2) => return Outcome::error(SECURE_BOOT_ID, e2),
        },
        Err(e) => return Outcome::error(SECURE_BOOT_ID, e),
    };
    let Some(enabled) = modprobe::parse_efi_bool(&bytes, with_attributes) else {
        return Outcome::error(
            SECURE_BOOT_ID,
            format!("{path}: unexpected content ({} bytes)", bytes.len()),
        );
    };
    let setup = root
        .read_bytes(&setup_mode, 64)
        .ok()
        .and_then(|b| modprobe::parse_efi_bool(&b, true));
    let mut subject = Subject::new("firmware", "SecureBoot").fact("enabled", enabled);
    if let Some(setup) = setup {
        subject = subject.fact("setup_mode", setup);
    }
    let mut outcome = if enabled {
        Outcome::pass(SECURE_BOOT_ID, "UEFI Secure Boot is enabled").checked(subject)
    } else {
        let reason = if setup == Some(true) {
            "Secure Boot is off: the firmware is in setup mode (no platform key enrolled)"
        } else {
            "Secure Boot is off: unsigned boot loaders and kernels can run"
        };
        Outcome::fail(SECURE_BOOT_ID, "UEFI Secure Boot is disabled")
            .offender(subject.with_reason(reason))
    };
    outcome = outcome.value("secure_boot", enabled).source(path);
    if setup.is_some() {
        outcome = outcome.source(setup_mode);
    }
    outcome
}

fn modules(root: &HostRoot, settings: &Settings, has_proc: bool) -> Outcome {
    let mut wanted: Vec<String> = settings
        .disabled_modules
        .iter()
        .map(|m| modprobe::normalise_module(m))
        .collect();
    if settings.disable_usb_storage {
        wanted.push("usb_storage".into());
    }
    wanted.sort();
    wanted.dedup();
    let (files, errors) = crate::checks::confdir::merged(root, MODPROBE_DIRS, ".conf");
    let mut sources = Vec::new();
    let mut directives: Vec<(String, Directive)> = Vec::new();
    let mut unreadable: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for file in &files {
        match root.read_to_string(&file.path) {
            Ok(text) => {
                sources.push(file.path.clone());
                for d in modprobe::parse_modprobe_conf(&text) {
                    directives.push((file.path.clone(), d));
                }
            }
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    // A running kernel without /proc/modules was built without loadable module support.
    let mut module_support = true;
    let loaded = if has_proc {
        match root.read_to_string("/proc/modules") {
            Ok(text) => {
                sources.push("/proc/modules".into());
                Some(modprobe::parse_proc_modules(&text))
            }
            Err(e) if e.is_not_found() => {
                module_support = root.exists("/proc/sys/kernel/modules_disabled");
                None
            }
            Err(e) => {
                unreadable.push(e.to_string());
                None
            }
        }
    } else {
        None
    };
    let available = running_kernel_modules(root, has_proc, &mut sources);
    if files.is_empty()
        && loaded.is_none()
        && unreadable.is_empty()
        && !root.exists("/etc/os-release")
    {
        return Outcome::no_data(
            MODULES_ID,
            "no modprobe configuration, no /proc/modules and no /etc/os-release under this root",
        );
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    for module in &wanted {
        let mine: Vec<&(String, Directive)> = directives
            .iter()
            .filter(|(_, d)| d.module() == module)
            .collect();
        // modprobe uses the first install command it reads for a module.
        let install = mine.iter().find_map(|(file, d)| match d {
            Directive::Install { command, line, .. } => Some((file, command, *line)),
            Directive::Blacklist { .. } => None,
        });
        let blacklisted = mine
            .iter()
            .find(|(_, d)| matches!(d, Directive::Blacklist { .. }));
        let is_loaded = loaded.as_ref().is_some_and(|l| l.contains(module));
        let shipped = available.as_ref().map(|a| a.contains(module));
        let mut subject = Subject::new("kernel_module", module).fact("loaded", is_loaded);
        if let Some((file, command, line)) = install {
            subject = subject
                .fact("install", command.as_str())
                .fact("install_in", format!("{file}:{line}"));
        }
        if let Some((file, Directive::Blacklist { line, .. })) = blacklisted {
            subject = subject.fact("blacklist_in", format!("{file}:{line}"));
        }
        if let Some(shipped) = shipped {
            subject = subject.fact("in_running_kernel", shipped);
        }
        let blocks = install.is_some_and(|(_, c, _)| modprobe::install_blocks(c));
        if !module_support {
            subject = subject.fact("module_support", false);
        }
        let reason = if !module_support {
            None
        } else if is_loaded {
            Some("loaded in the running kernel".to_string())
        } else if blocks || shipped == Some(false) {
            None
        } else if let Some((_, command, _)) = install {
            Some(format!(
                "the install command {command:?} still loads the module"
            ))
        } else if blacklisted.is_some() {
            Some("only blacklisted: `modprobe` or a dependency still loads it; add `install <module> /bin/false`".into())
        } else {
            Some("loadable: no `install <module> /bin/false` line keeps it out".into())
        };
        match reason {
            Some(reason) => offenders.push(subject.with_reason(reason)),
            None => checked.push(subject),
        }
    }
    let total = wanted.len();
    let failing = offenders.len();
    let pass_summary = if module_support {
        format!("all {total} unneeded kernel modules are kept out")
    } else {
        format!(
            "the running kernel cannot load modules (no /proc/modules): all {total} unneeded modules are out"
        )
    };
    let loaded_count = offenders
        .iter()
        .filter(|s: &&Subject| s.facts.get("loaded").and_then(|v| v.as_bool()) == Some(true))
        .count();
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    Outcome::judge(
        MODULES_ID,
        offenders,
        checked,
        pass_summary,
        format!(
            "{failing} of {total} unneeded kernel modules can be loaded ({loaded_count} loaded now): {}",
            names.join(", ")
        ),
    )
    .value("modules_checked", total)
    .value("modules_loadable", failing)
    .value("modules_loaded", loaded_count)
    .value("unreadable", unreadable.len())
    .value("module_support", module_support)
    .sources(sources)
}

/// Modules the running kernel ships (loadable or built in), when the release and its module
/// index are readable.
fn running_kernel_modules(
    root: &HostRoot,
    has_proc: bool,
    sources: &mut Vec<String>,
) -> Option<Vec<String>> {
    if !has_proc {
        return None;
    }
    let release = root.read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim();
    if release.is_empty() || release.contains('/') {
        return None;
    }
    let dir = format!("/lib/modules/{release}");
    let mut names = Vec::new();
    for file in ["modules.dep", "modules.builtin"] {
        let path = join(&dir, file);
        match root.read_to_string(&path) {
            Ok(text) => {
                names.extend(modprobe::parse_module_index(&text));
                sources.push(path);
            }
            Err(HostError::NotFound { .. }) if file == "modules.builtin" => {}
            Err(_) => return None,
        }
    }
    Some(names)
}
