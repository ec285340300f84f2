//! Software beyond the OS packages (A.5.9, A.8.19): snaps, Flatpak applications and
//! runtimes of the system installation, and Python distributions in the system's site
//! directories. Inventory results: they pass with counts and list every item as checked;
//! `no_data` where the root has none of that kind.
//!
//! Python distributions installed by the package manager (`INSTALLER` = `debian`/`rpm`, or
//! none in Debian's `/usr/lib/python3/dist-packages`) are already in `packages.inventory`;
//! they are listed again with `installer` so that the ones pip added stand out
//! (`pip_installed`).

pub mod flatpak;
pub mod python;
pub mod snap;

use serde::Deserialize;
use vigil_shared::{Subject, Value};

use super::support::{glob, list_dir, read_optional};
use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostError, HostRoot, join};

/// `[checks.software]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// System site directories (globs) whose Python distributions are listed.
    #[serde(default = "default_python_dirs")]
    pub python_dirs: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            python_dirs: default_python_dirs(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "50 */6 * * *".into()
}
fn default_python_dirs() -> Vec<String> {
    [
        "/usr/lib/python3*/dist-packages",
        "/usr/lib/python3*/site-packages",
        "/usr/lib64/python3*/site-packages",
        "/usr/local/lib/python3*/dist-packages",
        "/usr/local/lib/python3*/site-packages",
    ]
    .map(String::from)
    .to_vec()
}

const SNAP: &str = "software.snap";
const FLATPAK: &str = "software.flatpak";
const PYTHON: &str = "software.python";

const OUTPUTS: &[Output] = &[
    Output {
        id: SNAP,
        controls: &["A.5.9", "A.8.19"],
        description: "Installed snaps with revision and tracked channel",
    },
    Output {
        id: FLATPAK,
        controls: &["A.5.9", "A.8.19"],
        description: "Flatpak applications and runtimes of the system installation",
    },
    Output {
        id: PYTHON,
        controls: &["A.5.9", "A.8.19"],
        description: "Python distributions in the system site directories, with who installed them",
    },
];

const SNAP_STATE: &str = "/var/lib/snapd/state.json";
const SNAP_STATE_LIMIT: u64 = 64 * 1024 * 1024;
const FLATPAK_DIR: &str = "/var/lib/flatpak";

/// The software inventory check.
#[derive(Debug)]
pub struct Software;

impl Check for Software {
    fn name(&self) -> &'static str {
        "software"
    }

    fn description(&self) -> &'static str {
        "snaps, Flatpak applications and system Python distributions"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.software.enabled,
            schedule: settings.software.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        vec![
            snap_outcome(ctx.root).unwrap_or_else(|e| Outcome::error(SNAP, e)),
            flatpak_outcome(ctx.root).unwrap_or_else(|e| Outcome::error(FLATPAK, e)),
            python_outcome(ctx.root, &ctx.settings.software.python_dirs)
                .unwrap_or_else(|e| Outcome::error(PYTHON, e)),
        ]
    }
}

fn inventory(id: &'static str, what: &str, items: Vec<Subject>, sources: Vec<String>) -> Outcome {
    let n = items.len();
    let mut o = Outcome::pass(id, format!("{n} {what}"));
    o.evidence.checked = items;
    o.value("count", n).sources(sources)
}

fn snap_outcome(root: &HostRoot) -> Result<Outcome, HostError> {
    let mut items = Vec::new();
    let mut sources = Vec::new();
    match root.read_bytes(SNAP_STATE, SNAP_STATE_LIMIT) {
        Ok(bytes) => {
            sources.push(SNAP_STATE.to_string());
            let snaps = match snap::parse_state(&String::from_utf8_lossy(&bytes)) {
                Ok(s) => s,
                Err(e) => return Ok(Outcome::error(SNAP, format!("{SNAP_STATE}: {e}"))),
            };
            for s in snaps {
                let mut subject = Subject::new("snap", s.name.as_str())
                    .fact("type", s.kind.as_str())
                    .fact("revision", s.revision.as_str())
                    .fact("channel", s.channel.as_str())
                    .fact("active", s.active);
                let yaml = format!("/snap/{}/{}/meta/snap.yaml", s.name, s.revision);
                if let Ok(Some(text)) = read_optional(root, &yaml)
                    && let Some(v) = snap::parse_snap_yaml_version(&text)
                {
                    subject = subject.fact("version", v);
                }
                items.push(subject);
            }
        }
        Err(e) if e.is_not_found() => {
            // Without the state (an image where snapd's state was cleaned), the downloaded
            // snap files still say what is installed.
            let mut latest: std::collections::BTreeMap<String, String> = Default::default();
            for name in list_dir(root, "/var/lib/snapd/snaps", ".snap")? {
                if let Some((n, rev)) = snap::parse_snap_file_name(&name) {
                    let newer = latest.get(&n).is_none_or(|old| {
                        rev.parse::<u64>().unwrap_or(0) > old.parse::<u64>().unwrap_or(0)
                    });
                    if newer {
                        latest.insert(n, rev);
                    }
                }
            }
            if latest.is_empty() {
                return Ok(Outcome::no_data(
                    SNAP,
                    "no snapd state and no snap under this root",
                ));
            }
            sources.push("/var/lib/snapd/snaps".to_string());
            for (n, rev) in latest {
                items.push(Subject::new("snap", n).fact("revision", rev).fact(
                    "note",
                    "from the downloaded snap files: snapd's state is missing",
                ));
            }
        }
        Err(e) => return Err(e),
    }
    Ok(inventory(SNAP, "snap(s) installed", items, sources))
}

