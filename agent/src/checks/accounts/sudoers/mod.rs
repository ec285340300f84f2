//! The sudo policy: `/etc/sudoers` with its includes read through the host root, aliases
//! resolved, and the questions the accounts check asks of it — who may run what without
//! authenticating, and who holds `ALL` as root — answered with sudo's matching rules (the last
//! matching list element decides; `!` negates).

pub mod parse;

use std::collections::BTreeMap;

use crate::hostroot::{HostError, HostRoot};
pub use parse::{AliasKind, Binding, Entry, Item, Member, Runas, Unparsed, parse_sudoers};

pub const SUDOERS_PATH: &str = "/etc/sudoers";

/// sudo's own limit on nested includes.
const MAX_INCLUDE_DEPTH: usize = 128;
/// Alias nesting followed before giving up (sudo rejects alias cycles outright).
const MAX_ALIAS_DEPTH: usize = 64;

/// Something found at a place in a sudoers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub file: String,
    pub line: usize,
    pub value: T,
}

impl<T> Sourced<T> {
    pub fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The whole policy in the order sudo reads it.
#[derive(Debug, Default)]
pub struct Policy {
    /// Files read, in order.
    pub files: Vec<String>,
    /// Every entry except includes, which are replaced by what they include.
    pub entries: Vec<Sourced<Entry>>,
    /// Lines sudo would reject.
    pub unparsed: Vec<Sourced<Unparsed>>,
    /// Includes that lead nowhere (missing file, loop, too deep).
    pub problems: Vec<String>,
    /// Files that exist but could not be read: the policy is incomplete.
    pub errors: Vec<HostError>,
    aliases: BTreeMap<(AliasKind, String), Vec<Member>>,
}

/// The names this host answers to in sudoers host lists.
#[derive(Debug, Clone, Default)]
pub struct HostNames {
    /// From `/etc/hostname`; `None` when unknown, and then every host list may match.
    pub name: Option<String>,
}

impl HostNames {
    pub fn short(&self) -> Option<&str> {
        self.name
            .as_deref()
            .map(|n| n.split('.').next().unwrap_or(n))
    }
}

/// Whether a list matches, with "cannot tell from the files" kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Yes,
    No,
    /// Netgroups, non-Unix groups, IP networks: decided at run time by other sources.
    Unknown,
}

impl Match {
    pub fn as_str(self) -> &'static str {
        match self {
            Match::Yes => "yes",
            Match::No => "no",
            Match::Unknown => "unknown",
        }
    }

    /// Yes or maybe: enough to count a grant.
    pub fn possible(self) -> bool {
        self != Match::No
    }
}

/// sudo's list verdict: a matching element allows (or denies, when negated); elements that
/// do not match leave the decision to earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    Deny,
    Unspecified,
    Unknown,
}

/// The account facts user lists are matched against.
#[derive(Debug, Clone)]
pub struct AccountRef<'a> {
    pub name: &'a str,
    pub uid: u32,
    /// Primary and supplementary gids.
    pub gids: &'a [u32],
    /// Primary and supplementary group names.
    pub groups: &'a [String],
}

/// A rule that runs commands without authentication.
#[derive(Debug, Clone)]
pub struct NoAuthRule {
    pub place: String,
    pub users: Vec<Member>,
    /// The users, aliases expanded (`%ops`, `!bob`, `+netgroup`).
    pub who: Vec<String>,
    pub hosts: Vec<String>,
    pub host_match: Match,
    pub runas: String,
    pub commands: Vec<String>,
    pub grants_all: bool,
}

/// A `Defaults` entry that leaves `authenticate` off for its scope.
#[derive(Debug, Clone)]
pub struct AuthenticateOff {
    pub place: String,
    /// `global`, `user`, `host`, `runas` or `command`.
    pub scope: &'static str,
    /// What the binding names, aliases expanded (empty for global).
    pub applies_to: Vec<String>,
    /// The users it covers (for user bindings), for matching accounts.
    pub users: Option<Vec<Member>>,
}

/// A rule that grants every command as root.
#[derive(Debug, Clone)]
pub struct AllAsRoot {
    pub place: String,
    pub users: Vec<Member>,
    pub who: Vec<String>,
    pub host_match: Match,
    pub nopasswd: bool,
}

