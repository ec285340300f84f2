//! Password and lockout policy (A.5.17, A.8.5, A.8.24): password aging and hashing in
//! `/etc/login.defs`, the PAM password stack (`pam_pwquality`/`pam_cracklib` with
//! `pwquality.conf` and its drop-ins, history through `pam_pwhistory` or `pam_unix
//! remember=`), lockout in the PAM auth stacks (`pam_faillock` with `faillock.conf`, or the old
//! `pam_tally2`), and `nullok` on `pam_unix`.
//!
//! Decisions worth knowing:
//! - Stacks are judged per service as PAM builds them: `passwd` for password changes, and the
//!   configured login services (`sshd`, `login`) for authentication, with `@include`,
//!   `include` and `substack` expanded, `/etc/pam.d` before the vendor `/usr/lib/pam.d`. On
//!   RHEL the authselect profile is what `system-auth`/`password-auth` link to, so it is read
//!   through those links. When a service file is missing, the shared file
//!   (`common-password`/`common-auth`, `system-auth`, `password-auth`) stands in for it.
//! - Presence is judged, not control flow: a `pam_faillock` line counts wherever it sits in
//!   the stack, but a stack that never records failures (`preauth` without `authfail`) fails.
//! - Module arguments override their configuration files, which override the modules'
//!   compiled-in defaults (pwquality `minlen` 8, cracklib 9, faillock `deny` 3 and
//!   `unlock_time` 600, pwhistory `remember` 10, tally2 `deny` 0 = never).
//! - `pam_unix` without a hashing option uses `ENCRYPT_METHOD` from `login.defs` (PAM 1.4+);
//!   an option on the `pam_unix` password line wins.
//! - `PASS_MIN_DAYS` is not required by default (`min_password_days = 0`): NIST SP 800-63B
//!   advises against minimum ages; set it to 1 for CIS.

mod pam;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_shared::Subject;

use super::{Check, CheckContext, Outcome, Output};
use crate::hostroot::HostRoot;
use pam::{Stack, StackRule};

/// `[checks.auth_policy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Highest acceptable `PASS_MAX_DAYS` for new passwords.
    #[serde(default = "default_max_password_days")]
    pub max_password_days: u32,
    /// Lowest acceptable `PASS_MIN_DAYS` (0: not required).
    #[serde(default)]
    pub min_password_days: u32,
    /// Lowest acceptable `PASS_WARN_AGE`.
    #[serde(default = "default_min_warn_days")]
    pub min_warn_days: u32,
    /// Acceptable hashing methods, as `ENCRYPT_METHOD` spells them.
    #[serde(default = "default_hash_methods")]
    pub hash_methods: Vec<String>,
    /// Lowest acceptable SHA-crypt rounds when the method is SHA512 or SHA256.
    #[serde(default = "default_min_sha_rounds")]
    pub min_sha_crypt_rounds: u64,
    /// Lowest acceptable minimum password length.
    #[serde(default = "default_min_length")]
    pub min_length: u32,
    /// Lowest acceptable number of required character classes (0: not required).
    #[serde(default)]
    pub min_classes: u32,
    /// Lowest acceptable number of remembered old passwords (0: not required).
    #[serde(default = "default_password_history")]
    pub password_history: u32,
    /// Highest acceptable number of failures before lockout.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Lowest acceptable lockout duration in seconds (0, locked until an administrator
    /// unlocks, always passes).
    #[serde(default = "default_min_unlock_time")]
    pub min_unlock_time_secs: u64,
    /// PAM services whose auth stacks are judged for lockout and `nullok`.
    #[serde(default = "default_services")]
    pub services: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            max_password_days: default_max_password_days(),
            min_password_days: 0,
            min_warn_days: default_min_warn_days(),
            hash_methods: default_hash_methods(),
            min_sha_crypt_rounds: default_min_sha_rounds(),
            min_length: default_min_length(),
            min_classes: 0,
            password_history: default_password_history(),
            max_failures: default_max_failures(),
            min_unlock_time_secs: default_min_unlock_time(),
            services: default_services(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "25 * * * *".into()
}
fn default_max_password_days() -> u32 {
    365
}
fn default_min_warn_days() -> u32 {
    7
}
fn default_hash_methods() -> Vec<String> {
    vec!["YESCRYPT".into(), "SHA512".into()]
}
fn default_min_sha_rounds() -> u64 {
    5000
}
fn default_min_length() -> u32 {
    14
}
fn default_password_history() -> u32 {
    5
}
fn default_max_failures() -> u32 {
    5
}
fn default_min_unlock_time() -> u64 {
    900
}
fn default_services() -> Vec<String> {
    vec!["sshd".into(), "login".into()]
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "auth_policy.password_aging",
        controls: &["A.5.17"],
        description: "login.defs gives new passwords a maximum age, a minimum age and an expiry warning",
    },
    Output {
        id: "auth_policy.password_hashing",
        controls: &["A.5.17", "A.8.24"],
        description: "New passwords are hashed with a strong method (login.defs ENCRYPT_METHOD, pam_unix options) and enough rounds",
    },
    Output {
        id: "auth_policy.password_quality",
        controls: &["A.5.17"],
        description: "The PAM password stack enforces length, character classes and history (pam_pwquality, pam_cracklib, pam_pwhistory)",
    },
    Output {
        id: "auth_policy.lockout",
        controls: &["A.8.5"],
        description: "Login services lock accounts after repeated failures (pam_faillock, pam_tally2)",
    },
    Output {
        id: "auth_policy.nullok",
        controls: &["A.5.17", "A.8.5"],
        description: "No login service lets an account with an empty password authenticate (pam_unix nullok)",
    },
];

