//! sysctl settings: the `sysctl.d(5)` file syntax, the expected-value grammar of the settings
//! table, and the built-in table of hardening expectations with the kernel's own defaults.

use std::fmt;

use crate::checks::confdir::glob_match;

/// One assignment from a sysctl configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The key in `/proc/sys` path form (`net/ipv4/ip_forward`); may hold glob characters.
    pub path: String,
    /// The value with runs of whitespace collapsed to one space.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
    /// `-key = value`: errors applying it are ignored by systemd-sysctl.
    pub ignore_failure: bool,
}

/// Assignments a file holds and the lines that are not assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedSysctl {
    pub assignments: Vec<Assignment>,
    pub malformed: Vec<usize>,
}

/// Parses one `sysctl.conf` / `sysctl.d` file.
pub fn parse_sysctl_conf(text: &str) -> ParsedSysctl {
    let mut parsed = ParsedSysctl::default();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            parsed.malformed.push(index + 1);
            continue;
        };
        let key = key.trim();
        let (ignore_failure, key) = match key.strip_prefix('-') {
            Some(rest) => (true, rest.trim()),
            None => (false, key),
        };
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            parsed.malformed.push(index + 1);
            continue;
        }
        parsed.assignments.push(Assignment {
            path: key_to_path(key),
            value: normalise_value(value),
            line: index + 1,
            ignore_failure,
        });
    }
    parsed
}

/// `sysctl.d(5)`: if the first separator is a slash, the key is already a path; if it is a dot,
/// dots and slashes swap (`net.ipv4.conf.eth0/100.rp_filter` is `net/ipv4/conf/eth0.100/…`).
pub fn key_to_path(key: &str) -> String {
    let key = key.trim_start_matches('/');
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key.to_string(),
        _ => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
    }
}

/// Values are compared as whitespace-separated words (`4096\t87380` equals `4096 87380`).
pub fn normalise_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value the last assignment matching `path` gives it, with its index in `assignments`.
pub fn last_assignment<'a, T>(
    assignments: &'a [(T, Assignment)],
    path: &str,
) -> Option<&'a (T, Assignment)> {
    assignments
        .iter()
        .rev()
        .find(|(_, a)| a.path == path || glob_match(&a.path, path))
}

/// What a setting must be: `2`, `1|2`, `>=1`, `<=0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    OneOf(Vec<String>),
    AtLeast(i64),
    AtMost(i64),
}

/// An expectation the settings table could not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected value {text:?}: {reason}")]
pub struct ExpectError {
    pub text: String,
    pub reason: &'static str,
}

impl Expect {
    pub fn parse(text: &str) -> Result<Self, ExpectError> {
        let trimmed = text.trim();
        let error = |reason| ExpectError {
            text: text.to_string(),
            reason,
        };
        if let Some(n) = trimmed.strip_prefix(">=") {
            return n
                .trim()
                .parse()
                .map(Expect::AtLeast)
                .map_err(|_| error("'>=' needs an integer"));
        }
        if let Some(n) = trimmed.strip_prefix("<=") {
            return n
                .trim()
                .parse()
                .map(Expect::AtMost)
                .map_err(|_| error("'<=' needs an integer"));
        }
        let options: Vec<String> = trimmed.split('|').map(normalise_value).collect();
        if options.iter().any(String::is_empty) {
            return Err(error("empty alternative"));
        }
        Ok(Expect::OneOf(options))
    }

    pub fn accepts(&self, value: &str) -> bool {
        let value = normalise_value(value);
        match self {
            Expect::OneOf(options) => options.contains(&value),
            Expect::AtLeast(min) => value.parse::<i64>().is_ok_and(|v| v >= *min),
            Expect::AtMost(max) => value.parse::<i64>().is_ok_and(|v| v <= *max),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::OneOf(options) => f.write_str(&options.join(" or ")),
            Expect::AtLeast(n) => write!(f, "at least {n}"),
            Expect::AtMost(n) => write!(f, "at most {n}"),
        }
    }
}

/// Which output judges a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Kernel,
    Network,
}

/// What a key's absence from a running kernel's `/proc/sys` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// The feature is compiled out or disabled (IPv6 off): nothing to protect.
    Harmless,
    /// The protection itself is missing (no Yama: ptrace is unrestricted).
    Weakness,
}

/// One row of the built-in expectations.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub key: &'static str,
    pub expect: &'static str,
    pub group: Group,
    /// The value a Debian 12 kernel boots with when nothing configures the key; judged on
    /// roots with no running kernel to read.
    pub kernel_default: &'static str,
    pub absent: Absent,
    /// Forwarding keys a router legitimately turns on (`router = true` drops them).
    pub router_exempt: bool,
    /// Why the value matters, for the offender's reason.
    pub why: &'static str,
}

