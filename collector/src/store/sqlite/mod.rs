//! The embedded SQLite store: one database file under the data directory, WAL journal with
//! `synchronous = FULL`, one writer thread (group commit, see `writer.rs`) and a small pool of
//! read connections used from `spawn_blocking`, so no SQLite call ever runs on an async worker.

mod chain;
mod enroll;
mod export;
mod isms;
mod read;
mod rows;
mod schema;
mod write;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::Semaphore;

use self::writer::{Job, JobSender};
use crate::auth::TokenHash;
use crate::evaluate::nonconformities::NcAction;
use crate::evaluate::{HostFacts, KpiEvaluation, KpiValue, NcEvent, Nonconformity};
use crate::store::chain::{AgentKey, ChainEntry, ChainHead, KeyOutcome, KeySource};
use crate::store::enrollment::{
    EnrollOutcome, EnrollRequest, Enrollment, EnrollmentToken, NewEnrollmentToken,
};
use crate::store::{
    ControlRecord, EngineState, EvaluationBatch, EvidencePageQuery, EvidenceRecord, History,
    HistoryQuery, HostDetail, HostSummary, IngestOutcome, IngestRequest, KpiSnapshot,
    NcActionOutcome, NcDetail, NewPrincipal, ObjectiveRecord, Principal, SavedEvaluation, Store,
    StoreError, StoreStats, VerdictRecord,
};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "collector.sqlite3";
/// Read connections kept open: reads are short, and WAL lets them run beside the writer.
const READERS: usize = 4;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<JobSender>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<ReaderPool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Read connections; the semaphore counts idle ones, so a reader never waits on the mutex.
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReaderPool {
    fn take(&self) -> Option<Connection> {
        self.idle.lock().ok()?.pop()
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, applying pending migrations.
    /// Blocking: call it before serving or from `spawn_blocking`.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DATABASE_FILE);
        let mut conn = schema::open_connection(&path)?;
        schema::migrate(&mut conn, &path)?;
        let mut idle = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = schema::open_connection(&path)?;
            reader
                .execute_batch("PRAGMA query_only = ON;")
                .map_err(|e| StoreError::backend("configure a read connection", e))?;
            idle.push(reader);
        }
        let (sender, thread) = writer::spawn(conn, path.clone())?;
        tracing::debug!(path = %path.display(), "sqlite store open");
        Ok(SqliteStore {
            path,
            writer: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(thread)),
            readers: Arc::new(ReaderPool {
                idle: Mutex::new(idle),
                permits: Semaphore::new(READERS),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the writer thread inside a transaction; answers after COMMIT.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let sender = self
            .writer
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (job, answer) = Job::boxed(work);
        sender.send(job).await.map_err(|_| StoreError::Closed)?;
        drop(sender);
        answer.await.map_err(|_| StoreError::BackendMessage {
            op: "write",
            message: "the writer thread stopped".into(),
        })?
    }

    /// Runs `work` on a pooled read connection on the blocking thread pool.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take().ok_or(StoreError::Closed)?;
            let answer = work(&conn);
            pool.give_back(conn);
            answer
        })
        .await
        .map_err(|e| StoreError::backend("run a read", e))?
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })
}

