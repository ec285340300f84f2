//! Clause 10.2 end to end, on an injectable clock: a collector (in this process, with the
//! default ISMS pack and a manual clock) receives reports that the real `vigil-agent` builds
//! from the misconfigured fixture host; time is driven forward day by day. Every seeded
//! misconfiguration opens its nonconformity, mapped to its controls, once its grace period
//! has run out; the host is then fixed (the healthy fixture under the same identity), every
//! nonconformity resolves, is verified effective after three green measurements and closes.
//! KPI values, objective status and the register are then read back at past times.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use vigil_collector::auth::Role;
use vigil_collector::engine::{Clock, ManualClock};
use vigil_collector::evaluate::{NcEventKind, NcSource, NcState};
use vigil_collector::pipeline::{self, Running, StartOptions};
use vigil_collector::settings::CollectorConfig;
use vigil_shared::Report;
use vigil_tests::{bin, fixture};

const MISCONFIGURED_ID: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";

struct Harness {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    running: Running,
    token: String,
    viewer: String,
    client: reqwest::Client,
    seq: u64,
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn default_pack() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms")
}

/// The healthy fixture under the misconfigured host's identity: the host after it was fixed.
fn fixed_host(dir: &Path) -> std::path::PathBuf {
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
    // The web certificate expires in July 2026: the fixed host has it renewed.
    std::fs::copy(
        root.join("etc/ssl/private/internal-api.pem"),
        root.join("etc/letsencrypt/live/www.example.org/fullchain.pem"),
    )
    .unwrap();
    root
}

impl Harness {
    async fn start(start: DateTime<Utc>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = CollectorConfig::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.storage.data_dir = dir.path().join("data");
        config.isms.dir = Some(default_pack());
        let clock = Arc::new(ManualClock::new(start));
        let isms = pipeline::load_isms(&config).unwrap();
        let running = pipeline::start_with(
            &config,
            StartOptions {
                clock: clock.clone(),
                isms,
                scheduled_engine: false,
            },
        )
        .await
        .unwrap();
        let store = running.store().as_ref();
        let (_, token) =
            vigil_collector::admin::add(store, "web-01", Role::Agent, BTreeMap::new(), start)
                .await
                .unwrap();
        let (_, viewer) =
            vigil_collector::admin::add(store, "auditor", Role::Auditor, BTreeMap::new(), start)
                .await
                .unwrap();
        vigil_collector::tls::install_crypto_provider();
        Harness {
            _dir: dir,
            clock,
            running,
            token: token.expose().to_string(),
            viewer: viewer.expose().to_string(),
            client: reqwest::Client::new(),
            seq: 0,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.local_addr())
    }

    /// The real agent audits `root` as of the clock's time; the report is pushed over HTTP.
    async fn report(&mut self, root: &Path) -> Report {
        let now = self.clock.now();
        let output = Command::new(bin("vigil-agent"))
            .args([
                "collect",
                "--format",
                "json",
                "--cache-dir",
                "none",
                "--now",
            ])
            .arg(now.to_rfc3339())
            .arg("--root")
            .arg(root)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut report: Report = serde_json::from_slice(&output.stdout).unwrap();
        self.seq += 1;
        report.seq = self.seq;
        report.agent.id = "web-01".into();
        report.host.labels.insert("env".into(), "prod".into());
        let response = vigil_tests::signed_push(
            &self.client,
            &self.url("/api/v1/reports"),
            &self.token,
            &report,
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        report
    }

    /// The fixed host is maintained: a package is upgraded and the malware signatures are
    /// updated on the day it reports.
    fn maintain(&self, root: &Path) {
        use std::io::Write;
        let signatures = root.join("var/lib/clamav/daily.cld");
        let mut bytes = std::fs::read(&signatures).unwrap();
        let stamp = self.clock.now().format("%d %b %Y %H-%M +0000").to_string();
        // The header's build time: "ClamAV-VDB:31 May 2026 03-40 -0400:…", same length.
        bytes[11..11 + stamp.len()].copy_from_slice(stamp.as_bytes());
        std::fs::write(&signatures, bytes).unwrap();
        let when = self.clock.now().format("%Y-%m-%d %H:%M:%S");
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("var/log/dpkg.log"))
            .unwrap();
        writeln!(
            log,
            "{when} upgrade tzdata:all 2024b-0+deb12u1 2024b-0+deb12u1"
        )
        .unwrap();
        writeln!(log, "{when} status installed tzdata:all 2024b-0+deb12u1").unwrap();
    }

