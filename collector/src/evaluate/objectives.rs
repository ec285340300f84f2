//! Clause 6.2 objective status from the latest evaluation of each linked KPI and the deadline:
//! achieved (every KPI met), missed (deadline passed without that), no data (no KPI evaluated
//! yet), at risk (a KPI missed its target), on track (otherwise).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{KpiEvaluation, KpiStatus, ObjectiveState, ObjectiveStatus};
use crate::isms::{Isms, Objective};

/// Evaluates one objective.
pub fn evaluate_objective(
    objective: &Objective,
    latest: &HashMap<&str, &KpiEvaluation>,
    now: DateTime<Utc>,
) -> ObjectiveState {
    let statuses: Vec<(&str, KpiStatus)> = objective
        .kpis
        .iter()
        .map(|k| {
            (
                k.as_str(),
                latest
                    .get(k.as_str())
                    .map_or(KpiStatus::NoData, |e| e.status),
            )
        })
        .collect();
    let named = |wanted: KpiStatus| -> Vec<&str> {
        statuses
            .iter()
            .filter(|(_, s)| *s == wanted)
            .map(|(k, _)| *k)
            .collect()
    };
    let (status, reason) = if statuses.iter().all(|(_, s)| *s == KpiStatus::Met) {
        (
            ObjectiveStatus::Achieved,
            "every KPI meets its target".to_string(),
        )
    } else if now.date_naive() > objective.deadline {
        (
            ObjectiveStatus::Missed,
            format!("deadline {} passed; not met: {}", objective.deadline, {
                let mut not_met = named(KpiStatus::Missed);
                not_met.extend(named(KpiStatus::Tolerated));
                not_met.extend(named(KpiStatus::NoData));
                not_met.join(", ")
            }),
        )
    } else if statuses.iter().all(|(_, s)| *s == KpiStatus::NoData) {
        (
            ObjectiveStatus::NoData,
            "no KPI has been evaluated yet".to_string(),
        )
    } else if !named(KpiStatus::Missed).is_empty() {
        (
            ObjectiveStatus::AtRisk,
            format!("missed: {}", named(KpiStatus::Missed).join(", ")),
        )
    } else {
        (
            ObjectiveStatus::OnTrack,
            format!("no KPI missed; not yet met: {}", {
                let mut pending = named(KpiStatus::Tolerated);
                pending.extend(named(KpiStatus::NoData));
                pending.join(", ")
            }),
        )
    };
    ObjectiveState {
        objective: objective.id.clone(),
        status,
        reason,
    }
}

/// Evaluates every objective.
pub fn evaluate_objectives(
    isms: &Isms,
    latest: &HashMap<&str, &KpiEvaluation>,
    now: DateTime<Utc>,
) -> Vec<ObjectiveState> {
    isms.objectives
        .iter()
        .map(|o| evaluate_objective(o, latest, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture_isms, t};
    use super::*;

    fn eval(kpi: &str, status: KpiStatus) -> KpiEvaluation {
        KpiEvaluation {
            kpi: kpi.into(),
            at: t("2026-06-01T00:00:00Z"),
            status,
            value: Some(1.0),
            target: 1.0,
            consecutive_misses: 0,
            consecutive_met: 0,
        }
    }

    #[test]
    fn status_table() {
        let isms = fixture_isms();
        let objective = isms
            .objectives
            .iter()
            .find(|o| o.id == "OBJ-CRYPTO")
            .unwrap();
        let before = t("2026-06-01T00:00:00Z");
        let after = t("2028-01-02T00:00:00Z");
        let run = |a: KpiStatus, b: Option<KpiStatus>, now| {
            let ea = eval("kpi.disk-encryption", a);
            let eb = b.map(|s| eval("kpi.swap-encryption", s));
            let mut latest: HashMap<&str, &KpiEvaluation> =
                HashMap::from([("kpi.disk-encryption", &ea)]);
            if let Some(eb) = &eb {
                latest.insert("kpi.swap-encryption", eb);
            }
            evaluate_objective(objective, &latest, now).status
        };
        use KpiStatus::*;
        assert_eq!(run(Met, Some(Met), before), ObjectiveStatus::Achieved);
        assert_eq!(run(Met, Some(Met), after), ObjectiveStatus::Achieved);
        assert_eq!(run(Met, Some(Tolerated), before), ObjectiveStatus::OnTrack);
        assert_eq!(run(Met, None, before), ObjectiveStatus::OnTrack);
        assert_eq!(run(Missed, Some(Met), before), ObjectiveStatus::AtRisk);
        assert_eq!(run(Missed, Some(Met), after), ObjectiveStatus::Missed);
        assert_eq!(run(NoData, None, before), ObjectiveStatus::NoData);
        let reason = evaluate_objective(objective, &HashMap::new(), after).reason;
        assert!(reason.contains("deadline 2027-12-31 passed"), "{reason}");
    }
}
