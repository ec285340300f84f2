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

/// The migrations, in order. Never edit one that has shipped: add the next. Numbers are
/// reserved per line of work before they are merged, so the list may have gaps for a while;
/// [`migrate`] applies every listed migration a database has not recorded, in order, so a
/// number filled in later is still applied to a database that already has a higher one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial schema", V1),
    (2, "isms evaluation", V2),
    (3, "agent enrollment tokens", super::enroll::MIGRATION),
    (5, "principal token expiry", V5),
    (
        6,
        "agent keys and report hash chain",
        super::chain::MIGRATION,
    ),
];

/// Migration 5. Tokens may expire (`--expires-in`); NULL never expires, which is what every
/// principal created before this migration keeps.
const V5: &str = "ALTER TABLE principals ADD COLUMN expires_at INTEGER;";

/// The versions of every migration this build knows, in order.
#[cfg(test)]
pub(super) fn known_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.0).collect()
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
    apply(conn, path, MIGRATIONS)
}

fn apply(
    conn: &mut Connection,
    path: &Path,
    migrations: &[(i64, &str, &str)],
) -> Result<(), StoreError> {
    let latest = migrations.iter().map(|m| m.0).max().unwrap_or(0);
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
    let applied: Vec<i64> = {
        let mut stmt = tx
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .map_err(db("read the schema version"))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(db("read the schema version"))?
    };
    // A version this build does not know was written by another (newer) build: its tables
    // may mean things this code would misread.
    if let Some(&unknown) = applied
        .iter()
        .find(|v| !migrations.iter().any(|m| m.0 == **v))
    {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: unknown,
            supported: latest,
        });
    }
    let now = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    for (version, name, sql) in migrations.iter().filter(|m| !applied.contains(&m.0)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_lower_migration_merged_later_is_still_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open_connection(&path).unwrap();
        let one = (1, "one", "CREATE TABLE a (x INTEGER);");
        let two = (2, "two", "CREATE TABLE b (x INTEGER);");
        let three = (3, "three", "CREATE TABLE c (x INTEGER);");
        apply(&mut conn, &path, &[one, three]).unwrap();
        assert_eq!(recorded(&conn), [1, 3]);
        apply(&mut conn, &path, &[one, two, three]).unwrap();
        assert_eq!(recorded(&conn), [1, 2, 3]);
        conn.execute("INSERT INTO b (x) VALUES (1)", []).unwrap();
        // Applying again changes nothing.
        apply(&mut conn, &path, &[one, two, three]).unwrap();
        assert_eq!(recorded(&conn), [1, 2, 3]);
        // A build that lacks a recorded migration refuses the database.
        let err = apply(&mut conn, &path, &[one, three])
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema version 2"), "{err}");
    }

    #[test]
    fn principals_of_a_database_from_before_expiry_never_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = open_connection(&path).unwrap();
        let before: Vec<_> = MIGRATIONS.iter().copied().filter(|m| m.0 < 5).collect();
        apply(&mut conn, &path, &before).unwrap();
        conn.execute(
            "INSERT INTO principals (name, role, token_sha256, labels_json, created_at)
             VALUES ('old-agent', 'agent', zeroblob(32), '{}', 1)",
            [],
        )
        .unwrap();
        migrate(&mut conn, &path).unwrap();
        let old = super::super::read::principal_by_name(&conn, "old-agent")
            .unwrap()
            .unwrap();
        assert_eq!(old.expires_at, None);
        assert!(recorded(&conn).contains(&5));
    }
}
