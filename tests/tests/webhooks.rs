//! Alert webhooks end to end: a collector (in this process, default ISMS pack, manual clock)
//! raises nonconformity, staleness and evidence events while the receiver on 127.0.0.1 is
//! down (port closed); the collector restarts with the deliveries pending; the receiver then
//! answers 503 for a while, then comes up. Every event arrives exactly once per webhook
//! (counted by idempotency key), every signature verifies, the filters hold, and a further
//! restart sends nothing again.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration, Utc};
use vigil_collector::auth::Role;
use vigil_collector::engine::{Clock, ManualClock};
use vigil_collector::evaluate::NcEventKind;
use vigil_collector::pipeline::{self, Running, StartOptions};
use vigil_collector::settings::CollectorConfig;
use vigil_collector::webhooks::config::Secret;
use vigil_collector::webhooks::sign;
use vigil_tests::{bin, fixture, free_port};

const SECRET: &str = "whsec_e2e_0123456789abcdef";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn default_pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms")
}

/// The healthy fixture under the misconfigured host's identity: the host after it was fixed.
fn fixed_host(dir: &Path) -> PathBuf {
    let root = dir.join("fixed-host");
    let status = Command::new("cp")
        .arg("-a")
        .arg(fixture("healthy"))
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let misconfigured = fixture("misconfigured");
    for file in ["etc/machine-id", "etc/hostname", "proc/sys/kernel/hostname"] {
        std::fs::copy(misconfigured.join(file), root.join(file)).unwrap();
    }
    root
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    status: u16,
    key: String,
    kind: String,
    signature_ok: bool,
    body: serde_json::Value,
}

#[derive(Clone)]
struct Receiver {
    /// The status answered: 503 while "failing", 200 when up.
    answer: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Received>>>,
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signature_ok = sign::verify(
        &Secret::new(SECRET),
        &header(sign::SIGNATURE_HEADER),
        &body,
        Utc::now().timestamp(),
        300,
    );
    let status = r.answer.load(Ordering::SeqCst);
    r.seen.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        status,
        key: header(sign::IDEMPOTENCY_HEADER),
        kind: header(sign::EVENT_KIND_HEADER),
        signature_ok,
        body: serde_json::from_slice(&body).unwrap_or_default(),
    });
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn start(port: u16) -> (Receiver, tokio::task::JoinHandle<()>) {
        let r = Receiver {
            answer: Arc::new(AtomicU16::new(503)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (r, task)
    }

    fn delivered(&self, path: &str) -> Vec<Received> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path && r.status == 200)
            .cloned()
            .collect()
    }
}

struct Collector {
    running: Running,
    client: reqwest::Client,
}

fn config(data: &Path, port: u16) -> CollectorConfig {
    let text = format!(
        r#"
[storage]
data_dir = "{data}"

[isms]
dir = "{pack}"

[webhook_options]
poll_ms = 100
host_stale_after_secs = 3600

[[webhooks]]
name = "everything"
url = "http://127.0.0.1:{port}/all"
format = "json"
secret = "{SECRET}"
timeout_secs = 2
retry_initial_ms = 100
retry_max_ms = 400
max_age_secs = 3600

[[webhooks]]
name = "critical-ncs"
url = "http://127.0.0.1:{port}/slack"
format = "slack"
secret = "{SECRET}"
timeout_secs = 2
retry_initial_ms = 100
retry_max_ms = 400
kinds = ["nonconformity.opened", "nonconformity.escalated", "nonconformity.resolved", "nonconformity.closed"]
min_severity = "critical"
hosts = [{{ env = "prod" }}]

[[webhooks]]
name = "alertmanager"
url = "http://127.0.0.1:{port}/api/v2/alerts"
format = "alertmanager"
secret = "{SECRET}"
timeout_secs = 2
retry_initial_ms = 100
retry_max_ms = 400
controls = ["A.8.2"]
"#,
        data = data.display(),
        pack = default_pack().display(),
    );
    let path = data.with_extension("toml");
    std::fs::write(&path, text).unwrap();
    let mut config = CollectorConfig::load(&path, &Default::default()).unwrap();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config
}

impl Collector {
    async fn start(config: &CollectorConfig, clock: Arc<ManualClock>) -> Collector {
        let isms = pipeline::load_isms(config).unwrap();
        let running = pipeline::start_with(
            config,
            StartOptions {
                clock,
                isms,
                scheduled_engine: false,
            },
        )
        .await
        .unwrap();
        Collector {
            running,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.local_addr())
    }

