//! The ISMS engine's state in SQLite: evaluation inputs, the saved evaluation, point-in-time
//! reads of verdicts, controls, KPIs, objectives and nonconformities, and people's actions on
//! nonconformities. Times are nanoseconds; "at T" reads pick, per key, the newest history row
//! whose time is at or before T.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Deserialize;
use vigil_shared::{OsRelease, Status};

use super::rows::{from_json, from_nanos, to_json, to_nanos};
use crate::evaluate::nonconformities::{NcAction, apply_action};
use crate::evaluate::{
    ControlState, HostFacts, KpiEvaluation, KpiStatus, KpiValue, NcEvent, NcEventKind, NcSource,
    NcState, Nonconformity, ObjectiveState, ObjectiveStatus, ResultFacts, Verdict, VerdictState,
    host_labels,
};
use crate::isms::{Grade, ImplementationStatus};
use crate::store::point_in_time::{catalogue_order, nc_as_of};
use crate::store::{
    ControlRecord, EngineState, EvaluationBatch, KpiSnapshot, NcActionOutcome, NcDetail,
    ObjectiveRecord, SavedEvaluation, StoreError, VerdictRecord,
};

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn opt_nanos(t: Option<DateTime<Utc>>, what: &str) -> Result<Option<i64>, StoreError> {
    t.map(|t| to_nanos(t, what)).transpose()
}

fn u64_col(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_col(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

// ---- evaluation inputs ------------------------------------------------------------------

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize, Default)]
struct EvidenceIds {
    #[serde(default)]
    offenders: Vec<IdOnly>,
    #[serde(default)]
    checked: Vec<serde::de::IgnoredAny>,
}

pub(super) fn evaluation_hosts(
    conn: &Connection,
    since: Option<i64>,
) -> Result<Vec<HostFacts>, StoreError> {
    let mut hosts_stmt = conn
        .prepare_cached(
            "SELECT h.machine_id, h.hostname, h.os_json, h.labels_json, h.last_seen,
                    p.name, p.labels_json
               FROM hosts h JOIN principals p ON p.id = h.agent_id
              WHERE h.last_seen >= ?1
              ORDER BY h.machine_id",
        )
        .map_err(sql("prepare the evaluation host query"))?;
    let mut hosts: Vec<HostFacts> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut rows = hosts_stmt
        .query(params![since.unwrap_or(i64::MIN)])
        .map_err(sql("read hosts for evaluation"))?;
    while let Some(row) = rows.next().map_err(sql("read hosts for evaluation"))? {
        let machine_id: String = row.get(0).map_err(sql("read a host"))?;
        let hostname: String = row.get(1).map_err(sql("read a host"))?;
        let os: OsRelease = from_json(
            &row.get::<_, String>(2).map_err(sql("read a host"))?,
            "host os",
        )?;
        let agent_labels: BTreeMap<String, String> = from_json(
            &row.get::<_, String>(3).map_err(sql("read a host"))?,
            "host labels",
        )?;
        let last_seen = from_nanos(row.get(4).map_err(sql("read a host"))?);
        let agent: String = row.get(5).map_err(sql("read a host"))?;
        let assigned: BTreeMap<String, String> = from_json(
            &row.get::<_, String>(6).map_err(sql("read a host"))?,
            "agent labels",
        )?;
        let labels = host_labels(
            &agent_labels,
            &assigned,
            &hostname,
            &machine_id,
            &agent,
            &os.id,
            &os.version_id,
        );
        index.insert(machine_id.clone(), hosts.len());
        hosts.push(HostFacts {
            machine_id,
            hostname,
            labels,
            last_seen,
            results: BTreeMap::new(),
        });
    }
    drop(rows);
    if hosts.is_empty() {
        return Ok(hosts);
    }
    let mut results_stmt = conn
        .prepare_cached(
            "SELECT l.machine_id, r.check_id, r.status, r.observed_at, r.controls_json,
                    r.values_json, r.evidence_json, r.error
               FROM latest_results l
               JOIN hosts h ON h.machine_id = l.machine_id
               JOIN results r ON r.id = l.result_id
              WHERE h.last_seen >= ?1",
        )
        .map_err(sql("prepare the evaluation result query"))?;
    let mut rows = results_stmt
        .query(params![since.unwrap_or(i64::MIN)])
        .map_err(sql("read results for evaluation"))?;
    while let Some(row) = rows.next().map_err(sql("read results for evaluation"))? {
        let machine_id: String = row.get(0).map_err(sql("read a result"))?;
        let Some(&i) = index.get(&machine_id) else {
            continue;
        };
        let check: String = row.get(1).map_err(sql("read a result"))?;
        let status: Status = row
            .get::<_, String>(2)
            .map_err(sql("read a result"))?
            .parse()
            .map_err(corrupt)?;
        let evidence: EvidenceIds = from_json(
            &row.get::<_, String>(6).map_err(sql("read a result"))?,
            "result evidence",
        )?;
        hosts[i].results.insert(
            check,
            ResultFacts {
                status,
                observed_at: from_nanos(row.get(3).map_err(sql("read a result"))?),
                controls: from_json(
                    &row.get::<_, String>(4).map_err(sql("read a result"))?,
                    "result controls",
                )?,
                values: from_json(
                    &row.get::<_, String>(5).map_err(sql("read a result"))?,
                    "result values",
                )?,
                offenders: evidence.offenders.into_iter().map(|o| o.id).collect(),
                checked: evidence.checked.len(),
                error: row.get(7).map_err(sql("read a result"))?,
            },
        );
    }
    Ok(hosts)
}

