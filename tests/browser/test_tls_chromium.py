"""Headless Chromium over wss:// to `pylon serve` with native TLS (issue 16), trusting the local CA
of deploy/tls/local-ca.sh the way a user's browser trusts a CA: the CA is in the NSS database
Chromium reads (test_dashboard.trusting_home), not waved through with
--ignore-certificate-errors.

The page is pylon's own, loaded from https://localhost:PORT/ (so the navigation itself proves
the certificate is trusted: an untrusted one stops at an error page); its JavaScript opens
`new WebSocket('wss://…/ws/echo')` and echoes text and binary messages. A second server with a
certificate from another CA is refused by the same browser: the check is real.
"""

from __future__ import annotations

import asyncio
import json


from support.nginx import local_ca
from support.tls import start_tls_server
from test_dashboard import TIMEOUT, page_of, start_chromium  # the one way to drive Chromium

# Sets window.__wss to the results once done: each URL's outcome.
ECHO_SCRIPT = """
window.__wss = null;
(async () => {
  const echo = async (url) => {
    const result = {};
    try {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      await new Promise((ok, ko) => { ws.onopen = ok; ws.onerror = () => ko(new Error('error before open')); });
      const replies = [];
      let waiter = null;
      ws.onmessage = (event) => { replies.push(event.data); if (waiter) waiter(); };
      const next = async () => { while (!replies.length) await new Promise((r) => { waiter = r; }); return replies.shift(); };
      ws.send('over TLS \\u00b5');
      result.text = await next();
      ws.send(new Uint8Array([0, 1, 254, 255]));
      result.binary = Array.from(new Uint8Array(await next()));
      const closed = new Promise((r) => { ws.onclose = (event) => r(event.code); });
      ws.close(1000);
      result.closeCode = await closed;
    } catch (error) {
      result.error = String(error);
    }
    return result;
  };
  window.__wss = {trusted: await echo(TRUSTED), untrusted: await echo(UNTRUSTED)};
})();
true
"""


async def drive(debugger_url: str, trusted_port: int, untrusted_port: int) -> dict:
    async with page_of(debugger_url, url=f"https://localhost:{trusted_port}/") as devtools:
        page = {"protocol": await devtools.evaluate("location.protocol"),
                "title": await devtools.evaluate("document.title")}
        script = (ECHO_SCRIPT.replace("TRUSTED", json.dumps(f"wss://localhost:{trusted_port}/ws/echo"), 1)
                  .replace("UNTRUSTED", json.dumps(f"wss://localhost:{untrusted_port}/ws/echo"), 1))
        await devtools.evaluate(script)
        results = json.loads(await devtools.wait_for("window.__wss && JSON.stringify(window.__wss)",
                                                     "the wss:// echo script"))
    return {"page": page, **results}


def test_chromium_trusting_the_local_ca_echoes_over_wss(tmp_path):
    ca = local_ca(tmp_path / "ca")
    other = local_ca(tmp_path / "other-ca")  # a CA the browser does not know
    with start_tls_server(ca) as trusted, start_tls_server(other) as untrusted, \
            start_chromium(trust_ca=ca / "ca.pem") as debugger_url:
        results = asyncio.run(asyncio.wait_for(
            drive(debugger_url, trusted.server.port, untrusted.server.port), TIMEOUT * 2))
        handshakes = trusted.metric("pylon_tls_handshakes_total", result="full")
    assert results["page"]["protocol"] == "https:" and results["page"]["title"], results
    echoed = results["trusted"]
    assert "error" not in echoed, results
    assert echoed["text"] == "over TLS \u00b5", echoed
    assert echoed["binary"] == [0, 1, 254, 255], echoed
    assert echoed["closeCode"] == 1000, echoed
    assert handshakes >= 1
    assert results["untrusted"] == {"error": "Error: error before open"}, results
