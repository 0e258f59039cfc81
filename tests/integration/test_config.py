"""Configuration of `pylon`: the TOML file, flags overriding it, `check-config`, bad values that
stop start-up with exit code 2 and one line naming the key, and `pylon version`."""

import os
import re
import subprocess

import pytest

from support.server import free_port, run_pylon, start_server
from support.wsclient import (OP_PING, OP_TEXT, HttpConnection, WsClient, echo_check, http_request,
                              upgrade_headers)

GOOD_CONFIG = """\
listen = "127.0.0.1:{port}"
threads = 2
max_connections = 1
max_message_size = 1048576
max_backpressure = 4194304
ping_interval = 1.5
pong_timeout = 10
handshake_timeout = 10
idle_timeout = 0
drain_timeout = 5
drain_window = 1
log_level = "warn"
allowed_origins = ["https://a.example", "https://b.example"]
"""


@pytest.fixture
def write_config(tmp_path):
    def write(text, name="pylon.toml"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def serve_must_fail(*args):
    try:
        return run_pylon("serve", *args, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pylon serve {' '.join(args)} kept running instead of exiting 2")


def assert_rejected(result, key):
    assert result.returncode == 2, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert key in lines[0], f"the message must name {key!r}: {lines[0]!r}"


def test_version():
    result = run_pylon("version")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"pylon \S+\n?", result.stdout), repr(result.stdout)


def test_check_config_accepts_a_good_file(write_config):
    result = run_pylon("check-config", write_config(GOOD_CONFIG.format(port=9000)))
    assert result.returncode == 0, result.stderr


def test_check_config_accepts_an_empty_file(write_config):
    assert run_pylon("check-config", write_config("")).returncode == 0


BAD_FILES = {
    "unknown-key": ("max_conections = 5\n", "max_conections"),
    "negative": ("max_connections = -1\n", "max_connections"),
    "string-for-number": ('max_connections = "abc"\n', "max_connections"),
    "zero-threads": ("threads = 0\n", "threads"),
    "negative-ping-interval": ("ping_interval = -1\n", "ping_interval"),
    "string-duration": ('pong_timeout = "soon"\n', "pong_timeout"),
    "bad-listen": ('listen = "no-port-here"\n', "listen"),
    "bad-port": ('listen = "127.0.0.1:99999"\n', "listen"),
    "bad-log-level": ('log_level = "loud"\n', "log_level"),
    "bad-io-backend": ('io_backend = "kqueue"\n', "io_backend"),
    "io-batch-wait-too-long": ("io_batch_wait_us = 5000\n", "io_batch_wait_us"),
    "origins-not-a-list": ("allowed_origins = 5\n", "allowed_origins"),
    "negative-message-size": ("max_message_size = -5\n", "max_message_size"),
    "endpoint-without-route": ('[endpoints."/nowhere"]\ncompression = "off"\n', "endpoints./nowhere"),
    "endpoint-on-http-route": ('[endpoints."/healthz"]\ncompression = "off"\n', "endpoints./healthz"),
    "endpoint-unknown-key": ('[endpoints."/ws"]\ncompresion = "off"\n', "endpoints./ws.compresion"),
    "endpoint-bad-value": ('[endpoints."/ws/echo"]\ncompression_window_bits = 16\n',
                           "endpoints./ws/echo.compression_window_bits"),
}


@pytest.mark.parametrize("text,key", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_check_config_rejects_naming_the_key(write_config, text, key):
    assert_rejected(run_pylon("check-config", write_config(text)), key)


@pytest.mark.parametrize("text,key", [BAD_FILES["unknown-key"], BAD_FILES["negative"],
                                      BAD_FILES["string-for-number"]], ids=["unknown-key", "negative", "string"])
def test_serve_with_bad_config_exits_2(write_config, text, key):
    port = free_port()
    assert_rejected(serve_must_fail("--listen", f"127.0.0.1:{port}", "--config", write_config(text)), key)


def test_check_config_rejects_invalid_toml(write_config):
    result = run_pylon("check-config", write_config("this is = = not toml [\n"))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_check_config_rejects_a_missing_file(tmp_path):
    result = run_pylon("check-config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip(), "a missing file must be reported"


BAD_FLAGS = {
    "threads-0": (["--threads", "0"], "threads"),
    "threads-abc": (["--threads", "abc"], "threads"),
    "max-connections-negative": (["--max-connections", "-1"], "max"),
    "max-connections-abc": (["--max-connections", "abc"], "max"),
    "ping-interval-negative": (["--ping-interval", "-2"], "ping"),
    "listen-garbage": (["--listen", "garbage"], "listen"),
    "log-level": (["--log-level", "loud"], "log"),
    "endpoint-bad-mode": (["--endpoint", "/ws:compression=zip"], "endpoints./ws.compression"),
    "endpoint-without-route": (["--endpoint", "/missing:compression=off"], "endpoints./missing"),
    "endpoint-no-key": (["--endpoint", "/ws"], "endpoint"),
}


@pytest.mark.parametrize("flags,key", BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_serve_with_bad_flag_exits_2(flags, key):
    if flags[0] != "--listen":
        flags = ["--listen", f"127.0.0.1:{free_port()}", *flags]
    assert_rejected(serve_must_fail(*flags), key)


@pytest.mark.parametrize("asked,backend", [(None, "io_uring"), ("epoll", "epoll"),
                                           ("io_uring", "io_uring")])
def test_io_backend_is_the_one_asked_for(asked, backend):
    # This kernel has io_uring: a silent fallback to epoll would make every benchmark of the
    # default measure epoll. Without io_backend the loops run io_uring. The start-up line says
    # which backend the loops run.
    if asked is None and os.environ.get("PYLON_IO_BACKEND"):
        pytest.skip("PYLON_IO_BACKEND chooses the backend of every server")
    flags = ("--io-backend", asked) if asked else ()
    with start_server(*flags, "--threads", "2") as server:
        echo_check(server.address)
        started = next(line for line in server.output().splitlines() if "pylon listening" in line)
        assert f'"io_backend":"{backend}"' in started, started
        # Batched waits are io_uring's: epoll's loops never hold an event for others.
        if backend == "epoll":
            assert '"io_batch_wait_us":0' in started, started


def test_config_file_is_applied(write_config):
    port = free_port()
    path = write_config(GOOD_CONFIG.format(port=port))
    with start_server("--config", path, port=port, listen=False) as server:
        # listen: the server is on the file's port.
        assert http_request(server.address, "GET", "/healthz").status == 200
        # allowed_origins: a listed origin passes, another is refused.
        response = http_request(server.address, "GET", "/ws/echo",
                                upgrade_headers(extra=[("Origin", "https://evil.example")]))
        assert response.status == 403, response.raw_head
        first = WsClient.connect(server.address, headers=[("Origin", "https://b.example")])
        # max_connections = 1: a second WebSocket is refused.
        response = http_request(server.address, "GET", "/ws/echo", upgrade_headers())
        assert response.status == 503, response.raw_head
        # ping_interval = 1.5 (a float): a ping comes.
        frame = first.recv_frame(timeout=30)
        assert frame.opcode == OP_PING, frame
        first.send_frame(0xA, frame.payload)
        first.send_text("configured")
        first.expect_echo(OP_TEXT, b"configured")
        first.close_cleanly()


def test_flags_override_the_config_file(write_config):
    port = free_port()
    path = write_config(GOOD_CONFIG.format(port=port).replace('allowed_origins = ["https://a.example", "https://b.example"]\n', ""))
    with start_server("--config", path, "--max-connections", "2", "--ping-interval", "25",
                      port=port, listen=False) as server:
        clients = [WsClient.connect(server.address) for _ in range(2)]
        response = http_request(server.address, "GET", "/ws/echo", upgrade_headers())
        assert response.status == 503, response.raw_head
        for client in clients:
            client.send_text("two allowed")
            client.expect_echo(OP_TEXT, b"two allowed")  # and no ping at 1.5 s came first
            client.close_cleanly()


def test_listen_flag_overrides_the_file(write_config):
    path = write_config('listen = "127.0.0.1:1"\n')
    with start_server("--config", path) as server:  # start_server passes --listen with a free port
        echo_check(server.address)


def test_underscore_flag_spelling(write_config):
    with start_server("--max_connections", "1") as server:
        client = WsClient.connect(server.address)
        assert http_request(server.address, "GET", "/ws/echo", upgrade_headers()).status == 503
        client.close_cleanly()


def test_several_allowed_origins_on_the_command_line():
    with start_server("--allowed-origins", "https://a.example", "https://b.example") as server:
        for origin, status in [("https://a.example", 101), ("https://b.example", 101), ("https://c.example", 403)]:
            response = http_request(server.address, "GET", "/ws/echo", upgrade_headers(extra=[("Origin", origin)]))
            assert response.status == status, (origin, response.raw_head)
