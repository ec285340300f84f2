//! Fleet load: how many agents reporting every 5 minutes one collector holds with p99 ingest
//! latency under 100 ms, on the SQLite store and on the ClickHouse store, and how long the ISMS
//! evaluation takes at that size. Prints Markdown tables.
//!
//! ```text
//! cargo bench -p vigil-collector --bench fleet_load
//! ```
//!
//! What it does, per backend:
//! - starts the real `vigil-collector serve` on a free loopback port (SQLite in a temporary
//!   directory; or a private clickhouse-server, as the ClickHouse tests do), with the default
//!   ISMS pack `packaging/isms` (evaluating every minute, as shipped) when the store supports it;
//! - enrolls N simulated agents through `POST /api/v1/enroll`, each its own principal and token;
//! - each agent sends the report the real agent produced on a Debian 12 host
//!   (`benches/fixtures/agent-report.json.gz`: 50 checks, 157 KB of JSON, 19 KB gzip, with the
//!   full package inventory and pending updates as evidence), its own host identity, sequence
//!   number and batch id, plus synthetic user-defined check results up to `VIGIL_LOAD_RESULTS`
//!   results per report (default 200, "hundreds of results");
//! - the 5-minute schedule is kept as an aggregate rate: N/300 reports per second, open loop
//!   (a report is sent at its scheduled time whether or not earlier ones were answered), agents
//!   in turn, each on a new connection (an agent reporting every 5 minutes holds none open);
//! - latency is measured from the scheduled send time to the end of the answer, so a loaded
//!   client counts against the collector, never for it;
//! - a step at size N runs `VIGIL_LOAD_STEP_SECS` (default 60 s) and passes when p99 < 100 ms
//!   and every report got 200. N doubles from `VIGIL_LOAD_START` (default 1,000) until a step
//!   fails, then is bisected to within 10 %; the whole search per backend is bounded by
//!   `VIGIL_LOAD_BUDGET_SECS` (default 900 s) and `VIGIL_LOAD_MAX` (default 1,024,000);
//! - at the largest passing N every agent that has not reported yet reports once, then
//!   `POST /api/v1/evaluations` is timed twice (first evaluation of that fleet, then steady).
//!
//! `VIGIL_LOAD_BACKENDS=sqlite,clickhouse` (default both; ClickHouse is skipped with a message
//! when clickhouse-server is missing). The load generator runs on the same machine as the
//! collector and competes with it for CPU; its own CPU time is printed. Report bodies are built
//! and compressed before each step's timed window (see [`report_body`]).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it is a smoke run: 10 agents on
//! SQLite for 2 seconds at 5 reports/s, then one evaluation; every report must be stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;
use vigil_collector::store::clickhouse::test_server::TestServer;
use vigil_shared::{CheckResult, Evidence, Report, Status, Subject, Value};

const P99_LIMIT: Duration = Duration::from_millis(100);
const SCHEDULE_SECS: f64 = 300.0;

#[derive(Debug, Clone)]
struct Options {
    benchmarking: bool,
    backends: Vec<String>,
    start: usize,
    max: usize,
    step: Duration,
    budget: Duration,
    results: usize,
    /// Reports per second instead of N/300 (smoke run only).
    rate_override: Option<f64>,
}

