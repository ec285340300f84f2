//! `vigil-agent run`: the long-running mode. A scheduler runs each enabled check on its cron
//! schedule (off the async threads, with a timeout), every round becomes one report that is
//! written to the durable spool before anything is sent, and a delivery task drains the spool
//! to the collector in sequence order with backoff and jitter. Both tasks stop on the shutdown
//! signal; the spool keeps whatever was not acknowledged for the next start.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use crate::checks::{self, Check, CheckContext};
use crate::collect::build_report;
use crate::hostroot::HostRoot;
use crate::identity;
use crate::push::{Delivery, Pusher, backoff};
use crate::schedule::{self, Schedule};
use crate::settings::AgentConfig;
use crate::spool::{Limits, Spool, SpoolError};
use crate::state::AgentState;

/// Longest a single check may run before its result is reported as an error.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("agent.id is required by `run`: the name the collector registered this agent under")]
    NoAgentId,
    #[error("a [collector] section is required by `run`")]
    NoCollector,
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Push(#[from] crate::push::PushError),
    #[error("cannot open root {path}: {source}")]
    Root {
        path: PathBuf,
        source: crate::hostroot::HostError,
    },
    #[error("checks.{check}.schedule: {message}")]
    Schedule { check: String, message: String },
    #[error("background task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Custom(#[from] checks::custom::LoadErrors),
}

/// How `run` behaves beyond the configuration file.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Collect every enabled check once, deliver the whole spool, and exit.
    pub once: bool,
}

/// What a finished run did, for the CLI and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub reports_spooled: u64,
    pub reports_delivered: u64,
    pub reports_refused: u64,
    pub spool_pending: u64,
}

struct Shared {
    config: AgentConfig,
    agent_id: String,
    root: HostRoot,
    state: AgentState,
    spool: Mutex<Spool>,
    new_report: Notify,
    check_failures: AtomicU64,
    spooled: AtomicU64,
    delivered: AtomicU64,
    refused: AtomicU64,
}

