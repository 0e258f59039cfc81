"""What Nginx sends upstream, seen by an upstream that reports it (support/header_echo.py, a
Python `websockets` server standing in for pylon, which does not echo request headers):

- a WebSocket upgrade to /ws/... carries Upgrade, `Connection: upgrade`, Host, X-Real-IP,
  X-Forwarded-For (the client's address, replacing whatever the client claimed) and
  X-Forwarded-Proto https;
- plain requests carry no `Connection: upgrade` and no Upgrade header, under /ws/ and elsewhere
  (the map $http_upgrade $connection_upgrade), and the same forwarding headers.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from support.nginx import local_ca, render, start_nginx, tls_context, wss_connect
from support.server import TESTS_DIR, free_port, start_process
from support.wsclient import http_request

SPOOFED = "203.0.113.7"


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    tls = local_ca(tmp_path_factory.mktemp("tls"))
    port = free_port()
    argv = ["/usr/bin/python3", str(TESTS_DIR / "support" / "header_echo.py"), str(port)]
    with start_process(argv, port, stop_timeout=10) as upstream:
        config = render(tmp_path_factory.mktemp("nginx"), [upstream.address], tls)
        with start_nginx(config) as running:
            yield running


def headers_of(report: dict) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in report["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def test_websocket_upgrade_headers(nginx):
    async def scenario():
        async with wss_connect(nginx, "/ws/echo?room=1",
                               extra_headers={"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED}) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    report = asyncio.run(scenario())
    headers = headers_of(report)
    assert report["path"] == "/ws/echo?room=1"
    assert headers["upgrade"] == ["websocket"]
    assert [v.lower() for v in headers["connection"]] == ["upgrade"]
    assert headers["host"] == ["localhost"]
    assert headers["x-real-ip"] == ["127.0.0.1"]
    # Nginx is the edge: the client's own claim is replaced, not appended to.
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["https"]
    assert "sec-websocket-key" in headers and headers["sec-websocket-version"] == ["13"]


@pytest.mark.parametrize("path", ["/ws/echo", "/ws", "/", "/api/publish"])
def test_plain_requests_get_no_connection_upgrade(nginx, path):
    response = http_request(nginx.https_address, "GET", path,
                            headers=[("X-Forwarded-For", SPOOFED)],
                            ssl_context=tls_context(nginx.config.ca))
    assert response.status == 200, response.raw_head
    report = json.loads(response.body)
    headers = headers_of(report)
    assert report["path"] == path
    assert "upgrade" not in headers, headers
    assert all("upgrade" not in v.lower() for v in headers.get("connection", [])), headers
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-real-ip"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["https"]
