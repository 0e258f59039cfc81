#!/usr/bin/env python3
"""pylon.js (issue 15): its size, and how many messages per second one Chromium tab receives.

Size: minified by Debian's esbuild when it is installed (scripts/deps.sh), then gzip -9; the
source gzipped too. Throughput: a headless Chromium tab imports /pylon.js from a `pylon serve` on
127.0.0.1 and subscribes to one topic; a Python `websockets` publisher sends COUNT publications
(without ids: no acks) as fast as the server takes them; the page times the first to the last
publication it receives through the client's 'publication' event (JSON parsing included).

    PYLON_BIN=build/pylon /usr/bin/python3 bench/js_client.py [--count 200000] [--size 64]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "browser"))
from support.server import start_server  # noqa: E402  the one way to start a server
from test_dashboard import page_of, start_chromium  # noqa: E402  the one way to drive Chromium

SOURCE = REPO / "clients" / "js" / "pylon.js"
TOPIC = "bench"

PAGE_SCRIPT = """
(async () => {
  const {Pylon} = await import('/pylon.js');
  const count = %d;
  window.__bench = {received: 0};
  const client = new Pylon('ws://' + location.host + '/ws');
  const subscription = client.subscribe('%s');
  subscription.on('subscribed', () => { window.__bench.subscribed = true; });
  subscription.on('publication', () => {
    const bench = window.__bench;
    if (bench.received++ === 0) bench.first = performance.now();
    if (bench.received === count) bench.seconds = (performance.now() - bench.first) / 1000;
  });
  client.connect();
})();
true
"""


def sizes() -> dict:
    source = SOURCE.read_bytes()
    result = {"source_bytes": len(source), "source_gzip_bytes": len(gzip.compress(source, 9))}
    esbuild = shutil.which("esbuild")
    if esbuild:
        minified = subprocess.run([esbuild, str(SOURCE), "--minify", "--format=esm", "--log-level=warning"],
                                  check=True, capture_output=True).stdout
        version = subprocess.run([esbuild, "--version"], capture_output=True, text=True).stdout.strip()
        result.update(minifier=f"esbuild {version}", minified_bytes=len(minified),
                      minified_gzip_bytes=len(gzip.compress(minified, 9)))
    return result


async def publish(address, count: int, data: str, publishers: int = 4) -> float:
    """Several connections, so that the Python side is not what limits the rate; returns seconds."""
    message = json.dumps({"type": "publish", "topic": TOPIC, "data": data})

    async def one(share: int) -> None:
        async with websockets.connect(f"ws://{address[0]}:{address[1]}/ws") as socket:
            for _ in range(share):
                await socket.send(message)

    start = time.monotonic()
    shares = [count // publishers + (1 if i < count % publishers else 0) for i in range(publishers)]
    await asyncio.gather(*(one(share) for share in shares))
    return time.monotonic() - start


async def measure(debugger_url: str, server, count: int, size: int) -> tuple[float, float]:
    async with page_of(debugger_url, server) as devtools:
        await devtools.evaluate(PAGE_SCRIPT % (count, TOPIC))
        await devtools.wait_for("window.__bench && window.__bench.subscribed", "the subscription")
        published = await publish(server.address, count, "x" * size)
        return await devtools.wait_for("window.__bench.seconds", "every publication", timeout=300), published


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200000)
    parser.add_argument("--size", type=int, default=64, help="bytes of data per publication")
    args = parser.parse_args()
    result = sizes()
    # Nothing is dropped: a slow tab would be closed (slow_consumer close), and the count would
    # never be reached; the backlog bound is raised so the publisher may run ahead of the tab.
    with start_server("--max-publish-rate", "10000000", "--max-backpressure", str(256 << 20),
                      "--compression", "off") as server, start_chromium() as debugger_url:
        seconds, published = asyncio.run(measure(debugger_url, server, args.count, args.size))
    # When the publishers took about as long as the tab, they were the limit, not the tab.
    result.update(count=args.count, data_bytes=args.size, seconds=round(seconds, 3),
                  publish_seconds=round(published, 3),
                  messages_per_second=round(args.count / seconds))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYLON_BIN", str(REPO / "build" / "pylon"))
    main()
