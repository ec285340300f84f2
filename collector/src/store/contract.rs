//! The behaviour every [`Store`] implementation must have, as functions taking `&dyn Store`.
//! Each backend's tests call [`run_all`] on a fresh store (and the reopen pair on a store they
//! close and reopen), so SQLite today and ClickHouse later answer to the same suite.
//!
//! Functions use their own agent and host names, so they can share one store.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use vigil_shared::{Report, Status};

use crate::auth::{Role, Token};
use crate::store::{
    EvidenceKey, EvidencePageQuery, EvidenceRecord, HistoryQuery, IngestOutcome, IngestRequest,
    NewPrincipal, Store, StoreError, StoreStats,
};
use crate::testutil::{self, fail, pass, t0};

pub fn new_principal(name: &str, role: Role) -> NewPrincipal {
    NewPrincipal {
        name: name.into(),
        role,
        labels: BTreeMap::new(),
        token_hash: Token::generate().unwrap().hash(),
        created_at: t0(),
        expires_at: None,
    }
}

async fn agent(store: &dyn Store, name: &str) {
    store
        .create_principal(new_principal(name, Role::Agent))
        .await
        .unwrap();
}

fn request(agent: &str, report: &Report) -> IngestRequest {
    let body = serde_json::to_vec(report).unwrap();
    IngestRequest {
        agent: agent.into(),
        report: report.clone(),
        received_at: report.sent_at + Duration::milliseconds(250),
        body_sha256: Sha256::digest(&body).into(),
        signed: Some(signed_body(body)),
    }
}

/// A fixed agent key for the contract (the store records signatures, it does not check them).
fn contract_key() -> vigil_shared::signing::SigningKey {
    vigil_shared::signing::SigningKey::from_bytes(&[7; 32])
}

fn signed_body(json: Vec<u8>) -> crate::store::chain::SignedBody {
    let header = vigil_shared::signing::SignatureHeader::sign(&contract_key(), &json);
    crate::store::chain::SignedBody {
        json,
        signature: header.signature.to_bytes(),
        public_key: header.key.to_bytes(),
    }
}

async fn ingest(store: &dyn Store, agent: &str, report: &Report) -> IngestOutcome {
    store.ingest(request(agent, report)).await.unwrap()
}

fn stored(report: &Report) -> IngestOutcome {
    IngestOutcome::Stored {
        seq: report.seq,
        batch_id: report.batch_id.clone(),
    }
}

/// Runs every contract function on one store.
pub async fn run_all(store: &dyn Store) {
    principals_are_created_found_listed_and_unique(store).await;
    revocation_and_rotation(store).await;
    expiry_is_kept_and_rotation_sets_a_fresh_one(store).await;
    a_report_is_stored_once_and_retries_are_duplicates(store).await;
    conflicting_sequence_and_batch_ids_are_refused(store).await;
    a_host_belongs_to_its_first_agent(store).await;
    only_active_agents_write(store).await;
    hosts_list_their_latest_state(store).await;
    a_late_old_report_never_hides_newer_results(store).await;
    host_detail_keeps_evidence_and_exact_times(store).await;
    history_covers_periods_between_observations(store).await;
    the_store_answers_pings(store).await;
    evaluation_hosts_carry_labels_and_latest_results(store).await;
    evaluations_round_trip_and_answer_point_in_time(store).await;
    nonconformities_keep_events_and_refuse_stale_changes(store).await;
    evidence_pages_cover_the_period_in_key_order(store).await;
    report_times_are_paged_per_host(store).await;
    agent_keys_register_once_and_rotate_by_operator(store).await;
    reports_are_chained_per_host(store).await;
}

pub async fn principals_are_created_found_listed_and_unique(store: &dyn Store) {
    let mut new = new_principal("p-viewer", Role::Viewer);
    new.labels.insert("team".into(), "secops".into());
    let hash = new.token_hash;
    let created = store.create_principal(new.clone()).await.unwrap();
    assert_eq!(created.name, "p-viewer");
    assert_eq!(created.role, Role::Viewer);
    assert_eq!(created.labels["team"], "secops");
    assert_eq!(created.created_at, t0());
    assert!(created.is_active());

    let found = store.principal_by_token(hash).await.unwrap();
    assert_eq!(found.as_ref(), Some(&created));
    let unknown = Token::generate().unwrap().hash();
    assert_eq!(store.principal_by_token(unknown).await.unwrap(), None);
    assert_eq!(
        store.principal_by_name("p-viewer").await.unwrap(),
        Some(created)
    );
    assert_eq!(store.principal_by_name("p-nobody").await.unwrap(), None);

    // A second principal with the same name is refused, whatever its role or token.
    let err = store
        .create_principal(new_principal("p-viewer", Role::Agent))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PrincipalExists { ref name } if name == "p-viewer"),
        "{err}"
    );

    store
        .create_principal(new_principal("p-admin", Role::Admin))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_principals()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .filter(|n| n.starts_with("p-"))
        .collect();
    assert_eq!(names, ["p-admin", "p-viewer"]);
}

pub async fn revocation_and_rotation(store: &dyn Store) {
    let new = new_principal("r-agent", Role::Agent);
    let old_hash = new.token_hash;
    store.create_principal(new).await.unwrap();

    let at = t0() + Duration::hours(1);
    let revoked = store.revoke_principal("r-agent", at).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    // Revoking again keeps the first time.
    let again = store
        .revoke_principal("r-agent", at + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at));
    // The revoked principal is still found by its token, marked revoked, for a clear 401.
    let found = store.principal_by_token(old_hash).await.unwrap().unwrap();
    assert!(!found.is_active());

    let err = store.revoke_principal("r-nobody", at).await.unwrap_err();
    assert!(matches!(err, StoreError::PrincipalNotFound { .. }), "{err}");

    let new_hash = Token::generate().unwrap().hash();
    let rotated = store.rotate_token("r-agent", new_hash, None).await.unwrap();
    assert!(rotated.is_active());
    assert_eq!(store.principal_by_token(old_hash).await.unwrap(), None);
    assert_eq!(
        store
            .principal_by_token(new_hash)
            .await
            .unwrap()
            .map(|p| p.name),
        Some("r-agent".to_string())
    );
    let err = store
        .rotate_token("r-nobody", new_hash, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::PrincipalNotFound { .. }), "{err}");
}

