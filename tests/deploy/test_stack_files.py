"""Static checks of deploy/systemd and deploy/sysctl, against what pylon and this kernel offer:

- pylon@.service runs `pylon serve` with flags pylon knows (from `pylon serve --help`) and the
  port from the instance name, reloads with SIGHUP, restarts on failure, raises LimitNOFILE,
  and its stop timeout is longer than pylon's default drain_timeout (docs/configuration.md);
- every key of deploy/sysctl/99-pylon.conf exists in /proc/sys on this kernel, and its values
  are ceilings at least as large as the kernel's current ones where that is the point.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.server import REPO_DIR, run_pylon

UNIT = REPO_DIR / "deploy" / "systemd" / "pylon@.service"
SYSCTL = REPO_DIR / "deploy" / "sysctl" / "99-pylon.conf"


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def default_of(key: str) -> float:
    for line in (REPO_DIR / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith(f"| `{key}`"):
            return float(line.split("|")[2].strip(" `"))
    pytest.fail(f"{key} not in docs/configuration.md")


def test_pylon_unit():
    settings = unit_settings(UNIT)
    exec_start = settings["ExecStart"][0].split()
    assert exec_start[1] == "serve"
    assert "--listen" in exec_start and exec_start[exec_start.index("--listen") + 1] == "127.0.0.1:%i"
    help_text = run_pylon("serve", "--help").stdout
    for flag in (a for a in exec_start if a.startswith("--")):
        assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,]|$)", help_text, re.M), f"pylon serve has no {flag}"
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["KillSignal"] == ["SIGTERM"]
    assert settings["Restart"] == ["on-failure"]
    assert int(settings["LimitNOFILE"][0]) >= 100000
    assert float(settings["TimeoutStopSec"][0]) > default_of("drain_timeout") + default_of("drain_window") / 2


def test_sysctl_keys_exist_on_this_kernel():
    entries = []
    for line in SYSCTL.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.append((key.strip(), value.split()))
    assert entries
    missing = [key for key, _ in entries if not Path("/proc/sys", *key.split(".")).exists()]
    assert not missing, f"not a sysctl on this kernel: {missing}"
    values = dict(entries)
    assert int(values["net.core.somaxconn"][0]) >= 4096
    assert int(values["fs.nr_open"][0]) >= 1048576  # LimitNOFILE of pylon@.service
    low, high = map(int, values["net.ipv4.ip_local_port_range"])
    assert high - low >= 50000
