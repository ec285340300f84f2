//! dconf's system configuration: profiles (`/etc/dconf/profile/user`), keyfile directories
//! (`/etc/dconf/db/<name>.d/*`, GLib keyfile syntax with GVariant text values) and lock files
//! (`/etc/dconf/db/<name>.d/locks/*`, one key path per line).

use std::collections::BTreeMap;

/// A database named in a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileDb {
    User(String),
    System(String),
    /// `file-db:`, `service-db:`: not read.
    Other(String),
}

/// The databases of a profile, highest priority first.
pub fn parse_profile(text: &str) -> Vec<ProfileDb> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(':') {
            Some(("user-db", n)) => ProfileDb::User(n.trim().to_string()),
            Some(("system-db", n)) => ProfileDb::System(n.trim().to_string()),
            _ => ProfileDb::Other(l.to_string()),
        })
        .collect()
}

/// A value as written in a keyfile, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub raw: String,
    pub line: usize,
}

/// `/dir/key` → value, from one keyfile. Later assignments win; sections name the directory
/// without its leading slash (`[org/gnome/desktop/session]`).
pub fn parse_keyfile(text: &str) -> BTreeMap<String, Setting> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim().trim_matches('/').to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if section.is_empty() {
                continue;
            }
            out.insert(
                format!("/{section}/{}", k.trim()),
                Setting {
                    raw: v.trim().to_string(),
                    line: i + 1,
                },
            );
        }
    }
    out
}

/// Key paths of a lock file.
pub fn parse_locks(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| l.starts_with('/'))
        .map(String::from)
        .collect()
}

/// A GVariant boolean (`true`, `false`).
pub fn gvariant_bool(raw: &str) -> Option<bool> {
    match raw.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A GVariant integer (`300`, `uint32 300`, `int32 -1`).
pub fn gvariant_int(raw: &str) -> Option<i64> {
    let t = raw.trim();
    let number = match t.split_once(char::is_whitespace) {
        Some(("uint32" | "int32" | "uint64" | "int64" | "uint16" | "int16" | "byte", n)) => {
            n.trim()
        }
        _ => t,
    };
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_keyfiles_and_locks() {
        assert_eq!(
            parse_profile("user-db:user\n# site\nsystem-db:local\nsystem-db:site\nfile-db:/x\n"),
            [
                ProfileDb::User("user".into()),
                ProfileDb::System("local".into()),
                ProfileDb::System("site".into()),
                ProfileDb::Other("file-db:/x".into()),
            ]
        );
        let k = parse_keyfile(
            "# Screen lock\r\n[org/gnome/desktop/session]\r\nidle-delay=uint32 300\n\n\
             [/org/gnome/desktop/screensaver/]\nlock-enabled = true\nlock-delay=uint32 0\n\
             lock-enabled=false\norphan\n",
        );
        assert_eq!(k["/org/gnome/desktop/session/idle-delay"].raw, "uint32 300");
        assert_eq!(
            k["/org/gnome/desktop/screensaver/lock-enabled"].raw,
            "false"
        );
        assert_eq!(k["/org/gnome/desktop/screensaver/lock-enabled"].line, 8);
        assert_eq!(
            parse_locks("# locks\n/org/gnome/desktop/session/idle-delay\nnot-a-path\n"),
            ["/org/gnome/desktop/session/idle-delay"]
        );
        assert_eq!(gvariant_int("uint32 900"), Some(900));
        assert_eq!(gvariant_int("900"), Some(900));
        assert_eq!(gvariant_int("'900'"), None);
        assert_eq!(gvariant_bool("true"), Some(true));
        assert_eq!(gvariant_bool("True"), None);
        assert!(parse_keyfile("key=value\n[").is_empty());
    }
}
