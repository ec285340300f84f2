//! User-defined checks end to end: the shipped examples load and judge the fixture hosts,
//! the registry includes them, commands run on the live root only, and load errors are
//! precise.

use std::path::{Path, PathBuf};

use vigil_shared::{Status, Value};

use super::*;
use crate::checks::support::testing::*;
use crate::settings::ChecksConfig;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/checks.d")
}

fn example_settings() -> ChecksConfig {
    let mut settings = ChecksConfig::default();
    settings.custom.dir = Some(examples_dir());
    settings.custom.allow_commands = vec!["/usr/bin/systemctl is-enabled".into()];
    settings
}

/// Runs every user-defined check of the settings on a root.
fn run_all(root: &Path, settings: &ChecksConfig) -> Results {
    let mut out = Results::new();
    for check in load_checks(&settings.custom).unwrap() {
        out.extend(run_with(check.as_ref(), root, settings));
    }
    out
}

#[test]
fn the_shipped_examples_load() {
    let defs = load_definitions(&example_settings().custom).unwrap();
    let ids: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "custom.auditd_enabled_systemctl",
            "custom.core_dumps_restricted",
            "custom.crontab_permissions",
            "custom.legacy_services",
            "custom.login_banner",
            "custom.openssl_patched"
        ]
    );
    // Without the allowlist the command example is refused, with its file and line.
    let mut settings = example_settings();
    settings.custom.allow_commands.clear();
    let e = load_definitions(&settings.custom).unwrap_err();
    assert_eq!(e.0.len(), 1);
    let text = e.0[0].to_string();
    assert!(text.contains("audit-service.toml:13: command \"/usr/bin/systemctl is-enabled auditd.service\" is not allowed"), "{text}");
}

#[test]
fn examples_on_the_healthy_host() {
    let r = run_all(&fixture("healthy"), &example_settings());
    assert_well_formed(&r);
    assert_eq!(
        status(&r, "custom.login_banner"),
        Status::Pass,
        "{:?}",
        r["custom.login_banner"]
    );
    assert_eq!(status(&r, "custom.openssl_patched"), Status::Pass);
    assert_eq!(status(&r, "custom.legacy_services"), Status::Pass);
    assert_eq!(
        r["custom.legacy_services"].summary,
        "No telnet, rsh, NIS or TFTP server is installed: none of the 5 rules holds, as required"
    );
    // fs.suid_dumpable = 0 in this root's /proc and '* hard core 0' in limits.d.
    assert_eq!(status(&r, "custom.core_dumps_restricted"), Status::Pass);
    assert_eq!(status(&r, "custom.crontab_permissions"), Status::NoData);
    assert_eq!(
        status(&r, "custom.auditd_enabled_systemctl"),
        Status::NoData
    );
    assert!(
        r["custom.auditd_enabled_systemctl"]
            .summary
            .contains("commands run on the agent's own machine")
    );
    let banner = &r["custom.login_banner"];
    assert_eq!(banner.controls, ["A.5.10", "A.8.5"]);
    assert_eq!(banner.values["severity"], Value::from("low"));
    assert_eq!(banner.evidence.sources, ["/etc/issue.net"]);
}

#[test]
fn examples_find_the_seeded_problems_on_the_misconfigured_host() {
    let r = run_all(&fixture("misconfigured"), &example_settings());
    assert_well_formed(&r);
    assert_eq!(status(&r, "custom.openssl_patched"), Status::Fail);
    assert_eq!(offenders(&r, "custom.openssl_patched"), ["openssl"]);
    assert_eq!(
        reason(&r, "custom.openssl_patched", "openssl"),
        "version 3.0.11-1~deb12u2 is older than 3.0.15-1~deb12u1"
    );
    assert_eq!(status(&r, "custom.login_banner"), Status::Fail);
    assert_eq!(
        offenders(&r, "custom.login_banner"),
        ["/etc/issue.net", "/etc/issue*"]
    );
    assert_eq!(
        reason(&r, "custom.login_banner", "/etc/issue*"),
        "/etc/issue: line \"Debian GNU/Linux 12 \\\\n \\\\l\" matches /(?i)(debian|ubuntu|red hat|\\\\r|\\\\v)/"
    );
    assert!(r["custom.login_banner"].summary.ends_with(
        "— remediation: Write the text approved by legal into /etc/issue.net and /etc/issue (no OS name or version)."
    ));
}

#[test]
fn examples_have_nothing_to_judge_on_the_minimal_host() {
    let r = run_all(&fixture("minimal"), &example_settings());
    assert_well_formed(&r);
    for (id, result) in &r {
        assert_eq!(result.status, Status::NoData, "{id}: {result:?}");
    }
}

