"""The live dashboard at `/` (docs/dashboard.md) in a real headless Chromium.

Chromium is driven through the DevTools protocol over its WebSocket (no selenium): the test
navigates to the page, waits for a condition on the page by polling `Runtime.evaluate`
(`--virtual-time-budget` would not wait for WebSocket traffic), opens 20 connections and sends
messages, and checks that the numbers on the page move. Screenshots go to the build directory:
$PYLON_BUILD_DIR, or the directory of $PYLON_BIN.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

import pytest
import websockets

from support.server import free_port, pylon_bin, start_server

TIMEOUT = 30.0
LOAD_CONNECTIONS = 20


def build_dir() -> Path:
    return Path(os.environ.get("PYLON_BUILD_DIR") or Path(pylon_bin()).resolve().parent)


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: scripts/deps.sh installs Debian's chromium", pytrace=False)


def trusting_home(profile: Path, ca: Path) -> dict:
    """The environment of a Chromium that trusts `ca` as a root for servers, and only for this
    run: Chromium on Linux reads its roots from the NSS database $HOME/.pki/nssdb, so HOME is a
    directory of the profile with a database holding `ca` (certutil, libnss3-tools)."""
    nssdb = profile / "home" / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    for argv in (["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"],
                 ["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "pylon test CA", "-t", "C,,", "-i", str(ca)]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return {**os.environ, "HOME": str(profile / "home")}


@contextlib.contextmanager
def start_chromium(*flags: str, trust_ca: Optional[Path] = None):
    """Headless Chromium with a fresh profile and a DevTools port on 127.0.0.1, plus `flags`;
    stopped by PID. `trust_ca`: a CA certificate (PEM) it trusts for https:// and wss://
    (trusting_home)."""
    profile = Path(tempfile.mkdtemp(prefix="pylon-chromium-"))
    env = trusting_home(profile, trust_ca) if trust_ca is not None else None
    port = free_port()
    argv = [chromium_binary(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
            "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}", *flags, "about:blank"]
    with open(profile / "chromium.log", "wb") as log:
        # A session of its own: Chromium's helper processes (renderer, zygote) are in its group.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                env=env)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chromium exited with {proc.returncode}:\n"
                            + (profile / "chromium.log").read_text(errors="replace")[-4000:], pytrace=False)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                    pages = [t for t in json.load(answer) if t.get("type") == "page"]
                if pages:
                    yield pages[0]["webSocketDebuggerUrl"]
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chromium's DevTools endpoint did not answer", pytrace=False)
            time.sleep(0.1)  # polling interval for the DevTools endpoint to come up
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


class DevTools:
    """A minimal DevTools protocol client: commands by id; the events that arrive meanwhile are
    kept in `events`, in order (a domain sends its events once enabled, e.g. Network.enable)."""

    def __init__(self, socket):
        self.socket = socket
        self.next_id = 0
        self.events: list[dict] = []

    async def call(self, method: str, **params):
        self.next_id += 1
        request_id = self.next_id
        await self.socket.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), TIMEOUT))
            if "method" in message:
                self.events.append(message)
            if message.get("id") != request_id:
                continue
            if "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            return message["result"]

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = TIMEOUT):
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                state = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"timed out waiting for {what}; the page shows:\n{state}")
            await asyncio.sleep(0.2)  # polling interval, not a wait for something we could observe

    async def screenshot(self, path: Path) -> bytes:
        result = await self.call("Page.captureScreenshot", format="png")
        data = base64.b64decode(result["data"])
        path.write_bytes(data)
        return data


@contextlib.asynccontextmanager
async def page_of(debugger_url: str, server=None, path: str = "/healthz", url: str = ""):
    """DevTools on a page of `server` (by default /healthz, which has no script of its own), or on
    `url`: the origin from which a test's script opens WebSockets or imports /pylon.js."""
    if not url:
        host, port = server.address
        url = f"http://{host}:{port}{path}"
    async with websockets.connect(debugger_url, max_size=None) as socket:
        devtools = DevTools(socket)
        await devtools.call("Page.enable")
        await devtools.call("Runtime.enable")
        await devtools.call("Page.navigate", url=url)
        await devtools.wait_for("document.readyState === 'complete'", "the page to load")
        yield devtools


def page_number(element_id: str) -> str:
    """JavaScript: the raw number a tile shows (its data-value), or NaN before the first update."""
    return f"(() => {{ const e = document.getElementById('{element_id}'); " \
           f"return e && e.dataset.value !== undefined && e.dataset.value !== '' ? Number(e.dataset.value) : NaN; }})()"


