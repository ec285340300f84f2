//! Time synchronisation (A.8.17): which daemon keeps the clock (chrony, systemd-timesyncd,
//! ntpd/ntpsec, OpenNTPD), whether it is enabled at boot, runs, and has time sources
//! configured; and on the running host whether the kernel considers the clock synchronised.
//!
//! Decisions worth knowing:
//! - "Enabled" is read from the enablement links on disk ([`UnitIndex`]), so the verdict
//!   holds for images and for hosts whose PID 1 is not systemd; "running" is judged only
//!   where the root has a process table.
//! - systemd-timesyncd without `NTP=` uses its fallback list, compiled in by the
//!   distribution (Debian: `debian.pool.ntp.org`), so it has sources unless a file empties
//!   `FallbackNTP=`. ntpd's local clock driver (`127.127.1.0`) is not a source.
//! - Two enabled daemons are a finding: they fight over the clock.
//! - `time_sync.synchronized` reads `adjtimex(2)` (read-only), which is independent of the
//!   daemon and of PID 1: `STA_UNSYNC` or `TIME_ERROR` means nothing disciplines the clock.
//!   The kernel's `maxerror` is the bound on the clock error that the daemon maintains; it
//!   is judged against `max_error_ms`. The kernel `offset` is only the correction still to
//!   be applied (chrony keeps it near zero), reported but not judged.

pub mod clock;
pub mod sources;

use std::collections::BTreeSet;

use serde::Deserialize;
use vigil_shared::{Subject, Value};

use super::support::procs::ProcessTable;
use super::support::units::{UnitIndex, UnitState};
use super::support::{self, glob, list_dir, pkgs::Installed, read_optional, round1};
use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostRoot, join};
use sources::{DaemonFile, Source, Timesyncd};

/// `[checks.time_sync]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Largest acceptable bound on the clock error (the kernel's `maxerror`), in
    /// milliseconds. The daemon resets it at each update; between updates it grows by 0.5 ms
    /// per second, so a daemon polling every 1024 s keeps it under about 600 ms.
    #[serde(default = "default_max_error_ms")]
    pub max_error_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            max_error_ms: default_max_error_ms(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "*/15 * * * *".into()
}
fn default_max_error_ms() -> u64 {
    2_000
}

const SERVICE: &str = "time_sync.service";
const SYNCHRONIZED: &str = "time_sync.synchronized";

const OUTPUTS: &[Output] = &[
    Output {
        id: SERVICE,
        controls: &["A.8.17"],
        description: "One time synchronisation daemon is enabled, running and has time sources configured",
    },
    Output {
        id: SYNCHRONIZED,
        controls: &["A.8.17"],
        description: "The running kernel reports the clock synchronised within the allowed error bound",
    },
];

/// The time synchronisation check.
#[derive(Debug)]
pub struct TimeSync;

impl Check for TimeSync {
    fn name(&self) -> &'static str {
        "time_sync"
    }

    fn description(&self) -> &'static str {
        "time synchronisation daemon, its sources, and the kernel's clock state"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.time_sync.enabled,
            schedule: settings.time_sync.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let units = UnitIndex::load(ctx.root);
        let procs = ProcessTable::load(ctx.root);
        let daemons: Vec<Daemon> = DAEMONS
            .iter()
            .map(|spec| gather(ctx.root, spec, &units, procs.as_ref()))
            .collect();
        let installed = Installed::load(ctx.root);
        let judgeable = units.systemd || installed.is_known() || ctx.root.exists("/etc/init.d");
        vec![
            service_outcome(&daemons, judgeable, procs.is_some()),
            synchronized_outcome(ctx, &daemons),
        ]
    }
}

/// A daemon we know how to read.
#[derive(Debug)]
struct DaemonSpec {
    name: &'static str,
    /// Unit names and SysV script names that start it.
    units: &'static [&'static str],
    /// Program names of its process.
    processes: &'static [&'static str],
    /// Its executable (one of them present means installed).
    binaries: &'static [&'static str],
    /// Main configuration files; the first that exists is read.
    configs: &'static [&'static str],
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Chrony,
    Ntp,
    OpenNtpd,
    Timesyncd,
}

