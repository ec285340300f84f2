//! The people-facing rendering of a report: one line per result with status, controls and the
//! key facts, then the offenders of every failing result.

use std::fmt::Write;

use vigil_shared::{Report, Status};

/// Renders a report as a plain-text table.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let host = &report.host;
    let _ = writeln!(
        out,
        "host {} ({}) · {} · kernel {}",
        host.hostname,
        host.machine_id,
        if host.os.pretty_name.is_empty() { "unknown OS" } else { &host.os.pretty_name },
        host.kernel.as_deref().unwrap_or("not running"),
    );
    let width = report.results.iter().map(|r| r.check.len()).max().unwrap_or(5).max(5);
    let _ = writeln!(out, "{:<width$}  {:<7}  {:<16}  SUMMARY", "CHECK", "STATUS", "CONTROLS");
    for result in &report.results {
        let _ = writeln!(
            out,
            "{:<width$}  {:<7}  {:<16}  {}",
            result.check,
            result.status.as_str(),
            result.controls.join(","),
            result.summary,
        );
    }
    let failing: Vec<_> = report.results.iter().filter(|r| r.status == Status::Fail).collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\nOffenders:");
        for result in failing {
            let _ = writeln!(out, "  {}:", result.check);
            for offender in &result.evidence.offenders {
                let _ = writeln!(
                    out,
                    "    - {} {}: {}",
                    offender.kind,
                    offender.id,
                    offender.reason.as_deref().unwrap_or("")
                );
            }
        }
    }
    let counts = [Status::Pass, Status::Fail, Status::Error, Status::NoData]
        .map(|s| (s, report.results.iter().filter(|r| r.status == s).count()));
    let _ = writeln!(
        out,
        "\n{} results: {}",
        report.results.len(),
        counts
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}
