//! Reads every accounts source through the host root once and joins them into one account
//! list: passwd + shadow + groups + shells + keys + last logins. Judging happens elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;

use chrono::{DateTime, Utc};

use super::authorized_keys::{self, KeyFile, Owner};
use super::group::{
    GroupEntry, GshadowEntry, LoginDefs, parse_group, parse_gshadow, parse_login_defs,
};
use super::logins::{self, Login};
use super::passwd::{PasswdEntry, ShellKind, classify_shell, parse_passwd, parse_shells};
use super::shadow::{Algorithm, HashClass, LockKind, ShadowEntry, classify_hash, parse_shadow};
use super::sudoers::{self, HostNames, Policy};
use super::{LineProblem, Parsed};
use crate::hostroot::{HostError, HostRoot};

pub const PASSWD_PATH: &str = "/etc/passwd";
pub const SHADOW_PATH: &str = "/etc/shadow";
pub const GROUP_PATH: &str = "/etc/group";
pub const GSHADOW_PATH: &str = "/etc/gshadow";
pub const SHELLS_PATH: &str = "/etc/shells";
pub const LOGIN_DEFS_PATH: &str = "/etc/login.defs";
pub const HOSTNAME_PATH: &str = "/etc/hostname";

/// A host file: absent, present but unreadable, or read.
#[derive(Debug)]
pub enum FileState<T> {
    Absent,
    Unreadable(HostError),
    Read(T),
}

impl<T> FileState<T> {
    pub fn is_read(&self) -> bool {
        matches!(self, FileState::Read(_))
    }

    pub fn read(&self) -> Option<&T> {
        match self {
            FileState::Read(t) => Some(t),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<&HostError> {
        match self {
            FileState::Unreadable(e) => Some(e),
            _ => None,
        }
    }
}

/// Where an account's password stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordState {
    /// A shadow hash crypt(3) can verify.
    Usable(Algorithm),
    /// A hash in world-readable `/etc/passwd` itself.
    InPasswd(Algorithm),
    /// No password needed; `in_passwd` when the passwd field itself is empty.
    Empty {
        in_passwd: bool,
    },
    Locked(LockKind),
    /// `x` in passwd but no shadow entry.
    Missing,
    /// Shadow exists but could not be read.
    Unknown,
}

impl PasswordState {
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordState::Usable(_) => "usable",
            PasswordState::InPasswd(_) => "hash_in_passwd",
            PasswordState::Empty { .. } => "empty",
            PasswordState::Locked(_) => "locked",
            PasswordState::Missing => "missing",
            PasswordState::Unknown => "unknown",
        }
    }

    /// A password (or no password at all) gets this account in.
    pub fn authenticates(self) -> bool {
        matches!(
            self,
            PasswordState::Usable(_) | PasswordState::InPasswd(_) | PasswordState::Empty { .. }
        )
    }

    pub fn algorithm(self) -> Option<Algorithm> {
        match self {
            PasswordState::Usable(a) | PasswordState::InPasswd(a) => Some(a),
            _ => None,
        }
    }
}

/// One account with everything known about it.
#[derive(Debug, Clone)]
pub struct Account {
    pub entry: PasswdEntry,
    /// Its shadow entry, when passwd defers to shadow and shadow has one.
    pub shadow: Option<ShadowEntry>,
    pub password: PasswordState,
    pub primary_group: Option<String>,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// Primary and supplementary group names (for sudoers `%group`).
    pub all_groups: Vec<String>,
    /// Primary and supplementary gids.
    pub gids: Vec<u32>,
    pub shell: ShellKind,
    /// `UID_MIN <= uid <= UID_MAX`.
    pub human: bool,
    /// Why the account cannot log in any more, if it cannot (pam_unix's account checks).
    pub expired: Option<String>,
    /// Keys in this account's authorized_keys files.
    pub keys: usize,
    /// Paths of its keys files.
    pub key_files: Vec<String>,
    pub last_login: Option<Login>,
    /// Several accounts share the uid, so lastlog (indexed by uid) could not be attributed.
    pub lastlog_shared: bool,
}

impl Account {
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// Password, empty password or key, a shell that starts sessions, and not expired.
    pub fn can_log_in(&self) -> bool {
        (self.password.authenticates() || self.keys > 0)
            && self.shell.can_start_session()
            && self.expired.is_none()
    }

