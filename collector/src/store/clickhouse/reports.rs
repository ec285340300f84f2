//! Reports and results on ClickHouse: ingest with report deduplication, hosts, latest results
//! and history.
//!
//! A report is written as its result rows first and its `reports` row last: the `reports` row
//! is the commit marker. Reads only see results whose `(agent, seq)` has a `reports` row, and
//! keep one row per `(agent, seq, check)`, so a write interrupted between the two inserts and
//! retried by the agent never doubles a measurement. Hosts are derived from `reports` (owner =
//! agent of the first stored report, identity from the highest sequence number).

use std::collections::BTreeMap;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use vigil_shared::{CheckResult, Evidence, Status, Value};

use super::{ClickHouseStore, ch, nanos};
use crate::auth::Role;
use crate::store::{
    History, HistoryQuery, HostDetail, HostSummary, IngestOutcome, IngestRequest, Period,
    StatusCounts, StoreError, StoredResult,
};

/// Tables of this module (database-qualified by the caller).
pub(super) fn schema(db: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.reports (
                agent String, seq UInt64, batch_id String, machine_id String,
                hostname String, os_json String, has_kernel UInt8, kernel String,
                labels_json String, agent_version String, health_json String,
                sent_at Int64, received_at Int64, body_sha256 String, stored Int64
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(toDateTime(intDiv(received_at, 1000000000)))
            ORDER BY (machine_id, agent, seq)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.results (
                machine_id String, check_id String, observed_at Int64, agent String,
                seq UInt64, batch_id String, received_at Int64, status String, summary String,
                has_error UInt8, error String, controls_json String, duration_ms UInt64,
                values_json String, evidence_json String
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(toDateTime(intDiv(received_at, 1000000000)))
            ORDER BY (machine_id, check_id, observed_at)"
        ),
    ]
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct ReportRow {
    agent: String,
    seq: u64,
    batch_id: String,
    machine_id: String,
    hostname: String,
    os_json: String,
    has_kernel: u8,
    kernel: String,
    labels_json: String,
    agent_version: String,
    health_json: String,
    sent_at: i64,
    received_at: i64,
    body_sha256: String,
    stored: i64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct ResultRow {
    machine_id: String,
    check_id: String,
    observed_at: i64,
    agent: String,
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

const RESULT_COLUMNS: &str = "machine_id, check_id, observed_at, agent, seq, batch_id, \
    received_at, status, summary, has_error, error, controls_json, duration_ms, values_json, \
    evidence_json";

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SeqRow {
    batch_id: String,
    received_at: i64,
    body_sha256: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct HostRow {
    machine_id: String,
    agent: String,
    hostname: String,
    os_json: String,
    has_kernel: u8,
    kernel: String,
    labels_json: String,
    first_seen: i64,
    last_seen: i64,
    last_seq: u64,
    agent_version: String,
}

const HOSTS_SQL: &str = "SELECT machine_id, argMin(agent, stored) AS owner,
        argMax(hostname, seq) AS h, argMax(os_json, seq) AS o, argMax(has_kernel, seq) AS hk,
        argMax(kernel, seq) AS k, argMax(labels_json, seq) AS l,
        argMin(received_at, stored) AS fs, max(received_at) AS ls, max(seq) AS ms,
        argMax(agent_version, received_at) AS av
    FROM reports WHERE machine_id LIKE ? GROUP BY machine_id";

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
    }
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{what}: {e}")))
}

fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(format!("{what}: {e}")))
}

