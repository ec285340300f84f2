//! The ClickHouse store (see `collector/README.md`): the whole [`Store`] trait on a
//! ClickHouse server through the official `clickhouse` crate, over HTTP with lz4 compression.
//!
//! Tested against Debian's clickhouse-server 18.16; the SQL is kept to what 18.16 and current
//! servers both accept (no `DateTime64`: times are `Int64` nanoseconds, as in SQLite; mutable
//! records are `ReplacingMergeTree` rows with a `version` column, read through `argMax` so that
//! reads never depend on background merges).
//!
//! Modules: this one holds the settings, the schema and its version table, principals,
//! `stats`, `ping` and `close`; `reports` ingest and evidence reads; `enroll` enrollment;
//! `isms` the ISMS engine's state; `export` evidence pages for the export. The contract suite
//! runs on a private server (`test_server`) in this module's tests.

mod chain;
#[cfg(test)]
mod cluster_tests;
mod election;
mod enroll;
mod export;
mod isms;
mod reports;
mod retention;
pub mod test_server;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{Role, TokenHash};
use crate::evaluate::nonconformities::NcAction;
use crate::evaluate::{HostFacts, KpiEvaluation, KpiValue, NcEvent, Nonconformity};
use crate::store::enrollment::{
    EnrollOutcome, EnrollRequest, Enrollment, EnrollmentToken, NewEnrollmentToken,
};
use crate::store::{
    ControlRecord, EngineState, EvaluationBatch, EvidencePageQuery, EvidenceRecord, History,
    HistoryQuery, HostDetail, HostSummary, IngestOutcome, IngestRequest, KpiSnapshot,
    NcActionOutcome, NcDetail, NewPrincipal, ObjectiveRecord, Principal, SavedEvaluation, Store,
    StoreError, StoreStats, VerdictRecord,
};

/// The schema version this collector writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Connection settings: the `[storage.clickhouse]` section of the collector's configuration.
/// `Debug` never shows the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// `http://host:8123` or `https://host:8443` (TLS with rustls and the system's roots).
    #[serde(default = "default_url")]
    pub url: String,
    /// Created if missing, with the schema.
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default = "default_user")]
    pub user: String,
    /// Prefer the environment (`VIGIL_COLLECTOR_STORAGE__CLICKHOUSE__PASSWORD`) to the file.
    #[serde(default)]
    pub password: String,
    /// lz4 compression of inserted data (answers to queries are never compressed, see `open`).
    #[serde(default = "default_compression")]
    pub compression: bool,
    /// Reports waiting for the batching writer; when full, agents get 503 + Retry-After.
    #[serde(default = "default_max_queued_reports")]
    pub max_queued_reports: usize,
    /// Most result rows per insert.
    #[serde(default = "default_max_batch_rows")]
    pub max_batch_rows: usize,
    /// Longest wait for more reports when a batch is small, in milliseconds.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Longest time ClickHouse gets to take one batch, in seconds.
    #[serde(default = "default_batch_timeout_secs")]
    pub batch_timeout_secs: u64,
    /// Evidence older than this many days is dropped, by whole months; 0 keeps everything.
    #[serde(default)]
    pub retention_days: u32,
}

impl ClickHouseConfig {
    /// How reports are batched into inserts.
    pub fn writer(&self) -> WriterConfig {
        WriterConfig {
            max_queued_reports: self.max_queued_reports,
            max_batch_rows: self.max_batch_rows,
            linger: std::time::Duration::from_millis(self.linger_ms),
            batch_timeout: std::time::Duration::from_secs(self.batch_timeout_secs),
        }
    }

    /// The retention period; `None` keeps everything.
    pub fn retention(&self) -> Option<std::time::Duration> {
        (self.retention_days > 0)
            .then(|| std::time::Duration::from_secs(u64::from(self.retention_days) * 86_400))
    }

