//! The offline half of tamper evidence in `export verify`: every signed report's body hash,
//! agent signature (by a key the bundle lists for that agent) and identity; every host's chain
//! segment link by link against `signed/chains.json`; and every evidence record against the
//! result its agent signed. A record edited no longer matches; a record inserted has no signed
//! result (or duplicates one); a record deleted leaves a result observed in the period without
//! its record. Holds the period's signed reports in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Seek};

use sha2::{Digest, Sha256};
use vigil_shared::{CheckResult, Report, signing};

use super::manifest::{Manifest, Problem, Verification};
use super::signed::{
    CHAINS_FILE, ChainSegment, KEYS_FILE, KeyLine, REPORTS_FILE, SignedReportLine,
};
use crate::store::chain::{ChainEntry, SignedBody};

fn read_entry<R: Read + Seek>(archive: &mut zip::ZipArchive<R>, name: &str) -> Option<Vec<u8>> {
    let mut file = archive.by_name(name).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}

pub(super) fn check<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    manifest: &Manifest,
    result: &mut Verification,
) {
    let mut problems = Vec::new();
    let reports = check_reports(archive, &mut problems, result);
    check_evidence(archive, manifest, &reports, &mut problems, result);
    result.problems.extend(problems);
}

/// Checks signatures and chains; returns the verified reports by (machine id, seq).
fn check_reports<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    problems: &mut Vec<Problem>,
    result: &mut Verification,
) -> BTreeMap<(String, u64), Report> {
    let mut reports = BTreeMap::new();
    let Some(lines) = read_entry(archive, REPORTS_FILE) else {
        problems.push(Problem::ReportSignature(format!(
            "{REPORTS_FILE} is missing: the evidence cannot be checked against signed reports"
        )));
        return reports;
    };
    let keys: Vec<KeyLine> = read_entry(archive, KEYS_FILE)
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v.get("keys")?.clone()).ok())
        .unwrap_or_else(|| {
            problems.push(Problem::ReportSignature(format!(
                "{KEYS_FILE} is missing or unreadable"
            )));
            Vec::new()
        });
    let segments: Vec<ChainSegment> = read_entry(archive, CHAINS_FILE)
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v.get("chains")?.clone()).ok())
        .unwrap_or_else(|| {
            problems.push(Problem::Chain(format!(
                "{CHAINS_FILE} is missing or unreadable"
            )));
            Vec::new()
        });
    let known_keys: BTreeSet<(String, String)> =
        keys.into_iter().map(|k| (k.agent, k.public_key)).collect();

    let mut by_host: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    for (n, line) in lines.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let at = format!("{REPORTS_FILE} line {}", n + 1);
        let Ok(line) = serde_json::from_slice::<SignedReportLine>(line) else {
            problems.push(Problem::ReportSignature(format!(
                "{at}: not a signed report line"
            )));
            continue;
        };
        let at = format!("{at} (host {}, seq {})", line.machine_id, line.seq);
        let (Some(body_sha256), Some(prev_hash), Some(chain_hash)) = (
            unhex::<32>(&line.body_sha256),
            unhex::<32>(&line.prev_hash),
            unhex::<32>(&line.chain_hash),
        ) else {
            problems.push(Problem::Chain(format!("{at}: malformed hash")));
            continue;
        };
        let signed = match (&line.body, &line.signature, &line.public_key) {
            (Some(body), Some(sig), Some(key)) => match (unhex::<64>(sig), unhex::<32>(key)) {
                (Some(signature), Some(public_key)) => Some(SignedBody {
                    json: body.as_bytes().to_vec(),
                    signature,
                    public_key,
                }),
                _ => None,
            },
            _ => None,
        };
        by_host
            .entry(line.machine_id.clone())
            .or_default()
            .push(ChainEntry {
                machine_id: line.machine_id.clone(),
                index: line.index,
                agent: line.agent.clone(),
                seq: line.seq,
                batch_id: line.batch_id.clone(),
                received_at: line.received_at,
                body_sha256,
                signed: signed.clone(),
                prev_hash,
                chain_hash,
            });
        let Some(signed) = signed else {
            problems.push(Problem::ReportSignature(format!(
                "{at}: no signature: the report was stored unsigned"
            )));
            continue;
        };
        if <[u8; 32]>::from(Sha256::digest(&signed.json)) != body_sha256 {
            problems.push(Problem::ReportSignature(format!(
                "{at}: the body does not hash to body_sha256"
            )));
            continue;
        }
        let Ok(key) = signing::VerifyingKey::from_bytes(&signed.public_key) else {
            problems.push(Problem::ReportSignature(format!(
                "{at}: invalid public key"
            )));
            continue;
        };
        if !known_keys.contains(&(line.agent.clone(), hex::encode(signed.public_key))) {
            problems.push(Problem::ReportSignature(format!(
                "{at}: signed with key {}, which is not a key of agent {:?} in {KEYS_FILE}",
                signing::fingerprint(&key),
                line.agent
            )));
            continue;
        }
        let signature = signing::Signature::from_bytes(&signed.signature);
        if signing::verify(&key, &signed.json, &signature).is_err() {
            problems.push(Problem::ReportSignature(format!(
                "{at}: the agent's signature does not verify: the report was altered"
            )));
            continue;
        }
        let Ok(report) = serde_json::from_slice::<Report>(&signed.json) else {
            problems.push(Problem::ReportSignature(format!(
                "{at}: the body is not a report"
            )));
            continue;
        };
        if report.agent.id != line.agent
            || report.seq != line.seq
            || report.batch_id != line.batch_id
            || report.host.machine_id != line.machine_id
        {
            problems.push(Problem::ReportSignature(format!(
                "{at}: agent, seq, batch_id or host differ from the signed report"
            )));
            continue;
        }
        result.signed_reports += 1;
        reports.insert((line.machine_id, line.seq), report);
    }

    let segments: BTreeMap<String, ChainSegment> = segments
        .into_iter()
        .map(|s| (s.machine_id.clone(), s))
        .collect();
    for (host, mut entries) in by_host {
        entries.sort_by_key(|e| e.index);
        let Some(segment) = segments.get(&host) else {
            problems.push(Problem::Chain(format!(
                "host {host}: no segment in {CHAINS_FILE}"
            )));
            continue;
        };
        let mut prev = unhex::<32>(&segment.first_prev_hash);
        let mut index = segment.first_index;
        for e in &entries {
            if e.index != index {
                problems.push(Problem::Chain(format!(
                    "host {host}: entry {index} is missing (next present: {}): a report was \
                     removed",
                    e.index
                )));
            }
            if Some(e.prev_hash) != prev {
                problems.push(Problem::Chain(format!(
                    "host {host}: entry {} does not link to the previous one",
                    e.index
                )));
            }
            if e.expected_hash() != Some(e.chain_hash) {
                problems.push(Problem::Chain(format!(
                    "host {host}: entry {} (seq {}) does not hash to its chain_hash: it was altered",
                    e.index, e.seq
                )));
            }
            prev = Some(e.chain_hash);
            index = e.index + 1;
        }
        if index != segment.last_index + 1 || prev != unhex::<32>(&segment.last_hash) {
            problems.push(Problem::Chain(format!(
                "host {host}: the segment does not end at entry {} with the recorded hash",
                segment.last_index
            )));
        }
    }
    reports
}

