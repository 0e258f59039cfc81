"""Connection lifecycle of `pylon serve`: SIGTERM drain, max_connections, handshake timeout,
heartbeat and idle timeout. Each test starts its own server with the flags it needs."""

import errno
import os
import re
import select
import selectors
import signal
import socket
import time
from collections import Counter

import pytest

from support.server import start_server, poll
from support.wsclient import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ConnectionClosed, HttpConnection,
                              WsClient, connect_many, echo_check, upgrade_headers)

SLACK = 20.0  # seconds added to every deadline: the ASan build is slow, the timer wheel coarse




def closed_by_server(client, timeout):
    """Reads until the server closes TCP; returns the frames received before (the last may be a
    close frame)."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            frames.append(client.recv_frame(timeout=max(0.1, deadline - time.monotonic())))
        except ConnectionClosed:
            return frames
        if frames[-1].opcode == OP_CLOSE:
            client.expect_eof(timeout=max(0.1, deadline - time.monotonic()))
            return frames


# --- SIGTERM -------------------------------------------------------------------------------

def test_sigterm_without_clients_exits_0():
    with start_server() as server:
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=30 + SLACK) == 0


def test_sigterm_drains_fifty_clients():
    window, drain_timeout = 1.0, 5.0
    with start_server("--drain-window", str(window), "--drain-timeout", str(drain_timeout),
                      "--threads", "2") as server:
        clients = [WsClient.connect(server.address) for _ in range(50)]
        for i, client in enumerate(clients):
            client.send_text(b"before %d" % i)
        for i, client in enumerate(clients):
            client.expect_echo(OP_TEXT, b"before %d" % i)
        started = time.monotonic()
        server.signal(signal.SIGTERM)

        # Every WebSocket gets a close frame with 1001, spread over the drain window.
        arrivals = first_byte_times(clients, started, timeout=window + SLACK)
        assert len(arrivals) == len(clients), f"only {len(arrivals)} of {len(clients)} got anything"
        assert max(arrivals) - min(arrivals) >= window / 4, \
            f"closes not spread over the {window}s window: {min(arrivals):.3f}..{max(arrivals):.3f}s"
        # Half answer the close, half stay silent: all are closed by drain_timeout.
        for i, client in enumerate(clients):
            client.expect_close(1001, timeout=window + SLACK, eof=False)
            if i % 2 == 0:
                client.send_close(1001)
        last_close = time.monotonic() - started
        for client in clients:
            client.expect_eof(timeout=drain_timeout + SLACK)
        assert last_close < window + SLACK
        assert server.wait(timeout=drain_timeout + SLACK) == 0


@pytest.mark.parametrize("idle_before", [False, True], ids=["at-once", "after-idle"])
def test_readyz_is_503_while_draining(idle_before):
    with start_server("--drain-window", "2", "--drain-timeout", "5") as server:
        client = WsClient.connect(server.address)  # keeps the drain going
        probe = HttpConnection(*server.address)  # a keep-alive connection opened before SIGTERM
        probe.request("GET", "/readyz")
        assert probe.read_response().status == 200
        if idle_before:
            echo_check(server.address)  # the probe sits idle meanwhile
        server.signal(signal.SIGTERM)

        def not_ready():
            try:
                probe.request("GET", "/readyz")
                return probe.read_response().status == 503
            except (ConnectionClosed, OSError) as error:
                pytest.fail(f"the open connection was closed instead of answering /readyz with 503: {error}")
        poll(not_ready, 10 + SLACK, "/readyz to answer 503 while draining")
        probe.close()
        client.expect_close(1001, timeout=2 + SLACK, eof=False)
        client.send_close(1001)
        client.expect_eof()
        assert server.wait(timeout=5 + SLACK) == 0


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: pylon\r\nConnection: close\r\n\r\n"


def answer(sock: socket.socket, rest: bytes) -> bytes:
    """Sends `rest` on `sock` and returns everything until EOF."""
    sock.sendall(rest)
    sock.settimeout(SLACK)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def refuses(address) -> bool:
    # A connect in the listener's last 0.1 s is dropped (Worker::drain_tick), then refused when its
    # SYN comes again a second later: wait for that.
    try:
        socket.create_connection(address, timeout=3).close()
        return False
    except ConnectionRefusedError:
        return True


def test_sigterm_answers_clients_that_connected_before_their_request():
    """Two clients connect, then SIGTERM comes before their request. The kernel holds such a
    connection until its first bytes come (TCP_DEFER_ACCEPT): a listener closed at once would
    reset it. Both send their first bytes 0.1 s after the signal: one a whole request, answered;
    the other half of one, which the drain waits for although no WebSocket keeps it going, past
    the listener's close (a connect is refused then), and answers."""
    with start_server("--threads", "2") as server:
        whole, partial = socket.create_connection(server.address), socket.create_connection(server.address)
        server.signal(signal.SIGTERM)
        time.sleep(0.1)
        partial.sendall(HEALTHZ[:10])
        assert answer(whole, HEALTHZ).startswith(b"HTTP/1.1 200 OK\r\n")
        poll(lambda: refuses(server.address), SLACK, "connects to be refused")
        time.sleep(0.2)
        assert server.running(), "the drain did not wait for the request it had begun to read"
        assert answer(partial, HEALTHZ[10:]).startswith(b"HTTP/1.1 200 OK\r\n")
        assert server.wait(timeout=SLACK) == 0
        whole.close()
        partial.close()


