//! Host firewall (A.8.20, A.8.22): whether inbound traffic is denied by default, for IPv4 and
//! IPv6, and which ports are accepted from any source — from nftables, iptables (Debian
//! `iptables-persistent`, RHEL `/etc/sysconfig/iptables`), ufw or firewalld.
//!
//! Decisions worth knowing:
//! - On the running host (root `/`) with `live_ruleset = true` the kernel's ruleset is read
//!   with `nft list ruleset` (or `iptables-save`/`ip6tables-save` where nft is absent) through
//!   an injectable runner: argument lists, clean environment, a timeout. It is the truth and
//!   the configuration is only reported beside it. On any other root no command runs (it would
//!   show this machine's ruleset, not the root's), and the configuration is judged.
//! - A configuration counts only when it is applied at boot: its systemd unit is enabled
//!   (linked from a `*.wants` directory under `/etc/systemd/system`, not masked), or for ufw
//!   `ENABLED=yes`. A root without `/etc/systemd/system` is judged as if enabled.
//! - Default deny means a drop/reject policy on an input base chain, or an unconditional final
//!   drop/reject that every packet reaches. An unconditional accept before it undoes it.
//!   Rules are reduced to a model (source, interface, state, protocol, ports, verdict, jumps);
//!   a rule with a condition the model does not understand is neither an opening nor a deny.
//! - An opening is an accept for new connections from any source address on any interface but
//!   loopback. Interface- or source-restricted accepts are not openings to the world.
//! - IPv6 must be filtered too unless the running kernel has no IPv6.

mod frontends;
mod iptables;
mod model;
mod nft;
pub mod runner;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use vigil_shared::Subject;

use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::HostRoot;
use model::{Family, FamilyVerdict, Open, Ruleset};
use runner::{CommandRunner, SystemRunner};

/// `[checks.firewall]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// On the running host, read the kernel's ruleset with `nft list ruleset` /
    /// `iptables-save` (never on another root).
    #[serde(default = "default_true")]
    pub live_ruleset: bool,
    /// Deadline for each of those commands, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub command_timeout_ms: u64,
    /// Ports that may be open to the world, as `port/protocol` (`22/tcp`, `8000-8100/tcp`).
    #[serde(default = "default_allowed_open_ports")]
    pub allowed_open_ports: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            live_ruleset: default_true(),
            command_timeout_ms: default_timeout_ms(),
            allowed_open_ports: default_allowed_open_ports(),
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
    "15 * * * *".into()
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_allowed_open_ports() -> Vec<String> {
    vec!["22/tcp".into()]
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "firewall.default_deny",
        controls: &["A.8.20", "A.8.22"],
        description: "An enabled host firewall denies inbound IPv4 and IPv6 traffic by default",
    },
    Output {
        id: "firewall.open_ports",
        controls: &["A.8.20", "A.8.22"],
        description: "Ports the firewall accepts from any source, against the allowed list",
    },
];

const DENY_ID: &str = "firewall.default_deny";
const OPEN_ID: &str = "firewall.open_ports";

/// The firewall check, with the runner it uses for live rulesets.
#[derive(Debug, Clone)]
pub struct Firewall {
    runner: Arc<dyn CommandRunner>,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall {
            runner: Arc::new(SystemRunner),
        }
    }
}

impl Firewall {
    /// A firewall check that runs commands through `runner` (tests inject a fake).
    pub fn with_runner(runner: Arc<dyn CommandRunner>) -> Self {
        Firewall { runner }
    }
}

impl Check for Firewall {
    fn name(&self) -> &'static str {
        "firewall"
    }

    fn description(&self) -> &'static str {
        "default-deny inbound filtering and ports open to the world (nftables, iptables, ufw, firewalld)"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.firewall.enabled,
            schedule: settings.firewall.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.firewall;
        let gathered = gather(ctx.root, settings, self.runner.as_ref());
        vec![
            default_deny(ctx.root, &gathered),
            open_ports(&gathered, settings),
        ]
    }
}

