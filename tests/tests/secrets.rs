//! Secrets never reach the logs: a full run at the most verbose log level (`VIGIL_LOG=trace`)
//! — an agent enrolling with an enrollment token, another with an operator-issued token, reports,
//! reads with every role, a refused bogus token, an evaluation, an export, a token rotation, a
//! webhook with a secret failing to deliver — and then the collector's log and every agent's
//! output are searched for each token, enrollment token and webhook secret used. Zero hits.

#![allow(clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vigil_tests::{Collector, bin, fixture, free_port, http, repo, wait_until};

const WEBHOOK_SECRET: &str = "whsec-5f1e9b2c7a40d3e8b6c1a9f0e2d4c6b8";

/// Runs `vigil-agent run --once` with tracing on; answers its stderr.
fn agent_run(config: &Path) -> String {
    let output = Command::new(bin("vigil-agent"))
        .env("VIGIL_LOG", "trace")
        .args(["run", "--once", "--config"])
        .arg(config)
        .output()
        .expect("agent runs");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    stderr
}

fn agent_config(dir: &Path, url: &str, root: &Path, credentials: &str) -> std::path::PathBuf {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\n{credentials}root = \"{}\"\nstate_dir = \"{}\"\n\n[agent.labels]\nenv = \"prod\"\n\n\
             [collector]\nurl = \"{url}\"\n{}timeout_secs = 10\nmax_backoff_secs = 1\n",
            root.display(),
            dir.join("state").display(),
            if credentials.is_empty() {
                format!("enroll_token_file = \"{}\"\n", dir.join("enroll.token").display())
            } else {
                format!("token_file = \"{}\"\n", dir.join("agent.token").display())
            }
        ),
    )
    .expect("agent config");
    config
}

#[test]
fn no_token_or_secret_appears_in_any_log_of_a_full_run() {
    let dead_receiver = free_port();
    let collector = Collector::start_logging(
        &format!(
            "backend = \"sqlite\"\n\n[isms]\ndir = \"{}\"\n\n\
             [[webhooks]]\nname = \"soc\"\nurl = \"http://127.0.0.1:{dead_receiver}/hook\"\n\
             format = \"json\"\nsecret = \"{WEBHOOK_SECRET}\"\ntimeout_secs = 1\n\
             retry_initial_ms = 100\nretry_max_ms = 200\n",
            repo().join("packaging/isms").display()
        ),
        Some("trace"),
    )
    .expect("collector starts with tracing on");
    let url = collector.url();
    let mut secrets: Vec<(String, String)> = vec![("webhook secret".into(), WEBHOOK_SECRET.into())];

    let admin = collector.add_token("root-admin", "admin").expect("admin");
    let auditor = collector.add_token("audit", "auditor").expect("auditor");
    let viewer = collector.add_token("view", "viewer").expect("viewer");
    let enrollment = collector
        .admin(&["enroll-token", "create", "--name", "wave-1"])
        .expect("enrollment token");
    let issued = collector.add_agent("web-02").expect("agent token");
    for (what, token) in [
        ("admin token", &admin),
        ("auditor token", &auditor),
        ("viewer token", &viewer),
        ("enrollment token", &enrollment),
        ("operator-issued agent token", &issued),
    ] {
        secrets.push((what.into(), token.clone()));
    }

    // An agent enrolling, one with its issued token.
    let enrolling = tempfile::tempdir().expect("dir");
    std::fs::write(
        enrolling.path().join("enroll.token"),
        format!("{enrollment}\n"),
    )
    .expect("token");
    let config = agent_config(enrolling.path(), &url, &fixture("misconfigured"), "");
    let mut agent_logs = vec![agent_run(&config), agent_run(&config)];
    let granted: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(enrolling.path().join("state/enrollment.json")).expect("record"),
    )
    .expect("json");
    let enrolled = granted["token"].as_str().expect("token").to_string();
    secrets.push(("enrolled agent token".into(), enrolled));

    let issued_dir = tempfile::tempdir().expect("dir");
    std::fs::write(issued_dir.path().join("agent.token"), format!("{issued}\n")).expect("token");
    let config = agent_config(
        issued_dir.path(),
        &url,
        &fixture("healthy"),
        "id = \"web-02\"\n",
    );
    agent_logs.push(agent_run(&config));

    // Reads with every role, a bogus token, an evaluation, an export.
    for token in [&admin, &auditor, &viewer] {
        let (status, _) = collector.get("/api/v1/hosts", token).expect("hosts");
        assert_eq!(status, 200);
    }
    let bogus = "vgl_0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
    secrets.push(("bogus token".into(), bogus.into()));
    let (status, _) = collector.get("/api/v1/hosts", bogus).expect("refused");
    assert_eq!(status, 401);
    let evaluation = http()
        .post(format!("{url}/api/v1/evaluations"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .expect("evaluation");
    assert_eq!(evaluation.status().as_u16(), 200);
    let export = http()
        .get(format!("{url}/api/v1/export?from=2000-01-01&to=2100-01-01"))
        .bearer_auth(&auditor)
        .send()
        .expect("export");
    assert_eq!(export.status().as_u16(), 200);

    // A rotation prints a new token; the old one stops working.
    let rotated = collector
        .admin(&["tokens", "rotate", "view"])
        .expect("rotation");
    let rotated = rotated
        .split_whitespace()
        .find(|w| w.starts_with("vgl_"))
        .unwrap_or_else(|| panic!("a new token in {rotated:?}"))
        .to_string();
    secrets.push(("rotated viewer token".into(), rotated));

    // The webhook has failed to deliver at least once (its receiver is closed).
    assert!(
        wait_until(Duration::from_secs(20), || collector
            .log()
            .contains("webhook=soc")),
        "the webhook was attempted: {}",
        collector.log()
    );

    let mut logs = vec![("collector log".to_string(), collector.log())];
    logs.extend(
        agent_logs
            .into_iter()
            .enumerate()
            .map(|(i, l)| (format!("agent run {i}"), l)),
    );
    let total: usize = logs.iter().map(|(_, l)| l.len()).sum();
    assert!(
        total > 10_000,
        "the logs are verbose enough to mean something ({total} bytes)"
    );
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        // The whole token, and its secret part without the well-known prefix.
        let needles = [secret.as_str(), secret.get(4..).unwrap_or(secret)];
        for (name, log) in &logs {
            if needles.iter().any(|n| n.len() >= 16 && log.contains(n)) {
                leaks.push(format!("{what} in the {name}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets in logs: {leaks:?}");
}
