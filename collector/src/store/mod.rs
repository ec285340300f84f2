//! Evidence storage behind one [`Store`] trait: principals (who may talk to the collector),
//! reports and their results, each host's latest state, and result history.
//!
//! The trait speaks in `vigil_shared` wire types plus the domain types below; each backend keeps
//! its own row types private and converts in one place. Every implementation must pass the
//! suite in [`contract`] (run against SQLite in this crate's tests). Writes that return `Ok` are
//! durable: a report is acknowledged to the agent only after its transaction is committed.
//!
//! Times: every stored result keeps `observed_at` (agent clock, when the facts were read),
//! `received_at` (collector clock, when the report arrived) and the period it covers. The
//! covered period is derived, not sent: a result is evidence from its `observed_at` until the
//! next observation of the same check on the same host (`until = None` while it is the latest).
//! That is the honest claim — the agent saw the state at `observed_at` and nothing newer is
//! known; whether a long-open period is stale is for the evaluator to judge against `now`.

pub mod chain;
pub mod clickhouse;
pub mod enrollment;
pub(crate) mod point_in_time;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
pub(crate) mod contract_enrollment;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use vigil_shared::report::ValidationError;
use vigil_shared::{CheckResult, OsRelease, Report, Status};

use crate::auth::{Role, TokenHash};
use crate::evaluate::nonconformities::{NcAction, NcChange};
use crate::evaluate::{
    ControlState, HostFacts, KpiEvaluation, KpiValue, NcEvent, Nonconformity, ObjectiveState,
    Verdict, VerdictState,
};
use chain::{AgentKey, ChainEntry, ChainHead, KeyOutcome, KeySource};
use enrollment::{EnrollOutcome, EnrollRequest, Enrollment, EnrollmentToken, NewEnrollmentToken};

/// Earliest time a store can hold (nanoseconds in an `i64`, as SQLite and ClickHouse's
/// `DateTime64(9)` do): 1677-09-21.
pub fn min_storable_time() -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::MIN)
}

/// Latest time a store can hold: 2262-04-11.
pub fn max_storable_time() -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::MAX)
}

/// Problems that make a schema-valid report impossible to store, with their JSON paths, so
/// that the client gets a 422 instead of a store failure it would retry forever.
pub fn storage_limits(report: &Report) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let in_range = |t: &DateTime<Utc>| t.timestamp_nanos_opt().is_some();
    let range_message = || {
        format!(
            "timestamp outside the storable range {} .. {}",
            min_storable_time().to_rfc3339(),
            max_storable_time().to_rfc3339()
        )
    };
    if !in_range(&report.sent_at) {
        errors.push(ValidationError {
            path: "sent_at".into(),
            message: range_message(),
        });
    }
    for (i, result) in report.results.iter().enumerate() {
        if !in_range(&result.observed_at) {
            errors.push(ValidationError {
                path: format!("results[{i}].observed_at"),
                message: range_message(),
            });
        }
        if i64::try_from(result.duration_ms).is_err() {
            errors.push(ValidationError {
                path: format!("results[{i}].duration_ms"),
                message: format!("must be at most {}", i64::MAX),
            });
        }
    }
    errors
}

/// Someone (an agent or a person) holding a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// Unique name; for an agent it is also the `agent.id` its reports must carry.
    pub name: String,
    pub role: Role,
    /// Labels assigned by the operator (`agents add --labels`), not by the agent itself.
    pub labels: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// Set once the principal's token is revoked; revoked principals authenticate nowhere.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the current token stops working (`--expires-in`); `None` never expires. Set anew
    /// by every rotation.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Not revoked; says nothing about expiry, see [`Principal::is_expired`].
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether the token has expired at `now` (an expiry instant itself is already too late).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A principal to create, with the hash of its freshly issued token.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub name: String,
    pub role: Role,
    pub labels: BTreeMap<String, String>,
    pub token_hash: TokenHash,
    pub created_at: DateTime<Utc>,
    /// When the token stops working; `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One report to store, on behalf of the agent that authenticated.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// The authenticated agent's name (equal to `report.agent.id`, checked by the caller).
    pub agent: String,
    /// A report that passed [`Report::validate`] and [`storage_limits`].
    pub report: Report,
    /// Collector clock when the request arrived.
    pub received_at: DateTime<Utc>,
    /// SHA-256 of the decompressed body, kept to tell a faithful retry from a different report
    /// that reuses a sequence number and batch id.
    pub body_sha256: [u8; 32],
    /// The signed JSON bytes (whose SHA-256 is `body_sha256`), the agent's signature and the
    /// key it verified against, kept for offline verification. The HTTP ingest always sets it;
    /// `None` stores an unsigned report (chained with a zero signature).
    pub signed: Option<chain::SignedBody>,
}

