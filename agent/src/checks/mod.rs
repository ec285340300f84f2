//! Evidence checks: one check per file behind the [`Check`] trait, listed once in [`all`].
//!
//! A check reads the host only through [`HostRoot`], gathers its facts once, and returns one
//! [`Outcome`] per output it declares (an account check emits `accounts.uid0`,
//! `accounts.empty_passwords`, …). The runner in [`run_check`] stamps times and durations,
//! attaches the declared Annex A controls, and turns a missing or undeclared output into an
//! error result, so a check cannot silently drop evidence or invent unmapped results.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use vigil_shared::{CheckResult, Evidence, Status, Subject, Value};

use crate::hostroot::HostRoot;
use crate::settings::{ChecksConfig, Common};

pub mod accounts;
pub mod auth_policy;
pub mod backups;
pub mod confdir;
pub mod custom;
pub mod dropin;
pub mod encryption;
pub mod firewall;
pub mod intern;
pub mod inventory;
pub mod kernel_hardening;
pub mod listening;
pub mod logging;
pub mod malware;
pub mod packages;
pub mod screen_lock;
pub mod software;
pub mod ssh;
pub mod support;
pub mod time_sync;
pub mod tls_certs;

/// One output of a check: a stable result id with the controls it is evidence for.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Full dotted id, `<check>.<output>`.
    pub id: &'static str,
    /// Annex A 2022 controls (`A.8.8`); the first is the primary one.
    pub controls: &'static [&'static str],
    /// What the output judges, for people and for `PROTOCOL.md`.
    pub description: &'static str,
}

/// What a check may read besides the host.
#[derive(Debug)]
pub struct CheckContext<'a> {
    pub root: &'a HostRoot,
    /// The clock checks judge ages against (injectable: `collect --now`).
    pub now: DateTime<Utc>,
    pub settings: &'a ChecksConfig,
    /// A directory where a check may keep derived data between runs (parsed package lists);
    /// `None` means no cache.
    pub cache_dir: Option<PathBuf>,
}

/// An evidence check.
pub trait Check: Send + Sync {
    /// Short name: the first segment of every output id, the config section, the CLI switch.
    fn name(&self) -> &'static str;
    /// One sentence on what the check gathers.
    fn description(&self) -> &'static str;
    /// Every output the check reports, each exactly once per run.
    fn outputs(&self) -> &'static [Output];
    /// Whether the check is enabled and when it runs, from its own configuration section.
    fn common(&self, settings: &ChecksConfig) -> Common;
    /// Gathers the facts and judges them. Must not panic; problems become error outcomes.
    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome>;
    /// True for a check whose outputs depend on what it finds (evidence drop-ins): besides its
    /// declared outputs, its outcomes under its own name become results, each with the
    /// controls it carries. Every other check reports exactly its declared outputs.
    fn dynamic_outputs(&self) -> bool {
        false
    }
}

/// Every check, in report order.
pub fn all() -> Vec<Box<dyn Check>> {
    vec![
        Box::new(packages::Packages),
        Box::new(accounts::Accounts),
        Box::new(encryption::Encryption),
        Box::new(inventory::Inventory),
        Box::new(ssh::Ssh),
        Box::new(auth_policy::AuthPolicy),
        Box::new(firewall::Firewall::default()),
        Box::new(kernel_hardening::KernelHardening),
        Box::new(listening::Listening),
        Box::new(time_sync::TimeSync),
        Box::new(logging::Logging),
        Box::new(malware::Malware),
        Box::new(screen_lock::ScreenLock),
        Box::new(tls_certs::TlsCerts),
        Box::new(backups::Backups),
        Box::new(software::Software),
        Box::new(dropin::DropIn),
    ]
}

/// Every check this configuration defines: the built-in ones of [`all`] followed by the
/// user-defined checks loaded from `[checks.custom] dir`. A definition that does not load is
/// an error here, as an invalid configuration is: `validate` reports it with file and line.
pub fn registry(settings: &ChecksConfig) -> Result<Vec<Box<dyn Check>>, custom::LoadErrors> {
    let mut checks = all();
    checks.extend(custom::load_checks(&settings.custom)?);
    Ok(checks)
}

