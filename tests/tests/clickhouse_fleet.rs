//! Scale-out on one ClickHouse database: two collector processes share it; agents report to
//! either (a load balancer), and a report retried through the other collector — one after the
//! other, or both at once — is stored once: every acknowledged report is there exactly once,
//! and no measurement is counted twice.
//!
//! Skips when clickhouse-server is not installed, unless `VIGIL_CLICKHOUSE_REQUIRED=1`.

#![allow(clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use std::process::Command;

use vigil_collector::store::clickhouse::test_server::TestServer;
use vigil_shared::Report;
use vigil_tests::{Collector, bin, fixture, http};

const AGENTS: usize = 4;
const REPORTS: u64 = 9;

fn collector(server: &TestServer) -> Collector {
    Collector::start_with_storage(&format!(
        "backend = \"clickhouse\"\n\n[storage.clickhouse]\nurl = \"{}\"\ndatabase = \"vigil_fleet\"\n",
        server.url()
    ))
    .expect("collector starts on ClickHouse")
}

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

/// Pushes one report; answers the HTTP status and the answer's `status` field.
fn push(base: &str, token: &str, report: &Report) -> (u16, String) {
    let (body, name, value) = vigil_tests::signed_body(report).expect("gzip");
    let response = http()
        .post(format!("{base}/api/v1/reports"))
        .bearer_auth(token)
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .header(name, value)
        .body(body)
        .send()
        .expect("push");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().unwrap_or_default();
    (
        status,
        body["status"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn two_collectors_share_one_database_without_duplicates() {
    let Some(server) = TestServer::start_or_skip("clickhouse fleet") else {
        return;
    };
    let a = collector(&server);
    let b = collector(&server);
    let output = Command::new(bin("vigil-agent"))
        .args([
            "collect",
            "--format",
            "json",
            "--cache-dir",
            "none",
            "--root",
        ])
        .arg(fixture("misconfigured"))
        .output()
        .expect("agent runs");
    assert!(output.status.success());
    let template: Report = serde_json::from_slice(&output.stdout).expect("a report");
    let per_report = template.results.len() as u64;

    // Principals live in ClickHouse: an agent added through A authenticates at B.
    let tokens: Vec<String> = (0..AGENTS)
        .map(|i| {
            a.add_signing_agent(&format!("fleet-{i}"))
                .expect("agent added")
        })
        .collect();
    let viewer = b.add_token("viewer", "viewer").expect("viewer");
    let mut outcomes: Vec<(u16, String)> = Vec::new();
    std::thread::scope(|scope| {
        let mut lanes = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let (a, b, template) = (&a, &b, &template);
            lanes.push(scope.spawn(move || {
                let mut seen = Vec::new();
                for seq in 1..=REPORTS {
                    let mut report = template.clone();
                    report.agent.id = format!("fleet-{i}");
                    report.host.machine_id = format!("{i:032x}");
                    report.host.hostname = format!("fleet-{i}");
                    report.seq = seq;
                    report.batch_id = format!("00000000-0000-4000-8000-{i:04x}{seq:08x}");
                    match seq % 3 {
                        // Through one collector or the other.
                        0 => seen.push(push(&a.url(), token, &report)),
                        1 => {
                            // The answer was lost; the agent retries through the other one.
                            seen.push(push(&a.url(), token, &report));
                            seen.push(push(&b.url(), token, &report));
                        }
                        _ => {
                            // The same report through both at the same time.
                            let (x, y) = std::thread::scope(|s| {
                                let x = s.spawn(|| push(&a.url(), token, &report));
                                let y = s.spawn(|| push(&b.url(), token, &report));
                                (x.join().expect("push"), y.join().expect("push"))
                            });
                            seen.push(x);
                            seen.push(y);
                        }
                    }
                }
                seen
            }));
        }
        for lane in lanes {
            outcomes.extend(lane.join().expect("lane"));
        }
    });
    assert!(
        outcomes.iter().all(|(status, _)| *status == 200),
        "{outcomes:?}\nA: {}\nB: {}",
        a.log(),
        b.log()
    );
    let stored = outcomes.iter().filter(|(_, s)| s == "stored").count() as u64;
    let duplicates = outcomes.iter().filter(|(_, s)| s == "duplicate").count() as u64;
    let acknowledged = AGENTS as u64 * REPORTS;
    // Sequential retries are recognised; simultaneous ones may both store (the reads keep one).
    assert!(stored >= acknowledged, "{outcomes:?}");
    assert!(duplicates >= AGENTS as u64 * 3, "{outcomes:?}");

    // Logically once: distinct reports and measurements, through ClickHouse and both APIs.
    assert_eq!(
        ch_number(
            &server,
            "SELECT uniqExact(agent, seq) FROM vigil_fleet.reports"
        ),
        acknowledged
    );
    assert_eq!(
        ch_number(
            &server,
            "SELECT uniqExact(agent, seq, check_id) FROM vigil_fleet.results \
             WHERE (agent, seq) IN (SELECT agent, seq FROM vigil_fleet.reports)"
        ),
        acknowledged * per_report
    );
    for c in [&a, &b] {
        let (status, hosts) = c.get("/api/v1/hosts", &viewer).expect("hosts");
        assert_eq!(status, 200);
        let hosts = hosts["hosts"].as_array().expect("hosts array").clone();
        assert_eq!(hosts.len(), AGENTS, "{hosts:?}");
        for host in hosts {
            assert_eq!(host["last_seq"], REPORTS, "{host}");
            let counts = &host["status_counts"];
            let total: u64 = ["pass", "fail", "error", "no_data"]
                .iter()
                .map(|k| counts[k].as_u64().unwrap_or(0))
                .sum();
            assert_eq!(total, per_report, "latest results counted once: {host}");
        }
    }
}

/// POST with a bearer token and an empty JSON body; answers status and body.
fn post(c: &Collector, path: &str, token: &str) -> (u16, serde_json::Value) {
    let response = http()
        .post(format!("{}{path}", c.url()))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .send()
        .expect("POST answered");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or_default())
}

#[test]
fn two_collectors_with_an_isms_elect_one_evaluator() {
    let Some(server) = TestServer::start_or_skip("clickhouse evaluator election") else {
        return;
    };
    let pack = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms");
    let start = || {
        Collector::start_with_storage(&format!(
            "backend = \"clickhouse\"\n\n[storage.clickhouse]\nurl = \"{}\"\n\
             database = \"vigil_election\"\n\n[isms]\ndir = \"{}\"\n",
            server.url(),
            pack.display()
        ))
        .expect("collector starts on ClickHouse with an ISMS")
    };
    let first = start();
    // The first collector's scheduled tick at start makes it the evaluator.
    assert!(
        vigil_tests::wait_until(std::time::Duration::from_secs(20), || first
            .log()
            .contains("this collector evaluates the ISMS")),
        "{}",
        first.log()
    );
    let second = start();
    let admin = first.add_token("admin", "admin").expect("admin token");
    let (status, body) = post(&second, "/api/v1/evaluations", &admin);
    assert_eq!(status, 503, "the standby refuses: {body}");
    assert!(
        body.to_string().contains("on standby"),
        "names the evaluator: {body}"
    );
    let (status, body) = post(&first, "/api/v1/evaluations", &admin);
    assert_eq!(
        status,
        200,
        "the evaluator evaluates: {body}\n{}",
        first.log()
    );
    assert!(
        !second.log().contains("this collector evaluates the ISMS"),
        "{}",
        second.log()
    );
}
