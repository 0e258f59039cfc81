"""Connection tokens from a real browser (issue 13): headless Chromium (driven over DevTools as in
test_dashboard.py) loads a page of a pylon that requires tokens and opens, from the page's
JavaScript, `new WebSocket(url + '?token=' + jwt)` and `new WebSocket(url, ['pylon.v1',
'pylon.token.' + jwt])` — the two places a browser can put a token. The first subscribes, the
second publishes, the first receives the message; the negotiated protocol is `pylon.v1`, never the
token. A forged token in either place fails the handshake in the browser: Chromium reports the 401
(Network.webSocketFrameError), the page sees an error and close code 1006, and pylon counts two
`bad_signature` refusals. Tokens are minted by PyJWT."""

from __future__ import annotations

import asyncio
import json

import jwt
import websockets

from support.auth import SECRET, grant, secret_file  # noqa: F401
from support.deflate import metrics
from support.server import start_server
from test_dashboard import DevTools, start_chromium  # the one way to drive Chromium

TIMEOUT = 60.0
TOPIC = "browser:room"

# Sets window.__auth to the results once done (or to {error}). %s: the tokens, as JSON.
SCRIPT = """
window.__auth = null;
(async () => {
  const tokens = %s;
  const base = 'ws://' + location.host + '/ws';
  const result = {};
  // Resolves with the open WebSocket, or with {failed: {...}} when its handshake fails.
  const open = (url, protocols) => new Promise((resolve) => {
    const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
    const queue = [];
    let waiter = null, errored = false;
    ws.onmessage = (event) => { if (waiter) { const w = waiter; waiter = null; w(event.data); } else queue.push(event.data); };
    ws.next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiter = r; });
    ws.onopen = () => resolve(ws);
    ws.onerror = () => { errored = true; };
    ws.onclose = (event) => resolve({failed: {code: event.code, wasClean: event.wasClean, error: errored}});
  });
  try {
    const subscriber = await open(base + '?token=' + tokens.subscriber);
    if (subscriber.failed) throw new Error('query token refused: ' + JSON.stringify(subscriber.failed));
    const publisher = await open(base, ['pylon.v1', 'pylon.token.' + tokens.publisher]);
    if (publisher.failed) throw new Error('subprotocol token refused: ' + JSON.stringify(publisher.failed));
    result.queryProtocol = subscriber.protocol;
    result.protocol = publisher.protocol;
    subscriber.send(JSON.stringify({type: 'subscribe', topics: [tokens.topic], id: 1}));
    result.subscribed = JSON.parse(await subscriber.next());
    publisher.send(JSON.stringify({type: 'publish', topic: tokens.topic, data: {from: 'chromium'}, id: 2}));
    result.published = JSON.parse(await publisher.next());
    result.message = JSON.parse(await subscriber.next());
    result.badQuery = (await open(base + '?token=' + tokens.bad)).failed || 'opened';
    result.badProtocol = (await open(base, ['pylon.v1', 'pylon.token.' + tokens.bad])).failed || 'opened';
    subscriber.close(1000);
    publisher.close(1000);
  } catch (error) {
    result.error = String(error);
  }
  window.__auth = result;
})();
true
"""


async def drive(debugger_url: str, server, tokens: dict) -> tuple[dict, list[dict]]:
    host, port = server.address
    async with websockets.connect(debugger_url, max_size=None) as socket:
        devtools = DevTools(socket)
        await devtools.call("Page.enable")
        await devtools.call("Runtime.enable")
        await devtools.call("Network.enable")  # the handshakes as Chromium saw them
        # Any page of the server gives the script its origin; /healthz has no script of its own.
        await devtools.call("Page.navigate", url=f"http://{host}:{port}/healthz")
        await devtools.wait_for("document.readyState === 'complete'", "the page to load")
        await devtools.evaluate(SCRIPT % json.dumps(tokens))
        result = json.loads(await devtools.wait_for("window.__auth && JSON.stringify(window.__auth)",
                                                    "the script", timeout=TIMEOUT))
    return result, devtools.events


def handshakes(events: list[dict]) -> dict[str, dict]:
    """Chromium's view of each WebSocket by request id: url, response (status, headers), error."""
    seen: dict[str, dict] = {}
    for event in events:
        method, params = event["method"], event.get("params", {})
        if not method.startswith("Network.webSocket"):
            continue
        entry = seen.setdefault(params["requestId"], {})
        if method == "Network.webSocketCreated":
            entry["url"] = params["url"]
        elif method == "Network.webSocketWillSendHandshakeRequest":
            entry["request"] = params["request"]["headers"]
        elif method == "Network.webSocketHandshakeResponseReceived":
            entry["status"] = params["response"]["status"]
            entry["response"] = {k.lower(): v for k, v in params["response"]["headers"].items()}
        elif method == "Network.webSocketFrameError":
            entry["error"] = params["errorMessage"]
    return seen


def test_chromium_connects_with_a_token_in_the_query_and_in_the_subprotocol(secret_file):
    good = jwt.encode(grant(), SECRET, algorithm="HS256")
    tokens = {
        "topic": TOPIC,
        "subscriber": jwt.encode(grant(subscribe=["browser:*"]), SECRET, algorithm="HS256"),
        "publisher": jwt.encode(grant(publish=["browser:*"], sub="user-2"), SECRET, algorithm="HS256"),
        # Another token's signature: only the signature check can refuse it.
        "bad": good.rsplit(".", 1)[0] + "." + jwt.encode(grant(sub="x"), SECRET, algorithm="HS256").rsplit(".", 1)[1],
    }
    with start_server("--auth-hmac-secret-file", secret_file) as server, start_chromium() as debugger_url:
        result, events = asyncio.run(asyncio.wait_for(drive(debugger_url, server, tokens), TIMEOUT * 2))
        refused = metrics(server.address)['pylon_auth_failures_total{reason="bad_signature"}']
    assert "error" not in result, result
    assert result["queryProtocol"] == "", result  # none asked for, none answered
    assert result["protocol"] == "pylon.v1", result  # never the token
    assert result["subscribed"] == {"type": "ack", "id": 1}, result
    assert result["published"] == {"type": "ack", "id": 2}, result
    assert result["message"]["type"] == "message" and result["message"]["topic"] == TOPIC, result
    assert result["message"]["data"] == {"from": "chromium"}, result
    for failed in (result["badQuery"], result["badProtocol"]):
        assert failed != "opened", result
        assert failed == {"code": 1006, "wasClean": False, "error": True}, result
    assert refused == 2

    seen = list(handshakes(events).values())
    opened = [h for h in seen if h.get("status") == 101]
    assert len(opened) == 2, seen
    answered = [h["response"].get("sec-websocket-protocol") for h in opened]
    assert sorted(answered, key=str) == sorted([None, "pylon.v1"], key=str), opened
    # Chromium's own words for the 401 (with its Bearer challenge) that failed the handshake.
    errors = [h for h in seen if "error" in h]
    assert len(errors) == 2, seen
    assert all("HTTP Authentication failed" in h["error"] for h in errors), errors
    assert [h["url"].endswith("?token=" + tokens["bad"]) for h in errors].count(True) == 1, errors
    assert any("pylon.token." + tokens["bad"] in h["request"].get("Sec-WebSocket-Protocol", "")
               for h in errors), errors
