//! Patch level (A.8.8): installed packages (dpkg; rpm where present), updates pending computed
//! offline from the package lists already on disk with apt's candidate rules, which of them come
//! from a security archive, the running kernel against the newest installed one, and the days
//! since the last package update.

use serde::Deserialize;

use super::{Check, CheckContext, Outcome, Output, no_data_for_all};

/// `[checks.packages]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// No package installed or upgraded for more than this many days is reported.
    #[serde(default = "default_max_days_since_update")]
    pub max_days_since_update: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            max_days_since_update: default_max_days_since_update(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "5 * * * *".into()
}
fn default_max_days_since_update() -> u32 {
    30
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "packages.inventory",
        controls: &["A.5.9", "A.8.19"],
        description: "Every installed package with its version and architecture",
    },
    Output {
        id: "packages.pending_updates",
        controls: &["A.8.8", "A.8.19"],
        description: "Installed packages for which the configured archives hold a newer candidate",
    },
    Output {
        id: "packages.pending_security",
        controls: &["A.8.8"],
        description: "Pending updates whose candidate comes from a security archive",
    },
    Output {
        id: "packages.kernel",
        controls: &["A.8.8"],
        description: "The running kernel is the newest installed one and no reboot is pending",
    },
    Output {
        id: "packages.last_update",
        controls: &["A.8.8", "A.8.32"],
        description: "Days since a package was last installed or upgraded",
    },
];

/// The patch-level check.
#[derive(Debug)]
pub struct Packages;

impl Check for Packages {
    fn name(&self) -> &'static str {
        "packages"
    }

    fn description(&self) -> &'static str {
        "installed packages, pending (security) updates, kernel and reboot state"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn run(&self, _ctx: &CheckContext<'_>) -> Vec<Outcome> {
        no_data_for_all(OUTPUTS, "not implemented yet")
    }
}
