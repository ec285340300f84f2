//! Test helpers: valid reports built from `vigil_shared` types, principals and tokens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use vigil_shared::report::SCHEMA_V1;
use vigil_shared::{
    AgentHealth, AgentInfo, CheckResult, Evidence, HostIdentity, OsRelease, Report, Status,
    Subject, Value,
};

static BATCH: AtomicU64 = AtomicU64::new(1);

/// A fresh, unique, valid batch id (a UUID).
pub fn batch_id() -> String {
    let n = BATCH.fetch_add(1, Ordering::SeqCst);
    format!("6f1c1b0e-2f7b-4d8e-9a51-{n:012x}")
}

/// The fixture clock plus some nanoseconds, so that exact round trips are tested.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00.123456789Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A passing result.
pub fn pass(check: &str, observed_at: DateTime<Utc>) -> CheckResult {
    CheckResult {
        check: check.into(),
        controls: vec!["A.8.2".into()],
        observed_at,
        duration_ms: 4,
        status: Status::Pass,
        summary: "only root has uid 0".into(),
        values: BTreeMap::from([("uid0_accounts".to_string(), Value::Int(1))]),
        evidence: Evidence {
            offenders: vec![],
            checked: vec![Subject::new("account", "root").fact("uid", 0i64)],
            sources: vec!["/etc/passwd".into()],
        },
        error: None,
    }
}

/// A failing result with an offender and typed values.
pub fn fail(check: &str, observed_at: DateTime<Utc>) -> CheckResult {
    CheckResult {
        check: check.into(),
        controls: vec!["A.8.8".into(), "A.8.19".into()],
        observed_at,
        duration_ms: 812,
        status: Status::Fail,
        summary: "2 security updates pending".into(),
        values: BTreeMap::from([
            ("pending_security".to_string(), Value::Int(2)),
            ("ratio".to_string(), Value::Float(0.25)),
            ("stale".to_string(), Value::Bool(true)),
            (
                "packages".to_string(),
                Value::List(vec!["openssl".into(), "libc6".into()]),
            ),
        ]),
        evidence: Evidence {
            offenders: vec![
                Subject::new("package", "openssl:amd64")
                    .with_reason("security update 3.0.15-1~deb12u1 pending")
                    .fact("installed", "3.0.11-1~deb12u2"),
                Subject::new("package", "libc6:amd64").with_reason("security update pending"),
            ],
            checked: vec![],
            sources: vec!["/var/lib/dpkg/status".into()],
        },
        error: None,
    }
}

/// A result with status `no_data`.
pub fn no_data(check: &str, observed_at: DateTime<Utc>) -> CheckResult {
    CheckResult {
        check: check.into(),
        controls: vec!["A.8.17".into()],
        observed_at,
        duration_ms: 0,
        status: Status::NoData,
        summary: "no time synchronisation daemon configured under this root".into(),
        values: BTreeMap::new(),
        evidence: Evidence::default(),
        error: None,
    }
}

/// A valid report from `agent` about `machine_id` with sequence `seq`: three results (pass,
/// fail, no data) observed `seq` minutes after [`t0`].
pub fn report(agent: &str, machine_id: &str, seq: u64) -> Report {
    let at = t0() + Duration::minutes(i64::try_from(seq).unwrap());
    Report {
        schema: SCHEMA_V1.into(),
        agent: AgentInfo {
            id: agent.into(),
            version: "0.1.0".into(),
            health: Some(AgentHealth {
                spool_pending: 0,
                spool_dropped_total: 0,
                check_failures_total: 1,
            }),
        },
        host: HostIdentity {
            machine_id: machine_id.into(),
            hostname: format!("{machine_id}.example.org"),
            os: OsRelease {
                id: "debian".into(),
                id_like: vec![],
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            },
            kernel: Some("6.1.0-28-amd64".into()),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        },
        batch_id: batch_id(),
        seq,
        sent_at: at + Duration::seconds(2),
        results: vec![
            pass("accounts.uid0", at),
            fail("packages.pending_security", at),
            no_data("time.sync", at),
        ],
    }
}
