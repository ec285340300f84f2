//! The batching writer: every report the collector receives goes through one task that groups
//! reports into a few large inserts, because ClickHouse wants few big inserts, not one per
//! report.
//!
//! - Grouping: the task takes every report waiting in the queue, up to `max_batch_rows`
//!   results, and waits at most `linger` for more when the batch is still small. Under load the
//!   batches grow by themselves (reports queue while the previous batch is written).
//! - Back-pressure: the queue is bounded (`max_queued_reports`). A report that finds it full is
//!   refused at once with [`StoreError::Busy`] (the HTTP layer answers 503 with Retry-After
//!   and the agent keeps the report in its spool). A batch that ClickHouse does not finish
//!   within `batch_timeout` fails as a whole.
//! - Acknowledgement: a report is answered `Stored` only after every insert of its batch
//!   returned; when an insert fails, every report of the batch gets the error (rows already
//!   written without their `reports` row are invisible to reads, see `reports`).
//! - Duplicate checks are made for the whole batch at once (a few indexed queries), then
//!   report by report in arrival order, so that two copies of a report in one batch are a
//!   report and its duplicate.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::chain::{self, ChainRow, HeadRow};
use super::reports::{ReportRow, ResultRow, to_json};
use super::{Core, PRINCIPALS_LATEST, PrincipalRow, ch, nanos};
use crate::auth::Role;
use crate::store::{IngestOutcome, IngestRequest, StoreError};

/// How reports are grouped into inserts (`[storage.clickhouse]` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Reports waiting to be written; when full, reports are refused with 503.
    pub max_queued_reports: usize,
    /// Most result rows in one insert.
    pub max_batch_rows: usize,
    /// Longest wait for more reports when a batch is small.
    pub linger: Duration,
    /// Longest time ClickHouse gets to take one batch.
    pub batch_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_queued_reports: 1024,
            max_batch_rows: 200_000,
            linger: Duration::from_millis(5),
            batch_timeout: Duration::from_secs(30),
        }
    }
}

type Answer = oneshot::Sender<Result<IngestOutcome, StoreError>>;

enum Message {
    Report(Box<(IngestRequest, Prepared)>, Answer),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// The handle the store keeps; dropping it ends the task once the queue is drained.
pub(super) struct Writer {
    queue: mpsc::Sender<Message>,
    capacity: usize,
}

impl Writer {
    pub(super) fn spawn(core: Arc<Core>, config: WriterConfig) -> Writer {
        let capacity = config.max_queued_reports.max(1);
        let (queue, receiver) = mpsc::channel(capacity);
        tokio::spawn(run(core, receiver, config));
        Writer { queue, capacity }
    }

