//! The auditor evidence export end to end: a collector (in this process, default ISMS pack,
//! manual clock) receives reports the real `vigil-agent` builds from the healthy and the
//! misconfigured fixture hosts over five days and evaluates them; the bundle is then taken
//! through the API with an auditor token and through the `vigil-collector export` command.
//! Both bundles: OSCAL valid against the NIST schemas, a well-formed HTML report with its
//! sections, `export verify` passing, and failing — naming the file — after any one byte of
//! any file changes, a file is removed or one is added. The stable parts (files, findings,
//! POA&M items, coverage) are compared with `tests/golden/export-summary.json`
//! (`VIGIL_UPDATE_GOLDEN=1` rewrites it).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use vigil_collector::auth::Role;
use vigil_collector::engine::ManualClock;
use vigil_collector::pipeline::{self, StartOptions};
use vigil_collector::settings::CollectorConfig;
use vigil_shared::Report;
use vigil_tests::{bin, fixture};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn schema_errors(file: &str, doc: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo("collector/oscal/schemas").join(file)).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

/// The real agent audits `root` as of `now`; its report is pushed over HTTP.
async fn push(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    root: &Path,
    now: DateTime<Utc>,
    seq: u64,
) {
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
    report.seq = seq;
    report.agent.id = "fleet".into();
    report.host.labels.insert("env".into(), "prod".into());
    let response =
        vigil_tests::signed_push(client, &format!("{base}/api/v1/reports"), token, &report)
            .await
            .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

fn entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut e = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (e.name().to_string(), bytes)
        })
        .collect()
}

fn rezip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn get<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .1
}

fn json(entries: &[(String, Vec<u8>)], name: &str) -> serde_json::Value {
    serde_json::from_slice(get(entries, name)).unwrap()
}

