"""Abuse limits on WebSocket upgrades (issue 13, docs/security.md "Abuse limits"): per client IP
a connection cap, a handshake rate and a lockout after failed authentications (429 with
Retry-After), measured with many source addresses (loopback has all of 127.0.0.0/8); the global
admission pace during a storm of 5,000 connects (503 with Retry-After, which the clients here
honour). Through the shipped Nginx: tests/deploy/test_nginx_admission.py."""

import time

import jwt
import pytest

from support.deflate import metrics
from support.server import poll, start_server
from support.wsclient import WsClient, handshake_many, http_request, open_socket, upgrade_headers

SLACK = 20.0
SECRET = "an HMAC secret of at least thirty-two bytes, for tests"


def upgrade(server, source, path="/ws/echo", headers=()):
    """The response to one upgrade from the local address `source`, the connection closed."""
    return http_request(server.address, "GET", path, upgrade_headers(None, headers), timeout=SLACK, source=source)


def retry_after(response):
    value = response.header("Retry-After")
    assert value is not None and value.isdigit(), response.raw_head
    return int(value)


def failures(server, reason):
    return metrics(server.address).get(f'pylon_handshake_failures_total{{reason="{reason}"}}', 0.0)


def test_defaults_limit_nothing():
    with start_server() as server:
        clients = [WsClient.connect(server.address, source="127.0.0.2") for _ in range(30)]
        for client in clients:
            client.close()
        samples = metrics(server.address)
        assert samples["pylon_admission_tracked_ips"] == 0


def test_connection_cap_per_ip_while_other_ips_are_served():
    with start_server("--max-connections-per-ip", "3") as server:
        first = [WsClient.connect(server.address, source="127.0.0.2") for _ in range(3)]
        refused = upgrade(server, "127.0.0.2")
        assert refused.status == 429, refused.raw_head
        assert refused.body == b"too many connections from this address\n"
        assert retry_after(refused) == 10
        # Other addresses have caps of their own.
        others = [WsClient.connect(server.address, source=f"127.0.0.{n}") for n in (3, 4, 5) for _ in range(3)]
        assert upgrade(server, "127.0.0.3").status == 429
        # A closed connection gives its place back (the server sees the close a moment later).
        first.pop().close_cleanly()
        client = poll(lambda: upgrade_or_none(server, "127.0.0.2"), SLACK, "a place freed at 127.0.0.2")
        assert upgrade(server, "127.0.0.2").status == 429
        assert failures(server, "ip_connections") >= 3
        assert metrics(server.address)["pylon_admission_tracked_ips"] == 4
        for each in first + others + [client]:
            each.close()


def upgrade_or_none(server, source):
    """A WebSocket from `source`, or None when it was refused with 429."""
    sock = open_socket(server.address, SLACK, source)
    client = WsClient(*server.address, timeout=SLACK, sock=sock)
    try:
        return client if client.handshake().status == 101 else None
    except AssertionError:
        assert client.handshake_response.status == 429, client.handshake_response.raw_head
        client.close()
        return None


def test_handshake_rate_per_ip_measured():
    rate, burst = 5, 4
    with start_server("--handshake-rate-per-ip", str(rate), "--handshake-burst-per-ip", str(burst)) as server:
        # The burst at once, then one more is refused with the time to the next token.
        for _ in range(burst):
            assert upgrade(server, "127.0.0.10").status == 101
        refused = upgrade(server, "127.0.0.10")
        assert refused.status == 429, refused.raw_head
        assert refused.body == b"too many handshakes from this address\n"
        assert retry_after(refused) == 1
        # Hammered for 1.5 s, an IP gets in at the configured rate; another IP meanwhile has its
        # own burst.
        started = time.monotonic()
        admitted = refused_count = 0
        while time.monotonic() - started < 1.5:
            response = upgrade(server, "127.0.0.10")
            if response.status == 101:
                admitted += 1
            else:
                assert response.status == 429, response.raw_head
                refused_count += 1
        elapsed = time.monotonic() - started
        assert 1 <= admitted <= rate * elapsed + 1, (admitted, elapsed)
        assert refused_count > admitted
        for _ in range(burst):
            assert upgrade(server, "127.0.0.11").status == 101
        assert failures(server, "ip_handshake_rate") == refused_count + 1


