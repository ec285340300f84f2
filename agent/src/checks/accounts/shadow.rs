//! `/etc/shadow`: password hashes classified (never copied into evidence) and the aging fields
//! read the way glibc and pam_unix read them.

use super::Parsed;
use super::passwd::{parse_id, significant};

/// Shadow's "no maximum": `PASS_MAX_DAYS 99999` is how Debian spells "never expires".
pub const NO_MAX_DAYS: i64 = 99_999;

/// One `/etc/shadow` entry. Day counts are days since 1970-01-01; `None` is an empty field
/// (the feature is disabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    pub name: String,
    /// The hash field. Never output; only its [`HashClass`] is.
    pub hash: String,
    pub last_change: Option<i64>,
    pub min_days: Option<i64>,
    pub max_days: Option<i64>,
    pub warn_days: Option<i64>,
    pub inactive_days: Option<i64>,
    pub expire: Option<i64>,
    pub line: usize,
}

/// Parses `/etc/shadow`. As in glibc, trailing fields may be missing (they read as empty) and
/// an entry with a non-numeric aging field is rejected: the system then finds no shadow entry
/// for that account, so neither do we (the problem is reported).
pub fn parse_shadow(text: &str) -> Parsed<ShadowEntry> {
    let mut parsed = Parsed::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some(content) = significant(raw) else {
            continue;
        };
        if content.starts_with('+') || content.starts_with('-') {
            parsed.problem(line, "NIS compat entry (+/-) ignored");
            continue;
        }
        let fields: Vec<&str> = content.split(':').collect();
        let name = fields.first().copied().unwrap_or_default();
        if name.is_empty() {
            parsed.problem(line, "empty user name: ignored");
            continue;
        }
        let Some(hash) = fields.get(1) else {
            parsed.problem(line, format!("{name}: no password field: ignored"));
            continue;
        };
        if fields.len() > 9 {
            parsed.problem(
                line,
                format!("{name}: {} fields instead of 9", fields.len()),
            );
        }
        let mut numbers = [None; 6];
        let mut bad = None;
        for (slot, field) in numbers.iter_mut().zip(fields.iter().skip(2)) {
            match aging_field(field) {
                Ok(value) => *slot = value,
                Err(()) => {
                    bad = Some(*field);
                    break;
                }
            }
        }
        if let Some(field) = bad {
            parsed.problem(
                line,
                format!(
                    "{name}: aging field {field:?} is not a number: the system ignores this entry"
                ),
            );
            continue;
        }
        let [
            last_change,
            min_days,
            max_days,
            warn_days,
            inactive_days,
            expire,
        ] = numbers;
        parsed.entries.push(ShadowEntry {
            name: name.to_string(),
            hash: (*hash).to_string(),
            last_change,
            min_days,
            max_days,
            warn_days,
            inactive_days,
            expire,
            line,
        });
    }
    parsed
}

/// An aging field: empty is `None`; glibc reads the number as an unsigned 32-bit value and
/// stores it in an `int`, so `-1` (and anything that wraps to a negative) means disabled too.
fn aging_field(field: &str) -> Result<Option<i64>, ()> {
    if field.is_empty() {
        return Ok(None);
    }
    let value = parse_id(field).ok_or(())?;
    // The C cast `(int) value`: values above i32::MAX wrap to negative, meaning "disabled".
    let signed = i32::from_ne_bytes(value.to_ne_bytes());
    Ok(if signed < 0 {
        None
    } else {
        Some(i64::from(signed))
    })
}

/// How a password field was set. The hash text itself never leaves this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashClass {
    /// Empty: no password is needed.
    Empty,
    /// A hash crypt(3) can verify.
    Usable(Algorithm),
    /// Locked: nothing can match it.
    Locked(LockKind),
}

/// Why a password field cannot match any password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `!` before a usable hash (`passwd -l`; `passwd -u` restores the old password).
    BangHash,
    /// `!!`: a password was never set (RHEL's useradd).
    DoubleBang,
    /// `!` or `!*` or `!` followed by something that is not a hash.
    Bang,
    /// `*` (or `*LK*`, `*NP*`): no password, the Debian default for system accounts.
    Star,
    /// Anything else crypt(3) cannot produce (`x`, `NP`, `LK`, a truncated hash…).
    Invalid,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::BangHash => "! before a hash (passwd -l)",
            LockKind::DoubleBang => "!! (never set)",
            LockKind::Bang => "!",
            LockKind::Star => "*",
            LockKind::Invalid => "not a valid hash",
        }
    }
}