/// A Markdown table of every check output with its controls, for `shared/PROTOCOL.md` (kept in
/// sync by a test).
pub fn outputs_markdown() -> String {
    let mut out = String::from("| Output | Annex A controls | What it judges |\n|---|---|---|\n");
    for check in all() {
        for output in check.outputs() {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                output.id,
                output.controls.join(", "),
                output.description
            ));
        }
    }
    out
}

/// The judgement of one output, before the runner stamps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The output id; owned only for the outputs of a [`Check::dynamic_outputs`] check.
    pub id: Cow<'static, str>,
    /// Controls of a dynamic output; ignored for declared outputs, whose controls are fixed.
    pub controls: Vec<String>,
    pub status: Status,
    pub summary: String,
    pub values: BTreeMap<String, Value>,
    pub evidence: Evidence,
    pub error: Option<String>,
}

impl Outcome {
    fn new(id: impl Into<Cow<'static, str>>, status: Status, summary: impl Into<String>) -> Self {
        Outcome {
            id: id.into(),
            controls: Vec::new(),
            status,
            summary: summary.into(),
            values: BTreeMap::new(),
            evidence: Evidence::default(),
            error: None,
        }
    }

    pub fn pass(id: impl Into<Cow<'static, str>>, summary: impl Into<String>) -> Self {
        Self::new(id, Status::Pass, summary)
    }

    pub fn fail(id: impl Into<Cow<'static, str>>, summary: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, summary)
    }

    pub fn no_data(id: impl Into<Cow<'static, str>>, summary: impl Into<String>) -> Self {
        Self::new(id, Status::NoData, summary)
    }

    pub fn error(id: impl Into<Cow<'static, str>>, error: impl std::fmt::Display) -> Self {
        let message = error.to_string();
        let mut outcome = Self::new(id, Status::Error, format!("could not check: {message}"));
        outcome.error = Some(message);
        outcome
    }

    /// Pass or fail depending on whether any offender was found: the usual shape.
    pub fn judge(
        id: &'static str,
        offenders: Vec<Subject>,
        checked: Vec<Subject>,
        pass_summary: impl Into<String>,
        fail_summary: impl Into<String>,
    ) -> Self {
        let mut outcome = if offenders.is_empty() {
            Self::pass(id, pass_summary)
        } else {
            Self::fail(id, fail_summary)
        };
        outcome.evidence.offenders = offenders;
        outcome.evidence.checked = checked;
        outcome
    }

    /// Sets the controls of a dynamic output (see [`Check::dynamic_outputs`]).
    pub fn controls(mut self, controls: Vec<String>) -> Self {
        self.controls = controls;
        self
    }

    pub fn value(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.values.insert(key.to_string(), value.into());
        self
    }

    pub fn offender(mut self, subject: Subject) -> Self {
        self.evidence.offenders.push(subject);
        self
    }

    pub fn checked(mut self, subject: Subject) -> Self {
        self.evidence.checked.push(subject);
        self
    }

    pub fn source(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        if !self.evidence.sources.contains(&path) {
            self.evidence.sources.push(path);
        }
        self
    }

    pub fn sources<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for path in paths {
            self = self.source(path);
        }
        self
    }
}

/// The same error outcome for every output of a check: used when the facts every output
/// depends on cannot be read.
pub fn error_for_all(outputs: &[Output], error: &impl std::fmt::Display) -> Vec<Outcome> {
    outputs
        .iter()
        .map(|o| Outcome::error(o.id, error))
        .collect()
}

/// The same no-data outcome for every output of a check.
pub fn no_data_for_all(outputs: &[Output], summary: &str) -> Vec<Outcome> {
    outputs
        .iter()
        .map(|o| Outcome::no_data(o.id, summary))
        .collect()
}