fn like_exact(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl ResultRow {
    fn into_stored(self, until: Option<i64>) -> Result<StoredResult, StoreError> {
        let status: Status = self
            .status
            .parse()
            .map_err(|e| corrupt(format!("result {}: {e}", self.check_id)))?;
        let controls: Vec<String> = json(&self.controls_json, "controls")?;
        let values: BTreeMap<String, Value> = json(&self.values_json, "values")?;
        let evidence: Evidence = json(&self.evidence_json, "evidence")?;
        let observed_at = DateTime::from_timestamp_nanos(self.observed_at);
        Ok(StoredResult {
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
        })
    }
}

impl ClickHouseStore {
    pub(super) async fn ingest_report(
        &self,
        request: &IngestRequest,
    ) -> Result<IngestOutcome, StoreError> {
        self.check_open()?;
        let report = &request.report;
        let received = nanos(request.received_at, "received_at")?;
        let _guard = self.write_lock.lock().await;
        // A revocation after authentication must still win.
        match self.raw_principal(&request.agent).await? {
            Some(p) if p.revoked == 0 && p.role == Role::Agent.as_str() => {}
            _ => {
                return Ok(IngestOutcome::AgentInactive {
                    agent: request.agent.clone(),
                });
            }
        }
        let same_seq = self
            .client
            .query("SELECT batch_id, received_at, body_sha256 FROM reports WHERE agent = ? AND seq = ? ORDER BY stored LIMIT 1")
            .bind(&request.agent)
            .bind(report.seq)
            .fetch_optional::<SeqRow>()
            .await
            .map_err(ch("look for a duplicate"))?;
        if let Some(stored) = same_seq {
            if stored.batch_id == report.batch_id {
                return Ok(IngestOutcome::Duplicate {
                    seq: report.seq,
                    batch_id: stored.batch_id,
                    first_received_at: DateTime::from_timestamp_nanos(stored.received_at),
                    same_body: stored.body_sha256 == hex::encode(request.body_sha256),
                });
            }
            return Ok(IngestOutcome::SeqConflict {
                seq: report.seq,
                batch_id: report.batch_id.clone(),
                stored_batch_id: stored.batch_id,
            });
        }
        let same_batch = self
            .client
            .query("SELECT seq FROM reports WHERE agent = ? AND batch_id = ? LIMIT 1")
            .bind(&request.agent)
            .bind(&report.batch_id)
            .fetch_optional::<u64>()
            .await
            .map_err(ch("look for a reused batch id"))?;
        if let Some(stored_seq) = same_batch {
            return Ok(IngestOutcome::BatchConflict {
                seq: report.seq,
                batch_id: report.batch_id.clone(),
                stored_seq,
            });
        }
        let machine_id = &report.host.machine_id;
        let owner = self
            .client
            .query("SELECT argMin(agent, stored) FROM reports WHERE machine_id = ? GROUP BY machine_id")
            .bind(machine_id)
            .fetch_optional::<String>()
            .await
            .map_err(ch("read the host's owner"))?;
        if let Some(owner) = owner
            && owner != request.agent
        {
            return Ok(IngestOutcome::HostOwned {
                machine_id: machine_id.clone(),
                owner,
            });
        }

        let mut rows = Vec::with_capacity(report.results.len());
        for result in &report.results {
            rows.push(ResultRow {
                machine_id: machine_id.clone(),
                check_id: result.check.clone(),
                observed_at: nanos(result.observed_at, "observed_at")?,
                agent: request.agent.clone(),
                seq: report.seq,
                batch_id: report.batch_id.clone(),
                received_at: received,
                status: result.status.as_str().into(),
                summary: result.summary.clone(),
                has_error: u8::from(result.error.is_some()),
                error: result.error.clone().unwrap_or_default(),
                controls_json: to_json(&result.controls, "controls")?,
                duration_ms: result.duration_ms,
                values_json: to_json(&result.values, "values")?,
                evidence_json: to_json(&result.evidence, "evidence")?,
            });
        }
        if !rows.is_empty() {
            let mut insert = self
                .inserter
                .insert::<ResultRow>("results")
                .await
                .map_err(ch("insert results"))?;
            for row in &rows {
                insert.write(row).await.map_err(ch("insert results"))?;
            }
            insert.end().await.map_err(ch("insert results"))?;
        }
        // Tamper evidence (issue 8): the chain entry goes before the commit marker.
        super::chain::append(self, request, received).await?;
        let row = ReportRow {
            agent: request.agent.clone(),
            seq: report.seq,
            batch_id: report.batch_id.clone(),
            machine_id: machine_id.clone(),
            hostname: report.host.hostname.clone(),
            os_json: to_json(&report.host.os, "host os")?,
            has_kernel: u8::from(report.host.kernel.is_some()),
            kernel: report.host.kernel.clone().unwrap_or_default(),
            labels_json: to_json(&report.host.labels, "host labels")?,
            agent_version: report.agent.version.clone(),
            health_json: to_json(&report.agent.health, "agent health")?,
            sent_at: nanos(report.sent_at, "sent_at")?,
            received_at: received,
            body_sha256: hex::encode(request.body_sha256),
            stored: self.next_version(),
        };
        let mut insert = self
            .inserter
            .insert::<ReportRow>("reports")
            .await
            .map_err(ch("insert the report"))?;
        insert.write(&row).await.map_err(ch("insert the report"))?;
        insert.end().await.map_err(ch("insert the report"))?;
        Ok(IngestOutcome::Stored {
            seq: report.seq,
            batch_id: report.batch_id.clone(),
        })
    }

    /// Hosts, all (`None`) or one.
    pub(super) async fn hosts(
        &self,
        machine_id: Option<&str>,
    ) -> Result<Vec<HostSummary>, StoreError> {
        self.check_open()?;
        let pattern = machine_id.map(like_exact).unwrap_or_else(|| "%".into());
        let rows = self
            .client
            .query(HOSTS_SQL)
            .bind(&pattern)
            .fetch_all::<HostRow>()
            .await
            .map_err(ch("list hosts"))?;
        let counts = self.status_counts(&pattern).await?;
        let principals: BTreeMap<String, BTreeMap<String, String>> = self
            .principals_where("name != ?", "")
            .await?
            .into_iter()
            .map(|p| (p.name, p.labels))
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(HostSummary {
                os: json(&row.os_json, "host os")?,
                labels: json(&row.labels_json, "host labels")?,
                assigned_labels: principals.get(&row.agent).cloned().unwrap_or_default(),
                first_seen: DateTime::from_timestamp_nanos(row.first_seen),
                last_seen: DateTime::from_timestamp_nanos(row.last_seen),
                last_seq: row.last_seq,
                status_counts: counts.get(&row.machine_id).copied().unwrap_or_default(),
                kernel: (row.has_kernel != 0).then_some(row.kernel),
                machine_id: row.machine_id,
                hostname: row.hostname,
                agent: row.agent,
                agent_version: row.agent_version,
            });
        }
        out.sort_by(|a, b| {
            (a.hostname.as_str(), a.machine_id.as_str())
                .cmp(&(b.hostname.as_str(), b.machine_id.as_str()))
        });
        Ok(out)
    }

    /// Latest committed result per (host, check), by sequence number.
    async fn latest(&self, pattern: &str) -> Result<Vec<ResultRow>, StoreError> {
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results
             WHERE machine_id LIKE ? AND (agent, seq) IN
                   (SELECT agent, seq FROM reports WHERE machine_id LIKE ?)
             ORDER BY machine_id, check_id, seq DESC
             LIMIT 1 BY machine_id, check_id"
        );
        self.client
            .query(&sql)
            .bind(pattern)
            .bind(pattern)
            .fetch_all::<ResultRow>()
            .await
            .map_err(ch("read latest results"))
    }

    async fn status_counts(
        &self,
        pattern: &str,
    ) -> Result<BTreeMap<String, StatusCounts>, StoreError> {
        let mut out: BTreeMap<String, StatusCounts> = BTreeMap::new();
        for row in self.latest(pattern).await? {
            let status: Status = row
                .status
                .parse()
                .map_err(|e| corrupt(format!("result {}: {e}", row.check_id)))?;
            out.entry(row.machine_id).or_default().add(status, 1);
        }
        Ok(out)
    }

    pub(super) async fn detail(&self, machine_id: &str) -> Result<Option<HostDetail>, StoreError> {
        let Some(host) = self.hosts(Some(machine_id)).await?.into_iter().next() else {
            return Ok(None);
        };
        let results = self
            .latest(&like_exact(machine_id))
            .await?
            .into_iter()
            .map(|row| row.into_stored(None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(HostDetail { host, results }))
    }

    pub(super) async fn history(
        &self,
        query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError> {
        if self.hosts(Some(&query.machine_id)).await?.is_empty() {
            return Ok(None);
        }
        let from = nanos(query.from, "from")?;
        let to = nanos(query.to, "to")?;
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results
             WHERE machine_id = ? AND check_id = ? AND (agent, seq) IN
                   (SELECT agent, seq FROM reports WHERE machine_id = ?)
             ORDER BY observed_at, seq
             LIMIT 1 BY agent, seq"
        );
        let rows = self
            .client
            .query(&sql)
            .bind(&query.machine_id)
            .bind(&query.check)
            .bind(&query.machine_id)
            .fetch_all::<ResultRow>()
            .await
            .map_err(ch("read result history"))?;
        // The covered period of a result ends at the next observation of the same check.
        let untils: Vec<Option<i64>> = (0..rows.len())
            .map(|i| rows.get(i + 1).map(|next| next.observed_at))
            .collect();
        let mut results = Vec::new();
        for (row, until) in rows.into_iter().zip(untils) {
            if row.observed_at < to && until.is_none_or(|u| u > from) {
                results.push(row.into_stored(until)?);
            }
        }
        let truncated = results.len() > query.limit;
        results.truncate(query.limit);
        Ok(Some(History { results, truncated }))
    }

    pub(super) async fn count_reports_and_results(&self) -> Result<(u64, u64, u64), StoreError> {
        let hosts = self
            .client
            .query("SELECT uniqExact(machine_id) FROM reports")
            .fetch_one::<u64>()
            .await
            .map_err(ch("count hosts"))?;
        let reports = self
            .client
            .query("SELECT count() FROM (SELECT agent, seq FROM reports GROUP BY agent, seq)")
            .fetch_one::<u64>()
            .await
            .map_err(ch("count reports"))?;
        let results = self
            .client
            .query(
                "SELECT count() FROM (SELECT agent, seq, check_id FROM results
                 WHERE (agent, seq) IN (SELECT agent, seq FROM reports)
                 GROUP BY agent, seq, check_id)",
            )
            .fetch_one::<u64>()
            .await
            .map_err(ch("count results"))?;
        Ok((hosts, reports, results))
    }
}

