//! Reads apt's state through the host root (configuration, sources, Release files,
//! preferences, package lists) and decides, for every installed package, whether apt's
//! candidate is newer: the offline equivalent of `apt list --upgradable`.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, Utc};

use super::aptconf::{ConfError, Config};
use super::candidate::{
    Decision, DefaultPin, IndexFlags, Installed, Observed, Policy, default_release_known,
};
use super::dpkg::{self, Status};
use super::lists::{self, CacheKey, ListCache, ListError, ParsedList};
use super::preferences::{
    FileFacts, PinRecord, PinType, PrefError, VersionMatch, parse_preferences,
};
use super::release::{ReleaseInfo, parse_release};
use super::sources::{self, SourceEntry, SourceError};
use crate::hostroot::{HostError, HostRoot, join};

/// Why apt's view could not be computed; apt itself would refuse to run in most of these.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("apt configuration: {0}")]
    Config(ConfError),
    #[error("apt sources: {0}")]
    Sources(SourceError),
    #[error("apt preferences: {0}")]
    Preferences(PrefError),
    #[error("APT::Default-Release {0:?} names no release available in the sources")]
    DefaultRelease(String),
    #[error("{0}")]
    Host(#[from] HostError),
    #[error("{0}")]
    List(#[from] ListError),
}

/// One index a pending candidate is published in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Suite (`bookworm-security`), else codename, else the suite named in the sources.
    pub suite: String,
    pub origin: String,
    pub label: String,
    pub site: String,
    pub security: bool,
}

/// An installed package whose candidate is newer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub name: String,
    /// The architecture as dpkg has it (`amd64`, `all`).
    pub arch: String,
    pub installed: String,
    pub candidate: String,
    pub archives: Vec<Archive>,
    pub security: bool,
    pub held: bool,
    pub phased: u8,
    /// For phased updates: whether `apt upgrade` keeps it back on this machine for now.
    pub phasing_deferred: Option<bool>,
}

/// apt's view of the host.
#[derive(Debug, Clone, Default)]
pub struct AptView {
    pub pending: Vec<Pending>,
    /// Installed packages evaluated.
    pub checked: usize,
    /// Releases configured (`deb` sources).
    pub releases: usize,
    /// Package lists found and read.
    pub lists_read: usize,
    /// Releases with lists on disk that are security archives.
    pub security_releases: usize,
    /// Package lists apt would read but that are not on disk.
    pub lists_missing: usize,
    /// Newest `Date` of the configured releases' Release files.
    pub newest_release: Option<DateTime<Utc>>,
    /// Host files read.
    pub sources: Vec<String>,
    /// Lists whose cached parse was used.
    pub cache_hits: usize,
    /// Cache files this run used or wrote (the rest may be stale).
    pub cache_files: Vec<std::path::PathBuf>,
    /// Problems apt only warns about (unknown pin types, unreadable optional files).
    pub warnings: Vec<String>,
}

/// Files in an apt configuration directory that apt would read, sorted, following
/// `GetListOfFilesInDir`: regular files, accepted extensions (or none when `allow_no_ext`),
/// names of letters, digits, `_`, `-`, `:` and `.`, not hidden, not ending in a dot.
pub fn apt_dir_files(
    root: &HostRoot,
    dir: &str,
    exts: &[&str],
    allow_no_ext: bool,
) -> Result<Vec<String>, HostError> {
    let names = match root.read_dir(dir) {
        Ok(n) => n,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        if name.starts_with('.') || name.ends_with('.') {
            continue;
        }
        let ext_ok = match name.rfind('.') {
            None => allow_no_ext,
            Some(i) => exts.contains(&&name[i + 1..]),
        };
        if !ext_ok {
            continue;
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'))
        {
            continue;
        }
        let path = join(dir, &name);
        if root.metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
            out.push(path);
        }
    }
    Ok(out)
}

