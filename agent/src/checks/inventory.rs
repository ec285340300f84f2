//! Host inventory (A.5.9): operating system, kernel, CPU, memory, disks and uptime. Live facts
//! come from `sysinfo` when the root is `/`; on another root only what the root holds
//! (os-release, hostname) is reported, and the result says which facts are live.

use serde::Deserialize;

use super::{Check, CheckContext, Outcome, Output, no_data_for_all};

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "0 */6 * * *".into()
}

const OUTPUTS: &[Output] = &[Output {
    id: "inventory.host",
    controls: &["A.5.9"],
    description: "Operating system, kernel, CPU, memory, disks and uptime of the host",
}];

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

    fn run(&self, _ctx: &CheckContext<'_>) -> Vec<Outcome> {
        no_data_for_all(OUTPUTS, "not implemented yet")
    }
}
