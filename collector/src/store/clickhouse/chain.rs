//! Tamper evidence on ClickHouse: agents' public keys and each host's report chain, in tables of
//! their own (`agent_keys`, `report_chain`) so that the reports/results layout is untouched.
//! Hashes, signatures, keys and the gzip'd signed body are stored as hex strings.
//!
//! The chain entry is written under the store's write lock, before the `reports` row (the
//! commit marker): a write interrupted in between leaves a chain entry whose report is absent,
//! and the agent's retry adds the next entry. The chain stays contiguous either way (it is read
//! from `report_chain` alone); the orphan entry is visible, never silently dropped.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ClickHouseStore, ch, nanos};
use crate::auth::Role;
use crate::store::chain::{self, AgentKey, ChainHead, KeyOutcome, KeySource};
use crate::store::{IngestRequest, StoreError};

pub(super) fn schema(db: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.agent_keys (
                agent String, public_key String, registered_at Int64, source String,
                retired UInt8, retired_at Int64, version Int64
            ) ENGINE = ReplacingMergeTree(version) ORDER BY (agent, registered_at, public_key)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.report_chain (
                machine_id String, chain_index UInt64, agent String, seq UInt64,
                batch_id String, received_at Int64, body_sha256 String, body_gz String,
                signature String, public_key String, prev_hash String, chain_hash String
            ) ENGINE = MergeTree ORDER BY (machine_id, chain_index)"
        ),
    ]
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct KeyRow {
    agent: String,
    public_key: String,
    registered_at: i64,
    source: String,
    retired: u8,
    retired_at: i64,
    version: i64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct ChainRow {
    machine_id: String,
    chain_index: u64,
    agent: String,
    seq: u64,
    batch_id: String,
    received_at: i64,
    body_sha256: String,
    body_gz: String,
    signature: String,
    public_key: String,
    prev_hash: String,
    chain_hash: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct HeadRow {
    machine_id: String,
    chain_index: u64,
    chain_hash: String,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], StoreError> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(what))
}

/// A key as read (the latest version of each).
#[derive(Debug, clickhouse::Row, Deserialize)]
struct KeyRead {
    agent: String,
    public_key: String,
    registered_at: i64,
    source: String,
    retired: u8,
    retired_at: i64,
}

impl KeyRead {
    fn into_key(self) -> Result<AgentKey, StoreError> {
        Ok(AgentKey {
            public_key: unhex::<32>(&self.public_key, "agent public key")?,
            source: KeySource::parse(&self.source).ok_or_else(|| corrupt("agent key source"))?,
            registered_at: DateTime::from_timestamp_nanos(self.registered_at),
            retired_at: (self.retired != 0)
                .then(|| DateTime::from_timestamp_nanos(self.retired_at)),
            agent: self.agent,
        })
    }
}

const KEYS_LATEST: &str = "SELECT agent, public_key, registered_at,
        argMax(source, version) AS k_source, argMax(retired, version) AS k_retired,
        argMax(retired_at, version) AS k_retired_at
    FROM agent_keys WHERE agent = ? OR ? = 1
    GROUP BY agent, registered_at, public_key ORDER BY agent, registered_at";

pub(super) async fn agent_keys(
    store: &ClickHouseStore,
    agent: Option<&str>,
) -> Result<Vec<AgentKey>, StoreError> {
    let rows = store
        .client
        .query(KEYS_LATEST)
        .bind(agent.unwrap_or(""))
        .bind(u8::from(agent.is_none()))
        .fetch_all::<KeyRead>()
        .await
        .map_err(ch("read agent keys"))?;
    rows.into_iter().map(KeyRead::into_key).collect()
}

async fn write_key(store: &ClickHouseStore, key: &AgentKey) -> Result<(), StoreError> {
    let row = KeyRow {
        agent: key.agent.clone(),
        public_key: hex::encode(key.public_key),
        registered_at: nanos(key.registered_at, "registered_at")?,
        source: key.source.as_str().into(),
        retired: u8::from(key.retired_at.is_some()),
        retired_at: key
            .retired_at
            .map(|t| nanos(t, "retired_at"))
            .transpose()?
            .unwrap_or(0),
        version: store.next_version(),
    };
    let mut insert = store
        .inserter
        .insert::<KeyRow>("agent_keys")
        .await
        .map_err(ch("write an agent key"))?;
    insert.write(&row).await.map_err(ch("write an agent key"))?;
    insert.end().await.map_err(ch("write an agent key"))
}

