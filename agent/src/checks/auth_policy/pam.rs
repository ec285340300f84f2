//! `pam.d(5)` files: lines, bracketed controls and arguments, continuation lines, and the
//! stack one service runs for one management group once `@include`, `include` and `substack`
//! are expanded. Also the `key = value` files of the PAM modules (`pwquality.conf`,
//! `faillock.conf`, `pwhistory.conf`).

use std::collections::BTreeMap;

use crate::hostroot::HostRoot;

/// Expansion stops at this depth (Linux-PAM's own limit is 32 nested includes).
const MAX_DEPTH: usize = 32;

/// One line of a PAM service file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PamLine {
    /// `@include common-auth` (Debian): every line of the named file.
    IncludeAll {
        file: String,
        line: usize,
    },
    Rule(Rule),
}

/// `type control module args…`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `auth`, `account`, `password`, `session` (lower-cased).
    pub kind: String,
    /// `-auth …`: PAM skips the line silently when the module is missing.
    pub quiet: bool,
    /// `required`, `include`, or the bracketed form as written (`[success=1 default=ignore]`).
    pub control: String,
    /// The module path or, for `include`/`substack`, the file name.
    pub module: String,
    pub args: Vec<String>,
    pub line: usize,
}

impl Rule {
    /// The module's file name without directory (`pam_unix.so`).
    pub fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    /// The value of `name=value`, the last one winning as in the modules' own parsers.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.iter().rev().find_map(|a| {
            a.split_once('=')
                .and_then(|(k, v)| (k == name).then_some(v))
        })
    }

    /// True when a bare flag (`nullok`, `preauth`) is among the arguments.
    pub fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }
}

/// Splits on whitespace, keeping `[ … ]` groups (which may hold spaces) as one word; `\]`
/// inside a group is a literal bracket.
fn words(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(out);
        };
        let mut word = String::new();
        if first == '[' {
            chars.next();
            word.push('[');
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&']') {
                    word.push(']');
                    chars.next();
                } else if c == ']' {
                    word.push(']');
                    closed = true;
                    break;
                } else {
                    word.push(c);
                }
            }
            if !closed {
                return None;
            }
            // Characters glued to the closing bracket belong to the same word.
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
}

/// Parses one PAM service file; returns the lines and the numbers of lines PAM would reject.
pub fn parse_pam_file(text: &str) -> (Vec<PamLine>, Vec<usize>) {
    let mut lines = Vec::new();
    let mut malformed = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        if pending.is_empty() {
            start = index + 1;
        }
        // Comments end at the newline even on a continued line.
        let content = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        if let Some(body) = content.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(content);
        let line = std::mem::take(&mut pending);
        match parse_line(&line, start) {
            Ok(Some(l)) => lines.push(l),
            Ok(None) => {}
            Err(()) => malformed.push(start),
        }
    }
    if !pending.trim().is_empty() {
        match parse_line(&pending, start) {
            Ok(Some(l)) => lines.push(l),
            Ok(None) => {}
            Err(()) => malformed.push(start),
        }
    }
    (lines, malformed)
}

fn parse_line(line: &str, number: usize) -> Result<Option<PamLine>, ()> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = trimmed.strip_prefix("@include") {
        let file = rest.trim();
        if file.is_empty() || file.contains(char::is_whitespace) {
            return Err(());
        }
        return Ok(Some(PamLine::IncludeAll {
            file: file.to_string(),
            line: number,
        }));
    }
    let words = words(trimmed).ok_or(())?;
    if words.len() < 3 {
        return Err(());
    }
    let (quiet, kind) = match words[0].strip_prefix('-') {
        Some(k) => (true, k.to_ascii_lowercase()),
        None => (false, words[0].to_ascii_lowercase()),
    };
    if !matches!(kind.as_str(), "auth" | "account" | "password" | "session") {
        return Err(());
    }
    Ok(Some(PamLine::Rule(Rule {
        kind,
        quiet,
        control: words[1].clone(),
        module: words[2].clone(),
        args: words[3..].to_vec(),
        line: number,
    })))
}

/// A rule of an expanded stack, with the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRule {
    pub file: String,
    pub rule: Rule,
}

impl StackRule {
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.rule.line)
    }
}

/// The expanded stack of one service for one management group.
#[derive(Debug, Default)]
pub struct Stack {
    pub rules: Vec<StackRule>,
    pub sources: Vec<String>,
    pub problems: Vec<String>,
}

/// Where a PAM file name is looked up: the admin's directory, then the vendor one.
pub fn find_service(root: &HostRoot, name: &str) -> Option<String> {
    if name.contains('/') {
        return root.exists(name).then(|| name.to_string());
    }
    ["/etc/pam.d", "/usr/lib/pam.d"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| root.exists(path))
}

/// Expands `service`'s rules of `kind`.
pub fn stack(root: &HostRoot, service_path: &str, kind: &str) -> Stack {
    let mut out = Stack::default();
    expand(root, service_path, kind, 0, &mut out);
    out
}