fn read_optional(root: &HostRoot, path: &str) -> Result<Option<String>, HostError> {
    match root.metadata(path) {
        Ok(m) if m.is_file() => root.read_to_string(path).map(Some),
        Ok(_) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads apt's configuration: `apt.conf.d/*`, then `apt.conf`, with `#include`.
pub fn load_config(root: &HostRoot, read: &mut Vec<String>) -> Result<Config, AptError> {
    let mut config = Config::with_defaults();
    let parts = config
        .find_dir("Dir::Etc::parts")
        .unwrap_or_else(|| "/etc/apt/apt.conf.d/".into());
    let main = config
        .find_file("Dir::Etc::main")
        .unwrap_or_else(|| "/etc/apt/apt.conf".into());
    let mut files = apt_dir_files(root, parts.trim_end_matches('/'), &["conf"], true)?;
    if root.metadata(&main).map(|m| m.is_file()).unwrap_or(false) {
        files.push(main);
    }
    for file in files {
        apply_config_file(root, &mut config, &file, 0, read)?;
    }
    Ok(config)
}

fn apply_config_file(
    root: &HostRoot,
    config: &mut Config,
    file: &str,
    depth: u32,
    read: &mut Vec<String>,
) -> Result<(), AptError> {
    let Some(text) = read_optional(root, file)? else {
        return Ok(());
    };
    read.push(file.to_string());
    let mut host_error: Option<HostError> = None;
    let mut include = |cfg: &mut Config, name: &str, depth: u32| -> Result<(), ConfError> {
        let path = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        };
        let files = if name.ends_with('/') {
            match apt_dir_files(root, path.trim_end_matches('/'), &["conf"], true) {
                Ok(f) => f,
                Err(e) => {
                    host_error = Some(e);
                    return Ok(());
                }
            }
        } else {
            vec![path]
        };
        for f in files {
            match apply_config_file(root, cfg, &f, depth, read) {
                Ok(()) => {}
                Err(AptError::Config(e)) => return Err(e),
                Err(AptError::Host(e)) => host_error = Some(e),
                Err(_) => {}
            }
        }
        Ok(())
    };
    config
        .apply_text(&text, file, depth, &mut include)
        .map_err(AptError::Config)?;
    if let Some(e) = host_error {
        return Err(AptError::Host(e));
    }
    Ok(())
}

/// apt's architecture list: `APT::Architectures` or native + dpkg's foreign architectures.
fn architectures(config: &Config, native: &str, dpkg_archs: &[String]) -> Vec<String> {
    let mut archs: Vec<String> = config.find_vector("APT::Architectures");
    if archs.iter().all(String::is_empty) {
        archs = std::iter::once(native.to_string())
            .chain(dpkg_archs.iter().cloned())
            .collect();
    }
    if !archs.iter().any(|a| a == native) {
        archs.insert(0, native.to_string());
    }
    let barbarian = config.find_vector("APT::BarbarianArchitectures");
    let mut out: Vec<String> = Vec::new();
    for a in archs {
        if !a.is_empty() && !out.contains(&a) && !barbarian.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// apt's default status file location (`getDpkgStatusLocation`).
fn status_path(config: &Config) -> String {
    if config.exists("Dir::State::status")
        && let Some(p) = config.find_file("Dir::State::status")
    {
        return p;
    }
    let state = config.find("Dir::State");
    let state = if state.is_empty() {
        "var/lib/apt/"
    } else {
        state
    };
    let dpkg_state = if let Some(s) = state.strip_suffix("/apt/") {
        format!("{s}/dpkg")
    } else if let Some(s) = state.strip_suffix("/apt") {
        format!("{s}/dpkg")
    } else {
        "var/lib/dpkg".to_string()
    };
    let mut c = Config::default();
    let dir = config.find("Dir");
    c.set("Dir", if dir.is_empty() { "/" } else { dir });
    c.set("Dir::State", &dpkg_state);
    c.set("Dir::State::status", "status");
    c.find_file("Dir::State::status")
        .unwrap_or_else(|| "/var/lib/dpkg/status".into())
}

fn is_security(info: &ReleaseInfo, dist: &str) -> bool {
    let suffix = |s: &str| s.ends_with("-security") || s.ends_with("/updates");
    info.label.eq_ignore_ascii_case("Debian-Security")
        || suffix(&info.suite)
        || suffix(&info.codename)
        || (info.suite.is_empty() && info.codename.is_empty() && suffix(dist.trim_end_matches('/')))
}

/// One list file apt reads.
struct ListFile {
    path: String,
    release: usize,
}

/// Everything needed to compute the view, gathered from the host.
pub struct Inputs<'a> {
    pub root: &'a HostRoot,
    /// dpkg's parsed status file and its host path.
    pub status: &'a Status,
    pub status_path: &'a str,
    pub native_arch: &'a str,
    pub dpkg_archs: &'a [String],
    pub cache: Option<&'a ListCache>,
}

/// Computes apt's view.
pub fn evaluate(inputs: &Inputs<'_>) -> Result<AptView, AptError> {
    let root = inputs.root;
    let mut view = AptView::default();
    let config = load_config(root, &mut view.sources)?;

    let native = {
        let n = config.find("APT::Architecture");
        if n.is_empty() {
            inputs.native_arch.to_string()
        } else {
            n.to_string()
        }
    };
    let archs = architectures(&config, &native, inputs.dpkg_archs);

    // Sources: the main file, then the parts directory.
    let mut entries: Vec<SourceEntry> = Vec::new();
    let main = config
        .find_file("Dir::Etc::sourcelist")
        .unwrap_or_else(|| "/etc/apt/sources.list".into());
    let parts = config
        .find_dir("Dir::Etc::sourceparts")
        .unwrap_or_else(|| "/etc/apt/sources.list.d/".into());
    let mut source_files: Vec<String> = Vec::new();
    if root.metadata(&main).map(|m| m.is_file()).unwrap_or(false) {
        source_files.push(main);
    }
    source_files.extend(apt_dir_files(
        root,
        parts.trim_end_matches('/'),
        &["list", "sources"],
        false,
    )?);
    for file in &source_files {
        let Some(text) = read_optional(root, file)? else {
            continue;
        };
        view.sources.push(file.clone());
        let parsed = if file.ends_with(".sources") {
            sources::parse_deb822(&text, file, &native)
        } else {
            sources::parse_one_line(&text, file, &native)
        };
        entries.extend(parsed.map_err(AptError::Sources)?);
    }
    let releases = sources::build_indexes(&entries, &archs);
    view.releases = releases.iter().filter(|r| !r.targets.is_empty()).count();

    // Release files and the lists present on disk, in apt's order.
    let lists_dir = config
        .find_dir("Dir::State::lists")
        .unwrap_or_else(|| "/var/lib/apt/lists/".into());
    let mut files: Vec<FileFacts> = Vec::new();
    let mut flags: Vec<IndexFlags> = Vec::new();
    let mut list_files: Vec<ListFile> = Vec::new();
    let mut release_infos: Vec<(ReleaseInfo, String)> = Vec::new();
    for (ri, rel) in releases.iter().enumerate() {
        let mut info = ReleaseInfo::default();
        for name in [&rel.inrelease_file, &rel.release_file] {
            let path = format!("{lists_dir}{name}");
            if let Some(text) = read_optional(root, &path)? {
                view.sources.push(path);
                info = parse_release(&text).unwrap_or_default();
                break;
            }
        }
        if !rel.targets.is_empty()
            && let Some(date) = info.published()
            && view.newest_release.is_none_or(|d| date > d)
        {
            view.newest_release = Some(date);
        }
        let mut release_has_lists = false;
        for target in &rel.targets {
            let mut found = None;
            for ext in lists::EXTENSIONS {
                let path = format!("{lists_dir}{}{ext}", target.file_name);
                match root.metadata(&path) {
                    Ok(m) if m.is_file() => {
                        found = Some(path);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let Some(path) = found else {
                // binary-all indexes only exist where the archive publishes them
                if target.arch != "all" {
                    view.lists_missing += 1;
                }
                continue;
            };
            files.push(FileFacts {
                has_release: true,
                suite: info.suite().map(str::to_string),
                codename: info.codename().map(str::to_string),
                version: info.version().map(str::to_string),
                origin: info.origin().map(str::to_string),
                label: info.label().map(str::to_string),
                site: Some(rel.site.clone()),
                component: Some(target.component.clone()),
                arch: Some(target.arch.clone()).filter(|a| !a.is_empty()),
            });
            flags.push(IndexFlags {
                not_automatic: info.not_automatic,
                but_automatic_upgrades: info.but_automatic_upgrades,
            });
            list_files.push(ListFile { path, release: ri });
            release_has_lists = true;
        }
        if release_has_lists && is_security(&info, &rel.dist) {
            view.security_releases += 1;
        }
        release_infos.push((info, rel.dist.clone()));
    }
    let status_file = files.len();
    files.push(FileFacts {
        component: Some("now".into()),
        ..FileFacts::default()
    });
    flags.push(IndexFlags::default());

    // Preferences: the main file, then the parts directory.
    let mut pref_files: Vec<String> = Vec::new();
    if let Some(p) = config.find_file("Dir::Etc::preferences") {
        pref_files.push(p);
    }
    if let Some(d) = config.find_dir("Dir::Etc::preferencesparts") {
        pref_files.extend(apt_dir_files(
            root,
            d.trim_end_matches('/'),
            &["pref"],
            true,
        )?);
    }
    let mut defaults: Vec<DefaultPin> = Vec::new();
    let default_release = config.find("APT::Default-Release").to_string();
    if !default_release.is_empty() {
        if !default_release_known(&default_release, &files) {
            return Err(AptError::DefaultRelease(default_release));
        }
        defaults.push(DefaultPin {
            matcher: VersionMatch::new(&default_release, PinType::Release),
            priority: 990,
        });
    }
    let mut specific: Vec<PinRecord> = Vec::new();
    for file in &pref_files {
        let Some(text) = read_optional(root, file)? else {
            continue;
        };
        view.sources.push(file.clone());
        let prefs = parse_preferences(&text, file).map_err(AptError::Preferences)?;
        view.warnings.extend(prefs.warnings);
        for record in prefs.records {
            if record.packages.is_none() {
                defaults.push(DefaultPin {
                    matcher: record.matcher,
                    priority: record.priority,
                });
            } else {
                specific.push(record);
            }
        }
    }

    // The status file apt reads (normally dpkg's).
    let apt_status_path = status_path(&config);
    let apt_status;
    let status: &Status = if apt_status_path == inputs.status_path {
        inputs.status
    } else {
        let text = root.read_bytes(&apt_status_path, 1 << 30)?;
        apt_status = dpkg::parse_status(&String::from_utf8_lossy(&text));
        &apt_status
    };
    view.sources.push(apt_status_path.clone());

    // Installed packages by name, then architecture.
    let mut installed: Vec<(Installed, bool, String)> = Vec::new();
    let mut by_name: HashMap<&str, Vec<(String, usize)>, NameHash> = HashMap::with_hasher(NameHash);
    for p in status.packages.iter().filter(|p| p.is_current()) {
        let arch = p.cache_arch(&native).to_string();
        by_name
            .entry(p.name.as_str())
            .or_default()
            .push((arch.clone(), installed.len()));
        installed.push((
            Installed {
                name: p.name.clone(),
                arch,
                version: p.version.clone(),
                hash: p.hash,
                multi_arch: p.multi_arch,
                source: p.source.clone(),
            },
            p.held(),
            p.arch.clone(),
        ));
    }
    let mut observed: Vec<Vec<Observed>> = vec![Vec::new(); installed.len()];

    for (fi, lf) in list_files.iter().enumerate() {
        let (mut list, hit) = load_list(root, &lf.path, inputs.cache, true)?;
        view.sources.push(lf.path.clone());
        view.lists_read += 1;
        let mut found: Vec<(usize, Observed)> = Vec::new();
        let mut intact = collect_observed(&list, &by_name, &native, fi, &mut found);
        if !intact && hit {
            // A cache entry that passed its checksum but does not decode: parse the list itself.
            tracing::warn!(path = %lf.path, "discarding an undecodable package list cache entry");
            list = load_list(root, &lf.path, inputs.cache, false)?.0;
            found.clear();
            intact = collect_observed(&list, &by_name, &native, fi, &mut found);
        } else if hit {
            view.cache_hits += 1;
        }
        if !intact {
            view.warnings
                .push(format!("{}: parsed list was inconsistent", lf.path));
        }
        if let Some(cache) = inputs.cache
            && let Ok(real) = root.real_path(&lf.path)
        {
            view.cache_files.push(cache.file_for_path(&real));
        }
        for (idx, o) in found {
            if let Some(slot) = observed.get_mut(idx) {
                slot.push(o);
            }
        }
    }

    let phasing = PhasingContext::read(root, &config);
    let policy = Policy::new(files, status_file, &flags, &defaults, specific, &native);
    for (i, (inst, held, dpkg_arch)) in installed.iter().enumerate() {
        let decision: Decision = policy.decide(inst, &observed[i]);
        view.checked += 1;
        if !decision.upgradable {
            continue;
        }
        let Some(cand) = decision.candidate else {
            continue;
        };
        let mut archives: Vec<Archive> = Vec::new();
        for &f in &cand.files {
            let Some(lf) = list_files.get(f) else {
                continue;
            };
            let Some((info, dist)) = release_infos.get(lf.release) else {
                continue;
            };
            let suite = info
                .suite()
                .or(info.codename())
                .unwrap_or(dist.as_str())
                .to_string();
            let archive = Archive {
                suite,
                origin: info.origin.clone(),
                label: info.label.clone(),
                site: releases
                    .get(lf.release)
                    .map(|r| r.site.clone())
                    .unwrap_or_default(),
                security: is_security(info, dist),
            };
            if !archives.contains(&archive) {
                archives.push(archive);
            }
        }
        view.pending.push(Pending {
            name: inst.name.clone(),
            arch: dpkg_arch.clone(),
            installed: inst.version.clone(),
            candidate: cand.version.clone(),
            security: archives.iter().any(|a| a.security),
            archives,
            held: *held,
            phased: cand.phased,
            phasing_deferred: (cand.phased < 100)
                .then(|| phasing.deferred(&cand, decision.security_between)),
        });
    }
    view.pending
        .sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    Ok(view)
}

/// What apt's `PhasedUpgrader` needs to know about this machine.
struct PhasingContext {
    machine_id: String,
    always: bool,
    never: bool,
    /// `APT::Get::Phase-Policy`: apt then phases through the candidate (not modelled) and
    /// never holds back during upgrade.
    policy_mode: bool,
    chroot: bool,
}

impl PhasingContext {
    fn read(root: &HostRoot, config: &Config) -> PhasingContext {
        let mut machine_id = config.find("APT::Machine-ID").to_string();
        if machine_id.is_empty() {
            let file = config
                .find_file("Dir::Etc::machine-id")
                .or_else(|| {
                    config
                        .find_dir("Dir::Etc")
                        .map(|d| format!("{d}../machine-id"))
                })
                .unwrap_or_else(|| "/etc/machine-id".into());
            let file = normalize_path(&file);
            if let Ok(text) = root.read_to_string(&file) {
                machine_id = text.lines().next().unwrap_or("").to_string();
            }
        }
        let always = config.find_bool(
            "APT::Get::Always-Include-Phased-Updates",
            config.find_bool("Update-Manager::Always-Include-Phased-Updates", false),
        );
        let never = config.find_bool(
            "APT::Get::Never-Include-Phased-Updates",
            config.find_bool("Update-Manager::Never-Include-Phased-Updates", false),
        );
        // apt asks `ischroot -t`: the root directory differs from PID 1's. Only the running
        // machine can be asked (when PID 1's root cannot be read, as in some containers,
        // ischroot answers "not a chroot" too); an image is judged as the machine it boots.
        let chroot = root.is_live()
            && match (root.metadata("/"), root.metadata("/proc/1/root")) {
                (Ok(a), Ok(b)) => {
                    use std::os::unix::fs::MetadataExt;
                    (a.dev(), a.ino()) != (b.dev(), b.ino())
                }
                _ => false,
            };
        PhasingContext {
            machine_id,
            always,
            never,
            policy_mode: config.find_bool("APT::Get::Phase-Policy", false),
            chroot,
        }
    }

    /// apt's `PhasedUpgrader::ShouldKeep` for an upgrade to `cand`.
    fn deferred(&self, cand: &super::candidate::Version, security_between: bool) -> bool {
        if cand.phased >= 100 || security_between || self.policy_mode || self.always {
            return false;
        }
        if self.never {
            return true;
        }
        if self.machine_id.is_empty() || self.chroot {
            return false;
        }
        super::phasing::draw(&cand.source, &cand.source_version, &self.machine_id)
            > u64::from(cand.phased)
    }
}

fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Entries of `list` for installed packages, as (installed index, observation).
fn collect_observed(
    list: &ParsedList,
    by_name: &HashMap<&str, Vec<(String, usize)>, NameHash>,
    native: &str,
    file: usize,
    found: &mut Vec<(usize, Observed)>,
) -> bool {
    list.for_each(|e| {
        let Some(candidates) = by_name.get(e.name) else {
            return;
        };
        let arch = if e.arch == "all" { native } else { e.arch };
        for (a, idx) in candidates {
            if a == arch {
                found.push((
                    *idx,
                    Observed {
                        file,
                        version: e.version.to_string(),
                        hash: e.hash,
                        size: e.size,
                        multi_arch: e.multi_arch,
                        source: if e.source.is_empty() {
                            e.name.to_string()
                        } else {
                            e.source.to_string()
                        },
                        source_version: e.source_version.to_string(),
                        phased: e.phased,
                    },
                ));
            }
        }
    })
}

/// FNV-1a for the name lookups of the list scan: a list has ~60 000 entries and SipHash's
/// DoS resistance buys nothing against the host's own package names.
#[derive(Debug, Clone, Copy, Default)]
struct NameHash;

#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::hash::BuildHasher for NameHash {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

/// A list's parsed form: from the cache when allowed and it holds this exact file version,
/// otherwise parsed (and cached). Returns whether the cache was used.
fn load_list(
    root: &HostRoot,
    path: &str,
    cache: Option<&ListCache>,
    use_cached: bool,
) -> Result<(ParsedList, bool), AptError> {
    let real = root.real_path(path)?;
    if let Some(cache) = cache.filter(|_| use_cached) {
        let meta = root.metadata(path)?;
        if let Some(list) = cache.load(&CacheKey::from_metadata(&real, &meta)) {
            return Ok((list, true));
        }
    }
    let file = root.open_regular(path)?;
    // The key comes from the opened file, so it always describes the bytes parsed.
    let meta = file.metadata().map_err(|e| ListError::Io {
        path: path.to_string(),
        source: e,
    })?;
    let reader = lists::decompressor(file, path).map_err(|e| ListError::Io {
        path: path.to_string(),
        source: e,
    })?;
    let list = lists::parse_reader(reader, path)?;
    if let Some(cache) = cache {
        let key = CacheKey::from_metadata(&real, &meta);
        if let Err(e) = cache.store(&key, &list) {
            tracing::warn!(path, error = %e, "could not write the package list cache");
        }
    }
    Ok((list, false))
}

/// Reads a possibly gzip-compressed log through the root, up to `limit` decompressed bytes.
pub fn read_log(root: &HostRoot, path: &str, limit: u64) -> Result<String, HostError> {
    let file = root.open_regular(path)?;
    let mut bytes = Vec::new();
    let io = |e: std::io::Error| HostError::Io {
        path: path.to_string(),
        source: e,
    };
    if path.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(file)
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        file.take(limit).read_to_end(&mut bytes).map_err(io)?;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_archives() {
        let r = |suite: &str, codename: &str, label: &str| ReleaseInfo {
            suite: suite.into(),
            codename: codename.into(),
            label: label.into(),
            ..ReleaseInfo::default()
        };
        assert!(is_security(
            &r("oldstable-security", "bookworm-security", "Debian-Security"),
            "bookworm-security"
        ));
        assert!(is_security(
            &r("oldoldstable", "buster", "Debian-Security"),
            "buster/updates"
        ));
        assert!(is_security(
            &r("jammy-security", "jammy", "Ubuntu"),
            "jammy-security"
        ));
        assert!(is_security(
            &r("jammy-apps-security", "jammy", "UbuntuESMApps"),
            "jammy-apps-security"
        ));
        assert!(is_security(&r("", "", ""), "bookworm-security"));
        assert!(!is_security(
            &r("stable-updates", "bookworm-updates", "Debian"),
            "bookworm-updates"
        ));
        assert!(
            !is_security(&r("jammy-updates", "jammy", "Ubuntu"), "jammy-security"),
            "the Release file wins"
        );
    }

    #[test]
    fn default_status_location() {
        let c = Config::with_defaults();
        assert_eq!(status_path(&c), "/var/lib/dpkg/status");
        let mut c = Config::with_defaults();
        c.set("Dir", "/chroot/");
        assert_eq!(status_path(&c), "/chroot/var/lib/dpkg/status");
        let mut c = Config::with_defaults();
        c.set("Dir::State::status", "/srv/status");
        assert_eq!(status_path(&c), "/srv/status");
    }

    #[test]
    fn architecture_lists() {
        let c = Config::with_defaults();
        assert_eq!(
            architectures(&c, "amd64", &["i386".into(), "amd64".into()]),
            ["amd64", "i386"]
        );
        let mut c = Config::with_defaults();
        c.set("APT::Architectures::", "arm64");
        assert_eq!(
            architectures(&c, "amd64", &["i386".into()]),
            ["amd64", "arm64"]
        );
    }

    #[test]
    fn directory_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("etc/apt/preferences.d");
        std::fs::create_dir_all(&d).unwrap();
        for name in [
            "nodejs",
            "b.pref",
            "c.pref.disabled",
            ".hidden",
            "bad name",
            "x.",
            "a:b.pref",
            "z~",
        ] {
            std::fs::write(d.join(name), "").unwrap();
        }
        std::fs::create_dir(d.join("sub.pref")).unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let files = apt_dir_files(&root, "/etc/apt/preferences.d", &["pref"], true).unwrap();
        assert_eq!(
            files,
            [
                "/etc/apt/preferences.d/a:b.pref",
                "/etc/apt/preferences.d/b.pref",
                "/etc/apt/preferences.d/nodejs"
            ]
        );
        assert!(
            apt_dir_files(&root, "/nope", &["pref"], true)
                .unwrap()
                .is_empty()
        );
    }
}
