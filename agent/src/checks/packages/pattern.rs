//! apt's `ExpressionMatches`: a `/regex/` (POSIX extended, case-insensitive, unanchored) or an
//! `fnmatch(3)` glob with `FNM_CASEFOLD`, as used by pins, `APT::Default-Release` and
//! preference package names.

/// A compiled apt expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// `/…/`: a regular expression; `None` when it does not compile (apt then warns and the
    /// expression matches nothing).
    Regex(Option<regex::Regex>),
    Glob(Vec<u8>),
}

impl Expr {
    pub fn new(pattern: &str) -> Expr {
        if pattern.len() >= 2 && pattern.starts_with('/') && pattern.ends_with('/') {
            let inner = &pattern[1..pattern.len() - 1];
            let compiled = regex::RegexBuilder::new(inner)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .ok();
            return Expr::Regex(compiled);
        }
        Expr::Glob(pattern.as_bytes().to_vec())
    }

    /// apt's `ExpressionMatches(pattern, string)`; a missing string (`NULL` in apt) never
    /// matches.
    pub fn matches(&self, s: Option<&str>) -> bool {
        let Some(s) = s else {
            return false;
        };
        match self {
            Expr::Regex(Some(re)) => re.is_match(s),
            Expr::Regex(None) => false,
            Expr::Glob(p) => fnmatch_casefold(p, s.as_bytes()),
        }
    }
}

/// True when the name would be treated by apt as a pattern rather than a package name.
pub fn looks_like_pattern(name: &str) -> bool {
    (name.len() >= 2 && name.starts_with('/') && name.ends_with('/'))
        || name.bytes().any(|b| matches!(b, b'*' | b'[' | b'?'))
}

