//! The agent and the collector together, as real processes on loopback: an agent in `run` mode
//! pushes its evidence; the host and its evidence are visible through the API; a collector
//! killed with SIGKILL loses nothing it acknowledged; an agent spools while the collector is
//! down and catches up, exactly once; one agent's token cannot write another agent's host.

#![allow(clippy::expect_used)] // test helpers outside #[test] fns

use std::time::Duration;

use vigil_tests::{AgentSetup, Collector, fixture, wait_until};

const MISCONFIGURED_ID: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const HEALTHY_ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn results_of(host: &serde_json::Value) -> Vec<&serde_json::Value> {
    host["results"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

fn result<'a>(host: &'a serde_json::Value, check: &str) -> Option<&'a serde_json::Value> {
    results_of(host).into_iter().find(|r| r["check"] == check)
}

fn history_len(collector: &Collector, token: &str, host: &str, check: &str) -> usize {
    let (status, body) = collector
        .get(
            &format!("/api/v1/hosts/{host}/results?check={check}"),
            token,
        )
        .expect("history request");
    assert_eq!(status, 200, "{body}");
    body["results"].as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn an_agent_pushes_and_its_evidence_is_visible_through_the_api() {
    let collector = Collector::start().expect("collector starts");
    let token = collector.add_agent("web-01").expect("agent registered");
    let viewer = collector
        .add_token("alice", "viewer")
        .expect("viewer token");
    let agent = AgentSetup::new(
        "web-01",
        &token,
        &collector.url(),
        &fixture("misconfigured"),
    )
    .expect("agent config");

    let output = agent.run_once().expect("agent runs");
    assert!(
        output.status.success(),
        "run --once failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        agent.spooled(),
        0,
        "the acknowledged report leaves the spool"
    );

    let (status, hosts) = collector.get("/api/v1/hosts", &viewer).expect("hosts");
    assert_eq!(status, 200, "{hosts}");
    let listed = hosts["hosts"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{hosts}");
    assert_eq!(listed[0]["machine_id"], MISCONFIGURED_ID);
    assert_eq!(listed[0]["hostname"], "misconfigured-01");

    let (status, host) = collector
        .get(&format!("/api/v1/hosts/{MISCONFIGURED_ID}"), &viewer)
        .expect("host detail");
    assert_eq!(status, 200, "{host}");
    let uid0 = result(&host, "accounts.uid0").expect("accounts.uid0 stored");
    assert_eq!(uid0["status"], "fail");
    let offenders: Vec<&str> = uid0["evidence"]["offenders"]
        .as_array()
        .map(|o| o.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(offenders, ["toor"]);
    assert!(
        results_of(&host).len() >= 15,
        "every check output is stored: {host}"
    );

    // Agents write; they do not read.
    let (status, _) = collector.get("/api/v1/hosts", &token).expect("request");
    assert_eq!(status, 403);
    let (status, _) = collector
        .get("/api/v1/hosts", "vgl_not_a_token")
        .expect("request");
    assert_eq!(status, 401);

    // Secrets never reach the logs.
    for secret in [&token, &viewer] {
        assert!(
            !collector.log().contains(secret.as_str()),
            "token in collector log"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains(secret.as_str()), "token in agent log");
    }
}

#[test]
fn acknowledged_reports_survive_a_collector_killed_with_sigkill() {
    let mut collector = Collector::start().expect("collector starts");
    let token = collector.add_agent("web-01").expect("agent registered");
    let viewer = collector
        .add_token("alice", "auditor")
        .expect("auditor token");
    let agent = AgentSetup::new("web-01", &token, &collector.url(), &fixture("healthy"))
        .expect("agent config");
    for _ in 0..3 {
        let output = agent.run_once().expect("agent runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    collector.kill();
    collector
        .spawn()
        .expect("collector restarts on the same data");
    assert_eq!(
        history_len(&collector, &viewer, HEALTHY_ID, "accounts.uid0"),
        3
    );
    let (status, host) = collector
        .get(&format!("/api/v1/hosts/{HEALTHY_ID}"), &viewer)
        .expect("host detail");
    assert_eq!(status, 200);
    assert_eq!(
        result(&host, "encryption.root").map(|r| r["status"].clone()),
        Some("pass".into())
    );
}

#[test]
fn a_second_agent_cannot_write_the_first_agents_host() {
    let collector = Collector::start().expect("collector starts");
    let first = collector.add_agent("first").expect("agent registered");
    let second = collector.add_agent("second").expect("agent registered");
    let viewer = collector.add_token("v", "viewer").expect("viewer token");
    let root = fixture("healthy");

    let a = AgentSetup::new("first", &first, &collector.url(), &root).expect("config");
    assert!(a.run_once().expect("runs").status.success());

    // Same host (same machine id), other agent's credential.
    let b = AgentSetup::new("second", &second, &collector.url(), &root).expect("config");
    let output = b.run_once().expect("runs");
    assert_eq!(
        output.status.code(),
        Some(3),
        "refused reports are not delivered"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert_eq!(b.spooled(), 0);
    let rejected = b.spool_dir().join("rejected");
    assert_eq!(
        std::fs::read_dir(&rejected).map(|d| d.count()).unwrap_or(0),
        2,
        "the refused report and its reason are kept for inspection"
    );

    // A token used under another agent's name is refused too.
    let c = AgentSetup::new(
        "first",
        &second,
        &collector.url(),
        &fixture("misconfigured"),
    )
    .expect("config");
    assert_eq!(c.run_once().expect("runs").status.code(), Some(3));

    assert_eq!(
        history_len(&collector, &viewer, HEALTHY_ID, "accounts.uid0"),
        1
    );
    let (_, hosts) = collector.get("/api/v1/hosts", &viewer).expect("hosts");
    let listed = hosts["hosts"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        listed.len(),
        1,
        "nothing from the refused agents was stored: {hosts}"
    );
    assert_eq!(listed[0]["agent"], "first");
}

#[test]
fn an_agent_spools_while_the_collector_is_down_and_catches_up_exactly_once() {
    let mut collector = Collector::start().expect("collector starts");
    let token = collector.add_agent("web-01").expect("agent registered");
    let viewer = collector.add_token("v", "viewer").expect("viewer token");
    collector.stop().expect("collector stops cleanly");

    let agent = AgentSetup::new("web-01", &token, &collector.url(), &fixture("healthy"))
        .expect("agent config");
    // Only the inventory check, every second: each report holds exactly one result.
    let mut config = std::fs::read_to_string(agent.config_path()).expect("config");
    config.push_str(
        "\n[checks.packages]\nenabled = false\n[checks.accounts]\nenabled = false\n\
         [checks.encryption]\nenabled = false\n[checks.inventory]\nschedule = \"* * * * * *\"\n",
    );
    std::fs::write(agent.config_path(), config).expect("config written");
    let mut process = agent.spawn().expect("agent starts");

    assert!(
        wait_until(Duration::from_secs(20), || agent.spooled() >= 4),
        "reports must pile up in the spool while the collector is down: {}",
        agent.log()
    );
    collector.spawn().expect("collector comes back");
    assert!(
        wait_until(Duration::from_secs(30), || agent.spooled() == 0),
        "the spool must drain once the collector is back: {}",
        agent.log()
    );
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(process.id().to_string())
        .status()
        .expect("signal sent");
    let status = process.wait().expect("agent exits");
    assert!(
        status.success(),
        "agent exits cleanly on SIGTERM: {}",
        agent.log()
    );

    // Every sequence number handed out was delivered exactly once.
    let last_seq: usize = std::fs::read_to_string(agent.dir.path().join("state/seq"))
        .expect("seq file")
        .trim()
        .parse()
        .expect("number");
    let pending = agent.spooled();
    let stored = history_len(&collector, &viewer, HEALTHY_ID, "inventory.host");
    assert_eq!(stored + pending, last_seq, "{}", agent.log());
    assert!(stored >= 4);
}

#[test]
fn a_broken_isms_is_reported_precisely_and_the_collector_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pack = dir.path().join("isms");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/isms"))
        .arg(&pack)
        .status()
        .expect("cp runs");
    assert!(status.success());
    let edit = |file: &str, from: &str, to: &str| {
        let path = pack.join(file);
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(text.contains(from), "{file} lacks {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("writable");
    };
    edit(
        "rules/patching.toml",
        "controls = [\"A.8.8\"]",
        "controls = [\"A.8.88\"]",
    );
    edit(
        "kpis.toml",
        "by = \"security-manager@example.com\" }",
        "by = \"\" }",
    );
    edit(
        "kpis.toml",
        "schedule = \"0 6 * * *\"",
        "schedule = \"0 6 * *\"",
    );

    let output = std::process::Command::new(vigil_tests::bin("vigil-collector"))
        .args(["validate", "--isms"])
        .arg(&pack)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rules/patching.toml:15:12: rule patch.security-updates: \"A.8.88\" is not an ISO/IEC 27001:2022 Annex A control (did you mean \"A.8.8\"?)"), "{stderr}");
    assert!(stderr.contains("kpis.toml:17:43: kpi kpi.patch-security: analysis.by (who analyses and evaluates) is empty"), "{stderr}");
    assert!(
        stderr.contains("kpis.toml")
            && stderr.contains("measure.schedule is not a valid cron expression"),
        "{stderr}"
    );

    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\n[storage]\ndata_dir = \"{}\"\n[isms]\ndir = \"{}\"\n",
            vigil_tests::free_port(),
            dir.path().join("data").display(),
            pack.display()
        ),
    )
    .expect("config written");
    let output = std::process::Command::new(vigil_tests::bin("vigil-collector"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "serve must refuse a broken ISMS"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has 3 problem(s)"), "{stderr}");
    assert!(stderr.contains("A.8.88"), "{stderr}");

    let output = std::process::Command::new(vigil_tests::bin("vigil-collector"))
        .args([
            "validate",
            "--isms",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/isms"),
        ])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("ok (93 controls, 50 rules, 16 KPIs, 6 objectives")
    );
}

#[test]
fn user_defined_checks_and_drop_ins_run_in_the_scheduler_and_reach_the_collector() {
    let collector = Collector::start().expect("collector starts");
    let token = collector.add_agent("web-01").expect("agent registered");
    let viewer = collector
        .add_token("alice", "viewer")
        .expect("viewer token");
    let agent = AgentSetup::new(
        "web-01",
        &token,
        &collector.url(),
        &fixture("misconfigured"),
    )
    .expect("agent config");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/checks.d");
    let mut config = std::fs::read_to_string(agent.config_path()).expect("config");
    config.push_str(&format!(
        "\n[checks.custom]\ndir = \"{}\"\nallow_commands = [\"/usr/bin/systemctl is-enabled\"]\n",
        examples.display()
    ));
    std::fs::write(agent.config_path(), config).expect("config written");

    let output = agent.run_once().expect("agent runs");
    assert!(
        output.status.success(),
        "run --once failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, host) = collector
        .get(&format!("/api/v1/hosts/{MISCONFIGURED_ID}"), &viewer)
        .expect("host detail");
    assert_eq!(status, 200, "{host}");
    let openssl = result(&host, "custom.openssl_patched").expect("user-defined result stored");
    assert_eq!(openssl["status"], "fail");
    assert_eq!(openssl["controls"], serde_json::json!(["A.8.8"]));
    let edr = result(&host, "dropin.edr_health").expect("drop-in result stored");
    assert_eq!(edr["status"], "fail");
    assert_eq!(edr["controls"], serde_json::json!(["A.8.7", "A.8.16"]));
    let broken = result(&host, "dropin.db_backup").expect("broken drop-in reported");
    assert_eq!(broken["status"], "error");
}
