//! SSH server (A.8.5, A.8.2, A.8.9, A.8.20, A.8.24): the effective `sshd` configuration read
//! from `/etc/ssh/sshd_config` with its `Include`s, judged for root login, authentication
//! methods, weak algorithms, host keys and session hardening.
//!
//! Decisions worth knowing:
//! - sshd keeps the *first* value it reads for a keyword (lists such as `HostKey` and
//!   `AllowUsers` accumulate). Files are read in sshd's order: `Include` expands in place,
//!   globs sorted, relative paths under `/etc/ssh`, so a drop-in included at the top of
//!   Debian's `sshd_config` overrides the lines below it.
//! - Keywords absent from the configuration take the compiled-in default of the installed
//!   release, read from the binary's version string (`OpenSSH_9.2p1`), else from the dpkg
//!   status of `openssh-server`; an unknown release is judged with current defaults and the
//!   subject says so. Defaults that changed matter: `PermitRootLogin` was `yes` before 7.0,
//!   `ssh-rsa` (SHA-1) host-key signatures were on before 8.8, CBC ciphers before 6.7.
//! - `Match` blocks are not evaluated for an imagined connection. The verdict is that of a
//!   connection no `Match` criterion selects (the global section, overridden by `Match all`),
//!   and every `Match` block that sets a judged keyword to a failing value is an offender of
//!   its own (`PasswordAuthentication (Match User backup)`): some connections get it.
//! - `KbdInteractiveAuthentication yes` counts as password authentication when `UsePAM yes`
//!   (PAM then prompts for the password); `ChallengeResponseAuthentication` is its alias.
//! - Host keys are judged from their `.pub` halves (type and size); a private key readable by
//!   group or others is an offender when the tree's `/` belongs to root (a checkout of the
//!   fixtures carries the modes git gives it).

mod algorithms;
mod config;

#[cfg(test)]
mod tests;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde::Deserialize;
use vigil_shared::Subject;

use super::{Check, CheckContext, Outcome, Output, error_for_all, no_data_for_all};
use crate::hostroot::HostRoot;
use algorithms::{Kind, Version};
use config::{Context, Directive, Loaded};

/// `[checks.ssh]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// `PermitRootLogin` values that pass (`no`, `prohibit-password`, `forced-commands-only`,
    /// `yes`; `without-password` is read as `prohibit-password`).
    #[serde(default = "default_permit_root_login")]
    pub permit_root_login: Vec<String>,
    /// Accept password (and PAM keyboard-interactive) authentication.
    #[serde(default)]
    pub allow_password_authentication: bool,
    /// Accept X11 forwarding.
    #[serde(default)]
    pub allow_x11_forwarding: bool,
    /// Highest acceptable `MaxAuthTries`.
    #[serde(default = "default_max_auth_tries")]
    pub max_auth_tries: u32,
    /// Highest acceptable `LoginGraceTime` in seconds (0, no limit, always fails).
    #[serde(default = "default_max_login_grace_time")]
    pub max_login_grace_time_secs: u64,
    /// Require an `AllowUsers` or `AllowGroups` list.
    #[serde(default)]
    pub require_access_list: bool,
    /// Ciphers that fail (wildcards allowed).
    #[serde(default = "default_weak_ciphers")]
    pub weak_ciphers: Vec<String>,
    /// MACs that fail (wildcards allowed).
    #[serde(default = "default_weak_macs")]
    pub weak_macs: Vec<String>,
    /// Key exchange algorithms that fail (wildcards allowed).
    #[serde(default = "default_weak_kex")]
    pub weak_kex_algorithms: Vec<String>,
    /// Host key signature algorithms that fail (wildcards allowed).
    #[serde(default = "default_weak_host_key_algorithms")]
    pub weak_host_key_algorithms: Vec<String>,
    /// Shortest acceptable RSA host key, in bits.
    #[serde(default = "default_min_rsa_bits")]
    pub min_rsa_host_key_bits: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            permit_root_login: default_permit_root_login(),
            allow_password_authentication: false,
            allow_x11_forwarding: false,
            max_auth_tries: default_max_auth_tries(),
            max_login_grace_time_secs: default_max_login_grace_time(),
            require_access_list: false,
            weak_ciphers: default_weak_ciphers(),
            weak_macs: default_weak_macs(),
            weak_kex_algorithms: default_weak_kex(),
            weak_host_key_algorithms: default_weak_host_key_algorithms(),
            min_rsa_host_key_bits: default_min_rsa_bits(),
        }
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}
fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "10 * * * *".into()
}
fn default_permit_root_login() -> Vec<String> {
    strings(&["no"])
}
fn default_max_auth_tries() -> u32 {
    4
}
fn default_max_login_grace_time() -> u64 {
    60
}
fn default_weak_ciphers() -> Vec<String> {
    strings(&[
        "3des-cbc",
        "aes*-cbc",
        "blowfish-cbc",
        "cast128-cbc",
        "arcfour*",
        "rijndael-cbc@lysator.liu.se",
    ])
}
fn default_weak_macs() -> Vec<String> {
    strings(&["hmac-md5*", "hmac-ripemd160*", "hmac-sha1-96*", "umac-64*"])
}
fn default_weak_kex() -> Vec<String> {
    strings(&[
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group-exchange-sha1",
    ])
}
fn default_weak_host_key_algorithms() -> Vec<String> {
    strings(&["ssh-dss*", "ssh-rsa", "ssh-rsa-cert-v01@openssh.com"])
}
fn default_min_rsa_bits() -> u32 {
    2048
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "ssh.root_login",
        controls: &["A.8.2", "A.8.5"],
        description: "sshd does not let root log in (PermitRootLogin), globally or in any Match block",
    },
    Output {
        id: "ssh.authentication",
        controls: &["A.8.5", "A.5.17"],
        description: "sshd refuses passwords, empty passwords, PAM keyboard-interactive and host-based authentication",
    },
    Output {
        id: "ssh.crypto",
        controls: &["A.8.24", "A.8.20"],
        description: "sshd offers no weak cipher, MAC, key exchange or host key algorithm; host keys are strong and private",
    },
    Output {
        id: "ssh.hardening",
        controls: &["A.8.9", "A.8.20"],
        description: "sshd session limits: X11 forwarding, MaxAuthTries, LoginGraceTime, UsePAM, PermitUserEnvironment, access lists",
    },
];

