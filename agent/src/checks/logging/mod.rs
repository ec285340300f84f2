//! Logging and audit (A.8.15, A.8.16): the kernel audit trail (auditd: installed, enabled,
//! running, rules covering identity files, sudoers and clock changes, rules locked,
//! no silent drop when the disk fills), journald's persistence and retention, remote log
//! forwarding (rsyslog, syslog-ng, systemd-journal-upload, log shippers), and how long
//! logrotate keeps the system logs.
//!
//! Decisions worth knowing:
//! - Audit rules are read from `/etc/audit/rules.d/*.rules` when that directory has any
//!   (augenrules compiles them into `audit.rules` at every start of auditd on Debian and
//!   RHEL), else from `/etc/audit/audit.rules`. The rules loaded in the kernel (`auditctl -l`)
//!   are not read: that needs a netlink socket.
//! - Only `ignore` disk actions are findings: with them auditd drops records without a
//!   trace. `suspend`, `syslog`, `single` and `halt` are policy choices reported as facts.
//! - journald without persistent storage is a finding only when no syslog daemon writes the
//!   logs to disk either.
//! - A remote destination counts when its daemon is enabled and, where the root has a
//!   process table, running. Log shippers (Filebeat, Fluent Bit, Vector…) count by their
//!   service or process; their destinations are not read.
//! - logrotate retention is `rotate` × interval (capped by `maxage`): the history that is
//!   always there, right after a rotation. Size-based rotation cannot be turned into days
//!   and is reported as such, not judged.

pub mod auditd;
pub mod logrotate;
pub mod syslog;

use std::collections::BTreeSet;

use serde::Deserialize;
use vigil_shared::{Subject, Value};

use super::support::ini::{parse_systemd_ini, parse_timespan_secs};
use super::support::pkgs::Installed;
use super::support::procs::ProcessTable;
use super::support::units::{UnitIndex, UnitState};
use super::support::{self, glob, list_dir, read_optional, round1};
use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostRoot, join};

/// `[checks.logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// `logging.audit` fails when auditd is not installed. Set to false where the kernel
    /// audit trail is deliberately not used (the result then passes and says so).
    #[serde(default = "default_true")]
    pub require_auditd: bool,
    /// Audit rules must end with `-e 2` (locked until reboot: root cannot silently turn
    /// auditing off).
    #[serde(default = "default_true")]
    pub require_immutable_rules: bool,
    /// `logging.remote` fails when no log leaves the host. Set to false where logs are
    /// collected otherwise (the result then passes and says so).
    #[serde(default = "default_true")]
    pub require_remote: bool,
    /// Shortest acceptable history, in days, of the system logs rotated by logrotate and
    /// of the journal when `MaxRetentionSec=` limits it.
    #[serde(default = "default_min_retention_days")]
    pub min_retention_days: u32,
    /// The log files whose logrotate retention is judged (host paths).
    #[serde(default = "default_retention_logs")]
    pub retention_logs: Vec<String>,
    /// Services or programs that ship logs off the host by themselves; one enabled or
    /// running counts as remote forwarding (its destination is not read).
    #[serde(default = "default_log_shippers")]
    pub log_shippers: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            require_auditd: true,
            require_immutable_rules: true,
            require_remote: true,
            min_retention_days: default_min_retention_days(),
            retention_logs: default_retention_logs(),
            log_shippers: default_log_shippers(),
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
    "0 * * * *".into()
}
fn default_min_retention_days() -> u32 {
    90
}
fn default_retention_logs() -> Vec<String> {
    [
        "/var/log/syslog",
        "/var/log/messages",
        "/var/log/auth.log",
        "/var/log/secure",
        "/var/log/kern.log",
    ]
    .map(String::from)
    .to_vec()
}
fn default_log_shippers() -> Vec<String> {
    [
        "filebeat",
        "fluent-bit",
        "td-agent-bit",
        "fluentd",
        "td-agent",
        "vector",
        "splunkd",
        "elastic-agent",
        "otelcol-contrib",
        "alloy",
        "promtail",
        "datadog-agent",
        "nxlog",
    ]
    .map(String::from)
    .to_vec()
}