const AGING_ID: &str = "auth_policy.password_aging";
const HASHING_ID: &str = "auth_policy.password_hashing";
const QUALITY_ID: &str = "auth_policy.password_quality";
const LOCKOUT_ID: &str = "auth_policy.lockout";
const NULLOK_ID: &str = "auth_policy.nullok";

const LOGIN_DEFS: &str = "/etc/login.defs";

/// The password and lockout policy check.
#[derive(Debug)]
pub struct AuthPolicy;

impl Check for AuthPolicy {
    fn name(&self) -> &'static str {
        "auth_policy"
    }

    fn description(&self) -> &'static str {
        "password aging, hashing, quality and history, account lockout and nullok in PAM"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.auth_policy.enabled,
            schedule: settings.auth_policy.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.auth_policy;
        let defs = match ctx.root.read_to_string(LOGIN_DEFS) {
            Ok(text) => Ok(Some(parse_login_defs(&text))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        };
        let password_stack = password_stack(ctx.root);
        let mut outcomes = Vec::new();
        match &defs {
            Ok(Some(defs)) => {
                outcomes.push(aging(defs, settings));
                outcomes.push(hashing(defs, password_stack.as_ref(), settings));
            }
            Ok(None) => {
                outcomes.push(Outcome::no_data(
                    AGING_ID,
                    "no /etc/login.defs under this root",
                ));
                outcomes.push(Outcome::no_data(
                    HASHING_ID,
                    "no /etc/login.defs under this root",
                ));
            }
            Err(e) => {
                outcomes.push(Outcome::error(AGING_ID, e));
                outcomes.push(Outcome::error(HASHING_ID, e));
            }
        }
        let no_pam = "no PAM configuration (/etc/pam.d, /usr/lib/pam.d) under this root";
        match &password_stack {
            Some(stack) => outcomes.push(quality(ctx.root, stack, settings)),
            None => outcomes.push(Outcome::no_data(QUALITY_ID, no_pam)),
        }
        let auth = auth_stacks(ctx.root, settings);
        if auth.is_empty() {
            outcomes.push(Outcome::no_data(LOCKOUT_ID, no_pam));
            outcomes.push(Outcome::no_data(NULLOK_ID, no_pam));
        } else {
            outcomes.push(lockout(ctx.root, &auth, settings));
            outcomes.push(nullok(&auth));
        }
        outcomes
    }
}