const ROOT_ID: &str = "ssh.root_login";
const AUTH_ID: &str = "ssh.authentication";
const CRYPTO_ID: &str = "ssh.crypto";
const HARDENING_ID: &str = "ssh.hardening";

const SSHD_BINARIES: &[&str] = &["/usr/sbin/sshd", "/usr/bin/sshd", "/usr/local/sbin/sshd"];
const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// The SSH server check.
#[derive(Debug)]
pub struct Ssh;

impl Check for Ssh {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn description(&self) -> &'static str {
        "the effective sshd configuration: root login, authentication, algorithms, host keys"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.ssh.enabled,
            schedule: settings.ssh.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.ssh;
        let Some(binary) = SSHD_BINARIES.iter().find(|p| ctx.root.exists(p)) else {
            return no_data_for_all(
                OUTPUTS,
                "no sshd binary (/usr/sbin/sshd) under this root: the SSH server is not installed",
            );
        };
        let loaded = match config::load(ctx.root, SSHD_CONFIG) {
            Ok(loaded) => loaded,
            Err(e) if e.is_not_found() => {
                return error_for_all(
                    OUTPUTS,
                    &format!(
                        "{binary} is installed but {SSHD_CONFIG} is missing: sshd refuses to start without it"
                    ),
                );
            }
            Err(e) => return error_for_all(OUTPUTS, &e),
        };
        let version = detect_version(ctx.root, binary);
        let facts = Facts { loaded, version };
        vec![
            root_login(&facts, settings),
            authentication(&facts, settings),
            crypto(&facts, settings, ctx.root),
            hardening(&facts, settings),
        ]
    }
}

/// The installed release and where it was read.
#[derive(Debug, Clone)]
struct DetectedVersion {
    version: Option<Version>,
    text: String,
    source: Option<String>,
}