/// Reads `/etc/sudoers` and everything it includes. `Ok(None)`: there is no sudoers file
/// (sudo is not installed); `Err`: it exists but cannot be read.
pub fn read_policy(root: &HostRoot, host: &HostNames) -> Result<Option<Policy>, HostError> {
    let text = match root.read_to_string(SUDOERS_PATH) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut policy = Policy::default();
    let mut stack = Vec::new();
    policy.load_text(root, SUDOERS_PATH, &text, 0, &mut stack, host);
    policy.index_aliases();
    Ok(Some(policy))
}

impl Policy {
    /// Builds a policy from one file's text (tests; includes are not followed).
    #[cfg(test)]
    pub fn from_text(file: &str, text: &str) -> Policy {
        let mut policy = Policy::default();
        policy.files.push(file.to_string());
        let parsed = parse_sudoers(text);
        for (line, entry) in parsed.entries {
            policy.entries.push(Sourced {
                file: file.to_string(),
                line,
                value: entry,
            });
        }
        for u in parsed.unparsed {
            policy.unparsed.push(Sourced {
                file: file.to_string(),
                line: u.line,
                value: u,
            });
        }
        policy.index_aliases();
        policy
    }

    fn load_file(
        &mut self,
        root: &HostRoot,
        path: &str,
        depth: usize,
        stack: &mut Vec<String>,
        host: &HostNames,
    ) {
        match root.read_to_string(path) {
            Ok(text) => self.load_text(root, path, &text, depth, stack, host),
            Err(e) if e.is_not_found() => self
                .problems
                .push(format!("{path}: included but does not exist")),
            Err(e) => self.errors.push(e),
        }
    }

    fn load_text(
        &mut self,
        root: &HostRoot,
        path: &str,
        text: &str,
        depth: usize,
        stack: &mut Vec<String>,
        host: &HostNames,
    ) {
        let identity = root.canonical(path).unwrap_or_else(|_| path.to_string());
        if stack.contains(&identity) {
            self.problems.push(format!(
                "{path}: includes itself (directly or through other files)"
            ));
            return;
        }
        stack.push(identity);
        self.files.push(path.to_string());
        let parsed = parse_sudoers(text);
        for u in parsed.unparsed {
            self.unparsed.push(Sourced {
                file: path.to_string(),
                line: u.line,
                value: u,
            });
        }
        for (line, entry) in parsed.entries {
            match entry {
                Entry::Include { path: target, dir } => {
                    if depth + 1 > MAX_INCLUDE_DEPTH {
                        self.problems
                            .push(format!("{path}:{line}: too many levels of includes"));
                        continue;
                    }
                    let Some(target) = resolve_include(path, &target, host) else {
                        self.problems.push(format!(
                            "{path}:{line}: include path uses %h but the host name is unknown"
                        ));
                        continue;
                    };
                    if dir {
                        self.load_dir(root, &target, depth + 1, stack, host);
                    } else {
                        self.load_file(root, &target, depth + 1, stack, host);
                    }
                }
                other => self.entries.push(Sourced {
                    file: path.to_string(),
                    line,
                    value: other,
                }),
            }
        }
        stack.pop();
    }

    /// `@includedir`: regular files whose names neither end in `~` nor contain `.`, in byte
    /// order; a missing directory is silently skipped, as sudo skips it.
    fn load_dir(
        &mut self,
        root: &HostRoot,
        dir: &str,
        depth: usize,
        stack: &mut Vec<String>,
        host: &HostNames,
    ) {
        let names = match root.read_dir(dir) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        for name in names {
            if name.ends_with('~') || name.contains('.') {
                continue;
            }
            let path = crate::hostroot::join(dir, &name);
            if root.metadata(&path).is_ok_and(|m| m.is_file()) {
                self.load_file(root, &path, depth, stack, host);
            }
        }
    }

