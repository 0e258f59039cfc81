"""Fixtures shared by the black-box suites (conformance/, integration/).

- `server`: one `pylon serve` with default flags for the whole test file (a module may
  override it with its own `server` fixture to start it with flags, see test_limits.py).
- `ws`: a raw WebSocket client connected to `server` on /ws/echo; after the test it checks
  that the server still serves a new client.
- `start_server`: support.server.start_server, for tests that need their own server.
When a test fails, the output of every server alive during it is attached to the report.
"""

from __future__ import annotations

import pytest

from support import server as server_support
from support.wsclient import WsClient, echo_check


@pytest.fixture(scope="session")
def server():
    with server_support.start_server() as running:
        yield running


@pytest.fixture
def address(server):
    return server.address


@pytest.fixture
def ws(server):
    client = WsClient.connect(server.address)
    yield client
    client.close()
    # Every case also proves that the server survived it and still serves another client.
    echo_check(server.address)


@pytest.fixture
def start_server():
    return server_support.start_server


def pytest_runtest_setup(item):
    server_support.stopped_servers.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for running in server_support.live_servers + server_support.stopped_servers:
            report.sections.append((f"server pid {running.pid} ({report.when})", running.output(limit=6000)))