/// `login.defs` entries: the last definition of a name wins, as in shadow's `getdef`.
fn parse_login_defs(text: &str) -> BTreeMap<String, (String, usize)> {
    let mut out = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        out.insert(
            name.to_string(),
            (value.trim_matches('"').to_string(), index + 1),
        );
    }
    out
}

/// `strtol(…, 0)` over a whole value.
fn c_number(value: &str) -> Option<i64> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let n = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()?
    };
    if negative { n.checked_neg() } else { Some(n) }
}

/// Judges one login.defs age: the reason it fails, if it does.
type AgeRule = Box<dyn Fn(i64) -> Option<String>>;

fn aging(defs: &BTreeMap<String, (String, usize)>, settings: &Settings) -> Outcome {
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut values: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    // (name, shadow's default when unset, check)
    let rows: [(&str, i64, AgeRule); 3] = [
        ("PASS_MAX_DAYS", 99999, {
            let max = i64::from(settings.max_password_days);
            Box::new(move |v| {
                (v < 0 || v > max).then(|| {
                    if !(0..99999).contains(&v) {
                        "passwords never expire".to_string()
                    } else {
                        format!("passwords expire after {v} days, more than {max}")
                    }
                })
            })
        }),
        ("PASS_MIN_DAYS", 0, {
            let min = i64::from(settings.min_password_days);
            Box::new(move |v| {
                (v < min).then(|| {
                    format!("passwords may be changed again after {v} days, fewer than {min}")
                })
            })
        }),
        ("PASS_WARN_AGE", 7, {
            let min = i64::from(settings.min_warn_days);
            Box::new(move |v| {
                (v < min)
                    .then(|| format!("users are warned {v} days before expiry, fewer than {min}"))
            })
        }),
    ];
    for (name, default, judge) in &rows {
        let entry = defs.get(*name);
        let (value, source) = match entry {
            Some((text, line)) => match c_number(text) {
                Some(v) => (v, format!("{LOGIN_DEFS}:{line}")),
                None => {
                    offenders.push(
                        Subject::new("login_defs", *name)
                            .fact("value", text.as_str())
                            .with_reason(format!("{text:?} is not a number ({LOGIN_DEFS}:{line})")),
                    );
                    values.insert(name, None);
                    continue;
                }
            },
            None => (*default, "not set: shadow's default".to_string()),
        };
        values.insert(name, Some(value));
        let subject = Subject::new("login_defs", *name)
            .fact("value", value)
            .fact("source", source.as_str());
        match judge(value) {
            Some(reason) => offenders.push(subject.with_reason(format!("{reason} ({source})"))),
            None => checked.push(subject),
        }
    }
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    let mut outcome = Outcome::judge(
        AGING_ID,
        offenders,
        checked,
        "new passwords expire, and users are warned before they do",
        format!("password aging is too loose: {}", names.join(", ")),
    )
    .source(LOGIN_DEFS);
    for (name, value) in values {
        if let Some(v) = value {
            outcome = outcome.value(&name.to_ascii_lowercase(), v);
        }
    }
    outcome
}

/// The stack `passwd` runs to change a password, or the shared file standing in for it.
fn password_stack(root: &HostRoot) -> Option<Stack> {
    let path = ["passwd", "common-password", "system-auth", "password-auth"]
        .iter()
        .find_map(|name| pam::find_service(root, name))?;
    Some(pam::stack(root, &path, "password"))
}

fn find_module<'a>(stack: &'a Stack, names: &[&str]) -> Option<&'a StackRule> {
    stack
        .rules
        .iter()
        .find(|r| names.contains(&r.rule.module_name()))
}

/// `pam_unix` hashing options and their `ENCRYPT_METHOD` names.
const UNIX_METHODS: &[(&str, &str)] = &[
    ("yescrypt", "YESCRYPT"),
    ("gost_yescrypt", "GOST_YESCRYPT"),
    ("sha512", "SHA512"),
    ("sha256", "SHA256"),
    ("blowfish", "BCRYPT"),
    ("md5", "MD5"),
    ("bigcrypt", "DES"),
];

