"""Hostile TLS clients against native TLS (issue 16): a ClientHello sent one byte a second,
garbage instead of a ClientHello, and 2,000 handshakes at once. Established wss:// connections keep
being served meanwhile; tls_max_handshakes and handshake_timeout bound what the others cost."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest
import websockets

from support.nginx import local_ca
from support.server import poll
from support.tls import start_tls_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tls_dir = local_ca(tmp_path_factory.mktemp("tls"))
    with start_tls_server(tls_dir, "--threads", "2", "--handshake-timeout", "2",
                          "--tls-max-handshakes", "64", "--log-level", "warn") as running:
        yield running


def client_hello(server) -> bytes:
    """The first flight of a real client (Python's OpenSSL), to replay on raw sockets."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = server.context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def echo_latencies(ws, stop: asyncio.Event) -> list[float]:
    """Round trips of an established connection until `stop`."""
    latencies = []
    while not stop.is_set():
        started = time.monotonic()
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 30) == "ping"
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(0.01)  # pacing of the probe, not a wait for an event
    return latencies


def test_a_slow_client_hello_is_dropped_after_the_handshake_timeout(server):
    hello = client_hello(server)
    timeouts_before = server.metric("pylon_tls_handshakes_total", result="timeout")

    async def scenario():
        async with websockets.connect(server.url(), ssl=server.context()) as ws:
            stop = asyncio.Event()
            probe = asyncio.create_task(echo_latencies(ws, stop))
            reader, writer = await asyncio.open_connection(*server.address)
            started = time.monotonic()
            closed_at = None
            for byte in hello:  # one byte a second, until the server hangs up
                try:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        closed_at = time.monotonic()
                        break
                except asyncio.TimeoutError:
                    continue
                except ConnectionError:
                    closed_at = time.monotonic()
                    break
            writer.close()
            stop.set()
            latencies = await probe
            return closed_at - started if closed_at else None, latencies

    elapsed, latencies = asyncio.run(scenario())
    assert elapsed is not None and 1.5 <= elapsed <= 6, elapsed  # handshake_timeout is 2 s
    assert latencies and max(latencies) < 1.0
    assert server.metric("pylon_tls_handshakes_total", result="timeout") == timeouts_before + 1


@pytest.mark.parametrize("garbage", [b"\x00" * 64, b"\x16\x03\x01\xff\xff" + b"A" * 300,
                                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_garbage_instead_of_a_client_hello_is_closed_at_once(server, garbage):
    failed_before = server.metric("pylon_tls_handshakes_total", result="failed")
    with socket.create_connection(server.address, timeout=10) as raw:
        raw.sendall(garbage)
        started = time.monotonic()
        read_until_closed(raw)
        assert time.monotonic() - started < 1.5  # well before handshake_timeout
    poll(lambda: server.metric("pylon_tls_handshakes_total", result="failed") >= failed_before + 1,
         10, "the failed handshake to be counted")


def read_until_closed(raw: socket.socket) -> None:
    """Reads (an alert, perhaps) until EOF; an RST is as good as an EOF here."""
    try:
        while raw.recv(4096):
            pass
    except ConnectionResetError:
        pass


def test_2000_handshakes_at_once_leave_established_connections_served(server):
    hello = client_hello(server)
    refused_before = server.metric("pylon_tls_handshakes_total", result="refused")

    async def scenario():
        established = [await websockets.connect(server.url(), ssl=server.context(), ping_interval=None)
                       for _ in range(4)]
        stop = asyncio.Event()
        probes = [asyncio.create_task(echo_latencies(ws, stop)) for ws in established]

        async def flood_one():
            try:
                reader, writer = await asyncio.open_connection(*server.address)
            except OSError:
                return
            try:
                writer.write(hello)
                await writer.drain()
                # The server's flight (ServerHello ... Finished), or a refusal: EOF/RST.
                await asyncio.wait_for(reader.read(1), 10)
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                writer.close()

        await asyncio.gather(*(flood_one() for _ in range(2000)))
        stop.set()
        latencies = [latency for probe in probes for latency in await probe]
        for ws in established:  # still open and served after the flood
            await ws.send("after")
            assert await ws.recv() == "after"
            await ws.close()
        return latencies

    latencies = asyncio.run(scenario())
    assert latencies, "the established connections did not echo during the flood"
    assert max(latencies) < 2.0, max(latencies)
    # More ClientHellos than 2 workers x 64 slots were in flight: the cap refused some.
    assert server.metric("pylon_tls_handshakes_total", result="refused") > refused_before
    poll(lambda: server.metric("pylon_tls_connections", ktls="false") == 0, 15,
         "the established connections to be gone")
