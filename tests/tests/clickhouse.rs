//! The collector on a real ClickHouse server (a private `clickhouse-server` started for the
//! test, see `vigil_collector::store::clickhouse::test_server`): an agent pushes, its evidence
//! is served from ClickHouse; ClickHouse stops while the agent keeps reporting — the collector
//! stays up and answers 503, the agent keeps its reports — and after ClickHouse returns every
//! acknowledged report is stored exactly once.
//!
//! Skips when clickhouse-server is not installed, unless `VIGIL_CLICKHOUSE_REQUIRED=1`
//! (`tests/run` sets it), which makes absence a failure.

#![allow(clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use std::time::Duration;

use vigil_collector::store::clickhouse::test_server::TestServer;
use vigil_tests::{AgentSetup, Collector, fixture, http, wait_until};

const MISCONFIGURED_ID: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// One number from a ClickHouse query over HTTP.
fn ch_number(server: &TestServer, sql: &str) -> u64 {
    let body = http()
        .post(server.url())
        .body(sql.to_string())
        .send()
        .expect("query ClickHouse")
        .text()
        .expect("ClickHouse answer");
    body.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{sql}: {body}"))
}

#[test]
fn evidence_survives_a_clickhouse_outage_exactly_once() {
    let Some(mut server) = TestServer::start_or_skip("clickhouse outage") else {
        return;
    };
    let collector = Collector::start_with_storage(&format!(
        "backend = \"clickhouse\"\n\n[storage.clickhouse]\nurl = \"{}\"\ndatabase = \"vigil_e2e\"\n",
        server.url()
    ))
    .expect("collector starts on ClickHouse");
    let token = collector.add_agent("web-01").expect("agent registered");
    let viewer = collector.add_token("alice", "viewer").expect("viewer");
    let agent = AgentSetup::new(
        "web-01",
        &token,
        &collector.url(),
        &fixture("misconfigured"),
    )
    .expect("agent config");

    for _ in 0..2 {
        agent.run_once().expect("agent runs");
    }
    assert_eq!(agent.spooled(), 0, "acknowledged: {}", agent.log());
    let (status, host) = collector
        .get(&format!("/api/v1/hosts/{MISCONFIGURED_ID}"), &viewer)
        .expect("host detail");
    assert_eq!(status, 200);
    assert_eq!(host["host"]["last_seq"], 2, "{}", host["host"]);

    // ClickHouse goes away; the agent keeps reporting.
    server.stop();
    for _ in 0..3 {
        agent.run_once().expect("agent runs");
    }
    assert_eq!(agent.spooled(), 3, "refused reports stay in the spool");
    let health = http()
        .get(format!("{}/healthz", collector.url()))
        .send()
        .expect("the collector is still up");
    assert!(health.status().is_success());
    let ingest = http()
        .get(format!("{}/readyz", collector.url()))
        .send()
        .expect("readyz answers");
    assert_eq!(ingest.status().as_u16(), 503, "not ready without its store");

    // ClickHouse returns; the spool drains.
    server.resume().expect("ClickHouse restarts");
    assert!(
        wait_until(Duration::from_secs(60), || {
            let _ = agent.run_once();
            agent.spooled() == 0
        }),
        "spool drained: {}",
        agent.log()
    );
    let acknowledged = collector
        .get(&format!("/api/v1/hosts/{MISCONFIGURED_ID}"), &viewer)
        .expect("host detail")
        .1["host"]["last_seq"]
        .as_u64()
        .expect("last_seq");
    assert!(
        acknowledged >= 5,
        "five reports or more, got {acknowledged}"
    );
    let reports = ch_number(&server, "SELECT count() FROM vigil_e2e.reports");
    let distinct = ch_number(
        &server,
        "SELECT uniqExact(agent, seq) FROM vigil_e2e.reports",
    );
    assert_eq!(reports, acknowledged, "every acknowledged report, once");
    assert_eq!(distinct, acknowledged);
    let results = ch_number(&server, "SELECT count() FROM vigil_e2e.results");
    let distinct_results = ch_number(
        &server,
        "SELECT uniqExact(agent, seq, check_id) FROM vigil_e2e.results",
    );
    assert!(results > 0);
    assert_eq!(results, distinct_results, "no measurement doubled");
}