fn nanos(t: DateTime<Utc>, what: &str) -> Result<i64, StoreError> {
    rows::to_nanos(t, what)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_principal(&self, new: NewPrincipal) -> Result<Principal, StoreError> {
        self.write(move |conn| write::create_principal(conn, &new))
            .await
    }

    async fn principal_by_token(&self, hash: TokenHash) -> Result<Option<Principal>, StoreError> {
        self.read(move |conn| read::principal_by_token(conn, &hash))
            .await
    }

    async fn principal_by_name(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        let name = name.to_string();
        self.read(move |conn| read::principal_by_name(conn, &name))
            .await
    }

    async fn list_principals(&self) -> Result<Vec<Principal>, StoreError> {
        self.read(read::list_principals).await
    }

    async fn revoke_principal(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Principal, StoreError> {
        let name = name.to_string();
        let at = nanos(at, "revoked_at")?;
        self.write(move |conn| write::revoke_principal(conn, &name, at))
            .await
    }

    async fn rotate_token(
        &self,
        name: &str,
        hash: TokenHash,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Principal, StoreError> {
        let name = name.to_string();
        let expires_at = expires_at.map(|at| nanos(at, "expires_at")).transpose()?;
        self.write(move |conn| write::rotate_token(conn, &name, &hash, expires_at))
            .await
    }

    async fn ingest(&self, request: IngestRequest) -> Result<IngestOutcome, StoreError> {
        self.write(move |conn| write::ingest(conn, &request)).await
    }

    async fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError> {
        self.read(read::list_hosts).await
    }

    async fn host_detail(&self, machine_id: &str) -> Result<Option<HostDetail>, StoreError> {
        let machine_id = machine_id.to_string();
        self.read(move |conn| read::host_detail(conn, &machine_id))
            .await
    }

    async fn result_history(&self, query: &HistoryQuery) -> Result<Option<History>, StoreError> {
        let query = query.clone();
        self.read(move |conn| read::result_history(conn, &query))
            .await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read(read::stats).await
    }

    async fn evaluation_hosts(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<HostFacts>, StoreError> {
        let since = since.map(|t| nanos(t, "since")).transpose()?;
        self.read(move |conn| isms::evaluation_hosts(conn, since))
            .await
    }

    async fn engine_state(&self) -> Result<EngineState, StoreError> {
        self.read(isms::engine_state).await
    }

    async fn nonconformity_index(
        &self,
    ) -> Result<(Vec<Nonconformity>, std::collections::HashMap<String, u64>), StoreError> {
        self.read(isms::nonconformity_index).await
    }

    async fn save_evaluation(&self, batch: EvaluationBatch) -> Result<SavedEvaluation, StoreError> {
        self.write(move |conn| isms::save_evaluation(conn, &batch))
            .await
    }

    async fn verdicts_at(
        &self,
        at: Option<DateTime<Utc>>,
        machine_id: Option<&str>,
        rule: Option<&str>,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        let at = at.map(|t| nanos(t, "at")).transpose()?;
        let machine_id = machine_id.map(str::to_string);
        let rule = rule.map(str::to_string);
        self.read(move |conn| isms::verdicts_at(conn, at, machine_id.as_deref(), rule.as_deref()))
            .await
    }

    async fn controls_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ControlRecord>, StoreError> {
        let at = at.map(|t| nanos(t, "at")).transpose()?;
        self.read(move |conn| isms::controls_at(conn, at)).await
    }

    async fn kpis_at(&self, at: Option<DateTime<Utc>>) -> Result<Vec<KpiSnapshot>, StoreError> {
        let at = at.map(|t| nanos(t, "at")).transpose()?;
        self.read(move |conn| isms::kpis_at(conn, at)).await
    }

    async fn kpi_history(
        &self,
        kpi: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<KpiValue>, Vec<KpiEvaluation>), StoreError> {
        let kpi = kpi.to_string();
        let (from, to) = (nanos(from, "from")?, nanos(to, "to")?);
        self.read(move |conn| isms::kpi_history(conn, &kpi, from, to, limit))
            .await
    }

    async fn objectives_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<ObjectiveRecord>, StoreError> {
        let at = at.map(|t| nanos(t, "at")).transpose()?;
        self.read(move |conn| isms::objectives_at(conn, at)).await
    }

    async fn nonconformities_at(
        &self,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<Nonconformity>, StoreError> {
        let at = at.map(|t| nanos(t, "at")).transpose()?;
        self.read(move |conn| isms::nonconformities_at(conn, at))
            .await
    }

    async fn nonconformity(&self, id: u64) -> Result<Option<NcDetail>, StoreError> {
        self.read(move |conn| isms::nonconformity(conn, id)).await
    }

    async fn nc_events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(u64, NcEvent)>, StoreError> {
        let (from, to) = (nanos(from, "from")?, nanos(to, "to")?);
        self.read(move |conn| isms::nc_events_between(conn, from, to))
            .await
    }

    async fn nc_action(
        &self,
        id: u64,
        action: NcAction,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<NcActionOutcome, StoreError> {
        let actor = actor.to_string();
        self.write(move |conn| isms::nc_action(conn, id, &action, &actor, at))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(|e| StoreError::backend("answer a ping", e))
        })
        .await?;
        // A write that changes nothing proves the writer thread is alive and not wedged.
        self.write(|_| Ok(())).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Dropping the last sender lets the writer drain its queue and stop.
        let sender = self.writer.lock().map_err(|_| StoreError::Closed)?.take();
        drop(sender);
        let thread = self
            .writer_thread
            .lock()
            .map_err(|_| StoreError::Closed)?
            .take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| StoreError::backend("stop the writer thread", e))?
                .map_err(|_| StoreError::BackendMessage {
                    op: "stop the writer thread",
                    message: "the writer thread panicked".into(),
                })?;
        }
        self.readers.permits.close();
        if let Ok(mut idle) = self.readers.idle.lock() {
            idle.clear();
        }
        tracing::debug!(path = %self.path.display(), "sqlite store closed");
        Ok(())
    }

    async fn create_enrollment_token(
        &self,
        new: NewEnrollmentToken,
    ) -> Result<EnrollmentToken, StoreError> {
        self.write(move |conn| enroll::create_token(conn, &new))
            .await
    }

    async fn list_enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>, StoreError> {
        self.read(enroll::list_tokens).await
    }

    async fn revoke_enrollment_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<EnrollmentToken, StoreError> {
        let name = name.to_string();
        let at = nanos(at, "revoked_at")?;
        self.write(move |conn| enroll::revoke_token(conn, &name, at))
            .await
    }

    async fn enroll_agent(&self, request: EnrollRequest) -> Result<EnrollOutcome, StoreError> {
        self.write(move |conn| enroll::enroll(conn, &request)).await
    }

    async fn list_enrollments(&self) -> Result<Vec<Enrollment>, StoreError> {
        self.read(enroll::list_enrollments).await
    }

    async fn evidence_page(
        &self,
        query: &EvidencePageQuery,
    ) -> Result<Vec<EvidenceRecord>, StoreError> {
        let query = query.clone();
        self.read(move |conn| export::evidence_page(conn, &query))
            .await
    }

    async fn report_times_page(
        &self,
        machine_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let machine_id = machine_id.to_string();
        let from = nanos(from, "from")?;
        let to = nanos(to, "to")?;
        let after = after.map(|t| nanos(t, "after")).transpose()?;
        self.read(move |conn| export::report_times_page(conn, &machine_id, from, to, after, limit))
            .await
    }

    async fn agent_keys(&self, agent: &str) -> Result<Vec<AgentKey>, StoreError> {
        let agent = agent.to_string();
        self.read(move |conn| chain::agent_keys(conn, &agent)).await
    }

    async fn list_agent_keys(&self) -> Result<Vec<AgentKey>, StoreError> {
        self.read(chain::list_agent_keys).await
    }

    async fn register_agent_key(
        &self,
        agent: &str,
        public_key: [u8; 32],
        source: KeySource,
        at: DateTime<Utc>,
    ) -> Result<KeyOutcome, StoreError> {
        let agent = agent.to_string();
        let at = rows::to_nanos(at, "registered_at")?;
        self.write(move |conn| chain::register_agent_key(conn, &agent, &public_key, source, at))
            .await
    }

    async fn retire_agent_key(
        &self,
        agent: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<AgentKey>, StoreError> {
        let agent = agent.to_string();
        let at = rows::to_nanos(at, "retired_at")?;
        self.write(move |conn| chain::retire_agent_key(conn, &agent, at))
            .await
    }

    async fn chain_heads(&self) -> Result<Vec<ChainHead>, StoreError> {
        self.read(chain::chain_heads).await
    }

    async fn chain_bounds(
        &self,
        machine_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        seqs: &[u64],
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let machine_id = machine_id.to_string();
        let seqs = seqs.to_vec();
        self.read(move |conn| chain::chain_bounds(conn, &machine_id, from, to, &seqs))
            .await
    }

    async fn chain_page(
        &self,
        machine_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<ChainEntry>, StoreError> {
        let machine_id = machine_id.to_string();
        self.read(move |conn| chain::chain_page(conn, &machine_id, after, through, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(dir.path()).unwrap()
    }

    #[tokio::test]
    async fn passes_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        contract::run_all(&store).await;
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn passes_the_enrollment_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        crate::store::contract_enrollment::run_all(&store).await;
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn reopening_keeps_everything_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        contract::seed_for_reopen(&store).await;
        store.close().await.unwrap();
        let store = open(&dir);
        contract::check_after_reopen(&store).await;
        store.close().await.unwrap();

        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, schema::known_versions());
    }

    #[tokio::test]
    async fn connections_use_wal_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let (mode, sync): (String, i64) = store
            .read(|conn| {
                Ok(conn
                    .query_row(
                        "SELECT * FROM pragma_journal_mode, pragma_synchronous",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap())
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL");
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        open(&dir).close().await.unwrap();
        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
            [],
        )
        .unwrap();
        drop(conn);
        let err = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
        assert!(err.contains("newer vigil-collector"), "{err}");
    }

    #[tokio::test]
    async fn the_data_directory_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        let store = SqliteStore::open(&data).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_store_refuses_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.close().await.unwrap();
        assert!(matches!(store.stats().await, Err(StoreError::Closed)));
        assert!(matches!(store.ping().await, Err(StoreError::Closed)));
        assert!(matches!(store.list_hosts().await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn a_failing_job_is_rolled_back_alone_within_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(&dir));
        // Concurrent writes share transactions; every odd job writes a row and then fails, and
        // must leave nothing behind while its even batch mates commit.
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                store
                    .write(move |conn| {
                        let new =
                            contract::new_principal(&format!("p{i}"), crate::auth::Role::Viewer);
                        write::create_principal(conn, &new)?;
                        if i % 2 == 1 {
                            return Err(StoreError::Corrupt {
                                what: "planned failure".into(),
                            });
                        }
                        Ok(())
                    })
                    .await
            }));
        }
        let mut failed = 0;
        for task in tasks {
            if task.await.unwrap().is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 32);
        let names: Vec<String> = store
            .list_principals()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names.len(), 32);
        assert!(
            names
                .iter()
                .all(|n| n[1..].parse::<u32>().unwrap() % 2 == 0),
            "{names:?}"
        );
        store.close().await.unwrap();
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    /// The history and latest-state queries must seek the indexes, never scan all results.
    #[tokio::test]
    async fn hot_queries_use_the_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let plans: Vec<String> = store
            .read(|conn| {
                let mut out = Vec::new();
                for sql in [read::HISTORY_SQL.as_str(), read::LATEST_SQL.as_str()] {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                    let n = stmt.parameter_count();
                    let params: Vec<i64> = vec![0; n];
                    let rows: Vec<String> = stmt
                        .query_map(rusqlite::params_from_iter(params), |r| {
                            r.get::<_, String>(3)
                        })
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    out.push(rows.join("\n"));
                }
                Ok(out)
            })
            .await
            .unwrap();
        for plan in &plans {
            // Only the materialised subqueries may be scanned, never a table.
            let scans: Vec<&str> = plan
                .lines()
                .filter(|l| l.starts_with("SCAN") && !l.starts_with("SCAN (subquery"))
                .collect();
            assert!(scans.is_empty(), "{plan}");
        }
        assert!(
            plans[0].contains("SEARCH r USING INDEX results_history"),
            "{}",
            plans[0]
        );
        assert!(
            plans[1].contains("SEARCH l USING PRIMARY KEY"),
            "{}",
            plans[1]
        );
        store.close().await.unwrap();
    }
}