async def generate_load(host: str, port: int, stop: asyncio.Event, opened: asyncio.Event):
    """20 connections on /ws, each subscribed to a topic and publishing to it 20 times a second."""
    clients = []
    try:
        for _ in range(LOAD_CONNECTIONS):
            client = await websockets.connect(f"ws://{host}:{port}/ws", max_size=None)
            await client.send(json.dumps({"type": "subscribe", "topics": ["load/test"], "id": 1}))
            clients.append(client)
        for client in clients:
            assert json.loads(await asyncio.wait_for(client.recv(), TIMEOUT)) == {"type": "ack", "id": 1}
        opened.set()

        async def drain(client):
            with contextlib.suppress(websockets.ConnectionClosed):
                async for _ in client:
                    pass

        readers = [asyncio.create_task(drain(client)) for client in clients]
        sequence = 0
        while not stop.is_set():
            for client in clients:
                sequence += 1
                await client.send(json.dumps({"type": "publish", "topic": "load/test", "data": {"n": sequence}}))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
        for reader in readers:
            reader.cancel()
    finally:
        for client in clients:
            await client.close()


async def drive_dashboard(debugger_url: str, server) -> dict:
    host, port = server.address
    out = build_dir()
    results = {}
    async with websockets.connect(debugger_url, max_size=None) as socket:
        devtools = DevTools(socket)
        await devtools.call("Page.enable")
        await devtools.call("Runtime.enable")
        await devtools.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1,
                            mobile=False)
        await devtools.call("Page.navigate", url=f"http://{host}:{port}/")

        # The page loads, its script runs, it subscribes and shows the first stats.
        await devtools.wait_for("document.body && document.body.dataset.state === 'live'", "the page to go live")
        await devtools.wait_for(f"{page_number('stat-connections')} >= 1", "the page's own connection")
        results["version"] = await devtools.evaluate("document.getElementById('version').textContent")

        stop, opened = asyncio.Event(), asyncio.Event()
        load = asyncio.create_task(generate_load(host, port, stop, opened))
        try:
            await asyncio.wait_for(opened.wait(), TIMEOUT)
            results["connections"] = await devtools.wait_for(
                f"(() => {{ const n = {page_number('stat-connections')}; return n >= {LOAD_CONNECTIONS} ? n : 0; }})()",
                f"{LOAD_CONNECTIONS} connections on the page")
            results["messages_in"] = await devtools.wait_for(
                f"(() => {{ const n = {page_number('stat-messages-in')}; return n > 0 ? n : 0; }})()",
                "messages in per second above zero")
            results["messages_out"] = await devtools.wait_for(
                f"(() => {{ const n = {page_number('stat-messages-out')}; return n > 0 ? n : 0; }})()",
                "messages out per second above zero")
            # A few more updates so the charts have a line to show.
            updates = int(await devtools.evaluate("document.body.dataset.updates"))
            await devtools.wait_for(f"Number(document.body.dataset.updates) >= {updates + 3}", "three more updates")
            results["texts"] = await devtools.evaluate(
                "({connections: document.getElementById('stat-connections').textContent,"
                " messagesIn: document.getElementById('stat-messages-in').textContent,"
                " topics: document.getElementById('stat-topics').textContent,"
                " uptime: document.getElementById('stat-uptime').textContent,"
                " status: document.getElementById('status').textContent})")
            # The connections chart has drawn its line: pixels of the series colour on the canvas.
            results["line_pixels"] = await devtools.evaluate("""(() => {
                const canvas = document.getElementById('chart-connections');
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let count = 0;
                for (let i = 0; i < data.length; i += 4)
                  if (data[i + 2] > 150 && data[i] < 120 && data[i + 3] > 200) count++;  // blue-ish
                return count; })()""")
            results["wide_png"] = out / "dashboard.png"
            results["wide"] = await devtools.screenshot(results["wide_png"])

            # A narrow window (a phone): nothing sticks out sideways.
            await devtools.call("Emulation.setDeviceMetricsOverride", width=390, height=1400, deviceScaleFactor=1,
                                mobile=True)
            await devtools.wait_for("document.documentElement.clientWidth === 390", "the narrow layout")
            updates = int(await devtools.evaluate("document.body.dataset.updates"))
            await devtools.wait_for(f"Number(document.body.dataset.updates) >= {updates + 1}", "a redraw")
            results["overflow"] = await devtools.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            results["narrow_png"] = out / "dashboard-narrow.png"
            results["narrow"] = await devtools.screenshot(results["narrow_png"])
        finally:
            stop.set()
            await asyncio.wait_for(load, TIMEOUT)
    return results


