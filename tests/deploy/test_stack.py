"""`make stack` / `make stack-down` (deploy/local/stack.sh) on free ports, with state in a temp
dir (STACK_DIR) instead of .stack/, and PYLON_BIN (so nothing is built):

- `make stack` starts Nginx, three pylon instances and (when installed) Prometheus and
  Alertmanager, prints their URLs, and returns;
- through the stack's Nginx, wss:// with the stack's own CA (STACK_DIR/tls/ca.pem) echoes, and
  plain HTTP redirects to HTTPS; Prometheus is ready and scrapes the three instances;
- `make stack` again is harmless: the same processes keep running;
- `make stack-down` stops every process it started (by PID) and frees every port.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
import websockets

from support.nginx import tls_context
from support.stack import make, recorded_pids, running
from support.server import REPO_DIR, free_ports, http_get_status, pylon_bin
from support.wsclient import http_request

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only





@pytest.fixture
def stack(tmp_path):
    ports = free_ports(7)
    env = {"STACK_DIR": str(tmp_path / "stack"), "PYLON_BIN": pylon_bin(),
           "STACK_HTTPS_PORT": str(ports[0]), "STACK_HTTP_PORT": str(ports[1]),
           "STACK_PYLON_PORTS": " ".join(map(str, ports[2:5])),
           "STACK_PROMETHEUS_PORT": str(ports[5]), "STACK_ALERTMANAGER_PORT": str(ports[6])}
    try:
        yield env, ports, tmp_path / "stack"
    finally:
        make("stack-down", env)  # whatever happened in the test


def test_make_stack_then_stack_down(stack):
    env, ports, state = stack
    https_port, http_port, pylon_ports = ports[0], ports[1], ports[2:5]
    up = make("stack", env)
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
    assert f"https://localhost:{https_port}/" in up.stdout, up.stdout
    for port in pylon_ports:
        assert f"http://127.0.0.1:{port}/" in up.stdout, up.stdout
    pids = recorded_pids(state)
    assert {"nginx", *(f"pylon-{p}" for p in pylon_ports)} <= set(pids), pids
    assert all(running(pid) for pid in pids.values()), pids

    # The topology works: wss through Nginx with the stack's CA, HTTP -> HTTPS.
    async def echo():
        async with websockets.connect(f"wss://localhost:{https_port}/ws/echo", open_timeout=10,
                                      ssl=tls_context(state / "tls" / "ca.pem")) as ws:
            await ws.send("stack")
            return await asyncio.wait_for(ws.recv(), 10)

    assert asyncio.run(echo()) == "stack"
    redirect = http_request(("127.0.0.1", http_port), "GET", "/ws/echo")
    assert redirect.status == 301
    assert redirect.header("Location") == f"https://127.0.0.1:{https_port}/ws/echo"

    if "prometheus" in pids:
        prometheus_port = ports[5]
        assert f"http://127.0.0.1:{prometheus_port}/" in up.stdout
        assert "alertmanager" in pids and http_get_status("127.0.0.1", ports[6], "/-/ready") == 200
        wanted = {f"127.0.0.1:{p}" for p in pylon_ports}
        deadline = time.monotonic() + 15
        while True:  # targets appear once service discovery has run
            with _opener.open(f"http://127.0.0.1:{prometheus_port}/api/v1/targets", timeout=10) as r:
                targets = json.load(r)["data"]["activeTargets"]
            scraped = {t["labels"]["instance"] for t in targets if t["labels"]["job"] == "pylon"}
            if scraped == wanted or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # polling an HTTP API
        assert scraped == wanted, targets
    else:
        # Said out loud rather than skipped: the stack runs without them when not installed.
        print("Prometheus/Alertmanager not installed: the stack ran without them")

    # Twice is harmless: same processes.
    again = make("stack", env)
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    assert recorded_pids(state) == pids

    down = make("stack-down", env)
    assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
    deadline = time.monotonic() + 15
    while any(running(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, {n: p for n, p in pids.items() if running(p)}
        time.sleep(0.1)  # polling process exit
    assert not list((state / "run").glob("*.pid"))
    for port in ports[:5] + ([ports[5], ports[6]] if "prometheus" in pids else []):
        assert http_get_status("127.0.0.1", port, "/", timeout=1) is None, f"port {port} still answers"
