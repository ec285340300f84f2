//! The SQLite store's queries, as plain functions on a read-only pooled connection.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, params};
use vigil_shared::Status;

use super::rows::{
    HOST_COLUMNS, HostRow, PRINCIPAL_COLUMNS, PrincipalRow, RESULT_COLUMNS, ResultRow, to_nanos,
    u64_from_db,
};
use crate::auth::TokenHash;
use crate::store::{
    History, HistoryQuery, HostDetail, HostSummary, Principal, StatusCounts, StoreError, StoreStats,
};

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

pub(super) fn principal_by_token(
    conn: &Connection,
    hash: &TokenHash,
) -> Result<Option<Principal>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE token_sha256 = ?1"
    ))
    .and_then(|mut stmt| {
        stmt.query_row([&hash.0[..]], PrincipalRow::from_row)
            .optional()
    })
    .map_err(sql("look up a token"))?
    .map(PrincipalRow::into_principal)
    .transpose()
}

pub(super) fn principal_by_name(
    conn: &Connection,
    name: &str,
) -> Result<Option<Principal>, StoreError> {
    conn.query_row(
        &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE name = ?1"),
        [name],
        PrincipalRow::from_row,
    )
    .optional()
    .map_err(sql("read a principal"))?
    .map(PrincipalRow::into_principal)
    .transpose()
}

pub(super) fn list_principals(conn: &Connection) -> Result<Vec<Principal>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY name"
        ))
        .map_err(sql("list principals"))?;
    let rows = stmt
        .query_map([], PrincipalRow::from_row)
        .map_err(sql("list principals"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql("list principals"))?.into_principal()?);
    }
    Ok(out)
}

/// Status counts of the latest results, for one host or for all (`machine_id = None`).
fn status_counts(
    conn: &Connection,
    machine_id: Option<&str>,
) -> Result<Vec<(String, StatusCounts)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.machine_id, r.status, COUNT(*)
             FROM latest_results l JOIN results r ON r.id = l.result_id
             WHERE ?1 IS NULL OR l.machine_id = ?1
             GROUP BY l.machine_id, r.status",
        )
        .map_err(sql("count results"))?;
    let rows = stmt
        .query_map([machine_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sql("count results"))?;
    let mut out: Vec<(String, StatusCounts)> = Vec::new();
    for row in rows {
        let (machine, status, n) = row.map_err(sql("count results"))?;
        let status: Status = status.parse().map_err(|e| StoreError::Corrupt {
            what: format!("latest result of {machine}: {e}"),
        })?;
        let n = u64_from_db(n, "count")?;
        match out.last_mut() {
            Some((m, counts)) if *m == machine => counts.add(status, n),
            _ => {
                let mut counts = StatusCounts::default();
                counts.add(status, n);
                out.push((machine, counts));
            }
        }
    }
    Ok(out)
}

pub(super) fn list_hosts(conn: &Connection) -> Result<Vec<HostSummary>, StoreError> {
    let counts: std::collections::HashMap<String, StatusCounts> =
        status_counts(conn, None)?.into_iter().collect();
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {HOST_COLUMNS} FROM hosts h JOIN principals p ON p.id = h.agent_id
             ORDER BY h.hostname, h.machine_id"
        ))
        .map_err(sql("list hosts"))?;
    let rows = stmt
        .query_map([], HostRow::from_row)
        .map_err(sql("list hosts"))?;
    let mut out = Vec::new();
    for row in rows {
        let row = row.map_err(sql("list hosts"))?;
        let summary = row.into_summary(StatusCounts::default())?;
        let status_counts = counts.get(&summary.machine_id).copied().unwrap_or_default();
        out.push(HostSummary {
            status_counts,
            ..summary
        });
    }
    Ok(out)
}

