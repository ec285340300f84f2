//! Host inventory (A.5.9): operating system, kernel, CPU, memory, disks and uptime. Live facts
//! come from `sysinfo` when the root is `/`; on another root only what the root holds
//! (os-release, hostname) is reported, and the result says which facts are live.
//!
//! Only the parts of `sysinfo` that are needed are refreshed (CPU list, RAM and swap totals,
//! mounted disks): a full refresh walks every process and costs tens of milliseconds. The
//! disk listing calls `statvfs` on each mount, which can block on a dead network mount, so it
//! runs on its own thread with a deadline.

use std::sync::mpsc;
use std::time::Duration;

use chrono::DateTime;
use serde::Deserialize;
use vigil_shared::{OsRelease, Subject, Value};

use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::HostRoot;
use crate::identity::parse_os_release;

/// `[checks.inventory]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Longest wait, in milliseconds, for the list of mounted disks (`statvfs` on each mount
    /// can hang on an unreachable network filesystem); past it the disks are reported as
    /// unavailable and the rest of the inventory is kept.
    #[serde(default = "default_disk_timeout_ms")]
    pub disk_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            disk_timeout_ms: default_disk_timeout_ms(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "0 */6 * * *".into()
}
fn default_disk_timeout_ms() -> u64 {
    2_000
}

const OUTPUTS: &[Output] = &[Output {
    id: "inventory.host",
    controls: &["A.5.9"],
    description: "Operating system, kernel, CPU, memory, disks and uptime of the host",
}];

const ID: &str = "inventory.host";

/// The inventory check.
#[derive(Debug)]
pub struct Inventory;

impl Check for Inventory {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn description(&self) -> &'static str {
        "operating system, kernel, CPU, memory, disks and uptime"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.inventory.enabled,
            schedule: settings.inventory.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let files = read_file_facts(ctx.root);
        let live = ctx.root.is_live().then(|| {
            read_live_facts(
                ctx.root,
                Duration::from_millis(ctx.settings.inventory.disk_timeout_ms),
            )
        });
        vec![build_outcome(&files, live.as_ref(), ctx.root.is_live())]
    }
}

/// What the root's files say.
#[derive(Debug, Default)]
struct FileFacts {
    os: Option<(OsRelease, String)>,
    hostname: Option<(String, String)>,
    kernel: Option<(String, String)>,
    sources: Vec<String>,
}

fn read_file_facts(root: &HostRoot) -> FileFacts {
    let mut facts = FileFacts::default();
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(text) = root.read_to_string(path) {
            facts.sources.push(path.to_string());
            facts.os = Some((parse_os_release(&text), path.to_string()));
            break;
        }
    }
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Some(name) = first_line(root, path) {
            facts.sources.push(path.to_string());
            facts.hostname = Some((name, path.to_string()));
            break;
        }
    }
    if let Some(kernel) = first_line(root, "/proc/sys/kernel/osrelease") {
        facts.sources.push("/proc/sys/kernel/osrelease".to_string());
        facts.kernel = Some((kernel, "/proc/sys/kernel/osrelease".to_string()));
    }
    facts
}

/// The first non-empty line of a small file, trimmed and bounded (hostnames are at most 64
/// bytes; anything much longer is junk, not a name).
fn first_line(root: &HostRoot, path: &str) -> Option<String> {
    let bytes = root.read_bytes(path, 64 * 1024).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let line: String = line.chars().filter(|c| !c.is_control()).take(255).collect();
    (!line.is_empty()).then_some(line)
}

/// One mounted disk as `sysinfo` lists it.
#[derive(Debug, Clone, PartialEq)]
struct DiskFact {
    mount_point: String,
    device: String,
    fs_type: String,
    kind: String,
    total_bytes: u64,
    available_bytes: u64,
    removable: bool,
    read_only: bool,
}

