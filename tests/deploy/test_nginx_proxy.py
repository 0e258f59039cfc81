"""The shipped Nginx configuration (deploy/nginx, rendered by render.sh) in front of three real
`pylon serve` instances, with a certificate from the local CA (deploy/tls/local-ca.sh):

- wss:// echo through Nginx, the client verifying the local CA, by name and by IP; a client
  that does not trust the CA is refused;
- plain HTTP: 301 to HTTPS with path and query kept, except the ACME challenge path, whose
  files are served as they are;
- HTTPS: HSTS on every answer, plain requests (/healthz) reach pylon, /metrics does not;
- TLS 1.0 and 1.1 are refused by the server, 1.2 and 1.3 accepted;
- least_conn: 300 connections spread over the three instances, each within 20% of 100 by the
  instance's own pylon_connections;
- failover: one instance killed (SIGKILL), 30 new connections all succeed on the others; once
  it is started again, new connections go to it at once (Nginx does not keep it out);
- drain: one instance gets SIGTERM, its clients receive 1001 and reconnect through Nginx to
  the others.

Everything on 127.0.0.1; processes are stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import time

import pytest
import websockets

from support.nginx import (local_ca, pylon_connections, render, start_nginx, tls_context,
                           wss_connect)
from support.server import start_server
from support.wsclient import http_request

INSTANCES = 3
SPREAD_CONNECTIONS = 300
FAILOVER_CONNECTIONS = 30


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return local_ca(tmp_path_factory.mktemp("tls"))


@contextlib.contextmanager
def cluster_of(directory, tls, *pylon_args):
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(start_server(*pylon_args)) for _ in range(INSTANCES)]
        config = render(directory, [s.address for s in servers], tls)
        nginx = stack.enter_context(start_nginx(config))
        yield nginx, servers


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tls):
    with cluster_of(tmp_path_factory.mktemp("nginx"), tls) as running:
        yield running


def poll(what, check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)
        time.sleep(0.05)  # polling an HTTP endpoint, not waiting for an event


def counts(servers):
    return [pylon_connections(s) for s in servers]


async def open_many(nginx, count):
    return await asyncio.gather(*(wss_connect(nginx) for _ in range(count)))


async def close_all(clients):
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


# ---------------------------------------------------------------------------- TLS and echo

@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_wss_echo_through_nginx(cluster, host):
    nginx, _ = cluster

    async def scenario():
        async with wss_connect(nginx, host=host) as ws:
            await ws.send("hello through nginx")
            assert await asyncio.wait_for(ws.recv(), 10) == "hello through nginx"
            await ws.send(b"\x00\x01\xfe\xff" * 1000)
            assert await asyncio.wait_for(ws.recv(), 10) == b"\x00\x01\xfe\xff" * 1000
            assert ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")

    asyncio.run(scenario())


def test_client_without_the_ca_is_refused(cluster):
    nginx, _ = cluster
    untrusting = ssl.create_default_context()  # system roots only, not the local CA

    async def scenario():
        with pytest.raises(ssl.SSLCertVerificationError):
            await websockets.connect(nginx.wss_url(), ssl=untrusting, open_timeout=10)

    asyncio.run(scenario())


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["1.0", "1.1"])
def test_old_tls_versions_are_refused_by_the_server(cluster, version):
    nginx, _ = cluster
    context = tls_context(nginx.config.ca, minimum=version, maximum=version)
    with pytest.raises(ssl.SSLError) as error:
        http_request(nginx.https_address, "GET", "/healthz", ssl_context=context)
    # The server's protocol_version alert, not the client refusing to offer the version.
    assert "ALERT_PROTOCOL_VERSION" in str(error.value).upper(), error.value


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["1.2", "1.3"])
def test_tls_1_2_and_1_3_are_accepted(cluster, version):
    nginx, _ = cluster
    context = tls_context(nginx.config.ca, minimum=version, maximum=version)
    response = http_request(nginx.https_address, "GET", "/healthz", ssl_context=context)
    assert response.status == 200, response.raw_head


# ---------------------------------------------------------------------------- plain HTTP

@pytest.mark.parametrize("path", ["/", "/ws/echo", "/some/page?x=1&y=%2F"])
def test_http_redirects_to_https_keeping_the_path(cluster, path):
    nginx, _ = cluster
    response = http_request(nginx.http_address, "GET", path)
    assert response.status == 301, response.raw_head
    assert response.header("Location") == f"https://127.0.0.1:{nginx.config.https_port}{path}"


def test_acme_challenge_is_served_not_redirected(cluster):
    nginx, _ = cluster
    challenges = nginx.config.acme_webroot / ".well-known" / "acme-challenge"
    challenges.mkdir(parents=True, exist_ok=True)
    (challenges / "token123").write_text("token123.thumbprint")
    response = http_request(nginx.http_address, "GET", "/.well-known/acme-challenge/token123")
    assert response.status == 200, response.raw_head
    assert response.body == b"token123.thumbprint"
    assert response.header("Content-Type") == "text/plain"
    missing = http_request(nginx.http_address, "GET", "/.well-known/acme-challenge/nothing")
    assert missing.status == 404, missing.raw_head


# ---------------------------------------------------------------------------- HTTPS server

@pytest.mark.parametrize("path", ["/healthz", "/no-such-page", "/metrics"])
def test_hsts_on_every_https_answer(cluster, path):
    nginx, _ = cluster
    response = http_request(nginx.https_address, "GET", path, ssl_context=tls_context(nginx.config.ca))
    hsts = response.header("Strict-Transport-Security")
    assert hsts is not None, response.raw_head
    max_age = int(hsts.split("max-age=")[1].split(";")[0])
    assert max_age >= 31536000, hsts


def test_plain_requests_reach_pylon(cluster):
    nginx, _ = cluster
    context = tls_context(nginx.config.ca)
    for path, body in (("/healthz", b"ok"), ("/readyz", b"ready")):
        response = http_request(nginx.https_address, "GET", path, ssl_context=context)
        assert response.status == 200, response.raw_head
        assert response.body.strip() == body


@pytest.mark.parametrize("path", ["/metrics", "/metrics?x=1", "/metrics/", "//metrics"])
def test_metrics_not_reachable_through_nginx(cluster, path):
    nginx, servers = cluster
    response = http_request(nginx.https_address, "GET", path, ssl_context=tls_context(nginx.config.ca))
    assert response.status in (403, 404), response.raw_head
    assert b"pylon_" not in response.body
    # ... while Prometheus, on the instance's own address, gets them.
    direct = http_request(servers[0].address, "GET", "/metrics")
    assert direct.status == 200 and b"pylon_connections" in direct.body


# ---------------------------------------------------------------------------- balancing

def test_least_conn_spreads_connections_over_the_instances(cluster):
    nginx, servers = cluster
    expected = SPREAD_CONNECTIONS // INSTANCES

    async def scenario():
        clients = await open_many(nginx, SPREAD_CONNECTIONS)
        try:
            seen = await asyncio.to_thread(
                poll, f"{SPREAD_CONNECTIONS} connections counted by the instances",
                lambda: (lambda c: c if sum(c) == SPREAD_CONNECTIONS else None)(counts(servers)))
            for count in seen:
                assert abs(count - expected) <= expected * 0.2, f"uneven spread: {seen}"
            # Every one of them still echoes.
            await asyncio.gather(*(c.send(f"n{i}") for i, c in enumerate(clients)))
            answers = await asyncio.gather(*(asyncio.wait_for(c.recv(), 15) for c in clients))
            assert answers == [f"n{i}" for i in range(len(clients))]
        finally:
            await close_all(clients)

    asyncio.run(scenario())
    poll("the connections to close", lambda: sum(counts(servers)) == 0)


@pytest.fixture
def own_cluster(tmp_path, tls):
    # A short drain so the drain test does not wait; the other flags are the defaults.
    with cluster_of(tmp_path / "nginx", tls, "--drain-window", "0.2", "--drain-timeout", "5") as running:
        yield running


def test_killed_instance_does_not_break_new_connections(own_cluster):
    nginx, servers = own_cluster
    victim, survivors = servers[0], servers[1:]
    victim.signal(signal.SIGKILL)
    victim.wait(timeout=10)

    async def scenario():
        clients = await open_many(nginx, FAILOVER_CONNECTIONS)  # raises if any one fails
        try:
            await asyncio.gather(*(c.send("alive") for c in clients))
            assert await asyncio.gather(*(asyncio.wait_for(c.recv(), 10) for c in clients)) == \
                ["alive"] * FAILOVER_CONNECTIONS
            seen = await asyncio.to_thread(counts, survivors)
            assert sum(seen) == FAILOVER_CONNECTIONS and min(seen) > 0, seen
        finally:
            await close_all(clients)

    asyncio.run(scenario())


def test_an_upgrade_a_full_instance_refuses_is_tried_on_the_next(tmp_path, tls):
    """An instance at max_connections answers an upgrade 503; Nginx tries the next instance
    (proxy_next_upstream http_503), as for a drain's first quarter second: no client sees it."""
    with contextlib.ExitStack() as stack:
        full = stack.enter_context(start_server("--max-connections", "1"))
        roomy = stack.enter_context(start_server())
        nginx = stack.enter_context(start_nginx(render(tmp_path / "nginx", [full.address, roomy.address], tls)))

        async def scenario():
            async with websockets.connect(f"ws://127.0.0.1:{full.port}/ws/echo"):  # fills it
                clients = await open_many(nginx, FAILOVER_CONNECTIONS)  # raises on any 503
                try:
                    seen = await asyncio.to_thread(counts, [full, roomy])
                    assert seen == [1, FAILOVER_CONNECTIONS], seen
                finally:
                    await close_all(clients)

        asyncio.run(scenario())


