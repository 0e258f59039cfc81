"""Idle WebSockets through Nginx, with test-scaled timers: Nginx's proxy_read_timeout templated
down to 3 s (deploy/nginx/render.sh WS_PROXY_TIMEOUT) stands for its default 60 s.

- pylon pinging every second keeps a connection that carries no message for 6 s (twice the
  read timeout) open: it still echoes afterwards;
- with pylon's pings far apart (600 s) the same idle connection is cut by Nginx after the read
  timeout: the classic "WebSockets die after a minute behind Nginx". This is why the shipped
  proxy_read_timeout is far above pylon's ping_interval (test_nginx_config.py checks that).

The two scenarios run side by side, each with its own pylon and Nginx.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import websockets

from support.nginx import local_ca, render, start_nginx, wss_connect
from support.server import start_server

READ_TIMEOUT = 3  # seconds, Nginx's proxy_read_timeout in this test
IDLE = 2 * READ_TIMEOUT


def test_pings_keep_an_idle_connection_open_and_without_them_nginx_cuts_it(tmp_path):
    tls = local_ca(tmp_path / "tls")
    with contextlib.ExitStack() as stack:
        # --pong-timeout below the interval: pylon arms its next ping only when the pong
        # deadline passes, so pings come every max(ping_interval, pong_timeout) seconds.
        pinging = stack.enter_context(start_server("--ping-interval", "1", "--pong-timeout", "0.5"))
        silent = stack.enter_context(start_server("--ping-interval", "600"))
        nginx_pinging = stack.enter_context(start_nginx(render(
            tmp_path / "pinging", [pinging.address], tls, WS_PROXY_TIMEOUT=f"{READ_TIMEOUT}s")))
        nginx_silent = stack.enter_context(start_nginx(render(
            tmp_path / "silent", [silent.address], tls, WS_PROXY_TIMEOUT=f"{READ_TIMEOUT}s")))

        async def survives():
            async with wss_connect(nginx_pinging) as ws:
                await ws.send("before")
                assert await asyncio.wait_for(ws.recv(), 5) == "before"
                await asyncio.sleep(IDLE)  # the idle period under test, not a wait for an event
                assert not ws.closed, f"closed with {ws.close_code} while pylon was pinging"
                await ws.send("after")
                assert await asyncio.wait_for(ws.recv(), 5) == "after"

        async def is_cut():
            async with wss_connect(nginx_silent) as ws:
                await ws.send("before")
                assert await asyncio.wait_for(ws.recv(), 5) == "before"
                started = time.monotonic()
                try:
                    await asyncio.wait_for(ws.recv(), IDLE + 5)
                    raise AssertionError("a message arrived on an idle connection")
                except websockets.ConnectionClosed:
                    pass
                except asyncio.TimeoutError:
                    raise AssertionError(f"Nginx did not cut the silent connection within {IDLE + 5}s")
                elapsed = time.monotonic() - started
                assert READ_TIMEOUT - 0.5 <= elapsed <= READ_TIMEOUT + 2, elapsed
                assert ws.close_code == 1006  # no close frame: the proxy dropped the TCP connection

        async def both():
            await asyncio.gather(survives(), is_cut())

        asyncio.run(both())
