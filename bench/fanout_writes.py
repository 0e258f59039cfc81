"""Fan-out bursts: how many writes each subscriber gets, the server's system calls and its own
instructions per delivery (issue 17).

    /usr/bin/python3 bench/fanout_writes.py [--pylon build/pylon] [--threads 1] [--subscribers 1000]
                                            [--burst 8] [--bursts 20] [--mode plain|strace|callgrind]

Starts `pylon serve --threads N` (under `valgrind --tool=callgrind` with --mode callgrind),
subscribes --subscribers raw WebSocket connections to one topic, then sends --bursts bursts of
--burst publishes, each burst in one write of the publisher's socket (so the server reads it in
one go), and waits until every subscriber has every message of the burst before the next.

Reported, over the bursts only (the set-up is left out), with the CPU time of each busy server
thread (how the work spread over the loops):
- data segments per subscriber per burst, from each subscriber socket's TCP_INFO
  (tcpi_data_segs_in): the server sets TCP_NODELAY, so each of its sends to a subscriber is one
  segment (a burst is far below the MSS). 1.0 means one write per subscriber per burst;
- --mode strace: the server's system calls per burst (sendmsg and sendto: the sockets; write:
  an eventfd wake-up of another loop) and socket sends per delivery (`strace -c -f` attached to every thread);
- --mode callgrind: the server's instructions per delivery, the whole process and its loop
  threads alone (callgrind, zeroed before the first burst and dumped after the last with
  callgrind_control).
"""

import argparse
import base64
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import tempfile
import time

from benchlib import CLIENT_CORE, SERVER_CORE, Server, free_port, loadavg, read_upgrade

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPIC = "bench/fanout"
TCP_INFO_DATA_SEGS_IN = 152  # offsetof(struct tcp_info, tcpi_data_segs_in), Linux >= 4.6


def masked_text(payload):
    """A client text frame (RFC 6455 §5.3: masked; a zero mask keeps the bytes readable)."""
    size = len(payload)
    header = bytes([0x81]) + (bytes([0x80 | size]) if size < 126 else bytes([0xFE]) + size.to_bytes(2, "big"))
    return header + b"\0\0\0\0" + payload


def server_frame_size(payload_size):
    return payload_size + (2 if payload_size < 126 else 4)


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = read_upgrade(sock)
    assert head.endswith(b"\r\n\r\n"), "bytes after the 101"
    return sock


def data_segments_in(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, TCP_INFO_DATA_SEGS_IN)[0]


