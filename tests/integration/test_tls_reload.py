"""Certificate reload of native TLS (issue 16): 1,000 wss:// connections stay open and keep
echoing while the certificate is replaced (a renewal from the same local CA), new handshakes get
the new one; a broken file keeps the running one; a change of the files alone (certbot's deploy
hook, no signal) is picked up too."""

from __future__ import annotations

import asyncio
import signal
import ssl

import websockets

from support.nginx import local_ca
from support.server import poll
from support.tls import file_serial, served_serial, start_tls_server

CONNECTIONS = 1000


def renew(tls_dir):
    """A new server certificate from the same CA, written over the old files."""
    local_ca(tls_dir)
    return file_serial(tls_dir / "server.pem")


def test_sighup_reload_keeps_1000_connections_and_serves_the_new_certificate(tmp_path):
    tls_dir = local_ca(tmp_path / "tls")
    first = file_serial(tls_dir / "server.pem")
    # At warn, so the output kept for the assertions below is not 2,000 access-log lines.
    with start_tls_server(tls_dir, "--threads", "2", "--tls-watch-interval", "0",
                          "--log-level", "warn") as server:
        assert served_serial(server.address) == first

        async def scenario():
            context = server.context()
            semaphore = asyncio.Semaphore(100)  # handshakes in flight from this client at once

            async def connect():
                async with semaphore:
                    return await websockets.connect(server.url(), ssl=context, open_timeout=60,
                                                    ping_interval=None, close_timeout=5)
            sockets = await asyncio.gather(*(connect() for _ in range(CONNECTIONS)))

            async def echo_all(tag):
                async def one(index, ws):
                    await ws.send(f"{tag} {index}")
                    assert await asyncio.wait_for(ws.recv(), 30) == f"{tag} {index}"
                await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))

            await echo_all("before")
            second = await asyncio.to_thread(renew, tls_dir)
            assert second != first
            server.server.signal(signal.SIGHUP)
            await asyncio.to_thread(poll, lambda: served_serial(server.address) == second, 15,
                                    "new handshakes to get the renewed certificate")
            await echo_all("after")
            assert server.metric("pylon_tls_reloads_total", result="ok") == 1

            # A broken certificate file: the reload fails, the running certificate stays.
            (tls_dir / "server.pem").write_text("not a certificate\n")
            server.server.signal(signal.SIGHUP)
            await asyncio.to_thread(poll, lambda: server.metric("pylon_tls_reloads_total",
                                                                result="failed") == 1,
                                    15, "the failed reload to be counted")
            assert served_serial(server.address) == second
            await echo_all("after a broken file")
            await asyncio.gather(*(ws.close() for ws in sockets))
            return second

        asyncio.run(scenario())
    assert "TLS certificates not reloaded; keeping the running ones" in server.server.output()
    assert "cannot load the certificate" in server.server.output()


def test_a_change_of_the_files_reloads_without_a_signal(tmp_path):
    tls_dir = local_ca(tmp_path / "tls")
    with start_tls_server(tls_dir, "--tls-watch-interval", "0.2") as server:

        async def scenario():
            async with websockets.connect(server.url(), ssl=server.context()) as ws:
                second = await asyncio.to_thread(renew, tls_dir)
                await asyncio.to_thread(poll, lambda: served_serial(server.address) == second, 15,
                                        "the watcher to load the renewed certificate")
                await ws.send("still here")
                assert await ws.recv() == "still here"
                assert server.metric("pylon_tls_reloads_total", result="ok") >= 1
        asyncio.run(scenario())
