//! The auditor evidence export (outputs stage): one zip bundle for a period with the SoA,
//! control status, KPI and objective history, the nonconformity register, the host inventory
//! with its coverage, the risk register, every piece of raw evidence per control (JSON lines,
//! with its three times), a self-contained HTML report, OSCAL assessment results and POA&M,
//! and `manifest.json` listing every file with its SHA-256 (re-checked by `export verify`).
//!
//! Memory stays flat as the period grows: evidence is read from the store a page at a time and
//! spooled to one temporary file per control, then copied into the zip in chunks; what is kept
//! in memory is bounded by the fleet and the ISMS (hosts, checks, controls), not by the period.
//! The zip is written to a seekable file (the CLI's output, or a temporary file the API then
//! streams).

pub mod bundle;
pub mod html;
pub mod http;
pub mod manifest;
pub mod oscal;
pub mod signed;
mod verify_signed;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::evaluate::{KpiEvaluation, KpiValue, NcEvent, NcState, Nonconformity};
use crate::isms::Isms;
use crate::reports::soa::{self, SoaRow};
use crate::store::{
    EvidenceKey, EvidencePageQuery, HostSummary, ObjectiveRecord, Store, StoreError,
};
use bundle::BundleWriter;
use manifest::{FORMAT, FORMAT_VERSION, MANIFEST, Manifest, PeriodJson};

/// Records read from the store per page.
pub const PAGE_SIZE: usize = 2_000;
/// Most KPI measurements (and analyses) exported per KPI.
const KPI_HISTORY_LIMIT: usize = 100_000;
/// Most coverage gaps listed per host (all are counted).
const MAX_GAPS_LISTED: usize = 1_000;
/// File of evidence whose result names no control.
const UNMAPPED: &str = "unmapped";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the bundle: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write the zip: {0}")]
    Zip(String),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Inclusive start of the period.
    pub from: DateTime<Utc>,
    /// Exclusive end of the period.
    pub to: DateTime<Utc>,
    /// Generation time (the collector clock), written into the manifest and every zip entry.
    pub generated_at: DateTime<Utc>,
    /// `sha256:…` of the ISMS pack, see [`pack_digest`].
    pub isms_pack_digest: String,
    /// The collector's key, which signs the manifest (`manifest.sig`).
    pub collector_key: Arc<vigil_shared::signing::SigningKey>,
}

/// File name of the collector's signing key in the data directory.
pub const COLLECTOR_KEY_FILE: &str = "collector.key";

pub fn collector_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(COLLECTOR_KEY_FILE)
}

/// The collector's signing key, created (0600) in the data directory on first use.
pub fn collector_key(
    data_dir: &Path,
) -> Result<vigil_shared::signing::SigningKey, vigil_shared::signing::KeyFileError> {
    std::fs::create_dir_all(data_dir).map_err(|source| {
        vigil_shared::signing::KeyFileError::Io {
            path: data_dir.to_path_buf(),
            source,
        }
    })?;
    let (key, created) = vigil_shared::signing::load_or_create_key(&collector_key_path(data_dir))?;
    if created {
        tracing::info!(
            fingerprint = %vigil_shared::signing::fingerprint(&key.verifying_key()),
            "created the collector's signing key"
        );
    }
    Ok(key)
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub files: usize,
    pub evidence_records: u64,
    pub hosts: usize,
    pub bytes: u64,
}

