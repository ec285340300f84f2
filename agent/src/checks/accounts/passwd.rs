//! `/etc/passwd` and `/etc/shells`: account entries read the way glibc's `files` backend reads
//! them, and the classification of login shells.

use super::Parsed;

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    /// The password field: `x` (look in shadow), empty, a lock marker or a hash. Never output.
    pub password: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    /// As written; empty means `/bin/sh` to login(1) and sshd.
    pub shell: String,
    /// 1-based line number.
    pub line: usize,
}

/// Parses `/etc/passwd`. Blank lines and `#` comments are skipped as glibc skips them; lines
/// glibc would reject (wrong field count, non-numeric ids) become problems and are not
/// accounts, because the system does not see them either.
pub fn parse_passwd(text: &str) -> Parsed<PasswdEntry> {
    let mut parsed = Parsed::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some(content) = significant(raw) else {
            continue;
        };
        if content.starts_with('+') || content.starts_with('-') {
            parsed.problem(
                line,
                "NIS compat entry (+/-) ignored: it names no local account",
            );
            continue;
        }
        // glibc: the shell is "the rest of the line", so it may itself contain colons.
        let fields: Vec<&str> = content.splitn(7, ':').collect();
        let [name, password, uid, gid, gecos, home, shell] = fields[..] else {
            parsed.problem(
                line,
                format!("{} fields instead of 7: ignored", fields.len()),
            );
            continue;
        };
        if name.is_empty() {
            parsed.problem(line, "empty user name: ignored");
            continue;
        }
        let Some(uid_value) = parse_id(uid) else {
            parsed.problem(
                line,
                format!("{name}: uid {uid:?} is not a number: ignored"),
            );
            continue;
        };
        let Some(gid_value) = parse_id(gid) else {
            parsed.problem(
                line,
                format!("{name}: gid {gid:?} is not a number: ignored"),
            );
            continue;
        };
        if uid_value.to_string() != uid {
            parsed.problem(
                line,
                format!("{name}: uid {uid:?} is read by the system as {uid_value}"),
            );
        }
        parsed.entries.push(PasswdEntry {
            name: name.to_string(),
            password: password.to_string(),
            uid: uid_value,
            gid: gid_value,
            gecos: gecos.to_string(),
            home: home.to_string(),
            shell: shell.to_string(),
            line,
        });
    }
    parsed
}

/// The line without its `\r`, or `None` for blank lines and comments (glibc skips leading
/// white space and then lines that are empty or start with `#`).
pub(super) fn significant(raw: &str) -> Option<&str> {
    let content = raw.strip_suffix('\r').unwrap_or(raw);
    let trimmed = content.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        None
    } else {
        Some(content)
    }
}

/// A numeric id field read like glibc's `strtou32`: leading white space and a sign are
/// accepted, the digits must end the field, values above `u32::MAX` clamp to `u32::MAX` and
/// negative values wrap like `strtoul` before clamping. `000` is uid 0: an attacker's
/// favourite spelling of root.
pub fn parse_id(field: &str) -> Option<u32> {
    let trimmed = field.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // strtoul saturates at ULONG_MAX (64-bit) on overflow.
    let mut value: u64 = 0;
    let mut overflow = false;
    for b in digits.bytes() {
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(v) => value = v,
            None => {
                overflow = true;
                break;
            }
        }
    }
    let unsigned = if overflow {
        u64::MAX
    } else if negative {
        value.wrapping_neg()
    } else {
        value
    };
    Some(u32::try_from(unsigned).unwrap_or(u32::MAX))
}

/// What a login shell lets an account do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind {
    /// Listed in `/etc/shells` (or empty, which means `/bin/sh`).
    Interactive,
    /// `nologin`, `false` and the like: no session, although sshd still accepts the account
    /// for authentication and port forwarding.
    NoLogin,
    /// Neither listed in `/etc/shells` nor a known refusal program. sshd and login(1) do not
    /// consult `/etc/shells`, so such an account can still start sessions.
    Unlisted,
}

impl ShellKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ShellKind::Interactive => "interactive",
            ShellKind::NoLogin => "nologin",
            ShellKind::Unlisted => "unlisted",
        }
    }

    /// True unless the shell refuses sessions.
    pub fn can_start_session(self) -> bool {
        self != ShellKind::NoLogin
    }
}

/// Programs used as shells precisely to refuse a session.
const REFUSING_SHELLS: &[&str] = &["nologin", "false", "true", "sync", "shutdown", "halt"];

/// Classifies a login shell against the parsed `/etc/shells` (`None`: the file is absent, and
/// any shell that is not a refusal program counts as interactive).
pub fn classify_shell(shell: &str, shells: Option<&[String]>) -> ShellKind {
    let shell = shell.trim();
    if shell.is_empty() {
        return ShellKind::Interactive;
    }
    let base = shell.rsplit('/').next().unwrap_or(shell);
    if REFUSING_SHELLS.contains(&base) || shell == "/dev/null" {
        return ShellKind::NoLogin;
    }
    match shells {
        None => ShellKind::Interactive,
        Some(list) => {
            if list
                .iter()
                .any(|s| s == shell || usr_merged(s) == usr_merged(shell))
            {
                ShellKind::Interactive
            } else {
                ShellKind::Unlisted
            }
        }
    }
}

