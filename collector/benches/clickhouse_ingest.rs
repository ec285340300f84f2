//! Ingest throughput for the same measurements (result rows) three ways, in one run, on a
//! private clickhouse-server: raw HTTP TabSeparated insert into a table shaped like `results`,
//! Vigil's store ingest into ClickHouse, and into SQLite. Prints a Markdown table.
//!
//! `cargo bench -p vigil-collector --bench clickhouse_ingest`; measurements from
//! `VIGIL_BENCH_MEASUREMENTS` (default 1,000,000), 50 results per report. Under
//! `cargo test --all-targets` (no `--bench` argument) it only runs 1,000 measurements.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use vigil_collector::auth::{Role, Token};
use vigil_collector::store::clickhouse::test_server::TestServer;
use vigil_collector::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use vigil_collector::store::sqlite::SqliteStore;
use vigil_collector::store::{IngestRequest, NewPrincipal, Store};
use vigil_shared::report::SCHEMA_V1;
use vigil_shared::{
    AgentInfo, CheckResult, Evidence, HostIdentity, OsRelease, Report, Status, Subject, Value,
};

const PER_REPORT: usize = 50;
/// Reports in flight at once (agents waiting for their answer).
const TASKS: usize = 2048;
/// Most results per insert: half the reports in flight, so that one half is checked and
/// queued while the other is written.
const BATCH_ROWS: usize = TASKS / 2 * PER_REPORT;

fn report(host: usize, seq: u64) -> Report {
    let at = Utc::now() - Duration::days(1) + Duration::seconds(i64::try_from(seq).unwrap());
    Report {
        schema: SCHEMA_V1.into(),
        agent: AgentInfo {
            id: format!("agent-{host}"),
            version: "0.1.0".into(),
            health: None,
        },
        host: HostIdentity {
            machine_id: format!("{host:032x}"),
            hostname: format!("host-{host}"),
            os: OsRelease {
                id: "debian".into(),
                id_like: vec![],
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            },
            kernel: Some("6.1.0-28-amd64".into()),
            labels: BTreeMap::new(),
        },
        batch_id: uuid_like(host, seq),
        seq,
        sent_at: at,
        results: (0..PER_REPORT)
            .map(|c| CheckResult {
                check: format!("check.{c:02}"),
                controls: vec!["A.8.2".into()],
                observed_at: at,
                duration_ms: 3,
                status: if c % 5 == 0 {
                    Status::Fail
                } else {
                    Status::Pass
                },
                summary: "bench".into(),
                values: BTreeMap::from([("n".to_string(), Value::Int(1))]),
                evidence: Evidence {
                    offenders: vec![],
                    checked: vec![Subject::new("account", "root").fact("uid", 0i64)],
                    sources: vec!["/etc/passwd".into()],
                },
                error: None,
            })
            .collect(),
    }
}

fn uuid_like(host: usize, seq: u64) -> String {
    format!("6f1c1b0e-{:04x}-4d8e-9a51-{:012x}", host & 0xffff, seq)
}

/// Requests as the HTTP layer hands them to the store: each with the agent's signed JSON bytes
/// (signed before the clock starts; checking signatures is the HTTP layer's work, keeping the
/// signed body and chaining it is the store's).
fn requests(reports: &[Report]) -> Vec<IngestRequest> {
    let key = vigil_shared::signing::SigningKey::from_bytes(&[7; 32]);
    reports
        .iter()
        .map(|r| {
            let json = serde_json::to_vec(r).unwrap();
            let header = vigil_shared::signing::SignatureHeader::sign(&key, &json);
            IngestRequest {
                agent: r.agent.id.clone(),
                report: r.clone(),
                received_at: Utc::now(),
                body_sha256: Sha256::digest(&json).into(),
                signed: Some(vigil_collector::store::chain::SignedBody {
                    json,
                    signature: header.signature.to_bytes(),
                    public_key: header.key.to_bytes(),
                }),
            }
        })
        .collect()
}