/// Digest of an ISMS pack directory: SHA-256 over every `*.toml` file (and `rules/*.toml`),
/// in path order, each as its relative path, a NUL, its length, a NUL and its bytes.
pub fn pack_digest(dir: &Path) -> std::io::Result<String> {
    let mut paths: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            paths.push(name);
        } else if name == "rules" && dir.join("rules").is_dir() {
            for rule in std::fs::read_dir(dir.join("rules"))? {
                let rule = rule?.file_name().to_string_lossy().into_owned();
                if rule.ends_with(".toml") {
                    paths.push(format!("rules/{rule}"));
                }
            }
        }
    }
    paths.sort();
    let mut hasher = Sha256::new();
    for path in paths {
        let bytes = std::fs::read(dir.join(&path))?;
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(bytes.len().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(&bytes);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Parses a period bound: an RFC 3339 time, or a date (UTC) meaning the start of that day for
/// `--from` and the end of that day for `--to` (so `--from 2026-01-01 --to 2026-03-31` covers
/// the whole quarter; the end is exclusive: midnight after the date).
pub fn parse_bound(text: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        format!(
            "{text:?} is neither an RFC 3339 time (2026-06-01T12:00:00Z) nor a date (2026-06-01)"
        )
    })?;
    let day = if end {
        date.succ_opt()
            .ok_or_else(|| format!("{text:?} is too late"))?
    } else {
        date
    };
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{text:?} is not a valid date"))
}

/// Checks a period given by a person.
pub fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ExportError> {
    if from >= to {
        return Err(ExportError::Invalid(
            "the period is empty: --from must be earlier than --to".into(),
        ));
    }
    Ok(())
}

/// One line of `evidence/<control>.jsonl`.
#[derive(Debug, Serialize)]
struct EvidenceLine<'a> {
    control: &'a str,
    machine_id: &'a str,
    hostname: &'a str,
    check: &'a str,
    status: vigil_shared::Status,
    summary: &'a str,
    /// Agent clock: when the facts were read.
    observed_at: DateTime<Utc>,
    /// Collector clock: when the report arrived.
    received_at: DateTime<Utc>,
    /// The validity window: from this observation to the next one of the same check on the
    /// same host (`until: null` while nothing newer was known at export time).
    covers: CoversJson,
    seq: u64,
    batch_id: &'a str,
    duration_ms: u64,
    controls: &'a [String],
    values: &'a BTreeMap<String, vigil_shared::Value>,
    evidence: &'a vigil_shared::Evidence,
    error: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct CoversJson {
    from: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

/// Per (host, check): what the period's evidence said, for the OSCAL observations.
#[derive(Debug, Clone, Default)]
pub struct CheckTally {
    pub results: u64,
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
    pub no_data: u64,
    pub controls: BTreeSet<String>,
    pub last_observed: Option<DateTime<Utc>>,
    pub last_status: Option<vigil_shared::Status>,
    pub last_summary: String,
}

/// A period without reports longer than the expected interval.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub seconds: i64,
}

/// A host with its coverage over the period.
#[derive(Debug, Clone, Serialize)]
pub struct HostCoverage {
    pub machine_id: String,
    pub hostname: String,
    pub os: String,
    pub agent: String,
    pub in_scope: bool,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Reports received in the period.
    pub reports_in_period: u64,
    /// The interval a report was expected within (the ISMS `stale_after`).
    pub expected_interval_seconds: i64,
    pub gaps_total: u64,
    pub gap_seconds_total: i64,
    /// The first gaps (at most 1,000).
    pub gaps: Vec<Gap>,
}

/// A nonconformity with every event, as exported.
#[derive(Debug, Clone, Serialize)]
pub struct NcEntry {
    pub nonconformity: Nonconformity,
    pub events: Vec<NcEvent>,
}

/// A KPI's history over the period.
#[derive(Debug, Clone, Serialize)]
pub struct KpiHistory {
    pub kpi: String,
    pub name: String,
    pub target: f64,
    pub direction: &'static str,
    pub values: Vec<KpiValue>,
    pub evaluations: Vec<KpiEvaluation>,
}

/// Control status with the period's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct ControlEntry {
    pub control: String,
    pub title: String,
    pub applicable: bool,
    pub status: crate::isms::ImplementationStatus,
    pub status_reason: String,
    /// Latest results counted by the evaluation at the end of the period.
    pub evaluation_evidence_count: u64,
    /// Evidence records exported for the period (in `evidence/<control>.jsonl`).
    pub evidence_records: u64,
    pub evidence_file: Option<String>,
    pub last_evidence: Option<DateTime<Utc>>,
}

