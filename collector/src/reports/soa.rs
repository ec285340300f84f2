//! The live Statement of Applicability (ISO/IEC 27001:2022, 6.1.3 d): every Annex A control with
//! its applicability decision and justification, owner, implementation status derived from the
//! evidence, evidence count and last evidence time, and the risks it treats — as it stood at a
//! chosen time.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::csv_field;
use crate::isms::{ImplementationStatus, Isms};
use crate::store::ControlRecord;

/// One line of the SoA.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoaRow {
    pub control: String,
    pub theme: String,
    pub title: String,
    pub applicable: bool,
    pub justification: String,
    pub owner: String,
    pub status: ImplementationStatus,
    pub status_reason: String,
    /// Since when the status has been what it is (`None` before the first evaluation).
    pub status_since: Option<DateTime<Utc>>,
    pub evidence_count: u64,
    pub last_evidence: Option<DateTime<Utc>>,
    /// Rules that measure the control.
    pub rules: Vec<String>,
    /// Risks the control treats.
    pub risks: Vec<String>,
}

/// Builds the SoA from the definition and the control status records at the chosen time.
pub fn build(isms: &Isms, records: &[ControlRecord]) -> Vec<SoaRow> {
    isms.controls
        .iter()
        .map(|decision| {
            let record = records.iter().find(|r| r.state.control == decision.id);
            let (status, status_reason) = match record {
                Some(r) => (r.state.status, r.state.reason.clone()),
                None if !decision.applicable => (
                    ImplementationStatus::NotApplicable,
                    "excluded in the Statement of Applicability".to_string(),
                ),
                None => (
                    ImplementationStatus::NoEvidence,
                    "not evaluated yet".to_string(),
                ),
            };
            SoaRow {
                control: decision.id.clone(),
                theme: decision.theme.as_str().to_string(),
                title: decision.title.clone(),
                applicable: decision.applicable,
                justification: decision.justification.clone(),
                owner: decision.owner.clone(),
                status,
                status_reason,
                status_since: record.map(|r| r.since),
                evidence_count: record.map_or(0, |r| r.state.evidence_count),
                last_evidence: record.and_then(|r| r.state.last_evidence),
                rules: isms
                    .rules
                    .iter()
                    .filter(|r| r.controls.contains(&decision.id))
                    .map(|r| r.id.clone())
                    .collect(),
                risks: isms
                    .risks
                    .iter()
                    .filter(|r| r.controls.contains(&decision.id))
                    .map(|r| r.id.clone())
                    .collect(),
            }
        })
        .collect()
}

/// The SoA as CSV with a header line.
pub fn to_csv(rows: &[SoaRow]) -> String {
    let mut out = String::from(
        "control,theme,title,applicable,justification,owner,implementation_status,status_reason,\
         status_since,evidence_count,last_evidence,rules,risks\n",
    );
    for r in rows {
        let fields = [
            r.control.clone(),
            r.theme.clone(),
            r.title.clone(),
            if r.applicable { "yes" } else { "no" }.to_string(),
            r.justification.clone(),
            r.owner.clone(),
            r.status.as_str().to_string(),
            r.status_reason.clone(),
            r.status_since.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.evidence_count.to_string(),
            r.last_evidence.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.rules.join(" "),
            r.risks.join(" "),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::ControlState;
    use crate::evaluate::tests::{fixture_isms, t};

    #[test]
    fn every_control_is_listed_with_its_decision_status_and_links() {
        let isms = fixture_isms();
        let records = vec![ControlRecord {
            state: ControlState {
                control: "A.8.8".into(),
                status: ImplementationStatus::Partially,
                reason: "7 of 10 rule verdicts on in-scope hosts pass".into(),
                passing: 7,
                failing: 3,
                evidence_count: 40,
                last_evidence: Some(t("2026-06-01T10:00:00Z")),
            },
            since: t("2026-06-01T00:00:00Z"),
        }];
        let rows = build(&isms, &records);
        assert_eq!(rows.len(), 93);
        let a88 = rows.iter().find(|r| r.control == "A.8.8").unwrap();
        assert_eq!(a88.status, ImplementationStatus::Partially);
        assert_eq!(a88.evidence_count, 40);
        assert!(a88.rules.contains(&"patch.security-updates".to_string()));
        assert_eq!(a88.risks, ["R-01"]);
        let a51 = rows.iter().find(|r| r.control == "A.5.1").unwrap();
        assert_eq!(
            a51.status,
            ImplementationStatus::NoEvidence,
            "not evaluated yet"
        );

        let csv = to_csv(&rows);
        let mut lines = csv.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("control,theme,title,applicable")
        );
        assert_eq!(csv.lines().count(), 94);
        let a88_line = csv.lines().find(|l| l.starts_with("A.8.8,")).unwrap();
        assert!(a88_line.contains(",partially,"), "{a88_line}");
        assert!(
            a88_line.contains(",40,2026-06-01T10:00:00+00:00,"),
            "{a88_line}"
        );
        // Titles with commas are quoted.
        assert!(csv.contains("\"Monitoring, review and change management of supplier services\""));
    }
}
