//! One collection round: run the enabled checks against a root and assemble a v1 report.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use vigil_shared::report::SCHEMA_V1;
use vigil_shared::{AgentHealth, AgentInfo, CheckResult, HostIdentity, Report};

use crate::checks::{self, CheckContext};
use crate::hostroot::HostRoot;
use crate::settings::ChecksConfig;

/// What one collection needs.
#[derive(Debug)]
pub struct Collection<'a> {
    pub root: &'a HostRoot,
    pub settings: &'a ChecksConfig,
    pub now: DateTime<Utc>,
    pub cache_dir: Option<PathBuf>,
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
        for check in checks::all() {
            let wanted = if only.is_empty() {
                check.common(self.settings).enabled
            } else {
                only.iter().any(|name| name == check.name())
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

/// Names of every check, for `--check` validation and help.
pub fn check_names() -> Vec<&'static str> {
    checks::all().iter().map(|c| c.name()).collect()
}
