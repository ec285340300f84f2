//! Seeds a SQLite store with synthetic history for measuring the evidence export: `HOSTS`
//! hosts, each reporting hourly `REPORTS` times (25 results with evidence per report), ending
//! now. Then export and measure, e.g.:
//!
//! ```text
//! cargo run --release -p vigil-collector --example export_seed -- /tmp/seed/data 10 200
//! /usr/bin/time -v vigil-collector --config seed.toml export --from 2020-01-01 \
//!     --to 2030-01-01 --out bundle.zip
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use vigil_collector::auth::Role;
use vigil_collector::store::sqlite::SqliteStore;
use vigil_collector::store::{IngestRequest, Store};
use vigil_shared::report::SCHEMA_V1;
use vigil_shared::{
    AgentInfo, CheckResult, Evidence, HostIdentity, OsRelease, Report, Status, Subject,
};

const CONTROLS: [&str; 8] = [
    "A.8.8", "A.8.9", "A.5.15", "A.8.2", "A.8.5", "A.8.20", "A.8.24", "A.8.16",
];

fn report(host: usize, seq: u64, at: chrono::DateTime<Utc>) -> Report {
    let results = (0..25usize)
        .map(|i| {
            let failing = (i + host).is_multiple_of(7);
            CheckResult {
                check: format!("seed.check_{i:02}"),
                controls: vec![CONTROLS[i % CONTROLS.len()].into()],
                observed_at: at,
                duration_ms: 12,
                status: if failing { Status::Fail } else { Status::Pass },
                summary: format!("check {i} looked at 10 subjects"),
                values: BTreeMap::from([("count".to_string(), (i as i64).into())]),
                evidence: Evidence {
                    offenders: if failing {
                        vec![Subject::new("package", "openssl:amd64").with_reason("update pending")]
                    } else {
                        vec![]
                    },
                    checked: (0..10)
                        .map(|j| Subject::new("account", format!("user{j}")).fact("uid", 1000 + j))
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
            id: "seed".into(),
            version: vigil_shared::VERSION.into(),
            health: None,
        },
        host: HostIdentity {
            machine_id: format!("seed-host-{host:04}"),
            hostname: format!("seed-{host:04}.example.org"),
            os: OsRelease {
                id: "debian".into(),
                id_like: vec![],
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            },
            kernel: None,
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        },
        batch_id: uuid_like(host, seq),
        seq,
        sent_at: at,
        results,
    }
}

fn uuid_like(host: usize, seq: u64) -> String {
    format!("00000000-0000-4000-8000-{:04x}{seq:08x}", host)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, hosts, reports] = &args[..] else {
        bail!("usage: export_seed DATA_DIR HOSTS REPORTS_PER_HOST");
    };
    let hosts: usize = hosts.parse().context("HOSTS")?;
    let reports: u64 = reports.parse().context("REPORTS_PER_HOST")?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(std::path::Path::new(dir))?);
    vigil_collector::admin::add(
        store.as_ref(),
        "seed",
        Role::Agent,
        BTreeMap::new(),
        Utc::now(),
    )
    .await?;
    let end = Utc::now();
    let started = Instant::now();
    let mut seq = 0u64;
    for r in 0..reports {
        let at = end - Duration::hours(i64::try_from(reports - r)?);
        let mut tasks = Vec::with_capacity(hosts);
        for host in 0..hosts {
            seq += 1;
            let report = report(host, seq, at);
            let body = serde_json::to_vec(&report)?;
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                store
                    .ingest(IngestRequest {
                        agent: "seed".into(),
                        report,
                        received_at: at + Duration::seconds(1),
                        body_sha256: Sha256::digest(&body).into(),
                        signed: None,
                    })
                    .await
            }));
        }
        for task in tasks {
            task.await??;
        }
    }
    store.close().await?;
    println!(
        "seeded {} reports ({} results) in {:.1} s",
        seq,
        seq * 25,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
