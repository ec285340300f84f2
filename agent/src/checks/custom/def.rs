//! The user-defined check format (TOML, documented in `packaging/checks.d/README.md`):
//! parsing with positions, and validation into [`Definition`]s whose every regex, control,
//! schedule and command has been checked, with errors that name the file, the line and what
//! to do.

use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::Settings;

/// Largest definition file read.
pub const FILE_LIMIT: u64 = 1024 * 1024;
/// Most rules in one check.
pub const MAX_RULES: usize = 64;
/// Longest a rule's command may run, in seconds.
pub const MAX_COMMAND_SECS: u64 = 60;
/// Longest all the commands of one check may run together (the scheduler stops a check
/// after 120 s).
pub const MAX_CHECK_COMMAND_SECS: u64 = 100;
/// Longest regex accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 4096;

/// One problem in one definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// How rule outcomes combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Every rule holds.
    All,
    /// At least one rule holds.
    Any,
    /// No rule holds.
    None,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::All => "all",
            Condition::Any => "any",
            Condition::None => "none",
        }
    }
}

/// Line semantics of a regex on a file or command output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// The regex runs on the whole text, `^`/`$` at line ends.
    Whole,
    /// Some line matches.
    Any,
    /// Every line matches (and there is at least one).
    All,
    /// No line matches.
    None,
}

/// A numeric comparison on the first capture group (or the whole value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compare {
    pub op: CompareOp,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    pub fn parse(s: &str) -> Option<Compare> {
        let s = s.trim();
        let (op, rest) = [
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ]
        .iter()
        .find_map(|(sym, op)| s.strip_prefix(sym).map(|r| (*op, r)))?;
        let value: f64 = rest.trim().parse().ok()?;
        value.is_finite().then_some(Compare { op, value })
    }

    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            CompareOp::Eq => x == self.value,
            CompareOp::Ne => x != self.value,
            CompareOp::Lt => x < self.value,
            CompareOp::Le => x <= self.value,
            CompareOp::Gt => x > self.value,
            CompareOp::Ge => x >= self.value,
        }
    }

    pub fn describe(&self) -> String {
        let op = match self.op {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        };
        format!("{op} {}", self.value)
    }
}

/// A text expectation: a regex with its line semantics and optional comparison.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub regex: Regex,
    pub source: String,
    pub lines: Lines,
    pub skip_comments: bool,
    pub compare: Option<Compare>,
}

/// What a rule tests.
#[derive(Debug, Clone)]
pub enum Rule {
    FileExists {
        path: String,
        exists: bool,
    },
    FileContent {
        path: String,
        pattern: Pattern,
    },
    FileMeta {
        path: String,
        mode_max: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
    },
    Command {
        argv: Vec<String>,
        pattern: Option<Pattern>,
        exit_code: Option<i32>,
        timeout_secs: u64,
    },
    Sysctl {
        key: String,
        equals: Option<String>,
        pattern: Option<Pattern>,
        compare: Option<Compare>,
    },
    Package {
        name: String,
        installed: bool,
        at_least: Option<String>,
        below: Option<String>,
    },
}

/// A validated rule with where it was defined.
#[derive(Debug, Clone)]
pub struct RuleDef {
    pub rule: Rule,
    pub line: usize,
    /// The author's label, when given.
    pub description: Option<String>,
}

