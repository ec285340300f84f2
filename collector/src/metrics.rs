//! `GET /metrics`: the ISMS's measurements and the collector's own health in the Prometheus
//! text format (the `prometheus` crate), for Grafana dashboards and alerting rules.
//!
//! Two kinds of series:
//! - the collector's own counters and histograms, updated as requests and reports are handled
//!   (`vigil_http_*`, `vigil_ingest_*`);
//! - gauges of the ISMS state (KPIs, objectives, controls, rule verdicts, nonconformities,
//!   hosts), recomputed from the store's current evaluation state when scraped, at most once
//!   per [`REFRESH_EVERY`] (concurrent scrapes share one refresh).
//!
//! Cardinality is bounded by the ISMS pack, never by the fleet: no series carries a host label.
//! The largest families are `vigil_control_status` (93 controls × 5 states) and
//! `vigil_rule_verdicts` (rules × 5 verdicts); agent versions are bounded by the versions
//! deployed. Every series and its labels are listed in `collector/API.md`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::evaluate::{KpiStatus, NcState, ObjectiveStatus, Verdict};
use crate::isms::Isms;
use crate::isms::model::ImplementationStatus;
use crate::store::{Store, StoreError};

/// How long a computed ISMS state serves scrapes before it is read again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Hosts count as stale after this long without a report when no ISMS says otherwise.
const DEFAULT_STALE_AFTER: chrono::Duration = chrono::Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot register metric: {0}")]
    Register(#[from] prometheus::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode metrics: {0}")]
    Encode(String),
}