/// The hashing scheme of a usable hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Yescrypt,
    GostYescrypt,
    Scrypt,
    Bcrypt,
    Sha512,
    Sha256,
    Sha1,
    SunMd5,
    Md5,
    Nt,
    BsdiDes,
    Des,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Yescrypt => "yescrypt",
            Algorithm::GostYescrypt => "gost-yescrypt",
            Algorithm::Scrypt => "scrypt",
            Algorithm::Bcrypt => "bcrypt",
            Algorithm::Sha512 => "sha512crypt",
            Algorithm::Sha256 => "sha256crypt",
            Algorithm::Sha1 => "sha1crypt",
            Algorithm::SunMd5 => "sunmd5",
            Algorithm::Md5 => "md5crypt",
            Algorithm::Nt => "nthash",
            Algorithm::BsdiDes => "bsdi-des",
            Algorithm::Des => "des",
        }
    }

    /// Schemes that fall to offline cracking on commodity hardware.
    pub fn is_weak(self) -> bool {
        matches!(
            self,
            Algorithm::Sha1
                | Algorithm::SunMd5
                | Algorithm::Md5
                | Algorithm::Nt
                | Algorithm::BsdiDes
                | Algorithm::Des
        )
    }
}

const CRYPT64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Classifies a password field (shadow's, or passwd's when it holds the hash itself).
pub fn classify_hash(field: &str) -> HashClass {
    if field.is_empty() {
        return HashClass::Empty;
    }
    if let Some(rest) = field.strip_prefix('!') {
        if rest.starts_with('!') {
            return HashClass::Locked(LockKind::DoubleBang);
        }
        return HashClass::Locked(match usable_algorithm(rest) {
            Some(_) => LockKind::BangHash,
            None => LockKind::Bang,
        });
    }
    if field.starts_with('*') {
        return HashClass::Locked(LockKind::Star);
    }
    match usable_algorithm(field) {
        Some(algorithm) => HashClass::Usable(algorithm),
        None => HashClass::Locked(LockKind::Invalid),
    }
}

