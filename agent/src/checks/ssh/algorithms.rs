//! OpenSSH version facts: the version of an sshd binary, its compiled-in defaults, the
//! algorithm lists with their `+`/`-`/`^` modifiers and wildcards, and sshd's time format.

use crate::checks::confdir::glob_match;

/// An OpenSSH release (`9.2p1` is 9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The release an sshd binary announces (`OpenSSH_9.2p1 Debian-2+deb12u6`). The binary also
/// holds compatibility patterns (`OpenSSH_7.0*,OpenSSH_7.1*`): only a version followed by a
/// NUL or a space is the binary's own.
pub fn version_from_binary(bytes: &[u8]) -> Option<(Version, String)> {
    let needle = b"OpenSSH_";
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&bytes[from..], needle) {
        let start = from + at;
        let rest = &bytes[start + needle.len()..];
        let end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'.' || *b == b'p'))
            .unwrap_or(rest.len());
        let next = rest.get(end).copied();
        if end > 0 && matches!(next, Some(0) | Some(b' ')) {
            let text = String::from_utf8_lossy(&rest[..end]).into_owned();
            if let Some(version) = parse_version(&text) {
                let full_end = rest
                    .iter()
                    .position(|b| *b == 0 || *b == b'\n')
                    .unwrap_or(rest.len())
                    .min(80);
                let full = format!("OpenSSH_{}", String::from_utf8_lossy(&rest[..full_end]));
                return Some((version, full));
            }
        }
        from = start + needle.len();
    }
    None
}

/// `9.2p1`, `1:9.2p1-2+deb12u6` (a dpkg version) or `8.7p1-38.el9` → 9.2 / 8.7.
pub fn parse_version(text: &str) -> Option<Version> {
    let text = text.split_once(':').map_or(text, |(_, rest)| rest);
    let mut parts = text.splitn(2, '.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor_text = parts.next()?;
    let digits: String = minor_text
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let minor: u32 = digits.parse().ok()?;
    Some(Version { major, minor })
}

/// Which algorithm list a keyword sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ciphers,
    Macs,
    Kex,
    HostKey,
}

impl Kind {
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Ciphers => "Ciphers",
            Kind::Macs => "MACs",
            Kind::Kex => "KexAlgorithms",
            Kind::HostKey => "HostKeyAlgorithms",
        }
    }
}

const CIPHERS_ALL: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "rijndael-cbc@lysator.liu.se",
    "blowfish-cbc",
    "cast128-cbc",
    "arcfour",
    "arcfour128",
    "arcfour256",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];
const CIPHERS_DEFAULT: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];
/// Before 6.7 the server also offered CBC modes and arcfour.
const CIPHERS_DEFAULT_OLD: &[&str] = &[
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "arcfour256",
    "arcfour128",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-cbc",
    "3des-cbc",
    "blowfish-cbc",
    "cast128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "arcfour",
    "rijndael-cbc@lysator.liu.se",
];
const MACS_ALL: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "hmac-ripemd160",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "hmac-ripemd160-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
const MACS_DEFAULT: &[&str] = &[
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];
const KEX_ALL: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512@openssh.com",
    "sntrup761x25519-sha512",
    "mlkem768x25519-sha256",
];
const KEX_DEFAULT_9: &[&str] = &[
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
];
/// Until 8.2 the server still offered group14 with SHA-1.
const KEX_DEFAULT_OLD: &[&str] = &[
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group14-sha1",
];
const HOSTKEY_ALL: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
];
const HOSTKEY_DEFAULT: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
];
/// Until 8.8 SHA-1 RSA signatures (`ssh-rsa`) were on by default.
const HOSTKEY_DEFAULT_OLD: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

fn at_least(version: Option<Version>, major: u32, minor: u32) -> bool {
    // An unknown version is judged as a current release.
    version.is_none_or(|v| v >= Version { major, minor })
}

/// Every algorithm of a kind that an sshd may know, for wildcard expansion.
pub fn supported(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Ciphers => CIPHERS_ALL,
        Kind::Macs => MACS_ALL,
        Kind::Kex => KEX_ALL,
        Kind::HostKey => HOSTKEY_ALL,
    }
}

/// The compiled-in default list of a release.
pub fn default_list(kind: Kind, version: Option<Version>) -> Vec<String> {
    let list: &[&str] = match kind {
        Kind::Ciphers if at_least(version, 6, 7) => CIPHERS_DEFAULT,
        Kind::Ciphers => CIPHERS_DEFAULT_OLD,
        Kind::Macs => MACS_DEFAULT,
        Kind::Kex if at_least(version, 9, 9) => {
            let mut v = vec!["mlkem768x25519-sha256".to_string()];
            v.extend(KEX_DEFAULT_9.iter().map(|s| (*s).to_string()));
            return v;
        }
        Kind::Kex if at_least(version, 8, 5) => KEX_DEFAULT_9,
        Kind::Kex => KEX_DEFAULT_OLD,
        Kind::HostKey if at_least(version, 8, 8) => HOSTKEY_DEFAULT,
        Kind::HostKey => HOSTKEY_DEFAULT_OLD,
    };
    list.iter().map(|s| (*s).to_string()).collect()
}