impl Options {
    fn from_env() -> Options {
        let benchmarking = std::env::args().any(|a| a == "--bench");
        let num = |name: &str, default: u64| -> u64 {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        if !benchmarking {
            eprintln!("fleet_load: smoke run (use `cargo bench` for the figures)");
            return Options {
                benchmarking,
                backends: vec!["sqlite".into()],
                start: 10,
                max: 10,
                step: Duration::from_secs(2),
                budget: Duration::from_secs(60),
                results: 200,
                rate_override: Some(5.0),
            };
        }
        Options {
            benchmarking,
            backends: std::env::var("VIGIL_LOAD_BACKENDS")
                .unwrap_or_else(|_| "sqlite,clickhouse".into())
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            start: num("VIGIL_LOAD_START", 1000) as usize,
            max: num("VIGIL_LOAD_MAX", 1_024_000) as usize,
            step: Duration::from_secs(num("VIGIL_LOAD_STEP_SECS", 60)),
            budget: Duration::from_secs(num("VIGIL_LOAD_BUDGET_SECS", 900)),
            results: num("VIGIL_LOAD_RESULTS", 200) as usize,
            rate_override: None,
        }
    }
}

// ---------------------------------------------------------------- the collector under test

struct Collector {
    child: Child,
    _dir: tempfile::TempDir,
    base: String,
    admin: String,
    enroll: String,
    isms: bool,
    clickhouse: Option<TestServer>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM, so the collector shuts down cleanly (its store checkpoints).
fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn collector_binary() -> &'static str {
    env!("CARGO_BIN_EXE_vigil-collector")
}

fn isms_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms")
}

fn admin_command(config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(collector_binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "vigil-collector {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `vigil-collector serve`; with the ISMS pack when `isms`. `None` when the process
/// exits during start-up (the store refuses the ISMS), with its log.
fn start_collector(
    backend: &str,
    isms: bool,
    clickhouse: Option<TestServer>,
) -> Result<Collector, (String, Option<TestServer>)> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[storage]\nbackend = \"{backend}\"\ndata_dir = \"{}\"\n",
        dir.path().join("data").display()
    );
    if let Some(server) = &clickhouse {
        config.push_str(&format!(
            "\n[storage.clickhouse]\nurl = \"{}\"\ndatabase = \"vigil_load\"\n",
            server.url()
        ));
    }
    if isms {
        config.push_str(&format!("\n[isms]\ndir = \"{}\"\n", isms_dir().display()));
    }
    let path = dir.path().join("collector.toml");
    std::fs::write(&path, config).unwrap();
    let admin = match admin_command(&path, &["tokens", "add", "load-admin", "--role", "admin"]) {
        Ok(token) => token,
        Err(why) => return Err((why, clickhouse)),
    };
    let enroll = admin_command(
        &path,
        &[
            "enroll-token",
            "create",
            "--name",
            "load-fleet",
            "--labels",
            "env=prod",
        ],
    )
    .unwrap_or_else(|why| panic!("{why}"));
    let log = std::fs::File::create(dir.path().join("collector.log")).unwrap();
    let mut child = Command::new(collector_binary())
        .arg("--config")
        .arg(&path)
        .args(["--log", "warn", "serve"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("collector.log")).unwrap_or_default();
            return Err((format!("collector exited ({status}): {log}"), clickhouse));
        }
        if healthy(port) {
            break;
        }
        assert!(Instant::now() < deadline, "collector did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Collector {
        child,
        _dir: dir,
        base,
        admin,
        enroll,
        isms,
        clickhouse,
    })
}

/// `GET /healthz` answered 200 (a plain socket: the bench has no blocking HTTP client).
fn healthy(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

// ---------------------------------------------------------------- process accounting

const CLOCK_TICKS: f64 = 100.0;

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / CLOCK_TICKS
}

/// A `VmRSS`/`VmHWM`-style field of /proc/PID/status, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The pid of the private clickhouse-server whose configuration lives in `dir`.
fn clickhouse_pid(dir: &Path) -> Option<u32> {
    let needle = dir.join("config.xml").display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(&needle)
            .then_some(pid)
    })
}

// ---------------------------------------------------------------- simulated agents

struct SimAgent {
    name: String,
    token: String,
    machine_id: String,
    seq: u64,
}

