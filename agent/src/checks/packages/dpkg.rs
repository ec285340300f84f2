//! dpkg's database (`/var/lib/dpkg/status`, `/var/lib/dpkg/arch`): installed packages with the
//! facts apt derives from them (current version, architecture, source, version hash).

use super::tagfile;

/// apt's Multi-Arch code for a version: identical codes are required to merge two stanzas
/// into one version.
pub fn multi_arch_code(value: Option<&str>, arch_all: bool) -> u8 {
    const NO: u8 = 0;
    const ALL: u8 = 1;
    const FOREIGN: u8 = 2;
    const SAME: u8 = 4;
    const ALLOWED: u8 = 8;
    let kind = match value.unwrap_or("") {
        "same" if !arch_all => SAME,
        "foreign" => FOREIGN,
        "allowed" => ALLOWED,
        _ => NO,
    };
    if arch_all { kind | ALL } else { kind }
}

/// apt's `debListParser::VersionHash` over the dependency-relevant fields (Installed-Size,
/// Depends, Pre-Depends, Conflicts, Breaks, Replaces, in that order): whitespace and `=`
/// dropped, `0:` epochs dropped, ASCII lower-cased, djb2 on signed chars, truncated to 32 bits.
pub fn version_hash(fields: [Option<&[u8]>; 6]) -> u32 {
    let mut result: u32 = 5381;
    for field in fields.into_iter().flatten() {
        let mut i = 0;
        while i < field.len() {
            let c = field[i];
            if c == b'0' && field.get(i + 1) == Some(&b':') {
                i += 2;
                continue;
            }
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'=') {
                i += 1;
                continue;
            }
            let lowered = c.to_ascii_lowercase();
            result = result
                .wrapping_mul(33)
                .wrapping_add(i32::from(lowered as i8) as u32);
            i += 1;
        }
    }
    result
}

/// The names of the hashed fields, in hash order.
pub const HASH_FIELDS: [&str; 6] = [
    "Installed-Size",
    "Depends",
    "Pre-Depends",
    "Conflicts",
    "Breaks",
    "Replaces",
];

/// One package stanza of the status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgPackage {
    /// Lower-cased, as apt stores it.
    pub name: String,
    /// As written (`amd64`, `all`); `none` when the field is missing, as in apt.
    pub arch: String,
    pub version: String,
    /// Source package name (defaults to the package name).
    pub source: String,
    pub want: String,
    pub flag: String,
    pub state: String,
    pub multi_arch: u8,
    pub hash: u32,
    /// 1-based line of the stanza in the status file.
    pub line: usize,
}

impl DpkgPackage {
    /// apt's notion of an installed (current) version: a well-formed Status whose state is
    /// neither `not-installed` nor `config-files`.
    pub fn is_current(&self) -> bool {
        !self.version.is_empty()
            && !self.state.is_empty()
            && !self.state.eq_ignore_ascii_case("not-installed")
            && !self.state.eq_ignore_ascii_case("config-files")
    }

    /// Fully installed (`installed` state), whatever the selection (`install`, `hold`).
    pub fn is_installed(&self) -> bool {
        !self.version.is_empty() && self.state.eq_ignore_ascii_case("installed")
    }

    pub fn held(&self) -> bool {
        self.want.eq_ignore_ascii_case("hold")
    }

    /// The architecture apt files the package under: `all` is the native architecture.
    pub fn cache_arch<'a>(&'a self, native: &'a str) -> &'a str {
        if self.arch == "all" {
            native
        } else {
            &self.arch
        }
    }
}

/// The parsed status file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub packages: Vec<DpkgPackage>,
    /// Lines that are not fields, and stanzas with a malformed `Status:`.
    pub bad_lines: Vec<usize>,
}

const WANTS: [&str; 5] = ["unknown", "install", "hold", "deinstall", "purge"];
const FLAGS: [&str; 4] = ["ok", "reinstreq", "hold", "hold-reinstreq"];
const STATES: [&str; 8] = [
    "not-installed",
    "config-files",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
    "installed",
];

