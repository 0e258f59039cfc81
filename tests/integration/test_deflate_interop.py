"""permessage-deflate with clients we did not write: Python `websockets` 10.4 (legacy asyncio API)
and Node `ws` 8.11 (node_ws_deflate.js), against `--compression shared` and `--compression
dedicated`. Each case is one connection echoing text and binary messages of 0 bytes to 1 MiB,
compressible and random, whole and in 4 fragments; one 16 MiB round trip per client library. The
client's own view of the agreement is checked (websockets' PerMessageDeflate, ws' params), and
/metrics must show fewer compressed than uncompressed bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate

from support.deflate import compression_counters
from support.server import start_server

SCRIPT = Path(__file__).with_name("node_ws_deflate.js")
SIZES = [0, 1, 63, 64, 1000, 65536, 1 << 20]
KINDS = ["text", "binary", "random"]
CASES = [(kind, size, pieces) for kind in KINDS for size in SIZES for pieces in (1, 4) if pieces == 1 or size >= 4]
THRESHOLD = 64
TIMEOUT = 150
SHARED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@pytest.fixture(scope="module", params=["shared", "dedicated"])
def server(request):
    with start_server("--compression", request.param) as running:
        running.mode = request.param
        yield running


def make_message(kind: str, size: int):
    if kind == "text":
        unit = "abc\u00b5\u20ac\U0001f600"  # 1+1+1+2+3+4 = 12 bytes
        text = unit * (size // 12) + "x" * (size % 12)
        assert len(text.encode()) == size
        return text
    if kind == "binary":
        return (hashlib.sha256(b"seed").digest() * (size // 32 + 1))[:size]
    return os.urandom(size)


def pieces_of(message, pieces: int):
    n = len(message)
    return [message[i * n // pieces:(i + 1) * n // pieces] for i in range(pieces)]


def byte_deltas(server, before):
    after = compression_counters(server.address)
    return {key: after[key] - before[key] for key in after}


# --- Python websockets ----------------------------------------------------------------------------

PYTHON_CLIENTS = {
    # websockets' default offer: "permessage-deflate; client_max_window_bits"
    "default": ({"compression": "deflate"}, "; client_max_window_bits=15"),
    "no-context-takeover": ({"compression": None, "extensions": [ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True)]},
        "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"),
    "window-bits-10": ({"compression": None, "extensions": [ClientPerMessageDeflateFactory(
        server_max_window_bits=10, client_max_window_bits=10)]},
        "; server_max_window_bits=10; client_max_window_bits=10"),
}


def expected_header(mode: str, params: str) -> str:
    if mode == "shared":
        params = params.replace("; server_no_context_takeover", "").replace("; client_no_context_takeover", "")
        return SHARED + params
    return "permessage-deflate" + params


def connect(server, **kwargs):
    kwargs.setdefault("max_size", None)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("open_timeout", 30)
    kwargs.setdefault("close_timeout", 30)
    return websockets.connect(server.url("/ws/echo"), **kwargs)


def record_compressed_replies(ws) -> list:
    """Wraps the client's decoder: records, for each message the server sends, whether its first
    frame had RSV1 (i.e. the server compressed it)."""
    extension = ws.extensions[0]
    seen = []
    decode = extension.decode

    def recording(frame, *, max_size=None):
        if frame.opcode in (websockets.frames.Opcode.TEXT, websockets.frames.Opcode.BINARY):
            seen.append(frame.rsv1)
        return decode(frame, max_size=max_size)
    extension.decode = recording
    return seen


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


@pytest.mark.parametrize("client", PYTHON_CLIENTS)
def test_python_websockets_echo(server, client):
    kwargs, params = PYTHON_CLIENTS[client]
    header = expected_header(server.mode, params)
    shared = server.mode == "shared"
    before = compression_counters(server.address)

    async def body():
        async with connect(server, **kwargs) as ws:
            assert ws.response_headers.get_all("Sec-WebSocket-Extensions") == [header]
            assert len(ws.extensions) == 1 and isinstance(ws.extensions[0], PerMessageDeflate), ws.extensions
            extension = ws.extensions[0]
            asked = "no_context_takeover" in params
            assert extension.remote_no_context_takeover == (shared or asked), extension
            assert extension.local_no_context_takeover == (shared or asked), extension
            bits = 10 if "window_bits=10" in params else 15
            assert extension.remote_max_window_bits == bits and extension.local_max_window_bits == bits, extension
            compressed = record_compressed_replies(ws)
            for kind, size, pieces in CASES:
                message = make_message(kind, size)
                await ws.send(message if pieces == 1 else iter(pieces_of(message, pieces)))
                reply = await ws.recv()
                assert type(reply) is type(message) and reply == message, (kind, size, pieces)
                if kind != "random":
                    assert compressed[-1] == (size >= THRESHOLD), \
                        f"{kind} {size} in {pieces}: RSV1={compressed[-1]}, threshold {THRESHOLD}"
            assert len(compressed) == len(CASES)

    run(body())
    delta = byte_deltas(server, before)
    assert 0 < delta["compressed_in"] < delta["uncompressed_in"] / 2, delta
    assert 0 < delta["compressed_out"] < delta["uncompressed_out"] / 2, delta


def test_python_websockets_16_mib(start_server):
    message = make_message("text", 16 << 20)
    with start_server("--compression", "shared") as server:
        before = compression_counters(server.address)

        async def body():
            async with connect(server) as ws:
                assert ws.extensions and isinstance(ws.extensions[0], PerMessageDeflate)
                await ws.send(message)
                assert await ws.recv() == message

        run(body())
        delta = byte_deltas(server, before)
    assert delta["uncompressed_in"] == delta["uncompressed_out"] == 16 << 20, delta
    assert delta["compressed_in"] < (1 << 20) and delta["compressed_out"] < (1 << 20), delta


@pytest.mark.parametrize("mode", ["shared", "dedicated", "off"])
def test_python_websockets_without_compression(start_server, mode):
    """compression=None offers nothing: plain frames. And with --compression off, the default
    offer is declined."""
    with start_server("--compression", mode) as server:
        before = compression_counters(server.address)

        async def body(**kwargs):
            async with connect(server, **kwargs) as ws:
                assert ws.extensions == []
                assert ws.response_headers.get_all("Sec-WebSocket-Extensions") == []
                for message in ["hello " * 1000, b"\x00" * 5000, "", b"x"]:
                    await ws.send(message)
                    assert await ws.recv() == message

        run(body(compression=None))
        if mode == "off":
            run(body(compression="deflate"))
        delta = byte_deltas(server, before)
    assert all(value == 0 for value in delta.values()), delta


# --- Node ws ------------------------------------------------------------------------------------

NODE_CLIENTS = {
    # ws' offer: "permessage-deflate; client_max_window_bits"; threshold 1024 on its side.
    "true": (True, "; client_max_window_bits=15"),
    "threshold-0": ({"threshold": 0}, "; client_max_window_bits=15"),
    "no-context-takeover": ({"threshold": 0, "serverNoContextTakeover": True, "clientNoContextTakeover": True},
                            "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"),
    "window-bits-10": ({"threshold": 0, "serverMaxWindowBits": 10, "clientMaxWindowBits": 10},
                       "; server_max_window_bits=10; client_max_window_bits=10"),
    # clientNoContextTakeover: false makes ws refuse a server that adds client_no_context_takeover
    # unasked (which RFC 7692 §7.1.1.2 allows and shared mode does): dedicated mode only.
    "takeover-both-ways": ({"threshold": 0, "serverNoContextTakeover": False, "clientNoContextTakeover": False},
                           "; client_max_window_bits=15"),
}


def node(server, options, cases):
    env = dict(os.environ)
    env.setdefault("NODE_PATH", "/usr/share/nodejs")
    argv = ["node", str(SCRIPT), server.url("/ws/echo"), json.dumps(options), json.dumps(cases)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT + 30, env=env)
    assert result.returncode == 0 and result.stdout.startswith("OK "), \
        f"node {options} {len(cases)} cases: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout[3:])


@pytest.mark.parametrize("client", NODE_CLIENTS)
def test_node_ws_echo(server, client):
    options, params = NODE_CLIENTS[client]
    if client == "takeover-both-ways" and server.mode == "shared":
        pytest.skip("ws refuses client_no_context_takeover when told clientNoContextTakeover: false")
    before = compression_counters(server.address)
    seen = node(server, options, CASES)
    assert seen["extensions"] == "permessage-deflate", seen
    assert seen["header"] == expected_header(server.mode, params), seen
    bits = 10 if "window_bits=10" in params else 15
    agreed = seen["params"]
    assert agreed.get("server_max_window_bits", 15) == bits and agreed.get("client_max_window_bits", 15) == bits, seen
    shared = server.mode == "shared"
    asked = "no_context_takeover" in params
    assert bool(agreed.get("server_no_context_takeover")) == (shared or asked), seen
    assert bool(agreed.get("client_no_context_takeover")) == (shared or asked), seen
    delta = byte_deltas(server, before)
    assert 0 < delta["compressed_in"] < delta["uncompressed_in"] / 2, delta
    assert 0 < delta["compressed_out"] < delta["uncompressed_out"] / 2, delta


def test_node_ws_16_mib(start_server):
    with start_server("--compression", "dedicated") as server:
        before = compression_counters(server.address)
        seen = node(server, True, [["binary", 16 << 20, 1]])
        delta = byte_deltas(server, before)
    assert seen["header"] == "permessage-deflate; client_max_window_bits=15", seen
    assert delta["uncompressed_in"] == delta["uncompressed_out"] == 16 << 20, delta
    assert delta["compressed_in"] < (1 << 20) and delta["compressed_out"] < (1 << 20), delta


def test_node_ws_without_compression(server):
    seen = node(server, False, [["text", 5000, 1], ["binary", 5000, 4], ["text", 0, 1]])
    assert seen["extensions"] == "" and seen["header"] is None, seen
