"""pylon.js through a rolling restart, in a real headless Chromium (issue 15's headline test; the
Python version with 1,000 clients is tests/deploy/test_rolling_restart.py).

`make stack STACK_ENGINE=redis` (support.rolling.RollingStack: three instances on Redis behind the
shipped Nginx, history on the `roll` namespace). One Chromium page on https://localhost:PORT (the
stack's Nginx; Chromium trusts exactly the stack's server key) imports `/pylon.js` through Nginx
and runs 20 clients subscribed with `recover` to one topic over wss through Nginx. One publisher
per instance sends `POST /api/publish` to it at a steady rate. The instances are restarted one
after another with SIGTERM, then the one holding the most clients is SIGKILLed and started again.
Asserted: every client received exactly the offsets 1..N Redis stored, once each and in order,
each acked one with its data; every resubscribe was `recovered:true`; the clients an instance
held were told 1001 by its drain (1006 when it was killed); and each wave of reconnects was
spread in time by the jitter (not all within 100 ms)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import subprocess

import websockets

from support.rolling import Publishers, RollingStack, check_deliveries, roll
from test_dashboard import DevTools, start_chromium  # the one way to drive Chromium

CLIENTS = 20
TOPIC = "roll:browser"
INTERVAL = 0.05  # seconds between two publishes of one publisher: ~60 per second in all
BETWEEN = 40  # acked publications between two restarts
MIN_RECONNECT_MS = 2000  # the first retry after a drop waits a random time up to this
TIMEOUT = 60.0

# window.__js.clients: per client {seen: [[offset, data]], connects: [ms], subscribed: [recovered],
# up}; window.__js.closes: the close code of every connection lost, in order.
SCRIPT = """
(async () => {
  const {Pylon} = await import('/pylon.js');
  const config = %s;
  window.__js = {clients: [], closes: []};
  for (let i = 0; i < config.clients; i++) {
    const state = {seen: [], connects: [], subscribed: [], up: false};
    window.__js.clients.push(state);
    const client = new Pylon('wss://' + location.host + '/ws', {minReconnectDelay: config.minReconnectMs});
    client.on('connected', () => { state.connects.push(performance.now()); state.up = true; });
    client.on('disconnected', (e) => { window.__js.closes.push(e.code); state.up = false; });
    const subscription = client.subscribe(config.topic, {recover: true});
    subscription.on('publication', (p) => state.seen.push([p.offset, p.data]));
    subscription.on('subscribed', (e) => state.subscribed.push(e.recovered));
    client.connect();
  }
})();
true
"""
# Every client connected and its latest connection subscribed.
ALL_SUBSCRIBED = "window.__js && window.__js.clients.every((c) => c.up && c.subscribed.length === c.connects.length)"
CLOSES = "window.__js.closes"


def spki_hash(certificate) -> str:
    """base64 SHA-256 of the certificate's public key: Chromium's --ignore-certificate-errors-spki-list."""
    key = subprocess.run(["openssl", "x509", "-in", str(certificate), "-pubkey", "-noout"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=key,
                         capture_output=True, check=True, timeout=30).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


async def restart(stack: RollingStack, devtools: DevTools, waves: list, port: int, sig: signal.Signals) -> None:
    held = stack.connections(port)
    assert held > 0, f"instance :{port} holds no client: the restart would prove nothing"
    closed_before = await devtools.evaluate(f"{CLOSES}.length")
    started = await devtools.evaluate("performance.now()")
    await asyncio.to_thread(stack.restart, port, sig)
    await devtools.wait_for(f"{CLOSES}.length >= {closed_before + held}",
                            f"the {held} clients of :{port} to see their connection end", timeout=TIMEOUT)
    await devtools.wait_for(ALL_SUBSCRIBED, f"every client back after {sig.name} of :{port}", timeout=TIMEOUT)
    closes = (await devtools.evaluate(CLOSES))[closed_before:]
    expected = 1001 if sig == signal.SIGTERM else 1006
    assert closes == [expected] * held, f"{sig.name} of :{port} holding {held}: closes {closes}"
    waves.append((sig.name, port, started))


async def run(debugger_url: str, stack: RollingStack) -> tuple[Publishers, list[dict], list]:
    async with websockets.connect(debugger_url, max_size=None) as socket:
        devtools = DevTools(socket)
        await devtools.call("Page.enable")
        await devtools.call("Runtime.enable")
        await devtools.call("Page.navigate", url=f"https://localhost:{stack.https_port}/healthz")
        await devtools.wait_for("document.readyState === 'complete' && location.protocol === 'https:'",
                                "the page through Nginx")
        config = {"clients": CLIENTS, "topic": TOPIC, "minReconnectMs": MIN_RECONNECT_MS}
        await devtools.evaluate(SCRIPT % json.dumps(config))
        await devtools.wait_for(ALL_SUBSCRIBED, "every client to subscribe", timeout=TIMEOUT)
        spread = {port: stack.connections(port) for port in stack.pylon_ports}
        assert sum(spread.values()) == CLIENTS and all(spread.values()), spread

        waves: list = []
        publishers = Publishers([("127.0.0.1", port) for port in stack.pylon_ports], [TOPIC], INTERVAL)
        with publishers:
            await roll(stack, publishers, BETWEEN, lambda port, sig: restart(stack, devtools, waves, port, sig),
                       TIMEOUT)
        top = stack.stored_top(TOPIC)
        await devtools.wait_for(f"window.__js.clients.every((c) => c.seen.length && c.seen[c.seen.length - 1][0] >= {top})",
                                "every client to see the last publication", timeout=TIMEOUT)
        clients = json.loads(await devtools.evaluate("JSON.stringify(window.__js.clients)"))
    return publishers, clients, waves


def test_pylon_js_clients_lose_nothing_through_a_rolling_restart(tmp_path):
    stack = RollingStack(tmp_path / "stack")
    try:
        stack.up()
        flags = [f"--ignore-certificate-errors-spki-list={spki_hash(stack.state / 'tls' / 'server.pem')}"]
        with start_chromium(*flags) as debugger_url:
            publishers, clients, waves = asyncio.run(asyncio.wait_for(run(debugger_url, stack), TIMEOUT * 8))
        top = stack.stored_top(TOPIC)
    finally:
        stack.down()

    acked = publishers.acked[TOPIC]
    assert len(acked) >= 5 * BETWEEN and max(acked) <= top, (len(acked), top)
    for index, client in enumerate(clients):
        check_deliveries(f"client {index}", [tuple(p) for p in client["seen"]], top, acked)
        assert client["subscribed"][0] is None and all(r is True for r in client["subscribed"][1:]), client["subscribed"]
    ends = [started for _, _, started in waves[1:]] + [float("inf")]
    for (name, port, started), end in zip(waves, ends):
        times = sorted(t for client in clients for t in client["connects"] if started < t < end)
        buckets = {int(t // 100) for t in times}
        # Full jitter over MIN_RECONNECT_MS: 7 clients in two 100 ms slots would be ~190 * (1/10)^7.
        assert len(buckets) >= 3, f"{name} of :{port}: reconnects at {[round(t - times[0]) for t in times]} ms"