fn expand(root: &HostRoot, path: &str, kind: &str, depth: usize, out: &mut Stack) {
    if depth > MAX_DEPTH {
        out.problems
            .push(format!("{path}: includes nested deeper than {MAX_DEPTH}"));
        return;
    }
    let text = match root.read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            out.problems.push(e.to_string());
            return;
        }
    };
    if !out.sources.iter().any(|s| s == path) {
        out.sources.push(path.to_string());
    }
    let (lines, malformed) = parse_pam_file(&text);
    for line in malformed {
        out.problems
            .push(format!("{path}:{line}: not a PAM rule (PAM ignores it)"));
    }
    for line in lines {
        match line {
            PamLine::IncludeAll { file, line } => match find_service(root, &file) {
                Some(p) => expand(root, &p, kind, depth + 1, out),
                None => out
                    .problems
                    .push(format!("{path}:{line}: @include {file}: not found")),
            },
            PamLine::Rule(rule) if rule.kind == kind => {
                let control = rule.control.to_ascii_lowercase();
                if control == "include" || control == "substack" {
                    match find_service(root, &rule.module) {
                        Some(p) => expand(root, &p, kind, depth + 1, out),
                        None => out.problems.push(format!(
                            "{path}:{}: {control} {}: not found",
                            rule.line, rule.module
                        )),
                    }
                } else {
                    out.rules.push(StackRule {
                        file: path.to_string(),
                        rule,
                    });
                }
            }
            PamLine::Rule(_) => {}
        }
    }
}

/// `key = value` lines of the PAM modules' configuration files; a bare key is a flag with an
/// empty value. Later lines win.
pub fn parse_key_values(text: &str) -> BTreeMap<String, (String, usize)> {
    let mut out = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        out.insert(key.to_string(), (value.to_string(), index + 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_pam_lines() {
        let text = "#%PAM-1.0\n@include common-auth\nauth\t[success=1 default=ignore]\tpam_unix.so nullok # comment\n\
                    -auth  optional  pam_systemd_home.so\r\nauth required /usr/lib/security/pam_faillock.so preauth \\\n  silent deny=4\n\
                    account [default=bad success=ok user_unknown=ignore] pam_sss.so\npassword substack system-auth\n\
                    session optional pam_exec.so [/bin/sh -c \"echo a\\]b\"]\nbogus line here\nauth required\n\
                    auth [unterminated pam_x.so\n@include\n";
        let (lines, malformed) = parse_pam_file(text);
        assert_eq!(lines.len(), 7);
        assert_eq!(
            lines[0],
            PamLine::IncludeAll {
                file: "common-auth".into(),
                line: 2
            }
        );
        let PamLine::Rule(unix) = &lines[1] else {
            panic!()
        };
        assert_eq!(unix.control, "[success=1 default=ignore]");
        assert!(unix.flag("nullok"));
        assert_eq!(unix.args, ["nullok"]);
        let PamLine::Rule(systemd) = &lines[2] else {
            panic!()
        };
        assert!(systemd.quiet);
        let PamLine::Rule(faillock) = &lines[3] else {
            panic!()
        };
        assert_eq!(faillock.module_name(), "pam_faillock.so");
        assert_eq!(faillock.line, 5);
        assert_eq!(faillock.arg("deny"), Some("4"));
        assert!(faillock.flag("preauth"));
        let PamLine::Rule(exec) = &lines[6] else {
            panic!()
        };
        assert_eq!(exec.args, ["[/bin/sh -c \"echo a]b\"]"]);
        assert_eq!(malformed, [10, 11, 12, 13]);
    }

    #[test]
    fn reads_module_configuration_files() {
        let kv = parse_key_values(
            "# minlen = 9\nminlen = 14\n  dcredit=-1 # need a digit\nenforce_for_root\nminlen = 15\n= x\nbad key = 1\n",
        );
        assert_eq!(kv["minlen"], ("15".to_string(), 5));
        assert_eq!(kv["dcredit"].0, "-1");
        assert_eq!(kv["enforce_for_root"].0, "");
        assert_eq!(kv.len(), 3);
    }

    fn write(base: &std::path::Path, rel: &str, text: &str) {
        let p = base.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn stacks_expand_includes_substacks_and_the_vendor_directory() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(
            base,
            "etc/pam.d/sshd",
            "@include common-auth\naccount include system-account\nauth optional pam_group.so\n",
        );
        write(
            base,
            "etc/pam.d/common-auth",
            "auth required pam_faillock.so preauth\nauth substack extra\naccount required pam_unix.so\n",
        );
        write(base, "usr/lib/pam.d/extra", "auth required pam_unix.so\n");
        write(base, "etc/pam.d/loop", "@include loop\n");
        let root = HostRoot::new(base).unwrap();
        let auth = stack(&root, "/etc/pam.d/sshd", "auth");
        let got: Vec<(String, &str)> = auth
            .rules
            .iter()
            .map(|r| (r.location(), r.rule.module_name()))
            .collect();
        assert_eq!(
            got,
            [
                ("/etc/pam.d/common-auth:1".to_string(), "pam_faillock.so"),
                ("/usr/lib/pam.d/extra:1".to_string(), "pam_unix.so"),
                ("/etc/pam.d/sshd:3".to_string(), "pam_group.so"),
            ]
        );
        let account = stack(&root, "/etc/pam.d/sshd", "account");
        assert_eq!(
            account.problems,
            ["/etc/pam.d/sshd:2: include system-account: not found"]
        );
        let looped = stack(&root, "/etc/pam.d/loop", "auth");
        assert!(looped.problems[0].contains("nested deeper"));
    }
}
