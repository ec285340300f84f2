//! The agent's configuration file (`/etc/vigil/agent.toml`), strict: unknown keys are errors.
//!
//! Every field's doc comment is its reference documentation; `packaging/agent.toml` is a
//! commented example that `tests` keep loadable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::checks;

/// Prefix of environment overrides: `VIGIL_AGENT_COLLECTOR__URL=…`.
pub const ENV_PREFIX: &str = "VIGIL_AGENT";

/// The whole agent configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default)]
    pub agent: AgentSection,
    /// Where reports go; required by `run`, unused by `collect`.
    #[serde(default)]
    pub collector: Option<CollectorSection>,
    #[serde(default)]
    pub spool: SpoolSection,
    /// How far the agent lets a check go.
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub checks: ChecksConfig,
}

/// Who this agent is and what it audits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The agent's name on the collector. Leave it unset for an enrolled agent (`vigil-agent
    /// enroll` stores the name the collector granted in the state directory); set it for an
    /// agent registered by hand (`vigil-collector agents add NAME`) or to choose the name
    /// enrollment asks for.
    #[serde(default)]
    pub id: Option<String>,
    /// Root prefix of the filesystem to audit; `/` is this machine.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Durable state: sequence counter, spool, caches. Created 0700 if missing.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Labels sent with every report (`env = "prod"`); the collector's scope selectors use them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            id: None,
            root: default_root(),
            state_dir: default_state_dir(),
            labels: BTreeMap::new(),
        }
    }
}

fn default_root() -> PathBuf {
    PathBuf::from("/")
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/vigil-agent")
}

/// The collector this agent reports to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorSection {
    /// Base URL, `https://collector.example:8470` (plain `http://` only for loopback tests).
    pub url: String,
    /// File holding the agent's token (mode 0600), for an agent registered by hand. An
    /// enrolled agent keeps its credential in the state directory instead.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The agent's token inline; prefer `token_file` so the secret stays out of the config.
    #[serde(default)]
    pub token: Option<String>,
    /// File holding an enrollment token (`vigil-collector enroll-token create`). When the
    /// agent has no credential yet, `run` enrolls with it first; afterwards it is not read.
    #[serde(default)]
    pub enroll_token_file: Option<PathBuf>,
    /// PEM bundle of CAs to trust for the collector's certificate instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for collectors that require mutual TLS; set with
    /// `client_key`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of `client_cert`; keep it 0600.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Longest wait between two delivery attempts after failures, in seconds.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

fn default_max_backoff_secs() -> u64 {
    300
}

/// The on-disk queue of reports not yet acknowledged by the collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSection {
    /// Most reports kept; when full, the oldest report is discarded and counted
    /// (`spool_dropped_total` in the agent's health, sent with the next report).
    #[serde(default = "default_spool_max_reports")]
    pub max_reports: u64,
    /// Most bytes kept on disk (compressed reports); same policy as `max_reports`.
    #[serde(default = "default_spool_max_bytes")]
    pub max_bytes: u64,
}

impl Default for SpoolSection {
    fn default() -> Self {
        SpoolSection {
            max_reports: default_spool_max_reports(),
            max_bytes: default_spool_max_bytes(),
        }
    }
}

fn default_spool_max_reports() -> u64 {
    10_000
}

fn default_spool_max_bytes() -> u64 {
    512 * 1024 * 1024
}

/// Bounds on the work of checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Longest a check may run, in seconds; past it the check is abandoned (its thread is left
    /// to finish, and the check is not started again until it has), and its outputs are
    /// reported as errors that say so.
    #[serde(default = "default_check_timeout_secs")]
    pub check_timeout_secs: u64,
    /// Per-check overrides of `check_timeout_secs`, by check name (`packages = 300`).
    #[serde(default)]
    pub check_timeouts: BTreeMap<String, u64>,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            check_timeout_secs: default_check_timeout_secs(),
            check_timeouts: BTreeMap::new(),
        }
    }
}

fn default_check_timeout_secs() -> u64 {
    120
}

impl LimitsSection {
    /// The timeout of the named check.
    pub fn timeout(&self, check: &str) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.check_timeouts
                .get(check)
                .copied()
                .unwrap_or(self.check_timeout_secs),
        )
    }
}

