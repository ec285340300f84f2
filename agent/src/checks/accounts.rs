//! Accounts (A.5.15–A.5.18, A.8.2, A.8.5): every account from passwd/shadow/group, extra uid-0
//! accounts, empty or missing password hashes, password age, privileged groups and sudoers
//! rules, SSH authorized keys, and dormant accounts from lastlog/wtmp.

use serde::Deserialize;

use super::{Check, CheckContext, Outcome, Output, no_data_for_all};

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
        description: "No account has an empty or missing password hash",
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

    fn run(&self, _ctx: &CheckContext<'_>) -> Vec<Outcome> {
        no_data_for_all(OUTPUTS, "not implemented yet")
    }
}