/// Runs the agent until `shutdown` turns true (or, with `once`, until the spool is drained or
/// delivery fails).
pub async fn run(
    config: AgentConfig,
    options: RunOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunSummary, ServiceError> {
    let agent_id = config.agent.id.clone().ok_or(ServiceError::NoAgentId)?;
    let collector = config.collector.clone().ok_or(ServiceError::NoCollector)?;
    let pusher = Pusher::new(&collector)?;
    let root = HostRoot::new(&config.agent.root).map_err(|source| ServiceError::Root {
        path: config.agent.root.clone(),
        source,
    })?;
    let state = AgentState::open(&config.agent.state_dir)?;
    let spool = Spool::open(
        &config.agent.state_dir.join("spool"),
        Limits {
            max_reports: config.spool.max_reports,
            max_bytes: config.spool.max_bytes,
        },
    )?;
    // A spool restored from a backup may hold numbers the counter has not reached.
    if let Some(newest) = spool.newest() {
        state.raise_seq_to(newest)?;
    }
    tracing::info!(
        agent = %agent_id,
        collector = %collector.url,
        root = %config.agent.root.display(),
        spool_pending = spool.pending(),
        "agent starting"
    );
    let shared = Arc::new(Shared {
        config,
        agent_id,
        root,
        state,
        spool: Mutex::new(spool),
        new_report: Notify::new(),
        check_failures: AtomicU64::new(0),
        spooled: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    });

    let max_backoff = Duration::from_secs(collector.max_backoff_secs.max(1));
    if options.once {
        let checks = enabled_checks(&shared.config)?;
        let all: Vec<usize> = (0..checks.len()).collect();
        collect_round(&shared, &checks, &all).await?;
        drain(&shared, &pusher, max_backoff, &mut shutdown, true).await?;
    } else {
        let scheduler = tokio::spawn(scheduler_loop(shared.clone(), shutdown.clone()));
        let delivery = {
            let shared = shared.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(
                async move { drain(&shared, &pusher, max_backoff, &mut shutdown, false).await },
            )
        };
        let scheduled = scheduler
            .await
            .map_err(|e| ServiceError::Task(e.to_string()))?;
        let delivered = delivery
            .await
            .map_err(|e| ServiceError::Task(e.to_string()))?;
        scheduled?;
        delivered?;
    }
    let pending = lock(&shared.spool).pending();
    tracing::info!(spool_pending = pending, "agent stopped");
    Ok(RunSummary {
        reports_spooled: shared.spooled.load(Ordering::Relaxed),
        reports_delivered: shared.delivered.load(Ordering::Relaxed),
        reports_refused: shared.refused.load(Ordering::Relaxed),
        spool_pending: pending,
    })
}

fn lock(spool: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    // A panic while holding the lock cannot leave the spool inconsistent on disk (every
    // operation is atomic there), so a poisoned lock is safe to keep using.
    spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct ScheduledCheck {
    check: Box<dyn Check>,
    schedule: Schedule,
    running: AtomicBool,
}

fn enabled_checks(config: &AgentConfig) -> Result<Arc<Vec<ScheduledCheck>>, ServiceError> {
    let mut out = Vec::new();
    for check in checks::registry(&config.checks)? {
        let common = check.common(&config.checks);
        if !common.enabled {
            continue;
        }
        let schedule =
            schedule::parse(&common.schedule).map_err(|message| ServiceError::Schedule {
                check: check.name().to_string(),
                message,
            })?;
        out.push(ScheduledCheck {
            check,
            schedule,
            running: AtomicBool::new(false),
        });
    }
    Ok(Arc::new(out))
}

async fn scheduler_loop(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let checks = enabled_checks(&shared.config)?;
    // Every check runs once at start so a new or restarted agent reports at once.
    let all: Vec<usize> = (0..checks.len()).collect();
    collect_round(&shared, &checks, &all).await?;
    let mut next: Vec<Option<DateTime<Utc>>> = checks
        .iter()
        .map(|c| c.schedule.next_after(Utc::now()))
        .collect();
    loop {
        let Some(earliest) = next.iter().flatten().min().copied() else {
            tracing::warn!("no check has a future schedule; scheduler idle");
            let _ = shutdown.wait_for(|stop| *stop).await;
            return Ok(());
        };
        let wait = (earliest - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
        let now = Utc::now();
        let due: Vec<usize> = next
            .iter()
            .enumerate()
            .filter(|(_, at)| at.is_some_and(|at| at <= now))
            .map(|(i, _)| i)
            .collect();
        if !due.is_empty() {
            collect_round(&shared, &checks, &due).await?;
        }
        for i in due {
            next[i] = checks[i].schedule.next_after(Utc::now());
        }
    }
}

/// Runs the given checks, builds one report and spools it.
async fn collect_round(
    shared: &Arc<Shared>,
    checks: &Arc<Vec<ScheduledCheck>>,
    which: &[usize],
) -> Result<(), ServiceError> {
    let now = Utc::now();
    let mut results = Vec::new();
    for &i in which {
        let name = checks[i].check.name();
        let outputs = checks[i].check.outputs();
        // A check that timed out earlier may still be running on its blocking thread; starting
        // another copy would pile threads up on a sick host.
        if checks[i].running.swap(true, Ordering::AcqRel) {
            shared.check_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(check = name, "previous run still in progress; skipped");
            results.extend(error_results(
                outputs,
                now,
                "previous run still in progress",
            ));
            continue;
        }
        let task = {
            let shared = shared.clone();
            let checks = checks.clone();
            tokio::task::spawn_blocking(move || {
                let ctx = CheckContext {
                    root: &shared.root,
                    now,
                    settings: &shared.config.checks,
                    cache_dir: Some(shared.state.dir().join("cache")),
                };
                let found = checks::run_check(checks[i].check.as_ref(), &ctx);
                checks[i].running.store(false, Ordering::Release);
                found
            })
        };
        match tokio::time::timeout(CHECK_TIMEOUT, task).await {
            Ok(Ok(found)) => results.extend(found),
            Ok(Err(join)) => {
                checks[i].running.store(false, Ordering::Release);
                shared.check_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(check = name, error = %join, "check crashed");
                results.extend(error_results(
                    outputs,
                    now,
                    &format!("check crashed: {join}"),
                ));
            }
            Err(_) => {
                shared.check_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    check = name,
                    timeout_secs = CHECK_TIMEOUT.as_secs(),
                    "check timed out"
                );
                results.extend(error_results(
                    outputs,
                    now,
                    &format!("timed out after {} s", CHECK_TIMEOUT.as_secs()),
                ));
            }
        }
    }
    let shared2 = shared.clone();
    tokio::task::spawn_blocking(move || spool_report(&shared2, results))
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))??;
    shared.new_report.notify_one();
    Ok(())
}