pub async fn expiry_is_kept_and_rotation_sets_a_fresh_one(store: &dyn Store) {
    // Nanosecond precision survives the round trip, like every other stored time.
    let expires = t0() + Duration::days(90) + Duration::nanoseconds(123);
    let mut new = new_principal("x-viewer", Role::Viewer);
    new.expires_at = Some(expires);
    let hash = new.token_hash;
    let created = store.create_principal(new).await.unwrap();
    assert_eq!(created.expires_at, Some(expires));
    let found = store.principal_by_token(hash).await.unwrap().unwrap();
    assert_eq!(found.expires_at, Some(expires));
    assert!(!found.is_expired(expires - Duration::nanoseconds(1)));
    assert!(found.is_expired(expires));
    let listed = store.list_principals().await.unwrap();
    let listed = listed.iter().find(|p| p.name == "x-viewer").unwrap();
    assert_eq!(listed.expires_at, Some(expires));

    // Never-expiring principals stay so.
    let forever = store
        .create_principal(new_principal("x-forever", Role::Admin))
        .await
        .unwrap();
    assert_eq!(forever.expires_at, None);
    assert!(!forever.is_expired(t0() + Duration::days(100_000)));

    // Rotation replaces the expiry: a fresh one, or none.
    let fresh = t0() + Duration::days(200);
    let rotated_hash = Token::generate().unwrap().hash();
    let rotated = store
        .rotate_token("x-viewer", rotated_hash, Some(fresh))
        .await
        .unwrap();
    assert_eq!(rotated.expires_at, Some(fresh));
    assert_eq!(
        store
            .principal_by_token(rotated_hash)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        Some(fresh)
    );
    let cleared = store
        .rotate_token("x-viewer", Token::generate().unwrap().hash(), None)
        .await
        .unwrap();
    assert_eq!(cleared.expires_at, None);
    let gave = store
        .rotate_token("x-forever", Token::generate().unwrap().hash(), Some(fresh))
        .await
        .unwrap();
    assert_eq!(gave.expires_at, Some(fresh));
}

