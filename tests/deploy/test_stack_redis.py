"""`make stack` with `STACK_ENGINE=redis` (deploy/local/stack.sh, issue 8): the deploy kit's
topology with the three pylon instances sharing topics through a `redis-server` the stack starts
itself, on free ports on 127.0.0.1, state in a temp dir (STACK_DIR), PYLON_BIN (nothing built):

- `make stack` starts Redis (no persistence, PID recorded like every other process) and the
  instances with `--engine redis`, and returns once each instance's engine is up;
- 30 subscribers connect on `/ws` over wss through Nginx (verifying the stack's CA); each
  instance's own /metrics (read directly, not through Nginx) shows that all three hold some,
  and Redis counts the three instances as subscribed to the topic;
- one message published over wss through Nginx, one with `POST /api/publish` sent directly to
  one instance (STACK_API_KEY), and a last one over wss: every subscriber receives exactly these
  three envelopes, once each and in order, and nothing after them;
- `make stack-down` stops Nginx, pylon and Redis by PID: no process and no port is left.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest
import websockets

from support.nginx import tls_context
from support.pubsub import dumps, envelope, http_publish, publish_text, published_to, request_text
from support.redis import RedisServer, require_redis, wait_for
from support.stack import make, recorded_pids, running
from support.server import REPO_DIR, free_ports, pylon_bin
from support.wsclient import http_request

SUBSCRIBERS = 30
API_KEY = "stack-redis-test-key"
TOPIC = "stack/redis"
QUIET = 0.5  # seconds a subscriber must stay silent after the last message (no duplicates)





def metric(port: int, name: str) -> float:
    """One sample of `name` (with its labels, e.g. 'pylon_connections{endpoint="/ws"}') from
    the instance's own /metrics; 0 when absent."""
    response = http_request(("127.0.0.1", port), "GET", "/metrics")
    assert response.status == 200, response.raw_head
    for line in response.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line[len(name) + 1:])
    return 0.0