    async fn evaluate(&self) {
        self.running.engine().unwrap().evaluate_now().await.unwrap();
    }

    /// (pending, delivered, failed) summed over the webhooks.
    async fn outbox(&self) -> (u64, u64, u64) {
        let stats = self.running.webhooks().unwrap().stats().await.unwrap();
        stats.webhooks.values().fold((0, 0, 0), |acc, (_, c)| {
            (acc.0 + c.pending, acc.1 + c.delivered, acc.2 + c.failed)
        })
    }
}

/// The real agent audits `root` at the clock's time; the report is pushed over HTTP.
async fn report(c: &Collector, clock: &ManualClock, token: &str, seq: u64, root: &Path) {
    let output = Command::new(bin("vigil-agent"))
        .args([
            "collect",
            "--format",
            "json",
            "--cache-dir",
            "none",
            "--now",
        ])
        .arg(clock.now().to_rfc3339())
        .arg("--root")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut report: vigil_shared::Report = serde_json::from_slice(&output.stdout).unwrap();
    report.seq = seq;
    report.agent.id = "web-01".into();
    report.host.labels.insert("env".into(), "prod".into());
    let response = vigil_tests::signed_push(&c.client, &c.url("/api/v1/reports"), token, &report)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn wait_until<F, Fut>(what: &str, limit: StdDuration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_signed_after_the_receiver_was_down_across_a_restart() {
    vigil_collector::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port(); // nothing listens there yet: the receiver is down
    let config = config(&data, port);
    let clock = Arc::new(ManualClock::new(t("2026-06-01T12:00:00Z")));

    let c = Collector::start(&config, clock.clone()).await;
    let store = Arc::clone(c.running.store());
    let start = clock.now();
    let (_, agent) = vigil_collector::admin::add(
        store.as_ref(),
        "web-01",
        Role::Agent,
        BTreeMap::new(),
        start,
    )
    .await
    .unwrap();
    let (_, admin) =
        vigil_collector::admin::add(store.as_ref(), "carol", Role::Admin, BTreeMap::new(), start)
            .await
            .unwrap();
    let (agent, admin) = (agent.expose().to_string(), admin.expose().to_string());
    let misconfigured = fixture("misconfigured");
    let fixed = fixed_host(dir.path());

    // Day 0: the misconfigured host opens its nonconformities (no grace for some rules).
    report(&c, &clock, &agent, 1, &misconfigured).await;
    c.evaluate().await;
    let ncs = store.nonconformities_at(None).await.unwrap();
    assert!(!ncs.is_empty());
    // A person closes one of them.
    let closed = ncs
        .iter()
        .find(|nc| nc.subject == "access.no-extra-uid0")
        .unwrap()
        .id;
    clock.advance(Duration::minutes(5));
    let r = c
        .client
        .post(c.url(&format!("/api/v1/nonconformities/{closed}/actions")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"action": "close", "reason": "accepted by the CISO"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Two hours of silence: the host goes stale (host_stale_after_secs = 3600).
    clock.advance(Duration::hours(2));
    c.evaluate().await;
    // The host is fixed: automatic nonconformities resolve.
    report(&c, &clock, &agent, 2, &fixed).await;
    c.evaluate().await;
    // It breaks again: resolved nonconformities reopen (escalated).
    clock.advance(Duration::hours(1));
    report(&c, &clock, &agent, 3, &misconfigured).await;
    c.evaluate().await;

    // Deliveries are queued and failing (port closed).
    wait_until("failed attempts", StdDuration::from_secs(20), || async {
        let stats = c.running.webhooks().unwrap().stats().await.unwrap();
        stats
            .webhooks
            .values()
            .all(|(counters, _)| counters.attempts_failed > 0)
    })
    .await;
    // Let the stage finish its pass after the last evaluation: the outbox stops growing.
    let settle_deadline = Instant::now() + StdDuration::from_secs(20);
    let mut last = u64::MAX;
    loop {
        let now_pending = c.outbox().await.0;
        if now_pending == last {
            break;
        }
        assert!(Instant::now() < settle_deadline, "the outbox never settled");
        last = now_pending;
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    let (pending, delivered, _) = c.outbox().await;
    assert!(pending > 0);
    assert_eq!(delivered, 0);

    // The collector restarts with the deliveries pending.
    c.running.shutdown().await.unwrap();
    let c = Collector::start(&config, clock.clone()).await;
    let store = Arc::clone(c.running.store());
    let (pending_after_restart, _, _) = c.outbox().await;
    assert_eq!(
        pending_after_restart, pending,
        "the outbox survived the restart"
    );

    // The receiver comes up answering 503 for a while, then 200.
    let (receiver, server) = Receiver::start(port).await;
    wait_until("503 answers", StdDuration::from_secs(20), || async {
        receiver.seen.lock().unwrap().len() >= 3
    })
    .await;
    receiver.answer.store(200, Ordering::SeqCst);
    wait_until("every delivery", StdDuration::from_secs(60), || async {
        c.outbox().await.0 == 0
    })
    .await;
    let (_, delivered, failed) = c.outbox().await;
    assert_eq!(failed, 0);

    // Exactly once per webhook and idempotency key; every signature verifies.
    let seen = receiver.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|r| r.signature_ok), "bad signature");
    let mut per_key: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in seen.iter().filter(|r| r.status == 200) {
        *per_key.entry((r.path.clone(), r.key.clone())).or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "{per_key:?}");
    assert_eq!(per_key.len() as u64, delivered);

    // The generic webhook got every nonconformity event of the four kinds, with the ids the
    // store's history gives them.
    let all = receiver.delivered("/all");
    let got: BTreeSet<String> = all.iter().map(|r| r.key.clone()).collect();
    let mut expected = BTreeSet::new();
    for nc in store.nonconformities_at(None).await.unwrap() {
        let detail = store.nonconformity(nc.id).await.unwrap().unwrap();
        for (seq, e) in detail.events.iter().enumerate() {
            if matches!(
                e.kind,
                NcEventKind::Opened
                    | NcEventKind::Reopened
                    | NcEventKind::Resolved
                    | NcEventKind::Closed
            ) {
                expected.insert(format!("nc/{}/{seq}", nc.id));
            }
        }
    }
    let got_nc: BTreeSet<String> = got
        .iter()
        .filter(|k| k.starts_with("nc/"))
        .cloned()
        .collect();
    assert_eq!(got_nc, expected);
    let kinds: BTreeSet<&str> = all.iter().map(|r| r.kind.as_str()).collect();
    for kind in [
        "nonconformity.opened",
        "nonconformity.closed",
        "nonconformity.resolved",
        "nonconformity.escalated",
        "host.stale",
        "evidence.gap",
        "kpi.breached",
    ] {
        assert!(kinds.contains(kind), "{kind} missing: {kinds:?}");
    }
    eprintln!(
        "delivered {delivered}: /all {}, /slack {}, /api/v2/alerts {}; requests seen {}; kinds {kinds:?}",
        all.len(),
        receiver.delivered("/slack").len(),
        receiver.delivered("/api/v2/alerts").len(),
        seen.len()
    );
    // Every live generic body validates against the published schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../collector/webhook-event.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for r in &all {
        let errors: Vec<String> = validator
            .iter_errors(&r.body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", r.key);
        assert_eq!(r.body["id"], r.key.as_str());
    }
    let closing = all
        .iter()
        .find(|r| r.key.starts_with(&format!("nc/{closed}/")) && r.kind == "nonconformity.closed")
        .unwrap();
    assert_eq!(closing.body["nonconformity"]["actor"], "carol");
    assert_eq!(closing.body["schema"], "vigil.webhook-event.v1");

    // Filters: Slack got only critical nonconformity events; Alertmanager only A.8.2 ones.
    let slack = receiver.delivered("/slack");
    assert!(!slack.is_empty());
    for r in &slack {
        assert!(r.kind.starts_with("nonconformity."), "{}", r.kind);
        let generic = all.iter().find(|a| a.key == r.key).unwrap();
        assert_eq!(generic.body["severity"], "critical");
        assert!(r.body["blocks"].is_array());
    }
    let critical_ncs = all
        .iter()
        .filter(|a| a.kind.starts_with("nonconformity.") && a.body["severity"] == "critical")
        .count();
    assert_eq!(slack.len(), critical_ncs);
    let am = receiver.delivered("/api/v2/alerts");
    assert!(!am.is_empty());
    for r in &am {
        let generic = all.iter().find(|a| a.key == r.key).unwrap();
        assert!(
            generic.body["controls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "A.8.2")
        );
        assert!(r.body[0]["labels"]["alertname"].is_string());
    }

    // The webhook figures join /metrics (admins read it like any reader).
    let metrics = c
        .client
        .get(c.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    let delivered: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("vigil_webhook_deliveries_total{webhook="))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(delivered >= 1.0, "{metrics}");
    assert!(
        metrics.contains("# TYPE vigil_webhook_outbox_pending gauge"),
        "{metrics}"
    );

    // A further restart and evaluation derive the same happenings again: nothing is re-sent.
    let before = receiver.seen.lock().unwrap().len();
    c.running.shutdown().await.unwrap();
    let c = Collector::start(&config, clock.clone()).await;
    c.evaluate().await;
    tokio::time::sleep(StdDuration::from_millis(600)).await;
    assert_eq!(c.outbox().await.0, 0);
    assert_eq!(
        receiver.seen.lock().unwrap().len(),
        before,
        "nothing sent twice"
    );
    c.running.shutdown().await.unwrap();
    server.abort();
}

/// A real Alertmanager (Debian `prometheus-alertmanager`) on loopback, stopped on drop.
struct Alertmanager {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// `None` (with a message) when the binary is missing and VIGIL_ALERTMANAGER_REQUIRED is
    /// unset; tests/run sets it, so CI fails instead.
    async fn start() -> Option<Alertmanager> {
        let binary = Path::new("/usr/bin/prometheus-alertmanager");
        if !binary.exists() {
            assert!(
                std::env::var_os("VIGIL_ALERTMANAGER_REQUIRED").is_none(),
                "prometheus-alertmanager is missing (tests/run installs it)"
            );
            eprintln!("skipped: prometheus-alertmanager is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: sink\nreceivers:\n  - name: sink\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        wait_until("alertmanager ready", StdDuration::from_secs(30), || {
            let (client, ready) = (client.clone(), ready.clone());
            async move {
                client
                    .get(ready)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        Some(am)
    }

    async fn alerts(&self) -> Vec<serde_json::Value> {
        reqwest::get(format!("http://127.0.0.1:{}/api/v2/alerts", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_accepts_the_alerts_and_resolutions_end_them() {
    vigil_collector::tls::install_crypto_provider();
    let Some(am) = Alertmanager::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let path = dir.path().join("collector.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[storage]
data_dir = "{data}"
[isms]
dir = "{pack}"
[webhook_options]
poll_ms = 100
[[webhooks]]
name = "am"
url = "http://127.0.0.1:{port}/api/v2/alerts"
format = "alertmanager"
secret = "{SECRET}"
retry_initial_ms = 100
retry_max_ms = 400
kinds = ["nonconformity.opened", "nonconformity.closed"]
"#,
            data = data.display(),
            pack = default_pack().display(),
            port = am.port,
        ),
    )
    .unwrap();
    let mut config = CollectorConfig::load(&path, &Default::default()).unwrap();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now() - Duration::hours(1)));
    let c = Collector::start(&config, clock.clone()).await;
    let store = Arc::clone(c.running.store());
    let now = clock.now();
    let (_, agent) =
        vigil_collector::admin::add(store.as_ref(), "web-01", Role::Agent, BTreeMap::new(), now)
            .await
            .unwrap();
    let (_, admin) =
        vigil_collector::admin::add(store.as_ref(), "carol", Role::Admin, BTreeMap::new(), now)
            .await
            .unwrap();
    report(&c, &clock, agent.expose(), 1, &fixture("misconfigured")).await;
    c.evaluate().await;
    let open: Vec<u64> = store
        .nonconformities_at(None)
        .await
        .unwrap()
        .iter()
        .map(|nc| nc.id)
        .collect();
    assert!(open.len() > 1);
    let closed = open[0];
    clock.advance(Duration::minutes(1));
    let r = c
        .client
        .post(c.url(&format!("/api/v1/nonconformities/{closed}/actions")))
        .bearer_auth(admin.expose())
        .json(&serde_json::json!({"action": "close", "reason": "risk accepted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Alertmanager answers 200 to every delivery (a 400 would leave them pending).
    wait_until(
        "deliveries accepted",
        StdDuration::from_secs(30),
        || async {
            let stats = c.running.webhooks().unwrap().stats().await.unwrap();
            let (counters, outbox) = &stats.webhooks["am"];
            outbox.pending == 0 && counters.delivered as usize == open.len() + 1
        },
    )
    .await;
    let stats = c.running.webhooks().unwrap().stats().await.unwrap();
    assert_eq!(
        stats.webhooks["am"].0.attempts_failed, 0,
        "Alertmanager refused a body"
    );

    // Every open nonconformity is an active alert; the closed one was resolved.
    let alerts = am.alerts().await;
    let active: BTreeSet<u64> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "VigilNonconformity")
        .map(|a| {
            a["labels"]["nonconformity"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let expected: BTreeSet<u64> = open.iter().copied().filter(|id| *id != closed).collect();
    assert_eq!(active, expected);
    c.running.shutdown().await.unwrap();
}