/// `vigil-collector export verify`: exit status and standard output.
fn verify(bundle: &Path) -> (bool, String) {
    let output = Command::new(bin("vigil-collector"))
        .args(["export", "verify"])
        .arg(bundle)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A strict enough well-formedness check for the report: every non-void element closes in
/// order, attributes are quoted, and there is exactly one html, head and body.
fn assert_well_formed_html(html: &str) {
    const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
    assert!(html.starts_with("<!DOCTYPE html>"));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let close = rest.find('>').expect("unterminated tag");
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().unwrap_or_default();
            assert_eq!(top, name, "</{name}> closes <{top}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "bad tag <{tag}>");
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if name == "style" {
            let end = rest.find("</style>").unwrap();
            rest = &rest[end + "</style>".len()..];
            continue;
        }
        if !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    for once in ["<html", "<head>", "<body>"] {
        assert_eq!(html.matches(once).count(), 1, "{once}");
    }
}

/// Everything about one bundle that must hold, whichever way it was made.
fn check_bundle(path: &Path) -> Vec<(String, Vec<u8>)> {
    let files = entries(path);
    let (ok, out) = verify(path);
    assert!(ok, "{out}");
    assert!(out.contains("ok: "), "{out}");
    let ar = json(&files, "oscal/assessment-results.json");
    let errors = schema_errors("oscal_assessment-results_schema.json", &ar);
    assert!(errors.is_empty(), "{errors:#?}");
    let poam = json(&files, "oscal/poam.json");
    let errors = schema_errors("oscal_poam_schema.json", &poam);
    assert!(errors.is_empty(), "{errors:#?}");
    let html = String::from_utf8(get(&files, "index.html").to_vec()).unwrap();
    assert_well_formed_html(&html);
    for section in [
        "Statement of Applicability",
        "KPIs",
        "Objectives",
        "Nonconformity register",
        "Host inventory and coverage",
        "Risk register",
    ] {
        assert!(html.contains(&format!("{section}</h2>")), "{section}");
    }
    assert!(!html.contains("src=") && !html.contains("https://"));
    files
}

/// The parts of a bundle that do not depend on when it was made, for the golden file.
fn summary(files: &[(String, Vec<u8>)]) -> serde_json::Value {
    let ar = json(files, "oscal/assessment-results.json");
    let findings: BTreeMap<String, String> = ar["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["target"]["target-id"].as_str().unwrap().to_string(),
                f["target"]["status"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let poam = json(files, "oscal/poam.json");
    let mut items: Vec<String> = poam["plan-of-action-and-milestones"]["poam-items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    items.sort();
    let hosts = json(files, "hosts.json");
    let coverage: Vec<serde_json::Value> = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            serde_json::json!({
                "hostname": h["hostname"], "reports_in_period": h["reports_in_period"],
                "gaps_total": h["gaps_total"], "in_scope": h["in_scope"],
            })
        })
        .collect();
    let controls = json(files, "controls.json");
    let evidence: BTreeMap<String, u64> = controls["controls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["evidence_records"].as_u64().unwrap() > 0)
        .map(|c| {
            (
                c["control"].as_str().unwrap().to_string(),
                c["evidence_records"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    serde_json::json!({
        "files": names,
        "findings": findings,
        "poam_items": items,
        "hosts": coverage,
        "evidence_records_per_control": evidence,
    })
}

fn compare_golden(actual: &serde_json::Value) {
    let golden = repo("tests/golden/export-summary.json");
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == text,
        "{} differs from the export (rerun with VIGIL_UPDATE_GOLDEN=1 if intended):\n{text}",
        golden.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_bundle_is_valid_readable_and_tamper_evident() {
    let dir = tempfile::tempdir().unwrap();
    let start = t("2026-06-01T00:00:00Z");
    let mut config = CollectorConfig::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = dir.path().join("data");
    config.isms.dir = Some(repo("packaging/isms"));
    let clock = Arc::new(ManualClock::new(start));
    let running = pipeline::start_with(
        &config,
        StartOptions {
            clock: clock.clone(),
            isms: pipeline::load_isms(&config).unwrap(),
            scheduled_engine: false,
        },
    )
    .await
    .unwrap();
    let store = running.store().as_ref();
    let add = |name: &'static str, role| async move {
        let (_, token) = vigil_collector::admin::add(store, name, role, BTreeMap::new(), start)
            .await
            .unwrap();
        token.expose().to_string()
    };
    let agent = add("fleet", Role::Agent).await;
    let auditor = add("external-auditor", Role::Auditor).await;
    vigil_collector::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let base = format!("http://{}", running.local_addr());

    // Two days: both hosts report every 100 minutes (the pack expects a report at least every
    // 2 hours, `stale_after`); the misconfigured one is silent from 06:00 to 12:00 on the second
    // day (one coverage gap). The engine evaluates after every round.
    let mut seq = 0;
    let silent = (t("2026-06-02T06:00:00Z"), t("2026-06-02T12:00:00Z"));
    let mut at = start;
    while at < t("2026-06-03T00:00:00Z") {
        clock.set(at);
        for name in ["healthy", "misconfigured"] {
            if name == "misconfigured" && at >= silent.0 && at < silent.1 {
                continue;
            }
            seq += 1;
            push(&client, &base, &agent, &fixture(name), at, seq).await;
        }
        running.engine().unwrap().evaluate_now().await.unwrap();
        at += Duration::minutes(100);
    }
    clock.set(t("2026-06-03T00:00:00Z"));

    // Through the API, as the auditor.
    let response = client
        .get(format!(
            "{base}/api/v1/export?from=2026-06-01&to=2026-06-02"
        ))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("vigil-evidence-2026-06-01T000000Z-2026-06-03T000000Z.zip")
    );
    let api_bundle = dir.path().join("api.zip");
    std::fs::write(&api_bundle, response.bytes().await.unwrap()).unwrap();
    let api_files = check_bundle(&api_bundle);
    running.shutdown().await.unwrap();

    // Through the command line, on the same store.
    let config_file = dir.path().join("collector.toml");
    std::fs::write(
        &config_file,
        format!(
            "[storage]\ndata_dir = {:?}\n\n[isms]\ndir = {:?}\n",
            dir.path().join("data"),
            repo("packaging/isms")
        ),
    )
    .unwrap();
    let cli_bundle = dir.path().join("out/cli.zip");
    std::fs::create_dir_all(cli_bundle.parent().unwrap()).unwrap();
    let output = Command::new(bin("vigil-collector"))
        .arg("--config")
        .arg(&config_file)
        .args([
            "export",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-02",
            "--out",
        ])
        .arg(&cli_bundle)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Only the bundle is left in the output directory (the partial file was renamed).
    assert_eq!(
        std::fs::read_dir(cli_bundle.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
    let cli_files = check_bundle(&cli_bundle);

    // Same store, same period: the same content whichever way (generation times differ).
    let api_summary = summary(&api_files);
    assert_eq!(api_summary, summary(&cli_files));
    for name in [
        "evidence/A.8.8.jsonl",
        "soa.csv",
        "hosts.json",
        "nonconformities.json",
    ] {
        assert_eq!(get(&api_files, name), get(&cli_files, name), "{name}");
    }
    // The seeded misconfigurations are in the register and the POA&M; the healthy host has no
    // coverage gap, the misconfigured host's silent morning is one.
    let ncs = json(&cli_files, "nonconformities.json");
    let ncs = ncs["nonconformities"].as_array().unwrap();
    assert!(!ncs.is_empty());
    assert!(
        ncs.iter()
            .all(|n| !n["events"].as_array().unwrap().is_empty())
    );
    let hosts = json(&cli_files, "hosts.json");
    for h in hosts["hosts"].as_array().unwrap() {
        let expected_gaps = u64::from(h["machine_id"] == "9f8e7d6c5b4a39281706f5e4d3c2b1a0");
        assert_eq!(h["gaps_total"], expected_gaps, "{h}");
    }
    // Every evidence line carries its three times.
    let a88 = String::from_utf8(get(&cli_files, "evidence/A.8.8.jsonl").to_vec()).unwrap();
    for line in a88.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in ["observed_at", "received_at"] {
            assert!(v[field].is_string(), "{field}: {line}");
        }
        assert!(v["covers"]["from"].is_string(), "{line}");
        assert!(v["covers"].get("until").is_some(), "{line}");
    }
    compare_golden(&api_summary);

    // Tampering: one byte in each file in turn (two verifiers at a time), then a removed and
    // an added file.
    let tampered = dir.path().join("tampered.zip");
    let cases: Vec<(usize, &String)> = cli_files.iter().map(|(n, _)| n).enumerate().collect();
    std::thread::scope(|scope| {
        for lane in cases.chunks(cases.len().div_ceil(2)) {
            let (dir, cli_files) = (dir.path(), &cli_files);
            scope.spawn(move || {
                for &(i, name) in lane {
                    let mut copy = cli_files.clone();
                    let mut changed = copy[i].1.clone();
                    let at = changed.len() / 2;
                    changed[at] = changed[at].wrapping_add(1);
                    copy[i].1 = changed;
                    let path = dir.join(format!("tampered-{i}.zip"));
                    rezip(&path, &copy);
                    let (ok, out) = verify(&path);
                    assert!(
                        !ok,
                        "one byte changed in {name} passed verification:\n{out}"
                    );
                    if name == "manifest.sig" {
                        assert!(out.contains("FAIL manifest.sig: "), "{name}: {out}");
                    } else if name != "manifest.json" {
                        assert!(
                            out.contains(&format!("FAIL {name}: modified")),
                            "{name}: {out}"
                        );
                    }
                }
            });
        }
    });
    let mut copy: Vec<_> = cli_files
        .iter()
        .filter(|(n, _)| n != "soa.csv")
        .cloned()
        .collect();
    copy.push(("evidence/A.5.1.jsonl".into(), b"{}\n".to_vec()));
    rezip(&tampered, &copy);
    let (ok, out) = verify(&tampered);
    assert!(!ok);
    assert!(
        out.contains("FAIL soa.csv: listed in the manifest but missing"),
        "{out}"
    );
    assert!(
        out.contains("FAIL evidence/A.5.1.jsonl: in the bundle but not listed"),
        "{out}"
    );
}