def writable(sock: socket.socket, timeout: float) -> bool:
    """Whether a connecting socket's connect() ended (done or failed) within `timeout` seconds."""
    waiter = select.poll()
    waiter.register(sock, select.POLLOUT)
    return bool(waiter.poll(timeout * 1000))


def test_sigterm_drops_new_handshakes_before_the_listener_closes():
    """In the listener's last 0.1 s a draining server drops new SYNs (net::drop_new_handshakes),
    so that no connection completes into a backlog between the last accept and the close, which
    would reset it. A connect made then waits, and is refused when its SYN comes again after the
    close. Every connect that did complete is answered."""
    with start_server() as server:
        server.signal(signal.SIGTERM)
        connected, waiting = [], []
        deadline = time.monotonic() + SLACK
        while time.monotonic() < deadline:
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setblocking(False)
            client.connect_ex(server.address)
            if not writable(client, 0.05):
                waiting.append(client)
                continue
            if client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                client.close()
                break  # refused: the listener is closed
            client.setblocking(True)
            client.sendall(HEALTHZ)  # at once, as clients do (one that waits is another test's)
            connected.append(client)
            time.sleep(0.02)
        assert waiting, "no connect waited: new handshakes were not dropped before the close"
        for client in connected:
            assert answer(client, b"").startswith(b"HTTP/1.1 200 OK\r\n")
            client.close()
        for client in waiting:
            assert writable(client, SLACK)
            assert client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
            client.close()
        assert server.wait(timeout=SLACK) == 0


def test_sigterm_close_frames_come_while_clients_keep_talking():
    with start_server("--drain-window", "1", "--drain-timeout", "5") as server:
        client = WsClient.connect(server.address)
        server.signal(signal.SIGTERM)
        # Until its close arrives the client may still be echoed; after it, only EOF.
        frames = closed_by_server_after_reply(client)
        assert frames[-1].opcode == OP_CLOSE and frames[-1].close_code == 1001, frames
        assert server.wait(timeout=5 + SLACK) == 0


def first_byte_times(clients, started, timeout):
    """Seconds from `started` until each client's socket became readable (read concurrently)."""
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ)
    times = []
    deadline = time.monotonic() + timeout
    while len(times) < len(clients) and time.monotonic() < deadline:
        for key, _ in selector.select(max(0.01, deadline - time.monotonic())):
            times.append(time.monotonic() - started)
            selector.unregister(key.fileobj)
    selector.close()
    return times


def closed_by_server_after_reply(client):
    frames = []
    while True:
        frame = client.recv_frame(timeout=1 + SLACK)
        frames.append(frame)
        if frame.opcode == OP_CLOSE:
            client.send_close(1001)
            client.expect_eof(timeout=SLACK)
            return frames


# --- max_connections ---------------------------------------------------------------------------

def test_max_connections_refuses_with_503_and_recovers():
    with start_server("--max-connections", "3", "--threads", "2") as server:
        clients = [WsClient.connect(server.address) for _ in range(3)]

        refused = HttpConnection(*server.address)
        refused.request("GET", "/ws/echo", upgrade_headers())
        response = refused.read_response(read_body=False)
        assert response.status == 503, response.raw_head
        refused.wait_eof(timeout=SLACK)
        refused.close()

        for i, client in enumerate(clients):  # the existing ones keep working
            client.send_text(b"still here %d" % i)
            client.expect_echo(OP_TEXT, b"still here %d" % i)
        # Plain HTTP is not a WebSocket: it is not counted.
        probe = HttpConnection(*server.address)
        probe.request("GET", "/healthz")
        assert probe.read_response().status == 200
        probe.close()

        clients[0].close_cleanly()

        def accepted():
            conn = HttpConnection(*server.address)
            conn.request("GET", "/ws/echo", upgrade_headers())
            status = conn.read_response(read_body=False).status
            conn.close()
            assert status in (101, 503), status
            return status == 101
        poll(accepted, SLACK, "a new WebSocket to be accepted after one closed")
        echo_check_after_slot_frees(server)
        for client in clients[1:]:
            client.close_cleanly()


