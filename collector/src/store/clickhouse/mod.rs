//! The ClickHouse store (work in progress, see `collector/README.md`): the [`Store`] trait on a
//! ClickHouse server through the official `clickhouse` crate, over HTTP with lz4 compression.
//!
//! Tested against Debian's clickhouse-server 18.16; the SQL is kept to what 18.16 and current
//! servers both accept (no `DateTime64`: times are `Int64` nanoseconds, as in SQLite; mutable
//! records are `ReplacingMergeTree` rows with a `version` column, read through `argMax` so that
//! reads never depend on background merges).
//!
//! Implemented so far: schema creation and its version table, principals, `stats`, `ping` and
//! `close`. The other methods answer [`StoreError::BackendMessage`] and the backend cannot yet
//! be selected in the settings.

mod chain;
mod enroll;
mod reports;
pub mod test_server;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{Role, TokenHash};
use crate::evaluate::nonconformities::NcAction;
use crate::evaluate::{HostFacts, NcEvent, Nonconformity};
use crate::store::enrollment::{
    EnrollOutcome, EnrollRequest, Enrollment, EnrollmentToken, NewEnrollmentToken,
};
use crate::store::{
    ControlRecord, EngineState, EvaluationBatch, History, HistoryQuery, HostDetail, HostSummary,
    IngestOutcome, IngestRequest, KpiSnapshot, NcActionOutcome, NcDetail, NewPrincipal,
    ObjectiveRecord, Principal, SavedEvaluation, Store, StoreError, StoreStats, VerdictRecord,
};

/// The schema version this collector writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Connection settings. `Debug` never shows the password.
#[derive(Clone, Default)]
pub struct ClickHouseConfig {
    /// `http://host:8123` or `https://host:8443` (TLS with rustls and the system's roots).
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// lz4 compression of inserted and selected data.
    pub compression: bool,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("compression", &self.compression)
            .finish()
    }
}

/// The SQL of the schema, in order; each statement is idempotent.
fn schema(db: &str) -> Vec<String> {
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_version (
                version UInt32, description String, applied_at Int64
            ) ENGINE = ReplacingMergeTree ORDER BY version"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.principals (
                name String, role String, token_sha256 String, labels_json String,
                created_at Int64, revoked UInt8, revoked_at Int64, version Int64
            ) ENGINE = ReplacingMergeTree(version) ORDER BY name"
        ),
    ]
    .into_iter()
    .chain(reports::schema(db))
    .chain(enroll::schema(db))
    .chain(chain::schema(db))
    .collect()
}

/// Principal columns, the latest version of each name.
const PRINCIPALS_LATEST: &str = "SELECT name, argMax(role, version) AS p_role,
        argMax(token_sha256, version) AS p_token, argMax(labels_json, version) AS p_labels,
        argMax(created_at, version) AS p_created, argMax(revoked, version) AS p_revoked,
        argMax(revoked_at, version) AS p_revoked_at
    FROM principals GROUP BY name";

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct PrincipalRow {
    name: String,
    role: String,
    token_sha256: String,
    labels_json: String,
    created_at: i64,
    revoked: u8,
    revoked_at: i64,
}

#[derive(Debug, clickhouse::Row, Serialize)]
struct PrincipalInsert {
    name: String,
    role: String,
    token_sha256: String,
    labels_json: String,
    created_at: i64,
    revoked: u8,
    revoked_at: i64,
    version: i64,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct VersionRow {
    version: u32,
    description: String,
    applied_at: i64,
}

impl PrincipalRow {
    fn into_principal(self) -> Result<Principal, StoreError> {
        let role: Role = self.role.parse().map_err(|e| StoreError::Corrupt {
            what: format!("principal {:?}: {e}", self.name),
        })?;
        let labels = serde_json::from_str(&self.labels_json).map_err(|e| StoreError::Corrupt {
            what: format!("principal {:?} labels: {e}", self.name),
        })?;
        Ok(Principal {
            name: self.name,
            role,
            labels,
            created_at: DateTime::from_timestamp_nanos(self.created_at),
            revoked_at: (self.revoked != 0)
                .then(|| DateTime::from_timestamp_nanos(self.revoked_at)),
        })
    }
}

fn ch(op: &'static str) -> impl FnOnce(clickhouse::error::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

fn nanos(t: DateTime<Utc>, what: &str) -> Result<i64, StoreError> {
    t.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::OutOfRange { what: what.into() })
}

fn not_yet(op: &'static str) -> StoreError {
    StoreError::BackendMessage {
        op,
        message: "not implemented by the ClickHouse store yet".into(),
    }
}

/// The ClickHouse store. Writes of one collector are serialised (the lock), so that the
/// check-then-insert steps that replace SQLite's unique constraints see each other.
pub struct ClickHouseStore {
    /// For queries (uncompressed, see `open`).
    client: clickhouse::Client,
    /// For inserts (lz4 when configured).
    inserter: clickhouse::Client,
    write_lock: tokio::sync::Mutex<()>,
    /// Last `version` given to a replacing row; versions increase even if the clock steps back.
    last_version: AtomicI64,
    closed: AtomicBool,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").finish_non_exhaustive()
    }
}

