"""The files under deploy/ and the metric contract they are checked against.

- Paths of the Prometheus, Alertmanager and Grafana files.
- `run_tool()`: runs promtool/amtool; a missing tool fails the test with the fix
  (scripts/deps.sh installs them), it is never a skip.
- `documented_metrics()`: docs/metrics.md's table, the names and labels pylon promises on
  /metrics. `check_expr()` finds PromQL that uses a name or label outside that contract.
- `dashboard_queries()` and `substitute()`: every PromQL query of the Grafana dashboard, and
  the same with Grafana's variables replaced so Prometheus itself can run it.

The pytest files of this directory import it as `deploy_files` (pytest puts the directory of a
test file without __init__.py on sys.path).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

REPO_DIR = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_DIR / "deploy"
PROMETHEUS_CONFIG = DEPLOY_DIR / "prometheus" / "prometheus.yml"
RULES_FILE = DEPLOY_DIR / "prometheus" / "rules" / "pylon.yml"
RULE_TESTS_DIR = DEPLOY_DIR / "prometheus" / "tests"
ALERTMANAGER_CONFIG = DEPLOY_DIR / "alertmanager" / "alertmanager.yml"
DASHBOARD = DEPLOY_DIR / "grafana" / "pylon.json"
METRICS_DOC = REPO_DIR / "docs" / "metrics.md"

# Series Prometheus adds to every target itself; they carry only the target labels.
SCRAPE_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped",
                 "scrape_samples_post_metric_relabeling", "scrape_series_added")
TARGET_LABELS = frozenset({"job", "instance"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Grafana's built-in variables, replaced by what a dashboard at the default range would use.
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
                    "__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000"}


def run_tool(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    if shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} not found: run scripts/deps.sh (packages prometheus, "
                    f"prometheus-alertmanager)", pytrace=False)
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def describe(result: subprocess.CompletedProcess) -> str:
    return (f"$ {' '.join(map(str, result.args))}\nexit code {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")


def load_yaml(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# ---------------------------------------------------------------------------- the contract

@dataclass(frozen=True)
class Metric:
    name: str
    type: str  # counter, gauge or histogram
    labels: frozenset


def documented_metrics() -> dict[str, Metric]:
    """The rows of docs/metrics.md's table: | `name` | type | labels | meaning |."""
    metrics = {}
    for line in METRICS_DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.fullmatch(r"`[a-z_:][a-z0-9_:]*`", cells[0]):
            continue
        name = cells[0].strip("`")
        metrics[name] = Metric(name, cells[1].split()[0], frozenset(re.findall(r"`(\w+)`", cells[2])))
    assert metrics, f"no metric table found in {METRICS_DOC}"
    return metrics


def allowed_labels(name: str, metrics: dict[str, Metric]) -> frozenset | None:
    """Labels a series of `name` can carry, or None if pylon does not expose that name."""
    if name in SCRAPE_SERIES:
        return TARGET_LABELS
    if name in metrics:
        return metrics[name].labels | TARGET_LABELS
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in metrics and metrics[base].type == "histogram":
            extra = {"le"} if suffix == "_bucket" else set()
            return metrics[base].labels | TARGET_LABELS | extra
    return None


_METRIC_REF = re.compile(r"\b(pylon_[a-z0-9_]+|process_[a-z0-9_]+|"
                         + "|".join(SCRAPE_SERIES) + r")\b(?!\s*\()")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring)\s*\(([^)]*)\)")


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    return set(_METRIC_REF.findall(_strip_strings(expr)))


def check_expr(expr: str, metrics: dict[str, Metric]) -> list[str]:
    """Names outside docs/metrics.md, and labels a series of the named metric cannot have:
    in `name{label=...}`, and in `by/on/without/ignoring (labels)` for the first metric
    named after the clause (the one it aggregates or matches, as these files are written)."""
    text = _strip_strings(expr)
    problems = []
    for match in _METRIC_REF.finditer(text):
        name = match.group(1)
        allowed = allowed_labels(name, metrics)
        if allowed is None:
            problems.append(f"{name}: not in docs/metrics.md")
            continue
        rest = text[match.end():]
        selector = re.match(r"\s*\{([^}]*)\}", rest)
        if selector:
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector.group(1)):
                if label not in allowed:
                    problems.append(f"{name}{{{label}=...}}: {name} has no label {label!r}")
    for match in _LABEL_LIST.finditer(text):
        following = _METRIC_REF.search(text, match.end())
        if not following:
            continue
        allowed = allowed_labels(following.group(1), metrics)
        if allowed is None:
            continue  # reported above
        for label in filter(None, (part.strip() for part in match.group(2).split(","))):
            if label not in allowed:
                problems.append(f"{match.group(1)} ({match.group(2)}): {following.group(1)} has no label {label!r}")
    return problems


# ---------------------------------------------------------------------------- alert rules

def rules() -> list[dict]:
    return [rule for group in load_yaml(RULES_FILE)["groups"] for rule in group["rules"]]


def alert_rules() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def rule_test_files() -> list[Path]:
    files = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert files, f"no promtool test file in {RULE_TESTS_DIR}"
    return files


# ---------------------------------------------------------------------------- the dashboard

def load_dashboard() -> dict:
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, those inside collapsed rows included (rows themselves excluded)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panels(panel)
        else:
            yield panel


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every Prometheus annotation."""
    queries = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                queries.append((f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"]))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            queries.append((f"annotation {annotation.get('name')!r}", annotation["expr"]))
    return queries


def template_variables(dashboard: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replaces $name, ${name}, ${name:format} and [[name]] as Grafana does (longest names
    first, so $__range does not eat $__range_s)."""
    for name in sorted(values, key=len, reverse=True):
        value = values[name]
        expr = re.sub(r"\$\{" + re.escape(name) + r"(?::[^}]*)?\}", lambda _: value, expr)
        expr = expr.replace(f"[[{name}]]", value)
        expr = re.sub(r"\$" + re.escape(name) + r"\b", lambda _: value, expr)
    return expr


def runnable_queries(dashboard: dict, match_all: str = ".*") -> list[tuple[str, str]]:
    """The dashboard's queries with every template variable set to `match_all` and Grafana's
    built-ins to a 1-minute interval. Fails if a `$` is left over (an unknown variable)."""
    values = dict(GRAFANA_BUILTINS)
    values.update({name: match_all for name in template_variables(dashboard)})
    out = []
    for where, expr in dashboard_queries(dashboard):
        concrete = substitute(expr, values)
        assert "$" not in concrete and "[[" not in concrete, f"{where}: unknown variable left in {concrete!r}"
        out.append((where, concrete))
    return out


def label_values_query(definition: str) -> tuple[str, str]:
    """label_values(SELECTOR, LABEL) -> (SELECTOR, LABEL), as in Grafana's variable queries."""
    match = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", definition)
    assert match, f"not a label_values() query: {definition!r}"
    return match.group(1), match.group(2)