const DAEMONS: &[DaemonSpec] = &[
    DaemonSpec {
        name: "chrony",
        units: &["chrony.service", "chronyd.service", "chrony"],
        processes: &["chronyd"],
        binaries: &["/usr/sbin/chronyd", "/sbin/chronyd"],
        configs: &["/etc/chrony/chrony.conf", "/etc/chrony.conf"],
        format: Format::Chrony,
    },
    DaemonSpec {
        name: "systemd-timesyncd",
        units: &["systemd-timesyncd.service"],
        processes: &["systemd-timesyncd"],
        binaries: &[
            "/lib/systemd/systemd-timesyncd",
            "/usr/lib/systemd/systemd-timesyncd",
        ],
        configs: &[],
        format: Format::Timesyncd,
    },
    DaemonSpec {
        name: "ntpd",
        units: &[
            "ntp.service",
            "ntpd.service",
            "ntpsec.service",
            "ntp",
            "ntpsec",
        ],
        processes: &["ntpd"],
        binaries: &["/usr/sbin/ntpd", "/sbin/ntpd"],
        configs: &["/etc/ntpsec/ntp.conf", "/etc/ntp.conf"],
        format: Format::Ntp,
    },
    DaemonSpec {
        name: "openntpd",
        units: &["openntpd.service", "openntpd"],
        processes: &["openntpd"],
        binaries: &["/usr/sbin/openntpd"],
        configs: &["/etc/openntpd/ntpd.conf"],
        format: Format::OpenNtpd,
    },
];

/// What the root says about one daemon.
#[derive(Debug)]
struct Daemon {
    spec: &'static DaemonSpec,
    unit: UnitState,
    installed: bool,
    /// `None` when the root has no process table.
    running: Option<bool>,
    files: Vec<String>,
    sources: Vec<(Source, String)>,
    /// Only for timesyncd: servers come from the compiled-in fallback list.
    builtin_fallback: bool,
    unreadable: Vec<String>,
}

impl Daemon {
    fn active(&self) -> bool {
        self.unit.is_enabled() || self.running == Some(true)
    }

    fn has_sources(&self) -> bool {
        !self.sources.is_empty() || self.builtin_fallback
    }

    fn source_list(&self) -> Vec<String> {
        let mut list: Vec<String> = self
            .sources
            .iter()
            .map(|(s, _)| format!("{} {}", s.kind, s.address))
            .collect();
        if self.builtin_fallback {
            list.push("built-in fallback servers".into());
        }
        list
    }

    fn subject(&self) -> Subject {
        let mut s = Subject::new("time_daemon", self.spec.name)
            .fact("unit", self.unit.word())
            .fact("sources", self.source_list())
            .fact("files", self.files.clone());
        if let Some(running) = self.running {
            s = s.fact("running", running);
        }
        s
    }
}

/// Files read per daemon at most (includes and conf.d directories together).
const MAX_FILES: usize = 256;

fn gather(
    root: &HostRoot,
    spec: &'static DaemonSpec,
    units: &UnitIndex,
    procs: Option<&ProcessTable>,
) -> Daemon {
    let mut d = Daemon {
        spec,
        unit: units.state_any(spec.units),
        installed: false,
        running: procs.map(|t| spec.processes.iter().any(|p| t.runs(p))),
        files: Vec::new(),
        sources: Vec::new(),
        builtin_fallback: false,
        unreadable: Vec::new(),
    };
    let binary = spec.binaries.iter().any(|b| root.exists(b));
    match spec.format {
        Format::Timesyncd => gather_timesyncd(root, &mut d),
        Format::Chrony | Format::Ntp | Format::OpenNtpd => {
            if let Some(main) = spec.configs.iter().find(|c| root.exists(c)) {
                gather_daemon_files(root, main, spec.format, &mut d);
            }
        }
    }
    let config = match spec.format {
        // timesyncd.conf ships with systemd itself: not a sign that timesyncd is installed.
        Format::Timesyncd => false,
        _ => !d.files.is_empty(),
    };
    d.installed = d.unit.is_installed() || binary || config || d.running == Some(true);
    d
}

