//! End-to-end runs of the real `vigil-agent` binary on the fixture hosts: the JSON report is
//! compared with a golden file, every seeded misconfiguration must be found, and the healthy
//! host must show no failure. `VIGIL_UPDATE_GOLDEN=1 cargo test -p vigil-agent --test fixtures`
//! rewrites the golden files after an intended change (review the diff).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_shared::{Report, Status};

/// The fixture clock: ages (dormant accounts, password age, last update) are judged against it.
const FIXTURE_NOW: &str = "2026-06-01T12:00:00Z";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name)
}

/// Settings without a useful default (backup locations, user-defined checks) for the runs.
fn fixture_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture-agent.toml")
}

fn collect_json(name: &str) -> (String, Report) {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args([
            "collect",
            "--format",
            "json",
            "--cache-dir",
            "none",
            "--now",
            FIXTURE_NOW,
        ])
        .arg("--config")
        .arg(fixture_config())
        .arg("--root")
        .arg(fixture(name))
        .output()
        .expect("vigil-agent runs");
    assert!(
        output.status.success(),
        "collect on {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8 output");
    let report: Report = serde_json::from_str(&text).expect("output is a v1 report");
    (text, report)
}

/// Blanks what legitimately changes between runs: durations, the batch id and where the
/// checkout lives (user-defined checks name their definition file by absolute path).
fn normalise(report: &Report) -> String {
    let mut report = report.clone();
    report.batch_id = "00000000-0000-4000-8000-000000000000".into();
    for result in &mut report.results {
        result.duration_ms = 0;
    }
    let mut text = serde_json::to_string_pretty(&report)
        .expect("serialises")
        .replace(env!("CARGO_MANIFEST_DIR"), "$AGENT_DIR");
    text.push('\n');
    text
}

fn check_golden(name: &str) -> Report {
    let (_, report) = collect_json(name);
    assert_eq!(report.validate(), Ok(()), "{name}: report must validate");
    let actual = normalise(&report);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &actual).expect("golden file written");
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(10)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{name}: output differs from {} ({} vs {} lines); first differences:\n{}\n\
             rerun with VIGIL_UPDATE_GOLDEN=1 if the change is intended",
            golden.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
    report
}

fn status_of(report: &Report, check: &str) -> Status {
    report
        .results
        .iter()
        .find(|r| r.check == check)
        .map(|r| r.status)
        .unwrap_or_else(|| panic!("no result for {check}"))
}

