#!/usr/bin/python3
"""Idle memory per WebSocket at each log level, for several pylon binaries in one run
(docs/benchmarks.md "Idle memory per connection").

    /usr/bin/python3 bench/idle_memory.py [--pylon LABEL=PATH ...] [--levels info,warn]
                                          [--connections 10000] [--rounds 3]

bench/run.py's idle-10k case for several binaries, interleaved: pylon started with run.py's
command (`--threads 1`, pinned to core 0) and `--log-level LEVEL`, its stderr to a file (at info
every connection writes two access-log lines, more than a pipe nobody reads holds); one
`echo_client --hold` (core 1) opens the connections; the figure is the server's RSS growth ÷
connections after a 2 s settle. Each round runs every binary at every level, one after the other.
Results: bench/results/<date>-idle-memory.json, and the table on stdout.
"""
import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (RESULTS, ROOT, SERVER_CORE, WARM_UP_CONNECTIONS, free_port,  # noqa: E402
                      hold, loadavg, log, machine, rss_bytes, stop_clients)


def measure(pylon, level, connections, port, peers_dir):
    command = [pylon, "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1",
               "--max-message-size", str(16 << 20), "--log-level", level,
               "--max-connections", "200000", "--ping-interval", "3600", "--pong-timeout", "3600"]
    with tempfile.TemporaryFile() as stderr:
        server = subprocess.Popen(["taskset", "-c", SERVER_CORE] + command, stdout=subprocess.DEVNULL,
                                  stderr=stderr, start_new_session=True)
        try:
            deadline = time.time() + 15
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.time() > deadline or server.poll() is not None:
                        raise RuntimeError(f"{pylon} does not listen on {port}")
                    time.sleep(0.1)
            warm, _ = hold(peers_dir, port, WARM_UP_CONNECTIONS)
            time.sleep(0.5)
            entry = {"loadavg_before": loadavg()}
            before = rss_bytes([server.pid])
            client, report = hold(peers_dir, port, connections)
            time.sleep(2)
            after = rss_bytes([server.pid])
            entry["loadavg_after"] = loadavg()
            stop_clients([client, warm])
        finally:
            server.terminate()
            server.wait(timeout=30)
        stderr.seek(0)
        entry["log_lines"] = sum(1 for _ in stderr)
    connected = report.get("connected", 0)
    entry.update({"connected": connected, "client_errors": report.get("errors", {}),
                  "server_rss_before_bytes": before,
                  "server_rss_after_bytes": after,
                  "server_bytes_per_connection": round((after - before) / connected, 1) if connected else None})
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pylon", action="append", metavar="LABEL=PATH",
                        help="a binary to measure (repeatable); default: build/pylon")
    parser.add_argument("--levels", default="info,warn")
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers-dir", default=os.path.join(ROOT, "build", "bench-peers"))
    parser.add_argument("--port", type=int, default=19950)
    args = parser.parse_args()
    binaries = dict(p.split("=", 1) for p in (args.pylon or [f"pylon={ROOT}/build/pylon"]))
    subprocess.run([os.path.join(ROOT, "bench", "peers", "build.sh"), args.peers_dir], check=True)
    levels = args.levels.split(",")
    document = {"date": datetime.date.today().isoformat(), "machine": machine(), "binaries": binaries,
                "connections": args.connections, "client": "echo_client --hold", "runs": []}
    port = args.port
    for round_number in range(1, args.rounds + 1):
        for level in levels:
            for label, path in binaries.items():
                port = free_port(port + 1)
                entry = {"round": round_number, "server": label, "log_level": level}
                entry.update(measure(os.path.abspath(path), level, args.connections, port,
                                     os.path.abspath(args.peers_dir)))
                document["runs"].append(entry)
                log(f"round {round_number} {label} {level}: {entry['connected']} connected, "
                    f"{entry['server_bytes_per_connection']} B/connection, {entry['log_lines']} log lines")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{document['date']}-idle-memory.json"), "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    print("| log level | " + " | ".join(f"{label} B/connection (runs) | median" for label in binaries) + " |")
    print("|---|" + "---|---|" * len(binaries))
    for level in levels:
        cells = []
        for label in binaries:
            figures = [r["server_bytes_per_connection"] for r in document["runs"]
                       if r["server"] == label and r["log_level"] == level]
            cells.append(f"{', '.join(f'{x:.1f}' for x in figures)} | {statistics.median(figures):.1f}")
        print(f"| {level} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
