//! Evaluating user-defined rules against a root, in three-valued logic: a rule holds, does
//! not hold, or cannot be judged (file missing, package database absent, command refused or
//! failed). Unknowns never turn into passes: `none` of a rule whose file is missing is not
//! "nothing matched" but "cannot tell" (the false passes Wazuh SCA is known for).

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::Settings;
use super::command;
use super::def::{Condition, Definition, Lines, Pattern, Rule, RuleDef};
use crate::checks::support::glob;
use crate::checks::support::pkgs::Installed;
use crate::hostroot::HostRoot;

/// Why a rule could not be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// What it looks at is absent (file, sysctl, package database): `no_data`.
    Absent(String),
    /// Not allowed here (a command on a root other than `/`): `no_data`.
    Refused(String),
    /// Reading or running failed: `error`.
    Failed(String),
}

/// One rule's verdict with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Holds(String),
    Fails(String),
    Unknown(Unknown),
}

/// What a rule is about, for the evidence (`kind`, `id`).
pub fn subject_of(rule: &Rule) -> (&'static str, String) {
    match rule {
        Rule::FileExists { path, .. }
        | Rule::FileContent { path, .. }
        | Rule::FileMeta { path, .. } => ("file", path.clone()),
        Rule::Command { argv, .. } => ("command", argv.join(" ")),
        Rule::Sysctl { key, .. } => ("sysctl", key.clone()),
        Rule::Package { name, .. } => ("package", name.clone()),
    }
}

/// What each rule needs that is shared across the rules of a check.
pub struct Env<'a> {
    pub root: &'a HostRoot,
    pub settings: &'a Settings,
    installed: Option<std::sync::Arc<Installed>>,
}

impl<'a> Env<'a> {
    pub fn new(root: &'a HostRoot, settings: &'a Settings) -> Self {
        Env {
            root,
            settings,
            installed: None,
        }
    }

    fn installed(&mut self) -> &Installed {
        let root = self.root;
        self.installed.get_or_insert_with(|| Installed::load(root))
    }
}

/// Applies a pattern to a text.
fn match_text(p: &Pattern, text: &str) -> (bool, String) {
    let number_ok = |caps: &regex::Captures<'_>| -> bool {
        match &p.compare {
            None => true,
            Some(c) => caps
                .get(1)
                .and_then(|m| m.as_str().trim().parse::<f64>().ok())
                .is_some_and(|x| c.holds(x)),
        }
    };
    let cmp = p
        .compare
        .map(|c| format!(" with the number {}", c.describe()))
        .unwrap_or_default();
    match p.lines {
        Lines::Whole => {
            // CRLF files: `$` must match at the end of each line as users expect.
            let text = text.replace("\r\n", "\n");
            let hit = p.regex.captures_iter(&text).any(|c| number_ok(&c));
            let what = if hit { "matches" } else { "does not match" };
            (hit, format!("{what} /{}/{cmp}", p.source))
        }
        mode => {
            let lines: Vec<&str> = text
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !(p.skip_comments && l.trim_start().starts_with('#')))
                .collect();
            let matching = |l: &str| p.regex.captures(l).is_some_and(|c| number_ok(&c));
            match mode {
                Lines::Any => match lines.iter().find(|l| matching(l)) {
                    Some(l) => (
                        true,
                        format!("line {:?} matches /{}/{cmp}", clip(l), p.source),
                    ),
                    None => (false, format!("no line matches /{}/{cmp}", p.source)),
                },
                Lines::All => match lines.iter().find(|l| !matching(l)) {
                    _ if lines.is_empty() => (false, "no line to match".to_string()),
                    Some(l) => (
                        false,
                        format!("line {:?} does not match /{}/{cmp}", clip(l), p.source),
                    ),
                    None => (
                        true,
                        format!("all {} lines match /{}/{cmp}", lines.len(), p.source),
                    ),
                },
                _ => match lines.iter().find(|l| matching(l)) {
                    Some(l) => (
                        false,
                        format!("line {:?} matches /{}/{cmp}", clip(l), p.source),
                    ),
                    None => (true, format!("no line matches /{}/{cmp}", p.source)),
                },
            }
        }
    }
}

/// A line shortened for a report.
fn clip(l: &str) -> String {
    let t = l.trim();
    if t.chars().count() > 120 {
        format!("{}…", t.chars().take(120).collect::<String>())
    } else {
        t.to_string()
    }
}

