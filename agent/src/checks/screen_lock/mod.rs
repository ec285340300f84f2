//! Desktop screen lock (A.8.1, A.7.7): on hosts with GNOME, whether the session locks after a
//! bounded idle time and whether users are prevented from turning that off, from dconf's
//! system databases.
//!
//! Decisions worth knowing:
//! - Only keys set in a system database (`system-db:` of the `user` profile) and locked
//!   there are enforced: anything else, including GNOME's own defaults, each user can change
//!   in their session. With `require_locks = false` a compliant default or system value is
//!   accepted unlocked.
//! - Keyfiles take effect once `dconf update` has compiled them into `/etc/dconf/db/<name>`;
//!   a keyfile directory without that database is reported.
//! - Per-user settings (`~/.config/dconf/user`, a binary database) are not read: locked keys
//!   make them irrelevant, and unlocked keys fail anyway.
//! - Other desktops (KDE Plasma, Xfce, …) are recognised and reported as not judged.

pub mod dconf;

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_shared::Subject;

use super::support::list_dir;
use super::support::pkgs::Installed;
use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::{HostRoot, join};
use dconf::{ProfileDb, Setting};

/// `[checks.screen_lock]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Longest idle time, in seconds, before the screen blanks and locks.
    #[serde(default = "default_max_idle_seconds")]
    pub max_idle_seconds: u32,
    /// Longest delay, in seconds, between blanking and locking.
    #[serde(default = "default_max_lock_delay_seconds")]
    pub max_lock_delay_seconds: u32,
    /// Settings must be locked in a system database so users cannot change them.
    #[serde(default = "default_require_locks")]
    pub require_locks: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            max_idle_seconds: default_max_idle_seconds(),
            max_lock_delay_seconds: default_max_lock_delay_seconds(),
            require_locks: default_require_locks(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "30 */6 * * *".into()
}
fn default_max_idle_seconds() -> u32 {
    900
}
fn default_max_lock_delay_seconds() -> u32 {
    5
}
fn default_require_locks() -> bool {
    true
}

const ID: &str = "screen_lock.idle_lock";

const OUTPUTS: &[Output] = &[Output {
    id: ID,
    controls: &["A.8.1", "A.7.7"],
    description: "GNOME locks the session after a bounded idle time and users cannot turn that off",
}];

const GNOME_MARKERS: [&str; 4] = [
    "/usr/bin/gnome-shell",
    "/usr/sbin/gdm3",
    "/usr/sbin/gdm",
    "/usr/share/gnome-shell",
];
const GNOME_PACKAGES: [&str; 3] = ["gnome-shell", "gdm3", "gdm"];
const OTHER_DESKTOPS: [(&str, &str); 5] = [
    ("KDE Plasma", "/usr/bin/plasmashell"),
    ("Xfce", "/usr/bin/xfce4-session"),
    ("Cinnamon", "/usr/bin/cinnamon-session"),
    ("MATE", "/usr/bin/mate-session"),
    ("LXQt", "/usr/bin/lxqt-session"),
];

/// A key the check judges.
struct Rule {
    key: &'static str,
    /// GNOME's schema default, as dconf would report it.
    default: &'static str,
}

const LOCK_ENABLED: Rule = Rule {
    key: "/org/gnome/desktop/screensaver/lock-enabled",
    default: "true",
};
const IDLE_DELAY: Rule = Rule {
    key: "/org/gnome/desktop/session/idle-delay",
    default: "uint32 300",
};
const LOCK_DELAY: Rule = Rule {
    key: "/org/gnome/desktop/screensaver/lock-delay",
    default: "uint32 0",
};
const DISABLE_LOCK: Rule = Rule {
    key: "/org/gnome/desktop/lockdown/disable-lock-screen",
    default: "false",
};

/// The screen lock check.
#[derive(Debug)]
pub struct ScreenLock;

