//! The ISMS engine's state on ClickHouse: saved evaluations, point-in-time reads of verdicts,
//! controls, KPIs, objectives and nonconformities, and people's actions on nonconformities.
//!
//! Every write (one evaluation, or one action on a nonconformity) gets a `write_id` (a
//! [`ClickHouseStore::next_version`] value, increasing). Its rows go to the detail tables first
//! and one `isms_writes` row last: that row is the commit marker, and every read only sees rows
//! whose `write_id` has one, so readers see a write whole or not at all.
//!
//! Histories (verdict, control, objective changes, KPI measurements and analyses, nonconformity
//! events) are `MergeTree` tables partitioned by the month of their time. Current state
//! (verdicts, controls, nonconformities) is `ReplacingMergeTree(write_id)`, read with `argMax`
//! over committed rows, so that reads never depend on `FINAL` or on merges having run. A write
//! that fails after some of its rows landed is deleted again (`ALTER TABLE … DELETE`), so that
//! a merge cannot let its uncommitted rows replace committed ones.
//!
//! Writes of one collector are serialised by the store's write lock: nonconformity ids are
//! allocated under it (highest id ever written + 1), and the "one active nonconformity per key"
//! rule and the optimistic `updated_at` check of nonconformity changes are decided under it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ClickHouseStore, ch, nanos};
use crate::evaluate::nonconformities::{NcAction, apply_action};
use crate::evaluate::{
    ControlState, KpiEvaluation, KpiStatus, KpiValue, NcEvent, NcEventKind, NcState, Nonconformity,
    ObjectiveState, ObjectiveStatus, Verdict, VerdictState,
};
use crate::isms::ImplementationStatus;
use crate::store::point_in_time::{catalogue_order, nc_as_of};
use crate::store::{
    ControlRecord, EngineState, EvaluationBatch, KpiSnapshot, NcActionOutcome, NcDetail,
    ObjectiveRecord, SavedEvaluation, StoreError, VerdictRecord,
};

/// Month partition of a table whose event time is `at` (Int64 nanoseconds).
const BY_MONTH: &str = "PARTITION BY toYYYYMM(toDateTime(intDiv(at, 1000000000)))";

/// Rows of committed writes only.
const COMMITTED: &str = "write_id IN (SELECT write_id FROM isms_writes)";

/// Tables holding rows of a write, the commit marker last (see [`ClickHouseStore::forget`]).
const WRITE_TABLES: [&str; 10] = [
    "verdict_current",
    "verdict_history",
    "control_current",
    "control_history",
    "kpi_values",
    "kpi_evaluations",
    "objective_history",
    "nonconformities",
    "nc_events",
    "isms_writes",
];

pub(super) fn schema(db: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.isms_writes (
                write_id Int64, at Int64, kind String
            ) ENGINE = MergeTree {BY_MONTH} ORDER BY write_id"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.verdict_current (
                machine_id String, rule_id String, write_id Int64, present UInt8,
                verdict String, reason String, has_observed UInt8, observed_at Int64,
                has_failing UInt8, failing_since Int64, offenders_json String,
                has_overdue UInt8, overdue_since Int64, has_exception UInt8, exception String,
                since Int64
            ) ENGINE = ReplacingMergeTree(write_id) ORDER BY (machine_id, rule_id)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.verdict_history (
                machine_id String, rule_id String, at Int64, write_id Int64, n UInt32,
                present UInt8, verdict String, reason String, overdue UInt8,
                has_exception UInt8, exception String
            ) ENGINE = MergeTree {BY_MONTH} ORDER BY (machine_id, rule_id, at)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.control_current (
                control_id String, write_id Int64, status String, reason String,
                passing UInt64, failing UInt64, evidence_count UInt64,
                has_last_evidence UInt8, last_evidence Int64, since Int64
            ) ENGINE = ReplacingMergeTree(write_id) ORDER BY control_id"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.control_history (
                control_id String, at Int64, write_id Int64, n UInt32, status String,
                reason String, passing UInt64, failing UInt64, evidence_count UInt64,
                has_last_evidence UInt8, last_evidence Int64
            ) ENGINE = MergeTree {BY_MONTH} ORDER BY (control_id, at)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.kpi_values (
                kpi_id String, at Int64, write_id Int64, n UInt32, has_value UInt8,
                value Float64, has_numerator UInt8, numerator UInt64, has_denominator UInt8,
                denominator UInt64, hosts_in_scope UInt64
            ) ENGINE = MergeTree {BY_MONTH} ORDER BY (kpi_id, at)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.kpi_evaluations (
                kpi_id String, at Int64, write_id Int64, n UInt32, status String,
                has_value UInt8, value Float64, target Float64, consecutive_misses UInt32,
                consecutive_met UInt32
            ) ENGINE = MergeTree {BY_MONTH} ORDER BY (kpi_id, at)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.objective_history (
                objective_id String, at Int64, write_id Int64, n UInt32, status String,
                reason String
            ) ENGINE = MergeTree {BY_MONTH} ORDER BY (objective_id, at)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.nonconformities (
                id UInt64, write_id Int64, nc_key String, state String, opened_at Int64,
                updated_at Int64, record_json String
            ) ENGINE = ReplacingMergeTree(write_id) ORDER BY id"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.nc_events (
                nc_id UInt64, at Int64, write_id Int64, n UInt32, actor String, kind String,
                has_from UInt8, from_state String, to_state String, note String
            ) ENGINE = MergeTree {BY_MONTH} ORDER BY (nc_id, write_id, n)"
        ),
    ]
}

