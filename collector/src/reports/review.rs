//! The management review pack (ISO/IEC 27001:2022, 9.3): the inputs clause 9.3.2 asks top
//! management to consider, gathered from the stored data for a chosen period and rendered as
//! Markdown or as a self-contained HTML page. The content is built once as sections and
//! tables; the two renderers only format them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::html_escape;
use super::soa::{self, SoaRow};
use crate::evaluate::{KpiStatus, NcEvent, NcEventKind, NcState, Nonconformity, ObjectiveStatus};
use crate::isms::{ImplementationStatus, Isms};
use crate::store::{KpiSnapshot, ObjectiveRecord, Store, StoreError};

/// A table: headers and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One section of the pack.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    pub title: String,
    pub paragraphs: Vec<String>,
    pub bullets: Vec<String>,
    pub tables: Vec<Table>,
    pub subsections: Vec<Section>,
}

/// The whole pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub title: String,
    pub period: String,
    pub generated_at: DateTime<Utc>,
    pub sections: Vec<Section>,
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> Table {
    Table {
        headers: headers.iter().map(|h| (*h).to_string()).collect(),
        rows,
    }
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e12 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
        None => "–".into(),
    }
}

/// What the pack is built from (gathered from the store, or given by tests).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// The register as it stood at `to`.
    pub nonconformities: Vec<Nonconformity>,
    /// Events in the period, with their nonconformity id.
    pub events: Vec<(u64, NcEvent)>,
    /// KPI values in the period, per KPI (oldest first).
    pub kpi_values: BTreeMap<String, Vec<Option<f64>>>,
    /// The latest measurement and analysis per KPI at `to`.
    pub kpis_at_end: Vec<KpiSnapshot>,
    pub objectives_at_end: Vec<ObjectiveRecord>,
    /// Objective status at `from`, to show changes.
    pub objectives_at_start: Vec<ObjectiveRecord>,
    pub soa: Vec<SoaRow>,
}

/// Reads everything the pack needs for `[from, to]`.
pub async fn gather(
    isms: &Isms,
    store: &dyn Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    generated_at: DateTime<Utc>,
) -> Result<Inputs, StoreError> {
    let nonconformities = store.nonconformities_at(Some(to)).await?;
    let events = store.nc_events_between(from, to).await?;
    let mut kpi_values = BTreeMap::new();
    for kpi in &isms.kpis {
        let (values, _) = store.kpi_history(&kpi.id, from, to, 100_000).await?;
        kpi_values.insert(
            kpi.id.clone(),
            values.into_iter().map(|v| v.value).collect(),
        );
    }
    let controls = store.controls_at(Some(to)).await?;
    Ok(Inputs {
        from,
        to,
        generated_at,
        nonconformities,
        events,
        kpi_values,
        kpis_at_end: store.kpis_at(Some(to)).await?,
        objectives_at_end: store.objectives_at(Some(to)).await?,
        objectives_at_start: store.objectives_at(Some(from)).await?,
        soa: soa::build(isms, &controls),
    })
}