/// Everything the report, OSCAL and the JSON files are built from (bounded by the fleet and the
/// ISMS, not by the period).
#[derive(Debug, Clone)]
pub struct Gathered {
    pub options: ExportOptions,
    pub soa: Vec<SoaRow>,
    pub controls: Vec<ControlEntry>,
    pub kpis: Vec<KpiHistory>,
    pub objectives_from: Vec<ObjectiveRecord>,
    pub objectives_to: Vec<ObjectiveRecord>,
    pub nonconformities: Vec<NcEntry>,
    pub hosts: Vec<HostCoverage>,
    pub tallies: BTreeMap<(String, String), CheckTally>,
    pub evidence_records: u64,
    /// Evidence files written, with their record counts.
    pub evidence_files: BTreeMap<String, u64>,
}

fn ser_line(line: &EvidenceLine<'_>, out: &mut impl Write) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn evidence_file_name(control: &str) -> String {
    // Control ids are `A.5.1`-like; anything else is made safe for a file name.
    let safe: String = control
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("evidence/{safe}.jsonl")
}

/// Reads the period's evidence page by page, spooling one JSON-lines file per control into
/// `spool`; returns the tallies per (host, check) and the record counts per control.
async fn spool_evidence(
    store: &dyn Store,
    options: &ExportOptions,
    hostnames: &BTreeMap<String, String>,
    spool: &Path,
) -> Result<
    (
        BTreeMap<(String, String), CheckTally>,
        BTreeMap<String, u64>,
        u64,
        BTreeMap<String, BTreeSet<u64>>,
    ),
    ExportError,
> {
    let mut referenced: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut writers: BTreeMap<String, BufWriter<File>> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut tallies: BTreeMap<(String, String), CheckTally> = BTreeMap::new();
    let mut total = 0u64;
    let mut after: Option<EvidenceKey> = None;
    loop {
        let page = store
            .evidence_page(&EvidencePageQuery {
                from: options.from,
                to: options.to,
                after: after.clone(),
                limit: PAGE_SIZE,
            })
            .await?;
        let last = page.last().map(|r| r.key());
        let done = page.len() < PAGE_SIZE;
        for record in &page {
            if record.stored.received_at < options.from {
                referenced
                    .entry(record.machine_id.clone())
                    .or_default()
                    .insert(record.stored.seq);
            }
        }
        // File writes are blocking; they run off the async workers, one page at a time.
        let mut writers_moved = std::mem::take(&mut writers);
        let mut counts_moved = std::mem::take(&mut counts);
        let mut tallies_moved = std::mem::take(&mut tallies);
        let hostnames_page: BTreeMap<String, String> = page
            .iter()
            .filter_map(|r| {
                hostnames
                    .get(&r.machine_id)
                    .map(|h| (r.machine_id.clone(), h.clone()))
            })
            .collect();
        let spool_dir = spool.to_path_buf();
        let written = tokio::task::spawn_blocking(move || -> Result<_, ExportError> {
            for record in &page {
                let r = &record.stored.result;
                let hostname = hostnames_page
                    .get(&record.machine_id)
                    .map_or("", String::as_str);
                let tally = tallies_moved
                    .entry((record.machine_id.clone(), r.check.clone()))
                    .or_default();
                tally.results += 1;
                match r.status {
                    vigil_shared::Status::Pass => tally.pass += 1,
                    vigil_shared::Status::Fail => tally.fail += 1,
                    vigil_shared::Status::Error => tally.error += 1,
                    vigil_shared::Status::NoData => tally.no_data += 1,
                }
                if tally.last_observed.is_none_or(|t| t <= r.observed_at) {
                    tally.last_observed = Some(r.observed_at);
                    tally.last_status = Some(r.status);
                    tally.last_summary.clone_from(&r.summary);
                }
                let controls: Vec<&str> = if r.controls.is_empty() {
                    vec![UNMAPPED]
                } else {
                    r.controls.iter().map(String::as_str).collect()
                };
                for control in controls {
                    tally.controls.insert(control.to_string());
                    let name = evidence_file_name(control);
                    if !writers_moved.contains_key(&name) {
                        let path = spool_dir.join(name.replace('/', "_"));
                        writers_moved.insert(name.clone(), BufWriter::new(File::create(path)?));
                    }
                    let Some(out) = writers_moved.get_mut(&name) else {
                        continue;
                    };
                    ser_line(
                        &EvidenceLine {
                            control,
                            machine_id: &record.machine_id,
                            hostname,
                            check: &r.check,
                            status: r.status,
                            summary: &r.summary,
                            observed_at: r.observed_at,
                            received_at: record.stored.received_at,
                            covers: CoversJson {
                                from: record.stored.covers.from,
                                until: record.stored.covers.until,
                            },
                            seq: record.stored.seq,
                            batch_id: &record.stored.batch_id,
                            duration_ms: r.duration_ms,
                            controls: &r.controls,
                            values: &r.values,
                            evidence: &r.evidence,
                            error: r.error.as_deref(),
                        },
                        out,
                    )?;
                    *counts_moved.entry(name).or_default() += 1;
                }
            }
            Ok((
                writers_moved,
                counts_moved,
                tallies_moved,
                page.len() as u64,
            ))
        })
        .await
        .map_err(|e| ExportError::Invalid(format!("evidence writer stopped: {e}")))??;
        (writers, counts, tallies) = (written.0, written.1, written.2);
        total += written.3;
        if done {
            break;
        }
        after = last;
    }
    for (_, mut w) in writers {
        w.flush()?;
    }
    Ok((tallies, counts, total, referenced))
}

