//! Encryption at rest (A.8.24, A.8.1, A.5.33): every mounted filesystem and swap area, whether
//! it sits on dm-crypt/LUKS (following device-mapper slave chains through LVM and RAID),
//! `/etc/crypttab`, and the LUKS header version where readable. Verdicts for `/`, `/home`,
//! swap and every persistent local filesystem.
//!
//! The live state comes from the mount table (`/proc/1/mountinfo` on the running host, whose
//! view a sandboxed agent's own namespace may alter; else `/proc/self/mountinfo`, else
//! `/proc/mounts`), `/proc/swaps` and sysfs. A root without a mount table (an offline image)
//! is judged from `/etc/fstab` and `/etc/crypttab`, and every summary says so.

mod judge;
mod luks;
mod sysfs;
mod tables;

#[cfg(test)]
mod tests;

use serde::Deserialize;
use vigil_shared::{Status, Subject};

use super::{Check, CheckContext, Outcome, Output, error_for_all, no_data_for_all};
use crate::hostroot::{HostError, HostRoot};
use judge::{Configured, FsClass, FsVerdict, Live, Protection, SwapVerdict};
use tables::{CrypttabEntry, FstabEntry, MountEntry, SwapEntry};

/// `[checks.encryption]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Mount points that may stay unencrypted (boot loaders must read them). Exact mount
    /// points; a filesystem mounted below one of them is still judged.
    #[serde(default = "default_exempt_mounts")]
    pub exempt_mounts: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            exempt_mounts: default_exempt_mounts(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "0 * * * *".into()
}
fn default_exempt_mounts() -> Vec<String> {
    vec!["/boot".into(), "/boot/efi".into(), "/efi".into()]
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "encryption.root",
        controls: &["A.8.24", "A.8.1"],
        description: "The root filesystem sits on an encrypted block device",
    },
    Output {
        id: "encryption.home",
        controls: &["A.8.24", "A.8.1"],
        description: "Home directories sit on an encrypted block device",
    },
    Output {
        id: "encryption.swap",
        controls: &["A.8.24", "A.8.1"],
        description: "Every swap area is encrypted or memory-backed",
    },
    Output {
        id: "encryption.volumes",
        controls: &["A.8.24", "A.5.33"],
        description: "Every persistent local filesystem outside the exempt mounts is encrypted",
    },
];

/// The encryption check.
#[derive(Debug)]
pub struct Encryption;

impl Check for Encryption {
    fn name(&self) -> &'static str {
        "encryption"
    }

    fn description(&self) -> &'static str {
        "dm-crypt/LUKS under every filesystem and swap area"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.encryption.enabled,
            schedule: settings.encryption.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.encryption;
        match gather(ctx.root) {
            Ok(Some(findings)) => vec![
                root_outcome(&findings),
                home_outcome(&findings),
                swap_outcome(&findings),
                volumes_outcome(&findings, settings),
            ],
            Ok(None) => no_data_for_all(
                OUTPUTS,
                "no mount table (/proc/self/mountinfo, /proc/mounts) and no /etc/fstab under \
                 this root",
            ),
            Err(e) => error_for_all(OUTPUTS, &e),
        }
    }
}

/// Why the facts every output needs could not be read.
#[derive(Debug, thiserror::Error)]
enum GatherError {
    #[error("reading the mount table: {0}")]
    MountTable(HostError),
    #[error("{path}: no line could be parsed as a mount ({lines} malformed)")]
    Unparsable { path: String, lines: usize },
}

/// Where the verdicts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    /// The running system's mount table and sysfs.
    Live,
    /// `/etc/fstab` and `/etc/crypttab` of a root with no mount table.
    Configuration,
}

impl Basis {
    fn as_str(self) -> &'static str {
        match self {
            Basis::Live => "live",
            Basis::Configuration => "configuration",
        }
    }

    /// Appended to every summary judged from configuration.
    fn suffix(self) -> &'static str {
        match self {
            Basis::Live => "",
            Basis::Configuration => {
                " (judged from /etc/fstab and /etc/crypttab: this root has no mount table, so \
                 this is the configuration, not the live state)"
            }
        }
    }
}

