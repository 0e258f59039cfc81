"""Rolling restarts of the `make stack STACK_ENGINE=redis` topology under steady publishing (the
headline tests of issues 14 and 15, tests/deploy/test_rolling_restart.py and
tests/browser/test_pylon_js_stack.py):

- `RollingStack`: the stack (three instances on Redis behind the shipped Nginx) started with
  `make stack`, with a history namespace, the backend API, and `restart(port, signal)`: SIGTERM
  (the instance drains) or SIGKILL, then `make stack` again, which starts only what is missing and
  returns once the instance is healthy and its engine up.
- `Publishers`: one thread per instance publishing through `POST /api/publish` straight to it at a
  steady rate, round robin over the topics, keeping what was ACKED (topic -> {offset: data}).
- `Subscriber`: an asyncio client (Python `websockets`) that stays subscribed through Nginx: it
  reconnects with exponential backoff and full jitter and resubscribes with `recover` from the last
  offset and epoch it saw, and keeps every publication, ack and close code.
- `check_deliveries`: every publication Redis stored (acked or not) reached the subscriber exactly
  once and in offset order, each acked one with the data that was acked.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Optional

from support.deflate import metrics
from support.pubsub import dumps, http_publish, request_text
from support.redis import RedisServer, require_redis
from support.server import free_ports, poll, pylon_bin
from support.stack import make, recorded_pids, running
from support.wsclient import ConnectionClosed

API_KEY = "rolling-restart-key"
NAMESPACE = "roll"
# History covering every outage of a test run many times over (size per topic, TTL in seconds).
HISTORY_SIZE = 10000
HISTORY_TTL = 600


class RollingStack:
    def __init__(self, state: Path):
        require_redis()
        ports = free_ports(6)
        self.state = state
        self.https_port, self.pylon_ports, self.redis_port = ports[0], ports[2:5], ports[5]
        self.prefix = f"roll{os.getpid()}:"
        state.mkdir(parents=True, exist_ok=True)
        config = state / "pylon.toml"
        config.write_text(f"max_publish_rate = 100000\n[namespaces.{NAMESPACE}]\n"
                          f"history_size = {HISTORY_SIZE}\nhistory_ttl = {HISTORY_TTL}\n")
        self.env = {"STACK_DIR": str(state), "PYLON_BIN": pylon_bin(),
                    "STACK_HTTPS_PORT": str(ports[0]), "STACK_HTTP_PORT": str(ports[1]),
                    "STACK_PYLON_PORTS": " ".join(map(str, self.pylon_ports)),
                    "STACK_REDIS_PORT": str(self.redis_port), "STACK_ENGINE": "redis",
                    "STACK_REDIS_PREFIX": self.prefix, "STACK_API_KEY": API_KEY,
                    "STACK_OBSERVABILITY": "0", "STACK_PYLON_CONFIG": str(config)}
        self.redis = RedisServer(self.redis_port)  # the stack's own; only queried with redis-cli

    @property
    def ca(self) -> Path:
        return self.state / "tls" / "ca.pem"

    def up(self) -> None:
        result = make("stack", self.env)
        assert result.returncode == 0, f"make stack:\n{result.stdout}\n{result.stderr}"

    def down(self) -> None:
        make("stack-down", self.env)

    def pid(self, port: int) -> int:
        return recorded_pids(self.state)[f"pylon-{port}"]

    def connections(self, port: int) -> int:
        """The /ws connections the instance holds, from its own /metrics (not through Nginx)."""
        return int(metrics(("127.0.0.1", port)).get('pylon_connections{endpoint="/ws"}', 0))

    def restart(self, port: int, sig: signal.Signals) -> None:
        pid = self.pid(port)
        os.kill(pid, sig)
        # SIGTERM: the drain closes every WebSocket with 1001 over drain_window (1 s in the stack).
        poll(lambda: not running(pid), 30, f"pylon :{port} to exit after {sig.name}")
        self.up()

    def stored_top(self, topic: str) -> int:
        """The topic's latest offset as Redis stored it (docs/cluster.md "Keys")."""
        value = self.redis.cli("HGET", f"{self.prefix}history-meta:{topic}", "top")
        return int(value) if value else 0


class Publishers:
    """One thread per address: publishes round robin over `topics` every `interval` seconds
    through POST /api/publish; `acked[topic][offset]` is the data of each 200 answer. A refused
    publish (the instance down or draining) or one without an answer (the instance killed while
    it was out) is simply not acked."""

    def __init__(self, addresses: list[tuple[str, int]], topics: list[str], interval: float):
        self.topics = topics
        self.interval = interval
        self.acked: dict[str, dict[int, str]] = {topic: {} for topic in topics}
        self.refused = 0
        self.unanswered: list[str] = []  # "port: error" of each publish that got no answer at all
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(address,), daemon=True)
                        for address in addresses]

    def __enter__(self) -> "Publishers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive(), "a publisher thread did not stop"

    def count(self) -> int:
        with self.lock:
            return sum(len(acked) for acked in self.acked.values())

    def _run(self, address: tuple[str, int]) -> None:
        n = 0
        while not self.stopping.is_set():
            topic = self.topics[n % len(self.topics)]
            data = f"{address[1]}-{n}"
            n += 1
            began = time.time()
            try:
                response = http_publish(address, dumps({"topic": topic, "data": data}), API_KEY, timeout=10)
            except ConnectionRefusedError:
                response = None  # the instance is down
            except (OSError, ConnectionClosed) as error:
                response = None
                self.unanswered.append(f"{address[1]}: {error!r} (sent at {began:.3f}, {time.time() - began:.3f} s)")
            with self.lock:
                if response is not None and response.status == 200:
                    self.acked[topic][json.loads(response.body)["offset"]] = data
                else:
                    self.refused += 1
            self.stopping.wait(self.interval)  # the steady rate