/// Per-check settings: each check owns its section (`[checks.accounts]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksConfig {
    #[serde(default)]
    pub packages: checks::packages::Settings,
    #[serde(default)]
    pub accounts: checks::accounts::Settings,
    #[serde(default)]
    pub encryption: checks::encryption::Settings,
    #[serde(default)]
    pub inventory: checks::inventory::Settings,
    #[serde(default)]
    pub ssh: checks::ssh::Settings,
    #[serde(default)]
    pub auth_policy: checks::auth_policy::Settings,
    #[serde(default)]
    pub firewall: checks::firewall::Settings,
    #[serde(default)]
    pub kernel_hardening: checks::kernel_hardening::Settings,
    #[serde(default)]
    pub listening: checks::listening::Settings,
    #[serde(default)]
    pub time_sync: checks::time_sync::Settings,
    #[serde(default)]
    pub logging: checks::logging::Settings,
    #[serde(default)]
    pub malware: checks::malware::Settings,
    #[serde(default)]
    pub screen_lock: checks::screen_lock::Settings,
    #[serde(default)]
    pub tls_certs: checks::tls_certs::Settings,
    #[serde(default)]
    pub backups: checks::backups::Settings,
    #[serde(default)]
    pub software: checks::software::Settings,
    #[serde(default)]
    pub dropin: checks::dropin::Settings,
    #[serde(default)]
    pub custom: checks::custom::Settings,
}

/// Settings every check has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub enabled: bool,
    pub schedule: String,
}

/// Problems `validate` finds beyond the file's syntax.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Load(#[from] vigil_shared::config::ConfigError),
    #[error("{0}")]
    Invalid(String),
}

impl AgentConfig {
    /// Loads and validates a config file with environment overrides.
    pub fn load(
        path: &Path,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let mut config: AgentConfig = vigil_shared::config::load(path, ENV_PREFIX, env)?;
        // Paths of configuration (user-defined checks) are relative to the file, as in
        // Prometheus: the same file works wherever it is installed.
        if let Some(dir) = &config.checks.custom.dir
            && dir.is_relative()
        {
            let base = path.parent().unwrap_or(Path::new("."));
            config.checks.custom.dir = Some(base.join(dir));
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks what types cannot: schedules parse, ids are well formed.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        if let Some(id) = &self.agent.id
            && !vigil_shared::report::is_valid_agent_id(id)
        {
            problems.push(format!(
                "agent.id {id:?}: use 1-64 characters of a-z, 0-9, '-', '_', '.'"
            ));
        }
        match checks::registry(&self.checks) {
            Ok(registry) => {
                for check in registry {
                    if let Err(e) = crate::schedule::parse(&check.common(&self.checks).schedule) {
                        problems.push(format!("checks.{}.schedule: {e}", check.name()));
                    }
                }
            }
            Err(errors) => problems.extend(errors.0.iter().map(ToString::to_string)),
        }
        for control in &self.checks.dropin.fallback_controls {
            if !vigil_shared::controls::is_known(control) {
                problems.push(format!(
                    "checks.dropin.fallback_controls: {control:?} is not an Annex A control (A.5.1 … A.8.34)"
                ));
            }
        }
        if self.checks.dropin.fallback_controls.is_empty() {
            problems.push("checks.dropin.fallback_controls: name at least one control".into());
        }
        if !self.checks.dropin.dir.starts_with('/') {
            problems.push(format!(
                "checks.dropin.dir {:?}: must be an absolute host path",
                self.checks.dropin.dir
            ));
        }
        let custom = &self.checks.custom;
        if custom.command_timeout_secs == 0
            || custom.command_timeout_secs > checks::custom::def::MAX_COMMAND_SECS
        {
            problems.push(format!(
                "checks.custom.command_timeout_secs: must be 1-{}",
                checks::custom::def::MAX_COMMAND_SECS
            ));
        }
        for entry in &custom.allow_commands {
            if !entry.starts_with('/') {
                problems.push(format!(
                    "checks.custom.allow_commands {entry:?}: start with the program's absolute path"
                ));
            }
        }
        if let Some(collector) = &self.collector {
            if !(collector.url.starts_with("https://") || collector.url.starts_with("http://")) {
                problems.push(format!(
                    "collector.url {:?}: must start with https:// (or http:// for loopback tests)",
                    collector.url
                ));
            }
            if collector.token.is_some() && collector.token_file.is_some() {
                problems.push("collector: set token_file or token, not both".into());
            }
            if collector.timeout_secs == 0 {
                problems.push("collector.timeout_secs: must be at least 1".into());
            }
            if collector.client_cert.is_some() != collector.client_key.is_some() {
                problems.push("collector: set client_cert and client_key together".into());
            }
        }
        let known: Vec<&str> = checks::all().iter().map(|c| c.name()).collect();
        if self.limits.check_timeout_secs == 0 {
            problems.push("limits.check_timeout_secs: must be at least 1".into());
        }
        for (name, secs) in &self.limits.check_timeouts {
            if !known.contains(&name.as_str()) {
                problems.push(format!(
                    "limits.check_timeouts.{name}: no such check; known checks: {}",
                    known.join(", ")
                ));
            }
            if *secs == 0 {
                problems.push(format!("limits.check_timeouts.{name}: must be at least 1"));
            }
        }
        if self.spool.max_reports == 0 || self.spool.max_bytes < 1024 * 1024 {
            problems
                .push("spool: max_reports must be at least 1 and max_bytes at least 1 MiB".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid(problems.join("; ")))
        }
    }
}
