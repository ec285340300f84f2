//! Crash safety: the real collector (SQLite store) is killed with SIGKILL several times while
//! many agents push streams of reports over HTTP, and restarted on the same data directory.
//! The agents behave as the real agent's spool does: a report is resent, unchanged, until the
//! collector acknowledges it (2xx). Afterwards every acknowledged report is stored exactly
//! once with all its results, nothing is doubled, and the API shows the same counts.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_shared::Report;
use vigil_tests::{Collector, bin, fixture};

/// Agent principals pushing at the same time.
const AGENTS: usize = 30;
/// Reports each agent sends, in sequence.
const REPORTS_PER_AGENT: u64 = 20;
/// SIGKILLs during the stream.
const KILLS: usize = 3;
/// The whole test, kills and restarts included.
const TIME_BOUND: Duration = Duration::from_secs(60);

fn machine_id(agent: usize) -> String {
    format!("{:032x}", 0x00c0_ffee_0000_u64 + agent as u64)
}

fn agent_name(agent: usize) -> String {
    format!("crash-{agent:02}")
}

/// What an agent pushes: one report of the real agent on the healthy fixture host.
fn template() -> Report {
    let output = Command::new(bin("vigil-agent"))
        .args([
            "collect",
            "--format",
            "json",
            "--cache-dir",
            "none",
            "--root",
        ])
        .arg(fixture("healthy"))
        .output()
        .expect("vigil-agent runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a v1 report")
}

