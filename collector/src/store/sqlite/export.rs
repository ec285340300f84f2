//! The SQLite store's paged reads for the evidence export: results over a period in key
//! order, and report receive times per host. Both walk an index and stop at `LIMIT`, so a page
//! costs the same however long the period is.

use std::sync::LazyLock;

use rusqlite::{Connection, params};

use super::rows::{RESULT_COLUMNS, ResultRow, from_nanos, i64_to_db, to_nanos};
use crate::store::{EvidencePageQuery, EvidenceRecord, StoreError};

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

/// Results whose covered period overlaps `[?1, ?2)` after the key `(?3, ?4, ?5, ?6)`, at most
/// `?7`. The covered period ends at the next observation of the same check on the same host in
/// `(observed_at, id)` order, as in the history query; it is looked up through the
/// `results_history` index for each candidate row (a range seek from the row's own
/// `observed_at`, stopped by `LIMIT 1`: the `>=` bound is what lets SQLite seek instead of
/// scanning the pair's whole history).
static PAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT * FROM (
             SELECT r.machine_id AS m, {RESULT_COLUMNS}, r.id AS rid,
                    (SELECT n.observed_at FROM results n
                     WHERE n.machine_id = r.machine_id AND n.check_id = r.check_id
                       AND n.observed_at >= r.observed_at
                       AND (n.observed_at > r.observed_at OR n.id > r.id)
                     ORDER BY n.observed_at, n.id LIMIT 1) AS until
             FROM results r JOIN reports rep ON rep.id = r.report_id
             WHERE r.observed_at < ?2
               AND (r.machine_id, r.check_id, r.observed_at) >= (?3, ?4, ?5)
               AND (r.machine_id, r.check_id, r.observed_at, rep.seq) > (?3, ?4, ?5, ?6)
         )
         WHERE until IS NULL OR until > ?1
         ORDER BY m, check_id, observed_at, seq
         LIMIT ?7"
    )
});

pub(super) fn evidence_page(
    conn: &Connection,
    query: &EvidencePageQuery,
) -> Result<Vec<EvidenceRecord>, StoreError> {
    let from = to_nanos(query.from, "from")?;
    let to = to_nanos(query.to, "to")?;
    // Without a key, start before every possible row: the empty machine id sorts first, and
    // seq -1 is below every stored sequence number.
    let (machine, check, observed, seq) = match &query.after {
        Some(k) => (
            k.machine_id.clone(),
            k.check.clone(),
            to_nanos(k.observed_at, "after")?,
            i64_to_db(k.seq, "seq")?,
        ),
        None => (String::new(), String::new(), i64::MIN, -1),
    };
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(&PAGE_SQL)
        .map_err(sql("read evidence for export"))?;
    let rows = stmt
        .query_map(
            params![from, to, machine, check, observed, seq, limit],
            |r| {
                // Column 0 is the machine id; the result columns follow.
                let machine_id: String = r.get(0)?;
                let row = ResultRow::from_row_at(r, 1)?;
                let until: Option<i64> = r.get(14)?;
                Ok((machine_id, row, until))
            },
        )
        .map_err(sql("read evidence for export"))?;
    let mut out = Vec::with_capacity(query.limit.min(4096));
    for row in rows {
        let (machine_id, row, until) = row.map_err(sql("read evidence for export"))?;
        out.push(EvidenceRecord {
            machine_id,
            stored: row.into_stored(until)?,
        });
    }
    Ok(out)
}

pub(super) fn report_times_page(
    conn: &Connection,
    machine_id: &str,
    from: i64,
    to: i64,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<chrono::DateTime<chrono::Utc>>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT received_at FROM reports
             WHERE machine_id = ?1 AND received_at >= ?2 AND received_at < ?3
               AND (?4 IS NULL OR received_at > ?4)
             ORDER BY received_at LIMIT ?5",
        )
        .map_err(sql("read report times"))?;
    let rows = stmt
        .query_map(params![machine_id, from, to, after, limit], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(sql("read report times"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(from_nanos(row.map_err(sql("read report times"))?));
    }
    Ok(out)
}