const AUDIT: &str = "logging.audit";
const JOURNAL: &str = "logging.journal";
const REMOTE: &str = "logging.remote";
const RETENTION: &str = "logging.retention";

const OUTPUTS: &[Output] = &[
    Output {
        id: AUDIT,
        controls: &["A.8.15", "A.8.16"],
        description: "auditd is enabled and running, its rules record identity, sudoers and clock changes and are locked, and a full disk never drops records silently",
    },
    Output {
        id: JOURNAL,
        controls: &["A.8.15"],
        description: "Logs survive a reboot (persistent journal or a syslog daemon writing to disk) and the journal's time limit is not below the minimum retention",
    },
    Output {
        id: REMOTE,
        controls: &["A.8.15", "A.8.16"],
        description: "Logs are forwarded off the host by an enabled and running daemon (rsyslog, syslog-ng, journal-upload, a log shipper)",
    },
    Output {
        id: RETENTION,
        controls: &["A.8.15"],
        description: "logrotate keeps the system logs for at least the minimum retention",
    },
];

/// The logging and audit check.
#[derive(Debug)]
pub struct Logging;

impl Check for Logging {
    fn name(&self) -> &'static str {
        "logging"
    }

    fn description(&self) -> &'static str {
        "auditd rules and state, journald persistence, remote forwarding and log retention"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.logging.enabled,
            schedule: settings.logging.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.logging;
        let host = Host::load(ctx.root);
        let syslog = SyslogDaemons::load(ctx.root, &host);
        vec![
            audit_outcome(ctx.root, &host, settings),
            journal_outcome(ctx.root, &host, &syslog, settings),
            remote_outcome(ctx.root, &host, &syslog, settings),
            retention_outcome(ctx.root, settings),
        ]
    }
}

/// What every output needs to know about the host.
struct Host {
    units: UnitIndex,
    procs: Option<ProcessTable>,
    installed: std::sync::Arc<Installed>,
    /// True when absence of a service means "not installed" (an init system or a package
    /// database is present), rather than "nothing to look at".
    judgeable: bool,
}

impl Host {
    fn load(root: &HostRoot) -> Host {
        let units = UnitIndex::load(root);
        let installed = Installed::load(root);
        let judgeable = units.systemd || installed.is_known() || root.exists("/etc/init.d");
        Host {
            units,
            procs: ProcessTable::load(root),
            installed,
            judgeable,
        }
    }

    /// The service's enablement, whether it runs (`None`: unknown), and whether it delivers
    /// (enabled and, where visible, running; or running).
    fn service(&self, units: &[&str], process: &str) -> Service {
        let unit = self.units.state_any(units);
        let running = self.procs.as_ref().map(|p| p.runs(process));
        Service { unit, running }
    }
}

#[derive(Debug, Clone)]
struct Service {
    unit: UnitState,
    running: Option<bool>,
}

impl Service {
    fn delivers(&self) -> bool {
        match self.running {
            Some(running) => running,
            None => self.unit.is_enabled(),
        }
    }

    /// Why the service does not deliver, or `None` when it does.
    fn problem(&self, name: &str) -> Option<String> {
        match (self.unit.is_enabled(), self.running) {
            (true, Some(false)) => Some(format!("{name} is enabled but not running")),
            (false, Some(true)) => None,
            (false, _) => Some(format!(
                "{name} is not enabled at boot ({})",
                self.unit.word()
            )),
            _ => None,
        }
    }

    fn facts(&self, mut s: Subject) -> Subject {
        s = s.fact("unit", self.unit.word());
        if let Some(r) = self.running {
            s = s.fact("running", r);
        }
        s
    }
}

fn any_exists(root: &HostRoot, paths: &[&str]) -> bool {
    paths.iter().any(|p| root.exists(p))
}

