//! The persistent outbox: its own SQLite file (`<data_dir>/webhooks.sqlite`, WAL,
//! `synchronous=FULL`), separate from the evidence store, holding
//! - `events`: every event derived so far (the id is the idempotency key, so deriving the same
//!   happening again inserts nothing);
//! - `deliveries`: one row per (event, webhook) with its state (`pending`, `delivered`,
//!   `failed`), attempts, next attempt time and last error;
//! - `meta.cursor_ns`: how far (engine clock) events have been derived.
//!
//! Events, their deliveries and the cursor move in one transaction. Bounded: delivered rows go
//! after 7 days, failed ones after 30, events once no delivery refers to them and they are
//! older than the re-read window.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::event::Event;

/// File name in the data directory.
pub const FILE_NAME: &str = "webhooks.sqlite";

const DELIVERED_KEEP_MS: i64 = 7 * 86_400_000;
const FAILED_KEEP_MS: i64 = 30 * 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("webhook outbox {op}: {source}")]
    Sql {
        op: &'static str,
        source: rusqlite::Error,
    },
    #[error("webhook outbox lock poisoned")]
    Poisoned,
    #[error("webhook outbox task failed: {0}")]
    Join(String),
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> OutboxError {
    move |source| OutboxError::Sql { op, source }
}

/// A delivery to attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub seq: i64,
    pub event_id: String,
    pub webhook: String,
    pub attempts: u32,
    pub queued_at_ms: i64,
    /// The generic event JSON.
    pub event: String,
}

/// Durable per-webhook figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookCounts {
    pub webhook: String,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// Shared handle; every call blocks (run it on `spawn_blocking`).
#[derive(Clone)]
pub struct Outbox {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    pub fn open(dir: &Path) -> Result<Outbox, OutboxError> {
        let conn = Connection::open(dir.join(FILE_NAME)).map_err(sql("open"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
                 id TEXT PRIMARY KEY,
                 kind TEXT NOT NULL,
                 occurred_ns INTEGER NOT NULL,
                 body TEXT NOT NULL,
                 queued_at_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS deliveries (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 event_id TEXT NOT NULL REFERENCES events(id),
                 webhook TEXT NOT NULL,
                 state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
                 attempts INTEGER NOT NULL DEFAULT 0,
                 queued_at_ms INTEGER NOT NULL,
                 next_attempt_ms INTEGER NOT NULL,
                 done_at_ms INTEGER,
                 last_error TEXT,
                 UNIQUE (event_id, webhook));
             CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_ms);",
        )
        .map_err(sql("create the schema"))?;
        Ok(Outbox {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        let mut conn = self.conn.lock().map_err(|_| OutboxError::Poisoned)?;
        f(&mut conn)
    }

    /// How far events were derived (engine clock, nanoseconds); `None` before the first pass.
    pub fn cursor(&self) -> Result<Option<i64>, OutboxError> {
        self.with(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'cursor_ns'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("read the cursor"))
        })
    }

