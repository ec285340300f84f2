//! Paged evidence reads for the export on ClickHouse (read side only; ingest is in
//! `reports.rs`).
//!
//! A page walks committed results in [`EvidenceKey`] order from the key after which it resumes,
//! in chunks, and keeps those whose covered period overlaps `[from, to)`. A result's period ends
//! at the next observation of the same check on the same host (in `(observed_at, seq)` order, as
//! the history read): within a chunk that is the next row of the same pair; for the last row of
//! each pair in a chunk it is looked up with one query for the whole chunk. ClickHouse 18.16
//! has no window functions, hence the two steps.

use std::collections::BTreeMap;

use chrono::DateTime;
use serde::Deserialize;
use vigil_shared::{CheckResult, Evidence, Status, Value};

use super::{ClickHouseStore, ch, nanos};
use crate::store::{
    EvidenceKey, EvidencePageQuery, EvidenceRecord, Period, StoreError, StoredResult,
};

/// Candidates read per round trip.
const CHUNK: usize = 500;

/// Committed results, one row per `(agent, seq, check)` even if an interrupted write was
/// retried (the key `(machine_id, check_id, observed_at, seq)` identifies it).
const COMMITTED_RESULTS: &str = "(agent, seq) IN (SELECT agent, seq FROM reports)";

