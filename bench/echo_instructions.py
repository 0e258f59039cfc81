"""pylon's own instructions per echoed message, counted by callgrind (issue 17).

    /usr/bin/python3 bench/echo_instructions.py [--pylon build/pylon] [--connections 100]
                                                [--in-flight 8] [--duration 20] [--out FILE]
                                                [--uws PATH/uws_echo]

Runs `pylon serve --threads 1` (or, with --uws, uWebSockets' echo peer) under
`valgrind --tool=callgrind`, drives it with `pylon bench echo` (not under valgrind), stops the
server with SIGTERM and divides callgrind's instruction totals by the messages the bench sent
(pylon: the server's own count from /metrics, which agrees): the whole process (start-up,
handshakes and drain included, amortised over the messages) and each of the hottest functions,
inclusive. Instruction counts do not depend on what else runs on the machine, so two builds
compare exactly; they are not time (no cache misses, no kernel, and under valgrind the server is
slower, so more messages wait per read than natively). The callgrind file is kept for
callgrind_annotate.
"""

import json
import tempfile

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request


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


def messages_received(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("pylon_messages_received_total{"):
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
    parser.add_argument("--uws", help="profile this uws_echo instead of pylon")
    args = parser.parse_args()

    port = free_port()
    if args.uws:
        command = [args.uws, str(port)]
    else:
        command = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1",
                   "--log-level", "warn", "--ping-interval", "3600", "--pong-timeout", "3600"]
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={args.out}"] + command,
        stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            subprocess.run(
                [args.pylon, "bench", "echo", "--url", f"ws://127.0.0.1:{port}/ws/echo",
                 "--connections", str(args.connections), "--in-flight", str(args.in_flight),
                 "--size", str(args.size), "--duration", str(args.duration), "--threads", "1",
                 "--json", result.name],
                check=True, stdout=subprocess.DEVNULL)
            messages = json.load(open(result.name))["sent"]
        if not args.uws:
            print(f"messages counted by pylon: {messages_received(port)}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)

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
    print(f"messages sent by the bench: {messages}")
    print(f"instructions per message, whole process: {total / messages:.0f}")
    print("inclusive per message, hottest functions:")
    for count, name in rows[:args.top]:
        print(f"{count / messages:10.0f}  {name[:150]}")


if __name__ == "__main__":
    main()
