//! The ISMS engine: the impure shell around `evaluate`. It keeps the latest facts of every host
//! in memory (re-reading only hosts that reported since the last evaluation), runs the pure
//! evaluation with its clock, and saves what changed in one transaction. KPIs are measured and
//! analysed on their own cron schedules; verdicts, control status, blind spots and
//! nonconformities every `policy.evaluation_interval`.
//!
//! The clock is injected ([`Clock`]): production uses the system clock, tests drive a
//! [`ManualClock`] forward to show a whole nonconformity lifecycle without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{mpsc, oneshot, watch};

use crate::evaluate::Nonconformity;
use crate::evaluate::nonconformities::{self, NcInputs};
use crate::evaluate::{
    self, ControlState, HostFacts, KpiEvaluation, KpiValue, ObjectiveState, VerdictState, controls,
    kpis, objectives, verdicts,
};
use crate::isms::Isms;
use crate::store::{EvaluationBatch, Store, StoreError};

/// Where the engine (and ingest) read the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to: for tests that drive time forward.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn set(&self, to: DateTime<Utc>) {
        if let Ok(mut now) = self.0.lock() {
            *now = to;
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|p| *p.into_inner())
    }
}

/// Reports received this long before the newest one already loaded are read again on the next
/// evaluation: a report stamped earlier may commit later (ingest stamps on arrival).
const RELOAD_OVERLAP: Duration = Duration::minutes(2);

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub hosts: usize,
    pub in_scope: usize,
    pub hosts_reloaded: usize,
    pub verdicts: usize,
    pub verdict_changes: usize,
    pub control_changes: usize,
    pub kpis_measured: usize,
    pub kpis_analysed: usize,
    pub nonconformities_opened: usize,
    pub nonconformity_events: usize,
    pub conflicts: usize,
    pub millis: u64,
}

/// The engine's memory between evaluations.
pub struct Engine {
    isms: Arc<Isms>,
    store: Arc<dyn Store>,
    /// The latest facts of every host, and where each host is in that list.
    hosts: Vec<HostFacts>,
    host_index: HashMap<String, usize>,
    newest_seen: Option<DateTime<Utc>>,
    verdicts: evaluate::VerdictMap,
    controls: HashMap<String, ControlState>,
    kpi_values: HashMap<String, KpiValue>,
    kpi_evaluations: HashMap<String, KpiEvaluation>,
    objectives: HashMap<String, ObjectiveState>,
    last_tick: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("hosts", &self.hosts.len())
            .field("verdicts", &self.verdicts.len())
            .field("last_tick", &self.last_tick)
            .finish()
    }
}

/// True when a verdict state must be saved: anything but the observation time changed.
fn must_save(new: &VerdictState, old: &VerdictState) -> bool {
    new.verdict != old.verdict
        || new.reason != old.reason
        || new.failing_since != old.failing_since
        || new.offenders_first_seen != old.offenders_first_seen
        || new.overdue_since != old.overdue_since
        || new.exception != old.exception
        || new.since != old.since
}