#[derive(Debug, clickhouse::Row, Deserialize)]
struct EvidenceRow {
    machine_id: String,
    check_id: String,
    observed_at: i64,
    seq: u64,
    batch_id: String,
    received_at: i64,
    status: String,
    summary: String,
    has_error: u8,
    error: String,
    controls_json: String,
    duration_ms: u64,
    values_json: String,
    evidence_json: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct NextRow {
    machine_id: String,
    check_id: String,
    observed_at: i64,
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{what}: {e}")))
}

impl EvidenceRow {
    fn into_record(self, until: Option<i64>) -> Result<EvidenceRecord, StoreError> {
        let status: Status = self
            .status
            .parse()
            .map_err(|e| corrupt(format!("result {}: {e}", self.check_id)))?;
        let controls: Vec<String> = json(&self.controls_json, "controls")?;
        let values: BTreeMap<String, Value> = json(&self.values_json, "values")?;
        let evidence: Evidence = json(&self.evidence_json, "evidence")?;
        let observed_at = DateTime::from_timestamp_nanos(self.observed_at);
        Ok(EvidenceRecord {
            machine_id: self.machine_id,
            stored: StoredResult {
                result: CheckResult {
                    check: self.check_id,
                    controls,
                    observed_at,
                    duration_ms: self.duration_ms,
                    status,
                    summary: self.summary,
                    values,
                    evidence,
                    error: (self.has_error != 0).then_some(self.error),
                },
                seq: self.seq,
                batch_id: self.batch_id,
                received_at: DateTime::from_timestamp_nanos(self.received_at),
                covers: Period {
                    from: observed_at,
                    until: until.map(DateTime::from_timestamp_nanos),
                },
            },
        })
    }
}

/// `(machine_id, check_id, observed_at, seq)` strictly after the key whose values are bound in
/// that order (four times, see [`bind_key`]); 18.16 has no tuple comparison.
const AFTER_KEY: &str = "(machine_id > ? OR (machine_id = ? AND (check_id > ? OR (check_id = ? \
    AND (observed_at > ? OR (observed_at = ? AND seq > ?))))))";

struct Key {
    machine_id: String,
    check: String,
    observed_at: i64,
    seq: u64,
}

fn bind_key(query: clickhouse::query::Query, key: &Key) -> clickhouse::query::Query {
    query
        .bind(&key.machine_id)
        .bind(&key.machine_id)
        .bind(&key.check)
        .bind(&key.check)
        .bind(key.observed_at)
        .bind(key.observed_at)
        .bind(key.seq)
}

impl ClickHouseStore {
    pub(super) async fn read_evidence_page(
        &self,
        query: &EvidencePageQuery,
    ) -> Result<Vec<EvidenceRecord>, StoreError> {
        let from = nanos(query.from, "from")?;
        let to = nanos(query.to, "to")?;
        let mut key = match &query.after {
            Some(EvidenceKey {
                machine_id,
                check,
                observed_at,
                seq,
            }) => Key {
                machine_id: machine_id.clone(),
                check: check.clone(),
                observed_at: nanos(*observed_at, "after")?,
                seq: *seq,
            },
            // Before every row: the empty machine id sorts first; no result has an empty one.
            None => Key {
                machine_id: String::new(),
                check: String::new(),
                observed_at: i64::MIN,
                seq: 0,
            },
        };
        let mut out = Vec::new();
        let chunk_sql = format!(
            "SELECT machine_id, check_id, observed_at, seq, batch_id, received_at, status,
                    summary, has_error, error, controls_json, duration_ms, values_json,
                    evidence_json
             FROM results
             WHERE observed_at < ? AND {AFTER_KEY} AND {COMMITTED_RESULTS}
             ORDER BY machine_id, check_id, observed_at, seq
             LIMIT 1 BY machine_id, check_id, observed_at, seq
             LIMIT ?"
        );
        while out.len() < query.limit {
            let q = self.client.query(&chunk_sql).bind(to);
            let rows = bind_key(q, &key)
                .bind(u64::try_from(CHUNK).unwrap_or(u64::MAX))
                .fetch_all::<EvidenceRow>()
                .await
                .map_err(ch("read evidence for export"))?;
            let exhausted = rows.len() < CHUNK;
            let Some(last) = rows.last() else {
                break;
            };
            key = Key {
                machine_id: last.machine_id.clone(),
                check: last.check_id.clone(),
                observed_at: last.observed_at,
                seq: last.seq,
            };
            let tails = self.next_observations(&rows).await?;
            let mut rows = rows.into_iter().peekable();
            while let Some(row) = rows.next() {
                let until = match rows.peek() {
                    Some(next)
                        if next.machine_id == row.machine_id && next.check_id == row.check_id =>
                    {
                        Some(next.observed_at)
                    }
                    _ => tails
                        .get(&(row.machine_id.clone(), row.check_id.clone()))
                        .copied(),
                };
                if until.is_none_or(|u| u > from) {
                    out.push(row.into_record(until)?);
                    if out.len() == query.limit {
                        break;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }

    /// For the last row of each (host, check) pair of a chunk: the time of the pair's next
    /// committed observation, if any.
    async fn next_observations(
        &self,
        rows: &[EvidenceRow],
    ) -> Result<BTreeMap<(String, String), i64>, StoreError> {
        let mut last: BTreeMap<(&str, &str), &EvidenceRow> = BTreeMap::new();
        for row in rows {
            last.insert((&row.machine_id, &row.check_id), row);
        }
        if last.is_empty() {
            return Ok(BTreeMap::new());
        }
        let condition = vec![
            "(machine_id = ? AND check_id = ? AND (observed_at > ? OR (observed_at = ? AND seq > ?)))";
            last.len()
        ]
        .join(" OR ");
        let sql = format!(
            "SELECT machine_id, check_id, observed_at FROM results
             WHERE ({condition}) AND {COMMITTED_RESULTS}
             ORDER BY machine_id, check_id, observed_at, seq
             LIMIT 1 BY machine_id, check_id"
        );
        let mut query = self.client.query(&sql);
        for row in last.values() {
            query = query
                .bind(&row.machine_id)
                .bind(&row.check_id)
                .bind(row.observed_at)
                .bind(row.observed_at)
                .bind(row.seq);
        }
        Ok(query
            .fetch_all::<NextRow>()
            .await
            .map_err(ch("read evidence for export"))?
            .into_iter()
            .map(|r| ((r.machine_id, r.check_id), r.observed_at))
            .collect())
    }
}