fn host_summary(conn: &Connection, machine_id: &str) -> Result<Option<HostSummary>, StoreError> {
    let row = conn
        .query_row(
            &format!(
                "SELECT {HOST_COLUMNS} FROM hosts h JOIN principals p ON p.id = h.agent_id
                 WHERE h.machine_id = ?1"
            ),
            [machine_id],
            HostRow::from_row,
        )
        .optional()
        .map_err(sql("read a host"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let counts = status_counts(conn, Some(machine_id))?
        .into_iter()
        .next()
        .map(|(_, c)| c)
        .unwrap_or_default();
    row.into_summary(counts).map(Some)
}

/// Latest result of every check of one host; parameter: machine id.
pub(super) static LATEST_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RESULT_COLUMNS}
             FROM latest_results l
             JOIN results r ON r.id = l.result_id
             JOIN reports rep ON rep.id = r.report_id
             WHERE l.machine_id = ?1
             ORDER BY l.check_id"
    )
});

pub(super) fn host_detail(
    conn: &Connection,
    machine_id: &str,
) -> Result<Option<HostDetail>, StoreError> {
    let Some(host) = host_summary(conn, machine_id)? else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached(&LATEST_SQL)
        .map_err(sql("read latest results"))?;
    let rows = stmt
        .query_map([machine_id], ResultRow::from_row)
        .map_err(sql("read latest results"))?;
    let mut results = Vec::new();
    for row in rows {
        results.push(row.map_err(sql("read latest results"))?.into_stored(None)?);
    }
    Ok(Some(HostDetail { host, results }))
}

/// History of one check on one host; parameters: machine id, check, from, to, limit.
pub(super) static HISTORY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT * FROM (
                 SELECT {RESULT_COLUMNS}, r.id AS rid,
                        LEAD(r.observed_at) OVER (ORDER BY r.observed_at, r.id) AS until
                 FROM results r JOIN reports rep ON rep.id = r.report_id
                 WHERE r.machine_id = ?1 AND r.check_id = ?2
                   AND r.observed_at >= COALESCE(
                       (SELECT MAX(observed_at) FROM results
                        WHERE machine_id = ?1 AND check_id = ?2 AND observed_at <= ?3),
                       -9223372036854775808)
                   AND r.observed_at <= COALESCE(
                       (SELECT MIN(observed_at) FROM results
                        WHERE machine_id = ?1 AND check_id = ?2 AND observed_at >= ?4),
                       9223372036854775807)
             )
             WHERE observed_at < ?4 AND (until IS NULL OR until > ?3)
             ORDER BY observed_at, rid
             LIMIT ?5"
    )
});

pub(super) fn result_history(
    conn: &Connection,
    query: &HistoryQuery,
) -> Result<Option<History>, StoreError> {
    let known: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM hosts WHERE machine_id = ?1",
            [&query.machine_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read a host"))?;
    if known.is_none() {
        return Ok(None);
    }
    let from = to_nanos(query.from, "from")?;
    let to = to_nanos(query.to, "to")?;
    let limit = i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX);
    // The covered period ends at the next observation of the same check; a result is returned
    // when that period overlaps [from, to), so the state in force at `from` is included. The
    // window only needs the rows from the last observation at or before `from` to the first
    // at or after `to` (both index seeks), not the check's whole history.
    let mut stmt = conn
        .prepare_cached(&HISTORY_SQL)
        .map_err(sql("read result history"))?;
    let rows = stmt
        .query_map(
            params![query.machine_id, query.check, from, to, limit],
            |r| Ok((ResultRow::from_row(r)?, r.get::<_, Option<i64>>(13)?)),
        )
        .map_err(sql("read result history"))?;
    let mut results = Vec::new();
    for row in rows {
        let (row, until) = row.map_err(sql("read result history"))?;
        results.push(row.into_stored(until)?);
    }
    let truncated = results.len() > query.limit;
    results.truncate(query.limit);
    Ok(Some(History { results, truncated }))
}

pub(super) fn stats(conn: &Connection) -> Result<StoreStats, StoreError> {
    let (principals, hosts, reports, results): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM principals), (SELECT COUNT(*) FROM hosts),
                    (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM results)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(sql("count rows"))?;
    Ok(StoreStats {
        principals: u64_from_db(principals, "count")?,
        hosts: u64_from_db(hosts, "count")?,
        reports: u64_from_db(reports, "count")?,
        results: u64_from_db(results, "count")?,
    })
}