/// The collector's metric families and the last refresh of the ISMS gauges.
pub struct Metrics {
    registry: Registry,
    http_requests: HistogramVec,
    ingest_reports: IntCounterVec,
    ingest_results: IntCounterVec,
    ingest_errors: IntCounterVec,
    store_ingest: prometheus::Histogram,
    evaluations: IntCounterVec,
    evaluation_seconds: prometheus::Histogram,
    in_flight: prometheus::IntGauge,
    kpi_value: GaugeVec,
    kpi_target: GaugeVec,
    kpi_status: IntGaugeVec,
    kpi_info: IntGaugeVec,
    objective_status: IntGaugeVec,
    control_status: IntGaugeVec,
    controls: IntGaugeVec,
    rule_verdicts: IntGaugeVec,
    nonconformities: IntGaugeVec,
    hosts: IntGaugeVec,
    agent_versions: IntGaugeVec,
    last_evaluation: Gauge,
    last_report: Gauge,
    refresh_seconds: Gauge,
    refreshed: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<GaugeVec, prometheus::Error> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn int_gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<Gauge, prometheus::Error> {
    let g = Gauge::with_opts(Opts::new(name, help))?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let http_requests = HistogramVec::new(
            HistogramOpts::new(
                "vigil_http_request_duration_seconds",
                "Time to answer HTTP requests, by matched route, method and status code.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method", "code"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        let ingest_reports = IntCounterVec::new(
            Opts::new(
                "vigil_ingest_reports_total",
                "Agent reports handled, by outcome (stored, duplicate, refused, unavailable).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(ingest_reports.clone()))?;
        let ingest_results = IntCounterVec::new(
            Opts::new(
                "vigil_ingest_results_total",
                "Check results stored from agent reports, by status.",
            ),
            &["status"],
        )?;
        registry.register(Box::new(ingest_results.clone()))?;
        let ingest_errors = IntCounterVec::new(
            Opts::new(
                "vigil_ingest_errors_total",
                "Agent reports refused or not stored, by reason (the HTTP answer's meaning).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(ingest_errors.clone()))?;
        let store_ingest = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "vigil_store_ingest_duration_seconds",
                "Time the store took to commit a report (or refuse it), queueing included.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        registry.register(Box::new(store_ingest.clone()))?;
        let evaluations = IntCounterVec::new(
            Opts::new(
                "vigil_evaluations_total",
                "ISMS evaluations run by this collector, by result (success, failure).",
            ),
            &["result"],
        )?;
        registry.register(Box::new(evaluations.clone()))?;
        let evaluation_seconds = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "vigil_evaluation_duration_seconds",
                "Time one ISMS evaluation took (verdicts, controls, KPIs, objectives, nonconformities, saving).",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
        )?;
        registry.register(Box::new(evaluation_seconds.clone()))?;
        let in_flight = prometheus::IntGauge::with_opts(Opts::new(
            "vigil_http_requests_in_flight",
            "HTTP requests being handled now.",
        ))?;
        registry.register(Box::new(in_flight.clone()))?;
        let info = IntGaugeVec::new(
            Opts::new(
                "vigil_collector_info",
                "The collector's version (always 1).",
            ),
            &["version"],
        )?;
        registry.register(Box::new(info.clone()))?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(Self {
            kpi_value: gauge_vec(
                &registry,
                "vigil_kpi_value",
                "Latest measured value of each KPI (ratios 0..1, counts, or days as the KPI defines).",
                &["kpi"],
            )?,
            kpi_target: gauge_vec(
                &registry,
                "vigil_kpi_target",
                "Target of each KPI.",
                &["kpi"],
            )?,
            kpi_status: int_gauge_vec(
                &registry,
                "vigil_kpi_status",
                "Latest analysis of each KPI: 1 for its current status (met, tolerated, missed, no_data), 0 for the others.",
                &["kpi", "status"],
            )?,
            kpi_info: int_gauge_vec(
                &registry,
                "vigil_kpi_info",
                "Each KPI's name and the Annex A controls it measures (always 1).",
                &["kpi", "name", "controls"],
            )?,
            objective_status: int_gauge_vec(
                &registry,
                "vigil_objective_status",
                "Each information-security objective: 1 for its current status (achieved, on_track, at_risk, missed, no_data), 0 for the others.",
                &["objective", "status"],
            )?,
            control_status: int_gauge_vec(
                &registry,
                "vigil_control_status",
                "Each Annex A control: 1 for its current implementation status, 0 for the others.",
                &["control", "theme", "status"],
            )?,
            controls: int_gauge_vec(
                &registry,
                "vigil_controls",
                "Annex A controls by theme and implementation status.",
                &["theme", "status"],
            )?,
            rule_verdicts: int_gauge_vec(
                &registry,
                "vigil_rule_verdicts",
                "Current verdicts of each rule over the hosts in its scope, by verdict.",
                &["rule", "verdict"],
            )?,
            nonconformities: int_gauge_vec(
                &registry,
                "vigil_nonconformities",
                "Nonconformities not yet closed, by state, severity (grade) and source.",
                &["state", "severity", "source"],
            )?,
            hosts: int_gauge_vec(
                &registry,
                "vigil_hosts",
                "Known hosts: reporting, or stale (no report within the ISMS policy's stale_after).",
                &["state"],
            )?,
            agent_versions: int_gauge_vec(
                &registry,
                "vigil_agent_versions",
                "Hosts by the agent version of their latest report.",
                &["version"],
            )?,
            last_evaluation: gauge(
                &registry,
                "vigil_evaluation_last_timestamp_seconds",
                "When the ISMS was last evaluated (Unix time; 0 before the first evaluation).",
            )?,
            last_report: gauge(
                &registry,
                "vigil_report_last_timestamp_seconds",
                "When the latest agent report was received (Unix time; 0 before the first).",
            )?,
            refresh_seconds: gauge(
                &registry,
                "vigil_metrics_refresh_duration_seconds",
                "Time the last refresh of the ISMS gauges took reading the store.",
            )?,
            registry,
            http_requests,
            ingest_reports,
            ingest_results,
            ingest_errors,
            store_ingest,
            evaluations,
            evaluation_seconds,
            in_flight,
            refreshed: Mutex::new(None),
        })
    }

    /// Records one answered HTTP request.
    pub fn observe_request(&self, route: &str, method: &str, code: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, &code.to_string()])
            .observe(seconds);
    }

    /// Records the outcome of one report (`stored`, `duplicate`, `refused`, `unavailable`).
    pub fn observe_report(&self, outcome: &str) {
        self.ingest_reports.with_label_values(&[outcome]).inc();
    }

    /// Records a report that was not stored, by the HTTP status it was answered with.
    pub fn observe_report_error(&self, status: u16) {
        let reason = match status {
            400 => "bad_request",
            401 => "unauthenticated",
            403 => "forbidden",
            408 => "timeout",
            409 => "conflict",
            413 => "too_large",
            415 => "unsupported_media_type",
            422 => "invalid_report",
            503 => "unavailable",
            _ => "other",
        };
        self.ingest_errors.with_label_values(&[reason]).inc();
    }

    /// Records how long the store took with one report.
    pub fn observe_store_ingest(&self, seconds: f64) {
        self.store_ingest.observe(seconds);
    }

    /// Records one ISMS evaluation.
    pub fn observe_evaluation(&self, seconds: f64, succeeded: bool) {
        self.evaluations
            .with_label_values(&[if succeeded { "success" } else { "failure" }])
            .inc();
        if succeeded {
            self.evaluation_seconds.observe(seconds);
        }
    }

    /// Sets the number of HTTP requests being handled.
    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(to_i64(n));
    }

    /// Records the results of one stored report.
    pub fn observe_results(&self, counts: &crate::store::StatusCounts) {
        for (status, n) in [
            ("pass", counts.pass),
            ("fail", counts.fail),
            ("error", counts.error),
            ("no_data", counts.no_data),
        ] {
            self.ingest_results.with_label_values(&[status]).inc_by(n);
        }
    }

    /// The exposition, with the ISMS gauges refreshed when older than [`REFRESH_EVERY`].
    pub async fn render(
        &self,
        store: &Arc<dyn Store>,
        isms: Option<&Isms>,
        now: DateTime<Utc>,
    ) -> Result<String, MetricsError> {
        {
            let mut refreshed = self.refreshed.lock().await;
            if refreshed.is_none_or(|at| at.elapsed() >= REFRESH_EVERY) {
                let started = Instant::now();
                self.refresh(store.as_ref(), isms, now).await?;
                self.refresh_seconds.set(started.elapsed().as_secs_f64());
                *refreshed = Some(Instant::now());
            }
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| MetricsError::Encode(e.to_string()))?;
        String::from_utf8(out).map_err(|e| MetricsError::Encode(e.to_string()))
    }

    async fn refresh(
        &self,
        store: &dyn Store,
        isms: Option<&Isms>,
        now: DateTime<Utc>,
    ) -> Result<(), MetricsError> {
        let hosts = store.list_hosts().await?;
        let stale = hosts
            .iter()
            .filter(|h| match isms {
                Some(isms) => isms.policy.is_stale(h.last_seen, now),
                None => now - h.last_seen > DEFAULT_STALE_AFTER,
            })
            .count();
        self.hosts.reset();
        self.hosts
            .with_label_values(&["reporting"])
            .set(to_i64(hosts.len() - stale));
        self.hosts.with_label_values(&["stale"]).set(to_i64(stale));
        let mut versions: BTreeMap<&str, i64> = BTreeMap::new();
        for host in &hosts {
            *versions.entry(host.agent_version.as_str()).or_default() += 1;
        }
        self.agent_versions.reset();
        for (version, n) in versions {
            let version = if version.is_empty() {
                "unknown"
            } else {
                version
            };
            self.agent_versions.with_label_values(&[version]).set(n);
        }
        self.last_report
            .set(hosts.iter().map(|h| h.last_seen).max().map_or(0.0, seconds));

        let Some(isms) = isms else {
            return Ok(());
        };
        let state = store.engine_state().await?;
        self.last_evaluation
            .set(state.last_tick.map_or(0.0, seconds));

        self.kpi_value.reset();
        self.kpi_target.reset();
        self.kpi_status.reset();
        self.kpi_info.reset();
        for kpi in &isms.kpis {
            self.kpi_info
                .with_label_values(&[&kpi.id, &kpi.name, &kpi.controls.join(",")])
                .set(1);
        }
        // The engine state holds the latest measurement and analysis of each KPI.
        for value in &state.kpi_values {
            if let Some(v) = value.value {
                self.kpi_value.with_label_values(&[&value.kpi]).set(v);
            }
        }
        let evaluations: BTreeMap<&str, _> = state
            .kpi_evaluations
            .iter()
            .map(|e| (e.kpi.as_str(), e))
            .collect();
        for kpi in &isms.kpis {
            let current = evaluations.get(kpi.id.as_str());
            if let Some(e) = current {
                self.kpi_target.with_label_values(&[&kpi.id]).set(e.target);
            }
            let status = current.map_or(KpiStatus::NoData, |e| e.status);
            for s in [
                KpiStatus::Met,
                KpiStatus::Tolerated,
                KpiStatus::Missed,
                KpiStatus::NoData,
            ] {
                self.kpi_status
                    .with_label_values(&[&kpi.id, s.as_str()])
                    .set(i64::from(s == status));
            }
        }

        self.objective_status.reset();
        let objectives: BTreeMap<&str, ObjectiveStatus> = state
            .objectives
            .iter()
            .map(|o| (o.objective.as_str(), o.status))
            .collect();
        for objective in &isms.objectives {
            let status = objectives
                .get(objective.id.as_str())
                .copied()
                .unwrap_or(ObjectiveStatus::NoData);
            for s in [
                ObjectiveStatus::Achieved,
                ObjectiveStatus::OnTrack,
                ObjectiveStatus::AtRisk,
                ObjectiveStatus::Missed,
                ObjectiveStatus::NoData,
            ] {
                self.objective_status
                    .with_label_values(&[&objective.id, s.as_str()])
                    .set(i64::from(s == status));
            }
        }

        self.control_status.reset();
        self.controls.reset();
        let controls: BTreeMap<&str, ImplementationStatus> = state
            .controls
            .iter()
            .map(|c| (c.control.as_str(), c.status))
            .collect();
        let statuses = [
            ImplementationStatus::Implemented,
            ImplementationStatus::Partially,
            ImplementationStatus::NotImplemented,
            ImplementationStatus::NotApplicable,
            ImplementationStatus::NoEvidence,
        ];
        let mut by_theme: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for control in vigil_shared::controls::all() {
            let theme = control.theme.as_str();
            let status = controls
                .get(control.id.as_str())
                .copied()
                .unwrap_or(ImplementationStatus::NoEvidence);
            for s in statuses {
                self.control_status
                    .with_label_values(&[&control.id, theme, s.as_str()])
                    .set(i64::from(s == status));
                by_theme.entry((theme, s.as_str())).or_default();
            }
            *by_theme.entry((theme, status.as_str())).or_default() += 1;
        }
        for ((theme, status), n) in by_theme {
            self.controls.with_label_values(&[theme, status]).set(n);
        }

        self.rule_verdicts.reset();
        let mut verdicts: BTreeMap<(&str, &'static str), i64> = BTreeMap::new();
        for rule in &isms.rules {
            for v in [
                Verdict::Pass,
                Verdict::Fail,
                Verdict::Error,
                Verdict::NoData,
                Verdict::Excepted,
            ] {
                verdicts.insert((rule.id.as_str(), v.as_str()), 0);
            }
        }
        for v in &state.verdicts {
            if let Some(n) = verdicts.get_mut(&(&*v.rule, v.verdict.as_str())) {
                *n += 1;
            }
        }
        for ((rule, verdict), n) in verdicts {
            self.rule_verdicts
                .with_label_values(&[rule, verdict])
                .set(n);
        }

        self.nonconformities.reset();
        let mut ncs: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
        for nc in state
            .active_nonconformities
            .iter()
            .filter(|nc| nc.state != NcState::Closed)
        {
            *ncs.entry((nc.state.as_str(), nc.grade.as_str(), nc.source.as_str()))
                .or_default() += 1;
        }
        // The open count by severity is always present (0 when none), so that dashboards and
        // alerts see a series rather than an absence.
        for grade in ["observation", "minor", "major"] {
            ncs.entry(("open", grade, "rule")).or_default();
        }
        for ((state, grade, source), n) in ncs {
            self.nonconformities
                .with_label_values(&[state, grade, source])
                .set(n);
        }
        Ok(())
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}
