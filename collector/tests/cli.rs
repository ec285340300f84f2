//! The `vigil-collector` binary end to end: configuration checks and exit codes, principal
//! management (a token is printed once, on stdout alone), and `serve` stopping cleanly on
//! SIGTERM after pushes made with a token issued by the CLI.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_vigil-collector");

fn write_config(dir: &Path, listen: &str, extra: &str) -> PathBuf {
    let path = dir.join("collector.toml");
    let text = format!(
        "[server]\nlisten = \"{listen}\"\n{extra}\n[storage]\ndata_dir = \"{}\"\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("VIGIL_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn is_token(line: &str) -> bool {
    line.len() == 68
        && line.starts_with("vgl_")
        && line[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn validate_reports_problems_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:8470", "");
    let out = run(&config, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(": ok (listen 127.0.0.1:8470, plain http"));
    assert!(
        !dir.path().join("data").exists(),
        "validate must not create the data directory"
    );

    let config = write_config(dir.path(), "127.0.0.1:8470", "max_bodyy = 1");
    let out = run(&config, &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown field `max_bodyy`"),
        "{}",
        text(&out.stderr)
    );

    let config = write_config(
        dir.path(),
        "127.0.0.1:8470",
        "tls_cert = \"/nonexistent.pem\"",
    );
    let out = run(&config, &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("server.tls_key"),
        "{}",
        text(&out.stderr)
    );

    let extra = "tls_cert = \"/nonexistent.pem\"\ntls_key = \"/nonexistent.key\"";
    let config = write_config(dir.path(), "127.0.0.1:8470", extra);
    let out = run(&config, &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/nonexistent.pem"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&dir.path().join("missing.toml"), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[test]
fn principals_are_managed_and_tokens_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:8470", "");

    let out = run(
        &config,
        &["agents", "add", "web-01", "--labels", "env=prod,site=paris"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim_end().to_string();
    assert!(
        is_token(&token),
        "stdout must hold the token alone: {token:?}"
    );
    assert!(text(&out.stderr).contains("shown only this once"));

    let out = run(&config, &["agents", "add", "web-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&config, &["agents", "add", "web-02", "--labels", "env"]);
    assert_eq!(out.status.code(), Some(2), "bad labels are a usage error");

    let out = run(&config, &["tokens", "add", "grafana", "--role", "viewer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let viewer = text(&out.stdout).trim_end().to_string();
    assert!(is_token(&viewer));
    let out = run(&config, &["tokens", "add", "sneaky", "--role", "agent"]);
    assert_eq!(out.status.code(), Some(2));

    let list = text(&run(&config, &["agents", "list"]).stdout);
    assert!(
        list.contains("web-01") && list.contains("env=prod,site=paris"),
        "{list}"
    );
    assert!(!list.contains("grafana"), "{list}");
    assert!(
        !list.contains(&token[4..]) && !list.contains(&token[4..20]),
        "{list}"
    );
    let list = text(&run(&config, &["tokens", "list"]).stdout);
    assert!(
        list.contains("grafana") && list.contains("viewer"),
        "{list}"
    );

    let out = run(&config, &["agents", "revoke", "grafana"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("vigil-collector tokens"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&config, &["agents", "revoke", "web-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&run(&config, &["agents", "list"]).stdout).contains("revoked"));

    let out = run(&config, &["agents", "rotate", "web-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rotated = text(&out.stdout).trim_end().to_string();
    assert!(is_token(&rotated) && rotated != token);
    assert!(text(&run(&config, &["agents", "list"]).stdout).contains("active"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn report_json(agent: &str) -> serde_json::Value {
    serde_json::json!({
        "schema": "vigil.report.v1",
        "agent": {"id": agent, "version": "0.1.0"},
        "host": {"machine_id": "3d1219c7c4c5404aaa1f6d2a48adfda4", "hostname": "web-01",
                 "os": {"id": "debian", "version_id": "12"}},
        "batch_id": "6f1c1b0e-2f7b-4d8e-9a51-3c1f0b9d2a10",
        "seq": 1,
        "sent_at": "2026-06-01T12:00:00Z",
        "results": [{
            "check": "accounts.uid0", "controls": ["A.8.2"],
            "observed_at": "2026-06-01T12:00:00Z", "duration_ms": 3,
            "status": "pass", "summary": "only root has uid 0"
        }]
    })
}

#[test]
fn serve_ingests_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"), "");
    let out = run(&config, &["agents", "add", "web-01"]);
    let token = text(&out.stdout).trim_end().to_string();
    let out = run(&config, &["tokens", "add", "grafana", "--role", "auditor"]);
    let auditor = text(&out.stdout).trim_end().to_string();

    let child = Command::new(BIN)
        .args(["serve", "--log", "debug", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    runtime.block_on(async {
        vigil_collector::tls::install_crypto_provider();
        let client = reqwest::Client::new();
        let mut up = false;
        for _ in 0..500 {
            if client.get(format!("{base}/readyz")).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(up, "the collector did not come up");
        // The agent registers its key on first use, then signs.
        let key = vigil_shared::signing::SigningKey::from_bytes(&[5; 32]);
        let registered = client
            .put(format!("{base}/api/v1/agent/key"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "public_key": vigil_shared::signing::public_key_hex(&key.verifying_key())
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 200);
        let json = serde_json::to_vec(&report_json("web-01")).unwrap();
        let body = vigil_shared::codec::gzip(&json).unwrap();
        let response = client
            .post(format!("{base}/api/v1/reports"))
            .bearer_auth(&token)
            .header(
                vigil_shared::signing::SIGNATURE_HEADER,
                vigil_shared::signing::SignatureHeader::sign(&key, &json).to_value(),
            )
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let hosts: serde_json::Value = client
            .get(format!("{base}/api/v1/hosts"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(hosts["hosts"][0]["hostname"], "web-01");
    });

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let logs = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{logs}");
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(logs.contains("collector stopped"), "{logs}");
    assert!(logs.contains("report ingested"), "{logs}");
    assert!(
        !logs.contains(&token[4..]) && !logs.contains(&auditor[4..]),
        "{logs}"
    );
}

#[test]
fn webhook_settings_are_checked_and_the_outbox_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "[[webhooks]]\nname = \"soc\"\nurl = \"http://127.0.0.1:9/x\"\nsecret = \"short\"\n";
    let config = write_config(dir.path(), "127.0.0.1:8470", "");
    let text_with =
        |webhook: &str| format!("{}\n{webhook}", std::fs::read_to_string(&config).unwrap());
    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, text_with(bad)).unwrap();
    let out = run(&bad_config, &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("webhooks[0] (\"soc\"): the secret must be at least 16 bytes"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("short\""),
        "the secret is not echoed"
    );

    let good = bad.replace("\"short\"", "\"0123456789abcdef-cli\"");
    let good_config = dir.path().join("good.toml");
    std::fs::write(&good_config, text_with(&good)).unwrap();
    let out = run(&good_config, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&good_config, &["webhooks"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no webhook outbox yet"));
}