    /// Days since the epoch of the last password change, when it is a real date.
    pub fn password_changed(&self) -> Option<i64> {
        self.shadow
            .as_ref()
            .and_then(|s| s.last_change)
            .filter(|&d| d > 0)
    }
}

/// A keys file with the accounts whose home holds it.
#[derive(Debug, Clone)]
pub struct KeysFile {
    pub file: KeyFile,
    pub accounts: Vec<String>,
}

/// What the login record sources gave.
#[derive(Debug, Default)]
pub struct LoginFacts {
    /// Files read.
    pub sources: Vec<String>,
    /// Files that exist but could not be read.
    pub errors: Vec<String>,
    /// Notes (a truncated wtmp, junk records).
    pub notes: Vec<String>,
}

/// Everything the outputs judge.
#[derive(Debug)]
pub struct Facts {
    pub passwd: FileState<()>,
    pub shadow: FileState<()>,
    pub group: FileState<()>,
    pub gshadow: FileState<()>,
    pub shells: Option<Vec<String>>,
    pub login_defs: LoginDefs,
    pub login_defs_read: bool,
    pub accounts: Vec<Account>,
    pub groups: Vec<GroupEntry>,
    pub gshadow_entries: Vec<GshadowEntry>,
    /// `path:line: message` for every line a parser could not use.
    pub malformed: Vec<String>,
    pub host: HostNames,
    pub hostname_read: bool,
    pub sudoers: FileState<Policy>,
    pub key_files: Vec<KeysFile>,
    pub key_errors: Vec<String>,
    /// File owners are judged (the tree's `/` is root's, as on a real host or image).
    pub owners_judged: bool,
    pub logins: LoginFacts,
    /// Account index by name (the first entry of a name, as getpwnam returns it).
    by_name: BTreeMap<String, usize>,
}

impl Facts {
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.by_name.get(name).and_then(|&i| self.accounts.get(i))
    }
}

fn read_text(root: &HostRoot, path: &str) -> FileState<String> {
    match root.read_to_string(path) {
        Ok(text) => FileState::Read(text),
        Err(e) if e.is_not_found() => FileState::Absent,
        Err(e) => FileState::Unreadable(e),
    }
}

fn parse_file<T>(
    root: &HostRoot,
    path: &str,
    parse: fn(&str) -> Parsed<T>,
    malformed: &mut Vec<String>,
) -> (FileState<()>, Vec<T>) {
    match read_text(root, path) {
        FileState::Read(text) => {
            let parsed = parse(&text);
            note_problems(path, &parsed.problems, malformed);
            (FileState::Read(()), parsed.entries)
        }
        FileState::Absent => (FileState::Absent, Vec::new()),
        FileState::Unreadable(e) => (FileState::Unreadable(e), Vec::new()),
    }
}

fn note_problems(path: &str, problems: &[LineProblem], malformed: &mut Vec<String>) {
    malformed.extend(
        problems
            .iter()
            .map(|p| format!("{path}:{}: {}", p.line, p.message)),
    );
}

