//! `index.html`: the bundle as one self-contained page for people (inline style, no script,
//! no external asset), so it opens from the unzipped folder in any browser without a server.

use std::fmt::Write;

use super::manifest::FileEntry;
use super::{Gathered, open_nonconformities};
use crate::isms::Isms;
use crate::reports::html_escape as esc;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2329;max-width:80rem}\
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}\
th,td{border:1px solid #c9d1d9;padding:0.25rem 0.5rem;text-align:left;vertical-align:top}\
th{background:#eef1f4}h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #c9d1d9}\
.implemented,.met,.on_track,.achieved{color:#116329}.partially,.at_risk{color:#9a6700}\
.not_implemented,.missed,.off_track,.open{color:#b42318}.muted{color:#57606a}code{font-size:0.85rem}";

fn t(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn opt_t(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map_or("–".to_string(), t)
}

/// Builds the page. `files` are the bundle files written before it (with their hashes).
pub fn report(isms: &Isms, g: &Gathered, files: &[FileEntry]) -> String {
    let o = &g.options;
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Evidence export: {org}, {from} to {to}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>ISO/IEC 27001:2022 evidence export: {org}</h1>\n",
        org = esc(&isms.organisation.name),
        from = t(o.from),
        to = t(o.to),
    );
    let open = open_nonconformities(&g.nonconformities).count();
    let _ = writeln!(
        h,
        "<section id=\"summary\"><h2>Summary</h2><table>\
         <tr><th>Period</th><td>{} to {} (end exclusive)</td></tr>\
         <tr><th>Generated</th><td>{} by vigil-collector {}</td></tr>\
         <tr><th>ISMS pack</th><td><code>{}</code></td></tr>\
         <tr><th>Hosts</th><td>{}</td></tr>\
         <tr><th>Evidence records</th><td>{}</td></tr>\
         <tr><th>Nonconformities in the period</th><td>{} ({} not closed at the end)</td></tr>\
         </table><p class=\"muted\">Every file of the bundle is listed with its SHA-256 in \
         <code>manifest.json</code>; <code>vigil-collector export verify BUNDLE.zip</code> re-checks them.</p></section>",
        t(o.from),
        t(o.to),
        t(o.generated_at),
        env!("CARGO_PKG_VERSION"),
        esc(&o.isms_pack_digest),
        g.hosts.len(),
        g.evidence_records,
        g.nonconformities.len(),
        open
    );

    h.push_str("<section id=\"soa\"><h2>Statement of Applicability</h2><table><tr><th>Control</th><th>Title</th><th>Applicable</th><th>Justification</th><th>Owner</th><th>Status</th><th>Evidence records (period)</th><th>Risks</th></tr>\n");
    for (row, c) in g.soa.iter().zip(&g.controls) {
        let _ = writeln!(
            h,
            "<tr id=\"control-{id}\"><td>{id}</td><td>{title}</td><td>{app}</td><td>{just}</td><td>{owner}</td>\
             <td class=\"{st}\" title=\"{reason}\">{st}</td><td>{n}{file}</td><td>{risks}</td></tr>",
            id = esc(&row.control),
            title = esc(&row.title),
            app = if row.applicable { "yes" } else { "no" },
            just = esc(&row.justification),
            owner = esc(&row.owner),
            st = row.status.as_str(),
            reason = esc(&row.status_reason),
            n = c.evidence_records,
            file = c
                .evidence_file
                .as_deref()
                .map(|f| format!(" (<a href=\"{0}\">{0}</a>)", esc(f)))
                .unwrap_or_default(),
            risks = esc(&row.risks.join(", ")),
        );
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"kpis\"><h2>KPIs</h2><table><tr><th>KPI</th><th>Target</th><th>Measurements</th><th>Analyses</th><th>Latest analysis</th></tr>\n");
    for k in &g.kpis {
        let latest = k.evaluations.last();
        let _ = writeln!(
            h,
            "<tr><td>{} – {}</td><td>{} {}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&k.kpi),
            esc(&k.name),
            if k.direction == "at_least" {
                "≥"
            } else {
                "≤"
            },
            k.target,
            k.values.len(),
            k.evaluations.len(),
            latest.map_or("", |e| e.status.as_str()),
            latest.map_or("no analysis in the period".to_string(), |e| format!(
                "{} at {} (value {})",
                e.status.as_str(),
                t(e.at),
                e.value.map_or("–".into(), |v| format!("{v:.3}"))
            )),
        );
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"objectives\"><h2>Objectives</h2><table><tr><th>Objective</th><th>Statement</th><th>Status at start</th><th>Status at end</th></tr>\n");
    for ob in &isms.objectives {
        let status = |records: &[crate::store::ObjectiveRecord]| {
            records
                .iter()
                .find(|r| r.state.objective == ob.id)
                .map_or("no data".to_string(), |r| {
                    format!("{}: {}", r.state.status.as_str(), r.state.reason)
                })
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&ob.id),
            esc(&ob.statement),
            esc(&status(&g.objectives_from)),
            esc(&status(&g.objectives_to))
        );
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"nonconformities\"><h2>Nonconformity register</h2><table><tr><th>Id</th><th>Grade</th><th>State at end</th><th>Title</th><th>Controls</th><th>Opened</th><th>Events</th></tr>\n");
    for n in &g.nonconformities {
        let nc = &n.nonconformity;
        let mut events = String::new();
        for e in &n.events {
            let _ = write!(
                events,
                "{} {} → {} by {}: {}<br>",
                t(e.at),
                e.kind.as_str(),
                e.to.as_str(),
                esc(&e.actor),
                esc(&e.note)
            );
        }
        let _ = writeln!(
            h,
            "<tr><td>NC-{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            nc.id,
            nc.grade.as_str(),
            nc.state.as_str(),
            nc.state.as_str(),
            esc(&nc.title),
            esc(&nc.controls.join(", ")),
            t(nc.opened_at),
            events
        );
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"hosts\"><h2>Host inventory and coverage</h2><table><tr><th>Host</th><th>Machine id</th><th>OS</th><th>In scope</th><th>First seen</th><th>Last seen</th><th>Reports in period</th><th>Gaps (longer than the expected interval)</th></tr>\n");
    for host in &g.hosts {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({} s in total; expected a report every {} s)</td></tr>",
            esc(&host.hostname),
            esc(&host.machine_id),
            esc(&host.os),
            if host.in_scope { "yes" } else { "no" },
            t(host.first_seen),
            t(host.last_seen),
            host.reports_in_period,
            host.gaps_total,
            host.gap_seconds_total,
            host.expected_interval_seconds
        );
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"risks\"><h2>Risk register</h2><table><tr><th>Risk</th><th>Title</th><th>Owner</th><th>Level</th><th>Treatment</th><th>Controls</th><th>Residual level</th></tr>\n");
    for r in &isms.risks {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&r.title),
            esc(&r.owner),
            r.level(),
            r.treatment,
            esc(&r.controls.join(", ")),
            r.residual_level()
        );
    }
    h.push_str("</table></section>\n");

    h.push_str("<section id=\"files\"><h2>Files</h2><table><tr><th>File</th><th>Bytes</th><th>SHA-256</th></tr>\n");
    for f in files {
        let _ = writeln!(
            h,
            "<tr><td><a href=\"{0}\">{0}</a></td><td>{1}</td><td><code>{2}</code></td></tr>",
            esc(&f.path),
            f.size,
            f.sha256
        );
    }
    let _ = write!(
        h,
        "</table><p class=\"muted\">Last evidence per control and the evidence times: {} records, \
         each with observed_at (agent clock), received_at (collector clock) and the period it \
         covers. Last control evidence: {}.</p></section>\n</body>\n</html>\n",
        g.evidence_records,
        opt_t(g.controls.iter().filter_map(|c| c.last_evidence).max())
    );
    h
}
