//! Clause 9.1 measurement and evaluation: a KPI's value from the in-scope hosts, their verdicts
//! and the nonconformity register, and its analysis against the target and tolerance.

use chrono::{DateTime, Utc};

use super::{
    HostFacts, KpiEvaluation, KpiStatus, KpiValue, Nonconformity, ResultFacts, Verdict,
    VerdictState,
};
use crate::isms::{Aggregate, Direction, Isms, Kpi, Measure};

/// What a measurement reads. Build it once per evaluation and measure every due KPI with it.
#[derive(Debug)]
pub struct MeasureInputs<'a> {
    /// In-scope hosts.
    pub hosts: &'a [&'a HostFacts],
    /// Verdicts of in-scope hosts, by rule.
    pub verdicts_by_rule: rustc_hash::FxHashMap<&'a str, Vec<&'a VerdictState>>,
    /// Nonconformities that are not closed.
    pub nonconformities: &'a [Nonconformity],
    /// Latest results of in-scope hosts, by check: a KPI over a check reads one list instead of
    /// looking its check up in every host (100 KPIs × 10,000 hosts would be a million lookups).
    pub results_by_check: rustc_hash::FxHashMap<&'a str, Vec<&'a ResultFacts>>,
}

impl<'a> MeasureInputs<'a> {
    pub fn new(
        hosts: &'a [&'a HostFacts],
        verdicts: &'a [VerdictState],
        nonconformities: &'a [Nonconformity],
    ) -> Self {
        let mut verdicts_by_rule: rustc_hash::FxHashMap<&str, Vec<&VerdictState>> =
            Default::default();
        for v in verdicts {
            verdicts_by_rule.entry(&*v.rule).or_default().push(v);
        }
        let mut results_by_check: rustc_hash::FxHashMap<&str, Vec<&ResultFacts>> =
            Default::default();
        for host in hosts {
            for (check, result) in &host.results {
                results_by_check
                    .entry(check.as_str())
                    .or_default()
                    .push(result);
            }
        }
        MeasureInputs {
            hosts,
            verdicts_by_rule,
            nonconformities,
            results_by_check,
        }
    }
}