fn hashing(
    defs: &BTreeMap<String, (String, usize)>,
    stack: Option<&Stack>,
    settings: &Settings,
) -> Outcome {
    let unix = stack.and_then(|s| find_module(s, &["pam_unix.so"]));
    let pam_method = unix.and_then(|u| {
        // The last method option on the line wins, as in pam_unix's argument loop.
        u.rule
            .args
            .iter()
            .rev()
            .find_map(|a| UNIX_METHODS.iter().find(|(opt, _)| opt == a))
            .map(|(_, name)| (*name, u.location()))
    });
    let defs_method = defs
        .get("ENCRYPT_METHOD")
        .map(|(v, line)| (v.to_ascii_uppercase(), format!("{LOGIN_DEFS}:{line}")));
    let md5_enab = defs
        .get("MD5_CRYPT_ENAB")
        .is_some_and(|(v, _)| v.eq_ignore_ascii_case("yes"));
    let (method, source) = match (&pam_method, &defs_method) {
        (Some((m, loc)), _) => ((*m).to_string(), format!("pam_unix.so option ({loc})")),
        (None, Some((m, loc))) => (m.clone(), loc.clone()),
        (None, None) if md5_enab => ("MD5".into(), format!("{LOGIN_DEFS}: MD5_CRYPT_ENAB yes")),
        (None, None) => ("DES".into(), "not set: shadow's default".into()),
    };
    let accepted: Vec<String> = settings
        .hash_methods
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let method_subject = Subject::new("hash_method", "method")
        .fact("value", method.as_str())
        .fact("source", source.as_str());
    if accepted.contains(&method) {
        checked.push(method_subject);
    } else {
        offenders.push(method_subject.with_reason(format!(
            "new passwords are hashed with {method}, not one of {} ({source})",
            accepted.join(", ")
        )));
    }
    let mut rounds_value = None;
    if method == "SHA512" || method == "SHA256" {
        let pam_rounds =
            unix.and_then(|u| u.rule.arg("rounds").map(|r| (r.to_string(), u.location())));
        let defs_rounds = defs
            .get("SHA_CRYPT_MIN_ROUNDS")
            .map(|(v, line)| (v.clone(), format!("{LOGIN_DEFS}:{line}")));
        let (text, source) = pam_rounds
            .or(defs_rounds)
            .unwrap_or_else(|| ("5000".into(), "not set: crypt's default".into()));
        let rounds = c_number(&text).unwrap_or(0);
        rounds_value = Some(rounds);
        let subject = Subject::new("hash_method", "rounds")
            .fact("value", rounds)
            .fact("source", source.as_str());
        if u64::try_from(rounds).unwrap_or(0) < settings.min_sha_crypt_rounds {
            offenders.push(subject.with_reason(format!(
                "{rounds} SHA-crypt rounds, fewer than {} ({source})",
                settings.min_sha_crypt_rounds
            )));
        } else {
            checked.push(subject);
        }
    }
    if method == "YESCRYPT"
        && let Some((text, line)) = defs.get("YESCRYPT_COST_FACTOR")
    {
        let cost = c_number(text).unwrap_or(0);
        let subject = Subject::new("hash_method", "yescrypt_cost")
            .fact("value", cost)
            .fact("source", format!("{LOGIN_DEFS}:{line}"));
        // shadow clamps the factor to 1..=11; below the default of 5 is weaker than stock.
        if cost < 5 {
            offenders.push(subject.with_reason(format!(
                "yescrypt cost factor {cost}, below the default of 5 ({LOGIN_DEFS}:{line})"
            )));
        } else {
            checked.push(subject);
        }
    }
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    let mut outcome = Outcome::judge(
        HASHING_ID,
        offenders,
        checked,
        format!("new passwords are hashed with {method} ({source})"),
        format!(
            "new passwords are hashed weakly ({method}, {source}): {}",
            names.join(", ")
        ),
    )
    .value("method", method.as_str())
    .source(LOGIN_DEFS);
    if let Some(r) = rounds_value {
        outcome = outcome.value("sha_crypt_rounds", r);
    }
    if let Some(stack) = stack {
        outcome = outcome.sources(stack.sources.iter().cloned());
    }
    outcome
}