// ---- rows ---------------------------------------------------------------------------------

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct WriteRow {
    write_id: i64,
    at: i64,
    kind: String,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct VerdictRow {
    machine_id: String,
    rule_id: String,
    write_id: i64,
    present: u8,
    verdict: String,
    reason: String,
    has_observed: u8,
    observed_at: i64,
    has_failing: u8,
    failing_since: i64,
    offenders_json: String,
    has_overdue: u8,
    overdue_since: i64,
    has_exception: u8,
    exception: String,
    since: i64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct VerdictHistoryRow {
    machine_id: String,
    rule_id: String,
    at: i64,
    write_id: i64,
    n: u32,
    present: u8,
    verdict: String,
    reason: String,
    overdue: u8,
    has_exception: u8,
    exception: String,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct ControlRow {
    control_id: String,
    write_id: i64,
    status: String,
    reason: String,
    passing: u64,
    failing: u64,
    evidence_count: u64,
    has_last_evidence: u8,
    last_evidence: i64,
    since: i64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct ControlHistoryRow {
    control_id: String,
    at: i64,
    write_id: i64,
    n: u32,
    status: String,
    reason: String,
    passing: u64,
    failing: u64,
    evidence_count: u64,
    has_last_evidence: u8,
    last_evidence: i64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct KpiValueRow {
    kpi_id: String,
    at: i64,
    write_id: i64,
    n: u32,
    has_value: u8,
    value: f64,
    has_numerator: u8,
    numerator: u64,
    has_denominator: u8,
    denominator: u64,
    hosts_in_scope: u64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct KpiEvaluationRow {
    kpi_id: String,
    at: i64,
    write_id: i64,
    n: u32,
    status: String,
    has_value: u8,
    value: f64,
    target: f64,
    consecutive_misses: u32,
    consecutive_met: u32,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct ObjectiveRow {
    objective_id: String,
    at: i64,
    write_id: i64,
    n: u32,
    status: String,
    reason: String,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct NcRow {
    id: u64,
    write_id: i64,
    nc_key: String,
    state: String,
    opened_at: i64,
    updated_at: i64,
    record_json: String,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct NcEventRow {
    nc_id: u64,
    at: i64,
    write_id: i64,
    n: u32,
    actor: String,
    kind: String,
    has_from: u8,
    from_state: String,
    to_state: String,
    note: String,
}

/// What the nonconformity rules look at, without the record.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct NcHead {
    id: u64,
    nc_key: String,
    state: String,
    updated_at: i64,
}

// ---- conversions --------------------------------------------------------------------------

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn at(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(t)
}

/// An optional time as a flag and a value (argMax'd columns are never Nullable).
fn opt_time(t: Option<DateTime<Utc>>, what: &str) -> Result<(u8, i64), StoreError> {
    Ok(match t {
        Some(t) => (1, nanos(t, what)?),
        None => (0, 0),
    })
}

fn back(has: u8, t: i64) -> Option<DateTime<Utc>> {
    (has != 0).then(|| at(t))
}

fn opt_str(s: &Option<String>) -> (u8, String) {
    (u8::from(s.is_some()), s.clone().unwrap_or_default())
}

fn back_str(has: u8, s: String) -> Option<String> {
    (has != 0).then_some(s)
}

fn parse_verdict(s: &str) -> Result<Verdict, StoreError> {
    Verdict::parse(s).ok_or_else(|| corrupt(format!("verdict {s:?}")))
}

fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(format!("{what}: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{what}: {e}")))
}

/// `argMax(c, write_id) AS l_c, …` for each column (aliases differ from column names: on
/// 18.16 an alias equal to a column name breaks `argMax`).
fn latest_columns(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("argMax({c}, write_id) AS l_{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl VerdictRow {
    fn from_state(v: &VerdictState, write_id: i64) -> Result<VerdictRow, StoreError> {
        let offenders: BTreeMap<&str, i64> = v
            .offenders_first_seen
            .iter()
            .map(|(k, t)| Ok((k.as_str(), nanos(*t, "offender first seen")?)))
            .collect::<Result<_, StoreError>>()?;
        let (has_observed, observed_at) = opt_time(v.observed_at, "observed_at")?;
        let (has_failing, failing_since) = opt_time(v.failing_since, "failing_since")?;
        let (has_overdue, overdue_since) = opt_time(v.overdue_since, "overdue_since")?;
        let (has_exception, exception) = opt_str(&v.exception);
        Ok(VerdictRow {
            machine_id: v.machine_id.to_string(),
            rule_id: v.rule.to_string(),
            write_id,
            present: 1,
            verdict: v.verdict.as_str().into(),
            reason: v.reason.to_string(),
            has_observed,
            observed_at,
            has_failing,
            failing_since,
            offenders_json: to_json(&offenders, "offenders")?,
            has_overdue,
            overdue_since,
            has_exception,
            exception,
            since: nanos(v.since, "since")?,
        })
    }

    fn dropped(machine_id: &str, rule: &str, write_id: i64) -> VerdictRow {
        VerdictRow {
            machine_id: machine_id.into(),
            rule_id: rule.into(),
            write_id,
            present: 0,
            verdict: String::new(),
            reason: String::new(),
            has_observed: 0,
            observed_at: 0,
            has_failing: 0,
            failing_since: 0,
            offenders_json: "{}".into(),
            has_overdue: 0,
            overdue_since: 0,
            has_exception: 0,
            exception: String::new(),
            since: 0,
        }
    }

    fn into_state(self) -> Result<VerdictState, StoreError> {
        let first_seen: BTreeMap<String, i64> =
            from_json(&self.offenders_json, "offenders first seen")?;
        Ok(VerdictState {
            verdict: parse_verdict(&self.verdict)?,
            machine_id: self.machine_id.into(),
            rule: self.rule_id.into(),
            reason: self.reason.into(),
            observed_at: back(self.has_observed, self.observed_at),
            failing_since: back(self.has_failing, self.failing_since),
            offenders_first_seen: first_seen.into_iter().map(|(k, v)| (k, at(v))).collect(),
            overdue_since: back(self.has_overdue, self.overdue_since),
            exception: back_str(self.has_exception, self.exception),
            since: at(self.since),
        })
    }
}

fn control_state(
    control: String,
    status: &str,
    reason: String,
    counts: (u64, u64, u64),
    last_evidence: Option<DateTime<Utc>>,
) -> Result<ControlState, StoreError> {
    Ok(ControlState {
        control,
        status: ImplementationStatus::parse(status)
            .ok_or_else(|| corrupt(format!("control status {status:?}")))?,
        reason,
        passing: counts.0,
        failing: counts.1,
        evidence_count: counts.2,
        last_evidence,
    })
}

impl ControlRow {
    fn into_record(self) -> Result<ControlRecord, StoreError> {
        Ok(ControlRecord {
            state: control_state(
                self.control_id,
                &self.status,
                self.reason,
                (self.passing, self.failing, self.evidence_count),
                back(self.has_last_evidence, self.last_evidence),
            )?,
            since: at(self.since),
        })
    }
}

impl ControlHistoryRow {
    fn into_record(self) -> Result<ControlRecord, StoreError> {
        Ok(ControlRecord {
            state: control_state(
                self.control_id,
                &self.status,
                self.reason,
                (self.passing, self.failing, self.evidence_count),
                back(self.has_last_evidence, self.last_evidence),
            )?,
            since: at(self.at),
        })
    }
}

impl KpiValueRow {
    fn into_value(self) -> KpiValue {
        KpiValue {
            kpi: self.kpi_id,
            at: at(self.at),
            value: (self.has_value != 0).then_some(self.value),
            numerator: (self.has_numerator != 0).then_some(self.numerator),
            denominator: (self.has_denominator != 0).then_some(self.denominator),
            hosts_in_scope: self.hosts_in_scope,
        }
    }
}

impl KpiEvaluationRow {
    fn into_evaluation(self) -> Result<KpiEvaluation, StoreError> {
        Ok(KpiEvaluation {
            status: KpiStatus::parse(&self.status)
                .ok_or_else(|| corrupt(format!("kpi status {:?}", self.status)))?,
            kpi: self.kpi_id,
            at: at(self.at),
            value: (self.has_value != 0).then_some(self.value),
            target: self.target,
            consecutive_misses: self.consecutive_misses,
            consecutive_met: self.consecutive_met,
        })
    }
}

impl ObjectiveRow {
    fn into_record(self) -> Result<ObjectiveRecord, StoreError> {
        Ok(ObjectiveRecord {
            state: ObjectiveState {
                status: ObjectiveStatus::parse(&self.status)
                    .ok_or_else(|| corrupt(format!("objective status {:?}", self.status)))?,
                objective: self.objective_id,
                reason: self.reason,
            },
            since: at(self.at),
        })
    }
}

impl NcRow {
    fn from_nc(nc: &Nonconformity, write_id: i64) -> Result<NcRow, StoreError> {
        Ok(NcRow {
            id: nc.id,
            write_id,
            nc_key: nc.key.clone(),
            state: nc.state.as_str().into(),
            opened_at: nanos(nc.opened_at, "opened_at")?,
            updated_at: nanos(nc.updated_at, "updated_at")?,
            record_json: to_json(nc, "nonconformity")?,
        })
    }

    fn into_nc(self) -> Result<Nonconformity, StoreError> {
        let mut nc: Nonconformity = from_json(&self.record_json, "nonconformity")?;
        nc.id = self.id;
        Ok(nc)
    }
}

impl NcEventRow {
    fn from_event(
        nc_id: u64,
        e: &NcEvent,
        write_id: i64,
        n: u32,
    ) -> Result<NcEventRow, StoreError> {
        Ok(NcEventRow {
            nc_id,
            at: nanos(e.at, "event time")?,
            write_id,
            n,
            actor: e.actor.clone(),
            kind: e.kind.as_str().into(),
            has_from: u8::from(e.from.is_some()),
            from_state: e.from.map(NcState::as_str).unwrap_or_default().into(),
            to_state: e.to.as_str().into(),
            note: e.note.clone(),
        })
    }

    fn into_event(self) -> Result<(u64, NcEvent), StoreError> {
        let state = |s: &str| NcState::parse(s).ok_or_else(|| corrupt(format!("state {s:?}")));
        Ok((
            self.nc_id,
            NcEvent {
                at: at(self.at),
                kind: NcEventKind::parse(&self.kind)
                    .ok_or_else(|| corrupt(format!("event kind {:?}", self.kind)))?,
                from: if self.has_from != 0 {
                    Some(state(&self.from_state)?)
                } else {
                    None
                },
                to: state(&self.to_state)?,
                actor: self.actor,
                note: self.note,
            },
        ))
    }
}

fn n(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Rows of one write, inserted table by table in [`ClickHouseStore::commit`].
#[derive(Default)]
struct WriteSet {
    verdicts: Vec<VerdictRow>,
    verdict_history: Vec<VerdictHistoryRow>,
    controls: Vec<ControlRow>,
    control_history: Vec<ControlHistoryRow>,
    kpi_values: Vec<KpiValueRow>,
    kpi_evaluations: Vec<KpiEvaluationRow>,
    objectives: Vec<ObjectiveRow>,
    ncs: Vec<NcRow>,
    events: Vec<NcEventRow>,
}

const VERDICT_COLUMNS: [&str; 14] = [
    "present",
    "verdict",
    "reason",
    "has_observed",
    "observed_at",
    "has_failing",
    "failing_since",
    "offenders_json",
    "has_overdue",
    "overdue_since",
    "has_exception",
    "exception",
    "since",
    "write_id",
];

impl ClickHouseStore {
    async fn insert_rows<T>(&self, table: &str, rows: &[T]) -> Result<(), StoreError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .inserter
            .insert::<T>(table)
            .await
            .map_err(ch("save ISMS state"))?;
        for row in rows {
            insert.write(row).await.map_err(ch("save ISMS state"))?;
        }
        insert.end().await.map_err(ch("save ISMS state"))
    }

    /// Inserts the rows of one write, then its commit marker. On failure, deletes what
    /// landed (best effort) and returns the error.
    async fn commit(
        &self,
        write_id: i64,
        at: i64,
        kind: &str,
        set: WriteSet,
    ) -> Result<(), StoreError> {
        let result = async {
            self.insert_rows("verdict_current", &set.verdicts).await?;
            self.insert_rows("verdict_history", &set.verdict_history)
                .await?;
            self.insert_rows("control_current", &set.controls).await?;
            self.insert_rows("control_history", &set.control_history)
                .await?;
            self.insert_rows("kpi_values", &set.kpi_values).await?;
            self.insert_rows("kpi_evaluations", &set.kpi_evaluations)
                .await?;
            self.insert_rows("objective_history", &set.objectives)
                .await?;
            self.insert_rows("nonconformities", &set.ncs).await?;
            self.insert_rows("nc_events", &set.events).await?;
            self.insert_rows(
                "isms_writes",
                &[WriteRow {
                    write_id,
                    at,
                    kind: kind.into(),
                }],
            )
            .await
        }
        .await;
        if result.is_err() {
            self.forget(write_id).await;
        }
        result
    }

    /// Deletes every row of a failed write, so that no merge of a replacing table ever
    /// prefers its uncommitted rows to committed ones. Best effort: errors are logged.
    async fn forget(&self, write_id: i64) {
        for table in WRITE_TABLES {
            let sql = format!("ALTER TABLE {table} DELETE WHERE write_id = ?");
            if let Err(e) = self.client.query(&sql).bind(write_id).execute().await {
                tracing::warn!(table, write_id, error = %e, "could not delete the rows of a failed ISMS write");
            }
        }
    }

    async fn current_verdicts(
        &self,
        machine_id: Option<&str>,
        rule: Option<&str>,
    ) -> Result<Vec<VerdictState>, StoreError> {
        let mut filter = String::new();
        if machine_id.is_some() {
            filter.push_str(" AND machine_id = ?");
        }
        if rule.is_some() {
            filter.push_str(" AND rule_id = ?");
        }
        let sql = format!(
            "SELECT machine_id, rule_id, l_write_id, l_present, l_verdict, l_reason,
                    l_has_observed, l_observed_at, l_has_failing, l_failing_since,
                    l_offenders_json, l_has_overdue, l_overdue_since, l_has_exception,
                    l_exception, l_since
             FROM (SELECT machine_id, rule_id, {}
                   FROM verdict_current WHERE {COMMITTED}{filter}
                   GROUP BY machine_id, rule_id)
             WHERE l_present = 1 ORDER BY machine_id, rule_id",
            latest_columns(&VERDICT_COLUMNS)
        );
        let mut query = self.client.query(&sql);
        if let Some(m) = machine_id {
            query = query.bind(m);
        }
        if let Some(r) = rule {
            query = query.bind(r);
        }
        query
            .fetch_all::<VerdictRow>()
            .await
            .map_err(ch("read verdicts"))?
            .into_iter()
            .map(VerdictRow::into_state)
            .collect()
    }

    async fn current_controls(&self) -> Result<Vec<ControlRecord>, StoreError> {
        let sql = format!(
            "SELECT control_id, l_write_id, l_status, l_reason, l_passing, l_failing,
                    l_evidence_count, l_has_last_evidence, l_last_evidence, l_since
             FROM (SELECT control_id, {}
                   FROM control_current WHERE {COMMITTED} GROUP BY control_id)",
            latest_columns(&[
                "write_id",
                "status",
                "reason",
                "passing",
                "failing",
                "evidence_count",
                "has_last_evidence",
                "last_evidence",
                "since",
            ])
        );
        let mut out = self
            .client
            .query(&sql)
            .fetch_all::<ControlRow>()
            .await
            .map_err(ch("read controls"))?
            .into_iter()
            .map(ControlRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        catalogue_order(&mut out);
        Ok(out)
    }

    /// The latest committed rows of each key (`key_columns`) of a history table with
    /// `at <= until`, by write order (as SQLite's highest row id).
    fn latest_history_sql(table: &str, columns: &str, key: &str, filter: &str) -> String {
        format!(
            "SELECT {columns} FROM {table}
             WHERE at <= ? AND {COMMITTED}{filter}
             ORDER BY {key}, write_id DESC, n DESC
             LIMIT 1 BY {key}"
        )
    }

    async fn latest_kpis(
        &self,
        until: i64,
    ) -> Result<(Vec<KpiValue>, Vec<KpiEvaluation>), StoreError> {
        let values = self
            .client
            .query(&Self::latest_history_sql(
                "kpi_values",
                "kpi_id, at, write_id, n, has_value, value, has_numerator, numerator, \
                 has_denominator, denominator, hosts_in_scope",
                "kpi_id",
                "",
            ))
            .bind(until)
            .fetch_all::<KpiValueRow>()
            .await
            .map_err(ch("read kpi values"))?
            .into_iter()
            .map(KpiValueRow::into_value)
            .collect();
        let evaluations = self
            .client
            .query(&Self::latest_history_sql(
                "kpi_evaluations",
                "kpi_id, at, write_id, n, status, has_value, value, target, \
                 consecutive_misses, consecutive_met",
                "kpi_id",
                "",
            ))
            .bind(until)
            .fetch_all::<KpiEvaluationRow>()
            .await
            .map_err(ch("read kpi evaluations"))?
            .into_iter()
            .map(KpiEvaluationRow::into_evaluation)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((values, evaluations))
    }

    async fn objectives_until(&self, until: i64) -> Result<Vec<ObjectiveRecord>, StoreError> {
        self.client
            .query(&Self::latest_history_sql(
                "objective_history",
                "objective_id, at, write_id, n, status, reason",
                "objective_id",
                "",
            ))
            .bind(until)
            .fetch_all::<ObjectiveRow>()
            .await
            .map_err(ch("read objectives"))?
            .into_iter()
            .map(ObjectiveRow::into_record)
            .collect()
    }

    /// The latest committed record of every nonconformity matching `condition` (on the
    /// latest values `l_state`, `l_opened_at`, `id`), ordered by id.
    async fn ncs_where(
        &self,
        condition: &str,
        bind: Option<i64>,
    ) -> Result<Vec<Nonconformity>, StoreError> {
        let sql = format!(
            "SELECT id, l_write_id, l_nc_key, l_state, l_opened_at, l_updated_at, l_record_json
             FROM (SELECT id, {}
                   FROM nonconformities WHERE {COMMITTED} GROUP BY id)
             WHERE {condition} ORDER BY id",
            latest_columns(&[
                "write_id",
                "nc_key",
                "state",
                "opened_at",
                "updated_at",
                "record_json"
            ])
        );
        let mut query = self.client.query(&sql);
        if let Some(v) = bind {
            query = query.bind(v);
        }
        query
            .fetch_all::<NcRow>()
            .await
            .map_err(ch("read nonconformities"))?
            .into_iter()
            .map(NcRow::into_nc)
            .collect()
    }

    async fn nc_heads(&self) -> Result<Vec<NcHead>, StoreError> {
        let sql = format!(
            "SELECT id, {} FROM nonconformities WHERE {COMMITTED} GROUP BY id ORDER BY id",
            latest_columns(&["nc_key", "state", "updated_at"])
        );
        self.client
            .query(&sql)
            .fetch_all::<NcHead>()
            .await
            .map_err(ch("read nonconformities"))
    }

    /// Committed events matching `condition` (binding `args`), in write order.
    async fn events_where(
        &self,
        condition: &str,
        args: &[i64],
        order: &str,
    ) -> Result<Vec<(u64, NcEvent)>, StoreError> {
        let sql = format!(
            "SELECT nc_id, at, write_id, n, actor, kind, has_from, from_state, to_state, note
             FROM nc_events WHERE {COMMITTED} AND {condition} ORDER BY {order}"
        );
        let mut query = self.client.query(&sql);
        for a in args {
            query = query.bind(*a);
        }
        query
            .fetch_all::<NcEventRow>()
            .await
            .map_err(ch("read nonconformity events"))?
            .into_iter()
            .map(NcEventRow::into_event)
            .collect()
    }

    async fn index(&self) -> Result<(Vec<Nonconformity>, HashMap<String, u64>), StoreError> {
        let active = self.ncs_where("l_state != 'closed'", None).await?;
        let mut last_closed = HashMap::new();
        for head in self.nc_heads().await? {
            if head.state == NcState::Closed.as_str() {
                // Heads are in id order: the last one per key wins.
                last_closed.insert(head.nc_key, head.id);
            }
        }
        Ok((active, last_closed))
    }

    async fn last_tick(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ticks = self
            .client
            .query(
                "SELECT at FROM isms_writes WHERE kind = 'evaluation'
                 ORDER BY write_id DESC LIMIT 1",
            )
            .fetch_all::<i64>()
            .await
            .map_err(ch("read the engine clock"))?;
        Ok(ticks.into_iter().next().map(at))
    }

    pub(super) async fn read_engine_state(&self) -> Result<EngineState, StoreError> {
        let verdicts = self.current_verdicts(None, None).await?;
        let controls = self
            .current_controls()
            .await?
            .into_iter()
            .map(|c| c.state)
            .collect();
        let (kpi_values, kpi_evaluations) = self.latest_kpis(i64::MAX).await?;
        let objectives = self
            .objectives_until(i64::MAX)
            .await?
            .into_iter()
            .map(|o| o.state)
            .collect();
        let (active_nonconformities, last_closed) = self.index().await?;
        Ok(EngineState {
            verdicts,
            controls,
            kpi_values,
            kpi_evaluations,
            objectives,
            active_nonconformities,
            last_closed,
            last_tick: self.last_tick().await?,
        })
    }

    pub(super) async fn read_nonconformity_index(
        &self,
    ) -> Result<(Vec<Nonconformity>, HashMap<String, u64>), StoreError> {
        self.index().await
    }

    pub(super) async fn write_evaluation(
        &self,
        batch: EvaluationBatch,
    ) -> Result<SavedEvaluation, StoreError> {
        let at_nanos = nanos(batch.at, "evaluation time")?;
        let _guard = self.write_lock.lock().await;
        let write_id = self.next_version();
        let mut set = WriteSet::default();

        for v in &batch.verdicts {
            set.verdicts.push(VerdictRow::from_state(v, write_id)?);
        }
        for (i, v) in batch.verdict_changes.iter().enumerate() {
            let (has_exception, exception) = opt_str(&v.exception);
            set.verdict_history.push(VerdictHistoryRow {
                machine_id: v.machine_id.to_string(),
                rule_id: v.rule.to_string(),
                at: at_nanos,
                write_id,
                n: n(i),
                present: 1,
                verdict: v.verdict.as_str().into(),
                reason: v.reason.to_string(),
                overdue: u8::from(v.overdue_since.is_some()),
                has_exception,
                exception,
            });
        }
        let offset = batch.verdict_changes.len();
        for (i, (machine_id, rule)) in batch.verdicts_dropped.iter().enumerate() {
            set.verdicts
                .push(VerdictRow::dropped(machine_id, rule, write_id));
            set.verdict_history.push(VerdictHistoryRow {
                machine_id: machine_id.clone(),
                rule_id: rule.clone(),
                at: at_nanos,
                write_id,
                n: n(offset + i),
                present: 0,
                verdict: String::new(),
                reason: "no longer judged".into(),
                overdue: 0,
                has_exception: 0,
                exception: String::new(),
            });
        }

        // A control keeps its `since` while its status and counts stay the same.
        let current: HashMap<String, ControlRecord> = if batch.controls.is_empty() {
            HashMap::new()
        } else {
            self.current_controls()
                .await?
                .into_iter()
                .map(|c| (c.state.control.clone(), c))
                .collect()
        };
        for c in &batch.controls {
            let since = match current.get(&c.control) {
                Some(old)
                    if old.state.status == c.status
                        && old.state.passing == c.passing
                        && old.state.failing == c.failing =>
                {
                    nanos(old.since, "since")?
                }
                _ => at_nanos,
            };
            let (has_last_evidence, last_evidence) = opt_time(c.last_evidence, "last_evidence")?;
            set.controls.push(ControlRow {
                control_id: c.control.clone(),
                write_id,
                status: c.status.as_str().into(),
                reason: c.reason.clone(),
                passing: c.passing,
                failing: c.failing,
                evidence_count: c.evidence_count,
                has_last_evidence,
                last_evidence,
                since,
            });
        }
        for (i, c) in batch.control_changes.iter().enumerate() {
            let (has_last_evidence, last_evidence) = opt_time(c.last_evidence, "last_evidence")?;
            set.control_history.push(ControlHistoryRow {
                control_id: c.control.clone(),
                at: at_nanos,
                write_id,
                n: n(i),
                status: c.status.as_str().into(),
                reason: c.reason.clone(),
                passing: c.passing,
                failing: c.failing,
                evidence_count: c.evidence_count,
                has_last_evidence,
                last_evidence,
            });
        }
        for (i, v) in batch.kpi_values.iter().enumerate() {
            set.kpi_values.push(KpiValueRow {
                kpi_id: v.kpi.clone(),
                at: nanos(v.at, "kpi value time")?,
                write_id,
                n: n(i),
                has_value: u8::from(v.value.is_some()),
                value: v.value.unwrap_or(0.0),
                has_numerator: u8::from(v.numerator.is_some()),
                numerator: v.numerator.unwrap_or(0),
                has_denominator: u8::from(v.denominator.is_some()),
                denominator: v.denominator.unwrap_or(0),
                hosts_in_scope: v.hosts_in_scope,
            });
        }
        for (i, e) in batch.kpi_evaluations.iter().enumerate() {
            set.kpi_evaluations.push(KpiEvaluationRow {
                kpi_id: e.kpi.clone(),
                at: nanos(e.at, "kpi evaluation time")?,
                write_id,
                n: n(i),
                status: e.status.as_str().into(),
                has_value: u8::from(e.value.is_some()),
                value: e.value.unwrap_or(0.0),
                target: e.target,
                consecutive_misses: e.consecutive_misses,
                consecutive_met: e.consecutive_met,
            });
        }
        for (i, o) in batch.objective_changes.iter().enumerate() {
            set.objectives.push(ObjectiveRow {
                objective_id: o.objective.clone(),
                at: at_nanos,
                write_id,
                n: n(i),
                status: o.status.as_str().into(),
                reason: o.reason.clone(),
            });
        }

        let mut saved = SavedEvaluation::default();
        if !batch.nc_changes.is_empty() {
            let heads = self.nc_heads().await?;
            let mut next_id = self.highest_nc_id().await?.saturating_add(1);
            let mut updated: HashMap<u64, i64> =
                heads.iter().map(|h| (h.id, h.updated_at)).collect();
            let mut active: HashMap<String, u64> = heads
                .iter()
                .filter(|h| h.state != NcState::Closed.as_str())
                .map(|h| (h.nc_key.clone(), h.id))
                .collect();
            let mut event_n = 0usize;
            for change in &batch.nc_changes {
                let mut nc = change.nc.clone();
                if nc.id == 0 {
                    nc.id = next_id;
                    next_id = next_id.saturating_add(1);
                    saved.opened.push(nc.id);
                } else {
                    let applies = match (change.base, updated.get(&nc.id)) {
                        (Some(base), Some(stored)) => nanos(base, "base")? == *stored,
                        _ => false,
                    };
                    if !applies {
                        saved.conflicts += 1;
                        continue;
                    }
                }
                // One active nonconformity per key, as SQLite's unique index: the whole
                // evaluation is refused, nothing written.
                if nc.state != NcState::Closed {
                    if let Some(other) = active.get(&nc.key)
                        && *other != nc.id
                    {
                        return Err(StoreError::BackendMessage {
                            op: "save an evaluation",
                            message: format!(
                                "nonconformity key {:?} is already active as NC-{other}",
                                nc.key
                            ),
                        });
                    }
                    active.insert(nc.key.clone(), nc.id);
                } else if active.get(&nc.key) == Some(&nc.id) {
                    active.remove(&nc.key);
                }
                updated.insert(nc.id, nanos(nc.updated_at, "updated_at")?);
                set.ncs.push(NcRow::from_nc(&nc, write_id)?);
                for e in &change.events {
                    set.events
                        .push(NcEventRow::from_event(nc.id, e, write_id, n(event_n))?);
                    event_n += 1;
                }
            }
        }
        self.commit(write_id, at_nanos, "evaluation", set).await?;
        Ok(saved)
    }

    /// The highest nonconformity id ever written, committed or not (ids are never reused).
    async fn highest_nc_id(&self) -> Result<u64, StoreError> {
        self.client
            .query("SELECT max(id) FROM nonconformities")
            .fetch_one::<u64>()
            .await
            .map_err(ch("allocate a nonconformity id"))
    }

    pub(super) async fn read_verdicts_at(
        &self,
        until: Option<DateTime<Utc>>,
        machine_id: Option<&str>,
        rule: Option<&str>,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        let Some(until) = until else {
            return Ok(self
                .current_verdicts(machine_id, rule)
                .await?
                .into_iter()
                .map(|v| VerdictRecord {
                    overdue: v.overdue_since.is_some(),
                    machine_id: v.machine_id.to_string(),
                    rule: v.rule.to_string(),
                    verdict: v.verdict,
                    reason: v.reason.to_string(),
                    exception: v.exception,
                    since: v.since,
                })
                .collect());
        };
        let mut filter = String::new();
        if machine_id.is_some() {
            filter.push_str(" AND machine_id = ?");
        }
        if rule.is_some() {
            filter.push_str(" AND rule_id = ?");
        }
        let sql = Self::latest_history_sql(
            "verdict_history",
            "machine_id, rule_id, at, write_id, n, present, verdict, reason, overdue, \
             has_exception, exception",
            "machine_id, rule_id",
            &filter,
        );
        let mut query = self.client.query(&sql).bind(nanos(until, "at")?);
        if let Some(m) = machine_id {
            query = query.bind(m);
        }
        if let Some(r) = rule {
            query = query.bind(r);
        }
        let rows = query
            .fetch_all::<VerdictHistoryRow>()
            .await
            .map_err(ch("read verdict history"))?;
        let mut out = Vec::new();
        for row in rows.into_iter().filter(|r| r.present != 0) {
            out.push(VerdictRecord {
                verdict: parse_verdict(&row.verdict)?,
                machine_id: row.machine_id,
                rule: row.rule_id,
                reason: row.reason,
                overdue: row.overdue != 0,
                exception: back_str(row.has_exception, row.exception),
                since: at(row.at),
            });
        }
        out.sort_by(|a, b| (&a.machine_id, &a.rule).cmp(&(&b.machine_id, &b.rule)));
        Ok(out)
    }

    pub(super) async fn read_controls_at(
        &self,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<ControlRecord>, StoreError> {
        let Some(until) = until else {
            return self.current_controls().await;
        };
        let mut out = self
            .client
            .query(&Self::latest_history_sql(
                "control_history",
                "control_id, at, write_id, n, status, reason, passing, failing, \
                 evidence_count, has_last_evidence, last_evidence",
                "control_id",
                "",
            ))
            .bind(nanos(until, "at")?)
            .fetch_all::<ControlHistoryRow>()
            .await
            .map_err(ch("read control history"))?
            .into_iter()
            .map(ControlHistoryRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        catalogue_order(&mut out);
        Ok(out)
    }

    pub(super) async fn read_kpis_at(
        &self,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<KpiSnapshot>, StoreError> {
        let until = match until {
            Some(t) => nanos(t, "at")?,
            None => i64::MAX,
        };
        let (values, evaluations) = self.latest_kpis(until).await?;
        let mut by_kpi: BTreeMap<String, KpiSnapshot> = BTreeMap::new();
        let snapshot = |kpi: &str| KpiSnapshot {
            kpi: kpi.to_string(),
            value: None,
            evaluation: None,
        };
        for v in values {
            let kpi = v.kpi.clone();
            by_kpi
                .entry(kpi.clone())
                .or_insert_with(|| snapshot(&kpi))
                .value = Some(v);
        }
        for e in evaluations {
            let kpi = e.kpi.clone();
            by_kpi
                .entry(kpi.clone())
                .or_insert_with(|| snapshot(&kpi))
                .evaluation = Some(e);
        }
        Ok(by_kpi.into_values().collect())
    }

    pub(super) async fn read_kpi_history(
        &self,
        kpi: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<KpiValue>, Vec<KpiEvaluation>), StoreError> {
        let from = nanos(from, "from")?;
        let to = nanos(to, "to")?;
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let values = self
            .client
            .query(&format!(
                "SELECT kpi_id, at, write_id, n, has_value, value, has_numerator, numerator,
                        has_denominator, denominator, hosts_in_scope
                 FROM kpi_values WHERE kpi_id = ? AND at >= ? AND at <= ? AND {COMMITTED}
                 ORDER BY at, write_id, n LIMIT ?"
            ))
            .bind(kpi)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all::<KpiValueRow>()
            .await
            .map_err(ch("read kpi history"))?
            .into_iter()
            .map(KpiValueRow::into_value)
            .collect();
        let evaluations = self
            .client
            .query(&format!(
                "SELECT kpi_id, at, write_id, n, status, has_value, value, target,
                        consecutive_misses, consecutive_met
                 FROM kpi_evaluations WHERE kpi_id = ? AND at >= ? AND at <= ? AND {COMMITTED}
                 ORDER BY at, write_id, n LIMIT ?"
            ))
            .bind(kpi)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all::<KpiEvaluationRow>()
            .await
            .map_err(ch("read kpi evaluation history"))?
            .into_iter()
            .map(KpiEvaluationRow::into_evaluation)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((values, evaluations))
    }

    pub(super) async fn read_objectives_at(
        &self,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<ObjectiveRecord>, StoreError> {
        let until = match until {
            Some(t) => nanos(t, "at")?,
            None => i64::MAX,
        };
        let mut out = self.objectives_until(until).await?;
        out.sort_by(|a, b| a.state.objective.cmp(&b.state.objective));
        Ok(out)
    }

    pub(super) async fn read_nonconformities_at(
        &self,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<Nonconformity>, StoreError> {
        let Some(until) = until else {
            return self.ncs_where("1 = 1", None).await;
        };
        let t = nanos(until, "at")?;
        let ncs = self.ncs_where("l_opened_at <= ?", Some(t)).await?;
        let mut events: HashMap<u64, Vec<NcEvent>> = HashMap::new();
        for (id, e) in self
            .events_where("at <= ?", &[t], "nc_id, write_id, n")
            .await?
        {
            events.entry(id).or_default().push(e);
        }
        Ok(ncs
            .into_iter()
            .map(|nc| {
                let of = events.get(&nc.id).map(Vec::as_slice).unwrap_or_default();
                nc_as_of(nc, of, until)
            })
            .collect())
    }

    pub(super) async fn read_nonconformity(&self, id: u64) -> Result<Option<NcDetail>, StoreError> {
        let id_bind = i64::try_from(id).unwrap_or(i64::MAX);
        let Some(nc) = self
            .ncs_where("id = toUInt64(?)", Some(id_bind))
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let events = self
            .events_where("nc_id = toUInt64(?)", &[id_bind], "write_id, n")
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        Ok(Some(NcDetail { nc, events }))
    }

    pub(super) async fn read_nc_events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(u64, NcEvent)>, StoreError> {
        self.events_where(
            "at >= ? AND at <= ?",
            &[nanos(from, "from")?, nanos(to, "to")?],
            "at, write_id, n",
        )
        .await
    }

    pub(super) async fn apply_nc_action(
        &self,
        id: u64,
        action: NcAction,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<NcActionOutcome, StoreError> {
        let at_nanos = nanos(now, "action time")?;
        // Under the lock no evaluation or other action can change the record between the
        // read and the write: the optimistic check of SQLite's `UPDATE … WHERE updated_at`
        // is the lock itself here.
        let _guard = self.write_lock.lock().await;
        let Some(detail) = self.read_nonconformity(id).await? else {
            return Ok(NcActionOutcome::NotFound);
        };
        let (next, event) = match apply_action(&detail.nc, &action, actor, now) {
            Ok(v) => v,
            Err(e) => return Ok(NcActionOutcome::Refused(e.0)),
        };
        let write_id = self.next_version();
        let set = WriteSet {
            ncs: vec![NcRow::from_nc(&next, write_id)?],
            events: vec![NcEventRow::from_event(id, &event, write_id, 0)?],
            ..WriteSet::default()
        };
        self.commit(write_id, at_nanos, "action", set).await?;
        let mut events = detail.events;
        events.push(event);
        Ok(NcActionOutcome::Applied(Box::new(NcDetail {
            nc: next,
            events,
        })))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::Store;
    use crate::store::clickhouse::ClickHouseConfig;
    use crate::store::clickhouse::test_server::TestServer;
    use crate::store::contract::new_nc;
    use crate::testutil::t0;

    fn verdict(v: Verdict) -> VerdictState {
        VerdictState {
            machine_id: "u-host".into(),
            rule: "u-rule".into(),
            verdict: v,
            reason: v.as_str().into(),
            observed_at: Some(t0()),
            failing_since: None,
            offenders_first_seen: BTreeMap::new(),
            overdue_since: None,
            exception: None,
            since: t0(),
        }
    }

    async fn rows_of(store: &ClickHouseStore, table: &str, write_id: i64) -> u64 {
        store
            .client
            .query(&format!("SELECT count() FROM {table} WHERE write_id = ?"))
            .bind(write_id)
            .fetch_one::<u64>()
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uncommitted_writes_are_invisible_and_failed_ones_are_forgotten() {
        let Some(server) = TestServer::start_or_skip("clickhouse uncommitted ISMS write") else {
            return;
        };
        let store = ClickHouseStore::open(&ClickHouseConfig {
            url: server.url(),
            database: "vigil_uncommitted".into(),
            ..ClickHouseConfig::default()
        })
        .await
        .unwrap();
        let passing = verdict(Verdict::Pass);
        store
            .save_evaluation(EvaluationBatch {
                at: t0(),
                verdicts: vec![passing.clone()],
                verdict_changes: vec![passing.clone()],
                ..EvaluationBatch::default()
            })
            .await
            .unwrap();

        // A write interrupted before its commit marker: a newer verdict and a nonconformity.
        let write_id = store.next_version();
        let mut nc = new_nc("rule/u-rule/u-host", t0()).nc;
        nc.id = 1;
        store
            .insert_rows(
                "verdict_current",
                &[VerdictRow::from_state(&verdict(Verdict::Fail), write_id).unwrap()],
            )
            .await
            .unwrap();
        store
            .insert_rows("nonconformities", &[NcRow::from_nc(&nc, write_id).unwrap()])
            .await
            .unwrap();

        // Readers see the committed state only.
        let now = store.verdicts_at(None, Some("u-host"), None).await.unwrap();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].verdict, Verdict::Pass);
        assert!(store.nonconformities_at(None).await.unwrap().is_empty());
        assert_eq!(store.engine_state().await.unwrap().verdicts, [passing]);
        // Ids are never reused, even those of uncommitted rows.
        let saved = store
            .save_evaluation(EvaluationBatch {
                at: t0(),
                nc_changes: vec![new_nc("rule/u-rule/u-host", t0())],
                ..EvaluationBatch::default()
            })
            .await
            .unwrap();
        assert_eq!(saved.opened, [2]);

        // A failed write is deleted, so that no merge can prefer its rows.
        assert_eq!(rows_of(&store, "verdict_current", write_id).await, 1);
        store.forget(write_id).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while rows_of(&store, "verdict_current", write_id).await
            + rows_of(&store, "nonconformities", write_id).await
            > 0
        {
            assert!(Instant::now() < deadline, "rows of the failed write remain");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let now = store.verdicts_at(None, Some("u-host"), None).await.unwrap();
        assert_eq!(now[0].verdict, Verdict::Pass);
    }
}
