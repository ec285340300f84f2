//! `GET /metrics` and the Grafana dashboards, end to end: a real collector with the default ISMS
//! pack, fed by real agents auditing the three fixture hosts, evaluated once.
//!
//! - The exposition matches the golden file `tests/golden/metrics.txt` (series names and labels;
//!   values are checked by assertions, since times and durations vary) and passes
//!   `promtool check metrics`.
//! - A real Prometheus (Debian's `prometheus` package) scrapes the collector on loopback, and
//!   every query of every panel of every dashboard in `dashboards/` returns data through its HTTP
//!   API.
//!
//! Without Prometheus installed the Prometheus parts are skipped with a message, unless
//! `VIGIL_PROMETHEUS_REQUIRED=1` (set by `tests/run`, which installs the package), where a
//! missing Prometheus fails. `VIGIL_UPDATE_GOLDEN=1` rewrites the golden file.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vigil_tests::{AgentSetup, Collector, fixture, free_port, http, repo, wait_until};

fn prometheus_required() -> bool {
    std::env::var_os("VIGIL_PROMETHEUS_REQUIRED").is_some_and(|v| v == "1")
}

/// Whether a command exists; when it does not, fails under CI and skips otherwise.
fn available(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !prometheus_required(),
            "{tool} is missing: apt-get install prometheus (tests/run does)"
        );
        eprintln!("{tool} is not installed: this part of the test is skipped");
    }
    found
}

/// A collector with the default pack, three fixture hosts reported, one evaluation done.
struct Fed {
    collector: Collector,
    viewer: String,
    _agents: Vec<AgentSetup>,
}

fn fed_collector() -> Fed {
    let mut collector = Collector::start().unwrap();
    collector.stop().unwrap();
    let mut config = std::fs::read_to_string(collector.config_path()).unwrap();
    config.push_str(&format!(
        "\n[isms]\ndir = \"{}\"\n",
        repo().join("packaging/isms").display()
    ));
    std::fs::write(collector.config_path(), config).unwrap();
    collector.spawn().unwrap();
    let viewer = collector.add_token("grafana", "viewer").unwrap();
    let admin = collector.add_token("ops", "admin").unwrap();
    let mut agents = Vec::new();
    for host in ["healthy", "misconfigured", "minimal"] {
        let token = collector.add_agent(host).unwrap();
        let agent = AgentSetup::new(host, &token, &collector.url(), &fixture(host)).unwrap();
        // In the default pack's scope (production hosts).
        let config = std::fs::read_to_string(agent.config_path()).unwrap();
        std::fs::write(
            agent.config_path(),
            config.replace("env = \"test\"", "env = \"prod\""),
        )
        .unwrap();
        let output = agent.run_once().unwrap();
        assert!(
            output.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        agents.push(agent);
    }
    // One refused report, so that the error series have something to show.
    let refused = http()
        .post(format!("{}/api/v1/reports", collector.url()))
        .bearer_auth(collector.add_agent("broken").unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);
    let evaluated = http()
        .post(format!("{}/api/v1/evaluations", collector.url()))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(evaluated.status(), 200, "{:?}", evaluated.text());
    Fed {
        collector,
        viewer,
        _agents: agents,
    }
}

fn scrape(fed: &Fed) -> String {
    let response = http()
        .get(format!("{}/metrics", fed.collector.url()))
        .bearer_auth(&fed.viewer)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().unwrap()
}

/// The value of the one sample whose series is exactly `series`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series}"))
        .parse()
        .unwrap()
}