// ---- engine state -----------------------------------------------------------------------

fn verdict_from_row(row: &Row<'_>) -> rusqlite::Result<(VerdictState, String)> {
    Ok((
        VerdictState {
            machine_id: row.get(0)?,
            rule: row.get(1)?,
            verdict: Verdict::Pass,
            reason: row.get(3)?,
            observed_at: row.get::<_, Option<i64>>(4)?.map(from_nanos),
            failing_since: row.get::<_, Option<i64>>(5)?.map(from_nanos),
            offenders_first_seen: BTreeMap::new(),
            overdue_since: row.get::<_, Option<i64>>(7)?.map(from_nanos),
            exception: row.get(8)?,
            since: from_nanos(row.get(9)?),
        },
        // Raw verdict and offenders, converted by the caller (errors there are store errors).
        format!(
            "{}\u{1f}{}",
            row.get::<_, String>(2)?,
            row.get::<_, String>(6)?
        ),
    ))
}

fn finish_verdict((mut state, raw): (VerdictState, String)) -> Result<VerdictState, StoreError> {
    let (verdict, offenders) = raw.split_once('\u{1f}').unwrap_or((raw.as_str(), "{}"));
    state.verdict =
        Verdict::parse(verdict).ok_or_else(|| corrupt(format!("verdict {verdict:?}")))?;
    let first_seen: BTreeMap<String, i64> = from_json(offenders, "offenders first seen")?;
    state.offenders_first_seen = first_seen
        .into_iter()
        .map(|(k, v)| (k, from_nanos(v)))
        .collect();
    Ok(state)
}

const NC_COLUMNS: &str =
    "id, key, source, title, grade, state, controls_json, machine_id, hostname, subject,
    opened_at, updated_at, owner, root_cause, corrective_action, due, resolved_at, verified_at,
    closed_at, close_reason, green_streak, last_green, recurrence_of";

struct NcRow {
    id: i64,
    key: String,
    source: String,
    title: String,
    grade: String,
    state: String,
    controls_json: String,
    machine_id: Option<String>,
    hostname: Option<String>,
    subject: String,
    opened_at: i64,
    updated_at: i64,
    owner: Option<String>,
    root_cause: Option<String>,
    corrective_action: Option<String>,
    due: Option<String>,
    resolved_at: Option<i64>,
    verified_at: Option<i64>,
    closed_at: Option<i64>,
    close_reason: Option<String>,
    green_streak: i64,
    last_green: Option<i64>,
    recurrence_of: Option<i64>,
}

impl NcRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<NcRow> {
        Ok(NcRow {
            id: row.get(0)?,
            key: row.get(1)?,
            source: row.get(2)?,
            title: row.get(3)?,
            grade: row.get(4)?,
            state: row.get(5)?,
            controls_json: row.get(6)?,
            machine_id: row.get(7)?,
            hostname: row.get(8)?,
            subject: row.get(9)?,
            opened_at: row.get(10)?,
            updated_at: row.get(11)?,
            owner: row.get(12)?,
            root_cause: row.get(13)?,
            corrective_action: row.get(14)?,
            due: row.get(15)?,
            resolved_at: row.get(16)?,
            verified_at: row.get(17)?,
            closed_at: row.get(18)?,
            close_reason: row.get(19)?,
            green_streak: row.get(20)?,
            last_green: row.get(21)?,
            recurrence_of: row.get(22)?,
        })
    }

    fn into_nc(self) -> Result<Nonconformity, StoreError> {
        Ok(Nonconformity {
            id: u64_col(self.id),
            source: NcSource::parse(&self.source)
                .ok_or_else(|| corrupt(format!("nc source {:?}", self.source)))?,
            grade: Grade::parse(&self.grade)
                .ok_or_else(|| corrupt(format!("nc grade {:?}", self.grade)))?,
            state: NcState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("nc state {:?}", self.state)))?,
            controls: from_json(&self.controls_json, "nc controls")?,
            due: self
                .due
                .as_deref()
                .map(|d| {
                    NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .map_err(|e| corrupt(format!("nc due {d:?}: {e}")))
                })
                .transpose()?,
            key: self.key,
            title: self.title,
            machine_id: self.machine_id,
            hostname: self.hostname,
            subject: self.subject,
            opened_at: from_nanos(self.opened_at),
            updated_at: from_nanos(self.updated_at),
            owner: self.owner,
            root_cause: self.root_cause,
            corrective_action: self.corrective_action,
            resolved_at: self.resolved_at.map(from_nanos),
            verified_at: self.verified_at.map(from_nanos),
            closed_at: self.closed_at.map(from_nanos),
            close_reason: self.close_reason,
            green_streak: u32::try_from(self.green_streak).unwrap_or(0),
            last_green: self.last_green.map(from_nanos),
            recurrence_of: self.recurrence_of.map(u64_col),
        })
    }
}

