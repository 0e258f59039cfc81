"""deploy/prometheus: the configuration and the alert rules pass promtool, the rules use only
the metric names and labels of docs/metrics.md, and the promtool unit tests cover every alert
both firing and not firing -- and really catch a wrong threshold or duration (mutants)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from deploy_files import (PROMETHEUS_CONFIG, RULES_FILE, alert_rules, check_expr, describe,
                          documented_metrics, load_yaml, rule_test_files, rules, run_tool)

SEVERITIES = ("critical", "warning", "none")
# Always firing by design (the dead man's switch), so it has no "not firing" case.
ALWAYS_FIRING = {"Watchdog"}


def test_config_is_valid():
    result = run_tool("promtool", "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, describe(result)
    assert "SUCCESS" in result.stdout, describe(result)
    # The config loads the rules file (checked together with it).
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout, describe(result)


def test_config_scrapes_pylon_and_alerts_to_alertmanager():
    config = load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The rules select `up{job="pylon"}` and process_*{job="pylon"}: the job name is part of
    # the contract between the two files.
    assert "pylon" in jobs
    targets = [t for static in jobs["pylon"]["static_configs"] for t in static["targets"]]
    assert len(targets) >= 2, "several pylon instances, one target each"
    assert jobs["pylon"].get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"] == ["rules/pylon.yml"]
    managers = [t for am in config["alerting"]["alertmanagers"] for s in am["static_configs"]
                for t in s["targets"]]
    assert managers == ["127.0.0.1:9093"]


def test_rules_are_valid():
    result = run_tool("promtool", "check", "rules", str(RULES_FILE))
    assert result.returncode == 0, describe(result)
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout, describe(result)


def test_rules_use_documented_metrics_and_labels():
    metrics = documented_metrics()
    problems = [f"{rule.get('alert') or rule.get('record')}: {problem}"
                for rule in rules() for problem in check_expr(rule["expr"], metrics)]
    assert not problems, "rules use names or labels outside docs/metrics.md:\n" + "\n".join(problems)


def test_every_alert_has_severity_summary_and_description():
    for name, rule in alert_rules().items():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), name
        assert annotations.get("description"), name
        if name not in ALWAYS_FIRING and "absent(" not in rule["expr"]:
            # Per-instance alerts: whoever reads the notification must know which process.
            assert "$labels.instance" in annotations["summary"], name


def test_required_alerts_exist():
    alerts = alert_rules()
    expressions = {name: " ".join(rule["expr"].split()) for name, rule in alerts.items()}
    wanted = {
        "instance down": lambda e, r: "up{" in e and "== 0" in e and r.get("for") == "3m",
        "no target at all": lambda e, r: e.startswith("absent(up{") and r.get("for") == "3m",
        "handshake failure rate": lambda e, r: "pylon_handshake_failures_total" in e
        and "pylon_handshakes_total" in e and "> 0.10" in e,
        "message failure rate": lambda e, r: "pylon_protocol_errors_total" in e
        and "pylon_messages_received_total" in e and "> 0.10" in e,
        "connections near max_connections": lambda e, r: "pylon_max_connections" in e and "> 0.9" in e,
        "sustained backpressure closes": lambda e, r: "pylon_backpressure_closes_total" in e
        and r.get("for") == "10m",
        "TLS certificate expiry": lambda e, r: "pylon_tls_certificate_expiry_timestamp_seconds" in e
        and "< 14 * 86400" in e,
        "stale OCSP response": lambda e, r: "pylon_tls_ocsp_response_expiry_timestamp_seconds" in e
        and "< 86400" in e,
        "ping RTT p99": lambda e, r: "histogram_quantile(0.99" in e and "pylon_ping_rtt_seconds_bucket" in e
        and r.get("for") == "10m",
    }
    missing = [what for what, test in wanted.items()
               if not any(test(expressions[name], alerts[name]) for name in alerts)]
    assert not missing, f"no alert for: {missing}"


def _cases() -> dict[str, dict[str, int]]:
    """alertname -> {"firing": n, "silent": n} over every promtool test file."""
    cases: dict[str, dict[str, int]] = {}
    for path in rule_test_files():
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "silent"
                counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})
                counts[kind] += 1
    return cases


def test_unit_tests_cover_every_alert_firing_and_not_firing():
    cases = _cases()
    alerts = set(alert_rules())
    assert not set(cases) - alerts, f"tests for alerts that do not exist: {sorted(set(cases) - alerts)}"
    no_firing = sorted(a for a in alerts if cases.get(a, {}).get("firing", 0) == 0)
    no_silent = sorted(a for a in alerts - ALWAYS_FIRING if cases.get(a, {}).get("silent", 0) == 0)
    assert not no_firing, f"alerts without a firing case: {no_firing}"
    assert not no_silent, f"alerts without a not-firing case: {no_silent}"


def test_unit_tests_pass():
    files = [str(p) for p in rule_test_files()]
    result = run_tool("promtool", "test", "rules", *files)
    assert result.returncode == 0, describe(result)
    for path in files:
        assert f"Unit Testing:  {path}" in result.stdout, describe(result)
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout, describe(result)


def _copy_tests(directory: Path, rules_path: Path, transform=lambda test_file: test_file) -> list[str]:
    """The promtool test files, rewritten to load `rules_path`, after `transform`."""
    copies = []
    for path in rule_test_files():
        test_file = load_yaml(path)
        test_file["rule_files"] = [str(rules_path)]
        copy = directory / path.name
        copy.write_text(yaml.safe_dump(transform(test_file), sort_keys=False), encoding="utf-8")
        copies.append(str(copy))
    return copies


def _failed_alerts(output: str) -> set[str]:
    return set(re.findall(r"alertname: (\w+)", output))


def test_unit_tests_fail_when_an_alert_stops_firing(tmp_path):
    """Proves that promtool really evaluates every firing case: with the expected alerts
    removed, every alert's test must fail."""
    def expect_nothing(test_file):
        for test in test_file["tests"]:
            for case in test.get("alert_rule_test", []):
                case["exp_alerts"] = []
        return test_file

    files = _copy_tests(tmp_path, RULES_FILE, expect_nothing)
    result = run_tool("promtool", "test", "rules", *files)
    assert result.returncode != 0, describe(result)
    assert _failed_alerts(result.stdout + result.stderr) == set(alert_rules()), describe(result)


