//! apt preferences (`/etc/apt/preferences`, `preferences.d/*`, `apt_preferences(5)`): pin
//! records and apt's `pkgVersionMatch` rules for `Pin: version`, `Pin: release` and
//! `Pin: origin`, as implemented in apt 2.6 (`policy.cc`, `versionmatch.cc`).

use std::fmt;

use super::pattern::{Expr, looks_like_pattern};
use super::tagfile;

/// apt's `NEVER_PIN` (`Pin-Priority: never`): the smallest `short`.
pub const NEVER_PIN: i32 = i16::MIN as i32;

/// A preferences file apt refuses (apt then does not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefError {
    pub origin: String,
    pub message: String,
}

impl fmt::Display for PrefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinType {
    Version,
    Release,
    Origin,
}

/// The package index a version is listed in, as the matcher sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileFacts {
    /// False for dpkg's status file, which has no Release file.
    pub has_release: bool,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub version: Option<String>,
    pub origin: Option<String>,
    pub label: Option<String>,
    pub site: Option<String>,
    /// `main`; `now` for the status file.
    pub component: Option<String>,
    /// `amd64`, `all`; none for the status file.
    pub arch: Option<String>,
}

/// apt's `pkgVersionMatch`, compiled.
#[derive(Debug, Clone)]
pub struct VersionMatch {
    kind: PinType,
    // Version
    ver_str: String,
    ver_prefix: bool,
    ver_expr: Option<Expr>,
    // Release
    match_all: bool,
    rel_ver: String,
    rel_ver_prefix: bool,
    rel_ver_expr: Option<Expr>,
    rel_origin: Option<Expr>,
    rel_archive: Option<Expr>,
    rel_codename: Option<Expr>,
    rel_release: Option<Expr>,
    rel_label: Option<Expr>,
    rel_component: Option<Expr>,
    rel_arch: Option<Expr>,
    // Origin
    site: Option<Expr>,
    site_empty: bool,
    none: bool,
}

fn opt_expr(s: &str) -> Option<Expr> {
    if s.is_empty() {
        None
    } else {
        Some(Expr::new(s))
    }
}

/// apt's `MatchVer`: case-insensitive equality, or prefix when `prefix`.
fn match_ver(a: Option<&str>, b: &str, prefix: bool) -> bool {
    let Some(a) = a else {
        return false;
    };
    if (a.len() != b.len() && !prefix) || a.len() < b.len() {
        return false;
    }
    a.as_bytes()[..b.len()].eq_ignore_ascii_case(b.as_bytes())
}

impl VersionMatch {
    pub fn new(data: &str, kind: PinType) -> VersionMatch {
        let mut m = VersionMatch {
            kind,
            ver_str: String::new(),
            ver_prefix: false,
            ver_expr: None,
            match_all: false,
            rel_ver: String::new(),
            rel_ver_prefix: false,
            rel_ver_expr: None,
            rel_origin: None,
            rel_archive: None,
            rel_codename: None,
            rel_release: None,
            rel_label: None,
            rel_component: None,
            rel_arch: None,
            site: None,
            site_empty: true,
            none: false,
        };
        if data.is_empty() {
            // apt keeps the type with every field empty: an empty origin still matches local
            // repositories, an empty release still matches the status file.
            if kind == PinType::Origin {
                m.site = Some(Expr::new(""));
            }
            return m;
        }
        match kind {
            PinType::Version => {
                if let Some(stripped) = data.strip_suffix('*') {
                    m.ver_prefix = true;
                    m.ver_str = stripped.to_string();
                } else {
                    m.ver_str = data.to_string();
                }
                m.ver_expr = Some(Expr::new(&m.ver_str));
            }
            PinType::Release => {
                if data == "*" {
                    m.match_all = true;
                    return m;
                }
                let mut rel_release = String::new();
                let mut rel_ver = String::new();
                let (mut origin, mut archive, mut codename, mut label, mut component, mut arch) = (
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                );
                if !data.contains('=') {
                    if data.as_bytes()[0].is_ascii_digit() {
                        rel_ver = data.to_string();
                    } else {
                        rel_release = data.to_string();
                    }
                } else {
                    // apt copies the spec into a 300-byte buffer and keeps 19 fragments.
                    let spec: String = data.chars().take(299).collect();
                    let fragments: Vec<&str> = spec
                        .split(',')
                        .map(|f| f.trim_matches(|c: char| c.is_ascii_whitespace()))
                        .filter(|f| !f.is_empty())
                        .collect();
                    if fragments.len() >= 20 {
                        m.none = true;
                        return m;
                    }
                    for f in fragments {
                        if f.len() < 3 || f.as_bytes()[1] != b'=' {
                            continue;
                        }
                        let value = f[2..].to_string();
                        match f.as_bytes()[0].to_ascii_lowercase() {
                            b'v' => rel_ver = value,
                            b'o' => origin = value,
                            b'a' => archive = value,
                            b'n' => codename = value,
                            b'l' => label = value,
                            b'c' => component = value,
                            b'b' => arch = value,
                            _ => {}
                        }
                    }
                }
                if let Some(stripped) = rel_ver.strip_suffix('*') {
                    m.rel_ver_prefix = true;
                    rel_ver = stripped.to_string();
                }
                m.rel_ver_expr = opt_expr(&rel_ver);
                m.rel_ver = rel_ver;
                m.rel_origin = opt_expr(&origin);
                m.rel_archive = opt_expr(&archive);
                m.rel_codename = opt_expr(&codename);
                m.rel_release = opt_expr(&rel_release);
                m.rel_label = opt_expr(&label);
                m.rel_component = opt_expr(&component);
                m.rel_arch = opt_expr(&arch);
            }
            PinType::Origin => {
                let site = if data.len() >= 2 && data.starts_with('"') && data.ends_with('"') {
                    &data[1..data.len() - 1]
                } else {
                    data
                };
                m.site_empty = site.is_empty();
                m.site = Some(Expr::new(site));
            }
        }
        m
    }