/// What the running kernel says.
#[derive(Debug)]
struct LiveFacts {
    cpu_brand: Option<String>,
    cpu_vendor: Option<String>,
    cpus: usize,
    physical_cores: Option<usize>,
    arch: String,
    memory_total_bytes: u64,
    swap_total_bytes: u64,
    uptime_seconds: Option<u64>,
    boot_time: Option<u64>,
    load: Option<(f64, f64, f64)>,
    disks: Result<Vec<DiskFact>, String>,
    virtualization: Option<String>,
    container: Option<String>,
    sources: Vec<String>,
}

fn read_live_facts(root: &HostRoot, disk_timeout: Duration) -> LiveFacts {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

    // The disk list runs beside the rest: it is the only part that can block.
    let (sender, receiver) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("inventory-disks".into())
        .spawn(move || {
            let _ = sender.send(list_disks());
        });

    let mut facts = LiveFacts {
        cpu_brand: None,
        cpu_vendor: None,
        cpus: 0,
        physical_cores: None,
        arch: System::cpu_arch(),
        memory_total_bytes: 0,
        swap_total_bytes: 0,
        uptime_seconds: None,
        boot_time: None,
        load: None,
        disks: Ok(Vec::new()),
        virtualization: None,
        container: None,
        sources: Vec::new(),
    };
    let refresh = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram().with_swap());
    match System::new_with_specifics(refresh) {
        Ok(system) => {
            facts.cpus = system.cpus().len();
            if let Some(cpu) = system.cpus().first() {
                let brand = cpu.brand().trim();
                facts.cpu_brand = (!brand.is_empty()).then(|| brand.to_string());
                let vendor = cpu.vendor_id().trim();
                facts.cpu_vendor = (!vendor.is_empty()).then(|| vendor.to_string());
            }
            facts.memory_total_bytes = system.total_memory();
            facts.swap_total_bytes = system.total_swap();
        }
        Err(e) => tracing::warn!(error = %e, "sysinfo unavailable"),
    }
    facts.physical_cores = System::physical_core_count().ok();
    facts.uptime_seconds = System::uptime().ok();
    facts.boot_time = System::boot_time().ok().filter(|&t| t > 0);
    facts.load = System::load_average()
        .ok()
        .map(|l| (round2(l.one), round2(l.five), round2(l.fifteen)));
    let (virtualization, container, sources) = virtualization_hints(root);
    facts.virtualization = virtualization;
    facts.container = container;
    facts.sources = sources;

    facts.disks = match spawned {
        Ok(_) => match receiver.recv_timeout(disk_timeout) {
            Ok(disks) => disks,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "listing mounted disks took longer than {} ms (a hung mount?)",
                disk_timeout.as_millis()
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the disk listing thread stopped without an answer".into())
            }
        },
        Err(e) => Err(format!("could not start the disk listing: {e}")),
    };
    facts
}

