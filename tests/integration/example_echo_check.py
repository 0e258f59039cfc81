"""examples/echo_server keeps compiling and echoing: start it on a free port (argv[1]), talk to
/echo with the raw client and with Python `websockets`, then SIGTERM it (it must exit 0).
Run by CTest with PYLON_EXAMPLE_ECHO=<path to the binary>."""

import asyncio
import os
import signal

import pytest
import websockets

from support.server import REPO_DIR, free_port, start_process
from support.wsclient import OP_BINARY, OP_PING, OP_TEXT, WsClient, build_frame


def example_binary():
    path = os.environ.get("PYLON_EXAMPLE_ECHO") or str(REPO_DIR / "build" / "examples" / "echo_server")
    if not os.access(path, os.X_OK):
        pytest.fail(f"echo_server not found: set PYLON_EXAMPLE_ECHO (tried {path})", pytrace=False)
    return path


def handshake_works(server):
    try:
        WsClient.connect(server.address, "/echo", timeout=2).close()
        return True
    except (OSError, AssertionError, Exception):
        return False


@pytest.fixture(scope="module")
def echo_server():
    port = free_port()
    with start_process([example_binary(), str(port)], port, ready=handshake_works) as running:
        yield running


def test_raw_client_echo(echo_server):
    client = WsClient.connect(echo_server.address, "/echo")
    try:
        client.send_raw(build_frame(OP_TEXT, b"hello example") + build_frame(OP_PING, b"p")
                        + build_frame(OP_BINARY, bytes(range(256)) * 300))
        client.expect_echo(OP_TEXT, b"hello example")
        client.expect_pong(b"p")
        client.expect_echo(OP_BINARY, bytes(range(256)) * 300)
        client.close_cleanly()
    finally:
        client.close()


def test_websockets_client_echo(echo_server):
    async def body():
        # websockets offers permessage-deflate: the example's route asks for a window per
        # connection of 12 bits, so no server_no_context_takeover in the answer.
        async with websockets.connect(echo_server.url("/echo"), max_size=None) as ws:
            extensions = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in extensions and "server_max_window_bits=12" in extensions, extensions
            assert "server_no_context_takeover" not in extensions, extensions
            for message in ["text \u20ac", b"\x00\x01binary", "x" * 100000]:
                await ws.send(message)
                assert await ws.recv() == message
    asyncio.run(asyncio.wait_for(body(), 60))


def test_sigterm_exits_0():
    port = free_port()
    with start_process([example_binary(), str(port)], port, ready=handshake_works) as running:
        client = WsClient.connect(running.address, "/echo")
        running.signal(signal.SIGTERM)
        client.expect_close(1001, timeout=60, eof=False)
        client.send_close(1001)
        client.expect_eof(timeout=60)
        assert running.wait(timeout=60) == 0