    fn index_aliases(&mut self) {
        let mut duplicates = Vec::new();
        for entry in &self.entries {
            if let Entry::Alias {
                kind,
                name,
                members,
            } = &entry.value
            {
                match self.aliases.entry((*kind, name.clone())) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        duplicates.push(format!("{}: alias {name} defined twice", entry.place()));
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(members.clone());
                    }
                }
            }
        }
        self.problems.extend(duplicates);
    }

    fn alias(&self, kind: AliasKind, name: &str) -> Option<&Vec<Member>> {
        self.aliases.get(&(kind, name.to_string()))
    }

    fn verdict(
        &self,
        list: &[Member],
        kind: AliasKind,
        depth: usize,
        item_matches: &dyn Fn(&Item) -> Match,
    ) -> Verdict {
        for member in list.iter().rev() {
            let verdict = match &member.item {
                Item::Alias(name) => match self.alias(kind, name) {
                    Some(members) if depth < MAX_ALIAS_DEPTH => {
                        self.verdict(members, kind, depth + 1, item_matches)
                    }
                    // A host alias sudo could not define (a line it rejected) may well name
                    // this host: do not let it hide a rule.
                    None if kind == AliasKind::Host => Verdict::Unknown,
                    _ => Verdict::Unspecified,
                },
                item => match item_matches(item) {
                    Match::Yes => Verdict::Allow,
                    Match::No => Verdict::Unspecified,
                    Match::Unknown => Verdict::Unknown,
                },
            };
            match verdict {
                Verdict::Unspecified => continue,
                Verdict::Unknown => return Verdict::Unknown,
                Verdict::Allow if member.negated => return Verdict::Deny,
                Verdict::Deny if member.negated => return Verdict::Allow,
                decided => return decided,
            }
        }
        Verdict::Unspecified
    }

    fn list_match(
        &self,
        list: &[Member],
        kind: AliasKind,
        item_matches: &dyn Fn(&Item) -> Match,
    ) -> Match {
        match self.verdict(list, kind, 0, item_matches) {
            Verdict::Allow => Match::Yes,
            Verdict::Deny | Verdict::Unspecified => Match::No,
            Verdict::Unknown => Match::Unknown,
        }
    }

    /// Whether a user list (of `kind` User or Runas) covers the account.
    pub fn users_match(&self, list: &[Member], kind: AliasKind, account: &AccountRef<'_>) -> Match {
        self.list_match(list, kind, &|item| user_item_matches(item, account))
    }

    /// Whether a host list covers this host.
    pub fn hosts_match(&self, list: &[Member], host: &HostNames) -> Match {
        self.list_match(list, AliasKind::Host, &|item| host_item_matches(item, host))
    }

    /// A list for people: aliases expanded, negations kept as `!`.
    pub fn expand_names(&self, list: &[Member], kind: AliasKind) -> Vec<String> {
        let mut out = Vec::new();
        self.expand_into(list, kind, false, 0, &mut out);
        out
    }

    fn expand_into(
        &self,
        list: &[Member],
        kind: AliasKind,
        negated: bool,
        depth: usize,
        out: &mut Vec<String>,
    ) {
        for member in list {
            let negated = negated != member.negated;
            let bang = if negated { "!" } else { "" };
            match &member.item {
                Item::Alias(name) => match self.alias(kind, name) {
                    Some(members) if depth < MAX_ALIAS_DEPTH => {
                        self.expand_into(members, kind, negated, depth + 1, out)
                    }
                    Some(_) => out.push(format!("{bang}{name} (alias nested too deeply)")),
                    None => out.push(format!("{bang}{name} (undefined alias)")),
                },
                Item::All => out.push(format!("{bang}ALL")),
                Item::Name(n) | Item::Command(n) => out.push(format!("{bang}{n}")),
            }
        }
    }

    /// The commands a command item stands for, with their effective negation.
    pub fn expand_cmnd(&self, member: &Member) -> Vec<(bool, String)> {
        let mut expanded = Vec::new();
        self.expand_into(
            std::slice::from_ref(member),
            AliasKind::Cmnd,
            false,
            0,
            &mut expanded,
        );
        expanded
            .into_iter()
            .map(|s| match s.strip_prefix('!') {
                Some(rest) => (true, rest.to_string()),
                None => (false, s),
            })
            .collect()
    }

    /// True when a run-as spec lets the command run as root (no spec: sudo's default target
    /// user, root).
    pub fn runs_as_root(&self, runas: Option<&Runas>) -> bool {
        let Some(runas) = runas else {
            return true;
        };
        let Some(users) = &runas.users else {
            return false;
        };
        let root_account = AccountRef {
            name: "root",
            uid: 0,
            gids: &[0],
            groups: &[],
        };
        self.users_match(users, AliasKind::Runas, &root_account)
            .possible()
    }

    /// `ALL:ALL`, `root`, `(invoking user)`; `root (default)` with no spec.
    pub fn runas_display(&self, runas: Option<&Runas>) -> String {
        let Some(runas) = runas else {
            return "root (default)".into();
        };
        let users = match &runas.users {
            Some(list) if list.is_empty() => "(invoking user)".to_string(),
            Some(list) => self.expand_names(list, AliasKind::Runas).join(","),
            None => "(invoking user)".to_string(),
        };
        match &runas.groups {
            Some(groups) => format!(
                "{users}:{}",
                self.expand_names(groups, AliasKind::Runas).join(",")
            ),
            None => users,
        }
    }

    /// Every rule section with at least one `NOPASSWD` command that is granted (not negated).
    pub fn nopasswd_rules(&self, host: &HostNames) -> Vec<NoAuthRule> {
        let mut rules = Vec::new();
        for entry in &self.entries {
            let Entry::Rule(rule) = &entry.value else {
                continue;
            };
            let sections = rule.privileges.len();
            for (index, privilege) in rule.privileges.iter().enumerate() {
                let mut commands = Vec::new();
                let mut runas = Vec::new();
                let mut grants_all = false;
                for spec in privilege.cmnds.iter().filter(|c| c.nopasswd) {
                    for (negated, command) in self.expand_cmnd(&spec.cmnd) {
                        if negated {
                            continue;
                        }
                        grants_all |= command == "ALL";
                        commands.push(command);
                        let shown = self.runas_display(spec.runas.as_ref());
                        if !runas.contains(&shown) {
                            runas.push(shown);
                        }
                    }
                }
                if commands.is_empty() {
                    continue;
                }
                let place = if sections > 1 {
                    format!("{} (section {})", entry.place(), index + 1)
                } else {
                    entry.place()
                };
                rules.push(NoAuthRule {
                    place,
                    users: rule.users.clone(),
                    who: self.expand_names(&rule.users, AliasKind::User),
                    hosts: self.expand_names(&privilege.hosts, AliasKind::Host),
                    host_match: self.hosts_match(&privilege.hosts, host),
                    runas: runas.join("; "),
                    commands,
                    grants_all,
                });
            }
        }
        rules
    }

    /// `Defaults` scopes whose last word on `authenticate` is `!authenticate`.
    pub fn authenticate_off(&self) -> Vec<AuthenticateOff> {
        let mut last: BTreeMap<String, (bool, usize)> = BTreeMap::new();
        for (index, entry) in self.entries.iter().enumerate() {
            let Entry::Defaults { binding, settings } = &entry.value else {
                continue;
            };
            for setting in settings.iter().filter(|s| s.name == "authenticate") {
                let key = format!("{binding:?}");
                last.insert(key, (!setting.negated, index));
            }
        }
        let mut off: Vec<usize> = last
            .into_values()
            .filter(|(on, _)| !on)
            .map(|(_, index)| index)
            .collect();
        off.sort_unstable();
        off.into_iter()
            .filter_map(|index| self.entries.get(index))
            .filter_map(|entry| {
                let Entry::Defaults { binding, .. } = &entry.value else {
                    return None;
                };
                let (scope, applies_to, users) = match binding {
                    Binding::Global => ("global", Vec::new(), None),
                    Binding::User(l) => (
                        "user",
                        self.expand_names(l, AliasKind::User),
                        Some(l.clone()),
                    ),
                    Binding::Host(l) => ("host", self.expand_names(l, AliasKind::Host), None),
                    Binding::Runas(l) => ("runas", self.expand_names(l, AliasKind::Runas), None),
                    Binding::Cmnd(l) => ("command", self.expand_names(l, AliasKind::Cmnd), None),
                };
                Some(AuthenticateOff {
                    place: entry.place(),
                    scope,
                    applies_to,
                    users,
                })
            })
            .collect()
    }

    /// Rule sections that grant `ALL` commands with root among the run-as targets.
    pub fn all_as_root(&self, host: &HostNames) -> Vec<AllAsRoot> {
        let mut grants = Vec::new();
        for entry in &self.entries {
            let Entry::Rule(rule) = &entry.value else {
                continue;
            };
            for privilege in &rule.privileges {
                let mut all = false;
                let mut nopasswd = false;
                for spec in &privilege.cmnds {
                    let grants_all = self
                        .expand_cmnd(&spec.cmnd)
                        .iter()
                        .any(|(negated, c)| !negated && c == "ALL");
                    if grants_all && self.runs_as_root(spec.runas.as_ref()) {
                        all = true;
                        nopasswd |= spec.nopasswd;
                    }
                }
                if all {
                    grants.push(AllAsRoot {
                        place: entry.place(),
                        users: rule.users.clone(),
                        who: self.expand_names(&rule.users, AliasKind::User),
                        host_match: self.hosts_match(&privilege.hosts, host),
                        nopasswd,
                    });
                }
            }
        }
        grants
    }
}