fn query_ncs(
    conn: &Connection,
    where_clause: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Nonconformity>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {NC_COLUMNS} FROM nonconformities {where_clause} ORDER BY id"
        ))
        .map_err(sql("prepare a nonconformity query"))?;
    let rows = stmt
        .query_map(args, NcRow::from_row)
        .map_err(sql("read nonconformities"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql("read a nonconformity"))?.into_nc()?);
    }
    Ok(out)
}

fn control_from_row(row: &Row<'_>) -> rusqlite::Result<(ControlState, String, i64)> {
    Ok((
        ControlState {
            control: row.get(0)?,
            status: ImplementationStatus::NoEvidence,
            reason: row.get(2)?,
            passing: u64_col(row.get(3)?),
            failing: u64_col(row.get(4)?),
            evidence_count: u64_col(row.get(5)?),
            last_evidence: row.get::<_, Option<i64>>(6)?.map(from_nanos),
        },
        row.get(1)?,
        row.get(7)?,
    ))
}

fn finish_control(
    (mut state, status, since): (ControlState, String, i64),
) -> Result<ControlRecord, StoreError> {
    state.status = ImplementationStatus::parse(&status)
        .ok_or_else(|| corrupt(format!("control status {status:?}")))?;
    Ok(ControlRecord {
        state,
        since: from_nanos(since),
    })
}

fn kpi_value_from_row(row: &Row<'_>) -> rusqlite::Result<KpiValue> {
    Ok(KpiValue {
        kpi: row.get(0)?,
        at: from_nanos(row.get(1)?),
        value: row.get(2)?,
        numerator: row.get::<_, Option<i64>>(3)?.map(u64_col),
        denominator: row.get::<_, Option<i64>>(4)?.map(u64_col),
        hosts_in_scope: u64_col(row.get(5)?),
    })
}

fn kpi_evaluation_from_row(row: &Row<'_>) -> rusqlite::Result<(KpiEvaluation, String)> {
    Ok((
        KpiEvaluation {
            kpi: row.get(0)?,
            at: from_nanos(row.get(1)?),
            status: KpiStatus::NoData,
            value: row.get(3)?,
            target: row.get(4)?,
            consecutive_misses: u32::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
            consecutive_met: u32::try_from(row.get::<_, i64>(6)?).unwrap_or(0),
        },
        row.get(2)?,
    ))
}

fn finish_kpi_evaluation(
    (mut e, status): (KpiEvaluation, String),
) -> Result<KpiEvaluation, StoreError> {
    e.status =
        KpiStatus::parse(&status).ok_or_else(|| corrupt(format!("kpi status {status:?}")))?;
    Ok(e)
}

fn objective_from_row(row: &Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn finish_objective(
    (objective, status, reason, at): (String, String, String, i64),
) -> Result<ObjectiveRecord, StoreError> {
    Ok(ObjectiveRecord {
        state: ObjectiveState {
            objective,
            status: ObjectiveStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("objective status {status:?}")))?,
            reason,
        },
        since: from_nanos(at),
    })
}