fn gather_timesyncd(root: &HostRoot, d: &mut Daemon) {
    let files = match support::systemd_config_files(root, "timesyncd.conf") {
        Ok(f) => f,
        Err(e) => {
            d.unreadable.push(e.to_string());
            return;
        }
    };
    let mut t = Timesyncd::default();
    for path in files {
        match read_optional(root, &path) {
            Ok(Some(text)) => {
                t.apply(&path, &text);
                d.files.push(path);
            }
            Ok(None) => {}
            Err(e) => d.unreadable.push(e.to_string()),
        }
    }
    for (server, file, line) in &t.ntp {
        d.sources.push((
            Source {
                kind: "NTP".into(),
                address: server.clone(),
                line: *line,
            },
            file.clone(),
        ));
    }
    if t.ntp.is_empty() {
        match &t.fallback {
            None => d.builtin_fallback = true,
            Some(list) => {
                for (server, file, line) in list {
                    d.sources.push((
                        Source {
                            kind: "FallbackNTP".into(),
                            address: server.clone(),
                            line: *line,
                        },
                        file.clone(),
                    ));
                }
            }
        }
    }
}

fn parse(format: Format, text: &str) -> DaemonFile {
    match format {
        Format::Chrony => sources::parse_chrony(text),
        Format::Ntp => sources::parse_ntp(text),
        Format::OpenNtpd | Format::Timesyncd => sources::parse_openntpd(text),
    }
}

/// Reads a daemon's main file and everything it includes, breadth first, each file once.
fn gather_daemon_files(root: &HostRoot, main: &str, format: Format, d: &mut Daemon) {
    let mut queue: Vec<String> = vec![main.to_string()];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut confdir_names: BTreeSet<String> = BTreeSet::new();
    while let Some(path) = queue.first().cloned() {
        queue.remove(0);
        if !seen.insert(path.clone()) || seen.len() > MAX_FILES {
            continue;
        }
        let text = match read_optional(root, &path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                d.unreadable.push(e.to_string());
                continue;
            }
        };
        d.files.push(path.clone());
        let parsed = parse(format, &text);
        d.sources
            .extend(parsed.sources.into_iter().map(|s| (s, path.clone())));
        for pattern in &parsed.includes {
            match glob::expand(root, pattern) {
                Ok(found) => queue.extend(found),
                Err(e) => d.unreadable.push(e.to_string()),
            }
        }
        // chrony reads `*.conf` of each confdir; a name seen in an earlier directory hides
        // the same name in later ones.
        for dir in &parsed.confdirs {
            match list_dir(root, dir, ".conf") {
                Ok(names) => {
                    for name in names {
                        if confdir_names.insert(name.clone()) {
                            queue.push(join(dir, &name));
                        }
                    }
                }
                Err(e) => d.unreadable.push(e.to_string()),
            }
        }
        for dir in &parsed.sourcedirs {
            match list_dir(root, dir, ".sources") {
                Ok(names) => queue.extend(names.iter().map(|n| join(dir, n))),
                Err(e) => d.unreadable.push(e.to_string()),
            }
        }
    }
}

