//! `vigil-agent run`: the long-running mode. The agent first settles who it is (the
//! configuration's `agent.id` and token, or its enrollment record, enrolling first with the
//! configured enrollment token when it has neither). Then a scheduler runs each enabled check
//! on its cron schedule (off the async threads, each with its own timeout; a check that hangs is
//! abandoned, reported, and not started again while its thread still runs), every round
//! becomes one report that is written to the durable spool before anything is sent, and a
//! delivery task drains the spool to the collector in sequence order with backoff and jitter.
//! Both tasks stop on the shutdown signal; the spool keeps whatever was not acknowledged for
//! the next start. `<state_dir>/status.json` tells `vigil-agent status` what happened last.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use vigil_shared::CheckHealth;

use crate::checks::{self, Check, CheckContext};
use crate::collect::build_report;
use crate::enroll::{self, EnrollError};
use crate::hostroot::HostRoot;
use crate::identity;
use crate::push::{Delivery, Pusher, backoff, configured_token};
use crate::schedule::{self, Schedule};
use crate::settings::{AgentConfig, CollectorSection};
use crate::spool::{Limits, Spool, SpoolError};
use crate::state::AgentState;
use crate::status::{self, CheckStatus, PushRecord, ServiceStatus};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "agent.id is required with a configured token: the name the collector registered this agent under"
    )]
    NoAgentId,
    #[error("a [collector] section is required by `run`")]
    NoCollector,
    #[error(
        "agent.id is {configured:?} but this agent is enrolled as {enrolled:?}; remove agent.id or enroll again"
    )]
    IdMismatch {
        configured: String,
        enrolled: String,
    },
    #[error("cannot derive an agent name from the hostname {0:?}; set agent.id")]
    NoName(String),
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Push(#[from] crate::push::PushError),
    #[error("the agent's signing key: {0}")]
    Key(String),
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

/// Who the agent is to the collector, and where that came from.
#[derive(Clone)]
pub struct Identity {
    pub agent_id: String,
    pub token: String,
    /// `config` or `enrollment`.
    pub source: &'static str,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("agent_id", &self.agent_id)
            .field("token", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// The identity from the configuration or the enrollment record, without enrolling.
pub fn settled_identity(
    config: &AgentConfig,
    collector: &CollectorSection,
) -> Result<Option<Identity>, ServiceError> {
    if let Some(token) = configured_token(collector)? {
        let agent_id = config.agent.id.clone().ok_or(ServiceError::NoAgentId)?;
        return Ok(Some(Identity {
            agent_id,
            token,
            source: "config",
        }));
    }
    let Some(enrolled) = enroll::load(&config.agent.state_dir)? else {
        return Ok(None);
    };
    if let Some(configured) = &config.agent.id
        && configured != &enrolled.agent_id
    {
        return Err(ServiceError::IdMismatch {
            configured: configured.clone(),
            enrolled: enrolled.agent_id,
        });
    }
    if enrolled.collector_url.trim_end_matches('/') != collector.url.trim_end_matches('/') {
        tracing::warn!(
            enrolled_with = %enrolled.collector_url,
            configured = %collector.url,
            "the agent enrolled with another collector URL; its credential may not work here"
        );
    }
    Ok(Some(Identity {
        agent_id: enrolled.agent_id,
        token: enrolled.token,
        source: "enrollment",
    }))
}

/// The name enrollment asks for: `agent.id` when set, else one derived from the hostname.
pub fn enrollment_name(config: &AgentConfig, hostname: &str) -> Result<String, ServiceError> {
    match &config.agent.id {
        Some(id) => Ok(id.clone()),
        None => enroll::name_from_hostname(hostname)
            .ok_or_else(|| ServiceError::NoName(hostname.to_string())),
    }
}

/// Settles the identity, enrolling with `collector.enroll_token_file` when there is none yet.
/// Transient failures are retried with backoff until `shutdown` (then `Ok(None)`), or, with
/// `once`, returned.
async fn resolve_identity(
    config: &AgentConfig,
    collector: &CollectorSection,
    root: &HostRoot,
    state: &AgentState,
    once: bool,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Identity>, ServiceError> {
    if let Some(identity) = settled_identity(config, collector)? {
        return Ok(Some(identity));
    }
    let Some(token_file) = &collector.enroll_token_file else {
        return Err(crate::push::PushError::NoToken.into());
    };
    let token = enroll::read_token_file(token_file)?;
    let host = identity::identify(root, &config.agent.labels, Some(&state.host_id()?));
    let name = enrollment_name(config, &host.hostname)?;
    let max_backoff = Duration::from_secs(collector.max_backoff_secs.max(1));
    let mut attempt = 0u32;
    loop {
        let key = crate::keys::load_or_create(&config.agent.state_dir)
            .map_err(|e| ServiceError::Key(e.to_string()))?;
        match enroll::request(
            collector,
            &token,
            &name,
            &host.hostname,
            &host.machine_id,
            &key.verifying_key(),
        )
        .await
        {
            Ok(enrollment) => {
                enroll::save(&config.agent.state_dir, &enrollment)?;
                tracing::info!(agent = %enrollment.agent_id, collector = %collector.url, "enrolled");
                return Ok(Some(Identity {
                    agent_id: enrollment.agent_id,
                    token: enrollment.token,
                    source: "enrollment",
                }));
            }
            Err(EnrollError::Unavailable { reason, after }) if !once => {
                let wait = after
                    .unwrap_or_else(|| backoff(attempt, max_backoff))
                    .min(max_backoff);
                attempt = attempt.saturating_add(1);
                tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "enrollment failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return Ok(None),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
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
    started_at: DateTime<Utc>,
    status: Mutex<ServiceStatus>,
    /// Debug builds only: where to stall so that a test can SIGKILL the agent there.
    stall: Option<Stall>,
}

/// A point where a debug build stalls forever when `VIGIL_TEST_AGENT_STALL` names it
/// (`spool-write:N`: halfway through writing the N-th report of this process; `ack:N`: after
/// the collector acknowledged the N-th delivery, before the spool forgets it). End-to-end
/// tests SIGKILL the agent there to prove nothing is lost or duplicated. Release builds ignore
/// the variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    SpoolWrite(u64),
    Ack(u64),
}

fn stall_from_env() -> Option<Stall> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let value = std::env::var("VIGIL_TEST_AGENT_STALL").ok()?;
    let (point, n) = value.split_once(':')?;
    let n: u64 = n.parse().ok()?;
    match point {
        "spool-write" => Some(Stall::SpoolWrite(n)),
        "ack" => Some(Stall::Ack(n)),
        _ => None,
    }
}

impl Shared {
    fn update_status(&self, change: impl FnOnce(&mut ServiceStatus)) {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut status);
        status.updated_at = Some(Utc::now());
        status::save(self.state.dir(), &status);
    }

    fn check_health(&self) -> BTreeMap<String, CheckHealth> {
        let status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        status
            .checks
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    CheckHealth {
                        last_duration_ms: c.duration_ms,
                        failures_total: c.failures_total,
                        timeouts_total: c.timeouts_total,
                    },
                )
            })
            .collect()
    }
}

/// Runs the agent until `shutdown` turns true (or, with `once`, until the spool is drained or
/// delivery fails).
pub async fn run(
    config: AgentConfig,
    options: RunOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunSummary, ServiceError> {
    let collector = config.collector.clone().ok_or(ServiceError::NoCollector)?;
    let root = HostRoot::new(&config.agent.root).map_err(|source| ServiceError::Root {
        path: config.agent.root.clone(),
        source,
    })?;
    let state = AgentState::open(&config.agent.state_dir)?;
    let Some(identity) = resolve_identity(
        &config,
        &collector,
        &root,
        &state,
        options.once,
        &mut shutdown,
    )
    .await?
    else {
        tracing::info!("stopped before the agent could enroll");
        return Ok(RunSummary::default());
    };
    let key = crate::keys::load_or_create(&config.agent.state_dir)
        .map_err(|e| ServiceError::Key(e.to_string()))?;
    let pusher = Pusher::new(&collector, &identity.token, key)?;
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
        agent = %identity.agent_id,
        identity = identity.source,
        collector = %collector.url,
        root = %config.agent.root.display(),
        spool_pending = spool.pending(),
        "agent starting"
    );
    let started_at = Utc::now();
    // What the previous run learnt stays visible until this one knows better.
    let previous = status::load(state.dir()).unwrap_or_default();
    let status = ServiceStatus {
        pid: std::process::id(),
        version: vigil_shared::VERSION.to_string(),
        started_at: Some(started_at),
        updated_at: None,
        agent_id: identity.agent_id.clone(),
        identity_source: identity.source.to_string(),
        collector_url: collector.url.clone(),
        last_round_at: previous.last_round_at,
        last_push: previous.last_push,
        last_ack_at: previous.last_ack_at,
        checks: previous
            .checks
            .into_iter()
            .map(|(name, c)| {
                let fresh = CheckStatus {
                    failures_total: 0,
                    timeouts_total: 0,
                    ..c
                };
                (name, fresh)
            })
            .collect(),
    };
    let shared = Arc::new(Shared {
        config,
        agent_id: identity.agent_id,
        root,
        state,
        spool: Mutex::new(spool),
        new_report: Notify::new(),
        check_failures: AtomicU64::new(0),
        spooled: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        started_at,
        status: Mutex::new(status),
        stall: stall_from_env(),
    });
    shared.update_status(|_| {});

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
    shared.update_status(|_| {});
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
    /// Set while a run of the check occupies a blocking thread, including a run abandoned at
    /// its timeout that has not returned yet.
    running: Arc<AtomicBool>,
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
            running: Arc::new(AtomicBool::new(false)),
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

/// How one check's run in a round ended, for its status and health.
enum RunEnd {
    Finished,
    Failed(String),
    TimedOut(String),
}

/// Runs the given checks, builds one report and spools it.
async fn collect_round(
    shared: &Arc<Shared>,
    checks: &Arc<Vec<ScheduledCheck>>,
    which: &[usize],
) -> Result<(), ServiceError> {
    let now = Utc::now();
    let mut results = Vec::new();
    let mut names = Vec::new();
    let mut ends: Vec<(String, u64, RunEnd, Vec<vigil_shared::CheckResult>)> = Vec::new();
    for &i in which {
        let name = checks[i].check.name();
        let outputs = checks[i].check.outputs();
        let timeout = shared.config.limits.timeout(name);
        names.push(name.to_string());
        // A check that timed out earlier may still be running on its blocking thread; starting
        // another copy would pile threads up on a sick host.
        if checks[i].running.swap(true, Ordering::AcqRel) {
            let message = "previous run still in progress (it timed out and has not returned)";
            tracing::warn!(check = name, "previous run still in progress; skipped");
            let found = error_results(outputs, now, message);
            ends.push((name.to_string(), 0, RunEnd::Failed(message.into()), found));
            continue;
        }
        let started = std::time::Instant::now();
        let task = {
            let shared = shared.clone();
            let checks = checks.clone();
            let running = checks[i].running.clone();
            tokio::task::spawn_blocking(move || {
                // Cleared however the run ends, a panic included.
                let _clear = ClearOnDrop(running);
                let ctx = CheckContext {
                    root: &shared.root,
                    now,
                    settings: &shared.config.checks,
                    cache_dir: Some(shared.state.dir().join("cache")),
                };
                checks::run_check(checks[i].check.as_ref(), &ctx)
            })
        };
        let outcome = tokio::time::timeout(timeout, task).await;
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(Ok(found)) => ends.push((name.to_string(), elapsed, RunEnd::Finished, found)),
            Ok(Err(join)) => {
                let message = format!("check crashed: {join}");
                tracing::error!(check = name, error = %join, "check crashed");
                let found = error_results(outputs, now, &message);
                ends.push((name.to_string(), elapsed, RunEnd::Failed(message), found));
            }
            Err(_) => {
                let message = format!("timed out after {} s", timeout.as_secs_f64());
                tracing::error!(
                    check = name,
                    timeout_ms = timeout.as_millis() as u64,
                    "check timed out; abandoned"
                );
                let found = error_results(outputs, now, &message);
                ends.push((name.to_string(), elapsed, RunEnd::TimedOut(message), found));
            }
        }
    }
    shared.update_status(|status| {
        status.last_round_at = Some(now);
        for (name, duration_ms, end, found) in &ends {
            let entry = status.checks.entry(name.clone()).or_default();
            entry.ran_at = Some(now);
            entry.duration_ms = *duration_ms;
            entry.outputs = found.iter().map(|r| (r.check.clone(), r.status)).collect();
            entry.error = match end {
                RunEnd::Finished => None,
                RunEnd::Failed(m) | RunEnd::TimedOut(m) => Some(m.clone()),
            };
            if !matches!(end, RunEnd::Finished) {
                entry.failures_total += 1;
                shared.check_failures.fetch_add(1, Ordering::Relaxed);
            }
            if matches!(end, RunEnd::TimedOut(_)) {
                entry.timeouts_total += 1;
            }
        }
    });
    for (_, _, _, found) in ends {
        results.extend(found);
    }
    let shared2 = shared.clone();
    tokio::task::spawn_blocking(move || spool_report(&shared2, &names, results))
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))??;
    shared.new_report.notify_one();
    Ok(())
}

struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
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
    checks: &[String],
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
    let usage = crate::selfstat::current();
    let health = vigil_shared::AgentHealth {
        spool_pending: spool.pending(),
        spool_dropped_total: spool.dropped_total(),
        check_failures_total: shared.check_failures.load(Ordering::Relaxed),
        spool_bytes: spool.bytes(),
        spool_compacted_total: spool.compacted_total(),
        started_at: Some(shared.started_at),
        rss_bytes: usage.rss_bytes,
        peak_rss_bytes: usage.peak_rss_bytes,
        cpu_ms_total: usage.cpu_ms,
        checks: shared.check_health(),
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
    let spooled_before = shared.spooled.load(Ordering::Relaxed);
    if shared.stall == Some(Stall::SpoolWrite(spooled_before + 1)) {
        spool.stall_mid_write(seq, checks, &body);
    }
    spool.append(seq, checks, &body)?;
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
        let record = |outcome: &str, detail: Option<String>| PushRecord {
            at: Utc::now(),
            seq,
            outcome: outcome.to_string(),
            detail,
        };
        match delivery {
            Delivery::Acknowledged { duplicate } => {
                attempt = 0;
                let delivered = shared.delivered.fetch_add(1, Ordering::Relaxed) + 1;
                if shared.stall == Some(Stall::Ack(delivered)) {
                    tracing::warn!(seq, "test stall after the acknowledgement");
                    std::future::pending::<()>().await;
                }
                lock(&shared.spool).ack(seq)?;
                tracing::info!(seq, duplicate, "report acknowledged");
                let outcome = if duplicate {
                    "duplicate"
                } else {
                    "acknowledged"
                };
                shared.update_status(|s| {
                    s.last_push = Some(record(outcome, None));
                    s.last_ack_at = Some(Utc::now());
                });
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
                shared.update_status(|s| {
                    s.last_push = Some(record("refused", Some(format!("{status}: {message}"))));
                });
            }
            Delivery::Retry { reason, after } => {
                let wait = after
                    .unwrap_or_else(|| backoff(attempt, max_backoff))
                    .min(max_backoff);
                attempt = attempt.saturating_add(1);
                tracing::warn!(seq, %reason, retry_in_ms = wait.as_millis() as u64, "delivery failed; report stays in the spool");
                shared.update_status(|s| {
                    s.last_push = Some(record("retry", Some(reason.clone())));
                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Condvar;
    use std::sync::atomic::AtomicUsize;

    use crate::checks::{Outcome, Output};
    use crate::settings::{ChecksConfig, Common};

    const HANG_OUTPUTS: &[Output] = &[Output {
        id: "hang.forever",
        controls: &["A.8.16"],
        description: "blocks until the test releases it",
    }];

    /// A check that blocks until released, as a read from a dead NFS mount would.
    struct Hang {
        gate: Arc<(Mutex<bool>, Condvar)>,
        runs: Arc<AtomicUsize>,
    }

    impl Check for Hang {
        fn name(&self) -> &'static str {
            "hang"
        }
        fn description(&self) -> &'static str {
            "hangs"
        }
        fn outputs(&self) -> &'static [Output] {
            HANG_OUTPUTS
        }
        fn common(&self, _settings: &ChecksConfig) -> Common {
            Common {
                enabled: true,
                schedule: "* * * * *".into(),
            }
        }
        fn run(&self, _ctx: &CheckContext<'_>) -> Vec<Outcome> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            let (open, wake) = &*self.gate;
            let mut released = open.lock().unwrap();
            while !*released {
                released = wake.wait(released).unwrap();
            }
            vec![Outcome::pass("hang.forever", "released")]
        }
    }

    fn shared(dir: &std::path::Path) -> Arc<Shared> {
        let mut config = AgentConfig::default();
        config.agent.root = dir.join("root");
        config.agent.state_dir = dir.join("state");
        config.limits.check_timeout_secs = 1;
        std::fs::create_dir_all(&config.agent.root).unwrap();
        let state = AgentState::open(&config.agent.state_dir).unwrap();
        let spool = Spool::open(
            &config.agent.state_dir.join("spool"),
            Limits {
                max_reports: 100,
                max_bytes: 1 << 24,
            },
        )
        .unwrap();
        Arc::new(Shared {
            root: HostRoot::new(&config.agent.root).unwrap(),
            config,
            agent_id: "test".into(),
            state,
            spool: Mutex::new(spool),
            new_report: Notify::new(),
            check_failures: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            started_at: Utc::now(),
            status: Mutex::new(ServiceStatus::default()),
            stall: None,
        })
    }

    fn spooled_report(shared: &Shared, seq: u64) -> vigil_shared::Report {
        let body = lock(&shared.spool).read(seq).unwrap();
        let json = vigil_shared::codec::gunzip_limited(&body, 1 << 24).unwrap();
        vigil_shared::codec::decode_json(&json).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_check_is_abandoned_reported_and_never_piles_up() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let runs = Arc::new(AtomicUsize::new(0));
        let checks = Arc::new(vec![
            ScheduledCheck {
                check: Box::new(Hang {
                    gate: gate.clone(),
                    runs: runs.clone(),
                }),
                schedule: schedule::parse("* * * * *").unwrap(),
                running: Arc::new(AtomicBool::new(false)),
            },
            ScheduledCheck {
                check: Box::new(crate::checks::inventory::Inventory),
                schedule: schedule::parse("* * * * *").unwrap(),
                running: Arc::new(AtomicBool::new(false)),
            },
        ]);

        // Round 1: the hung check is abandoned at its timeout; the other check still reports.
        collect_round(&shared, &checks, &[0, 1]).await.unwrap();
        let first = spooled_report(&shared, 1);
        let hang = first
            .results
            .iter()
            .find(|r| r.check == "hang.forever")
            .unwrap();
        assert_eq!(hang.status, vigil_shared::Status::Error);
        assert_eq!(hang.error.as_deref(), Some("timed out after 1 s"));
        assert!(
            first
                .results
                .iter()
                .any(|r| r.check == "inventory.host" && r.status != vigil_shared::Status::Error)
        );

        // Round 2: its thread still blocks, so it is not started again, and says why.
        collect_round(&shared, &checks, &[0]).await.unwrap();
        let second = spooled_report(&shared, 2);
        assert_eq!(
            second.results[0].error.as_deref(),
            Some("previous run still in progress (it timed out and has not returned)")
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "no second thread was spent");
        let health = second.agent.health.unwrap();
        assert_eq!(health.check_failures_total, 2);
        assert_eq!(health.checks["hang"].failures_total, 2);
        assert_eq!(health.checks["hang"].timeouts_total, 1);
        assert_eq!(health.checks["hang"].last_duration_ms, 0);
        let status = status::load(shared.state.dir()).unwrap();
        assert_eq!(status.checks["hang"].timeouts_total, 1);
        assert!(status.checks["hang"].error.is_some());

        // Released, the abandoned run ends and the next round runs the check normally.
        {
            let (open, wake) = &*gate;
            *open.lock().unwrap() = true;
            wake.notify_all();
        }
        for _ in 0..200 {
            if !checks[0].running.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        collect_round(&shared, &checks, &[0]).await.unwrap();
        let third = spooled_report(&shared, 3);
        assert_eq!(third.results[0].status, vigil_shared::Status::Pass);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(
            status::load(shared.state.dir()).unwrap().checks["hang"].error,
            None
        );
    }

    #[test]
    fn timeouts_are_per_check_with_a_default() {
        let mut config = AgentConfig::default();
        assert_eq!(config.limits.timeout("packages"), Duration::from_secs(120));
        config.limits.check_timeouts.insert("packages".into(), 300);
        assert_eq!(config.limits.timeout("packages"), Duration::from_secs(300));
        assert_eq!(config.limits.timeout("accounts"), Duration::from_secs(120));
    }
}