fn flatpak_outcome(root: &HostRoot) -> Result<Outcome, HostError> {
    let mut items = Vec::new();
    for kind in ["app", "runtime"] {
        let base = format!("{FLATPAK_DIR}/{kind}");
        for id in list_dir(root, &base, "")? {
            let id_dir = join(&base, &id);
            for arch in list_dir(root, &id_dir, "")? {
                let arch_dir = join(&id_dir, &arch);
                if !root.metadata(&arch_dir).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                for branch in list_dir(root, &arch_dir, "")? {
                    let active = format!("{arch_dir}/{branch}/active");
                    let Ok(commit) = root.read_link(&active) else {
                        continue;
                    };
                    let mut subject = Subject::new(format!("flatpak_{kind}"), id.as_str())
                        .fact("arch", arch.as_str())
                        .fact("branch", branch.as_str())
                        .fact("commit", commit.as_str());
                    for meta in ["metainfo", "appdata"] {
                        let dir = if meta == "metainfo" {
                            "metainfo"
                        } else {
                            "appdata"
                        };
                        let p = format!("{active}/files/share/{dir}/{id}.{meta}.xml");
                        if let Ok(bytes) = root.read_bytes(&p, 1024 * 1024)
                            && let Some(v) =
                                flatpak::parse_metainfo_version(&String::from_utf8_lossy(&bytes))
                        {
                            subject = subject.fact("version", v);
                            break;
                        }
                    }
                    items.push(subject);
                }
            }
        }
    }
    if items.is_empty() {
        return Ok(Outcome::no_data(
            FLATPAK,
            "no Flatpak application or runtime in the system installation",
        ));
    }
    let apps = items.iter().filter(|s| s.kind == "flatpak_app").count();
    let runtimes = items.len() - apps;
    Ok(inventory(
        FLATPAK,
        &format!("Flatpak item(s): {apps} application(s), {runtimes} runtime(s)"),
        items,
        vec![FLATPAK_DIR.to_string()],
    )
    .value("applications", apps)
    .value("runtimes", runtimes))
}

/// Bytes of a METADATA file read: the headers come first; the long description after them
/// can be large and is not needed.
const METADATA_PREFIX: usize = 32 * 1024;

fn python_outcome(root: &HostRoot, dirs: &[String]) -> Result<Outcome, HostError> {
    let mut items = Vec::new();
    let mut sources = Vec::new();
    let mut site_dirs: Vec<String> = Vec::new();
    for pattern in dirs {
        for d in glob::expand(root, pattern)? {
            // `/usr/lib/python3.11/dist-packages` may be a link to the shared directory.
            let canonical = root.canonical(&d)?;
            if !site_dirs.contains(&canonical) && root.metadata(&d).is_ok_and(|m| m.is_dir()) {
                site_dirs.push(canonical);
            }
        }
    }
    let mut pip = 0usize;
    for dir in &site_dirs {
        let mut any = false;
        for entry in list_dir(root, dir, "")? {
            let is_dist = entry.ends_with(".dist-info");
            if !is_dist && !entry.ends_with(".egg-info") {
                continue;
            }
            any = true;
            let path = join(dir, &entry);
            let meta_file = if is_dist {
                join(&path, "METADATA")
            } else if root.metadata(&path).is_ok_and(|m| m.is_dir()) {
                join(&path, "PKG-INFO")
            } else {
                path.clone()
            };
            let parsed = root
                .read_prefix(&meta_file, METADATA_PREFIX)
                .ok()
                .and_then(|b| python::parse_metadata(&String::from_utf8_lossy(&b)))
                .or_else(|| python::parse_dir_name(&entry));
            let Some((name, version)) = parsed else {
                continue;
            };
            let installer = if is_dist {
                root.read_bytes(&join(&path, "INSTALLER"), 256)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                    .filter(|s| !s.is_empty())
            } else {
                None
            };
            let by_pip = installer
                .as_deref()
                .is_some_and(|i| i != "debian" && i != "rpm")
                || (installer.is_none() && dir.starts_with("/usr/local/"));
            if by_pip {
                pip += 1;
            }
            items.push(
                Subject::new("python_package", name)
                    .fact("version", version)
                    .fact("location", dir.as_str())
                    .fact(
                        "installer",
                        installer.unwrap_or_else(|| "unknown".to_string()),
                    )
                    .fact("outside_package_manager", by_pip),
            );
        }
        if any {
            sources.push(dir.clone());
        }
    }
    if items.is_empty() {
        return Ok(Outcome::no_data(
            PYTHON,
            "no Python distribution in the system site directories",
        ));
    }
    let n = items.len();
    Ok(inventory(
        PYTHON,
        &format!("Python distribution(s), {pip} of them installed outside the package manager"),
        items,
        sources,
    )
    .value("pip_installed", Value::from(pip))
    .value("count", n))
}

#[cfg(test)]
mod tests;