async fn vigil(store: Arc<dyn Store>, hosts: usize, requests: Vec<IngestRequest>) -> f64 {
    for h in 0..hosts {
        store
            .create_principal(NewPrincipal {
                name: format!("agent-{h}"),
                role: Role::Agent,
                labels: BTreeMap::new(),
                token_hash: Token::generate().unwrap().hash(),
                created_at: Utc::now(),
                expires_at: None,
            })
            .await
            .unwrap();
    }
    let n = requests.len() * PER_REPORT;
    let mut lanes: Vec<Vec<IngestRequest>> = (0..TASKS).map(|_| Vec::new()).collect();
    for (i, r) in requests.into_iter().enumerate() {
        lanes[i % TASKS].push(r);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for lane in lanes {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for r in lane {
                let outcome = store.ingest(r).await.unwrap();
                assert!(matches!(
                    outcome,
                    vigil_collector::store::IngestOutcome::Stored { .. }
                ));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn raw(server: &TestServer, reports: &[Report]) -> f64 {
    let client = reqwest::Client::new();
    let sql = "CREATE TABLE IF NOT EXISTS raw_results (machine_id String, check_id String, \
        observed_at Int64, agent String, seq UInt64, batch_id String, received_at Int64, \
        status String, summary String, has_error UInt8, error String, controls_json String, \
        duration_ms UInt64, values_json String, evidence_json String) ENGINE = MergeTree \
        ORDER BY (machine_id, check_id, observed_at)";
    client.post(server.url()).body(sql).send().await.unwrap();
    let mut tsv = String::new();
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    for r in reports {
        for c in &r.results {
            let esc = |s: String| s.replace('\\', "\\\\").replace('\t', "\\t");
            tsv.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t0\t\t{}\t{}\t{}\t{}\n",
                r.host.machine_id,
                c.check,
                c.observed_at.timestamp_nanos_opt().unwrap(),
                r.agent.id,
                r.seq,
                r.batch_id,
                now,
                c.status.as_str(),
                c.summary,
                esc(serde_json::to_string(&c.controls).unwrap()),
                c.duration_ms,
                esc(serde_json::to_string(&c.values).unwrap()),
                esc(serde_json::to_string(&c.evidence).unwrap()),
            ));
        }
    }
    let n = reports.len() * PER_REPORT;
    let started = Instant::now();
    let answer = client
        .post(format!(
            "{}/?query=INSERT%20INTO%20raw_results%20FORMAT%20TabSeparated",
            server.url()
        ))
        .body(tsv)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(server) = TestServer::start_or_skip("clickhouse_ingest bench") else {
        return;
    };
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and then it is a smoke run (a few reports) that proves the three paths still work.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let measurements: usize = if benchmarking {
        std::env::var("VIGIL_BENCH_MEASUREMENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        eprintln!("clickhouse_ingest: smoke run (use `cargo bench` for the figures)");
        1_000
    };
    let n_reports = measurements.div_ceil(PER_REPORT);
    let hosts = (n_reports / 10).max(1);
    let reports: Vec<Report> = (0..n_reports)
        .map(|i| report(i % hosts, (i / hosts) as u64 + 1))
        .collect();
    let n = n_reports * PER_REPORT;
    let raw_rate = raw(&server, &reports).await;
    let ch = ClickHouseStore::open(&ClickHouseConfig {
        url: server.url(),
        database: "vigil_bench".into(),
        user: "default".into(),
        max_queued_reports: TASKS,
        max_batch_rows: BATCH_ROWS,
        password: String::new(),
        compression: true,
        ..ClickHouseConfig::default()
    })
    .await
    .unwrap();
    let ch_rate = vigil(Arc::new(ch), hosts, requests(&reports)).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path()).unwrap();
    let sqlite_rate = vigil(Arc::new(sqlite), hosts, requests(&reports)).await;
    println!("{n} measurements ({n_reports} reports of {PER_REPORT} results, {hosts} hosts)\n");
    println!("| path | rows/s |\n|---|---:|");
    println!("| raw HTTP TabSeparated insert into ClickHouse | {raw_rate:.0} |");
    println!(
        "| Vigil store ingest into ClickHouse ({TASKS} concurrent, batches of at most {BATCH_ROWS} rows) | {ch_rate:.0} |"
    );
    println!("| Vigil store ingest into SQLite ({TASKS} concurrent) | {sqlite_rate:.0} |");
}