def echo_check_after_slot_frees(server):
    # The probe in accepted() was closed abruptly; poll until its slot is free too.
    def ok():
        try:
            echo_check(server.address)
            return True
        except AssertionError:
            return False
    poll(ok, SLACK, "the server to accept an echo client")


# --- handshake timeout --------------------------------------------------------------------------

def test_slow_handshake_is_closed_and_others_keep_working():
    with start_server("--handshake-timeout", "1") as server:
        partial = HttpConnection(*server.address)
        partial.send_raw(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        silent = HttpConnection(*server.address)
        upgraded = WsClient.connect(server.address)  # completed its handshake in time
        echo_check(server.address)
        for conn in (partial, silent):
            rest = conn.wait_eof(timeout=1 + SLACK)
            assert rest == b"" or rest.startswith(b"HTTP/1.1 408"), rest[:100]
            conn.close()
        # The handshake timeout does not apply to a finished handshake.
        upgraded.send_text("after the slow ones were closed")
        upgraded.expect_echo(OP_TEXT, b"after the slow ones were closed")
        upgraded.close_cleanly()
        echo_check(server.address)


def test_trickling_handshake_is_closed():
    # A slowloris: the request grows by one byte every 0.2 s and never ends.
    with start_server("--handshake-timeout", "1") as server:
        conn = HttpConnection(*server.address)
        request = b"GET /ws/echo HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"s" * 1000
        started = time.monotonic()
        for byte in request:
            try:
                conn.send_raw(bytes([byte]))
            except OSError:
                break  # closed (reset) by the server
            readable, _, _ = select.select([conn.sock], [], [], 0.2)  # paces the trickle
            if readable:
                break
            assert time.monotonic() - started < 1 + SLACK, \
                "a client trickling its request must be closed after handshake_timeout"
        rest = conn.wait_eof(timeout=SLACK)
        assert rest == b"" or rest.startswith(b"HTTP/1.1 408"), rest[:100]
        conn.close()
        echo_check(server.address)


# --- heartbeat ------------------------------------------------------------------------------------

def test_heartbeat_pings_and_closes_silent_clients():
    with start_server("--ping-interval", "1", "--pong-timeout", "2") as server:
        silent = WsClient.connect(server.address)
        answering = WsClient.connect(server.address)

        pings = 0
        deadline = time.monotonic() + 4 * SLACK
        while pings < 4:
            frame = answering.recv_frame(timeout=max(0.1, deadline - time.monotonic()))
            assert frame.opcode == OP_PING, f"expected only pings, got {frame!r}"
            assert len(frame.payload) <= 125
            answering.send_frame(OP_PONG, frame.payload)
            pings += 1

        frames = closed_by_server(silent, timeout=2 * SLACK)
        assert frames and frames[0].opcode == OP_PING, f"the silent client got no ping: {frames}"
        assert all(f.opcode in (OP_PING, OP_CLOSE) for f in frames), frames
        if frames[-1].opcode == OP_CLOSE:
            assert frames[-1].close_code == 1001, frames[-1]

        answering.send_text("still open")
        while True:  # a ping may come before the echo
            frame = answering.recv_frame()
            if frame.opcode == OP_PING:
                answering.send_frame(OP_PONG, frame.payload)
                continue
            assert frame.opcode == OP_TEXT and frame.payload == b"still open", frame
            break
        answering.send_close(1000)
        frames = [f for f in closed_by_server(answering, timeout=SLACK) if f.opcode != OP_PING]
        assert frames and frames[-1].close_code == 1000, frames


def test_pings_keep_their_interval_when_it_is_shorter_than_the_pong_timeout():
    # A pong re-arms the timer for the next ping: pings come every ping_interval, not every
    # pong_timeout.
    with start_server("--ping-interval", "0.5", "--pong-timeout", "5") as server:
        client = WsClient.connect(server.address)
        started = time.monotonic()
        for _ in range(6):
            frame = client.recv_frame(timeout=SLACK)
            assert frame.opcode == OP_PING, frame
            client.send_frame(OP_PONG, frame.payload)
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"6 pings took {elapsed:.1f} s with ping_interval 0.5 s"
        client.close_cleanly()


def test_no_pings_within_default_interval():
    # Default ping_interval is 25 s: a short session sees no ping.
    with start_server() as server:
        client = WsClient.connect(server.address)
        for i in range(50):
            client.send_text(b"%d" % i)
            client.expect_echo(OP_TEXT, b"%d" % i)
        client.close_cleanly()


# --- idle timeout ------------------------------------------------------------------------------------

def test_idle_timeout_closes_silent_websockets():
    with start_server("--idle-timeout", "2", "--ping-interval", "100") as server:
        silent = WsClient.connect(server.address)
        active = WsClient.connect(server.address)
        started = time.monotonic()
        i = 0
        silent.sock.settimeout(0.25)
        while True:
            active.send_text(b"keep %d" % i)
            active.expect_echo(OP_TEXT, b"keep %d" % i)
            i += 1
            try:  # pacing the active client; also notices the close of the silent one
                chunk = silent.sock.recv(4096)
            except socket.timeout:
                chunk = None
            except ConnectionResetError:
                chunk = b""
            if chunk is not None:
                silent.buffer += chunk
                silent.eof = chunk == b""
                break
            assert time.monotonic() - started < 2 + 2 * SLACK, "the silent client was never closed"
        frames = closed_by_server(silent, timeout=SLACK)
        assert all(f.opcode == OP_CLOSE for f in frames), frames
        active.send_text("active is alive")
        active.expect_echo(OP_TEXT, b"active is alive")
        active.close_cleanly()


def test_idle_timeout_off_by_default():
    with start_server("--handshake-timeout", "1") as server:
        idle = WsClient.connect(server.address)
        # A slow handshake being closed is proof that timers ran meanwhile.
        slow = HttpConnection(*server.address)
        slow.send_raw(b"GET /")
        slow.wait_eof(timeout=1 + SLACK)
        idle.send_text("not idle-closed")
        idle.expect_echo(OP_TEXT, b"not idle-closed")
        idle.close_cleanly()


IORING_OP_POLL_ADD, IORING_OP_RECV = 6, 27  # liburing.h


def waiting_operations(pid):
    """Operations waiting on sockets in the io_uring rings of process `pid`, by opcode, as the
    kernel lists them: the PollList of each ring's /proc/PID/fdinfo entry."""
    counts = Counter()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                lines = info.read().splitlines()
        except OSError:
            continue  # closed meanwhile
        in_list = False
        for line in lines:
            if line.startswith("PollList:"):
                in_list = True
            elif not line.startswith(" "):
                in_list = False
            elif in_list and (match := re.match(r"\s+op=(\d+),", line)):
                counts[int(match.group(1))] += 1
    return counts


def test_quiet_connections_park_their_receives_and_lose_nothing():
    # io_uring (src/net/uring_poller.hpp): a receive that took nothing for 2-4 s gives way to a
    # poll, which costs the kernel less; the next bytes wake it. Every client's message after the
    # quiet spell is echoed, and each connection has its receive again.
    with start_server("--io-backend", "io_uring", "--threads", "2") as server:
        clients = connect_many(WsClient, server.address, 40)
        assert waiting_operations(server.pid)[IORING_OP_RECV] >= len(clients)
        poll(lambda: waiting_operations(server.pid)[IORING_OP_RECV] == 0, 4 + SLACK,
             "every quiet connection's receive to be parked")
        assert waiting_operations(server.pid)[IORING_OP_POLL_ADD] >= len(clients)
        for i, client in enumerate(clients):
            client.send_text(b"after the quiet %d" % i)
        for i, client in enumerate(clients):
            client.expect_echo(OP_TEXT, b"after the quiet %d" % i)
        assert waiting_operations(server.pid)[IORING_OP_RECV] == len(clients)
        for client in clients:
            client.close_cleanly()


# --- many clients at once -------------------------------------------------------------------------

def test_many_concurrent_clients_across_threads():
    with start_server("--threads", "2") as server:
        clients = [WsClient.connect(server.address) for _ in range(200)]
        for round_ in range(5):
            for i, client in enumerate(clients):
                client.send_text(b"client %d round %d" % (i, round_))
            for i, client in enumerate(clients):
                client.expect_echo(OP_TEXT, b"client %d round %d" % (i, round_))
        for client in clients:
            client.send_close(1000)
        for client in clients:
            client.expect_close(1000)
            client.close()
