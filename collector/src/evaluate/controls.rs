//! Control status (the live Statement of Applicability): implemented, partially, not
//! implemented, not applicable, or no evidence — from the verdicts of the rules mapped to each
//! control on in-scope hosts, and from manual evidence where no rule measures the control.

use chrono::{DateTime, Utc};

use super::{ControlState, HostFacts, Verdict, VerdictState};
use crate::isms::{ImplementationStatus, Isms};

#[derive(Default)]
struct Tally {
    passing: u64,
    failing: u64,
    evidence: u64,
    last_evidence: Option<DateTime<Utc>>,
}

/// Evaluates every control. `hosts` must be the in-scope hosts; `verdicts` their verdicts.
pub fn evaluate_controls(
    isms: &Isms,
    hosts: &[&HostFacts],
    verdicts: &[VerdictState],
    now: DateTime<Utc>,
) -> Vec<ControlState> {
    // Tallies by control position; verdicts and results are mapped through per-rule and
    // per-check lists of positions built once, so a large fleet costs one lookup per verdict
    // and per result rather than one per control.
    let position: rustc_hash::FxHashMap<&str, usize> = isms
        .controls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut tallies: Vec<Tally> = isms.controls.iter().map(|_| Tally::default()).collect();
    let rule_controls: rustc_hash::FxHashMap<&str, Vec<usize>> = isms
        .rules
        .iter()
        .map(|r| {
            let positions = r
                .controls
                .iter()
                .filter_map(|c| position.get(c.as_str()).copied())
                .collect();
            (r.id.as_str(), positions)
        })
        .collect();
    for v in verdicts {
        let Some(positions) = rule_controls.get(&*v.rule) else {
            continue;
        };
        for &i in positions {
            match v.verdict {
                Verdict::Pass | Verdict::Excepted => tallies[i].passing += 1,
                Verdict::Fail => tallies[i].failing += 1,
                Verdict::Error | Verdict::NoData => {}
            }
        }
    }
    let mut check_controls: rustc_hash::FxHashMap<&str, Vec<usize>> = Default::default();
    for host in hosts {
        for (check, result) in &host.results {
            if now - result.observed_at > isms.policy.max_evidence_age {
                continue;
            }
            // Agents map a check to the same controls on every host (one version's registry).
            let positions = check_controls.entry(check.as_str()).or_insert_with(|| {
                result
                    .controls
                    .iter()
                    .filter_map(|c| position.get(c.as_str()).copied())
                    .collect()
            });
            for &i in positions.iter() {
                tallies[i].evidence += 1;
                tallies[i].last_evidence = tallies[i].last_evidence.max(Some(result.observed_at));
            }
        }
    }
    let today = now.date_naive();
    isms.controls
        .iter()
        .zip(tallies)
        .map(|(decision, tally)| {
            let manual_items = decision
                .manual
                .as_ref()
                .map_or(0, |m| m.evidence.len() as u64);
            let (status, reason) = if !decision.applicable {
                (
                    ImplementationStatus::NotApplicable,
                    format!(
                        "excluded in the Statement of Applicability: {}",
                        decision.justification
                    ),
                )
            } else if tally.passing + tally.failing > 0 {
                let status = match (tally.passing, tally.failing) {
                    (_, 0) => ImplementationStatus::Implemented,
                    (0, _) => ImplementationStatus::NotImplemented,
                    _ => ImplementationStatus::Partially,
                };
                (
                    status,
                    format!(
                        "{} of {} rule verdicts on in-scope hosts pass",
                        tally.passing,
                        tally.passing + tally.failing
                    ),
                )
            } else if let Some(manual) = &decision.manual {
                let due = manual.reviewed + manual.review_every;
                if due < today {
                    (
                        ImplementationStatus::NoEvidence,
                        format!("manual evidence was due for review on {due}"),
                    )
                } else {
                    (
                        manual.status,
                        format!(
                            "manual evidence reviewed on {} (next review by {due})",
                            manual.reviewed
                        ),
                    )
                }
            } else {
                (
                    ImplementationStatus::NoEvidence,
                    "no rule measures this control and no manual evidence is recorded".to_string(),
                )
            };
            ControlState {
                control: decision.id.clone(),
                status,
                reason,
                passing: tally.passing,
                failing: tally.failing,
                evidence_count: tally.evidence + manual_items,
                last_evidence: tally.last_evidence,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use vigil_shared::Status;

    use super::super::tests::{host, isms_with, result_with, t};
    use super::super::verdicts::evaluate_all;
    use super::*;

    #[test]
    fn status_follows_the_verdicts_of_mapped_rules() {
        let isms = isms_with(&[]);
        let now = t("2026-06-10T00:00:00Z");
        let good = host(
            "a",
            &[(
                "accounts.uid0",
                result_with(
                    Status::Pass,
                    "2026-06-09T00:00:00Z",
                    &[("uid0_accounts", 1)],
                    &[],
                ),
            )],
        );
        let bad = host(
            "b",
            &[(
                "accounts.uid0",
                result_with(
                    Status::Fail,
                    "2026-06-09T00:00:00Z",
                    &[("uid0_accounts", 2)],
                    &["toor"],
                ),
            )],
        );
        let verdicts = evaluate_all(&isms, std::slice::from_ref(&good), &Default::default(), now);
        let states = evaluate_controls(&isms, &[&good], &verdicts, now);
        let a82 = states.iter().find(|c| c.control == "A.8.2").unwrap();
        assert_eq!(a82.status, ImplementationStatus::Implemented);
        assert_eq!((a82.passing, a82.failing), (1, 0));

        let hosts = [good.clone(), bad.clone()];
        let verdicts = evaluate_all(&isms, &hosts, &Default::default(), now);
        let refs: Vec<&HostFacts> = hosts.iter().collect();
        let states = evaluate_controls(&isms, &refs, &verdicts, now);
        let a82 = states.iter().find(|c| c.control == "A.8.2").unwrap();
        assert_eq!(a82.status, ImplementationStatus::Partially);

        let verdicts = evaluate_all(&isms, std::slice::from_ref(&bad), &Default::default(), now);
        let states = evaluate_controls(&isms, &[&bad], &verdicts, now);
        let a82 = states.iter().find(|c| c.control == "A.8.2").unwrap();
        assert_eq!(a82.status, ImplementationStatus::NotImplemented);
        assert_eq!(
            a82.evidence_count, 0,
            "the fixture result maps to A.8.8 only"
        );
        let a88 = states.iter().find(|c| c.control == "A.8.8").unwrap();
        assert_eq!(a88.evidence_count, 1);
        assert_eq!(a88.last_evidence, Some(t("2026-06-09T00:00:00Z")));
    }

    #[test]
    fn manual_evidence_counts_until_its_review_is_due_and_exclusions_are_not_applicable() {
        let isms = isms_with(&[(
            "controls.toml",
            "id = \"A.7.4\"  # Physical security monitoring\napplicable = true",
            "id = \"A.7.4\"  # Physical security monitoring\napplicable = false",
        )]);
        let states = evaluate_controls(&isms, &[], &[], t("2026-10-01T00:00:00Z"));
        let get = |id: &str| states.iter().find(|c| c.control == id).unwrap().clone();
        assert_eq!(get("A.5.1").status, ImplementationStatus::Implemented);
        assert_eq!(get("A.5.1").evidence_count, 1);
        assert_eq!(get("A.6.3").status, ImplementationStatus::Partially);
        assert_eq!(get("A.5.3").status, ImplementationStatus::NoEvidence);
        assert_eq!(get("A.7.4").status, ImplementationStatus::NotApplicable);
        // A year and more after the review, manual evidence no longer counts.
        let later = evaluate_controls(&isms, &[], &[], t("2027-10-01T00:00:00Z"));
        let a51 = later.iter().find(|c| c.control == "A.5.1").unwrap();
        assert_eq!(a51.status, ImplementationStatus::NoEvidence);
        assert!(a51.reason.contains("due for review"));
        assert_eq!(states.len(), 93);
    }
}