#[test]
fn the_registry_holds_user_checks_with_their_schedules() {
    let settings = example_settings();
    let registry = crate::checks::registry(&settings).unwrap();
    let custom: Vec<&Box<dyn Check>> = registry.iter().filter(|c| c.name() == "custom").collect();
    assert_eq!(custom.len(), 6);
    let cron = custom
        .iter()
        .find(|c| c.outputs()[0].id == "custom.crontab_permissions")
        .unwrap();
    assert_eq!(cron.common(&settings).schedule, "0 4 * * *");
    assert_eq!(cron.outputs()[0].controls, ["A.8.9"]);
    let banner = custom
        .iter()
        .find(|c| c.outputs()[0].id == "custom.login_banner")
        .unwrap();
    assert_eq!(banner.common(&settings).schedule, "*/30 * * * *");
    let mut off = settings.clone();
    off.custom.enabled = false;
    assert!(!banner.common(&off).enabled);
}

fn write_defs(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn commands_run_on_the_live_root_with_their_output_judged() {
    let dir = tempfile::tempdir().unwrap();
    write_defs(
        dir.path(),
        "cmd.toml",
        r#"
[[check]]
id = "acme.echo"
title = "echo prints a big enough number"
controls = ["A.8.9"]

[[check.rule]]
command = ["/bin/echo", "answer 42"]
matches = 'answer (\d+)'
lines = "any"
compare = ">= 40"
exit_code = 0

[[check]]
id = "acme.slow"
title = "a command that hangs"
controls = ["A.8.9"]

[[check.rule]]
command = ["/bin/sleep", "30"]
exit_code = 0
timeout_secs = 1
"#,
    );
    let mut settings = ChecksConfig::default();
    settings.custom.dir = Some(dir.path().to_path_buf());
    settings.custom.allow_commands = vec!["/bin/echo".into(), "/bin/sleep".into()];
    let r = run_all(Path::new("/"), &settings);
    assert_well_formed(&r);
    assert_eq!(
        status(&r, "acme.echo"),
        Status::Pass,
        "{:?}",
        r["acme.echo"]
    );
    assert_eq!(
        r["acme.echo"].evidence.checked[0].facts["detail"],
        Value::from(
            "exit code 0; output line \"answer 42\" matches /answer (\\d+)/ with the number >= 40"
        )
    );
    assert_eq!(status(&r, "acme.slow"), Status::Error);
    assert_eq!(
        r["acme.slow"].error.as_deref(),
        Some("a command that hangs: /bin/sleep did not finish within 1 s and was killed")
    );
    // Against another root the same commands are refused, unless allowed.
    let other = tempfile::tempdir().unwrap();
    let r = run_all(other.path(), &settings);
    assert_eq!(status(&r, "acme.echo"), Status::NoData);
    settings.custom.commands_on_other_roots = true;
    let r = run_all(other.path(), &settings);
    assert_eq!(status(&r, "acme.echo"), Status::Pass);
}

#[test]
fn duplicate_ids_and_unreadable_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let one = "[[check]]\nid = \"same\"\ntitle = \"t\"\ncontrols = [\"A.8.9\"]\n[[check.rule]]\nfile = \"/x\"\nexists = true\n";
    write_defs(dir.path(), "a.toml", one);
    write_defs(dir.path(), "b.toml", one);
    write_defs(dir.path(), "ignored.txt", "not toml");
    write_defs(dir.path(), ".hidden.toml", "junk = [");
    let mut settings = ChecksConfig::default();
    settings.custom.dir = Some(dir.path().to_path_buf());
    let e = load_definitions(&settings.custom).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert!(e.0[0].to_string().ends_with(&format!(
        "b.toml:1: custom.same is already defined at {}:1: ids must be unique",
        dir.path().join("a.toml").display()
    )));
    settings.custom.dir = Some(dir.path().join("missing"));
    let e = load_definitions(&settings.custom).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot read the directory of user-defined checks")
    );
}

#[test]
fn file_modes_and_owners() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path();
    write_tree(
        b,
        &[
            ("etc/crontab", "x\n"),
            ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ],
    );
    std::fs::set_permissions(
        b.join("etc/crontab"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let defs = dir.path().join("defs");
    write_defs(
        &defs,
        "cron.toml",
        &std::fs::read_to_string(examples_dir().join("cron-permissions.toml")).unwrap(),
    );
    let mut settings = ChecksConfig::default();
    settings.custom.dir = Some(defs);
    let r = run_all(b, &settings);
    assert_eq!(status(&r, "custom.crontab_permissions"), Status::Fail);
    assert_eq!(
        reason(&r, "custom.crontab_permissions", "/etc/crontab"),
        "mode 0644 has bits beyond 0600"
    );
    std::fs::set_permissions(
        b.join("etc/crontab"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let r = run_all(b, &settings);
    // The test runs as whoever owns the temporary tree: root passes, others fail on owner.
    let uid = std::fs::metadata(b.join("etc/crontab"))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let expected = if uid == 0 { Status::Pass } else { Status::Fail };
    assert_eq!(
        status(&r, "custom.crontab_permissions"),
        expected,
        "{:?}",
        r["custom.crontab_permissions"]
    );
}