/// Everything the four outputs are judged on.
#[derive(Debug)]
struct Findings {
    basis: Basis,
    filesystems: Vec<FsVerdict>,
    root: Option<FsVerdict>,
    /// The filesystem holding `/home` and the path `/home` resolves to.
    home: Option<(FsVerdict, String)>,
    /// `None` when nothing says which swap areas exist.
    swaps: Option<Vec<SwapVerdict>>,
    crypttab_entries: usize,
    fstab: Vec<FstabEntry>,
    sources: Vec<String>,
}

/// Mount tables in order of preference. On the running host PID 1's table is the system's
/// view: a service sandbox (`ProtectHome=`, `PrivateTmp=`) changes the agent's own.
fn mount_table_paths(root: &HostRoot) -> &'static [&'static str] {
    if root.is_live() {
        &["/proc/1/mountinfo", "/proc/self/mountinfo", "/proc/mounts"]
    } else {
        &["/proc/self/mountinfo", "/proc/mounts"]
    }
}

fn read_mount_table(root: &HostRoot) -> Result<Option<(String, Vec<MountEntry>)>, GatherError> {
    let mut first_error = None;
    for path in mount_table_paths(root) {
        let text = match root.read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        let parsed = if path.ends_with("mountinfo") {
            tables::parse_mountinfo(&text)
        } else {
            tables::parse_proc_mounts(&text)
        };
        if !parsed.malformed.is_empty() {
            tracing::warn!(path, lines = ?parsed.malformed, "malformed mount table lines skipped");
        }
        if parsed.entries.is_empty() && !parsed.malformed.is_empty() {
            return Err(GatherError::Unparsable {
                path: (*path).to_string(),
                lines: parsed.malformed.len(),
            });
        }
        return Ok(Some(((*path).to_string(), parsed.entries)));
    }
    match first_error {
        Some(e) => Err(GatherError::MountTable(e)),
        None => Ok(None),
    }
}

/// Reads an optional configuration table: absent is empty, unreadable is logged and empty
/// (the live verdicts do not depend on it).
fn read_optional<T>(
    root: &HostRoot,
    path: &str,
    parse: fn(&str) -> tables::Parsed<T>,
    sources: &mut Vec<String>,
) -> Option<Vec<T>> {
    match root.read_to_string(path) {
        Ok(text) => {
            sources.push(path.to_string());
            let parsed = parse(&text);
            if !parsed.malformed.is_empty() {
                tracing::warn!(path, lines = ?parsed.malformed, "malformed lines skipped");
            }
            Some(parsed.entries)
        }
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            tracing::warn!(path, error = %e, "configuration unreadable");
            None
        }
    }
}

fn gather(root: &HostRoot) -> Result<Option<Findings>, GatherError> {
    let mut sources = Vec::new();
    let table = read_mount_table(root)?;
    let crypttab: Vec<CrypttabEntry> =
        read_optional(root, "/etc/crypttab", tables::parse_crypttab, &mut sources)
            .unwrap_or_default();
    let fstab = read_optional(root, "/etc/fstab", tables::parse_fstab, &mut sources);
    let crypttab_entries = crypttab.len();

    if let Some((table_path, mounts)) = table {
        sources.insert(0, table_path);
        let swaps: Option<Vec<SwapEntry>> = match root.read_to_string("/proc/swaps") {
            Ok(text) => {
                sources.insert(1, "/proc/swaps".to_string());
                Some(tables::parse_swaps(&text).entries)
            }
            // A running kernel built without swap support has no /proc/swaps.
            Err(e) if e.is_not_found() && root.is_live() => Some(Vec::new()),
            Err(e) => {
                tracing::warn!(error = %e, "no swap table");
                None
            }
        };
        let live = Live::new(root, mounts, crypttab);
        let filesystems = live.filesystems();
        let root_fs = live
            .filesystem_holding("/")
            .filter(|f| f.mount_point == "/");
        let home_path = root
            .canonical("/home")
            .unwrap_or_else(|_| "/home".to_string());
        let home = live.filesystem_holding(&home_path).map(|f| (f, home_path));
        let swaps = swaps.map(|entries| live.swaps(&entries));
        sources.extend(live.sources());
        return Ok(Some(Findings {
            basis: Basis::Live,
            filesystems,
            root: root_fs,
            home,
            swaps,
            crypttab_entries,
            fstab: fstab.unwrap_or_default(),
            sources: dedup(sources),
        }));
    }

    let Some(fstab) = fstab else {
        return Ok(None);
    };
    let configured = Configured::new(root, fstab.clone(), crypttab);
    let filesystems = configured.filesystems();
    let root_fs = filesystems.iter().find(|f| f.mount_point == "/").cloned();
    let home_path = root
        .canonical("/home")
        .unwrap_or_else(|_| "/home".to_string());
    let home = configured
        .filesystem_holding(&home_path)
        .map(|f| (f, home_path));
    let swaps = Some(configured.swaps());
    sources.extend(configured.sources());
    Ok(Some(Findings {
        basis: Basis::Configuration,
        filesystems,
        root: root_fs,
        home,
        swaps,
        crypttab_entries,
        fstab,
        sources: dedup(sources),
    }))
}