fn detect_version(root: &HostRoot, binary: &str) -> DetectedVersion {
    if let Ok(bytes) = root.read_bytes(binary, 32 * 1024 * 1024)
        && let Some((version, text)) = algorithms::version_from_binary(&bytes)
    {
        return DetectedVersion {
            version: Some(version),
            text: text.trim().to_string(),
            source: Some(binary.to_string()),
        };
    }
    let status = "/var/lib/dpkg/status";
    if let Ok(text) = root.read_to_string(status) {
        for stanza in text.split("\n\n") {
            if stanza
                .lines()
                .any(|l| l.trim_end() == "Package: openssh-server")
                && let Some(v) = stanza.lines().find_map(|l| l.strip_prefix("Version: "))
                && let Some(version) = algorithms::parse_version(v.trim())
            {
                return DetectedVersion {
                    version: Some(version),
                    text: format!("openssh-server {}", v.trim()),
                    source: Some(status.to_string()),
                };
            }
        }
    }
    DetectedVersion {
        version: None,
        text: "unknown (judged with current OpenSSH defaults)".into(),
        source: None,
    }
}

struct Facts {
    loaded: Loaded,
    version: DetectedVersion,
}

/// One keyword's value for a connection no Match selects, and the Match blocks that set it.
struct Resolved<'a> {
    /// The canonical spelling (`PermitRootLogin`).
    name: &'static str,
    /// Lower-cased first argument and where it came from (`None`: the default).
    value: String,
    directive: Option<&'a Directive>,
    matches: Vec<&'a Directive>,
}

impl Facts {
    fn directives<'a>(&'a self, keywords: &[&str]) -> impl Iterator<Item = &'a Directive> {
        let keywords: Vec<String> = keywords.iter().map(|k| k.to_ascii_lowercase()).collect();
        self.loaded
            .directives
            .iter()
            .filter(move |d| keywords.contains(&d.keyword))
    }

    /// `keywords[0]` is the canonical name, the others its aliases.
    fn resolve(&self, name: &'static str, aliases: &[&str], default: &str) -> Resolved<'_> {
        let mut keywords = vec![name];
        keywords.extend_from_slice(aliases);
        let all: Vec<&Directive> = self.directives(&keywords).collect();
        let effective = all
            .iter()
            .find(|d| d.context == Context::MatchAll)
            .or_else(|| all.iter().find(|d| d.context == Context::Global))
            .copied();
        // Within each Match block the first value counts.
        let mut matches: Vec<&Directive> = Vec::new();
        for d in &all {
            if let Context::Match(criteria) = &d.context
                && !matches
                    .iter()
                    .any(|m| matches!(&m.context, Context::Match(c) if c == criteria))
            {
                matches.push(d);
            }
        }
        Resolved {
            name,
            value: effective.map_or_else(|| default.to_string(), |d| d.value_lower()),
            directive: effective,
            matches,
        }
    }

    fn default_label(&self) -> String {
        match self.version.version {
            Some(v) => format!("OpenSSH {v} default"),
            None => "OpenSSH default (release unknown)".into(),
        }
    }

    fn sources(&self) -> Vec<String> {
        let mut sources = self.loaded.sources.clone();
        if let Some(s) = &self.version.source
            && !sources.contains(s)
        {
            sources.push(s.clone());
        }
        sources
    }
}

/// Judges one resolved keyword: `fails(value)` gives the reason a value fails.
fn judge_setting(
    facts: &Facts,
    resolved: &Resolved<'_>,
    fails: &dyn Fn(&str) -> Option<String>,
    offenders: &mut Vec<Subject>,
    checked: &mut Vec<Subject>,
) {
    let source = resolved
        .directive
        .map_or_else(|| facts.default_label(), |d| d.location());
    let subject = Subject::new("sshd_setting", resolved.name)
        .fact("value", resolved.value.as_str())
        .fact("source", source.as_str());
    match fails(&resolved.value) {
        Some(reason) => offenders.push(subject.with_reason(format!("{reason} ({source})"))),
        None => checked.push(subject),
    }
    for m in &resolved.matches {
        let Context::Match(criteria) = &m.context else {
            continue;
        };
        let value = m.value_lower();
        let subject = Subject::new(
            "sshd_setting",
            format!("{} (Match {criteria})", resolved.name),
        )
        .fact("value", value.as_str())
        .fact("source", m.location())
        .fact("match", criteria.as_str());
        match fails(&value) {
            Some(reason) => offenders.push(subject.with_reason(format!(
                "{reason} for connections matching `Match {criteria}` ({})",
                m.location()
            ))),
            None => checked.push(subject),
        }
    }
}

