//! Accounts (A.5.15–A.5.18, A.8.2, A.8.5): every account from passwd/shadow/group, extra uid-0
//! accounts, empty or missing password hashes, password age, privileged groups and sudoers
//! rules, SSH authorized keys, and dormant accounts from lastlog/wtmp.
//!
//! Only local files are read (`files` in nsswitch terms): accounts that come from LDAP or
//! SSSD are not seen. The facts are gathered once ([`gather`]) and judged per output
//! ([`judge`]); every parser is a pure function over text or bytes.
//!
//! Decisions worth knowing:
//! - `accounts.privileged` lists uid-0 accounts, members (supplementary, primary or through
//!   `/etc/gshadow`) and administrators of the configured groups, and holders of sudo rules
//!   that grant `ALL` commands with root among the run-as targets. It fails for: a system
//!   account (uid below `UID_MIN` or above `UID_MAX`, root excepted) among them that can log
//!   in (password, empty password or SSH key); a privileged account with an empty password;
//!   a privileged name with no account behind it (whoever later gets that name inherits the
//!   rights); a privileged group with a group password; a rule granting every user `ALL`.
//! - `accounts.authorized_keys` does not flag keys on password-locked accounts that have a
//!   login shell: key-only login is the recommended setup, and with `UsePAM yes` (Debian's
//!   default) sshd accepts keys regardless of a `!` or `*` password. It flags keys on accounts
//!   whose shell refuses sessions (sshd still authenticates them and allows forwarding) or
//!   that have expired.
//! - File owners of keys files are judged only when the tree's `/` belongs to root (a live
//!   host or a mounted image): a fixture checkout carries the uid of whoever checked it out.
//!   Git keeps no modes either, so the permission findings are tested on trees built in tests.
//! - An unreadable login source does not make `accounts.dormant` an error: missing records
//!   can only make accounts look older, so a pass still holds (the summary names the source).
//!   lastlog is indexed by uid, so its record is not attributed when several accounts share
//!   the uid (root and `toor`); wtmp, lastlog2 and wtmpdb are by name.
//! - A shell that is neither in `/etc/shells` nor a refusal program (`nologin`, `false`…)
//!   still counts as able to start sessions: sshd and login(1) do not consult `/etc/shells`.
//! - sudoers rules whose host list does not name this host (`/etc/hostname`) are listed as
//!   checked, not offenders; addresses, netgroups and undefined host aliases may match and
//!   count. A line sudo would reject is an offender when it mentions `NOPASSWD` or
//!   `authenticate`.

pub mod authorized_keys;
pub mod gather;
pub mod group;
pub mod judge;
pub mod logins;
pub mod passwd;
pub mod shadow;
pub mod sudoers;

#[cfg(test)]
mod fixture_tests;

use serde::Deserialize;

use super::{Check, CheckContext, Outcome, Output};

/// A line a parser could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Entries a parser accepted and the lines it could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub entries: Vec<T>,
    pub problems: Vec<LineProblem>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            entries: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl<T> Parsed<T> {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(LineProblem {
            line,
            message: message.into(),
        });
    }
}