    fn release_fields_empty(&self) -> bool {
        self.rel_ver.is_empty()
            && self.rel_origin.is_none()
            && self.rel_archive.is_none()
            && self.rel_label.is_none()
            && self.rel_release.is_none()
            && self.rel_codename.is_none()
            && self.rel_component.is_none()
            && self.rel_arch.is_none()
    }

    /// apt's `FileMatch(PkgFileIterator)`.
    pub fn file_match(&self, f: &FileFacts) -> bool {
        if self.none {
            return false;
        }
        let m = |e: &Option<Expr>, s: &Option<String>| {
            e.as_ref().is_none_or(|e| e.matches(s.as_deref()))
        };
        if f.has_release {
            // FileMatch(RlsFileIterator)
            match self.kind {
                PinType::Release => {
                    if !self.match_all {
                        if self.release_fields_empty() {
                            return false;
                        }
                        if !self.rel_ver.is_empty()
                            && !match_ver(f.version.as_deref(), &self.rel_ver, self.rel_ver_prefix)
                            && !self
                                .rel_ver_expr
                                .as_ref()
                                .is_some_and(|e| e.matches(f.version.as_deref()))
                        {
                            return false;
                        }
                        if !m(&self.rel_origin, &f.origin)
                            || !m(&self.rel_archive, &f.suite)
                            || !m(&self.rel_codename, &f.codename)
                        {
                            return false;
                        }
                        if let Some(e) = &self.rel_release
                            && !e.matches(f.suite.as_deref())
                            && !e.matches(f.codename.as_deref())
                        {
                            return false;
                        }
                        if !m(&self.rel_label, &f.label) {
                            return false;
                        }
                    }
                }
                PinType::Origin => {
                    if !self.site_empty && f.site.is_none() {
                        return false;
                    }
                    if !self
                        .site
                        .as_ref()
                        .is_some_and(|e| e.matches(f.site.as_deref()))
                    {
                        return false;
                    }
                }
                PinType::Version => return false,
            }
        } else if self.kind == PinType::Release {
            // Files without a Release file (dpkg's status) keep the archive "now" in Component.
            if !m(&self.rel_archive, &f.component) || !m(&self.rel_release, &f.component) {
                return false;
            }
            if self.rel_origin.is_some()
                || self.rel_label.is_some()
                || !self.rel_ver.is_empty()
                || self.rel_codename.is_some()
            {
                return false;
            }
        } else {
            return false;
        }
        if self.kind == PinType::Release {
            if self.match_all {
                return true;
            }
            if !m(&self.rel_component, &f.component) || !m(&self.rel_arch, &f.arch) {
                return false;
            }
        }
        true
    }

    /// apt's `VersionMatches`: the version string for version pins, otherwise any index the
    /// version is listed in.
    pub fn version_matches(&self, version: &str, files: &[&FileFacts]) -> bool {
        if self.none {
            return false;
        }
        if self.kind == PinType::Version {
            return match_ver(Some(version), &self.ver_str, self.ver_prefix)
                || self
                    .ver_expr
                    .as_ref()
                    .is_some_and(|e| e.matches(Some(version)));
        }
        files.iter().any(|f| self.file_match(f))
    }
}

