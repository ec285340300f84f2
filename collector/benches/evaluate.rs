//! How long one full ISMS evaluation takes at fleet scale: 10,000 in-scope hosts with a
//! realistic result set each (every check output of the agent), the default pack's 18 rules,
//! and 100 KPIs (the default pack's 14 repeated with every method). Pure evaluation only: the
//! store is not involved. Run: `cargo bench -p vigil-collector --bench evaluate`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use vigil_collector::evaluate::kpis::{MeasureInputs, analyse, measure};
use vigil_collector::evaluate::nonconformities::{NcInputs, transitions};
use vigil_collector::evaluate::{
    HostFacts, KpiEvaluation, ResultFacts, controls, host_labels, objectives, verdicts,
};
use vigil_collector::isms::Isms;
use vigil_shared::{Status, Value};

const HOSTS: usize = 10_000;
const KPIS: usize = 100;

/// The default pack with its KPI list replaced by `KPIS` generated KPIs.
fn isms() -> Isms {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms");
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml")
            && name != "kpis.toml"
            && name != "objectives.toml"
            && name != "risks.toml"
        {
            files.push((name, std::fs::read_to_string(entry.path()).unwrap()));
        }
    }
    for entry in std::fs::read_dir(dir.join("rules")).unwrap() {
        let entry = entry.unwrap();
        files.push((
            format!("rules/{}", entry.file_name().to_string_lossy()),
            std::fs::read_to_string(entry.path()).unwrap(),
        ));
    }
    let rules = [
        "patch.security-updates",
        "patch.all-updates",
        "patch.kernel-current",
        "access.no-extra-uid0",
        "access.no-empty-passwords",
        "access.sudo-authentication",
        "access.dormant-accounts",
        "crypto.root-encrypted",
    ];
    let mut kpis = String::new();
    for i in 0..KPIS {
        let rule = rules[i % rules.len()];
        let measure = match i % 10 {
            0..=3 => format!("method = \"share_passing\", rule = \"{rule}\""),
            4 => format!("method = \"count_failing\", rule = \"{rule}\""),
            5 => format!("method = \"failing_age_max_days\", rule = \"{rule}\""),
            6 => "method = \"percentile\", percentile = 95, check = \"packages.last_update\", value = \"days_since_update\"".to_string(),
            7 => "method = \"mean\", check = \"packages.pending_updates\", value = \"pending_updates\"".to_string(),
            8 => "method = \"coverage\"".to_string(),
            _ => "method = \"evidence_age_max_days\", check = \"packages.pending_security\"".to_string(),
        };
        let target = if i % 10 <= 3 || i % 10 == 8 {
            "{ operator = \">=\", value = 0.9 }"
        } else {
            "{ operator = \"<=\", value = 10 }"
        };
        let controls = if i % 10 >= 6 {
            "controls = [\"A.8.8\"]\n"
        } else {
            ""
        };
        kpis.push_str(&format!(
            "[[kpi]]\nid = \"kpi.{i}\"\nname = \"KPI {i}\"\nmeasure = {{ {measure}, schedule = \"0 * * * *\", by = \"vigil\" }}\n\
             analysis = {{ schedule = \"0 8 * * 1\", by = \"ciso\" }}\ntarget = {target}\n{controls}\n"
        ));
    }
    files.push(("kpis.toml".into(), kpis));
    files.push((
        "objectives.toml".into(),
        "[[objective]]\nid = \"O\"\nstatement = \"s\"\ntarget = \"t\"\nkpis = [\"kpi.0\", \"kpi.1\"]\ndeadline = 2027-01-01\nowner = \"o\"\n".into(),
    ));
    files.push(("risks.toml".into(), String::new()));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    match vigil_collector::isms::load_sources(&borrowed) {
        Ok((isms, _)) => isms,
        Err(p) => panic!("{p:#?}"),
    }
}

fn result(
    status: Status,
    at: DateTime<Utc>,
    values: &[(&str, i64)],
    offenders: usize,
) -> ResultFacts {
    ResultFacts {
        status,
        observed_at: at,
        controls: vec!["A.8.8".into(), "A.8.2".into()],
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Int(*v)))
            .collect(),
        offenders: (0..offenders).map(|i| format!("pkg{i}:amd64")).collect(),
        checked: 500,
        error: None,
    }
}