/// A setting read from module arguments, a configuration file or a default.
struct Setting {
    value: i64,
    source: String,
}

fn setting_from(
    rule: &StackRule,
    conf: &BTreeMap<String, (String, String)>,
    name: &str,
    default: i64,
) -> Setting {
    if let Some(v) = rule.rule.arg(name).and_then(c_number) {
        return Setting {
            value: v,
            source: rule.location(),
        };
    }
    if let Some((v, loc)) = conf.get(name)
        && let Some(n) = c_number(v)
    {
        return Setting {
            value: n,
            source: loc.clone(),
        };
    }
    Setting {
        value: default,
        source: "module default".into(),
    }
}

/// Reads a module's configuration file (and, for pwquality, its drop-ins) into
/// name → (value, location).
fn read_module_conf(
    root: &HostRoot,
    main: &str,
    dropin_dir: Option<&str>,
    sources: &mut Vec<String>,
) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut files = vec![main.to_string()];
    if let Some(dir) = dropin_dir
        && let Ok(names) = root.read_dir(dir)
    {
        files.extend(
            names
                .into_iter()
                .filter(|n| n.ends_with(".conf") && !n.starts_with('.'))
                .map(|n| crate::hostroot::join(dir, &n)),
        );
    }
    for file in files {
        if let Ok(text) = root.read_to_string(&file) {
            sources.push(file.clone());
            for (k, (v, line)) in pam::parse_key_values(&text) {
                out.insert(k, (v, format!("{file}:{line}")));
            }
        }
    }
    out
}

fn quality(root: &HostRoot, stack: &Stack, settings: &Settings) -> Outcome {
    let mut sources = stack.sources.clone();
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let module = find_module(stack, &["pam_pwquality.so", "pam_cracklib.so"]);
    let (min_length, classes) = match module {
        Some(rule) => {
            let pwquality = rule.rule.module_name() == "pam_pwquality.so";
            let conf = if pwquality {
                read_module_conf(
                    root,
                    "/etc/security/pwquality.conf",
                    Some("/etc/security/pwquality.conf.d"),
                    &mut sources,
                )
            } else {
                BTreeMap::new()
            };
            let (default_minlen, default_credit) = if pwquality { (8, 0) } else { (9, 1) };
            let minlen = setting_from(rule, &conf, "minlen", default_minlen);
            let minclass = setting_from(rule, &conf, "minclass", 0);
            let credits: Vec<(&str, Setting)> = ["dcredit", "ucredit", "lcredit", "ocredit"]
                .iter()
                .map(|c| (*c, setting_from(rule, &conf, c, default_credit)))
                .collect();
            let required_by_credits = credits.iter().filter(|(_, s)| s.value < 0).count() as i64;
            let classes = minclass.value.max(required_by_credits);
            let mut subject = Subject::new("pam_module", rule.rule.module_name())
                .fact("location", rule.location())
                .fact("minlen", minlen.value)
                .fact("minlen_source", minlen.source.as_str())
                .fact("minclass", minclass.value)
                .fact("required_classes", classes);
            for (name, s) in &credits {
                subject = subject.fact(name, s.value);
            }
            let mut reasons = Vec::new();
            if minlen.value < i64::from(settings.min_length) {
                reasons.push(format!(
                    "minimum length {} ({}), shorter than {}",
                    minlen.value, minlen.source, settings.min_length
                ));
            }
            if classes < i64::from(settings.min_classes) {
                reasons.push(format!(
                    "{classes} character classes required, fewer than {}",
                    settings.min_classes
                ));
            }
            if reasons.is_empty() {
                checked.push(subject);
            } else {
                offenders.push(subject.with_reason(reasons.join("; ")));
            }
            (minlen.value, classes)
        }
        None => {
            let obscure = find_module(stack, &["pam_unix.so"]);
            let minlen = obscure
                .and_then(|u| u.rule.arg("minlen").and_then(c_number))
                .unwrap_or(6);
            offenders.push(
                Subject::new("pam_module", "pam_pwquality.so")
                    .fact("minlen", minlen)
                    .with_reason(format!(
                        "no pam_pwquality or pam_cracklib in the password stack ({}): only pam_unix's minimum length of {minlen} characters applies",
                        stack.sources.first().cloned().unwrap_or_default()
                    )),
            );
            (minlen, 0)
        }
    };
    // History: pam_pwhistory (arguments, then pwhistory.conf, default 10) or pam_unix remember=.
    let history = if let Some(rule) = find_module(stack, &["pam_pwhistory.so"]) {
        let conf = read_module_conf(root, "/etc/security/pwhistory.conf", None, &mut sources);
        let s = setting_from(rule, &conf, "remember", 10);
        Some((s.value, s.source))
    } else {
        find_module(stack, &["pam_unix.so"]).and_then(|u| {
            u.rule
                .arg("remember")
                .and_then(c_number)
                .map(|v| (v, u.location()))
        })
    };
    let (remember, history_source) =
        history.unwrap_or((0, "no pam_pwhistory and no pam_unix remember=".into()));
    let subject = Subject::new("password_history", "remember")
        .fact("value", remember)
        .fact("source", history_source.as_str());
    if remember < i64::from(settings.password_history) {
        offenders.push(subject.with_reason(format!(
            "{remember} old passwords remembered, fewer than {} ({history_source})",
            settings.password_history
        )));
    } else {
        checked.push(subject);
    }
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    Outcome::judge(
        QUALITY_ID,
        offenders,
        checked,
        format!("passwords need {min_length} characters and {classes} classes; {remember} old passwords are refused"),
        format!("password quality is not enforced well enough: {}", names.join(", ")),
    )
    .value("min_length", min_length)
    .value("required_classes", classes)
    .value("history", remember)
    .value("problems", stack.problems.clone())
    .sources(sources)
}

