//! Listening services (A.8.20, A.8.9, A.8.19): TCP sockets in LISTEN and bound, unconnected UDP
//! sockets from `/proc/net/{tcp,tcp6,udp,udp6}`, mapped to their processes through the socket
//! links in `/proc/<pid>/fd` where readable, and judged against an allowlist: a service that
//! listens on every interface (0.0.0.0, ::) without being expected is an offender.
//!
//! Decisions worth knowing:
//! - On the running host the tables of PID 1 (`/proc/1/net/…`) are read: they describe the
//!   host's network namespace even when the agent runs in its own. Elsewhere `/proc/net/…`.
//! - Loopback sockets are never offenders; sockets on one specific address are reported
//!   (`scope = interface`) but not judged, since which networks reach an interface is not
//!   visible from the host.
//! - A socket whose process cannot be found (another namespace, fd tables unreadable) keeps
//!   its port and owner uid; an allowlist entry with a process name does not match it.
//! - UDP sockets count when they are unconnected (state CLOSE with no peer): a connected UDP
//!   socket is a client.

mod procnet;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use vigil_shared::Subject;

use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::HostRoot;
use procnet::{STATE_CLOSE, STATE_LISTEN, Scope, SocketRow};

/// One expected listener: every given field must match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// Port number.
    #[serde(default)]
    pub port: Option<u16>,
    /// `tcp` or `udp` (both address families).
    #[serde(default)]
    pub protocol: Option<String>,
    /// Process name as in `/proc/<pid>/comm` (`sshd`, `nginx`).
    #[serde(default)]
    pub process: Option<String>,
}

/// `[checks.listening]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Services expected to listen on every interface. The default admits SSH and the DHCP
    /// clients; list what else the host serves (`{ port = 443, protocol = "tcp", process =
    /// "nginx" }`).
    #[serde(default = "default_allowed")]
    pub allowed: Vec<Allowed>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            allowed: default_allowed(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "*/10 * * * *".into()
}
fn default_allowed() -> Vec<Allowed> {
    let entry = |port: u16, protocol: &str| Allowed {
        port: Some(port),
        protocol: Some(protocol.into()),
        process: None,
    };
    vec![entry(22, "tcp"), entry(68, "udp"), entry(546, "udp")]
}

const OUTPUTS: &[Output] = &[Output {
    id: "listening.sockets",
    controls: &["A.8.20", "A.8.9", "A.8.19"],
    description: "Listening TCP/UDP sockets with their processes; services on every interface that are not expected",
}];

const ID: &str = "listening.sockets";

/// The listening services check.
#[derive(Debug)]
pub struct Listening;

impl Check for Listening {
    fn name(&self) -> &'static str {
        "listening"
    }

    fn description(&self) -> &'static str {
        "listening sockets, their processes and services exposed on every interface"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.listening.enabled,
            schedule: settings.listening.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        vec![judge(ctx.root, &ctx.settings.listening)]
    }
}

/// One listening socket with what is known of its owner.
#[derive(Debug, Clone)]
struct Listener {
    protocol: &'static str,
    family: &'static str,
    row: SocketRow,
    process: Option<Process>,
}

#[derive(Debug, Clone)]
struct Process {
    pid: u32,
    name: String,
    exe: Option<String>,
}

fn table_dir(root: &HostRoot) -> &'static str {
    if root.is_live() && root.exists("/proc/1/net/tcp") {
        "/proc/1/net"
    } else {
        "/proc/net"
    }
}