// ---------------------------------------------------------------------------------------------
// auditd

const AUDIT_DISK_ACTIONS: [&str; 4] = [
    "disk_full_action",
    "disk_error_action",
    "admin_space_left_action",
    "space_left_action",
];

/// What the rules must cover: a name, the files whose writes must be recorded, the
/// syscalls that must be recorded.
const AUDIT_COVERAGE: [(&str, &[&str], &[&str]); 3] = [
    (
        "identity",
        &["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"],
        &[],
    ),
    ("sudoers", &["/etc/sudoers", "/etc/sudoers.d"], &[]),
    (
        "time_change",
        &[],
        &["adjtimex", "settimeofday", "clock_settime"],
    ),
];

fn audit_outcome(root: &HostRoot, host: &Host, settings: &Settings) -> Outcome {
    let service = host.service(&["auditd.service", "auditd"], "auditd");
    let conf_path = "/etc/audit/auditd.conf";
    let conf = match read_optional(root, conf_path) {
        Ok(c) => c,
        Err(e) => return Outcome::error(AUDIT, e),
    };
    let installed = service.unit.is_installed()
        || conf.is_some()
        || any_exists(root, &["/sbin/auditd", "/usr/sbin/auditd"])
        || host.installed.version("auditd").is_some()
        || host.installed.version("audit").is_some()
        || service.running == Some(true);
    if !installed {
        if !host.judgeable {
            return Outcome::no_data(
                AUDIT,
                "no init system, package database or auditd under this root: nothing to judge",
            );
        }
        if !settings.require_auditd {
            return Outcome::pass(
                AUDIT,
                "auditd is not installed; not required ([checks.logging] require_auditd = false)",
            )
            .value("installed", false);
        }
        return Outcome::fail(
            AUDIT,
            "auditd is not installed: kernel audit events are not recorded",
        )
        .offender(Subject::new("service", "auditd").with_reason(
            "not installed: changes to accounts, privilege use and the clock leave no audit trail",
        ))
        .value("installed", false)
        .sources(host.installed.source().map(String::from));
    }

    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut sources = Vec::new();
    match service.problem("auditd") {
        Some(p) => offenders.push(
            service
                .facts(Subject::new("service", "auditd"))
                .with_reason(p),
        ),
        None => checked.push(service.facts(Subject::new("service", "auditd"))),
    }

    if let Some(text) = &conf {
        sources.push(conf_path.to_string());
        let pairs = auditd::parse_auditd_conf(text);
        for key in AUDIT_DISK_ACTIONS {
            let Some((_, value, line)) = pairs.iter().rev().find(|(k, _, _)| k == key) else {
                continue;
            };
            let s = Subject::new("auditd_setting", key)
                .fact("value", value.as_str())
                .fact("file", format!("{conf_path}:{line}"));
            if value.eq_ignore_ascii_case("ignore") {
                offenders.push(s.with_reason(format!(
                    "{key} = {value}: audit records are dropped without a trace when the disk fills or fails"
                )));
            } else {
                checked.push(s);
            }
        }
    }

    // Rules: rules.d when it has files (augenrules), else audit.rules.
    let (rule_files, component) = match list_dir(root, "/etc/audit/rules.d", ".rules") {
        Ok(mut names) if !names.is_empty() => {
            names.sort_by(|a, b| auditd::natural_cmp(a, b));
            let files = names
                .iter()
                .map(|n| join("/etc/audit/rules.d", n))
                .collect();
            (files, true)
        }
        Ok(_) => (vec!["/etc/audit/audit.rules".to_string()], false),
        Err(e) => return Outcome::error(AUDIT, e),
    };
    let mut rules = auditd::RuleSet::default();
    for file in &rule_files {
        match read_optional(root, file) {
            Ok(Some(text)) => {
                if component {
                    rules.apply_component(file, &text);
                } else {
                    rules.apply(file, &text);
                }
                sources.push(file.clone());
            }
            Ok(None) => {}
            Err(e) => return Outcome::error(AUDIT, e),
        }
    }
    for (name, files, syscalls) in AUDIT_COVERAGE {
        let mut missing: Vec<&str> = files
            .iter()
            .copied()
            .filter(|f| !rules.watches_writes(f))
            .collect();
        let recorded = rules.syscalls_recorded(syscalls);
        missing.extend(syscalls.iter().copied().filter(|s| !recorded.contains(s)));
        let s = Subject::new("audit_rule", name);
        if missing.is_empty() {
            checked.push(s);
        } else {
            let what = if syscalls.is_empty() {
                "no rule records writes to"
            } else {
                "no rule records the syscalls"
            };
            offenders.push(
                s.with_reason(format!("{what} {}", missing.join(", ")))
                    .fact(
                        "missing",
                        missing.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                    ),
            );
        }
    }
    match rules.enable {
        Some(0) => offenders.push(
            Subject::new("audit_rule", "enabled")
                .with_reason("the rules turn auditing off (-e 0)"),
        ),
        Some(2) => checked.push(Subject::new("audit_rule", "immutable")),
        _ if settings.require_immutable_rules => offenders.push(
            Subject::new("audit_rule", "immutable").with_reason(
                "the rules are not locked with -e 2: root can change or stop auditing without a reboot",
            ),
        ),
        _ => {}
    }
    for (file, line, why) in &rules.bad_lines {
        offenders.push(
            Subject::new("audit_rule", format!("{file}:{line}")).with_reason(format!(
                "auditctl rejects this line ({why}) and stops loading the rules there"
            )),
        );
    }
    let rule_count = rules.rules.len();
    let fail = offenders
        .iter()
        .map(|o| format!("{}: {}", o.id, o.reason.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    Outcome::judge(
        AUDIT,
        offenders,
        checked,
        format!(
            "auditd is enabled{} with {rule_count} rules covering identity files, sudoers and clock changes{}",
            if service.running == Some(true) { " and running" } else { "" },
            if rules.enable == Some(2) { ", locked" } else { "" }
        ),
        fail,
    )
    .value("installed", true)
    .value("rules", rule_count)
    .value(
        "rules_locked",
        rules.enable == Some(2),
    )
    .sources(sources)
}

// ---------------------------------------------------------------------------------------------
// syslog daemons

/// rsyslog and syslog-ng: their state and the remote destinations of their files.
struct SyslogDaemons {
    daemons: Vec<SyslogDaemon>,
}

struct SyslogDaemon {
    name: &'static str,
    installed: bool,
    service: Service,
    forwards: Vec<(syslog::Forward, String)>,
    files: Vec<String>,
    unreadable: Vec<String>,
}

/// Files read per daemon at most.
const MAX_FILES: usize = 512;

impl SyslogDaemons {
    fn load(root: &HostRoot, host: &Host) -> SyslogDaemons {
        let mut daemons = Vec::new();
        for (name, units, process, main, binaries) in [
            (
                "rsyslog",
                &["rsyslog.service", "rsyslog"][..],
                "rsyslogd",
                "/etc/rsyslog.conf",
                &["/usr/sbin/rsyslogd", "/sbin/rsyslogd"][..],
            ),
            (
                "syslog-ng",
                &["syslog-ng.service", "syslog-ng"][..],
                "syslog-ng",
                "/etc/syslog-ng/syslog-ng.conf",
                &["/usr/sbin/syslog-ng", "/sbin/syslog-ng"][..],
            ),
        ] {
            let service = host.service(units, process);
            let mut d = SyslogDaemon {
                name,
                installed: false,
                service,
                forwards: Vec::new(),
                files: Vec::new(),
                unreadable: Vec::new(),
            };
            read_syslog_files(root, name, main, &mut d);
            d.installed = d.service.unit.is_installed()
                || !d.files.is_empty()
                || any_exists(root, binaries)
                || d.service.running == Some(true);
            daemons.push(d);
        }
        SyslogDaemons { daemons }
    }

    /// The daemons that write logs now: enabled and running where that is visible.
    fn delivering(&self) -> Vec<&SyslogDaemon> {
        self.daemons
            .iter()
            .filter(|d| d.installed && d.service.delivers())
            .collect()
    }
}

fn read_syslog_files(root: &HostRoot, name: &str, main: &str, d: &mut SyslogDaemon) {
    let mut queue = vec![main.to_string()];
    let mut seen = BTreeSet::new();
    let mut named: Vec<(String, syslog::Forward, String)> = Vec::new();
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    while !queue.is_empty() {
        let path = queue.remove(0);
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
        let parsed = if name == "rsyslog" {
            syslog::parse_rsyslog(&text)
        } else {
            syslog::parse_syslog_ng(&text)
        };
        d.forwards
            .extend(parsed.forwards.into_iter().map(|f| (f, path.clone())));
        named.extend(parsed.named.into_iter().map(|(n, f)| (n, f, path.clone())));
        referenced.extend(parsed.referenced);
        for include in parsed.includes {
            // syslog-ng resolves relative names against its configuration directory and
            // its include path; a directory includes every file in it.
            let mut candidates = Vec::new();
            if include.starts_with('/') {
                candidates.push(include.clone());
            } else {
                candidates.push(format!("/etc/syslog-ng/{include}"));
                candidates.push(format!("/usr/share/syslog-ng/include/{include}"));
            }
            for c in candidates {
                let pattern = if c.ends_with('/')
                    || (!glob::has_magic(&c) && root.metadata(&c).is_ok_and(|m| m.is_dir()))
                {
                    format!("{}/*", c.trim_end_matches('/'))
                } else {
                    c
                };
                match glob::expand(root, &pattern) {
                    Ok(found) => queue.extend(
                        found
                            .into_iter()
                            .filter(|p| !p.ends_with('~') && !p.contains(".dpkg-")),
                    ),
                    Err(e) => d.unreadable.push(e.to_string()),
                }
            }
        }
    }
    for (n, f, file) in named {
        if referenced.contains(&n) {
            d.forwards.push((f, file));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// journald

fn journal_outcome(
    root: &HostRoot,
    host: &Host,
    syslog: &SyslogDaemons,
    settings: &Settings,
) -> Outcome {
    let present = host.units.state("systemd-journald.service").is_installed()
        || any_exists(
            root,
            &[
                "/lib/systemd/systemd-journald",
                "/usr/lib/systemd/systemd-journald",
            ],
        );
    if !present {
        return Outcome::no_data(JOURNAL, "no systemd-journald under this root");
    }
    let files = match support::systemd_config_files(root, "journald.conf") {
        Ok(f) => f,
        Err(e) => return Outcome::error(JOURNAL, e),
    };
    let mut storage = ("auto".to_string(), String::from("default"));
    let mut max_retention: Option<(String, String)> = None;
    let mut system_max_use: Option<String> = None;
    let mut sources = Vec::new();
    for path in &files {
        let text = match read_optional(root, path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => return Outcome::error(JOURNAL, e),
        };
        sources.push(path.clone());
        for a in parse_systemd_ini(&text) {
            if a.section != "Journal" {
                continue;
            }
            let at = format!("{path}:{}", a.line);
            match a.key.as_str() {
                "Storage" => storage = (a.value.to_ascii_lowercase(), at),
                "MaxRetentionSec" => max_retention = Some((a.value, at)),
                "SystemMaxUse" => system_max_use = Some(a.value),
                _ => {}
            }
        }
    }
    let journal_dir = root.metadata("/var/log/journal").is_ok_and(|m| m.is_dir());
    let persistent = storage.0 == "persistent" || (storage.0 == "auto" && journal_dir);
    let writers: Vec<&str> = syslog.delivering().iter().map(|d| d.name).collect();
    let mut subject = Subject::new("journald", "storage")
        .fact("storage", storage.0.as_str())
        .fact("set_at", storage.1.as_str())
        .fact("var_log_journal", journal_dir)
        .fact("persistent", persistent);
    if let Some(max) = &system_max_use {
        subject = subject.fact("system_max_use", max.as_str());
    }
    let retention_days = max_retention
        .as_ref()
        .and_then(|(v, _)| parse_timespan_secs(v, 1.0))
        .filter(|s| *s > 0.0)
        .map(|s| round1(s / 86_400.0));
    if let Some(days) = retention_days {
        subject = subject.fact("max_retention_days", days);
    }
    let mut offenders = Vec::new();
    let storage_text = if storage.0 == "auto" {
        format!(
            "Storage=auto {} /var/log/journal",
            if journal_dir { "with" } else { "without" }
        )
    } else {
        format!("Storage={}", storage.0)
    };
    if !persistent && writers.is_empty() {
        offenders.push(subject.clone().with_reason(format!(
            "{storage_text}: the journal is kept in memory only and no syslog daemon writes logs to disk, so logs are lost at every reboot"
        )));
    }
    if persistent
        && let (Some(days), Some((value, at))) = (retention_days, &max_retention)
        && days < f64::from(settings.min_retention_days)
    {
        offenders.push(
            Subject::new("journald", "MaxRetentionSec")
                .with_reason(format!(
                    "MaxRetentionSec={value} ({at}) deletes journal entries after {days} days, below the {}-day minimum",
                    settings.min_retention_days
                ))
                .fact("max_retention_days", days),
        );
    }
    let pass = if persistent {
        format!("journald keeps logs on disk ({storage_text})")
    } else {
        format!(
            "journald keeps logs in memory only ({storage_text}); {} writes them to disk",
            writers.join(" and ")
        )
    };
    let fail = offenders
        .iter()
        .map(|o| o.reason.clone().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("; ");
    let checked = if offenders.is_empty() {
        vec![subject]
    } else {
        Vec::new()
    };
    let mut outcome = Outcome::judge(JOURNAL, offenders, checked, pass, fail)
        .value("persistent", persistent)
        .sources(sources);
    if let Some(days) = retention_days {
        outcome = outcome.value("max_retention_days", Value::Float(days));
    }
    outcome
}

// ---------------------------------------------------------------------------------------------
// remote forwarding

fn remote_outcome(
    root: &HostRoot,
    host: &Host,
    syslog: &SyslogDaemons,
    settings: &Settings,
) -> Outcome {
    let mut active: Vec<Subject> = Vec::new();
    let mut inactive: Vec<Subject> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    for d in &syslog.daemons {
        sources.extend(d.files.iter().cloned());
        if !d.unreadable.is_empty() && d.installed {
            return Outcome::error(REMOTE, format!("{}: {}", d.name, d.unreadable.join("; ")))
                .sources(sources);
        }
        for (f, file) in &d.forwards {
            let mut s = d
                .service
                .facts(Subject::new("log_destination", f.target.as_str()))
                .fact("daemon", d.name)
                .fact("method", f.method.as_str())
                .fact("protocol", f.protocol.as_str())
                .fact("file", format!("{file}:{}", f.line));
            if f.protocol == "udp" {
                s = s.fact("note", "UDP: messages can be lost without notice");
            }
            if d.service.delivers() {
                active.push(s);
            } else {
                let why = d
                    .service
                    .problem(d.name)
                    .unwrap_or_else(|| format!("{} does not run", d.name));
                inactive.push(s.with_reason(format!("configured, but {why}")));
            }
        }
    }

    // systemd-journal-upload: URL= in its configuration and the unit enabled.
    let upload = host.service(
        &["systemd-journal-upload.service"],
        "systemd-journal-upload",
    );
    if upload.unit.is_installed() {
        let files = support::systemd_config_files(root, "journal-upload.conf").unwrap_or_default();
        let mut url: Option<(String, String)> = None;
        for path in files {
            if let Ok(Some(text)) = read_optional(root, &path) {
                for a in parse_systemd_ini(&text) {
                    if a.section == "Upload" && a.key == "URL" && !a.value.is_empty() {
                        url = Some((a.value, format!("{path}:{}", a.line)));
                    }
                }
                sources.push(path);
            }
        }
        if let Some((url, at)) = url {
            let s = upload
                .facts(Subject::new("log_destination", url))
                .fact("daemon", "systemd-journal-upload")
                .fact("file", at);
            if upload.delivers() {
                active.push(s);
            } else {
                let why = upload
                    .problem("systemd-journal-upload")
                    .unwrap_or_else(|| "it does not run".into());
                inactive.push(s.with_reason(format!("configured, but {why}")));
            }
        }
    }

    for shipper in &settings.log_shippers {
        let service = host.service(&[&format!("{shipper}.service"), shipper], shipper);
        if service.unit.is_enabled() || service.running == Some(true) {
            let s = service
                .facts(Subject::new("log_shipper", shipper.as_str()))
                .fact("note", "a log shipper; its destination is not read");
            if service.delivers() {
                active.push(s);
            } else if let Some(why) = service.problem(shipper) {
                inactive.push(s.with_reason(why));
            }
        }
    }

    let values = |o: Outcome, n: usize| o.value("destinations", n);
    if !active.is_empty() {
        let names: Vec<String> = active.iter().map(|s| s.id.clone()).collect();
        let n = active.len();
        let mut o = Outcome::pass(
            REMOTE,
            format!("logs are forwarded to {}", names.join(", ")),
        );
        o.evidence.checked = active;
        o.evidence.checked.extend(inactive.into_iter().map(|mut s| {
            s.reason = None;
            s
        }));
        return values(o.sources(sources), n);
    }
    let installed_any = syslog.daemons.iter().any(|d| d.installed);
    if !host.judgeable && !installed_any && inactive.is_empty() {
        return Outcome::no_data(
            REMOTE,
            "no init system, package database or syslog daemon under this root: nothing to judge",
        );
    }
    if !settings.require_remote && inactive.is_empty() {
        return values(
            Outcome::pass(
                REMOTE,
                "no log leaves this host; not required ([checks.logging] require_remote = false)",
            )
            .sources(sources),
            0,
        );
    }
    let mut offenders = inactive;
    if offenders.is_empty() {
        offenders.push(Subject::new("log_destination", "none").with_reason(
            "no remote log destination: logs stay on this host, where whoever gains root can erase them",
        ));
    }
    let fail = offenders
        .iter()
        .map(|o| format!("{}: {}", o.id, o.reason.clone().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    values(
        Outcome::judge(REMOTE, offenders, Vec::new(), "", fail).sources(sources),
        0,
    )
}

// ---------------------------------------------------------------------------------------------
// logrotate retention

struct RotateBlock {
    patterns: Vec<String>,
    policy: logrotate::Policy,
    at: String,
}

/// Reads logrotate's configuration in order, following includes where they appear (the
/// defaults set so far apply to the blocks of an included file, and its own defaults to what
/// follows), and returns each block with the policy in force for it.
fn read_logrotate(
    root: &HostRoot,
) -> Result<(Vec<RotateBlock>, Vec<String>), crate::hostroot::HostError> {
    let mut reader = RotateReader {
        root,
        state: logrotate::Policy::default(),
        blocks: Vec::new(),
        files: Vec::new(),
        seen: BTreeSet::new(),
    };
    reader.read("/etc/logrotate.conf", 0)?;
    Ok((reader.blocks, reader.files))
}

struct RotateReader<'a> {
    root: &'a HostRoot,
    state: logrotate::Policy,
    blocks: Vec<RotateBlock>,
    files: Vec<String>,
    seen: BTreeSet<String>,
}

impl RotateReader<'_> {
    fn read(&mut self, path: &str, depth: usize) -> Result<(), crate::hostroot::HostError> {
        if depth > 8 || !self.seen.insert(path.to_string()) || self.seen.len() > MAX_FILES {
            return Ok(());
        }
        let Some(text) = read_optional(self.root, path)? else {
            return Ok(());
        };
        self.files.push(path.to_string());
        for item in logrotate::parse(&text) {
            match item {
                logrotate::Item::Global(d) => self.state.apply(&d),
                logrotate::Item::Block {
                    patterns,
                    directives,
                    line,
                } => {
                    let mut policy = self.state.clone();
                    for d in &directives {
                        policy.apply(d);
                    }
                    self.blocks.push(RotateBlock {
                        patterns,
                        policy,
                        at: format!("{path}:{line}"),
                    });
                }
                logrotate::Item::Include(target, _) => {
                    // A directory contributes its files in name order, without
                    // package-manager leftovers (logrotate's tabooext).
                    let targets = if self.root.metadata(&target).is_ok_and(|m| m.is_dir()) {
                        list_dir(self.root, &target, "")?
                            .iter()
                            .map(|n| join(&target, n))
                            .collect()
                    } else {
                        glob::expand(self.root, &target)?
                    };
                    for t in targets {
                        self.read(&t, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn retention_outcome(root: &HostRoot, settings: &Settings) -> Outcome {
    let (blocks, files) = match read_logrotate(root) {
        Ok(r) => r,
        Err(e) => return Outcome::error(RETENTION, e),
    };
    let min = f64::from(settings.min_retention_days);
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut shortest: Option<f64> = None;
    for log in &settings.retention_logs {
        let block = blocks.iter().find(|b| {
            b.patterns
                .iter()
                .any(|p| logrotate::pattern_matches(p, log))
        });
        let exists = root.exists(log);
        let s = Subject::new("log_file", log.as_str()).fact("exists", exists);
        match block {
            Some(b) => {
                let s = s
                    .fact("rotation", b.policy.describe())
                    .fact("file", b.at.as_str());
                match b.policy.retention_days() {
                    None => checked.push(s.fact(
                        "note",
                        "rotated by size: the history kept depends on the log volume",
                    )),
                    Some(days) => {
                        let shown = if days.is_finite() {
                            Value::Float(round1(days))
                        } else {
                            Value::Text("unlimited".into())
                        };
                        let s = s.fact("retention_days", shown);
                        if days.is_finite() {
                            shortest = Some(shortest.map_or(days, |m: f64| m.min(days)));
                        }
                        if days < min {
                            offenders.push(s.with_reason(format!(
                                "{}: about {} days kept, below the {}-day minimum",
                                b.policy.describe(),
                                round1(days),
                                settings.min_retention_days
                            )));
                        } else {
                            checked.push(s);
                        }
                    }
                }
            }
            None if exists => checked.push(s.fact(
                "note",
                "not rotated by logrotate: kept until something else removes it",
            )),
            None => {}
        }
    }
    if offenders.is_empty() && checked.is_empty() {
        return Outcome::no_data(
            RETENTION,
            "none of the logs in [checks.logging] retention_logs exists or is rotated by logrotate here",
        )
        .sources(files);
    }
    let fail = format!(
        "{} kept for less than {} days: {}",
        if offenders.len() == 1 {
            "1 log is"
        } else {
            "logs are"
        },
        settings.min_retention_days,
        offenders
            .iter()
            .map(|o| o.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let pass = format!(
        "the system logs are kept for at least {} days",
        settings.min_retention_days
    );
    let mut outcome = Outcome::judge(RETENTION, offenders, checked, pass, fail)
        .value("min_retention_days", settings.min_retention_days)
        .sources(files);
    if let Some(s) = shortest {
        outcome = outcome.value("shortest_retention_days", Value::Float(round1(s)));
    }
    outcome
}

#[cfg(test)]
mod tests;