/// POST with a bearer token and a JSON body; status and JSON answer.
fn post(
    collector: &Collector,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = http()
        .post(format!("{}{path}", collector.url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .expect("POST answered");
    let status = response.status().as_u16();
    let text = response.text().expect("answer body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn the_isms_runs_on_clickhouse_from_reports_to_a_verified_export() {
    let Some(server) = TestServer::start_or_skip("clickhouse ISMS end to end") else {
        return;
    };
    let pack = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms");
    let collector = Collector::start_with_storage(&format!(
        "backend = \"clickhouse\"\n\n[storage.clickhouse]\nurl = \"{}\"\ndatabase = \"vigil_isms\"\n\n\
         [isms]\ndir = \"{}\"\n",
        server.url(),
        pack.display()
    ))
    .expect("collector starts on ClickHouse with the default ISMS pack");
    // The default pack's scope is the prod and staging hosts.
    let token = collector
        .admin(&["agents", "add", "web-01", "--labels", "env=prod"])
        .expect("agent registered");
    let admin = collector.add_token("root", "admin").expect("admin");
    let auditor = collector.add_token("audit", "auditor").expect("auditor");
    let agent = AgentSetup::new(
        "web-01",
        &token,
        &collector.url(),
        &fixture("misconfigured"),
    )
    .expect("agent config");
    agent.run_once().expect("agent runs");
    assert_eq!(agent.spooled(), 0, "acknowledged: {}", agent.log());

    // An evaluation on demand opens the nonconformities of the rules without a grace period.
    let (status, evaluation) = post(
        &collector,
        "/api/v1/evaluations",
        &admin,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{evaluation}");
    assert_eq!(evaluation["hosts"], 1, "{evaluation}");
    let opened = evaluation["nonconformities_opened"]
        .as_u64()
        .expect("opened count");
    assert!(opened > 0, "{evaluation}");
    let (status, register) = collector
        .get("/api/v1/nonconformities", &auditor)
        .expect("register");
    assert_eq!(status, 200);
    let ncs = register["nonconformities"].as_array().expect("list");
    assert_eq!(ncs.len() as u64, opened, "{register}");
    assert!(ncs.iter().all(|nc| nc["state"] == "open"), "{register}");
    let ids: Vec<u64> = ncs.iter().filter_map(|nc| nc["id"].as_u64()).collect();
    let expected: Vec<u64> = (1..=opened).collect();
    assert_eq!(ids, expected, "ids allocated 1, 2, … in order");
    let nc = ncs
        .iter()
        .find(|nc| nc["source"] == "rule" && nc["machine_id"] == MISCONFIGURED_ID)
        .expect("a rule nonconformity on the host");
    let id = nc["id"].as_u64().expect("id");

    // The corrective-action workflow.
    let (status, planned) = post(
        &collector,
        &format!("/api/v1/nonconformities/{id}/actions"),
        &admin,
        &serde_json::json!({"action": "plan", "owner": "alice", "root_cause": "drift",
                            "corrective_action": "re-apply the baseline", "due": "2030-01-31"}),
    );
    assert_eq!(status, 200, "{planned}");
    assert_eq!(planned["nonconformity"]["state"], "action_planned");
    let (status, refused) = post(
        &collector,
        &format!("/api/v1/nonconformities/{id}/actions"),
        &admin,
        &serde_json::json!({"action": "resolve", "note": "rules resolve themselves"}),
    );
    assert_eq!(status, 409, "{refused}");
    let (status, _) = post(
        &collector,
        &format!("/api/v1/nonconformities/{id}/actions"),
        &auditor,
        &serde_json::json!({"action": "close", "reason": "x"}),
    );
    assert_eq!(status, 403, "auditors change nothing");
    let (status, _) = post(
        &collector,
        "/api/v1/nonconformities/999999/actions",
        &admin,
        &serde_json::json!({"action": "close", "reason": "x"}),
    );
    assert_eq!(status, 404);
    let (status, closed) = post(
        &collector,
        &format!("/api/v1/nonconformities/{id}/actions"),
        &admin,
        &serde_json::json!({"action": "close", "reason": "accepted by management"}),
    );
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["nonconformity"]["state"], "closed");
    let (status, detail) = collector
        .get(&format!("/api/v1/nonconformities/{id}"), &auditor)
        .expect("one nonconformity");
    assert_eq!(status, 200);
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["opened", "action_planned", "closed"], "{detail}");
    assert_eq!(detail["events"][1]["actor"], "root");

    // A second evaluation keeps the register: nothing reopened twice, the closed one stays.
    let (status, again) = post(
        &collector,
        "/api/v1/evaluations",
        &admin,
        &serde_json::json!({}),
    );
    assert_eq!(status, 200, "{again}");
    let (_, register) = collector
        .get("/api/v1/nonconformities", &auditor)
        .expect("register");
    let states: Vec<(u64, String)> = register["nonconformities"]
        .as_array()
        .expect("list")
        .iter()
        .map(|nc| {
            (
                nc["id"].as_u64().unwrap_or(0),
                nc["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(states.contains(&(id, "closed".to_string())), "{register}");
    let registered = states.len() as u64;
    assert!(registered >= opened, "{register}");

    // The other ISMS reads answer from ClickHouse.
    for path in [
        "/api/v1/verdicts",
        "/api/v1/soa",
        "/api/v1/kpis",
        "/api/v1/objectives",
    ] {
        let (status, body) = collector.get(path, &auditor).expect(path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, verdicts) = collector
        .get(
            &format!("/api/v1/verdicts?host={MISCONFIGURED_ID}"),
            &auditor,
        )
        .expect("verdicts");
    assert!(
        verdicts["verdicts"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["verdict"] == "fail")),
        "{verdicts}"
    );

    // The auditor's evidence bundle, checked by `export verify`.
    let today = chrono::Utc::now().date_naive();
    let response = http()
        .get(format!(
            "{}/api/v1/export?from={}&to={}",
            collector.url(),
            today.pred_opt().unwrap_or(today),
            today
        ))
        .bearer_auth(&auditor)
        .send()
        .expect("export answered");
    assert_eq!(response.status().as_u16(), 200);
    let bundle = collector.dir.path().join("bundle.zip");
    std::fs::write(&bundle, response.bytes().expect("bundle bytes")).expect("bundle written");
    let output = std::process::Command::new(vigil_tests::bin("vigil-collector"))
        .args(["export", "verify"])
        .arg(&bundle)
        .output()
        .expect("export verify runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The state is in ClickHouse.
    assert_eq!(
        ch_number(
            &server,
            "SELECT uniqExact(id) FROM vigil_isms.nonconformities"
        ),
        registered
    );
    assert!(ch_number(&server, "SELECT count() FROM vigil_isms.isms_writes") >= 3);
}
