"""Structured logs (issue 5): every line is a JSON object in zap's shape, access events carry the
real client IP only when the peer is a trusted proxy, a flood of bad clients is rate-limited with
a count of what was suppressed, SIGHUP applies a new log level, the console format exists, and a
full disk under the logs costs lines, not the server."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

from support.server import free_port, http_get_status, poll, pylon_bin, start_server
from support.wsclient import (OP_CLOSE, OP_TEXT, WsClient, build_frame, close_payload, connect_many,
                              echo_check)

FORWARDED = [("X-Forwarded-For", "203.0.113.7"), ("User-Agent", "log-test/1.0")]


def stderr_lines(server):
    return (server.log_dir / "stderr").read_text(errors="replace").splitlines()


def json_lines(server):
    lines = stderr_lines(server)
    records = []
    for line in lines:
        record = json.loads(line)  # every line must parse
        assert isinstance(record, dict), line
        assert isinstance(record["ts"], (int, float)) and record["ts"] > 1.6e9, line
        assert record["level"] in ("debug", "info", "warn", "error"), line
        assert isinstance(record["msg"], str) and record["msg"], line
        records.append(record)
    return records


def events(server, msg):
    return [r for r in json_lines(server) if r["msg"] == msg]


def echo_once(server, headers=()):
    client = WsClient.connect(server.address, headers=list(headers))
    client.send_text(b"hello")
    client.expect_echo(0x1, b"hello")
    client.close_cleanly()


def test_every_line_is_json_and_access_events_have_the_fields():
    with start_server() as server:
        echo_once(server, FORWARDED)
        poll(lambda: events(server, "websocket close"), 10, "the close access event")
        opened, closed = events(server, "websocket open")[0], events(server, "websocket close")[0]
        # Not a trusted proxy: the forwarded header is ignored, the peer address is the client.
        assert opened["client_ip"] == "127.0.0.1" and opened["remote"].startswith("127.0.0.1:"), opened
        assert opened["path"] == "/ws/echo" and opened["user_agent"] == "log-test/1.0", opened
        assert closed["client_ip"] == "127.0.0.1", closed
        assert closed["messages_in"] == 1 and closed["messages_out"] == 1, closed
        assert closed["bytes_in"] == 5 and closed["bytes_out"] == 5, closed
        assert closed["code"] == 1000 and closed["side"] == "client", closed
        assert closed["duration_s"] >= 0, closed
        assert events(server, "pylon listening"), "the start-up line"


def test_access_event_counts_messages_read_with_the_close():
    # The read's counts are added at its end (issue 17); a close in the same read is logged with
    # them.
    with start_server() as server:
        client = WsClient.connect(server.address)
        client.send_raw(build_frame(OP_TEXT, b"one") + build_frame(OP_TEXT, b"two!") +
                        build_frame(OP_CLOSE, close_payload(1000)))
        client.expect_echo(OP_TEXT, b"one")
        client.expect_echo(OP_TEXT, b"two!")
        client.expect_close(1000)
        client.close()
        poll(lambda: events(server, "websocket close"), 10, "the close access event")
        closed = events(server, "websocket close")[0]
        assert closed["messages_in"] == 2 and closed["messages_out"] == 2, closed
        assert closed["bytes_in"] == 7 and closed["bytes_out"] == 7, closed


def test_forwarded_client_ip_only_from_a_trusted_proxy():
    with start_server("--trusted-proxies", "127.0.0.0/8") as server:
        echo_once(server, FORWARDED)
        # X-Real-IP wins over X-Forwarded-For; in X-Forwarded-For the rightmost untrusted entry.
        echo_once(server, [("X-Real-IP", "198.51.100.4"), ("X-Forwarded-For", "203.0.113.9")])
        echo_once(server, [("X-Forwarded-For", "192.0.2.1, 203.0.113.8, 127.0.0.2")])
        poll(lambda: len(events(server, "websocket close")) == 3, 10, "three close events")
        ips = [r["client_ip"] for r in events(server, "websocket open")]
        assert ips == ["203.0.113.7", "198.51.100.4", "203.0.113.8"], ips
        # The close line names the same client (kept beside the connection, not in it).
        closed = events(server, "websocket close")
        assert [r["client_ip"] for r in closed] == ips, closed
        assert all(r["messages_in"] == 1 and r["bytes_out"] == 5 for r in closed), closed


def test_a_flood_of_bad_requests_is_rate_limited_with_a_count():
    with start_server() as server:
        for _ in range(300):
            with socket.create_connection(server.address, timeout=5) as sock:
                sock.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n\r\n")
                sock.recv(4096)
        time.sleep(1.1)  # a new one-second window: the next line reports what was dropped
        with socket.create_connection(server.address, timeout=5) as sock:
            sock.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n\r\n")
            sock.recv(4096)
        poll(lambda: any("suppressed" in r for r in events(server, "request refused")), 10, "a suppressed count")
        refused = events(server, "request refused")
        assert len(refused) <= 60, f"{len(refused)} lines for 301 refusals: not rate-limited"
        assert sum(r.get("suppressed", 0) for r in refused) + len(refused) == 301, refused[-1]


def test_sighup_applies_a_new_log_level():
    with tempfile.TemporaryDirectory() as directory:
        config = os.path.join(directory, "pylon.toml")
        with open(config, "w") as file:
            file.write('log_level = "info"\n')
        with start_server("--config", config) as server:
            echo_once(server)
            poll(lambda: events(server, "websocket close"), 10, "access events at info")
            with open(config, "w") as file:
                file.write('log_level = "warn"\n')
            server.signal(signal.SIGHUP)
            poll(lambda: events(server, "configuration reloaded"), 10, "the reload line")

            # The line is said at the old level, just before the new one applies.
            def a_connection_is_silent():
                before = len(events(server, "websocket open"))
                echo_once(server)
                time.sleep(0.3)  # the writer is asynchronous: give a line the time to appear
                return len(events(server, "websocket open")) == before

            poll(a_connection_is_silent, 10, "no info lines after switching to warn")


def test_console_format_is_for_people():
    with start_server("--log-format", "console") as server:
        echo_once(server)
        poll(lambda: any(" INFO websocket close " in line for line in stderr_lines(server)), 10, "a console line")
        line = next(line for line in stderr_lines(server) if " INFO websocket open " in line)
        assert line[:4].isdigit() and "client_ip=127.0.0.1" in line and "path=/ws/echo" in line, line


def test_a_full_disk_under_the_logs_is_survived():
    """Logs go to stderr; when it cannot be written (here /dev/full: every write is ENOSPC, as
    on a full disk) lines are lost, never the server: it keeps serving, then drains and exits 0."""
    port = free_port()
    with open("/dev/full", "wb") as full:
        process = subprocess.Popen([pylon_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--threads", "2",
                                    "--log-level", "debug"], stdin=subprocess.DEVNULL, stdout=full, stderr=full)
    try:
        poll(lambda: http_get_status("127.0.0.1", port, "/healthz") == 200, 15, "pylon serving")
        for _ in range(3):  # every open and close is an access line that cannot be written
            clients = connect_many(WsClient, ("127.0.0.1", port), 100)
            for client in clients:
                client.send_text(b"hello")
                client.expect_echo(0x1, b"hello")
                client.close_cleanly()
            assert http_get_status("127.0.0.1", port, "/nope") == 404  # a refused request logs too
        echo_check(("127.0.0.1", port))
        assert process.poll() is None, "pylon died writing to a full disk"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
