"""/metrics (issue 5): the exposition passes promtool's strict check, and the values are right
after a known amount of traffic: 50 connections and 1,000 messages."""

import re
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from support.server import poll, pylon_bin, start_server
from support.wsclient import OP_BINARY, OP_CLOSE, OP_TEXT, WsClient, build_frame, close_payload


def scrape(server, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.address[1]}{path}", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers
        return response.read().decode()


def value(text, name, **labels):
    """The value of one series; labels must match exactly."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)", line)
        assert match, f"not an exposition line: {line!r}"
        if match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(match.group(4))
    raise AssertionError(f"no series {name}{labels}")


def test_exposition_passes_promtool_check_metrics():
    with start_server() as server:
        text = scrape(server)
        result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


def test_fifty_connections_and_a_thousand_messages_are_counted():
    with start_server("--threads", "2") as server:
        before = scrape(server)
        accepted_before = value(before, "pylon_connections_accepted_total")
        clients = [WsClient.connect(server.address) for _ in range(50)]
        for i in range(1000):
            client = clients[i % 50]
            client.send_text(b"m%04d" % i)
            client.expect_echo(OP_TEXT, b"m%04d" % i)
        text = scrape(server)
        assert value(text, "pylon_connections", endpoint="/ws/echo") == 50
        assert value(text, "pylon_handshakes_total", endpoint="/ws/echo") == 50
        assert value(text, "pylon_connections_accepted_total") - accepted_before >= 50
        assert value(text, "pylon_messages_received_total", endpoint="/ws/echo", kind="text") == 1000
        assert value(text, "pylon_messages_sent_total", endpoint="/ws/echo", kind="text") == 1000
        assert value(text, "pylon_bytes_received_total", endpoint="/ws/echo", kind="text") == 5000
        assert value(text, "pylon_message_handling_seconds_count", endpoint="/ws/echo") == 1000
        assert value(text, "pylon_message_handling_seconds_bucket", endpoint="/ws/echo", le="+Inf") == 1000
        # Timed on a sample of the reads, every message counted at its sample's mean.
        assert value(text, "pylon_message_handling_seconds_sum", endpoint="/ws/echo") > 0
        assert value(text, "process_open_fds") >= 50
        assert value(text, "process_resident_memory_bytes") > 0
        for client in clients[:10]:
            client.close_cleanly()
        poll(lambda: value(scrape(server), "pylon_connections", endpoint="/ws/echo") == 40, 10,
             "the gauge to drop to 40")
        assert value(scrape(server), "pylon_closes_total", code="1000", side="client") == 10
        for client in clients[10:]:
            client.close()


def test_messages_of_one_read_are_each_counted():
    # Counts are added once per read (issue 17): eight messages in one segment count eight.
    with start_server() as server:
        client = WsClient.connect(server.address)
        client.send_raw(b"".join(build_frame(OP_TEXT, b"t%d" % i) for i in range(5)) +
                        b"".join(build_frame(OP_BINARY, b"bin%d" % i) for i in range(3)))
        for i in range(5):
            client.expect_echo(OP_TEXT, b"t%d" % i)
        for i in range(3):
            client.expect_echo(OP_BINARY, b"bin%d" % i)
        text = scrape(server)
        for kind, messages, size in (("text", 5, 10), ("binary", 3, 12)):
            assert value(text, "pylon_messages_received_total", endpoint="/ws/echo", kind=kind) == messages
            assert value(text, "pylon_messages_sent_total", endpoint="/ws/echo", kind=kind) == messages
            assert value(text, "pylon_bytes_received_total", endpoint="/ws/echo", kind=kind) == size
            assert value(text, "pylon_bytes_sent_total", endpoint="/ws/echo", kind=kind) == size
        assert value(text, "pylon_message_handling_seconds_count", endpoint="/ws/echo") == 8
        client.close()


def test_server_closes_tcp_once_it_answered_the_peers_close():
    # RFC 6455 §7.1.1: a close frame went each way, so the server closes the TCP connection at
    # once; it does not wait for the client's FIN (this client never sends one) or a timeout.
    with start_server() as server:
        client = WsClient.connect(server.address)
        poll(lambda: value(scrape(server), "pylon_connections", endpoint="/ws/echo") == 1, 10,
             "the connection to be counted")
        client.send_raw(build_frame(OP_CLOSE, close_payload(1000)))
        client.expect_close(1000)  # the answer, then EOF
        # Well inside the 3 s the server gives a peer to close after the handshake.
        poll(lambda: value(scrape(server), "pylon_connections", endpoint="/ws/echo") == 0, 1.5,
             "the server to close the connection")
        client.close()


def test_protocol_errors_and_handshake_failures_are_counted_by_reason():
    with start_server() as server:
        client = WsClient.connect(server.address)
        client.send_raw(bytes([0x81 | 0x40, 0x80 | 1, 0, 0, 0, 0, 0x61]))  # RSV1 without an extension
        client.expect_close(1002)
        with socket.create_connection(server.address, timeout=10) as sock:
            sock.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Version: 12\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 426 ")
        text = scrape(server)
        assert value(text, "pylon_protocol_errors_total", reason="reserved_bits_set") == 1
        assert value(text, "pylon_handshake_failures_total", reason="bad_version") == 1
        assert value(text, "pylon_closes_total", code="1002", side="server") == 1


def test_metrics_listen_moves_metrics_off_the_public_listener():
    from support.server import free_port
    port = free_port()
    with start_server("--metrics-listen", f"127.0.0.1:{port}") as server:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.address[1]}/metrics", timeout=10)
            raise AssertionError("/metrics still served on the public listener")
        except urllib.error.HTTPError as error:
            assert error.code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert b"pylon_build_info" in response.read()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
            raise AssertionError("the metrics listener serves public routes")
        except urllib.error.HTTPError as error:
            assert error.code == 404


def test_deliveries_of_a_burst_are_counted_per_subscriber_and_kind():
    # Counted once per run and route for all subscribers of a loop (DeliveryTally): the totals must
    # still be exact, per kind, on 1 loop and on 2.
    from support.pubsub import PubSubClient, binary_publish, envelope, publish_text
    for threads in ("1", "2"):
        with start_server("--threads", threads, "--ping-interval", "3600") as server:
            subscribers = [PubSubClient.connect(server.address) for _ in range(30)]
            publisher = PubSubClient.connect(server.address)
            try:
                for subscriber in subscribers:
                    subscriber.subscribe(["counted"], id=1)
                    subscriber.expect_ack(1)
                texts = [b'{"n":%d}' % i for i in range(10)]
                binaries = [binary_publish("counted", bytes(range(i))) for i in range(5)]
                publisher.send_raw(b"".join([build_frame(OP_TEXT, publish_text("counted", data))
                                             for data in texts] +
                                            [build_frame(OP_BINARY, data) for data in binaries]))
                ack_bytes = len(b'{"type":"ack","id":1}')
                text_bytes = sum(len(envelope("counted", data)) for data in texts)
                binary_bytes = sum(len(data) for data in binaries)
                expected = {"text": (1 + 10, ack_bytes + text_bytes), "binary": (5, binary_bytes)}

                def counted():
                    text = scrape(server)
                    return {kind: (value(text, "pylon_messages_sent_total", endpoint="/ws", kind=kind) / 30,
                                   value(text, "pylon_bytes_sent_total", endpoint="/ws", kind=kind) / 30)
                            for kind in expected}
                poll(lambda: counted() == expected, timeout=10, what=f"the counts {expected}")
            finally:
                for client in subscribers + [publisher]:
                    client.close()


VERDICTS = ("kept", "slowed", "no_gain")


def test_a_busy_loop_reports_its_batched_wait_trials():
    # A 1 ms batch wait makes a loop busy from 4,000 receives a second; `pylon bench` gives it
    # far more. Its first trial (0.7 s) ends with a verdict, reported within a second.
    with start_server("--io-batch-wait-us", "1000") as server:
        started = next(line for line in server.output().splitlines() if "pylon listening" in line)
        if '"io_batch_wait_us":1000' not in started:
            pytest.skip(f"no batched waits here (epoll, or a kernel before 6.12): {started}")
        text = scrape(server)
        assert value(text, "pylon_io_batching_loops") == 0
        for verdict in VERDICTS:
            assert value(text, "pylon_io_batch_trials_total", verdict=verdict) == 0
        load = subprocess.run(
            [pylon_bin(), "bench", "echo", "--url", f"ws://127.0.0.1:{server.address[1]}/ws/echo",
             "--connections", "20", "--in-flight", "8", "--size", "16", "--binary", "--duration", "3",
             "--threads", "1"], capture_output=True, text=True, timeout=60)
        assert load.returncode == 0, load.stderr

        def trials():
            text = scrape(server)
            return sum(value(text, "pylon_io_batch_trials_total", verdict=v) for v in VERDICTS)
        assert poll(trials, 5, "a trial's verdict") >= 1
        # Quiet again: no loop batches.
        poll(lambda: value(scrape(server), "pylon_io_batching_loops") == 0, 5, "batching to end")