/// One source of truth about the filter.
#[derive(Debug, Clone)]
struct View {
    /// `nftables`, `iptables`, `ufw`, `firewalld`, with `(running)` for the live ruleset.
    backend: String,
    sources: Vec<String>,
    /// `None`: applied; `Some(reason)`: configured but not applied at boot.
    not_applied: Option<String>,
    v4: FamilyVerdict,
    v6: FamilyVerdict,
}

#[derive(Debug, Default)]
struct Gathered {
    views: Vec<View>,
    live: bool,
    problems: Vec<String>,
    ipv6: bool,
}

fn no_filter() -> FamilyVerdict {
    FamilyVerdict {
        deny: None,
        accept_all: None,
        open: Vec::new(),
    }
}

fn gather(root: &HostRoot, settings: &Settings, runner: &dyn CommandRunner) -> Gathered {
    let mut g = Gathered {
        ipv6: !(root.is_live() || root.exists("/proc/sys/kernel/osrelease"))
            || root.exists("/proc/sys/net/ipv6"),
        ..Gathered::default()
    };
    if root.is_live() && settings.live_ruleset {
        let timeout = Duration::from_millis(settings.command_timeout_ms);
        if let Some(view) = live_view(root, runner, timeout, &mut g.problems) {
            g.live = true;
            g.views.push(view);
        }
    }
    let units = EnabledUnits::read(root);
    let mut config = Vec::new();
    for path in ["/etc/nftables.conf", "/etc/sysconfig/nftables.conf"] {
        if root.exists(path) {
            let mut sources = Vec::new();
            let tokens = nft::load_tokens(root, path, &mut sources, &mut g.problems);
            let ruleset = nft::parse_ruleset(&tokens);
            config.push(view_of(
                "nftables",
                sources,
                &ruleset,
                units.state("nftables.service"),
            ));
            break;
        }
    }
    for (v4_path, v6_path, unit) in [
        (
            "/etc/iptables/rules.v4",
            "/etc/iptables/rules.v6",
            "netfilter-persistent.service",
        ),
        (
            "/etc/sysconfig/iptables",
            "/etc/sysconfig/ip6tables",
            "iptables.service",
        ),
    ] {
        if !(root.exists(v4_path) || root.exists(v6_path)) {
            continue;
        }
        let mut sources = Vec::new();
        let mut v4 = no_filter();
        let mut v6 = no_filter();
        if let Ok(text) = root.read_to_string(v4_path) {
            sources.push(v4_path.to_string());
            v4 = model::evaluate(
                &iptables::parse_iptables_save(&text, v4_path, Family::V4),
                Family::V4,
            );
        }
        if let Ok(text) = root.read_to_string(v6_path) {
            sources.push(v6_path.to_string());
            v6 = model::evaluate(
                &iptables::parse_iptables_save(&text, v6_path, Family::V6),
                Family::V6,
            );
        }
        config.push(View {
            backend: "iptables".into(),
            sources,
            not_applied: units.state(unit),
            v4,
            v6,
        });
    }
    if let Some(view) = ufw_view(root, &units) {
        config.push(view);
    }
    if let Some(view) = firewalld_view(root, &units) {
        config.push(view);
    }
    if g.live {
        // The running ruleset decides; configured views are reported as not deciding.
        for mut v in config {
            v.not_applied
                .get_or_insert_with(|| "the running ruleset was read instead".into());
            g.views.push(v);
        }
    } else {
        g.views.extend(config);
    }
    g
}

fn view_of(
    backend: &str,
    sources: Vec<String>,
    ruleset: &Ruleset,
    not_applied: Option<String>,
) -> View {
    View {
        backend: backend.into(),
        sources,
        not_applied,
        v4: model::evaluate(ruleset, Family::V4),
        v6: model::evaluate(ruleset, Family::V6),
    }
}

