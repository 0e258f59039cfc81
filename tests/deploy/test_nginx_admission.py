"""The per-IP abuse limits behind the shipped Nginx (deploy/nginx): pylon trusts Nginx
(trusted_proxies = 127.0.0.1), so a limit applies to the real client Nginx names in
X-Forwarded-For / X-Real-IP, not to Nginx's own address; a client's own X-Forwarded-For is
replaced by Nginx and cannot move it to another key. Clients are many source addresses
(127.0.0.x) speaking wss:// to Nginx; 429 and Retry-After come back through Nginx as pylon sent
them."""

from __future__ import annotations

import contextlib

import pytest

from support.deflate import metrics
from support.nginx import local_ca, render, start_nginx, tls_context
from support.server import start_server
from support.wsclient import WsClient, http_request, upgrade_headers

SLACK = 20.0


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return local_ca(tmp_path_factory.mktemp("tls"))


@contextlib.contextmanager
def behind_nginx(tmp_path_factory, tls, *limits: str):
    with start_server("--trusted-proxies", "127.0.0.1", *limits) as server:
        config = render(tmp_path_factory.mktemp("nginx"), [server.address], tls)
        with start_nginx(config) as nginx:
            yield server, nginx


def connect(nginx, source, headers=()):
    return WsClient.connect(nginx.https_address, headers=headers, timeout=SLACK, source=source,
                            ssl_context=tls_context(nginx.config.ca))


def upgrade(nginx, source, headers=()):
    """The response to one upgrade through Nginx from `source`, the connection closed."""
    return http_request(nginx.https_address, "GET", "/ws/echo", upgrade_headers(None, headers), timeout=SLACK,
                        ssl_context=tls_context(nginx.config.ca), source=source)


def test_connection_cap_counts_the_real_client(tmp_path_factory, tls):
    with behind_nginx(tmp_path_factory, tls, "--max-connections-per-ip", "2") as (server, nginx):
        clients = [connect(nginx, "127.0.0.2") for _ in range(2)]
        refused = upgrade(nginx, "127.0.0.2")
        assert refused.status == 429, refused.raw_head
        assert refused.header("Retry-After") == "10"
        assert b"too many connections from this address" in refused.body
        # Claiming to be someone else does not help: Nginx replaces the header.
        assert upgrade(nginx, "127.0.0.2", [("X-Forwarded-For", "203.0.113.9")]).status == 429
        # Another client behind the same Nginx has its own cap.
        clients += [connect(nginx, "127.0.0.3") for _ in range(2)]
        assert upgrade(nginx, "127.0.0.3").status == 429
        samples = metrics(server.address)
        assert samples["pylon_admission_tracked_ips"] == 2, "127.0.0.2 and 127.0.0.3, not Nginx"
        assert samples['pylon_handshake_failures_total{reason="ip_connections"}'] == 3
        for client in clients:
            client.close()


def test_handshake_rate_counts_the_real_client(tmp_path_factory, tls):
    with behind_nginx(tmp_path_factory, tls, "--handshake-rate-per-ip", "1",
                      "--handshake-burst-per-ip", "3") as (server, nginx):
        for _ in range(3):
            assert upgrade(nginx, "127.0.0.4").status == 101
        refused = upgrade(nginx, "127.0.0.4")
        assert refused.status == 429, refused.raw_head
        assert refused.header("Retry-After") == "1"
        for source in ("127.0.0.5", "127.0.0.6"):
            for _ in range(3):
                assert upgrade(nginx, source).status == 101, source
        assert metrics(server.address)['pylon_handshake_failures_total{reason="ip_handshake_rate"}'] == 1