/// What became of an ingest request. Every variant but `Stored` left the store unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// Committed durably.
    Stored { seq: u64, batch_id: String },
    /// This `(agent, seq)` was already stored with the same batch id: a retry.
    Duplicate {
        seq: u64,
        batch_id: String,
        first_received_at: DateTime<Utc>,
        /// False when the retry's body differs from the stored one (an agent bug, not an
        /// attack: the agent is authenticated); the first body wins either way.
        same_body: bool,
    },
    /// This `(agent, seq)` is already stored with another batch id.
    SeqConflict {
        seq: u64,
        batch_id: String,
        stored_batch_id: String,
    },
    /// This batch id is already stored under another sequence number of the same agent.
    BatchConflict {
        seq: u64,
        batch_id: String,
        stored_seq: u64,
    },
    /// The host is bound to another agent.
    HostOwned { machine_id: String, owner: String },
    /// The agent was revoked (or is not an agent) by the time the write ran.
    AgentInactive { agent: String },
}

/// Number of latest results per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
    pub no_data: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: Status, n: u64) {
        match status {
            Status::Pass => self.pass += n,
            Status::Fail => self.fail += n,
            Status::Error => self.error += n,
            Status::NoData => self.no_data += n,
        }
    }
}

/// A host as the collector knows it: identity from its latest report, ownership, activity.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSummary {
    pub machine_id: String,
    pub hostname: String,
    pub os: OsRelease,
    pub kernel: Option<String>,
    /// The agent this host is bound to (the first one that reported it).
    pub agent: String,
    /// The agent software version of the latest report received for this host.
    pub agent_version: String,
    /// Labels the agent sends (from its own configuration).
    pub labels: BTreeMap<String, String>,
    /// Labels the operator assigned to the agent on the collector.
    pub assigned_labels: BTreeMap<String, String>,
    /// Collector clock at the first and latest report received.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Highest sequence number stored for this host.
    pub last_seq: u64,
    /// Status of the latest result of every check ever reported for this host.
    pub status_counts: StatusCounts,
}

/// The period a stored result is evidence for (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    /// The next observation of the same check; `None` while this is the newest.
    pub until: Option<DateTime<Utc>>,
}

/// One stored result with where and when it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub result: CheckResult,
    pub seq: u64,
    pub batch_id: String,
    pub received_at: DateTime<Utc>,
    pub covers: Period,
}

/// A host with its latest result per check.
#[derive(Debug, Clone, PartialEq)]
pub struct HostDetail {
    pub host: HostSummary,
    /// Ordered by check id.
    pub results: Vec<StoredResult>,
}

/// Results of one check on one host whose covered period overlaps `[from, to)`.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub machine_id: String,
    pub check: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Most results returned.
    pub limit: usize,
}

/// Answer to a [`HistoryQuery`], oldest observation first.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub results: Vec<StoredResult>,
    /// More results matched than `limit`.
    pub truncated: bool,
}

// ---- Evidence export (issue 5): paged reads over a period --------------------------------

/// Where an [`EvidencePageQuery`] resumes: the key of the last record of the previous page.
/// Records are ordered by exactly these fields; `(machine_id, check, observed_at, seq)` is
/// unique because a host belongs to one agent and a report carries a check once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvidenceKey {
    pub machine_id: String,
    pub check: String,
    pub observed_at: DateTime<Utc>,
    pub seq: u64,
}

/// One page of the stored results of every host and check whose covered period overlaps
/// `[from, to)` (the same rule as [`HistoryQuery`]), in [`EvidenceKey`] order.
#[derive(Debug, Clone)]
pub struct EvidencePageQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Only records strictly after this key (`None`: from the start).
    pub after: Option<EvidenceKey>,
    /// Most records returned; fewer means the last page.
    pub limit: usize,
}

/// A stored result with the host it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRecord {
    pub machine_id: String,
    pub stored: StoredResult,
}

impl EvidenceRecord {
    pub fn key(&self) -> EvidenceKey {
        EvidenceKey {
            machine_id: self.machine_id.clone(),
            check: self.stored.result.check.clone(),
            observed_at: self.stored.result.observed_at,
            seq: self.stored.seq,
        }
    }
}