/// True when the schedule fired in `(after, until]`.
fn fired(
    schedule: &vigil_shared::schedule::Schedule,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> bool {
    schedule.next_after(after).is_some_and(|t| t <= until)
}

impl Engine {
    /// Resumes from what the store holds.
    pub async fn resume(isms: Arc<Isms>, store: Arc<dyn Store>) -> Result<Engine, StoreError> {
        let state = store.engine_state().await?;
        Ok(Engine {
            isms,
            store,
            hosts: Vec::new(),
            host_index: HashMap::new(),
            newest_seen: None,
            verdicts: state
                .verdicts
                .into_iter()
                .map(|v| ((v.machine_id.clone(), v.rule.clone()), v))
                .collect(),
            controls: state
                .controls
                .into_iter()
                .map(|c| (c.control.clone(), c))
                .collect(),
            kpi_values: state
                .kpi_values
                .into_iter()
                .map(|v| (v.kpi.clone(), v))
                .collect(),
            kpi_evaluations: state
                .kpi_evaluations
                .into_iter()
                .map(|e| (e.kpi.clone(), e))
                .collect(),
            objectives: state
                .objectives
                .into_iter()
                .map(|o| (o.objective.clone(), o))
                .collect(),
            last_tick: state.last_tick,
        })
    }

    pub fn isms(&self) -> &Isms {
        &self.isms
    }

    /// One evaluation at `now`.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let started = Instant::now();
        let since = self.newest_seen.map(|t| t - RELOAD_OVERLAP);
        let changed = self.store.evaluation_hosts(since).await?;
        let hosts_reloaded = changed.len();
        for host in changed {
            self.newest_seen = self.newest_seen.max(Some(host.last_seen));
            match self.host_index.get(&host.machine_id) {
                Some(&i) => self.hosts[i] = host,
                None => {
                    self.host_index
                        .insert(host.machine_id.clone(), self.hosts.len());
                    self.hosts.push(host);
                }
            }
        }
        // People change nonconformities between evaluations: read them fresh.
        let (active, last_closed) = self.store.nonconformity_index().await?;

        // The evaluation itself is pure and CPU-bound (a second at large fleets): it must not
        // hold an async worker, or ingest would stall behind it.
        let computed = cpu_bound(|| self.compute(now, &active, &last_closed));
        let mut report = computed.report;
        report.hosts_reloaded = hosts_reloaded;

        let saved = self.store.save_evaluation(computed.batch).await?;
        report.nonconformities_opened = saved.opened.len();
        report.conflicts = saved.conflicts;

        // Only once saved does the engine's memory move on.
        self.verdicts = computed.verdicts;
        self.controls = computed.controls;
        self.kpi_values.extend(computed.kpi_values);
        self.kpi_evaluations.extend(computed.kpi_evaluations);
        self.objectives = computed.objectives;
        self.last_tick = Some(now);
        report.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }

    /// Everything one evaluation decides, from the engine's memory and the nonconformities.
    fn compute(
        &self,
        now: DateTime<Utc>,
        active: &[Nonconformity],
        last_closed: &HashMap<String, u64>,
    ) -> Computed {
        let isms = &*self.isms;
        let hosts = &self.hosts;
        let mut report = TickReport {
            hosts: hosts.len(),
            ..TickReport::default()
        };
        let mut batch = EvaluationBatch {
            at: now,
            ..Default::default()
        };

        // Verdicts.
        let new_verdicts = verdicts::evaluate_all(isms, hosts, &self.verdicts, now);
        let mut still_judged = std::collections::HashSet::with_capacity(new_verdicts.len());
        for v in &new_verdicts {
            let key = (v.machine_id.clone(), v.rule.clone());
            match self.verdicts.get(&key) {
                Some(old) => {
                    if must_save(v, old) {
                        batch.verdicts.push(v.clone());
                    }
                    if v.differs_from(old) {
                        batch.verdict_changes.push(v.clone());
                    }
                }
                None => {
                    batch.verdicts.push(v.clone());
                    batch.verdict_changes.push(v.clone());
                }
            }
            still_judged.insert(key);
        }
        batch.verdicts_dropped = self
            .verdicts
            .keys()
            .filter(|k| !still_judged.contains(*k))
            .map(|(host, rule)| (host.to_string(), rule.to_string()))
            .collect();
        report.verdicts = new_verdicts.len();
        report.verdict_changes = batch.verdict_changes.len();

        // Controls.
        let in_scope: Vec<&HostFacts> = hosts
            .iter()
            .filter(|h| evaluate::in_scope(isms, &h.labels))
            .collect();
        report.in_scope = in_scope.len();
        let control_states = controls::evaluate_controls(isms, &in_scope, &new_verdicts, now);
        for c in &control_states {
            if self
                .controls
                .get(&c.control)
                .is_none_or(|old| c.differs_from(old))
            {
                batch.control_changes.push(c.clone());
            }
        }
        batch.controls = control_states.clone();
        report.control_changes = batch.control_changes.len();

        // KPIs on their schedules; also at once when never measured, and on every evaluation
        // while the last measurement found nothing to measure (a fresh installation must not
        // wait for a weekly cron to show its first values). Likewise for analyses.
        let inputs = kpis::MeasureInputs::new(&in_scope, &new_verdicts, active);
        let mut new_values = HashMap::new();
        for kpi in &isms.kpis {
            let due = match self.kpi_values.get(&kpi.id) {
                None => true,
                Some(last) if last.value.is_none() => true,
                Some(last) => fired(&kpi.measure_schedule, last.at, now),
            };
            if due {
                let value = kpis::measure(isms, kpi, &inputs, now);
                new_values.insert(kpi.id.clone(), value.clone());
                batch.kpi_values.push(value);
            }
        }
        let mut new_evaluations = Vec::new();
        for kpi in &isms.kpis {
            let latest = new_values
                .get(&kpi.id)
                .or_else(|| self.kpi_values.get(&kpi.id));
            let prior = self.kpi_evaluations.get(&kpi.id);
            let due = match prior {
                None => latest.is_some(),
                Some(last) if last.status == evaluate::KpiStatus::NoData => {
                    latest.is_some_and(|v| v.value.is_some() && v.at > last.at)
                }
                Some(last) => fired(&kpi.analysis_schedule, last.at, now),
            };
            if due {
                new_evaluations.push(kpis::analyse(kpi, latest, prior, now));
            }
        }
        report.kpis_measured = batch.kpi_values.len();
        report.kpis_analysed = new_evaluations.len();

        // Objectives, from the latest analyses.
        let mut latest_evaluations: HashMap<&str, &KpiEvaluation> = self
            .kpi_evaluations
            .iter()
            .map(|(k, e)| (k.as_str(), e))
            .collect();
        for e in &new_evaluations {
            latest_evaluations.insert(e.kpi.as_str(), e);
        }
        let objective_states = objectives::evaluate_objectives(isms, &latest_evaluations, now);
        for o in &objective_states {
            if self
                .objectives
                .get(&o.objective)
                .is_none_or(|old| old.status != o.status || old.reason != o.reason)
            {
                batch.objective_changes.push(o.clone());
            }
        }

        // Nonconformities.
        batch.nc_changes = nonconformities::transitions(
            isms,
            &NcInputs {
                verdicts: &new_verdicts,
                hosts,
                kpi_evaluations: &new_evaluations,
                active,
                last_closed,
                now,
            },
        );
        report.nonconformity_events = batch.nc_changes.iter().map(|c| c.events.len()).sum();
        batch.kpi_evaluations = new_evaluations.clone();

        Computed {
            report,
            batch,
            verdicts: new_verdicts
                .into_iter()
                .map(|v| ((v.machine_id.clone(), v.rule.clone()), v))
                .collect(),
            controls: control_states
                .into_iter()
                .map(|c| (c.control.clone(), c))
                .collect(),
            kpi_values: new_values,
            kpi_evaluations: new_evaluations
                .into_iter()
                .map(|e| (e.kpi.clone(), e))
                .collect(),
            objectives: objective_states
                .into_iter()
                .map(|o| (o.objective.clone(), o))
                .collect(),
        }
    }
}