fn judge(root: &HostRoot, settings: &Settings) -> Outcome {
    let dir = table_dir(root);
    let mut listeners = Vec::new();
    let mut sources = Vec::new();
    let mut read_any = false;
    let mut errors = Vec::new();
    let mut malformed = 0usize;
    for (file, protocol, family) in [
        ("tcp", "tcp", "ipv4"),
        ("tcp6", "tcp", "ipv6"),
        ("udp", "udp", "ipv4"),
        ("udp6", "udp", "ipv6"),
    ] {
        let path = format!("{dir}/{file}");
        let text = match root.read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        read_any = true;
        sources.push(path);
        let (rows, bad) = procnet::parse_table(&text);
        malformed += bad;
        for row in rows {
            let listening = match protocol {
                "tcp" => row.state == STATE_LISTEN,
                _ => {
                    row.state == STATE_CLOSE && row.remote_port == 0 && row.remote.is_unspecified()
                }
            };
            if listening {
                listeners.push(Listener {
                    protocol,
                    family,
                    row,
                    process: None,
                });
            }
        }
    }
    if !read_any {
        return match errors.first() {
            Some(e) => Outcome::error(ID, e),
            None => Outcome::no_data(
                ID,
                "no socket tables (/proc/net/tcp, udp) under this root: listening sockets are only visible on a running system",
            ),
        };
    }
    let wanted: BTreeSet<u64> = listeners
        .iter()
        .map(|l| l.row.inode)
        .filter(|i| *i != 0)
        .collect();
    let (owners, pids_read, pids_unreadable) = socket_owners(root, &wanted);
    for l in &mut listeners {
        l.process = owners.get(&l.row.inode).cloned();
    }
    // One socket per (protocol, family, address, port) — SO_REUSEPORT groups list several.
    listeners.sort_by(|a, b| {
        (a.protocol, a.row.port, a.family, a.row.local).cmp(&(
            b.protocol,
            b.row.port,
            b.family,
            b.row.local,
        ))
    });
    listeners.dedup_by(|a, b| {
        a.protocol == b.protocol
            && a.family == b.family
            && a.row.local == b.row.local
            && a.row.port == b.row.port
    });
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut world = 0usize;
    let mut loopback = 0usize;
    let mut unmapped = 0usize;
    for l in &listeners {
        let scope = procnet::scope(l.row.local);
        match scope {
            Scope::All => world += 1,
            Scope::Loopback => loopback += 1,
            Scope::Interface => {}
        }
        // Named after the table, as netstat does: `22/tcp`, `22/tcp6`.
        let suffix = if l.family == "ipv6" { "6" } else { "" };
        let id = format!("{}/{}{suffix}", l.row.port, l.protocol);
        let mut subject = Subject::new("socket", id)
            .fact("address", l.row.local.to_string())
            .fact("family", l.family)
            .fact("scope", scope.as_str())
            .fact("uid", l.row.uid);
        match &l.process {
            Some(p) => {
                subject = subject.fact("process", p.name.as_str()).fact("pid", p.pid);
                if let Some(exe) = &p.exe {
                    subject = subject.fact("exe", exe.as_str());
                }
            }
            None => unmapped += 1,
        }
        let expected = settings.allowed.iter().any(|a| allows(a, l));
        subject = subject.fact("expected", expected);
        if scope == Scope::All && !expected {
            let who = l.process.as_ref().map_or_else(
                || format!("an unknown process (uid {})", l.row.uid),
                |p| format!("{} (pid {})", p.name, p.pid),
            );
            offenders.push(subject.with_reason(format!(
                "{who} listens on every interface ({}:{}) and is not in the allowlist",
                l.row.local, l.row.port
            )));
        } else {
            checked.push(subject);
        }
    }
    if pids_read > 0 {
        sources.push("/proc/<pid>/fd".into());
    }
    let unexpected = offenders.len();
    let names: Vec<String> = offenders
        .iter()
        .map(
            |s: &Subject| match s.facts.get("process").and_then(|v| v.as_str()) {
                Some(p) => format!("{} ({p})", s.id),
                None => s.id.clone(),
            },
        )
        .collect();
    let total = listeners.len();
    Outcome::judge(
        ID,
        offenders,
        checked,
        format!("{total} listening sockets, {world} on every interface, all of them expected"),
        format!(
            "{unexpected} unexpected services listen on every interface: {}",
            names.join(", ")
        ),
    )
    .value("listening", total)
    .value("world_listening", world)
    .value("loopback_only", loopback)
    .value("unexpected", unexpected)
    .value("process_unknown", unmapped)
    .value("process_tables_unreadable", pids_unreadable)
    .value("malformed_rows", malformed)
    .sources(sources)
}

fn allows(entry: &Allowed, l: &Listener) -> bool {
    if entry.port.is_none() && entry.protocol.is_none() && entry.process.is_none() {
        return false;
    }
    entry.port.is_none_or(|p| p == l.row.port)
        && entry
            .protocol
            .as_deref()
            .is_none_or(|p| p.eq_ignore_ascii_case(l.protocol))
        && entry
            .process
            .as_deref()
            .is_none_or(|name| l.process.as_ref().is_some_and(|p| p.name == name))
}

/// Maps socket inodes to the first process holding them. Returns the map, the number of
/// processes whose fd table was read and the number that could not be read.
fn socket_owners(
    root: &HostRoot,
    wanted: &BTreeSet<u64>,
) -> (BTreeMap<u64, Process>, usize, usize) {
    let mut owners = BTreeMap::new();
    let (mut read, mut unreadable) = (0usize, 0usize);
    if wanted.is_empty() {
        return (owners, read, unreadable);
    }
    let Ok(entries) = root.read_dir("/proc") else {
        return (owners, read, unreadable);
    };
    let mut pids: Vec<u32> = entries.iter().filter_map(|n| n.parse().ok()).collect();
    pids.sort_unstable();
    for pid in pids {
        let fd_dir = format!("/proc/{pid}/fd");
        let fds = match root.read_dir(&fd_dir) {
            Ok(fds) => fds,
            Err(e) if e.is_not_found() => continue,
            Err(_) => {
                unreadable += 1;
                continue;
            }
        };
        read += 1;
        for fd in fds {
            let Ok(target) = root.read_link(&format!("{fd_dir}/{fd}")) else {
                continue;
            };
            let Some(inode) = procnet::socket_inode(&target) else {
                continue;
            };
            if !wanted.contains(&inode) || owners.contains_key(&inode) {
                continue;
            }
            let name = root
                .read_bytes(&format!("/proc/{pid}/comm"), 256)
                .map(|b| String::from_utf8_lossy(&b).trim_end().to_string())
                .unwrap_or_else(|_| format!("pid {pid}"));
            let exe = root.read_link(&format!("/proc/{pid}/exe")).ok();
            owners.insert(inode, Process { pid, name, exe });
        }
        if owners.len() == wanted.len() {
            break;
        }
    }
    (owners, read, unreadable)
}