/// Splits `want flag state` exactly as apt does (single spaces, known words).
fn parse_status_line(v: &str) -> Option<(String, String, String)> {
    let mut it = v.splitn(3, ' ');
    let (want, flag, state) = (it.next()?, it.next()?, it.next()?);
    let known = |list: &[&str], w: &str| list.iter().any(|k| k.eq_ignore_ascii_case(w));
    if state.contains(' ') || !known(&WANTS, want) || !known(&FLAGS, flag) || !known(&STATES, state)
    {
        return None;
    }
    Some((want.to_string(), flag.to_string(), state.to_string()))
}

/// The source package name of a `Source:` value (`openssl (3.0.11-1)` → `openssl`).
pub fn source_name(value: &str) -> &str {
    value.split(' ').next().unwrap_or(value)
}

/// Parses dpkg's status file. Never fails; junk is reported in `bad_lines`.
pub fn parse_status(text: &str) -> Status {
    let parsed = tagfile::parse(text);
    let mut status = Status {
        packages: Vec::new(),
        bad_lines: parsed.bad_lines,
    };
    for st in &parsed.stanzas {
        let Some(name) = st.get("Package").filter(|n| !n.is_empty()) else {
            status.bad_lines.push(st.line);
            continue;
        };
        let version = st.get("Version").unwrap_or("").to_string();
        let arch_raw = st.get("Architecture").unwrap_or("");
        let arch = if arch_raw.is_empty() {
            "none"
        } else {
            arch_raw
        }
        .to_string();
        let (want, flag, state) = match st.get("Status") {
            None => Default::default(),
            Some(v) => match parse_status_line(v) {
                Some(t) => t,
                None => {
                    status.bad_lines.push(st.line);
                    Default::default()
                }
            },
        };
        let source = st
            .get("Source")
            .map(source_name)
            .filter(|s| !s.is_empty())
            .unwrap_or(name);
        let fields = HASH_FIELDS.map(|f| st.get(f).map(str::as_bytes));
        status.packages.push(DpkgPackage {
            name: name.to_ascii_lowercase(),
            multi_arch: multi_arch_code(st.get("Multi-Arch"), arch_raw == "all"),
            hash: version_hash(fields),
            arch,
            version,
            source: source.to_string(),
            want,
            flag,
            state,
            line: st.line,
        });
    }
    status
}