fn hosts(now: DateTime<Utc>) -> Vec<HostFacts> {
    (0..HOSTS)
        .map(|i| {
            let bad = i % 7 == 0;
            let st = if bad { Status::Fail } else { Status::Pass };
            let at = now - Duration::minutes((i % 60) as i64);
            let mut results = BTreeMap::new();
            for output in vigil_shared::outputs::all() {
                results.insert(output.id.clone(), result(st, at, &[], usize::from(bad)));
            }
            let n = i64::from(bad);
            results.insert(
                "packages.pending_security".into(),
                result(
                    st,
                    at,
                    &[("pending_security", n), ("pending_updates", n * 3)],
                    usize::from(bad),
                ),
            );
            results.insert(
                "packages.pending_updates".into(),
                result(
                    st,
                    at,
                    &[("pending_security", n), ("pending_updates", n * 3)],
                    3 * usize::from(bad),
                ),
            );
            results.insert(
                "accounts.uid0".into(),
                result(st, at, &[("uid0_accounts", 1 + n)], usize::from(bad)),
            );
            results.insert(
                "accounts.sudo_nopasswd".into(),
                result(
                    st,
                    at,
                    &[("nopasswd_rules", n), ("authenticate_disabled", 0)],
                    usize::from(bad),
                ),
            );
            results.insert(
                "accounts.dormant".into(),
                result(st, at, &[("dormant_accounts", n)], usize::from(bad)),
            );
            results.insert(
                "packages.last_update".into(),
                result(st, at, &[("days_since_update", (i % 45) as i64)], 0),
            );
            let id = format!("{:032x}", i);
            let labels = host_labels(
                &BTreeMap::from([("env".to_string(), "prod".to_string())]),
                &BTreeMap::new(),
                &format!("host-{i}"),
                &id,
                "agent",
                "debian",
                "12",
            );
            HostFacts {
                machine_id: id,
                hostname: format!("host-{i}"),
                labels,
                last_seen: at,
                results,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let isms = isms();
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let hosts = hosts(now);
    let empty = vigil_collector::evaluate::VerdictMap::default();
    let prior: vigil_collector::evaluate::VerdictMap =
        verdicts::evaluate_all(&isms, &hosts, &empty, now)
            .into_iter()
            .map(|v| ((v.machine_id.clone(), v.rule.clone()), v))
            .collect();
    let mut group = c.benchmark_group(format!(
        "evaluate/{HOSTS}-hosts/{}-rules/{KPIS}-kpis",
        isms.rules.len()
    ));
    group.sample_size(10);
    group.bench_function("verdicts", |b| {
        b.iter(|| black_box(verdicts::evaluate_all(&isms, &hosts, &prior, now)))
    });
    let current = verdicts::evaluate_all(&isms, &hosts, &prior, now);
    let refs: Vec<&HostFacts> = hosts.iter().collect();
    group.bench_function("controls", |b| {
        b.iter(|| black_box(controls::evaluate_controls(&isms, &refs, &current, now)))
    });
    group.bench_function("kpis-measure-and-analyse", |b| {
        b.iter(|| {
            let inputs = MeasureInputs::new(&refs, &current, &[]);
            let evaluations: Vec<KpiEvaluation> = isms
                .kpis
                .iter()
                .map(|k| {
                    let v = measure(&isms, k, &inputs, now);
                    analyse(k, Some(&v), None, now)
                })
                .collect();
            black_box(evaluations)
        })
    });
    group.bench_function("full-evaluation", |b| {
        b.iter(|| {
            let v = verdicts::evaluate_all(&isms, &hosts, &prior, now);
            let c = controls::evaluate_controls(&isms, &refs, &v, now);
            let inputs = MeasureInputs::new(&refs, &v, &[]);
            let evaluations: Vec<KpiEvaluation> = isms
                .kpis
                .iter()
                .map(|k| analyse(k, Some(&measure(&isms, k, &inputs, now)), None, now))
                .collect();
            let latest: HashMap<&str, &KpiEvaluation> =
                evaluations.iter().map(|e| (e.kpi.as_str(), e)).collect();
            let o = objectives::evaluate_objectives(&isms, &latest, now);
            let last_closed = HashMap::new();
            let n = transitions(
                &isms,
                &NcInputs {
                    verdicts: &v,
                    hosts: &hosts,
                    kpi_evaluations: &evaluations,
                    active: &[],
                    last_closed: &last_closed,
                    now,
                },
            );
            black_box((c, o, n))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