/// `[checks.accounts]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Run this check.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// When to run it (cron; five fields, or six with seconds first).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// An account that can log in but has not for this many days is dormant.
    #[serde(default = "default_dormant_days")]
    pub dormant_days: u32,
    /// Usable passwords older than this, or without a maximum age, are reported.
    #[serde(default = "default_max_password_age_days")]
    pub max_password_age_days: u32,
    /// Groups whose members hold administrative rights.
    #[serde(default = "default_privileged_groups")]
    pub privileged_groups: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: default_enabled(),
            schedule: default_schedule(),
            dormant_days: default_dormant_days(),
            max_password_age_days: default_max_password_age_days(),
            privileged_groups: default_privileged_groups(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_schedule() -> String {
    "*/15 * * * *".into()
}
fn default_dormant_days() -> u32 {
    90
}
fn default_max_password_age_days() -> u32 {
    365
}
fn default_privileged_groups() -> Vec<String> {
    vec!["sudo".into(), "wheel".into(), "admin".into()]
}

const OUTPUTS: &[Output] = &[
    Output {
        id: "accounts.inventory",
        controls: &["A.5.16", "A.5.18"],
        description: "Every local account with uid, shell, password state and last login",
    },
    Output {
        id: "accounts.uid0",
        controls: &["A.8.2", "A.5.15"],
        description: "No account other than root has uid 0",
    },
    Output {
        id: "accounts.empty_passwords",
        controls: &["A.5.17", "A.8.5"],
        description: "No account logs in without a password, lacks its shadow entry or keeps its hash in /etc/passwd",
    },
    Output {
        id: "accounts.password_age",
        controls: &["A.5.17"],
        description: "Usable passwords have a maximum age and are younger than the configured limit",
    },
    Output {
        id: "accounts.privileged",
        controls: &["A.8.2", "A.5.18"],
        description: "Members of administrative groups and holders of sudo ALL rules",
    },
    Output {
        id: "accounts.sudo_nopasswd",
        controls: &["A.8.2", "A.8.5"],
        description: "No sudoers rule lets a user run commands without authenticating",
    },
    Output {
        id: "accounts.authorized_keys",
        controls: &["A.5.17", "A.8.5"],
        description: "SSH authorized keys per account: weak key types and unsafe file permissions",
    },
    Output {
        id: "accounts.dormant",
        controls: &["A.5.18", "A.8.2"],
        description: "Accounts that can log in but have not for the configured number of days",
    },
];

/// The accounts check.
#[derive(Debug)]
pub struct Accounts;

impl Check for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn description(&self) -> &'static str {
        "local accounts, passwords, privileges, sudoers, SSH keys and dormant accounts"
    }

    fn outputs(&self) -> &'static [Output] {
        OUTPUTS
    }

    fn common(&self, settings: &crate::settings::ChecksConfig) -> crate::settings::Common {
        crate::settings::Common {
            enabled: settings.accounts.enabled,
            schedule: settings.accounts.schedule.clone(),
        }
    }

    fn run(&self, ctx: &CheckContext<'_>) -> Vec<Outcome> {
        let settings = &ctx.settings.accounts;
        let facts = gather::gather(ctx.root, ctx.now);
        vec![
            judge::inventory(OUTPUTS[0].id, &facts, ctx.now),
            judge::uid0(OUTPUTS[1].id, &facts),
            judge::empty_passwords(OUTPUTS[2].id, &facts),
            judge::password_age(OUTPUTS[3].id, &facts, settings, ctx.now),
            judge::privileged(OUTPUTS[4].id, &facts, settings),
            judge::sudo_nopasswd(OUTPUTS[5].id, &facts),
            judge::authorized_keys(OUTPUTS[6].id, &facts),
            judge::dormant(OUTPUTS[7].id, &facts, settings, ctx.now),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic noise, no dependency.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Mutates a seed: byte flips, deletions and insertions of the characters parsers care
    /// about (separators, quotes, escapes, newlines, NUL, bytes that are not UTF-8).
    fn mutate(seed: &[u8], noise: &mut Noise) -> Vec<u8> {
        const SPECIAL: &[u8] = b":,=()!#%+\\\"'\r\n\t $*@^~/\x00\xff\xc3";
        let mut bytes = seed.to_vec();
        for _ in 0..=noise.below(8) {
            let at = if bytes.is_empty() {
                0
            } else {
                noise.below(bytes.len())
            };
            match noise.below(4) {
                0 if !bytes.is_empty() => bytes[at] = SPECIAL[noise.below(SPECIAL.len())],
                1 if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, SPECIAL[noise.below(SPECIAL.len())]),
                _ => bytes.truncate(at),
            }
        }
        bytes
    }

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/hosts/misconfigured")
                .join(path),
        )
        .unwrap()
    }

    #[test]
    fn parsers_survive_mutated_real_files() {
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let sudoers_seed = [
            fixture("etc/sudoers"),
            fixture("etc/sudoers.d/50-webops"),
            b"User_Alias A = a, %b, !#1, +n : B = \"x y\"\nDefaults:A !authenticate, env_keep+=\"X\"\n\
              A h1, fe80::1 = (root : wheel) CWD=/ NOPASSWD: sha256:abcd /bin/x a\\,b, ^/y$ : h2 = ALL\n"
                .to_vec(),
        ]
        .concat();
        let seeds: [(&str, Vec<u8>); 8] = [
            ("passwd", fixture("etc/passwd")),
            ("shadow", fixture("etc/shadow")),
            ("group", fixture("etc/group")),
            ("gshadow", fixture("etc/gshadow")),
            ("login.defs", fixture("etc/login.defs")),
            ("shells", fixture("etc/shells")),
            ("sudoers", sudoers_seed),
            ("keys", fixture("home/dave/.ssh/authorized_keys")),
        ];
        let wtmp = fixture("var/log/wtmp");
        for _ in 0..2000 {
            for (kind, seed) in &seeds {
                let input = mutate(seed, &mut noise);
                let text = String::from_utf8_lossy(&input);
                match *kind {
                    "passwd" => drop(passwd::parse_passwd(&text)),
                    "shadow" => {
                        for entry in shadow::parse_shadow(&text).entries {
                            let _ = shadow::classify_hash(&entry.hash);
                        }
                    }
                    "group" => drop(group::parse_group(&text)),
                    "gshadow" => drop(group::parse_gshadow(&text)),
                    "login.defs" => drop(group::parse_login_defs(&text)),
                    "shells" => drop(passwd::parse_shells(&text)),
                    "sudoers" => {
                        let policy = sudoers::Policy::from_text("/etc/sudoers", &text);
                        let host = sudoers::HostNames {
                            name: Some("h1".into()),
                        };
                        let _ = policy.nopasswd_rules(&host);
                        let _ = policy.authenticate_off();
                        let _ = policy.all_as_root(&host);
                    }
                    _ => drop(authorized_keys::parse_authorized_keys(&text)),
                }
            }
            let records = mutate(&wtmp, &mut noise);
            let _ = logins::parse_wtmp(&records, "/var/log/wtmp");
            let _ = logins::parse_lastlog_record(&records, "/var/log/lastlog");
        }
    }
}