    /// Queues a report and waits for its outcome; refuses at once when the queue is full.
    pub(super) async fn submit(&self, request: IngestRequest) -> Result<IngestOutcome, StoreError> {
        // Rows are built here, on the caller's task, so that the writer task only checks and
        // inserts.
        let prepared = prepare(&request)?;
        let (answer, outcome) = oneshot::channel();
        match self
            .queue
            .try_send(Message::Report(Box::new((request, prepared)), answer))
        {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(StoreError::Busy {
                    queued: self.capacity,
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(StoreError::Closed),
        }
        outcome.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Waits until every report queued so far is written and answered.
    pub(super) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(core: Arc<Core>, mut receiver: mpsc::Receiver<Message>, config: WriterConfig) {
    while let Some(first) = receiver.recv().await {
        let mut batch: Vec<Pending> = Vec::new();
        let mut flushes = Vec::new();
        let mut rows = 0usize;
        let mut take =
            |message: Message, batch: &mut Vec<Pending>, flushes: &mut Vec<oneshot::Sender<()>>| {
                match message {
                    Message::Report(pending, answer) => {
                        let (request, prepared) = *pending;
                        rows += request.report.results.len().max(1);
                        batch.push((request, prepared, answer));
                    }
                    Message::Flush(done) => flushes.push(done),
                }
                rows
            };
        let mut total = take(first, &mut batch, &mut flushes);
        let lingering_until = tokio::time::Instant::now() + config.linger;
        while total < config.max_batch_rows && flushes.is_empty() {
            match receiver.try_recv() {
                Ok(message) => total = take(message, &mut batch, &mut flushes),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(lingering_until, receiver.recv()).await {
                        Ok(Some(message)) => total = take(message, &mut batch, &mut flushes),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        if !batch.is_empty() {
            write_batch(&core, batch, config.batch_timeout).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// What the batch's queries found already stored.
#[derive(Default)]
struct Known {
    active_agents: BTreeSet<String>,
    /// (agent, seq) → the first stored report with that key.
    seqs: HashMap<(String, u64), SeqRow>,
    /// (agent, batch id) → stored seq.
    batches: HashMap<(String, String), u64>,
    /// machine id → owner.
    owners: HashMap<String, String>,
    /// machine id → head (index, hash) of its committed chain.
    heads: HashMap<String, (u64, [u8; 32])>,
}

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct SeqRow {
    agent: String,
    seq: u64,
    batch_id: String,
    received_at: i64,
    body_sha256: String,
    machine_id: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BatchRow {
    agent: String,
    batch_id: String,
    seq: u64,
    machine_id: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct AgentSeq {
    agent: String,
    seq: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct OwnerRow {
    machine_id: String,
    owner: String,
}

#[derive(Debug, clickhouse::Row, Serialize)]
struct KeyRow {
    agent: String,
    seq: u64,
    batch_id: String,
    machine_id: String,
    received_at: i64,
    body_sha256: String,
    stored: i64,
}

#[derive(Debug, clickhouse::Row, Serialize)]
struct BatchIdRow {
    agent: String,
    batch_id: String,
    seq: u64,
    machine_id: String,
    received_at: i64,
}

/// A ClickHouse string literal.
pub(super) fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

pub(super) fn list<I: IntoIterator<Item = String>>(items: I) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

/// The outcome decided for one report of a batch.
enum Decision {
    /// Final whatever happens to the batch's inserts.
    Final(IngestOutcome),
    /// Depends on the batch being written: `Stored`, or a duplicate of a report earlier in the
    /// same batch.
    IfWritten(IngestOutcome),
}

/// A queued report: the request, its rows, where its outcome goes.
type Pending = (IngestRequest, Prepared, Answer);

async fn write_batch(core: &Core, batch: Vec<Pending>, timeout: Duration) {
    let (requests, prepared, answers): (Vec<IngestRequest>, Vec<Prepared>, Vec<Answer>) =
        batch.into_iter().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut r, mut p, mut a), (request, rows, answer)| {
                r.push(request);
                p.push(rows);
                a.push(answer);
                (r, p, a)
            },
        );
    let requests: Vec<&IngestRequest> = requests.iter().collect();
    let decided = tokio::time::timeout(timeout, async {
        // One writer per collector, and principals/enrollment writes take the same lock:
        // a revocation either precedes the batch's check or follows its inserts.
        let _guard = core.write_lock.lock().await;
        let known = core.known(&requests).await?;
        let (decisions, mut rows) = decide(&requests, prepared, known, core)?;
        core.insert_batch(&rows).await?;
        Ok::<_, StoreError>((decisions, std::mem::take(&mut rows.heads)))
    })
    .await
    .unwrap_or_else(|_| {
        Err(StoreError::BackendMessage {
            op: "write a batch of reports",
            message: format!("ClickHouse did not take the batch within {timeout:?}"),
        })
    });
    match decided {
        Ok((decisions, heads)) => {
            // Head hints, after the markers and off the answer's path: a hint that is late or
            // lost is only older than the head, which readers allow for (see `chain`).
            if !heads.is_empty() {
                tokio::spawn(record_heads(core.inserter.clone(), heads));
            }
            for (answer, decision) in answers.into_iter().zip(decisions) {
                let outcome = match decision {
                    Decision::Final(o) | Decision::IfWritten(o) => o,
                };
                let _ = answer.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::warn!(reports = answers.len(), error = %e, "a batch of reports was not stored");
            core.forget_heads(requests.iter().map(|r| r.report.host.machine_id.as_str()));
            let message = e.to_string();
            for answer in answers {
                let _ = answer.send(Err(StoreError::BackendMessage {
                    op: "store a report",
                    message: message.clone(),
                }));
            }
        }
    }
}

/// Inserts chain head hints into `chain_heads`.
async fn record_heads(inserter: clickhouse::Client, heads: Vec<HeadRow>) {
    let written = async {
        let mut insert = inserter.insert::<HeadRow>("chain_heads").await?;
        for head in &heads {
            insert.write(head).await?;
        }
        insert.end().await
    }
    .await;
    if let Err(e) = written {
        tracing::warn!(hosts = heads.len(), error = %e, "chain head hints not recorded");
    }
}

/// A report's rows, built before it is queued.
struct Prepared {
    results: Vec<ResultRow>,
    /// `stored` is given when the batch is decided.
    report: ReportRow,
    chain: chain::Prepared,
}

fn prepare(request: &IngestRequest) -> Result<Prepared, StoreError> {
    let report = &request.report;
    let machine_id = &report.host.machine_id;
    let received = nanos(request.received_at, "received_at")?;
    let mut results = Vec::with_capacity(report.results.len());
    for result in &report.results {
        results.push(ResultRow {
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
    Ok(Prepared {
        results,
        chain: chain::prepare(request)?,
        report: ReportRow {
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
            stored: 0,
        },
    })
}

/// Rows to insert for the accepted reports of a batch.
#[derive(Default)]
struct Rows {
    keys: Vec<KeyRow>,
    batch_ids: Vec<BatchIdRow>,
    results: Vec<ResultRow>,
    reports: Vec<ReportRow>,
    chain: Vec<ChainRow>,
    /// Hosts' new chain heads, written after the markers.
    heads: Vec<HeadRow>,
    /// Hosts claimed by this batch: machine id → owner.
    claimed: Vec<(String, String)>,
}

/// Decides every report of the batch in arrival order against what is stored and what the
/// batch's earlier reports do.
fn decide(
    requests: &[&IngestRequest],
    prepared: Vec<Prepared>,
    mut known: Known,
    core: &Core,
) -> Result<(Vec<Decision>, Rows), StoreError> {
    let mut rows = Rows::default();
    let mut decisions = Vec::with_capacity(requests.len());
    // Keys added by this batch (their outcome depends on the batch being written).
    let mut fresh_seqs: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut fresh_batches: BTreeSet<(String, String)> = BTreeSet::new();
    let mut fresh_owners: BTreeSet<String> = BTreeSet::new();
    for (request, prepared) in requests.iter().zip(prepared) {
        let report = &request.report;
        let agent = &request.agent;
        let sha = hex::encode(request.body_sha256);
        if !known.active_agents.contains(agent) {
            decisions.push(Decision::Final(IngestOutcome::AgentInactive {
                agent: agent.clone(),
            }));
            continue;
        }
        let seq_key = (agent.clone(), report.seq);
        if let Some(stored) = known.seqs.get(&seq_key) {
            let outcome = if stored.batch_id == report.batch_id {
                IngestOutcome::Duplicate {
                    seq: report.seq,
                    batch_id: stored.batch_id.clone(),
                    first_received_at: DateTime::from_timestamp_nanos(stored.received_at),
                    same_body: stored.body_sha256 == sha,
                }
            } else {
                IngestOutcome::SeqConflict {
                    seq: report.seq,
                    batch_id: report.batch_id.clone(),
                    stored_batch_id: stored.batch_id.clone(),
                }
            };
            decisions.push(if fresh_seqs.contains(&seq_key) {
                Decision::IfWritten(outcome)
            } else {
                Decision::Final(outcome)
            });
            continue;
        }
        let batch_key = (agent.clone(), report.batch_id.clone());
        if let Some(&stored_seq) = known.batches.get(&batch_key)
            && stored_seq != report.seq
        {
            let outcome = IngestOutcome::BatchConflict {
                seq: report.seq,
                batch_id: report.batch_id.clone(),
                stored_seq,
            };
            decisions.push(if fresh_batches.contains(&batch_key) {
                Decision::IfWritten(outcome)
            } else {
                Decision::Final(outcome)
            });
            continue;
        }
        let machine_id = &report.host.machine_id;
        if let Some(owner) = known.owners.get(machine_id)
            && owner != agent
        {
            let outcome = IngestOutcome::HostOwned {
                machine_id: machine_id.clone(),
                owner: owner.clone(),
            };
            decisions.push(if fresh_owners.contains(machine_id) {
                Decision::IfWritten(outcome)
            } else {
                Decision::Final(outcome)
            });
            continue;
        }

        let received = nanos(request.received_at, "received_at")?;
        let head = known
            .heads
            .get(machine_id)
            .copied()
            .unwrap_or((0, crate::store::chain::GENESIS));
        let entry = chain::entry(request, prepared.chain, received, head);
        let hash = unhex_hash(&entry.chain_hash)?;
        known
            .heads
            .insert(machine_id.clone(), (entry.chain_index, hash));
        rows.chain.push(entry);
        rows.results.extend(prepared.results);
        rows.reports.push(ReportRow {
            // Increasing in arrival order: the first report of a host is its owner's.
            stored: core.next_version(),
            ..prepared.report
        });
        rows.keys.push(KeyRow {
            agent: agent.clone(),
            seq: report.seq,
            batch_id: report.batch_id.clone(),
            machine_id: machine_id.clone(),
            received_at: received,
            body_sha256: sha.clone(),
            stored: core.next_version(),
        });
        rows.batch_ids.push(BatchIdRow {
            agent: agent.clone(),
            batch_id: report.batch_id.clone(),
            seq: report.seq,
            machine_id: machine_id.clone(),
            received_at: received,
        });
        known.seqs.insert(
            seq_key.clone(),
            SeqRow {
                agent: agent.clone(),
                seq: report.seq,
                batch_id: report.batch_id.clone(),
                received_at: received,
                body_sha256: sha,
                machine_id: machine_id.clone(),
            },
        );
        fresh_seqs.insert(seq_key);
        known.batches.insert(batch_key.clone(), report.seq);
        fresh_batches.insert(batch_key);
        if !known.owners.contains_key(machine_id) {
            known.owners.insert(machine_id.clone(), agent.clone());
            fresh_owners.insert(machine_id.clone());
            rows.claimed.push((machine_id.clone(), agent.clone()));
        }
        decisions.push(Decision::IfWritten(IngestOutcome::Stored {
            seq: report.seq,
            batch_id: report.batch_id.clone(),
        }));
    }
    let mut heads: HashMap<&str, HeadRow> = HashMap::new();
    for entry in &rows.chain {
        heads.insert(
            &entry.machine_id,
            HeadRow {
                machine_id: entry.machine_id.clone(),
                chain_index: entry.chain_index,
                chain_hash: entry.chain_hash.clone(),
            },
        );
    }
    rows.heads = heads.into_values().collect();
    Ok((decisions, rows))
}

fn unhex_hash(text: &str) -> Result<[u8; 32], StoreError> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt {
            what: "chain hash".into(),
        })
}

impl Core {
    /// Everything the batch's decisions depend on: four independent lookups at once (the
    /// agents, stored keys, host owners and chain heads), each a few indexed queries.
    async fn known(&self, requests: &[&IngestRequest]) -> Result<Known, StoreError> {
        let hosts: BTreeSet<&str> = requests
            .iter()
            .map(|r| r.report.host.machine_id.as_str())
            .collect();
        let (active_agents, keys, owners, heads) = tokio::join!(
            self.active_agents(requests),
            self.stored_keys(requests),
            self.owners_of(&hosts),
            self.chain_heads_of(&hosts),
        );
        let (batches, seqs) = keys?;
        Ok(Known {
            active_agents: active_agents?,
            seqs,
            batches,
            owners: owners?,
            heads: heads?,
        })
    }

    /// The batch's agents that are active agent principals.
    async fn active_agents(
        &self,
        requests: &[&IngestRequest],
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut known = Known::default();
        let agents: BTreeSet<&str> = requests.iter().map(|r| r.agent.as_str()).collect();
        let sql = format!(
            "SELECT * FROM ({PRINCIPALS_LATEST}) WHERE name IN ({})",
            list(agents.iter().map(|a| literal(a)))
        );
        for p in self
            .client
            .query(&sql)
            .fetch_all::<PrincipalRow>()
            .await
            .map_err(ch("read the reporting agents"))?
        {
            if p.revoked == 0 && p.role == Role::Agent.as_str() {
                known.active_agents.insert(p.name);
            }
        }

        Ok(known.active_agents)
    }

    /// Committed reports already stored under the batch's (agent, batch id) and (agent, seq).
    #[allow(clippy::type_complexity)]
    async fn stored_keys(
        &self,
        requests: &[&IngestRequest],
    ) -> Result<
        (
            HashMap<(String, String), u64>,
            HashMap<(String, u64), SeqRow>,
        ),
        StoreError,
    > {
        let mut known = Known::default();
        // Batch ids before sequence numbers: a report another collector commits between the
        // two queries is then seen by the second one as a duplicate, never as a batch id
        // reused with its own sequence number.
        let batch_keys: BTreeSet<(&str, &str)> = requests
            .iter()
            .map(|r| (r.agent.as_str(), r.report.batch_id.as_str()))
            .collect();
        let sql = format!(
            "SELECT agent, batch_id, seq, machine_id FROM report_batches
             WHERE (agent, batch_id) IN ({})",
            list(
                batch_keys
                    .iter()
                    .map(|(a, b)| format!("({}, {})", literal(a), literal(b)))
            )
        );
        let found = self
            .client
            .query(&sql)
            .fetch_all::<BatchRow>()
            .await
            .map_err(ch("look for reused batch ids"))?;
        let committed = self
            .committed(found.iter().map(|r| (&r.machine_id, &r.agent, r.seq)))
            .await?;
        for row in found {
            if committed.contains(&(row.agent.clone(), row.seq)) {
                known
                    .batches
                    .entry((row.agent, row.batch_id))
                    .or_insert(row.seq);
            }
        }

        // Keys are written before the `reports` row: only keys with that row count.
        let seq_keys: BTreeSet<(&str, u64)> = requests
            .iter()
            .map(|r| (r.agent.as_str(), r.report.seq))
            .collect();
        let sql = format!(
            "SELECT agent, seq, batch_id, received_at, body_sha256, machine_id FROM report_keys
             WHERE (agent, seq) IN ({}) ORDER BY stored",
            list(
                seq_keys
                    .iter()
                    .map(|(a, s)| format!("({}, {s})", literal(a)))
            )
        );
        let found = self
            .client
            .query(&sql)
            .fetch_all::<SeqRow>()
            .await
            .map_err(ch("look for duplicate reports"))?;
        let committed = self
            .committed(found.iter().map(|r| (&r.machine_id, &r.agent, r.seq)))
            .await?;
        for row in found {
            if committed.contains(&(row.agent.clone(), row.seq)) {
                known
                    .seqs
                    .entry((row.agent.clone(), row.seq))
                    .or_insert(row);
            }
        }

        Ok((known.batches, known.seqs))
    }

    /// The owners of these hosts (cached once known: an owner never changes).
    async fn owners_of(
        &self,
        hosts: &BTreeSet<&str>,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut known = Known::default();
        let mut unknown = Vec::new();
        {
            let cache = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            for &host in hosts {
                match cache.get(host) {
                    Some(owner) => {
                        known.owners.insert(host.to_string(), owner.clone());
                    }
                    None => unknown.push(host),
                }
            }
        }
        if !unknown.is_empty() {
            let sql = format!(
                "SELECT machine_id, argMin(agent, stored) AS owner FROM reports
                 WHERE machine_id IN ({}) GROUP BY machine_id",
                list(unknown.iter().map(|h| literal(h)))
            );
            let rows = self
                .client
                .query(&sql)
                .fetch_all::<OwnerRow>()
                .await
                .map_err(ch("read the hosts' owners"))?;
            let mut cache = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            for row in rows {
                cache.insert(row.machine_id.clone(), row.owner.clone());
                known.owners.insert(row.machine_id, row.owner);
            }
        }
        Ok(known.owners)
    }

    /// Which of these (machine id, agent, seq) have their `reports` row.
    async fn committed<'a>(
        &self,
        keys: impl Iterator<Item = (&'a String, &'a String, u64)>,
    ) -> Result<BTreeSet<(String, u64)>, StoreError> {
        let keys: BTreeSet<String> = keys
            .map(|(m, a, s)| format!("({}, {}, {s})", literal(m), literal(a)))
            .collect();
        if keys.is_empty() {
            return Ok(BTreeSet::new());
        }
        let sql = format!(
            "SELECT DISTINCT agent, seq FROM reports WHERE (machine_id, agent, seq) IN ({})",
            list(keys)
        );
        Ok(self
            .client
            .query(&sql)
            .fetch_all::<AgentSeq>()
            .await
            .map_err(ch("look for stored reports"))?
            .into_iter()
            .map(|r| (r.agent, r.seq))
            .collect())
    }

    /// Writes the batch: key rows and results first, the `reports` rows (the commit markers)
    /// last.
    async fn insert_batch(&self, rows: &Rows) -> Result<(), StoreError> {
        if rows.reports.is_empty() {
            return Ok(());
        }
        // The three detail inserts go at once; the commit markers only after all returned.
        let (keys, batch_ids, results, chain) = tokio::join!(
            self.insert_rows("report_keys", &rows.keys),
            self.insert_rows("report_batches", &rows.batch_ids),
            self.insert_rows("results", &rows.results),
            self.insert_rows("report_chain", &rows.chain),
        );
        keys?;
        batch_ids?;
        results?;
        chain?;
        self.insert_rows("reports", &rows.reports).await?;
        self.remember_heads(&rows.heads)?;
        let mut cache = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        for (machine_id, owner) in &rows.claimed {
            cache
                .entry(machine_id.clone())
                .or_insert_with(|| owner.clone());
        }
        Ok(())
    }

    async fn insert_rows<R>(&self, table: &str, rows: &[R]) -> Result<(), StoreError>
    where
        R: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        let mut insert = self
            .inserter
            .insert::<R>(table)
            .await
            .map_err(ch("insert a batch of reports"))?;
        for row in rows {
            insert
                .write(row)
                .await
                .map_err(ch("insert a batch of reports"))?;
        }
        insert.end().await.map_err(ch("insert a batch of reports"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Duration as Span;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::store::clickhouse::test_server::TestServer;
    use crate::store::clickhouse::{ClickHouseConfig, ClickHouseStore};
    use crate::store::contract::new_principal;
    use crate::store::{Store, StoreStats};
    use crate::testutil;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("a'b\\c"), "'a\\'b\\\\c'");
        assert_eq!(literal(""), "''");
    }

    async fn open(server: &TestServer, database: &str, writer: WriterConfig) -> ClickHouseStore {
        ClickHouseStore::open(&ClickHouseConfig {
            url: server.url(),
            database: database.into(),
            user: "default".into(),
            password: String::new(),
            compression: true,
            max_queued_reports: writer.max_queued_reports,
            linger_ms: u64::try_from(writer.linger.as_millis()).unwrap(),
            ..ClickHouseConfig::default()
        })
        .await
        .unwrap()
    }

    fn request(agent: &str, host: &str, seq: u64) -> IngestRequest {
        let report = testutil::report(agent, host, seq);
        IngestRequest {
            agent: agent.into(),
            body_sha256: Sha256::digest(serde_json::to_vec(&report).unwrap()).into(),
            received_at: report.sent_at + Span::milliseconds(100),
            report,
            signed: None,
        }
    }

    /// Waits until the writer task holds the reports it took (it blocks on the write lock the
    /// test holds) so that the next ones stay queued.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_loses_nothing_accepted() {
        let Some(server) = TestServer::start_or_skip("clickhouse writer back-pressure") else {
            return;
        };
        let config = WriterConfig {
            max_queued_reports: 2,
            linger: Duration::ZERO,
            ..WriterConfig::default()
        };
        let store = Arc::new(open(&server, "vigil_writer_full", config).await);
        store
            .create_principal(new_principal("w-agent", Role::Agent))
            .await
            .unwrap();
        // ClickHouse "slow": the writer waits for the lock while reports keep arriving.
        let lock = store.write_lock.lock().await;
        let mut accepted = Vec::new();
        let submit = |seq: u64| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.ingest(request("w-agent", "w-host", seq)).await })
        };
        accepted.push(submit(1));
        settle().await;
        accepted.push(submit(2));
        accepted.push(submit(3));
        settle().await;
        let refused = store.ingest(request("w-agent", "w-host", 4)).await;
        assert!(
            matches!(refused, Err(StoreError::Busy { queued: 2 })),
            "{refused:?}"
        );
        drop(lock);
        for (i, task) in accepted.into_iter().enumerate() {
            let outcome = task.await.unwrap().unwrap();
            assert!(
                matches!(outcome, IngestOutcome::Stored { seq, .. } if seq == i as u64 + 1),
                "{outcome:?}"
            );
        }
        // The refused report is taken once there is room.
        assert!(matches!(
            store.ingest(request("w-agent", "w-host", 4)).await.unwrap(),
            IngestOutcome::Stored { seq: 4, .. }
        ));
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.reports, stats.hosts), (4, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copies_in_one_batch_are_a_report_and_its_duplicates() {
        let Some(server) = TestServer::start_or_skip("clickhouse writer batch duplicates") else {
            return;
        };
        let store = Arc::new(open(&server, "vigil_writer_dups", WriterConfig::default()).await);
        for agent in ["b-agent", "b-other"] {
            store
                .create_principal(new_principal(agent, Role::Agent))
                .await
                .unwrap();
        }
        let lock = store.write_lock.lock().await;
        let first = request("b-agent", "b-host", 1);
        let mut conflicting = request("b-agent", "b-host", 1);
        conflicting.report.batch_id = testutil::batch_id();
        let mut reused = request("b-agent", "b-host", 2);
        reused.report.batch_id = first.report.batch_id.clone();
        let claim = request("b-other", "b-host", 1);
        let mut tasks = Vec::new();
        for r in [first.clone(), first.clone(), conflicting, reused, claim] {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move { store.ingest(r).await }));
        }
        settle().await;
        drop(lock);
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().unwrap());
        }
        // Arrival order decides which copy is the report: count kinds, not positions.
        let count = |f: &dyn Fn(&IngestOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        assert_eq!(
            count(&|o| matches!(o, IngestOutcome::Stored { .. })),
            1,
            "{outcomes:?}"
        );
        assert_eq!(
            count(&|o| matches!(
                o,
                IngestOutcome::Duplicate {
                    same_body: true,
                    ..
                }
            )),
            1
        );
        assert_eq!(
            count(&|o| matches!(o, IngestOutcome::SeqConflict { .. })),
            1
        );
        assert_eq!(
            count(&|o| matches!(o, IngestOutcome::BatchConflict { .. })),
            1
        );
        assert_eq!(count(&|o| matches!(o, IngestOutcome::HostOwned { .. })), 1);
        let results = first.report.results.len() as u64;
        assert_eq!(
            store.stats().await.unwrap(),
            StoreStats {
                principals: 2,
                hosts: 1,
                reports: 1,
                results,
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_is_answered_with_an_error_and_stored_once_on_retry() {
        let Some(mut server) = TestServer::start_or_skip("clickhouse writer outage") else {
            return;
        };
        let store = open(&server, "vigil_writer_outage", WriterConfig::default()).await;
        store
            .create_principal(new_principal("o-agent", Role::Agent))
            .await
            .unwrap();
        let r = request("o-agent", "o-host", 1);
        server.stop();
        let failed = store.ingest(r.clone()).await;
        assert!(
            matches!(failed, Err(StoreError::BackendMessage { .. })),
            "{failed:?}"
        );
        server.resume().unwrap();
        assert!(matches!(
            store.ingest(r.clone()).await.unwrap(),
            IngestOutcome::Stored { .. }
        ));
        assert!(matches!(
            store.ingest(r.clone()).await.unwrap(),
            IngestOutcome::Duplicate { .. }
        ));
        // A second store (another collector on the same database) sees the report as stored.
        let other = open(&server, "vigil_writer_outage", WriterConfig::default()).await;
        assert!(matches!(
            other.ingest(r.clone()).await.unwrap(),
            IngestOutcome::Duplicate { .. }
        ));
        assert_eq!(other.stats().await.unwrap().reports, 1);
        store.close().await.unwrap();
        assert!(matches!(store.ingest(r).await, Err(StoreError::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn orphan_chain_entries_never_count_and_collectors_extend_one_chain() {
        let Some(server) = TestServer::start_or_skip("clickhouse chain") else {
            return;
        };
        let a = open(&server, "vigil_writer_chain", WriterConfig::default()).await;
        a.create_principal(new_principal("c-agent", Role::Agent))
            .await
            .unwrap();
        for seq in 1..=2 {
            a.ingest(request("c-agent", "c-host", seq)).await.unwrap();
        }
        // A batch cut off after its detail rows: an entry at index 3 without its report row.
        let orphan = request("c-agent", "c-host", 3);
        let head = a.chain_heads().await.unwrap();
        let head = (head[0].index, head[0].hash);
        let row = chain::entry(
            &orphan,
            chain::prepare(&orphan).unwrap(),
            nanos(orphan.received_at, "received_at").unwrap() - 1,
            head,
        );
        a.insert_rows("report_chain", &[row]).await.unwrap();
        // Another collector (no cache) stores seq 3, then this one (cache at 2) stores seq 4.
        let b = open(&server, "vigil_writer_chain", WriterConfig::default()).await;
        assert!(matches!(
            b.ingest(orphan).await.unwrap(),
            IngestOutcome::Stored { .. }
        ));
        assert!(matches!(
            a.ingest(request("c-agent", "c-host", 4)).await.unwrap(),
            IngestOutcome::Stored { .. }
        ));
        for store in [&a, &b] {
            let entries = store.chain_page("c-host", 0, u64::MAX, 100).await.unwrap();
            assert_eq!(
                entries.iter().map(|e| (e.index, e.seq)).collect::<Vec<_>>(),
                [(1, 1), (2, 2), (3, 3), (4, 4)]
            );
            let mut prev = crate::store::chain::GENESIS;
            for e in &entries {
                assert_eq!(e.prev_hash, prev, "entry {}", e.index);
                assert_eq!(e.expected_hash(), Some(e.chain_hash));
                prev = e.chain_hash;
            }
            let heads = store.chain_heads().await.unwrap();
            assert_eq!(heads.len(), 1);
            assert_eq!((heads[0].index, heads[0].hash), (4, prev));
            let bounds = store
                .chain_bounds(
                    "c-host",
                    testutil::t0() - Span::days(1),
                    testutil::t0(),
                    &[3],
                )
                .await
                .unwrap();
            assert_eq!(bounds, Some((3, 3)));
        }
    }
}