/// The scheme of a hash crypt(3) (libxcrypt, as on Debian 12) can verify, or `None`.
fn usable_algorithm(hash: &str) -> Option<Algorithm> {
    let valid_chars = hash
        .bytes()
        .all(|b| CRYPT64.contains(&b) || matches!(b, b'$' | b'=' | b',' | b'+' | b'-' | b'_'));
    if !valid_chars {
        return None;
    }
    const PREFIXES: &[(&str, Algorithm)] = &[
        ("$y$", Algorithm::Yescrypt),
        ("$gy$", Algorithm::GostYescrypt),
        ("$7$", Algorithm::Scrypt),
        ("$2b$", Algorithm::Bcrypt),
        ("$2a$", Algorithm::Bcrypt),
        ("$2y$", Algorithm::Bcrypt),
        ("$2x$", Algorithm::Bcrypt),
        ("$6$", Algorithm::Sha512),
        ("$5$", Algorithm::Sha256),
        ("$sha1$", Algorithm::Sha1),
        ("$md5$", Algorithm::SunMd5),
        ("$md5,", Algorithm::SunMd5),
        ("$1$", Algorithm::Md5),
        ("$3$", Algorithm::Nt),
    ];
    for (prefix, algorithm) in PREFIXES {
        if let Some(rest) = hash.strip_prefix(prefix) {
            // A prefix alone, or a salt without the hash part, verifies nothing.
            return (rest.len() >= 8 && rest.contains('$')).then_some(*algorithm);
        }
    }
    if hash.starts_with('$') {
        return None;
    }
    let all_crypt64 = hash.bytes().all(|b| CRYPT64.contains(&b));
    if hash.len() == 13 && all_crypt64 {
        return Some(Algorithm::Des);
    }
    if hash.len() == 20
        && hash.starts_with('_')
        && hash.bytes().skip(1).all(|b| CRYPT64.contains(&b))
    {
        return Some(Algorithm::BsdiDes);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const YESCRYPT: &str =
        "$y$j9T$Vq0cYbD2c0wTx1vTq3Zx4/$1yqZ8J2vVdXf3mFh3fS7mWbqG0bq9xGkM1s0b5qvZ4C";

    #[test]
    fn reads_debian_shadow_lines() {
        let text = format!(
            "root:*:19700:0:99999:7:::\n\
             systemd-network:!*:19700::::::\n\
             alice:{YESCRYPT}:20527:0:365:7:30:20800:\n\
             old:$1$abcdefgh$abcdefghijklmnopqrstuv:19000\n"
        );
        let parsed = parse_shadow(&text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let root = &parsed.entries[0];
        assert_eq!(
            (
                root.last_change,
                root.min_days,
                root.max_days,
                root.warn_days
            ),
            (Some(19700), Some(0), Some(99_999), Some(7))
        );
        assert_eq!((root.inactive_days, root.expire), (None, None));
        let network = &parsed.entries[1];
        assert_eq!((network.last_change, network.max_days), (Some(19700), None));
        let alice = &parsed.entries[2];
        assert_eq!(
            (alice.max_days, alice.inactive_days, alice.expire),
            (Some(365), Some(30), Some(20800))
        );
        // Short lines are accepted as glibc accepts them.
        let old = &parsed.entries[3];
        assert_eq!((old.last_change, old.max_days), (Some(19000), None));
    }

    #[test]
    fn malformed_entries_are_ignored_like_glibc_does() {
        let text = "a:x:abc:0:99999:7:::\r\n\
                    b\n\
                    :x:1::::::\n\
                    c:x:-1:0:-1:7::4294967295:\n\
                    d:x:1:2:3:4:5:6:7:8:9\n\
                    \u{fffd}\u{0}:junk\n";
        let parsed = parse_shadow(text);
        let names: Vec<&str> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["c", "d", "\u{fffd}\u{0}"]);
        let c = &parsed.entries[0];
        assert_eq!((c.last_change, c.max_days, c.expire), (None, None, None));
        let lines: Vec<usize> = parsed.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 3, 5]);
    }

    #[test]
    fn hashes_are_classified() {
        use HashClass::*;
        assert_eq!(classify_hash(""), Empty);
        assert_eq!(classify_hash(YESCRYPT), Usable(Algorithm::Yescrypt));
        assert_eq!(
            classify_hash("$6$rounds=5000$saltsalt$aaaaaaaaaaaaaaaaaaaaaa"),
            Usable(Algorithm::Sha512)
        );
        assert_eq!(
            classify_hash("$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"),
            Usable(Algorithm::Bcrypt)
        );
        assert_eq!(
            classify_hash("$3$$8846f7eaee8fb117ad06bdd830b7586c"),
            Usable(Algorithm::Nt)
        );
        assert_eq!(classify_hash("abJnggxhB/yWI"), Usable(Algorithm::Des));
        assert_eq!(
            classify_hash("_J9..CCCCXBrJUJV154M"),
            Usable(Algorithm::BsdiDes)
        );
        assert_eq!(classify_hash("*"), Locked(LockKind::Star));
        assert_eq!(classify_hash("*LK*"), Locked(LockKind::Star));
        assert_eq!(classify_hash("!"), Locked(LockKind::Bang));
        assert_eq!(classify_hash("!*"), Locked(LockKind::Bang));
        assert_eq!(classify_hash("!!"), Locked(LockKind::DoubleBang));
        assert_eq!(
            classify_hash(&format!("!{YESCRYPT}")),
            Locked(LockKind::BangHash)
        );
        for invalid in [
            "x",
            "NP",
            "LK",
            "$y$",
            "$y$j9T",
            "$2b$12",
            "$9$abcdefgh$abcdefgh",
            "pass word",
            "\u{0}",
        ] {
            assert_eq!(
                classify_hash(invalid),
                Locked(LockKind::Invalid),
                "{invalid:?}"
            );
        }
        assert!(Algorithm::Md5.is_weak());
        assert!(!Algorithm::Yescrypt.is_weak());
    }
}