/// Coverage of one host: report receive times read page by page, gaps longer than `expected`.
async fn coverage(
    store: &dyn Store,
    host: &HostSummary,
    in_scope: bool,
    options: &ExportOptions,
    expected: chrono::Duration,
) -> Result<HostCoverage, ExportError> {
    let start = options.from.max(host.first_seen);
    let end = options.to.min(options.generated_at);
    let mut gaps = Vec::new();
    let mut gaps_total = 0u64;
    let mut gap_seconds_total = 0i64;
    let mut reports = 0u64;
    let mut previous = start;
    let mut after = None;
    let mut note = |from: DateTime<Utc>, until: DateTime<Utc>| {
        if until - from > expected {
            gaps_total += 1;
            gap_seconds_total += (until - from).num_seconds();
            if gaps.len() < MAX_GAPS_LISTED {
                gaps.push(Gap {
                    from,
                    until,
                    seconds: (until - from).num_seconds(),
                });
            }
        }
    };
    if start < end {
        loop {
            let page = store
                .report_times_page(&host.machine_id, options.from, options.to, after, PAGE_SIZE)
                .await?;
            for &t in &page {
                reports += 1;
                note(previous, t);
                previous = t;
            }
            after = page.last().copied();
            if page.len() < PAGE_SIZE {
                break;
            }
        }
        note(previous, end);
    }
    Ok(HostCoverage {
        machine_id: host.machine_id.clone(),
        hostname: host.hostname.clone(),
        os: host.os.pretty_name.clone(),
        agent: host.agent.clone(),
        in_scope,
        first_seen: host.first_seen,
        last_seen: host.last_seen,
        reports_in_period: reports,
        expected_interval_seconds: expected.num_seconds(),
        gaps_total,
        gap_seconds_total,
        gaps,
    })
}

/// Nonconformities that existed during the period: opened before its end and not closed
/// before its start; each with every event.
async fn nonconformities(
    store: &dyn Store,
    options: &ExportOptions,
) -> Result<Vec<NcEntry>, ExportError> {
    let mut out = Vec::new();
    for nc in store.nonconformities_at(Some(options.to)).await? {
        if nc.closed_at.is_some_and(|c| c < options.from) {
            continue;
        }
        if let Some(detail) = store.nonconformity(nc.id).await? {
            let events = detail
                .events
                .into_iter()
                .filter(|e| e.at < options.to)
                .collect();
            out.push(NcEntry {
                nonconformity: nc,
                events,
            });
        }
    }
    Ok(out)
}