def check_deliveries(name: str, seen: list[tuple[int, str]], top: int, acked: dict[int, str]) -> None:
    """`seen` (offset, data) in arrival order must be exactly offsets 1..top, and every acked
    offset must carry the data that was acked."""
    offsets = [offset for offset, _ in seen]
    if offsets != list(range(1, top + 1)):
        counts: dict[int, int] = {}
        for offset in offsets:
            counts[offset] = counts.get(offset, 0) + 1
        duplicated = sorted(o for o, c in counts.items() if c > 1)
        missing = sorted(set(range(1, top + 1)) - set(counts))
        out_of_order = [(a, b) for a, b in zip(offsets, offsets[1:]) if b <= a]
        raise AssertionError(f"{name}: {len(offsets)} publications for offsets 1..{top}; missing "
                             f"{missing[:20]}, duplicated {duplicated[:20]}, out of order {out_of_order[:10]}")
    wrong = {offset: (data, acked[offset]) for offset, data in seen if offset in acked and data != acked[offset]}
    assert not wrong, f"{name}: offsets delivered with other data than was acked: {list(wrong.items())[:10]}"


class Subscriber:
    """One client of /ws through Nginx on one topic with history, kept subscribed (see the module
    docstring). Full jitter: each retry waits a random time up to min(max_delay, base * 2^n)."""

    def __init__(self, url: str, ssl_context, topic: str, base_delay: float = 0.5, max_delay: float = 5.0):
        self.url = url
        self.ssl = ssl_context
        self.topic = topic
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.seen: list[tuple[int, str]] = []  # (offset, data) in arrival order
        self.offset = 0  # the last offset seen (or the position an ack gave)
        self.epoch: Optional[str] = None  # None until the first subscribe's ack
        self.recovered: list[Optional[bool]] = []  # per subscribe ack: None (first), True, False
        self.closes: list[int] = []  # close code of each connection lost (1006: no close frame)
        self.connects: list[float] = []  # time.monotonic() of each connection opened
        self.errors: list[str] = []
        self.subscribed = asyncio.Event()
        self.requests = 0

    def subscribe_text(self) -> str:
        self.requests += 1
        raw = []
        if self.epoch is not None:
            raw = [("recover", dumps({self.topic: {"offset": self.offset, "epoch": self.epoch}}))]
        return request_text("subscribe", topics=[self.topic], raw=raw, id=self.requests).decode()

    def on_frame(self, text: str) -> None:
        value = json.loads(text)
        if value.get("type") == "message":
            self.seen.append((value["offset"], value["data"]))
            self.offset = value["offset"]
        elif value.get("type") == "ack" and "positions" in value:
            position = value["positions"][self.topic]
            self.recovered.append(position.get("recovered"))
            # recovered:false: what was missed is unknown; a real client reloads its state here.
            self.offset, self.epoch = position["offset"], position["epoch"]
            self.subscribed.set()
        else:
            self.errors.append(text)

    async def run(self) -> None:
        """Until cancelled."""
        import websockets

        attempt = 0
        while True:
            try:
                async with websockets.connect(self.url, ssl=self.ssl, open_timeout=10, close_timeout=2,
                                              ping_interval=None, max_queue=None) as ws:
                    self.connects.append(time.monotonic())
                    await ws.send(self.subscribe_text())
                    while True:
                        self.on_frame(await ws.recv())
                        if self.subscribed.is_set():
                            attempt = 0
            except websockets.exceptions.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else 1006)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake):
                self.closes.append(1006)
            self.subscribed.clear()
            delay = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))
            attempt += 1
            await asyncio.sleep(delay)  # the backoff itself, not a wait for an event


async def until(condition, timeout: float, what: str) -> None:
    """Polls `condition` from the event loop (the clients keep running meanwhile); fails naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.05)  # polling interval


async def roll(stack: RollingStack, publishers: Publishers, between: int, restart, timeout: float) -> None:
    """The plan of both headline tests, under `publishers`' steady publishing: SIGTERM each
    instance in turn, then SIGKILL the one holding the most clients, `between` acked publications
    before each and after the last. `restart(port, signal)` (async) restarts one instance and
    returns once its clients are back."""
    plan = [(port, signal.SIGTERM) for port in stack.pylon_ports] + [(None, signal.SIGKILL)]
    for port, sig in plan + [(None, None)]:
        wanted = publishers.count() + between
        await until(lambda: publishers.count() >= wanted, timeout, f"{between} publications acked")
        if sig is None:
            return
        port = port or max(stack.pylon_ports, key=stack.connections)
        unanswered = len(publishers.unanswered)
        await restart(port, sig)
        if sig == signal.SIGTERM:  # a drain answers every request it took (a SIGKILL cannot)
            assert publishers.unanswered[unanswered:] == [], \
                f"publishes unanswered by the drain of :{port}: {publishers.unanswered[unanswered:]}"