/// The fields of an evidence line that come from the signed result.
fn line_result(line: &serde_json::Value) -> Option<CheckResult> {
    let mut obj = serde_json::Map::new();
    for field in [
        "check",
        "controls",
        "observed_at",
        "duration_ms",
        "status",
        "summary",
        "values",
        "evidence",
        "error",
    ] {
        let v = line.get(field)?;
        if !v.is_null() {
            obj.insert(field.into(), v.clone());
        }
    }
    serde_json::from_value(serde_json::Value::Object(obj)).ok()
}

fn check_evidence<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    manifest: &Manifest,
    reports: &BTreeMap<(String, u64), Report>,
    problems: &mut Vec<Problem>,
    result: &mut Verification,
) {
    let names: Vec<String> = archive
        .file_names()
        .filter(|n| n.starts_with("evidence/") && n.ends_with(".jsonl"))
        .map(str::to_string)
        .collect();
    let mut seen: BTreeSet<(String, u64, String, String)> = BTreeSet::new();
    for name in names {
        let Ok(file) = archive.by_name(&name) else {
            continue;
        };
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let at = format!("{name} line {}", n + 1);
            let Ok(line) = line else {
                problems.push(Problem::Evidence(format!("{at}: unreadable")));
                break;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                problems.push(Problem::Evidence(format!("{at}: not JSON")));
                continue;
            };
            let text = |f: &str| {
                value
                    .get(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let (machine_id, check, control) = (text("machine_id"), text("check"), text("control"));
            let seq = value.get("seq").and_then(|v| v.as_u64()).unwrap_or(0);
            let at = format!("{at} (host {machine_id}, seq {seq}, {check})");
            let Some(report) = reports.get(&(machine_id.clone(), seq)) else {
                problems.push(Problem::Evidence(format!(
                    "{at}: no signed report holds it (inserted?)"
                )));
                continue;
            };
            let Some(signed) = report.results.iter().find(|r| r.check == check) else {
                problems.push(Problem::Evidence(format!(
                    "{at}: the signed report has no such check (inserted?)"
                )));
                continue;
            };
            let mapped = if signed.controls.is_empty() {
                control == super::UNMAPPED
            } else {
                signed.controls.contains(&control)
            };
            if !mapped || text("batch_id") != report.batch_id {
                problems.push(Problem::Evidence(format!(
                    "{at}: control or batch id differ from the signed report"
                )));
                continue;
            }
            if line_result(&value).as_ref() != Some(signed) {
                problems.push(Problem::Evidence(format!(
                    "{at}: differs from what the agent signed (edited)"
                )));
                continue;
            }
            if !seen.insert((machine_id, seq, check, control)) {
                problems.push(Problem::Evidence(format!("{at}: appears twice (inserted)")));
                continue;
            }
            result.evidence_checked += 1;
        }
    }
    // Every result observed in the period must be there, once per control.
    let (from, to) = (manifest.period.from, manifest.period.to);
    for ((machine_id, seq), report) in reports {
        for r in &report.results {
            if r.observed_at < from || r.observed_at >= to {
                continue;
            }
            let controls: Vec<&str> = if r.controls.is_empty() {
                vec![super::UNMAPPED]
            } else {
                r.controls.iter().map(String::as_str).collect()
            };
            for control in controls {
                let key = (
                    machine_id.clone(),
                    *seq,
                    r.check.clone(),
                    control.to_string(),
                );
                if !seen.contains(&key) {
                    problems.push(Problem::Evidence(format!(
                        "host {machine_id}, seq {seq}: the signed result {} for {control} is \
                         missing from the evidence (deleted)",
                        r.check
                    )));
                }
            }
        }
    }
}