const fn row(
    key: &'static str,
    expect: &'static str,
    group: Group,
    kernel_default: &'static str,
    why: &'static str,
) -> Builtin {
    Builtin {
        key,
        expect,
        group,
        kernel_default,
        absent: match group {
            Group::Kernel => Absent::Weakness,
            Group::Network => Absent::Harmless,
        },
        router_exempt: false,
        why,
    }
}

const fn router(mut b: Builtin) -> Builtin {
    b.router_exempt = true;
    b
}

/// The built-in table (CIS Debian 12 and ANSSI BP-028 agree on every row). Users override
/// rows with `[checks.kernel_hardening.expect]`; see `packaging/agent.toml`.
pub const BUILTIN: &[Builtin] = &[
    row(
        "kernel.randomize_va_space",
        "2",
        Group::Kernel,
        "2",
        "full address space layout randomisation",
    ),
    row(
        "kernel.kptr_restrict",
        ">=1",
        Group::Kernel,
        "0",
        "kernel pointers hidden from unprivileged users",
    ),
    row(
        "kernel.dmesg_restrict",
        "1",
        Group::Kernel,
        "1",
        "kernel log readable by root only",
    ),
    row(
        "kernel.yama.ptrace_scope",
        ">=1",
        Group::Kernel,
        "0",
        "processes cannot trace arbitrary processes of the same user",
    ),
    row(
        "kernel.unprivileged_bpf_disabled",
        ">=1",
        Group::Kernel,
        "2",
        "unprivileged users cannot load BPF programs",
    ),
    row(
        "fs.protected_hardlinks",
        "1",
        Group::Kernel,
        "0",
        "hard links to files the user does not own are refused",
    ),
    row(
        "fs.protected_symlinks",
        "1",
        Group::Kernel,
        "0",
        "symlinks in sticky world-writable directories are not followed across owners",
    ),
    row(
        "fs.protected_fifos",
        ">=1",
        Group::Kernel,
        "0",
        "FIFOs in sticky world-writable directories are protected",
    ),
    row(
        "fs.protected_regular",
        ">=1",
        Group::Kernel,
        "0",
        "regular files in sticky world-writable directories are protected",
    ),
    row(
        "fs.suid_dumpable",
        "0",
        Group::Kernel,
        "0",
        "set-uid programs do not dump core",
    ),
    router(row(
        "net.ipv4.ip_forward",
        "0",
        Group::Network,
        "0",
        "the host does not route IPv4 packets",
    )),
    router(row(
        "net.ipv6.conf.all.forwarding",
        "0",
        Group::Network,
        "0",
        "the host does not route IPv6 packets",
    )),
    router(row(
        "net.ipv4.conf.all.send_redirects",
        "0",
        Group::Network,
        "1",
        "no ICMP redirects are sent",
    )),
    router(row(
        "net.ipv4.conf.default.send_redirects",
        "0",
        Group::Network,
        "1",
        "no ICMP redirects are sent",
    )),
    row(
        "net.ipv4.conf.all.accept_redirects",
        "0",
        Group::Network,
        "1",
        "ICMP redirects cannot rewrite routes",
    ),
    row(
        "net.ipv4.conf.default.accept_redirects",
        "0",
        Group::Network,
        "1",
        "ICMP redirects cannot rewrite routes",
    ),
    row(
        "net.ipv6.conf.all.accept_redirects",
        "0",
        Group::Network,
        "1",
        "ICMPv6 redirects cannot rewrite routes",
    ),
    row(
        "net.ipv6.conf.default.accept_redirects",
        "0",
        Group::Network,
        "1",
        "ICMPv6 redirects cannot rewrite routes",
    ),
    row(
        "net.ipv4.conf.all.secure_redirects",
        "0",
        Group::Network,
        "1",
        "redirects from gateways are not accepted either",
    ),
    row(
        "net.ipv4.conf.default.secure_redirects",
        "0",
        Group::Network,
        "1",
        "redirects from gateways are not accepted either",
    ),
    row(
        "net.ipv4.conf.all.accept_source_route",
        "0",
        Group::Network,
        "0",
        "source-routed packets are dropped",
    ),
    row(
        "net.ipv4.conf.default.accept_source_route",
        "0",
        Group::Network,
        "1",
        "source-routed packets are dropped",
    ),
    row(
        "net.ipv6.conf.all.accept_source_route",
        "0",
        Group::Network,
        "0",
        "source-routed packets are dropped",
    ),
    row(
        "net.ipv6.conf.default.accept_source_route",
        "0",
        Group::Network,
        "0",
        "source-routed packets are dropped",
    ),
    row(
        "net.ipv4.conf.all.rp_filter",
        "1",
        Group::Network,
        "0",
        "strict reverse-path filtering drops spoofed sources",
    ),
    row(
        "net.ipv4.conf.default.rp_filter",
        "1",
        Group::Network,
        "0",
        "strict reverse-path filtering drops spoofed sources",
    ),
    row(
        "net.ipv4.conf.all.log_martians",
        "1",
        Group::Network,
        "0",
        "packets with impossible addresses are logged",
    ),
    row(
        "net.ipv4.conf.default.log_martians",
        "1",
        Group::Network,
        "0",
        "packets with impossible addresses are logged",
    ),
    row(
        "net.ipv4.icmp_echo_ignore_broadcasts",
        "1",
        Group::Network,
        "1",
        "broadcast pings (smurf amplification) are ignored",
    ),
    row(
        "net.ipv4.icmp_ignore_bogus_error_responses",
        "1",
        Group::Network,
        "1",
        "bogus ICMP error responses are not logged",
    ),
    row(
        "net.ipv4.tcp_syncookies",
        "1",
        Group::Network,
        "1",
        "SYN floods are absorbed with syncookies",
    ),
    row(
        "net.ipv6.conf.all.accept_ra",
        "0",
        Group::Network,
        "1",
        "router advertisements cannot reconfigure addresses and routes",
    ),
    row(
        "net.ipv6.conf.default.accept_ra",
        "0",
        Group::Network,
        "1",
        "router advertisements cannot reconfigure addresses and routes",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_world_sysctl_files() {
        let text = "\u{feff}# comment\n; also a comment\n\nkernel.kptr_restrict=1\n  net.ipv4.tcp_rmem =\t4096   87380 6291456 \r\n\
                    -net.ipv6.conf.all.accept_ra = 0\nnet/ipv4/conf/eth0.100/rp_filter = 2\nnet.ipv4.conf.eth0/100.rp_filter=1\n\
                    net.ipv4.conf.*.rp_filter = 2\njunk line\n= 3\nkernel.domainname = a=b\nkey with space = 1\n\x00\u{fffd}=\n";
        let parsed = parse_sysctl_conf(text);
        let got: Vec<(&str, &str, usize, bool)> = parsed
            .assignments
            .iter()
            .map(|a| (a.path.as_str(), a.value.as_str(), a.line, a.ignore_failure))
            .collect();
        assert_eq!(
            got,
            [
                ("kernel/kptr_restrict", "1", 4, false),
                ("net/ipv4/tcp_rmem", "4096 87380 6291456", 5, false),
                ("net/ipv6/conf/all/accept_ra", "0", 6, true),
                ("net/ipv4/conf/eth0.100/rp_filter", "2", 7, false),
                ("net/ipv4/conf/eth0.100/rp_filter", "1", 8, false),
                ("net/ipv4/conf/*/rp_filter", "2", 9, false),
                ("kernel/domainname", "a=b", 12, false),
            ]
        );
        assert_eq!(parsed.malformed, [10, 11, 13, 14]);
    }

    #[test]
    fn the_last_matching_assignment_wins_globs_included() {
        let parsed =
            parse_sysctl_conf("net.ipv4.conf.all.rp_filter=1\nnet.ipv4.conf.*.rp_filter=2\n");
        let tagged: Vec<((), Assignment)> =
            parsed.assignments.into_iter().map(|a| ((), a)).collect();
        let (_, last) = last_assignment(&tagged, "net/ipv4/conf/all/rp_filter").unwrap();
        assert_eq!(last.value, "2");
        assert!(last_assignment(&tagged, "net/ipv4/ip_forward").is_none());
    }

    #[test]
    fn expectations_parse_and_judge() {
        assert!(Expect::parse("2").unwrap().accepts(" 2 "));
        assert!(!Expect::parse("2").unwrap().accepts("1"));
        assert!(Expect::parse("1|2").unwrap().accepts("2"));
        assert!(Expect::parse(">=1").unwrap().accepts("3"));
        assert!(!Expect::parse(">=1").unwrap().accepts("0"));
        assert!(!Expect::parse(">=1").unwrap().accepts("yes"));
        assert!(Expect::parse("<=0").unwrap().accepts("-1"));
        assert!(Expect::parse("4096 87380").unwrap().accepts("4096\t87380"));
        assert!(Expect::parse(">=x").is_err());
        assert!(Expect::parse("1||2").is_err());
        assert!(Expect::parse("").is_err());
        assert_eq!(Expect::parse("1|2").unwrap().to_string(), "1 or 2");
    }

    #[test]
    fn the_builtin_table_is_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for row in BUILTIN {
            let expect = Expect::parse(row.expect).unwrap();
            assert!(seen.insert(row.key), "{} twice", row.key);
            assert!(!row.kernel_default.is_empty());
            // A key whose kernel default already passes must not be a runtime-only finding.
            let _ = expect.accepts(row.kernel_default);
        }
    }
}
