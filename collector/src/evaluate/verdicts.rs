//! Rule verdicts: one rule on one in-scope host, from its latest result, its exceptions and the
//! previous verdict (which carries when the failure began and when each offender was first
//! seen, for the grace period).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use vigil_shared::Status;

use std::sync::Arc;

use super::{HostFacts, ResultFacts, Verdict, VerdictKey, VerdictMap, VerdictState, in_scope};
use crate::isms::expr::{self, Scope};
use crate::isms::selector;
use crate::isms::{GraceScope, Isms, NoDataAs, Rule};

/// Names a condition can read from one result.
struct ResultScope<'a> {
    result: &'a ResultFacts,
    now: DateTime<Utc>,
}

impl Scope for ResultScope<'_> {
    fn lookup(&self, name: &str) -> Option<expr::Value> {
        match name {
            "status" => return Some(expr::Value::Str(self.result.status.as_str().into())),
            "offenders" => return Some(expr::Value::Num(self.result.offenders.len() as f64)),
            "checked" => return Some(expr::Value::Num(self.result.checked as f64)),
            "age_days" => {
                let secs = (self.now - self.result.observed_at).num_seconds().max(0);
                return Some(expr::Value::Num(secs as f64 / 86_400.0));
            }
            _ => {}
        }
        self.result.values.get(name).map(to_expr_value)
    }
}

fn to_expr_value(value: &vigil_shared::Value) -> expr::Value {
    match value {
        vigil_shared::Value::Bool(b) => expr::Value::Bool(*b),
        vigil_shared::Value::Int(i) => expr::Value::Num(*i as f64),
        vigil_shared::Value::Float(f) => expr::Value::Num(*f),
        vigil_shared::Value::Text(s) => expr::Value::Str(s.clone()),
        vigil_shared::Value::List(items) => expr::Value::List(items.len()),
    }
}

/// The raw judgement before exceptions and bookkeeping.
enum Judgement {
    Pass(Arc<str>),
    Fail(String),
    Error(String),
    NoData(String),
}