    /// Values that parse but cannot work, with the key's name.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("max_queued_reports", self.max_queued_reports as u64),
            ("max_batch_rows", self.max_batch_rows as u64),
            ("batch_timeout_secs", self.batch_timeout_secs),
        ] {
            if value == 0 {
                return Err(format!("storage.clickhouse.{key} must be at least 1"));
            }
        }
        Ok(())
    }
}

fn default_max_queued_reports() -> usize {
    WriterConfig::default().max_queued_reports
}

fn default_max_batch_rows() -> usize {
    WriterConfig::default().max_batch_rows
}

fn default_linger_ms() -> u64 {
    u64::try_from(WriterConfig::default().linger.as_millis()).unwrap_or(5)
}

fn default_batch_timeout_secs() -> u64 {
    WriterConfig::default().batch_timeout.as_secs()
}

pub use writer::WriterConfig;

fn default_url() -> String {
    "http://127.0.0.1:8123".into()
}

fn default_database() -> String {
    "vigil".into()
}

fn default_user() -> String {
    "default".into()
}

fn default_compression() -> bool {
    true
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: default_url(),
            database: default_database(),
            user: default_user(),
            password: String::new(),
            compression: default_compression(),
            max_queued_reports: default_max_queued_reports(),
            max_batch_rows: default_max_batch_rows(),
            linger_ms: default_linger_ms(),
            batch_timeout_secs: default_batch_timeout_secs(),
            retention_days: 0,
        }
    }
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("compression", &self.compression)
            .field("max_queued_reports", &self.max_queued_reports)
            .field("max_batch_rows", &self.max_batch_rows)
            .field("linger_ms", &self.linger_ms)
            .field("batch_timeout_secs", &self.batch_timeout_secs)
            .field("retention_days", &self.retention_days)
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
                created_at Int64, revoked UInt8, revoked_at Int64, version Int64,
                expires_at Int64 DEFAULT 0
            ) ENGINE = ReplacingMergeTree(version) ORDER BY name"
        ),
    ]
    .into_iter()
    .chain(reports::schema(db))
    .chain(enroll::schema(db))
    .chain(election::schema(db))
    .chain(isms::schema(db))
    .chain(chain::schema(db))
    .collect()
}

/// Columns added after a table's first release: `(table, column, type and default)`. Tables
/// created by this build have them already; older ones get them here.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // Token expiry; 0 means never, which is what principals from before keep.
    ("principals", "expires_at", "Int64 DEFAULT 0"),
];

/// Adds the [`ADDED_COLUMNS`] a database lacks. ClickHouse 18.16 has no `ADD COLUMN IF NOT
/// EXISTS` (a syntax error there), so the catalogue is asked first; a concurrent collector
/// adding the same column in between makes the `ALTER` fail, which is fine if the column is
/// then there.
async fn add_missing_columns(client: &clickhouse::Client, db: &str) -> Result<(), StoreError> {
    let has_column = async |table: &str, column: &str| {
        client
            .query(
                "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
            )
            .bind(db)
            .bind(table)
            .bind(column)
            .fetch_one::<u64>()
            .await
            .map(|n| n > 0)
            .map_err(ch("read the schema"))
    };
    for (table, column, definition) in ADDED_COLUMNS {
        if has_column(table, column).await? {
            continue;
        }
        let added = client
            .query(&format!(
                "ALTER TABLE {db}.{table} ADD COLUMN {column} {definition}"
            ))
            .execute()
            .await;
        if let Err(e) = added
            && !has_column(table, column).await?
        {
            return Err(ch("add a column")(e));
        }
        tracing::info!(table, column, "added column to the ClickHouse schema");
    }
    Ok(())
}