def test_drained_instance_clients_reconnect_to_the_others(own_cluster):
    nginx, servers = own_cluster
    drained, others = servers[0], servers[1:]

    async def drain_scenario():
        clients = await open_many(nginx, FAILOVER_CONNECTIONS)
        reconnected = []
        try:
            seen = await asyncio.to_thread(
                poll, "connections on every instance",
                lambda: (lambda c: c if sum(c) == FAILOVER_CONNECTIONS else None)(counts(servers)))
            assert seen[0] > 0, seen
            drained.signal(signal.SIGTERM)
            # The drained instance's clients get 1001 within the drain window; the others hear
            # nothing (their recv times out).
            waits = [asyncio.ensure_future(c.wait_closed()) for c in clients]
            await asyncio.wait(waits, timeout=8)
            closed = [c for c in clients if c.closed]
            assert len(closed) == seen[0], (len(closed), seen)
            assert {c.close_code for c in closed} == {1001}
            for w in waits:
                w.cancel()
            # They reconnect through Nginx: every attempt succeeds, on the other instances.
            reconnected = await open_many(nginx, len(closed))
            await asyncio.gather(*(c.send("back") for c in reconnected))
            assert await asyncio.gather(*(asyncio.wait_for(c.recv(), 10) for c in reconnected)) == \
                ["back"] * len(closed)
            assert drained.wait(timeout=10) == 0
            after = await asyncio.to_thread(counts, others)
            assert sum(after) == FAILOVER_CONNECTIONS, after
        finally:
            await close_all(clients + reconnected)

    asyncio.run(drain_scenario())