/// Open at the end of the period (not closed): the POA&M items.
pub fn open_nonconformities(ncs: &[NcEntry]) -> impl Iterator<Item = &NcEntry> {
    ncs.iter()
        .filter(|n| n.nonconformity.state != NcState::Closed)
}

fn pretty<T: Serialize>(value: &T) -> Result<Vec<u8>, ExportError> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes the bundle for `options` into `out` (a new, empty file). `spool` is a private
/// temporary directory for the per-control evidence files.
pub async fn write_bundle(
    store: &dyn Store,
    isms: &Isms,
    options: &ExportOptions,
    out: File,
    spool: &Path,
) -> Result<ExportSummary, ExportError> {
    check_period(options.from, options.to)?;
    let hosts = store.list_hosts().await?;
    let hosts: Vec<HostSummary> = hosts
        .into_iter()
        .filter(|h| h.first_seen < options.to)
        .collect();
    let hostnames: BTreeMap<String, String> = hosts
        .iter()
        .map(|h| (h.machine_id.clone(), h.hostname.clone()))
        .collect();

    let (tallies, evidence_files, evidence_records, referenced) =
        spool_evidence(store, options, &hostnames, spool).await?;
    let signed_files = signed::spool(store, options, &hosts, &referenced, spool).await?;

    let mut coverage_list = Vec::with_capacity(hosts.len());
    for h in &hosts {
        let in_scope = crate::api::host_in_scope(isms, h);
        coverage_list.push(coverage(store, h, in_scope, options, isms.policy.stale_after).await?);
    }

    let at_end = Some(options.to - chrono::Duration::nanoseconds(1));
    let soa_rows = soa::build(isms, &store.controls_at(at_end).await?);
    let controls = soa_rows
        .iter()
        .map(|row| {
            let file = evidence_file_name(&row.control);
            ControlEntry {
                control: row.control.clone(),
                title: row.title.clone(),
                applicable: row.applicable,
                status: row.status,
                status_reason: row.status_reason.clone(),
                evaluation_evidence_count: row.evidence_count,
                evidence_records: evidence_files.get(&file).copied().unwrap_or(0),
                evidence_file: evidence_files.contains_key(&file).then_some(file),
                last_evidence: row.last_evidence,
            }
        })
        .collect();
    let mut kpis = Vec::new();
    for kpi in &isms.kpis {
        let (values, evaluations) = store
            .kpi_history(&kpi.id, options.from, options.to, KPI_HISTORY_LIMIT)
            .await?;
        kpis.push(KpiHistory {
            kpi: kpi.id.clone(),
            name: kpi.name.clone(),
            target: kpi.target.value,
            direction: match kpi.target.direction {
                crate::isms::Direction::AtLeast => "at_least",
                crate::isms::Direction::AtMost => "at_most",
            },
            values: values.into_iter().filter(|v| v.at < options.to).collect(),
            evaluations: evaluations
                .into_iter()
                .filter(|e| e.at < options.to)
                .collect(),
        });
    }
    let gathered = Gathered {
        options: options.clone(),
        soa: soa_rows,
        controls,
        kpis,
        objectives_from: store.objectives_at(Some(options.from)).await?,
        objectives_to: store.objectives_at(at_end).await?,
        nonconformities: nonconformities(store, options).await?,
        hosts: coverage_list,
        tallies,
        evidence_records,
        evidence_files,
    };
    let isms = isms.clone();
    let spool = spool.to_path_buf();
    tokio::task::spawn_blocking(move || assemble(&isms, &gathered, &signed_files, out, &spool))
        .await
        .map_err(|e| ExportError::Invalid(format!("bundle writer stopped: {e}")))?
}