    /// In one transaction: inserts the events not seen before, a pending delivery for each
    /// webhook listed with it, and moves the cursor. Returns the number of new deliveries.
    /// Events older than `forget_before_ns` without deliveries are forgotten.
    pub fn enqueue(
        &self,
        events: &[(Event, Vec<String>)],
        cursor_ns: i64,
        forget_before_ns: i64,
        now_ms: i64,
    ) -> Result<usize, OutboxError> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("begin"))?;
            let mut queued = 0;
            for (event, webhooks) in events {
                let body = serde_json::to_string(event).unwrap_or_default();
                let occurred = event.occurred_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
                let inserted = tx
                    .execute(
                        "INSERT OR IGNORE INTO events (id, kind, occurred_ns, body, queued_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![event.id, event.kind.as_str(), occurred, body, now_ms],
                    )
                    .map_err(sql("insert an event"))?;
                if inserted == 0 {
                    continue;
                }
                for webhook in webhooks {
                    queued += tx
                        .execute(
                            "INSERT OR IGNORE INTO deliveries
                               (event_id, webhook, state, queued_at_ms, next_attempt_ms)
                             VALUES (?1, ?2, 'pending', ?3, ?3)",
                            params![event.id, webhook, now_ms],
                        )
                        .map_err(sql("insert a delivery"))?;
                }
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('cursor_ns', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                params![cursor_ns],
            )
            .map_err(sql("move the cursor"))?;
            tx.execute(
                "DELETE FROM deliveries WHERE (state = 'delivered' AND done_at_ms < ?1)
                    OR (state = 'failed' AND done_at_ms < ?2)",
                params![now_ms - DELIVERED_KEEP_MS, now_ms - FAILED_KEEP_MS],
            )
            .map_err(sql("prune deliveries"))?;
            tx.execute(
                "DELETE FROM events WHERE occurred_ns < ?1
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
                params![forget_before_ns],
            )
            .map_err(sql("prune events"))?;
            tx.commit().map_err(sql("commit"))?;
            Ok(queued)
        })
    }

    /// Pending deliveries due at `now_ms`, oldest first.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Due>, OutboxError> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT d.seq, d.event_id, d.webhook, d.attempts, d.queued_at_ms, e.body
                       FROM deliveries d JOIN events e ON e.id = d.event_id
                      WHERE d.state = 'pending' AND d.next_attempt_ms <= ?1
                      ORDER BY d.seq LIMIT ?2",
                )
                .map_err(sql("prepare the due query"))?;
            let rows = stmt
                .query_map(
                    params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
                    |r| {
                        Ok(Due {
                            seq: r.get(0)?,
                            event_id: r.get(1)?,
                            webhook: r.get(2)?,
                            attempts: r.get(3)?,
                            queued_at_ms: r.get(4)?,
                            event: r.get(5)?,
                        })
                    },
                )
                .map_err(sql("read due deliveries"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sql("read a due delivery"))
        })
    }

    /// The earliest next attempt of a pending delivery (to sleep until then).
    pub fn next_due_ms(&self) -> Result<Option<i64>, OutboxError> {
        self.with(|c| {
            c.query_row(
                "SELECT min(next_attempt_ms) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .map_err(sql("read the next due time"))
        })
    }

    pub fn delivered(&self, seq: i64, now_ms: i64) -> Result<(), OutboxError> {
        self.with(|c| {
            c.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                        done_at_ms = ?2, last_error = NULL WHERE seq = ?1",
                params![seq, now_ms],
            )
            .map_err(sql("record a delivery"))?;
            Ok(())
        })
    }

    /// Records a failed attempt; the delivery and every later pending one of the same webhook
    /// wait until `next_ms` (a receiver that is down is not hammered, and order is kept).
    pub fn attempt_failed(
        &self,
        seq: i64,
        webhook: &str,
        error: &str,
        next_ms: i64,
    ) -> Result<(), OutboxError> {
        self.with(|c| {
            let tx = c.transaction().map_err(sql("begin"))?;
            tx.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2,
                        next_attempt_ms = ?3 WHERE seq = ?1",
                params![seq, error, next_ms],
            )
            .map_err(sql("record a failed attempt"))?;
            tx.execute(
                "UPDATE deliveries SET next_attempt_ms = ?2
                  WHERE webhook = ?1 AND state = 'pending' AND next_attempt_ms < ?2",
                params![webhook, next_ms],
            )
            .map_err(sql("defer the webhook"))?;
            tx.commit().map_err(sql("commit"))
        })
    }

    /// Gives a delivery up, recording why.
    pub fn give_up(&self, seq: i64, error: &str, now_ms: i64) -> Result<(), OutboxError> {
        self.with(|c| {
            c.execute(
                "UPDATE deliveries SET state = 'failed', done_at_ms = ?2, last_error = ?3
                  WHERE seq = ?1",
                params![seq, now_ms, error],
            )
            .map_err(sql("record a failure"))?;
            Ok(())
        })
    }

    /// Pending deliveries to webhooks no longer configured are recorded as failed.
    pub fn fail_unconfigured(
        &self,
        configured: &[String],
        now_ms: i64,
    ) -> Result<usize, OutboxError> {
        self.with(|c| {
            let pending: Vec<(i64, String)> = {
                let mut stmt = c
                    .prepare("SELECT seq, webhook FROM deliveries WHERE state = 'pending'")
                    .map_err(sql("read pending deliveries"))?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql("read pending deliveries"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(sql("read a pending delivery"))?
            };
            let mut n = 0;
            for (seq, webhook) in pending {
                if !configured.contains(&webhook) {
                    n += c
                        .execute(
                            "UPDATE deliveries SET state = 'failed', done_at_ms = ?2,
                                    last_error = 'webhook no longer configured' WHERE seq = ?1",
                            params![seq, now_ms],
                        )
                        .map_err(sql("fail a delivery"))?;
                }
            }
            Ok(n)
        })
    }

    /// Pending, delivered and failed deliveries per webhook (kept rows; see the module doc).
    pub fn counts(&self) -> Result<Vec<WebhookCounts>, OutboxError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT webhook, sum(state = 'pending'), sum(state = 'delivered'),
                            sum(state = 'failed')
                       FROM deliveries GROUP BY webhook ORDER BY webhook",
                )
                .map_err(sql("count deliveries"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(WebhookCounts {
                        webhook: r.get(0)?,
                        pending: r.get::<_, i64>(1)?.max(0).unsigned_abs(),
                        delivered: r.get::<_, i64>(2)?.max(0).unsigned_abs(),
                        failed: r.get::<_, i64>(3)?.max(0).unsigned_abs(),
                    })
                })
                .map_err(sql("count deliveries"))?;
            rows.collect::<Result<_, _>>()
                .map_err(sql("count deliveries"))
        })
    }

    /// The last error of every failed delivery, for tests and inspection.
    pub fn failures(&self) -> Result<Vec<(String, String, String)>, OutboxError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT event_id, webhook, coalesce(last_error, '') FROM deliveries
                      WHERE state = 'failed' ORDER BY seq",
                )
                .map_err(sql("read failures"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(sql("read failures"))?;
            rows.collect::<Result<_, _>>().map_err(sql("read failures"))
        })
    }
}