# Each mutant moves a threshold, a duration or a guard of the rules a little; the unit tests
# must notice (a case just below a threshold, or just before a `for:` ends, starts firing).
# (old text in rules/pylon.yml, new text, alerts whose tests must then fail)
MUTANTS = [
    ("for: 3m", "for: 2m", {"PylonInstanceDown", "PylonTargetsMissing"}),
    ("for: 5m", "for: 4m", {"PylonFileDescriptorsNearLimit", "PylonConnectionsNearLimit",
                            "PylonHandshakeFailureRateHigh", "PylonMessageFailureRateHigh"}),
    ("for: 10m", "for: 9m", {"PylonBackpressureCloses", "PylonPingRttHigh", "PylonAdmissionPaceSaturated"}),
    ("  ) > 1\n", "  ) > 0.5\n", {"PylonAdmissionPaceSaturated"}),
    ("> 0.9\n", "> 0.89\n", {"PylonFileDescriptorsNearLimit", "PylonConnectionsNearLimit"}),
    ("> 0.10\n", "> 0.09\n", {"PylonHandshakeFailureRateHigh", "PylonMessageFailureRateHigh"}),
    (">= 5\n", ">= 2\n", {"PylonHandshakeFailureRateHigh", "PylonMessageFailureRateHigh"}),
    ("> 0.5\n", "> 0.05\n", {"PylonPingRttHigh"}),
    ("== 0\n", "<= 1\n", {"PylonInstanceDown"}),
    ("< 14 * 86400\n", "< 13 * 86400\n", {"PylonTlsCertificateExpiresSoon"}),
    ("for: 1h\n", "for: 45m\n", {"PylonTlsCertificateExpiresSoon"}),
    ("    < 86400\n", "    < 82800\n", {"PylonTlsOcspResponseStale"}),
    ("for: 30m\n", "for: 25m\n", {"PylonTlsOcspResponseStale"}),
]


def test_unit_tests_catch_moved_thresholds_and_durations(tmp_path):
    run_tool("promtool", "--version")  # fails clearly if promtool is missing
    source = RULES_FILE.read_text(encoding="utf-8")
    runs = []
    for index, (old, new, alerts) in enumerate(MUTANTS):
        assert old in source, f"mutant {old!r} no longer matches {RULES_FILE}: update MUTANTS"
        directory = tmp_path / f"mutant{index}"
        directory.mkdir()
        mutated = directory / "pylon.yml"
        mutated.write_text(source.replace(old, new), encoding="utf-8")
        argv = ["promtool", "test", "rules", *_copy_tests(directory, mutated)]
        runs.append((old, new, alerts, subprocess.Popen(argv, stdout=subprocess.PIPE,
                                                        stderr=subprocess.STDOUT, text=True)))
    problems = []
    for old, new, alerts, proc in runs:
        output, _ = proc.communicate(timeout=120)
        missed = alerts - _failed_alerts(output)
        if proc.returncode == 0 or missed:
            problems.append(f"{old.strip()!r} -> {new.strip()!r}: no failing test for {sorted(missed)}"
                            f" (exit code {proc.returncode})\n{output[-3000:]}")
    assert not problems, "the unit tests miss these changes to the rules:\n" + "\n".join(problems)