/// KPI values and evaluations, latest per KPI at or before `at`.
fn latest_kpis(
    conn: &Connection,
    at: i64,
) -> Result<(Vec<KpiValue>, Vec<KpiEvaluation>), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT v.kpi_id, v.at, v.value, v.numerator, v.denominator, v.hosts_in_scope
               FROM kpi_values v
               JOIN (SELECT kpi_id, MAX(id) AS id FROM kpi_values WHERE at <= ?1 GROUP BY kpi_id) m
                 ON m.id = v.id
              ORDER BY v.kpi_id",
        )
        .map_err(sql("prepare the kpi value query"))?;
    let values = stmt
        .query_map(params![at], kpi_value_from_row)
        .map_err(sql("read kpi values"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql("read a kpi value"))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.kpi_id, e.at, e.status, e.value, e.target, e.consecutive_misses, e.consecutive_met
               FROM kpi_evaluations e
               JOIN (SELECT kpi_id, MAX(id) AS id FROM kpi_evaluations WHERE at <= ?1 GROUP BY kpi_id) m
                 ON m.id = e.id
              ORDER BY e.kpi_id",
        )
        .map_err(sql("prepare the kpi evaluation query"))?;
    let mut evaluations = Vec::new();
    for row in stmt
        .query_map(params![at], kpi_evaluation_from_row)
        .map_err(sql("read kpi evaluations"))?
    {
        evaluations.push(finish_kpi_evaluation(
            row.map_err(sql("read a kpi evaluation"))?,
        )?);
    }
    Ok((values, evaluations))
}

pub(super) fn engine_state(conn: &Connection) -> Result<EngineState, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT machine_id, rule_id, verdict, reason, observed_at, failing_since,
                    offenders_json, overdue_since, exception, since
               FROM verdict_current",
        )
        .map_err(sql("prepare the verdict query"))?;
    let mut verdicts = Vec::new();
    for row in stmt
        .query_map([], verdict_from_row)
        .map_err(sql("read verdicts"))?
    {
        verdicts.push(finish_verdict(row.map_err(sql("read a verdict"))?)?);
    }
    let controls = controls_at(conn, None)?
        .into_iter()
        .map(|c| c.state)
        .collect();
    let (kpi_values, kpi_evaluations) = latest_kpis(conn, i64::MAX)?;
    let objectives = objectives_at(conn, None)?
        .into_iter()
        .map(|o| o.state)
        .collect();
    let active_nonconformities = query_ncs(conn, "WHERE state <> 'closed'", &[])?;
    let mut last_closed = HashMap::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, MAX(id) FROM nonconformities WHERE state = 'closed' GROUP BY key",
        )
        .map_err(sql("prepare the closed nonconformity query"))?;
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sql("read closed nonconformities"))?
    {
        let (key, id) = row.map_err(sql("read a closed nonconformity"))?;
        last_closed.insert(key, u64_col(id));
    }
    let last_tick = conn
        .query_row(
            "SELECT value FROM engine_state WHERE key = 'last_tick'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(sql("read the engine clock"))?
        .and_then(|v| v.parse::<i64>().ok())
        .map(from_nanos);
    Ok(EngineState {
        verdicts,
        controls,
        kpi_values,
        kpi_evaluations,
        objectives,
        active_nonconformities,
        last_closed,
        last_tick,
    })
}

pub(super) fn nonconformity_index(
    conn: &Connection,
) -> Result<(Vec<Nonconformity>, HashMap<String, u64>), StoreError> {
    let active = query_ncs(conn, "WHERE state <> 'closed'", &[])?;
    let mut last_closed = HashMap::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, MAX(id) FROM nonconformities WHERE state = 'closed' GROUP BY key",
        )
        .map_err(sql("prepare the closed nonconformity query"))?;
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sql("read closed nonconformities"))?
    {
        let (key, id) = row.map_err(sql("read a closed nonconformity"))?;
        last_closed.insert(key, u64_col(id));
    }
    Ok((active, last_closed))
}

// ---- saving -------------------------------------------------------------------------------

