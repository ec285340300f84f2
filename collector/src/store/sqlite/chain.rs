//! The SQLite store's tamper evidence: agents' public keys, and each host's hash chain over its
//! stored reports (migration 6). A report's chain entry, with the signed body (gzip) and the
//! signature, is written in the same transaction as the report; the host's head moves with it.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{from_nanos, i64_to_db, to_nanos, u64_from_db};
use crate::store::StoreError;
use crate::store::chain::{
    self, AgentKey, ChainEntry, ChainHead, KeyOutcome, KeySource, SignedBody,
};

pub(super) const MIGRATION: &str = r#"
-- Keys agents sign their reports with; at most one current (not retired) key per agent.
CREATE TABLE agent_keys (
    id            INTEGER PRIMARY KEY,
    agent_id      INTEGER NOT NULL REFERENCES principals (id),
    public_key    BLOB    NOT NULL CHECK (length(public_key) = 32),
    source        TEXT    NOT NULL CHECK (source IN ('enrollment', 'first_use', 'operator')),
    registered_at INTEGER NOT NULL,
    retired_at    INTEGER
);
CREATE UNIQUE INDEX agent_keys_current ON agent_keys (agent_id) WHERE retired_at IS NULL;

-- One entry per stored report (reports stored before this migration have none): its place
-- in its host's chain, the signed JSON (gzip), the signature and the key it verified against.
CREATE TABLE report_chain (
    report_id   INTEGER PRIMARY KEY REFERENCES reports (id),
    machine_id  TEXT    NOT NULL,
    chain_index INTEGER NOT NULL,
    body_gz     BLOB,
    signature   BLOB CHECK (signature IS NULL OR length(signature) = 64),
    public_key  BLOB CHECK (public_key IS NULL OR length(public_key) = 32),
    prev_hash   BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    chain_hash  BLOB    NOT NULL CHECK (length(chain_hash) = 32),
    UNIQUE (machine_id, chain_index)
);

CREATE TABLE chain_heads (
    machine_id  TEXT    PRIMARY KEY,
    chain_index INTEGER NOT NULL,
    chain_hash  BLOB    NOT NULL
) WITHOUT ROWID;
"#;

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

fn fixed<const N: usize>(bytes: Vec<u8>, what: &str) -> Result<[u8; N], StoreError> {
    bytes.try_into().map_err(|_| corrupt(what))
}

/// Appends the stored report `report_id` to its host's chain (inside the ingest transaction).
pub(super) fn append(
    conn: &Connection,
    report_id: i64,
    machine_id: &str,
    received_at: i64,
    body_sha256: &[u8; 32],
    signed: Option<&SignedBody>,
) -> Result<(), StoreError> {
    let head: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT chain_index, chain_hash FROM chain_heads WHERE machine_id = ?1",
            [machine_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql("read the chain head"))?;
    let (prev_index, prev_hash) = match head {
        Some((i, h)) => (
            u64_from_db(i, "chain index")?,
            fixed::<32>(h, "chain head hash")?,
        ),
        None => (0, chain::GENESIS),
    };
    let index = prev_index + 1;
    let hash = chain::link(
        &prev_hash,
        index,
        received_at,
        body_sha256,
        signed.map(|s| &s.signature),
        signed.map(|s| &s.public_key),
    );
    let body_gz = signed
        .map(|s| vigil_shared::codec::gzip(&s.json))
        .transpose()
        .map_err(|e| StoreError::backend("compress the signed body", e))?;
    let index_db = i64_to_db(index, "chain index")?;
    conn.execute(
        "INSERT INTO report_chain (report_id, machine_id, chain_index, body_gz, signature,
                                   public_key, prev_hash, chain_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            report_id,
            machine_id,
            index_db,
            body_gz,
            signed.map(|s| s.signature.to_vec()),
            signed.map(|s| s.public_key.to_vec()),
            &prev_hash[..],
            &hash[..],
        ],
    )
    .map_err(sql("insert the chain entry"))?;
    conn.execute(
        "INSERT INTO chain_heads (machine_id, chain_index, chain_hash) VALUES (?1, ?2, ?3)
         ON CONFLICT (machine_id) DO UPDATE
            SET chain_index = excluded.chain_index, chain_hash = excluded.chain_hash",
        params![machine_id, index_db, &hash[..]],
    )
    .map_err(sql("move the chain head"))?;
    Ok(())
}

