//! Shell-style globs over host paths (`/etc/letsencrypt/live/*/cert.pem`), matched one path
//! component at a time through the root as `glob(7)` does: `*` and `?` never match `/` or a
//! leading `.`, `[abc]`, `[a-z]` and `[!x]` are classes. Expansion is bounded so that a
//! pattern over a huge tree cannot run away.

use crate::hostroot::{HostError, HostRoot, join};

/// Most paths one pattern may expand to.
pub const MAX_MATCHES: usize = 10_000;

/// True when the text contains glob syntax.
pub fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// True when `name` (one path component) matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    matches_from(pattern.as_bytes(), name.as_bytes())
}

fn matches_from(p: &[u8], n: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: linear in practice, never exponential.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&p[pi..], n[ni]) {
                        if matched {
                            pi += next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == b'[' {
                        // An unclosed `[` is a literal.
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches one byte against the class at the start of `p` (`[...]`); returns whether it
/// matched and the class's length, or `None` when the class is not closed.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if lo <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Expands a host path pattern to the existing paths it matches, sorted. A pattern without
/// glob syntax yields itself when it exists. Unreadable directories on the way are errors;
/// missing ones simply match nothing.
pub fn expand(root: &HostRoot, pattern: &str) -> Result<Vec<String>, HostError> {
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    let mut current: Vec<String> = vec!["/".to_string()];
    for part in parts {
        let mut next = Vec::new();
        for base in &current {
            if has_magic(part) {
                let names = match root.read_dir(base) {
                    Ok(names) => names,
                    Err(e) if e.is_not_found() => continue,
                    Err(HostError::Io { source, .. }) if source.raw_os_error() == Some(20) => {
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for name in names {
                    if matches(part, &name) {
                        next.push(join(base, &name));
                        if next.len() > MAX_MATCHES {
                            return Ok(next);
                        }
                    }
                }
            } else {
                next.push(join(base, part));
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    let mut found: Vec<String> = current
        .into_iter()
        .filter(|p| p != "/" || pattern.trim_matches('/').is_empty())
        .filter(|p| root.symlink_metadata(p).is_ok())
        .collect();
    found.sort();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_match_like_fnmatch() {
        assert!(matches("*.conf", "chrony.conf"));
        assert!(!matches("*.conf", "chrony.conf.bak"));
        assert!(!matches("*", ".hidden"));
        assert!(matches(".*", ".hidden"));
        assert!(matches("python3*", "python3.11"));
        assert!(matches("python3.[0-9]*", "python3.11"));
        assert!(!matches("python3.[!0-9]*", "python3.11"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!matches("*a*b*c*", "xxaxxcxxbxx"));
        assert!(matches("[", "["));
        assert!(matches("[]]", "]"));
        assert!(matches(r"\*", "*"));
        assert!(!matches(r"\*", "x"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        // A pathological pattern finishes quickly.
        let long = "a".repeat(5000);
        assert!(!matches(&"*a".repeat(200), &format!("{long}b")));
    }

    #[test]
    fn expansion_walks_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        for p in [
            "etc/letsencrypt/live/a/cert.pem",
            "etc/letsencrypt/live/b/cert.pem",
        ] {
            std::fs::create_dir_all(base.join(p).parent().unwrap()).unwrap();
            std::fs::write(base.join(p), "x").unwrap();
        }
        std::fs::create_dir_all(base.join("etc/letsencrypt/live/c")).unwrap();
        let root = HostRoot::new(base).unwrap();
        assert_eq!(
            expand(&root, "/etc/letsencrypt/live/*/cert.pem").unwrap(),
            [
                "/etc/letsencrypt/live/a/cert.pem",
                "/etc/letsencrypt/live/b/cert.pem"
            ]
        );
        assert_eq!(
            expand(&root, "/etc/letsencrypt/live/a/cert.pem").unwrap(),
            ["/etc/letsencrypt/live/a/cert.pem"]
        );
        assert!(expand(&root, "/nonexistent/*/x").unwrap().is_empty());
        assert!(
            expand(&root, "/etc/letsencrypt/live/a/cert.pem/*")
                .unwrap()
                .is_empty()
        );
    }
}
