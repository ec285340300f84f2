//! The SQLite store's writes, as plain functions on a connection inside the writer's
//! transaction (see `writer.rs`); each either completes or returns an error and is rolled back.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{HostIdentityColumns, NewResultRow, i64_to_db, to_json, to_nanos};
use crate::auth::{Role, TokenHash};
use crate::store::{IngestOutcome, IngestRequest, NewPrincipal, Principal, StoreError};

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

pub(super) fn create_principal(
    conn: &Connection,
    new: &NewPrincipal,
) -> Result<Principal, StoreError> {
    if super::read::principal_by_name(conn, &new.name)?.is_some() {
        return Err(StoreError::PrincipalExists {
            name: new.name.clone(),
        });
    }
    conn.execute(
        "INSERT INTO principals (name, role, token_sha256, labels_json, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            new.name,
            new.role.as_str(),
            &new.token_hash.0[..],
            to_json(&new.labels, "labels")?,
            to_nanos(new.created_at, "created_at")?,
            new.expires_at
                .map(|at| to_nanos(at, "expires_at"))
                .transpose()?,
        ],
    )
    .map_err(sql("create a principal"))?;
    super::read::principal_by_name(conn, &new.name)?.ok_or_else(|| StoreError::PrincipalNotFound {
        name: new.name.clone(),
    })
}

pub(super) fn revoke_principal(
    conn: &Connection,
    name: &str,
    at: i64,
) -> Result<Principal, StoreError> {
    conn.execute(
        "UPDATE principals SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        params![name, at],
    )
    .map_err(sql("revoke a principal"))?;
    super::read::principal_by_name(conn, name)?
        .ok_or_else(|| StoreError::PrincipalNotFound { name: name.into() })
}

pub(super) fn rotate_token(
    conn: &Connection,
    name: &str,
    hash: &TokenHash,
    expires_at: Option<i64>,
) -> Result<Principal, StoreError> {
    let changed = conn
        .execute(
            "UPDATE principals SET token_sha256 = ?2, revoked_at = NULL, expires_at = ?3
             WHERE name = ?1",
            params![name, &hash.0[..], expires_at],
        )
        .map_err(sql("replace a token"))?;
    if changed == 0 {
        return Err(StoreError::PrincipalNotFound { name: name.into() });
    }
    super::read::principal_by_name(conn, name)?
        .ok_or_else(|| StoreError::PrincipalNotFound { name: name.into() })
}

