//! The SQLite store's row types and the one place where they are converted from and to the
//! `vigil_shared` and store domain types. Times are `INTEGER` nanoseconds since the epoch (UTC),
//! structured fields are JSON text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::Row;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vigil_shared::{CheckResult, Evidence, HostIdentity, OsRelease, Status, Value};

use crate::auth::Role;
use crate::store::{HostSummary, Period, Principal, StatusCounts, StoreError, StoredResult};

pub(super) fn to_nanos(t: DateTime<Utc>, what: &str) -> Result<i64, StoreError> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::OutOfRange {
            what: format!("{what} {}", t.to_rfc3339()),
        })
}

pub(super) fn from_nanos(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

pub(super) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: format!("cannot encode {what}: {e}"),
    })
}

pub(super) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: format!("{what}: {e}"),
    })
}

pub(super) fn u64_from_db(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: format!("negative {what} {v}"),
    })
}

pub(super) fn i64_to_db(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange {
        what: format!("{what} {v}"),
    })
}

/// Columns selected by [`PrincipalRow::from_row`], in order.
pub(super) const PRINCIPAL_COLUMNS: &str =
    "name, role, labels_json, created_at, revoked_at, expires_at";

pub(super) struct PrincipalRow {
    name: String,
    role: String,
    labels_json: String,
    created_at: i64,
    revoked_at: Option<i64>,
    expires_at: Option<i64>,
}

impl PrincipalRow {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<PrincipalRow> {
        Ok(PrincipalRow {
            name: row.get(0)?,
            role: row.get(1)?,
            labels_json: row.get(2)?,
            created_at: row.get(3)?,
            revoked_at: row.get(4)?,
            expires_at: row.get(5)?,
        })
    }

    pub(super) fn into_principal(self) -> Result<Principal, StoreError> {
        let role: Role = self.role.parse().map_err(|e| StoreError::Corrupt {
            what: format!("principal {:?}: {e}", self.name),
        })?;
        Ok(Principal {
            labels: from_json(&self.labels_json, "principal labels")?,
            name: self.name,
            role,
            created_at: from_nanos(self.created_at),
            revoked_at: self.revoked_at.map(from_nanos),
            expires_at: self.expires_at.map(from_nanos),
        })
    }
}

/// A host's identity as stored on the `hosts` row and with each report.
pub(super) struct HostIdentityColumns {
    pub hostname: String,
    pub os_json: String,
    pub kernel: Option<String>,
    pub labels_json: String,
}

impl HostIdentityColumns {
    pub(super) fn from_identity(host: &HostIdentity) -> Result<HostIdentityColumns, StoreError> {
        Ok(HostIdentityColumns {
            hostname: host.hostname.clone(),
            os_json: to_json(&host.os, "host os")?,
            kernel: host.kernel.clone(),
            labels_json: to_json(&host.labels, "host labels")?,
        })
    }
}

/// Columns selected by [`HostRow::from_row`], in order; `h` is `hosts`, `p` the owner.
pub(super) const HOST_COLUMNS: &str = "h.machine_id, h.hostname, h.os_json, h.kernel, \
     h.labels_json, p.name, p.labels_json, h.first_seen, h.last_seen, h.latest_seq, \
     (SELECT r.agent_version FROM reports r WHERE r.machine_id = h.machine_id \
      ORDER BY r.received_at DESC, r.id DESC LIMIT 1)";

pub(super) struct HostRow {
    machine_id: String,
    hostname: String,
    os_json: String,
    kernel: Option<String>,
    labels_json: String,
    agent: String,
    agent_labels_json: String,
    first_seen: i64,
    last_seen: i64,
    latest_seq: i64,
    agent_version: Option<String>,
}

impl HostRow {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<HostRow> {
        Ok(HostRow {
            machine_id: row.get(0)?,
            hostname: row.get(1)?,
            os_json: row.get(2)?,
            kernel: row.get(3)?,
            labels_json: row.get(4)?,
            agent: row.get(5)?,
            agent_labels_json: row.get(6)?,
            first_seen: row.get(7)?,
            last_seen: row.get(8)?,
            latest_seq: row.get(9)?,
            agent_version: row.get(10)?,
        })
    }