    async fn evaluate(&self) {
        self.running.engine().unwrap().evaluate_now().await.unwrap();
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

/// Rule → controls of the nonconformities the misconfigured host must raise at least: the
/// seeded misconfigurations of the core checks.
fn core_rule_ncs() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("patch.security-updates", vec!["A.8.8"]),
        ("patch.all-updates", vec!["A.8.8", "A.8.19"]),
        ("patch.kernel-current", vec!["A.8.8"]),
        ("patch.recent-maintenance", vec!["A.8.8", "A.8.32"]),
        ("access.no-extra-uid0", vec!["A.8.2", "A.5.15"]),
        ("access.no-empty-passwords", vec!["A.5.17", "A.8.5"]),
        ("access.password-age", vec!["A.5.17"]),
        ("access.privileged-accounts", vec!["A.8.2", "A.5.18"]),
        ("access.sudo-authentication", vec!["A.8.2", "A.8.5"]),
        ("access.ssh-keys", vec!["A.5.17", "A.8.5"]),
        ("access.dormant-accounts", vec!["A.5.18", "A.8.2"]),
        ("crypto.root-encrypted", vec!["A.8.24", "A.8.1"]),
        ("crypto.swap-encrypted", vec!["A.8.24", "A.8.1"]),
        ("crypto.volumes-encrypted", vec!["A.8.24", "A.5.33"]),
        ("harden.ssh-root-login", vec!["A.8.2", "A.8.5"]),
        ("harden.ssh-authentication", vec!["A.8.5", "A.5.17"]),
        ("harden.ssh-crypto", vec!["A.8.24", "A.8.20"]),
        ("harden.ssh-session", vec!["A.8.9", "A.8.20"]),
        ("harden.password-aging", vec!["A.5.17"]),
        ("harden.password-hashing", vec!["A.5.17", "A.8.24"]),
        ("harden.password-quality", vec!["A.5.17"]),
        ("harden.login-lockout", vec!["A.8.5"]),
        ("harden.pam-nullok", vec!["A.5.17", "A.8.5"]),
        ("harden.firewall-default-deny", vec!["A.8.20", "A.8.22"]),
        ("harden.firewall-open-ports", vec!["A.8.20", "A.8.22"]),
        (
            "harden.listening-services",
            vec!["A.8.20", "A.8.9", "A.8.19"],
        ),
        ("harden.kernel-sysctl", vec!["A.8.9"]),
        ("harden.network-sysctl", vec!["A.8.20", "A.8.9"]),
        ("harden.secure-boot", vec!["A.8.9", "A.8.7"]),
        ("harden.kernel-modules", vec!["A.8.9", "A.8.19", "A.7.10"]),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonconformities_open_resolve_verify_and_close_as_time_goes_by() {
    let start = t("2026-06-01T12:00:00Z");
    let mut h = Harness::start(start).await;
    let misconfigured = fixture("misconfigured");

    // Day 0: the misconfigured host reports. Rules without a grace period raise at once.
    let day0_report = h.report(&misconfigured).await;
    let day0_failing: BTreeSet<String> = day0_report
        .results
        .iter()
        .filter(|r| r.status == vigil_shared::Status::Fail)
        .map(|r| r.check.clone())
        .collect();
    h.evaluate().await;
    let store = Arc::clone(h.running.store());
    let day0: BTreeSet<String> = store
        .nonconformities_at(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|nc| nc.source == NcSource::Rule)
        .map(|nc| nc.subject)
        .collect();
    assert!(day0.contains("access.no-extra-uid0"), "{day0:?}");
    assert!(
        !day0.contains("patch.security-updates"),
        "14-day grace: not yet"
    );

    // 31 days of daily reports: every grace period (at most 30 days) runs out.
    for _ in 0..31 {
        h.clock.advance(Duration::days(1));
        h.report(&misconfigured).await;
        h.evaluate().await;
    }
    let broken_at = h.clock.now();
    let ncs = store.nonconformities_at(None).await.unwrap();
    let rule_ncs: BTreeMap<String, Vec<String>> = ncs
        .iter()
        .filter(|nc| nc.source == NcSource::Rule)
        .map(|nc| (nc.subject.clone(), nc.controls.clone()))
        .collect();
    // Every rule whose check failed on the misconfigured host raised its NC, with the rule's
    // controls, and nothing else did; the core seeded misconfigurations are among them.
    let isms = vigil_collector::isms::load_dir(&default_pack()).unwrap().0;
    let expected: BTreeMap<String, Vec<String>> = isms
        .rules
        .iter()
        .filter(|r| day0_failing.contains(&r.check))
        .map(|r| (r.id.clone(), r.controls.clone()))
        .collect();
    assert_eq!(
        rule_ncs, expected,
        "one NC per failing rule, mapped to its controls"
    );
    for (rule, controls) in core_rule_ncs() {
        assert_eq!(
            expected
                .get(rule)
                .map(|c| c.iter().map(String::as_str).collect::<Vec<_>>()),
            Some(controls),
            "{rule}"
        );
    }
    for nc in ncs.iter().filter(|nc| nc.source == NcSource::Rule) {
        assert_eq!(nc.state, NcState::Open, "{}", nc.title);
        assert_eq!(nc.machine_id.as_deref(), Some(MISCONFIGURED_ID));
    }
    let security = ncs
        .iter()
        .find(|nc| nc.subject == "patch.security-updates")
        .unwrap();
    assert_eq!(
        security.opened_at,
        start + Duration::days(14),
        "offender grace: opened the day the pending update turned 14 days old"
    );
    // KPIs analysed weekly missed their targets three times in a row: KPI nonconformities too.
    assert!(
        ncs.iter()
            .any(|nc| nc.source == NcSource::Kpi && nc.subject == "kpi.patch-security")
    );
    // Deduplicated: one NC per rule and host after a month of failing reports.
    assert_eq!(
        ncs.iter().filter(|nc| nc.source == NcSource::Rule).count(),
        expected.len()
    );

    // An admin records a corrective action on one of them through the store (the API is tested
    // elsewhere); it stays in the lifecycle.
    let uid0 = ncs
        .iter()
        .find(|nc| nc.subject == "access.no-extra-uid0")
        .unwrap()
        .id;
    let plan = vigil_collector::evaluate::nonconformities::NcAction::Plan {
        owner: "alice".into(),
        root_cause: "legacy shared root account".into(),
        corrective_action: "remove toor".into(),
        due: (broken_at + Duration::days(7)).date_naive(),
    };
    store
        .nc_action(uid0, plan, "alice", broken_at)
        .await
        .unwrap();

    // The host is fixed. Three green measurements verify every rule NC, which then closes.
    let fixed = fixed_host(h._dir.path());
    for _ in 0..3 {
        h.clock.advance(Duration::hours(6));
        h.maintain(&fixed);
        h.report(&fixed).await;
        h.evaluate().await;
    }
    let fixed_at = h.clock.now();
    for nc in store
        .nonconformities_at(None)
        .await
        .unwrap()
        .iter()
        .filter(|nc| nc.source == NcSource::Rule)
    {
        assert_eq!(
            nc.state,
            NcState::Closed,
            "{} ({:?})",
            nc.title,
            nc.close_reason
        );
        assert_eq!(nc.close_reason.as_deref(), Some("verified effective"));
        let detail = store.nonconformity(nc.id).await.unwrap().unwrap();
        let kinds: Vec<NcEventKind> = detail.events.iter().map(|e| e.kind).collect();
        let expected_kinds = if nc.id == uid0 {
            vec![
                NcEventKind::Opened,
                NcEventKind::ActionPlanned,
                NcEventKind::Resolved,
                NcEventKind::Verified,
                NcEventKind::Closed,
            ]
        } else {
            vec![
                NcEventKind::Opened,
                NcEventKind::Resolved,
                NcEventKind::Verified,
                NcEventKind::Closed,
            ]
        };
        assert_eq!(kinds, expected_kinds, "{}", nc.title);
        assert!(detail.events.iter().all(|e| e.at <= fixed_at));
    }

    // Five more weeks of good reports: the weekly KPI analyses are met three times in a row
    // and the KPI nonconformities close as well.
    for _ in 0..35 {
        h.clock.advance(Duration::days(1));
        h.maintain(&fixed);
        h.report(&fixed).await;
        h.evaluate().await;
    }
    let all = store.nonconformities_at(None).await.unwrap();
    let still_open: Vec<String> = all
        .iter()
        .filter(|nc| nc.state != NcState::Closed)
        .map(|nc| format!("{} ({})", nc.title, nc.state.as_str()))
        .collect();
    assert!(still_open.is_empty(), "{still_open:#?}");

    // Point in time: the register, the SoA and the KPIs as they stood when the host was broken.
    let then = store.nonconformities_at(Some(broken_at)).await.unwrap();
    let open_then = then
        .iter()
        .filter(|nc| nc.source == NcSource::Rule && nc.state.is_open())
        .count();
    assert_eq!(open_then, expected.len());
    let controls_then = store.controls_at(Some(broken_at)).await.unwrap();
    let a82_then = controls_then
        .iter()
        .find(|c| c.state.control == "A.8.2")
        .unwrap();
    assert_eq!(a82_then.state.status.as_str(), "not_implemented");
    let controls_now = store.controls_at(None).await.unwrap();
    let a82_now = controls_now
        .iter()
        .find(|c| c.state.control == "A.8.2")
        .unwrap();
    assert_eq!(a82_now.state.status.as_str(), "implemented");

    let at = broken_at.to_rfc3339();
    let api = h
        .get(&format!("/api/v1/soa?at={}", at.replace('+', "%2B")))
        .await;
    let a82 = api["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control"] == "A.8.2")
        .unwrap()
        .clone();
    assert_eq!(a82["status"], "not_implemented");
    let kpis_then = h
        .get(&format!("/api/v1/kpis?at={}", at.replace('+', "%2B")))
        .await;
    let patch = kpis_then["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "kpi.patch-security")
        .unwrap()
        .clone();
    assert_eq!(patch["latest_value"]["value"], 0.0);
    assert_eq!(patch["latest_evaluation"]["status"], "missed");
    let kpis_now = h.get("/api/v1/kpis").await;
    let patch = kpis_now["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "kpi.patch-security")
        .unwrap()
        .clone();
    assert_eq!(patch["latest_value"]["value"], 1.0);
    assert_eq!(patch["latest_evaluation"]["status"], "met");
    let history = h
        .get(&format!(
            "/api/v1/kpis/kpi.patch-security?from={}&to={}",
            start.to_rfc3339().replace('+', "%2B"),
            h.clock.now().to_rfc3339().replace('+', "%2B")
        ))
        .await;
    let values = history["values"].as_array().unwrap();
    assert!(
        values.len() >= 10,
        "hourly measurements over ten weeks: {}",
        values.len()
    );
    assert_eq!(values.first().unwrap()["value"], 0.0);
    assert_eq!(values.last().unwrap()["value"], 1.0);
    let objectives = h.get("/api/v1/objectives").await;
    let patch_objective = objectives["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "OBJ-PATCH")
        .unwrap()
        .clone();
    assert_eq!(patch_objective["status"], "achieved");
    let objectives_then = h
        .get(&format!("/api/v1/objectives?at={}", at.replace('+', "%2B")))
        .await;
    let patch_then = objectives_then["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "OBJ-PATCH")
        .unwrap()
        .clone();
    assert_eq!(patch_then["status"], "at_risk");

    // The management review over the whole period names what happened.
    let review = h
        .client
        .get(h.url(&format!(
            "/api/v1/reports/management-review?from={}&to={}&format=md",
            start.to_rfc3339().replace('+', "%2B"),
            h.clock.now().to_rfc3339().replace('+', "%2B")
        )))
        .bearer_auth(&h.viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(review.contains("In the period: "), "{review}");
    assert!(
        review.contains("g) Opportunities for continual improvement"),
        "{review}"
    );
    h.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_change_nonconformities_and_the_lifecycle_is_enforced() {
    let start = t("2026-06-01T12:00:00Z");
    let mut h = Harness::start(start).await;
    h.report(&fixture("misconfigured")).await;
    h.evaluate().await;
    let store = Arc::clone(h.running.store());
    let (_, admin) =
        vigil_collector::admin::add(store.as_ref(), "carol", Role::Admin, BTreeMap::new(), start)
            .await
            .unwrap();
    let admin = admin.expose().to_string();
    let uid0 = store
        .nonconformities_at(None)
        .await
        .unwrap()
        .into_iter()
        .find(|nc| nc.subject == "access.no-extra-uid0")
        .unwrap()
        .id;
    let post = |token: String, body: serde_json::Value, id: u64| {
        let client = h.client.clone();
        let url = h.url(&format!("/api/v1/nonconformities/{id}/actions"));
        async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let plan = serde_json::json!({
        "action": "plan", "owner": "alice", "root_cause": "shared account",
        "corrective_action": "remove toor", "due": "2026-06-15"
    });
    // Readers (viewer, auditor) and agents may not change anything.
    let (status, body) = post(h.viewer.clone(), plan.clone(), uid0).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("needs an admin token"),
        "{body}"
    );
    let (status, _) = post(h.token.clone(), plan.clone(), uid0).await;
    assert_eq!(status, 403);
    // Admins may, within the lifecycle.
    let (status, body) = post(
        admin.clone(),
        serde_json::json!({"action": "plan", "owner": "alice"}),
        uid0,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(admin.clone(), plan.clone(), uid0).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["nonconformity"]["state"], "action_planned");
    assert_eq!(
        body["events"].as_array().unwrap().last().unwrap()["actor"],
        "carol"
    );
    let (status, body) = post(
        admin.clone(),
        serde_json::json!({"action": "resolve", "note": "done"}),
        uid0,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("resolves itself"),
        "{body}"
    );
    let (status, _) = post(
        admin.clone(),
        serde_json::json!({"action": "close", "reason": " "}),
        uid0,
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = post(admin.clone(), plan.clone(), 99_999).await;
    assert_eq!(status, 404);
    let detail = h.get(&format!("/api/v1/nonconformities/{uid0}")).await;
    assert_eq!(detail["events"].as_array().unwrap().len(), 2);
    assert_eq!(detail["nonconformity"]["ref"], format!("NC-{uid0}"));

    // Hosts carry whether the scope covers them.
    let hosts = h.get("/api/v1/hosts").await;
    assert_eq!(hosts["hosts"][0]["in_scope"], true);

    // Reading needs a reader token; agents get 403, nobody 401.
    let r = h
        .client
        .get(h.url("/api/v1/soa"))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = h.client.get(h.url("/api/v1/soa")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = h
        .client
        .get(h.url("/api/v1/soa?format=csv"))
        .bearer_auth(&h.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.text().await.unwrap().lines().count(), 94);
    let r = h
        .client
        .get(h.url("/api/v1/soa?at=yesterday"))
        .bearer_auth(&h.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = h
        .client
        .get(h.url("/api/v1/nonconformities?state=bogus"))
        .bearer_auth(&h.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = h
        .client
        .get(h.url("/api/v1/reports/management-review?format=html"))
        .bearer_auth(&h.viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("Management review — Example Ltd")
    );
    h.running.shutdown().await.unwrap();
}