def test_restarted_instance_gets_new_connections_at_once(own_cluster):
    """Nginx must not keep a restarted instance out of the balancing because a connect was refused
    while it was down: it forgives a failed server only when a later request to it completes, and
    a proxied WebSocket completes when it closes (the upstream has max_fails=0; with max_fails=1
    the restarted instance got one connection per fail_timeout, tests/deploy/test_rolling_restart.py)."""
    nginx, servers = own_cluster
    restarted, others = servers[0], servers[1:]
    restarted.signal(signal.SIGKILL)
    restarted.wait(timeout=10)

    async def scenario():
        # While it is down: least_conn tries it first (it holds nothing), the connect is refused.
        clients = await open_many(nginx, FAILOVER_CONNECTIONS)
        try:
            assert sum(await asyncio.to_thread(counts, others)) == FAILOVER_CONNECTIONS
            with start_server("--drain-window", "0.2", "--drain-timeout", "5", port=restarted.port) as back:
                clients += await open_many(nginx, FAILOVER_CONNECTIONS)
                # least_conn: it holds nothing, so the new connections go to it first.
                held = await asyncio.to_thread(pylon_connections, back)
                assert held >= FAILOVER_CONNECTIONS // 2, (held, await asyncio.to_thread(counts, others))
        finally:
            await close_all(clients)

    asyncio.run(scenario())
