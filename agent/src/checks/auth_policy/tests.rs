//! The auth_policy check through `run_check`: the three fixture hosts, a RHEL authselect
//! layout, pam_tally2, and argument/configuration precedence.

use std::path::Path;

use vigil_shared::{CheckResult, Status, Value};

use super::AuthPolicy;
use crate::checks::support::testing::{
    fixture, offender_reasons as offenders, result as get, run_in_order, write_file as write,
};
use crate::settings::ChecksConfig;

fn run_with(root: &Path, settings: &ChecksConfig) -> Vec<CheckResult> {
    run_in_order(&AuthPolicy, root, settings)
}

fn run(root: &Path) -> Vec<CheckResult> {
    run_with(root, &ChecksConfig::default())
}

#[test]
fn healthy_host_passes_every_output() {
    let results = run(&fixture("healthy"));
    for r in &results {
        assert_eq!(r.status, Status::Pass, "{}: {}", r.check, r.summary);
    }
    let quality = get(&results, "auth_policy.password_quality");
    // The drop-in overrides pwquality.conf's minlen = 12.
    assert_eq!(quality.values["min_length"], Value::Int(14));
    assert_eq!(quality.values["required_classes"], Value::Int(3));
    assert_eq!(quality.values["history"], Value::Int(24));
    let module = &quality.evidence.checked[0];
    assert_eq!(
        module.facts["minlen_source"],
        Value::from("/etc/security/pwquality.conf.d/50-policy.conf:2")
    );
    let lockout = get(&results, "auth_policy.lockout");
    assert_eq!(lockout.values["deny"], Value::Int(5));
    let ids: Vec<&str> = lockout
        .evidence
        .checked
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(ids, ["sshd", "login"]);
    assert_eq!(
        get(&results, "auth_policy.password_aging").values["pass_max_days"],
        Value::Int(365)
    );
}

#[test]
fn misconfigured_host_shows_every_seeded_problem() {
    let results = run(&fixture("misconfigured"));
    for r in &results {
        assert_eq!(r.status, Status::Fail, "{}: {}", r.check, r.summary);
    }
    assert_eq!(
        offenders(get(&results, "auth_policy.password_aging")),
        [(
            "PASS_MAX_DAYS",
            "passwords never expire (/etc/login.defs:34)"
        )]
    );
    let hashing = get(&results, "auth_policy.password_hashing");
    // pam_unix's sha512 option overrides ENCRYPT_METHOD YESCRYPT.
    assert_eq!(hashing.values["method"], Value::from("SHA512"));
    assert_eq!(
        offenders(hashing),
        [(
            "rounds",
            "1000 SHA-crypt rounds, fewer than 5000 (/etc/pam.d/common-password:5)"
        )]
    );
    assert_eq!(
        offenders(get(&results, "auth_policy.password_quality")),
        [
            (
                "pam_cracklib.so",
                "minimum length 8 (/etc/pam.d/common-password:4), shorter than 14"
            ),
            (
                "remember",
                "0 old passwords remembered, fewer than 5 (no pam_pwhistory and no pam_unix remember=)"
            ),
        ]
    );
    let lockout = offenders(get(&results, "auth_policy.lockout"));
    assert_eq!(lockout.len(), 2);
    assert_eq!(
        lockout[0],
        (
            "sshd",
            "pam_faillock never records failures (no `authfail` line); locks after 10 failures, more than 5 \
             (/etc/pam.d/common-auth:5); unlocks after 60 s, sooner than 900 s (/etc/security/faillock.conf:3)"
        )
    );
    assert_eq!(
        offenders(get(&results, "auth_policy.nullok")),
        [
            (
                "sshd",
                "pam_unix.so nullok (/etc/pam.d/common-auth:6): an account with an empty password authenticates without one"
            ),
            (
                "login",
                "pam_unix.so nullok (/etc/pam.d/common-auth:6): an account with an empty password authenticates without one"
            ),
        ]
    );
}

#[test]
fn minimal_host_has_no_data() {
    for r in run(&fixture("minimal")) {
        assert_eq!(r.status, Status::NoData, "{}: {}", r.check, r.summary);
    }
}

