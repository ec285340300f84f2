//! Turns the gathered account facts into one outcome per output: who offends and why, what
//! was checked, typed values, and the host files each judgement rests on.
//!
//! Incomplete facts (an unreadable `/etc/shadow`, an unreadable included sudoers file) never
//! produce a pass: the output fails if something was found anyway, and is an error that says
//! what is missing otherwise. The one exception is `accounts.dormant`: an unreadable login
//! record can only make an account look older, so a pass still holds (the summary names the
//! source that could not be read).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vigil_shared::Subject;

use super::gather::{
    Account, Facts, FileState, GROUP_PATH, GSHADOW_PATH, LOGIN_DEFS_PATH, PASSWD_PATH,
    PasswordState, SHADOW_PATH, SHELLS_PATH,
};
use super::passwd::ShellKind;
use super::shadow::{HashClass, NO_MAX_DAYS, classify_hash};
use super::sudoers::{AccountRef, AliasKind, Match, Policy};
use super::{Outcome, Settings};

/// `YYYY-MM-DD` for a count of days since 1970-01-01.
pub fn date(days: i64) -> String {
    days.checked_mul(86_400)
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("day {days} after 1970-01-01"))
}

/// RFC 3339 for seconds since the epoch.
fn timestamp(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{secs} seconds after the epoch"))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Pass or fail when the facts are complete; otherwise fail if something was found anyway,
/// or an error naming what is missing.
fn finish(
    id: &'static str,
    offenders: Vec<Subject>,
    checked: Vec<Subject>,
    pass: String,
    fail: String,
    gaps: &[String],
) -> Outcome {
    if gaps.is_empty() {
        return Outcome::judge(id, offenders, checked, pass, fail);
    }
    let gap = gaps.join("; ");
    if offenders.is_empty() {
        let mut outcome = Outcome::error(id, &gap);
        outcome.summary =
            format!("could not check fully ({gap}); nothing found in what could be read");
        outcome.evidence.checked = checked;
        outcome
    } else {
        Outcome::judge(
            id,
            offenders,
            checked,
            pass,
            format!("{fail} (incomplete: {gap})"),
        )
    }
}

fn shadow_gap(facts: &Facts) -> Option<String> {
    facts
        .shadow
        .error()
        .map(|e| format!("{e}: password states of the accounts that defer to it are unknown"))
}

/// The passwd-level outcome every account output shares: `None` when passwd was read.
fn passwd_missing(id: &'static str, facts: &Facts) -> Option<Outcome> {
    match &facts.passwd {
        FileState::Read(()) => None,
        FileState::Absent => Some(Outcome::no_data(
            id,
            format!("no {PASSWD_PATH} under this root"),
        )),
        FileState::Unreadable(e) => Some(Outcome::error(id, e)),
    }
}

fn account_sources(facts: &Facts) -> Vec<String> {
    let mut sources = vec![PASSWD_PATH.to_string()];
    if facts.shadow.is_read() {
        sources.push(SHADOW_PATH.into());
    }
    sources
}

fn group_sources(facts: &Facts) -> Vec<String> {
    let mut sources = Vec::new();
    if facts.group.is_read() {
        sources.push(GROUP_PATH.into());
    }
    if facts.gshadow.is_read() {
        sources.push(GSHADOW_PATH.into());
    }
    if facts.login_defs_read {
        sources.push(LOGIN_DEFS_PATH.into());
    }
    sources
}

fn login_line(account: &Account, now: DateTime<Utc>) -> Option<(String, i64)> {
    account.last_login.as_ref().map(|l| {
        let days = (now.timestamp() - l.time).div_euclid(86_400);
        (timestamp(l.time), days)
    })
}

/// Every fact about an account, for inventory subjects.
fn account_subject(account: &Account, now: DateTime<Utc>) -> Subject {
    let e = &account.entry;
    let mut s = Subject::new("account", &e.name)
        .fact("uid", e.uid)
        .fact("gid", e.gid)
        .fact("home", e.home.as_str())
        .fact(
            "shell",
            if e.shell.is_empty() {
                "/bin/sh (empty field)"
            } else {
                e.shell.as_str()
            },
        )
        .fact("shell_kind", account.shell.as_str())
        .fact("interactive", account.shell == ShellKind::Interactive)
        .fact("human", account.human)
        .fact("password", account.password.as_str())
        .fact("can_log_in", account.can_log_in())
        .fact("authorized_keys", account.keys);
    if let Some(group) = &account.primary_group {
        s = s.fact("primary_group", group.as_str());
    }
    if !account.groups.is_empty() {
        s = s.fact("groups", account.groups.clone());
    }
    if let Some(algorithm) = account.password.algorithm() {
        s = s.fact("hash_algorithm", algorithm.as_str());
        if algorithm.is_weak() {
            s = s.fact("weak_hash", true);
        }
    }
    if let PasswordState::Locked(kind) = account.password {
        s = s.fact("locked_by", kind.as_str());
    }
    if let Some(shadow) = &account.shadow {
        match shadow.last_change {
            Some(0) => s = s.fact("password_changed", "must change at next login"),
            Some(d) => s = s.fact("password_changed", date(d)),
            None => s = s.fact("password_changed", "aging disabled"),
        }
        if let Some(max) = shadow.max_days {
            s = s.fact("password_max_days", max);
        }
        if let Some(expire) = shadow.expire {
            s = s.fact("account_expires", date(expire));
        }
    }
    if let Some(reason) = &account.expired {
        s = s.fact("expired", reason.as_str());
    }
    if let Some(login) = &account.last_login {
        s = s
            .fact("last_login", timestamp(login.time))
            .fact("last_login_source", login.source.as_str());
        if let Some(host) = &login.host {
            s = s.fact("last_login_from", host.as_str());
        }
    }
    if let Some((_, days)) = login_line(account, now) {
        s = s.fact("days_since_login", days);
    }
    if account.lastlog_shared {
        s = s.fact("lastlog_shared_uid", true);
    }
    s
}

/// A short subject for outputs other than the inventory.
fn brief(account: &Account) -> Subject {
    Subject::new("account", account.name())
        .fact("uid", account.entry.uid)
        .fact("password", account.password.as_str())
        .fact("shell", account.entry.shell.as_str())
}

pub fn inventory(id: &'static str, facts: &Facts, now: DateTime<Utc>) -> Outcome {
    if let Some(outcome) = passwd_missing(id, facts) {
        return outcome;
    }
    let accounts = &facts.accounts;
    let count = |f: &dyn Fn(&Account) -> bool| accounts.iter().filter(|a| f(a)).count();
    let human = count(&|a| a.human);
    let can_log_in = count(&|a| a.can_log_in());
    let with_keys = count(&|a| a.keys > 0);
    let checked: Vec<Subject> = accounts.iter().map(|a| account_subject(a, now)).collect();
    let mut gaps: Vec<String> = shadow_gap(facts).into_iter().collect();
    if let Some(e) = facts.group.error() {
        gaps.push(format!("{e}: group memberships unknown"));
    }
    let summary = format!(
        "{} ({human} for people, {} system), {can_log_in} can log in, {} with SSH keys",
        plural(accounts.len(), "account", "accounts"),
        accounts.len() - human,
        with_keys
    );
    let mut outcome = if gaps.is_empty() {
        let mut o = Outcome::pass(id, summary);
        o.evidence.checked = checked;
        o
    } else {
        let gap = gaps.join("; ");
        let mut o = Outcome::error(id, &gap);
        o.summary = format!("{summary}; incomplete: {gap}");
        o.evidence.checked = checked;
        o
    };
    outcome = outcome
        .value("accounts", accounts.len())
        .value("human_accounts", human)
        .value("system_accounts", accounts.len() - human)
        .value(
            "interactive_accounts",
            count(&|a| a.shell == ShellKind::Interactive),
        )
        .value("login_capable_accounts", can_log_in)
        .value(
            "usable_password_accounts",
            count(&|a| a.password.authenticates()),
        )
        .value(
            "locked_accounts",
            count(&|a| matches!(a.password, PasswordState::Locked(_))),
        )
        .value(
            "weak_hash_accounts",
            count(&|a| a.password.algorithm().is_some_and(|x| x.is_weak())),
        )
        .value("accounts_with_keys", with_keys)
        .value("uid_min", facts.login_defs.uid_min)
        .value("uid_max", facts.login_defs.uid_max)
        .value("malformed_lines", facts.malformed.len());
    if !facts.malformed.is_empty() {
        outcome = outcome.value("malformed", facts.malformed.clone());
    }
    let mut sources = account_sources(facts);
    sources.extend(group_sources(facts));
    if facts.shells.is_some() {
        sources.push(SHELLS_PATH.into());
    }
    sources.extend(facts.key_files.iter().map(|f| f.file.path.clone()));
    sources.extend(facts.logins.sources.iter().cloned());
    outcome.sources(sources)
}

pub fn uid0(id: &'static str, facts: &Facts) -> Outcome {
    if let Some(outcome) = passwd_missing(id, facts) {
        return outcome;
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    for account in facts.accounts.iter().filter(|a| a.entry.uid == 0) {
        let subject = brief(account).fact("passwd_line", account.entry.line);
        if account.name() == "root" {
            checked.push(subject);
        } else {
            offenders.push(subject.with_reason(format!(
                "uid 0: {} holds every right root has under another name",
                account.name()
            )));
        }
    }
    let total = checked.len() + offenders.len();
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    let pass = if checked.is_empty() {
        "no account has uid 0 (not even root)".to_string()
    } else {
        "only root has uid 0".to_string()
    };
    let fail = if checked.is_empty() {
        format!("uid 0 is held by {} instead of root", names.join(", "))
    } else {
        format!("uid 0 is shared by root and {}", names.join(", "))
    };
    Outcome::judge(id, offenders, checked, pass, fail)
        .value("uid0_accounts", total)
        .source(PASSWD_PATH)
}

pub fn empty_passwords(id: &'static str, facts: &Facts) -> Outcome {
    if let Some(outcome) = passwd_missing(id, facts) {
        return outcome;
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let (mut empty, mut missing, mut in_passwd) = (0usize, 0usize, 0usize);
    let shadow_absent = matches!(facts.shadow, FileState::Absent);
    for account in &facts.accounts {
        let reason = match account.password {
            PasswordState::Empty { in_passwd: false } => {
                empty += 1;
                Some(format!(
                    "empty password in {SHADOW_PATH}: pam_unix with nullok (Debian's default) accepts it with no password"
                ))
            }
            PasswordState::Empty { in_passwd: true } => {
                empty += 1;
                Some(format!(
                    "empty password field in {PASSWD_PATH}: shadow is not consulted and no password is asked"
                ))
            }
            PasswordState::Missing => {
                missing += 1;
                Some(if shadow_absent {
                    format!(
                        "'x' in {PASSWD_PATH} but there is no {SHADOW_PATH}: the password is undefined"
                    )
                } else {
                    format!(
                        "'x' in {PASSWD_PATH} but no entry in {SHADOW_PATH}: the password is undefined (pwck reports it)"
                    )
                })
            }
            PasswordState::InPasswd(algorithm) => {
                in_passwd += 1;
                Some(format!(
                    "password hash ({}) kept in world-readable {PASSWD_PATH}, open to offline cracking",
                    algorithm.as_str()
                ))
            }
            _ => None,
        };
        let subject = brief(account);
        match reason {
            Some(r) => offenders.push(subject.with_reason(r)),
            None => checked.push(subject),
        }
    }
    let gaps: Vec<String> = if facts
        .accounts
        .iter()
        .any(|a| a.password == PasswordState::Unknown)
    {
        shadow_gap(facts).into_iter().collect()
    } else {
        Vec::new()
    };
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    let fail = format!(
        "{} without a proper password hash: {}",
        plural(offenders.len(), "account", "accounts"),
        names.join(", ")
    );
    let pass = format!(
        "all {} have a password hash in {SHADOW_PATH} or are locked",
        plural(facts.accounts.len(), "account", "accounts")
    );
    finish(id, offenders, checked, pass, fail, &gaps)
        .value("empty_password_accounts", empty)
        .value("missing_shadow_accounts", missing)
        .value("passwd_hash_accounts", in_passwd)
        .sources(account_sources(facts))
}

pub fn password_age(
    id: &'static str,
    facts: &Facts,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Outcome {
    if let Some(outcome) = passwd_missing(id, facts) {
        return outcome;
    }
    let today = now.timestamp().div_euclid(86_400);
    let limit = i64::from(settings.max_password_age_days);
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let (mut usable, mut no_max, mut too_old) = (0usize, 0usize, 0usize);
    for account in &facts.accounts {
        if !matches!(
            account.password,
            PasswordState::Usable(_) | PasswordState::InPasswd(_)
        ) {
            continue;
        }
        let mut subject = brief(account);
        if let Some(reason) = &account.expired {
            checked.push(subject.fact("expired", reason.as_str()));
            continue;
        }
        usable += 1;
        let mut reasons = Vec::new();
        match &account.shadow {
            None => {
                no_max += 1;
                reasons.push(format!(
                    "hash kept in {PASSWD_PATH}: no password aging applies"
                ));
            }
            Some(shadow) => {
                match shadow.max_days {
                    None => {
                        no_max += 1;
                        reasons.push("no maximum password age".to_string());
                    }
                    Some(max) if max >= NO_MAX_DAYS => {
                        no_max += 1;
                        reasons.push(format!("no maximum password age (max {max} days)"));
                    }
                    Some(max) => {
                        subject = subject.fact("password_max_days", max);
                        if max > limit {
                            reasons
                                .push(format!("maximum password age {max} days exceeds {limit}"));
                        }
                    }
                }
                match shadow.last_change {
                    None => {
                        reasons.push("password aging disabled (no last-change date)".to_string())
                    }
                    Some(0) => subject = subject.fact("must_change_at_next_login", true),
                    Some(changed) => {
                        let age = today - changed;
                        subject = subject
                            .fact("password_changed", date(changed))
                            .fact("password_age_days", age);
                        if age > limit {
                            too_old += 1;
                            reasons.push(format!(
                                "password last changed {} ({age} days ago, limit {limit})",
                                date(changed)
                            ));
                        } else if age < 0 {
                            subject = subject.fact("changed_in_future", true);
                        }
                    }
                }
            }
        }
        if reasons.is_empty() {
            checked.push(subject);
        } else {
            offenders.push(subject.with_reason(reasons.join("; ")));
        }
    }
    let gaps: Vec<String> = if facts
        .accounts
        .iter()
        .any(|a| a.password == PasswordState::Unknown)
    {
        shadow_gap(facts).into_iter().collect()
    } else {
        Vec::new()
    };
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    let fail = format!(
        "{} too old or never expiring: {}",
        plural(
            offenders.len(),
            "usable password is",
            "usable passwords are"
        ),
        names.join(", ")
    );
    let pass = match usable {
        0 => "no account has a usable password".to_string(),
        1 => format!("the one usable password expires and is younger than {limit} days"),
        n => format!("all {n} usable passwords expire and are younger than {limit} days"),
    };
    let mut outcome = finish(id, offenders, checked, pass, fail, &gaps)
        .value("usable_passwords", usable)
        .value("passwords_without_max_age", no_max)
        .value("passwords_older_than_limit", too_old)
        .value("max_password_age_days", settings.max_password_age_days);
    if let Some(days) = facts.login_defs.pass_max_days {
        outcome = outcome.value("login_defs_pass_max_days", days);
    }
    let mut sources = account_sources(facts);
    if facts.login_defs_read {
        sources.push(LOGIN_DEFS_PATH.into());
    }
    outcome.sources(sources)
}

fn account_ref(account: &Account) -> AccountRef<'_> {
    AccountRef {
        name: account.name(),
        uid: account.entry.uid,
        gids: &account.gids,
        groups: &account.all_groups,
    }
}

/// True for names in sudoers user lists that denote one plain user name.
fn plain_user(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['%', '+', '#', '!'])
        && name != "ALL"
        && !name.ends_with("alias)")
        && !name.ends_with("deeply)")
}

pub fn privileged(id: &'static str, facts: &Facts, settings: &Settings) -> Outcome {
    if let Some(outcome) = passwd_missing(id, facts) {
        return outcome;
    }
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add =
        |name: &str, reason: String| reasons.entry(name.to_string()).or_default().push(reason);
    let mut offenders = Vec::new();
    let mut gaps: Vec<String> = shadow_gap(facts).into_iter().collect();

    for account in facts.accounts.iter().filter(|a| a.entry.uid == 0) {
        add(account.name(), "uid 0".into());
    }
    for group_name in &settings.privileged_groups {
        let group = facts.groups.iter().find(|g| &g.name == group_name);
        if let Some(group) = group {
            for member in &group.members {
                add(member, format!("member of group {group_name}"));
            }
            for account in facts.accounts.iter().filter(|a| a.entry.gid == group.gid) {
                add(account.name(), format!("primary group {group_name}"));
            }
        }
        if let Some(gs) = facts.gshadow_entries.iter().find(|g| &g.name == group_name) {
            for admin in &gs.admins {
                add(
                    admin,
                    format!("administrator of group {group_name} (gpasswd)"),
                );
            }
            for member in &gs.members {
                if !group.is_some_and(|g| g.members.contains(member)) {
                    add(
                        member,
                        format!("member of group {group_name} in {GSHADOW_PATH} (newgrp)"),
                    );
                }
            }
        }
        let group_password = facts
            .gshadow_entries
            .iter()
            .find(|g| &g.name == group_name)
            .map(|g| g.password.as_str())
            .or_else(|| group.map(|g| g.password.as_str()).filter(|p| *p != "x"));
        if let Some(password) = group_password
            && matches!(
                classify_hash(password),
                HashClass::Usable(_) | HashClass::Empty
            )
            && group.is_some()
        {
            offenders.push(
                Subject::new("group", group_name.as_str()).with_reason(format!(
                    "group {group_name} has a password: whoever knows it joins with newgrp"
                )),
            );
        }
    }

    let mut sudo_sources = Vec::new();
    match &facts.sudoers {
        FileState::Read(policy) => {
            sudo_sources = policy.files.clone();
            gaps.extend(policy.errors.iter().map(|e| format!("cannot read {e}")));
            sudo_holders(policy, facts, &mut add, &mut offenders);
        }
        FileState::Unreadable(e) => gaps.push(format!("cannot read the sudo policy: {e}")),
        FileState::Absent => {}
    }
    if let Some(e) = facts.group.error() {
        gaps.push(format!("{e}: group members unknown"));
    }
    if let Some(e) = facts.gshadow.error() {
        gaps.push(format!("{e}: group administrators and passwords unknown"));
    }

    let mut checked = Vec::new();
    let mut count = 0usize;
    for (name, why) in &reasons {
        let Some(account) = facts.account(name) else {
            offenders.push(
                Subject::new("account", name.as_str())
                    .with_reason(format!(
                        "no such account, yet {}: an account created with this name inherits the rights",
                        why.join("; ")
                    ))
                    .fact("privileges", why.clone()),
            );
            continue;
        };
        count += 1;
        let mut subject = brief(account)
            .fact("privileges", why.clone())
            .fact("human", account.human)
            .fact("authorized_keys", account.keys);
        let mut problems = Vec::new();
        if matches!(account.password, PasswordState::Empty { .. }) {
            problems.push("administrative rights and an empty password".to_string());
        }
        if account.entry.uid != 0 && !account.human {
            let mut ways = Vec::new();
            if account.password.authenticates() {
                ways.push("a password".to_string());
            }
            if account.keys > 0 {
                ways.push(plural(
                    account.keys,
                    "authorized SSH key",
                    "authorized SSH keys",
                ));
            }
            if !ways.is_empty() && account.expired.is_none() {
                problems.push(format!(
                    "system account (uid {}) with administrative rights that can log in with {}",
                    account.entry.uid,
                    ways.join(" and ")
                ));
            }
        }
        if problems.is_empty() {
            checked.push(subject);
        } else {
            subject = subject.with_reason(problems.join("; "));
            offenders.push(subject);
        }
    }
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    let fail = format!(
        "administrative rights where they should not be ({}): {}",
        plural(names.len(), "problem", "problems"),
        names.join(", ")
    );
    let pass = format!(
        "{} with administrative rights ({}); none is a system account that can log in",
        plural(count, "account", "accounts"),
        checked
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut sources = account_sources(facts);
    sources.extend(group_sources(facts));
    sources.extend(sudo_sources);
    finish(id, offenders, checked, pass, fail, &gaps)
        .value("privileged_accounts", count)
        .sources(sources)
}

fn sudo_holders(
    policy: &Policy,
    facts: &Facts,
    add: &mut dyn FnMut(&str, String),
    offenders: &mut Vec<Subject>,
) {
    for grant in policy.all_as_root(&facts.host) {
        if !grant.host_match.possible() {
            continue;
        }
        let tag = if grant.nopasswd {
            " without a password"
        } else {
            ""
        };
        if grant.who.iter().any(|w| w == "ALL") {
            offenders.push(
                Subject::new("sudo_rule", grant.place.as_str())
                    .with_reason(format!("every user may run ALL commands as root{tag}"))
                    .fact("who", grant.who.clone()),
            );
        }
        for account in &facts.accounts {
            match policy.users_match(&grant.users, AliasKind::User, &account_ref(account)) {
                Match::Yes => add(
                    account.name(),
                    format!("sudoers {}: ALL as root{tag}", grant.place),
                ),
                Match::Unknown => add(
                    account.name(),
                    format!(
                        "sudoers {}: ALL as root{tag} (through a netgroup or non-Unix group)",
                        grant.place
                    ),
                ),
                Match::No => {}
            }
        }
        for name in grant.who.iter().filter(|w| plain_user(w)) {
            if facts.account(name).is_none() {
                add(
                    name,
                    format!("named in sudoers {} (ALL as root{tag})", grant.place),
                );
            }
        }
    }
}

pub fn sudo_nopasswd(id: &'static str, facts: &Facts) -> Outcome {
    let policy = match &facts.sudoers {
        FileState::Read(p) => p,
        FileState::Absent => {
            return Outcome::no_data(
                id,
                format!(
                    "no {} under this root (sudo is not installed)",
                    super::sudoers::SUDOERS_PATH
                ),
            );
        }
        FileState::Unreadable(e) => return Outcome::error(id, e),
    };
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let rules = policy.nopasswd_rules(&facts.host);
    let (mut rule_count, mut all_count) = (0usize, 0usize);
    for rule in &rules {
        let accounts: Vec<String> = facts
            .accounts
            .iter()
            .filter(|a| {
                policy
                    .users_match(&rule.users, AliasKind::User, &account_ref(a))
                    .possible()
            })
            .map(|a| a.name().to_string())
            .collect();
        let what = if rule.grants_all {
            "ALL commands".to_string()
        } else {
            plural(rule.commands.len(), "command", "commands")
        };
        let subject = Subject::new("sudo_rule", rule.place.as_str())
            .fact("who", rule.who.clone())
            .fact("runas", rule.runas.as_str())
            .fact("commands", rule.commands.clone())
            .fact("grants_all", rule.grants_all)
            .fact("hosts", rule.hosts.clone())
            .fact("applies_here", rule.host_match.as_str())
            .fact("accounts", accounts);
        if rule.host_match.possible() {
            rule_count += 1;
            if rule.grants_all {
                all_count += 1;
            }
            offenders.push(subject.with_reason(format!(
                "NOPASSWD: {} may run {what} as {} without authenticating",
                rule.who.join(", "),
                rule.runas
            )));
        } else {
            checked.push(subject.fact("note", "host list does not name this host"));
        }
    }
    let off = policy.authenticate_off();
    for entry in &off {
        let who = if entry.applies_to.is_empty() {
            "everyone".to_string()
        } else {
            entry.applies_to.join(", ")
        };
        let mut subject = Subject::new("sudo_defaults", entry.place.as_str())
            .fact("scope", entry.scope)
            .fact("applies_to", entry.applies_to.clone());
        if let Some(users) = &entry.users {
            let accounts: Vec<String> = facts
                .accounts
                .iter()
                .filter(|a| {
                    policy
                        .users_match(users, AliasKind::User, &account_ref(a))
                        .possible()
                })
                .map(|a| a.name().to_string())
                .collect();
            subject = subject.fact("accounts", accounts);
        }
        offenders.push(subject.with_reason(format!(
            "Defaults !authenticate ({} scope): sudo asks {who} for no password",
            entry.scope
        )));
    }
    let mut unparsed = 0usize;
    for line in &policy.unparsed {
        unparsed += 1;
        let subject =
            Subject::new("sudoers_line", line.place()).fact("error", line.value.reason.as_str());
        if line.value.mentions_no_auth {
            offenders.push(subject.with_reason(format!(
                "sudo rejects this line ({}), which mentions NOPASSWD or authenticate: fixing it as written would grant commands without a password",
                line.value.reason
            )));
        } else {
            checked.push(subject);
        }
    }
    let gaps: Vec<String> = policy
        .errors
        .iter()
        .map(|e| format!("cannot read {e}"))
        .collect();
    let fail = format!(
        "{} users run commands without authenticating{}",
        plural(offenders.len(), "sudoers entry lets", "sudoers entries let"),
        match all_count {
            0 => String::new(),
            1 => " (one of them grants ALL commands)".to_string(),
            n => format!(" ({n} of them grant ALL commands)"),
        }
    );
    let pass = format!(
        "no sudoers rule runs commands without authentication ({} read)",
        plural(policy.files.len(), "file", "files")
    );
    let mut outcome = finish(id, offenders, checked, pass, fail, &gaps)
        .value("nopasswd_rules", rule_count)
        .value("nopasswd_all_rules", all_count)
        .value("authenticate_disabled", off.len())
        .value("sudoers_files", policy.files.len())
        .value("unparsed_lines", unparsed);
    if !policy.problems.is_empty() {
        outcome = outcome.value("include_problems", policy.problems.clone());
    }
    outcome.sources(policy.files.clone())
}

pub fn authorized_keys(id: &'static str, facts: &Facts) -> Outcome {
    if let Some(outcome) = passwd_missing(id, facts) {
        return outcome;
    }
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let (mut keys, mut weak, mut unsafe_files, mut key_accounts) = (0usize, 0usize, 0usize, 0usize);
    let mut malformed = Vec::new();
    for kf in &facts.key_files {
        let file = &kf.file;
        if !file.unsafe_reasons.is_empty() {
            unsafe_files += 1;
            offenders.push(
                Subject::new("authorized_keys_file", file.path.as_str())
                    .with_reason(format!(
                        "sshd StrictModes refuses this file, and whoever can write it can add keys: {}",
                        file.unsafe_reasons.join("; ")
                    ))
                    .fact("accounts", kf.accounts.clone())
                    .fact("keys", file.keys.len()),
            );
        }
        malformed.extend(
            file.problems
                .iter()
                .map(|p| format!("{}:{}: {}", file.path, p.line, p.message)),
        );
        for key in &file.keys {
            keys += 1;
            let mut subject = Subject::new("ssh_key", format!("{}:{}", file.path, key.line))
                .fact("accounts", kf.accounts.clone())
                .fact("type", key.key_type.as_str())
                .fact("fingerprint", key.fingerprint.as_str())
                .fact("comment", key.comment.as_str());
            if let Some(bits) = key.bits {
                subject = subject.fact("bits", bits);
            }
            if !key.options.is_empty() {
                let options: Vec<String> = key.options.iter().map(|o| o.name.clone()).collect();
                subject = subject.fact("options", options);
            }
            if let Some(from) = key.option("from").and_then(|o| o.value.as_deref()) {
                subject = subject.fact("from", from);
            }
            match &key.weakness {
                Some(reason) => {
                    weak += 1;
                    offenders.push(subject.with_reason(reason.as_str()));
                }
                None => checked.push(subject),
            }
        }
    }
    for account in facts.accounts.iter().filter(|a| a.keys > 0) {
        let mut problems = Vec::new();
        if account.shell == ShellKind::NoLogin {
            problems.push(format!(
                "{} for an account without a login shell ({}): sshd still accepts them, for port forwarding at least",
                plural(account.keys, "authorized key", "authorized keys"),
                account.entry.shell
            ));
        }
        if let Some(reason) = &account.expired {
            problems.push(format!(
                "{} left on an expired account ({reason})",
                plural(account.keys, "authorized key", "authorized keys")
            ));
        }
        if !problems.is_empty() {
            key_accounts += 1;
            offenders.push(
                brief(account)
                    .with_reason(problems.join("; "))
                    .fact("key_files", account.key_files.clone()),
            );
        }
    }
    let gaps = facts.key_errors.clone();
    let homes = facts
        .accounts
        .iter()
        .filter(|a| a.entry.home.starts_with('/'))
        .count();
    let pass = if facts.key_files.is_empty() {
        format!("no authorized_keys file in the {} home directories", homes)
    } else {
        format!(
            "{} in {}, all strong, files safe, accounts able to use them",
            plural(keys, "key", "keys"),
            plural(facts.key_files.len(), "file", "files")
        )
    };
    let fail = format!(
        "{}: {}, {}, {}",
        plural(offenders.len(), "SSH key problem", "SSH key problems"),
        plural(weak, "weak key", "weak keys"),
        plural(unsafe_files, "unsafe keys file", "unsafe keys files"),
        plural(
            key_accounts,
            "account that should hold no keys",
            "accounts that should hold no keys"
        )
    );
    let mut outcome = finish(id, offenders, checked, pass, fail, &gaps)
        .value("key_files", facts.key_files.len())
        .value("keys", keys)
        .value("weak_keys", weak)
        .value("unsafe_key_files", unsafe_files)
        .value(
            "accounts_with_keys",
            facts.accounts.iter().filter(|a| a.keys > 0).count(),
        )
        .value("file_owners_judged", facts.owners_judged);
    if !malformed.is_empty() {
        outcome = outcome.value("malformed_key_lines", malformed);
    }
    let mut sources = vec![PASSWD_PATH.to_string()];
    sources.extend(facts.key_files.iter().map(|f| f.file.path.clone()));
    outcome.sources(sources)
}

pub fn dormant(
    id: &'static str,
    facts: &Facts,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Outcome {
    if let Some(outcome) = passwd_missing(id, facts) {
        return outcome;
    }
    let logins = &facts.logins;
    if logins.sources.is_empty() {
        if logins.errors.is_empty() {
            return Outcome::no_data(
                id,
                "no login records (lastlog, wtmp, lastlog2 or wtmpdb) under this root",
            );
        }
        return Outcome::error(id, logins.errors.join("; "));
    }
    let today = now.timestamp().div_euclid(86_400);
    let limit = i64::from(settings.dormant_days);
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let (mut eligible, mut never) = (0usize, 0usize);
    for account in facts.accounts.iter().filter(|a| a.can_log_in()) {
        eligible += 1;
        let mut subject = brief(account).fact("authorized_keys", account.keys);
        let reason = match login_line(account, now) {
            Some((when, days)) => {
                let source = account
                    .last_login
                    .as_ref()
                    .map(|l| l.source.as_str())
                    .unwrap_or_default();
                subject = subject
                    .fact("last_login", when.as_str())
                    .fact("last_login_source", source)
                    .fact("days_since_login", days);
                (days > limit)
                    .then(|| format!("last login {when} ({days} days ago, limit {limit})"))
            }
            None => {
                never += 1;
                subject = subject.fact("never_logged_in", true);
                match account.password_changed() {
                    Some(changed) if today - changed > limit => Some(format!(
                        "never logged in, and its credentials were set {} ({} days ago, limit {limit})",
                        date(changed),
                        today - changed
                    )),
                    Some(changed) => {
                        subject = subject.fact("credentials_set", date(changed));
                        None
                    }
                    None => {
                        subject = subject.fact("credentials_set", "unknown");
                        None
                    }
                }
            }
        };
        if account.lastlog_shared {
            subject = subject.fact("lastlog_shared_uid", true);
        }
        match reason {
            Some(r) => offenders.push(subject.with_reason(r)),
            None => checked.push(subject),
        }
    }
    let mut notes: Vec<String> = logins
        .errors
        .iter()
        .map(|e| format!("cannot read {e}"))
        .collect();
    notes.extend(logins.notes.iter().cloned());
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    let mut fail = format!(
        "{} can log in but {} not for more than {limit} days: {}",
        plural(offenders.len(), "account", "accounts"),
        if offenders.len() == 1 { "has" } else { "have" },
        names.join(", ")
    );
    let mut pass = match eligible {
        0 => "no account can log in".to_string(),
        1 => format!("the one account that can log in did so within {limit} days or is newer"),
        n => format!("all {n} accounts that can log in did so within {limit} days or are newer"),
    };
    if !notes.is_empty() {
        // A source we could not read can only hide logins: a pass still holds, a failure may
        // be an account whose login is in that source.
        let note = notes.join("; ");
        pass = format!("{pass} ({note})");
        fail = format!("{fail} ({note})");
    }
    let mut gaps = Vec::new();
    if facts
        .accounts
        .iter()
        .any(|a| a.password == PasswordState::Unknown)
    {
        gaps.extend(shadow_gap(facts));
    }
    let mut sources = account_sources(facts);
    sources.extend(logins.sources.iter().cloned());
    sources.extend(facts.key_files.iter().map(|f| f.file.path.clone()));
    finish(id, offenders, checked, pass, fail, &gaps)
        .value("login_capable_accounts", eligible)
        .value("dormant_accounts", names.len())
        .value("never_logged_in", never)
        .value("dormant_days", settings.dormant_days)
        .sources(sources)
}
