//! `sshd_config(5)` syntax: keyword lines, quoting and comments, `Include` (globs relative to
//! `/etc/ssh`, sorted, nested up to sshd's depth limit) and `Match` blocks.

use crate::checks::confdir::glob_match;
use crate::hostroot::{HostRoot, join};

/// sshd refuses to nest `Include` deeper than this (`SERVCONF_MAX_DEPTH`).
const MAX_INCLUDE_DEPTH: usize = 16;

/// One keyword line of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Lower-cased: sshd compares keywords case-insensitively.
    pub keyword: String,
    /// The arguments as sshd's `argv_split` sees them (quotes removed, comments dropped).
    pub args: Vec<String>,
    /// 1-based line number.
    pub line: usize,
}

/// Parses one file's lines; lines sshd would not accept (unterminated quotes) are returned by
/// number.
pub fn parse_lines(text: &str) -> (Vec<Line>, Vec<usize>) {
    let mut lines = Vec::new();
    let mut malformed = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let raw = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let end = raw
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(raw.len());
        let keyword = raw[..end].to_ascii_lowercase();
        let mut rest = raw[end..].trim_start();
        if let Some(after) = rest.strip_prefix('=') {
            rest = after.trim_start();
        }
        match split_args(rest) {
            Some(args) if !keyword.is_empty() => lines.push(Line {
                keyword,
                args,
                line: index + 1,
            }),
            _ => malformed.push(index + 1),
        }
    }
    (lines, malformed)
}

/// `argv_split` with comment termination: whitespace separates, `"…"` and `'…'` group, `\`
/// escapes a quote or backslash, a word starting with `#` ends the line.
fn split_args(text: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(args);
        };
        if first == '#' {
            return Some(args);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => {
                    quote = Some(c);
                    chars.next();
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    chars.next();
                }
                (_, '\\') => {
                    chars.next();
                    match chars.peek() {
                        Some(&n) if n == '"' || n == '\'' || n == '\\' => {
                            word.push(n);
                            chars.next();
                        }
                        _ => word.push('\\'),
                    }
                }
                (_, c) => {
                    word.push(c);
                    chars.next();
                }
            }
        }
        if quote.is_some() {
            return None;
        }
        args.push(word);
    }
}

/// Where a directive applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// Before any `Match`: every connection.
    Global,
    /// Inside `Match all`: every connection, overriding the global section.
    MatchAll,
    /// Inside a `Match` with criteria (`User backup Address 10.0.0.0/8`).
    Match(String),
}

/// A directive of the effective configuration, includes expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub keyword: String,
    pub args: Vec<String>,
    pub file: String,
    pub line: usize,
    pub context: Context,
}