impl ClickHouseStore {
    /// Hosts with their latest result per check, for the evaluation engine.
    pub(super) async fn facts(
        &self,
        since: Option<DateTime<chrono::Utc>>,
    ) -> Result<Vec<crate::evaluate::HostFacts>, StoreError> {
        use crate::evaluate::{HostFacts, ResultFacts, host_labels};
        let since = since.map(|t| nanos(t, "since")).transpose()?;
        let mut hosts = Vec::new();
        for host in self.hosts(None).await? {
            if since.is_some_and(|s| host.last_seen.timestamp_nanos_opt().unwrap_or(i64::MAX) < s) {
                continue;
            }
            let labels = host_labels(
                &host.labels,
                &host.assigned_labels,
                &host.hostname,
                &host.machine_id,
                &host.agent,
                &host.os.id,
                &host.os.version_id,
            );
            hosts.push(HostFacts {
                machine_id: host.machine_id,
                hostname: host.hostname,
                labels,
                last_seen: host.last_seen,
                results: BTreeMap::new(),
            });
        }
        hosts.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
        let index: std::collections::HashMap<String, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.machine_id.clone(), i))
            .collect();
        if hosts.is_empty() {
            return Ok(hosts);
        }
        for row in self.latest("%").await? {
            let Some(&i) = index.get(&row.machine_id) else {
                continue;
            };
            let stored = row.into_stored(None)?;
            let r = stored.result;
            if let Some(host) = hosts.get_mut(i) {
                host.results.insert(
                    r.check,
                    ResultFacts {
                        status: r.status,
                        observed_at: r.observed_at,
                        controls: r.controls,
                        values: r.values,
                        offenders: r.evidence.offenders.into_iter().map(|o| o.id).collect(),
                        checked: r.evidence.checked.len(),
                        error: r.error,
                    },
                );
            }
        }
        Ok(hosts)
    }
}