const KEY_COLUMNS: &str = "p.name, k.public_key, k.source, k.registered_at, k.retired_at FROM agent_keys k \
     JOIN principals p ON p.id = k.agent_id";

/// name, public key, source, registered_at, retired_at.
type KeyColumns = (String, Vec<u8>, String, i64, Option<i64>);

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn into_key(row: KeyColumns) -> Result<AgentKey, StoreError> {
    let (agent, key, source, registered, retired) = row;
    Ok(AgentKey {
        agent,
        public_key: fixed::<32>(key, "agent public key")?,
        source: KeySource::parse(&source).ok_or_else(|| corrupt("agent key source"))?,
        registered_at: from_nanos(registered),
        retired_at: retired.map(from_nanos),
    })
}

fn keys_where(
    conn: &Connection,
    filter: &str,
    arg: Option<&str>,
) -> Result<Vec<AgentKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} {filter} ORDER BY p.name, k.registered_at, k.id"
        ))
        .map_err(sql("read agent keys"))?;
    let rows = match arg {
        Some(a) => stmt.query_map([a], key_from_row),
        None => stmt.query_map([], key_from_row),
    }
    .map_err(sql("read agent keys"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(into_key(row.map_err(sql("read agent keys"))?)?);
    }
    Ok(out)
}

pub(super) fn agent_keys(conn: &Connection, agent: &str) -> Result<Vec<AgentKey>, StoreError> {
    keys_where(conn, "WHERE p.name = ?1", Some(agent))
}

pub(super) fn list_agent_keys(conn: &Connection) -> Result<Vec<AgentKey>, StoreError> {
    keys_where(conn, "", None)
}

fn current_key(conn: &Connection, agent: &str) -> Result<Option<AgentKey>, StoreError> {
    Ok(agent_keys(conn, agent)?
        .into_iter()
        .find(|k| k.retired_at.is_none()))
}

pub(super) fn register_agent_key(
    conn: &Connection,
    agent: &str,
    public_key: &[u8; 32],
    source: KeySource,
    at: i64,
) -> Result<KeyOutcome, StoreError> {
    let principal: Option<(i64, String, Option<i64>)> = conn
        .query_row(
            "SELECT id, role, revoked_at FROM principals WHERE name = ?1",
            [agent],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sql("read the agent"))?;
    let agent_id = match principal {
        Some((id, role, None)) if role == crate::auth::Role::Agent.as_str() => id,
        _ => return Ok(KeyOutcome::UnknownAgent),
    };
    if let Some(current) = current_key(conn, agent)? {
        if current.public_key == *public_key {
            return Ok(KeyOutcome::Unchanged(current));
        }
        if source != KeySource::Operator {
            return Ok(KeyOutcome::Conflict { current });
        }
        conn.execute(
            "UPDATE agent_keys SET retired_at = ?2 WHERE agent_id = ?1 AND retired_at IS NULL",
            params![agent_id, at],
        )
        .map_err(sql("retire the agent key"))?;
    }
    conn.execute(
        "INSERT INTO agent_keys (agent_id, public_key, source, registered_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![agent_id, &public_key[..], source.as_str(), at],
    )
    .map_err(sql("register the agent key"))?;
    current_key(conn, agent)?
        .map(KeyOutcome::Registered)
        .ok_or_else(|| corrupt("registered key not found"))
}

pub(super) fn retire_agent_key(
    conn: &Connection,
    agent: &str,
    at: i64,
) -> Result<Option<AgentKey>, StoreError> {
    if super::read::principal_by_name(conn, agent)?.is_none() {
        return Err(StoreError::PrincipalNotFound { name: agent.into() });
    }
    let Some(mut current) = current_key(conn, agent)? else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE agent_keys SET retired_at = ?2
         WHERE retired_at IS NULL AND agent_id = (SELECT id FROM principals WHERE name = ?1)",
        params![agent, at],
    )
    .map_err(sql("retire the agent key"))?;
    current.retired_at = Some(from_nanos(at));
    Ok(Some(current))
}