/// What `vigil-collector webhooks` prints: counts per webhook, then every failed delivery
/// with its last error. Creates nothing when there is no outbox yet.
pub fn status_text(data_dir: &Path) -> Result<String, OutboxError> {
    if !data_dir.join(FILE_NAME).exists() {
        return Ok("no webhook outbox yet (no webhook has run)\n".into());
    }
    let outbox = Outbox::open(data_dir)?;
    let mut out = format!(
        "{:<24} {:>9} {:>10} {:>7}\n",
        "WEBHOOK", "PENDING", "DELIVERED", "FAILED"
    );
    for c in outbox.counts()? {
        out.push_str(&format!(
            "{:<24} {:>9} {:>10} {:>7}\n",
            c.webhook, c.pending, c.delivered, c.failed
        ));
    }
    let failures = outbox.failures()?;
    if !failures.is_empty() {
        out.push_str("\nfailed deliveries (event, webhook, last error):\n");
        for (event, webhook, error) in failures {
            out.push_str(&format!("  {event}  {webhook}  {error}\n"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::testdata::sample_events;

    #[test]
    fn an_event_is_queued_once_however_often_it_is_derived_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            status_text(dir.path())
                .unwrap()
                .contains("no webhook outbox yet")
        );
        assert!(!dir.path().join(FILE_NAME).exists());
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.cursor().unwrap(), None);
        let events: Vec<(Event, Vec<String>)> = sample_events()
            .into_iter()
            .map(|e| (e, vec!["a".to_string(), "b".to_string()]))
            .collect();
        assert_eq!(outbox.enqueue(&events, 100, 0, 1000).unwrap(), 14);
        assert_eq!(
            outbox.enqueue(&events, 200, 0, 2000).unwrap(),
            0,
            "same happenings"
        );
        drop(outbox);
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.cursor().unwrap(), Some(200));
        let due = outbox.due(1000, 100).unwrap();
        assert_eq!(due.len(), 14);
        // A failure defers every later delivery of that webhook, not the other one's.
        outbox.attempt_failed(due[0].seq, "a", "503", 5000).unwrap();
        let still_due = outbox.due(1000, 100).unwrap();
        assert!(still_due.iter().all(|d| d.webhook == "b"), "{still_due:?}");
        assert_eq!(outbox.next_due_ms().unwrap(), Some(1000));
        outbox.delivered(still_due[0].seq, 1500).unwrap();
        outbox.give_up(due[0].seq, "too old", 6000).unwrap();
        let counts = outbox.counts().unwrap();
        assert_eq!(
            counts[0],
            WebhookCounts {
                webhook: "a".into(),
                pending: 6,
                delivered: 0,
                failed: 1
            }
        );
        assert_eq!(
            counts[1],
            WebhookCounts {
                webhook: "b".into(),
                pending: 6,
                delivered: 1,
                failed: 0
            }
        );
        assert_eq!(outbox.failures().unwrap()[0].2, "too old");
        let status = status_text(dir.path()).unwrap();
        assert!(status.contains("too old"), "{status}");
        assert!(status.lines().nth(1).unwrap().starts_with('a'), "{status}");
        assert_eq!(
            outbox.fail_unconfigured(&["b".to_string()], 7000).unwrap(),
            6
        );
        assert_eq!(outbox.due(i64::MAX, 100).unwrap().len(), 6);
    }
}
