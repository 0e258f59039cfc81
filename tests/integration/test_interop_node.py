"""Interoperability with the Node `ws` client (Debian's ws 8.11): node_ws_client.js does the
talking; each case is one run of it."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("node_ws_client.js")
SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


def node(server, *args):
    env = dict(os.environ)
    env.setdefault("NODE_PATH", "/usr/share/nodejs")
    result = subprocess.run(["node", str(SCRIPT), server.url("/ws/echo"), *map(str, args)],
                            capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0 and result.stdout.startswith("OK"), \
        f"node {' '.join(map(str, args))}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_echo_unfragmented(server, kind, size):
    node(server, "echo", kind, size)


@pytest.mark.parametrize("size", [2, 126, 65536, 1 << 20, 16 << 20])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_echo_fragmented(server, kind, size):
    node(server, "echo", kind, size, 4)


def test_ten_thousand_pipelined_messages(server):
    node(server, "pipeline", 10_000)


def test_pings_get_pongs(server):
    node(server, "ping")


@pytest.mark.parametrize("code,reason", [(4000, "custom reason"), (1000, "normal"), (3999, "")])
def test_close_code_is_echoed(server, code, reason):
    out = node(server, "close", code, reason)
    assert out.startswith(f"OK close {code}")