fn list_disks() -> Result<Vec<DiskFact>, String> {
    use sysinfo::{DiskRefreshKind, Disks};
    let disks = Disks::new_with_refreshed_list_specifics(
        DiskRefreshKind::nothing().with_storage().with_kind(),
    )
    .map_err(|e| format!("listing mounted disks: {e}"))?;
    let mut out: Vec<DiskFact> = disks
        .iter()
        .map(|disk| DiskFact {
            mount_point: disk.mount_point().display().to_string(),
            device: disk.name().to_string_lossy().into_owned(),
            fs_type: disk.file_system().to_string_lossy().into_owned(),
            kind: disk.kind().to_string(),
            total_bytes: disk.total_space(),
            available_bytes: disk.available_space(),
            removable: disk.is_removable(),
            read_only: disk.is_read_only(),
        })
        .collect();
    out.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    Ok(out)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Cheap hints of a hypervisor and a container: DMI vendor strings, `/sys/hypervisor`, the
/// `hypervisor` CPU flag, and the marker files container engines leave.
fn virtualization_hints(root: &HostRoot) -> (Option<String>, Option<String>, Vec<String>) {
    let mut sources = Vec::new();
    let mut read = |path: &str| {
        let value = first_line(root, path)?;
        sources.push(path.to_string());
        Some(value)
    };
    let vendor = read("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
    let product = read("/sys/class/dmi/id/product_name").unwrap_or_default();
    let mut virtualization = dmi_hypervisor(&vendor, &product).map(str::to_string);
    if virtualization.is_none() {
        virtualization = read("/sys/hypervisor/type");
    }
    if virtualization.is_none() && cpu_has_hypervisor_flag(root) {
        sources.push("/proc/cpuinfo".to_string());
        virtualization = Some("vm (hypervisor CPU flag)".into());
    }
    let container = if let Some(kind) = first_line(root, "/run/systemd/container") {
        sources.push("/run/systemd/container".to_string());
        Some(kind)
    } else if root.exists("/run/.containerenv") {
        sources.push("/run/.containerenv".to_string());
        Some("podman".to_string())
    } else if root.exists("/.dockerenv") {
        sources.push("/.dockerenv".to_string());
        Some("docker".to_string())
    } else {
        None
    };
    (virtualization, container, sources)
}

/// Maps DMI system vendor and product names to a hypervisor, as systemd-detect-virt does.
fn dmi_hypervisor(vendor: &str, product: &str) -> Option<&'static str> {
    let table: &[(&str, &str)] = &[
        ("KVM", "kvm"),
        ("OpenStack", "kvm"),
        ("KubeVirt", "kvm"),
        ("Amazon EC2", "amazon"),
        ("QEMU", "qemu"),
        ("VMware", "vmware"),
        ("VMW", "vmware"),
        ("innotek GmbH", "oracle"),
        ("VirtualBox", "oracle"),
        ("Oracle Corporation", "oracle"),
        ("Xen", "xen"),
        ("Bochs", "bochs"),
        ("Parallels", "parallels"),
        ("BHYVE", "bhyve"),
        ("Hyper-V", "microsoft"),
        ("Apple Virtualization", "apple"),
        ("Google Compute Engine", "google"),
    ];
    for (needle, name) in table {
        if product.starts_with(needle) || vendor.starts_with(needle) {
            return Some(name);
        }
    }
    (vendor.starts_with("Microsoft Corporation") && product.starts_with("Virtual Machine"))
        .then_some("microsoft")
}

/// The `flags` line of the first CPU in `/proc/cpuinfo` names `hypervisor` inside a VM.
fn cpu_has_hypervisor_flag(root: &HostRoot) -> bool {
    let Ok(bytes) = root.read_prefix("/proc/cpuinfo", 32 * 1024) else {
        return false;
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "hypervisor"))
}