/// A validated user-defined check.
#[derive(Debug, Clone)]
pub struct Definition {
    /// Full dotted id (`custom.login_banner`).
    pub id: String,
    pub title: String,
    pub rationale: String,
    pub remediation: String,
    pub controls: Vec<String>,
    pub severity: String,
    pub condition: Condition,
    pub schedule: Option<String>,
    pub enabled: bool,
    pub rules: Vec<RuleDef>,
    /// `file:line` of the definition.
    pub origin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    check: Vec<Spanned<CheckDoc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckDoc {
    id: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    rationale: String,
    #[serde(default)]
    remediation: String,
    controls: Spanned<Vec<String>>,
    #[serde(default)]
    severity: Option<Spanned<String>>,
    #[serde(default)]
    condition: Option<Spanned<String>>,
    #[serde(default)]
    schedule: Option<Spanned<String>>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<RuleDoc>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    command: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    sysctl: Option<String>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    exists: Option<bool>,
    #[serde(default)]
    matches: Option<Spanned<String>>,
    #[serde(default)]
    lines: Option<Spanned<String>>,
    #[serde(default)]
    skip_comments: Option<bool>,
    #[serde(default)]
    compare: Option<Spanned<String>>,
    #[serde(default)]
    mode_max: Option<Spanned<String>>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    timeout_secs: Option<Spanned<u64>>,
    #[serde(default)]
    equals: Option<String>,
    #[serde(default)]
    installed: Option<bool>,
    #[serde(default)]
    version_at_least: Option<String>,
    #[serde(default)]
    version_below: Option<String>,
}

/// Check names of the built-in checks: a user namespace must not reuse them.
pub fn reserved_namespaces() -> Vec<&'static str> {
    crate::checks::all().iter().map(|c| c.name()).collect()
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// Parses and validates one file. Returns the valid definitions and every problem.
pub fn parse_file(
    path: &Path,
    text: &str,
    settings: &Settings,
) -> (Vec<Definition>, Vec<LoadError>) {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let err = |line: Option<usize>, message: String| LoadError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let doc: FileDoc = match toml::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let line = e.span().map(|s| line_of(s.start));
            return (
                Vec::new(),
                vec![err(line, e.message().trim_end().replace('\n', " "))],
            );
        }
    };
    if doc.check.is_empty() {
        return (
            Vec::new(),
            vec![err(
                None,
                "defines no check: add a [[check]] table with id, title, controls and [[check.rule]] tables".into(),
            )],
        );
    }
    let reserved = reserved_namespaces();
    let mut defs = Vec::new();
    let mut errors = Vec::new();
    for check in doc.check {
        let check_line = line_of(check.span().start);
        let c = check.into_inner();
        let before = errors.len();
        let mut problem = |line: usize, message: String| errors.push(err(Some(line), message));

        // Id: bare names go under `custom.`, dotted ones are used as written.
        let raw_id = c.id.get_ref().trim();
        let id = if raw_id.contains('.') {
            raw_id.to_string()
        } else {
            format!("custom.{raw_id}")
        };
        let id_line = line_of(c.id.span().start);
        if !vigil_shared::report::is_valid_check_id(&id) {
            problem(
                id_line,
                format!(
                    "id {raw_id:?} is not valid: use lowercase letters, digits and '_' (\"login_banner\", or \"acme.login_banner\" for your own namespace)"
                ),
            );
        } else if let Some(ns) = id.split('.').next()
            && reserved.contains(&ns)
            && ns != "custom"
        {
            problem(
                id_line,
                format!(
                    "id {id:?} uses the namespace of the built-in check {ns:?}: choose another first segment"
                ),
            );
        }
        let title = c.title.get_ref().trim().to_string();
        if title.is_empty() || title.len() > 200 {
            problem(
                line_of(c.title.span().start),
                "title must be 1-200 characters".into(),
            );
        }
        let controls_line = line_of(c.controls.span().start);
        let controls = c.controls.into_inner();
        if controls.is_empty() {
            problem(
                controls_line,
                "controls is empty: name the Annex A controls this check is evidence for (\"A.8.9\")".into(),
            );
        }
        for control in &controls {
            if !vigil_shared::controls::is_known(control) {
                problem(
                    controls_line,
                    format!(
                        "{control:?} is not an ISO/IEC 27001:2022 Annex A control: write it as A.5.1 … A.8.34"
                    ),
                );
            }
        }
        let severity = match &c.severity {
            None => "medium".to_string(),
            Some(s) if SEVERITIES.contains(&s.get_ref().as_str()) => s.get_ref().clone(),
            Some(s) => {
                problem(
                    line_of(s.span().start),
                    format!(
                        "severity {:?}: use one of {}",
                        s.get_ref(),
                        SEVERITIES.join(", ")
                    ),
                );
                String::new()
            }
        };
        let condition = match c
            .condition
            .as_ref()
            .map(|s| (s.get_ref().as_str(), s.span()))
        {
            None | Some(("all", _)) => Condition::All,
            Some(("any", _)) => Condition::Any,
            Some(("none", _)) => Condition::None,
            Some((other, span)) => {
                problem(
                    line_of(span.start),
                    format!("condition {other:?}: use all, any or none"),
                );
                Condition::All
            }
        };
        if let Some(s) = &c.schedule
            && let Err(e) = crate::schedule::parse(s.get_ref())
        {
            problem(line_of(s.span().start), format!("schedule: {e}"));
        }
        if c.rules.is_empty() {
            problem(
                check_line,
                format!("check {id} has no rule: add [[check.rule]] tables"),
            );
        }
        if c.rules.len() > MAX_RULES {
            problem(check_line, format!("at most {MAX_RULES} rules per check"));
        }
        let mut rules = Vec::new();
        let mut command_secs = 0;
        for r in c.rules {
            let line = line_of(r.span().start);
            match validate_rule(r.into_inner(), settings, &line_of) {
                Ok(rule) => {
                    if let Rule::Command { timeout_secs, .. } = &rule.rule {
                        command_secs += timeout_secs;
                    }
                    rules.push(RuleDef { line, ..rule });
                }
                Err((at, message)) => problem(at.unwrap_or(line), message),
            }
        }
        if command_secs > MAX_CHECK_COMMAND_SECS {
            problem(
                check_line,
                format!(
                    "the commands of {id} may run {command_secs} s together, more than {MAX_CHECK_COMMAND_SECS} s: lower timeout_secs or split the check"
                ),
            );
        }
        if errors.len() == before {
            defs.push(Definition {
                id,
                title,
                rationale: c.rationale.trim().to_string(),
                remediation: c.remediation.trim().to_string(),
                controls,
                severity,
                condition,
                schedule: c.schedule.map(Spanned::into_inner),
                enabled: c.enabled,
                rules,
                origin: format!("{}:{check_line}", path.display()),
            });
        }
    }
    (defs, errors)
}