fn insert_event(conn: &Connection, nc_id: i64, e: &NcEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO nc_events (nc_id, at, actor, kind, from_state, to_state, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(sql("prepare the event insert"))?
    .execute(params![
        nc_id,
        to_nanos(e.at, "event time")?,
        e.actor,
        e.kind.as_str(),
        e.from.map(NcState::as_str),
        e.to.as_str(),
        e.note,
    ])
    .map_err(sql("insert a nonconformity event"))?;
    Ok(())
}

fn nc_params(nc: &Nonconformity) -> Result<Vec<Box<dyn rusqlite::ToSql>>, StoreError> {
    Ok(vec![
        Box::new(nc.key.clone()),
        Box::new(nc.source.as_str()),
        Box::new(nc.title.clone()),
        Box::new(nc.grade.as_str()),
        Box::new(nc.state.as_str()),
        Box::new(to_json(&nc.controls, "nc controls")?),
        Box::new(nc.machine_id.clone()),
        Box::new(nc.hostname.clone()),
        Box::new(nc.subject.clone()),
        Box::new(to_nanos(nc.opened_at, "opened_at")?),
        Box::new(to_nanos(nc.updated_at, "updated_at")?),
        Box::new(nc.owner.clone()),
        Box::new(nc.root_cause.clone()),
        Box::new(nc.corrective_action.clone()),
        Box::new(nc.due.map(|d| d.format("%Y-%m-%d").to_string())),
        Box::new(opt_nanos(nc.resolved_at, "resolved_at")?),
        Box::new(opt_nanos(nc.verified_at, "verified_at")?),
        Box::new(opt_nanos(nc.closed_at, "closed_at")?),
        Box::new(nc.close_reason.clone()),
        Box::new(i64::from(nc.green_streak)),
        Box::new(opt_nanos(nc.last_green, "last_green")?),
        Box::new(nc.recurrence_of.map(i64_col)),
    ])
}

fn insert_nc(conn: &Connection, nc: &Nonconformity) -> Result<i64, StoreError> {
    let params = nc_params(nc)?;
    conn.prepare_cached(
        "INSERT INTO nonconformities (key, source, title, grade, state, controls_json, machine_id,
             hostname, subject, opened_at, updated_at, owner, root_cause, corrective_action, due,
             resolved_at, verified_at, closed_at, close_reason, green_streak, last_green, recurrence_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                 ?20, ?21, ?22)",
    )
    .map_err(sql("prepare the nonconformity insert"))?
    .execute(rusqlite::params_from_iter(params.iter()))
    .map_err(sql("insert a nonconformity"))?;
    Ok(conn.last_insert_rowid())
}

/// Updates a nonconformity if its `updated_at` is still `base`; returns whether it did.
fn update_nc(
    conn: &Connection,
    nc: &Nonconformity,
    base: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut params = nc_params(nc)?;
    params.push(Box::new(i64_col(nc.id)));
    params.push(Box::new(to_nanos(base, "base")?));
    let changed = conn
        .prepare_cached(
            "UPDATE nonconformities SET key = ?1, source = ?2, title = ?3, grade = ?4, state = ?5,
                 controls_json = ?6, machine_id = ?7, hostname = ?8, subject = ?9, opened_at = ?10,
                 updated_at = ?11, owner = ?12, root_cause = ?13, corrective_action = ?14, due = ?15,
                 resolved_at = ?16, verified_at = ?17, closed_at = ?18, close_reason = ?19,
                 green_streak = ?20, last_green = ?21, recurrence_of = ?22
             WHERE id = ?23 AND updated_at = ?24",
        )
        .map_err(sql("prepare the nonconformity update"))?
        .execute(rusqlite::params_from_iter(params.iter()))
        .map_err(sql("update a nonconformity"))?;
    Ok(changed == 1)
}