pub async fn a_report_is_stored_once_and_retries_are_duplicates(store: &dyn Store) {
    agent(store, "d-agent").await;
    let report = testutil::report("d-agent", "d-host", 1);
    let before = store.stats().await.unwrap();
    assert_eq!(ingest(store, "d-agent", &report).await, stored(&report));
    let after = store.stats().await.unwrap();
    assert_eq!(after.reports, before.reports + 1);
    assert_eq!(after.results, before.results + 3);
    assert_eq!(after.hosts, before.hosts + 1);

    // A faithful retry: answered as a duplicate with the first arrival time; nothing added.
    let mut retry = request("d-agent", &report);
    retry.received_at += Duration::minutes(5);
    let outcome = store.ingest(retry).await.unwrap();
    assert_eq!(
        outcome,
        IngestOutcome::Duplicate {
            seq: 1,
            batch_id: report.batch_id.clone(),
            first_received_at: report.sent_at + Duration::milliseconds(250),
            same_body: true,
        }
    );
    // A retry whose body changed is still a duplicate (the first body wins), flagged.
    let mut changed = report.clone();
    changed.results[0].summary = "changed".into();
    let outcome = ingest(store, "d-agent", &changed).await;
    assert!(
        matches!(
            outcome,
            IngestOutcome::Duplicate {
                same_body: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(store.stats().await.unwrap(), after);
    let detail = store.host_detail("d-host").await.unwrap().unwrap();
    assert_eq!(detail.results[0].result.summary, "only root has uid 0");
    // The host was last seen when the report was first received, not at the retry.
    assert_eq!(detail.host.first_seen, detail.host.last_seen);
}

pub async fn conflicting_sequence_and_batch_ids_are_refused(store: &dyn Store) {
    agent(store, "c-agent").await;
    let first = testutil::report("c-agent", "c-host", 1);
    assert_eq!(ingest(store, "c-agent", &first).await, stored(&first));
    let before = store.stats().await.unwrap();

    let mut other_batch = testutil::report("c-agent", "c-host", 1);
    other_batch.results.truncate(1);
    assert_eq!(
        ingest(store, "c-agent", &other_batch).await,
        IngestOutcome::SeqConflict {
            seq: 1,
            batch_id: other_batch.batch_id.clone(),
            stored_batch_id: first.batch_id.clone(),
        }
    );
    let mut reused_batch = testutil::report("c-agent", "c-host", 2);
    reused_batch.batch_id = first.batch_id.clone();
    assert_eq!(
        ingest(store, "c-agent", &reused_batch).await,
        IngestOutcome::BatchConflict {
            seq: 2,
            batch_id: first.batch_id.clone(),
            stored_seq: 1,
        }
    );
    assert_eq!(store.stats().await.unwrap(), before);

    // Sequence numbers belong to one agent: another agent's seq 1 is no conflict.
    agent(store, "c-agent2").await;
    let theirs = testutil::report("c-agent2", "c-host2", 1);
    assert_eq!(ingest(store, "c-agent2", &theirs).await, stored(&theirs));
}

pub async fn a_host_belongs_to_its_first_agent(store: &dyn Store) {
    agent(store, "o-first").await;
    agent(store, "o-second").await;
    let first = testutil::report("o-first", "o-host", 1);
    assert_eq!(ingest(store, "o-first", &first).await, stored(&first));
    let before = store.stats().await.unwrap();

    let intruder = testutil::report("o-second", "o-host", 1);
    assert_eq!(
        ingest(store, "o-second", &intruder).await,
        IngestOutcome::HostOwned {
            machine_id: "o-host".into(),
            owner: "o-first".into(),
        }
    );
    assert_eq!(store.stats().await.unwrap(), before);
    let host = store.host_detail("o-host").await.unwrap().unwrap().host;
    assert_eq!(host.agent, "o-first");

    // One agent may own several hosts (a reinstalled machine gets a new machine id).
    let second_host = testutil::report("o-first", "o-host-b", 2);
    assert_eq!(
        ingest(store, "o-first", &second_host).await,
        stored(&second_host)
    );
}

pub async fn only_active_agents_write(store: &dyn Store) {
    agent(store, "a-revoked").await;
    store
        .revoke_principal("a-revoked", Utc::now())
        .await
        .unwrap();
    store
        .create_principal(new_principal("a-viewer", Role::Viewer))
        .await
        .unwrap();
    let before = store.stats().await.unwrap();
    for name in ["a-revoked", "a-viewer", "a-unknown"] {
        let report = testutil::report(name, "a-host", 1);
        assert_eq!(
            ingest(store, name, &report).await,
            IngestOutcome::AgentInactive { agent: name.into() }
        );
    }
    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.host_detail("a-host").await.unwrap(), None);
}

pub async fn hosts_list_their_latest_state(store: &dyn Store) {
    let mut new = new_principal("l-agent", Role::Agent);
    new.labels.insert("site".into(), "paris".into());
    store.create_principal(new).await.unwrap();
    let mut one = testutil::report("l-agent", "l-host", 1);
    one.host.hostname = "zz-l-host".into();
    assert_eq!(ingest(store, "l-agent", &one).await, stored(&one));
    // The second report carries only one check, now failing; the others stay as they were.
    let mut two = testutil::report("l-agent", "l-host", 2);
    two.host.hostname = "zz-l-host-renamed".into();
    two.host.kernel = None;
    two.agent.version = "0.2.0".into();
    two.results = vec![fail("accounts.uid0", two.sent_at)];
    assert_eq!(ingest(store, "l-agent", &two).await, stored(&two));

    let hosts = store.list_hosts().await.unwrap();
    let host = hosts.iter().find(|h| h.machine_id == "l-host").unwrap();
    assert_eq!(host.hostname, "zz-l-host-renamed");
    assert_eq!(host.kernel, None);
    assert_eq!(host.os.id, "debian");
    assert_eq!(host.agent, "l-agent");
    assert_eq!(
        host.agent_version, "0.2.0",
        "the latest report's agent version"
    );
    assert_eq!(host.labels["env"], "prod");
    assert_eq!(host.assigned_labels["site"], "paris");
    assert_eq!(host.last_seq, 2);
    assert_eq!(host.first_seen, one.sent_at + Duration::milliseconds(250));
    assert_eq!(host.last_seen, two.sent_at + Duration::milliseconds(250));
    assert_eq!(
        (
            host.status_counts.pass,
            host.status_counts.fail,
            host.status_counts.error,
            host.status_counts.no_data
        ),
        (0, 2, 0, 1)
    );
    // Ordered by hostname, then machine id.
    let names: Vec<&str> = hosts.iter().map(|h| h.hostname.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

pub async fn a_late_old_report_never_hides_newer_results(store: &dyn Store) {
    agent(store, "late-agent").await;
    let mut newer = testutil::report("late-agent", "late-host", 5);
    newer.host.hostname = "late-new".into();
    let mut older = testutil::report("late-agent", "late-host", 4);
    older.host.hostname = "late-old".into();
    older.results = vec![fail("accounts.uid0", older.sent_at)];
    assert_eq!(ingest(store, "late-agent", &newer).await, stored(&newer));
    // The spool delivers seq 4 after seq 5 (it was stuck behind a network error).
    let mut late = request("late-agent", &older);
    late.received_at = newer.sent_at + Duration::minutes(10);
    assert_eq!(store.ingest(late).await.unwrap(), stored(&older));

    let detail = store.host_detail("late-host").await.unwrap().unwrap();
    assert_eq!(detail.host.hostname, "late-new");
    assert_eq!(detail.host.last_seq, 5);
    // The late report still counts as activity.
    assert_eq!(detail.host.last_seen, newer.sent_at + Duration::minutes(10));
    let uid0 = detail
        .results
        .iter()
        .find(|r| r.result.check == "accounts.uid0")
        .unwrap();
    assert_eq!(uid0.result.status, Status::Pass);
    assert_eq!(uid0.seq, 5);
    // Both are in the history, in observation order.
    let history = store
        .result_history(&HistoryQuery {
            machine_id: "late-host".into(),
            check: "accounts.uid0".into(),
            from: t0(),
            to: t0() + Duration::days(1),
            limit: 100,
        })
        .await
        .unwrap()
        .unwrap();
    let seqs: Vec<u64> = history.results.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [4, 5]);
}

pub async fn host_detail_keeps_evidence_and_exact_times(store: &dyn Store) {
    agent(store, "e-agent").await;
    let report = testutil::report("e-agent", "e-host", 1);
    let received_at = report.sent_at + Duration::milliseconds(250);
    assert_eq!(ingest(store, "e-agent", &report).await, stored(&report));
    let detail = store.host_detail("e-host").await.unwrap().unwrap();
    let checks: Vec<&str> = detail
        .results
        .iter()
        .map(|r| r.result.check.as_str())
        .collect();
    assert_eq!(
        checks,
        ["accounts.uid0", "packages.pending_security", "time.sync"]
    );
    for stored in &detail.results {
        let sent = report
            .results
            .iter()
            .find(|r| r.check == stored.result.check)
            .unwrap();
        // Everything the agent sent comes back unchanged: evidence, values, controls, and
        // observed_at to the nanosecond.
        assert_eq!(&stored.result, sent);
        assert_eq!(stored.received_at, received_at);
        assert_eq!(stored.seq, 1);
        assert_eq!(stored.batch_id, report.batch_id);
        assert_eq!(stored.covers.from, sent.observed_at);
        assert_eq!(stored.covers.until, None);
    }
    assert_eq!(store.host_detail("e-unknown").await.unwrap(), None);
}

pub async fn history_covers_periods_between_observations(store: &dyn Store) {
    agent(store, "h-agent").await;
    // Observations at t0+1h, t0+2h, t0+3h of one check.
    for seq in 1..=3u64 {
        let mut report = testutil::report("h-agent", "h-host", seq);
        let at = t0() + Duration::hours(i64::try_from(seq).unwrap());
        report.results = vec![pass("accounts.uid0", at)];
        assert_eq!(ingest(store, "h-agent", &report).await, stored(&report));
    }
    let query = |from_h: i64, to_h: i64, limit: usize| HistoryQuery {
        machine_id: "h-host".into(),
        check: "accounts.uid0".into(),
        from: t0() + Duration::minutes(from_h),
        to: t0() + Duration::minutes(to_h),
        limit,
    };
    let hours = |h: i64| t0() + Duration::hours(h);
    let history = store
        .result_history(&query(0, 600, 10))
        .await
        .unwrap()
        .unwrap();
    let periods: Vec<_> = history.results.iter().map(|r| r.covers).collect();
    assert_eq!(periods.len(), 3);
    assert_eq!(
        (periods[0].from, periods[0].until),
        (hours(1), Some(hours(2)))
    );
    assert_eq!(
        (periods[1].from, periods[1].until),
        (hours(2), Some(hours(3)))
    );
    assert_eq!((periods[2].from, periods[2].until), (hours(3), None));
    assert!(!history.truncated);

    // [2h30, 2h40): only the observation in force then (made at 2h) answers.
    let history = store
        .result_history(&query(150, 160, 10))
        .await
        .unwrap()
        .unwrap();
    let seqs: Vec<u64> = history.results.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [2]);
    // Its period still ends at the next observation, outside the range asked for.
    assert_eq!(history.results[0].covers.until, Some(hours(3)));
    // A range starting exactly at an observation starts with it, not with the one before.
    let history = store
        .result_history(&query(120, 121, 10))
        .await
        .unwrap()
        .unwrap();
    let seqs: Vec<u64> = history.results.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [2]);
    // Before the first observation nothing was known.
    let history = store
        .result_history(&query(0, 60, 10))
        .await
        .unwrap()
        .unwrap();
    assert!(history.results.is_empty());
    // Long after the last observation, the last one is still the state in force.
    let history = store
        .result_history(&query(6000, 6001, 10))
        .await
        .unwrap()
        .unwrap();
    let seqs: Vec<u64> = history.results.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [3]);
    // The limit keeps the oldest and says more exist.
    let history = store
        .result_history(&query(0, 600, 2))
        .await
        .unwrap()
        .unwrap();
    let seqs: Vec<u64> = history.results.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2]);
    assert!(history.truncated);
    // An unknown check on a known host is empty; an unknown host is None.
    let mut other = query(0, 600, 10);
    other.check = "nothing.here".into();
    assert!(
        store
            .result_history(&other)
            .await
            .unwrap()
            .unwrap()
            .results
            .is_empty()
    );
    other.machine_id = "h-unknown".into();
    assert_eq!(store.result_history(&other).await.unwrap(), None);
}

