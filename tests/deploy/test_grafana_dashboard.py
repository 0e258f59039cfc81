"""deploy/grafana/pylon.json, read without Grafana: the structure Grafana needs to import it,
its variables, and PromQL that uses only the names and labels of docs/metrics.md with every
selector filtered by the job and instance variables. test_live_prometheus.py runs the same
queries through a real Prometheus."""

from __future__ import annotations

import re

from deploy_files import (DASHBOARD, check_expr, dashboard_queries, documented_metrics,
                          load_dashboard, metric_names, panels, runnable_queries,
                          template_variables)

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_dashboard_structure():
    dashboard = load_dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41, "a Grafana 10/11 dashboard"
    assert dashboard["uid"] and dashboard["title"]
    # Rows and panels, those inside collapsed rows too.
    ids = [p["id"] for p in dashboard["panels"]]
    ids += [p["id"] for row in dashboard["panels"] if row["type"] == "row" for p in row.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


def test_variables():
    variables = template_variables(load_dashboard())
    datasource = variables["DS_PROMETHEUS"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query" and instance["datasource"] == DATASOURCE
    assert instance["multi"] and instance["includeAll"] and instance["allValue"] == ".*"
    assert instance["definition"].startswith("label_values(") and instance["definition"].endswith(", instance)")
    assert variables["job"]["definition"].endswith(", job)")


def test_every_panel_queries_the_prometheus_variable():
    for panel in panels(load_dashboard()):
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, panel["title"]
            assert target.get("expr", "").strip(), panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r}: say what to read from it"


def test_queries_use_documented_metrics_and_labels():
    metrics = documented_metrics()
    problems = [f"{where}: {problem}" for where, expr in dashboard_queries(load_dashboard())
                for problem in check_expr(expr, metrics)]
    assert not problems, "queries use names or labels outside docs/metrics.md:\n" + "\n".join(problems)


def test_every_selector_follows_the_job_and_instance_variables():
    """Otherwise choosing an instance at the top leaves some panels showing all of them."""
    problems = []
    for where, expr in dashboard_queries(load_dashboard()):
        for match in re.finditer(r"\b(pylon_\w+|process_\w+|up|scrape_duration_seconds)\b(?!\s*\()", expr):
            selector = re.match(r"\{([^}]*)\}", expr[match.end():])
            body = selector.group(1) if selector else ""
            if 'instance=~"$instance"' not in body or 'job=~"$job"' not in body:
                problems.append(f"{where}: {match.group(1)}{{{body}}}")
    assert not problems, "selectors without the variables:\n" + "\n".join(problems)


def test_every_documented_metric_is_on_the_dashboard():
    used = set()
    for _, expr in dashboard_queries(load_dashboard()):
        used |= {re.sub(r"_(bucket|sum|count)$", "", name) for name in metric_names(expr)}
    missing = sorted(set(documented_metrics()) - used)
    assert not missing, f"docs/metrics.md metrics that {DASHBOARD.name} does not chart: {missing}"


def test_required_panels():
    exprs = {panel["title"]: " ".join(t["expr"] for t in panel["targets"]) for panel in panels(load_dashboard())}
    everything = " ".join(exprs.values())
    wanted = {
        "connections": "sum by (endpoint) (pylon_connections{",
        "messages in": "rate(pylon_messages_received_total{",
        "messages out": "rate(pylon_messages_sent_total{",
        "bytes in": "rate(pylon_bytes_received_total{",
        "bytes out": "rate(pylon_bytes_sent_total{",
        "ping RTT p50": "histogram_quantile(0.5, sum by (le) (rate(pylon_ping_rtt_seconds_bucket{",
        "ping RTT p99": "histogram_quantile(0.99, sum by (le) (rate(pylon_ping_rtt_seconds_bucket{",
        "handshake failures by reason": "sum by (reason) (rate(pylon_handshake_failures_total{",
        "closes by code": "sum by (code, side) (rate(pylon_closes_total{",
        "backpressure drops": "rate(pylon_backpressure_drops_total{",
        "backpressure closes": "rate(pylon_backpressure_closes_total{",
        "topics": "sum(pylon_topics{",
        "subscriptions": "sum(pylon_subscriptions{",
        "per-instance connections": "sum by (instance) (pylon_connections{",
    }
    missing = [what for what, fragment in wanted.items() if fragment not in everything]
    assert not missing, f"no panel for: {missing}"


def test_variables_substitute_completely():
    queries = runnable_queries(load_dashboard())
    assert len(queries) >= 30
    for where, expr in queries:
        assert "$" not in expr, where
