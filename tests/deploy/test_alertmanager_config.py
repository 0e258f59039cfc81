"""deploy/alertmanager/alertmanager.yml passes amtool, routes every alert of the rules file to
the receiver it should reach, groups by alertname and instance, and notifies only loopback
webhooks."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from deploy_files import ALERTMANAGER_CONFIG, alert_rules, describe, load_yaml, run_tool


def test_config_is_valid():
    result = run_tool("amtool", "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, describe(result)
    assert "SUCCESS" in result.stdout, describe(result)
    assert re.search(r"\b2 receivers\b", result.stdout), describe(result)


def test_groups_by_alertname_and_instance():
    route = load_yaml(ALERTMANAGER_CONFIG)["route"]
    assert set(route["group_by"]) == {"alertname", "instance"}
    assert route["receiver"] == "webhook"


def _expected_receiver(name: str) -> str:
    return "heartbeat" if name == "Watchdog" else "webhook"


@pytest.mark.parametrize("name", sorted(alert_rules()))
def test_alert_reaches_its_receiver(name):
    """amtool resolves the route of the alert as Prometheus would send it (its name, its
    severity, an instance) and --verify.receivers fails on any other receiver."""
    rule = alert_rules()[name]
    labels = [f"alertname={name}", f"severity={rule['labels']['severity']}", "instance=pylon-1:9001",
              "job=pylon"]
    expected = _expected_receiver(name)
    result = run_tool("amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                      f"--verify.receivers={expected}", *labels)
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() == expected, describe(result)


def test_matchers_name_existing_alerts():
    """Routes and inhibitions that name an alert must name one the rules define (a renamed
    alert would otherwise slip past its route silently)."""
    config = load_yaml(ALERTMANAGER_CONFIG)
    matchers = []

    def walk(route):
        matchers.extend(route.get("matchers", []))
        for child in route.get("routes", []):
            walk(child)

    walk(config["route"])
    for rule in config.get("inhibit_rules", []):
        matchers += rule.get("source_matchers", []) + rule.get("target_matchers", [])
    names = [m.split("=", 1)[1].strip().strip('"') for m in matchers if m.replace(" ", "").startswith("alertname=")]
    assert names, "expected the Watchdog route and the PylonInstanceDown inhibition"
    unknown = sorted(set(names) - set(alert_rules()))
    assert not unknown, f"alertmanager.yml names alerts that rules/pylon.yml does not define: {unknown}"
    severities = {rule["labels"]["severity"] for rule in alert_rules().values()}
    for m in matchers:
        if m.replace(" ", "").startswith("severity="):
            assert m.split("=", 1)[1].strip().strip('"') in severities, m


def test_receivers_are_loopback_webhooks():
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"webhook", "heartbeat"}
    for name, receiver in receivers.items():
        webhooks = receiver.get("webhook_configs", [])
        assert webhooks, name
        for webhook in webhooks:
            assert urlsplit(webhook["url"]).hostname == "127.0.0.1", webhook["url"]
    assert receivers["webhook"]["webhook_configs"][0]["send_resolved"] is True
