//! User-defined checks: organisations add their own controls as TOML files in a directory
//! (`[checks.custom] dir`), in the spirit of Wazuh SCA and InSpec, without writing Rust.
//! Each `[[check]]` becomes a real [`Check`] in the registry ([`crate::checks::registry`])
//! with one output (its id), run by the same scheduler with the same timeout as the
//! built-in checks. The format is documented in `packaging/checks.d/README.md`.
//!
//! Decisions worth knowing:
//! - Definitions are validated when loaded (`vigil-agent validate` reports every problem
//!   with file and line); an invalid file makes the configuration invalid, as a bad
//!   schedule does, rather than silently dropping a control.
//! - The directory is read on the agent's machine (it is configuration), relative to the
//!   configuration file when relative; the rules read the audited root through the prefix.
//! - Commands run only if their program (optionally with leading arguments) is listed in
//!   `allow_commands`; never through a shell; with an empty environment, a timeout and a
//!   capped output; and not at all against a root other than `/` unless
//!   `commands_on_other_roots` is set (they would see the agent's machine, not the root).
//! - Rules are judged in three-valued logic ([`eval`]): a rule that cannot be judged makes
//!   the result `no_data` or `error`, never a pass.

pub mod command;
pub mod def;
pub mod eval;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_shared::Subject;

use super::{Check, CheckContext, Outcome, Output, intern};
use def::{Definition, LoadError};
use eval::{Unknown, Verdict};

/// `[checks.custom]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run the user-defined checks.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Their schedule, unless a check sets its own (cron; five fields, or six with seconds
    /// first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Directory of `*.toml` definition files on the agent's machine; relative paths are
    /// taken from the configuration file's directory. Unset: no user-defined checks.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Programs rules may run, as absolute paths optionally followed by leading
    /// arguments: `"/usr/bin/systemctl is-enabled"` allows `systemctl is-enabled …` only.
    #[serde(default)]
    pub allow_commands: Vec<String>,
    /// Default deadline of a command, in seconds (a rule may set 1-60).
    #[serde(default = "default_command_timeout_secs")]
    pub command_timeout_secs: u64,
    /// Output kept from a command, in bytes; the rest is read and dropped.
    #[serde(default = "default_max_output_bytes")]
    pub max_output_bytes: usize,
    /// Run commands even when the audited root is not `/` (they see the agent's machine).
    #[serde(default)]
    pub commands_on_other_roots: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            dir: None,
            allow_commands: Vec::new(),
            command_timeout_secs: default_command_timeout_secs(),
            max_output_bytes: default_max_output_bytes(),
            commands_on_other_roots: false,
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "*/30 * * * *".into()
}
fn default_command_timeout_secs() -> u64 {
    10
}
fn default_max_output_bytes() -> usize {
    64 * 1024
}

/// Most definition files read.
const MAX_FILES: usize = 1000;
/// Most checks defined in total.
const MAX_CHECKS: usize = 1000;

/// Every problem found loading the definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl std::fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "user-defined checks: {}", lines.join("; "))
    }
}

impl std::error::Error for LoadErrors {}

