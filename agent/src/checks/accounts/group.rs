//! `/etc/group`, `/etc/gshadow` and `/etc/login.defs`: group membership, group passwords and
//! group administrators, and the uid ranges that separate people from services.

use super::Parsed;
use super::passwd::{parse_id, significant};

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    /// The password field (normally `x`: look in gshadow). Never output.
    pub password: String,
    pub gid: u32,
    /// Supplementary members exactly as written: glibc does not trim them, so `alice, bob`
    /// makes ` bob` (with the space) a member, not `bob`.
    pub members: Vec<String>,
    pub line: usize,
}

/// Parses `/etc/group`.
pub fn parse_group(text: &str) -> Parsed<GroupEntry> {
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
        let fields: Vec<&str> = content.splitn(4, ':').collect();
        let [name, password, gid, members] = fields[..] else {
            parsed.problem(
                line,
                format!("{} fields instead of 4: ignored", fields.len()),
            );
            continue;
        };
        if name.is_empty() {
            parsed.problem(line, "empty group name: ignored");
            continue;
        }
        let Some(gid_value) = parse_id(gid) else {
            parsed.problem(
                line,
                format!("{name}: gid {gid:?} is not a number: ignored"),
            );
            continue;
        };
        let members = split_members(members);
        if members.iter().any(|m| m.trim() != m.as_str()) {
            parsed.problem(
                line,
                format!("{name}: a member name has surrounding spaces and matches no account"),
            );
        }
        parsed.entries.push(GroupEntry {
            name: name.to_string(),
            password: password.to_string(),
            gid: gid_value,
            members,
            line,
        });
    }
    parsed
}

/// One `/etc/gshadow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GshadowEntry {
    pub name: String,
    /// The group password: with a usable one, anyone who knows it joins with newgrp(1).
    pub password: String,
    /// Group administrators: they can add and remove members with gpasswd(1).
    pub admins: Vec<String>,
    pub members: Vec<String>,
    pub line: usize,
}

/// Parses `/etc/gshadow`.
pub fn parse_gshadow(text: &str) -> Parsed<GshadowEntry> {
    let mut parsed = Parsed::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some(content) = significant(raw) else {
            continue;
        };
        let fields: Vec<&str> = content.splitn(4, ':').collect();
        let [name, password, admins, members] = fields[..] else {
            parsed.problem(
                line,
                format!("{} fields instead of 4: ignored", fields.len()),
            );
            continue;
        };
        if name.is_empty() {
            parsed.problem(line, "empty group name: ignored");
            continue;
        }
        parsed.entries.push(GshadowEntry {
            name: name.to_string(),
            password: password.to_string(),
            admins: split_members(admins),
            members: split_members(members),
            line,
        });
    }
    parsed
}

fn split_members(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// The settings of `/etc/login.defs` this check uses, with shadow-utils' defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDefs {
    /// First uid useradd gives to people (`UID_MIN`).
    pub uid_min: u32,
    /// Last uid for people (`UID_MAX`).
    pub uid_max: u32,
    /// `PASS_MAX_DAYS` for new accounts; `None` when unset.
    pub pass_max_days: Option<i64>,
}

impl Default for LoginDefs {
    fn default() -> Self {
        LoginDefs {
            uid_min: 1000,
            uid_max: 60000,
            pass_max_days: None,
        }
    }
}

/// Parses `/etc/login.defs` (`NAME value` lines, `#` comments, values optionally quoted).
/// Numbers are read like shadow-utils reads them: `0x` hex and leading-zero octal allowed.
/// Unusable values keep the default and are reported.
pub fn parse_login_defs(text: &str) -> Parsed<LoginDefs> {
    let mut parsed: Parsed<LoginDefs> = Parsed::default();
    let mut defs = LoginDefs::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some(content) = significant(raw) else {
            continue;
        };
        let mut parts = content.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let value = value.trim_matches('"');
        match name {
            "UID_MIN" | "UID_MAX" => match c_number(value).and_then(|v| u32::try_from(v).ok()) {
                Some(v) if name == "UID_MIN" => defs.uid_min = v,
                Some(v) => defs.uid_max = v,
                None => parsed.problem(line, format!("{name} {value:?} is not a uid: ignored")),
            },
            "PASS_MAX_DAYS" => match c_number(value) {
                Some(v) => defs.pass_max_days = Some(v),
                None => parsed.problem(line, format!("PASS_MAX_DAYS {value:?} is not a number")),
            },
            _ => {}
        }
    }
    parsed.entries.push(defs);
    parsed
}

/// `strtol(value, …, 0)` for a whole field.
fn c_number(value: &str) -> Option<i64> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let parsed = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok()?
    };
    if negative {
        parsed.checked_neg()
    } else {
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_groups_and_their_members() {
        let text = "root:x:0:\nsudo:x:27:alice,bob\nwheel:x:10:alice, bob\r\nusers:x:100:\nbad:x:1x:\nshort:x\n";
        let parsed = parse_group(text);
        let names: Vec<&str> = parsed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["root", "sudo", "wheel", "users"]);
        assert!(parsed.entries[0].members.is_empty());
        assert_eq!(parsed.entries[1].members, ["alice", "bob"]);
        // glibc keeps the space: " bob" is not bob.
        assert_eq!(parsed.entries[2].members, ["alice", " bob"]);
        let lines: Vec<usize> = parsed.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 5, 6]);
    }

    #[test]
    fn reads_gshadow_admins_and_members() {
        let parsed =
            parse_gshadow("sudo:*::alice\nstaff:$y$j9T$abcdefgh$xyz:carol:dave,erin\njunk\n");
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[1].admins, ["carol"]);
        assert_eq!(parsed.entries[1].members, ["dave", "erin"]);
        assert_eq!(parsed.problems.len(), 1);
    }

    #[test]
    fn login_defs_numbers_and_defaults() {
        let parsed = parse_login_defs(
            "# comment\nUID_MIN\t\t\t 1000\nUID_MAX 0xEA60\nPASS_MAX_DAYS\t99999\nMAIL_DIR /var/mail\nUID_MIN\n",
        );
        let defs = &parsed.entries[0];
        assert_eq!(
            (defs.uid_min, defs.uid_max, defs.pass_max_days),
            (1000, 60000, Some(99999))
        );
        let parsed =
            parse_login_defs("UID_MIN \"500\"\nUID_MAX 01000\nPASS_MAX_DAYS x\nUID_MAX -5\n");
        let defs = &parsed.entries[0];
        assert_eq!(
            (defs.uid_min, defs.uid_max, defs.pass_max_days),
            (500, 512, None)
        );
        assert_eq!(parsed.problems.len(), 2);
        assert_eq!(parse_login_defs("").entries[0], LoginDefs::default());
    }
}