/// The auth stacks of the configured services that exist, or the shared file standing in.
fn auth_stacks(root: &HostRoot, settings: &Settings) -> Vec<(String, Stack)> {
    let mut out: Vec<(String, Stack)> = settings
        .services
        .iter()
        .filter_map(|name| {
            pam::find_service(root, name).map(|p| (name.clone(), pam::stack(root, &p, "auth")))
        })
        .collect();
    if out.is_empty()
        && let Some((name, path)) = ["common-auth", "system-auth", "password-auth"]
            .iter()
            .find_map(|n| pam::find_service(root, n).map(|p| ((*n).to_string(), p)))
    {
        out.push((name, pam::stack(root, &path, "auth")));
    }
    out
}

fn lockout(root: &HostRoot, stacks: &[(String, Stack)], settings: &Settings) -> Outcome {
    let mut sources: Vec<String> = Vec::new();
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut strictest_deny: Option<i64> = None;
    for (service, stack) in stacks {
        for s in &stack.sources {
            if !sources.contains(s) {
                sources.push(s.clone());
            }
        }
        let faillock: Vec<&StackRule> = stack
            .rules
            .iter()
            .filter(|r| r.rule.module_name() == "pam_faillock.so")
            .collect();
        let tally = find_module(stack, &["pam_tally2.so", "pam_tally.so"]);
        let subject = Subject::new("pam_service", service.as_str());
        let (subject, reasons, deny) = if let Some(first) = faillock.first() {
            let conf_path = faillock
                .iter()
                .find_map(|r| r.rule.arg("conf"))
                .unwrap_or("/etc/security/faillock.conf")
                .to_string();
            let conf = read_module_conf(root, &conf_path, None, &mut sources);
            // Arguments on any faillock line of the stack; the last one given wins.
            let pick = |name: &str, default: i64| -> Setting {
                faillock
                    .iter()
                    .rev()
                    .find_map(|r| {
                        r.rule.arg(name).and_then(c_number).map(|v| Setting {
                            value: v,
                            source: r.location(),
                        })
                    })
                    .unwrap_or_else(|| setting_from(first, &conf, name, default))
            };
            let deny = pick("deny", 3);
            let unlock = pick("unlock_time", 600);
            let records = faillock.iter().any(|r| r.rule.flag("authfail"));
            let mut reasons = Vec::new();
            if !records {
                reasons
                    .push("pam_faillock never records failures (no `authfail` line)".to_string());
            }
            reasons.extend(judge_lockout(
                deny.value,
                unlock.value,
                settings,
                &deny.source,
                &unlock.source,
            ));
            let subject = subject
                .fact("module", "pam_faillock.so")
                .fact("location", first.location())
                .fact("deny", deny.value)
                .fact("unlock_time", unlock.value)
                .fact("records_failures", records);
            (subject, reasons, Some(deny.value))
        } else if let Some(rule) = tally {
            let deny = setting_from(rule, &BTreeMap::new(), "deny", 0);
            let unlock = setting_from(rule, &BTreeMap::new(), "unlock_time", 0);
            let reasons = judge_lockout(
                deny.value,
                unlock.value,
                settings,
                &deny.source,
                &unlock.source,
            );
            let subject = subject
                .fact("module", rule.rule.module_name())
                .fact("location", rule.location())
                .fact("deny", deny.value)
                .fact("unlock_time", unlock.value);
            (subject, reasons, Some(deny.value))
        } else {
            (
                subject,
                vec![format!(
                    "no pam_faillock or pam_tally2 in the auth stack ({}): passwords can be guessed without limit",
                    stack.sources.first().cloned().unwrap_or_default()
                )],
                None,
            )
        };
        if let Some(d) = deny.filter(|d| *d > 0) {
            strictest_deny = Some(strictest_deny.map_or(d, |s: i64| s.max(d)));
        }
        if reasons.is_empty() {
            checked.push(subject);
        } else {
            offenders.push(subject.with_reason(reasons.join("; ")));
        }
    }
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    let mut outcome = Outcome::judge(
        LOCKOUT_ID,
        offenders,
        checked,
        format!(
            "{} login services lock accounts after repeated failures",
            stacks.len()
        ),
        format!(
            "login services without an effective lockout: {}",
            names.join(", ")
        ),
    )
    .sources(sources);
    if let Some(d) = strictest_deny {
        outcome = outcome.value("deny", d);
    }
    outcome
}

