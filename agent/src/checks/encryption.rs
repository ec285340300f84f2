//! Encryption at rest (A.8.24, A.8.1): every mounted filesystem and swap area, whether it sits
//! on dm-crypt/LUKS (following device-mapper slave chains through LVM and RAID), `/etc/crypttab`,
//! and the LUKS header version where readable. Verdicts for `/`, `/home` and swap.

use serde::Deserialize;

use super::{Check, CheckContext, Outcome, Output, no_data_for_all};

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
    /// Mount points that may stay unencrypted (boot loaders must read them).
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

    fn run(&self, _ctx: &CheckContext<'_>) -> Vec<Outcome> {
        no_data_for_all(OUTPUTS, "not implemented yet")
    }
}
