//! Accounts (A.5.15–A.5.18, A.8.2, A.8.5): every account from passwd/shadow/group, extra uid-0
//! accounts, empty or missing password hashes, password age, privileged groups and sudoers
//! rules, SSH authorized keys, and dormant accounts from lastlog/wtmp.
//!
//! Only local files are read (`files` in nsswitch terms): accounts that come from LDAP or
//! SSSD are not seen. The facts are gathered once ([`gather`]) and judged per output
//! ([`judge`]); every parser is a pure function over text or bytes.
//!
//! Decisions worth knowing:
//! - `accounts.privileged` lists uid-0 accounts, members (supplementary, primary or through
//!   `/etc/gshadow`) and administrators of the configured groups, and holders of sudo rules
//!   that grant `ALL` commands with root among the run-as targets. It fails for: a system
//!   account (uid below `UID_MIN` or above `UID_MAX`, root excepted) among them that can log
//!   in (password, empty password or SSH key); a privileged account with an empty password;
//!   a privileged name with no account behind it (whoever later gets that name inherits the
//!   rights); a privileged group with a group password; a rule granting every user `ALL`.
//! - `accounts.authorized_keys` does not flag keys on password-locked accounts that have a
//!   login shell: key-only login is the recommended setup, and with `UsePAM yes` (Debian's
//!   default) sshd accepts keys regardless of a `!` or `*` password. It flags keys on accounts
//!   whose shell refuses sessions (sshd still authenticates them and allows forwarding) or
//!   that have expired.
//! - File owners of keys files are judged only when the tree's `/` belongs to root (a live
//!   host or a mounted image): a fixture checkout carries the uid of whoever checked it out.
//!   Git keeps no modes either, so the permission findings are tested on trees built in tests.
//! - A login source that cannot be read never turns `accounts.dormant` into a pass it would
//!   not otherwise be: missing records can only make accounts look older.

pub mod authorized_keys;
pub mod gather;
pub mod group;
pub mod judge;
pub mod logins;
pub mod passwd;
pub mod shadow;
pub mod sudoers;

#[cfg(test)]
mod fixture_tests;

use serde::Deserialize;

use super::{Check, CheckContext, Outcome, Output};

/// A line a parser could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Entries a parser accepted and the lines it could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub entries: Vec<T>,
    pub problems: Vec<LineProblem>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            entries: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl<T> Parsed<T> {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(LineProblem {
            line,
            message: message.into(),
        });
    }
}

/// `[checks.accounts]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// An account that can log in but has not for this many days is dormant.
    #[serde(default = "default_dormant_days")]
    pub dormant_days: u32,
    /// Usable passwords older than this, or without a maximum age, are reported.
    #[serde(default = "default_max_password_age_days")]
    pub max_password_age_days: u32,
    /// Groups whose members hold administrative rights.
    #[serde(default = "default_privileged_groups")]
    pub privileged_groups: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            dormant_days: default_dormant_days(),
            max_password_age_days: default_max_password_age_days(),
            privileged_groups: default_privileged_groups(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "*/15 * * * *".into()
}
fn default_dormant_days() -> u32 {
    90
}
fn default_max_password_age_days() -> u32 {
    365
}
fn default_privileged_groups() -> Vec<String> {
    vec!["sudo".into(), "wheel".into(), "admin".into()]
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "accounts.inventory",
        controls: &["A.5.16", "A.5.18"],
        description: "Every local account with uid, shell, password state and last login",
    },
    Output {
        id: "accounts.uid0",
        controls: &["A.8.2", "A.5.15"],
        description: "No account other than root has uid 0",
    },
    Output {
        id: "accounts.empty_passwords",
        controls: &["A.5.17", "A.8.5"],
        description: "No account logs in without a password, lacks its shadow entry or keeps its hash in /etc/passwd",
    },
    Output {
        id: "accounts.password_age",
        controls: &["A.5.17"],
        description: "Usable passwords have a maximum age and are younger than the configured limit",
    },
    Output {
        id: "accounts.privileged",
        controls: &["A.8.2", "A.5.18"],
        description: "Members of administrative groups and holders of sudo ALL rules",
    },
    Output {
        id: "accounts.sudo_nopasswd",
        controls: &["A.8.2", "A.8.5"],
        description: "No sudoers rule lets a user run commands without authenticating",
    },
    Output {
        id: "accounts.authorized_keys",
        controls: &["A.5.17", "A.8.5"],
        description: "SSH authorized keys per account: weak key types and unsafe file permissions",
    },
    Output {
        id: "accounts.dormant",
        controls: &["A.5.18", "A.8.2"],
        description: "Accounts that can log in but have not for the configured number of days",
    },
];

/// The accounts check.
#[derive(Debug)]
pub struct Accounts;

impl Check for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn description(&self) -> &'static str {
        "local accounts, passwords, privileges, sudoers, SSH keys and dormant accounts"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.accounts;
        let facts = gather::gather(ctx.root, ctx.now);
        vec![
            judge::inventory(OUTPUTS[0].id, &facts, ctx.now),
            judge::uid0(OUTPUTS[1].id, &facts),
            judge::empty_passwords(OUTPUTS[2].id, &facts),
            judge::password_age(OUTPUTS[3].id, &facts, settings, ctx.now),
            judge::privileged(OUTPUTS[4].id, &facts, settings),
            judge::sudo_nopasswd(OUTPUTS[5].id, &facts),
            judge::authorized_keys(OUTPUTS[6].id, &facts),
            judge::dormant(OUTPUTS[7].id, &facts, settings, ctx.now),
        ]
    }
}