/// The real agent's report, padded with user-defined check results up to `results`.
fn template(results: usize) -> Report {
    let gz = include_bytes!("fixtures/agent-report.json.gz");
    let json = vigil_shared::codec::gunzip_limited(gz, 64 << 20).unwrap();
    let mut report = vigil_shared::codec::decode_json(&json).unwrap();
    let at = report.sent_at;
    let mut i = 0;
    while report.results.len() < results {
        // What a site's `custom.*` file and command checks send: one subject, a few facts.
        report.results.push(CheckResult {
            check: format!("custom.site_file_{i:03}"),
            controls: vec!["A.8.9".into()],
            observed_at: at,
            duration_ms: 1,
            status: Status::Pass,
            summary: format!("/etc/site/conf.d/{i:03}.conf: mode 0640, owner root"),
            values: BTreeMap::from([("mode".to_string(), Value::Int(0o640))]),
            evidence: Evidence {
                offenders: vec![],
                checked: vec![
                    Subject::new("file", format!("/etc/site/conf.d/{i:03}.conf"))
                        .fact("mode", "0640")
                        .fact("owner", "root")
                        .fact("size", 2048i64),
                ],
                sources: vec![format!("/etc/site/conf.d/{i:03}.conf")],
            },
            error: None,
        });
        i += 1;
    }
    report.results.truncate(results.max(1));
    report
}

/// One report of `agent` with sequence number `seq`, encoded as the agent pushes it (JSON,
/// gzip). The single place where a report is built: a signature goes here.
/// The key a simulated agent signs with (derived from its name; sent at enrollment).
fn agent_key(name: &str) -> vigil_shared::signing::SigningKey {
    use sha2::Digest;
    vigil_shared::signing::SigningKey::from_bytes(&sha2::Sha256::digest(name.as_bytes()).into())
}

/// A report as an agent sends it: gzip'd JSON and its `X-Vigil-Signature` value.
struct Body {
    gzip: Vec<u8>,
    signature: String,
}

fn report_body(template: &Report, agent: &SimAgent, index: usize, seq: u64) -> Body {
    let now = Utc::now();
    let mut report = template.clone();
    report.agent.id = agent.name.clone();
    report.host.machine_id = agent.machine_id.clone();
    report.host.hostname = format!("{}.load.test", agent.name);
    report.batch_id = uuid::Uuid::new_v4().to_string();
    report.seq = seq;
    report.sent_at = now;
    let n = report.results.len();
    for (i, result) in report.results.iter_mut().enumerate() {
        result.observed_at = now;
        // Hosts differ: one check in 16 flips, varying with the host and the round.
        if (i + index + seq as usize).is_multiple_of(16) && n > 0 {
            match result.status {
                Status::Pass => {
                    result.status = Status::Fail;
                    let subject = result
                        .evidence
                        .checked
                        .first()
                        .cloned()
                        .unwrap_or_else(|| Subject::new("host", agent.machine_id.clone()));
                    result.evidence.offenders = vec![subject.with_reason("differs on this host")];
                }
                Status::Fail => {
                    result.status = Status::Pass;
                    result.evidence.offenders.clear();
                }
                _ => {}
            }
        }
    }
    let json = serde_json::to_vec(&report).unwrap();
    Body {
        signature: vigil_shared::signing::SignatureHeader::sign(&agent_key(&agent.name), &json)
            .to_value(),
        gzip: vigil_shared::codec::gzip(&json).unwrap(),
    }
}

fn machine_id(run: u64, i: usize) -> String {
    format!("{:016x}{:016x}", run, i as u64 ^ 0x5bd1_e995_0000_0000)
}