fn live_view(
    root: &HostRoot,
    runner: &dyn CommandRunner,
    timeout: Duration,
    problems: &mut Vec<String>,
) -> Option<View> {
    if let Some(nft) = ["/usr/sbin/nft", "/sbin/nft"]
        .iter()
        .find(|p| root.exists(p))
    {
        match runner.run(nft, &["list", "ruleset"], timeout) {
            Ok(text) => {
                let tokens = nft::tokenize(&text, "nft list ruleset");
                let ruleset = nft::parse_ruleset(&tokens);
                return Some(view_of(
                    "nftables (running)",
                    vec![format!("{nft} list ruleset")],
                    &ruleset,
                    None,
                ));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    let save4 = ["/usr/sbin/iptables-save", "/sbin/iptables-save"]
        .iter()
        .find(|p| root.exists(p))?;
    let text4 = match runner.run(save4, &[], timeout) {
        Ok(t) => t,
        Err(e) => {
            problems.push(e.to_string());
            return None;
        }
    };
    let mut sources = vec![(*save4).to_string()];
    let v4 = model::evaluate(
        &iptables::parse_iptables_save(&text4, save4, Family::V4),
        Family::V4,
    );
    let mut v6 = no_filter();
    if let Some(save6) = ["/usr/sbin/ip6tables-save", "/sbin/ip6tables-save"]
        .iter()
        .find(|p| root.exists(p))
    {
        match runner.run(save6, &[], timeout) {
            Ok(text6) => {
                sources.push((*save6).to_string());
                v6 = model::evaluate(
                    &iptables::parse_iptables_save(&text6, save6, Family::V6),
                    Family::V6,
                );
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    Some(View {
        backend: "iptables (running)".into(),
        sources,
        not_applied: None,
        v4,
        v6,
    })
}

/// systemd units enabled at boot, from the `*.wants` links under `/etc/systemd/system`.
struct EnabledUnits {
    systemd: bool,
    wanted: Vec<String>,
    masked: Vec<String>,
}

impl EnabledUnits {
    fn read(root: &HostRoot) -> Self {
        let dir = "/etc/systemd/system";
        let Ok(names) = root.read_dir(dir) else {
            return EnabledUnits {
                systemd: false,
                wanted: Vec::new(),
                masked: Vec::new(),
            };
        };
        let mut wanted = Vec::new();
        let mut masked = Vec::new();
        for name in names {
            let path = format!("{dir}/{name}");
            if name.ends_with(".wants") {
                wanted.extend(root.read_dir(&path).unwrap_or_default());
            } else if root.read_link(&path).is_ok_and(|t| t == "/dev/null") {
                masked.push(name);
            }
        }
        EnabledUnits {
            systemd: true,
            wanted,
            masked,
        }
    }

    /// `None` when the unit runs at boot, else why not.
    fn state(&self, unit: &str) -> Option<String> {
        if !self.systemd {
            return None;
        }
        if self.masked.iter().any(|m| m == unit) {
            return Some(format!("{unit} is masked"));
        }
        if self.wanted.iter().any(|w| w == unit) {
            None
        } else {
            Some(format!(
                "{unit} is not enabled: the rules are not loaded at boot"
            ))
        }
    }
}

fn ufw_view(root: &HostRoot, units: &EnabledUnits) -> Option<View> {
    let conf = root.read_to_string("/etc/ufw/ufw.conf").ok()?;
    let mut sources = vec!["/etc/ufw/ufw.conf".to_string()];
    let enabled = frontends::parse_shell_vars(&conf)
        .get("ENABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let defaults = root
        .read_to_string("/etc/default/ufw")
        .map(|t| {
            sources.push("/etc/default/ufw".into());
            frontends::parse_shell_vars(&t)
        })
        .unwrap_or_default();
    let policy = defaults
        .get("DEFAULT_INPUT_POLICY")
        .cloned()
        .unwrap_or_else(|| "DROP".into());
    let ipv6 = defaults
        .get("IPV6")
        .is_none_or(|v| v.eq_ignore_ascii_case("yes"));
    let deny = (policy != "ACCEPT")
        .then(|| format!("DEFAULT_INPUT_POLICY=\"{policy}\" (/etc/default/ufw)"));
    let mut opens = |file: &str| -> Vec<Open> {
        match root.read_to_string(file) {
            Ok(text) => {
                sources.push(file.to_string());
                frontends::parse_ufw_tuples(&text)
                    .iter()
                    .flat_map(|t| frontends::ufw_open(t, file))
                    .collect()
            }
            Err(_) => Vec::new(),
        }
    };
    let v4_open = opens("/etc/ufw/user.rules");
    let v6_open = opens("/etc/ufw/user6.rules");
    let not_applied = if !enabled {
        Some("ufw.conf has ENABLED=no: ufw does not start".to_string())
    } else {
        units
            .masked
            .iter()
            .any(|m| m == "ufw.service")
            .then(|| "ufw.service is masked".to_string())
    };
    Some(View {
        backend: "ufw".into(),
        sources,
        not_applied,
        v4: FamilyVerdict {
            deny: deny.clone(),
            accept_all: None,
            open: v4_open,
        },
        v6: if ipv6 {
            FamilyVerdict {
                deny,
                accept_all: None,
                open: v6_open,
            }
        } else {
            no_filter()
        },
    })
}

fn firewalld_view(root: &HostRoot, units: &EnabledUnits) -> Option<View> {
    let conf_path = "/etc/firewalld/firewalld.conf";
    let installed = root.exists(conf_path) || root.exists("/usr/lib/firewalld");
    if !installed {
        return None;
    }
    let mut sources = Vec::new();
    let default_zone = root
        .read_to_string(conf_path)
        .map(|t| {
            sources.push(conf_path.to_string());
            frontends::parse_shell_vars(&t)
        })
        .unwrap_or_default()
        .get("DefaultZone")
        .cloned()
        .unwrap_or_else(|| "public".into());
    let zone_text = ["/etc/firewalld/zones", "/usr/lib/firewalld/zones"]
        .iter()
        .map(|d| format!("{d}/{default_zone}.xml"))
        .find_map(|p| root.read_to_string(&p).ok().map(|t| (p, t)));
    let zone = match zone_text {
        Some((path, text)) => {
            sources.push(path);
            frontends::parse_zone(&text)
        }
        // firewalld's built-in public zone, for roots without the zone files.
        None => frontends::Zone {
            target: "default".into(),
            services: vec!["ssh".into(), "dhcpv6-client".into()],
            ..frontends::Zone::default()
        },
    };
    let location = format!("firewalld zone {default_zone}");
    let deny = match zone.target.as_str() {
        "ACCEPT" => None,
        t => Some(format!("zone {default_zone} target {t}")),
    };
    let accept_all = (zone.target == "ACCEPT").then(|| location.clone());
    let mut open = Vec::new();
    for service in &zone.services {
        let from_file = ["/etc/firewalld/services", "/usr/lib/firewalld/services"]
            .iter()
            .map(|d| format!("{d}/{service}.xml"))
            .find_map(|p| root.read_to_string(&p).ok())
            .map(|t| frontends::parse_service(&t));
        let ports: Vec<(String, String)> = match from_file {
            Some(p) => p,
            None => frontends::builtin_service(service)
                .map(|v| {
                    v.into_iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect()
                })
                .unwrap_or_else(|| vec![(format!("service {service}"), "any".to_string())]),
        };
        open.extend(ports.into_iter().map(|(port, protocol)| Open {
            protocol,
            port,
            location: format!("{location}, service {service}"),
        }));
    }
    open.extend(zone.ports.iter().map(|(port, protocol)| Open {
        protocol: protocol.clone(),
        port: port.clone(),
        location: location.clone(),
    }));
    let verdict = FamilyVerdict {
        deny,
        accept_all,
        open,
    };
    let unit_state = units.state("firewalld.service").filter(|_| {
        !units
            .wanted
            .iter()
            .any(|w| w == "dbus-org.fedoraproject.FirewallD1.service")
    });
    Some(View {
        backend: "firewalld".into(),
        sources,
        not_applied: unit_state,
        v4: verdict.clone(),
        v6: verdict,
    })
}

fn all_sources(g: &Gathered) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in &g.views {
        for s in &v.sources {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
    }
    out
}

/// The deny of the first applied view that has one for the family, and no accept-all.
fn family_state(
    g: &Gathered,
    pick: fn(&View) -> &FamilyVerdict,
) -> (Option<(&View, String)>, Vec<String>) {
    let mut problems = Vec::new();
    let mut deciding = None;
    for v in g.views.iter().filter(|v| v.not_applied.is_none()) {
        let verdict = pick(v);
        if let Some(loc) = &verdict.accept_all {
            problems.push(format!(
                "{}: an unconditional accept ({loc}) lets everything in",
                v.backend
            ));
            continue;
        }
        match &verdict.deny {
            Some(how) if deciding.is_none() => {
                deciding = Some((v, format!("{}: {how}", v.backend)))
            }
            Some(_) => {}
            None => problems.push(format!("{}: no default deny on input", v.backend)),
        }
    }
    (deciding, problems)
}

fn is_installed_system(root: &HostRoot) -> bool {
    root.exists("/etc/os-release") || root.exists("/usr/lib/os-release")
}

fn default_deny(root: &HostRoot, g: &Gathered) -> Outcome {
    if g.views.is_empty() {
        if !is_installed_system(root) {
            return Outcome::no_data(
                DENY_ID,
                "no firewall configuration and no os-release under this root",
            );
        }
        let mut outcome = Outcome::fail(
            DENY_ID,
            "no host firewall is installed or configured (no nftables, iptables, ufw or firewalld configuration)",
        )
        .offender(Subject::new("firewall", "input").with_reason(
            "nothing filters inbound traffic: no nftables.conf, iptables rules, ufw or firewalld configuration",
        ))
        .value("default_deny_ipv4", false)
        .value("default_deny_ipv6", false);
        if !g.problems.is_empty() {
            outcome = outcome.value("problems", g.problems.clone());
        }
        return outcome;
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    for v in &g.views {
        let mut s = Subject::new("firewall_backend", v.backend.as_str())
            .fact("applied", v.not_applied.is_none())
            .fact(
                "ipv4_default_deny",
                v.v4.deny.is_some() && v.v4.accept_all.is_none(),
            )
            .fact(
                "ipv6_default_deny",
                v.v6.deny.is_some() && v.v6.accept_all.is_none(),
            );
        if let Some(reason) = &v.not_applied {
            s = s.fact("not_applied", reason.as_str());
        }
        checked.push(s);
    }
    let any_applied = g.views.iter().any(|v| v.not_applied.is_none());
    let (v4, v4_problems) = family_state(g, |v| &v.v4);
    let (v6, v6_problems) = family_state(g, |v| &v.v6);
    let describe = |problems: &[String]| -> String {
        if !any_applied {
            let reasons: Vec<String> = g
                .views
                .iter()
                .filter_map(|v| {
                    v.not_applied
                        .as_ref()
                        .map(|r| format!("{}: {r}", v.backend))
                })
                .collect();
            format!(
                "no firewall configuration is applied at boot ({})",
                reasons.join("; ")
            )
        } else {
            problems.join("; ")
        }
    };
    match &v4 {
        Some((_, how)) => {
            checked.push(Subject::new("filter", "ipv4 input").fact("default_deny", how.as_str()))
        }
        None => {
            offenders.push(Subject::new("filter", "ipv4 input").with_reason(describe(&v4_problems)))
        }
    }
    if g.ipv6 {
        match &v6 {
            Some((_, how)) => checked
                .push(Subject::new("filter", "ipv6 input").fact("default_deny", how.as_str())),
            None => offenders
                .push(Subject::new("filter", "ipv6 input").with_reason(describe(&v6_problems))),
        }
    }
    let basis = if g.live {
        "running ruleset"
    } else {
        "configuration applied at boot"
    };
    let how = v4.as_ref().map(|(_, h)| h.clone()).unwrap_or_default();
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    let mut outcome = Outcome::judge(
        DENY_ID,
        offenders,
        checked,
        format!("inbound traffic is denied by default ({basis}; {how})"),
        format!(
            "inbound traffic is not denied by default ({basis}): {}",
            names.join(", ")
        ),
    )
    .value("default_deny_ipv4", v4.is_some())
    .value("default_deny_ipv6", v6.is_some() || !g.ipv6)
    .value("basis", if g.live { "running" } else { "configured" })
    .sources(all_sources(g));
    if !g.problems.is_empty() {
        outcome = outcome.value("problems", g.problems.clone());
    }
    outcome
}

fn open_ports(g: &Gathered, settings: &Settings) -> Outcome {
    let applied: Vec<&View> = g.views.iter().filter(|v| v.not_applied.is_none()).collect();
    if g.views.is_empty() && !g.live {
        // Without any filter every listening port is reachable: say so in the deny output and
        // leave the port list to the listening check.
        return Outcome::no_data(
            OPEN_ID,
            "no firewall configuration: every listening port is reachable (see firewall.default_deny and listening.sockets)",
        );
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let (v4, _) = family_state(g, |v| &v.v4);
    let (v6, _) = family_state(g, |v| &v.v6);
    let mut all: Vec<(Open, &'static str)> = Vec::new();
    for (state, family, pick) in [
        (
            &v4,
            "ipv4",
            (|v: &View| &v.v4) as fn(&View) -> &FamilyVerdict,
        ),
        (&v6, "ipv6", |v: &View| &v.v6),
    ] {
        if family == "ipv6" && !g.ipv6 {
            continue;
        }
        match state {
            Some((view, _)) => {
                for open in &pick(view).open {
                    for protocol in open.protocol.split(',') {
                        all.push((
                            Open {
                                protocol: protocol.trim().to_string(),
                                port: open.port.clone(),
                                location: open.location.clone(),
                            },
                            family,
                        ));
                    }
                }
            }
            None => {
                let why = if applied.is_empty() {
                    "no firewall configuration is applied at boot"
                } else {
                    "no default deny on input"
                };
                offenders.push(
                    Subject::new("open_port", format!("*/any ({family})"))
                        .with_reason(format!("every port not explicitly dropped is open: {why}")),
                );
            }
        }
    }
    // One subject per port/protocol, naming the families it is open on.
    all.sort_by(|a, b| a.0.id().cmp(&b.0.id()).then(a.1.cmp(b.1)));
    let mut merged: Vec<(Open, Vec<&str>)> = Vec::new();
    for (open, family) in all {
        match merged.last_mut() {
            Some((last, families)) if last.id() == open.id() => {
                if !families.contains(&family) {
                    families.push(family);
                }
            }
            _ => merged.push((open, vec![family])),
        }
    }
    let allowed: Vec<String> = settings
        .allowed_open_ports
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let count = merged.len();
    for (open, families) in merged {
        let id = open.id();
        let is_allowed = allowed.contains(&id.to_ascii_lowercase())
            || allowed.contains(&format!("{}/any", open.port));
        let subject = Subject::new("open_port", id.as_str())
            .fact(
                "families",
                families
                    .iter()
                    .map(|f| (*f).to_string())
                    .collect::<Vec<String>>(),
            )
            .fact("rule", open.location.as_str())
            .fact("allowed", is_allowed);
        if is_allowed {
            checked.push(subject);
        } else {
            offenders.push(subject.with_reason(format!(
                "accepted from any source ({}) and not in allowed_open_ports",
                open.location
            )));
        }
    }
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    Outcome::judge(
        OPEN_ID,
        offenders,
        checked,
        format!("{count} ports are open to the world, all of them allowed"),
        format!(
            "ports open to the world beyond the allowed list: {}",
            names.join(", ")
        ),
    )
    .value("open_ports", count)
    .sources(all_sources(g))
}