/// Largest file a content rule reads.
const CONTENT_LIMIT: u64 = 16 * 1024 * 1024;

fn owner_id(root: &HostRoot, file: &str, name: &str) -> Result<u32, Unknown> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let text = root
        .read_to_string(file)
        .map_err(|e| Unknown::Failed(e.to_string()))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let _ = f.next()?;
            let id = f.next()?.parse::<u32>().ok()?;
            (n == name).then_some(id)
        })
        .next()
        .ok_or_else(|| Unknown::Failed(format!("no {name:?} in {file}")))
}

/// Evaluates one rule.
pub fn evaluate(rule: &Rule, env: &mut Env<'_>) -> Verdict {
    match rule {
        Rule::FileExists { path, exists } => {
            let mut found = match glob::expand(env.root, path) {
                Ok(f) => f,
                Err(e) => return Verdict::Unknown(Unknown::Failed(e.to_string())),
            };
            // A dangling symlink names nothing: it does not make the file exist.
            found.retain(|p| env.root.exists(p));
            match (found.is_empty(), exists) {
                (false, true) => Verdict::Holds("exists".into()),
                (true, true) => Verdict::Fails("does not exist".into()),
                (true, false) => Verdict::Holds("does not exist".into()),
                (false, false) => Verdict::Fails(format!("exists ({})", found.join(", "))),
            }
        }
        Rule::FileContent { path, pattern } => {
            let files = match glob::expand(env.root, path) {
                Ok(f) => f,
                Err(e) => return Verdict::Unknown(Unknown::Failed(e.to_string())),
            };
            if files.is_empty() {
                return Verdict::Unknown(Unknown::Absent(format!("{path} does not exist")));
            }
            // Every matched file must satisfy the expectation.
            let mut explanations = Vec::new();
            for f in &files {
                let text = match env.root.read_bytes(f, CONTENT_LIMIT) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => return Verdict::Unknown(Unknown::Failed(e.to_string())),
                };
                let (ok, why) = match_text(pattern, &text);
                let why = if files.len() > 1 {
                    format!("{f}: {why}")
                } else {
                    why
                };
                if !ok {
                    return Verdict::Fails(why);
                }
                explanations.push(why);
            }
            Verdict::Holds(explanations.join("; "))
        }
        Rule::FileMeta {
            path,
            mode_max,
            owner,
            group,
        } => {
            let files = match glob::expand(env.root, path) {
                Ok(f) => f,
                Err(e) => return Verdict::Unknown(Unknown::Failed(e.to_string())),
            };
            if files.is_empty() {
                return Verdict::Unknown(Unknown::Absent(format!("{path} does not exist")));
            }
            let mut facts = Vec::new();
            for f in &files {
                let meta = match env.root.metadata(f) {
                    Ok(m) => m,
                    Err(e) => return Verdict::Unknown(Unknown::Failed(e.to_string())),
                };
                let mode = meta.mode() & 0o7777;
                let prefix = if files.len() > 1 {
                    format!("{f}: ")
                } else {
                    String::new()
                };
                if let Some(max) = mode_max
                    && mode & !max != 0
                {
                    return Verdict::Fails(format!(
                        "{prefix}mode {mode:04o} has bits beyond {max:04o}"
                    ));
                }
                if let Some(o) = owner {
                    match owner_id(env.root, "/etc/passwd", o) {
                        Ok(uid) if uid != meta.uid() => {
                            return Verdict::Fails(format!(
                                "{prefix}owned by uid {}, not {o}",
                                meta.uid()
                            ));
                        }
                        Ok(_) => {}
                        Err(u) => return Verdict::Unknown(u),
                    }
                }
                if let Some(g) = group {
                    match owner_id(env.root, "/etc/group", g) {
                        Ok(gid) if gid != meta.gid() => {
                            return Verdict::Fails(format!(
                                "{prefix}group gid {}, not {g}",
                                meta.gid()
                            ));
                        }
                        Ok(_) => {}
                        Err(u) => return Verdict::Unknown(u),
                    }
                }
                facts.push(format!(
                    "{prefix}mode {mode:04o}, uid {}, gid {}",
                    meta.uid(),
                    meta.gid()
                ));
            }
            Verdict::Holds(facts.join("; "))
        }
        Rule::Command {
            argv,
            pattern,
            exit_code,
            timeout_secs,
        } => {
            if !env.root.is_live() && !env.settings.commands_on_other_roots {
                return Verdict::Unknown(Unknown::Refused(
                    "commands run on the agent's own machine, not on the root under audit (set [checks.custom] commands_on_other_roots = true to allow)".into(),
                ));
            }
            // Checked at load; checked again in case the definition outlived a config change.
            if !super::def::command_allowed(argv, &env.settings.allow_commands) {
                return Verdict::Unknown(Unknown::Refused(format!(
                    "{} is not in [checks.custom] allow_commands",
                    argv[0]
                )));
            }
            let out = match command::run(
                argv,
                Duration::from_secs(*timeout_secs),
                env.settings.max_output_bytes,
            ) {
                Ok(o) => o,
                Err(e) => return Verdict::Unknown(Unknown::Failed(e.to_string())),
            };
            let mut parts = Vec::new();
            if let Some(want) = exit_code {
                match out.status {
                    Some(code) if code == *want => parts.push(format!("exit code {code}")),
                    Some(code) => {
                        return Verdict::Fails(format!("exit code {code}, expected {want}"));
                    }
                    None => return Verdict::Fails("killed by a signal".into()),
                }
            }
            if let Some(p) = pattern {
                let (ok, why) = match_text(p, &out.stdout);
                let why = format!("output {why}");
                if !ok {
                    return Verdict::Fails(why);
                }
                parts.push(why);
            }
            Verdict::Holds(parts.join("; "))
        }
        Rule::Sysctl {
            key,
            equals,
            pattern,
            compare,
        } => {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            let value = match env.root.read_bytes(&path, 64 * 1024) {
                Ok(b) => String::from_utf8_lossy(&b)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(e) if e.is_not_found() => {
                    return Verdict::Unknown(Unknown::Absent(format!(
                        "{path} does not exist (the kernel lacks {key}, or this root has no /proc)"
                    )));
                }
                Err(e) => return Verdict::Unknown(Unknown::Failed(e.to_string())),
            };
            let (ok, why) = if let Some(want) = equals {
                (
                    value == want.trim(),
                    format!("is {value:?}, expected {want:?}"),
                )
            } else if let Some(p) = pattern {
                let (ok, why) = match_text(p, &value);
                (ok, format!("{value:?} {why}"))
            } else if let Some(c) = compare {
                let ok = value.parse::<f64>().is_ok_and(|x| c.holds(x));
                (ok, format!("is {value}, expected {}", c.describe()))
            } else {
                (false, "no expectation".into())
            };
            if ok {
                Verdict::Holds(why)
            } else {
                Verdict::Fails(why)
            }
        }
        Rule::Package {
            name,
            installed,
            at_least,
            below,
        } => {
            let db = env.installed();
            match db {
                Installed::Known { .. } => {}
                Installed::Unreadable { reason, .. } => {
                    return Verdict::Unknown(Unknown::Failed(reason.clone()));
                }
                Installed::None => {
                    return Verdict::Unknown(Unknown::Absent(
                        "no dpkg or rpm database under this root".into(),
                    ));
                }
            }
            match (db.version(name), installed) {
                (None, true) => Verdict::Fails("not installed".into()),
                (None, false) => Verdict::Holds("not installed".into()),
                (Some(v), false) => Verdict::Fails(format!("installed ({v})")),
                (Some(v), true) => {
                    if let Some(min) = at_least
                        && db.compare(v, min) == std::cmp::Ordering::Less
                    {
                        return Verdict::Fails(format!("version {v} is older than {min}"));
                    }
                    if let Some(max) = below
                        && db.compare(v, max) != std::cmp::Ordering::Less
                    {
                        return Verdict::Fails(format!("version {v} is not below {max}"));
                    }
                    Verdict::Holds(format!("version {v} installed"))
                }
            }
        }
    }
}