async fn enroll(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    run: u64,
    agents: &mut Vec<SimAgent>,
    n: usize,
) {
    let from = agents.len();
    if from >= n {
        return;
    }
    let started = Instant::now();
    let url = Arc::new(format!("{base}/api/v1/enroll"));
    let mut set = JoinSet::new();
    let mut next = from;
    let mut done: BTreeMap<usize, SimAgent> = BTreeMap::new();
    loop {
        while next < n && set.len() < 32 {
            let (client, url, token) = (client.clone(), url.clone(), token.to_string());
            let i = next;
            set.spawn(async move {
                let name = format!("load-{i:07}");
                let mid = machine_id(run, i);
                let public_key = vigil_shared::signing::public_key_hex(&agent_key(&name).verifying_key());
                let body = serde_json::json!({"name": name, "hostname": format!("{name}.load.test"), "machine_id": mid, "public_key": public_key});
                for _ in 0..20 {
                    let answer = client.post(url.as_str()).bearer_auth(&token).json(&body).send().await;
                    if let Ok(answer) = answer
                        && answer.status() == 200
                    {
                        let v: serde_json::Value = answer.json().await.unwrap();
                        let token = v["token"].as_str().unwrap().to_string();
                        return (i, SimAgent { name, token, machine_id: mid, seq: 0 });
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                panic!("enrollment of {name} failed 20 times");
            });
            next += 1;
        }
        match set.join_next().await {
            Some(joined) => {
                let (i, agent) = joined.unwrap();
                done.insert(i, agent);
            }
            None => break,
        }
    }
    agents.extend(done.into_values());
    eprintln!(
        "  enrolled agents {from}..{n} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- one step

#[derive(Debug, Default, Clone)]
struct StepOutcome {
    n: usize,
    rate: f64,
    sent: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    ok: usize,
    unavailable: usize,
    too_many: usize,
    other: usize,
    collector_cpu: f64,
    collector_rss: f64,
    clickhouse_cpu: Option<f64>,
    clickhouse_rss: Option<f64>,
    loadgen_cpu: f64,
    wire_kib: f64,
    first_error: Option<String>,
}

impl StepOutcome {
    fn passed(&self) -> bool {
        self.sent > 0 && self.ok == self.sent && self.p99 < P99_LIMIT
    }
}

/// Bodies for one step: `count` reports, agents of the first `n` in turn from `*cursor`.
fn prepare(
    template: &Report,
    agents: &mut [SimAgent],
    n: usize,
    cursor: &mut usize,
    count: usize,
) -> Vec<(usize, Body)> {
    let mut jobs = Vec::with_capacity(count);
    for _ in 0..count {
        let i = *cursor % n;
        *cursor += 1;
        agents[i].seq += 1;
        jobs.push((i, agents[i].seq));
    }
    let agents: &[SimAgent] = agents;
    let threads = 2;
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(i, seq)| (i, report_body(template, &agents[i], i, seq)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

async fn run_step(
    collector: &Collector,
    agents: &[SimAgent],
    bodies: Vec<(usize, Body)>,
    n: usize,
    rate: f64,
) -> StepOutcome {
    // A new connection per report, as agents reporting every 5 minutes make.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = Arc::new(format!("{}/api/v1/reports", collector.base));
    let pid = collector.child.id();
    let ch_pid = collector
        .clickhouse
        .as_ref()
        .and_then(|s| clickhouse_pid(s.dir()));
    let me = std::process::id();
    let wire: usize = bodies.iter().map(|(_, b)| b.gzip.len()).sum();
    let sent = bodies.len();
    let (cpu0, ch0, me0) = (cpu_seconds(pid), ch_pid.map(cpu_seconds), cpu_seconds(me));
    let started = tokio::time::Instant::now();
    let wall = Instant::now();
    let mut set = JoinSet::new();
    for (k, (i, body)) in bodies.into_iter().enumerate() {
        let at = started + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(at).await;
        let (client, url, token) = (client.clone(), url.clone(), agents[i].token.clone());
        set.spawn(async move {
            let answer = client
                .post(url.as_str())
                .bearer_auth(token)
                .header("content-encoding", "gzip")
                .header("content-type", "application/json")
                .header(vigil_shared::signing::SIGNATURE_HEADER, body.signature)
                .body(body.gzip)
                .send()
                .await;
            let (status, error) = match answer {
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    let body = answer.bytes().await.unwrap_or_default();
                    let error = (status != 200)
                        .then(|| format!("{status} {}", String::from_utf8_lossy(&body)));
                    (status, error)
                }
                Err(e) => (0, Some(e.to_string())),
            };
            (status, at.elapsed(), error)
        });
    }
    let mut latencies = Vec::with_capacity(sent);
    let mut outcome = StepOutcome {
        n,
        rate,
        sent,
        ..StepOutcome::default()
    };
    while let Some(joined) = set.join_next().await {
        let (status, latency, error) = joined.unwrap();
        latencies.push(latency);
        if outcome.first_error.is_none() {
            outcome.first_error = error;
        }
        match status {
            200 => outcome.ok += 1,
            503 => outcome.unavailable += 1,
            429 => outcome.too_many += 1,
            _ => outcome.other += 1,
        }
    }
    let secs = wall.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    outcome.p50 = pct(0.50);
    outcome.p90 = pct(0.90);
    outcome.p99 = pct(0.99);
    outcome.max = latencies.last().copied().unwrap_or_default();
    outcome.collector_cpu = (cpu_seconds(pid) - cpu0) / secs;
    outcome.collector_rss = status_mib(pid, "VmRSS:");
    if let (Some(ch_pid), Some(ch0)) = (ch_pid, ch0) {
        outcome.clickhouse_cpu = Some((cpu_seconds(ch_pid) - ch0) / secs);
        outcome.clickhouse_rss = Some(status_mib(ch_pid, "VmRSS:"));
    }
    outcome.loadgen_cpu = (cpu_seconds(me) - me0) / secs;
    outcome.wire_kib = wire as f64 / sent.max(1) as f64 / 1024.0;
    outcome
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn row(o: &StepOutcome) -> String {
    let ch = match (o.clickhouse_cpu, o.clickhouse_rss) {
        (Some(c), Some(r)) => format!("{:.0} % / {r:.0}", c * 100.0),
        _ => "–".into(),
    };
    format!(
        "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} % / {:.0} | {ch} | {:.0} % | {} |",
        o.n,
        o.rate,
        o.sent,
        ms(o.p50),
        ms(o.p90),
        ms(o.p99),
        ms(o.max),
        o.ok,
        o.unavailable,
        o.too_many + o.other,
        o.collector_cpu * 100.0,
        o.collector_rss,
        o.loadgen_cpu * 100.0,
        if o.passed() { "yes" } else { "**no**" },
    )
}

const HEADER: &str = "| agents N | reports/s | reports | p50 ms | p90 ms | p99 ms | max ms | 200 | 503 | 429/other | collector CPU / RSS MiB | clickhouse-server CPU / RSS MiB | loadgen CPU | p99 < 100 ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|";

// ---------------------------------------------------------------- the search

struct BackendResult {
    backend: String,
    steps: Vec<StepOutcome>,
    best: Option<usize>,
    evaluation: Option<(String, String, usize)>,
    note: String,
}

/// Every agent in `missing` reports once, 8 at a time, as fast as the collector takes them
/// (not measured: this only brings the whole fleet into the store before an evaluation).
async fn fill_hosts(
    collector: &Collector,
    template: &Report,
    agents: &mut [SimAgent],
    missing: &[usize],
) {
    let client = reqwest::Client::new();
    let url = Arc::new(format!("{}/api/v1/reports", collector.base));
    for part in missing.chunks(2000) {
        let mut bodies = Vec::with_capacity(part.len());
        for &i in part {
            agents[i].seq += 1;
            let body = report_body(template, &agents[i], i, agents[i].seq);
            bodies.push((agents[i].token.clone(), body));
        }
        let queue = Arc::new(std::sync::Mutex::new(bodies));
        let mut set = JoinSet::new();
        for _ in 0..8 {
            let (client, url, queue) = (client.clone(), url.clone(), queue.clone());
            set.spawn(async move {
                loop {
                    let Some((token, body)) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    loop {
                        let answer = client
                            .post(url.as_str())
                            .bearer_auth(&token)
                            .header("content-encoding", "gzip")
                            .header(vigil_shared::signing::SIGNATURE_HEADER, &body.signature)
                            .body(body.gzip.clone())
                            .send()
                            .await;
                        match answer {
                            Ok(a) if a.status() == 200 => break,
                            Ok(a) if a.status() == 503 => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Ok(a) => panic!("fill: {} {}", a.status(), a.text().await.unwrap()),
                            Err(e) => panic!("fill: {e}"),
                        }
                    }
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.unwrap();
        }
    }
}

async fn evaluate(client: &reqwest::Client, collector: &Collector) -> (String, usize) {
    let started = Instant::now();
    let answer = client
        .post(format!("{}/api/v1/evaluations", collector.base))
        .bearer_auth(&collector.admin)
        .timeout(Duration::from_secs(1800))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, 200, "evaluation: {body}");
    let wall = started.elapsed();
    (
        format!(
            "{:.2} s ({} in scope, {} verdicts)",
            wall.as_secs_f64(),
            body["in_scope"],
            body["verdicts"]
        ),
        body["hosts"].as_u64().unwrap_or(0) as usize,
    )
}

async fn bench_backend(backend: &str, opts: &Options) -> Option<BackendResult> {
    let clickhouse = if backend == "clickhouse" {
        Some(TestServer::start_or_skip("fleet_load bench (clickhouse)")?)
    } else {
        None
    };
    let mut note = String::new();
    let collector = match start_collector(backend, true, clickhouse) {
        Ok(c) => c,
        Err((why, clickhouse)) => {
            let first = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            note = format!(
                "ISMS refused by this store, no evaluation: {}",
                first.trim()
            );
            eprintln!("  {note}");
            match start_collector(backend, false, clickhouse) {
                Ok(c) => c,
                Err((why, _)) => panic!("{backend}: {why}"),
            }
        }
    };
    let run = Utc::now().timestamp_micros().unsigned_abs();
    let template = template(opts.results);
    let client = reqwest::Client::new();
    let mut agents: Vec<SimAgent> = Vec::new();
    let mut cursor = 0usize;
    let mut steps = Vec::new();
    let started = Instant::now();
    let (mut pass, mut fail): (Option<usize>, Option<usize>) = (None, None);
    let mut n = opts.start;
    loop {
        enroll(
            &client,
            &collector.base,
            &collector.enroll,
            run,
            &mut agents,
            n,
        )
        .await;
        let rate = opts.rate_override.unwrap_or(n as f64 / SCHEDULE_SECS);
        let count = ((rate * opts.step.as_secs_f64()).round() as usize).max(1);
        let prep = Instant::now();
        let bodies = prepare(&template, &mut agents, n, &mut cursor, count);
        eprintln!(
            "  {backend}: N = {n}, {count} reports at {rate:.1}/s (bodies built in {:.1}s)",
            prep.elapsed().as_secs_f64()
        );
        let outcome = run_step(&collector, &agents, bodies, n, rate).await;
        eprintln!("  {}", row(&outcome));
        if let Some(error) = &outcome.first_error {
            eprintln!(
                "  first refusal: {}",
                error.chars().take(400).collect::<String>()
            );
        }
        let passed = outcome.passed();
        steps.push(outcome);
        if passed {
            pass = Some(pass.map_or(n, |p| p.max(n)));
        } else {
            fail = Some(fail.map_or(n, |f| f.min(n)));
        }
        if !opts.benchmarking {
            break;
        }
        // Let the collector drain between steps (and the 1-minute evaluation settle).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let next = match (pass, fail) {
            (Some(p), None) if p >= opts.max => break,
            (Some(p), None) => (p * 2).min(opts.max),
            (None, Some(f)) if f <= 10 => break,
            (None, Some(f)) => f / 2,
            (Some(p), Some(f)) if (f as f64) <= p as f64 * 1.1 => break,
            (Some(p), Some(f)) => (p + f) / 2,
            (None, None) => break,
        };
        if started.elapsed() > opts.budget {
            note.push_str(" search stopped by its time budget;");
            break;
        }
        n = next;
    }
    let mut evaluation = None;
    // The smoke run evaluates whatever it sent (a debug build is not held to 100 ms).
    let evaluated = if opts.benchmarking { pass } else { Some(n) };
    if let Some(best) = evaluated.filter(|_| collector.isms) {
        // Every host of the fleet has reported once before the evaluation is timed.
        let missing: Vec<usize> = (0..best).filter(|&i| agents[i].seq == 0).collect();
        if !missing.is_empty() {
            let fill = Instant::now();
            fill_hosts(&collector, &template, &mut agents, &missing).await;
            eprintln!(
                "  {backend}: {} more hosts reported once in {:.0}s",
                missing.len(),
                fill.elapsed().as_secs_f64()
            );
        }
        let (first, hosts) = evaluate(&client, &collector).await;
        let (steady, _) = evaluate(&client, &collector).await;
        evaluation = Some((first, steady, hosts));
    }
    Some(BackendResult {
        backend: backend.into(),
        steps,
        best: pass,
        evaluation,
        note,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = Options::from_env();
    let mut results = Vec::new();
    for backend in &opts.backends {
        eprintln!("fleet_load: {backend}");
        if let Some(r) = bench_backend(backend, &opts).await {
            results.push(r);
        }
    }
    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for r in &results {
        out.push_str(&format!(
            "\n### {} store ({} results per report, {:.1} KiB gzip each, {cores} cores)\n\n{HEADER}\n",
            r.backend,
            opts.results,
            r.steps.first().map_or(0.0, |s| s.wire_kib),
        ));
        for s in &r.steps {
            out.push_str(&row(s));
            out.push('\n');
        }
    }
    out.push_str("\n| store | largest N with p99 < 100 ms | per core | collector CPU per report | N per core at full CPU (projection) | evaluation at that size: first | steady | hosts evaluated | notes |\n|---|---:|---:|---:|---:|---|---|---:|---|\n");
    for r in &results {
        let (first, steady, hosts) = r.evaluation.clone().unwrap_or(("–".into(), "–".into(), 0));
        // CPU seconds per report over every step (collector, plus clickhouse-server), and the
        // fleet one fully used core would hold at one report per host every 5 minutes.
        let (cpu, reports) = r.steps.iter().fold((0.0, 0.0), |(c, n), s| {
            let per_sec = s.collector_cpu + s.clickhouse_cpu.unwrap_or(0.0);
            (c + per_sec * s.sent as f64 / s.rate, n + s.sent as f64)
        });
        let per_report = if reports > 0.0 { cpu / reports } else { 0.0 };
        let projection = if per_report > 0.0 {
            format!("{:.0}", SCHEDULE_SECS / per_report)
        } else {
            "–".into()
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} ms | {projection} | {first} | {steady} | {hosts} | {} |\n",
            r.backend,
            r.best.map_or("none".into(), |b| b.to_string()),
            r.best.map_or("–".into(), |b| (b / cores).to_string()),
            per_report * 1000.0,
            r.note.trim(),
        ));
    }
    std::io::stdout().write_all(out.as_bytes()).unwrap();
    if !opts.benchmarking {
        let r = results.first().expect("the smoke run uses SQLite");
        let step = r.steps.first().expect("one step");
        assert_eq!(step.ok, step.sent, "smoke: every report is stored");
        let evaluation = r.evaluation.as_ref().expect("the smoke run evaluates");
        assert_eq!(evaluation.2, opts.start, "smoke: every host evaluated");
        assert!(
            evaluation.0.contains(&format!("({} in scope", opts.start)),
            "{evaluation:?}"
        );
    }
}