fn finish(
    id: &'static str,
    facts: &Facts,
    offenders: Vec<Subject>,
    checked: Vec<Subject>,
    pass: String,
    fail_prefix: &str,
) -> Outcome {
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    let fail = format!("{fail_prefix}: {}", names.join(", "));
    let count = offenders.len();
    let mut outcome = Outcome::judge(id, offenders, checked, pass, fail)
        .value("findings", count)
        .value("openssh_version", facts.version.text.as_str())
        .sources(facts.sources());
    if !facts.loaded.problems.is_empty() {
        outcome = outcome.value("config_problems", facts.loaded.problems.clone());
    }
    outcome
}

fn yes_fails(what: &'static str) -> impl Fn(&str) -> Option<String> {
    move |v: &str| (v == "yes").then(|| what.to_string())
}

fn root_login(facts: &Facts, settings: &Settings) -> Outcome {
    let default = algorithms::default_permit_root_login(facts.version.version);
    let resolved = facts.resolve("PermitRootLogin", &[], default);
    let allowed: Vec<String> = settings
        .permit_root_login
        .iter()
        .map(|v| normalise_root_login(&v.to_ascii_lowercase()))
        .collect();
    let fails = |v: &str| {
        let v = normalise_root_login(v);
        (!allowed.contains(&v)).then(|| match v.as_str() {
            "yes" => "root may log in with a password".to_string(),
            "prohibit-password" => "root may log in with a key".to_string(),
            "forced-commands-only" => {
                "root may log in with keys restricted to forced commands".to_string()
            }
            other => format!("PermitRootLogin {other} is not among the accepted values"),
        })
    };
    let (mut offenders, mut checked) = (Vec::new(), Vec::new());
    judge_setting(facts, &resolved, &fails, &mut offenders, &mut checked);
    let value = normalise_root_login(&resolved.value);
    finish(
        ROOT_ID,
        facts,
        offenders,
        checked,
        format!("sshd refuses root logins (PermitRootLogin {value})"),
        "sshd lets root log in",
    )
    .value("permit_root_login", value)
}

fn normalise_root_login(value: &str) -> String {
    if value == "without-password" {
        "prohibit-password".into()
    } else {
        value.to_string()
    }
}

fn authentication(facts: &Facts, settings: &Settings) -> Outcome {
    let (mut offenders, mut checked) = (Vec::new(), Vec::new());
    let password = facts.resolve("PasswordAuthentication", &[], "yes");
    let allow_pw = settings.allow_password_authentication;
    judge_setting(
        facts,
        &password,
        &|v: &str| (v == "yes" && !allow_pw).then(|| "passwords are accepted".to_string()),
        &mut offenders,
        &mut checked,
    );
    let empty = facts.resolve("PermitEmptyPasswords", &[], "no");
    judge_setting(
        facts,
        &empty,
        &yes_fails("accounts with an empty password may log in"),
        &mut offenders,
        &mut checked,
    );
    let use_pam = facts.resolve("UsePAM", &[], "no");
    let pam_on = use_pam.value == "yes";
    let kbd = facts.resolve(
        "KbdInteractiveAuthentication",
        &["ChallengeResponseAuthentication"],
        "yes",
    );
    judge_setting(
        facts,
        &kbd,
        &|v: &str| {
            (v == "yes" && pam_on && !allow_pw).then(|| {
                "PAM can prompt for a password through keyboard-interactive (UsePAM yes)"
                    .to_string()
            })
        },
        &mut offenders,
        &mut checked,
    );
    let hostbased = facts.resolve("HostbasedAuthentication", &[], "no");
    judge_setting(
        facts,
        &hostbased,
        &yes_fails("any user of a trusted host may log in"),
        &mut offenders,
        &mut checked,
    );
    let rhosts = facts.resolve("IgnoreRhosts", &[], "yes");
    judge_setting(
        facts,
        &rhosts,
        &|v: &str| (v == "no").then(|| ".rhosts and .shosts files are honoured".to_string()),
        &mut offenders,
        &mut checked,
    );
    let pw_value = password.value.clone();
    finish(
        AUTH_ID,
        facts,
        offenders,
        checked,
        "sshd accepts no password, empty-password or host-based logins".into(),
        "sshd accepts weak authentication",
    )
    .value("password_authentication", pw_value == "yes")
}