/// `@include` path → host path: `%h` becomes the short host name, and a relative path is
/// relative to the directory of the including file.
fn resolve_include(including: &str, target: &str, host: &HostNames) -> Option<String> {
    let mut path = String::new();
    let mut rest = target;
    while let Some(i) = rest.find("%h") {
        path.push_str(&rest[..i]);
        path.push_str(host.short()?);
        rest = &rest[i + 2..];
    }
    path.push_str(rest);
    if path.starts_with('/') {
        return Some(path);
    }
    let dir = match including.rfind('/') {
        Some(i) => &including[..=i],
        None => "/",
    };
    Some(format!("{dir}{path}"))
}

fn user_item_matches(item: &Item, account: &AccountRef<'_>) -> Match {
    let Item::Name(text) = item else {
        return if *item == Item::All {
            Match::Yes
        } else {
            Match::No
        };
    };
    let yes = |b: bool| if b { Match::Yes } else { Match::No };
    if let Some(gid) = text.strip_prefix("%#") {
        return match gid.parse::<i64>() {
            Ok(gid) => yes(account.gids.iter().any(|&g| i64::from(g) == gid)),
            Err(_) => Match::No,
        };
    }
    if text.starts_with("%:") || text.starts_with('+') {
        return Match::Unknown;
    }
    if let Some(group) = text.strip_prefix('%') {
        return yes(account.groups.iter().any(|g| g == group));
    }
    if let Some(uid) = text.strip_prefix('#') {
        return match uid.parse::<i64>() {
            Ok(uid) => yes(i64::from(account.uid) == uid),
            Err(_) => Match::No,
        };
    }
    yes(text == account.name)
}