pub(super) fn save_evaluation(
    conn: &Connection,
    batch: &EvaluationBatch,
) -> Result<SavedEvaluation, StoreError> {
    let at = to_nanos(batch.at, "evaluation time")?;
    {
        let mut upsert = conn
            .prepare_cached(
                "INSERT INTO verdict_current (machine_id, rule_id, verdict, reason, observed_at,
                     failing_since, offenders_json, overdue_since, exception, since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (machine_id, rule_id) DO UPDATE SET verdict = excluded.verdict,
                     reason = excluded.reason, observed_at = excluded.observed_at,
                     failing_since = excluded.failing_since, offenders_json = excluded.offenders_json,
                     overdue_since = excluded.overdue_since, exception = excluded.exception,
                     since = excluded.since",
            )
            .map_err(sql("prepare the verdict upsert"))?;
        for v in &batch.verdicts {
            let offenders: BTreeMap<&str, i64> = v
                .offenders_first_seen
                .iter()
                .map(|(k, t)| Ok((k.as_str(), to_nanos(*t, "offender first seen")?)))
                .collect::<Result<_, StoreError>>()?;
            upsert
                .execute(params![
                    v.machine_id,
                    v.rule,
                    v.verdict.as_str(),
                    v.reason,
                    opt_nanos(v.observed_at, "observed_at")?,
                    opt_nanos(v.failing_since, "failing_since")?,
                    to_json(&offenders, "offenders")?,
                    opt_nanos(v.overdue_since, "overdue_since")?,
                    v.exception,
                    to_nanos(v.since, "since")?,
                ])
                .map_err(sql("save a verdict"))?;
        }
        let mut history = conn
            .prepare_cached(
                "INSERT INTO verdict_history (machine_id, rule_id, at, verdict, reason, overdue, exception)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql("prepare the verdict history insert"))?;
        for v in &batch.verdict_changes {
            history
                .execute(params![
                    v.machine_id,
                    v.rule,
                    at,
                    v.verdict.as_str(),
                    v.reason,
                    v.overdue_since.is_some(),
                    v.exception
                ])
                .map_err(sql("record a verdict change"))?;
        }
        let mut delete = conn
            .prepare_cached("DELETE FROM verdict_current WHERE machine_id = ?1 AND rule_id = ?2")
            .map_err(sql("prepare the verdict delete"))?;
        for (machine_id, rule) in &batch.verdicts_dropped {
            delete
                .execute(params![machine_id, rule])
                .map_err(sql("drop a verdict"))?;
            history
                .execute(params![
                    machine_id,
                    rule,
                    at,
                    Option::<String>::None,
                    "no longer judged",
                    false,
                    Option::<String>::None
                ])
                .map_err(sql("record a dropped verdict"))?;
        }
    }
    {
        let mut current = conn
            .prepare_cached(
                "INSERT INTO control_current (control_id, status, reason, passing, failing,
                     evidence_count, last_evidence, since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (control_id) DO UPDATE SET status = excluded.status,
                     reason = excluded.reason, passing = excluded.passing, failing = excluded.failing,
                     evidence_count = excluded.evidence_count, last_evidence = excluded.last_evidence,
                     since = CASE WHEN control_current.status = excluded.status
                                   AND control_current.passing = excluded.passing
                                   AND control_current.failing = excluded.failing
                                  THEN control_current.since ELSE excluded.since END",
            )
            .map_err(sql("prepare the control upsert"))?;
        for c in &batch.controls {
            current
                .execute(params![
                    c.control,
                    c.status.as_str(),
                    c.reason,
                    i64_col(c.passing),
                    i64_col(c.failing),
                    i64_col(c.evidence_count),
                    opt_nanos(c.last_evidence, "last_evidence")?,
                    at
                ])
                .map_err(sql("save a control status"))?;
        }
        let mut history = conn
            .prepare_cached(
                "INSERT INTO control_history (control_id, at, status, reason, passing, failing,
                     evidence_count, last_evidence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(sql("prepare the control history insert"))?;
        for c in &batch.control_changes {
            history
                .execute(params![
                    c.control,
                    at,
                    c.status.as_str(),
                    c.reason,
                    i64_col(c.passing),
                    i64_col(c.failing),
                    i64_col(c.evidence_count),
                    opt_nanos(c.last_evidence, "last_evidence")?
                ])
                .map_err(sql("record a control change"))?;
        }
    }
    {
        let mut values = conn
            .prepare_cached(
                "INSERT INTO kpi_values (kpi_id, at, value, numerator, denominator, hosts_in_scope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql("prepare the kpi value insert"))?;
        for v in &batch.kpi_values {
            values
                .execute(params![
                    v.kpi,
                    to_nanos(v.at, "kpi value time")?,
                    v.value,
                    v.numerator.map(i64_col),
                    v.denominator.map(i64_col),
                    i64_col(v.hosts_in_scope)
                ])
                .map_err(sql("record a kpi value"))?;
        }
        let mut evaluations = conn
            .prepare_cached(
                "INSERT INTO kpi_evaluations (kpi_id, at, status, value, target, consecutive_misses,
                     consecutive_met)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql("prepare the kpi evaluation insert"))?;
        for e in &batch.kpi_evaluations {
            evaluations
                .execute(params![
                    e.kpi,
                    to_nanos(e.at, "kpi evaluation time")?,
                    e.status.as_str(),
                    e.value,
                    e.target,
                    i64::from(e.consecutive_misses),
                    i64::from(e.consecutive_met)
                ])
                .map_err(sql("record a kpi evaluation"))?;
        }
        let mut objectives = conn
            .prepare_cached(
                "INSERT INTO objective_history (objective_id, at, status, reason) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql("prepare the objective insert"))?;
        for o in &batch.objective_changes {
            objectives
                .execute(params![o.objective, at, o.status.as_str(), o.reason])
                .map_err(sql("record an objective status"))?;
        }
    }
    let mut saved = SavedEvaluation::default();
    for change in &batch.nc_changes {
        if change.nc.id == 0 {
            let id = insert_nc(conn, &change.nc)?;
            for e in &change.events {
                insert_event(conn, id, e)?;
            }
            saved.opened.push(u64_col(id));
        } else if let Some(base) = change.base
            && update_nc(conn, &change.nc, base)?
        {
            for e in &change.events {
                insert_event(conn, i64_col(change.nc.id), e)?;
            }
        } else {
            saved.conflicts += 1;
        }
    }
    conn.prepare_cached(
        "INSERT INTO engine_state (key, value) VALUES ('last_tick', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .map_err(sql("prepare the engine clock update"))?
    .execute(params![at.to_string()])
    .map_err(sql("save the engine clock"))?;
    Ok(saved)
}

// ---- point-in-time reads ---------------------------------------------------------------

pub(super) fn verdicts_at(
    conn: &Connection,
    at: Option<i64>,
    machine_id: Option<&str>,
    rule: Option<&str>,
) -> Result<Vec<VerdictRecord>, StoreError> {
    let mut out = Vec::new();
    match at {
        None => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT machine_id, rule_id, verdict, reason, observed_at, failing_since,
                            offenders_json, overdue_since, exception, since
                       FROM verdict_current
                      WHERE (?1 IS NULL OR machine_id = ?1) AND (?2 IS NULL OR rule_id = ?2)
                      ORDER BY machine_id, rule_id",
                )
                .map_err(sql("prepare the verdict query"))?;
            for row in stmt
                .query_map(params![machine_id, rule], verdict_from_row)
                .map_err(sql("read verdicts"))?
            {
                let v = finish_verdict(row.map_err(sql("read a verdict"))?)?;
                out.push(VerdictRecord {
                    overdue: v.overdue_since.is_some(),
                    machine_id: v.machine_id.to_string(),
                    rule: v.rule.to_string(),
                    verdict: v.verdict,
                    reason: v.reason.to_string(),
                    exception: v.exception,
                    since: v.since,
                });
            }
        }
        Some(at) => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT h.machine_id, h.rule_id, h.verdict, h.reason, h.overdue, h.exception, h.at
                       FROM verdict_history h
                       JOIN (SELECT MAX(id) AS id FROM verdict_history
                              WHERE at <= ?1 AND (?2 IS NULL OR machine_id = ?2)
                                AND (?3 IS NULL OR rule_id = ?3)
                              GROUP BY machine_id, rule_id) m ON m.id = h.id
                      WHERE h.verdict IS NOT NULL
                      ORDER BY h.machine_id, h.rule_id",
                )
                .map_err(sql("prepare the verdict history query"))?;
            let rows = stmt
                .query_map(params![at, machine_id, rule], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, bool>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                })
                .map_err(sql("read verdict history"))?;
            for row in rows {
                let (machine_id, rule, verdict, reason, overdue, exception, since) =
                    row.map_err(sql("read a verdict change"))?;
                out.push(VerdictRecord {
                    verdict: Verdict::parse(&verdict)
                        .ok_or_else(|| corrupt(format!("verdict {verdict:?}")))?,
                    machine_id,
                    rule,
                    reason,
                    overdue,
                    exception,
                    since: from_nanos(since),
                });
            }
        }
    }
    Ok(out)
}

