//! The export against a real collector (SQLite, default ISMS pack, manual clock): bundle
//! contents, OSCAL validity against the NIST schemas, `verify` catching every one-byte change,
//! an added and a removed file, and the auditor role reading but never writing.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::manifest::{self, MANIFEST, Manifest, Problem};
use super::{ExportOptions, oscal, write_bundle};
use crate::auth::Role;
use crate::engine::ManualClock;
use crate::pipeline::{self, Running, StartOptions};
use crate::testutil::{self, client, fail, pass, t0};

fn pack_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms")
}

pub(crate) fn schema(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("oscal/schemas")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every schema error, as text (empty when valid).
pub(crate) fn schema_errors(schema_file: &str, doc: &serde_json::Value) -> Vec<String> {
    let validator = jsonschema::validator_for(&schema(schema_file)).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    running: Running,
    admin: String,
    auditor: String,
    viewer: String,
    agent: String,
    base: String,
    clock: Arc<ManualClock>,
}

fn start_time() -> DateTime<Utc> {
    t0() + Duration::days(1)
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = testutil::test_config(dir.path());
    config.isms.dir = Some(pack_dir());
    let clock = Arc::new(ManualClock::new(start_time()));
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
    let store = running.store().clone();
    let token = |name: &'static str, role| {
        let store = store.clone();
        async move {
            let (_, token) =
                crate::admin::add(store.as_ref(), name, role, Default::default(), Utc::now())
                    .await
                    .unwrap();
            if role == Role::Agent {
                store
                    .register_agent_key(
                        name,
                        testutil::agent_key(name).verifying_key().to_bytes(),
                        crate::store::chain::KeySource::FirstUse,
                        Utc::now(),
                    )
                    .await
                    .unwrap();
            }
            token.expose().to_string()
        }
    };
    let f = Fixture {
        base: format!("http://{}", running.local_addr()),
        admin: token("root", Role::Admin).await,
        auditor: token("audit-firm", Role::Auditor).await,
        viewer: token("grafana", Role::Viewer).await,
        agent: token("web-01", Role::Agent).await,
        dir,
        running,
        clock,
    };
    // Hourly reports from two hosts over the day before the clock; host m2 stops half-way.
    let http = client();
    let mut seq = 0;
    for hour in 0..24i64 {
        for host in ["m1", "m2"] {
            if host == "m2" && hour >= 12 {
                continue;
            }
            seq += 1;
            let mut report = testutil::report("web-01", host, seq);
            let at = t0() + Duration::hours(hour);
            report.sent_at = at + Duration::seconds(1);
            report.results = vec![
                pass("accounts.uid0", at),
                if hour % 2 == 0 {
                    fail("packages.pending_security", at)
                } else {
                    pass("packages.pending_security", at)
                },
            ];
            f.clock.set(at + Duration::seconds(2));
            let json = serde_json::to_vec(&report).unwrap();
            let body = vigil_shared::codec::gzip(&json).unwrap();
            let answer = http
                .post(format!("{}/api/v1/reports", f.base))
                .bearer_auth(&f.agent)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .header(
                    vigil_shared::signing::SIGNATURE_HEADER,
                    testutil::signature("web-01", &json),
                )
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        }
    }
    f.clock.set(start_time());
    let answer = http
        .post(format!("{}/api/v1/evaluations", f.base))
        .bearer_auth(&f.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    f
}

fn options() -> ExportOptions {
    ExportOptions {
        collector_key: Arc::new(vigil_shared::signing::SigningKey::from_bytes(&[9; 32])),
        from: t0() - Duration::hours(1),
        to: start_time(),
        generated_at: start_time(),
        isms_pack_digest: super::pack_digest(&pack_dir()).unwrap(),
    }
}

async fn export(f: &Fixture) -> std::path::PathBuf {
    let path = f.dir.path().join("bundle.zip");
    let spool = tempfile::tempdir().unwrap();
    let isms = pipeline::load_isms(&{
        let mut c = testutil::test_config(f.dir.path());
        c.isms.dir = Some(pack_dir());
        c
    })
    .unwrap()
    .unwrap();
    let file = std::fs::File::create(&path).unwrap();
    let summary = write_bundle(
        f.running.store().as_ref(),
        &isms,
        &options(),
        file,
        spool.path(),
    )
    .await
    .unwrap();
    assert_eq!(summary.hosts, 2);
    path
}

fn read_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
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

fn write_entries(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries.iter().find(|(n, _)| n == name).unwrap().1
}

#[tokio::test]
async fn the_bundle_holds_every_part_with_valid_oscal_and_a_manifest() {
    let f = fixture().await;
    let path = export(&f).await;
    let entries = read_entries(&path);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for required in [
        "soa.json",
        "soa.csv",
        "controls.json",
        "kpis.json",
        "objectives.json",
        "nonconformities.json",
        "hosts.json",
        "risks.json",
        "oscal/assessment-results.json",
        "oscal/poam.json",
        "index.html",
        MANIFEST,
        "evidence/A.8.8.jsonl",
    ] {
        assert!(
            names.contains(&required),
            "{required} missing from {names:?}"
        );
    }
    // The manifest lists every other file with its true hash and size.
    let manifest: Manifest = serde_json::from_slice(entry(&entries, MANIFEST)).unwrap();
    assert_eq!(manifest.format_version, 1);
    // Every file but the manifest and its signature.
    assert_eq!(manifest.files.len(), entries.len() - 2);
    assert!(manifest.isms_pack_digest.starts_with("sha256:"));
    for file in &manifest.files {
        use sha2::Digest;
        let bytes = entry(&entries, &file.path);
        assert_eq!(file.size, bytes.len() as u64);
        assert_eq!(file.sha256, hex::encode(sha2::Sha256::digest(bytes)));
    }
    // Raw evidence: every line has its three times, and lies in the period.
    let evidence = String::from_utf8(entry(&entries, "evidence/A.8.8.jsonl").to_vec()).unwrap();
    let lines: Vec<serde_json::Value> = evidence
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Failing packages.pending_security results map to A.8.8 (passing ones, like every
    // `testutil::pass`, to A.8.2): every other hour, 12 from m1 and 6 from m2.
    assert_eq!(lines.len(), 18, "{evidence}");
    for line in &lines {
        assert!(line["observed_at"].is_string());
        assert!(line["received_at"].is_string());
        assert!(line["covers"]["from"].is_string());
        assert_eq!(line["control"], "A.8.8");
    }
    // Each failure was followed by a pass an hour later: every window is closed…
    assert!(lines.iter().all(|l| l["covers"]["until"].is_string()));
    // …while the latest passing results are still in force (open window).
    let a82 = String::from_utf8(entry(&entries, "evidence/A.8.2.jsonl").to_vec()).unwrap();
    assert!(a82.contains("\"until\":null"), "{a82}");
    // Coverage: m2 stopped reporting at hour 11; the gap to the end of the period is listed.
    let hosts: serde_json::Value = serde_json::from_slice(entry(&entries, "hosts.json")).unwrap();
    let m2 = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["machine_id"] == "m2")
        .unwrap();
    assert_eq!(m2["reports_in_period"], 12);
    assert_eq!(m2["gaps_total"], 1, "{m2}");
    let m1 = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["machine_id"] == "m1")
        .unwrap();
    assert_eq!(m1["reports_in_period"], 24);
    // OSCAL validates against the official schemas.
    let ar: serde_json::Value =
        serde_json::from_slice(entry(&entries, "oscal/assessment-results.json")).unwrap();
    let errors = schema_errors("oscal_assessment-results_schema.json", &ar);
    assert!(errors.is_empty(), "{errors:#?}");
    let poam: serde_json::Value =
        serde_json::from_slice(entry(&entries, "oscal/poam.json")).unwrap();
    let errors = schema_errors("oscal_poam_schema.json", &poam);
    assert!(errors.is_empty(), "{errors:#?}");
    let result = &ar["assessment-results"]["results"][0];
    assert!(!result["findings"].as_array().unwrap().is_empty());
    assert_eq!(result["observations"].as_array().unwrap().len(), 4);
    // UUIDs are v5 and stable for the same export.
    let id = uuid::Uuid::parse_str(ar["assessment-results"]["uuid"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 5);
    let again = export(&f).await;
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap(),
        "same store, same generation time: byte-identical bundle"
    );
    // The HTML report is one page with its sections and no external asset.
    let html = String::from_utf8(entry(&entries, "index.html").to_vec()).unwrap();
    for section in [
        "id=\"summary\"",
        "id=\"soa\"",
        "id=\"kpis\"",
        "id=\"objectives\"",
        "id=\"nonconformities\"",
        "id=\"hosts\"",
        "id=\"risks\"",
        "id=\"files\"",
    ] {
        assert!(html.contains(section), "{section}");
    }
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    // And the bundle verifies.
    let verification = manifest::verify(std::fs::File::open(&path).unwrap());
    assert!(verification.is_ok(), "{}", verification.render());
    assert_eq!(verification.verified, manifest.files.len());
    f.running.shutdown().await.unwrap();
}