fn hardening(facts: &Facts, settings: &Settings) -> Outcome {
    let (mut offenders, mut checked) = (Vec::new(), Vec::new());
    let allow_x11 = settings.allow_x11_forwarding;
    let x11 = facts.resolve("X11Forwarding", &[], "no");
    judge_setting(
        facts,
        &x11,
        &|v: &str| {
            (v == "yes" && !allow_x11)
                .then(|| "X11 forwarding exposes the client's display".to_string())
        },
        &mut offenders,
        &mut checked,
    );
    let max_tries = settings.max_auth_tries;
    let tries = facts.resolve("MaxAuthTries", &[], "6");
    judge_setting(
        facts,
        &tries,
        &|v: &str| match v.parse::<u64>() {
            Ok(n) if n <= u64::from(max_tries) => None,
            Ok(n) => Some(format!(
                "{n} attempts per connection, more than {max_tries}"
            )),
            Err(_) => Some(format!(
                "MaxAuthTries {v:?} is not a number (sshd refuses to start)"
            )),
        },
        &mut offenders,
        &mut checked,
    );
    let max_grace = settings.max_login_grace_time_secs;
    let grace = facts.resolve("LoginGraceTime", &[], "120");
    judge_setting(
        facts,
        &grace,
        &|v: &str| match algorithms::parse_seconds(v) {
            Some(0) => Some("no time limit for logging in".to_string()),
            Some(s) if s > max_grace => Some(format!("{s} s to log in, more than {max_grace} s")),
            Some(_) => None,
            None => Some(format!(
                "LoginGraceTime {v:?} is not a time (sshd refuses to start)"
            )),
        },
        &mut offenders,
        &mut checked,
    );
    let pam = facts.resolve("UsePAM", &[], "no");
    judge_setting(
        facts,
        &pam,
        &|v: &str| {
            (v == "no").then(|| {
                "PAM account and session checks (expiry, lockout, limits) are skipped".to_string()
            })
        },
        &mut offenders,
        &mut checked,
    );
    let env = facts.resolve("PermitUserEnvironment", &[], "no");
    judge_setting(
        facts,
        &env,
        &|v: &str| {
            (v != "no").then(|| {
                "users can set environment variables such as LD_PRELOAD for sshd's children"
                    .to_string()
            })
        },
        &mut offenders,
        &mut checked,
    );
    let lists: Vec<&Directive> = facts
        .directives(&["AllowUsers", "AllowGroups"])
        .filter(|d| d.context == Context::Global || d.context == Context::MatchAll)
        .collect();
    let access = Subject::new("sshd_setting", "AllowUsers/AllowGroups")
        .fact("present", !lists.is_empty())
        .fact(
            "entries",
            lists
                .iter()
                .flat_map(|d| d.args.iter().cloned())
                .collect::<Vec<String>>(),
        );
    if lists.is_empty() && settings.require_access_list {
        offenders.push(access.with_reason(
            "no AllowUsers or AllowGroups: every account with a key or password may log in",
        ));
    } else {
        checked.push(access);
    }
    finish(
        HARDENING_ID,
        facts,
        offenders,
        checked,
        "sshd session limits are hardened".into(),
        "sshd session limits are loose",
    )
    .value("access_list", !lists.is_empty())
}