fn error_results(
    outputs: &[checks::Output],
    now: DateTime<Utc>,
    message: &str,
) -> Vec<vigil_shared::CheckResult> {
    outputs
        .iter()
        .map(|o| vigil_shared::CheckResult {
            check: o.id.to_string(),
            controls: o.controls.iter().map(|c| (*c).to_string()).collect(),
            observed_at: now,
            duration_ms: 0,
            status: vigil_shared::Status::Error,
            summary: format!("could not check: {message}"),
            values: Default::default(),
            evidence: Default::default(),
            error: Some(message.to_string()),
        })
        .collect()
}

fn spool_report(
    shared: &Shared,
    results: Vec<vigil_shared::CheckResult>,
) -> Result<(), ServiceError> {
    let fallback_id = shared.state.host_id()?;
    let host = identity::identify(
        &shared.root,
        &shared.config.agent.labels,
        Some(&fallback_id),
    );
    let seq = shared.state.next_seq()?;
    let mut spool = lock(&shared.spool);
    let health = vigil_shared::AgentHealth {
        spool_pending: spool.pending(),
        spool_dropped_total: spool.dropped_total(),
        check_failures_total: shared.check_failures.load(Ordering::Relaxed),
    };
    let report = build_report(
        &shared.agent_id,
        host,
        seq,
        Utc::now(),
        results,
        Some(health),
    );
    let body = vigil_shared::codec::encode_gzip(&report).map_err(|e| {
        ServiceError::Spool(SpoolError::Io {
            path: PathBuf::from("<report>"),
            source: std::io::Error::other(e.to_string()),
        })
    })?;
    spool.append(seq, &body)?;
    shared.spooled.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        seq,
        results = report.results.len(),
        bytes = body.len(),
        spool_pending = spool.pending(),
        "report spooled"
    );
    Ok(())
}

/// Delivers spooled reports oldest first. With `until_empty`, returns when the spool is empty
/// or a delivery must wait (so `run --once` never hangs on a dead collector); otherwise waits
/// for new reports until shutdown.
async fn drain(
    shared: &Arc<Shared>,
    pusher: &Pusher,
    max_backoff: Duration,
    shutdown: &mut watch::Receiver<bool>,
    until_empty: bool,
) -> Result<(), ServiceError> {
    let mut attempt: u32 = 0;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let next = {
            let spool = lock(&shared.spool);
            spool.oldest().map(|seq| (seq, spool.read(seq)))
        };
        let Some((seq, payload)) = next else {
            if until_empty {
                return Ok(());
            }
            tokio::select! {
                _ = shared.new_report.notified() => continue,
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
        };
        let payload = match payload {
            Ok(p) => p,
            Err(SpoolError::Corrupt { path, reason }) => {
                tracing::error!(seq, path = %path.display(), %reason, "spooled report unreadable; quarantined");
                lock(&shared.spool).quarantine_corrupt(seq)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let delivery = tokio::select! {
            d = pusher.deliver(payload) => d,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        };
        match delivery {
            Delivery::Acknowledged { duplicate } => {
                attempt = 0;
                lock(&shared.spool).ack(seq)?;
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::info!(seq, duplicate, "report acknowledged");
            }
            Delivery::Refused { status, message } => {
                attempt = 0;
                let kept = lock(&shared.spool).reject(seq, &format!("{status}: {message}"))?;
                shared.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    seq,
                    status,
                    %message,
                    kept = %kept.display(),
                    "collector refused the report; kept for inspection"
                );
            }
            Delivery::Retry { reason, after } => {
                let wait = after
                    .unwrap_or_else(|| backoff(attempt, max_backoff))
                    .min(max_backoff);
                attempt = attempt.saturating_add(1);
                tracing::warn!(seq, %reason, retry_in_ms = wait.as_millis() as u64, "delivery failed; report stays in the spool");
                if until_empty {
                    return Ok(());
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
                }
            }
        }
    }
}