/// Writes every file into the zip (blocking): evidence copied from the spool in chunks, then
/// the registers, OSCAL, the HTML report, and the manifest last.
fn assemble(
    isms: &Isms,
    g: &Gathered,
    signed_files: &[(String, PathBuf)],
    out: File,
    spool: &Path,
) -> Result<ExportSummary, ExportError> {
    let o = &g.options;
    let mut zip = BundleWriter::new(out, o.generated_at);
    let mut buf = vec![0u8; 64 * 1024];
    for name in g.evidence_files.keys() {
        zip.start(name)?;
        let mut file = File::open(spool.join(name.replace('/', "_")))?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            zip.write_all(&buf[..n])?;
        }
    }
    for (name, file) in signed_files {
        zip.start(name)?;
        let mut file = File::open(file)?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            zip.write_all(&buf[..n])?;
        }
    }
    let period = serde_json::json!({ "from": o.from, "to": o.to });
    zip.file(
        "soa.json",
        &pretty(&serde_json::json!({ "period": period, "at": o.to, "controls": g.soa }))?,
    )?;
    zip.file("soa.csv", soa::to_csv(&g.soa).as_bytes())?;
    zip.file(
        "controls.json",
        &pretty(&serde_json::json!({ "period": period, "controls": g.controls }))?,
    )?;
    zip.file(
        "kpis.json",
        &pretty(&serde_json::json!({ "period": period, "kpis": g.kpis }))?,
    )?;
    let objective_json = |records: &[ObjectiveRecord]| {
        records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "objective": r.state.objective, "status": r.state.status,
                    "reason": r.state.reason, "since": r.since
                })
            })
            .collect::<Vec<_>>()
    };
    zip.file(
        "objectives.json",
        &pretty(&serde_json::json!({
            "period": period,
            "definitions": isms.objectives,
            "at_start": objective_json(&g.objectives_from),
            "at_end": objective_json(&g.objectives_to),
        }))?,
    )?;
    zip.file(
        "nonconformities.json",
        &pretty(&serde_json::json!({ "period": period, "nonconformities": g.nonconformities }))?,
    )?;
    zip.file(
        "hosts.json",
        &pretty(&serde_json::json!({ "period": period, "hosts": g.hosts }))?,
    )?;
    zip.file(
        "risks.json",
        &pretty(&serde_json::json!({ "risks": isms.risks }))?,
    )?;
    zip.file(
        "oscal/assessment-results.json",
        &pretty(&oscal::assessment_results(isms, g))?,
    )?;
    zip.file("oscal/poam.json", &pretty(&oscal::poam(isms, g))?)?;
    let listed = zip.files().to_vec();
    zip.file("index.html", html::report(isms, g, &listed).as_bytes())?;
    let files = zip.files().to_vec();
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        period: PeriodJson {
            from: o.from,
            to: o.to,
        },
        generated_at: o.generated_at,
        collector_version: env!("CARGO_PKG_VERSION").into(),
        isms_pack_digest: o.isms_pack_digest.clone(),
        collector_key: Some(vigil_shared::signing::public_key_hex(
            &o.collector_key.verifying_key(),
        )),
        files,
    };
    let manifest_bytes = pretty(&manifest)?;
    zip.file(MANIFEST, &manifest_bytes)?;
    let signature = vigil_shared::signing::SignatureHeader::sign(&o.collector_key, &manifest_bytes);
    zip.file(
        manifest::MANIFEST_SIG,
        format!("{}\n", hex::encode(signature.signature.to_bytes())).as_bytes(),
    )?;
    let files = zip.finish()?;
    Ok(ExportSummary {
        files: files.len(),
        evidence_records: g.evidence_records,
        hosts: g.hosts.len(),
        bytes: files.iter().map(|f| f.size).sum(),
    })
}

/// Exports into `path`: written to a temporary file beside it and renamed into place only
/// when complete, so a failed export never leaves a half bundle under the name asked for.
pub async fn export_to_path(
    store: Arc<dyn Store>,
    isms: Arc<Isms>,
    options: &ExportOptions,
    path: &Path,
) -> Result<ExportSummary, ExportError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let spool = tempfile::tempdir()?;
    let partial = tempfile::NamedTempFile::new_in(&dir)?;
    let file = partial.reopen()?;
    let summary = write_bundle(store.as_ref(), &isms, options, file, spool.path()).await?;
    partial
        .persist(path)
        .map_err(|e| ExportError::Io(e.error))?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