fn days(seconds: i64) -> f64 {
    seconds.max(0) as f64 / 86_400.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Measures one KPI at `now`.
pub fn measure(isms: &Isms, kpi: &Kpi, inputs: &MeasureInputs<'_>, now: DateTime<Utc>) -> KpiValue {
    let hosts_in_scope = inputs.hosts.len() as u64;
    let empty = Vec::new();
    let verdicts_of = |rule: &str| inputs.verdicts_by_rule.get(rule).unwrap_or(&empty);
    let no_results = Vec::new();
    let results_of = |check: &str| inputs.results_by_check.get(check).unwrap_or(&no_results);
    let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
    let (value, numerator, denominator) = match &kpi.measure {
        Measure::SharePassing { rule } => {
            let verdicts = verdicts_of(rule);
            let green = verdicts.iter().filter(|v| v.verdict.is_green()).count() as u64;
            let all = verdicts.len() as u64;
            (ratio(green, all), Some(green), Some(all))
        }
        Measure::CountFailing { rule } => {
            let verdicts = verdicts_of(rule);
            let failing = verdicts
                .iter()
                .filter(|v| v.verdict == Verdict::Fail)
                .count() as u64;
            let all = verdicts.len() as u64;
            (
                (all > 0).then_some(failing as f64),
                Some(failing),
                Some(all),
            )
        }
        Measure::CountPassing { rule } => {
            let verdicts = verdicts_of(rule);
            let green = verdicts.iter().filter(|v| v.verdict.is_green()).count() as u64;
            let all = verdicts.len() as u64;
            ((all > 0).then_some(green as f64), Some(green), Some(all))
        }
        Measure::FailingAgeMaxDays { rule } => {
            let verdicts = verdicts_of(rule);
            let oldest = verdicts
                .iter()
                .filter(|v| v.verdict == Verdict::Fail)
                .filter_map(|v| v.failing_since)
                .map(|since| days((now - since).num_seconds()))
                .fold(0.0_f64, f64::max);
            let failing = verdicts
                .iter()
                .filter(|v| v.verdict == Verdict::Fail)
                .count() as u64;
            (
                (!verdicts.is_empty()).then_some(oldest),
                Some(failing),
                Some(verdicts.len() as u64),
            )
        }
        Measure::Value {
            check,
            value,
            aggregate,
        } => {
            let mut values: Vec<f64> = results_of(check)
                .iter()
                .filter(|r| now - r.observed_at <= isms.policy.max_evidence_age)
                .filter_map(|r| match r.values.get(value) {
                    Some(vigil_shared::Value::Int(i)) => Some(*i as f64),
                    Some(vigil_shared::Value::Float(f)) if f.is_finite() => Some(*f),
                    Some(vigil_shared::Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
                    Some(vigil_shared::Value::List(items)) => Some(items.len() as f64),
                    _ => None,
                })
                .collect();
            let n = values.len() as u64;
            let result = match aggregate {
                Aggregate::Count => Some(n as f64),
                _ if values.is_empty() => None,
                Aggregate::Max => values.iter().copied().reduce(f64::max),
                Aggregate::Min => values.iter().copied().reduce(f64::min),
                Aggregate::Sum => Some(values.iter().sum()),
                Aggregate::Mean => Some(values.iter().sum::<f64>() / n as f64),
                Aggregate::Percentile(p) => {
                    values.sort_by(f64::total_cmp);
                    percentile(&values, *p)
                }
            };
            (result, Some(n), Some(hosts_in_scope))
        }
        Measure::EvidenceAgeMaxDays { check } => {
            let ages: Vec<f64> = results_of(check)
                .iter()
                .map(|r| days((now - r.observed_at).num_seconds()))
                .collect();
            let n = ages.len() as u64;
            (
                ages.into_iter().reduce(f64::max),
                Some(n),
                Some(hosts_in_scope),
            )
        }
        Measure::Coverage => {
            let fresh = inputs
                .hosts
                .iter()
                .filter(|h| !isms.policy.is_stale(h.last_seen, now))
                .count() as u64;
            (
                ratio(fresh, hosts_in_scope),
                Some(fresh),
                Some(hosts_in_scope),
            )
        }
        Measure::OpenNonconformities { grades } => {
            let n = inputs
                .nonconformities
                .iter()
                .filter(|nc| nc.state.is_open())
                .filter(|nc| grades.is_empty() || grades.contains(&nc.grade))
                .count() as u64;
            (Some(n as f64), Some(n), None)
        }
        Measure::OverdueActions => {
            let today = now.date_naive();
            let n = inputs
                .nonconformities
                .iter()
                .filter(|nc| nc.state.is_open())
                .filter(|nc| nc.due.is_some_and(|due| due < today))
                .count() as u64;
            (Some(n as f64), Some(n), None)
        }
    };
    KpiValue {
        kpi: kpi.id.clone(),
        at: now,
        value,
        numerator,
        denominator,
        hosts_in_scope,
    }
}

/// Analyses the latest value of a KPI against its target (Clause 9.1 e).
pub fn analyse(
    kpi: &Kpi,
    latest: Option<&KpiValue>,
    prior: Option<&KpiEvaluation>,
    now: DateTime<Utc>,
) -> KpiEvaluation {
    let value = latest.and_then(|v| v.value);
    let target = kpi.target;
    let status = match value {
        None => KpiStatus::NoData,
        Some(v) => {
            let (met, tolerated) = match target.direction {
                Direction::AtLeast => (v >= target.value, v >= target.value - target.tolerance),
                Direction::AtMost => (v <= target.value, v <= target.value + target.tolerance),
            };
            if met {
                KpiStatus::Met
            } else if tolerated {
                KpiStatus::Tolerated
            } else {
                KpiStatus::Missed
            }
        }
    };
    let prior_misses = prior.map_or(0, |p| p.consecutive_misses);
    let prior_met = prior.map_or(0, |p| p.consecutive_met);
    KpiEvaluation {
        kpi: kpi.id.clone(),
        at: now,
        status,
        value,
        target: target.value,
        consecutive_misses: match status {
            KpiStatus::Missed => prior_misses + 1,
            // Missing data neither breaks nor extends a run of misses.
            KpiStatus::NoData => prior_misses,
            KpiStatus::Met | KpiStatus::Tolerated => 0,
        },
        consecutive_met: if status == KpiStatus::Met {
            prior_met + 1
        } else {
            0
        },
    }
}

#[cfg(test)]
mod tests {

    use chrono::Duration;
    use vigil_shared::Status;

    use super::super::tests::{fixture_isms, host, result_with, t};
    use super::super::verdicts::evaluate_all;
    use super::*;

    fn kpi<'a>(isms: &'a Isms, id: &str) -> &'a Kpi {
        isms.kpi(id).unwrap()
    }

    #[test]
    fn shares_counts_ages_and_percentiles() {
        let isms = fixture_isms();
        let now = t("2026-06-10T00:00:00Z");
        let hosts: Vec<HostFacts> = (0..10)
            .map(|i| {
                let failing = i < 3;
                host(
                    &format!("h{i}"),
                    &[
                        (
                            "packages.pending_security",
                            result_with(
                                if failing { Status::Fail } else { Status::Pass },
                                "2026-06-09T00:00:00Z",
                                &[("pending_security", if failing { 1 } else { 0 })],
                                if failing { &["openssl"] } else { &[] },
                            ),
                        ),
                        (
                            "packages.last_update",
                            result_with(
                                Status::Pass,
                                "2026-06-09T00:00:00Z",
                                &[("days_since_update", i64::from(i) * 10)],
                                &[],
                            ),
                        ),
                    ],
                )
            })
            .collect();
        let refs: Vec<&HostFacts> = hosts.iter().collect();
        let verdicts = evaluate_all(&isms, &hosts, &Default::default(), now);
        let inputs = MeasureInputs::new(&refs, &verdicts, &[]);
        let share = measure(&isms, kpi(&isms, "kpi.patch-security"), &inputs, now);
        assert_eq!(share.value, Some(0.7));
        assert_eq!((share.numerator, share.denominator), (Some(7), Some(10)));
        let age = measure(&isms, kpi(&isms, "kpi.patch-max-age"), &inputs, now);
        assert_eq!(
            age.value,
            Some(1.0),
            "failing since the observation a day before now"
        );
        let p95 = measure(&isms, kpi(&isms, "kpi.maintenance-p95"), &inputs, now);
        assert_eq!(p95.value, Some(90.0));
        // Every host last reported a day ago: beyond policy.stale_after (2 h).
        let coverage = measure(&isms, kpi(&isms, "kpi.monitoring-coverage"), &inputs, now);
        assert_eq!(coverage.value, Some(0.0));
        let mut fresh = hosts.clone();
        for h in fresh.iter_mut().take(3) {
            h.last_seen = now - Duration::hours(1);
        }
        let fresh_refs: Vec<&HostFacts> = fresh.iter().collect();
        let inputs = MeasureInputs::new(&fresh_refs, &verdicts, &[]);
        let coverage = measure(&isms, kpi(&isms, "kpi.monitoring-coverage"), &inputs, now);
        assert_eq!(coverage.value, Some(0.3));
    }

    #[test]
    fn analysis_against_target_and_tolerance_counts_streaks() {
        let isms = fixture_isms();
        let k = kpi(&isms, "kpi.patch-security"); // >= 0.95, tolerance 0.03
        let now = t("2026-06-10T00:00:00Z");
        let value = |v: f64| KpiValue {
            kpi: k.id.clone(),
            at: now,
            value: Some(v),
            numerator: None,
            denominator: None,
            hosts_in_scope: 10,
        };
        let met = analyse(k, Some(&value(0.96)), None, now);
        assert_eq!((met.status, met.consecutive_met), (KpiStatus::Met, 1));
        let tolerated = analyse(k, Some(&value(0.93)), Some(&met), now);
        assert_eq!(tolerated.status, KpiStatus::Tolerated);
        let missed1 = analyse(k, Some(&value(0.5)), Some(&tolerated), now);
        let missed2 = analyse(
            k,
            Some(&value(0.5)),
            Some(&missed1),
            now + Duration::days(7),
        );
        assert_eq!(
            (missed2.status, missed2.consecutive_misses),
            (KpiStatus::Missed, 2)
        );
        let nodata = analyse(k, None, Some(&missed2), now);
        assert_eq!(
            (nodata.status, nodata.consecutive_misses),
            (KpiStatus::NoData, 2)
        );
        let at_most = kpi(&isms, "kpi.extra-uid0"); // <= 0
        let zero = analyse(at_most, Some(&value(0.0)), None, now);
        assert_eq!(zero.status, KpiStatus::Met);
        let one = analyse(at_most, Some(&value(1.0)), None, now);
        assert_eq!(one.status, KpiStatus::Missed);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 95.0), Some(10.0));
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 10.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