fn offenders(report: &Report, check: &str) -> Vec<String> {
    report
        .results
        .iter()
        .find(|r| r.check == check)
        .map(|r| r.evidence.offenders.iter().map(|o| o.id.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn healthy_host_matches_golden_and_has_no_false_result() {
    let report = check_golden("healthy");
    let failing: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .map(|r| r.check.as_str())
        .collect();
    assert!(
        failing.is_empty(),
        "false results on the healthy host: {failing:?}"
    );
}

#[test]
fn misconfigured_host_matches_golden_and_every_seeded_problem_is_found() {
    let report = check_golden("misconfigured");
    for check in [
        "accounts.uid0",
        "accounts.empty_passwords",
        "accounts.sudo_nopasswd",
        "accounts.dormant",
        "packages.pending_updates",
        "packages.pending_security",
        "packages.kernel",
        "encryption.root",
        "encryption.swap",
        "ssh.root_login",
        "ssh.authentication",
        "ssh.crypto",
        "ssh.hardening",
        "auth_policy.password_aging",
        "auth_policy.password_hashing",
        "auth_policy.password_quality",
        "auth_policy.lockout",
        "auth_policy.nullok",
        "firewall.default_deny",
        "firewall.open_ports",
        "listening.sockets",
        "kernel_hardening.kernel_sysctl",
        "kernel_hardening.network_sysctl",
        "kernel_hardening.secure_boot",
        "kernel_hardening.modules",
        "time_sync.service",
        "logging.audit",
        "logging.journal",
        "logging.remote",
        "logging.retention",
        "malware.protection",
        "malware.signatures",
        "screen_lock.idle_lock",
        "tls_certs.expiry",
        "tls_certs.strength",
        "backups.recency",
        "dropin.files",
        "dropin.edr_health",
        "dropin.security_training",
        "custom.openssl_patched",
        "custom.login_banner",
    ] {
        assert_eq!(status_of(&report, check), Status::Fail, "{check} must fail");
    }
    assert!(offenders(&report, "accounts.uid0").contains(&"toor".to_string()));
    assert!(
        offenders(&report, "packages.pending_security")
            .iter()
            .any(|id| id.starts_with("openssl")),
        "the pending openssl security update must be named"
    );
    let named = [
        ("ssh.root_login", "PermitRootLogin"),
        (
            "ssh.authentication",
            "PermitEmptyPasswords (Match User backup)",
        ),
        ("ssh.crypto", "/etc/ssh/ssh_host_dsa_key"),
        ("ssh.hardening", "LoginGraceTime"),
        ("auth_policy.password_aging", "PASS_MAX_DAYS"),
        ("auth_policy.password_hashing", "rounds"),
        ("auth_policy.password_quality", "pam_cracklib.so"),
        ("auth_policy.lockout", "sshd"),
        ("auth_policy.nullok", "login"),
        ("firewall.default_deny", "ipv6 input"),
        ("firewall.open_ports", "3306/tcp"),
        ("listening.sockets", "6379/tcp6"),
        (
            "kernel_hardening.kernel_sysctl",
            "kernel.randomize_va_space",
        ),
        ("kernel_hardening.network_sysctl", "net.ipv4.ip_forward"),
        ("kernel_hardening.secure_boot", "SecureBoot"),
        ("kernel_hardening.modules", "usb_storage"),
    ];
    for (check, offender) in named {
        assert!(
            offenders(&report, check).iter().any(|id| id == offender),
            "{check} must name {offender}: {:?}",
            offenders(&report, check)
        );
    }
    assert_eq!(
        offenders(&report, "tls_certs.expiry"),
        [
            "/etc/nginx/tls/shop.crt",
            "/etc/postfix/tls/mail.pem",
            "/etc/ssl/private/legacy.pem"
        ]
    );
    assert_eq!(
        offenders(&report, "malware.signatures"),
        ["/var/lib/clamav/daily.cvd"]
    );
    assert_eq!(status_of(&report, "dropin.db_backup"), Status::Error);
    assert!(offenders(&report, "logging.audit").contains(&"identity".to_string()));
}

#[test]
fn minimal_host_matches_golden_and_nothing_crashes() {
    let report = check_golden("minimal");
    let failing: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .map(|r| r.check.as_str())
        .collect();
    assert!(
        failing.is_empty(),
        "a minimal root must give no_data, not {failing:?}"
    );
}

#[test]
fn table_output_names_offenders() {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args([
            "collect",
            "--format",
            "table",
            "--cache-dir",
            "none",
            "--now",
            FIXTURE_NOW,
        ])
        .arg("--root")
        .arg(fixture("misconfigured"))
        .output()
        .expect("vigil-agent runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("accounts.uid0"), "{text}");
    assert!(text.contains("account toor"), "{text}");
}

#[test]
fn collect_on_this_machine_produces_a_valid_report() {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args(["collect", "--format", "json", "--cache-dir", "none"])
        .output()
        .expect("vigil-agent runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Report = serde_json::from_slice(&output.stdout).expect("a v1 report");
    assert_eq!(report.validate(), Ok(()));
    assert!(report.results.len() >= 15);
}

#[test]
fn unknown_check_names_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args(["collect", "--check", "nonsense"])
        .output()
        .expect("vigil-agent runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown check \"nonsense\""));
}