/// Reads and joins everything.
pub fn gather(root: &HostRoot, now: DateTime<Utc>) -> Facts {
    let today = now.timestamp().div_euclid(86_400);
    let mut malformed = Vec::new();
    let (passwd, entries) = parse_file(root, PASSWD_PATH, parse_passwd, &mut malformed);
    // Lines but no account at all (every host has root): junk, not a host without accounts.
    let passwd = if passwd.is_read() && entries.is_empty() && !malformed.is_empty() {
        FileState::Unreadable(HostError::Io {
            path: PASSWD_PATH.into(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "not a passwd file ({} unreadable lines, no account)",
                    malformed.len()
                ),
            ),
        })
    } else {
        passwd
    };
    let (shadow, shadow_entries) = parse_file(root, SHADOW_PATH, parse_shadow, &mut malformed);
    let (group, groups) = parse_file(root, GROUP_PATH, parse_group, &mut malformed);
    let (gshadow, gshadow_entries) = parse_file(root, GSHADOW_PATH, parse_gshadow, &mut malformed);
    let (login_defs_state, defs) =
        parse_file(root, LOGIN_DEFS_PATH, parse_login_defs, &mut malformed);
    let login_defs = defs.into_iter().next().unwrap_or_default();
    let shells = read_text(root, SHELLS_PATH).read().map(|t| parse_shells(t));
    let (host, hostname_read) = match read_text(root, HOSTNAME_PATH) {
        FileState::Read(text) => {
            let name = text.lines().next().unwrap_or_default().trim().to_string();
            (
                HostNames {
                    name: (!name.is_empty()).then_some(name),
                },
                true,
            )
        }
        _ => (HostNames::default(), false),
    };

    // Indexes so that joining stays linear on hosts with many accounts and big groups.
    let mut shadow_by_name: BTreeMap<&str, &ShadowEntry> = BTreeMap::new();
    for s in &shadow_entries {
        // glibc returns the first entry of a name.
        shadow_by_name.entry(s.name.as_str()).or_insert(s);
    }
    let mut member_of: BTreeMap<&str, Vec<&GroupEntry>> = BTreeMap::new();
    for g in &groups {
        for m in &g.members {
            member_of.entry(m.as_str()).or_default().push(g);
        }
    }
    let mut group_by_gid: BTreeMap<u32, &GroupEntry> = BTreeMap::new();
    for g in &groups {
        group_by_gid.entry(g.gid).or_insert(g);
    }
    let index = GroupIndex {
        member_of: &member_of,
        by_gid: &group_by_gid,
    };
    let mut accounts: Vec<Account> = entries
        .into_iter()
        .map(|entry| {
            let shadow_entry = shadow_by_name.get(entry.name.as_str()).copied();
            join_account(
                entry,
                &shadow,
                shadow_entry,
                &index,
                shells.as_deref(),
                &login_defs,
                today,
            )
        })
        .collect();

    let owners_judged = root.is_live() || root.metadata("/").is_ok_and(|m| m.uid() == 0);
    let (key_files, key_errors) = gather_keys(root, &mut accounts, &groups, owners_judged);
    let logins = gather_logins(root, &mut accounts);

    let sudoers = match sudoers::read_policy(root, &host) {
        Ok(Some(policy)) => FileState::Read(policy),
        Ok(None) => FileState::Absent,
        Err(e) => FileState::Unreadable(e),
    };

    let mut by_name = BTreeMap::new();
    for (index, account) in accounts.iter().enumerate() {
        by_name.entry(account.name().to_string()).or_insert(index);
    }
    tracing::debug!(
        accounts = accounts.len(),
        key_files = key_files.len(),
        login_sources = logins.sources.len(),
        malformed_lines = malformed.len(),
        sudoers = sudoers.is_read(),
        "accounts facts gathered"
    );
    Facts {
        passwd,
        shadow,
        group,
        gshadow,
        shells,
        login_defs,
        login_defs_read: login_defs_state.is_read(),
        accounts,
        groups,
        gshadow_entries,
        malformed,
        host,
        hostname_read,
        sudoers,
        key_files,
        key_errors,
        owners_judged,
        logins,
        by_name,
    }
}

/// Group lookups by member name and by gid.
struct GroupIndex<'a> {
    member_of: &'a BTreeMap<&'a str, Vec<&'a GroupEntry>>,
    by_gid: &'a BTreeMap<u32, &'a GroupEntry>,
}

fn join_account(
    entry: PasswdEntry,
    shadow_state: &FileState<()>,
    shadow_entry: Option<&ShadowEntry>,
    groups: &GroupIndex<'_>,
    shells: Option<&[String]>,
    defs: &LoginDefs,
    today: i64,
) -> Account {
    // pam_unix looks in shadow only for `x` (and the old `##name` adjunct form).
    let shadowed = entry.password == "x" || entry.password.starts_with("##");
    let shadow = if shadowed {
        shadow_entry.cloned()
    } else {
        None
    };
    let password = if shadowed {
        match (shadow_state, &shadow) {
            (FileState::Unreadable(_), _) => PasswordState::Unknown,
            (_, None) => PasswordState::Missing,
            (_, Some(s)) => match classify_hash(&s.hash) {
                HashClass::Empty => PasswordState::Empty { in_passwd: false },
                HashClass::Usable(a) => PasswordState::Usable(a),
                HashClass::Locked(k) => PasswordState::Locked(k),
            },
        }
    } else {
        match classify_hash(&entry.password) {
            HashClass::Empty => PasswordState::Empty { in_passwd: true },
            HashClass::Usable(a) => PasswordState::InPasswd(a),
            HashClass::Locked(k) => PasswordState::Locked(k),
        }
    };
    let primary_group = groups.by_gid.get(&entry.gid).map(|g| g.name.clone());
    let supplementary: Vec<&GroupEntry> = groups
        .member_of
        .get(entry.name.as_str())
        .cloned()
        .unwrap_or_default();
    let groups_names: Vec<String> = supplementary.iter().map(|g| g.name.clone()).collect();
    let mut all_groups: Vec<String> = primary_group.iter().cloned().collect();
    all_groups.extend(groups_names.iter().cloned());
    let mut gids = vec![entry.gid];
    gids.extend(supplementary.iter().map(|g| g.gid));
    let shell = classify_shell(&entry.shell, shells);
    let human = entry.uid >= defs.uid_min && entry.uid <= defs.uid_max;
    let expired = shadow.as_ref().and_then(|s| expiry(s, today));
    Account {
        entry,
        shadow,
        password,
        primary_group,
        groups: groups_names,
        all_groups,
        gids,
        shell,
        human,
        expired,
        keys: 0,
        key_files: Vec::new(),
        last_login: None,
        lastlog_shared: false,
    }
}

