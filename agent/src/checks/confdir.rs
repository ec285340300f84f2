//! Drop-in configuration directories merged the way systemd, procps and kmod merge them.
//!
//! `sysctl.d(5)`, `modprobe.d(5)` and friends read `*.conf` from several directories; a file in
//! an earlier (higher-priority) directory hides a file of the same name in a later one, a file
//! that is a symlink to `/dev/null` (or empty in the highest directory) masks the name, and the
//! survivors are applied in lexical order of their names regardless of directory.

use std::collections::BTreeMap;

use crate::hostroot::{HostError, HostRoot, join};

/// One file that takes part in the merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn {
    /// The file name (`99-sysctl.conf`), the sort key.
    pub name: String,
    /// The host path it is read from (`/etc/sysctl.d/99-sysctl.conf`).
    pub path: String,
}

/// The merge of `dirs` (highest priority first) for files ending in `suffix`.
///
/// Unreadable directories are returned apart: the caller decides whether they matter.
pub fn merged(root: &HostRoot, dirs: &[&str], suffix: &str) -> (Vec<DropIn>, Vec<HostError>) {
    let mut chosen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let names = match root.read_dir(dir) {
            Ok(names) => names,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for name in names {
            if !name.ends_with(suffix) || name.starts_with('.') || chosen.contains_key(&name) {
                continue;
            }
            let path = join(dir, &name);
            let masked = matches!(root.read_link(&path), Ok(target) if target == "/dev/null");
            chosen.insert(name, if masked { None } else { Some(path) });
        }
    }
    let files = chosen
        .into_iter()
        .filter_map(|(name, path)| path.map(|path| DropIn { name, path }))
        .collect();
    (files, errors)
}

/// `fnmatch(3)` without flags for `*`, `?` and `[…]` classes: enough for configuration globs.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t, 0)
}

fn glob_at(p: &[char], t: &[char], depth: usize) -> bool {
    // Backtracking on `*` is bounded by the pattern length; the depth cap keeps hostile
    // patterns from recursing without end.
    if depth > 64 {
        return false;
    }
    let (mut pi, mut ti) = (0, 0);
    while pi < p.len() {
        match p[pi] {
            '*' => {
                let rest = &p[pi + 1..];
                return (ti..=t.len()).any(|start| glob_at(rest, &t[start..], depth + 1));
            }
            '?' => {
                if ti >= t.len() {
                    return false;
                }
            }
            '[' => {
                let Some(close) = p[pi + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|i| i + pi + 1)
                else {
                    if t.get(ti) != Some(&'[') {
                        return false;
                    }
                    pi += 1;
                    ti += 1;
                    continue;
                };
                let Some(&c) = t.get(ti) else {
                    return false;
                };
                let class = &p[pi + 1..close];
                let (negate, class) = match class.first() {
                    Some('!') | Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                if hit == negate {
                    return false;
                }
                pi = close + 1;
                ti += 1;
                continue;
            }
            c => {
                if t.get(ti) != Some(&c) {
                    return false;
                }
            }
        }
        pi += 1;
        ti += 1;
    }
    ti == t.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(glob_match("*.conf", "a.conf"));
        assert!(!glob_match("*.conf", "a.conf.bak"));
        assert!(glob_match(
            "net/ipv4/conf/*/rp_filter",
            "net/ipv4/conf/all/rp_filter"
        ));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[0-9]*", "50-default"));
        assert!(!glob_match("[!0-9]*", "50-default"));
        assert!(glob_match("[", "["));
        assert!(!glob_match("", "x"));
        assert!(glob_match("*", ""));
        // Pathological patterns end quickly.
        let hostile = "*a".repeat(40);
        assert!(!glob_match(&hostile, &"b".repeat(100)));
    }

    #[test]
    fn higher_directories_hide_and_mask_names() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        for d in ["etc/sysctl.d", "usr/lib/sysctl.d", "run/sysctl.d"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("usr/lib/sysctl.d/50-default.conf"), "a=1\n").unwrap();
        std::fs::write(base.join("etc/sysctl.d/50-default.conf"), "a=2\n").unwrap();
        std::fs::write(base.join("usr/lib/sysctl.d/10-x.conf"), "b=1\n").unwrap();
        std::fs::write(base.join("usr/lib/sysctl.d/README"), "").unwrap();
        std::fs::write(base.join("usr/lib/sysctl.d/60-masked.conf"), "c=1\n").unwrap();
        std::os::unix::fs::symlink("/dev/null", base.join("etc/sysctl.d/60-masked.conf")).unwrap();
        let root = HostRoot::new(base).unwrap();
        let (files, errors) = merged(
            &root,
            &["/etc/sysctl.d", "/run/sysctl.d", "/usr/lib/sysctl.d"],
            ".conf",
        );
        assert!(errors.is_empty());
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/lib/sysctl.d/10-x.conf",
                "/etc/sysctl.d/50-default.conf"
            ]
        );
    }
}
