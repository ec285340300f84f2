#!/usr/bin/env python3
"""Writes the Grafana dashboards (dashboards/*.json) from the definitions below.

Every panel reads the Prometheus data source chosen in the dashboard's `datasource` variable.
tests/tests/dashboards.rs runs every panel's query on a real Prometheus scraping a collector
fed by the fixture agents: each must return data. Rerun after a change and commit the output:

    python3 dashboards/generate.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(kind, title, targets, w=12, h=8, unit=None, description="", **options):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend,
             **({"instant": True, "format": "table"} if kind in ("table", "bargauge") else {})}
            for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": options,
    }
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    return p


def status_colors(mapping):
    return [{"type": "value", "options": {k: {"color": c, "index": i} for i, (k, c) in enumerate(mapping.items())}}]


def dashboard(uid, title, description, panels, variables=()):
    x = y = 0
    row_height = 0
    laid = []
    for n, p in enumerate(panels, 1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y = 0, y + row_height
            row_height = 0
        p = dict(p, id=n, gridPos={"x": x, "y": y, "w": w, "h": h})
        laid.append(p)
        x += w
        row_height = max(row_height, h)
    templating = [{
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [],
    }]
    for name, label, query in variables:
        templating.append({
            "name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": "var"}, "definition": query,
            "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2, "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [],
        })
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["vigil", "iso27001"], "timezone": "utc", "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": templating},
        "annotations": {"list": []},
        "links": [{"title": "Vigil dashboards", "type": "dashboards", "tags": ["vigil"], "asDropdown": True}],
        "panels": laid,
    }


CONTROL_COLORS = status_colors({
    "implemented": "green", "partially": "yellow", "not_implemented": "red",
    "not_applicable": "gray", "no_evidence": "purple",
})

DASHBOARDS = {
    "vigil-overview": dashboard(
        "vigil-overview", "Vigil · ISMS overview",
        "ISO/IEC 27001 Clause 9.1 at a glance: objectives, KPIs against targets, nonconformities, "
        "control status by theme and monitoring coverage.",
        [
            panel("stat", "Monitoring coverage",
                  [('sum(vigil_hosts{state="reporting"}) / sum(vigil_hosts)', "reporting")],
                  w=6, h=4, unit="percentunit",
                  description="Share of known hosts that reported within the policy's stale_after."),
            panel("stat", "Open nonconformities", [("sum(vigil_nonconformities)", "open")], w=6, h=4),
            panel("stat", "Major nonconformities",
                  [('sum(vigil_nonconformities{severity="major"})', "major")], w=6, h=4),
            panel("stat", "Since last evaluation",
                  [("time() - vigil_evaluation_last_timestamp_seconds", "age")], w=6, h=4, unit="s"),
            panel("table", "Objectives", [("vigil_objective_status == 1", "{{objective}}")], w=12, h=8,
                  description="Each objective's current status (achieved, on_track, at_risk, missed, no_data)."),
            panel("piechart", "KPI status", [("sum by (status) (vigil_kpi_status)", "{{status}}")], w=12, h=8),
            panel("timeseries", "KPIs against targets",
                  [("vigil_kpi_value", "{{kpi}}"), ("vigil_kpi_target", "{{kpi}} target")], w=24, h=9),
            panel("timeseries", "Nonconformities by severity",
                  [("sum by (severity) (vigil_nonconformities)", "{{severity}}")], w=12, h=8),
            panel("bargauge", "Controls by theme and status",
                  [("sum by (theme, status) (vigil_controls)", "{{theme}} {{status}}")], w=12, h=8),
        ],
    ),
    "vigil-controls": dashboard(
        "vigil-controls", "Vigil · Annex A controls",
        "The 93 Annex A controls: status heat map by theme, and drill-down to the rules that judge them.",
        [
            panel("stat", "Implemented", [('sum(vigil_controls{theme=~"$theme", status="implemented"})', "implemented")], w=6, h=4),
            panel("stat", "Partially", [('sum(vigil_controls{theme=~"$theme", status="partially"})', "partially")], w=6, h=4),
            panel("stat", "Not implemented", [('sum(vigil_controls{theme=~"$theme", status="not_implemented"})', "not implemented")], w=6, h=4),
            panel("stat", "No evidence", [('sum(vigil_controls{theme=~"$theme", status="no_evidence"})', "no evidence")], w=6, h=4),
            panel("state-timeline", "Control status (heat map)",
                  [('max by (control) (vigil_control_status{theme=~"$theme", status="implemented"} * 4 '
                    '+ ignoring(status) vigil_control_status{theme=~"$theme", status="partially"} * 3 '
                    '+ ignoring(status) vigil_control_status{theme=~"$theme", status="no_evidence"} * 2 '
                    '+ ignoring(status) vigil_control_status{theme=~"$theme", status="not_implemented"} * 1)', "{{control}}")],
                  w=24, h=20,
                  description="4 implemented, 3 partially, 2 no evidence, 1 not implemented, 0 not applicable."),
            panel("table", "Controls not fully implemented",
                  [('vigil_control_status{theme=~"$theme", status=~"not_implemented|partially|no_evidence"}', "{{control}}")],
                  w=12, h=10),
            panel("table", "Failing verdicts by rule",
                  [('sum by (rule) (vigil_rule_verdicts{verdict="fail"})', "{{rule}}")], w=12, h=10),
        ],
        variables=[("theme", "Theme", "label_values(vigil_controls, theme)")],
    ),
    "vigil-hosts": dashboard(
        "vigil-hosts", "Vigil · Hosts and collector",
        "Hosts reporting and stale, agent versions, and the collector's own health.",
        [
            panel("stat", "Hosts reporting", [('vigil_hosts{state="reporting"}', "reporting")], w=6, h=4),
            panel("stat", "Hosts stale", [('vigil_hosts{state="stale"}', "stale")], w=6, h=4),
            panel("stat", "Since last report", [("time() - vigil_report_last_timestamp_seconds", "age")], w=6, h=4, unit="s"),
            panel("piechart", "Agent versions", [("vigil_agent_versions", "{{version}}")], w=6, h=4),
            panel("timeseries", "Reports by outcome",
                  [("sum by (outcome) (rate(vigil_ingest_reports_total[$__rate_interval]))", "{{outcome}}")],
                  w=12, h=8, unit="reqps"),
            panel("timeseries", "Results stored by status",
                  [("sum by (status) (rate(vigil_ingest_results_total[$__rate_interval]))", "{{status}}")],
                  w=12, h=8, unit="ops"),
            panel("timeseries", "Request latency p99 by route",
                  [("histogram_quantile(0.99, sum by (le, route) (rate(vigil_http_request_duration_seconds_bucket[$__rate_interval])))", "{{route}}")],
                  w=12, h=8, unit="s"),
            panel("timeseries", "Requests by status code",
                  [("sum by (code) (rate(vigil_http_request_duration_seconds_count[$__rate_interval]))", "{{code}}")],
                  w=12, h=8, unit="reqps"),
            panel("timeseries", "Metrics refresh time",
                  [("vigil_metrics_refresh_duration_seconds", "store read")], w=12, h=6, unit="s"),
            panel("timeseries", "Reports refused, by reason",
                  [("sum by (reason) (increase(vigil_ingest_errors_total[1h]))", "{{reason}}")], w=12, h=6),
            panel("timeseries", "Store commit latency p99",
                  [("histogram_quantile(0.99, sum by (le) (rate(vigil_store_ingest_duration_seconds_bucket[$__rate_interval])))", "p99")],
                  w=12, h=6, unit="s"),
            panel("timeseries", "Evaluations",
                  [("sum by (result) (increase(vigil_evaluations_total[1h]))", "{{result}}"),
                   ("histogram_quantile(0.95, sum by (le) (rate(vigil_evaluation_duration_seconds_bucket[1h])))", "p95 duration (s)")],
                  w=12, h=6),
            panel("stat", "Requests in flight", [("vigil_http_requests_in_flight", "in flight")], w=6, h=6),
        ],
    ),
}


def area(uid, title, description, rules, kpis, controls):
    return dashboard(
        uid, title, description,
        [
            panel("table", "Rule verdicts", [(f'sum by (rule, verdict) (vigil_rule_verdicts{{rule=~"{rules}"}})', "{{rule}} {{verdict}}")], w=12, h=10),
            panel("piechart", "Verdicts", [(f'sum by (verdict) (vigil_rule_verdicts{{rule=~"{rules}"}})', "{{verdict}}")], w=12, h=10),
            panel("timeseries", "KPIs against targets",
                  [(f'vigil_kpi_value{{kpi=~"{kpis}"}}', "{{kpi}}"), (f'vigil_kpi_target{{kpi=~"{kpis}"}}', "{{kpi}} target")],
                  w=12, h=8),
            panel("table", "KPI status", [(f'vigil_kpi_status{{kpi=~"{kpis}"}} == 1', "{{kpi}}")], w=12, h=8),
            panel("table", "Controls", [(f'vigil_control_status{{control=~"{controls}"}} == 1', "{{control}}")], w=24, h=6),
        ],
    )


DASHBOARDS["vigil-patching"] = area(
    "vigil-patching", "Vigil · Patch management",
    "A.8.8 management of technical vulnerabilities: pending security updates, kernels, maintenance.",
    "patch\\\\..*", "kpi\\\\.(patch|kernel|maintenance).*", "A\\\\.8\\\\.8|A\\\\.8\\\\.19|A\\\\.5\\\\.9")
DASHBOARDS["vigil-access"] = area(
    "vigil-access", "Vigil · Access control",
    "A.5.15–A.5.18, A.8.2, A.8.5: privileged accounts, passwords, sudo, SSH keys, dormant accounts.",
    "access\\\\..*|harden\\\\.(ssh-root-login|ssh-authentication|password.*|login-lockout|pam-nullok)",
    "kpi\\\\.(extra-uid0|empty-passwords|sudo-authentication|dormant-accounts|ssh-root-login)",
    "A\\\\.5\\\\.1[5-8]|A\\\\.8\\\\.[25]")
DASHBOARDS["vigil-encryption"] = area(
    "vigil-encryption", "Vigil · Encryption",
    "A.8.24 use of cryptography: disk, swap and volume encryption, SSH crypto, certificates.",
    "crypto\\\\..*|harden\\\\.ssh-crypto|ops\\\\.certificates-.*", "kpi\\\\.(disk|swap)-encryption",
    "A\\\\.8\\\\.24|A\\\\.7\\\\.10|A\\\\.8\\\\.1")


def main():
    for name, board in DASHBOARDS.items():
        with open(os.path.join(HERE, f"{name}.json"), "w") as out:
            json.dump(board, out, indent=2)
            out.write("\n")
        print(f"{name}.json: {len(board['panels'])} panels")


if __name__ == "__main__":
    main()
