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