/// Runs one check and turns its outcomes into wire results, one per declared output (plus,
/// for a dynamic check, one per well-formed outcome under its name).
pub fn run_check(check: &dyn Check, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
    let started = Instant::now();
    let observed_at = ctx.now;
    let mut outcomes = check.run(ctx);
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let stamp = |outcome: Outcome, controls: Vec<String>| CheckResult {
        check: outcome.id.into_owned(),
        controls,
        observed_at,
        duration_ms,
        status: outcome.status,
        summary: outcome.summary,
        values: outcome.values,
        evidence: outcome.evidence,
        error: outcome.error,
    };

    let mut results = Vec::with_capacity(check.outputs().len());
    for output in check.outputs() {
        let outcome = match outcomes.iter().position(|o| o.id == output.id) {
            Some(i) => outcomes.swap_remove(i),
            None => Outcome::error(output.id, "the check did not report this output"),
        };
        let controls = output.controls.iter().map(|c| (*c).to_string()).collect();
        results.push(stamp(outcome, controls));
    }
    // swap_remove scrambled the rest: dynamic outputs are sorted by id for a stable report.
    let mut seen: BTreeSet<String> = results.iter().map(|r| r.check.clone()).collect();
    let prefix = format!("{}.", check.name());
    let mut strays: Vec<Outcome> = outcomes;
    strays.sort_by(|a, b| a.id.cmp(&b.id));
    for stray in strays {
        let acceptable = check.dynamic_outputs()
            && stray.id.starts_with(&prefix)
            && vigil_shared::report::is_valid_check_id(&stray.id)
            && !stray.controls.is_empty()
            && stray
                .controls
                .iter()
                .all(|c| vigil_shared::controls::is_known(c))
            && !seen.contains(stray.id.as_ref());
        if acceptable {
            seen.insert(stray.id.to_string());
            let controls = stray.controls.clone();
            results.push(stamp(stray, controls));
        } else {
            tracing::warn!(
                check = check.name(),
                output = %stray.id,
                "check reported an undeclared or malformed output; dropped"
            );
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_is_namespaced_by_its_check_and_mapped_to_known_controls() {
        let mut seen = std::collections::BTreeSet::new();
        for check in all() {
            assert!(
                !check.outputs().is_empty(),
                "{} declares no output",
                check.name()
            );
            for output in check.outputs() {
                assert!(
                    output.id.starts_with(&format!("{}.", check.name())),
                    "{} is not under {}",
                    output.id,
                    check.name()
                );
                assert!(
                    vigil_shared::report::is_valid_check_id(output.id),
                    "{}",
                    output.id
                );
                assert!(seen.insert(output.id), "{} declared twice", output.id);
                assert!(
                    !output.controls.is_empty(),
                    "{} maps to no control",
                    output.id
                );
                for control in output.controls {
                    assert!(
                        vigil_shared::controls::is_known(control),
                        "{}: unknown control {control}",
                        output.id
                    );
                }
            }
        }
    }

    struct Partial;
    const PARTIAL_OUTPUTS: &[Output] = &[
        Output {
            id: "partial.one",
            controls: &["A.8.8"],
            description: "one",
        },
        Output {
            id: "partial.two",
            controls: &["A.8.9"],
            description: "two",
        },
    ];
    impl Check for Partial {
        fn name(&self) -> &'static str {
            "partial"
        }
        fn description(&self) -> &'static str {
            "reports only one of its two outputs"
        }
        fn outputs(&self) -> &'static [Output] {
            PARTIAL_OUTPUTS
        }
        fn common(&self, _settings: &ChecksConfig) -> Common {
            Common {
                enabled: true,
                schedule: "* * * * *".into(),
            }
        }
        fn run(&self, _ctx: &CheckContext<'_>) -> Vec<Outcome> {
            vec![
                Outcome::pass("partial.one", "fine"),
                Outcome::pass("partial.bogus", "x"),
            ]
        }
    }

    #[test]
    fn a_missing_output_becomes_an_error_and_strays_are_dropped() {
        let root = HostRoot::new("/").unwrap();
        let settings = ChecksConfig::default();
        let ctx = CheckContext {
            root: &root,
            now: Utc::now(),
            settings: &settings,
            cache_dir: None,
        };
        let results = run_check(&Partial, &ctx);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].status, Status::Pass);
        assert_eq!(results[0].controls, ["A.8.8"]);
        assert_eq!(results[1].status, Status::Error);
        assert_eq!(
            results[1].error.as_deref(),
            Some("the check did not report this output")
        );
    }
}