fn sum_family(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Series names and labels with every value set to 0 (times, durations and fixture-dependent
/// ages vary; the values are asserted separately): what the golden file holds, itself a valid
/// exposition that promtool checks.
fn shape(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('#') {
            out.push_str(line);
        } else if let Some((series, _)) = line.rsplit_once(' ') {
            out.push_str(series);
            out.push_str(" 0");
        }
        out.push('\n');
    }
    out
}

fn promtool_check(text: &str) {
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_exposition_matches_the_golden_file_and_passes_promtool() {
    let fed = fed_collector();
    let unauthenticated = http()
        .get(format!("{}/metrics", fed.collector.url()))
        .send()
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let text = scrape(&fed);

    let golden = repo().join("tests/golden/metrics.txt");
    let actual = shape(&text);
    if std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &actual).unwrap();
    }
    std::fs::write(std::env::temp_dir().join("vigil-metrics-last.txt"), &text).unwrap();
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    let differences: Vec<String> = diff_lines(&expected, &actual);
    assert!(
        differences.is_empty(),
        "the exposition differs from {} (rerun with VIGIL_UPDATE_GOLDEN=1 if intended):\n{}",
        golden.display(),
        differences.join("\n")
    );

    assert_eq!(sample(&text, r#"vigil_hosts{state="reporting"}"#), 3.0);
    assert_eq!(sample(&text, r#"vigil_hosts{state="stale"}"#), 0.0);
    assert_eq!(
        sample(
            &text,
            &format!(
                r#"vigil_agent_versions{{version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        ),
        3.0
    );
    assert_eq!(
        sample(&text, r#"vigil_ingest_reports_total{outcome="stored"}"#),
        3.0
    );
    assert_eq!(
        sample(&text, r#"vigil_ingest_errors_total{reason="bad_request"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"vigil_ingest_reports_total{outcome="refused"}"#),
        1.0
    );
    // The scheduled evaluation at start, and the one asked for.
    assert!(sample(&text, r#"vigil_evaluations_total{result="success"}"#) >= 1.0);
    assert_eq!(
        sample(&text, "vigil_store_ingest_duration_seconds_count"),
        3.0
    );
    assert_eq!(sum_family(&text, "vigil_controls"), 93.0);
    assert_eq!(sum_family(&text, "vigil_control_status"), 93.0);
    // 16 KPIs, each with exactly one current status; 6 objectives likewise.
    assert_eq!(sum_family(&text, "vigil_kpi_status"), 16.0);
    assert_eq!(sum_family(&text, "vigil_objective_status"), 6.0);
    // The misconfigured host fails rules, so rule-sourced nonconformities may wait for their
    // grace period; the failing verdicts are there at once.
    assert!(
        sample(
            &text,
            r#"vigil_rule_verdicts{rule="access.no-extra-uid0",verdict="fail"}"#
        ) >= 1.0
    );
    assert!(sample(&text, "vigil_evaluation_last_timestamp_seconds") > 1.7e9);
    // No series names a host.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("machine_id") && !line.contains("hostname"),
            "{line}"
        );
    }

    if available("promtool") {
        // The live exposition and the golden file.
        promtool_check(&text);
        promtool_check(&expected);
    }
}

fn diff_lines(expected: &str, actual: &str) -> Vec<String> {
    let e: std::collections::BTreeSet<&str> = expected.lines().collect();
    let a: std::collections::BTreeSet<&str> = actual.lines().collect();
    e.difference(&a)
        .map(|l| format!("- {l}"))
        .chain(a.difference(&e).map(|l| format!("+ {l}")))
        .take(40)
        .collect()
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = Vec::new();
    for entry in std::fs::read_dir(repo().join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let board: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path.file_name().unwrap().to_string_lossy().into(), board));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every (dashboard, panel, query) with the dashboard variables substituted as "All".
fn queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, board) in dashboards() {
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "1m")
                    .replace("$theme", ".*");
                out.push((
                    name.clone(),
                    panel["title"].as_str().unwrap().to_string(),
                    expr,
                ));
            }
        }
    }
    out
}

#[test]
fn the_dashboards_are_well_formed() {
    let boards = dashboards();
    let names: Vec<&str> = boards.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "vigil-access.json",
            "vigil-controls.json",
            "vigil-encryption.json",
            "vigil-hosts.json",
            "vigil-overview.json",
            "vigil-patching.json"
        ]
    );
    let mut uids = std::collections::BTreeSet::new();
    for (name, board) in &boards {
        assert!(
            uids.insert(board["uid"].as_str().unwrap().to_string()),
            "{name}: uid"
        );
        let variables = board["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{name}: a Prometheus data source variable"
        );
        let mut ids = std::collections::BTreeSet::new();
        for panel in board["panels"].as_array().unwrap() {
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: panel ids"
            );
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{name}");
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {}", panel["title"]);
            for target in targets {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{name}");
                assert!(!target["expr"].as_str().unwrap().is_empty());
            }
            let grid = &panel["gridPos"];
            assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24);
        }
    }
    for file in [
        "dashboards/provisioning/datasources/vigil.yaml",
        "dashboards/provisioning/dashboards/vigil.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(text.contains("apiVersion: 1"), "{file}");
    }
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Percent-encodes a query parameter (everything but RFC 3986's unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query_url(port: u16, expr: &str) -> String {
    format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}",
        encode(expr)
    )
}

fn query(port: u16, expr: &str) -> serde_json::Value {
    let response = http().get(query_url(port, expr)).send().unwrap();
    response.json().unwrap()
}

#[test]
fn every_dashboard_panel_returns_data_from_a_real_prometheus() {
    if !available("prometheus") {
        return;
    }
    let fed = fed_collector();
    let work = tempfile::tempdir().unwrap();
    let token_file = work.path().join("vigil.token");
    std::fs::write(&token_file, &fed.viewer).unwrap();
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: vigil\n    scrape_interval: 1s\n    \
             authorization:\n      type: Bearer\n      credentials_file: {}\n    \
             static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
            token_file.display(),
            fed.collector.port
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(work.path().join("prometheus.log")).unwrap();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // Enough scrapes for the rate() panels (several samples inside their window).
    let ready = wait_until(Duration::from_secs(60), || {
        http()
            .get(query_url(port, "count_over_time(vigil_collector_info[1m])"))
            .send()
            .ok()
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .and_then(|v| {
                v["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|s| s.parse::<f64>().ok())
            })
            .is_some_and(|n| n >= 5.0)
    });
    let prometheus_log =
        || std::fs::read_to_string(work.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        ready,
        "Prometheus never scraped the collector:\n{}",
        prometheus_log()
    );

    let queries = queries();
    assert!(queries.len() >= 40, "{}", queries.len());
    let mut failures = Vec::new();
    for (board, panel, expr) in &queries {
        let answer = query(port, expr);
        let result = &answer["data"]["result"];
        let has_data = match answer["data"]["resultType"].as_str() {
            Some("vector" | "matrix") => result.as_array().is_some_and(|r| !r.is_empty()),
            Some("scalar") => true,
            _ => false,
        };
        if answer["status"] != "success" || !has_data {
            failures.push(format!("{board} / {panel}: {expr}\n    {answer}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} panel queries returned no data:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}