def thread_cpu(pid):
    """utime + stime of each thread of pid, in seconds, by thread id."""
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def read_exactly(socks, sizes, timeout=120):
    """Reads sizes[i] bytes from socks[i], all at once; returns nothing, raises on a short read."""
    selector = selectors.DefaultSelector()
    remaining = {}
    for sock, size in zip(socks, sizes):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        remaining[sock] = size
    deadline = time.monotonic() + timeout
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(remaining)} subscribers still wait for bytes")
        for key, _ in selector.select(timeout=1):
            chunk = key.fileobj.recv(min(remaining[key.fileobj], 1 << 20))
            if not chunk:
                raise ConnectionError("a subscriber was closed")
            remaining[key.fileobj] -= len(chunk)
            if remaining[key.fileobj] == 0:
                del remaining[key.fileobj]
                selector.unregister(key.fileobj)
    selector.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pylon", default=os.path.join(ROOT, "build", "pylon"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--mode", choices=("plain", "strace", "callgrind"), default="plain")
    args = parser.parse_args()

    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    port = free_port(19400)
    command = [args.pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", str(args.threads),
               "--ping-interval", "3600", "--max-publish-rate", "1000000", "--log-level", "warn"]
    callgrind_out = None
    if args.mode == "callgrind":
        callgrind_out = tempfile.mktemp(prefix="fanout-callgrind.", suffix=".out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind_out}"] + command
    # Both cores with two loops (the client shares one), else the server core.
    with Server("pylon", [command], port, cores="0,1" if args.threads > 1 else SERVER_CORE) as server:
        server_pid = server.pids[0]
        subscribers = [connect(port) for _ in range(args.subscribers)]
        subscribe = masked_text(json.dumps({"type": "subscribe", "topics": [TOPIC], "id": 1},
                                           separators=(",", ":")).encode())
        for sock in subscribers:
            sock.sendall(subscribe)
        ack_size = server_frame_size(len(b'{"type":"ack","id":1}'))
        read_exactly(subscribers, [ack_size] * len(subscribers))
        publisher = connect(port)

        datas = [b'{"seq":%d,"pad":"%s"}' % (i, b"x" * 32) for i in range(args.burst)]
        envelope = b'{"type":"message","topic":"%s","data":%%s}' % TOPIC.encode()
        burst = b"".join(masked_text(b'{"type":"publish","topic":"%s","data":%s}' % (TOPIC.encode(), d))
                         for d in datas)
        burst_bytes = sum(server_frame_size(len(envelope % d)) for d in datas)

        # One warm-up burst: the first delivery grows buffers that later ones reuse.
        publisher.sendall(burst)
        read_exactly(subscribers, [burst_bytes] * len(subscribers))

        tracer = None
        if args.mode == "strace":
            tids = os.listdir(f"/proc/{server_pid}/task")
            strace_out = tempfile.mktemp(prefix="fanout-strace.")
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", strace_out] +
                                      [arg for tid in tids for arg in ("-p", tid)],
                                      stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # strace attaches to every thread
        if args.mode == "callgrind":
            subprocess.run(["callgrind_control", "-z", str(server_pid)], check=True,
                           capture_output=True)

        before = [data_segments_in(sock) for sock in subscribers]
        threads_before = thread_cpu(server_pid)
        started = time.monotonic()
        for _ in range(args.bursts):
            publisher.sendall(burst)
            read_exactly(subscribers, [burst_bytes] * len(subscribers))
        elapsed = time.monotonic() - started
        threads_after = thread_cpu(server_pid)
        after = [data_segments_in(sock) for sock in subscribers]

        deliveries = args.bursts * args.burst * args.subscribers
        segments = [b - a for a, b in zip(before, after)]
        result = {"threads": args.threads, "subscribers": args.subscribers, "burst": args.burst,
                  "bursts": args.bursts, "deliveries": deliveries, "seconds": round(elapsed, 3),
                  "segments_per_subscriber_per_burst": sum(segments) / (args.bursts * len(segments)),
                  "max_segments_per_subscriber_per_burst": max(segments) / args.bursts,
                  # How the work spread over the loops: CPU seconds of each busy thread.
                  "thread_cpu_seconds": sorted(
                      (round(threads_after[tid] - threads_before.get(tid, 0), 3)
                       for tid in threads_after if threads_after[tid] - threads_before.get(tid, 0) > 0.01),
                      reverse=True),
                  "load": loadavg()}
        if args.mode == "callgrind":
            subprocess.run(["callgrind_control", "-d", str(server_pid)], check=True,
                           capture_output=True)
            dumps = sorted(p for p in os.listdir(os.path.dirname(callgrind_out))
                           if p.startswith(os.path.basename(callgrind_out) + "."))
            dump = os.path.join(os.path.dirname(callgrind_out), dumps[-1])
            # The whole process, and the loop threads alone (without the dashboard's thread,
            # whose work depends on time, not on deliveries).
            annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                                        dump], capture_output=True, text=True).stdout
            def inclusive(marker):
                line = next(line for line in annotated.splitlines() if marker in line)
                return int(line.split()[0].replace(",", ""))
            result["instructions_per_delivery"] = round(inclusive("PROGRAM TOTALS") / deliveries, 1)
            result["loop_instructions_per_delivery"] = round(
                inclusive("Worker::start()") / deliveries, 1)
            result["callgrind_file"] = dump
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=30)
            calls = {}
            with open(strace_out) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) >= 5 and fields[-1].isidentifier() and fields[3].isdigit():
                        calls[fields[-1]] = int(fields[3])
            # write(2) is the eventfd's wake-up; the sockets take sendmsg and sendto.
            sends = sum(calls.get(name, 0) for name in ("sendmsg", "sendto", "writev"))
            result["syscalls_per_burst"] = {name: round(count / args.bursts, 1)
                                            for name, count in sorted(calls.items())}
            result["sends_per_delivery"] = round(sends / deliveries, 4)
        print(json.dumps(result, indent=1))
        for sock in subscribers + [publisher]:
            sock.close()


if __name__ == "__main__":
    main()