/// Row counts, for readiness checks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub principals: u64,
    pub hosts: u64,
    pub reports: u64,
    pub results: u64,
}

/// What the evaluation engine saved, enough to resume after a restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineState {
    /// Current verdict of every judged (host, rule).
    pub verdicts: Vec<VerdictState>,
    /// Current status of every control.
    pub controls: Vec<ControlState>,
    /// Latest measurement and analysis per KPI.
    pub kpi_values: Vec<KpiValue>,
    pub kpi_evaluations: Vec<KpiEvaluation>,
    /// Current status of every objective.
    pub objectives: Vec<ObjectiveState>,
    /// Nonconformities that are not closed.
    pub active_nonconformities: Vec<Nonconformity>,
    /// The latest closed nonconformity per key (for recurrences).
    pub last_closed: std::collections::HashMap<String, u64>,
    /// The engine clock at the end of the last saved evaluation.
    pub last_tick: Option<DateTime<Utc>>,
}

/// Everything one evaluation writes, committed in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationBatch {
    /// The engine clock of this evaluation.
    pub at: DateTime<Utc>,
    /// Current verdict states to save (new or changed).
    pub verdicts: Vec<VerdictState>,
    /// Verdict changes worth a history row (a subset of `verdicts`).
    pub verdict_changes: Vec<VerdictState>,
    /// (machine id, rule) pairs no longer judged (host left the scope, rule removed).
    pub verdicts_dropped: Vec<(String, String)>,
    /// Current status of every control.
    pub controls: Vec<ControlState>,
    /// Control status changes worth a history row.
    pub control_changes: Vec<ControlState>,
    pub kpi_values: Vec<KpiValue>,
    pub kpi_evaluations: Vec<KpiEvaluation>,
    /// Objective status changes.
    pub objective_changes: Vec<ObjectiveState>,
    pub nc_changes: Vec<NcChange>,
}

/// What saving an evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedEvaluation {
    /// Ids given to new nonconformities, in the order of the batch's new ones.
    pub opened: Vec<u64>,
    /// Changes skipped because a person changed the nonconformity meanwhile.
    pub conflicts: usize,
}

/// A verdict as it stood at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictRecord {
    pub machine_id: String,
    pub rule: String,
    pub verdict: Verdict,
    pub reason: String,
    pub overdue: bool,
    pub exception: Option<String>,
    /// Since when it has been so.
    pub since: DateTime<Utc>,
}

/// A control's status as it stood at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRecord {
    pub state: ControlState,
    pub since: DateTime<Utc>,
}

/// An objective's status as it stood at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveRecord {
    pub state: ObjectiveState,
    pub since: DateTime<Utc>,
}

/// The latest measurement and analysis of a KPI at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiSnapshot {
    pub kpi: String,
    pub value: Option<KpiValue>,
    pub evaluation: Option<KpiEvaluation>,
}

/// A nonconformity with its events, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct NcDetail {
    pub nc: Nonconformity,
    pub events: Vec<NcEvent>,
}

/// What became of a person's action on a nonconformity.
#[derive(Debug, Clone, PartialEq)]
pub enum NcActionOutcome {
    Applied(Box<NcDetail>),
    /// The lifecycle does not allow it; the message says why.
    Refused(String),
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is closed")]
    Closed,
    /// The write queue is full (the backend is slower than the reports arrive): nothing was
    /// stored; the client should retry later.
    #[error("the store's write queue is full ({queued} reports waiting)")]
    Busy { queued: usize },
    #[error("an enrollment token named {name:?} already exists")]
    EnrollmentTokenExists { name: String },
    #[error("no enrollment token named {name:?}")]
    EnrollmentTokenNotFound { name: String },
    #[error("a principal named {name:?} already exists")]
    PrincipalExists { name: String },
    #[error("no principal named {name:?}")]
    PrincipalNotFound { name: String },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this collector knows ({supported}); run a newer vigil-collector"
    )]
    SchemaTooNew {
        path: std::path::PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{what} out of storable range")]
    OutOfRange { what: String },
    #[error("stored data is corrupt: {what}")]
    Corrupt { what: String },
    #[error("storage backend failed to {op}: {source}")]
    Backend {
        op: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("storage backend failed to {op}: {message}")]
    BackendMessage { op: &'static str, message: String },
}

impl StoreError {
    pub fn backend(
        op: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend {
            op,
            source: Box::new(source),
        }
    }
}

/// A collector that may evaluate the ISMS, in the election among collectors sharing a store
/// (see [`Store::evaluator_heartbeat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatorCandidate {
    /// Unique per collector process (host name, process id, start time).
    pub holder: String,
    /// When this process became a candidate; the longest-standing live candidate evaluates.
    pub since: DateTime<Utc>,
}