/// A report on the wire, built once and resent unchanged until acknowledged.
struct Outgoing {
    seq: u64,
    batch_id: String,
    results: usize,
    body: Vec<u8>,
    /// The `X-Vigil-Signature` header.
    signature: (&'static str, String),
}

/// Builds report `seq` of `agent` as the real agent sends it (gzip JSON body). The one place
/// a report is made: signing goes here.
fn build_report(template: &Report, agent: usize, seq: u64) -> Outgoing {
    let mut report = template.clone();
    report.agent.id = agent_name(agent);
    report.host.machine_id = machine_id(agent);
    report.host.hostname = format!("crash-host-{agent:02}");
    report.seq = seq;
    report.batch_id = format!("{agent:08x}-0000-4000-8000-{seq:012x}");
    report.sent_at = chrono::Utc::now();
    let (body, name, value) = vigil_tests::signed_body(&report).expect("report encodes");
    Outgoing {
        seq,
        batch_id: report.batch_id.clone(),
        results: report.results.len(),
        body,
        signature: (name, value),
    }
}

/// An acknowledgement an agent received.
#[derive(Debug, Clone)]
struct Ack {
    seq: u64,
    batch_id: String,
    results: usize,
    /// `stored` or `duplicate` (stored before a kill, its answer lost).
    status: String,
}

#[derive(Default)]
struct Tally {
    acks: Mutex<BTreeMap<usize, Vec<Ack>>>,
    acked: AtomicUsize,
    /// Sends that got no answer or a 5xx (the collector was down or dying).
    failed_sends: AtomicUsize,
    /// Answers that are neither 2xx nor retryable: the test fails on any.
    refusals: Mutex<Vec<String>>,
}

/// One simulated agent: pushes its reports in order, resending each until acknowledged.
fn run_agent(
    agent: usize,
    token: String,
    url: String,
    template: Arc<Report>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for seq in 1..=REPORTS_PER_AGENT {
        let out = build_report(&template, agent, seq);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let sent = client
                .post(format!("{url}/api/v1/reports"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .header(out.signature.0, &out.signature.1)
                .body(out.body.clone())
                .send();
            match sent {
                Ok(r) if r.status().is_success() => {
                    let body: serde_json::Value = r.json().unwrap_or_default();
                    let ack = Ack {
                        seq: out.seq,
                        batch_id: out.batch_id.clone(),
                        results: out.results,
                        status: body["status"].as_str().unwrap_or("").to_string(),
                    };
                    tally
                        .acks
                        .lock()
                        .expect("lock")
                        .entry(agent)
                        .or_default()
                        .push(ack);
                    tally.acked.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                    tally.failed_sends.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().unwrap_or_default();
                    tally
                        .refusals
                        .lock()
                        .expect("lock")
                        .push(format!("{} seq {seq}: {status} {text}", agent_name(agent)));
                    return;
                }
                Err(_) => {
                    tally.failed_sends.fetch_add(1, Ordering::Relaxed);
                }
            }
            // The real agent backs off (max_backoff_secs); short here to keep the test fast.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn acknowledged_reports_survive_repeated_sigkills_exactly_once() {
    let started = Instant::now();
    let template = Arc::new(template());
    assert!(!template.results.is_empty());
    let mut collector = Collector::start().expect("collector starts");
    let auditor = collector.add_token("auditor", "auditor").expect("token");
    let tokens: Vec<String> = (0..AGENTS)
        .map(|a| {
            collector
                .add_signing_agent(&agent_name(a))
                .expect("agent added")
        })
        .collect();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let agents: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(agent, token)| {
            let (url, template, tally, stop) = (
                collector.url(),
                template.clone(),
                tally.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || run_agent(agent, token, url, template, tally, stop))
        })
        .collect();

    // Kill when a quarter, half and three quarters of the stream have been acknowledged.
    let total = AGENTS * REPORTS_PER_AGENT as usize;
    let mut kills_done = 0;
    for k in 1..=KILLS {
        let threshold = total * k / (KILLS + 1);
        while tally.acked.load(Ordering::Relaxed) < threshold {
            assert!(
                started.elapsed() < TIME_BOUND,
                "stream stalled at {} acknowledged reports before kill {k}: {}",
                tally.acked.load(Ordering::Relaxed),
                collector.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = tally.acked.load(Ordering::Relaxed);
        collector.kill();
        kills_done += 1;
        assert!(before < total, "the stream ended before kill {k}");
        std::thread::sleep(Duration::from_millis(300));
        collector
            .spawn()
            .expect("collector restarts on the same data");
    }
    assert_eq!(kills_done, KILLS);

    for a in agents {
        let remaining = TIME_BOUND.saturating_sub(started.elapsed());
        let deadline = Instant::now() + remaining;
        while !a.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !a.is_finished() {
            stop.store(true, Ordering::Relaxed);
        }
        a.join().expect("agent thread");
    }
    let refusals = tally.refusals.lock().expect("lock").clone();
    assert!(refusals.is_empty(), "refused reports: {refusals:#?}");
    let acks = tally.acks.lock().expect("lock").clone();
    let acked: usize = acks.values().map(Vec::len).sum();
    assert_eq!(
        acked,
        total,
        "every report acknowledged within {TIME_BOUND:?} ({} sends failed)",
        tally.failed_sends.load(Ordering::Relaxed)
    );
    assert!(
        tally.failed_sends.load(Ordering::Relaxed) > 0,
        "the kills interrupted nothing: the test did not test a crash"
    );
    let duplicates = acks
        .values()
        .flatten()
        .filter(|a| a.status == "duplicate")
        .count();
    for ack in acks.values().flatten() {
        assert!(
            ack.status == "stored" || ack.status == "duplicate",
            "{ack:?}"
        );
    }

    // The API: every host, and the full history of one check on each.
    let (status, hosts) = collector.get("/api/v1/hosts", &auditor).expect("hosts");
    assert_eq!(status, 200, "{hosts}");
    assert_eq!(hosts["hosts"].as_array().map(Vec::len), Some(AGENTS));
    let check = template.results[0].check.clone();
    for agent in [0, AGENTS / 2, AGENTS - 1] {
        let (status, history) = collector
            .get(
                &format!(
                    "/api/v1/hosts/{}/results?check={check}&limit=1000",
                    machine_id(agent)
                ),
                &auditor,
            )
            .expect("history");
        assert_eq!(status, 200, "{history}");
        let n = history["results"]
            .as_array()
            .or_else(|| history.as_array())
            .map(Vec::len);
        assert_eq!(
            n,
            Some(REPORTS_PER_AGENT as usize),
            "{check} on {}: {history}",
            machine_id(agent)
        );
    }
    collector.stop().expect("graceful stop");

    // The store itself: each acknowledged report once, with every one of its results.
    let db = rusqlite::Connection::open(collector.dir.path().join("data/collector.sqlite3"))
        .expect("store opens");
    let stored_reports: i64 = db
        .query_row("SELECT count(*) FROM reports", [], |r| r.get(0))
        .expect("count");
    assert_eq!(stored_reports as usize, total, "reports stored");
    let stored_results: i64 = db
        .query_row("SELECT count(*) FROM results", [], |r| r.get(0))
        .expect("count");
    let expected_results: usize = acks.values().flatten().map(|a| a.results).sum();
    assert_eq!(stored_results as usize, expected_results, "results stored");
    let orphans: i64 = db
        .query_row(
            "SELECT count(*) FROM results WHERE report_id NOT IN (SELECT id FROM reports)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(orphans, 0, "results without their report");
    let mut per_report = db
        .prepare(
            "SELECT r.seq, r.batch_id, count(*), (SELECT count(*) FROM results x \
             WHERE x.report_id = r.id) FROM reports r WHERE r.machine_id = ?1 \
             GROUP BY r.seq, r.batch_id",
        )
        .expect("query");
    for (agent, list) in &acks {
        let rows: Vec<(i64, String, i64, i64)> = per_report
            .query_map([machine_id(*agent)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        let stored: BTreeMap<u64, (String, i64, i64)> = rows
            .into_iter()
            .map(|(seq, batch, n, results)| (seq as u64, (batch, n, results)))
            .collect();
        assert_eq!(stored.len(), list.len(), "{}", agent_name(*agent));
        for ack in list {
            let Some((batch, copies, results)) = stored.get(&ack.seq) else {
                panic!(
                    "{} seq {} acknowledged but lost",
                    agent_name(*agent),
                    ack.seq
                );
            };
            assert_eq!(batch, &ack.batch_id);
            assert_eq!(
                *copies,
                1,
                "{} seq {} stored twice",
                agent_name(*agent),
                ack.seq
            );
            assert_eq!(*results as usize, ack.results, "results of seq {}", ack.seq);
        }
    }
    assert!(
        started.elapsed() < TIME_BOUND,
        "took {:?} (bound {TIME_BOUND:?})",
        started.elapsed()
    );
    eprintln!(
        "crash test: {total} reports from {AGENTS} agents, {KILLS} SIGKILLs, {} failed sends \
         retried, {duplicates} answered duplicate after a kill, {expected_results} results, {:?}",
        tally.failed_sends.load(Ordering::Relaxed),
        started.elapsed()
    );
}