/// Caller holds the write lock.
pub(super) async fn register_agent_key(
    store: &ClickHouseStore,
    agent: &str,
    public_key: [u8; 32],
    source: KeySource,
    at: DateTime<Utc>,
) -> Result<KeyOutcome, StoreError> {
    match store.raw_principal(agent).await? {
        Some(p) if p.revoked == 0 && p.role == Role::Agent.as_str() => {}
        _ => return Ok(KeyOutcome::UnknownAgent),
    }
    let current = agent_keys(store, Some(agent))
        .await?
        .into_iter()
        .find(|k| k.retired_at.is_none());
    if let Some(mut current) = current {
        if current.public_key == public_key {
            return Ok(KeyOutcome::Unchanged(current));
        }
        if source != KeySource::Operator {
            return Ok(KeyOutcome::Conflict { current });
        }
        current.retired_at = Some(at);
        write_key(store, &current).await?;
    }
    let key = AgentKey {
        agent: agent.into(),
        public_key,
        source,
        registered_at: at,
        retired_at: None,
    };
    write_key(store, &key).await?;
    Ok(KeyOutcome::Registered(key))
}

/// Caller holds the write lock.
pub(super) async fn retire_agent_key(
    store: &ClickHouseStore,
    agent: &str,
    at: DateTime<Utc>,
) -> Result<Option<AgentKey>, StoreError> {
    if store.raw_principal(agent).await?.is_none() {
        return Err(StoreError::PrincipalNotFound { name: agent.into() });
    }
    let current = agent_keys(store, Some(agent))
        .await?
        .into_iter()
        .find(|k| k.retired_at.is_none());
    let Some(mut current) = current else {
        return Ok(None);
    };
    current.retired_at = Some(at);
    write_key(store, &current).await?;
    Ok(Some(current))
}

pub(super) async fn chain_heads(store: &ClickHouseStore) -> Result<Vec<ChainHead>, StoreError> {
    let rows = store
        .client
        .query(
            "SELECT machine_id, max(chain_index) AS chain_index,
                    argMax(chain_hash, chain_index) AS chain_hash
             FROM report_chain GROUP BY machine_id ORDER BY machine_id",
        )
        .fetch_all::<HeadRow>()
        .await
        .map_err(ch("read chain heads"))?;
    rows.into_iter()
        .map(|r| {
            Ok(ChainHead {
                hash: unhex::<32>(&r.chain_hash, "chain head hash")?,
                machine_id: r.machine_id,
                index: r.chain_index,
            })
        })
        .collect()
}

/// Appends a report to its host's chain. Caller holds the write lock (ingest).
pub(super) async fn append(
    store: &ClickHouseStore,
    request: &IngestRequest,
    received_at: i64,
) -> Result<(), StoreError> {
    let machine_id = &request.report.host.machine_id;
    let head = store
        .client
        .query(
            "SELECT machine_id, chain_index, chain_hash FROM report_chain
             WHERE machine_id = ? ORDER BY chain_index DESC LIMIT 1",
        )
        .bind(machine_id)
        .fetch_optional::<HeadRow>()
        .await
        .map_err(ch("read the chain head"))?;
    let (prev_index, prev_hash) = match head {
        Some(h) => (
            h.chain_index,
            unhex::<32>(&h.chain_hash, "chain head hash")?,
        ),
        None => (0, chain::GENESIS),
    };
    let signed = request.signed.as_ref();
    let index = prev_index + 1;
    let hash = chain::link(
        &prev_hash,
        index,
        received_at,
        &request.body_sha256,
        signed.map(|s| &s.signature),
        signed.map(|s| &s.public_key),
    );
    let body_gz = signed
        .map(|s| vigil_shared::codec::gzip(&s.json))
        .transpose()
        .map_err(|e| StoreError::backend("compress the signed body", e))?;
    let row = ChainRow {
        machine_id: machine_id.clone(),
        chain_index: index,
        agent: request.agent.clone(),
        seq: request.report.seq,
        batch_id: request.report.batch_id.clone(),
        received_at,
        body_sha256: hex::encode(request.body_sha256),
        body_gz: body_gz.map(hex::encode).unwrap_or_default(),
        signature: signed.map(|s| hex::encode(s.signature)).unwrap_or_default(),
        public_key: signed
            .map(|s| hex::encode(s.public_key))
            .unwrap_or_default(),
        prev_hash: hex::encode(prev_hash),
        chain_hash: hex::encode(hash),
    };
    let mut insert = store
        .inserter
        .insert::<ChainRow>("report_chain")
        .await
        .map_err(ch("insert the chain entry"))?;
    insert
        .write(&row)
        .await
        .map_err(ch("insert the chain entry"))?;
    insert.end().await.map_err(ch("insert the chain entry"))
}