fn fold(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

/// `fnmatch(pattern, s, FNM_CASEFOLD)`: `*`, `?`, bracket expressions (`!`/`^` negation,
/// ranges, `[:class:]`), backslash escapes; `/` and leading dots are ordinary characters.
pub fn fnmatch_casefold(pattern: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: linear in practice, never recursive.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() && pattern[p] == b'*' {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            star = Some((p, i));
            continue;
        }
        if p < pattern.len() && i < s.len() {
            if let Some(next) = match_one(pattern, p, s[i]) {
                p = next;
                i += 1;
                continue;
            }
        } else if p == pattern.len() && i == s.len() {
            return true;
        }
        match star {
            Some((sp, si)) if si < s.len() => {
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

/// Matches the pattern element at `p` (not `*`) against one byte; returns the index after it.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => match bracket(pattern, p, c) {
            Some((true, next)) => Some(next),
            Some((false, _)) => None,
            // An unterminated bracket is an ordinary '['.
            None => (c == b'[').then_some(p + 1),
        },
        b'\\' if p + 1 < pattern.len() => (fold(pattern[p + 1]) == fold(c)).then_some(p + 2),
        // A trailing backslash matches itself.
        literal => (fold(literal) == fold(c)).then_some(p + 1),
    }
}

/// Matches one byte against the bracket expression starting at `pattern[start] == '['`.
/// Returns (matched, index after `]`), or `None` when the bracket is not terminated.
fn bracket(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut p = start + 1;
    let negate = matches!(pattern.get(p), Some(b'!') | Some(b'^'));
    if negate {
        p += 1;
    }
    let c_low = fold(c);
    let mut matched = false;
    let mut first = true;
    loop {
        let &b = pattern.get(p)?;
        if b == b']' && !first {
            p += 1;
            break;
        }
        first = false;
        if b == b'[' && pattern.get(p + 1) == Some(&b':') {
            let rest = &pattern[p + 2..];
            if let Some(end) = rest.windows(2).position(|w| w == b":]") {
                let class = &rest[..end];
                if class_matches(class, c) {
                    matched = true;
                }
                p += 2 + end + 2;
                continue;
            }
        }
        let lo = if b == b'\\' {
            p += 1;
            *pattern.get(p)?
        } else {
            b
        };
        p += 1;
        if pattern.get(p) == Some(&b'-') && pattern.get(p + 1).is_some_and(|&n| n != b']') {
            let mut hi = pattern[p + 1];
            p += 2;
            if hi == b'\\' {
                hi = *pattern.get(p)?;
                p += 1;
            }
            let (l, h) = (fold(lo), fold(hi));
            if (l <= c_low && c_low <= h) || (lo <= c && c <= hi) {
                matched = true;
            }
        } else if fold(lo) == c_low {
            matched = true;
        }
    }
    Some((matched != negate, p))
}

fn class_matches(class: &[u8], c: u8) -> bool {
    match class {
        b"alpha" => c.is_ascii_alphabetic(),
        b"digit" => c.is_ascii_digit(),
        b"alnum" => c.is_ascii_alphanumeric(),
        b"upper" | b"lower" => c.is_ascii_alphabetic(), // FNM_CASEFOLD folds the class too
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"blank" => c == b' ' || c == b'\t',
        b"punct" => c.is_ascii_punctuation(),
        b"print" => (0x20..0x7f).contains(&c),
        b"graph" => c.is_ascii_graphic(),
        b"cntrl" => c.is_ascii_control(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str, s: &str) -> bool {
        fnmatch_casefold(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn globs_like_fnmatch() {
        assert!(g("*", ""));
        assert!(g("*", "anything/with/slashes"));
        assert!(g("linux-image-*", "linux-image-6.1.0-28-amd64"));
        assert!(!g("linux-image-*", "linux-headers-6.1.0"));
        assert!(g("bookworm*", "bookworm-security"));
        assert!(g("*-security", "bookworm-security"));
        assert!(!g("*-security", "bookworm-updates"));
        assert!(g("lib?ssl*", "libXssl3"));
        assert!(g("Debian*", "debian-security"), "case folded");
        assert!(g("[a-c]x", "Bx"));
        assert!(!g("[!a-c]x", "bx"));
        assert!(g("[^a-c]x", "dx"));
        assert!(g("[]]", "]"));
        assert!(g("[[:digit:]]*", "6.1"));
        assert!(!g("[[:digit:]]*", "x6"));
        assert!(g("a\\*b", "a*b"));
        assert!(!g("a\\*b", "axb"));
        assert!(g("[abc", "[abc"), "unterminated bracket is literal");
        assert!(g("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!g("*a*b*c*", "xxaxxcxxbxx"));
        assert!(g("1.2*", "1.2.3-1"));
        assert!(!g("", "x"));
        assert!(g("", ""));
    }

    #[test]
    fn pathological_patterns_are_fast_and_safe() {
        let s = "a".repeat(2000);
        assert!(!g(
            &"*a".repeat(50).to_string().replace("*a*a", "*a*a*b"),
            &s
        ));
        for p in ["[", "[!", "[]", "\\", "[[:", "[[:alpha", "[a-", "[a-\\"] {
            let _ = g(p, "abc[");
        }
    }

    #[test]
    fn regex_expressions() {
        let e = Expr::new("/^nodejs$/");
        assert!(e.matches(Some("NodeJS")));
        assert!(!e.matches(Some("nodejs-doc")));
        assert!(Expr::new("/security/").matches(Some("bookworm-security")));
        assert!(
            !Expr::new("/(/").matches(Some("(")),
            "invalid regex matches nothing"
        );
        assert!(!Expr::new("*").matches(None), "missing strings never match");
        assert!(Expr::new("o*").matches(Some("ok")));
    }

    #[test]
    fn pattern_detection() {
        assert!(looks_like_pattern("linux-*"));
        assert!(looks_like_pattern("/^lib/"));
        assert!(looks_like_pattern("lib[0-9]"));
        assert!(!looks_like_pattern("libc6"));
        assert!(!looks_like_pattern("/"));
    }
}
