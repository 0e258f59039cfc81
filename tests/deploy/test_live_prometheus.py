"""A real Prometheus (Debian's `prometheus`) scraping two pylon test servers every second,
with the alert rules of deploy/prometheus loaded:

- both targets are up: pylon serves /metrics in a format Prometheus accepts;
- the metrics without labels of docs/metrics.md are there from the start (the dashboard's
  variables and overview panels read them);
- `sum(pylon_connections)` counts the WebSockets held open, by endpoint and by instance, and
  goes back down when they close;
- every query of deploy/grafana/pylon.json runs without error (variables set to `.*`), and
  those over always-present metrics return data; the variable queries find both instances;
- every rule evaluates without error, the Watchdog fires and no availability alert does.

Everything listens on 127.0.0.1; Prometheus and the servers are stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from deploy_files import (RULES_FILE, SCRAPE_SERIES, documented_metrics, label_values_query,
                          load_dashboard, metric_names, runnable_queries, substitute,
                          template_variables)
from support.server import Server, free_port, http_get_status, start_process, start_server
from support.wsclient import WsClient, connect_many

MAX_CONNECTIONS = 50
ECHO_CLIENTS = 5  # on the first server, /ws/echo
PUBSUB_CLIENTS = 3  # on the second server, /ws
SCRAPE_TIMEOUT = 20.0  # first scrapes land a few seconds after start; the ASan build is slow
SETTLE_TIMEOUT = 15.0  # a change on the server shows in Prometheus after a scrape or two

# Only loopback: never a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusApi:
    def __init__(self, server: Server):
        self.server = server
        self.base = f"http://{server.host}:{server.port}"

    def get(self, path: str, params: list[tuple[str, str]] = ()) -> dict:
        url = f"{self.base}{path}?{urllib.parse.urlencode(list(params))}"
        try:
            with _opener.open(url, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # bad queries answer 400/422 with a JSON body
            body = error.read().decode(errors="replace")
            try:
                return json.loads(body)
            except ValueError:
                return {"status": "error", "error": f"HTTP {error.code}: {body[:500]}"}

    def query(self, expr: str) -> dict:
        return self.get("/api/v1/query", [("query", expr)])

    def vector(self, expr: str) -> list[dict]:
        answer = self.query(expr)
        assert answer.get("status") == "success", f"{expr}: {answer}"
        return answer["data"]["result"]

    def scalar(self, expr: str):
        """The value of a one-element vector, or None when the result is empty."""
        result = self.vector(expr)
        assert len(result) <= 1, f"{expr}: {result}"
        return float(result[0]["value"][1]) if result else None


def poll(what: str, check, timeout: float = SETTLE_TIMEOUT):
    """Calls `check()` until it returns something other than None/False; fails after
    `timeout` with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last not in (None, False):
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)
        time.sleep(0.2)  # polling interval of an HTTP API, not a wait for an event


def prometheus_ready(server: Server) -> bool:
    return http_get_status(server.host, server.port, "/-/ready") == 200


@contextlib.contextmanager
def start_prometheus(targets: list[Server], directory: Path) -> Iterator[PrometheusApi]:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES_FILE)],
        "scrape_configs": [{
            # The job name the rules select on (deploy/prometheus/prometheus.yml).
            "job_name": "pylon",
            "static_configs": [{"targets": [f"{s.host}:{s.port}" for s in targets]}],
        }],
    }
    config_path = directory / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
    for attempt in range(3):
        port = free_port()
        argv = ["prometheus", f"--config.file={config_path}",
                f"--storage.tsdb.path={directory / f'data{attempt}'}",
                f"--web.listen-address=127.0.0.1:{port}"]
        try:
            context = start_process(argv, port, ready=prometheus_ready, stop_timeout=15)
            server = context.__enter__()
        except RuntimeError as error:
            # Another process may have taken the free port in between.
            if attempt == 2 or "address already in use" not in str(error).lower():
                raise
            continue
        try:
            yield PrometheusApi(server)
        finally:
            context.__exit__(None, None, None)
        return


def instance(server: Server) -> str:
    return f"{server.host}:{server.port}"