/// Loads and validates every definition of the configured directory.
pub fn load_definitions(settings: &Settings) -> Result<Vec<Definition>, LoadErrors> {
    let Some(dir) = &settings.dir else {
        return Ok(Vec::new());
    };
    let err = |file: &Path, message: String| LoadError {
        file: file.to_path_buf(),
        line: None,
        message,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        LoadErrors(vec![err(
            dir,
            format!("cannot read the directory of user-defined checks: {e}"),
        )])
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "toml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let mut errors = Vec::new();
    if files.len() > MAX_FILES {
        errors.push(err(dir, format!("more than {MAX_FILES} definition files")));
        files.truncate(MAX_FILES);
    }
    let mut defs: Vec<Definition> = Vec::new();
    for file in &files {
        let text = match read_limited(file) {
            Ok(t) => t,
            Err(message) => {
                errors.push(err(file, message));
                continue;
            }
        };
        let (found, problems) = def::parse_file(file, &text, settings);
        errors.extend(problems);
        for d in found {
            if let Some(other) = defs.iter().find(|o| o.id == d.id) {
                errors.push(LoadError {
                    file: file.clone(),
                    line: d.origin.rsplit(':').next().and_then(|l| l.parse().ok()),
                    message: format!(
                        "{} is already defined at {}: ids must be unique",
                        d.id, other.origin
                    ),
                });
                continue;
            }
            defs.push(d);
        }
    }
    if defs.len() > MAX_CHECKS {
        errors.push(err(
            dir,
            format!("more than {MAX_CHECKS} user-defined checks"),
        ));
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(LoadErrors(errors))
    }
}

fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(def::FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > def::FILE_LIMIT {
        return Err(format!("larger than {} bytes", def::FILE_LIMIT));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

/// The registry's user-defined checks.
pub fn load_checks(settings: &Settings) -> Result<Vec<Box<dyn Check>>, LoadErrors> {
    Ok(load_definitions(settings)?
        .into_iter()
        .map(|d| Box::new(CustomCheck::new(d)) as Box<dyn Check>)
        .collect())
}

/// One user-defined check.
#[derive(Debug)]
pub struct CustomCheck {
    def: Definition,
    name: &'static str,
    description: &'static str,
    outputs: &'static [Output],
}

impl CustomCheck {
    pub fn new(def: Definition) -> Self {
        let name = intern::intern(def.id.split('.').next().unwrap_or("custom"));
        let controls: Vec<&str> = def.controls.iter().map(String::as_str).collect();
        let outputs = intern::intern_output(&def.id, &controls, &def.title);
        CustomCheck {
            description: intern::intern(&def.title),
            def,
            name,
            outputs,
        }
    }

    pub fn definition(&self) -> &Definition {
        &self.def
    }
}

impl Check for CustomCheck {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn outputs(&self) -> &'static [Output] {
        self.outputs
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.custom.enabled && self.def.enabled,
            schedule: self
                .def
                .schedule
                .clone()
                .unwrap_or_else(|| settings.custom.schedule.clone()),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        vec![run_definition(&self.def, ctx)]
    }
}

fn run_definition(def: &Definition, ctx: &CheckContext<'_>) -> Outcome {
    let id = intern::intern(&def.id);
    let mut env = eval::Env::new(ctx.root, &ctx.settings.custom);
    let judgement = eval::judge(def, &mut env);
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut unknowns: Vec<(bool, String)> = Vec::new();
    for (rule, verdict) in &judgement.results {
        let (kind, subject) = eval::subject_of(&rule.rule);
        let mut s = Subject::new(kind, subject).fact(
            "rule",
            format!(
                "{}:{}",
                def.origin.rsplit_once(':').map_or("", |(f, _)| f),
                rule.line
            ),
        );
        if let Some(d) = &rule.description {
            s = s.fact("description", d.as_str());
        }
        // For `none`, a holding rule is the offender; otherwise a failing one.
        let offending = match (&def.condition, verdict) {
            (def::Condition::None, Verdict::Holds(_)) => true,
            (def::Condition::None, _) => false,
            (_, Verdict::Fails(_)) => judgement.passed == Some(false),
            _ => false,
        };
        match verdict {
            Verdict::Holds(why) | Verdict::Fails(why) => {
                let s = s.fact(
                    "verdict",
                    if matches!(verdict, Verdict::Holds(_)) {
                        "holds"
                    } else {
                        "fails"
                    },
                );
                if offending {
                    offenders.push(s.with_reason(why.clone()));
                } else {
                    checked.push(s.fact("detail", why.as_str()));
                }
            }
            Verdict::Unknown(u) => {
                let (is_error, why) = match u {
                    Unknown::Absent(w) | Unknown::Refused(w) => (false, w.clone()),
                    Unknown::Failed(w) => (true, w.clone()),
                };
                unknowns.push((is_error, why.clone()));
                checked.push(s.fact("verdict", "unknown").fact("detail", why));
            }
        }
    }
    let mut outcome = match judgement.passed {
        Some(true) => {
            let n = judgement.results.len();
            let holding = judgement
                .results
                .iter()
                .filter(|(_, v)| matches!(v, Verdict::Holds(_)))
                .count();
            let how = match def.condition {
                def::Condition::All if n == 1 => "the rule holds".to_string(),
                def::Condition::All => format!("all {n} rules hold"),
                def::Condition::Any => format!("{holding} of {n} rules hold, one is enough"),
                def::Condition::None if n == 1 => "the rule does not hold, as required".to_string(),
                def::Condition::None => format!("none of the {n} rules holds, as required"),
            };
            Outcome::pass(id, format!("{}: {how}", def.title))
        }
        Some(false) => {
            let reasons: Vec<String> = offenders
                .iter()
                .map(|o| format!("{} {}", o.id, o.reason.clone().unwrap_or_default()))
                .collect();
            let mut summary = format!("{}: {}", def.title, reasons.join("; "));
            if !def.remediation.is_empty() {
                summary.push_str(&format!(" — remediation: {}", def.remediation));
            }
            Outcome::fail(id, summary)
        }
        None => {
            let mut detail: Vec<&str> = Vec::new();
            for (_, w) in &unknowns {
                if !detail.contains(&w.as_str()) {
                    detail.push(w);
                }
            }
            if unknowns.iter().any(|(e, _)| *e) {
                Outcome::error(id, format!("{}: {}", def.title, detail.join("; ")))
            } else {
                Outcome::no_data(
                    id,
                    format!("{}: cannot judge: {}", def.title, detail.join("; ")),
                )
            }
        }
    };
    outcome.evidence.offenders = offenders;
    outcome.evidence.checked = checked;
    for (rule, _) in &judgement.results {
        if let def::Rule::FileExists { path, .. }
        | def::Rule::FileContent { path, .. }
        | def::Rule::FileMeta { path, .. } = &rule.rule
            && !crate::checks::support::glob::has_magic(path)
        {
            outcome = outcome.source(path.clone());
        }
    }
    outcome
        .value("title", def.title.as_str())
        .value("severity", def.severity.as_str())
        .value("condition", def.condition.as_str())
        .value("definition", def.origin.as_str())
        .value("rationale", def.rationale.as_str())
        .value("remediation", def.remediation.as_str())
}

#[cfg(test)]
mod tests;
