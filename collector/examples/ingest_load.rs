//! Informal ingest load: pushes N gzip reports (40 results each, with evidence) to a running
//! collector over `C` concurrent connections and prints the rate. Not a benchmark suite: the
//! figures depend on the disk's fsync latency more than on anything else.
//!
//! ```text
//! vigil-collector agents add load-01 --config c.toml > token
//! cargo run --release -p vigil-collector --example ingest_load -- \
//!     http://127.0.0.1:8470 "$(cat token)" load-01 2000 16
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{Duration, Utc};
use vigil_shared::report::SCHEMA_V1;
use vigil_shared::{
    AgentInfo, CheckResult, Evidence, HostIdentity, OsRelease, Report, Status, Subject,
};

fn report(agent: &str, seq: u64) -> Report {
    let now = Utc::now();
    let results = (0..40)
        .map(|i| {
            let failing = i % 5 == 0;
            CheckResult {
                check: format!("load.check_{i}"),
                controls: vec!["A.8.8".into(), "A.8.9".into()],
                observed_at: now - Duration::milliseconds(i),
                duration_ms: 12,
                status: if failing { Status::Fail } else { Status::Pass },
                summary: format!("check {i} looked at 20 subjects"),
                values: BTreeMap::from([("count".to_string(), i.into())]),
                evidence: Evidence {
                    offenders: if failing {
                        vec![Subject::new("package", "openssl:amd64").with_reason("update pending")]
                    } else {
                        vec![]
                    },
                    checked: (0..20)
                        .map(|j| {
                            Subject::new("account", format!("user{j}")).fact("uid", 1000 + j as i64)
                        })
                        .collect(),
                    sources: vec!["/etc/passwd".into()],
                },
                error: None,
            }
        })
        .collect();
    Report {
        schema: SCHEMA_V1.into(),
        agent: AgentInfo {
            id: agent.into(),
            version: vigil_shared::VERSION.into(),
            health: None,
        },
        host: HostIdentity {
            machine_id: format!("{agent}-machine"),
            hostname: agent.into(),
            os: OsRelease::default(),
            kernel: None,
            labels: BTreeMap::new(),
        },
        batch_id: format!("00000000-0000-4000-8000-{:012x}", seq & 0xffff_ffff_ffff),
        seq,
        sent_at: now,
        results,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, token, agent, count, concurrency] = args.as_slice() else {
        bail!("usage: ingest_load BASE_URL TOKEN AGENT COUNT CONCURRENCY");
    };
    let count: u64 = count.parse().context("COUNT")?;
    let concurrency: u64 = concurrency.parse().context("CONCURRENCY")?;
    vigil_collector::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = Arc::new(format!("{base}/api/v1/reports"));
    // Sequence numbers continue from whatever this agent already sent.
    let start_seq = Utc::now().timestamp_micros().unsigned_abs() & 0xffff_ffff_ffff;
    let bodies: Vec<Vec<u8>> = (0..count)
        .map(|i| vigil_shared::codec::encode_gzip(&report(agent, start_seq + i)))
        .collect::<Result<_, _>>()?;
    let wire: usize = bodies.iter().map(Vec::len).sum();
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, url, bodies, token) =
            (client.clone(), url.clone(), bodies.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker;
            while i < count {
                let t = Instant::now();
                let response = client
                    .post(url.as_str())
                    .bearer_auth(&token)
                    .header("content-encoding", "gzip")
                    .body(bodies[i as usize].clone())
                    .send()
                    .await?;
                if response.status() != 200 {
                    bail!(
                        "report {i}: {} {}",
                        response.status(),
                        response.text().await?
                    );
                }
                latencies.push(t.elapsed());
                i += concurrency;
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "{count} reports ({} results, {:.1} MiB gzip) in {:.2}s: {:.0} reports/s, {:.0} results/s; latency p50 {:?} p99 {:?}",
        count * 40,
        wire as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        (count * 40) as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
    );
    Ok(())
}