pub async fn the_store_answers_pings(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// Writes what [`check_after_reopen`] expects to find after the store was closed and opened
/// again on the same data.
pub async fn seed_for_reopen(store: &dyn Store) -> StoreStats {
    let new = new_principal("reopen-agent", Role::Agent);
    store.create_principal(new).await.unwrap();
    for seq in 1..=5 {
        let report = testutil::report("reopen-agent", "reopen-host", seq);
        assert_eq!(
            ingest(store, "reopen-agent", &report).await,
            stored(&report)
        );
    }
    store.stats().await.unwrap()
}

pub async fn check_after_reopen(store: &dyn Store) {
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats,
        StoreStats {
            principals: 1,
            hosts: 1,
            reports: 5,
            results: 15,
        }
    );
    let detail = store.host_detail("reopen-host").await.unwrap().unwrap();
    assert_eq!(detail.host.last_seq, 5);
    assert_eq!(detail.results.len(), 3);
    // The sequence numbers are still known: a retry of seq 5 is a conflict, not a new report.
    let again = testutil::report("reopen-agent", "reopen-host", 5);
    assert!(matches!(
        ingest(store, "reopen-agent", &again).await,
        IngestOutcome::SeqConflict { .. }
    ));
}

// ---- ISMS evaluation state ----------------------------------------------------------------

use crate::evaluate::nonconformities::{NcAction, NcChange};
use crate::evaluate::{
    ControlState, KpiEvaluation, KpiStatus, KpiValue, NcEvent, NcEventKind, NcSource, NcState,
    Nonconformity, ObjectiveState, ObjectiveStatus, Verdict, VerdictState,
};
use crate::isms::{Grade, ImplementationStatus};
use crate::store::{EvaluationBatch, NcActionOutcome};

pub async fn evaluation_hosts_carry_labels_and_latest_results(store: &dyn Store) {
    let mut new = new_principal("eval-agent", Role::Agent);
    new.labels.insert("team".into(), "payments".into());
    new.labels.insert("env".into(), "staging".into());
    store.create_principal(new).await.unwrap();
    let first = testutil::report("eval-agent", "eval-host", 1);
    ingest(store, "eval-agent", &first).await;
    let second = testutil::report("eval-agent", "eval-host", 2);
    ingest(store, "eval-agent", &second).await;

    let hosts = store.evaluation_hosts(None).await.unwrap();
    let host = hosts.iter().find(|h| h.machine_id == "eval-host").unwrap();
    assert_eq!(host.hostname, "eval-host.example.org");
    // Operator-assigned labels win over the agent's own; built-ins are present.
    assert_eq!(host.labels["env"], "staging");
    assert_eq!(host.labels["team"], "payments");
    assert_eq!(host.labels["agent"], "eval-agent");
    assert_eq!(host.labels["os"], "debian");
    assert_eq!(host.labels["hostname"], "eval-host.example.org");
    let uid0 = &host.results["accounts.uid0"];
    assert_eq!(uid0.status, Status::Pass);
    assert_eq!(
        uid0.observed_at, second.results[0].observed_at,
        "the latest result"
    );
    let failing = &host.results["packages.pending_security"];
    assert_eq!(failing.status, Status::Fail);
    assert!(!failing.offenders.is_empty());
    assert!(!failing.controls.is_empty());

    let received = second.sent_at + Duration::milliseconds(250);
    let later = store
        .evaluation_hosts(Some(received + Duration::seconds(1)))
        .await
        .unwrap();
    assert!(
        later.iter().all(|h| h.machine_id != "eval-host"),
        "not changed since"
    );
    let since = store.evaluation_hosts(Some(received)).await.unwrap();
    assert!(since.iter().any(|h| h.machine_id == "eval-host"));
}

