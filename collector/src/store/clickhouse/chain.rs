//! Tamper evidence on ClickHouse: agents' public keys and each host's report chain, in tables of
//! their own (`agent_keys`, `report_chain`) so that the reports/results layout is untouched.
//! Hashes, signatures, keys and the gzip'd signed body are stored as hex strings.
//!
//! The batching writer (`writer.rs`) appends a batch's entries with its other detail rows,
//! before the `reports` rows (the commit markers), and records each host's new head in
//! `chain_heads` after them. An entry counts only when its report is committed: a `reports`
//! row with the same machine id, agent, sequence number and receive time. A batch interrupted
//! before its markers leaves entries that never count, and the next batch reuses their indexes
//! (the agent's retry has a new receive time, so it never matches the orphan).
//!
//! Finding a host's head without reading its whole chain: `chain_heads` (one row per host
//! after merges, written only after the markers, so it is never ahead of the committed chain)
//! or this collector's cache gives a hint; the committed entries at or above the hint decide.
//! Entries another collector appended after the hint are found the same way, so collectors
//! sharing a database extend one chain per host (two collectors writing the same host in the
//! same instant can still fork it, which `export verify` then reports).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::writer::{list, literal};
use super::{ClickHouseStore, Core, ch, nanos};
use crate::auth::Role;
use crate::store::chain::{AgentKey, ChainEntry, ChainHead, KeyOutcome, KeySource, SignedBody};
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
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(toDateTime(intDiv(received_at, 1000000000)))
            ORDER BY (machine_id, chain_index)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.chain_heads (
                machine_id String, chain_index UInt64, chain_hash String
            ) ENGINE = ReplacingMergeTree(chain_index) ORDER BY machine_id"
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

/// A row of `report_chain`.
#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
pub(super) struct ChainRow {
    pub(super) machine_id: String,
    pub(super) chain_index: u64,
    pub(super) agent: String,
    pub(super) seq: u64,
    pub(super) batch_id: String,
    pub(super) received_at: i64,
    pub(super) body_sha256: String,
    pub(super) body_gz: String,
    pub(super) signature: String,
    pub(super) public_key: String,
    pub(super) prev_hash: String,
    pub(super) chain_hash: String,
}