fn service_outcome(daemons: &[Daemon], judgeable: bool, have_procs: bool) -> Outcome {
    let installed: Vec<&Daemon> = daemons.iter().filter(|d| d.installed).collect();
    let active: Vec<&Daemon> = installed.iter().copied().filter(|d| d.active()).collect();
    let sources: Vec<String> = daemons
        .iter()
        .flat_map(|d| d.files.iter().cloned())
        .collect();
    if installed.is_empty() && !judgeable {
        return Outcome::no_data(
            SERVICE,
            "no init system, package database or time daemon under this root: nothing to judge",
        );
    }
    if let Some(d) = active.iter().find(|d| !d.unreadable.is_empty()) {
        return Outcome::error(
            SERVICE,
            format!(
                "{}: cannot read its configuration: {}",
                d.spec.name,
                d.unreadable.join("; ")
            ),
        )
        .sources(sources);
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    if installed.is_empty() {
        offenders.push(
            Subject::new("time_daemon", "none")
                .with_reason("no time synchronisation daemon (chrony, systemd-timesyncd, ntpd, OpenNTPD) is installed"),
        );
    } else if active.is_empty() {
        for d in &installed {
            offenders.push(d.subject().with_reason(format!(
                "installed but not enabled at boot ({})",
                d.unit.word()
            )));
        }
    }
    if active.len() > 1 {
        let names: Vec<&str> = active.iter().map(|d| d.spec.name).collect();
        offenders.push(
            Subject::new("time_daemon", names.join("+")).with_reason(
                "several time daemons are enabled: they fight over the clock; keep one",
            ),
        );
    }
    for d in &installed {
        if !d.active() {
            if !active.is_empty() {
                checked.push(d.subject());
            }
            continue;
        }
        let mut reasons = Vec::new();
        if !d.has_sources() {
            reasons.push("no time source configured (server, pool, peer or refclock)".to_string());
        }
        match (d.unit.is_enabled(), d.running) {
            (true, Some(false)) => reasons.push("enabled at boot but not running".into()),
            (false, Some(true)) => reasons.push(format!(
                "running but not enabled at boot ({}): it will not start after a reboot",
                d.unit.word()
            )),
            _ => {}
        }
        if reasons.is_empty() {
            checked.push(d.subject());
        } else {
            offenders.push(d.subject().with_reason(reasons.join("; ")));
        }
    }
    let summary_pass = match active.first() {
        Some(d) => format!(
            "{} is enabled{} with {}",
            d.spec.name,
            if have_procs && d.running == Some(true) {
                " and running"
            } else {
                ""
            },
            plural(d.source_list().len(), "time source")
        ),
        None => String::new(),
    };
    let fail_summary = offenders
        .iter()
        .map(|o| format!("{}: {}", o.id, o.reason.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    let enabled: Vec<String> = active.iter().map(|d| d.spec.name.to_string()).collect();
    let source_count: usize = active.iter().map(|d| d.source_list().len()).sum();
    Outcome::judge(SERVICE, offenders, checked, summary_pass, fail_summary)
        .value("daemons_active", enabled)
        .value("time_sources", source_count)
        .sources(sources)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn synchronized_outcome(ctx: &CheckContext<'_>, daemons: &[Daemon]) -> Outcome {
    if !ctx.root.is_live() {
        return Outcome::no_data(
            SYNCHRONIZED,
            "the kernel clock state is read with adjtimex(2) on the running host only; this root is not /",
        );
    }
    let state = match clock::read_kernel_clock() {
        Ok(s) => s,
        Err(e) => return Outcome::error(SYNCHRONIZED, format!("adjtimex: {e}")),
    };
    judge_clock(
        &state,
        ctx.settings.time_sync.max_error_ms,
        daemons,
        support::looks_like_container(ctx.root),
    )
}

/// Judges a kernel clock reading.
fn judge_clock(
    state: &clock::ClockState,
    max_error_ms: u64,
    daemons: &[Daemon],
    container: bool,
) -> Outcome {
    let max_error = round1(state.maxerror_us as f64 / 1000.0);
    let est_error = round1(state.esterror_us as f64 / 1000.0);
    let clock = Subject::new("clock", "system clock")
        .fact("kernel_state", state.state_name())
        .fact("status", format!("0x{:04x}", state.status))
        .fact("offset_ms", round1(state.offset_ms()))
        .fact("max_error_ms", max_error)
        .fact("est_error_ms", est_error);
    let running: Vec<&str> = daemons
        .iter()
        .filter(|d| d.running == Some(true))
        .map(|d| d.spec.name)
        .collect();
    let outcome = if state.unsynchronised() {
        let why = if running.is_empty() {
            "no time daemon runs to discipline it"
        } else {
            "the running daemon has not synchronised it yet"
        };
        let mut reason = format!(
            "the kernel marks the clock unsynchronised ({}{}): {why}",
            state.state_name(),
            if state.status & clock::STA_UNSYNC != 0 {
                ", STA_UNSYNC"
            } else {
                ""
            }
        );
        if container {
            reason.push_str("; this is a container: the clock is the host's");
        }
        Outcome::fail(
            SYNCHRONIZED,
            format!("the system clock is not synchronised: {why}"),
        )
        .offender(clock.with_reason(reason))
    } else if state.maxerror_us
        > i64::try_from(max_error_ms.saturating_mul(1000)).unwrap_or(i64::MAX)
    {
        Outcome::fail(
            SYNCHRONIZED,
            format!("the clock error bound is {max_error} ms, above the allowed {max_error_ms} ms"),
        )
        .offender(clock.with_reason(format!(
            "error bound {max_error} ms exceeds {max_error_ms} ms"
        )))
    } else {
        Outcome::pass(
            SYNCHRONIZED,
            format!(
                "the kernel reports the clock synchronised: error bound {max_error} ms, estimated {est_error} ms"
            ),
        )
        .checked(clock)
    };
    outcome
        .value("synchronized", !state.unsynchronised())
        .value("max_error_ms", Value::Float(max_error))
        .value("est_error_ms", Value::Float(est_error))
        .value("offset_ms", Value::Float(round1(state.offset_ms())))
}

#[cfg(test)]
mod tests;