#[test]
fn the_schema_validator_rejects_broken_documents() {
    // A minimal valid document, then one break at a time: each must fail, so the validation
    // above is real (including the `\p{L}` token patterns).
    let valid = serde_json::json!({
        "assessment-results": {
            "uuid": oscal::uuid_for("x"),
            "metadata": {
                "title": "t", "last-modified": "2026-06-01T00:00:00Z",
                "version": "1", "oscal-version": "1.1.3"
            },
            "import-ap": { "href": "../index.html" },
            "results": [{
                "uuid": oscal::uuid_for("r"), "title": "r", "description": "d",
                "start": "2026-06-01T00:00:00Z",
                "reviewed-controls": { "control-selections": [
                    { "include-controls": [ { "control-id": "A.8.8" } ] } ] },
                "findings": [{
                    "uuid": oscal::uuid_for("f"), "title": "f", "description": "d",
                    "target": { "type": "objective-id", "target-id": "Ä.8.8",
                                "status": { "state": "satisfied" } }
                }]
            }]
        }
    });
    let file = "oscal_assessment-results_schema.json";
    assert!(
        schema_errors(file, &valid).is_empty(),
        "{:?}",
        schema_errors(file, &valid)
    );
    type Break<'a> = (&'a str, &'a dyn Fn(&mut serde_json::Value));
    let breaks: [Break<'_>; 5] = [
        ("control id starting with a digit (\\p{L} pattern)", &|d| {
            d["assessment-results"]["results"][0]["reviewed-controls"]["control-selections"][0]["include-controls"]
                [0]["control-id"] = "8.8".into();
        }),
        ("uuid not a uuid", &|d| {
            d["assessment-results"]["uuid"] = "1234".into()
        }),
        ("missing metadata", &|d| {
            d["assessment-results"]
                .as_object_mut()
                .unwrap()
                .remove("metadata");
        }),
        ("unknown finding state", &|d| {
            d["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] =
                "fine".into();
        }),
        ("time without a zone", &|d| {
            d["assessment-results"]["results"][0]["start"] = "2026-06-01T00:00:00".into();
        }),
    ];
    for (what, break_it) in breaks {
        let mut doc = valid.clone();
        break_it(&mut doc);
        assert!(!schema_errors(file, &doc).is_empty(), "{what} was accepted");
    }
}

#[tokio::test]
async fn verify_flags_every_one_byte_change_and_added_or_removed_files() {
    let f = fixture().await;
    let path = export(&f).await;
    let entries = read_entries(&path);
    let tampered = f.dir.path().join("tampered.zip");
    // One byte changed in each file in turn: exactly that file is flagged (the manifest itself
    // changed makes every file it then misdescribes, or the manifest, fail).
    for (i, (name, bytes)) in entries.iter().enumerate() {
        let mut copy = entries.clone();
        let mut changed = bytes.clone();
        let at = changed.len() / 2;
        changed[at] ^= 0x01;
        copy[i].1 = changed;
        write_entries(&tampered, &copy);
        let v = manifest::verify(std::fs::File::open(&tampered).unwrap());
        assert!(!v.is_ok(), "a changed byte in {name} went unnoticed");
        if name != MANIFEST && name != manifest::MANIFEST_SIG {
            // The file is flagged first; what its content means may add more (a changed
            // evidence line no longer matches its signed report).
            assert!(
                matches!(v.problems.first(), Some(Problem::Modified { path, .. }) if path == name),
                "{name}: {:?}",
                v.problems
            );
            assert!(v.render().contains(&format!("{name}: modified")));
        }
    }
    // A file removed, another added.
    let mut copy: Vec<_> = entries
        .iter()
        .filter(|(n, _)| n != "risks.json")
        .cloned()
        .collect();
    copy.push(("notes.txt".into(), b"added later".to_vec()));
    write_entries(&tampered, &copy);
    let v = manifest::verify(std::fs::File::open(&tampered).unwrap());
    assert!(v.problems.contains(&Problem::Missing {
        path: "risks.json".into()
    }));
    assert!(v.problems.contains(&Problem::Added {
        path: "notes.txt".into()
    }));
    assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
    // A byte flipped in the zip file itself (compressed data): the entry no longer reads.
    let mut raw = std::fs::read(&path).unwrap();
    let at = raw.len() / 3;
    raw[at] ^= 0xff;
    std::fs::write(&tampered, &raw).unwrap();
    let v = manifest::verify(std::fs::File::open(&tampered).unwrap());
    assert!(!v.is_ok(), "a flipped byte in the zip went unnoticed");
    f.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn auditors_download_the_export_and_are_refused_every_write() {
    let f = fixture().await;
    let http = client();
    let url = |p: &str| format!("{}{p}", f.base);
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let export_url = url(&format!(
        "/api/v1/export?from={}&to={}",
        stamp(t0() - Duration::hours(1)),
        stamp(start_time())
    ));
    let answer = http
        .get(&export_url)
        .bearer_auth(&f.auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/zip");
    let bytes = answer.bytes().await.unwrap();
    let downloaded = f.dir.path().join("api.zip");
    std::fs::write(&downloaded, &bytes).unwrap();
    let v = manifest::verify(std::fs::File::open(&downloaded).unwrap());
    assert!(v.is_ok(), "{}", v.render());
    // Viewers and agents may not take the export; bad periods are 400.
    for token in [&f.viewer, &f.agent] {
        let answer = http
            .get(&export_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
    }
    let answer = http
        .get(url("/api/v1/export?from=2026-06-02&to=2026-06-01"))
        .bearer_auth(&f.auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = http
        .get(url("/api/v1/export?from=yesterday"))
        .bearer_auth(&f.auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // Every write endpoint that takes a principal's token refuses the auditor with 403.
    let report = testutil::report("audit-firm", "m9", 1);
    for (path, body) in [
        (
            "/api/v1/reports",
            vigil_shared::codec::encode_gzip(&report).unwrap(),
        ),
        (
            "/api/v1/nonconformities/1/actions",
            br#"{"action":"close","reason":"auditor tries"}"#.to_vec(),
        ),
        ("/api/v1/evaluations", Vec::new()),
    ] {
        let mut request = http
            .post(url(path))
            .bearer_auth(&f.auditor)
            .header("content-type", "application/json")
            .body(body);
        if path == "/api/v1/reports" {
            request = request.header("content-encoding", "gzip");
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 403, "{path}");
    }
    // Enrollment takes an enrollment token, which an auditor's token is not.
    let answer = http
        .post(url("/api/v1/enroll"))
        .bearer_auth(&f.auditor)
        .header("content-type", "application/json")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_client_error(),
        "enroll with an auditor token: {}",
        answer.status()
    );
    // Nothing changed: no report stored for m9, nonconformities untouched.
    assert!(f.running.store().host_detail("m9").await.unwrap().is_none());
    f.running.shutdown().await.unwrap();
}

#[test]
fn period_bounds_take_dates_as_whole_days() {
    let from = super::parse_bound("2026-01-01", false).unwrap();
    let to = super::parse_bound("2026-03-31", true).unwrap();
    assert_eq!(from.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    assert_eq!(to.to_rfc3339(), "2026-04-01T00:00:00+00:00");
    assert!(super::parse_bound("2026-13-01", false).is_err());
    assert!(super::check_period(to, from).is_err());
}

/// The bundle as an attacker would rewrite it: `edit` changes the entries, then the manifest's
/// hashes are recomputed and it is signed again, with the attacker's own key (the collector's
/// key is not theirs to use).
fn forge(
    entries: &[(String, Vec<u8>)],
    edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> Vec<(String, Vec<u8>)> {
    use sha2::Digest;
    let mut copy = entries.to_vec();
    edit(&mut copy);
    let attacker = vigil_shared::signing::SigningKey::from_bytes(&[66; 32]);
    let mut manifest: Manifest = serde_json::from_slice(entry(&copy, MANIFEST)).unwrap();
    for file in &mut manifest.files {
        let bytes = entry(&copy, &file.path);
        file.sha256 = hex::encode(sha2::Sha256::digest(bytes));
        file.size = bytes.len() as u64;
    }
    manifest.collector_key = Some(vigil_shared::signing::public_key_hex(
        &attacker.verifying_key(),
    ));
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let sig = vigil_shared::signing::SignatureHeader::sign(&attacker, &bytes);
    for (name, content) in &mut copy {
        if name == MANIFEST {
            *content = bytes.clone();
        } else if name == manifest::MANIFEST_SIG {
            *content = hex::encode(sig.signature.to_bytes()).into_bytes();
        }
    }
    copy
}

fn lines_of(entries: &mut [(String, Vec<u8>)], name: &str) -> Vec<String> {
    let bytes = &entries.iter().find(|(n, _)| n == name).unwrap().1;
    String::from_utf8(bytes.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn set_lines(entries: &mut [(String, Vec<u8>)], name: &str, lines: &[String]) {
    let slot = entries.iter_mut().find(|(n, _)| n == name).unwrap();
    slot.1 = format!("{}\n", lines.join("\n")).into_bytes();
}

fn evidence_problems(v: &manifest::Verification) -> Vec<String> {
    v.problems
        .iter()
        .filter(|p| matches!(p, Problem::Evidence(_)))
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn verify_detects_edited_deleted_and_inserted_evidence_records_offline() {
    // (A replayed report is a duplicate that extends no chain: store contract
    // `reports_are_chained_per_host`.)
    let f = fixture().await;
    let path = export(&f).await;
    let key = vigil_shared::signing::SigningKey::from_bytes(&[9; 32]).verifying_key();
    let fingerprint = vigil_shared::signing::fingerprint(&key);

    // Untouched: everything checks out, against the expected collector key too.
    let v = manifest::verify_with(std::fs::File::open(&path).unwrap(), Some(&fingerprint));
    assert!(v.is_ok(), "{}", v.render());
    assert_eq!(v.collector_key.as_deref(), Some(fingerprint.as_str()));
    assert!(
        v.signed_reports > 0 && v.evidence_checked > 0,
        "{}",
        v.render()
    );
    assert!(v.render().contains(&fingerprint), "{}", v.render());
    let entries = read_entries(&path);
    let file = "evidence/A.8.8.jsonl";
    let tampered = f.dir.path().join("tampered.zip");
    let check = |forged: &[(String, Vec<u8>)], expect_key: Option<&str>| {
        write_entries(&tampered, forged);
        manifest::verify_with(std::fs::File::open(&tampered).unwrap(), expect_key)
    };

    // Edited: a failing result turned into a pass, manifest rehashed and re-signed.
    let forged = forge(&entries, |e| {
        let mut lines = lines_of(e, file);
        let i = lines
            .iter()
            .position(|l| l.contains("\"status\":\"fail\""))
            .unwrap();
        lines[i] = lines[i].replace("\"status\":\"fail\"", "\"status\":\"pass\"");
        set_lines(e, file, &lines);
    });
    let v = check(&forged, None);
    let found = evidence_problems(&v);
    assert!(found.iter().any(|p| p.contains("edited")), "{}", v.render());
    // With the collector's key expected, the re-signed manifest is refused as well.
    let v = check(&forged, Some(&fingerprint));
    assert!(
        v.problems.iter().any(
            |p| matches!(p, Problem::ManifestSignature(m) if m.contains("not by the expected"))
        ),
        "{}",
        v.render()
    );
    // Only rehashed, keeping the collector's signature: the signature no longer verifies.
    let mut rehashed = forged.clone();
    for (name, content) in &mut rehashed {
        if name == manifest::MANIFEST_SIG {
            *content = entry(&entries, manifest::MANIFEST_SIG).to_vec();
        }
    }
    let v = check(&rehashed, None);
    assert!(
        v.problems
            .iter()
            .any(|p| matches!(p, Problem::ManifestSignature(_))),
        "{}",
        v.render()
    );

    // Deleted: one record removed.
    let forged = forge(&entries, |e| {
        let mut lines = lines_of(e, file);
        lines.remove(lines.len() / 2);
        set_lines(e, file, &lines);
    });
    let v = check(&forged, None);
    assert!(
        evidence_problems(&v).iter().any(|p| p.contains("deleted")),
        "{}",
        v.render()
    );

    // Inserted: a record copied (a second observation that never happened) and one made up.
    let forged = forge(&entries, |e| {
        let mut lines = lines_of(e, file);
        lines.push(lines[0].clone());
        set_lines(e, file, &lines);
    });
    let v = check(&forged, None);
    assert!(
        evidence_problems(&v).iter().any(|p| p.contains("inserted")),
        "{}",
        v.render()
    );
    let forged = forge(&entries, |e| {
        let mut lines = lines_of(e, file);
        let mut made_up: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        made_up["seq"] = serde_json::json!(9999);
        lines.push(made_up.to_string());
        set_lines(e, file, &lines);
    });
    let v = check(&forged, None);
    assert!(
        evidence_problems(&v)
            .iter()
            .any(|p| p.contains("no signed report")),
        "{}",
        v.render()
    );

    // A signed report removed from the middle of its host's chain.
    let forged = forge(&entries, |e| {
        let mut lines = lines_of(e, super::signed::REPORTS_FILE);
        lines.remove(lines.len() / 2);
        set_lines(e, super::signed::REPORTS_FILE, &lines);
    });
    let v = check(&forged, None);
    assert!(
        v.problems
            .iter()
            .any(|p| matches!(p, Problem::Chain(m) if m.contains("missing"))),
        "{}",
        v.render()
    );
    f.running.shutdown().await.unwrap();
}