/// The native architecture as dpkg knows it: the architecture `dpkg` itself is installed for,
/// else the most common concrete architecture among installed packages.
pub fn native_arch(status: &Status) -> Option<String> {
    if let Some(p) = status
        .packages
        .iter()
        .find(|p| p.name == "dpkg" && p.is_current() && p.arch != "all" && p.arch != "none")
    {
        return Some(p.arch.clone());
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for p in status.packages.iter().filter(|p| p.is_current()) {
        if p.arch == "all" || p.arch == "none" {
            continue;
        }
        match counts.iter_mut().find(|(a, _)| *a == p.arch) {
            Some((_, n)) => *n += 1,
            None => counts.push((&p.arch, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts.first().map(|(a, _)| (*a).to_string())
}

/// Architectures listed in dpkg's `arch` file (native and foreign, one per line).
pub fn parse_arch_file(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split_ascii_whitespace() {
        if !out.iter().any(|a| a == w) {
            out.push(w.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: dpkg\nEssential: yes\nStatus: install ok installed\nPriority: required\nSection: admin\nInstalled-Size: 6548\nMaintainer: Dpkg Developers <debian-dpkg@lists.debian.org>\nArchitecture: amd64\nMulti-Arch: foreign\nVersion: 1.21.22\nDepends: tar (>= 1.28-1)\nPre-Depends: libbz2-1.0, libc6 (>= 2.34), liblzma5 (>= 5.4.0), libmd0 (>= 0.0.0), libselinux1 (>= 3.1~), libzstd1 (>= 1.5.2), zlib1g (>= 1:1.1.4)\nConffiles:\n /etc/alternatives/README 7be88b21f7e386c8d5a8790c2461c92b\nDescription: Debian package management system\n This package provides the low-level infrastructure.\n\n\
        Package: libssl3\nStatus: hold ok installed\nArchitecture: amd64\nMulti-Arch: same\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\n\n\
        Package: tzdata\nStatus: install ok installed\nArchitecture: all\nMulti-Arch: foreign\nVersion: 2024a-0+deb12u1\n\n\
        Package: removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\n\
        Package: halfway\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 2.0\n\n\
        Package: broken\nStatus: install ok\nArchitecture: amd64\nVersion: 2.0\n\n\
        Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9+deb12u10\n";

    #[test]
    fn status_entries() {
        let s = parse_status(STATUS);
        assert_eq!(s.packages.len(), 7);
        let dpkg = &s.packages[0];
        assert_eq!(
            (
                dpkg.name.as_str(),
                dpkg.version.as_str(),
                dpkg.arch.as_str()
            ),
            ("dpkg", "1.21.22", "amd64")
        );
        assert!(dpkg.is_current() && dpkg.is_installed() && !dpkg.held());
        let ssl = &s.packages[1];
        assert_eq!(ssl.source, "openssl");
        assert!(ssl.held() && ssl.is_installed());
        assert_eq!(ssl.multi_arch, 4);
        assert_eq!(s.packages[2].cache_arch("amd64"), "amd64");
        assert_eq!(s.packages[2].multi_arch, 3);
        assert!(!s.packages[3].is_current());
        assert!(s.packages[4].is_current() && !s.packages[4].is_installed());
        assert!(
            !s.packages[5].is_current(),
            "malformed Status is not current"
        );
        let broken_line = STATUS.lines().position(|l| l == "Package: broken").unwrap() + 1;
        assert_eq!(s.bad_lines, [broken_line]);
        assert_eq!(native_arch(&s).as_deref(), Some("amd64"));
    }

    #[test]
    fn version_hash_matches_apt() {
        assert_eq!(version_hash([None; 6]), 5381);
        let a = version_hash([
            Some(b"6548"),
            Some(b"tar (>= 1.28-1)"),
            None,
            None,
            None,
            None,
        ]);
        // spaces, '=' and case do not matter; "0:" epochs are dropped
        let b = version_hash([Some(b"6548"), Some(b"TAR(>1.28-1)"), None, None, None, None]);
        assert_eq!(a, b);
        let c = version_hash([Some(b"1"), Some(b"x (>= 0:1)"), None, None, None, None]);
        let d = version_hash([Some(b"1"), Some(b"x (>= 1)"), None, None, None, None]);
        assert_eq!(c, d);
        let e = version_hash([Some(b"1"), None, Some(b"x"), None, None, None]);
        let f = version_hash([Some(b"1"), Some(b"x"), None, None, None, None]);
        assert_eq!(
            e, f,
            "the field a text sits in does not matter, only the order"
        );
        assert_ne!(
            a,
            version_hash([
                Some(b"6549"),
                Some(b"tar (>= 1.28-1)"),
                None,
                None,
                None,
                None
            ])
        );
        // bytes above 0x7f are added as signed chars
        assert_eq!(
            version_hash([Some(&[0xff]), None, None, None, None, None]),
            5381u32.wrapping_mul(33).wrapping_sub(1)
        );
    }

    #[test]
    fn native_arch_fallbacks() {
        let s = parse_status(
            "Package: a\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n",
        );
        assert_eq!(native_arch(&s).as_deref(), Some("arm64"));
        assert_eq!(native_arch(&Status::default()), None);
        assert_eq!(parse_arch_file("amd64\ni386\n\ni386\n"), ["amd64", "i386"]);
    }

    #[test]
    fn junk_status_never_panics() {
        let s = parse_status("\u{0}\nPackage:\nVersion: 1\n\nnot a field\nStatus: x y\n");
        assert!(s.packages.is_empty());
        assert!(!s.bad_lines.is_empty());
    }
}