fn dedup(paths: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    for path in paths {
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// The evidence subject for a filesystem.
fn fs_subject(verdict: &FsVerdict, fstab: &[FstabEntry]) -> Subject {
    let mut subject = Subject::new("filesystem", verdict.mount_point.clone())
        .fact("fs_type", verdict.fs_type.as_str())
        .fact("source", verdict.source.as_str())
        .fact("protection", verdict.judged.protection.as_str());
    if let Some(device) = verdict.device {
        subject = subject.fact("device", device.to_string());
    }
    subject = with_judgement_facts(subject, &verdict.judged);
    if let Some(entry) = fstab
        .iter()
        .rev()
        .find(|e| e.mount_point == verdict.mount_point && !e.is_swap())
    {
        subject = subject.fact("fstab_device", entry.spec.to_string());
    }
    subject
}

fn with_judgement_facts(mut subject: Subject, judged: &judge::Judged) -> Subject {
    if let Some(chain) = &judged.chain {
        subject = subject.fact("chain", chain.as_str());
    }
    if let Some(version) = judged.luks_version() {
        subject = subject.fact("luks_version", u32::from(version));
    }
    if !judged.crypt.is_empty() {
        let layers: Vec<String> = judged
            .crypt
            .iter()
            .map(judge::CryptLayer::describe)
            .collect();
        subject = subject.fact("encryption", layers);
        let crypttab: Vec<String> = judged
            .crypt
            .iter()
            .filter_map(|c| c.crypttab.as_ref().map(|e| e.name.clone()))
            .collect();
        if !crypttab.is_empty() {
            subject = subject.fact("crypttab", crypttab);
        }
    }
    subject
}

/// The outcome for one filesystem (`/`, or the holder of `/home`): `label` names it in the
/// summary.
fn single_fs_outcome(
    id: &'static str,
    label: &str,
    verdict: &FsVerdict,
    findings: &Findings,
) -> Outcome {
    let judged = &verdict.judged;
    let suffix = findings.basis.suffix();
    let subject = fs_subject(verdict, &findings.fstab);
    let chain = judged
        .chain
        .as_deref()
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    let mut outcome = match judged.protection {
        Protection::Encrypted => {
            let kinds: Vec<String> = judged.crypt.iter().map(|c| c.kind.clone()).collect();
            let kinds = if kinds.is_empty() {
                verdict.fs_type.clone()
            } else {
                kinds.join(", ")
            };
            Outcome::pass(id, format!("{label} is encrypted ({kinds}){chain}{suffix}"))
                .checked(subject)
                .value("encrypted", true)
        }
        Protection::MemoryBacked => Outcome::pass(
            id,
            format!(
                "{label} is held in memory only ({}{chain}): nothing of it is stored at rest\
                 {suffix}",
                verdict.fs_type
            ),
        )
        .checked(subject)
        .value("encrypted", false)
        .value("memory_backed", true),
        Protection::Unencrypted => Outcome::fail(
            id,
            format!("{label} is not encrypted: {}{suffix}", judged.reason),
        )
        .offender(subject.with_reason(judged.reason.clone()))
        .value("encrypted", false),
        Protection::Undetermined => Outcome::no_data(
            id,
            format!(
                "{label} is of undetermined encryption: {}{suffix}",
                judged.reason
            ),
        )
        .checked(subject.with_reason(judged.reason.clone())),
        Protection::NotJudged => {
            let why = match verdict.class {
                FsClass::Stacked => format!(
                    "{label} is an {} filesystem (as in a container): its layers live on \
                     storage this root does not show",
                    verdict.fs_type
                ),
                FsClass::Network => format!(
                    "{label} is on a network filesystem ({} from {}): encryption at rest is \
                     the server's",
                    verdict.fs_type, verdict.source
                ),
                class => format!(
                    "{label} is a {} ({}): not local storage",
                    class.describe(),
                    verdict.fs_type
                ),
            };
            Outcome::no_data(id, format!("{why}{suffix}"))
                .checked(subject.with_reason(judged.reason.clone()))
        }
    };
    if let Some(version) = judged.luks_version() {
        outcome = outcome.value("luks_version", u32::from(version));
    }
    outcome
        .value("fs_type", verdict.fs_type.as_str())
        .value("judged_from", findings.basis.as_str())
        .sources(findings.sources.iter().cloned())
}

fn root_outcome(findings: &Findings) -> Outcome {
    const ID: &str = "encryption.root";
    match &findings.root {
        Some(root) => single_fs_outcome(ID, "/", root, findings),
        None => Outcome::no_data(
            ID,
            format!(
                "no filesystem is {} at /{}",
                match findings.basis {
                    Basis::Live => "mounted",
                    Basis::Configuration => "configured in /etc/fstab",
                },
                findings.basis.suffix()
            ),
        )
        .value("judged_from", findings.basis.as_str())
        .sources(findings.sources.iter().cloned()),
    }
}

fn home_outcome(findings: &Findings) -> Outcome {
    const ID: &str = "encryption.home";
    let Some((holder, home_path)) = &findings.home else {
        return Outcome::no_data(
            ID,
            format!("no filesystem holds /home{}", findings.basis.suffix()),
        )
        .value("judged_from", findings.basis.as_str())
        .sources(findings.sources.iter().cloned());
    };
    let own = holder.mount_point == *home_path;
    let shown = if home_path == "/home" {
        "/home".to_string()
    } else {
        format!("/home (→ {home_path})")
    };
    let label = if own {
        shown
    } else {
        format!(
            "{shown} has no filesystem of its own; it lies on {}, which",
            holder.mount_point
        )
    };
    single_fs_outcome(ID, &label, holder, findings)
        .value("own_mount", own)
        .value("mount_point", holder.mount_point.as_str())
}

fn swap_outcome(findings: &Findings) -> Outcome {
    const ID: &str = "encryption.swap";
    let suffix = findings.basis.suffix();
    let Some(swaps) = &findings.swaps else {
        return Outcome::no_data(
            ID,
            "no /proc/swaps under this root: the active swap areas are unknown",
        )
        .value("judged_from", findings.basis.as_str())
        .sources(findings.sources.iter().cloned());
    };
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let (mut encrypted, mut memory, mut undetermined) = (0usize, 0usize, 0usize);
    for swap in swaps {
        let mut subject = Subject::new("swap", swap.path.clone())
            .fact("type", swap.kind.as_str())
            .fact("protection", swap.judged.protection.as_str());
        if let Some(size) = swap.size_kib {
            subject = subject.fact("size_kib", size);
        }
        subject = with_judgement_facts(subject, &swap.judged);
        match swap.judged.protection {
            Protection::Encrypted => {
                encrypted += 1;
                checked.push(subject);
            }
            Protection::MemoryBacked => {
                memory += 1;
                checked.push(subject);
            }
            Protection::Unencrypted => {
                offenders.push(subject.with_reason(swap.judged.reason.clone()));
            }
            Protection::Undetermined | Protection::NotJudged => {
                undetermined += 1;
                checked.push(subject.with_reason(swap.judged.reason.clone()));
            }
        }
    }
    let total = swaps.len();
    let unencrypted = offenders.len();
    let names = |subjects: &[Subject]| {
        subjects
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut outcome = if total == 0 {
        Outcome::pass(ID, format!("no swap area is in use{suffix}"))
    } else if unencrypted > 0 {
        let summary = format!(
            "{unencrypted} of {total} swap area(s) not encrypted: {}{suffix}",
            names(&offenders)
        );
        Outcome::judge(ID, offenders, checked, "", summary)
    } else if undetermined > 0 {
        let unknown: Vec<Subject> = checked
            .iter()
            .filter(|s| s.reason.is_some())
            .cloned()
            .collect();
        let mut outcome = Outcome::no_data(
            ID,
            format!(
                "cannot tell whether {undetermined} of {total} swap area(s) are encrypted: {}\
                 {suffix}",
                names(&unknown)
            ),
        );
        outcome.evidence.checked = checked;
        outcome
    } else {
        let summary = format!(
            "every swap area is protected: {encrypted} encrypted, {memory} memory-backed \
             ({}){suffix}",
            names(&checked)
        );
        Outcome::judge(ID, Vec::new(), checked, summary, "")
    };
    if let Some(version) = swaps.iter().filter_map(|s| s.judged.luks_version()).min() {
        outcome = outcome.value("luks_version", u32::from(version));
    }
    outcome
        .value("swap_areas", total)
        .value("encrypted", encrypted)
        .value("memory_backed", memory)
        .value("unencrypted", unencrypted)
        .value("undetermined", undetermined)
        .value("judged_from", findings.basis.as_str())
        .sources(findings.sources.iter().cloned())
}

fn normalise_mount_point(path: &str) -> &str {
    if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    }
}

/// One entry per filesystem: a bind mount (`fs_root` other than `/`) of a device that is also
/// mounted whole is the same filesystem, listed once with the places it is also mounted.
fn without_bind_duplicates(filesystems: &[FsVerdict]) -> (Vec<&FsVerdict>, Vec<Vec<String>>) {
    use std::collections::HashMap;
    let key = |fs: &FsVerdict| match fs.device {
        Some(device) if !device.is_anonymous() => format!("dev {device}"),
        _ => format!("src {} {}", fs.fs_type, fs.source),
    };
    let keys: Vec<String> = filesystems.iter().map(key).collect();
    let mut whole: HashMap<&str, usize> = HashMap::new();
    for (index, fs) in filesystems.iter().enumerate() {
        if fs.fs_root == "/" {
            whole.entry(keys[index].as_str()).or_insert(index);
        }
    }
    let mut also_at: HashMap<usize, Vec<String>> = HashMap::new();
    let mut kept = Vec::new();
    for (index, fs) in filesystems.iter().enumerate() {
        let is_bind = fs.fs_root != "/" && fs.class.is_persistent_local();
        match whole.get(keys[index].as_str()) {
            Some(&whole) if is_bind => {
                also_at
                    .entry(whole)
                    .or_default()
                    .push(fs.mount_point.clone());
            }
            _ => kept.push(index),
        }
    }
    let binds = kept
        .iter()
        .map(|index| also_at.remove(index).unwrap_or_default())
        .collect();
    (
        kept.into_iter().map(|index| &filesystems[index]).collect(),
        binds,
    )
}

fn volumes_outcome(findings: &Findings, settings: &Settings) -> Outcome {
    const ID: &str = "encryption.volumes";
    let suffix = findings.basis.suffix();
    let exempt = |mount_point: &str| {
        settings
            .exempt_mounts
            .iter()
            .any(|e| normalise_mount_point(e) == normalise_mount_point(mount_point))
    };
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut undetermined_names = Vec::new();
    let (mut judged_count, mut encrypted, mut memory, mut undetermined) = (0usize, 0, 0, 0);
    let (mut exempted, mut network, mut not_local) = (0usize, 0usize, 0usize);
    let mut lowest_luks: Option<u16> = None;
    let (filesystems, binds) = without_bind_duplicates(&findings.filesystems);
    for (fs, also_at) in filesystems.iter().zip(&binds) {
        if !fs.class.is_persistent_local() {
            match fs.class {
                FsClass::Network => {
                    network += 1;
                    checked.push(fs_subject(fs, &findings.fstab).with_reason(format!(
                        "not judged: a network filesystem ({} from {}); encryption at rest \
                         is the server's",
                        fs.fs_type, fs.source
                    )));
                }
                FsClass::Pseudo | FsClass::Memory => {}
                _ => not_local += 1,
            }
            continue;
        }
        let mut subject = fs_subject(fs, &findings.fstab);
        if !also_at.is_empty() {
            subject = subject.fact("also_mounted_at", also_at.clone());
        }
        if exempt(&fs.mount_point) {
            exempted += 1;
            checked.push(subject.with_reason(format!(
                "exempt (exempt_mounts): {}",
                fs.judged.protection.as_str()
            )));
            continue;
        }
        judged_count += 1;
        if let Some(version) = fs.judged.luks_version() {
            lowest_luks = Some(lowest_luks.map_or(version, |v| v.min(version)));
        }
        match fs.judged.protection {
            Protection::Encrypted => {
                encrypted += 1;
                checked.push(subject);
            }
            Protection::MemoryBacked => {
                memory += 1;
                checked.push(subject);
            }
            Protection::Unencrypted => {
                offenders.push(subject.with_reason(fs.judged.reason.clone()));
            }
            Protection::Undetermined | Protection::NotJudged => {
                undetermined += 1;
                undetermined_names.push(fs.mount_point.clone());
                checked.push(subject.with_reason(fs.judged.reason.clone()));
            }
        }
    }
    let unencrypted = offenders.len();
    let skipped = {
        let mut parts = Vec::new();
        if exempted > 0 {
            parts.push(format!("{exempted} exempt"));
        }
        if network > 0 {
            parts.push(format!("{network} network filesystem(s) not judged"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    };
    let mut outcome = if unencrypted > 0 {
        let names: Vec<&str> = offenders.iter().map(|s| s.id.as_str()).collect();
        let summary = format!(
            "{unencrypted} of {judged_count} persistent local filesystem(s) not encrypted: {}\
             {skipped}{suffix}",
            names.join(", ")
        );
        Outcome::judge(ID, offenders, checked, "", summary)
    } else if undetermined > 0 {
        let mut outcome = Outcome::no_data(
            ID,
            format!(
                "cannot tell whether {undetermined} of {judged_count} persistent local \
                 filesystem(s) are encrypted: {}{skipped}{suffix}",
                undetermined_names.join(", ")
            ),
        );
        outcome.evidence.checked = checked;
        outcome
    } else if judged_count == 0 {
        let mut outcome = Outcome::no_data(
            ID,
            format!("no persistent local filesystem outside the exempt mounts{skipped}{suffix}"),
        );
        outcome.evidence.checked = checked;
        outcome
    } else {
        let summary = format!(
            "all {judged_count} persistent local filesystem(s) are encrypted{skipped}{suffix}"
        );
        Outcome::judge(ID, Vec::new(), checked, summary, "")
    };
    if let Some(version) = lowest_luks {
        outcome = outcome.value("luks_version", u32::from(version));
    }
    debug_assert!(outcome.status != Status::Fail || !outcome.evidence.offenders.is_empty());
    outcome
        .value("filesystems", judged_count)
        .value("encrypted", encrypted)
        .value("unencrypted", unencrypted)
        .value("memory_backed", memory)
        .value("undetermined", undetermined)
        .value("exempt", exempted)
        .value("network", network)
        .value("not_local", not_local)
        .value("bind_mounts", binds.iter().map(Vec::len).sum::<usize>())
        .value("crypttab_entries", findings.crypttab_entries)
        .value("judged_from", findings.basis.as_str())
        .sources(findings.sources.iter().cloned())
}