def wait_until_scraped(api: PrometheusApi, servers: list[Server]) -> None:
    """Polls `up` until every target has been scraped; each must then be 1. Then waits for a
    few scrapes more, so that rate() over them has samples."""
    wanted = {instance(s) for s in servers}

    def scraped():
        values = {r["metric"]["instance"]: r["value"][1] for r in api.vector('up{job="pylon"}')}
        return values if set(values) >= wanted else None

    values = poll("the first scrape of every pylon target", scraped, SCRAPE_TIMEOUT)
    down = sorted(name for name in wanted if values[name] != "1")
    if down:
        targets = api.get("/api/v1/targets")["data"]["activeTargets"]
        errors = {t["labels"]["instance"]: t.get("lastError") for t in targets}
        pytest.fail("pylon targets are down (does pylon serve GET /metrics in the Prometheus text "
                    "format?):\n" + "\n".join(f"  {name}: {errors.get(name)}" for name in down),
                    pytrace=False)
    poll("three scrapes of every target",
         lambda: (api.scalar('min(count_over_time(up{job="pylon"}[1m]))') or 0) >= 3, SCRAPE_TIMEOUT)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with start_server("--max-connections", str(MAX_CONNECTIONS)) as first, \
            start_server("--max-connections", str(MAX_CONNECTIONS)) as second, \
            start_prometheus([first, second], tmp_path_factory.mktemp("prometheus")) as api:
        wait_until_scraped(api, [first, second])
        yield first, second, api


@pytest.fixture(scope="module")
def clients(cluster):
    first, second, _ = cluster
    opened = connect_many(WsClient, first.address, ECHO_CLIENTS, path="/ws/echo")
    try:
        opened += connect_many(WsClient, second.address, PUBSUB_CLIENTS, path="/ws")
        yield opened
    finally:
        for client in opened:
            client.close()


def test_targets_are_up(cluster):
    first, second, api = cluster
    up = {r["metric"]["instance"]: r["value"][1] for r in api.vector('up{job="pylon"}')}
    assert up == {instance(first): "1", instance(second): "1"}


def test_metrics_without_labels_are_exposed_from_the_start(cluster):
    """docs/metrics.md's metrics without labels exist before anything happens; labelled ones
    may appear with their first event, so they are not required here."""
    first, second, api = cluster
    wanted = []
    for metric in documented_metrics().values():
        if not metric.labels:
            wanted.append(metric.name + ("_bucket" if metric.type == "histogram" else ""))
    missing = []
    for name in wanted:
        have = {r["metric"]["instance"] for r in api.vector(f'{name}{{job="pylon"}}')}
        for server in (first, second):
            if instance(server) not in have:
                missing.append(f"{name} on {instance(server)}")
    assert not missing, "documented metrics not scraped:\n" + "\n".join(missing)
    assert api.scalar(f'sum(pylon_max_connections{{instance="{instance(first)}"}})') == MAX_CONNECTIONS
    versions = api.vector('pylon_build_info{job="pylon"}')
    assert all(r["metric"].get("version") and r["value"][1] == "1" for r in versions), versions


def test_open_connections_are_counted(cluster, clients):
    first, second, api = cluster
    total = ECHO_CLIENTS + PUBSUB_CLIENTS
    poll(f"sum(pylon_connections) == {total}",
         lambda: api.scalar('sum(pylon_connections{job="pylon"})') == total)
    by_endpoint = {r["metric"].get("endpoint"): float(r["value"][1])
                   for r in api.vector('sum by (endpoint) (pylon_connections{job="pylon"})')}
    assert by_endpoint == {"/ws/echo": ECHO_CLIENTS, "/ws": PUBSUB_CLIENTS, "/": 0}  # / echoes upgrades too
    by_instance = {r["metric"]["instance"]: float(r["value"][1])
                   for r in api.vector('sum by (instance) (pylon_connections{job="pylon"})')}
    assert by_instance == {instance(first): ECHO_CLIENTS, instance(second): PUBSUB_CLIENTS}
    # The alert's expression, matched on (job, instance).
    usage = {r["metric"]["instance"]: float(r["value"][1]) for r in api.vector(
        'sum by (job, instance) (pylon_connections) / on (job, instance) pylon_max_connections')}
    assert usage == pytest.approx({instance(first): ECHO_CLIENTS / MAX_CONNECTIONS,
                                   instance(second): PUBSUB_CLIENTS / MAX_CONNECTIONS})