/// `PermitRootLogin`'s default: `yes` before 7.0, `prohibit-password` since.
pub fn default_permit_root_login(version: Option<Version>) -> &'static str {
    if at_least(version, 7, 0) {
        "prohibit-password"
    } else {
        "yes"
    }
}

fn matches_any(patterns: &[&str], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

/// The effective list for a value: `+list` appends to the default, `-list` removes
/// (wildcards allowed), `^list` prepends, a plain list replaces. Wildcards in added or plain
/// lists expand over the supported algorithms, as `kex_assemble_names` does.
pub fn effective_list(kind: Kind, version: Option<Version>, value: &str) -> Vec<String> {
    let default = default_list(kind, version);
    let expand = |list: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.contains(['*', '?', '[']) {
                for name in supported(kind) {
                    if glob_match(item, name) && !out.iter().any(|o| o == name) {
                        out.push((*name).to_string());
                    }
                }
            } else if !out.iter().any(|o| o == item) {
                out.push(item.to_string());
            }
        }
        out
    };
    let mut result = if let Some(list) = value.strip_prefix('+') {
        let mut v = default;
        for name in expand(list) {
            if !v.contains(&name) {
                v.push(name);
            }
        }
        v
    } else if let Some(list) = value.strip_prefix('-') {
        let patterns: Vec<&str> = list.split(',').map(str::trim).collect();
        default
            .into_iter()
            .filter(|name| !matches_any(&patterns, name))
            .collect()
    } else if let Some(list) = value.strip_prefix('^') {
        let mut v = expand(list);
        for name in default {
            if !v.contains(&name) {
                v.push(name);
            }
        }
        v
    } else {
        expand(value)
    };
    result.dedup();
    result
}

/// sshd's time format: `90`, `2m`, `1h30m`, `1W` (case-insensitive units s, m, h, d, w).
pub fn parse_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    if !number.is_empty() {
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_binary_version_among_compat_patterns() {
        let mut bin = b"\x7fELF\0\0OpenSSH_2.*,OpenSSH_3.0*\0OpenSSH_7.4*\0OpenSSH_9.2\0".to_vec();
        bin.extend_from_slice(b"junk\0OpenSSH_9.2p1 Debian-2+deb12u6\0more");
        let (version, full) = version_from_binary(&bin).unwrap();
        assert_eq!(version, Version { major: 9, minor: 2 });
        assert_eq!(full, "OpenSSH_9.2");
        let (_, full) = version_from_binary(b"xOpenSSH_8.7p1 \0").unwrap();
        assert_eq!(full, "OpenSSH_8.7p1 ");
        assert!(version_from_binary(b"OpenSSH_2.*,OpenSSH_3*\0OpenSSH_").is_none());
        assert_eq!(
            parse_version("1:9.2p1-2+deb12u6"),
            Some(Version { major: 9, minor: 2 })
        );
        assert_eq!(
            parse_version("8.7p1-38.el9"),
            Some(Version { major: 8, minor: 7 })
        );
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn list_modifiers_follow_kex_assemble_names() {
        let v92 = Some(Version { major: 9, minor: 2 });
        assert_eq!(
            effective_list(Kind::Ciphers, v92, "-chacha20*,aes128-ctr"),
            [
                "aes192-ctr",
                "aes256-ctr",
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com"
            ]
        );
        let plus = effective_list(Kind::Ciphers, v92, "+aes*-cbc");
        assert_eq!(&plus[6..], ["aes128-cbc", "aes192-cbc", "aes256-cbc"]);
        let caret = effective_list(Kind::Kex, v92, "^diffie-hellman-group1-sha1");
        assert_eq!(caret[0], "diffie-hellman-group1-sha1");
        assert_eq!(caret.len(), 11);
        assert_eq!(
            effective_list(
                Kind::Macs,
                v92,
                "hmac-sha2-512-etm@openssh.com, hmac-sha2-256-etm@openssh.com"
            ),
            [
                "hmac-sha2-512-etm@openssh.com",
                "hmac-sha2-256-etm@openssh.com"
            ]
        );
        assert!(
            effective_list(
                Kind::HostKey,
                Some(Version { major: 7, minor: 4 }),
                "-ecdsa*"
            )
            .contains(&"ssh-rsa".to_string())
        );
        assert!(!default_list(Kind::HostKey, v92).contains(&"ssh-rsa".to_string()));
        assert!(
            default_list(Kind::Ciphers, Some(Version { major: 6, minor: 6 }))
                .contains(&"3des-cbc".to_string())
        );
        assert_eq!(
            default_permit_root_login(Some(Version { major: 6, minor: 9 })),
            "yes"
        );
        assert_eq!(default_permit_root_login(None), "prohibit-password");
    }

    #[test]
    fn times_parse_like_convtime() {
        assert_eq!(parse_seconds("120"), Some(120));
        assert_eq!(parse_seconds("2m"), Some(120));
        assert_eq!(parse_seconds("1h30M"), Some(5400));
        assert_eq!(parse_seconds("1w"), Some(604_800));
        assert_eq!(parse_seconds("0"), Some(0));
        assert_eq!(parse_seconds("1x"), None);
        assert_eq!(parse_seconds(""), None);
        assert_eq!(parse_seconds("m"), None);
        assert_eq!(parse_seconds("99999999999999999999"), None);
        assert_eq!(parse_seconds("9999999999999999w"), None);
    }
}