impl Check for ScreenLock {
    fn name(&self) -> &'static str {
        "screen_lock"
    }

    fn description(&self) -> &'static str {
        "GNOME idle lock settings and their dconf locks"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.screen_lock.enabled,
            schedule: settings.screen_lock.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        vec![judge_host(ctx.root, &ctx.settings.screen_lock)]
    }
}

/// What the system databases say about one key.
#[derive(Debug, Default)]
struct KeyState {
    /// The highest-priority system value, with the database and file.
    value: Option<(Setting, String)>,
    locked_in: Option<String>,
}

fn judge_host(root: &HostRoot, settings: &Settings) -> Outcome {
    let db = Installed::load(root);
    let gnome = GNOME_MARKERS.iter().any(|p| root.exists(p))
        || GNOME_PACKAGES.iter().any(|p| db.version(p).is_some());
    if !gnome {
        let others: Vec<&str> = OTHER_DESKTOPS
            .iter()
            .filter(|(_, p)| root.exists(p))
            .map(|(n, _)| *n)
            .collect();
        if others.is_empty() {
            return Outcome::no_data(ID, "no desktop environment is installed");
        }
        return Outcome::no_data(
            ID,
            format!(
                "{} installed: only GNOME's screen lock settings are read",
                others.join(", ")
            ),
        );
    }

    let mut sources = Vec::new();
    let mut profile_text = None;
    for p in ["/etc/dconf/profile/user", "/usr/share/dconf/profile/user"] {
        match super::support::read_optional(root, p) {
            Ok(Some(t)) => {
                sources.push(p.to_string());
                profile_text = Some(t);
                break;
            }
            Ok(None) => {}
            Err(e) => return Outcome::error(ID, e),
        }
    }
    let profile = profile_text
        .map(|t| dconf::parse_profile(&t))
        .unwrap_or_default();
    let system_dbs: Vec<&str> = profile
        .iter()
        .filter_map(|d| match d {
            ProfileDb::System(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();

    let mut offenders = Vec::new();
    let mut keys: BTreeMap<&str, KeyState> = BTreeMap::new();
    for name in &system_dbs {
        let dir = format!("/etc/dconf/db/{name}.d");
        let files = match list_dir(root, &dir, "") {
            Ok(f) => f,
            Err(e) => return Outcome::error(ID, e),
        };
        let mut has_keyfiles = false;
        for file in files {
            let path = join(&dir, &file);
            if file == "locks" {
                let locks = match list_dir(root, &path, "") {
                    Ok(l) => l,
                    Err(e) => return Outcome::error(ID, e),
                };
                for lock in locks {
                    let lpath = join(&path, &lock);
                    let text = match super::support::read_optional(root, &lpath) {
                        Ok(Some(t)) => t,
                        Ok(None) => continue,
                        Err(e) => return Outcome::error(ID, e),
                    };
                    sources.push(lpath.clone());
                    for key in dconf::parse_locks(&text) {
                        for rule in [&LOCK_ENABLED, &IDLE_DELAY, &LOCK_DELAY, &DISABLE_LOCK] {
                            if rule.key == key {
                                let e = keys.entry(rule.key).or_default();
                                e.locked_in.get_or_insert_with(|| lpath.clone());
                            }
                        }
                    }
                }
                continue;
            }
            if root.metadata(&path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let text = match super::support::read_optional(root, &path) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => return Outcome::error(ID, e),
            };
            has_keyfiles = true;
            sources.push(path.clone());
            // Within one database, files apply in name order: a later file overrides.
            for (key, setting) in dconf::parse_keyfile(&text) {
                for rule in [&LOCK_ENABLED, &IDLE_DELAY, &LOCK_DELAY, &DISABLE_LOCK] {
                    if rule.key == key {
                        let e = keys.entry(rule.key).or_default();
                        let earlier_db = e
                            .value
                            .as_ref()
                            .is_some_and(|(_, f)| !f.starts_with(&format!("{dir}/")));
                        if !earlier_db {
                            e.value = Some((setting.clone(), path.clone()));
                        }
                    }
                }
            }
        }
        let compiled = format!("/etc/dconf/db/{name}");
        if has_keyfiles && !root.metadata(&compiled).is_ok_and(|m| m.is_file()) {
            offenders.push(
                Subject::new("dconf_database", compiled.as_str()).with_reason(format!(
                    "{dir} has keyfiles but {compiled} does not exist: run `dconf update`, until then the settings are not in effect"
                )),
            );
        }
    }

    let mut checked = Vec::new();
    let idle_max = i64::from(settings.max_idle_seconds);
    let delay_max = i64::from(settings.max_lock_delay_seconds);
    for rule in [&LOCK_ENABLED, &IDLE_DELAY, &LOCK_DELAY, &DISABLE_LOCK] {
        let state = keys.remove(rule.key).unwrap_or_default();
        let (raw, origin) = match &state.value {
            Some((s, file)) => (s.raw.clone(), format!("{file}:{}", s.line)),
            None => (rule.default.to_string(), "GNOME default".to_string()),
        };
        let problem = judge_value(rule, &raw, idle_max, delay_max);
        let mut s = Subject::new("dconf_key", rule.key)
            .fact("value", raw.as_str())
            .fact("set_in", origin.as_str())
            .fact("locked", state.locked_in.is_some());
        if let Some(l) = &state.locked_in {
            s = s.fact("lock_file", l.as_str());
        }
        let mut reasons = Vec::new();
        if let Some(p) = problem {
            reasons.push(p);
        }
        if settings.require_locks && state.locked_in.is_none() {
            reasons.push("not locked: every user can change it".to_string());
        }
        if reasons.is_empty() {
            checked.push(s);
        } else {
            offenders.push(s.with_reason(reasons.join("; ")));
        }
    }
    if system_dbs.is_empty() {
        for o in &mut offenders {
            if let Some(r) = &mut o.reason {
                r.push_str(" (the dconf user profile names no system database)");
            }
        }
    }
    let fail = format!(
        "the GNOME screen lock is not enforced: {}",
        offenders
            .iter()
            .map(|o| format!(
                "{} ({})",
                o.id.rsplit('/').next().unwrap_or_default(),
                o.reason.clone().unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Outcome::judge(
        ID,
        offenders,
        checked,
        format!(
            "GNOME locks the screen after at most {} s idle and users cannot change it",
            settings.max_idle_seconds
        ),
        fail,
    )
    .sources(sources)
}

/// Why a value does not meet the rule, or `None`.
fn judge_value(rule: &Rule, raw: &str, idle_max: i64, delay_max: i64) -> Option<String> {
    match rule.key {
        k if k == LOCK_ENABLED.key => match dconf::gvariant_bool(raw) {
            Some(true) => None,
            Some(false) => Some("the screen never locks (lock-enabled=false)".into()),
            None => Some(format!("unreadable value {raw:?}")),
        },
        k if k == DISABLE_LOCK.key => match dconf::gvariant_bool(raw) {
            Some(false) => None,
            Some(true) => Some("locking is disabled (disable-lock-screen=true)".into()),
            None => Some(format!("unreadable value {raw:?}")),
        },
        k if k == IDLE_DELAY.key => match dconf::gvariant_int(raw) {
            Some(0) => Some("the session never goes idle (idle-delay=0)".into()),
            Some(n) if n > idle_max => {
                Some(format!("idle-delay is {n} s, longer than {idle_max} s"))
            }
            Some(_) => None,
            None => Some(format!("unreadable value {raw:?}")),
        },
        _ => match dconf::gvariant_int(raw) {
            Some(n) if n > delay_max => Some(format!(
                "the lock comes {n} s after the screen blanks, later than {delay_max} s"
            )),
            Some(_) => None,
            None => Some(format!("unreadable value {raw:?}")),
        },
    }
}

#[cfg(test)]
mod tests;
