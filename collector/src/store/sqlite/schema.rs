//! SQLite connection settings and the versioned schema: numbered migrations applied once each,
//! recorded in `schema_migrations`, so that opening a database any number of times is safe.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::store::StoreError;

/// How long a connection waits for another writer (the CLI adding a token while the server
/// runs) before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "initial schema", V1), (2, "isms evaluation", V2)];

/// Latest schema version this build knows.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

const V1: &str = r#"
CREATE TABLE principals (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL CHECK (role IN ('agent', 'viewer', 'auditor', 'admin')),
    token_sha256 BLOB    NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    labels_json  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

-- One row per host; bound to the first agent that reported it.
CREATE TABLE hosts (
    machine_id   TEXT    PRIMARY KEY,
    agent_id     INTEGER NOT NULL REFERENCES principals (id),
    hostname     TEXT    NOT NULL,
    os_json      TEXT    NOT NULL,
    kernel       TEXT,
    labels_json  TEXT    NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    latest_seq   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX hosts_by_agent ON hosts (agent_id);

CREATE TABLE reports (
    id            INTEGER PRIMARY KEY,
    agent_id      INTEGER NOT NULL REFERENCES principals (id),
    seq           INTEGER NOT NULL,
    batch_id      TEXT    NOT NULL,
    machine_id    TEXT    NOT NULL REFERENCES hosts (machine_id),
    agent_version TEXT    NOT NULL,
    health_json   TEXT,
    host_json     TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    body_sha256   BLOB    NOT NULL,
    UNIQUE (agent_id, seq),
    UNIQUE (agent_id, batch_id)
);
CREATE INDEX reports_by_host ON reports (machine_id, received_at);

CREATE TABLE results (
    id            INTEGER PRIMARY KEY,
    report_id     INTEGER NOT NULL REFERENCES reports (id),
    machine_id    TEXT    NOT NULL,
    check_id      TEXT    NOT NULL,
    controls_json TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pass', 'fail', 'error', 'no_data')),
    summary       TEXT    NOT NULL,
    error         TEXT,
    observed_at   INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    values_json   TEXT    NOT NULL,
    evidence_json TEXT    NOT NULL
);
CREATE INDEX results_history ON results (machine_id, check_id, observed_at);
CREATE INDEX results_by_report ON results (report_id);

-- The latest result of each check on each host, by sequence number (agent seq is monotonic
-- where agent clocks are not), so that a late retry of an old report never hides a newer one.
CREATE TABLE latest_results (
    machine_id TEXT    NOT NULL,
    check_id   TEXT    NOT NULL,
    result_id  INTEGER NOT NULL REFERENCES results (id),
    seq        INTEGER NOT NULL,
    PRIMARY KEY (machine_id, check_id)
) WITHOUT ROWID;
"#;

/// The ISMS engine's state and history: current verdicts and control status (rewritten as they
/// change), append-only histories for point-in-time reads, KPI measurements and analyses,
/// nonconformities with their append-only events.
const V2: &str = r#"
CREATE TABLE verdict_current (
    machine_id     TEXT    NOT NULL,
    rule_id        TEXT    NOT NULL,
    verdict        TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    observed_at    INTEGER,
    failing_since  INTEGER,
    offenders_json TEXT    NOT NULL,
    overdue_since  INTEGER,
    exception      TEXT,
    since          INTEGER NOT NULL,
    PRIMARY KEY (machine_id, rule_id)
) WITHOUT ROWID;

-- One row per change; verdict NULL means the pair stopped being judged.
CREATE TABLE verdict_history (
    id         INTEGER PRIMARY KEY,
    machine_id TEXT    NOT NULL,
    rule_id    TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    verdict    TEXT,
    reason     TEXT    NOT NULL,
    overdue    INTEGER NOT NULL,
    exception  TEXT
);
CREATE INDEX verdict_history_key ON verdict_history (machine_id, rule_id, at);
CREATE INDEX verdict_history_at ON verdict_history (at);

CREATE TABLE control_current (
    control_id     TEXT    PRIMARY KEY,
    status         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    passing        INTEGER NOT NULL,
    failing        INTEGER NOT NULL,
    evidence_count INTEGER NOT NULL,
    last_evidence  INTEGER,
    since          INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE control_history (
    id             INTEGER PRIMARY KEY,
    control_id     TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    passing        INTEGER NOT NULL,
    failing        INTEGER NOT NULL,
    evidence_count INTEGER NOT NULL,
    last_evidence  INTEGER
);
CREATE INDEX control_history_key ON control_history (control_id, at);

CREATE TABLE kpi_values (
    id             INTEGER PRIMARY KEY,
    kpi_id         TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    value          REAL,
    numerator      INTEGER,
    denominator    INTEGER,
    hosts_in_scope INTEGER NOT NULL
);
CREATE INDEX kpi_values_key ON kpi_values (kpi_id, at);

CREATE TABLE kpi_evaluations (
    id                 INTEGER PRIMARY KEY,
    kpi_id             TEXT    NOT NULL,
    at                 INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    value              REAL,
    target             REAL    NOT NULL,
    consecutive_misses INTEGER NOT NULL,
    consecutive_met    INTEGER NOT NULL
);
CREATE INDEX kpi_evaluations_key ON kpi_evaluations (kpi_id, at);

CREATE TABLE objective_history (
    id           INTEGER PRIMARY KEY,
    objective_id TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    reason       TEXT    NOT NULL
);
CREATE INDEX objective_history_key ON objective_history (objective_id, at);

CREATE TABLE nonconformities (
    id                INTEGER PRIMARY KEY,
    key               TEXT    NOT NULL,
    source            TEXT    NOT NULL,
    title             TEXT    NOT NULL,
    grade             TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    controls_json     TEXT    NOT NULL,
    machine_id        TEXT,
    hostname          TEXT,
    subject           TEXT    NOT NULL,
    opened_at         INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    owner             TEXT,
    root_cause        TEXT,
    corrective_action TEXT,
    due               TEXT,
    resolved_at       INTEGER,
    verified_at       INTEGER,
    closed_at         INTEGER,
    close_reason      TEXT,
    green_streak      INTEGER NOT NULL,
    last_green        INTEGER,
    recurrence_of     INTEGER REFERENCES nonconformities (id)
);
-- Deduplication in the database itself: one active nonconformity per key.
CREATE UNIQUE INDEX nonconformities_active_key ON nonconformities (key) WHERE state <> 'closed';
CREATE INDEX nonconformities_by_key ON nonconformities (key, id);

CREATE TABLE nc_events (
    id         INTEGER PRIMARY KEY,
    nc_id      INTEGER NOT NULL REFERENCES nonconformities (id),
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    note       TEXT    NOT NULL
);
CREATE INDEX nc_events_by_nc ON nc_events (nc_id, id);
CREATE INDEX nc_events_at ON nc_events (at);

CREATE TABLE engine_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// Opens a connection with the settings every connection needs.
pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::backend("open the database", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StoreError::backend("set the busy timeout", e))?;
    // WAL lets readers run while the writer commits; FULL fsyncs the WAL on every commit, which
    // is what makes an acknowledged report survive a power cut (NORMAL would not).
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| StoreError::backend("enable WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::BackendMessage {
            op: "enable WAL",
            message: format!("journal_mode is {mode:?} (a filesystem without shared memory?)"),
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
    .map_err(|e| StoreError::backend("configure the connection", e))?;
    Ok(conn)
}

/// Applies the migrations this database lacks, in one transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let db = |op| move |e| StoreError::backend(op, e);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         );",
    )
    .map_err(db("create the migrations table"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db("begin the migration"))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(db("read the schema version"))?;
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: current,
            supported: latest_version(),
        });
    }
    let now = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql).map_err(db("apply a migration"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, now],
        )
        .map_err(db("record a migration"))?;
        tracing::info!(version, name, "applied database migration");
    }
    tx.commit().map_err(db("commit the migration"))?;
    Ok(())
}