/// pam_unix's account checks: the account expiry date, and a password expired for longer
/// than its inactivity grace period.
fn expiry(s: &ShadowEntry, today: i64) -> Option<String> {
    if let Some(expire) = s.expire
        && today >= expire
    {
        return Some(format!("account expired on {}", super::judge::date(expire)));
    }
    if let (Some(last), Some(max), Some(inactive)) = (s.last_change, s.max_days, s.inactive_days)
        && last > 0
        && today - last > max.saturating_add(inactive)
    {
        return Some(format!(
            "password expired on {} and the {inactive}-day grace period is over",
            super::judge::date(last + max)
        ));
    }
    None
}

/// gid → uid of the only account in that group, for the user-private-group rule.
fn private_groups(accounts: &[Account], groups: &[GroupEntry]) -> BTreeMap<u32, u32> {
    let mut members: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let mut uid_of: BTreeMap<&str, u32> = BTreeMap::new();
    for account in accounts {
        members
            .entry(account.entry.gid)
            .or_default()
            .insert(account.entry.uid);
        uid_of.entry(account.name()).or_insert(account.entry.uid);
    }
    for group in groups {
        for name in &group.members {
            if let Some(uid) = uid_of.get(name.as_str()) {
                members.entry(group.gid).or_default().insert(*uid);
            }
        }
    }
    members
        .into_iter()
        .filter_map(
            |(gid, uids)| match uids.into_iter().collect::<Vec<_>>()[..] {
                [uid] => Some((gid, uid)),
                _ => None,
            },
        )
        .collect()
}

fn gather_keys(
    root: &HostRoot,
    accounts: &mut [Account],
    groups: &[GroupEntry],
    owners_judged: bool,
) -> (Vec<KeysFile>, Vec<String>) {
    let private = private_groups(accounts, groups);
    let names: BTreeMap<u32, String> = groups.iter().map(|g| (g.gid, g.name.clone())).collect();
    let mut files: Vec<KeysFile> = Vec::new();
    let mut errors = Vec::new();
    let mut seen_errors = BTreeSet::new();
    for account in accounts.iter_mut() {
        if account.entry.home.is_empty() || !account.entry.home.starts_with('/') {
            continue;
        }
        let home = match root.canonical(&account.entry.home) {
            Ok(h) => h,
            Err(e) => {
                if seen_errors.insert(e.to_string()) {
                    errors.push(e.to_string());
                }
                continue;
            }
        };
        let owner = Owner {
            name: &account.entry.name,
            uid: account.entry.uid,
            home: &home,
            judge_owners: owners_judged,
        };
        let (found, errs) = authorized_keys::read_key_files(root, &owner, &private, &names);
        for e in errs {
            if seen_errors.insert(e.to_string()) {
                errors.push(e.to_string());
            }
        }
        for file in found {
            account.keys += file.keys.len();
            account.key_files.push(file.path.clone());
            match files.iter_mut().find(|f| f.file.path == file.path) {
                Some(existing) => {
                    existing.accounts.push(account.entry.name.clone());
                    for reason in file.unsafe_reasons {
                        if !existing.file.unsafe_reasons.contains(&reason) {
                            existing.file.unsafe_reasons.push(reason);
                        }
                    }
                }
                None => files.push(KeysFile {
                    file,
                    accounts: vec![account.entry.name.clone()],
                }),
            }
        }
    }
    (files, errors)
}