/// The combined verdict of a check: the rule results and the overall answer.
#[derive(Debug)]
pub struct Judgement<'d> {
    pub results: Vec<(&'d RuleDef, Verdict)>,
    /// `Some(true)` pass, `Some(false)` fail, `None` cannot tell.
    pub passed: Option<bool>,
}

/// Evaluates every rule and combines them. Every rule is evaluated (not short-circuited) so
/// that the evidence shows all of them.
pub fn judge<'d>(def: &'d Definition, env: &mut Env<'_>) -> Judgement<'d> {
    let results: Vec<(&RuleDef, Verdict)> = def
        .rules
        .iter()
        .map(|r| (r, evaluate(&r.rule, env)))
        .collect();
    let holds = results
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Holds(_)))
        .count();
    let fails = results
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Fails(_)))
        .count();
    let unknown = results.len() - holds - fails;
    let passed = match def.condition {
        Condition::All if fails > 0 => Some(false),
        Condition::All if unknown > 0 => None,
        Condition::All => Some(true),
        Condition::Any if holds > 0 => Some(true),
        Condition::Any if unknown > 0 => None,
        Condition::Any => Some(false),
        Condition::None if holds > 0 => Some(false),
        Condition::None if unknown > 0 => None,
        Condition::None => Some(true),
    };
    Judgement { results, passed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::custom::def::{Compare, Pattern};

    fn pattern(re: &str, lines: Lines, compare: Option<&str>) -> Pattern {
        Pattern {
            regex: regex::RegexBuilder::new(re)
                .multi_line(lines == Lines::Whole)
                .build()
                .unwrap(),
            source: re.into(),
            lines,
            skip_comments: true,
            compare: compare.and_then(Compare::parse),
        }
    }

    const SSHD: &str = "# MaxAuthTries 10\r\nPermitRootLogin no\r\nMaxAuthTries 3\r\n";

    #[test]
    fn line_semantics() {
        let p = pattern(r"^MaxAuthTries\s+(\d+)", Lines::Any, Some("<= 4"));
        assert_eq!(
            match_text(&p, SSHD),
            (
                true,
                "line \"MaxAuthTries 3\" matches /^MaxAuthTries\\s+(\\d+)/ with the number <= 4"
                    .into()
            )
        );
        let p = pattern(r"^MaxAuthTries\s+(\d+)", Lines::Any, Some("<= 2"));
        assert!(
            !match_text(&p, SSHD).0,
            "the commented 10 is skipped, 3 > 2"
        );
        let p = pattern(r"^PermitRootLogin\s+yes", Lines::None, None);
        assert!(match_text(&p, SSHD).0);
        let p = pattern(r"^\S", Lines::All, None);
        assert!(match_text(&p, SSHD).0);
        assert_eq!(match_text(&p, ""), (false, "no line to match".into()));
        let p = pattern(r"^PermitRootLogin no$", Lines::Whole, None);
        assert!(match_text(&p, SSHD).0, "CRLF line ends are normalised");
    }

    fn def(condition: Condition, rules: Vec<Rule>) -> Definition {
        Definition {
            id: "custom.t".into(),
            title: "t".into(),
            rationale: String::new(),
            remediation: String::new(),
            controls: vec!["A.8.9".into()],
            severity: "low".into(),
            condition,
            schedule: None,
            enabled: true,
            rules: rules
                .into_iter()
                .map(|rule| RuleDef {
                    rule,
                    line: 1,
                    description: None,
                })
                .collect(),
            origin: "t.toml:1".into(),
        }
    }

    #[test]
    fn three_valued_conditions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("present"), "x=1\n").unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let settings = Settings::default();
        let holds = Rule::FileExists {
            path: "/present".into(),
            exists: true,
        };
        let fails = Rule::FileExists {
            path: "/missing".into(),
            exists: true,
        };
        let unknown = Rule::FileContent {
            path: "/missing".into(),
            pattern: pattern("x", Lines::Any, None),
        };
        let cases = [
            (Condition::All, vec![holds.clone(), unknown.clone()], None),
            (
                Condition::All,
                vec![fails.clone(), unknown.clone()],
                Some(false),
            ),
            (Condition::Any, vec![fails.clone(), unknown.clone()], None),
            (
                Condition::Any,
                vec![holds.clone(), unknown.clone()],
                Some(true),
            ),
            // `none` with an unreadable subject is not a pass.
            (Condition::None, vec![unknown.clone()], None),
            (Condition::None, vec![fails.clone()], Some(true)),
            (
                Condition::None,
                vec![holds.clone(), unknown.clone()],
                Some(false),
            ),
        ];
        std::os::unix::fs::symlink("/nowhere", dir.path().join("dangling")).unwrap();
        let dangling = Rule::FileExists {
            path: "/dangling".into(),
            exists: true,
        };
        let d = def(Condition::All, vec![dangling]);
        assert_eq!(
            judge(&d, &mut Env::new(&root, &settings)).passed,
            Some(false)
        );
        for (condition, rules, expected) in cases {
            let d = def(condition, rules);
            let mut env = Env::new(&root, &settings);
            assert_eq!(judge(&d, &mut env).passed, expected, "{condition:?}");
        }
    }
}