impl ClickHouseStore {
    /// Connects, creates the database and schema if missing and records the schema version;
    /// refuses a database written by a newer collector.
    pub async fn open(config: &ClickHouseConfig) -> Result<ClickHouseStore, StoreError> {
        if !is_identifier(&config.database) {
            return Err(StoreError::BackendMessage {
                op: "open the store",
                message: format!("invalid database name {:?}", config.database),
            });
        }
        // Reads are never compressed: 18.16 answers a compressed SELECT in a form the crate
        // reads as zero rows, silently. Inserts are compressed when configured.
        let mut base = clickhouse::Client::default()
            .with_url(&config.url)
            .with_user(&config.user)
            .with_validation(false)
            .with_compression(clickhouse::Compression::None);
        if !config.password.is_empty() {
            base = base.with_password(&config.password);
        }
        for statement in schema(&config.database) {
            base.query(&statement)
                .execute()
                .await
                .map_err(ch("create the schema"))?;
        }
        let client = base.with_database(&config.database);
        let inserter = client.clone().with_compression(if config.compression {
            clickhouse::Compression::Lz4
        } else {
            clickhouse::Compression::None
        });
        let found: Option<u32> = client
            .query("SELECT max(version) FROM schema_version")
            .fetch_one::<u32>()
            .await
            .ok();
        if let Some(found) = found
            && found > SCHEMA_VERSION
        {
            return Err(StoreError::SchemaTooNew {
                path: config.database.clone().into(),
                found: i64::from(found),
                supported: i64::from(SCHEMA_VERSION),
            });
        }
        if found.unwrap_or(0) < SCHEMA_VERSION {
            let mut insert = inserter
                .insert::<VersionRow>("schema_version")
                .await
                .map_err(ch("record the schema version"))?;
            insert
                .write(&VersionRow {
                    version: SCHEMA_VERSION,
                    description: "principals".into(),
                    applied_at: nanos(Utc::now(), "now")?,
                })
                .await
                .map_err(ch("record the schema version"))?;
            insert
                .end()
                .await
                .map_err(ch("record the schema version"))?;
        }
        Ok(ClickHouseStore {
            client,
            inserter,
            write_lock: tokio::sync::Mutex::new(()),
            last_version: AtomicI64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    fn next_version(&self) -> i64 {
        let now = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let mut last = self.last_version.load(Ordering::SeqCst);
        loop {
            let next = now.max(last.saturating_add(1));
            match self
                .last_version
                .compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    async fn principals_where(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Vec<Principal>, StoreError> {
        self.check_open()?;
        let sql = format!("SELECT * FROM ({PRINCIPALS_LATEST}) WHERE {condition} ORDER BY name");
        let rows = self
            .client
            .query(&sql)
            .bind(value)
            .fetch_all::<PrincipalRow>()
            .await
            .map_err(ch("read principals"))?;
        rows.into_iter().map(PrincipalRow::into_principal).collect()
    }

    async fn raw_principal(&self, name: &str) -> Result<Option<PrincipalRow>, StoreError> {
        let sql = format!("SELECT * FROM ({PRINCIPALS_LATEST}) WHERE name = ?");
        self.client
            .query(&sql)
            .bind(name)
            .fetch_optional::<PrincipalRow>()
            .await
            .map_err(ch("read a principal"))
    }

    async fn write_principal(&self, row: PrincipalRow) -> Result<Principal, StoreError> {
        let insert_row = PrincipalInsert {
            version: self.next_version(),
            name: row.name,
            role: row.role,
            token_sha256: row.token_sha256,
            labels_json: row.labels_json,
            created_at: row.created_at,
            revoked: row.revoked,
            revoked_at: row.revoked_at,
        };
        let mut insert = self
            .inserter
            .insert::<PrincipalInsert>("principals")
            .await
            .map_err(ch("write a principal"))?;
        insert
            .write(&insert_row)
            .await
            .map_err(ch("write a principal"))?;
        insert.end().await.map_err(ch("write a principal"))?;
        PrincipalRow {
            name: insert_row.name,
            role: insert_row.role,
            token_sha256: insert_row.token_sha256,
            labels_json: insert_row.labels_json,
            created_at: insert_row.created_at,
            revoked: insert_row.revoked,
            revoked_at: insert_row.revoked_at,
        }
        .into_principal()
    }
}

/// Database names are interpolated into DDL: letters, digits and `_` only.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[async_trait]
impl Store for ClickHouseStore {
    async fn create_principal(&self, new: NewPrincipal) -> Result<Principal, StoreError> {
        self.check_open()?;
        let _guard = self.write_lock.lock().await;
        let token = hex::encode(new.token_hash.0);
        if self.raw_principal(&new.name).await?.is_some() {
            return Err(StoreError::PrincipalExists { name: new.name });
        }
        let labels_json = serde_json::to_string(&new.labels).map_err(|e| StoreError::Corrupt {
            what: format!("labels: {e}"),
        })?;
        self.write_principal(PrincipalRow {
            name: new.name,
            role: new.role.as_str().into(),
            token_sha256: token,
            labels_json,
            created_at: nanos(new.created_at, "created_at")?,
            revoked: 0,
            revoked_at: 0,
        })
        .await
    }

    async fn principal_by_token(&self, hash: TokenHash) -> Result<Option<Principal>, StoreError> {
        Ok(self
            .principals_where("p_token = ?", &hex::encode(hash.0))
            .await?
            .into_iter()
            .next())
    }

    async fn principal_by_name(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        Ok(self
            .principals_where("name = ?", name)
            .await?
            .into_iter()
            .next())
    }

    async fn list_principals(&self) -> Result<Vec<Principal>, StoreError> {
        self.principals_where("name != ?", "").await
    }

    async fn revoke_principal(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Principal, StoreError> {
        self.check_open()?;
        let at = nanos(at, "revoked_at")?;
        let _guard = self.write_lock.lock().await;
        let Some(mut row) = self.raw_principal(name).await? else {
            return Err(StoreError::PrincipalNotFound { name: name.into() });
        };
        if row.revoked != 0 {
            return row.into_principal();
        }
        row.revoked = 1;
        row.revoked_at = at;
        self.write_principal(row).await
    }

    async fn rotate_token(&self, name: &str, hash: TokenHash) -> Result<Principal, StoreError> {
        self.check_open()?;
        let _guard = self.write_lock.lock().await;
        let Some(mut row) = self.raw_principal(name).await? else {
            return Err(StoreError::PrincipalNotFound { name: name.into() });
        };
        row.token_sha256 = hex::encode(hash.0);
        row.revoked = 0;
        row.revoked_at = 0;
        self.write_principal(row).await
    }

    async fn ingest(&self, request: IngestRequest) -> Result<IngestOutcome, StoreError> {
        self.ingest_report(&request).await
    }

    async fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError> {
        self.hosts(None).await
    }

    async fn host_detail(&self, machine_id: &str) -> Result<Option<HostDetail>, StoreError> {
        self.check_open()?;
        self.detail(machine_id).await
    }

    async fn result_history(&self, query: &HistoryQuery) -> Result<Option<History>, StoreError> {
        self.check_open()?;
        self.history(query).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.check_open()?;
        let principals = self
            .client
            .query("SELECT count() FROM (SELECT name FROM principals GROUP BY name)")
            .fetch_one::<u64>()
            .await
            .map_err(ch("count rows"))?;
        let (hosts, reports, results) = self.count_reports_and_results().await?;
        Ok(StoreStats {
            principals,
            hosts,
            reports,
            results,
        })
    }

    async fn evaluation_hosts(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<HostFacts>, StoreError> {
        self.check_open()?;
        self.facts(since).await
    }

    async fn engine_state(&self) -> Result<EngineState, StoreError> {
        Err(not_yet("read the engine state"))
    }

    async fn nonconformity_index(
        &self,
    ) -> Result<(Vec<Nonconformity>, std::collections::HashMap<String, u64>), StoreError> {
        Err(not_yet("read nonconformities"))
    }

    async fn save_evaluation(
        &self,
        _batch: EvaluationBatch,
    ) -> Result<SavedEvaluation, StoreError> {
        Err(not_yet("save an evaluation"))
    }

    async fn verdicts_at(
        &self,
        _at: Option<DateTime<Utc>>,
        _machine_id: Option<&str>,
        _rule: Option<&str>,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        Err(not_yet("read verdicts"))
    }

    async fn controls_at(
        &self,
        _at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ControlRecord>, StoreError> {
        Err(not_yet("read controls"))
    }

    async fn kpis_at(&self, _at: Option<DateTime<Utc>>) -> Result<Vec<KpiSnapshot>, StoreError> {
        Err(not_yet("read KPIs"))
    }

    async fn kpi_history(
        &self,
        _kpi: &str,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
        _limit: usize,
    ) -> Result<
        (
            Vec<crate::evaluate::KpiValue>,
            Vec<crate::evaluate::KpiEvaluation>,
        ),
        StoreError,
    > {
        Err(not_yet("read KPI history"))
    }

    async fn objectives_at(
        &self,
        _at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ObjectiveRecord>, StoreError> {
        Err(not_yet("read objectives"))
    }

    async fn nonconformities_at(
        &self,
        _at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Nonconformity>, StoreError> {
        Err(not_yet("read nonconformities"))
    }

    async fn nonconformity(&self, _id: u64) -> Result<Option<NcDetail>, StoreError> {
        Err(not_yet("read a nonconformity"))
    }

    async fn nc_events_between(
        &self,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
    ) -> Result<Vec<(u64, NcEvent)>, StoreError> {
        Err(not_yet("read nonconformity events"))
    }

    async fn nc_action(
        &self,
        _id: u64,
        _action: NcAction,
        _actor: &str,
        _at: DateTime<Utc>,
    ) -> Result<NcActionOutcome, StoreError> {
        Err(not_yet("change a nonconformity"))
    }

    async fn evidence_page(
        &self,
        _query: &crate::store::EvidencePageQuery,
    ) -> Result<Vec<crate::store::EvidenceRecord>, StoreError> {
        // The export needs the ISMS, which this store does not hold yet (refused at start).
        Err(not_yet("read evidence for an export"))
    }

    async fn report_times_page(
        &self,
        machine_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        self.check_open()?;
        let from = nanos(from, "from")?;
        let after = match after {
            Some(t) => nanos(t, "after")?.max(from.saturating_sub(1)),
            None => from.saturating_sub(1),
        };
        // A `reports` row exists only for a committed report (it is written last).
        let times = self
            .client
            .query(
                "SELECT DISTINCT received_at FROM reports \
                 WHERE machine_id = ? AND received_at > ? AND received_at < ? \
                 ORDER BY received_at LIMIT ?",
            )
            .bind(machine_id)
            .bind(after)
            .bind(nanos(to, "to")?)
            .bind(u64::try_from(limit).unwrap_or(u64::MAX))
            .fetch_all::<i64>()
            .await
            .map_err(ch("page report times"))?;
        Ok(times
            .into_iter()
            .map(DateTime::from_timestamp_nanos)
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check_open()?;
        self.client
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map_err(ch("answer a ping"))?;
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().await;
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn create_enrollment_token(
        &self,
        new: NewEnrollmentToken,
    ) -> Result<EnrollmentToken, StoreError> {
        self.check_open()?;
        self.create_token(new).await
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>, StoreError> {
        self.list_tokens().await
    }

    async fn revoke_enrollment_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<EnrollmentToken, StoreError> {
        self.check_open()?;
        self.revoke_token(name, at).await
    }

    async fn enroll_agent(&self, request: EnrollRequest) -> Result<EnrollOutcome, StoreError> {
        self.check_open()?;
        self.enroll(request).await
    }

    async fn list_enrollments(&self) -> Result<Vec<Enrollment>, StoreError> {
        self.enrollments().await
    }

    async fn agent_keys(
        &self,
        agent: &str,
    ) -> Result<Vec<crate::store::chain::AgentKey>, StoreError> {
        self.check_open()?;
        chain::agent_keys(self, Some(agent)).await
    }

    async fn list_agent_keys(&self) -> Result<Vec<crate::store::chain::AgentKey>, StoreError> {
        self.check_open()?;
        chain::agent_keys(self, None).await
    }

    async fn register_agent_key(
        &self,
        agent: &str,
        public_key: [u8; 32],
        source: crate::store::chain::KeySource,
        at: DateTime<Utc>,
    ) -> Result<crate::store::chain::KeyOutcome, StoreError> {
        self.check_open()?;
        let _guard = self.write_lock.lock().await;
        chain::register_agent_key(self, agent, public_key, source, at).await
    }

    async fn retire_agent_key(
        &self,
        agent: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<crate::store::chain::AgentKey>, StoreError> {
        self.check_open()?;
        let _guard = self.write_lock.lock().await;
        chain::retire_agent_key(self, agent, at).await
    }

    async fn chain_heads(&self) -> Result<Vec<crate::store::chain::ChainHead>, StoreError> {
        self.check_open()?;
        chain::chain_heads(self).await
    }

    async fn chain_bounds(
        &self,
        _machine_id: &str,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
        _seqs: &[u64],
    ) -> Result<Option<(u64, u64)>, StoreError> {
        // Only the export reads chain segments, and it is not served from ClickHouse yet.
        Err(not_yet("read the report chain for an export"))
    }

    async fn chain_page(
        &self,
        _machine_id: &str,
        _after: u64,
        _through: u64,
        _limit: usize,
    ) -> Result<Vec<crate::store::chain::ChainEntry>, StoreError> {
        Err(not_yet("read the report chain for an export"))
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::TestServer;
    use super::*;
    use crate::store::contract;

    async fn open(server: &TestServer, database: &str) -> ClickHouseStore {
        ClickHouseStore::open(&ClickHouseConfig {
            url: server.url(),
            database: database.into(),
            user: "default".into(),
            password: String::new(),
            compression: true,
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_report_contract_on_a_real_server() {
        let Some(server) = TestServer::start_or_skip("clickhouse principal contract") else {
            return;
        };
        let store = open(&server, "vigil_contract").await;
        contract::principals_are_created_found_listed_and_unique(&store).await;
        contract::revocation_and_rotation(&store).await;
        contract::the_store_answers_pings(&store).await;
        contract::agent_keys_register_once_and_rotate_by_operator(&store).await;
        contract::a_report_is_stored_once_and_retries_are_duplicates(&store).await;
        contract::conflicting_sequence_and_batch_ids_are_refused(&store).await;
        contract::a_host_belongs_to_its_first_agent(&store).await;
        contract::only_active_agents_write(&store).await;
        contract::hosts_list_their_latest_state(&store).await;
        contract::a_late_old_report_never_hides_newer_results(&store).await;
        contract::host_detail_keeps_evidence_and_exact_times(&store).await;
        contract::history_covers_periods_between_observations(&store).await;
        crate::store::contract_enrollment::run_all(&store).await;
        contract::evaluation_hosts_carry_labels_and_latest_results(&store).await;
        contract::seed_export_hosts(&store).await;
        contract::report_times_are_paged_per_host(&store).await;
        // Opening again is idempotent and keeps the data.
        let again = open(&server, "vigil_contract").await;
        assert!(again.principal_by_name("p-viewer").await.unwrap().is_some());
        store.close().await.unwrap();
        assert!(matches!(store.ping().await, Err(StoreError::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_test_server_stops_and_resumes_with_its_data() {
        let Some(mut server) = TestServer::start_or_skip("clickhouse stop/resume") else {
            return;
        };
        let store = open(&server, "vigil_resume").await;
        store
            .create_principal(contract::new_principal("kept", Role::Viewer))
            .await
            .unwrap();
        server.stop();
        assert!(!server.ping());
        assert!(
            store.ping().await.is_err(),
            "a stopped server answers no ping"
        );
        server.resume().unwrap();
        assert!(store.principal_by_name("kept").await.unwrap().is_some());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config = ClickHouseConfig {
            password: "s3cret-password".into(),
            ..ClickHouseConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn database_names_are_identifiers() {
        assert!(is_identifier("vigil_1"));
        assert!(!is_identifier("vigil; DROP TABLE x"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("1abc"));
    }
}