/// `/bin/bash` and `/usr/bin/bash` are the same file on usr-merged systems (Debian 12), and
/// `/etc/shells` does not always list both spellings.
fn usr_merged(path: &str) -> &str {
    path.strip_prefix("/usr").unwrap_or(path)
}

/// Parses `/etc/shells` like glibc's `getusershell`: on each line the path starts at the first
/// `/` (a `#` before it makes the line a comment) and ends at white space or `#`.
pub fn parse_shells(text: &str) -> Vec<String> {
    let mut shells = Vec::new();
    for line in text.lines() {
        let Some(start) = line.find(['/', '#']) else {
            continue;
        };
        let rest = &line[start..];
        if rest.starts_with('#') {
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '#')
            .unwrap_or(rest.len());
        shells.push(rest[..end].to_string());
    }
    shells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_debian_passwd() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                    sync:x:4:65534:sync:/bin:/bin/sync\n\
                    alice:x:1000:1000:Alice Admin,,,:/home/alice:/bin/bash\n";
        let parsed = parse_passwd(text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.entries.len(), 4);
        let alice = &parsed.entries[3];
        assert_eq!(
            (alice.name.as_str(), alice.uid, alice.gid, alice.line),
            ("alice", 1000, 1000, 4)
        );
        assert_eq!(alice.gecos, "Alice Admin,,,");
        assert_eq!(alice.home, "/home/alice");
        assert_eq!(alice.shell, "/bin/bash");
    }

    #[test]
    fn nasty_lines_are_problems_not_accounts() {
        let text = "# a comment\r\n\
                    \r\n\
                    root:x:0:0:root:/root:/bin/bash\r\n\
                    short:x:1:1\n\
                    :x:5:5::/:/bin/sh\n\
                    bad:x:12a:1::/:/bin/sh\n\
                    hex:x:0x10:1::/:/bin/sh\n\
                    +::::::\n\
                    -nisuser::::::\n\
                    \u{0}\u{1}\u{ff}garbage\n\
                    colon:x:7:7::/home/c:/bin/sh:extra\n";
        let parsed = parse_passwd(text);
        let names: Vec<&str> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "colon"]);
        // CRLF does not leak into the shell.
        assert_eq!(parsed.entries[0].shell, "/bin/bash");
        // glibc takes the rest of the line as the shell.
        assert_eq!(parsed.entries[1].shell, "/bin/sh:extra");
        let lines: Vec<usize> = parsed.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [4, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn ids_are_read_like_glibc() {
        assert_eq!(parse_id("0"), Some(0));
        assert_eq!(parse_id("000"), Some(0));
        assert_eq!(parse_id("+0"), Some(0));
        assert_eq!(parse_id(" 7"), Some(7));
        assert_eq!(parse_id("4294967295"), Some(u32::MAX));
        assert_eq!(parse_id("4294967296"), Some(u32::MAX));
        assert_eq!(parse_id("99999999999999999999999"), Some(u32::MAX));
        assert_eq!(parse_id("-1"), Some(u32::MAX));
        assert_eq!(parse_id("-18446744073709551615"), Some(1));
        for bad in ["", " ", "-", "1 ", "0x10", "1.0", "١"] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_disguised_root_uid_is_reported_and_kept() {
        let parsed = parse_passwd("toor:x:000:0::/root:/bin/sh\n");
        assert_eq!(parsed.entries[0].uid, 0);
        assert_eq!(parsed.problems.len(), 1);
        assert!(
            parsed.problems[0]
                .message
                .contains("read by the system as 0")
        );
    }

    #[test]
    fn shells_are_classified() {
        let shells = parse_shells(
            "# /etc/shells: valid login shells\n/bin/sh\r\n  /usr/bin/bash\n\n/bin/dash# x\nfoo\n",
        );
        assert_eq!(shells, ["/bin/sh", "/usr/bin/bash", "/bin/dash"]);
        let list = Some(&shells[..]);
        assert_eq!(classify_shell("/bin/bash", list), ShellKind::Interactive);
        assert_eq!(
            classify_shell("/usr/bin/bash", list),
            ShellKind::Interactive
        );
        assert_eq!(classify_shell("", list), ShellKind::Interactive);
        assert_eq!(
            classify_shell("/usr/sbin/nologin", list),
            ShellKind::NoLogin
        );
        assert_eq!(classify_shell("/sbin/nologin", None), ShellKind::NoLogin);
        assert_eq!(classify_shell("/bin/false", list), ShellKind::NoLogin);
        assert_eq!(classify_shell("/bin/sync", list), ShellKind::NoLogin);
        assert_eq!(
            classify_shell("/usr/local/bin/fish", list),
            ShellKind::Unlisted
        );
        assert_eq!(
            classify_shell("/usr/local/bin/fish", None),
            ShellKind::Interactive
        );
        assert!(ShellKind::Unlisted.can_start_session());
        assert!(!ShellKind::NoLogin.can_start_session());
    }
}
