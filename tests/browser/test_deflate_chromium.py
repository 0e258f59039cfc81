"""permessage-deflate with a real browser: headless Chromium (driven over DevTools as in
test_dashboard.py) loads pylon's own page, opens `new WebSocket('ws://127.0.0.1:PORT/...')` from
it, and the page's JavaScript checks `ws.extensions` and echoes a 100 KB compressible string and a
1 MB binary message; on /ws it interleaves error replies and broadcasts on one connection. The
results come back through Runtime.evaluate; /metrics must show compressed traffic both ways.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from support.deflate import compression_counters
from support.server import start_server
from test_dashboard import page_of, start_chromium  # the one way to drive Chromium

SHARED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
# Chromium offers "permessage-deflate; client_max_window_bits".
ANSWERS = {"shared": SHARED + "; client_max_window_bits=15",
           "dedicated": "permessage-deflate; client_max_window_bits=15"}
TIMEOUT = 60.0

# Sets window.__deflateEcho to the results once done (or to {error}).
ECHO_SCRIPT = """
window.__deflateEcho = null;
(async () => {
  const result = {};
  try {
    const ws = new WebSocket('ws://' + location.host + '/ws/echo');
    ws.binaryType = 'arraybuffer';
    await new Promise((ok, ko) => { ws.onopen = ok; ws.onerror = () => ko(new Error('error before open')); });
    result.extensions = ws.extensions;
    const queue = [];
    let waiter = null;
    ws.onmessage = (event) => { if (waiter) { const w = waiter; waiter = null; w(event.data); } else queue.push(event.data); };
    ws.onclose = (event) => { result.closedEarly = event.code; if (waiter) waiter(null); };
    const next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiter = r; });

    let text = '';
    const unit = '{"symbol":"ABC","price":101.25,"note":"\\u00b5\\u20ac\\ud83d\\ude00"} ';
    while (text.length + unit.length <= 100000) text += unit;  // whole units: no lone surrogate
    ws.send(text);
    const textReply = await next();
    result.text = textReply === text;
    result.textLength = typeof textReply === 'string' ? textReply.length : -1;

    const binary = new Uint8Array(1 << 20);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 7) % 251;
    crypto.getRandomValues(binary.subarray(0, 65536));  // some incompressible bytes too
    ws.send(binary);
    const binaryReply = await next();
    const received = binaryReply instanceof ArrayBuffer ? new Uint8Array(binaryReply) : null;
    result.binaryLength = received ? received.length : -1;
    result.binary = received !== null && received.length === binary.length && received.every((b, i) => b === binary[i]);

    for (const small of ['', 'x', 'y'.repeat(63), 'z'.repeat(64)]) {
      ws.send(small);
      if ((await next()) !== small) result.small = 'differs at length ' + small.length;
    }
    result.small = result.small || true;
    const closed = new Promise((r) => { ws.onclose = (event) => r(event.code); });
    ws.close(1000);
    result.closeCode = await closed;
  } catch (error) {
    result.error = String(error);
  }
  window.__deflateEcho = result;
})();
true
"""

# On /ws: a bad request (its error reply is > 64 bytes, compressed as a direct reply), then a
# publish to a topic the page is subscribed to (the broadcast comes back), five times.
PUBSUB_SCRIPT = """
window.__deflatePubSub = null;
(async () => {
  const result = {rounds: []};
  try {
    const ws = new WebSocket('ws://' + location.host + '/ws');
    await new Promise((ok, ko) => { ws.onopen = ok; ws.onerror = () => ko(new Error('error before open')); });
    result.extensions = ws.extensions;
    const queue = [];
    let waiter = null;
    ws.onmessage = (event) => { if (waiter) { const w = waiter; waiter = null; w(event.data); } else queue.push(event.data); };
    ws.onclose = (event) => { result.closed = event.code; if (waiter) waiter(null); };
    const next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiter = r; });
    ws.send(JSON.stringify({type: 'subscribe', topics: ['browser/deflate'], id: 1}));
    result.ack = await next();
    for (let i = 0; i < 5; i++) {
      ws.send('{"type":"no-such-type","id":"a-long-enough-request-id"}');
      const error = await next();
      const data = {round: i, items: Array.from({length: 10}, (_, k) => ({symbol: 'SYM' + k, price: 100 + k}))};
      ws.send(JSON.stringify({type: 'publish', topic: 'browser/deflate', data}));
      const message = await next();
      let ok = false;
      try {
        const parsed = JSON.parse(message);
        ok = parsed.type === 'message' && JSON.stringify(parsed.data) === JSON.stringify(data);
      } catch (e) {}
      result.rounds.push({error: String(error).slice(0, 200), errorOk: typeof error === 'string' && error.includes('unknown_type'),
                          messageOk: ok});
      if (result.closed !== undefined) break;
    }
    ws.onclose = null;
    ws.close(1000);
  } catch (error) {
    result.error = String(error);
  }
  window.__deflatePubSub = result;
})();
true
"""


async def drive(debugger_url: str, server) -> dict:
    async with page_of(debugger_url, server, "/") as devtools:
        await devtools.evaluate(ECHO_SCRIPT)
        echo = json.loads(await devtools.wait_for("window.__deflateEcho && JSON.stringify(window.__deflateEcho)",
                                                  "the echo script", timeout=TIMEOUT))
        await devtools.evaluate(PUBSUB_SCRIPT)
        pubsub = json.loads(await devtools.wait_for("window.__deflatePubSub && JSON.stringify(window.__deflatePubSub)",
                                                    "the pub/sub script", timeout=TIMEOUT))
    return {"echo": echo, "pubsub": pubsub}


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_chromium_negotiates_and_echoes(mode):
    with start_server("--compression", mode) as server, start_chromium() as debugger_url:
        before = compression_counters(server.address)
        results = asyncio.run(asyncio.wait_for(drive(debugger_url, server), TIMEOUT * 2))
        after = compression_counters(server.address)
    echo = results["echo"]
    assert "error" not in echo, echo
    assert echo["extensions"] == ANSWERS[mode], echo
    assert echo["text"] is True, echo
    assert echo["binary"] is True, echo
    assert echo["small"] is True, echo
    assert echo["closeCode"] == 1000 and "closedEarly" not in echo, echo
    delta = {key: after[key] - before[key] for key in after}
    # Chromium compresses what it sends, pylon what it echoes: 100 KB of text and 1 MiB of bytes.
    assert delta["uncompressed_in"] >= 99_000 + (1 << 20), delta
    assert delta["uncompressed_out"] >= 99_000 + (1 << 20), delta
    assert 0 < delta["compressed_in"] < delta["uncompressed_in"] / 2, delta
    assert 0 < delta["compressed_out"] < delta["uncompressed_out"] / 2, delta

    pubsub = results["pubsub"]
    assert "error" not in pubsub, pubsub
    assert pubsub["extensions"] == ANSWERS[mode], pubsub
    assert json.loads(pubsub["ack"]) == {"type": "ack", "id": 1}, pubsub
    assert len(pubsub["rounds"]) == 5 and "closed" not in pubsub, pubsub
    for i, round_ in enumerate(pubsub["rounds"]):
        assert round_["errorOk"] and round_["messageOk"], f"round {i}: {round_} (all: {pubsub})"