fn judge_lockout(
    deny: i64,
    unlock: i64,
    settings: &Settings,
    deny_src: &str,
    unlock_src: &str,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if deny <= 0 {
        reasons.push(format!(
            "deny={deny}: accounts are never locked ({deny_src})"
        ));
    } else if deny > i64::from(settings.max_failures) {
        reasons.push(format!(
            "locks after {deny} failures, more than {} ({deny_src})",
            settings.max_failures
        ));
    }
    if unlock != 0
        && (unlock < 0 || u64::try_from(unlock).unwrap_or(0) < settings.min_unlock_time_secs)
    {
        reasons.push(format!(
            "unlocks after {unlock} s, sooner than {} s ({unlock_src})",
            settings.min_unlock_time_secs
        ));
    }
    reasons
}

fn nullok(stacks: &[(String, Stack)]) -> Outcome {
    let mut offenders = Vec::new();
    let mut checked = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    for (service, stack) in stacks {
        for s in &stack.sources {
            if !sources.contains(s) {
                sources.push(s.clone());
            }
        }
        let lines: Vec<&StackRule> = stack
            .rules
            .iter()
            .filter(|r| {
                r.rule.module_name() == "pam_unix.so"
                    && (r.rule.flag("nullok") || r.rule.flag("nullok_secure"))
            })
            .collect();
        let subject = Subject::new("pam_service", service.as_str());
        match lines.first() {
            Some(rule) => offenders.push(subject.fact("location", rule.location()).with_reason(format!(
                "pam_unix.so nullok ({}): an account with an empty password authenticates without one",
                rule.location()
            ))),
            None => checked.push(subject),
        }
    }
    let names: Vec<String> = offenders.iter().map(|s: &Subject| s.id.clone()).collect();
    Outcome::judge(
        NULLOK_ID,
        offenders,
        checked,
        "no login service accepts empty passwords (no nullok on pam_unix)",
        format!(
            "login services accept empty passwords: {}",
            names.join(", ")
        ),
    )
    .sources(sources)
}