#[test]
fn rhel_authselect_layout_is_followed_through_its_links() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(
        base,
        "etc/login.defs",
        "PASS_MAX_DAYS 90\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 14\nENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 0x3e8\n",
    );
    let profile = "etc/authselect";
    write(
        base,
        &format!("{profile}/system-auth"),
        "auth        required      pam_env.so\n\
         auth        required      pam_faillock.so preauth silent deny=4 unlock_time=0\n\
         auth        sufficient    pam_unix.so\n\
         auth        [default=die] pam_faillock.so authfail deny=4 unlock_time=0\n\
         auth        required      pam_deny.so\n\
         password    requisite     pam_pwquality.so local_users_only minlen=15 dcredit=-1 ucredit=-1 lcredit=-1 ocredit=-1\n\
         password    required      pam_pwhistory.so remember=5 use_authtok\n\
         password    sufficient    pam_unix.so sha512 shadow use_authtok rounds=65536\n",
    );
    write(
        base,
        &format!("{profile}/password-auth"),
        "auth substack system-auth\n",
    );
    std::fs::create_dir_all(base.join("etc/pam.d")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/authselect/system-auth",
        base.join("etc/pam.d/system-auth"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/etc/authselect/password-auth",
        base.join("etc/pam.d/password-auth"),
    )
    .unwrap();
    write(
        base,
        "etc/pam.d/passwd",
        "#%PAM-1.0\npassword   substack     system-auth\n",
    );
    write(
        base,
        "etc/pam.d/sshd",
        "#%PAM-1.0\nauth       substack     password-auth\n",
    );
    write(
        base,
        "etc/pam.d/login",
        "#%PAM-1.0\nauth       substack     system-auth\n",
    );
    // pwquality.conf's minlen loses against the module argument.
    write(base, "etc/security/pwquality.conf", "minlen = 8\n");
    let results = run(base);
    for r in &results {
        assert_eq!(
            r.status,
            Status::Pass,
            "{}: {} {:?}",
            r.check,
            r.summary,
            offenders(r)
        );
    }
    let quality = get(&results, "auth_policy.password_quality");
    assert_eq!(quality.values["min_length"], Value::Int(15));
    assert_eq!(quality.values["required_classes"], Value::Int(4));
    assert_eq!(
        get(&results, "auth_policy.password_hashing").values["sha_crypt_rounds"],
        Value::Int(65536)
    );
    let lockout = get(&results, "auth_policy.lockout");
    assert!(
        lockout
            .evidence
            .sources
            .contains(&"/etc/pam.d/password-auth".to_string())
    );
    assert_eq!(
        lockout.evidence.checked[0].facts["unlock_time"],
        Value::Int(0)
    );
    let mut settings = ChecksConfig::default();
    settings.auth_policy.min_classes = 5;
    settings.auth_policy.max_password_days = 60;
    let results = run_with(base, &settings);
    assert_eq!(
        get(&results, "auth_policy.password_quality").status,
        Status::Fail
    );
    assert_eq!(
        offenders(get(&results, "auth_policy.password_aging")),
        [(
            "PASS_MAX_DAYS",
            "passwords expire after 90 days, more than 60 (/etc/login.defs:1)"
        )]
    );
}

#[test]
fn tally2_defaults_never_lock_and_missing_stacks_fall_back_to_shared_files() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(
        base,
        "etc/login.defs",
        "PASS_MAX_DAYS x\nMD5_CRYPT_ENAB yes\n",
    );
    write(
        base,
        "etc/pam.d/common-auth",
        "auth required pam_tally2.so onerr=fail\nauth required pam_unix.so nullok_secure\n",
    );
    write(
        base,
        "etc/pam.d/common-password",
        "password required pam_unix.so remember=12 minlen=8\n",
    );
    let results = run(base);
    assert_eq!(
        offenders(get(&results, "auth_policy.lockout")),
        [(
            "common-auth",
            "deny=0: accounts are never locked (module default)"
        )]
    );
    assert_eq!(
        offenders(get(&results, "auth_policy.nullok"))[0].0,
        "common-auth"
    );
    let hashing = get(&results, "auth_policy.password_hashing");
    assert_eq!(hashing.values["method"], Value::from("MD5"));
    let aging = offenders(get(&results, "auth_policy.password_aging"));
    assert_eq!(
        aging[0],
        ("PASS_MAX_DAYS", "\"x\" is not a number (/etc/login.defs:1)")
    );
    let quality = get(&results, "auth_policy.password_quality");
    assert_eq!(quality.values["history"], Value::Int(12));
    assert_eq!(quality.values["min_length"], Value::Int(8));
}

#[test]
fn parsers_survive_junk() {
    let seed = std::fs::read_to_string(fixture("healthy").join("etc/pam.d/common-auth")).unwrap()
        + &std::fs::read_to_string(fixture("healthy").join("etc/security/faillock.conf")).unwrap();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let special = [
        '[', ']', '\\', '#', '=', ' ', '\n', '\r', '@', '-', '\0', '\u{fffd}',
    ];
    for _ in 0..2000 {
        let mut text: Vec<char> = seed.chars().collect();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % (text.len() as u64 + 1)) as usize;
            let c = special[(state >> 40) as usize % special.len()];
            if state.is_multiple_of(3) && at < text.len() {
                text.remove(at);
            } else {
                text.insert(at, c);
            }
        }
        let text: String = text.into_iter().collect();
        let _ = super::pam::parse_pam_file(&text);
        let _ = super::pam::parse_key_values(&text);
        let _ = super::parse_login_defs(&text);
        let _ = super::c_number(&text);
    }
}
