//! The shipped example configuration stays loadable, and `validate` reports problems with
//! the line and the key.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use vigil_agent::settings::AgentConfig;

fn example() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/agent.toml"
    ))
}

#[test]
fn packaged_example_config_validates() {
    let config = AgentConfig::load(example(), &HashMap::new()).expect("example loads");
    // Packaged for enrollment: no name fixed in advance, an enrollment token file instead.
    assert_eq!(config.agent.id, None);
    let collector = config.collector.as_ref().expect("collector section");
    assert_eq!(
        collector.enroll_token_file.as_deref(),
        Some(Path::new("/etc/vigil/enroll.token"))
    );
    assert_eq!(
        config.limits.timeout("packages"),
        std::time::Duration::from_secs(300)
    );
    assert_eq!(config.checks.accounts.dormant_days, 90);
    let status = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args(["validate", "--config"])
        .arg(example())
        .status()
        .expect("runs");
    assert!(status.success());
}

#[test]
fn environment_overrides_apply_and_unknown_ones_fail() {
    let env = HashMap::from([(
        "VIGIL_AGENT_CHECKS__ACCOUNTS__DORMANT_DAYS".to_string(),
        "30".to_string(),
    )]);
    let config = AgentConfig::load(example(), &env).expect("loads");
    assert_eq!(config.checks.accounts.dormant_days, 30);

    let env = HashMap::from([(
        "VIGIL_AGENT_CHECKS__ACOUNTS__X".to_string(),
        "1".to_string(),
    )]);
    let err = AgentConfig::load(example(), &env).unwrap_err().to_string();
    assert!(err.contains("VIGIL_AGENT_CHECKS__ACOUNTS__X"), "{err}");
}

#[test]
fn typos_and_bad_schedules_are_reported_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        "[agent]\nid = \"a\"\n[checks.accounts]\ndormant_dayz = 3\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("line 4") && err.contains("dormant_dayz"),
        "{err}"
    );

    std::fs::write(&path, "[checks.packages]\nschedule = \"every hour\"\n").unwrap();
    let err = AgentConfig::load(&path, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("checks.packages.schedule"), "{err}");

    std::fs::write(&path, "[agent]\nid = \"Bad Name\"\n").unwrap();
    let err = AgentConfig::load(&path, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("agent.id"), "{err}");
}

#[test]
fn validate_reports_user_defined_check_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let checks = dir.path().join("checks.d");
    std::fs::create_dir_all(&checks).unwrap();
    std::fs::write(
        checks.join("banner.toml"),
        "[[check]]\nid = \"banner\"\ntitle = \"Banner\"\ncontrols = [\"A.99.1\"]\n\n\
         [[check.rule]]\nfile = \"/etc/issue.net\"\nmatches = '(unclosed'\n",
    )
    .unwrap();
    let path = dir.path().join("agent.toml");
    // A relative directory is taken from the configuration file's directory.
    std::fs::write(&path, "[checks.custom]\ndir = \"checks.d\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    let file = checks.join("banner.toml");
    assert!(
        err.contains(&format!(
            "{}:4: \"A.99.1\" is not an ISO/IEC 27001:2022 Annex A control",
            file.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:8: matches: invalid regex", file.display())),
        "{err}"
    );

    // Fixed, the same configuration validates and `collect` runs the check by its id.
    std::fs::write(
        checks.join("banner.toml"),
        "[[check]]\nid = \"banner\"\ntitle = \"Banner\"\ncontrols = [\"A.5.10\"]\n\n\
         [[check.rule]]\nfile = \"/etc/issue.net\"\nexists = true\n",
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args(["validate", "--config"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let root = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-agent"))
        .args([
            "collect",
            "--format",
            "json",
            "--cache-dir",
            "none",
            "--check",
            "custom.banner",
            "--config",
        ])
        .arg(&path)
        .arg("--root")
        .arg(root.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: vigil_shared::Report = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.results.len(), 1);
    assert_eq!(report.results[0].check, "custom.banner");
    assert_eq!(report.results[0].status, vigil_shared::Status::Fail);
}

#[test]
fn the_packaged_configuration_loads_the_shipped_user_checks() {
    let config = AgentConfig::load(example(), &HashMap::new()).expect("example loads");
    let registry = vigil_agent::checks::registry(&config.checks).expect("examples load");
    let custom = registry.iter().filter(|c| c.name() == "custom").count();
    assert_eq!(custom, 6);
}
