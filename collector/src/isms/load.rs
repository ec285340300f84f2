//! Loading and validating an ISMS directory.
//!
//! The directory holds `isms.toml` (organisation, scope, policy), `context.toml` (issues and
//! interested parties), `controls.toml` (the Statement of Applicability: all 93 controls),
//! `rules.toml` and/or `rules/*.toml`, `exceptions.toml` (optional), `kpis.toml`,
//! `objectives.toml`, `risks.toml` and `audits.toml` (optional). Every file is parsed strictly
//! (unknown keys are errors), then every reference, schedule, duration and condition is checked.
//! All problems are reported together, each with its file, line and column and what to do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::value::Datetime;

use super::model::*;
use super::problems::{Problems, Source};
use super::selector::Selector;
use super::{duration, expr};

/// Files the loader knows; any other `.toml` file in the directory is an error (a typo such as
/// `risk.toml` must not silently drop the risk register).
const KNOWN_FILES: &[&str] = &[
    "isms.toml",
    "context.toml",
    "controls.toml",
    "rules.toml",
    "exceptions.toml",
    "kpis.toml",
    "objectives.toml",
    "risks.toml",
    "audits.toml",
];

// ---------------------------------------------------------------------------------------------
// Raw file shapes (serde, strict).

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIsmsFile {
    organisation: RawOrganisation,
    scope: RawScope,
    #[serde(default)]
    policy: RawPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganisation {
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    statement: Spanned<String>,
    #[serde(default)]
    boundaries: String,
    #[serde(default)]
    include: Vec<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    exclude: Vec<Spanned<BTreeMap<String, String>>>,
    #[serde(default, rename = "exclusion")]
    exclusions: Vec<RawExclusion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    what: Spanned<String>,
    justification: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    stale_after: Option<Spanned<String>>,
    max_evidence_age: Option<Spanned<String>>,
    evaluation_interval: Option<Spanned<String>>,
    kpi_breach_evaluations: Option<Spanned<u32>>,
    verification_periods: Option<Spanned<u32>>,
    auto_close: Option<bool>,
    grades: Option<BTreeMap<Severity, Grade>>,
    blind_spot_grade: Option<Grade>,
    risk_acceptance_threshold: Option<Spanned<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContextFile {
    #[serde(default, rename = "issue")]
    issues: Vec<RawIssue>,
    #[serde(default, rename = "party")]
    parties: Vec<RawParty>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssue {
    id: Spanned<String>,
    kind: IssueKindRaw,
    description: Spanned<String>,
    owner: Spanned<String>,
    review_by: Spanned<Datetime>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum IssueKindRaw {
    Internal,
    External,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParty {
    id: Spanned<String>,
    name: Spanned<String>,
    requirements: Spanned<String>,
    addressed: bool,
    review_by: Spanned<Datetime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControlsFile {
    #[serde(default)]
    defaults: RawControlDefaults,
    #[serde(default, rename = "control")]
    controls: Vec<RawControl>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControlDefaults {
    owner: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    id: Spanned<String>,
    applicable: bool,
    justification: Spanned<String>,
    owner: Option<Spanned<String>>,
    implementation: Option<String>,
    manual: Option<RawManual>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManual {
    status: Spanned<String>,
    #[serde(default)]
    evidence: Vec<String>,
    reviewed: Spanned<Datetime>,
    review_every: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRulesFile {
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    description: String,
    check: Spanned<String>,
    condition: Option<Spanned<String>>,
    severity: Severity,
    grace: Option<Spanned<String>>,
    grace_scope: Option<GraceScopeRaw>,
    no_data: Option<NoDataRaw>,
    controls: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    remediation: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum GraceScopeRaw {
    Host,
    Offender,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum NoDataRaw {
    NoData,
    Pass,
    Fail,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExceptionsFile {
    #[serde(default, rename = "exception")]
    exceptions: Vec<RawException>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    id: Spanned<String>,
    rule: Spanned<String>,
    hosts: Spanned<Vec<BTreeMap<String, String>>>,
    justification: Spanned<String>,
    approver: Spanned<String>,
    approved: Spanned<Datetime>,
    expires: Spanned<Datetime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpisFile {
    #[serde(default, rename = "kpi")]
    kpis: Vec<RawKpi>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpi {
    id: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    measure: Spanned<RawMeasure>,
    analysis: RawAnalysis,
    target: Spanned<RawTarget>,
    controls: Option<Spanned<Vec<String>>>,
    nc_grade: Option<Grade>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    method: Spanned<String>,
    rule: Option<Spanned<String>>,
    check: Option<Spanned<String>>,
    value: Option<Spanned<String>>,
    percentile: Option<Spanned<f64>>,
    grades: Option<Vec<Grade>>,
    schedule: Spanned<String>,
    by: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnalysis {
    schedule: Spanned<String>,
    by: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    operator: Spanned<String>,
    value: f64,
    #[serde(default)]
    tolerance: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjectivesFile {
    #[serde(default, rename = "objective")]
    objectives: Vec<RawObjective>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    id: Spanned<String>,
    statement: Spanned<String>,
    target: Spanned<String>,
    kpis: Spanned<Vec<String>>,
    deadline: Spanned<Datetime>,
    owner: Spanned<String>,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    resources: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisksFile {
    #[serde(default, rename = "risk")]
    risks: Vec<RawRisk>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    id: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    description: String,
    owner: Spanned<String>,
    likelihood: Spanned<u8>,
    impact: Spanned<u8>,
    treatment: TreatmentRaw,
    #[serde(default = "empty_list")]
    controls: Spanned<Vec<String>>,
    #[serde(default = "empty_list")]
    kpis: Spanned<Vec<String>>,
    residual_likelihood: Option<Spanned<u8>>,
    residual_impact: Option<Spanned<u8>>,
    acceptance: Option<RawAcceptance>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum TreatmentRaw {
    Mitigate,
    Accept,
    Transfer,
    Avoid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcceptance {
    by: Spanned<String>,
    date: Spanned<Datetime>,
    justification: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuditsFile {
    #[serde(default, rename = "audit")]
    audits: Vec<RawAudit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    id: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    scope: String,
    #[serde(default = "empty_list")]
    controls: Spanned<Vec<String>>,
    planned: Spanned<Datetime>,
    performed: Option<Spanned<Datetime>>,
    auditor: Spanned<String>,
    #[serde(default, rename = "finding")]
    findings: Vec<RawFinding>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinding {
    id: Spanned<String>,
    description: Spanned<String>,
    #[serde(default = "empty_list")]
    controls: Spanned<Vec<String>>,
    grade: Grade,
    raised: Spanned<Datetime>,
}

fn empty_list() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

// ---------------------------------------------------------------------------------------------
// Loading.

/// Loads and validates the ISMS in `dir`. On failure returns every problem found (errors and
/// warnings); on success returns the definition and the warnings.
pub fn load_dir(dir: &Path) -> Result<(Isms, Vec<super::Problem>), Vec<super::Problem>> {
    let mut problems = Problems::default();
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                let path = dir.join(&name);
                if name == "rules" && path.is_dir() {
                    let mut rule_files: Vec<String> = std::fs::read_dir(&path)
                        .map(|es| {
                            es.filter_map(Result::ok)
                                .map(|e| e.file_name().to_string_lossy().into_owned())
                                .filter(|n| n.ends_with(".toml"))
                                .collect()
                        })
                        .unwrap_or_default();
                    rule_files.sort();
                    for rule_file in rule_files {
                        let shown = format!("rules/{rule_file}");
                        read_source(&path.join(&rule_file), &shown, &mut sources, &mut problems);
                    }
                    continue;
                }
                if !name.ends_with(".toml") {
                    continue;
                }
                if !KNOWN_FILES.contains(&name.as_str()) {
                    problems.file(
                        &name,
                        "unknown file in the ISMS directory",
                        Some(format!(
                            "the known files are {}; rules may also live in rules/*.toml",
                            KNOWN_FILES.join(", ")
                        )),
                    );
                    continue;
                }
                read_source(&path, &name, &mut sources, &mut problems);
            }
        }
        Err(e) => {
            problems.file(
                &dir.display().to_string(),
                format!("cannot read the ISMS directory: {e}"),
                Some("point --isms (or [isms] dir) at the directory holding isms.toml".into()),
            );
            return Err(problems.list);
        }
    }
    let isms = validate(&sources, &mut problems);
    if problems.has_errors() {
        return Err(problems.list);
    }
    match isms {
        Some(isms) => Ok((isms, problems.list)),
        None => Err(problems.list),
    }
}

fn read_source(
    path: &Path,
    shown: &str,
    sources: &mut BTreeMap<String, Source>,
    problems: &mut Problems,
) {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            sources.insert(
                shown.to_string(),
                Source {
                    name: shown.to_string(),
                    text,
                },
            );
        }
        Err(e) => problems.file(shown, format!("cannot read: {e}"), None),
    }
}

/// Validates in-memory sources (file name → text); used by `load_dir` and by tests.
pub fn load_sources(
    files: &[(&str, &str)],
) -> Result<(Isms, Vec<super::Problem>), Vec<super::Problem>> {
    let mut problems = Problems::default();
    let sources: BTreeMap<String, Source> = files
        .iter()
        .map(|(name, text)| {
            (
                name.to_string(),
                Source {
                    name: name.to_string(),
                    text: text.to_string(),
                },
            )
        })
        .collect();
    let isms = validate(&sources, &mut problems);
    if problems.has_errors() {
        return Err(problems.list);
    }
    match isms {
        Some(isms) => Ok((isms, problems.list)),
        None => Err(problems.list),
    }
}

fn parse_file<T: DeserializeOwned>(source: &Source, problems: &mut Problems) -> Option<T> {
    match toml::from_str::<T>(&source.text) {
        Ok(v) => Some(v),
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let message = e.message().trim().replace('\n', " ");
            problems.at(source, offset, message, None);
            None
        }
    }
}

/// Ids: 1-64 characters of letters, digits, `.`, `_`, `-`, starting with a letter or digit.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Edit distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn did_you_mean<'a>(wrong: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (distance(wrong, c), c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean {c:?}?"))
}

struct Ctx<'a> {
    problems: &'a mut Problems,
}

impl Ctx<'_> {
    fn id(
        &mut self,
        src: &Source,
        id: &Spanned<String>,
        seen: &mut BTreeSet<String>,
        kind: &str,
    ) -> String {
        let value = id.get_ref().clone();
        if !valid_id(&value) {
            self.problems.at(
                src,
                id.span().start,
                format!("{kind} id {value:?} is not valid"),
                Some("use 1-64 letters, digits, '.', '_' or '-'".into()),
            );
        } else if !seen.insert(value.clone()) {
            self.problems.at(
                src,
                id.span().start,
                format!("{kind} id {value:?} is used twice"),
                Some("ids must be unique".into()),
            );
        }
        value
    }

    fn required(&mut self, src: &Source, text: &Spanned<String>, what: &str) -> String {
        let value = text.get_ref().trim().to_string();
        if value.is_empty() {
            self.problems.at(
                src,
                text.span().start,
                format!("{what} is empty"),
                Some("fill it in: the ISMS needs it".into()),
            );
        }
        value
    }

    fn date(&mut self, src: &Source, value: &Spanned<Datetime>, what: &str) -> NaiveDate {
        let dt = value.get_ref();
        let parsed = match (&dt.date, &dt.time) {
            (Some(d), None) => {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
            }
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            self.problems.at(
                src,
                value.span().start,
                format!("{what} must be a date without a time"),
                Some("write it as 2027-03-31".into()),
            );
            NaiveDate::default()
        })
    }

    fn duration(&mut self, src: &Source, value: &Spanned<String>, what: &str) -> Duration {
        match duration::parse(value.get_ref()) {
            Ok(d) if d > Duration::zero() => d,
            Ok(_) => {
                self.problems.at(
                    src,
                    value.span().start,
                    format!("{what} must be longer than zero"),
                    None,
                );
                Duration::zero()
            }
            Err(e) => {
                self.problems
                    .at(src, value.span().start, format!("{what}: {e}"), None);
                Duration::zero()
            }
        }
    }

    fn schedule(
        &mut self,
        src: &Source,
        value: &Spanned<String>,
        what: &str,
    ) -> Option<vigil_shared::schedule::Schedule> {
        match vigil_shared::schedule::parse(value.get_ref()) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problems.at(
                    src,
                    value.span().start,
                    format!("{what} is not a valid cron expression: {e}"),
                    Some("five fields (minute hour day month weekday), e.g. \"0 8 * * 1\"".into()),
                );
                None
            }
        }
    }

    fn controls(
        &mut self,
        src: &Source,
        list: &Spanned<Vec<String>>,
        soa: &HashMap<String, bool>,
        owner: &str,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for id in list.get_ref() {
            if !vigil_shared::controls::is_known(id) {
                let hint = did_you_mean(
                    id,
                    vigil_shared::controls::all().iter().map(|c| c.id.as_str()),
                )
                .or_else(|| Some("Annex A ids are written A.5.1 … A.8.34".into()));
                self.problems.at(
                    src,
                    list.span().start,
                    format!("{owner}: {id:?} is not an ISO/IEC 27001:2022 Annex A control"),
                    hint,
                );
                continue;
            }
            if soa.get(id) == Some(&false) {
                self.problems.warn_at(
                    src,
                    list.span().start,
                    format!("{owner} maps to {id}, which controls.toml marks not applicable"),
                    Some("mark the control applicable or drop it here".into()),
                );
            }
            out.push(id.clone());
        }
        out
    }
}

fn selector(map: &BTreeMap<String, String>) -> Selector {
    Selector(map.clone())
}

fn validate(sources: &BTreeMap<String, Source>, problems: &mut Problems) -> Option<Isms> {
    for required in [
        "isms.toml",
        "context.toml",
        "controls.toml",
        "kpis.toml",
        "objectives.toml",
        "risks.toml",
    ] {
        if !sources.contains_key(required) {
            problems.file(
                required,
                "missing from the ISMS directory",
                Some("copy it from the default pack (packaging/isms/) and edit it".into()),
            );
        }
    }
    if !sources
        .keys()
        .any(|k| k == "rules.toml" || k.starts_with("rules/"))
    {
        problems.file(
            "rules.toml",
            "no rules: neither rules.toml nor rules/*.toml exists",
            Some("copy the default rules from packaging/isms/rules/".into()),
        );
    }
    let mut ctx = Ctx { problems };

    let isms_file = sources
        .get("isms.toml")
        .and_then(|s| parse_file::<RawIsmsFile>(s, ctx.problems).map(|f| (s, f)));
    let (organisation, scope, policy) = match isms_file {
        Some((src, file)) => {
            let name = ctx.required(src, &file.organisation.name, "organisation.name");
            let statement = ctx.required(src, &file.scope.statement, "the scope statement");
            let mut exclusions = Vec::new();
            for ex in &file.scope.exclusions {
                exclusions.push(Exclusion {
                    what: ctx.required(src, &ex.what, "exclusion.what"),
                    justification: ctx.required(src, &ex.justification, "exclusion.justification"),
                });
            }
            for sel in file.scope.include.iter().chain(&file.scope.exclude) {
                if sel.get_ref().is_empty() {
                    ctx.problems.at(
                        src,
                        sel.span().start,
                        "an empty selector matches every host",
                        Some("leave `include` out to mean every host; give label conditions otherwise".into()),
                    );
                }
            }
            let p = &file.policy;
            let dur =
                |ctx: &mut Ctx, v: &Option<Spanned<String>>, what: &str, default: Duration| {
                    v.as_ref().map_or(default, |v| ctx.duration(src, v, what))
                };
            let mut grades = BTreeMap::from([
                (Severity::Low, Grade::Observation),
                (Severity::Medium, Grade::Minor),
                (Severity::High, Grade::Major),
                (Severity::Critical, Grade::Major),
            ]);
            if let Some(custom) = &p.grades {
                grades.extend(custom.iter().map(|(k, v)| (*k, *v)));
            }
            let positive =
                |ctx: &mut Ctx, v: &Option<Spanned<u32>>, what: &str, default: u32| match v {
                    Some(v) if *v.get_ref() == 0 => {
                        ctx.problems.at(
                            src,
                            v.span().start,
                            format!("{what} must be at least 1"),
                            None,
                        );
                        default
                    }
                    Some(v) => *v.get_ref(),
                    None => default,
                };
            let threshold = match &p.risk_acceptance_threshold {
                Some(v) if !(1..=25).contains(v.get_ref()) => {
                    ctx.problems.at(
                        src,
                        v.span().start,
                        "risk_acceptance_threshold must be between 1 and 25 (likelihood × impact, each 1-5)",
                        None,
                    );
                    6
                }
                Some(v) => *v.get_ref(),
                None => 6,
            };
            let policy = Policy {
                stale_after: dur(
                    &mut ctx,
                    &p.stale_after,
                    "policy.stale_after",
                    Duration::hours(2),
                ),
                max_evidence_age: dur(
                    &mut ctx,
                    &p.max_evidence_age,
                    "policy.max_evidence_age",
                    Duration::days(7),
                ),
                evaluation_interval: dur(
                    &mut ctx,
                    &p.evaluation_interval,
                    "policy.evaluation_interval",
                    Duration::minutes(1),
                ),
                kpi_breach_evaluations: positive(
                    &mut ctx,
                    &p.kpi_breach_evaluations,
                    "policy.kpi_breach_evaluations",
                    3,
                ),
                verification_periods: positive(
                    &mut ctx,
                    &p.verification_periods,
                    "policy.verification_periods",
                    3,
                ),
                auto_close: p.auto_close.unwrap_or(true),
                grades,
                blind_spot_grade: p.blind_spot_grade.unwrap_or(Grade::Minor),
                risk_acceptance_threshold: threshold,
            };
            (
                Organisation { name },
                Scope {
                    statement,
                    boundaries: file.scope.boundaries.clone(),
                    include: file
                        .scope
                        .include
                        .iter()
                        .map(|s| selector(s.get_ref()))
                        .collect(),
                    exclude: file
                        .scope
                        .exclude
                        .iter()
                        .map(|s| selector(s.get_ref()))
                        .collect(),
                    exclusions,
                },
                policy,
            )
        }
        None => return None,
    };

    // Context (4.1, 4.2).
    let mut issues = Vec::new();
    let mut parties = Vec::new();
    if let Some(src) = sources.get("context.toml")
        && let Some(file) = parse_file::<RawContextFile>(src, ctx.problems)
    {
        let mut seen = BTreeSet::new();
        for i in &file.issues {
            issues.push(ContextIssue {
                id: ctx.id(src, &i.id, &mut seen, "issue"),
                kind: match i.kind {
                    IssueKindRaw::Internal => IssueKind::Internal,
                    IssueKindRaw::External => IssueKind::External,
                },
                description: ctx.required(src, &i.description, "issue.description"),
                owner: ctx.required(src, &i.owner, "issue.owner"),
                review_by: ctx.date(src, &i.review_by, "issue.review_by"),
            });
        }
        for p in &file.parties {
            parties.push(InterestedParty {
                id: ctx.id(src, &p.id, &mut seen, "party"),
                name: ctx.required(src, &p.name, "party.name"),
                requirements: ctx.required(src, &p.requirements, "party.requirements"),
                addressed: p.addressed,
                review_by: ctx.date(src, &p.review_by, "party.review_by"),
            });
        }
        if file.issues.is_empty() || file.parties.is_empty() {
            ctx.problems.file(
                "context.toml",
                "Clause 4.1 and 4.2 need at least one [[issue]] and one [[party]]",
                None,
            );
        }
    }

    // Controls: the Statement of Applicability.
    let mut controls = Vec::new();
    let mut soa: HashMap<String, bool> = HashMap::new();
    if let Some(src) = sources.get("controls.toml")
        && let Some(file) = parse_file::<RawControlsFile>(src, ctx.problems)
    {
        let mut by_id: HashMap<String, &RawControl> = HashMap::new();
        for c in &file.controls {
            let id = c.id.get_ref();
            if !vigil_shared::controls::is_known(id) {
                let hint = did_you_mean(
                    id,
                    vigil_shared::controls::all().iter().map(|c| c.id.as_str()),
                )
                .or_else(|| Some("Annex A ids are written A.5.1 … A.8.34".into()));
                ctx.problems.at(
                    src,
                    c.id.span().start,
                    format!("{id:?} is not an Annex A 2022 control"),
                    hint,
                );
                continue;
            }
            if by_id.insert(id.clone(), c).is_some() {
                ctx.problems.at(
                    src,
                    c.id.span().start,
                    format!("{id} is decided twice"),
                    None,
                );
            }
        }
        let missing: Vec<&str> = vigil_shared::controls::all()
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| !by_id.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            ctx.problems.file(
                "controls.toml",
                format!(
                    "the Statement of Applicability must decide all 93 controls; missing: {}",
                    missing.join(", ")
                ),
                Some(
                    "add a [[control]] with applicable = true/false and a justification for each"
                        .into(),
                ),
            );
        }
        for known in vigil_shared::controls::all() {
            let Some(raw) = by_id.get(&known.id) else {
                continue;
            };
            let justification = ctx.required(
                src,
                &raw.justification,
                &format!("{}'s justification", known.id),
            );
            let owner = match (&raw.owner, &file.defaults.owner) {
                (Some(o), _) => ctx.required(src, o, &format!("{}'s owner", known.id)),
                (None, Some(d)) if !d.trim().is_empty() => d.trim().to_string(),
                _ => {
                    ctx.problems.at(
                        src,
                        raw.id.span().start,
                        format!("{} has no owner", known.id),
                        Some("set owner on the control or [defaults] owner".into()),
                    );
                    String::new()
                }
            };
            let manual = raw.manual.as_ref().map(|m| {
                let status = match m.status.get_ref().as_str() {
                    "implemented" => ImplementationStatus::Implemented,
                    "partially" => ImplementationStatus::Partially,
                    "not_implemented" => ImplementationStatus::NotImplemented,
                    other => {
                        ctx.problems.at(
                            src,
                            m.status.span().start,
                            format!("manual status {other:?} is not known"),
                            Some("use implemented, partially or not_implemented".into()),
                        );
                        ImplementationStatus::NoEvidence
                    }
                };
                ManualEvidence {
                    status,
                    evidence: m.evidence.clone(),
                    reviewed: ctx.date(src, &m.reviewed, "manual.reviewed"),
                    review_every: m.review_every.as_ref().map_or(Duration::days(365), |r| {
                        ctx.duration(src, r, "manual.review_every")
                    }),
                }
            });
            soa.insert(known.id.clone(), raw.applicable);
            controls.push(ControlDecision {
                id: known.id.clone(),
                theme: known.theme,
                title: known.title.clone(),
                applicable: raw.applicable,
                justification,
                owner,
                implementation: raw.implementation.clone(),
                manual,
            });
        }
    }

    // Rules. When a file cannot be parsed, references to what it would define are not
    // reported as unknown: one typo must give one error, not a cascade.
    let mut rules = Vec::new();
    let mut rule_ids = BTreeSet::new();
    let mut rules_complete = true;
    for (_, src) in sources
        .iter()
        .filter(|(k, _)| *k == "rules.toml" || k.starts_with("rules/"))
    {
        let Some(file) = parse_file::<RawRulesFile>(src, ctx.problems) else {
            rules_complete = false;
            continue;
        };
        for r in &file.rules {
            let id = ctx.id(src, &r.id, &mut rule_ids, "rule");
            let check = r.check.get_ref().clone();
            let known = vigil_shared::outputs::get(&check);
            if known.is_none() && !vigil_shared::outputs::is_site_defined(&check) {
                let hint = did_you_mean(&check, vigil_shared::outputs::all().iter().map(|o| o.id.as_str()))
                    .or_else(|| {
                        Some(format!(
                            "built-in check outputs are listed in shared/PROTOCOL.md; site-defined ones start with {}",
                            vigil_shared::outputs::SITE_DEFINED_PREFIXES.join(" or ")
                        ))
                    });
                ctx.problems.at(
                    src,
                    r.check.span().start,
                    format!("rule {id}: unknown check {check:?}"),
                    hint,
                );
            }
            let (condition, expr) = match &r.condition {
                Some(c) => match expr::parse(c.get_ref()) {
                    Ok(e) => (Some(c.get_ref().clone()), Some(e)),
                    Err(e) => {
                        // The string's opening quote precedes the text.
                        ctx.problems.at(
                            src,
                            c.span().start + 1 + e.column,
                            format!("rule {id}: condition: {}", e.message),
                            Some("conditions look like `pending_security == 0 and status == \"pass\"`".into()),
                        );
                        (None, None)
                    }
                },
                None => (None, None),
            };
            let controls = match &r.controls {
                Some(list) => {
                    if list.get_ref().is_empty() {
                        ctx.problems.at(
                            src,
                            list.span().start,
                            format!("rule {id} maps to no control"),
                            None,
                        );
                    }
                    ctx.controls(src, list, &soa, &format!("rule {id}"))
                }
                None => match known {
                    Some(k) => k.controls.clone(),
                    None => {
                        ctx.problems.at(
                            src,
                            r.id.span().start,
                            format!("rule {id} needs `controls`: its check is site-defined"),
                            None,
                        );
                        Vec::new()
                    }
                },
            };
            let pass_reason: std::sync::Arc<str> = match &condition {
                Some(text) => format!("`{text}` holds").into(),
                None => "the check passed".into(),
            };
            rules.push(Rule {
                id,
                pass_reason,
                title: ctx.required(src, &r.title, "rule.title"),
                description: r.description.clone(),
                check,
                condition,
                expr,
                severity: r.severity,
                grace: r.grace.as_ref().map_or(Duration::zero(), |g| {
                    match duration::parse(g.get_ref()) {
                        Ok(d) => d,
                        Err(e) => {
                            ctx.problems
                                .at(src, g.span().start, format!("grace: {e}"), None);
                            Duration::zero()
                        }
                    }
                }),
                grace_scope: match r.grace_scope {
                    Some(GraceScopeRaw::Offender) => GraceScope::Offender,
                    _ => GraceScope::Host,
                },
                no_data: match r.no_data {
                    Some(NoDataRaw::Pass) => NoDataAs::Pass,
                    Some(NoDataRaw::Fail) => NoDataAs::Fail,
                    _ => NoDataAs::NoData,
                },
                controls,
                remediation: r.remediation.clone(),
            });
        }
    }
    if rules.is_empty()
        && sources
            .keys()
            .any(|k| k == "rules.toml" || k.starts_with("rules/"))
    {
        ctx.problems.file("rules.toml", "no [[rule]] defined", None);
    }

    // Exceptions.
    let mut exceptions = Vec::new();
    if let Some(src) = sources.get("exceptions.toml")
        && let Some(file) = parse_file::<RawExceptionsFile>(src, ctx.problems)
    {
        let mut seen = BTreeSet::new();
        for e in &file.exceptions {
            let id = ctx.id(src, &e.id, &mut seen, "exception");
            if rules_complete && !rule_ids.contains(e.rule.get_ref()) {
                let hint = did_you_mean(e.rule.get_ref(), rule_ids.iter().map(String::as_str));
                ctx.problems.at(
                    src,
                    e.rule.span().start,
                    format!("exception {id}: unknown rule {:?}", e.rule.get_ref()),
                    hint,
                );
            }
            if e.hosts.get_ref().is_empty() || e.hosts.get_ref().iter().any(BTreeMap::is_empty) {
                ctx.problems.at(
                    src,
                    e.hosts.span().start,
                    format!(
                        "exception {id}: every host selector needs at least one label condition"
                    ),
                    Some(
                        "e.g. hosts = [{ hostname = \"legacy-01\" }] or [{ env = \"lab\" }]".into(),
                    ),
                );
            }
            let approved = ctx.date(src, &e.approved, "exception.approved");
            let expires = ctx.date(src, &e.expires, "exception.expires");
            if expires < approved {
                ctx.problems.at(
                    src,
                    e.expires.span().start,
                    format!("exception {id} expires before it was approved"),
                    None,
                );
            }
            exceptions.push(Exception {
                id,
                rule: e.rule.get_ref().clone(),
                hosts: e.hosts.get_ref().iter().map(selector).collect(),
                justification: ctx.required(src, &e.justification, "exception.justification"),
                approver: ctx.required(src, &e.approver, "exception.approver"),
                approved,
                expires,
            });
        }
    }

    // KPIs.
    let mut kpis = Vec::new();
    let mut kpi_ids = BTreeSet::new();
    let kpi_file = sources
        .get("kpis.toml")
        .map(|src| (src, parse_file::<RawKpisFile>(src, ctx.problems)));
    let kpis_complete = matches!(kpi_file, Some((_, Some(_))));
    if let Some((src, Some(file))) = &kpi_file {
        let src = *src;
        if file.kpis.is_empty() {
            ctx.problems.file(
                "kpis.toml",
                "no [[kpi]] defined",
                Some("Clause 9.1 needs measurements".into()),
            );
        }
        for k in &file.kpis {
            let id = ctx.id(src, &k.id, &mut kpi_ids, "kpi");
            let m = k.measure.get_ref();
            let need_rule = |ctx: &mut Ctx| -> String {
                match &m.rule {
                    Some(r) => {
                        if rules_complete && !rule_ids.contains(r.get_ref()) {
                            let hint =
                                did_you_mean(r.get_ref(), rule_ids.iter().map(String::as_str));
                            ctx.problems.at(
                                src,
                                r.span().start,
                                format!("kpi {id}: unknown rule {:?}", r.get_ref()),
                                hint,
                            );
                        }
                        r.get_ref().clone()
                    }
                    None => {
                        ctx.problems.at(
                            src,
                            k.measure.span().start,
                            format!("kpi {id}: method {:?} needs `rule`", m.method.get_ref()),
                            None,
                        );
                        String::new()
                    }
                }
            };
            let need_check = |ctx: &mut Ctx| -> String {
                match &m.check {
                    Some(c) => {
                        let c_id = c.get_ref();
                        if vigil_shared::outputs::get(c_id).is_none()
                            && !vigil_shared::outputs::is_site_defined(c_id)
                        {
                            let hint = did_you_mean(
                                c_id,
                                vigil_shared::outputs::all().iter().map(|o| o.id.as_str()),
                            );
                            ctx.problems.at(
                                src,
                                c.span().start,
                                format!("kpi {id}: unknown check {c_id:?}"),
                                hint,
                            );
                        }
                        c_id.clone()
                    }
                    None => {
                        ctx.problems.at(
                            src,
                            k.measure.span().start,
                            format!("kpi {id}: method {:?} needs `check`", m.method.get_ref()),
                            None,
                        );
                        String::new()
                    }
                }
            };
            let need_value = |ctx: &mut Ctx| -> String {
                match &m.value {
                    Some(v) if !v.get_ref().trim().is_empty() => v.get_ref().trim().to_string(),
                    _ => {
                        ctx.problems.at(
                            src,
                            k.measure.span().start,
                            format!("kpi {id}: method {:?} needs `value` (the name of a value the check reports)", m.method.get_ref()),
                            None,
                        );
                        String::new()
                    }
                }
            };
            let method = m.method.get_ref().as_str();
            let measure = match method {
                "share_passing" => Some(Measure::SharePassing {
                    rule: need_rule(&mut ctx),
                }),
                "count_failing" => Some(Measure::CountFailing {
                    rule: need_rule(&mut ctx),
                }),
                "count_passing" => Some(Measure::CountPassing {
                    rule: need_rule(&mut ctx),
                }),
                "failing_age_max_days" => Some(Measure::FailingAgeMaxDays {
                    rule: need_rule(&mut ctx),
                }),
                "max" | "min" | "mean" | "sum" | "count" | "percentile" => {
                    let aggregate = match method {
                        "max" => Aggregate::Max,
                        "min" => Aggregate::Min,
                        "mean" => Aggregate::Mean,
                        "sum" => Aggregate::Sum,
                        "count" => Aggregate::Count,
                        _ => match &m.percentile {
                            Some(p) if *p.get_ref() > 0.0 && *p.get_ref() <= 100.0 => {
                                Aggregate::Percentile(*p.get_ref())
                            }
                            Some(p) => {
                                ctx.problems.at(
                                    src,
                                    p.span().start,
                                    format!("kpi {id}: percentile must be in (0, 100]"),
                                    None,
                                );
                                Aggregate::Percentile(50.0)
                            }
                            None => {
                                ctx.problems.at(src, k.measure.span().start, format!("kpi {id}: method \"percentile\" needs `percentile` (e.g. 95)"), None);
                                Aggregate::Percentile(50.0)
                            }
                        },
                    };
                    Some(Measure::Value {
                        check: need_check(&mut ctx),
                        value: need_value(&mut ctx),
                        aggregate,
                    })
                }
                "evidence_age_max_days" => Some(Measure::EvidenceAgeMaxDays {
                    check: need_check(&mut ctx),
                }),
                "coverage" => Some(Measure::Coverage),
                "open_nonconformities" => Some(Measure::OpenNonconformities {
                    grades: m.grades.clone().unwrap_or_default(),
                }),
                "overdue_actions" => Some(Measure::OverdueActions),
                other => {
                    ctx.problems.at(
                        src,
                        m.method.span().start,
                        format!("kpi {id}: unknown method {other:?}"),
                        Some(
                            "methods: share_passing, count_failing, count_passing, failing_age_max_days, \
                             max, min, mean, sum, count, percentile, evidence_age_max_days, coverage, \
                             open_nonconformities, overdue_actions"
                                .into(),
                        ),
                    );
                    None
                }
            };
            let measured_by =
                ctx.required(src, &m.by, &format!("kpi {id}: measure.by (who measures)"));
            let analysed_by = ctx.required(
                src,
                &k.analysis.by,
                &format!("kpi {id}: analysis.by (who analyses and evaluates)"),
            );
            let measure_schedule =
                ctx.schedule(src, &m.schedule, &format!("kpi {id}: measure.schedule"));
            let analysis_schedule = ctx.schedule(
                src,
                &k.analysis.schedule,
                &format!("kpi {id}: analysis.schedule"),
            );
            let t = k.target.get_ref();
            let direction = match t.operator.get_ref().as_str() {
                ">=" => Direction::AtLeast,
                "<=" => Direction::AtMost,
                other => {
                    ctx.problems.at(
                        src,
                        t.operator.span().start,
                        format!("kpi {id}: target operator {other:?} is not \">=\" or \"<=\""),
                        None,
                    );
                    Direction::AtLeast
                }
            };
            if t.tolerance < 0.0 || !t.tolerance.is_finite() || !t.value.is_finite() {
                ctx.problems.at(
                    src,
                    k.target.span().start,
                    format!("kpi {id}: target value and tolerance must be finite, tolerance ≥ 0"),
                    None,
                );
            }
            if matches!(
                measure,
                Some(Measure::SharePassing { .. } | Measure::Coverage)
            ) && !(0.0..=1.0).contains(&t.value)
            {
                ctx.problems.at(
                    src,
                    k.target.span().start,
                    format!(
                        "kpi {id}: a share is between 0 and 1, the target {} is not",
                        t.value
                    ),
                    Some("write 95% as 0.95".into()),
                );
            }
            let controls = match &k.controls {
                Some(list) => ctx.controls(src, list, &soa, &format!("kpi {id}")),
                None => {
                    let from_rule = measure.as_ref().and_then(Measure::rule).and_then(|r| {
                        // Rules are validated above; their controls are known by now.
                        rules.iter().find(|x| x.id == r).map(|x| x.controls.clone())
                    });
                    let from_check = measure
                        .as_ref()
                        .and_then(Measure::check)
                        .and_then(vigil_shared::outputs::get)
                        .map(|o| o.controls.clone());
                    let unresolved_rule = measure
                        .as_ref()
                        .and_then(Measure::rule)
                        .is_some_and(|r| !rule_ids.contains(r));
                    match from_rule.or(from_check) {
                        Some(c) => c,
                        // Already reported as an unknown rule (or its file did not parse).
                        None if unresolved_rule => Vec::new(),
                        None => {
                            ctx.problems.at(
                                src,
                                k.id.span().start,
                                format!("kpi {id} needs `controls`: its measure names no rule or built-in check"),
                                None,
                            );
                            Vec::new()
                        }
                    }
                }
            };
            if let (Some(measure), Some(measure_schedule), Some(analysis_schedule)) =
                (measure, measure_schedule, analysis_schedule)
            {
                kpis.push(Kpi {
                    id,
                    name: ctx.required(src, &k.name, "kpi.name"),
                    description: k.description.clone(),
                    measure,
                    measure_schedule,
                    measured_by,
                    analysis_schedule,
                    analysed_by,
                    target: Target {
                        direction,
                        value: t.value,
                        tolerance: t.tolerance,
                    },
                    controls,
                    nc_grade: k.nc_grade.unwrap_or(Grade::Minor),
                });
            }
        }
    }

    // Objectives.
    let mut objectives = Vec::new();
    if let Some(src) = sources.get("objectives.toml")
        && let Some(file) = parse_file::<RawObjectivesFile>(src, ctx.problems)
    {
        if file.objectives.is_empty() {
            ctx.problems.file(
                "objectives.toml",
                "no [[objective]] defined",
                Some("Clause 6.2 needs objectives".into()),
            );
        }
        let mut seen = BTreeSet::new();
        for o in &file.objectives {
            let id = ctx.id(src, &o.id, &mut seen, "objective");
            if o.kpis.get_ref().is_empty() {
                ctx.problems.at(
                    src,
                    o.kpis.span().start,
                    format!("objective {id} names no KPI: it could not be measured"),
                    None,
                );
            }
            for kpi in o.kpis.get_ref() {
                if kpis_complete && !kpi_ids.contains(kpi) {
                    let hint = did_you_mean(kpi, kpi_ids.iter().map(String::as_str));
                    ctx.problems.at(
                        src,
                        o.kpis.span().start,
                        format!("objective {id}: unknown kpi {kpi:?}"),
                        hint,
                    );
                }
            }
            objectives.push(Objective {
                id: id.clone(),
                statement: ctx.required(src, &o.statement, "objective.statement"),
                target: ctx.required(src, &o.target, "objective.target"),
                kpis: o.kpis.get_ref().clone(),
                deadline: ctx.date(src, &o.deadline, "objective.deadline"),
                owner: ctx.required(src, &o.owner, &format!("objective {id}'s owner")),
                plan: o.plan.clone(),
                resources: o.resources.clone(),
            });
        }
    }

    // Risks.
    let mut risks = Vec::new();
    if let Some(src) = sources.get("risks.toml")
        && let Some(file) = parse_file::<RawRisksFile>(src, ctx.problems)
    {
        let mut seen = BTreeSet::new();
        for r in &file.risks {
            let id = ctx.id(src, &r.id, &mut seen, "risk");
            let scale = |ctx: &mut Ctx, v: &Spanned<u8>, what: &str| -> u8 {
                if !(1..=5).contains(v.get_ref()) {
                    ctx.problems.at(
                        src,
                        v.span().start,
                        format!("risk {id}: {what} must be 1-5"),
                        None,
                    );
                    1
                } else {
                    *v.get_ref()
                }
            };
            let likelihood = scale(&mut ctx, &r.likelihood, "likelihood");
            let impact = scale(&mut ctx, &r.impact, "impact");
            let residual_likelihood = r
                .residual_likelihood
                .as_ref()
                .map_or(likelihood, |v| scale(&mut ctx, v, "residual_likelihood"));
            let residual_impact = r
                .residual_impact
                .as_ref()
                .map_or(impact, |v| scale(&mut ctx, v, "residual_impact"));
            let controls = ctx.controls(src, &r.controls, &soa, &format!("risk {id}"));
            for kpi in r.kpis.get_ref() {
                if kpis_complete && !kpi_ids.contains(kpi) {
                    let hint = did_you_mean(kpi, kpi_ids.iter().map(String::as_str));
                    ctx.problems.at(
                        src,
                        r.kpis.span().start,
                        format!("risk {id}: unknown kpi {kpi:?}"),
                        hint,
                    );
                }
            }
            let treatment = match r.treatment {
                TreatmentRaw::Mitigate => Treatment::Mitigate,
                TreatmentRaw::Accept => Treatment::Accept,
                TreatmentRaw::Transfer => Treatment::Transfer,
                TreatmentRaw::Avoid => Treatment::Avoid,
            };
            if treatment == Treatment::Mitigate && controls.is_empty() {
                ctx.problems.at(
                    src,
                    r.id.span().start,
                    format!("risk {id} is to be mitigated but names no control"),
                    Some("list the Annex A controls that treat it in `controls`".into()),
                );
            }
            let acceptance = r.acceptance.as_ref().map(|a| Acceptance {
                by: ctx.required(src, &a.by, "acceptance.by"),
                date: ctx.date(src, &a.date, "acceptance.date"),
                justification: ctx.required(src, &a.justification, "acceptance.justification"),
            });
            let residual = residual_likelihood * residual_impact;
            if acceptance.is_none()
                && (treatment == Treatment::Accept || residual > threshold_of(&policy))
            {
                ctx.problems.at(
                    src,
                    r.id.span().start,
                    format!(
                        "risk {id}: residual level {residual} needs the risk owner's acceptance{}",
                        if treatment == Treatment::Accept {
                            " (treatment is accept)"
                        } else {
                            " (above policy.risk_acceptance_threshold)"
                        }
                    ),
                    Some("add [risk.acceptance] with by, date and justification".into()),
                );
            }
            risks.push(Risk {
                id: id.clone(),
                title: ctx.required(src, &r.title, "risk.title"),
                description: r.description.clone(),
                owner: ctx.required(src, &r.owner, &format!("risk {id}'s owner")),
                likelihood,
                impact,
                treatment,
                controls,
                kpis: r.kpis.get_ref().clone(),
                residual_likelihood,
                residual_impact,
                acceptance,
            });
        }
    }

    // Internal audit programme.
    let mut audits = Vec::new();
    if let Some(src) = sources.get("audits.toml")
        && let Some(file) = parse_file::<RawAuditsFile>(src, ctx.problems)
    {
        let mut seen = BTreeSet::new();
        let mut finding_ids = BTreeSet::new();
        for a in &file.audits {
            let id = ctx.id(src, &a.id, &mut seen, "audit");
            let controls = ctx.controls(src, &a.controls, &soa, &format!("audit {id}"));
            let mut findings = Vec::new();
            for f in &a.findings {
                findings.push(Finding {
                    id: ctx.id(src, &f.id, &mut finding_ids, "finding"),
                    description: ctx.required(src, &f.description, "finding.description"),
                    controls: ctx.controls(src, &f.controls, &soa, "finding"),
                    grade: f.grade,
                    raised: ctx.date(src, &f.raised, "finding.raised"),
                });
            }
            audits.push(Audit {
                id,
                title: ctx.required(src, &a.title, "audit.title"),
                scope: a.scope.clone(),
                controls,
                planned: ctx.date(src, &a.planned, "audit.planned"),
                performed: a
                    .performed
                    .as_ref()
                    .map(|p| ctx.date(src, p, "audit.performed")),
                auditor: ctx.required(src, &a.auditor, "audit.auditor"),
                findings,
            });
        }
    }

    Some(Isms {
        organisation,
        scope,
        policy,
        issues,
        parties,
        controls,
        rules,
        exceptions,
        kpis,
        objectives,
        risks,
        audits,
    })
}

fn threshold_of(policy: &Policy) -> u8 {
    policy.risk_acceptance_threshold
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn default_pack() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/isms")
    }

    #[test]
    fn the_default_pack_validates() {
        let (isms, warnings) = match load_dir(&default_pack()) {
            Ok(v) => v,
            Err(problems) => {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                panic!("default pack has problems:\n{}", text.join("\n"));
            }
        };
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(isms.controls.len(), 93);
        assert!(isms.kpis.len() >= 12);
        assert!(isms.objectives.len() >= 4);
        assert!(!isms.risks.is_empty());
        // A rule for every built-in agent check output.
        for output in vigil_shared::outputs::all() {
            assert!(
                isms.rules.iter().any(|r| r.check == output.id),
                "no rule reads {}",
                output.id
            );
        }
    }

    /// The default pack's files in memory, with `edit` applied to one of them.
    fn pack_with(file: &str, from: &str, to: &str) -> Vec<super::super::Problem> {
        let mut files: Vec<(String, String)> = Vec::new();
        let dir = default_pack();
        for name in KNOWN_FILES {
            if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
                files.push((name.to_string(), text));
            }
        }
        for entry in std::fs::read_dir(dir.join("rules")).unwrap() {
            let entry = entry.unwrap();
            let name = format!("rules/{}", entry.file_name().to_string_lossy());
            files.push((name, std::fs::read_to_string(entry.path()).unwrap()));
        }
        let mut found = false;
        for (name, text) in &mut files {
            if name == file {
                assert!(text.contains(from), "{file} does not contain {from:?}");
                *text = text.replacen(from, to, 1);
                found = true;
            }
        }
        assert!(found, "no file {file}");
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        match load_sources(&borrowed) {
            Ok((_, warnings)) => warnings,
            Err(problems) => problems,
        }
    }

    fn only_error(problems: &[super::super::Problem]) -> String {
        let errors: Vec<String> = problems
            .iter()
            .filter(|p| p.level == super::super::Level::Error)
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors[0].clone()
    }

    #[test]
    fn a_typo_in_a_control_id_is_located_and_explained() {
        let problems = pack_with(
            "rules/patching.toml",
            "controls = [\"A.8.8\"]",
            "controls = [\"A.8.88\"]",
        );
        let error = only_error(&problems);
        assert!(error.starts_with("rules/patching.toml:15:12:"), "{error}");
        assert!(
            error.contains("\"A.8.88\" is not an ISO/IEC 27001:2022 Annex A control"),
            "{error}"
        );
        assert!(error.contains("did you mean \"A.8.8\""), "{error}");
    }

    #[test]
    fn a_kpi_without_owner_is_refused() {
        let problems = pack_with(
            "kpis.toml",
            "analysis = { schedule = \"0 8 * * 1\", by = \"security-manager@example.com\" }",
            "analysis = { schedule = \"0 8 * * 1\", by = \"\" }",
        );
        let error = only_error(&problems);
        assert!(error.starts_with("kpis.toml:17:43:"), "{error}");
        assert!(
            error.contains(
                "kpi kpi.patch-security: analysis.by (who analyses and evaluates) is empty"
            ),
            "{error}"
        );
        let problems = pack_with(
            "kpis.toml",
            ", by = \"security-manager@example.com\" }",
            " }",
        );
        let error = only_error(&problems);
        assert!(error.contains("missing field `by`"), "{error}");
        assert!(error.starts_with("kpis.toml:17:"), "{error}");
    }

    #[test]
    fn a_bad_cron_is_refused_with_its_line() {
        let problems = pack_with(
            "kpis.toml",
            "schedule = \"0 8 * * 1\"",
            "schedule = \"0 25 * * 1\"",
        );
        let error = only_error(&problems);
        assert!(error.starts_with("kpis.toml:17:25:"), "{error}");
        assert!(error.contains("Hours must be less than"), "{error}");
        assert!(!error.contains('\n'), "{error}");
        assert!(
            error.contains("analysis.schedule is not a valid cron expression"),
            "{error}"
        );
    }

    #[test]
    fn references_and_conditions_are_checked() {
        let problems = pack_with(
            "rules/patching.toml",
            "check = \"packages.pending_security\"",
            "check = \"packages.pending_securty\"",
        );
        let error = only_error(&problems);
        assert!(
            error.contains("unknown check \"packages.pending_securty\""),
            "{error}"
        );
        assert!(
            error.contains("did you mean \"packages.pending_security\""),
            "{error}"
        );

        let problems = pack_with(
            "rules/patching.toml",
            "condition = \"pending_security == 0\"",
            "condition = \"pending_security = 0\"",
        );
        let error = only_error(&problems);
        // The column of the single '=' inside the string.
        assert!(error.starts_with("rules/patching.toml:11:31:"), "{error}");

        let problems = pack_with(
            "objectives.toml",
            "\"kpi.patch-max-age\", ",
            "\"kpi.patch-maxage\", ",
        );
        let error = only_error(&problems);
        assert!(
            error.contains("unknown kpi \"kpi.patch-maxage\""),
            "{error}"
        );

        let problems = pack_with(
            "kpis.toml",
            "rule = \"patch.security-updates\"",
            "rule = \"patch.security\"",
        );
        assert!(only_error(&problems).contains("unknown rule \"patch.security\""));
    }

    #[test]
    fn the_soa_must_decide_every_control() {
        let problems = pack_with("controls.toml", "id = \"A.8.34\"", "id = \"A.8.33\"");
        let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            errors.iter().any(|e| e.contains("A.8.33 is decided twice")),
            "{errors:#?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("missing: A.8.34")),
            "{errors:#?}"
        );
    }

    #[test]
    fn unknown_keys_and_missing_acceptance_are_errors() {
        let problems = pack_with(
            "risks.toml",
            "likelihood = 4\nimpact = 4",
            "likelihod = 4\nimpact = 4",
        );
        let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("unknown field `likelihod`")),
            "{errors:#?}"
        );

        let problems = pack_with(
            "risks.toml",
            "[risk.acceptance]\nby = \"cto@example.com\"\ndate = 2026-10-01\njustification = \"Residual exposure within the 14-day patch window accepted; emergency patching covers critical vulnerabilities.\"\n",
            "",
        );
        let error = only_error(&problems);
        assert!(
            error.contains("risk R-01: residual level 8 needs the risk owner's acceptance"),
            "{error}"
        );
    }

    #[test]
    fn a_rule_on_a_non_applicable_control_is_a_warning() {
        let problems = pack_with(
            "controls.toml",
            "id = \"A.8.8\"  # Management of technical vulnerabilities\napplicable = true",
            "id = \"A.8.8\"  # Management of technical vulnerabilities\napplicable = false",
        );
        assert!(!problems.is_empty());
        assert!(
            problems
                .iter()
                .all(|p| p.level == super::super::Level::Warning),
            "{problems:#?}"
        );
    }
}
