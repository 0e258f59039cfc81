"""pylon's own instructions per echoed message, counted by callgrind (issue 17).

    /usr/bin/python3 bench/echo_instructions.py [--pylon build/pylon] [--connections 100]
                                                [--in-flight 8] [--duration 20] [--out FILE]
                                                [--uws PATH/uws_echo] [--churn] [--native]
                                                [--client PATH/pylon]

Runs `pylon serve --threads 1` (or, with --uws, uWebSockets' echo peer) under
`valgrind --tool=callgrind`, drives it with `pylon bench echo` (not under valgrind), stops the
server with SIGTERM and divides callgrind's instruction totals by the messages the bench sent
(pylon: the server's own count from /metrics, which agrees): the whole process (start-up,
handshakes and drain included, amortised over the messages) and each of the hottest functions,
inclusive. Instruction counts do not depend on what else runs on the machine, so two builds
compare exactly; they are not time (no cache misses, no kernel, and under valgrind the server is
slower, so more messages wait per read than natively). The callgrind file is kept for
callgrind_annotate.

--native runs the server natively instead, pinned to core 0 (the client to core 1), and reports
its user and system CPU per message (or cycle) from /proc/PID/stat over the client's run: time
on this machine, so compare servers in interleaved rounds.

--churn counts instructions per connection cycle instead: --connections client threads each
open a TCP connection, upgrade it (GET /ws/echo), send a close frame, read the server's close and
its FIN, and close, again and again for --duration seconds. The client is this script (slow, so
the server waits for it, but instruction counts do not depend on that). pylon's count of the
cycles, pylon_handshakes_total, agrees with the client's.
"""

import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import read_upgrade


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the server did not listen on {port} within {timeout} s")


# A close frame from the client (masked, RFC 6455 §5.3) with code 1000, and the upgrade request.
CLOSE_FRAME = bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])


def churn_cycle(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        read_upgrade(connection)
        connection.sendall(CLOSE_FRAME)
        while connection.recv(4096):  # the server's close frame, then its FIN
            pass


def churn(port, threads, duration):
    """Connection cycles for duration seconds on `threads` threads; returns how many completed."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    deadline = time.monotonic() + duration
    counts = [0] * threads

    def run(index):
        while time.monotonic() < deadline:
            churn_cycle(port, request)
            counts[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts)


def cpu_seconds(pid):
    """User and system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def pylon_count(port, series):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith(series + "{"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pylon", default="build/pylon")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--out", default="callgrind.echo.out")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--client", help="the pylon whose bench drives the server (default: --pylon)")
    parser.add_argument("--uws", help="profile this uws_echo instead of pylon")
    parser.add_argument("--churn", action="store_true",
                        help="count per connection cycle (upgrade + close), not per message")
    parser.add_argument("--native", action="store_true",
                        help="CPU time per message of the server run natively, not instructions")
    args = parser.parse_args()

    port = free_port()
    if args.uws:
        command = [args.uws, str(port)]
    else:
        command = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1",
                   "--log-level", "warn", "--ping-interval", "3600", "--pong-timeout", "3600"]
    # taskset execs the server: the PID is the server's.
    runner = (["taskset", "-c", "0"] if args.native else
              ["valgrind", "--tool=callgrind", f"--callgrind-out-file={args.out}"])
    client = ["taskset", "-c", "1"] if args.native else []
    server = subprocess.Popen(runner + command, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        started = cpu_seconds(server.pid)
        began = time.monotonic()
        if args.churn:
            if args.native:
                os.sched_setaffinity(0, {1})
            messages = churn(port, args.connections, args.duration)
            series, unit = "pylon_handshakes_total", "connection cycle"
        else:
            with tempfile.NamedTemporaryFile(suffix=".json") as result:
                subprocess.run(
                    client +
                    [args.client or args.pylon, "bench", "echo", "--url",
                     f"ws://127.0.0.1:{port}/ws/echo",
                     "--connections", str(args.connections), "--in-flight", str(args.in_flight),
                     "--size", str(args.size), "--duration", str(args.duration), "--threads",
                     "1", "--json", result.name],
                    check=True, stdout=subprocess.DEVNULL)
                messages = json.load(open(result.name))["sent"]
            series, unit = "pylon_messages_received_total", "message"
        elapsed = time.monotonic() - began
        ended = cpu_seconds(server.pid)
        if not args.uws:
            print(f"counted by pylon ({series}): {pylon_count(port, series)}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)

    if args.native:
        user, system = (1e6 * (end - start) / messages for start, end in zip(started, ended))
        print(f"{unit}s done by the client: {messages} ({messages / elapsed:.0f}/s)")
        print(f"server CPU per {unit}: user {user:.3f} us, system {system:.3f} us, "
              f"total {user + system:.3f} us")
        return

    annotate = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", args.out],
        check=True, capture_output=True, text=True).stdout
    total = None
    rows = []
    for line in annotate.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\([\s\d.%]+\)\s+)?(\S.*?)\s*(?:\[|$)", line)
        if not match:
            continue
        count = int(match.group(1).replace(",", ""))
        name = match.group(2)
        if "PROGRAM TOTALS" in line:
            total = count
        elif ":" in name:
            rows.append((count, name.split(":", 1)[1] if name.startswith("???") else name))
    print(f"{unit}s done by the client: {messages}")
    print(f"instructions per {unit}, whole process: {total / messages:.0f}")
    print(f"inclusive per {unit}, hottest functions:")
    for count, name in rows[:args.top]:
        print(f"{count / messages:10.0f}  {name[:150]}")


if __name__ == "__main__":
    main()