fn verdict(host: &str, rule: &str, v: Verdict, at: chrono::DateTime<Utc>) -> VerdictState {
    VerdictState {
        machine_id: host.into(),
        rule: rule.into(),
        verdict: v,
        reason: format!("{} at {at}", v.as_str()).into(),
        observed_at: Some(at),
        failing_since: (v == Verdict::Fail).then_some(at),
        offenders_first_seen: if v == Verdict::Fail {
            BTreeMap::from([("openssl".to_string(), at)])
        } else {
            BTreeMap::new()
        },
        overdue_since: None,
        exception: None,
        since: at,
    }
}

fn control(id: &str, status: ImplementationStatus, passing: u64, failing: u64) -> ControlState {
    ControlState {
        control: id.into(),
        status,
        reason: "contract".into(),
        passing,
        failing,
        evidence_count: passing + failing,
        last_evidence: Some(t0()),
    }
}

pub async fn evaluations_round_trip_and_answer_point_in_time(store: &dyn Store) {
    let t1 = t0() + Duration::days(1);
    let t2 = t1 + Duration::hours(1);
    let t3 = t2 + Duration::hours(1);
    let failing = verdict("pit-host", "patch.security-updates", Verdict::Fail, t1);
    let other = verdict("pit-host", "access.no-extra-uid0", Verdict::Pass, t1);
    store
        .save_evaluation(EvaluationBatch {
            at: t1,
            verdicts: vec![failing.clone(), other.clone()],
            verdict_changes: vec![failing.clone(), other.clone()],
            controls: vec![control("A.8.8", ImplementationStatus::NotImplemented, 0, 1)],
            control_changes: vec![control("A.8.8", ImplementationStatus::NotImplemented, 0, 1)],
            kpi_values: vec![KpiValue {
                kpi: "kpi.pit".into(),
                at: t1,
                value: Some(0.5),
                numerator: Some(1),
                denominator: Some(2),
                hosts_in_scope: 2,
            }],
            kpi_evaluations: vec![KpiEvaluation {
                kpi: "kpi.pit".into(),
                at: t1,
                status: KpiStatus::Missed,
                value: Some(0.5),
                target: 0.95,
                consecutive_misses: 1,
                consecutive_met: 0,
            }],
            objective_changes: vec![ObjectiveState {
                objective: "OBJ-PIT".into(),
                status: ObjectiveStatus::AtRisk,
                reason: "missed: kpi.pit".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut passing = verdict("pit-host", "patch.security-updates", Verdict::Pass, t2);
    passing.since = t2;
    store
        .save_evaluation(EvaluationBatch {
            at: t2,
            verdicts: vec![passing.clone()],
            verdict_changes: vec![passing.clone()],
            controls: vec![control("A.8.8", ImplementationStatus::Implemented, 1, 0)],
            control_changes: vec![control("A.8.8", ImplementationStatus::Implemented, 1, 0)],
            kpi_values: vec![KpiValue {
                kpi: "kpi.pit".into(),
                at: t2,
                value: Some(1.0),
                numerator: Some(2),
                denominator: Some(2),
                hosts_in_scope: 2,
            }],
            objective_changes: vec![ObjectiveState {
                objective: "OBJ-PIT".into(),
                status: ObjectiveStatus::OnTrack,
                reason: "no KPI missed".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .save_evaluation(EvaluationBatch {
            at: t3,
            verdicts_dropped: vec![("pit-host".into(), "access.no-extra-uid0".into())],
            ..Default::default()
        })
        .await
        .unwrap();

    // The engine resumes from what it saved.
    let state = store.engine_state().await.unwrap();
    let saved: Vec<&VerdictState> = state
        .verdicts
        .iter()
        .filter(|v| &*v.machine_id == "pit-host")
        .collect();
    assert_eq!(saved, [&passing], "current verdicts, the dropped pair gone");
    assert_eq!(state.last_tick, Some(t3));
    let kpi = state
        .kpi_values
        .iter()
        .find(|v| v.kpi == "kpi.pit")
        .unwrap();
    assert_eq!(kpi.value, Some(1.0));
    let kpi_eval = state
        .kpi_evaluations
        .iter()
        .find(|v| v.kpi == "kpi.pit")
        .unwrap();
    assert_eq!(kpi_eval.consecutive_misses, 1);
    let round_trip = verdict("x", "y", Verdict::Fail, t1);
    store
        .save_evaluation(EvaluationBatch {
            at: t3,
            verdicts: vec![round_trip.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let state = store.engine_state().await.unwrap();
    assert!(
        state.verdicts.contains(&round_trip),
        "offender times and all fields survive"
    );

    // Point in time: what was true when.
    let at = |t| Some(t);
    let v1 = store
        .verdicts_at(at(t1), Some("pit-host"), None)
        .await
        .unwrap();
    assert_eq!(v1.len(), 2);
    let v1_patch = v1
        .iter()
        .find(|v| v.rule == "patch.security-updates")
        .unwrap();
    assert_eq!((v1_patch.verdict, v1_patch.since), (Verdict::Fail, t1));
    let v2 = store
        .verdicts_at(
            at(t2 + Duration::minutes(1)),
            Some("pit-host"),
            Some("patch.security-updates"),
        )
        .await
        .unwrap();
    assert_eq!(v2.len(), 1);
    assert_eq!(v2[0].verdict, Verdict::Pass);
    let v3 = store
        .verdicts_at(at(t3), Some("pit-host"), None)
        .await
        .unwrap();
    assert_eq!(v3.len(), 1, "the dropped pair is no longer judged at t3");
    assert!(
        store
            .verdicts_at(at(t0()), Some("pit-host"), None)
            .await
            .unwrap()
            .is_empty()
    );
    let now = store
        .verdicts_at(None, Some("pit-host"), None)
        .await
        .unwrap();
    assert_eq!(now.len(), 1);

    let c1 = store.controls_at(at(t1)).await.unwrap();
    let a88 = c1.iter().find(|c| c.state.control == "A.8.8").unwrap();
    assert_eq!(a88.state.status, ImplementationStatus::NotImplemented);
    let c2 = store.controls_at(at(t2)).await.unwrap();
    let a88 = c2.iter().find(|c| c.state.control == "A.8.8").unwrap();
    assert_eq!(
        (a88.state.status, a88.since),
        (ImplementationStatus::Implemented, t2)
    );
    let current = store.controls_at(None).await.unwrap();
    assert_eq!(
        current
            .iter()
            .find(|c| c.state.control == "A.8.8")
            .unwrap()
            .state
            .status,
        ImplementationStatus::Implemented
    );

    let k1 = store.kpis_at(at(t1)).await.unwrap();
    let k1 = k1.iter().find(|k| k.kpi == "kpi.pit").unwrap();
    assert_eq!(k1.value.as_ref().and_then(|v| v.value), Some(0.5));
    assert_eq!(
        k1.evaluation.as_ref().map(|e| e.status),
        Some(KpiStatus::Missed)
    );
    let (values, evaluations) = store.kpi_history("kpi.pit", t0(), t3, 100).await.unwrap();
    assert_eq!(
        values.iter().map(|v| v.value).collect::<Vec<_>>(),
        [Some(0.5), Some(1.0)]
    );
    assert_eq!(evaluations.len(), 1);
    let (values, _) = store.kpi_history("kpi.pit", t0(), t3, 1).await.unwrap();
    assert_eq!(values.len(), 1, "limit applies");

    let o1 = store.objectives_at(at(t1)).await.unwrap();
    assert_eq!(
        o1.iter()
            .find(|o| o.state.objective == "OBJ-PIT")
            .unwrap()
            .state
            .status,
        ObjectiveStatus::AtRisk
    );
    let o2 = store.objectives_at(None).await.unwrap();
    let o2 = o2.iter().find(|o| o.state.objective == "OBJ-PIT").unwrap();
    assert_eq!((o2.state.status, o2.since), (ObjectiveStatus::OnTrack, t2));
}

pub fn new_nc(key: &str, at: chrono::DateTime<Utc>) -> NcChange {
    NcChange {
        nc: Nonconformity {
            id: 0,
            key: key.into(),
            source: NcSource::Rule,
            title: "contract nc".into(),
            grade: Grade::Major,
            state: NcState::Open,
            controls: vec!["A.8.2".into()],
            machine_id: Some("nc-host".into()),
            hostname: Some("nc-host.example.org".into()),
            subject: "access.no-extra-uid0".into(),
            opened_at: at,
            updated_at: at,
            owner: None,
            root_cause: None,
            corrective_action: None,
            due: None,
            resolved_at: None,
            verified_at: None,
            closed_at: None,
            close_reason: None,
            green_streak: 0,
            last_green: None,
            recurrence_of: None,
        },
        events: vec![NcEvent {
            at,
            actor: "vigil".into(),
            kind: NcEventKind::Opened,
            from: None,
            to: NcState::Open,
            note: "opened".into(),
        }],
        base: None,
    }
}

pub async fn nonconformities_keep_events_and_refuse_stale_changes(store: &dyn Store) {
    let t1 = t0() + Duration::days(3);
    let t2 = t1 + Duration::hours(1);
    let t3 = t2 + Duration::hours(1);
    let saved = store
        .save_evaluation(EvaluationBatch {
            at: t1,
            nc_changes: vec![new_nc("rule/contract/nc-host", t1)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(saved.opened.len(), 1);
    let id = saved.opened[0];
    let opened = store.nonconformity(id).await.unwrap().unwrap();
    assert_eq!(opened.nc.state, NcState::Open);
    assert_eq!(opened.events.len(), 1);

    // A second active NC with the same key is impossible.
    let duplicate = store
        .save_evaluation(EvaluationBatch {
            at: t1,
            nc_changes: vec![new_nc("rule/contract/nc-host", t1)],
            ..Default::default()
        })
        .await;
    assert!(duplicate.is_err(), "one active nonconformity per key");

    // A person plans the corrective action.
    let due = chrono::NaiveDate::from_ymd_opt(2030, 1, 31).unwrap();
    let plan = NcAction::Plan {
        owner: "alice".into(),
        root_cause: "shared root account".into(),
        corrective_action: "remove toor".into(),
        due,
    };
    let outcome = store.nc_action(id, plan, "alice", t2).await.unwrap();
    let NcActionOutcome::Applied(planned) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(planned.nc.state, NcState::ActionPlanned);
    assert_eq!(planned.nc.due, Some(due));
    assert_eq!(planned.events.last().unwrap().actor, "alice");
    let refused = store
        .nc_action(id, NcAction::Verify { note: "x".into() }, "bob", t2)
        .await
        .unwrap();
    assert!(
        matches!(refused, NcActionOutcome::Refused(_)),
        "{refused:?}"
    );
    let missing = store
        .nc_action(999_999, NcAction::Close { reason: "x".into() }, "bob", t2)
        .await
        .unwrap();
    assert_eq!(missing, NcActionOutcome::NotFound);

    // The engine computed a change from the record before the person acted: refused.
    let mut stale = opened.nc.clone();
    stale.state = NcState::Resolved;
    stale.updated_at = t3;
    let saved = store
        .save_evaluation(EvaluationBatch {
            at: t3,
            nc_changes: vec![NcChange {
                nc: stale,
                events: vec![],
                base: Some(opened.nc.updated_at),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(saved.conflicts, 1);
    // From the fresh record, it applies.
    let mut fresh = planned.nc.clone();
    fresh.state = NcState::Resolved;
    fresh.resolved_at = Some(t3);
    fresh.updated_at = t3;
    let saved = store
        .save_evaluation(EvaluationBatch {
            at: t3,
            nc_changes: vec![NcChange {
                nc: fresh,
                events: vec![NcEvent {
                    at: t3,
                    actor: "vigil".into(),
                    kind: NcEventKind::Resolved,
                    from: Some(NcState::ActionPlanned),
                    to: NcState::Resolved,
                    note: "green".into(),
                }],
                base: Some(planned.nc.updated_at),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(saved.conflicts, 0);

    // The register at each time.
    let at_t1 = store.nonconformities_at(Some(t1)).await.unwrap();
    let nc = at_t1.iter().find(|n| n.id == id).unwrap();
    assert_eq!(nc.state, NcState::Open);
    let at_t2 = store.nonconformities_at(Some(t2)).await.unwrap();
    assert_eq!(
        at_t2.iter().find(|n| n.id == id).unwrap().state,
        NcState::ActionPlanned
    );
    let at_t3 = store.nonconformities_at(Some(t3)).await.unwrap();
    let nc = at_t3.iter().find(|n| n.id == id).unwrap();
    assert_eq!((nc.state, nc.resolved_at), (NcState::Resolved, Some(t3)));
    let before = store.nonconformities_at(Some(t0())).await.unwrap();
    assert!(before.iter().all(|n| n.id != id));
    let at_t2 = at_t2.iter().find(|n| n.id == id).unwrap();
    assert_eq!(
        at_t2.resolved_at, None,
        "later timestamps are not shown at t2"
    );

    let events = store.nc_events_between(t1, t3).await.unwrap();
    let kinds: Vec<NcEventKind> = events
        .iter()
        .filter(|(i, _)| *i == id)
        .map(|(_, e)| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            NcEventKind::Opened,
            NcEventKind::ActionPlanned,
            NcEventKind::Resolved
        ]
    );

    // Closed NCs are remembered per key for recurrences.
    let outcome = store
        .nc_action(
            id,
            NcAction::Close {
                reason: "duplicate of a ticket".into(),
            },
            "alice",
            t3,
        )
        .await
        .unwrap();
    assert!(matches!(outcome, NcActionOutcome::Applied(_)));
    let state = store.engine_state().await.unwrap();
    assert_eq!(state.last_closed.get("rule/contract/nc-host"), Some(&id));
    assert!(state.active_nonconformities.iter().all(|n| n.id != id));
}

// ---- Evidence export (issue 5) ------------------------------------------------------------

/// Far from the other functions' times, so only long-open periods of other hosts overlap.
fn export_t0() -> chrono::DateTime<Utc> {
    t0() + Duration::days(4000)
}

pub async fn seed_export_hosts(store: &dyn Store) {
    agent(store, "x-agent").await;
    // Two hosts, two checks each, observed hourly at +1h..+4h; x-host-b only twice.
    let mut seq = 0;
    for h in 1..=4i64 {
        for host in ["x-host-a", "x-host-b"] {
            if host == "x-host-b" && h > 2 {
                continue;
            }
            seq += 1;
            let mut report = testutil::report("x-agent", host, seq);
            let at = export_t0() + Duration::hours(h);
            report.sent_at = at + Duration::seconds(1);
            report.results = vec![pass("accounts.uid0", at), fail("time.sync", at)];
            assert_eq!(ingest(store, "x-agent", &report).await, stored(&report));
        }
    }
}

pub async fn evidence_pages_cover_the_period_in_key_order(store: &dyn Store) {
    seed_export_hosts(store).await;
    let hours = |h: i64| export_t0() + Duration::hours(h);
    let mut all = Vec::new();
    let mut after = None;
    // Pages of 3 over [2h30, 3h30): the observations in force then.
    loop {
        let page = store
            .evidence_page(&EvidencePageQuery {
                from: hours(2) + Duration::minutes(30),
                to: hours(3) + Duration::minutes(30),
                after: after.clone(),
                limit: 3,
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let last = page.last().map(EvidenceRecord::key);
        let done = page.len() < 3;
        all.extend(page);
        if done {
            break;
        }
        after = last;
    }
    let keys: Vec<EvidenceKey> = all.iter().map(EvidenceRecord::key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        keys, sorted,
        "strictly increasing keys, no repeats across pages"
    );
    let mine: Vec<(String, String, u64, Option<chrono::DateTime<Utc>>)> = all
        .iter()
        .filter(|r| r.machine_id.starts_with("x-host"))
        .map(|r| {
            (
                r.machine_id.clone(),
                r.stored.result.check.clone(),
                r.stored.seq,
                r.stored.covers.until,
            )
        })
        .collect();
    // x-host-a: observed at 2h (in force until 3h) and 3h (until 4h); x-host-b: its last
    // observation at 2h is still in force.
    assert_eq!(
        mine,
        [
            ("x-host-a".into(), "accounts.uid0".into(), 3, Some(hours(3))),
            ("x-host-a".into(), "accounts.uid0".into(), 5, Some(hours(4))),
            ("x-host-a".into(), "time.sync".into(), 3, Some(hours(3))),
            ("x-host-a".into(), "time.sync".into(), 5, Some(hours(4))),
            ("x-host-b".into(), "accounts.uid0".into(), 4, None),
            ("x-host-b".into(), "time.sync".into(), 4, None),
        ]
    );
    // Every record keeps its three times.
    let first = all.iter().find(|r| r.machine_id == "x-host-a").unwrap();
    assert_eq!(first.stored.result.observed_at, hours(2));
    assert_eq!(first.stored.covers.from, hours(2));
    assert_eq!(
        first.stored.received_at,
        hours(2) + Duration::seconds(1) + Duration::milliseconds(250)
    );
    // Before the first observation nothing of these hosts is evidence.
    let before = store
        .evidence_page(&EvidencePageQuery {
            from: hours(0),
            to: hours(1),
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(before.iter().all(|r| !r.machine_id.starts_with("x-host")));
}

pub async fn report_times_are_paged_per_host(store: &dyn Store) {
    let hours = |h: i64| export_t0() + Duration::hours(h);
    let received = |h: i64| hours(h) + Duration::seconds(1) + Duration::milliseconds(250);
    let first = store
        .report_times_page("x-host-a", hours(0), hours(10), None, 2)
        .await
        .unwrap();
    assert_eq!(first, [received(1), received(2)]);
    let rest = store
        .report_times_page("x-host-a", hours(0), hours(10), Some(received(2)), 2)
        .await
        .unwrap();
    assert_eq!(rest, [received(3), received(4)]);
    let end = store
        .report_times_page("x-host-a", hours(0), hours(10), Some(received(4)), 2)
        .await
        .unwrap();
    assert!(end.is_empty());
    // The period is half-open and per host.
    let window = store
        .report_times_page("x-host-b", received(1), received(2), None, 10)
        .await
        .unwrap();
    assert_eq!(window, [received(1)]);
    assert!(
        store
            .report_times_page("x-nobody", hours(0), hours(10), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- Tamper evidence (issue 8) -----------------------------------------------------------

pub async fn agent_keys_register_once_and_rotate_by_operator(store: &dyn Store) {
    use crate::store::chain::{KeyOutcome, KeySource};
    agent(store, "k-agent").await;
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    assert!(store.agent_keys("k-agent").await.unwrap().is_empty());
    let first = store
        .register_agent_key("k-agent", a, KeySource::FirstUse, t0())
        .await
        .unwrap();
    assert!(
        matches!(first, KeyOutcome::Registered(ref k) if k.public_key == a),
        "{first:?}"
    );
    // The same key again changes nothing; another key is refused to the agent.
    let again = store
        .register_agent_key(
            "k-agent",
            a,
            KeySource::FirstUse,
            t0() + Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(
        matches!(again, KeyOutcome::Unchanged(ref k) if k.registered_at == t0()),
        "{again:?}"
    );
    let other = store
        .register_agent_key(
            "k-agent",
            b,
            KeySource::Enrollment,
            t0() + Duration::seconds(2),
        )
        .await
        .unwrap();
    assert!(matches!(other, KeyOutcome::Conflict { ref current } if current.public_key == a));
    // An operator replaces it; the old key stays, retired, for verifying old reports.
    let set = store
        .register_agent_key(
            "k-agent",
            b,
            KeySource::Operator,
            t0() + Duration::seconds(3),
        )
        .await
        .unwrap();
    assert!(
        matches!(set, KeyOutcome::Registered(ref k) if k.public_key == b),
        "{set:?}"
    );
    let keys = store.agent_keys("k-agent").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].public_key, a);
    assert_eq!(keys[0].retired_at, Some(t0() + Duration::seconds(3)));
    assert_eq!(keys[1].public_key, b);
    assert_eq!(keys[1].retired_at, None);
    // A reset retires the current key: the next first-use registration is accepted.
    let retired = store
        .retire_agent_key("k-agent", t0() + Duration::seconds(4))
        .await
        .unwrap();
    assert_eq!(retired.map(|k| k.public_key), Some(b));
    assert_eq!(
        store
            .retire_agent_key("k-agent", t0() + Duration::seconds(5))
            .await
            .unwrap(),
        None
    );
    let tofu = store
        .register_agent_key(
            "k-agent",
            c,
            KeySource::FirstUse,
            t0() + Duration::seconds(6),
        )
        .await
        .unwrap();
    assert!(
        matches!(tofu, KeyOutcome::Registered(ref k) if k.public_key == c),
        "{tofu:?}"
    );
    assert_eq!(store.agent_keys("k-agent").await.unwrap().len(), 3);
    assert!(
        store
            .list_agent_keys()
            .await
            .unwrap()
            .iter()
            .filter(|k| k.agent == "k-agent")
            .count()
            == 3
    );
    // Unknown and revoked agents get nothing.
    assert_eq!(
        store
            .register_agent_key("nobody", a, KeySource::FirstUse, t0())
            .await
            .unwrap(),
        KeyOutcome::UnknownAgent
    );
    assert!(matches!(
        store.retire_agent_key("nobody", t0()).await,
        Err(StoreError::PrincipalNotFound { .. })
    ));
}

pub async fn reports_are_chained_per_host(store: &dyn Store) {
    use crate::store::chain::GENESIS;
    agent(store, "ch-agent").await;
    let reports: Vec<Report> = (1..=3)
        .map(|seq| testutil::report("ch-agent", "ch-host", seq))
        .collect();
    for r in &reports {
        assert_eq!(ingest(store, "ch-agent", r).await, stored(r));
    }
    // A replayed report is a duplicate and does not extend the chain.
    assert!(matches!(
        ingest(store, "ch-agent", &reports[1]).await,
        IngestOutcome::Duplicate { .. }
    ));
    let other = testutil::report("ch-agent", "ch-host-2", 4);
    ingest(store, "ch-agent", &other).await;

    let heads = store.chain_heads().await.unwrap();
    let head = heads.iter().find(|h| h.machine_id == "ch-host").unwrap();
    assert_eq!(head.index, 3);
    let head2 = heads.iter().find(|h| h.machine_id == "ch-host-2").unwrap();
    assert_eq!(head2.index, 1);

    let entries = store.chain_page("ch-host", 0, u64::MAX, 10).await.unwrap();
    assert_eq!(entries.len(), 3);
    let mut prev = GENESIS;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.index, i as u64 + 1);
        assert_eq!(e.seq, reports[i].seq);
        assert_eq!(e.prev_hash, prev);
        assert_eq!(e.expected_hash(), Some(e.chain_hash));
        let signed = e.signed.as_ref().unwrap();
        assert_eq!(signed.json, serde_json::to_vec(&reports[i]).unwrap());
        assert_eq!(
            <[u8; 32]>::from(Sha256::digest(&signed.json)),
            e.body_sha256
        );
        prev = e.chain_hash;
    }
    assert_eq!(prev, head.hash);
    // Pages and bounds.
    let page = store.chain_page("ch-host", 1, 2, 10).await.unwrap();
    assert_eq!(page.iter().map(|e| e.index).collect::<Vec<_>>(), [2]);
    let received = |r: &Report| r.sent_at + Duration::milliseconds(250);
    let bounds = store
        .chain_bounds("ch-host", received(&reports[1]), received(&reports[2]), &[])
        .await
        .unwrap();
    assert_eq!(bounds, Some((2, 2)));
    let bounds = store
        .chain_bounds(
            "ch-host",
            received(&reports[1]),
            received(&reports[2]),
            &[3, 1],
        )
        .await
        .unwrap();
    assert_eq!(bounds, Some((1, 3)));
    assert_eq!(
        store
            .chain_bounds(
                "ch-host",
                t0() - Duration::days(9),
                t0() - Duration::days(8),
                &[]
            )
            .await
            .unwrap(),
        None
    );
}