fn build_outcome(files: &FileFacts, live: Option<&LiveFacts>, is_live: bool) -> Outcome {
    let mut live_keys: Vec<&str> = Vec::new();
    let mut file_keys: Vec<&str> = Vec::new();
    let mut values: Vec<(&str, Value)> = Vec::new();
    // Kernel files under /proc describe the running machine only when the root is `/`.
    let mut from_proc = |key: &'static str, path: &str| {
        if is_live && path.starts_with("/proc/") {
            live_keys.push(key);
        } else {
            file_keys.push(key);
        }
    };

    let os = files.os.as_ref();
    let identified = os.is_some_and(|(os, _)| !os.id.is_empty() || !os.pretty_name.is_empty());
    if let Some((os, path)) = os {
        for (key, value) in [
            ("os_id", &os.id),
            ("os_version_id", &os.version_id),
            ("os_pretty_name", &os.pretty_name),
        ] {
            if !value.is_empty() {
                values.push((key, Value::from(value.as_str())));
                from_proc(key, path);
            }
        }
        if !os.id_like.is_empty() {
            values.push(("os_id_like", Value::from(os.id_like.clone())));
            from_proc("os_id_like", path);
        }
    }
    if let Some((hostname, path)) = &files.hostname {
        values.push(("hostname", Value::from(hostname.as_str())));
        from_proc("hostname", path);
    }
    if let Some((kernel, path)) = &files.kernel {
        values.push(("kernel", Value::from(kernel.as_str())));
        from_proc("kernel", path);
    }

    let mut disks_checked = Vec::new();
    let mut disk_error = None;
    if let Some(live) = live {
        let mut put = |key: &'static str, value: Value| {
            values.push((key, value));
            live_keys.push(key);
        };
        put("arch", Value::from(live.arch.as_str()));
        if let Some(brand) = &live.cpu_brand {
            put("cpu_brand", Value::from(brand.as_str()));
        }
        if let Some(vendor) = &live.cpu_vendor {
            put("cpu_vendor", Value::from(vendor.as_str()));
        }
        if live.cpus > 0 {
            put("cpu_count", Value::from(live.cpus));
        }
        if let Some(cores) = live.physical_cores {
            put("cpu_physical_cores", Value::from(cores));
        }
        if live.memory_total_bytes > 0 {
            put("memory_total_bytes", Value::from(live.memory_total_bytes));
        }
        put("swap_total_bytes", Value::from(live.swap_total_bytes));
        if let Some(uptime) = live.uptime_seconds {
            put("uptime_seconds", Value::from(uptime));
        }
        if let Some(boot) = live.boot_time
            && let Some(at) = i64::try_from(boot)
                .ok()
                .and_then(|b| DateTime::from_timestamp(b, 0))
        {
            put("boot_time", Value::from(at.to_rfc3339()));
        }
        if let Some((one, five, fifteen)) = live.load {
            put("load_1m", Value::from(one));
            put("load_5m", Value::from(five));
            put("load_15m", Value::from(fifteen));
        }
        if let Some(virt) = &live.virtualization {
            put("virtualization", Value::from(virt.as_str()));
        }
        if let Some(container) = &live.container {
            put("container", Value::from(container.as_str()));
        }
        match &live.disks {
            Ok(disks) => {
                put("disk_count", Value::from(disks.len()));
                put(
                    "disk_total_bytes",
                    Value::from(disks.iter().map(|d| d.total_bytes).sum::<u64>()),
                );
                for disk in disks {
                    disks_checked.push(
                        Subject::new("disk", disk.mount_point.clone())
                            .fact("device", disk.device.as_str())
                            .fact("fs_type", disk.fs_type.as_str())
                            .fact("kind", disk.kind.as_str())
                            .fact("total_bytes", disk.total_bytes)
                            .fact("available_bytes", disk.available_bytes)
                            .fact("removable", disk.removable)
                            .fact("read_only", disk.read_only),
                    );
                }
            }
            Err(e) => disk_error = Some(e.clone()),
        }
    }

    let summary = summary_line(files, live, identified);
    let mut outcome = if identified {
        Outcome::pass(ID, summary)
    } else {
        Outcome::no_data(ID, summary)
    };
    for (key, value) in values {
        outcome = outcome.value(key, value);
    }
    if let Some(e) = disk_error {
        outcome = outcome.value("disks_unavailable", e);
    }
    live_keys.sort_unstable();
    file_keys.sort_unstable();
    outcome = outcome
        .value("live", live.is_some())
        .value("live_facts", live_keys)
        .value("file_facts", file_keys);
    outcome.evidence.checked = disks_checked;
    outcome = outcome.sources(files.sources.iter().cloned());
    if let Some(live) = live {
        outcome = outcome.sources(live.sources.iter().cloned());
    }
    outcome
}