fn gather_logins(root: &HostRoot, accounts: &mut [Account]) -> LoginFacts {
    let mut facts = LoginFacts::default();
    let mut candidates: Vec<Vec<Login>> = vec![Vec::new(); accounts.len()];

    let mut uid_count: BTreeMap<u32, usize> = BTreeMap::new();
    for account in accounts.iter() {
        *uid_count.entry(account.entry.uid).or_default() += 1;
    }
    if root.exists(logins::LASTLOG_PATH) {
        let mut failed = false;
        for (index, account) in accounts.iter_mut().enumerate() {
            if uid_count.get(&account.entry.uid).copied().unwrap_or(0) > 1 {
                account.lastlog_shared = true;
                continue;
            }
            match logins::read_lastlog(root, logins::LASTLOG_PATH, account.entry.uid) {
                Ok(Some(login)) => candidates[index].push(login),
                Ok(None) => {}
                Err(e) => {
                    facts.errors.push(e.to_string());
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            facts.sources.push(logins::LASTLOG_PATH.to_string());
        }
    }

    let mut by_name: Vec<BTreeMap<String, Login>> = Vec::new();
    for path in logins::WTMP_PATHS {
        match logins::read_wtmp(root, path, logins::WTMP_READ_LIMIT) {
            Ok(scan) => {
                facts.sources.push((*path).to_string());
                if scan.truncated {
                    facts.notes.push(format!(
                        "{path}: only the newest {} MiB were read",
                        logins::WTMP_READ_LIMIT / (1024 * 1024)
                    ));
                }
                if scan.junk_records > 0 {
                    facts.notes.push(format!(
                        "{path}: {} records of no known type skipped",
                        scan.junk_records
                    ));
                }
                by_name.push(scan.logins);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => facts.errors.push(e.to_string()),
        }
    }
    for (path, read) in [
        (
            logins::LASTLOG2_PATH,
            logins::read_lastlog2 as fn(&HostRoot, &str) -> _,
        ),
        (logins::WTMPDB_PATH, logins::read_wtmpdb),
    ] {
        match read(root, path) {
            Ok(Some(map)) => {
                facts.sources.push(path.to_string());
                by_name.push(map);
            }
            Ok(None) => {}
            Err(e) => facts.errors.push(e.to_string()),
        }
    }

    for (index, account) in accounts.iter_mut().enumerate() {
        for map in &by_name {
            if let Some(login) = map.get(account.name()) {
                candidates[index].push(login.clone());
            }
        }
        account.last_login = candidates[index]
            .drain(..)
            .max_by(|a, b| a.time.cmp(&b.time).then_with(|| b.source.cmp(&a.source)));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shadow(
        last: Option<i64>,
        max: Option<i64>,
        inactive: Option<i64>,
        expire: Option<i64>,
    ) -> ShadowEntry {
        ShadowEntry {
            name: "a".into(),
            hash: "!".into(),
            last_change: last,
            min_days: None,
            max_days: max,
            warn_days: None,
            inactive_days: inactive,
            expire,
            line: 1,
        }
    }

    #[test]
    fn expiry_follows_pam_unix() {
        let today = 20605;
        assert_eq!(
            expiry(&shadow(Some(20000), Some(99999), None, None), today),
            None
        );
        // The expiry day itself is already expired; 0 (1970-01-01) is expired too.
        assert!(expiry(&shadow(None, None, None, Some(20605)), today).is_some());
        assert!(expiry(&shadow(None, None, None, Some(0)), today).is_some());
        assert_eq!(expiry(&shadow(None, None, None, Some(20606)), today), None);
        // Password expired (max 90) and the 30-day grace period is over.
        let locked = expiry(&shadow(Some(20400), Some(90), Some(30), None), today).unwrap();
        assert_eq!(
            locked,
            "password expired on 2026-02-06 and the 30-day grace period is over"
        );
        assert_eq!(
            expiry(&shadow(Some(20500), Some(90), Some(30), None), today),
            None
        );
        // Without an inactivity period an expired password only forces a change.
        assert_eq!(
            expiry(&shadow(Some(20000), Some(90), None, None), today),
            None
        );
        // "Must change at next login" is not a date.
        assert_eq!(
            expiry(&shadow(Some(0), Some(90), Some(0), None), today),
            None
        );
    }
}