def test_failed_authentications_lock_an_ip_out_until_the_lockout_lifts():
    def token():
        now = int(time.time())
        return jwt.encode({"sub": "user-1", "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")

    def bearer(value):
        return [("Authorization", f"Bearer {value}")]

    with start_server("--auth-hmac-secret-env", "PYLON_TEST_SECRET", "--auth-failures-per-minute", "3",
                      "--auth-lockout", "2", env={"PYLON_TEST_SECRET": SECRET}) as server:
        for _ in range(3):
            assert upgrade(server, "127.0.0.20", "/ws", bearer("not-a-token")).status == 401
        locked = upgrade(server, "127.0.0.20", "/ws", bearer(token()))
        assert locked.status == 429, locked.raw_head
        assert locked.body == b"too many failed authentications from this address\n"
        assert 1 <= retry_after(locked) <= 2
        # Refused before its token is looked at; other addresses are served meanwhile, and one
        # failure of theirs does not lock them out.
        assert upgrade(server, "127.0.0.21", "/ws", bearer(token())).status == 101
        assert upgrade(server, "127.0.0.21", "/ws", bearer("not-a-token")).status == 401
        assert upgrade(server, "127.0.0.21", "/ws/echo").status == 101
        assert upgrade(server, "127.0.0.20", "/ws/echo").status == 429, "every route"
        samples = metrics(server.address)
        assert samples["pylon_admission_locked_out_ips"] == 1
        assert samples["pylon_admission_lockouts_total"] == 1
        assert samples['pylon_handshake_failures_total{reason="ip_locked_out"}'] == 2
        poll(lambda: '"msg":"client locked out after failed authentications","client_ip":"127.0.0.20"'
             in server.output(), SLACK, "the lockout's log line")
        poll(lambda: upgrade(server, "127.0.0.20", "/ws", bearer(token())).status == 101, SLACK,
             "the lockout of 127.0.0.20 to lift")
        assert metrics(server.address)["pylon_admission_locked_out_ips"] == 0


STORM = 5000
RATE = 1000
BURST = 1000


def test_a_storm_of_5000_connects_is_admitted_at_the_configured_pace():
    with start_server("--admission-rate", str(RATE), "--admission-burst", str(BURST)) as server:
        started = time.monotonic()
        admitted_at: list[float] = []
        clients = []
        refusals = 0
        pending = STORM
        retry_at: dict[int, int] = {}  # seconds after `started` -> how many clients come back then
        wave_time = started
        while pending:
            wave = handshake_many(WsClient, server.address, pending, timeout=120)
            for result in wave:
                response = result.client.handshake_response
                if response.status == 101:
                    admitted_at.append(result.answered - started)
                    clients.append(result.client)
                    continue
                assert response.status == 503, response.raw_head
                assert response.body == b"new connections are admitted at a limited pace\n"
                seconds = retry_after(response)
                assert 1 <= seconds <= 60
                back = int(wave_time - started) + seconds
                retry_at[back] = retry_at.get(back, 0) + 1
                refusals += 1
                result.client.close()
            if not retry_at:
                break
            # The next wave: every client whose Retry-After has come, as clients that honour it.
            due = min(retry_at)
            pending = retry_at.pop(due)
            time.sleep(max(0.0, started + due - time.monotonic()))  # the Retry-After the server asked for
            wave_time = time.monotonic()
        assert len(admitted_at) == STORM
        assert refusals > 0
        # At any moment, no more were admitted than the burst plus the pace since the storm began
        # (the server admitted each one before this client saw it: the bound holds a fortiori).
        admitted_at.sort()
        for count, at in enumerate(admitted_at, start=1):
            assert count <= BURST + RATE * at + 1, (count, at)
        assert admitted_at[-1] >= (STORM - BURST) / RATE - 0.01
        assert failures(server, "admission_rate") == refusals
        for client in clients:
            client.close()