fn summary_line(files: &FileFacts, live: Option<&LiveFacts>, identified: bool) -> String {
    let os = files
        .os
        .as_ref()
        .map(|(os, _)| {
            if os.pretty_name.is_empty() {
                format!("{} {}", os.id, os.version_id).trim().to_string()
            } else {
                os.pretty_name.clone()
            }
        })
        .filter(|s| !s.is_empty());
    let mut parts = Vec::new();
    match (&os, identified) {
        (Some(os), true) => parts.push(os.clone()),
        _ => parts.push(
            "operating system unknown (no /etc/os-release or /usr/lib/os-release)".to_string(),
        ),
    }
    if let Some((hostname, _)) = &files.hostname {
        parts.push(format!("host {hostname}"));
    }
    if let Some((kernel, _)) = &files.kernel {
        parts.push(format!("kernel {kernel}"));
    }
    match live {
        Some(live) => {
            let mut hardware = format!("{} CPU(s)", live.cpus);
            if let Some(brand) = &live.cpu_brand {
                hardware.push_str(&format!(" ({brand})"));
            }
            parts.push(hardware);
            parts.push(format!("{} RAM", human_bytes(live.memory_total_bytes)));
            if let Some(uptime) = live.uptime_seconds {
                parts.push(format!("up {}", human_duration(uptime)));
            }
        }
        None => parts.push("from the files under this root; no live facts".to_string()),
    }
    parts.join(", ")
}