/// Who a specific (non-`*`) pin applies to.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    /// `src:` pins match on the source package name.
    pub source: bool,
    pub name: String,
    /// `Some` when `name` is a glob or `/regex/`.
    pub pattern: Option<Expr>,
    /// `:arch` qualifier; without it apt pins the native architecture only.
    pub arch: Option<String>,
}

impl PackageSpec {
    fn parse(token: &str) -> PackageSpec {
        let (source, mut name) = match token.strip_prefix("src:") {
            Some(rest) => (true, rest.to_string()),
            None => (false, token.to_string()),
        };
        let mut arch = None;
        if let Some(pos) = name.rfind(':') {
            arch = Some(name[pos + 1..].to_string());
            name.truncate(pos);
        }
        let pattern = if looks_like_pattern(&name) {
            Some(Expr::new(&name))
        } else {
            None
        };
        PackageSpec {
            source,
            name,
            pattern,
            arch,
        }
    }

    /// True when the pin applies to the binary package `name:arch` built from `source`.
    pub fn applies(&self, name: &str, arch: &str, source: &str, native_arch: &str) -> bool {
        let group = if self.source { source } else { name };
        let name_ok = match &self.pattern {
            Some(expr) => self.name != group && expr.matches(Some(group)),
            None => self.name == group,
        };
        name_ok && arch_matches(self.arch.as_deref().unwrap_or(native_arch), arch)
    }
}

/// apt's `PackageArchitectureMatchesSpecification` for the forms people write: an exact
/// architecture, `any`, `linux-any`, `any-<cpu>`.
pub fn arch_matches(spec: &str, arch: &str) -> bool {
    if spec == arch || spec == "any" {
        return true;
    }
    if spec == "linux-any" {
        return !arch.contains('-') || arch.starts_with("linux-");
    }
    if let Some(cpu) = spec.strip_prefix("any-") {
        return arch == cpu || arch.ends_with(&format!("-{cpu}"));
    }
    false
}

/// One usable record of a preferences file.
#[derive(Debug, Clone)]
pub struct PinRecord {
    /// `None` for `Package: *` (a default pin on whole indexes).
    pub packages: Option<Vec<PackageSpec>>,
    pub matcher: VersionMatch,
    pub priority: i32,
}

/// Result of reading one preferences file: the records, plus the records apt skips with a
/// warning.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    pub records: Vec<PinRecord>,
    pub warnings: Vec<String>,
}

/// apt's `FindI` (`strtol` base 10): leading spaces, optional sign, digits; trailing junk
/// ignored; `None` when no digit was read.
fn find_i(s: &str) -> Option<i64> {
    if s.len() >= 300 {
        return None;
    }
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n: String = digits.chars().take_while(|c| c.is_ascii_digit()).collect();
    if n.is_empty() {
        return None;
    }
    let v: i64 = n.parse().unwrap_or(i64::MAX);
    Some(if neg { -v } else { v })
}

