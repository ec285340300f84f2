//! What makes a bundle tamper-evident beyond its manifest: the signed reports the evidence
//! came from (the agents' exact JSON bytes with their ed25519 signatures), the agents' public
//! keys, and each host's hash-chain segment covering them. `export verify` re-checks every
//! evidence record against the report its agent signed, every signature, and every chain link
//! (see `manifest::verify_with`).
//!
//! Per host, the segment runs from the lowest to the highest chain index among the reports
//! received in the period and the older reports that still hold evidence for it, so it is
//! contiguous: a report missing from the middle breaks a link.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ExportError, ExportOptions, PAGE_SIZE};
use crate::store::{HostSummary, Store};

pub const REPORTS_FILE: &str = "signed/reports.jsonl";
pub const KEYS_FILE: &str = "signed/agent-keys.json";
pub const CHAINS_FILE: &str = "signed/chains.json";

/// One line of `signed/reports.jsonl`: a stored report's chain entry with its signed body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedReportLine {
    pub machine_id: String,
    pub index: u64,
    pub agent: String,
    pub seq: u64,
    pub batch_id: String,
    pub received_at: DateTime<Utc>,
    /// Hex SHA-256 of `body`'s bytes.
    pub body_sha256: String,
    /// The report's JSON text exactly as the agent signed it (`null` for a report stored
    /// unsigned, before signing existed).
    pub body: Option<String>,
    pub signature: Option<String>,
    pub public_key: Option<String>,
    pub prev_hash: String,
    pub chain_hash: String,
}

/// One host's segment in `signed/chains.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainSegment {
    pub machine_id: String,
    pub first_index: u64,
    pub last_index: u64,
    /// `prev_hash` of the first entry (all zeros when the segment starts the chain).
    pub first_prev_hash: String,
    /// `chain_hash` of the last entry.
    pub last_hash: String,
    /// The host's chain head when the bundle was made.
    pub head_index: u64,
    pub head_hash: String,
}

/// One key in `signed/agent-keys.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyLine {
    pub agent: String,
    pub public_key: String,
    pub fingerprint: String,
    pub source: String,
    pub registered_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Writes the three files into `spool`; returns (bundle path, spool file) in bundle order.
pub(super) async fn spool(
    store: &dyn Store,
    options: &ExportOptions,
    hosts: &[HostSummary],
    referenced: &BTreeMap<String, BTreeSet<u64>>,
    spool: &Path,
) -> Result<Vec<(String, PathBuf)>, ExportError> {
    let heads: BTreeMap<String, (u64, [u8; 32])> = store
        .chain_heads()
        .await?
        .into_iter()
        .map(|h| (h.machine_id, (h.index, h.hash)))
        .collect();
    let reports_path = spool.join("signed-reports.jsonl");
    let mut out = BufWriter::new(File::create(&reports_path)?);
    let mut segments = Vec::new();
    let no_seqs = BTreeSet::new();
    for host in hosts {
        let seqs: Vec<u64> = referenced
            .get(&host.machine_id)
            .unwrap_or(&no_seqs)
            .iter()
            .copied()
            .collect();
        let Some((first, last)) = store
            .chain_bounds(&host.machine_id, options.from, options.to, &seqs)
            .await?
        else {
            continue;
        };
        let mut after = first - 1;
        let mut first_prev = None;
        let mut last_hash = None;
        loop {
            let page = store
                .chain_page(&host.machine_id, after, last, PAGE_SIZE)
                .await?;
            for e in &page {
                first_prev.get_or_insert(e.prev_hash);
                last_hash = Some(e.chain_hash);
                let line = SignedReportLine {
                    machine_id: e.machine_id.clone(),
                    index: e.index,
                    agent: e.agent.clone(),
                    seq: e.seq,
                    batch_id: e.batch_id.clone(),
                    received_at: e.received_at,
                    body_sha256: hex::encode(e.body_sha256),
                    body: e
                        .signed
                        .as_ref()
                        .map(|s| String::from_utf8_lossy(&s.json).into_owned()),
                    signature: e.signed.as_ref().map(|s| hex::encode(s.signature)),
                    public_key: e.signed.as_ref().map(|s| hex::encode(s.public_key)),
                    prev_hash: hex::encode(e.prev_hash),
                    chain_hash: hex::encode(e.chain_hash),
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            match page.last() {
                Some(e) if page.len() == PAGE_SIZE && e.index < last => after = e.index,
                _ => break,
            }
        }
        let (head_index, head_hash) = heads.get(&host.machine_id).copied().unwrap_or((0, [0; 32]));
        if let (Some(prev), Some(hash)) = (first_prev, last_hash) {
            segments.push(ChainSegment {
                machine_id: host.machine_id.clone(),
                first_index: first,
                last_index: last,
                first_prev_hash: hex::encode(prev),
                last_hash: hex::encode(hash),
                head_index,
                head_hash: hex::encode(head_hash),
            });
        }
    }
    out.flush()?;

    let keys: Vec<KeyLine> = store
        .list_agent_keys()
        .await?
        .into_iter()
        .map(|k| KeyLine {
            fingerprint: vigil_shared::signing::VerifyingKey::from_bytes(&k.public_key)
                .map(|v| vigil_shared::signing::fingerprint(&v))
                .unwrap_or_default(),
            public_key: hex::encode(k.public_key),
            agent: k.agent,
            source: k.source.as_str().into(),
            registered_at: k.registered_at,
            retired_at: k.retired_at,
        })
        .collect();
    let keys_path = spool.join("signed-agent-keys.json");
    std::fs::write(
        &keys_path,
        super::pretty(&serde_json::json!({ "keys": keys }))?,
    )?;
    let chains_path = spool.join("signed-chains.json");
    std::fs::write(
        &chains_path,
        super::pretty(&serde_json::json!({
            "formula": "sha256(\"vigil.chain.v1\\0\" || prev_hash || index u64be || received_at ns i64be || body_sha256 || signature || public_key)",
            "chains": segments,
        }))?,
    )?;
    Ok(vec![
        (REPORTS_FILE.into(), reports_path),
        (KEYS_FILE.into(), keys_path),
        (CHAINS_FILE.into(), chains_path),
    ])
}