/// The evidence store. Implementations are cheap to share (`Arc<dyn Store>`), never block the
/// async worker threads, and pass [`contract`].
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates a principal; fails with [`StoreError::PrincipalExists`] if the name is taken.
    async fn create_principal(&self, new: NewPrincipal) -> Result<Principal, StoreError>;

    /// The principal holding the token with this hash, revoked ones included (the caller
    /// refuses those).
    async fn principal_by_token(&self, hash: TokenHash) -> Result<Option<Principal>, StoreError>;

    async fn principal_by_name(&self, name: &str) -> Result<Option<Principal>, StoreError>;

    /// All principals, ordered by name.
    async fn list_principals(&self) -> Result<Vec<Principal>, StoreError>;

    /// Revokes a principal's token; revoking twice keeps the first time.
    async fn revoke_principal(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Principal, StoreError>;

    /// Replaces a principal's token (the old one stops working at once), lifts a revocation
    /// and sets the new token's expiry (`None`: never). The principal keeps its name, role,
    /// labels and hosts.
    async fn rotate_token(
        &self,
        name: &str,
        hash: TokenHash,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Principal, StoreError>;

    /// Stores one report atomically, or explains why not (nothing stored in that case).
    async fn ingest(&self, request: IngestRequest) -> Result<IngestOutcome, StoreError>;

    /// Every host, ordered by hostname then machine id.
    async fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError>;

    async fn host_detail(&self, machine_id: &str) -> Result<Option<HostDetail>, StoreError>;

    /// `None` when the host is unknown.
    async fn result_history(&self, query: &HistoryQuery) -> Result<Option<History>, StoreError>;

    async fn stats(&self) -> Result<StoreStats, StoreError>;

    // ---- ISMS evaluation --------------------------------------------------------------

    /// Hosts with their latest result per check, for evaluation; with `since`, only hosts
    /// whose latest report was received at or after it.
    async fn evaluation_hosts(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<HostFacts>, StoreError>;

    /// The engine's saved state.
    async fn engine_state(&self) -> Result<EngineState, StoreError>;

    /// Nonconformities that are not closed, and the latest closed one per key: what the engine
    /// re-reads before each evaluation, since people change nonconformities meanwhile.
    async fn nonconformity_index(
        &self,
    ) -> Result<(Vec<Nonconformity>, std::collections::HashMap<String, u64>), StoreError>;

    /// Saves one evaluation atomically.
    async fn save_evaluation(&self, batch: EvaluationBatch) -> Result<SavedEvaluation, StoreError>;

    /// Verdicts as they stood at `at` (now when `None`), optionally for one host and/or rule.
    async fn verdicts_at(
        &self,
        at: Option<DateTime<Utc>>,
        machine_id: Option<&str>,
        rule: Option<&str>,
    ) -> Result<Vec<VerdictRecord>, StoreError>;

    /// Control status as it stood at `at` (now when `None`), in catalogue order.
    async fn controls_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ControlRecord>, StoreError>;

    /// The latest measurement and analysis of every KPI at `at` (now when `None`).
    async fn kpis_at(&self, at: Option<DateTime<Utc>>) -> Result<Vec<KpiSnapshot>, StoreError>;

    /// Measurements and analyses of one KPI in `[from, to]`, oldest first, at most `limit` each.
    async fn kpi_history(
        &self,
        kpi: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<KpiValue>, Vec<KpiEvaluation>), StoreError>;

    /// Objective status as it stood at `at` (now when `None`).
    async fn objectives_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ObjectiveRecord>, StoreError>;

    /// The nonconformity register as it stood at `at` (now when `None`): those opened by then,
    /// each in the state its events gave it by then.
    async fn nonconformities_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Nonconformity>, StoreError>;

    /// One nonconformity with every event.
    async fn nonconformity(&self, id: u64) -> Result<Option<NcDetail>, StoreError>;

    /// Events of every nonconformity in `[from, to]`, oldest first, with the nonconformity id.
    async fn nc_events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(u64, NcEvent)>, StoreError>;

    /// Applies a person's action to a nonconformity atomically.
    async fn nc_action(
        &self,
        id: u64,
        action: NcAction,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<NcActionOutcome, StoreError>;

    /// Records that `candidate` is alive at `now` and answers which live candidate (heartbeat
    /// within `ttl`) evaluates: the one with the oldest `since` (ties by holder name). Several
    /// collectors sharing one store so agree on one evaluator, and another takes over when it
    /// stops beating. A store only one process can use (SQLite, guarded by the evaluator lock
    /// file) answers `candidate` itself, which is the default.
    async fn evaluator_heartbeat(
        &self,
        candidate: &EvaluatorCandidate,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<EvaluatorCandidate, StoreError> {
        let _ = (now, ttl);
        Ok(candidate.clone())
    }

    /// Succeeds when the store can serve reads and accept writes.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Finishes queued writes and releases the store; later calls fail with
    /// [`StoreError::Closed`].
    async fn close(&self) -> Result<(), StoreError>;

    // Enrollment (see `enrollment`).

    /// Creates an enrollment token; fails with [`StoreError::EnrollmentTokenExists`] if the
    /// name is taken.
    async fn create_enrollment_token(
        &self,
        new: NewEnrollmentToken,
    ) -> Result<EnrollmentToken, StoreError>;

    /// Every enrollment token, ordered by name.
    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>, StoreError>;

    /// Revokes an enrollment token; revoking twice keeps the first time. Agents already
    /// enrolled with it are not affected (revoke them with `agents revoke`).
    async fn revoke_enrollment_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<EnrollmentToken, StoreError>;

    /// In one transaction: checks the enrollment token is usable at `request.at`, creates the
    /// agent principal with the token's labels, counts the use and records the enrollment.
    async fn enroll_agent(&self, request: EnrollRequest) -> Result<EnrollOutcome, StoreError>;

    /// Every enrollment, oldest first.
    async fn list_enrollments(&self) -> Result<Vec<Enrollment>, StoreError>;

    // ---- Evidence export (issue 5; additive) -----------------------------------------------

    /// One page of stored results whose covered period overlaps `[from, to)`, over every host
    /// and check, ordered by [`EvidenceKey`] (machine id, check, observed_at, seq), each with
    /// its covered period filled in exactly as [`Store::result_history`] does. Pages never
    /// hold more than `limit` records; the caller pages with `after` = the last key it got.
    async fn evidence_page(
        &self,
        query: &EvidencePageQuery,
    ) -> Result<Vec<EvidenceRecord>, StoreError>;

    /// Distinct collector receive times of one host's reports in `[from, to)`, strictly after
    /// `after`, oldest first, at most `limit` (page with `after` = the last time returned).
    /// Empty for an unknown host.
    async fn report_times_page(
        &self,
        machine_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError>;

    // ---- Tamper evidence (issue 8; additive, see `chain`) ---------------------------------

    /// Every key an agent has had, oldest first; the current one has no `retired_at`.
    async fn agent_keys(&self, agent: &str) -> Result<Vec<AgentKey>, StoreError>;

    /// Every agent's keys, by agent then registration time (for the export).
    async fn list_agent_keys(&self) -> Result<Vec<AgentKey>, StoreError>;

    /// Registers `public_key` for an active agent. `Enrollment` and `FirstUse` only register
    /// when the agent has no current key (the same key again is `Unchanged`, another is a
    /// `Conflict`); `Operator` retires the current key (if different) and registers this one.
    async fn register_agent_key(
        &self,
        agent: &str,
        public_key: [u8; 32],
        source: KeySource,
        at: DateTime<Utc>,
    ) -> Result<KeyOutcome, StoreError>;

    /// Retires the agent's current key (the next registration is trust on first use again);
    /// `None` when it had none. Fails with [`StoreError::PrincipalNotFound`] for an unknown
    /// name.
    async fn retire_agent_key(
        &self,
        agent: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<AgentKey>, StoreError>;

    /// The head of every host's chain, by machine id.
    async fn chain_heads(&self) -> Result<Vec<ChainHead>, StoreError>;

    /// The smallest and largest chain index of one host's reports that were received in
    /// `[from, to)` or carry one of `seqs`; `None` when there is none.
    async fn chain_bounds(
        &self,
        machine_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        seqs: &[u64],
    ) -> Result<Option<(u64, u64)>, StoreError>;

    /// Chain entries of one host with `after < index <= through`, in index order, at most
    /// `limit`, with their signed bodies.
    async fn chain_page(
        &self,
        machine_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<ChainEntry>, StoreError>;
}