/// What [`Engine::compute`] decided.
struct Computed {
    report: TickReport,
    batch: EvaluationBatch,
    verdicts: evaluate::VerdictMap,
    controls: HashMap<String, ControlState>,
    kpi_values: HashMap<String, KpiValue>,
    kpi_evaluations: HashMap<String, KpiEvaluation>,
    objectives: HashMap<String, ObjectiveState>,
}

/// Runs CPU-bound work without holding an async worker where the runtime allows it (the
/// multi-threaded runtime moves its other tasks elsewhere meanwhile); on a current-thread
/// runtime it just runs.
fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Asks a running engine for an evaluation now and waits for it.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    requests: mpsc::Sender<oneshot::Sender<Result<TickReport, String>>>,
    evaluations: watch::Receiver<u64>,
}

impl EngineHandle {
    /// Counts saved evaluations: changes after each one (outputs wake on it).
    pub fn evaluations(&self) -> watch::Receiver<u64> {
        self.evaluations.clone()
    }

    /// Runs one evaluation at the engine clock's current time.
    pub async fn evaluate_now(&self) -> Result<TickReport, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(reply)
            .await
            .map_err(|_| "the engine stopped".to_string())?;
        answer.await.map_err(|_| "the engine stopped".to_string())?
    }
}

/// Takes part in the election of one evaluator among collectors sharing a store
/// ([`Store::evaluator_heartbeat`]).
#[derive(Debug, Clone)]
pub struct Election {
    pub candidate: crate::store::EvaluatorCandidate,
    /// A candidate whose last heartbeat is older than this is gone.
    pub ttl: std::time::Duration,
    /// Wait before confirming a new leadership (candidates that started together see each
    /// other by then).
    pub settle: std::time::Duration,
}