pub(super) fn controls_at(
    conn: &Connection,
    at: Option<i64>,
) -> Result<Vec<ControlRecord>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = match at {
        None => conn.prepare_cached(
            "SELECT control_id, status, reason, passing, failing, evidence_count, last_evidence, since
               FROM control_current",
        ),
        Some(_) => conn.prepare_cached(
            "SELECT h.control_id, h.status, h.reason, h.passing, h.failing, h.evidence_count,
                    h.last_evidence, h.at
               FROM control_history h
               JOIN (SELECT MAX(id) AS id FROM control_history WHERE at <= ?1 GROUP BY control_id) m
                 ON m.id = h.id",
        ),
    }
    .map_err(sql("prepare the control query"))?;
    let rows = match at {
        None => stmt.query_map([], control_from_row),
        Some(at) => stmt.query_map(params![at], control_from_row),
    }
    .map_err(sql("read controls"))?;
    for row in rows {
        out.push(finish_control(row.map_err(sql("read a control"))?)?);
    }
    catalogue_order(&mut out);
    Ok(out)
}

pub(super) fn kpis_at(conn: &Connection, at: Option<i64>) -> Result<Vec<KpiSnapshot>, StoreError> {
    let (values, evaluations) = latest_kpis(conn, at.unwrap_or(i64::MAX))?;
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

pub(super) fn kpi_history(
    conn: &Connection,
    kpi: &str,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<(Vec<KpiValue>, Vec<KpiEvaluation>), StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT kpi_id, at, value, numerator, denominator, hosts_in_scope FROM kpi_values
              WHERE kpi_id = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at, id LIMIT ?4",
        )
        .map_err(sql("prepare the kpi history query"))?;
    let values = stmt
        .query_map(params![kpi, from, to, limit], kpi_value_from_row)
        .map_err(sql("read kpi history"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql("read a kpi value"))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT kpi_id, at, status, value, target, consecutive_misses, consecutive_met
               FROM kpi_evaluations
              WHERE kpi_id = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at, id LIMIT ?4",
        )
        .map_err(sql("prepare the kpi evaluation history query"))?;
    let mut evaluations = Vec::new();
    for row in stmt
        .query_map(params![kpi, from, to, limit], kpi_evaluation_from_row)
        .map_err(sql("read kpi evaluation history"))?
    {
        evaluations.push(finish_kpi_evaluation(
            row.map_err(sql("read a kpi evaluation"))?,
        )?);
    }
    Ok((values, evaluations))
}