/// Stores one report, or says why not; see [`IngestOutcome`].
pub(super) fn ingest(
    conn: &Connection,
    request: &IngestRequest,
) -> Result<IngestOutcome, StoreError> {
    let report = &request.report;
    let seq_db = i64_to_db(report.seq, "sequence number")?;
    let received = to_nanos(request.received_at, "received_at")?;

    // The authentication happened before the request waited in the queue; a revocation in
    // between must still win.
    let agent: Option<(i64, String, Option<i64>)> = conn
        .query_row(
            "SELECT id, role, revoked_at FROM principals WHERE name = ?1",
            [&request.agent],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sql("read the agent"))?;
    let agent_id = match agent {
        Some((id, role, None)) if role == Role::Agent.as_str() => id,
        _ => {
            return Ok(IngestOutcome::AgentInactive {
                agent: request.agent.clone(),
            });
        }
    };

    let same_seq: Option<(String, i64, Vec<u8>)> = conn
        .query_row(
            "SELECT batch_id, received_at, body_sha256 FROM reports WHERE agent_id = ?1 AND seq = ?2",
            params![agent_id, seq_db],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sql("look for a duplicate"))?;
    if let Some((stored_batch_id, first_received, body_sha256)) = same_seq {
        if stored_batch_id == report.batch_id {
            return Ok(IngestOutcome::Duplicate {
                seq: report.seq,
                batch_id: stored_batch_id,
                first_received_at: super::rows::from_nanos(first_received),
                same_body: body_sha256 == request.body_sha256,
            });
        }
        return Ok(IngestOutcome::SeqConflict {
            seq: report.seq,
            batch_id: report.batch_id.clone(),
            stored_batch_id,
        });
    }
    let same_batch: Option<i64> = conn
        .query_row(
            "SELECT seq FROM reports WHERE agent_id = ?1 AND batch_id = ?2",
            params![agent_id, report.batch_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("look for a reused batch id"))?;
    if let Some(stored_seq) = same_batch {
        return Ok(IngestOutcome::BatchConflict {
            seq: report.seq,
            batch_id: report.batch_id.clone(),
            stored_seq: super::rows::u64_from_db(stored_seq, "sequence number")?,
        });
    }

    let machine_id = &report.host.machine_id;
    let owner: Option<(i64, String)> = conn
        .query_row(
            "SELECT h.agent_id, p.name FROM hosts h JOIN principals p ON p.id = h.agent_id
             WHERE h.machine_id = ?1",
            [machine_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql("read the host's owner"))?;
    let identity = HostIdentityColumns::from_identity(&report.host)?;
    match owner {
        Some((owner_id, owner)) if owner_id != agent_id => {
            return Ok(IngestOutcome::HostOwned {
                machine_id: machine_id.clone(),
                owner,
            });
        }
        Some(_) => {
            conn.execute(
                "UPDATE hosts SET last_seen = MAX(last_seen, ?2) WHERE machine_id = ?1",
                params![machine_id, received],
            )
            .map_err(sql("update the host"))?;
            // Identity follows the newest report by sequence, so a late retry of an old report
            // cannot roll the hostname or OS back.
            conn.execute(
                "UPDATE hosts SET hostname = ?2, os_json = ?3, kernel = ?4, labels_json = ?5,
                        latest_seq = ?6
                 WHERE machine_id = ?1 AND latest_seq < ?6",
                params![
                    machine_id,
                    identity.hostname,
                    identity.os_json,
                    identity.kernel,
                    identity.labels_json,
                    seq_db
                ],
            )
            .map_err(sql("update the host"))?;
        }
        None => {
            conn.execute(
                "INSERT INTO hosts (machine_id, agent_id, hostname, os_json, kernel, labels_json,
                                    first_seen, last_seen, latest_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
                params![
                    machine_id,
                    agent_id,
                    identity.hostname,
                    identity.os_json,
                    identity.kernel,
                    identity.labels_json,
                    received,
                    seq_db
                ],
            )
            .map_err(sql("insert the host"))?;
            tracing::info!(machine_id = %machine_id, agent = %request.agent, "new host bound to agent");
        }
    }

    let health_json = report
        .agent
        .health
        .as_ref()
        .map(|h| to_json(h, "agent health"))
        .transpose()?;
    conn.execute(
        "INSERT INTO reports (agent_id, seq, batch_id, machine_id, agent_version, health_json,
                              host_json, sent_at, received_at, body_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            agent_id,
            seq_db,
            report.batch_id,
            machine_id,
            report.agent.version,
            health_json,
            to_json(&report.host, "host identity")?,
            to_nanos(report.sent_at, "sent_at")?,
            received,
            &request.body_sha256[..],
        ],
    )
    .map_err(sql("insert the report"))?;
    let report_id = conn.last_insert_rowid();
    super::chain::append(
        conn,
        report_id,
        machine_id,
        received,
        &request.body_sha256,
        request.signed.as_ref(),
    )?;

    let mut insert_result = conn
        .prepare_cached(
            "INSERT INTO results (report_id, machine_id, check_id, controls_json, status, summary,
                                  error, observed_at, received_at, duration_ms, values_json,
                                  evidence_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(sql("prepare the result insert"))?;
    let mut upsert_latest = conn
        .prepare_cached(
            "INSERT INTO latest_results (machine_id, check_id, result_id, seq)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (machine_id, check_id) DO UPDATE
                SET result_id = excluded.result_id, seq = excluded.seq
                WHERE excluded.seq > latest_results.seq",
        )
        .map_err(sql("prepare the latest-result update"))?;
    for result in &report.results {
        let row = NewResultRow::from_result(result)?;
        insert_result
            .execute(params![
                report_id,
                machine_id,
                row.check_id,
                row.controls_json,
                row.status,
                row.summary,
                row.error,
                row.observed_at,
                received,
                row.duration_ms,
                row.values_json,
                row.evidence_json,
            ])
            .map_err(sql("insert a result"))?;
        let result_id = conn.last_insert_rowid();
        upsert_latest
            .execute(params![machine_id, row.check_id, result_id, seq_db])
            .map_err(sql("update the latest result"))?;
    }
    Ok(IngestOutcome::Stored {
        seq: report.seq,
        batch_id: report.batch_id.clone(),
    })
}