impl Election {
    /// This process as a candidate, its heartbeat lasting three evaluation intervals (at least
    /// 30 s).
    pub fn new(now: DateTime<Utc>, interval: std::time::Duration) -> Election {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "collector".into());
        Election {
            candidate: crate::store::EvaluatorCandidate {
                holder: format!(
                    "{host}/{}/{}",
                    std::process::id(),
                    now.timestamp_nanos_opt().unwrap_or_default()
                ),
                since: now,
            },
            ttl: (interval * 3).max(std::time::Duration::from_secs(30)),
            settle: std::time::Duration::from_secs(1),
        }
    }
}

/// Whether this process evaluates now; after a change of leader, resumes the engine from the
/// store (the previous evaluator's state). `Err` says why not, for a manual request.
async fn lead(
    engine: &mut Engine,
    election: &Election,
    leading: &mut bool,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let store = Arc::clone(&engine.store);
    let beat = |now| store.evaluator_heartbeat(&election.candidate, now, election.ttl);
    let mut leader = beat(now).await.map_err(|e| e.to_string())?;
    if leader == election.candidate && !*leading {
        tokio::time::sleep(election.settle).await;
        leader = beat(now + chrono::Duration::from_std(election.settle).unwrap_or_default())
            .await
            .map_err(|e| e.to_string())?;
        if leader == election.candidate {
            *engine = Engine::resume(Arc::clone(&engine.isms), Arc::clone(&engine.store))
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(holder = %election.candidate.holder, "this collector evaluates the ISMS");
        }
    }
    if leader != election.candidate {
        if *leading {
            tracing::warn!(evaluator = %leader.holder, "another collector evaluates the ISMS now");
        }
        *leading = false;
        return Err(format!(
            "collector {} evaluates this store; this one ({}) is on standby",
            leader.holder, election.candidate.holder
        ));
    }
    *leading = true;
    Ok(())
}

/// Runs the engine in the background: every `policy.evaluation_interval` when `scheduled`,
/// and whenever asked through the handle. Stops when `shutdown` turns true. With an
/// `election`, evaluates only while this collector is the elected evaluator.
pub fn spawn(
    mut engine: Engine,
    clock: Arc<dyn Clock>,
    scheduled: bool,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<crate::metrics::Metrics>,
    election: Option<Election>,
) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    let (requests, mut incoming) = mpsc::channel::<oneshot::Sender<Result<TickReport, String>>>(8);
    let (evaluated, evaluations) = watch::channel(0u64);
    let interval = engine
        .isms()
        .policy
        .evaluation_interval
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(60));
    let task = tokio::spawn(async move {
        // Whether this process evaluated at its last tick (with an election).
        let mut leading = false;
        let mut timer = tokio::time::interval(interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let reply = tokio::select! {
                _ = timer.tick(), if scheduled => None,
                request = incoming.recv() => match request {
                    Some(reply) => Some(reply),
                    None => return,
                },
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let now = clock.now();
            if let Some(election) = &election
                && let Err(why) = lead(&mut engine, election, &mut leading, now).await
            {
                tracing::debug!(reason = %why, "evaluation skipped");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(why));
                }
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = engine.tick(now).await;
            metrics.observe_evaluation(started.elapsed().as_secs_f64(), outcome.is_ok());
            if outcome.is_ok() {
                evaluated.send_modify(|n| *n += 1);
            }
            match &outcome {
                Ok(r) => tracing::info!(
                    at = %now,
                    hosts = r.hosts,
                    in_scope = r.in_scope,
                    verdict_changes = r.verdict_changes,
                    kpis_measured = r.kpis_measured,
                    kpis_analysed = r.kpis_analysed,
                    nonconformities_opened = r.nonconformities_opened,
                    nonconformity_events = r.nonconformity_events,
                    millis = r.millis,
                    "evaluation done"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "evaluation failed; retried at the next interval")
                }
            }
            if let Some(reply) = reply {
                let _ = reply.send(outcome.map_err(|e| e.to_string()));
            }
        }
    });
    (
        EngineHandle {
            requests,
            evaluations,
        },
        task,
    )
}
