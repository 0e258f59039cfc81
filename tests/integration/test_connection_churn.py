"""Connection churn (issue 17): what the accept and close path promises while connections come and
go fast. Many connections waiting at once are all accepted and served, max_connections holds
however they arrive, and the server's close frame carries its FIN (one segment, seen in the
client's TCP_INFO)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
from contextlib import contextmanager

from support.server import start_server
from support.wsclient import OP_TEXT, WsClient, echo_check, handshake_many

# struct tcp_info (linux/tcp.h): tcpi_segs_in (u32) and tcpi_data_segs_in (u32), at fixed offsets
# since Linux 4.6.
SEGS_IN_OFFSET = 140
DATA_SEGS_IN_OFFSET = 152


def segments_without_data(sock: socket.socket) -> int:
    """Segments this socket received that carried no payload: ACKs, and a FIN of its own."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    (segs_in,) = struct.unpack_from("I", info, SEGS_IN_OFFSET)
    (data_segs_in,) = struct.unpack_from("I", info, DATA_SEGS_IN_OFFSET)
    return segs_in - data_segs_in


@contextmanager
def all_waiting_at_once(server, seconds: float = 0.5):
    """Stops the server while the block's connections reach its listen queue, and lets it go on
    after `seconds` (from a thread, while the block waits for answers): they are all there at its
    next wake-up."""
    os.kill(server.pid, signal.SIGSTOP)
    resume = threading.Timer(seconds, os.kill, (server.pid, signal.SIGCONT))
    resume.start()
    try:
        yield
    finally:
        resume.cancel()
        os.kill(server.pid, signal.SIGCONT)


def test_connections_waiting_at_once_are_all_accepted_and_served():
    # More than one wake-up's accept batch (kMaxAcceptsPerEvent, 128): the rest are taken at the
    # next iterations, none is left behind.
    count = 300
    with start_server() as server:
        with all_waiting_at_once(server):
            handshakes = handshake_many(WsClient, server.address, count, timeout=60)
        try:
            assert [h.client.handshake_response.status for h in handshakes] == [101] * count
            for i, handshake in enumerate(handshakes):
                handshake.client.send_text(b"n%d" % i)
            for i, handshake in enumerate(handshakes):
                handshake.client.expect_echo(OP_TEXT, b"n%d" % i)
                handshake.client.close_cleanly()
        finally:
            for handshake in handshakes:
                handshake.client.close()
        echo_check(server.address)


def test_max_connections_holds_when_many_arrive_at_once():
    limit, count = 40, 90
    with start_server("--max-connections", str(limit), "--threads", "1") as server:
        with all_waiting_at_once(server):
            handshakes = handshake_many(WsClient, server.address, count, timeout=60)
        try:
            statuses = [h.client.handshake_response.status for h in handshakes]
            assert statuses.count(101) == limit, statuses
            assert statuses.count(503) == count - limit, statuses
        finally:
            for handshake in handshakes:
                handshake.client.close()


def test_close_frame_and_fin_leave_in_one_segment():
    # The server answers the client's close frame and closes TCP at once (RFC 6455 §7.1.1); the
    # answer is held for the FIN, so the client gets both in one segment instead of a data
    # segment and a bare FIN. Counted over several connections: a connection may also get a pure
    # ACK of its close frame (the kernel's choice, not the server's), but not every one.
    count = 20
    with start_server() as server:
        bare = 0
        for _ in range(count):
            client = WsClient.connect(server.address)
            try:
                client.send_text("hello")
                client.expect_echo(OP_TEXT, b"hello")
                before = segments_without_data(client.sock)
                client.send_close(1000)
                client.expect_close(1000)  # then EOF
                bare += segments_without_data(client.sock) - before
            finally:
                client.close()
        assert bare < count, f"{bare} segments without data for {count} closes: a bare FIN each"