def test_upgrades_count_and_plain_http_is_no_failure(cluster, clients):
    """The failure-rate alerts divide by these counters: every upgrade above counts once, and
    the scrapes and /healthz polls (plain HTTP on the same listener) are not failed
    handshakes, or an idle instance would look broken."""
    _, _, api = cluster
    expected = {"/ws/echo": ECHO_CLIENTS, "/ws": PUBSUB_CLIENTS}

    def upgrades():
        got = {r["metric"].get("endpoint"): float(r["value"][1])
               for r in api.vector('sum by (endpoint) (pylon_handshakes_total{job="pylon"}) > 0')}
        return got if got == expected else None

    poll(f"pylon_handshakes_total by endpoint == {expected}", upgrades)
    failures = api.vector('sum by (instance, reason) (pylon_handshake_failures_total{job="pylon"}) > 0')
    assert failures == [], f"handshake failures counted for plain HTTP requests: {failures}"
    errors = api.vector('sum by (instance, reason) (pylon_protocol_errors_total{job="pylon"}) > 0')
    assert errors == [], errors


def _always_present(names: set[str]) -> bool:
    """Metrics every pylon exposes before any event (plus pylon_connections while the
    clients fixture holds connections): a query over them only must return data."""
    metrics = documented_metrics()
    for name in names:
        base = name[:-len("_bucket")] if name.endswith("_bucket") else name
        if name in SCRAPE_SERIES or base == "pylon_connections":
            continue
        if base not in metrics or metrics[base].labels:
            return False
    return True


def test_every_dashboard_query_runs(cluster, clients):
    _, _, api = cluster
    errors, empty = [], []
    queries = runnable_queries(load_dashboard())
    assert len(queries) >= 30
    for where, expr in queries:
        answer = api.query(expr)
        if answer.get("status") != "success" or answer.get("warnings"):
            errors.append(f"{where}: {answer.get('error') or answer.get('warnings')}\n    {expr}")
            continue
        # Annotations (restarts) are empty by design when nothing happened.
        if where.startswith("panel ") and _always_present(metric_names(expr)) and not answer["data"]["result"]:
            empty.append(f"{where}: {expr}")
    assert not errors, "dashboard queries Prometheus refuses:\n" + "\n".join(errors)
    assert not empty, "dashboard queries over always-present metrics with no data:\n" + "\n".join(empty)


def test_dashboard_variables_find_the_instances(cluster):
    first, second, api = cluster
    variables = template_variables(load_dashboard())
    for name, expected in (("job", {"pylon"}), ("instance", {instance(first), instance(second)})):
        selector, label = label_values_query(variables[name]["definition"])
        selector = substitute(selector, {n: ".*" for n in variables})
        answer = api.get(f"/api/v1/label/{label}/values", [("match[]", selector)])
        assert answer.get("status") == "success", answer
        assert set(answer["data"]) == expected, (name, selector, answer)


def test_rules_evaluate_without_errors(cluster):
    _, _, api = cluster

    def evaluated():
        groups = api.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

    rules = poll("every rule evaluated once", evaluated)
    broken = [f"{rule['name']}: {rule.get('lastError')}" for rule in rules if rule["health"] != "ok"]
    assert not broken, "rules failing against a real pylon:\n" + "\n".join(broken)
    alerts = {a["labels"]["alertname"]: a["state"] for a in api.get("/api/v1/alerts")["data"]["alerts"]}
    assert alerts.get("Watchdog") == "firing", alerts
    for name in ("PylonInstanceDown", "PylonTargetsMissing"):
        assert name not in alerts, alerts


def test_closed_connections_are_no_longer_counted(cluster, clients):
    _, _, api = cluster
    for client in clients:
        client.close()
    poll("sum(pylon_connections) == 0", lambda: api.scalar('sum(pylon_connections{job="pylon"})') == 0)