/// Parses one preferences file the way `ReadPinFile` does.
pub fn parse_preferences(text: &str, file: &str) -> Result<Preferences, PrefError> {
    let stripped = tagfile::strip_comment_lines(text);
    let parsed = tagfile::parse(&stripped);
    let mut prefs = Preferences::default();
    if let Some(&line) = parsed.bad_lines.first() {
        return Err(PrefError {
            origin: format!("{file}:{line}"),
            message: "unable to parse the preferences file".into(),
        });
    }
    for (index, st) in parsed.stanzas.iter().enumerate() {
        let origin = format!("{file}:{}", index + 1);
        let err = |m: String| PrefError {
            origin: origin.clone(),
            message: m,
        };
        let name = st.get("Package").unwrap_or("");
        if name.is_empty() {
            return Err(err("invalid record, no Package header".into()));
        }
        let generic = name == "*";
        let Some(pin) = st.get("Pin") else {
            continue;
        };
        let word_end = pin
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(pin.len());
        let word = &pin[..word_end];
        let kind = if word.eq_ignore_ascii_case("version") && !generic {
            PinType::Version
        } else if word.eq_ignore_ascii_case("release") {
            PinType::Release
        } else if word.eq_ignore_ascii_case("origin") {
            PinType::Origin
        } else {
            prefs
                .warnings
                .push(format!("{origin}: did not understand pin type {word}"));
            continue;
        };
        let data = pin[word_end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let raw_priority = st.get("Pin-Priority").unwrap_or("");
        let mut priority = if raw_priority == "never" {
            NEVER_PIN as i64
        } else {
            find_i(raw_priority).unwrap_or(0)
        };
        if raw_priority == "never" && !generic {
            return Err(err(
                "the special 'Pin-Priority: never' can only be used for 'Package: *' records"
                    .into(),
            ));
        }
        if priority == NEVER_PIN as i64 && raw_priority != "never" {
            priority = NEVER_PIN as i64 + 1;
        }
        if priority < i64::from(i16::MIN) || priority > i64::from(i16::MAX) {
            return Err(err(format!(
                "value {raw_priority} is outside the range of valid pin priorities (-32768 to 32767)"
            )));
        }
        if priority == 0 {
            return Err(err("no priority (or zero) specified for pin".into()));
        }
        let packages = if generic {
            None
        } else {
            Some(tagfile::words(name).map(PackageSpec::parse).collect())
        };
        prefs.records.push(PinRecord {
            packages,
            matcher: VersionMatch::new(data, kind),
            priority: priority as i32,
        });
    }
    Ok(prefs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(suite: &str, codename: &str, origin: &str, label: &str, site: &str) -> FileFacts {
        FileFacts {
            has_release: true,
            suite: Some(suite.into()).filter(|s: &String| !s.is_empty()),
            codename: Some(codename.into()).filter(|s: &String| !s.is_empty()),
            version: Some("12.8".into()),
            origin: Some(origin.into()).filter(|s: &String| !s.is_empty()),
            label: Some(label.into()).filter(|s: &String| !s.is_empty()),
            site: Some(site.into()),
            component: Some("main".into()),
            arch: Some("amd64".into()),
        }
    }

    fn status() -> FileFacts {
        FileFacts {
            component: Some("now".into()),
            ..FileFacts::default()
        }
    }

    #[test]
    fn release_pins() {
        let main = file("stable", "bookworm", "Debian", "Debian", "deb.debian.org");
        let sec = file(
            "stable-security",
            "bookworm-security",
            "Debian",
            "Debian-Security",
            "deb.debian.org",
        );
        let m = VersionMatch::new("a=stable", PinType::Release);
        assert!(m.file_match(&main) && !m.file_match(&sec));
        let m = VersionMatch::new("n=bookworm*, o=Debian", PinType::Release);
        assert!(m.file_match(&main) && m.file_match(&sec));
        let m = VersionMatch::new("l=Debian-Security", PinType::Release);
        assert!(!m.file_match(&main) && m.file_match(&sec));
        let m = VersionMatch::new("bookworm", PinType::Release);
        assert!(m.file_match(&main), "bare names match suite or codename");
        let m = VersionMatch::new("12*", PinType::Release);
        assert!(
            m.file_match(&main),
            "bare versions match the Version field by prefix"
        );
        let m = VersionMatch::new("v=12.8", PinType::Release);
        assert!(m.file_match(&main));
        let m = VersionMatch::new("c=contrib", PinType::Release);
        assert!(!m.file_match(&main));
        let m = VersionMatch::new("b=amd64", PinType::Release);
        assert!(m.file_match(&main));
        let m = VersionMatch::new("o=/^deb/", PinType::Release);
        assert!(m.file_match(&main));
        let m = VersionMatch::new("*", PinType::Release);
        assert!(m.file_match(&main) && m.file_match(&status()));
        // a spec naming only unknown keys matches no Release file but does match the status file
        let m = VersionMatch::new("x=y", PinType::Release);
        assert!(!m.file_match(&main) && m.file_match(&status()));
        let m = VersionMatch::new("a=now", PinType::Release);
        assert!(m.file_match(&status()) && !m.file_match(&main));
        let m = VersionMatch::new("o=Debian", PinType::Release);
        assert!(!m.file_match(&status()));
    }

    #[test]
    fn origin_pins() {
        let ns = file(
            "nodistro",
            "nodistro",
            "Node Source",
            "Node Source",
            "deb.nodesource.com",
        );
        assert!(VersionMatch::new("deb.nodesource.com", PinType::Origin).file_match(&ns));
        assert!(VersionMatch::new("\"deb.nodesource.com\"", PinType::Origin).file_match(&ns));
        assert!(VersionMatch::new("*.nodesource.com", PinType::Origin).file_match(&ns));
        assert!(!VersionMatch::new("deb.debian.org", PinType::Origin).file_match(&ns));
        assert!(!VersionMatch::new("deb.nodesource.com", PinType::Origin).file_match(&status()));
        let local = FileFacts {
            site: Some(String::new()),
            ..file("", "", "", "", "")
        };
        assert!(VersionMatch::new("\"\"", PinType::Origin).file_match(&local));
        assert!(VersionMatch::new("", PinType::Origin).file_match(&local));
        assert!(!VersionMatch::new("", PinType::Origin).file_match(&ns));
        assert!(VersionMatch::new("", PinType::Release).file_match(&status()));
        assert!(!VersionMatch::new("", PinType::Release).file_match(&ns));
        assert!(!VersionMatch::new("", PinType::Version).version_matches("1", &[]));
    }

    #[test]
    fn version_pins() {
        let m = VersionMatch::new("1.2*", PinType::Version);
        assert!(m.version_matches("1.2.3-1", &[]));
        assert!(!m.version_matches("1.3", &[]));
        let m = VersionMatch::new("1.*-1", PinType::Version);
        assert!(m.version_matches("1.9-1", &[]));
        let m = VersionMatch::new("3.0.11-1~DEB12U2", PinType::Version);
        assert!(
            m.version_matches("3.0.11-1~deb12u2", &[]),
            "case-insensitive"
        );
        let m = VersionMatch::new("/^2\\./", PinType::Version);
        assert!(m.version_matches("2.1", &[]) && !m.version_matches("12.1", &[]));
    }

    #[test]
    fn package_specs() {
        let p = PackageSpec::parse("nodejs");
        assert!(p.applies("nodejs", "amd64", "nodejs", "amd64"));
        assert!(
            !p.applies("nodejs", "i386", "nodejs", "amd64"),
            "native arch only"
        );
        let p = PackageSpec::parse("libc6:i386");
        assert!(p.applies("libc6", "i386", "glibc", "amd64"));
        let p = PackageSpec::parse("libc6:any");
        assert!(p.applies("libc6", "i386", "glibc", "amd64"));
        let p = PackageSpec::parse("src:openssl");
        assert!(p.applies("libssl3", "amd64", "openssl", "amd64"));
        assert!(!p.applies("openssl-foo", "amd64", "other", "amd64"));
        let p = PackageSpec::parse("linux-image-*");
        assert!(p.applies("linux-image-amd64", "amd64", "linux-signed-amd64", "amd64"));
        let p = PackageSpec::parse("/^lib(ssl|crypto)/");
        assert!(p.applies("libssl3", "amd64", "openssl", "amd64"));
        assert!(!p.applies("openssl", "amd64", "openssl", "amd64"));
    }

    #[test]
    fn files_parse_like_apt() {
        let text = "# comment\nExplanation: keep node from nodesource\nPackage: nodejs nsolid\nPin: origin deb.nodesource.com\nPin-Priority: 600\n\n\
            Package: *\nPin: release a=bookworm-backports\nPin-Priority: 100\n\n\
            Package: *\nPin: release o=Evil\nPin-Priority: never\n\n\
            Package: foo\nPin: bogus x\nPin-Priority: 5\n\n\
            Package: bar\nPin-Priority: 5\n\n\
            Package: baz\nPin: version 1.0*\nPin-Priority: -32768\n\n\
            Package: big\nPin: version 2\nPin-Priority: 1001 apples\n";
        let p = parse_preferences(text, "/etc/apt/preferences.d/x").unwrap();
        assert_eq!(p.records.len(), 5);
        assert_eq!(p.records[0].packages.as_ref().map(Vec::len), Some(2));
        assert_eq!(p.records[0].priority, 600);
        assert!(p.records[1].packages.is_none());
        assert_eq!(p.records[2].priority, NEVER_PIN);
        assert_eq!(p.records[3].priority, NEVER_PIN + 1, "clamped");
        assert_eq!(p.records[4].priority, 1001);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn fatal_records_like_apt() {
        for (text, msg) in [
            ("Pin: release a=x\nPin-Priority: 1\n", "no Package"),
            ("Package: x\nPin: release a=x\nPin-Priority: 0\n", "zero"),
            ("Package: x\nPin: release a=x\nPin-Priority: lots\n", "zero"),
            (
                "Package: x\nPin: release a=x\nPin-Priority: 40000\n",
                "outside the range",
            ),
            (
                "Package: x\nPin: release a=x\nPin-Priority: never\n",
                "never",
            ),
        ] {
            let e = parse_preferences(text, "f").unwrap_err();
            assert!(e.message.contains(msg), "{text}: {}", e.message);
        }
        assert!(parse_preferences("", "f").unwrap().records.is_empty());
        assert!(
            parse_preferences("# only a comment\n", "f")
                .unwrap()
                .records
                .is_empty()
        );
    }
}