impl Directive {
    /// `file:line` for evidence.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The first argument, lower-cased (yes/no values are case-insensitive).
    pub fn value_lower(&self) -> String {
        self.args
            .first()
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

/// The configuration read from the root, in sshd's reading order.
#[derive(Debug, Default)]
pub struct Loaded {
    pub directives: Vec<Directive>,
    /// Every file read, in order.
    pub sources: Vec<String>,
    /// Include patterns that matched nothing, with the including location.
    pub unmatched_includes: Vec<String>,
    /// Files named by an include that could not be read, and other problems.
    pub problems: Vec<String>,
}

/// Reads `/etc/ssh/sshd_config` and everything it includes.
pub fn load(root: &HostRoot, path: &str) -> Result<Loaded, crate::hostroot::HostError> {
    let text = root.read_to_string(path)?;
    let mut loaded = Loaded::default();
    let mut context = Context::Global;
    expand(root, path, &text, 0, &mut context, &mut loaded);
    Ok(loaded)
}

fn expand(
    root: &HostRoot,
    path: &str,
    text: &str,
    depth: usize,
    context: &mut Context,
    loaded: &mut Loaded,
) {
    loaded.sources.push(path.to_string());
    let (lines, malformed) = parse_lines(text);
    for line in malformed {
        loaded.problems.push(format!(
            "{path}:{line}: unterminated quote (sshd refuses to start)"
        ));
    }
    for line in lines {
        match line.keyword.as_str() {
            "match" => {
                let criteria = line.args.join(" ");
                *context = if criteria.eq_ignore_ascii_case("all") {
                    Context::MatchAll
                } else {
                    Context::Match(criteria)
                };
            }
            "include" => {
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    loaded.problems.push(format!(
                        "{path}:{}: Include nested deeper than {MAX_INCLUDE_DEPTH} (sshd refuses to start)",
                        line.line
                    ));
                    continue;
                }
                for pattern in &line.args {
                    let files = glob_files(root, pattern);
                    if files.is_empty() {
                        loaded
                            .unmatched_includes
                            .push(format!("{path}:{}: {pattern}", line.line));
                    }
                    for file in files {
                        match root.read_to_string(&file) {
                            Ok(text) => {
                                // An included file's Match blocks end with the file (sshd
                                // restores the including line's state).
                                let mut inner = context.clone();
                                expand(root, &file, &text, depth + 1, &mut inner, loaded);
                            }
                            Err(e) => loaded.problems.push(e.to_string()),
                        }
                    }
                }
            }
            _ => loaded.directives.push(Directive {
                keyword: line.keyword,
                args: line.args,
                file: path.to_string(),
                line: line.line,
                context: context.clone(),
            }),
        }
    }
}

/// Expands an `Include` pattern like `glob(3)`: relative paths are under `/etc/ssh`, matches
/// are sorted, `~` is not expanded for sshd. Globs are supported in every path component.
fn glob_files(root: &HostRoot, pattern: &str) -> Vec<String> {
    let absolute = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        join("/etc/ssh", pattern)
    };
    let mut current = vec![String::from("/")];
    let parts: Vec<&str> = absolute.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &current {
            if part.contains(['*', '?', '[']) {
                let Ok(names) = root.read_dir(dir) else {
                    continue;
                };
                for name in names {
                    // glob(3) does not match hidden files with a leading wildcard.
                    if name.starts_with('.') && !part.starts_with('.') {
                        continue;
                    }
                    if glob_match(part, &name) {
                        next.push(join(dir, &name));
                    }
                }
            } else {
                next.push(join(dir, part));
            }
        }
        next.retain(|p| {
            root.metadata(p)
                .is_ok_and(|m| if last { m.is_file() } else { m.is_dir() })
        });
        current = next;
    }
    current.sort();
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_like_sshd() {
        let (lines, malformed) = parse_lines(
            "\u{feff}# comment\nPort 22\r\nPermitRootLogin=no\nPasswordAuthentication = yes # trailing comment\n\
             \tAcceptEnv LANG LC_*\nBanner \"/etc/issue net\"\nAuthorizedKeysCommand '/usr/bin/x' \"a \\\"b\\\"\"\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\nBad \"unterminated\nKEYWORD\n=value\n",
        );
        let got: Vec<(&str, Vec<&str>, usize)> = lines
            .iter()
            .map(|l| {
                (
                    l.keyword.as_str(),
                    l.args.iter().map(String::as_str).collect(),
                    l.line,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("port", vec!["22"], 2),
                ("permitrootlogin", vec!["no"], 3),
                ("passwordauthentication", vec!["yes"], 4),
                ("acceptenv", vec!["LANG", "LC_*"], 5),
                ("banner", vec!["/etc/issue net"], 6),
                ("authorizedkeyscommand", vec!["/usr/bin/x", "a \"b\""], 7),
                ("subsystem", vec!["sftp", "/usr/lib/openssh/sftp-server"], 8),
                ("keyword", vec![], 10),
            ]
        );
        assert_eq!(malformed, [9, 11]);
    }

    fn write(base: &std::path::Path, rel: &str, text: &str) {
        let p = base.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn includes_expand_in_order_and_match_blocks_end_with_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(
            base,
            "etc/ssh/sshd_config",
            "Include sshd_config.d/*.conf\nPermitRootLogin yes\nInclude /etc/ssh/missing/*.conf extra.conf\nMatch User backup\n  Include match.conf\n  X11Forwarding yes\n",
        );
        write(
            base,
            "etc/ssh/sshd_config.d/20-b.conf",
            "PasswordAuthentication no\nMatch Address 10.0.0.0/8\nPermitRootLogin yes\n",
        );
        write(
            base,
            "etc/ssh/sshd_config.d/10-a.conf",
            "PermitRootLogin no\n",
        );
        write(
            base,
            "etc/ssh/sshd_config.d/.hidden.conf",
            "PermitRootLogin yes\n",
        );
        write(
            base,
            "etc/ssh/sshd_config.d/30-c.conf.disabled",
            "PermitRootLogin yes\n",
        );
        write(base, "etc/ssh/extra.conf", "MaxAuthTries 3\n");
        write(base, "etc/ssh/match.conf", "PasswordAuthentication yes\n");
        let root = HostRoot::new(base).unwrap();
        let loaded = load(&root, "/etc/ssh/sshd_config").unwrap();
        let got: Vec<(String, &str, Context)> = loaded
            .directives
            .iter()
            .map(|d| (d.location(), d.keyword.as_str(), d.context.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/etc/ssh/sshd_config.d/10-a.conf:1".into(),
                    "permitrootlogin",
                    Context::Global
                ),
                (
                    "/etc/ssh/sshd_config.d/20-b.conf:1".into(),
                    "passwordauthentication",
                    Context::Global
                ),
                (
                    "/etc/ssh/sshd_config.d/20-b.conf:3".into(),
                    "permitrootlogin",
                    Context::Match("Address 10.0.0.0/8".into())
                ),
                // Back in sshd_config after the include: global again.
                (
                    "/etc/ssh/sshd_config:2".into(),
                    "permitrootlogin",
                    Context::Global
                ),
                (
                    "/etc/ssh/extra.conf:1".into(),
                    "maxauthtries",
                    Context::Global
                ),
                (
                    "/etc/ssh/match.conf:1".into(),
                    "passwordauthentication",
                    Context::Match("User backup".into())
                ),
                (
                    "/etc/ssh/sshd_config:6".into(),
                    "x11forwarding",
                    Context::Match("User backup".into())
                ),
            ]
        );
        assert_eq!(
            loaded.unmatched_includes,
            ["/etc/ssh/sshd_config:3: /etc/ssh/missing/*.conf"]
        );
    }

    #[test]
    fn include_loops_stop_at_the_depth_limit() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "etc/ssh/sshd_config", "Include sshd_config\n");
        let root = HostRoot::new(dir.path()).unwrap();
        let loaded = load(&root, "/etc/ssh/sshd_config").unwrap();
        assert_eq!(loaded.sources.len(), MAX_INCLUDE_DEPTH + 1);
        assert_eq!(loaded.problems.len(), 1);
        assert!(loaded.problems[0].contains("nested deeper"));
    }
}