pub(super) fn chain_heads(conn: &Connection) -> Result<Vec<ChainHead>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT machine_id, chain_index, chain_hash FROM chain_heads ORDER BY machine_id",
        )
        .map_err(sql("read chain heads"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(sql("read chain heads"))?;
    let mut out = Vec::new();
    for row in rows {
        let (machine_id, index, hash) = row.map_err(sql("read chain heads"))?;
        out.push(ChainHead {
            machine_id,
            index: u64_from_db(index, "chain index")?,
            hash: fixed::<32>(hash, "chain head hash")?,
        });
    }
    Ok(out)
}

pub(super) fn chain_bounds(
    conn: &Connection,
    machine_id: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    seqs: &[u64],
) -> Result<Option<(u64, u64)>, StoreError> {
    let (from, to) = (to_nanos(from, "from")?, to_nanos(to, "to")?);
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT MIN(c.chain_index), MAX(c.chain_index) FROM report_chain c
             JOIN reports r ON r.id = c.report_id
             WHERE c.machine_id = ?1 AND r.received_at >= ?2 AND r.received_at < ?3",
            params![machine_id, from, to],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql("read chain bounds"))?;
    let mut bounds = lo.zip(hi);
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.chain_index FROM report_chain c JOIN reports r ON r.id = c.report_id
             WHERE c.machine_id = ?1 AND r.seq = ?2",
        )
        .map_err(sql("read chain bounds"))?;
    for &seq in seqs {
        let index: Option<i64> = stmt
            .query_row(params![machine_id, i64_to_db(seq, "seq")?], |r| r.get(0))
            .optional()
            .map_err(sql("read chain bounds"))?;
        if let Some(i) = index {
            bounds = Some(match bounds {
                Some((lo, hi)) => (lo.min(i), hi.max(i)),
                None => (i, i),
            });
        }
    }
    bounds
        .map(|(lo, hi)| {
            Ok((
                u64_from_db(lo, "chain index")?,
                u64_from_db(hi, "chain index")?,
            ))
        })
        .transpose()
}

type ChainRow = (
    i64,
    String,
    i64,
    String,
    i64,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<u8>,
    Vec<u8>,
);

pub(super) fn chain_page(
    conn: &Connection,
    machine_id: &str,
    after: u64,
    through: u64,
    limit: usize,
) -> Result<Vec<ChainEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.chain_index, p.name, r.seq, r.batch_id, r.received_at, r.body_sha256,
                    c.body_gz, c.signature, c.public_key, c.prev_hash, c.chain_hash
             FROM report_chain c JOIN reports r ON r.id = c.report_id
             JOIN principals p ON p.id = r.agent_id
             WHERE c.machine_id = ?1 AND c.chain_index > ?2 AND c.chain_index <= ?3
             ORDER BY c.chain_index LIMIT ?4",
        )
        .map_err(sql("read the chain"))?;
    let rows = stmt
        .query_map(
            params![
                machine_id,
                i64::try_from(after).unwrap_or(i64::MAX),
                i64::try_from(through).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| -> rusqlite::Result<ChainRow> {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            },
        )
        .map_err(sql("read the chain"))?;
    let mut out = Vec::new();
    for row in rows {
        let (index, agent, seq, batch_id, received, body_sha256, body_gz, sig, key, prev, hash) =
            row.map_err(sql("read the chain"))?;
        let signed = match (body_gz, sig, key) {
            (Some(gz), Some(sig), Some(key)) => Some(SignedBody {
                json: vigil_shared::codec::gunzip_limited(&gz, usize::MAX / 2)
                    .map_err(|_| corrupt("signed report body"))?,
                signature: fixed::<64>(sig, "signature")?,
                public_key: fixed::<32>(key, "public key")?,
            }),
            _ => None,
        };
        out.push(ChainEntry {
            machine_id: machine_id.to_string(),
            index: u64_from_db(index, "chain index")?,
            agent,
            seq: u64_from_db(seq, "sequence number")?,
            batch_id,
            received_at: from_nanos(received),
            body_sha256: fixed::<32>(body_sha256, "body hash")?,
            signed,
            prev_hash: fixed::<32>(prev, "previous chain hash")?,
            chain_hash: fixed::<32>(hash, "chain hash")?,
        });
    }
    Ok(out)
}