def port_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def processes_mentioning(*needles: str) -> dict[int, str]:
    """PIDs whose command line (or process title) contains one of `needles`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(needle in cmdline for needle in needles) and running(int(entry)):
            found[int(entry)] = cmdline
    return found


@pytest.fixture
def stack(tmp_path):
    require_redis()
    ports = free_ports(6)
    state = tmp_path / "stack"
    env = {"STACK_DIR": str(state), "PYLON_BIN": pylon_bin(),
           "STACK_HTTPS_PORT": str(ports[0]), "STACK_HTTP_PORT": str(ports[1]),
           "STACK_PYLON_PORTS": " ".join(map(str, ports[2:5])), "STACK_REDIS_PORT": str(ports[5]),
           "STACK_ENGINE": "redis", "STACK_REDIS_PREFIX": f"stack{os.getpid()}:",
           "STACK_API_KEY": API_KEY, "STACK_OBSERVABILITY": "0"}
    try:
        yield env, ports, state
    finally:
        make("stack-down", env)  # whatever happened in the test


async def fan_out(https_port: int, ca, pylon_ports: list[int], redis: RedisServer,
                  channel: str) -> None:
    context = tls_context(ca)
    url = f"wss://localhost:{https_port}/ws"

    def connect():
        return websockets.connect(url, ssl=context, open_timeout=10, close_timeout=2,
                                  ping_interval=None, max_queue=None)

    subscribers = []
    try:
        # One after the other: least_conn sends each to the instance holding the fewest.
        for _ in range(SUBSCRIBERS):
            subscribers.append(await connect())
        for i, ws in enumerate(subscribers):
            await ws.send(request_text("subscribe", topics=[TOPIC], id=i).decode())
        for i, ws in enumerate(subscribers):
            reply = await asyncio.wait_for(ws.recv(), 10)
            assert reply == f'{{"type":"ack","id":{i}}}', reply

        # Every instance holds subscribers (its own metrics, not Nginx's view), and each has
        # told Redis about its interest before anything is published.
        held = {port: int(metric(port, 'pylon_connections{endpoint="/ws"}')) for port in pylon_ports}
        subscribed = {port: int(metric(port, "pylon_subscriptions")) for port in pylon_ports}
        assert all(count > 0 for count in held.values()), held
        assert sum(held.values()) == SUBSCRIBERS and subscribed == held, (held, subscribed)
        await asyncio.to_thread(wait_for, lambda: redis.numsub(channel) == 3, 10,
                                f"three instances subscribed to {channel} in Redis")

        async def expect_everywhere(data: str) -> None:
            expected = envelope(TOPIC, data).decode()
            received = await asyncio.gather(*(asyncio.wait_for(ws.recv(), 10) for ws in subscribers))
            wrong = {i: r for i, r in enumerate(received) if r != expected}
            assert not wrong, f"expected {expected!r}; got {wrong}"

        async with connect() as publisher:  # not subscribed: it only publishes
            # 1. over wss through Nginx, on whichever instance the publisher landed
            await publisher.send(publish_text(TOPIC, '"through nginx"', id="p1").decode())
            assert await asyncio.wait_for(publisher.recv(), 10) == '{"type":"ack","id":"p1"}'
            await expect_everywhere('"through nginx"')

            # 2. POST /api/publish to one instance directly; it counts only its own subscribers
            body = b'{"topic":' + dumps(TOPIC) + b',"data":"over http"}'
            response = await asyncio.to_thread(http_publish, ("127.0.0.1", pylon_ports[0]), body, API_KEY)
            assert published_to(response) == held[pylon_ports[0]]
            await expect_everywhere('"over http"')

            # 3. a last one: nothing (a duplicate of 1 or 2) may come before it or after it
            await publisher.send(publish_text(TOPIC, '"last"', id="p3").decode())
            assert await asyncio.wait_for(publisher.recv(), 10) == '{"type":"ack","id":"p3"}'
            await expect_everywhere('"last"')

        async def silent(ws) -> None:
            try:
                extra = await asyncio.wait_for(ws.recv(), QUIET)
            except asyncio.TimeoutError:
                return
            raise AssertionError(f"a subscriber received more than once: {extra!r}")

        await asyncio.gather(*(silent(ws) for ws in subscribers))
    finally:
        await asyncio.gather(*(ws.close() for ws in subscribers), return_exceptions=True)


def test_stack_on_redis_delivers_across_instances_then_stops_everything(stack):
    env, ports, state = stack
    https_port, pylon_ports, redis_port = ports[0], ports[2:5], ports[5]
    started = time.monotonic()

    up = make("stack", env)
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
    assert f"redis://127.0.0.1:{redis_port}" in up.stdout, up.stdout
    pids = recorded_pids(state)
    assert {"nginx", "redis", *(f"pylon-{p}" for p in pylon_ports)} == set(pids), pids
    assert all(running(pid) for pid in pids.values()), pids
    for port in pylon_ports:
        with open(f"/proc/{pids[f'pylon-{port}']}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert [b"--engine", b"redis"] == argv[argv.index(b"--engine"):][:2], argv
        assert f"redis://127.0.0.1:{redis_port}".encode() in argv, argv
        assert metric(port, "pylon_engine_up") == 1  # `make stack` returned once it was up
    redis = RedisServer(redis_port)  # the stack's own; only queried with redis-cli
    assert redis.cli("PING") == "PONG"
    assert redis.cli("CONFIG", "GET", "save") == "save" and redis.cli("CONFIG", "GET", "appendonly") == "appendonly\nno"
    assert redis.cli("CONFIG", "GET", "dir") == f"dir\n{state / 'redis'}"

    asyncio.run(fan_out(https_port, state / "tls" / "ca.pem", pylon_ports, redis,
                        env["STACK_REDIS_PREFIX"] + TOPIC))

    down = make("stack-down", env)
    assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
    assert "stopped redis" in down.stdout, down.stdout
    deadline = time.monotonic() + 15
    while any(running(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, {n: p for n, p in pids.items() if running(p)}
        time.sleep(0.1)  # polling process exit
    assert not list((state / "run").glob("*.pid"))
    left = processes_mentioning(str(state), f"127.0.0.1:{redis_port}",
                                *(f"127.0.0.1:{port}" for port in ports))
    assert not left, left
    assert all(port_closed(port) for port in ports), {p: port_closed(p) for p in ports}
    assert time.monotonic() - started < 30