/// Principal columns, the latest version of each name.
pub(super) const PRINCIPALS_LATEST: &str = "SELECT name, argMax(role, version) AS p_role,
        argMax(token_sha256, version) AS p_token, argMax(labels_json, version) AS p_labels,
        argMax(created_at, version) AS p_created, argMax(revoked, version) AS p_revoked,
        argMax(revoked_at, version) AS p_revoked_at, argMax(expires_at, version) AS p_expires_at
    FROM principals GROUP BY name";

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
pub(super) struct PrincipalRow {
    name: String,
    role: String,
    token_sha256: String,
    labels_json: String,
    created_at: i64,
    revoked: u8,
    revoked_at: i64,
    /// 0: never expires.
    expires_at: i64,
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
    expires_at: i64,
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
            expires_at: (self.expires_at != 0)
                .then(|| DateTime::from_timestamp_nanos(self.expires_at)),
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

/// The ClickHouse store: the shared [`Core`] (clients, write lock) and the batching writer that
/// every report goes through (see `writer`).
pub struct ClickHouseStore {
    core: Arc<Core>,
    writer: writer::Writer,
}

impl std::ops::Deref for ClickHouseStore {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// What the store's methods and its writer task share. Writes of one collector are serialised
/// (the lock), so that the check-then-insert steps that replace SQLite's unique constraints see
/// each other.
pub struct Core {
    database: String,
    /// For queries (uncompressed, see `open`).
    client: clickhouse::Client,
    /// For inserts (lz4 when configured).
    inserter: clickhouse::Client,
    write_lock: tokio::sync::Mutex<()>,
    /// Last `version` given to a replacing row; versions increase even if the clock steps back.
    last_version: AtomicI64,
    closed: AtomicBool,
    /// Host owners already read or written: a host's owner never changes once stored.
    owners: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Chain heads (index, hash) this collector committed or read: hints, see `chain`.
    chain_cache: std::sync::Mutex<std::collections::HashMap<String, (u64, [u8; 32])>>,
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
        add_missing_columns(&base, &config.database).await?;
        // In the cluster layout (Distributed tables), `x IN (SELECT … FROM <table>)` reads the
        // subquery over the whole cluster once (GLOBAL IN). No effect on local tables.
        let client = base
            .with_database(&config.database)
            .with_option("distributed_product_mode", "global");
        // Into a Distributed table (the cluster layout), an insert returns only once the rows
        // are on their shards: acknowledged means stored. No effect on local tables.
        let inserter = client
            .clone()
            .with_option("insert_distributed_sync", "1")
            .with_compression(if config.compression {
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
        if found.is_some_and(|v| (1..2).contains(&v)) {
            // Version 2 added the writer's key tables: index the reports stored before.
            for sql in [
                "INSERT INTO report_keys SELECT agent, seq, batch_id, machine_id, received_at, \
                 body_sha256, stored FROM reports",
                "INSERT INTO report_batches SELECT agent, batch_id, seq, machine_id, received_at \
                 FROM reports",
            ] {
                client
                    .query(sql)
                    .execute()
                    .await
                    .map_err(ch("index the reports stored by schema version 1"))?;
            }
        }
        if found.unwrap_or(0) < SCHEMA_VERSION {
            let mut insert = inserter
                .insert::<VersionRow>("schema_version")
                .await
                .map_err(ch("record the schema version"))?;
            insert
                .write(&VersionRow {
                    version: SCHEMA_VERSION,
                    description: "report key tables, ISMS state".into(),
                    applied_at: nanos(Utc::now(), "now")?,
                })
                .await
                .map_err(ch("record the schema version"))?;
            insert
                .end()
                .await
                .map_err(ch("record the schema version"))?;
        }
        let core = Arc::new(Core {
            database: config.database.clone(),
            client,
            inserter,
            write_lock: tokio::sync::Mutex::new(()),
            last_version: AtomicI64::new(0),
            closed: AtomicBool::new(false),
            owners: std::sync::Mutex::new(std::collections::HashMap::new()),
            chain_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        let writer = writer::Writer::spawn(Arc::clone(&core), config.writer());
        if let Some(period) = config.retention() {
            retention::spawn(Arc::downgrade(&core), period);
        }
        Ok(ClickHouseStore { core, writer })
    }
}

impl Core {
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
            expires_at: row.expires_at,
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
            expires_at: insert_row.expires_at,
        }
        .into_principal()
    }
}

/// The stored form of an expiry: nanoseconds, 0 for never (no real expiry lies at the epoch).
fn expiry_nanos(at: Option<DateTime<Utc>>) -> Result<i64, StoreError> {
    at.map_or(Ok(0), |at| nanos(at, "expires_at"))
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
            expires_at: expiry_nanos(new.expires_at)?,
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

    async fn rotate_token(
        &self,
        name: &str,
        hash: TokenHash,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Principal, StoreError> {
        self.check_open()?;
        let expires_at = expiry_nanos(expires_at)?;
        let _guard = self.write_lock.lock().await;
        let Some(mut row) = self.raw_principal(name).await? else {
            return Err(StoreError::PrincipalNotFound { name: name.into() });
        };
        row.token_sha256 = hex::encode(hash.0);
        row.revoked = 0;
        row.revoked_at = 0;
        row.expires_at = expires_at;
        self.write_principal(row).await
    }

    async fn ingest(&self, request: IngestRequest) -> Result<IngestOutcome, StoreError> {
        self.check_open()?;
        self.writer.submit(request).await
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
        self.check_open()?;
        self.read_engine_state().await
    }

    async fn nonconformity_index(
        &self,
    ) -> Result<(Vec<Nonconformity>, std::collections::HashMap<String, u64>), StoreError> {
        self.check_open()?;
        self.read_nonconformity_index().await
    }

    async fn save_evaluation(&self, batch: EvaluationBatch) -> Result<SavedEvaluation, StoreError> {
        self.check_open()?;
        self.write_evaluation(batch).await
    }

    async fn verdicts_at(
        &self,
        at: Option<DateTime<Utc>>,
        machine_id: Option<&str>,
        rule: Option<&str>,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        self.check_open()?;
        self.read_verdicts_at(at, machine_id, rule).await
    }

    async fn controls_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ControlRecord>, StoreError> {
        self.check_open()?;
        self.read_controls_at(at).await
    }

    async fn kpis_at(&self, at: Option<DateTime<Utc>>) -> Result<Vec<KpiSnapshot>, StoreError> {
        self.check_open()?;
        self.read_kpis_at(at).await
    }

    async fn kpi_history(
        &self,
        kpi: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<KpiValue>, Vec<KpiEvaluation>), StoreError> {
        self.check_open()?;
        self.read_kpi_history(kpi, from, to, limit).await
    }

    async fn objectives_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ObjectiveRecord>, StoreError> {
        self.check_open()?;
        self.read_objectives_at(at).await
    }

    async fn nonconformities_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Nonconformity>, StoreError> {
        self.check_open()?;
        self.read_nonconformities_at(at).await
    }

    async fn nonconformity(&self, id: u64) -> Result<Option<NcDetail>, StoreError> {
        self.check_open()?;
        self.read_nonconformity(id).await
    }

    async fn nc_events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(u64, NcEvent)>, StoreError> {
        self.check_open()?;
        self.read_nc_events_between(from, to).await
    }

    async fn nc_action(
        &self,
        id: u64,
        action: NcAction,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<NcActionOutcome, StoreError> {
        self.check_open()?;
        self.apply_nc_action(id, action, actor, at).await
    }

    async fn evidence_page(
        &self,
        query: &EvidencePageQuery,
    ) -> Result<Vec<EvidenceRecord>, StoreError> {
        self.check_open()?;
        self.read_evidence_page(query).await
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

    async fn evaluator_heartbeat(
        &self,
        candidate: &crate::store::EvaluatorCandidate,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<crate::store::EvaluatorCandidate, StoreError> {
        self.heartbeat(candidate, now, ttl).await
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
        // New reports are refused from now on; those already queued are written (and
        // answered) before the store closes.
        self.closed.store(true, Ordering::SeqCst);
        self.writer.flush().await;
        let _guard = self.write_lock.lock().await;
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
        machine_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        seqs: &[u64],
    ) -> Result<Option<(u64, u64)>, StoreError> {
        self.check_open()?;
        chain::chain_bounds(self, machine_id, from, to, seqs).await
    }

    async fn chain_page(
        &self,
        machine_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<crate::store::chain::ChainEntry>, StoreError> {
        self.check_open()?;
        chain::chain_page(self, machine_id, after, through, limit).await
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::test_server::TestServer;
    use super::*;
    use crate::store::contract;

    /// A report of `agent` about `host`, received 100 ms after it was sent.
    pub(super) fn request(agent: &str, host: &str, seq: u64) -> IngestRequest {
        use sha2::Digest;
        let report = crate::testutil::report(agent, host, seq);
        IngestRequest {
            agent: agent.into(),
            body_sha256: sha2::Sha256::digest(serde_json::to_vec(&report).unwrap()).into(),
            received_at: report.sent_at + chrono::Duration::milliseconds(100),
            report,
            signed: None,
        }
    }

    pub(super) async fn open(server: &TestServer, database: &str) -> ClickHouseStore {
        ClickHouseStore::open(&ClickHouseConfig {
            url: server.url(),
            database: database.into(),
            user: "default".into(),
            password: String::new(),
            compression: true,
            ..ClickHouseConfig::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_store_contract_on_a_real_server() {
        let Some(server) = TestServer::start_or_skip("clickhouse principal contract") else {
            return;
        };
        let store = open(&server, "vigil_contract").await;
        // Exactly what the SQLite store's tests run.
        contract::run_all(&store).await;
        crate::store::contract_enrollment::run_all(&store).await;
        // Opening again is idempotent and keeps the data.
        let again = open(&server, "vigil_contract").await;
        assert!(again.principal_by_name("p-viewer").await.unwrap().is_some());
        store.close().await.unwrap();
        assert!(matches!(store.ping().await, Err(StoreError::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reopening_keeps_everything() {
        let Some(server) = TestServer::start_or_skip("clickhouse reopen contract") else {
            return;
        };
        let store = open(&server, "vigil_reopen").await;
        contract::seed_for_reopen(&store).await;
        store.close().await.unwrap();
        let store = open(&server, "vigil_reopen").await;
        contract::check_after_reopen(&store).await;
        let versions = store
            .client
            .query("SELECT version FROM schema_version ORDER BY version")
            .fetch_all::<u32>()
            .await
            .unwrap();
        assert_eq!(versions, [SCHEMA_VERSION], "recorded once");
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn principals_from_before_expiry_get_the_column_and_never_expire() {
        let Some(server) = TestServer::start_or_skip("clickhouse expiry column") else {
            return;
        };
        // The principals table as the first ClickHouse release created it, with one row.
        let raw = clickhouse::Client::default()
            .with_url(server.url())
            .with_user("default")
            .with_validation(false);
        for sql in [
            "CREATE DATABASE vigil_old",
            "CREATE TABLE vigil_old.principals (
                name String, role String, token_sha256 String, labels_json String,
                created_at Int64, revoked UInt8, revoked_at Int64, version Int64
            ) ENGINE = ReplacingMergeTree(version) ORDER BY name",
            "INSERT INTO vigil_old.principals VALUES ('old-viewer', 'viewer', 'ab', '{}', 1, 0, 0, 1)",
        ] {
            raw.query(sql).execute().await.unwrap();
        }
        let store = open(&server, "vigil_old").await;
        let old = store
            .principal_by_name("old-viewer")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.expires_at, None);
        contract::expiry_is_kept_and_rotation_sets_a_fresh_one(&store).await;
        // Opening again finds the column and changes nothing.
        let again = open(&server, "vigil_old").await;
        assert!(again.principal_by_name("x-viewer").await.unwrap().is_some());
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
