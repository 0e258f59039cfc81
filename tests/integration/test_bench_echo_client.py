"""bench/peers/echo_client, the load client of `make bench`'s churn, raw TCP and idle cases, built
here by bench/peers/build.sh (that peer alone) and run for a second against real servers:

- churn against `pylon serve` (which sends its FIN with its close frame) and against Python
  `websockets` (a server whose FIN may come after its close frame): cycles complete with no
  error, and the server's CPU per cycle is read from /proc;
- churn against a server that answers the upgrade with 400: every cycle is an error, named;
- echo with 8 frames in flight against pylon: messages answered, no error.

A broken cycle (a FIN missed, an edge-triggered event lost) shows as no cycles, errors, or a
hang past the timeout. Everything on 127.0.0.1; processes are stopped by PID.
"""

from __future__ import annotations

import http
import json
import subprocess
from pathlib import Path

import pytest

from support.background_ws import BackgroundServer
from support.server import start_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def echo_client(tmp_path_factory) -> str:
    peers = tmp_path_factory.mktemp("peers")
    subprocess.run([str(ROOT / "bench" / "peers" / "build.sh"), str(peers), "echo_client"],
                   check=True, timeout=300)
    return str(peers / "echo_client")


def run(client: str, port: int, *args: str) -> dict:
    result = subprocess.run([client, "--port", str(port), "--connections", "8", "--duration", "1",
                             "--warmup", "0", *args], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class WebsocketsEcho(BackgroundServer):
    """Python `websockets` echoing every message (status: its answer to the upgrade)."""

    def __init__(self, status: int = 101):
        self.status = status
        super().__init__()

    async def process_request(self, path, headers):
        if self.status != 101:
            return http.HTTPStatus(self.status), [], b"refused\n"
        return None

    async def handler(self, websocket, path=None):
        async for message in websocket:
            await websocket.send(message)


def test_churn_against_pylon(echo_client):
    with start_server("--threads", "1") as server:
        report = run(echo_client, server.port, "--churn", "--pid", str(server.pid))
    assert report["scenario"] == "churn"
    assert report["errors"] == {}
    assert report["cycles"] > 100
    assert report["server_cpu_us_per_cycle"] > 0


def test_churn_against_python_websockets(echo_client):
    with WebsocketsEcho() as server:
        report = run(echo_client, server.port, "--churn")
    assert report["errors"] == {}
    assert report["cycles"] > 20


def test_churn_counts_a_refused_upgrade(echo_client):
    with WebsocketsEcho(status=400) as server:
        report = run(echo_client, server.port, "--churn")
    assert report["cycles"] == 0
    assert report["errors"].get("handshake_status", 0) > 0, report["errors"]


def test_echo_in_flight_against_pylon(echo_client):
    with start_server("--threads", "1") as server:
        report = run(echo_client, server.port, "--in-flight", "8", "--pid", str(server.pid))
    assert report["errors"] == {}
    assert report["messages"] > 1000