fn human_bytes(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

fn human_duration(seconds: u64) -> String {
    let days = seconds / 86_400;
    let hours = (seconds % 86_400) / 3_600;
    let minutes = (seconds % 3_600) / 60;
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::run_check;
    use crate::settings::ChecksConfig;
    use chrono::Utc;
    use std::path::Path;
    use std::time::Instant;
    use vigil_shared::{CheckResult, Status};

    fn run_on(root: &HostRoot) -> CheckResult {
        let settings = ChecksConfig::default();
        let ctx = CheckContext {
            root,
            now: DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            settings: &settings,
            cache_dir: None,
        };
        let mut results = run_check(&Inventory, &ctx);
        assert_eq!(results.len(), 1);
        results.remove(0)
    }

    fn fixture(name: &str) -> HostRoot {
        HostRoot::new(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/hosts")
                .join(name),
        )
        .unwrap()
    }

    fn text(result: &CheckResult, key: &str) -> String {
        result
            .values
            .get(key)
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn fixture_roots_report_only_their_files_deterministically() {
        let result = run_on(&fixture("healthy"));
        assert_eq!(result.status, Status::Pass, "{}", result.summary);
        assert_eq!(result.values["live"], Value::Bool(false));
        assert_eq!(text(&result, "os_id"), "debian");
        assert!(!text(&result, "hostname").is_empty());
        assert_eq!(result.values["live_facts"], Value::List(vec![]));
        let file_facts = text(&result, "file_facts");
        assert!(
            file_facts.contains("os_id") && file_facts.contains("hostname"),
            "{file_facts}"
        );
        for live_only in [
            "cpu_count",
            "memory_total_bytes",
            "uptime_seconds",
            "disk_count",
        ] {
            assert!(
                !result.values.contains_key(live_only),
                "{live_only} on a fixture root"
            );
        }
        assert!(result.evidence.checked.is_empty());
        assert!(
            result.summary.contains("no live facts"),
            "{}",
            result.summary
        );
        assert!(
            result
                .evidence
                .sources
                .contains(&"/etc/os-release".to_string())
        );
        // Deterministic: a second run gives the same result, apart from the duration.
        let mut again = run_on(&fixture("healthy"));
        again.duration_ms = result.duration_ms;
        assert_eq!(again, result);

        let misconfigured = run_on(&fixture("misconfigured"));
        assert_eq!(misconfigured.status, Status::Pass);
    }

    #[test]
    fn a_root_without_os_release_is_no_data_but_keeps_what_it_has() {
        let result = run_on(&fixture("minimal"));
        assert_eq!(result.status, Status::NoData);
        assert!(
            result.summary.starts_with("operating system unknown"),
            "{}",
            result.summary
        );
        assert_eq!(result.values["live"], Value::Bool(false));
        assert!(result.values.contains_key("hostname"));
        assert!(!result.values.contains_key("os_id"));
    }

    #[test]
    fn os_release_fallback_kernel_and_junk_hostnames() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("usr/lib")).unwrap();
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::create_dir_all(base.join("proc/sys/kernel")).unwrap();
        std::fs::write(
            base.join("usr/lib/os-release"),
            "NAME=\"Rocky Linux\"\r\nID=\"rocky\"\r\nID_LIKE=\"rhel centos fedora\"\r\nVERSION_ID=\"9.3\"\r\n",
        )
        .unwrap();
        std::fs::write(
            base.join("etc/hostname"),
            "\n# set by cloud-init\n  db-07\u{7}  \n",
        )
        .unwrap();
        std::fs::write(
            base.join("proc/sys/kernel/osrelease"),
            "5.14.0-362.el9.x86_64\n",
        )
        .unwrap();
        let result = run_on(&HostRoot::new(base).unwrap());
        assert_eq!(result.status, Status::Pass);
        assert_eq!(text(&result, "os_id"), "rocky");
        assert_eq!(text(&result, "os_id_like"), "[rhel, centos, fedora]");
        assert_eq!(text(&result, "hostname"), "db-07");
        assert_eq!(text(&result, "kernel"), "5.14.0-362.el9.x86_64");
        assert_eq!(
            result.summary,
            "rocky 9.3, host db-07, kernel 5.14.0-362.el9.x86_64, from the files under this \
             root; no live facts"
        );
        // On a non-live root even /proc files are files, not live facts.
        assert_eq!(result.values["live_facts"], Value::List(vec![]));
        assert!(text(&result, "file_facts").contains("kernel"));
    }

    #[test]
    fn dmi_strings_name_hypervisors() {
        assert_eq!(
            dmi_hypervisor("QEMU", "Standard PC (Q35 + ICH9, 2009)"),
            Some("qemu")
        );
        assert_eq!(dmi_hypervisor("Red Hat", "KVM"), Some("kvm"));
        assert_eq!(
            dmi_hypervisor("VMware, Inc.", "VMware Virtual Platform"),
            Some("vmware")
        );
        assert_eq!(
            dmi_hypervisor("Microsoft Corporation", "Virtual Machine"),
            Some("microsoft")
        );
        assert_eq!(dmi_hypervisor("Amazon EC2", "m5.large"), Some("amazon"));
        assert_eq!(dmi_hypervisor("Dell Inc.", "PowerEdge R740"), None);
        assert_eq!(dmi_hypervisor("", ""), None);
    }

    #[test]
    fn human_units_read_well() {
        assert_eq!(human_bytes(24 * 1024 * 1024 * 1024), "24.0 GiB");
        assert_eq!(human_bytes(512 * 1024 * 1024), "512 MiB");
        assert_eq!(human_duration(59), "0 min");
        assert_eq!(human_duration(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(human_duration(2 * 86_400 + 5 * 3600), "2 d 5 h");
    }

    #[test]
    fn the_live_host_is_inventoried_quickly() {
        let root = HostRoot::new("/").unwrap();
        let started = Instant::now();
        let result = run_on(&root);
        let elapsed = started.elapsed();
        eprintln!("inventory on the live host: {elapsed:?}");
        assert_eq!(result.values["live"], Value::Bool(true));
        let count = result
            .values
            .get("cpu_count")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        assert!(count >= 1, "{result:?}");
        assert!(
            result
                .values
                .get("memory_total_bytes")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        );
        assert!(result.values.contains_key("uptime_seconds"));
        let live_facts = text(&result, "live_facts");
        assert!(
            live_facts.contains("cpu_count") && live_facts.contains("kernel"),
            "{live_facts}"
        );
        if result.values.contains_key("disk_count") {
            assert!(result.evidence.checked.iter().all(|s| s.kind == "disk"));
        }
        assert_ne!(result.status, Status::Error);
    }
}