type RuleError = (Option<usize>, String);

fn compile(
    pattern: &Spanned<String>,
    multi_line: bool,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Regex, RuleError> {
    let at = Some(line_of(pattern.span().start));
    let source = pattern.get_ref();
    if source.len() > MAX_REGEX_LEN {
        return Err((at, format!("regex longer than {MAX_REGEX_LEN} bytes")));
    }
    RegexBuilder::new(source)
        .multi_line(multi_line)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            (
                at,
                format!(
                    "matches: invalid regex: {}",
                    e.to_string().lines().last().unwrap_or_default().trim()
                ),
            )
        })
}

fn pattern(
    matches: &Spanned<String>,
    lines: Option<&Spanned<String>>,
    skip_comments: Option<bool>,
    compare: Option<&Spanned<String>>,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Pattern, RuleError> {
    let lines_mode = match lines.map(|l| (l.get_ref().as_str(), l.span())) {
        None => Lines::Whole,
        Some(("any", _)) => Lines::Any,
        Some(("all", _)) => Lines::All,
        Some(("none", _)) => Lines::None,
        Some((other, span)) => {
            return Err((
                Some(line_of(span.start)),
                format!(
                    "lines {other:?}: use any, all or none (or leave it out to match the whole text)"
                ),
            ));
        }
    };
    let regex = compile(matches, lines_mode == Lines::Whole, line_of)?;
    let compare = match compare {
        None => None,
        Some(c) => {
            let parsed = Compare::parse(c.get_ref()).ok_or((
                Some(line_of(c.span().start)),
                format!(
                    "compare {:?}: write an operator and a number, \"<= 4\"",
                    c.get_ref()
                ),
            ))?;
            if regex.captures_len() < 2 {
                return Err((
                    Some(line_of(c.span().start)),
                    "compare needs a capture group in matches: the number is its first group, \"^MaxAuthTries\\\\s+(\\\\d+)\"".into(),
                ));
            }
            Some(parsed)
        }
    };
    if skip_comments.is_some() && lines_mode == Lines::Whole {
        return Err((
            Some(line_of(matches.span().start)),
            "skip_comments applies to lines = any/all/none".into(),
        ));
    }
    Ok(Pattern {
        regex,
        source: matches.get_ref().clone(),
        lines: lines_mode,
        skip_comments: skip_comments.unwrap_or(false),
        compare,
    })
}

/// True when `argv` starts with the words of one allowlist entry.
pub fn command_allowed(argv: &[String], allow: &[String]) -> bool {
    allow.iter().any(|entry| {
        let words: Vec<&str> = entry.split_whitespace().collect();
        !words.is_empty()
            && words.len() <= argv.len()
            && words.iter().zip(argv).all(|(w, a)| *w == a)
    })
}

fn validate_rule(
    r: RuleDoc,
    settings: &Settings,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<RuleDef, RuleError> {
    let subjects = [
        r.file.is_some(),
        r.command.is_some(),
        r.sysctl.is_some(),
        r.package.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if subjects != 1 {
        return Err((
            None,
            "a rule needs exactly one of file, command, sysctl or package".into(),
        ));
    }
    // Keys that do not belong to the rule's kind are errors, not silently ignored.
    let present: Vec<(&str, bool)> = vec![
        ("exists", r.exists.is_some()),
        ("matches", r.matches.is_some()),
        ("lines", r.lines.is_some()),
        ("skip_comments", r.skip_comments.is_some()),
        ("compare", r.compare.is_some()),
        ("mode_max", r.mode_max.is_some()),
        ("owner", r.owner.is_some()),
        ("group", r.group.is_some()),
        ("exit_code", r.exit_code.is_some()),
        ("timeout_secs", r.timeout_secs.is_some()),
        ("equals", r.equals.is_some()),
        ("installed", r.installed.is_some()),
        ("version_at_least", r.version_at_least.is_some()),
        ("version_below", r.version_below.is_some()),
    ];
    let only = |kind: &str, allowed: &[&str]| -> Result<(), RuleError> {
        for (key, set) in &present {
            if *set && !allowed.contains(key) {
                return Err((
                    None,
                    format!(
                        "{key} does not apply to a {kind} rule (it takes {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    };
    let description = r.description.clone();
    let rule = if let Some(path) = r.file {
        only(
            "file",
            &[
                "exists",
                "matches",
                "lines",
                "skip_comments",
                "compare",
                "mode_max",
                "owner",
                "group",
            ],
        )?;
        if !path.starts_with('/') {
            return Err((None, format!("file {path:?}: use an absolute host path")));
        }
        let content = r.matches.is_some();
        let meta = r.mode_max.is_some() || r.owner.is_some() || r.group.is_some();
        match (r.exists, content, meta) {
            (Some(exists), false, false) => Rule::FileExists { path, exists },
            (None, true, false) => {
                let matches = r.matches.as_ref().ok_or((None, String::new()))?;
                Rule::FileContent {
                    path,
                    pattern: pattern(
                        matches,
                        r.lines.as_ref(),
                        r.skip_comments,
                        r.compare.as_ref(),
                        line_of,
                    )?,
                }
            }
            (None, false, true) => {
                let mode_max = match &r.mode_max {
                    None => None,
                    Some(m) => Some(
                        u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8)
                            .ok()
                            .filter(|v| *v <= 0o7777)
                            .ok_or((
                                Some(line_of(m.span().start)),
                                format!(
                                    "mode_max {:?}: write octal permission bits, \"0644\"",
                                    m.get_ref()
                                ),
                            ))?,
                    ),
                };
                Rule::FileMeta {
                    path,
                    mode_max,
                    owner: r.owner,
                    group: r.group,
                }
            }
            _ => {
                return Err((
                    None,
                    "a file rule takes one of: exists; matches (with lines, skip_comments, compare); mode_max/owner/group".into(),
                ));
            }
        }
    } else if let Some(command) = r.command {
        only(
            "command",
            &[
                "matches",
                "lines",
                "skip_comments",
                "compare",
                "exit_code",
                "timeout_secs",
            ],
        )?;
        let at = Some(line_of(command.span().start));
        let argv = command.into_inner();
        match argv.first() {
            None => {
                return Err((
                    at,
                    "command is empty: give the program and its arguments as a list".into(),
                ));
            }
            Some(p) if !p.starts_with('/') => {
                return Err((
                    at,
                    format!(
                        "command {p:?}: give the program's absolute path (no shell, no PATH lookup)"
                    ),
                ));
            }
            _ => {}
        }
        if !command_allowed(&argv, &settings.allow_commands) {
            return Err((
                at,
                format!(
                    "command {:?} is not allowed: add {:?} (or the program with its first arguments) to [checks.custom] allow_commands, or remove the rule",
                    argv.join(" "),
                    argv[0]
                ),
            ));
        }
        if r.matches.is_none() && r.exit_code.is_none() {
            return Err((
                None,
                "a command rule needs matches (on its output) or exit_code".into(),
            ));
        }
        let timeout_secs = match &r.timeout_secs {
            Some(t) if *t.get_ref() == 0 || *t.get_ref() > MAX_COMMAND_SECS => {
                return Err((
                    Some(line_of(t.span().start)),
                    format!("timeout_secs must be 1-{MAX_COMMAND_SECS}"),
                ));
            }
            Some(t) => *t.get_ref(),
            None => settings.command_timeout_secs,
        };
        let pattern = match &r.matches {
            Some(m) => Some(pattern(
                m,
                r.lines.as_ref(),
                r.skip_comments,
                r.compare.as_ref(),
                line_of,
            )?),
            None => None,
        };
        Rule::Command {
            argv,
            pattern,
            exit_code: r.exit_code,
            timeout_secs,
        }
    } else if let Some(key) = r.sysctl {
        only("sysctl", &["equals", "matches", "compare"])?;
        let valid_key = !key.is_empty()
            && key.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !valid_key {
            return Err((
                None,
                format!("sysctl {key:?}: write the dotted name, \"net.ipv4.ip_forward\""),
            ));
        }
        let n = [r.equals.is_some(), r.matches.is_some(), r.compare.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if n != 1 {
            return Err((
                None,
                "a sysctl rule takes one of equals, matches or compare".into(),
            ));
        }
        let pattern = match &r.matches {
            Some(m) => Some(Pattern {
                regex: compile(m, false, line_of)?,
                source: m.get_ref().clone(),
                lines: Lines::Whole,
                skip_comments: false,
                compare: None,
            }),
            None => None,
        };
        let compare = match &r.compare {
            Some(c) => Some(Compare::parse(c.get_ref()).ok_or((
                Some(line_of(c.span().start)),
                format!(
                    "compare {:?}: write an operator and a number, \">= 2\"",
                    c.get_ref()
                ),
            ))?),
            None => None,
        };
        Rule::Sysctl {
            key,
            equals: r.equals,
            pattern,
            compare,
        }
    } else if let Some(name) = r.package {
        only(
            "package",
            &["installed", "version_at_least", "version_below"],
        )?;
        let installed = r.installed.unwrap_or(true);
        if !installed && (r.version_at_least.is_some() || r.version_below.is_some()) {
            return Err((
                None,
                "version_at_least and version_below need installed = true".into(),
            ));
        }
        Rule::Package {
            name,
            installed,
            at_least: r.version_at_least,
            below: r.version_below,
        }
    } else {
        return Err((
            None,
            "a rule needs exactly one of file, command, sysctl or package".into(),
        ));
    };
    Ok(RuleDef {
        rule,
        line: 0,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            allow_commands: vec!["/usr/bin/systemctl is-enabled".into(), "/bin/true".into()],
            ..Settings::default()
        }
    }

    fn parse(text: &str) -> (Vec<Definition>, Vec<String>) {
        let (defs, errors) = parse_file(Path::new("/etc/vigil/checks.d/t.toml"), text, &settings());
        (defs, errors.iter().map(|e| e.to_string()).collect())
    }

    const GOOD: &str = r#"
[[check]]
id = "login_banner"
title = "A legal banner is shown before login"
rationale = "Users are told the system is monitored."
remediation = "Write the approved text into /etc/issue.net."
controls = ["A.5.10"]
severity = "low"

[[check.rule]]
file = "/etc/issue.net"
matches = '(?i)authori[sz]ed\s+use\s+only'

[[check.rule]]
command = ["/usr/bin/systemctl", "is-enabled", "ssh"]
matches = '^enabled$'
exit_code = 0
timeout_secs = 5

[[check]]
id = "acme.web.max_tries"
title = "MaxAuthTries is at most 4"
controls = ["A.8.5"]
condition = "any"
schedule = "0 * * * *"

[[check.rule]]
file = "/etc/ssh/sshd_config"
matches = '^\s*MaxAuthTries\s+(\d+)'
lines = "any"
skip_comments = true
compare = "<= 4"

[[check.rule]]
sysctl = "kernel.randomize_va_space"
equals = "2"

[[check.rule]]
package = "openssh-server"
version_at_least = "1:9.2p1-2+deb12u3"
"#;

    #[test]
    fn a_good_file_loads() {
        let (defs, errors) = parse(GOOD);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].id, "custom.login_banner");
        assert_eq!(defs[0].origin, "/etc/vigil/checks.d/t.toml:2");
        assert_eq!(defs[0].rules[0].line, 10, "the [[check.rule]] header");
        assert_eq!(defs[0].rules[1].line, 14);
        assert!(matches!(
            defs[0].rules[1].rule,
            Rule::Command {
                timeout_secs: 5,
                ..
            }
        ));
        assert_eq!(defs[1].id, "acme.web.max_tries");
        assert_eq!(defs[1].condition, Condition::Any);
        assert_eq!(defs[1].severity, "medium");
        let Rule::FileContent { pattern, .. } = &defs[1].rules[0].rule else {
            panic!()
        };
        assert_eq!(pattern.lines, Lines::Any);
        assert_eq!(pattern.compare, Compare::parse("<=4"));
    }

    #[test]
    fn problems_name_the_line_and_the_fix() {
        let bad = GOOD
            .replace("\"A.5.10\"", "\"5.10\"")
            .replace("(?i)authori", "(?i)authori[")
            .replace(
                "\"/usr/bin/systemctl\", \"is-enabled\"",
                "\"/usr/bin/systemctl\", \"stop\"",
            )
            .replace("condition = \"any\"", "condition = \"most\"")
            .replace("schedule = \"0 * * * *\"", "schedule = \"hourly\"")
            .replace("compare = \"<= 4\"", "compare = \"at most 4\"")
            .replace("equals = \"2\"", "equals = \"2\"\nmatches = \"2\"");
        let (defs, errors) = parse(&bad);
        assert!(defs.is_empty());
        let expected = [
            "/etc/vigil/checks.d/t.toml:7: \"5.10\" is not an ISO/IEC 27001:2022 Annex A control: write it as A.5.1 … A.8.34",
            "/etc/vigil/checks.d/t.toml:12: matches: invalid regex: error: unclosed character class",
            "/etc/vigil/checks.d/t.toml:15: command \"/usr/bin/systemctl stop ssh\" is not allowed: add \"/usr/bin/systemctl\" (or the program with its first arguments) to [checks.custom] allow_commands, or remove the rule",
            "/etc/vigil/checks.d/t.toml:24: condition \"most\": use all, any or none",
        ];
        for (e, x) in errors.iter().zip(expected) {
            assert_eq!(e, x);
        }
        assert!(
            errors[4].starts_with("/etc/vigil/checks.d/t.toml:25: schedule: "),
            "{}",
            errors[4]
        );
        assert!(
            errors[5].starts_with("/etc/vigil/checks.d/t.toml:32: compare \"at most 4\""),
            "{}",
            errors[5]
        );
        assert_eq!(
            errors[6],
            "/etc/vigil/checks.d/t.toml:34: a sysctl rule takes one of equals, matches or compare"
        );
        assert_eq!(errors.len(), 7);
    }

    #[test]
    fn structural_errors() {
        let (_, e) = parse(
            "[[check]]\nid = \"x\"\ntitle = \"t\"\ncontrols = [\"A.8.9\"]\nseverity = \"urgent\"\n[[check.rule]]\nfile = \"/x\"\nexists = true\nowner = \"root\"\n",
        );
        assert_eq!(
            e,
            [
                "/etc/vigil/checks.d/t.toml:5: severity \"urgent\": use one of info, low, medium, high, critical",
                "/etc/vigil/checks.d/t.toml:6: a file rule takes one of: exists; matches (with lines, skip_comments, compare); mode_max/owner/group"
            ]
        );
        let (_, e) = parse(
            "[[check]]\nid = \"x\"\ntitle = \"t\"\ncontrols = [\"A.8.9\"]\n[[check.rule]]\nfile = \"/x\"\nexit_code = 0\n",
        );
        assert_eq!(
            e,
            [
                "/etc/vigil/checks.d/t.toml:5: exit_code does not apply to a file rule (it takes exists, matches, lines, skip_comments, compare, mode_max, owner, group)"
            ]
        );
        let (_, e) =
            parse("[[check]]\nid = \"x\"\ntitle = \"t\"\ncontrols = [\"A.8.9\"]\ntypo = 1\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("/etc/vigil/checks.d/t.toml:5: unknown field `typo`"),
            "{e:?}"
        );
        let (_, e) = parse("[[check]]\nid = \"Bad Id\"\ntitle = \"t\"\ncontrols = []\n");
        assert_eq!(e.len(), 3, "{e:?}");
        let (_, e) = parse(
            "[[check]]\nid = \"packages.mine\"\ntitle = \"t\"\ncontrols = [\"A.8.8\"]\n[[check.rule]]\npackage = \"x\"\n",
        );
        assert!(
            e[0].contains("namespace of the built-in check \"packages\""),
            "{e:?}"
        );
        let (_, e) = parse("x = [");
        assert!(e[0].starts_with("/etc/vigil/checks.d/t.toml:1: "), "{e:?}");
        let (_, e) = parse("");
        assert!(e[0].contains("defines no check"));
        let (_, e) = parse(
            "[[check]]\nid = \"x\"\ntitle = \"t\"\ncontrols = [\"A.8.9\"]\n[[check.rule]]\ncommand = [\"systemctl\"]\nexit_code = 0\n",
        );
        assert!(e[0].contains("absolute path"), "{e:?}");
        let (_, e) = parse(
            "[[check]]\nid = \"x\"\ntitle = \"t\"\ncontrols = [\"A.8.9\"]\n[[check.rule]]\nfile = \"/x\"\nmatches = 'a'\ncompare = \"> 1\"\n",
        );
        assert!(e[0].contains("compare needs a capture group"), "{e:?}");
    }

    #[test]
    fn allowlist_entries_are_argv_prefixes() {
        let allow = vec![
            "/usr/bin/systemctl is-enabled".to_string(),
            "/bin/true".into(),
        ];
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(command_allowed(
            &argv("/usr/bin/systemctl is-enabled ssh"),
            &allow
        ));
        assert!(!command_allowed(
            &argv("/usr/bin/systemctl stop ssh"),
            &allow
        ));
        assert!(!command_allowed(&argv("/usr/bin/systemctl"), &allow));
        assert!(command_allowed(&argv("/bin/true x"), &allow));
        assert!(!command_allowed(&argv("/bin/truex"), &allow));
    }

    #[test]
    fn comparisons() {
        let c = Compare::parse(">= 2").unwrap();
        assert!(c.holds(2.0) && c.holds(3.5) && !c.holds(1.0));
        assert_eq!(Compare::parse("== -1").map(|c| c.holds(-1.0)), Some(true));
        assert!(Compare::parse("=> 2").is_none());
        assert!(Compare::parse("< NaN").is_none());
        assert!(Compare::parse("<").is_none());
    }
}