fn crypto(facts: &Facts, settings: &Settings, root: &HostRoot) -> Outcome {
    let (mut offenders, mut checked) = (Vec::new(), Vec::new());
    let mut weak_total = 0usize;
    for (kind, weak) in [
        (Kind::Ciphers, &settings.weak_ciphers),
        (Kind::Macs, &settings.weak_macs),
        (Kind::Kex, &settings.weak_kex_algorithms),
        (Kind::HostKey, &settings.weak_host_key_algorithms),
    ] {
        let resolved = facts.resolve(kind.keyword(), &[], "");
        let mut judge_list =
            |value: &str, directive: Option<&Directive>, criteria: Option<&str>| {
                let list = if directive.is_some() {
                    algorithms::effective_list(kind, facts.version.version, value)
                } else {
                    algorithms::default_list(kind, facts.version.version)
                };
                let bad: Vec<String> = list
                    .iter()
                    .filter(|a| {
                        weak.iter()
                            .any(|w| crate::checks::confdir::glob_match(w, a))
                    })
                    .cloned()
                    .collect();
                let source = directive.map_or_else(|| facts.default_label(), |d| d.location());
                let id = match criteria {
                    Some(c) => format!("{} (Match {c})", kind.keyword()),
                    None => kind.keyword().to_string(),
                };
                let subject = Subject::new("sshd_algorithms", id)
                    .fact("offered", list.clone())
                    .fact("source", source.as_str());
                if bad.is_empty() {
                    checked.push(subject);
                } else {
                    weak_total += bad.len();
                    offenders.push(
                        subject
                            .fact("weak", bad.clone())
                            .with_reason(format!("offers {} ({source})", bad.join(", "))),
                    );
                }
            };
        // Algorithm values keep their case: use the raw argument, not the lower-cased one.
        let raw = resolved
            .directive
            .and_then(|d| d.args.first().cloned())
            .unwrap_or_default();
        judge_list(&raw, resolved.directive, None);
        for m in &resolved.matches {
            if let Context::Match(c) = &m.context {
                let raw = m.args.first().cloned().unwrap_or_default();
                judge_list(&raw, Some(m), Some(c));
            }
        }
    }
    let host_keys = host_keys(facts, settings, root, &mut offenders, &mut checked);
    let count = offenders.len();
    let names: Vec<String> = offenders.iter().map(|s| s.id.clone()).collect();
    let mut outcome = Outcome::judge(
        CRYPTO_ID,
        offenders,
        checked,
        format!(
            "sshd offers no weak algorithm and its {} host keys are strong",
            host_keys.len()
        ),
        format!("sshd offers weak cryptography: {}", names.join(", ")),
    )
    .value("findings", count)
    .value("weak_algorithms", weak_total)
    .value("host_keys", host_keys.len())
    .value("openssh_version", facts.version.text.as_str())
    .sources(facts.sources());
    for path in host_keys {
        outcome = outcome.source(path);
    }
    outcome
}

/// Judges every host key sshd loads; returns the public-key files read.
fn host_keys(
    facts: &Facts,
    settings: &Settings,
    root: &HostRoot,
    offenders: &mut Vec<Subject>,
    checked: &mut Vec<Subject>,
) -> Vec<String> {
    let configured: Vec<String> = facts
        .directives(&["HostKey"])
        .filter(|d| d.context == Context::Global)
        .filter_map(|d| d.args.first().cloned())
        .collect();
    let paths = if configured.is_empty() {
        ["rsa", "ecdsa", "ed25519"]
            .iter()
            .map(|t| format!("/etc/ssh/ssh_host_{t}_key"))
            .collect()
    } else {
        configured
    };
    let root_owned = root.metadata("/").is_ok_and(|m| m.uid() == 0);
    let mut read = Vec::new();
    for path in paths {
        let public = format!("{path}.pub");
        let private_meta = root.metadata(&path).ok();
        let public_text = root.read_to_string(&public).ok();
        if private_meta.is_none() && public_text.is_none() {
            continue;
        }
        let mut subject = Subject::new("host_key", path.as_str());
        let mut reasons = Vec::new();
        if let Some(text) = &public_text {
            read.push(public.clone());
            let parsed = crate::checks::accounts::authorized_keys::parse_authorized_keys(text);
            match parsed.entries.first() {
                Some(key) => {
                    subject = subject
                        .fact("type", key.key_type.as_str())
                        .fact("fingerprint", key.fingerprint.as_str());
                    if let Some(bits) = key.bits {
                        subject = subject.fact("bits", bits);
                    }
                    if key.key_type == "ssh-dss" {
                        reasons
                            .push("DSA host key (1024 bits, removed from OpenSSH 10)".to_string());
                    } else if key.key_type == "ssh-rsa"
                        && key.bits.is_some_and(|b| b < settings.min_rsa_host_key_bits)
                    {
                        reasons.push(format!(
                            "RSA host key of {} bits, shorter than {}",
                            key.bits.unwrap_or_default(),
                            settings.min_rsa_host_key_bits
                        ));
                    }
                }
                None => reasons.push(format!("{public} holds no readable public key")),
            }
        } else {
            subject = subject.fact("public_key", "missing");
        }
        if let Some(meta) = private_meta {
            let mode = meta.permissions().mode() & 0o7777;
            subject = subject.fact("mode", format!("{mode:04o}"));
            if root_owned && mode & 0o077 != 0 {
                reasons.push(format!(
                    "private key readable by group or others (mode {mode:04o})"
                ));
            }
        }
        if reasons.is_empty() {
            checked.push(subject);
        } else {
            offenders.push(subject.with_reason(reasons.join("; ")));
        }
    }
    read
}