pub(super) fn objectives_at(
    conn: &Connection,
    at: Option<i64>,
) -> Result<Vec<ObjectiveRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT h.objective_id, h.status, h.reason, h.at
               FROM objective_history h
               JOIN (SELECT MAX(id) AS id FROM objective_history WHERE at <= ?1 GROUP BY objective_id) m
                 ON m.id = h.id
              ORDER BY h.objective_id",
        )
        .map_err(sql("prepare the objective query"))?;
    let mut out = Vec::new();
    for row in stmt
        .query_map(params![at.unwrap_or(i64::MAX)], objective_from_row)
        .map_err(sql("read objectives"))?
    {
        out.push(finish_objective(row.map_err(sql("read an objective"))?)?);
    }
    Ok(out)
}

fn events_of(conn: &Connection, nc_id: i64, until: i64) -> Result<Vec<NcEvent>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at, actor, kind, from_state, to_state, note FROM nc_events
              WHERE nc_id = ?1 AND at <= ?2 ORDER BY id",
        )
        .map_err(sql("prepare the event query"))?;
    let rows = stmt
        .query_map(params![nc_id, until], event_row)
        .map_err(sql("read nonconformity events"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(finish_event(row.map_err(sql("read an event"))?)?);
    }
    Ok(out)
}

type RawEvent = (i64, String, String, Option<String>, String, String);

fn event_row(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn finish_event((at, actor, kind, from, to, note): RawEvent) -> Result<NcEvent, StoreError> {
    Ok(NcEvent {
        at: from_nanos(at),
        actor,
        kind: NcEventKind::parse(&kind).ok_or_else(|| corrupt(format!("event kind {kind:?}")))?,
        from: from
            .map(|f| NcState::parse(&f).ok_or_else(|| corrupt(format!("state {f:?}"))))
            .transpose()?,
        to: NcState::parse(&to).ok_or_else(|| corrupt(format!("state {to:?}")))?,
        note,
    })
}

pub(super) fn nonconformities_at(
    conn: &Connection,
    at: Option<i64>,
) -> Result<Vec<Nonconformity>, StoreError> {
    match at {
        None => query_ncs(conn, "", &[]),
        Some(at) => {
            let mut out = Vec::new();
            for nc in query_ncs(conn, "WHERE opened_at <= ?1", &[&at])? {
                let events = events_of(conn, i64_col(nc.id), at)?;
                out.push(nc_as_of(nc, &events, from_nanos(at)));
            }
            Ok(out)
        }
    }
}

pub(super) fn nonconformity(conn: &Connection, id: u64) -> Result<Option<NcDetail>, StoreError> {
    let id = i64_col(id);
    let Some(nc) = query_ncs(conn, "WHERE id = ?1", &[&id])?.into_iter().next() else {
        return Ok(None);
    };
    let events = events_of(conn, id, i64::MAX)?;
    Ok(Some(NcDetail { nc, events }))
}

pub(super) fn nc_events_between(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<Vec<(u64, NcEvent)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT nc_id, at, actor, kind, from_state, to_state, note FROM nc_events
              WHERE at >= ?1 AND at <= ?2 ORDER BY at, id",
        )
        .map_err(sql("prepare the event query"))?;
    let rows = stmt
        .query_map(params![from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ),
            ))
        })
        .map_err(sql("read events"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, raw) = row.map_err(sql("read an event"))?;
        out.push((u64_col(id), finish_event(raw)?));
    }
    Ok(out)
}

pub(super) fn nc_action(
    conn: &Connection,
    id: u64,
    action: &NcAction,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<NcActionOutcome, StoreError> {
    let Some(detail) = nonconformity(conn, id)? else {
        return Ok(NcActionOutcome::NotFound);
    };
    let (next, event) = match apply_action(&detail.nc, action, actor, at) {
        Ok(v) => v,
        Err(e) => return Ok(NcActionOutcome::Refused(e.0)),
    };
    if !update_nc(conn, &next, detail.nc.updated_at)? {
        return Ok(NcActionOutcome::Refused(format!(
            "NC-{id} changed while the action was applied; retry"
        )));
    }
    insert_event(conn, i64_col(id), &event)?;
    let mut events = detail.events;
    events.push(event);
    Ok(NcActionOutcome::Applied(Box::new(NcDetail {
        nc: next,
        events,
    })))
}
