//! One collection round: run the enabled checks against a root and assemble a v1 report.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use vigil_shared::report::SCHEMA_V1;
use vigil_shared::{AgentHealth, AgentInfo, CheckResult, HostIdentity, Report};

use crate::checks::{self, Check, CheckContext};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

/// What one collection needs.
pub struct Collection<'a> {
    pub root: &'a HostRoot,
    pub settings: &'a ChecksConfig,
    pub now: DateTime<Utc>,
    pub cache_dir: Option<PathBuf>,
    /// The checks to choose from: [`checks::registry`] for this configuration.
    pub checks: &'a [Box<dyn Check>],
}

impl std::fmt::Debug for Collection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("root", self.root)
            .field("now", &self.now)
            .field("cache_dir", &self.cache_dir)
            .field("checks", &self.checks.len())
            .finish()
    }
}

/// True when a `--check` argument selects the check: its name (every user-defined check of
/// a namespace shares it) or one of its output ids.
pub fn selects(check: &dyn Check, wanted: &str) -> bool {
    check.name() == wanted || check.outputs().iter().any(|o| o.id == wanted)
}

impl Collection<'_> {
    /// Runs the named checks (all enabled checks when `only` is empty) and returns their
    /// results in registry order.
    pub fn run(&self, only: &[String]) -> Vec<CheckResult> {
        let ctx = CheckContext {
            root: self.root,
            now: self.now,
            settings: self.settings,
            cache_dir: self.cache_dir.clone(),
        };
        let mut results = Vec::new();
        for check in self.checks {
            let wanted = if only.is_empty() {
                check.common(self.settings).enabled
            } else {
                only.iter().any(|name| selects(check.as_ref(), name))
            };
            if wanted {
                let _span = tracing::debug_span!("check", name = check.name()).entered();
                results.extend(checks::run_check(check.as_ref(), &ctx));
            }
        }
        results
    }
}

/// Wraps results into a report.
pub fn build_report(
    agent_id: &str,
    host: HostIdentity,
    seq: u64,
    sent_at: DateTime<Utc>,
    results: Vec<CheckResult>,
    health: Option<AgentHealth>,
) -> Report {
    Report {
        schema: SCHEMA_V1.to_string(),
        agent: AgentInfo {
            id: agent_id.to_string(),
            version: vigil_shared::VERSION.to_string(),
            health,
        },
        host,
        batch_id: uuid::Uuid::new_v4().to_string(),
        seq,
        sent_at,
        results,
    }
}

/// Names to offer for `--check`: every check name, and the ids of user-defined checks
/// (which share their namespace's name).
pub fn check_names(registry: &[Box<dyn Check>]) -> Vec<&'static str> {
    let builtin: Vec<&'static str> = checks::all().iter().map(|c| c.name()).collect();
    let mut names: Vec<&'static str> = Vec::new();
    for check in registry {
        if !names.contains(&check.name()) {
            names.push(check.name());
        }
    }
    for check in registry {
        if !builtin.contains(&check.name()) {
            names.extend(check.outputs().iter().map(|o| o.id));
        }
    }
    names
}
