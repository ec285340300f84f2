//! The single writer thread: owns the read-write connection and runs write jobs off the async
//! workers, several per transaction ("group commit": one fsync acknowledges a whole batch).
//!
//! Each job runs inside its own savepoint, so a job that fails is rolled back alone while the
//! others in the batch commit. A job's result reaches its caller only after COMMIT returned,
//! which is what makes an acknowledgement durable.
//!
//! The queue holds at most [`QUEUE_CAPACITY`] jobs. When it is full, callers wait for room
//! (backpressure on the HTTP handlers, whose request timeout turns a long wait into a 503 that
//! agents retry); nothing is dropped.

use std::path::PathBuf;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

/// Jobs waiting for the writer at most.
pub(super) const QUEUE_CAPACITY: usize = 256;
/// Jobs committed together at most: bounds the latency a large batch adds to its first job.
const MAX_BATCH: usize = 64;

/// Where write jobs are queued.
pub(super) type JobSender = mpsc::Sender<Box<dyn WriteJob>>;

/// A unit of work for the writer thread.
pub(super) trait WriteJob: Send {
    /// Runs the job inside the open transaction; returns whether it succeeded (and must be
    /// kept) or failed (and must be rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the result once the transaction is over.
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

/// A closure job with a typed answer.
pub(super) struct Job<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    pub(super) fn boxed(work: F) -> (Box<dyn WriteJob>, oneshot::Receiver<Result<T, StoreError>>) {
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            work: Some(work),
            outcome: None,
            reply,
        };
        (Box::new(job), receiver)
    }
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(StoreError::BackendMessage {
                op: "commit",
                message: e.to_string(),
            }),
            (None, Ok(())) => Err(StoreError::BackendMessage {
                op: "run a write",
                message: "the job did not run".into(),
            }),
        };
        // The caller may have given up (request timeout); the write stands regardless, and a
        // retry of the same report is answered as a duplicate.
        let _ = self.reply.send(answer);
    }
}

/// Starts the writer thread on `conn`.
pub(super) fn spawn(
    conn: Connection,
    path: PathBuf,
) -> Result<(JobSender, JoinHandle<()>), StoreError> {
    let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
    let handle = std::thread::Builder::new()
        .name("vigil-sqlite-writer".into())
        .spawn(move || run(conn, receiver, path))
        .map_err(|e| StoreError::backend("start the writer thread", e))?;
    Ok((sender, handle))
}

fn run(conn: Connection, mut receiver: mpsc::Receiver<Box<dyn WriteJob>>, path: PathBuf) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    // Ends when every sender is dropped (the store is closed) and the queue is drained.
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let jobs = batch.len();
        match run_batch(&conn, &mut batch) {
            Ok(()) => {
                for job in batch.drain(..) {
                    job.finish(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs, "database write failed; rolled back");
                for job in batch.drain(..) {
                    job.finish(Err(&e));
                }
            }
        }
    }
    // Fold the WAL back into the main file so a stopped collector leaves one self-contained
    // database behind; a failure only means the WAL is replayed at the next open.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, path = %path.display(), "checkpoint at close failed");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, path = %path.display(), "closing the database failed");
    }
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), StoreError> {
    let sql = |op: &'static str| move |e| StoreError::backend(op, e);
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(sql("begin a transaction"))?;
    let body = (|| {
        for job in batch.iter_mut() {
            conn.execute_batch("SAVEPOINT job")
                .map_err(sql("open a savepoint"))?;
            if job.run(conn) {
                conn.execute_batch("RELEASE job")
                    .map_err(sql("release a savepoint"))?;
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
                    .map_err(sql("roll back a savepoint"))?;
            }
        }
        conn.execute_batch("COMMIT").map_err(sql("commit"))
    })();
    if body.is_err() && !conn.is_autocommit() {
        // Leave the connection usable for the next batch.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rollback after a failed write failed");
        }
    }
    body
}