fn judge(isms: &Isms, rule: &Rule, result: Option<&ResultFacts>, now: DateTime<Utc>) -> Judgement {
    let Some(result) = result else {
        return Judgement::NoData(format!("the host has not reported {}", rule.check));
    };
    let age = now - result.observed_at;
    if age > isms.policy.max_evidence_age {
        return Judgement::NoData(format!(
            "the latest {} result ({}) is older than policy.max_evidence_age ({})",
            rule.check,
            result.observed_at.to_rfc3339(),
            crate::isms::duration::render(isms.policy.max_evidence_age)
        ));
    }
    match result.status {
        Status::Error => {
            return Judgement::Error(format!(
                "the check could not run: {}",
                result.error.as_deref().unwrap_or("no reason given")
            ));
        }
        Status::NoData => {
            let why = format!("the host holds nothing {} can judge", rule.check);
            return match rule.no_data {
                NoDataAs::NoData => Judgement::NoData(why),
                NoDataAs::Pass => {
                    Judgement::Pass(format!("{why} (counts as pass for this rule)").into())
                }
                NoDataAs::Fail => {
                    Judgement::Fail(format!("{why} (counts as failure for this rule)"))
                }
            };
        }
        Status::Pass | Status::Fail => {}
    }
    let offenders = if result.offenders.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = result
            .offenders
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        let more = result.offenders.len().saturating_sub(shown.len());
        format!(
            "; offenders: {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    };
    match (&rule.expr, &rule.condition) {
        (Some(condition), Some(text)) => {
            let scope = ResultScope { result, now };
            match condition.eval(&scope) {
                Ok(true) => Judgement::Pass(rule.pass_reason.clone()),
                Ok(false) => {
                    let values: Vec<String> = condition
                        .names()
                        .iter()
                        .filter_map(|n| scope.lookup(n).map(|v| format!("{n} = {v}")))
                        .collect();
                    Judgement::Fail(format!(
                        "`{text}` does not hold ({}){offenders}",
                        values.join(", ")
                    ))
                }
                Err(e) => Judgement::Error(format!("condition `{text}`: {e}")),
            }
        }
        _ => match result.status {
            Status::Pass => Judgement::Pass(rule.pass_reason.clone()),
            _ => Judgement::Fail(format!("the check failed{offenders}")),
        },
    }
}

/// Evaluates one rule on one host.
pub fn evaluate_rule(
    isms: &Isms,
    rule: &Rule,
    host: &HostFacts,
    prior: Option<&VerdictState>,
    now: DateTime<Utc>,
) -> VerdictState {
    let key = (
        Arc::from(host.machine_id.as_str()),
        Arc::from(rule.id.as_str()),
    );
    judge_rule(isms, rule, host, key, prior, now)
}

fn judge_rule(
    isms: &Isms,
    rule: &Rule,
    host: &HostFacts,
    (machine_id, rule_id): VerdictKey,
    prior: Option<&VerdictState>,
    now: DateTime<Utc>,
) -> VerdictState {
    let result = host.results.get(&rule.check);
    let observed_at = result.map(|r| r.observed_at);
    let judgement = judge(isms, rule, result, now);
    let today = now.date_naive();
    let mut exception = None;
    // A pass shares its rule's reason; other verdicts build their own.
    let mut shared_reason = None;
    let (verdict, mut reason) = match judgement {
        Judgement::Pass(r) => {
            shared_reason = Some(r);
            (Verdict::Pass, String::new())
        }
        Judgement::Error(r) => (Verdict::Error, r),
        Judgement::NoData(r) => (Verdict::NoData, r),
        Judgement::Fail(r) => {
            let matching: Vec<_> = isms
                .exceptions
                .iter()
                .filter(|e| e.rule == rule.id && selector::any_matches(&e.hosts, &host.labels))
                .collect();
            match matching
                .iter()
                .find(|e| e.approved <= today && today <= e.expires)
            {
                Some(e) => {
                    exception = Some(e.id.clone());
                    (
                        Verdict::Excepted,
                        format!(
                            "{r} — excepted by {} (approved by {}, until {})",
                            e.id, e.approver, e.expires
                        ),
                    )
                }
                None => match matching.iter().max_by_key(|e| e.expires) {
                    Some(e) if e.expires < today => (
                        Verdict::Fail,
                        format!("{r} (exception {} expired on {})", e.id, e.expires),
                    ),
                    _ => (Verdict::Fail, r),
                },
            }
        }
    };

    let mut failing_since = None;
    let mut offenders_first_seen = BTreeMap::new();
    let mut overdue_since = None;
    match verdict {
        Verdict::Fail => {
            let first = observed_at.unwrap_or(now);
            failing_since = Some(prior.and_then(|p| p.failing_since).unwrap_or(first));
            if let Some(result) = result {
                for offender in &result.offenders {
                    let seen = prior
                        .and_then(|p| p.offenders_first_seen.get(offender).copied())
                        .unwrap_or(first);
                    offenders_first_seen.insert(offender.clone(), seen);
                }
            }
            let due_at = match rule.grace_scope {
                GraceScope::Offender if !offenders_first_seen.is_empty() => offenders_first_seen
                    .values()
                    .min()
                    .map(|oldest| *oldest + rule.grace),
                _ => failing_since.map(|since| since + rule.grace),
            };
            if let Some(due_at) = due_at
                && due_at <= now
            {
                overdue_since = Some(prior.and_then(|p| p.overdue_since).unwrap_or(due_at));
            } else if let Some(due_at) = due_at {
                reason.push_str(&format!(
                    " (within the grace period until {})",
                    due_at.to_rfc3339()
                ));
            }
        }
        // An intermittent error or missing data must not restart the grace period.
        Verdict::Error | Verdict::NoData => {
            if let Some(p) = prior {
                failing_since = p.failing_since;
                offenders_first_seen = p.offenders_first_seen.clone();
                overdue_since = p.overdue_since;
            }
        }
        Verdict::Pass | Verdict::Excepted => {}
    }

    let mut state = VerdictState {
        machine_id,
        rule: rule_id,
        verdict,
        reason: shared_reason.unwrap_or_else(|| reason.into()),
        observed_at,
        failing_since,
        offenders_first_seen,
        overdue_since,
        exception,
        since: now,
    };
    if let Some(p) = prior
        && !state.differs_from(p)
    {
        state.since = p.since;
    }
    state
}

/// Evaluates every rule on every in-scope host. `prior` holds the previous states by
/// (machine id, rule).
pub fn evaluate_all(
    isms: &Isms,
    hosts: &[HostFacts],
    prior: &VerdictMap,
    now: DateTime<Utc>,
) -> Vec<VerdictState> {
    let rule_ids: Vec<Arc<str>> = isms
        .rules
        .iter()
        .map(|r| Arc::from(r.id.as_str()))
        .collect();
    let judged: Vec<&HostFacts> = hosts.iter().filter(|h| in_scope(isms, &h.labels)).collect();
    let evaluate_hosts = |chunk: &[&HostFacts]| {
        let mut out = Vec::with_capacity(chunk.len() * isms.rules.len());
        for host in chunk {
            let machine_id: Arc<str> = Arc::from(host.machine_id.as_str());
            for (rule, rule_id) in isms.rules.iter().zip(&rule_ids) {
                let key = (Arc::clone(&machine_id), Arc::clone(rule_id));
                let prior = prior.get(&key);
                out.push(judge_rule(isms, rule, host, key, prior, now));
            }
        }
        out
    };
    // Hosts are independent: a large fleet is judged on every core, in order.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 || judged.len() < 2_000 {
        return evaluate_hosts(&judged);
    }
    let chunk = judged.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = judged
            .chunks(chunk)
            .map(|part| (part, scope.spawn(move || evaluate_hosts(part))))
            .collect();
        let mut out = Vec::with_capacity(judged.len() * isms.rules.len());
        for (part, worker) in workers {
            // Evaluation does not panic; should a worker die anyway, its hosts are judged again
            // here rather than dropped.
            match worker.join() {
                Ok(verdicts) => out.extend(verdicts),
                Err(_) => out.extend(evaluate_hosts(part)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::tests::{fixture_isms, host, result_with, t};
    use super::*;

    fn rule<'a>(isms: &'a Isms, id: &str) -> &'a Rule {
        isms.rule(id).unwrap()
    }

    #[test]
    fn conditions_decide_pass_and_fail_with_the_values_in_the_reason() {
        let isms = fixture_isms();
        let now = t("2026-06-10T00:00:00Z");
        let h = host(
            "h1",
            &[(
                "packages.pending_security",
                result_with(
                    Status::Fail,
                    "2026-06-09T23:00:00Z",
                    &[("pending_security", 2)],
                    &["openssl:amd64", "libssl3:amd64"],
                ),
            )],
        );
        let v = evaluate_rule(&isms, rule(&isms, "patch.security-updates"), &h, None, now);
        assert_eq!(v.verdict, Verdict::Fail);
        assert!(
            v.reason
                .contains("`pending_security == 0` does not hold (pending_security = 2)"),
            "{}",
            v.reason
        );
        assert!(
            v.reason.contains("offenders: openssl:amd64, libssl3:amd64"),
            "{}",
            v.reason
        );
        assert_eq!(v.failing_since, Some(t("2026-06-09T23:00:00Z")));
        // Within the 14-day grace: not overdue yet.
        assert_eq!(v.overdue_since, None);

        let h = host(
            "h1",
            &[(
                "packages.pending_security",
                result_with(
                    Status::Pass,
                    "2026-06-09T23:00:00Z",
                    &[("pending_security", 0)],
                    &[],
                ),
            )],
        );
        let v = evaluate_rule(&isms, rule(&isms, "patch.security-updates"), &h, None, now);
        assert_eq!(v.verdict, Verdict::Pass);
    }

    #[test]
    fn grace_per_offender_counts_from_each_offenders_first_sighting() {
        let isms = fixture_isms();
        let r = rule(&isms, "patch.security-updates");
        let day0 = t("2026-06-01T00:00:00Z");
        let h = host(
            "h1",
            &[(
                "packages.pending_security",
                result_with(
                    Status::Fail,
                    "2026-06-01T00:00:00Z",
                    &[("pending_security", 1)],
                    &["openssl"],
                ),
            )],
        );
        let v0 = evaluate_rule(&isms, r, &h, None, day0);
        // Day 10: openssl fixed, another package pending since day 10.
        let h10 = host(
            "h1",
            &[(
                "packages.pending_security",
                result_with(
                    Status::Fail,
                    "2026-06-11T00:00:00Z",
                    &[("pending_security", 1)],
                    &["curl"],
                ),
            )],
        );
        let v10 = evaluate_rule(&isms, r, &h10, Some(&v0), day0 + Duration::days(10));
        assert_eq!(
            v10.offenders_first_seen.get("curl"),
            Some(&t("2026-06-11T00:00:00Z"))
        );
        assert!(!v10.offenders_first_seen.contains_key("openssl"));
        // Day 20: the host has failed for 20 days, but no single update is 14 days old.
        let h20 = host(
            "h1",
            &[(
                "packages.pending_security",
                result_with(
                    Status::Fail,
                    "2026-06-21T00:00:00Z",
                    &[("pending_security", 1)],
                    &["curl"],
                ),
            )],
        );
        let v20 = evaluate_rule(&isms, r, &h20, Some(&v10), day0 + Duration::days(20));
        assert_eq!(v20.verdict, Verdict::Fail);
        assert_eq!(v20.overdue_since, None);
        assert_eq!(v20.failing_since, Some(day0));
        // Day 26: curl has been pending for 15 days: overdue since day 25.
        let h26 = host(
            "h1",
            &[(
                "packages.pending_security",
                result_with(
                    Status::Fail,
                    "2026-06-27T00:00:00Z",
                    &[("pending_security", 1)],
                    &["curl"],
                ),
            )],
        );
        let v26 = evaluate_rule(&isms, r, &h26, Some(&v20), day0 + Duration::days(26));
        assert_eq!(v26.overdue_since, Some(t("2026-06-25T00:00:00Z")));
        assert_ne!(
            v26.since, v20.since,
            "becoming overdue is a change worth recording"
        );
    }

    #[test]
    fn errors_and_missing_data_do_not_restart_the_grace_period() {
        let isms = fixture_isms();
        let r = rule(&isms, "access.no-extra-uid0");
        let now = t("2026-06-10T00:00:00Z");
        let failing = host(
            "h1",
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
        let v1 = evaluate_rule(&isms, r, &failing, None, now);
        assert_eq!(v1.verdict, Verdict::Fail);
        assert!(v1.overdue_since.is_some(), "no grace: overdue at once");
        let mut broken = result_with(Status::Error, "2026-06-10T00:00:00Z", &[], &[]);
        broken.error = Some("/etc/passwd: permission denied".into());
        let erroring = host("h1", &[("accounts.uid0", broken)]);
        let v2 = evaluate_rule(&isms, r, &erroring, Some(&v1), now + Duration::hours(1));
        assert_eq!(v2.verdict, Verdict::Error);
        assert!(v2.reason.contains("permission denied"));
        assert_eq!(v2.failing_since, v1.failing_since);
        let v3 = evaluate_rule(&isms, r, &failing, Some(&v2), now + Duration::hours(2));
        assert_eq!(v3.failing_since, v1.failing_since);
        assert_eq!(v3.overdue_since, v1.overdue_since);
    }

    #[test]
    fn stale_or_missing_evidence_is_no_data_and_no_data_policy_applies() {
        let isms = fixture_isms();
        let now = t("2026-06-30T00:00:00Z");
        let old = host(
            "h1",
            &[(
                "accounts.uid0",
                result_with(
                    Status::Pass,
                    "2026-06-01T00:00:00Z",
                    &[("uid0_accounts", 1)],
                    &[],
                ),
            )],
        );
        let v = evaluate_rule(&isms, rule(&isms, "access.no-extra-uid0"), &old, None, now);
        assert_eq!(v.verdict, Verdict::NoData);
        assert!(v.reason.contains("older than policy.max_evidence_age"));
        let empty = host("h1", &[]);
        let v = evaluate_rule(
            &isms,
            rule(&isms, "access.no-extra-uid0"),
            &empty,
            None,
            now,
        );
        assert_eq!(v.verdict, Verdict::NoData);
        // sudo not installed: the rule says no_data counts as pass.
        let no_sudo = host(
            "h1",
            &[(
                "accounts.sudo_nopasswd",
                result_with(Status::NoData, "2026-06-29T00:00:00Z", &[], &[]),
            )],
        );
        let v = evaluate_rule(
            &isms,
            rule(&isms, "access.sudo-authentication"),
            &no_sudo,
            None,
            now,
        );
        assert_eq!(v.verdict, Verdict::Pass);
    }

    #[test]
    fn a_missing_value_is_an_error_not_a_pass() {
        let isms = fixture_isms();
        let h = host(
            "h1",
            &[(
                "packages.pending_security",
                result_with(Status::Pass, "2026-06-09T00:00:00Z", &[], &[]),
            )],
        );
        let v = evaluate_rule(
            &isms,
            rule(&isms, "patch.security-updates"),
            &h,
            None,
            t("2026-06-10T00:00:00Z"),
        );
        assert_eq!(v.verdict, Verdict::Error);
        assert!(
            v.reason.contains("no value \"pending_security\""),
            "{}",
            v.reason
        );
    }

    #[test]
    fn exceptions_apply_until_they_expire() {
        let isms = fixture_isms();
        let r = rule(&isms, "crypto.root-encrypted");
        let mut h = host(
            "legacy",
            &[(
                "encryption.root",
                result_with(Status::Fail, "2026-06-09T00:00:00Z", &[], &["/"]),
            )],
        );
        h.labels.insert("hostname".into(), "legacy-db-01".into());
        let v = evaluate_rule(&isms, r, &h, None, t("2026-06-10T00:00:00Z"));
        assert_eq!(v.verdict, Verdict::Excepted);
        assert_eq!(v.exception.as_deref(), Some("EXC-1"));
        let h2 = HostFacts {
            results: BTreeMap::from([(
                "encryption.root".to_string(),
                result_with(Status::Fail, "2027-02-01T00:00:00Z", &[], &["/"]),
            )]),
            ..h
        };
        let v = evaluate_rule(&isms, r, &h2, None, t("2027-02-01T12:00:00Z"));
        assert_eq!(v.verdict, Verdict::Fail);
        assert!(
            v.reason.contains("exception EXC-1 expired on 2027-01-31"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn hosts_outside_the_scope_are_not_judged() {
        let isms = fixture_isms();
        let mut lab = host("lab", &[]);
        lab.labels.insert("role".into(), "lab".into());
        let prod = host("prod", &[]);
        let verdicts = evaluate_all(
            &isms,
            &[lab, prod],
            &VerdictMap::default(),
            t("2026-06-10T00:00:00Z"),
        );
        assert!(verdicts.iter().all(|v| &*v.machine_id == "prod"));
        assert_eq!(verdicts.len(), isms.rules.len());
    }
}
