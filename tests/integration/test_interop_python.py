"""Interoperability with the Python `websockets` client (10.x, legacy asyncio API)."""

import asyncio
import hashlib

import pytest
import websockets
from websockets.exceptions import ConnectionClosedOK

from support.server import start_server

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]
TIMEOUT = 120  # per test body: 16 MiB through the ASan build takes a while


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


def connect(server, **kwargs):
    kwargs.setdefault("max_size", None)
    kwargs.setdefault("compression", None)
    kwargs.setdefault("ping_interval", None)  # our own pings only where a test sends them
    kwargs.setdefault("open_timeout", 30)
    kwargs.setdefault("close_timeout", 30)
    return websockets.connect(server.url("/ws/echo"), **kwargs)


def make_text(n):
    # Multi-byte characters included, cut to exactly n bytes on a character boundary.
    unit = "abc\u00b5\u20ac\U0001f600"  # 1+1+1+2+3+4 = 12 bytes
    text = unit * (n // 12) + "x" * (n % 12)
    assert len(text.encode()) == n
    return text


def make_binary(n):
    return (hashlib.sha256(b"seed").digest() * (n // 32 + 1))[:n]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_echo_unfragmented(server, kind, size):
    message = make_text(size) if kind == "text" else make_binary(size)

    async def body():
        async with connect(server) as ws:
            await ws.send(message)
            reply = await ws.recv()
            assert type(reply) is type(message)
            assert reply == message

    run(body())


@pytest.mark.parametrize("size", [2, 126, 65536, 1 << 20, 16 << 20])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_echo_fragmented(server, kind, size):
    message = make_text(size) if kind == "text" else make_binary(size)
    if kind == "text":
        chars = len(message)
        pieces = [message[i * chars // 4:(i + 1) * chars // 4] for i in range(4)]
    else:
        pieces = [message[i * size // 4:(i + 1) * size // 4] for i in range(4)]
    assert "".join(pieces) == message if kind == "text" else b"".join(pieces) == message

    async def body():
        async with connect(server) as ws:
            await ws.send(iter(pieces))  # an iterable is sent as one fragmented message
            reply = await ws.recv()
            assert reply == message

    run(body())


def test_permessage_deflate_offer_is_agreed_and_echoes(server):
    async def body():
        async with connect(server, compression="deflate") as ws:  # the library's default offer
            assert [e.name for e in ws.extensions] == ["permessage-deflate"], ws.extensions
            for message in ["hello " * 100, b"\x00" * 5000, "é" * 3000]:
                await ws.send(message)
                assert await ws.recv() == message

    run(body())


def test_permessage_deflate_offer_falls_back_with_compression_off():
    with start_server("--compression", "off") as server:
        async def body():
            async with connect(server, compression="deflate") as ws:
                assert ws.extensions == [], "compression off must not negotiate an extension"
                for message in ["hello " * 100, b"\x00" * 5000]:
                    await ws.send(message)
                    assert await ws.recv() == message

        run(body())


def test_default_connect_arguments(server):
    async def body():
        async with websockets.connect(server.url("/ws/echo"), max_size=None) as ws:
            await ws.send("defaults")
            assert await ws.recv() == "defaults"

    run(body())


def test_ten_thousand_pipelined_messages(server):
    count = 10_000

    async def body():
        async with connect(server) as ws:
            async def sender():
                for i in range(count):
                    await ws.send(f"message {i}" if i % 2 else f"binary {i}".encode())

            async def receiver():
                for i in range(count):
                    reply = await ws.recv()
                    assert reply == (f"message {i}" if i % 2 else f"binary {i}".encode()), i

            await asyncio.gather(sender(), receiver())

    run(body())


@pytest.mark.parametrize("payload", [b"", b"ping!", bytes(range(125))], ids=["empty", "short", "125"])
def test_ping_is_answered(server, payload):
    async def body():
        async with connect(server) as ws:
            waiter = await ws.ping(payload)
            await asyncio.wait_for(waiter, 30)  # resolves only on a pong with this payload
            await ws.send("after ping")
            assert await ws.recv() == "after ping"

    run(body())


def test_close_1000_is_clean(server):
    async def body():
        async with connect(server) as ws:
            await ws.send("bye")
            assert await ws.recv() == "bye"
            await ws.close(1000, "normal")
            assert ws.close_code == 1000
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()

    run(body())


@pytest.mark.parametrize("code,reason", [(4000, "custom reason"), (3000, ""), (1001, "going away")])
def test_close_code_is_echoed(server, code, reason):
    async def body():
        async with connect(server) as ws:
            await ws.close(code, reason)
            assert ws.close_code == code  # the code of the server's close frame

    run(body())