    pub(super) fn into_summary(
        self,
        status_counts: StatusCounts,
    ) -> Result<HostSummary, StoreError> {
        let os: OsRelease = from_json(&self.os_json, "host os")?;
        Ok(HostSummary {
            os,
            labels: from_json(&self.labels_json, "host labels")?,
            assigned_labels: from_json(&self.agent_labels_json, "agent labels")?,
            first_seen: from_nanos(self.first_seen),
            last_seen: from_nanos(self.last_seen),
            last_seq: u64_from_db(self.latest_seq, "sequence number")?,
            machine_id: self.machine_id,
            hostname: self.hostname,
            kernel: self.kernel,
            agent: self.agent,
            agent_version: self.agent_version.unwrap_or_default(),
            status_counts,
        })
    }
}

/// One `results` row to insert.
pub(super) struct NewResultRow {
    pub check_id: String,
    pub controls_json: String,
    pub status: &'static str,
    pub summary: String,
    pub error: Option<String>,
    pub observed_at: i64,
    pub duration_ms: i64,
    pub values_json: String,
    pub evidence_json: String,
}

impl NewResultRow {
    pub(super) fn from_result(result: &CheckResult) -> Result<NewResultRow, StoreError> {
        Ok(NewResultRow {
            check_id: result.check.clone(),
            controls_json: to_json(&result.controls, "controls")?,
            status: result.status.as_str(),
            summary: result.summary.clone(),
            error: result.error.clone(),
            observed_at: to_nanos(result.observed_at, "observed_at")?,
            duration_ms: i64_to_db(result.duration_ms, "duration_ms")?,
            values_json: to_json(&result.values, "values")?,
            evidence_json: to_json(&result.evidence, "evidence")?,
        })
    }
}

/// Columns selected by [`ResultRow::from_row`], in order; `r` is `results`, `rep` its report.
pub(super) const RESULT_COLUMNS: &str = "r.check_id, r.controls_json, r.status, r.summary, \
     r.error, r.observed_at, r.received_at, r.duration_ms, r.values_json, r.evidence_json, \
     rep.seq, rep.batch_id";

pub(super) struct ResultRow {
    check_id: String,
    controls_json: String,
    status: String,
    summary: String,
    error: Option<String>,
    observed_at: i64,
    received_at: i64,
    duration_ms: i64,
    values_json: String,
    evidence_json: String,
    seq: i64,
    batch_id: String,
}

impl ResultRow {
    /// Reads [`RESULT_COLUMNS`] starting at column 0.
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<ResultRow> {
        Self::from_row_at(row, 0)
    }

    /// Reads [`RESULT_COLUMNS`] starting at column `at`.
    pub(super) fn from_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<ResultRow> {
        Ok(ResultRow {
            check_id: row.get(at)?,
            controls_json: row.get(at + 1)?,
            status: row.get(at + 2)?,
            summary: row.get(at + 3)?,
            error: row.get(at + 4)?,
            observed_at: row.get(at + 5)?,
            received_at: row.get(at + 6)?,
            duration_ms: row.get(at + 7)?,
            values_json: row.get(at + 8)?,
            evidence_json: row.get(at + 9)?,
            seq: row.get(at + 10)?,
            batch_id: row.get(at + 11)?,
        })
    }

    pub(super) fn into_stored(self, until: Option<i64>) -> Result<StoredResult, StoreError> {
        let status: Status = self.status.parse().map_err(|e| StoreError::Corrupt {
            what: format!("result {}: {e}", self.check_id),
        })?;
        let controls: Vec<String> = from_json(&self.controls_json, "controls")?;
        let values: BTreeMap<String, Value> = from_json(&self.values_json, "values")?;
        let evidence: Evidence = from_json(&self.evidence_json, "evidence")?;
        let observed_at = from_nanos(self.observed_at);
        Ok(StoredResult {
            result: CheckResult {
                check: self.check_id,
                controls,
                observed_at,
                duration_ms: u64_from_db(self.duration_ms, "duration")?,
                status,
                summary: self.summary,
                values,
                evidence,
                error: self.error,
            },
            seq: u64_from_db(self.seq, "sequence number")?,
            batch_id: self.batch_id,
            received_at: from_nanos(self.received_at),
            covers: Period {
                from: observed_at,
                until: until.map(from_nanos),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_times_round_trip_exactly() {
        let t = DateTime::parse_from_rfc3339("2026-06-01T12:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_nanos(to_nanos(t, "t").unwrap()), t);
        let far = DateTime::parse_from_rfc3339("2300-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let err = to_nanos(far, "observed_at").unwrap_err().to_string();
        assert!(err.contains("observed_at 2300-01-01"), "{err}");
    }

    #[test]
    fn corrupt_json_names_the_column() {
        let err = from_json::<Evidence>("{", "evidence")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("stored data is corrupt: evidence"), "{err}");
    }
}