def test_dashboard_in_chromium():
    with start_server() as server, start_chromium() as debugger_url:
        results = asyncio.run(drive_dashboard(debugger_url, server))

    assert results["version"] and results["version"] != "—"
    assert results["connections"] >= LOAD_CONNECTIONS
    assert results["messages_in"] > 0 and results["messages_out"] > 0
    texts = results["texts"]
    assert int(texts["connections"].replace(",", "")) >= LOAD_CONNECTIONS, texts
    assert texts["messagesIn"] not in ("—", "0"), texts
    assert texts["topics"] not in ("—", "0"), texts  # pylon/stats and load/test
    assert texts["uptime"].endswith("s") or texts["uptime"].endswith("m"), texts
    assert texts["status"] == "live", texts
    assert results["line_pixels"] > 50, "the connections chart drew no line"
    assert results["overflow"] <= 0, "the page is wider than a 390 px window"
    for name in ("wide", "narrow"):
        png = results[name]
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert results[f"{name}_png"].stat().st_size > 20_000, "a nearly empty screenshot"


def http_get(server, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(*server.address, timeout=TIMEOUT)
    connection.request("GET", path)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def test_assets_are_served_with_types_and_cache_control():
    with start_server() as server:
        expected = {"/": "text/html", "/dashboard.js": "text/javascript", "/dashboard.css": "text/css",
                    "/pylon.js": "text/javascript"}
        for path, content_type in expected.items():
            response = http_get(server, path)
            assert response.status == 200, path
            assert response.getheader("Content-Type").startswith(content_type), path
            assert response.getheader("Cache-Control") == "no-cache", path
            assert response.getheader("X-Content-Type-Options") == "nosniff", path
            assert len(response.body) > 500, path
            # Static and public: a page of any origin may import /pylon.js (a CORS fetch).
            assert response.getheader("Access-Control-Allow-Origin") == "*", path
        page = http_get(server, "/").body.decode()
        assert '<script type="module" src="/dashboard.js"' in page and 'href="/dashboard.css"' in page
        assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no CDN, nothing external
        assert http_get(server, "/dashboard.nope").status == 404


def test_stats_stream_on_the_topic():
    async def scenario(host, port):
        async with websockets.connect(f"ws://{host}:{port}/ws") as socket:
            await socket.send(json.dumps({"type": "subscribe", "topics": ["pylon/stats"], "id": "s"}))
            assert json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT)) == {"type": "ack", "id": "s"}
            first = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
            second = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
            return first, second

    with start_server() as server:
        first, second = asyncio.run(scenario(*server.address))
    for message in (first, second):
        assert message["type"] == "message" and message["topic"] == "pylon/stats"
    stats = second["data"]
    assert stats["connections"] == 1 and stats["connections_by_endpoint"]["/ws"] == 1
    assert stats["topics"] == 1 and stats["subscriptions"] == 1
    assert stats["version"] and stats["uptime_seconds"] >= 0
    assert stats["messages_out_per_second"] > 0  # the first stats message went out to us
    assert 900 <= second["data"]["time"] - first["data"]["time"] <= 3000  # once a second
    for key in ("messages_in_per_second", "ping_rtt_p50_seconds", "ping_rtt_p99_seconds", "handling_p99_seconds",
                "errors_total", "resident_memory_bytes"):
        assert key in stats


def test_dashboard_can_be_turned_off():
    async def scenario(host, port):
        async with websockets.connect(f"ws://{host}:{port}/ws") as socket:
            await socket.send(json.dumps({"type": "subscribe", "topics": ["pylon/stats"], "id": "s"}))
            assert json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT)) == {"type": "ack", "id": "s"}
            with pytest.raises(asyncio.TimeoutError):  # stats come once a second when it is on
                await asyncio.wait_for(socket.recv(), 2.5)

    with start_server("--dashboard", "false") as server:
        for path in ("/dashboard.js", "/dashboard.css", "/pylon.js"):
            assert http_get(server, path).status == 404, path
        # No page: / is the echo endpoint alone, which wants an upgrade.
        root = http_get(server, "/")
        assert root.status == 426 and b"<html" not in root.body.lower(), root.body[:200]
        asyncio.run(scenario(*server.address))