fn host_item_matches(item: &Item, host: &HostNames) -> Match {
    let text = match item {
        Item::All => return Match::Yes,
        Item::Name(text) => text,
        _ => return Match::No,
    };
    if text.starts_with('+')
        || text.contains('/')
        || text.contains(':')
        || text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Match::Unknown;
    }
    let Some(name) = host.name.as_deref() else {
        return Match::Unknown;
    };
    let short = host.short().unwrap_or(name);
    let pattern = text.to_ascii_lowercase();
    let candidates = [name.to_ascii_lowercase(), short.to_ascii_lowercase()];
    if candidates.iter().any(|c| glob_match(&pattern, c)) {
        return Match::Yes;
    }
    // A fully qualified rule for a host whose file holds only the short name: the domain
    // comes from DNS at run time.
    if pattern.contains('.') && !name.contains('.') {
        let first = pattern.split('.').next().unwrap_or_default();
        if glob_match(first, &candidates[1]) {
            return Match::Unknown;
        }
    }
    Match::No
}

/// fnmatch with `*` and `?` (character classes are compared literally).
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account<'a>(
        name: &'a str,
        uid: u32,
        gids: &'a [u32],
        groups: &'a [String],
    ) -> AccountRef<'a> {
        AccountRef {
            name,
            uid,
            gids,
            groups,
        }
    }

    fn host(name: &str) -> HostNames {
        HostNames {
            name: Some(name.into()),
        }
    }

    #[test]
    fn user_lists_follow_sudo_matching() {
        let policy = Policy::from_text(
            "/etc/sudoers",
            "User_Alias ADMINS = alice, %wheel, !bob\n\
             User_Alias NESTED = ADMINS, carol\n\
             User_Alias LOOP = LOOP2\nUser_Alias LOOP2 = LOOP\n",
        );
        let wheel = ["wheel".to_string()];
        let none: [String; 0] = [];
        let alice = account("alice", 1000, &[1000], &none);
        let bob = account("bob", 1001, &[10], &wheel);
        let dave = account("dave", 1003, &[10], &wheel);
        let erin = account("erin", 1004, &[1004], &none);
        let list = |text: &str| match parse_sudoers(&format!("{text} ALL = ALL\n"))
            .entries
            .into_iter()
            .next()
        {
            Some((_, Entry::Rule(r))) => r.users,
            other => panic!("{other:?}"),
        };
        let m = |l: &str, a: &AccountRef<'_>| policy.users_match(&list(l), AliasKind::User, a);
        assert_eq!(m("ADMINS", &alice), Match::Yes);
        assert_eq!(m("ADMINS", &dave), Match::Yes, "member of %wheel");
        assert_eq!(m("ADMINS", &bob), Match::No, "!bob comes last and wins");
        assert_eq!(m("ADMINS", &erin), Match::No);
        assert_eq!(m("NESTED", &bob), Match::No);
        assert_eq!(m("!ADMINS", &erin), Match::No);
        assert_eq!(m("ALL, !ADMINS", &erin), Match::Yes);
        assert_eq!(m("ALL, !ADMINS", &alice), Match::No);
        assert_eq!(
            m("ALL, !ADMINS", &bob),
            Match::Yes,
            "bob is denied inside ADMINS"
        );
        assert_eq!(m("#1000", &alice), Match::Yes);
        assert_eq!(m("%#10", &dave), Match::Yes);
        assert_eq!(m("+admins", &alice), Match::Unknown);
        assert_eq!(m("%:\"Domain Admins\"", &alice), Match::Unknown);
        assert_eq!(m("UNDEFINED", &alice), Match::No);
        assert_eq!(m("LOOP", &alice), Match::No, "alias loops end");
        assert_eq!(
            policy.expand_names(&list("NESTED, !+ops"), AliasKind::User),
            ["alice", "%wheel", "!bob", "carol", "!+ops"]
        );
        assert_eq!(
            policy.expand_names(&list("!ADMINS, GHOST"), AliasKind::User),
            ["!alice", "!%wheel", "bob", "GHOST (undefined alias)"]
        );
    }

    #[test]
    fn host_lists() {
        let policy = Policy::from_text("/etc/sudoers", "Host_Alias WEB = web*, !web9\n");
        let hosts = |text: &str| match parse_sudoers(&format!("alice {text} = ALL\n"))
            .entries
            .into_iter()
            .next()
        {
            Some((_, Entry::Rule(r))) => r.privileges[0].hosts.clone(),
            other => panic!("{other:?}"),
        };
        let web1 = host("web1");
        assert_eq!(policy.hosts_match(&hosts("ALL"), &web1), Match::Yes);
        assert_eq!(policy.hosts_match(&hosts("WEB"), &web1), Match::Yes);
        assert_eq!(policy.hosts_match(&hosts("WEB"), &host("web9")), Match::No);
        assert_eq!(policy.hosts_match(&hosts("db1"), &web1), Match::No);
        assert_eq!(
            policy.hosts_match(&hosts("Web1"), &web1),
            Match::Yes,
            "case-insensitive"
        );
        // An upper-case name is an alias to sudo, never a host name; an undefined one may be
        // an alias on a line sudo rejected, so it cannot rule the host out.
        assert_eq!(
            policy.hosts_match(&hosts("WEB1"), &web1),
            Match::Unknown,
            "undefined alias"
        );
        assert_eq!(policy.hosts_match(&hosts("fe80::1"), &web1), Match::Unknown);
        assert_eq!(
            policy.hosts_match(&hosts("web1.example.com"), &web1),
            Match::Unknown
        );
        assert_eq!(
            policy.hosts_match(&hosts("web1.example.com"), &host("web1.example.com")),
            Match::Yes
        );
        assert_eq!(
            policy.hosts_match(&hosts("web1"), &host("web1.example.com")),
            Match::Yes
        );
        assert_eq!(
            policy.hosts_match(&hosts("192.0.2.0/24"), &web1),
            Match::Unknown
        );
        assert_eq!(
            policy.hosts_match(&hosts("db1"), &HostNames::default()),
            Match::Unknown
        );
        assert!(glob_match("w?b*", "web-01"));
        assert!(!glob_match("web", "web1"));
    }

    #[test]
    fn nopasswd_rules_with_aliases_negations_and_hosts() {
        let policy = Policy::from_text(
            "/etc/sudoers.d/ops",
            "User_Alias WEBOPS = bob, %webadmins\n\
             Cmnd_Alias SERVICES = /usr/bin/systemctl restart nginx, /usr/bin/systemctl reload nginx\n\
             Cmnd_Alias ALLBUTSU = ALL, !/usr/bin/su\n\
             WEBOPS ALL = (root) NOPASSWD: SERVICES\n\
             deploy ALL=(ALL) NOPASSWD: ALL\n\
             carol ALL = NOPASSWD: !/bin/sh, PASSWD: /bin/ls\n\
             dave db1 = NOPASSWD: ALLBUTSU\n\
             erin ALL = /bin/ls : ALL = NOPASSWD: /bin/cat\n",
        );
        let rules = policy.nopasswd_rules(&host("web1"));
        type Row = (String, Vec<String>, Vec<String>, bool, Match);
        let summary: Vec<Row> = rules
            .iter()
            .map(|r| {
                (
                    r.place.clone(),
                    r.who.clone(),
                    r.commands.clone(),
                    r.grants_all,
                    r.host_match,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "/etc/sudoers.d/ops:4".to_string(),
                    vec!["bob".to_string(), "%webadmins".to_string()],
                    vec![
                        "/usr/bin/systemctl restart nginx".to_string(),
                        "/usr/bin/systemctl reload nginx".to_string()
                    ],
                    false,
                    Match::Yes
                ),
                (
                    "/etc/sudoers.d/ops:5".to_string(),
                    vec!["deploy".to_string()],
                    vec!["ALL".to_string()],
                    true,
                    Match::Yes
                ),
                (
                    "/etc/sudoers.d/ops:7".to_string(),
                    vec!["dave".to_string()],
                    vec!["ALL".to_string()],
                    true,
                    Match::No
                ),
                (
                    "/etc/sudoers.d/ops:8 (section 2)".to_string(),
                    vec!["erin".to_string()],
                    vec!["/bin/cat".to_string()],
                    false,
                    Match::Yes
                ),
            ]
        );
        assert_eq!(rules[0].runas, "root");
        assert_eq!(rules[1].runas, "ALL");
        assert_eq!(rules[3].runas, "root (default)");
    }

    #[test]
    fn authenticate_defaults_last_word_wins_per_scope() {
        let policy = Policy::from_text(
            "/etc/sudoers",
            "Defaults !authenticate\n\
             Defaults authenticate\n\
             Defaults:ADMINS !authenticate\n\
             User_Alias ADMINS = alice, %ops\n\
             Defaults>root !authenticate, env_reset\n\
             Defaults!/usr/bin/less !authenticate\n\
             Defaults:carol !authenticate\n\
             Defaults:carol authenticate\n",
        );
        let off: Vec<(String, &str, Vec<String>)> = policy
            .authenticate_off()
            .into_iter()
            .map(|a| (a.place, a.scope, a.applies_to))
            .collect();
        assert_eq!(
            off,
            [
                (
                    "/etc/sudoers:3".to_string(),
                    "user",
                    vec!["alice".to_string(), "%ops".to_string()]
                ),
                (
                    "/etc/sudoers:5".to_string(),
                    "runas",
                    vec!["root".to_string()]
                ),
                (
                    "/etc/sudoers:6".to_string(),
                    "command",
                    vec!["/usr/bin/less".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn all_grants_need_root_among_the_targets() {
        let policy = Policy::from_text(
            "/etc/sudoers",
            "Runas_Alias DBA = postgres\n\
             root ALL=(ALL:ALL) ALL\n\
             %sudo ALL=(ALL) ALL\n\
             alice ALL = ALL\n\
             bob ALL = (postgres) ALL\n\
             carol ALL = (DBA) ALL, (root) /bin/ls\n\
             dave ALL = (:wheel) ALL\n\
             erin ALL = (#0) NOPASSWD: ALL\n\
             frank ALL = () ALL\n",
        );
        let grants: Vec<(String, bool)> = policy
            .all_as_root(&host("web1"))
            .into_iter()
            .map(|g| (g.who.join(","), g.nopasswd))
            .collect();
        assert_eq!(
            grants,
            [
                ("root".to_string(), false),
                ("%sudo".to_string(), false),
                ("alice".to_string(), false),
                ("erin".to_string(), true)
            ]
        );
    }

    #[test]
    fn include_paths() {
        let h = host("web1.example.com");
        assert_eq!(
            resolve_include("/etc/sudoers", "sudoers.%h", &h).as_deref(),
            Some("/etc/sudoers.web1")
        );
        assert_eq!(
            resolve_include("/etc/sudoers.d/a", "b", &h).as_deref(),
            Some("/etc/sudoers.d/b")
        );
        assert_eq!(
            resolve_include("/etc/sudoers", "/x/%h/%h", &h).as_deref(),
            Some("/x/web1/web1")
        );
        assert_eq!(
            resolve_include("/etc/sudoers", "x%h", &HostNames::default()),
            None
        );
    }
}