/// Builds the pack.
pub fn build(isms: &Isms, inputs: &Inputs) -> Review {
    let to_day = inputs.to.date_naive();
    let mut sections = Vec::new();

    // a) Status of actions from previous reviews: corrective actions are the actions Vigil
    // tracks; decisions of earlier reviews are kept in their minutes.
    let actions: Vec<Vec<String>> = inputs
        .nonconformities
        .iter()
        .filter(|nc| nc.corrective_action.is_some() && nc.state != NcState::Closed)
        .map(|nc| {
            let overdue = nc.due.is_some_and(|d| d < to_day) && nc.state.is_open();
            vec![
                format!("NC-{}", nc.id),
                nc.corrective_action.clone().unwrap_or_default(),
                nc.owner.clone().unwrap_or_default(),
                nc.due.map(|d| d.to_string()).unwrap_or_default(),
                format!(
                    "{}{}",
                    nc.state.as_str(),
                    if overdue { " (overdue)" } else { "" }
                ),
            ]
        })
        .collect();
    sections.push(Section {
        title: "a) Status of actions from previous management reviews".into(),
        paragraphs: vec![if actions.is_empty() {
            "No corrective action was open at the end of the period. Decisions of earlier reviews are tracked in their minutes.".into()
        } else {
            "Corrective actions open at the end of the period (decisions of earlier reviews are tracked in their minutes):".into()
        }],
        tables: if actions.is_empty() {
            vec![]
        } else {
            vec![table(&["Nonconformity", "Corrective action", "Owner", "Due", "State"], actions)]
        },
        ..Default::default()
    });

    // b) and c) Context and interested parties.
    let review_state = |d: chrono::NaiveDate| {
        if d < to_day {
            format!("{d} (review overdue)")
        } else {
            d.to_string()
        }
    };
    sections.push(Section {
        title: "b) Changes in external and internal issues".into(),
        paragraphs: vec!["Issues recorded in context.toml; a change to them shows in the ISMS repository's history.".into()],
        tables: vec![table(
            &["Issue", "Kind", "Description", "Owner", "Next review"],
            isms.issues
                .iter()
                .map(|i| {
                    vec![
                        i.id.clone(),
                        format!("{:?}", i.kind).to_lowercase(),
                        i.description.clone(),
                        i.owner.clone(),
                        review_state(i.review_by),
                    ]
                })
                .collect(),
        )],
        ..Default::default()
    });
    sections.push(Section {
        title: "c) Changes in needs and expectations of interested parties".into(),
        tables: vec![table(
            &[
                "Party",
                "Requirements",
                "Addressed by the ISMS",
                "Next review",
            ],
            isms.parties
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.requirements.clone(),
                        if p.addressed { "yes" } else { "no" }.into(),
                        review_state(p.review_by),
                    ]
                })
                .collect(),
        )],
        ..Default::default()
    });

    // d) Performance.
    let count_events =
        |kind: NcEventKind| inputs.events.iter().filter(|(_, e)| e.kind == kind).count();
    let active: Vec<&Nonconformity> = inputs
        .nonconformities
        .iter()
        .filter(|nc| nc.state != NcState::Closed)
        .collect();
    let mut by_grade: BTreeMap<&str, usize> = BTreeMap::new();
    for nc in &active {
        *by_grade.entry(nc.grade.as_str()).or_default() += 1;
    }
    let recurring = inputs
        .nonconformities
        .iter()
        .filter(|nc| nc.recurrence_of.is_some())
        .count();
    let d1 = Section {
        title: "Nonconformities and corrective actions".into(),
        paragraphs: vec![format!(
            "In the period: {} opened, {} resolved, {} reopened, {} verified effective, {} closed. \
             At the end of the period {} were not closed ({}); {} were recurrences of an earlier one.",
            count_events(NcEventKind::Opened),
            count_events(NcEventKind::Resolved),
            count_events(NcEventKind::Reopened),
            count_events(NcEventKind::Verified),
            count_events(NcEventKind::Closed),
            active.len(),
            if by_grade.is_empty() {
                "none".to_string()
            } else {
                by_grade
                    .iter()
                    .map(|(g, n)| format!("{n} {g}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            recurring
        )],
        tables: if active.is_empty() {
            vec![]
        } else {
            vec![table(
                &[
                    "Id", "Grade", "Source", "Title", "State", "Opened", "Owner", "Due",
                ],
                active
                    .iter()
                    .map(|nc| {
                        vec![
                            format!("NC-{}", nc.id),
                            nc.grade.as_str().into(),
                            nc.source.as_str().into(),
                            nc.title.clone(),
                            nc.state.as_str().into(),
                            day(nc.opened_at),
                            nc.owner.clone().unwrap_or_default(),
                            nc.due.map(|d| d.to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect(),
            )]
        },
        ..Default::default()
    };
    let kpi_rows: Vec<Vec<String>> = isms
        .kpis
        .iter()
        .map(|kpi| {
            let values: Vec<f64> = inputs
                .kpi_values
                .get(&kpi.id)
                .map(|v| v.iter().flatten().copied().collect())
                .unwrap_or_default();
            let snapshot = inputs.kpis_at_end.iter().find(|s| s.kpi == kpi.id);
            let status = snapshot
                .and_then(|s| s.evaluation.as_ref())
                .map_or("not analysed".to_string(), |e| {
                    e.status.as_str().to_string()
                });
            let latest = snapshot
                .and_then(|s| s.value.as_ref())
                .and_then(|v| v.value);
            let op = match kpi.target.direction {
                crate::isms::Direction::AtLeast => "≥",
                crate::isms::Direction::AtMost => "≤",
            };
            vec![
                kpi.id.clone(),
                kpi.name.clone(),
                format!("{op} {}", fmt_value(Some(kpi.target.value))),
                values.len().to_string(),
                fmt_value(values.iter().copied().reduce(f64::min)),
                fmt_value(values.iter().copied().reduce(f64::max)),
                fmt_value(latest),
                status,
                kpi.analysed_by.clone(),
            ]
        })
        .collect();
    let d2 = Section {
        title: "Monitoring and measurement results (Clause 9.1)".into(),
        tables: vec![table(
            &[
                "KPI",
                "Name",
                "Target",
                "Measurements",
                "Min",
                "Max",
                "Latest",
                "Status",
                "Analysed by",
            ],
            kpi_rows,
        )],
        ..Default::default()
    };
    let audit_rows: Vec<Vec<String>> = isms
        .audits
        .iter()
        .map(|a| {
            let in_period = a
                .performed
                .is_some_and(|p| p >= inputs.from.date_naive() && p <= to_day);
            vec![
                a.id.clone(),
                a.title.clone(),
                a.planned.to_string(),
                a.performed.map_or_else(
                    || {
                        if a.planned < to_day {
                            "not performed (late)".into()
                        } else {
                            "planned".into()
                        }
                    },
                    |p| format!("{p}{}", if in_period { " (in this period)" } else { "" }),
                ),
                a.findings
                    .iter()
                    .map(|f| format!("{} ({})", f.id, f.grade.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let d3 = Section {
        title: "Audit results (Clause 9.2)".into(),
        tables: vec![table(
            &["Audit", "Title", "Planned", "Performed", "Findings"],
            audit_rows,
        )],
        ..Default::default()
    };
    let objective_rows: Vec<Vec<String>> = isms
        .objectives
        .iter()
        .map(|o| {
            let end = inputs
                .objectives_at_end
                .iter()
                .find(|r| r.state.objective == o.id);
            let start = inputs
                .objectives_at_start
                .iter()
                .find(|r| r.state.objective == o.id);
            let status = end.map_or("no_data".to_string(), |r| {
                r.state.status.as_str().to_string()
            });
            let change = match (start, end) {
                (Some(s), Some(e)) if s.state.status != e.state.status => {
                    format!("{} → {}", s.state.status.as_str(), e.state.status.as_str())
                }
                (None, Some(_)) => "first evaluated in this period".into(),
                _ => "unchanged".into(),
            };
            vec![
                o.id.clone(),
                o.statement.clone(),
                o.deadline.to_string(),
                o.owner.clone(),
                status,
                change,
                end.map(|r| r.state.reason.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    let d4 = Section {
        title: "Fulfilment of information security objectives (Clause 6.2)".into(),
        tables: vec![table(
            &[
                "Objective",
                "Statement",
                "Deadline",
                "Owner",
                "Status",
                "Change",
                "Why",
            ],
            objective_rows,
        )],
        ..Default::default()
    };
    let mut status_by_theme: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    for row in &inputs.soa {
        *status_by_theme
            .entry(row.theme.clone())
            .or_default()
            .entry(row.status.as_str())
            .or_default() += 1;
    }
    let statuses = [
        "implemented",
        "partially",
        "not_implemented",
        "not_applicable",
        "no_evidence",
    ];
    let d5 = Section {
        title: "Controls (Statement of Applicability)".into(),
        tables: vec![table(
            &[
                "Theme",
                "Implemented",
                "Partially",
                "Not implemented",
                "Not applicable",
                "No evidence",
            ],
            status_by_theme
                .iter()
                .map(|(theme, counts)| {
                    let mut row = vec![theme.clone()];
                    row.extend(
                        statuses
                            .iter()
                            .map(|s| counts.get(s).copied().unwrap_or(0).to_string()),
                    );
                    row
                })
                .collect(),
        )],
        ..Default::default()
    };
    sections.push(Section {
        title: "d) Feedback on information security performance".into(),
        subsections: vec![d1, d2, d3, d4, d5],
        ..Default::default()
    });

    // e) Interested parties' feedback is not recorded by Vigil.
    sections.push(Section {
        title: "e) Feedback from interested parties".into(),
        paragraphs: vec!["Vigil does not record feedback from interested parties; add customer, regulator and staff feedback received in the period to the minutes.".into()],
        ..Default::default()
    });

    // f) Risks.
    let status_of = |control: &str| {
        inputs
            .soa
            .iter()
            .find(|r| r.control == control)
            .map_or("unknown", |r| r.status.as_str())
    };
    let kpi_status_of = |kpi: &str| {
        inputs
            .kpis_at_end
            .iter()
            .find(|s| s.kpi == kpi)
            .and_then(|s| s.evaluation.as_ref())
            .map_or("not analysed", |e| e.status.as_str())
    };
    sections.push(Section {
        title: "f) Results of risk assessment and status of risk treatment".into(),
        tables: vec![table(
            &[
                "Risk",
                "Title",
                "Level",
                "Treatment",
                "Residual",
                "Controls",
                "KPIs",
                "Owner",
                "Accepted",
            ],
            isms.risks
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.title.clone(),
                        format!("{} ({}×{})", r.level(), r.likelihood, r.impact),
                        format!("{:?}", r.treatment).to_lowercase(),
                        r.residual_level().to_string(),
                        r.controls
                            .iter()
                            .map(|c| format!("{c}: {}", status_of(c)))
                            .collect::<Vec<_>>()
                            .join("; "),
                        r.kpis
                            .iter()
                            .map(|k| format!("{k}: {}", kpi_status_of(k)))
                            .collect::<Vec<_>>()
                            .join("; "),
                        r.owner.clone(),
                        r.acceptance
                            .as_ref()
                            .map(|a| format!("by {} on {}", a.by, a.date))
                            .unwrap_or_default(),
                    ]
                })
                .collect(),
        )],
        ..Default::default()
    });

    // g) Opportunities for improvement, derived from the data.
    let mut bullets = Vec::new();
    for row in &inputs.soa {
        match row.status {
            ImplementationStatus::NotImplemented | ImplementationStatus::Partially => {
                bullets.push(format!(
                    "{} {} is {}: {}",
                    row.control,
                    row.title,
                    row.status.as_str().replace('_', " "),
                    row.status_reason
                ))
            }
            _ => {}
        }
    }
    for snapshot in &inputs.kpis_at_end {
        if let Some(e) = &snapshot.evaluation
            && e.status == KpiStatus::Missed
        {
            bullets.push(format!(
                "KPI {} missed its target ({} analyses in a row)",
                snapshot.kpi, e.consecutive_misses
            ));
        }
    }
    for record in &inputs.objectives_at_end {
        if matches!(
            record.state.status,
            ObjectiveStatus::AtRisk | ObjectiveStatus::Missed
        ) {
            bullets.push(format!(
                "Objective {} is {}: {}",
                record.state.objective,
                record.state.status.as_str().replace('_', " "),
                record.state.reason
            ));
        }
    }
    if recurring > 0 {
        bullets.push(format!(
            "{recurring} nonconformities recurred after being closed: review whether their root causes were addressed"
        ));
    }
    let no_evidence = inputs
        .soa
        .iter()
        .filter(|r| r.status == ImplementationStatus::NoEvidence)
        .count();
    if no_evidence > 0 {
        bullets.push(format!(
            "{no_evidence} applicable controls have no evidence: add rules or manual evidence"
        ));
    }
    sections.push(Section {
        title: "g) Opportunities for continual improvement".into(),
        paragraphs: if bullets.is_empty() {
            vec!["Nothing stands out from the measurements.".into()]
        } else {
            vec!["Derived from the measurements of the period:".into()]
        },
        bullets,
        ..Default::default()
    });

    Review {
        title: format!("Management review — {}", isms.organisation.name),
        period: format!("{} to {}", day(inputs.from), day(inputs.to)),
        generated_at: inputs.generated_at,
        sections,
    }
}

fn md_cell(value: &str) -> String {
    value.replace('|', "\\|").replace('\n', " ")
}

fn md_section(out: &mut String, section: &Section, level: usize) {
    out.push_str(&format!("\n{} {}\n\n", "#".repeat(level), section.title));
    for p in &section.paragraphs {
        out.push_str(p);
        out.push_str("\n\n");
    }
    for b in &section.bullets {
        out.push_str(&format!("- {}\n", md_cell(b)));
    }
    if !section.bullets.is_empty() {
        out.push('\n');
    }
    for t in &section.tables {
        out.push_str(&format!(
            "| {} |\n",
            t.headers
                .iter()
                .map(|h| md_cell(h))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        out.push_str(&format!("|{}\n", "---|".repeat(t.headers.len())));
        for row in &t.rows {
            out.push_str(&format!(
                "| {} |\n",
                row.iter()
                    .map(|c| md_cell(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        out.push('\n');
    }
    for s in &section.subsections {
        md_section(out, s, level + 1);
    }
}

/// The pack as Markdown.
pub fn markdown(review: &Review) -> String {
    let mut out = format!(
        "# {}\n\nPeriod: {} · generated {} by Vigil from the stored measurements (ISO/IEC 27001:2022, 9.3.2).\n",
        review.title,
        review.period,
        review.generated_at.to_rfc3339()
    );
    for s in &review.sections {
        md_section(&mut out, s, 2);
    }
    out
}

fn html_section(out: &mut String, section: &Section, level: usize) {
    let h = level.min(6);
    out.push_str(&format!(
        "<section><h{h}>{}</h{h}>\n",
        html_escape(&section.title)
    ));
    for p in &section.paragraphs {
        out.push_str(&format!("<p>{}</p>\n", html_escape(p)));
    }
    if !section.bullets.is_empty() {
        out.push_str("<ul>\n");
        for b in &section.bullets {
            out.push_str(&format!("<li>{}</li>\n", html_escape(b)));
        }
        out.push_str("</ul>\n");
    }
    for t in &section.tables {
        out.push_str("<table><thead><tr>");
        for head in &t.headers {
            out.push_str(&format!("<th>{}</th>", html_escape(head)));
        }
        out.push_str("</tr></thead><tbody>\n");
        for row in &t.rows {
            out.push_str("<tr>");
            for cell in row {
                out.push_str(&format!("<td>{}</td>", html_escape(cell)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
    for s in &section.subsections {
        html_section(out, s, level + 1);
    }
    out.push_str("</section>\n");
}

/// The pack as one self-contained HTML page (no scripts, no external resources).
pub fn html(review: &Review) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:sans-serif;max-width:75em;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;width:100%}}th,td{{border:1px solid #bbb;\
         padding:.3em .5em;text-align:left;vertical-align:top;font-size:.9em}}th{{background:#eee}}\
         </style></head><body>\n<h1>{}</h1>\n<p>Period: {} · generated {} by Vigil from the stored \
         measurements (ISO/IEC 27001:2022, 9.3.2).</p>\n",
        html_escape(&review.title),
        html_escape(&review.title),
        html_escape(&review.period),
        html_escape(&review.generated_at.to_rfc3339())
    );
    for s in &review.sections {
        html_section(&mut out, s, 2);
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::tests::{fixture_isms, t};
    use crate::evaluate::{KpiEvaluation, NcSource, ObjectiveState};
    use crate::isms::Grade;

    fn inputs() -> Inputs {
        let isms = fixture_isms();
        let nc = Nonconformity {
            id: 7,
            key: "rule/access.no-extra-uid0/h1".into(),
            source: NcSource::Rule,
            title: "Only root has uid 0 — failing on <web-01>".into(),
            grade: Grade::Major,
            state: NcState::ActionPlanned,
            controls: vec!["A.8.2".into()],
            machine_id: Some("h1".into()),
            hostname: Some("web-01".into()),
            subject: "access.no-extra-uid0".into(),
            opened_at: t("2026-06-02T00:00:00Z"),
            updated_at: t("2026-06-03T00:00:00Z"),
            owner: Some("alice".into()),
            root_cause: Some("legacy".into()),
            corrective_action: Some("remove toor | today".into()),
            due: chrono::NaiveDate::from_ymd_opt(2026, 6, 10),
            resolved_at: None,
            verified_at: None,
            closed_at: None,
            close_reason: None,
            green_streak: 0,
            last_green: None,
            recurrence_of: Some(3),
        };
        Inputs {
            from: t("2026-06-01T00:00:00Z"),
            to: t("2026-06-30T00:00:00Z"),
            generated_at: t("2026-07-01T08:00:00Z"),
            nonconformities: vec![nc],
            events: vec![],
            kpi_values: BTreeMap::from([(
                "kpi.patch-security".to_string(),
                vec![Some(0.5), Some(0.8)],
            )]),
            kpis_at_end: vec![KpiSnapshot {
                kpi: "kpi.patch-security".into(),
                value: None,
                evaluation: Some(KpiEvaluation {
                    kpi: "kpi.patch-security".into(),
                    at: t("2026-06-29T08:00:00Z"),
                    status: KpiStatus::Missed,
                    value: Some(0.8),
                    target: 0.95,
                    consecutive_misses: 3,
                    consecutive_met: 0,
                }),
            }],
            objectives_at_end: vec![ObjectiveRecord {
                state: ObjectiveState {
                    objective: "OBJ-PATCH".into(),
                    status: ObjectiveStatus::AtRisk,
                    reason: "missed: kpi.patch-security".into(),
                },
                since: t("2026-06-10T00:00:00Z"),
            }],
            objectives_at_start: vec![],
            soa: soa::build(&isms, &[]),
        }
    }

    #[test]
    fn the_pack_covers_every_input_of_9_3_2() {
        let isms = fixture_isms();
        let review = build(&isms, &inputs());
        let titles: Vec<&str> = review.sections.iter().map(|s| s.title.as_str()).collect();
        for prefix in ["a)", "b)", "c)", "d)", "e)", "f)", "g)"] {
            assert!(
                titles.iter().any(|t| t.starts_with(prefix)),
                "{prefix} missing: {titles:?}"
            );
        }
        let md = markdown(&review);
        assert!(
            md.contains("remove toor \\| today"),
            "pipes in cells are escaped"
        );
        assert!(
            md.contains("remove toor \\| today | alice | 2026-06-10 | action_planned (overdue)"),
            "{md}"
        );
        assert!(md.contains("KPI kpi.patch-security missed its target (3 analyses in a row)"));
        assert!(md.contains("Objective OBJ-PATCH is at risk"));
        assert!(md.contains("1 nonconformities recurred"));
        assert!(md.contains("| kpi.patch-security | Hosts without an overdue security update | ≥ 0.950 | 2 | 0.500 | 0.800 |"), "{md}");
        let html = html(&review);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("&lt;web-01&gt;"), "HTML is escaped");
        assert!(!html.contains("<script"));
    }
}