/// A row of `chain_heads`.
#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
pub(super) struct HeadRow {
    pub(super) machine_id: String,
    pub(super) chain_index: u64,
    pub(super) chain_hash: String,
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

/// What a report brings to its chain entry, built on the caller's task (gzip and hex).
pub(super) struct Prepared {
    body_gz: String,
    signature: Option<[u8; 64]>,
    public_key: Option<[u8; 32]>,
}

pub(super) fn prepare(request: &IngestRequest) -> Result<Prepared, StoreError> {
    let signed = request.signed.as_ref();
    let body_gz = signed
        .map(|s| vigil_shared::codec::gzip(&s.json))
        .transpose()
        .map_err(|e| StoreError::backend("compress the signed body", e))?;
    Ok(Prepared {
        body_gz: body_gz.map(hex::encode).unwrap_or_default(),
        signature: signed.map(|s| s.signature),
        public_key: signed.map(|s| s.public_key),
    })
}

/// The entry that appends `request` after `head` (index, hash) of its host's chain.
pub(super) fn entry(
    request: &IngestRequest,
    prepared: Prepared,
    received_at: i64,
    head: (u64, [u8; 32]),
) -> ChainRow {
    let (prev_index, prev_hash) = head;
    let index = prev_index + 1;
    let hash = crate::store::chain::link(
        &prev_hash,
        index,
        received_at,
        &request.body_sha256,
        prepared.signature.as_ref(),
        prepared.public_key.as_ref(),
    );
    ChainRow {
        machine_id: request.report.host.machine_id.clone(),
        chain_index: index,
        agent: request.agent.clone(),
        seq: request.report.seq,
        batch_id: request.report.batch_id.clone(),
        received_at,
        body_sha256: hex::encode(request.body_sha256),
        body_gz: prepared.body_gz,
        signature: prepared.signature.map(hex::encode).unwrap_or_default(),
        public_key: prepared.public_key.map(hex::encode).unwrap_or_default(),
        prev_hash: hex::encode(prev_hash),
        chain_hash: hex::encode(hash),
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct HeadRead {
    machine_id: String,
    head_index: u64,
    head_hash: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Candidate {
    machine_id: String,
    chain_index: u64,
    chain_hash: String,
}

/// Hosts per query when many heads are read (the export reads every host's).
const HOSTS_PER_QUERY: usize = 500;

impl Core {
    /// The head (index, hash) of each host's committed chain; hosts without one are absent.
    pub(super) async fn chain_heads_of(
        &self,
        hosts: &BTreeSet<&str>,
    ) -> Result<HashMap<String, (u64, [u8; 32])>, StoreError> {
        let mut heads = HashMap::new();
        let hosts: Vec<&str> = hosts.iter().copied().collect();
        for chunk in hosts.chunks(HOSTS_PER_QUERY) {
            self.chain_heads_chunk(chunk, &mut heads).await?;
        }
        Ok(heads)
    }

    async fn chain_heads_chunk(
        &self,
        hosts: &[&str],
        heads: &mut HashMap<String, (u64, [u8; 32])>,
    ) -> Result<(), StoreError> {
        // Hints: this collector's cache, else `chain_heads`.
        let mut hints: HashMap<String, (u64, [u8; 32])> = HashMap::new();
        let mut unknown = Vec::new();
        {
            let cache = self.chain_cache.lock().unwrap_or_else(|e| e.into_inner());
            for host in hosts {
                match cache.get(*host) {
                    Some(head) => {
                        hints.insert((*host).to_string(), *head);
                    }
                    None => unknown.push(*host),
                }
            }
        }
        if !unknown.is_empty() {
            let sql = format!(
                "SELECT machine_id, max(chain_index) AS head_index,
                        argMax(chain_hash, chain_index) AS head_hash
                 FROM chain_heads WHERE machine_id IN ({}) GROUP BY machine_id",
                list(unknown.iter().map(|h| literal(h)))
            );
            for row in self
                .client
                .query(&sql)
                .fetch_all::<HeadRead>()
                .await
                .map_err(ch("read chain heads"))?
            {
                let hash = unhex::<32>(&row.head_hash, "chain head hash")?;
                hints.insert(row.machine_id, (row.head_index, hash));
            }
        }
        // Entries at or above each hint (the whole chain of a host without one).
        // One set lookup and one map lookup per row (an OR per host is far slower to run).
        let host_set = list(hosts.iter().map(|h| literal(h)));
        let hinted: Vec<(&str, u64)> = hosts
            .iter()
            .filter_map(|h| hints.get(*h).map(|(index, _)| (*h, *index)))
            .collect();
        let ranges = if hinted.is_empty() {
            format!("machine_id IN ({host_set})")
        } else {
            format!(
                "machine_id IN ({host_set}) AND chain_index >= transform(machine_id, [{}], \
                 CAST([{}] AS Array(UInt64)), toUInt64(0))",
                list(hinted.iter().map(|(h, _)| literal(h))),
                list(hinted.iter().map(|(_, i)| i.to_string()))
            )
        };
        // Only committed entries count (their report's row, same receive time); one round trip.
        let sql = format!(
            "SELECT machine_id, chain_index, chain_hash FROM report_chain
             WHERE ({ranges}) AND (machine_id, agent, seq, received_at) IN (
                 SELECT machine_id, agent, seq, received_at FROM reports
                 WHERE machine_id IN ({host_set}) AND (machine_id, agent, seq) IN (
                     SELECT machine_id, agent, seq FROM report_chain WHERE {ranges}))"
        );
        let committed = self
            .client
            .query(&sql)
            .fetch_all::<Candidate>()
            .await
            .map_err(ch("read chain entries"))?;
        for (host, hint) in hints {
            heads.insert(host, hint);
        }
        for c in committed {
            let newer = heads
                .get(&c.machine_id)
                .is_none_or(|(index, _)| c.chain_index > *index);
            if newer {
                let hash = unhex::<32>(&c.chain_hash, "chain entry hash")?;
                heads.insert(c.machine_id, (c.chain_index, hash));
            }
        }
        Ok(())
    }

    /// Records heads a batch committed (after its markers).
    pub(super) fn remember_heads(&self, heads: &[HeadRow]) -> Result<(), StoreError> {
        let mut cache = self.chain_cache.lock().unwrap_or_else(|e| e.into_inner());
        for head in heads {
            let hash = unhex::<32>(&head.chain_hash, "chain head hash")?;
            cache.insert(head.machine_id.clone(), (head.chain_index, hash));
        }
        Ok(())
    }

    /// Forgets the heads of hosts whose batch failed (its markers may or may not be stored).
    pub(super) fn forget_heads<'a>(&self, hosts: impl Iterator<Item = &'a str>) {
        let mut cache = self.chain_cache.lock().unwrap_or_else(|e| e.into_inner());
        for host in hosts {
            cache.remove(host);
        }
    }
}

/// Committed entries only: their report's row exists with the same receive time.
const COMMITTED: &str = "(machine_id, agent, seq, received_at) IN (
        SELECT machine_id, agent, seq, received_at FROM reports WHERE machine_id = ?)";

pub(super) async fn chain_heads(store: &ClickHouseStore) -> Result<Vec<ChainHead>, StoreError> {
    let hosts = store
        .client
        // Every host with an entry (hints may lag behind a batch that was just written).
        .query("SELECT DISTINCT machine_id FROM report_chain")
        .fetch_all::<String>()
        .await
        .map_err(ch("read chain heads"))?;
    let hosts: BTreeSet<&str> = hosts.iter().map(String::as_str).collect();
    let mut heads: Vec<ChainHead> = store
        .chain_heads_of(&hosts)
        .await?
        .into_iter()
        .map(|(machine_id, (index, hash))| ChainHead {
            machine_id,
            index,
            hash,
        })
        .collect();
    heads.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
    Ok(heads)
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Bounds {
    entries: u64,
    lowest: u64,
    highest: u64,
}

pub(super) async fn chain_bounds(
    store: &ClickHouseStore,
    machine_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    seqs: &[u64],
) -> Result<Option<(u64, u64)>, StoreError> {
    let (from, to) = (nanos(from, "from")?, nanos(to, "to")?);
    let by_seq = if seqs.is_empty() {
        String::new()
    } else {
        format!(" OR seq IN ({})", list(seqs.iter().map(|s| s.to_string())))
    };
    let sql = format!(
        "SELECT count() AS entries, min(chain_index) AS lowest, max(chain_index) AS highest
         FROM report_chain
         WHERE machine_id = ? AND ((received_at >= ? AND received_at < ?){by_seq})
           AND {COMMITTED}"
    );
    let bounds = store
        .client
        .query(&sql)
        .bind(machine_id)
        .bind(from)
        .bind(to)
        .bind(machine_id)
        .fetch_one::<Bounds>()
        .await
        .map_err(ch("read chain bounds"))?;
    Ok((bounds.entries > 0).then_some((bounds.lowest, bounds.highest)))
}

pub(super) async fn chain_page(
    store: &ClickHouseStore,
    machine_id: &str,
    after: u64,
    through: u64,
    limit: usize,
) -> Result<Vec<ChainEntry>, StoreError> {
    let sql = format!(
        "SELECT ?fields FROM report_chain
         WHERE machine_id = ? AND chain_index > ? AND chain_index <= ? AND {COMMITTED}
         ORDER BY chain_index LIMIT ?"
    );
    let rows = store
        .client
        .query(&sql)
        .bind(machine_id)
        .bind(after)
        .bind(through)
        .bind(machine_id)
        .bind(u64::try_from(limit).unwrap_or(u64::MAX))
        .fetch_all::<ChainRow>()
        .await
        .map_err(ch("read the chain"))?;
    rows.into_iter().map(ChainRow::into_entry).collect()
}

impl ChainRow {
    fn into_entry(self) -> Result<ChainEntry, StoreError> {
        let signed = if self.signature.is_empty() {
            None
        } else {
            let gz = hex::decode(&self.body_gz).map_err(|_| corrupt("signed report body"))?;
            let json = vigil_shared::codec::gunzip_limited(&gz, usize::MAX / 2)
                .map_err(|_| corrupt("signed report body"))?;
            Some(SignedBody {
                json,
                signature: unhex::<64>(&self.signature, "report signature")?,
                public_key: unhex::<32>(&self.public_key, "report public key")?,
            })
        };
        Ok(ChainEntry {
            index: self.chain_index,
            received_at: DateTime::from_timestamp_nanos(self.received_at),
            body_sha256: unhex::<32>(&self.body_sha256, "report body hash")?,
            prev_hash: unhex::<32>(&self.prev_hash, "chain entry prev hash")?,
            chain_hash: unhex::<32>(&self.chain_hash, "chain entry hash")?,
            signed,
            machine_id: self.machine_id,
            agent: self.agent,
            seq: self.seq,
            batch_id: self.batch_id,
        })
    }
}
